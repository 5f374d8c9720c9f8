/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The s3 backend's private pieces, shared by storage_s3.c (requests, retries,
 * single-shot operations) and s3_multipart.c (multipart upload and copy).
 */
#ifndef TRS_STORAGE_S3_H
#define TRS_STORAGE_S3_H

#include "internal.h"

#include <pthread.h>
#include <string.h>
#include "trs/s3.h"
#include "digest.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/xml.h"
#include "aws/limiter.h"

#define TRS_S3_MIN_PART (5ull << 20)
#define TRS_S3_MAX_PART (5ull << 30)
#define TRS_S3_MAX_PARTS 10000ull
#define TRS_S3_MAX_OBJECT (5ull << 40)
#define TRS_S3_MAX_COPY_OBJECT (5ull << 30) /* CopyObject's limit; larger copies go multipart */

typedef struct trs__s3 {
	trs_storage parent;
	trs_ctx *ctx;
	trs__http *http;
	trs__cred_provider *creds;
	bool custom_endpoint;  /* path-style addressing on a user-given endpoint */
	char *scheme;          /* "https" */
	char *authority;       /* "host[:port]" of the endpoint (AWS: "s3.<region>.amazonaws.com") */
	char *base_path;       /* "" or "/prefix" of a custom endpoint */
	char *region;
	uint64_t threshold;
	uint64_t part_size;
	unsigned int max_attempts;
	unsigned int parts_in_flight; /* per multipart upload, at the configured part size */
	/*
	 * Part buffers of all multipart uploads come from one pool: half the
	 * context's max_memory (the pipeline keeps the other half, see
	 * trs__storage_reserved_memory). An upload waits for its first buffer
	 * and takes more only while the pool has room, so uploads never wait
	 * on each other while holding memory.
	 */
	uint64_t upload_memory;
	uint64_t upload_memory_used;
	pthread_mutex_t mem_lock;
	pthread_cond_t mem_freed;
	double backoff_base_s;
	double backoff_cap_s;
	bool bucket_key;       /* SSE-KMS puts and copies ask for an S3 Bucket Key */
	bool sign_payload;     /* sign every body's SHA-256, also over https (trs_s3_options.sign_payload) */
	trs__aws_budget budget;    /* retries of every request of this backend */
	trs__aws_limiter limiter;  /* requests in flight, adaptive (503 SlowDown lowers the limit) */
	/* Buckets whose objects these credentials may not read (HEAD answered 403): writes to them
	 * cannot compare versions, and are made as before, said once per bucket (s3_guard.c). */
	pthread_mutex_t unguarded_lock;
	char **unguarded;
	size_t nunguarded;
	char **untagged;           /* and buckets whose tags they may not read (GetObjectTagging 403) */
	size_t nuntagged;
} trs__s3;

/* Over https, unless told to sign every payload (trs_s3_options.sign_payload,
 * TRS_S3_SIGN_PAYLOAD), a body S3 verifies by its own checksum (Content-MD5,
 * x-amz-checksum-crc32) is signed UNSIGNED-PAYLOAD: it is not hashed here. */
static inline bool trs__s3_unsigned_payload(const trs__s3 *s)
{
	return !s->sign_payload && s->scheme && strcmp(s->scheme, "https") == 0;
}

/* A multipart part's x-amz-checksum-crc32 (base64 of four bytes). */
typedef struct trs__s3_part_crc {
	char b64[TRS_CRC32_B64_LEN + 1];
} trs__s3_part_crc;

/* One S3 call; s3_request signs, sends and retries it. */
typedef struct trs__s3_call {
	const char *op;          /* "PutObject", for messages and logs */
	const char *method;
	const char *bucket;
	const char *key;         /* NULL: the bucket itself */
	const char *query;       /* encoded, e.g. "partNumber=3&uploadId=..." */
	const trs_kv *headers;   /* x-amz-*, Content-MD5, ... (not Host, not Range) */
	size_t nheaders;
	const void *body;        /* memory body; kept until success so retries re-send it */
	size_t body_len;
	bool checksummed;        /* the body carries a checksum S3 verifies (Content-MD5, a part's CRC-32):
	                            see trs__s3_unsigned_payload */
	trs_sink_fn sink;        /* GET: 2xx bytes go here */
	void *sink_userdata;
	uint64_t range_start;    /* GET with a range: first byte */
	uint64_t range_length;   /* UINT64_MAX: to the end; 0 with range_start 0: no Range header */
	bool error_in_200;       /* a 200 may carry <Error> (S3's copies and Complete) */
	/* What a 2xx must hold, when its body is the result (Create, Complete, the copies,
	 * GetObjectTagging): anything else (empty, cut short, another document) is a failed
	 * attempt, retried as a 500, as the AWS SDKs do. 0: any 2xx is a success. */
	trs__aws_xml_kind expect;
	unsigned int *attempts;  /* when set, the attempts made (more than 1: an earlier one may have
	                            reached S3 and only its answer been lost) */
	bool not_found_ok;       /* DELETE: 404 is success */
} trs__s3_call;

/*
 * Perform `call`, retrying what is worth retrying. On 0, resp holds the
 * final 2xx answer (free it). On failure err names op, bucket and key,
 * S3's code and message, and what to do.
 */
int trs__s3_request(trs__s3 *s, const trs__s3_call *call, trs__http_response *resp, trs_error *err);

/* Headers for a put or copy destination: tagging, class, SSE-KMS, metadata. */
typedef struct trs__s3_headers {
	trs_kv *kv;      /* names and values owned (malloc'ed) */
	size_t n;
	size_t cap;
} trs__s3_headers;

#define TRS_S3_HEADERS_INIT {0, 0, 0}

/* With SSE-KMS, x-amz-server-side-encryption-bucket-key-enabled: true unless the backend was told otherwise. */
int trs__s3_put_headers(const trs__s3 *s, trs__s3_headers *h, const trs_put_request *req, trs_error *err);
int trs__s3_headers_add(trs__s3_headers *h, const char *name, const char *value, trs_error *err);
void trs__s3_headers_free(trs__s3_headers *h);

/* "/bucket/key" percent-encoded for x-amz-copy-source. */
int trs__s3_copy_source(trs__buf *b, const char *bucket, const char *key, trs_error *err);

/* Read exactly len bytes of body; with expect_end, then insist on its end (read() == 0). */
int trs__s3_read_body(trs_body *body, unsigned char *buf, size_t len, bool expect_end, const trs_put_request *req,
		      trs_error *err);

/*
 * A conditional write's precondition (s3_guard.c): none, the key must have
 * no object (If-None-Match: *), or its object must have this ETag
 * (If-Match), as the version compared with had.
 */
typedef struct trs__s3_guard {
	const trs_write_condition *cond;
	int absent;                /* If-None-Match: *; else If-Match: etag */
	char etag[96];
	int outcome;               /* the last look's verdict: TRS_WRITTEN to go ahead, or why not */
	unsigned int attempts;     /* of the last conditional write: more than 1, and this very version
	                              found there, means an earlier attempt of ours wrote it */
} trs__s3_guard;

/* The guard's header (nothing for a NULL guard). */
int trs__s3_guard_headers(const trs__s3_guard *g, trs__s3_headers *h, trs_error *err);
/* Was this failure the guard's precondition (412, 409 ConditionalRequestConflict, 404 for If-Match)? */
bool trs__s3_guard_refused(const trs__s3_guard *g, int rc, const trs_error *err);
/* Look at the key again after a refusal: 0 with g->outcome (and the new precondition), or a code. */
int trs__s3_guard_look(trs__s3 *s, const trs_put_request *req, trs__s3_guard *g, trs_error *err);
/* After a refusal and a look: TRS_WRITTEN when the version found is the one a retried write of ours
 * put there, else the look's outcome. */
int trs__s3_guard_own_write(const trs__s3_guard *g);
/* The vtable's conditional writes (version 3). */
int trs__s3_put_if_newer(trs_storage *self, const trs_put_request *req, const trs_write_condition *cond,
			 trs_body *body, trs_error *err);
int trs__s3_copy_if_newer(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
			  const trs_write_condition *cond, trs_error *err);
void trs__s3_unguarded_free(trs__s3 *s);

/* Single-request operations (storage_s3.c), with an optional guard. */
int trs__s3_check_put(const trs_put_request *req, const trs_body *body, trs_error *err);
/* The bytes of a body below the multipart threshold: where they are in memory, or read into *owned (free it). */
int trs__s3_body_bytes(trs_body *body, const trs_put_request *req, const void **bytes, unsigned char **owned,
		       trs_error *err);
int trs__s3_put_single(trs__s3 *s, const trs_put_request *req, const void *bytes, size_t len,
		       trs__s3_guard *guard, trs_error *err);
int trs__s3_copy_object(trs__s3 *s, const char *src_bucket, const char *src_key, const trs_put_request *req,
			trs__s3_guard *guard, trs_error *err);
/* HEAD into info, and the tags: always, never, or only when the user metadata holds no version and the
 * object has tags (TRS__S3_TAGS_FOR_VERSION: one request for what a restore wrote). */
enum { TRS__S3_TAGS_NEVER, TRS__S3_TAGS_ALWAYS, TRS__S3_TAGS_FOR_VERSION };
int trs__s3_head_info(trs__s3 *s, const char *bucket, const char *key, int tags, trs_object_info *info,
		      trs_error *err);

/* Multipart (s3_multipart.c). */
uint64_t trs__s3_part_size(uint64_t object_size, uint64_t wanted);
/*
 * The ETag S3 gives a completed multipart object: the MD5 of the parts' MD5s
 * (their ETags, as bytes), "-", the number of parts. Returns 0, or -1 when
 * a part's ETag is not 32 hex digits (quoted or not).
 */
int trs__s3_multipart_etag(char *const *etags, unsigned int nparts, char out[48]);
/*
 * With a guard, CompleteMultipartUpload carries its precondition; refused,
 * the key is looked at again: the upload completes under the new
 * precondition, or is aborted when a newer version (or this one) stands
 * there, and the outcome is returned (TRS_KEPT_NEWER, TRS_ALREADY_CURRENT).
 */
int trs__s3_multipart_put(trs__s3 *s, const trs_put_request *req, trs_body *body, trs__s3_guard *guard,
			  trs_error *err);
int trs__s3_multipart_copy(trs__s3 *s, const char *src_bucket, const char *src_key, uint64_t size,
			   const trs_put_request *req, trs__s3_guard *guard, trs_error *err);

/* A multipart upload's own requests (s3_multipart.c), shared by the upload and the copy
 * (s3_multipart_copy.c). The query of a part (part_number > 0) or of the upload itself. */
int trs__s3_mpu_query(trs__buf *q, const char *upload_id, unsigned int part_number, trs_error *err);
/* CreateMultipartUpload with the put's headers (and x-amz-checksum-algorithm CRC32 when crc). */
int trs__s3_mpu_create(trs__s3 *s, const trs_put_request *req, bool crc, char **upload_id, trs_error *err);
/* CompleteMultipartUpload of nparts parts, with each part's CRC-32 when crcs is not NULL, under the
 * guard's precondition when there is one; a NoSuchUpload answer after a lost one is a success when the
 * object stands with these parts' ETag. */
int trs__s3_mpu_complete(trs__s3 *s, const trs_put_request *req, const char *upload_id, char **etags,
			 const trs__s3_part_crc *crcs, unsigned int nparts, trs__s3_guard *guard, trs_error *err);
/* AbortMultipartUpload, best effort: a failure is logged with what to do. */
void trs__s3_mpu_abort(trs__s3 *s, const trs_put_request *req, const char *upload_id);

#endif
