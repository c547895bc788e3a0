/* SPDX-License-Identifier: MIT */
/* history.h: the last N events of a state {seq, time, changes, origin}, with
 * `changes` kept msgpack-encoded so an event is re-sent (as an UPDATE, an
 * event map, or a database row) without re-encoding. A ring whose slots are
 * reused: no allocation per event once the ring is full. */
#ifndef TT_HISTORY_H
#define TT_HISTORY_H

#include <stdint.h>

#include "buf.h"

typedef struct tt_event {
	uint64_t seq;
	double time;
	uint64_t origin;  /* session id of the writer, 0 = server */
	tt_buf changes;   /* owned: encoded changes map */
} tt_event;

typedef struct tt_history {
	tt_event *ring; /* owned */
	uint32_t cap, head, len; /* head: oldest */
	size_t bytes;   /* changes bytes of the kept events */
} tt_history;

void tt_history_init(tt_history *h);
void tt_history_free(tt_history *h);
/* Append an encoded event; the oldest leave while there are more than
 * max events or more than max_bytes of changes (the newest always stays). */
void tt_history_push(tt_history *h, uint32_t max, size_t max_bytes, uint64_t seq, double time,
		     uint64_t origin, const void *changes, size_t len);
/* The i-th kept event, oldest first. */
const tt_event *tt_history_at(const tt_history *h, uint32_t i);
/* Seq of the oldest kept event, or 0 when empty. */
uint64_t tt_history_first_seq(const tt_history *h);

#endif
