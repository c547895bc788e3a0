/* SPDX-License-Identifier: MIT */
/* http.c: what the server answers over plain HTTP(S), beside the WebSocket:
 *
 *   /                the files of --web (a piece's pages)
 *   /tutti/          the web client, whatever --web is: the .js, .mjs and
 *                    .css files at the top of its folder (tutti.js, sync.js,
 *                    stage.js, the inspector's), nothing else of the folder
 *   /tutti/msgpack/  the msgpack ES module the client imports
 *   /tutti/qr        a page with the QR code of the phones' URL, to project
 *   /tutti/ca.pem    the local authority's certificate (--https), for a
 *                    phone to trust
 *   /healthz         200 "ok", 503 while the database fails
 *   /metrics         the Prometheus text format (metrics.h), for an admin
 *                    role's token (Authorization: Bearer, or ?token=)
 *                    unless --metrics-public
 *   /inspect         the inspector page (inspect.html of the client's
 *                    folder): public, as every page is; what it shows
 *                    comes over the WebSocket, for an admin role only
 *
 * Only GET and HEAD without a body are served, and only files inside their
 * folder after every symlink is followed, none whose path has a part
 * starting with '.'. */
#define _DEFAULT_SOURCE /* realpath */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "banner.h"
#include "buf.h"
#include "db.h"
#include "files.h"
#include "log.h"
#include "metrics.h"
#include "prometheus.h"
#include "roles.h"

/* A folder served under a prefix of the URL. */
typedef struct root {
	const char *prefix; /* "/tutti/msgpack", "/tutti", "/" */
	char dir[PATH_MAX]; /* its realpath; "" when it does not exist */
	size_t len;
} root;

enum { ROOT_MSGPACK, ROOT_CLIENT, ROOT_WEB, N_ROOTS };

static struct {
	root roots[N_ROOTS];
	struct lws_http_mount files[N_ROOTS], healthz, qr, ca, metrics, inspect;
	tt_buf ca_pem;      /* the authority's certificate, when --https made one */
	tt_buf page;        /* scratch: a page being answered */
	bool metrics_public; /* --metrics-public */
} H;

/* .mjs, .wasm, .map, .webmanifest and extensionless files are not in lws's
 * MIME table and would be refused with 415 Unsupported Media Type. */
static const struct lws_protocol_vhost_options mime_any = {NULL, NULL, "*", "application/octet-stream"};
static const struct lws_protocol_vhost_options mime_manifest = {&mime_any, NULL, ".webmanifest", "application/manifest+json"};
static const struct lws_protocol_vhost_options mime_map = {&mime_manifest, NULL, ".map", "application/json"};
static const struct lws_protocol_vhost_options mime_wasm = {&mime_map, NULL, ".wasm", "application/wasm"};
static const struct lws_protocol_vhost_options mime_ts = {&mime_wasm, NULL, ".ts", "text/plain; charset=utf-8"};
static const struct lws_protocol_vhost_options mime_mjs = {&mime_ts, NULL, ".mjs", "text/javascript"};

static void set_root(int i, const char *prefix, const char *dir)
{
	root *r = &H.roots[i];
	r->prefix = prefix;
	r->dir[0] = '\0';
	r->len = 0;
	if (dir && realpath(dir, r->dir))
		r->len = strlen(r->dir);
	else
		r->dir[0] = '\0';
}

static void file_mount(int i, struct lws_http_mount *next)
{
	struct lws_http_mount *m = &H.files[i];
	memset(m, 0, sizeof(*m));
	m->mount_next = next;
	m->mountpoint = H.roots[i].prefix;
	m->mountpoint_len = (unsigned char)strlen(H.roots[i].prefix);
	/* a folder that does not exist: lws answers 404 for everything in it */
	m->origin = H.roots[i].len ? H.roots[i].dir : "/nonexistent";
	m->def = "index.html";
	m->origin_protocol = LWSMPRO_FILE;
	m->extra_mimetypes = &mime_mjs;
}

static void callback_mount(struct lws_http_mount *m, const char *prefix,
			   struct lws_http_mount *next)
{
	memset(m, 0, sizeof(*m));
	m->mount_next = next;
	m->mountpoint = prefix;
	m->mountpoint_len = (unsigned char)strlen(prefix);
	m->origin = "http";
	m->origin_protocol = LWSMPRO_CALLBACK;
}

const struct lws_http_mount *tt_http_init(const char *web, const char *ca_path,
					  bool metrics_public)
{
	H.metrics_public = metrics_public;
	const char *client = tt_files_web();
	char msgpack[PATH_MAX];
	snprintf(msgpack, sizeof(msgpack), "%s/node_modules/@msgpack/msgpack/dist.esm",
		 client ? client : "/nonexistent");
	set_root(ROOT_MSGPACK, "/tutti/msgpack", msgpack);
	set_root(ROOT_CLIENT, "/tutti", client);
	set_root(ROOT_WEB, "/", web);
	if (!H.roots[ROOT_WEB].len)
		tt_log_warn("web directory %s not found: only the client (/tutti/), /healthz and "
			    "the WebSocket are served", web);
	if (!H.roots[ROOT_CLIENT].len)
		tt_log_warn("the web client was not found next to the server: /tutti/ is not served");
	else if (!H.roots[ROOT_MSGPACK].len)
		tt_log_warn("%s is missing (npm install in %s): pages cannot load the client",
			    msgpack, client);
	tt_buf_init(&H.ca_pem, 0);
	tt_buf_init(&H.page, 0);
	if (ca_path) {
		FILE *f = fopen(ca_path, "r");
		char b[4096];
		size_t n;
		while (f && (n = fread(b, 1, sizeof(b), f)) > 0)
			tt_buf_append(&H.ca_pem, b, n);
		if (f)
			fclose(f);
	}
	/* longest prefix first is not needed: lws picks the longest match */
	file_mount(ROOT_WEB, NULL);
	file_mount(ROOT_CLIENT, &H.files[ROOT_WEB]);
	file_mount(ROOT_MSGPACK, &H.files[ROOT_CLIENT]);
	callback_mount(&H.ca, "/tutti/ca.pem", &H.files[ROOT_MSGPACK]);
	callback_mount(&H.qr, "/tutti/qr", &H.ca);
	callback_mount(&H.healthz, "/healthz", &H.qr);
	callback_mount(&H.metrics, "/metrics", &H.healthz);
	callback_mount(&H.inspect, "/inspect", &H.metrics);
	return &H.inspect;
}

void tt_http_destroy(void)
{
	tt_buf_free(&H.ca_pem);
	tt_buf_free(&H.page);
}

const char *tt_http_web_dir(void)
{
	return H.roots[ROOT_WEB].len ? H.roots[ROOT_WEB].dir : NULL;
}

/* tt_http_send with one more header (name as lws spells it, "www-authenticate:"),
 * or none (NULL). */
static int send_with(struct lws *wsi, unsigned int status, const char *type, const void *body,
		     size_t n, bool hang_up, const char *name, const char *value)
{
	bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
	unsigned char hdr[LWS_PRE + 512];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
	if (lws_add_http_common_headers(wsi, status, type, n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (unsigned char *)"no-store", 8, &p, end) ||
	    (status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
	     lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW, (unsigned char *)"GET, HEAD",
					  9, &p, end)) ||
	    (hang_up && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
						     (unsigned char *)"close", 5, &p, end)) ||
	    (name && lws_add_http_header_by_name(wsi, (const unsigned char *)name,
						 (const unsigned char *)value, (int)strlen(value),
						 &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (!head && n) {
		/* lws keeps what the socket does not take at once and sends it
		 * before anything else: one write of a page of a few kB */
		unsigned char *b = malloc(LWS_PRE + n);
		if (!b)
			return -1;
		memcpy(b + LWS_PRE, body, n);
		int w = lws_write(wsi, b + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
		free(b);
		if (w != (int)n)
			return -1;
	}
	if (hang_up)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int tt_http_send(struct lws *wsi, unsigned int status, const char *type, const void *body,
		 size_t n, bool hang_up)
{
	return send_with(wsi, status, type, body, n, hang_up, NULL, NULL);
}

int tt_http_answer(struct lws *wsi, unsigned int status, const char *text, bool hang_up)
{
	return tt_http_send(wsi, status, "text/plain; charset=utf-8", text, strlen(text), hang_up);
}

/* The root a path is in: the longest prefix that ends at a '/' of it. */
static const root *root_of(const char *uri, const char **rel)
{
	for (int i = 0; i < N_ROOTS; i++) {
		const root *r = &H.roots[i];
		size_t n = strlen(r->prefix);
		if (n == 1 || (!strncmp(uri, r->prefix, n) && (uri[n] == '/' || !uri[n]))) {
			*rel = n == 1 ? uri : uri + n;
			return r;
		}
	}
	*rel = uri;
	return &H.roots[ROOT_WEB];
}

/* A file a mount may serve: no component starting with '.' (.git, .env,
 * editor backups), and after following every symlink, a file inside its
 * folder: a link to /etc/passwd dropped in --web must not publish it. uri
 * is lws's decoded path, with ".." already resolved. */
static bool ends_with(const char *s, size_t n, const char *end)
{
	size_t e = strlen(end);
	return n > e && !memcmp(s + n - e, end, e);
}

/* /tutti/ is the client's folder, and that folder also holds the piece
 * template, the package's manifest and the ws module Node needs: only its
 * modules, types and styles are the client, one level deep. */
static bool client_file(const char *rel)
{
	if (rel[0] != '/' || strchr(rel + 1, '/'))
		return false;
	size_t n = strlen(rel);
	return ends_with(rel, n, ".js") || ends_with(rel, n, ".mjs") || ends_with(rel, n, ".css");
}

static bool file_ok(const char *uri)
{
	for (const char *p = uri; (p = strchr(p, '/')); p++)
		if (p[1] == '.')
			return false;
	const char *rel;
	const root *r = root_of(uri, &rel);
	if (!r->len)
		return true; /* nothing is served there: lws answers 404 */
	if (r == &H.roots[ROOT_CLIENT] && !client_file(rel))
		return false;
	char path[PATH_MAX], real[PATH_MAX];
	size_t n = strlen(rel);
	int len = snprintf(path, sizeof(path), "%s%s%s", r->dir, rel,
			   !n || rel[n - 1] == '/' ? "/index.html" : "");
	if (len < 0 || (size_t)len >= sizeof(path) || !realpath(path, real))
		return false; /* missing (lws would say 404 too), or unreadable */
	for (int i = 0; i < 2; i++) {
		if (strncmp(real, r->dir, r->len) != 0 ||
		    (real[r->len] != '/' && real[r->len] && r->len > 1))
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

static bool dynamic(const char *uri)
{
	return !strcmp(uri, "/healthz") || !strcmp(uri, "/tutti/qr") ||
	       !strcmp(uri, "/tutti/ca.pem") || !strcmp(uri, "/metrics") || !strcmp(uri, "/inspect");
}

int tt_http_filter(struct lws *wsi, const char *uri)
{
	char cl[32];
	if (!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) &&
	    !lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI))
		return tt_http_answer(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED,
				      "only GET and HEAD are served\n", true);
	/* one unambiguous Content-Length at most: two that disagree are how
	 * a request is smuggled past a proxy */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) ||
	    lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 1) ||
	    (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) &&
	     (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
	      strspn(cl, "0") != strlen(cl))))
		return tt_http_answer(wsi, HTTP_STATUS_BAD_REQUEST,
				      "a GET or HEAD request has no body\n", true);
	if (!dynamic(uri) && !file_ok(uri))
		return tt_http_answer(wsi, HTTP_STATUS_NOT_FOUND, "not found\n", true);
	return 0;
}

static void put(tt_buf *b, const char *s)
{
	tt_buf_append(b, s, strlen(s));
}

/* Text for HTML: the URL of the page (from the banner) has no markup, but
 * a host name is the operator's to choose. */
static void put_escaped(tt_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			put(b, "&lt;");
		else if (*s == '>')
			put(b, "&gt;");
		else if (*s == '&')
			put(b, "&amp;");
		else if (*s == '"')
			put(b, "&quot;");
		else
			tt_buf_append(b, s, 1);
	}
}

/* The page to project: the QR code of the phones' URL, large, and the URL
 * under it for those who type. */
static int qr_page(struct lws *wsi)
{
	const char *url = tt_banner_url();
	tt_buf *b = &H.page;
	tt_buf_clear(b);
	put(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	       "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
	       "<title>Join with your phone</title><style>"
	       "html,body{margin:0;height:100%;background:#fff;color:#000}"
	       "body{display:flex;flex-direction:column;align-items:center;justify-content:center;"
	       "font:600 4vmin/1.3 system-ui,sans-serif}"
	       "svg{width:78vmin;height:78vmin}p{margin:.4em;text-align:center}"
	       "</style></head><body>\n");
	if (tt_banner_qr_svg(url, b) < 0)
		put(b, "<p>(the URL is too long for a QR code)</p>");
	put(b, "<p>Join with your phone: scan, or open<br><code id=\"url\">");
	put_escaped(b, url);
	put(b, "</code></p>\n</body></html>\n");
	return tt_http_send(wsi, HTTP_STATUS_OK, "text/html; charset=utf-8", tt_buf_data(b), b->len,
			    false);
}

/* /metrics is the operator's: an admin role's token, as a Bearer token
 * (what Prometheus' authorization setting sends) or ?token= (for a
 * scraper that can only set a URL). */
static bool metrics_allowed(struct lws *wsi)
{
	char buf[256];
	if (H.metrics_public)
		return true;
	int n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n > 7 && !strncasecmp(buf, "Bearer ", 7)) {
		const char *t = buf + 7;
		while (*t == ' ')
			t++;
		return tt_roles_admin_token(t, strlen(t));
	}
	const char *t = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf));
	return t && tt_roles_admin_token(t, strlen(t));
}

static int metrics(struct lws *wsi)
{
	static const char why[] =
		"/metrics needs an admin role's token: Authorization: Bearer TOKEN, or "
		"/metrics?token=TOKEN (or start the server with --metrics-public)\n";
	if (!metrics_allowed(wsi))
		return send_with(wsi, HTTP_STATUS_UNAUTHORIZED, "text/plain; charset=utf-8", why,
				 sizeof(why) - 1, false, "www-authenticate:", "Bearer realm=\"tutti\"");
	tt_buf *b = &H.page;
	tt_buf_clear(b);
	tt_prometheus_render(b);
	int rc = tt_http_send(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
			      tt_buf_data(b), b->len, false);
	if (b->cap > 1 << 20)
		tt_buf_free(b);
	return rc;
}

/* The inspector page, from the client's folder (whatever --web is): its
 * data needs the admin token over the WebSocket, the page itself is no
 * secret. */
static int inspect_page(struct lws *wsi)
{
	const char *dir = H.roots[ROOT_CLIENT].len ? H.roots[ROOT_CLIENT].dir : NULL;
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/inspect.html", dir ? dir : "/nonexistent");
	FILE *f = fopen(path, "r");
	if (!f)
		return tt_http_answer(wsi, HTTP_STATUS_NOT_FOUND,
				      "the inspector page was not found with the web client\n", false);
	tt_buf *b = &H.page;
	tt_buf_clear(b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b->len < (1u << 20))
		tt_buf_append(b, chunk, n);
	fclose(f);
	return tt_http_send(wsi, HTTP_STATUS_OK, "text/html; charset=utf-8", tt_buf_data(b), b->len,
			    false);
}

int tt_http_serve(struct lws *wsi)
{
	char uri[64];
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 &&
	    lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_HEAD_URI) <= 0)
		uri[0] = 0;
	if (!strcmp(uri, "/healthz")) {
		/* 503 while the database fails, so that a supervisor or a load
		 * balancer sees it; the reason on one line */
		const char *failing = tt_db_failing();
		char text[224];
		if (!failing)
			return tt_http_answer(wsi, HTTP_STATUS_OK, "ok\n", false);
		snprintf(text, sizeof(text), "storage failing: %s\n", failing);
		return tt_http_answer(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, text, false);
	}
	if (!strcmp(uri, "/tutti/qr"))
		return qr_page(wsi);
	if (!strcmp(uri, "/metrics"))
		return metrics(wsi);
	if (!strcmp(uri, "/inspect"))
		return inspect_page(wsi);
	if (!strcmp(uri, "/tutti/ca.pem") && H.ca_pem.len)
		/* the type phones offer to install as an authority */
		return tt_http_send(wsi, HTTP_STATUS_OK, "application/x-x509-ca-cert",
				    tt_buf_data(&H.ca_pem), H.ca_pem.len, false);
	/* lws also lands here for a file a mount does not have */
	return tt_http_answer(wsi, HTTP_STATUS_NOT_FOUND, "not found\n", false);
}
