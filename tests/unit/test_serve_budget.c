/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The archives in flight of one trs_serve share one budget of memory and
 * writers (lib/core/budget.c): a large archive alone uses more than the 1/N
 * share each archive had before, the totals stay within the limits, and a
 * small archive that arrives while a large one holds everything is not held
 * behind it.
 *
 * Archives are read from a fs staging directory through a dir:// queue, and
 * written to an in-memory destination whose puts take a while and are
 * counted: in flight at once, and when each archive's last put finished.
 * The budget's high-water marks come from the "serve stopped" log line.
 *
 * Also: with more memory than its old share, a run could push a whole large
 * object to an upload that waits for the storage's own memory (S3's part
 * pool) and start the next; the next streamed object now waits until the
 * last one's upload reads.
 */
#include "fault_storage.h"
#include "harness.h"
#include "internal.h"
#include "testutil.h"
#include "trs/serve.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REGION "eu-west-1"
#define MAX_MEMORY (4u << 20)
#define WRITERS 8
#define ARCHIVES 2
#define OBJECT_BYTES (64u << 10)
#define PUT_DELAY_US 20000
#define SLOW_PUT_DELAY_US 100000 /* the queue of jobs fills even when the reader is slow (sanitizers) */

/* ---- a destination whose puts are slow and counted ---- */

typedef struct gauge {
	trs_storage parent;
	trs_storage *inner;
	pthread_mutex_t mu;
	unsigned int in_flight, peak;      /* all puts */
	unsigned int big_in_flight, big_peak_alone; /* the big archive's, while no small put was seen */
	int small_seen;
	useconds_t delay_us;
	double last_big, last_small;       /* when each archive's last put finished */
} gauge;

static int gauge_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	gauge *g = (gauge *)self;
	int big = !strncmp(req->key, "big/", 4);
	pthread_mutex_lock(&g->mu);
	g->in_flight++;
	if (g->in_flight > g->peak)
		g->peak = g->in_flight;
	if (big && ++g->big_in_flight > g->big_peak_alone && !g->small_seen)
		g->big_peak_alone = g->big_in_flight;
	if (!big)
		g->small_seen = 1;
	pthread_mutex_unlock(&g->mu);
	usleep(g->delay_us);
	int rc = trs_upload(g->inner, req, body, err);
	pthread_mutex_lock(&g->mu);
	g->in_flight--;
	if (big) {
		g->big_in_flight--;
		g->last_big = trs__now();
	} else {
		g->last_small = trs__now();
	}
	pthread_mutex_unlock(&g->mu);
	return rc;
}

static void gauge_free(trs_storage *self)
{
	gauge *g = (gauge *)self;
	trs_storage_free(g->inner);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static gauge *gauge_new(useconds_t delay_us)
{
	gauge *g = calloc(1, sizeof(*g));
	g->delay_us = delay_us;
	trs_storage_init_backend(&g->parent, TRS_STORAGE_VERSION);
	g->parent.name = "gauge";
	g->parent.put = gauge_put;
	g->parent.free = gauge_free;
	g->inner = tu_mem_storage_new();
	pthread_mutex_init(&g->mu, NULL);
	return g;
}

/* ---- archives, staging and the queue ---- */

static char staging_root[256], queue_root[256];

/* An archive of n objects of OBJECT_BYTES under prefix, manifest first, in staging/<prefix>.tar.zst. */
static int stage_archive(const char *prefix, size_t n)
{
	tu_member *m = calloc(n + 1, sizeof(*m));
	size_t cap = 256 + n * 128;
	char *json = malloc(cap);
	char *data = malloc(OBJECT_BYTES);
	size_t len = (size_t)snprintf(json, cap, "{\"targets\":[{\"region\":\"" REGION "\",\"bucket\":\"dest\"}],\"objects\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(json + len, cap - len,
					"%s{\"source_bucket\":\"src\",\"source_prefix\":\"%s\",\"object_name\":\"o%zu\","
					"\"size\":%u}",
					i ? "," : "", prefix, i, OBJECT_BYTES);
	len += (size_t)snprintf(json + len, cap - len, "]}");
	m[0] = (tu_member){.path = "manifest.json", .data = json, .len = len};
	for (size_t k = 0; k < OBJECT_BYTES; k++)
		data[k] = (char)('a' + k % 26);
	char **paths = calloc(n, sizeof(*paths));
	for (size_t i = 0; i < n; i++) {
		paths[i] = malloc(32);
		snprintf(paths[i], 32, "objects/o%zu", i);
		m[i + 1] = (tu_member){.path = paths[i], .data = data, .len = OBJECT_BYTES};
	}
	unsigned char *z = NULL;
	size_t zlen = tu_archive(m, n + 1, 1, 1, &z);
	char path[512];
	snprintf(path, sizeof(path), "%s/staging/%s.tar.zst", staging_root, prefix);
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(z, 1, zlen, f) == zlen;
	if (f)
		fclose(f);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(m);
	free(json);
	free(data);
	free(z);
	return ok ? 0 : -1;
}

/* Queue the S3 event of staging/<prefix>.tar.zst (written aside, then renamed in). */
static void queue_event(const char *prefix)
{
	char tmp[512], path[512];
	snprintf(tmp, sizeof(tmp), "%s/.new-%s", queue_root, prefix);
	snprintf(path, sizeof(path), "%s/%s.json", queue_root, prefix);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f,
		"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":"
		"{\"name\":\"staging\"},\"object\":{\"key\":\"%s.tar.zst\"}}}]}",
		prefix);
	fclose(f);
	if (rename(tmp, path) != 0)
		printf("  cannot queue %s\n", path);
}

/* Files left in a directory and its .inflight (dot files aside). */
static int files_left(const char *dir)
{
	int n = 0;
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/.inflight", dir);
	const char *dirs[] = {dir, sub};
	for (int d = 0; d < 2; d++) {
		DIR *h = opendir(dirs[d]);
		for (struct dirent *e; h && (e = readdir(h));)
			n += e->d_name[0] != '.';
		if (h)
			closedir(h);
	}
	return n;
}

/* ---- the budget's figures from the log ---- */

typedef struct {
	pthread_mutex_t mu;
	uint64_t memory_peak, memory_limit;
	unsigned int writers_peak, writers;
} serve_log;

static void on_log(trs_log_level level, const char *message, const trs_log_field *fields, size_t n, void *ud)
{
	(void)level;
	serve_log *l = ud;
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < n; i++) {
		unsigned long long v = strtoull(fields[i].value ? fields[i].value : "0", NULL, 10);
		if (!strcmp(message, "serve stopped") && !strcmp(fields[i].key, "object_memory_peak"))
			l->memory_peak = v;
		if (!strcmp(message, "serve stopped") && !strcmp(fields[i].key, "writers_peak"))
			l->writers_peak = (unsigned int)v;
		if (!strcmp(message, "serving") && !strcmp(fields[i].key, "object_memory"))
			l->memory_limit = v;
		if (!strcmp(message, "serving") && !strcmp(fields[i].key, "writers"))
			l->writers = (unsigned int)v;
	}
	pthread_mutex_unlock(&l->mu);
}

typedef struct {
	const char *prefix;
	useconds_t after_us;
} late_event;

static void *queue_later(void *arg)
{
	late_event *e = arg;
	usleep(e->after_us);
	queue_event(e->prefix);
	return NULL;
}

/* Serve the queue until idle: the big archive at once, the small one (if any) `small_after_us` later. */
static int serve_archives(gauge *g, serve_log *log, size_t big_objects, size_t small_objects, useconds_t small_after_us)
{
	trs_storage *staging = tu_fs_fresh(staging_root, sizeof(staging_root), "trs-budget-staging");
	snprintf(queue_root, sizeof(queue_root), "/tmp/trs-budget-queue-XXXXXX");
	if (!staging || !mkdtemp(queue_root))
		return -1;
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/staging", staging_root);
	mkdir(dir, 0755);
	if (stage_archive("big", big_objects) < 0 || (small_objects && stage_archive("small", small_objects) < 0))
		return -1;

	memset(log, 0, sizeof(*log));
	pthread_mutex_init(&log->mu, NULL);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	co.region = REGION;
	co.workers = WRITERS;
	co.max_inflight = WRITERS;
	co.max_memory = MAX_MEMORY;
	co.log = on_log;
	co.log_userdata = log;
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	trs_queue *q = NULL;
	char url[300];
	snprintf(url, sizeof(url), "dir://%s", queue_root);
	if (trs_ctx_new(&ctx, &co, &err) < 0 || trs_queue_open(&q, ctx, url, &err) < 0) {
		printf("  setup: %s\n", err.message);
		return -1;
	}
	trs_serve_options o = TRS_SERVE_OPTIONS_INIT;
	o.archives = ARCHIVES;
	o.max_messages = 10;
	o.wait_seconds = 0;
	o.wait_set = 1;
	o.max_idle = 1.0;
	o.staging = staging;
	queue_event("big");
	late_event late = {"small", small_after_us};
	pthread_t t;
	if (small_objects)
		pthread_create(&t, NULL, queue_later, &late);
	int rc = trs_serve(ctx, q, &g->parent, &o, &err);
	if (rc < 0)
		printf("  serve: %s\n", err.message);
	if (small_objects)
		pthread_join(t, NULL);
	int left = files_left(queue_root) + files_left(dir);
	trs_queue_free(q);
	trs_ctx_free(ctx);
	tu_fs_cleanup(staging, staging_root);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", queue_root);
	if (system(cmd) != 0)
		printf("  cleanup of %s failed\n", queue_root);
	pthread_mutex_destroy(&log->mu);
	if (left)
		printf("  %d messages or archives left\n", left);
	return rc < 0 ? rc : left ? -1 : 0;
}

/* Every object of prefix/o0..n-1 in the destination, whole. */
static int all_written(gauge *g, const char *prefix, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char key[64];
		snprintf(key, sizeof(key), "%s/o%zu", prefix, i);
		const tu_mem_object *o = tu_mem_find(g->inner, "dest", key);
		if (!o || o->len != OBJECT_BYTES || o->data[OBJECT_BYTES - 1] != (char)('a' + (OBJECT_BYTES - 1) % 26))
			return 0;
	}
	return 1;
}

TEST(one_archive_alone_takes_more_than_one_nth_of_the_memory_and_writers)
{
	gauge *g = gauge_new(SLOW_PUT_DELAY_US);
	serve_log log;
	CHECK(serve_archives(g, &log, 160, 0, 0) == 0);
	CHECK(all_written(g, "big", 160));
	CHECK(log.memory_limit == MAX_MEMORY && log.writers == WRITERS);
	/* Before, each of the 2 archives had 1/2: 2 MiB and 4 writers, whatever the other did. */
	printf("  alone: %u puts in flight at most, %llu bytes held at most\n", g->peak,
	       (unsigned long long)log.memory_peak);
	CHECK(g->peak > WRITERS / ARCHIVES);
	CHECK(log.memory_peak > MAX_MEMORY / ARCHIVES);
	/* ... and never more than the whole. */
	CHECK(g->peak <= WRITERS && log.writers_peak <= WRITERS);
	CHECK(log.memory_peak <= MAX_MEMORY);
	trs_storage_free(&g->parent);
}

TEST(a_small_archive_beside_a_large_one_is_not_held_behind_it)
{
	gauge *g = gauge_new(PUT_DELAY_US);
	serve_log log;
	/* The large one has every writer when the small one arrives (0.3 s in; it needs ~2 s alone). */
	CHECK(serve_archives(g, &log, 640, 3, 300000) == 0);
	CHECK(all_written(g, "big", 640) && all_written(g, "small", 3));
	printf("  together: the large one had %u puts in flight alone; the small one ended %.2f s before it\n",
	       g->big_peak_alone, g->last_big - g->last_small);
	CHECK(g->big_peak_alone > WRITERS / ARCHIVES);
	CHECK(g->last_small > 0 && g->last_small < g->last_big);
	CHECK(g->peak <= WRITERS && log.writers_peak <= WRITERS);
	CHECK(log.memory_peak <= MAX_MEMORY);
	trs_storage_free(&g->parent);
}

/* ---- one streamed object ahead, when the storage keeps memory of its own ---- */

typedef struct pool_storage {
	trs_storage parent;
	trs_storage *inner;
	pthread_mutex_t mu;
	double first_reads, second_called; /* when o0's upload began to read, when o1's put was called */
} pool_storage;

static int pool_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	pool_storage *p = (pool_storage *)self;
	if (!strcmp(req->key, "big/o0")) {
		usleep(300000); /* as an upload waiting for the pool's memory before it reads */
		pthread_mutex_lock(&p->mu);
		p->first_reads = trs__now();
		pthread_mutex_unlock(&p->mu);
	} else {
		pthread_mutex_lock(&p->mu);
		p->second_called = trs__now();
		pthread_mutex_unlock(&p->mu);
	}
	return trs_upload(p->inner, req, body, err);
}

static void pool_free(trs_storage *self)
{
	pool_storage *p = (pool_storage *)self;
	trs_storage_free(p->inner);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

TEST(the_next_large_object_waits_until_the_last_ones_upload_reads)
{
	pool_storage *p = calloc(1, sizeof(*p));
	trs_storage_init_backend(&p->parent, TRS_STORAGE_VERSION);
	p->parent.name = "pool";
	p->parent.put = pool_put;
	p->parent.free = pool_free;
	p->parent.reserved_memory = 1u << 20;
	p->inner = tu_mem_storage_new();
	pthread_mutex_init(&p->mu, NULL);
	/* Two objects of 3 MiB, streamed (chunks of 1 MiB); both fit the 7 MiB budget at once. */
	char *data = malloc(3u << 20);
	memset(data, 'x', 3u << 20);
	const char *json = "{\"targets\":[{\"region\":\"" REGION "\",\"bucket\":\"dest\"}],\"objects\":["
			   "{\"source_bucket\":\"src\",\"source_prefix\":\"big\",\"object_name\":\"o0\",\"size\":3145728},"
			   "{\"source_bucket\":\"src\",\"source_prefix\":\"big\",\"object_name\":\"o1\",\"size\":3145728}]}";
	tu_member m[] = {{.path = "manifest.json", .data = json},
			 {.path = "objects/o0", .data = data, .len = 3u << 20},
			 {.path = "objects/o1", .data = data, .len = 3u << 20}};
	unsigned char *z = NULL;
	size_t zlen = tu_archive(m, 3, 1, 1, &z);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	co.region = REGION;
	co.workers = 4;
	co.max_inflight = 4;
	co.max_memory = 8u << 20;
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &co, &err) == 0);
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.name = "two-large.tar.zst";
	src.data = z;
	src.size = zlen;
	trs_report *rep = NULL;
	int rc = trs_process(ctx, &p->parent, &src, NULL, &rep, &err);
	printf("  o1's put called %.3f s after o0's upload began to read\n", p->second_called - p->first_reads);
	CHECK(rc == 0 && rep->objects_written == 2);
	CHECK(p->first_reads > 0 && p->second_called >= p->first_reads);
	trs_report_free(rep);
	trs_ctx_free(ctx);
	trs_storage_free(&p->parent);
	free(data);
	free(z);
}

int main(void)
{
	RUN(one_archive_alone_takes_more_than_one_nth_of_the_memory_and_writers);
	RUN(a_small_archive_beside_a_large_one_is_not_held_behind_it);
	RUN(the_next_large_object_waits_until_the_last_ones_upload_reads);
	return harness_done();
}
