/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chunk channel: a large object's body, streamed from the reading
 * thread to the worker that writes it. The reader pushes chunks (their
 * bytes taken from the run's budget); the worker's upload pulls them as a
 * trs_body, and every chunk's bytes go back to the budget once read. When
 * the worker is done early (a failed put), the channel is closed and later
 * pushes are dropped, so the reader never waits on a worker that left.
 */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

int64_t trs__channel_peek(trs__job *j, const unsigned char **data, trs_error *err)
{
	trs__run *r = j->run; /* the channel shares the run's lock: held briefly, one lock cannot deadlock */
	pthread_mutex_lock(&r->mu);
	if (!j->started) {
		j->started = 1;
		pthread_cond_broadcast(&j->cv); /* a reader may wait for that (trs__job_submit) */
	}
	while (!j->head && !j->ended)
		pthread_cond_wait(&j->cv, &r->mu);
	if (!j->head) {
		int code = j->end_code;
		if (code < 0 && err) {
			if (j->end_error)
				*err = *j->end_error;
			else
				trs__error_set(err, code, "out of memory");
		}
		pthread_mutex_unlock(&r->mu);
		return code < 0 ? code : 0;
	}
	trs__chunk *c = j->head;
	pthread_mutex_unlock(&r->mu);
	/* Only this worker pops, so c stays ours while the lock is down. */
	j->peeked = c;
	*data = c->data + c->pos;
	return (int64_t)(c->len - c->pos);
}

void trs__channel_advance(trs__job *j, size_t n)
{
	trs__run *r = j->run;
	trs__chunk *c = j->peeked;
	c->pos += n;
	if (c->pos == c->len) {
		pthread_mutex_lock(&r->mu);
		j->head = c->next;
		if (!j->head)
			j->tail = NULL;
		pthread_mutex_unlock(&r->mu);
		uint64_t held = c->len;
		free(c);
		trs__run_budget_give(r, held);
	}
}

static int64_t channel_read(void *self, void *buf, size_t len, trs_error *err)
{
	trs__job *j = self;
	const unsigned char *data;
	int64_t avail = trs__channel_peek(j, &data, err);
	if (avail <= 0)
		return avail;
	size_t n = (uint64_t)avail < len ? (size_t)avail : len;
	memcpy(buf, data, n);
	trs__channel_advance(j, n);
	return (int64_t)n;
}

void trs__job_stream(trs__job *j, uint64_t length)
{
	j->streamed = 1;
	j->stream_len = length;
	j->body.read = channel_read;
	j->body.self = j;
	j->body.length = length;
}

void trs__job_push(trs__run *r, trs__job *j, trs__chunk *c)
{
	pthread_mutex_lock(&r->mu);
	if (j->closed) {
		pthread_mutex_unlock(&r->mu);
		uint64_t n = c->len;
		free(c);
		trs__run_budget_give(r, n);
		return;
	}
	c->next = NULL;
	c->pos = 0;
	if (j->tail)
		j->tail->next = c;
	else
		j->head = c;
	j->tail = c;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&r->mu);
}

void trs__job_end(trs__run *r, trs__job *j, int code, const trs_error *err)
{
	pthread_mutex_lock(&r->mu);
	j->ended = 1;
	j->end_code = code;
	if (code < 0 && err && !j->end_error && (j->end_error = malloc(sizeof(*j->end_error))))
		*j->end_error = *err;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&r->mu);
	trs__job_unref(r, j);
}

int trs__channel_started(trs__job *j)
{
	pthread_mutex_lock(&j->run->mu);
	int started = j->started;
	pthread_mutex_unlock(&j->run->mu);
	return started;
}

int64_t trs__channel_read(trs__job *j, void *buf, size_t len, trs_error *err)
{
	return channel_read(j, buf, len, err);
}

int trs__channel_drain(trs__job *j, trs_error *err)
{
	unsigned char buf[65536];
	int64_t n;
	while ((n = channel_read(j, buf, sizeof(buf), err)) > 0)
		;
	return (int)n;
}

uint64_t trs__chunks_free(trs__chunk *c)
{
	uint64_t held = 0;
	while (c) {
		trs__chunk *next = c->next;
		held += c->len;
		free(c);
		c = next;
	}
	return held;
}

void trs__channel_close(trs__run *r, trs__job *j)
{
	pthread_mutex_lock(&r->mu);
	j->closed = 1; /* later pushes are dropped, so the reader never waits on us */
	j->started = 1;
	pthread_cond_broadcast(&j->cv);
	trs__chunk *c = j->head;
	j->head = j->tail = NULL;
	pthread_mutex_unlock(&r->mu);
	trs__run_budget_give(r, trs__chunks_free(c));
}
