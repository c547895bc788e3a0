/* SPDX-License-Identifier: MIT */
/* idmap.h: uint64 id -> pointer hash map (open addressing). Ids are never 0. */
#ifndef TT_IDMAP_H
#define TT_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_idmap {
	uint64_t *keys; /* owned; 0 = empty, UINT64_MAX = deleted */
	void **vals;    /* owned */
	size_t cap, len, used;
} tt_idmap;

void tt_idmap_init(tt_idmap *m);
void tt_idmap_free(tt_idmap *m);
void *tt_idmap_get(const tt_idmap *m, uint64_t id);
void tt_idmap_put(tt_idmap *m, uint64_t id, void *val); /* id not present */
void tt_idmap_del(tt_idmap *m, uint64_t id);

#endif
