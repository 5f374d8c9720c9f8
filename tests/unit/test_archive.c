/* SPDX-License-Identifier: Apache-2.0 */
/* Reading .tar.zst: passes, frames, and what breaks; trs_pack's output read back. */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *MANIFEST = "{\"targets\":[],\"objects\":[{\"object_name\":\"a\"}]}";

static int open_mem(const unsigned char *z, size_t len, trs_ctx *ctx, trs_archive **a, trs_error *err)
{
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.data = z;
	src.size = len;
	src.name = "test.tar.zst";
	return trs_archive_open(a, &src, ctx, err);
}

/* Open and find the manifest; the first failure's code (the tar reader may
 * fail at open already, since libarchive reads the first header then). */
static int open_and_read(const unsigned char *z, size_t len, trs_ctx *ctx, trs_error *err)
{
	trs_archive *a = NULL;
	trs_manifest *man = NULL;
	int rc = open_mem(z, len, ctx, &a, err);
	if (rc == 0)
		rc = trs_archive_read_manifest(a, &man, err);
	trs_manifest_free(man);
	trs_archive_close(a);
	return rc;
}

TEST(archive_manifest_last_is_found_and_rewound)
{
	tu_member m[] = {{"objects/a", "AAAA", 0, 0}, {"objects/b", "BB", 0, 0}, {"manifest.json", MANIFEST, 0, 0}};
	unsigned char *z;
	size_t len = tu_archive(m, 3, 1, 3, &z);
	trs_archive *a;
	trs_manifest *man;
	trs_error err = TRS_ERROR_INIT;
	CHECK(open_mem(z, len, NULL, &a, &err) == 0);
	CHECK(trs_archive_read_manifest(a, &man, &err) == 0);
	CHECK(trs_archive_manifest_position(a) == TRS_MANIFEST_LAST);
	trs_member mb;
	CHECK(trs_archive_next(a, &mb, &err) == 1); /* rewound: the first object again */
	CHECK_STR(mb.path, "objects/a");
	char buf[8];
	CHECK(trs_archive_read(a, buf, sizeof(buf), &err) == 4 && !memcmp(buf, "AAAA", 4));
	trs_archive_stats st;
	trs_archive_get_stats(a, &st);
	CHECK(st.passes == 2);
	CHECK(st.members == 3);
	trs_manifest_free(man);
	trs_archive_close(a);
	free(z);
}

TEST(archive_manifest_first_needs_one_pass)
{
	tu_member m[] = {{"manifest.json", MANIFEST, 0, 0}, {"objects/a", "AAAA", 0, 0}};
	unsigned char *z;
	size_t len = tu_archive(m, 2, 1, 3, &z);
	trs_archive *a;
	trs_manifest *man;
	trs_error err = TRS_ERROR_INIT;
	CHECK(open_mem(z, len, NULL, &a, &err) == 0);
	CHECK(trs_archive_read_manifest(a, &man, &err) == 0);
	CHECK(trs_archive_manifest_position(a) == TRS_MANIFEST_FIRST);
	trs_member mb;
	CHECK(trs_archive_next(a, &mb, &err) == 1);
	CHECK_STR(mb.path, "objects/a");
	CHECK(trs_archive_next(a, &mb, &err) == 0);
	trs_archive_stats st;
	trs_archive_get_stats(a, &st);
	CHECK(st.passes == 1);
	trs_manifest_free(man);
	trs_archive_close(a);
	free(z);
}

TEST(archive_reads_concatenated_frames)
{
	char big[100000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	tu_member m[] = {{"objects/big", big, sizeof(big), 0}, {"manifest.json", MANIFEST, 0, 0}};
	unsigned char *z;
	size_t len = tu_archive(m, 2, 5, 19, &z);
	trs_archive *a;
	trs_manifest *man;
	trs_error err = TRS_ERROR_INIT;
	CHECK(open_mem(z, len, NULL, &a, &err) == 0);
	CHECK(trs_archive_read_manifest(a, &man, &err) == 0);
	trs_member mb;
	CHECK(trs_archive_next(a, &mb, &err) == 1 && mb.size == sizeof(big));
	char *got = malloc(sizeof(big));
	size_t total = 0;
	int64_t n;
	while ((n = trs_archive_read(a, got + total, sizeof(big) - total + (total == sizeof(big)), &err)) > 0)
		total += (size_t)n;
	int same = total == sizeof(big) && !memcmp(got, big, sizeof(big));
	free(got);
	trs_manifest_free(man);
	trs_archive_close(a);
	free(z);
	CHECK(same);
}

TEST(archive_refuses_what_is_not_zstd)
{
	const char text[] = "this is not a zstd stream at all, just words";
	trs_error err = TRS_ERROR_INIT;
	CHECK(open_and_read((const unsigned char *)text, sizeof(text), NULL, &err) == TRS_EARCHIVE);
	CHECK_CONTAINS(err.message, "test.tar.zst");
	CHECK_CONTAINS(err.message, "not zstd");
}

TEST(archive_reports_truncation)
{
	char big[50000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7919 % 251);
	tu_member m[] = {{"objects/a", big, sizeof(big), 0}, {"manifest.json", MANIFEST, 0, 0}};
	unsigned char *z;
	size_t len = tu_archive(m, 2, 1, 3, &z);
	trs_error err = TRS_ERROR_INIT;
	int rc = open_and_read(z, len / 2, NULL, &err);
	free(z);
	CHECK(rc == TRS_EARCHIVE);
	CHECK_CONTAINS(err.message, "truncated");
}

TEST(archive_reports_empty_input_and_missing_manifest)
{
	trs_error err = TRS_ERROR_INIT;
	CHECK(open_and_read((const unsigned char *)"", 0, NULL, &err) == TRS_EARCHIVE);
	CHECK_CONTAINS(err.message, "empty");
	tu_member m[] = {{"objects/a", "A", 0, 0}};
	unsigned char *z;
	size_t len = tu_archive(m, 1, 1, 3, &z);
	int rc = open_and_read(z, len, NULL, &err);
	free(z);
	CHECK(rc == TRS_EMANIFEST);
	CHECK_CONTAINS(err.message, "no manifest.json");
}

TEST(archive_ratio_limit_stops_a_bomb)
{
	size_t size = 8u << 20;
	char *zeros = calloc(1, size);
	tu_member m[] = {{"objects/zeros", zeros, size, 0}, {"manifest.json", MANIFEST, 0, 0}};
	unsigned char *z;
	size_t len = tu_archive(m, 2, 1, 19, &z);
	free(zeros);
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.max_ratio = 100;
	trs_ctx *ctx;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &o, &err) == 0);
	trs_archive *a;
	trs_manifest *man;
	CHECK(open_mem(z, len, ctx, &a, &err) == 0);
	int rc = trs_archive_read_manifest(a, &man, &err);
	trs_archive_close(a);
	trs_ctx_free(ctx);
	free(z);
	CHECK(rc == TRS_ELIMIT);
	CHECK_CONTAINS(err.message, "ratio");
}

TEST(archive_manifest_size_claim_checked_before_reading)
{
	tu_member m[] = {{"manifest.json", MANIFEST, 0, 0}};
	unsigned char *z;
	size_t len = tu_archive(m, 1, 1, 3, &z);
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.max_manifest_bytes = 10;
	trs_ctx *ctx;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &o, &err) == 0);
	trs_archive *a;
	trs_manifest *man;
	CHECK(open_mem(z, len, ctx, &a, &err) == 0);
	int rc = trs_archive_read_manifest(a, &man, &err);
	trs_archive_close(a);
	trs_ctx_free(ctx);
	free(z);
	CHECK(rc == TRS_ELIMIT);
	CHECK_CONTAINS(err.message, "over the limit");
}

/* trs pack -o -: the archive goes to a descriptor as it is made, which is left open and never replaced. */
TEST(pack_writes_to_a_descriptor_it_leaves_open)
{
	char dir[] = "/tmp/trs-pack-fd-XXXXXX", in[64], file[64], out[64];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(in, sizeof(in), "%s/in", dir);
	snprintf(file, sizeof(file), "%s/in/a.txt", dir);
	snprintf(out, sizeof(out), "%s/out.tar.zst", dir);
	CHECK(mkdir(in, 0700) == 0);
	FILE *f = fopen(file, "w");
	CHECK(f != NULL);
	fputs("packed to a descriptor\n", f);
	fclose(f);
	int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	trs_manifest_target t = {0};
	t.region = "eu-west-1";
	t.bucket = "dest";
	t.storage_class = t.kms_key_arn = "";
	trs_pack_options po = TRS_PACK_OPTIONS_INIT;
	CHECK(po.output_fd == -1); /* the default: output_path */
	po.input_dir = in;
	po.output_fd = fd;
	po.targets = &t;
	po.ntargets = 1;
	trs_error err = TRS_ERROR_INIT;
	uint64_t n = 0;
	int rc = trs_pack(NULL, &po, &n, &err);
	int still_open = fcntl(fd, F_GETFD) != -1;
	close(fd);
	/* Version 1 options have no output_fd: without output_path they are refused, whatever follows. */
	po.version = 1;
	int rc_v1 = trs_pack(NULL, &po, NULL, &err);
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.path = out;
	trs_archive *a = NULL;
	trs_manifest *man = NULL;
	int read_rc = trs_archive_open(&a, &src, NULL, &err);
	if (read_rc == 0)
		read_rc = trs_archive_read_manifest(a, &man, &err);
	size_t objects = man ? trs_manifest_object_count(man) : 0;
	trs_manifest_free(man);
	trs_archive_close(a);
	unlink(out);
	unlink(file);
	rmdir(in);
	int left = rmdir(dir); /* fails when pack left a temporary file */
	CHECK(rc == 0 && n == 1);
	CHECK(still_open);
	CHECK(rc_v1 == TRS_EINVAL);
	CHECK(read_rc == 0 && objects == 1);
	CHECK(left == 0);
}

int main(void)
{
	RUN(archive_manifest_last_is_found_and_rewound);
	RUN(archive_manifest_first_needs_one_pass);
	RUN(archive_reads_concatenated_frames);
	RUN(archive_refuses_what_is_not_zstd);
	RUN(archive_reports_truncation);
	RUN(archive_reports_empty_input_and_missing_manifest);
	RUN(archive_ratio_limit_stops_a_bomb);
	RUN(archive_manifest_size_claim_checked_before_reading);
	RUN(pack_writes_to_a_descriptor_it_leaves_open);
	return harness_done();
}
