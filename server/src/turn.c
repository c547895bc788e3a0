/* SPDX-License-Identifier: MIT */
/* turn.c: end of a loop turn: due schedules, one commit, then the batch;
 * holding and retrying when the database fails. */
#include "turn.h"

#include <stdbool.h>

#include "client.h"
#include "clock.h"
#include "cluster.h"
#include "common.h"
#include "db.h"
#include "hooks.h"
#include "ops.h"
#include "protocol.h"
#include "resume.h"
#include "store.h"

/* The sync clock is persisted this far ahead of now (refreshed at half of
 * it, twice a second when idle), so that after a crash it restarts past
 * every time it ever sent (PROTOCOL.md §10); a clean stop stores it
 * exactly. */
#define CLOCK_LEASE 1.0

static double g_lease; /* the clock value persisted as the restart floor */

/* Write the turn: sync waits for it to be durable (0 or -TT_STORAGE); else
 * it may also answer TT_DB_PENDING (an engine that acknowledges later). */
static int commit(double clock_floor, bool sync)
{
	tt_cluster_flush(); /* answers of other nodes' requests, with their tags */
	tt_store_flush();
	if (clock_floor > 0) {
		tt_db_put_meta("clock", clock_floor);
		/* when the server was last seen alive: sessions connected at a
		 * crash are gone since then, so downtime counts toward their
		 * resume window */
		tt_db_put_meta("alive", tt_clock_wall());
	}
	int rc = sync ? tt_db_commit() : tt_db_commit_async(tt_client_batch());
	if (rc < 0)
		return -TT_STORAGE;
	if (clock_floor > 0)
		g_lease = clock_floor;
	return rc;
}

static double lease_floor(void)
{
	double now = tt_clock_now();
	return now + CLOCK_LEASE / 2 > g_lease ? now + CLOCK_LEASE : 0;
}

void tt_turn_init(void)
{
	g_lease = 0;
}

int tt_turn_commit(void)
{
	return commit(lease_floor(), true);
}

void tt_turn_end(void)
{
	tt_hooks_expire(tt_clock_mono());
	if (tt_db_failing()) {
		/* changes were refused this turn: what it produced acknowledges
		 * nothing that waits for the disk (the tick retries); behind
		 * batches an engine has not acknowledged yet, it waits for them
		 * (the release gate keeps one held range, client.c) */
		if (tt_db_pending())
			tt_client_seal_batch();
		else
			tt_client_pass_batch();
		return;
	}
	tt_ops_run_due(tt_clock_now());
	int rc = commit(lease_floor(), false);
	if (rc < 0)
		tt_client_hold_batch();
	else if (rc == TT_DB_PENDING)
		tt_client_seal_batch(); /* released by tt_turn_poll */
	else
		tt_client_release_batch();
}

bool tt_turn_poll(void)
{
	uint64_t durable, fenced;
	bool any = tt_db_poll(&durable, &fenced);
	/* the replies of a fenced batch must not go: their clients are closed
	 * (they resume, and learn what is stored) before the release */
	if (fenced)
		tt_client_drop_unreleased(fenced, TT_CLOSE_RESYNC);
	if (durable)
		tt_client_release_upto(durable);
	return any;
}

void tt_turn_tick(void)
{
	bool was_failing = tt_db_failing() != NULL;
	tt_db_check();
	/* an engine retries its writes itself (its tick, in tt_db_check) */
	if (tt_db_failing() && !tt_db_async()) {
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
	return commit(tt_clock_now(), true);
}
