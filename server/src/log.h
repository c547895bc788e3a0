/* SPDX-License-Identifier: MIT */
/* log.h: the server's log, to stderr, one line per event:
 *
 *   2026-12-07 21:04:05.120 info  session 12 (audience, 192.168.1.20): new
 *
 * local time with milliseconds, the level, the message. -q keeps errors and
 * warnings, -v adds debug lines (and libwebsockets' own notices). Lines a
 * client can cause (refused requests, refused connections) go through
 * TT_LOG_LIMITED: a burst, then a few a second, then one line saying how
 * many were suppressed. */
#ifndef TT_LOG_H
#define TT_LOG_H

#include <stdint.h>

enum { TT_LOG_ERROR, TT_LOG_WARN, TT_LOG_INFO, TT_LOG_DEBUG };

extern int tt_log_level; /* messages above this level are dropped */

void tt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define tt_log_error(...) tt_log(TT_LOG_ERROR, __VA_ARGS__)
#define tt_log_warn(...) tt_log(TT_LOG_WARN, __VA_ARGS__)
#define tt_log_info(...) tt_log(TT_LOG_INFO, __VA_ARGS__)
#define tt_log_debug(...) tt_log(TT_LOG_DEBUG, __VA_ARGS__)

/* Log where an internal error starts: the file and line name the place
 * the failure was detected, not where it was finally reported. */
#define TT_ERR(msg) tt_log(TT_LOG_ERROR, "%s:%d: %s", __FILE__, __LINE__, (msg))

/* The budget of one call site of TT_LOG_LIMITED (a static, zeroed). */
typedef struct tt_log_limit {
	double t;                  /* last refill, CLOCK_MONOTONIC seconds */
	double tokens;             /* lines it may print now */
	uint32_t dropped;          /* lines suppressed since the last printed */
	int level;
	const char *what;          /* the format, to name the suppressed lines */
	struct tt_log_limit *next; /* every limit that dropped something */
	int listed;
} tt_log_limit;

void tt_log_limited(tt_log_limit *l, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define TT_LOG_LIMITED(level, ...)                                                          \
	do {                                                                                \
		static tt_log_limit tt_log_limit_;                                          \
		tt_log_limited(&tt_log_limit_, (level), __VA_ARGS__);                       \
	} while (0)
/* Print the count of lines suppressed by limits that have been quiet for a
 * while (a timer calls it about once a second). */
void tt_log_tick(void);

#endif
