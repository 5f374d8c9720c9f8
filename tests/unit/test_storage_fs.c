/* SPDX-License-Identifier: Apache-2.0 */
/* The fs backend: layout, metadata, refusals, and never writing outside DIR. */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static char root[256];

static trs_storage *fresh(void)
{
	return tu_fs_fresh(root, sizeof(root), "trs-fs-test");
}

static void cleanup(trs_storage *s)
{
	tu_fs_cleanup(s, root);
}

static int put(trs_storage *s, const char *bucket, const char *key, const char *data, trs_error *err)
{
	trs_put_request r = TRS_PUT_REQUEST_INIT;
	trs_kv tags[] = {{"team", "fin"}, {"OriginalETag", "abc"}};
	trs_kv meta[] = {{"original-creation-time", "2025-01-01 00:00:00"}};
	r.bucket = bucket;
	r.key = key;
	r.storage_class = "GLACIER_IR";
	r.kms_key_id = "arn:aws:kms:eu-west-1:1:key/x";
	r.tags = tags;
	r.ntags = 2;
	r.metadata = meta;
	r.nmetadata = 1;
	trs_memory_body mb;
	return trs_upload(s, &r, trs_memory_body_init(&mb, data, strlen(data)), err);
}

static int exists(const char *rel)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	struct stat st;
	return lstat(path, &st) == 0;
}

static int sink(void *ud, const void *data, size_t len, trs_error *err)
{
	(void)err;
	strncat(ud, data, len);
	return 0;
}

TEST(fs_put_get_head_roundtrip)
{
	trs_storage *s = fresh();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	CHECK(put(s, "bkt", "a b/ü+%.txt", "hello world", &err) == 0);
	CHECK(exists("bkt/a b/ü+%.txt"));
	char path[600], meta[1024];
	snprintf(path, sizeof(path), "%s/bkt/a b/ü+%%.txt", root);
	ssize_t mlen = getxattr(path, "user.trs.meta", meta, sizeof(meta) - 1);
	CHECK(mlen > 0 || exists(".trs-meta/bkt/a b/ü+%.txt")); /* xattr, or a sidecar where there are none */
	if (mlen > 0) {
		meta[mlen] = '\0';
		CHECK_CONTAINS(meta, "\"storage_class\":\"GLACIER_IR\"");
	}
	char got[64] = "";
	CHECK(trs_storage_get(s, "bkt", "a b/ü+%.txt", 6, UINT64_MAX, sink, got, &err) == 0);
	CHECK_STR(got, "world");
	trs_object_info info;
	CHECK(trs_storage_head(s, "bkt", "a b/ü+%.txt", &info, &err) == 0);
	CHECK(info.size == 11);
	CHECK_STR(info.storage_class, "GLACIER_IR");
	CHECK_STR(info.kms_key_id, "arn:aws:kms:eu-west-1:1:key/x");
	CHECK_STR(info.etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");
	CHECK(info.ntags == 2 && !strcmp(info.tags[0].key, "team") && !strcmp(info.tags[1].value, "abc"));
	CHECK(info.nmetadata == 1 && !strcmp(info.metadata[0].value, "2025-01-01 00:00:00"));
	trs_object_info_clear(&info);
	CHECK(trs_storage_head(s, "bkt", "nope", &info, &err) == TRS_ENOTFOUND);
	cleanup(s);
}

TEST(fs_refuses_keys_that_escape)
{
	trs_storage *s = fresh();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	const char *bad[] = {"../x", "a/../../x", "/etc/x", "a//b", "a/./b", "a/", ".", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (put(s, "bkt", bad[i], "x", &err) != TRS_EUNSAFE) {
			printf("  key '%s' was not refused\n", bad[i]);
			cleanup(s);
			CHECK(0);
		}
	}
	CHECK(put(s, "../up", "x", "x", &err) == TRS_EUNSAFE);
	CHECK(put(s, ".trs-meta", "x", "x", &err) == TRS_EUNSAFE);
	CHECK(!exists("x") && !exists("../x"));
	cleanup(s);
}

TEST(fs_never_follows_a_planted_symlink)
{
	trs_storage *s = fresh();
	CHECK(s);
	char outside[300], link[300];
	snprintf(outside, sizeof(outside), "%s-outside", root);
	mkdir(outside, 0755);
	snprintf(link, sizeof(link), "%s/bkt", root);
	mkdir(link, 0755);
	snprintf(link, sizeof(link), "%s/bkt/dir", root);
	int linked = symlink(outside, link) == 0;
	trs_error err = TRS_ERROR_INIT;
	int rc = put(s, "bkt", "dir/evil.txt", "pwned", &err);
	char target[400];
	snprintf(target, sizeof(target), "%s/evil.txt", outside);
	struct stat st;
	int escaped = stat(target, &st) == 0;
	unlink(target);
	rmdir(outside);
	cleanup(s);
	CHECK(linked);
	CHECK(rc < 0);
	CHECK(!escaped);
}

static int64_t failing_read(void *self, void *buf, size_t len, trs_error *err)
{
	int *calls = self;
	if ((*calls)++ == 0) {
		memset(buf, 'x', len < 10 ? len : 10);
		return len < 10 ? (int64_t)len : 10;
	}
	return trs__error_set(err, TRS_EINTEGRITY, "bad bytes");
}

TEST(fs_failed_body_leaves_nothing_behind)
{
	trs_storage *s = fresh();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	CHECK(put(s, "bkt", "keep.txt", "old", &err) == 0);
	int calls = 0;
	trs_body body = {failing_read, &calls, 20};
	trs_put_request r = TRS_PUT_REQUEST_INIT;
	r.bucket = "bkt";
	r.key = "keep.txt";
	CHECK(trs_upload(s, &r, &body, &err) == TRS_EINTEGRITY);
	char got[16] = "";
	CHECK(trs_storage_get(s, "bkt", "keep.txt", 0, UINT64_MAX, sink, got, &err) == 0);
	CHECK_STR(got, "old"); /* the previous version stays */
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "find '%s' -name '.trs-tmp-*' | grep -q .", root);
	CHECK(system(cmd) != 0); /* no temporary left */
	cleanup(s);
}

TEST(fs_checks_a_given_md5)
{
	trs_storage *s = fresh();
	CHECK(s);
	trs_put_request r = TRS_PUT_REQUEST_INIT;
	r.bucket = "bkt";
	r.key = "k";
	r.content_md5_hex = "00000000000000000000000000000000";
	trs_memory_body mb;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_upload(s, &r, trs_memory_body_init(&mb, "data", 4), &err) == TRS_EINTEGRITY);
	CHECK(!exists("bkt/k"));
	cleanup(s);
}

TEST(fs_prefix_conflicts_are_clear_errors)
{
	trs_storage *s = fresh();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	CHECK(put(s, "bkt", "a", "file", &err) == 0);
	CHECK(put(s, "bkt", "a/b", "under a file", &err) == TRS_EEXISTS);
	CHECK(put(s, "bkt", "d/e", "x", &err) == 0);
	CHECK(put(s, "bkt", "d", "over a dir", &err) == TRS_EEXISTS);
	CHECK_CONTAINS(err.message, "directory");
	cleanup(s);
}

TEST(fs_copy_and_delete)
{
	trs_storage *s = fresh();
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	CHECK(put(s, "src", "k", "payload", &err) == 0);
	trs_put_request r = TRS_PUT_REQUEST_INIT;
	r.bucket = "dst";
	r.key = "copied/k";
	r.storage_class = "STANDARD_IA";
	CHECK(trs_storage_copy(s, "src", "k", &r, &err) == 0);
	trs_object_info info;
	CHECK(trs_storage_head(s, "dst", "copied/k", &info, &err) == 0);
	CHECK(info.size == 7);
	CHECK_STR(info.storage_class, "STANDARD_IA");
	trs_object_info_clear(&info);
	CHECK(trs_storage_delete(s, "src", "k", &err) == 0);
	CHECK(!exists("src/k") && !exists(".trs-meta/src/k"));
	CHECK(trs_storage_delete(s, "src", "k", &err) == 0); /* deleting what is gone succeeds */
	cleanup(s);
}

#define PUTTERS 4
#define PUTS_EACH 40

typedef struct putter {
	trs_storage *s;
	int id;
	int failed;
} putter;

static void *put_many(void *arg)
{
	putter *p = arg;
	for (int i = 0; i < PUTS_EACH && !p->failed; i++) {
		char key[64], data[64];
		snprintf(key, sizeof(key), "shared/dir/%d-%d.txt", p->id, i);
		snprintf(data, sizeof(data), "object %d of writer %d", i, p->id);
		trs_error err = TRS_ERROR_INIT;
		if (put(p->s, "bkt", key, data, &err) < 0)
			p->failed = 1;
	}
	return NULL;
}

/* Writer threads putting into one directory share its cached handle; each
 * takes and releases it (ThreadSanitizer checks the cache's bookkeeping). */
TEST(fs_parallel_puts_into_one_directory)
{
	trs_storage *s = fresh();
	CHECK(s);
	putter p[PUTTERS];
	pthread_t t[PUTTERS];
	for (int i = 0; i < PUTTERS; i++) {
		p[i] = (putter){s, i, 0};
		pthread_create(&t[i], NULL, put_many, &p[i]);
	}
	int failed = 0;
	for (int i = 0; i < PUTTERS; i++) {
		pthread_join(t[i], NULL);
		failed |= p[i].failed;
	}
	CHECK(!failed);
	for (int w = 0; w < PUTTERS; w++)
		for (int i = 0; i < PUTS_EACH; i++) {
			char key[64], want[64], got[64] = "";
			snprintf(key, sizeof(key), "shared/dir/%d-%d.txt", w, i);
			snprintf(want, sizeof(want), "object %d of writer %d", i, w);
			trs_error err = TRS_ERROR_INIT;
			CHECK(trs_storage_get(s, "bkt", key, 0, UINT64_MAX, sink, got, &err) == 0);
			CHECK_STR(got, want);
		}
	cleanup(s);
}

int main(void)
{
	srandom((unsigned)getpid());
	RUN(fs_put_get_head_roundtrip);
	RUN(fs_refuses_keys_that_escape);
	RUN(fs_never_follows_a_planted_symlink);
	RUN(fs_failed_body_leaves_nothing_behind);
	RUN(fs_checks_a_given_md5);
	RUN(fs_prefix_conflicts_are_clear_errors);
	RUN(fs_copy_and_delete);
	RUN(fs_parallel_puts_into_one_directory);
	return harness_done();
}
