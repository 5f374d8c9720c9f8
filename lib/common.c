/* SPDX-License-Identifier: Apache-2.0 */
/* Errors, logging, buffers: the small things every file uses. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

TRS_EXTERN(const char *) trs_version(void)
{
	return TRS_VERSION;
}

TRS_EXTERN(void) trs_error_clear(trs_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

TRS_EXTERN(const char *) trs_strerror(int code)
{
	switch (code) {
	case TRS_OK: return "TRS_OK";
	case TRS_ENOMEM: return "TRS_ENOMEM";
	case TRS_EINVAL: return "TRS_EINVAL";
	case TRS_EIO: return "TRS_EIO";
	case TRS_EARCHIVE: return "TRS_EARCHIVE";
	case TRS_EMANIFEST: return "TRS_EMANIFEST";
	case TRS_ENOTFOUND: return "TRS_ENOTFOUND";
	case TRS_EINTEGRITY: return "TRS_EINTEGRITY";
	case TRS_ELIMIT: return "TRS_ELIMIT";
	case TRS_EUNSAFE: return "TRS_EUNSAFE";
	case TRS_EHTTP: return "TRS_EHTTP";
	case TRS_ENET: return "TRS_ENET";
	case TRS_EAUTH: return "TRS_EAUTH";
	case TRS_ECANCELED: return "TRS_ECANCELED";
	case TRS_EPARTIAL: return "TRS_EPARTIAL";
	case TRS_EEXISTS: return "TRS_EEXISTS";
	case TRS_EUNSUPPORTED: return "TRS_EUNSUPPORTED";
	case TRS_EREGION: return "TRS_EREGION";
	default: return "TRS_E?";
	}
}

int trs__error_vset(trs_error *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
		if (n >= (int)sizeof(err->message))
			trs__text_cut(err->message, sizeof(err->message) - 1);
	}
	return code;
}

int trs__error_set(trs_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	trs__error_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int trs__error_errno(trs_error *err, int errnum, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		trs__error_vset(err, TRS_EIO, fmt, ap);
		va_end(ap);
		/* errno's text is the reason: the sentence before it gives way. */
		char reason[256];
		size_t reason_len = (size_t)snprintf(reason, sizeof(reason), ": %s", strerror(errnum));
		if (strlen(err->message) + reason_len >= sizeof(err->message))
			trs__text_cut(err->message, sizeof(err->message) - 1 - reason_len);
		size_t used = strlen(err->message);
		snprintf(err->message + used, sizeof(err->message) - used, "%s", reason);
		err->sys_errno = errnum;
		err->retryable = errnum == EINTR || errnum == EAGAIN;
	}
	return TRS_EIO;
}

void trs__error_prefix(trs_error *err, const char *fmt, ...)
{
	if (!err)
		return;
	char prefix[TRS_ERROR_MESSAGE_SIZE];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(prefix))
		trs__text_cut(prefix, sizeof(prefix) - 1);
	char old[TRS_ERROR_MESSAGE_SIZE];
	memcpy(old, err->message, sizeof(old));
	/* The old message ends with the reason and what to do: when both do not fit, the prefix
	 * gives way first (down to PREFIX_KEPT bytes), then the old message's end. */
	enum { PREFIX_KEPT = 64 };
	size_t room = sizeof(err->message) - 1, old_len = strlen(old), prefix_len = strlen(prefix);
	if (prefix_len + 2 + old_len > room) {
		size_t prefix_room = room - 2 > old_len ? room - 2 - old_len : 0;
		if (prefix_room < PREFIX_KEPT)
			prefix_room = PREFIX_KEPT;
		if (prefix_len > prefix_room)
			trs__text_cut(prefix, prefix_room);
	}
	int total = snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old);
	if (total >= (int)sizeof(err->message))
		trs__text_cut(err->message, room);
}

bool trs__log_enabled(const trs_ctx *ctx, trs_log_level level)
{
	return ctx && ctx->log && level <= ctx->log_level;
}

void trs__log(const trs_ctx *ctx, trs_log_level level, const char *message, ...)
{
	if (!trs__log_enabled(ctx, level))
		return;
	trs_log_field fields[24];
	size_t n = 0;
	va_list ap;
	va_start(ap, message);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		if (!key)
			break;
		const char *value = va_arg(ap, const char *);
		if (n < TRS_ARRAY_SIZE(fields) && value) {
			fields[n].key = key;
			fields[n].value = value;
			n++;
		}
	}
	va_end(ap);
	ctx->log(level, message, fields, n, ctx->log_userdata);
}

void *trs__malloc(size_t size, trs_error *err)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		trs__error_set(err, TRS_ENOMEM, "out of memory allocating %zu bytes", size);
	return p;
}

void *trs__calloc(size_t n, size_t size, trs_error *err)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		trs__error_set(err, TRS_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

char *trs__strndup(const char *s, size_t len, trs_error *err)
{
	char *p = trs__malloc(len + 1, err);
	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

char *trs__strdup(const char *s, trs_error *err)
{
	return trs__strndup(s, strlen(s), err);
}

double trs__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double trs__wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t trs__wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *trs__env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

bool trs__str_in(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

void trs__cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, long ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ns / 1000000000L;
	ts.tv_nsec += ns % 1000000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

bool trs__sleep_until(double seconds, bool (*stop)(void *ud), void *ud)
{
	double end = trs__now() + seconds;
	for (;;) {
		if (stop && stop(ud))
			return true;
		double left = end - trs__now();
		if (left <= 0)
			return false;
		double step = left < 0.05 ? left : 0.05;
		struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

void trs__hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int trs__hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int trs__unhex(const char *hex, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = trs__hexval((unsigned char)hex[2 * i]), lo = hi < 0 ? -1 : trs__hexval((unsigned char)hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int trs__buf_grow(trs__buf *b, size_t extra, trs_error *err)
{
	if (b->cap - b->len > extra)
		return 0;
	size_t need = b->len + extra + 1;
	if (need < b->len)
		return trs__error_set(err, TRS_ENOMEM, "buffer size overflow");
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	char *p = realloc(b->data, cap);
	if (!p)
		return trs__error_set(err, TRS_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int trs__buf_put(trs__buf *b, const void *data, size_t len, trs_error *err)
{
	if (trs__buf_grow(b, len, err) < 0)
		return TRS_ENOMEM;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int trs__buf_puts(trs__buf *b, const char *s, trs_error *err)
{
	return trs__buf_put(b, s, strlen(s), err);
}

int trs__buf_cat(trs__buf *b, trs_error *err, ...)
{
	va_list ap;
	size_t total = 0;
	va_start(ap, err);
	for (const char *s; (s = va_arg(ap, const char *));)
		total += strlen(s);
	va_end(ap);
	if (trs__buf_grow(b, total, err) < 0)
		return TRS_ENOMEM;
	va_start(ap, err);
	for (const char *s; (s = va_arg(ap, const char *));) {
		size_t n = strlen(s);
		memcpy(b->data + b->len, s, n);
		b->len += n;
	}
	va_end(ap);
	b->data[b->len] = '\0';
	return 0;
}

int trs__buf_printf(trs__buf *b, trs_error *err, const char *fmt, ...)
{
	/* Formatted once where it fits (a request's signing formats dozens of short strings into
	 * buffers with room), twice only when the buffer must grow. */
	size_t room = b->cap - b->len;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return trs__error_set(err, TRS_EINVAL, "bad format");
	if ((size_t)n >= room) {
		if (trs__buf_grow(b, (size_t)n, err) < 0) {
			if (room)
				b->data[b->len] = '\0'; /* the buffer reads as it was */
			return TRS_ENOMEM;
		}
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return 0;
}

void trs__buf_free(trs__buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int trs__write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int trs__tmpfile_at(int dirfd)
{
	int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	static unsigned long counter;
	for (int attempt = 0; attempt < 100; attempt++) {
		char name[64];
		snprintf(name, sizeof(name), ".trs-tmp-%ld-%lu", (long)getpid(),
			 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
		fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			unlinkat(dirfd, name, 0);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}
