/* SPDX-License-Identifier: Apache-2.0 */
/*
 * S3 requests: addressing, SigV4 signing, and the retry loop (the policy of
 * lib/aws/: full-jitter backoff, the retry budget, adaptive concurrency;
 * credentials refreshed on ExpiredToken), with error messages that say
 * what failed and what to do.
 */
#include "storage_s3.h"
#include "aws/sigv4.h"
#include "aws/send.h"
#include "aws/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- addressing ---- */

/* Virtual-hosted names cannot hold dots under TLS wildcards; such buckets go path-style. */
static bool path_style(const trs__s3 *s, const char *bucket)
{
	return s->custom_endpoint || strchr(bucket, '.') != NULL;
}

static int build_target(const trs__s3 *s, const trs__s3_call *c, trs__buf *url, trs__buf *host, trs__buf *path,
			trs_error *err)
{
	int rc;
	if (path_style(s, c->bucket)) {
		rc = trs__buf_puts(host, s->authority, err);
		if (rc == 0)
			rc = trs__buf_printf(path, err, "%s/", s->base_path);
		if (rc == 0)
			rc = trs__uri_encode(path, c->bucket, strlen(c->bucket), false, err);
		if (rc == 0 && c->key)
			rc = trs__buf_puts(path, "/", err);
	} else {
		rc = trs__buf_printf(host, err, "%s.%s", c->bucket, s->authority);
		if (rc == 0)
			rc = trs__buf_puts(path, "/", err);
	}
	if (rc == 0 && c->key)
		rc = trs__uri_encode(path, c->key, strlen(c->key), true, err);
	if (rc == 0)
		rc = trs__buf_printf(url, err, "%s://%s%s%s%s", s->scheme, host->data, path->data,
				     c->query && *c->query ? "?" : "", c->query ? c->query : "");
	return rc;
}

/* ---- errors ---- */

/* Reads and deletes of an archive (trs_fetch, the staging delete) against writes of objects. */
static bool reads_an_archive(const char *op)
{
	return !strcmp(op, "GetObject") || !strcmp(op, "HeadObject") || !strcmp(op, "DeleteObject");
}

static const char *hint_for(long status, const char *code, const char *op)
{
	static const char *const creds[] = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
					    "ExpiredToken", "TokenRefreshRequired", "InvalidClientTokenId"};
	if (!code)
		code = "";
	if (trs__str_in(code, creds, TRS_ARRAY_SIZE(creds)))
		return "check the AWS credentials in use (and the system clock)";
	if (strcmp(code, "RequestTimeTooSkewed") == 0)
		return "fix the system clock: SigV4 allows 15 minutes of skew";
	if (strcmp(code, "NoSuchBucket") == 0 && reads_an_archive(op))
		return "the bucket the archive is read from does not exist here: check the staging bucket named by "
		       "the S3 event (or the s3:// URL) and the region";
	if (strcmp(code, "NoSuchBucket") == 0)
		return "create the bucket, or fix the bucket name (and region) of this target";
	if (strncmp(code, "KMS.", 4) == 0 || strstr(code, "KMS"))
		return "check the KMS key id and that these credentials may use it (kms:GenerateDataKey, kms:Decrypt)";
	if (strcmp(code, "AccessDenied") == 0 || status == 403)
		return "check that the IAM policy of these credentials allows this call on the bucket (and the KMS "
		       "key, when one is set)";
	if (strcmp(code, "PermanentRedirect") == 0 || strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
	    status == 301)
		return "the bucket is in another region: set the region (or endpoint) to the bucket's";
	if (strcmp(code, "InvalidStorageClass") == 0)
		return "use a storage class S3 accepts (STANDARD, STANDARD_IA, GLACIER_IR, ...)";
	if (status >= 500 || status == 429 || status == 0)
		return "the service kept failing; nothing was written, and trying again later is safe";
	return NULL;
}

static int s3_fail(trs_error *err, const trs__s3 *s, const trs__s3_call *c, long status, const char *code,
		    const char *message, const char *request_id, const char *region_hint, unsigned int attempts)
{
	int trs_code = TRS_EHTTP;
	if (status == 404)
		trs_code = TRS_ENOTFOUND;
	else if (status == 401 || status == 403)
		trs_code = TRS_EAUTH;
	if (!err)
		return trs_code;
	const char *hint = hint_for(status, code, c->op);
	char where[TRS__SHORT_KEY_SIZE + 80];
	snprintf(where, sizeof(where), "s3://%s%s%s", TRS__SHORT(c->bucket), c->key ? "/" : "",
		 c->key ? TRS__SHORT(c->key) : "");
	char tries[48] = "";
	if (attempts > 1)
		snprintf(tries, sizeof(tries), " after %u attempts", attempts);
	char rid[96] = "";
	if (request_id && *request_id)
		snprintf(rid, sizeof(rid), " (request id %.64s)", request_id);
	/* S3's own sentence, whole up to 300 bytes, else cut on a character boundary. */
	char said[301];
	if (snprintf(said, sizeof(said), "%s", message ? message : "") >= (int)sizeof(said))
		trs__text_cut(said, sizeof(said) - 1);
	char region[160] = "";
	if (region_hint && *region_hint)
		snprintf(region, sizeof(region), " (the bucket is in %.48s, this endpoint is for %.24s)", region_hint,
			 s->region);
	trs__error_set(err, trs_code, "S3 %s of %s failed%s: HTTP %ld %s%s%s%s%s%s%s", c->op, where, tries, status,
		       code && *code ? code : "", *said ? ": " : "", said, rid, region, hint ? ". What to do: " : "",
		       hint ? hint : "");
	err->http_status = (int)status;
	snprintf(err->aws_code, sizeof(err->aws_code), "%s", code ? code : "");
	err->retryable = trs__aws_classify(status, code, false) != TRS__AWS_FAIL;
	return trs_code;
}

/* A code for answers without a body (HEAD) or with a body that is not S3 XML. */
static const char *code_from_status(long status)
{
	switch (status) {
	case 301: return "PermanentRedirect";
	case 400: return "BadRequest";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 412: return "PreconditionFailed";
	case 416: return "InvalidRange";
	case 429: return "TooManyRequests";
	case 500: return "InternalError";
	case 503: return "ServiceUnavailable";
	default: return "";
	}
}

/* ---- the request loop ---- */

typedef struct counting_sink {
	trs_sink_fn sink;
	void *userdata;
	uint64_t delivered;
} counting_sink;

static int count_and_forward(void *ud, const void *data, size_t len, trs_error *err)
{
	counting_sink *cs = ud;
	int rc = cs->sink(cs->userdata, data, len, err);
	if (rc == 0)
		cs->delivered += len;
	return rc;
}

/* One signed attempt: the call's headers, a Range that resumes a GET where the last attempt stopped. */
static int attempt_once(trs__s3 *s, const trs__s3_call *c, const char *url, const trs__aws_target *t,
			bool refresh, counting_sink *cs, trs__http_response *resp, trs_error *err)
{
	trs_kv *h = trs__calloc(c->nheaders + 1, sizeof(*h), err);
	if (!h)
		return TRS_ENOMEM;
	size_t nh = 0;
	for (size_t i = 0; i < c->nheaders; i++)
		h[nh++] = c->headers[i];
	char range[64];
	if (c->sink && (c->range_start || c->range_length != UINT64_MAX || cs->delivered)) {
		uint64_t from = c->range_start + cs->delivered;
		if (c->range_length == UINT64_MAX)
			snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)from);
		else
			snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)from,
				 (unsigned long long)(c->range_start + c->range_length - 1));
		h[nh++] = (trs_kv){"Range", range};
	}
	trs__sigv4_options o = TRS_SIGV4_S3;
	o.region = s->region;
	trs__http_request req = {0};
	req.method = c->method;
	req.url = url;
	req.headers = h;
	req.nheaders = nh;
	req.body = c->body;
	req.body_len = c->body_len;
	if (c->sink) {
		req.sink = count_and_forward;
		req.sink_userdata = cs;
	}
	int rc = trs__aws_send_as(s->http, s->creds, refresh, &o, t, &req, resp, err);
	free(h);
	return rc;
}

int trs__s3_request(trs__s3 *s, const trs__s3_call *c, trs__http_response *resp, trs_error *err)
{
	memset(resp, 0, sizeof(*resp));
	trs__buf url = TRS_BUF_INIT, host = TRS_BUF_INIT, path = TRS_BUF_INIT;
	char payload_hash[TRS_SHA256_HEX_LEN + 1];
	trs__aws_retry r;
	memset(&r, 0, sizeof(r)); /* its attempt count is read however the call ends */
	int rc = build_target(s, c, &url, &host, &path, err);
	if (rc < 0)
		goto done;
	/* The body is hashed once; the same bytes are re-sent on every attempt. Over TLS a body whose
	 * checksum S3 verifies needs no SHA-256 of ours, as the AWS SDKs sign it. */
	if (c->body && c->checksummed && trs__s3_unsigned_payload(s))
		snprintf(payload_hash, sizeof(payload_hash), "%s", "UNSIGNED-PAYLOAD");
	else if (c->body)
		trs__sha256_hex(c->body, c->body_len, payload_hash);
	else
		snprintf(payload_hash, sizeof(payload_hash), "%s", TRS_SHA256_EMPTY);

	counting_sink cs = {c->sink, c->sink_userdata, 0};
	trs__aws_target t = {host.data, path.data, c->query ? c->query : "", payload_hash};
	uint64_t ticket = 0;
	trs__aws_retry_start(&r, s->ctx, &s->budget, s->max_attempts, s->backoff_base_s, s->backoff_cap_s);
	for (;;) {
		trs__http_response_free(resp);
		trs_error aerr = TRS_ERROR_INIT;
		if ((rc = trs__aws_limiter_acquire(&s->limiter, &ticket, err)) < 0)
			goto done;
		rc = attempt_once(s, c, url.data, &t, r.refresh, &cs, resp, &aerr);
		long status = resp->status;
		trs__aws_xml x;
		memset(&x, 0, sizeof(x));
		if (rc < 0) {
			trs__aws_limiter_release(&s->limiter, ticket, TRS__AWS_ANSWER_NONE);
			/* Credentials, cancellation, memory and sink failures are final;
			 * so are transport errors curl calls permanent. */
			if (rc != TRS_ENET || !aerr.retryable || !trs__aws_retry_allowed(&r, TRS__AWS_RETRY, true, true)) {
				if (err)
					*err = aerr;
				if (rc == TRS_ENET && r.attempt > 1)
					trs__error_prefix(err, "S3 %s of s3://%s/%s failed after %u attempts", c->op,
							  c->bucket, TRS__SHORT(c->key), r.attempt);
				goto done;
			}
			trs__log(s->ctx, TRS_LOG_WARN, "S3 request failed; retrying", "op", c->op, "bucket", c->bucket,
				 "key", c->key, "error", aerr.message, NULL);
		} else {
			bool ok = status >= 200 && status < 300;
			if (ok && !c->error_in_200 && !c->expect) {
				rc = 0;
				goto success;
			}
			if (c->not_found_ok && status == 404) {
				rc = 0;
				goto success;
			}
			/* A document cut short is no result, even when its root was the right one. */
			bool whole = resp->body.len && trs__aws_xml_parse(resp->body.data, resp->body.len, &x, NULL) == 0;
			if (ok && (c->expect ? whole && x.kind == c->expect : x.kind != TRS_AWS_XML_ERROR)) {
				trs__aws_xml_free(&x);
				rc = 0;
				goto success;
			}
			char odd[160] = "";
			if (ok && x.kind != TRS_AWS_XML_ERROR)
				snprintf(odd, sizeof(odd), "S3 answered 200 OK with %s%.32s instead of its result (%zu bytes)",
					 !resp->body.len ? "an empty body"
					 : !whole        ? "a body that is not a whole XML document"
							 : "the document ",
					 whole ? x.root : "", resp->body.len);
			if (ok)
				status = 500; /* no result in a 200: S3 documents these as failures to retry */
			const char *code = x.code && *x.code ? x.code : *odd ? "InternalError" : code_from_status(status);
			if (*odd && !x.message)
				x.message = strdup(odd);
			/* A throttle slows the client down; a failing server (500
			 * InternalError, 503 ServiceUnavailable) leaves the limit alone. */
			trs__aws_answer answer = trs__aws_limiter_answer(status, code, false);
			bool throttled = answer == TRS__AWS_ANSWER_THROTTLED;
			trs__aws_limiter_release(&s->limiter, ticket, answer);
			trs__aws_verdict verdict = trs__aws_classify(status, code, false);
			/* This host's clock is off: signed in S3's time from now on, the request goes again. */
			bool clock = trs__aws_clock_correct(s->http, resp, code, "S3");
			if (clock)
				verdict = TRS__AWS_RETRY;
			/* With adaptive concurrency a throttling answer slows the client down
			 * instead of spending the budget, which is there for failures. */
			bool costs = verdict == TRS__AWS_RETRY && !(throttled && s->limiter.enabled) && !clock;
			if (!trs__aws_retry_allowed(&r, verdict, costs, false)) {
				rc = s3_fail(err, s, c, status, code, x.message, x.request_id,
					     trs__http_header(resp, "x-amz-bucket-region"), r.attempt);
				trs__aws_xml_free(&x);
				goto done;
			}
			if (!costs)
				trs__aws_budget_count(&s->budget);
			char st[16];
			snprintf(st, sizeof(st), "%ld", status);
			trs__log(s->ctx, TRS_LOG_WARN, "S3 request failed; retrying", "op", c->op, "bucket", c->bucket,
				 "key", c->key, "status", st, "code", code, "error", *odd ? odd : NULL, NULL);
			trs__aws_xml_free(&x);
		}
		rc = trs__aws_retry_wait(&r, err);
		if (rc < 0)
			goto done;
	}
success:
	trs__aws_limiter_release(&s->limiter, ticket, TRS__AWS_ANSWER_OK);
	trs__aws_retry_succeeded(&r);
done:
	if (c->attempts)
		*c->attempts = r.attempt;
	if (rc < 0)
		trs__http_response_free(resp);
	trs__buf_free(&url);
	trs__buf_free(&host);
	trs__buf_free(&path);
	return rc;
}

