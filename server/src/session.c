/* SPDX-License-Identifier: MIT */
/* session.c: session ids, token digests and the session list, with hash
 * lookups by id and by token (a resume, an owner, a restore: never a walk
 * over every session). */
#include "session.h"

#include <string.h>

#include <stdio.h>

#include "clock.h"
#include "common.h"
#include "idmap.h"
#include "roles.h"

static struct {
	tt_session *first;
	tt_idmap by_id;
	tt_idmap by_digest; /* first 64 bits of the token's digest -> session */
	uint64_t next_id;
	uint32_t n;
} G = {.next_id = 1};

/* The digest's key in by_digest (never 0 nor UINT64_MAX, which idmap
 * reserves). */
static uint64_t digest_key(const unsigned char d[TT_DIGEST_LEN])
{
	uint64_t k;
	memcpy(&k, d, sizeof(k));
	return k == 0 || k == UINT64_MAX ? 1 : k;
}

tt_session *tt_session_restore(uint64_t id, const unsigned char digest[TT_DIGEST_LEN],
			       double gone_at)
{
	uint64_t key = digest_key(digest);
	if (!id || tt_idmap_get(&G.by_digest, key) || tt_idmap_get(&G.by_id, id))
		return NULL;
	tt_session *s = tt_calloc(1, sizeof(*s));
	s->id = id;
	memcpy(s->digest, digest, TT_DIGEST_LEN);
	s->gone_at = gone_at;
	/* gone for the downtime since (never less than nothing: a clock set
	 * back makes it new rather than older) */
	double away = tt_clock_wall() - gone_at;
	s->gone_mono = tt_clock_mono() - (away > 0 ? away : 0);
	if (id >= G.next_id)
		G.next_id = tt_ids_after(id);
	s->next = G.first;
	if (G.first)
		G.first->prev = s;
	G.first = s;
	tt_idmap_put(&G.by_id, id, s);
	tt_idmap_put(&G.by_digest, key, s);
	G.n++;
	return s;
}

tt_session *tt_session_new(double now, char out_token[TT_TOKEN_HEX_LEN + 1])
{
	for (;;) {
		unsigned char d[TT_DIGEST_LEN];
		tt_secret_token(out_token);
		tt_secret_digest(out_token, TT_TOKEN_HEX_LEN, d);
		tt_session *s = tt_session_restore(G.next_id, d, now);
		if (s)
			return s; /* else a 64-bit prefix clash: draw again */
	}
}

tt_session *tt_session_by_token(const char *token, size_t len)
{
	if (len != TT_TOKEN_HEX_LEN)
		return NULL;
	unsigned char d[TT_DIGEST_LEN];
	tt_secret_digest(token, len, d);
	tt_session *s = tt_idmap_get(&G.by_digest, digest_key(d));
	return s && tt_secret_equal(s->digest, d) ? s : NULL;
}

tt_session *tt_session_by_id(uint64_t id)
{
	return id ? tt_idmap_get(&G.by_id, id) : NULL;
}

tt_session *tt_session_first(void)
{
	return G.first;
}

void tt_session_free(tt_session *s)
{
	if (!s)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		G.first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	tt_idmap_del(&G.by_id, s->id);
	tt_idmap_del(&G.by_digest, digest_key(s->digest));
	G.n--;
	free(s);
}

uint32_t tt_session_count(void)
{
	return G.n;
}

uint64_t tt_session_next_id(void)
{
	return G.next_id;
}

void tt_session_set_next_id(uint64_t id)
{
	if (id > G.next_id)
		G.next_id = tt_ids_after(id - 1);
}

static uint64_t g_stride = 1, g_offset;

void tt_ids_scheme(uint32_t stride, uint32_t offset)
{
	g_stride = stride ? stride : 1;
	g_offset = offset % g_stride;
	G.next_id = tt_ids_after(0);
}

uint64_t tt_ids_after(uint64_t id)
{
	uint64_t x = id + 1, r = x % g_stride;
	return x + (g_offset + g_stride - r) % g_stride;
}

static char *who_buf(void)
{
	static char bufs[4][160];
	static unsigned next;
	return bufs[next++ % 4];
}

const char *tt_session_who(const tt_client *c)
{
	if (c->session)
		return tt_session_name(c->session);
	char *b = who_buf();
	snprintf(b, 160, "%s", c->addr_text);
	return b;
}

const char *tt_session_name(const tt_session *s)
{
	char *b = who_buf();
	const tt_role *r = tt_roles_get(s->role);
	if (s->client)
		snprintf(b, 160, "session %llu (%s, %s)", (unsigned long long)s->id,
			 r ? r->name : "?", s->client->addr_text);
	else
		snprintf(b, 160, "session %llu (%s)", (unsigned long long)s->id, r ? r->name : "?");
	return b;
}

void tt_session_cleanup(void)
{
	tt_idmap_free(&G.by_id);
	tt_idmap_free(&G.by_digest);
}
