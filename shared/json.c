/* SPDX-License-Identifier: MIT */
/* json.c: jansson behind the tt_value interface. */
#include "json.h"

#include <jansson.h>
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
