/* SPDX-License-Identifier: MIT */
/* schema.c: class descriptions, their expansion, and value coercion. */
#include "schema.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

static const char *const type_names[] = {
	"boolean", "string", "integer", "float", "enum", "any"
};

/* Option keys with a meaning; anything else lands in `extra`. */
static const char *const known_keys[] = {
	"type", "default", "nullable", "event", "required", "filterChange",
	"immediate", "acknowledge", "local", "min", "max", "list", "metas", "maxBytes",
	"conflate"
};

/* Largest maxBytes a class may declare. */
#define MAX_BYTES_LIMIT (1u << 30)

/* Names are shown in logs, pages and error messages: a NUL cuts them
 * short in C, other control characters (C0, DEL, C1) rewrite a terminal or
 * hide what a name really is. */
static bool name_chars_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false;
		/* U+0080..U+009F, once tt_utf8_ok has vouched for the sequence */
		if (p[i] == 0xc2 && i + 1 < n && p[i + 1] <= 0x9f)
			return false;
	}
	return tt_utf8_ok(s, n);
}

bool tt_name_ok(const tt_value *v)
{
	/* names are map keys in descriptions: "__proto__" is one a JavaScript
	 * client cannot decode */
	return v->type == TT_STR && v->len >= 1 && v->len <= TT_MAX_NAME &&
	       name_chars_ok(v->v.s, v->len) && !tt_str_eq(v, "__proto__");
}

int tt_class_param_index(const tt_class *c, const char *s, size_t n)
{
	for (uint32_t i = 0; i < c->n_params; i++)
		if (c->params[i].name_len == n && memcmp(c->params[i].name, s, n) == 0)
			return (int)i;
	return -1;
}

static bool is_known_key(const tt_value *k)
{
	for (size_t i = 0; i < sizeof(known_keys) / sizeof(*known_keys); i++)
		if (tt_str_eq(k, known_keys[i]))
			return true;
	return false;
}

/* A key kept and passed through: unknown, or min/max/list on a type that
 * has no use for them. */
static bool is_extra_key(const tt_param *p, const tt_value *k)
{
	if (!is_known_key(k))
		return true;
	if (tt_str_eq(k, "min") || tt_str_eq(k, "max"))
		return p->type != TT_PT_INTEGER && p->type != TT_PT_FLOAT;
	if (tt_str_eq(k, "maxBytes"))
		return p->type != TT_PT_STRING && p->type != TT_PT_ANY;
	return tt_str_eq(k, "list") && p->type != TT_PT_ENUM;
}

static bool is_int(const tt_value *v)
{
	return v->type == TT_INT || v->type == TT_UINT;
}

/* An integer a double holds exactly, as a JavaScript number does. */
static bool int_safe(const tt_value *v)
{
	return v->type == TT_INT ? v->v.i > -(1ll << 53) && v->v.i < (1ll << 53)
				 : v->v.u < (1ull << 53);
}

static bool enum_match(const tt_value *a, const tt_value *b)
{
	double x, y;
	/* two integers compare exactly: 2^53 + 1 is not 2^53, though they
	 * are the same double (TT_UINT holds only what TT_INT cannot) */
	if (is_int(a) && is_int(b))
		return a->type == b->type && a->v.u == b->v.u;
	/* numbers compare by value (JavaScript sends 1.0 as 1 and back), but
	 * only where a double holds the integer (a JavaScript BigInt equals
	 * no number); any other pair needs the same type: "1" is not 1 */
	if (tt_as_double(a, &x) && tt_as_double(b, &y))
		return x == y && !(a->type == TT_FLOAT && isnan(a->v.f)) &&
		       (!is_int(a) || int_safe(a)) && (!is_int(b) || int_safe(b));
	return tt_value_equal(a, b);
}

int tt_param_coerce(const tt_class *c, const tt_param *p, tt_value *in,
		    tt_value *out, tt_error *err)
{
	char repr[64];
	const char *tn = type_names[p->type];

	if (in->type == TT_NIL) {
		if (p->nullable) {
			*out = *in;
			return 0;
		}
		return tt_fail(err, TT_NOT_NULLABLE,
			       "class \"%s\": invalid value null for %s param \"%s\": param is not nullable",
			       c->name, tn, p->name);
	}
	switch (p->type) {
	case TT_PT_BOOLEAN:
		if (in->type != TT_BOOL)
			goto bad;
		*out = *in;
		return 0;
	case TT_PT_STRING:
		if (in->type != TT_STR)
			goto bad;
		if (!tt_utf8_ok(in->v.s, in->len))
			return tt_fail(err, TT_BAD_VALUE,
				       "class \"%s\": invalid value for string param \"%s\": not UTF-8",
				       c->name, p->name);
		if (p->max_bytes && in->len > p->max_bytes)
			return tt_fail(err, TT_BAD_VALUE,
				       "class \"%s\": param \"%s\": a string of %u bytes is longer than its maxBytes %u",
				       c->name, p->name, in->len, p->max_bytes);
		*out = *in;
		return 0;
	case TT_PT_INTEGER: {
		int64_t i;
		if (in->type == TT_INT) {
			i = in->v.i;
		} else if (in->type == TT_UINT) {
			if (!p->has_max)
				goto bad;
			i = p->imax;
		} else if (in->type == TT_FLOAT) {
			double f = in->v.f;
			if (isnan(f) || isinf(f) || floor(f) != f)
				goto bad;
			if (f >= 9223372036854775808.0) {
				if (!p->has_max)
					goto bad;
				i = p->imax;
			} else if (f < -9223372036854775808.0) {
				if (!p->has_min)
					goto bad;
				i = p->imin;
			} else {
				i = (int64_t)f;
			}
		} else {
			goto bad;
		}
		if (i < p->imin)
			i = p->imin;
		if (i > p->imax)
			i = p->imax;
		*out = tt_int(i);
		return 0;
	}
	case TT_PT_FLOAT: {
		double f;
		if (!tt_as_double(in, &f) || isnan(f))
			goto bad;
		if (f < p->fmin)
			f = p->fmin;
		if (f > p->fmax)
			f = p->fmax;
		*out = tt_float(f);
		return 0;
	}
	case TT_PT_ENUM:
		for (uint32_t k = 0; k < p->list.len; k++) {
			if (enum_match(in, &p->list.v.items[k])) {
				*out = p->list.v.items[k];
				return 0;
			}
		}
		tt_value_repr(in, repr, sizeof(repr));
		return tt_fail(err, TT_BAD_VALUE,
			       "class \"%s\": invalid value %s for enum param \"%s\": not in its list",
			       c->name, repr, p->name);
	case TT_PT_ANY:
		if (tt_value_depth(in) > TT_ANY_MAX_DEPTH)
			return tt_fail(err, TT_BAD_VALUE,
				       "class \"%s\": invalid value for any param \"%s\": nested deeper than %d",
				       c->name, p->name, TT_ANY_MAX_DEPTH);
		if (!tt_value_utf8_ok(in))
			return tt_fail(err, TT_BAD_VALUE,
				       "class \"%s\": invalid value for any param \"%s\": map keys must be strings (not \"__proto__\"), strings UTF-8",
				       c->name, p->name);
		if (!tt_value_canon(in, TT_ANY_MAX_DEPTH + 1))
			return tt_fail(err, TT_BAD_VALUE,
				       "class \"%s\": invalid value for any param \"%s\": a map has a duplicate key",
				       c->name, p->name);
		*out = *in;
		return 0;
	}
bad:
	tt_value_repr(in, repr, sizeof(repr));
	return tt_fail(err, TT_BAD_VALUE, "class \"%s\": invalid value %s for %s param \"%s\"",
		       c->name, repr, tn, p->name);
}

/* Read an optional boolean option; returns -1 on a non-boolean. */
static int opt_bool(const tt_value *pd, const char *key, bool dflt, bool *out)
{
	const tt_value *v = tt_map_get(pd, key);
	if (!v) {
		*out = dflt;
		return 0;
	}
	if (v->type != TT_BOOL)
		return -1;
	*out = v->v.b;
	return 0;
}

#define DFAIL(...) tt_fail(err, TT_BAD_DESCRIPTION, __VA_ARGS__)

/* Edit distance of two short strings (insertions, deletions,
 * substitutions, and swaps of neighbours: "mni" is one from "min"). */
static size_t distance(const char *a, size_t n, const char *b, size_t m)
{
	enum { MAX = 32 };
	if (n >= MAX || m >= MAX)
		return MAX;
	size_t d[MAX + 1][MAX + 1];
	for (size_t i = 0; i <= n; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= n; i++)
		for (size_t j = 1; j <= m; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			best = TT_MIN(best, d[i - 1][j] + 1);
			best = TT_MIN(best, d[i][j - 1] + 1);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				best = TT_MIN(best, d[i - 2][j - 2] + 1);
			d[i][j] = best;
		}
	return d[n][m];
}

const char *tt_nearest(const char *s, size_t n, const char *const *words, size_t n_words)
{
	const char *best = NULL;
	size_t bd = 3;
	for (size_t q = 0; q < n_words; q++) {
		size_t d = distance(s, n, words[q], strlen(words[q]));
		if (d < bd)
			bd = d, best = words[q];
	}
	return best;
}

/* Strict: every option key must mean something for the param's type. */
static int check_keys(const tt_class *c, const tt_param *p, const tt_value *pd, tt_error *err)
{
	for (uint32_t i = 0; i < pd->len; i++) {
		const tt_value *k = &pd->v.pairs[i].key;
		if (!is_extra_key(p, k))
			continue;
		if (is_known_key(k))
			return DFAIL("class \"%s\": param \"%s\": '%.*s' does not apply to a %s param",
				     c->name, p->name, (int)k->len, k->v.s, type_names[p->type]);
		const char *best = tt_nearest(k->v.s, k->len, known_keys,
					      sizeof(known_keys) / sizeof(*known_keys));
		if (best)
			return DFAIL("class \"%s\": param \"%s\": unknown option '%.*s': did you mean '%s'? (your own data goes under \"metas\")",
				     c->name, p->name, (int)TT_MIN(k->len, 64u), k->v.s, best);
		return DFAIL("class \"%s\": param \"%s\": unknown option '%.*s' (your own data goes under \"metas\")",
			     c->name, p->name, (int)TT_MIN(k->len, 64u), k->v.s);
	}
	return 0;
}

/* Strict: a default outside [min, max] is a mistake, not something to clip. */
static int check_default_bounds(const tt_class *c, const tt_param *p, const tt_value *def,
				tt_error *err)
{
	double d;
	if ((p->type != TT_PT_INTEGER && p->type != TT_PT_FLOAT) || !def || !tt_as_double(def, &d))
		return 0;
	if ((p->has_min && d < p->fmin) || (p->has_max && d > p->fmax)) {
		char repr[64];
		tt_value_repr(def, repr, sizeof(repr));
		return DFAIL("class \"%s\": param \"%s\": default %s is outside [min, max] = [%g, %g]",
			     c->name, p->name, repr, p->has_min ? p->fmin : -INFINITY,
			     p->has_max ? p->fmax : INFINITY);
	}
	return 0;
}

static int parse_param(tt_class *c, tt_param *p, const tt_value *pd, bool strict, tt_error *err)
{
	const char *cn = c->name, *pn = p->name;
	if (pd->type != TT_MAP)
		return DFAIL("class \"%s\": description of param \"%s\" must be a map", cn, pn);
	const tt_value *t = tt_map_get(pd, "type");
	if (!t)
		return DFAIL("class \"%s\": param \"%s\": 'type' is required", cn, pn);
	int type = -1;
	for (int i = 0; i < 6; i++)
		if (tt_str_eq(t, type_names[i]))
			type = i;
	if (type < 0) {
		char repr[64];
		tt_value_repr(t, repr, sizeof(repr));
		return DFAIL("class \"%s\": param \"%s\": type %s is not one of boolean, string, integer, float, enum, any",
			     cn, pn, repr);
	}
	p->type = (uint8_t)type;

	static const struct { const char *key; size_t off; bool dflt; } bools[] = {
		{"nullable", offsetof(tt_param, nullable), false},
		{"event", offsetof(tt_param, event), false},
		{"required", offsetof(tt_param, required), false},
		{"filterChange", offsetof(tt_param, filter_change), true},
		{"immediate", offsetof(tt_param, immediate), false},
		{"acknowledge", offsetof(tt_param, acknowledge), true},
		{"local", offsetof(tt_param, local), false},
		{"conflate", offsetof(tt_param, conflate), false},
	};
	for (size_t i = 0; i < sizeof(bools) / sizeof(*bools); i++)
		if (opt_bool(pd, bools[i].key, bools[i].dflt, (bool *)((char *)p + bools[i].off)))
			return DFAIL("class \"%s\": param \"%s\": '%s' must be a boolean", cn, pn, bools[i].key);
	if (p->event && p->conflate)
		return DFAIL("class \"%s\": param \"%s\": 'conflate' and 'event' exclude each other "
			     "(every event is delivered; conflate is for continuous values)", cn, pn);
	if (p->event)
		p->nullable = true;

	/* bounds */
	p->imin = INT64_MIN;
	p->imax = INT64_MAX;
	p->fmin = -INFINITY;
	p->fmax = INFINITY;
	if (p->type == TT_PT_INTEGER || p->type == TT_PT_FLOAT) {
		const tt_value *mn = tt_map_get(pd, "min"), *mx = tt_map_get(pd, "max");
		double d;
		if (mn && mn->type != TT_NIL) {
			if (!tt_as_double(mn, &d) || isnan(d))
				return DFAIL("class \"%s\": param \"%s\": 'min' must be a number or null", cn, pn);
			p->has_min = !isinf(d) || d > 0;
			p->fmin = d;
			if (p->type == TT_PT_INTEGER && p->has_min) {
				if (mn->type == TT_INT)
					p->imin = mn->v.i;
				else if (mn->type == TT_UINT || ceil(d) >= 9223372036854775807.0)
					p->imin = INT64_MAX;
				else if (ceil(d) > -9223372036854775808.0)
					p->imin = (int64_t)ceil(d);
			}
		}
		if (mx && mx->type != TT_NIL) {
			if (!tt_as_double(mx, &d) || isnan(d))
				return DFAIL("class \"%s\": param \"%s\": 'max' must be a number or null", cn, pn);
			p->has_max = !isinf(d) || d < 0;
			p->fmax = d;
			if (p->type == TT_PT_INTEGER && p->has_max) {
				if (mx->type == TT_INT)
					p->imax = mx->v.i;
				else if (mx->type == TT_UINT || floor(d) >= 9223372036854775807.0)
					p->imax = INT64_MAX;
				else if (floor(d) <= -9223372036854775808.0)
					p->imax = INT64_MIN;
				else
					p->imax = (int64_t)floor(d);
			}
		}
		if (p->fmin > p->fmax || p->imin > p->imax)
			return DFAIL("class \"%s\": param \"%s\": 'min' is greater than 'max'", cn, pn);
	}

	/* size bound of strings and `any` values, in bytes (an `any` counts
	 * its msgpack encoding, checked where it is encoded) */
	const tt_value *mb = tt_map_get(pd, "maxBytes");
	if (mb && (p->type == TT_PT_STRING || p->type == TT_PT_ANY)) {
		if (mb->type != TT_INT || mb->v.i < 1 || mb->v.i > MAX_BYTES_LIMIT)
			return DFAIL("class \"%s\": param \"%s\": 'maxBytes' must be an integer from 1 to %u",
				     cn, pn, MAX_BYTES_LIMIT);
		p->max_bytes = (uint32_t)mb->v.i;
	}

	/* enum list */
	const tt_value *list = tt_map_get(pd, "list");
	if (p->type == TT_PT_ENUM) {
		if (!list)
			return DFAIL("class \"%s\": param \"%s\": 'list' is required for an enum", cn, pn);
		if (list->type != TT_ARRAY || list->len == 0)
			return DFAIL("class \"%s\": param \"%s\": 'list' must be a non-empty array", cn, pn);
		tt_value_copy(&c->arena, list, &p->list);
		for (uint32_t i = 0; i < p->list.len; i++) {
			const tt_value *it = &p->list.v.items[i];
			if (it->type == TT_ARRAY || it->type == TT_MAP || (it->type == TT_FLOAT && isnan(it->v.f)))
				return DFAIL("class \"%s\": param \"%s\": 'list' items must be scalars", cn, pn);
		}
	}

	/* metas */
	const tt_value *metas = tt_map_get(pd, "metas");
	if (metas && metas->type != TT_MAP)
		return DFAIL("class \"%s\": param \"%s\": 'metas' must be a map", cn, pn);
	if (metas) {
		if (tt_value_depth(metas) > TT_ANY_MAX_DEPTH)
			return DFAIL("class \"%s\": param \"%s\": 'metas' is nested too deep", cn, pn);
		if (!tt_value_utf8_ok(metas))
			return DFAIL("class \"%s\": param \"%s\": 'metas' keys must be strings (not \"__proto__\"), strings UTF-8",
				     cn, pn);
		tt_value_copy(&c->arena, metas, &p->metas);
	} else {
		p->metas.type = TT_MAP;
		p->metas.len = 0;
		p->metas.v.pairs = NULL;
	}

	if (strict && check_keys(c, p, pd, err) < 0)
		return -TT_BAD_DESCRIPTION;

	/* extra keys, kept and passed through */
	uint32_t n_extra = 0;
	for (uint32_t i = 0; i < pd->len; i++)
		n_extra += is_extra_key(p, &pd->v.pairs[i].key);
	p->extra.type = TT_MAP;
	p->extra.len = n_extra;
	p->extra.v.pairs = tt_arena_alloc(&c->arena, sizeof(tt_pair) * (n_extra ? n_extra : 1));
	n_extra = 0;
	for (uint32_t i = 0; i < pd->len; i++) {
		const tt_pair *kv = &pd->v.pairs[i];
		if (is_extra_key(p, &kv->key)) {
			if (tt_value_depth(&kv->val) > TT_ANY_MAX_DEPTH)
				return DFAIL("class \"%s\": param \"%s\": an option is nested too deep", cn, pn);
			tt_value_copy(&c->arena, &kv->key, &p->extra.v.pairs[n_extra].key);
			tt_value_copy(&c->arena, &kv->val, &p->extra.v.pairs[n_extra].val);
			n_extra++;
		}
	}

	/* default */
	const tt_value *def = tt_map_get(pd, "default");
	if (p->event || p->required) {
		if (def && def->type != TT_NIL)
			return DFAIL("class \"%s\": param \"%s\": 'default' must be absent or null for an %s param",
				     cn, pn, p->event ? "event" : "required");
		p->def = tt_nil();
	} else {
		if (!def)
			return DFAIL("class \"%s\": param \"%s\": 'default' is required", cn, pn);
		if (strict && check_default_bounds(c, p, def, err) < 0)
			return -TT_BAD_DESCRIPTION;
		tt_value tmp, coerced;
		tt_value_copy(&c->arena, def, &tmp);
		tt_error e2;
		if (tt_param_coerce(c, p, &tmp, &coerced, &e2) < 0)
			return DFAIL("invalid default: %s", e2.msg);
		p->def = coerced;
	}
	return 0;
}

/* The expanded description of one param as a tree (arena). */
static void expand_param(tt_arena *a, const tt_param *p, tt_value *out)
{
	uint32_t n = 12 + p->extra.len;
	if (p->type == TT_PT_INTEGER || p->type == TT_PT_FLOAT)
		n += 2;
	if (p->type == TT_PT_ENUM)
		n += 1;
	tt_pair *kv = tt_arena_alloc(a, sizeof(tt_pair) * n);
	uint32_t i = 0;
#define KV(k, x) do { kv[i].key = tt_str(k); kv[i].val = (x); i++; } while (0)
	KV("type", tt_str(type_names[p->type]));
	KV("default", p->def);
	KV("nullable", tt_bool(p->nullable));
	KV("event", tt_bool(p->event));
	KV("required", tt_bool(p->required));
	KV("filterChange", tt_bool(p->filter_change));
	KV("immediate", tt_bool(p->immediate));
	KV("acknowledge", tt_bool(p->acknowledge));
	KV("local", tt_bool(p->local));
	KV("metas", p->metas);
	/* an unbounded end is an IEEE infinity, as soundworks has it (-Infinity,
	 * +Infinity): range checks written for it keep working. msgpack carries
	 * infinities; JSON cannot, so schema files spell them null, which parses
	 * to the same class (a stored description re-expands the same way) */
	if (p->type == TT_PT_INTEGER) {
		KV("min", p->has_min ? tt_int(p->imin) : tt_float(-INFINITY));
		KV("max", p->has_max ? tt_int(p->imax) : tt_float(INFINITY));
	} else if (p->type == TT_PT_FLOAT) {
		KV("min", tt_float(p->fmin));
		KV("max", tt_float(p->fmax));
	}
	if (p->type == TT_PT_ENUM)
		KV("list", p->list);
	if (p->max_bytes) /* only when given: classes without it keep their identity */
		KV("maxBytes", tt_int(p->max_bytes));
	if (p->conflate) /* the same */
		KV("conflate", tt_bool(true));
#undef KV
	for (uint32_t k = 0; k < p->extra.len; k++)
		kv[i++] = p->extra.v.pairs[k];
	out->type = TT_MAP;
	out->len = i;
	out->v.pairs = kv;
}

static int create(const char *name, size_t name_len, const tt_value *description, bool strict,
		  tt_class **out, tt_error *err)
{
	*out = NULL;
	tt_class *c = tt_calloc(1, sizeof(*c));
	int rc;
	c->name = tt_strndup(name, name_len);
	c->name_len = (uint32_t)name_len;
	tt_arena_init(&c->arena, 4096);
	tt_buf_init(&c->desc, 0);
	tt_buf_init(&c->canon, 0);

	if (name_len < 1 || name_len > TT_MAX_NAME || !name_chars_ok(name, name_len)) {
		rc = DFAIL("class name must be 1 to %d bytes of printable UTF-8 (no control characters)",
			   TT_MAX_NAME);
		goto fail;
	}
	if (description->type != TT_MAP) {
		rc = DFAIL("class \"%s\": description must be a map of params", c->name);
		goto fail;
	}

	if (description->len > TT_MAX_PARAMS) {
		rc = DFAIL("class \"%s\": more than %d params", c->name, TT_MAX_PARAMS);
		goto fail;
	}
	c->params = tt_arena_alloc(&c->arena, sizeof(tt_param) * (description->len ? description->len : 1));
	memset(c->params, 0, sizeof(tt_param) * description->len);
	for (uint32_t i = 0; i < description->len; i++) {
		const tt_pair *kv = &description->v.pairs[i];
		if (!tt_name_ok(&kv->key)) {
			rc = DFAIL("class \"%s\": param names must be strings of 1 to %d bytes of "
				   "printable UTF-8 (no control characters)", c->name, TT_MAX_NAME);
			goto fail;
		}
		if (tt_class_param_index(c, kv->key.v.s, kv->key.len) >= 0) {
			rc = DFAIL("class \"%s\": param \"%.*s\" is declared twice", c->name,
				   (int)kv->key.len, kv->key.v.s);
			goto fail;
		}
		tt_param *p = &c->params[i];
		char *pn = tt_arena_alloc(&c->arena, kv->key.len + 1u);
		memcpy(pn, kv->key.v.s, kv->key.len);
		pn[kv->key.len] = '\0';
		p->name = pn;
		p->name_len = kv->key.len;
		c->n_params = i + 1; /* so the duplicate check sees declared params only */
		if ((rc = parse_param(c, p, &kv->val, strict, err)) < 0)
			goto fail;
	}
	c->n_params = description->len;
	/* descriptions are sent to every client: their strings must decode */
	if (!tt_value_utf8_ok(description)) {
		rc = DFAIL("class \"%s\": description map keys must be strings, strings UTF-8", c->name);
		goto fail;
	}

	/* Encode the expanded description twice: as declared (what clients
	 * get, so UIs keep the author's order) and canonical (identity). */
	tt_arena tmp;
	tt_arena_init(&tmp, 4096);
	tt_value exp = {.type = TT_MAP, .len = c->n_params};
	exp.v.pairs = tt_arena_alloc(&tmp, sizeof(tt_pair) * (c->n_params ? c->n_params : 1));
	for (uint32_t i = 0; i < c->n_params; i++) {
		exp.v.pairs[i].key = tt_strn(c->params[i].name, c->params[i].name_len);
		expand_param(&tmp, &c->params[i], &exp.v.pairs[i].val);
	}
	tt_enc_value(&c->desc, &exp);
	tt_value canon;
	tt_value_copy(&tmp, &exp, &canon);
	if (!tt_value_canon(&canon, 64)) {
		/* a map with a duplicate key in metas or an option: the class
		 * would have no identity independent of key order */
		tt_arena_destroy(&tmp);
		rc = DFAIL("class \"%s\": a map in the description has a duplicate key", c->name);
		goto fail;
	}
	tt_enc_value(&c->canon, &canon);
	tt_arena_destroy(&tmp);
	*out = c;
	return 0;
fail:
	tt_class_free(c);
	return rc;
}

int tt_class_create(const char *name, size_t name_len, const tt_value *description,
		    tt_class **out, tt_error *err)
{
	return create(name, name_len, description, false, out, err);
}

int tt_class_create_strict(const char *name, size_t name_len, const tt_value *description,
			   tt_class **out, tt_error *err)
{
	return create(name, name_len, description, true, out, err);
}

void tt_class_free(tt_class *c)
{
	if (!c)
		return;
	free(c->name);
	tt_arena_destroy(&c->arena);
	tt_buf_free(&c->desc);
	tt_buf_free(&c->canon);
	free(c);
}

bool tt_class_same(const tt_class *a, const tt_class *b)
{
	return a->canon.len == b->canon.len &&
	       memcmp(tt_buf_data(&a->canon), tt_buf_data(&b->canon), a->canon.len) == 0;
}
