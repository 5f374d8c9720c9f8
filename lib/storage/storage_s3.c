/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "s3" storage backend: its options and vtable, and the single-request
 * operations (PutObject, GetObject, HeadObject, CopyObject, DeleteObject).
 * Each request is signed, sent and retried by s3_request.c; multipart upload
 * and copy live in s3_multipart.c, the headers of a write in s3_headers.c,
 * the conditional writes in s3_guard.c.
 */
#include "storage_s3.h"
#include "storage_open.h"
#include "codec.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#define DEFAULT_THRESHOLD (16ull << 20)
#define DEFAULT_PART_SIZE (16ull << 20)
#define DEFAULT_ATTEMPTS 5
#define MAX_PARTS_IN_FLIGHT 8

/* ---- operations ---- */

static int check_names(const char *bucket, const char *key, trs_error *err)
{
	if (!bucket || !*bucket || strchr(bucket, '/'))
		return trs__error_set(err, TRS_EINVAL, "'%s' is not an S3 bucket name", TRS__SHORT(bucket));
	if (key && (!*key || strlen(key) > 1024))
		return trs__error_set(err, TRS_EINVAL, "an S3 key must be 1 to 1024 bytes long (s3://%s/%s)",
				      bucket, TRS__SHORT(key));
	return 0;
}

int trs__s3_read_body(trs_body *body, unsigned char *buf, size_t len, bool expect_end, const trs_put_request *req,
		    trs_error *err)
{
	size_t got = 0;
	while (got < len) {
		int64_t n = body->read(body->self, buf + got, len - got, err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return trs__error_set(err, TRS_EINTEGRITY, "the body of s3://%s/%s ended after %zu of %zu bytes",
					      req->bucket, TRS__SHORT(req->key), got, len);
		got += (size_t)n;
	}
	if (!expect_end)
		return 0;
	unsigned char extra;
	int64_t n = body->read(body->self, &extra, 1, err);
	if (n < 0)
		return (int)n;
	if (n > 0)
		return trs__error_set(err, TRS_EINTEGRITY, "the body of s3://%s/%s is longer than its %llu bytes",
				      req->bucket, TRS__SHORT(req->key), (unsigned long long)body->length);
	return 0;
}

static int md5_header(trs__s3_headers *h, const char *hex, trs_error *err)
{
	unsigned char md5[16];
	if (strlen(hex) != 32 || trs__unhex(hex, md5, sizeof(md5)) < 0)
		return trs__error_set(err, TRS_EINVAL, "content_md5_hex must be 32 hex digits");
	char b64[32];
	trs__base64(md5, 16, b64);
	return trs__s3_headers_add(h, "Content-MD5", b64, err);
}

int trs__s3_put_single(trs__s3 *s, const trs_put_request *req, const void *bytes, size_t len,
			trs__s3_guard *guard, trs_error *err)
{
	trs__s3_headers h = TRS_S3_HEADERS_INIT;
	int rc = trs__s3_put_headers(s, &h, req, err);
	bool md5 = req->content_md5_hex && *req->content_md5_hex;
	if (rc == 0 && md5)
		rc = md5_header(&h, req->content_md5_hex, err);
	/* Without an MD5 to send (the source's ETag is a multipart one), over https the body carries its
	 * CRC-32 instead of having its SHA-256 signed, as a multipart part does. */
	bool crc = !md5 && trs__s3_unsigned_payload(s);
	if (rc == 0 && crc) {
		char b64[TRS_CRC32_B64_LEN + 1];
		trs__crc32_base64(bytes, len, b64);
		rc = trs__s3_headers_add(&h, "x-amz-checksum-crc32", b64, err);
	}
	if (rc == 0)
		rc = trs__s3_guard_headers(guard, &h, err);
	if (rc == 0) {
		trs__s3_call c = {0};
		c.op = "PutObject";
		c.method = "PUT";
		c.bucket = req->bucket;
		c.key = req->key;
		c.headers = h.kv;
		c.nheaders = h.n;
		c.body = bytes;
		c.body_len = len;
		c.checksummed = md5 || crc; /* S3 checks Content-MD5 and x-amz-checksum-crc32 */
		if (guard)
			c.attempts = &guard->attempts;
		trs__http_response resp;
		rc = trs__s3_request(s, &c, &resp, err);
		trs__http_response_free(&resp);
		if (rc < 0 && err && md5 && !strcmp(err->aws_code, "BadDigest")) {
			/* S3 found that the bytes do not have the manifest's MD5 and wrote nothing. */
			err->code = rc = TRS_EINTEGRITY;
			size_t used = strlen(err->message);
			snprintf(err->message + used, sizeof(err->message) - used,
				 ". The bytes are not the ones the manifest's etag names; not written: the archive is "
				 "damaged, restore it again from its source");
		}
	}
	if (rc == 0)
		trs__log(s->ctx, TRS_LOG_DEBUG, "S3 object written", "bucket", req->bucket, "key", req->key, NULL);
	trs__s3_headers_free(&h);
	return rc;
}

int trs__s3_body_bytes(trs_body *body, const trs_put_request *req, const void **bytes, unsigned char **owned,
		       trs_error *err)
{
	size_t in_memory = 0;
	*owned = NULL;
	if (body->length && trs_body_memory(body, bytes, &in_memory) && in_memory == body->length)
		return 0;
	if (!(*owned = trs__malloc((size_t)body->length, err)))
		return TRS_ENOMEM;
	*bytes = *owned;
	return trs__s3_read_body(body, *owned, (size_t)body->length, true, req, err);
}

int trs__s3_check_put(const trs_put_request *req, const trs_body *body, trs_error *err)
{
	int rc = check_names(req->bucket, req->key, err);
	if (rc == 0 && body->length > TRS_S3_MAX_OBJECT)
		rc = trs__error_set(err, TRS_ELIMIT, "s3://%s/%s is %llu bytes, over S3's 5 TiB object limit",
				    req->bucket, TRS__SHORT(req->key), (unsigned long long)body->length);
	return rc;
}

static int s3_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	trs__s3 *s = (trs__s3 *)self;
	int rc = trs__s3_check_put(req, body, err);
	if (rc < 0)
		return rc;
	if (body->length >= s->threshold)
		return trs__s3_multipart_put(s, req, body, NULL, err);
	/*
	 * A body already in memory (the pipeline's buffered objects) is sent
	 * from where it is, and re-sent from there on a retry; any other body is
	 * read into a buffer first, since a retry must send it again.
	 */
	const void *bytes = NULL;
	unsigned char *owned;
	rc = trs__s3_body_bytes(body, req, &bytes, &owned, err);
	if (rc == 0)
		rc = trs__s3_put_single(s, req, bytes, (size_t)body->length, NULL, err);
	free(owned);
	return rc;
}

static int s3_get(trs_storage *self, const char *bucket, const char *key, uint64_t offset, uint64_t length,
		  trs_sink_fn sink, void *ud, trs_error *err)
{
	trs__s3 *s = (trs__s3 *)self;
	int rc = check_names(bucket, key, err);
	if (rc < 0 || length == 0)
		return rc;
	trs__s3_call c = {0};
	c.op = "GetObject";
	c.method = "GET";
	c.bucket = bucket;
	c.key = key;
	c.sink = sink;
	c.sink_userdata = ud;
	c.range_start = offset;
	c.range_length = length;
	trs__http_response resp;
	rc = trs__s3_request(s, &c, &resp, err);
	trs__http_response_free(&resp);
	return rc;
}

/* "=?UTF-8?B?...?=" back to its bytes; anything else is copied. */
static char *decode_metadata_value(const char *v, trs_error *err)
{
	size_t len = strlen(v);
	if (len < 12 || strncasecmp(v, "=?UTF-8?B?", 10) != 0 || strcmp(v + len - 2, "?=") != 0)
		return trs__strdup(v, err);
	size_t b64len = len - 12;
	if (b64len % 4)
		return trs__strdup(v, err);
	char *out = trs__malloc(b64len / 4 * 3 + 1, err);
	if (!out)
		return NULL;
	int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)v + 10, (int)b64len);
	if (n < 0) {
		free(out);
		return trs__strdup(v, err);
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	if (b64len >= 1 && v[10 + b64len - 1] == '=')
		n--;
	if (b64len >= 2 && v[10 + b64len - 2] == '=')
		n--;
	out[n] = '\0';
	return out;
}

static int kv_push(trs_kv **arr, size_t *n, const char *k, const char *v, bool decode, trs_error *err)
{
	trs_kv *na = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!na)
		return trs__error_set(err, TRS_ENOMEM, "out of memory describing an object");
	*arr = na;
	char *kk = trs__strdup(k, err);
	char *vv = kk ? (decode ? decode_metadata_value(v, err) : trs__strdup(v, err)) : NULL;
	if (!vv) {
		free(kk);
		return TRS_ENOMEM;
	}
	(*arr)[*n].key = kk;
	(*arr)[*n].value = vv;
	(*n)++;
	return 0;
}

/* S3's answer to a HEAD into info: size, mtime, ETag, class, KMS key, user metadata. */
static int info_from_head(const trs__http_response *resp, trs_object_info *info, trs_error *err)
{
	int rc = 0;
	const char *v;
	if ((v = trs__http_header(resp, "Content-Length")))
		info->size = strtoull(v, NULL, 10);
	if ((v = trs__http_header(resp, "Last-Modified")))
		info->mtime = (int64_t)curl_getdate(v, NULL);
	if (info->mtime < 0)
		info->mtime = 0;
	v = trs__http_header(resp, "ETag");
	info->etag = trs__strdup(v ? v : "", err);
	v = trs__http_header(resp, "x-amz-storage-class");
	info->storage_class = info->etag ? trs__strdup(v ? v : "STANDARD", err) : NULL;
	v = trs__http_header(resp, "x-amz-server-side-encryption-aws-kms-key-id");
	if (v)
		info->kms_key_id = trs__strdup(v, err);
	if (!info->etag || !info->storage_class || (v && !info->kms_key_id))
		rc = TRS_ENOMEM;
	for (size_t i = 0; rc == 0 && i < resp->nheaders; i++)
		if (strncasecmp(resp->headers[i].key, "x-amz-meta-", 11) == 0)
			rc = kv_push(&info->metadata, &info->nmetadata, resp->headers[i].key + 11, resp->headers[i].value,
				     true, err);
	return rc;
}

int trs__s3_head_info(trs__s3 *s, const char *bucket, const char *key, int tags, trs_object_info *info,
		      trs_error *err)
{
	int rc = check_names(bucket, key, err);
	if (rc < 0)
		return rc;
	trs__s3_call c = {0};
	c.op = "HeadObject";
	c.method = "HEAD";
	c.bucket = bucket;
	c.key = key;
	trs__http_response resp;
	rc = trs__s3_request(s, &c, &resp, err);
	const char *count = rc == 0 ? trs__http_header(&resp, "x-amz-tagging-count") : NULL;
	bool tagged = count && strtoul(count, NULL, 10) > 0;
	if (rc == 0)
		rc = info_from_head(&resp, info, err);
	trs__http_response_free(&resp);
	if (rc < 0 || tags == TRS__S3_TAGS_NEVER)
		return rc;
	if (tags == TRS__S3_TAGS_FOR_VERSION) {
		const char *time, *etag;
		trs__recorded_version(info, &time, &etag);
		if (time || !tagged)
			return 0; /* the metadata has the version; or there are no tags to hold one */
	}
	c.op = "GetObjectTagging";
	c.method = "GET";
	c.query = "tagging=";
	c.expect = TRS_AWS_XML_TAGGING;
	rc = trs__s3_request(s, &c, &resp, err);
	if (rc == 0) {
		trs__aws_xml x;
		rc = trs__aws_xml_parse(resp.body.data, resp.body.len, &x, err);
		for (size_t i = 0; rc == 0 && i < x.ntags; i++)
			rc = kv_push(&info->tags, &info->ntags, x.tags[i].key, x.tags[i].value, false, err);
		trs__aws_xml_free(&x);
	}
	trs__http_response_free(&resp);
	return rc;
}

static int s3_head(trs_storage *self, const char *bucket, const char *key, trs_object_info *info, trs_error *err)
{
	return trs__s3_head_info((trs__s3 *)self, bucket, key, TRS__S3_TAGS_ALWAYS, info, err);
}

static int s3_head_or_clear(trs_storage *self, const char *bucket, const char *key, trs_object_info *info,
			    trs_error *err)
{
	int rc = s3_head(self, bucket, key, info, err);
	if (rc < 0)
		trs_object_info_clear(info);
	return rc;
}

int trs__s3_copy_object(trs__s3 *s, const char *src_bucket, const char *src_key, const trs_put_request *req,
			trs__s3_guard *guard, trs_error *err)
{
	int rc = check_names(src_bucket, src_key, err);
	if (rc == 0)
		rc = check_names(req->bucket, req->key, err);
	if (rc < 0)
		return rc;
	uint64_t size = req->size;
	if (size == 0) {
		trs_object_info info;
		memset(&info, 0, sizeof(info));
		rc = trs__s3_head_info(s, src_bucket, src_key, TRS__S3_TAGS_NEVER, &info, err);
		size = info.size;
		trs_object_info_clear(&info);
		if (rc < 0)
			return rc;
	}
	if (size > TRS_S3_MAX_COPY_OBJECT)
		return trs__s3_multipart_copy(s, src_bucket, src_key, size, req, guard, err);

	trs__s3_headers h = TRS_S3_HEADERS_INIT;
	trs__buf source = TRS_BUF_INIT;
	rc = trs__s3_put_headers(s, &h, req, err);
	if (rc == 0)
		rc = trs__s3_copy_source(&source, src_bucket, src_key, err);
	if (rc == 0)
		rc = trs__s3_headers_add(&h, "x-amz-copy-source", source.data, err);
	/* REPLACE: the destination gets the request's tags and metadata, not the source's. */
	if (rc == 0)
		rc = trs__s3_headers_add(&h, "x-amz-metadata-directive", "REPLACE", err);
	if (rc == 0)
		rc = trs__s3_headers_add(&h, "x-amz-tagging-directive", "REPLACE", err);
	if (rc == 0)
		rc = trs__s3_guard_headers(guard, &h, err);
	if (rc == 0) {
		trs__s3_call c = {0};
		c.op = "CopyObject";
		c.method = "PUT";
		c.bucket = req->bucket;
		c.key = req->key;
		c.headers = h.kv;
		c.nheaders = h.n;
		c.error_in_200 = true;
		c.expect = TRS_AWS_XML_COPY_OBJECT;
		if (guard)
			c.attempts = &guard->attempts;
		trs__http_response resp;
		rc = trs__s3_request(s, &c, &resp, err);
		trs__http_response_free(&resp);
	}
	trs__buf_free(&source);
	trs__s3_headers_free(&h);
	return rc;
}

static int s3_copy(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
		   trs_error *err)
{
	return trs__s3_copy_object((trs__s3 *)self, src_bucket, src_key, req, NULL, err);
}

static int s3_del(trs_storage *self, const char *bucket, const char *key, trs_error *err)
{
	trs__s3 *s = (trs__s3 *)self;
	int rc = check_names(bucket, key, err);
	if (rc < 0)
		return rc;
	trs__s3_call c = {0};
	c.op = "DeleteObject";
	c.method = "DELETE";
	c.bucket = bucket;
	c.key = key;
	c.not_found_ok = true;
	trs__http_response resp;
	rc = trs__s3_request(s, &c, &resp, err);
	trs__http_response_free(&resp);
	return rc;
}

static void s3_free(trs_storage *self)
{
	trs__s3 *s = (trs__s3 *)self;
	trs__cred_provider_free(s->creds);
	trs__http_free(s->http);
	free(s->scheme);
	free(s->authority);
	free(s->base_path);
	free(s->region);
	pthread_cond_destroy(&s->mem_freed);
	pthread_mutex_destroy(&s->mem_lock);
	trs__s3_unguarded_free(s);
	trs__aws_budget_destroy(&s->budget);
	trs__aws_limiter_destroy(&s->limiter);
	free(s);
}

/* The version-4 member behind trs_storage_retry_stats. */
static int s3_retry_stats(const trs_storage *st, trs_retry_stats *out)
{
	trs__s3 *s = (trs__s3 *)st; /* only the counters' locks are taken */
	pthread_mutex_lock(&s->budget.mu);
	out->retried = s->budget.retries;
	out->refused_by_budget = s->budget.refused;
	pthread_mutex_unlock(&s->budget.mu);
	pthread_mutex_lock(&s->limiter.mu);
	out->throttled = s->limiter.throttled;
	out->limit_decreases = s->limiter.decreases;
	out->limit = s->limiter.limit;
	out->limit_lowest = s->limiter.lowest;
	out->limit_ceiling = s->limiter.ceiling;
	pthread_mutex_unlock(&s->limiter.mu);
	return 0;
}

/* ---- construction ---- */

static int parse_endpoint(trs__s3 *s, const char *url, trs_error *err)
{
	const char *sep = strstr(url, "://");
	if (!sep || (strncasecmp(url, "http", 4) != 0))
		return trs__error_set(err, TRS_EINVAL, "S3 endpoint '%s' must look like https://host[:port]", url);
	s->scheme = trs__strndup(url, (size_t)(sep - url), err);
	const char *auth = sep + 3;
	size_t alen = strcspn(auth, "/?#");
	if (!s->scheme)
		return TRS_ENOMEM;
	for (char *p = s->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strcmp(s->scheme, "http") != 0 && strcmp(s->scheme, "https") != 0)
		return trs__error_set(err, TRS_EINVAL, "S3 endpoint '%s' must use http or https", url);
	if (alen == 0)
		return trs__error_set(err, TRS_EINVAL, "S3 endpoint '%s' has no host", url);
	if (auth[alen] == '?' || auth[alen] == '#')
		return trs__error_set(err, TRS_EINVAL, "S3 endpoint '%s' must not have a query or fragment", url);
	s->authority = trs__strndup(auth, alen, err);
	const char *base = auth + alen;
	size_t blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	s->base_path = s->authority ? trs__strndup(base, blen, err) : NULL;
	return s->base_path ? 0 : TRS_ENOMEM;
}

/* An on/off environment variable: unset or empty gives `dflt`; 0, false, no and off are off. */
static int env_switch(const char *name, int dflt)
{
	const char *v = trs__env_nonempty(name);
	if (!v)
		return dflt;
	return strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0 && strcasecmp(v, "no") != 0 &&
	       strcasecmp(v, "off") != 0;
}

TRS_EXTERN(int) trs_storage_s3_new(trs_storage **out, trs_ctx *ctx, const trs_s3_options *opts, trs_error *err)
{
	*out = NULL;
	trs_s3_options o = TRS_S3_OPTIONS_INIT;
	if (opts) {
		if (opts->version == 0 || opts->version > TRS_S3_OPTIONS_VERSION)
			return trs__error_set(err, TRS_EINVAL, "trs_s3_options has unknown version %u", opts->version);
		/* An older caller's struct ends before the fields of the later versions. */
		memcpy(&o, opts, opts->version == 1   ? offsetof(trs_s3_options, verify_local)
				 : opts->version == 2 ? offsetof(trs_s3_options, sign_payload)
						      : sizeof(o));
		o.version = TRS_S3_OPTIONS_VERSION;
	}
	if (o.part_size && (o.part_size < TRS_S3_MIN_PART || o.part_size > TRS_S3_MAX_PART))
		return trs__error_set(err, TRS_EINVAL, "part_size must be between 5 MiB and 5 GiB");
	trs__s3 *s = trs__calloc(1, sizeof(*s), err);
	if (!s)
		return TRS_ENOMEM;
	trs_storage_init_backend(&s->parent, TRS_STORAGE_VERSION);
	s->parent.name = "s3";
	s->parent.put = s3_put;
	s->parent.get = s3_get;
	s->parent.head = s3_head_or_clear;
	s->parent.copy = s3_copy;
	s->parent.del = s3_del;
	s->parent.free = s3_free;
	s->parent.put_if_newer = trs__s3_put_if_newer;
	s->parent.copy_if_newer = trs__s3_copy_if_newer;
	s->parent.retry_stats = s3_retry_stats;
	s->ctx = ctx;
	/* A single PutObject carrying Content-MD5 is refused (400 BadDigest) when the bytes differ, so the
	 * pipeline need not hash them first, unless the server is one that ignores Content-MD5. */
	if (!o.verify_local && !env_switch("TRS_VERIFY_LOCAL", 0))
		s->parent.caps |= TRS_STORAGE_CHECKS_CONTENT_MD5;
	s->bucket_key = !o.no_bucket_key && env_switch("TRS_S3_BUCKET_KEY", 1);
	s->sign_payload = o.sign_payload || env_switch("TRS_S3_SIGN_PAYLOAD", 0);
	s->threshold = o.multipart_threshold ? o.multipart_threshold : DEFAULT_THRESHOLD;
	s->part_size = o.part_size ? o.part_size : DEFAULT_PART_SIZE;
	s->max_attempts = trs__aws_max_attempts(o.max_attempts, DEFAULT_ATTEMPTS);
	s->backoff_base_s = 0.2;
	s->backoff_cap_s = 20.0;
	/* Memory for parts in flight: half the context's budget, shared by every upload. */
	const trs_ctx *c = TRS_CTX(ctx);
	s->upload_memory = c->max_memory / 2;
	s->parent.reserved_memory = s->upload_memory;
	s->parent.md5_checked_below = s->threshold; /* from there on multipart: the ETag is not the MD5 */
	pthread_mutex_init(&s->mem_lock, NULL);
	pthread_cond_init(&s->mem_freed, NULL);
	pthread_mutex_init(&s->unguarded_lock, NULL);
	trs__aws_budget_init(&s->budget, ctx, "S3");
	/* The ceiling leaves room for multipart parts beside the writers. */
	trs__aws_limiter_init(&s->limiter, ctx, "S3", c->max_inflight * 2);
	uint64_t inflight = s->upload_memory / s->part_size;
	s->parts_in_flight = (unsigned int)(inflight < 1 ? 1 : inflight > MAX_PARTS_IN_FLIGHT ? MAX_PARTS_IN_FLIGHT
											: inflight);

	trs__http_options ho = TRS_HTTP_OPTIONS_INIT;
	ho.insecure = o.no_verify_ssl != 0;
	int rc = trs__http_new(&s->http, ctx, &ho, err);
	if (rc == 0)
		rc = trs__cred_provider_new(&s->creds, ctx, s->http, err);
	if (rc < 0)
		goto fail;

	const char *endpoint = trs__aws_endpoint("S3", o.endpoint_url);
	if (o.region && *o.region)
		s->region = trs__strdup(o.region, err);
	else if (*trs_ctx_region(ctx))
		s->region = trs__strdup(trs_ctx_region(ctx), err);
	else {
		trs_error rerr = TRS_ERROR_INIT;
		rc = trs__aws_region(ctx, endpoint ? NULL : s->http, &s->region, &rerr);
		if (rc == TRS_ENOTFOUND && endpoint) {
			/* S3-compatible servers mostly ignore the region; sign for the usual default. */
			s->region = trs__strdup("us-east-1", err);
			rc = 0;
		} else if (rc < 0) {
			if (err)
				*err = rerr;
			goto fail;
		}
	}
	if (!s->region) {
		rc = TRS_ENOMEM;
		goto fail;
	}
	if (endpoint) {
		s->custom_endpoint = true;
		rc = parse_endpoint(s, endpoint, err);
	} else {
		trs__buf a = TRS_BUF_INIT;
		rc = trs__buf_printf(&a, err, "s3.%s.amazonaws.com", s->region);
		s->authority = a.data;
		s->scheme = rc == 0 ? trs__strdup("https", err) : NULL;
		s->base_path = s->scheme ? trs__strdup("", err) : NULL;
		if (rc == 0 && !s->base_path)
			rc = TRS_ENOMEM;
	}
	if (rc < 0)
		goto fail;
	trs__log(ctx, TRS_LOG_DEBUG, "S3 backend ready", "region", s->region, "endpoint", s->authority,
		 "addressing", s->custom_endpoint ? "path" : "virtual-hosted", NULL);
	*out = &s->parent;
	return 0;
fail:
	s3_free(&s->parent);
	return rc;
}

int trs__storage_s3_open(trs_storage **out, trs_ctx *ctx, const char *url, trs_error *err)
{
	/* "s3" or "s3://": bucket and key come with each call, settings from the context and environment.
	 * A bucket in the URL would be silently ignored (the manifest names the buckets): refuse it. */
	if (strcmp(url, "s3") != 0 && strcmp(url, "s3://") != 0) {
		*out = NULL;
		return trs__error_set(err, TRS_EINVAL,
				      "'%s' names a bucket, but an S3 storage is all of S3: give s3:// (objects go to "
				      "their manifest's target buckets; to put every object in one bucket, use "
				      "trs restore-backup --to-bucket)",
				      url);
	}
	return trs_storage_s3_new(out, ctx, NULL, err);
}
