/* SPDX-License-Identifier: MIT */
/* restore.h: the database's rows back into the model at start. db.c reads
 * the tables and hands each row to this loader (it calls nothing of the
 * model itself); the loader decodes what is stored as msgpack and rebuilds
 * classes, states with their history, sessions, instances, tombstones,
 * schedules and observes. */
#ifndef TT_RESTORE_H
#define TT_RESTORE_H

#include "db.h"

/* Pass to tt_db_open. */
extern const tt_db_loader tt_restore_loader;
/* After tt_db_open and the roles: give restored states to their owners,
 * delete those whose owner's session is gone, give each session its role
 * back. */
void tt_restore_done(void);
/* Forget what a restore kept for tt_restore_done (a start that failed
 * before it); harmless after it. */
void tt_restore_abandon(void);

#endif
