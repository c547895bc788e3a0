/* SPDX-License-Identifier: MIT */
/* log.h: the server's log, to stderr, one line per event. */
#ifndef TT_LOG_H
#define TT_LOG_H

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

#endif
