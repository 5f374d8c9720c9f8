/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs private: the small tools every file uses (lib/common.c): errors,
 * allocation, buffers, hex, time and the one cancellable sleep.
 */
#ifndef TRS_UTIL_H
#define TRS_UTIL_H

#include "trs.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

#if defined(__GNUC__)
#define TRS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define TRS_SENTINEL __attribute__((sentinel))
#else
#define TRS_PRINTF(f, a)
#define TRS_SENTINEL
#endif

#define TRS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Fill err (when non-NULL) and return code. The message is formatted printf-style. */
int trs__error_set(trs_error *err, int code, const char *fmt, ...) TRS_PRINTF(3, 4);
int trs__error_vset(trs_error *err, int code, const char *fmt, va_list ap);
/* Like trs__error_set for TRS_EIO, with errno's text appended. */
int trs__error_errno(trs_error *err, int errnum, const char *fmt, ...) TRS_PRINTF(3, 4);
/* Prefix err->message with "prefix: " (keeps the code and other fields). */
void trs__error_prefix(trs_error *err, const char *fmt, ...) TRS_PRINTF(2, 3);

/* Allocation helpers that never return NULL silently: they fill err. */
void *trs__malloc(size_t size, trs_error *err);
void *trs__calloc(size_t n, size_t size, trs_error *err);
char *trs__strdup(const char *s, trs_error *err);
char *trs__strndup(const char *s, size_t len, trs_error *err);

/* Monotonic seconds. */
double trs__now(void);
/* Wall-clock time (CLOCK_REALTIME): unix seconds, and milliseconds, for timestamps that leave the process. */
double trs__wall_now(void);
int64_t trs__wall_ms(void);
/* getenv, with an empty value as unset (NULL). */
const char *trs__env_nonempty(const char *name);
/* Whether s (NULL: never) is one of the n strings of list. */
bool trs__str_in(const char *s, const char *const *list, size_t n);
/* Wait on `cv` (with `mu` held) for at most `ns` nanoseconds. */
void trs__cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, long ns);
/* Sleep `seconds` in steps of at most 50 ms, stopping early when stop(ud)
 * says so (checked before each step). true when it stopped early. The one
 * cancellable sleep: retries' backoff, serve's receive backoff, polls. */
bool trs__sleep_until(double seconds, bool (*stop)(void *ud), void *ud);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void trs__hex(const unsigned char *in, size_t n, char *out);
/* The value of one hex digit, either case; -1 when `c` is not one. */
int trs__hexval(int c);
/* Decode 2*n hex digits into n bytes; -1 when one is not a hex digit. */
int trs__unhex(const char *hex, unsigned char *out, size_t n);

/* A growable byte buffer. */
typedef struct trs__buf {
	char *data;
	size_t len;
	size_t cap;
} trs__buf;
#define TRS_BUF_INIT {0, 0, 0}
int trs__buf_grow(trs__buf *b, size_t extra, trs_error *err);
int trs__buf_put(trs__buf *b, const void *data, size_t len, trs_error *err);
int trs__buf_puts(trs__buf *b, const char *s, trs_error *err);
int trs__buf_printf(trs__buf *b, trs_error *err, const char *fmt, ...) TRS_PRINTF(3, 4);
/* Append each string up to the NULL that ends the list, with one size
 * check: trs__buf_cat(b, err, key, "=", value, NULL). Where printf's %s
 * is all a format does, this costs a fraction of it. */
int trs__buf_cat(trs__buf *b, trs_error *err, ...) TRS_SENTINEL;
void trs__buf_free(trs__buf *b);

/* write(2) until all of data is written (EINTR retried); -1 with errno (lib/common.c). */
int trs__write_all(int fd, const void *data, size_t len);
/* A file with no name in directory `dirfd`, open for reading and writing (mode 0600): O_TMPFILE, or
 * where the filesystem has none an O_EXCL name unlinked at once. It goes away with its last fd,
 * kill -9 included. -1 with errno set on failure. */
int trs__tmpfile_at(int dirfd);

#endif
