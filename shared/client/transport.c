/* SPDX-License-Identifier: MIT */
/* transport.c: libwebsockets under libtutti-client, the only client file
 * that includes libwebsockets.h. One lws context per client (no listening
 * socket), one connection at a time. Every lws call is made on the service
 * thread; other threads only call lws_cancel_service (tt_transport_kick),
 * which lws documents as thread-safe, and the service thread then looks at
 * what changed (EVENT_WAIT_CANCELLED). Timers are one lws_sul re-armed to
 * the protocol side's next deadline. */
#include "client_int.h"

#include <libwebsockets.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

/* Largest WebSocket message we build from several queued requests. */
#define FRAME_MAX (64 * 1024)

struct tt_transport {
	struct lws_context *ctx;
	struct lws *wsi;       /* the connection or attempt; NULL when none */
	bool attempt_live;     /* an attempt's outcome is not told yet */
	bool established;
	lws_sorted_usec_list_t timer, wake;
	tt_buf rx;             /* the message being reassembled */
	bool rx_in_msg, rx_text, rx_over;
	unsigned char *tx;     /* LWS_PRE + FRAME_MAX or one larger message */
	size_t tx_cap;
	int close_code;
	char close_reason[124];
	bool goodbye;          /* close with 1000 at the next write: the server ends the session */
};

static tt_client *ctx_client(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static void turn(tt_client *c);

static void timer_cb(lws_sorted_usec_list_t *sul)
{
	struct tt_transport *t = lws_container_of(sul, struct tt_transport, timer);
	turn(lws_context_user(t->ctx));
}

static void wake_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul; /* only ends the wait of tt_transport_service */
}

/* The attempt or connection ended: tell the protocol side once. */
static void ended(tt_client *c, int code, const char *why)
{
	struct tt_transport *t = c->tr;
	if (!t->attempt_live)
		return;
	t->attempt_live = false;
	t->established = false;
	t->wsi = NULL;
	t->rx_in_msg = false;
	tt_buf_clear(&t->rx);
	tt_core_on_closed(c, code, why);
}

/* Everything that may have changed since the last look: posted work,
 * timers, output. Runs on the service thread only. */
static void turn(tt_client *c)
{
	struct tt_transport *t = c->tr;
	tt_core_run_posts(c);
	double now = tt_clock_now();
	double next = tt_core_timers(c, now);
	if (isfinite(next)) {
		double us = (next - now) * 1e6;
		lws_sul_schedule(t->ctx, 0, &t->timer, timer_cb,
				 us < 1 ? 1 : us > 3.6e9 ? (lws_usec_t)3.6e9 : (lws_usec_t)us);
	} else {
		lws_sul_cancel(&t->timer);
	}
	if (t->wsi && t->established && tt_core_has_output(c))
		lws_callback_on_writable(t->wsi);
}

static int on_receive(tt_client *c, struct lws *wsi, const void *in, size_t len)
{
	struct tt_transport *t = c->tr;
	if (!t->rx_in_msg) {
		t->rx_in_msg = true;
		t->rx_text = !lws_frame_is_binary(wsi);
		t->rx_over = false;
		tt_buf_clear(&t->rx);
	}
	if (!t->rx_text && !t->rx_over) {
		if (len > c->o.max_message - t->rx.len) {
			/* refuse before allocating, as the server does */
			tt_core_log(c, "message from the server larger than %u bytes; reconnecting",
				    c->o.max_message);
			t->rx_over = true;
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
			return -1;
		}
		tt_buf_append(&t->rx, in, len);
	}
	if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
		t->rx_in_msg = false;
		if (!t->rx_text && !t->rx_over)
			tt_core_on_message(c, tt_buf_data(&t->rx), t->rx.len);
		tt_buf_clear(&t->rx);
		if (t->rx.cap > (1u << 20)) { /* do not keep a huge buffer around */
			tt_buf_free(&t->rx);
			tt_buf_init(&t->rx, 0);
		}
	}
	return 0;
}

static int on_writeable(tt_client *c, struct lws *wsi)
{
	struct tt_transport *t = c->tr;
	if (t->goodbye) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
		return -1;
	}
	if (!tt_core_has_output(c))
		return 0;
	const unsigned char *p;
	size_t max = TT_MIN((size_t)FRAME_MAX, (size_t)c->server_max_message);
	size_t n = tt_core_take_output(c, max, &p);
	if (LWS_PRE + n > t->tx_cap) {
		t->tx_cap = LWS_PRE + TT_MAX(n, (size_t)FRAME_MAX);
		t->tx = tt_realloc(t->tx, t->tx_cap);
	}
	memcpy(t->tx + LWS_PRE, p, n);
	if (lws_write(wsi, t->tx + LWS_PRE, n, LWS_WRITE_BINARY) < (int)n)
		return -1;
	if (tt_core_has_output(c))
		lws_callback_on_writable(wsi);
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	(void)user;
	tt_client *c;
	struct tt_transport *t;
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		c = ctx_client(wsi);
		if (c && c->tr)
			turn(c);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c = ctx_client(wsi);
		t = c->tr;
		if (wsi != t->wsi)
			return -1;
		t->established = true;
		t->close_code = 0;
		t->close_reason[0] = '\0';
		tt_core_on_open(c);
		turn(c);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		c = ctx_client(wsi);
		if (wsi == c->tr->wsi) {
			char why[160];
			snprintf(why, sizeof(why), "cannot connect: %.120s",
				 in && len ? (const char *)in : "connection failed");
			ended(c, 1006, why);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		c = ctx_client(wsi);
		if (wsi != c->tr->wsi)
			return -1;
		return on_receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		c = ctx_client(wsi);
		if (wsi != c->tr->wsi)
			return -1;
		return on_writeable(c, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		c = ctx_client(wsi);
		t = c->tr;
		if (wsi == t->wsi && len >= 2) {
			const unsigned char *p = in;
			t->close_code = (p[0] << 8) | p[1];
			size_t n = TT_MIN(len - 2, sizeof(t->close_reason) - 1);
			memcpy(t->close_reason, p + 2, n);
			t->close_reason[n] = '\0';
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)t->close_reason[i] < 0x20)
					t->close_reason[i] = ' ';
		}
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		c = ctx_client(wsi);
		t = c->tr;
		if (wsi == t->wsi)
			ended(c, t->close_code ? t->close_code : 1006, t->close_reason);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{TT_PROTOCOL_NAME, callback, 0, 65536, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}
};

int tt_transport_new(tt_client *c, tt_error *err)
{
	static bool log_set;
	if (!log_set) {
		/* lws logs to stderr by default; the library reports through
		 * on_log instead. TUTTI_LWS_LOG=<LLL_ bits> for lws's own. */
		const char *e = getenv("TUTTI_LWS_LOG");
		lws_set_log_level(e ? atoi(e) : 0, NULL);
		log_set = true;
	}
	struct tt_transport *t = tt_calloc(1, sizeof(*t));
	tt_buf_init(&t->rx, 0);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = c;
	/* lws sizes its fd table from the process limit otherwise: one
	 * connection and the event pipe are all a client has */
	info.fd_limit_per_thread = 8;
	info.timeout_secs = 10;
	info.connect_timeout_secs = 10;
	if (c->tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = c->ca_file;
	}
	t->ctx = lws_create_context(&info);
	if (!t->ctx) {
		free(t);
		return tt_fail(err, TT_INTERNAL, "cannot create the libwebsockets context");
	}
	c->tr = t;
	return 0;
}

void tt_transport_free(tt_client *c)
{
	struct tt_transport *t = c->tr;
	if (!t)
		return;
	/* say goodbye before the context goes (destroying it sends no close
	 * frame, and the server would keep the session for resume) */
	if (t->wsi && t->established) {
		tt_transport_goodbye(c);
		double until = tt_clock_now() + 0.5;
		while (t->wsi && tt_clock_now() < until)
			if (lws_service(t->ctx, 0) < 0)
				break;
	}
	lws_context_destroy(t->ctx);
	tt_buf_free(&t->rx);
	free(t->tx);
	free(t);
	c->tr = NULL;
}

void tt_transport_open(tt_client *c)
{
	struct tt_transport *t = c->tr;
	if (!t || t->attempt_live)
		return;
	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof(ci));
	ci.context = t->ctx;
	ci.address = c->host;
	ci.port = c->port;
	ci.path = c->path;
	ci.host = c->host;
	ci.origin = c->host;
	ci.protocol = TT_PROTOCOL_NAME;
	ci.pwsi = &t->wsi;
	if (c->tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (c->o.insecure)
			ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
					     LCCSCF_ALLOW_EXPIRED;
	}
	t->attempt_live = true;
	t->established = false;
	t->goodbye = false;
	t->close_code = 0;
	t->close_reason[0] = '\0';
	if (!lws_client_connect_via_info(&ci))
		ended(c, 1006, "cannot connect");
}

void tt_transport_drop(tt_client *c)
{
	struct tt_transport *t = c->tr;
	if (!t || !t->wsi)
		return;
	t->close_code = 4000;
	snprintf(t->close_reason, sizeof(t->close_reason), "dropped by the client");
	lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void tt_transport_goodbye(tt_client *c)
{
	struct tt_transport *t = c->tr;
	if (!t || !t->wsi)
		return;
	if (!t->established) {
		tt_transport_drop(c);
		return;
	}
	t->goodbye = true;
	/* a server that does not answer the close is dropped after a second */
	lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, 1);
	lws_callback_on_writable(t->wsi);
	lws_cancel_service(t->ctx);
}

void tt_transport_kick(tt_client *c)
{
	if (c->tr)
		lws_cancel_service(c->tr->ctx);
}

int tt_transport_service(tt_client *c, int timeout_ms)
{
	struct tt_transport *t = c->tr;
	if (!t)
		return -TT_CLOSED;
	turn(c);
	if (timeout_ms > 0)
		lws_sul_schedule(t->ctx, 0, &t->wake, wake_cb, (lws_usec_t)timeout_ms * 1000);
	/* lws waits until its next event when given 0; a negative timeout
	 * only services what is ready */
	int rc = lws_service(t->ctx, timeout_ms > 0 ? 0 : -1);
	lws_sul_cancel(&t->wake);
	return rc < 0 ? -TT_INTERNAL : 0;
}

static void *thread_main(void *arg)
{
	tt_client *c = arg;
	turn(c);
	while (!atomic_load(&c->thread_stop)) {
		if (lws_service(c->tr->ctx, 0) < 0)
			break;
		tt_core_reap(c);
	}
	return NULL;
}

int tt_transport_start(tt_client *c, tt_error *err)
{
	if (!c->tr)
		return tt_fail(err, TT_USAGE, "a client without a network has no thread");
	atomic_store(&c->thread_stop, false);
	c->thread_running = true;
	if (pthread_create(&c->thread, NULL, thread_main, c) != 0) {
		c->thread_running = false;
		return tt_fail(err, TT_INTERNAL, "cannot start the client thread");
	}
	return 0;
}

void tt_transport_stop(tt_client *c)
{
	if (!c->thread_running || pthread_equal(pthread_self(), c->thread))
		return;
	atomic_store(&c->thread_stop, true);
	lws_cancel_service(c->tr->ctx);
	pthread_join(c->thread, NULL);
	c->thread_running = false;
}
