/* SPDX-License-Identifier: MIT */
/* schemas.c: reading the schemas directory into the model. */
#include "schemas.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "log.h"
#include "rights.h"
#include "store.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_file(const char *path, tt_error *err)
{
	tt_arena a;
	tt_arena_init(&a, 0);
	tt_value root;
	int rc = tt_json_load_file(path, &a, &root, err);
	if (rc < 0)
		goto out;
	const tt_value *name = tt_map_get(&root, "class");
	const tt_value *desc = tt_map_get(&root, "description");
	const tt_value *server = tt_map_get(&root, "server");
	const tt_value *rights_v = tt_map_get(&root, "rights");
	if (root.type != TT_MAP || !name || !tt_name_ok(name) || !desc) {
		rc = tt_fail(err, TT_BAD_DESCRIPTION,
			     "%s: expected {\"class\": NAME, \"description\": {...}, \"server\": bool, \"rights\": {...}}",
			     path);
		goto out;
	}
	if (server && server->type != TT_BOOL) {
		rc = tt_fail(err, TT_BAD_DESCRIPTION, "%s: \"server\" must be true or false", path);
		goto out;
	}
	bool created;
	if ((rc = tt_store_define(name->v.s, name->len, desc, &created, err)) < 0) {
		tt_error e = *err;
		rc = tt_fail(err, e.code, "%s: %s", path, e.msg);
		goto out;
	}
	tt_class_entry *ce = tt_store_class(name->v.s, name->len);
	tt_rights *rights = NULL;
	if (rights_v && (rc = tt_rights_parse(ce->cls, rights_v, path, &rights, err)) < 0)
		goto out;
	tt_store_class_rights(ce, rights);
	/* a server-owned state, unless the database brought one back */
	if (server && server->v.b && !ce->first)
		tt_store_state_new(ce, 0, NULL, tt_clock_now());
out:
	tt_arena_destroy(&a);
	return rc;
}

int tt_schemas_load(const char *dir, tt_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return tt_fail(err, TT_BAD_DESCRIPTION, "cannot open schemas directory %s", dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		/* roles.json holds the roles (roles.h), not a class */
		if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0 && e->d_name[0] != '.' &&
		    strcmp(e->d_name, "roles.json") != 0) {
			names = tt_realloc(names, sizeof(char *) * (n + 1));
			names[n++] = tt_strndup(e->d_name, len);
		}
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(char *), name_cmp);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!rc) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			rc = load_file(path, err);
			if (!rc)
				tt_log_info("loaded class from %s", path);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}
