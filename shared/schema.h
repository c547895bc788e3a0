/* SPDX-License-Identifier: MIT */
/* schema.h: classes of shared states. A class is a name and a description
 * {param: {type, default, ...options}} (PROTOCOL.md §4, §7).
 * This module parses and validates descriptions, expands them with every
 * option's default, and validates and coerces values. Pure core: no I/O. */
#ifndef TT_SCHEMA_H
#define TT_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "common.h"
#include "value.h"

#define TT_MAX_PARAMS 256
#define TT_MAX_NAME 128
#define TT_ANY_MAX_DEPTH 16

typedef enum tt_ptype {
	TT_PT_BOOLEAN,
	TT_PT_STRING,
	TT_PT_INTEGER,
	TT_PT_FLOAT,
	TT_PT_ENUM,
	TT_PT_ANY
} tt_ptype;

typedef struct tt_param {
	const char *name; /* in the class arena, NUL-terminated */
	uint32_t name_len;
	uint8_t type;     /* tt_ptype */
	bool nullable, event, required, filter_change, immediate, acknowledge, local;
	/* a newer UPDATE may replace an unsent older one in a client's queue
	 * (PROTOCOL.md §6b) */
	bool conflate;
	int64_t imin, imax; /* integer bounds (INT64_MIN/MAX when unbounded) */
	double fmin, fmax;  /* float bounds (-inf/+inf when unbounded) */
	bool has_min, has_max;
	uint32_t max_bytes; /* string/any: maxBytes option, 0 = the server's default */
	tt_value def;     /* coerced default, nil for event/required */
	tt_value list;    /* enum: the allowed values */
	tt_value metas;   /* map */
	tt_value extra;   /* map of unknown option keys, passed through */
} tt_param;

typedef struct tt_class {
	char *name; /* owned, NUL-terminated */
	uint32_t name_len;
	uint32_t n_params;
	tt_param *params; /* in arena, declared order */
	tt_arena arena;   /* owns every tree of the class */
	tt_buf desc;      /* expanded description, msgpack, declared order */
	tt_buf canon;     /* same, canonical order: identity of the class */
} tt_class;

/* Build a class from a description tree (from JSON or msgpack). The tree is
 * copied; the caller keeps ownership of it. On error returns -code
 * (TT_BAD_DESCRIPTION) with err naming class, param and reason, and *out is
 * NULL. Lenient: option keys it does not know are kept and passed through
 * (descriptions stored or received as they are). */
int tt_class_create(const char *name, size_t name_len, const tt_value *description,
		    tt_class **out, tt_error *err);
/* The same, strict: what a person writes (a schema file, DEFINE). An
 * option key that is not an option of the param's type is refused with a
 * did-you-mean ("mni": did you mean "min"?), and so is a default outside
 * [min, max]; the author's own data goes under "metas". */
int tt_class_create_strict(const char *name, size_t name_len, const tt_value *description,
			   tt_class **out, tt_error *err);
void tt_class_free(tt_class *c); /* accepts NULL */

/* True when both classes have the same expanded description (key order and
 * spelled-out defaults do not matter). */
bool tt_class_same(const tt_class *a, const tt_class *b);

/* Index of the param named (s, n), or -1. */
int tt_class_param_index(const tt_class *c, const char *s, size_t n);

/* Validate and coerce one value for param p of class c (PROTOCOL.md §7).
 * in may be modified (an `any` map is canonicalised in place); *out may
 * point into in. Returns 0, or -TT_BAD_VALUE / -TT_NOT_NULLABLE with a
 * message naming class, param and value. */
int tt_param_coerce(const tt_class *c, const tt_param *p, tt_value *in,
		    tt_value *out, tt_error *err);

/* The word of words (n_words of them) nearest to (s, n), if it is at most
 * two edits away (a typo), else NULL: for did-you-mean messages. */
const char *tt_nearest(const char *s, size_t n, const char *const *words, size_t n_words);

/* Check a class or param name from the network: 1..TT_MAX_NAME bytes of
 * UTF-8 without control characters (NUL, C0, DEL, C1). */
bool tt_name_ok(const tt_value *v);

#endif
