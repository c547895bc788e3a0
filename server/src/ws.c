/* SPDX-License-Identifier: MIT */
/* ws.c: libwebsockets front end. Reassembles incoming messages (with the
 * size cap enforced before allocating), hands them to handler.c, ends each
 * loop turn (turn.c: commit, then release), wakes the writers, and drains
 * each client's queue in SERVER_WRITEABLE, several queued messages per
 * frame. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "ws.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "client.h"
#include "banner.h"
#include "clock.h"
#include "db.h"
#include "handler.h"
#include "hooks.h"
#include "idmap.h"
#include "log.h"
#include "ops.h"
#include "peers.h"
#include "protocol.h"
#include "resume.h"
#include "roles.h"
#include "schemas.h"
#include "turn.h"

_Static_assert(TT_WS_PRE >= LWS_PRE, "TT_WS_PRE must cover LWS_PRE");

/* Largest frame built from several queued messages. */
#define FRAME_MAX (64 * 1024)
/* Clients woken per loop turn for a fan-out (replies are not counted):
 * WAKE_SLICE while requests keep coming, doubling on each turn without
 * input, so a lone update reaches N clients in about log2(N / 8) rounds. */
#define WAKE_SLICE 8

static struct {
	const tt_config *cfg;
	struct lws_context *ctx;
	lws_sorted_usec_list_t turn, tick, sched;
	bool turn_scheduled;
	bool input_seen;     /* a message arrived since the last turn */
	uint32_t slice;      /* clients to wake this turn */
	volatile sig_atomic_t stop;
	volatile sig_atomic_t reload;
	int failed;
	tt_idmap conns;      /* lws connection -> its remote address (owned copy) */
	uint32_t max_conns;  /* connections in all */
	double refused_logged; /* when a refusal was last logged (rate limit) */
	uint32_t refused;    /* refusals since */
	char web[PATH_MAX];  /* realpath of --web; empty when it does not exist */
	size_t web_len;
} W;

struct pss {
	tt_client *c;
};

void tt_ws_reload(void)
{
	W.reload = 1;
	if (W.ctx)
		lws_cancel_service(W.ctx);
}

void tt_ws_stop(void)
{
	W.stop = 1;
	if (W.ctx)
		lws_cancel_service(W.ctx);
}

/* ---- end of turn: commit and release (turn.c), then wake the writers --- */

static void schedule_turn(void);

static void sched_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	schedule_turn();
}

static void wake(tt_client *c)
{
	if (c->closing)
		/* a peer that never reads never gets WRITEABLE: bound the wait */
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 3);
	lws_callback_on_writable(c->wsi);
}

static void turn_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	W.turn_scheduled = false;
	tt_turn_end();
	/* the next thing due without input: a scheduled set, or a hook's deadline */
	double due = tt_turn_next_due(), hook = tt_hooks_next_deadline();
	double wait = due >= 0 ? due - tt_clock_now() : -1;
	if (hook >= 0 && (wait < 0 || hook - tt_clock_mono() < wait))
		wait = hook - tt_clock_mono();
	if (due >= 0 || hook >= 0)
		lws_sul_schedule(W.ctx, 0, &W.sched, sched_cb,
				 (lws_usec_t)(TT_MAX(wait, 0.0) * 1e6) + 1);
	/* Wake the writers of replies at once, then the rest a slice at a
	 * time: between slices a poll round reads input, so a writer's next
	 * set arrives while its previous fan-out drains, and later recipients
	 * find several updates to send in one frame (tests/bench/RESULTS.md,
	 * finding 1: one send() per update per client was 77 % of the CPU).
	 * Each round polls every socket, so with no input the slice doubles. */
	tt_client *next;
	for (tt_client *c = tt_client_take_urgent(); c; c = next) {
		next = c->urgent_next;
		wake(c);
	}
	if (W.input_seen || W.slice < WAKE_SLICE)
		W.slice = WAKE_SLICE;
	else if (W.slice < (1u << 30))
		W.slice *= 2;
	W.input_seen = false;
	tt_client *c;
	for (uint32_t n = 0; n < W.slice && (c = tt_client_next_pending()); n++)
		wake(c);
	if (tt_client_any_pending())
		schedule_turn();
}

static void schedule_turn(void)
{
	if (!W.turn_scheduled && W.ctx) {
		W.turn_scheduled = true;
		lws_sul_schedule(W.ctx, 0, &W.turn, turn_cb, 1);
	}
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

static void tick_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	keepalive();
	tt_turn_tick();
	tt_peers_sweep(tt_clock_mono());
	tt_log_tick();
	schedule_turn();
	lws_sul_schedule(W.ctx, 0, &W.tick, tick_cb, LWS_US_PER_SEC);
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
	c->last_rx = tt_clock_mono();
	c->want_ping = false;
	if (c->closing)
		return 0;
	if (lws_is_first_fragment(wsi)) {
		tt_buf_clear(&c->rx);
		c->rx_drop = !lws_frame_is_binary(wsi); /* text: answered at the end */
	}
	size_t remaining = lws_remaining_packet_payload(wsi);
	if (c->rx.len + len + remaining > W.cfg->max_message) {
		lws_close_reason(wsi, (enum lws_close_status)TT_CLOSE_TOO_BIG, (unsigned char *)"message too big", 15);
		return -1;
	}
	bool final = lws_is_final_fragment(wsi);
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

static int close_with(tt_client *c, struct lws *wsi)
{
	const char *why = c->close_code == TT_CLOSE_SLOW_CONSUMER ? "slow consumer"
			: c->close_code == TT_CLOSE_GOING_AWAY ? "server stopping"
			: c->close_code == TT_CLOSE_UNAUTHORIZED ? "unauthorized: see the ERROR before"
			: c->close_code == TT_CLOSE_TAKEN_OVER ? "session taken over by a new connection"
							       : "protocol errors";
	lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)why,
			 strlen(why));
	return -1;
}

static int on_writeable(tt_client *c, struct lws *wsi)
{
	if (c->closing)
		return close_with(c, wsi);
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
		return 0;
	}
	/* WRITEABLE means one write will go; lws_send_pipe_choked() costs a
	 * poll() syscall, so it is asked only before a further frame (usually
	 * everything queued fits in the first). */
	for (bool first = true;; first = false) {
		tt_msg *m = tt_client_ready(c, 0);
		if (!m || (!first && lws_send_pipe_choked(wsi)))
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
			tt_buf_clear(&c->frame);
			tt_buf_reserve(&c->frame, total);
			for (uint32_t i = 0; i < n; i++) {
				tt_msg *q = tt_client_ready(c, i);
				tt_buf_append(&c->frame, tt_msg_payload(q), q->len);
			}
			p = tt_buf_data(&c->frame);
		}
		int w = lws_write(wsi, p, total, LWS_WRITE_BINARY);
		if (w < (int)total)
			return -1;
		tt_client_consume(c, n);
	}
	if (c->rx_paused && !tt_client_over(c)) {
		/* its replies drained: the requests held meanwhile, then its socket */
		if (tt_handler_drained(c)) {
			c->rx_paused = false;
			lws_rx_flow_control(wsi, 1);
		}
		schedule_turn();
	}
	if (c->finish_code && !c->q_len) {
		c->close_code = c->finish_code;
		return close_with(c, wsi);
	}
	if (tt_client_ready(c, 0))
		lws_callback_on_writable(wsi);
	return 0;
}

static int cb_tutti(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct pss *pss = user;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		pss->c = tt_client_new(wsi);
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
		if (pss->c)
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

/* ---- HTTP: files, /healthz, refusing upgrades without tutti.v1 -------- */

/* A whole short answer written at once: status, a text body (none for
 * HEAD), and for 405 the methods served. hang_up: the connection ends after
 * it (a refused request leaves bytes that cannot be trusted to start the
 * next one). */
static int http_answer(struct lws *wsi, unsigned int status, const char *text, bool hang_up)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
					  *end = buf + sizeof(buf) - 1;
	size_t n = strlen(text);
	bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
	tt_assert(n <= 256);
	if (lws_add_http_common_headers(wsi, status, "text/plain; charset=utf-8", n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (unsigned char *)"no-store", 8, &p, end) ||
	    (status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
	     lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW, (unsigned char *)"GET, HEAD",
					  9, &p, end)) ||
	    (hang_up && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
						     (unsigned char *)"close", 5, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (!head && n) {
		memcpy(start, text, n);
		if (lws_write(wsi, start, n, LWS_WRITE_HTTP_FINAL) != (int)n)
			return -1;
	}
	if (hang_up)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* A file the mount may serve: no component starting with '.' (.git, .env,
 * editor backups), and after following every symlink, a file inside --web:
 * a link to /etc/passwd dropped in the folder must not publish it. uri is
 * lws's decoded path, with ".." already resolved. */
static bool web_file_ok(const char *uri)
{
	for (const char *p = uri; (p = strchr(p, '/')); p++)
		if (p[1] == '.')
			return false;
	if (!W.web_len)
		return true; /* nothing is served: lws answers 404 */
	char path[PATH_MAX], real[PATH_MAX];
	size_t n = strlen(uri);
	int len = snprintf(path, sizeof(path), "%s%s%s", W.web, uri,
			   n && uri[n - 1] == '/' ? "index.html" : "");
	if (len < 0 || (size_t)len >= sizeof(path) || !realpath(path, real))
		return false; /* missing (lws would say 404 too), or unreadable */
	for (int i = 0; i < 2; i++) {
		if (strncmp(real, W.web, W.web_len) != 0 ||
		    (real[W.web_len] != '/' && real[W.web_len] && W.web_len > 1))
			return false;
		struct stat sb;
		/* a directory is served through its index.html: check that one too */
		if (i || stat(real, &sb) < 0 || !S_ISDIR(sb.st_mode))
			return true;
		len = snprintf(path, sizeof(path), "%s/index.html", real);
		if (len < 0 || (size_t)len >= sizeof(path) || !realpath(path, real))
			return false;
	}
	return true;
}

/* Only what tutti serves: GET and HEAD without a body, one unambiguous
 * Content-Length at most (two that disagree are how a request is smuggled
 * past a proxy), files of --web by the rules above. */
static int filter_http(struct lws *wsi, const char *uri)
{
	char cl[32];
	if (!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) &&
	    !lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI))
		return http_answer(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED,
				   "only GET and HEAD are served\n", true);
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) ||
	    lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 1) ||
	    (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) &&
	     (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
	      strspn(cl, "0") != strlen(cl))))
		return http_answer(wsi, HTTP_STATUS_BAD_REQUEST,
				   "a GET or HEAD request has no body\n", true);
	/* the callback mount (/healthz) is not a file */
	if (strcmp(uri, "/healthz") != 0 && !web_file_ok(uri))
		return http_answer(wsi, HTTP_STATUS_NOT_FOUND, "not found\n", true);
	return 0;
}

/* 503 while the database fails, so that a supervisor or a load balancer
 * sees it; the reason on one line. */
static int healthz(struct lws *wsi)
{
	const char *failing = tt_db_failing();
	char text[224];
	if (!failing)
		return http_answer(wsi, HTTP_STATUS_OK, "ok\n", false);
	snprintf(text, sizeof(text), "storage failing: %s\n", failing);
	return http_answer(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, text, false);
}

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
			http_answer(wsi, HTTP_STATUS_BAD_REQUEST, "only WebSocket upgrades\n", true);
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
		return in ? filter_http(wsi, in) : -1;
	case LWS_CALLBACK_HTTP: {
		char uri[64];
		/* lws also lands here for a file the mount does not have */
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 &&
		    lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_HEAD_URI) <= 0)
			uri[0] = 0;
		if (strcmp(uri, "/healthz") == 0)
			return healthz(wsi);
		return http_answer(wsi, HTTP_STATUS_NOT_FOUND, "not found\n", false);
	}
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{"http", cb_http, 0, 0, 0, NULL, 0},
	{TT_PROTOCOL_NAME, cb_tutti, sizeof(struct pss), 65536, 0, NULL, 2 << 20},
	{NULL, NULL, 0, 0, 0, NULL, 0}};

/* .mjs, .wasm, .map, .webmanifest and extensionless files are not in lws's
 * MIME table and would be refused with 415 Unsupported Media Type. */
static const struct lws_protocol_vhost_options mime_any = {NULL, NULL, "*", "application/octet-stream"};
static const struct lws_protocol_vhost_options mime_manifest = {&mime_any, NULL, ".webmanifest", "application/manifest+json"};
static const struct lws_protocol_vhost_options mime_map = {&mime_manifest, NULL, ".map", "application/json"};
static const struct lws_protocol_vhost_options mime_wasm = {&mime_map, NULL, ".wasm", "application/wasm"};
static const struct lws_protocol_vhost_options mime_mjs = {&mime_wasm, NULL, ".mjs", "text/javascript"};

int tt_ws_run(const tt_config *cfg)
{
	static char origin[4096];
	W.cfg = cfg;
	lws_set_log_level(cfg->verbose > 0 ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR, lws_line);

	if (!realpath(cfg->web, origin)) {
		tt_log_warn("web directory %s not found: only /healthz and the WebSocket are served",
			    cfg->web);
		snprintf(origin, sizeof(origin), "%s", cfg->web);
		W.web_len = 0;
	} else {
		snprintf(W.web, sizeof(W.web), "%s", origin);
		W.web_len = strlen(W.web);
	}
	static struct lws_http_mount files, healthz;
	memset(&files, 0, sizeof(files));
	files.mountpoint = "/";
	files.mountpoint_len = 1;
	files.origin = origin;
	files.def = "index.html";
	files.origin_protocol = LWSMPRO_FILE;
	files.extra_mimetypes = &mime_mjs;
	memset(&healthz, 0, sizeof(healthz));
	healthz.mount_next = &files;
	healthz.mountpoint = "/healthz";
	healthz.mountpoint_len = 8;
	healthz.origin = "http";
	healthz.origin_protocol = LWSMPRO_CALLBACK;

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
	info.mounts = &healthz;
	info.vhost_name = "tutti";
	info.retry_and_idle_policy = &retry;
	info.pt_serv_buf_size = 65536;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * 0;

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
	tt_peers_init(cfg->max_conns_per_addr, cfg->max_new_sessions_per_addr);
	W.ctx = lws_create_context(&info);
	if (!W.ctx) {
		tt_log_error("cannot listen on %s:%d (in use, or not an address of this machine?)",
			     cfg->host, cfg->port);
		return -1;
	}
	/* --port 0: the kernel picks a free port; the log line says which
	 * (test fixtures read it, so no other process can take it first) */
	struct lws_vhost *vh = lws_get_vhost_by_name(W.ctx, "tutti");
	int port = vh ? lws_get_vhost_listen_port(vh) : cfg->port;
	tt_log_info("listening on http://%s:%d (web %s, WebSocket protocol %s)", cfg->host,
		    port, origin, TT_PROTOCOL_NAME);
	tt_banner_print("http", cfg->host, port, cfg->qr > 0 || (cfg->qr == 0 && isatty(1)));
	if (cfg->open)
		tt_log_warn("--open: every client may set every state and define classes "
			    "(fine for a laptop ensemble on its own network, never for an audience)");
	lws_sul_schedule(W.ctx, 0, &W.tick, tick_cb, LWS_US_PER_SEC);
	schedule_turn();
	while (!W.stop) {
		if (lws_service(W.ctx, 0) < 0)
			break;
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
	lws_sul_cancel(&W.turn);
	lws_sul_cancel(&W.sched);
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
	double deadline = tt_clock_mono() + 0.5;
	while (tt_client_first() && tt_clock_mono() < deadline)
		if (lws_service(W.ctx, 0) < 0)
			break;
	lws_sul_cancel(&W.tick);
	lws_context_destroy(W.ctx);
	W.ctx = NULL;
	for (size_t i = 0; i < W.conns.cap; i++)
		if (W.conns.keys[i] && W.conns.keys[i] != UINT64_MAX)
			free(W.conns.vals[i]);
	tt_idmap_free(&W.conns);
	tt_peers_free();
	/* sessions closed by the stop are recorded as gone (resume windows),
	 * and the clock exactly */
	if (!W.failed && tt_turn_stop() < 0)
		W.failed = 1;
	return W.failed ? -1 : 0;
}
