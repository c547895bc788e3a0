/* SPDX-License-Identifier: MIT */
/* client.c: the protocol side of libtutti-client (PROTOCOL.md), with no
 * I/O: requests and their replies, the cache of attached states, pushes,
 * scheduled sets, resume, heartbeat and the clock estimator's pings. Every
 * value read from the network is type-checked here before use; sizes were
 * capped by the transport and by tt_decode. Behaviour follows web/tutti.js
 * (the reference client) where the protocol leaves a choice. */
#include "client_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "protocol.h"

enum req_kind {
	RK_HELLO, RK_DEFINE, RK_DESCRIBE, RK_CREATE, RK_ATTACH, RK_OBSERVE,
	RK_SET, RK_HISTORY, RK_DETACH, RK_DELETE
};

struct tt_req {
	uint32_t id;
	int kind;
	double deadline;     /* local time; INFINITY: none */
	tt_reply_fn done;
	void *user;
	tt_buf msg;          /* encoded request */
	uint64_t instance;   /* target instance (set, history, detach, delete) */
	tt_attach_opts ao;   /* create, attach: callbacks of the new instance */
	tt_obs *obs;         /* observe */
	double at;           /* set: the requested `at`, or NAN */
	tt_req *next;
};

/* ---- small helpers --------------------------------------------------- */

const char *tt_client_code_name(int code)
{
	switch (code) {
	case TT_DISCONNECTED: return "DISCONNECTED";
	case TT_TIMEOUT: return "TIMEOUT";
	case TT_DETACHED: return "DETACHED";
	case TT_CLOSED: return "CLOSED";
	case TT_USAGE: return "USAGE";
	default: return tt_code_name(code);
	}
}

void tt_core_log(tt_client *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (c->o.on_log)
		c->o.on_log(c, line, c->o.user);
}

static bool as_uint(const tt_value *v, uint64_t *out)
{
	if (!v)
		return false;
	if (v->type == TT_INT && v->v.i >= 0) {
		*out = (uint64_t)v->v.i;
		return true;
	}
	if (v->type == TT_UINT) {
		*out = v->v.u;
		return true;
	}
	return false;
}

static bool as_time(const tt_value *v, double *out)
{
	return v && tt_as_double(v, out) && isfinite(*out);
}

/* A NUL-terminated, printable copy of a short server string. */
static void copy_text(const tt_value *v, char *out, size_t cap, const char *dflt)
{
	if (!v || v->type != TT_STR || !tt_utf8_ok(v->v.s, v->len)) {
		snprintf(out, cap, "%s", dflt);
		return;
	}
	size_t n = v->len < cap - 1 ? v->len : cap - 1;
	if (n == 0) {
		snprintf(out, cap, "%s", dflt);
		return;
	}
	while (n > 0 && n < v->len && ((unsigned char)v->v.s[n] & 0xc0) == 0x80)
		n--; /* cut on a character boundary */
	memcpy(out, v->v.s, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20)
			out[i] = ' ';
}

/* Names reach the API as C strings: one with a NUL byte (valid UTF-8, and
 * accepted by the server) could not be named, so such a class is refused. */
static bool c_name_ok(const tt_value *v)
{
	return tt_name_ok(v) && !memchr(v->v.s, '\0', v->len);
}

static double now_local(void)
{
	return tt_clock_now();
}

/* Callbacks may run between enter and leave; the per-call scratch memory is
 * released when the outermost call leaves. */
static void enter(tt_client *c)
{
	c->depth++;
}

static void leave(tt_client *c)
{
	if (--c->depth == 0)
		tt_arena_reset(&c->scratch);
}

/* ---- output ---------------------------------------------------------- */

static void out_push(tt_client *c, const unsigned char *p, size_t n)
{
	if (c->out_n == c->out_cap) {
		c->out_cap = c->out_cap ? c->out_cap * 2 : 16;
		c->out_len = tt_realloc(c->out_len, c->out_cap * sizeof(*c->out_len));
	}
	c->out_len[c->out_n++] = (uint32_t)n;
	tt_buf_append(&c->out, p, n);
}

static void out_clear(tt_client *c)
{
	tt_buf_clear(&c->out);
	c->out_off = 0;
	c->out_n = c->out_head = 0;
}

bool tt_core_has_output(const tt_client *c)
{
	return c->out_head < c->out_n;
}

size_t tt_core_take_output(tt_client *c, size_t max, const unsigned char **out)
{
	size_t n = 0;
	while (c->out_head < c->out_n && (n == 0 || n + c->out_len[c->out_head] <= max))
		n += c->out_len[c->out_head++];
	*out = tt_buf_data(&c->out) + c->out_off;
	c->out_off += n;
	if (c->out_head == c->out_n) {
		/* *out stays valid: clearing only resets the lengths */
		tt_buf_clear(&c->out);
		c->out_off = 0;
		c->out_n = c->out_head = 0;
	}
	return n;
}

static void send_ping(tt_client *c, uint32_t id, double t)
{
	tt_buf b;
	tt_buf_init(&b, 0);
	tt_enc_array(&b, 3);
	tt_enc_uint(&b, TT_MSG_PING);
	tt_enc_uint(&b, id);
	tt_enc_float(&b, t);
	out_push(c, tt_buf_data(&b), b.len);
	tt_buf_free(&b);
}

/* [18, status, offsetError, drift, roundTrip] once a series ended, at
 * most once a second (a late one waits for its second): a few numbers now
 * and then, so the operator sees which machines play in time. Each value
 * is clipped to the range the server accepts. */
static double clip(double v, double lo, double hi)
{
	return !isfinite(v) ? hi : v < lo ? lo : v > hi ? hi : v;
}

static double sync_report_due(tt_client *c, double now)
{
	if (!c->sync_report_due || !c->o.sync_reports)
		return INFINITY;
	if (now < c->sync_report_at + 1)
		return c->sync_report_at + 1;
	c->sync_report_due = false;
	struct tt_sync_report r;
	tt_sync_report(&c->sync, now, &r);
	if ((r.status != TT_SYNC_STARTUP && r.status != TT_SYNC_TRAINING && r.status != TT_SYNC_SYNC) ||
	    isnan(r.offset_error))
		return INFINITY;
	c->sync_report_at = now;
	tt_buf b;
	tt_buf_init(&b, 0);
	tt_enc_array(&b, 5);
	tt_enc_uint(&b, TT_MSG_SYNC_REPORT);
	tt_enc_str(&b, tt_sync_status_name(r.status));
	tt_enc_float(&b, clip(r.offset_error, 0, 3600));
	tt_enc_float(&b, clip(r.drift, -1, 1));
	tt_enc_float(&b, clip(r.round_trip_mean, 0, 3600));
	out_push(c, tt_buf_data(&b), b.len);
	tt_buf_free(&b);
	tt_transport_kick(c);
	return INFINITY;
}

/* ---- requests -------------------------------------------------------- */

static uint32_t next_req_id(tt_client *c)
{
	c->next_req = c->next_req == UINT32_MAX ? 1 : c->next_req + 1;
	return c->next_req;
}

/* A request with its header [type, reqId] encoded and n_more fields to
 * follow. */
static tt_req *req_new(tt_client *c, int kind, int type, uint32_t n_more, tt_reply_fn done,
		       void *user)
{
	tt_req *r = tt_calloc(1, sizeof(*r));
	r->id = next_req_id(c);
	r->kind = kind;
	r->done = done;
	r->user = user;
	r->at = NAN;
	r->deadline = c->o.request_timeout >= 0 ? now_local() + c->o.request_timeout : INFINITY;
	tt_buf_init(&r->msg, 0);
	tt_enc_array(&r->msg, 2 + n_more);
	tt_enc_uint(&r->msg, (uint64_t)type);
	tt_enc_uint(&r->msg, r->id);
	return r;
}

static void req_free(tt_req *r)
{
	if (!r)
		return;
	tt_buf_free(&r->msg);
	free(r);
}

static void flush_unsent(tt_client *c)
{
	if (!c->connected || !c->hello_done)
		return;
	bool any = false;
	while (c->unsent) {
		tt_req *r = c->unsent;
		c->unsent = r->next;
		if (!c->unsent)
			c->unsent_tail = NULL;
		out_push(c, tt_buf_data(&r->msg), r->msg.len);
		r->next = NULL;
		if (c->sent_tail)
			c->sent_tail->next = r;
		else
			c->sent = r;
		c->sent_tail = r;
		any = true;
	}
	if (any)
		tt_transport_kick(c);
}

/* Queue r (sent at once when the session is open). Returns 0, or -TT_LIMIT
 * when it is larger than the server accepts. */
static int req_submit(tt_client *c, tt_req *r, tt_error *err)
{
	if (r->msg.len > c->server_max_message) {
		int rc = tt_fail(err, TT_LIMIT, "request of %zu bytes is larger than the server accepts (%u)",
				 r->msg.len, c->server_max_message);
		req_free(r);
		return rc;
	}
	if (c->unsent_tail)
		c->unsent_tail->next = r;
	else
		c->unsent = r;
	c->unsent_tail = r;
	flush_unsent(c);
	tt_transport_kick(c); /* the request's deadline is a timer */
	return 0;
}

static void req_finish(tt_client *c, tt_req *r, const tt_reply *rep)
{
	if (r->done)
		r->done(c, rep, r->user);
	req_free(r);
}

static void req_fail(tt_client *c, tt_req *r, int code, const char *msg)
{
	tt_reply rep = {.code = code, .message = msg};
	tt_value nil = tt_nil();
	rep.result = &nil;
	if (r->kind == RK_OBSERVE && r->obs && !r->obs->active)
		r->obs->dead = true; /* an observe that never started is forgotten */
	req_finish(c, r, &rep);
}

/* Unlink and return the sent request with this id, or NULL. */
static tt_req *take_sent(tt_client *c, uint64_t id)
{
	tt_req *prev = NULL;
	for (tt_req *r = c->sent; r; prev = r, r = r->next) {
		if (r->id != id)
			continue;
		if (prev)
			prev->next = r->next;
		else
			c->sent = r->next;
		if (c->sent_tail == r)
			c->sent_tail = prev;
		r->next = NULL;
		return r;
	}
	return NULL;
}

static void fail_list(tt_client *c, tt_req **head, tt_req **tail, int code, const char *msg,
		      bool only_instances)
{
	tt_req *keep = NULL, *keep_tail = NULL;
	tt_req *r = *head;
	*head = *tail = NULL;
	while (r) {
		tt_req *next = r->next;
		r->next = NULL;
		if (only_instances && !r->instance) {
			if (keep_tail)
				keep_tail->next = r;
			else
				keep = r;
			keep_tail = r;
		} else {
			req_fail(c, r, code, msg);
		}
		r = next;
	}
	/* requests queued by the callbacks above go after the kept ones */
	if (keep) {
		keep_tail->next = *head;
		if (!*head)
			*tail = keep_tail;
		*head = keep;
	}
}

/* ---- records and instances -------------------------------------------- */

static tt_rec *find_rec(tt_client *c, uint64_t id)
{
	for (tt_rec *r = c->recs; r; r = r->next)
		if (r->id == id && !r->gone)
			return r;
	return NULL;
}

static tt_state *find_instance(tt_client *c, uint64_t instance)
{
	for (tt_rec *r = c->recs; r; r = r->next)
		for (tt_state *s = r->instances; s; s = s->next)
			if (s->instance == instance && !s->gone)
				return s;
	return NULL;
}

static void sched_free(tt_sched *e)
{
	tt_arena_destroy(&e->arena);
	free(e);
}

static void rec_free(tt_rec *r)
{
	if (!r)
		return;
	if (r->cls)
		for (uint32_t i = 0; i < r->cls->n_params; i++)
			tt_arena_destroy(&r->val_arena[i]);
	free(r->vals);
	free(r->val_arena);
	while (r->scheds) {
		tt_sched *e = r->scheds;
		r->scheds = e->next;
		sched_free(e);
	}
	tt_class_free(r->cls);
	free(r->class_name);
	free(r);
}

static void rec_unlink(tt_client *c, tt_rec *rec)
{
	if (rec->gone)
		return;
	rec->gone = true;
	for (tt_rec **pp = &c->recs; *pp; pp = &(*pp)->next) {
		if (*pp == rec) {
			*pp = rec->next;
			break;
		}
	}
	rec->next = c->rec_graveyard;
	c->rec_graveyard = rec;
}

/* The instance is gone: unlink it, tell its owner, free it at the next
 * reap. The record goes too when it was its last instance. */
static void instance_gone(tt_client *c, tt_state *s, const char *reason)
{
	if (s->gone)
		return;
	s->gone = true;
	tt_rec *rec = s->rec;
	for (tt_state **pp = &rec->instances; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	s->next = c->graveyard;
	c->graveyard = s;
	if (!rec->instances)
		rec_unlink(c, rec);
	if (s->o.on_detach)
		s->o.on_detach(s, reason, s->o.user);
}

static void rec_gone(tt_client *c, tt_rec *rec, const char *reason)
{
	rec_unlink(c, rec);
	while (rec->instances)
		instance_gone(c, rec->instances, reason);
}

void tt_core_reap(tt_client *c)
{
	if (c->depth > 0)
		return;
	while (c->graveyard) {
		tt_state *s = c->graveyard;
		c->graveyard = s->next;
		free(s->visible);
		free(s);
	}
	while (c->rec_graveyard) {
		tt_rec *r = c->rec_graveyard;
		c->rec_graveyard = r->next;
		rec_free(r);
	}
	for (tt_obs **pp = &c->obs; *pp;) {
		tt_obs *o = *pp;
		if (o->dead) {
			*pp = o->next;
			free(o->class_name);
			free(o);
		} else {
			pp = &o->next;
		}
	}
}

static void set_val(tt_rec *rec, uint32_t i, const tt_value *v)
{
	tt_arena_reset(&rec->val_arena[i]);
	tt_value_copy(&rec->val_arena[i], v, &rec->vals[i]);
}

/* Validate and coerce a value from the server with the class's own rules,
 * so an application reads a float param as a float whatever the wire
 * carried. The copy lives in the scratch arena. */
static bool coerce_in(tt_client *c, const tt_rec *rec, uint32_t i, const tt_value *in, tt_value *out)
{
	tt_value tmp;
	tt_error err;
	tt_value_copy(&c->scratch, in, &tmp);
	if (tt_param_coerce(rec->cls, &rec->cls->params[i], &tmp, out, &err) < 0) {
		tt_core_log(c, "server sent an invalid value, ignored: %s", err.msg);
		return false;
	}
	return true;
}

/* Apply changes (a map from the server, or coerced locally) to the record
 * and call the listeners of every instance that sees one of them. diff:
 * skip values equal to the current ones (a scheduled set applied late or a
 * snapshot); trusted: the values were coerced already. */
static void apply_changes(tt_client *c, tt_rec *rec, const tt_value *changes,
			  const tt_update_info *info, bool diff, bool trusted)
{
	if (!changes || changes->type != TT_MAP || rec->gone)
		return;
	uint32_t n = changes->len, m = 0;
	uint32_t *idx = tt_arena_alloc(&c->scratch, sizeof(uint32_t) * (n ? n : 1));
	tt_value *nv = tt_arena_alloc(&c->scratch, sizeof(tt_value) * (n ? n : 1));
	tt_value *ov = tt_arena_alloc(&c->scratch, sizeof(tt_value) * (n ? n : 1));
	for (uint32_t k = 0; k < n; k++) {
		const tt_pair *kv = &changes->v.pairs[k];
		if (kv->key.type != TT_STR)
			continue;
		int i = tt_class_param_index(rec->cls, kv->key.v.s, kv->key.len);
		if (i < 0)
			continue;
		bool dup = false;
		for (uint32_t j = 0; j < m; j++)
			dup |= idx[j] == (uint32_t)i;
		if (dup)
			continue;
		tt_value v;
		if (trusted)
			v = kv->val;
		else if (!coerce_in(c, rec, (uint32_t)i, &kv->val, &v))
			continue;
		const tt_param *p = &rec->cls->params[i];
		if (diff && !p->event && p->filter_change && tt_value_equal(&rec->vals[i], &v))
			continue;
		idx[m] = (uint32_t)i;
		nv[m] = v;
		tt_value_copy(&c->scratch, &rec->vals[i], &ov[m]);
		set_val(rec, (uint32_t)i, &v);
		m++;
	}
	if (m == 0)
		return;
	/* every instance gets the changes its filter lets through */
	tt_value mn = {.type = TT_MAP}, mo = {.type = TT_MAP};
	mn.v.pairs = tt_arena_alloc(&c->scratch, sizeof(tt_pair) * m);
	mo.v.pairs = tt_arena_alloc(&c->scratch, sizeof(tt_pair) * m);
	enter(c);
	for (tt_state *s = rec->instances, *next; s; s = next) {
		next = s->next;
		if (s->gone || !s->o.on_update)
			continue;
		uint32_t k = 0;
		for (uint32_t j = 0; j < m; j++) {
			if (!s->visible[idx[j]])
				continue;
			const tt_param *p = &rec->cls->params[idx[j]];
			mn.v.pairs[k].key = tt_strn(p->name, p->name_len);
			mn.v.pairs[k].val = nv[j];
			mo.v.pairs[k].key = mn.v.pairs[k].key;
			mo.v.pairs[k].val = ov[j];
			k++;
		}
		if (!k)
			continue;
		mn.len = mo.len = k;
		s->o.on_update(s, &mn, &mo, info, s->o.user);
	}
	leave(c);
	/* event params are volatile: nil again once told */
	if (!rec->gone)
		for (uint32_t j = 0; j < m; j++)
			if (rec->cls->params[idx[j]].event) {
				tt_value nil = tt_nil();
				set_val(rec, idx[j], &nil);
			}
}

/* Take values without telling the listeners (a scheduled set already
 * applied locally, confirmed by the server). */
static void take_silently(tt_client *c, tt_rec *rec, const tt_value *changes)
{
	if (!changes || changes->type != TT_MAP)
		return;
	for (uint32_t k = 0; k < changes->len; k++) {
		const tt_pair *kv = &changes->v.pairs[k];
		if (kv->key.type != TT_STR)
			continue;
		int i = tt_class_param_index(rec->cls, kv->key.v.s, kv->key.len);
		tt_value v;
		if (i < 0 || !coerce_in(c, rec, (uint32_t)i, &kv->val, &v))
			continue;
		if (rec->cls->params[i].event)
			v = tt_nil();
		set_val(rec, (uint32_t)i, &v);
	}
}

/* ---- scheduled sets (PROTOCOL.md §6a) ---------------------------------- */

static tt_sched *find_sched(tt_rec *rec, uint64_t id)
{
	for (tt_sched *e = rec->scheds; e; e = e->next)
		if (e->id == id)
			return e;
	return NULL;
}

static void drop_sched(tt_rec *rec, tt_sched *e)
{
	for (tt_sched **pp = &rec->scheds; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			sched_free(e);
			return;
		}
	}
}

/* At most as many pending schedules per state as the server keeps. */
#define SCHED_MAX 1000

static void add_sched(tt_client *c, tt_rec *rec, uint64_t id, double at, const tt_value *changes)
{
	if (!changes || changes->type != TT_MAP || !isfinite(at) || find_sched(rec, id))
		return;
	unsigned n = 0;
	for (tt_sched *e = rec->scheds; e; e = e->next)
		n++;
	if (n >= SCHED_MAX) {
		tt_core_log(c, "state %llu: more than %d pending schedules, schedule %llu ignored",
			    (unsigned long long)rec->id, SCHED_MAX, (unsigned long long)id);
		return;
	}
	tt_sched *e = tt_calloc(1, sizeof(*e));
	e->id = id;
	e->at = at;
	tt_arena_init(&e->arena, 1024);
	tt_value_copy(&e->arena, changes, &e->changes);
	e->next = rec->scheds;
	rec->scheds = e;
	enter(c);
	for (tt_state *s = rec->instances, *next; s; s = next) {
		next = s->next;
		if (!s->gone && s->o.on_scheduled)
			s->o.on_scheduled(s, id, at, changes, s->o.user);
	}
	leave(c);
	tt_transport_kick(c); /* a new timer */
}

static void run_sched(tt_client *c, tt_rec *rec, tt_sched *e, double now)
{
	e->applied = true;
	/* the server sends no UPDATE when nothing changed at `at`: forget it then */
	e->forget_at = now + 60;
	tt_update_info info = {.state_id = rec->id, .seq = rec->seq, .time = e->at,
			       .source = TT_SRC_SCHEDULED, .sched_id = e->id};
	apply_changes(c, rec, &e->changes, &info, true, false);
}

/* ---- records from ATTACH / CREATE results ----------------------------- */

static int rec_from_result(tt_client *c, const tt_value *r, tt_rec **out, tt_error *err)
{
	uint64_t state, owner = 0, seq = 0;
	double time = 0;
	const tt_value *cls = tt_map_get(r, "class"), *desc = tt_map_get(r, "description");
	if (!as_uint(tt_map_get(r, "state"), &state) || !cls || !c_name_ok(cls) || !desc)
		return tt_fail(err, TT_BAD_MESSAGE, "malformed attach result from the server");
	as_uint(tt_map_get(r, "owner"), &owner);
	as_uint(tt_map_get(r, "seq"), &seq);
	as_time(tt_map_get(r, "time"), &time);
	tt_rec *rec = find_rec(c, state);
	if (rec) {
		if (seq > rec->seq) {
			rec->seq = seq;
			rec->time = time;
		}
		*out = rec;
		return 0;
	}
	tt_class *k;
	tt_error e2;
	if (tt_class_create(cls->v.s, cls->len, desc, &k, &e2) < 0)
		return tt_fail(err, TT_BAD_MESSAGE, "server sent an invalid description: %s", e2.msg);
	for (uint32_t i = 0; i < k->n_params; i++) {
		if (memchr(k->params[i].name, '\0', k->params[i].name_len)) {
			tt_class_free(k);
			return tt_fail(err, TT_BAD_MESSAGE, "class \"%.*s\": a param name has a NUL byte",
				       (int)cls->len, cls->v.s);
		}
	}
	rec = tt_calloc(1, sizeof(*rec));
	rec->id = state;
	rec->class_name = tt_strndup(cls->v.s, cls->len);
	rec->cls = k;
	rec->owner = owner;
	rec->seq = seq;
	rec->time = time;
	rec->vals = tt_calloc(k->n_params, sizeof(tt_value));
	rec->val_arena = tt_calloc(k->n_params, sizeof(tt_arena));
	for (uint32_t i = 0; i < k->n_params; i++) {
		tt_arena_init(&rec->val_arena[i], 256);
		set_val(rec, i, &k->params[i].def);
	}
	const tt_value *vals = tt_map_get(r, "values");
	if (vals && vals->type == TT_MAP) {
		for (uint32_t j = 0; j < vals->len; j++) {
			const tt_pair *kv = &vals->v.pairs[j];
			if (kv->key.type != TT_STR)
				continue;
			int i = tt_class_param_index(k, kv->key.v.s, kv->key.len);
			tt_value v;
			if (i >= 0 && coerce_in(c, rec, (uint32_t)i, &kv->val, &v))
				set_val(rec, (uint32_t)i, &v);
		}
	}
	rec->next = c->recs;
	c->recs = rec;
	*out = rec;
	return 0;
}

static tt_state *instance_new(tt_client *c, tt_rec *rec, uint64_t instance, bool owner,
			      const tt_value *filter, const tt_attach_opts *ao)
{
	tt_state *s = tt_calloc(1, sizeof(*s));
	s->c = c;
	s->rec = rec;
	s->instance = instance;
	s->owner = owner;
	if (ao)
		s->o = *ao;
	s->o.filter = NULL;
	s->o.n_filter = 0;
	uint32_t n = rec->cls->n_params;
	s->visible = tt_calloc(n ? n : 1, sizeof(bool));
	bool all = !filter || filter->type != TT_ARRAY;
	for (uint32_t i = 0; i < n; i++)
		s->visible[i] = all;
	if (!all) {
		for (uint32_t j = 0; j < filter->len; j++) {
			const tt_value *f = &filter->v.items[j];
			int i = f->type == TT_STR ? tt_class_param_index(rec->cls, f->v.s, f->len) : -1;
			if (i >= 0)
				s->visible[i] = true;
		}
	}
	s->next = rec->instances;
	rec->instances = s;
	return s;
}

static void on_attach_result(tt_client *c, tt_req *q, const tt_value *r)
{
	tt_error err;
	tt_rec *rec = NULL;
	uint64_t instance = 0;
	tt_reply rep = {.result = r, .message = ""};
	if (r->type != TT_MAP || !as_uint(tt_map_get(r, "instance"), &instance) ||
	    rec_from_result(c, r, &rec, &err) < 0) {
		if (r->type != TT_MAP || !tt_map_get(r, "instance"))
			tt_fail(&err, TT_BAD_MESSAGE, "malformed attach result from the server");
		rep.code = err.code;
		rep.message = err.msg;
		req_finish(c, q, &rep);
		return;
	}
	tt_state *s = instance_new(c, rec, instance, q->kind == RK_CREATE, tt_map_get(r, "filter"), &q->ao);
	rep.state = s;
	req_finish(c, q, &rep);
	/* pending schedules: after the reply, so on_scheduled sees a known instance */
	const tt_value *sc = tt_map_get(r, "scheduled");
	if (sc && sc->type == TT_ARRAY && !s->gone) {
		for (uint32_t i = 0; i < sc->len; i++) {
			const tt_value *e = &sc->v.items[i];
			uint64_t id;
			double at;
			if (e->type == TT_ARRAY && e->len >= 3 && as_uint(&e->v.items[0], &id) &&
			    as_time(&e->v.items[1], &at))
				add_sched(c, rec, id, at, &e->v.items[2]);
		}
	}
}

/* ---- observe ------------------------------------------------------------ */

static void notify(tt_client *c, tt_obs *only, const char *kind, const tt_value *cls,
		   uint64_t state, uint64_t owner)
{
	if (!c_name_ok(cls))
		return;
	char name[TT_MAX_NAME + 1];
	memcpy(name, cls->v.s, cls->len);
	name[cls->len] = '\0';
	enter(c);
	for (tt_obs *o = c->obs; o; o = o->next) {
		if ((only && o != only) || !o->active || o->dead)
			continue;
		if (o->class_name && strcmp(o->class_name, name) != 0)
			continue;
		o->fn(c, kind, name, state, owner, o->user);
	}
	leave(c);
}

static void on_observe_result(tt_client *c, tt_req *q, const tt_value *r)
{
	tt_obs *o = q->obs;
	o->active = true;
	const tt_value *states = r->type == TT_MAP ? tt_map_get(r, "states") : NULL;
	if (states && states->type == TT_ARRAY) {
		for (uint32_t i = 0; i < states->len; i++) {
			const tt_value *e = &states->v.items[i];
			uint64_t id, owner;
			if (e->type == TT_ARRAY && e->len >= 3 && as_uint(&e->v.items[1], &id) &&
			    as_uint(&e->v.items[2], &owner))
				notify(c, o, "create", &e->v.items[0], id, owner);
		}
	}
	tt_reply rep = {.result = r, .message = ""};
	req_finish(c, q, &rep);
}

static void send_observe(tt_client *c, tt_obs *o, tt_reply_fn done, void *user)
{
	tt_req *q = req_new(c, RK_OBSERVE, TT_MSG_OBSERVE, 1, done, user);
	if (o->class_name)
		tt_enc_str(&q->msg, o->class_name);
	else
		tt_enc_nil(&q->msg);
	q->obs = o;
	req_submit(c, q, NULL); /* an observe is small: never over the limit */
}

/* ---- session --------------------------------------------------------- */

static void set_status(tt_client *c, tt_status st)
{
	if (c->status == st)
		return;
	c->status = st;
	if (c->o.on_status) {
		enter(c);
		c->o.on_status(c, st, c->o.user);
		leave(c);
	}
}

static void publish_clock(tt_client *c)
{
	struct tt_sync_report rep;
	tt_sync_report(&c->sync, now_local(), &rep);
	bool ready = rep.status == TT_SYNC_TRAINING || rep.status == TT_SYNC_SYNC;
	c->clock->dirty = !tt_clock_publish(c->clock, &c->sync, ready);
}

/* The server does not know our old session: every instance is gone and the
 * observes are renewed (their notices then tell the states again). */
static void session_lost(tt_client *c)
{
	enter(c);
	while (c->recs)
		rec_gone(c, c->recs, "session lost");
	fail_list(c, &c->unsent, &c->unsent_tail, TT_DETACHED, "session lost", true);
	for (tt_obs *o = c->obs; o; o = o->next)
		if (o->active && !o->dead) {
			o->active = false;
			send_observe(c, o, NULL, NULL);
		}
	leave(c);
}

static void on_welcome(tt_client *c, tt_req *q, const tt_value *w)
{
	uint64_t session, maxmsg;
	const tt_value *token = tt_map_get(w, "token"), *resumed = tt_map_get(w, "resumed");
	double t;
	if (w->type != TT_MAP || !as_uint(tt_map_get(w, "session"), &session) || !token ||
	    token->type != TT_STR || token->len == 0 || token->len > 1024) {
		tt_core_log(c, "malformed HELLO reply from the server; reconnecting");
		req_free(q);
		tt_transport_drop(c);
		return;
	}
	bool was = c->token != NULL;
	bool res = resumed && resumed->type == TT_BOOL && resumed->v.b;
	free(c->token);
	c->token = tt_strndup(token->v.s, token->len);
	c->session = session;
	if (as_uint(tt_map_get(w, "maxMessage"), &maxmsg) && maxmsg >= 1024)
		c->server_max_message = maxmsg > UINT32_MAX ? UINT32_MAX : (uint32_t)maxmsg;
	if (as_time(tt_map_get(w, "time"), &t)) {
		tt_sync_hint(&c->sync, t, now_local());
		publish_clock(c);
	}
	c->hello_done = true;
	c->attempt = 0;
	req_free(q);
	enter(c);
	if (was && !res)
		session_lost(c);
	set_status(c, TT_STATUS_OPEN);
	c->ever_open = true;
	flush_unsent(c);
	if (c->o.on_open)
		c->o.on_open(c, was && res, c->o.user);
	leave(c);
}

void tt_core_on_open(tt_client *c)
{
	c->connected = true;
	c->hello_done = false;
	c->heartbeat_out = false;
	c->last_recv = now_local();
	out_clear(c);
	/* [1, reqId, {version, token?, seqs?}] */
	tt_req *q = req_new(c, RK_HELLO, TT_MSG_HELLO, 1, NULL, NULL);
	unsigned n = 0;
	for (tt_rec *r = c->recs; r; r = r->next)
		n++;
	tt_enc_map(&q->msg, c->token ? 3 : 1);
	tt_enc_str(&q->msg, "version");
	tt_enc_uint(&q->msg, TT_PROTOCOL_VERSION);
	if (c->token) {
		tt_enc_str(&q->msg, "token");
		tt_enc_str(&q->msg, c->token);
		tt_enc_str(&q->msg, "seqs");
		tt_enc_map(&q->msg, n);
		for (tt_rec *r = c->recs; r; r = r->next) {
			tt_enc_uint(&q->msg, r->id);
			tt_enc_uint(&q->msg, r->seq);
		}
	}
	out_push(c, tt_buf_data(&q->msg), q->msg.len);
	q->next = NULL;
	if (c->sent_tail)
		c->sent_tail->next = q;
	else
		c->sent = q;
	c->sent_tail = q;
	tt_transport_kick(c);
}

static double backoff(tt_client *c)
{
	double base = c->o.backoff_min * pow(2, c->attempt < 30 ? c->attempt : 30);
	if (base > c->o.backoff_max)
		base = c->o.backoff_max;
	/* jitter, so a room of clients does not come back in lockstep */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double r = (double)(((unsigned long)ts.tv_nsec * 2654435761u) % 1000) / 1000.0;
	return base / 2 + r * base / 2;
}

void tt_core_on_closed(tt_client *c, int code, const char *why)
{
	bool was_connected = c->connected;
	c->connected = false;
	c->hello_done = false;
	out_clear(c);
	enter(c);
	char msg[160];
	snprintf(msg, sizeof(msg), "connection lost (%d%s%s)", code, why && *why ? " " : "", why ? why : "");
	fail_list(c, &c->sent, &c->sent_tail, TT_DISCONNECTED, msg, false);
	if (c->status != TT_STATUS_CLOSED) {
		tt_core_log(c, "%s: %s", c->url, was_connected ? msg : (why && *why ? why : "cannot connect"));
		if (c->o.no_reconnect) {
			set_status(c, TT_STATUS_CLOSED);
			fail_list(c, &c->unsent, &c->unsent_tail, TT_DISCONNECTED, msg, false);
		} else {
			c->reconnect_at = now_local() + backoff(c);
			c->attempt++;
			set_status(c, c->ever_open ? TT_STATUS_RECONNECTING : TT_STATUS_CONNECTING);
		}
	}
	leave(c);
	tt_transport_kick(c);
}

/* ---- dispatch ------------------------------------------------------------ */

static void on_result(tt_client *c, const tt_value *m)
{
	uint64_t id;
	if (m->len < 3 || !as_uint(&m->v.items[1], &id))
		return;
	tt_req *q = take_sent(c, id);
	if (!q)
		return;
	const tt_value *r = &m->v.items[2];
	tt_reply rep = {.result = r, .message = ""};
	switch (q->kind) {
	case RK_HELLO:
		on_welcome(c, q, r);
		return;
	case RK_CREATE:
	case RK_ATTACH:
		on_attach_result(c, q, r);
		return;
	case RK_OBSERVE:
		on_observe_result(c, q, r);
		return;
	case RK_SET: {
		tt_state *s = find_instance(c, q->instance);
		uint64_t seq, sched;
		double time, at;
		const tt_value *ch = r->type == TT_MAP ? tt_map_get(r, "changes") : NULL;
		if (s && r->type == TT_MAP && as_uint(tt_map_get(r, "scheduled"), &sched)) {
			if (!as_time(tt_map_get(r, "at"), &at))
				at = q->at;
			add_sched(c, s->rec, sched, at, ch);
		} else if (s && r->type == TT_MAP && as_uint(tt_map_get(r, "seq"), &seq) &&
			   as_time(tt_map_get(r, "time"), &time)) {
			tt_rec *rec = s->rec;
			if (seq > rec->seq) {
				rec->seq = seq;
				rec->time = time;
			}
			tt_update_info info = {.state_id = rec->id, .seq = seq, .time = time,
					       .source = TT_SRC_SET};
			apply_changes(c, rec, ch, &info, false, false);
		}
		break;
	}
	case RK_DELETE: {
		tt_state *s = find_instance(c, q->instance);
		if (s)
			rec_gone(c, s->rec, "deleted");
		break;
	}
	default:
		break;
	}
	req_finish(c, q, &rep);
}

static void on_error(tt_client *c, const tt_value *m)
{
	uint64_t id, code;
	char msg[256];
	if (m->len < 4 || !as_uint(&m->v.items[1], &id) || !as_uint(&m->v.items[2], &code))
		return;
	copy_text(&m->v.items[3], msg, sizeof(msg), "(no message)");
	if (code == 0 || code >= TT_DISCONNECTED)
		code = TT_INTERNAL; /* keep client codes for the client */
	tt_req *q = id ? take_sent(c, id) : NULL;
	if (!q) {
		tt_core_log(c, "server error %s: %s", tt_code_name((int)code), msg);
		return;
	}
	if (q->kind == RK_HELLO) {
		/* a refused HELLO (BAD_VERSION...) will be refused again */
		tt_core_log(c, "the server refused the session: %s %s", tt_code_name((int)code), msg);
		req_free(q);
		enter(c);
		set_status(c, TT_STATUS_CLOSED);
		fail_list(c, &c->unsent, &c->unsent_tail, (int)code, msg, false);
		leave(c);
		tt_transport_drop(c);
		return;
	}
	req_fail(c, q, (int)code, msg);
}

static void on_update(tt_client *c, const tt_value *m)
{
	uint64_t state, seq, sched = 0;
	double time;
	if (m->len < 5 || !as_uint(&m->v.items[1], &state) || !as_uint(&m->v.items[2], &seq) ||
	    !as_time(&m->v.items[3], &time))
		return;
	tt_rec *rec = find_rec(c, state);
	if (!rec)
		return;
	bool has_sched = m->len > 5 && as_uint(&m->v.items[5], &sched);
	if (has_sched) {
		tt_sched *e = find_sched(rec, sched);
		if (e && e->applied) {
			/* applied here at `at`: take seq and the server's values */
			drop_sched(rec, e);
			if (seq > rec->seq) {
				rec->seq = seq;
				rec->time = time;
				take_silently(c, rec, &m->v.items[4]);
			}
			return;
		}
		if (e)
			drop_sched(rec, e);
	}
	if (seq <= rec->seq)
		return; /* seen already (replayed on resume) */
	rec->seq = seq;
	rec->time = time;
	tt_update_info info = {.state_id = state, .seq = seq, .time = time,
			       .source = TT_SRC_UPDATE, .sched_id = sched};
	apply_changes(c, rec, &m->v.items[4], &info, false, false);
}

static void on_pong(tt_client *c, const tt_value *m)
{
	uint64_t id;
	double ct, recv, send;
	if (m->len < 5 || !as_uint(&m->v.items[1], &id) || !as_time(&m->v.items[2], &ct) ||
	    !as_time(&m->v.items[3], &recv) || !as_time(&m->v.items[4], &send) || id > UINT32_MAX)
		return;
	if (id < TT_PING_ID_SYNC_BASE) {
		c->heartbeat_out = false;
		return;
	}
	bool changed = false;
	if (tt_sync_on_pong(&c->sync, (uint32_t)id, ct, recv, send, now_local(), &changed) < 0)
		return;
	publish_clock(c);
	if (changed)
		c->sync_report_due = true;
	if (changed && c->o.on_clock) {
		enter(c);
		c->o.on_clock(c, c->o.user);
		leave(c);
	}
}

static void dispatch(tt_client *c, const tt_value *m)
{
	uint64_t type, state;
	if (m->type != TT_ARRAY || m->len < 1 || !as_uint(&m->v.items[0], &type))
		return;
	switch (type) {
	case TT_MSG_RESULT:
		on_result(c, m);
		break;
	case TT_MSG_ERROR:
		on_error(c, m);
		break;
	case TT_MSG_UPDATE:
		on_update(c, m);
		break;
	case TT_MSG_DELETED:
		if (m->len >= 2 && as_uint(&m->v.items[1], &state)) {
			tt_rec *rec = find_rec(c, state);
			char reason[64];
			copy_text(m->len >= 3 ? &m->v.items[2] : NULL, reason, sizeof(reason), "deleted");
			if (rec)
				rec_gone(c, rec, reason);
		}
		break;
	case TT_MSG_NOTICE: {
		uint64_t owner;
		char kind[16];
		if (m->len >= 5 && m->v.items[1].type == TT_STR && as_uint(&m->v.items[3], &state) &&
		    as_uint(&m->v.items[4], &owner)) {
			copy_text(&m->v.items[1], kind, sizeof(kind), "?");
			if (!strcmp(kind, "create") || !strcmp(kind, "delete"))
				notify(c, NULL, kind, &m->v.items[2], state, owner);
		}
		break;
	}
	case TT_MSG_PONG:
		on_pong(c, m);
		break;
	case TT_MSG_SNAPSHOT: {
		uint64_t seq;
		double time;
		if (m->len >= 5 && as_uint(&m->v.items[1], &state) && as_uint(&m->v.items[2], &seq) &&
		    as_time(&m->v.items[3], &time)) {
			tt_rec *rec = find_rec(c, state);
			if (!rec)
				break;
			rec->seq = seq;
			rec->time = time;
			tt_update_info info = {.state_id = state, .seq = seq, .time = time,
					       .source = TT_SRC_SNAPSHOT};
			apply_changes(c, rec, &m->v.items[4], &info, true, false);
		}
		break;
	}
	case TT_MSG_SCHEDULED: {
		uint64_t sched;
		double at;
		if (m->len >= 5 && as_uint(&m->v.items[1], &state) && as_uint(&m->v.items[2], &sched) &&
		    as_time(&m->v.items[3], &at)) {
			tt_rec *rec = find_rec(c, state);
			if (rec)
				add_sched(c, rec, sched, at, &m->v.items[4]);
		}
		break;
	}
	default:
		break; /* a newer server's push: ignored */
	}
}

void tt_core_on_message(tt_client *c, const void *data, size_t len)
{
	c->last_recv = now_local();
	c->heartbeat_out = false;
	size_t off = 0;
	enter(c);
	while (off < len && c->connected) {
		tt_value m;
		tt_error err;
		if (tt_decode(c->dec, data, len, &off, &c->msg_arena, &m, &err) < 0) {
			tt_core_log(c, "undecodable message from the server: %s", err.msg);
			break;
		}
		dispatch(c, &m);
		tt_arena_reset(&c->msg_arena);
	}
	tt_arena_reset(&c->msg_arena);
	leave(c);
	tt_core_reap(c);
}

/* ---- timers ------------------------------------------------------------ */

static double min_d(double a, double b)
{
	return a < b ? a : b;
}

static double expire(tt_client *c, tt_req **head, tt_req **tail, double now)
{
	double next = INFINITY;
	tt_req *prev = NULL;
	for (tt_req *r = *head; r;) {
		tt_req *nx = r->next;
		if (now >= r->deadline) {
			if (prev)
				prev->next = nx;
			else
				*head = nx;
			if (*tail == r)
				*tail = prev;
			r->next = NULL;
			if (r->kind == RK_HELLO) {
				req_free(r);
				tt_core_log(c, "no reply to HELLO; reconnecting");
				tt_transport_drop(c);
			} else {
				char msg[96];
				snprintf(msg, sizeof(msg), "no reply within %g s", c->o.request_timeout);
				req_fail(c, r, TT_TIMEOUT, msg);
			}
			return -1; /* the lists may have changed: start over */
		}
		next = min_d(next, r->deadline);
		prev = r;
		r = nx;
	}
	return next;
}

double tt_core_timers(tt_client *c, double now)
{
	double next = INFINITY, t;
	enter(c);
	while ((t = expire(c, &c->sent, &c->sent_tail, now)) < 0)
		;
	next = min_d(next, t);
	while ((t = expire(c, &c->unsent, &c->unsent_tail, now)) < 0)
		;
	next = min_d(next, t);

	if (c->status == TT_STATUS_CONNECTING || c->status == TT_STATUS_RECONNECTING) {
		if (!c->connected && isfinite(c->reconnect_at)) {
			if (now >= c->reconnect_at) {
				c->reconnect_at = INFINITY; /* until this attempt ends */
				tt_transport_open(c);
			} else {
				next = min_d(next, c->reconnect_at);
			}
		}
	}

	if (c->connected && c->hello_done) {
		uint32_t id;
		if (tt_sync_ping(&c->sync, now, &id) == 0) {
			send_ping(c, id, now);
			tt_transport_kick(c);
		}
		next = min_d(next, tt_sync_next_ping_due(&c->sync));
		next = min_d(next, sync_report_due(c, now));
		double hb = c->o.heartbeat;
		if (hb > 0) {
			if (now - c->last_recv >= 3 * hb) {
				tt_core_log(c, "no message from the server for %.1f s; reconnecting",
					    now - c->last_recv);
				tt_transport_drop(c);
			} else {
				if (now - c->last_recv >= hb && !c->heartbeat_out) {
					c->heartbeat_out = true;
					c->heartbeat_id = (c->heartbeat_id + 1) % TT_PING_ID_SYNC_BASE;
					send_ping(c, c->heartbeat_id, now);
					tt_transport_kick(c);
				}
				next = min_d(next, c->last_recv + (c->heartbeat_out ? 3 * hb : hb));
			}
		}
	}

	/* scheduled sets: applied when the sync clock reaches `at`, never
	 * before (the timer may wake a little early: check, then sleep again) */
	double sync_now = tt_sync_time(&c->sync, now);
	for (tt_rec *rec = c->recs, *rn; rec; rec = rn) {
		rn = rec->next;
		for (tt_sched *e = rec->scheds, *en; e && !rec->gone; e = en) {
			en = e->next;
			if (!e->applied && sync_now >= e->at) {
				run_sched(c, rec, e, now);
			} else if (e->applied && now >= e->forget_at) {
				drop_sched(rec, e);
				continue;
			}
			if (rec->gone)
				break;
			double due = e->applied ? e->forget_at : tt_sync_local_time(&c->sync, e->at);
			next = min_d(next, due > now ? due : now + 0.0005);
		}
	}
	if (c->clock->dirty)
		publish_clock(c);
	leave(c);
	tt_core_reap(c);
	return next;
}

void tt_core_run_posts(tt_client *c)
{
	pthread_mutex_lock(&c->post_lock);
	tt_post *p = c->posts;
	c->posts = c->posts_tail = NULL;
	pthread_mutex_unlock(&c->post_lock);
	enter(c);
	while (p) {
		tt_post *next = p->next;
		p->fn(c, p->user);
		free(p);
		p = next;
	}
	leave(c);
	tt_core_reap(c);
}

/* ---- lifecycle ----------------------------------------------------------- */

void tt_client_opts_init(tt_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->request_timeout = 30;
	o->heartbeat = 5;
	o->backoff_min = 0.25;
	o->backoff_max = 8;
	o->max_message = 64u << 20;
	o->validate = true;
	o->sync_reports = true;
}

/* ws[s]://host[:port][/path]; host may be [v6]. */
static int parse_url(tt_client *c, const char *url, tt_error *err)
{
	const char *p;
	if (!strncmp(url, "ws://", 5)) {
		p = url + 5;
		c->port = 80;
	} else if (!strncmp(url, "wss://", 6)) {
		p = url + 6;
		c->tls = true;
		c->port = 443;
	} else {
		return tt_fail(err, TT_USAGE, "url must start with ws:// or wss:// (got \"%.100s\")", url);
	}
	const char *host_end, *host = p;
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (!host_end)
			return tt_fail(err, TT_USAGE, "url \"%.100s\": unterminated [address]", url);
		p = host_end + 1;
	} else {
		host_end = p + strcspn(p, ":/?#");
		p = host_end;
	}
	if (host_end == host || host_end - host > 255)
		return tt_fail(err, TT_USAGE, "url \"%.100s\": no host", url);
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return tt_fail(err, TT_USAGE, "url \"%.100s\": bad port", url);
		c->port = (int)port;
		p = end;
	}
	if (*p && *p != '/' && *p != '?')
		return tt_fail(err, TT_USAGE, "url \"%.100s\": unexpected \"%.20s\"", url, p);
	c->host = tt_strndup(host, (size_t)(host_end - host));
	c->path = *p == '/' ? tt_strndup(p, strlen(p)) : tt_strndup("/", 1);
	return 0;
}

static int client_new(const tt_client_opts *opts, bool network, tt_client **out, tt_error *err)
{
	*out = NULL;
	if (!opts || !opts->url)
		return tt_fail(err, TT_USAGE, "a url is required (ws://host:port/)");
	if (!(opts->backoff_min > 0) || !(opts->backoff_max >= opts->backoff_min) ||
	    !(opts->heartbeat >= 0) || isnan(opts->request_timeout) || opts->max_message < 1024)
		return tt_fail(err, TT_USAGE, "bad client option (backoff, heartbeat, timeout or max_message)");
	tt_client *c = tt_calloc(1, sizeof(*c));
	int rc;
	c->o = *opts;
	c->url = tt_strndup(opts->url, strlen(opts->url));
	c->o.url = c->url;
	if (opts->ca_file) {
		c->ca_file = tt_strndup(opts->ca_file, strlen(opts->ca_file));
		c->o.ca_file = c->ca_file;
	}
	c->status = TT_STATUS_IDLE;
	c->server_max_message = 1u << 20; /* the server's default, until HELLO tells */
	c->reconnect_at = INFINITY;
	tt_buf_init(&c->out, 0);
	c->dec = tt_decoder_new();
	tt_arena_init(&c->msg_arena, 0);
	tt_arena_init(&c->scratch, 0);
	tt_sync_init(&c->sync, NULL);
	c->clock = tt_calloc(1, sizeof(*c->clock));
	tt_clock_init(c->clock, &c->sync);
	pthread_mutex_init(&c->post_lock, NULL);
	if ((rc = parse_url(c, opts->url, err)) < 0)
		goto fail;
	if (network && (rc = tt_transport_new(c, err)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	tt_client_free(c);
	return rc;
}

int tt_client_new(const tt_client_opts *opts, tt_client **out, tt_error *err)
{
	return client_new(opts, true, out, err);
}

int tt_client_new_detached(const tt_client_opts *opts, tt_client **out, tt_error *err)
{
	return client_new(opts, false, out, err);
}

void tt_client_free(tt_client *c)
{
	if (!c)
		return;
	atomic_store(&c->freeing, true);
	if (c->tr)
		tt_transport_stop(c);
	enter(c);
	set_status(c, TT_STATUS_CLOSED);
	fail_list(c, &c->sent, &c->sent_tail, TT_CLOSED, "client closed", false);
	fail_list(c, &c->unsent, &c->unsent_tail, TT_CLOSED, "client closed", false);
	while (c->recs)
		rec_gone(c, c->recs, "closed");
	leave(c);
	tt_transport_free(c);
	tt_core_reap(c);
	while (c->obs) {
		tt_obs *o = c->obs;
		c->obs = o->next;
		free(o->class_name);
		free(o);
	}
	while (c->posts) {
		tt_post *p = c->posts;
		c->posts = p->next;
		free(p);
	}
	pthread_mutex_destroy(&c->post_lock);
	tt_buf_free(&c->out);
	free(c->out_len);
	tt_decoder_free(c->dec);
	tt_arena_destroy(&c->msg_arena);
	tt_arena_destroy(&c->scratch);
	free(c->clock);
	free(c->token);
	free(c->url);
	free(c->ca_file);
	free(c->host);
	free(c->path);
	free(c);
}

int tt_client_connect(tt_client *c, tt_error *err)
{
	if (c->status == TT_STATUS_CLOSED)
		return tt_fail(err, TT_CLOSED, "client closed");
	if (c->status != TT_STATUS_IDLE)
		return 0;
	c->reconnect_at = now_local();
	set_status(c, TT_STATUS_CONNECTING);
	tt_transport_kick(c);
	return 0;
}

void tt_client_close(tt_client *c)
{
	if (c->status == TT_STATUS_CLOSED)
		return;
	enter(c);
	set_status(c, TT_STATUS_CLOSED);
	fail_list(c, &c->sent, &c->sent_tail, TT_CLOSED, "client closed", false);
	fail_list(c, &c->unsent, &c->unsent_tail, TT_CLOSED, "client closed", false);
	leave(c);
	tt_transport_goodbye(c);
	tt_core_reap(c);
}

tt_status tt_client_status(const tt_client *c)
{
	return c->status;
}

uint64_t tt_client_session(const tt_client *c)
{
	return c->session;
}

int tt_client_service(tt_client *c, int timeout_ms)
{
	if (c->depth > 0 || c->thread_running)
		return -TT_USAGE;
	int rc = tt_transport_service(c, timeout_ms);
	tt_core_reap(c);
	if (rc < 0)
		return rc;
	return c->status == TT_STATUS_CLOSED ? -TT_CLOSED : 0;
}

int tt_client_start(tt_client *c, tt_error *err)
{
	if (c->thread_running)
		return 0;
	return tt_transport_start(c, err);
}

void tt_client_stop(tt_client *c)
{
	tt_transport_stop(c);
}

int tt_client_post(tt_client *c, void (*fn)(tt_client *c, void *user), void *user)
{
	if (atomic_load(&c->freeing))
		return -TT_CLOSED;
	tt_post *p = tt_malloc(sizeof(*p));
	p->fn = fn;
	p->user = user;
	p->next = NULL;
	pthread_mutex_lock(&c->post_lock);
	if (c->posts_tail)
		c->posts_tail->next = p;
	else
		c->posts = p;
	c->posts_tail = p;
	pthread_mutex_unlock(&c->post_lock);
	tt_transport_kick(c);
	return 0;
}

/* ---- requests: classes and states -------------------------------------- */

static int check_name(const char *name, const char *what, tt_error *err)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 1 || n > TT_MAX_NAME || !tt_utf8_ok(name, n))
		return tt_fail(err, TT_USAGE, "%s must be 1 to %d bytes of UTF-8", what, TT_MAX_NAME);
	return 0;
}

int tt_client_define(tt_client *c, const char *class_name, const tt_value *description,
		     tt_reply_fn done, void *user, tt_error *err)
{
	int rc = check_name(class_name, "class name", err);
	if (rc < 0)
		return rc;
	if (!description)
		return tt_fail(err, TT_USAGE, "a description is required");
	tt_class *k;
	if ((rc = tt_class_create(class_name, strlen(class_name), description, &k, err)) < 0)
		return rc;
	tt_class_free(k);
	tt_req *q = req_new(c, RK_DEFINE, TT_MSG_DEFINE, 2, done, user);
	tt_enc_str(&q->msg, class_name);
	tt_enc_value(&q->msg, description);
	return req_submit(c, q, err);
}

int tt_client_describe(tt_client *c, const char *class_name, tt_reply_fn done, void *user,
		       tt_error *err)
{
	int rc = check_name(class_name, "class name", err);
	if (rc < 0)
		return rc;
	tt_req *q = req_new(c, RK_DESCRIBE, TT_MSG_DESCRIBE, 1, done, user);
	tt_enc_str(&q->msg, class_name);
	return req_submit(c, q, err);
}

int tt_client_create(tt_client *c, const char *class_name, const tt_value *init_values,
		     const tt_attach_opts *opts, tt_reply_fn done, void *user, tt_error *err)
{
	int rc = check_name(class_name, "class name", err);
	if (rc < 0)
		return rc;
	if (init_values && init_values->type != TT_MAP)
		return tt_fail(err, TT_USAGE, "init values must be a map");
	tt_req *q = req_new(c, RK_CREATE, TT_MSG_CREATE, 2, done, user);
	tt_enc_str(&q->msg, class_name);
	if (init_values)
		tt_enc_value(&q->msg, init_values);
	else
		tt_enc_map(&q->msg, 0);
	if (opts)
		q->ao = *opts;
	return req_submit(c, q, err);
}

int tt_client_attach(tt_client *c, const char *class_name, uint64_t state_id,
		     const tt_attach_opts *opts, tt_reply_fn done, void *user, tt_error *err)
{
	int rc = check_name(class_name, "class name", err);
	if (rc < 0)
		return rc;
	tt_attach_opts o0;
	memset(&o0, 0, sizeof(o0));
	const tt_attach_opts *o = opts ? opts : &o0;
	if (o->n_filter && !o->filter)
		return tt_fail(err, TT_USAGE, "filter: n_filter without names");
	for (uint32_t i = 0; i < o->n_filter; i++)
		if ((rc = check_name(o->filter[i], "a filter's param name", err)) < 0)
			return rc;
	tt_req *q = req_new(c, RK_ATTACH, TT_MSG_ATTACH, 3, done, user);
	tt_enc_str(&q->msg, class_name);
	if (state_id)
		tt_enc_uint(&q->msg, state_id);
	else
		tt_enc_nil(&q->msg);
	uint32_t n = (o->filter ? 1u : 0u) + (o->history ? 1u : 0u) + (o->since_set ? 1u : 0u);
	tt_enc_map(&q->msg, n);
	if (o->filter) {
		tt_enc_str(&q->msg, "filter");
		tt_enc_array(&q->msg, o->n_filter);
		for (uint32_t i = 0; i < o->n_filter; i++)
			tt_enc_str(&q->msg, o->filter[i]);
	}
	if (o->history) {
		tt_enc_str(&q->msg, "history");
		tt_enc_uint(&q->msg, o->history);
	}
	if (o->since_set) {
		tt_enc_str(&q->msg, "since");
		tt_enc_uint(&q->msg, o->since);
	}
	q->ao = *o;
	return req_submit(c, q, err);
}

int tt_client_observe(tt_client *c, const char *class_name, tt_notice_fn on_notice,
		      void *notice_user, tt_reply_fn done, void *user, tt_error *err)
{
	int rc;
	if (class_name && (rc = check_name(class_name, "class name", err)) < 0)
		return rc;
	if (!on_notice)
		return tt_fail(err, TT_USAGE, "observe needs a notice callback");
	tt_obs *o = tt_calloc(1, sizeof(*o));
	o->class_name = class_name ? tt_strndup(class_name, strlen(class_name)) : NULL;
	o->fn = on_notice;
	o->user = notice_user;
	o->next = c->obs;
	c->obs = o;
	send_observe(c, o, done, user);
	return 0;
}

/* ---- requests: instances --------------------------------------------------- */

static int check_live(const tt_state *s, tt_error *err)
{
	if (!s)
		return tt_fail(err, TT_USAGE, "no instance");
	if (s->gone)
		return tt_fail(err, TT_DETACHED, "instance %llu of \"%s\" is detached",
			       (unsigned long long)s->instance, s->rec->class_name);
	return 0;
}

static int param_of(const tt_state *s, const tt_value *key, tt_error *err)
{
	const char *cn = s->rec->class_name;
	if (key->type != TT_STR)
		return tt_fail(err, TT_UNKNOWN_PARAM, "class \"%s\": param names are strings", cn);
	int i = tt_class_param_index(s->rec->cls, key->v.s, key->len);
	if (i < 0)
		return tt_fail(err, TT_UNKNOWN_PARAM, "class \"%s\": \"%.*s\" is not a param", cn,
			       (int)TT_MIN(key->len, 128u), key->v.s);
	if (!s->visible[i])
		return tt_fail(err, TT_FILTERED, "class \"%s\", param \"%s\" is not in the attach filter",
			       cn, s->rec->cls->params[i].name);
	return i;
}

int tt_state_set(tt_state *s, const tt_value *updates, double at, tt_reply_fn done, void *user,
		 tt_error *err)
{
	int rc = check_live(s, err);
	if (rc < 0)
		return rc;
	if (!updates || updates->type != TT_MAP)
		return tt_fail(err, TT_USAGE, "updates must be a map {param: value}");
	tt_client *c = s->c;
	tt_rec *rec = s->rec;
	bool scheduled = isfinite(at) && at >= 0;
	enter(c);
	/* validate everything first: a set is atomic, here as on the server */
	uint32_t n = updates->len, n_wire = 0, n_local = 0;
	tt_value *vals = tt_arena_alloc(&c->scratch, sizeof(tt_value) * (n ? n : 1));
	int *idx = tt_arena_alloc(&c->scratch, sizeof(int) * (n ? n : 1));
	for (uint32_t k = 0; k < n; k++) {
		const tt_pair *kv = &updates->v.pairs[k];
		if ((rc = param_of(s, &kv->key, err)) < 0)
			goto out;
		idx[k] = rc;
		const tt_param *p = &rec->cls->params[rc];
		for (uint32_t j = 0; j < k; j++)
			if (idx[j] == idx[k]) {
				rc = tt_fail(err, TT_BAD_REQUEST, "class \"%s\": param \"%s\" given twice",
					     rec->class_name, p->name);
				goto out;
			}
		tt_value tmp;
		tt_value_copy(&c->scratch, &kv->val, &tmp);
		if (c->o.validate || p->local) {
			if ((rc = tt_param_coerce(rec->cls, p, &tmp, &vals[k], err)) < 0)
				goto out;
		} else {
			vals[k] = tmp;
		}
		if (p->local)
			n_local++;
		else
			n_wire++;
	}
	if (n_local) {
		/* local params never travel: applied and told here at once */
		tt_value lm = {.type = TT_MAP, .len = 0};
		lm.v.pairs = tt_arena_alloc(&c->scratch, sizeof(tt_pair) * n_local);
		for (uint32_t k = 0; k < n; k++)
			if (rec->cls->params[idx[k]].local) {
				lm.v.pairs[lm.len].key = updates->v.pairs[k].key;
				lm.v.pairs[lm.len++].val = vals[k];
			}
		tt_update_info info = {.state_id = rec->id, .seq = rec->seq, .time = rec->time,
				       .source = TT_SRC_LOCAL};
		apply_changes(c, rec, &lm, &info, true, true);
	}
	if (n_wire == 0 && n_local > 0) {
		rc = 0;
		if (done) {
			tt_value nil = tt_nil();
			tt_reply rep = {.result = &nil, .message = ""};
			done(c, &rep, user);
		}
		goto out;
	}
	tt_req *q = req_new(c, RK_SET, TT_MSG_SET, scheduled ? 3 : 2, done, user);
	tt_enc_uint(&q->msg, s->instance);
	tt_enc_map(&q->msg, n_wire);
	for (uint32_t k = 0; k < n; k++) {
		if (rec->cls->params[idx[k]].local)
			continue;
		tt_enc_value(&q->msg, &updates->v.pairs[k].key);
		tt_enc_value(&q->msg, &vals[k]);
	}
	if (scheduled) {
		tt_enc_map(&q->msg, 1);
		tt_enc_str(&q->msg, "at");
		tt_enc_float(&q->msg, at);
		q->at = at;
	}
	q->instance = s->instance;
	rc = req_submit(c, q, err);
out:
	leave(c);
	return rc < 0 ? rc : 0;
}

static int set_one(tt_state *s, const char *param, tt_value v, tt_error *err)
{
	if (!param)
		return tt_fail(err, TT_USAGE, "no param name");
	tt_pair kv = {.key = tt_str(param), .val = v};
	tt_value m = {.type = TT_MAP, .len = 1};
	m.v.pairs = &kv;
	return tt_state_set(s, &m, NAN, NULL, NULL, err);
}

int tt_state_set_float(tt_state *s, const char *param, double v, tt_error *err)
{
	return set_one(s, param, tt_float(v), err);
}

int tt_state_set_int(tt_state *s, const char *param, int64_t v, tt_error *err)
{
	return set_one(s, param, tt_int(v), err);
}

int tt_state_set_bool(tt_state *s, const char *param, bool v, tt_error *err)
{
	return set_one(s, param, tt_bool(v), err);
}

int tt_state_set_str(tt_state *s, const char *param, const char *v, tt_error *err)
{
	if (!v)
		return tt_fail(err, TT_USAGE, "no string");
	return set_one(s, param, tt_str(v), err);
}

static int visible_index(const tt_state *s, const char *param)
{
	if (!s || s->gone || !param)
		return -1;
	int i = tt_class_param_index(s->rec->cls, param, strlen(param));
	return i >= 0 && s->visible[i] ? i : -1;
}

const tt_value *tt_state_get(const tt_state *s, const char *param)
{
	int i = visible_index(s, param);
	return i < 0 ? NULL : &s->rec->vals[i];
}

uint32_t tt_state_param_count(const tt_state *s)
{
	uint32_t n = 0;
	for (uint32_t i = 0; s && !s->gone && i < s->rec->cls->n_params; i++)
		n += s->visible[i];
	return n;
}

const char *tt_state_param_name(const tt_state *s, uint32_t k)
{
	for (uint32_t i = 0; s && !s->gone && i < s->rec->cls->n_params; i++)
		if (s->visible[i] && k-- == 0)
			return s->rec->cls->params[i].name;
	return NULL;
}

const struct tt_param *tt_state_param(const tt_state *s, const char *param)
{
	int i = visible_index(s, param);
	return i < 0 ? NULL : &s->rec->cls->params[i];
}

const char *tt_state_param_type(const tt_state *s, const char *param)
{
	static const char *const names[] = {"boolean", "string", "integer", "float", "enum", "any"};
	const tt_param *p = tt_state_param(s, param);
	return p && p->type < 6 ? names[p->type] : NULL;
}

tt_client *tt_state_client(const tt_state *s) { return s->c; }
uint64_t tt_state_id(const tt_state *s) { return s->rec->id; }
uint64_t tt_state_instance(const tt_state *s) { return s->instance; }
const char *tt_state_class(const tt_state *s) { return s->rec->class_name; }
uint64_t tt_state_owner(const tt_state *s) { return s->rec->owner; }
uint64_t tt_state_seq(const tt_state *s) { return s->rec->seq; }
double tt_state_time(const tt_state *s) { return s->rec->time; }
bool tt_state_is_owner(const tt_state *s) { return s->owner; }
void *tt_state_user(const tt_state *s) { return s->o.user; }

int tt_state_history(tt_state *s, uint32_t last, uint64_t since, tt_reply_fn done, void *user,
		     tt_error *err)
{
	int rc = check_live(s, err);
	if (rc < 0)
		return rc;
	tt_req *q = req_new(s->c, RK_HISTORY, TT_MSG_HISTORY, 2, done, user);
	tt_enc_uint(&q->msg, s->instance);
	tt_enc_map(&q->msg, 1);
	tt_enc_str(&q->msg, last ? "last" : "since");
	tt_enc_uint(&q->msg, last ? last : since);
	q->instance = s->instance;
	return req_submit(s->c, q, err);
}

int tt_state_delete(tt_state *s, tt_reply_fn done, void *user, tt_error *err)
{
	int rc = check_live(s, err);
	if (rc < 0)
		return rc;
	if (!s->owner)
		return tt_fail(err, TT_NOT_OWNER, "instance %llu of \"%s\" is attached, not owned: detach it",
			       (unsigned long long)s->instance, s->rec->class_name);
	tt_req *q = req_new(s->c, RK_DELETE, TT_MSG_DELETE, 1, done, user);
	tt_enc_uint(&q->msg, s->instance);
	q->instance = s->instance;
	return req_submit(s->c, q, err);
}

int tt_state_detach(tt_state *s, tt_reply_fn done, void *user, tt_error *err)
{
	int rc = check_live(s, err);
	if (rc < 0)
		return rc;
	if (s->owner)
		return tt_state_delete(s, done, user, err);
	tt_client *c = s->c;
	tt_req *q = req_new(c, RK_DETACH, TT_MSG_DETACH, 1, done, user);
	tt_enc_uint(&q->msg, s->instance);
	if ((rc = req_submit(c, q, err)) < 0)
		return rc;
	enter(c);
	instance_gone(c, s, "detached");
	leave(c);
	return 0;
}

/* ---- clock ----------------------------------------------------------------- */

const tt_clock *tt_client_clock(const tt_client *c)
{
	return c->clock;
}

void tt_client_clock_report(tt_client *c, tt_clock_report *out)
{
	struct tt_sync_report r;
	double now = now_local();
	tt_sync_report(&c->sync, now, &r);
	memset(out, 0, sizeof(*out));
	out->status = tt_sync_status_name(r.status);
	out->local_time = now;
	out->sync_time = tt_sync_time(&c->sync, now);
	out->offset = r.time_offset;
	out->drift = r.drift;
	out->round_trip_min = r.round_trip_min;
	out->round_trip_mean = r.round_trip_mean;
	out->round_trip_max = r.round_trip_max;
	out->online = r.online;
	out->series = r.series;
}

/* ---- blocking helper ------------------------------------------------------- */

void tt_wait_init(tt_wait *w)
{
	memset(w, 0, sizeof(*w));
	tt_arena_init(&w->arena, 0);
	w->result = tt_nil();
}

void tt_wait_done(tt_client *c, const tt_reply *r, void *user)
{
	(void)c;
	tt_wait *w = user;
	w->done = true;
	w->code = r->code;
	snprintf(w->message, sizeof(w->message), "%s", r->message ? r->message : "");
	if (r->result)
		tt_value_copy(&w->arena, r->result, &w->result);
	w->state = r->state;
}

/* The request still pending on w stops pointing at it: the caller may
 * free w once tt_client_wait gave up. */
static void forget_wait(tt_client *c, tt_wait *w)
{
	tt_req *lists[] = {c->sent, c->unsent};
	for (int i = 0; i < 2; i++)
		for (tt_req *r = lists[i]; r; r = r->next)
			if (r->done == tt_wait_done && r->user == w)
				r->done = NULL;
}

int tt_client_wait(tt_client *c, tt_wait *w, double timeout)
{
	if (c->depth > 0 || c->thread_running)
		return -TT_USAGE;
	double end = timeout >= 0 ? now_local() + timeout : INFINITY;
	while (!w->done) {
		double left = end - now_local();
		int rc = 0;
		if (left <= 0)
			rc = -TT_TIMEOUT;
		else if (tt_transport_service(c, left > 0.1 ? 100 : (int)(left * 1000) + 1) < 0 && !w->done)
			rc = -TT_CLOSED;
		tt_core_reap(c);
		if (rc < 0) {
			forget_wait(c, w);
			return rc;
		}
	}
	return w->code ? -w->code : 0;
}

void tt_wait_free(tt_wait *w)
{
	tt_arena_destroy(&w->arena);
}
