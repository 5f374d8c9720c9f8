/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the serve core (lib/serve*.c) on a scripted queue: an
 * in-memory trs_queue that hands out its messages and records every delete
 * and visibility change, and a staging storage whose archives are all gone
 * (a redelivery after success: counted as done), one of them slowly; then
 * real archives in an in-memory staging storage whose DELETE is slow or
 * fails, restored into an in-memory destination.
 */
#include "fault_storage.h"
#include "harness.h"
#include "internal.h"
#include "testutil.h"
#include "trs/serve.h"
#include "trs/sys/queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CALLS 64

typedef struct scripted_queue {
	trs_queue parent;
	pthread_mutex_t mu;
	const char *bodies[8];
	size_t nbodies, next;
	unsigned int receives;
	char deleted[MAX_CALLS][16];
	size_t ndeleted;
	char visibility[MAX_CALLS][24]; /* "id=seconds" */
	size_t nvisibility;
	unsigned int max_asked;
} scripted_queue;

static int sq_receive(trs_queue *self, const trs_queue_receive_options *o, trs_queue_message **out, size_t *count,
		      trs_error *err)
{
	(void)err;
	scripted_queue *q = (scripted_queue *)self;
	pthread_mutex_lock(&q->mu);
	q->receives++;
	if (o->max_messages > q->max_asked)
		q->max_asked = o->max_messages;
	size_t n = q->nbodies - q->next < o->max_messages ? q->nbodies - q->next : o->max_messages;
	trs_queue_message *m = n ? calloc(n, sizeof(*m)) : NULL;
	for (size_t i = 0; i < n; i++) {
		char id[16];
		snprintf(id, sizeof(id), "m%zu", q->next);
		m[i].id = strdup(id);
		m[i].receipt_handle = strdup(id); /* the handle is the id: easy to check */
		m[i].body = strdup(q->bodies[q->next]);
		m[i].body_len = strlen(m[i].body);
		m[i].receive_count = 1;
		q->next++;
	}
	pthread_mutex_unlock(&q->mu);
	if (!n) {
		/* An empty long poll: short here, and it honours the interrupt. */
		for (int i = 0; i < 4 && !(o->interrupt && __atomic_load_n(o->interrupt, __ATOMIC_ACQUIRE)); i++)
			usleep(10000);
	}
	*out = m;
	*count = n;
	return 0;
}

static int sq_delete(trs_queue *self, const char *const *handles, size_t count, int *codes, trs_error *err)
{
	(void)err;
	scripted_queue *q = (scripted_queue *)self;
	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < count; i++) {
		if (q->ndeleted < MAX_CALLS)
			snprintf(q->deleted[q->ndeleted++], 16, "%s", handles[i]);
		codes[i] = 0;
	}
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static int sq_visibility(trs_queue *self, const char *handle, unsigned int seconds, trs_error *err)
{
	(void)err;
	scripted_queue *q = (scripted_queue *)self;
	pthread_mutex_lock(&q->mu);
	if (q->nvisibility < MAX_CALLS)
		snprintf(q->visibility[q->nvisibility++], 24, "%s=%u", handle, seconds);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static void sq_init(scripted_queue *q, const char **bodies, size_t n)
{
	memset(q, 0, sizeof(*q));
	trs_queue_init_backend(&q->parent, TRS_QUEUE_VERSION);
	q->parent.name = "scripted";
	q->parent.receive = sq_receive;
	q->parent.delete_batch = sq_delete;
	q->parent.change_visibility = sq_visibility;
	pthread_mutex_init(&q->mu, NULL);
	for (size_t i = 0; i < n; i++)
		q->bodies[i] = bodies[i];
	q->nbodies = n;
}

static bool deleted(scripted_queue *q, const char *id)
{
	for (size_t i = 0; i < q->ndeleted; i++)
		if (!strcmp(q->deleted[i], id))
			return true;
	return false;
}

static bool visibility(scripted_queue *q, const char *call)
{
	for (size_t i = 0; i < q->nvisibility; i++)
		if (!strcmp(q->visibility[i], call))
			return true;
	return false;
}

static atomic_int gets_started; /* archives whose GET has begun: what a stop waits for */

/* Staging where every archive is already gone; "slow" ones take a while to say so. */
static int gone_get(trs_storage *self, const char *bucket, const char *key, uint64_t offset, uint64_t length,
		    trs_sink_fn sink, void *ud, trs_error *err)
{
	(void)self, (void)offset, (void)length, (void)sink, (void)ud;
	atomic_fetch_add(&gets_started, 1);
	if (strstr(key, "slow"))
		usleep(1500000);
	int rc = trs__error_set(err, TRS_ENOTFOUND, "no %s/%s", bucket, key);
	snprintf(err->aws_code, sizeof(err->aws_code), "NoSuchKey");
	return rc;
}

static int no_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	(void)self, (void)req, (void)body;
	return trs__error_set(err, TRS_EUNSUPPORTED, "no puts here");
}

static void gone_storage(trs_storage *s)
{
	trs_storage_init_backend(s, TRS_STORAGE_VERSION);
	s->name = "gone";
	s->get = gone_get;
	s->put = no_put;
}

#define EVENT(key)                                                                                               \
	"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":" \
	"\"staging\"},\"object\":{\"key\":\"" key "\"}}}]}"

TEST(done_messages_are_deleted_poison_is_left_and_the_batch_is_limited_by_free_runners)
{
	const char *bodies[] = {EVENT("a.tar.zst"), "{poison", "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}",
				EVENT("b.tar.zst")};
	scripted_queue q;
	sq_init(&q, bodies, 4);
	trs_storage st;
	gone_storage(&st);
	trs_serve_options o = TRS_SERVE_OPTIONS_INIT;
	o.max_messages = 10;
	o.archives = 3;
	o.max_idle = 0.3;
	o.wait_seconds = 0;
	o.wait_set = 1;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_serve(NULL, &q.parent, &st, &o, &err) == 0);
	CHECK(deleted(&q, "m0"));
	CHECK(!deleted(&q, "m1")); /* poison: left for the redrive policy */
	CHECK(deleted(&q, "m2"));  /* the test event */
	CHECK(deleted(&q, "m3"));
	CHECK(q.ndeleted == 3);
	CHECK(q.nvisibility == 0); /* nothing released, no heartbeat needed */
	CHECK(q.max_asked == 3);   /* never more messages than free runners */
}

/* Both vtables check versions one way: 1 to current at init, once when trs_serve takes them. */
TEST(backend_versions_are_checked_once_the_same_way_for_queue_and_storage)
{
	scripted_queue q;
	sq_init(&q, NULL, 0);
	CHECK(trs_queue_init_backend(&q.parent, 0) == TRS_EINVAL);
	CHECK(trs_queue_init_backend(&q.parent, TRS_QUEUE_VERSION + 1) == TRS_EINVAL);
	trs_storage st;
	CHECK(trs_storage_init_backend(&st, 0) == TRS_EINVAL);
	CHECK(trs_storage_init_backend(&st, TRS_STORAGE_VERSION + 1) == TRS_EINVAL);

	sq_init(&q, NULL, 0);
	gone_storage(&st);
	trs_serve_options o = TRS_SERVE_OPTIONS_INIT;
	o.max_idle = 0.1;
	o.wait_seconds = 0;
	o.wait_set = 1;
	trs_error err = TRS_ERROR_INIT;
	q.parent.version = TRS_QUEUE_VERSION + 1; /* a backend built against a newer library */
	CHECK(trs_serve(NULL, &q.parent, &st, &o, &err) == TRS_EINVAL);
	CHECK_CONTAINS(err.message, "queue backend 'scripted' has version");
	CHECK(q.max_asked == 0); /* refused before any receive */
	q.parent.version = TRS_QUEUE_VERSION;
	st.version = 0;
	CHECK(trs_serve(NULL, &q.parent, &st, &o, &err) == TRS_EINVAL);
	CHECK_CONTAINS(err.message, "storage backend 'gone' has version 0");
	st.version = TRS_STORAGE_VERSION;
	CHECK(trs_serve(NULL, &q.parent, &st, &o, &err) == 0);
}

static volatile int stop_flag; /* the public option's type: a signal handler's flag */

/* What a stop waits for: `count` reaching `want` (the work the test is about
 * is then in progress, whatever the load of the machine), or 10 s. */
typedef struct stop_when {
	atomic_int *count;
	int want;
} stop_when;

static void *stop_later(void *arg)
{
	const stop_when *w = arg;
	for (int i = 0; i < 1000 && atomic_load(w->count) < w->want; i++)
		usleep(10000);
	__atomic_store_n(&stop_flag, 1, __ATOMIC_SEQ_CST); /* as the library reads it */
	return NULL;
}

/* trs_serve on `q` with a stop request once `started` archives have begun (grace 30 s). */
static int serve_then_stop(scripted_queue *q, trs_serve_options *o, int started)
{
	trs_storage st;
	gone_storage(&st);
	o->wait_seconds = 0;
	o->wait_set = 1;
	o->shutdown_grace = 30;
	o->stop = &stop_flag;
	stop_flag = 0;
	atomic_store(&gets_started, 0);
	trs_error err = TRS_ERROR_INIT;
	pthread_t t;
	stop_when when = {&gets_started, started};
	pthread_create(&t, NULL, stop_later, &when);
	int rc = trs_serve(NULL, &q->parent, &st, o, &err);
	pthread_join(t, NULL);
	return rc;
}

TEST(a_stop_finishes_the_archives_in_progress_and_a_heartbeat_keeps_the_slow_one)
{
	const char *bodies[] = {EVENT("slow.tar.zst"), EVENT("p1.tar.zst"), EVENT("p2.tar.zst")};
	scripted_queue q;
	sq_init(&q, bodies, 3);
	trs_serve_options o = TRS_SERVE_OPTIONS_INIT;
	o.max_messages = 10;
	o.archives = 3;
	o.visibility_timeout = 3; /* a heartbeat every second */
	CHECK(serve_then_stop(&q, &o, 3) == 0);
	/* All three ran at once (three runners); the slow one finished within the grace
	 * period, the fast ones long before: all deleted, none released. */
	CHECK(deleted(&q, "m0") && deleted(&q, "m1") && deleted(&q, "m2"));
	CHECK(!visibility(&q, "m0=0"));
	CHECK(visibility(&q, "m0=3")); /* the slow one's heartbeat */
	CHECK(!visibility(&q, "m1=3")); /* done and deleted before its first heartbeat was due */
}

#define EVENT2(k1, k2)                                                                                           \
	"{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":" \
	"\"staging\"},\"object\":{\"key\":\"" k1 "\"}}},{\"eventSource\":\"aws:s3\",\"eventName\":"                \
	"\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"staging\"},\"object\":{\"key\":\"" k2 "\"}}}]}"

TEST(work_not_started_at_a_stop_is_released_at_once)
{
	/* One message naming two archives: the first is slow and finishes within the
	 * grace period; the second is not started after the stop, so the message is
	 * neither deleted nor left to its timeout: it is made visible again. */
	const char *bodies[] = {EVENT2("slow.tar.zst", "next.tar.zst")};
	scripted_queue q;
	sq_init(&q, bodies, 1);
	trs_serve_options o = TRS_SERVE_OPTIONS_INIT;
	o.archives = 1;
	CHECK(serve_then_stop(&q, &o, 1) == 0);
	CHECK(q.ndeleted == 0);
	CHECK(visibility(&q, "m0=0"));
}

/* ---- staging deletes: real archives, a staging storage whose DELETE is slow or fails ---- */

#define REGION "eu-west-1"

typedef struct slow_staging {
	trs_storage parent;
	trs_storage *inner; /* a tu_mem_storage holding the archives */
	scripted_queue *q;  /* to see, when a delete returns, whether its message is gone already */
	unsigned int delete_ms;
	int fail;           /* every delete fails, as without s3:DeleteObject */
	pthread_mutex_t mu;
	double t0;
	double get_at[4];     /* when the GET of archive i started (-1: never) */
	double deleted_at[4]; /* when the staging delete of archive i returned (-1: never) */
	bool message_gone_first[4]; /* its message was deleted before its staging delete returned */
} slow_staging;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "in/a<i>.tar.zst" or "in/slow-a<i>.tar.zst": i. */
static int archive_index(const char *key)
{
	const char *a = strstr(key, "a");
	return a && a[1] >= '0' && a[1] <= '3' ? a[1] - '0' : 0;
}

static int ss_get(trs_storage *self, const char *bucket, const char *key, uint64_t offset, uint64_t length,
		  trs_sink_fn sink, void *ud, trs_error *err)
{
	slow_staging *s = (slow_staging *)self;
	pthread_mutex_lock(&s->mu);
	int i = archive_index(key);
	if (s->get_at[i] < 0)
		s->get_at[i] = now_s() - s->t0;
	pthread_mutex_unlock(&s->mu);
	return trs_storage_get(s->inner, bucket, key, offset, length, sink, ud, err);
}

static int ss_head(trs_storage *self, const char *bucket, const char *key, trs_object_info *info, trs_error *err)
{
	return trs_storage_head(((slow_staging *)self)->inner, bucket, key, info, err);
}

static atomic_int deletes_started; /* staging deletes begun: what a stop waits for */

static int ss_del(trs_storage *self, const char *bucket, const char *key, trs_error *err)
{
	slow_staging *s = (slow_staging *)self;
	atomic_fetch_add(&deletes_started, 1);
	if (strstr(key, "slow"))
		usleep(s->delete_ms * 1000);
	int i = archive_index(key);
	char id[16];
	snprintf(id, sizeof(id), "m%d", i); /* archive i is in message i */
	pthread_mutex_lock(&s->q->mu);
	bool gone = deleted(s->q, id);
	pthread_mutex_unlock(&s->q->mu);
	pthread_mutex_lock(&s->mu);
	s->deleted_at[i] = now_s() - s->t0;
	s->message_gone_first[i] = gone;
	pthread_mutex_unlock(&s->mu);
	if (s->fail) {
		int rc = trs__error_set(err, TRS_EAUTH, "Access Denied deleting s3://%s/%s", bucket, key);
		snprintf(err->aws_code, sizeof(err->aws_code), "AccessDenied");
		return rc;
	}
	return 0;
}

static void ss_init(slow_staging *s, scripted_queue *q, const char **keys, size_t n)
{
	memset(s, 0, sizeof(*s));
	trs_storage_init_backend(&s->parent, TRS_STORAGE_VERSION);
	s->parent.name = "slow-staging";
	s->parent.get = ss_get;
	s->parent.head = ss_head;
	s->parent.del = ss_del;
	s->parent.put = no_put;
	s->inner = tu_mem_storage_new();
	s->q = q;
	s->delete_ms = 2000;
	pthread_mutex_init(&s->mu, NULL);
	for (size_t i = 0; i < 4; i++)
		s->get_at[i] = s->deleted_at[i] = -1;
	for (size_t i = 0; i < n; i++) {
		/* Two objects, the manifest last, as the source side packs them. */
		char manifest[512], b0[16], b1[16];
		snprintf(b0, sizeof(b0), "zero-%zu", i);
		snprintf(b1, sizeof(b1), "one-%zu", i);
		snprintf(manifest, sizeof(manifest),
			 "{\"targets\":[{\"region\":\"" REGION "\",\"bucket\":\"dest\"}],\"objects\":["
			 "{\"source_bucket\":\"src\",\"source_prefix\":\"a%zu\",\"object_name\":\"o0\",\"size\":%zu},"
			 "{\"source_bucket\":\"src\",\"source_prefix\":\"a%zu\",\"object_name\":\"o1\",\"size\":%zu}]}",
			 i, strlen(b0), i, strlen(b1));
		tu_member m[] = {{"objects/o0", b0, 0, 0}, {"objects/o1", b1, 0, 0}, {"manifest.json", manifest, 0, 0}};
		unsigned char *z = NULL;
		size_t zlen = tu_archive(m, 3, 1, 1, &z);
		tu_mem_put_bytes(s->inner, "staging", keys[i], z, zlen);
		free(z);
	}
}

typedef struct captured {
	pthread_mutex_t mu;
	char lines[64][512];
	size_t n;
} captured;

/* Each record as "LEVEL message key=value ...". */
static void capture(trs_log_level level, const char *message, const trs_log_field *f, size_t n, void *ud)
{
	captured *c = ud;
	pthread_mutex_lock(&c->mu);
	if (c->n < 64) {
		char *line = c->lines[c->n++];
		size_t len = (size_t)snprintf(line, 512, "%d %s", (int)level, message);
		for (size_t i = 0; i < n && len < 512; i++)
			len += (size_t)snprintf(line + len, 512 - len, " %s=%s", f[i].key, f[i].value ? f[i].value : "");
	}
	pthread_mutex_unlock(&c->mu);
}

/* The first record holding every one of `parts` (NULL-terminated); NULL when none. */
static const char *logged(captured *c, const char *const *parts)
{
	for (size_t i = 0; i < c->n; i++) {
		bool all = true;
		for (size_t k = 0; parts[k] && all; k++)
			all = strstr(c->lines[i], parts[k]) != NULL;
		if (all)
			return c->lines[i];
	}
	return NULL;
}

static trs_ctx *logging_ctx(captured *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	co.region = REGION;
	co.workers = 2;
	co.max_inflight = 4;
	co.log = capture;
	co.log_userdata = c;
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_ctx_new(&ctx, &co, &err) < 0)
		printf("  ctx: %s\n", err.message);
	return ctx;
}

/* Both objects of archive i are in the destination. */
static bool restored(trs_storage *dest, size_t i)
{
	char k0[16], k1[16], b0[16], b1[16];
	snprintf(k0, sizeof(k0), "a%zu/o0", i);
	snprintf(k1, sizeof(k1), "a%zu/o1", i);
	snprintf(b0, sizeof(b0), "zero-%zu", i);
	snprintf(b1, sizeof(b1), "one-%zu", i);
	const tu_mem_object *o0 = tu_mem_find(dest, "dest", k0), *o1 = tu_mem_find(dest, "dest", k1);
	return o0 && o1 && o0->len == strlen(b0) && o1->len == strlen(b1) && !memcmp(o0->data, b0, o0->len) &&
	       !memcmp(o1->data, b1, o1->len);
}

/* A serve run over a scripted queue, the slow staging and an in-memory destination. */
typedef struct delete_run {
	scripted_queue q;
	slow_staging st;
	trs_storage *dest;
	captured logs;
	trs_ctx *ctx;
	trs_serve_options o;
} delete_run;

static void delete_run_init(delete_run *r, const char **keys, const char **bodies, size_t n)
{
	sq_init(&r->q, bodies, n);
	ss_init(&r->st, &r->q, keys, n);
	r->dest = tu_mem_storage_new();
	r->ctx = logging_ctx(&r->logs);
	trs_serve_options o = TRS_SERVE_OPTIONS_INIT;
	o.staging = &r->st.parent;
	o.max_idle = 0.3;
	o.wait_seconds = 0;
	o.wait_set = 1;
	r->o = o;
}

static int delete_run_serve(delete_run *r)
{
	trs_error err = TRS_ERROR_INIT;
	r->st.t0 = now_s();
	return trs_serve(r->ctx, &r->q.parent, r->dest, &r->o, &err);
}

static void delete_run_free(delete_run *r)
{
	trs_storage_free(r->dest);
	trs_storage_free(r->st.inner);
	trs_ctx_free(r->ctx);
}

static delete_run run; /* large (the captured log): not on the stack */

TEST(a_slow_staging_delete_holds_neither_the_runner_nor_the_heartbeat_nor_the_order)
{
	/* One runner; the first archive's staging DELETE takes 2 s. The runner
	 * goes on with the second message at once, whose message is deleted
	 * first; the first message keeps its heartbeat while its delete is
	 * pending and is deleted only after that delete returned. */
	const char *keys[] = {"in/slow-a0.tar.zst", "in/a1.tar.zst"};
	const char *bodies[] = {EVENT("in/slow-a0.tar.zst"), EVENT("in/a1.tar.zst")};
	delete_run *r = &run;
	delete_run_init(r, keys, bodies, 2);
	r->o.max_messages = 1; /* one message per receive: the second is received after the first is taken */
	r->o.archives = 1;
	r->o.visibility_timeout = 3; /* a heartbeat every second */
	r->o.max_idle = 0.5;
	CHECK(delete_run_serve(r) == 0);
	CHECK(restored(r->dest, 0) && restored(r->dest, 1));
	CHECK(r->st.deleted_at[0] >= 2.0);
	CHECK(r->st.get_at[1] >= 0 && r->st.get_at[1] < r->st.deleted_at[0]); /* the next archive did not wait */
	CHECK(deleted(&r->q, "m0") && deleted(&r->q, "m1") && r->q.ndeleted == 2);
	CHECK(!strcmp(r->q.deleted[0], "m1")); /* the fast message went first */
	CHECK(!r->st.message_gone_first[0] && !r->st.message_gone_first[1]); /* staging first, then the message */
	CHECK(visibility(&r->q, "m0=3")); /* heartbeats go on while its delete is pending */
	CHECK(!visibility(&r->q, "m0=0")); /* never released */
	CHECK(logged(&r->logs,
		     (const char *[]){"archive restored", "key=in/slow-a0.tar.zst", "seconds_cleanup=2.", NULL}));
	CHECK(logged(&r->logs, (const char *[]){"serve stopped", "archives_done=2", "archives_failed=0", NULL}));
	delete_run_free(r);
}

TEST(a_failing_staging_delete_counts_the_archive_done_and_deletes_its_message_with_a_warning)
{
	const char *keys[] = {"in/a0.tar.zst"};
	const char *bodies[] = {EVENT("in/a0.tar.zst")};
	delete_run *r = &run;
	delete_run_init(r, keys, bodies, 1);
	r->st.fail = 1;
	r->o.archives = 2;
	CHECK(delete_run_serve(r) == 0);
	CHECK(restored(r->dest, 0));
	CHECK(r->st.deleted_at[0] >= 0 && !r->st.message_gone_first[0]);
	CHECK(deleted(&r->q, "m0"));
	char warn[8];
	snprintf(warn, sizeof(warn), "%d ", (int)TRS_LOG_WARN);
	const char *line = logged(&r->logs, (const char *[]){"could not be deleted from staging", "bucket=staging",
							      "key=in/a0.tar.zst", "message_id=m0", "Access Denied", NULL});
	CHECK(line && !strncmp(line, warn, strlen(warn)));
	CHECK(logged(&r->logs, (const char *[]){"serve stopped", "archives_done=1", "archives_failed=0", NULL}));
	delete_run_free(r);
}

TEST(a_stop_waits_for_the_staging_deletes_pending_then_deletes_their_messages)
{
	/* Stop once the archive's 2 s staging delete has begun: the grace
	 * period covers it, so the message is deleted, not released. */
	const char *keys[] = {"in/slow-a0.tar.zst"};
	const char *bodies[] = {EVENT("in/slow-a0.tar.zst")};
	delete_run *r = &run;
	delete_run_init(r, keys, bodies, 1);
	r->o.archives = 2;
	r->o.max_idle = 0;
	r->o.shutdown_grace = 30;
	r->o.stop = &stop_flag;
	stop_flag = 0;
	atomic_store(&deletes_started, 0);
	pthread_t t;
	stop_when when = {&deletes_started, 1};
	pthread_create(&t, NULL, stop_later, &when);
	CHECK(delete_run_serve(r) == 0);
	pthread_join(t, NULL);
	CHECK(restored(r->dest, 0));
	CHECK(r->st.deleted_at[0] >= 2.0); /* the delete ran to its end */
	CHECK(deleted(&r->q, "m0") && !r->st.message_gone_first[0]);
	CHECK(!visibility(&r->q, "m0=0"));
	CHECK(logged(&r->logs, (const char *[]){"stop requested", NULL}));
	delete_run_free(r);
}

TEST(options_from_the_environment)
{
	trs_serve_options o = TRS_SERVE_OPTIONS_INIT;
	trs_serve_env e = TRS_SERVE_ENV_INIT;
	trs_error err = TRS_ERROR_INIT;
	setenv("MAX_MESSAGES_PER_BATCH", "7", 1);
	setenv("VISIBILITY_TIMEOUT", "900", 1);
	setenv("POLL_INTERVAL", "0", 1);
	setenv("MAX_ARCHIVES", "5", 1);
	setenv("MAX_WORKERS", "12", 1);
	setenv("SQS_QUEUE_URL", "dir:///q", 1);
	unsetenv("CATALOG_BUCKET");
	CHECK(trs_serve_options_from_env(&o, &e, &err) == 0);
	CHECK(o.max_messages == 7 && o.visibility_timeout == 900 && o.wait_seconds == 0 && o.wait_set);
	CHECK(o.archives == 5 && e.workers == 12);
	CHECK_STR(e.queue_url, "dir:///q");
	CHECK(e.catalog_bucket == NULL);
	setenv("MAX_ARCHIVES", "300", 1);
	CHECK(trs_serve_options_from_env(&o, &e, &err) == TRS_EINVAL);
	CHECK_CONTAINS(err.message, "MAX_ARCHIVES");
	setenv("MAX_ARCHIVES", "5x", 1);
	CHECK(trs_serve_options_from_env(&o, &e, &err) == TRS_EINVAL);
	const char *names[] = {"MAX_MESSAGES_PER_BATCH", "VISIBILITY_TIMEOUT", "POLL_INTERVAL", "MAX_ARCHIVES",
			       "MAX_WORKERS", "SQS_QUEUE_URL"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(names); i++)
		unsetenv(names[i]);
}

TEST(the_health_file_and_the_service_managers_variables_from_the_environment)
{
	trs_error err = TRS_ERROR_INIT;
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("TRS_HEALTH_FILE", "/spool/healthy", 1);
	setenv("NOTIFY_SOCKET", "@/org/freedesktop/systemd1/notify/42", 1);
	setenv("WATCHDOG_USEC", "120000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	trs_serve_options o = TRS_SERVE_OPTIONS_INIT;
	CHECK(trs_serve_options_from_env(&o, NULL, &err) == 0);
	CHECK_STR(o.health_file, "/spool/healthy");
	CHECK_STR(o.notify_socket, "@/org/freedesktop/systemd1/notify/42");
	CHECK(o.watchdog_seconds == 120.0);
	/* The watchdog of another process (a parent's variables inherited): not ours. */
	setenv("WATCHDOG_PID", "1", 1);
	o = (trs_serve_options)TRS_SERVE_OPTIONS_INIT;
	CHECK(trs_serve_options_from_env(&o, NULL, &err) == 0);
	CHECK(o.watchdog_seconds == 0);
	CHECK_STR(o.notify_socket, "@/org/freedesktop/systemd1/notify/42");
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "soon", 1);
	CHECK(trs_serve_options_from_env(&o, NULL, &err) == TRS_EINVAL);
	CHECK_CONTAINS(err.message, "WATCHDOG_USEC");
	setenv("WATCHDOG_USEC", "0", 1);
	CHECK(trs_serve_options_from_env(&o, NULL, &err) == TRS_EINVAL);
	/* Options of version 2 have no such fields: the variables are not read into them. */
	setenv("WATCHDOG_USEC", "5000000", 1);
	trs_serve_options v2 = TRS_SERVE_OPTIONS_INIT;
	v2.version = 2;
	v2.notify_socket = NULL;
	CHECK(trs_serve_options_from_env(&v2, NULL, &err) == 0);
	CHECK(v2.notify_socket == NULL && v2.watchdog_seconds == 0);
	CHECK_STR(v2.health_file, "/spool/healthy");
	const char *names[] = {"TRS_HEALTH_FILE", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(names); i++)
		unsetenv(names[i]);
}

int main(void)
{
	RUN(done_messages_are_deleted_poison_is_left_and_the_batch_is_limited_by_free_runners);
	RUN(a_stop_finishes_the_archives_in_progress_and_a_heartbeat_keeps_the_slow_one);
	RUN(work_not_started_at_a_stop_is_released_at_once);
	RUN(a_slow_staging_delete_holds_neither_the_runner_nor_the_heartbeat_nor_the_order);
	RUN(a_failing_staging_delete_counts_the_archive_done_and_deletes_its_message_with_a_warning);
	RUN(a_stop_waits_for_the_staging_deletes_pending_then_deletes_their_messages);
	RUN(options_from_the_environment);
	RUN(the_health_file_and_the_service_managers_variables_from_the_environment);
	RUN(backend_versions_are_checked_once_the_same_way_for_queue_and_storage);
	return harness_done();
}
