/* SPDX-License-Identifier: MIT */
/* peers.h: accounting per remote address, so that one device (or one
 * attacker) cannot take what belongs to everyone: its open connections
 * are counted, and the new sessions it starts are limited per minute (a
 * token bucket: a burst of the whole minute's allowance, refilled evenly).
 * Addresses are 16 bytes (IPv4 as IPv4-mapped IPv6). */
#ifndef TT_PEERS_H
#define TT_PEERS_H

#include <stdbool.h>
#include <stdint.h>

#define TT_ADDR_LEN 16

/* Limits: connections per address (0: none), new sessions per minute per
 * address (0: none). */
void tt_peers_init(uint32_t max_conns, uint32_t sessions_per_minute);
/* A connection from addr opens: false when addr is at its limit (the
 * connection must be refused; nothing was counted). */
bool tt_peers_connect(const unsigned char addr[TT_ADDR_LEN]);
/* A connection counted by tt_peers_connect closed. */
void tt_peers_disconnect(const unsigned char addr[TT_ADDR_LEN]);
/* addr starts a new session at time now (seconds, monotonic): false when
 * it is over its allowance (nothing was counted). */
bool tt_peers_new_session(const unsigned char addr[TT_ADDR_LEN], double now);
/* Once in a while (time now): forget the addresses with nothing left to
 * remember (no connection, allowance full again). */
void tt_peers_sweep(double now);
/* Open connections of addr (tests, logs). */
uint32_t tt_peers_conns(const unsigned char addr[TT_ADDR_LEN]);
void tt_peers_free(void);

#endif
