/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: the "s3" storage backend, with explicit settings.
 *
 * trs_storage_open(&s, ctx, "s3://", &err) gives an S3 backend configured
 * the AWS way (region from the context or the environment, endpoint from
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, credentials from the usual chain).
 * trs_storage_s3_new does the same with explicit overrides:
 *
 *     trs_s3_options o = TRS_S3_OPTIONS_INIT;
 *     o.endpoint_url = "http://127.0.0.1:9000";   // path-style addressing
 *     o.part_size = 64ull << 20;
 *     trs_storage_s3_new(&dest, ctx, &o, &err);
 *
 * Objects below the multipart threshold are sent in one PutObject; larger
 * ones as a multipart upload whose parts go up in parallel (bounded by the
 * context's max_memory), which is aborted on any failure so that no parts
 * are left behind. Failed requests are retried with exponential backoff and
 * full jitter on 5xx, 429/SlowDown, RequestTimeout, connection and timeout
 * errors; ExpiredToken refreshes the credentials; other 4xx fail at once
 * with S3's code and message in the trs_error.
 */
#ifndef TRS_S3_H
#define TRS_S3_H

#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRS_S3_OPTIONS_VERSION 3

/** S3 settings. Start from TRS_S3_OPTIONS_INIT; zero fields mean "the default". */
typedef struct trs_s3_options {
	unsigned int version;
	/* "https://host[:port]" of an S3-compatible endpoint (path-style addressing).
	 * NULL: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then the regional AWS
	 * endpoint with virtual-hosted addressing. */
	const char *endpoint_url;
	/* NULL: the context's region, then AWS_REGION / AWS_DEFAULT_REGION, the
	 * profile's region, instance metadata; "us-east-1" for custom endpoints. */
	const char *region;
	uint64_t multipart_threshold; /* objects of this size and more go multipart; default 16 MiB */
	uint64_t part_size;           /* default 16 MiB; raised to keep parts within 5 MiB..5 GiB and <= 10,000 */
	unsigned int max_attempts;    /* tries per request, retries included; default 5 */
	int no_verify_ssl;            /* nonzero: skip TLS verification (test endpoints only; logged) */
	/* Version 2. */
	/* Nonzero: hash single-PUT bodies here too, for S3-compatible servers that ignore Content-MD5
	 * (moto, say). Zero: S3 checks them itself (400 BadDigest); environment TRS_VERIFY_LOCAL=1. */
	int verify_local;
	/* Nonzero: SSE-KMS puts without an S3 Bucket Key (one KMS call per object); environment
	 * TRS_S3_BUCKET_KEY=false. Zero: x-amz-server-side-encryption-bucket-key-enabled: true. */
	int no_bucket_key;
	/* Version 3. */
	/* Nonzero: sign the SHA-256 of every body, also over https; environment TRS_S3_SIGN_PAYLOAD=1.
	 * Zero: over https, a single PUT that carries Content-MD5 (which S3 checks) is signed as
	 * UNSIGNED-PAYLOAD, as the AWS SDKs sign bodies that carry a checksum: TLS keeps the bytes
	 * from being changed on the way, and the body is not hashed a second time. Over http every
	 * body is signed. */
	int sign_payload;
} trs_s3_options;

#define TRS_S3_OPTIONS_INIT {TRS_S3_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * Create an S3 backend. `opts` may be NULL for all defaults; strings are
 * copied. Credentials are looked up on first use, not here. Returns 0,
 * TRS_EINVAL (bad option or endpoint URL), or TRS_ENOTFOUND when no region
 * can be found for AWS's own endpoints.
 */
TRS_EXTERN(int) trs_storage_s3_new(trs_storage **out, trs_ctx *ctx, const trs_s3_options *opts, trs_error *err);

#ifdef __cplusplus
}
#endif
#endif
