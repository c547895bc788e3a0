/* SPDX-License-Identifier: MIT */
/* test_client.c: unit tests of the client queues (server/src/client.c):
 * one message shared by several queues, the byte cap closing a slow
 * consumer, nothing written before its batch is released (nor behind a
 * batch held by a failed commit), the wake-up lists, and the message
 * pool. No sockets: clients have no wsi. */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "tt_test.h"

static int setup(void **state)
{
	(void)state;
	tt_log_level = TT_LOG_ERROR;
	tt_client_init(4800); /* four queued 1000-byte messages, with their overhead */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	while (tt_client_first())
		tt_client_free(tt_client_first());
	tt_client_take_urgent();
	while (tt_client_next_pending())
		;
	tt_msg_pool_free();
	return 0;
}

static void test_shared_message(void **state)
{
	(void)state;
	tt_client *a = tt_client_new(NULL), *b = tt_client_new(NULL);
	tt_msg *m = tt_msg_new("hello", 5);
	tt_client_send(a, m);
	tt_client_send(b, m);
	assert_int_equal(m->refs, 3);
	tt_msg_unref(m);
	/* not before the batch is released */
	assert_null(tt_client_ready(a, 0));
	tt_client_release_batch();
	assert_ptr_equal(tt_client_ready(a, 0), m);
	assert_ptr_equal(tt_client_ready(b, 0), m);
	assert_memory_equal(tt_msg_payload(m), "hello", 5);
	tt_client_consume(a, 1);
	assert_int_equal(m->refs, 1);
	assert_null(tt_client_ready(a, 0));
	assert_int_equal(a->q_bytes, 0);
	/* a message of the next batch waits behind the released ones */
	tt_msg *n = tt_msg_new("x", 1);
	tt_client_send(b, n);
	tt_msg_unref(n);
	assert_ptr_equal(tt_client_ready(b, 0), m);
	assert_null(tt_client_ready(b, 1));
	tt_client_release_batch();
	assert_ptr_equal(tt_client_ready(b, 1), n);
}

static void test_queue_cap(void **state)
{
	(void)state;
	tt_client *c = tt_client_new(NULL);
	char payload[1000];
	memset(payload, 'p', sizeof(payload));
	tt_msg *m = tt_msg_new(payload, sizeof(payload));
	/* 4800 bytes of queue: four 1000-byte messages fit, the fifth closes
	 * the client as a slow consumer and drops its queue */
	for (int i = 0; i < 4; i++)
		tt_client_send(c, m);
	assert_false(c->closing);
	assert_int_equal(c->q_len, 4);
	tt_client_send(c, m);
	assert_true(c->closing);
	assert_int_equal(c->close_code, 4001);
	assert_int_equal(c->q_len, 0);
	assert_int_equal(c->q_bytes, 0);
	assert_int_equal(m->refs, 1);
	/* a closing client takes nothing more */
	tt_client_send(c, m);
	assert_int_equal(c->q_len, 0);
	tt_msg_unref(m);
	/* it is urgent: woken at the end of the turn to be closed */
	tt_client *u = tt_client_take_urgent();
	assert_ptr_equal(u, c);
	assert_null(u->urgent_next);
}

static void test_wake_lists(void **state)
{
	(void)state;
	tt_client *a = tt_client_new(NULL), *b = tt_client_new(NULL), *c = tt_client_new(NULL);
	tt_msg *m = tt_msg_new("u", 1);
	tt_client_send(a, m); /* a fan-out: pending, not urgent */
	tt_client_send(b, m);
	tt_msg_unref(m);
	tt_buf reply;
	tt_buf_init(&reply, 0);
	tt_buf_append(&reply, "r", 1);
	tt_client_reply(c, &reply); /* a reply: urgent and pending */
	tt_buf_free(&reply);
	assert_ptr_equal(tt_client_take_urgent(), c);
	assert_null(tt_client_take_urgent());
	/* FIFO order; a freed client leaves the list */
	tt_client_free(b);
	assert_true(tt_client_any_pending());
	assert_ptr_equal(tt_client_next_pending(), a);
	assert_ptr_equal(tt_client_next_pending(), c);
	assert_null(tt_client_next_pending());
	assert_false(tt_client_any_pending());
	/* queues wrap around their ring */
	tt_client_release_batch();
	tt_client_consume(a, 1); /* the fan-out above */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 20; i++) {
			tt_msg *x = tt_msg_new(&i, sizeof(i));
			tt_client_send(a, x);
			tt_msg_unref(x);
		}
		tt_client_release_batch();
		for (int i = 0; i < 20; i++) {
			tt_msg *x = tt_client_ready(a, 0);
			int v;
			memcpy(&v, tt_msg_payload(x), sizeof(v));
			assert_int_equal(v, i);
			tt_client_consume(a, 1);
		}
	}
	assert_int_equal(a->q_len, 0);
}

static tt_msg *send_new(tt_client *c, const char *text)
{
	tt_msg *m = tt_msg_new(text, strlen(text));
	tt_client_send(c, m);
	tt_msg_unref(m);
	return m;
}

/* A commit fails: its batch is held; the turns after it (which acknowledge
 * nothing durable) pass, except behind a held message in the same queue;
 * the release after a commit that works lets everything go, in order, and
 * wakes the clients whose writers had stopped on the held message. */
static void test_held_batch(void **state)
{
	(void)state;
	tt_client *a = tt_client_new(NULL), *b = tt_client_new(NULL), *c = tt_client_new(NULL);
	tt_msg *a0 = send_new(a, "a0");
	tt_client_release_batch();
	tt_msg *a1 = send_new(a, "a1 ack"), *b1 = send_new(b, "b1 update");
	tt_client_hold_batch();
	tt_msg *a2 = send_new(a, "a2 pong"), *c2 = send_new(c, "c2 attach");
	tt_client_pass_batch();
	tt_msg *b3 = send_new(b, "b3 pong"), *c3 = send_new(c, "c3 error");
	tt_client_pass_batch();
	/* what came before the held batch goes; a and b wait behind it */
	assert_ptr_equal(tt_client_ready(a, 0), a0);
	assert_null(tt_client_ready(a, 1));
	assert_null(tt_client_ready(b, 0));
	/* c has nothing held: its later batches go at once */
	assert_ptr_equal(tt_client_ready(c, 0), c2);
	assert_ptr_equal(tt_client_ready(c, 1), c3);
	tt_client_consume(a, 1);
	tt_client_consume(c, 2);
	/* drain the wake-up lists, as the network layer does each turn */
	tt_client_take_urgent();
	while (tt_client_next_pending())
		;
	tt_msg *c4 = send_new(c, "c4 in the batch being made");
	/* the retry commits: everything up to the batch being made goes */
	tt_client_release_batch();
	assert_ptr_equal(tt_client_ready(a, 0), a1);
	assert_ptr_equal(tt_client_ready(a, 1), a2);
	assert_ptr_equal(tt_client_ready(b, 0), b1);
	assert_ptr_equal(tt_client_ready(b, 1), b3);
	assert_ptr_equal(tt_client_ready(c, 0), c4);
	int woken = 0;
	for (tt_client *p; (p = tt_client_next_pending());)
		woken += p == a || p == b;
	assert_int_equal(woken, 2);
	/* back to normal: a batch waits for its own release */
	tt_msg *a5 = send_new(a, "a5");
	assert_null(tt_client_ready(a, 2));
	tt_client_pass_batch(); /* nothing held: a pass releases */
	assert_ptr_equal(tt_client_ready(a, 2), a5);
}

/* A second failed commit before the first is released: nothing passes any
 * more (the gate keeps one held range), until a release. */
static void test_second_hold_stops_passing(void **state)
{
	(void)state;
	tt_client *a = tt_client_new(NULL), *b = tt_client_new(NULL);
	send_new(a, "held 1");
	tt_client_hold_batch();
	tt_msg *b1 = send_new(b, "passed");
	tt_client_pass_batch();
	assert_ptr_equal(tt_client_ready(b, 0), b1);
	tt_msg *b2 = send_new(b, "held 2");
	tt_client_hold_batch();
	tt_msg *b3 = send_new(b, "after");
	tt_client_pass_batch();
	assert_ptr_equal(tt_client_ready(b, 0), b1);
	assert_null(tt_client_ready(b, 1));
	tt_client_release_batch();
	assert_ptr_equal(tt_client_ready(b, 1), b2);
	assert_ptr_equal(tt_client_ready(b, 2), b3);
}

static void test_pool(void **state)
{
	(void)state;
	/* a freed small message is reused; a large one is not pooled */
	tt_msg *m = tt_msg_new("abc", 3);
	tt_msg_unref(m);
	tt_msg *again = tt_msg_new("defg", 4);
	assert_ptr_equal(again, m);
	assert_int_equal(again->len, 4);
	tt_msg_unref(again);
	static char big[40000];
	tt_msg *b = tt_msg_new(big, sizeof(big));
	assert_int_equal(b->len, sizeof(big));
	tt_msg_unref(b);
}

/* An UPDATE of state st, conflating over params keys (0: not conflating). */
static tt_msg *update(uint64_t st, uint64_t keys, const char *text)
{
	tt_msg *m = tt_msg_new(text, strlen(text));
	uint64_t k[TT_MSG_KEY_WORDS] = {keys};
	tt_msg_update_of(m, st, keys ? k : NULL);
	return m;
}

static void send_drop(tt_client *c, tt_msg *m)
{
	tt_client_send(c, m);
	tt_msg_unref(m);
}

static const char *queued(const tt_client *c, uint32_t i)
{
	static char text[64];
	tt_msg *m = tt_client_at(c, i);
	if (!m)
		return "";
	snprintf(text, sizeof(text), "%.*s", (int)m->len, (const char *)tt_msg_payload(m));
	return text;
}

static void test_conflate(void **state)
{
	(void)state;
	tt_client_init(1 << 20);
	tt_client *c = tt_client_new(NULL);
	send_drop(c, update(1, 0x1, "a1"));
	send_drop(c, update(2, 0x1, "b1"));
	size_t bytes = c->q_bytes;
	/* replaces a1, goes to the end: b1 stays ahead of it */
	send_drop(c, update(1, 0x1, "a2"));
	assert_int_equal(c->q_len, 2);
	assert_string_equal(queued(c, 0), "b1");
	assert_string_equal(queued(c, 1), "a2");
	assert_int_equal(c->q_bytes, bytes);
	/* an older one changing a param the newer does not (0x2) stays */
	send_drop(c, update(1, 0x3, "a3"));
	assert_int_equal(c->q_len, 2); /* a2 (0x1) dropped: 0x3 covers it */
	send_drop(c, update(1, 0x1, "a4"));
	assert_int_equal(c->q_len, 3);
	assert_string_equal(queued(c, 1), "a3");
	/* a non-conflating update of the state stops the look-back */
	send_drop(c, update(1, 0, "a5"));
	send_drop(c, update(1, 0x1, "a6"));
	assert_int_equal(c->q_len, 5);
	assert_string_equal(queued(c, 2), "a4");
	/* other messages and replies are never dropped */
	send_drop(c, tt_msg_new("push", 4));
	tt_buf r;
	tt_buf_init(&r, 0);
	tt_buf_append(&r, "reply", 5);
	tt_client_reply(c, &r);
	tt_buf_free(&r);
	send_drop(c, update(1, 0x1, "a7"));
	assert_int_equal(c->q_len, 7);
	assert_string_equal(queued(c, 4), "push");
	assert_string_equal(queued(c, 5), "reply");
	assert_string_equal(queued(c, 6), "a7");
	/* only the last 32 queued messages are looked at */
	tt_client *d = tt_client_new(NULL);
	send_drop(d, update(1, 0x1, "x1"));
	for (int i = 0; i < 32; i++)
		send_drop(d, update(2, 0, "y"));
	send_drop(d, update(1, 0x1, "x2"));
	assert_int_equal(d->q_len, 34);
	assert_string_equal(queued(d, 0), "x1");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_shared_message),
		T(test_queue_cap),
		T(test_wake_lists),
		T(test_held_batch),
		T(test_second_hold_stops_passing),
		T(test_pool),
		T(test_conflate),
	};
#undef T
	return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
