/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The queue consumer: receive, restore, clean up, delete (docs/operations.md).
 *
 * Threads:
 * - the caller's runs the receiving loop: it receives as soon as an archive
 *   runner is free (up to max_messages at a time) and queues the messages;
 *   its turns are the consumer's signs of life (the health file, the
 *   service manager's watchdog: lib/serve/serve_health.c);
 * - `archives` runner threads each restore one message's archives at a time
 *   (lib/serve/serve_archive.c);
 * - a few deleting threads delete restored archives from staging, so that a
 *   runner never waits on that round trip (lib/serve/serve_delete.c);
 * - the keeper thread watches the stop flags and alone sends heartbeats,
 *   message deletes and releases (lib/serve/serve_keeper.c).
 *
 * Archives are fetched and processed with a copy of the caller's context
 * whose cancel flag is the loop's own (a stop request must not cancel the
 * archives at once, only when the grace period ends) and whose memory and
 * writers come from one budget that all archives in flight share: one
 * archive alone may use all of them, each is sure of its floor
 * (lib/core/budget.h).
 */
#include "core/pipeline.h"
#include "serve_internal.h"
#include "trs/sys/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_VISIBILITY 300
#define DEFAULT_WAIT 20
#define DEFAULT_GRACE 30.0
#define RECEIVE_BACKOFF_MAX 30.0

static bool fatal_receive_error(int rc)
{
	return rc == TRS_ENOTFOUND || rc == TRS_EAUTH || rc == TRS_EINVAL || rc == TRS_EUNSUPPORTED;
}

static int check_options(trs_serve_options *o, const trs_serve_options *given, trs_error *err)
{
	trs_serve_options d = TRS_SERVE_OPTIONS_INIT;
	*o = d;
	if (given) {
		if (given->version == 0 || given->version > TRS_SERVE_OPTIONS_VERSION)
			return trs__error_set(err, TRS_EINVAL, "trs_serve_options has unknown version %u", given->version);
		/* Only the fields of the caller's version: an older struct is shorter. */
		if (given->version >= 3)
			*o = *given;
		else
			memcpy(o, given,
			       given->version == 2 ? offsetof(trs_serve_options, notify_socket)
						   : offsetof(trs_serve_options, archives));
		o->version = TRS_SERVE_OPTIONS_VERSION;
	}
	if (!o->max_messages)
		o->max_messages = 1;
	if (o->max_messages > TRS_QUEUE_MAX_MESSAGES)
		return trs__error_set(err, TRS_EINVAL, "at most %d messages per batch (SQS's limit), not %u",
				      TRS_QUEUE_MAX_MESSAGES, o->max_messages);
	if (!o->visibility_timeout)
		o->visibility_timeout = DEFAULT_VISIBILITY;
	if (o->visibility_timeout > TRS_QUEUE_MAX_VISIBILITY)
		return trs__error_set(err, TRS_EINVAL, "the visibility timeout is at most %d s (12 h), not %u",
				      TRS_QUEUE_MAX_VISIBILITY, o->visibility_timeout);
	if (!o->wait_set && !o->wait_seconds)
		o->wait_seconds = DEFAULT_WAIT;
	if (o->wait_seconds > TRS_QUEUE_MAX_WAIT)
		return trs__error_set(err, TRS_EINVAL, "the poll interval is at most %d s, not %u", TRS_QUEUE_MAX_WAIT,
				      o->wait_seconds);
	if (o->shutdown_grace == 0)
		o->shutdown_grace = DEFAULT_GRACE;
	if (o->shutdown_grace < 0)
		o->shutdown_grace = 0;
	if (!o->archives)
		o->archives = TRS_SERVE_DEFAULT_ARCHIVES;
	if (o->archives > TRS_SERVE_MAX_ARCHIVES)
		return trs__error_set(err, TRS_EINVAL, "at most %d archives in flight, not %u", TRS_SERVE_MAX_ARCHIVES,
				      o->archives);
	if (o->max_idle < 0)
		o->max_idle = 0;
	return 0;
}

/* What archives run with: the caller's limits, through one budget of memory
 * and writers that every archive in flight takes from (lib/core/budget.c).
 * max_memory stays one archive's share: it sizes the chunks (so that a chunk
 * always fits an archive's floor) and trs_fetch's in-memory spool. */
static void archive_ctx(serve_state *s)
{
	const trs_ctx *c = TRS_CTX(s->ctx);
	s->run_ctx = *c;
	s->run_ctx.cancel = &s->abort_archive;
	unsigned int n = s->o.archives;
	s->run_ctx.max_memory = c->max_memory / n ? c->max_memory / n : 1;
	trs__run_share_init(&s->budget, c, &s->run_ctx, s->dest, n);
}

/* Wait for a free runner; the number of messages the next receive may ask for (0: stopping). */
static unsigned int wait_for_slots(serve_state *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->work.held >= s->o.archives && !atomic_load(&s->stopping)) {
		if (!s->work.backpressure_logged) {
			s->work.backpressure_logged = true;
			char n[32];
			trs__serve_fmt_u64(n, sizeof(n), s->o.archives);
			trs__log(s->ctx, TRS_LOG_INFO,
				 "every archive runner is busy; receiving waits for one to finish (logged once; raise "
				 "--archives for more in flight)",
				 "queue", s->label, "archives", n, NULL);
		}
		trs__cond_wait_ns(&s->work.slot_cv, &s->lock, 1000000000L);
		/* Busy is alive: the turn goes on every second while the runners work. */
		pthread_mutex_unlock(&s->lock);
		trs__serve_alive(s);
		pthread_mutex_lock(&s->lock);
	}
	unsigned int free_slots = atomic_load(&s->stopping) ? 0 : s->o.archives - s->work.held;
	pthread_mutex_unlock(&s->lock);
	return free_slots < s->o.max_messages ? free_slots : s->o.max_messages;
}

/* Hand received messages to the runners (the array is consumed). */
static void enqueue(serve_state *s, trs_queue_message *msgs, size_t n)
{
	double now = trs__now();
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		serve_msg *sm = calloc(1, sizeof(*sm));
		if (!sm)
			continue; /* not processed: its visibility timeout brings it back */
		sm->m = msgs[i];
		memset(&msgs[i], 0, sizeof(msgs[i]));
		sm->received_at = now;
		sm->next_heartbeat = now + (double)s->o.visibility_timeout / 3.0;
		sm->next = s->work.msgs;
		s->work.msgs = sm;
		if (s->work.work_tail)
			s->work.work_tail->next_work = sm;
		else
			s->work.work_head = sm;
		s->work.work_tail = sm;
		s->work.held++;
	}
	pthread_cond_broadcast(&s->work.work_cv);
	pthread_mutex_unlock(&s->lock);
	trs_queue_messages_free(msgs, n);
}

static bool idle_for(serve_state *s, double since)
{
	if (s->o.max_idle <= 0)
		return false;
	pthread_mutex_lock(&s->lock);
	bool idle = s->work.msgs == NULL;
	pthread_mutex_unlock(&s->lock);
	return idle && trs__now() - since >= s->o.max_idle;
}

static bool stop_or_stopping(void *ud)
{
	serve_state *s = ud;
	return atomic_load(&s->stopping) || trs__serve_stop_requested(s);
}

/* Waiting to retry a receive is alive too: the loop is well, the queue is not. */
static bool backoff_tick(void *ud)
{
	trs__serve_alive(ud);
	return stop_or_stopping(ud);
}

static void backoff_sleep(serve_state *s, double seconds)
{
	trs__sleep_until(seconds, backoff_tick, s);
}

static int receive_loop(serve_state *s, trs_error *err)
{
	bool received_once = false;
	double backoff = 1.0, last_activity = trs__now();
	uint64_t batches = 0;
	while (!stop_or_stopping(s)) {
		trs__serve_alive(s);
		unsigned int want = wait_for_slots(s);
		if (!want)
			break;
		trs_queue_receive_options ro = TRS_QUEUE_RECEIVE_OPTIONS_INIT;
		ro.max_messages = want;
		ro.wait_seconds = s->o.wait_seconds;
		ro.visibility_timeout = s->o.visibility_timeout;
		ro.interrupt = &s->interrupt;
		trs_queue_message *msgs = NULL;
		size_t n = 0;
		trs_error rerr = TRS_ERROR_INIT;
		int r = trs_queue_receive(s->queue, &ro, &msgs, &n, &rerr);
		if (r < 0) {
			if (!received_once && fatal_receive_error(r)) {
				if (err)
					*err = rerr;
				return r;
			}
			trs__log(s->ctx, TRS_LOG_ERROR, "receive failed; retrying", "queue", s->label, "code",
				 trs_strerror(r), "error", rerr.message, NULL);
			trs__serve_receive_failing(s, rerr.message);
			backoff_sleep(s, backoff);
			backoff = backoff * 2 > RECEIVE_BACKOFF_MAX ? RECEIVE_BACKOFF_MAX : backoff * 2;
			continue;
		}
		received_once = true;
		trs__serve_ready(s);
		backoff = 1.0;
		if (!n) {
			trs_queue_messages_free(msgs, 0); /* a backend may hand an empty array over */
			if (idle_for(s, last_activity)) {
				trs__log(s->ctx, TRS_LOG_INFO, "idle for --max-idle seconds; stopping", "queue", s->label,
					 NULL);
				break;
			}
			continue;
		}
		enqueue(s, msgs, n);
		last_activity = trs__now();
		if (s->o.max_batches && ++batches >= s->o.max_batches)
			break;
	}
	return 0;
}

static void log_start(serve_state *s)
{
	char b[32], v[32], w[32], a[32], wr[32], wf[32], mm[32], mf[32];
	snprintf(b, sizeof(b), "%u", s->o.max_messages);
	snprintf(v, sizeof(v), "%u", s->o.visibility_timeout);
	snprintf(w, sizeof(w), "%u", s->o.wait_seconds);
	snprintf(a, sizeof(a), "%u", s->o.archives);
	snprintf(wr, sizeof(wr), "%u", s->budget.writers);
	snprintf(wf, sizeof(wf), "%u", s->budget.writer_floor);
	trs__serve_fmt_u64(mm, sizeof(mm), s->budget.limit);
	trs__serve_fmt_u64(mf, sizeof(mf), s->budget.floor);
	const char *catalog = s->o.process && s->o.process->version >= 2 ? s->o.process->catalog_bucket : NULL;
	trs__log(s->ctx, TRS_LOG_INFO, "serving", "queue", s->label, "batch", b, "visibility_timeout", v,
		 "poll_interval", w, "archives", a, "writers", wr, "writers_reserved_per_archive", wf,
		 "object_memory", mm, "object_memory_reserved_per_archive", mf,
		 "region", trs_ctx_region(s->ctx), "catalog_bucket", catalog && *catalog ? catalog : "(none)", NULL);
	if (!catalog || !*catalog)
		trs__log(s->ctx, TRS_LOG_INFO,
			 "no catalog bucket: archives with a backup target in this region will fail (and stay queued) "
			 "until CATALOG_BUCKET is set",
			 "queue", s->label, NULL);
}

/* Retries, the retry budget and adaptive concurrency of the destination's S3 requests. */
static void log_retry_stats(serve_state *s)
{
	trs_retry_stats rs;
	if (trs_storage_retry_stats(s->dest, &rs) < 0)
		return;
	char r[32], t[32], rr[32], d[32], lo[32];
	trs__serve_fmt_u64(r, sizeof(r), rs.retried);
	trs__serve_fmt_u64(t, sizeof(t), rs.throttled);
	trs__serve_fmt_u64(rr, sizeof(rr), rs.refused_by_budget);
	trs__serve_fmt_u64(d, sizeof(d), rs.limit_decreases);
	snprintf(lo, sizeof(lo), "%.0f", rs.limit_lowest);
	trs__log(s->ctx, TRS_LOG_INFO, "S3 retries", "queue", s->label, "retries", r, "throttled", t,
		 "retries_refused_by_budget", rr, "throttle_decreases", d, "lowest_requests_in_flight_limit", lo, NULL);
}

static void log_stop(serve_state *s, int rc)
{
	log_retry_stats(s);
	char d[32], f[32], c[32], del[32], p[32], rel[32], peak[32], mp[32], wp[32];
	trs__serve_fmt_u64(d, sizeof(d), atomic_load(&s->archives_done));
	trs__serve_fmt_u64(f, sizeof(f), atomic_load(&s->archives_failed));
	trs__serve_fmt_u64(c, sizeof(c), atomic_load(&s->archives_canceled));
	trs__serve_fmt_u64(del, sizeof(del), atomic_load(&s->messages_deleted));
	trs__serve_fmt_u64(p, sizeof(p), atomic_load(&s->messages_poison));
	trs__serve_fmt_u64(rel, sizeof(rel), atomic_load(&s->messages_released));
	trs__serve_fmt_u64(peak, sizeof(peak), s->work.peak_running);
	trs__serve_fmt_u64(mp, sizeof(mp), trs__budget_peak(&s->budget));
	trs__serve_fmt_u64(wp, sizeof(wp), trs__budget_writers_peak(&s->budget));
	trs__log(s->ctx, rc < 0 ? TRS_LOG_ERROR : TRS_LOG_INFO, rc < 0 ? "serve stopped on an error" : "serve stopped",
		 "queue", s->label, "archives_done", d, "archives_failed", f, "archives_canceled", c,
		 "messages_deleted", del, "messages_poison", p, "messages_released", rel, "peak_archives_in_flight",
		 peak, "object_memory_peak", mp, "writers_peak", wp, NULL);
}

static void state_free(serve_state *s)
{
	trs__serve_health_close(s);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->work.work_cv);
	pthread_cond_destroy(&s->work.slot_cv);
	pthread_cond_destroy(&s->work.keeper_cv);
	pthread_cond_destroy(&s->del.cv);
	pthread_cond_destroy(&s->del.room_cv);
	trs__budget_destroy(&s->budget);
	free(s->runners);
	free(s);
}

int trs_serve(trs_ctx *ctx, trs_queue *queue, trs_storage *destination, const trs_serve_options *options,
	      trs_error *err)
{
	if (!queue || !destination)
		return trs__error_set(err, TRS_EINVAL, "trs_serve needs a queue and a destination storage");
	if (trs__queue_check_version(queue, err) < 0 || trs__storage_check_version(destination, err) < 0)
		return TRS_EINVAL;
	serve_state *s = trs__calloc(1, sizeof(*s), err);
	if (!s)
		return TRS_ENOMEM;
	s->health.notify = (trs__notify)TRS__NOTIFY_INIT;
	int rc = check_options(&s->o, options, err);
	if (rc == 0 && s->o.staging)
		rc = trs__storage_check_version(s->o.staging, err);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->ctx = ctx;
	s->queue = queue;
	s->dest = destination;
	archive_ctx(s);
	s->staging = s->o.staging ? s->o.staging : destination;
	s->label = s->o.queue_label ? s->o.queue_label : trs_queue_name(queue);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work.work_cv, NULL);
	pthread_cond_init(&s->work.slot_cv, NULL);
	pthread_cond_init(&s->work.keeper_cv, NULL);
	pthread_cond_init(&s->del.cv, NULL);
	pthread_cond_init(&s->del.room_cv, NULL);
	trs__serve_health_open(s); /* before the threads: it may shorten the long poll */
	s->runners = trs__calloc(s->o.archives, sizeof(*s->runners), err);
	pthread_t keeper;
	if (!s->runners || pthread_create(&keeper, NULL, trs__serve_keeper, s) != 0) {
		state_free(s);
		return trs__error_set(err, TRS_ENOMEM, "cannot start the serve loop's keeper thread");
	}
	trs__serve_deleters_start(s);
	for (unsigned int i = 0; i < s->o.archives; i++) {
		if (pthread_create(&s->runners[i], NULL, trs__serve_runner, s) != 0)
			break;
		s->nrunners++;
	}
	if (s->nrunners == 0)
		rc = trs__error_set(err, TRS_ENOMEM, "cannot start the serve loop's archive runners");
	else if (s->nrunners < s->o.archives)
		s->o.archives = s->nrunners;
	if (rc == 0) {
		log_start(s);
		rc = receive_loop(s, err);
	}
	trs__serve_stopping(s, rc, err);
	/* No more receives: runners finish the work queued (or stop at a stop), then the keeper flushes. */
	atomic_store(&s->receiving_done, 1);
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->work.work_cv);
	pthread_mutex_unlock(&s->lock);
	for (unsigned int i = 0; i < s->nrunners; i++)
		pthread_join(s->runners[i], NULL);
	trs__serve_deleters_stop(s); /* the deletes queued are sent first: their messages are then done */
	atomic_store(&s->finished, 1);
	pthread_mutex_lock(&s->lock);
	pthread_cond_signal(&s->work.keeper_cv);
	pthread_mutex_unlock(&s->lock);
	pthread_join(keeper, NULL);
	log_stop(s, rc);
	state_free(s);
	return rc;
}
