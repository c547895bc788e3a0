/* SPDX-License-Identifier: MIT */
/* cert.c: a local certificate authority and a certificate for this
 * machine's LAN addresses (--https), for a venue with no domain name.
 *
 * Phones give a page the APIs a piece needs (wake lock, motion sensors,
 * microphone) only in a secure context, that is over HTTPS. With no domain
 * name there is no public certificate, so the server makes its own
 * authority once (ca.pem, kept: a phone that trusted it once trusts every
 * later certificate), and from it a certificate naming every address the
 * phones may use (server.pem). The certificate is made again when it nears
 * its end, when the laptop has an address it does not name (another
 * venue's network), or when it is not the authority's; the authority
 * stays. Keys are ECDSA P-256, which every phone accepts; the certificate
 * lives 800 days, under the 825 that Apple platforms allow a certificate
 * from a private authority. */
#include "cert.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define CA_DAYS (20 * 365)
#define CERT_DAYS 800
#define RENEW_DAYS 30

static int write_pem(const char *path, EVP_PKEY *key, X509 *x, tt_error *err)
{
	/* a key is owner-only from the start: never a moment where others
	 * could read it */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, key ? 0600 : 0644);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		if (fd >= 0)
			close(fd);
		return tt_fail(err, TT_INTERNAL, "cannot write %s: %s", path, strerror(errno));
	}
	int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
	if (fclose(f) != 0 || !ok)
		return tt_fail(err, TT_INTERNAL, "cannot write %s", path);
	return 0;
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return -1;
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* A certificate for key named cn, valid days from yesterday, with its
 * extensions, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, int days, X509 *issuer,
		       EVP_PKEY *issuer_key, const char *const exts[][2], size_t n_exts)
{
	X509 *x = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;
	if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	if (!sn || !X509_set_serialNumber(x, sn) || !X509_set_version(x, 2))
		goto fail;
	/* from a day back: a phone whose clock is a little behind accepts it */
	if (!X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400))
		goto fail;
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"tutti", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	for (size_t i = 0; i < n_exts; i++)
		if (add_ext(x, issuer, OBJ_txt2nid(exts[i][0]), exts[i][1]) < 0)
			goto fail;
	if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
		goto fail;
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	return x;
fail:
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	X509_free(x);
	return NULL;
}

/* Does x still do: signed by the authority, 30 more days, every name? */
static int cert_fits(X509 *x, EVP_PKEY *ca_key, const char *const *names, size_t n)
{
	if (X509_verify(x, ca_key) != 1)
		return 0;
	time_t soon = time(NULL) + (time_t)RENEW_DAYS * 86400;
	if (X509_cmp_time(X509_get0_notAfter(x), &soon) <= 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int ip = X509_check_ip_asc(x, names[i], 0);
		if (ip == 1)
			continue;
		if (ip == -2 /* not an address */ && X509_check_host(x, names[i], 0, 0, NULL) == 1)
			continue;
		return 0;
	}
	return 1;
}

static int is_ip(const char *s)
{
	unsigned char b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int tt_cert_ensure(const char *dir, const char *const *names, size_t n, tt_cert_paths *out,
		   tt_error *err)
{
	int rc = -TT_INTERNAL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *x = NULL;
	char ca_key_path[TT_CERT_PATH_MAX];
	memset(out, 0, sizeof(*out));
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return tt_fail(err, TT_INTERNAL, "cannot make the certificate directory %s: %s", dir,
			       strerror(errno));
	if (strlen(dir) > TT_CERT_PATH_MAX - 16)
		return tt_fail(err, TT_INTERNAL, "certificate directory path too long");
	snprintf(out->ca, sizeof(out->ca), "%s/ca.pem", dir);
	snprintf(ca_key_path, sizeof(ca_key_path), "%s/ca.key", dir);
	snprintf(out->cert, sizeof(out->cert), "%s/server.pem", dir);
	snprintf(out->key, sizeof(out->key), "%s/server.key", dir);

	ca = read_cert(out->ca);
	ca_key = read_key(ca_key_path);
	if (!ca || !ca_key || X509_check_private_key(ca, ca_key) != 1) {
		if (ca || ca_key) {
			rc = tt_fail(err, TT_INTERNAL,
				     "%s or %s is damaged or they do not match: move the directory "
				     "away to make a new authority (phones must then trust it again)",
				     out->ca, ca_key_path);
			goto done;
		}
		static const char *const ca_exts[][2] = {
			{"basicConstraints", "critical,CA:TRUE,pathlen:0"},
			{"keyUsage", "critical,keyCertSign,cRLSign"},
			{"subjectKeyIdentifier", "hash"},
		};
		char cn[128], host[64] = "";
		gethostname(host, sizeof(host) - 1);
		snprintf(cn, sizeof(cn), "tutti local authority (%s)", host);
		if (!(ca_key = EVP_EC_gen("P-256")) ||
		    !(ca = make_cert(ca_key, cn, CA_DAYS, NULL, NULL, ca_exts, 3))) {
			rc = tt_fail(err, TT_INTERNAL, "cannot make a certificate authority");
			goto done;
		}
		if ((rc = write_pem(ca_key_path, ca_key, NULL, err)) < 0 ||
		    (rc = write_pem(out->ca, NULL, ca, err)) < 0)
			goto done;
		out->made_ca = 1;
	}

	x = read_cert(out->cert);
	key = read_key(out->key);
	if (x && key && X509_check_private_key(x, key) == 1 && cert_fits(x, ca_key, names, n)) {
		rc = 0;
		goto done;
	}
	X509_free(x);
	x = NULL;
	EVP_PKEY_free(key);
	char san[4096] = "";
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(san + len, sizeof(san) - len, "%s%s:%s", i ? "," : "",
				 is_ip(names[i]) ? "IP" : "DNS", names[i]);
		if (w < 0 || (size_t)w >= sizeof(san) - len) {
			rc = tt_fail(err, TT_INTERNAL, "too many addresses for one certificate");
			goto done;
		}
		len += (size_t)w;
	}
	const char *const exts[][2] = {
		{"basicConstraints", "critical,CA:FALSE"},
		{"keyUsage", "critical,digitalSignature"},
		{"extendedKeyUsage", "serverAuth"},
		{"subjectKeyIdentifier", "hash"},
		{"authorityKeyIdentifier", "keyid:always"},
		{"subjectAltName", san},
	};
	if (!(key = EVP_EC_gen("P-256")) ||
	    !(x = make_cert(key, n ? names[0] : "tutti", CERT_DAYS, ca, ca_key, exts, n ? 6 : 5))) {
		rc = tt_fail(err, TT_INTERNAL, "cannot make the server's certificate");
		goto done;
	}
	if ((rc = write_pem(out->key, key, NULL, err)) < 0 || (rc = write_pem(out->cert, NULL, x, err)) < 0)
		goto done;
	out->made_cert = 1;
	rc = 0;
done:
	X509_free(ca);
	X509_free(x);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	return rc;
}
