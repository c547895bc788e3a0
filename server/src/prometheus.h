/* SPDX-License-Identifier: MIT */
/* prometheus.h: the server's counters (metrics.h) and its state now, as
 * the Prometheus text format that /metrics answers. */
#ifndef TT_PROMETHEUS_H
#define TT_PROMETHEUS_H

#include "buf.h"

/* The whole exposition (version 0.0.4), appended to out: the counters of
 * metrics.h, and the gauges read from the model and the process now. */
void tt_prometheus_render(tt_buf *out);

#endif
