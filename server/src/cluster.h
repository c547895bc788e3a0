/* SPDX-License-Identifier: MIT */
/* cluster.h: several tutti nodes on one engine (--engine nats://...), the
 * model's side; engine_nats.c carries the messages.
 *
 * Every node keeps a copy of every state (it reads every message of the
 * stream) and fans out to its own clients. One node writes a state at a
 * time: the node that wrote its last message while that node beats; when it
 * stops beating, the node holding the state's owner session, else the live
 * node a hash of the state's id picks (tt_cluster_owner). A SET, DELETE or
 * CANCEL of a state written elsewhere is forwarded there; its answer reaches
 * the client in order, when this node's copy has the change it answers. A
 * session lives in the engine (its record: role, instances, observes), so a
 * client whose node died resumes on any other with exactly what it missed.
 * Without an engine every function here answers "this node": one server. */
#ifndef TT_CLUSTER_H
#define TT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "common.h"
#include "config.h"
#include "engine.h"
#include "hooks.h"
#include "store.h"
#include "value.h"

/* After the restore and the roles: several nodes when cfg->engine is set
 * (sessions held by other nodes stay theirs, schedules of states written
 * elsewhere wait in their lists). */
/* How this node runs a request another node forwarded to it, one that
 * waited for the stream, or one whose writer went away: the request
 * layer's own functions (ops.c, handler.c; server.c gives them), so that
 * the cluster stays below the requests that ask it. */
typedef struct tt_cluster_runner {
	int (*forwarded_set)(tt_client *c, uint64_t rid, tt_state *st, const tt_mask *filter,
			     tt_value *updates, const tt_value *opts, tt_error *err);
	int (*forwarded_delete)(tt_client *c, uint64_t rid, tt_state *st, tt_error *err);
	int (*forwarded_cancel)(tt_client *c, uint64_t rid, tt_state *st, uint64_t sched,
				tt_error *err);
	int (*set)(tt_client *c, uint64_t rid, uint64_t instance, tt_value *updates,
		   const tt_value *opts, tt_error *err);
	int (*del)(tt_client *c, uint64_t rid, uint64_t instance, tt_error *err);
	int (*cancel)(tt_client *c, uint64_t rid, uint64_t instance, uint64_t sched,
		      tt_error *err);
	void (*welcome)(tt_client *c, uint64_t rid, const char *token, bool resumed,
			const tt_value *seqs);
	void (*message)(tt_client *c, const void *data, size_t len); /* a whole request */
} tt_cluster_runner;

void tt_cluster_start(const tt_config *cfg, const tt_cluster_runner *run);
void tt_cluster_destroy(void);

/* The node that writes st now. */
uint32_t tt_cluster_owner(const tt_state *st);
/* The session owning st ended: this node deletes st (it writes it, or
 * takes it over); always true with one server. */
bool tt_cluster_ends_here(const tt_state *st);
/* st is written by another node: requests that change it go there. */
bool tt_cluster_elsewhere(const tt_state *st);
/* s is held by another node (alive or not). */
bool tt_cluster_remote(const tt_session *s);
/* The node holding s, and this node's id (0 and 0 with one server): what
 * the inspector shows. */
uint32_t tt_cluster_node(const tt_session *s);
uint32_t tt_cluster_me(void);
/* The resume window of s may end here: s is this node's, or its node died
 * and this node sweeps the dead nodes' sessions. */
bool tt_cluster_may_end(const tt_session *s);
/* The node a captured client (a forwarded request, client.h) answers for;
 * 0 for a real connection. */
uint32_t tt_cluster_requester(const tt_client *c);

/* ops.c: forward a request on a state written elsewhere; its reply comes
 * later (0), or -code when it cannot be sent. */
int tt_cluster_set(tt_client *c, uint64_t rid, tt_instance *in, tt_value *updates,
		   const tt_value *opts, tt_error *err);
int tt_cluster_delete(tt_client *c, uint64_t rid, tt_instance *in, tt_error *err);
int tt_cluster_cancel(tt_client *c, uint64_t rid, tt_instance *in, uint64_t sched,
		      tt_error *err);
/* ops.c: st is being deleted for c's request rid (other nodes answer their
 * client in order). */
void tt_cluster_deleting(const tt_state *st, const tt_client *c, uint64_t rid);
/* ops.c HELLO: s was held elsewhere: its instances and observes come here
 * from its record. 0, or -TT_INTERNAL with err. */
int tt_cluster_claim(tt_session *s, tt_error *err);
/* The welcome of a claimed session waits until this node has read what the
 * stream held at the claim; true when deferred (ops.c answers later). */
bool tt_cluster_defer_welcome(tt_client *c, uint64_t rid, const char *token,
			      const tt_value *seqs);
/* ops.c HELLO of session s: the connection whose welcome of s waits (NULL:
 * none), forgotten here (the new connection takes s over). */
tt_client *tt_cluster_welcome_waiting(const tt_session *s);
/* handler.c: a request of c failed on a class or state unknown here: it is
 * handled again once this node has read what the stream holds now (another
 * node may just have made it). True when deferred so (once per request). */
bool tt_cluster_retry_later(tt_client *c, const void *msg, size_t len);
/* handler.c: c closed (a deferred welcome of it is dropped). */
void tt_cluster_client_gone(const tt_client *c);

/* Hooks of several nodes: a hook registered here is told to the others
 * (ops.c), and removed; a HOOK_REPLY for a call of another node goes back
 * there (handler.c; true when it was another node's). hook_added: true
 * when the HOOK's RESULT (rid) waits until every live node has the hook
 * (at most 2 s; cluster.c sends it). */
bool tt_cluster_hook_added(tt_client *c, uint64_t rid, uint64_t id, const tt_class_entry *ce,
			   enum tt_hook_kind kind);
void tt_cluster_hook_removed(uint64_t id);
bool tt_cluster_hook_reply(uint64_t call, const tt_value *result);

/* What the engine reads from the stream comes here (engine.h): given to
 * it by server.c before it opens. */
extern const tt_engine_sink tt_cluster_sink;
/* turn.c, before the commit: answers of forwarded requests go back. */
void tt_cluster_flush(void);

#endif
