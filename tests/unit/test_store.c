/* SPDX-License-Identifier: MIT */
/* test_store.c: unit tests of the model (server/src/store.c) without
 * SQLite or sockets: persistence is db_stub.c, which records each row as a
 * line of text. Classes, states and their values, validation, apply (diff,
 * seq, history, events back to nil), subscriptions, ownership, schedules,
 * the rows each change puts, and restore. */
#include <math.h>

#include "config.h"
#include "db.h"
#include "db_stub.h"
#include "log.h"
#include "sched.h"
#include "session.h"
#include "store.h"
#include "tt_test.h"

typedef struct fx {
	tt_config cfg;
	tt_arena a;
	tt_changes cs;
	tt_class_entry *k;
	tt_session *s1, *s2;
} fx;

static const char *const K_DESC =
	"{\"i\": {\"type\": \"integer\", \"default\": 1, \"min\": 0, \"max\": 10},"
	" \"f\": {\"type\": \"float\", \"default\": 0.5, \"filterChange\": false},"
	" \"a\": {\"type\": \"any\", \"default\": {\"x\": 1, \"y\": [2]}},"
	" \"s\": {\"type\": \"string\", \"default\": \"hi\"},"
	" \"bang\": {\"type\": \"boolean\", \"event\": true},"
	" \"r\": {\"type\": \"integer\", \"required\": true},"
	" \"loc\": {\"type\": \"boolean\", \"default\": false, \"local\": true}}";

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	static char a0[] = "x", a1[] = "--history", a2[] = "4", a3[] = "--max-classes", a4[] = "2";
	char *argv[] = {a0, a1, a2, a3, a4, NULL};
	if (tt_config_parse(&f->cfg, 5, argv) != 0)
		return -1;
	tt_log_level = TT_LOG_ERROR;
	tt_arena_init(&f->a, 0);
	tt_changes_init(&f->cs);
	tt_store_init(&f->cfg);
	tt_value desc = tj(&f->a, K_DESC);
	tt_error err;
	bool created;
	if (tt_store_define("k", 1, &desc, true, &created, &err) < 0 || !created)
		return -1;
	f->k = tt_store_class("k", 1);
	char token[TT_TOKEN_HEX_LEN + 1];
	f->s1 = tt_session_new(0, token);
	f->s2 = tt_session_new(0, token);
	db_stub_clear();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	tt_store_destroy();
	tt_changes_free(&f->cs);
	tt_arena_destroy(&f->a);
	db_stub_free();
	free(f);
	return 0;
}

/* Validate JSON updates for a state of class k through in; the test fails
 * on an error. */
static void valid(fx *f, const tt_instance *in, const char *json)
{
	tt_value u = tj(&f->a, json);
	tt_error err = {0};
	if (tt_store_validate(f->k->cls, in ? in->state : NULL, in, &u, &f->cs, &err) < 0)
		fail_msg("%s refused: %s", json, err.msg);
}

static int invalid_v(fx *f, const tt_instance *in, tt_value u, const char *sub)
{
	tt_error err = {0};
	int rc = tt_store_validate(f->k->cls, in ? in->state : NULL, in, &u, &f->cs, &err);
	assert_true(rc < 0);
	assert_int_equal(-rc, err.code);
	assert_substr(err.msg, sub);
	return err.code;
}

static int invalid(fx *f, const tt_instance *in, const char *json, const char *sub)
{
	return invalid_v(f, in, tj(&f->a, json), sub);
}

static tt_state *new_state(fx *f, tt_session *owner, const char *init)
{
	valid(f, NULL, init);
	return tt_store_state_new(f->k, owner ? owner->id : 0, &f->cs, 100.0);
}

static int param(fx *f, const char *name)
{
	return tt_class_param_index(f->k->cls, name, strlen(name));
}

static const tt_value *slot(const tt_state *st, fx *f, const char *name)
{
	return &st->slots[param(f, name)].v;
}

static void test_define(void **state)
{
	fx *f = *state;
	tt_error err;
	bool created = true;
	/* the same description again (key order differs): a no-op */
	tt_value same = tj(&f->a, "{\"loc\": {\"type\": \"boolean\", \"default\": false, \"local\": true},"
			   " \"r\": {\"type\": \"integer\", \"required\": true},"
			   " \"bang\": {\"type\": \"boolean\", \"event\": true},"
			   " \"s\": {\"type\": \"string\", \"default\": \"hi\"},"
			   " \"a\": {\"type\": \"any\", \"default\": {\"y\": [2], \"x\": 1}},"
			   " \"f\": {\"type\": \"float\", \"default\": 0.5, \"filterChange\": false},"
			   " \"i\": {\"type\": \"integer\", \"default\": 1, \"min\": 0, \"max\": 10}}");
	assert_int_equal(tt_store_define("k", 1, &same, true, &created, &err), 0);
	assert_false(created);
	assert_int_equal(db_stub_count("put_class"), 0);
	/* a different description under the name */
	tt_value other = tj(&f->a, "{\"i\": {\"type\": \"integer\", \"default\": 2}}");
	assert_int_equal(tt_store_define("k", 1, &other, true, &created, &err), -TT_CLASS_EXISTS);
	/* a second class is persisted; a third is past --max-classes 2 */
	assert_int_equal(tt_store_define("k2", 2, &other, true, &created, &err), 0);
	assert_true(created);
	assert_int_equal(db_stub_count("put_class k2"), 1);
	assert_int_equal(tt_store_define("k3", 2, &other, true, &created, &err), -TT_LIMIT);
	assert_null(tt_store_class("k3", 2));
	/* definition order */
	assert_ptr_equal(tt_store_first_class(), f->k);
	assert_string_equal(tt_store_first_class()->next->cls->name, "k2");
	/* deleting a class without states removes it and its observes */
	tt_class_entry *k2 = tt_store_class("k2", 2);
	tt_store_observe(f->s1, k2, true);
	assert_true(tt_store_observes(f->s1, k2));
	tt_store_class_delete(k2);
	assert_null(tt_store_class("k2", 2));
	assert_null(f->s1->observes);
	assert_int_equal(db_stub_count("del_class k2"), 1);
}

static void test_state_new(void **state)
{
	fx *f = *state;
	tt_state *st = new_state(f, f->s1, "{\"r\": 7, \"i\": 99}");
	assert_int_equal(st->id, 1);
	assert_int_equal(st->owner, f->s1->id);
	assert_int_equal(st->seq, 0);
	assert_double_equal(st->time, 100.0);
	assert_int_equal(slot(st, f, "i")->v.i, 10); /* clipped */
	assert_int_equal(slot(st, f, "r")->v.i, 7);
	assert_true(tt_str_eq(slot(st, f, "s"), "hi"));
	assert_int_equal(slot(st, f, "bang")->type, TT_NIL);
	/* `any` is kept as canonical msgpack bytes */
	assert_int_equal(slot(st, f, "a")->type, TT_RAW);
	/* the owner's states, oldest first */
	tt_state *st2 = new_state(f, f->s1, "{\"r\": 1}");
	assert_ptr_equal(f->s1->owned, st);
	assert_ptr_equal(st->onext, st2);
	assert_ptr_equal(f->s1->owned_last, st2);
	assert_int_equal(f->s1->n_owned, 2);
	/* a server-owned state belongs to no session */
	tt_state *srv = tt_store_state_new(f->k, 0, NULL, 1.0);
	assert_int_equal(srv->owner, 0);
	assert_int_equal(slot(srv, f, "r")->type, TT_NIL);
	assert_ptr_equal(tt_store_state(3), srv);
	/* nothing is persisted until the flush, which puts every new state and
	 * the id counters */
	assert_int_equal(db_stub_count("put_state"), 0);
	tt_store_flush();
	assert_int_equal(db_stub_count("put_state"), 3);
	assert_int_equal(db_stub_count("meta next_state 4"), 1);
	db_stub_clear();
	tt_store_flush();
	assert_string_equal(db_stub_log(), ""); /* nothing changed since */
}

static void test_validate(void **state)
{
	fx *f = *state;
	tt_state *st = new_state(f, f->s1, "{\"r\": 1}");
	tt_mask only_i;
	memset(&only_i, 0, sizeof(only_i));
	tt_mask_set(&only_i, (uint32_t)param(f, "i"));
	tt_instance *all = tt_store_attach(st, f->s1, NULL);
	tt_instance *fi = tt_store_attach(st, f->s2, &only_i);
	assert_int_equal(invalid(f, all, "{\"nope\": 1}", "unknown param \"nope\""), TT_UNKNOWN_PARAM);
	/* {"i": 1, "i": 2}: JSON cannot say it, msgpack can */
	assert_int_equal(invalid_v(f, all, tm(&f->a, "82 a1 69 01 a1 69 02"), "given twice"),
			 TT_BAD_MESSAGE);
	assert_int_equal(invalid(f, all, "{\"loc\": true}", "local"), TT_LOCAL_PARAM);
	assert_int_equal(invalid(f, fi, "{\"s\": \"x\"}", "filter"), TT_FILTERED);
	assert_int_equal(invalid(f, NULL, "{\"r\": null}", "required"), TT_REQUIRED);
	assert_int_equal(invalid(f, all, "{\"i\": 1.5}", "\"i\""), TT_BAD_VALUE);
	assert_int_equal(invalid(f, all, "[1]", "map"), TT_BAD_MESSAGE);
	/* atomic: a bad key after good ones leaves cs empty */
	invalid(f, all, "{\"i\": 3, \"s\": 4}", "\"s\"");
	assert_int_equal(f->cs.n, 0);
	/* coerced: clipped, integral float taken */
	valid(f, fi, "{\"i\": 4.0}");
	assert_int_equal(f->cs.n, 1);
	assert_int_equal(f->cs.vals[0].type, TT_INT);
	assert_int_equal(f->cs.vals[0].v.i, 4);
	valid(f, all, "{\"i\": -3}");
	assert_int_equal(f->cs.vals[0].v.i, 0);
}

static void test_apply(void **state)
{
	fx *f = *state;
	tt_state *st = new_state(f, f->s1, "{\"r\": 1}");
	tt_store_flush();
	db_stub_clear();
	/* i unchanged, s changed: only s goes out */
	valid(f, NULL, "{\"i\": 1, \"s\": \"yo\"}");
	assert_int_equal(tt_store_apply(st, &f->cs, 5, 200.0), 1);
	assert_int_equal(st->seq, 1);
	assert_double_equal(st->time, 200.0);
	assert_int_equal(f->cs.n, 1);
	assert_int_equal(f->cs.idx[0], param(f, "s"));
	tt_arena a;
	tt_arena_init(&a, 0);
	assert_buf_hex(&f->cs.enc, "81 a1 73 a2 79 6f"); /* {"s": "yo"} */
	assert_int_equal(st->hist.len, 1);
	assert_int_equal(tt_history_at(&st->hist, 0)->origin, 5);
	assert_int_equal(db_stub_count("put_event 1 seq=1 origin=5"), 1);
	/* a set that changes nothing: no seq, no event, empty changes */
	valid(f, NULL, "{\"s\": \"yo\", \"a\": {\"y\": [2], \"x\": 1}}");
	assert_int_equal(tt_store_apply(st, &f->cs, 5, 300.0), 0);
	assert_int_equal(st->seq, 1);
	assert_double_equal(st->time, 200.0);
	assert_buf_hex(&f->cs.enc, "80");
	assert_int_equal(db_stub_count("put_event"), 1);
	/* filterChange false and event params always go out; the event is
	 * stored as sent, then the state holds nil */
	valid(f, NULL, "{\"f\": 0.5, \"bang\": true}");
	assert_int_equal(tt_store_apply(st, &f->cs, 0, 400.0), 2);
	assert_int_equal(st->seq, 2);
	assert_int_equal(slot(st, f, "bang")->type, TT_NIL);
	tt_value ev;
	size_t off = 0;
	tt_decoder *d = tt_decoder_new();
	const tt_event *e = tt_history_at(&st->hist, 1);
	assert_int_equal(tt_decode(d, tt_buf_data(&e->changes), e->changes.len, &off, &a, &ev, NULL), 0);
	assert_true(tt_map_get(&ev, "bang")->v.b);
	tt_decoder_free(d);
	tt_arena_destroy(&a);
	/* the history keeps --history 4 events */
	for (int i = 2; i < 8; i++) {
		char json[32];
		snprintf(json, sizeof(json), "{\"i\": %d}", i);
		valid(f, NULL, json);
		assert_int_equal(tt_store_apply(st, &f->cs, 0, 500.0 + i), 1);
	}
	assert_int_equal(st->seq, 8);
	assert_int_equal(st->hist.len, 4);
	assert_int_equal(tt_history_first_seq(&st->hist), 5);
	/* one flush puts the values once, however many updates the turn had */
	db_stub_clear();
	tt_store_flush();
	assert_int_equal(db_stub_count("put_state 1 k"), 1);
	assert_int_equal(db_stub_count("trim_events"), 0); /* trimmed 64 at a time */
}

static void test_history_trim(void **state)
{
	fx *f = *state;
	tt_state *st = new_state(f, NULL, "{\"r\": 1}");
	for (int i = 0; i < 68; i++) {
		valid(f, NULL, i % 2 ? "{\"i\": 2}" : "{\"i\": 3}");
		tt_store_apply(st, &f->cs, 0, i);
		tt_store_flush();
	}
	/* history 4: the events up to 64 are trimmed once seq - 4 reaches 64
	 * (seq 68), in one step */
	assert_int_equal(db_stub_count("trim_events 1 64"), 1);
	assert_int_equal(db_stub_count("trim_events"), 1);
}

static void test_subscriptions(void **state)
{
	fx *f = *state;
	tt_state *st = new_state(f, f->s1, "{\"r\": 1}");
	tt_mask mi, ms;
	memset(&mi, 0, sizeof(mi));
	memset(&ms, 0, sizeof(ms));
	tt_mask_set(&mi, (uint32_t)param(f, "i"));
	tt_mask_set(&ms, (uint32_t)param(f, "s"));
	tt_instance *a = tt_store_attach(st, f->s2, &mi);
	tt_instance *b = tt_store_attach(st, f->s2, &ms);
	tt_instance *c = tt_store_attach(st, f->s1, NULL);
	assert_int_equal(db_stub_count("put_instance"), 3);
	/* one sub per session, the union of its filters */
	assert_int_equal(st->n_subs, 2);
	const tt_sub *s2 = &st->subs[a->sub];
	assert_int_equal(a->sub, b->sub);
	assert_int_equal(s2->n_inst, 2);
	assert_int_equal(s2->n_all, 0);
	assert_true(tt_mask_has(&s2->mask, (uint32_t)param(f, "i")));
	assert_true(tt_mask_has(&s2->mask, (uint32_t)param(f, "s")));
	assert_null(tt_sub_view(&st->subs[c->sub]));
	assert_ptr_equal(tt_instance_view(a), &a->mask);
	/* detaching one filter shrinks the union */
	tt_store_detach(a);
	assert_int_equal(db_stub_count("del_instance"), 1);
	s2 = &st->subs[b->sub];
	assert_false(tt_mask_has(&s2->mask, (uint32_t)param(f, "i")));
	assert_int_equal(f->s2->n_instances, 1);
	/* the last instance of a session removes its sub; the other sub moves
	 * into its slot and its instances follow */
	uint32_t before = st->n_subs;
	uint64_t bid = b->id;
	tt_store_detach(b);
	assert_int_equal(st->n_subs, before - 1);
	assert_ptr_equal(st->subs[c->sub].session, f->s1);
	assert_null(tt_store_instance(bid));
	assert_ptr_equal(tt_store_instance(c->id), c);
	/* a filter naming an unknown param */
	tt_mask m;
	tt_error err;
	tt_value bad = tj(&f->a, "[\"i\", \"zz\"]");
	assert_int_equal(tt_store_filter(f->k->cls, &bad, &m, &err), -TT_BAD_FILTER);
	assert_substr(err.msg, "zz");
}

static void test_delete_and_sessions(void **state)
{
	fx *f = *state;
	tt_state *st = new_state(f, f->s1, "{\"r\": 1}");
	tt_state *keep = new_state(f, f->s1, "{\"r\": 2}");
	tt_store_attach(st, f->s2, NULL);
	valid(f, NULL, "{\"i\": 5}");
	tt_store_sched_add(st, 1000, f->s1->id, 0, &f->cs);
	assert_int_equal(tt_sched_count(), 1);
	uint64_t id = st->id;
	tt_store_state_delete(st, "deleted");
	assert_null(tt_store_state(id));
	assert_string_equal(tt_store_tombstone(id), "deleted");
	assert_null(tt_store_tombstone(keep->id));
	assert_int_equal(tt_sched_count(), 0); /* its schedules went with it */
	assert_int_equal(f->s2->n_instances, 0);
	assert_int_equal(f->s1->n_owned, 1);
	assert_ptr_equal(f->s1->owned, keep);
	assert_int_equal(db_stub_count("del_state 1 deleted"), 1);
	/* a session is dropped once its owned states are gone */
	tt_store_state_delete(keep, "owner left");
	tt_store_observe(f->s1, NULL, true);
	assert_int_equal(db_stub_count("put_observe"), 1);
	tt_store_observe(f->s1, NULL, true); /* already: nothing new */
	assert_int_equal(db_stub_count("put_observe"), 1);
	uint64_t sid = f->s1->id;
	tt_store_session_drop(f->s1);
	f->s1 = NULL;
	assert_null(tt_session_by_id(sid));
	assert_int_equal(db_stub_count("del_session"), 1);
}

static void test_schedules(void **state)
{
	fx *f = *state;
	tt_state *st = new_state(f, NULL, "{\"r\": 1}");
	double ats[] = {30, 10, 20, 10};
	tt_sched *sc[4];
	for (int i = 0; i < 4; i++) {
		valid(f, NULL, "{\"i\": 2}");
		sc[i] = tt_store_sched_add(st, ats[i], 0, 0, &f->cs);
	}
	/* the state's list and the heap: by (at, id) */
	assert_ptr_equal(st->scheds.first, sc[1]);
	assert_ptr_equal(st->scheds.first->next, sc[3]);
	assert_ptr_equal(st->scheds.last, sc[0]);
	assert_ptr_equal(tt_sched_first(), sc[1]);
	assert_int_equal(db_stub_count("put_schedule"), 4);
	tt_store_sched_remove(sc[1]);
	assert_ptr_equal(tt_sched_first(), sc[3]);
	assert_int_equal(db_stub_count("del_schedule"), 1);
	/* the stored changes are the validated values */
	assert_buf_hex(&sc[0]->changes, "81 a1 69 02");
	/* schedule ids are never reused */
	uint64_t next = tt_store_sched_id();
	tt_store_sched_remove(sc[0]);
	assert_int_equal(tt_store_sched_id(), next);
}

static void test_restore(void **state)
{
	fx *f = *state;
	tt_error err;
	/* an unknown value type falls back to the default; an owner whose
	 * session is gone loses its state (persisted) */
	tt_value vals = tj(&f->a, "{\"i\": \"text\", \"s\": \"back\", \"r\": 3}");
	assert_int_equal(tt_store_restore_state(40, f->k, f->s2->id, 7, 9.5, &vals, NULL, &err), 0);
	assert_int_equal(tt_store_restore_state(41, f->k, 999, 1, 9.5, &vals, NULL, &err), 0);
	assert_int_equal(tt_store_restore_state(40, f->k, 0, 1, 1, &vals, NULL, &err), -TT_INTERNAL);
	tt_state *st = tt_store_state(40);
	assert_int_equal(slot(st, f, "i")->v.i, 1);
	assert_true(tt_str_eq(slot(st, f, "s"), "back"));
	assert_int_equal(st->seq, 7);
	assert_int_equal(f->s2->n_owned, 0); /* owners come after every row */
	tt_store_restore_owners();
	assert_int_equal(f->s2->n_owned, 1);
	assert_null(tt_store_state(41));
	assert_string_equal(tt_store_tombstone(41), "owner left");
	assert_int_equal(db_stub_count("del_state 41 owner left"), 1);
	/* new ids continue after the restored ones */
	tt_store_restore_ids(100, 0, 0);
	tt_state *fresh = new_state(f, NULL, "{\"r\": 1}");
	assert_int_equal(fresh->id, 100);
	tt_store_restore_tombstone(5, "class deleted");
	tt_store_restore_tombstone(6, "something else");
	assert_string_equal(tt_store_tombstone(5), "class deleted");
	assert_string_equal(tt_store_tombstone(6), "deleted");
	/* the newest TT_TOMBSTONES_KEPT are kept, the oldest go first */
	for (uint64_t id = 1000; id < 1000 + TT_TOMBSTONES_KEPT + 10; id++)
		tt_store_restore_tombstone(id, "deleted");
	/* 41, 5 and 6 were the oldest, then 1000..1009 */
	assert_null(tt_store_tombstone(41));
	assert_null(tt_store_tombstone(5));
	assert_null(tt_store_tombstone(1009));
	assert_string_equal(tt_store_tombstone(1010), "deleted");
	assert_string_equal(tt_store_tombstone(1000 + TT_TOMBSTONES_KEPT + 9), "deleted");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_define),
		T(test_state_new),
		T(test_validate),
		T(test_apply),
		T(test_history_trim),
		T(test_subscriptions),
		T(test_delete_and_sessions),
		T(test_schedules),
		T(test_restore),
	};
#undef T
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
