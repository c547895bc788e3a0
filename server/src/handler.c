/* SPDX-License-Identifier: MIT */
/* handler.c: request decoding, shape checks and dispatch to ops.c. */
#include "handler.h"

#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "db.h"
#include "log.h"
#include "hooks.h"
#include "inspect.h"
#include "metrics.h"
#include "ops.h"
#include "protocol.h"
#include "resume.h"
#include "session.h"
#include "store.h"
#include "wire.h"

/* Consecutive protocol errors after which a client is closed (4002). */
#define MAX_BAD_IN_ROW 64

static struct {
	const tt_config *cfg;
	tt_decoder *dec;
	tt_arena arena;
	tt_buf out;
	tt_buf held; /* a client's held requests, while they are handled */
} H;

int tt_handler_init(const tt_config *cfg)
{
	H.cfg = cfg;
	H.dec = tt_decoder_new();
	tt_arena_init(&H.arena, 65536);
	tt_buf_init(&H.out, 0);
	tt_buf_init(&H.held, 0);
	return 0;
}

void tt_handler_destroy(void)
{
	tt_decoder_free(H.dec);
	tt_arena_destroy(&H.arena);
	tt_buf_free(&H.out);
	tt_buf_free(&H.held);
}

static void send_error(tt_client *c, uint64_t rid, const tt_error *err)
{
	TT_LOG_LIMITED(TT_LOG_INFO, "%s: refused: %s %s", tt_session_who(c), tt_code_name(err->code),
		       err->msg);
	tt_wire_error(&H.out, rid, err->code, err->msg);
	tt_client_reply(c, &H.out);
	if (err->code != TT_BAD_MESSAGE && err->code != TT_UNKNOWN_TYPE) {
		c->bad_in_row = 0; /* a readable request: not a garbage stream */
	} else if (++c->bad_in_row >= MAX_BAD_IN_ROW) {
		TT_LOG_LIMITED(TT_LOG_WARN, "%s: %u protocol errors in a row, closing",
			       tt_session_who(c), c->bad_in_row);
		tt_client_close(c, TT_CLOSE_PROTOCOL_ERRORS);
	}
}

static bool get_uint(const tt_value *v, uint64_t *out)
{
	if (v->type != TT_INT || v->v.i < 0)
		return false;
	*out = (uint64_t)v->v.i;
	return true;
}

static void ping(tt_client *c, const tt_value *msg, double recv_time)
{
	uint64_t id;
	double t;
	if (msg->len < 3 || !get_uint(&msg->v.items[1], &id) || !tt_as_double(&msg->v.items[2], &t)) {
		tt_error err;
		tt_fail(&err, TT_BAD_MESSAGE, "PING is [12, pingId, clientTime]");
		send_error(c, 0, &err);
		return;
	}
	tt_op_ping(c, id, t, recv_time);
}

/* Fields expected per request type: how many after [type, reqId]. */
static const uint8_t n_args[] = {
	[TT_MSG_HELLO] = 1, [TT_MSG_DEFINE] = 2, [TT_MSG_CREATE] = 2, [TT_MSG_ATTACH] = 3,
	[TT_MSG_DETACH] = 1, [TT_MSG_DELETE] = 1, [TT_MSG_SET] = 2, [TT_MSG_OBSERVE] = 1,
	[TT_MSG_UNOBSERVE] = 1, [TT_MSG_HISTORY] = 2, [TT_MSG_DESCRIBE] = 1, [TT_MSG_CANCEL] = 2,
	[TT_MSG_HOOK] = 2, [TT_MSG_UNHOOK] = 1, [TT_MSG_DELETE_CLASS] = 1, [TT_MSG_INSPECT] = 1,
	[TT_MSG_KICK] = 1,
};

static int dispatch(tt_client *c, tt_value *msg, uint64_t *out_rid, tt_error *err)
{
	double now = tt_clock_now();
	if (msg->type != TT_ARRAY || msg->len < 1)
		return tt_fail(err, TT_BAD_MESSAGE, "a message must be an array [type, ...]");
	uint64_t type;
	if (!get_uint(&msg->v.items[0], &type))
		return tt_fail(err, TT_BAD_MESSAGE, "message type must be a positive integer");
	if (type == TT_MSG_PING) {
		ping(c, msg, now);
		return 0;
	}
	if (type == TT_MSG_SYNC_REPORT)
		/* not a request either: [18, status, error, drift, rtt], no reply */
		return tt_inspect_sync_report(c, msg, err);
	if (type == TT_MSG_HOOK_REPLY) {
		/* not a request: [16, callId, result], no reply */
		uint64_t call;
		if (msg->len != 3 || !get_uint(&msg->v.items[1], &call))
			return tt_fail(err, TT_BAD_MESSAGE, "HOOK_REPLY is [16, callId, result]");
		/* several nodes: a call of another node's job goes back there */
		if (c->session && !tt_cluster_hook_reply(call, &msg->v.items[2]))
			tt_hooks_reply(c, call, &msg->v.items[2]);
		return 0;
	}
	if (type >= sizeof(n_args) || !n_args[type]) {
		if (msg->len >= 2)
			get_uint(&msg->v.items[1], out_rid);
		return tt_fail(err, TT_UNKNOWN_TYPE, "unknown message type %llu",
			       (unsigned long long)type);
	}
	uint64_t rid;
	if (msg->len < 2 || !get_uint(&msg->v.items[1], &rid) || rid > UINT32_MAX)
		return tt_fail(err, TT_BAD_MESSAGE, "request id must be an integer in [0, 2^32)");
	*out_rid = rid;
	if (msg->len != 2u + n_args[type] && !(type == TT_MSG_SET && msg->len == 5))
		return tt_fail(err, TT_BAD_MESSAGE, "message type %llu takes %u fields after the request id",
			       (unsigned long long)type, n_args[type]);
	tt_value *a = msg->v.items + 2;
	/* the database fails (disk full, file deleted): what would change the
	 * data is refused untouched; reads, attaches and sessions go on while
	 * their rows wait in memory, up to a budget */
	const char *failing = tt_db_failing();
	if (failing && (type == TT_MSG_CREATE || type == TT_MSG_DELETE || type == TT_MSG_SET ||
			type == TT_MSG_CANCEL || type == TT_MSG_DELETE_CLASS || type == TT_MSG_KICK ||
			(type == TT_MSG_DEFINE && !(tt_name_ok(&a[0]) &&
						    tt_store_class(a[0].v.s, a[0].len))) ||
			(tt_db_backlog_full() && type != TT_MSG_DESCRIBE && type != TT_MSG_HISTORY)))
		return tt_fail(err, TT_STORAGE, "storage failed: %s; nothing was applied", failing);
	if (type == TT_MSG_HELLO)
		return tt_op_hello(c, rid, &a[0], err);
	if (!c->session)
		return tt_fail(err, TT_NOT_READY, "send HELLO first");

	uint64_t inst;
	switch (type) {
	case TT_MSG_DEFINE:
		return tt_op_define(c, rid, &a[0], &a[1], err);
	case TT_MSG_DESCRIBE:
		return tt_op_describe(c, rid, &a[0], err);
	case TT_MSG_CREATE:
		return tt_op_create(c, rid, &a[0], &a[1], err);
	case TT_MSG_ATTACH:
		return tt_op_attach(c, rid, &a[0], &a[1], &a[2], err);
	case TT_MSG_OBSERVE:
	case TT_MSG_UNOBSERVE:
		return tt_op_observe(c, rid, &a[0], type == TT_MSG_OBSERVE, err);
	case TT_MSG_HOOK:
		return tt_op_hook(c, rid, &a[0], &a[1], err);
	case TT_MSG_DELETE_CLASS:
		return tt_op_delete_class(c, rid, &a[0], err);
	case TT_MSG_INSPECT:
		return tt_op_inspect(c, rid, &a[0], err);
	default:
		break;
	}
	if (!get_uint(&a[0], &inst))
		return tt_fail(err, TT_BAD_MESSAGE, type == TT_MSG_KICK ?
			       "session id must be a non-negative integer" :
			       "instance id must be a non-negative integer");
	switch (type) {
	case TT_MSG_DETACH: return tt_op_detach(c, rid, inst, err);
	case TT_MSG_UNHOOK: return tt_op_unhook(c, rid, inst, err);
	case TT_MSG_DELETE: return tt_op_delete(c, rid, inst, err);
	case TT_MSG_SET: return tt_op_set(c, rid, inst, &a[1], msg->len == 5 ? &a[2] : NULL, err);
	case TT_MSG_HISTORY: return tt_op_history(c, rid, inst, &a[1], err);
	case TT_MSG_KICK: return tt_op_kick(c, rid, inst, err);
	case TT_MSG_CANCEL: {
		uint64_t sched;
		if (!get_uint(&a[1], &sched))
			return tt_fail(err, TT_BAD_MESSAGE, "schedule id must be a non-negative integer");
		return tt_op_cancel(c, rid, inst, sched, err);
	}
	default: return tt_fail(err, TT_UNKNOWN_TYPE, "unknown message type");
	}
}

static bool rate_ok(tt_client *c)
{
	if (!H.cfg->max_rate)
		return true;
	double now = tt_clock_mono();
	if (now - c->rate_t0 >= 1.0) {
		c->rate_t0 = now;
		c->rate_n = 0;
	}
	return ++c->rate_n <= H.cfg->max_rate;
}

/* The message type of a decoded message, for the refusals' counts (0:
 * none readable). */
static uint64_t type_of(const tt_value *msg)
{
	uint64_t type = 0;
	if (msg->type == TT_ARRAY && msg->len >= 1)
		get_uint(&msg->v.items[0], &type);
	return type;
}

/* The requests of one message, in order. When the client's replies wait
 * unread (its queue is over --max-queue) the rest of the message is held,
 * not answered: a frame of 200,000 tiny requests from a client that reads
 * nothing would otherwise queue 200,000 replies. Its socket is not read
 * meanwhile (ws.c), and tt_handler_drained goes on once it read. */
static void handle(tt_client *c, const unsigned char *data, size_t len)
{
	size_t off = 0;
	while (off < len && !c->closing && !c->finish_code) {
		if (tt_client_over(c)) {
			tt_buf_append(&c->held, data + off, len - off);
			return;
		}
		tt_value msg;
		tt_error err;
		uint64_t rid = 0;
		size_t start = off;
		int rc = tt_decode(H.dec, data, len, &off, &H.arena, &msg, &err);
		if (rc < 0) {
			/* the rest of the message cannot be framed: answer once */
			tt_metrics_refused(0, err.code);
			send_error(c, 0, &err);
			break;
		}
		tt_metrics.msgs_in++;
		c->stats.msgs_in++;
		if (!rate_ok(c)) {
			if (msg.type == TT_ARRAY && msg.len >= 2)
				get_uint(&msg.v.items[1], &rid);
			tt_fail(&err, TT_RATE_LIMIT, "more than %u messages per second", H.cfg->max_rate);
			tt_metrics_refused(type_of(&msg), err.code);
			send_error(c, rid, &err);
		} else if ((rc = dispatch(c, &msg, &rid, &err)) < 0 &&
			   !((rc == -TT_UNKNOWN_CLASS || rc == -TT_UNKNOWN_STATE) &&
			     tt_cluster_retry_later(c, data + start, off - start))) {
			/* (several nodes: a class or state another node just made is
			 * looked up again once this node has read as far as the
			 * stream was) */
			tt_metrics_refused(type_of(&msg), err.code);
			send_error(c, rid, &err);
			if (rc == -TT_UNAUTHORIZED)
				tt_client_finish(c, TT_CLOSE_UNAUTHORIZED);
		} else {
			c->bad_in_row = 0;
		}
		tt_arena_reset(&H.arena);
	}
}

void tt_handler_message(tt_client *c, const void *data, size_t len)
{
	if (c->held.len) /* not read while it holds; kept in order all the same */
		tt_buf_append(&c->held, data, len);
	else
		handle(c, data, len);
}

bool tt_handler_drained(tt_client *c)
{
	if (!c->held.len)
		return true;
	/* handle from a copy: what is still over is held again */
	tt_buf_clear(&H.held);
	tt_buf_append(&H.held, tt_buf_data(&c->held), c->held.len);
	tt_buf_clear(&c->held);
	handle(c, tt_buf_data(&H.held), H.held.len);
	if (H.held.cap > 1 << 20)
		tt_buf_free(&H.held);
	if (!c->held.len && c->held.cap > 1 << 16)
		tt_buf_free(&c->held);
	return c->held.len == 0;
}

void tt_handler_text(tt_client *c)
{
	tt_error err;
	tt_fail(&err, TT_BAD_MESSAGE, "text frames are not part of the protocol: send binary msgpack");
	tt_metrics_refused(0, err.code);
	send_error(c, 0, &err);
}

/* One line for a connection that ended, with why. */
static void log_closed(tt_client *c, bool goodbye)
{
	const char *who = tt_session_who(c);
	uint32_t owned = c->session ? c->session->n_owned : 0;
	switch (c->close_code) {
	case TT_CLOSE_GOING_AWAY:
		tt_log_debug("%s: closed, the server is stopping", who);
		return;
	case TT_CLOSE_SLOW_CONSUMER:
		tt_metrics.slow_consumers++;
		TT_LOG_LIMITED(TT_LOG_WARN, "%s: closed as a slow consumer (more than --max-queue "
			       "bytes of updates waiting for it)", who);
		return;
	case TT_CLOSE_TAKEN_OVER:
		return; /* logged by HELLO */
	case TT_CLOSE_RESYNC:
		TT_LOG_LIMITED(TT_LOG_WARN, "%s: closed to resume: its replies were not stored "
			       "(another node wrote first)", who);
		return;
	case TT_CLOSE_KICKED:
		return; /* logged by KICK */
	case TT_CLOSE_UNAUTHORIZED:
	case TT_CLOSE_PROTOCOL_ERRORS:
		return; /* logged with the refusal */
	}
	if (!c->session)
		tt_log_debug("%s: connection closed before HELLO", who);
	else if (goodbye)
		tt_log_info("%s: left (closed with %d)%s", who, c->peer_close,
			    owned ? "; the states it created are deleted" : "");
	else if (H.cfg->resume_window <= 0)
		tt_log_info("%s: connection lost; ended (--resume-window 0)%s", who,
			    owned ? "; the states it created are deleted" : "");
	else if (c->peer_close)
		tt_log_info("%s: dropped (closed with %d); may resume within %g s", who,
			    c->peer_close, H.cfg->resume_window);
	else
		tt_log_info("%s: connection lost; may resume within %g s", who, H.cfg->resume_window);
}

void tt_handler_closed(tt_client *c)
{
	tt_cluster_client_gone(c); /* first: it tells the other nodes of its hooks */
	tt_hooks_client_gone(c);
	tt_session *s = c->session;
	bool goodbye = c->peer_close == 1000 || c->peer_close == 1001 || c->peer_close == 1005;
	if (!s || s->client == c)
		log_closed(c, goodbye);
	if (s && s->client == c)
		tt_resume_gone(s, goodbye);
	c->session = NULL;
}
