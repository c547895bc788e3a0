/* SPDX-License-Identifier: MIT */
/* inspect.c: clock-sync reports, the room's samples, INSPECT and its ROOM
 * pushes, KICK. */
#include "inspect.h"

#include <math.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "resume.h"
#include "rights.h"
#include "roles.h"
#include "sched.h"
#include "session.h"
#include "store.h"
#include "wire.h"

/* Ten minutes of one-second samples: what "the last minutes" of the
 * inspector's plots show from the moment it opens. */
#define RING 600
/* A report older than this says nothing about the clock now (a phone
 * reports after each series of pings, at least every 22.5 s). */
#define REPORT_FRESH 60.0
/* Rows of a ROOM: the default, and the most an inspector may ask for. */
#define ROWS_DEFAULT 1000
#define ROWS_MAX 10000

const double tt_inspect_within_ms[TT_INSPECT_WITHIN] = {1, 2, 5, 10};

typedef struct sample {
	double t;       /* sync time */
	float updates, msgs_in, msgs_out, bytes_in, bytes_out; /* per second */
	uint32_t conns, reporting, within[TT_INSPECT_WITHIN];
} sample;

static struct {
	sample ring[RING];
	uint32_t head, len;   /* the oldest, how many */
	double last;          /* tt_clock_mono() of the last sample; 0: none */
	double start;         /* tt_clock_mono() at init */
	uint64_t updates, msgs_in, msgs_out, bytes_in, bytes_out; /* counters then */
	tt_buf out;
} I;

void tt_inspect_init(void)
{
	memset(&I, 0, sizeof(I));
	I.start = tt_clock_mono();
	tt_buf_init(&I.out, 0);
}

void tt_inspect_destroy(void)
{
	tt_buf_free(&I.out);
}

/* ---- clock-sync reports ------------------------------------------------- */

static const char *const status_names[] = {"none", "startup", "training", "sync"};

int tt_inspect_sync_report(tt_client *c, const tt_value *msg, tt_error *err)
{
	const tt_value *a = msg->v.items;
	double e, d, r;
	int status = -1;
	if (msg->len == 5)
		for (int i = TT_SYNC_STARTUP; i <= TT_SYNC_SYNC; i++)
			if (tt_str_eq(&a[1], status_names[i]))
				status = i;
	/* bounded: a report is a few numbers kept per connection, and only
	 * plausible ones go into the room's figures */
	if (status < 0 || !tt_as_double(&a[2], &e) || !tt_as_double(&a[3], &d) ||
	    !tt_as_double(&a[4], &r) || !(e >= 0 && e <= 3600) || !(d >= -1 && d <= 1) ||
	    !(r >= 0 && r <= 3600))
		return tt_fail(err, TT_BAD_MESSAGE,
			       "SYNC_REPORT is [18, \"startup\"|\"training\"|\"sync\", offsetError "
			       "(0-3600 s), drift (-1-1), roundTrip (0-3600 s)]");
	tt_sync_report *s = &c->stats.sync;
	double now = tt_clock_mono();
	s->status = (uint8_t)status;
	s->error = (float)e;
	s->drift = (float)d;
	s->rtt = (float)r;
	s->at = now;
	tt_metrics.sync_reports++;
	/* one round trip a second per connection at most: a client sending
	 * reports in a loop does not make the histogram its own */
	if (now - s->observed >= 1.0 || s->observed == 0) {
		s->observed = now;
		tt_metrics_observe(&tt_metrics.clock_rtt, r);
	}
	return 0;
}

static bool fresh(const tt_client *c, double now)
{
	return c->session && c->stats.sync.status != TT_SYNC_NONE &&
	       now - c->stats.sync.at <= REPORT_FRESH;
}

void tt_inspect_sync_counts(uint32_t *reporting, uint32_t within[TT_INSPECT_WITHIN])
{
	double now = tt_clock_mono();
	*reporting = 0;
	memset(within, 0, sizeof(uint32_t) * TT_INSPECT_WITHIN);
	for (tt_client *c = tt_client_first(); c; c = c->next) {
		if (!fresh(c, now))
			continue;
		(*reporting)++;
		for (int i = 0; i < TT_INSPECT_WITHIN; i++)
			within[i] += c->stats.sync.error * 1000.0 <= tt_inspect_within_ms[i];
	}
}

/* ---- encoding ------------------------------------------------------------ */

static void key(tt_buf *b, const char *k)
{
	tt_enc_str(b, k);
}

static void kv_uint(tt_buf *b, const char *k, uint64_t v)
{
	key(b, k);
	tt_enc_uint(b, v);
}

static void kv_float(tt_buf *b, const char *k, double v)
{
	key(b, k);
	tt_enc_float(b, v);
}

static void enc_sample(tt_buf *b, const sample *s)
{
	tt_enc_map(b, 9);
	kv_float(b, "t", s->t);
	kv_float(b, "updates", s->updates);
	kv_float(b, "messagesIn", s->msgs_in);
	kv_float(b, "messagesOut", s->msgs_out);
	kv_float(b, "bytesIn", s->bytes_in);
	kv_float(b, "bytesOut", s->bytes_out);
	kv_uint(b, "connections", s->conns);
	kv_uint(b, "reporting", s->reporting);
	key(b, "within");
	tt_enc_array(b, TT_INSPECT_WITHIN);
	for (int i = 0; i < TT_INSPECT_WITHIN; i++)
		tt_enc_uint(b, s->within[i]);
}

static void enc_sync(tt_buf *b, const tt_client *c, double now)
{
	if (!c || !fresh(c, now)) {
		tt_enc_nil(b);
		return;
	}
	const tt_sync_report *s = &c->stats.sync;
	tt_enc_map(b, 5);
	key(b, "status");
	tt_enc_str(b, status_names[s->status]);
	kv_float(b, "error", s->error);
	kv_float(b, "drift", s->drift);
	kv_float(b, "roundTrip", s->rtt);
	kv_float(b, "age", now - s->at);
}

/* s has a connection: here, or (several nodes) on the node holding it,
 * whose record says it is not gone. */
static bool connected(const tt_session *s)
{
	return s->client || (tt_cluster_remote(s) && s->gone_at <= 0);
}

static void enc_session(tt_buf *b, const tt_session *s, double now, double wall)
{
	const tt_client *c = s->client;
	tt_enc_map(b, 13);
	kv_uint(b, "id", s->id);
	key(b, "role");
	tt_enc_str(b, tt_roles_get(s->role) ? tt_roles_get(s->role)->name : "?");
	key(b, "address");
	if (c || s->last_addr[0])
		tt_enc_str(b, c ? c->addr_text : s->last_addr);
	else
		tt_enc_nil(b);
	key(b, "connected");
	tt_enc_bool(b, connected(s));
	key(b, "node");
	if (tt_cluster_node(s))
		tt_enc_uint(b, tt_cluster_node(s));
	else
		tt_enc_nil(b);
	key(b, "goneFor");
	if (connected(s))
		tt_enc_nil(b);
	else
		tt_enc_float(b, TT_MAX(0.0, wall - s->gone_at));
	kv_uint(b, "owned", s->n_owned);
	kv_uint(b, "instances", s->n_instances);
	kv_uint(b, "queueBytes", c ? tt_client_queued_bytes(c) : 0);
	kv_float(b, "messagesIn", c ? c->stats.rate_in : 0);
	kv_float(b, "messagesOut", c ? c->stats.rate_out : 0);
	key(b, "sync");
	enc_sync(b, c, now);
	key(b, "inspecting");
	tt_enc_bool(b, c && c->stats.inspecting);
}

/* [stateId, className, owner, seq, subscribers, scheduled] */
static void enc_state(tt_buf *b, const tt_state *st)
{
	tt_enc_array(b, 6);
	tt_enc_uint(b, st->id);
	tt_enc_strn(b, st->ce->cls->name, strlen(st->ce->cls->name));
	tt_enc_uint(b, st->owner);
	tt_enc_uint(b, st->seq);
	tt_enc_uint(b, st->n_subs);
	tt_enc_uint(b, st->scheds.n);
}

static const sample *last_sample(void)
{
	static const sample none;
	return I.len ? &I.ring[(I.head + I.len - 1) % RING] : &none;
}

/* The room as c may see it (its row caps); history: the ring too. */
static void enc_room(tt_buf *b, const tt_client *c, bool history)
{
	double now = tt_clock_mono(), wall = tt_clock_wall();
	uint32_t conns = 0, inspectors = 0, sessions = 0, resuming = 0, classes = 0;
	uint64_t queued = 0;
	for (tt_client *k = tt_client_first(); k; k = k->next) {
		conns++;
		inspectors += k->stats.inspecting;
		queued += tt_client_queued_bytes(k);
	}
	for (tt_session *s = tt_session_first(); s; s = s->next) {
		sessions++;
		resuming += !connected(s);
	}
	for (tt_class_entry *ce = tt_store_first_class(); ce; ce = ce->next)
		classes++;
	const char *failing = tt_db_failing();
	tt_enc_map(b, history ? 20 : 19);
	kv_float(b, "time", tt_clock_now());
	key(b, "node");
	if (tt_cluster_me())
		tt_enc_uint(b, tt_cluster_me());
	else
		tt_enc_nil(b);
	kv_float(b, "uptime", now - I.start);
	kv_uint(b, "connections", conns);
	kv_uint(b, "sessions", sessions);
	kv_uint(b, "resuming", resuming);
	kv_uint(b, "states", tt_store_state_count());
	kv_uint(b, "classes", classes);
	kv_uint(b, "scheduled", tt_sched_count());
	kv_uint(b, "inspectors", inspectors);
	kv_uint(b, "queueBytes", queued);
	kv_uint(b, "databaseBytes", tt_db_size());
	key(b, "storage");
	if (failing)
		tt_enc_str(b, failing);
	else
		tt_enc_nil(b);
	key(b, "sample");
	enc_sample(b, last_sample());
	uint32_t n = TT_MIN(sessions, c->stats.rows_sessions);
	key(b, "sessionRows");
	tt_enc_array(b, n);
	tt_session *s = tt_session_first();
	for (uint32_t i = 0; i < n; i++, s = s->next)
		enc_session(b, s, now, wall);
	uint32_t n_states = tt_store_state_count();
	n = TT_MIN(n_states, c->stats.rows_states);
	key(b, "stateRows");
	tt_enc_array(b, n);
	tt_state *st = tt_store_first_state();
	for (uint32_t i = 0; i < n; i++, st = st->next)
		enc_state(b, st);
	/* every class (--max-classes bounds them): [name, states] */
	key(b, "classRows");
	tt_enc_array(b, classes);
	for (tt_class_entry *ce = tt_store_first_class(); ce; ce = ce->next) {
		tt_enc_array(b, 2);
		tt_enc_str(b, ce->cls->name);
		tt_enc_uint(b, ce->n_states);
	}
	kv_uint(b, "sessionsListed", TT_MIN(sessions, c->stats.rows_sessions));
	kv_uint(b, "statesListed", TT_MIN(n_states, c->stats.rows_states));
	if (history) {
		key(b, "history");
		tt_enc_array(b, I.len);
		for (uint32_t i = 0; i < I.len; i++)
			enc_sample(b, &I.ring[(I.head + i) % RING]);
	}
}

/* ---- the sample and the pushes -------------------------------------------- */

static float per_s(uint64_t now, uint64_t *prev, double dt)
{
	float r = dt > 0 ? (float)((double)(now - *prev) / dt) : 0;
	*prev = now;
	return r;
}

void tt_inspect_tick(void)
{
	double now = tt_clock_mono();
	double dt = I.last > 0 ? now - I.last : 0;
	if (I.last > 0 && dt < 0.5)
		return; /* a sample a second: an extra call changes nothing */
	I.last = now;
	const struct tt_metrics *m = &tt_metrics;
	sample s = {.t = tt_clock_now()};
	s.updates = per_s(m->updates, &I.updates, dt);
	s.msgs_in = per_s(m->msgs_in, &I.msgs_in, dt);
	s.msgs_out = per_s(m->msgs_out, &I.msgs_out, dt);
	s.bytes_in = per_s(m->bytes_in, &I.bytes_in, dt);
	s.bytes_out = per_s(m->bytes_out, &I.bytes_out, dt);
	bool inspected = false;
	for (tt_client *c = tt_client_first(); c; c = c->next) {
		tt_conn_stats *cs = &c->stats;
		cs->rate_in = per_s(cs->msgs_in, &cs->prev_in, dt);
		cs->rate_out = per_s(cs->msgs_out, &cs->prev_out, dt);
		/* the phones: an inspector's own connection is not one */
		s.conns += c->session != NULL && !cs->inspecting;
		inspected |= cs->inspecting;
	}
	tt_inspect_sync_counts(&s.reporting, s.within);
	if (I.len == RING) {
		I.ring[I.head] = s;
		I.head = (I.head + 1) % RING;
	} else {
		I.ring[(I.head + I.len++) % RING] = s;
	}
	if (!inspected)
		return; /* nobody looks: nothing is built */
	for (tt_client *c = tt_client_first(); c; c = c->next) {
		if (!c->stats.inspecting || c->closing)
			continue;
		tt_buf_clear(&I.out);
		tt_enc_array(&I.out, 2);
		tt_enc_uint(&I.out, TT_MSG_ROOM);
		enc_room(&I.out, c, false);
		/* a push: an inspector that does not read is cut like any slow
		 * consumer, and resumes */
		tt_client_send_copy(c, &I.out);
	}
}

/* ---- requests -------------------------------------------------------------- */

static int admin_only(const tt_client *c, const char *what, tt_error *err)
{
	if (tt_rights_admin(c->session->role))
		return 0;
	return tt_fail(err, TT_FORBIDDEN, "role \"%s\" may not %s (admins may)",
		       tt_roles_get(c->session->role)->name, what);
}

static int rows_opt(const tt_value *opts, const char *k, uint32_t *out, tt_error *err)
{
	const tt_value *v = tt_map_get(opts, k);
	*out = ROWS_DEFAULT;
	if (!v || v->type == TT_NIL)
		return 0;
	if (v->type != TT_INT || v->v.i < 0 || v->v.i > ROWS_MAX)
		return tt_fail(err, TT_BAD_REQUEST, "INSPECT option '%s' is an integer in [0, %d]", k,
			       ROWS_MAX);
	*out = (uint32_t)v->v.i;
	return 0;
}

int tt_op_inspect(tt_client *c, uint64_t rid, const tt_value *opts, tt_error *err)
{
	int rc = admin_only(c, "inspect the server", err);
	if (rc < 0)
		return rc;
	tt_buf_clear(&I.out);
	if (opts->type == TT_NIL) {
		c->stats.inspecting = false;
		tt_wire_result_nil(&I.out, rid);
		tt_client_reply(c, &I.out);
		return 0;
	}
	if (opts->type != TT_MAP)
		return tt_fail(err, TT_BAD_MESSAGE, "INSPECT options must be a map, or nil to stop");
	for (uint32_t i = 0; i < opts->len; i++) {
		const tt_value *k = &opts->v.pairs[i].key;
		if (!tt_str_eq(k, "sessions") && !tt_str_eq(k, "states"))
			return tt_fail(err, TT_BAD_REQUEST, "unknown INSPECT option (sessions, states)");
	}
	uint32_t sessions, states;
	if ((rc = rows_opt(opts, "sessions", &sessions, err)) < 0 ||
	    (rc = rows_opt(opts, "states", &states, err)) < 0)
		return rc;
	if (!c->stats.inspecting)
		tt_log_info("%s: inspecting", tt_session_who(c));
	c->stats.inspecting = true;
	c->stats.rows_sessions = sessions;
	c->stats.rows_states = states;
	tt_enc_array(&I.out, 3);
	tt_enc_uint(&I.out, TT_MSG_RESULT);
	tt_enc_uint(&I.out, rid);
	enc_room(&I.out, c, true);
	tt_client_reply(c, &I.out);
	return 0;
}

int tt_op_kick(tt_client *c, uint64_t rid, uint64_t id, tt_error *err)
{
	int rc = admin_only(c, "end sessions", err);
	if (rc < 0)
		return rc;
	tt_session *s = tt_session_by_id(id);
	if (!s)
		return tt_fail(err, TT_UNKNOWN_SESSION, "no session %llu", (unsigned long long)id);
	if (s == c->session)
		return tt_fail(err, TT_BAD_REQUEST,
			       "a session does not end itself with KICK: close the connection");
	tt_log_info("%s: ended by the operator, %s%s", tt_session_name(s), tt_session_who(c),
		    s->n_owned ? "; the states it created are deleted" : "");
	tt_client *victim = s->client;
	if (victim) {
		/* the connection goes with 4005 and knows no session any more:
		 * its close neither logs nor starts a resume window */
		victim->session = NULL;
		s->client = NULL;
		tt_client_close(victim, TT_CLOSE_KICKED);
	}
	tt_metrics.ended_kicked++;
	s->kicked = true;
	tt_resume_end(s);
	tt_buf_clear(&I.out);
	tt_wire_result_nil(&I.out, rid);
	tt_client_reply(c, &I.out);
	return 0;
}
