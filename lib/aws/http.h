/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP client (private): a thin libcurl wrapper shared by the S3 backend and
 * the credential providers.
 *
 * A trs__http is safe to use from many threads at once: each request takes
 * an easy handle from a pool (returned afterwards, so its connections stay
 * alive), and all handles share one DNS cache, TLS session cache and
 * connection cache through a curl share object. Worker threads therefore
 * reuse keep-alive connections no matter which handle they pick up.
 *
 * Nothing here logs headers or bodies: they may carry credentials.
 */
#ifndef TRS_HTTP_H
#define TRS_HTTP_H

#include "internal.h"

typedef struct trs__http trs__http;

typedef struct trs__http_options {
	bool insecure;             /* skip TLS verification (test endpoints only; logged as a warning) */
	long connect_timeout_ms;   /* default 10 s */
	long low_speed_time_s;     /* abort when under 1 byte/s for this long; default 60 s, or
	                            * TRS_HTTP_LOW_SPEED_TIME_S from the environment (tests) */
	size_t pool_size;          /* easy handles kept for reuse; default 64 */
} trs__http_options;

#define TRS_HTTP_OPTIONS_INIT {false, 0, 0, 0}

/* Create a client. ctx (may be NULL) supplies logging and cancellation. */
int trs__http_new(trs__http **out, const trs_ctx *ctx, const trs__http_options *opts, trs_error *err);
void trs__http_free(trs__http *http);
/* The offset a skew error taught (lib/aws/clock.c): seconds added to this host's clock when signing
 * for this client's service. 0 at first. */
long trs__http_clock_offset(const trs__http *http);
void trs__http_set_clock_offset(trs__http *http, long seconds);
const trs_ctx *trs__http_ctx(const trs__http *http);
/* The client's signing-key cache (lib/aws/sigv4.c), for the requests signed to send through it. */
struct trs__sigv4_key_cache *trs__http_key_cache(trs__http *http);

typedef struct trs__http_request {
	const char *method;          /* "GET", "PUT", "POST", "HEAD", "DELETE" */
	const char *url;
	const trs_kv *headers;
	size_t nheaders;
	/* Body: from memory (body, body_len), or streamed from body_stream
	 * (exactly body_stream->length bytes), or none. */
	const void *body;
	size_t body_len;
	trs_body *body_stream;
	/* Response body: a 2xx answer goes to sink when one is given; anything
	 * else (and every error answer) is kept in memory up to max_response
	 * bytes (default 1 MiB); the rest is dropped and `truncated` set. */
	trs_sink_fn sink;
	void *sink_userdata;
	size_t max_response;
	long timeout_ms;             /* whole transfer; 0: none (the low-speed limit applies) */
	long connect_timeout_ms;     /* 0: the client's */
} trs__http_request;

typedef struct trs__http_response {
	long status;                 /* 0 when no answer arrived */
	trs_kv *headers;             /* owned; names as sent */
	size_t nheaders;
	trs__buf body;
	bool truncated;
} trs__http_response;

/*
 * Perform one request. Returns 0 when an answer arrived, whatever its status
 * (look at resp->status); TRS_ENET (err->retryable set) for connection,
 * TLS and timeout failures; TRS_ECANCELED; or the negative code a body read
 * or the sink returned (err as they filled it). Free resp afterwards in
 * every case.
 */
int trs__http_do(trs__http *http, const trs__http_request *req, trs__http_response *resp, trs_error *err);

/* The value of a response header (case-insensitive name), or NULL. */
const char *trs__http_header(const trs__http_response *resp, const char *name);
void trs__http_response_free(trs__http_response *resp);

#endif
