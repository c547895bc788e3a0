/* SPDX-License-Identifier: MIT */
/* roles.c: the role table, from roles.json or built in, and HELLO's proof
 * of a role. */
#include "roles.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "log.h"

static struct {
	tt_role roles[TT_MAX_ROLES];
	uint32_t n;
	uint32_t def;
	/* generated tokens as the database kept them, until the roles load */
	struct {
		char role[TT_ROLE_NAME_MAX + 1];
		char token[TT_TOKEN_HEX_LEN + 1];
	} kept[TT_MAX_ROLES];
	uint32_t n_kept;
} R;


void tt_roles_restored_token(const char *role, const char *token, size_t len)
{
	if (R.n_kept >= TT_MAX_ROLES || strlen(role) > TT_ROLE_NAME_MAX || len != TT_TOKEN_HEX_LEN)
		return;
	snprintf(R.kept[R.n_kept].role, sizeof(R.kept[0].role), "%s", role);
	memcpy(R.kept[R.n_kept].token, token, len);
	R.kept[R.n_kept].token[len] = '\0';
	R.n_kept++;
}

/* A token for role r: the one the database kept, or a new one (the
 * server stores it: r->fresh). */
static void generate(tt_role *r)
{
	r->generated = true;
	for (uint32_t i = 0; i < R.n_kept; i++)
		if (!strcmp(R.kept[i].role, r->name)) {
			memcpy(r->token, R.kept[i].token, sizeof(r->token));
			goto digest;
		}
	tt_secret_token(r->token);
	r->fresh = true;
digest:
	tt_secret_digest(r->token, TT_TOKEN_HEX_LEN, r->digest);
}

static bool name_ok(const char *s, size_t n)
{
	if (n < 1 || n > TT_ROLE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static tt_role *add(const char *name, size_t len)
{
	tt_role *r = &R.roles[R.n++];
	memset(r, 0, sizeof(*r));
	memcpy(r->name, name, len);
	r->name[len] = '\0';
	return r;
}

static bool flag(const tt_value *opts, const char *key, bool *out, tt_error *err,
		 const char *path, const char *role)
{
	const tt_value *v = tt_map_get(opts, key);
	if (!v)
		return true;
	if (v->type != TT_BOOL) {
		tt_fail(err, TT_BAD_DESCRIPTION, "%s: role \"%s\": \"%s\" must be true or false", path,
			role, key);
		return false;
	}
	*out = v->v.b;
	return true;
}

/* The roles of root ({"default": ROLE, "roles": {...}}); path names where
 * they come from in errors. */
static int load_root(const tt_value *root, const char *path, tt_error *err)
{
	int rc = -TT_BAD_DESCRIPTION;
	const tt_value *roles = tt_map_get(root, "roles");
	const tt_value *def = tt_map_get(root, "default");
	if (root->type != TT_MAP || !roles || roles->type != TT_MAP || !def || def->type != TT_STR) {
		tt_fail(err, TT_BAD_DESCRIPTION,
			"%s: expected {\"default\": ROLE, \"roles\": {ROLE: {...}, ...}}", path);
		goto out;
	}
	for (uint32_t i = 0; i < root->len; i++) {
		const tt_value *k = &root->v.pairs[i].key;
		if (!tt_str_eq(k, "roles") && !tt_str_eq(k, "default")) {
			tt_fail(err, TT_BAD_DESCRIPTION, "%s: unknown key \"%.*s\" (roles, default)", path,
				(int)TT_MIN(k->len, 64u), k->v.s);
			goto out;
		}
	}
	if (roles->len > TT_MAX_ROLES) {
		tt_fail(err, TT_BAD_DESCRIPTION, "%s: more than %d roles", path, TT_MAX_ROLES);
		goto out;
	}
	for (uint32_t i = 0; i < roles->len; i++) {
		const tt_value *name = &roles->v.pairs[i].key, *opts = &roles->v.pairs[i].val;
		if (!name_ok(name->v.s, name->len)) {
			tt_fail(err, TT_BAD_DESCRIPTION,
				"%s: role names are 1 to %d letters, digits, '-', '_' or '.'", path,
				TT_ROLE_NAME_MAX);
			goto out;
		}
		tt_role *r = add(name->v.s, name->len);
		if (opts->type != TT_MAP) {
			tt_fail(err, TT_BAD_DESCRIPTION, "%s: role \"%s\" must be an object", path, r->name);
			goto out;
		}
		for (uint32_t j = 0; j < opts->len; j++) {
			const tt_value *k = &opts->v.pairs[j].key;
			static const char *const known[] = {"token", "admin", "define", "hooks", "page"};
			bool ok = false;
			for (size_t q = 0; q < sizeof(known) / sizeof(*known); q++)
				ok |= tt_str_eq(k, known[q]);
			if (!ok) {
				tt_fail(err, TT_BAD_DESCRIPTION,
					"%s: role \"%s\": unknown key \"%.*s\" (token, admin, define, hooks, page)",
					path, r->name, (int)TT_MIN(k->len, 64u), k->v.s);
				goto out;
			}
		}
		if (!flag(opts, "admin", &r->admin, err, path, r->name) ||
		    !flag(opts, "define", &r->define, err, path, r->name) ||
		    !flag(opts, "hooks", &r->hooks, err, path, r->name))
			goto out;
		const tt_value *page = tt_map_get(opts, "page");
		if (page && (page->type != TT_STR || page->len >= sizeof(r->page))) {
			tt_fail(err, TT_BAD_DESCRIPTION, "%s: role \"%s\": \"page\" must be a short path",
				path, r->name);
			goto out;
		}
		if (page)
			memcpy(r->page, page->v.s, page->len);
		r->is_default = def->len == name->len && !memcmp(def->v.s, name->v.s, name->len);
		const tt_value *token = tt_map_get(opts, "token");
		if (r->is_default) {
			if (token || r->admin) {
				tt_fail(err, TT_BAD_DESCRIPTION,
					"%s: role \"%s\" is the default role: it has no token and is not admin",
					path, r->name);
				goto out;
			}
			R.def = R.n - 1;
		} else if (token) {
			if (token->type != TT_STR || token->len < 12) {
				tt_fail(err, TT_BAD_DESCRIPTION,
					"%s: role \"%s\": \"token\" must be a string of at least 12 characters"
					" (or leave it out to have one generated)", path, r->name);
				goto out;
			}
			tt_secret_digest(token->v.s, token->len, r->digest);
		} else {
			generate(r);
		}
	}
	if (tt_roles_find(def->v.s, def->len) < 0) {
		tt_fail(err, TT_BAD_DESCRIPTION, "%s: the default role \"%.*s\" is not in \"roles\"",
			path, (int)TT_MIN(def->len, 64u), def->v.s);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int tt_roles_load(const char *dir, const tt_value *inline_roles, const char *inline_where,
		  tt_error *err)
{
	R.n = 0;
	R.def = 0;
	char path[4096];
	snprintf(path, sizeof(path), "%s/roles.json", dir);
	struct stat sb;
	int rc = 0;
	if (stat(path, &sb) == 0 && inline_roles) {
		rc = tt_fail(err, TT_BAD_DESCRIPTION, "roles are given twice, in %s and in %s: keep one",
			     path, inline_where);
	} else if (inline_roles) {
		rc = load_root(inline_roles, inline_where, err);
	} else if (stat(path, &sb) == 0) {
		tt_arena a;
		tt_arena_init(&a, 0);
		tt_value root;
		rc = tt_json_load_file(path, &a, &root, err);
		if (rc == 0)
			rc = load_root(&root, path, err);
		tt_arena_destroy(&a);
	} else {
		add("audience", 8)->is_default = true;
		R.def = 0;
	}
	/* an operator can always get in: an admin role exists */
	bool any_admin = false;
	for (uint32_t i = 0; i < R.n; i++)
		any_admin |= R.roles[i].admin;
	if (rc == 0 && !any_admin) {
		if (tt_roles_find("admin", 5) >= 0) {
			rc = tt_fail(err, TT_BAD_DESCRIPTION,
				     "%s: a role named \"admin\" must have \"admin\": true", path);
		} else if (R.n == TT_MAX_ROLES) {
			rc = tt_fail(err, TT_BAD_DESCRIPTION, "%s: no room for the admin role", path);
		} else {
			tt_role *r = add("admin", 5);
			r->admin = true;
			generate(r);
		}
	}
	if (rc < 0)
		R.n = 0;
	R.n_kept = 0;
	return rc;
}

void tt_roles_free(void)
{
	R.n = R.n_kept = 0;
}

uint32_t tt_roles_count(void)
{
	return R.n;
}

const tt_role *tt_roles_get(uint32_t i)
{
	return i < R.n ? &R.roles[i] : NULL;
}

int tt_roles_find(const char *s, size_t n)
{
	for (uint32_t i = 0; i < R.n; i++)
		if (strlen(R.roles[i].name) == n && !memcmp(R.roles[i].name, s, n))
			return (int)i;
	return -1;
}

uint32_t tt_roles_default(void)
{
	return R.def;
}

void tt_roles_banner(FILE *f, const char *base)
{
	const tt_role *inspector = NULL;
	for (uint32_t i = 0; i < R.n; i++) {
		if (R.roles[i].admin && (!inspector || (R.roles[i].generated && !inspector->generated)))
			inspector = &R.roles[i];
		const tt_role *r = &R.roles[i];
		if (r->is_default)
			fprintf(f, "role %s (default): %s/%s\n", r->name, base, r->page);
		else if (r->generated)
			fprintf(f, "role %s%s: %s/%s#role=%s&token=%s\n", r->name,
				r->admin ? " (admin)" : "", base, r->page, r->name, r->token);
		else
			fprintf(f, "role %s%s: %s/%s#role=%s&token=<its token in roles.json>\n", r->name,
				r->admin ? " (admin)" : "", base, r->page, r->name);
	}
	if (inspector)
		fprintf(f, "the inspector: %s/inspect#role=%s&token=%s\n", base, inspector->name,
			inspector->generated ? inspector->token : "<its token in roles.json>");
}

bool tt_roles_admin_token(const char *token, size_t len)
{
	unsigned char d[TT_DIGEST_LEN];
	bool ok = false;
	tt_secret_digest(token, len, d);
	/* every admin role is compared, in constant time each: the answer's
	 * timing says nothing of which, or how much, matched */
	for (uint32_t i = 0; i < R.n; i++)
		ok |= R.roles[i].admin && tt_secret_equal(d, R.roles[i].digest);
	return ok;
}

int tt_roles_auth(const tt_value *role, const tt_value *token, tt_error *err)
{
	if (!role || role->type == TT_NIL)
		return (int)R.def;
	if (role->type != TT_STR)
		return tt_fail(err, TT_UNAUTHORIZED, "role must be a string");
	int i = tt_roles_find(role->v.s, role->len);
	if (i < 0)
		return tt_fail(err, TT_UNAUTHORIZED, "no role \"%.*s\"", (int)TT_MIN(role->len, 64u),
			       role->v.s);
	const tt_role *r = &R.roles[i];
	if (r->is_default)
		return i;
	if (!token || token->type != TT_STR)
		return tt_fail(err, TT_UNAUTHORIZED, "role \"%s\" needs its token", r->name);
	unsigned char d[TT_DIGEST_LEN];
	tt_secret_digest(token->v.s, token->len, d);
	if (!tt_secret_equal(d, r->digest))
		return tt_fail(err, TT_UNAUTHORIZED, "wrong token for role \"%s\"", r->name);
	return i;
}
