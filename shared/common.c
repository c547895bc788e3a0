/* SPDX-License-Identifier: MIT */
/* common.c: error names, allocation wrappers, assertions. */
#include "common.h"

#include <stdio.h>
#include <string.h>

const char *tt_code_name(int code)
{
	switch (code) {
	case TT_OK: return "OK";
	case TT_BAD_MESSAGE: return "BAD_MESSAGE";
	case TT_UNKNOWN_TYPE: return "UNKNOWN_TYPE";
	case TT_NOT_READY: return "NOT_READY";
	case TT_BAD_VERSION: return "BAD_VERSION";
	case TT_BAD_REQUEST: return "BAD_REQUEST";
	case TT_UNKNOWN_CLASS: return "UNKNOWN_CLASS";
	case TT_CLASS_EXISTS: return "CLASS_EXISTS";
	case TT_BAD_DESCRIPTION: return "BAD_DESCRIPTION";
	case TT_UNKNOWN_STATE: return "UNKNOWN_STATE";
	case TT_UNKNOWN_INSTANCE: return "UNKNOWN_INSTANCE";
	case TT_NOT_OWNER: return "NOT_OWNER";
	case TT_UNKNOWN_SCHEDULE: return "UNKNOWN_SCHEDULE";
	case TT_UNKNOWN_SESSION: return "UNKNOWN_SESSION";
	case TT_UNKNOWN_PARAM: return "UNKNOWN_PARAM";
	case TT_BAD_VALUE: return "BAD_VALUE";
	case TT_NOT_NULLABLE: return "NOT_NULLABLE";
	case TT_REQUIRED: return "REQUIRED";
	case TT_LOCAL_PARAM: return "LOCAL_PARAM";
	case TT_FILTERED: return "FILTERED";
	case TT_BAD_FILTER: return "BAD_FILTER";
	case TT_LIMIT: return "LIMIT";
	case TT_RATE_LIMIT: return "RATE_LIMIT";
	case TT_FORBIDDEN: return "FORBIDDEN";
	case TT_UNAUTHORIZED: return "UNAUTHORIZED";
	case TT_ABORTED: return "ABORTED";
	case TT_HOOK_FAILED: return "HOOK_FAILED";
	case TT_INTERNAL: return "INTERNAL";
	case TT_STORAGE: return "STORAGE";
	default: return "UNKNOWN";
	}
}

int tt_fail(tt_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

static _Noreturn void oom(size_t n)
{
	fprintf(stderr, "tutti: out of memory allocating %zu bytes\n", n);
	abort();
}

void *tt_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *tt_calloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);
	if (!p)
		oom(count * n);
	return p;
}

void *tt_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *tt_strndup(const char *s, size_t n)
{
	char *d = tt_malloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void tt_assert_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "tutti: assertion failed: %s (%s:%d)\n", what, file, line);
	abort();
}
