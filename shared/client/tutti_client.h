/* SPDX-License-Identifier: MIT */
/* tutti_client.h: libtutti-client, the native C client of tutti. It speaks
 * the wire protocol of shared/PROTOCOL.md over ws:// or wss://, resumes its
 * session after a lost connection, validates sets locally with the server's
 * own schema code (shared/schema.c), applies scheduled sets at their sync
 * time, and estimates the server's sync clock (shared/sync.c).
 *
 * THREADING MODEL. The library starts no thread unless asked and takes no
 * lock on its hot path. A client has one *service thread* at a time:
 *   - in your own loop: call tt_client_service(c, timeout_ms) regularly (a
 *     GUI timer, a game loop, the main loop of a tool); it runs the network
 *     and the timers and calls your callbacks, then returns. Call it at
 *     least every few ms if scheduled callbacks must be on time;
 *   - or on its own thread: tt_client_start(c) runs that loop on a thread
 *     of the library; your callbacks then run on that thread.
 * Every function of this header must be called on the service thread (or
 * from a callback, which runs there), EXCEPT the ones marked [any thread]
 * and [audio safe]. To act from another thread, hand a function to
 * tt_client_post(): it runs on the service thread at its next turn. Why:
 * one owner, no lock around the state cache, so callbacks may call the API
 * freely and nothing an audio app does can deadlock against the network.
 *
 * AUDIO CALLBACKS. Only the functions marked [audio safe] may be called
 * from a real-time audio callback: tt_clock_sync_time, tt_clock_local_time
 * and tt_clock_now. They read a copy of the clock estimate that the service
 * thread publishes after each change: wait-free for readers, no lock, no
 * allocation, no system call but clock_gettime (vDSO). Nothing else is: the
 * state cache belongs to the service thread; an audio app copies the values
 * it needs from its update callbacks into its own atomics or ring buffer.
 *
 * TIME. Local time is CLOCK_MONOTONIC in seconds (tt_clock_now). Sync time
 * is the server's clock (PROTOCOL.md §10): seconds, the same on every
 * client. The `time` of an update is a sync time; tt_clock_local_time turns
 * it into this machine's monotonic clock.
 *
 * ERRORS. Fallible functions return 0 or -code, where code is a wire code
 * of common.h (TT_BAD_VALUE...) or one of the client codes below, and fill
 * *err (may be NULL) with the code and a message naming class, param and
 * value. Replies from the server arrive in a tt_reply (code 0 on success).
 *
 * VALUES are tt_value trees (shared/value.h): maps of param names to values.
 * Trees passed to callbacks are valid during the callback only; copy what
 * you keep (tt_value_copy into your own arena). */
#ifndef TUTTI_CLIENT_H
#define TUTTI_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "arena.h"
#include "common.h"
#include "schema.h"
#include "value.h"

/* Client-side codes: never sent by the server (whose codes are below 100). */
enum {
	TT_DISCONNECTED = 100, /* the connection dropped before the reply */
	TT_TIMEOUT = 101,      /* no reply within the request timeout */
	TT_DETACHED = 102,     /* the instance is detached or its state deleted */
	TT_CLOSED = 103,       /* the client was stopped or destroyed */
	TT_USAGE = 104         /* a bad argument (NULL, empty name, wrong thread) */
};

/* Name of a wire or client code ("BAD_VALUE", "DISCONNECTED"...). */
const char *tt_client_code_name(int code);

typedef struct tt_client tt_client;
typedef struct tt_state tt_state; /* one attachment (instance) of a state */
typedef struct tt_clock tt_clock; /* the published clock, see tt_client_clock */

/* Connection status, reported to on_status. */
typedef enum tt_status {
	TT_STATUS_IDLE,         /* before tt_client_connect */
	TT_STATUS_CONNECTING,   /* first connection under way */
	TT_STATUS_OPEN,         /* session established (HELLO answered) */
	TT_STATUS_RECONNECTING, /* the connection dropped; retrying with backoff */
	TT_STATUS_CLOSED        /* tt_client_close or a refused HELLO: for good */
} tt_status;

/* What an update listener is told about the update. */
typedef enum tt_source {
	TT_SRC_UPDATE,    /* another client's set, pushed by the server */
	TT_SRC_SET,       /* the reply to this client's own set */
	TT_SRC_LOCAL,     /* a `local` param set through this client */
	TT_SRC_SNAPSHOT,  /* catching up after a resume (missed updates left the history) */
	TT_SRC_SCHEDULED  /* a scheduled set reaching its time, on our sync clock */
} tt_source;

typedef struct tt_update_info {
	uint64_t state_id;
	uint64_t seq;       /* the state's seq after the update (0 for a scheduled
			     * set applied ahead of the server's UPDATE) */
	double time;        /* sync time of the update (`at` for a scheduled set) */
	tt_source source;
	uint64_t sched_id;  /* the schedule, for TT_SRC_SCHEDULED and a late UPDATE; else 0 */
} tt_update_info;

/* Reply to a request. code 0: result is the RESULT value (nil for DETACH,
 * DELETE); state is the new instance for attach/create. Otherwise code and
 * message say why, and nothing was applied. */
typedef struct tt_reply {
	int code;
	const char *message;   /* "" on success */
	const tt_value *result;
	tt_state *state;
} tt_reply;
typedef void (*tt_reply_fn)(tt_client *c, const tt_reply *r, void *user);

typedef struct tt_client_opts {
	const char *url;           /* ws://host:port/path or wss://...; required */
	bool insecure;             /* wss: accept self-signed and mismatching certificates */
	const char *ca_file;       /* wss: PEM bundle to verify the server with (NULL: system's) */
	double request_timeout;    /* seconds before a request fails with TT_TIMEOUT (30; <0: never) */
	double heartbeat;          /* seconds of silence before a liveness PING (5); 3x that
				    * without any message drops the connection and resumes */
	double backoff_min, backoff_max; /* reconnection delays, seconds (0.25, 8) */
	bool no_reconnect;         /* fail for good instead of reconnecting */
	uint32_t max_message;      /* largest message accepted from the server (64 MiB) */
	bool validate;             /* validate sets locally first (set true by tt_client_opts_init) */
	bool sync_reports;         /* tell the server how well the clock follows (SYNC_REPORT
				    * after a series, at most once a second: what the operator's
				    * inspector shows; set true by tt_client_opts_init) */
	/* Callbacks (any may be NULL), all on the service thread. */
	void (*on_status)(tt_client *c, tt_status status, void *user);
	/* A session was established: resumed is true when the previous one was
	 * resumed (instances and observes kept), false for a fresh session (the
	 * old instances got on_detach "session lost"; observes are renewed). */
	void (*on_open)(tt_client *c, bool resumed, void *user);
	/* The clock estimate changed (a series of pings ended). */
	void (*on_clock)(tt_client *c, void *user);
	/* Diagnostics: connection errors, server errors without a request. */
	void (*on_log)(tt_client *c, const char *line, void *user);
	void *user;
} tt_client_opts;

/* Fill *o with the defaults above (url NULL). */
void tt_client_opts_init(tt_client_opts *o);

/* Create a client (no I/O yet). opts is copied (strings too). Returns 0 and
 * *out, or -TT_USAGE with err for a bad url or option. */
int tt_client_new(const tt_client_opts *opts, tt_client **out, tt_error *err);
/* Close the connection, fail pending requests with TT_CLOSED (their reply
 * callbacks run), fire on_detach for every instance, stop the thread if
 * started, free everything. Accepts NULL. Not from a callback. */
void tt_client_free(tt_client *c);

/* Start connecting (HELLO follows); returns at once. */
int tt_client_connect(tt_client *c, tt_error *err);
/* Stop for good: status CLOSED, pending requests fail with TT_CLOSED. */
void tt_client_close(tt_client *c);
tt_status tt_client_status(const tt_client *c);
/* Session id (0 before the first HELLO reply). */
uint64_t tt_client_session(const tt_client *c);

/* Run the network and timers: wait at most timeout_ms for something to do
 * (0: do what is ready and return), call the callbacks, return. Returns 0,
 * or -TT_CLOSED once closed. Own loop only (not with tt_client_start). */
int tt_client_service(tt_client *c, int timeout_ms);
/* Run the service loop on a thread of the library until tt_client_stop or
 * tt_client_free. [any thread] */
int tt_client_start(tt_client *c, tt_error *err);
/* Stop and join the thread of tt_client_start (not from that thread).
 * Afterwards the calling thread may service the client. [any thread] */
void tt_client_stop(tt_client *c);
/* Run fn(c, user) on the service thread at its next turn; wakes it.
 * Returns 0, or -TT_CLOSED after tt_client_free began. [any thread] */
int tt_client_post(tt_client *c, void (*fn)(tt_client *c, void *user), void *user);

/* Blocking helper for tools and tests (own loop only): pass tt_wait_done
 * and a tt_wait as a request's callback and user, then tt_client_wait. */
typedef struct tt_wait {
	bool done;
	int code;
	char message[256];
	tt_value result;   /* deep copy in arena */
	tt_state *state;
	tt_arena arena;
} tt_wait;
void tt_wait_init(tt_wait *w);
void tt_wait_done(tt_client *c, const tt_reply *r, void *user);
/* Service until w is done or timeout seconds passed (<0: no limit).
 * Returns 0 on success, -w->code when the request failed (w->message says
 * why), or -TT_TIMEOUT (the request then no longer refers to w, which may
 * be freed; its reply is dropped). Not from a callback, nor with
 * tt_client_start. A tt_wait passed to a request must stay alive until
 * tt_client_wait returned for it. */
int tt_client_wait(tt_client *c, tt_wait *w, double timeout);
void tt_wait_free(tt_wait *w); /* accepts a tt_wait only initialised */

/* ---- requests: each returns 0 once queued (the reply comes later, also
 * for a connection that is not open yet), or -code at once for a local
 * error (bad argument, invalid value). done may be NULL. ---- */

/* DEFINE a class: description is a map {param: {type, default, ...}},
 * checked locally with the server's code first. result {defined: bool}. */
int tt_client_define(tt_client *c, const char *class_name, const tt_value *description,
		     tt_reply_fn done, void *user, tt_error *err);
/* DESCRIBE: result is the expanded description. */
int tt_client_describe(tt_client *c, const char *class_name, tt_reply_fn done, void *user,
		       tt_error *err);

typedef struct tt_attach_opts {
	const char *const *filter; /* NULL, or n_filter param names: only these are seen and set */
	uint32_t n_filter;
	uint32_t history;          /* also return the last `history` events (0: none) */
	bool since_set;            /* also return every event with seq > since */
	uint64_t since;
	void (*on_update)(tt_state *s, const tt_value *changes, const tt_value *old,
			  const tt_update_info *info, void *user);
	/* Advance notice of a scheduled set (PROTOCOL.md §6a): changes apply at
	 * sync time `at`; on_update fires then (TT_SRC_SCHEDULED). */
	void (*on_scheduled)(tt_state *s, uint64_t sched_id, double at, const tt_value *changes,
			     void *user);
	/* The instance is gone: "detached", "deleted", "owner left", "class
	 * deleted", "session lost", "closed". The tt_state is freed when this
	 * returns (also when on_detach is NULL). */
	void (*on_detach)(tt_state *s, const char *reason, void *user);
	void *user;
} tt_attach_opts;

/* CREATE a state owned by this session with init_values (a map, or NULL).
 * reply->state is the owner's instance. opts: callbacks only (filter and
 * history are ignored). */
int tt_client_create(tt_client *c, const char *class_name, const tt_value *init_values,
		     const tt_attach_opts *opts, tt_reply_fn done, void *user, tt_error *err);
/* ATTACH to state state_id of class_name (state_id 0: the oldest state of
 * the class). reply->state is the instance; with history/since,
 * reply->result holds "history" and "historyComplete". */
int tt_client_attach(tt_client *c, const char *class_name, uint64_t state_id,
		     const tt_attach_opts *opts, tt_reply_fn done, void *user, tt_error *err);

/* OBSERVE the states of a class (NULL: of every class): on_notice runs for
 * each existing state ("create"), then for each state created or deleted.
 * After a session is lost, the observe is renewed and existing states are
 * told again. */
typedef void (*tt_notice_fn)(tt_client *c, const char *kind, const char *class_name,
			     uint64_t state_id, uint64_t owner, void *user);
int tt_client_observe(tt_client *c, const char *class_name, tt_notice_fn on_notice,
		      void *notice_user, tt_reply_fn done, void *user, tt_error *err);

/* ---- instances ---- */

/* SET: updates is a map {param: value}. Validated and coerced locally
 * (unknown, filtered, local-only, wrong type: error at once, nothing sent);
 * `local` params are applied here only. at: a sync time for a scheduled
 * set (PROTOCOL.md §6a), or a negative number / NaN for at once. The reply
 * result is {seq, time, changes}, or {scheduled, at, changes}. */
int tt_state_set(tt_state *s, const tt_value *updates, double at, tt_reply_fn done, void *user,
		 tt_error *err);
/* Shorthands for one param, at once. */
int tt_state_set_float(tt_state *s, const char *param, double v, tt_error *err);
int tt_state_set_int(tt_state *s, const char *param, int64_t v, tt_error *err);
int tt_state_set_bool(tt_state *s, const char *param, bool v, tt_error *err);
int tt_state_set_str(tt_state *s, const char *param, const char *v, tt_error *err);

/* Current value of a param (NULL when unknown or outside the filter). Valid
 * until the next update of that param or the service loop's next turn. */
const tt_value *tt_state_get(const tt_state *s, const char *param);
/* Number and name of the params visible to this instance (declared order). */
uint32_t tt_state_param_count(const tt_state *s);
const char *tt_state_param_name(const tt_state *s, uint32_t i);
/* Type of a param: "boolean", "integer", ... or NULL. */
const char *tt_state_param_type(const tt_state *s, const char *param);
/* The param's description from shared/schema.h (type, min, max, list...),
 * or NULL: lets a tool parse text for the param the way the class wants. */
const struct tt_param *tt_state_param(const tt_state *s, const char *param);

tt_client *tt_state_client(const tt_state *s);
uint64_t tt_state_id(const tt_state *s);
uint64_t tt_state_instance(const tt_state *s);
const char *tt_state_class(const tt_state *s);
uint64_t tt_state_owner(const tt_state *s);
uint64_t tt_state_seq(const tt_state *s);
double tt_state_time(const tt_state *s);
bool tt_state_is_owner(const tt_state *s);
void *tt_state_user(const tt_state *s);

/* HISTORY: last > 0 for the last events, else every event after since.
 * result {events: [{seq, time, changes, origin}], complete}. */
int tt_state_history(tt_state *s, uint32_t last, uint64_t since, tt_reply_fn done, void *user,
		     tt_error *err);
/* DETACH (the owner's instance: DELETE, as in soundworks). on_detach runs
 * at once with "detached" and the instance is freed; done gets the reply. */
int tt_state_detach(tt_state *s, tt_reply_fn done, void *user, tt_error *err);
/* DELETE the state (owner only): every instance gets on_detach "deleted". */
int tt_state_delete(tt_state *s, tt_reply_fn done, void *user, tt_error *err);

/* ---- the sync clock ---- */

/* The client's published clock: valid until tt_client_free. [any thread] */
const tt_clock *tt_client_clock(const tt_client *c);
/* This machine's monotonic clock, seconds. [audio safe] */
double tt_clock_now(void);
/* Sync time at local time local (tt_clock_now() for now). Before the first
 * estimate it returns local itself. [audio safe] */
double tt_clock_sync_time(const tt_clock *k, double local);
/* Local time at which the sync clock reads sync_time. [audio safe] */
double tt_clock_local_time(const tt_clock *k, double sync_time);
/* True once a first series of pings ended (until then the estimate comes
 * from the HELLO reply or a few pongs and may step). [audio safe] */
bool tt_clock_ready(const tt_clock *k);

/* The estimator's report (shared/sync.h), at local time now. */
typedef struct tt_clock_report {
	const char *status;       /* "new", "startup", "training", "sync" */
	double sync_time;         /* now, on the sync clock */
	double local_time;        /* now, on this machine's monotonic clock */
	double offset;            /* server minus local, from the last series */
	double drift;             /* frequency ratio minus 1 */
	double round_trip_min, round_trip_mean, round_trip_max; /* seconds */
	bool online;
	unsigned series;          /* series of pings completed */
} tt_clock_report;
void tt_client_clock_report(tt_client *c, tt_clock_report *out);

#ifdef __cplusplus
}
#endif

#endif
