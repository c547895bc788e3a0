/* SPDX-License-Identifier: MIT */
/* idmap.c: linear probing with tombstones, grown at 50% load. */
#include "idmap.h"

#include "common.h"

#define DELETED UINT64_MAX

static size_t slot(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

void tt_idmap_init(tt_idmap *m)
{
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->len = m->used = 0;
}

void tt_idmap_free(tt_idmap *m)
{
	TT_FREE(m->keys);
	TT_FREE(m->vals);
	m->cap = m->len = m->used = 0;
}

void *tt_idmap_get(const tt_idmap *m, uint64_t id)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == id)
			return m->vals[i];
		if (m->keys[i] == 0)
			return NULL;
	}
}

static void grow(tt_idmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	while (m->len * 2 >= cap)
		cap *= 2;
	uint64_t *keys = tt_calloc(cap, sizeof(*keys));
	void **vals = tt_calloc(cap, sizeof(*vals));
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] == 0 || m->keys[i] == DELETED)
			continue;
		size_t j = slot(m->keys[i], cap);
		while (keys[j])
			j = (j + 1) & (cap - 1);
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	m->used = m->len;
}

void tt_idmap_put(tt_idmap *m, uint64_t id, void *val)
{
	tt_assert(id != 0 && id != DELETED);
	if ((m->used + 1) * 2 > m->cap)
		grow(m);
	size_t i = slot(id, m->cap);
	while (m->keys[i] != 0 && m->keys[i] != DELETED)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == 0)
		m->used++;
	m->keys[i] = id;
	m->vals[i] = val;
	m->len++;
}

void tt_idmap_del(tt_idmap *m, uint64_t id)
{
	if (!m->cap || id == 0 || id == DELETED)
		return;
	for (size_t i = slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == id) {
			m->keys[i] = DELETED;
			m->vals[i] = NULL;
			m->len--;
			return;
		}
		if (m->keys[i] == 0)
			return;
	}
}
