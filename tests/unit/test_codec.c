/* SPDX-License-Identifier: MIT */
/* test_codec.c: unit tests of shared/codec.c: exact encodings, round trips
 * of every type, decoding msgpack written by other encoders, and refusal of
 * malformed, truncated and oversized-claim input (PROTOCOL.md §1). */
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tt_test.h"

typedef struct fx {
	tt_arena a;
	tt_decoder *d;
	tt_buf b;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	tt_arena_init(&f->a, 0);
	f->d = tt_decoder_new();
	tt_buf_init(&f->b, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	tt_arena_destroy(&f->a);
	tt_decoder_free(f->d);
	tt_buf_free(&f->b);
	free(f);
	return 0;
}

/* Decode all of buf b (one value) and return it. */
static tt_value dec_buf(fx *f, const tt_buf *b)
{
	size_t off = 0;
	tt_value v;
	tt_error err = {0};
	int rc = tt_decode(f->d, tt_buf_data(b), b->len, &off, &f->a, &v, &err);
	if (rc != 0)
		fail_msg("decode failed: %s", err.msg);
	assert_int_equal(off, b->len);
	return v;
}

/* Decoding hex must fail with BAD_MESSAGE, *off untouched. */
static void dec_fails(fx *f, const char *hex)
{
	size_t n, off = 0;
	unsigned char *p = hexbytes(&f->a, hex, &n);
	tt_value v;
	tt_error err = {0};
	int rc = tt_decode(f->d, p, n, &off, &f->a, &v, &err);
	if (rc != -TT_BAD_MESSAGE)
		fail_msg("decoding [%s] gave %d, not -TT_BAD_MESSAGE", hex, rc);
	assert_int_equal(err.code, TT_BAD_MESSAGE);
	assert_int_equal(off, 0);
}

static void test_encode_exact(void **state)
{
	fx *f = *state;
	tt_buf *b = &f->b;
#define ENC(stmt, hex) do { tt_buf_clear(b); stmt; assert_buf_hex(b, hex); } while (0)
	ENC(tt_enc_nil(b), "c0");
	ENC(tt_enc_bool(b, true), "c3");
	ENC(tt_enc_bool(b, false), "c2");
	ENC(tt_enc_int(b, 0), "00");
	ENC(tt_enc_int(b, 127), "7f");
	ENC(tt_enc_int(b, 128), "cc 80");
	ENC(tt_enc_int(b, 255), "cc ff");
	ENC(tt_enc_int(b, 256), "cd 01 00");
	ENC(tt_enc_int(b, 65536), "ce 00 01 00 00");
	ENC(tt_enc_int(b, 4294967296), "cf 00 00 00 01 00 00 00 00");
	ENC(tt_enc_int(b, -1), "ff");
	ENC(tt_enc_int(b, -32), "e0");
	ENC(tt_enc_int(b, -33), "d0 df");
	ENC(tt_enc_int(b, -129), "d1 ff 7f");
	ENC(tt_enc_int(b, INT64_MIN), "d3 80 00 00 00 00 00 00 00");
	ENC(tt_enc_uint(b, 5), "05");
	ENC(tt_enc_uint(b, UINT64_MAX), "cf ff ff ff ff ff ff ff ff");
	ENC(tt_enc_float(b, 1.5), "cb 3f f8 00 00 00 00 00 00");
	ENC(tt_enc_float(b, 3.0), "cb 40 08 00 00 00 00 00 00"); /* stays a float */
	ENC(tt_enc_str(b, ""), "a0");
	ENC(tt_enc_str(b, "ab"), "a2 61 62");
	ENC(tt_enc_strn(b, "abc", 1), "a1 61");
	ENC(tt_enc_array(b, 0), "90");
	ENC(tt_enc_array(b, 15), "9f");
	ENC(tt_enc_array(b, 16), "dc 00 10");
	ENC(tt_enc_array(b, 65536), "dd 00 01 00 00");
	ENC(tt_enc_map(b, 1), "81");
	ENC(tt_enc_map(b, 16), "de 00 10");
	/* a whole message */
	ENC((tt_enc_array(b, 3), tt_enc_uint(b, 64), tt_enc_uint(b, 7), tt_enc_nil(b)), "93 40 07 c0");
#undef ENC
	/* str8 header for 32 bytes */
	tt_buf_clear(b);
	tt_enc_strn(b, "0123456789abcdef0123456789abcdef", 32);
	assert_int_equal(b->len, 34);
	assert_int_equal(tt_buf_data(b)[0], 0xd9);
	assert_int_equal(tt_buf_data(b)[1], 32);
}

static void test_encode_value(void **state)
{
	fx *f = *state;
	tt_buf *b = &f->b;
	tt_value v = tj(&f->a, "{\"a\": [1, -1, 1.5, null, true, \"x\"]}");
	tt_buf_clear(b);
	tt_enc_value(b, &v);
	assert_buf_hex(b, "81 a1 61 96 01 ff cb 3f f8 00 00 00 00 00 00 c0 c3 a1 78");
	/* TT_RAW bytes are appended as they are */
	tt_value raw = {.type = TT_RAW, .len = 3};
	raw.v.s = "\x92\x01\x02";
	tt_value arr = {.type = TT_ARRAY, .len = 1};
	arr.v.items = &raw;
	tt_buf_clear(b);
	tt_enc_value(b, &arr);
	assert_buf_hex(b, "91 92 01 02");
	/* bin, ext, uint */
	tt_value x = tm(&f->a, "93 c4 02 00 ff c7 03 05 61 62 63 cf ff ff ff ff ff ff ff ff");
	tt_buf_clear(b);
	tt_enc_value(b, &x);
	assert_buf_hex(b, "93 c4 02 00 ff c7 03 05 61 62 63 cf ff ff ff ff ff ff ff ff");
}

/* Encode v, decode it, and compare. */
static void round_trip(fx *f, const tt_value *v)
{
	tt_buf_clear(&f->b);
	tt_enc_value(&f->b, v);
	tt_value back = dec_buf(f, &f->b);
	if (!tt_value_equal(v, &back)) {
		char r1[64], r2[64];
		tt_value_repr(v, r1, sizeof(r1));
		tt_value_repr(&back, r2, sizeof(r2));
		fail_msg("round trip of %s gave %s", r1, r2);
	}
}

static void test_round_trip_scalars(void **state)
{
	fx *f = *state;
	static const int64_t ints[] = {
		0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL, INT64_MAX,
		-1, -32, -33, -128, -129, -32768, -32769, -2147483648LL, -2147483649LL, INT64_MIN};
	for (size_t i = 0; i < sizeof(ints) / sizeof(*ints); i++) {
		tt_value v = tt_int(ints[i]);
		round_trip(f, &v);
		tt_value back = dec_buf(f, &f->b);
		assert_int_equal(back.type, TT_INT); /* every int64 decodes as TT_INT */
	}
	tt_value u = {.type = TT_UINT};
	u.v.u = (uint64_t)INT64_MAX + 1;
	round_trip(f, &u);
	u.v.u = UINT64_MAX;
	round_trip(f, &u);
	static const double fl[] = {0.0, -0.0, 0.5, -1e-300, 1e300, 3.0, INFINITY, -INFINITY,
				     4.9e-324, 1.7976931348623157e308};
	for (size_t i = 0; i < sizeof(fl) / sizeof(*fl); i++) {
		tt_value v = tt_float(fl[i]);
		round_trip(f, &v);
		tt_value back = dec_buf(f, &f->b);
		assert_int_equal(back.type, TT_FLOAT);
		assert_memory_equal(&back.v.f, &fl[i], sizeof(double)); /* bit exact, -0 too */
	}
	tt_value nan = tt_float(NAN);
	tt_buf_clear(&f->b);
	tt_enc_value(&f->b, &nan);
	tt_value back = dec_buf(f, &f->b);
	assert_int_equal(back.type, TT_FLOAT);
	assert_true(isnan(back.v.f));
	tt_value s[] = {tt_nil(), tt_bool(true), tt_bool(false), tt_str(""), tt_str("héllo")};
	for (size_t i = 0; i < sizeof(s) / sizeof(*s); i++)
		round_trip(f, &s[i]);
}

static void test_round_trip_sizes(void **state)
{
	fx *f = *state;
	/* string, bin and containers around every header boundary */
	static const uint32_t sizes[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000};
	char *big = malloc(70000);
	for (int i = 0; i < 70000; i++)
		big[i] = (char)('a' + i % 26);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		uint32_t n = sizes[i];
		tt_value s = tt_strn(big, n);
		round_trip(f, &s);
		tt_value bin = {.type = TT_BIN, .len = n};
		bin.v.s = big;
		round_trip(f, &bin);
		tt_value arr = {.type = TT_ARRAY, .len = n};
		arr.v.items = tt_arena_alloc(&f->a, sizeof(tt_value) * (n ? n : 1));
		for (uint32_t k = 0; k < n; k++)
			arr.v.items[k] = tt_int(k);
		round_trip(f, &arr);
		tt_value map = {.type = TT_MAP, .len = n};
		map.v.pairs = tt_arena_alloc(&f->a, sizeof(tt_pair) * (n ? n : 1));
		for (uint32_t k = 0; k < n; k++) {
			map.v.pairs[k].key = tt_int(k);
			map.v.pairs[k].val = tt_nil();
		}
		round_trip(f, &map);
		tt_arena_reset(&f->a);
	}
	/* ext of every fixext size and ext8/16 */
	static const uint32_t ext_sizes[] = {1, 2, 4, 8, 16, 3, 255, 256, 70000};
	for (size_t i = 0; i < sizeof(ext_sizes) / sizeof(*ext_sizes); i++) {
		tt_value e = {.type = TT_EXT, .ext_type = -5, .len = ext_sizes[i]};
		e.v.s = big;
		round_trip(f, &e);
		tt_value back = dec_buf(f, &f->b);
		assert_int_equal(back.ext_type, -5);
		assert_int_equal(back.len, ext_sizes[i]);
	}
	free(big);
}

static void test_round_trip_nested(void **state)
{
	fx *f = *state;
	tt_value v = tj(&f->a, "{\"states\": [[\"demo\", 1, 0], [\"demo\", 2, 7]],"
			       " \"x\": {\"y\": {\"z\": [[], {}, [null, false, -3.25]]}}}");
	round_trip(f, &v);
	/* map with non-string keys and duplicate keys survives as is */
	tt_value m = tm(&f->a, "83 01 02 91 01 c0 01 03");
	round_trip(f, &m);
	tt_value back = dec_buf(f, &f->b);
	assert_int_equal(back.len, 3);
	assert_int_equal(back.v.pairs[2].val.v.i, 3);
}

static void test_decode_foreign(void **state)
{
	fx *f = *state;
	tt_arena *a = &f->a;
	tt_value v;
	/* float32 widened to float64 */
	v = tm(a, "ca 3f c0 00 00");
	assert_int_equal(v.type, TT_FLOAT);
	assert_double_equal(v.v.f, 1.5);
	v = tm(a, "ca 7f c0 00 00");
	assert_true(isnan(v.v.f));
	/* every integer width lands in TT_INT while it fits */
	v = tm(a, "cc ff");
	assert_int_equal(v.type, TT_INT);
	assert_int_equal(v.v.i, 255);
	v = tm(a, "cd ff ff");
	assert_int_equal(v.v.i, 65535);
	v = tm(a, "ce ff ff ff ff");
	assert_true(v.v.i == 4294967295LL);
	v = tm(a, "cf 00 00 00 00 00 00 00 01"); /* wide encoding of a small value */
	assert_int_equal(v.type, TT_INT);
	assert_int_equal(v.v.i, 1);
	v = tm(a, "cf 7f ff ff ff ff ff ff ff");
	assert_int_equal(v.type, TT_INT);
	assert_true(v.v.i == INT64_MAX);
	v = tm(a, "cf 80 00 00 00 00 00 00 00");
	assert_int_equal(v.type, TT_UINT);
	assert_true(v.v.u == (uint64_t)INT64_MAX + 1);
	v = tm(a, "d0 80");
	assert_int_equal(v.v.i, -128);
	v = tm(a, "d1 80 00");
	assert_int_equal(v.v.i, -32768);
	v = tm(a, "d2 80 00 00 00");
	assert_true(v.v.i == -2147483648LL);
	v = tm(a, "d3 80 00 00 00 00 00 00 00");
	assert_true(v.v.i == INT64_MIN);
	v = tm(a, "d3 00 00 00 00 00 00 00 05"); /* int64 encoding of a positive */
	assert_int_equal(v.type, TT_INT);
	assert_int_equal(v.v.i, 5);
	v = tm(a, "e0");
	assert_int_equal(v.v.i, -32);
	/* strings of every header */
	v = tm(a, "d9 03 61 62 63");
	assert_true(tt_str_eq(&v, "abc"));
	v = tm(a, "da 00 02 68 69");
	assert_true(tt_str_eq(&v, "hi"));
	v = tm(a, "db 00 00 00 01 7a");
	assert_true(tt_str_eq(&v, "z"));
	v = tm(a, "c5 00 01 00");
	assert_int_equal(v.type, TT_BIN);
	assert_int_equal(v.len, 1);
	v = tm(a, "c6 00 00 00 00");
	assert_int_equal(v.type, TT_BIN);
	assert_int_equal(v.len, 0);
	/* ext: fixext 1/2/4/8/16, ext8 with zero bytes, ext16, ext32 */
	v = tm(a, "d4 ff 2a");
	assert_int_equal(v.type, TT_EXT);
	assert_int_equal(v.ext_type, -1);
	assert_int_equal(v.len, 1);
	assert_int_equal((unsigned char)v.v.s[0], 0x2a);
	v = tm(a, "d5 01 00 00");
	assert_int_equal(v.len, 2);
	v = tm(a, "d6 01 00 00 00 00");
	assert_int_equal(v.len, 4);
	v = tm(a, "d7 01 00 00 00 00 00 00 00 00");
	assert_int_equal(v.len, 8);
	v = tm(a, "d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
	assert_int_equal(v.len, 16);
	v = tm(a, "c7 00 07");
	assert_int_equal(v.type, TT_EXT);
	assert_int_equal(v.ext_type, 7);
	assert_int_equal(v.len, 0);
	v = tm(a, "c8 00 01 07 41");
	assert_int_equal(v.len, 1);
	v = tm(a, "c9 00 00 00 02 07 41 42");
	assert_int_equal(v.len, 2);
	/* array16/32, map16/32 with few items */
	v = tm(a, "dc 00 02 01 02");
	assert_int_equal(v.type, TT_ARRAY);
	assert_int_equal(v.len, 2);
	v = tm(a, "dd 00 00 00 01 c0");
	assert_int_equal(v.len, 1);
	v = tm(a, "de 00 01 a1 6b 01");
	assert_int_equal(v.type, TT_MAP);
	assert_int_equal(v.len, 1);
	assert_true(tt_str_eq(&v.v.pairs[0].key, "k"));
	v = tm(a, "df 00 00 00 00");
	assert_int_equal(v.type, TT_MAP);
	assert_int_equal(v.len, 0);
	/* a protocol message as the JavaScript client sends it */
	v = tm(a, "94 07 cd 01 00 02 82 a6 76 6f 6c 75 6d 65 cb 3f e0 00 00 00 00 00 00 a4 62 61 6e 67 c3");
	assert_int_equal(v.type, TT_ARRAY);
	assert_int_equal(v.len, 4);
	assert_int_equal(v.v.items[0].v.i, 7);
	assert_int_equal(v.v.items[1].v.i, 256);
	assert_double_equal(tt_map_get(&v.v.items[3], "volume")->v.f, 0.5);
	assert_true(tt_map_get(&v.v.items[3], "bang")->v.b);
}

static void test_decode_zero_copy(void **state)
{
	fx *f = *state;
	unsigned char msg[] = {0x92, 0xa3, 'a', 'b', 'c', 0xc4, 0x01, 0x09};
	size_t off = 0;
	tt_value v;
	tt_error err;
	assert_int_equal(tt_decode(f->d, msg, sizeof(msg), &off, &f->a, &v, &err), 0);
	assert_ptr_equal(v.v.items[0].v.s, (const char *)msg + 2);
	assert_ptr_equal(v.v.items[1].v.s, (const char *)msg + 7);
}

static void test_back_to_back(void **state)
{
	fx *f = *state;
	size_t n;
	/* [1] [2, "x"] nil {"a": 1} 7 */
	unsigned char *p = hexbytes(&f->a, "91 01 92 02 a1 78 c0 81 a1 61 01 07", &n);
	size_t off = 0;
	tt_value v;
	tt_error err;
	static const size_t ends[] = {2, 6, 7, 11, 12};
	static const int types[] = {TT_ARRAY, TT_ARRAY, TT_NIL, TT_MAP, TT_INT};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), 0);
		assert_int_equal(off, ends[i]);
		assert_int_equal(v.type, types[i]);
	}
	assert_int_equal(v.v.i, 7);
	/* at the end: nothing left to decode */
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), -TT_BAD_MESSAGE);
	assert_int_equal(off, n);
	/* a good value then garbage: the first decodes, the second fails and
	 * leaves *off on it, and the error names its byte */
	p = hexbytes(&f->a, "91 01 c1 00", &n);
	off = 0;
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), 0);
	assert_int_equal(off, 2);
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), -TT_BAD_MESSAGE);
	assert_int_equal(off, 2);
	assert_substr(err.msg, "byte 2");
	/* a value truncated after a good one */
	p = hexbytes(&f->a, "01 92 01", &n);
	off = 0;
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), 0);
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), -TT_BAD_MESSAGE);
	assert_int_equal(off, 1);
	/* the decoder keeps working after errors */
	p = hexbytes(&f->a, "93 01 02 03", &n);
	off = 0;
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), 0);
	assert_int_equal(v.len, 3);
}

static void test_malformed(void **state)
{
	fx *f = *state;
	dec_fails(f, "c1");       /* never used */
	dec_fails(f, "91 c1");
	dec_fails(f, "81 c1 01");
	dec_fails(f, "92 01");    /* array missing an item */
	dec_fails(f, "81 a1 61"); /* map missing a value */
	dec_fails(f, "a5 61 62"); /* str claims 5, has 2 */
	dec_fails(f, "d9");       /* str8 without its length */
	dec_fails(f, "d9 05 61");
	dec_fails(f, "da 00");
	dec_fails(f, "db 00 00 01 00 61");
	dec_fails(f, "c4 02 00");
	dec_fails(f, "c6 ff ff ff ff 00");
	dec_fails(f, "c7 02 01 00"); /* ext8 claims 2 data bytes, has 1 */
	dec_fails(f, "c7 00");       /* ext8 without its type byte */
	dec_fails(f, "d4 01");       /* fixext1 without data */
	dec_fails(f, "d8 01 00 00");
	dec_fails(f, "ca 00 00");
	dec_fails(f, "cb 00 00 00 00 00 00 00");
	dec_fails(f, "cc");
	dec_fails(f, "cd 00");
	dec_fails(f, "cf 00 00 00 00 00 00 00");
	dec_fails(f, "d3 00");
	dec_fails(f, "dc 00");
	dec_fails(f, "dc 00 02 01");
	dec_fails(f, "de 00 01 01");
	dec_fails(f, "df 00 00 00");
	/* error message says where */
	size_t n, off = 0;
	unsigned char *p = hexbytes(&f->a, "c1", &n);
	tt_value v;
	tt_error err = {0};
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), -TT_BAD_MESSAGE);
	assert_substr(err.msg, "byte 0");
	/* err may be NULL */
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, NULL), -TT_BAD_MESSAGE);
	/* empty input and an offset past the end */
	assert_int_equal(tt_decode(f->d, p, 0, &off, &f->a, &v, &err), -TT_BAD_MESSAGE);
	off = 5;
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), -TT_BAD_MESSAGE);
	assert_int_equal(off, 5);
}

/* Every proper prefix of a valid message is refused, *off untouched. */
static void test_truncated_prefixes(void **state)
{
	fx *f = *state;
	size_t n;
	unsigned char *p = hexbytes(&f->a,
		"95 07 cd 01 00 ce 00 01 00 00 84 a1 61 cb 3f e0 00 00 00 00 00 00"
		" a1 62 92 c3 c2 a1 63 d9 03 78 79 7a a1 64 c7 01 05 ff"
		" 93 dc 00 01 c0 de 00 00 c5 00 01 00", &n);
	for (size_t len = 0; len < n; len++) {
		size_t off = 0;
		tt_value v;
		tt_error err = {0};
		int rc = tt_decode(f->d, p, len, &off, &f->a, &v, &err);
		if (rc != -TT_BAD_MESSAGE || off != 0)
			fail_msg("prefix of %zu bytes: rc %d, off %zu", len, rc, off);
	}
	size_t off = 0;
	tt_value v;
	tt_error err;
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), 0);
	assert_int_equal(off, n);
	assert_int_equal(v.len, 5);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Peak virtual size of this process, in KiB (VmPeak of /proc/self/status). */
static long vm_peak_kib(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmPeak: %ld", &kib) == 1)
			break;
	if (fp)
		fclose(fp);
	return kib;
}

/* Run fn in a child process; returns how much its peak virtual size grew,
 * in MiB (-1 when the child failed). A fresh process so that earlier tests'
 * peaks cannot hide this one's. */
static long peak_growth_mib(void (*fn)(void))
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		long before = vm_peak_kib();
		fn();
		long growth = (vm_peak_kib() - before) / 1024;
		ssize_t w = write(fds[1], &growth, sizeof(growth));
		_exit(w == (ssize_t)sizeof(growth) ? 0 : 1);
	}
	close(fds[1]);
	long growth = -1;
	if (read(fds[0], &growth, sizeof(growth)) != (ssize_t)sizeof(growth))
		growth = -1;
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? growth : -1;
}

static volatile int g_claim_rc;

static void decode_huge_claims(void)
{
	tt_decoder *d = tt_decoder_new();
	tt_arena a;
	tt_arena_init(&a, 0);
	/* array32 claiming 16M items, map32 claiming 2^32-1 pairs, and nested
	 * claims that each fit the bytes left but not together */
	static const unsigned char inputs[][12] = {
		{0xdd, 0x00, 0xff, 0xff, 0xff},
		{0xdf, 0xff, 0xff, 0xff, 0xff},
		{0xdd, 0xff, 0xff, 0xff, 0xff},
		{0x91, 0xdd, 0x00, 0xff, 0xff, 0xff, 0xc0},
		{0xdc, 0xff, 0xff, 0xc0, 0xc0},
		{0xc6, 0xff, 0xff, 0xff, 0xff, 0x00},
	};
	static const size_t lens[] = {5, 5, 5, 7, 5, 6};
	int rc = 0;
	for (size_t i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
		size_t off = 0;
		tt_value v;
		if (tt_decode(d, inputs[i], lens[i], &off, &a, &v, NULL) != -TT_BAD_MESSAGE)
			rc = 1;
	}
	/* 64 KiB of nils under an array32 claiming 16M */
	size_t n = 65536;
	unsigned char *big = calloc(1, n);
	big[0] = 0xdd, big[1] = 0x00, big[2] = 0xff, big[3] = 0xff, big[4] = 0xff;
	memset(big + 5, 0xc0, n - 5);
	size_t off = 0;
	tt_value v;
	if (tt_decode(d, big, n, &off, &a, &v, NULL) != -TT_BAD_MESSAGE)
		rc = 1;
	free(big);
	g_claim_rc = rc;
	tt_arena_destroy(&a);
	tt_decoder_free(d);
}

static void alloc_256mib(void)
{
	void *volatile p = malloc(256u << 20);
	free(p);
}

static void test_huge_claims_rejected_fast(void **state)
{
	(void)state;
	/* in this process: the answer and the time */
	double t0 = now();
	for (int i = 0; i < 100; i++)
		decode_huge_claims();
	double dt = now() - t0;
	assert_int_equal(g_claim_rc, 0);
	if (dt > 1.0)
		fail_msg("100 rounds of huge claims took %.3f s", dt);
	/* the detector sees a 256 MiB allocation, so it can fail... */
	long ctl = peak_growth_mib(alloc_256mib);
	if (ctl < 200)
		fail_msg("peak detector broken: a 256 MiB malloc grew the peak by %ld MiB", ctl);
	/* ...and the huge claims allocate nothing of their size (16M items of a
	 * msgpack_object would be 384 MiB) */
	long grow = peak_growth_mib(decode_huge_claims);
	assert_true(grow >= 0);
	if (grow > 16)
		fail_msg("decoding huge claims grew the peak virtual size by %ld MiB", grow);
}

static void test_large_valid_array(void **state)
{
	fx *f = *state;
	/* an array32 of 100000 nils is fine: the claim matches the bytes */
	size_t n = 5 + 100000;
	unsigned char *p = malloc(n);
	p[0] = 0xdd, p[1] = 0x00, p[2] = 0x01, p[3] = 0x86, p[4] = 0xa0;
	memset(p + 5, 0xc0, 100000);
	size_t off = 0;
	tt_value v;
	tt_error err;
	assert_int_equal(tt_decode(f->d, p, n, &off, &f->a, &v, &err), 0);
	assert_int_equal(v.len, 100000);
	assert_int_equal(v.v.items[99999].type, TT_NIL);
	/* one byte short */
	off = 0;
	assert_int_equal(tt_decode(f->d, p, n - 1, &off, &f->a, &v, &err), -TT_BAD_MESSAGE);
	free(p);
}

static void nested_bytes(unsigned char *p, int depth)
{
	memset(p, 0x91, (size_t)depth);
	p[depth] = 0xc0;
}

static void test_depth_limit(void **state)
{
	fx *f = *state;
	unsigned char p[200];
	tt_value v;
	tt_error err;
	size_t off = 0;
	/* TT_CODEC_MAX_DEPTH nested arrays are accepted... */
	nested_bytes(p, TT_CODEC_MAX_DEPTH);
	assert_int_equal(tt_decode(f->d, p, TT_CODEC_MAX_DEPTH + 1u, &off, &f->a, &v, &err), 0);
	assert_int_equal(tt_value_depth(&v), TT_CODEC_MAX_DEPTH);
	/* ...one more is refused, as are much deeper ones (no stack overflow) */
	for (int depth = TT_CODEC_MAX_DEPTH + 1; depth < 200; depth += 50) {
		nested_bytes(p, depth);
		off = 0;
		assert_int_equal(tt_decode(f->d, p, (size_t)depth + 1, &off, &f->a, &v, &err),
				 -TT_BAD_MESSAGE);
		assert_int_equal(off, 0);
	}
	/* maps count the same */
	unsigned char m[200];
	size_t k = 0;
	for (int i = 0; i < TT_CODEC_MAX_DEPTH + 1; i++) {
		m[k++] = 0x81;
		m[k++] = 0x00;
	}
	m[k++] = 0xc0;
	off = 0;
	assert_int_equal(tt_decode(f->d, m, k, &off, &f->a, &v, &err), -TT_BAD_MESSAGE);
	off = 0;
	assert_int_equal(tt_decode(f->d, m + 2, k - 2, &off, &f->a, &v, &err), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_encode_exact),
		T(test_encode_value),
		T(test_round_trip_scalars),
		T(test_round_trip_sizes),
		T(test_round_trip_nested),
		T(test_decode_foreign),
		T(test_decode_zero_copy),
		T(test_back_to_back),
		T(test_malformed),
		T(test_truncated_prefixes),
		T(test_huge_claims_rejected_fast),
		T(test_large_valid_array),
		T(test_depth_limit),
	};
#undef T
	return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
