/* SPDX-License-Identifier: MIT */
/* log.c: stderr logging with a level, timestamps and rate limits. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"

int tt_log_level = TT_LOG_INFO;

/* A client-caused line: LIMIT_BURST at once, then LIMIT_RATE a second. */
#define LIMIT_BURST 20.0
#define LIMIT_RATE 2.0

static tt_log_limit *g_dropping; /* limits with suppressed lines to report */

static void vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void vlog(int level, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warn ", "info ", "debug"};
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	/* one fprintf per part, but stderr is unbuffered: build the line first
	 * so that lines from a crash handler or lws do not split it */
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s.%03ld %s ", when, ts.tv_nsec / 1000000,
			 names[level]);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	if ((size_t)(n + m) >= sizeof(line) - 1) {
		n = (int)sizeof(line) - 5;
		line[n++] = '.';
		line[n++] = '.';
		line[n++] = '.';
	} else {
		n += m;
	}
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}

void tt_log(int level, const char *fmt, ...)
{
	if (level > tt_log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static void report_dropped(tt_log_limit *l)
{
	tt_log(l->level, "(%u more lines like \"%.60s\" suppressed)", l->dropped, l->what);
	l->dropped = 0;
}

void tt_log_limited(tt_log_limit *l, int level, const char *fmt, ...)
{
	if (level > tt_log_level)
		return;
	double now = tt_clock_mono();
	if (l->t == 0) {
		l->tokens = LIMIT_BURST;
	} else {
		l->tokens += (now - l->t) * LIMIT_RATE;
		if (l->tokens > LIMIT_BURST)
			l->tokens = LIMIT_BURST;
	}
	l->t = now;
	if (l->tokens < 1) {
		l->dropped++;
		l->level = level;
		l->what = fmt;
		if (!l->listed) {
			l->listed = 1;
			l->next = g_dropping;
			g_dropping = l;
		}
		return;
	}
	l->tokens -= 1;
	if (l->dropped)
		report_dropped(l);
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void tt_log_tick(void)
{
	double now = tt_clock_mono();
	tt_log_limit **p = &g_dropping;
	while (*p) {
		tt_log_limit *l = *p;
		/* quiet for 5 s: say how many went unprinted */
		if (now - l->t >= 5 || !l->dropped) {
			if (l->dropped)
				report_dropped(l);
			l->listed = 0;
			*p = l->next;
		} else {
			p = &l->next;
		}
	}
}
