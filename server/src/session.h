/* SPDX-License-Identifier: MIT */
/* session.h: a client's session outlives its connection: it owns states,
 * holds instances (attachments) and observes, and can be resumed with its
 * token within the resume window. This file keeps the sessions themselves:
 * ids, tokens, lookups in O(1). What happens to a session's states and
 * attachments is the model's (store.h) and resume.c's business. */
#ifndef TT_SESSION_H
#define TT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"

typedef struct tt_instance tt_instance;
typedef struct tt_observe tt_observe;
typedef struct tt_class_entry tt_class_entry;
struct tt_state;

#define TT_TOKEN_LEN 32

struct tt_session {
	uint64_t id;         /* never 0 (0 is the server) */
	char token[TT_TOKEN_LEN + 1]; /* hex, secret */
	tt_client *client;   /* borrowed: NULL while disconnected */
	double gone_at;      /* sync time of the disconnect (continuous across restarts) */
	tt_instance *instances; /* list through ->s_next (the model's) */
	uint32_t n_instances;
	struct tt_state *owned, *owned_last; /* states owned, creation order, list
					      * through ->onext (the model's) */
	uint32_t n_owned;
	tt_observe *observes; /* owned list */
	tt_session *next, *prev; /* all sessions */
};

struct tt_observe {
	tt_class_entry *cls; /* borrowed; NULL observes every class */
	tt_observe *next;
};

/* New session with a fresh id and random token, in the session list. */
tt_session *tt_session_new(double now);
/* Restore a session with a known id and token (persistence), gone since
 * sync time gone_at. NULL when the token is malformed or taken. */
tt_session *tt_session_restore(uint64_t id, const char *token, size_t len, double gone_at);
tt_session *tt_session_by_token(const char *token, size_t len);
tt_session *tt_session_by_id(uint64_t id);
tt_session *tt_session_first(void);
/* Unlink and free; the caller has already released instances, observes
 * and owned states (tt_store_session_drop). Accepts NULL. */
void tt_session_free(tt_session *s);
/* Next session id to hand out (ids are never reused, across restarts too). */
uint64_t tt_session_next_id(void);
void tt_session_set_next_id(uint64_t id);
/* Free the lookup tables (at exit, once every session is freed). */
void tt_session_cleanup(void);

#endif
