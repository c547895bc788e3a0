/* SPDX-License-Identifier: MIT */
/* buf.h: a growable byte buffer. Optional headroom in front of the data lets
 * the network layer put a WebSocket header before an encoded message without
 * moving it: a message is encoded once, in place, and written as it is. */
#ifndef TT_BUF_H
#define TT_BUF_H

#include <stddef.h>

typedef struct tt_buf {
	unsigned char *base; /* owned: headroom + data */
	size_t head;         /* headroom bytes before data */
	size_t len;          /* bytes of data */
	size_t cap;          /* bytes available after headroom */
} tt_buf;

void tt_buf_init(tt_buf *b, size_t headroom);
void tt_buf_free(tt_buf *b);
/* Make room for n more bytes. */
void tt_buf_reserve(tt_buf *b, size_t n);
void tt_buf_append(tt_buf *b, const void *p, size_t n);
/* Never NULL arithmetic: an empty, never-grown buffer has no base. */
static inline unsigned char *tt_buf_data(const tt_buf *b)
{
	return b->base ? b->base + b->head : (unsigned char *)"";
}
static inline void tt_buf_clear(tt_buf *b) { b->len = 0; }

#endif
