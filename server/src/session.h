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
#include "secret.h"

typedef struct tt_instance tt_instance;
typedef struct tt_observe tt_observe;
typedef struct tt_class_entry tt_class_entry;
struct tt_state;

struct tt_session {
	uint64_t id;         /* never 0 (0 is the server) */
	unsigned char digest[TT_DIGEST_LEN]; /* of the token (the token itself is
					      * given to the client, never kept) */
	uint32_t role;       /* index in roles.h's table */
	uint32_t node;       /* several nodes on one engine: the node holding it
			      * (0: this one; cluster.h) */
	tt_client *client;   /* borrowed: NULL while disconnected */
	char last_addr[48];  /* the client's address when it went ("" after a
			      * restart): what the inspector shows meanwhile */
	double gone_at;      /* wall time of the disconnect (persisted: downtime counts) */
	double gone_mono;    /* the same on CLOCK_MONOTONIC, what the window is
			      * measured with while running: a wall clock set at
			      * boot (a board without a battery) or by NTP must not
			      * end every waiting session at once */
	tt_instance *instances; /* list through ->s_next (the model's) */
	uint32_t n_instances;
	struct tt_state *owned, *owned_last; /* states owned, creation order, list
					      * through ->onext (the model's) */
	uint32_t n_owned;
	tt_observe *observes; /* owned list */
	uint32_t n_sched;    /* pending scheduled sets it made */
	uint32_t n_defined;  /* classes it defined over the wire */
	uint64_t mark;       /* scratch for one fan-out: already told */
	bool legacy_token;   /* restored with a plain token: store its digest */
	bool kicked;         /* ended by the operator (KICK): the end says so */
	tt_session *next, *prev; /* all sessions */
};

struct tt_observe {
	tt_class_entry *cls; /* borrowed; NULL observes every class */
	tt_session *session; /* borrowed: the observer */
	tt_observe *next;    /* the session's observes */
	tt_observe *cnext, *cprev; /* the class's (or every-class) observers */
};

/* New session with a fresh id and random token (written to out_token,
 * which the client is told once), in the session list. */
tt_session *tt_session_new(double now, char out_token[TT_TOKEN_HEX_LEN + 1]);
/* Restore a session with a known id and token digest (persistence), gone
 * since wall time gone_at. NULL when the id or digest is taken. */
tt_session *tt_session_restore(uint64_t id, const unsigned char digest[TT_DIGEST_LEN],
			       double gone_at);
/* The session a token resumes, or NULL. */
tt_session *tt_session_by_token(const char *token, size_t len);
tt_session *tt_session_by_id(uint64_t id);
tt_session *tt_session_first(void);
/* Unlink and free; the caller has already released instances, observes
 * and owned states (tt_store_session_drop). Accepts NULL. */
void tt_session_free(tt_session *s);
/* How many sessions there are (connected or waiting to resume). */
uint32_t tt_session_count(void);
/* Next session id to hand out (ids are never reused, across restarts too). */
uint64_t tt_session_next_id(void);
void tt_session_set_next_id(uint64_t id);
/* The ids this server hands out (sessions, states, instances, schedules):
 * with several nodes on one engine, node k takes only those equal to k
 * modulo stride, so that theirs never meet; stride 1 (one server): all of
 * them. Set before anything is created or restored. */
void tt_ids_scheme(uint32_t stride, uint32_t offset);
/* The smallest id above id that this server may hand out. */
uint64_t tt_ids_after(uint64_t id);
/* How the log names a client: "session 12 (audience, 192.168.1.20)", or its
 * address before HELLO. The text lives until the fourth next call. */
const char *tt_session_who(const tt_client *c);
/* The same for a session, connected or not. */
const char *tt_session_name(const tt_session *s);
/* Free the lookup tables (at exit, once every session is freed). */
void tt_session_cleanup(void);

#endif
