/* SPDX-License-Identifier: MIT */
/* clock.h: the server's sync clock (PROTOCOL.md §10): seconds as a double,
 * monotonic within a run; tt_clock_start's base keeps it continuous across
 * restarts (the persistence layer passes the last time it stored). */
#ifndef TT_CLOCK_H
#define TT_CLOCK_H

/* Start the clock so that now() >= base. */
void tt_clock_start(double base);
/* Current sync time in seconds. */
double tt_clock_now(void);
/* Seconds of CLOCK_MONOTONIC, for timeouts. */
double tt_clock_mono(void);
/* Seconds since the epoch (CLOCK_REALTIME): time that also passes while the
 * server is down, for the resume window. */
double tt_clock_wall(void);

#endif
