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
#include "cert.h"
#include "http.h"
#include "clock.h"
#include "db.h"
#include "engine.h"
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

/* From an engine's thread: lws_cancel_service is the one call lws makes
 * safe from another thread; the loop then polls the engine. */
static void wake_loop(void)
{
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
			: c->close_code == TT_CLOSE_RESYNC ? "resume: another node wrote first"
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
		else if (c->q_len)
			tt_client_wait_release(c);
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
	{TT_PROTOCOL_NAME, cb_tutti, sizeof(struct pss), 65536, 0, NULL, 2 << 20},
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
	const struct lws_http_mount *mounts = tt_http_init(cfg->web, cfg->https ? paths.ca : NULL);
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
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * 0;
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
	tt_peers_init(cfg->max_conns_per_addr, cfg->max_new_sessions_per_addr);
	W.ctx = lws_create_context(&info);
	if (!W.ctx) {
		if (tls)
			tt_log_error("cannot listen on %s:%d with TLS (port in use, or is %s / %s "
				     "not a readable certificate and key?)", cfg->host, cfg->port, cert, key);
		else
			tt_log_error("cannot listen on %s:%d (in use, or not an address of this machine?)",
				     cfg->host, cfg->port);
		tt_http_destroy();
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
	lws_sul_schedule(W.ctx, 0, &W.tick, tick_cb, LWS_US_PER_SEC);
	schedule_turn();
	tt_engine_set_waker(wake_loop);
	while (!W.stop) {
		if (lws_service(W.ctx, 0) < 0)
			break;
		/* an engine's acknowledgements and messages (engine.h) */
		if (tt_turn_poll())
			schedule_turn();
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
	tt_engine_set_waker(NULL);
	lws_context_destroy(W.ctx);
	W.ctx = NULL;
	for (size_t i = 0; i < W.conns.cap; i++)
		if (W.conns.keys[i] && W.conns.keys[i] != UINT64_MAX)
			free(W.conns.vals[i]);
	tt_idmap_free(&W.conns);
	tt_peers_free();
	tt_http_destroy();
	/* sessions closed by the stop are recorded as gone (resume windows),
	 * and the clock exactly */
	if (!W.failed && tt_turn_stop() < 0)
		W.failed = 1;
	return W.failed ? -1 : 0;
}
