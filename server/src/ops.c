/* SPDX-License-Identifier: MIT */
/* ops.c: the requests. An update's path through this file: tt_op_set checks
 * the instance and the options, the model validates and applies
 * (tt_store_validate, tt_store_apply), the writer gets its RESULT, and
 * fanout.c queues one UPDATE for every other subscriber. The turn's commit
 * (turn.c) then releases them all. */
#include "ops.h"

#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "db.h"
#include "codec.h"
#include "fanout.h"
#include "hooks.h"
#include "log.h"
#include "metrics.h"
#include "peers.h"
#include "protocol.h"
#include "resume.h"
#include "rights.h"
#include "roles.h"
#include "session.h"
#include "store.h"
#include "wire.h"

/* Pending scheduled sets allowed per state, and their bytes per state. */
#define MAX_SCHED_PER_STATE 1000
/* Classes one session may define over the wire. */
#define MAX_DEFINES_PER_SESSION 100

static struct {
	const tt_config *cfg;
	tt_buf out;       /* the reply being built */
	tt_buf job;       /* the values a hook job starts with */
	tt_changes cs;    /* the set being validated and applied */
	tt_decoder *dec;  /* scheduled sets' stored changes */
	tt_arena arena;
} O;

void tt_ops_init(const tt_config *cfg)
{
	O.cfg = cfg;
	tt_buf_init(&O.out, 0);
	tt_buf_init(&O.job, 0);
	tt_changes_init(&O.cs);
	O.dec = tt_decoder_new();
	tt_arena_init(&O.arena, 0);
}

void tt_ops_destroy(void)
{
	tt_buf_free(&O.out);
	tt_buf_free(&O.job);
	tt_changes_free(&O.cs);
	tt_decoder_free(O.dec);
	O.dec = NULL;
	tt_arena_destroy(&O.arena);
}

static void reply(tt_client *c)
{
	tt_client_reply(c, &O.out);
}

/* A hooked request of message type `type` refused after its hooks. */
static void reply_error(tt_client *c, int type, uint64_t rid, const tt_error *err)
{
	tt_metrics_refused((uint64_t)type, err->code);
	if (!c)
		return;
	TT_LOG_LIMITED(TT_LOG_INFO, "%s: refused: %s %s", tt_session_who(c), tt_code_name(err->code),
		       err->msg);
	tt_wire_error(&O.out, rid, err->code, err->msg);
	reply(c);
}

/* A hook job for the request (kind, session, rid, class, state), starting
 * with O.cs's values, or with st's values for a delete. */
static void submit(enum tt_hook_kind kind, tt_hook_done done, const tt_session *s, uint64_t rid,
		   tt_class_entry *ce, const tt_state *st, uint64_t instance, double at)
{
	tt_hook_job *job = tt_hooks_job_new();
	job->kind = kind;
	job->session = s->id;
	job->rid = rid;
	job->ce = ce;
	job->state = st ? st->id : 0;
	job->instance = instance;
	job->at = at;
	job->done = done;
	tt_buf_clear(&O.job);
	if (kind == TT_HOOK_DELETE)
		tt_store_encode_values(&O.job, st, NULL);
	else
		tt_store_changes_encode(&O.job, ce->cls, &O.cs);
	tt_hooks_submit(job, tt_buf_data(&O.job), O.job.len);
}

/* Why a hook job did not end DONE, as the requester's error. */
static void hook_error(tt_error *err, enum tt_hook_outcome outcome, const char *why)
{
	tt_fail(err, outcome == TT_HOOK_ABORT ? TT_ABORTED : TT_HOOK_FAILED, "%s", why);
}

/* A hooked request resumes after its hooks: the database may have started
 * failing meanwhile, and a change made now would be acknowledged unwritten
 * (handler.c refuses such requests up front; this is the same rule). */
static bool storage_failing(tt_error *err)
{
	const char *failing = tt_db_failing();
	if (failing)
		tt_fail(err, TT_STORAGE, "storage failed: %s; nothing was applied", failing);
	return failing != NULL;
}

static const char *role_name(const tt_session *s)
{
	return tt_roles_get(s->role)->name;
}

static int forbidden(tt_error *err, const tt_session *s, const char *what, const char *cls)
{
	return tt_fail(err, TT_FORBIDDEN, "role \"%s\" may not %s class \"%s\"", role_name(s),
		       what, cls);
}

/* May s do kind on ce (owner: it owns the state concerned)? */
static int may(const tt_session *s, const tt_class_entry *ce, enum tt_right_kind kind,
	       bool owner, tt_error *err)
{
	if (tt_rights_may(ce->rights, kind, s->role, owner))
		return 0;
	return forbidden(err, s, tt_right_name(kind), ce->cls->name);
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
	int role = tt_roles_auth(tt_map_get(opts, "role"), tt_map_get(opts, "roleToken"), err);
	if (role < 0)
		return role; /* logged with the ERROR reply (handler.c) */
	const tt_value *token = tt_map_get(opts, "token");
	tt_session *s = NULL;
	if (token && token->type == TT_STR) {
		s = tt_session_by_token(token->v.s, token->len);
		if (s && s->role != (uint32_t)role)
			s = NULL; /* a session is resumed in the role it was made in */
	}
	double now = tt_clock_now();
	char fresh[TT_TOKEN_HEX_LEN + 1];
	bool resumed = s != NULL;
	if (!s) {
		if (tt_session_count() >= O.cfg->max_sessions)
			return tt_fail(err, TT_LIMIT, "the server holds too many sessions (--max-sessions %u)",
				       O.cfg->max_sessions);
		if (!tt_peers_new_session(c->addr, tt_clock_mono()))
			return tt_fail(err, TT_LIMIT,
				       "too many new sessions from %s (--max-new-sessions-per-addr %u a minute)",
				       c->addr_text, O.cfg->max_new_sessions_per_addr);
		s = tt_session_new(now, fresh);
		s->role = (uint32_t)role;
	} else if (s->client && !s->client->capture) {
		/* the old connection is still open (a half-open socket the
		 * client gave up on, or someone else with the token): the new
		 * one takes the session over, and the old one is told */
		tt_log_info("%s: taken over from %s by a new connection", tt_session_name(s),
			    s->client->addr_text);
		s->client->session = NULL;
		tt_client_close(s->client, TT_CLOSE_TAKEN_OVER);
	} else {
		/* a connection still waiting for its welcome here is taken
		 * over the same way (cluster.h) */
		tt_client *waiting = tt_cluster_welcome_waiting(s);
		if (waiting) {
			waiting->session = NULL;
			tt_client_close(waiting, TT_CLOSE_TAKEN_OVER);
		}
	}
	/* several nodes: a session held by another node (or one that died)
	 * comes here with its instances and observes */
	bool claimed = resumed && tt_cluster_remote(s);
	if (claimed && tt_cluster_claim(s, err) < 0)
		return -TT_INTERNAL;
	tt_store_session_live(s, role_name(s));
	s->client = c;
	c->session = s;
	if (resumed) /* the token it presented */
		memcpy(fresh, token->v.s, TT_TOKEN_HEX_LEN);
	fresh[TT_TOKEN_HEX_LEN] = '\0';
	tt_log_info("%s: %s", tt_session_who(c), claimed ? "resumed from another node"
						       : resumed ? "resumed" : "new session");
	if (resumed)
		tt_metrics.sessions_resumed++;
	else
		tt_metrics.sessions_new++;
	/* what the other node wrote before the claim must be read here first,
	 * so that the catch-up is exactly what the client missed */
	if (claimed && tt_cluster_defer_welcome(c, rid, fresh, tt_map_get(opts, "seqs"))) {
		/* no push before the welcome and its catch-up: the session
		 * reads offline until then (cluster.c hands it c) */
		s->client = NULL;
		return 0;
	}
	tt_ops_welcome(c, rid, fresh, resumed, resumed ? tt_map_get(opts, "seqs") : NULL);
	return 0;
}

void tt_ops_welcome(tt_client *c, uint64_t rid, const char *token, bool resumed,
		    const tt_value *seqs)
{
	tt_session *s = c->session;
	tt_wire_welcome(&O.out, rid, s, token, role_name(s), tt_clock_now(), resumed,
			O.cfg->max_message, O.cfg->resume_window);
	reply(c);
	if (resumed)
		tt_resume_catch_up(s, seqs);
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
	tt_session *s = c->session;
	if (!tt_name_ok(name))
		return tt_fail(err, TT_BAD_MESSAGE, "class name must be a string of 1 to %d bytes "
			       "of printable UTF-8 (no control characters)", TT_MAX_NAME);
	if (!tt_rights_may_define(s->role))
		return tt_fail(err, TT_FORBIDDEN,
			       "role \"%s\" may not define classes (give the role \"define\": true in roles.json, or declare the class in a schema file)",
			       role_name(s));
	if (s->n_defined >= MAX_DEFINES_PER_SESSION && !tt_store_class(name->v.s, name->len))
		return tt_fail(err, TT_LIMIT, "this session defined %d classes already",
			       MAX_DEFINES_PER_SESSION);
	int rc = tt_store_define(name->v.s, name->len, desc, true, &created, err);
	if (rc < 0)
		return rc;
	s->n_defined += created;
	tt_wire_defined(&O.out, rid, created);
	reply(c);
	return 0;
}

int tt_op_describe(tt_client *c, uint64_t rid, const tt_value *clsv, tt_error *err)
{
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0 || (rc = may(c->session, ce, TT_RIGHT_ATTACH, false, err)) < 0)
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
		tt_fanout_deleted(ce->first, "class deleted", NULL, true);
		tt_store_state_delete(ce->first, "class deleted");
	}
	tt_hooks_class_gone(ce);
	tt_store_class_delete(ce);
	return 0;
}

int tt_op_delete_class(tt_client *c, uint64_t rid, const tt_value *clsv, tt_error *err)
{
	if (!tt_rights_admin(c->session->role))
		return tt_fail(err, TT_FORBIDDEN, "role \"%s\" may not delete classes (admins may)",
			       role_name(c->session));
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0)
		return rc;
	tt_log_info("%s: deleted class \"%s\"", tt_session_who(c), ce->cls->name);
	tt_ops_delete_class(ce->cls->name, err);
	tt_wire_result_nil(&O.out, rid);
	reply(c);
	return 0;
}

/* ---- states ------------------------------------------------------------------ */

/* Create a state of ce for s from O.cs (validated at create): limits, the
 * state, the creator's instance, its RESULT (c: NULL when it went), the
 * observers' notice. */
static int create_now(tt_client *c, tt_session *s, uint64_t rid, tt_class_entry *ce,
		      tt_error *err)
{
	const tt_class *cls = ce->cls;
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
	if (tt_store_state_count() >= O.cfg->max_total_states)
		return tt_fail(err, TT_LIMIT, "the server holds too many states (--max-total-states %u)",
			       O.cfg->max_total_states);
	tt_state *st = tt_store_state_new(ce, s->id, &O.cs, tt_clock_now());
	tt_instance *in = tt_store_attach(st, s, NULL);
	if (c) {
		tt_wire_state(&O.out, rid, in, NULL, false, 0, true);
		reply(c);
	}
	tt_fanout_created(st);
	return 0;
}

static void create_hooked(tt_hook_job *job, enum tt_hook_outcome outcome, tt_value *values,
			  const char *why)
{
	tt_session *s = tt_session_by_id(job->session);
	tt_client *c = s ? s->client : NULL;
	tt_error err;
	int rc = -1;
	if (outcome != TT_HOOK_DONE)
		hook_error(&err, outcome, why);
	else if (!s)
		return; /* its session ended: nobody to own the state */
	else if (storage_failing(&err))
		rc = -TT_STORAGE;
	else if ((rc = tt_store_validate(job->ce->cls, NULL, NULL, values, &O.cs, &err)) == 0)
		rc = create_now(c, s, job->rid, job->ce, &err);
	if (rc < 0)
		reply_error(c, TT_MSG_CREATE, job->rid, &err);
}

int tt_op_create(tt_client *c, uint64_t rid, const tt_value *clsv, tt_value *init, tt_error *err)
{
	tt_session *s = c->session;
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0 || (rc = may(s, ce, TT_RIGHT_CREATE, false, err)) < 0)
		return rc;
	tt_value empty = {.type = TT_MAP};
	if (init->type == TT_NIL)
		init = &empty;
	if ((rc = tt_store_validate(ce->cls, NULL, NULL, init, &O.cs, err)) < 0)
		return rc;
	if (tt_hooks_has(ce, TT_HOOK_CREATE)) {
		submit(TT_HOOK_CREATE, create_hooked, s, rid, ce, NULL, 0, -1);
		return 0;
	}
	return create_now(c, s, rid, ce, err);
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
	if (rc < 0 || (rc = may(s, ce, TT_RIGHT_ATTACH, false, err)) < 0)
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

static void delete_hooked(tt_hook_job *job, enum tt_hook_outcome outcome, tt_value *values,
			  const char *why)
{
	(void)outcome, (void)values, (void)why;
	tt_state *st = tt_store_state(job->state);
	tt_session *s = tt_session_by_id(job->session);
	tt_error err;
	if (storage_failing(&err)) {
		reply_error(s ? s->client : NULL, TT_MSG_DELETE, job->rid, &err);
		return;
	}
	if (st) {
		tt_cluster_deleting(st, s ? s->client : NULL, job->rid);
		tt_fanout_deleted(st, "deleted", s, false);
		tt_store_state_delete(st, "deleted");
	}
	tt_client *c = s ? s->client : NULL;
	if (c) {
		tt_wire_result_nil(&O.out, job->rid);
		reply(c);
	}
}

int tt_op_delete(tt_client *c, uint64_t rid, uint64_t id, tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	if (tt_cluster_elsewhere(in->state))
		return tt_cluster_delete(c, rid, in, err);
	return tt_ops_forwarded_delete(c, rid, in->state, err);
}

int tt_ops_forwarded_delete(tt_client *c, uint64_t rid, tt_state *st, tt_error *err)
{
	uint64_t id = 0; /* no instance: the hooks' view is everything */
	bool owner = st->owner == c->session->id;
	if (!tt_rights_may(st->ce->rights, TT_RIGHT_DELETE, c->session->role, owner)) {
		if (!owner && !(st->ce->rights && st->ce->rights->op[TT_RIGHT_DELETE].given))
			return tt_fail(err, TT_NOT_OWNER,
				       "class \"%s\": state %llu is not owned by this session",
				       st->ce->cls->name, (unsigned long long)st->id);
		return forbidden(err, c->session, "delete states of", st->ce->cls->name);
	}
	if (tt_hooks_has(st->ce, TT_HOOK_DELETE)) {
		/* the hooks see the final values; they cannot prevent it */
		submit(TT_HOOK_DELETE, delete_hooked, c->session, rid, st->ce, st, id, -1);
		return 0;
	}
	tt_cluster_deleting(st, c, rid);
	tt_fanout_deleted(st, "deleted", c->session, true);
	tt_store_state_delete(st, "deleted");
	tt_wire_result_nil(&O.out, rid);
	reply(c);
	return 0;
}

/* ---- the update path -------------------------------------------------------- */

/* Keep O.cs as a set to apply at sync time at, written by session s: the
 * writer gets its RESULT (c: NULL when it went; view: what it may see),
 * every other subscriber a SCHEDULED (PROTOCOL.md §6a). */
static int schedule(tt_client *c, tt_session *s, uint64_t rid, tt_state *st, const tt_mask *view,
		    double at, tt_error *err)
{
	if (at - tt_clock_now() > O.cfg->max_schedule_ahead)
		return tt_fail(err, TT_BAD_REQUEST,
			       "a set may be scheduled at most %g s ahead (--max-schedule-ahead)",
			       O.cfg->max_schedule_ahead);
	/* the default role's schedules have their own room: phones cannot fill
	 * a state's schedule for the performers */
	uint8_t pool = s->role != tt_roles_default();
	if (st->scheds.n_pool[pool] >= MAX_SCHED_PER_STATE)
		return tt_fail(err, TT_LIMIT, "class \"%s\": state %llu has %d scheduled sets pending from %s",
			       st->ce->cls->name, (unsigned long long)st->id, MAX_SCHED_PER_STATE,
			       pool ? "the performers' roles" : "the default role");
	if (s->n_sched >= O.cfg->max_schedules)
		return tt_fail(err, TT_LIMIT, "this session has %u scheduled sets pending (--max-schedules)",
			       s->n_sched);
	size_t bytes = 0;
	for (uint32_t i = 0; i < O.cs.n; i++)
		bytes += (O.cs.vals[i].type == TT_STR || O.cs.vals[i].type == TT_RAW ? O.cs.vals[i].len : 0) + 16;
	if (st->scheds.bytes_pool[pool] + bytes > O.cfg->max_state_bytes)
		return tt_fail(err, TT_LIMIT,
			       "class \"%s\": state %llu: its pending scheduled sets would take more than --max-state-bytes %u",
			       st->ce->cls->name, (unsigned long long)st->id, O.cfg->max_state_bytes);
	tt_sched *sc = tt_store_sched_add(st, at, s->id, pool, &O.cs);
	if (c && c->capture) /* made for another node's client: it answers it */
		tt_db_tag_sched(st->id, sc->id, rid, tt_cluster_requester(c), 0);
	if (c) {
		tt_wire_set_scheduled(&O.out, rid, sc, view);
		reply(c);
	}
	tt_fanout_scheduled(sc, s);
	return 0;
}

/* Apply O.cs (validated) to st now, or keep it for `at`, as written by
 * session s; its RESULT to c (NULL: it went) seen through view. */
static int set_now(tt_client *c, tt_session *s, uint64_t rid, tt_state *st, const tt_mask *view,
		   double at, tt_error *err)
{
	double now = tt_clock_now();
	if (at > now)
		return schedule(c, s, rid, st, view, at, err);
	uint32_t n = tt_store_apply(st, &O.cs, s->id, now);
	tt_metrics.sets_applied++;
	tt_metrics.updates += n > 0;
	if (n && c && c->capture) /* another node's client: answered there, in order */
		tt_db_tag_event(st->id, st->seq, rid, tt_cluster_requester(c), 0);
	/* the writer's answer first, so its next set can come while the fan-out
	 * drains */
	if (c) {
		tt_wire_set_done(&O.out, rid, st, &O.cs, view);
		reply(c);
	}
	if (n)
		tt_fanout_update(st, &O.cs, s, 0);
	return 0;
}

/* What the session may see of st (NULL: all), or of none when it is no
 * longer attached. */
static const tt_mask *view_of(const tt_state *st, uint64_t instance, uint64_t session)
{
	const tt_instance *in = tt_store_instance(instance);
	return in && in->state == st && in->session->id == session ? tt_sub_view(&st->subs[in->sub])
								    : NULL;
}

static void set_hooked(tt_hook_job *job, enum tt_hook_outcome outcome, tt_value *values,
		       const char *why)
{
	tt_session *s = tt_session_by_id(job->session);
	tt_client *c = s ? s->client : NULL;
	tt_state *st = tt_store_state(job->state);
	tt_error err;
	int rc = -1;
	if (outcome != TT_HOOK_DONE) {
		hook_error(&err, outcome, why);
	} else if (!st || !s) {
		return; /* gone meanwhile (a deletion fails the jobs first) */
	} else if (storage_failing(&err)) {
		rc = -TT_STORAGE;
	} else if ((rc = tt_store_validate(st->ce->cls, st, NULL, values, &O.cs, &err)) == 0) {
		/* what the hooks changed or added is theirs: no rights check */
		rc = set_now(c, s, job->rid, st, view_of(st, job->instance, s->id), job->at, &err);
	} else {
		tt_error e = err;
		tt_fail(&err, e.code, "after the hooks: %s", e.msg);
	}
	if (rc < 0)
		reply_error(c, TT_MSG_SET, job->rid, &err);
}

/* A set of st through instance in (its filter), seen by c through view. */
static int set_on(tt_client *c, uint64_t rid, tt_instance *in, const tt_mask *view,
		  tt_value *updates, const tt_value *opts, tt_error *err)
{
	tt_state *st = in->state;
	int rc;
	double at = -1;
	if (opts && opts->type != TT_NIL) {
		const tt_value *a = opts->type == TT_MAP ? tt_map_get(opts, "at") : NULL;
		/* an `at` in the past (even before the clock's 0, early in a
		 * run) is an ordinary set: only non-numbers are refused */
		if (opts->type != TT_MAP || (a && a->type != TT_NIL && (!tt_as_double(a, &at) ||
									!(at > -1e15 && at < 1e15))))
			return tt_fail(err, TT_BAD_MESSAGE, "SET options must be a map {at: sync time}");
	}
	if ((rc = tt_store_validate(st->ce->cls, st, in, updates, &O.cs, err)) < 0)
		return rc;
	bool owner = st->owner == c->session->id;
	for (uint32_t i = 0; i < O.cs.n; i++)
		if (!tt_rights_may_set(st->ce->rights, O.cs.idx[i], c->session->role, owner))
			return tt_fail(err, TT_FORBIDDEN, "role \"%s\" may not set param \"%s\" of class \"%s\"",
				       role_name(c->session), st->ce->cls->params[O.cs.idx[i]].name,
				       st->ce->cls->name);
	if (tt_hooks_has(st->ce, TT_HOOK_UPDATE)) {
		/* scheduled sets go through the hooks when they are made */
		submit(TT_HOOK_UPDATE, set_hooked, c->session, rid, st->ce, st, in->id, at);
		return 0;
	}
	return set_now(c, c->session, rid, st, view, at, err);
}

int tt_op_set(tt_client *c, uint64_t rid, uint64_t id, tt_value *updates, const tt_value *opts,
	      tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	/* several nodes: the node that writes the state decides (cluster.h) */
	if (tt_cluster_elsewhere(in->state))
		return tt_cluster_set(c, rid, in, updates, opts, err);
	return set_on(c, rid, in, tt_sub_view(&in->state->subs[in->sub]), updates, opts, err);
}

int tt_ops_forwarded_set(tt_client *c, uint64_t rid, tt_state *st, const tt_mask *filter,
			 tt_value *updates, const tt_value *opts, tt_error *err)
{
	tt_instance in = {.state = st, .session = c->session, .filtered = filter != NULL};
	if (filter)
		in.mask = *filter;
	return set_on(c, rid, &in, filter, updates, opts, err);
}

void tt_ops_run_due(double now)
{
	tt_sched *sc;
	while ((sc = tt_sched_first()) && sc->at <= now) {
		tt_state *st = sc->st;
		/* validated when the set was made; the values point into
		 * sc->changes: apply before forgetting it */
		tt_store_changes_load(st, tt_buf_data(&sc->changes), sc->changes.len, &O.cs);
		tt_metrics.sets_applied++;
		if (tt_store_apply(st, &O.cs, sc->origin, sc->at)) {
			tt_metrics.updates++;
			/* other nodes tell their clients which schedule it was */
			tt_db_tag_event(st->id, st->seq, 0, 0, sc->id);
			tt_fanout_update(st, &O.cs, NULL, sc->id);
		}
		tt_store_sched_remove(sc);
	}
}

int tt_op_cancel(tt_client *c, uint64_t rid, uint64_t id, uint64_t sched, tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	if (tt_cluster_elsewhere(in->state))
		return tt_cluster_cancel(c, rid, in, sched, err);
	return tt_ops_forwarded_cancel(c, rid, in->state, sched, err);
}

int tt_ops_forwarded_cancel(tt_client *c, uint64_t rid, tt_state *st, uint64_t sched,
			    tt_error *err)
{
	tt_sched *sc = st->scheds.first;
	while (sc && sc->id != sched)
		sc = sc->next;
	if (!sc)
		return tt_fail(err, TT_UNKNOWN_SCHEDULE,
			       "class \"%s\": state %llu has no pending scheduled set %llu",
			       st->ce->cls->name, (unsigned long long)st->id, (unsigned long long)sched);
	tt_session *s = c->session;
	if (sc->origin != s->id && st->owner != s->id && !tt_rights_admin(s->role))
		return tt_fail(err, TT_FORBIDDEN,
			       "scheduled set %llu may be cancelled by its writer, the state's owner or an admin",
			       (unsigned long long)sched);
	tt_db_tag_sched(st->id, sc->id, rid, tt_cluster_requester(c), s->id);
	tt_fanout_cancelled(sc, s);
	tt_store_sched_remove(sc);
	tt_wire_result_nil(&O.out, rid);
	reply(c);
	return 0;
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
		if (rc < 0 || (on && (rc = may(c->session, ce, TT_RIGHT_ATTACH, false, err)) < 0))
			return rc;
	}
	tt_store_observe(c->session, ce, on);
	if (on)
		tt_wire_states(&O.out, rid, ce, c->session->role);
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

/* ---- hooks ------------------------------------------------------------------- */

int tt_op_hook(tt_client *c, uint64_t rid, const tt_value *clsv, const tt_value *kindv,
	       tt_error *err)
{
	if (!tt_rights_may_hook(c->session->role))
		return tt_fail(err, TT_FORBIDDEN,
			       "role \"%s\" may not register hooks (admins and roles with \"hooks\": true may)",
			       role_name(c->session));
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0)
		return rc;
	static const char *const kinds[TT_HOOK_N] = {"create", "update", "delete"};
	int kind = -1;
	for (int k = 0; k < TT_HOOK_N; k++)
		if (tt_str_eq(kindv, kinds[k]))
			kind = k;
	if (kind < 0)
		return tt_fail(err, TT_BAD_REQUEST, "a hook is \"create\", \"update\" or \"delete\"");
	uint64_t id = tt_hooks_add(c, ce, (enum tt_hook_kind)kind);
	/* several nodes: answered once every node has it */
	if (tt_cluster_hook_added(c, rid, id, ce, (enum tt_hook_kind)kind))
		return 0;
	tt_wire_hooked(&O.out, rid, id);
	reply(c);
	return 0;
}

int tt_op_unhook(tt_client *c, uint64_t rid, uint64_t hook, tt_error *err)
{
	if (!tt_hooks_remove(c, hook))
		return tt_fail(err, TT_BAD_REQUEST, "this connection has no hook %llu",
			       (unsigned long long)hook);
	tt_cluster_hook_removed(hook);
	tt_wire_result_nil(&O.out, rid);
	reply(c);
	return 0;
}
