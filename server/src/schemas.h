/* SPDX-License-Identifier: MIT */
/* schemas.h: the class files of the schemas directory, loaded at start. */
#ifndef TT_SCHEMAS_H
#define TT_SCHEMAS_H

#include "common.h"

/* Load every *.json of dir (sorted by name; dotfiles skipped). A file is
 * {"class": NAME, "description": {...}, "server": bool}; with server true
 * the server creates and owns one state of the class, unless one already
 * exists. Returns -code with err naming the file on the first bad file
 * (the files before it stay loaded). */
int tt_schemas_load(const char *dir, tt_error *err);

#endif
