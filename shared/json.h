/* SPDX-License-Identifier: MIT */
/* json.h: JSON text to tt_value trees, the only door to jansson (used for the
 * schema files of schemas/). */
#ifndef TT_JSON_H
#define TT_JSON_H

#include "arena.h"
#include "common.h"
#include "value.h"

/* Parse the JSON file at path into a tree in arena. On error returns
 * -TT_BAD_DESCRIPTION with err saying file, line and column. */
int tt_json_load_file(const char *path, tt_arena *arena, tt_value *out, tt_error *err);
/* Same from a NUL-terminated string (tests, tools). */
int tt_json_parse(const char *text, tt_arena *arena, tt_value *out, tt_error *err);
/* Any JSON value (a scalar too), e.g. a value typed on a command line. On
 * error returns -TT_BAD_VALUE with err saying where. */
int tt_json_parse_value(const char *text, tt_arena *arena, tt_value *out, tt_error *err);
/* A tree as compact JSON text (malloc'd, NUL-terminated; the caller frees
 * it). What JSON cannot hold is written as JSON.stringify would: NaN and
 * infinities as null; binary and ext values as null; map keys that are not
 * strings as their printed form; invalid UTF-8 bytes as U+FFFD. */
char *tt_json_dump(const tt_value *v);

#endif
