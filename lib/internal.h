/*
 * libtrs private declarations shared by the library's files.
 * Names with a double underscore (trs__) are internal and never exported.
 */
#ifndef TRS_INTERNAL_H
#define TRS_INTERNAL_H

#include "trs.h"
#include "trs/sys/storage.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

#if defined(__GNUC__)
#define TRS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TRS_PRINTF(f, a)
#endif

#define TRS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct trs_ctx {
	char *region;
	trs_log_fn log;
	trs_log_level log_level;
	void *log_userdata;
	trs_progress_fn progress;
	void *progress_userdata;
	const volatile int *cancel;
	uint64_t max_manifest_bytes;
	uint64_t max_manifest_objects;
	uint64_t max_decompressed_bytes;
	uint64_t max_ratio;
	unsigned int max_window_log;
	unsigned int workers;
	uint64_t max_memory;
	unsigned int max_inflight;
	char *profile;   /* NULL: AWS_PROFILE (lib/aws_config.c) */
	char *ca_bundle; /* NULL: the system's CAs */
	trs_verify verify;
};

/* A context with every default, for calls made with ctx == NULL. */
const trs_ctx *trs__ctx_default(void);
#define TRS_CTX(c) ((c) ? (const trs_ctx *)(c) : trs__ctx_default())

/* Fill err (when non-NULL) and return code. The message is formatted printf-style. */
int trs__error_set(trs_error *err, int code, const char *fmt, ...) TRS_PRINTF(3, 4);
int trs__error_vset(trs_error *err, int code, const char *fmt, va_list ap);
/* Like trs__error_set for TRS_EIO, with errno's text appended. */
int trs__error_errno(trs_error *err, int errnum, const char *fmt, ...) TRS_PRINTF(3, 4);
/* Prefix err->message with "prefix: " (keeps the code and other fields). */
void trs__error_prefix(trs_error *err, const char *fmt, ...) TRS_PRINTF(2, 3);

/* Log with structured fields: trs__log(ctx, TRS_LOG_WARN, "msg", "key", val, ..., NULL). */
void trs__log(const trs_ctx *ctx, trs_log_level level, const char *message, ...);
bool trs__log_enabled(const trs_ctx *ctx, trs_log_level level);

static inline bool trs__canceled(const trs_ctx *ctx)
{
	return ctx && ctx->cancel && *ctx->cancel;
}

/* Allocation helpers that never return NULL silently: they fill err. */
void *trs__malloc(size_t size, trs_error *err);
void *trs__calloc(size_t n, size_t size, trs_error *err);
char *trs__strdup(const char *s, trs_error *err);
char *trs__strndup(const char *s, size_t len, trs_error *err);

/* Monotonic seconds. */
double trs__now(void);
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
typedef struct trs_buf {
	char *data;
	size_t len;
	size_t cap;
} trs_buf;
#define TRS_BUF_INIT {0, 0, 0}
int trs__buf_grow(trs_buf *b, size_t extra, trs_error *err);
int trs__buf_put(trs_buf *b, const void *data, size_t len, trs_error *err);
int trs__buf_puts(trs_buf *b, const char *s, trs_error *err);
int trs__buf_printf(trs_buf *b, trs_error *err, const char *fmt, ...) TRS_PRINTF(3, 4);
void trs__buf_free(trs_buf *b);

/* write(2) until all of data is written (EINTR retried); -1 with errno (lib/common.c). */
int trs__write_all(int fd, const void *data, size_t len);

/* The s3 backend's constructor (lib/storage_s3.c); url is "s3" or "s3://...". */
int trs__storage_s3_open(trs_storage **out, trs_ctx *ctx, const char *url, trs_error *err);

/* "manifest.json" or "./manifest.json" (lib/archive.c). */
int trs__archive_is_manifest(const char *path);

/*
 * A vouched body (lib/storage.c): `inner` whose MD5 the library already
 * verified against the manifest, or vouches for (--verify size), so that a
 * backend need not hash it again (trs_body_verified_md5). Over a memory
 * body it is still one for trs_body_memory.
 */
typedef struct trs__vouched_body {
	trs_body body;
	trs_body *inner;
	char md5[33];
} trs__vouched_body;
trs_body *trs__vouched_body_init(trs__vouched_body *vb, trs_body *inner, const char *md5_hex);

/* A backend's version-2 members (trs/sys/storage.h), 0 for a version-1 backend (lib/storage.c). */
unsigned int trs__storage_caps(const trs_storage *s);
unsigned int trs__storage_parallelism(const trs_storage *s);
uint64_t trs__storage_md5_checked_below(const trs_storage *s);
uint64_t trs__storage_reserved_memory(const trs_storage *s);

/* What the S3 backend's retry layer did (lib/aws/): false for other backends. */
typedef struct trs__retry_stats {
	uint64_t retries, retries_refused, throttle_decreases;
	double lowest_limit, limit;
} trs__retry_stats;
bool trs__storage_retry_stats(trs_storage *s, trs__retry_stats *out);

/* Staging objects in a local directory before the manifest names them (lib/fs_stage.c).
 * trs__fs_stage_new answers TRS_EUNSUPPORTED for any storage but "fs". */
typedef struct trs__fs_stage trs__fs_stage;
int trs__fs_stage_new(trs_storage *s, trs__fs_stage **out, trs_error *err);
/* A new staged file for `index`: an fd open for writing, or a negative code. */
int trs__fs_stage_create(trs__fs_stage *st, uint64_t index, trs_error *err);
/* Move staged `index` to req's bucket/key with its metadata (size and MD5 already checked). */
int trs__fs_stage_publish(trs__fs_stage *st, uint64_t index, const trs_put_request *req, uint64_t size,
			  const char *md5, trs_error *err);
void trs__fs_stage_discard(trs__fs_stage *st, uint64_t index);
/* Remove whatever is still staged, and the staging directory. */
void trs__fs_stage_free(trs__fs_stage *st);

/* lib/object.c, for the pipeline (lib/process.c). */
/* Why S3 refuses `name` as a bucket name (a sentence), or NULL; fs buckets follow the same rules. */
const char *trs__bucket_name_problem(const char *name);
int trs__plain_md5(const char *etag, char out[33]);
/* An object's bytes against its entry: size, then MD5 (md5_hex NULL: size only). TRS_EINTEGRITY otherwise. */
int trs__check_integrity(const trs_manifest_object *e, uint64_t size, const char *md5_hex, trs_error *err);
/* Join a member read outside the iterator (its bytes held by the caller). */
int trs__object_iter_join(trs_object_iter *it, const char *path, uint64_t index, uint64_t size,
			  const trs_object **out, trs_error *err);
/* The object just returned is a later copy of a tar member already joined
 * (it is to be written after, and over, the earlier one). */
int trs__object_iter_repeat(const trs_object_iter *it);
/* The manifest came from tar member `index`, whose bytes hash to md5: another
 * manifest.json member is compared with it (lib/object.c). */
void trs__object_iter_set_manifest(trs_object_iter *it, uint64_t index, const unsigned char md5[16]);
void trs__object_iter_defer_missing(trs_object_iter *it, int defer);
/* The archive was rewound: walk it again, skipping members already joined, and
 * warning only about members before index `loud_before` (not looked at before). */
void trs__object_iter_restart(trs_object_iter *it, uint64_t loud_before);
void trs__object_iter_add_skipped(trs_object_iter *it, uint64_t n);
/* Why a member is never restored (a sentence), or NULL for objects/ files, directories and the manifest. */
const char *trs__member_skip_reason(const char *path, trs_member_type type);
uint64_t trs__object_iter_member_size(const trs_object_iter *it);

#endif
