/* SPDX-License-Identifier: MIT */
/* store.h: the authoritative state of the server: classes, states, instances
 * (attachments), observes, and the update path. An update goes
 * handler.c (decoded request) -> tt_store_set (validate, apply, encode once,
 * fan out to every subscriber's queue) -> client.c (queue) -> ws.c (write).
 *
 * Store operations answer the requester themselves (RESULT) and return 0,
 * or return -code with err filled so the caller answers with an ERROR; on
 * error nothing was changed and nothing was sent. Single-threaded: called
 * from the network loop only. */
#ifndef TT_STORE_H
#define TT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "common.h"
#include "config.h"
#include "history.h"
#include "schema.h"
#include "session.h"
#include "value.h"

/* Which params an instance may see: bit i = param i. */
typedef struct tt_mask {
	uint64_t w[TT_MAX_PARAMS / 64];
} tt_mask;

static inline bool tt_mask_has(const tt_mask *m, uint32_t i)
{
	return (m->w[i / 64] >> (i % 64)) & 1u;
}

static inline void tt_mask_set(tt_mask *m, uint32_t i)
{
	m->w[i / 64] |= (uint64_t)1 << (i % 64);
}

typedef struct tt_state tt_state;
typedef struct tt_sched tt_sched;

struct tt_class_entry {
	tt_class *cls;            /* owned */
	tt_state *first, *last;   /* the class's states, oldest first */
	uint32_t n_states;
	tt_class_entry *next;
};

/* A stored value: STR and RAW (`any`, canonical msgpack) bytes are owned. */
typedef struct tt_slot {
	tt_value v;
	char *mem;     /* owned buffer behind v.v.s for STR/RAW */
	uint32_t cap;
} tt_slot;

/* One session's subscription to a state: union of its instances' filters. */
typedef struct tt_sub {
	tt_session *session; /* borrowed */
	uint32_t n_all;      /* instances without a filter */
	uint32_t n_inst;
	tt_mask mask;        /* union of filtered instances */
} tt_sub;

struct tt_state {
	uint64_t id;
	tt_class_entry *ce;  /* borrowed */
	uint64_t owner;      /* session id, 0 = the server */
	uint64_t seq;
	double time;         /* sync time of the last applied update */
	tt_slot *slots;      /* owned, one per param */
	tt_sub *subs;        /* owned array */
	uint32_t n_subs, cap_subs;
	tt_instance *instances; /* list through st_next */
	tt_history hist;
	tt_state *next, *prev;   /* all states, creation order */
	tt_state *cnext, *cprev; /* states of the class */
	bool dirty;              /* values to persist at the next commit */
	tt_state *dirty_next;
	uint64_t db_trimmed;     /* events with seq <= this are trimmed on disk */
	uint32_t n_sched;        /* pending scheduled sets */
};

struct tt_instance {
	uint64_t id;
	tt_state *state;      /* borrowed */
	tt_session *session;  /* borrowed */
	bool filtered;
	tt_mask mask;
	uint32_t sub;         /* index of its session's sub in state->subs */
	tt_instance *s_next, *s_prev;   /* session's instances */
	tt_instance *st_next, *st_prev; /* state's instances */
};

int tt_store_init(const tt_config *cfg);
void tt_store_destroy(void);

/* Load every *.json of dir (sorted by name). A file is
 * {"class": NAME, "description": {...}, "server": bool}; with server true
 * the server creates and owns one state of the class, unless one already
 * exists. Returns -code with err naming the file on the first bad file. */
int tt_store_load_schemas(const char *dir, tt_error *err);

/* Define a class (schema file or DEFINE). *out_new says whether it is new
 * (false: an identical class existed). */
int tt_store_define(const char *name, size_t len, const tt_value *desc, bool *out_new,
		    tt_error *err);
tt_class_entry *tt_store_class(const char *name, size_t len);

/* Requests, answered with a RESULT to c on success. */
int tt_store_describe(tt_client *c, uint64_t rid, const tt_value *cls, tt_error *err);
int tt_store_create(tt_client *c, uint64_t rid, const tt_value *cls, tt_value *init, tt_error *err);
int tt_store_attach(tt_client *c, uint64_t rid, const tt_value *cls, const tt_value *state_id,
		    const tt_value *opts, tt_error *err);
int tt_store_detach(tt_client *c, uint64_t rid, uint64_t instance, tt_error *err);
int tt_store_delete(tt_client *c, uint64_t rid, uint64_t instance, tt_error *err);
/* opts: nil or {at: sync time} (PROTOCOL.md §6a). */
int tt_store_set(tt_client *c, uint64_t rid, uint64_t instance, tt_value *updates,
		 const tt_value *opts, tt_error *err);
/* Sync time of the earliest pending scheduled set, or -1 when none. */
double tt_store_next_schedule(void);
/* Apply every scheduled set due at sync time now. */
void tt_store_run_schedules(double now);
int tt_store_observe(tt_client *c, uint64_t rid, const tt_value *cls, bool on, tt_error *err);
int tt_store_history(tt_client *c, uint64_t rid, uint64_t instance, const tt_value *opts,
		     tt_error *err);

/* A resumed session's connection is back: push what it missed. seqs maps
 * state id -> last seq seen (may be NULL). */
void tt_store_resume(tt_session *s, const tt_value *seqs);
/* The session's connection closed; it ends now or after the resume window. */
void tt_store_session_gone(tt_session *s);
/* End a session: delete its owned states, detach its instances, free it. */
void tt_store_session_end(tt_session *s);
/* Periodic: end sessions whose resume window passed. */
void tt_store_tick(void);
/* Operator: delete a class and its states. Returns -TT_UNKNOWN_CLASS. */
int tt_store_delete_class(const char *name, tt_error *err);

/* End of a loop turn: make the turn's changes durable, then release the
 * turn's outgoing messages. Returns 0, or -TT_INTERNAL when the commit
 * failed (the server then stops: it cannot keep its promise). */
int tt_store_commit(void);

/* Restore from the database at start (db.c). Values, filters and
 * changes are trees/bytes as stored; a value that no longer fits its class
 * falls back to the default with a warning. */
int tt_store_restore_state(uint64_t id, const char *cls, size_t cls_len, uint64_t owner,
			   uint64_t seq, double time, tt_value *values, tt_error *err);
void tt_store_restore_event(uint64_t state, uint64_t seq, double time, uint64_t origin,
			    const void *changes, size_t len);
void tt_store_restore_instance(uint64_t id, uint64_t session, uint64_t state,
			       const tt_value *filter);
void tt_store_restore_observe(uint64_t session, const char *cls, size_t cls_len);
void tt_store_restore_tombstone(uint64_t state, const char *reason);
void tt_store_restore_schedule(uint64_t id, uint64_t state, double at, uint64_t origin,
			       const void *changes, size_t len);
uint64_t tt_store_next_sched_id(void);
void tt_store_set_next_sched_id(uint64_t id);
/* After restoring: count owned states, drop states whose owner is gone. */
void tt_store_restore_done(void);
void tt_store_next_ids(uint64_t *state, uint64_t *instance);
void tt_store_set_next_ids(uint64_t state, uint64_t instance);
/* Encode the values of every param of st (for the database). */
void tt_store_encode_values(tt_buf *b, const tt_state *st);
/* The server is stopping: connections that close now do not end their
 * sessions (they resume after the restart). */
void tt_store_stopping(void);

#endif
