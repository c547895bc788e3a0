/* SPDX-License-Identifier: MIT */
/* schemas.c: reading the schemas directory into the model. */
#include "schemas.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "log.h"
#include "store.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One file: its parsed JSON, or why it could not be read. */
typedef struct schema_file {
	char *path;  /* owned */
	tt_arena a;  /* holds root */
	tt_value root;
	int rc;      /* < 0: err says why the file cannot be read */
	tt_error err;
} schema_file;

struct tt_schema_set {
	schema_file *files; /* sorted by name */
	size_t n;
};

static int define_file(const schema_file *f, tt_error *err)
{
	const char *path = f->path;
	const tt_value *name = tt_map_get(&f->root, "class");
	const tt_value *desc = tt_map_get(&f->root, "description");
	const tt_value *server = tt_map_get(&f->root, "server");
	if (f->root.type != TT_MAP || !name || !tt_name_ok(name) || !desc)
		return tt_fail(err, TT_BAD_DESCRIPTION,
			       "%s: expected {\"class\": NAME, \"description\": {...}, \"server\": bool}", path);
	if (server && server->type != TT_BOOL)
		return tt_fail(err, TT_BAD_DESCRIPTION, "%s: \"server\" must be true or false", path);
	bool created;
	int rc = tt_store_define(name->v.s, name->len, desc, &created, err);
	if (rc < 0) {
		tt_error e = *err;
		return tt_fail(err, e.code, "%s: %s", path, e.msg);
	}
	tt_class_entry *ce = tt_store_class(name->v.s, name->len);
	/* a server-owned state, unless the database brought one back */
	if (server && server->v.b && !ce->first)
		tt_store_state_new(ce, 0, NULL, tt_clock_now());
	return 0;
}

int tt_schemas_read(const char *dir, tt_schema_set **out, tt_error *err)
{
	*out = NULL;
	DIR *d = opendir(dir);
	if (!d)
		return tt_fail(err, TT_BAD_DESCRIPTION, "cannot open schemas directory %s", dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0 && e->d_name[0] != '.') {
			names = tt_realloc(names, sizeof(char *) * (n + 1));
			names[n++] = tt_strndup(e->d_name, len);
		}
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(char *), name_cmp);
	tt_schema_set *set = tt_calloc(1, sizeof(*set));
	set->files = n ? tt_calloc(n, sizeof(*set->files)) : NULL;
	set->n = n;
	for (size_t i = 0; i < n; i++) {
		schema_file *f = &set->files[i];
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		f->path = tt_strndup(path, strlen(path));
		tt_arena_init(&f->a, 0);
		f->rc = tt_json_load_file(path, &f->a, &f->root, &f->err);
		free(names[i]);
	}
	free(names);
	*out = set;
	return 0;
}

int tt_schemas_apply(const tt_schema_set *set, tt_error *err)
{
	for (size_t i = 0; i < set->n; i++) {
		const schema_file *f = &set->files[i];
		if (f->rc < 0) {
			*err = f->err;
			return f->rc;
		}
		int rc = define_file(f, err);
		if (rc < 0)
			return rc;
		tt_log_info("loaded class from %s", f->path);
	}
	return 0;
}

void tt_schema_set_free(tt_schema_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		free(set->files[i].path);
		tt_arena_destroy(&set->files[i].a);
	}
	free(set->files);
	free(set);
}

int tt_schemas_load(const char *dir, tt_error *err)
{
	tt_schema_set *set;
	int rc = tt_schemas_read(dir, &set, err);
	if (rc == 0)
		rc = tt_schemas_apply(set, err);
	tt_schema_set_free(set);
	return rc;
}
