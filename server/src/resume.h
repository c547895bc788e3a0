/* SPDX-License-Identifier: MIT */
/* resume.h: a session across its connections (PROTOCOL.md §9). When the
 * connection goes, the session waits out the resume window; a client that
 * comes back in time with its token is caught up with exactly what it
 * missed; one that does not has its session ended: its owned states are
 * deleted and its attachments dropped. Single-threaded. */
#ifndef TT_RESUME_H
#define TT_RESUME_H

#include <stdbool.h>

#include "config.h"
#include "session.h"
#include "value.h"

/* cfg is borrowed and must outlive the module. */
void tt_resume_init(const tt_config *cfg);
void tt_resume_destroy(void);

/* s's client is back (a HELLO with its token): push, for each attached
 * state, the pending schedules, then the UPDATEs it missed or a SNAPSHOT
 * when they left the history, and DELETED for states it knew that went
 * meanwhile. seqs maps state id -> last seq seen (may be NULL or not a
 * map). Linear in the session's instances plus the entries of seqs. */
void tt_resume_catch_up(tt_session *s, const tt_value *seqs);
/* s's connection closed: its window starts; it ends now instead when the
 * client said goodbye (goodbye: a close frame with 1000 or 1001, a closed
 * page or client.close()) or with a window of 0, unless the server is
 * stopping (then every session waits for the restart). */
void tt_resume_gone(tt_session *s, bool goodbye);
/* End s: delete its owned states (their subscribers get DELETED "owner
 * left"), drop its instances and observes, free it. */
void tt_resume_end(tt_session *s);
/* Once a second: end the sessions whose window passed. */
void tt_resume_tick(void);
/* The server is stopping: connections that close now keep their sessions
 * (they resume after the restart). */
void tt_resume_stopping(void);

#endif
