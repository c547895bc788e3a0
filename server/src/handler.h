/* SPDX-License-Identifier: MIT */
/* handler.h: protocol requests in, store operations out. Takes a complete
 * WebSocket message (one or more msgpack values), checks the shape of each
 * request (PROTOCOL.md §2), and calls the store; answers every request with
 * exactly one RESULT or ERROR. No lws, no SQL here. */
#ifndef TT_HANDLER_H
#define TT_HANDLER_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "config.h"

int tt_handler_init(const tt_config *cfg);
void tt_handler_destroy(void);

/* Handle one complete binary message from c. data is borrowed for the
 * call. May close c (too many protocol errors). */
void tt_handler_message(tt_client *c, const void *data, size_t len);
/* c read its replies (its queue is under --max-queue again): handle the
 * requests held meanwhile. True when none is held any more (its socket
 * may be read again). */
bool tt_handler_drained(tt_client *c);
/* A text frame: answered with BAD_MESSAGE. */
void tt_handler_text(tt_client *c);
/* The connection of c closed (before tt_client_free); c->peer_close says
 * whether the client said goodbye. */
void tt_handler_closed(tt_client *c);

#endif
