/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The staging deletes of the queue consumer, off the archive runners' path.
 *
 * When every object of an archive is written, its runner queues the archive's
 * staging DELETE here and takes its next message at once; a small pool of
 * deleting threads sends the deletes. A message stays DELETING (held, its
 * heartbeat going on) until the deletes of all its restored archives have
 * returned, and only then becomes DONE for the keeper, so the order stays:
 * every object written, the archive deleted from staging, then the message
 * deleted. The keeper sends no DELETE of its own, so a slow delete never
 * delays a heartbeat, and the deletes of several archives overlap.
 *
 * The queue is bounded (a runner waits for room), so deletes slower than
 * restores slow the runners down instead of piling up messages.
 */
#include "serve_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DELETERS 4

struct serve_delete {
	struct serve_delete *next;
	serve_msg *sm;
	char *bucket, *key;
	trs_report *report;
	double started_at; /* the archive's start */
	double lag;        /* its replication lag, -1 when unknown */
};

static void delete_free(serve_delete *d)
{
	trs_report_free(d->report);
	free(d->bucket);
	free(d->key);
	free(d);
}

serve_msg_state trs__serve_msg_outcome(const serve_msg *sm)
{
	/* A delete the stop canceled: released, the next delivery finds the archive and deletes it. */
	return sm->outcome == MSG_DONE && sm->delete_canceled ? MSG_HELD : sm->outcome;
}

/* Under the lock: one delete of `sm` returned; a message whose runner is done too is settled. */
static void delete_returned(serve_state *s, serve_msg *sm, bool canceled)
{
	if (canceled)
		sm->delete_canceled = true;
	if (--sm->deletes == 0 && sm->state == MSG_DELETING) {
		sm->state = trs__serve_msg_outcome(sm);
		pthread_cond_signal(&s->work.keeper_cv);
	}
}

static void run_delete(serve_state *s, serve_delete *d)
{
	trs_error err = TRS_ERROR_INIT;
	double t0 = trs__now();
	int rc = trs_storage_delete(s->staging, d->bucket, d->key, &err);
	if (d->report)
		d->report->seconds_cleanup = trs__now() - t0;
	trs__serve_archive_deleted(s, &d->sm->m, d->bucket, d->key, d->report, d->started_at, d->lag, rc, &err);
	pthread_mutex_lock(&s->lock);
	delete_returned(s, d->sm, rc == TRS_ECANCELED);
	pthread_mutex_unlock(&s->lock);
}

static void *deleter(void *arg)
{
	serve_state *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->del.head && !s->del.stopping)
			pthread_cond_wait(&s->del.cv, &s->lock);
		serve_delete *d = s->del.head;
		if (!d)
			break; /* stopping and drained */
		s->del.head = d->next;
		if (!s->del.head)
			s->del.tail = NULL;
		s->del.queued--;
		pthread_cond_signal(&s->del.room_cv);
		pthread_mutex_unlock(&s->lock);
		run_delete(s, d);
		delete_free(d);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void trs__serve_deleters_start(serve_state *s)
{
	unsigned int n = s->o.archives < MAX_DELETERS ? s->o.archives + 1 : MAX_DELETERS;
	s->del.threads = calloc(n, sizeof(*s->del.threads));
	if (!s->del.threads)
		return; /* runners then delete in line */
	for (unsigned int i = 0; i < n; i++) {
		if (pthread_create(&s->del.threads[i], NULL, deleter, s) != 0)
			break;
		s->del.nthreads++;
	}
	s->del.room = s->o.archives;
}

void trs__serve_deleters_stop(serve_state *s)
{
	pthread_mutex_lock(&s->lock);
	s->del.stopping = true;
	pthread_cond_broadcast(&s->del.cv);
	pthread_mutex_unlock(&s->lock);
	for (unsigned int i = 0; i < s->del.nthreads; i++)
		pthread_join(s->del.threads[i], NULL);
	free(s->del.threads);
	s->del.threads = NULL;
	s->del.nthreads = 0;
}

void trs__serve_delete_staging(serve_state *s, serve_msg *sm, const trs_archive_ref *ref, trs_report *report,
			       double started_at, double lag)
{
	/* ndeleters is set before the runners start and cleared after they are joined. */
	serve_delete *d = s->del.nthreads ? calloc(1, sizeof(*d)) : NULL;
	if (d) {
		*d = (serve_delete){.sm = sm, .bucket = strdup(ref->bucket), .key = strdup(ref->key),
				    .report = report, .started_at = started_at, .lag = lag};
		if (!d->bucket || !d->key) {
			d->report = NULL;
			delete_free(d);
			d = NULL;
		}
	}
	pthread_mutex_lock(&s->lock);
	sm->deletes++;
	if (!d) {
		pthread_mutex_unlock(&s->lock);
		/* No pool or no memory: in line, as one runner alone would. */
		serve_delete here = {.sm = sm, .bucket = (char *)ref->bucket, .key = (char *)ref->key,
				     .report = report, .started_at = started_at, .lag = lag};
		run_delete(s, &here);
		trs_report_free(report);
		return;
	}
	while (s->del.queued >= s->del.room)
		pthread_cond_wait(&s->del.room_cv, &s->lock);
	if (s->del.tail)
		s->del.tail->next = d;
	else
		s->del.head = d;
	s->del.tail = d;
	s->del.queued++;
	pthread_cond_signal(&s->del.cv);
	pthread_mutex_unlock(&s->lock);
}
