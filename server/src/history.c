/* SPDX-License-Identifier: MIT */
/* history.c: ring of encoded events. */
#include "history.h"

#include "common.h"

void tt_history_init(tt_history *h)
{
	h->ring = NULL;
	h->cap = h->head = h->len = 0;
	h->bytes = 0;
}

void tt_history_free(tt_history *h)
{
	for (uint32_t i = 0; i < h->cap; i++)
		tt_buf_free(&h->ring[i].changes);
	TT_FREE(h->ring);
	h->cap = h->head = h->len = 0;
	h->bytes = 0;
}

/* Forget the oldest event. Its buffer stays for reuse when small (no
 * malloc per event in steady state); a large one is freed, or slots that
 * held large events would keep their memory past the byte bound. */
static void drop_oldest(tt_history *h)
{
	tt_buf *b = &h->ring[h->head].changes;
	h->bytes -= b->len;
	if (b->cap > 4096)
		tt_buf_free(b);
	h->head = (h->head + 1) % h->cap;
	h->len--;
}

void tt_history_push(tt_history *h, uint32_t max, size_t max_bytes, uint64_t seq, double time,
		     uint64_t origin, const void *changes, size_t len)
{
	if (h->len == h->cap && h->cap < max) {
		/* grow: unroll the ring into a larger one */
		uint32_t cap = h->cap ? h->cap * 2 : 8;
		if (cap > max)
			cap = max;
		tt_event *ring = tt_calloc(cap, sizeof(*ring));
		for (uint32_t i = 0; i < h->len; i++)
			ring[i] = h->ring[(h->head + i) % h->cap];
		free(h->ring);
		h->ring = ring;
		h->head = 0;
		h->cap = cap;
	}
	tt_event *e;
	if (h->len < h->cap) {
		e = &h->ring[(h->head + h->len) % h->cap];
		h->len++;
	} else {
		drop_oldest(h); /* and reuse its slot */
		e = &h->ring[(h->head + h->len) % h->cap];
		h->len++;
	}
	e->seq = seq;
	e->time = time;
	e->origin = origin;
	tt_buf_clear(&e->changes);
	tt_buf_append(&e->changes, changes, len);
	h->bytes += len;
	while (h->len > 1 && h->bytes > max_bytes)
		drop_oldest(h);
}

const tt_event *tt_history_at(const tt_history *h, uint32_t i)
{
	return i < h->len ? &h->ring[(h->head + i) % h->cap] : NULL;
}

uint64_t tt_history_first_seq(const tt_history *h)
{
	return h->len ? h->ring[h->head].seq : 0;
}
