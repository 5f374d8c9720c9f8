/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A host whose clock is off: S3 refuses its requests for their time
 * (RequestTimeTooSkewed), and the client learns S3's time from the answer's
 * Date header, signs by it and retries, as the AWS SDKs do; a signature
 * error from a server whose clock agrees with ours is a wrong key, final.
 */
#include "harness.h"
#include "mini_server.h"
#include "storage/storage_s3.h"

#include <stdlib.h>
#include <time.h>

static mini_server server;

static struct {
	pthread_mutex_t lock;
	long skew;          /* the server's clock minus ours, seconds */
	const char *code;   /* what a request outside 15 minutes of the server's time gets */
	bool wrong_key;     /* every request gets `code`, whatever its time */
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* "20150830T123600Z" to unix seconds (UTC). */
static time_t amz_time(const char *v)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!v || sscanf(v, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			 &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static void handler(const mini_request *req, mini_response *resp, void *ud)
{
	(void)ud;
	pthread_mutex_lock(&st.lock);
	time_t theirs = time(NULL) + st.skew;
	const char *code = st.code;
	bool wrong_key = st.wrong_key;
	pthread_mutex_unlock(&st.lock);
	char date[64];
	struct tm tm;
	gmtime_r(&theirs, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(resp->headers, sizeof(resp->headers), "Date: %s\r\nETag: \"abc\"\r\n", date);
	if (wrong_key || labs((long)(amz_time(mini_header(req, "x-amz-date")) - theirs)) > 15 * 60) {
		resp->status = 403;
		char xml[256];
		snprintf(xml, sizeof(xml), "<Error><Code>%s</Code><Message>stand-in</Message></Error>", code);
		mini_set_body(resp, xml);
	}
}

static int first;

static trs_storage *open_s3(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIATEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", server.port);
	trs_s3_options o = TRS_S3_OPTIONS_INIT;
	o.endpoint_url = url;
	o.region = "eu-west-1";
	o.max_attempts = 3;
	trs_storage *s = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_storage_s3_new(&s, NULL, &o, &err) < 0)
		return NULL;
	((trs__s3 *)s)->backoff_base_s = 0.01;
	first = mini_count(&server);
	return s;
}

static int put(trs_storage *s, trs_error *err)
{
	trs_put_request r = TRS_PUT_REQUEST_INIT;
	r.bucket = "dest";
	r.key = "k";
	trs_memory_body mb;
	return trs_upload(s, &r, trs_memory_body_init(&mb, "bytes", 5), err);
}

TEST(clock_skew_is_learned_from_the_date_header_and_the_request_retried)
{
	trs_storage *s = open_s3();
	CHECK(s);
	st.skew = 3600;
	st.code = "RequestTimeTooSkewed";
	st.wrong_key = false;
	trs_error err = TRS_ERROR_INIT;
	CHECK(put(s, &err) == 0);
	CHECK(mini_count(&server) - first == 2);
	time_t signed_at = amz_time(mini_header(&server.log[first + 1], "x-amz-date"));
	CHECK(labs((long)(signed_at - (time(NULL) + 3600))) < 30);
	/* learned once: the next request is signed in S3's time at once */
	CHECK(put(s, &err) == 0);
	CHECK(mini_count(&server) - first == 3);
	trs_storage_free(s);
}

TEST(clock_a_signature_error_is_the_clocks_only_when_they_are_minutes_apart)
{
	trs_storage *s = open_s3();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	/* a wrong key, clocks that agree: final at once, nothing learned */
	st.skew = 0;
	st.code = "SignatureDoesNotMatch";
	st.wrong_key = true;
	CHECK(put(s, &err) < 0);
	CHECK(mini_count(&server) - first == 1);
	CHECK(trs__http_clock_offset(((trs__s3 *)s)->http) == 0);
	/* twenty minutes apart: the clock, learned from Date, and the request retried */
	st.wrong_key = false;
	st.skew = -(20 * 60);
	first = mini_count(&server);
	CHECK(put(s, &err) == 0);
	CHECK(mini_count(&server) - first == 2);
	CHECK(labs(trs__http_clock_offset(((trs__s3 *)s)->http) + 20 * 60) < 30);
	trs_storage_free(s);
}

int main(void)
{
	if (mini_start(&server, handler, NULL) < 0) {
		printf("FAIL cannot start the stand-in server\n");
		return 1;
	}
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	RUN(clock_skew_is_learned_from_the_date_header_and_the_request_retried);
	RUN(clock_a_signature_error_is_the_clocks_only_when_they_are_minutes_apart);
	mini_stop(&server);
	return harness_done();
}
