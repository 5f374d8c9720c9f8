/*
 * The queue consumer: receive, restore, clean up, delete (FORMAT.md §3-4).
 *
 * Threads: the caller's thread runs the loop; a monitor thread watches the
 * stop flags (interrupting a receive still waiting, canceling the archive
 * in progress once the grace period is over) and sends the visibility
 * heartbeats of the batch in hand.
 *
 * Archives are fetched and processed with a copy of the caller's context
 * whose cancel flag is the loop's own: a stop request must not cancel the
 * archive at once, only when its grace period ends.
 */
#include "internal.h"
#include "trs/serve.h"
#include "trs/sys/queue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_VISIBILITY 300
#define DEFAULT_WAIT 20
#define DEFAULT_GRACE 30.0
#define MONITOR_STEP_NS 50000000L
#define RECEIVE_BACKOFF_MAX 30.0

typedef enum {
	MSG_HELD = 0,   /* ours: heartbeats keep it invisible */
	MSG_DONE,       /* all its archives done: delete it */
	MSG_LEFT,       /* failed or poison: let its visibility timeout bring it back */
	MSG_RELEASED    /* made visible again at once */
} msg_state;

typedef struct serve_state {
	trs_ctx *ctx;              /* the caller's */
	struct trs_ctx run_ctx;    /* a copy whose cancel flag is `abort_archive` */
	trs_queue *queue;
	trs_storage *dest;
	trs_storage *staging;
	trs_serve_options o;
	const char *label;

	volatile int interrupt;     /* stops a receive that is waiting */
	volatile int abort_archive; /* cancels the archive in progress */
	volatile int stopping;
	volatile int finished;      /* the monitor thread exits */
	double stop_at;

	pthread_mutex_t lock;       /* batch and msg_states, shared with the monitor */
	trs_queue_message *batch;
	msg_state *states;
	size_t nbatch;
	bool in_archive;
	double next_heartbeat;

	uint64_t archives_done, archives_failed, messages_deleted, messages_poison;
} serve_state;

static void fmt_u64(char *buf, size_t size, uint64_t v)
{
	snprintf(buf, size, "%llu", (unsigned long long)v);
}

static void fmt_secs(char *buf, size_t size, double v)
{
	snprintf(buf, size, "%.3f", v);
}

static bool stop_requested(const serve_state *s)
{
	return (s->o.stop && *s->o.stop) || trs__canceled(s->ctx);
}

/* ---- the monitor thread ---- */

static void heartbeat(serve_state *s)
{
	/* Handles are copied under the lock; the calls are made without it. */
	char **handles = NULL;
	const char **ids = NULL;
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	if (s->nbatch) {
		handles = calloc(s->nbatch, sizeof(*handles));
		ids = calloc(s->nbatch, sizeof(*ids));
		for (size_t i = 0; handles && ids && i < s->nbatch; i++)
			if (s->states[i] == MSG_HELD || s->states[i] == MSG_DONE) {
				handles[n] = strdup(s->batch[i].receipt_handle);
				ids[n] = strdup(s->batch[i].id);
				if (handles[n] && ids[n])
					n++;
			}
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		trs_error err = TRS_ERROR_INIT;
		if (trs_queue_change_visibility(s->queue, handles[i], s->o.visibility_timeout, &err) < 0)
			trs__log(s->ctx, TRS_LOG_WARN, "visibility heartbeat failed", "queue", s->label, "message_id",
				 ids[i], "error", err.message, "code", trs_strerror(err.code), NULL);
		else
			trs__log(s->ctx, TRS_LOG_DEBUG, "visibility extended", "queue", s->label, "message_id", ids[i],
				 NULL);
	}
	for (size_t i = 0; i < n; i++) {
		free(handles[i]);
		free((char *)ids[i]);
	}
	free(handles);
	free(ids);
}

static void *monitor(void *arg)
{
	serve_state *s = arg;
	while (!s->finished) {
		if (!s->stopping && stop_requested(s)) {
			s->stop_at = trs__now();
			s->stopping = 1;
			s->interrupt = 1;
			trs__log(s->ctx, TRS_LOG_INFO, "stop requested; finishing the archive in progress", "queue",
				 s->label, NULL);
		}
		if (s->stopping && !s->abort_archive &&
		    (trs__canceled(s->ctx) || trs__now() - s->stop_at >= s->o.shutdown_grace)) {
			s->abort_archive = 1;
			if (s->in_archive)
				trs__log(s->ctx, TRS_LOG_WARN, "grace period over; canceling the archive in progress",
					 "queue", s->label, NULL);
		}
		pthread_mutex_lock(&s->lock);
		bool due = s->nbatch && trs__now() >= s->next_heartbeat;
		if (due)
			s->next_heartbeat = trs__now() + (double)s->o.visibility_timeout / 3.0;
		pthread_mutex_unlock(&s->lock);
		if (due)
			heartbeat(s);
		struct timespec ts = {0, MONITOR_STEP_NS};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void set_state(serve_state *s, size_t i, msg_state st)
{
	pthread_mutex_lock(&s->lock);
	s->states[i] = st;
	pthread_mutex_unlock(&s->lock);
}

/* ---- one archive ---- */

typedef enum { ARCHIVE_OK, ARCHIVE_FAILED, ARCHIVE_CANCELED } archive_result;

static archive_result restore_archive(serve_state *s, const trs_queue_message *m, const trs_archive_ref *ref)
{
	double t0 = trs__now();
	trs_error err = TRS_ERROR_INIT;
	trs_fetch *f = NULL;
	trs_report *report = NULL;
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	char secs[32], n1[32], n2[32], n3[32];
	trs__log(s->ctx, TRS_LOG_INFO, "archive started", "queue", s->label, "message_id", m->id, "bucket", ref->bucket,
		 "key", ref->key, NULL);
	pthread_mutex_lock(&s->lock);
	s->in_archive = true;
	pthread_mutex_unlock(&s->lock);

	int rc = trs_fetch_start(&f, s->staging, ref->bucket, ref->key, &s->run_ctx, s->o.fetch, &src, &err);
	if (rc == TRS_ENOTFOUND) {
		/* Restored and deleted by an earlier delivery of this message. */
		trs__log(s->ctx, TRS_LOG_INFO, "archive already gone from staging; counted as done", "queue", s->label,
			 "message_id", m->id, "bucket", ref->bucket, "key", ref->key, NULL);
		rc = 0;
		goto out;
	}
	if (rc == 0) {
		/* The archive's place in staging: a backup target copies it from there server-side. */
		trs_process_options po = TRS_PROCESS_OPTIONS_INIT;
		if (s->o.process && s->o.process->version >= 2)
			po = *s->o.process;
		else if (s->o.process)
			po.dry_run = s->o.process->dry_run;
		po.archive_storage = s->staging;
		po.archive_bucket = ref->bucket;
		po.archive_key = ref->key;
		rc = trs_process(&s->run_ctx, s->dest, &src, &po, &report, &err);
	}
	if (rc == 0)
		rc = trs_fetch_finish(f, &err);
	if (report)
		report->seconds_download = trs_fetch_seconds(f);
	trs_fetch_free(f);
	f = NULL;
	if (rc == 0) {
		double tc = trs__now();
		rc = trs_storage_delete(s->staging, ref->bucket, ref->key, &err);
		if (rc < 0)
			trs__error_prefix(&err, "every object was restored, but the archive could not be deleted from "
						"staging (the message is kept; the next attempt redoes the puts)");
		if (report)
			report->seconds_cleanup = trs__now() - tc;
	}
	if (report && s->o.metrics) {
		bool unreadable = rc < 0 && rc != TRS_EPARTIAL && rc != TRS_ECANCELED && report->objects_written == 0 &&
				  report->puts_failed == 0 && rc != TRS_ENET && rc != TRS_EHTTP && rc != TRS_EAUTH &&
				  rc != TRS_EINVAL;
		trs_metrics_record_report(s->o.metrics, report, unreadable);
	}
	fmt_secs(secs, sizeof(secs), trs__now() - t0);
	if (rc == 0) {
		fmt_u64(n1, sizeof(n1), report ? report->objects_written : 0);
		fmt_u64(n2, sizeof(n2), report ? report->objects_skipped : 0);
		fmt_u64(n3, sizeof(n3), report ? report->bytes_written : 0);
		char dl[32], cl[32], bw[32];
		fmt_u64(bw, sizeof(bw), report ? report->backups_written : 0);
		fmt_secs(dl, sizeof(dl), report ? report->seconds_download : 0);
		fmt_secs(cl, sizeof(cl), report ? report->seconds_cleanup : 0);
		trs__log(s->ctx, TRS_LOG_INFO, "archive restored", "queue", s->label, "message_id", m->id, "bucket",
			 ref->bucket, "key", ref->key, "objects_written", n1, "objects_skipped", n2, "bytes_written", n3,
			 "backups_written", bw, "seconds", secs, "seconds_download", dl, "seconds_cleanup", cl, NULL);
	} else {
		fmt_u64(n1, sizeof(n1), report ? report->objects_failed : 0);
		fmt_u64(n2, sizeof(n2), report ? report->puts_failed : 0);
		trs__log(s->ctx, rc == TRS_ECANCELED ? TRS_LOG_WARN : TRS_LOG_ERROR,
			 rc == TRS_ECANCELED ? "archive canceled; its message goes back to the queue"
					     : "archive failed; archive and message kept for a retry",
			 "queue", s->label, "message_id", m->id, "bucket", ref->bucket, "key", ref->key, "code",
			 trs_strerror(rc), "error", err.message, "objects_failed", n1, "puts_failed", n2, "seconds", secs,
			 NULL);
	}
	trs_report_free(report);
out:
	trs_fetch_free(f);
	pthread_mutex_lock(&s->lock);
	s->in_archive = false;
	pthread_mutex_unlock(&s->lock);
	if (rc == 0) {
		s->archives_done++;
		return ARCHIVE_OK;
	}
	s->archives_failed++;
	return rc == TRS_ECANCELED && s->abort_archive ? ARCHIVE_CANCELED : ARCHIVE_FAILED;
}

/* ---- one message ---- */

static void handle_message(serve_state *s, size_t i)
{
	const trs_queue_message *m = &s->batch[i];
	char count[16];
	snprintf(count, sizeof(count), "%u", m->receive_count);
	trs_event *ev = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_event_parse(m->body, m->body_len, &ev, &err) < 0) {
		s->messages_poison++;
		trs__log(s->ctx, TRS_LOG_ERROR, "poison message left for the queue's redrive policy", "queue", s->label,
			 "message_id", m->id, "receive_count", count, "code", trs_strerror(err.code), "error", err.message,
			 NULL);
		set_state(s, i, MSG_LEFT);
		return;
	}
	if (ev->kind != TRS_EVENT_WORK) {
		trs__log(s->ctx, TRS_LOG_INFO,
			 ev->kind == TRS_EVENT_TEST ? "test event; deleted without work"
						    : "no ObjectCreated record; deleted without work",
			 "queue", s->label, "message_id", m->id, "shape", ev->shape, NULL);
		trs_event_free(ev);
		set_state(s, i, MSG_DONE);
		return;
	}
	bool all_ok = true;
	for (size_t r = 0; r < ev->nrefs; r++) {
		if (s->stopping && r > 0) {
			all_ok = false; /* the rest waits for another consumer */
			break;
		}
		archive_result ar = restore_archive(s, m, &ev->refs[r]);
		if (ar == ARCHIVE_CANCELED) {
			trs_event_free(ev);
			set_state(s, i, MSG_HELD); /* released with the rest below */
			return;
		}
		if (ar != ARCHIVE_OK)
			all_ok = false;
	}
	trs_event_free(ev);
	set_state(s, i, all_ok ? MSG_DONE : (s->stopping ? MSG_HELD : MSG_LEFT));
}

/* Delete the done messages of the batch in one call; release the held ones if stopping. */
static void finish_batch(serve_state *s)
{
	const char **handles = calloc(s->nbatch, sizeof(*handles));
	size_t *which = calloc(s->nbatch, sizeof(*which));
	int *codes = calloc(s->nbatch, sizeof(*codes));
	size_t n = 0;
	for (size_t i = 0; handles && which && codes && i < s->nbatch; i++)
		if (s->states[i] == MSG_DONE) {
			which[n] = i;
			handles[n++] = s->batch[i].receipt_handle;
		}
	if (n) {
		trs_error err = TRS_ERROR_INIT;
		int rc = trs_queue_delete_batch(s->queue, handles, n, codes, &err);
		for (size_t k = 0; k < n; k++) {
			const trs_queue_message *m = &s->batch[which[k]];
			if (rc == 0 || codes[k] == 0) {
				s->messages_deleted++;
				trs__log(s->ctx, TRS_LOG_INFO, "message deleted", "queue", s->label, "message_id", m->id,
					 NULL);
			} else {
				trs__log(s->ctx, TRS_LOG_WARN,
					 "message not deleted; it will be received again and its archives are already done",
					 "queue", s->label, "message_id", m->id, "code", trs_strerror(codes[k]), "error",
					 err.message, NULL);
			}
		}
	}
	/* Held at this point means: not finished because of a stop. */
	for (size_t i = 0; i < s->nbatch; i++) {
		if (s->states[i] != MSG_HELD)
			continue;
		trs_error err = TRS_ERROR_INIT;
		if (trs_queue_change_visibility(s->queue, s->batch[i].receipt_handle, 0, &err) < 0)
			trs__log(s->ctx, TRS_LOG_WARN, "could not make the message visible again; its timeout will",
				 "queue", s->label, "message_id", s->batch[i].id, "error", err.message, NULL);
		else
			trs__log(s->ctx, TRS_LOG_INFO, "message made visible again for another consumer", "queue",
				 s->label, "message_id", s->batch[i].id, NULL);
		s->states[i] = MSG_RELEASED;
	}
	free(handles);
	free(which);
	free(codes);
}

/* ---- the loop ---- */

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
		*o = *given;
	}
	if (!o->max_messages)
		o->max_messages = 1;
	if (o->max_messages > TRS_QUEUE_MAX_MESSAGES)
		return trs__error_set(err, TRS_EINVAL, "at most %d messages per batch (SQS's limit), not %u",
				      TRS_QUEUE_MAX_MESSAGES, o->max_messages);
	if (!o->visibility_timeout)
		o->visibility_timeout = DEFAULT_VISIBILITY;
	if (o->visibility_timeout > 43200)
		return trs__error_set(err, TRS_EINVAL, "the visibility timeout is at most 43200 s (12 h), not %u",
				      o->visibility_timeout);
	if (!o->wait_set && !o->wait_seconds)
		o->wait_seconds = DEFAULT_WAIT;
	if (o->wait_seconds > TRS_QUEUE_MAX_WAIT)
		return trs__error_set(err, TRS_EINVAL, "the poll interval is at most %d s, not %u", TRS_QUEUE_MAX_WAIT,
				      o->wait_seconds);
	if (o->shutdown_grace == 0)
		o->shutdown_grace = DEFAULT_GRACE;
	if (o->shutdown_grace < 0)
		o->shutdown_grace = 0;
	return 0;
}

int trs_serve(trs_ctx *ctx, trs_queue *queue, trs_storage *destination, const trs_serve_options *options,
	      trs_error *err)
{
	if (!queue || !destination)
		return trs__error_set(err, TRS_EINVAL, "trs_serve needs a queue and a destination storage");
	serve_state *s = trs__calloc(1, sizeof(*s), err);
	if (!s)
		return TRS_ENOMEM;
	int rc = check_options(&s->o, options, err);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->ctx = ctx;
	s->run_ctx = *TRS_CTX(ctx);
	s->run_ctx.cancel = &s->abort_archive;
	s->queue = queue;
	s->dest = destination;
	s->staging = s->o.staging ? s->o.staging : destination;
	s->label = s->o.queue_label ? s->o.queue_label : trs_queue_name(queue);
	pthread_mutex_init(&s->lock, NULL);
	pthread_t thread;
	if (pthread_create(&thread, NULL, monitor, s) != 0) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return trs__error_set(err, TRS_ENOMEM, "cannot start the serve loop's monitor thread");
	}
	char b[32], v[32], w[32];
	snprintf(b, sizeof(b), "%u", s->o.max_messages);
	snprintf(v, sizeof(v), "%u", s->o.visibility_timeout);
	snprintf(w, sizeof(w), "%u", s->o.wait_seconds);
	const char *catalog = s->o.process && s->o.process->version >= 2 ? s->o.process->catalog_bucket : NULL;
	trs__log(ctx, TRS_LOG_INFO, "serving", "queue", s->label, "batch", b, "visibility_timeout", v, "poll_interval",
		 w, "region", trs_ctx_region(ctx), "catalog_bucket", catalog && *catalog ? catalog : "(none)", NULL);
	if (!catalog || !*catalog)
		trs__log(ctx, TRS_LOG_INFO,
			 "no catalog bucket: archives with a backup target in this region will fail (and stay queued) "
			 "until CATALOG_BUCKET is set",
			 "queue", s->label, NULL);

	bool received_once = false;
	double backoff = 1.0;
	uint64_t batches = 0;
	rc = 0;
	while (!s->stopping && !stop_requested(s)) {
		trs_queue_receive_options ro = TRS_QUEUE_RECEIVE_OPTIONS_INIT;
		ro.max_messages = s->o.max_messages;
		ro.wait_seconds = s->o.wait_seconds;
		ro.visibility_timeout = s->o.visibility_timeout;
		ro.interrupt = &s->interrupt;
		trs_queue_message *msgs = NULL;
		size_t n = 0;
		trs_error rerr = TRS_ERROR_INIT;
		double batch_start = trs__now();
		int r = trs_queue_receive(queue, &ro, &msgs, &n, &rerr);
		if (r < 0) {
			if (!received_once && fatal_receive_error(r)) {
				if (err)
					*err = rerr;
				rc = r;
				break;
			}
			trs__log(ctx, TRS_LOG_ERROR, "receive failed; retrying", "queue", s->label, "code", trs_strerror(r),
				 "error", rerr.message, NULL);
			double end = trs__now() + backoff;
			while (trs__now() < end && !stop_requested(s)) {
				struct timespec ts = {0, MONITOR_STEP_NS};
				nanosleep(&ts, NULL);
			}
			backoff = backoff * 2 > RECEIVE_BACKOFF_MAX ? RECEIVE_BACKOFF_MAX : backoff * 2;
			continue;
		}
		received_once = true;
		backoff = 1.0;
		if (!n)
			continue;
		msg_state *states = calloc(n, sizeof(*states));
		if (!states) {
			/* Not processed: their visibility timeout brings them back. */
			trs_queue_messages_free(msgs, n);
			continue;
		}
		pthread_mutex_lock(&s->lock);
		s->batch = msgs;
		s->states = states;
		s->nbatch = n;
		s->next_heartbeat = trs__now() + (double)s->o.visibility_timeout / 3.0;
		pthread_mutex_unlock(&s->lock);
		for (size_t i = 0; i < n; i++) {
			if (s->stopping)
				break; /* left MSG_HELD: released at once below */
			handle_message(s, i);
		}
		finish_batch(s);
		/* The receive and the batch's work, as the Python service times process_message_batch. */
		trs_metrics_record_processing_time(s->o.metrics, "process_message_batch", trs__now() - batch_start);
		pthread_mutex_lock(&s->lock);
		s->batch = NULL;
		s->states = NULL;
		s->nbatch = 0;
		pthread_mutex_unlock(&s->lock);
		trs_queue_messages_free(msgs, n);
		free(states);
		if (s->o.max_batches && ++batches >= s->o.max_batches)
			break;
	}
	s->finished = 1;
	pthread_join(thread, NULL);
	char d[32], f[32], del[32], p[32];
	fmt_u64(d, sizeof(d), s->archives_done);
	fmt_u64(f, sizeof(f), s->archives_failed);
	fmt_u64(del, sizeof(del), s->messages_deleted);
	fmt_u64(p, sizeof(p), s->messages_poison);
	trs__log(ctx, rc < 0 ? TRS_LOG_ERROR : TRS_LOG_INFO, rc < 0 ? "serve stopped on an error" : "serve stopped",
		 "queue", s->label, "archives_done", d, "archives_failed", f, "messages_deleted", del,
		 "messages_poison", p, NULL);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return rc;
}
