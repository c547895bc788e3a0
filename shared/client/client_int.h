/* SPDX-License-Identifier: MIT */
/* client_int.h: what the parts of libtutti-client share and users do not
 * see. client.c is the protocol (requests, the state cache, schedules,
 * resume), with no I/O; transport.c is the only file that knows
 * libwebsockets; clock.c publishes the sync clock to other threads. The
 * protocol side is driven by the tt_core_* calls below, which the transport
 * makes on the service thread, and the fuzz target makes directly. */
#ifndef TT_CLIENT_INT_H
#define TT_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "buf.h"
#include "codec.h"
#include "schema.h"
#include "sync.h"
#include "tutti_client.h"

/* Heartbeat pings use ids below the estimator's (TT_SYNC ping_id_base). */
#define TT_PING_ID_SYNC_BASE (UINT32_C(1) << 30)

/* ---- clock.c: the published clock ---------------------------------- */

#define TT_CLOCK_SLOTS 4
struct tt_clock {
	/* Copies of the estimator. The service thread writes a slot that is
	 * neither current nor being read, then makes it current; a reader pins
	 * the current slot with its counter and checks it is still current. */
	tt_sync slot[TT_CLOCK_SLOTS];
	atomic_uint cur;
	atomic_uint readers[TT_CLOCK_SLOTS];
	atomic_bool ready;
	bool dirty; /* service thread: a publish is owed (every slot was pinned) */
};
void tt_clock_init(tt_clock *k, const tt_sync *s);
/* Service thread: publish s (false when every other slot is being read;
 * retried by the next call). */
bool tt_clock_publish(tt_clock *k, const tt_sync *s, bool ready);

/* ---- client.c: the protocol ----------------------------------------- */

typedef struct tt_rec tt_rec;
typedef struct tt_req tt_req;
typedef struct tt_sched tt_sched;
typedef struct tt_obs tt_obs;
typedef struct tt_post tt_post;

struct tt_state {
	tt_client *c;
	tt_rec *rec;
	uint64_t instance;
	bool owner;
	bool gone;          /* on_detach ran; freed by the next reap */
	bool *visible;      /* per param of the class: inside the filter */
	tt_attach_opts o;   /* callbacks and user (filter not kept) */
	tt_state *next;     /* in rec->instances, or in the graveyard */
};

struct tt_sched {
	uint64_t id;
	double at;           /* sync time */
	bool applied;        /* applied locally at `at` */
	double forget_at;    /* local time: drop an applied entry the server never confirmed */
	tt_value changes;    /* in arena */
	tt_arena arena;
	tt_sched *next;
};

struct tt_rec {
	uint64_t id;
	char *class_name;
	tt_class *cls;      /* from the description of the ATTACH/CREATE result */
	uint64_t owner;
	uint64_t seq;
	double time;
	tt_value *vals;     /* per param */
	tt_arena *val_arena; /* per param: holds vals[i] */
	tt_state *instances;
	tt_sched *scheds;
	bool gone;
	tt_rec *next;
};

struct tt_obs {
	char *class_name;   /* NULL: every class */
	tt_notice_fn fn;
	void *user;
	bool active;        /* its OBSERVE was answered */
	bool dead;          /* its OBSERVE failed: freed by the next reap */
	tt_obs *next;
};

struct tt_post {
	void (*fn)(tt_client *c, void *user);
	void *user;
	tt_post *next;
};

struct tt_client {
	tt_client_opts o;
	char *url, *ca_file;
	/* parsed url */
	char *host, *path;
	int port;
	bool tls;

	tt_status status;
	bool ever_open;
	uint64_t session;
	char *token;
	uint32_t server_max_message;

	/* requests: sent ones await their reply in order; unsent ones wait for
	 * the session to be open */
	tt_req *sent, *sent_tail;
	tt_req *unsent, *unsent_tail;
	uint32_t next_req;

	tt_rec *recs;
	tt_obs *obs;
	tt_state *graveyard;
	tt_rec *rec_graveyard;

	/* the connection */
	bool connected;     /* WebSocket established */
	bool hello_done;    /* this connection's HELLO answered */
	double last_recv;   /* local time of the last message */
	double reconnect_at; /* local time of the next attempt (INFINITY: none) */
	unsigned attempt;
	uint32_t heartbeat_id;
	bool heartbeat_out;
	bool sync_report_due;  /* a series ended since the last SYNC_REPORT */
	double sync_report_at; /* local time of the last one */
	/* outgoing bytes, whole messages, lengths in out_len[out_head..] */
	tt_buf out;
	size_t out_off;     /* bytes of out already written */
	uint32_t *out_len;
	size_t out_n, out_head, out_cap;

	/* decoding */
	tt_decoder *dec;
	tt_arena msg_arena;  /* the message being dispatched */
	tt_arena scratch;    /* per message: old values, coerced sets */
	int depth;           /* >0 while callbacks run: no nested service */

	/* clock */
	tt_sync sync;
	tt_clock *clock;

	/* cross-thread: posts and the own thread */
	pthread_mutex_t post_lock;
	tt_post *posts, *posts_tail;
	atomic_bool freeing;
	pthread_t thread;
	bool thread_running;
	atomic_bool thread_stop;

	struct tt_transport *tr;
};

/* A client without a network (c->tr NULL): the fuzz target drives it
 * with the tt_core_* calls below; output piles up in c->out. */
int tt_client_new_detached(const tt_client_opts *opts, tt_client **out, tt_error *err);

/* Called by the transport, on the service thread. */
void tt_core_on_open(tt_client *c);
void tt_core_on_message(tt_client *c, const void *data, size_t len);
void tt_core_on_closed(tt_client *c, int code, const char *why);
/* Run what is due at local time now; return the local time of the next
 * deadline (INFINITY: none). */
double tt_core_timers(tt_client *c, double now);
/* Run the functions posted from other threads. */
void tt_core_run_posts(tt_client *c);
/* Free instances and records whose callbacks have run. */
void tt_core_reap(tt_client *c);
/* Bytes waiting to be written, and taking them: at most max bytes of whole
 * messages (at least one message, whatever its size). */
bool tt_core_has_output(const tt_client *c);
size_t tt_core_take_output(tt_client *c, size_t max, const unsigned char **out);
void tt_core_log(tt_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- transport.c: libwebsockets ------------------------------------- */

int tt_transport_new(tt_client *c, tt_error *err);
void tt_transport_free(tt_client *c);
/* Start a connection attempt; its outcome comes as tt_core_on_open or
 * tt_core_on_closed. */
void tt_transport_open(tt_client *c);
/* Drop the connection at once (no closing handshake: it is dead). */
void tt_transport_drop(tt_client *c);
/* Close with 1000 (a clean goodbye: the server ends the session at once
 * instead of keeping it for resume). */
void tt_transport_goodbye(tt_client *c);
/* Output or timers changed: make the service thread look (any thread). */
void tt_transport_kick(tt_client *c);
int tt_transport_service(tt_client *c, int timeout_ms);
int tt_transport_start(tt_client *c, tt_error *err);
void tt_transport_stop(tt_client *c);

#endif
