/* SPDX-License-Identifier: Apache-2.0 */
/* The manifest rules of FORMAT.md §2, and hostile JSON. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <time.h>

static trs_manifest *parse_ok(const char *json)
{
	trs_manifest *m = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_manifest_parse(json, strlen(json), &m, &err) != 0)
		printf("  unexpected error: %s\n", err.message);
	return m;
}

static int parse_err(const char *json, trs_error *err)
{
	trs_manifest *m = NULL;
	int rc = trs_manifest_parse(json, strlen(json), &m, err);
	if (m)
		trs_manifest_free(m);
	return rc;
}

TEST(manifest_reads_every_field)
{
	trs_manifest *m = parse_ok(
		"{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"a\"},"
		"{\"region\":\"eu-west-1\",\"bucket\":\"b\",\"storage_class\":\"GLACIER_IR\",\"kms_key_arn\":\"arn:k\"},"
		"{\"region\":\"us-east-1\",\"bucket\":\"c\",\"backup\":true}],"
		"\"objects\":[{\"source_bucket\":\"src\",\"source_prefix\":\"data/2025\",\"object_name\":\"r f.csv\","
		"\"relative_key\":\"2025/r f.csv\",\"tags\":[{\"team\":\"fin\"},{\"pii\":\"no\"}],"
		"\"creation_time\":\"2025-01-23 10:15:00\",\"etag\":\"9e107d9d372bb6826bd81d3542a419d6\","
		"\"size\":1048576,\"storage_class\":\"STANDARD_IA\"}]}");
	CHECK(m);
	CHECK(trs_manifest_target_count(m) == 3);
	const trs_manifest_target *t = trs_manifest_target_at(m, 1);
	CHECK_STR(t->region, "eu-west-1");
	CHECK_STR(t->bucket, "b");
	CHECK_STR(t->storage_class, "GLACIER_IR");
	CHECK_STR(t->kms_key_arn, "arn:k");
	CHECK(!t->backup && trs_manifest_target_at(m, 2)->backup);
	CHECK_STR(trs_manifest_target_at(m, 0)->storage_class, "");
	CHECK(trs_manifest_object_count(m) == 1);
	const trs_manifest_object *o = trs_manifest_object_at(m, 0);
	CHECK_STR(o->source_bucket, "src");
	CHECK_STR(o->object_name, "r f.csv");
	CHECK_STR(o->relative_key, "2025/r f.csv");
	CHECK_STR(o->creation_time, "2025-01-23 10:15:00");
	CHECK(o->has_size && o->size == 1048576);
	CHECK_STR(o->storage_class, "STANDARD_IA");
	CHECK(o->ntags == 2);
	CHECK_STR(o->tags[0].key, "team");
	CHECK_STR(o->tags[1].value, "no");
	char key[64];
	CHECK(trs_manifest_dest_key(o, key, sizeof(key)) == strlen("data/2025/r f.csv"));
	CHECK_STR(key, "data/2025/r f.csv");
	CHECK(trs_manifest_find(m, "2025/r f.csv", 12) == o);
	CHECK(trs_manifest_find(m, "2025/r f.cs", 11) == NULL);
	trs_manifest_free(m);
}

TEST(manifest_defaults_relative_key_and_prefix)
{
	trs_manifest *m = parse_ok("{\"targets\":[],\"objects\":[{\"object_name\":\"x.txt\"}]}");
	CHECK(m);
	const trs_manifest_object *o = trs_manifest_object_at(m, 0);
	CHECK_STR(o->relative_key, "x.txt");
	CHECK(!o->has_size);
	CHECK_STR(o->storage_class, "");
	char key[16];
	trs_manifest_dest_key(o, key, sizeof(key));
	CHECK_STR(key, "x.txt");
	CHECK(trs_manifest_warning_count(m) == 1); /* no targets */
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "no targets");
	trs_manifest_free(m);
}

TEST(manifest_sizes_are_exact_beyond_2_53)
{
	trs_manifest *m = parse_ok("{\"objects\":[{\"object_name\":\"a\",\"size\":9007199254740993},"
				   "{\"object_name\":\"b\",\"size\":18446744073709551615},"
				   "{\"object_name\":\"c\",\"size\":1048576.0},{\"object_name\":\"d\",\"size\":1e3}]}");
	CHECK(m);
	CHECK(trs_manifest_object_at(m, 0)->size == 9007199254740993ull);
	CHECK(trs_manifest_object_at(m, 1)->size == 18446744073709551615ull);
	CHECK(trs_manifest_object_at(m, 2)->size == 1048576);
	CHECK(trs_manifest_object_at(m, 3)->size == 1000);
	trs_manifest_free(m);
}

/* One unusable size fails that entry alone (flagged, warned), not the archive. */
TEST(manifest_unusable_size_fails_only_its_entry)
{
	trs_manifest *m = parse_ok("{\"objects\":[{\"object_name\":\"a\",\"size\":1.5},{\"object_name\":\"b\",\"size\":-1},"
				   "{\"object_name\":\"c\",\"size\":18446744073709551616},{\"object_name\":\"d\",\"size\":\"12\"},"
				   "{\"object_name\":\"e\",\"size\":{\"n\":1}},{\"object_name\":\"ok\",\"size\":3}]}");
	CHECK(m);
	CHECK(trs_manifest_object_count(m) == 6);
	for (size_t i = 0; i < 5; i++)
		CHECK(trs_manifest_object_at(m, i)->flags & TRS_MANIFEST_OBJECT_BAD_SIZE);
	CHECK(!(trs_manifest_object_at(m, 5)->flags & TRS_MANIFEST_OBJECT_BAD_SIZE));
	CHECK(trs_manifest_object_at(m, 5)->size == 3 && trs_manifest_object_at(m, 5)->has_size);
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "objects[0].size must be a non-negative whole number; this object fails");
	CHECK_CONTAINS(trs_manifest_warning_at(m, 4), "objects[4].size");
	trs_manifest_free(m);
}

TEST(manifest_wrong_types_name_the_field)
{
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse_err("{\"targets\":{\"region\":\"x\"}}", &err) == TRS_EMANIFEST);
	CHECK_CONTAINS(err.message, "targets");
	CHECK(parse_err("{\"targets\":[{\"bucket\":7}]}", &err) == TRS_EMANIFEST);
	CHECK_CONTAINS(err.message, "targets[0].bucket must be a string");
	CHECK(parse_err("{\"targets\":[{\"bucket\":\"b\",\"backup\":\"yes\"}]}", &err) == TRS_EMANIFEST);
	CHECK_CONTAINS(err.message, "targets[0].backup");
	CHECK(parse_err("{\"objects\":[{\"object_name\":[\"a\"]}]}", &err) == TRS_EMANIFEST);
	CHECK_CONTAINS(err.message, "objects[0].object_name");
	CHECK(parse_err("{\"objects\":[7]}", &err) == TRS_EMANIFEST);
	CHECK_CONTAINS(err.message, "objects[0] must be an object");
}

TEST(manifest_unusable_tags_fail_only_their_entry)
{
	trs_manifest *m = parse_ok("{\"objects\":[{\"object_name\":\"a\",\"tags\":\"x=y\"},{\"object_name\":\"b\",\"tags\":[\"x\"]},"
				   "{\"object_name\":\"c\",\"tags\":[{\"k\":null}]},{\"object_name\":\"d\",\"tags\":[{\"k\":[1]}]},"
				   "{\"object_name\":\"ok\",\"tags\":[{\"k\":\"v\"}]}]}");
	CHECK(m);
	CHECK(trs_manifest_object_count(m) == 5);
	for (size_t i = 0; i < 4; i++)
		CHECK(trs_manifest_object_at(m, i)->flags & TRS_MANIFEST_OBJECT_BAD_TAGS);
	CHECK(trs_manifest_object_at(m, 4)->flags == 0 && trs_manifest_object_at(m, 4)->ntags == 1);
	CHECK_CONTAINS(trs_manifest_warning_at(m, 1), "objects[1].tags");
	trs_manifest_free(m);
}

/* Some writers give the tags as one object of pairs: the same tags, in order. */
TEST(manifest_accepts_tags_as_one_object)
{
	trs_manifest *m = parse_ok("{\"objects\":[{\"object_name\":\"a\",\"tags\":{\"team\":\"fin\",\"pii\":\"no\",\"team\":\"risk\"},"
				   "\"size\":1},{\"object_name\":\"b\"}]}");
	CHECK(m);
	const trs_manifest_object *o = trs_manifest_object_at(m, 0);
	CHECK(o->flags == 0 && o->ntags == 2 && o->has_size && o->size == 1);
	CHECK_STR(o->tags[0].key, "team");
	CHECK_STR(o->tags[0].value, "risk");
	CHECK_STR(o->tags[1].key, "pii");
	CHECK_STR(trs_manifest_object_at(m, 1)->object_name, "b");
	CHECK(trs_manifest_object_at(m, 1)->ntags == 0);
	trs_manifest_free(m);
}

TEST(manifest_merges_tags_later_duplicate_wins)
{
	trs_manifest *m = parse_ok("{\"objects\":[{\"object_name\":\"a\",\"tags\":[{\"a\":\"1\"},{\"b\":\"2\"},{\"a\":\"3\"},{\"n\":5}]}]}");
	CHECK(m);
	const trs_manifest_object *o = trs_manifest_object_at(m, 0);
	CHECK(o->ntags == 3);
	CHECK_STR(o->tags[0].key, "a");
	CHECK_STR(o->tags[0].value, "3");
	CHECK_STR(o->tags[1].key, "b");
	CHECK_STR(o->tags[2].value, "5");
	trs_manifest_free(m);
}

TEST(manifest_ignores_unknown_fields_and_nulls)
{
	trs_manifest *m = parse_ok("{\"version\":2,\"extra\":{\"deep\":[1,[2,{\"objects\":[]}]]},"
				   "\"targets\":[{\"region\":\"r\",\"bucket\":\"b\",\"future\":{\"x\":[1]},\"storage_class\":null}],"
				   "\"objects\":[{\"object_name\":\"a\",\"etag\":null,\"meta\":{\"tags\":7},\"size\":null}]}");
	CHECK(m);
	CHECK(trs_manifest_object_count(m) == 1);
	CHECK_STR(trs_manifest_object_at(m, 0)->etag, "");
	CHECK(!trs_manifest_object_at(m, 0)->has_size);
	CHECK_STR(trs_manifest_target_at(m, 0)->storage_class, "");
	trs_manifest_free(m);
}

TEST(manifest_skips_entry_without_object_name)
{
	trs_manifest *m = parse_ok("{\"targets\":[{\"region\":\"r\",\"bucket\":\"b\"}],"
				   "\"objects\":[{\"relative_key\":\"x\"},{\"object_name\":\"\"},{\"object_name\":\"ok\"}]}");
	CHECK(m);
	CHECK(trs_manifest_object_count(m) == 1);
	CHECK_STR(trs_manifest_object_at(m, 0)->object_name, "ok");
	CHECK(trs_manifest_warning_count(m) == 2);
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "objects[0]");
	CHECK_CONTAINS(trs_manifest_warning_at(m, 1), "objects[1]");
	trs_manifest_free(m);
}

TEST(manifest_marks_an_entry_repeating_a_relative_key)
{
	trs_manifest *m = parse_ok("{\"targets\":[{\"region\":\"r\",\"bucket\":\"b\"}],"
				   "\"objects\":[{\"object_name\":\"a\",\"size\":1},"
				   "{\"object_name\":\"c\",\"relative_key\":\"a\",\"size\":2}]}");
	CHECK(m);
	CHECK(trs_manifest_object_count(m) == 2);
	CHECK(trs_manifest_find(m, "a", 1) == trs_manifest_object_at(m, 0));
	CHECK(!(trs_manifest_object_at(m, 0)->flags & TRS_MANIFEST_OBJECT_REPEATS_KEY));
	CHECK(trs_manifest_object_at(m, 1)->flags & TRS_MANIFEST_OBJECT_REPEATS_KEY);
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "objects[1] repeats relative_key 'a' of objects[0]");
	trs_manifest_free(m);
}

TEST(manifest_later_entry_wins_a_destination_key)
{
	trs_manifest *m = parse_ok("{\"targets\":[],\"objects\":["
				   "{\"object_name\":\"k\",\"source_prefix\":\"p\",\"relative_key\":\"x\"},"
				   "{\"object_name\":\"other\"},"
				   "{\"object_name\":\"p/k\",\"relative_key\":\"y\"}]}");
	CHECK(m);
	CHECK(trs_manifest_object_count(m) == 3);
	CHECK(trs_manifest_object_at(m, 0)->flags & TRS_MANIFEST_OBJECT_SUPERSEDED);
	CHECK(!(trs_manifest_object_at(m, 1)->flags & TRS_MANIFEST_OBJECT_SUPERSEDED));
	CHECK(!(trs_manifest_object_at(m, 2)->flags & TRS_MANIFEST_OBJECT_SUPERSEDED));
	int found = 0;
	for (size_t i = 0; i < trs_manifest_warning_count(m); i++)
		found |= strstr(trs_manifest_warning_at(m, i), "objects[0] and objects[2] both write key 'p/k'; the later "
								 "entry, objects[2], wins") != NULL;
	CHECK(found);
	trs_manifest_free(m);
}

TEST(manifest_identical_entries_the_last_is_restored)
{
	trs_manifest *m = parse_ok("{\"targets\":[],\"objects\":[{\"object_name\":\"a\",\"size\":1},"
				   "{\"object_name\":\"a\",\"size\":2}]}");
	CHECK(m);
	CHECK(trs_manifest_object_count(m) == 2);
	/* the first is superseded, so the member serves the second, which is not a repeat */
	CHECK(trs_manifest_find(m, "a", 1)->size == 2);
	CHECK(trs_manifest_object_at(m, 0)->flags == TRS_MANIFEST_OBJECT_SUPERSEDED);
	CHECK(trs_manifest_object_at(m, 1)->flags == 0);
	trs_manifest_free(m);
}

TEST(manifest_repeated_top_level_key_keeps_the_last)
{
	trs_manifest *m = parse_ok("{\"targets\":[{\"region\":\"r\",\"bucket\":\"first\"}],"
				   "\"objects\":[{\"object_name\":\"a\"},{\"object_name\":\"b\"}],"
				   "\"targets\":[{\"region\":\"r\",\"bucket\":\"second\"}],"
				   "\"objects\":[{\"object_name\":\"c\"}]}");
	CHECK(m);
	CHECK(trs_manifest_target_count(m) == 1);
	CHECK_STR(trs_manifest_target_at(m, 0)->bucket, "second");
	CHECK(trs_manifest_object_count(m) == 1);
	CHECK_STR(trs_manifest_object_at(m, 0)->object_name, "c");
	CHECK(trs_manifest_find(m, "a", 1) == NULL);
	CHECK(trs_manifest_warning_count(m) == 2);
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "targets appears twice");
	CHECK_CONTAINS(trs_manifest_warning_at(m, 1), "objects appears twice");
	trs_manifest_free(m);
}

TEST(manifest_repeated_field_keeps_the_last)
{
	trs_manifest *m = parse_ok("{\"targets\":[{\"region\":\"r\",\"bucket\":\"x\",\"bucket\":\"y\"}],"
				   "\"objects\":[{\"object_name\":\"a\",\"size\":1,\"size\":null,"
				   "\"tags\":[{\"t\":\"1\"},{\"u\":\"2\"}],\"tags\":[{\"v\":\"3\"}],"
				   "\"etag\":\"e1\",\"etag\":\"e2\"}]}");
	CHECK(m);
	CHECK_STR(trs_manifest_target_at(m, 0)->bucket, "y");
	const trs_manifest_object *o = trs_manifest_object_at(m, 0);
	CHECK(o && !o->has_size);
	CHECK(o->ntags == 1);
	CHECK_STR(o->tags[0].key, "v");
	CHECK_STR(o->etag, "e2");
	CHECK(trs_manifest_warning_count(m) == 4);
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "targets[0].bucket appears twice");
	CHECK_CONTAINS(trs_manifest_warning_at(m, 1), "objects[0].size appears twice");
	trs_manifest_free(m);
}

TEST(manifest_refuses_deep_nesting_without_crashing)
{
	size_t depth = 200000;
	char *json = malloc(depth * 2 + 1);
	for (size_t i = 0; i < depth; i++) {
		json[i] = '[';
		json[depth + i] = ']';
	}
	json[2 * depth] = '\0';
	trs_error err = TRS_ERROR_INIT;
	int rc = parse_err(json, &err);
	/* nested inside an unknown field too */
	char *inner = malloc(depth + 64);
	strcpy(inner, "{\"x\":");
	memset(inner + 5, '[', depth);
	inner[5 + depth] = '\0';
	trs_error err2 = TRS_ERROR_INIT;
	int rc2 = parse_err(inner, &err2);
	free(json);
	free(inner);
	CHECK(rc == TRS_EMANIFEST); /* top level must be an object: refused at once */
	CHECK(rc2 == TRS_ELIMIT);
	CHECK_CONTAINS(err2.message, "deeper");
}

TEST(manifest_rejects_not_json_and_empty)
{
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse_err("{\"targets\": [", &err) == TRS_EMANIFEST);
	CHECK(parse_err("", &err) == TRS_EMANIFEST);
	CHECK(parse_err("hello", &err) == TRS_EMANIFEST);
	CHECK_CONTAINS(err.message, "not valid JSON");
	CHECK(strchr(err.message, '\n') == NULL);
	CHECK(parse_err("{\"a\":1} {\"b\":2}", &err) == TRS_EMANIFEST);
	CHECK(parse_err("{\"objects\":[{\"object_name\":\"\xff\xfe\"}]}", &err) == TRS_EMANIFEST);
}

TEST(manifest_streaming_in_single_bytes_equals_whole)
{
	const char *json = "{\"targets\":[{\"region\":\"r\",\"bucket\":\"b\"}],\"objects\":[{\"object_name\":\"n\",\"source_prefix\":\"p\","
			   "\"size\":12345678901234,\"tags\":[{\"k\":\"v\"}]},{\"object_name\":\"\\u00fc\\u00f1\"}]}";
	trs_manifest_parser *p;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_manifest_parser_new(&p, NULL, &err) == 0);
	for (size_t i = 0; json[i]; i++)
		CHECK(trs_manifest_parser_feed(p, json + i, 1, &err) == 0);
	trs_manifest *m;
	CHECK(trs_manifest_parser_finish(p, &m, &err) == 0);
	trs_manifest_parser_free(p);
	CHECK(trs_manifest_object_count(m) == 2);
	CHECK(trs_manifest_object_at(m, 0)->size == 12345678901234ull);
	CHECK_STR(trs_manifest_object_at(m, 1)->object_name, "\xc3\xbc\xc3\xb1");
	trs_manifest_free(m);
}

TEST(manifest_enforces_size_and_count_limits)
{
	trs_manifest_limits lim = {64, 0, 0};
	trs_manifest_parser *p;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_manifest_parser_new(&p, &lim, &err) == 0);
	const char *json = "{\"objects\":[{\"object_name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]}";
	int rc = trs_manifest_parser_feed(p, json, strlen(json), &err);
	trs_manifest_parser_free(p);
	CHECK(rc == TRS_ELIMIT);
	trs_manifest_limits lim2 = {0, 2, 0};
	CHECK(trs_manifest_parser_new(&p, &lim2, &err) == 0);
	const char *three = "{\"objects\":[{\"object_name\":\"a\"},{\"object_name\":\"b\"},{\"object_name\":\"c\"}]}";
	trs_manifest *m = NULL;
	rc = trs_manifest_parser_feed(p, three, strlen(three), &err);
	if (rc == 0) /* small feeds may be held back until the end */
		rc = trs_manifest_parser_finish(p, &m, &err);
	trs_manifest_parser_free(p);
	CHECK(rc == TRS_ELIMIT && !m);
	CHECK_CONTAINS(err.message, "more than 2 objects");
}

/* Parse a manifest with one string of `len` bytes (an unknown field), fed in 64 KiB chunks as trs_process does;
 * returns the CPU seconds it took (the wall clock of a loaded machine says nothing about the parser). */
static double parse_long_string(size_t len, uint64_t max_bytes, int *rc)
{
	size_t total = len + 64;
	char *json = malloc(total);
	size_t n = (size_t)snprintf(json, total, "{\"targets\":[],\"note\":\"");
	memset(json + n, 'x', len);
	n += len;
	n += (size_t)snprintf(json + n, total - n, "\",\"objects\":[]}");
	trs_manifest_limits lim = {max_bytes, 0, 0};
	trs_manifest_parser *p;
	trs_manifest *m = NULL;
	trs_error err = TRS_ERROR_INIT;
	double t0 = harness_thread_cpu_seconds();
	*rc = trs_manifest_parser_new(&p, &lim, &err);
	for (size_t off = 0; *rc == 0 && off < n; off += 65536)
		*rc = trs_manifest_parser_feed(p, json + off, n - off < 65536 ? n - off : 65536, &err);
	if (*rc == 0)
		*rc = trs_manifest_parser_finish(p, &m, &err);
	double took = harness_thread_cpu_seconds() - t0;
	trs_manifest_parser_free(p);
	trs_manifest_free(m);
	free(json);
	return took;
}

/* One 64 MiB string took ten seconds (quadratic in its length); now it is linear. */
TEST(manifest_parses_a_long_string_in_linear_time)
{
	int rc16, rc64;
	double t16 = parse_long_string(16u << 20, 0, &rc16);
	double t64 = parse_long_string(64u << 20, 0, &rc64);
	printf("  16 MiB: %.3f s, 64 MiB: %.3f s of CPU\n", t16, t64);
	CHECK(rc16 == 0 && rc64 == 0);
	/* Four times the bytes: quadratic would be 16 times the time. */
	CHECK(t64 < 8 * t16 + 0.5);
	CHECK(t64 < 10.0 * HARNESS_SLOWDOWN);
}

/* A value longer than a quarter of the limit is refused as soon as it is, not parsed. */
TEST(manifest_refuses_a_value_over_a_quarter_of_the_limit)
{
	int rc;
	double t = parse_long_string(40u << 20, 64u << 20, &rc);
	CHECK(rc == TRS_ELIMIT);
	CHECK(t < 10.0 * HARNESS_SLOWDOWN);
}

/* yajl makes a lone surrogate '?': "a\ud800" and "a\udc00" would be one key. Such a key is flagged. */
TEST(manifest_flags_lone_surrogates_in_keys)
{
	const char *json = "{\"objects\":[{\"object_name\":\"a\\ud800\"},{\"object_name\":\"a\\udc00\",\"relative_key\":\"r\"},"
			   "{\"object_name\":\"ok\\ud83d\\ude00\"},{\"object_name\":\"b\",\"tags\":[{\"k\":\"\\ud800\"}]},"
			   "{\"object_name\":\"c\",\"source_prefix\":\"p\\ud800\\ud800\\udc00\"},{\"object_name\":\"\\\\ud800\"}]}";
	/* fed one byte at a time too: the scan keeps its state across feeds */
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		trs_manifest_parser *p;
		trs_manifest *m = NULL;
		trs_error err = TRS_ERROR_INIT;
		CHECK(trs_manifest_parser_new(&p, NULL, &err) == 0);
		size_t len = strlen(json), step = bytewise ? 1 : len;
		int rc = 0;
		for (size_t off = 0; rc == 0 && off < len; off += step)
			rc = trs_manifest_parser_feed(p, json + off, step, &err);
		if (rc == 0)
			rc = trs_manifest_parser_finish(p, &m, &err);
		trs_manifest_parser_free(p);
		CHECK(rc == 0 && m);
		unsigned int want[] = {1, 1, 0, 0, 1, 0};
		int ok = 1;
		for (size_t i = 0; i < 6; i++)
			ok &= !!(trs_manifest_object_at(m, i)->flags & TRS_MANIFEST_OBJECT_KEY_HAS_SURROGATE) == (int)want[i];
		CHECK_STR(trs_manifest_object_at(m, 5)->object_name, "\\ud800");
		trs_manifest_free(m);
		CHECK(ok);
	}
}

TEST(manifest_flags_nul_in_keys)
{
	trs_manifest *m = parse_ok("{\"objects\":[{\"object_name\":\"a\\u0000b\"},{\"object_name\":\"c\",\"etag\":\"x\\u0000\"}]}");
	CHECK(m);
	CHECK(trs_manifest_object_at(m, 0)->flags & TRS_MANIFEST_OBJECT_KEY_HAS_NUL);
	CHECK(!(trs_manifest_object_at(m, 1)->flags & TRS_MANIFEST_OBJECT_KEY_HAS_NUL));
	trs_manifest_free(m);
}

TEST(manifest_many_objects_index)
{
	trs__buf b = TRS_BUF_INIT;
	trs__buf_puts(&b, "{\"objects\":[", NULL);
	for (int i = 0; i < 20000; i++)
		trs__buf_printf(&b, NULL, "%s{\"object_name\":\"dir/obj-%d.bin\",\"size\":%d}", i ? "," : "", i, i);
	trs__buf_puts(&b, "]}", NULL);
	trs_manifest *m = parse_ok(b.data);
	trs__buf_free(&b);
	CHECK(m);
	CHECK(trs_manifest_object_count(m) == 20000);
	const trs_manifest_object *o = trs_manifest_find(m, "dir/obj-12345.bin", 17);
	CHECK(o && o->size == 12345);
	trs_manifest_free(m);
}

/* `n` tiny entries: more memory parsed than bytes of JSON. */
static void tiny_entries(trs__buf *b, int n)
{
	b->len = 0;
	trs__buf_puts(b, "{\"targets\":[{\"region\":\"r\",\"bucket\":\"b\"}],\"objects\":[", NULL);
	for (int i = 0; i < n; i++)
		trs__buf_printf(b, NULL, "%s{\"object_name\":\"%d\"}", i ? "," : "", i);
	trs__buf_puts(b, "]}", NULL);
}

static int parse_limited(const trs__buf *b, uint64_t max_bytes, trs_manifest **m, trs_error *err)
{
	trs_manifest_limits lim = {max_bytes, 0, 0};
	trs_manifest_parser *p;
	*m = NULL;
	int rc = trs_manifest_parser_new(&p, &lim, err);
	for (size_t off = 0; rc == 0 && off < b->len; off += 4096)
		rc = trs_manifest_parser_feed(p, b->data + off, b->len - off < 4096 ? b->len - off : 4096, err);
	if (rc == 0)
		rc = trs_manifest_parser_finish(p, m, err);
	trs_manifest_parser_free(p);
	return rc;
}

TEST(manifest_memory_grows_with_entries)
{
	trs__buf b = TRS_BUF_INIT;
	trs_error err = TRS_ERROR_INIT;
	trs_manifest *small, *big;
	tiny_entries(&b, 10);
	CHECK(parse_limited(&b, 0, &small, &err) == 0);
	CHECK(trs_manifest_json_bytes(small) == b.len);
	tiny_entries(&b, 20000);
	CHECK(parse_limited(&b, 0, &big, &err) == 0);
	CHECK(trs_manifest_json_bytes(big) == b.len);
	size_t ms = trs_manifest_memory(small), mb = trs_manifest_memory(big);
	printf("  10 entries: %zu bytes, 20000 entries: %zu bytes\n", ms, mb);
	CHECK(ms >= sizeof(trs_manifest_object) * 10);
	/* at least the entries themselves and one index slot each */
	CHECK(mb >= ms + 19990 * (sizeof(trs_manifest_object) + sizeof(uint32_t)));
	CHECK(trs_manifest_memory(NULL) == 0);
	trs_manifest_free(small);
	trs_manifest_free(big);
	trs__buf_free(&b);
}

/* The limit bounds the parsed form too: exactly its memory is accepted, one byte less refused. */
TEST(manifest_refuses_one_whose_memory_passes_the_limit)
{
	trs__buf b = TRS_BUF_INIT;
	trs_error err = TRS_ERROR_INIT;
	trs_manifest *m;
	tiny_entries(&b, 5000);
	CHECK(parse_limited(&b, 0, &m, &err) == 0);
	size_t need = trs_manifest_memory(m);
	trs_manifest_free(m);
	CHECK(need > b.len); /* the JSON alone fits under the limits below */
	CHECK(parse_limited(&b, need, &m, &err) == 0);
	CHECK(m && trs_manifest_memory(m) == need);
	trs_manifest_free(m);
	CHECK(parse_limited(&b, need - 1, &m, &err) == TRS_ELIMIT);
	CHECK(!m);
	CHECK_CONTAINS(err.message, "bytes of memory once parsed");
	CHECK_CONTAINS(err.message, "--max-manifest");
	/* well under: refused while the entries come in, not after */
	err = (trs_error)TRS_ERROR_INIT;
	CHECK(parse_limited(&b, need / 2, &m, &err) == TRS_ELIMIT);
	CHECK(!m);
	CHECK_CONTAINS(err.message, "entries so far");
	CHECK(!strstr(err.message, "(5000 entries"));
	trs__buf_free(&b);
}

/* n targets: distinct buckets "b-<i>" (repeating each `repeat` times, one after the other) in region r. */
static char *targets_json(size_t n, size_t repeat)
{
	size_t size = 64 + n * repeat * 48;
	char *json = malloc(size);
	size_t len = (size_t)snprintf(json, size, "{\"targets\":[");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < repeat; k++)
			len += (size_t)snprintf(json + len, size - len, "%s{\"region\":\"r\",\"bucket\":\"b-%zu\"}",
						i || k ? "," : "", i);
	snprintf(json + len, size - len, "],\"objects\":[{\"object_name\":\"a\"}]}");
	return json;
}

/* The same region, bucket and role twice writes the same keys twice: one target, the last one's settings. */
TEST(manifest_folds_repeated_targets_into_one_with_one_warning)
{
	/* Repeats folded, the error names a target by its place in the list. */
	trs_error err = TRS_ERROR_INIT;
	CHECK(parse_err("{\"targets\":[{\"region\":\"r\",\"bucket\":\"a\"},{\"region\":\"r\",\"bucket\":\"a\"},"
			"{\"region\":\"r\",\"bucket\":3}]}", &err) == TRS_EMANIFEST);
	CHECK_CONTAINS(err.message, "targets[2].bucket must be a string");
	trs_manifest *m = parse_ok("{\"targets\":[{\"region\":\"r\",\"bucket\":\"a\"},{\"region\":\"r\",\"bucket\":\"b\"},"
		     "{\"region\":\"r\",\"bucket\":\"a\",\"storage_class\":\"GLACIER_IR\"},"
		     "{\"region\":\"s\",\"bucket\":\"a\"},{\"region\":\"r\",\"bucket\":\"a\",\"backup\":true},"
		     "{\"region\":\"r\",\"bucket\":\"a\",\"kms_key_arn\":\"alias/k\",\"storage_class\":\"GLACIER_IR\"},"
		     "{\"region\":\"r\",\"bucket\":\"b\"}],"
		     "\"objects\":[{\"object_name\":\"x\"}]}");
	CHECK(m);
	CHECK(trs_manifest_target_count(m) == 4);
	const trs_manifest_target *a = trs_manifest_target_at(m, 0);
	CHECK_STR(a->bucket, "a");
	CHECK_STR(a->storage_class, "GLACIER_IR"); /* the last repeat's settings: its write would stand */
	CHECK_STR(a->kms_key_arn, "alias/k");
	CHECK_STR(trs_manifest_target_at(m, 1)->bucket, "b");
	CHECK_STR(trs_manifest_target_at(m, 2)->region, "s"); /* another region: another target */
	CHECK(trs_manifest_target_at(m, 3)->backup);        /* a backup of the bucket: another target */
	CHECK(trs_manifest_warning_count(m) == 1);
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "targets[2] repeats targets[0] (region 'r', bucket 'a')");
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "3 repeats");
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "the last one is used");
	trs_manifest_free(m);

	/* 65,536 copies of one target: one target, one warning. */
	char *json = targets_json(1, 65536);
	m = parse_ok(json);
	free(json);
	CHECK(m);
	CHECK(trs_manifest_target_count(m) == 1);
	CHECK(trs_manifest_warning_count(m) == 1);
	CHECK_CONTAINS(trs_manifest_warning_at(m, 0), "targets[1] repeats targets[0] (region 'r', bucket 'b-0'); "
						       "65535 repeats");
	trs_manifest_free(m);
}

/* TRS_MANIFEST_MAX_TARGETS distinct targets pass, however often repeated; one more is refused, by name. */
TEST(manifest_refuses_more_targets_than_the_named_limit)
{
	char *json = targets_json(TRS_MANIFEST_MAX_TARGETS, 3);
	trs_manifest *m = parse_ok(json);
	free(json);
	CHECK(m);
	CHECK(trs_manifest_target_count(m) == TRS_MANIFEST_MAX_TARGETS);
	CHECK_STR(trs_manifest_target_at(m, TRS_MANIFEST_MAX_TARGETS - 1)->bucket, "b-999");
	trs_manifest_free(m);
	size_t counts[] = {TRS_MANIFEST_MAX_TARGETS + 1, 65537};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(counts); i++) {
		trs_error err = TRS_ERROR_INIT;
		json = targets_json(counts[i], 1);
		int rc = parse_err(json, &err);
		free(json);
		CHECK(rc == TRS_ELIMIT);
		CHECK_CONTAINS(err.message, "more than 1000 targets (TRS_MANIFEST_MAX_TARGETS");
	}
}

int main(void)
{
	RUN(manifest_reads_every_field);
	RUN(manifest_defaults_relative_key_and_prefix);
	RUN(manifest_sizes_are_exact_beyond_2_53);
	RUN(manifest_unusable_size_fails_only_its_entry);
	RUN(manifest_wrong_types_name_the_field);
	RUN(manifest_unusable_tags_fail_only_their_entry);
	RUN(manifest_accepts_tags_as_one_object);
	RUN(manifest_merges_tags_later_duplicate_wins);
	RUN(manifest_ignores_unknown_fields_and_nulls);
	RUN(manifest_skips_entry_without_object_name);
	RUN(manifest_marks_an_entry_repeating_a_relative_key);
	RUN(manifest_later_entry_wins_a_destination_key);
	RUN(manifest_identical_entries_the_last_is_restored);
	RUN(manifest_repeated_top_level_key_keeps_the_last);
	RUN(manifest_repeated_field_keeps_the_last);
	RUN(manifest_folds_repeated_targets_into_one_with_one_warning);
	RUN(manifest_refuses_more_targets_than_the_named_limit);
	RUN(manifest_refuses_deep_nesting_without_crashing);
	RUN(manifest_rejects_not_json_and_empty);
	RUN(manifest_streaming_in_single_bytes_equals_whole);
	RUN(manifest_enforces_size_and_count_limits);
	RUN(manifest_parses_a_long_string_in_linear_time);
	RUN(manifest_refuses_a_value_over_a_quarter_of_the_limit);
	RUN(manifest_flags_nul_in_keys);
	RUN(manifest_flags_lone_surrogates_in_keys);
	RUN(manifest_many_objects_index);
	RUN(manifest_memory_grows_with_entries);
	RUN(manifest_refuses_one_whose_memory_passes_the_limit);
	return harness_done();
}
