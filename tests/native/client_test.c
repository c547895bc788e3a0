/* SPDX-License-Identifier: MIT */
/* client_test.c: libtutti-client against the real server. Run by
 * tests/native/client.test.mjs and resume.test.mjs, which start the server:
 *   native_client_test URL api      every request, push and callback kind
 *   native_client_test URL resume   attach, print READY, survive a kill -9
 *                                   of the server, resume the same session
 *   native_client_test URL down     a server that is not there
 * Prints what it checks; exits 1 on the first failed check. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "tutti_client.h"

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)
#define OK(what) printf("ok - %s\n", what)

static tt_client *A, *B, *C;

/* ---- recorded callbacks ---------------------------------------------------- */

typedef struct rec_upd {
	int n;
	tt_update_info info;
	char changes[512], old[512];
	double fired_sync; /* sync clock when the callback ran */
	int scheduled_notices;
	uint64_t sched_id;
	double sched_at;
	int detached;
	char reason[64];
} rec_upd;

static void dump(const tt_value *v, char *out, size_t cap)
{
	char *s = tt_json_dump(v);
	snprintf(out, cap, "%s", s ? s : "?");
	free(s);
}

static void on_update(tt_state *s, const tt_value *changes, const tt_value *old,
		      const tt_update_info *info, void *user)
{
	rec_upd *r = user;
	r->n++;
	r->info = *info;
	dump(changes, r->changes, sizeof(r->changes));
	dump(old, r->old, sizeof(r->old));
	r->fired_sync = tt_clock_sync_time(tt_client_clock(tt_state_client(s)), tt_clock_now());
}

static void on_scheduled(tt_state *s, uint64_t id, double at, const tt_value *changes, void *user)
{
	(void)s;
	(void)changes;
	rec_upd *r = user;
	r->scheduled_notices++;
	r->sched_id = id;
	r->sched_at = at;
}

static void on_detach(tt_state *s, const char *reason, void *user)
{
	(void)s;
	rec_upd *r = user;
	r->detached++;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

typedef struct notices {
	int creates, deletes;
	uint64_t last_id;
} notices;

static void on_notice(tt_client *c, const char *kind, const char *cls, uint64_t id, uint64_t owner,
		      void *user)
{
	(void)c;
	(void)cls;
	(void)owner;
	notices *n = user;
	if (!strcmp(kind, "create"))
		n->creates++;
	else
		n->deletes++;
	n->last_id = id;
}

static void on_log(tt_client *c, const char *line, void *user)
{
	(void)c;
	char *last = user;
	if (last)
		snprintf(last, 256, "%s", line);
	fprintf(stderr, "log: %s\n", line);
}

/* ---- pumping several clients ------------------------------------------------ */

static void pump_all(void)
{
	tt_client *cs[] = {A, B, C};
	for (int i = 0; i < 3; i++)
		if (cs[i])
			tt_client_service(cs[i], 2);
}

static void pump_until(bool (*cond)(void *), void *arg, double timeout, const char *what)
{
	double end = tt_clock_now() + timeout;
	while (!cond(arg)) {
		CHECK(tt_clock_now() < end, "timed out waiting for %s", what);
		pump_all();
	}
}

static bool wait_done(void *w) { return ((tt_wait *)w)->done; }
static int *ge_p, ge_target;
static bool int_ge(void *p) { (void)p; return *ge_p >= ge_target; }
static void pump_until_count(int *p, int target, const char *what);
static bool int_pos(void *p) { return *(int *)p > 0; }
static bool atomic_pos(void *p) { return atomic_load((atomic_int *)p) > 0; }

static void pump_for(double secs)
{
	double end = tt_clock_now() + secs;
	while (tt_clock_now() < end)
		pump_all();
}

static void pump_until_count(int *p, int target, const char *what)
{
	ge_p = p;
	ge_target = target;
	pump_until(int_ge, NULL, 5, what);
}

/* Wait for a reply while every client runs; returns its code. */
static int call(tt_wait *w, const char *what)
{
	pump_until(wait_done, w, 10, what);
	return w->code;
}

static tt_client *new_client(const char *url, bool validate, char *last_log)
{
	tt_client_opts o;
	tt_error err;
	tt_client *c;
	tt_client_opts_init(&o);
	o.url = url;
	o.validate = validate;
	o.on_log = on_log;
	o.user = last_log;
	CHECK(tt_client_new(&o, &c, &err) == 0, "%s", err.msg);
	CHECK(tt_client_connect(c, &err) == 0, "%s", err.msg);
	return c;
}

static tt_value parse(tt_arena *a, const char *json)
{
	tt_value v;
	tt_error err;
	CHECK(tt_json_parse_value(json, a, &v, &err) == 0, "%s", err.msg);
	return v;
}

/* ---- threads ---------------------------------------------------------------- */

static atomic_int posted_ran;
static void posted(tt_client *c, void *user)
{
	(void)c;
	(void)user;
	atomic_fetch_add(&posted_ran, 1);
}

static void *poster(void *arg)
{
	tt_client_post(arg, posted, NULL);
	return NULL;
}

static atomic_int reader_stop, reader_backwards;
static void *clock_reader(void *arg)
{
	const tt_clock *k = arg;
	double last = -INFINITY;
	long n = 0;
	while (!atomic_load(&reader_stop)) {
		double t = tt_clock_sync_time(k, tt_clock_now());
		if (tt_clock_ready(k)) {
			if (t < last)
				atomic_fetch_add(&reader_backwards, 1);
			last = t;
		}
		n++;
	}
	return (void *)n;
}

/* A client on its own thread: attach from a posted function, count the
 * updates its thread sees. */
static atomic_int th_updates, th_attached;
static double th_last_x;
static void th_update(tt_state *s, const tt_value *changes, const tt_value *old,
		      const tt_update_info *info, void *user)
{
	(void)s;
	(void)old;
	(void)info;
	(void)user;
	const tt_value *x = tt_map_get(changes, "x");
	if (x)
		tt_as_double(x, &th_last_x);
	atomic_fetch_add(&th_updates, 1);
}

static void th_attached_fn(tt_client *c, const tt_reply *r, void *user)
{
	(void)c;
	(void)user;
	atomic_store(&th_attached, r->code == 0 ? 1 : -1);
}

static uint64_t th_state;
static void th_attach(tt_client *c, void *user)
{
	(void)user;
	tt_attach_opts ao;
	memset(&ao, 0, sizeof(ao));
	ao.on_update = th_update;
	tt_error err;
	CHECK(tt_client_attach(c, "nt", th_state, &ao, th_attached_fn, NULL, &err) == 0, "%s", err.msg);
}

/* ---- the API scenario ---------------------------------------------------------- */

static int scenario_api(const char *url)
{
	tt_arena a;
	tt_arena_init(&a, 0);
	tt_error err;
	A = new_client(url, true, NULL);
	B = new_client(url, true, NULL);
	C = new_client(url, false, NULL);

	/* a request made before the session is open waits for it */
	tt_wait w;
	tt_wait_init(&w);
	tt_value desc = parse(&a, "{\"x\":{\"type\":\"float\",\"default\":0,\"min\":0,\"max\":10},"
				  "\"n\":{\"type\":\"integer\",\"default\":0},"
				  "\"s\":{\"type\":\"string\",\"default\":\"\"},"
				  "\"e\":{\"type\":\"boolean\",\"event\":true},"
				  "\"loc\":{\"type\":\"float\",\"default\":1,\"local\":true},"
				  "\"mode\":{\"type\":\"enum\",\"list\":[\"a\",\"b\"],\"default\":\"a\"}}");
	CHECK(tt_client_define(A, "nt", &desc, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "define") == 0, "define: %s", w.message);
	CHECK(tt_client_status(A) == TT_STATUS_OPEN, "status %d", tt_client_status(A));
	CHECK(tt_map_get(&w.result, "defined") && tt_map_get(&w.result, "defined")->v.b, "defined");
	tt_wait_free(&w);
	OK("define, queued before the session was open");

	/* a bad description is refused locally by the server's own code */
	tt_value bad = parse(&a, "{\"x\":{\"type\":\"floaty\",\"default\":0}}");
	CHECK(tt_client_define(A, "bad", &bad, NULL, NULL, &err) == -TT_BAD_DESCRIPTION, "%d", err.code);
	CHECK(strstr(err.msg, "floaty") != NULL, "%s", err.msg);
	OK("define: bad description refused locally");

	/* observe on B first: the create notice must come */
	notices nb = {0};
	tt_wait_init(&w);
	CHECK(tt_client_observe(B, "nt", on_notice, &nb, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "observe") == 0, "observe: %s", w.message);
	tt_wait_free(&w);

	rec_upd ra = {0}, rb = {0}, rc = {0};
	tt_attach_opts ao;
	memset(&ao, 0, sizeof(ao));
	ao.on_update = on_update;
	ao.on_scheduled = on_scheduled;
	ao.on_detach = on_detach;
	ao.user = &ra;
	tt_wait_init(&w);
	tt_value init = parse(&a, "{\"x\":1}");
	CHECK(tt_client_create(A, "nt", &init, &ao, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "create") == 0, "create: %s", w.message);
	tt_state *sa = w.state;
	CHECK(sa && tt_state_is_owner(sa), "owner instance");
	uint64_t id = tt_state_id(sa);
	tt_wait_free(&w);
	CHECK(tt_state_get(sa, "x")->type == TT_FLOAT && tt_state_get(sa, "x")->v.f == 1, "x=1");
	pump_until(int_pos, &nb.creates, 5, "create notice");
	CHECK(nb.last_id == id, "notice for state %llu", (unsigned long long)nb.last_id);
	OK("create, observe notice");

	/* B attaches with history; C with a filter and no local validation */
	ao.user = &rb;
	ao.history = 10;
	tt_wait_init(&w);
	CHECK(tt_client_attach(B, "nt", id, &ao, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "attach B") == 0, "attach: %s", w.message);
	tt_state *sb = w.state;
	CHECK(tt_map_get(&w.result, "history") && tt_map_get(&w.result, "history")->type == TT_ARRAY, "history");
	tt_wait_free(&w);
	CHECK(tt_state_get(sb, "x")->v.f == 1, "B sees x=1");
	const char *only_x[] = {"x"};
	ao.user = &rc;
	ao.history = 0;
	ao.filter = only_x;
	ao.n_filter = 1;
	tt_wait_init(&w);
	CHECK(tt_client_attach(C, "nt", id, &ao, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "attach C") == 0, "attach: %s", w.message);
	tt_state *sc = w.state;
	tt_wait_free(&w);
	CHECK(tt_state_param_count(sc) == 1 && tt_state_get(sc, "n") == NULL, "filter");
	OK("attach with history, attach with filter");

	/* a set, its reply and the other clients' updates */
	tt_wait_init(&w);
	tt_pair kv = {.key = tt_str("x"), .val = tt_float(2)};
	tt_value up = {.type = TT_MAP, .len = 1};
	up.v.pairs = &kv;
	CHECK(tt_state_set(sa, &up, NAN, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "set") == 0, "set: %s", w.message);
	uint64_t seq;
	CHECK(tt_map_get(&w.result, "seq") && (seq = (uint64_t)tt_map_get(&w.result, "seq")->v.i) == 1, "seq 1");
	tt_wait_free(&w);
	pump_until(int_pos, &rb.n, 5, "B's update");
	pump_until(int_pos, &rc.n, 5, "C's update");
	CHECK(ra.n == 1 && ra.info.source == TT_SRC_SET && ra.info.seq == 1, "A: %d %d", ra.n, ra.info.source);
	CHECK(rb.info.source == TT_SRC_UPDATE && rb.info.seq == 1 && rb.info.time > 0, "B: src %d seq %llu",
	      rb.info.source, (unsigned long long)rb.info.seq);
	CHECK(!strcmp(rb.changes, "{\"x\":2.0}") && !strcmp(rb.old, "{\"x\":1.0}"), "%s %s", rb.changes, rb.old);
	CHECK(tt_state_seq(sb) == 1 && tt_state_get(sb, "x")->v.f == 2, "B's cache");
	OK("set: reply (SRC_SET) and updates with seq, time, changes and old values");

	/* local validation: nothing is sent */
	CHECK(tt_state_set_str(sa, "x", "loud", &err) == -TT_BAD_VALUE, "%d", err.code);
	CHECK(strstr(err.msg, "\"x\"") && strstr(err.msg, "loud"), "%s", err.msg);
	CHECK(tt_state_set_float(sa, "nope", 1, &err) == -TT_UNKNOWN_PARAM, "%d", err.code);
	CHECK(tt_state_set_int(sc, "n", 1, &err) == -TT_FILTERED, "%d", err.code);
	CHECK(tt_state_set_float(sa, "n", 1.5, &err) == -TT_BAD_VALUE, "%d", err.code);
	OK("local validation: BAD_VALUE, UNKNOWN_PARAM, FILTERED at once");

	/* local params stay here */
	int before = rb.n;
	CHECK(tt_state_set_float(sa, "loc", 3, &err) == 0, "%s", err.msg);
	CHECK(ra.info.source == TT_SRC_LOCAL && tt_state_get(sa, "loc")->v.f == 3, "local");
	OK("local param applied locally");

	/* clipping comes back in the reply and the updates */
	CHECK(tt_state_set_float(sa, "x", 99, &err) == 0, "%s", err.msg);
	pump_until_count(&rb.n, before + 1, "clipped update");
	CHECK(!strcmp(rb.changes, "{\"x\":10.0}"), "%s", rb.changes);
	CHECK(rb.n == before + 1, "the local and the refused sets sent nothing (%d)", rb.n - before);
	OK("clipped by the server, seen clipped");

	/* the server refuses what local validation let through (C: validate off) */
	tt_wait_init(&w);
	kv.val = tt_str("loud");
	CHECK(tt_state_set(sc, &up, NAN, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "refused set") == TT_BAD_VALUE, "code %d %s", w.code, w.message);
	CHECK(strstr(w.message, "loud") != NULL, "%s", w.message);
	tt_wait_free(&w);
	OK("server refusal: BAD_VALUE with the server's message");

	/* event params: told, then nil */
	before = rb.n;
	CHECK(tt_state_set_bool(sa, "e", true, &err) == 0, "%s", err.msg);
	pump_until_count(&rb.n, before + 1, "event");
	CHECK(!strcmp(rb.changes, "{\"e\":true}") && tt_state_get(sb, "e")->type == TT_NIL, "%s", rb.changes);
	OK("event param told once, nil afterwards");

	/* the clock: ready after the first series; an audio-thread reader */
	pthread_t rd;
	pthread_create(&rd, NULL, clock_reader, (void *)tt_client_clock(B));
	double end = tt_clock_now() + 10;
	while (!tt_clock_ready(tt_client_clock(A)) || !tt_clock_ready(tt_client_clock(B))) {
		CHECK(tt_clock_now() < end, "clock not ready in 10 s");
		pump_all();
	}
	tt_clock_report rep;
	tt_client_clock_report(A, &rep);
	CHECK(!strcmp(rep.status, "training") || !strcmp(rep.status, "sync"), "%s", rep.status);
	CHECK(rep.series >= 1 && rep.online && rep.round_trip_min >= 0 && rep.round_trip_min < 0.5, "report");
	double sa_t = tt_clock_sync_time(tt_client_clock(A), tt_clock_now());
	double sb_t = tt_clock_sync_time(tt_client_clock(B), tt_clock_now());
	CHECK(fabs(sa_t - sb_t) < 0.05, "two clients' sync clocks differ by %g s", sa_t - sb_t);
	double l = tt_clock_local_time(tt_client_clock(A), sa_t);
	CHECK(fabs(tt_clock_sync_time(tt_client_clock(A), l) - sa_t) < 1e-6, "local<->sync");
	OK("clock: ready, report, local<->sync, two clients agree");

	/* a scheduled set: told ahead, applied at `at`, never before */
	rb.n = ra.n = 0;
	double at = tt_clock_sync_time(tt_client_clock(A), tt_clock_now()) + 0.4;
	tt_wait_init(&w);
	kv.key = tt_str("n");
	kv.val = tt_int(5);
	CHECK(tt_state_set(sa, &up, at, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "scheduled set") == 0, "%s", w.message);
	CHECK(tt_map_get(&w.result, "scheduled") != NULL, "scheduled reply");
	tt_wait_free(&w);
	pump_until(int_pos, &rb.scheduled_notices, 5, "SCHEDULED push");
	CHECK(fabs(rb.sched_at - at) < 1e-9 && rb.n == 0, "told ahead, not applied yet");
	pump_until(int_pos, &rb.n, 5, "scheduled update on B");
	CHECK(rb.info.time == at && rb.info.sched_id == rb.sched_id, "scheduled info");
	CHECK(rb.fired_sync >= at - 0.002, "fired %g s early", at - rb.fired_sync);
	pump_until(int_pos, &ra.n, 5, "scheduled update on A");
	CHECK(ra.fired_sync >= at - 0.002, "A fired %g s early", at - ra.fired_sync);
	pump_for(0.3);
	CHECK(tt_state_get(sb, "n")->v.i == 5 && tt_state_seq(sb) == 4, "seq %llu", (unsigned long long)tt_state_seq(sb));
	CHECK(rb.n == 1, "listeners ran once (%d)", rb.n);
	OK("scheduled set: advance notice, applied at `at` (never early), once");

	/* history */
	tt_wait_init(&w);
	CHECK(tt_state_history(sb, 3, 0, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "history") == 0, "%s", w.message);
	const tt_value *ev = tt_map_get(&w.result, "events");
	CHECK(ev && ev->type == TT_ARRAY && ev->len == 3, "3 events");
	tt_wait_free(&w);
	OK("history");

	/* describe, unknown class */
	tt_wait_init(&w);
	CHECK(tt_client_describe(B, "nt", tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "describe") == 0 && tt_map_get(&w.result, "loc"), "%s", w.message);
	tt_wait_free(&w);
	tt_wait_init(&w);
	CHECK(tt_client_attach(B, "no-such-class", 0, NULL, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "attach unknown") == TT_UNKNOWN_CLASS, "%d", w.code);
	tt_wait_free(&w);
	OK("describe; attach of an unknown class: UNKNOWN_CLASS");

	/* posted from another thread; a client on its own thread */
	pthread_t pt;
	pthread_create(&pt, NULL, poster, A);
	pthread_join(pt, NULL);
	pump_until(atomic_pos, &posted_ran, 5, "posted function");
	tt_client *D = new_client(url, true, NULL);
	th_state = id;
	CHECK(tt_client_start(D, &err) == 0, "%s", err.msg);
	CHECK(tt_client_service(D, 0) == -TT_USAGE, "service refused with a thread");
	tt_client_post(D, th_attach, NULL);
	pump_until(atomic_pos, &th_attached, 10, "threaded attach");
	CHECK(tt_state_set_float(sa, "x", 7, &err) == 0, "%s", err.msg);
	pump_until(atomic_pos, &th_updates, 10, "threaded update");
	tt_client_stop(D);
	CHECK(th_last_x == 7, "thread saw x=%g", th_last_x);
	tt_client_free(D);
	OK("tt_client_post from a thread; tt_client_start: updates on the client's thread");

	atomic_store(&reader_stop, 1);
	void *reads;
	pthread_join(rd, &reads);
	CHECK(atomic_load(&reader_backwards) == 0, "the clock went backwards %d times", reader_backwards);
	printf("ok - clock read %ld times from another thread while published, never backwards\n", (long)reads);

	/* detach, then delete: the others are told */
	CHECK(tt_state_detach(sc, NULL, NULL, &err) == 0, "%s", err.msg);
	CHECK(rc.detached == 1 && !strcmp(rc.reason, "detached"), "detach callback");
	tt_wait_init(&w);
	CHECK(tt_state_delete(sa, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(call(&w, "delete") == 0, "%s", w.message);
	tt_wait_free(&w);
	CHECK(ra.detached == 1 && !strcmp(ra.reason, "deleted"), "owner told");
	pump_until(int_pos, &rb.detached, 5, "B's DELETED");
	CHECK(!strcmp(rb.reason, "deleted"), "%s", rb.reason);
	pump_until(int_pos, &nb.deletes, 5, "delete notice");
	OK("detach; delete: DELETED to the others, delete notice to observers");

	tt_client_free(A);
	tt_client_free(B);
	tt_client_free(C);
	A = B = C = NULL;
	tt_arena_destroy(&a);
	printf("api: all checks passed\n");
	return 0;
}

/* ---- a server that is not there --------------------------------------------------- */

static int scenario_down(const char *url)
{
	char last[256] = "";
	tt_client_opts o;
	tt_error err;
	tt_client_opts_init(&o);
	o.url = url;
	o.request_timeout = 1.5;
	o.on_log = on_log;
	o.user = last;
	CHECK(tt_client_new(&o, &A, &err) == 0, "%s", err.msg);
	CHECK(tt_client_connect(A, &err) == 0, "%s", err.msg);
	tt_wait w;
	tt_wait_init(&w);
	CHECK(tt_client_describe(A, "demo", tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(tt_client_wait(A, &w, 10) == -TT_TIMEOUT && w.code == TT_TIMEOUT, "%d", w.code);
	CHECK(tt_client_status(A) == TT_STATUS_CONNECTING, "status %d", tt_client_status(A));
	CHECK(strstr(last, "cannot connect") != NULL, "log: %s", last);
	tt_wait_free(&w);
	/* giving up before the request's own timeout: the tt_wait may go */
	{
		tt_wait *w2 = malloc(sizeof(*w2)); /* freed: ASan sees a late reply landing */
		tt_wait_init(w2);
		CHECK(tt_client_describe(A, "demo", tt_wait_done, w2, &err) == 0, "%s", err.msg);
		CHECK(tt_client_wait(A, w2, 0.2) == -TT_TIMEOUT && !w2->done, "gave up");
		tt_wait_free(w2);
		free(w2);
	}
	/* bad urls */
	o.url = "http://x/";
	tt_client *x;
	CHECK(tt_client_new(&o, &x, &err) == -TT_USAGE && x == NULL, "http url");
	o.url = "ws://host:99999/";
	CHECK(tt_client_new(&o, &x, &err) == -TT_USAGE, "bad port");
	tt_client_free(A);
	A = NULL;
	printf("down: all checks passed\n");
	return 0;
}

/* ---- resume across a kill -9 of the server ------------------------------------------ */

static int resumed_count, sessionlost_count;
static void res_open(tt_client *c, bool resumed, void *user)
{
	(void)c;
	(void)user;
	if (resumed)
		resumed_count++;
	else
		sessionlost_count++;
}

static int scenario_resume(const char *url)
{
	tt_client_opts o;
	tt_error err;
	tt_client_opts_init(&o);
	o.url = url;
	o.on_log = on_log;
	o.on_open = res_open;
	o.backoff_max = 0.5;
	CHECK(tt_client_new(&o, &A, &err) == 0, "%s", err.msg);
	CHECK(tt_client_connect(A, &err) == 0, "%s", err.msg);
	rec_upd r = {0}, own = {0};
	tt_attach_opts ao;
	memset(&ao, 0, sizeof(ao));
	ao.on_update = on_update;
	ao.on_detach = on_detach;
	ao.user = &r;
	tt_wait w;
	tt_wait_init(&w);
	CHECK(tt_client_attach(A, "demo", 0, &ao, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(tt_client_wait(A, &w, 10) == 0, "attach demo: %s", w.message);
	tt_state *s = w.state;
	tt_wait_free(&w);
	tt_arena a;
	tt_arena_init(&a, 0);
	tt_value desc = parse(&a, "{\"k\":{\"type\":\"integer\",\"default\":0}}");
	tt_wait_init(&w);
	CHECK(tt_client_define(A, "mine", &desc, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(tt_client_wait(A, &w, 10) == 0, "define: %s", w.message);
	tt_wait_free(&w);
	ao.user = &own;
	tt_wait_init(&w);
	CHECK(tt_client_create(A, "mine", NULL, &ao, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(tt_client_wait(A, &w, 10) == 0, "create: %s", w.message);
	tt_state *mine = w.state;
	uint64_t mine_instance = tt_state_instance(mine);
	tt_wait_free(&w);
	uint64_t session = tt_client_session(A);
	printf("READY session=%llu seq=%llu\n", (unsigned long long)session, (unsigned long long)tt_state_seq(s));
	fflush(stdout);

	/* the test kills the server, restarts it on the same port and
	 * database, and sets demo.volume to 0.42 from another client */
	double end = tt_clock_now() + 60;
	while (!(resumed_count && r.n && strstr(r.changes, "0.42"))) {
		CHECK(tt_clock_now() < end, "no resume: resumed=%d lost=%d updates=%d (%s)", resumed_count,
		      sessionlost_count, r.n, r.changes);
		tt_client_service(A, 50);
	}
	CHECK(sessionlost_count == 1, "a new session was opened once (%d)", sessionlost_count);
	CHECK(tt_client_session(A) == session, "same session %llu", (unsigned long long)tt_client_session(A));
	CHECK(r.detached == 0 && own.detached == 0, "instances kept");
	/* the owned state survived: a set through the same instance works */
	tt_wait_init(&w);
	tt_pair kv = {.key = tt_str("k"), .val = tt_int(3)};
	tt_value up = {.type = TT_MAP, .len = 1};
	up.v.pairs = &kv;
	CHECK(tt_state_instance(mine) == mine_instance, "same instance");
	CHECK(tt_state_set(mine, &up, NAN, tt_wait_done, &w, &err) == 0, "%s", err.msg);
	CHECK(tt_client_wait(A, &w, 10) == 0, "set on the owned state after resume: %s", w.message);
	tt_wait_free(&w);
	printf("RESUMED session=%llu source=%d changes=%s\n", (unsigned long long)session, r.info.source, r.changes);
	tt_arena_destroy(&a);
	tt_client_free(A);
	A = NULL;
	printf("resume: all checks passed\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 3) {
		fprintf(stderr, "usage: native_client_test URL api|down|resume\n");
		return 2;
	}
	if (!strcmp(argv[2], "api"))
		return scenario_api(argv[1]);
	if (!strcmp(argv[2], "down"))
		return scenario_down(argv[1]);
	if (!strcmp(argv[2], "resume"))
		return scenario_resume(argv[1]);
	fprintf(stderr, "unknown scenario %s\n", argv[2]);
	return 2;
}
