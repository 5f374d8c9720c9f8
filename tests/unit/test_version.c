/* SPDX-License-Identifier: Apache-2.0 */
/* Newest wins: the manifest's time, the version recorded on an object, the rule; the region check. */
#include "harness.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

TEST(version_parses_the_source_sides_time_and_iso_forms)
{
	int64_t t;
	CHECK(trs__source_time_parse("2025-01-23 10:15:00", &t) == 0 && t == 1737627300);
	int64_t same[] = {0, 0, 0, 0, 0, 0};
	CHECK(trs__source_time_parse("2025-01-23T10:15:00Z", &same[0]) == 0);
	CHECK(trs__source_time_parse("2025-01-23T10:15:00.999Z", &same[1]) == 0);
	CHECK(trs__source_time_parse("2025-01-23T11:15:00+01:00", &same[2]) == 0);
	CHECK(trs__source_time_parse("2025-01-23T05:15:00-0500", &same[3]) == 0);
	CHECK(trs__source_time_parse("2025-01-23 10:15:00+00", &same[4]) == 0);
	CHECK(trs__source_time_parse("2025-01-23 10:15:00 UTC", &same[5]) == 0);
	for (size_t i = 0; i < 6; i++)
		CHECK(same[i] == t);
	CHECK(trs__source_time_parse("1969-12-31 23:59:59", &t) == 0 && t == -1);
	CHECK(trs__source_time_parse("2024-02-29 00:00:00", &t) == 0);
}

TEST(version_refuses_what_is_not_a_time)
{
	int64_t t;
	const char *bad[] = {"", "yesterday", "2025-01-23", "2025-13-01 00:00:00", "2025-01-32 00:00:00",
			     "2025-01-23 24:00:00", "2025-01-23 10:15:00 garbage", "2025/01/23 10:15:00",
			     "2025-01-23T10:15:00+25:00", "2025-01-23 10:15"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(bad); i++)
		CHECK(trs__source_time_parse(bad[i], &t) < 0);
}

static trs_write_condition cond(const char *time, const char *etag)
{
	trs_write_condition c = TRS_WRITE_CONDITION_INIT;
	c.source_time = time;
	c.source_etag = etag;
	return c;
}

/* An object as a restore left it: the version in tags, metadata, or both. */
static trs_object_info recorded(trs_kv *tags, size_t ntags, trs_kv *meta, size_t nmeta)
{
	trs_object_info info;
	memset(&info, 0, sizeof(info));
	info.tags = tags;
	info.ntags = ntags;
	info.metadata = meta;
	info.nmetadata = nmeta;
	return info;
}

TEST(version_newer_writes_older_keeps_same_is_current)
{
	trs_kv meta[] = {{"original-creation-time", "2025-01-23 10:05:00"}, {"original-etag", "aaaa"}};
	trs_object_info there = recorded(NULL, 0, meta, 2);
	trs_write_condition newer = cond("2025-01-23 10:05:01", "0000");
	trs_write_condition older = cond("2025-01-23 10:04:59", "ffff");
	trs_write_condition same = cond("2025-01-23T10:05:00Z", "\"AAAA\"");
	CHECK(trs_write_condition_check(&newer, &there) == TRS_WRITTEN);
	CHECK(trs_write_condition_check(&older, &there) == TRS_KEPT_NEWER);
	CHECK(trs_write_condition_check(&same, &there) == TRS_ALREADY_CURRENT);
	CHECK(trs_write_condition_check(&older, NULL) == TRS_WRITTEN);
}

TEST(version_two_versions_of_one_second_order_by_etag_either_way)
{
	trs_kv meta_a[] = {{"original-creation-time", "2025-01-23 10:05:00"}, {"original-etag", "aaaa"}};
	trs_kv meta_b[] = {{"original-creation-time", "2025-01-23 10:05:00"}, {"original-etag", "bbbb"}};
	trs_object_info has_a = recorded(NULL, 0, meta_a, 2), has_b = recorded(NULL, 0, meta_b, 2);
	trs_write_condition a = cond("2025-01-23 10:05:00", "aaaa"), b = cond("2025-01-23 10:05:00", "bbbb");
	/* whichever arrives first, b ends there: every consumer converges on the same object */
	CHECK(trs_write_condition_check(&b, &has_a) == TRS_WRITTEN);
	CHECK(trs_write_condition_check(&a, &has_b) == TRS_KEPT_NEWER);
}

TEST(version_is_read_from_tags_when_metadata_has_none)
{
	/* An object the Python service wrote: tags only. */
	trs_kv tags[] = {{"team", "x"}, {"OriginalCreationTime", "2025-01-23 10:05:00"}, {"OriginalETag", "aaaa"}};
	trs_object_info py = recorded(tags, 3, NULL, 0);
	trs_write_condition older = cond("2025-01-01 00:00:00", "aaaa");
	CHECK(trs_write_condition_check(&older, &py) == TRS_KEPT_NEWER);
	/* metadata beats tags where both are (S3 lower-cases metadata names) */
	trs_kv meta[] = {{"Original-Creation-Time", "2026-01-01 00:00:00"}};
	trs_object_info both = recorded(tags, 3, meta, 1);
	trs_write_condition mid = cond("2025-06-01 00:00:00", "aaaa");
	CHECK(trs_write_condition_check(&mid, &both) == TRS_KEPT_NEWER);
}

TEST(version_what_cannot_be_compared_is_written)
{
	trs_kv meta[] = {{"original-creation-time", "2025-01-23 10:05:00"}};
	trs_object_info versioned = recorded(NULL, 0, meta, 1);
	trs_object_info foreign = recorded(NULL, 0, NULL, 0);
	trs_kv bad[] = {{"original-creation-time", "not a time"}};
	trs_object_info garbled = recorded(NULL, 0, bad, 1);
	trs_write_condition old = cond("2000-01-01 00:00:00", "e");
	trs_write_condition untimed = cond("", "e");
	trs_write_condition unparsable = cond("soon", "e");
	CHECK(trs_write_condition_check(&old, &foreign) == TRS_WRITTEN);
	CHECK(trs_write_condition_check(&old, &garbled) == TRS_WRITTEN);
	CHECK(trs_write_condition_check(&untimed, &versioned) == TRS_WRITTEN);
	CHECK(trs_write_condition_check(&unparsable, &versioned) == TRS_WRITTEN);
	CHECK(trs_write_condition_check(NULL, &versioned) == TRS_WRITTEN);
}

TEST(region_shape_and_nearest)
{
	const char *good[] = {"eu-west-1", "us-gov-west-1", "ap-southeast-5", "cn-northwest-1", "eusc-de-east-1",
			      "me-central-1", "xx-future-12"};
	const char *bad[] = {"eu-west-l", "eu-west", "EU-WEST-1", "euwest1", "eu-west-123", "local", "eu--west-1",
			     "-eu-west-1", "eu-west-1 ", "bench-1"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(good); i++)
		CHECK(trs__region_shaped(good[i]));
	for (size_t i = 0; i < TRS_ARRAY_SIZE(bad); i++)
		CHECK(!trs__region_shaped(bad[i]));
	CHECK_STR(trs__region_nearest("eu-west-l"), "eu-west-1");
	CHECK_STR(trs__region_nearest("EU-WEST-1"), "eu-west-1");
	CHECK_STR(trs__region_nearest("us-east-one"), "us-east-1");
	CHECK_STR(trs__region_nearest("apsoutheast2"), "ap-southeast-2");
}

TEST(region_check_names_the_source_and_the_fix)
{
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__region_check("eu-west-1", "AWS_REGION", &err) == 0);
	CHECK(trs__region_check("", "AWS_REGION", &err) == 0);
	CHECK(trs__region_check("eu-west-l", "AWS_REGION", &err) == TRS_EINVAL);
	CHECK_CONTAINS(err.message, "'eu-west-l' (AWS_REGION)");
	CHECK_CONTAINS(err.message, "did you mean eu-west-1");
}

TEST(region_a_context_refuses_a_malformed_one)
{
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.region = "eu-west-l";
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &o, &err) == TRS_EINVAL && ctx == NULL);
	CHECK_CONTAINS(err.message, "eu-west-1");
	o.region = "eu-west-1";
	CHECK(trs_ctx_new(&ctx, &o, &err) == 0);
	CHECK_STR(trs_ctx_region(ctx), "eu-west-1");
	trs_ctx_free(ctx);
}

int main(void)
{
	RUN(version_parses_the_source_sides_time_and_iso_forms);
	RUN(version_refuses_what_is_not_a_time);
	RUN(version_newer_writes_older_keeps_same_is_current);
	RUN(version_two_versions_of_one_second_order_by_etag_either_way);
	RUN(version_is_read_from_tags_when_metadata_has_none);
	RUN(version_what_cannot_be_compared_is_written);
	RUN(region_shape_and_nearest);
	RUN(region_check_names_the_source_and_the_fix);
	RUN(region_a_context_refuses_a_malformed_one);
	return harness_done();
}
