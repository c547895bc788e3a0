/* SPDX-License-Identifier: MIT */
/* arena.h: a bump allocator for short-lived trees (a decoded message, a
 * parsed schema file). Reset keeps the first chunk, so the steady state of
 * the server decodes messages without calling malloc. */
#ifndef TT_ARENA_H
#define TT_ARENA_H

#include <stddef.h>

typedef struct tt_arena_chunk tt_arena_chunk;
typedef struct tt_arena {
	tt_arena_chunk *head; /* owned: newest chunk first */
	size_t chunk_size;    /* size of a regular chunk */
} tt_arena;

/* Initialise an empty arena; chunk_size 0 picks 16 KiB. */
void tt_arena_init(tt_arena *a, size_t chunk_size);
/* Memory aligned for any scalar; never NULL (aborts on OOM). */
void *tt_arena_alloc(tt_arena *a, size_t n);
/* Copy n bytes into the arena. */
void *tt_arena_dup(tt_arena *a, const void *p, size_t n);
/* Forget every allocation; keeps one regular chunk for reuse. */
void tt_arena_reset(tt_arena *a);
/* Free everything. Accepts an arena that was only initialised. */
void tt_arena_destroy(tt_arena *a);

#endif
