/* SPDX-License-Identifier: Apache-2.0 */
/* Queue message bodies: every shape, key encodings, poison and limits. */
#include "harness.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static int parse(const char *body, trs_event **ev, trs_error *err)
{
	return trs_event_parse(body, strlen(body), ev, err);
}

#define RECORD(name, bucket, key)                                                                    \
	"{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":\"eu-west-1\",\"eventName\":\"" name \
	"\",\"s3\":{\"bucket\":{\"name\":\"" bucket "\"},\"object\":{\"key\":\"" key "\",\"size\":1234}}}"

TEST(event_s3_record_is_work)
{
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"Records\":[" RECORD("ObjectCreated:Put", "staging", "src/data/a.tar.zst") "]}", &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_WORK);
	CHECK_STR(ev->shape, "s3");
	CHECK(ev->nrefs == 1);
	CHECK_STR(ev->refs[0].bucket, "staging");
	CHECK_STR(ev->refs[0].key, "src/data/a.tar.zst");
	trs_event_free(ev);
}

TEST(event_several_records_in_order_skipping_non_created)
{
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"Records\":[" RECORD("ObjectCreated:CompleteMultipartUpload", "b1", "one") "," RECORD(
			    "ObjectRemoved:Delete", "b1", "gone") "," RECORD("ObjectCreated:Copy", "b2", "two") "]}",
		    &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_WORK);
	CHECK(ev->nrefs == 2);
	CHECK(ev->records_skipped == 1);
	CHECK_STR(ev->refs[0].key, "one");
	CHECK_STR(ev->refs[1].bucket, "b2");
	CHECK_STR(ev->refs[1].key, "two");
	trs_event_free(ev);
}

TEST(event_only_removed_records_is_no_work)
{
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"Records\":[" RECORD("ObjectRemoved:Delete", "b", "k") "]}", &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_NO_WORK);
	CHECK(ev->nrefs == 0);
	trs_event_free(ev);
}

TEST(event_other_source_is_not_work)
{
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"Records\":[{\"eventSource\":\"aws:sqs\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":"
		    "{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}}]}",
		    &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_NO_WORK);
	trs_event_free(ev);
}

TEST(event_keys_decode_like_unquote_plus)
{
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"Records\":[" RECORD("ObjectCreated:Put", "b", "dir/a+b%2Bc%20d%C3%BC%2F%zz%4") "]}", &ev,
		    &err) == 0);
	CHECK_STR(ev->refs[0].key, "dir/a b+c d\xc3\xbc/%zz%4");
	trs_event_free(ev);
}

TEST(event_decode_key_invalid_utf8_becomes_replacement)
{
	trs_error err = TRS_ERROR_INIT;
	char *k = trs_event_decode_key("a%FFb", 5, &err);
	CHECK_STR(k, "a\xef\xbf\xbd" "b");
	free(k);
	/* A truncated 3-byte sequence is one U+FFFD; a surrogate (ED A0 80) is three. */
	k = trs_event_decode_key("%E2%82x", 7, &err);
	CHECK_STR(k, "\xef\xbf\xbdx");
	free(k);
	k = trs_event_decode_key("%ED%A0%80", 9, &err);
	CHECK_STR(k, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	free(k);
	k = trs_event_decode_key("%F0%9F%98%80", 12, &err);
	CHECK_STR(k, "\xf0\x9f\x98\x80");
	free(k);
	k = trs_event_decode_key("%", 1, &err);
	CHECK_STR(k, "%");
	free(k);
}

TEST(event_decode_key_refuses_nul)
{
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_event_decode_key("a%00b", 5, &err) == NULL);
	CHECK(err.code == TRS_EINVAL);
	trs_event *ev = (trs_event *)1;
	trs_error err2 = TRS_ERROR_INIT;
	CHECK(parse("{\"Records\":[" RECORD("ObjectCreated:Put", "b", "x%00") "]}", &ev, &err2) == TRS_EINVAL);
	CHECK(ev == NULL);
	CHECK_CONTAINS(err2.message, "NUL");
}

TEST(event_test_event_both_shapes)
{
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Time\":\"2025-01-01T00:00:00.000Z\","
		    "\"Bucket\":\"staging\",\"RequestId\":\"X\",\"HostId\":\"Y\"}",
		    &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_TEST);
	CHECK_STR(ev->shape, "test");
	CHECK(ev->nrefs == 0);
	trs_event_free(ev);
	CHECK(parse("{\"Records\":[{\"eventName\":\"s3:TestEvent\"}]}", &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_TEST);
	trs_event_free(ev);
}

TEST(event_sns_envelope)
{
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"Type\":\"Notification\",\"MessageId\":\"m\",\"TopicArn\":\"arn:aws:sns:eu-west-1:1:t\","
		    "\"Message\":\"{\\\"Records\\\":[{\\\"eventSource\\\":\\\"aws:s3\\\",\\\"eventName\\\":"
		    "\\\"ObjectCreated:Put\\\",\\\"s3\\\":{\\\"bucket\\\":{\\\"name\\\":\\\"stg\\\"},\\\"object\\\":"
		    "{\\\"key\\\":\\\"a+b.tar.zst\\\"}}}]}\"}",
		    &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_WORK);
	CHECK_STR(ev->shape, "sns");
	CHECK_STR(ev->refs[0].bucket, "stg");
	CHECK_STR(ev->refs[0].key, "a b.tar.zst");
	trs_event_free(ev);
	/* The test event through SNS. */
	CHECK(parse("{\"Type\":\"Notification\",\"Message\":\"{\\\"Service\\\":\\\"Amazon S3\\\",\\\"Event\\\":"
		    "\\\"s3:TestEvent\\\"}\"}",
		    &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_TEST);
	trs_event_free(ev);
}

TEST(event_eventbridge_keys_not_plus_decoded)
{
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"version\":\"0\",\"detail-type\":\"Object Created\",\"source\":\"aws.s3\",\"detail\":{"
		    "\"bucket\":{\"name\":\"stg\"},\"object\":{\"key\":\"a+b %41.tar.zst\",\"size\":3}}}",
		    &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_WORK);
	CHECK_STR(ev->shape, "eventbridge");
	CHECK_STR(ev->refs[0].key, "a+b %41.tar.zst");
	trs_event_free(ev);
}

/* EventBridge's Object Deleted is S3's own event, as a record's ObjectRemoved:* is: no work, not poison. */
TEST(event_eventbridge_object_deleted_is_no_work_like_object_removed)
{
	trs_event *ev = NULL, *rec = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse("{\"detail-type\":\"Object Deleted\",\"source\":\"aws.s3\",\"detail\":{"
		    "\"bucket\":{\"name\":\"stg\"},\"object\":{\"key\":\"a.tar.zst\"}}}", &ev, &err) == 0);
	CHECK(parse("{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectRemoved:Delete\","
		    "\"s3\":{\"bucket\":{\"name\":\"stg\"},\"object\":{\"key\":\"a.tar.zst\"}}}]}", &rec, &err) == 0);
	int same = ev->kind == TRS_EVENT_NO_WORK && rec->kind == TRS_EVENT_NO_WORK && ev->nrefs == 0 && rec->nrefs == 0 &&
		   ev->records_skipped == 1 && rec->records_skipped == 1;
	trs_event_free(ev);
	trs_event_free(rec);
	CHECK(same);
	trs_event *none = (trs_event *)1;
	CHECK(parse("{\"detail-type\":\"Object Deleted\",\"source\":\"aws.ec2\",\"detail\":{}}", &none, &err) ==
	      TRS_EINVAL);
	CHECK(none == NULL);
}

static void expect_poison(const char *body, int code, const char *why)
{
	trs_event *ev = (trs_event *)1;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_event_parse(body, strlen(body), &ev, &err);
	if (rc != code || ev != NULL || err.code != code || !strstr(err.message, why)) {
		printf("  body %.60s: rc %d, message '%s' (wanted %d, '%s')\n", body, rc, err.message, code, why);
		harness_current_failed = 1;
	}
}

TEST(event_poison_bodies)
{
	expect_poison("", TRS_EINVAL, "not JSON");
	expect_poison("not json", TRS_EINVAL, "not JSON");
	expect_poison("[1,2]", TRS_EINVAL, "not a JSON object");
	expect_poison("{}", TRS_EINVAL, "neither");
	expect_poison("{\"hello\":\"world\"}", TRS_EINVAL, "neither");
	expect_poison("{\"Records\":{}}", TRS_EINVAL, "not a list");
	expect_poison("{\"Records\":[]}", TRS_EINVAL, "empty");
	expect_poison("{\"Records\":[1]}", TRS_EINVAL, "not an object");
	expect_poison("{\"Records\":[{}]}", TRS_EINVAL, "neither eventSource");
	expect_poison("{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\"}]}", TRS_EINVAL,
		      "bucket");
	expect_poison("{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
		      "\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":5}}}]}",
		      TRS_EINVAL, "object.key");
	expect_poison("{\"Type\":\"Notification\",\"Message\":5}", TRS_EINVAL, "Message");
	expect_poison("{\"Type\":\"Notification\",\"Message\":\"nope\"}", TRS_EINVAL, "SNS message");
	expect_poison("{\"Type\":\"Notification\",\"Message\":\"{\\\"Type\\\":\\\"Notification\\\",\\\"Message\\\":"
		      "\\\"{}\\\"}\"}",
		      TRS_EINVAL, "inside an SNS");
	expect_poison("{\"source\":\"aws.ec2\",\"detail-type\":\"Object Created\"}", TRS_EINVAL, "EventBridge");
	expect_poison("{\"source\":\"aws.s3\",\"detail-type\":\"Object Created\",\"detail\":{}}", TRS_EINVAL,
		      "bucket");
	expect_poison("{\"Records\":[" RECORD("ObjectCreated:Put", "b", "k") "]} trailing", TRS_EINVAL, "not JSON");
}

TEST(event_nul_inside_body_is_poison)
{
	trs_event *ev = (trs_event *)1;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_event_parse("{\"a\":1}\0xx", 10, &ev, &err) == TRS_EINVAL);
	CHECK(ev == NULL);
}

TEST(event_limits_depth_size_records)
{
	/* A million brackets must be refused before any tree is built. */
	size_t n = 1000000;
	char *deep = malloc(n + 1);
	CHECK(deep);
	memset(deep, '[', n);
	deep[n] = '\0';
	trs_event *ev = (trs_event *)1;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_event_parse(deep, n, &ev, &err) == TRS_ELIMIT);
	CHECK(ev == NULL);
	CHECK_CONTAINS(err.message, "deeper");
	/* Brackets inside strings do not count. */
	memset(deep, ' ', n);
	static const char quoted[] = "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"x\":\"[[[[[[[[[[[[[[[["
				     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"}";
	memcpy(deep, quoted, sizeof(quoted) - 1);
	CHECK(trs_event_parse(deep, sizeof(quoted) - 1, &ev, &err) == 0);
	CHECK(ev->kind == TRS_EVENT_TEST);
	trs_event_free(ev);
	/* Larger than SQS allows. */
	CHECK(trs_event_parse(deep, TRS_EVENT_MAX_BYTES + 1, &ev, &err) == TRS_ELIMIT);
	free(deep);

	/* Too many records. */
	trs__buf b = TRS_BUF_INIT;
	CHECK(trs__buf_puts(&b, "{\"Records\":[", NULL) == 0);
	for (int i = 0; i <= TRS_EVENT_MAX_RECORDS; i++)
		CHECK(trs__buf_puts(&b, i ? ",{}" : "{}", NULL) == 0);
	CHECK(trs__buf_puts(&b, "]}", NULL) == 0);
	CHECK(trs_event_parse(b.data, b.len, &ev, &err) == TRS_ELIMIT);
	CHECK_CONTAINS(err.message, "records");
	trs__buf_free(&b);
}

TEST(event_parse_without_error_object)
{
	trs_event *ev = (trs_event *)1;
	CHECK(trs_event_parse("{}", 2, &ev, NULL) == TRS_EINVAL);
	CHECK(ev == NULL);
	trs_event_free(NULL);
}

int main(void)
{
	RUN(event_s3_record_is_work);
	RUN(event_several_records_in_order_skipping_non_created);
	RUN(event_only_removed_records_is_no_work);
	RUN(event_other_source_is_not_work);
	RUN(event_keys_decode_like_unquote_plus);
	RUN(event_decode_key_invalid_utf8_becomes_replacement);
	RUN(event_decode_key_refuses_nul);
	RUN(event_test_event_both_shapes);
	RUN(event_sns_envelope);
	RUN(event_eventbridge_keys_not_plus_decoded);
	RUN(event_eventbridge_object_deleted_is_no_work_like_object_removed);
	RUN(event_poison_bodies);
	RUN(event_nul_inside_body_is_poison);
	RUN(event_limits_depth_size_records);
	RUN(event_parse_without_error_object);
	return harness_done();
}
