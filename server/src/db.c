/* SPDX-License-Identifier: MIT */
/* db.c: placeholder until SQLite persistence lands (issue 5). */
#include "db.h"
#include "store.h"
int tt_db_open(const tt_config *cfg, tt_error *err) { (void)cfg; (void)err; return 0; }
void tt_db_close(void) {}
void tt_db_class_defined(const tt_class *cls) { (void)cls; }
void tt_db_class_deleted(const tt_class *cls) { (void)cls; }
void tt_db_state_deleted(const struct tt_state *st) { (void)st; }
void tt_db_event(const struct tt_state *st, const tt_event *e) { (void)st; (void)e; }
void tt_db_session_ended(const tt_session *s) { (void)s; }
int tt_db_commit(struct tt_state *dirty) { (void)dirty; return 0; }
