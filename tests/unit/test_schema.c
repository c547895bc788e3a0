/* SPDX-License-Identifier: MIT */
/* test_schema.c: unit tests of shared/schema.c against PROTOCOL.md §4 and
 * §7: description validation and its messages, expansion with defaults
 * (the encoded `desc` decoded back), class identity, and value coercion for
 * every type and option. */
#include <math.h>
#include <stdlib.h>

#include "schema.h"
#include "tt_test.h"

typedef struct fx {
	tt_arena a;
	tt_decoder *d;
	tt_class *cls[64];
	int n;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	tt_arena_init(&f->a, 0);
	f->d = tt_decoder_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	for (int i = 0; i < f->n; i++)
		tt_class_free(f->cls[i]);
	tt_arena_destroy(&f->a);
	tt_decoder_free(f->d);
	free(f);
	return 0;
}

static tt_class *keep(fx *f, tt_class *c)
{
	if (f->n == 64)
		fail_msg("too many classes in one test");
	f->cls[f->n++] = c;
	return c;
}

/* Class "c" from a tree; the test fails when it is refused. */
static tt_class *mk_tree(fx *f, const tt_value *desc)
{
	tt_class *c = NULL;
	tt_error err = {0};
	int rc = tt_class_create("c", 1, desc, &c, &err);
	if (rc != 0)
		fail_msg("description refused: %s", err.msg);
	assert_non_null(c);
	return keep(f, c);
}

static tt_class *mk(fx *f, const char *json)
{
	tt_value d = tj(&f->a, json);
	return mk_tree(f, &d);
}

/* The tree is refused with BAD_DESCRIPTION, *out NULL, and a message that
 * contains each of the given substrings. */
static void refused_tree(fx *f, const char *name, const tt_value *desc, const char *sub1,
			 const char *sub2)
{
	(void)f;
	tt_class *c = (tt_class *)(uintptr_t)1;
	tt_error err = {0};
	int rc = tt_class_create(name, strlen(name), desc, &c, &err);
	if (rc != -TT_BAD_DESCRIPTION) {
		if (rc == 0)
			tt_class_free(c);
		fail_msg("expected BAD_DESCRIPTION (\"%s\"), got %d", sub1, rc);
	}
	assert_null(c);
	assert_int_equal(err.code, TT_BAD_DESCRIPTION);
	assert_substr(err.msg, sub1);
	if (sub2)
		assert_substr(err.msg, sub2);
}

static void refused(fx *f, const char *json, const char *sub1, const char *sub2)
{
	tt_value d = tj(&f->a, json);
	refused_tree(f, "c", &d, sub1, sub2);
}

static const tt_param *P(const tt_class *c, const char *name)
{
	int i = tt_class_param_index(c, name, strlen(name));
	if (i < 0)
		fail_msg("no param %s", name);
	return &c->params[i];
}

/* Coerce v for param pn of c; returns the rc, out and err filled. */
static int co(const tt_class *c, const char *pn, tt_value v, tt_value *out, tt_error *err)
{
	memset(err, 0, sizeof(*err));
	*out = tt_str("untouched");
	return tt_param_coerce(c, P(c, pn), &v, out, err);
}

/* Coercion is refused with code, message containing sub. */
static void co_bad(const tt_class *c, const char *pn, tt_value v, int code, const char *sub)
{
	tt_value out;
	tt_error err;
	int rc = co(c, pn, v, &out, &err);
	if (rc != -code) {
		char r[64];
		tt_value_repr(&v, r, sizeof(r));
		fail_msg("coercing %s for %s: rc %d, expected %d", r, pn, rc, -code);
	}
	assert_int_equal(err.code, code);
	assert_substr(err.msg, "class \"c\"");
	assert_substr(err.msg, pn);
	if (sub)
		assert_substr(err.msg, sub);
}

static int64_t co_int(const tt_class *c, const char *pn, tt_value v)
{
	tt_value out;
	tt_error err;
	int rc = co(c, pn, v, &out, &err);
	if (rc != 0)
		fail_msg("coercion refused: %s", err.msg);
	assert_int_equal(out.type, TT_INT);
	return out.v.i;
}

static double co_float(const tt_class *c, const char *pn, tt_value v)
{
	tt_value out;
	tt_error err;
	int rc = co(c, pn, v, &out, &err);
	if (rc != 0)
		fail_msg("coercion refused: %s", err.msg);
	assert_int_equal(out.type, TT_FLOAT);
	return out.v.f;
}

/* The expanded description decoded back from c->desc. */
static tt_value desc_of(fx *f, const tt_class *c)
{
	size_t off = 0;
	tt_value v;
	tt_error err = {0};
	if (tt_decode(f->d, tt_buf_data(&c->desc), c->desc.len, &off, &f->a, &v, &err) != 0)
		fail_msg("desc does not decode: %s", err.msg);
	assert_int_equal(off, c->desc.len);
	assert_int_equal(v.type, TT_MAP);
	return v;
}

static const tt_value *get(const tt_value *m, const char *k)
{
	const tt_value *v = tt_map_get(m, k);
	if (!v)
		fail_msg("no key %s", k);
	return v;
}

static void want_bool(const tt_value *m, const char *k, bool b)
{
	const tt_value *v = get(m, k);
	assert_int_equal(v->type, TT_BOOL);
	if (v->v.b != b)
		fail_msg("%s is %d, expected %d", k, v->v.b, b);
}

/* ---- description validation ------------------------------------------ */

static void test_desc_shape_errors(void **state)
{
	fx *f = *state;
	tt_value d = tj(&f->a, "[]");
	refused_tree(f, "c", &d, "class \"c\": description must be a map of params", NULL);
	d = tt_int(1);
	refused_tree(f, "c", &d, "description must be a map", NULL);
	d = tj(&f->a, "{}");
	tt_class *c = NULL;
	tt_error err;
	/* class names: 1 to 128 bytes */
	assert_int_equal(tt_class_create("", 0, &d, &c, &err), -TT_BAD_DESCRIPTION);
	assert_null(c);
	assert_substr(err.msg, "class name must be 1 to 128 bytes");
	char name[130];
	memset(name, 'n', sizeof(name));
	name[129] = '\0';
	refused_tree(f, name, &d, "class name must be 1 to 128 bytes", NULL);
	name[128] = '\0';
	assert_int_equal(tt_class_create(name, 128, &d, &c, &err), 0);
	assert_int_equal(c->name_len, 128);
	assert_int_equal(c->n_params, 0);
	keep(f, c);
	/* the name is copied and NUL-terminated */
	assert_int_equal(tt_class_create("abcdef", 3, &d, &c, &err), 0);
	assert_string_equal(c->name, "abc");
	keep(f, c);
	/* an empty class is valid */
	tt_value e = desc_of(f, c);
	assert_int_equal(e.len, 0);

	refused(f, "{\"p\": 1}", "class \"c\": description of param \"p\" must be a map", NULL);
	refused(f, "{\"p\": [\"integer\"]}", "param \"p\" must be a map", NULL);
	refused(f, "{\"p\": {\"default\": 1}}", "class \"c\": param \"p\": 'type' is required", NULL);
	refused(f, "{\"p\": {\"type\": \"int\", \"default\": 1}}",
		"class \"c\": param \"p\": type \"int\" is not one of boolean, string, integer, float, enum, any",
		NULL);
	refused(f, "{\"p\": {\"type\": 3, \"default\": 1}}", "type 3 is not one of", NULL);
	refused(f, "{\"p\": {\"type\": \"Integer\", \"default\": 1}}", "type \"Integer\"", NULL);
	/* the first bad param is named, after good ones */
	refused(f, "{\"ok\": {\"type\": \"boolean\", \"default\": true}, \"bad\": {\"type\": \"x\"}}",
		"param \"bad\"", NULL);
}

static void test_desc_names(void **state)
{
	fx *f = *state;
	/* param names must be strings of 1..128 bytes */
	tt_value d = tm(&f->a, "81 01 82 a4 74 79 70 65 a3 61 6e 79 a7 64 65 66 61 75 6c 74 c0");
	refused_tree(f, "c", &d, "class \"c\": param names must be strings of 1 to 128 bytes", NULL);
	refused(f, "{\"\": {\"type\": \"any\", \"default\": null}}", "param names must be strings", NULL);
	char json[400];
	char pname[130];
	memset(pname, 'p', 129);
	pname[129] = '\0';
	snprintf(json, sizeof(json), "{\"%s\": {\"type\": \"any\", \"default\": null}}", pname);
	refused(f, json, "param names must be strings of 1 to 128 bytes", NULL);
	pname[128] = '\0';
	snprintf(json, sizeof(json), "{\"%s\": {\"type\": \"any\", \"default\": 0}}", pname);
	tt_class *c = mk(f, json);
	assert_int_equal(c->params[0].name_len, 128);
	/* a param declared twice (possible in msgpack) */
	/* {"p": {"type": "any", "default": 0}} twice */
	d = tm(&f->a, "82 a1 70 82 a4 74 79 70 65 a3 61 6e 79 a7 64 65 66 61 75 6c 74 00"
		      " a1 70 82 a4 74 79 70 65 a3 61 6e 79 a7 64 65 66 61 75 6c 74 00");
	refused_tree(f, "c", &d, "class \"c\": param \"p\" is declared twice", NULL);
}

static void test_desc_too_many_params(void **state)
{
	fx *f = *state;
	for (uint32_t n = TT_MAX_PARAMS; n <= TT_MAX_PARAMS + 1; n++) {
		tt_value d = {.type = TT_MAP, .len = n};
		d.v.pairs = tt_arena_alloc(&f->a, sizeof(tt_pair) * n);
		tt_value pd = tj(&f->a, "{\"type\": \"integer\", \"default\": 0}");
		for (uint32_t i = 0; i < n; i++) {
			char *name = tt_arena_alloc(&f->a, 8);
			snprintf(name, 8, "p%u", i);
			d.v.pairs[i].key = tt_str(name);
			d.v.pairs[i].val = pd;
		}
		if (n == TT_MAX_PARAMS) {
			tt_class *c = mk_tree(f, &d);
			assert_int_equal(c->n_params, TT_MAX_PARAMS);
			assert_int_equal(tt_class_param_index(c, "p255", 4), 255);
		} else {
			refused_tree(f, "c", &d, "class \"c\": more than 256 params", NULL);
		}
	}
}

static void test_desc_option_types(void **state)
{
	fx *f = *state;
	static const char *const opts[] = {"nullable", "event", "required", "filterChange",
					   "immediate", "acknowledge", "local"};
	for (size_t i = 0; i < sizeof(opts) / sizeof(*opts); i++) {
		char json[200], want[100];
		snprintf(json, sizeof(json), "{\"p\": {\"type\": \"integer\", \"default\": 0, \"%s\": 1}}",
			 opts[i]);
		snprintf(want, sizeof(want), "class \"c\": param \"p\": '%s' must be a boolean", opts[i]);
		refused(f, json, want, NULL);
		snprintf(json, sizeof(json), "{\"p\": {\"type\": \"integer\", \"default\": 0, \"%s\": null}}",
			 opts[i]);
		refused(f, json, want, NULL);
	}
	refused(f, "{\"p\": {\"type\": \"integer\", \"default\": 0, \"min\": \"0\"}}",
		"class \"c\": param \"p\": 'min' must be a number or null", NULL);
	refused(f, "{\"p\": {\"type\": \"float\", \"default\": 0, \"max\": true}}",
		"param \"p\": 'max' must be a number or null", NULL);
	tt_value d = tm(&f->a, "81 a1 70 83 a4 74 79 70 65 a5 66 6c 6f 61 74 a7 64 65 66 61 75 6c 74 00"
			       " a3 6d 69 6e cb 7f f8 00 00 00 00 00 00"); /* min: NaN */
	refused_tree(f, "c", &d, "'min' must be a number or null", NULL);
	refused(f, "{\"p\": {\"type\": \"integer\", \"default\": 5, \"min\": 10, \"max\": 1}}",
		"class \"c\": param \"p\": 'min' is greater than 'max'", NULL);
	refused(f, "{\"p\": {\"type\": \"float\", \"default\": 0.5, \"min\": 1.5, \"max\": 1.25}}",
		"'min' is greater than 'max'", NULL);
	/* min == max is a valid (constant) range */
	tt_class *c = mk(f, "{\"p\": {\"type\": \"integer\", \"default\": 0, \"min\": 3, \"max\": 3}}");
	assert_int_equal(P(c, "p")->def.v.i, 3);
	/* enum list */
	refused(f, "{\"p\": {\"type\": \"enum\", \"default\": \"a\"}}",
		"class \"c\": param \"p\": 'list' is required for an enum", NULL);
	refused(f, "{\"p\": {\"type\": \"enum\", \"default\": \"a\", \"list\": \"a\"}}",
		"'list' must be a non-empty array", NULL);
	refused(f, "{\"p\": {\"type\": \"enum\", \"default\": \"a\", \"list\": []}}",
		"'list' must be a non-empty array", NULL);
	refused(f, "{\"p\": {\"type\": \"enum\", \"default\": \"a\", \"list\": [\"a\", [1]]}}",
		"'list' items must be scalars", NULL);
	refused(f, "{\"p\": {\"type\": \"enum\", \"default\": \"a\", \"list\": [\"a\", {}]}}",
		"'list' items must be scalars", NULL);
	/* metas */
	refused(f, "{\"p\": {\"type\": \"any\", \"default\": null, \"metas\": []}}",
		"class \"c\": param \"p\": 'metas' must be a map", NULL);
	refused(f, "{\"p\": {\"type\": \"any\", \"default\": null, \"metas\": null}}",
		"'metas' must be a map", NULL);
}

static void test_desc_default_errors(void **state)
{
	fx *f = *state;
	refused(f, "{\"p\": {\"type\": \"integer\"}}", "class \"c\": param \"p\": 'default' is required", NULL);
	refused(f, "{\"p\": {\"type\": \"boolean\", \"nullable\": true}}", "'default' is required", NULL);
	refused(f, "{\"p\": {\"type\": \"integer\", \"default\": \"1\"}}", "invalid default",
		"invalid value \"1\" for integer param \"p\"");
	refused(f, "{\"p\": {\"type\": \"integer\", \"default\": 1.5}}", "invalid default", "1.5");
	refused(f, "{\"p\": {\"type\": \"boolean\", \"default\": 0}}", "invalid default",
		"invalid value 0 for boolean param \"p\"");
	refused(f, "{\"p\": {\"type\": \"string\", \"default\": null}}", "invalid default",
		"invalid value null for string param \"p\": param is not nullable");
	refused(f, "{\"p\": {\"type\": \"enum\", \"list\": [\"a\", \"b\"], \"default\": \"c\"}}",
		"invalid default", "invalid value \"c\" for enum param \"p\": not in its list");
	refused(f, "{\"p\": {\"type\": \"enum\", \"list\": [1, 2], \"default\": \"1\"}}",
		"invalid default", "not in its list");
	refused(f, "{\"p\": {\"type\": \"float\", \"default\": \"0\"}}", "invalid default",
		"for float param \"p\"");
	/* event and required params take no default */
	refused(f, "{\"p\": {\"type\": \"boolean\", \"event\": true, \"default\": false}}",
		"class \"c\": param \"p\": 'default' must be absent or null for an event param", NULL);
	refused(f, "{\"p\": {\"type\": \"integer\", \"required\": true, \"default\": 0}}",
		"'default' must be absent or null for an required param", NULL);
	/* ...but may spell it null */
	tt_class *c = mk(f, "{\"e\": {\"type\": \"boolean\", \"event\": true, \"default\": null},"
			    " \"r\": {\"type\": \"integer\", \"required\": true, \"default\": null}}");
	assert_int_equal(P(c, "e")->def.type, TT_NIL);
	assert_int_equal(P(c, "r")->def.type, TT_NIL);
}

static void test_desc_depth_caps(void **state)
{
	fx *f = *state;
	/* metas and unknown options: nested at most TT_ANY_MAX_DEPTH */
	for (int depth = TT_ANY_MAX_DEPTH - 1; depth <= TT_ANY_MAX_DEPTH + 1; depth++) {
		tt_value pd = tj(&f->a, "{\"type\": \"any\", \"default\": 0, \"metas\": {}, \"x\": 0}");
		tt_value d = {.type = TT_MAP, .len = 1};
		d.v.pairs = tt_arena_alloc(&f->a, sizeof(tt_pair));
		d.v.pairs[0].key = tt_str("p");
		d.v.pairs[0].val = pd;
		/* metas {"k": nested(depth - 1)} has depth `depth` */
		tt_value *metas = (tt_value *)tt_map_get(&pd, "metas");
		metas->len = 1;
		metas->v.pairs = tt_arena_alloc(&f->a, sizeof(tt_pair));
		metas->v.pairs[0].key = tt_str("k");
		metas->v.pairs[0].val = nested_arrays(&f->a, depth - 1);
		if (depth <= TT_ANY_MAX_DEPTH)
			mk_tree(f, &d);
		else
			refused_tree(f, "c", &d, "class \"c\": param \"p\": 'metas' is nested too deep", NULL);
		metas->len = 0;
		tt_value *x = (tt_value *)tt_map_get(&pd, "x");
		*x = nested_arrays(&f->a, depth);
		if (depth <= TT_ANY_MAX_DEPTH)
			mk_tree(f, &d);
		else
			refused_tree(f, "c", &d, "param \"p\": an option is nested too deep", NULL);
		for (int i = 0; i < f->n; i++)
			tt_class_free(f->cls[i]);
		f->n = 0;
	}
}

/* ---- expansion and defaults ------------------------------------------ */

static void test_expand_every_type(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"b\": {\"type\": \"boolean\", \"default\": false},"
			    " \"s\": {\"type\": \"string\", \"default\": \"hi\"},"
			    " \"i\": {\"type\": \"integer\", \"default\": 3},"
			    " \"f\": {\"type\": \"float\", \"default\": 0.5},"
			    " \"e\": {\"type\": \"enum\", \"list\": [\"x\", \"y\"], \"default\": \"y\"},"
			    " \"a\": {\"type\": \"any\", \"default\": {\"k\": [1]}}}");
	assert_int_equal(c->n_params, 6);
	assert_string_equal(c->name, "c");
	static const char *const order[] = {"b", "s", "i", "f", "e", "a"};
	static const int types[] = {TT_PT_BOOLEAN, TT_PT_STRING, TT_PT_INTEGER, TT_PT_FLOAT,
				    TT_PT_ENUM, TT_PT_ANY};
	static const char *const tnames[] = {"boolean", "string", "integer", "float", "enum", "any"};
	tt_value d = desc_of(f, c);
	assert_int_equal(d.len, 6);
	for (uint32_t i = 0; i < 6; i++) {
		/* declared order, in params and in desc */
		assert_string_equal(c->params[i].name, order[i]);
		assert_int_equal(c->params[i].type, types[i]);
		assert_int_equal(tt_class_param_index(c, order[i], 1), (int)i);
		assert_true(tt_str_eq(&d.v.pairs[i].key, order[i]));
		const tt_value *pd = &d.v.pairs[i].val;
		assert_true(tt_str_eq(get(pd, "type"), tnames[i]));
		/* every option spelled out with its default */
		want_bool(pd, "nullable", false);
		want_bool(pd, "event", false);
		want_bool(pd, "required", false);
		want_bool(pd, "filterChange", true);
		want_bool(pd, "immediate", false);
		want_bool(pd, "acknowledge", true);
		want_bool(pd, "local", false);
		assert_int_equal(get(pd, "metas")->type, TT_MAP);
		assert_int_equal(get(pd, "metas")->len, 0);
		/* min/max only for numbers, list only for enums */
		bool num = types[i] == TT_PT_INTEGER || types[i] == TT_PT_FLOAT;
		assert_int_equal(tt_map_get(pd, "min") != NULL, num);
		assert_int_equal(tt_map_get(pd, "max") != NULL, num);
		assert_int_equal(tt_map_get(pd, "list") != NULL, types[i] == TT_PT_ENUM);
		if (num) {
			/* unbounded: -inf / +inf, as soundworks has them */
			assert_int_equal(get(pd, "min")->type, TT_FLOAT);
			assert_true(isinf(get(pd, "min")->v.f) && get(pd, "min")->v.f < 0);
			assert_int_equal(get(pd, "max")->type, TT_FLOAT);
			assert_true(isinf(get(pd, "max")->v.f) && get(pd, "max")->v.f > 0);
		}
		assert_int_equal(pd->len, 10u + (num ? 2u : 0u) + (types[i] == TT_PT_ENUM ? 1u : 0u));
	}
	assert_false(get(&d.v.pairs[0].val, "default")->v.b);
	assert_true(tt_str_eq(get(&d.v.pairs[1].val, "default"), "hi"));
	assert_int_equal(get(&d.v.pairs[2].val, "default")->type, TT_INT);
	assert_int_equal(get(&d.v.pairs[2].val, "default")->v.i, 3);
	assert_int_equal(get(&d.v.pairs[3].val, "default")->type, TT_FLOAT);
	assert_double_equal(get(&d.v.pairs[3].val, "default")->v.f, 0.5);
	assert_true(tt_str_eq(get(&d.v.pairs[4].val, "default"), "y"));
	const tt_value *list = get(&d.v.pairs[4].val, "list");
	assert_int_equal(list->len, 2);
	assert_true(tt_str_eq(&list->v.items[0], "x"));
	const tt_value *ad = get(&d.v.pairs[5].val, "default");
	assert_int_equal(ad->type, TT_MAP);
	assert_int_equal(get(ad, "k")->v.items[0].v.i, 1);
	/* the param structs agree */
	const tt_param *p = P(c, "i");
	assert_false(p->nullable || p->event || p->required || p->immediate || p->local);
	assert_true(p->filter_change && p->acknowledge);
	assert_false(p->has_min || p->has_max);
	assert_true(p->imin == INT64_MIN && p->imax == INT64_MAX);
	assert_true(isinf(P(c, "f")->fmin) && P(c, "f")->fmin < 0);
	assert_true(isinf(P(c, "f")->fmax) && P(c, "f")->fmax > 0);
	assert_int_equal(tt_class_param_index(c, "z", 1), -1);
	assert_int_equal(tt_class_param_index(c, "ii", 2), -1);
	assert_int_equal(tt_class_param_index(c, "", 0), -1);
}

static void test_expand_options(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"p\": {\"type\": \"integer\", \"default\": 1, \"nullable\": true,"
			    " \"filterChange\": false, \"immediate\": true, \"acknowledge\": false,"
			    " \"local\": true, \"min\": 0, \"max\": 10, \"metas\": {\"label\": \"P\"},"
			    " \"step\": 2, \"unit\": \"Hz\", \"ui\": {\"w\": [1, 2]}}}");
	const tt_param *p = P(c, "p");
	assert_true(p->nullable && p->immediate && p->local);
	assert_false(p->filter_change || p->acknowledge || p->event || p->required);
	assert_true(p->has_min && p->has_max);
	assert_int_equal(p->imin, 0);
	assert_int_equal(p->imax, 10);
	assert_int_equal(p->extra.len, 3);
	tt_value d = desc_of(f, c);
	const tt_value *pd = get(&d, "p");
	want_bool(pd, "nullable", true);
	want_bool(pd, "filterChange", false);
	want_bool(pd, "immediate", true);
	want_bool(pd, "acknowledge", false);
	want_bool(pd, "local", true);
	assert_int_equal(get(pd, "min")->type, TT_INT);
	assert_int_equal(get(pd, "min")->v.i, 0);
	assert_int_equal(get(pd, "max")->v.i, 10);
	assert_true(tt_str_eq(get(get(pd, "metas"), "label"), "P"));
	/* unknown keys kept as they are */
	assert_int_equal(get(pd, "step")->v.i, 2);
	assert_true(tt_str_eq(get(pd, "unit"), "Hz"));
	assert_int_equal(get(get(pd, "ui"), "w")->v.items[1].v.i, 2);
	assert_int_equal(pd->len, 15);
	/* options that do not apply to the type are passed through too */
	c = mk(f, "{\"s\": {\"type\": \"string\", \"default\": \"\", \"min\": 1, \"max\": 2,"
		  " \"list\": [\"a\"]}}");
	d = desc_of(f, c);
	pd = get(&d, "s");
	assert_int_equal(get(pd, "min")->v.i, 1);
	assert_int_equal(get(pd, "max")->v.i, 2);
	assert_int_equal(get(pd, "list")->len, 1);
	assert_int_equal(P(c, "s")->extra.len, 3);
	/* the class owns its trees: the description may go away */
	tt_arena tmp;
	tt_arena_init(&tmp, 0);
	tt_value src = tj(&tmp, "{\"q\": {\"type\": \"enum\", \"list\": [\"aa\", \"bb\"], \"default\": \"bb\","
				" \"metas\": {\"m\": \"v\"}, \"zz\": \"w\"}}");
	c = mk_tree(f, &src);
	tt_arena_destroy(&tmp);
	p = P(c, "q");
	assert_true(tt_str_eq(&p->def, "bb"));
	assert_true(tt_str_eq(&p->list.v.items[0], "aa"));
	assert_true(tt_str_eq(get(&p->metas, "m"), "v"));
	assert_true(tt_str_eq(get(&p->extra, "zz"), "w"));
}

static void test_expand_bounds(void **state)
{
	fx *f = *state;
	/* integer bounds given as floats: min rounds up, max down, ints in desc */
	tt_class *c = mk(f, "{\"p\": {\"type\": \"integer\", \"default\": 5, \"min\": 1.5, \"max\": 10.9},"
			    " \"n\": {\"type\": \"integer\", \"default\": 0, \"min\": -2.5, \"max\": null},"
			    " \"f\": {\"type\": \"float\", \"default\": 0, \"min\": 0, \"max\": 2}}");
	const tt_param *p = P(c, "p");
	assert_int_equal(p->imin, 2);
	assert_int_equal(p->imax, 10);
	assert_int_equal(P(c, "n")->imin, -2);
	assert_false(P(c, "n")->has_max);
	tt_value d = desc_of(f, c);
	const tt_value *pd = get(&d, "p");
	assert_int_equal(get(pd, "min")->type, TT_INT);
	assert_int_equal(get(pd, "min")->v.i, 2);
	assert_int_equal(get(pd, "max")->v.i, 10);
	assert_true(isinf(get(get(&d, "n"), "max")->v.f));
	/* float bounds given as ints become floats */
	const tt_value *fd = get(&d, "f");
	assert_int_equal(get(fd, "min")->type, TT_FLOAT);
	assert_double_equal(get(fd, "min")->v.f, 0.0);
	assert_int_equal(get(fd, "max")->type, TT_FLOAT);
	assert_double_equal(get(fd, "max")->v.f, 2.0);
	assert_int_equal(get(fd, "default")->type, TT_FLOAT);
	/* -inf / +inf as min / max mean unbounded */
	tt_value inf = tm(&f->a, "81 a1 66 84 a4 74 79 70 65 a5 66 6c 6f 61 74 a7 64 65 66 61 75 6c 74 00"
				 " a3 6d 69 6e cb ff f0 00 00 00 00 00 00 a3 6d 61 78 cb 7f f0 00 00 00 00 00 00");
	c = mk_tree(f, &inf);
	assert_false(P(c, "f")->has_min);
	assert_false(P(c, "f")->has_max);
	d = desc_of(f, c);
	assert_true(isinf(get(get(&d, "f"), "min")->v.f) && get(get(&d, "f"), "min")->v.f < 0);
	assert_true(isinf(get(get(&d, "f"), "max")->v.f) && get(get(&d, "f"), "max")->v.f > 0);
	/* and the same class as with null bounds (a schema file's spelling, or
	 * a description stored by an older server) */
	tt_value nul = tm(&f->a, "81 a1 66 84 a4 74 79 70 65 a5 66 6c 6f 61 74 a7 64 65 66 61 75 6c 74 00"
				 " a3 6d 69 6e c0 a3 6d 61 78 c0");
	tt_class *c2 = mk_tree(f, &nul);
	assert_true(tt_class_same(c, c2));
	/* an integer's unbounded ends too: a float infinity, re-parsed as unbounded */
	tt_value iinf = tm(&f->a, "81 a1 69 84 a4 74 79 70 65 a7 69 6e 74 65 67 65 72 a7 64 65 66 61 75 6c 74 00"
				  " a3 6d 69 6e cb ff f0 00 00 00 00 00 00 a3 6d 61 78 c0");
	tt_class *c3 = mk_tree(f, &iinf);
	assert_false(P(c3, "i")->has_min);
	assert_false(P(c3, "i")->has_max);
	d = desc_of(f, c3);
	assert_int_equal(get(get(&d, "i"), "min")->type, TT_FLOAT);
	assert_true(isinf(get(get(&d, "i"), "min")->v.f) && get(get(&d, "i"), "min")->v.f < 0);
	assert_true(isinf(get(get(&d, "i"), "max")->v.f) && get(get(&d, "i"), "max")->v.f > 0);
}

static void test_default_clipped(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"i\": {\"type\": \"integer\", \"default\": 500, \"min\": 0, \"max\": 100},"
			    " \"j\": {\"type\": \"integer\", \"default\": -5, \"min\": 0},"
			    " \"k\": {\"type\": \"integer\", \"default\": 3.0},"
			    " \"f\": {\"type\": \"float\", \"default\": 5, \"min\": 0, \"max\": 1},"
			    " \"g\": {\"type\": \"float\", \"default\": -2.5, \"min\": -1}}");
	assert_int_equal(P(c, "i")->def.type, TT_INT);
	assert_int_equal(P(c, "i")->def.v.i, 100);
	assert_int_equal(P(c, "j")->def.v.i, 0);
	assert_int_equal(P(c, "k")->def.type, TT_INT); /* integral float accepted as an int */
	assert_int_equal(P(c, "k")->def.v.i, 3);
	assert_int_equal(P(c, "f")->def.type, TT_FLOAT);
	assert_double_equal(P(c, "f")->def.v.f, 1.0);
	assert_double_equal(P(c, "g")->def.v.f, -1.0);
	tt_value d = desc_of(f, c);
	assert_int_equal(get(get(&d, "i"), "default")->v.i, 100);
	assert_int_equal(get(get(&d, "k"), "default")->type, TT_INT);
	assert_double_equal(get(get(&d, "f"), "default")->v.f, 1.0);
	/* an enum default given as 2.0 is the list's 2 */
	c = mk(f, "{\"e\": {\"type\": \"enum\", \"list\": [1, 2], \"default\": 2.0}}");
	assert_int_equal(P(c, "e")->def.type, TT_INT);
	assert_int_equal(P(c, "e")->def.v.i, 2);
}

static void test_event_required(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"bang\": {\"type\": \"boolean\", \"event\": true},"
			    " \"ev2\": {\"type\": \"integer\", \"event\": true, \"nullable\": false},"
			    " \"req\": {\"type\": \"string\", \"required\": true}}");
	const tt_param *p = P(c, "bang");
	assert_true(p->event);
	assert_true(p->nullable); /* forced */
	assert_int_equal(p->def.type, TT_NIL);
	assert_true(P(c, "ev2")->nullable); /* forced even when spelled false */
	assert_true(P(c, "req")->required);
	assert_false(P(c, "req")->nullable);
	assert_int_equal(P(c, "req")->def.type, TT_NIL);
	tt_value d = desc_of(f, c);
	const tt_value *bd = get(&d, "bang");
	want_bool(bd, "event", true);
	want_bool(bd, "nullable", true);
	assert_int_equal(get(bd, "default")->type, TT_NIL);
	want_bool(get(&d, "ev2"), "nullable", true);
	const tt_value *rd = get(&d, "req");
	want_bool(rd, "required", true);
	assert_int_equal(get(rd, "default")->type, TT_NIL);
	/* event params accept nil; a required non-nullable one refuses it */
	tt_value out;
	tt_error err;
	assert_int_equal(co(c, "bang", tt_nil(), &out, &err), 0);
	assert_int_equal(out.type, TT_NIL);
	assert_int_equal(co(c, "bang", tt_bool(true), &out, &err), 0);
	co_bad(c, "req", tt_nil(), TT_NOT_NULLABLE, "param is not nullable");
}

/* ---- class identity -------------------------------------------------- */

static bool same(fx *f, const char *x, const char *y)
{
	tt_class *a = mk(f, x), *b = mk(f, y);
	bool s1 = tt_class_same(a, b), s2 = tt_class_same(b, a);
	assert_int_equal(s1, s2);
	return s1;
}

static void test_class_same(void **state)
{
	fx *f = *state;
	const char *base = "{\"v\": {\"type\": \"integer\", \"default\": 0, \"max\": 9, \"step\": 1},"
			   " \"m\": {\"type\": \"enum\", \"list\": [\"a\", \"b\"], \"default\": \"a\"}}";
	assert_true(same(f, base, base));
	/* option order does not matter */
	assert_true(same(f, base, "{\"v\": {\"step\": 1, \"max\": 9, \"default\": 0, \"type\": \"integer\"},"
				  " \"m\": {\"default\": \"a\", \"list\": [\"a\", \"b\"], \"type\": \"enum\"}}"));
	/* param order does not matter */
	assert_true(same(f, base, "{\"m\": {\"type\": \"enum\", \"list\": [\"a\", \"b\"], \"default\": \"a\"},"
				  " \"v\": {\"type\": \"integer\", \"default\": 0, \"max\": 9, \"step\": 1}}"));
	/* spelled-out defaults do not matter */
	assert_true(same(f, base, "{\"v\": {\"type\": \"integer\", \"default\": 0, \"max\": 9, \"step\": 1,"
				  " \"nullable\": false, \"event\": false, \"required\": false, \"filterChange\": true,"
				  " \"immediate\": false, \"acknowledge\": true, \"local\": false, \"min\": null,"
				  " \"metas\": {}},"
				  " \"m\": {\"type\": \"enum\", \"list\": [\"a\", \"b\"], \"default\": \"a\"}}"));
	/* equivalent spellings after coercion: 0 and 0.0, 9 and 9.5 for an int */
	assert_true(same(f, base, "{\"v\": {\"type\": \"integer\", \"default\": 0.0, \"max\": 9.5, \"step\": 1},"
				  " \"m\": {\"type\": \"enum\", \"list\": [\"a\", \"b\"], \"default\": \"a\"}}"));
	assert_true(same(f, "{\"f\": {\"type\": \"float\", \"default\": 1, \"min\": 0}}",
			 "{\"f\": {\"type\": \"float\", \"default\": 1.0, \"min\": 0.0}}"));
	/* metas key order does not matter */
	assert_true(same(f, "{\"a\": {\"type\": \"any\", \"default\": 0, \"metas\": {\"x\": 1, \"y\": 2}}}",
			 "{\"a\": {\"type\": \"any\", \"default\": 0, \"metas\": {\"y\": 2, \"x\": 1}}}"));
	/* a default that clips to the same value is the same class */
	assert_true(same(f, "{\"v\": {\"type\": \"integer\", \"default\": 50, \"max\": 9}}",
			 "{\"v\": {\"type\": \"integer\", \"default\": 9, \"max\": 9}}"));
	/* real differences */
	assert_false(same(f, base, "{\"v\": {\"type\": \"integer\", \"default\": 1, \"max\": 9, \"step\": 1},"
				   " \"m\": {\"type\": \"enum\", \"list\": [\"a\", \"b\"], \"default\": \"a\"}}"));
	assert_false(same(f, base, "{\"v\": {\"type\": \"integer\", \"default\": 0, \"max\": 9, \"step\": 2},"
				   " \"m\": {\"type\": \"enum\", \"list\": [\"a\", \"b\"], \"default\": \"a\"}}"));
	assert_false(same(f, base, "{\"v\": {\"type\": \"integer\", \"default\": 0, \"max\": 9, \"step\": 1}}"));
	/* the enum list's order is part of the class */
	assert_false(same(f, base, "{\"v\": {\"type\": \"integer\", \"default\": 0, \"max\": 9, \"step\": 1},"
				   " \"m\": {\"type\": \"enum\", \"list\": [\"b\", \"a\"], \"default\": \"a\"}}"));
	assert_false(same(f, "{\"f\": {\"type\": \"float\", \"default\": 0}}",
			  "{\"f\": {\"type\": \"integer\", \"default\": 0}}"));
	assert_false(same(f, "{\"f\": {\"type\": \"float\", \"default\": 0}}",
			  "{\"g\": {\"type\": \"float\", \"default\": 0}}"));
}

/* ---- coercion -------------------------------------------------------- */

static void test_coerce_boolean_string(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"b\": {\"type\": \"boolean\", \"default\": false},"
			    " \"s\": {\"type\": \"string\", \"default\": \"\"}}");
	tt_value out;
	tt_error err;
	assert_int_equal(co(c, "b", tt_bool(true), &out, &err), 0);
	assert_int_equal(out.type, TT_BOOL);
	assert_true(out.v.b);
	co_bad(c, "b", tt_int(1), TT_BAD_VALUE, "class \"c\": invalid value 1 for boolean param \"b\"");
	co_bad(c, "b", tt_str("true"), TT_BAD_VALUE, "invalid value \"true\" for boolean param \"b\"");
	co_bad(c, "b", tt_nil(), TT_NOT_NULLABLE,
	       "class \"c\": invalid value null for boolean param \"b\": param is not nullable");
	tt_value s = tt_str("héllo");
	assert_int_equal(co(c, "s", s, &out, &err), 0);
	assert_int_equal(out.type, TT_STR);
	assert_ptr_equal(out.v.s, s.v.s); /* no copy */
	assert_int_equal(out.len, s.len);
	co_bad(c, "s", tt_int(1), TT_BAD_VALUE, "invalid value 1 for string param \"s\"");
	co_bad(c, "s", tm(&f->a, "c4 01 61"), TT_BAD_VALUE, "invalid value <binary> for string param");
	co_bad(c, "s", tj(&f->a, "[\"a\"]"), TT_BAD_VALUE, "invalid value [array of 1]");
	/* err may be NULL */
	tt_value in = tt_int(1);
	assert_int_equal(tt_param_coerce(c, P(c, "s"), &in, &out, NULL), -TT_BAD_VALUE);
}

static void test_coerce_integer(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"u\": {\"type\": \"integer\", \"default\": 0},"
			    " \"r\": {\"type\": \"integer\", \"default\": 0, \"min\": -10, \"max\": 100}}");
	tt_arena *a = &f->a;
	assert_int_equal(co_int(c, "u", tt_int(5)), 5);
	assert_true(co_int(c, "u", tt_int(INT64_MIN)) == INT64_MIN);
	assert_true(co_int(c, "u", tt_int(INT64_MAX)) == INT64_MAX);
	/* clipping */
	assert_int_equal(co_int(c, "r", tt_int(500)), 100);
	assert_int_equal(co_int(c, "r", tt_int(-500)), -10);
	assert_int_equal(co_int(c, "r", tt_int(100)), 100);
	assert_int_equal(co_int(c, "r", tt_int(-10)), -10);
	assert_int_equal(co_int(c, "r", tt_int(INT64_MIN)), -10);
	/* integral floats are accepted */
	assert_int_equal(co_int(c, "u", tt_float(3.0)), 3);
	assert_int_equal(co_int(c, "u", tt_float(-0.0)), 0);
	assert_int_equal(co_int(c, "u", tt_float(-7.0)), -7);
	assert_int_equal(co_int(c, "u", tt_float(9007199254740992.0)), 9007199254740992LL);
	assert_true(co_int(c, "u", tt_float(-9223372036854775808.0)) == INT64_MIN);
	assert_int_equal(co_int(c, "r", tt_float(1e6)), 100);
	/* out of int64 range: clipped when bounded, refused when not */
	assert_int_equal(co_int(c, "r", tt_float(1e300)), 100);
	assert_int_equal(co_int(c, "r", tt_float(-1e300)), -10);
	co_bad(c, "u", tt_float(1e300), TT_BAD_VALUE, "for integer param \"u\"");
	co_bad(c, "u", tt_float(9223372036854775808.0), TT_BAD_VALUE, NULL);
	co_bad(c, "u", tt_float(-1e19), TT_BAD_VALUE, NULL);
	tt_value big = tm(a, "cf ff ff ff ff ff ff ff ff");
	assert_int_equal(co_int(c, "r", big), 100);
	co_bad(c, "u", big, TT_BAD_VALUE, "invalid value 18446744073709551615 for integer param \"u\"");
	/* fractions, NaN and infinities are refused, clipped range or not */
	co_bad(c, "u", tt_float(3.5), TT_BAD_VALUE, "class \"c\": invalid value 3.5 for integer param \"u\"");
	co_bad(c, "r", tt_float(3.5), TT_BAD_VALUE, "invalid value 3.5");
	co_bad(c, "r", tt_float(0.1), TT_BAD_VALUE, "invalid value 0.10000000000000001");
	co_bad(c, "r", tt_float(NAN), TT_BAD_VALUE, "invalid value NaN for integer param \"r\"");
	co_bad(c, "r", tt_float(INFINITY), TT_BAD_VALUE, "invalid value Infinity");
	co_bad(c, "r", tt_float(-INFINITY), TT_BAD_VALUE, "invalid value -Infinity");
	co_bad(c, "u", tt_float(1e-300), TT_BAD_VALUE, NULL);
	/* other types */
	co_bad(c, "u", tt_str("5"), TT_BAD_VALUE, "invalid value \"5\" for integer param \"u\"");
	co_bad(c, "u", tt_bool(true), TT_BAD_VALUE, "invalid value true");
	co_bad(c, "u", tt_nil(), TT_NOT_NULLABLE, "param is not nullable");
	co_bad(c, "u", tj(a, "{}"), TT_BAD_VALUE, "{map of 0}");
}

static void test_coerce_integer_bounds_edges(void **state)
{
	fx *f = *state;
	/* only a min: huge positives refused, huge negatives clipped */
	tt_class *c = mk(f, "{\"m\": {\"type\": \"integer\", \"default\": 0, \"min\": 0},"
			    " \"x\": {\"type\": \"integer\", \"default\": 0, \"max\": 0}}");
	assert_int_equal(co_int(c, "m", tt_float(-1e300)), 0);
	co_bad(c, "m", tt_float(1e300), TT_BAD_VALUE, NULL);
	assert_int_equal(co_int(c, "x", tt_float(1e300)), 0);
	co_bad(c, "x", tt_float(-1e300), TT_BAD_VALUE, NULL);
	assert_int_equal(co_int(c, "x", tm(&f->a, "cf ff ff ff ff ff ff ff ff")), 0);
}

static void test_coerce_float(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"u\": {\"type\": \"float\", \"default\": 0},"
			    " \"r\": {\"type\": \"float\", \"default\": 0.5, \"min\": 0, \"max\": 1}}");
	assert_double_equal(co_float(c, "u", tt_float(0.25)), 0.25);
	assert_double_equal(co_float(c, "u", tt_int(3)), 3.0); /* ints accepted, become floats */
	assert_double_equal(co_float(c, "u", tt_int(-9)), -9.0);
	assert_double_equal(co_float(c, "u", tm(&f->a, "cf ff ff ff ff ff ff ff ff")),
			    18446744073709551615.0);
	/* clipping */
	assert_double_equal(co_float(c, "r", tt_float(1.5)), 1.0);
	assert_double_equal(co_float(c, "r", tt_float(-0.5)), 0.0);
	assert_double_equal(co_float(c, "r", tt_int(7)), 1.0);
	assert_double_equal(co_float(c, "r", tt_float(1.0)), 1.0);
	/* infinities: kept when unbounded, clipped when bounded */
	assert_double_equal(co_float(c, "u", tt_float(INFINITY)), INFINITY);
	assert_double_equal(co_float(c, "u", tt_float(-INFINITY)), -INFINITY);
	assert_double_equal(co_float(c, "r", tt_float(INFINITY)), 1.0);
	assert_double_equal(co_float(c, "r", tt_float(-INFINITY)), 0.0);
	/* NaN refused */
	co_bad(c, "u", tt_float(NAN), TT_BAD_VALUE, "class \"c\": invalid value NaN for float param \"u\"");
	co_bad(c, "r", tt_float(NAN), TT_BAD_VALUE, "NaN");
	co_bad(c, "u", tt_str("1.5"), TT_BAD_VALUE, "invalid value \"1.5\" for float param \"u\"");
	co_bad(c, "u", tt_bool(false), TT_BAD_VALUE, NULL);
	co_bad(c, "u", tt_nil(), TT_NOT_NULLABLE, NULL);
}

static void test_coerce_enum(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"e\": {\"type\": \"enum\", \"list\": [\"a\", 1, true, 2.5, null], \"default\": \"a\"},"
			    " \"n\": {\"type\": \"enum\", \"list\": [\"x\"], \"default\": null, \"nullable\": true}}");
	tt_value out;
	tt_error err;
	assert_int_equal(co(c, "e", tt_str("a"), &out, &err), 0);
	assert_true(tt_str_eq(&out, "a"));
	/* the result is the list's own item */
	assert_ptr_equal(out.v.s, P(c, "e")->list.v.items[0].v.s);
	assert_int_equal(co(c, "e", tt_int(1), &out, &err), 0);
	assert_int_equal(out.type, TT_INT);
	assert_int_equal(out.v.i, 1);
	/* numbers compare by value: 1.0 is the list's 1 */
	assert_int_equal(co(c, "e", tt_float(1.0), &out, &err), 0);
	assert_int_equal(out.type, TT_INT);
	assert_int_equal(out.v.i, 1);
	assert_int_equal(co(c, "e", tt_bool(true), &out, &err), 0);
	assert_true(out.v.b);
	assert_int_equal(co(c, "e", tt_float(2.5), &out, &err), 0);
	/* strict type otherwise: "1" is not 1, 1 is not true */
	co_bad(c, "e", tt_str("1"), TT_BAD_VALUE, "class \"c\": invalid value \"1\" for enum param \"e\": not in its list");
	co_bad(c, "e", tt_str("A"), TT_BAD_VALUE, "not in its list");
	co_bad(c, "e", tt_bool(false), TT_BAD_VALUE, "invalid value false");
	co_bad(c, "e", tt_int(2), TT_BAD_VALUE, "invalid value 2 for enum");
	co_bad(c, "e", tt_float(1.5), TT_BAD_VALUE, NULL);
	co_bad(c, "e", tt_float(NAN), TT_BAD_VALUE, "NaN");
	co_bad(c, "e", tj(&f->a, "[\"a\"]"), TT_BAD_VALUE, NULL);
	/* a null in the list does not make the param nullable */
	co_bad(c, "e", tt_nil(), TT_NOT_NULLABLE, "for enum param \"e\": param is not nullable");
	assert_int_equal(co(c, "n", tt_nil(), &out, &err), 0);
	assert_int_equal(out.type, TT_NIL);
	assert_int_equal(co(c, "n", tt_str("x"), &out, &err), 0);
	/* a uint matches a float item of the same value */
	tt_class *u = mk(f, "{\"e\": {\"type\": \"enum\", \"list\": [1.8446744073709552e19], \"default\": 1.8446744073709552e19}}");
	assert_int_equal(co(u, "e", tm(&f->a, "cf ff ff ff ff ff ff ff ff"), &out, &err), 0);
	assert_int_equal(out.type, TT_FLOAT);
}

static void test_coerce_nullable(void **state)
{
	fx *f = *state;
	static const char *const types[] = {"boolean", "string", "integer", "float", "any"};
	for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++) {
		char json[160];
		snprintf(json, sizeof(json), "{\"p\": {\"type\": \"%s\", \"nullable\": true, \"default\": null}}",
			 types[i]);
		tt_class *c = mk(f, json);
		assert_int_equal(P(c, "p")->def.type, TT_NIL);
		tt_value out;
		tt_error err;
		assert_int_equal(co(c, "p", tt_nil(), &out, &err), 0);
		assert_int_equal(out.type, TT_NIL);
	}
	tt_class *c = mk(f, "{\"p\": {\"type\": \"any\", \"default\": 0}}");
	co_bad(c, "p", tt_nil(), TT_NOT_NULLABLE, "class \"c\": invalid value null for any param \"p\": param is not nullable");
}

static void test_coerce_any(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"a\": {\"type\": \"any\", \"default\": {}}}");
	tt_value out;
	tt_error err;
	/* every msgpack type is accepted */
	static const char *const hex[] = {"c3", "05", "cb 7f f8 00 00 00 00 00 00", "a1 61", "c4 01 00",
					  "d4 01 00", "cf ff ff ff ff ff ff ff ff", "92 01 a1 78"};
	for (size_t i = 0; i < sizeof(hex) / sizeof(*hex); i++) {
		tt_value v = tm(&f->a, hex[i]);
		if (co(c, "a", v, &out, &err) != 0)
			fail_msg("any refused %s: %s", hex[i], err.msg);
		assert_int_equal(out.type, v.type);
	}
	/* maps are canonicalised in place, deep */
	tt_value v = tj(&f->a, "{\"b\": 1, \"a\": [{\"z\": 0, \"y\": 0}]}");
	assert_int_equal(tt_param_coerce(c, P(c, "a"), &v, &out, &err), 0);
	assert_true(tt_str_eq(&v.v.pairs[0].key, "a"));
	assert_true(tt_str_eq(&out.v.pairs[0].key, "a"));
	assert_true(tt_str_eq(&out.v.pairs[1].key, "b"));
	assert_true(tt_str_eq(&out.v.pairs[0].val.v.items[0].v.pairs[0].key, "y"));
	/* a duplicate key is refused */
	co_bad(c, "a", tm(&f->a, "82 a1 61 01 a1 61 02"), TT_BAD_VALUE,
	       "class \"c\": invalid value for any param \"a\": a map has a duplicate key");
	co_bad(c, "a", tm(&f->a, "91 91 82 a1 78 c0 a1 78 c3"), TT_BAD_VALUE, "duplicate key");
	/* map keys are strings (PROTOCOL.md §1): nil, boolean, integer keys are
	 * refused, since JavaScript decoders reject or mangle them */
	co_bad(c, "a", tm(&f->a, "81 c0 01"), TT_BAD_VALUE, "map keys must be strings");
	co_bad(c, "a", tm(&f->a, "91 81 c3 01"), TT_BAD_VALUE, "map keys must be strings");
	co_bad(c, "a", tm(&f->a, "81 01 01"), TT_BAD_VALUE, "map keys must be strings");
	/* the default is canonical too */
	tt_class *d = mk(f, "{\"a\": {\"type\": \"any\", \"default\": {\"z\": 1, \"a\": 2}}}");
	assert_true(tt_str_eq(&P(d, "a")->def.v.pairs[0].key, "a"));
	tt_value dm = tm(&f->a, "81 a1 70 82 a4 74 79 70 65 a3 61 6e 79 a7 64 65 66 61 75 6c 74 82 a1 78 c0 a1 78 c0");
	refused_tree(f, "c", &dm, "invalid default", "duplicate key");
}

static void test_coerce_any_depth(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"a\": {\"type\": \"any\", \"default\": null, \"nullable\": true}}");
	tt_value out;
	tt_error err;
	/* the cap holds: far deeper values are refused with BAD_VALUE */
	tt_value deep = nested_arrays(&f->a, 33);
	co_bad(c, "a", deep, TT_BAD_VALUE, "invalid value for any param \"a\": nested deeper than");
	deep = nested_arrays(&f->a, 100);
	co_bad(c, "a", deep, TT_BAD_VALUE, "nested deeper than");
	/* and TT_ANY_MAX_DEPTH is accepted */
	tt_value ok = nested_arrays(&f->a, TT_ANY_MAX_DEPTH);
	assert_int_equal(co(c, "a", ok, &out, &err), 0);
	/* maps deep inside are still canonicalised */
	tt_value m = tj(&f->a, "[[[[{\"b\": 1, \"a\": 0}]]]]");
	assert_int_equal(tt_param_coerce(c, P(c, "a"), &m, &out, &err), 0);
	assert_true(tt_str_eq(&m.v.items[0].v.items[0].v.items[0].v.items[0].v.pairs[0].key, "a"));
}

/* PROTOCOL.md §7 (as amended 2026-11-22): an `any` value nests at most 16
 * levels; 17 is BAD_VALUE. Exact boundary, arrays and maps. */
static void test_coerce_any_depth_boundary(void **state)
{
	fx *f = *state;
	tt_class *c = mk(f, "{\"a\": {\"type\": \"any\", \"default\": null, \"nullable\": true}}");
	tt_value out;
	tt_error err;
	assert_int_equal(TT_ANY_MAX_DEPTH, 16);
	for (int depth = 0; depth <= 16; depth++) {
		tt_value v = nested_arrays(&f->a, depth);
		if (co(c, "a", v, &out, &err) != 0)
			fail_msg("any value of depth %d refused: %s", depth, err.msg);
	}
	co_bad(c, "a", nested_arrays(&f->a, 17), TT_BAD_VALUE, "nested deeper than 16");
	/* {"k": [[...15...]]} has depth 16; one more level is refused */
	for (int depth = 16; depth <= 17; depth++) {
		tt_value m = {.type = TT_MAP, .len = 1};
		m.v.pairs = tt_arena_alloc(&f->a, sizeof(tt_pair));
		m.v.pairs[0].key = tt_str("k");
		m.v.pairs[0].val = nested_arrays(&f->a, depth - 1);
		if (depth == 16)
			assert_int_equal(co(c, "a", m, &out, &err), 0);
		else
			co_bad(c, "a", m, TT_BAD_VALUE, "nested deeper than 16");
	}
}

static void test_name_ok(void **state)
{
	fx *f = *state;
	tt_value v = tt_str("a");
	assert_true(tt_name_ok(&v));
	v = tt_str("");
	assert_false(tt_name_ok(&v));
	char n[129];
	memset(n, 'x', sizeof(n));
	v = tt_strn(n, 128);
	assert_true(tt_name_ok(&v));
	v = tt_strn(n, 129);
	assert_false(tt_name_ok(&v));
	v = tt_int(1);
	assert_false(tt_name_ok(&v));
	v = tm(&f->a, "c4 01 61");
	assert_false(tt_name_ok(&v));
}

static void test_demo_schema(void **state)
{
	fx *f = *state;
	/* schemas/demo.json, the class the demo pages use */
	const char *root = getenv("TT_SOURCE_DIR");
	if (!root)
		skip();
	char path[1024];
	snprintf(path, sizeof(path), "%s/schemas/demo.json", root);
	tt_value file;
	tt_error err;
	assert_int_equal(tt_json_load_file(path, &f->a, &file, &err), 0);
	tt_class *c = mk_tree(f, get(&file, "description"));
	assert_int_equal(c->n_params, 6);
	assert_double_equal(P(c, "volume")->def.v.f, 0.5);
	assert_double_equal(P(c, "volume")->fmax, 1.0);
	assert_int_equal(P(c, "frequency")->def.type, TT_FLOAT);
	assert_double_equal(P(c, "frequency")->def.v.f, 440.0);
	assert_true(P(c, "bang")->event);
	assert_true(tt_str_eq(&P(c, "mode")->def, "sine"));
	tt_value d = desc_of(f, c);
	assert_double_equal(get(get(get(&d, "volume"), "metas"), "step")->v.f, 0.01);
	assert_double_equal(co_float(c, "frequency", tt_int(10)), 50.0);
	co_bad(c, "mode", tt_str("saw"), TT_BAD_VALUE, "class \"c\": invalid value \"saw\" for enum param \"mode\"");
}

/* What a person writes is checked strictly: an unknown option gets a
 * did-you-mean, an option of another type and a default outside [min, max]
 * are refused; what an older server stored (extra keys kept) is still read
 * by the lenient tt_class_create. */
static void test_strict(void **state)
{
	fx *f = *state;
	static const struct { const char *desc, *msg; } bad[] = {
		{"{\"x\": {\"type\": \"integer\", \"default\": 0, \"mni\": 0}}", "unknown option 'mni': did you mean 'min'?"},
		{"{\"x\": {\"type\": \"float\", \"default\": 0, \"filterchange\": false}}", "did you mean 'filterChange'?"},
		{"{\"x\": {\"type\": \"float\", \"default\": 0, \"unit\": \"dB\"}}", "unknown option 'unit' (your own data goes under \"metas\")"},
		{"{\"x\": {\"type\": \"string\", \"default\": \"\", \"max\": 3}}", "'max' does not apply to a string param"},
		{"{\"x\": {\"type\": \"integer\", \"default\": 0, \"list\": [1]}}", "'list' does not apply to a integer param"},
		{"{\"x\": {\"type\": \"integer\", \"default\": 5, \"max\": 1}}", "default 5 is outside [min, max] = [-inf, 1]"},
		{"{\"x\": {\"type\": \"float\", \"default\": -0.5, \"min\": 0}}", "default -0.5 is outside [min, max] = [0, inf]"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		tt_value d = tj(&f->a, bad[i].desc);
		tt_class *c = NULL;
		tt_error err = {0};
		assert_int_equal(tt_class_create_strict("c", 1, &d, &c, &err), -TT_BAD_DESCRIPTION);
		assert_null(c);
		assert_substr(err.msg, bad[i].msg);
		/* lenient: kept (an unknown key passes through, a default is clipped) */
		assert_int_equal(tt_class_create("c", 1, &d, &c, &err), 0);
		tt_class_free(c);
	}
	tt_value ok = tj(&f->a, "{\"x\": {\"type\": \"float\", \"default\": 0.5, \"min\": 0, \"max\": 1,"
			 " \"metas\": {\"step\": 0.01}}, \"s\": {\"type\": \"string\", \"default\": \"\", \"maxBytes\": 8}}");
	tt_class *c = NULL;
	tt_error err = {0};
	assert_int_equal(tt_class_create_strict("c", 1, &ok, &c, &err), 0);
	assert_int_equal(P(c, "s")->max_bytes, 8);
	tt_class_free(c);
	static const char *const words[] = {"class", "description", "server", "rights"};
	assert_string_equal(tt_nearest("sever", 5, words, 4), "server");
	assert_string_equal(tt_nearest("rihgts", 6, words, 4), "rights");
	assert_null(tt_nearest("colour", 6, words, 4));
}

/* BUG(2026-11-22): PROTOCOL.md §4 says class and param names are "1 to 128
 * bytes of UTF-8", but tt_name_ok (schema.c:21) and tt_class_create only
 * check the length: a name of invalid UTF-8 ("\xff", a lone continuation
 * byte) is accepted, and is then sent back in NOTICE/ATTACH results as a
 * msgpack str that is not UTF-8. */
static void test_names_must_be_utf8(void **state)
{
	fx *f = *state;
	tt_value v = tt_str("\xff");
	assert_false(tt_name_ok(&v));
	v = tt_str("ab\xc3");
	assert_false(tt_name_ok(&v));
	tt_value d = tj(&f->a, "{}");
	refused_tree(f, "\x80x", &d, "class name", NULL);
	/* {"\xff": {"type": "any", "default": 0}} */
	d = tm(&f->a, "81 a1 ff 82 a4 74 79 70 65 a3 61 6e 79 a7 64 65 66 61 75 6c 74 00");
	refused_tree(f, "c", &d, "param names", NULL);
}

/* Names are printed in logs and pages: a NUL or a control character in a
 * class or param name is refused with a message that says why, while
 * printable UTF-8 beyond ASCII stays accepted. */
static void test_names_must_be_printable(void **state)
{
	fx *f = *state;
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
		{"a\0b", 3}, {"\0", 1}, {"ab\0", 3}, {"a\nb", 3}, {"\tx", 2}, {"\x1b[2J", 4},
		{"x\x7f", 2}, {"\xc2\x80", 2}, {"a\xc2\x9f", 3}, {"\x1f", 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		tt_value v = tt_strn(bad[i].s, bad[i].n);
		assert_false(tt_name_ok(&v));
	}
	static const char *const good[] = {"a b", "caf\xc3\xa9", "\xc2\xa0nbsp", "~", "\xe2\x99\xaa"};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		tt_value v = tt_str(good[i]);
		assert_true(tt_name_ok(&v));
	}
	tt_value d = tj(&f->a, "{}");
	tt_class *c = NULL;
	tt_error err;
	assert_int_equal(tt_class_create("a\0b", 3, &d, &c, &err), -TT_BAD_DESCRIPTION);
	assert_null(c);
	assert_non_null(strstr(err.msg, "no control characters"));
	refused_tree(f, "bell\a", &d, "class name", "printable");
	/* {"a\0b": {"type": "any", "default": 0}} */
	d = tm(&f->a, "81 a3 61 00 62 82 a4 74 79 70 65 a3 61 6e 79 a7 64 65 66 61 75 6c 74 00");
	refused_tree(f, "c", &d, "param names", "no control characters");
}

/* BUG(2026-11-22): tt_class_create (schema.c:420) ignores the result of
 * tt_value_canon on the expanded description. When metas (or an unknown
 * option) holds a map with a duplicate key -- possible over msgpack --
 * canonicalisation stops before sorting the param's options, so the
 * class's identity depends on option order: the same DEFINE with its
 * options in another order is CLASS_EXISTS instead of a no-op (PROTOCOL.md
 * §4). Found by fuzz_schema (corpus/schema/bug_canon_dup_metas). Either
 * such a description is refused (BAD_DESCRIPTION), or the two are the same. */
static void test_same_with_duplicate_in_metas(void **state)
{
	fx *f = *state;
	/* {"p": {"type": "any", "default": 0, "metas": {"x": 1, "x": 1}, "step": 1, "unit": 2}} */
	tt_value d1 = tm(&f->a, "81 a1 70 85 a4 74 79 70 65 a3 61 6e 79 a7 64 65 66 61 75 6c 74 00"
				" a5 6d 65 74 61 73 82 a1 78 01 a1 78 01 a4 73 74 65 70 01 a4 75 6e 69 74 02");
	/* the same with "unit" before "step" */
	tt_value d2 = tm(&f->a, "81 a1 70 85 a4 74 79 70 65 a3 61 6e 79 a7 64 65 66 61 75 6c 74 00"
				" a5 6d 65 74 61 73 82 a1 78 01 a1 78 01 a4 75 6e 69 74 02 a4 73 74 65 70 01");
	tt_class *c1 = NULL, *c2 = NULL;
	tt_error err;
	int rc1 = tt_class_create("c", 1, &d1, &c1, &err);
	int rc2 = tt_class_create("c", 1, &d2, &c2, &err);
	keep(f, c1);
	keep(f, c2);
	assert_int_equal(rc1, rc2);
	if (rc1 == 0)
		assert_true(tt_class_same(c1, c2));
	else
		assert_int_equal(rc1, -TT_BAD_DESCRIPTION);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_desc_shape_errors),
		T(test_desc_names),
		T(test_desc_too_many_params),
		T(test_desc_option_types),
		T(test_desc_default_errors),
		T(test_desc_depth_caps),
		T(test_expand_every_type),
		T(test_expand_options),
		T(test_expand_bounds),
		T(test_default_clipped),
		T(test_event_required),
		T(test_class_same),
		T(test_same_with_duplicate_in_metas),
		T(test_coerce_boolean_string),
		T(test_coerce_integer),
		T(test_coerce_integer_bounds_edges),
		T(test_coerce_float),
		T(test_coerce_enum),
		T(test_coerce_nullable),
		T(test_coerce_any),
		T(test_coerce_any_depth),
		T(test_coerce_any_depth_boundary),
		T(test_name_ok),
		T(test_names_must_be_utf8),
		T(test_names_must_be_printable),
		T(test_demo_schema),
		T(test_strict),
	};
#undef T
	return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
