/* SPDX-License-Identifier: MIT */
/* sync.h: clock-sync estimator for native clients (libtutti core). It
 * estimates the server's sync clock (PROTOCOL.md §10) from PING/PONG
 * exchanges with IRCAM's algorithm: series of pings, the fastest trips,
 * offset from the best, drift by regression over a long window (from the
 * second series on, shrunk while the window is short), monotonic smoothing,
 * and says when a scheduled event is due, never early (tt_sync_due). It does
 * no I/O and reads no clock: the caller sends the pings, feeds the pongs and
 * passes its local time (seconds, monotonic) to every call. web/sync.js is the same estimator in JS; the
 * deliberate differences from @ircam/sync are listed at the top of it.
 *
 * Loop of a native client:
 *
 *   tt_sync s; tt_sync_init(&s, NULL);
 *   for (;;) {
 *       double now = my_clock();
 *       uint32_t id;
 *       if (tt_sync_ping(&s, now, &id) == 0)
 *           send_ping(id, now);                        // [12, id, now]
 *       wait for a message or until tt_sync_next_ping_due(&s);
 *       on PONG [69, id, ct, recv, send]:
 *           tt_sync_on_pong(&s, id, ct, recv, send, my_clock(), NULL);
 *   }
 *   ... tt_sync_time(&s, my_clock()) is the server's sync time now.
 *
 * Firing an event at sync time `at` (a scheduled set's listeners), never
 * before, however early the OS timer wakes:
 *
 *   double wait;
 *   while (!tt_sync_due(&s, at, my_clock(), &wait))
 *       sleep_seconds(wait > 0.005 ? wait - 0.005 : wait); // or arm a timer
 *   fire();
 *
 * (The ping loop above keeps running meanwhile in a real client: arm the
 * timer for the earlier of tt_sync_next_ping_due and `at`.)
 *
 * Not thread-safe: one thread owns a tt_sync. Local times passed in must not
 * decrease from call to call. */
#ifndef TT_SYNC_H
#define TT_SYNC_H

#include <stdbool.h>
#include <stdint.h>

/* Long-term entries kept at most (one per series); the oldest go first. */
#define TT_SYNC_MAX_ENTRIES 256
/* Pings per series at most. */
#define TT_SYNC_MAX_SERIES 64
/* Floor of a series' offset noise, seconds (timer and event-loop noise that
 * the spacing of the fastest trips cannot see); web/sync.js NOISE_FLOOR. */
#define TT_SYNC_NOISE_FLOOR 20e-6

typedef enum tt_sync_status {
	TT_SYNC_NEW = 0,  /* before the first ping */
	TT_SYNC_STARTUP,  /* first series under way: provisional estimates */
	TT_SYNC_TRAINING, /* offset only (frequency ratio 1): one series so far */
	TT_SYNC_SYNC      /* offset and drift from the long-term regression */
} tt_sync_status;

/* Timing parameters, seconds; the defaults are web/sync.js's (its header
 * says why each one). */
typedef struct tt_sync_options {
	unsigned series_len;      /* pongs per series (10), 1..TT_SYNC_MAX_SERIES */
	unsigned startup_series_len; /* pongs in the first series (0: series_len); more
				      * gives a better first estimate under heavy jitter */
	double ping_period;       /* between a pong and the next ping (0.25) */
	double series_delay_min;  /* pause between series, drawn in [min, max] */
	double series_delay_max;  /* (10, 20) */
	double ramp_ratio;        /* start-up ramp (0.1): the pause after a series is this
				   * times the time since the first ping until it reaches
				   * series_delay_min; 0: no ramp */
	double ramp_ping_period;  /* ping_period of the ramp's series (0.05) */
	double ping_timeout;      /* initial pong timeout (1); x2 per timeout, x0.75 per pong */
	double ping_timeout_max;  /* (30) */
	double training_duration; /* offset only for this long (0: drift from the 2nd series) */
	double window;            /* series kept for the regression (900) */
	double max_drift;         /* |ratio - 1| at most (500e-6); a regression far beyond
				   * it means a clock stepped: back to training */
	double drift_scale;       /* expected |drift| (100e-6): the prior that shrinks the
				   * drift of a short window; inf: none, 0: no drift */
	double slew_rate;         /* corrections spread at this rate (1000e-6, faster than
				   * max_drift); 0: at once */
	double step_forward;      /* forward corrections above this are applied at once (0.1) */
	uint32_t ping_id_base;    /* first ping id (2^30) */
	uint32_t seed;            /* PRNG seed for the pauses (any value) */
} tt_sync_options;

/* The report (struct tag only: tt_sync_report is also the function). */
struct tt_sync_report {
	tt_sync_status status;
	double status_duration;     /* local seconds in this status */
	double time_offset;         /* server minus local time of the last series */
	double frequency_ratio;     /* d(sync)/d(local) in use, 1 while training */
	double drift;               /* frequency_ratio - 1 */
	double drift_uncertainty;   /* standard error of drift (drift_scale while training) */
	bool online;                /* false after a ping timed out, until a pong */
	double connection_duration; /* local seconds since online changed */
	double connection_timeout;  /* current pong timeout */
	double round_trip_min;      /* of the last series, server time excluded */
	double round_trip_mean;
	double round_trip_max;
	unsigned series;            /* series completed */
	unsigned entries;           /* series in the regression window */
	double offset_error;        /* one standard error of the sync time now,
				     * seconds; NAN before the first pong */
};

/* A plain value: copy it, no destroy needed. Fields are private. */
typedef struct tt_sync {
	tt_sync_options opt;
	tt_sync_status status;
	double status_since, connection_since;
	bool online;
	double timeout;
	uint32_t next_id, rng;
	bool inflight;        /* a ping is waiting for its pong */
	uint32_t inflight_id;
	double inflight_time; /* its clientTime */
	double due;           /* local time of the next tt_sync_ping */
	double series[TT_SYNC_MAX_SERIES][4]; /* clientSend, clientRecv, serverRecv, serverSend */
	unsigned series_n;
	double lt[TT_SYNC_MAX_ENTRIES][3];    /* t, T, noise per series, oldest at lt_head */
	unsigned lt_head, lt_n;
	unsigned n_series;
	double ramp_since; /* start of the ramp: first ping, or the last reset */
	bool fast;         /* this series is one of the ramp's */
	double drift_unc;
	double time_offset, rt_min, rt_mean, rt_max;
	double last_noise; /* variance of the last series' estimate */
	/* estimate E(t) = T0 + R (t - t0); shown S(t) = E(t) + correction c0
	 * spread from local time tu at slew_rate, a = S(tu) */
	bool have;
	double R, t0, T0, tu, a, c0;
} tt_sync;

/* Fill *out with the defaults. */
void tt_sync_options_default(tt_sync_options *out);

/* Initialise *s with opts (NULL: defaults), status TT_SYNC_NEW; the first
 * tt_sync_ping is due at once. Returns 0, or -TT_BAD_VALUE (codes of
 * common.h) when an option is out of range: series_len 0, series_len or
 * startup_series_len > TT_SYNC_MAX_SERIES, a negative or NaN time, delay
 * max < min, timeout 0 or max < initial, slew_rate >= 0.5; *s is then
 * zeroed. */
int tt_sync_init(tt_sync *s, const tt_sync_options *opts);

/* A rough estimate before any pong: the server's time server_time was current
 * at local time local (e.g. the HELLO result's time, read on arrival). Used,
 * and replaced at once, until the first pong; ignored after it. */
void tt_sync_hint(tt_sync *s, double server_time, double local);

/* Local time at which tt_sync_ping should be called next: the next ping of a
 * series, the end of a pause, or the timeout of the ping in flight. */
double tt_sync_next_ping_due(const tt_sync *s);

/* If a ping is due at local time now, register it and set *out_ping_id: the
 * caller sends [12, *out_ping_id, now] (the clientTime must be exactly now).
 * A ping still in flight counts as timed out (status offline, timeout
 * doubled). Returns 0 when a ping must be sent, -TT_NOT_READY when none is due
 * yet (nothing changes, *out_ping_id is 0). */
int tt_sync_ping(tt_sync *s, double now, uint32_t *out_ping_id);

/* Feed a PONG [69, ping_id, client_time, server_recv, server_send] received
 * at local time now. *out_report (may be NULL) is set to true when the report
 * changed (a series ended or the connection came back), false otherwise.
 * Returns 0 when it answered the ping in flight; -TT_BAD_REQUEST when it did
 * not (unknown or stale id, client_time not the one sent: ignored, e.g. a
 * heartbeat ping of the client's own); -TT_BAD_VALUE when the times are not
 * finite, server_send < server_recv or now < client_time (ignored). Nothing
 * changes on failure. */
int tt_sync_on_pong(tt_sync *s, uint32_t ping_id, double client_time, double server_recv,
		    double server_send, double now, bool *out_report);

/* The server's sync time at local time local: local itself before the first
 * pong, a provisional estimate from the pongs so far during the first series
 * (it may step either way), then the estimate. Non-decreasing in local once
 * the first series has ended, also across estimate updates as long as the
 * local times passed to the other calls do not decrease. */
double tt_sync_time(const tt_sync *s, double local);

/* Inverse of tt_sync_time: the local time at which the sync clock reads
 * sync_time (exact, the smoothing included). */
double tt_sync_local_time(const tt_sync *s, double sync_time);

/* Scheduling an event at sync time `at` (a scheduled set, a note): true when
 * it is due at local time now, i.e. tt_sync_time(s, now) >= at; false
 * otherwise, with *out_wait (may be NULL) set to the local seconds left
 * (> 0, at least 1 µs, so a caller never spins on a zero wait). Timers wake
 * early as well as late (poll/epoll round to milliseconds, lws timers to the
 * service loop): sleep *out_wait or less, then ask again, and fire only on
 * true; the event then never runs before `at` on this estimate of the
 * server's clock. For sub-millisecond precision, sleep *out_wait minus a
 * millisecond or two and then nanosleep the rest. *out_wait is 0 when due;
 * a NaN `at` is due at once, +inf never (*out_wait inf). */
bool tt_sync_due(const tt_sync *s, double at, double now, double *out_wait);

/* Fill *out with the report at local time now. */
void tt_sync_report(const tt_sync *s, double now, struct tt_sync_report *out);

/* "new", "startup", "training", "sync". */
const char *tt_sync_status_name(tt_sync_status status);

#endif
