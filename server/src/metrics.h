/* SPDX-License-Identifier: MIT */
/* metrics.h: what the server counts, for /metrics (the Prometheus text
 * format) and the inspector (inspect.h).
 *
 * Counting is a plain increment of a field of one global struct: the
 * server is single-threaded, so there is no lock, no atomic and no
 * allocation on the hot path, and a counter nobody reads costs one add.
 * Everything that can be read from the model instead (connections,
 * sessions by role, states, queued bytes, pending schedules) is not
 * counted but computed when /metrics is asked for. */
#ifndef TT_METRICS_H
#define TT_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

/* Buckets at most per histogram (the +Inf one excluded). */
#define TT_HIST_MAX 16

typedef struct tt_histogram {
	const double *bounds;           /* upper bounds, ascending (borrowed, static) */
	uint32_t n;                     /* how many */
	uint64_t counts[TT_HIST_MAX + 1]; /* per bucket, not cumulative; [n]: above the last */
	uint64_t count;
	double sum;
} tt_histogram;

/* Requests refused, by message type (0: unreadable or unknown) and code. */
#define TT_METRICS_TYPES 21
#define TT_METRICS_CODES 64

struct tt_metrics {
	uint64_t conns_opened;     /* WebSocket connections established */
	uint64_t msgs_in;          /* protocol messages received (decoded) */
	uint64_t bytes_in;         /* WebSocket payload bytes received */
	uint64_t msgs_out;         /* protocol messages written to sockets */
	uint64_t bytes_out;        /* their bytes */
	uint64_t sets_applied;     /* SETs applied (scheduled ones when they fall due) */
	uint64_t updates;          /* updates that changed a state (its seq + 1) */
	uint64_t sessions_new;
	uint64_t sessions_resumed;
	uint64_t ended_goodbye;    /* sessions ended by their client's goodbye */
	uint64_t ended_expired;    /* lost: not back within the resume window */
	uint64_t ended_kicked;     /* ended by an operator (KICK) */
	uint64_t slow_consumers;   /* connections closed with 4001 */
	uint64_t sync_reports;     /* SYNC_REPORTs taken */
	uint64_t refused[TT_METRICS_TYPES][TT_METRICS_CODES];
	tt_histogram commit_seconds; /* time of a database commit */
	tt_histogram commit_rows;    /* rows written by one commit */
	tt_histogram clock_rtt;      /* clock-sync round trips the clients report */
	double started;              /* Unix time of tt_metrics_init (the process start) */
};

extern struct tt_metrics tt_metrics;

/* A client's last clock-sync report (SYNC_REPORT, PROTOCOL.md §10a). */
enum tt_sync_status { TT_SYNC_NONE, TT_SYNC_STARTUP, TT_SYNC_TRAINING, TT_SYNC_SYNC };

typedef struct tt_sync_report {
	uint8_t status;  /* enum tt_sync_status; NONE: no report yet */
	float error;     /* the client's estimate of |its sync time - the server's|, s */
	float drift;     /* its clock's drift (frequency ratio - 1) */
	float rtt;       /* round trip of its last series of pings, s */
	double at;       /* tt_clock_mono() when it came */
	double observed; /* when its round trip last went into the histogram */
} tt_sync_report;

/* What one connection did, for the inspector's rows (client.h embeds it). */
typedef struct tt_conn_stats {
	uint64_t msgs_in, msgs_out;   /* protocol messages received, written */
	uint64_t prev_in, prev_out;   /* the same at the last sample */
	float rate_in, rate_out;      /* per second over the last sample */
	double opened;                /* tt_clock_mono() at the upgrade */
	tt_sync_report sync;
	bool inspecting;              /* has an INSPECT subscription */
	uint32_t rows_sessions, rows_states; /* its caps on the rows pushed */
} tt_conn_stats;

/* Zero every counter and give the histograms their buckets (at start). */
void tt_metrics_init(void);
void tt_metrics_observe(tt_histogram *h, double v);
/* A request of message type `type` refused with `code`. */
void tt_metrics_refused(uint64_t type, int code);

#endif
