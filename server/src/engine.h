/* SPDX-License-Identifier: MIT */
/* engine.h: the store of record behind db.h, when it is not SQLite.
 *
 * The model puts rows during a loop turn (db.h); db.c keeps them in an op
 * log whatever the engine, and at the end of the turn hands the whole log
 * to the engine. SQLite (db.c itself, the default) writes it in one
 * transaction before the turn's replies go. Another engine (engine_nats.c:
 * NATS JetStream, `--engine nats://...`) may write it asynchronously: its
 * commit answers TT_DB_PENDING, and the turn's batch of replies is released
 * later, once the engine says the batch is durable (tt_db_poll). So the rule
 * stays "nothing leaves before the change it reports is durable" (turn.h),
 * with the engine's acknowledgement standing for SQLite's COMMIT.
 *
 * An engine's callbacks run on the network loop only: an engine whose
 * library calls back on threads of its own (libnats) queues what arrives
 * and wakes the loop with tt_engine_wake (lws_cancel_service), and handles
 * it in its poll. The server stays single-threaded.
 *
 * Reading back is the same for every engine: the rows go through the
 * loader (restore.c) at start. */
#ifndef TT_ENGINE_H
#define TT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "config.h"
#include "db.h"
#include "value.h"

/* One row of the op log, decoded (tt_engine_op_next). Pointers point into
 * the log and live until the commit returns. */
typedef enum tt_op_kind {
	TT_OP_META = 1, TT_OP_CLASS_PUT, TT_OP_CLASS_DEL, TT_OP_STATE_PUT, TT_OP_STATE_DEL,
	TT_OP_EVENT, TT_OP_EVENT_TRIM, TT_OP_SESSION_PUT, TT_OP_SESSION_GONE, TT_OP_SESSION_DEL,
	TT_OP_INSTANCE_PUT, TT_OP_INSTANCE_DEL, TT_OP_OBSERVE_PUT, TT_OP_OBSERVE_DEL,
	TT_OP_SCHED_PUT, TT_OP_SCHED_DEL, TT_OP_META_TEXT, TT_OP_TAG_EVENT, TT_OP_TAG_SCHED
} tt_op_kind;

typedef struct tt_op {
	tt_op_kind kind;
	uint64_t id;          /* the row's key: state, session, instance, schedule */
	const char *key;      /* META*: the key; CLASS_*: the name; STATE_DEL: the
			       * reason; SESSION_PUT: the token digest (hex);
			       * OBSERVE_*: the class (NULL: every class) */
	size_t key_len;
	const void *bytes;    /* META_TEXT: the value; CLASS_PUT: the description;
			       * SESSION_PUT: the role; INSTANCE_PUT: the filter */
	size_t len;
	double value;         /* META: the value; SESSION_GONE: gone_at;
			       * SESSION_DEL: 1 when the operator ended it */
	uint64_t session, state; /* INSTANCE_PUT; TRIM, TAG_*: state (upto, seq or
				  * schedule in id) */
	uint64_t rid, sched;  /* TAG_*: the request answered; TAG_EVENT: the schedule
			       * applied; TAG_SCHED: the cancelling session */
	uint32_t node;        /* TAG_*: the node that forwarded the request */
	tt_db_state_row st;   /* STATE_PUT */
	tt_db_event_row ev;   /* EVENT */
	tt_db_sched_row sc;   /* SCHED_PUT */
} tt_op;

/* The next row of the log [*p, end) into op; false at the end. */
bool tt_engine_op_next(const unsigned char **p, const unsigned char *end, tt_op *op);

/* What an engine that serves several nodes hands on as it reads the
 * stream: another node's messages, to be applied to this node's copy and
 * told to its clients (cluster.c provides it; server.c gives it before the
 * engine opens, so that the engine calls nothing above it). */
typedef struct tt_engine_sink {
	void (*state)(uint64_t id, const tt_value *m);
	/* kicked: ended by the operator (its connection, if here, gets 4005) */
	void (*session)(uint64_t id, bool ended, bool kicked, const char *digest,
			const char *role, uint32_t node, double gone);
	void (*klass)(const char *name, bool deleted, const void *desc, size_t len);
	/* a state read again after a fence: its last message m, and the events
	 * of the retained messages (msgpack items [seq, time, origin, changes], n) */
	void (*reset)(uint64_t id, const tt_value *m, const void *hist, size_t len, uint32_t n);
	void (*session_fenced)(uint64_t id); /* this node's record of it was fenced */
	void (*rpc)(const void *data, size_t len); /* a message of another node */
	void (*progress)(void); /* the node read further */
	void (*tick)(void);     /* once a second */
} tt_engine_sink;

/* Set the sink (NULL: none, what a single node has). */
void tt_engine_set_sink(const tt_engine_sink *sink);

typedef struct tt_engine {
	const char *name;
	/* Connect, restore through ld (rows in the loader's order, db.h).
	 * 0, or a negative code with err saying why (nothing stays open). */
	int (*open)(const tt_config *cfg, const tt_db_loader *ld, tt_error *err);
	/* Take the op log [ops, ops + len) of batch (tt_client_batch). 0: it is
	 * durable already (and so is every batch before); TT_DB_PENDING: the
	 * engine says when (poll). Never fails: what cannot be written now is
	 * retried, and tt_engine_failing says why meanwhile. */
	int (*commit)(const unsigned char *ops, size_t len, uint64_t batch);
	/* On the loop: handle what the engine's threads queued. Returns true
	 * when something happened; *durable: the last batch now durable with
	 * every batch before it (0: no news); *fenced: the first batch of which
	 * a message was refused because another writer appended to its subject
	 * first (0: none): that batch's replies acknowledge changes that are
	 * not stored. */
	bool (*poll)(uint64_t *durable, uint64_t *fenced);
	/* Batches taken but not durable yet. */
	bool (*pending)(void);
	/* Block until every batch taken is durable, or timeout seconds: 0 or
	 * -TT_STORAGE (start-up, a clean stop, operator commands). */
	int (*wait)(double timeout);
	/* Once a second (retries, the engine's own housekeeping). */
	void (*tick)(void);
	/* Rows waiting past the engine's memory budget. */
	bool (*backlog_full)(void);
	/* Close without writing anything more. */
	void (*close)(void);
} tt_engine;

/* NATS JetStream (engine_nats.c). */
extern const tt_engine tt_engine_nats;

/* The engine of `--engine URL` (NULL: none known for that scheme). */
const tt_engine *tt_engine_for(const char *url);

/* For engines: the storage fails (reason for clients, what with details for
 * the log, said once), or works again (reason NULL). */
void tt_engine_failing(const char *reason, const char *what);

/* ---- several nodes on one engine (engine_nats.c; used by cluster.c) ---- */

/* This node's number (0: no engine of several nodes). */
uint32_t tt_engine_node(void);
/* Whether node n beats (its heartbeat is fresh; this node always). */
bool tt_engine_alive(uint32_t n);
/* The node that wrote the last message of state id (0: none yet). */
uint32_t tt_engine_writer(uint64_t state);
/* This node has writes of state id not acknowledged yet. */
bool tt_engine_unsettled(uint64_t state);
/* A message to node n (at most once: lost with a connection). */
void tt_engine_send(uint32_t n, const void *data, size_t len);
/* The stream's last message now (asks JetStream, a round trip; 0 on
 * failure), and the last one this node has read. */
uint64_t tt_engine_position(void);
uint64_t tt_engine_read(void);
/* The instances and observes of session id's record, through ld
 * (instance, observe) as at start; false when the engine has no record. */
bool tt_engine_session_rows(uint64_t id, const tt_db_loader *ld, tt_error *err);
/* The node holding session id by its record (0: none). */
uint32_t tt_engine_session_node(uint64_t id);
/* Read state id again from the stream (after a fence): its messages after
 * stream seq `after`, through cluster.c as another node's. */
void tt_engine_reread(uint64_t state);

/* Thread-safe: wake the network loop so that it polls the engine (set by
 * the network layer; a no-op until it runs). */
void tt_engine_set_waker(void (*wake)(void));
void tt_engine_wake(void);

#endif
