/* SPDX-License-Identifier: MIT */
/* banner.c: the start banner (URLs on every LAN address, a QR code, the
 * roles' links) and the QR code as SVG. */
#define _DEFAULT_SOURCE /* IFF_UP, IFF_LOOPBACK */
#include "banner.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <qrencode.h>
#include <stdio.h>
#include <string.h>

#include "roles.h"

static char g_url[TT_HOST_TEXT + 32];

static bool wildcard(const char *host)
{
	return !host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*");
}

size_t tt_banner_hosts(const char *host, char out[][TT_HOST_TEXT], size_t cap)
{
	size_t n = 0;
	if (!cap)
		return 0;
	if (!wildcard(host)) {
		snprintf(out[n++], TT_HOST_TEXT, "%s", host);
		return n;
	}
	struct ifaddrs *ifs;
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i && n < cap; i = i->ifa_next) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
			    !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
				continue;
			const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)i->ifa_addr;
			char text[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
			bool seen = false;
			for (size_t k = 0; k < n; k++)
				seen |= !strcmp(out[k], text);
			if (!seen)
				snprintf(out[n++], TT_HOST_TEXT, "%s", text);
		}
		freeifaddrs(ifs);
	}
	if (!n) /* no network: this machine only */
		snprintf(out[n++], TT_HOST_TEXT, "127.0.0.1");
	return n;
}

const char *tt_banner_url(void)
{
	return g_url;
}

static QRcode *encode(const char *text)
{
	/* level M: a projected code read from the back of a hall survives some
	 * blur; version chosen by the library for the length */
	return QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
}

/* Two rows of modules per line of text with half blocks, a quiet zone of
 * 2 around. The light modules are the drawn ones, in bright white on a
 * black background set for the purpose, so the code reads the same on a
 * light or a dark terminal. */
static void print_qr(FILE *f, const char *text)
{
	QRcode *q = encode(text);
	if (!q)
		return;
	int w = q->width, z = 2;
	for (int y = -z; y < w + z; y += 2) {
		fputs("  \033[40;97m", f);
		for (int x = -z; x < w + z; x++) {
			int top = y >= 0 && y < w && x >= 0 && x < w && (q->data[y * w + x] & 1);
			int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
				  (q->data[(y + 1) * w + x] & 1);
			fputs(!top && !bot ? "\u2588" : !top ? "\u2580" : !bot ? "\u2584" : " ", f);
		}
		fputs("\033[0m\n", f);
	}
	QRcode_free(q);
}

void tt_banner_print(const char *scheme, const char *host, int port, bool qr)
{
	char hosts[16][TT_HOST_TEXT];
	size_t n = tt_banner_hosts(host, hosts, 16);
	snprintf(g_url, sizeof(g_url), "%s://%s:%d/", scheme, hosts[0], port);
	FILE *f = stdout;
	if (!wildcard(host) && !strcmp(host, "127.0.0.1"))
		fprintf(f, "\ntutti: only this machine can connect (--host 127.0.0.1); for phones, "
			   "start with --host 0.0.0.0\n  %s\n", g_url);
	else {
		fprintf(f, "\ntutti: phones on this network open\n");
		for (size_t i = 0; i < n; i++)
			fprintf(f, "  %s://%s:%d/\n", scheme, hosts[i], port);
	}
	if (qr) {
		fputc('\n', f);
		print_qr(f, g_url);
	}
	fprintf(f, "\nthe QR code to project: %stutti/qr\n", g_url);
	char base[TT_HOST_TEXT + 32];
	snprintf(base, sizeof(base), "%s://%s:%d", scheme, hosts[0], port);
	tt_roles_banner(f, base);
	fputc('\n', f);
	fflush(f);
}

int tt_banner_qr_svg(const char *text, tt_buf *out)
{
	QRcode *q = encode(text);
	if (!q)
		return -1;
	int w = q->width, z = 4;
	char line[160];
	int n = snprintf(line, sizeof(line),
			 "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
			 "shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\" "
			 "fill=\"#fff\"/><path fill=\"#000\" d=\"",
			 w + 2 * z, w + 2 * z, w + 2 * z, w + 2 * z);
	tt_buf_append(out, line, (size_t)n);
	for (int y = 0; y < w; y++)
		for (int x = 0; x < w; x++)
			if (q->data[y * w + x] & 1) {
				n = snprintf(line, sizeof(line), "M%d %dh1v1h-1z", x + z, y + z);
				tt_buf_append(out, line, (size_t)n);
			}
	tt_buf_append(out, "\"/></svg>\n", 10);
	QRcode_free(q);
	return 0;
}
