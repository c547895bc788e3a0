/* SPDX-License-Identifier: MIT */
/* test_json_dump.c: the JSON the tools print and read (shared/json.c's
 * tt_json_dump and tt_json_parse_value): floats in their shortest exact
 * form, what JSON cannot hold, and values typed on a command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "value.h"

static void dumps_as(const tt_value *v, const char *want)
{
	char *s = tt_json_dump(v);
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void test_floats(void **state)
{
	(void)state;
	tt_pair kv[6] = {
		{tt_str("a"), tt_float(0.8)}, {tt_str("b"), tt_float(440.0)},
		{tt_str("c"), tt_float(1e-7)}, {tt_str("d"), tt_float(0.1 + 0.2)},
		{tt_str("e"), tt_int(-3)}, {tt_str("f"), tt_float(-2.5e300)}};
	tt_value m = {.type = TT_MAP, .len = 6};
	m.v.pairs = kv;
	dumps_as(&m, "{\"a\":0.8,\"b\":440.0,\"c\":1e-7,\"d\":0.30000000000000004,\"e\":-3,\"f\":-2.5e300}");
}

/* Every double reads back exactly from its text. */
static void test_round_trip(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15u;
	tt_arena a;
	tt_arena_init(&a, 0);
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double d;
		memcpy(&d, &x, sizeof(d));
		if (!isfinite(d))
			continue;
		tt_value v = tt_float(d), back;
		char *s = tt_json_dump(&v);
		assert_int_equal(tt_json_parse_value(s, &a, &back, NULL), 0);
		double got = back.type == TT_FLOAT ? back.v.f : (double)back.v.i;
		if (memcmp(&got, &d, sizeof(d)) != 0 && !(got == 0 && d == 0))
			fail_msg("%s reads back as %.17g, not %.17g", s, got, d);
		free(s);
		tt_arena_reset(&a);
	}
	tt_arena_destroy(&a);
}

static void test_not_json(void **state)
{
	(void)state;
	tt_value items[5] = {tt_float(NAN), tt_float(INFINITY), tt_strn("a\xff" "b", 3), tt_nil(),
			     {.type = TT_BIN, .len = 2}};
	items[4].v.s = "xy";
	tt_value arr = {.type = TT_ARRAY, .len = 5};
	arr.v.items = items;
	dumps_as(&arr, "[null,null,\"a\xef\xbf\xbd" "b\",null,null]");
	tt_pair kv = {tt_int(7), tt_bool(true)};
	tt_value m = {.type = TT_MAP, .len = 1};
	m.v.pairs = &kv;
	dumps_as(&m, "{\"7\":true}");
}

static void test_parse_value(void **state)
{
	(void)state;
	tt_arena a;
	tt_value v;
	tt_error err;
	tt_arena_init(&a, 0);
	assert_int_equal(tt_json_parse_value("0.8", &a, &v, &err), 0);
	assert_true(v.type == TT_FLOAT && v.v.f == 0.8);
	assert_int_equal(tt_json_parse_value("\"true\"", &a, &v, &err), 0);
	assert_true(tt_str_eq(&v, "true"));
	assert_int_equal(tt_json_parse_value("[1,{\"a\":null}]", &a, &v, &err), 0);
	assert_true(v.type == TT_ARRAY && v.len == 2 && v.v.items[1].type == TT_MAP);
	assert_int_equal(tt_json_parse_value("loud", &a, &v, &err), -TT_BAD_VALUE);
	assert_int_equal(err.code, TT_BAD_VALUE);
	assert_int_equal(tt_json_parse_value("{\"a\":1,\"a\":2}", &a, &v, &err), -TT_BAD_VALUE);
	tt_arena_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_floats), cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_not_json), cmocka_unit_test(test_parse_value)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
