/* SPDX-License-Identifier: MIT */
/* store.c: classes, states, instances, observes, and the update path. */
#include "store.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "db.h"
#include "idmap.h"
#include "json.h"
#include "log.h"
#include "protocol.h"

static struct {
	const tt_config *cfg;
	tt_class_entry *classes;  /* owned list */
	uint32_t n_classes;
	tt_state *first, *last;   /* all states, creation order */
	tt_idmap states;          /* id -> tt_state */
	tt_idmap instances;       /* id -> tt_instance */
	tt_idmap tombstones;      /* deleted state id -> reason (static string) */
	uint64_t next_state_id, next_instance_id;
	tt_state *dirty;          /* states to persist at the next commit */
	tt_buf out, changes, any, tmp; /* scratch encoders, reused */
	tt_sched *scheds;         /* pending scheduled sets, by (at, id) */
	uint64_t next_sched_id;
	tt_decoder *dec;          /* for filtering encoded changes */
	tt_arena arena;
	bool stopping;            /* closing connections keep their sessions */
} S;

/* scheduled sets, further down */
static void sched_drop_state(tt_state *st);
static uint32_t n_sched_visible(const tt_state *st, const tt_mask *view);
static void enc_sched_list(tt_buf *b, const tt_state *st, const tt_mask *view, uint32_t n);

/* ---- helpers ---------------------------------------------------------- */

/* What a session may see of a state: NULL for everything. */
static const tt_mask *sub_view(const tt_sub *sub)
{
	return sub->n_all ? NULL : &sub->mask;
}

static void result_begin(tt_buf *b, uint64_t rid)
{
	tt_buf_clear(b);
	tt_enc_array(b, 3);
	tt_enc_uint(b, TT_MSG_RESULT);
	tt_enc_uint(b, rid);
}

static void send_out(tt_client *c)
{
	if (c)
		tt_client_send_buf(c, &S.out);
}

static void reply_nil(tt_client *c, uint64_t rid)
{
	result_begin(&S.out, rid);
	tt_enc_nil(&S.out);
	send_out(c);
}

static const char *cname(const tt_state *st)
{
	return st->ce->cls->name;
}

static void slot_set(tt_slot *sl, const tt_value *v)
{
	if (v->type == TT_STR || v->type == TT_RAW) {
		if (sl->cap < v->len || !sl->mem) {
			sl->cap = v->len > 16 ? v->len : 16;
			sl->mem = tt_realloc(sl->mem, sl->cap);
		}
		if (v->len)
			memcpy(sl->mem, v->v.s, v->len);
		sl->v.type = v->type;
		sl->v.len = v->len;
		sl->v.v.s = sl->mem;
	} else {
		char *mem = sl->mem;
		uint32_t cap = sl->cap;
		sl->v = *v;
		sl->mem = mem;
		sl->cap = cap;
	}
}

/* Encode a map of the given slots' current values, restricted to view. */
static void enc_values(tt_buf *b, const tt_state *st, const tt_mask *view)
{
	const tt_class *cls = st->ce->cls;
	uint32_t n = 0;
	for (uint32_t i = 0; i < cls->n_params; i++)
		if (!view || tt_mask_has(view, i))
			n++;
	tt_enc_map(b, n);
	for (uint32_t i = 0; i < cls->n_params; i++) {
		if (view && !tt_mask_has(view, i))
			continue;
		tt_enc_strn(b, cls->params[i].name, cls->params[i].name_len);
		tt_enc_value(b, &st->slots[i].v);
	}
}

/* Append the encoded changes map `raw` restricted to view (all when NULL).
 * Returns the number of keys kept. */
static uint32_t enc_changes_view(tt_buf *b, const tt_state *st, const void *raw, size_t len,
				 const tt_mask *view)
{
	if (!view) {
		tt_buf_append(b, raw, len);
		return 1;
	}
	tt_value m;
	size_t off = 0;
	tt_arena_reset(&S.arena);
	if (tt_decode(S.dec, raw, len, &off, &S.arena, &m, NULL) < 0 || m.type != TT_MAP) {
		tt_enc_map(b, 0);
		return 0;
	}
	uint32_t n = 0;
	for (uint32_t i = 0; i < m.len; i++) {
		int k = tt_class_param_index(st->ce->cls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len);
		if (k >= 0 && tt_mask_has(view, (uint32_t)k))
			n++;
	}
	tt_enc_map(b, n);
	for (uint32_t i = 0; i < m.len; i++) {
		int k = tt_class_param_index(st->ce->cls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len);
		if (k >= 0 && tt_mask_has(view, (uint32_t)k)) {
			tt_enc_value(b, &m.v.pairs[i].key);
			tt_enc_value(b, &m.v.pairs[i].val);
		}
	}
	return n;
}

static void enc_event(tt_buf *b, const tt_state *st, const tt_event *e, const tt_mask *view)
{
	tt_enc_map(b, 4);
	tt_enc_str(b, "seq");
	tt_enc_uint(b, e->seq);
	tt_enc_str(b, "time");
	tt_enc_float(b, e->time);
	tt_enc_str(b, "changes");
	enc_changes_view(b, st, tt_buf_data(&e->changes), e->changes.len, view);
	tt_enc_str(b, "origin");
	tt_enc_uint(b, e->origin);
}

/* ---- classes ---------------------------------------------------------- */

tt_class_entry *tt_store_class(const char *name, size_t len)
{
	for (tt_class_entry *ce = S.classes; ce; ce = ce->next)
		if (ce->cls->name_len == len && memcmp(ce->cls->name, name, len) == 0)
			return ce;
	return NULL;
}

static int class_of(const tt_value *v, tt_class_entry **out, tt_error *err)
{
	if (!tt_name_ok(v))
		return tt_fail(err, TT_BAD_MESSAGE, "class name must be a string of 1 to %d bytes",
			       TT_MAX_NAME);
	*out = tt_store_class(v->v.s, v->len);
	if (!*out)
		return tt_fail(err, TT_UNKNOWN_CLASS, "class \"%.*s\" is not defined", (int)v->len,
			       v->v.s);
	return 0;
}

int tt_store_define(const char *name, size_t len, const tt_value *desc, bool *out_new,
		    tt_error *err)
{
	tt_class *cls;
	int rc = tt_class_create(name, len, desc, &cls, err);
	if (rc < 0)
		return rc;
	tt_class_entry *old = tt_store_class(name, len);
	if (old) {
		bool same = tt_class_same(old->cls, cls);
		tt_class_free(cls);
		if (!same)
			return tt_fail(err, TT_CLASS_EXISTS,
				       "class \"%.*s\" is already defined with a different description",
				       (int)len, name);
		*out_new = false;
		return 0;
	}
	if (S.n_classes >= S.cfg->max_classes) {
		tt_class_free(cls);
		return tt_fail(err, TT_LIMIT, "too many classes (--max-classes %u)", S.cfg->max_classes);
	}
	tt_class_entry *ce = tt_calloc(1, sizeof(*ce));
	ce->cls = cls;
	/* append, so listings keep definition order */
	tt_class_entry **pp = &S.classes;
	while (*pp)
		pp = &(*pp)->next;
	*pp = ce;
	S.n_classes++;
	tt_db_class_defined(ce->cls);
	*out_new = true;
	return 0;
}

int tt_store_describe(tt_client *c, uint64_t rid, const tt_value *clsv, tt_error *err)
{
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0)
		return rc;
	result_begin(&S.out, rid);
	tt_buf_append(&S.out, tt_buf_data(&ce->cls->desc), ce->cls->desc.len);
	send_out(c);
	return 0;
}

/* ---- observe notices -------------------------------------------------- */

static void notify_observers(const tt_state *st, const char *kind)
{
	tt_buf_clear(&S.tmp);
	tt_enc_array(&S.tmp, 5);
	tt_enc_uint(&S.tmp, TT_MSG_NOTICE);
	tt_enc_str(&S.tmp, kind);
	tt_enc_strn(&S.tmp, st->ce->cls->name, st->ce->cls->name_len);
	tt_enc_uint(&S.tmp, st->id);
	tt_enc_uint(&S.tmp, st->owner);
	tt_msg *m = NULL;
	for (tt_session *s = tt_session_first(); s; s = s->next) {
		if (!s->client)
			continue;
		for (tt_observe *o = s->observes; o; o = o->next) {
			if (o->cls == NULL || o->cls == st->ce) {
				if (!m)
					m = tt_msg_new(tt_buf_data(&S.tmp), S.tmp.len);
				tt_client_send(s->client, m);
				break;
			}
		}
	}
	tt_msg_unref(m);
}

/* ---- states ----------------------------------------------------------- */

static tt_state *state_new(tt_class_entry *ce, uint64_t id, uint64_t owner)
{
	tt_state *st = tt_calloc(1, sizeof(*st));
	st->id = id;
	if (id >= S.next_state_id)
		S.next_state_id = id + 1;
	st->ce = ce;
	st->owner = owner;
	st->slots = tt_calloc(ce->cls->n_params ? ce->cls->n_params : 1, sizeof(tt_slot));
	tt_history_init(&st->hist);
	st->prev = S.last;
	if (S.last)
		S.last->next = st;
	else
		S.first = st;
	S.last = st;
	st->cprev = ce->last;
	if (ce->last)
		ce->last->cnext = st;
	else
		ce->first = st;
	ce->last = st;
	ce->n_states++;
	tt_idmap_put(&S.states, id, st);
	return st;
}

static void mark_dirty(tt_state *st)
{
	if (!st->dirty) {
		st->dirty = true;
		st->dirty_next = S.dirty;
		S.dirty = st;
	}
}

/* Rebuild the sub of session s on st from that session's instances (a
 * session holds few; a state may have thousands). An empty sub is removed
 * by moving the last one into its slot, whose instances are re-pointed. */
static void sub_recompute(tt_state *st, uint32_t idx)
{
	tt_sub *sub = &st->subs[idx];
	sub->n_all = sub->n_inst = 0;
	memset(&sub->mask, 0, sizeof(sub->mask));
	for (tt_instance *in = sub->session->instances; in; in = in->s_next) {
		if (in->state != st)
			continue;
		sub->n_inst++;
		if (!in->filtered)
			sub->n_all++;
		else
			for (size_t w = 0; w < TT_MAX_PARAMS / 64; w++)
				sub->mask.w[w] |= in->mask.w[w];
	}
	if (sub->n_inst)
		return;
	uint32_t last = --st->n_subs;
	if (idx == last)
		return;
	st->subs[idx] = st->subs[last];
	for (tt_instance *in = st->subs[idx].session->instances; in; in = in->s_next)
		if (in->state == st)
			in->sub = idx;
}

static tt_instance *instance_new(tt_state *st, tt_session *s, const tt_mask *filter, uint64_t id,
				 bool persist)
{
	tt_instance *in = tt_calloc(1, sizeof(*in));
	in->id = id ? id : S.next_instance_id;
	if (in->id >= S.next_instance_id)
		S.next_instance_id = in->id + 1;
	in->state = st;
	in->session = s;
	if (filter) {
		in->filtered = true;
		in->mask = *filter;
	}
	in->s_next = s->instances;
	if (s->instances)
		s->instances->s_prev = in;
	s->instances = in;
	s->n_instances++;
	in->st_next = st->instances;
	if (st->instances)
		st->instances->st_prev = in;
	st->instances = in;
	tt_idmap_put(&S.instances, in->id, in);
	/* the session's sub on this state, through another of its instances */
	tt_instance *peer = in->s_next;
	while (peer && peer->state != st)
		peer = peer->s_next;
	if (peer) {
		in->sub = peer->sub;
	} else {
		if (st->n_subs == st->cap_subs) {
			st->cap_subs = st->cap_subs ? st->cap_subs * 2 : 4;
			st->subs = tt_realloc(st->subs, sizeof(tt_sub) * st->cap_subs);
		}
		in->sub = st->n_subs++;
		memset(&st->subs[in->sub], 0, sizeof(tt_sub));
		st->subs[in->sub].session = s;
	}
	tt_sub *sub = &st->subs[in->sub];
	sub->n_inst++;
	if (!filter)
		sub->n_all++;
	else
		for (size_t w = 0; w < TT_MAX_PARAMS / 64; w++)
			sub->mask.w[w] |= filter->w[w];
	if (persist)
		tt_db_instance_put(in);
	return in;
}

static void instance_free(tt_instance *in, bool update_sub)
{
	tt_state *st = in->state;
	tt_session *s = in->session;
	if (in->s_prev)
		in->s_prev->s_next = in->s_next;
	else
		s->instances = in->s_next;
	if (in->s_next)
		in->s_next->s_prev = in->s_prev;
	s->n_instances--;
	if (in->st_prev)
		in->st_prev->st_next = in->st_next;
	else
		st->instances = in->st_next;
	if (in->st_next)
		in->st_next->st_prev = in->st_prev;
	tt_idmap_del(&S.instances, in->id);
	tt_db_instance_del(in);
	if (update_sub)
		sub_recompute(st, in->sub);
	free(in);
}

/* Delete a state: tell every attached session except `skip`, drop its
 * instances, tell observers, free it. */
static void state_delete(tt_state *st, const char *reason, const tt_session *skip)
{
	tt_buf_clear(&S.tmp);
	tt_enc_array(&S.tmp, 3);
	tt_enc_uint(&S.tmp, TT_MSG_DELETED);
	tt_enc_uint(&S.tmp, st->id);
	tt_enc_str(&S.tmp, reason);
	tt_msg *m = tt_msg_new(tt_buf_data(&S.tmp), S.tmp.len);
	for (uint32_t i = 0; i < st->n_subs; i++)
		if (st->subs[i].session != skip && st->subs[i].session->client)
			tt_client_send(st->subs[i].session->client, m);
	tt_msg_unref(m);
	while (st->instances)
		instance_free(st->instances, false);
	sched_drop_state(st);
	notify_observers(st, "delete");
	tt_db_state_deleted(st, reason);
	tt_store_restore_tombstone(st->id, reason);

	if (st->owner) {
		tt_session *o = tt_session_by_id(st->owner);
		if (o)
			o->n_owned--;
	}
	if (st->dirty) {
		tt_state **pp = &S.dirty;
		while (*pp != st)
			pp = &(*pp)->dirty_next;
		*pp = st->dirty_next;
	}
	if (st->prev) st->prev->next = st->next; else S.first = st->next;
	if (st->next) st->next->prev = st->prev; else S.last = st->prev;
	tt_class_entry *ce = st->ce;
	if (st->cprev) st->cprev->cnext = st->cnext; else ce->first = st->cnext;
	if (st->cnext) st->cnext->cprev = st->cprev; else ce->last = st->cprev;
	ce->n_states--;
	tt_idmap_del(&S.states, st->id);
	for (uint32_t i = 0; i < ce->cls->n_params; i++)
		free(st->slots[i].mem);
	free(st->slots);
	free(st->subs);
	tt_history_free(&st->hist);
	free(st);
}

/* Validate and coerce every key of `updates` for state class cls through
 * instance `in` (NULL at create). Fills idx/vals for each key, in order.
 * Atomic: the first bad key fails the whole map. */
static int validate(const tt_class *cls, const tt_instance *in, tt_value *updates,
		    uint32_t *idx, tt_value *vals, tt_error *err)
{
	static uint32_t seen[TT_MAX_PARAMS], gen;
	if (updates->type != TT_MAP)
		return tt_fail(err, TT_BAD_MESSAGE, "updates must be a map");
	/* no bound on updates->len needed: idx/vals are written only once every
	 * key passed, and more than n_params keys must hold an unknown or a
	 * repeated one, refused before */
	if (++gen == 0) {
		memset(seen, 0, sizeof(seen));
		gen = 1;
	}
	for (uint32_t i = 0; i < updates->len; i++) {
		tt_pair *kv = &updates->v.pairs[i];
		if (kv->key.type != TT_STR)
			return tt_fail(err, TT_BAD_MESSAGE, "class \"%s\": param names must be strings",
				       cls->name);
		int k = tt_class_param_index(cls, kv->key.v.s, kv->key.len);
		char repr[64];
		/* the value's text only on error paths: snprintf is not free */
#define REPR() (tt_value_repr(&kv->val, repr, sizeof(repr)), repr)
		if (k < 0)
			return tt_fail(err, TT_UNKNOWN_PARAM,
				       "class \"%s\": cannot set unknown param \"%.*s\" to %s",
				       cls->name, (int)TT_MIN(kv->key.len, 128u), kv->key.v.s, REPR());
		const tt_param *p = &cls->params[k];
		if (seen[k] == gen)
			return tt_fail(err, TT_BAD_MESSAGE, "class \"%s\": param \"%s\" given twice",
				       cls->name, p->name);
		seen[k] = gen;
		if (p->local)
			return tt_fail(err, TT_LOCAL_PARAM,
				       "class \"%s\": cannot set param \"%s\" to %s: it is local and never sent to the server",
				       cls->name, p->name, REPR());
		if (in && in->filtered && !tt_mask_has(&in->mask, (uint32_t)k)) {
			return tt_fail(err, TT_FILTERED,
				       "class \"%s\": cannot set param \"%s\" to %s: not in this instance's filter",
				       cls->name, p->name, REPR());
		}
		if (!in && p->required && kv->val.type == TT_NIL)
			return tt_fail(err, TT_REQUIRED, "class \"%s\": required param \"%s\" is null",
				       cls->name, p->name);
#undef REPR
		int rc = tt_param_coerce(cls, p, &kv->val, &vals[i], err);
		if (rc < 0)
			return rc;
		idx[i] = (uint32_t)k;
	}
	return 0;
}

/* Stored form of a coerced value: `any` becomes canonical msgpack bytes
 * (appended to S.any), everything else stays as it is. */
static tt_value stored_form(const tt_param *p, const tt_value *v)
{
	if (p->type != TT_PT_ANY || v->type == TT_NIL)
		return *v;
	size_t at = S.any.len;
	tt_enc_value(&S.any, v);
	tt_value r = {.type = TT_RAW};
	r.len = (uint32_t)(S.any.len - at);
	r.v.i = (int64_t)at; /* an offset until S.any stops growing */
	return r;
}

static void fix_raw(tt_value *v)
{
	if (v->type == TT_RAW)
		v->v.s = (const char *)tt_buf_data(&S.any) + v->v.i;
}

/* Fill a new state's slots: vals[k] for each k in idx (n of them), the
 * default for every other param. */
static void init_slots(tt_state *st, const uint32_t *idx, const tt_value *vals, uint32_t n)
{
	const tt_class *cls = st->ce->cls;
	tt_value stored[TT_MAX_PARAMS];
	tt_buf_clear(&S.any);
	for (uint32_t k = 0; k < cls->n_params; k++)
		stored[k] = stored_form(&cls->params[k], &cls->params[k].def);
	for (uint32_t i = 0; i < n; i++)
		stored[idx[i]] = stored_form(&cls->params[idx[i]], &vals[i]);
	for (uint32_t k = 0; k < cls->n_params; k++) {
		fix_raw(&stored[k]);
		slot_set(&st->slots[k], &stored[k]);
	}
}

static uint64_t req_state_id(const tt_value *v, bool *ok)
{
	*ok = v->type == TT_INT && v->v.i > 0;
	return *ok ? (uint64_t)v->v.i : 0;
}

/* The attach/create result. */
static void enc_attach_result(tt_buf *b, uint64_t rid, const tt_instance *in,
			      const tt_value *filter, bool with_hist, uint64_t from_seq, bool complete)
{
	const tt_state *st = in->state;
	const tt_mask *view = in->filtered ? &in->mask : NULL;
	uint32_t n_sched = n_sched_visible(st, view);
	result_begin(b, rid);
	tt_enc_map(b, (with_hist ? 11u : 9u) + (n_sched ? 1u : 0u));
	tt_enc_str(b, "instance");
	tt_enc_uint(b, in->id);
	tt_enc_str(b, "state");
	tt_enc_uint(b, st->id);
	tt_enc_str(b, "class");
	tt_enc_strn(b, st->ce->cls->name, st->ce->cls->name_len);
	tt_enc_str(b, "owner");
	tt_enc_uint(b, st->owner);
	tt_enc_str(b, "seq");
	tt_enc_uint(b, st->seq);
	tt_enc_str(b, "time");
	tt_enc_float(b, st->time);
	tt_enc_str(b, "values");
	enc_values(b, st, view);
	tt_enc_str(b, "description");
	tt_buf_append(b, tt_buf_data(&st->ce->cls->desc), st->ce->cls->desc.len);
	tt_enc_str(b, "filter");
	if (filter)
		tt_enc_value(b, filter);
	else
		tt_enc_nil(b);
	if (with_hist) {
		uint32_t n = 0;
		for (uint32_t i = 0; i < st->hist.len; i++)
			if (tt_history_at(&st->hist, i)->seq > from_seq)
				n++;
		tt_enc_str(b, "history");
		tt_enc_array(b, n);
		for (uint32_t i = 0; i < st->hist.len; i++) {
			const tt_event *e = tt_history_at(&st->hist, i);
			if (e->seq > from_seq)
				enc_event(b, st, e, view);
		}
		tt_enc_str(b, "historyComplete");
		tt_enc_bool(b, complete);
	}
	if (n_sched) {
		tt_enc_str(b, "scheduled");
		enc_sched_list(b, st, view, n_sched);
	}
}

int tt_store_create(tt_client *c, uint64_t rid, const tt_value *clsv, tt_value *init,
		    tt_error *err)
{
	static uint32_t idx[TT_MAX_PARAMS];
	static tt_value vals[TT_MAX_PARAMS];
	tt_session *s = c->session;
	tt_class_entry *ce;
	int rc = class_of(clsv, &ce, err);
	if (rc < 0)
		return rc;
	const tt_class *cls = ce->cls;
	tt_value empty = {.type = TT_MAP};
	if (init->type == TT_NIL)
		init = &empty;
	if ((rc = validate(cls, NULL, init, idx, vals, err)) < 0)
		return rc;
	for (uint32_t k = 0; k < cls->n_params; k++) {
		if (!cls->params[k].required)
			continue;
		bool given = false;
		for (uint32_t i = 0; i < init->len; i++)
			if (idx[i] == k && vals[i].type != TT_NIL)
				given = true;
		if (!given)
			return tt_fail(err, TT_REQUIRED,
				       "class \"%s\": required param \"%s\" is missing or null",
				       cls->name, cls->params[k].name);
	}
	if (s->n_owned >= S.cfg->max_states)
		return tt_fail(err, TT_LIMIT, "this session owns too many states (--max-states %u)",
			       S.cfg->max_states);
	if (s->n_instances >= S.cfg->max_instances)
		return tt_fail(err, TT_LIMIT, "this session holds too many instances (--max-instances %u)",
			       S.cfg->max_instances);

	tt_state *st = state_new(ce, S.next_state_id, s->id);
	s->n_owned++;
	init_slots(st, idx, vals, init->len);
	st->time = tt_clock_now();
	tt_instance *in = instance_new(st, s, NULL, 0, true);
	mark_dirty(st);
	enc_attach_result(&S.out, rid, in, NULL, false, 0, true);
	send_out(c);
	notify_observers(st, "create");
	return 0;
}

/* Create the server-owned state of a class from schemas/ (defaults only). */
static void create_server_state(tt_class_entry *ce)
{
	if (ce->first)
		return; /* restored from the database */
	tt_state *st = state_new(ce, S.next_state_id, 0);
	init_slots(st, NULL, NULL, 0);
	st->time = tt_clock_now();
	mark_dirty(st);
}

static int parse_filter(const tt_class *cls, const tt_value *f, tt_mask *out, tt_error *err)
{
	memset(out, 0, sizeof(*out));
	if (f->type != TT_ARRAY)
		return tt_fail(err, TT_BAD_FILTER, "class \"%s\": filter must be an array of param names",
			       cls->name);
	for (uint32_t i = 0; i < f->len; i++) {
		const tt_value *n = &f->v.items[i];
		int k = n->type == TT_STR ? tt_class_param_index(cls, n->v.s, n->len) : -1;
		if (k < 0) {
			char repr[64];
			tt_value_repr(n, repr, sizeof(repr));
			return tt_fail(err, TT_BAD_FILTER, "class \"%s\": filter names unknown param %s",
				       cls->name, repr);
		}
		tt_mask_set(out, (uint32_t)k);
	}
	return 0;
}

/* History range options {last: n} / {since: seq} (or history/since on
 * attach). Sets *from_seq (events with seq > from_seq) and *complete. */
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

int tt_store_attach(tt_client *c, uint64_t rid, const tt_value *clsv, const tt_value *sidv,
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
		bool ok;
		uint64_t id = req_state_id(sidv, &ok);
		st = ok ? tt_idmap_get(&S.states, id) : NULL;
		if (!ok && sidv->type != TT_INT)
			return tt_fail(err, TT_BAD_MESSAGE, "state id must be an integer or nil");
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
	if (filter && (rc = parse_filter(ce->cls, filter, &mask, err)) < 0)
		return rc;
	bool want, complete;
	uint64_t from;
	if ((rc = history_range(st, opts->type == TT_MAP ? opts : NULL, "history", &want, &from,
				&complete, err)) < 0)
		return rc;
	if (s->n_instances >= S.cfg->max_instances)
		return tt_fail(err, TT_LIMIT, "this session holds too many instances (--max-instances %u)",
			       S.cfg->max_instances);
	tt_instance *in = instance_new(st, s, filter ? &mask : NULL, 0, true);
	enc_attach_result(&S.out, rid, in, filter, want, from, complete);
	send_out(c);
	return 0;
}

static int instance_of(tt_client *c, uint64_t id, tt_instance **out, tt_error *err)
{
	tt_instance *in = tt_idmap_get(&S.instances, id);
	if (!in || in->session != c->session)
		return tt_fail(err, TT_UNKNOWN_INSTANCE, "instance %llu is not one of this session's",
			       (unsigned long long)id);
	*out = in;
	return 0;
}

int tt_store_detach(tt_client *c, uint64_t rid, uint64_t id, tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	instance_free(in, true);
	reply_nil(c, rid);
	return 0;
}

int tt_store_delete(tt_client *c, uint64_t rid, uint64_t id, tt_error *err)
{
	tt_instance *in = NULL;
	int rc = instance_of(c, id, &in, err);
	if (rc < 0)
		return rc;
	tt_state *st = in->state;
	if (st->owner != c->session->id)
		return tt_fail(err, TT_NOT_OWNER, "class \"%s\": state %llu is not owned by this session",
			       cname(st), (unsigned long long)st->id);
	state_delete(st, "deleted", c->session);
	reply_nil(c, rid);
	return 0;
}

/* ---- the update path -------------------------------------------------- */

/* Encode [66, id, seq, time, changes(, sched)] with the changes seen
 * through view (all when NULL). Returns false when the view sees none. */
/* [66, id, seq, time, ...: the caller appends the changes, then the
 * schedule id when there is one (6 fields instead of 5). */
static void enc_update_head(tt_buf *b, uint64_t id, uint64_t seq, double time, uint64_t sched)
{
	tt_buf_clear(b);
	tt_enc_array(b, sched ? 6 : 5);
	tt_enc_uint(b, TT_MSG_UPDATE);
	tt_enc_uint(b, id);
	tt_enc_uint(b, seq);
	tt_enc_float(b, time);
}

/* The n applied values as a changes map, restricted to view (all when
 * NULL); encoded from the values themselves, so a filtered recipient costs
 * no decoding. Returns the number of keys. */
static uint32_t enc_applied(tt_buf *b, const tt_class *cls, const uint32_t *idx,
			    const tt_value *vals, uint32_t n, const tt_mask *view)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++)
		k += !view || tt_mask_has(view, idx[i]);
	tt_enc_map(b, k);
	for (uint32_t i = 0; i < n; i++) {
		if (view && !tt_mask_has(view, idx[i]))
			continue;
		tt_enc_strn(b, cls->params[idx[i]].name, cls->params[idx[i]].name_len);
		tt_enc_value(b, &vals[i]);
	}
	return k;
}

/* The writer's RESULT {seq, time, changes}: S.changes seen through its
 * own filters. Nothing when req is NULL (a scheduled set applied). */
static void reply_set(tt_client *req, uint64_t rid, tt_state *st, const tt_instance *in)
{
	if (!req)
		return;
	const tt_sub *mine = &st->subs[in->sub];
	result_begin(&S.out, rid);
	tt_enc_map(&S.out, 3);
	tt_enc_str(&S.out, "seq");
	tt_enc_uint(&S.out, st->seq);
	tt_enc_str(&S.out, "time");
	tt_enc_float(&S.out, st->time);
	tt_enc_str(&S.out, "changes");
	enc_changes_view(&S.out, st, tt_buf_data(&S.changes), S.changes.len,
			 mine ? sub_view(mine) : NULL);
	send_out(req);
}

/* Apply validated values to st at sync time `time`, as written by session
 * origin: diff, seq + 1, history, persistence, the writer's RESULT (when
 * req is not NULL; a scheduled set has none) and one UPDATE for every
 * other subscriber. vals may be rewritten (stored form). */
static void apply(tt_state *st, uint32_t *idx, tt_value *vals, uint32_t n, uint64_t origin,
		  tt_client *req, const tt_instance *req_in, uint64_t rid, uint64_t sched, double time)
{
	const tt_class *cls = st->ce->cls;

	/* Which keys go out: changed, or filterChange:false, or event. */
	tt_buf_clear(&S.any);
	uint32_t n_out = 0;
	for (uint32_t i = 0; i < n; i++)
		vals[i] = stored_form(&cls->params[idx[i]], &vals[i]);
	for (uint32_t i = 0; i < n; i++) {
		const tt_param *p = &cls->params[idx[i]];
		fix_raw(&vals[i]);
		bool changed = !tt_value_equal(&st->slots[idx[i]].v, &vals[i]);
		if (changed || !p->filter_change || p->event)
			idx[n_out] = idx[i], vals[n_out++] = vals[i];
	}
	if (!n_out) {
		tt_buf_clear(&S.changes);
		tt_enc_map(&S.changes, 0);
		reply_set(req, rid, st, req_in);
		return;
	}

	/* Apply, then encode the changes once. */
	st->seq++;
	st->time = time;
	for (uint32_t i = 0; i < n_out; i++)
		slot_set(&st->slots[idx[i]], &vals[i]);
	tt_buf_clear(&S.changes);
	enc_applied(&S.changes, cls, idx, vals, n_out, NULL);
	tt_history_push(&st->hist, S.cfg->history, st->seq, st->time, origin,
			tt_buf_data(&S.changes), S.changes.len);
	tt_db_event(st, tt_history_at(&st->hist, st->hist.len - 1));
	mark_dirty(st);

	/* The writer's answer first, so its next set can go while the fan-out
	 * drains. */
	reply_set(req, rid, st, req_in);

	/* One UPDATE for every unfiltered subscriber. */
	enc_update_head(&S.out, st->id, st->seq, st->time, sched);
	tt_buf_append(&S.out, tt_buf_data(&S.changes), S.changes.len);
	if (sched)
		tt_enc_uint(&S.out, sched);
	tt_msg *m = tt_msg_new(tt_buf_data(&S.out), S.out.len);
	for (uint32_t i = 0; i < st->n_subs; i++) {
		tt_sub *sub = &st->subs[i];
		tt_client *to = sub->session->client;
		if ((req && sub->session == req->session) || !to)
			continue;
		if (sub->n_all)
			tt_client_send(to, m);
		else { /* filtered: its own encoding, only if it sees a key */
			enc_update_head(&S.tmp, st->id, st->seq, st->time, sched);
			if (!enc_applied(&S.tmp, cls, idx, vals, n_out, &sub->mask))
				continue;
			if (sched)
				tt_enc_uint(&S.tmp, sched);
			tt_client_send_buf(to, &S.tmp);
		}
	}
	tt_msg_unref(m);

	/* Event params are volatile: back to nil once sent. */
	for (uint32_t i = 0; i < n_out; i++)
		if (cls->params[idx[i]].event) {
			tt_value nil = tt_nil();
			slot_set(&st->slots[idx[i]], &nil);
		}
}

/* ---- scheduled sets (PROTOCOL.md §6a) ---------------------------------- */

#define MAX_SCHED_PER_STATE 1000

struct tt_sched {
	uint64_t id;
	tt_state *st;      /* borrowed */
	double at;
	uint64_t origin;
	tt_buf changes;    /* owned: encoded map of validated values */
	tt_sched *next;    /* all schedules, by (at, id) */
};

/* Encode [71, state, id, at, changes] through view; false if it sees none. */
static bool enc_scheduled(tt_buf *b, const tt_sched *sc, const tt_mask *view)
{
	tt_buf_clear(b);
	tt_enc_array(b, 5);
	tt_enc_uint(b, TT_MSG_SCHEDULED);
	tt_enc_uint(b, sc->st->id);
	tt_enc_uint(b, sc->id);
	tt_enc_float(b, sc->at);
	return enc_changes_view(b, sc->st, tt_buf_data(&sc->changes), sc->changes.len, view) > 0;
}

static tt_sched *sched_add(tt_state *st, uint64_t id, double at, uint64_t origin,
			   const void *changes, size_t len)
{
	tt_sched *sc = tt_calloc(1, sizeof(*sc));
	sc->id = id;
	if (id >= S.next_sched_id)
		S.next_sched_id = id + 1;
	sc->st = st;
	sc->at = at;
	sc->origin = origin;
	tt_buf_init(&sc->changes, 0);
	tt_buf_append(&sc->changes, changes, len);
	tt_sched **pp = &S.scheds;
	while (*pp && ((*pp)->at < at || ((*pp)->at == at && (*pp)->id < id)))
		pp = &(*pp)->next;
	sc->next = *pp;
	*pp = sc;
	st->n_sched++;
	return sc;
}

static void sched_free(tt_sched *sc)
{
	tt_sched **pp = &S.scheds;
	while (*pp != sc)
		pp = &(*pp)->next;
	*pp = sc->next;
	sc->st->n_sched--;
	tt_buf_free(&sc->changes);
	free(sc);
}

static void sched_drop_state(tt_state *st)
{
	tt_sched *sc = S.scheds;
	while (st->n_sched && sc) {
		tt_sched *next = sc->next;
		if (sc->st == st)
			sched_free(sc);
		sc = next;
	}
}

/* Pending schedules of st, for the ATTACH result: [[id, at, changes]...]. */
static uint32_t n_sched_visible(const tt_state *st, const tt_mask *view)
{
	uint32_t n = 0;
	if (!st->n_sched)
		return 0;
	for (tt_sched *sc = S.scheds; sc; sc = sc->next)
		if (sc->st == st && enc_scheduled(&S.tmp, sc, view))
			n++;
	return n;
}

static void enc_sched_list(tt_buf *b, const tt_state *st, const tt_mask *view, uint32_t n)
{
	tt_enc_array(b, n);
	for (tt_sched *sc = S.scheds; sc && n; sc = sc->next) {
		if (sc->st != st)
			continue;
		size_t at = b->len;
		tt_enc_array(b, 3);
		tt_enc_uint(b, sc->id);
		tt_enc_float(b, sc->at);
		if (enc_changes_view(b, st, tt_buf_data(&sc->changes), sc->changes.len, view))
			n--;
		else
			b->len = at; /* the view sees nothing of it */
	}
}

static int schedule(tt_client *c, uint64_t rid, const tt_instance *in, const uint32_t *idx,
		    const tt_value *vals, uint32_t n, double at, tt_error *err)
{
	tt_state *st = in->state;
	const tt_class *cls = st->ce->cls;
	if (st->n_sched >= MAX_SCHED_PER_STATE)
		return tt_fail(err, TT_LIMIT, "class \"%s\": state %llu has %d scheduled sets pending",
			       cls->name, (unsigned long long)st->id, MAX_SCHED_PER_STATE);
	tt_buf_clear(&S.changes);
	tt_enc_map(&S.changes, n);
	for (uint32_t i = 0; i < n; i++) {
		tt_enc_strn(&S.changes, cls->params[idx[i]].name, cls->params[idx[i]].name_len);
		tt_enc_value(&S.changes, &vals[i]);
	}
	tt_sched *sc = sched_add(st, S.next_sched_id, at, c->session->id,
				 tt_buf_data(&S.changes), S.changes.len);
	tt_db_schedule(sc->id, st->id, at, sc->origin, tt_buf_data(&sc->changes),
		       sc->changes.len, true);
	const tt_sub *mine = &st->subs[in->sub];
	result_begin(&S.out, rid);
	tt_enc_map(&S.out, 3);
	tt_enc_str(&S.out, "scheduled");
	tt_enc_uint(&S.out, sc->id);
	tt_enc_str(&S.out, "at");
	tt_enc_float(&S.out, at);
	tt_enc_str(&S.out, "changes"); /* as validated and coerced */
	enc_changes_view(&S.out, st, tt_buf_data(&sc->changes), sc->changes.len,
			 mine ? sub_view(mine) : NULL);
	send_out(c);
	tt_msg *m = NULL;
	for (uint32_t i = 0; i < st->n_subs; i++) {
		tt_sub *sub = &st->subs[i];
		tt_client *to = sub->session->client;
		if (sub->session == c->session || !to)
			continue;
		if (sub->n_all) {
			if (!m) {
				enc_scheduled(&S.tmp, sc, NULL);
				m = tt_msg_new(tt_buf_data(&S.tmp), S.tmp.len);
			}
			tt_client_send(to, m);
		} else if (enc_scheduled(&S.tmp, sc, &sub->mask)) {
			tt_client_send_buf(to, &S.tmp);
		}
	}
	tt_msg_unref(m);
	return 0;
}

double tt_store_next_schedule(void)
{
	return S.scheds ? S.scheds->at : -1;
}

void tt_store_run_schedules(double now)
{
	static uint32_t idx[TT_MAX_PARAMS];
	static tt_value vals[TT_MAX_PARAMS];
	while (S.scheds && S.scheds->at <= now) {
		tt_sched *sc = S.scheds;
		tt_state *st = sc->st;
		const tt_class *cls = st->ce->cls;
		tt_value m;
		size_t off = 0;
		uint32_t n = 0;
		tt_arena_reset(&S.arena);
		if (tt_decode(S.dec, tt_buf_data(&sc->changes), sc->changes.len, &off, &S.arena, &m,
			      NULL) == 0 && m.type == TT_MAP) {
			for (uint32_t i = 0; i < m.len; i++) {
				int k = tt_class_param_index(cls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len);
				if (k < 0)
					continue;
				idx[n] = (uint32_t)k;
				vals[n++] = m.v.pairs[i].val;
			}
		}
		tt_db_schedule(sc->id, st->id, sc->at, sc->origin, NULL, 0, false);
		/* vals point into sc->changes: apply before freeing it */
		apply(st, idx, vals, n, sc->origin, NULL, NULL, 0, sc->id, sc->at);
		sched_free(sc);
	}
}

int tt_store_set(tt_client *c, uint64_t rid, uint64_t id, tt_value *updates,
		 const tt_value *opts, tt_error *err)
{
	static uint32_t idx[TT_MAX_PARAMS];
	static tt_value vals[TT_MAX_PARAMS];
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
	if ((rc = validate(st->ce->cls, in, updates, idx, vals, err)) < 0)
		return rc;
	double now = tt_clock_now();
	if (at > now)
		return schedule(c, rid, in, idx, vals, updates->len, at, err);
	apply(st, idx, vals, updates->len, c->session->id, c, in, rid, 0, now);
	return 0;
}

int tt_store_history(tt_client *c, uint64_t rid, uint64_t id, const tt_value *opts, tt_error *err)
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
	const tt_mask *view = in->filtered ? &in->mask : NULL;
	result_begin(&S.out, rid);
	tt_enc_map(&S.out, 2);
	tt_enc_str(&S.out, "events");
	uint32_t n = 0;
	for (uint32_t i = 0; i < st->hist.len; i++)
		if (tt_history_at(&st->hist, i)->seq > from)
			n++;
	tt_enc_array(&S.out, n);
	for (uint32_t i = 0; i < st->hist.len; i++) {
		const tt_event *e = tt_history_at(&st->hist, i);
		if (e->seq > from)
			enc_event(&S.out, st, e, view);
	}
	tt_enc_str(&S.out, "complete");
	tt_enc_bool(&S.out, complete);
	send_out(c);
	return 0;
}

int tt_store_observe(tt_client *c, uint64_t rid, const tt_value *clsv, bool on, tt_error *err)
{
	tt_session *s = c->session;
	tt_class_entry *ce = NULL;
	if (clsv->type != TT_NIL) {
		int rc = class_of(clsv, &ce, err);
		if (rc < 0)
			return rc;
	}
	tt_observe **pp = &s->observes;
	while (*pp && (*pp)->cls != ce)
		pp = &(*pp)->next;
	if (!on) {
		if (*pp) {
			tt_observe *o = *pp;
			*pp = o->next;
			free(o);
			tt_db_observe(s, ce ? ce->cls : NULL, false);
		}
		reply_nil(c, rid);
		return 0;
	}
	if (!*pp) {
		tt_observe *o = tt_calloc(1, sizeof(*o));
		o->cls = ce;
		*pp = o;
		tt_db_observe(s, ce ? ce->cls : NULL, true);
	}
	result_begin(&S.out, rid);
	tt_enc_map(&S.out, 1);
	tt_enc_str(&S.out, "states");
	uint32_t n = ce ? ce->n_states : 0;
	if (!ce)
		for (tt_state *st = S.first; st; st = st->next)
			n++;
	tt_enc_array(&S.out, n);
	for (tt_state *st = ce ? ce->first : S.first; st; st = ce ? st->cnext : st->next) {
		tt_enc_array(&S.out, 3);
		tt_enc_strn(&S.out, st->ce->cls->name, st->ce->cls->name_len);
		tt_enc_uint(&S.out, st->id);
		tt_enc_uint(&S.out, st->owner);
	}
	send_out(c);
	return 0;
}

/* ---- sessions --------------------------------------------------------- */

static bool key_as_id(const tt_value *k, uint64_t *out)
{
	double d = -1;
	if (k->type == TT_STR) {
		char tmp[24];
		size_t n = TT_MIN(k->len, sizeof(tmp) - 1);
		memcpy(tmp, k->v.s, n);
		tmp[n] = 0;
		char *end;
		d = strtod(tmp, &end);
		if (end == tmp || *end)
			return false;
	} else if (!tt_as_double(k, &d)) {
		return false;
	}
	if (!(d >= 1 && d < 9007199254740992.0))
		return false;
	*out = (uint64_t)d;
	return true;
}

void tt_store_resume(tt_session *s, const tt_value *seqs)
{
	tt_client *c = s->client;
	/* states the client knew and that were deleted while it was away */
	if (seqs && seqs->type == TT_MAP)
		for (uint32_t i = 0; i < seqs->len; i++) {
			uint64_t id;
			if (!key_as_id(&seqs->v.pairs[i].key, &id))
				continue;
			if (tt_idmap_get(&S.states, id))
				continue; /* alive: held (caught up below) or never attached */
			tt_buf_clear(&S.out);
			tt_enc_array(&S.out, 3);
			tt_enc_uint(&S.out, TT_MSG_DELETED);
			const char *why = tt_idmap_get(&S.tombstones, id);
			tt_enc_uint(&S.out, id);
			tt_enc_str(&S.out, why ? why : "deleted");
			send_out(c);
		}
	for (tt_instance *in = s->instances; in; in = in->s_next) {
		tt_state *st = in->state;
		tt_sub *sub = &st->subs[in->sub];
		/* once per state: skip it unless this is the session's first
		 * instance on it */
		bool done = false;
		for (tt_instance *j = s->instances; j != in; j = j->s_next)
			if (j->state == st)
				done = true;
		if (done)
			continue;
		uint64_t last = UINT64_MAX, id;
		if (seqs && seqs->type == TT_MAP)
			for (uint32_t i = 0; i < seqs->len; i++) {
				const tt_value *v = &seqs->v.pairs[i].val;
				if (key_as_id(&seqs->v.pairs[i].key, &id) && id == st->id &&
				    v->type == TT_INT && v->v.i >= 0)
					last = (uint64_t)v->v.i;
			}
		const tt_mask *view = sub_view(sub);
		/* pending schedules again: a client ignores the ids it knows */
		for (tt_sched *sc = st->n_sched ? S.scheds : NULL; sc; sc = sc->next)
			if (sc->st == st && enc_scheduled(&S.tmp, sc, view))
				tt_client_send_buf(c, &S.tmp);
		if (last == st->seq)
			continue;
		uint64_t first = tt_history_first_seq(&st->hist);
		if (last < st->seq && first && first <= last + 1) {
			for (uint32_t i = 0; i < st->hist.len; i++) {
				const tt_event *e = tt_history_at(&st->hist, i);
				if (e->seq <= last)
					continue;
				enc_update_head(&S.out, st->id, e->seq, e->time, 0);
				if (enc_changes_view(&S.out, st, tt_buf_data(&e->changes), e->changes.len, view))
					send_out(c);
			}
		} else {
			tt_buf_clear(&S.out);
			tt_enc_array(&S.out, 5);
			tt_enc_uint(&S.out, TT_MSG_SNAPSHOT);
			tt_enc_uint(&S.out, st->id);
			tt_enc_uint(&S.out, st->seq);
			tt_enc_float(&S.out, st->time);
			enc_values(&S.out, st, view);
			send_out(c);
		}
	}
}

void tt_store_session_end(tt_session *s)
{
	if (s->n_owned) {
		tt_state *st = S.first;
		while (st) {
			tt_state *next = st->next;
			if (st->owner == s->id) {
				/* the session's own instances go first, so `next` stays valid */
				state_delete(st, "owner left", s);
			}
			st = next;
		}
	}
	while (s->instances)
		instance_free(s->instances, true);
	while (s->observes) {
		tt_observe *o = s->observes;
		s->observes = o->next;
		free(o);
	}
	tt_db_session_ended(s);
	tt_session_free(s);
}

void tt_store_session_gone(tt_session *s)
{
	s->client = NULL;
	s->gone_at = tt_clock_now();
	tt_db_session_gone(s);
	if (S.cfg->resume_window <= 0 && !S.stopping)
		tt_store_session_end(s);
}

void tt_store_stopping(void)
{
	S.stopping = true;
}

void tt_store_tick(void)
{
	double now = tt_clock_now();
	tt_session *s = tt_session_first();
	while (s) {
		tt_session *next = s->next;
		if (!s->client && now - s->gone_at >= S.cfg->resume_window)
			tt_store_session_end(s);
		s = next;
	}
}

int tt_store_delete_class(const char *name, tt_error *err)
{
	tt_class_entry *ce = tt_store_class(name, strlen(name));
	if (!ce)
		return tt_fail(err, TT_UNKNOWN_CLASS, "class \"%s\" is not defined", name);
	while (ce->first)
		state_delete(ce->first, "class deleted", NULL);
	for (tt_session *s = tt_session_first(); s; s = s->next) {
		tt_observe **pp = &s->observes;
		while (*pp) {
			if ((*pp)->cls == ce) {
				tt_observe *o = *pp;
				*pp = o->next;
				free(o);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	tt_class_entry **pp = &S.classes;
	while (*pp != ce)
		pp = &(*pp)->next;
	*pp = ce->next;
	S.n_classes--;
	tt_db_class_deleted(ce->cls);
	tt_class_free(ce->cls);
	free(ce);
	return 0;
}

/* ---- durability ------------------------------------------------------- */

int tt_store_commit(void)
{
	int rc = 0;
	if (S.dirty) {
		rc = tt_db_commit(S.dirty);
		for (tt_state *st = S.dirty; st;) {
			tt_state *next = st->dirty_next;
			st->dirty = false;
			st->dirty_next = NULL;
			st = next;
		}
		S.dirty = NULL;
	} else {
		rc = tt_db_commit(NULL);
	}
	return rc;
}

/* ---- restore from the database ---------------------------------------- */

void tt_store_encode_values(tt_buf *b, const tt_state *st)
{
	enc_values(b, st, NULL);
}

void tt_store_next_ids(uint64_t *state, uint64_t *instance)
{
	*state = S.next_state_id;
	*instance = S.next_instance_id;
}

void tt_store_set_next_ids(uint64_t state, uint64_t instance)
{
	if (state > S.next_state_id)
		S.next_state_id = state;
	if (instance > S.next_instance_id)
		S.next_instance_id = instance;
}

int tt_store_restore_state(uint64_t id, const char *name, size_t len, uint64_t owner,
			   uint64_t seq, double time, tt_value *values, tt_error *err)
{
	tt_class_entry *ce = tt_store_class(name, len);
	if (!ce)
		return tt_fail(err, TT_INTERNAL, "state %llu of unknown class \"%.*s\"",
			       (unsigned long long)id, (int)len, name);
	const tt_class *cls = ce->cls;
	tt_state *st = state_new(ce, id, owner);
	st->seq = seq;
	st->time = time;
	st->db_trimmed = seq > S.cfg->history ? seq - S.cfg->history : 0;
	static uint32_t idx[TT_MAX_PARAMS];
	static tt_value vals[TT_MAX_PARAMS];
	uint32_t n = 0;
	for (uint32_t k = 0; k < cls->n_params; k++) {
		const tt_param *p = &cls->params[k];
		tt_value *v = (tt_value *)tt_map_get(values, p->name);
		tt_error e;
		if (v && tt_param_coerce(cls, p, v, &vals[n], &e) == 0)
			idx[n++] = k;
		else if (v)
			tt_log_warn("state %llu: %s; using the default", (unsigned long long)id, e.msg);
	}
	init_slots(st, idx, vals, n);
	return 0;
}

void tt_store_restore_tombstone(uint64_t state, const char *reason)
{
	static const char *const reasons[] = {"deleted", "owner left", "class deleted"};
	const char *r = reasons[0];
	for (size_t i = 0; i < sizeof(reasons) / sizeof(*reasons); i++)
		if (!strcmp(reason, reasons[i]))
			r = reasons[i];
	if (!tt_idmap_get(&S.tombstones, state))
		tt_idmap_put(&S.tombstones, state, (void *)(uintptr_t)r);
}

void tt_store_restore_schedule(uint64_t id, uint64_t state, double at, uint64_t origin,
			       const void *changes, size_t len)
{
	tt_state *st = tt_idmap_get(&S.states, state);
	if (st)
		sched_add(st, id, at, origin, changes, len);
}

uint64_t tt_store_next_sched_id(void)
{
	return S.next_sched_id;
}

void tt_store_set_next_sched_id(uint64_t id)
{
	if (id > S.next_sched_id)
		S.next_sched_id = id;
}

void tt_store_restore_done(void)
{
	tt_state *st = S.first;
	while (st) {
		tt_state *next = st->next;
		if (st->owner) {
			tt_session *s = tt_session_by_id(st->owner);
			if (s)
				s->n_owned++;
			else /* its session ended in the same commit */
				state_delete(st, "owner left", NULL);
		}
		st = next;
	}
}

void tt_store_restore_event(uint64_t state, uint64_t seq, double time, uint64_t origin,
			    const void *changes, size_t len)
{
	tt_state *st = tt_idmap_get(&S.states, state);
	if (st)
		tt_history_push(&st->hist, S.cfg->history, seq, time, origin, changes, len);
}

void tt_store_restore_instance(uint64_t id, uint64_t session, uint64_t state,
			       const tt_value *filter)
{
	tt_session *s = tt_session_by_id(session);
	tt_state *st = tt_idmap_get(&S.states, state);
	if (!s || !st)
		return;
	tt_mask mask;
	bool filtered = filter->type == TT_ARRAY && parse_filter(st->ce->cls, filter, &mask, NULL) == 0;
	instance_new(st, s, filtered ? &mask : NULL, id, false);
}

void tt_store_restore_observe(uint64_t session, const char *name, size_t len)
{
	tt_session *s = tt_session_by_id(session);
	tt_class_entry *ce = name ? tt_store_class(name, len) : NULL;
	if (!s || (name && !ce))
		return;
	tt_observe *o = tt_calloc(1, sizeof(*o));
	o->cls = ce;
	o->next = s->observes;
	s->observes = o;
}

/* ---- start and stop --------------------------------------------------- */

int tt_store_init(const tt_config *cfg)
{
	memset(&S, 0, sizeof(S));
	S.cfg = cfg;
	tt_idmap_init(&S.states);
	tt_idmap_init(&S.instances);
	tt_idmap_init(&S.tombstones);
	S.next_state_id = 1;
	S.next_instance_id = 1;
	S.next_sched_id = 1;
	tt_buf_init(&S.out, 0);
	tt_buf_init(&S.changes, 0);
	tt_buf_init(&S.any, 0);
	tt_buf_init(&S.tmp, 0);
	tt_arena_init(&S.arena, 0);
	S.dec = tt_decoder_new();
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_schema_file(const char *path, tt_error *err)
{
	tt_arena a;
	tt_arena_init(&a, 0);
	tt_value root;
	int rc = tt_json_load_file(path, &a, &root, err);
	if (rc < 0)
		goto out;
	const tt_value *name = tt_map_get(&root, "class");
	const tt_value *desc = tt_map_get(&root, "description");
	const tt_value *server = tt_map_get(&root, "server");
	if (root.type != TT_MAP || !name || !tt_name_ok(name) || !desc) {
		rc = tt_fail(err, TT_BAD_DESCRIPTION,
			     "%s: expected {\"class\": NAME, \"description\": {...}, \"server\": bool}", path);
		goto out;
	}
	if (server && server->type != TT_BOOL) {
		rc = tt_fail(err, TT_BAD_DESCRIPTION, "%s: \"server\" must be true or false", path);
		goto out;
	}
	bool created;
	if ((rc = tt_store_define(name->v.s, name->len, desc, &created, err)) < 0) {
		tt_error e = *err;
		rc = tt_fail(err, e.code, "%s: %s", path, e.msg);
		goto out;
	}
	if (server && server->v.b)
		create_server_state(tt_store_class(name->v.s, name->len));
out:
	tt_arena_destroy(&a);
	return rc;
}

int tt_store_load_schemas(const char *dir, tt_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return tt_fail(err, TT_BAD_DESCRIPTION, "cannot open schemas directory %s", dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0 && e->d_name[0] != '.') {
			names = tt_realloc(names, sizeof(char *) * (n + 1));
			names[n++] = tt_strndup(e->d_name, len);
		}
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(char *), name_cmp);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!rc) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			rc = load_schema_file(path, err);
			if (!rc)
				tt_log_info("loaded class from %s", path);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

void tt_store_destroy(void)
{
	while (S.scheds)
		sched_free(S.scheds);
	while (S.first)
		state_delete(S.first, "server stopped", NULL);
	while (tt_session_first()) {
		tt_session *s = tt_session_first();
		while (s->observes) {
			tt_observe *o = s->observes;
			s->observes = o->next;
			free(o);
		}
		tt_session_free(s);
	}
	while (S.classes) {
		tt_class_entry *ce = S.classes;
		S.classes = ce->next;
		tt_class_free(ce->cls);
		free(ce);
	}
	tt_idmap_free(&S.states);
	tt_idmap_free(&S.instances);
	tt_idmap_free(&S.tombstones);
	tt_buf_free(&S.out);
	tt_buf_free(&S.changes);
	tt_buf_free(&S.any);
	tt_buf_free(&S.tmp);
	tt_arena_destroy(&S.arena);
	tt_decoder_free(S.dec);
}
