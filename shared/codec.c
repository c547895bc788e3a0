/* SPDX-License-Identifier: MIT */
/* codec.c: msgpack-c behind the tt_value interface. */
#include "codec.h"

#include <msgpack.h>
#include <string.h>

struct tt_decoder {
	msgpack_zone zone;
};

tt_decoder *tt_decoder_new(void)
{
	tt_decoder *d = tt_malloc(sizeof(*d));
	if (!msgpack_zone_init(&d->zone, 16384)) {
		free(d);
		tt_assert_fail("msgpack_zone_init failed", __FILE__, __LINE__);
	}
	return d;
}

void tt_decoder_free(tt_decoder *d)
{
	if (!d)
		return;
	msgpack_zone_destroy(&d->zone);
	free(d);
}

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Walk one msgpack value by its headers only, checking that every length
 * fits in the bytes present and every container claims no more items than
 * there are bytes left (each item takes at least one byte). */
static bool prescan(const unsigned char *p, size_t len, size_t *used)
{
	size_t pos = 0;
	uint64_t pending = 1;
	while (pending) {
		if (pos >= len)
			return false;
		pending--;
		unsigned c = p[pos++];
		uint64_t skip = 0, items = 0;
		int hdr = 0;
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
			/* fixint, nil, bool */
		} else if (c >= 0x80 && c <= 0x8f) {
			items = 2u * (c & 0x0f);
		} else if (c >= 0x90 && c <= 0x9f) {
			items = c & 0x0f;
		} else if (c >= 0xa0 && c <= 0xbf) {
			skip = c & 0x1f;
		} else {
			switch (c) {
			case 0xc4: case 0xd9: hdr = 1; break;
			case 0xc5: case 0xda: hdr = 2; break;
			case 0xc6: case 0xdb: hdr = 4; break;
			case 0xc7: hdr = 1; skip = 1; break;
			case 0xc8: hdr = 2; skip = 1; break;
			case 0xc9: hdr = 4; skip = 1; break;
			case 0xca: skip = 4; break;
			case 0xcb: skip = 8; break;
			case 0xcc: case 0xd0: skip = 1; break;
			case 0xcd: case 0xd1: skip = 2; break;
			case 0xce: case 0xd2: skip = 4; break;
			case 0xcf: case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xdc: case 0xdd: case 0xde: case 0xdf: {
				int n = (c == 0xdc || c == 0xde) ? 2 : 4;
				if (len - pos < (size_t)n)
					return false;
				items = be(p + pos, n);
				if (c >= 0xde)
					items *= 2;
				pos += (size_t)n;
				break;
			}
			default:
				return false; /* 0xc1 and nothing else */
			}
			if (hdr) {
				if (len - pos < (size_t)hdr)
					return false;
				skip += be(p + pos, hdr);
				pos += (size_t)hdr;
			}
		}
		if (skip > len - pos)
			return false;
		pos += (size_t)skip;
		if (items > len - pos)
			return false;
		pending += items;
	}
	*used = pos;
	return true;
}

static void convert(tt_arena *a, const msgpack_object *o, tt_value *out)
{
	memset(out, 0, sizeof(*out));
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		out->type = TT_NIL;
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		out->type = TT_BOOL;
		out->v.b = o->via.boolean;
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 <= (uint64_t)INT64_MAX) {
			out->type = TT_INT;
			out->v.i = (int64_t)o->via.u64;
		} else {
			out->type = TT_UINT;
			out->v.u = o->via.u64;
		}
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		out->type = TT_INT;
		out->v.i = o->via.i64;
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		out->type = TT_FLOAT;
		out->v.f = o->via.f64;
		break;
	case MSGPACK_OBJECT_STR:
		out->type = TT_STR;
		out->len = o->via.str.size;
		out->v.s = o->via.str.ptr;
		break;
	case MSGPACK_OBJECT_BIN:
		out->type = TT_BIN;
		out->len = o->via.bin.size;
		out->v.s = o->via.bin.ptr;
		break;
	case MSGPACK_OBJECT_EXT:
		out->type = TT_EXT;
		out->ext_type = o->via.ext.type;
		out->len = o->via.ext.size;
		out->v.s = o->via.ext.ptr;
		break;
	case MSGPACK_OBJECT_ARRAY:
		out->type = TT_ARRAY;
		out->len = o->via.array.size;
		out->v.items = tt_arena_alloc(a, sizeof(tt_value) * (out->len ? out->len : 1));
		for (uint32_t i = 0; i < out->len; i++)
			convert(a, &o->via.array.ptr[i], &out->v.items[i]);
		break;
	case MSGPACK_OBJECT_MAP:
		out->type = TT_MAP;
		out->len = o->via.map.size;
		out->v.pairs = tt_arena_alloc(a, sizeof(tt_pair) * (out->len ? out->len : 1));
		for (uint32_t i = 0; i < out->len; i++) {
			convert(a, &o->via.map.ptr[i].key, &out->v.pairs[i].key);
			convert(a, &o->via.map.ptr[i].val, &out->v.pairs[i].val);
		}
		break;
	}
}

int tt_decode(tt_decoder *d, const void *data, size_t len, size_t *off,
	      tt_arena *arena, tt_value *out, tt_error *err)
{
	size_t used = 0;
	if (*off >= len || !prescan((const unsigned char *)data + *off, len - *off, &used))
		return tt_fail(err, TT_BAD_MESSAGE, "malformed or truncated msgpack at byte %zu", *off);
	msgpack_object obj;
	size_t pos = 0;
	msgpack_unpack_return rc = msgpack_unpack((const char *)data + *off, used, &pos,
						  &d->zone, &obj);
	if ((rc != MSGPACK_UNPACK_SUCCESS && rc != MSGPACK_UNPACK_EXTRA_BYTES) || pos != used) {
		msgpack_zone_clear(&d->zone);
		return tt_fail(err, TT_BAD_MESSAGE, "malformed msgpack at byte %zu (too deep?)", *off);
	}
	convert(arena, &obj, out);
	msgpack_zone_clear(&d->zone);
	*off += used;
	return 0;
}

static int buf_write(void *data, const char *p, size_t n)
{
	tt_buf_append(data, p, n);
	return 0;
}

#define PACKER(b) msgpack_packer pk; msgpack_packer_init(&pk, (b), buf_write)

void tt_enc_nil(tt_buf *b) { PACKER(b); msgpack_pack_nil(&pk); }
void tt_enc_bool(tt_buf *b, bool v)
{
	PACKER(b);
	if (v)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
}
void tt_enc_int(tt_buf *b, int64_t v) { PACKER(b); msgpack_pack_int64(&pk, v); }
void tt_enc_uint(tt_buf *b, uint64_t v) { PACKER(b); msgpack_pack_uint64(&pk, v); }
void tt_enc_float(tt_buf *b, double v) { PACKER(b); msgpack_pack_double(&pk, v); }
void tt_enc_strn(tt_buf *b, const char *s, size_t n)
{
	PACKER(b);
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, s, n);
}
void tt_enc_str(tt_buf *b, const char *s) { tt_enc_strn(b, s, strlen(s)); }
void tt_enc_array(tt_buf *b, uint32_t n) { PACKER(b); msgpack_pack_array(&pk, n); }
void tt_enc_map(tt_buf *b, uint32_t n) { PACKER(b); msgpack_pack_map(&pk, n); }

void tt_enc_value(tt_buf *b, const tt_value *v)
{
	PACKER(b);
	switch (v->type) {
	case TT_NIL: msgpack_pack_nil(&pk); break;
	case TT_BOOL: tt_enc_bool(b, v->v.b); break;
	case TT_INT: msgpack_pack_int64(&pk, v->v.i); break;
	case TT_UINT: msgpack_pack_uint64(&pk, v->v.u); break;
	case TT_FLOAT: msgpack_pack_double(&pk, v->v.f); break;
	case TT_STR:
		msgpack_pack_str(&pk, v->len);
		msgpack_pack_str_body(&pk, v->v.s, v->len);
		break;
	case TT_BIN:
		msgpack_pack_bin(&pk, v->len);
		msgpack_pack_bin_body(&pk, v->v.s, v->len);
		break;
	case TT_EXT:
		msgpack_pack_ext(&pk, v->len, v->ext_type);
		msgpack_pack_ext_body(&pk, v->v.s, v->len);
		break;
	case TT_RAW:
		tt_buf_append(b, v->v.s, v->len);
		break;
	case TT_ARRAY:
		msgpack_pack_array(&pk, v->len);
		for (uint32_t i = 0; i < v->len; i++)
			tt_enc_value(b, &v->v.items[i]);
		break;
	case TT_MAP:
		msgpack_pack_map(&pk, v->len);
		for (uint32_t i = 0; i < v->len; i++) {
			tt_enc_value(b, &v->v.pairs[i].key);
			tt_enc_value(b, &v->v.pairs[i].val);
		}
		break;
	}
}
