/* SPDX-License-Identifier: MIT */
/* banner.h: what the operator reads at start (stdout, not the log): the
 * URLs phones open on every LAN address, a QR code of the main one, each
 * role's link; and the same QR code as SVG for a page to project. */
#ifndef TT_BANNER_H
#define TT_BANNER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define TT_HOST_TEXT 64

/* The addresses phones reach a server listening on host by: every IPv4
 * address of an interface that is up and not loopback when host is a
 * wildcard (0.0.0.0, ::, ""), else host itself. At most cap; returns how
 * many. */
size_t tt_banner_hosts(const char *host, char out[][TT_HOST_TEXT], size_t cap);

/* The main URL phones open (scheme://first-LAN-address:port/), for the QR
 * page; set by tt_banner_print. */
const char *tt_banner_url(void);

/* Print the start banner to stdout: the URLs, a QR code of the first when
 * qr, each role's link. scheme is "http" or "https". */
void tt_banner_print(const char *scheme, const char *host, int port, bool qr);

/* text as a QR code in SVG (black modules on white, a quiet zone of 4),
 * appended to out. -1 when text does not fit a QR code. */
int tt_banner_qr_svg(const char *text, tt_buf *out);

#endif
