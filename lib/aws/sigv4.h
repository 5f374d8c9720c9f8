/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS Signature Version 4 (private).
 *
 * One function signs one request: it builds the canonical request, the
 * string to sign and the signature, and hands back the headers (or query
 * parameters) the caller must add before sending. It never sends anything
 * and never logs: the secret key and the signature only leave through
 * `trs__sigv4_result`, which the caller must not log either.
 *
 * S3 and the other services disagree on the canonical URI:
 * - S3 signs the path exactly as it is sent (each key byte encoded once,
 *   '/' kept, no "." / ".." / "//" normalization, since those are legal in
 *   keys): use TRS_SIGV4_S3.
 * - Other services (STS, SQS, ...) normalize the path and encode it a
 *   second time (a '%' of the wire path becomes "%25"): TRS_SIGV4_GENERIC.
 */
#ifndef TRS_SIGV4_H
#define TRS_SIGV4_H

#include "internal.h"
#include "codec.h"

#include <pthread.h>

#include <time.h>

#include "digest.h"

/* SHA-256 of the empty string, the payload hash of a request without body. */
#define TRS_SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define TRS_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

typedef struct trs__sigv4_credentials {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "" for long-term keys */
} trs__sigv4_credentials;

/*
 * The signing key of the last (secret, day, region, service) a client
 * signed with, as a keyed HMAC context: deriving the key costs four HMACs,
 * a quarter of a small request's CPU, and it changes once a day; keying an
 * HMAC with it costs two hashes more per request. Owned by the client
 * (lib/aws/http.c); the secret is kept to compare, wiped when replaced or
 * freed (OpenSSL wipes the key with its context).
 */
typedef struct trs__sigv4_key_cache {
	pthread_mutex_t mu;
	char scope[96];            /* "20150830/eu-west-1/s3" */
	char *secret;
	EVP_MAC_CTX *keyed;        /* HMAC-SHA256 keyed with the signing key */
} trs__sigv4_key_cache;

void trs__sigv4_key_cache_init(trs__sigv4_key_cache *c);
void trs__sigv4_key_cache_free(trs__sigv4_key_cache *c);

typedef struct trs__sigv4_options {
	const char *region;
	const char *service;
	time_t now;                /* signing time (UTC seconds) */
	bool normalize_path;       /* remove "." / ".." segments and empty segments */
	bool double_encode;        /* encode the wire path once more for the canonical URI */
	bool content_sha256_header; /* sign and send x-amz-content-sha256 (S3 requires it) */
	bool omit_session_token;   /* the token is sent but not signed (a few services want that) */
	bool presign;              /* sign in the query string instead of Authorization */
	unsigned int expires;      /* presign: X-Amz-Expires seconds */
	trs__sigv4_key_cache *key_cache; /* NULL: the key is derived every time */
} trs__sigv4_options;

/* S3 rules and the generic rules, as initializers for trs__sigv4_options. */
#define TRS_SIGV4_S3 {NULL, "s3", 0, false, false, true, false, false, 0, NULL}
#define TRS_SIGV4_GENERIC(service) {NULL, (service), 0, true, true, false, false, false, 0, NULL}

typedef struct trs__sigv4_request {
	const char *method;
	const char *path;          /* as sent on the wire, e.g. "/bucket/a%20b"; "" means "/" */
	const char *query;         /* as sent, without '?'; NULL or "" for none */
	const trs_kv *headers;     /* must contain Host; names in any case */
	size_t nheaders;
	const char *payload_hash;  /* hex SHA-256 of the body, or UNSIGNED-PAYLOAD; NULL: empty body */
} trs__sigv4_request;

typedef struct trs__sigv4_result {
	char amz_date[17];          /* "20150830T123600Z" */
	char signature[TRS_SHA256_HEX_LEN + 1];
	trs__buf canonical_request;  /* for tests and debugging; never log it with a token in it */
	trs__buf string_to_sign;
	trs__buf signed_headers;     /* "host;x-amz-date" */
	trs__buf authorization;      /* header mode: the Authorization value */
	trs__buf query;              /* presign mode: the whole query string to send, signature included */
	/*
	 * Header mode: what to add to the request, in this order:
	 * X-Amz-Date, X-Amz-Security-Token (when any), x-amz-content-sha256 (when
	 * asked), Authorization. Values point into this result and the credentials.
	 */
	trs_kv add_headers[4];
	size_t nadd_headers;
	char content_sha256[TRS_SHA256_HEX_LEN + 1];
} trs__sigv4_result;

/* Sign `req`. Fills `out` (free it with trs__sigv4_result_free, also on failure). */
int trs__sigv4_sign(const trs__sigv4_credentials *creds, const trs__sigv4_options *opts,
		    const trs__sigv4_request *req, trs__sigv4_result *out, trs_error *err);
void trs__sigv4_result_free(trs__sigv4_result *r);

/* "20150830T123600Z" for t (UTC). */
void trs__amz_date(time_t t, char out[17]);

#endif
