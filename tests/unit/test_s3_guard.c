/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The s3 backend's conditional writes against a stand-in that keeps one
 * object per key and answers as S3 does: If-None-Match: * and If-Match
 * (412, 404), a scripted 409 ConditionalRequestConflict, a HEAD that returns
 * the object's user metadata, or 403 for credentials that may not read.
 * Each test checks the outcome and the exact requests it cost.
 */
#include "harness.h"
#include "mini_server.h"
#include "storage/storage_s3.h"

#include <stdlib.h>

static mini_server server;

/* The stand-in's one bucket: key -> (etag, recorded time), and what to answer out of turn. */
typedef struct stored {
	char key[64];
	char etag[40];
	char time[40];
	int serial;
} stored;

static struct {
	pthread_mutex_t lock;
	stored obj[16];
	int nobj;
	int serial;
	int conflicts;     /* this many conditional PUTs answer 409 first */
	bool head_denied;  /* HEAD answers 403 */
	int lose_answers;  /* this many PUTs are written, and their answer lost (the connection dropped) */
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

static stored *find(const char *key)
{
	for (int i = 0; i < st.nobj; i++)
		if (!strcmp(st.obj[i].key, key))
			return &st.obj[i];
	return NULL;
}

static void error(mini_response *resp, int status, const char *code)
{
	resp->status = status;
	char xml[256];
	snprintf(xml, sizeof(xml), "<Error><Code>%s</Code><Message>stand-in</Message></Error>", code);
	mini_set_body(resp, xml);
}

static void handler(const mini_request *req, mini_response *resp, void *ud)
{
	(void)ud;
	const char *key = strchr(req->target + 1, '/');
	key = key ? key + 1 : "";
	pthread_mutex_lock(&st.lock);
	stored *o = find(key);
	if (!strcmp(req->method, "HEAD")) {
		if (st.head_denied)
			resp->status = 403;
		else if (!o)
			resp->status = 404;
		else
			snprintf(resp->headers, sizeof(resp->headers),
				 "ETag: \"%s\"\r\nx-amz-meta-original-creation-time: %s\r\nx-amz-meta-original-etag: e\r\n",
				 o->etag, o->time);
	} else if (!strcmp(req->method, "PUT")) {
		const char *none = mini_header(req, "If-None-Match"), *match = mini_header(req, "If-Match");
		if ((none || match) && st.conflicts > 0) {
			st.conflicts--;
			error(resp, 409, "ConditionalRequestConflict");
		} else if (none && o) {
			error(resp, 412, "PreconditionFailed");
		} else if (match && !o) {
			error(resp, 404, "NoSuchKey");
		} else if (match && strncmp(match + 1, o->etag, strlen(o->etag)) != 0) {
			error(resp, 412, "PreconditionFailed");
		} else {
			if (!o) {
				o = &st.obj[st.nobj++];
				snprintf(o->key, sizeof(o->key), "%s", key);
			}
			const char *t = mini_header(req, "x-amz-meta-original-creation-time");
			snprintf(o->time, sizeof(o->time), "%s", t ? t : "");
			snprintf(o->etag, sizeof(o->etag), "etag-%d", ++st.serial);
			snprintf(resp->headers, sizeof(resp->headers), "ETag: \"%s\"\r\n", o->etag);
			if (st.lose_answers > 0) {
				st.lose_answers--;
				resp->drop = 1;
			}
		}
	}
	pthread_mutex_unlock(&st.lock);
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
	o.max_attempts = 2;
	trs_storage *s = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_storage_s3_new(&s, NULL, &o, &err) < 0)
		return NULL;
	pthread_mutex_lock(&st.lock);
	st.nobj = 0;
	st.conflicts = 0;
	st.head_denied = false;
	st.lose_answers = 0;
	pthread_mutex_unlock(&st.lock);
	first = mini_count(&server);
	return s;
}

/* "PUT*", "PUT=", "PUT" (If-None-Match, If-Match, none) and "HEAD", comma-separated, since open_s3. */
static void requests(char *out, size_t size)
{
	out[0] = '\0';
	for (int i = first; i < mini_count(&server); i++) {
		const mini_request *r = &server.log[i];
		size_t used = strlen(out);
		snprintf(out + used, size - used, "%s%s%s", used ? "," : "", r->method,
			 mini_header(r, "If-None-Match") ? "*" : mini_header(r, "If-Match") ? "=" : "");
	}
}

static int body_reads;

typedef struct {
	const char *data;
	size_t len, pos;
} counted_body;

/* Not a memory body (trs_body_memory says no): the backend must read it, and its reads are counted. */
static int64_t counting_read(void *self, void *buf, size_t len, trs_error *err)
{
	(void)err;
	counted_body *b = self;
	body_reads++;
	size_t n = b->len - b->pos < len ? b->len - b->pos : len;
	memcpy(buf, b->data + b->pos, n);
	b->pos += n;
	return (int64_t)n;
}

static int put(trs_storage *s, const char *key, const char *when, unsigned int flags, trs_error *err)
{
	trs_kv meta[] = {{"original-creation-time", when}};
	trs_put_request r = TRS_PUT_REQUEST_INIT;
	r.bucket = "dest";
	r.key = key;
	r.metadata = meta;
	r.nmetadata = 1;
	trs_write_condition c = TRS_WRITE_CONDITION_INIT;
	c.source_time = when;
	c.source_etag = "e";
	c.flags = flags;
	counted_body cb = {"bytes", 5, 0};
	trs_body b = {counting_read, &cb, 5};
	body_reads = 0;
	return trs_upload_if_newer(s, &r, &c, &b, err);
}

TEST(s3_guard_a_new_key_is_one_put_under_if_none_match)
{
	trs_storage *s = open_s3();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	char got[256];
	CHECK(put(s, "k", "2025-01-23 10:05:00", 0, &err) == TRS_WRITTEN);
	requests(got, sizeof(got));
	CHECK_STR(got, "PUT*");
	trs_storage_free(s);
}

TEST(s3_guard_an_update_looks_then_writes_under_if_match)
{
	trs_storage *s = open_s3();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	char got[256];
	CHECK(put(s, "k", "2025-01-23 10:00:00", 0, &err) == TRS_WRITTEN);
	CHECK(put(s, "k", "2025-01-23 10:05:00", 0, &err) == TRS_WRITTEN);
	requests(got, sizeof(got));
	CHECK_STR(got, "PUT*,PUT*,HEAD,PUT=");
	CHECK(put(s, "k", "2025-01-23 10:01:00", 0, &err) == TRS_KEPT_NEWER);
	CHECK(put(s, "k", "2025-01-23 10:05:00", 0, &err) == TRS_ALREADY_CURRENT);
	requests(got, sizeof(got));
	CHECK_STR(got, "PUT*,PUT*,HEAD,PUT=,PUT*,HEAD,PUT*,HEAD");
	trs_storage_free(s);
}

TEST(s3_guard_a_conflict_looks_again_and_writes)
{
	trs_storage *s = open_s3();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	char got[256];
	st.conflicts = 1;
	CHECK(put(s, "k", "2025-01-23 10:05:00", 0, &err) == TRS_WRITTEN);
	requests(got, sizeof(got));
	CHECK_STR(got, "PUT*,HEAD,PUT*");
	trs_storage_free(s);
}

TEST(s3_guard_asking_first_sends_no_body_for_a_current_object)
{
	trs_storage *s = open_s3();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	char got[256];
	CHECK(put(s, "k", "2025-01-23 10:05:00", 0, &err) == TRS_WRITTEN);
	CHECK(put(s, "k", "2025-01-23 10:05:00", TRS_WRITE_ASK_FIRST, &err) == TRS_ALREADY_CURRENT);
	CHECK(body_reads == 0);
	CHECK(put(s, "new", "2025-01-23 10:05:00", TRS_WRITE_ASK_FIRST, &err) == TRS_WRITTEN);
	requests(got, sizeof(got));
	CHECK_STR(got, "PUT*,HEAD,HEAD,PUT*");
	trs_storage_free(s);
}

/* The PUT landed, its answer was lost, the retry is refused (the key holds a version now): that version
 * is ours, and the object counts as written, not as found current. */
TEST(s3_guard_a_retry_refused_by_its_own_earlier_attempt_counts_as_written)
{
	trs_storage *s = open_s3();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	char got[256];
	st.lose_answers = 1;
	CHECK(put(s, "k", "2025-01-23 10:05:00", 0, &err) == TRS_WRITTEN);
	requests(got, sizeof(got));
	CHECK_STR(got, "PUT*,PUT*,HEAD");
	/* a first attempt refused, no retry: the version was there before, a redelivery */
	CHECK(put(s, "k", "2025-01-23 10:05:00", 0, &err) == TRS_ALREADY_CURRENT);
	trs_storage_free(s);
}

TEST(s3_guard_credentials_that_may_not_read_write_unchecked_once_refused)
{
	trs_storage *s = open_s3();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	char got[256];
	CHECK(put(s, "a", "2025-01-23 10:05:00", 0, &err) == TRS_WRITTEN);
	st.head_denied = true;
	/* an existing key: refused, then HEAD 403: written as before, without a condition */
	CHECK(put(s, "a", "2025-01-23 10:00:00", 0, &err) == TRS_WRITTEN_UNCHECKED);
	/* the bucket is known now: the next write goes without asking */
	CHECK(put(s, "b", "2025-01-23 10:00:00", 0, &err) == TRS_WRITTEN_UNCHECKED);
	requests(got, sizeof(got));
	CHECK_STR(got, "PUT*,PUT*,HEAD,PUT,PUT");
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
	RUN(s3_guard_a_new_key_is_one_put_under_if_none_match);
	RUN(s3_guard_an_update_looks_then_writes_under_if_match);
	RUN(s3_guard_a_conflict_looks_again_and_writes);
	RUN(s3_guard_asking_first_sends_no_body_for_a_current_object);
	RUN(s3_guard_a_retry_refused_by_its_own_earlier_attempt_counts_as_written);
	RUN(s3_guard_credentials_that_may_not_read_write_unchecked_once_refused);
	mini_stop(&server);
	return harness_done();
}
