/* SPDX-License-Identifier: MIT */
/* hooks.h: a piece's server-side logic, run by hook clients. A client whose
 * role may (admin, or "hooks": true in roles.json) registers hooks on a
 * class: create, update or delete. A request on a hooked class becomes a
 * job that goes through the class's hooks in registration order: each hook
 * gets a HOOK_CALL with the values and answers with the values to go on
 * with (changed, keys added), unchanged, or an abort. When the chain ends,
 * the job's continuation (given by ops.c) validates and applies the result
 * as any request, or answers the abort as an error.
 *
 * Jobs on one state run one at a time, in arrival order (a later set waits
 * while a hook is pending, so order per state is kept and nothing applies
 * twice). A hook that does not answer within --hook-timeout fails its job
 * (HOOK_FAILED); a hook client that goes away has its hooks removed and
 * fails the jobs waiting on it. Single-threaded. */
#ifndef TT_HOOKS_H
#define TT_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "client.h"
#include "common.h"
#include "config.h"
#include "store.h"

enum tt_hook_kind { TT_HOOK_CREATE, TT_HOOK_UPDATE, TT_HOOK_DELETE, TT_HOOK_N };

/* How a chain ended. */
enum tt_hook_outcome { TT_HOOK_DONE, TT_HOOK_ABORT, TT_HOOK_FAIL };

typedef struct tt_hook_job tt_hook_job;
/* Called once when the chain ended: values is the map to go on with (a
 * tree valid during the call; nil-free), err says why for ABORT and FAIL.
 * The job is freed after it returns. */
typedef void (*tt_hook_done)(tt_hook_job *job, enum tt_hook_outcome outcome, tt_value *values,
			     const char *why);

struct tt_hook_job {
	enum tt_hook_kind kind;
	uint64_t session;     /* the requester's session */
	uint64_t rid;         /* its request id */
	uint64_t instance;    /* update: the instance it set through */
	tt_class_entry *ce;   /* borrowed */
	uint64_t state;       /* update, delete: the state (0 at create) */
	double at;            /* update: scheduled time, or -1 */
	tt_hook_done done;
	/* private */
	tt_buf values;        /* owned: the map being passed along (msgpack) */
	uint32_t step;        /* hooks called so far */
	uint64_t call;        /* the call in flight (0: none) */
	tt_client *callee;    /* borrowed: the client it waits on */
	uint64_t hook;        /* the hook it waits on */
	double deadline;      /* monotonic seconds */
	bool running;         /* its chain started (the head of its state's queue) */
	tt_hook_job *next;    /* the state's queue */
};

void tt_hooks_init(const tt_config *cfg);
void tt_hooks_destroy(void);

/* Does ce have hooks of kind? */
bool tt_hooks_has(const tt_class_entry *ce, enum tt_hook_kind kind);
/* Register a hook of c (borrowed until tt_hooks_client_gone) on ce.
 * Returns its id. */
uint64_t tt_hooks_add(tt_client *c, tt_class_entry *ce, enum tt_hook_kind kind);
/* Remove hook id of client c; false when c has no such hook. */
bool tt_hooks_remove(tt_client *c, uint64_t id);

/* Several nodes (cluster.c): a hook registered on another node, called
 * through relay (a captured client standing for that node); its removal;
 * the client of hook id (NULL: none); every hook (c: its client). */
void tt_hooks_add_remote(tt_client *relay, uint64_t id, tt_class_entry *ce,
			 enum tt_hook_kind kind);
bool tt_hooks_remove_remote(uint64_t id);
tt_client *tt_hooks_client_of(uint64_t id);
void tt_hooks_each(void (*fn)(uint64_t id, const tt_class_entry *ce, enum tt_hook_kind kind,
			      const tt_client *c, void *arg), void *arg);

/* A new job (its fields above `done` filled, values the map to pass):
 * queued behind the state's other jobs, started when its turn comes. Takes
 * ownership of job (allocated by tt_hooks_job_new). */
tt_hook_job *tt_hooks_job_new(void);
void tt_hooks_submit(tt_hook_job *job, const void *values, size_t len);
/* A HOOK_REPLY from c: result is a map (go on with it), true (go on
 * unchanged), nil or a string (abort, with that reason). A reply to a call
 * c does not own is ignored. */
void tt_hooks_reply(tt_client *c, uint64_t call, const tt_value *result);
/* Tell the delete hooks of ce, without waiting for them (an owner left, a
 * class deleted: the deletion happens anyway). */
void tt_hooks_notify_delete(const tt_state *st);
/* Fail the jobs whose hook did not answer in time. */
void tt_hooks_expire(double now_mono);
/* Monotonic time of the next deadline, or -1. */
double tt_hooks_next_deadline(void);
/* c's connection closed: its hooks go, the jobs waiting on it fail. */
void tt_hooks_client_gone(tt_client *c);
/* ce is deleted: its hooks go (the jobs of its states were failed). */
void tt_hooks_class_gone(tt_class_entry *ce);
/* A state is deleted: the jobs on it fail. */
void tt_hooks_state_gone(uint64_t state);

#endif
