/* SPDX-License-Identifier: MIT */
/* fanout.c: one message per event, shared by the recipients that see all
 * of it; a filtered recipient gets its own encoding, queued as urgent. */
#include "fanout.h"

#include <string.h>

#include "client.h"
#include "hooks.h"
#include "wire.h"

static tt_buf g_out; /* encoding of the message being sent */

void tt_fanout_cleanup(void)
{
	tt_buf_free(&g_out);
}

/* The params of cs seen through view (NULL: all) as a message's key set;
 * false when one of them does not conflate (PROTOCOL.md §6b). */
static bool conflating(const tt_state *st, const tt_changes *cs, const tt_mask *view,
		       uint64_t keys[TT_MSG_KEY_WORDS])
{
	_Static_assert(TT_MSG_KEY_WORDS * 64 >= TT_MAX_PARAMS, "a bit for every param");
	memset(keys, 0, sizeof(uint64_t) * TT_MSG_KEY_WORDS);
	for (uint32_t i = 0; i < cs->n; i++) {
		uint32_t k = cs->idx[i];
		if (view && !tt_mask_has(view, k))
			continue;
		if (!st->ce->cls->params[k].conflate)
			return false;
		keys[k / 64] |= (uint64_t)1 << (k % 64);
	}
	return true;
}

static void send_update(tt_client *to, const tt_buf *b, const tt_state *st, const tt_changes *cs,
			const tt_mask *view, uint64_t sched, bool any_conflate, tt_msg **shared)
{
	tt_msg *m = shared ? *shared : NULL;
	if (!m) {
		uint64_t keys[TT_MSG_KEY_WORDS];
		m = tt_msg_new(tt_buf_data(b), b->len);
		/* a scheduled set's UPDATE names its schedule: always delivered */
		bool c = any_conflate && !sched && conflating(st, cs, view, keys);
		tt_msg_update_of(m, st->id, c ? keys : NULL);
		if (shared)
			*shared = m;
	}
	tt_client_send(to, m);
	if (!shared)
		tt_msg_unref(m);
}

void tt_fanout_update(const tt_state *st, const tt_changes *cs, const tt_session *skip,
		      uint64_t sched)
{
	tt_msg *shared = NULL;
	bool any_conflate = false;
	for (uint32_t i = 0; i < cs->n && !any_conflate; i++)
		any_conflate = st->ce->cls->params[cs->idx[i]].conflate;
	for (uint32_t i = 0; i < st->n_subs; i++) {
		const tt_sub *sub = &st->subs[i];
		tt_client *to = sub->session->client;
		if (sub->session == skip || !to)
			continue;
		if (sub->n_all) {
			if (!shared)
				tt_wire_update(&g_out, st, cs, NULL, sched);
			send_update(to, &g_out, st, cs, NULL, sched, any_conflate, &shared);
		} else if (tt_wire_update(&g_out, st, cs, &sub->mask, sched)) {
			send_update(to, &g_out, st, cs, &sub->mask, sched, any_conflate, NULL);
		}
	}
	tt_msg_unref(shared);
}

void tt_fanout_scheduled(const tt_sched *sc, const tt_session *skip)
{
	const tt_state *st = sc->st;
	tt_msg *shared = NULL;
	for (uint32_t i = 0; i < st->n_subs; i++) {
		const tt_sub *sub = &st->subs[i];
		tt_client *to = sub->session->client;
		if (sub->session == skip || !to)
			continue;
		if (sub->n_all) {
			if (!shared) {
				tt_wire_scheduled(&g_out, sc, NULL);
				shared = tt_msg_new(tt_buf_data(&g_out), g_out.len);
				tt_msg_update_of(shared, st->id, NULL);
			}
			tt_client_send(to, shared);
		} else if (tt_wire_scheduled(&g_out, sc, &sub->mask)) {
			tt_client_send_copy(to, &g_out);
		}
	}
	tt_msg_unref(shared);
}

void tt_fanout_cancelled(const tt_sched *sc, const tt_session *skip)
{
	const tt_state *st = sc->st;
	tt_msg *m = NULL;
	for (uint32_t i = 0; i < st->n_subs; i++) {
		tt_client *to = st->subs[i].session->client;
		if (st->subs[i].session == skip || !to)
			continue;
		if (!m) {
			tt_wire_cancelled(&g_out, sc);
			m = tt_msg_new(tt_buf_data(&g_out), g_out.len);
		}
		tt_client_send(to, m);
	}
	tt_msg_unref(m);
}

/* A notice to each observer of st's class, once per session whether it
 * observes the class, every class, or both; observers of every class only
 * hear of classes their role may attach. */
static void notice(const tt_state *st, const char *kind)
{
	static uint64_t mark;
	tt_msg *m = NULL;
	mark++;
	for (int pass = 0; pass < 2; pass++) {
		for (tt_observe *o = pass ? tt_store_observers_all() : st->ce->observers; o;
		     o = o->cnext) {
			tt_session *s = o->session;
			if (!s->client || s->mark == mark)
				continue;
			s->mark = mark;
			if (pass && !tt_rights_may(st->ce->rights, TT_RIGHT_ATTACH, s->role, false))
				continue;
			if (!m) {
				tt_wire_notice(&g_out, kind, st);
				m = tt_msg_new(tt_buf_data(&g_out), g_out.len);
			}
			tt_client_send(s->client, m);
		}
	}
	tt_msg_unref(m);
}

void tt_fanout_deleted(const tt_state *st, const char *reason, const tt_session *skip,
		       bool tell_hooks)
{
	if (tell_hooks)
		tt_hooks_notify_delete(st);
	tt_hooks_state_gone(st->id);
	tt_msg *m = NULL;
	for (uint32_t i = 0; i < st->n_subs; i++) {
		tt_client *to = st->subs[i].session->client;
		if (st->subs[i].session == skip || !to)
			continue;
		if (!m) {
			tt_wire_deleted(&g_out, st->id, reason);
			m = tt_msg_new(tt_buf_data(&g_out), g_out.len);
		}
		tt_client_send(to, m);
	}
	tt_msg_unref(m);
	notice(st, "delete");
}

void tt_fanout_created(const tt_state *st)
{
	notice(st, "create");
}

void tt_fanout_class_changed(const tt_class_entry *ce, const uint64_t *old_seqs)
{
	static uint64_t mark = (uint64_t)1 << 62; /* apart from notice()'s marks */
	mark++;
	tt_wire_class_changed(&g_out, ce->cls);
	tt_msg *m = tt_msg_new(tt_buf_data(&g_out), g_out.len);
	for (const tt_state *st = ce->first; st; st = st->cnext)
		for (uint32_t i = 0; i < st->n_subs; i++) {
			tt_session *s = st->subs[i].session;
			if (s->client && s->mark != mark) {
				s->mark = mark;
				tt_client_send(s->client, m);
			}
		}
	for (int pass = 0; pass < 2; pass++)
		for (tt_observe *o = pass ? tt_store_observers_all() : ce->observers; o; o = o->cnext)
			if (o->session->client && o->session->mark != mark) {
				o->session->mark = mark;
				tt_client_send(o->session->client, m);
			}
	tt_msg_unref(m);
	uint32_t k = 0;
	for (const tt_state *st = ce->first; st; st = st->cnext, k++) {
		if (st->seq <= old_seqs[k] || !st->hist.len)
			continue;
		const tt_event *e = tt_history_at(&st->hist, st->hist.len - 1);
		for (uint32_t i = 0; i < st->n_subs; i++) {
			tt_client *to = st->subs[i].session->client;
			if (to && tt_wire_update_event(&g_out, st, e, tt_sub_view(&st->subs[i])))
				tt_client_send_copy(to, &g_out);
		}
	}
}
