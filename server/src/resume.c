/* SPDX-License-Identifier: MIT */
/* resume.c: catching a resumed session up, and ending sessions whose
 * client did not come back. */
#include "resume.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "db.h"
#include "fanout.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "wire.h"

static struct {
	const tt_config *cfg;
	bool stopping;
	tt_buf out;
} R;

void tt_resume_init(const tt_config *cfg)
{
	R.cfg = cfg;
	R.stopping = false;
	tt_buf_init(&R.out, 0);
}

void tt_resume_destroy(void)
{
	tt_buf_free(&R.out);
}

/* A key of the seqs map as a state id: an integer, or a string of one
 * (JSON-minded clients send object keys as strings). */
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

/* What the client missed of st, seen through view, since seq `last`
 * (UINT64_MAX: unknown, a snapshot). */
static void catch_up_state(tt_client *c, const tt_state *st, const tt_mask *view, uint64_t last)
{
	/* pending schedules again: a client ignores the ids it knows */
	for (const tt_sched *sc = st->scheds.first; sc; sc = sc->next)
		if (tt_wire_scheduled(&R.out, sc, view))
			tt_client_reply(c, &R.out);
	if (last == st->seq)
		return;
	uint64_t first = tt_history_first_seq(&st->hist);
	if (last < st->seq && first && first <= last + 1) {
		for (uint32_t i = 0; i < st->hist.len; i++) {
			const tt_event *e = tt_history_at(&st->hist, i);
			if (e->seq > last && tt_wire_update_event(&R.out, st, e, view))
				tt_client_reply(c, &R.out);
		}
	} else {
		tt_wire_snapshot(&R.out, st, view);
		tt_client_reply(c, &R.out);
	}
}

void tt_resume_catch_up(tt_session *s, const tt_value *seqs)
{
	tt_client *c = s->client;
	if (!c)
		return;
	uint32_t n = seqs && seqs->type == TT_MAP ? seqs->len : 0;
	/* last seq seen per state id, from the map: the last valid entry wins */
	tt_idmap last, told_deleted;
	tt_idmap_init(&last);
	tt_idmap_init(&told_deleted);
	uint64_t *lasts = n ? tt_malloc(sizeof(*lasts) * n) : NULL;
	for (uint32_t i = 0; i < n; i++) {
		const tt_pair *kv = &seqs->v.pairs[i];
		uint64_t id;
		if (!key_as_id(&kv->key, &id))
			continue;
		if (!tt_store_state(id)) {
			/* a state the client knew, deleted while it was away: told
			 * once, and only for a state that was (a map of 240,000
			 * made-up ids must not queue 240,000 replies) */
			const char *why = tt_store_tombstone(id);
			if (why && !tt_idmap_get(&told_deleted, id)) {
				tt_idmap_put(&told_deleted, id, (void *)why);
				tt_wire_deleted(&R.out, id, why);
				tt_client_reply(c, &R.out);
			}
			continue;
		}
		if (kv->val.type != TT_INT || kv->val.v.i < 0)
			continue;
		lasts[i] = (uint64_t)kv->val.v.i;
		tt_idmap_del(&last, id);
		tt_idmap_put(&last, id, &lasts[i]);
	}
	/* each attached state once, however many instances the session has on
	 * it (they share one sub); a class whose description changed at this
	 * start is told first (once) */
	tt_idmap done, told;
	tt_idmap_init(&done);
	tt_idmap_init(&told);
	for (tt_instance *in = s->instances; in; in = in->s_next) {
		tt_state *st = in->state;
		if (tt_idmap_get(&done, st->id))
			continue;
		tt_idmap_put(&done, st->id, st);
		uint64_t ck = (uint64_t)(uintptr_t)st->ce;
		if (st->ce->migrated && !tt_idmap_get(&told, ck)) {
			tt_idmap_put(&told, ck, st->ce);
			tt_wire_class_changed(&R.out, st->ce->cls);
			tt_client_reply(c, &R.out);
		}
		const uint64_t *l = tt_idmap_get(&last, st->id);
		catch_up_state(c, st, tt_sub_view(&st->subs[in->sub]), l ? *l : UINT64_MAX);
	}
	tt_idmap_free(&done);
	tt_idmap_free(&told);
	tt_idmap_free(&last);
	tt_idmap_free(&told_deleted);
	free(lasts);
}

void tt_resume_end(tt_session *s)
{
	for (tt_state *st = s->owned, *next; st; st = next) {
		next = st->onext;
		/* several nodes: a state written by another node is deleted there
		 * when it reads that the session ended */
		if (!tt_cluster_ends_here(st))
			continue;
		tt_fanout_deleted(st, "owner left", s, true);
		tt_store_state_delete(st, "owner left");
	}
	tt_store_session_drop(s);
}

void tt_resume_gone(tt_session *s, bool goodbye)
{
	tt_store_session_gone(s, tt_clock_wall());
	s->gone_mono = tt_clock_mono();
	/* ending deletes its states: not while the database fails (the tick
	 * ends it once the window is over and the database works) */
	if ((goodbye || R.cfg->resume_window <= 0) && !R.stopping && !tt_db_failing()) {
		if (goodbye)
			tt_metrics.ended_goodbye++;
		else
			tt_metrics.ended_expired++;
		tt_resume_end(s);
	}
}

void tt_resume_stopping(void)
{
	R.stopping = true;
}

void tt_resume_tick(void)
{
	double now = tt_clock_mono();
	tt_session *s = tt_session_first();
	while (s) {
		tt_session *next = s->next;
		if (!s->client && now - s->gone_mono >= R.cfg->resume_window && tt_cluster_may_end(s)) {
			tt_log_info("%s: ended, not back within the resume window%s", tt_session_name(s),
				    s->n_owned ? "; the states it created are deleted" : "");
			tt_metrics.ended_expired++;
			tt_resume_end(s);
		}
		s = next;
	}
}
