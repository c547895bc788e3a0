/* SPDX-License-Identifier: MIT */
/* buf.c: growable byte buffer. */
#include "buf.h"

#include <string.h>

#include "common.h"

void tt_buf_init(tt_buf *b, size_t headroom)
{
	b->base = NULL;
	b->head = headroom;
	b->len = 0;
	b->cap = 0;
}

void tt_buf_free(tt_buf *b)
{
	TT_FREE(b->base);
	b->len = 0;
	b->cap = 0;
}

void tt_buf_reserve(tt_buf *b, size_t n)
{
	if (b->base && b->cap - b->len >= n)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	b->base = tt_realloc(b->base, b->head + cap);
	b->cap = cap;
}

void tt_buf_append(tt_buf *b, const void *p, size_t n)
{
	tt_buf_reserve(b, n);
	if (n)
		memcpy(b->base + b->head + b->len, p, n);
	b->len += n;
}
