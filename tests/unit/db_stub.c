/* SPDX-License-Identifier: MIT */
/* db_stub.c: db.h's row functions as lines of text (see db_stub.h). */
#include "db_stub.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

static char *g_log;
static size_t g_len, g_cap;

static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1;
	if (g_len + len + 2 > g_cap) {
		g_cap = (g_len + len + 2) * 2;
		g_log = realloc(g_log, g_cap);
	}
	memcpy(g_log + g_len, tmp, len);
	g_len += len;
	g_log[g_len++] = '\n';
	g_log[g_len] = '\0';
}

const char *db_stub_log(void)
{
	return g_log ? g_log : "";
}

void db_stub_clear(void)
{
	g_len = 0;
	if (g_log)
		g_log[0] = '\0';
}

size_t db_stub_count(const char *prefix)
{
	size_t n = 0, plen = strlen(prefix);
	for (const char *p = db_stub_log(); *p;) {
		if (strncmp(p, prefix, plen) == 0)
			n++;
		const char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : p + strlen(p);
	}
	return n;
}

void db_stub_free(void)
{
	free(g_log);
	g_log = NULL;
	g_len = g_cap = 0;
}

int tt_db_open(const char *path, bool sync_full, const tt_db_loader *ld, tt_error *err)
{
	(void)path, (void)sync_full, (void)ld, (void)err;
	return 0;
}

void tt_db_close(void) {}

int tt_db_commit(void)
{
	line("commit");
	return 0;
}

void tt_db_put_meta(const char *key, double value)
{
	line("meta %s %.17g", key, value);
}

void tt_db_put_meta_text(const char *key, const char *value)
{
	line("meta %s %s", key, value);
}

void tt_db_put_class(const char *name, size_t len, const void *desc, size_t desc_len)
{
	(void)desc;
	line("put_class %.*s %zu", (int)len, name, desc_len);
}

void tt_db_del_class(const char *name, size_t len)
{
	line("del_class %.*s", (int)len, name);
}

void tt_db_put_state(const tt_db_state_row *r)
{
	line("put_state %llu %.*s owner=%llu seq=%llu bytes=%zu", (unsigned long long)r->id,
	     (int)r->cls_len, r->cls, (unsigned long long)r->owner, (unsigned long long)r->seq,
	     r->vals_len);
}

void tt_db_del_state(uint64_t id, const char *reason)
{
	line("del_state %llu %s", (unsigned long long)id, reason);
}

void tt_db_put_event(const tt_db_event_row *r)
{
	line("put_event %llu seq=%llu origin=%llu", (unsigned long long)r->state,
	     (unsigned long long)r->seq, (unsigned long long)r->origin);
}

void tt_db_trim_events(uint64_t state, uint64_t upto)
{
	line("trim_events %llu %llu", (unsigned long long)state, (unsigned long long)upto);
}

void tt_db_put_session(uint64_t id, const char *token, size_t len, const char *role)
{
	(void)token;
	line("put_session %llu %zu %s", (unsigned long long)id, len, role);
}

void tt_db_session_gone(uint64_t id, double gone_at)
{
	line("session_gone %llu %.3f", (unsigned long long)id, gone_at);
}

void tt_db_del_session(uint64_t id, bool kicked)
{
	line("del_session %llu%s", (unsigned long long)id, kicked ? " kicked" : "");
}

void tt_db_put_instance(uint64_t id, uint64_t session, uint64_t state, const void *filter,
			size_t len)
{
	(void)filter;
	line("put_instance %llu session=%llu state=%llu filter=%zu", (unsigned long long)id,
	     (unsigned long long)session, (unsigned long long)state, len);
}

void tt_db_del_instance(uint64_t id)
{
	line("del_instance %llu", (unsigned long long)id);
}

void tt_db_put_observe(uint64_t session, const char *cls, size_t len, bool on)
{
	line("%s %llu %.*s", on ? "put_observe" : "del_observe", (unsigned long long)session,
	     cls ? (int)len : 1, cls ? cls : "*");
}

void tt_db_put_schedule(const tt_db_sched_row *r)
{
	line("put_schedule %llu state=%llu", (unsigned long long)r->id, (unsigned long long)r->state);
}

void tt_db_del_schedule(uint64_t id)
{
	line("del_schedule %llu", (unsigned long long)id);
}
