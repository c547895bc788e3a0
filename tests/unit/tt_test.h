/* SPDX-License-Identifier: MIT */
/* tt_test.h: helpers shared by the cmocka unit tests of tests/unit/: build
 * value trees from JSON or hex msgpack, and assertions that print both sides
 * (a failure shows what was expected and what came). Header-only so each test binary stays one file. */
#ifndef TT_TEST_H
#define TT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "buf.h"
#include "codec.h"
#include "common.h"
#include "json.h"
#include "value.h"

/* Skip a test that shows a known, reported bug; TT_RUN_BUGS=1 in the
 * environment runs it anyway (to check a fix). Every use carries a
 * BUG(date) comment naming the bug. */
#define bug_skip()                                                              \
	do {                                                                    \
		if (!getenv("TT_RUN_BUGS"))                                     \
			skip();                                                 \
	} while (0)

/* hay contains needle; prints both when not. */
#define assert_substr(hay, needle)                                              \
	do {                                                                    \
		const char *hay_ = (hay), *needle_ = (needle);                  \
		if (!strstr(hay_, needle_))                                     \
			fail_msg("\"%s\" does not contain \"%s\"", hay_, needle_); \
	} while (0)

#define assert_double_equal(a, b)                                               \
	do {                                                                    \
		double a_ = (a), b_ = (b);                                      \
		if (!(a_ == b_))                                                \
			fail_msg("%.17g != %.17g", a_, b_);                     \
	} while (0)

/* A tree from JSON text, in arena a; the test fails on a parse error. */
static inline tt_value tj(tt_arena *a, const char *json)
{
	tt_value v;
	tt_error err = {0};
	int rc = tt_json_parse(json, a, &v, &err);
	if (rc != 0)
		fail_msg("bad JSON in test: %s (%s)", json, err.msg);
	return v;
}

static inline int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Bytes of a hex string ("93 01 c0", spaces ignored) into the arena; *out_len
 * gets the byte count. */
static inline unsigned char *hexbytes(tt_arena *a, const char *hex, size_t *out_len)
{
	size_t n = strlen(hex), k = 0;
	unsigned char *p = tt_arena_alloc(a, n / 2 + 1);
	for (size_t i = 0; i < n;) {
		if (hex[i] == ' ') {
			i++;
			continue;
		}
		int hi = hexval(hex[i]), lo = i + 1 < n ? hexval(hex[i + 1]) : -1;
		if (hi < 0 || lo < 0)
			fail_msg("bad hex in test: %s", hex);
		p[k++] = (unsigned char)(hi * 16 + lo);
		i += 2;
	}
	*out_len = k;
	return p;
}

/* A tree from hex msgpack (the bytes live in the arena too). */
static inline tt_value tm(tt_arena *a, const char *hex)
{
	size_t n, off = 0;
	unsigned char *p = hexbytes(a, hex, &n);
	tt_decoder *d = tt_decoder_new();
	tt_value v;
	tt_error err = {0};
	int rc = tt_decode(d, p, n, &off, a, &v, &err);
	tt_decoder_free(d);
	if (rc != 0 || off != n)
		fail_msg("bad msgpack in test: %s (%s)", hex, err.msg);
	return v;
}

/* Buffer content equals the hex bytes; prints both as hex when not. */
static inline void assert_buf_hex(const tt_buf *b, const char *hex)
{
	tt_arena a;
	tt_arena_init(&a, 0);
	size_t n;
	unsigned char *want = hexbytes(&a, hex, &n);
	if (b->len != n || memcmp(tt_buf_data(b), want, n) != 0) {
		char got[512] = "";
		size_t k = 0;
		for (size_t i = 0; i < b->len && k + 4 < sizeof(got); i++)
			k += (size_t)snprintf(got + k, sizeof(got) - k, "%02x ", tt_buf_data(b)[i]);
		tt_arena_destroy(&a);
		fail_msg("bytes [%s] != [%s]", got, hex);
	}
	tt_arena_destroy(&a);
}

/* A nested value [[[...nil...]]] of the given depth (0: nil). */
static inline tt_value nested_arrays(tt_arena *a, int depth)
{
	tt_value v = tt_nil();
	for (int i = 0; i < depth; i++) {
		tt_value *item = tt_arena_alloc(a, sizeof(*item));
		*item = v;
		v.type = TT_ARRAY;
		v.len = 1;
		v.v.items = item;
	}
	return v;
}

#endif
