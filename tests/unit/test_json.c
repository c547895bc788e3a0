/* SPDX-License-Identifier: MIT */
/* test_json.c: unit tests of shared/json.c: JSON text and files to value
 * trees (types, key order, unicode), and errors that name the file, line
 * and column; duplicate keys are refused. */
#include <stdlib.h>
#include <unistd.h>

#include "tt_test.h"

typedef struct fx {
	tt_arena a;
	char dir[64];
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	tt_arena_init(&f->a, 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/tt_test_json.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	tt_arena_destroy(&f->a);
	free(f);
	return 0;
}

static const char *write_file(fx *f, const char *name, const char *text)
{
	char *path = tt_arena_alloc(&f->a, 256);
	snprintf(path, 256, "%s/%s", f->dir, name);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* Parsing fails with BAD_DESCRIPTION and a message containing sub. */
static void parse_fails(fx *f, const char *text, const char *sub)
{
	tt_value v;
	tt_error err = {0};
	int rc = tt_json_parse(text, &f->a, &v, &err);
	if (rc != -TT_BAD_DESCRIPTION)
		fail_msg("parsing %s gave %d", text, rc);
	assert_int_equal(err.code, TT_BAD_DESCRIPTION);
	assert_substr(err.msg, sub);
}

static void test_types(void **state)
{
	fx *f = *state;
	tt_value v;
	tt_error err;
	assert_int_equal(tt_json_parse("[null, true, false, 0, -17, 9007199254740993, 1.5, -0.25, 1e3,"
				       " \"s\", [], {}, 9223372036854775807, -9223372036854775808]",
				       &f->a, &v, &err), 0);
	assert_int_equal(v.type, TT_ARRAY);
	assert_int_equal(v.len, 14);
	tt_value *it = v.v.items;
	assert_int_equal(it[0].type, TT_NIL);
	assert_int_equal(it[1].type, TT_BOOL);
	assert_true(it[1].v.b);
	assert_false(it[2].v.b);
	assert_int_equal(it[3].type, TT_INT);
	assert_int_equal(it[3].v.i, 0);
	assert_int_equal(it[4].v.i, -17);
	/* integers are exact, beyond 2^53 too */
	assert_int_equal(it[5].type, TT_INT);
	assert_true(it[5].v.i == 9007199254740993LL);
	assert_int_equal(it[6].type, TT_FLOAT);
	assert_double_equal(it[6].v.f, 1.5);
	assert_double_equal(it[7].v.f, -0.25);
	/* an exponent makes a float */
	assert_int_equal(it[8].type, TT_FLOAT);
	assert_double_equal(it[8].v.f, 1000.0);
	assert_true(tt_str_eq(&it[9], "s"));
	assert_int_equal(it[10].type, TT_ARRAY);
	assert_int_equal(it[10].len, 0);
	assert_int_equal(it[11].type, TT_MAP);
	assert_int_equal(it[11].len, 0);
	assert_true(it[12].v.i == INT64_MAX);
	assert_true(it[13].v.i == INT64_MIN);
	/* 1.0 stays a float: the description author's type is kept */
	assert_int_equal(tt_json_parse("[1.0]", &f->a, &v, &err), 0);
	assert_int_equal(v.v.items[0].type, TT_FLOAT);
}

static void test_strings(void **state)
{
	fx *f = *state;
	tt_value v;
	tt_error err;
	assert_int_equal(tt_json_parse("{\"caf\\u00e9\": \"\\u266b \\\"q\\\" \\n\", \"\\ud83c\\udfb5\": \"\"}",
				       &f->a, &v, &err), 0);
	assert_int_equal(v.len, 2);
	/* escapes decoded to UTF-8 */
	assert_true(tt_str_eq(&v.v.pairs[0].key, "caf\xc3\xa9"));
	assert_true(tt_str_eq(&v.v.pairs[0].val, "\xe2\x99\xab \"q\" \n"));
	assert_true(tt_str_eq(&v.v.pairs[1].key, "\xf0\x9f\x8e\xb5"));
	assert_int_equal(v.v.pairs[1].val.len, 0);
	/* the strings live in the arena (jansson's tree is gone) */
	char text[] = "[\"abc\"]";
	assert_int_equal(tt_json_parse(text, &f->a, &v, &err), 0);
	memset(text, 'x', sizeof(text) - 1);
	assert_true(tt_str_eq(&v.v.items[0], "abc"));
}

static void test_key_order(void **state)
{
	fx *f = *state;
	tt_value v;
	tt_error err;
	/* the author's order is kept (params keep it in DESCRIBE) */
	assert_int_equal(tt_json_parse("{\"zeta\": 1, \"alpha\": 2, \"mid\": {\"b\": 0, \"a\": 0}, \"beta\": 3}",
				       &f->a, &v, &err), 0);
	assert_int_equal(v.len, 4);
	assert_true(tt_str_eq(&v.v.pairs[0].key, "zeta"));
	assert_true(tt_str_eq(&v.v.pairs[1].key, "alpha"));
	assert_true(tt_str_eq(&v.v.pairs[2].key, "mid"));
	assert_true(tt_str_eq(&v.v.pairs[3].key, "beta"));
	assert_true(tt_str_eq(&v.v.pairs[2].val.v.pairs[0].key, "b"));
	assert_int_equal(v.v.pairs[3].val.v.i, 3);
	/* many keys: still in order */
	char text[4096];
	size_t k = 0;
	k += (size_t)snprintf(text + k, sizeof(text) - k, "{");
	for (int i = 99; i >= 0; i--)
		k += (size_t)snprintf(text + k, sizeof(text) - k, "\"k%d\": %d%s", i, i, i ? ", " : "}");
	assert_int_equal(tt_json_parse(text, &f->a, &v, &err), 0);
	assert_int_equal(v.len, 100);
	for (uint32_t i = 0; i < 100; i++)
		assert_int_equal(v.v.pairs[i].val.v.i, 99 - (int)i);
}

static void test_errors_with_lines(void **state)
{
	fx *f = *state;
	/* a trailing comma on line 3 */
	parse_fails(f, "{\n  \"a\": 1,\n}", "<string>:3:");
	/* an unterminated string on line 2 */
	parse_fails(f, "[\n\"abc\n]", "<string>:2:");
	parse_fails(f, "", "<string>:");
	parse_fails(f, "{\"a\": }", "<string>:1:");
	parse_fails(f, "{\"a\": 1} x", "<string>:1:");
	parse_fails(f, "[1, 2", "<string>:1:");
	parse_fails(f, "{a: 1}", "<string>:1:");
	parse_fails(f, "[NaN]", "<string>:1:");
	/* the column is there too: "<string>:LINE:COL: text" */
	tt_value v;
	tt_error err;
	assert_int_equal(tt_json_parse("\n\n   @", &f->a, &v, &err), -TT_BAD_DESCRIPTION);
	int line = 0, col = 0;
	assert_int_equal(sscanf(err.msg, "<string>:%d:%d:", &line, &col), 2);
	assert_int_equal(line, 3);
	assert_true(col >= 3 && col <= 4);
	/* err may be NULL */
	assert_int_equal(tt_json_parse("[", &f->a, &v, NULL), -TT_BAD_DESCRIPTION);
}

static void test_duplicate_keys(void **state)
{
	fx *f = *state;
	parse_fails(f, "{\"a\": 1, \"a\": 2}", "duplicate");
	parse_fails(f, "{\"p\": {\"type\": \"integer\",\n \"default\": 0,\n \"type\": \"float\"}}", "<string>:3:");
	/* the same key in different maps is fine */
	tt_value v;
	tt_error err;
	assert_int_equal(tt_json_parse("{\"a\": {\"a\": 1}, \"b\": {\"a\": 2}}", &f->a, &v, &err), 0);
}

static void test_depth(void **state)
{
	fx *f = *state;
	char text[300];
	/* 64 levels are accepted, much deeper is refused with a message (not
	 * a stack overflow) */
	static const int depths[] = {1, 32, 64, 100, 140};
	for (size_t i = 0; i < sizeof(depths) / sizeof(*depths); i++) {
		int depth = depths[i];
		memset(text, '[', (size_t)depth);
		memset(text + depth, ']', (size_t)depth);
		text[2 * depth] = '\0';
		tt_value v;
		tt_error err = {0};
		int rc = tt_json_parse(text, &f->a, &v, &err);
		if (depth <= 64) {
			assert_int_equal(rc, 0);
			assert_int_equal(tt_value_depth(&v), depth);
		} else {
			assert_int_equal(rc, -TT_BAD_DESCRIPTION);
			assert_int_equal(err.code, TT_BAD_DESCRIPTION);
			assert_substr(err.msg, "nested too deep");
		}
	}
}

static void test_file(void **state)
{
	fx *f = *state;
	const char *path = write_file(f, "ok.json",
				      "{\n  \"class\": \"demo\",\n  \"server\": true,\n"
				      "  \"description\": {\"v\": {\"type\": \"float\", \"default\": 0.5}}\n}\n");
	tt_value v;
	tt_error err = {0};
	assert_int_equal(tt_json_load_file(path, &f->a, &v, &err), 0);
	assert_int_equal(v.type, TT_MAP);
	assert_true(tt_str_eq(&v.v.pairs[0].key, "class"));
	assert_true(tt_str_eq(tt_map_get(&v, "class"), "demo"));
	assert_true(tt_map_get(&v, "server")->v.b);
	const tt_value *d = tt_map_get(&v, "description");
	assert_double_equal(tt_map_get(tt_map_get(d, "v"), "default")->v.f, 0.5);

	/* an error names the file and the line */
	path = write_file(f, "bad.json", "{\n  \"class\": \"x\",\n  \"description\": {\n    \"v\": {\"type\": }\n  }\n}\n");
	assert_int_equal(tt_json_load_file(path, &f->a, &v, &err), -TT_BAD_DESCRIPTION);
	assert_int_equal(err.code, TT_BAD_DESCRIPTION);
	assert_substr(err.msg, path);
	char want[300];
	snprintf(want, sizeof(want), "%s:4:", path);
	assert_substr(err.msg, want);

	path = write_file(f, "dup.json", "{\"class\": \"x\",\n\"class\": \"y\"}");
	assert_int_equal(tt_json_load_file(path, &f->a, &v, &err), -TT_BAD_DESCRIPTION);
	assert_substr(err.msg, "duplicate");
	snprintf(want, sizeof(want), "%s:2:", path);
	assert_substr(err.msg, want);

	/* a missing file */
	char missing[256];
	snprintf(missing, sizeof(missing), "%s/nope.json", f->dir);
	assert_int_equal(tt_json_load_file(missing, &f->a, &v, &err), -TT_BAD_DESCRIPTION);
	assert_substr(err.msg, "nope.json");
	/* an empty file */
	path = write_file(f, "empty.json", "");
	assert_int_equal(tt_json_load_file(path, &f->a, &v, &err), -TT_BAD_DESCRIPTION);
	assert_substr(err.msg, "empty.json");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_types),
		T(test_strings),
		T(test_key_order),
		T(test_errors_with_lines),
		T(test_duplicate_keys),
		T(test_depth),
		T(test_file),
	};
#undef T
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
