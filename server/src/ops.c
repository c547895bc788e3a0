/* SPDX-License-Identifier: MIT */
/* ops.c: the requests. An update's path through this file: tt_op_set checks
 * the instance and the options, the model validates and applies
 * (tt_store_validate, tt_store_apply), the writer gets its RESULT, and
 * fanout.c queues one UPDATE for every other subscriber. The turn's commit
 * (turn.c) then releases them all. */
#include "ops.h"

#include <string.h>

#include "clock.h"
#include "codec.h"
#include "fanout.h"
#include "protocol.h"
#include "resume.h"
#include "session.h"
#include "store.h"
#include "wire.h"

/* Pending scheduled sets allowed per state. */
#define MAX_SCHED_PER_STATE 1000

static struct {
	const tt_config *cfg;
	tt_buf out;       /* the reply being built */
	tt_changes cs;    /* the set being validated and applied */
	tt_decoder *dec;  /* scheduled sets' stored changes */
	tt_arena arena;
} O;

void tt_ops_init(const tt_config *cfg)
{
	O.cfg = cfg;
	tt_buf_init(&O.out, 0);
	tt_changes_init(&O.cs);
	O.dec = tt_decoder_new();
	tt_arena_init(&O.arena, 0);
}

void tt_ops_destroy(void)
{
	tt_buf_free(&O.out);
	tt_changes_free(&O.cs);
	tt_decoder_free(O.dec);
	O.dec = NULL;
	tt_arena_destroy(&O.arena);
}

static void reply(tt_client *c)
{
	tt_client_send_buf(c, &O.out);
}

static int class_of(const tt_value *v, tt_class_entry **out, tt_error *err)
{
	if (!tt_name_ok(v))
		return tt_fail(err, TT_BAD_MESSAGE, "class name must be a string of 1 to %d bytes "
			       "of printable UTF-8 (no control characters)", TT_MAX_NAME);
	*out = tt_store_class(v->v.s, v->len);
	if (!*out)
		return tt_fail(err, TT_UNKNOWN_CLASS, "class \"%.*s\" is not defined", (int)v->len,
			       v->v.s);
	return 0;
}

static int instance_of(const tt_client *c, uint64_t id, tt_instance **out, tt_error *err)
{
	tt_instance *in = tt_store_instance(id);
	if (!in || in->session != c->session)
		return tt_fail(err, TT_UNKNOWN_INSTANCE, "instance %llu is not one of this session's",
			       (unsigned long long)id);
	*out = in;
	return 0;
}

/* ---- session and time ------------------------------------------------------ */

int tt_op_hello(tt_client *c, uint64_t rid, const tt_value *opts, tt_error *err)
{
	if (c->session)
		return tt_fail(err, TT_BAD_REQUEST, "HELLO was already sent on this connection");
	if (opts->type != TT_MAP)
		return tt_fail(err, TT_BAD_MESSAGE, "HELLO options must be a map");
	const tt_value *ver = tt_map_get(opts, "version");
	if (!ver || ver->type != TT_INT || ver->v.i != TT_PROTOCOL_VERSION)
		return tt_fail(err, TT_BAD_VERSION, "protocol version %d is required",
			       TT_PROTOCOL_VERSION);
	const tt_value *token = tt_map_get(opts, "token");
	tt_session *s = NULL;
	if (token && token->type == TT_STR) {
		s = tt_session_by_token(token->v.s, token->len);
		if (s && s->client)
			/* the old connection is still open (a half-open socket the
			 * client gave up on): the new one takes the session over */
			s->client->session = NULL;
	}
	bool resumed = s != NULL;
	double now = tt_clock_now();
	if (!s)
		s = tt_session_new(now);
	tt_store_session_live(s);
	s->client = c;
	c->session = s;
	tt_wire_welcome(&O.out, rid, s, now, resumed, O.cfg->max_message, O.cfg->resume_window);
	reply(c);
	if (resumed)
		tt_resume_catch_up(s, tt_map_get(opts, "seqs"));
	return 0;
}

void tt_op_ping(tt_client *c, uint64_t id, double client_time, double recv_time)
{
	tt_wire_pong(&O.out, id, client_time, recv_time, tt_clock_now());
	reply(c);
}

/* ---- classes ----------------------------------------------------------------- */

int tt_op_define(tt_client *c, uint64_t rid, const tt_value *name, const tt_value *desc,
		 tt_error *err)
{
	bool created;
	if (!tt_name_ok(name))
		return tt_fail(err, TT_BAD_MESSAGE, "class name must be a string of 1 to %d bytes "
			       "of printable UTF-8 (no control characters)", TT_MAX_NAME);
	int rc = tt_store_define(name->v.s, name->len, desc, &created, err);
	if (rc < 0)
		return rc;
	tt_wire_defined(&O.out, rid, created);
	reply(c);
	return 0;
}

int tt_op_describe(tt_client *c, uint64_t rid, const tt_value *clsv, tt_error *err)
{
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0)
		return rc;
	tt_wire_description(&O.out, rid, ce->cls);
	reply(c);
	return 0;
}

int tt_ops_delete_class(const char *name, tt_error *err)
{
	tt_class_entry *ce = tt_store_class(name, strlen(name));
	if (!ce)
		return tt_fail(err, TT_UNKNOWN_CLASS, "class \"%s\" is not defined", name);
	while (ce->first) {
		tt_fanout_deleted(ce->first, "class deleted", NULL);
		tt_store_state_delete(ce->first, "class deleted");
	}
	tt_store_class_delete(ce);
	return 0;
}

/* ---- states ------------------------------------------------------------------ */

int tt_op_create(tt_client *c, uint64_t rid, const tt_value *clsv, tt_value *init, tt_error *err)
{
	tt_session *s = c->session;
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0)
		return rc;
	const tt_class *cls = ce->cls;
	tt_value empty = {.type = TT_MAP};
	if (init->type == TT_NIL)
		init = &empty;
	if ((rc = tt_store_validate(cls, NULL, init, &O.cs, err)) < 0)
		return rc;
	for (uint32_t k = 0; k < cls->n_params; k++) {
		if (!cls->params[k].required)
			continue;
		bool given = false;
		for (uint32_t i = 0; i < O.cs.n; i++)
			if (O.cs.idx[i] == k && O.cs.vals[i].type != TT_NIL)
				given = true;
		if (!given)
			return tt_fail(err, TT_REQUIRED,
				       "class \"%s\": required param \"%s\" is missing or null",
				       cls->name, cls->params[k].name);
	}
	if (s->n_owned >= O.cfg->max_states)
		return tt_fail(err, TT_LIMIT, "this session owns too many states (--max-states %u)",
			       O.cfg->max_states);
	if (s->n_instances >= O.cfg->max_instances)
		return tt_fail(err, TT_LIMIT, "this session holds too many instances (--max-instances %u)",
			       O.cfg->max_instances);
	tt_state *st = tt_store_state_new(ce, s->id, &O.cs, tt_clock_now());
	tt_instance *in = tt_store_attach(st, s, NULL);
	tt_wire_state(&O.out, rid, in, NULL, false, 0, true);
	reply(c);
	tt_fanout_created(st);
	return 0;
}

/* History range options {last: n} / {since: seq} (or history/since on
 * attach): the events with seq > *from_seq; *complete when the history
 * still holds every one of them. */
static int history_range(const tt_state *st, const tt_value *opts, const char *last_key,
			 bool *want, uint64_t *from_seq, bool *complete, tt_error *err)
{
	const tt_value *last = opts ? tt_map_get(opts, last_key) : NULL;
	const tt_value *since = opts ? tt_map_get(opts, "since") : NULL;
	*want = false;
	*from_seq = st->seq;
	if (last && last->type != TT_NIL) {
		if (last->type != TT_INT || last->v.i < 0)
			return tt_fail(err, TT_BAD_REQUEST, "'%s' must be a non-negative integer", last_key);
		uint64_t n = (uint64_t)last->v.i;
		*from_seq = n >= st->seq ? 0 : st->seq - n;
		*want = true;
	}
	if (since && since->type != TT_NIL) {
		if (since->type != TT_INT || since->v.i < 0)
			return tt_fail(err, TT_BAD_REQUEST, "'since' must be a non-negative integer");
		uint64_t s = (uint64_t)since->v.i;
		*from_seq = s > st->seq ? st->seq : s;
		*want = true;
	}
	uint64_t first = tt_history_first_seq(&st->hist);
	*complete = *from_seq >= st->seq || (first && first <= *from_seq + 1);
	return 0;
}

int tt_op_attach(tt_client *c, uint64_t rid, const tt_value *clsv, const tt_value *sidv,
		 const tt_value *opts, tt_error *err)
{
	tt_session *s = c->session;
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0)
		return rc;
	tt_state *st;
	if (sidv->type == TT_NIL) {
		st = ce->first;
		if (!st)
			return tt_fail(err, TT_UNKNOWN_STATE, "class \"%s\" has no state",
				       ce->cls->name);
	} else {
		if (sidv->type != TT_INT)
			return tt_fail(err, TT_BAD_MESSAGE, "state id must be an integer or nil");
		uint64_t id = sidv->v.i > 0 ? (uint64_t)sidv->v.i : 0;
		st = id ? tt_store_state(id) : NULL;
		if (!st || st->ce != ce)
			return tt_fail(err, TT_UNKNOWN_STATE, "class \"%s\" has no state %llu",
				       ce->cls->name, (unsigned long long)id);
	}
	if (opts->type != TT_MAP && opts->type != TT_NIL)
		return tt_fail(err, TT_BAD_MESSAGE, "attach options must be a map");
	const tt_value *filter = opts->type == TT_MAP ? tt_map_get(opts, "filter") : NULL;
	if (filter && filter->type == TT_NIL)
		filter = NULL;
	tt_mask mask;
	if (filter && (rc = tt_store_filter(ce->cls, filter, &mask, err)) < 0)
		return rc;
	bool want, complete;
	uint64_t from;
	if ((rc = history_range(st, opts->type == TT_MAP ? opts : NULL, "history", &want, &from,
				&complete, err)) < 0)
		return rc;
	if (s->n_instances >= O.cfg->max_instances)
		return tt_fail(err, TT_LIMIT, "this session holds too many instances (--max-instances %u)",
			       O.cfg->max_instances);
	tt_instance *in = tt_store_attach(st, s, filter ? &mask : NULL);
	tt_wire_state(&O.out, rid, in, filter, want, from, complete);
	reply(c);
	return 0;
}

int tt_op_detach(tt_client *c, uint64_t rid, uint64_t id, tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	tt_store_detach(in);
	tt_wire_result_nil(&O.out, rid);
	reply(c);
	return 0;
}

int tt_op_delete(tt_client *c, uint64_t rid, uint64_t id, tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	tt_state *st = in->state;
	if (st->owner != c->session->id)
		return tt_fail(err, TT_NOT_OWNER, "class \"%s\": state %llu is not owned by this session",
			       st->ce->cls->name, (unsigned long long)st->id);
	tt_fanout_deleted(st, "deleted", c->session);
	tt_store_state_delete(st, "deleted");
	tt_wire_result_nil(&O.out, rid);
	reply(c);
	return 0;
}

/* ---- the update path -------------------------------------------------------- */

/* Keep O.cs as a set to apply at sync time at: the writer gets its RESULT,
 * every other subscriber a SCHEDULED (PROTOCOL.md §6a). */
static int schedule(tt_client *c, uint64_t rid, const tt_instance *in, double at, tt_error *err)
{
	tt_state *st = in->state;
	if (st->scheds.n >= MAX_SCHED_PER_STATE)
		return tt_fail(err, TT_LIMIT, "class \"%s\": state %llu has %d scheduled sets pending",
			       st->ce->cls->name, (unsigned long long)st->id, MAX_SCHED_PER_STATE);
	tt_sched *sc = tt_store_sched_add(st, at, c->session->id, &O.cs);
	tt_wire_set_scheduled(&O.out, rid, sc, tt_sub_view(&st->subs[in->sub]));
	reply(c);
	tt_fanout_scheduled(sc, c->session);
	return 0;
}

int tt_op_set(tt_client *c, uint64_t rid, uint64_t id, tt_value *updates, const tt_value *opts,
	      tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	tt_state *st = in->state;
	double at = -1;
	if (opts && opts->type != TT_NIL) {
		const tt_value *a = opts->type == TT_MAP ? tt_map_get(opts, "at") : NULL;
		if (opts->type != TT_MAP || (a && a->type != TT_NIL && (!tt_as_double(a, &at) ||
									!(at >= 0 && at < 1e15))))
			return tt_fail(err, TT_BAD_MESSAGE, "SET options must be a map {at: sync time}");
	}
	if ((rc = tt_store_validate(st->ce->cls, in, updates, &O.cs, err)) < 0)
		return rc;
	double now = tt_clock_now();
	if (at > now)
		return schedule(c, rid, in, at, err);
	uint32_t n = tt_store_apply(st, &O.cs, c->session->id, now);
	/* the writer's answer first, so its next set can come while the fan-out
	 * drains */
	tt_wire_set_done(&O.out, rid, st, &O.cs, tt_sub_view(&st->subs[in->sub]));
	reply(c);
	if (n)
		tt_fanout_update(st, &O.cs, c->session, 0);
	return 0;
}

void tt_ops_run_due(double now)
{
	tt_sched *sc;
	while ((sc = tt_sched_first()) && sc->at <= now) {
		tt_state *st = sc->st;
		const tt_class *cls = st->ce->cls;
		tt_value m;
		size_t off = 0;
		O.cs.n = 0;
		tt_arena_reset(&O.arena);
		/* the stored changes were validated when the set was made */
		if (tt_decode(O.dec, tt_buf_data(&sc->changes), sc->changes.len, &off, &O.arena, &m,
			      NULL) == 0 && m.type == TT_MAP) {
			for (uint32_t i = 0; i < m.len; i++) {
				int k = tt_class_param_index(cls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len);
				if (k < 0)
					continue;
				O.cs.idx[O.cs.n] = (uint32_t)k;
				O.cs.vals[O.cs.n++] = m.v.pairs[i].val;
			}
		}
		/* the values point into sc->changes: apply before forgetting it */
		if (tt_store_apply(st, &O.cs, sc->origin, sc->at))
			tt_fanout_update(st, &O.cs, NULL, sc->id);
		tt_store_sched_remove(sc);
	}
}

double tt_ops_next_due(void)
{
	const tt_sched *sc = tt_sched_first();
	return sc ? sc->at : -1;
}

/* ---- observe and history ----------------------------------------------------- */

int tt_op_observe(tt_client *c, uint64_t rid, const tt_value *clsv, bool on, tt_error *err)
{
	tt_class_entry *ce = NULL;
	if (clsv->type != TT_NIL) {
		int rc = class_of(clsv, &ce, err);
		if (rc < 0)
			return rc;
	}
	tt_store_observe(c->session, ce, on);
	if (on)
		tt_wire_states(&O.out, rid, ce);
	else
		tt_wire_result_nil(&O.out, rid);
	reply(c);
	return 0;
}

int tt_op_history(tt_client *c, uint64_t rid, uint64_t id, const tt_value *opts, tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	if (opts->type != TT_MAP)
		return tt_fail(err, TT_BAD_MESSAGE, "history options must be a map");
	const tt_state *st = in->state;
	bool want, complete;
	uint64_t from;
	if ((rc = history_range(st, opts, "last", &want, &from, &complete, err)) < 0)
		return rc;
	if (!want)
		return tt_fail(err, TT_BAD_REQUEST, "history needs 'last' or 'since'");
	tt_wire_history(&O.out, rid, st, from, complete, tt_instance_view(in));
	reply(c);
	return 0;
}
