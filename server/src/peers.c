/* SPDX-License-Identifier: MIT */
/* peers.c: a hash map from address to counters. An entry lives while the
 * address has connections or a recent session start; idle ones are
 * dropped when the map grows, so it stays as large as the live room. */
#include "peers.h"

#include <string.h>

#include "common.h"
#include "idmap.h"

typedef struct peer {
	unsigned char addr[TT_ADDR_LEN];
	uint32_t conns;
	double tokens;      /* new sessions it may start now */
	double refilled_at; /* when tokens was last brought up to date */
	struct peer *next;  /* same hash key */
} peer;

static struct {
	uint32_t max_conns, per_minute;
	tt_idmap map;       /* hash of the address -> chain of peers */
	uint32_t n;
} P;

static uint64_t key(const unsigned char a[TT_ADDR_LEN])
{
	uint64_t h = 1469598103934665603ULL;
	for (int i = 0; i < TT_ADDR_LEN; i++)
		h = (h ^ a[i]) * 1099511628211ULL;
	return h == 0 || h == UINT64_MAX ? 1 : h;
}

static peer *find(const unsigned char a[TT_ADDR_LEN], bool create)
{
	uint64_t k = key(a);
	peer *head = tt_idmap_get(&P.map, k);
	for (peer *p = head; p; p = p->next)
		if (!memcmp(p->addr, a, TT_ADDR_LEN))
			return p;
	if (!create)
		return NULL;
	peer *p = tt_calloc(1, sizeof(*p));
	memcpy(p->addr, a, TT_ADDR_LEN);
	p->tokens = P.per_minute;
	p->refilled_at = -1;
	p->next = head;
	if (head)
		tt_idmap_del(&P.map, k);
	tt_idmap_put(&P.map, k, p);
	P.n++;
	return p;
}

static void drop(peer *p)
{
	uint64_t k = key(p->addr);
	peer *head = tt_idmap_get(&P.map, k), **pp = &head;
	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	tt_idmap_del(&P.map, k);
	if (head)
		tt_idmap_put(&P.map, k, head);
	free(p);
	P.n--;
}

/* Nothing left to remember of p at time now: no connection, and its
 * allowance full again. */
static bool idle(const peer *p, double now)
{
	return !p->conns && (p->refilled_at < 0 ||
			     p->tokens + (now - p->refilled_at) * P.per_minute / 60.0 >= P.per_minute);
}

void tt_peers_sweep(double now)
{
	/* collect first: dropping changes the map */
	peer **gone = NULL;
	size_t n = 0;
	for (size_t i = 0; i < P.map.cap; i++) {
		if (P.map.keys[i] == 0 || P.map.keys[i] == UINT64_MAX)
			continue;
		for (peer *p = P.map.vals[i]; p; p = p->next)
			if (idle(p, now)) {
				gone = tt_realloc(gone, sizeof(*gone) * (n + 1));
				gone[n++] = p;
			}
	}
	for (size_t i = 0; i < n; i++)
		drop(gone[i]);
	free(gone);
}

void tt_peers_init(uint32_t max_conns, uint32_t sessions_per_minute)
{
	tt_peers_free();
	P.max_conns = max_conns;
	P.per_minute = sessions_per_minute;
}

bool tt_peers_connect(const unsigned char addr[TT_ADDR_LEN])
{
	peer *p = find(addr, true);
	if (P.max_conns && p->conns >= P.max_conns)
		return false;
	p->conns++;
	return true;
}

void tt_peers_disconnect(const unsigned char addr[TT_ADDR_LEN])
{
	peer *p = find(addr, false);
	if (!p || !p->conns)
		return;
	p->conns--;
	if (idle(p, 0) && p->refilled_at < 0)
		drop(p);
}

bool tt_peers_new_session(const unsigned char addr[TT_ADDR_LEN], double now)
{
	if (!P.per_minute)
		return true;
	peer *p = find(addr, true);
	if (p->refilled_at >= 0) {
		p->tokens += (now - p->refilled_at) * P.per_minute / 60.0;
		if (p->tokens > P.per_minute)
			p->tokens = P.per_minute;
	}
	p->refilled_at = now;
	if (p->tokens < 1)
		return false;
	p->tokens -= 1;
	return true;
}

uint32_t tt_peers_conns(const unsigned char addr[TT_ADDR_LEN])
{
	peer *p = find(addr, false);
	return p ? p->conns : 0;
}

void tt_peers_free(void)
{
	for (size_t i = 0; i < P.map.cap; i++) {
		if (P.map.keys[i] == 0 || P.map.keys[i] == UINT64_MAX)
			continue;
		for (peer *p = P.map.vals[i], *next; p; p = next) {
			next = p->next;
			free(p);
		}
	}
	tt_idmap_free(&P.map);
	P.n = 0;
}
