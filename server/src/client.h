/* SPDX-License-Identifier: MIT */
/* client.h: one WebSocket connection and its outgoing queue.
 *
 * A message is encoded once into a refcounted tt_msg with WebSocket
 * headroom; every recipient's queue holds a reference, so a broadcast costs
 * one encoding and one copy whatever the number of recipients. The
 * queue is bounded in bytes: a client past --max-queue is closed with 4001
 * and catches up by resuming (PROTOCOL.md §12).
 *
 * Messages are stamped with the batch (loop turn) that produced them. The
 * writer sends a message only once its batch is released (turn.h), so
 * nothing leaves the server before the updates it reports are durable. */
#ifndef TT_CLIENT_H
#define TT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics.h"
#include "peers.h"

/* Headroom before each message for the WebSocket header; ws.c checks at
 * compile time that it covers LWS_PRE. */
#define TT_WS_PRE 16

/* Words of a message's param set (one bit per param of its class). */
#define TT_MSG_KEY_WORDS 4

typedef struct tt_msg {
	uint32_t refs;
	uint32_t len;   /* payload bytes */
	uint32_t cap;   /* payload capacity (pool size class) */
	bool conflate;  /* an UPDATE whose params all conflate (tt_msg_conflate) */
	uint64_t batch; /* loop turn that produced it */
	uint64_t state; /* an UPDATE's state id, else 0 */
	uint64_t keys[TT_MSG_KEY_WORDS]; /* with conflate: the params it changes */
	unsigned char data[]; /* TT_WS_PRE headroom, then payload */
} tt_msg;

/* A message holding a copy of bytes, refs = 1, stamped with the current
 * batch. Small messages come from a pool: no malloc in steady state. */
tt_msg *tt_msg_new(const void *bytes, size_t len);
void tt_msg_ref(tt_msg *m);
void tt_msg_unref(tt_msg *m); /* accepts NULL */
/* Mark m as an UPDATE of state (a non-zero id). With keys (bit i: param i
 * of the class, TT_MSG_KEY_WORDS words), every param it changes conflates:
 * tt_client_send then drops the client's unsent UPDATE of the same state
 * when that one conflates too and changes no param m does not
 * (PROTOCOL.md §6b). keys NULL: an UPDATE that must be delivered. */
void tt_msg_update_of(tt_msg *m, uint64_t state, const uint64_t *keys);
static inline unsigned char *tt_msg_payload(tt_msg *m) { return m->data + TT_WS_PRE; }
/* Free the pool (at exit, so leak checkers stay quiet). */
void tt_msg_pool_free(void);

typedef struct tt_session tt_session;
typedef struct tt_client tt_client;

struct tt_client {
	void *wsi;           /* borrowed: the lws connection, valid until closed */
	tt_session *session; /* borrowed: NULL until HELLO */
	unsigned char addr[TT_ADDR_LEN]; /* remote address (IPv4 mapped) */
	char addr_text[48];  /* the same, printable */
	uintptr_t *q;        /* owned ring of references (client.c: one word each) */
	uint32_t q_head, q_len, q_cap;
	size_t q_bytes;      /* payload queued + per-entry overhead (msg_cost) */
	size_t q_push_bytes; /* the part of q_bytes that is pushes */
	tt_buf rx;           /* reassembly of a fragmented message */
	tt_buf held;         /* the rest of a message not handled yet: its replies
			      * waited unread (handler.c); its socket is not read
			      * until they drain */
	bool closing;        /* no more input or output; close requested */
	bool close_sent;     /* our close frame is written (ws.c) */
	int close_code;
	int finish_code;     /* no more input; close with it once the queue is written */
	int peer_close;      /* the close code the client sent (0: none, the line dropped) */
	bool rx_paused;      /* its socket is not read (tt_client_over) */
	bool rx_drop;        /* a text message: dropped, answered at its end */
	uint32_t rx_over;    /* a message over --max-message: bytes of it dropped
			      * (ws.c) */
	bool pending;        /* in the FIFO of clients to wake for writing */
	bool urgent;         /* a reply is queued: wake at the end of this turn */
	tt_client *urgent_next;
	bool waiting;        /* its next message waits for its batch's release */
	tt_client *wait_next;
	tt_buf *capture;     /* not a connection: a request forwarded from another
			      * node (cluster.c); its replies are appended here */
	uint32_t bad_in_row; /* consecutive protocol errors */
	double last_rx;      /* clock_mono() of the last frame or pong received */
	bool want_ping;      /* keepalive: send a WebSocket ping when writable */
	uint32_t unconfirmed; /* bytes written since epoll last said the socket had
			       * room (ws.c) */
	double rate_t0;
	uint32_t rate_n;
	tt_client *next, *prev; /* all clients */
	tt_conn_stats stats; /* what it did, for the inspector (metrics.h) */
};

/* Bound every client's queue to max_queue bytes (--max-queue). */
void tt_client_init(size_t max_queue);
/* The batch being produced is durable, and every batch before it: release
 * their messages to the writers, and start the next batch. Only the end of
 * a turn calls these three (turn.c). */
void tt_client_release_batch(void);
/* The commit of the batch being produced failed: its messages wait for a
 * release. */
void tt_client_hold_batch(void);
/* The batch being produced acknowledges nothing that waits for the disk:
 * its messages may go at once, but behind a held batch's in each queue. */
void tt_client_pass_batch(void);
/* The batch being produced (its messages are stamped with it). */
uint64_t tt_client_batch(void);
/* The batch being produced is in the engine's hands (an engine that
 * acknowledges later, engine.h): start the next one, release nothing. */
void tt_client_seal_batch(void);
/* Every batch <= b is durable: release them, and wake the clients that
 * found their next message waiting (tt_client_wait_release). */
void tt_client_release_upto(uint64_t b);
/* The writer found c's next message not released yet: wake c on its
 * release. */
void tt_client_wait_release(tt_client *c);
/* A batch >= from will never be released as it is (the engine refused part
 * of it): close, with code, every client holding a message of such a batch;
 * the others keep theirs. */
void tt_client_drop_unreleased(uint64_t from, int code);

tt_client *tt_client_new(void *wsi);
/* Free the client and drop its queue. Does not touch its session. */
void tt_client_free(tt_client *c);

/* Queue a push: a reference to m for c (takes a new reference). When the
 * pushes queued would pass --max-queue the client is closed with 4001
 * instead. A conflating UPDATE (tt_msg_update_of) first replaces the one
 * it supersedes, if c still holds it unsent. */
void tt_client_send(tt_client *c, tt_msg *m);
/* Queue a push encoded for this client alone (a copy of b), woken at the
 * end of the turn; bounded like tt_client_send. */
void tt_client_send_copy(tt_client *c, const tt_buf *b);
/* Queue a reply (a copy of b: RESULT, ERROR, PONG, a resume's catch-up),
 * woken at the end of the turn; never closes the client. */
void tt_client_reply(tt_client *c, const tt_buf *b);
/* Bytes its queue holds, as counted against --max-queue (metrics). */
size_t tt_client_queued_bytes(const tt_client *c);
/* More than --max-queue bytes queued: do not take requests from c (and
 * do not read its socket) until it drained. */
bool tt_client_over(const tt_client *c);
/* Stop all traffic and ask the network layer to close with code. */
void tt_client_close(tt_client *c, int code);
/* Take no more input; write what is queued (an ERROR saying why), then
 * close with code. */
void tt_client_finish(tt_client *c, int code);

/* The i-th queued message, released or not (tests), or NULL. */
tt_msg *tt_client_at(const tt_client *c, uint32_t i);
/* The i-th queued message if its batch is released or passed, else NULL. */
tt_msg *tt_client_ready(const tt_client *c, uint32_t i);
/* Drop the first n queued messages (after they were written). */
void tt_client_consume(tt_client *c, uint32_t n);

/* For the network layer's end of turn, which writes to clients: the
 * clients with a reply queued (a list through urgent_next, emptied), then
 * the others in FIFO order, as many as its time allows before it reads
 * input again. */
tt_client *tt_client_take_urgent(void);
tt_client *tt_client_next_pending(void); /* NULL when none */
bool tt_client_any_pending(void);

/* The first of all live clients (list through ->next). */
tt_client *tt_client_first(void);

#endif
