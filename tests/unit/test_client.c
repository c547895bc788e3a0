/* SPDX-License-Identifier: MIT */
/* test_client.c: unit tests of the client queues (server/src/client.c):
 * one message shared by several queues, the byte cap closing a slow
 * consumer, nothing written before its batch is released, the wake-up
 * lists, and the message pool. No sockets: clients have no wsi. */
#include "client.h"
#include "log.h"
#include "tt_test.h"

static int setup(void **state)
{
	(void)state;
	tt_log_level = TT_LOG_ERROR;
	tt_client_init(4096);
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
	/* 4096 bytes of queue: four 1000-byte messages fit, the fifth closes
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

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_shared_message),
		T(test_queue_cap),
		T(test_wake_lists),
		T(test_pool),
	};
#undef T
	return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
