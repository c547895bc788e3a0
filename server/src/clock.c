/* SPDX-License-Identifier: MIT */
/* clock.c: sync clock from CLOCK_MONOTONIC plus a persisted base. */
#include "clock.h"

#include <time.h>

static double g_base, g_mono0;

double tt_clock_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double tt_clock_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tt_clock_start(double base)
{
	g_mono0 = tt_clock_mono();
	g_base = base;
}

double tt_clock_now(void)
{
	return g_base + (tt_clock_mono() - g_mono0);
}
