/* SPDX-License-Identifier: MIT */
/* json.c: jansson behind the tt_value interface. */
#include "json.h"

#include "buf.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int convert(tt_arena *a, json_t *j, tt_value *out, int depth, tt_error *err)
{
	memset(out, 0, sizeof(*out));
	if (depth > 64)
		return tt_fail(err, TT_BAD_DESCRIPTION, "JSON nested too deep");
	switch (json_typeof(j)) {
	case JSON_NULL: out->type = TT_NIL; break;
	case JSON_TRUE: *out = tt_bool(true); break;
	case JSON_FALSE: *out = tt_bool(false); break;
	case JSON_INTEGER: *out = tt_int(json_integer_value(j)); break;
	case JSON_REAL: *out = tt_float(json_real_value(j)); break;
	case JSON_STRING: {
		size_t n = json_string_length(j);
		*out = tt_strn(tt_arena_dup(a, json_string_value(j), n), n);
		break;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(j);
		out->type = TT_ARRAY;
		out->len = (uint32_t)n;
		out->v.items = tt_arena_alloc(a, sizeof(tt_value) * (n ? n : 1));
		for (size_t i = 0; i < n; i++)
			if (convert(a, json_array_get(j, i), &out->v.items[i], depth + 1, err) < 0)
				return -TT_BAD_DESCRIPTION;
		break;
	}
	case JSON_OBJECT: {
		size_t n = json_object_size(j), i = 0;
		const char *key;
		json_t *val;
		out->type = TT_MAP;
		out->len = (uint32_t)n;
		out->v.pairs = tt_arena_alloc(a, sizeof(tt_pair) * (n ? n : 1));
		/* jansson keeps insertion order, so params keep the author's order */
		json_object_foreach(j, key, val) {
			size_t kn = strlen(key);
			out->v.pairs[i].key = tt_strn(tt_arena_dup(a, key, kn), kn);
			if (convert(a, val, &out->v.pairs[i].val, depth + 1, err) < 0)
				return -TT_BAD_DESCRIPTION;
			i++;
		}
		break;
	}
	}
	return 0;
}

static int finish(json_t *root, json_error_t *je, const char *what, tt_arena *arena,
		  tt_value *out, tt_error *err)
{
	if (!root)
		return tt_fail(err, TT_BAD_DESCRIPTION, "%s:%d:%d: %s", what, je->line,
			       je->column, je->text);
	int rc = convert(arena, root, out, 0, err);
	json_decref(root);
	return rc;
}

int tt_json_load_file(const char *path, tt_arena *arena, tt_value *out, tt_error *err)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	return finish(root, &je, path, arena, out, err);
}

int tt_json_parse(const char *text, tt_arena *arena, tt_value *out, tt_error *err)
{
	json_error_t je;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	return finish(root, &je, "<string>", arena, out, err);
}

int tt_json_parse_value(const char *text, tt_arena *arena, tt_value *out, tt_error *err)
{
	json_error_t je;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return tt_fail(err, TT_BAD_VALUE, "invalid JSON at column %d: %s", je.column, je.text);
	int rc = convert(arena, root, out, 0, err);
	json_decref(root);
	if (rc < 0 && err)
		err->code = TT_BAD_VALUE;
	return rc < 0 ? -TT_BAD_VALUE : 0;
}

/* A copy of n bytes with every invalid UTF-8 sequence replaced by U+FFFD. */
static char *utf8_fixed(const char *s, size_t n, size_t *out_n)
{
	char *d = tt_malloc(n * 3 + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = 1;
		unsigned c = (unsigned char)s[i];
		if (c >= 0xc2 && c <= 0xdf)
			k = 2;
		else if (c >= 0xe0 && c <= 0xef)
			k = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 4;
		if (i + k <= n && (c < 0x80 || k > 1) && tt_utf8_ok(s + i, k)) {
			memcpy(d + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(d + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	*out_n = o;
	return d;
}

/* One float as the shortest text that reads back as the same double, as
 * JavaScript prints numbers: 0.8 rather than jansson's default
 * 0.80000000000000004. jansson formats it; only the precision is chosen. */
static void dump_float(tt_buf *b, double f)
{
	/* at least the integer digits, so 440.0 prints as 440.0, not 4.4e2 */
	double mag = fabs(f);
	int p = mag >= 1 && mag < 1e17 ? (int)floor(log10(mag)) + 1 : 1;
	char buf[40];
	for (; p < 17; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, f);
		if (strtod(buf, NULL) == f)
			break;
	}
	json_t *j = json_real(f);
	char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(p));
	json_decref(j);
	tt_buf_append(b, s, strlen(s));
	free(s);
}

/* A scalar through jansson (escaping, number text). */
static void dump_json(tt_buf *b, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	if (s) {
		tt_buf_append(b, s, strlen(s));
		free(s);
	} else {
		tt_buf_append(b, "null", 4);
	}
	json_decref(j);
}

static void dump_str(tt_buf *b, const char *s, size_t n)
{
	size_t fn;
	char *f = utf8_fixed(s, n, &fn);
	dump_json(b, json_stringn(f, fn));
	free(f);
}

/* The containers are written here so that each float gets its own
 * precision (jansson has one for a whole document). */
static void dump_value(tt_buf *b, const tt_value *v, int depth)
{
	if (depth > 64) {
		tt_buf_append(b, "null", 4);
		return;
	}
	switch (v->type) {
	case TT_BOOL: tt_buf_append(b, v->v.b ? "true" : "false", v->v.b ? 4 : 5); break;
	case TT_INT: dump_json(b, json_integer(v->v.i)); break;
	case TT_UINT: dump_float(b, (double)v->v.u); break;
	case TT_FLOAT:
		if (isfinite(v->v.f))
			dump_float(b, v->v.f);
		else
			tt_buf_append(b, "null", 4);
		break;
	case TT_STR: dump_str(b, v->v.s, v->len); break;
	case TT_ARRAY:
		tt_buf_append(b, "[", 1);
		for (uint32_t i = 0; i < v->len; i++) {
			if (i)
				tt_buf_append(b, ",", 1);
			dump_value(b, &v->v.items[i], depth + 1);
		}
		tt_buf_append(b, "]", 1);
		break;
	case TT_MAP:
		tt_buf_append(b, "{", 1);
		for (uint32_t i = 0; i < v->len; i++) {
			const tt_value *k = &v->v.pairs[i].key;
			if (i)
				tt_buf_append(b, ",", 1);
			if (k->type == TT_STR) {
				dump_str(b, k->v.s, k->len);
			} else {
				char key[64];
				tt_value_repr(k, key, sizeof(key));
				dump_str(b, key, strlen(key));
			}
			tt_buf_append(b, ":", 1);
			dump_value(b, &v->v.pairs[i].val, depth + 1);
		}
		tt_buf_append(b, "}", 1);
		break;
	default:
		tt_buf_append(b, "null", 4);
		break;
	}
}

char *tt_json_dump(const tt_value *v)
{
	tt_buf b;
	tt_buf_init(&b, 0);
	dump_value(&b, v, 0);
	char *s = tt_strndup((const char *)tt_buf_data(&b), b.len);
	tt_buf_free(&b);
	return s;
}
