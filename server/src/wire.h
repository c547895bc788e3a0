/* SPDX-License-Identifier: MIT */
/* wire.h: every message the server sends, built by one encoder each
 * (PROTOCOL.md §2). Each tt_wire_* clears b and writes one whole message
 * into it; nothing is sent here. A `view` is what the recipient may see of
 * a state (an attach filter; NULL: every param): keys outside it are left
 * out, and encoders that return bool say false when the view leaves
 * nothing to send. */
#ifndef TT_WIRE_H
#define TT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/* ---- replies to requests: [64, rid, result] or [65, rid, code, msg] ---- */

void tt_wire_error(tt_buf *b, uint64_t rid, int code, const char *msg);
void tt_wire_result_nil(tt_buf *b, uint64_t rid);
/* HELLO: {session, token, role, time, resumed, maxMessage, resumeWindow}. */
void tt_wire_welcome(tt_buf *b, uint64_t rid, const tt_session *s, const char *token,
		     const char *role, double now, bool resumed, size_t max_message,
		     double resume_window);
/* DEFINE: {defined}. */
void tt_wire_defined(tt_buf *b, uint64_t rid, bool created);
/* DESCRIBE: the expanded description. */
void tt_wire_description(tt_buf *b, uint64_t rid, const tt_class *cls);
/* CREATE and ATTACH: the instance, the state's values, description and
 * filter as asked (filter NULL: nil), the events with seq > from when
 * with_hist, and the pending schedules the instance can see. */
void tt_wire_state(tt_buf *b, uint64_t rid, const tt_instance *in, const tt_value *filter,
		   bool with_hist, uint64_t from, bool complete);
/* SET applied (or not: cs empty): {seq, time, changes}. */
void tt_wire_set_done(tt_buf *b, uint64_t rid, const tt_state *st, const tt_changes *cs,
		      const tt_mask *view);
/* SET scheduled: {scheduled, at, changes}. */
void tt_wire_set_scheduled(tt_buf *b, uint64_t rid, const tt_sched *sc, const tt_mask *view);
/* OBSERVE: {states: [[class, id, owner]...]} of ce (NULL: every class
 * role may attach). */
void tt_wire_states(tt_buf *b, uint64_t rid, const tt_class_entry *ce, uint32_t role);
/* HISTORY: {events, complete}, the events with seq > from. */
void tt_wire_history(tt_buf *b, uint64_t rid, const tt_state *st, uint64_t from, bool complete,
		     const tt_mask *view);

/* ---- pushes ------------------------------------------------------------- */

/* [69, pingId, clientTime, serverRecvTime, serverSendTime] */
void tt_wire_pong(tt_buf *b, uint64_t id, double client_time, double recv, double send);
/* [66, id, seq, time, changes(, sched)]: the update just applied (cs). */
bool tt_wire_update(tt_buf *b, const tt_state *st, const tt_changes *cs, const tt_mask *view,
		    uint64_t sched);
/* [66, id, seq, time, changes]: an event of the history (resume). */
bool tt_wire_update_event(tt_buf *b, const tt_state *st, const tt_event *e,
			  const tt_mask *view);
/* [67, id, reason] */
void tt_wire_deleted(tt_buf *b, uint64_t id, const char *reason);
/* [68, kind, class, id, owner] */
void tt_wire_notice(tt_buf *b, const char *kind, const tt_state *st);
/* [70, id, seq, time, values] */
void tt_wire_snapshot(tt_buf *b, const tt_state *st, const tt_mask *view);
/* [71, state, schedId, at, changes] */
bool tt_wire_scheduled(tt_buf *b, const tt_sched *sc, const tt_mask *view);
/* [72, state, schedId] */
void tt_wire_cancelled(tt_buf *b, const tt_sched *sc);
/* [73, callId, hookId, kind, class, stateId, values, current]: a hook's
 * turn (values and current are encoded maps, current nil but for update). */
void tt_wire_hook_call(tt_buf *b, uint64_t call, uint64_t hook, const char *kind,
		       const tt_class *cls, uint64_t state, const tt_buf *values,
		       const tt_buf *current);
/* [74, className, description]: a class has a new description. */
void tt_wire_class_changed(tt_buf *b, const tt_class *cls);
/* RESULT {hook: id} */
void tt_wire_hooked(tt_buf *b, uint64_t rid, uint64_t hook);

/* Free the decoder the filtered encoders use (at exit). */
void tt_wire_cleanup(void);

#endif
