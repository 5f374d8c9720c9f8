/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The queue consumer's keeper thread: it alone talks to the queue about
 * messages already received.
 *
 * - Stop flags: a stop interrupts a receive still waiting and gives the
 *   archives in progress shutdown_grace seconds, then cancels them.
 * - Heartbeats: each message held (waiting for a runner or being worked on)
 *   is kept invisible, on its own clock: ChangeMessageVisibility to
 *   visibility_timeout every third of it from its receipt.
 * - Deletes: a message is deleted as soon as its archives are done, several
 *   together with one DeleteMessageBatch when they finish together; a slower
 *   message never holds it back.
 * - Releases: messages not finished because of a stop are made visible again
 *   at once (a second signal still releases them).
 */
#include "serve_internal.h"
#include "trs/sys/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEPER_STEP_NS 50000000L
#define DELETE_BATCH TRS_QUEUE_MAX_MESSAGES

void trs__serve_fmt_u64(char *buf, size_t size, uint64_t v)
{
	snprintf(buf, size, "%llu", (unsigned long long)v);
}

bool trs__serve_stop_requested(const serve_state *s)
{
	return trs__flag_raised(s->o.stop) || trs__canceled(s->ctx);
}

static void check_stop(serve_state *s)
{
	if (!atomic_load(&s->stopping) && trs__serve_stop_requested(s)) {
		s->keeper.stop_at = trs__now();
		atomic_store(&s->stopping, 1);
		__atomic_store_n(&s->interrupt, 1, __ATOMIC_RELEASE);
		pthread_mutex_lock(&s->lock);
		char n[32];
		trs__serve_fmt_u64(n, sizeof(n), s->work.running);
		pthread_cond_broadcast(&s->work.work_cv);
		pthread_cond_broadcast(&s->work.slot_cv);
		pthread_mutex_unlock(&s->lock);
		trs__log(s->ctx, TRS_LOG_INFO, "stop requested; finishing the archives in progress", "queue", s->label,
			 "archives_in_flight", n, NULL);
	}
	if (atomic_load(&s->stopping) && !__atomic_load_n(&s->abort_archive, __ATOMIC_ACQUIRE) &&
	    (trs__canceled(s->ctx) || trs__now() - s->keeper.stop_at >= s->o.shutdown_grace)) {
		__atomic_store_n(&s->abort_archive, 1, __ATOMIC_RELEASE);
		pthread_mutex_lock(&s->lock);
		unsigned int running = s->work.running;
		pthread_mutex_unlock(&s->lock);
		if (running) {
			char n[32];
			trs__serve_fmt_u64(n, sizeof(n), running);
			trs__log(s->ctx, TRS_LOG_WARN, "grace period over; canceling the archives in progress", "queue",
				 s->label, "archives_in_flight", n, NULL);
		}
	}
}

/* What one pass of the keeper took off the list (DONE, LEFT, to release) or must extend. */
typedef struct sweep {
	serve_msg **done, **left, **release;
	size_t ndone, nleft, nrelease;
	char **beat_handles, **beat_ids;
	size_t nbeat;
} sweep;

/* Under the lock. Returns false when memory ran out (nothing taken). */
static bool collect(serve_state *s, sweep *w, bool final)
{
	size_t n = 0;
	for (serve_msg *m = s->work.msgs; m; m = m->next)
		n++;
	memset(w, 0, sizeof(*w));
	if (!n)
		return true;
	w->done = calloc(n, sizeof(*w->done));
	w->left = calloc(n, sizeof(*w->left));
	w->release = calloc(n, sizeof(*w->release));
	w->beat_handles = calloc(n, sizeof(*w->beat_handles));
	w->beat_ids = calloc(n, sizeof(*w->beat_ids));
	if (!w->done || !w->left || !w->release || !w->beat_handles || !w->beat_ids)
		return false;
	bool stopping = atomic_load(&s->stopping) != 0;
	if (stopping || final) {
		/* PENDING messages will not be started: off the work queue, to be released. */
		for (serve_msg *m = s->work.work_head; m; m = m->next_work) {
			m->state = MSG_HELD;
			s->work.held--;
		}
		s->work.work_head = s->work.work_tail = NULL;
	}
	double now = trs__now();
	for (serve_msg **link = &s->work.msgs; *link;) {
		serve_msg *m = *link;
		if (m->state == MSG_DONE) {
			w->done[w->ndone++] = m;
		} else if (m->state == MSG_LEFT) {
			w->left[w->nleft++] = m;
		} else if (m->state == MSG_HELD) {
			w->release[w->nrelease++] = m;
		} else {
			if (now >= m->next_heartbeat) {
				m->next_heartbeat = now + (double)s->o.visibility_timeout / 3.0;
				w->beat_handles[w->nbeat] = strdup(m->m.receipt_handle);
				w->beat_ids[w->nbeat] = strdup(m->m.id);
				if (w->beat_handles[w->nbeat] && w->beat_ids[w->nbeat])
					w->nbeat++;
				else {
					free(w->beat_handles[w->nbeat]);
					free(w->beat_ids[w->nbeat]);
				}
			}
			link = &m->next;
			continue;
		}
		*link = m->next;
	}
	return true;
}

static void msg_free(serve_msg *m)
{
	free(m->m.id);
	free(m->m.receipt_handle);
	free(m->m.body);
	free(m);
}

static void delete_done(serve_state *s, serve_msg **done, size_t ndone)
{
	for (size_t at = 0; at < ndone; at += DELETE_BATCH) {
		size_t n = ndone - at < DELETE_BATCH ? ndone - at : DELETE_BATCH;
		const char *handles[DELETE_BATCH];
		int codes[DELETE_BATCH];
		for (size_t k = 0; k < n; k++) {
			handles[k] = done[at + k]->m.receipt_handle;
			codes[k] = 0;
		}
		trs_error err = TRS_ERROR_INIT;
		int rc = trs_queue_delete_batch(s->queue, handles, n, codes, &err);
		for (size_t k = 0; k < n; k++) {
			const trs_queue_message *m = &done[at + k]->m;
			if (rc == 0 || (rc == TRS_EPARTIAL && codes[k] == 0)) {
				atomic_fetch_add(&s->messages_deleted, 1);
				trs__log(s->ctx, TRS_LOG_INFO, "message deleted", "queue", s->label, "message_id", m->id,
					 NULL);
			} else {
				trs__log(s->ctx, TRS_LOG_WARN,
					 "message not deleted; it will be received again and its archives are already done",
					 "queue", s->label, "message_id", m->id, "code",
					 trs_strerror(rc == TRS_EPARTIAL ? codes[k] : rc), "error", err.message, NULL);
			}
		}
	}
}

static void release(serve_state *s, serve_msg *sm)
{
	trs_error err = TRS_ERROR_INIT;
	if (trs_queue_change_visibility(s->queue, sm->m.receipt_handle, 0, &err) < 0) {
		trs__log(s->ctx, TRS_LOG_WARN, "could not make the message visible again; its timeout will", "queue",
			 s->label, "message_id", sm->m.id, "error", err.message, NULL);
		return;
	}
	atomic_fetch_add(&s->messages_released, 1);
	trs__log(s->ctx, TRS_LOG_INFO, "message made visible again for another consumer", "queue", s->label,
		 "message_id", sm->m.id, NULL);
}

static void heartbeat(serve_state *s, const char *handle, const char *id)
{
	trs_error err = TRS_ERROR_INIT;
	if (trs_queue_change_visibility(s->queue, handle, s->o.visibility_timeout, &err) < 0)
		trs__log(s->ctx, TRS_LOG_WARN, "visibility heartbeat failed", "queue", s->label, "message_id", id,
			 "error", err.message, "code", trs_strerror(err.code), NULL);
	else
		trs__log(s->ctx, TRS_LOG_DEBUG, "visibility extended", "queue", s->label, "message_id", id, NULL);
}

static void sweep_free(sweep *w)
{
	for (size_t i = 0; i < w->nbeat; i++) {
		free(w->beat_handles[i]);
		free(w->beat_ids[i]);
	}
	free(w->beat_handles);
	free(w->beat_ids);
	free(w->done);
	free(w->left);
	free(w->release);
}

/* Send what one pass collected (without the lock); free the messages taken. */
static void act(serve_state *s, sweep *w)
{
	delete_done(s, w->done, w->ndone);
	for (size_t i = 0; i < w->nrelease; i++)
		release(s, w->release[i]);
	for (size_t i = 0; i < w->nbeat; i++)
		heartbeat(s, w->beat_handles[i], w->beat_ids[i]);
	for (size_t i = 0; i < w->ndone; i++)
		msg_free(w->done[i]);
	for (size_t i = 0; i < w->nleft; i++)
		msg_free(w->left[i]);
	for (size_t i = 0; i < w->nrelease; i++)
		msg_free(w->release[i]);
	if (w->nrelease) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_signal(&s->work.slot_cv);
		pthread_mutex_unlock(&s->lock);
	}
}

static bool has_work(const serve_state *s)
{
	for (const serve_msg *m = s->work.msgs; m; m = m->next)
		if (m->state == MSG_DONE || m->state == MSG_LEFT || m->state == MSG_HELD)
			return true;
	return false;
}

void *trs__serve_keeper(void *arg)
{
	serve_state *s = arg;
	for (;;) {
		check_stop(s);
		bool final = atomic_load(&s->finished) != 0;
		pthread_mutex_lock(&s->lock);
		if (!final && !has_work(s)) {
			trs__cond_wait_ns(&s->work.keeper_cv, &s->lock, KEEPER_STEP_NS);
			final = atomic_load(&s->finished) != 0;
		}
		sweep w;
		bool ok = collect(s, &w, final);
		bool empty = s->work.msgs == NULL;
		pthread_mutex_unlock(&s->lock);
		if (ok)
			act(s, &w);
		sweep_free(&w);
		if (final && empty)
			return NULL;
		if (final && !ok) {
			trs__sleep_until(KEEPER_STEP_NS / 1e9, NULL, NULL);
		}
	}
}
