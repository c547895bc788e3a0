/* SPDX-License-Identifier: MIT */
/* store.c: the model: classes, states, instances and subscriptions,
 * observes, tombstones, pending schedules; validation and application of
 * values. Every change that must survive a restart is put as a db row. */
#include "store.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "db.h"
#include "idmap.h"
#include "log.h"

static struct {
	const tt_config *cfg;
	tt_class_entry *classes;  /* owned list, definition order */
	uint32_t n_classes;
	tt_state *first, *last;   /* all states, creation order */
	tt_idmap states;          /* id -> tt_state */
	tt_idmap instances;       /* id -> tt_instance */
	tt_idmap tombstones;      /* deleted state id -> reason (static string) */
	uint64_t *tomb_ring;      /* their ids, oldest at tomb_head */
	uint32_t tomb_head, tomb_n, tomb_cap;
	uint64_t next_state_id, next_instance_id, next_sched_id;
	uint64_t put_state_id, put_instance_id, put_sched_id, put_session_id; /* last put */
	tt_state *dirty;          /* states whose values changed this turn */
	tt_buf row;               /* encoding of one row at a time */
	tt_buf row2;              /* a second column of it */
	uint32_t n_states;
	tt_observe *observe_all;  /* observes of every class (list through cnext) */
	tt_decoder *dec;          /* stored changes back into values */
	tt_arena arena;
	uint64_t mem;             /* bytes of values, histories and schedules */
} S;

static void sched_forget(tt_sched *sc);
static void mark_dirty(tt_state *st);
static void sub_recompute(tt_state *st, uint32_t idx);
static void put_instance_row(const tt_instance *in);

void tt_changes_init(tt_changes *cs)
{
	memset(cs, 0, sizeof(*cs));
	tt_buf_init(&cs->any, 0);
	tt_buf_init(&cs->enc, 0);
}

void tt_changes_free(tt_changes *cs)
{
	tt_buf_free(&cs->any);
	tt_buf_free(&cs->enc);
}

/* ---- values --------------------------------------------------------------- */

/* Bytes a stored value counts against --max-state-bytes. */
static size_t value_size(const tt_value *v)
{
	return v->type == TT_STR || v->type == TT_RAW ? v->len : 0;
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

/* The stored form of every value of cs: `any` becomes canonical msgpack
 * bytes in cs->any (compared and kept as bytes), the rest stays as it is. */
static void to_stored_form(const tt_class *cls, tt_changes *cs)
{
	tt_buf_clear(&cs->any);
	size_t at[TT_MAX_PARAMS];
	for (uint32_t i = 0; i < cs->n; i++) {
		tt_value *v = &cs->vals[i];
		at[i] = SIZE_MAX;
		if (cls->params[cs->idx[i]].type != TT_PT_ANY || v->type == TT_NIL)
			continue;
		at[i] = cs->any.len;
		tt_enc_value(&cs->any, v);
		v->len = (uint32_t)(cs->any.len - at[i]);
	}
	/* pointers only once the buffer stopped growing */
	for (uint32_t i = 0; i < cs->n; i++)
		if (at[i] != SIZE_MAX) {
			cs->vals[i].type = TT_RAW;
			cs->vals[i].v.s = (const char *)tt_buf_data(&cs->any) + at[i];
		}
}

/* Fill a new state's slots: the defaults, with init's keys on top. */
static void init_slots(tt_state *st, const tt_changes *init)
{
	const tt_class *cls = st->ce->cls;
	for (uint32_t k = 0; k < cls->n_params; k++) {
		const tt_value *def = &cls->params[k].def;
		if (cls->params[k].type == TT_PT_ANY && def->type != TT_NIL) {
			tt_buf_clear(&S.row);
			tt_enc_value(&S.row, def);
			tt_value raw = {.type = TT_RAW, .len = (uint32_t)S.row.len};
			raw.v.s = (const char *)tt_buf_data(&S.row);
			slot_set(&st->slots[k], &raw);
		} else {
			slot_set(&st->slots[k], def);
		}
	}
	if (init)
		for (uint32_t i = 0; i < init->n; i++)
			slot_set(&st->slots[init->idx[i]], &init->vals[i]);
	S.mem -= st->value_bytes;
	st->value_bytes = 0;
	for (uint32_t k = 0; k < cls->n_params; k++)
		st->value_bytes += value_size(&st->slots[k].v);
	S.mem += st->value_bytes;
}

/* Every param of st seen through view: its value, or (init) the value
 * given at creation, else its default. */
static void encode_params(tt_buf *b, const tt_state *st, const tt_mask *view, bool init)
{
	const tt_class *cls = st->ce->cls;
	uint32_t n = 0;
	for (uint32_t k = 0; k < cls->n_params; k++)
		if (!view || tt_mask_has(view, k))
			n++;
	tt_enc_map(b, n);
	for (uint32_t k = 0; k < cls->n_params; k++) {
		if (view && !tt_mask_has(view, k))
			continue;
		const tt_value *v = &st->slots[k].v;
		if (init) {
			v = &cls->params[k].def;
			for (uint32_t i = 0; i < st->n_init; i++)
				if (st->init_idx[i] == k)
					v = &st->init_vals[i].v;
		}
		tt_enc_strn(b, cls->params[k].name, cls->params[k].name_len);
		tt_enc_value(b, v);
	}
}

void tt_store_encode_values(tt_buf *b, const tt_state *st, const tt_mask *view)
{
	encode_params(b, st, view, false);
}

/* Keep the values given at a state's creation (cs in stored form). */
static void keep_init(tt_state *st, const tt_changes *cs)
{
	if (!cs || !cs->n)
		return;
	st->n_init = cs->n;
	st->init_idx = tt_malloc(sizeof(*st->init_idx) * cs->n);
	st->init_vals = tt_calloc(cs->n, sizeof(*st->init_vals));
	for (uint32_t i = 0; i < cs->n; i++) {
		st->init_idx[i] = cs->idx[i];
		slot_set(&st->init_vals[i], &cs->vals[i]);
		S.mem += value_size(&st->init_vals[i].v);
	}
}

static void free_init(tt_state *st)
{
	for (uint32_t i = 0; i < st->n_init; i++) {
		S.mem -= value_size(&st->init_vals[i].v);
		free(st->init_vals[i].mem);
	}
	free(st->init_idx);
	free(st->init_vals);
	st->n_init = 0;
	st->init_idx = NULL;
	st->init_vals = NULL;
}

/* The values given at creation, as one map (the database's row). */
static void encode_given(tt_buf *b, const tt_state *st)
{
	const tt_class *cls = st->ce->cls;
	tt_enc_map(b, st->n_init);
	for (uint32_t i = 0; i < st->n_init; i++) {
		const tt_param *p = &cls->params[st->init_idx[i]];
		tt_enc_strn(b, p->name, p->name_len);
		tt_enc_value(b, &st->init_vals[i].v);
	}
}

void tt_store_encode_init(tt_buf *b, const tt_state *st, const tt_mask *view)
{
	encode_params(b, st, view, true);
}

/* ---- classes ---------------------------------------------------------------- */

tt_class_entry *tt_store_class(const char *name, size_t len)
{
	for (tt_class_entry *ce = S.classes; ce; ce = ce->next)
		if (ce->cls->name_len == len && memcmp(ce->cls->name, name, len) == 0)
			return ce;
	return NULL;
}

tt_class_entry *tt_store_first_class(void)
{
	return S.classes;
}

void tt_store_class_rights(tt_class_entry *ce, tt_rights *rights)
{
	tt_rights_free(ce->rights);
	ce->rights = rights;
}

/* A class from desc, within --max-description. */
static int make_class(const char *name, size_t len, const tt_value *desc, bool strict,
		      tt_class **out, tt_error *err)
{
	tt_class *cls = NULL;
	int rc = strict ? tt_class_create_strict(name, len, desc, &cls, err)
			: tt_class_create(name, len, desc, &cls, err);
	if (rc < 0)
		return rc;
	if (cls->desc.len > S.cfg->max_description) {
		size_t n = cls->desc.len;
		tt_class_free(cls);
		return tt_fail(err, TT_BAD_DESCRIPTION,
			       "class \"%.*s\": its description takes %zu bytes, more than --max-description %u",
			       (int)len, name, n, S.cfg->max_description);
	}
	*out = cls;
	return 0;
}

int tt_store_define(const char *name, size_t len, const tt_value *desc, bool strict,
		    bool *out_new, tt_error *err)
{
	tt_class *cls = NULL;
	int rc = make_class(name, len, desc, strict, &cls, err);
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
	tt_class_entry **pp = &S.classes;
	while (*pp)
		pp = &(*pp)->next;
	*pp = ce;
	S.n_classes++;
	tt_db_put_class(cls->name, cls->name_len, tt_buf_data(&cls->desc), cls->desc.len);
	*out_new = true;
	return 0;
}

/* ---- migrating a class to a new description ------------------------------ */

/* A stored value as a tree the schema code can check (an `any` decoded). */
static int stored_tree(const tt_value *v, tt_value *out)
{
	if (v->type != TT_RAW) {
		*out = *v;
		return 0;
	}
	size_t off = 0;
	return tt_decode(S.dec, v->v.s, v->len, &off, &S.arena, out, NULL);
}

static bool may_reset(const tt_class *cls, const tt_param *p, const char *const *resets,
		      uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const char *dot = strrchr(resets[i], '.');
		if (dot && (size_t)(dot - resets[i]) == cls->name_len &&
		    !memcmp(resets[i], cls->name, cls->name_len) && !strcmp(dot + 1, p->name))
			return true;
	}
	return false;
}

/* The value state st's old slot takes under new param p (into out, in
 * S.arena). 1 when it converts, 0 when it must take the default (nothing
 * is lost: it was nil and p is not nullable), -1 when it does not fit. */
static int convert(const tt_class *ncls, const tt_param *p, const tt_value *old, tt_value *out)
{
	tt_value t;
	if (old->type == TT_NIL && !p->nullable)
		return 0;
	if (stored_tree(old, &t) < 0)
		return -1;
	tt_error e;
	return tt_param_coerce(ncls, p, &t, out, &e) == 0 ? 1 : -1;
}

/* A history event or schedule's changes without the params ncls no longer
 * has (from[] maps new to old), into b. Returns whether anything went. */
static bool strip_changes(const tt_class *ncls, const void *raw, size_t len, tt_buf *b)
{
	tt_value m;
	size_t off = 0;
	tt_arena_reset(&S.arena);
	tt_buf_clear(b);
	if (tt_decode(S.dec, raw, len, &off, &S.arena, &m, NULL) < 0 || m.type != TT_MAP)
		return false;
	uint32_t keep = 0;
	for (uint32_t i = 0; i < m.len; i++)
		keep += tt_class_param_index(ncls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len) >= 0;
	if (keep == m.len)
		return false;
	tt_enc_map(b, keep);
	for (uint32_t i = 0; i < m.len; i++)
		if (tt_class_param_index(ncls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len) >= 0) {
			tt_enc_value(b, &m.v.pairs[i].key);
			tt_enc_value(b, &m.v.pairs[i].val);
		}
	return true;
}

int tt_store_migrate(tt_class_entry *ce, const tt_value *desc, const char *const *resets,
		     uint32_t n_resets, bool *out_changed, tt_error *err)
{
	tt_class *ncls = NULL;
	*out_changed = false;
	int rc = make_class(ce->cls->name, ce->cls->name_len, desc, true, &ncls, err);
	if (rc < 0)
		return rc;
	tt_class *ocls = ce->cls;
	if (tt_class_same(ocls, ncls)) {
		tt_class_free(ncls);
		return 0;
	}
	int from[TT_MAX_PARAMS];
	for (uint32_t k = 0; k < ncls->n_params; k++)
		from[k] = tt_class_param_index(ocls, ncls->params[k].name, ncls->params[k].name_len);

	/* first check every value: a change that loses data changes nothing */
	for (tt_state *st = ce->first; st; st = st->cnext)
		for (uint32_t k = 0; k < ncls->n_params; k++) {
			const tt_param *p = &ncls->params[k];
			tt_value out;
			tt_arena_reset(&S.arena);
			if (from[k] < 0 || convert(ncls, p, &st->slots[from[k]].v, &out) >= 0 ||
			    may_reset(ncls, p, resets, n_resets))
				continue;
			char repr[64];
			tt_value t;
			if (stored_tree(&st->slots[from[k]].v, &t) == 0)
				tt_value_repr(&t, repr, sizeof(repr));
			else
				snprintf(repr, sizeof(repr), "?");
			rc = tt_fail(err, TT_BAD_DESCRIPTION,
				     "class \"%s\": param \"%s\": state %llu holds %s, which its new description refuses; "
				     "to reset such values to the default, start once with --reset-param %s.%s",
				     ncls->name, p->name, (unsigned long long)st->id, repr, ncls->name, p->name);
			tt_class_free(ncls);
			return rc;
		}

	for (uint32_t k = 0; k < ncls->n_params; k++)
		if (from[k] < 0)
			tt_log_info("class \"%s\": param \"%s\" added (states get its default)",
				    ncls->name, ncls->params[k].name);
	for (uint32_t o = 0; o < ocls->n_params; o++)
		if (tt_class_param_index(ncls, ocls->params[o].name, ocls->params[o].name_len) < 0)
			tt_log_info("class \"%s\": param \"%s\" removed (its values and history go)",
				    ncls->name, ocls->params[o].name);

	ce->cls = ncls;
	tt_rights_free(ce->rights); /* per-param rights index the old params */
	ce->rights = NULL;
	ce->migrated = true;
	double now = tt_clock_now();
	tt_changes *cs = tt_malloc(sizeof(*cs));
	tt_changes_init(cs);
	tt_buf tmp;
	tt_buf_init(&tmp, 0);
	for (tt_state *st = ce->first; st; st = st->cnext) {
		tt_slot *old = st->slots;
		/* the kept values, converted, as a set of changes on the defaults */
		cs->n = 0;
		tt_arena_reset(&S.arena);
		for (uint32_t k = 0; k < ncls->n_params; k++) {
			if (from[k] < 0)
				continue;
			tt_value out;
			if (convert(ncls, &ncls->params[k], &old[from[k]].v, &out) > 0) {
				cs->idx[cs->n] = k;
				cs->vals[cs->n++] = out;
			} else if (old[from[k]].v.type != TT_NIL) {
				tt_log_warn("class \"%s\": state %llu: param \"%s\" reset to its default (--reset-param)",
					    ncls->name, (unsigned long long)st->id, ncls->params[k].name);
			}
		}
		to_stored_form(ncls, cs);
		st->slots = tt_calloc(ncls->n_params ? ncls->n_params : 1, sizeof(tt_slot));
		init_slots(st, cs);
		/* what a client holding the old values must learn: one event */
		cs->n = 0;
		for (uint32_t k = 0; k < ncls->n_params; k++) {
			const tt_value *nv = &st->slots[k].v;
			bool added = from[k] < 0;
			if (ncls->params[k].event)
				continue;
			if (added || !tt_value_equal(&old[from[k]].v, nv)) {
				if (!added)
					tt_log_info("class \"%s\": state %llu: param \"%s\" changed to fit its new description",
						    ncls->name, (unsigned long long)st->id, ncls->params[k].name);
				cs->idx[cs->n] = k;
				cs->vals[cs->n++] = *nv;
			}
		}
		for (uint32_t o = 0; o < ocls->n_params; o++)
			free(old[o].mem);
		free(old);
		if (cs->n) {
			tt_buf_clear(&cs->enc);
			tt_store_changes_encode(&cs->enc, ncls, cs);
			S.mem -= st->hist.bytes;
			st->seq++;
			st->time = now;
			tt_history_push(&st->hist, S.cfg->history, S.cfg->history_bytes, st->seq, now, 0,
					tt_buf_data(&cs->enc), cs->enc.len);
			S.mem += st->hist.bytes;
			tt_db_event_row ev = {st->id, st->seq, now, 0, tt_buf_data(&cs->enc), cs->enc.len};
			tt_db_put_event(&ev);
		}
		mark_dirty(st);
		/* events and schedules lose the removed params */
		for (uint32_t i = 0; i < st->hist.len; i++) {
			tt_event *e = (tt_event *)tt_history_at(&st->hist, i);
			if (!strip_changes(ncls, tt_buf_data(&e->changes), e->changes.len, &tmp))
				continue;
			S.mem -= e->changes.len;
			st->hist.bytes -= e->changes.len;
			tt_buf_clear(&e->changes);
			tt_buf_append(&e->changes, tt_buf_data(&tmp), tmp.len);
			S.mem += tmp.len;
			st->hist.bytes += tmp.len;
			tt_db_event_row ev = {st->id, e->seq, e->time, e->origin, tt_buf_data(&tmp), tmp.len};
			tt_db_put_event(&ev);
		}
		for (tt_sched *sc = st->scheds.first, *next; sc; sc = next) {
			next = sc->next;
			if (!strip_changes(ncls, tt_buf_data(&sc->changes), sc->changes.len, &tmp))
				continue;
			if (tmp.len <= 1) { /* an empty map: nothing left to apply */
				tt_store_sched_remove(sc);
				continue;
			}
			S.mem -= sc->changes.len;
			tt_buf_clear(&sc->changes);
			tt_buf_append(&sc->changes, tt_buf_data(&tmp), tmp.len);
			S.mem += tmp.len;
			tt_db_sched_row r = {sc->id, st->id, sc->at, sc->origin, tt_buf_data(&tmp), tmp.len};
			tt_db_put_schedule(&r);
		}
		/* filters name params by index: renumber them */
		for (tt_instance *in = st->instances; in; in = in->st_next) {
			if (!in->filtered)
				continue;
			tt_mask m;
			memset(&m, 0, sizeof(m));
			for (uint32_t k = 0; k < ncls->n_params; k++)
				if (from[k] >= 0 && tt_mask_has(&in->mask, (uint32_t)from[k]))
					tt_mask_set(&m, k);
			in->mask = m;
			put_instance_row(in);
		}
		for (uint32_t i = 0; i < st->n_subs; i++)
			sub_recompute(st, i);
	}
	tt_buf_free(&tmp);
	tt_changes_free(cs);
	free(cs);
	tt_class_free(ocls);
	tt_db_put_class(ncls->name, ncls->name_len, tt_buf_data(&ncls->desc), ncls->desc.len);
	*out_changed = true;
	return 0;
}

static tt_observe **observer_list(tt_class_entry *ce)
{
	return ce ? &ce->observers : &S.observe_all;
}

static void observe_free(tt_observe *o)
{
	tt_observe **head = observer_list(o->cls);
	if (o->cprev)
		o->cprev->cnext = o->cnext;
	else
		*head = o->cnext;
	if (o->cnext)
		o->cnext->cprev = o->cprev;
	free(o);
}

/* Drop s's observe of ce, or all of them. */
static void drop_observes(tt_session *s, const tt_class_entry *ce, bool all)
{
	tt_observe **pp = &s->observes;
	while (*pp) {
		if (all || (*pp)->cls == ce) {
			tt_observe *o = *pp;
			*pp = o->next;
			observe_free(o);
		} else {
			pp = &(*pp)->next;
		}
	}
}

void tt_store_class_delete(tt_class_entry *ce)
{
	tt_assert(!ce->first);
	while (ce->observers)
		drop_observes(ce->observers->session, ce, false);
	tt_class_entry **pp = &S.classes;
	while (*pp != ce)
		pp = &(*pp)->next;
	*pp = ce->next;
	S.n_classes--;
	tt_db_del_class(ce->cls->name, ce->cls->name_len);
	tt_rights_free(ce->rights);
	tt_class_free(ce->cls);
	free(ce);
}

/* ---- states ----------------------------------------------------------------- */

static void mark_dirty(tt_state *st)
{
	if (!st->dirty) {
		st->dirty = true;
		st->dirty_next = S.dirty;
		S.dirty = st;
	}
}

/* Append st to its owner's states (creation order: an owner that leaves
 * has its states deleted oldest first). */
static void own(tt_state *st, tt_session *o)
{
	st->onext = NULL;
	st->oprev = o->owned_last;
	if (o->owned_last)
		o->owned_last->onext = st;
	else
		o->owned = st;
	o->owned_last = st;
	o->n_owned++;
}

static tt_state *state_alloc(tt_class_entry *ce, uint64_t id, uint64_t owner)
{
	tt_state *st = tt_calloc(1, sizeof(*st));
	st->id = id;
	if (id >= S.next_state_id)
		S.next_state_id = tt_ids_after(id);
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
	S.n_states++;
	tt_idmap_put(&S.states, id, st);
	return st;
}

tt_state *tt_store_state_new(tt_class_entry *ce, uint64_t owner, const tt_changes *init,
			     double time)
{
	tt_state *st = state_alloc(ce, S.next_state_id, owner);
	tt_session *o = tt_session_by_id(owner);
	if (o)
		own(st, o);
	init_slots(st, init);
	keep_init(st, init);
	st->time = time;
	mark_dirty(st);
	return st;
}

tt_state *tt_store_state(uint64_t id)
{
	return tt_idmap_get(&S.states, id);
}

tt_state *tt_store_first_state(void)
{
	return S.first;
}

uint32_t tt_store_state_count(void)
{
	return S.n_states;
}

const char *tt_store_tombstone(uint64_t id)
{
	return tt_idmap_get(&S.tombstones, id);
}

const char *tt_store_reason(const char *reason)
{
	static const char *const reasons[] = {"deleted", "owner left", "class deleted"};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(*reasons); i++)
		if (!strcmp(reason, reasons[i]))
			return reasons[i];
	return reasons[0];
}

void tt_store_restore_tombstone(uint64_t state, const char *reason)
{
	/* static strings: the tombstone map holds no memory of its own */
	const char *r = tt_store_reason(reason);
	if (tt_idmap_get(&S.tombstones, state))
		return;
	tt_idmap_put(&S.tombstones, state, (void *)(uintptr_t)r);
	/* the newest TT_TOMBSTONES_KEPT only, as many as the database keeps:
	 * a resume needs those of its window, and an installation that runs
	 * for a month deleting a state a second must not grow without end */
	if (S.tomb_n == TT_TOMBSTONES_KEPT) {
		tt_idmap_del(&S.tombstones, S.tomb_ring[S.tomb_head]);
		S.tomb_ring[S.tomb_head] = state;
		S.tomb_head = (S.tomb_head + 1) % TT_TOMBSTONES_KEPT;
		return;
	}
	if (S.tomb_n == S.tomb_cap) { /* grows while nothing was dropped: head is 0 */
		S.tomb_cap = TT_MIN(TT_TOMBSTONES_KEPT, S.tomb_cap ? S.tomb_cap * 2 : 1024);
		S.tomb_ring = tt_realloc(S.tomb_ring, sizeof(*S.tomb_ring) * S.tomb_cap);
	}
	S.tomb_ring[S.tomb_n++] = state;
}

/* Rebuild the sub of one session on st from that session's instances (a
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
	if (update_sub)
		sub_recompute(st, in->sub);
	free(in);
}

/* Unlink and free st, its instances and schedules; persist nothing. */
static void state_free(tt_state *st)
{
	while (st->instances)
		instance_free(st->instances, false);
	while (st->scheds.first)
		sched_forget(st->scheds.first);
	S.mem -= st->value_bytes + st->hist.bytes;
	if (st->owner) {
		tt_session *o = tt_session_by_id(st->owner);
		if (o && (st->oprev || st->onext || o->owned == st)) {
			if (st->oprev)
				st->oprev->onext = st->onext;
			else
				o->owned = st->onext;
			if (st->onext)
				st->onext->oprev = st->oprev;
			else
				o->owned_last = st->oprev;
			o->n_owned--;
		}
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
	S.n_states--;
	tt_idmap_del(&S.states, st->id);
	for (uint32_t i = 0; i < ce->cls->n_params; i++)
		free(st->slots[i].mem);
	free(st->slots);
	free_init(st);
	free(st->subs);
	tt_history_free(&st->hist);
	free(st);
}

void tt_store_state_delete(tt_state *st, const char *reason)
{
	/* the database deletes the state's instances and schedules with it */
	tt_db_del_state(st->id, reason);
	tt_store_restore_tombstone(st->id, reason);
	state_free(st);
}

int tt_store_validate(const tt_class *cls, const tt_state *st, const tt_instance *in,
		      tt_value *updates, tt_changes *cs, tt_error *err)
{
	cs->n = 0;
	if (updates->type != TT_MAP)
		return tt_fail(err, TT_BAD_MESSAGE, "updates must be a map");
	/* no bound on updates->len needed: more than n_params keys must hold
	 * an unknown or a repeated one, refused before idx/vals overflow */
	if (++cs->gen == 0) {
		memset(cs->seen, 0, sizeof(cs->seen));
		cs->gen = 1;
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
		if (cs->seen[k] == cs->gen)
			return tt_fail(err, TT_BAD_MESSAGE, "class \"%s\": param \"%s\" given twice",
				       cls->name, p->name);
		cs->seen[k] = cs->gen;
		if (p->local)
			return tt_fail(err, TT_LOCAL_PARAM,
				       "class \"%s\": cannot set param \"%s\" to %s: it is local and never sent to the server",
				       cls->name, p->name, REPR());
		if (in && in->filtered && !tt_mask_has(&in->mask, (uint32_t)k))
			return tt_fail(err, TT_FILTERED,
				       "class \"%s\": cannot set param \"%s\" to %s: not in this instance's filter",
				       cls->name, p->name, REPR());
		if (!in && p->required && kv->val.type == TT_NIL)
			return tt_fail(err, TT_REQUIRED, "class \"%s\": required param \"%s\" is null",
				       cls->name, p->name);
#undef REPR
		int rc = tt_param_coerce(cls, p, &kv->val, &cs->vals[i], err);
		if (rc < 0)
			return rc;
		cs->idx[i] = (uint32_t)k;
	}
	cs->n = updates->len;
	to_stored_form(cls, cs);
	/* bytes: each value against its param's bound, the state's total
	 * against --max-state-bytes */
	size_t total = st ? st->value_bytes : 0;
	for (uint32_t i = 0; i < cs->n; i++) {
		const tt_param *p = &cls->params[cs->idx[i]];
		size_t n = value_size(&cs->vals[i]);
		uint32_t max = p->max_bytes ? p->max_bytes : S.cfg->max_value_bytes;
		if (n > max) {
			cs->n = 0;
			return tt_fail(err, TT_BAD_VALUE,
				       "class \"%s\": param \"%s\": a value of %zu bytes is larger than %s %u",
				       cls->name, p->name, n, p->max_bytes ? "its maxBytes" : "--max-value-bytes",
				       max);
		}
		if (st)
			total -= value_size(&st->slots[cs->idx[i]].v);
		total += n;
	}
	if (!st) /* a new state: the defaults of the params not given */
		for (uint32_t k = 0; k < cls->n_params; k++)
			if (cs->seen[k] != cs->gen)
				total += cls->params[k].type == TT_PT_STRING &&
						 cls->params[k].def.type == TT_STR
					 ? cls->params[k].def.len : 0;
	if (total > S.cfg->max_state_bytes) {
		cs->n = 0;
		return tt_fail(err, TT_LIMIT,
			       "class \"%s\": the state's values would take %zu bytes, more than --max-state-bytes %u",
			       cls->name, total, S.cfg->max_state_bytes);
	}
	/* what it may add to memory: its values, and as much again in the
	 * history (the history's own bound makes that an upper estimate) */
	size_t grow = 0;
	for (uint32_t i = 0; i < cs->n; i++)
		grow += 2 * value_size(&cs->vals[i]) + 16;
	if (S.mem + grow > S.cfg->max_memory) {
		cs->n = 0;
		return tt_fail(err, TT_LIMIT,
			       "class \"%s\": the server's memory budget is used up (--max-memory %llu bytes)",
			       cls->name, (unsigned long long)S.cfg->max_memory);
	}
	return 0;
}

void tt_store_changes_load(const tt_state *st, const void *changes, size_t len, tt_changes *cs)
{
	const tt_class *cls = st->ce->cls;
	tt_value m;
	size_t off = 0;
	cs->n = 0;
	tt_arena_reset(&S.arena);
	if (tt_decode(S.dec, changes, len, &off, &S.arena, &m, NULL) < 0 || m.type != TT_MAP)
		return;
	for (uint32_t i = 0; i < m.len; i++) {
		int k = tt_class_param_index(cls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len);
		if (k < 0)
			continue;
		cs->idx[cs->n] = (uint32_t)k;
		cs->vals[cs->n++] = m.v.pairs[i].val;
	}
	to_stored_form(cls, cs);
}

void tt_store_changes_encode(tt_buf *b, const tt_class *cls, const tt_changes *cs)
{
	tt_enc_map(b, cs->n);
	for (uint32_t i = 0; i < cs->n; i++) {
		tt_enc_strn(b, cls->params[cs->idx[i]].name, cls->params[cs->idx[i]].name_len);
		tt_enc_value(b, &cs->vals[i]);
	}
}

uint32_t tt_store_apply(tt_state *st, tt_changes *cs, uint64_t origin, double time)
{
	const tt_class *cls = st->ce->cls;
	/* which keys go out: changed, or filterChange:false, or event */
	uint32_t n = 0;
	for (uint32_t i = 0; i < cs->n; i++) {
		const tt_param *p = &cls->params[cs->idx[i]];
		if (!tt_value_equal(&st->slots[cs->idx[i]].v, &cs->vals[i]) || !p->filter_change ||
		    p->event) {
			cs->idx[n] = cs->idx[i];
			cs->vals[n++] = cs->vals[i];
		}
	}
	cs->n = n;
	tt_buf_clear(&cs->enc);
	tt_store_changes_encode(&cs->enc, cls, cs);
	if (!n)
		return 0;

	st->seq++;
	st->time = time;
	S.mem -= st->value_bytes + st->hist.bytes;
	for (uint32_t i = 0; i < n; i++) {
		/* event params are volatile: sent and kept in the history, then nil */
		tt_value nil = tt_nil();
		tt_slot *sl = &st->slots[cs->idx[i]];
		st->value_bytes -= value_size(&sl->v);
		slot_set(sl, cls->params[cs->idx[i]].event ? &nil : &cs->vals[i]);
		st->value_bytes += value_size(&sl->v);
	}
	tt_history_push(&st->hist, S.cfg->history, S.cfg->history_bytes, st->seq, time, origin,
			tt_buf_data(&cs->enc), cs->enc.len);
	S.mem += st->value_bytes + st->hist.bytes;
	tt_db_event_row ev = {st->id, st->seq, time, origin, tt_buf_data(&cs->enc), cs->enc.len};
	tt_db_put_event(&ev);
	mark_dirty(st);
	return n;
}

/* ---- instances -------------------------------------------------------------- */

int tt_store_filter(const tt_class *cls, const tt_value *f, tt_mask *out, tt_error *err)
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

static tt_instance *instance_new(tt_state *st, tt_session *s, const tt_mask *filter, uint64_t id)
{
	tt_instance *in = tt_calloc(1, sizeof(*in));
	in->id = id;
	if (id >= S.next_instance_id)
		S.next_instance_id = tt_ids_after(id);
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
	return in;
}

/* An instance's row: its filter as the names of its params. */
static void put_instance_row(const tt_instance *in)
{
	tt_buf_clear(&S.row);
	if (in->filtered) {
		const tt_class *cls = in->state->ce->cls;
		uint32_t n = 0;
		for (uint32_t i = 0; i < cls->n_params; i++)
			n += tt_mask_has(&in->mask, i);
		tt_enc_array(&S.row, n);
		for (uint32_t i = 0; i < cls->n_params; i++)
			if (tt_mask_has(&in->mask, i))
				tt_enc_strn(&S.row, cls->params[i].name, cls->params[i].name_len);
	}
	tt_db_put_instance(in->id, in->session->id, in->state->id, tt_buf_data(&S.row), S.row.len);
}

tt_instance *tt_store_attach(tt_state *st, tt_session *s, const tt_mask *filter)
{
	tt_instance *in = instance_new(st, s, filter, S.next_instance_id);
	put_instance_row(in);
	return in;
}

tt_instance *tt_store_instance(uint64_t id)
{
	return tt_idmap_get(&S.instances, id);
}

void tt_store_detach(tt_instance *in)
{
	tt_db_del_instance(in->id);
	instance_free(in, true);
}

/* ---- observes --------------------------------------------------------------- */

void tt_store_observe(tt_session *s, tt_class_entry *ce, bool on)
{
	tt_observe **pp = &s->observes;
	while (*pp && (*pp)->cls != ce)
		pp = &(*pp)->next;
	if (on == (*pp != NULL))
		return;
	if (on) {
		tt_observe *o = tt_calloc(1, sizeof(*o));
		o->cls = ce;
		o->session = s;
		*pp = o;
		tt_observe **head = observer_list(ce);
		o->cnext = *head;
		if (*head)
			(*head)->cprev = o;
		*head = o;
	} else {
		tt_observe *o = *pp;
		*pp = o->next;
		observe_free(o);
	}
	tt_db_put_observe(s->id, ce ? ce->cls->name : NULL, ce ? ce->cls->name_len : 0, on);
}

bool tt_store_observes(const tt_session *s, const tt_class_entry *ce)
{
	for (const tt_observe *o = s->observes; o; o = o->next)
		if (o->cls == NULL || o->cls == ce)
			return true;
	return false;
}

tt_observe *tt_store_observers_all(void)
{
	return S.observe_all;
}

/* ---- sessions --------------------------------------------------------------- */

void tt_store_session_live(tt_session *s, const char *role)
{
	char hex[2 * TT_DIGEST_LEN + 1];
	tt_secret_hex(s->digest, hex);
	tt_db_put_session(s->id, hex, 2 * TT_DIGEST_LEN, role);
}

void tt_store_session_gone(tt_session *s, double now)
{
	if (s->client) /* the inspector shows where a resuming phone was */
		snprintf(s->last_addr, sizeof(s->last_addr), "%s", s->client->addr_text);
	s->client = NULL;
	s->gone_at = now;
	tt_db_session_gone(s->id, now);
}

/* Out of its list, the states that stay (several nodes: deleted by the
 * node that writes them, cluster.h). */
static void disown_all(tt_session *s)
{
	for (tt_state *st = s->owned, *next; st; st = next) {
		next = st->onext;
		st->onext = st->oprev = NULL;
	}
	s->owned = s->owned_last = NULL;
	s->n_owned = 0;
}

void tt_store_session_drop(tt_session *s)
{
	disown_all(s);
	while (s->instances)
		tt_store_detach(s->instances);
	drop_observes(s, NULL, true);
	tt_db_del_session(s->id, s->kicked);
	tt_session_free(s);
}

/* ---- scheduled sets --------------------------------------------------------- */

uint64_t tt_store_sched_id(void)
{
	return S.next_sched_id;
}

static tt_sched *sched_keep(tt_state *st, uint64_t id, double at, uint64_t origin,
			    uint8_t pool, const void *changes, size_t len)
{
	if (id >= S.next_sched_id)
		S.next_sched_id = tt_ids_after(id);
	tt_session *o = tt_session_by_id(origin);
	if (o)
		o->n_sched++;
	S.mem += len;
	return tt_sched_add(&st->scheds, st, id, at, origin, pool, changes, len);
}

/* Forget a pending schedule (persisting nothing). */
static void sched_forget(tt_sched *sc)
{
	tt_session *o = tt_session_by_id(sc->origin);
	if (o && o->n_sched)
		o->n_sched--;
	S.mem -= sc->changes.len;
	tt_sched_remove(sc);
}

tt_sched *tt_store_sched_add(tt_state *st, double at, uint64_t origin, uint8_t pool,
			     const tt_changes *cs)
{
	tt_buf_clear(&S.row);
	tt_store_changes_encode(&S.row, st->ce->cls, cs);
	tt_sched *sc = sched_keep(st, S.next_sched_id, at, origin, pool, tt_buf_data(&S.row), S.row.len);
	tt_db_sched_row r = {sc->id, st->id, at, origin, tt_buf_data(&sc->changes), sc->changes.len};
	tt_db_put_schedule(&r);
	/* an engine's message of a state carries its pending schedules */
	mark_dirty(st);
	return sc;
}

void tt_store_sched_remove(tt_sched *sc)
{
	tt_db_del_schedule(sc->id);
	mark_dirty(sc->st);
	sched_forget(sc);
}

/* ---- persistence ------------------------------------------------------------ */

static void put_id(const char *key, uint64_t next, uint64_t *last_put)
{
	if (next != *last_put) {
		tt_db_put_meta(key, (double)next);
		*last_put = next;
	}
}

void tt_store_flush(void)
{
	/* the database keeps what the history keeps (events and bytes),
	 * trimmed in steps of 64 events rather than on every update */
	for (tt_state *st = S.dirty; st;) {
		tt_state *next = st->dirty_next;
		tt_buf_clear(&S.row);
		tt_store_encode_values(&S.row, st, NULL);
		/* the init values go with every put: a row is whole, whichever
		 * commit lands (they are the few keys given at creation) */
		tt_buf_clear(&S.row2);
		encode_given(&S.row2, st);
		tt_db_state_row r = {st->id, st->ce->cls->name, st->ce->cls->name_len, st->owner,
				     st->seq, st->time, tt_buf_data(&S.row), S.row.len,
				     tt_buf_data(&S.row2), S.row2.len};
		tt_db_put_state(&r);
		uint64_t first = tt_history_first_seq(&st->hist);
		if (first > 1 && first - 1 >= st->db_trimmed + 64) {
			tt_db_trim_events(st->id, first - 1);
			st->db_trimmed = first - 1;
		}
		st->dirty = false;
		st->dirty_next = NULL;
		st = next;
	}
	S.dirty = NULL;
	put_id("next_state", S.next_state_id, &S.put_state_id);
	put_id("next_instance", S.next_instance_id, &S.put_instance_id);
	put_id("next_session", tt_session_next_id(), &S.put_session_id);
	put_id("next_sched", S.next_sched_id, &S.put_sched_id);
}

/* ---- restore ---------------------------------------------------------------- */

/* The keys of a stored map that still fit the class, into cs (stored
 * form); required: only the `required` params. */
static void load_stored(const tt_class *cls, uint64_t id, tt_value *m, bool required,
			tt_changes *cs)
{
	cs->n = 0;
	for (uint32_t k = 0; k < cls->n_params; k++) {
		const tt_param *p = &cls->params[k];
		tt_value *v = (tt_value *)tt_map_get(m, p->name);
		tt_error e;
		if (!v || (required && !p->required))
			continue;
		if (tt_param_coerce(cls, p, v, &cs->vals[cs->n], &e) == 0)
			cs->idx[cs->n++] = k;
		else
			tt_log_warn("state %llu: %s; using the default", (unsigned long long)id, e.msg);
	}
	to_stored_form(cls, cs);
}

int tt_store_restore_state(uint64_t id, tt_class_entry *ce, uint64_t owner, uint64_t seq,
			   double time, tt_value *values, tt_value *init, tt_error *err)
{
	if (!id || tt_idmap_get(&S.states, id))
		return tt_fail(err, TT_INTERNAL, "state %llu stored twice", (unsigned long long)id);
	const tt_class *cls = ce->cls;
	tt_changes *cs = tt_malloc(sizeof(*cs));
	tt_changes_init(cs);
	tt_state *st = state_alloc(ce, id, owner);
	/* a row from before init values were kept: a `required` param was
	 * given at creation, and its value now is the best stand-in */
	bool legacy = !init || init->type != TT_MAP;
	load_stored(cls, id, legacy ? values : init, legacy, cs);
	keep_init(st, cs);
	load_stored(cls, id, values, false, cs);
	init_slots(st, cs);
	st->seq = seq;
	st->time = time;
	st->db_trimmed = 0; /* set once the events are in (tt_store_restore_owners) */
	if (legacy) /* the stand-in is written at the first commit, and stays */
		mark_dirty(st);
	tt_changes_free(cs);
	free(cs);
	return 0;
}

void tt_store_restore_event(tt_state *st, uint64_t seq, double time, uint64_t origin,
			    const void *changes, size_t len)
{
	/* an engine keeps events as they were written: a param its class has
	 * lost since (a migration) goes now */
	tt_buf tmp;
	tt_buf_init(&tmp, 0);
	if (strip_changes(st->ce->cls, changes, len, &tmp)) {
		changes = tt_buf_data(&tmp);
		len = tmp.len;
	}
	S.mem -= st->hist.bytes;
	tt_history_push(&st->hist, S.cfg->history, S.cfg->history_bytes, seq, time, origin, changes,
			len);
	S.mem += st->hist.bytes;
	tt_buf_free(&tmp);
}

void tt_store_restore_instance(uint64_t id, tt_session *s, tt_state *st, const tt_mask *filter)
{
	if (!id || tt_idmap_get(&S.instances, id))
		return;
	instance_new(st, s, filter, id);
}

void tt_store_restore_schedule(uint64_t id, tt_state *st, double at, uint64_t origin,
			       uint8_t pool, const void *changes, size_t len)
{
	sched_keep(st, id, at, origin, pool, changes, len);
}

void tt_store_restore_ids(uint64_t next_state, uint64_t next_instance, uint64_t next_sched)
{
	if (next_state > S.next_state_id)
		S.next_state_id = tt_ids_after(next_state - 1);
	if (next_instance > S.next_instance_id)
		S.next_instance_id = tt_ids_after(next_instance - 1);
	if (next_sched > S.next_sched_id)
		S.next_sched_id = tt_ids_after(next_sched - 1);
}

void tt_store_restore_owners(void)
{
	tt_state *st = S.first;
	while (st) {
		tt_state *next = st->next;
		/* what the database holds before the history's first event goes at
		 * the next trim */
		uint64_t first = tt_history_first_seq(&st->hist);
		st->db_trimmed = first > 64 ? first - 65 : 0;
		if (st->owner) {
			tt_session *s = tt_session_by_id(st->owner);
			if (s)
				own(st, s);
			else /* its session ended in the same commit */
				tt_store_state_delete(st, "owner left");
		}
		st = next;
	}
}

/* ---- another node's changes (cluster.c) ------------------------------------ */

/* What another node stored is in the engine already: applied here as it
 * was stored (not validated or diffed again), persisting nothing and
 * marking nothing dirty. */

void tt_store_remote_event(tt_state *st, uint64_t seq, double time, uint64_t origin,
			   const void *changes, size_t len, tt_changes *cs)
{
	const tt_class *cls = st->ce->cls;
	tt_store_changes_load(st, changes, len, cs);
	tt_buf_clear(&cs->enc);
	tt_store_changes_encode(&cs->enc, cls, cs);
	st->seq = seq;
	st->time = time;
	S.mem -= st->value_bytes + st->hist.bytes;
	for (uint32_t i = 0; i < cs->n; i++) {
		tt_value nil = tt_nil();
		tt_slot *sl = &st->slots[cs->idx[i]];
		st->value_bytes -= value_size(&sl->v);
		slot_set(sl, cls->params[cs->idx[i]].event ? &nil : &cs->vals[i]);
		st->value_bytes += value_size(&sl->v);
	}
	tt_history_push(&st->hist, S.cfg->history, S.cfg->history_bytes, seq, time, origin,
			tt_buf_data(&cs->enc), cs->enc.len);
	S.mem += st->value_bytes + st->hist.bytes;
}

void tt_store_remote_values(tt_state *st, uint64_t seq, double time, tt_value *values)
{
	tt_changes *cs = tt_malloc(sizeof(*cs));
	tt_changes_init(cs);
	load_stored(st->ce->cls, st->id, values, false, cs);
	init_slots(st, cs);
	st->seq = seq;
	st->time = time;
	tt_changes_free(cs);
	free(cs);
}

tt_state *tt_store_remote_state(uint64_t id, tt_class_entry *ce, uint64_t owner, uint64_t seq,
				double time, tt_value *values, tt_value *init)
{
	tt_error err;
	if (tt_store_restore_state(id, ce, owner, seq, time, values, init, &err) < 0)
		return NULL;
	tt_state *st = tt_store_state(id);
	if (st->dirty) { /* a legacy stand-in: not this node's to write */
		tt_state **pp = &S.dirty;
		while (*pp != st)
			pp = &(*pp)->dirty_next;
		*pp = st->dirty_next;
		st->dirty = false;
		st->dirty_next = NULL;
	}
	tt_session *o = tt_session_by_id(owner);
	if (o)
		own(st, o);
	return st;
}

void tt_store_remote_history(tt_state *st)
{
	S.mem -= st->hist.bytes;
	tt_history_free(&st->hist);
	tt_history_init(&st->hist);
}

void tt_store_remote_delete(tt_state *st, const char *reason)
{
	tt_store_restore_tombstone(st->id, reason);
	state_free(st);
}

void tt_store_remote_sched_gone(tt_sched *sc)
{
	sched_forget(sc);
}

void tt_store_session_release(tt_session *s)
{
	while (s->instances)
		instance_free(s->instances, true);
	drop_observes(s, NULL, true);
}

void tt_store_session_forget(tt_session *s)
{
	tt_store_session_release(s);
	disown_all(s);
	tt_session_free(s);
}

void tt_store_adopt(tt_session *s)
{
	for (tt_state *st = S.first; st; st = st->next)
		if (st->owner == s->id && !st->onext && !st->oprev && s->owned != st)
			own(st, s);
}

/* ---- start and stop --------------------------------------------------------- */

void tt_store_init(const tt_config *cfg)
{
	memset(&S, 0, sizeof(S));
	S.cfg = cfg;
	tt_idmap_init(&S.states);
	tt_idmap_init(&S.instances);
	tt_idmap_init(&S.tombstones);
	S.next_state_id = S.next_instance_id = S.next_sched_id = tt_ids_after(0);
	tt_buf_init(&S.row, 0);
	tt_buf_init(&S.row2, 0);
	S.dec = tt_decoder_new();
	tt_arena_init(&S.arena, 0);
}

void tt_store_destroy(void)
{
	while (S.first)
		state_free(S.first);
	tt_sched_free_all();
	while (tt_session_first()) {
		tt_session *s = tt_session_first();
		drop_observes(s, NULL, true);
		tt_session_free(s);
	}
	tt_session_cleanup();
	while (S.classes) {
		tt_class_entry *ce = S.classes;
		S.classes = ce->next;
		tt_rights_free(ce->rights);
		tt_class_free(ce->cls);
		free(ce);
	}
	tt_idmap_free(&S.states);
	tt_idmap_free(&S.instances);
	tt_idmap_free(&S.tombstones);
	free(S.tomb_ring);
	tt_buf_free(&S.row);
	tt_buf_free(&S.row2);
	tt_decoder_free(S.dec);
	tt_arena_destroy(&S.arena);
}
