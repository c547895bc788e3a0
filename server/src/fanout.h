/* SPDX-License-Identifier: MIT */
/* fanout.h: who receives what. An applied update, a scheduled set, a
 * deleted state or a notice goes to every subscriber or observer it
 * concerns, encoded once and shared by every recipient that sees all of
 * it (one refcounted message, client.h), encoded again only for a
 * recipient whose filter leaves part of it out. Recipients without a
 * connection (a session waiting to resume) get nothing: they catch up on
 * resume. */
#ifndef TT_FANOUT_H
#define TT_FANOUT_H

#include <stdint.h>

#include "store.h"

/* The update just applied to st (cs, after tt_store_apply), to every
 * subscriber but the session skip (the writer, answered by its RESULT;
 * NULL: nobody skipped). sched: the schedule it applies, 0 for none. */
void tt_fanout_update(const tt_state *st, const tt_changes *cs, const tt_session *skip,
		      uint64_t sched);
/* A set scheduled on sc->st, to every subscriber but skip. */
void tt_fanout_scheduled(const tt_sched *sc, const tt_session *skip);
/* A scheduled set is cancelled: CANCELLED to every subscriber but skip. */
void tt_fanout_cancelled(const tt_sched *sc, const tt_session *skip);
/* st is about to be deleted: DELETED to its subscribers but skip, a
 * "delete" NOTICE to the observers of its class, the hook jobs waiting on
 * it fail, and (tell_hooks) its class's delete hooks are told. */
void tt_fanout_deleted(const tt_state *st, const char *reason, const tt_session *skip,
		       bool tell_hooks);
/* st was created: a "create" NOTICE to the observers of its class. */
void tt_fanout_created(const tt_state *st);
/* ce has a new description (a reload of its schema file): CLASS_CHANGED to
 * every session attached to one of its states or observing it, then each
 * state's last event to its subscribers when its seq passed old_seqs[i]
 * (the i-th state of the class, before the change). */
void tt_fanout_class_changed(const tt_class_entry *ce, const uint64_t *old_seqs);
/* Free the encoding buffer (at exit). */
void tt_fanout_cleanup(void);

#endif
