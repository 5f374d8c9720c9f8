/* SPDX-License-Identifier: Apache-2.0 */
/* Backup targets: backup and catalog keys, catalog rows, the backup plan. */
#include "harness.h"
#include "core/backup.h"

#include <stdio.h>
#include <stdlib.h>

#define MS 1737627300123LL /* 2025-01-23 10:15:00.123 UTC */

static trs_manifest *parse(const char *json)
{
	trs_manifest *m = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_manifest_parse(json, strlen(json), &m, &err) < 0)
		printf("  manifest: %s\n", err.message);
	return m;
}

static const char MANIFEST[] =
	"{\"targets\":[{\"region\":\"eu-west-1\",\"bucket\":\"dest\"},"
	"{\"region\":\"eu-west-1\",\"bucket\":\"bk\",\"backup\":true},"
	"{\"region\":\"eu-west-1\",\"bucket\":\"bk\",\"backup\":true},"
	"{\"region\":\"us-east-1\",\"bucket\":\"far\",\"backup\":true}],"
	"\"objects\":[{\"source_bucket\":\"src\",\"source_prefix\":\"logs/2025\",\"object_name\":\"a \\\"q\\\".txt\","
	"\"relative_key\":\"x/a.txt\",\"creation_time\":\"2024-12-31 23:59:59\",\"size\":12345678901234},"
	"{\"source_bucket\":\"src\",\"source_prefix\":\"logs/2025\",\"object_name\":\"b\",\"creation_time\":\"soon\"}]}";

TEST(backup_targets_are_this_regions_distinct_backup_buckets)
{
	trs_manifest *m = parse(MANIFEST);
	CHECK(m);
	const trs_manifest_target *t[4];
	size_t n = trs__backup_targets(m, "eu-west-1", t, 4);
	size_t counted = trs__backup_targets(m, "eu-west-1", NULL, 0);
	int ok = n == 1 && counted == 1 && !strcmp(t[0]->bucket, "bk");
	ok &= trs__backup_targets(m, "us-east-1", t, 4) == 1 && trs__backup_targets(m, "ap-south-1", t, 4) == 0;
	trs_manifest_free(m);
	CHECK(ok);
}

TEST(backup_and_catalog_keys_follow_the_format)
{
	trs_manifest *m = parse(MANIFEST);
	CHECK(m);
	trs__buf key = TRS_BUF_INIT, ckey = TRS_BUF_INIT;
	int rc = trs__backup_key(m, MS, &key, NULL);
	rc |= trs__catalog_key(m, key.data, MS, &ckey, NULL);
	char k[256], c[256];
	snprintf(k, sizeof(k), "%s", rc == 0 ? key.data : "");
	snprintf(c, sizeof(c), "%s", rc == 0 ? ckey.data : "");
	trs__buf_free(&key);
	trs__buf_free(&ckey);
	trs_manifest_free(m);
	CHECK(rc == 0);
	CHECK_STR(k, "logs/2025/backup_1737627300123.tar.zst");
	CHECK_STR(c, "src/logs/2025/year=2025/month=01/day=23/backup_1737627300123.tar.zst.jsonl");
}

TEST(backup_key_without_prefix_has_no_leading_slash)
{
	trs_manifest *m = parse("{\"targets\":[],\"objects\":[{\"source_bucket\":\"src\",\"object_name\":\"n\"}]}");
	CHECK(m);
	trs__buf key = TRS_BUF_INIT, ckey = TRS_BUF_INIT;
	int rc = trs__backup_key(m, MS, &key, NULL);
	rc |= trs__catalog_key(m, key.data, MS, &ckey, NULL);
	char k[256], c[256];
	snprintf(k, sizeof(k), "%s", rc == 0 ? key.data : "");
	snprintf(c, sizeof(c), "%s", rc == 0 ? ckey.data : "");
	trs__buf_free(&key);
	trs__buf_free(&ckey);
	trs_manifest_free(m);
	CHECK_STR(k, "backup_1737627300123.tar.zst");
	CHECK_STR(c, "src/year=2025/month=01/day=23/backup_1737627300123.tar.zst.jsonl");
}

TEST(catalog_row_has_every_field_escaped_and_exact)
{
	trs_manifest *m = parse(MANIFEST);
	CHECK(m);
	const char *buckets[] = {"bk", "bk2"};
	trs__buf row = TRS_BUF_INIT;
	int rc = trs__catalog_row(&row, trs_manifest_object_at(m, 0), "logs/2025/backup_1.tar.zst", MS, buckets, 2, NULL);
	rc |= trs__catalog_row(&row, trs_manifest_object_at(m, 1), "logs/2025/backup_1.tar.zst", MS, buckets, 1, NULL);
	rc |= trs__buf_put(&row, "", 1, NULL);
	char *text = rc == 0 ? strdup(row.data) : NULL;
	trs__buf_free(&row);
	trs_manifest_free(m);
	CHECK(text);
	int ok = !strcmp(text,
			 "{\"backup_file\":\"logs/2025/backup_1.tar.zst\",\"backup_timestamp\":1737627300,"
			 "\"backup_date\":\"2025-01-23\",\"source_bucket\":\"src\",\"source_prefix\":\"logs/2025\","
			 "\"object_name\":\"a \\\"q\\\".txt\",\"object_path\":\"logs/2025/a \\\"q\\\".txt\","
			 "\"object_size\":12345678901234,\"creation_time\":\"2024-12-31 23:59:59\","
			 "\"creation_date\":\"2024-12-31\",\"target_buckets\":[\"bk\",\"bk2\"]}\n"
			 "{\"backup_file\":\"logs/2025/backup_1.tar.zst\",\"backup_timestamp\":1737627300,"
			 "\"backup_date\":\"2025-01-23\",\"source_bucket\":\"src\",\"source_prefix\":\"logs/2025\","
			 "\"object_name\":\"b\",\"object_path\":\"logs/2025/b\",\"object_size\":null,"
			 "\"creation_time\":\"soon\",\"creation_date\":null,\"target_buckets\":[\"bk\"]}\n");
	if (!ok)
		printf("  got: %s\n", text);
	free(text);
	CHECK(ok);
}

TEST(backup_plan_without_catalog_bucket_is_einval)
{
	trs_manifest *m = parse(MANIFEST);
	CHECK(m);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	co.region = "eu-west-1";
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &co, &err) == 0);
	trs_report rep;
	memset(&rep, 0, sizeof(rep));
	rep.archive = "a.tar.zst";
	trs_process_options o = TRS_PROCESS_OPTIONS_INIT;
	int rc1 = trs__backup_plan(ctx, m, &o, MS, &rep, &err);
	int names_it = strstr(err.message, "CATALOG_BUCKET") != NULL;
	o.catalog_bucket = "cat";
	int rc2 = trs__backup_plan(ctx, m, &o, MS, &rep, &err);
	int ok = rep.nbackups == 1 && !strcmp(rep.backups[0].key, "logs/2025/backup_1737627300123.tar.zst") &&
		 !strcmp(rep.catalog_bucket, "cat");
	for (size_t i = 0; i < rep.nbackups; i++) {
		free(rep.backups[i].bucket);
		free(rep.backups[i].key);
	}
	free(rep.backups);
	free(rep.catalog_bucket);
	free(rep.catalog_key);
	trs_ctx_free(ctx);
	trs_manifest_free(m);
	CHECK(rc1 == TRS_EINVAL && names_it);
	CHECK(rc2 == 0 && ok);
}

int main(void)
{
	RUN(backup_targets_are_this_regions_distinct_backup_buckets);
	RUN(backup_and_catalog_keys_follow_the_format);
	RUN(backup_key_without_prefix_has_no_leading_slash);
	RUN(catalog_row_has_every_field_escaped_and_exact);
	RUN(backup_plan_without_catalog_bucket_is_einval);
	return harness_done();
}
