/* SPDX-License-Identifier: MIT */
/* session.c: session ids, tokens and the session list. */
#include "session.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "common.h"

uint64_t tt_session_next_id = 1;
static tt_session *g_sessions;

static void random_token(char out[33])
{
	unsigned char raw[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	tt_assert(fd >= 0);
	ssize_t n = read(fd, raw, sizeof(raw));
	close(fd);
	tt_assert(n == (ssize_t)sizeof(raw));
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

tt_session *tt_session_restore(uint64_t id, const char *token, double gone_at)
{
	tt_session *s = tt_calloc(1, sizeof(*s));
	s->id = id;
	snprintf(s->token, sizeof(s->token), "%s", token);
	s->gone_at = gone_at;
	if (id >= tt_session_next_id)
		tt_session_next_id = id + 1;
	s->next = g_sessions;
	if (g_sessions)
		g_sessions->prev = s;
	g_sessions = s;
	return s;
}

tt_session *tt_session_new(void)
{
	char token[33];
	random_token(token);
	return tt_session_restore(tt_session_next_id, token, tt_clock_now());
}

tt_session *tt_session_by_token(const char *token, size_t len)
{
	if (len != 32)
		return NULL;
	for (tt_session *s = g_sessions; s; s = s->next)
		if (memcmp(s->token, token, 32) == 0)
			return s;
	return NULL;
}

tt_session *tt_session_by_id(uint64_t id)
{
	for (tt_session *s = g_sessions; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

tt_session *tt_session_first(void)
{
	return g_sessions;
}

void tt_session_free(tt_session *s)
{
	if (!s)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		g_sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}
