/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chunk channel (lib/core/chunk_channel.c) between the reading thread and a
 * writer: bytes arrive in order, the budget bounds what is in flight (the
 * reader waits, never the budget overdrawn), a writer that leaves early
 * drops later pushes, and a reader's failure reaches the writer.
 */
#include "harness.h"
#include "bare_run.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define CHUNK 1000

/* A streamed job with a reader's and a writer's reference, as the pipeline makes them. */
static trs__job *job_new(trs__run *r, uint64_t length)
{
	trs__job *j = calloc(1, sizeof(*j));
	j->run = r;
	j->refs = 2;
	pthread_cond_init(&j->cv, NULL);
	trs__job_stream(j, length);
	return j;
}

/* Chunk i holds bytes (i + k) % 251, so order and content are checked together. */
static trs__chunk *chunk_new(size_t i)
{
	trs__chunk *c = malloc(sizeof(*c) + CHUNK);
	c->len = CHUNK;
	for (size_t k = 0; k < CHUNK; k++)
		c->data[k] = (unsigned char)((i + k) % 251);
	return c;
}

typedef struct pusher {
	trs__run *r;
	trs__job *j;
	size_t n;                  /* chunks to push */
	int end_code;              /* then end with this (0: a clean end) */
	size_t pushed;             /* under the run's lock */
	uint64_t max_seen;         /* the most budget ever held right after a grant */
} pusher;

static void *push_all(void *arg)
{
	pusher *p = arg;
	for (size_t i = 0; i < p->n; i++) {
		trs__run_budget_take(p->r, CHUNK, 1); /* the reader's backpressure: waits for budget */
		uint64_t held = trs__budget_used(&p->r->budget);
		if (held > p->max_seen)
			p->max_seen = held;
		trs__job_push(p->r, p->j, chunk_new(i));
		pthread_mutex_lock(&p->r->mu);
		p->pushed = i + 1;
		pthread_mutex_unlock(&p->r->mu);
	}
	trs_error err = TRS_ERROR_INIT;
	if (p->end_code)
		trs__error_set(&err, p->end_code, "archive x: object p/o1 is truncated");
	trs__job_end(p->r, p->j, p->end_code, &err);
	return NULL;
}

static size_t pushed(pusher *p)
{
	pthread_mutex_lock(&p->r->mu);
	size_t n = p->pushed;
	pthread_mutex_unlock(&p->r->mu);
	return n;
}

/* Wait (at most 10 s, a loaded machine) until `n` chunks are pushed, then a
 * little more: the count is where the reader stopped, not where it paused. */
static size_t pushed_settled(pusher *p, size_t n)
{
	for (int i = 0; i < 1000 && pushed(p) < n; i++)
		usleep(10000);
	usleep(150000);
	return pushed(p);
}

TEST(bytes_arrive_in_order_and_the_budget_comes_back)
{
	trs__run r;
	run_init(&r, 64 * CHUNK);
	const size_t n = 50;
	trs__job *j = job_new(&r, n * CHUNK);
	pusher p = {&r, j, n, 0, 0, 0};
	pthread_t t;
	pthread_create(&t, NULL, push_all, &p);
	/* Odd read sizes: reads cross chunk boundaries. */
	unsigned char buf[777];
	size_t total = 0;
	int ok = 1;
	int64_t got;
	trs_error err = TRS_ERROR_INIT;
	while ((got = trs__channel_read(j, buf, sizeof(buf), &err)) > 0) {
		for (int64_t k = 0; k < got; k++, total++)
			if (buf[k] != (unsigned char)((total / CHUNK + total % CHUNK) % 251))
				ok = 0;
	}
	pthread_join(t, NULL);
	CHECK(got == 0);
	CHECK(ok);
	CHECK(total == n * CHUNK);
	CHECK(used(&r) == 0); /* every chunk's bytes went back once read */
	trs__channel_close(&r, j);
	trs__job_unref(&r, j);
	run_destroy(&r);
}

TEST(the_reader_waits_for_budget_and_never_overdraws_it)
{
	trs__run r;
	run_init(&r, 3 * CHUNK);
	const size_t n = 12;
	trs__job *j = job_new(&r, n * CHUNK);
	pusher p = {&r, j, n, 0, 0, 0};
	pthread_t t;
	pthread_create(&t, NULL, push_all, &p);
	/* The writer has read nothing: the reader is stuck at the budget, three chunks in. */
	CHECK(pushed_settled(&p, 3) == 3);
	CHECK(used(&r) == 3 * CHUNK);
	unsigned char buf[CHUNK];
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__channel_read(j, buf, sizeof(buf), &err) == CHUNK);
	CHECK(pushed_settled(&p, 4) == 4); /* one chunk read, one more let in */
	CHECK(trs__channel_drain(j, &err) == 0);
	pthread_join(t, NULL);
	CHECK(p.max_seen <= 3 * CHUNK);
	CHECK(used(&r) == 0);
	trs__channel_close(&r, j);
	trs__job_unref(&r, j);
	run_destroy(&r);
}

TEST(a_writer_that_leaves_early_drops_later_pushes_and_frees_their_budget)
{
	trs__run r;
	run_init(&r, 2 * CHUNK);
	const size_t n = 40; /* far more than the budget: the reader must never wait on a gone writer */
	trs__job *j = job_new(&r, n * CHUNK);
	unsigned char buf[100];
	trs_error err = TRS_ERROR_INIT;
	pusher p = {&r, j, n, 0, 0, 0};
	pthread_t t;
	pthread_create(&t, NULL, push_all, &p);
	CHECK(trs__channel_read(j, buf, sizeof(buf), &err) == 100); /* a failed put after 100 bytes */
	trs__channel_close(&r, j);
	pthread_join(t, NULL); /* returns: every push after the close was dropped */
	CHECK(pushed(&p) == n);
	trs__job_unref(&r, j);
	CHECK(used(&r) == 0); /* the partly read chunk and the dropped ones all came back */
	run_destroy(&r);
}

TEST(a_reader_failure_reaches_the_writer_with_its_message)
{
	trs__run r;
	run_init(&r, 8 * CHUNK);
	trs__job *j = job_new(&r, 10 * CHUNK);
	pusher p = {&r, j, 2, TRS_EINTEGRITY, 0, 0};
	pthread_t t;
	pthread_create(&t, NULL, push_all, &p);
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__channel_drain(j, &err); /* the two chunks, then the failure */
	pthread_join(t, NULL);
	CHECK(rc == TRS_EINTEGRITY);
	CHECK_CONTAINS(err.message, "p/o1 is truncated");
	/* Through the body too, as an upload reads it. */
	trs_error err2 = TRS_ERROR_INIT;
	unsigned char buf[16];
	CHECK(j->body.read(j->body.self, buf, sizeof(buf), &err2) == TRS_EINTEGRITY);
	trs__channel_close(&r, j);
	trs__job_unref(&r, j);
	CHECK(used(&r) == 0);
	run_destroy(&r);
}

int main(void)
{
	RUN(bytes_arrive_in_order_and_the_budget_comes_back);
	RUN(the_reader_waits_for_budget_and_never_overdraws_it);
	RUN(a_writer_that_leaves_early_drops_later_pushes_and_frees_their_budget);
	RUN(a_reader_failure_reaches_the_writer_with_its_message);
	return harness_done();
}
