/* SPDX-License-Identifier: MIT */
/* http.h: the HTTP side of the port (http.c): the pages, the web client at
 * /tutti/, the QR page, the authority's certificate, /healthz, /metrics
 * and the inspector page. ws.c
 * and http.c are the two files that include libwebsockets.h. */
#ifndef TT_HTTP_H
#define TT_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

/* Find the folders (web: --web; the client next to the server) and read
 * the authority's certificate (ca_path, NULL: none); metrics_public: serve
 * /metrics without a token (--metrics-public). The mounts to give lws,
 * valid until tt_http_destroy. */
const struct lws_http_mount *tt_http_init(const char *web, const char *ca_path,
					  bool metrics_public);
void tt_http_destroy(void);
/* The realpath of --web, or NULL when it does not exist. */
const char *tt_http_web_dir(void);
/* LWS_CALLBACK_FILTER_HTTP_CONNECTION: 0 to go on, else answered (and the
 * connection ends). */
int tt_http_filter(struct lws *wsi, const char *uri);
/* LWS_CALLBACK_HTTP: the dynamic routes, and 404. */
int tt_http_serve(struct lws *wsi);
/* A whole answer written at once (no body for HEAD); hang_up: the
 * connection ends after it (a refused request leaves bytes that cannot be
 * trusted to start the next one). Returns what the callback returns. */
int tt_http_send(struct lws *wsi, unsigned int status, const char *type, const void *body,
		 size_t n, bool hang_up);
/* The same with a short text/plain body. */
int tt_http_answer(struct lws *wsi, unsigned int status, const char *text, bool hang_up);

#endif
