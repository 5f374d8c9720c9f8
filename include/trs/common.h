/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: common types. Errors, logging, version.
 *
 * Every libtrs function that can fail returns 0 on success or a negative
 * TRS_E* code, and fills a caller-owned trs_error with the detail. The library
 * never prints and never aborts; it reports through trs_error and through the
 * log callback the application installs (trs_ctx_options.log).
 */
#ifndef TRS_COMMON_H
#define TRS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TRS_BUILDING_LIBRARY) && defined(__GNUC__)
#define TRS_EXTERN(type) __attribute__((visibility("default"))) type
#else
#define TRS_EXTERN(type) type
#endif

#define TRS_VERSION_MAJOR 0
#define TRS_VERSION_MINOR 1
#define TRS_VERSION_PATCH 0
#define TRS_VERSION "0.1.0"

/** The library's version string, e.g. "0.1.0" (may differ from the header's). */
TRS_EXTERN(const char *) trs_version(void);

/* Error codes. Negative, so that `if (trs_process(...) < 0)` reads naturally. */
typedef enum {
	TRS_OK = 0,
	TRS_ENOMEM = -1,     /* an allocation failed */
	TRS_EINVAL = -2,     /* bad argument or configuration */
	TRS_EIO = -3,        /* a local read or write failed (errno in sys_errno) */
	TRS_EARCHIVE = -4,   /* the archive cannot be read: not zstd, not tar, truncated */
	TRS_EMANIFEST = -5,  /* manifest.json missing, not JSON, or of the wrong shape */
	TRS_ENOTFOUND = -6,  /* no such object, bucket or member */
	TRS_EINTEGRITY = -7, /* an object's size or MD5 does not match the manifest */
	TRS_ELIMIT = -8,     /* a configured limit was exceeded (size, depth, ratio) */
	TRS_EUNSAFE = -9,    /* a key or path that would escape its destination */
	TRS_EHTTP = -10,     /* a remote service answered with an error */
	TRS_ENET = -11,      /* a connection or timeout error */
	TRS_EAUTH = -12,     /* no usable credentials, or they were refused */
	TRS_ECANCELED = -13, /* the caller's cancellation flag was raised */
	TRS_EPARTIAL = -14,  /* some objects failed; the others were written */
	TRS_EEXISTS = -15,   /* something already stands where we must write */
	TRS_EUNSUPPORTED = -16,
	TRS_EREGION = -17    /* the archive has targets, none in this service's region */
} trs_error_code;

#define TRS_ERROR_MESSAGE_SIZE 1024

/**
 * The detail of a failure. Caller-owned, usually on the stack:
 *
 *     trs_error err = TRS_ERROR_INIT;
 *     if (trs_manifest_parse(json, len, &m, &err) < 0)
 *             fprintf(stderr, "%s\n", err.message);
 *
 * `message` is a complete sentence naming what failed (archive, object,
 * bucket/key) and, where there is one, what to do. It never contains
 * credentials or signatures. Fields that do not apply are 0 or "".
 * Names longer than 119 bytes appear shortened in the middle,
 * "first…last (1024 bytes)", so that the reason and what to do always fit;
 * the full names are in the report (trs_failure) and in the log's fields. A
 * message cut by its size ends with "…", never inside a UTF-8 character.
 */
typedef struct trs_error {
	int code;                  /* a trs_error_code, 0 when clear */
	int sys_errno;             /* errno for TRS_EIO */
	int http_status;           /* for TRS_EHTTP */
	int retryable;             /* nonzero when trying again may succeed */
	char aws_code[64];         /* e.g. "NoSuchBucket", "SlowDown" */
	char message[TRS_ERROR_MESSAGE_SIZE];
} trs_error;

#define TRS_ERROR_INIT {0, 0, 0, 0, {0}, {0}}

/** Reset `err` to TRS_ERROR_INIT. */
TRS_EXTERN(void) trs_error_clear(trs_error *err);

/** A short stable name for a code: "TRS_EARCHIVE" and so on. */
TRS_EXTERN(const char *) trs_strerror(int code);

/* Logging. The library logs through the callback set on a trs_ctx
 * (trs/context.h); with none, it is silent. */
typedef enum {
	TRS_LOG_ERROR = 0,
	TRS_LOG_WARN = 1,
	TRS_LOG_INFO = 2,
	TRS_LOG_DEBUG = 3
} trs_log_level;

/**
 * One structured field of a log record. Values are plain strings; the
 * application decides how to render them (the CLI writes JSON lines).
 */
typedef struct trs_log_field {
	const char *key;
	const char *value;
} trs_log_field;

typedef void (*trs_log_fn)(trs_log_level level, const char *message,
			   const trs_log_field *fields, size_t nfields,
			   void *userdata);

#ifdef __cplusplus
}
#endif
#endif
