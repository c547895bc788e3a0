/* SPDX-License-Identifier: MIT */
/* ws.c: libwebsockets front end, on a libev loop (epoll) that this file
 * owns. Reassembles incoming messages (with the size cap enforced before
 * allocating), hands them to handler.c, ends each loop turn (turn.c:
 * commit, then release), then writes every client's released messages
 * straight away, several queued messages per frame. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "ws.h"

#include <arpa/inet.h>
#include <ev.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "client.h"
#include "banner.h"
#include "cert.h"
#include "http.h"
#include "clock.h"
#include "db.h"
#include "engine.h"
#include "handler.h"
#include "hooks.h"
#include "idmap.h"
#include "inspect.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "peers.h"
#include "protocol.h"
#include "resume.h"
#include "roles.h"
#include "schemas.h"
#include "turn.h"

_Static_assert(TT_WS_PRE >= LWS_PRE, "TT_WS_PRE must cover LWS_PRE");

/* lws's receive buffer per connection (see protocols[]), which is also
 * what it reads from a socket at a time. */
#define RX_CHUNK 1024
/* Bytes of a message over --max-message read and dropped before the close
 * (on_receive). */
#define OVERSIZE_DRAIN (64 * 1024)
/* Largest frame built from several queued messages. */
#define FRAME_MAX (64 * 1024)
/* Recipients written per loop iteration while requests keep arriving: the
 * loop reads between slices, so a writer's RESULT goes out at once and
 * its next set reaches the recipients not written yet in the same frame
 * as the one before (one write for several updates: at K=100 in a closed
 * loop, 4-5 updates per frame). Each iteration without input doubles the
 * slice, up to WRITE_BUDGET of writing per iteration. An iteration is one
 * epoll_wait(), about a microsecond: with lws's poll() over every socket
 * it was 1.2 ms at 9,000 connections, and a lone update took 120-200 ms
 * to reach 10,000 clients. */
#define WRITE_SLICE 8
#define WRITE_BUDGET 0.001
/* Bytes written to a socket outside WRITEABLE before epoll must say again
 * that it has room. When epoll says so, a third of the send buffer at
 * least is free (Linux: free >= queued / 2), 5 KB of the smallest
 * default buffer (16 KB): writing less than that since then never fills
 * the kernel, so a client cut as a slow consumer still finds room for its
 * close frame (4001) while it reads nothing. */
#define UNCONFIRMED_MAX 4096

static struct {
	const tt_config *cfg;
	struct lws_context *ctx;
	struct ev_loop *loop;
	ev_prepare turn_w;   /* the end of every loop iteration */
	ev_idle busy_w;      /* keeps the loop from sleeping while writes wait */
	ev_timer tick_w, sched_w;
	ev_async signal_w;   /* a signal arrived (stop, reload) */
	ev_async engine_w;   /* an engine's thread queued acks or messages */
	bool turn_due;       /* something changed since the last turn */
	bool input_seen;     /* a message arrived since the last turn */
	uint32_t slice;      /* recipients to write this turn */
	bool kick;           /* lws was asked for a timer outside its callbacks */
	volatile sig_atomic_t stop;
	volatile sig_atomic_t reload;
	int failed;
	tt_buf frame;        /* several queued messages copied into one frame: one
			      * buffer for all clients, lws_write() copies it out */
	tt_idmap conns;      /* lws connection -> its remote address (owned copy) */
	uint32_t max_conns;  /* connections in all */
	double refused_logged; /* when a refusal was last logged (rate limit) */
	uint32_t refused;    /* refusals since */
} W;

struct pss {
	tt_client *c;
};

/* Both are called from signal handlers: ev_async_send is async-signal-safe. */
void tt_ws_reload(void)
{
	W.reload = 1;
	if (W.loop)
		ev_async_send(W.loop, &W.signal_w);
}

/* From an engine's thread (libnats calls back on threads of its own):
 * ev_async_send is thread-safe; engine_cb then polls the engine on the
 * loop, which stays the only thread touching the model. */
static void wake_loop(void)
{
	if (W.loop)
		ev_async_send(W.loop, &W.engine_w);
}

void tt_ws_stop(void)
{
	W.stop = 1;
	if (W.loop)
		ev_async_send(W.loop, &W.signal_w);
}

/* lws's libev glue arms its timer only after it serviced a socket, so a
 * timeout set from our own watchers (keepalive, a closing client) could
 * wait for unrelated traffic: a wake-up through its cancel pipe makes it
 * re-arm. */
static void kick_lws(void)
{
	if (W.kick && W.ctx) {
		W.kick = false;
		lws_cancel_service(W.ctx);
	}
}

/* ---- end of turn: commit and release (turn.c), then write -------------- */

static void schedule_turn(void)
{
	W.turn_due = true;
}

static void sched_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	schedule_turn();
}

static bool close_now(tt_client *c, struct lws *wsi);

static void wake(tt_client *c)
{
	if (c->closing && close_now(c, c->wsi))
		return;
	if (c->closing) {
		/* a peer that never reads never gets WRITEABLE: bound the wait */
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 3);
		W.kick = true;
	}
	lws_callback_on_writable(c->wsi);
}

static int write_ready(tt_client *c, struct lws *wsi);

/* Write c's released messages now, outside lws's WRITEABLE callback: one
 * write() per recipient is the floor of a fan-out, and asking epoll for
 * writability first cost two epoll_ctl() and a callback more. What needs
 * lws's state machine (a close, a ping), a socket whose last frame lws
 * still buffers, and one written UNCONFIRMED_MAX since epoll last said it
 * had room go through WRITEABLE instead. */
static void write_now(tt_client *c)
{
	struct lws *wsi = c->wsi;
	if (c->closing || c->want_ping || c->peer_close || c->unconfirmed >= UNCONFIRMED_MAX ||
	    lws_partial_buffered(wsi)) {
		wake(c);
		return;
	}
	if (write_ready(c, wsi) < 0) {
		/* the socket failed: lws finds out on its next event; make sure */
		tt_client_close(c, TT_CLOSE_GOING_AWAY);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		W.kick = true;
		return;
	}
	if (c->rx_paused || (c->finish_code && !c->q_len) || tt_client_ready(c, 0) ||
	    lws_partial_buffered(wsi))
		lws_callback_on_writable(wsi); /* the rest in WRITEABLE */
	else if (c->q_len) /* its batch is not durable yet (engine.h) */
		tt_client_wait_release(c);
}

static void turn_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (W.stop) {
		ev_break(W.loop, EVBREAK_ONE);
		return;
	}
	if (W.turn_due) {
		W.turn_due = false;
		tt_turn_end();
		/* the next thing due without input: a scheduled set, or a hook's
		 * deadline */
		double due = tt_turn_next_due(), hook = tt_hooks_next_deadline();
		double wait = due >= 0 ? due - tt_clock_now() : -1;
		if (hook >= 0 && (wait < 0 || hook - tt_clock_mono() < wait))
			wait = hook - tt_clock_mono();
		ev_timer_stop(W.loop, &W.sched_w);
		if (due >= 0 || hook >= 0) {
			ev_timer_set(&W.sched_w, TT_MAX(wait, 0.0) + 1e-6, 0.);
			ev_timer_start(W.loop, &W.sched_w);
		}
	}
	/* replies first, then the fan-out in FIFO order, a slice at a time */
	tt_client *next;
	for (tt_client *c = tt_client_take_urgent(); c; c = next) {
		next = c->urgent_next;
		write_now(c);
	}
	if (W.input_seen || W.slice < WRITE_SLICE)
		W.slice = WRITE_SLICE;
	else if (W.slice < (1u << 30))
		W.slice *= 2;
	W.input_seen = false;
	double t0 = tt_clock_mono();
	tt_client *c;
	for (uint32_t n = 0; n < W.slice && (c = tt_client_next_pending()); n++) {
		write_now(c);
		if (!((n + 1) & 63) && tt_clock_mono() - t0 >= WRITE_BUDGET)
			break;
	}
	if (tt_client_any_pending())
		ev_idle_start(W.loop, &W.busy_w);
	else
		ev_idle_stop(W.loop, &W.busy_w);
	kick_lws();
}

static void busy_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	/* nothing: being active keeps the loop from sleeping; turn_cb writes */
	(void)loop;
	(void)w;
	(void)revents;
}

/* An engine's acknowledgements and messages (engine.h): batches now
 * durable are released, and the turn writes them. */
static void engine_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (tt_turn_poll())
		schedule_turn();
}

static void signal_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	if (W.stop)
		ev_break(loop, EVBREAK_ONE);
}

/* Our own keepalive, once a second: lws 4.1 keeps one timer per
 * connection in a single sorted list, an O(N) insert that took half the
 * CPU of a 10,000-client connection storm (tests/bench/RESULTS.md,
 * finding 2), so its retry policy is zeroed and this walk does the job. */
static void keepalive(void)
{
	double now = tt_clock_mono();
	for (tt_client *c = tt_client_first(); c; c = c->next) {
		/* phones on Wi-Fi vanish without a FIN: ping a silent client,
		 * drop it when it stays silent */
		double idle = now - c->last_rx;
		if (idle >= 2.5 * W.cfg->keepalive) {
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
			W.kick = true;
		} else if (idle >= W.cfg->keepalive && !c->want_ping && !c->closing) {
			c->want_ping = true;
			lws_callback_on_writable(c->wsi);
		}
	}
}

/* libwebsockets' own lines, in the server's log format. */
static void lws_line(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	tt_log(level == LLL_ERR ? TT_LOG_ERROR : level == LLL_WARN ? TT_LOG_WARN : TT_LOG_DEBUG,
	       "libwebsockets: %.*s", (int)n, line);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	keepalive();
	tt_turn_tick();
	tt_peers_sweep(tt_clock_mono());
	tt_inspect_tick();
	tt_log_tick();
	schedule_turn();
	kick_lws();
}

static void stop_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* ---- remote addresses: per-address and total connection limits ---------- */

/* A socket address as 16 bytes (IPv4 mapped into IPv6) and as text. */
static bool addr_of(const struct sockaddr *sa, unsigned char out[TT_ADDR_LEN], char *text,
		    size_t cap)
{
	memset(out, 0, TT_ADDR_LEN);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &in4->sin_addr, 4);
		if (text)
			inet_ntop(AF_INET, &in4->sin_addr, text, (socklen_t)cap);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(out, &in6->sin6_addr, TT_ADDR_LEN);
		if (text && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) /* a phone's IPv4 as the operator knows it */
			inet_ntop(AF_INET, out + 12, text, (socklen_t)cap);
		else if (text)
			inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)cap);
		return true;
	}
	return false;
}

static bool peer_of(struct lws *wsi, unsigned char out[TT_ADDR_LEN], char *text, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = lws_get_socket_fd(wsi);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	return addr_of((struct sockaddr *)&ss, out, text, cap);
}

/* Refusals are logged at most once a second, with a count. */
static void refused(const char *why, const char *addr)
{
	double now = tt_clock_mono();
	W.refused++;
	if (now - W.refused_logged >= 1.0) {
		tt_log_warn("refused a connection from %s: %s (%u refused in the last second)", addr,
			    why, W.refused);
		W.refused_logged = now;
		W.refused = 0;
	}
}

/* A new TCP connection, before lws adopts it: within the limits? */
static int filter_connection(const struct lws_filter_network_conn_args *a)
{
	unsigned char addr[TT_ADDR_LEN];
	char text[INET6_ADDRSTRLEN] = "?";
	if (!addr_of((const struct sockaddr *)&a->cli_addr, addr, text, sizeof(text)))
		return 0;
	if (W.conns.len >= W.max_conns) {
		refused("the server is full (--max-connections)", text);
		return 1;
	}
	if (W.cfg->max_conns_per_addr && tt_peers_conns(addr) >= W.cfg->max_conns_per_addr) {
		refused("too many connections from this address (--max-conns-per-addr)", text);
		return 1;
	}
	return 0;
}

static void conn_created(struct lws *wsi)
{
	unsigned char addr[TT_ADDR_LEN];
	if (!peer_of(wsi, addr, NULL, 0) || !tt_peers_connect(addr))
		return;
	unsigned char *copy = tt_malloc(TT_ADDR_LEN);
	memcpy(copy, addr, TT_ADDR_LEN);
	tt_idmap_put(&W.conns, (uint64_t)(uintptr_t)wsi, copy);
}

static void conn_destroyed(struct lws *wsi)
{
	unsigned char *addr = tt_idmap_get(&W.conns, (uint64_t)(uintptr_t)wsi);
	if (!addr)
		return;
	tt_peers_disconnect(addr);
	tt_idmap_del(&W.conns, (uint64_t)(uintptr_t)wsi);
	free(addr);
}

/* Cross-site WebSocket hijacking: a page of another site, opened on a
 * phone, must not drive the piece. Browsers always send Origin; native
 * clients send none. Accept no Origin, the origin this server's own pages
 * have (the Host the request came to), and --allow-origin. */
static bool origin_ok(struct lws *wsi, char *origin, size_t cap)
{
	char host[256];
	int len = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
	if (len <= 0)
		return true;
	/* lws_hdr_copy fails on a header longer than the buffer: that is no
	 * missing Origin (a site with a long host name sends one) */
	if (lws_hdr_copy(wsi, origin, (int)cap, WSI_TOKEN_ORIGIN) <= 0) {
		snprintf(origin, cap, "of %d bytes", len);
		return false;
	}
	for (uint32_t i = 0; i < W.cfg->n_allow_origin; i++)
		if (!strcmp(W.cfg->allow_origin[i], "*") || !strcasecmp(W.cfg->allow_origin[i], origin))
			return true;
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return false;
	const char *rest = !strncasecmp(origin, "http://", 7) ? origin + 7
			 : !strncasecmp(origin, "https://", 8) ? origin + 8 : NULL;
	return rest && !strcasecmp(rest, host);
}

/* ---- tutti.v1 --------------------------------------------------------- */

static int on_receive(tt_client *c, struct lws *wsi, const void *in, size_t len)
{
	W.input_seen = true;
	tt_metrics.bytes_in += len;
	c->last_rx = tt_clock_mono();
	c->want_ping = false;
	if (c->closing)
		return 0;
	if (lws_is_first_fragment(wsi)) {
		tt_buf_clear(&c->rx);
		c->rx_drop = !lws_frame_is_binary(wsi); /* text: answered at the end */
	}
	size_t remaining = lws_remaining_packet_payload(wsi);
	bool final = lws_is_final_fragment(wsi);
	if (!c->rx_over && c->rx.len + len + remaining > W.cfg->max_message) {
		c->rx_over = 1;
		tt_buf_free(&c->rx);
	}
	if (c->rx_over) {
		/* too big: its rest is read and dropped (OVERSIZE_DRAIN at most)
		 * before the close, as lws reads RX_CHUNK at a time: closing on
		 * unread bytes makes the kernel reset the connection, and the
		 * client would lose the close frame that says why */
		c->rx_over = (uint32_t)TT_MIN((size_t)c->rx_over + len, (size_t)UINT32_MAX);
		if (!final && c->rx_over <= OVERSIZE_DRAIN)
			return 0;
		lws_close_reason(wsi, (enum lws_close_status)TT_CLOSE_TOO_BIG, (unsigned char *)"message too big", 15);
		return -1;
	}
	if (c->rx_drop) {
		if (final)
			tt_handler_text(c);
	} else if (final && c->rx.len == 0) {
		tt_handler_message(c, in, len); /* the common case: no copy */
	} else {
		tt_buf_append(&c->rx, in, len);
		if (final) {
			tt_handler_message(c, tt_buf_data(&c->rx), c->rx.len);
			if (c->rx.cap > 1 << 20)
				tt_buf_free(&c->rx);
			tt_buf_clear(&c->rx);
		}
	}
	if (!c->rx_paused && tt_client_over(c)) {
		/* replies pile up unread: read nothing more until they drain */
		c->rx_paused = true;
		lws_rx_flow_control(wsi, 0);
	}
	schedule_turn();
	return 0;
}

static const char *close_why(const tt_client *c)
{
	return c->close_code == TT_CLOSE_SLOW_CONSUMER ? "slow consumer"
	       : c->close_code == TT_CLOSE_GOING_AWAY ? "server stopping"
	       : c->close_code == TT_CLOSE_UNAUTHORIZED ? "unauthorized: see the ERROR before"
	       : c->close_code == TT_CLOSE_TAKEN_OVER ? "session taken over by a new connection"
	       : c->close_code == TT_CLOSE_KICKED ? "session ended by the operator"
	       : c->close_code == TT_CLOSE_RESYNC ? "resume: another node wrote first"
						    : "protocol errors";
}

/* Linux answers the close() of a socket whose receive queue holds unread
 * bytes with a reset, and a reset makes the peer drop what it has not read
 * yet: our close frame. A phone still sending (its clock pings, a request
 * in flight) then saw 1006 instead of 4004 or 4005. What it sent after we
 * decided to close it is of no use: read and drop it first. */
static void discard_input(struct lws *wsi)
{
	int fd = lws_get_socket_fd(wsi);
	char buf[4096];
	for (int i = 0; fd >= 0 && i < 16; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

static int close_with(tt_client *c, struct lws *wsi)
{
	discard_input(wsi);
	const char *why = close_why(c);
	lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)why,
			 strlen(why));
	return -1;
}

/* Every close we start is written here, outside lws's close handshake:
 * - a slow consumer reads nothing, so epoll may never again say its socket
 *   has room (Linux wants a third of the send buffer free), and lws waits
 *   for that: after 3 s the connection was cut without a close frame
 *   (1006); the close frame is a few bytes the kernel takes while it has
 *   any room at all, and the connection is dropped right after it;
 * - lws closes the socket right after its close frame, and a client still
 *   sending (its clock pings, a request in flight) then gets a reset that
 *   can drop the close frame before it is read: 1006 instead of 4004
 *   (taken over) or 4005 (kicked), and a JS client that takes 1006 for a
 *   lost network comes back. So: write the close frame, shut our side (FIN
 *   after the frame), read and drop what the client still sends, and let
 *   lws close once the client closes its side, or after CLOSE_WAIT seconds.
 * Not while lws holds part of a frame (WRITEABLE finishes it first). */
#define CLOSE_WAIT 2

/* lws 4.1's public header hides its close opcode (lws_close_reason() is
 * the public way, which waits for WRITEABLE); lws_write() still frames it
 * for its own close path, TLS included. */
#define LWS_WRITE_CLOSE_FRAME ((enum lws_write_protocol)4)

static void shut_our_side(struct lws *wsi)
{
	int fd = lws_get_socket_fd(wsi);
	if (fd >= 0)
		shutdown(fd, SHUT_WR);
}

static bool close_now(tt_client *c, struct lws *wsi)
{
	if (c->close_sent)
		return true;
	if (lws_partial_buffered(wsi))
		return false;
	unsigned char frame[LWS_PRE + 2 + 64];
	const char *why = close_why(c);
	size_t n = strlen(why);
	unsigned char *p = frame + LWS_PRE;
	p[0] = (unsigned char)(c->close_code >> 8);
	p[1] = (unsigned char)(c->close_code & 0xff);
	memcpy(p + 2, why, n);
	if (lws_write(wsi, p, n + 2, LWS_WRITE_CLOSE_FRAME) < (int)(n + 2))
		return false;
	/* what it still sends is read through lws and dropped (on_receive)
	 * until its close frame: reading raw bytes off the socket here cut
	 * lws's framing mid-frame, lws then closed on a "bad frame" with the
	 * rest of the client's bytes unread, and the reset lost our frame */
	if (c->rx_paused) {
		c->rx_paused = false;
		lws_rx_flow_control(wsi, 1);
	}
	c->close_sent = true;
	W.kick = true;
	if (c->close_code == TT_CLOSE_SLOW_CONSUMER) {
		/* it reads nothing: it would answer nothing either; what the
		 * kernel holds for it (the frame included) still goes out */
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return true;
	}
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, CLOSE_WAIT);
	if (lws_partial_buffered(wsi)) {
		/* the kernel took part of it (a client slow to read: under load,
		 * 1006 in CI): lws sends the rest when the socket has room, then
		 * WRITEABLE shuts our side (a FIN now would cut the frame) */
		lws_callback_on_writable(wsi);
		return true;
	}
	shut_our_side(wsi);
	return true;
}

/* A close we start: close_now, or lws's own close when the frame cannot
 * be written. */
static int close_conn(tt_client *c, struct lws *wsi)
{
	return close_now(c, wsi) ? 0 : close_with(c, wsi);
}

/* Frames of released messages: the first one always, more while less
 * than UNCONFIRMED_MAX went since epoll said the socket had room, until
 * the queue is empty or lws holds the part of a frame the kernel did not
 * take (a slow reader's backlog stays in its queue, bounded by
 * --max-queue). Asking lws_send_pipe_choked() instead would cost a poll()
 * per frame. */
static int write_ready(tt_client *c, struct lws *wsi)
{
	for (bool first = true;; first = false) {
		tt_msg *m = tt_client_ready(c, 0);
		if (!m || lws_partial_buffered(wsi) || (!first && c->unconfirmed >= UNCONFIRMED_MAX))
			break;
		uint32_t n = 1;
		size_t total = m->len;
		tt_msg *more;
		while ((more = tt_client_ready(c, n)) && total + more->len <= FRAME_MAX) {
			total += more->len;
			n++;
		}
		unsigned char *p;
		if (n == 1) {
			p = tt_msg_payload(m);
		} else {
			tt_buf_clear(&W.frame);
			tt_buf_reserve(&W.frame, total);
			for (uint32_t i = 0; i < n; i++) {
				tt_msg *q = tt_client_ready(c, i);
				tt_buf_append(&W.frame, tt_msg_payload(q), q->len);
			}
			p = tt_buf_data(&W.frame);
		}
		int w = lws_write(wsi, p, total, LWS_WRITE_BINARY);
		if (w < (int)total)
			return -1;
		c->unconfirmed = (uint32_t)TT_MIN(c->unconfirmed + total, (size_t)UINT32_MAX);
		tt_metrics.msgs_out += n;
		tt_metrics.bytes_out += total;
		c->stats.msgs_out += n;
		tt_client_consume(c, n);
	}
	return 0;
}

static int on_writeable(tt_client *c, struct lws *wsi)
{
	if (c->close_sent) {
		shut_our_side(wsi); /* the close frame is out whole now */
		return 0;
	}
	if (c->closing)
		return close_conn(c, wsi);
	if (c->want_ping) {
		/* one payload byte: lws 4.1 reports no RECEIVE_PONG for an
		 * empty pong */
		unsigned char ping[LWS_PRE + 1] = {0};
		ping[LWS_PRE] = 't';
		c->want_ping = false;
		if (lws_write(wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 0)
			return -1;
		if (tt_client_ready(c, 0))
			lws_callback_on_writable(wsi); /* data next time */
		else if (c->q_len)
			tt_client_wait_release(c);
		return 0;
	}
	c->unconfirmed = 0; /* epoll says there is room */
	if (write_ready(c, wsi) < 0)
		return -1;
	if (c->rx_paused && !tt_client_over(c)) {
		/* its replies drained: the requests held meanwhile, then its socket */
		if (tt_handler_drained(c)) {
			c->rx_paused = false;
			lws_rx_flow_control(wsi, 1);
		}
		schedule_turn();
	}
	if (c->finish_code && !c->q_len) {
		tt_client_close(c, c->finish_code); /* its replies are out */
		return close_conn(c, wsi);
	}
	if (tt_client_ready(c, 0))
		lws_callback_on_writable(wsi);
	else if (c->q_len) /* its batch is not durable yet (engine.h) */
		tt_client_wait_release(c);
	return 0;
}

static int cb_tutti(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct pss *pss = user;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		pss->c = tt_client_new(wsi);
		tt_metrics.conns_opened++;
		if (!peer_of(wsi, pss->c->addr, pss->c->addr_text, sizeof(pss->c->addr_text)))
			snprintf(pss->c->addr_text, sizeof(pss->c->addr_text), "?");
		tt_log_debug("%s: WebSocket opened", pss->c->addr_text);
		break;
	case LWS_CALLBACK_RECEIVE:
		if (!pss->c)
			return -1;
		return on_receive(pss->c, wsi, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!pss->c)
			return -1;
		return on_writeable(pss->c, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* the client says goodbye (1000: closed, 1001: the page went): its
		 * session ends with the connection, not after the resume window */
		/* (after our own close frame, the client's is its answer) */
		if (pss->c && !pss->c->close_sent)
			pss->c->peer_close = in && len >= 2 ?
				((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1] : 1005;
		break;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (pss->c)
			pss->c->last_rx = tt_clock_mono();
		break;
	case LWS_CALLBACK_CLOSED:
		if (pss->c) {
			tt_handler_closed(pss->c);
			tt_client_free(pss->c);
			pss->c = NULL;
			schedule_turn();
		}
		break;
	default:
		break;
	}
	return 0;
}

/* ---- HTTP (http.c), and refusing upgrades that are not tutti.v1 ------- */

static int cb_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		   size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return user ? filter_connection(user) : 0;
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		/* not WSI_CREATE: lws 4.1 sends it before the wsi has its
		 * socket, when the peer's address cannot be read yet */
		conn_created(wsi);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		conn_destroyed(wsi);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
		/* WebSocket only: "Upgrade: h2c" would switch the connection to
		 * lws's HTTP/2 code, which tutti does not use or test */
		if (!in || strcmp(in, "websocket") != 0) {
			tt_http_answer(wsi, HTTP_STATUS_BAD_REQUEST, "only WebSocket upgrades\n", true);
			return 1;
		}
		char origin[512]; /* any real origin: scheme, a 253-byte host, port */
		if (origin_ok(wsi, origin, sizeof(origin)))
			return 0;
		char text[INET6_ADDRSTRLEN + 8] = "?";
		unsigned char a[TT_ADDR_LEN];
		peer_of(wsi, a, text, sizeof(text));
		tt_log_warn("refused a WebSocket from %s: origin %s is not this server's (--allow-origin)",
			    text, origin);
		lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN,
				       "WebSocket refused: this page's origin is not allowed "
				       "(the server's own pages are; see --allow-origin)");
		return 1;
	}
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* an upgrade that did not offer tutti.v1 lands on this protocol:
		 * lws would bind it to this HTTP protocol and drop its messages
		 * silently: refuse it rather than accept a socket nobody reads */
		return 1;
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
		return in ? tt_http_filter(wsi, in) : -1;
	case LWS_CALLBACK_HTTP:
		return tt_http_serve(wsi);
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{"http", cb_http, 0, 0, 0, NULL, 0},
	/* rx buffer: lws allocates it per connection (65536 cost every idle
	 * phone 3 KB of resident memory); a longer message arrives in pieces
	 * that on_receive() reassembles */
	{TT_PROTOCOL_NAME, cb_tutti, sizeof(struct pss), RX_CHUNK, 0, NULL, 2 << 20},
	{NULL, NULL, 0, 0, 0, NULL, 0}};

/* --https: the names the certificate must cover: every address phones may
 * use, this machine's own, and its names (host, host.local for mDNS). */
static int make_cert(const tt_config *cfg, tt_cert_paths *paths)
{
	char hosts[16][TT_HOST_TEXT];
	size_t n = tt_banner_hosts(cfg->host, hosts, 12);
	char host[64] = "", local[80] = "";
	gethostname(host, sizeof(host) - 1);
	const char *names[20];
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		names[k++] = hosts[i];
	names[k++] = "127.0.0.1";
	names[k++] = "localhost";
	if (host[0] && strcmp(host, "localhost") != 0) {
		snprintf(local, sizeof(local), "%s.local", host);
		names[k++] = host;
		names[k++] = local;
	}
	tt_error err;
	if (tt_cert_ensure(cfg->tls_dir, names, k, paths, &err) < 0) {
		tt_log_error("--https: %s", err.msg);
		return -1;
	}
	if (paths->made_ca)
		tt_log_info("--https: made a certificate authority in %s (phones trust it once: "
			    "README \"On stage\")", paths->ca);
	if (paths->made_cert)
		tt_log_info("--https: made a certificate for %s and this machine's names, in %s",
			    hosts[0], paths->cert);
	return 0;
}

int tt_ws_run(const tt_config *cfg)
{
	W.cfg = cfg;
	lws_set_log_level(cfg->verbose > 0 ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR, lws_line);

	/* HTTPS: the operator's certificate, or one from a local authority */
	static tt_cert_paths paths;
	const char *cert = cfg->tls_cert, *key = cfg->tls_key;
	if (cfg->https) {
		if (make_cert(cfg, &paths) < 0)
			return -1;
		cert = paths.cert;
		key = paths.key;
	}
	bool tls = cert != NULL;
	const struct lws_http_mount *mounts = tt_http_init(cfg->web, cfg->https ? paths.ca : NULL,
							      cfg->metrics_public);
	/* zero: no per-connection lws timers (see keepalive()); leaving the
	 * policy out is not enough, lws then applies its default one */
	static const lws_retry_bo_t retry = {
		.secs_since_valid_ping = 0,
		.secs_since_valid_hangup = 0,
	};
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = cfg->port;
	info.iface = cfg->host;
	info.protocols = protocols;
	info.mounts = mounts;
	info.vhost_name = "tutti";
	info.retry_and_idle_policy = &retry;
	info.pt_serv_buf_size = 65536;
	/* epoll through libev, on a loop of ours: lws's default loop calls
	 * poll() over every socket each iteration (1.2 ms at 9,000
	 * connections), and its libev glue on a loop of its own arms no timer
	 * for work we schedule. EVBACKEND_EPOLL alone: the default loop would
	 * also take SIGCHLD. */
	W.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (!W.loop) {
		tt_log_error("cannot create an epoll event loop (libev)");
		tt_http_destroy();
		return -1;
	}
	void *loops[1] = {W.loop};
	info.foreign_loops = loops;
	info.options = LWS_SERVER_OPTION_LIBEV;
	if (tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
				/* plain HTTP on the same port: redirected to https:// */
				LWS_SERVER_OPTION_ALLOW_NON_SSL_ON_SSL_PORT |
				LWS_SERVER_OPTION_REDIRECT_HTTP_TO_HTTPS;
		info.ssl_cert_filepath = cert;
		info.ssl_private_key_filepath = key;
		/* HTTP/1.1 only: a browser that negotiated HTTP/2 would carry the
		 * WebSocket over it (RFC 8441), a path tutti does not use */
		info.alpn = "http/1.1";
	}

	/* connections in all: the open-file limit (raised at start) less a
	 * reserve for the database, served files and lws's own, so that
	 * accept() never fails for want of descriptors (lws would spin on the
	 * listening socket) */
	struct rlimit rl;
	uint64_t fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 1024;
	W.max_conns = fds > 128 ? (uint32_t)TT_MIN(fds - 64, (uint64_t)UINT32_MAX) : (uint32_t)fds / 2;
	if (cfg->max_connections && cfg->max_connections < W.max_conns)
		W.max_conns = cfg->max_connections;
	tt_idmap_init(&W.conns);
	tt_buf_init(&W.frame, TT_WS_PRE);
	tt_peers_init(cfg->max_conns_per_addr, cfg->max_new_sessions_per_addr);
	W.ctx = lws_create_context(&info);
	if (!W.ctx) {
		tt_log_error("(if the log above says the libev plugin is missing: it is the Debian "
			     "package libwebsockets-evlib-ev)");
		if (tls)
			tt_log_error("cannot listen on %s:%d with TLS (port in use, or is %s / %s "
				     "not a readable certificate and key?)", cfg->host, cfg->port, cert, key);
		else
			tt_log_error("cannot listen on %s:%d (in use, or not an address of this machine?)",
				     cfg->host, cfg->port);
		tt_http_destroy();
		ev_loop_destroy(W.loop);
		W.loop = NULL;
		return -1;
	}
	/* --port 0: the kernel picks a free port; the log line says which
	 * (test fixtures read it, so no other process can take it first) */
	struct lws_vhost *vh = lws_get_vhost_by_name(W.ctx, "tutti");
	int port = vh ? lws_get_vhost_listen_port(vh) : cfg->port;
	const char *web = tt_http_web_dir();
	tt_log_info("listening on %s://%s:%d (web %s, WebSocket protocol %s)", tls ? "https" : "http",
		    cfg->host, port, web ? web : cfg->web, TT_PROTOCOL_NAME);
	tt_banner_print(tls ? "https" : "http", cfg->host, port,
			cfg->qr > 0 || (cfg->qr == 0 && isatty(1)));
	if (cfg->open)
		tt_log_warn("--open: every client may set every state and define classes "
			    "(fine for a laptop ensemble on its own network, never for an audience)");
	ev_prepare_init(&W.turn_w, turn_cb);
	ev_prepare_start(W.loop, &W.turn_w);
	ev_idle_init(&W.busy_w, busy_cb);
	ev_init(&W.sched_w, sched_cb);
	ev_timer_init(&W.tick_w, tick_cb, 1., 1.);
	ev_timer_start(W.loop, &W.tick_w);
	ev_async_init(&W.signal_w, signal_cb);
	ev_async_start(W.loop, &W.signal_w);
	ev_async_init(&W.engine_w, engine_cb);
	ev_async_start(W.loop, &W.engine_w);
	schedule_turn();
	tt_engine_set_waker(wake_loop);
	wake_loop(); /* what the engine queued before the loop ran */
	while (!W.stop) {
		ev_run(W.loop, EVRUN_ONCE);
		if (W.reload) {
			W.reload = 0;
			tt_schemas_reload(cfg->schemas);
			schedule_turn(); /* what the reload changed is committed, then sent */
		}
	}
	tt_log_info("stopping");
	/* make the last turn durable before the connections go */
	if (!W.failed && tt_turn_commit() < 0)
		W.failed = 1;
	ev_prepare_stop(W.loop, &W.turn_w);
	ev_idle_stop(W.loop, &W.busy_w);
	ev_timer_stop(W.loop, &W.sched_w);
	ev_timer_stop(W.loop, &W.tick_w);
	tt_resume_stopping(); /* sessions outlive this run: they resume after it */
	/* tell every client we are going away (1001), for at most half a
	 * second; they resume once the server is back */
	for (tt_client *c = tt_client_first(); c; c = c->next) {
		tt_client_close(c, TT_CLOSE_GOING_AWAY);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 1);
		lws_callback_on_writable(c->wsi);
	}
	tt_client_take_urgent();
	while (tt_client_next_pending())
		;
	W.kick = true;
	kick_lws();
	/* the loop sleeps at most a tick at a time while they close */
	ev_timer_set(&W.tick_w, 0.05, 0.05);
	ev_set_cb(&W.tick_w, stop_tick_cb);
	ev_timer_start(W.loop, &W.tick_w);
	double deadline = tt_clock_mono() + 0.5;
	while (tt_client_first() && tt_clock_mono() < deadline)
		ev_run(W.loop, EVRUN_ONCE);
	ev_timer_stop(W.loop, &W.tick_w);
	tt_engine_set_waker(NULL);
	ev_async_stop(W.loop, &W.signal_w);
	ev_async_stop(W.loop, &W.engine_w);
	lws_context_destroy(W.ctx);
	W.ctx = NULL;
	/* closing the listening and connection handles may need a last turn */
	ev_run(W.loop, EVRUN_NOWAIT);
	struct ev_loop *loop = W.loop;
	W.loop = NULL; /* a late signal must not touch it */
	ev_loop_destroy(loop);
	for (size_t i = 0; i < W.conns.cap; i++)
		if (W.conns.keys[i] && W.conns.keys[i] != UINT64_MAX)
			free(W.conns.vals[i]);
	tt_idmap_free(&W.conns);
	tt_buf_free(&W.frame);
	tt_peers_free();
	tt_http_destroy();
	/* sessions closed by the stop are recorded as gone (resume windows),
	 * and the clock exactly */
	if (!W.failed && tt_turn_stop() < 0)
		W.failed = 1;
	return W.failed ? -1 : 0;
}
