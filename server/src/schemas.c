/* SPDX-License-Identifier: MIT */
/* schemas.c: reading the schemas directory into the model, at start and
 * again on SIGHUP. */
#include "schemas.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "fanout.h"
#include "json.h"
#include "log.h"
#include "rights.h"
#include "schema.h"
#include "store.h"

static struct {
	const char *const *resets; /* borrowed: --reset-param */
	uint32_t n_resets;
	/* the classes of this pass, to refuse one class in two files */
	struct { char *name; char *path; } *seen;
	size_t n_seen;
} G;

static const char *seen_in(const char *name, size_t len)
{
	for (size_t i = 0; i < G.n_seen; i++)
		if (strlen(G.seen[i].name) == len && !memcmp(G.seen[i].name, name, len))
			return G.seen[i].path;
	return NULL;
}

void tt_schemas_allow_reset(const char *const *names, uint32_t n)
{
	G.resets = names;
	G.n_resets = n;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys a schema file may have; a typo gets a did-you-mean. */
static int check_top_keys(const tt_value *root, const char *path, tt_error *err)
{
	static const char *const keys[] = {"class", "description", "server", "rights"};
	for (uint32_t i = 0; i < root->len; i++) {
		const tt_value *k = &root->v.pairs[i].key;
		bool known = false;
		for (size_t q = 0; q < sizeof(keys) / sizeof(*keys); q++)
			known |= tt_str_eq(k, keys[q]);
		if (known)
			continue;
		const char *near = tt_nearest(k->v.s, k->len, keys, sizeof(keys) / sizeof(*keys));
		return tt_fail(err, TT_BAD_DESCRIPTION,
			       "%s: unknown key \"%.*s\"%s%s%s (a schema file has class, description, server, rights)",
			       path, (int)TT_MIN(k->len, 64u), k->v.s, near ? ": did you mean \"" : "",
			       near ? near : "", near ? "\"?" : "");
	}
	return 0;
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

/* Define (or migrate) the class of one file. live: the server is running
 * (a reload): clients of a class whose description changed are told. */
static int apply_file(const schema_file *f, bool live, tt_error *err)
{
	const char *path = f->path;
	uint64_t *old_seqs = NULL;
	int rc = f->rc;
	if (rc < 0) {
		*err = f->err;
		return rc;
	}
	const tt_value *root = &f->root;
	const tt_value *name = tt_map_get(root, "class");
	const tt_value *desc = tt_map_get(root, "description");
	const tt_value *server = tt_map_get(root, "server");
	const tt_value *rights_v = tt_map_get(root, "rights");
	if (root->type != TT_MAP || !name || !tt_name_ok(name) || !desc) {
		rc = tt_fail(err, TT_BAD_DESCRIPTION,
			     "%s: expected {\"class\": NAME, \"description\": {...}, \"server\": bool, \"rights\": {...}}",
			     path);
		goto out;
	}
	if ((rc = check_top_keys(root, path, err)) < 0)
		goto out;
	if (server && server->type != TT_BOOL) {
		rc = tt_fail(err, TT_BAD_DESCRIPTION, "%s: \"server\" must be true or false", path);
		goto out;
	}
	const char *other = seen_in(name->v.s, name->len);
	if (other) {
		rc = tt_fail(err, TT_BAD_DESCRIPTION, "%s: class \"%.*s\" is already declared in %s",
			     path, (int)name->len, name->v.s, other);
		goto out;
	}
	G.seen = tt_realloc(G.seen, sizeof(*G.seen) * (G.n_seen + 1));
	G.seen[G.n_seen].name = tt_strndup(name->v.s, name->len);
	G.seen[G.n_seen++].path = tt_strndup(path, strlen(path));
	tt_class_entry *ce = tt_store_class(name->v.s, name->len);
	bool created = false, changed = false;
	if (ce) {
		old_seqs = tt_malloc(sizeof(*old_seqs) * (ce->n_states + 1));
		uint32_t k = 0;
		for (const tt_state *st = ce->first; st; st = st->cnext)
			old_seqs[k++] = st->seq;
		rc = tt_store_migrate(ce, desc, G.resets, G.n_resets, &changed, err);
	} else {
		rc = tt_store_define(name->v.s, name->len, desc, true, &created, err);
	}
	if (rc < 0) {
		tt_error e = *err;
		rc = tt_fail(err, e.code, "%s: %s", path, e.msg);
		goto out;
	}
	ce = tt_store_class(name->v.s, name->len);
	if (changed) {
		tt_log_info("%s: class \"%s\" has a new description; its states keep their values",
			    path, ce->cls->name);
		if (live)
			tt_fanout_class_changed(ce, old_seqs);
	}
	tt_rights *rights = NULL;
	if (rights_v && (rc = tt_rights_parse(ce->cls, rights_v, path, &rights, err)) < 0)
		goto out;
	tt_store_class_rights(ce, rights);
	/* a server-owned state, unless the database brought one back */
	if (server && server->v.b && !ce->first)
		tt_store_state_new(ce, 0, NULL, tt_clock_now());
out:
	free(old_seqs);
	return rc;
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

/* Every file of set in order: 0, or the first file's error (stop), or
 * each file's error logged (live: keep going). */
static int apply_set(const tt_schema_set *set, bool live, tt_error *err)
{
	int rc = 0;
	for (size_t i = 0; i < set->n && (!rc || live); i++) {
		const schema_file *f = &set->files[i];
		int r = apply_file(f, live, err);
		if (r == 0 && !live)
			tt_log_info("loaded class from %s", f->path);
		else if (r < 0 && live)
			tt_log_error("reload: %s (the class keeps its description)", err->msg);
		if (r < 0 && !rc)
			rc = r;
	}
	for (size_t i = 0; i < G.n_seen; i++) {
		free(G.seen[i].name);
		free(G.seen[i].path);
	}
	TT_FREE(G.seen);
	G.n_seen = 0;
	return rc;
}

int tt_schemas_apply(const tt_schema_set *set, tt_error *err)
{
	return apply_set(set, false, err);
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

static int load_dir(const char *dir, bool live, tt_error *err)
{
	tt_schema_set *set;
	int rc = tt_schemas_read(dir, &set, err);
	if (rc == 0)
		rc = apply_set(set, live, err);
	tt_schema_set_free(set);
	return rc;
}

int tt_schemas_load(const char *dir, tt_error *err)
{
	return load_dir(dir, false, err);
}

void tt_schemas_reload(const char *dir)
{
	tt_error err;
	tt_log_info("reloading the schemas of %s", dir);
	if (load_dir(dir, true, &err) == 0)
		tt_log_info("schemas reloaded");
	else
		tt_log_error("reload: %s", err.msg);
}
