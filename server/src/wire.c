/* SPDX-License-Identifier: MIT */
/* wire.c: the encoders of every server message. Events and schedules keep
 * their changes encoded; a filtered recipient gets them decoded and
 * re-encoded through its view (the decoder below is scratch, reset per
 * call, so no state is carried from one message to the next). */
#include "wire.h"

#include "codec.h"
#include "protocol.h"

static struct {
	tt_decoder *dec;
	tt_arena arena;
} W;

void tt_wire_cleanup(void)
{
	tt_decoder_free(W.dec);
	W.dec = NULL;
	tt_arena_destroy(&W.arena);
}

/* Append the encoded changes map raw seen through view. Returns how many
 * keys it has (1 without a view: all of them, at least as far as the
 * caller cares). */
static uint32_t changes_view(tt_buf *b, const tt_state *st, const void *raw, size_t len,
			     const tt_mask *view)
{
	if (!view) {
		tt_buf_append(b, raw, len);
		return 1;
	}
	if (!W.dec) {
		W.dec = tt_decoder_new();
		tt_arena_init(&W.arena, 0);
	}
	tt_value m;
	size_t off = 0;
	tt_arena_reset(&W.arena);
	if (tt_decode(W.dec, raw, len, &off, &W.arena, &m, NULL) < 0 || m.type != TT_MAP) {
		tt_enc_map(b, 0);
		return 0;
	}
	const tt_class *cls = st->ce->cls;
	uint32_t n = 0;
	for (uint32_t i = 0; i < m.len; i++) {
		int k = tt_class_param_index(cls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len);
		if (k >= 0 && tt_mask_has(view, (uint32_t)k))
			n++;
	}
	tt_enc_map(b, n);
	for (uint32_t i = 0; i < m.len; i++) {
		int k = tt_class_param_index(cls, m.v.pairs[i].key.v.s, m.v.pairs[i].key.len);
		if (k >= 0 && tt_mask_has(view, (uint32_t)k)) {
			tt_enc_value(b, &m.v.pairs[i].key);
			tt_enc_value(b, &m.v.pairs[i].val);
		}
	}
	return n;
}

/* Append the applied changes cs seen through view, encoded from the values
 * themselves (no decoding). Returns the number of keys. */
static uint32_t applied_view(tt_buf *b, const tt_state *st, const tt_changes *cs,
			     const tt_mask *view)
{
	if (!view) {
		tt_buf_append(b, tt_buf_data(&cs->enc), cs->enc.len);
		return cs->n;
	}
	const tt_class *cls = st->ce->cls;
	uint32_t k = 0;
	for (uint32_t i = 0; i < cs->n; i++)
		k += tt_mask_has(view, cs->idx[i]);
	tt_enc_map(b, k);
	for (uint32_t i = 0; i < cs->n; i++) {
		if (!tt_mask_has(view, cs->idx[i]))
			continue;
		tt_enc_strn(b, cls->params[cs->idx[i]].name, cls->params[cs->idx[i]].name_len);
		tt_enc_value(b, &cs->vals[i]);
	}
	return k;
}

static void result(tt_buf *b, uint64_t rid)
{
	tt_buf_clear(b);
	tt_enc_array(b, 3);
	tt_enc_uint(b, TT_MSG_RESULT);
	tt_enc_uint(b, rid);
}

static void event(tt_buf *b, const tt_state *st, const tt_event *e, const tt_mask *view)
{
	tt_enc_map(b, 4);
	tt_enc_str(b, "seq");
	tt_enc_uint(b, e->seq);
	tt_enc_str(b, "time");
	tt_enc_float(b, e->time);
	tt_enc_str(b, "changes");
	changes_view(b, st, tt_buf_data(&e->changes), e->changes.len, view);
	tt_enc_str(b, "origin");
	tt_enc_uint(b, e->origin);
}

static void events_since(tt_buf *b, const tt_state *st, uint64_t from, const tt_mask *view)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < st->hist.len; i++)
		if (tt_history_at(&st->hist, i)->seq > from)
			n++;
	tt_enc_array(b, n);
	for (uint32_t i = 0; i < st->hist.len; i++) {
		const tt_event *e = tt_history_at(&st->hist, i);
		if (e->seq > from)
			event(b, st, e, view);
	}
}

/* Does view see any key of the schedule? */
static bool sched_visible(tt_buf *scratch, const tt_sched *sc, const tt_mask *view)
{
	if (!view)
		return true;
	tt_buf_clear(scratch);
	return changes_view(scratch, sc->st, tt_buf_data(&sc->changes), sc->changes.len, view) > 0;
}

/* ---- replies -------------------------------------------------------------- */

void tt_wire_error(tt_buf *b, uint64_t rid, int code, const char *msg)
{
	tt_buf_clear(b);
	tt_enc_array(b, 4);
	tt_enc_uint(b, TT_MSG_ERROR);
	tt_enc_uint(b, rid);
	tt_enc_uint(b, (uint64_t)code);
	tt_enc_str(b, msg);
}

void tt_wire_result_nil(tt_buf *b, uint64_t rid)
{
	result(b, rid);
	tt_enc_nil(b);
}

void tt_wire_welcome(tt_buf *b, uint64_t rid, const tt_session *s, const char *token,
		     const char *role, double now, bool resumed, size_t max_message,
		     double resume_window)
{
	result(b, rid);
	tt_enc_map(b, 7);
	tt_enc_str(b, "session");
	tt_enc_uint(b, s->id);
	tt_enc_str(b, "token");
	tt_enc_str(b, token);
	tt_enc_str(b, "role");
	tt_enc_str(b, role);
	tt_enc_str(b, "time");
	tt_enc_float(b, now);
	tt_enc_str(b, "resumed");
	tt_enc_bool(b, resumed);
	tt_enc_str(b, "maxMessage");
	tt_enc_uint(b, max_message);
	tt_enc_str(b, "resumeWindow");
	tt_enc_float(b, resume_window);
}

void tt_wire_defined(tt_buf *b, uint64_t rid, bool created)
{
	result(b, rid);
	tt_enc_map(b, 1);
	tt_enc_str(b, "defined");
	tt_enc_bool(b, created);
}

void tt_wire_description(tt_buf *b, uint64_t rid, const tt_class *cls)
{
	result(b, rid);
	tt_buf_append(b, tt_buf_data(&cls->desc), cls->desc.len);
}

void tt_wire_state(tt_buf *b, uint64_t rid, const tt_instance *in, const tt_value *filter,
		   bool with_hist, uint64_t from, bool complete)
{
	const tt_state *st = in->state;
	const tt_mask *view = tt_instance_view(in);
	/* the schedules the view sees, checked in a scratch buffer of its own
	 * (b is being written) */
	tt_buf scratch;
	tt_buf_init(&scratch, 0);
	uint32_t n_sched = 0;
	for (const tt_sched *sc = st->scheds.first; sc; sc = sc->next)
		n_sched += sched_visible(&scratch, sc, view);

	result(b, rid);
	tt_enc_map(b, (with_hist ? 12u : 10u) + (n_sched ? 1u : 0u));
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
	tt_store_encode_values(b, st, view);
	tt_enc_str(b, "initValues");
	tt_store_encode_init(b, st, view);
	tt_enc_str(b, "description");
	tt_buf_append(b, tt_buf_data(&st->ce->cls->desc), st->ce->cls->desc.len);
	tt_enc_str(b, "filter");
	if (filter)
		tt_enc_value(b, filter);
	else
		tt_enc_nil(b);
	if (with_hist) {
		tt_enc_str(b, "history");
		events_since(b, st, from, view);
		tt_enc_str(b, "historyComplete");
		tt_enc_bool(b, complete);
	}
	if (n_sched) {
		tt_enc_str(b, "scheduled");
		tt_enc_array(b, n_sched);
		for (const tt_sched *sc = st->scheds.first; sc; sc = sc->next) {
			if (!sched_visible(&scratch, sc, view))
				continue;
			tt_enc_array(b, 3);
			tt_enc_uint(b, sc->id);
			tt_enc_float(b, sc->at);
			changes_view(b, st, tt_buf_data(&sc->changes), sc->changes.len, view);
		}
	}
	tt_buf_free(&scratch);
}

void tt_wire_set_done(tt_buf *b, uint64_t rid, const tt_state *st, const tt_changes *cs,
		      const tt_mask *view)
{
	result(b, rid);
	tt_enc_map(b, 3);
	tt_enc_str(b, "seq");
	tt_enc_uint(b, st->seq);
	tt_enc_str(b, "time");
	tt_enc_float(b, st->time);
	tt_enc_str(b, "changes");
	applied_view(b, st, cs, view);
}

void tt_wire_set_scheduled(tt_buf *b, uint64_t rid, const tt_sched *sc, const tt_mask *view)
{
	result(b, rid);
	tt_enc_map(b, 3);
	tt_enc_str(b, "scheduled");
	tt_enc_uint(b, sc->id);
	tt_enc_str(b, "at");
	tt_enc_float(b, sc->at);
	tt_enc_str(b, "changes"); /* as validated and coerced */
	changes_view(b, sc->st, tt_buf_data(&sc->changes), sc->changes.len, view);
}

void tt_wire_states(tt_buf *b, uint64_t rid, const tt_class_entry *ce, uint32_t role)
{
	result(b, rid);
	tt_enc_map(b, ce ? 1 : 2);
	if (!ce) {
		/* every class the role may look at, those without a state too
		 * (`tutti ls`), in definition order */
		uint32_t k = 0;
		for (const tt_class_entry *e = tt_store_first_class(); e; e = e->next)
			k += tt_rights_may(e->rights, TT_RIGHT_ATTACH, role, false);
		tt_enc_str(b, "classes");
		tt_enc_array(b, k);
		for (const tt_class_entry *e = tt_store_first_class(); e; e = e->next)
			if (tt_rights_may(e->rights, TT_RIGHT_ATTACH, role, false))
				tt_enc_strn(b, e->cls->name, e->cls->name_len);
	}
	tt_enc_str(b, "states");
	uint32_t n = 0;
#define VISIBLE(st) (ce || tt_rights_may((st)->ce->rights, TT_RIGHT_ATTACH, role, false))
	for (const tt_state *st = ce ? ce->first : tt_store_first_state(); st;
	     st = ce ? st->cnext : st->next)
		n += VISIBLE(st);
	tt_enc_array(b, n);
	for (const tt_state *st = ce ? ce->first : tt_store_first_state(); st;
	     st = ce ? st->cnext : st->next) {
		if (!VISIBLE(st))
			continue;
		tt_enc_array(b, 3);
		tt_enc_strn(b, st->ce->cls->name, st->ce->cls->name_len);
		tt_enc_uint(b, st->id);
		tt_enc_uint(b, st->owner);
	}
#undef VISIBLE
}

void tt_wire_history(tt_buf *b, uint64_t rid, const tt_state *st, uint64_t from, bool complete,
		     const tt_mask *view)
{
	result(b, rid);
	tt_enc_map(b, 2);
	tt_enc_str(b, "events");
	events_since(b, st, from, view);
	tt_enc_str(b, "complete");
	tt_enc_bool(b, complete);
}

/* ---- pushes --------------------------------------------------------------- */

void tt_wire_pong(tt_buf *b, uint64_t id, double client_time, double recv, double send)
{
	tt_buf_clear(b);
	tt_enc_array(b, 5);
	tt_enc_uint(b, TT_MSG_PONG);
	tt_enc_uint(b, id);
	tt_enc_float(b, client_time);
	tt_enc_float(b, recv);
	tt_enc_float(b, send);
}

static void update_head(tt_buf *b, uint64_t id, uint64_t seq, double time, uint64_t sched)
{
	tt_buf_clear(b);
	tt_enc_array(b, sched ? 6 : 5);
	tt_enc_uint(b, TT_MSG_UPDATE);
	tt_enc_uint(b, id);
	tt_enc_uint(b, seq);
	tt_enc_float(b, time);
}

bool tt_wire_update(tt_buf *b, const tt_state *st, const tt_changes *cs, const tt_mask *view,
		    uint64_t sched)
{
	update_head(b, st->id, st->seq, st->time, sched);
	if (!applied_view(b, st, cs, view))
		return false;
	if (sched)
		tt_enc_uint(b, sched);
	return true;
}

bool tt_wire_update_event(tt_buf *b, const tt_state *st, const tt_event *e, const tt_mask *view)
{
	update_head(b, st->id, e->seq, e->time, 0);
	return changes_view(b, st, tt_buf_data(&e->changes), e->changes.len, view) > 0;
}

void tt_wire_deleted(tt_buf *b, uint64_t id, const char *reason)
{
	tt_buf_clear(b);
	tt_enc_array(b, 3);
	tt_enc_uint(b, TT_MSG_DELETED);
	tt_enc_uint(b, id);
	tt_enc_str(b, reason);
}

void tt_wire_notice(tt_buf *b, const char *kind, const tt_state *st)
{
	tt_buf_clear(b);
	tt_enc_array(b, 5);
	tt_enc_uint(b, TT_MSG_NOTICE);
	tt_enc_str(b, kind);
	tt_enc_strn(b, st->ce->cls->name, st->ce->cls->name_len);
	tt_enc_uint(b, st->id);
	tt_enc_uint(b, st->owner);
}

void tt_wire_snapshot(tt_buf *b, const tt_state *st, const tt_mask *view)
{
	tt_buf_clear(b);
	tt_enc_array(b, 5);
	tt_enc_uint(b, TT_MSG_SNAPSHOT);
	tt_enc_uint(b, st->id);
	tt_enc_uint(b, st->seq);
	tt_enc_float(b, st->time);
	tt_store_encode_values(b, st, view);
}

bool tt_wire_scheduled(tt_buf *b, const tt_sched *sc, const tt_mask *view)
{
	tt_buf_clear(b);
	tt_enc_array(b, 5);
	tt_enc_uint(b, TT_MSG_SCHEDULED);
	tt_enc_uint(b, sc->st->id);
	tt_enc_uint(b, sc->id);
	tt_enc_float(b, sc->at);
	return changes_view(b, sc->st, tt_buf_data(&sc->changes), sc->changes.len, view) > 0;
}

void tt_wire_cancelled(tt_buf *b, const tt_sched *sc)
{
	tt_buf_clear(b);
	tt_enc_array(b, 3);
	tt_enc_uint(b, TT_MSG_CANCELLED);
	tt_enc_uint(b, sc->st->id);
	tt_enc_uint(b, sc->id);
}

void tt_wire_hook_call(tt_buf *b, uint64_t call, uint64_t hook, const char *kind,
		       const tt_class *cls, uint64_t state, const tt_buf *values,
		       const tt_buf *current)
{
	tt_buf_clear(b);
	tt_enc_array(b, 8);
	tt_enc_uint(b, TT_MSG_HOOK_CALL);
	tt_enc_uint(b, call);
	tt_enc_uint(b, hook);
	tt_enc_str(b, kind);
	tt_enc_strn(b, cls->name, cls->name_len);
	tt_enc_uint(b, state);
	tt_buf_append(b, tt_buf_data(values), values->len);
	tt_buf_append(b, tt_buf_data(current), current->len);
}

void tt_wire_hooked(tt_buf *b, uint64_t rid, uint64_t hook)
{
	result(b, rid);
	tt_enc_map(b, 1);
	tt_enc_str(b, "hook");
	tt_enc_uint(b, hook);
}

void tt_wire_class_changed(tt_buf *b, const tt_class *cls)
{
	tt_buf_clear(b);
	tt_enc_array(b, 3);
	tt_enc_uint(b, TT_MSG_CLASS_CHANGED);
	tt_enc_strn(b, cls->name, cls->name_len);
	tt_buf_append(b, tt_buf_data(&cls->desc), cls->desc.len);
}
