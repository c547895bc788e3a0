/* SPDX-License-Identifier: MIT */
/* client.c: connections, their bounded queues, and the message pool. */
#include "client.h"

#include <string.h>

#include "common.h"
#include "clock.h"

static uint64_t g_batch = 1;      /* the batch being produced */
static uint64_t g_released = 0;   /* every batch <= this may be written */
/* A failed commit holds its batch (g_held, 0: none); the batches that end
 * while the storage fails acknowledge nothing durable and pass, up to
 * g_passed, but only behind the held one: a client's queue is FIFO, so one
 * with a held message waits, and the others receive. */
static uint64_t g_held, g_passed;
static bool g_frozen; /* a second batch held: nothing passes any more */
static size_t g_max_queue = 4 << 20;
static tt_client *g_clients;

static void mark_pending(tt_client *c, bool urgent);

void tt_client_init(size_t max_queue)
{
	g_max_queue = max_queue;
}

void tt_client_release_batch(void)
{
	g_released = g_batch++;
	if (g_held) {
		/* their writers found the held message and stopped: wake them */
		g_held = g_passed = 0;
		g_frozen = false;
		for (tt_client *c = g_clients; c; c = c->next)
			if (c->q_len && !c->closing)
				mark_pending(c, false);
	}
}

void tt_client_hold_batch(void)
{
	/* one held range is all the gate keeps: after a second one, batches
	 * wait for the release like the held ones */
	if (g_held)
		g_frozen = true;
	else
		g_held = g_passed = g_batch;
	g_batch++;
}

static tt_client *g_waiting; /* list through wait_next */

uint64_t tt_client_batch(void)
{
	return g_batch;
}

void tt_client_seal_batch(void)
{
	g_batch++;
}

void tt_client_release_upto(uint64_t b)
{
	if (b <= g_released)
		return;
	g_released = b;
	tt_client *c = g_waiting;
	g_waiting = NULL;
	while (c) {
		tt_client *next = c->wait_next;
		c->waiting = false;
		c->wait_next = NULL;
		/* replies first, as they always go; pushes in the fan-out's
		 * slices, where a subscriber's updates share frames */
		if (c->q_len && !c->closing)
			mark_pending(c, c->q_bytes > c->q_push_bytes);
		c = next;
	}
}

void tt_client_wait_release(tt_client *c)
{
	if (c->waiting || c->closing)
		return;
	c->waiting = true;
	c->wait_next = g_waiting;
	g_waiting = c;
}

void tt_client_drop_unreleased(uint64_t from, int code)
{
	for (tt_client *c = g_clients; c; c = c->next)
		for (uint32_t i = 0; i < c->q_len; i++) {
			const tt_msg *m = tt_client_at(c, i);
			if (m->batch >= from && m->batch > g_released) {
				tt_client_close(c, code);
				break;
			}
		}
}

void tt_client_pass_batch(void)
{
	if (!g_held)
		g_released = g_batch;
	else if (!g_frozen)
		g_passed = g_batch;
	g_batch++;
}

/* What a queued message counts against --max-queue: its payload plus the
 * bookkeeping of one queue entry. The buffer behind it is shared by every
 * recipient and at most twice the payload (the pool's size classes), so
 * memory stays within about twice the cap even when only this client still
 * holds the message. Counting whole buffers instead cut most subscribers
 * of a 40k sets/s stream on a half-second stall (tests/bench/RESULTS.md). */
/* What a queued message holds in memory, not just its payload: a queue of
 * 40-byte ERRORs is mostly headers, pool rounding and malloc's own words,
 * and a bound on payload alone let one client hold several times
 * --max-queue. */
static size_t msg_cost(const tt_msg *m)
{
	return sizeof(tt_msg) + TT_WS_PRE + m->cap + 2 * sizeof(void *) /* malloc */ +
	       sizeof(uintptr_t) /* its word in the ring */;
}

static tt_client *g_urgent;    /* list through urgent_next */
static tt_client **g_fifo;     /* ring of pending clients; NULL: freed */
static uint32_t g_fifo_head, g_fifo_len, g_fifo_cap;

/* Pool of free messages by size class, so a broadcast costs no malloc. */
#define N_CLASSES 9
static const uint32_t class_size[N_CLASSES] = {64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
static tt_msg *pool[N_CLASSES][1024];
static uint32_t pool_len[N_CLASSES];

tt_msg *tt_msg_new(const void *bytes, size_t len)
{
	tt_assert(len <= UINT32_MAX);
	tt_msg *m = NULL;
	uint32_t cap = (uint32_t)len;
	for (int k = 0; k < N_CLASSES; k++) {
		if (len <= class_size[k]) {
			cap = class_size[k];
			if (pool_len[k])
				m = pool[k][--pool_len[k]];
			break;
		}
	}
	if (!m) {
		m = tt_malloc(sizeof(*m) + TT_WS_PRE + cap);
		m->cap = cap;
	}
	m->refs = 1;
	m->len = (uint32_t)len;
	m->batch = g_batch;
	m->state = 0;
	m->conflate = false;
	memcpy(m->data + TT_WS_PRE, bytes, len);
	return m;
}

void tt_msg_ref(tt_msg *m)
{
	m->refs++;
}

void tt_msg_update_of(tt_msg *m, uint64_t state, const uint64_t *keys)
{
	m->state = state;
	m->conflate = keys != NULL;
	if (keys)
		memcpy(m->keys, keys, sizeof(m->keys));
}

void tt_msg_unref(tt_msg *m)
{
	if (!m || --m->refs)
		return;
	for (int k = 0; k < N_CLASSES; k++) {
		if (m->cap == class_size[k] && pool_len[k] < 1024) {
			pool[k][pool_len[k]++] = m;
			return;
		}
	}
	free(m);
}

void tt_msg_pool_free(void)
{
	TT_FREE(g_fifo);
	g_fifo_head = g_fifo_len = g_fifo_cap = 0;
	for (int k = 0; k < N_CLASSES; k++)
		while (pool_len[k])
			free(pool[k][--pool_len[k]]);
}

tt_client *tt_client_new(void *wsi)
{
	tt_client *c = tt_calloc(1, sizeof(*c));
	c->wsi = wsi;
	c->last_rx = tt_clock_mono();
	c->stats.opened = c->last_rx;
	tt_buf_init(&c->rx, 0);
	tt_buf_init(&c->held, 0);
	c->next = g_clients;
	if (g_clients)
		g_clients->prev = c;
	g_clients = c;
	return c;
}

/* A queue entry is one word: the message pointer with its low bit set for
 * a reply (messages come from malloc, so the bit is free). A fan-out to
 * thousands of queues stores and later reads one word per recipient. */
#define REPLY_BIT ((uintptr_t)1)

static inline tt_msg *ent_msg(uintptr_t e)
{
	return (tt_msg *)(e & ~REPLY_BIT);
}

static void drop_queue(tt_client *c)
{
	while (c->q_len) {
		tt_msg_unref(ent_msg(c->q[c->q_head]));
		c->q_head = (c->q_head + 1) & (c->q_cap - 1);
		c->q_len--;
	}
	c->q_bytes = c->q_push_bytes = 0;
}

void tt_client_free(tt_client *c)
{
	if (!c)
		return;
	drop_queue(c);
	free(c->q);
	tt_buf_free(&c->rx);
	tt_buf_free(&c->held);
	if (c->prev)
		c->prev->next = c->next;
	else
		g_clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->urgent) {
		tt_client **pp = &g_urgent;
		while (*pp != c)
			pp = &(*pp)->urgent_next;
		*pp = c->urgent_next;
	}
	if (c->waiting) {
		tt_client **pp = &g_waiting;
		while (*pp != c)
			pp = &(*pp)->wait_next;
		*pp = c->wait_next;
	}
	if (c->pending)
		for (uint32_t i = 0; i < g_fifo_len; i++)
			if (g_fifo[(g_fifo_head + i) & (g_fifo_cap - 1)] == c)
				g_fifo[(g_fifo_head + i) & (g_fifo_cap - 1)] = NULL;
	free(c);
}

static void mark_pending(tt_client *c, bool urgent)
{
	if (urgent && !c->urgent) {
		c->urgent = true;
		c->urgent_next = g_urgent;
		g_urgent = c;
	}
	if (c->pending)
		return;
	if (g_fifo_len == g_fifo_cap) {
		uint32_t cap = g_fifo_cap ? g_fifo_cap * 2 : 256;
		tt_client **f = tt_malloc(sizeof(*f) * cap);
		for (uint32_t i = 0; i < g_fifo_len; i++)
			f[i] = g_fifo[(g_fifo_head + i) & (g_fifo_cap - 1)];
		free(g_fifo);
		g_fifo = f;
		g_fifo_head = 0;
		g_fifo_cap = cap;
	}
	g_fifo[(g_fifo_head + g_fifo_len++) & (g_fifo_cap - 1)] = c;
	c->pending = true;
}

void tt_client_finish(tt_client *c, int code)
{
	if (!c->closing && !c->finish_code) {
		c->finish_code = code;
		mark_pending(c, true);
	}
}

void tt_client_close(tt_client *c, int code)
{
	if (c->closing)
		return;
	if (c->capture) { /* no connection to close */
		c->closing = true;
		return;
	}
	c->closing = true;
	c->close_code = code;
	drop_queue(c);
	mark_pending(c, true);
}

static void grow_queue(tt_client *c)
{
	uint32_t cap = c->q_cap ? c->q_cap * 2 : 16;
	uintptr_t *q = tt_malloc(sizeof(*q) * cap);
	for (uint32_t i = 0; i < c->q_len; i++)
		q[i] = c->q[(c->q_head + i) & (c->q_cap - 1)];
	free(c->q);
	c->q = q;
	c->q_head = 0;
	c->q_cap = cap;
}

static inline void enqueue(tt_client *c, tt_msg *m, size_t cost, uintptr_t reply)
{
	if (c->q_len == c->q_cap)
		grow_queue(c);
	m->refs++;
	c->q[(c->q_head + c->q_len++) & (c->q_cap - 1)] = (uintptr_t)m | reply;
	c->q_bytes += cost;
}

/* Queued messages looked at, from the newest back, for the UPDATE a conflating one
 * supersedes: a queue that long already holds other states' updates,
 * and the scan must stay cheap on a fan-out to every phone. */
#define CONFLATE_SCAN 32

/* m conflates: drop c's unsent UPDATE of the same state that it
 * supersedes. Only the newest queued UPDATE of that state is looked at,
 * so no delivered one ever goes out of seq order; m then goes at the end
 * of the queue like any push (moving it to the dropped one's place could
 * show it before updates of other states that caused it). */
static void conflate(tt_client *c, const tt_msg *m)
{
	for (uint32_t i = c->q_len, looked = 0; i-- > 0 && looked < CONFLATE_SCAN; looked++) {
		uintptr_t e = c->q[(c->q_head + i) & (c->q_cap - 1)];
		tt_msg *old = ent_msg(e);
		if (old->state != m->state)
			continue;
		if (e & REPLY_BIT)
			return; /* replies (a resume's catch-up) are never dropped */
		if (!old->conflate)
			return;
		for (int w = 0; w < TT_MSG_KEY_WORDS; w++)
			if (old->keys[w] & ~m->keys[w])
				return; /* it changes a param m does not: keep it */
		/* close the gap: the entries after it move down one */
		for (uint32_t j = i; j + 1 < c->q_len; j++)
			c->q[(c->q_head + j) & (c->q_cap - 1)] = c->q[(c->q_head + j + 1) & (c->q_cap - 1)];
		c->q_len--;
		size_t cost = msg_cost(old);
		c->q_bytes -= cost;
		c->q_push_bytes -= cost;
		tt_msg_unref(old);
		return;
	}
}

void tt_client_send(tt_client *c, tt_msg *m)
{
	if (c->closing || c->capture)
		return;
	if (m->conflate && c->q_len)
		conflate(c, m);
	size_t cost = msg_cost(m);
	if (c->q_push_bytes + cost > g_max_queue) {
		tt_client_close(c, 4001);
		return;
	}
	enqueue(c, m, cost, 0);
	c->q_push_bytes += cost;
	if (!c->pending)
		mark_pending(c, false);
}

static void send_own(tt_client *c, const tt_buf *b, bool reply)
{
	if (c->capture) {
		if (reply)
			tt_buf_append(c->capture, tt_buf_data(b), b->len);
		return;
	}
	if (c->closing)
		return;
	tt_msg *m = tt_msg_new(tt_buf_data(b), b->len);
	if (reply)
		enqueue(c, m, msg_cost(m), REPLY_BIT);
	else
		tt_client_send(c, m);
	tt_msg_unref(m);
	if (!c->closing)
		mark_pending(c, true);
}

void tt_client_send_copy(tt_client *c, const tt_buf *b)
{
	send_own(c, b, false);
}

void tt_client_reply(tt_client *c, const tt_buf *b)
{
	send_own(c, b, true);
}

size_t tt_client_queued_bytes(const tt_client *c)
{
	return c->q_bytes;
}

bool tt_client_over(const tt_client *c)
{
	return c->q_bytes > g_max_queue;
}

tt_msg *tt_client_at(const tt_client *c, uint32_t i)
{
	return i < c->q_len ? ent_msg(c->q[(c->q_head + i) & (c->q_cap - 1)]) : NULL;
}

tt_msg *tt_client_ready(const tt_client *c, uint32_t i)
{
	if (i >= c->q_len)
		return NULL;
	tt_msg *m = ent_msg(c->q[(c->q_head + i) & (c->q_cap - 1)]);
	return m->batch <= g_released || (m->batch > g_held && m->batch <= g_passed) ? m : NULL;
}

void tt_client_consume(tt_client *c, uint32_t n)
{
	while (n-- && c->q_len) {
		uintptr_t e = c->q[c->q_head];
		tt_msg *m = ent_msg(e);
		size_t cost = msg_cost(m);
		c->q_bytes -= cost;
		if (!(e & REPLY_BIT))
			c->q_push_bytes -= cost;
		tt_msg_unref(m);
		c->q_head = (c->q_head + 1) & (c->q_cap - 1);
		c->q_len--;
	}
}

tt_client *tt_client_take_urgent(void)
{
	tt_client *list = g_urgent;
	for (tt_client *c = list; c; c = c->urgent_next)
		c->urgent = false;
	g_urgent = NULL;
	return list;
}

tt_client *tt_client_next_pending(void)
{
	while (g_fifo_len) {
		tt_client *c = g_fifo[g_fifo_head];
		g_fifo_head = (g_fifo_head + 1) & (g_fifo_cap - 1);
		g_fifo_len--;
		if (c) {
			c->pending = false;
			return c;
		}
	}
	return NULL;
}

bool tt_client_any_pending(void)
{
	return g_fifo_len > 0;
}

tt_client *tt_client_first(void)
{
	return g_clients;
}
