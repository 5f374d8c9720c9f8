/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the archive pipeline: zstd + tar (lib/archive/archive.c),
 * the manifest in it, the member/entry join (lib/archive/object.c) and trs_process
 * (lib/core/process.c).
 *
 * The input is a whole .tar.zst held in memory. It is read twice:
 *
 * 1. by hand: trs_archive_read_manifest, then every object through
 *    trs_object_iter_next, each READY body read to its end;
 * 2. by trs_process, writing into a no-op storage backend defined here (the
 *    public vtable of trs/sys/storage.h) whose put reads the body to EOF and
 *    keeps nothing: no disk writes, so the fuzzer runs at full speed.
 *
 * An input that does not start with a zstd magic number (frame or
 * skippable frame) is taken as a bare tar and compressed here first, so that
 * mutations reach the tar headers and manifest.json instead of only ever
 * breaking the compressed stream; the corpus holds both kinds.
 *
 * Limits are small (64 MiB of tar, 1 MiB of manifest) so that a bomb is
 * refused quickly rather than timing out. Any input must give 0 or a
 * negative code, never a crash, leak or hang, and:
 * - a body whose read reaches 0 has delivered exactly body->length bytes;
 * - every put request has a bucket, a key and at most 10 tags;
 * - the report's counters are consistent with each other.
 *
 *     fuzz/run.sh 60        (or: build-fuzz/fuzz/fuzz_archive fuzz/corpus/archive)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <trs.h>
#include <trs/sys/storage.h>
#include <zstd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                      \
	do {                             \
		if (!(cond))             \
			__builtin_trap(); \
	} while (0)

#define REGION "eu-west-1"

/* Read a body to its end; returns 0 or the negative code read() gave. */
static int drain(trs_body *body, trs_error *err)
{
	static unsigned char buf[65536];
	uint64_t total = 0;
	for (;;) {
		/* Odd sizes now and then, so the reader sees short requests too. */
		size_t want = (total & 1) ? 7 : sizeof(buf);
		int64_t n = body->read(body->self, buf, want, err);
		if (n < 0) {
			CHECK(err->code == (int)n);
			return (int)n;
		}
		if (n == 0)
			break;
		CHECK((uint64_t)n <= want);
		total += (uint64_t)n;
		CHECK(total <= body->length);
	}
	CHECK(total == body->length);
	/* Reading past the end keeps answering 0 (or an error), never more bytes. */
	CHECK(body->read(body->self, buf, sizeof(buf), err) <= 0);
	return 0;
}

static void check_request(const trs_put_request *req)
{
	CHECK(req->bucket && req->key);
	CHECK(req->ntags <= 10);
	CHECK(req->ntags == 0 || req->tags);
	for (size_t i = 0; i < req->ntags; i++)
		CHECK(req->tags[i].key && req->tags[i].value);
	CHECK(req->nmetadata == 0 || req->metadata);
	for (size_t i = 0; i < req->nmetadata; i++)
		CHECK(req->metadata[i].key && req->metadata[i].value);
}

/* ---- a storage backend that consumes bodies and stores nothing ---- */

static int null_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	(void)self;
	check_request(req);
	return drain(body, err);
}

static int null_copy(trs_storage *self, const char *src_bucket, const char *src_key,
		     const trs_put_request *req, trs_error *err)
{
	(void)self;
	(void)err;
	CHECK(src_bucket && src_key);
	check_request(req);
	return 0;
}

static int null_del(trs_storage *self, const char *bucket, const char *key, trs_error *err)
{
	(void)self;
	(void)bucket;
	(void)key;
	(void)err;
	return 0;
}

static void null_free(trs_storage *self)
{
	(void)self; /* static: nothing to free */
}

static trs_storage null_storage;

static void log_check(trs_log_level level, const char *message, const trs_log_field *fields,
		      size_t nfields, void *userdata)
{
	(void)level;
	(void)userdata;
	CHECK(message != NULL);
	for (size_t i = 0; i < nfields; i++)
		CHECK(fields[i].key && fields[i].value);
}

static trs_ctx *make_ctx(void)
{
	trs_ctx_options opts = TRS_CTX_OPTIONS_INIT;
	opts.region = REGION;
	opts.log = log_check;
	opts.log_level = TRS_LOG_DEBUG; /* build every record: the log paths are code too */
	opts.max_decompressed_bytes = 64ull << 20;
	opts.max_manifest_bytes = 1ull << 20;
	opts.max_manifest_objects = 10000;
	/* zstd's own default cap (128 MiB). With the library's default of 31, a
	 * 7-byte frame header asks for a 2 GiB window, which trips libFuzzer's
	 * malloc limit on every run (corpus/archive/window-log-31.zst). */
	opts.max_window_log = 27;
	opts.workers = 1;
	opts.max_memory = 16ull << 20;
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &opts, &err) == 0);
	return ctx;
}

static void read_by_hand(trs_ctx *ctx, const trs_archive_source *src)
{
	trs_error err = TRS_ERROR_INIT;
	trs_archive *a = NULL;
	trs_manifest *m = NULL;
	trs_object_iter *it = NULL;

	int rc = trs_archive_open(&a, src, ctx, &err);
	if (rc < 0)
		goto done;
	rc = trs_archive_read_manifest(a, &m, &err);
	if (rc < 0) {
		CHECK(m == NULL);
		goto done;
	}
	CHECK(m != NULL);
	CHECK(trs_archive_manifest_position(a) != TRS_MANIFEST_UNKNOWN);
	rc = trs_object_iter_new(&it, a, m, ctx, &err);
	if (rc < 0)
		goto done;
	const trs_object *o;
	while ((rc = trs_object_iter_next(it, &o, &err)) == 1) {
		CHECK(o && o->entry);
		CHECK(o->nputs == 0 || o->puts);
		for (size_t i = 0; i < o->nputs; i++) {
			CHECK(o->puts[i].target != NULL);
			if (o->puts[i].error)
				CHECK(o->puts[i].error < 0 && o->puts[i].error_message);
			else
				check_request(&o->puts[i].request);
		}
		if (o->status == TRS_OBJECT_READY) {
			CHECK(o->member_path != NULL);
			trs_error berr = TRS_ERROR_INIT;
			drain(trs_object_body(it), &berr);
		} else {
			CHECK(o->status == TRS_OBJECT_MISSING);
			CHECK(o->member_path == NULL);
		}
	}
	CHECK(rc <= 0);
	(void)trs_object_iter_skipped_members(it);
done:
	if (rc < 0)
		CHECK(err.code == rc && err.message[0]);
	trs_archive_stats st;
	if (a)
		trs_archive_get_stats(a, &st);
	trs_object_iter_free(it);
	trs_manifest_free(m);
	trs_archive_close(a);
}

static void process(trs_ctx *ctx, const trs_archive_source *src)
{
	trs_error err = TRS_ERROR_INIT;
	trs_report *rep = NULL;
	int rc = trs_process(ctx, &null_storage, src, NULL, &rep, &err);
	if (rc < 0)
		CHECK(err.code == rc && err.message[0]);
	CHECK(rep != NULL);
	if (rc == 0 || rc == TRS_EPARTIAL) {
		CHECK(rep->objects_written + rep->objects_failed + rep->objects_skipped <= rep->objects_total);
		CHECK((rc == 0) == (rep->nfailures == 0));
		CHECK(rep->objects_failed <= rep->nfailures);
	}
	for (size_t i = 0; i < rep->nfailures; i++) {
		const trs_failure *f = &rep->failures[i];
		CHECK(f->relative_key && f->bucket && f->key && f->message && f->code < 0);
	}
	trs_report_free(rep);
}

static int is_zstd(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint32_t magic = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
			 (uint32_t)data[3] << 24;
	return magic == ZSTD_MAGICNUMBER || (magic & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static trs_ctx *ctx;
	if (!ctx) {
		/* Made once: a context holds settings only, no state of a run. */
		ctx = make_ctx();
		CHECK(trs_storage_init_backend(&null_storage, TRS_STORAGE_VERSION) == 0);
		null_storage.name = "null";
		null_storage.put = null_put;
		null_storage.copy = null_copy;
		null_storage.del = null_del;
		null_storage.free = null_free;
	}

	void *compressed = NULL;
	if (!is_zstd(data, size)) {
		size_t cap = ZSTD_compressBound(size);
		compressed = malloc(cap);
		if (!compressed)
			return 0;
		size_t n = ZSTD_compress(compressed, cap, data, size, 1);
		CHECK(!ZSTD_isError(n));
		data = compressed;
		size = n;
	}

	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.name = "fuzz.tar.zst";
	src.data = data;
	src.size = size;
	src.compressed_size = size;

	read_by_hand(ctx, &src);
	process(ctx, &src);
	free(compressed);
	return 0;
}
