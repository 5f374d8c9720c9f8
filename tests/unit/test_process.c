/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trs_process end to end on in-memory archives, through a storage that
 * fails chosen writes (fault_storage.h): what fails is reported, exactly,
 * and everything else is written.
 */
#include "harness.h"
#include "fault_storage.h"
#include "core/report.h"
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define REGION "eu-west-1"

/* An archive of n objects "o<i>" (sizes from `size_of`), manifest last,
 * to bucket "dest"; extra_json is appended to the objects list. */
typedef struct {
	unsigned char *z;
	size_t zlen;
	char **bodies;
	size_t n;
} fixture;

static size_t small_size(size_t i)
{
	return 10 + i % 7;
}

static int make_archive(fixture *f, size_t n, size_t (*size_of)(size_t), const char *extra_json)
{
	memset(f, 0, sizeof(*f));
	f->n = n;
	f->bodies = calloc(n + 1, sizeof(*f->bodies));
	tu_member *m = calloc(n + 1, sizeof(*m));
	size_t cap = 256 + n * 160 + (extra_json ? strlen(extra_json) : 0);
	char *json = malloc(cap);
	size_t len = (size_t)snprintf(json, cap, "{\"targets\":[{\"region\":\"" REGION "\",\"bucket\":\"dest\"}],\"objects\":[");
	for (size_t i = 0; i < n; i++) {
		size_t sz = size_of(i);
		f->bodies[i] = malloc(sz + 1);
		for (size_t k = 0; k < sz; k++)
			f->bodies[i][k] = (char)('a' + (i + k) % 26);
		f->bodies[i][sz] = 0;
		char *path = malloc(32);
		snprintf(path, 32, "objects/o%zu", i);
		m[i].path = path;
		m[i].data = f->bodies[i];
		m[i].len = sz;
		len += (size_t)snprintf(json + len, cap - len,
					"%s{\"source_bucket\":\"src\",\"source_prefix\":\"p\",\"object_name\":\"o%zu\","
					"\"size\":%zu}",
					i ? "," : "", i, sz);
	}
	len += (size_t)snprintf(json + len, cap - len, "%s%s]}", extra_json && n ? "," : "", extra_json ? extra_json : "");
	m[n].path = "manifest.json";
	m[n].data = json;
	m[n].len = len;
	f->zlen = tu_archive(m, n + 1, 1, 1, &f->z);
	for (size_t i = 0; i < n; i++)
		free((char *)m[i].path);
	free(m);
	free(json);
	return f->zlen ? 0 : -1;
}

static void free_fixture(fixture *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->bodies[i]);
	free(f->bodies);
	free(f->z);
}

static trs_ctx *new_ctx(uint64_t max_memory)
{
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.region = REGION;
	o.workers = 4;
	o.max_inflight = 4;
	o.max_memory = max_memory;
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_ctx_new(&ctx, &o, &err) < 0)
		printf("  ctx: %s\n", err.message);
	return ctx;
}

static int run(trs_ctx *ctx, tu_fault *f, const fixture *fx, const trs_process_options *opt, trs_report **rep)
{
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.name = "test.tar.zst";
	src.data = fx->z;
	src.size = fx->zlen;
	trs_error err = TRS_ERROR_INIT;
	return trs_process(ctx, &f->parent, &src, opt, rep, &err);
}

/* The report lists a failure for bucket/key. */
static int reported(const trs_report *rep, const char *bucket, const char *key)
{
	for (size_t i = 0; i < rep->nfailures; i++)
		if (!strcmp(rep->failures[i].bucket, bucket) && !strcmp(rep->failures[i].key, key))
			return 1;
	return 0;
}

TEST(process_without_faults_writes_every_object)
{
	fixture fx;
	CHECK(make_archive(&fx, 40, small_size, NULL) == 0);
	trs_ctx *ctx = new_ctx(0);
	tu_fault *f = tu_fault_new(tu_mem_storage_new());
	trs_report *rep = NULL;
	int rc = run(ctx, f, &fx, NULL, &rep);
	int ok = rc == 0 && rep->objects_written == 40 && rep->puts_written == 40 && rep->nfailures == 0;
	for (size_t i = 0; ok && i < 40; i++) {
		char key[32];
		snprintf(key, sizeof(key), "p/o%zu", i);
		const tu_mem_object *o = tu_mem_find(f->inner, "dest", key);
		ok = o && o->len == small_size(i) && !memcmp(o->data, fx.bodies[i], o->len);
	}
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	trs_ctx_free(ctx);
	free_fixture(&fx);
	CHECK(rc == 0);
	CHECK(ok);
}

typedef struct {
	pthread_mutex_t mu;
	uint64_t reports, midway, max_bytes, max_objects;
} progress_seen;

static void on_progress(const trs_progress *p, void *userdata)
{
	progress_seen *seen = userdata;
	pthread_mutex_lock(&seen->mu);
	seen->reports++;
	if (p->bytes_written > seen->max_bytes)
		seen->max_bytes = p->bytes_written;
	if (p->objects_done > seen->max_objects)
		seen->max_objects = p->objects_done;
	if (p->bytes_written > 0 && p->objects_total && p->objects_done < p->objects_total)
		seen->midway++;
	pthread_mutex_unlock(&seen->mu);
}

/* The objects of a manifest-last archive are written after its last byte was decompressed: the
 * reports of that phase carry the bytes written as they grow (a progress bar's moving figure). */
TEST(process_progress_carries_the_bytes_written_while_the_objects_are_written)
{
	fixture fx;
	CHECK(make_archive(&fx, 60, small_size, NULL) == 0);
	progress_seen seen = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.region = REGION;
	o.workers = 2;
	o.max_inflight = 2;
	o.progress = on_progress;
	o.progress_userdata = &seen;
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &o, &err) == 0);
	tu_fault *f = tu_fault_new(tu_mem_storage_new());
	f->put_delay_ms = 20; /* 60 puts, 2 at a time: 0.6 s, a few 0.2 s reports */
	trs_report *rep = NULL;
	int rc = run(ctx, f, &fx, NULL, &rep);
	uint64_t written = rep ? rep->bytes_written : 0;
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	trs_ctx_free(ctx);
	free_fixture(&fx);
	CHECK(rc == 0);
	CHECK(seen.midway >= 1);
	CHECK(seen.max_bytes > 0 && seen.max_bytes <= written);
	CHECK(seen.max_objects <= 60);
}

/* The k-th write fails: exactly that object is reported, the others are written. */
static void fail_kth(size_t n, size_t (*size_of)(size_t), uint64_t max_memory, int drain, int *ok)
{
	*ok = 0;
	fixture fx;
	if (make_archive(&fx, n, size_of, NULL) < 0)
		return;
	trs_ctx *ctx = new_ctx(max_memory);
	int good = 1;
	for (uint64_t k = 1; k <= n && good; k += n / 4 ? n / 4 : 1) {
		tu_fault *f = tu_fault_new(tu_mem_storage_new());
		f->fail_nth = k;
		f->drain = drain;
		trs_report *rep = NULL;
		int rc = run(ctx, f, &fx, NULL, &rep);
		char bucket_key[64];
		snprintf(bucket_key, sizeof(bucket_key), "%s", f->failed ? f->failed_keys[0] : "");
		const char *key = strchr(bucket_key, '/') ? strchr(bucket_key, '/') + 1 : "";
		good = rc == TRS_EPARTIAL && f->failed == 1 && rep->nfailures == 1 && rep->puts_failed == 1 &&
		       rep->objects_failed == 1 && rep->objects_written == n - 1 && rep->puts_written == n - 1 &&
		       reported(rep, "dest", key) && rep->failures[0].code == TRS_EIO &&
		       strstr(rep->failures[0].message, "injected failure") &&
		       ((tu_mem_storage *)f->inner)->nobjects == n - 1 && !tu_mem_find(f->inner, "dest", key);
		if (!good)
			printf("  k=%llu: rc %d, failed %llu, nfailures %zu, written %llu\n", (unsigned long long)k, rc,
			       (unsigned long long)f->failed, rep ? rep->nfailures : 0,
			       rep ? (unsigned long long)rep->objects_written : 0);
		trs_report_free(rep);
		trs_storage_free(&f->parent);
	}
	trs_ctx_free(ctx);
	free_fixture(&fx);
	*ok = good;
}

TEST(process_failing_the_kth_put_reports_exactly_that_object)
{
	int ok;
	fail_kth(30, small_size, 0, 0, &ok);
	CHECK(ok);
}

static size_t large_size(size_t i)
{
	return 200000 + i * 1000; /* over the 128 KiB chunk of a 1 MiB budget: streamed */
}

TEST(process_failing_the_kth_streamed_put_reports_exactly_that_object)
{
	int ok;
	fail_kth(8, large_size, 1 << 20, 0, &ok);
	CHECK(ok);
	fail_kth(8, large_size, 1 << 20, 1, &ok);
	CHECK(ok);
}

TEST(process_failing_puts_by_key_fails_only_that_key)
{
	fixture fx;
	CHECK(make_archive(&fx, 20, small_size, NULL) == 0);
	trs_ctx *ctx = new_ctx(0);
	tu_fault *f = tu_fault_new(tu_mem_storage_new());
	f->fail_key = "p/o7";
	f->code = TRS_EAUTH;
	f->aws_code = "AccessDenied"; /* a bucket's refusal, not the credentials': the others go on */
	trs_report *rep = NULL;
	int rc = run(ctx, f, &fx, NULL, &rep);
	int ok = rc == TRS_EPARTIAL && rep->nfailures == 1 && reported(rep, "dest", "p/o7") &&
		 rep->failures[0].code == TRS_EAUTH && rep->objects_written == 19 && !tu_mem_find(f->inner, "dest", "p/o7");
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	trs_ctx_free(ctx);
	free_fixture(&fx);
	CHECK(ok);
}

/*
 * The failure list was appended from two places that kept separate
 * capacity counts: a name of `only` that matches nothing (one entry, grown
 * by one) and then a failing put (the pipeline's count still said 0 of 0)
 * wrote past the buffer. Both paths, thousands of times.
 */
TEST(process_reports_thousands_of_failures_from_both_paths)
{
	enum { N = 1500, UNMATCHED = 1500 };
	fixture fx;
	CHECK(make_archive(&fx, N, small_size, NULL) == 0);
	const char **only = calloc(N + UNMATCHED, sizeof(*only));
	char (*names)[32] = calloc(N + UNMATCHED, sizeof(*names));
	for (size_t i = 0; i < N + UNMATCHED; i++) {
		/* unmatched names first, so the pipeline appends to a list they grew */
		if (i < UNMATCHED)
			snprintf(names[i], sizeof(names[i]), "nothing-%zu", i);
		else
			snprintf(names[i], sizeof(names[i]), "o%zu", i - UNMATCHED);
		only[i] = names[i];
	}
	trs_ctx *ctx = new_ctx(0);
	tu_fault *f = tu_fault_new(tu_mem_storage_new());
	f->fail_from = 1;
	trs_process_options opt = TRS_PROCESS_OPTIONS_INIT;
	opt.only = only;
	opt.nonly = N + UNMATCHED;
	trs_report *rep = NULL;
	int rc = run(ctx, f, &fx, &opt, &rep);
	size_t unmatched = 0, failed_puts = 0;
	for (size_t i = 0; rep && i < rep->nfailures; i++) {
		if (!*rep->failures[i].bucket && !strncmp(rep->failures[i].relative_key, "nothing-", 8))
			unmatched++;
		else if (!strcmp(rep->failures[i].bucket, "dest"))
			failed_puts++;
	}
	int ok = rc == TRS_EPARTIAL && rep->nfailures == N + UNMATCHED && unmatched == UNMATCHED && failed_puts == N &&
		 rep->puts_failed == N && rep->objects_failed == N && rep->objects_written == 0;
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	trs_ctx_free(ctx);
	free_fixture(&fx);
	free(only);
	free(names);
	CHECK(ok);
}

/* The restore-backup case exactly: one name that matches nothing, one failing put. */
TEST(process_unmatched_name_and_one_failing_put_are_both_reported)
{
	fixture fx;
	CHECK(make_archive(&fx, 2, small_size, NULL) == 0);
	const char *only[] = {"nomatch", "o1"};
	trs_ctx *ctx = new_ctx(0);
	tu_fault *f = tu_fault_new(tu_mem_storage_new());
	f->fail_nth = 1;
	trs_process_options opt = TRS_PROCESS_OPTIONS_INIT;
	opt.only = only;
	opt.nonly = 2;
	opt.to_bucket = "restored";
	trs_report *rep = NULL;
	int rc = run(ctx, f, &fx, &opt, &rep);
	int ok = rc == TRS_EPARTIAL && rep->nfailures == 2 && !strcmp(rep->failures[0].relative_key, "nomatch") &&
		 rep->failures[0].code == TRS_ENOTFOUND && reported(rep, "restored", "p/o1") && rep->objects_unselected == 1;
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	trs_ctx_free(ctx);
	free_fixture(&fx);
	CHECK(ok);
}


/* Restore `members` (the manifest among them) into a fresh memory storage. */
static int restore_members(const tu_member *members, size_t n, uint64_t max_memory, tu_fault **storage,
			   trs_report **rep)
{
	fixture fx;
	memset(&fx, 0, sizeof(fx));
	fx.zlen = tu_archive(members, n, 1, 1, &fx.z);
	trs_ctx *ctx = new_ctx(max_memory);
	*storage = tu_fault_new(tu_mem_storage_new());
	int rc = run(ctx, *storage, &fx, NULL, rep);
	trs_ctx_free(ctx);
	free(fx.z);
	return rc;
}

#define TARGETS "{\"targets\":[{\"region\":\"" REGION "\",\"bucket\":\"dest\"}],\"objects\":["

/* Members without an entry before the manifest are marked as looked at in a
 * bitmap, so that the second walk does not say them again: 8,300 of them
 * (past the bitmap's second growth, to a bit count that is not a multiple
 * of 8) are each counted once, and the one object with an entry is written. */
TEST(process_thousands_of_members_without_entries_before_the_manifest_count_once)
{
	enum { N = 8300 };
	tu_member *m = calloc(N + 2, sizeof(*m));
	char (*names)[24] = calloc(N, sizeof(*names));
	CHECK(m && names);
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "objects/u%zu", i);
		m[i] = (tu_member){names[i], "x", 1, 0};
	}
	m[N] = (tu_member){"objects/o0", "body", 4, 0};
	static const char manifest[] = TARGETS
		"{\"source_bucket\":\"src\",\"source_prefix\":\"p\",\"object_name\":\"o0\",\"size\":4}]}";
	m[N + 1] = (tu_member){"manifest.json", manifest, sizeof(manifest) - 1, 0};
	tu_fault *f = NULL;
	trs_report *rep = NULL;
	int rc = restore_members(m, N + 2, 0, &f, &rep);
	int ok = rc == 0 && rep && rep->objects_written == 1 && rep->members_skipped == N;
	if (!ok)
		printf("  rc %d, written %llu, members skipped %llu\n", rc,
		       rep ? (unsigned long long)rep->objects_written : 0ull,
		       rep ? (unsigned long long)rep->members_skipped : 0ull);
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	free(names);
	free(m);
	CHECK(ok);
}

/* Two entries, one relative_key (two destination keys, one member): the
 * first is written, the second fails; never exit 0 with it missing. */
TEST(process_second_entry_with_the_same_relative_key_fails)
{
	tu_member m[] = {
		{"objects/r", "bytes", 0, 0},
		{"manifest.json", TARGETS "{\"object_name\":\"one\",\"relative_key\":\"r\",\"size\":5},"
				  "{\"object_name\":\"two\",\"relative_key\":\"r\",\"size\":5}]}", 0, 0},
	};
	tu_fault *f;
	trs_report *rep = NULL;
	int rc = restore_members(m, 2, 0, &f, &rep);
	int ok = rc == TRS_EPARTIAL && rep->objects_written == 1 && rep->objects_failed == 1 && rep->nfailures == 1 &&
		 reported(rep, "dest", "two") && rep->failures[0].code == TRS_EMANIFEST &&
		 strstr(rep->failures[0].message, "same relative_key") && tu_mem_find(f->inner, "dest", "one") &&
		 !tu_mem_find(f->inner, "dest", "two");
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	CHECK(ok);
}

/* Two entries, one destination key: the later entry in the manifest wins, whatever the timing. */
TEST(process_later_entry_wins_a_destination_key)
{
	int ok = 1;
	for (int round = 0; round < 20 && ok; round++) {
		tu_member m[] = {
			{"objects/b", "later", 0, 0},
			{"objects/a", "earlier", 0, 0},
			{"manifest.json", TARGETS "{\"object_name\":\"k\",\"relative_key\":\"a\"},"
					  "{\"object_name\":\"k\",\"relative_key\":\"b\"}]}", 0, 0},
		};
		tu_fault *f;
		trs_report *rep = NULL;
		int rc = restore_members(m, 3, 0, &f, &rep);
		const tu_mem_object *o = tu_mem_find(f->inner, "dest", "k");
		ok = rc == 0 && o && o->len == 5 && !memcmp(o->data, "later", 5) && rep->objects_written == 1 &&
		     rep->objects_superseded == 1 && rep->nfailures == 0 && f->writes == 1;
		trs_report_free(rep);
		trs_storage_free(&f->parent);
	}
	CHECK(ok);
}

/* objects/x twice in the tar: Python's tarfile reads the last copy; so do we. */
TEST(process_duplicate_tar_member_last_copy_wins)
{
	static const char *const manifests[] = {
		TARGETS "{\"object_name\":\"x\",\"size\":4}]}",
		TARGETS "{\"object_name\":\"x\"}]}",
	};
	for (int variant = 0; variant < 4; variant++) {
		int manifest_first = variant & 1;
		tu_member m[3];
		tu_member first = {"objects/x", "old!!", 0, 0}, last = {"objects/x", "new!", 0, 0};
		tu_member man = {"manifest.json", manifests[variant >> 1], 0, 0};
		m[0] = manifest_first ? man : first;
		m[1] = manifest_first ? first : last;
		m[2] = manifest_first ? last : man;
		tu_fault *f;
		trs_report *rep = NULL;
		int rc = restore_members(m, 3, 0, &f, &rep);
		const tu_mem_object *o = tu_mem_find(f->inner, "dest", "x");
		int ok = rc == 0 && o && o->len == 4 && !memcmp(o->data, "new!", 4) && rep->objects_written == 1 &&
			 rep->objects_failed == 0 && rep->nfailures == 0;
		if (!ok)
			printf("  variant %d: rc %d\n", variant, rc);
		trs_report_free(rep);
		trs_storage_free(&f->parent);
		CHECK(ok);
	}
}

/* The last copy is the one that counts: when it is corrupt, the object fails. */
TEST(process_duplicate_tar_member_with_a_bad_last_copy_fails)
{
	tu_member m[] = {
		{"objects/x", "good", 0, 0},
		{"objects/x", "bad copy", 0, 0},
		{"manifest.json", TARGETS "{\"object_name\":\"x\",\"size\":4}]}", 0, 0},
	};
	tu_fault *f;
	trs_report *rep = NULL;
	int rc = restore_members(m, 3, 0, &f, &rep);
	int ok = rc == TRS_EPARTIAL && rep->objects_written == 0 && rep->objects_failed == 1 &&
		 reported(rep, "dest", "x") && rep->failures[0].code == TRS_EINTEGRITY;
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	CHECK(ok);
}

/* One unusable size fails that object alone; tags as one object are taken. */
TEST(process_unusable_size_fails_its_object_alone)
{
	tu_member m[] = {
		{"objects/a", "aaa", 0, 0},
		{"objects/b", "bbb", 0, 0},
		{"manifest.json", TARGETS "{\"object_name\":\"a\",\"size\":\"3\"},"
				  "{\"object_name\":\"b\",\"size\":3,\"tags\":{\"team\":\"fin\"}}]}", 0, 0},
	};
	tu_fault *f;
	trs_report *rep = NULL;
	int rc = restore_members(m, 3, 0, &f, &rep);
	const tu_mem_object *b = tu_mem_find(f->inner, "dest", "b");
	int ok = rc == TRS_EPARTIAL && rep->objects_written == 1 && rep->objects_failed == 1 && reported(rep, "dest", "a") &&
		 rep->failures[0].code == TRS_EMANIFEST && !tu_mem_find(f->inner, "dest", "a") && b && b->ntags == 1 &&
		 !strcmp(b->tags[0].key, "team") && !strcmp(b->tags[0].value, "fin");
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	CHECK(ok);
}

/* "a\ud800" and "a\udc00" both read as "a?": neither is written over the other; both fail. */
TEST(process_keys_with_lone_surrogates_fail)
{
	tu_member m[] = {
		{"objects/x", "one", 0, 0},
		{"objects/y", "two", 0, 0},
		{"manifest.json", TARGETS "{\"object_name\":\"a\\ud800\",\"relative_key\":\"x\"},"
				  "{\"object_name\":\"a\\udc00\",\"relative_key\":\"y\"}]}", 0, 0},
	};
	tu_fault *f;
	trs_report *rep = NULL;
	int rc = restore_members(m, 3, 0, &f, &rep);
	int ok = rc == TRS_EPARTIAL && rep->objects_failed == 2 && rep->objects_written == 0 && f->writes == 0 &&
		 rep->failures[0].code == TRS_EUNSAFE && strstr(rep->failures[0].message, "surrogate");
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	CHECK(ok);
}

/* A second manifest.json: the same bytes, a warning; other bytes, the archive is refused. */
TEST(process_second_manifest_same_is_read_once_other_is_refused)
{
	const char *one = TARGETS "{\"object_name\":\"a\",\"size\":3}]}";
	const char *two = TARGETS "{\"object_name\":\"a\",\"size\":3},{\"object_name\":\"b\"}]}";
	tu_member same[] = {{"manifest.json", one, 0, 0}, {"objects/a", "aaa", 0, 0}, {"./manifest.json", one, 0, 0}};
	tu_member other[] = {{"objects/a", "aaa", 0, 0}, {"manifest.json", one, 0, 0}, {"manifest.json", two, 0, 0}};
	tu_fault *f;
	trs_report *rep = NULL;
	int rc = restore_members(same, 3, 0, &f, &rep);
	int ok_same = rc == 0 && rep->objects_written == 1 && tu_mem_find(f->inner, "dest", "a");
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	rep = NULL;
	int rc2 = restore_members(other, 3, 0, &f, &rep);
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	CHECK(ok_same);
	CHECK(rc2 == TRS_EMANIFEST);
}

/* trs_process_from_storage: the fetch-process-finish of `trs process s3://` and `trs serve`. */
TEST(process_from_storage_fetches_restores_and_finishes)
{
	fixture fx;
	CHECK(make_archive(&fx, 30, small_size, NULL) == 0);
	trs_ctx *ctx = new_ctx(0);
	trs_storage *staging = tu_mem_storage_new();
	tu_mem_put_bytes(staging, "staging", "in/a.tar.zst", fx.z, fx.zlen);
	tu_fault *dest = tu_fault_new(tu_mem_storage_new());
	trs_report *rep = NULL;
	trs_error err = TRS_ERROR_INIT;
	trs_process_options po = TRS_PROCESS_OPTIONS_INIT;
	int rc = trs_process_from_storage(ctx, &dest->parent, staging, "staging", "in/a.tar.zst", NULL, &po, &rep, &err);
	if (rc)
		printf("  %s\n", err.message);
	int ok = rc == 0 && rep && rep->objects_written == 30 && rep->seconds_download >= 0 &&
		 tu_mem_find(dest->inner, "dest", "p/o29");
	trs_report_free(rep);
	rep = NULL;
	CHECK(ok);

	/* No such archive: TRS_ENOTFOUND from the fetch, and no report. */
	rc = trs_process_from_storage(ctx, &dest->parent, staging, "staging", "in/gone.tar.zst", NULL, NULL, &rep, &err);
	CHECK(rc == TRS_ENOTFOUND);
	CHECK(rep == NULL);

	/* A truncated archive fails the restore, whatever was written before the cut. */
	tu_mem_put_bytes(staging, "staging", "in/cut.tar.zst", fx.z, fx.zlen / 2);
	rc = trs_process_from_storage(ctx, &dest->parent, staging, "staging", "in/cut.tar.zst", NULL, NULL, &rep, &err);
	CHECK(rc < 0);
	trs_report_free(rep);
	trs_storage_free(&dest->parent);
	trs_storage_free(staging);
	trs_ctx_free(ctx);
	free_fixture(&fx);
}

static size_t two_kib(size_t i)
{
	return 2048 - i % 3;
}

/* Over the memory budget, small objects before the manifest go to a spool in TMPDIR instead
 * of a second pass over the archive; a put failing on the way is reported exactly. */
TEST(process_small_objects_over_the_budget_are_spooled_in_one_pass)
{
	enum { N = 1500 };
	fixture fx;
	CHECK(make_archive(&fx, N, two_kib, NULL) == 0);
	char tmp[] = "/tmp/trs-spool-test-XXXXXX";
	CHECK(mkdtemp(tmp));
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	setenv("TMPDIR", tmp, 1);
	trs_ctx *ctx = new_ctx(1 << 20); /* 3 MiB of objects, 0.5 MiB of budget */
	tu_fault *f = tu_fault_new(tu_mem_storage_new());
	f->fail_nth = N - 10;
	trs_report *rep = NULL;
	int rc = run(ctx, f, &fx, NULL, &rep);
	int same = 1;
	for (size_t i = 0; i < N; i++) {
		char key[32];
		snprintf(key, sizeof(key), "p/o%zu", i);
		const tu_mem_object *o = tu_mem_find(f->inner, "dest", key);
		same &= !o || (o->len == two_kib(i) && !memcmp(o->data, fx.bodies[i], o->len));
	}
	int left = 0;
	DIR *d = opendir(tmp);
	struct dirent *de;
	while (d && (de = readdir(d)))
		left += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	rmdir(tmp);
	if (saved)
		setenv("TMPDIR", saved, 1);
	else
		unsetenv("TMPDIR");
	free(saved);
	int one_pass = rep && rep->passes == 1;
	int exact = rep && rep->objects_written == N - 1 && rep->objects_failed == 1 && rep->nfailures == 1 &&
		    ((tu_mem_storage *)f->inner)->nobjects == N - 1;
	if (rep && !one_pass)
		printf("  passes %u\n", rep->passes);
	trs_report_free(rep);
	trs_storage_free(&f->parent);
	trs_ctx_free(ctx);
	free_fixture(&fx);
	CHECK(rc == TRS_EPARTIAL);
	CHECK(one_pass);
	CHECK(exact);
	CHECK(same);
	CHECK(d && left == 0);
}

TEST(report_failure_list_grows_by_one_append_path)
{
	trs_report *rep = trs__report_new("a.tar.zst", NULL);
	CHECK(rep);
	int ok = 1;
	for (int i = 0; i < 5000 && ok; i++) {
		char key[32];
		snprintf(key, sizeof(key), "k%d", i);
		ok = trs__report_add_failure(rep, key, i % 2 ? "b" : "", key, TRS_EIO, "m", NULL) == 0;
	}
	ok = ok && rep->nfailures == 5000 && !strcmp(rep->failures[4999].key, "k4999") &&
	     !strcmp(rep->failures[0].relative_key, "k0") && !strcmp(rep->failures[1].bucket, "b");
	trs_report_free(rep);
	CHECK(ok);
}

int main(void)
{
	RUN(process_without_faults_writes_every_object);
	RUN(process_progress_carries_the_bytes_written_while_the_objects_are_written);
	RUN(process_failing_the_kth_put_reports_exactly_that_object);
	RUN(process_failing_the_kth_streamed_put_reports_exactly_that_object);
	RUN(process_failing_puts_by_key_fails_only_that_key);
	RUN(process_reports_thousands_of_failures_from_both_paths);
	RUN(process_unmatched_name_and_one_failing_put_are_both_reported);
	RUN(process_second_entry_with_the_same_relative_key_fails);
	RUN(process_later_entry_wins_a_destination_key);
	RUN(process_duplicate_tar_member_last_copy_wins);
	RUN(process_duplicate_tar_member_with_a_bad_last_copy_fails);
	RUN(process_unusable_size_fails_its_object_alone);
	RUN(process_keys_with_lone_surrogates_fail);
	RUN(process_second_manifest_same_is_read_once_other_is_refused);
	RUN(process_from_storage_fetches_restores_and_finishes);
	RUN(process_small_objects_over_the_budget_are_spooled_in_one_pass);
	RUN(report_failure_list_grows_by_one_append_path);
	RUN(process_thousands_of_members_without_entries_before_the_manifest_count_once);
	return harness_done();
}
