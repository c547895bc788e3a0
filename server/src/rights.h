/* SPDX-License-Identifier: MIT */
/* rights.h: what a role may do with a class. A schema file may say, per
 * class and optionally per param, which roles may create, attach (and
 * observe, describe, read history), set and delete:
 *
 *   "rights": { "create": ["conductor"], "set": ["conductor"],
 *               "params": { "bang": { "set": ["*"] } } }
 *
 * A list holds role names, "*" (every role) and, for set and delete,
 * "owner" (the session that created the state, whatever its role). What a
 * class does not say, the defaults say:
 *   create, attach: every role;
 *   set: the state's owner and every role but the default one;
 *   delete: the state's owner;
 *   define a class over the wire: roles with "define": true.
 * So the audience (the default role, no token) may look at everything and
 * write only what it created, until a schema file gives it more. With
 * --open every client may create, attach, set and define whatever the
 * schema files say (a laptop ensemble on its own network); a state is
 * still deleted by its owner, and operator actions still need an admin.
 * An admin role may do everything. */
#ifndef TT_RIGHTS_H
#define TT_RIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "schema.h"
#include "value.h"

enum tt_right_kind { TT_RIGHT_CREATE, TT_RIGHT_ATTACH, TT_RIGHT_SET, TT_RIGHT_DELETE, TT_RIGHT_N };

typedef struct tt_right {
	uint64_t roles; /* bit i: role i */
	bool owner;     /* the state's owner session */
	bool given;     /* written in the schema file */
} tt_right;

typedef struct tt_rights {
	tt_right op[TT_RIGHT_N];
	tt_right *param_set; /* owned: one per param of the class, or NULL */
	uint32_t n_params;
} tt_rights;

/* Set open mode (--open) before any check. */
void tt_rights_init(bool open);
/* Parse a schema file's "rights" for class cls (roles must be loaded).
 * Returns 0 with *out owned by the caller, or -TT_BAD_DESCRIPTION with err
 * naming the file, key and role. */
int tt_rights_parse(const tt_class *cls, const tt_value *v, const char *path, tt_rights **out,
		    tt_error *err);
void tt_rights_free(tt_rights *r); /* accepts NULL */

/* May a client of role `role` do `kind` on a class with these rights
 * (NULL: the defaults)? owner: it owns the state concerned. */
bool tt_rights_may(const tt_rights *r, enum tt_right_kind kind, uint32_t role, bool owner);
/* May it set param i (its own right if the file gave one, else the
 * class's set right)? */
bool tt_rights_may_set(const tt_rights *r, uint32_t param, uint32_t role, bool owner);
bool tt_rights_may_define(uint32_t role);
/* Register hooks: admin, or "hooks": true. */
bool tt_rights_may_hook(uint32_t role);
bool tt_rights_admin(uint32_t role);
/* "create", "attach", "set", "delete". */
const char *tt_right_name(enum tt_right_kind kind);

#endif
