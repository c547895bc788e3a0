/* SPDX-License-Identifier: MIT */
/* codec.h: msgpack in and out, the only door to msgpack-c (codec.c is the
 * only file that includes msgpack.h). Decoding yields tt_value trees;
 * encoding appends to a tt_buf so a broadcast is encoded once, in place,
 * after the WebSocket headroom. */
#ifndef TT_CODEC_H
#define TT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "common.h"
#include "value.h"

/* Nesting limit of a whole message: msgpack-c's decoder stack
 * (MSGPACK_EMBED_STACK_SIZE); deeper input is refused as malformed.
 * `any` values have their own lower cap (TT_ANY_MAX_DEPTH). */
#define TT_CODEC_MAX_DEPTH 32

typedef struct tt_decoder tt_decoder;

/* A decoder owns the scratch memory of msgpack-c (its zone); reusing one
 * decoder for every message keeps decoding free of malloc in steady state. */
tt_decoder *tt_decoder_new(void);
void tt_decoder_free(tt_decoder *d);

/* Decode the msgpack value starting at data[*off] into a tree allocated in
 * arena. Strings point into data, which must outlive the tree. On success
 * *off moves past the value and 0 is returned; on malformed or truncated
 * input, or a container claiming more items than there are bytes left,
 * -TT_BAD_MESSAGE with err filled and *off unchanged. Before anything is
 * allocated, container sizes are checked against the bytes present, because
 * msgpack-c allocates a claimed array up front (5 bytes claiming 16.7 M
 * elements made it reserve 400 MB). */
int tt_decode(tt_decoder *d, const void *data, size_t len, size_t *off,
	      tt_arena *arena, tt_value *out, tt_error *err);

/* Encoders: append one msgpack item to b. */
void tt_enc_nil(tt_buf *b);
void tt_enc_bool(tt_buf *b, bool v);
void tt_enc_int(tt_buf *b, int64_t v);
void tt_enc_uint(tt_buf *b, uint64_t v);
void tt_enc_float(tt_buf *b, double v);
void tt_enc_strn(tt_buf *b, const char *s, size_t n);
void tt_enc_str(tt_buf *b, const char *s); /* NUL-terminated */
void tt_enc_array(tt_buf *b, uint32_t n);
void tt_enc_map(tt_buf *b, uint32_t n);
/* Any tree; TT_RAW bytes are appended as they are. */
void tt_enc_value(tt_buf *b, const tt_value *v);

#endif
