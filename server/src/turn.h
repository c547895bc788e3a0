/* SPDX-License-Identifier: MIT */
/* turn.h: the end of a loop turn, the server's durability rule in one
 * place. Everything a turn produced (replies, updates, notices) waits in
 * the clients' queues stamped with the turn's batch; the turn ends by
 * applying the scheduled sets that fell due, writing the whole turn to the
 * database in one transaction, and only then releasing the batch to the
 * writers. So nothing leaves the server before the change it reports is
 * durable, and one commit serves every update of the turn (group commit).
 * Called by ws.c after each turn, and by the tests the same way. */
#ifndef TT_TURN_H
#define TT_TURN_H

/* Start afresh (a database was just opened: its clock lease is unknown,
 * so the first commit writes one). */
void tt_turn_init(void);
/* Hooks past their deadline fail, due schedules apply, commit, release.
 * 0, or -TT_INTERNAL when the commit
 * failed: nothing of the turn was released, and the server must stop
 * rather than acknowledge what it could not store. */
int tt_turn_end(void);
/* Commit what the model holds without running schedules or releasing
 * anything (start-up and operator commands). 0 or -TT_INTERNAL. */
int tt_turn_commit(void);
/* The server stops cleanly: commit, and store the clock exactly rather
 * than its crash lease. 0 or -TT_INTERNAL. */
int tt_turn_stop(void);

#endif
