/* SPDX-License-Identifier: MIT */
/* session.c: session ids, tokens and the session list, with hash lookups
 * by id and by token (a resume, an owner, a restore: never a walk over
 * every session). */
#include "session.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "idmap.h"

static struct {
	tt_session *first;
	tt_idmap by_id;
	tt_idmap by_token; /* first 64 bits of the token -> session */
	uint64_t next_id;
} G = {.next_id = 1};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The token's key in by_token: its first 16 hex digits. 0 when the token
 * is not 32 lower-case hex digits (0 is never a key of an idmap). */
static uint64_t token_key(const char *token, size_t len)
{
	if (len != TT_TOKEN_LEN)
		return 0;
	uint64_t k = 0;
	for (size_t i = 0; i < TT_TOKEN_LEN; i++) {
		int v = hexval(token[i]);
		if (v < 0)
			return 0;
		if (i < 16)
			k = (k << 4) | (uint64_t)v;
	}
	return k == UINT64_MAX ? 0 : k; /* UINT64_MAX marks a deleted slot */
}

static void random_token(char out[TT_TOKEN_LEN + 1])
{
	unsigned char raw[TT_TOKEN_LEN / 2];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	tt_assert(fd >= 0);
	ssize_t n = read(fd, raw, sizeof(raw));
	close(fd);
	tt_assert(n == (ssize_t)sizeof(raw));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

tt_session *tt_session_restore(uint64_t id, const char *token, size_t len, double gone_at)
{
	uint64_t key = token_key(token, len);
	if (!id || !key || tt_idmap_get(&G.by_token, key) || tt_idmap_get(&G.by_id, id))
		return NULL;
	tt_session *s = tt_calloc(1, sizeof(*s));
	s->id = id;
	memcpy(s->token, token, TT_TOKEN_LEN);
	s->gone_at = gone_at;
	if (id >= G.next_id)
		G.next_id = id + 1;
	s->next = G.first;
	if (G.first)
		G.first->prev = s;
	G.first = s;
	tt_idmap_put(&G.by_id, id, s);
	tt_idmap_put(&G.by_token, key, s);
	return s;
}

tt_session *tt_session_new(double now)
{
	for (;;) {
		char token[TT_TOKEN_LEN + 1];
		random_token(token);
		tt_session *s = tt_session_restore(G.next_id, token, TT_TOKEN_LEN, now);
		if (s)
			return s; /* else a 64-bit prefix clash: draw again */
	}
}

tt_session *tt_session_by_token(const char *token, size_t len)
{
	uint64_t key = token_key(token, len);
	tt_session *s = key ? tt_idmap_get(&G.by_token, key) : NULL;
	return s && memcmp(s->token, token, TT_TOKEN_LEN) == 0 ? s : NULL;
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
	tt_idmap_del(&G.by_token, token_key(s->token, TT_TOKEN_LEN));
	free(s);
}

uint64_t tt_session_next_id(void)
{
	return G.next_id;
}

void tt_session_set_next_id(uint64_t id)
{
	if (id > G.next_id)
		G.next_id = id;
}

void tt_session_cleanup(void)
{
	tt_idmap_free(&G.by_id);
	tt_idmap_free(&G.by_token);
}
