/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: storage. Where restored objects go and archives come from.
 *
 * A trs_storage is a backend behind a small vtable (trs/sys/storage.h).
 * Built in: "fs" (a local directory, DIR/<bucket>/<key>) and "s3". A user's
 * own backend is a first-class citizen: implement the vtable and hand it to
 * trs_upload or trs_process like any built-in one.
 */
#ifndef TRS_STORAGE_H
#define TRS_STORAGE_H

#include "common.h"
#include "manifest.h"
#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trs_storage trs_storage;

/**
 * A body to upload: a pull stream of exactly `length` bytes.
 *
 * `read` returns the number of bytes placed in buf (> 0), 0 at the end, or a
 * negative TRS_E* code with err filled. A negative return means the object
 * must NOT become visible: that is how integrity failures (size, MD5) found
 * at the last byte stop a write. Backends therefore make an object visible
 * only after read returned 0.
 */
typedef struct trs_body {
	int64_t (*read)(void *self, void *buf, size_t len, trs_error *err);
	void *self;
	uint64_t length;
} trs_body;

/** A body over a memory buffer, not copied: `data` must outlive the upload. */
typedef struct trs_memory_body {
	trs_body body;
	const unsigned char *data;
	size_t len;
	size_t pos;
} trs_memory_body;

/** Set up `mb` over data[0..len) and return its trs_body. */
TRS_EXTERN(trs_body *) trs_memory_body_init(trs_memory_body *mb, const void *data, size_t len);

/**
 * Body hints, for a backend's put (trs/sys/storage.h).
 *
 * trs_body_memory: when every byte of `body` is in memory and none was read
 * yet, set *data and *len and return 1: the body cannot fail half-way, so a
 * backend may write it without reading it (a file created at its final
 * name, say). Otherwise 0.
 *
 * trs_body_verified_md5: the MD5 (32 hex digits) these bytes have, or
 * NULL. The library checked it already, or the body checks it at its last
 * byte (a read that fails otherwise, so it holds once read() returned 0),
 * or the restore vouches for it (--verify size). A backend that records an
 * object's MD5 may take it instead of hashing the bytes again.
 */
TRS_EXTERN(int) trs_body_memory(const trs_body *body, const void **data, size_t *len);
TRS_EXTERN(const char *) trs_body_verified_md5(const trs_body *body);

#define TRS_PUT_REQUEST_VERSION 1

/** One object to one bucket. Strings are borrowed for the call only. */
typedef struct trs_put_request {
	unsigned int version;
	const char *bucket;
	const char *key;
	uint64_t size;
	const char *storage_class;   /* NULL or "": STANDARD */
	const char *kms_key_id;      /* NULL or "": no SSE-KMS */
	const trs_kv *tags;          /* at most 10, S3's limit */
	size_t ntags;
	const trs_kv *metadata;      /* user metadata, names without "x-amz-meta-" */
	size_t nmetadata;
	const char *content_md5_hex; /* NULL, or the MD5 the bytes must have (32 hex) */
} trs_put_request;

#define TRS_PUT_REQUEST_INIT {TRS_PUT_REQUEST_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/** What head() knows about a stored object. Owned strings; see trs_object_info_clear. */
typedef struct trs_object_info {
	uint64_t size;
	char *etag;          /* quoted or not, as the backend stores it */
	char *storage_class;
	char *kms_key_id;
	trs_kv *tags;
	size_t ntags;
	trs_kv *metadata;
	size_t nmetadata;
	int64_t mtime;       /* unix seconds, 0 when unknown */
} trs_object_info;

/*
 * Newest wins (docs/formats.md, "Versions"). Archives of one key can arrive
 * in any order: many in flight, many consumers, redelivery. A write that
 * carries a trs_write_condition replaces what stands at its key only when
 * it is a newer version of the source object. The version is the source's
 * LastModified (the manifest's creation_time, one-second resolution) and
 * its ETag; a restore records both on the object (the OriginalCreationTime
 * and OriginalETag tags, and the user metadata original-creation-time and
 * original-etag), and that record is what the next write compares with.
 * Two versions of one second are ordered by their ETags, so that every
 * consumer in every region picks the same one.
 */
#define TRS_WRITE_CONDITION_VERSION 1

/* trs_write_condition.flags */
#define TRS_WRITE_ASK_FIRST (1u << 0) /* look at the key before sending any byte of the body: a
                                         redelivery, where most objects are current already */

typedef struct trs_write_condition {
	unsigned int version;        /* TRS_WRITE_CONDITION_VERSION */
	const char *source_time;     /* the manifest's creation_time; NULL or "": unknown */
	const char *source_etag;     /* the manifest's etag, quoted or not; NULL or "": unknown */
	unsigned int flags;          /* TRS_WRITE_* */
} trs_write_condition;

#define TRS_WRITE_CONDITION_INIT {TRS_WRITE_CONDITION_VERSION, 0, 0, 0}

/*
 * What a conditional write did (positive: nothing failed). TRS_WRITTEN is
 * 0, so a caller that only tests for < 0 reads the two others as success,
 * which they are: the key holds this version or a newer one.
 */
#define TRS_WRITTEN 0
#define TRS_KEPT_NEWER 1      /* not written: the key holds a newer version */
#define TRS_ALREADY_CURRENT 2 /* not written: the key holds this very version (a redelivery) */
#define TRS_WRITTEN_UNCHECKED 3 /* written without a comparison: the destination refused the read it
                                   needs (S3: no s3:GetObject on the bucket); whatever stood there is
                                   replaced, as by trs_upload */

/** Free what a head() call put in `info` (strings allocated with malloc) and zero it. */
TRS_EXTERN(void) trs_object_info_clear(trs_object_info *info);

/** Receives a get()'s bytes in order. Returns 0, or a negative code to stop. */
typedef int (*trs_sink_fn)(void *userdata, const void *data, size_t len, trs_error *err);

/**
 * Write one object. Streams `body` to `storage` under req->bucket/req->key.
 * Returns 0, or a negative code; on failure nothing is visible at the key
 * that was not there before (a previous version stays).
 */
TRS_EXTERN(int) trs_upload(trs_storage *storage, const trs_put_request *req, trs_body *body, trs_error *err);

/**
 * trs_upload under `cond`: write only when nothing stands at the key, or
 * what stands there is an older version (or carries no version: an object
 * this library did not write). Returns TRS_WRITTEN, TRS_KEPT_NEWER,
 * TRS_ALREADY_CURRENT, or a negative code. The decision is atomic against
 * other writers of the key where the backend can make it so (S3's
 * conditional writes, the fs backend's lock): the backend's put_if_newer
 * (trs/sys/storage.h). A backend without one writes as trs_upload does, and
 * returns TRS_WRITTEN. When the result is not TRS_WRITTEN, `body` may not
 * have been read at all.
 */
TRS_EXTERN(int) trs_upload_if_newer(trs_storage *storage, const trs_put_request *req,
				    const trs_write_condition *cond, trs_body *body, trs_error *err);

/**
 * Compare what stands at a key (`current`, as head() describes it; NULL
 * when there is nothing) with the version `cond` carries: TRS_WRITTEN when
 * the write should go ahead, TRS_KEPT_NEWER or TRS_ALREADY_CURRENT when not.
 * The rule every backend applies; for a backend's own conditional write.
 */
TRS_EXTERN(int) trs_write_condition_check(const trs_write_condition *cond, const trs_object_info *current);

/** Stream `length` bytes from `offset` (length UINT64_MAX: to the end) into `sink`. */
TRS_EXTERN(int) trs_storage_get(trs_storage *storage, const char *bucket, const char *key,
				uint64_t offset, uint64_t length, trs_sink_fn sink, void *userdata,
				trs_error *err);

/** Describe an object. TRS_ENOTFOUND when there is none. */
TRS_EXTERN(int) trs_storage_head(trs_storage *storage, const char *bucket, const char *key,
				 trs_object_info *info, trs_error *err);

/**
 * What a storage's retry layer did since it was opened (the S3 backend;
 * lib/aws/): attempts retried, throttling answers (503 SlowDown, 429, ...),
 * retries the retry budget refused, and adaptive concurrency's limit on
 * requests in flight (now, lowest, ceiling). Sums over every request of the
 * storage, whichever archive sent it.
 */
typedef struct trs_retry_stats {
	uint64_t retried;
	uint64_t throttled;
	uint64_t refused_by_budget;
	uint64_t limit_decreases;
	double limit;
	double limit_lowest;
	double limit_ceiling;
} trs_retry_stats;

/** Fill `out`; TRS_EUNSUPPORTED (and `out` zeroed) for a storage without a retry layer (fs, and a
 * custom backend without the version-4 retry_stats). */
TRS_EXTERN(int) trs_storage_retry_stats(const trs_storage *storage, trs_retry_stats *out);

/** Delete an object. Deleting what is not there succeeds. */
TRS_EXTERN(int) trs_storage_delete(trs_storage *storage, const char *bucket, const char *key, trs_error *err);

/**
 * Server-side copy of src_bucket/src_key to req->bucket/req->key with the
 * request's class, KMS key, tags and metadata (req->size may be 0).
 */
TRS_EXTERN(int) trs_storage_copy(trs_storage *storage, const char *src_bucket, const char *src_key,
				 const trs_put_request *req, trs_error *err);

/**
 * trs_storage_copy under `cond` (see trs_upload_if_newer): the other
 * targets of an object that was streamed to its first one.
 */
TRS_EXTERN(int) trs_storage_copy_if_newer(trs_storage *storage, const char *src_bucket, const char *src_key,
					  const trs_put_request *req, const trs_write_condition *cond, trs_error *err);

/** The backend's short name: "fs", "s3", or what a custom backend says. */
TRS_EXTERN(const char *) trs_storage_name(const trs_storage *storage);

/** Free a storage (calls the backend's free). NULL is ignored. */
TRS_EXTERN(void) trs_storage_free(trs_storage *storage);

/**
 * The "fs" backend: objects at DIR/<bucket>/<key>, written to a temporary
 * name and renamed into place when complete; tags, class and metadata kept
 * as JSON in the file's user.trs.meta extended attribute, or, on a
 * filesystem without user xattrs, in a sidecar file at
 * DIR/.trs-meta/<bucket>/<key> (bucket names cannot start with a dot, so
 * the two never collide; docs/formats.md). DIR is created when missing. Keys that
 * would escape DIR (".." or "." segments, empty segments, absolute, NUL) are
 * refused with TRS_EUNSAFE for that object.
 */
TRS_EXTERN(int) trs_storage_fs_new(trs_storage **out, trs_ctx *ctx, const char *dir, trs_error *err);

/**
 * Open a storage by URL: "file://DIR" (or a plain path) for fs, "s3://" for
 * S3 with the context's AWS settings.
 */
TRS_EXTERN(int) trs_storage_open(trs_storage **out, trs_ctx *ctx, const char *url, trs_error *err);

#ifdef __cplusplus
}
#endif
#endif
