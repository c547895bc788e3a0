/* SPDX-License-Identifier: MIT */
/* test_value.c: unit tests of shared/value.c: constructors, lookup,
 * equality and ordering, canonicalisation (key order, duplicate keys,
 * depth), depth, deep copy and the repr used in error messages. */
#include <math.h>
#include <stdlib.h>

#include "tt_test.h"

static int setup(void **state)
{
	tt_arena *a = malloc(sizeof(*a));
	tt_arena_init(a, 0);
	*state = a;
	return 0;
}

static int teardown(void **state)
{
	tt_arena_destroy(*state);
	free(*state);
	return 0;
}

static void test_constructors(void **state)
{
	(void)state;
	tt_value v = tt_nil();
	assert_int_equal(v.type, TT_NIL);
	v = tt_bool(true);
	assert_int_equal(v.type, TT_BOOL);
	assert_true(v.v.b);
	v = tt_int(INT64_MIN);
	assert_int_equal(v.type, TT_INT);
	assert_true(v.v.i == INT64_MIN);
	v = tt_float(-2.5);
	assert_int_equal(v.type, TT_FLOAT);
	assert_double_equal(v.v.f, -2.5);
	const char *s = "hello";
	v = tt_str(s);
	assert_int_equal(v.type, TT_STR);
	assert_int_equal(v.len, 5);
	assert_ptr_equal(v.v.s, s); /* borrowed, not copied */
	v = tt_strn("abc", 2);
	assert_int_equal(v.len, 2);
	assert_true(tt_str_eq(&v, "ab"));
	assert_false(tt_str_eq(&v, "abc"));
	assert_false(tt_str_eq(&v, "a"));
	tt_value i = tt_int(1);
	assert_false(tt_str_eq(&i, "1"));
	tt_value empty = tt_str("");
	assert_true(tt_str_eq(&empty, ""));
}

static void test_map_get(void **state)
{
	tt_arena *a = *state;
	tt_value m = tj(a, "{\"a\": 1, \"bb\": \"x\", \"b\": null}");
	const tt_value *v = tt_map_get(&m, "a");
	assert_non_null(v);
	assert_int_equal(v->type, TT_INT);
	assert_int_equal(v->v.i, 1);
	v = tt_map_get(&m, "b");
	assert_non_null(v);
	assert_int_equal(v->type, TT_NIL);
	assert_non_null(tt_map_get(&m, "bb"));
	assert_null(tt_map_get(&m, "c"));
	assert_null(tt_map_get(&m, ""));
	/* not a map */
	tt_value arr = tj(a, "[\"a\", 1]");
	assert_null(tt_map_get(&arr, "a"));
	/* non-string keys are skipped: {1: 2, "1": 3} */
	tt_value mixed = tm(a, "82 01 02 a1 31 03");
	v = tt_map_get(&mixed, "1");
	assert_non_null(v);
	assert_int_equal(v->v.i, 3);
	/* first of duplicate keys */
	tt_value dup = tm(a, "82 a1 61 01 a1 61 02");
	assert_int_equal(tt_map_get(&dup, "a")->v.i, 1);
}

static void test_as_double(void **state)
{
	(void)state;
	double d = 0;
	tt_value v = tt_int(-7);
	assert_true(tt_as_double(&v, &d));
	assert_double_equal(d, -7.0);
	v.type = TT_UINT;
	v.v.u = UINT64_MAX;
	assert_true(tt_as_double(&v, &d));
	assert_double_equal(d, 18446744073709551615.0);
	v = tt_float(0.25);
	assert_true(tt_as_double(&v, &d));
	assert_double_equal(d, 0.25);
	d = 42;
	v = tt_str("1");
	assert_false(tt_as_double(&v, &d));
	v = tt_bool(true);
	assert_false(tt_as_double(&v, &d));
	v = tt_nil();
	assert_false(tt_as_double(&v, &d));
	assert_double_equal(d, 42); /* untouched */
}

static void test_equal_scalars(void **state)
{
	tt_arena *a = *state;
	tt_value x, y;
	x = tt_int(1), y = tt_int(1);
	assert_true(tt_value_equal(&x, &y));
	y = tt_int(2);
	assert_false(tt_value_equal(&x, &y));
	/* strict: an int and a float of the same value differ */
	y = tt_float(1.0);
	assert_false(tt_value_equal(&x, &y));
	x = tt_float(1.0);
	assert_true(tt_value_equal(&x, &y));
	x = tt_str("1"), y = tt_int(1);
	assert_false(tt_value_equal(&x, &y));
	x = tt_bool(true), y = tt_bool(true);
	assert_true(tt_value_equal(&x, &y));
	y = tt_bool(false);
	assert_false(tt_value_equal(&x, &y));
	x = tt_nil(), y = tt_nil();
	assert_true(tt_value_equal(&x, &y));
	y = tt_bool(false);
	assert_false(tt_value_equal(&x, &y));
	/* str and bin with the same bytes differ; strings by content */
	x = tm(a, "a2 61 62"), y = tm(a, "c4 02 61 62");
	assert_int_equal(y.type, TT_BIN);
	assert_false(tt_value_equal(&x, &y));
	y = tt_str("ab");
	assert_true(tt_value_equal(&x, &y)); /* different pointers, same bytes */
	y = tt_str("abc");
	assert_false(tt_value_equal(&x, &y));
	/* ext: the ext type counts */
	x = tm(a, "d4 01 07"), y = tm(a, "d4 02 07");
	assert_false(tt_value_equal(&x, &y));
	y = tm(a, "d4 01 07");
	assert_true(tt_value_equal(&x, &y));
	/* uint vs uint */
	x = tm(a, "cf ff ff ff ff ff ff ff ff"), y = tm(a, "cf ff ff ff ff ff ff ff fe");
	assert_int_equal(x.type, TT_UINT);
	assert_false(tt_value_equal(&x, &y));
}

static void test_equal_containers(void **state)
{
	tt_arena *a = *state;
	tt_value x = tj(a, "[1, [2, \"x\"], {\"k\": [true]}]");
	tt_value y = tj(a, "[1, [2, \"x\"], {\"k\": [true]}]");
	assert_true(tt_value_equal(&x, &y));
	y = tj(a, "[1, [2, \"x\"], {\"k\": [false]}]");
	assert_false(tt_value_equal(&x, &y));
	y = tj(a, "[1, [2, \"x\"]]");
	assert_false(tt_value_equal(&x, &y)); /* prefix */
	/* map pairs in another order: not equal until canonicalised */
	x = tj(a, "{\"a\": 1, \"b\": 2}");
	y = tj(a, "{\"b\": 2, \"a\": 1}");
	assert_false(tt_value_equal(&x, &y));
	assert_true(tt_value_canon(&x, 8));
	assert_true(tt_value_canon(&y, 8));
	assert_true(tt_value_equal(&x, &y));
	/* [] vs {} */
	x = tj(a, "[]"), y = tj(a, "{}");
	assert_false(tt_value_equal(&x, &y));
}

static void test_cmp_order(void **state)
{
	tt_arena *a = *state;
	tt_value x, y;
	/* type first: nil < bool < int < float < str */
	x = tt_nil(), y = tt_bool(false);
	assert_true(tt_value_cmp(&x, &y) < 0);
	x = tt_int(100), y = tt_float(-1.0);
	assert_true(tt_value_cmp(&x, &y) < 0);
	x = tt_float(1e300), y = tt_str("");
	assert_true(tt_value_cmp(&x, &y) < 0);
	assert_true(tt_value_cmp(&y, &x) > 0);
	/* ints by value, negatives included (no overflow on subtraction) */
	x = tt_int(INT64_MIN), y = tt_int(INT64_MAX);
	assert_true(tt_value_cmp(&x, &y) < 0);
	assert_true(tt_value_cmp(&y, &x) > 0);
	/* strings: bytes, then length */
	x = tt_str("ab"), y = tt_str("abc");
	assert_true(tt_value_cmp(&x, &y) < 0);
	x = tt_str("b");
	assert_true(tt_value_cmp(&x, &y) > 0);
	x = tt_str(""), y = tt_str("");
	assert_int_equal(tt_value_cmp(&x, &y), 0);
	/* bytes compare unsigned: "\xff" after "a" */
	x = tm(a, "a1 ff"), y = tt_str("a");
	assert_true(tt_value_cmp(&x, &y) > 0);
	x = tt_bool(false), y = tt_bool(true);
	assert_true(tt_value_cmp(&x, &y) < 0);
	/* arrays element-wise then by length */
	x = tj(a, "[1, 2]"), y = tj(a, "[1, 3]");
	assert_true(tt_value_cmp(&x, &y) < 0);
	y = tj(a, "[1, 2, 0]");
	assert_true(tt_value_cmp(&x, &y) < 0);
}

/* BUG(2026-11-22): tt_value_cmp says a NaN float equals every float
 * (value.c:68: (a > b) - (a < b) is 0 for NaN), so tt_value_equal(NaN, 1.0)
 * is true. NaN does reach it: `any` values accept every msgpack value, and
 * canonicalising {NaN: 1, 2.0: 2} refuses it as having a duplicate key. */
static void test_nan_not_equal(void **state)
{
	tt_arena *a = *state;
	tt_value x = tt_float(NAN), y = tt_float(1.0);
	assert_false(tt_value_equal(&x, &y));
	assert_false(tt_value_equal(&y, &x));
	/* {NaN: 1, 2.0: 2}: two distinct keys */
	tt_value m = tm(a, "82 cb 7f f8 00 00 00 00 00 00 01 cb 40 00 00 00 00 00 00 00 02");
	assert_true(tt_value_canon(&m, 4));
}

static void test_canon_sorts(void **state)
{
	tt_arena *a = *state;
	tt_value v = tj(a, "{\"b\": 1, \"a\": {\"z\": 1, \"y\": [{\"d\": 0, \"c\": 0}]}, \"aa\": 2}");
	assert_true(tt_value_canon(&v, 8));
	assert_int_equal(v.len, 3);
	assert_true(tt_str_eq(&v.v.pairs[0].key, "a"));
	assert_true(tt_str_eq(&v.v.pairs[1].key, "aa"));
	assert_true(tt_str_eq(&v.v.pairs[2].key, "b"));
	const tt_value *in = &v.v.pairs[0].val;
	assert_true(tt_str_eq(&in->v.pairs[0].key, "y"));
	assert_true(tt_str_eq(&in->v.pairs[1].key, "z"));
	/* maps inside arrays are sorted too */
	const tt_value *m = &in->v.pairs[0].val.v.items[0];
	assert_true(tt_str_eq(&m->v.pairs[0].key, "c"));
	assert_true(tt_str_eq(&m->v.pairs[1].key, "d"));
	/* values follow their keys */
	assert_int_equal(v.v.pairs[1].val.v.i, 2);
	assert_int_equal(v.v.pairs[2].val.v.i, 1);
	/* arrays keep their order */
	tt_value arr = tj(a, "[3, 1, 2]");
	assert_true(tt_value_canon(&arr, 2));
	assert_int_equal(arr.v.items[0].v.i, 3);
	assert_int_equal(arr.v.items[2].v.i, 2);
	/* mixed key types: by type first (int before str) */
	tt_value mk = tm(a, "82 a1 61 01 05 02"); /* {"a": 1, 5: 2} */
	assert_true(tt_value_canon(&mk, 2));
	assert_int_equal(mk.v.pairs[0].key.type, TT_INT);
	assert_int_equal(mk.v.pairs[1].key.type, TT_STR);
	/* scalars and empty containers */
	tt_value s = tt_int(3);
	assert_true(tt_value_canon(&s, 0));
	tt_value e = tj(a, "{}");
	assert_true(tt_value_canon(&e, 1));
}

static void test_canon_duplicates(void **state)
{
	tt_arena *a = *state;
	tt_value v = tm(a, "82 a1 61 01 a1 61 02"); /* {"a": 1, "a": 2} */
	assert_false(tt_value_canon(&v, 4));
	/* duplicates far apart, after sorting they meet */
	v = tm(a, "83 a1 62 01 a1 63 02 a1 62 03"); /* {"b", "c", "b"} */
	assert_false(tt_value_canon(&v, 4));
	/* nested duplicate */
	v = tm(a, "91 82 01 c0 01 c0"); /* [{1: nil, 1: nil}] */
	assert_false(tt_value_canon(&v, 4));
	/* keys that are maps: {{a:1,b:2}: 1, {b:2,a:1}: 2} are the same key
	 * once canonical */
	v = tm(a, "82 82 a1 61 01 a1 62 02 01 82 a1 62 02 a1 61 01 02");
	assert_false(tt_value_canon(&v, 4));
	/* same bytes, different types: not duplicates */
	v = tm(a, "82 a1 61 01 c4 01 61 02"); /* {"a": 1, bin "a": 2} */
	assert_true(tt_value_canon(&v, 4));
	/* 1 and 1.0 are different keys */
	v = tm(a, "82 01 01 cb 3f f0 00 00 00 00 00 00 02");
	assert_true(tt_value_canon(&v, 4));
}

static void test_canon_depth(void **state)
{
	tt_arena *a = *state;
	tt_value v = nested_arrays(a, 3);
	assert_true(tt_value_canon(&v, 3));
	assert_false(tt_value_canon(&v, 2));
	tt_value flat = tj(a, "{\"a\": 1}");
	assert_true(tt_value_canon(&flat, 1));
	assert_false(tt_value_canon(&flat, 0));
	/* a map key that is a container counts as a level */
	tt_value mk = tm(a, "81 91 01 02"); /* {[1]: 2} */
	assert_true(tt_value_canon(&mk, 2));
	assert_false(tt_value_canon(&mk, 1));
}

static void test_depth(void **state)
{
	tt_arena *a = *state;
	tt_value v = tt_int(1);
	assert_int_equal(tt_value_depth(&v), 0);
	v = tj(a, "[]");
	assert_int_equal(tt_value_depth(&v), 1);
	v = tj(a, "{}");
	assert_int_equal(tt_value_depth(&v), 1);
	v = tj(a, "[1, [2], [[3]], 4]");
	assert_int_equal(tt_value_depth(&v), 3);
	v = tj(a, "{\"a\": [1], \"b\": {\"c\": {}}}");
	assert_int_equal(tt_value_depth(&v), 3);
	v = tm(a, "81 91 91 01 02"); /* {[[1]]: 2}: the key's depth counts */
	assert_int_equal(tt_value_depth(&v), 3);
	v = nested_arrays(a, 40);
	assert_int_equal(tt_value_depth(&v), 40);
}

static void test_copy(void **state)
{
	tt_arena *a = *state;
	tt_arena src;
	tt_arena_init(&src, 0);
	tt_value v = tj(&src, "{\"name\": \"abc\", \"list\": [1, 2.5, null, true, {\"x\": \"y\"}]}");
	tt_value bin = tm(&src, "c4 03 01 02 03");
	tt_value c, cb;
	tt_value_copy(a, &v, &c);
	tt_value_copy(a, &bin, &cb);
	assert_true(tt_value_equal(&v, &c));
	assert_true(tt_value_equal(&bin, &cb));
	assert_ptr_not_equal(c.v.pairs, v.v.pairs);
	assert_ptr_not_equal(c.v.pairs[0].val.v.s, v.v.pairs[0].val.v.s);
	/* the copy survives its source */
	tt_arena_destroy(&src);
	assert_true(tt_str_eq(&c.v.pairs[0].val, "abc"));
	assert_true(tt_str_eq(&c.v.pairs[1].val.v.items[4].v.pairs[0].val, "y"));
	assert_double_equal(c.v.pairs[1].val.v.items[1].v.f, 2.5);
	assert_int_equal(cb.len, 3);
	assert_int_equal((unsigned char)cb.v.s[2], 3);
	/* empty containers */
	tt_value e = tj(a, "[]"), ce;
	tt_value_copy(a, &e, &ce);
	assert_int_equal(ce.type, TT_ARRAY);
	assert_int_equal(ce.len, 0);
}

static void repr_is(const tt_value *v, const char *want)
{
	char out[64];
	memset(out, 'Z', sizeof(out));
	tt_value_repr(v, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_repr(void **state)
{
	tt_arena *a = *state;
	tt_value v = tt_nil();
	repr_is(&v, "null");
	v = tt_bool(true);
	repr_is(&v, "true");
	v = tt_bool(false);
	repr_is(&v, "false");
	v = tt_int(-42);
	repr_is(&v, "-42");
	v = tt_int(INT64_MIN);
	repr_is(&v, "-9223372036854775808");
	v = tm(a, "cf ff ff ff ff ff ff ff ff");
	repr_is(&v, "18446744073709551615");
	v = tt_float(1.5);
	repr_is(&v, "1.5");
	v = tt_float(0.1);
	repr_is(&v, "0.10000000000000001"); /* %.17g: round-trips */
	v = tt_float(NAN);
	repr_is(&v, "NaN");
	v = tt_float(INFINITY);
	repr_is(&v, "Infinity");
	v = tt_float(-INFINITY);
	repr_is(&v, "-Infinity");
	v = tt_str("abc");
	repr_is(&v, "\"abc\"");
	v = tt_str("");
	repr_is(&v, "\"\"");
	/* long strings: 40 bytes then an ellipsis */
	v = tt_str("0123456789012345678901234567890123456789X");
	repr_is(&v, "\"0123456789012345678901234567890123456789...\"");
	v = tt_str("0123456789012345678901234567890123456789");
	repr_is(&v, "\"0123456789012345678901234567890123456789\"");
	/* not NUL-terminated: only len bytes */
	v = tt_strn("abcdef", 2);
	repr_is(&v, "\"ab\"");
	v = tj(a, "[1, 2, 3]");
	repr_is(&v, "[array of 3]");
	v = tj(a, "{\"a\": 1, \"b\": 2}");
	repr_is(&v, "{map of 2}");
	v = tm(a, "c4 01 00");
	repr_is(&v, "<binary>");
	v = tm(a, "d4 01 00");
	repr_is(&v, "<ext>");
	/* truncated to cap, always terminated */
	char small[4];
	v = tt_str("abcdef");
	tt_value_repr(&v, small, sizeof(small));
	assert_string_equal(small, "\"ab");
	v = tt_int(123456);
	tt_value_repr(&v, small, sizeof(small));
	assert_string_equal(small, "123");
	/* cap 0 writes nothing */
	char none[1] = {'Q'};
	tt_value_repr(&v, none, 0);
	assert_int_equal(none[0], 'Q');
}

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(tt_type_name(TT_NIL), "nil");
	assert_string_equal(tt_type_name(TT_BOOL), "boolean");
	assert_string_equal(tt_type_name(TT_INT), "integer");
	assert_string_equal(tt_type_name(TT_UINT), "integer");
	assert_string_equal(tt_type_name(TT_FLOAT), "float");
	assert_string_equal(tt_type_name(TT_STR), "string");
	assert_string_equal(tt_type_name(TT_BIN), "binary");
	assert_string_equal(tt_type_name(TT_ARRAY), "array");
	assert_string_equal(tt_type_name(TT_MAP), "map");
	assert_string_equal(tt_type_name(TT_EXT), "ext");
	assert_string_equal(tt_type_name(99), "?");
	/* error code names (common.c) */
	assert_string_equal(tt_code_name(TT_BAD_VALUE), "BAD_VALUE");
	assert_string_equal(tt_code_name(TT_INTERNAL), "INTERNAL");
	assert_string_equal(tt_code_name(TT_STORAGE), "STORAGE");
	assert_string_equal(tt_code_name(7), "UNKNOWN");
}

static void test_fail_and_arena(void **state)
{
	(void)state;
	tt_error err;
	memset(&err, 0, sizeof(err));
	assert_int_equal(tt_fail(&err, TT_NOT_OWNER, "state %d", 7), -TT_NOT_OWNER);
	assert_int_equal(err.code, TT_NOT_OWNER);
	assert_string_equal(err.msg, "state 7");
	assert_int_equal(tt_fail(NULL, TT_LIMIT, "x"), -TT_LIMIT);
	/* long messages are cut, terminated */
	char big[600];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tt_fail(&err, TT_BAD_VALUE, "%s", big);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	/* arena: aligned, large allocations, reset keeps working */
	tt_arena ar;
	tt_arena_init(&ar, 128);
	for (int i = 0; i < 100; i++) {
		void *p = tt_arena_alloc(&ar, (size_t)i * 7 + 1);
		assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
		memset(p, 0xab, (size_t)i * 7 + 1);
	}
	char *huge = tt_arena_alloc(&ar, 100000);
	memset(huge, 1, 100000);
	tt_arena_reset(&ar);
	char *d = tt_arena_dup(&ar, "abc", 4);
	assert_string_equal(d, "abc");
	tt_arena_destroy(&ar);
	tt_arena_destroy(&ar); /* twice is harmless */
	/* buf with headroom */
	tt_buf b;
	tt_buf_init(&b, 16);
	for (int i = 0; i < 1000; i++)
		tt_buf_append(&b, "0123456789", 10);
	assert_int_equal(b.len, 10000);
	assert_memory_equal(tt_buf_data(&b) + 9990, "0123456789", 10);
	assert_ptr_equal(tt_buf_data(&b), b.base + 16);
	tt_buf_clear(&b);
	assert_int_equal(b.len, 0);
	tt_buf_free(&b);
	tt_buf_free(&b);
}

/* True when s is well-formed UTF-8 (no overlong or surrogate checks needed
 * here: only truncation is at stake). */
static bool utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0)
			return false;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* BUG(2026-11-22): tt_value_repr cuts a long string after 40 bytes, in the
 * middle of a UTF-8 character when one straddles byte 40, so ERROR
 * messages (which quote values, PROTOCOL.md §11) can carry invalid UTF-8
 * although §1 says strings are UTF-8. Input: "a" then 20 times "é". */
static void test_repr_utf8_cut(void **state)
{
	(void)state;
	char s[64] = "a";
	for (int i = 0; i < 20; i++)
		strcat(s, "\xc3\xa9");
	tt_value v = tt_str(s);
	char out[64];
	tt_value_repr(&v, out, sizeof(out));
	assert_true(strlen(out) > 40);
	if (!utf8_ok(out))
		fail_msg("repr is not valid UTF-8: %s", out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constructors),
		cmocka_unit_test_setup_teardown(test_map_get, setup, teardown),
		cmocka_unit_test(test_as_double),
		cmocka_unit_test_setup_teardown(test_equal_scalars, setup, teardown),
		cmocka_unit_test_setup_teardown(test_equal_containers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmp_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nan_not_equal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_canon_sorts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_canon_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_canon_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repr, setup, teardown),
		cmocka_unit_test(test_repr_utf8_cut),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_fail_and_arena),
	};
	return cmocka_run_group_tests_name("value", tests, NULL, NULL);
}
