/* SPDX-License-Identifier: MIT */
/* common.h: error codes, allocation wrappers and assertions shared by every
 * part of libtutti and the server. Error codes are the wire codes of
 * PROTOCOL.md section 11, so an error found deep in the core travels to the
 * client unchanged. */
#ifndef TT_COMMON_H
#define TT_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Wire error codes (PROTOCOL.md §11). Functions return 0 or -code. */
typedef enum tt_code {
	TT_OK = 0,
	TT_BAD_MESSAGE = 1,
	TT_UNKNOWN_TYPE = 2,
	TT_NOT_READY = 3,
	TT_BAD_VERSION = 4,
	TT_BAD_REQUEST = 5,
	TT_UNKNOWN_CLASS = 10,
	TT_CLASS_EXISTS = 11,
	TT_BAD_DESCRIPTION = 12,
	TT_UNKNOWN_STATE = 20,
	TT_UNKNOWN_INSTANCE = 21,
	TT_NOT_OWNER = 22,
	TT_UNKNOWN_SCHEDULE = 23,
	TT_UNKNOWN_SESSION = 24,
	TT_UNKNOWN_PARAM = 30,
	TT_BAD_VALUE = 31,
	TT_NOT_NULLABLE = 32,
	TT_REQUIRED = 33,
	TT_LOCAL_PARAM = 34,
	TT_FILTERED = 35,
	TT_BAD_FILTER = 36,
	TT_LIMIT = 40,
	TT_RATE_LIMIT = 41,
	TT_FORBIDDEN = 42,
	TT_UNAUTHORIZED = 43,
	TT_ABORTED = 44,
	TT_HOOK_FAILED = 45,
	TT_INTERNAL = 60,
	TT_STORAGE = 61
} tt_code;

/* Name of a wire code ("BAD_VALUE"), "UNKNOWN" for anything else. */
const char *tt_code_name(int code);

/* An error with its human message. Filled by the function that detects the
 * problem (the message names class, parameter and value where it can). */
typedef struct tt_error {
	int code;      /* a tt_code, positive */
	char msg[256]; /* NUL-terminated */
} tt_error;

/* Set err (if not NULL) and return -code. printf-style message. */
int tt_fail(tt_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Allocation: abort on out-of-memory, as Redis and h2o do; a server that
 * cannot allocate a few bytes cannot answer either. Sizes from the network
 * are always capped before they reach these. */
void *tt_malloc(size_t n);
void *tt_calloc(size_t count, size_t n);
void *tt_realloc(void *p, size_t n);
char *tt_strndup(const char *s, size_t n);
#define tt_free(p) free(p)
#define TT_FREE(p) do { free(p); (p) = NULL; } while (0)

/* Always-on assertion for cheap invariants: logs and aborts. */
#define tt_assert(cond) \
	do { if (!(cond)) tt_assert_fail(#cond, __FILE__, __LINE__); } while (0)
#ifdef __cplusplus /* the native client's header is usable from C++ */
[[noreturn]] void tt_assert_fail(const char *what, const char *file, int line);
#else
_Noreturn void tt_assert_fail(const char *what, const char *file, int line);
#endif

#define TT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TT_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
