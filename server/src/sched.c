/* SPDX-License-Identifier: MIT */
/* sched.c: pending scheduled sets: a binary min-heap by (at, id) and a
 * sorted list per state. A sorted global list made every scheduled SET
 * cost O(pending) (3.7 ms each with 200,000 pending); the heap keeps it
 * logarithmic. */
#include "sched.h"

#include "common.h"

static struct {
	tt_sched **heap; /* owned array of borrowed entries */
	uint32_t len, cap;
} H;

static int before(const tt_sched *a, const tt_sched *b)
{
	return a->at < b->at || (a->at == b->at && a->id < b->id);
}

static void put(uint32_t i, tt_sched *sc)
{
	H.heap[i] = sc;
	sc->heap_at = i;
}

static void sift_up(uint32_t i)
{
	tt_sched *sc = H.heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!before(sc, H.heap[parent]))
			break;
		put(i, H.heap[parent]);
		i = parent;
	}
	put(i, sc);
}

static void sift_down(uint32_t i)
{
	tt_sched *sc = H.heap[i];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		const tt_sched *best = sc;
		if (l < H.len && before(H.heap[l], best))
			m = l, best = H.heap[l];
		if (r < H.len && before(H.heap[r], best))
			m = r;
		if (m == i)
			break;
		put(i, H.heap[m]);
		i = m;
	}
	put(i, sc);
}

/* A parked schedule is in its state's list only. */
#define NOT_IN_HEAP UINT32_MAX

static void heap_add(tt_sched *sc)
{
	if (H.len == H.cap) {
		H.cap = H.cap ? H.cap * 2 : 64;
		H.heap = tt_realloc(H.heap, sizeof(*H.heap) * H.cap);
	}
	put(H.len, sc);
	sift_up(H.len++);
}

static void heap_del(tt_sched *sc)
{
	uint32_t i = sc->heap_at;
	if (i == NOT_IN_HEAP)
		return;
	tt_sched *last = H.heap[--H.len];
	if (i < H.len) {
		put(i, last);
		if (i > 0 && before(last, H.heap[(i - 1) / 2]))
			sift_up(i);
		else
			sift_down(i);
	}
	sc->heap_at = NOT_IN_HEAP;
}

tt_sched *tt_sched_add(tt_sched_list *list, struct tt_state *st, uint64_t id, double at,
		       uint64_t origin, uint8_t pool, const void *changes, size_t len)
{
	tt_sched *sc = tt_calloc(1, sizeof(*sc));
	sc->pool = pool & 1;
	sc->id = id;
	sc->st = st;
	sc->at = at;
	sc->origin = origin;
	sc->list = list;
	tt_buf_init(&sc->changes, 0);
	tt_buf_append(&sc->changes, changes, len);

	/* the list, from its end: new schedules are usually the latest */
	tt_sched *after = list->last;
	while (after && before(sc, after))
		after = after->prev;
	sc->prev = after;
	sc->next = after ? after->next : list->first;
	if (sc->next)
		sc->next->prev = sc;
	else
		list->last = sc;
	if (after)
		after->next = sc;
	else
		list->first = sc;
	list->n++;
	list->n_pool[sc->pool]++;
	list->bytes_pool[sc->pool] += len;

	heap_add(sc);
	return sc;
}

void tt_sched_park(tt_sched *sc, bool parked)
{
	if (parked)
		heap_del(sc);
	else if (sc->heap_at == NOT_IN_HEAP)
		heap_add(sc);
}

void tt_sched_remove(tt_sched *sc)
{
	tt_sched_list *list = sc->list;
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		list->first = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	else
		list->last = sc->prev;
	list->n--;
	list->n_pool[sc->pool]--;
	list->bytes_pool[sc->pool] -= sc->changes.len;
	heap_del(sc);
	tt_buf_free(&sc->changes);
	free(sc);
}

void tt_sched_drop(tt_sched_list *list)
{
	while (list->first)
		tt_sched_remove(list->first);
}

tt_sched *tt_sched_first(void)
{
	return H.len ? H.heap[0] : NULL;
}

uint32_t tt_sched_count(void)
{
	return H.len;
}

void tt_sched_free_all(void)
{
	tt_assert(H.len == 0);
	TT_FREE(H.heap);
	H.cap = 0;
}
