/* SPDX-License-Identifier: Apache-2.0 */
/* Joining members with entries; tags, class and KMS rules; bodies that check themselves. */
#include "harness.h"
#include "archive/object_iter.h"
#include "internal.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
	unsigned char *z;
	trs_ctx *ctx;
	trs_archive *a;
	trs_manifest *m;
	trs_object_iter *it;
} fixture;

static int open_fixture(fixture *f, const char *manifest, const tu_member *members, size_t n)
{
	memset(f, 0, sizeof(*f));
	tu_member all[32];
	memcpy(all, members, n * sizeof(*members));
	all[n].path = "manifest.json";
	all[n].data = manifest;
	all[n].len = 0;
	all[n].type = 0;
	size_t zlen = tu_archive(all, n + 1, 1, 3, &f->z);
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.region = "eu-west-1";
	trs_error err = TRS_ERROR_INIT;
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.data = f->z;
	src.size = zlen;
	if (trs_ctx_new(&f->ctx, &o, &err) || trs_archive_open(&f->a, &src, f->ctx, &err) ||
	    trs_archive_read_manifest(f->a, &f->m, &err) || trs_object_iter_new(&f->it, f->a, f->m, f->ctx, &err)) {
		printf("  fixture: %s\n", err.message);
		return -1;
	}
	return 0;
}

static void close_fixture(fixture *f)
{
	trs_object_iter_free(f->it);
	trs_manifest_free(f->m);
	trs_archive_close(f->a);
	trs_ctx_free(f->ctx);
	free(f->z);
}

static const trs_kv *find_kv(const trs_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key))
			return &kv[i];
	return NULL;
}

/* Read a body to its end; returns the final code (0 or negative). */
static int drain(trs_body *b, trs_error *err)
{
	char buf[4096];
	int64_t n;
	while ((n = b->read(b->self, buf, sizeof(buf), err)) > 0)
		;
	return (int)n;
}

#define TARGETS "\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest-a\"}," \
		"{\"region\":\"eu-west-1\",\"bucket\":\"dest-b\",\"storage_class\":\"GLACIER_IR\",\"kms_key_arn\":\"arn:kms:1\"}," \
		"{\"region\":\"us-east-1\",\"bucket\":\"dest-c\"},{\"region\":\"eu-west-1\",\"bucket\":\"bk\",\"backup\":true}]"

TEST(object_join_builds_puts_for_this_region_only)
{
	fixture f;
	tu_member mem[] = {{"objects/x/y.txt", "hello", 0, 0}};
	CHECK(open_fixture(&f, "{" TARGETS ",\"objects\":[{\"source_prefix\":\"p\",\"object_name\":\"y.txt\",\"relative_key\":\"x/y.txt\","
			       "\"storage_class\":\"STANDARD_IA\",\"size\":5,\"etag\":\"5d41402abc4b2a76b9719d911017c592\"}]}",
			   mem, 1) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(o->status == TRS_OBJECT_READY);
	CHECK(o->nputs == 2 && o->other_region_targets == 1 && o->backup_targets == 1);
	CHECK_STR(o->puts[0].request.bucket, "dest-a");
	CHECK_STR(o->puts[0].request.key, "p/y.txt");
	CHECK_STR(o->puts[0].request.storage_class, "STANDARD_IA"); /* the object's own class */
	CHECK(o->puts[0].request.kms_key_id == NULL);
	CHECK_STR(o->puts[1].request.storage_class, "GLACIER_IR");   /* the target's override wins */
	CHECK_STR(o->puts[1].request.kms_key_id, "arn:kms:1");
	CHECK_STR(o->puts[0].request.content_md5_hex, "5d41402abc4b2a76b9719d911017c592");
	CHECK(drain(trs_object_body(f.it), &err) == 0);
	CHECK(trs_object_iter_next(f.it, &o, &err) == 0);
	close_fixture(&f);
}

TEST(object_storage_class_defaults_to_standard)
{
	fixture f;
	tu_member mem[] = {{"objects/k", "v", 0, 0}};
	CHECK(open_fixture(&f, "{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest-a\",\"storage_class\":\"\"}],"
			       "\"objects\":[{\"object_name\":\"k\"}]}", mem, 1) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK_STR(o->puts[0].request.storage_class, "STANDARD");
	CHECK(o->puts[0].request.ntags == 0);
	CHECK(o->puts[0].request.content_md5_hex == NULL);
	close_fixture(&f);
}

static const char *tags_json(int n)
{
	static char buf[2048];
	strcpy(buf, "[");
	for (int i = 0; i < n; i++)
		sprintf(buf + strlen(buf), "%s{\"t%d\":\"v%d\"}", i ? "," : "", i, i);
	strcat(buf, "]");
	return buf;
}

static int one_object_with_tags(int ntags, fixture *f, const trs_object **o)
{
	char manifest[4096];
	snprintf(manifest, sizeof(manifest),
		 "{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest-a\"}],\"objects\":[{\"object_name\":\"k\","
		 "\"creation_time\":\"2025-01-01 00:00:00\",\"etag\":\"\\\"0123456789abcdef0123456789abcdef-2\\\"\",\"tags\":%s}]}",
		 tags_json(ntags));
	tu_member mem[] = {{"objects/k", "v", 0, 0}};
	trs_error err = TRS_ERROR_INIT;
	if (open_fixture(f, manifest, mem, 1) < 0)
		return -1;
	return trs_object_iter_next(f->it, o, &err) == 1 ? 0 : -1;
}

TEST(object_tags_gain_original_creation_time_and_etag)
{
	fixture f;
	const trs_object *o;
	CHECK(one_object_with_tags(2, &f, &o) == 0);
	const trs_put_request *r = &o->puts[0].request;
	CHECK(r->ntags == 4 && r->nmetadata == 2);
	CHECK_STR(find_kv(r->tags, r->ntags, "OriginalCreationTime")->value, "2025-01-01 00:00:00");
	/* quotes stripped (S3 tag values cannot hold them); a multipart etag is no MD5 */
	CHECK_STR(find_kv(r->tags, r->ntags, "OriginalETag")->value, "0123456789abcdef0123456789abcdef-2");
	/* and as metadata too, which a HEAD returns: the version the next write compares with */
	CHECK_STR(find_kv(r->metadata, r->nmetadata, "original-creation-time")->value, "2025-01-01 00:00:00");
	CHECK_STR(find_kv(r->metadata, r->nmetadata, "original-etag")->value, "0123456789abcdef0123456789abcdef-2");
	CHECK(r->content_md5_hex == NULL);
	close_fixture(&f);
}

TEST(object_ten_original_tags_push_originals_to_metadata)
{
	fixture f;
	const trs_object *o;
	CHECK(one_object_with_tags(10, &f, &o) == 0);
	const trs_put_request *r = &o->puts[0].request;
	CHECK(r->ntags == 10);
	CHECK(find_kv(r->tags, r->ntags, "t9") && !find_kv(r->tags, r->ntags, "OriginalETag"));
	CHECK(r->nmetadata == 2);
	CHECK_STR(find_kv(r->metadata, r->nmetadata, "original-creation-time")->value, "2025-01-01 00:00:00");
	CHECK(find_kv(r->metadata, r->nmetadata, "original-etag") != NULL);
	close_fixture(&f);
}

TEST(object_nine_original_tags_fit_creation_time_only)
{
	fixture f;
	const trs_object *o;
	CHECK(one_object_with_tags(9, &f, &o) == 0);
	const trs_put_request *r = &o->puts[0].request;
	CHECK(r->ntags == 10);
	CHECK(find_kv(r->tags, r->ntags, "OriginalCreationTime") != NULL);
	CHECK(!find_kv(r->tags, r->ntags, "OriginalETag"));
	CHECK(r->nmetadata == 2);
	CHECK(find_kv(r->metadata, r->nmetadata, "original-etag") != NULL);
	CHECK(find_kv(r->metadata, r->nmetadata, "original-creation-time") != NULL);
	close_fixture(&f);
}

TEST(object_more_than_ten_tags_never_drops_the_object)
{
	fixture f;
	const trs_object *o;
	CHECK(one_object_with_tags(12, &f, &o) == 0);
	const trs_put_request *r = &o->puts[0].request;
	CHECK(r->ntags == 10);
	CHECK(o->puts[0].error == 0);
	const trs_kv *rest = find_kv(r->metadata, r->nmetadata, "original-tags");
	CHECK(rest != NULL);
	CHECK_STR(rest->value, "t10=v10&t11=v11");
	close_fixture(&f);
}

TEST(object_skips_unjoined_members_and_reports_missing_entries)
{
	fixture f;
	tu_member mem[] = {
		{"objects/", NULL, 0, 2},
		{"objects/stray.bin", "x", 0, 0},
		{"objects/link", NULL, 0, 1},
		{"elsewhere/file", "y", 0, 0},
		{"objects/here", "z", 0, 0},
	};
	CHECK(open_fixture(&f, "{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest-a\"}],\"objects\":["
			       "{\"object_name\":\"here\"},{\"object_name\":\"gone\"},{\"object_name\":\"link\"}]}",
			   mem, 5) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(o->status == TRS_OBJECT_READY);
	CHECK_STR(o->entry->relative_key, "here");
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(o->status == TRS_OBJECT_MISSING);
	CHECK_STR(o->entry->relative_key, "gone");
	CHECK(o->nputs == 1 && o->puts[0].error == 0); /* lost upstream: the pipeline says so */
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(o->status == TRS_OBJECT_MISSING); /* a symlink never stands in for an object */
	CHECK_STR(o->entry->relative_key, "link");
	/* but the archive holds it, as a link: its failure says so */
	CHECK(o->nputs == 1 && o->puts[0].error == TRS_EUNSAFE);
	CHECK_CONTAINS(o->puts[0].error_message, "the archive holds this object as a symbolic link");
	CHECK(trs_object_iter_next(f.it, &o, &err) == 0);
	CHECK(trs_object_iter_skipped_members(f.it) == 3);
	close_fixture(&f);
}

TEST(object_body_fails_on_size_mismatch)
{
	fixture f;
	tu_member mem[] = {{"objects/k", "12345", 0, 0}};
	CHECK(open_fixture(&f, "{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest-a\"}],\"objects\":[{\"object_name\":\"k\",\"size\":4}]}",
			   mem, 1) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(drain(trs_object_body(f.it), &err) == TRS_EINTEGRITY);
	CHECK_CONTAINS(err.message, "manifest says 4");
	close_fixture(&f);
}

TEST(object_body_fails_on_md5_mismatch_at_the_last_byte)
{
	fixture f;
	tu_member mem[] = {{"objects/k", "hello", 0, 0}};
	CHECK(open_fixture(&f, "{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest-a\"}],\"objects\":[{\"object_name\":\"k\",\"size\":5,"
			       "\"etag\":\"00000000000000000000000000000000\"}]}", mem, 1) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	trs_body *b = trs_object_body(f.it);
	char buf[16];
	CHECK(b->read(b->self, buf, sizeof(buf), &err) == 5); /* bytes flow... */
	CHECK(b->read(b->self, buf, sizeof(buf), &err) == TRS_EINTEGRITY); /* ...and the end refuses */
	CHECK_CONTAINS(err.message, "MD5");
	close_fixture(&f);
}

TEST(object_put_errors_for_bucketless_target_and_long_key)
{
	char name[1100];
	memset(name, 'k', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	char manifest[2048];
	snprintf(manifest, sizeof(manifest),
		 "{\"targets\":[{\"region\":\"eu-west-1\"},{\"region\":\"eu-west-1\",\"bucket\":\"ok-bucket\"}],"
		 "\"objects\":[{\"object_name\":\"%s\",\"relative_key\":\"r\"}]}", name);
	fixture f;
	tu_member mem[] = {{"objects/r", "x", 0, 0}};
	CHECK(open_fixture(&f, manifest, mem, 1) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(o->nputs == 2);
	CHECK(o->puts[0].error == TRS_EINVAL);
	CHECK(o->puts[1].error == TRS_ELIMIT);
	CHECK_CONTAINS(o->puts[1].error_message, "1024");
	close_fixture(&f);
}

/* A bucket S3 refuses, or one with a NUL that C would cut, fails that put alone (fs and s3 alike). */
TEST(object_put_refuses_bucket_names_s3_refuses)
{
	fixture f;
	tu_member mem[] = {{"objects/r", "x", 0, 0}};
	CHECK(open_fixture(&f,
			   "{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest\\u0000evil\"},"
			   "{\"region\":\"eu-west-1\",\"bucket\":\"Bad_Name\"},{\"region\":\"eu-west-1\",\"bucket\":\"10.0.0.1\"},"
			   "{\"region\":\"eu-west-1\",\"bucket\":\"a..b\"},{\"region\":\"eu-west-1\",\"bucket\":\"good.bucket-1\"}],"
			   "\"objects\":[{\"object_name\":\"k\",\"relative_key\":\"r\"}]}",
			   mem, 1) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(o->nputs == 5);
	CHECK_STR(o->puts[0].request.bucket, "dest");
	CHECK(o->puts[0].error == TRS_EINVAL);
	CHECK_CONTAINS(o->puts[0].error_message, "NUL");
	CHECK(o->puts[1].error == TRS_EINVAL);
	CHECK_CONTAINS(o->puts[1].error_message, "lower-case");
	CHECK(o->puts[2].error == TRS_EINVAL && o->puts[3].error == TRS_EINVAL);
	CHECK(o->puts[4].error == 0);
	close_fixture(&f);
	CHECK(trs__bucket_name_problem("abc") == NULL && trs__bucket_name_problem("ab") != NULL);
	CHECK(trs__bucket_name_problem("xn--abc") != NULL && trs__bucket_name_problem("abc-s3alias") != NULL);
	CHECK(trs__bucket_name_problem("-abc") != NULL && trs__bucket_name_problem("1.2.3.4.5") == NULL);
}

/* A KMS key id S3 would refuse, or read as another key, fails that put alone; the others go ahead. */
TEST(object_put_refuses_kms_key_ids_s3_refuses)
{
	static char manifest[16384], longest[TRS_KMS_MAX_KEY_ID + 1], too_long[TRS_KMS_MAX_KEY_ID + 2];
	memset(longest, 'a', TRS_KMS_MAX_KEY_ID);
	memset(too_long, 'a', TRS_KMS_MAX_KEY_ID + 1);
	memcpy(longest, "alias/", 6);
	memcpy(too_long, "alias/", 6);
	static const char *const ids[] = {
		"alias/x\\u0000y", " ", "alias/a b", "alias/a\\tb", "alias/a\\u0007", "alias/\\u00e9t\\u00e9", NULL,
		"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"1234abcd-12ab-34cd-56ef-1234567890ab", "alias/My_Alias-1", "mrk-1234abcd12ab34cd56ef1234567890ab",
		"arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/x", NULL};
	size_t n = snprintf(manifest, sizeof(manifest), "{\"targets\":[");
	for (size_t i = 0; i < TRS_ARRAY_SIZE(ids); i++)
		n += snprintf(manifest + n, sizeof(manifest) - n, "%s{\"region\":\"eu-west-1\",\"bucket\":\"bucket-%zu\",\"kms_key_arn\":\"%s\"}",
			      i ? "," : "", i, ids[i] ? ids[i] : i < 7 ? too_long : longest);
	snprintf(manifest + n, sizeof(manifest) - n, "],\"objects\":[{\"object_name\":\"k\",\"relative_key\":\"r\"}]}");
	fixture f;
	tu_member mem[] = {{"objects/r", "x", 0, 0}};
	CHECK(open_fixture(&f, manifest, mem, 1) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(o->nputs == TRS_ARRAY_SIZE(ids));
	CHECK(o->puts[0].error == TRS_EINVAL);
	CHECK_CONTAINS(o->puts[0].error_message, "kms_key_arn holds a NUL byte");
	CHECK_CONTAINS(o->puts[1].error_message, "kms_key_arn holds a blank");
	CHECK_CONTAINS(o->puts[2].error_message, "kms_key_arn holds a blank");
	CHECK_CONTAINS(o->puts[3].error_message, "kms_key_arn holds a blank");
	CHECK_CONTAINS(o->puts[4].error_message, "kms_key_arn holds a control character");
	CHECK_CONTAINS(o->puts[5].error_message, "letters, digits and : / _ -");
	CHECK_CONTAINS(o->puts[6].error_message, "longer than the 2048 characters");
	for (size_t i = 0; i < 7; i++)
		CHECK(o->puts[i].error == TRS_EINVAL);
	/* A key id, key ARN, alias, multi-region key and ARN of another partition, and 2048 characters: taken whole. */
	for (size_t i = 7; i < TRS_ARRAY_SIZE(ids); i++) {
		CHECK(o->puts[i].error == 0);
		CHECK_STR(o->puts[i].request.kms_key_id, ids[i] ? ids[i] : longest);
	}
	close_fixture(&f);
}

/* A storage class cut at a NUL would be another class: that put fails, the others go ahead. */
TEST(object_put_refuses_a_storage_class_cut_at_a_nul)
{
	fixture f;
	tu_member mem[] = {{"objects/r", "x", 0, 0}};
	CHECK(open_fixture(&f,
			   "{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest-a\",\"storage_class\":\"STANDARD\\u0000GLACIER\"},"
			   "{\"region\":\"eu-west-1\",\"bucket\":\"dest-b\",\"storage_class\":\"GLACIER\"}],"
			   "\"objects\":[{\"object_name\":\"k\",\"relative_key\":\"r\"}]}",
			   mem, 1) == 0);
	const trs_object *o;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_object_iter_next(f.it, &o, &err) == 1);
	CHECK(o->nputs == 2);
	CHECK(o->puts[0].error == TRS_EINVAL);
	CHECK_CONTAINS(o->puts[0].error_message, "storage_class holds a NUL byte");
	CHECK(o->puts[1].error == 0);
	CHECK_STR(o->puts[1].request.storage_class, "GLACIER");
	close_fixture(&f);
}

int main(void)
{
	RUN(object_join_builds_puts_for_this_region_only);
	RUN(object_put_refuses_bucket_names_s3_refuses);
	RUN(object_put_refuses_kms_key_ids_s3_refuses);
	RUN(object_put_refuses_a_storage_class_cut_at_a_nul);
	RUN(object_storage_class_defaults_to_standard);
	RUN(object_tags_gain_original_creation_time_and_etag);
	RUN(object_ten_original_tags_push_originals_to_metadata);
	RUN(object_nine_original_tags_fit_creation_time_only);
	RUN(object_more_than_ten_tags_never_drops_the_object);
	RUN(object_skips_unjoined_members_and_reports_missing_entries);
	RUN(object_body_fails_on_size_mismatch);
	RUN(object_body_fails_on_md5_mismatch_at_the_last_byte);
	RUN(object_put_errors_for_bucketless_target_and_long_key);
	return harness_done();
}
