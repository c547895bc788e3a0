/* SPDX-License-Identifier: MIT */
/* turn.c: end of a loop turn: due schedules, one commit, then the batch;
 * holding and retrying when the database fails. */
#include "turn.h"

#include <stdbool.h>

#include "client.h"
#include "clock.h"
#include "common.h"
#include "db.h"
#include "hooks.h"
#include "ops.h"
#include "resume.h"
#include "store.h"

/* The sync clock is persisted this far ahead of now (refreshed at half of
 * it, twice a second when idle), so that after a crash it restarts past
 * every time it ever sent (PROTOCOL.md §10); a clean stop stores it
 * exactly. */
#define CLOCK_LEASE 1.0

static double g_lease; /* the clock value persisted as the restart floor */

static int commit(double clock_floor)
{
	tt_store_flush();
	if (clock_floor > 0) {
		tt_db_put_meta("clock", clock_floor);
		/* when the server was last seen alive: sessions connected at a
		 * crash are gone since then, so downtime counts toward their
		 * resume window */
		tt_db_put_meta("alive", tt_clock_wall());
	}
	if (tt_db_commit() < 0)
		return -TT_STORAGE;
	if (clock_floor > 0)
		g_lease = clock_floor;
	return 0;
}

void tt_turn_init(void)
{
	g_lease = 0;
}

int tt_turn_commit(void)
{
	double now = tt_clock_now();
	return commit(now + CLOCK_LEASE / 2 > g_lease ? now + CLOCK_LEASE : 0);
}

void tt_turn_end(void)
{
	tt_hooks_expire(tt_clock_mono());
	if (tt_db_failing()) {
		/* changes were refused this turn: what it produced acknowledges
		 * nothing that waits for the disk (the tick retries) */
		tt_client_pass_batch();
		return;
	}
	tt_ops_run_due(tt_clock_now());
	if (tt_turn_commit() < 0)
		tt_client_hold_batch();
	else
		tt_client_release_batch();
}

void tt_turn_tick(void)
{
	bool was_failing = tt_db_failing() != NULL;
	tt_db_check();
	if (tt_db_failing()) {
		/* the commit covers the batch being produced too: its rows are
		 * in the op log it writes */
		if (tt_turn_commit() == 0)
			tt_client_release_batch();
		else if (!was_failing)
			/* found failing between two turns (the file deleted): the
			 * batch being produced was made before anything was refused,
			 * and may acknowledge changes that are not written */
			tt_client_hold_batch();
	}
	if (!tt_db_failing())
		tt_resume_tick();
}

double tt_turn_next_due(void)
{
	return tt_db_failing() ? -1 : tt_ops_next_due();
}

int tt_turn_stop(void)
{
	return commit(tt_clock_now());
}
