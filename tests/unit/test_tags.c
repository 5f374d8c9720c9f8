/* SPDX-License-Identifier: Apache-2.0 */
/* Tags and user metadata within S3's limits (lib/archive/tags.c). */
#include "harness.h"
#include "archive/object_iter.h"
#include "archive/tags.h"
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>

static trs_manifest_object entry(trs_kv *tags, size_t ntags, const char *ctime, const char *etag)
{
	trs_manifest_object e;
	memset(&e, 0, sizeof(e));
	e.source_bucket = e.source_prefix = e.relative_key = e.storage_class = "";
	e.object_name = "o";
	e.tags = tags;
	e.ntags = ntags;
	e.creation_time = ctime;
	e.etag = etag;
	return e;
}

/* User metadata as S3 counts it: names (without x-amz-meta-) and values, in bytes. */
static size_t metadata_bytes(const trs__tagset *ts)
{
	size_t n = 0;
	for (size_t i = 0; i < ts->nmetadata; i++)
		n += strlen(ts->metadata[i].key) + strlen(ts->metadata[i].value);
	return n;
}

static size_t tagging_bytes(const trs__tagset *ts)
{
	trs__buf b = TRS_BUF_INIT;
	for (size_t i = 0; i < ts->ntags; i++) {
		if (i)
			trs__buf_puts(&b, "&", NULL);
		trs__uri_encode(&b, ts->tags[i].key, strlen(ts->tags[i].key), false, NULL);
		trs__buf_puts(&b, "=", NULL);
		trs__uri_encode(&b, ts->tags[i].value, strlen(ts->tags[i].value), false, NULL);
	}
	size_t n = b.len;
	trs__buf_free(&b);
	return n;
}

/* 30 tags of 256 characters: 7,738 bytes of metadata before; S3 refuses more than 2 KB. */
TEST(tags_thirty_long_tags_keep_originals_first_and_metadata_within_2kb)
{
	static char keys[30][8], value[257];
	memset(value, 'v', 256);
	trs_kv tags[30];
	for (int i = 0; i < 30; i++) {
		snprintf(keys[i], sizeof(keys[i]), "tag%02d", i);
		tags[i] = (trs_kv){keys[i], value};
	}
	trs_manifest_object e = entry(tags, 30, "2025-01-23 10:15:00", "\"9e107d9d372bb6826bd81d3542a419d6\"");
	trs__tagset ts = TRS_TAGSET_INIT;
	CHECK(trs__tagset_build(&ts, &e, "p/o", 0, NULL) == 0);
	size_t ntags = ts.ntags, nmeta = ts.nmetadata, bytes = metadata_bytes(&ts), dropped = ts.dropped;
	char first[32] = "", second[32] = "", third[32] = "", etag[40] = "", list[64] = "";
	if (nmeta == 3) {
		snprintf(first, sizeof(first), "%s", ts.metadata[0].key);
		snprintf(second, sizeof(second), "%s", ts.metadata[1].key);
		snprintf(third, sizeof(third), "%s", ts.metadata[2].key);
		snprintf(etag, sizeof(etag), "%s", ts.metadata[1].value);
	}
	snprintf(list, sizeof(list), "%.30s", ts.dropped_list.data);
	size_t tagging = tagging_bytes(&ts);
	trs__tagset_free(&ts);
	CHECK(ntags == 10);
	CHECK(tagging < TRS_S3_MAX_HEADERS / 2);
	CHECK(nmeta == 3);
	CHECK_STR(first, "original-creation-time");
	CHECK_STR(second, "original-etag");
	CHECK_STR(etag, "9e107d9d372bb6826bd81d3542a419d6");
	CHECK_STR(third, "original-tags");
	CHECK(bytes + 3 * strlen("x-amz-meta-") <= 2000);
	CHECK(bytes > 1500); /* cut to fit, not emptied */
	CHECK(dropped > 0 && dropped < 20);
	CHECK_CONTAINS(list, "tag");
}

TEST(tags_s3_refuses_go_to_metadata)
{
	trs_kv tags[] = {
		{"ok key", "fine +-=._:/@ value"}, {"a#b", "x"}, {"smile", "\xf0\x9f\x98\x80"}, {"aws:reserved", "x"},
		{"ünïcödé", "日本語 ١٢٣"}, {"combining", "e\xcc\x81"}, {"", "empty key"}, {"ctl", "a\tb"},
	};
	trs_manifest_object e = entry(tags, TRS_ARRAY_SIZE(tags), "", "");
	trs__tagset ts = TRS_TAGSET_INIT;
	CHECK(trs__tagset_build(&ts, &e, "k", 0, NULL) == 0);
	size_t ntags = ts.ntags, nmeta = ts.nmetadata;
	char k0[32] = "", k1[32] = "", meta[256] = "";
	if (ntags == 2) {
		snprintf(k0, sizeof(k0), "%s", ts.tags[0].key);
		snprintf(k1, sizeof(k1), "%s", ts.tags[1].key);
	}
	if (nmeta == 1)
		snprintf(meta, sizeof(meta), "%s", ts.metadata[0].value);
	trs__tagset_free(&ts);
	CHECK(ntags == 2);
	CHECK_STR(k0, "ok key");
	CHECK_STR(k1, "ünïcödé");
	CHECK(nmeta == 1);
	CHECK_CONTAINS(meta, "a%23b=x");
	CHECK_CONTAINS(meta, "smile=%F0%9F%98%80");
	CHECK_CONTAINS(meta, "aws%3Areserved=x");
	CHECK_CONTAINS(meta, "combining=e%CC%81");
	CHECK_CONTAINS(meta, "ctl=a%09b");
}

/* Ten tags of 256 non-ASCII characters: 15 KB once percent-encoded, over S3's 8 KB of headers. */
TEST(tags_keep_the_tagging_header_within_8kb)
{
	static char value[256 * 2 + 1], key[128 * 2 + 1];
	for (int i = 0; i < 256; i++)
		memcpy(value + 2 * i, "\xc3\xa9", 2);
	for (int i = 0; i < 128; i++)
		memcpy(key + 2 * i, "\xc3\xa9", 2);
	static char keys[10][300];
	trs_kv tags[10];
	for (int i = 0; i < 10; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%d%.*s", i, 250, key);
		tags[i] = (trs_kv){keys[i], value};
	}
	char long_key[1025];
	memset(long_key, 'k', 1024);
	long_key[1024] = '\0';
	trs_manifest_object e = entry(tags, 10, "2025-01-23 10:15:00", "");
	trs__tagset ts = TRS_TAGSET_INIT;
	CHECK(trs__tagset_build(&ts, &e, long_key, 0, NULL) == 0);
	size_t tagging = tagging_bytes(&ts), meta = metadata_bytes(&ts), ntags = ts.ntags;
	trs__tagset_free(&ts);
	CHECK(ntags >= 1 && ntags < 10);
	/* tagging, metadata (with names and prefixes) and the key leave 1.5 KB for everything else */
	CHECK(tagging + meta + 3 * 15 + 1024 + 1536 <= TRS_S3_MAX_HEADERS);
	CHECK(meta + 3 * 11 <= 2000);
}

TEST(tags_an_original_too_long_for_anything_is_dropped_not_refused)
{
	static char ctime[3001];
	memset(ctime, '1', 3000);
	trs_manifest_object e = entry(NULL, 0, ctime, "abc");
	trs__tagset ts = TRS_TAGSET_INIT;
	CHECK(trs__tagset_build(&ts, &e, "k", 0, NULL) == 0);
	size_t ntags = ts.ntags, nmeta = ts.nmetadata, dropped = ts.dropped;
	char tag[32] = "", meta[32] = "";
	if (ntags == 1)
		snprintf(tag, sizeof(tag), "%s", ts.tags[0].key);
	if (nmeta == 1)
		snprintf(meta, sizeof(meta), "%s", ts.metadata[0].key);
	trs__tagset_free(&ts);
	CHECK(ntags == 1);
	CHECK_STR(tag, "OriginalETag");
	/* the etag is metadata too; the time fits in neither */
	CHECK(nmeta == 1 && dropped == 1);
	CHECK_STR(meta, "original-etag");
}

TEST(tags_acceptable_follows_s3s_rules)
{
	char long_value[258];
	memset(long_value, 'a', 257);
	long_value[257] = '\0';
	CHECK(trs__tag_acceptable("Team Name", true));
	CHECK(trs__tag_acceptable("", false));
	CHECK(!trs__tag_acceptable("", true));
	CHECK(!trs__tag_acceptable("AWS:x", true));
	CHECK(!trs__tag_acceptable(long_value, false));
	long_value[256] = '\0';
	CHECK(trs__tag_acceptable(long_value, false));
	CHECK(!trs__tag_acceptable(long_value, true));
	CHECK(!trs__tag_acceptable("bad\xff", false));
	CHECK(!trs__tag_acceptable("quote\"", false));
}

/* A KMS key id of 2,048 characters (AWS's longest) and a key of 3 KB once encoded: the tags and the
 * metadata give way, so that with the other headers the request stays within S3's 8 KB. */
TEST(tags_leave_room_for_the_longest_kms_key_id)
{
	static char value[256 * 2 + 1], key[512 * 2 + 1], kms[TRS_KMS_MAX_KEY_ID + 1];
	for (int i = 0; i < 256; i++)
		memcpy(value + 2 * i, "\xc3\xa9", 2);
	for (int i = 0; i < 512; i++)
		memcpy(key + 2 * i, "\xc3\xa9", 2);
	memset(kms, 'k', TRS_KMS_MAX_KEY_ID);
	static char keys[10][8];
	trs_kv tags[10];
	for (int i = 0; i < 10; i++) {
		snprintf(keys[i], sizeof(keys[i]), "t%d", i);
		tags[i] = (trs_kv){keys[i], value};
	}
	trs_manifest_object e = entry(tags, 10, "2025-01-23 10:15:00", "9e107d9d372bb6826bd81d3542a419d6");
	trs__tagset ts = TRS_TAGSET_INIT;
	size_t kms_header = trs__kms_header_bytes(kms);
	CHECK(kms_header > TRS_KMS_MAX_KEY_ID);
	CHECK(trs__tagset_build(&ts, &e, key, kms_header, NULL) == 0);
	trs__buf encoded = TRS_BUF_INIT;
	trs__uri_encode(&encoded, key, strlen(key), true, NULL);
	size_t key_bytes = encoded.len;
	trs__buf_free(&encoded);
	size_t tagging = tagging_bytes(&ts), ntags = ts.ntags, nmeta = ts.nmetadata;
	size_t meta = metadata_bytes(&ts) + ts.nmetadata * strlen("x-amz-meta-: \r\n");
	trs__tagset_free(&ts);
	CHECK(key_bytes == 3072);
	/* the originals are still there, as metadata: what the next write compares versions with */
	CHECK(nmeta >= 2);
	CHECK(tagging + (ntags ? strlen("x-amz-tagging: \r\n") : 0) + meta + key_bytes + kms_header + 1536 <=
	      TRS_S3_MAX_HEADERS);
}

int main(void)
{
	RUN(tags_thirty_long_tags_keep_originals_first_and_metadata_within_2kb);
	RUN(tags_s3_refuses_go_to_metadata);
	RUN(tags_keep_the_tagging_header_within_8kb);
	RUN(tags_leave_room_for_the_longest_kms_key_id);
	RUN(tags_an_original_too_long_for_anything_is_dropped_not_refused);
	RUN(tags_acceptable_follows_s3s_rules);
	return harness_done();
}
