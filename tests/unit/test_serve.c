/*
 * Unit tests of the serve core (lib/serve*.c) on a scripted queue: an
 * in-memory trs_queue that hands out its messages and records every delete
 * and visibility change, and a staging storage whose archives are all gone
 * (a redelivery after success: counted as done), one of them slowly.
 */
#include "harness.h"
#include "internal.h"
#include "trs/serve.h"
#include "trs/sys/queue.h"

#include <pthread.h>
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

/* Staging where every archive is already gone; "slow" ones take a while to say so. */
static int gone_get(trs_storage *self, const char *bucket, const char *key, uint64_t offset, uint64_t length,
		    trs_sink_fn sink, void *ud, trs_error *err)
{
	(void)self, (void)offset, (void)length, (void)sink, (void)ud;
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

static void *stop_later(void *arg)
{
	(void)arg;
	usleep(300000);
	__atomic_store_n(&stop_flag, 1, __ATOMIC_SEQ_CST); /* as the library reads it */
	return NULL;
}

/* trs_serve on `q` with a stop request 0.3 s in (grace 30 s). */
static int serve_then_stop(scripted_queue *q, trs_serve_options *o)
{
	trs_storage st;
	gone_storage(&st);
	o->wait_seconds = 0;
	o->wait_set = 1;
	o->shutdown_grace = 30;
	o->stop = &stop_flag;
	stop_flag = 0;
	trs_error err = TRS_ERROR_INIT;
	pthread_t t;
	pthread_create(&t, NULL, stop_later, NULL);
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
	CHECK(serve_then_stop(&q, &o) == 0);
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
	CHECK(serve_then_stop(&q, &o) == 0);
	CHECK(q.ndeleted == 0);
	CHECK(visibility(&q, "m0=0"));
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

int main(void)
{
	RUN(done_messages_are_deleted_poison_is_left_and_the_batch_is_limited_by_free_runners);
	RUN(a_stop_finishes_the_archives_in_progress_and_a_heartbeat_keeps_the_slow_one);
	RUN(work_not_started_at_a_stop_is_released_at_once);
	RUN(options_from_the_environment);
	RUN(backend_versions_are_checked_once_the_same_way_for_queue_and_storage);
	return harness_done();
}
