/* SPDX-License-Identifier: MIT */
/* clock.c: the sync clock as other threads see it. The estimator
 * (shared/sync.c) belongs to the service thread; after each change that
 * thread copies it into a slot that nobody reads and makes that slot
 * current. A reader, an audio callback say, pins the current slot with a
 * counter, checks it is still current, and evaluates the copy: no lock, no
 * allocation, and it retries only when a publish happened in between (a
 * few times a minute). The writer never touches a pinned or current slot. */
#include "client_int.h"

#include <string.h>
#include <time.h>

double tt_clock_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tt_clock_init(tt_clock *k, const tt_sync *s)
{
	for (unsigned i = 0; i < TT_CLOCK_SLOTS; i++) {
		k->slot[i] = *s;
		atomic_init(&k->readers[i], 0);
	}
	atomic_init(&k->cur, 0);
	atomic_init(&k->ready, false);
	k->dirty = false;
}

bool tt_clock_publish(tt_clock *k, const tt_sync *s, bool ready)
{
	unsigned cur = atomic_load(&k->cur);
	for (unsigned i = 0; i < TT_CLOCK_SLOTS; i++) {
		if (i == cur || atomic_load(&k->readers[i]) != 0)
			continue;
		k->slot[i] = *s;
		atomic_store(&k->cur, i);
		atomic_store(&k->ready, ready);
		return true;
	}
	return false;
}

/* Pin the current slot; the caller unpins it with atomic_fetch_sub. */
static unsigned pin(const tt_clock *k)
{
	tt_clock *m = (tt_clock *)k; /* the counters are the readers' to change */
	for (;;) {
		unsigned i = atomic_load(&m->cur);
		atomic_fetch_add(&m->readers[i], 1);
		if (atomic_load(&m->cur) == i)
			return i;
		atomic_fetch_sub(&m->readers[i], 1);
	}
}

double tt_clock_sync_time(const tt_clock *k, double local)
{
	unsigned i = pin(k);
	double t = tt_sync_time(&k->slot[i], local);
	atomic_fetch_sub(&((tt_clock *)k)->readers[i], 1);
	return t;
}

double tt_clock_local_time(const tt_clock *k, double sync_time)
{
	unsigned i = pin(k);
	double t = tt_sync_local_time(&k->slot[i], sync_time);
	atomic_fetch_sub(&((tt_clock *)k)->readers[i], 1);
	return t;
}

bool tt_clock_ready(const tt_clock *k)
{
	return atomic_load(&((tt_clock *)k)->ready);
}
