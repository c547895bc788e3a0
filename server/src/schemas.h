/* SPDX-License-Identifier: MIT */
/* schemas.h: the class files of the schemas directory, loaded at start. */
#ifndef TT_SCHEMAS_H
#define TT_SCHEMAS_H

#include <stdint.h>

#include "common.h"

/* Load every *.json of dir but roles.json (sorted by name; dotfiles
 * skipped). A file is {"class": NAME, "description": {...}, "server": bool,
 * "rights": {...}}, checked strictly (a typo is refused with a
 * did-you-mean). A class the database already holds with another
 * description is migrated to the file's (tt_store_migrate). With server true
 * the server creates and owns one state of the class, unless one already
 * exists. Returns -code with err naming the file on the first bad file
 * (the files before it stay loaded). */
int tt_schemas_load(const char *dir, tt_error *err);
/* The same in two steps, for a caller that loads the same files into many
 * fresh models (the handler fuzzer): read and parse every file once
 * (-code only when dir cannot be opened; a file that cannot be read is
 * reported by apply, in its turn), then define the classes as above. */
typedef struct tt_schema_set tt_schema_set;
int tt_schemas_read(const char *dir, tt_schema_set **out, tt_error *err);
int tt_schemas_apply(const tt_schema_set *set, tt_error *err);
void tt_schema_set_free(tt_schema_set *set); /* accepts NULL */
/* SIGHUP: load them again while running. A class whose file changed gets
 * its new description (tt_store_migrate: values kept) and its clients are
 * told (CLASS_CHANGED, and an UPDATE where values changed); a file that
 * fails is logged and its class keeps its description; a class whose file
 * went stays. Roles are not reloaded. */
void tt_schemas_reload(const char *dir);
/* The "class.param" names whose values a change may reset to the default
 * (--reset-param; borrowed). */
void tt_schemas_allow_reset(const char *const *names, uint32_t n);

/* The same in two steps, for a caller that loads the same files into many
 * fresh models (the handler fuzzer): read and parse every file once
 * (-code only when dir cannot be opened; a file that cannot be read is
 * reported by apply, in its turn), then define the classes as above. */
typedef struct tt_schema_set tt_schema_set;
int tt_schemas_read(const char *dir, tt_schema_set **out, tt_error *err);
int tt_schemas_apply(const tt_schema_set *set, tt_error *err);
void tt_schema_set_free(tt_schema_set *set); /* accepts NULL */

#endif
