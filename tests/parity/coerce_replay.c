/* SPDX-License-Identifier: MIT */
/* coerce_replay.c: runs cases through the server's class parsing and value
 * coercion (shared/schema.c) and prints the verdicts, so coerce.test.mjs can
 * check that web/tutti.js coerces every value the same way.
 *
 * stdin: records, each a 4-byte big-endian length and that many bytes of
 * one msgpack value (framed, so an undecodable value does not lose the rest):
 *   [0, className, description]  make it the current class
 *   [1, paramName, value]        coerce value for a param of the current class
 * stdout: one record (framed the same way) per input record:
 *   [0, expandedDescription] or [0, coercedValue] on success,
 *   [code, message] on error (code: a tt_code, e.g. 31 BAD_VALUE).
 * Framed output lets the reader decode each verdict on its own, so one value
 * its decoder refuses does not hide the others.
 * Exits 1 only on input it cannot frame. */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "codec.h"
#include "common.h"
#include "schema.h"
#include "value.h"

static unsigned char *read_all(FILE *f, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	unsigned char *p = tt_malloc(cap);
	size_t got;
	while ((got = fread(p + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			p = tt_realloc(p, cap);
		}
	}
	*len = n;
	return p;
}

static void put_error(tt_buf *out, const tt_error *err)
{
	tt_enc_array(out, 2);
	tt_enc_int(out, err->code);
	tt_enc_str(out, err->msg);
}

/* One record: a class or a value. Returns the verdict in out. */
static void run_record(tt_decoder *d, tt_arena *arena, const unsigned char *rec, size_t len,
		       tt_class **cls, tt_buf *out)
{
	tt_value v, res;
	tt_error err = {0};
	size_t off = 0;

	if (tt_decode(d, rec, len, &off, arena, &v, &err) < 0) {
		put_error(out, &err);
		return;
	}
	if (off != len || v.type != TT_ARRAY || v.len != 3 || v.v.items[0].type != TT_INT ||
	    v.v.items[1].type != TT_STR) {
		tt_fail(&err, TT_BAD_MESSAGE, "record is not [kind, name, x]");
		put_error(out, &err);
		return;
	}
	const tt_value *name = &v.v.items[1];
	if (v.v.items[0].v.i == 0) {
		tt_class_free(*cls);
		*cls = NULL;
		if (tt_class_create(name->v.s, name->len, &v.v.items[2], cls, &err) < 0) {
			put_error(out, &err);
			return;
		}
		res.type = TT_RAW;
		res.len = (uint32_t)(*cls)->desc.len;
		res.v.s = (const char *)tt_buf_data(&(*cls)->desc);
	} else {
		int k = *cls ? tt_class_param_index(*cls, name->v.s, name->len) : -1;
		if (k < 0) {
			tt_fail(&err, TT_UNKNOWN_PARAM, "no current class or no param \"%.*s\"",
				(int)name->len, name->v.s);
			put_error(out, &err);
			return;
		}
		if (tt_param_coerce(*cls, &(*cls)->params[k], &v.v.items[2], &res, &err) < 0) {
			put_error(out, &err);
			return;
		}
	}
	tt_enc_array(out, 2);
	tt_enc_int(out, 0);
	tt_enc_value(out, &res);
}

int main(void)
{
	size_t len, pos = 0;
	unsigned char *in = read_all(stdin, &len);
	tt_decoder *d = tt_decoder_new();
	tt_arena arena;
	tt_buf out;
	tt_class *cls = NULL;
	int rc = 0;

	tt_arena_init(&arena, 1 << 16);
	tt_buf_init(&out, 0);
	while (pos < len) {
		if (len - pos < 4) {
			fprintf(stderr, "coerce_replay: truncated length at byte %zu\n", pos);
			rc = 1;
			break;
		}
		size_t n = (size_t)in[pos] << 24 | (size_t)in[pos + 1] << 16 | (size_t)in[pos + 2] << 8 | in[pos + 3];
		pos += 4;
		if (n > len - pos) {
			fprintf(stderr, "coerce_replay: record of %zu bytes at byte %zu is truncated\n", n, pos);
			rc = 1;
			break;
		}
		size_t at = out.len;
		tt_buf_append(&out, "\0\0\0\0", 4);
		run_record(d, &arena, in + pos, n, &cls, &out);
		size_t m = out.len - at - 4;
		unsigned char *h = tt_buf_data(&out) + at;
		h[0] = (unsigned char)(m >> 24);
		h[1] = (unsigned char)(m >> 16);
		h[2] = (unsigned char)(m >> 8);
		h[3] = (unsigned char)m;
		tt_arena_reset(&arena);
		pos += n;
	}
	if (fwrite(tt_buf_data(&out), 1, out.len, stdout) != out.len)
		rc = 1;
	tt_class_free(cls);
	tt_buf_free(&out);
	tt_arena_destroy(&arena);
	tt_decoder_free(d);
	free(in);
	return rc;
}
