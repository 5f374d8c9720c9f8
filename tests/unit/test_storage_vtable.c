/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The storage vtable's versions: a version-1 backend (a struct that ends
 * after free(), allocated at exactly that size so that ASan sees any read
 * past it) still restores an archive; the version-2 capability
 * TRS_STORAGE_CHECKS_CONTENT_MD5 makes the library leave the MD5 of single
 * puts to the backend; --verify size vouches for the manifest's MD5; a
 * version-2 backend gets plain puts, and a version-3 one with put_if_newer
 * decides every write from the condition the restore hands it.
 */
#include "harness.h"
#include "internal.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a program compiled against the version-1 header has. */
struct v1_storage {
	unsigned int version;
	const char *name;
	int (*put)(trs_storage *, const trs_put_request *, trs_body *, trs_error *);
	int (*get)(trs_storage *, const char *, const char *, uint64_t, uint64_t, trs_sink_fn, void *, trs_error *);
	int (*head)(trs_storage *, const char *, const char *, trs_object_info *, trs_error *);
	int (*copy)(trs_storage *, const char *, const char *, const trs_put_request *, trs_error *);
	int (*del)(trs_storage *, const char *, const char *, trs_error *);
	void (*free)(trs_storage *);
};

/* put() runs on several writer threads at once: the counters are atomic. */
static atomic_int puts_seen, puts_with_verified_md5, puts_with_md5_request, bodies_in_memory;

static int recording_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	(void)self;
	const void *data;
	size_t len;
	atomic_fetch_add(&bodies_in_memory, trs_body_memory(body, &data, &len));
	atomic_fetch_add(&puts_with_verified_md5, trs_body_verified_md5(body) != NULL);
	atomic_fetch_add(&puts_with_md5_request, req->content_md5_hex && *req->content_md5_hex);
	unsigned char buf[4096], digest[16];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_md5(), NULL);
	int64_t n;
	while ((n = body->read(body->self, buf, sizeof(buf), err)) > 0)
		EVP_DigestUpdate(md, buf, (size_t)n);
	EVP_DigestFinal_ex(md, digest, NULL);
	EVP_MD_CTX_free(md);
	atomic_fetch_add(&puts_seen, 1);
	return n < 0 ? (int)n : 0;
}

/* What a program compiled against the version-2 header has. */
struct v2_storage {
	struct v1_storage v1;
	unsigned int caps;
	unsigned int parallelism;
	uint64_t md5_checked_below;
	uint64_t reserved_memory;
};

/* A version-3 backend that keeps every object at its newer version: nothing is ever written. */
static atomic_int conditions_seen, conditions_with_time;

static int newer_everywhere(trs_storage *self, const trs_put_request *req, const trs_write_condition *cond,
			    trs_body *body, trs_error *err)
{
	(void)self;
	(void)req;
	(void)body;
	(void)err;
	atomic_fetch_add(&conditions_seen, 1);
	atomic_fetch_add(&conditions_with_time, cond && cond->source_time && *cond->source_time &&
							 cond->source_etag && strlen(cond->source_etag) == 32);
	return TRS_KEPT_NEWER;
}

static char dir[256], archive[300];

static int make_archive(void)
{
	snprintf(dir, sizeof(dir), "/tmp/trs-vtable-test-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char path[400];
	snprintf(path, sizeof(path), "%s/in", dir);
	mkdir(path, 0700);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/in/obj%d.txt", dir, i);
		FILE *f = fopen(path, "w");
		if (!f)
			return -1;
		fprintf(f, "object %d, some bytes to restore\n", i);
		fclose(f);
	}
	snprintf(archive, sizeof(archive), "%s/a.tar.zst", dir);
	trs_manifest_target t = {0};
	t.region = "eu-west-1";
	t.bucket = "dest";
	t.storage_class = "";
	t.kms_key_arn = "";
	trs_pack_options po = TRS_PACK_OPTIONS_INIT;
	snprintf(path, sizeof(path), "%s/in", dir);
	po.input_dir = path;
	po.output_path = archive;
	po.targets = &t;
	po.ntargets = 1;
	trs_error err = TRS_ERROR_INIT;
	uint64_t n = 0;
	return trs_pack(NULL, &po, &n, &err) == 0 && n == 3 ? 0 : -1;
}

static void cleanup(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("  cleanup failed\n");
}

static int restore_with(trs_storage *s, trs_verify verify, const trs_process_options *po, trs_report **rep)
{
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	co.region = "eu-west-1";
	co.verify = verify;
	trs_ctx *ctx;
	trs_error err = TRS_ERROR_INIT;
	if (trs_ctx_new(&ctx, &co, &err) < 0)
		return -1;
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.path = archive;
	atomic_store(&puts_seen, 0);
	atomic_store(&puts_with_verified_md5, 0);
	atomic_store(&puts_with_md5_request, 0);
	atomic_store(&bodies_in_memory, 0);
	atomic_store(&conditions_seen, 0);
	atomic_store(&conditions_with_time, 0);
	int rc = trs_process(ctx, s, &src, po, rep, &err);
	if (rc < 0)
		printf("  trs_process: %s\n", err.message);
	trs_ctx_free(ctx);
	return rc;
}

static int restore(trs_storage *s, trs_verify verify, trs_report **rep)
{
	return restore_with(s, verify, NULL, rep);
}

TEST(init_backend_never_writes_past_a_version_1_struct)
{
	struct {
		struct v1_storage s;
		unsigned char canary[64];
	} b;
	memset(&b, 0xab, sizeof(b));
	CHECK(trs_storage_init_backend((trs_storage *)&b.s, 1) == 0);
	CHECK(b.s.version == 1 && b.s.put == NULL && b.s.name == NULL);
	for (size_t i = 0; i < sizeof(b.canary); i++)
		CHECK(b.canary[i] == 0xab);
	CHECK(trs_storage_init_backend((trs_storage *)&b.s, TRS_STORAGE_VERSION + 1) == TRS_EINVAL);
}

TEST(version_1_backend_restores_and_gets_verified_bodies)
{
	CHECK(make_archive() == 0);
	/* Exactly the version-1 size on the heap: a read of caps or hints would be past the end. */
	struct v1_storage *v1 = malloc(sizeof(*v1));
	CHECK(v1 && trs_storage_init_backend((trs_storage *)v1, 1) == 0);
	v1->name = "v1";
	v1->put = recording_put;
	trs_report *rep = NULL;
	int rc = restore((trs_storage *)v1, TRS_VERIFY_MD5, &rep);
	CHECK(rc == 0 && rep && rep->objects_written == 3);
	CHECK(puts_seen == 3 && bodies_in_memory == 3);
	/* No capability: the library hashed each body itself and says so. */
	CHECK(puts_with_verified_md5 == 3);
	trs_report_free(rep);
	free(v1);
	cleanup();
}

TEST(server_side_md5_check_leaves_single_puts_unhashed)
{
	CHECK(make_archive() == 0);
	trs_storage *s = calloc(1, sizeof(*s));
	CHECK(s && trs_storage_init_backend(s, TRS_STORAGE_VERSION) == 0);
	s->name = "checks-md5";
	s->put = recording_put;
	s->caps = TRS_STORAGE_CHECKS_CONTENT_MD5;
	s->md5_checked_below = 1 << 20;
	trs_report *rep = NULL;
	CHECK(restore(s, TRS_VERIFY_MD5, &rep) == 0 && rep->objects_written == 3);
	trs_report_free(rep);
	/* Each put carries the MD5 for the server to check; none was hashed here. */
	CHECK(puts_seen == 3 && puts_with_md5_request == 3 && puts_with_verified_md5 == 0);
	/* Below the size the backend checks, and nothing else changes. */
	s->md5_checked_below = 4;
	CHECK(restore(s, TRS_VERIFY_MD5, &rep) == 0 && rep->objects_written == 3);
	trs_report_free(rep);
	CHECK(puts_seen == 3 && puts_with_verified_md5 == 3);
	free(s);
	cleanup();
}

TEST(verify_size_vouches_for_the_manifest_md5)
{
	CHECK(make_archive() == 0);
	trs_storage *s = calloc(1, sizeof(*s));
	CHECK(s && trs_storage_init_backend(s, TRS_STORAGE_VERSION) == 0);
	s->put = recording_put;
	trs_report *rep = NULL;
	CHECK(restore(s, TRS_VERIFY_SIZE, &rep) == 0 && rep->objects_written == 3);
	trs_report_free(rep);
	CHECK(puts_seen == 3 && puts_with_verified_md5 == 3);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	co.verify = (trs_verify)7;
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &co, &err) == TRS_EINVAL && !ctx);
	free(s);
	cleanup();
}

TEST(init_backend_never_writes_past_a_version_2_struct)
{
	struct {
		struct v2_storage s;
		unsigned char canary[64];
	} b;
	memset(&b, 0xab, sizeof(b));
	CHECK(trs_storage_init_backend((trs_storage *)&b.s, 2) == 0);
	CHECK(b.s.v1.version == 2 && b.s.caps == 0 && b.s.reserved_memory == 0);
	for (size_t i = 0; i < sizeof(b.canary); i++)
		CHECK(b.canary[i] == 0xab);
}

TEST(version_2_backend_gets_plain_puts)
{
	CHECK(make_archive() == 0);
	struct v2_storage *v2 = malloc(sizeof(*v2)); /* exactly its size: ASan sees a read of v3 members */
	CHECK(v2 && trs_storage_init_backend((trs_storage *)v2, 2) == 0);
	v2->v1.put = recording_put;
	trs_report *rep = NULL;
	CHECK(restore((trs_storage *)v2, TRS_VERIFY_MD5, &rep) == 0 && rep->objects_written == 3);
	CHECK(puts_seen == 3 && rep->objects_kept_newer == 0);
	trs_report_free(rep);
	free(v2);
	cleanup();
}

TEST(version_3_backend_decides_each_write_from_its_condition)
{
	CHECK(make_archive() == 0);
	trs_storage *s = calloc(1, sizeof(*s));
	CHECK(s && trs_storage_init_backend(s, TRS_STORAGE_VERSION) == 0);
	s->name = "newer-everywhere";
	s->put = recording_put;
	s->put_if_newer = newer_everywhere;
	trs_report *rep = NULL;
	CHECK(restore(s, TRS_VERIFY_MD5, &rep) == 0);
	/* each object's version went with its write; none was written, none failed */
	CHECK(conditions_seen == 3 && conditions_with_time == 3 && puts_seen == 0);
	CHECK(rep->objects_kept_newer == 3 && rep->puts_kept_newer == 3 && rep->objects_written == 0);
	trs_report_free(rep);
	/* --overwrite always: plain puts, no condition */
	trs_process_options po = TRS_PROCESS_OPTIONS_INIT;
	po.overwrite = TRS_OVERWRITE_ALWAYS;
	CHECK(restore_with(s, TRS_VERIFY_MD5, &po, &rep) == 0);
	CHECK(conditions_seen == 0 && puts_seen == 3 && rep->objects_written == 3);
	trs_report_free(rep);
	free(s);
	cleanup();
}

TEST(init_backend_never_writes_past_a_version_3_struct)
{
	union {
		trs_storage s;
		unsigned char bytes[sizeof(trs_storage) + 64];
	} b;
	memset(&b, 0xab, sizeof(b));
	CHECK(trs_storage_init_backend(&b.s, 3) == 0);
	CHECK(b.s.version == 3 && b.s.put_if_newer == NULL && b.s.copy_if_newer == NULL);
	for (size_t i = offsetof(trs_storage, stage_open); i < sizeof(b.bytes); i++)
		CHECK(b.bytes[i] == 0xab);
}

static int stage_opens;

static int counting_stage_open(trs_storage *self, trs_storage_stage **out, trs_error *err)
{
	stage_opens++;
	return trs__error_set(err, TRS_EIO, "not expected");
}

static int fixed_retry_stats(const trs_storage *self, trs_retry_stats *out)
{
	out->retried = 7;
	out->throttled = 2;
	out->limit = 3;
	return 0;
}

TEST(version_4_members_are_used_only_when_complete_and_present)
{
	/* retry_stats: from the backend's member; a version-3 backend is never read past its end. */
	trs_storage *s = calloc(1, sizeof(*s));
	CHECK(s && trs_storage_init_backend(s, TRS_STORAGE_VERSION) == 0);
	trs_retry_stats rs;
	CHECK(trs_storage_retry_stats(s, &rs) == TRS_EUNSUPPORTED && rs.retried == 0);
	s->retry_stats = fixed_retry_stats;
	CHECK(trs_storage_retry_stats(s, &rs) == 0 && rs.retried == 7 && rs.throttled == 2 && rs.limit == 3);
	s->version = 3; /* the member would lie past a version-3 struct */
	CHECK(trs_storage_retry_stats(s, &rs) == TRS_EUNSUPPORTED && rs.retried == 0);
	free(s);

	/* Staging needs the capability and all six members: with one missing, early objects are held in
	 * memory and stage_open is never called. */
	CHECK(make_archive() == 0);
	s = calloc(1, sizeof(*s));
	CHECK(s && trs_storage_init_backend(s, TRS_STORAGE_VERSION) == 0);
	s->name = "half-staging";
	s->put = recording_put;
	s->caps = TRS_STORAGE_STAGE_EARLY;
	s->stage_open = counting_stage_open; /* and no other stage_* member */
	stage_opens = 0;
	trs_report *rep = NULL;
	CHECK(restore(s, TRS_VERIFY_MD5, &rep) == 0 && rep->objects_written == 3);
	CHECK(stage_opens == 0 && puts_seen == 3);
	trs_report_free(rep);
	free(s);
	cleanup();
}

int main(void)
{
	RUN(init_backend_never_writes_past_a_version_1_struct);
	RUN(version_1_backend_restores_and_gets_verified_bodies);
	RUN(server_side_md5_check_leaves_single_puts_unhashed);
	RUN(verify_size_vouches_for_the_manifest_md5);
	RUN(init_backend_never_writes_past_a_version_2_struct);
	RUN(version_2_backend_gets_plain_puts);
	RUN(version_3_backend_decides_each_write_from_its_condition);
	RUN(init_backend_never_writes_past_a_version_3_struct);
	RUN(version_4_members_are_used_only_when_complete_and_present);
	return harness_done();
}
