/* SPDX-License-Identifier: MIT */
/* db.h: persistence in SQLite, the store of record (DESIGN.md §3). db.c is
 * the only file that includes sqlite3.h and holds all the SQL. The store
 * reports what changed during a loop turn; tt_db_commit writes it in one
 * transaction (group commit) before any reply of that turn leaves. */
#ifndef TT_DB_H
#define TT_DB_H

#include <stdbool.h>

#include "config.h"
#include "history.h"
#include "schema.h"
#include "session.h"

struct tt_state;

/* Open (or create) the database of cfg->db and restore its content into
 * the store. Returns 0, or -TT_INTERNAL with err saying what is wrong (the
 * file is never overwritten). */
int tt_db_open(const tt_config *cfg, tt_error *err);
/* The server stops cleanly: store the clock exactly (not its crash lease). */
void tt_db_save_clock(void);
/* Close without writing anything. */
void tt_db_close(void);

/* Changes of the current turn, written at the next commit. */
void tt_db_class_defined(const tt_class *cls);
void tt_db_class_deleted(const tt_class *cls);
void tt_db_state_deleted(const struct tt_state *st, const char *reason);
void tt_db_event(const struct tt_state *st, const tt_event *e);
void tt_db_session_started(const tt_session *s);
void tt_db_session_gone(const tt_session *s);
void tt_db_session_ended(const tt_session *s);
void tt_db_instance_put(const tt_instance *in);
void tt_db_instance_del(const tt_instance *in);
/* A scheduled set pending (put) or applied (!put). */
void tt_db_schedule(uint64_t id, uint64_t state, double at, uint64_t origin, const void *changes,
		    size_t len, bool put);
/* cls NULL: observing every class. */
void tt_db_observe(const tt_session *s, const tt_class *cls, bool on);
/* Write every pending change and the dirty states (a list through
 * dirty_next) in one transaction. 0 or -TT_INTERNAL. */
int tt_db_commit(struct tt_state *dirty);

#endif
