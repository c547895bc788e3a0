/* SPDX-License-Identifier: MIT */
/* arena.c: bump allocator. */
#include "arena.h"

#include <stdalign.h>
#include <string.h>

#include "common.h"

struct tt_arena_chunk {
	tt_arena_chunk *next;
	size_t size, used;
	alignas(max_align_t) unsigned char data[];
};

void tt_arena_init(tt_arena *a, size_t chunk_size)
{
	a->head = NULL;
	a->chunk_size = chunk_size ? chunk_size : 16384;
}

void *tt_arena_alloc(tt_arena *a, size_t n)
{
	const size_t align = alignof(max_align_t);
	n = (n + align - 1) & ~(align - 1);
	if (!a->head || a->head->size - a->head->used < n) {
		size_t size = n > a->chunk_size ? n : a->chunk_size;
		tt_arena_chunk *c = tt_malloc(sizeof(*c) + size);
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = a->head->data + a->head->used;
	a->head->used += n;
	return p;
}

void *tt_arena_dup(tt_arena *a, const void *p, size_t n)
{
	void *d = tt_arena_alloc(a, n);
	if (n)
		memcpy(d, p, n);
	return d;
}

void tt_arena_reset(tt_arena *a)
{
	tt_arena_chunk *keep = NULL;
	tt_arena_chunk *c = a->head;
	while (c) {
		tt_arena_chunk *next = c->next;
		if (!keep && c->size == a->chunk_size) {
			keep = c;
			keep->used = 0;
			keep->next = NULL;
		} else {
			free(c);
		}
		c = next;
	}
	a->head = keep;
}

void tt_arena_destroy(tt_arena *a)
{
	tt_arena_chunk *c = a->head;
	while (c) {
		tt_arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
}
