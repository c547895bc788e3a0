/* SPDX-License-Identifier: MIT */
/* log.c: stderr logging with a level. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

int tt_log_level = TT_LOG_INFO;

void tt_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	if (level > tt_log_level)
		return;
	va_list ap;
	fprintf(stderr, "tutti: %s: ", names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
