/* SPDX-License-Identifier: MIT */
/* ops.h: one function per request (PROTOCOL.md §3-§10): check what the
 * request refers to, change the model, answer the requester, fan out.
 * handler.c has already checked the request's shape.
 *
 * A request function answers the client itself (RESULT) and returns 0, or
 * returns -code with err filled, having changed nothing and sent nothing,
 * so that the caller answers with an ERROR. Single-threaded: called from
 * the network loop only. */
#ifndef TT_OPS_H
#define TT_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "common.h"
#include "config.h"
#include "store.h"
#include "value.h"

/* cfg is borrowed and must outlive the module. */
void tt_ops_init(const tt_config *cfg);
void tt_ops_destroy(void);

int tt_op_hello(tt_client *c, uint64_t rid, const tt_value *opts, tt_error *err);
/* PING is not a request: answered with a PONG, never an ERROR. */
void tt_op_ping(tt_client *c, uint64_t id, double client_time, double recv_time);
int tt_op_define(tt_client *c, uint64_t rid, const tt_value *name, const tt_value *desc,
		 tt_error *err);
int tt_op_describe(tt_client *c, uint64_t rid, const tt_value *cls, tt_error *err);
int tt_op_create(tt_client *c, uint64_t rid, const tt_value *cls, tt_value *init, tt_error *err);
int tt_op_attach(tt_client *c, uint64_t rid, const tt_value *cls, const tt_value *state_id,
		 const tt_value *opts, tt_error *err);
int tt_op_detach(tt_client *c, uint64_t rid, uint64_t instance, tt_error *err);
int tt_op_delete(tt_client *c, uint64_t rid, uint64_t instance, tt_error *err);
/* opts: NULL, nil, or {at: sync time} (PROTOCOL.md §6a). */
int tt_op_set(tt_client *c, uint64_t rid, uint64_t instance, tt_value *updates,
	      const tt_value *opts, tt_error *err);
/* OBSERVE (on) and UNOBSERVE (!on). */
int tt_op_observe(tt_client *c, uint64_t rid, const tt_value *cls, bool on, tt_error *err);
int tt_op_history(tt_client *c, uint64_t rid, uint64_t instance, const tt_value *opts,
		  tt_error *err);

/* Cancel a pending scheduled set of the instance's state: its writer, the
 * state's owner or an admin may. */
int tt_op_cancel(tt_client *c, uint64_t rid, uint64_t instance, uint64_t sched, tt_error *err);

/* Hooks (hooks.h): register one on a class (kind "create", "update" or
 * "delete"; the role must be admin or have "hooks": true), remove one. A
 * HOOK_REPLY goes straight to tt_hooks_reply. */
int tt_op_hook(tt_client *c, uint64_t rid, const tt_value *cls, const tt_value *kind,
	       tt_error *err);
int tt_op_unhook(tt_client *c, uint64_t rid, uint64_t hook, tt_error *err);
/* Operator (admin): delete a class and its states on a running server. */
int tt_op_delete_class(tt_client *c, uint64_t rid, const tt_value *cls, tt_error *err);

/* HELLO's welcome to c (its session set), and a resumed session's catch-up
 * (seqs: HELLO's, or NULL); token: the one the client has. */
void tt_ops_welcome(tt_client *c, uint64_t rid, const char *token, bool resumed,
		    const tt_value *seqs);

/* Several nodes (cluster.c): a SET, DELETE or CANCEL another node forwarded
 * because this one writes st. c stands for the requester (its session; its
 * replies are captured, client.h); filter: the requester's instance filter
 * (NULL: none). As tt_op_set, tt_op_delete and tt_op_cancel otherwise. */
int tt_ops_forwarded_set(tt_client *c, uint64_t rid, tt_state *st, const tt_mask *filter,
			 tt_value *updates, const tt_value *opts, tt_error *err);
int tt_ops_forwarded_delete(tt_client *c, uint64_t rid, tt_state *st, tt_error *err);
int tt_ops_forwarded_cancel(tt_client *c, uint64_t rid, tt_state *st, uint64_t sched,
			    tt_error *err);

/* Apply every scheduled set due at sync time now, as a set from its writer
 * arriving then (called at the end of a loop turn). */
void tt_ops_run_due(double now);
/* Sync time of the earliest pending scheduled set, or -1 when none. */
double tt_ops_next_due(void);
/* Operator: delete a class and its states (attached clients get DELETED
 * "class deleted"). -TT_UNKNOWN_CLASS. */
int tt_ops_delete_class(const char *name, tt_error *err);

#endif
