/* SPDX-License-Identifier: MIT */
/* metrics.c: the counters and histograms every part of the server bumps
 * (a leaf: it reads nothing of the model; prometheus.c renders them). */
#include "metrics.h"

#include <string.h>

#include "clock.h"
#include "common.h"
#include "protocol.h"

struct tt_metrics tt_metrics;

static const double commit_seconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
					0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
static const double commit_rows[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
				     10000, 50000};
/* from a wired laptop (0.2 ms) to a crowded venue's Wi-Fi (hundreds of ms) */
static const double clock_rtt[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
				   0.5, 1, 2};

#define N_OF(a) ((uint32_t)(sizeof(a) / sizeof(*(a))))
_Static_assert(sizeof(commit_seconds) / sizeof(double) <= TT_HIST_MAX, "buckets");
_Static_assert(sizeof(commit_rows) / sizeof(double) <= TT_HIST_MAX, "buckets");
_Static_assert(sizeof(clock_rtt) / sizeof(double) <= TT_HIST_MAX, "buckets");
_Static_assert(TT_MSG_KICK < TT_METRICS_TYPES, "a refused request's type has its row");
_Static_assert(TT_STORAGE < TT_METRICS_CODES, "a refused request's code has its column");

static void hist_init(tt_histogram *h, const double *bounds, uint32_t n)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->n = n;
}

void tt_metrics_init(void)
{
	memset(&tt_metrics, 0, sizeof(tt_metrics));
	hist_init(&tt_metrics.commit_seconds, commit_seconds, N_OF(commit_seconds));
	hist_init(&tt_metrics.commit_rows, commit_rows, N_OF(commit_rows));
	hist_init(&tt_metrics.clock_rtt, clock_rtt, N_OF(clock_rtt));
	tt_metrics.started = tt_clock_wall();
}

void tt_metrics_observe(tt_histogram *h, double v)
{
	uint32_t i = 0;
	while (i < h->n && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

void tt_metrics_refused(uint64_t type, int code)
{
	if (type >= TT_METRICS_TYPES)
		type = 0;
	if (code > 0 && code < TT_METRICS_CODES)
		tt_metrics.refused[type][code]++;
}
