/* SPDX-License-Identifier: MIT */
/* value.h: the dynamic value tree of libtutti. Decoded messages, JSON schema
 * files and class descriptions are all trees of tt_value, so the core never
 * sees msgpack or JSON types. Trees built by the codec live in an arena; a
 * TT_STR or TT_BIN may point into the input buffer (zero copy). */
#ifndef TT_VALUE_H
#define TT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef enum tt_type {
	TT_NIL,
	TT_BOOL,
	TT_INT,   /* int64 */
	TT_UINT,  /* only for integers above INT64_MAX */
	TT_FLOAT, /* float64 (float32 is widened on decode) */
	TT_STR,
	TT_BIN,
	TT_ARRAY,
	TT_MAP,
	TT_EXT,
	TT_RAW    /* already-encoded msgpack bytes (a stored `any` value) */
} tt_type;

typedef struct tt_value tt_value;
typedef struct tt_pair tt_pair;

struct tt_value {
	uint8_t type;     /* tt_type */
	int8_t ext_type;  /* TT_EXT only */
	uint32_t len;     /* bytes (STR/BIN/EXT/RAW), items (ARRAY), pairs (MAP) */
	union {
		bool b;
		int64_t i;
		uint64_t u;
		double f;
		const char *s;   /* STR/BIN/EXT/RAW bytes, not NUL-terminated */
		tt_value *items; /* ARRAY */
		tt_pair *pairs;  /* MAP */
	} v;
};

struct tt_pair {
	tt_value key, val;
};

static inline tt_value tt_nil(void) { tt_value v = {.type = TT_NIL}; return v; }
static inline tt_value tt_bool(bool b) { tt_value v = {.type = TT_BOOL}; v.v.b = b; return v; }
static inline tt_value tt_int(int64_t i) { tt_value v = {.type = TT_INT}; v.v.i = i; return v; }
static inline tt_value tt_float(double f) { tt_value v = {.type = TT_FLOAT}; v.v.f = f; return v; }
tt_value tt_str(const char *s); /* borrows s (NUL-terminated) */
tt_value tt_strn(const char *s, size_t n);

/* True when v is a string equal to the NUL-terminated s. */
bool tt_str_eq(const tt_value *v, const char *s);
/* Value of key (a string) in map m, or NULL (also when m is NULL or not a
 * map). */
const tt_value *tt_map_get(const tt_value *m, const char *key);
/* True when v is a number (int, uint or float); *out gets it as a double. */
bool tt_as_double(const tt_value *v, double *out);
/* Lenient readers of fields the server wrote itself (records, messages
 * between nodes): v may be NULL. A number as uint64_t (0 when absent, not
 * a number or not positive), as a double (0 when absent or not a number);
 * the bytes of a string or binary (false otherwise, *p and *n untouched). */
uint64_t tt_as_u64(const tt_value *v);
double tt_as_f64(const tt_value *v);
bool tt_as_bytes(const tt_value *v, const void **p, size_t *n);

/* Strict structural equality: same type and same content, map pairs in the
 * same order. Canonicalise first (tt_value_canon) to ignore key order. */
bool tt_value_equal(const tt_value *a, const tt_value *b);
/* Total order used for canonical map key order: type first, then content. */
int tt_value_cmp(const tt_value *a, const tt_value *b);
/* Sort every map of the tree by key, in place. Returns false when a map has
 * a duplicate key. depth_left bounds recursion; false when exceeded. */
bool tt_value_canon(tt_value *v, int depth_left);
/* Nesting depth: 0 for a scalar, 1 for a flat array/map... */
int tt_value_depth(const tt_value *v);
/* Deep copy into the arena (strings included). */
void tt_value_copy(tt_arena *a, const tt_value *src, tt_value *out);
/* Printable short rendering for error messages (truncated to cap). */
void tt_value_repr(const tt_value *v, char *out, size_t cap);
/* True when the n bytes at s are well-formed UTF-8 (no overlong forms,
 * no surrogates). msgpack `str` must be UTF-8: a client's decoder may throw
 * on anything else, so the server lets none through. */
bool tt_utf8_ok(const char *s, size_t n);
/* Every string of the tree is UTF-8 and every map key is a string: what
 * any client can decode (PROTOCOL.md §1). */
bool tt_value_utf8_ok(const tt_value *v);
/* Name of a type for messages: "nil", "boolean", "integer", "float",
 * "string", ... */
const char *tt_type_name(int type);

#endif
