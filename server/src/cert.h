/* SPDX-License-Identifier: MIT */
/* cert.h: a local certificate authority and a certificate for this
 * machine's addresses (--https). */
#ifndef TT_CERT_H
#define TT_CERT_H

#include <stddef.h>

#include "common.h"

#define TT_CERT_PATH_MAX 4096

typedef struct tt_cert_paths {
	char ca[TT_CERT_PATH_MAX];   /* the authority's certificate: what a phone trusts */
	char cert[TT_CERT_PATH_MAX]; /* this server's certificate, signed by it */
	char key[TT_CERT_PATH_MAX];  /* this server's key */
	int made_ca;                 /* 1: the authority was made now */
	int made_cert;               /* 1: the certificate was made now */
} tt_cert_paths;

/* Make sure dir (created 0700 if missing) holds an authority and a
 * certificate from it naming every one of names (IP addresses as text, or
 * DNS names), valid for 30 more days at least; make what is missing or no
 * longer fits. The authority, once made, is kept. */
int tt_cert_ensure(const char *dir, const char *const *names, size_t n, tt_cert_paths *out,
		   tt_error *err);

#endif
