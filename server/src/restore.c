/* SPDX-License-Identifier: MIT */
/* restore.c: the loader of the database's rows. A row that cannot be read
 * stops the start (a corrupt database is never half restored); a row that
 * refers to something gone (an instance of a deleted state) is skipped. */
#include "restore.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "idmap.h"
#include "roles.h"
#include "secret.h"
#include "store.h"

/* Decode one stored msgpack blob into out (in a, which the caller frees). */
static int decode(const void *p, size_t len, tt_arena *a, tt_value *out, tt_error *err)
{
	tt_decoder *dec = tt_decoder_new();
	size_t off = 0;
	int rc = tt_decode(dec, p, len, &off, a, out, err);
	tt_decoder_free(dec);
	if (rc < 0)
		return tt_fail(err, TT_INTERNAL, "corrupt row in the database");
	return 0;
}

/* Wall time the server was last seen alive (0: never stored). */
static double g_alive;
/* session id -> the name of the role it was made in (owned strings) */
static tt_idmap g_roles;

static void on_meta(const char *key, double v)
{
	if (!strcmp(key, "alive"))
		g_alive = v;
	else if (!strcmp(key, "clock"))
		/* the clock continues past every time it sent, never backwards */
		tt_clock_start(v);
	else if (!strcmp(key, "next_state"))
		tt_store_restore_ids((uint64_t)v, 0, 0);
	else if (!strcmp(key, "next_instance"))
		tt_store_restore_ids(0, (uint64_t)v, 0);
	else if (!strcmp(key, "next_sched"))
		tt_store_restore_ids(0, 0, (uint64_t)v);
	else if (!strcmp(key, "next_session"))
		tt_session_set_next_id((uint64_t)v);
}

static void on_meta_text(const char *key, const char *v, size_t len)
{
	static const char prefix[] = TT_ROLES_META_PREFIX;
	if (!strncmp(key, prefix, sizeof(prefix) - 1))
		tt_roles_restored_token(key + sizeof(prefix) - 1, v, len);
}

static int on_class(const char *name, size_t len, const void *desc, size_t desc_len,
		    tt_error *err)
{
	tt_arena a;
	tt_arena_init(&a, 0);
	tt_value d;
	bool created;
	int rc = decode(desc, desc_len, &a, &d, err);
	if (rc == 0)
		rc = tt_store_define(name, len, &d, false, &created, err);
	tt_arena_destroy(&a);
	return rc;
}

static int on_state(const tt_db_state_row *r, tt_error *err)
{
	tt_class_entry *ce = tt_store_class(r->cls, r->cls_len);
	if (!ce)
		return tt_fail(err, TT_INTERNAL, "state %llu of unknown class \"%.*s\"",
			       (unsigned long long)r->id, (int)r->cls_len, r->cls);
	tt_arena a;
	tt_arena_init(&a, 0);
	tt_value vals, init;
	int rc = decode(r->vals, r->vals_len, &a, &vals, err);
	if (rc == 0 && r->init)
		rc = decode(r->init, r->init_len, &a, &init, err);
	if (rc == 0)
		rc = tt_store_restore_state(r->id, ce, r->owner, r->seq, r->time, &vals,
					    r->init ? &init : NULL, err);
	tt_arena_destroy(&a);
	return rc;
}

static void on_event(const tt_db_event_row *r)
{
	tt_state *st = tt_store_state(r->state);
	if (st)
		tt_store_restore_event(st, r->seq, r->time, r->origin, r->changes, r->len);
}

static void on_session(uint64_t id, const char *token, size_t len, bool gone, double gone_at,
		       const char *role, size_t role_len)
{
	/* the token's digest; a database from before digests holds the token
	 * itself: digest it now, and store the digest (tt_restore_done) */
	unsigned char d[TT_DIGEST_LEN];
	bool legacy = len == TT_TOKEN_HEX_LEN;
	if (legacy)
		tt_secret_digest(token, len, d);
	else if (!tt_secret_unhex(token, len, d))
		return;
	/* connected when the server stopped: gone since it was last alive (a
	 * database from before wall times holds a sync time, far below any
	 * wall time: the same) */
	double since = g_alive > 0 ? g_alive : tt_clock_wall();
	if (gone && gone_at > 1e9)
		since = gone_at;
	tt_session *s = tt_session_restore(id, d, since);
	if (!s)
		return;
	s->legacy_token = legacy;
	/* its role's name, matched once the roles are loaded (tt_restore_done) */
	if (role)
		tt_idmap_put(&g_roles, id, tt_strndup(role, role_len));
}

static int on_instance(uint64_t id, uint64_t session, uint64_t state, const void *filter,
		       size_t len, tt_error *err)
{
	tt_session *s = tt_session_by_id(session);
	tt_state *st = tt_store_state(state);
	if (!s || !st)
		return 0;
	tt_mask mask;
	bool filtered = false;
	if (len) {
		tt_arena a;
		tt_arena_init(&a, 0);
		tt_value f;
		int rc = decode(filter, len, &a, &f, err);
		filtered = rc == 0 && f.type == TT_ARRAY &&
			   tt_store_filter(st->ce->cls, &f, &mask, NULL) == 0;
		tt_arena_destroy(&a);
		if (rc < 0)
			return rc;
	}
	tt_store_restore_instance(id, s, st, filtered ? &mask : NULL);
	return 0;
}

static void on_tombstone(uint64_t state, const char *reason)
{
	tt_store_restore_tombstone(state, reason);
}

/* The pool of a schedule (tt_sched.pool): its origin's role, when known. */
static uint8_t sched_pool(uint64_t origin)
{
	const tt_session *s = tt_session_by_id(origin);
	return s && s->role != tt_roles_default();
}

static void on_schedule(const tt_db_sched_row *r)
{
	tt_state *st = tt_store_state(r->state);
	if (st)
		tt_store_restore_schedule(r->id, st, r->at, r->origin, sched_pool(r->origin), r->changes,
					  r->len);
}

static void on_observe(uint64_t session, const char *cls, size_t len)
{
	tt_session *s = tt_session_by_id(session);
	tt_class_entry *ce = cls ? tt_store_class(cls, len) : NULL;
	if (s && (!cls || ce))
		tt_store_observe(s, ce, true);
}

const tt_db_loader tt_restore_loader = {
	.meta = on_meta,
	.meta_text = on_meta_text,
	.klass = on_class,
	.state = on_state,
	.event = on_event,
	.session = on_session,
	.instance = on_instance,
	.tombstone = on_tombstone,
	.schedule = on_schedule,
	.observe = on_observe,
};

void tt_restore_done(void)
{
	tt_store_restore_owners();
	for (tt_session *s = tt_session_first(); s; s = s->next) {
		/* the role it was made in; a role gone from roles.json since, or a
		 * row from before roles were kept: the default role, the least
		 * trusted */
		char *name = tt_idmap_get(&g_roles, s->id);
		int r = name ? tt_roles_find(name, strlen(name)) : -1;
		s->role = r >= 0 ? (uint32_t)r : tt_roles_default();
		if (name) {
			tt_idmap_del(&g_roles, s->id);
			free(name);
		}
	}
	tt_restore_abandon();
	for (tt_session *s = tt_session_first(); s; s = s->next)
		if (s->legacy_token) {
			bool waiting = !s->client;
			tt_store_session_live(s, tt_roles_get(s->role)->name);
			if (waiting)
				tt_store_session_gone(s, s->gone_at);
			s->legacy_token = false;
		}
}

void tt_restore_abandon(void)
{
	for (tt_session *s = tt_session_first(); s; s = s->next) {
		char *name = tt_idmap_get(&g_roles, s->id);
		if (name) {
			tt_idmap_del(&g_roles, s->id);
			free(name);
		}
	}
	tt_idmap_free(&g_roles);
}
