/* SPDX-License-Identifier: MIT */
/* db_stub.h: a stand-in for server/src/db.c in the model's unit tests. It
 * keeps every row the model puts as one text line ("put_state 1 seq=2",
 * "del_state 3 owner left"...), so a test can check what would have been
 * written without SQLite. */
#ifndef TT_DB_STUB_H
#define TT_DB_STUB_H

#include <stddef.h>

/* Every row put since the last clear, one line each. */
const char *db_stub_log(void);
void db_stub_clear(void);
/* How many lines start with prefix. */
size_t db_stub_count(const char *prefix);
/* Free the log (at teardown). */
void db_stub_free(void);

#endif
