/* SPDX-License-Identifier: MIT */
/* inspect.h: the operator's view of the room (PROTOCOL.md §8b). Clients
 * report the quality of their clock sync (SYNC_REPORT); once a second the
 * room is sampled (rates, how many phones are within 1/2/5/10 ms) into a
 * ring of the last ten minutes; connections of an admin role that asked
 * (INSPECT) get the room pushed (ROOM) with every session's and state's
 * figures; an admin may end a session (KICK).
 *
 * It costs nothing on the hot path: the sample reads counters
 * (metrics.h) and walks the connections once a second, and the ROOM
 * messages are built only while a connection inspects. Single-threaded. */
#ifndef TT_INSPECT_H
#define TT_INSPECT_H

#include <stdint.h>

#include "client.h"
#include "common.h"
#include "value.h"

/* The bounds of the sync-quality counts, in milliseconds. */
#define TT_INSPECT_WITHIN 4
extern const double tt_inspect_within_ms[TT_INSPECT_WITHIN];

void tt_inspect_init(void);
void tt_inspect_destroy(void);

/* SYNC_REPORT [18, status, offsetError, drift, roundTrip] from c: kept as
 * c's report (the round trip goes into the histogram at most once a
 * second per connection). -TT_BAD_MESSAGE when a field is missing, of the
 * wrong type or out of its bounds; nothing is kept then. */
int tt_inspect_sync_report(tt_client *c, const tt_value *msg, tt_error *err);
/* INSPECT: opts a map {sessions: n, states: n} starts (or changes) c's
 * subscription and answers the room now with the samples of the last ten
 * minutes; nil stops it. Admin roles only (-TT_FORBIDDEN). */
int tt_op_inspect(tt_client *c, uint64_t rid, const tt_value *opts, tt_error *err);
/* KICK: end session `id` now (its connection closed with 4005, its
 * states deleted). Admin roles only; -TT_UNKNOWN_SESSION, -TT_BAD_REQUEST
 * for the requester's own session. */
int tt_op_kick(tt_client *c, uint64_t rid, uint64_t id, tt_error *err);
/* Once a second: sample the room; push it to every inspecting connection. */
void tt_inspect_tick(void);
/* Connected clients (after HELLO) with a report of the last minute, and
 * how many of them report an error within each bound. */
void tt_inspect_sync_counts(uint32_t *reporting, uint32_t within[TT_INSPECT_WITHIN]);

#endif
