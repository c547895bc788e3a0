/* SPDX-License-Identifier: MIT */
/* sched.h: the pending scheduled sets (PROTOCOL.md §6a) as a container: a
 * min-heap over every pending set by (at, id), so the next one due is found
 * in O(1) and added or removed in O(log n), and a list per state in the
 * same order, for the ATTACH result and resume. What a schedule does when it
 * falls due is the business of ops.c; this file only keeps them.
 * Single-threaded. */
#ifndef TT_SCHED_H
#define TT_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

struct tt_state;
typedef struct tt_sched tt_sched;

/* A state's pending schedules, earliest first. Embedded in the state. */
typedef struct tt_sched_list {
	tt_sched *first, *last;
	uint32_t n;
	/* per pool (tt_sched.pool): how many, and their encoded bytes */
	uint32_t n_pool[2];
	size_t bytes_pool[2];
} tt_sched_list;

struct tt_sched {
	uint64_t id;
	struct tt_state *st;  /* borrowed: the state it applies to */
	double at;            /* sync time */
	uint64_t origin;      /* session that asked for it */
	uint8_t pool;         /* 0: asked by the default role (the audience), 1: by
			       * another: each pool has its own room per state, so
			       * phones cannot fill a state's schedule for the
			       * performers */
	tt_buf changes;       /* owned: encoded map of validated values */
	tt_sched_list *list;  /* borrowed: st's list */
	tt_sched *next, *prev;/* in the list */
	uint32_t heap_at;     /* position in the heap */
};

/* Add a schedule (changes are copied) to the heap and to list, which must
 * belong to st. Never fails (aborts on out-of-memory). */
tt_sched *tt_sched_add(tt_sched_list *list, struct tt_state *st, uint64_t id, double at,
		       uint64_t origin, uint8_t pool, const void *changes, size_t len);
/* Several nodes on one engine: only the node that writes a state fires its
 * schedules. A parked schedule stays in its state's list (ATTACH, resume)
 * but is out of the heap (tt_sched_first never returns it); unparked, it is
 * due again. */
void tt_sched_park(tt_sched *sc, bool parked);
/* Remove and free one schedule. */
void tt_sched_remove(tt_sched *sc);
/* Remove and free every schedule of a list. */
void tt_sched_drop(tt_sched_list *list);
/* The earliest pending schedule, or NULL. */
tt_sched *tt_sched_first(void);
/* How many are pending in all. */
uint32_t tt_sched_count(void);
/* Free the heap itself (at exit; every list must be dropped first). */
void tt_sched_free_all(void);

#endif
