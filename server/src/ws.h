/* SPDX-License-Identifier: MIT */
/* ws.h: the network front end on libwebsockets (ws.c is the only file that
 * includes libwebsockets.h): HTTP files of --web, GET /healthz, and the
 * tutti.v1 WebSocket protocol on one port. */
#ifndef TT_WS_H
#define TT_WS_H

#include "config.h"

/* Serve until tt_ws_stop(). Returns 0 on a clean stop, -1 when the port
 * could not be opened or a commit failed. */
int tt_ws_run(const tt_config *cfg);
/* Async-signal-safe: ask the loop to stop. */
void tt_ws_stop(void);
/* Async-signal-safe: ask the loop to reload the schema files (SIGHUP). */
void tt_ws_reload(void);

#endif
