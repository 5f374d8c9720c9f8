/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The s3 backend against a scripted S3 stand-in on 127.0.0.1: retry
 * classification, backoff, retries that re-send the body, ExpiredToken,
 * immediate failure on other 4xx, multipart abort on a failing body, the
 * headers a put carries. (Signatures are checked by moto in
 * tests/integration/test_s3_backend.py.)
 */
#include "harness.h"
#include "mini_server.h"
#include "storage/storage_s3.h"
#include "codec.h"

#include <stdlib.h>

static mini_server server;

/* What the stand-in answers: a script of (status, code) for successive requests, then 200. */
typedef struct script {
	pthread_mutex_t lock;
	int fail_status[8];
	const char *fail_code[8];
	int nfail;
	int served;
	bool complete_error_in_200; /* first CompleteMultipartUpload answers 200 + <Error> */
	int complete_no_result;     /* this many Completes answer 200 with no result (empty, then a declaration) */
} script;

static script sc = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}, 0, 0, false, 0};

static void script_set(int n, const int *status, const char *const *code)
{
	pthread_mutex_lock(&sc.lock);
	sc.nfail = n;
	sc.served = 0;
	for (int i = 0; i < n; i++) {
		sc.fail_status[i] = status[i];
		sc.fail_code[i] = code[i];
	}
	pthread_mutex_unlock(&sc.lock);
}

static void s3_handler(const mini_request *req, mini_response *resp, void *ud)
{
	(void)ud;
	pthread_mutex_lock(&sc.lock);
	int i = sc.served++;
	int status = i < sc.nfail ? sc.fail_status[i] : 0;
	const char *code = i < sc.nfail ? sc.fail_code[i] : NULL;
	bool error_in_200 = false;
	int no_result = 0;
	if (!status && strcmp(req->method, "POST") == 0 && strstr(req->target, "uploadId=") &&
	    sc.complete_error_in_200) {
		sc.complete_error_in_200 = false;
		error_in_200 = true;
	} else if (!status && strcmp(req->method, "POST") == 0 && strstr(req->target, "uploadId=") &&
		   sc.complete_no_result > 0) {
		no_result = sc.complete_no_result--;
	}
	pthread_mutex_unlock(&sc.lock);
	if (no_result) {
		if (no_result == 1)
			mini_set_body(resp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n  \n");
		return; /* 200 and nothing, or only a declaration */
	}
	if (status) {
		resp->status = status;
		char xml[512];
		snprintf(xml, sizeof(xml), "<Error><Code>%s</Code><Message>scripted %s</Message>"
					   "<RequestId>REQ%d</RequestId></Error>", code, code, i);
		mini_set_body(resp, xml);
		return;
	}
	if (error_in_200) {
		mini_set_body(resp, "<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError</Code>"
				    "<Message>try again</Message></Error>");
		return;
	}
	if (strcmp(req->method, "GET") == 0 && strstr(req->target, "/dest/flaky")) {
		/* 26 bytes; the first answer breaks off after 10 (a reset mid-body). */
		static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz";
		const char *range = mini_header(req, "Range");
		unsigned long from = 0;
		if (range && sscanf(range, "bytes=%lu-", &from) == 1 && from < 26) {
			resp->status = 206;
			snprintf(resp->headers, sizeof(resp->headers), "Content-Range: bytes %lu-25/26\r\n", from);
		}
		mini_set_body(resp, alphabet + from);
		if (!range)
			resp->send_only = 10;
		return;
	}
	if (strcmp(req->method, "PUT") == 0 && mini_header(req, "x-amz-copy-source-range")) {
		mini_set_body(resp, "<CopyPartResult><ETag>\"copy-etag\"</ETag></CopyPartResult>");
		return;
	}
	if (strcmp(req->method, "POST") == 0 && strstr(req->target, "?uploads")) {
		mini_set_body(resp, "<InitiateMultipartUploadResult><UploadId>up+id/1</UploadId>"
				    "</InitiateMultipartUploadResult>");
	} else if (strcmp(req->method, "PUT") == 0 && strstr(req->target, "partNumber=")) {
		int n = atoi(strstr(req->target, "partNumber=") + 11);
		snprintf(resp->headers, sizeof(resp->headers), "ETag: \"etag-%d\"\r\n", n);
	} else if (strcmp(req->method, "POST") == 0) {
		mini_set_body(resp, "<CompleteMultipartUploadResult><ETag>\"x-3\"</ETag>"
				    "</CompleteMultipartUploadResult>");
	} else if (strcmp(req->method, "DELETE") == 0) {
		resp->status = strstr(req->target, "missing") ? 404 : 204;
	} else if (strcmp(req->method, "PUT") == 0) {
		snprintf(resp->headers, sizeof(resp->headers), "ETag: \"abc\"\r\n");
	}
}

static int first_request;

static trs_storage *open_s3(unsigned int max_attempts, uint64_t threshold)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIATEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key", 1);
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", server.port);
	trs_s3_options o = TRS_S3_OPTIONS_INIT;
	o.endpoint_url = url;
	o.region = "eu-west-1";
	o.max_attempts = max_attempts;
	o.multipart_threshold = threshold;
	o.part_size = TRS_S3_MIN_PART;
	trs_storage *s = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_storage_s3_new(&s, NULL, &o, &err) < 0) {
		printf("  trs_storage_s3_new: %s\n", err.message);
		return NULL;
	}
	((trs__s3 *)s)->backoff_base_s = 0.01; /* keep the test fast; the policy is tested below */
	first_request = mini_count(&server);
	return s;
}

static const mini_request *nth(int i)
{
	return &server.log[first_request + i];
}

TEST(retry_classification_follows_the_policy)
{
	CHECK(trs__aws_classify(500, "InternalError", false) == TRS__AWS_RETRY);
	CHECK(trs__aws_classify(503, "SlowDown", false) == TRS__AWS_RETRY);
	CHECK(trs__aws_classify(503, "", false) == TRS__AWS_RETRY);
	CHECK(trs__aws_classify(429, "", false) == TRS__AWS_RETRY);
	CHECK(trs__aws_classify(400, "RequestTimeout", false) == TRS__AWS_RETRY);
	CHECK(trs__aws_classify(400, "ExpiredToken", false) == TRS__AWS_REFRESH_AND_RETRY);
	CHECK(trs__aws_classify(403, "AccessDenied", false) == TRS__AWS_FAIL);
	CHECK(trs__aws_classify(404, "NoSuchBucket", false) == TRS__AWS_FAIL);
	CHECK(trs__aws_classify(403, "SignatureDoesNotMatch", false) == TRS__AWS_FAIL);
	CHECK(trs__aws_classify(400, "InvalidStorageClass", false) == TRS__AWS_FAIL);
	CHECK(trs__aws_classify(0, NULL, true) == TRS__AWS_RETRY);  /* connection reset, timeout */
	CHECK(trs__aws_classify(0, NULL, false) == TRS__AWS_FAIL);  /* e.g. bad URL */
}

TEST(backoff_is_full_jitter_under_an_exponential_cap)
{
	CHECK(trs__aws_backoff(0, 0.2, 20, 1.0) == 0.2);
	CHECK(trs__aws_backoff(3, 0.2, 20, 1.0) == 1.6);
	CHECK(trs__aws_backoff(30, 0.2, 20, 1.0) == 20);
	CHECK(trs__aws_backoff(3, 0.2, 20, 0.0) == 0);
	CHECK(trs__aws_backoff(3, 0.2, 20, 0.5) == 0.8);
}

TEST(part_size_stays_within_s3_limits)
{
	CHECK(trs__s3_part_size(100ull << 20, 1) == TRS_S3_MIN_PART);
	CHECK(trs__s3_part_size(100ull << 20, 8ull << 20) == 8ull << 20);
	uint64_t five_tb = TRS_S3_MAX_OBJECT;
	uint64_t ps = trs__s3_part_size(five_tb, 8ull << 20);
	CHECK((five_tb + ps - 1) / ps <= 10000);
	CHECK(ps <= TRS_S3_MAX_PART && ps % (1ull << 20) == 0);
	CHECK(trs__s3_part_size(1, 10ull << 30) == TRS_S3_MAX_PART);
}

TEST(multipart_etag_is_the_md5_of_the_part_md5s)
{
	/* md5("part one"), md5("part two"), quoted as S3 returns them or not */
	char *parts[] = {"\"3303e12af474ca11d85ed2966a932992\"", "3EA4E15B91A17DC76052C56CFCDF67A2"};
	char out[48];
	CHECK(trs__s3_multipart_etag(parts, 2, out) == 0);
	CHECK(strcmp(out, "0732917abc3288784e318ac0aab1757a-2") == 0);
	char *bad[] = {"\"3303e12af474ca11d85ed2966a93299\""};
	CHECK(trs__s3_multipart_etag(bad, 1, out) < 0);
	char *nothex[] = {"3303e12af474ca11d85ed2966a93299z"};
	CHECK(trs__s3_multipart_etag(nothex, 1, out) < 0);
	CHECK(trs__s3_multipart_etag(parts, 0, out) < 0);
}

TEST(put_retries_slowdown_and_resends_the_same_body)
{
	trs_storage *s = open_s3(5, 1ull << 30);
	CHECK(s != NULL);
	static const int st[] = {503, 500};
	static const char *const codes[] = {"SlowDown", "InternalError"};
	script_set(2, st, codes);
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "dir/report final+1%.csv";
	trs_memory_body mb;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_upload(s, &req, trs_memory_body_init(&mb, "hello world", 11), &err);
	/* Both retries counted, one of them a throttling answer that lowered the limit
	 * (tests/unit/test_limiter.c: by how much). */
	trs_retry_stats rs;
	CHECK(trs_storage_retry_stats(s, &rs) == 0);
	CHECK(rs.retried == 2 && rs.throttled == 1 && rs.refused_by_budget == 0);
	CHECK(rs.limit_decreases == 1 && rs.limit_lowest < rs.limit_ceiling && rs.limit_ceiling > 0);
	trs_storage_free(s);
	if (rc)
		printf("  %s\n", err.message);
	CHECK(rc == 0);
	CHECK(mini_count(&server) - first_request == 3);
	for (int i = 0; i < 3; i++) {
		CHECK(nth(i)->body_len == 11 && memcmp(nth(i)->body, "hello world", 11) == 0);
		CHECK_STR(nth(i)->target, "/dest/dir/report%20final%2B1%25.csv");
		CHECK_CONTAINS(mini_header(nth(i), "Authorization"), "Credential=AKIATEST/");
		CHECK_STR(mini_header(nth(i), "x-amz-content-sha256"),
			  "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
	}
}

TEST(other_4xx_fail_at_once_with_code_message_and_advice)
{
	trs_storage *s = open_s3(5, 1ull << 30);
	CHECK(s != NULL);
	static const int st[] = {403};
	static const char *const codes[] = {"AccessDenied"};
	script_set(1, st, codes);
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "k";
	trs_memory_body mb;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_upload(s, &req, trs_memory_body_init(&mb, "x", 1), &err);
	trs_storage_free(s);
	CHECK(rc == TRS_EAUTH);
	CHECK(mini_count(&server) - first_request == 1);
	CHECK(err.http_status == 403);
	CHECK_STR(err.aws_code, "AccessDenied");
	CHECK(!err.retryable);
	CHECK_CONTAINS(err.message, "PutObject of s3://dest/k");
	CHECK_CONTAINS(err.message, "scripted AccessDenied");
	CHECK_CONTAINS(err.message, "REQ0");
	CHECK_CONTAINS(err.message, "What to do");
	CHECK(!strstr(err.message, "test-secret-key"));
}

TEST(the_budget_counts_its_retries_and_refusals)
{
	unsetenv("AWS_RETRY_MODE");
	trs__aws_budget b;
	trs__aws_budget_init(&b, NULL, "S3");
	int cost = 0;
	unsigned int granted = 0;
	while (trs__aws_budget_take(&b, false, &cost))
		granted++;
	CHECK(granted == TRS__AWS_BUDGET_TOKENS / TRS__AWS_RETRY_COST);
	CHECK(!trs__aws_budget_take(&b, true, &cost));
	trs__aws_budget_count(&b); /* a free retry: counted, no tokens */
	CHECK(b.retries == granted + 1 && b.refused == 2 && b.tokens == 0);
	trs__aws_budget_destroy(&b);

	/* A storage without a retry layer says so. */
	trs_storage fs;
	trs_storage_init_backend(&fs, TRS_STORAGE_VERSION);
	trs_retry_stats rs = {.retried = 7};
	CHECK(trs_storage_retry_stats(&fs, &rs) == TRS_EUNSUPPORTED && rs.retried == 0);
}

TEST(attempts_are_bounded)
{
	trs_storage *s = open_s3(3, 1ull << 30);
	CHECK(s != NULL);
	static const int st[] = {500, 500, 500, 500, 500};
	static const char *const codes[] = {"InternalError", "InternalError", "InternalError", "InternalError",
					    "InternalError"};
	script_set(5, st, codes);
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "k";
	trs_memory_body mb;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_upload(s, &req, trs_memory_body_init(&mb, "x", 1), &err);
	trs_storage_free(s);
	script_set(0, NULL, NULL);
	CHECK(rc == TRS_EHTTP);
	CHECK(mini_count(&server) - first_request == 3);
	CHECK(err.retryable);
	CHECK_CONTAINS(err.message, "after 3 attempts");
}

TEST(expired_token_refreshes_credentials_and_retries)
{
	trs_storage *s = open_s3(5, 1ull << 30);
	CHECK(s != NULL);
	static const int st[] = {400};
	static const char *const codes[] = {"ExpiredToken"};
	script_set(1, st, codes);
	setenv("AWS_ACCESS_KEY_ID", "AKIAFRESH", 1); /* what a refresh will find */
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "k";
	trs_memory_body mb;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_upload(s, &req, trs_memory_body_init(&mb, "x", 1), &err);
	trs_storage_free(s);
	CHECK(rc == 0);
	CHECK(mini_count(&server) - first_request == 2);
	CHECK_CONTAINS(mini_header(nth(1), "Authorization"), "Credential=AKIAFRESH/");
}

TEST(put_sends_tags_class_kms_metadata_and_md5)
{
	trs_storage *s = open_s3(5, 1ull << 30);
	CHECK(s != NULL);
	script_set(0, NULL, NULL);
	trs_kv tags[] = {{"team", "finance & ops"}, {"OriginalCreationTime", "2025-01-23 10:15:00"}};
	trs_kv meta[] = {{"Origin", "caf\xc3\xa9"}, {"plain", "v 1"}};
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "k";
	req.tags = tags;
	req.ntags = 2;
	req.metadata = meta;
	req.nmetadata = 2;
	req.storage_class = "GLACIER_IR";
	req.kms_key_id = "arn:aws:kms:eu-west-1:111122223333:key/abc";
	req.content_md5_hex = "5eb63bbbe01eeed093cb22bb8f5acdc3"; /* md5("hello world") */
	trs_memory_body mb;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_upload(s, &req, trs_memory_body_init(&mb, "hello world", 11), &err);
	trs_storage_free(s);
	CHECK(rc == 0);
	const mini_request *r = nth(0);
	CHECK_STR(mini_header(r, "x-amz-tagging"), "team=finance%20%26%20ops&OriginalCreationTime=2025-01-23%2010%3A15%3A00");
	CHECK_STR(mini_header(r, "x-amz-storage-class"), "GLACIER_IR");
	CHECK_STR(mini_header(r, "x-amz-server-side-encryption"), "aws:kms");
	CHECK_STR(mini_header(r, "x-amz-server-side-encryption-aws-kms-key-id"), req.kms_key_id);
	CHECK_STR(mini_header(r, "x-amz-meta-origin"), "=?UTF-8?B?Y2Fmw6k=?=");
	CHECK_STR(mini_header(r, "x-amz-meta-plain"), "v 1");
	CHECK_STR(mini_header(r, "Content-MD5"), "XrY7u+Ae7tCTyyK7j1rNww==");
	CHECK_CONTAINS(mini_header(r, "Authorization"), "x-amz-tagging");
}

/* A body that fails on its second part, as an integrity check would. */
typedef struct failing_body {
	trs_body body;
	uint64_t pos, fail_at;
} failing_body;

static int64_t failing_read(void *self, void *buf, size_t len, trs_error *err)
{
	failing_body *fb = self;
	if (fb->pos >= fb->fail_at)
		return trs__error_set(err, TRS_EINTEGRITY, "scripted: MD5 does not match the manifest");
	uint64_t left = fb->body.length - fb->pos;
	if (left == 0)
		return 0;
	if (len > left)
		len = (size_t)left;
	if (len > fb->fail_at - fb->pos)
		len = (size_t)(fb->fail_at - fb->pos);
	memset(buf, 'a' + (int)(fb->pos / TRS_S3_MIN_PART), len);
	fb->pos += len;
	return (int64_t)len;
}

static int count_method(const char *method, const char *needle)
{
	int n = 0;
	for (int i = first_request; i < mini_count(&server); i++)
		if (strcmp(server.log[i].method, method) == 0 && (!needle || strstr(server.log[i].target, needle)))
			n++;
	return n;
}

TEST(multipart_aborts_when_the_body_fails)
{
	trs_storage *s = open_s3(5, TRS_S3_MIN_PART);
	CHECK(s != NULL);
	script_set(0, NULL, NULL);
	failing_body fb = {{failing_read, NULL, 3 * TRS_S3_MIN_PART}, 0, TRS_S3_MIN_PART + 100};
	fb.body.self = &fb;
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "big";
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_upload(s, &req, &fb.body, &err);
	trs_storage_free(s);
	CHECK(rc == TRS_EINTEGRITY);
	CHECK_CONTAINS(err.message, "MD5");
	CHECK(count_method("POST", "?uploads") == 1);
	CHECK(count_method("DELETE", "uploadId=up%2Bid%2F1") == 1); /* aborted, id encoded */
	CHECK(count_method("POST", "uploadId=") == 0);              /* never completed */
}

TEST(multipart_uploads_parts_then_completes_in_order)
{
	trs_storage *s = open_s3(5, TRS_S3_MIN_PART);
	CHECK(s != NULL);
	script_set(0, NULL, NULL);
	pthread_mutex_lock(&sc.lock);
	sc.complete_error_in_200 = true; /* and survives an <Error> inside a 200 */
	pthread_mutex_unlock(&sc.lock);
	uint64_t size = 2 * TRS_S3_MIN_PART + 12345;
	failing_body fb = {{failing_read, NULL, size}, 0, UINT64_MAX};
	fb.body.self = &fb;
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "big";
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_upload(s, &req, &fb.body, &err);
	trs_storage_free(s);
	if (rc)
		printf("  %s\n", err.message);
	CHECK(rc == 0);
	CHECK(count_method("PUT", "partNumber=") == 3);
	CHECK(count_method("POST", "uploadId=") == 2);
	CHECK(count_method("DELETE", NULL) == 0);
	const mini_request *complete = NULL;
	for (int i = first_request; i < mini_count(&server); i++)
		if (strcmp(server.log[i].method, "POST") == 0 && strstr(server.log[i].target, "uploadId="))
			complete = &server.log[i];
	CHECK(complete != NULL);
	CHECK_CONTAINS(complete->body, "<Part><PartNumber>1</PartNumber><ETag>&quot;etag-1&quot;</ETag></Part>"
				       "<Part><PartNumber>2</PartNumber><ETag>&quot;etag-2&quot;</ETag></Part>"
				       "<Part><PartNumber>3</PartNumber>");
	for (int i = first_request; i < mini_count(&server); i++) {
		const mini_request *r = &server.log[i];
		if (strstr(r->target, "partNumber=3"))
			CHECK(r->body_len == 12345);
		/* Over plain http the parts' SHA-256 is signed; no CRC-32 is asked for or sent. */
		CHECK(mini_header(r, "x-amz-checksum-algorithm") == NULL);
		CHECK(mini_header(r, "x-amz-checksum-crc32") == NULL);
		if (strstr(r->target, "partNumber=")) {
			const char *sha = mini_header(r, "x-amz-content-sha256");
			CHECK(sha != NULL && strcmp(sha, "UNSIGNED-PAYLOAD") != 0);
		}
	}
	CHECK(strstr(complete->body, "Checksum") == NULL);
}

/* x-amz-checksum-crc32 is the base64 of the CRC-32 (zlib's) most significant byte first. */
TEST(part_crc32_is_zlibs_crc_in_base64)
{
	char b64[TRS_CRC32_B64_LEN + 1];
	trs__crc32_base64("123456789", 9, b64);
	CHECK_STR(b64, "y/Q5Jg=="); /* 0xCBF43926, the check value of CRC-32/ISO-HDLC */
	trs__crc32_base64("", 0, b64);
	CHECK_STR(b64, "AAAAAA==");
	/* Continuing a CRC over pieces gives the CRC of the whole. */
	CHECK(trs__crc32(trs__crc32(0, "12345", 5), "6789", 4) == 0xCBF43926u);
}

/* S3 can fail a Complete after its 200; a proxy can cut the answer: no result is no success. */
TEST(multipart_complete_answered_200_without_its_result_is_retried)
{
	trs_storage *s = open_s3(5, TRS_S3_MIN_PART);
	CHECK(s != NULL);
	script_set(0, NULL, NULL);
	pthread_mutex_lock(&sc.lock);
	sc.complete_no_result = 2;
	pthread_mutex_unlock(&sc.lock);
	uint64_t size = TRS_S3_MIN_PART + 1;
	failing_body fb = {{failing_read, NULL, size}, 0, UINT64_MAX};
	fb.body.self = &fb;
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "big";
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_upload(s, &req, &fb.body, &err);
	CHECK(rc == 0);
	CHECK(count_method("POST", "uploadId=") == 3);
	/* every time: the object fails, naming what came back, and the upload is aborted */
	pthread_mutex_lock(&sc.lock);
	sc.complete_no_result = 100;
	pthread_mutex_unlock(&sc.lock);
	fb.pos = 0;
	first_request = mini_count(&server);
	rc = trs_upload(s, &req, &fb.body, &err);
	trs_storage_free(s);
	pthread_mutex_lock(&sc.lock);
	sc.complete_no_result = 0;
	pthread_mutex_unlock(&sc.lock);
	CHECK(rc < 0);
	CHECK_CONTAINS(err.message, "200 OK with");
	CHECK(count_method("POST", "uploadId=") == 5 && count_method("DELETE", "uploadId=") == 1);
}

static int collect(void *ud, const void *data, size_t len, trs_error *err)
{
	(void)err;
	return trs__buf_put(ud, data, len, NULL);
}

/* A GET that breaks off mid-body resumes where it stopped, without repeating bytes. */
TEST(get_resumes_with_a_range_after_a_broken_body)
{
	trs_storage *s = open_s3(5, 1ull << 30);
	CHECK(s != NULL);
	script_set(0, NULL, NULL);
	trs__buf got = TRS_BUF_INIT;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_storage_get(s, "dest", "flaky", 0, UINT64_MAX, collect, &got, &err);
	trs_storage_free(s);
	if (rc)
		printf("  %s\n", err.message);
	int same = got.len == 26 && memcmp(got.data, "abcdefghijklmnopqrstuvwxyz", 26) == 0;
	trs__buf_free(&got);
	CHECK(rc == 0);
	CHECK(same);
	CHECK(mini_count(&server) - first_request == 2);
	CHECK(mini_header(nth(0), "Range") == NULL);
	CHECK_STR(mini_header(nth(1), "Range"), "bytes=10-");
}

/* Objects over 5 GiB are copied with UploadPartCopy ranges, then completed. */
TEST(large_copy_goes_multipart_with_source_ranges)
{
	trs_storage *s = open_s3(5, 1ull << 30);
	CHECK(s != NULL);
	script_set(0, NULL, NULL);
	trs_put_request req = TRS_PUT_REQUEST_INIT;
	req.bucket = "dest";
	req.key = "copy of big";
	req.size = TRS_S3_MAX_COPY_OBJECT + 1;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_storage_copy(s, "src", "big obj", &req, &err);
	trs_storage_free(s);
	if (rc)
		printf("  %s\n", err.message);
	CHECK(rc == 0);
	CHECK(count_method("POST", "?uploads") == 1);
	int nparts = count_method("PUT", "partNumber=");
	CHECK(nparts == 11); /* 5 GiB + 1 in 512 MiB parts */
	bool saw_last = false;
	for (int i = first_request; i < mini_count(&server); i++) {
		const mini_request *r = &server.log[i];
		if (strcmp(r->method, "PUT") != 0)
			continue;
		CHECK_STR(mini_header(r, "x-amz-copy-source"), "/src/big%20obj");
		if (strstr(r->target, "partNumber=11&"))
			saw_last = strcmp(mini_header(r, "x-amz-copy-source-range"), "bytes=5368709120-5368709120") == 0;
	}
	CHECK(saw_last);
	CHECK(count_method("POST", "uploadId=") == 1);
}

TEST(delete_of_a_missing_object_succeeds)
{
	trs_storage *s = open_s3(5, 1ull << 30);
	CHECK(s != NULL);
	script_set(0, NULL, NULL);
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_storage_delete(s, "dest", "missing", &err);
	trs_storage_free(s);
	CHECK(rc == 0);
}

TEST(bad_options_are_refused)
{
	trs_s3_options o = TRS_S3_OPTIONS_INIT;
	o.part_size = 1024;
	trs_storage *s = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_storage_s3_new(&s, NULL, &o, &err) == TRS_EINVAL);
	CHECK_CONTAINS(err.message, "part_size");
	o = (trs_s3_options)TRS_S3_OPTIONS_INIT;
	o.endpoint_url = "ftp://x";
	o.region = "eu-west-1";
	CHECK(trs_storage_s3_new(&s, NULL, &o, &err) == TRS_EINVAL);
	o.version = 99;
	CHECK(trs_storage_s3_new(&s, NULL, &o, &err) == TRS_EINVAL);
}

int main(void)
{
	if (mini_start(&server, s3_handler, NULL) < 0) {
		printf("FAIL setup: cannot start a loopback server\n");
		return 1;
	}
	unsetenv("AWS_PROFILE");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	RUN(retry_classification_follows_the_policy);
	RUN(backoff_is_full_jitter_under_an_exponential_cap);
	RUN(part_size_stays_within_s3_limits);
	RUN(put_retries_slowdown_and_resends_the_same_body);
	RUN(other_4xx_fail_at_once_with_code_message_and_advice);
	RUN(the_budget_counts_its_retries_and_refusals);
	RUN(attempts_are_bounded);
	RUN(expired_token_refreshes_credentials_and_retries);
	RUN(put_sends_tags_class_kms_metadata_and_md5);
	RUN(multipart_aborts_when_the_body_fails);
	RUN(multipart_uploads_parts_then_completes_in_order);
	RUN(multipart_complete_answered_200_without_its_result_is_retried);
	RUN(get_resumes_with_a_range_after_a_broken_body);
	RUN(large_copy_goes_multipart_with_source_ranges);
	RUN(delete_of_a_missing_object_succeeds);
	RUN(bad_options_are_refused);
	RUN(multipart_etag_is_the_md5_of_the_part_md5s);
	RUN(part_crc32_is_zlibs_crc_in_base64);
	mini_stop(&server);
	return harness_done();
}
