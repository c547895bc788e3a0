/* SPDX-License-Identifier: MIT */
/* store.h: the model, the server's authoritative state: classes, states
 * with their values, seq and history, instances (attachments) and the
 * subscriptions they add up to, observes, tombstones, pending schedules.
 *
 * Typed and protocol-free: no client, no request id, no message is built
 * here (ops.c answers requests, fanout.c tells subscribers, wire.c encodes).
 * Every change that must survive a restart is put as a row for the next
 * commit (db.h) as it is made; tt_store_flush adds the values of the states
 * changed during the turn. Single-threaded: called from the network loop. */
#ifndef TT_STORE_H
#define TT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "common.h"
#include "config.h"
#include "history.h"
#include "rights.h"
#include "sched.h"
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

struct tt_class_entry {
	tt_class *cls;            /* owned */
	tt_rights *rights;        /* owned; NULL: the defaults (rights.h) */
	tt_state *first, *last;   /* the class's states, oldest first */
	uint32_t n_states;
	tt_observe *observers;    /* observes of this class (list through cnext) */
	bool migrated;            /* its description changed at this start (resume tells) */
	tt_class_entry *next;     /* in definition order */
};

/* A stored value: STR and RAW (`any`, canonical msgpack) bytes are owned. */
typedef struct tt_slot {
	tt_value v;
	char *mem;     /* owned buffer behind v.v.s for STR/RAW */
	uint32_t cap;
} tt_slot;

/* One session's subscription to a state: the union of its instances'
 * filters, so an update is encoded per session, not per instance. */
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
	/* the values given at creation (coerced, after the create hooks): what
	 * getInitValues() and a `required` param's default report; the other
	 * params started at their default */
	uint32_t n_init;
	uint32_t *init_idx;  /* owned: param index of each */
	tt_slot *init_vals;  /* owned */
	tt_sub *subs;        /* owned array */
	uint32_t n_subs, cap_subs;
	tt_instance *instances;  /* list through st_next */
	tt_history hist;
	tt_sched_list scheds;    /* pending scheduled sets */
	tt_state *next, *prev;   /* all states, creation order */
	tt_state *cnext, *cprev; /* states of the class */
	tt_state *onext, *oprev; /* states of the owner session */
	bool dirty;              /* values to persist at the next flush */
	tt_state *dirty_next;
	uint64_t db_trimmed;     /* events with seq <= this are trimmed on disk */
	size_t value_bytes;      /* bytes of its string and `any` values */
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

/* What a session may see of a state through its sub: NULL for everything. */
static inline const tt_mask *tt_sub_view(const tt_sub *sub)
{
	return sub->n_all ? NULL : &sub->mask;
}

/* What one instance may see: NULL for everything. */
static inline const tt_mask *tt_instance_view(const tt_instance *in)
{
	return in->filtered ? &in->mask : NULL;
}

/* A set of param values on their way into a state: validated and coerced
 * (tt_store_validate), then applied (tt_store_apply). The caller owns one
 * and reuses it; nothing in it outlives the next validate. */
typedef struct tt_changes {
	uint32_t n;                    /* keys, in the order given */
	uint32_t idx[TT_MAX_PARAMS];   /* param index of each key */
	tt_value vals[TT_MAX_PARAMS];  /* value of each key; may point into the request */
	tt_buf any;                    /* owned: stored (msgpack) form of `any` values */
	tt_buf enc;                    /* owned: after apply, the applied keys as one map */
	uint32_t gen;                  /* validation: generation of seen[] */
	uint32_t seen[TT_MAX_PARAMS];  /* validation: keys already given */
} tt_changes;

void tt_changes_init(tt_changes *cs);
void tt_changes_free(tt_changes *cs);

/* ---- lifetime ----------------------------------------------------------- */

/* cfg (borrowed, must outlive the store) gives the history size and the
 * per-session and global limits. */
void tt_store_init(const tt_config *cfg);
/* Free everything, persisting nothing (the database keeps what it has). */
void tt_store_destroy(void);

/* ---- classes ------------------------------------------------------------ */

/* Define a class from a description tree (strict: as a person wrote it,
 * else as stored). *out_new says whether it is new (false: an identical
 * class existed, nothing changed). -TT_CLASS_EXISTS for a different
 * description under a taken name, -TT_LIMIT past --max-classes,
 * -TT_BAD_DESCRIPTION from the schema parser. */
int tt_store_define(const char *name, size_t len, const tt_value *desc, bool strict,
		    bool *out_new, tt_error *err);
/* Give an existing class a new description (strict), keeping what its
 * states hold: a param added gets its default, a param removed goes (from
 * the history and pending schedules too), a kept param's values are
 * validated again under its new options (clipped, or converted to a new
 * type). A value that does not fit any more refuses the whole change
 * (-TT_BAD_DESCRIPTION naming class, param, state and value, nothing
 * changed) unless "class.param" is in resets: then it takes the default.
 * What changed in a state becomes one event of the server (seq + 1), so
 * clients catch up as with any update. Every change is logged. *out_changed
 * is false when the description was the same. */
int tt_store_migrate(tt_class_entry *ce, const tt_value *desc, const char *const *resets,
		     uint32_t n_resets, bool *out_changed, tt_error *err);
tt_class_entry *tt_store_class(const char *name, size_t len);
tt_class_entry *tt_store_first_class(void);
/* Give ce its rights from a schema file (takes ownership; NULL: the
 * defaults). */
void tt_store_class_rights(tt_class_entry *ce, tt_rights *rights);
/* Remove a class that has no state left, and every observe of it. */
void tt_store_class_delete(tt_class_entry *ce);

/* ---- states ------------------------------------------------------------- */

/* A new state of ce owned by session owner (0: the server), its values the
 * defaults with init on top (validated; NULL for defaults only; turned into
 * stored form). The caller checked the owner's limits. */
tt_state *tt_store_state_new(tt_class_entry *ce, uint64_t owner, const tt_changes *init,
			     double time);
tt_state *tt_store_state(uint64_t id);
tt_state *tt_store_first_state(void);
/* How many states there are. */
uint32_t tt_store_state_count(void);
/* Delete a state: its instances, schedules and values go; a tombstone
 * keeps the reason for clients that resume later. Nobody is told (fanout.c
 * does that first). */
void tt_store_state_delete(tt_state *st, const char *reason);
/* The static string of a deletion's reason read back from storage or
 * another node ("deleted", "owner left", "class deleted"; "deleted" for
 * anything else). */
const char *tt_store_reason(const char *reason);
/* Why a deleted state went ("deleted", "owner left", "class deleted"),
 * or NULL when id is not known to be deleted (or was deleted before the
 * newest TT_TOMBSTONES_KEPT, db.h). */
const char *tt_store_tombstone(uint64_t id);

/* Validate and coerce every key of updates for state st of class cls
 * (st NULL at create), set through instance in (NULL at create: no filter,
 * and `required` keys must not be nil). Fills cs, in stored form. Atomic:
 * the first bad key fails the whole map with -TT_BAD_MESSAGE,
 * -TT_UNKNOWN_PARAM, -TT_LOCAL_PARAM, -TT_FILTERED, -TT_REQUIRED or the
 * coercion's code (-TT_BAD_VALUE for a string or `any` value over its
 * maxBytes), and -TT_LIMIT when the state's values would pass
 * --max-state-bytes; err names class, param and value. updates may be
 * modified (`any` maps are canonicalised). */
int tt_store_validate(const tt_class *cls, const tt_state *st, const tt_instance *in,
		      tt_value *updates, tt_changes *cs, tt_error *err);
/* The keys of cs as one msgpack map, appended to b. */
void tt_store_changes_encode(tt_buf *b, const tt_class *cls, const tt_changes *cs);
/* cs from changes stored by the model itself (a schedule's), in stored
 * form, for tt_store_apply. Keys the class no longer has are skipped. The
 * values point into changes, which must outlive cs's use. */
void tt_store_changes_load(const tt_state *st, const void *changes, size_t len, tt_changes *cs);
/* Apply validated changes to st at sync time `time`, written by session
 * origin. Keeps the keys that go out (changed, filterChange false, or
 * event), and when there is one: seq + 1, the event in the history,
 * persistence, and event params back to nil. On return cs holds only those
 * keys (in stored form) and cs->enc their encoded map. Returns how many. */
uint32_t tt_store_apply(tt_state *st, tt_changes *cs, uint64_t origin, double time);
/* Encode the values of st's params seen through view (NULL: all). */
void tt_store_encode_values(tt_buf *b, const tt_state *st, const tt_mask *view);
/* Encode st's init values seen through view: every param, the value given
 * at creation or else the class default. */
void tt_store_encode_init(tt_buf *b, const tt_state *st, const tt_mask *view);

/* ---- instances ---------------------------------------------------------- */

/* Parse an attach filter (array of param names) into mask. -TT_BAD_FILTER
 * naming the unknown param. */
int tt_store_filter(const tt_class *cls, const tt_value *filter, tt_mask *out, tt_error *err);
/* Attach session s to st through a new instance (filter NULL: every param). */
tt_instance *tt_store_attach(tt_state *st, tt_session *s, const tt_mask *filter);
tt_instance *tt_store_instance(uint64_t id);
void tt_store_detach(tt_instance *in);

/* ---- observes ----------------------------------------------------------- */

/* Start or stop observing ce (NULL: every class) for session s. */
void tt_store_observe(tt_session *s, tt_class_entry *ce, bool on);
/* True when s observes ce or every class. */
bool tt_store_observes(const tt_session *s, const tt_class_entry *ce);
/* The observes of every class (NULL observes: list through cnext). */
tt_observe *tt_store_observers_all(void);

/* ---- sessions ----------------------------------------------------------- */

/* s is connected (new, or back): persisted as live, with the name of the
 * role it was made in. */
void tt_store_session_live(tt_session *s, const char *role);
/* s lost its connection at sync time now: its resume window starts. */
void tt_store_session_gone(tt_session *s, double now);
/* Detach every instance of s and drop its observes, then free it. Its owned
 * states must be deleted already, but for those another node deletes
 * (several nodes, cluster.h), which leave its list. */
void tt_store_session_drop(tt_session *s);

/* ---- scheduled sets ----------------------------------------------------- */

/* Next schedule id (ids are never reused). */
uint64_t tt_store_sched_id(void);
/* Keep a pending schedule of st in pool (tt_sched.pool); persisted. */
tt_sched *tt_store_sched_add(tt_state *st, double at, uint64_t origin, uint8_t pool,
			     const tt_changes *cs);
/* Forget a schedule (applied or cancelled); persisted. */
void tt_store_sched_remove(tt_sched *sc);

/* ---- persistence -------------------------------------------------------- */

/* Put the turn's remaining rows: the values of every state changed during
 * the turn, trimmed history, and the id counters. Called just before the
 * commit (turn.c). */
void tt_store_flush(void);

/* ---- restore (restore.c, from the database's rows) ---------------------- */

/* A state as stored; values that no longer fit the class fall back to the
 * default with a warning. init: the map of values given at creation, or
 * NULL for a row stored before they were kept (then the `required` params'
 * current values stand for them). -TT_INTERNAL for an unknown class. */
int tt_store_restore_state(uint64_t id, tt_class_entry *ce, uint64_t owner, uint64_t seq,
			   double time, tt_value *values, tt_value *init, tt_error *err);
void tt_store_restore_event(tt_state *st, uint64_t seq, double time, uint64_t origin,
			    const void *changes, size_t len);
void tt_store_restore_instance(uint64_t id, tt_session *s, tt_state *st,
			       const tt_mask *filter);
void tt_store_restore_tombstone(uint64_t state, const char *reason);
void tt_store_restore_schedule(uint64_t id, tt_state *st, double at, uint64_t origin,
			       uint8_t pool, const void *changes, size_t len);
/* Id counters as stored (they only ever grow). */
void tt_store_restore_ids(uint64_t next_state, uint64_t next_instance, uint64_t next_sched);
/* Once every row is in: give each state to its owner session, and delete
 * (persisted) the states whose owner's session is gone. */
void tt_store_restore_owners(void);

/* ---- another node's changes (several nodes on one engine, cluster.c) -------- */

/* Applied as the other node stored them: no validation, no diff, nothing
 * persisted or marked dirty (the engine has them already). */

/* Event seq of st: its changes (a stored map) into the values (event params
 * back to nil), the history, seq and time; cs gets them (for fanout.c). */
void tt_store_remote_event(tt_state *st, uint64_t seq, double time, uint64_t origin,
			   const void *changes, size_t len, tt_changes *cs);
/* st's values as stored at seq (a message without events). */
void tt_store_remote_values(tt_state *st, uint64_t seq, double time, tt_value *values);
/* A state another node created, given to its owner session when known
 * here; NULL when id is taken. */
tt_state *tt_store_remote_state(uint64_t id, tt_class_entry *ce, uint64_t owner, uint64_t seq,
				double time, tt_value *values, tt_value *init);
/* st read again from the engine: its history starts empty. */
void tt_store_remote_history(tt_state *st);
/* st was deleted by its node: gone here too, with its tombstone. */
void tt_store_remote_delete(tt_state *st, const char *reason);
/* A pending schedule applied or cancelled by the state's node. */
void tt_store_remote_sched_gone(tt_sched *sc);
/* s is held by another node now: its instances and observes are that
 * node's (they stay in the engine's record of it). */
void tt_store_session_release(tt_session *s);
/* s ended on another node: forget it here (its states are deleted by the
 * node that writes them). */
void tt_store_session_forget(tt_session *s);
/* s is known here now: the states it owns join its list. */
void tt_store_adopt(tt_session *s);

#endif
