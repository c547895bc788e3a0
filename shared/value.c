/* SPDX-License-Identifier: MIT */
/* value.c: operations on tt_value trees. */
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tt_value tt_str(const char *s)
{
	return tt_strn(s, strlen(s));
}

tt_value tt_strn(const char *s, size_t n)
{
	tt_value v = {.type = TT_STR};
	v.len = (uint32_t)n;
	v.v.s = s;
	return v;
}

bool tt_str_eq(const tt_value *v, const char *s)
{
	size_t n = strlen(s);
	return v->type == TT_STR && v->len == n && memcmp(v->v.s, s, n) == 0;
}

const tt_value *tt_map_get(const tt_value *m, const char *key)
{
	if (!m || m->type != TT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->len; i++)
		if (tt_str_eq(&m->v.pairs[i].key, key))
			return &m->v.pairs[i].val;
	return NULL;
}

bool tt_as_double(const tt_value *v, double *out)
{
	switch (v->type) {
	case TT_INT: *out = (double)v->v.i; return true;
	case TT_UINT: *out = (double)v->v.u; return true;
	case TT_FLOAT: *out = v->v.f; return true;
	default: return false;
	}
}

uint64_t tt_as_u64(const tt_value *v)
{
	double d;
	if (!v)
		return 0;
	if (v->type == TT_INT)
		return v->v.i > 0 ? (uint64_t)v->v.i : 0;
	if (v->type == TT_UINT)
		return v->v.u;
	return tt_as_double(v, &d) && d > 0 ? (uint64_t)d : 0;
}

double tt_as_f64(const tt_value *v)
{
	double d;
	return v && tt_as_double(v, &d) ? d : 0;
}

bool tt_as_bytes(const tt_value *v, const void **p, size_t *n)
{
	if (!v || (v->type != TT_BIN && v->type != TT_STR))
		return false;
	*p = v->v.s;
	*n = v->len;
	return true;
}

static int bytes_cmp(const tt_value *a, const tt_value *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->v.s, b->v.s, n) : 0;
	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

int tt_value_cmp(const tt_value *a, const tt_value *b)
{
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	switch (a->type) {
	case TT_NIL: return 0;
	case TT_BOOL: return (int)a->v.b - (int)b->v.b;
	case TT_INT: return (a->v.i > b->v.i) - (a->v.i < b->v.i);
	case TT_UINT: return (a->v.u > b->v.u) - (a->v.u < b->v.u);
	case TT_FLOAT:
		/* a total order: NaN equals NaN and sorts after every number
		 * (an `any` value may hold NaN) */
		if (isnan(a->v.f) || isnan(b->v.f))
			return (int)isnan(a->v.f) - (int)isnan(b->v.f);
		return (a->v.f > b->v.f) - (a->v.f < b->v.f);
	case TT_EXT:
		if (a->ext_type != b->ext_type)
			return a->ext_type < b->ext_type ? -1 : 1;
		return bytes_cmp(a, b);
	case TT_STR: case TT_BIN: case TT_RAW:
		return bytes_cmp(a, b);
	case TT_ARRAY:
		for (uint32_t i = 0; i < a->len && i < b->len; i++) {
			int c = tt_value_cmp(&a->v.items[i], &b->v.items[i]);
			if (c)
				return c;
		}
		return (a->len > b->len) - (a->len < b->len);
	case TT_MAP:
		for (uint32_t i = 0; i < a->len && i < b->len; i++) {
			int c = tt_value_cmp(&a->v.pairs[i].key, &b->v.pairs[i].key);
			if (!c)
				c = tt_value_cmp(&a->v.pairs[i].val, &b->v.pairs[i].val);
			if (c)
				return c;
		}
		return (a->len > b->len) - (a->len < b->len);
	}
	return 0;
}

bool tt_value_equal(const tt_value *a, const tt_value *b)
{
	return tt_value_cmp(a, b) == 0;
}

static int pair_cmp(const void *x, const void *y)
{
	return tt_value_cmp(&((const tt_pair *)x)->key, &((const tt_pair *)y)->key);
}

bool tt_value_canon(tt_value *v, int depth_left)
{
	if (v->type != TT_ARRAY && v->type != TT_MAP)
		return true;
	if (depth_left <= 0)
		return false;
	if (v->type == TT_ARRAY) {
		for (uint32_t i = 0; i < v->len; i++)
			if (!tt_value_canon(&v->v.items[i], depth_left - 1))
				return false;
		return true;
	}
	for (uint32_t i = 0; i < v->len; i++)
		if (!tt_value_canon(&v->v.pairs[i].key, depth_left - 1) ||
		    !tt_value_canon(&v->v.pairs[i].val, depth_left - 1))
			return false;
	if (v->len > 1)
		qsort(v->v.pairs, v->len, sizeof(tt_pair), pair_cmp);
	for (uint32_t i = 1; i < v->len; i++)
		if (tt_value_cmp(&v->v.pairs[i - 1].key, &v->v.pairs[i].key) == 0)
			return false;
	return true;
}

int tt_value_depth(const tt_value *v)
{
	int d = 0;
	if (v->type == TT_ARRAY) {
		for (uint32_t i = 0; i < v->len; i++) {
			int c = tt_value_depth(&v->v.items[i]);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	if (v->type == TT_MAP) {
		for (uint32_t i = 0; i < v->len; i++) {
			int c = tt_value_depth(&v->v.pairs[i].key);
			int e = tt_value_depth(&v->v.pairs[i].val);
			d = c > d ? c : d;
			d = e > d ? e : d;
		}
		return d + 1;
	}
	return 0;
}

void tt_value_copy(tt_arena *a, const tt_value *src, tt_value *out)
{
	*out = *src;
	switch (src->type) {
	case TT_STR: case TT_BIN: case TT_EXT: case TT_RAW:
		out->v.s = tt_arena_dup(a, src->v.s, src->len);
		break;
	case TT_ARRAY:
		out->v.items = tt_arena_alloc(a, sizeof(tt_value) * (src->len ? src->len : 1));
		for (uint32_t i = 0; i < src->len; i++)
			tt_value_copy(a, &src->v.items[i], &out->v.items[i]);
		break;
	case TT_MAP:
		out->v.pairs = tt_arena_alloc(a, sizeof(tt_pair) * (src->len ? src->len : 1));
		for (uint32_t i = 0; i < src->len; i++) {
			tt_value_copy(a, &src->v.pairs[i].key, &out->v.pairs[i].key);
			tt_value_copy(a, &src->v.pairs[i].val, &out->v.pairs[i].val);
		}
		break;
	default:
		break;
	}
}

bool tt_utf8_ok(const char *s, size_t n)
{
	if (n == 0)
		return true; /* msgpack-c gives an empty string a NULL pointer */
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p++;
		size_t more;
		uint32_t cp;
		if (c < 0x80)
			continue;
		else if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07;
		else
			return false;
		if ((size_t)(end - p) < more)
			return false;
		for (size_t i = 0; i < more; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		p += more;
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
	}
	return true;
}

bool tt_value_utf8_ok(const tt_value *v)
{
	switch (v->type) {
	case TT_STR:
		return tt_utf8_ok(v->v.s, v->len);
	case TT_ARRAY:
		for (uint32_t i = 0; i < v->len; i++)
			if (!tt_value_utf8_ok(&v->v.items[i]))
				return false;
		return true;
	case TT_MAP:
		/* map keys are strings (PROTOCOL.md §1): JavaScript decoders
		 * refuse nil or boolean keys, and a map of other keys is not an
		 * object; nor "__proto__", which @msgpack/msgpack refuses (it
		 * would set the object's prototype): a JS client would drop
		 * every frame carrying it */
		for (uint32_t i = 0; i < v->len; i++) {
			const tt_value *k = &v->v.pairs[i].key;
			if (k->type != TT_STR || tt_str_eq(k, "__proto__") || !tt_value_utf8_ok(k) ||
			    !tt_value_utf8_ok(&v->v.pairs[i].val))
				return false;
		}
		return true;
	default:
		return true;
	}
}

const char *tt_type_name(int type)
{
	switch (type) {
	case TT_NIL: return "nil";
	case TT_BOOL: return "boolean";
	case TT_INT: case TT_UINT: return "integer";
	case TT_FLOAT: return "float";
	case TT_STR: return "string";
	case TT_BIN: return "binary";
	case TT_ARRAY: return "array";
	case TT_MAP: return "map";
	case TT_EXT: return "ext";
	case TT_RAW: return "value";
	default: return "?";
	}
}

void tt_value_repr(const tt_value *v, char *out, size_t cap)
{
	if (!cap)
		return;
	switch (v->type) {
	case TT_NIL: snprintf(out, cap, "null"); break;
	case TT_BOOL: snprintf(out, cap, "%s", v->v.b ? "true" : "false"); break;
	case TT_INT: snprintf(out, cap, "%lld", (long long)v->v.i); break;
	case TT_UINT: snprintf(out, cap, "%llu", (unsigned long long)v->v.u); break;
	case TT_FLOAT:
		if (isnan(v->v.f))
			snprintf(out, cap, "NaN");
		else if (isinf(v->v.f))
			snprintf(out, cap, "%sInfinity", v->v.f < 0 ? "-" : "");
		else
			snprintf(out, cap, "%.17g", v->v.f);
		break;
	case TT_STR: {
		int n = v->len > 40 ? 40 : (int)v->len;
		/* cut on a character boundary: messages stay valid UTF-8 */
		while (n > 0 && n < (int)v->len && ((unsigned char)v->v.s[n] & 0xc0) == 0x80)
			n--;
		snprintf(out, cap, "\"%.*s%s\"", n, v->v.s, v->len > 40 ? "..." : "");
		break;
	}
	case TT_ARRAY: snprintf(out, cap, "[array of %u]", v->len); break;
	case TT_MAP: snprintf(out, cap, "{map of %u}", v->len); break;
	default: snprintf(out, cap, "<%s>", tt_type_name(v->type)); break;
	}
}
