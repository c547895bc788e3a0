/* SPDX-License-Identifier: MIT */
/* secret.c: tokens from the kernel's random source, digests from OpenSSL's
 * libcrypto (already there: libwebsockets is built on it). */
#include "secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/random.h>

#include "common.h"

void tt_secret_token(char out[TT_TOKEN_HEX_LEN + 1])
{
	unsigned char raw[TT_TOKEN_HEX_LEN / 2];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		tt_assert(n > 0);
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void tt_secret_digest(const void *p, size_t n, unsigned char out[TT_DIGEST_LEN])
{
	unsigned int len = 0;
	tt_assert(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == TT_DIGEST_LEN);
}

bool tt_secret_equal(const unsigned char a[TT_DIGEST_LEN], const unsigned char b[TT_DIGEST_LEN])
{
	return CRYPTO_memcmp(a, b, TT_DIGEST_LEN) == 0;
}

void tt_secret_hex(const unsigned char d[TT_DIGEST_LEN], char out[2 * TT_DIGEST_LEN + 1])
{
	for (size_t i = 0; i < TT_DIGEST_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool tt_secret_unhex(const char *hex, size_t len, unsigned char out[TT_DIGEST_LEN])
{
	if (len != 2 * TT_DIGEST_LEN)
		return false;
	for (size_t i = 0; i < TT_DIGEST_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}
