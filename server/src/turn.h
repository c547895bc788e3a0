/* SPDX-License-Identifier: MIT */
/* turn.h: the end of a loop turn, the server's durability rule in one
 * place. Everything a turn produced (replies, updates, notices) waits in
 * the clients' queues stamped with the turn's batch; the turn ends by
 * applying the scheduled sets that fell due, writing the whole turn to the
 * database in one transaction, and only then releasing the batch to the
 * writers. So nothing leaves the server before the change it reports is
 * durable, and one commit serves every update of the turn (group commit).
 *
 * When a commit fails (disk full, an I/O error, the file deleted), the
 * server keeps running on a failing database (db.h): the batch of that
 * turn stays held, its rows stay in the op log, and a commit is retried
 * once a second. Meanwhile requests that change data are refused
 * (handler.c), scheduled sets and session expiry wait, and the turns,
 * which then hold no acknowledgement of a change, pass their batches at
 * once (behind the held one for a client that has a message in it). The
 * first commit that works releases everything.
 *
 * Called by ws.c after each turn and once a second, and by the tests the
 * same way. */
#ifndef TT_TURN_H
#define TT_TURN_H

#include <stdbool.h>

/* Start afresh (a database was just opened: its clock lease is unknown,
 * so the first commit writes one). */
void tt_turn_init(void);
/* Hooks past their deadline fail, due schedules apply, commit, release;
 * on a failing database, pass. */
void tt_turn_end(void);
/* Once a second: watch the database file, retry a failing commit (which
 * releases everything held when it works), and end the sessions whose
 * resume window is over (not while failing: that deletes states). */
void tt_turn_tick(void);
/* After each wait of the loop: an engine that acknowledges later (engine.h)
 * may have made batches durable: release them. True when the engine did
 * anything (the loop then ends a turn, which wakes the writers). */
bool tt_turn_poll(void);
/* Sync time of the earliest scheduled set to wake up for, or -1 when none
 * or while the database fails (they wait for it). */
double tt_turn_next_due(void);
/* Commit what the model holds without running schedules or releasing
 * anything (start-up and operator commands). 0 or -TT_STORAGE. */
int tt_turn_commit(void);
/* The server stops cleanly: commit, and store the clock exactly rather
 * than its crash lease. 0 or -TT_STORAGE. */
int tt_turn_stop(void);

#endif
