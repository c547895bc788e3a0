/* SPDX-License-Identifier: MIT */
/* rights.c: parsing a class's rights, and the checks. */
#include "rights.h"

#include <string.h>

#include "roles.h"

static bool g_open;

static const char *const KIND_NAMES[TT_RIGHT_N] = {"create", "attach", "set", "delete"};

const char *tt_right_name(enum tt_right_kind kind)
{
	return KIND_NAMES[kind];
}

void tt_rights_init(bool open)
{
	g_open = open;
}

bool tt_rights_admin(uint32_t role)
{
	const tt_role *r = tt_roles_get(role);
	return r && r->admin;
}

bool tt_rights_may_define(uint32_t role)
{
	const tt_role *r = tt_roles_get(role);
	return r && (r->admin || r->define || g_open);
}

bool tt_rights_may_hook(uint32_t role)
{
	const tt_role *r = tt_roles_get(role);
	return r && (r->admin || r->hooks);
}

/* Every role but the default one (and that one too in open mode). */
static uint64_t trusted(void)
{
	uint64_t all = tt_roles_count() >= 64 ? UINT64_MAX : ((uint64_t)1 << tt_roles_count()) - 1;
	return g_open ? all : all & ~((uint64_t)1 << tt_roles_default());
}

static bool allows(const tt_right *r, enum tt_right_kind kind, uint32_t role, bool owner)
{
	if (tt_rights_admin(role))
		return true;
	if (g_open && kind != TT_RIGHT_DELETE)
		return true; /* a laptop ensemble: everyone is trusted */
	if (r && r->given)
		return (r->owner && owner) || ((r->roles >> role) & 1);
	switch (kind) {
	case TT_RIGHT_CREATE:
	case TT_RIGHT_ATTACH:
		return true;
	case TT_RIGHT_SET:
		return owner || ((trusted() >> role) & 1);
	case TT_RIGHT_DELETE:
	default:
		return owner;
	}
}

bool tt_rights_may(const tt_rights *r, enum tt_right_kind kind, uint32_t role, bool owner)
{
	return allows(r ? &r->op[kind] : NULL, kind, role, owner);
}

bool tt_rights_may_set(const tt_rights *r, uint32_t param, uint32_t role, bool owner)
{
	if (r && r->param_set && param < r->n_params && r->param_set[param].given)
		return allows(&r->param_set[param], TT_RIGHT_SET, role, owner);
	return tt_rights_may(r, TT_RIGHT_SET, role, owner);
}

static int parse_list(const tt_value *v, bool owner_ok, const char *path, const char *what,
		      tt_right *out, tt_error *err)
{
	if (v->type != TT_ARRAY)
		return tt_fail(err, TT_BAD_DESCRIPTION, "%s: rights: \"%s\" must be a list of roles",
			       path, what);
	out->given = true;
	for (uint32_t i = 0; i < v->len; i++) {
		const tt_value *e = &v->v.items[i];
		if (e->type != TT_STR)
			return tt_fail(err, TT_BAD_DESCRIPTION, "%s: rights: \"%s\" lists a non-string",
				       path, what);
		if (tt_str_eq(e, "*")) {
			out->roles = UINT64_MAX;
		} else if (tt_str_eq(e, "owner")) {
			if (!owner_ok)
				return tt_fail(err, TT_BAD_DESCRIPTION,
					       "%s: rights: \"owner\" only makes sense for set and delete",
					       path);
			out->owner = true;
		} else {
			int k = tt_roles_find(e->v.s, e->len);
			if (k < 0)
				return tt_fail(err, TT_BAD_DESCRIPTION,
					       "%s: rights: \"%s\" names no role \"%.*s\" (roles.json declares the roles)",
					       path, what, (int)TT_MIN(e->len, 64u), e->v.s);
			out->roles |= (uint64_t)1 << k;
		}
	}
	return 0;
}

int tt_rights_parse(const tt_class *cls, const tt_value *v, const char *path, tt_rights **out,
		    tt_error *err)
{
	*out = NULL;
	if (v->type != TT_MAP)
		return tt_fail(err, TT_BAD_DESCRIPTION, "%s: \"rights\" must be an object", path);
	tt_rights *r = tt_calloc(1, sizeof(*r));
	int rc = 0;
	for (uint32_t i = 0; i < v->len && rc == 0; i++) {
		const tt_value *k = &v->v.pairs[i].key, *val = &v->v.pairs[i].val;
		int kind = -1;
		for (int q = 0; q < TT_RIGHT_N; q++)
			if (tt_str_eq(k, KIND_NAMES[q]))
				kind = q;
		if (kind >= 0) {
			rc = parse_list(val, kind == TT_RIGHT_SET || kind == TT_RIGHT_DELETE, path,
					KIND_NAMES[kind], &r->op[kind], err);
			continue;
		}
		if (!tt_str_eq(k, "params")) {
			rc = tt_fail(err, TT_BAD_DESCRIPTION,
				     "%s: rights: unknown key \"%.*s\" (create, attach, set, delete, params)",
				     path, (int)TT_MIN(k->len, 64u), k->v.s);
			break;
		}
		if (val->type != TT_MAP) {
			rc = tt_fail(err, TT_BAD_DESCRIPTION, "%s: rights: \"params\" must be an object",
				     path);
			break;
		}
		r->n_params = cls->n_params;
		r->param_set = tt_calloc(cls->n_params ? cls->n_params : 1, sizeof(tt_right));
		for (uint32_t j = 0; j < val->len && rc == 0; j++) {
			const tt_value *pn = &val->v.pairs[j].key, *pr = &val->v.pairs[j].val;
			int p = tt_class_param_index(cls, pn->v.s, pn->len);
			if (p < 0) {
				rc = tt_fail(err, TT_BAD_DESCRIPTION,
					     "%s: rights: class \"%s\" has no param \"%.*s\"", path,
					     cls->name, (int)TT_MIN(pn->len, 128u), pn->v.s);
				break;
			}
			const tt_value *set = pr->type == TT_MAP ? tt_map_get(pr, "set") : NULL;
			if (!set || pr->len != 1) {
				rc = tt_fail(err, TT_BAD_DESCRIPTION,
					     "%s: rights: params: \"%s\" takes {\"set\": [roles]}", path,
					     cls->params[p].name);
				break;
			}
			rc = parse_list(set, true, path, cls->params[p].name, &r->param_set[p], err);
		}
	}
	if (rc < 0) {
		tt_rights_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void tt_rights_free(tt_rights *r)
{
	if (!r)
		return;
	free(r->param_set);
	free(r);
}
