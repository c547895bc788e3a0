/* SPDX-License-Identifier: MIT */
/* secret.h: secrets: random tokens, their SHA-256 digests, and comparing
 * them without leaking timing. secret.c is the only file that includes
 * OpenSSL. Tokens are kept and stored as digests only, so neither the
 * database nor a memory dump gives a token that resumes a session or
 * proves a role. */
#ifndef TT_SECRET_H
#define TT_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define TT_DIGEST_LEN 32      /* SHA-256 */
#define TT_TOKEN_HEX_LEN 32   /* a token: 16 random bytes as hex */

/* A fresh token: TT_TOKEN_HEX_LEN lower-case hex digits and a NUL. */
void tt_secret_token(char out[TT_TOKEN_HEX_LEN + 1]);
/* SHA-256 of n bytes. */
void tt_secret_digest(const void *p, size_t n, unsigned char out[TT_DIGEST_LEN]);
/* Equal digests, in time independent of where they differ. */
bool tt_secret_equal(const unsigned char a[TT_DIGEST_LEN], const unsigned char b[TT_DIGEST_LEN]);
/* Hex of a digest (2 * TT_DIGEST_LEN digits and a NUL), and back (false
 * when hex is not exactly that). */
void tt_secret_hex(const unsigned char d[TT_DIGEST_LEN], char out[2 * TT_DIGEST_LEN + 1]);
bool tt_secret_unhex(const char *hex, size_t len, unsigned char out[TT_DIGEST_LEN]);

#endif
