/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An archive runner of the queue consumer: takes a received message, restores
 * every archive it names (fetch from staging, trs_process into the
 * destination), hands each restored archive's staging delete to the deleting
 * threads (lib/serve/serve_delete.c), and marks the message DONE, LEFT or
 * HELD for the keeper (DELETING until those deletes returned). Several runners work at once (--archives), each on
 * its own message, so a slow or failing archive holds only its own message.
 */
#include "serve_internal.h"
#include "core/pipeline.h"
#include "core/process_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { ARCHIVE_OK, ARCHIVE_FAILED, ARCHIVE_CANCELED } archive_result;

static void fmt_secs(char *buf, size_t size, double v)
{
	snprintf(buf, size, "%.3f", v);
}

static bool aborted(const serve_state *s)
{
	return __atomic_load_n(&s->abort_archive, __ATOMIC_ACQUIRE) != 0;
}

/* The fetch failed with TRS_ENOTFOUND: is it the archive (gone after an
 * earlier success) or its bucket (a configuration error that must keep the message)? */
static bool archive_gone(const trs_error *err)
{
	return strcmp(err->aws_code, "NoSuchBucket") != 0;
}

/* From the event's time (the archive's arrival in staging) to its last object written; -1: unknown. */
static double replication_lag(serve_state *s, const trs_archive_ref *ref)
{
	if (ref->event_time <= 0)
		return -1;
	double lag = trs__wall_now() - ref->event_time;
	if (lag < 0)
		lag = 0; /* clocks apart: never a negative lag */
	if (s->o.metrics)
		trs_metrics_put(s->o.metrics, "ReplicationLagSeconds", "Seconds", lag, NULL, 0);
	return lag;
}

static void log_restored(serve_state *s, const trs_queue_message *m, const char *bucket, const char *key,
			 const trs_report *report, double seconds, double lag)
{
	char n1[32], n2[32], n3[32], bw[32], secs[32], dl[32], cl[32], lg[32], kn[32], cu[32];
	if (lag >= 0)
		fmt_secs(lg, sizeof(lg), lag);
	trs__serve_fmt_u64(kn, sizeof(kn), report ? report->objects_kept_newer : 0);
	trs__serve_fmt_u64(cu, sizeof(cu), report ? report->objects_current : 0);
	trs__serve_fmt_u64(n1, sizeof(n1), report ? report->objects_written : 0);
	trs__serve_fmt_u64(n2, sizeof(n2), report ? report->objects_skipped : 0);
	trs__serve_fmt_u64(n3, sizeof(n3), report ? report->bytes_written : 0);
	trs__serve_fmt_u64(bw, sizeof(bw), report ? report->backups_written : 0);
	fmt_secs(secs, sizeof(secs), seconds);
	fmt_secs(dl, sizeof(dl), report ? report->seconds_download : 0);
	fmt_secs(cl, sizeof(cl), report ? report->seconds_cleanup : 0);
	trs__log(s->ctx, TRS_LOG_INFO, "archive restored", "queue", s->label, "message_id", m->id, "bucket", bucket,
		 "key", key, "objects_written", n1, "objects_skipped", n2, "objects_kept_newer", kn, "objects_current",
		 cu, "bytes_written", n3, "backups_written", bw, "seconds", secs, "seconds_download", dl, "seconds_cleanup", cl, "replication_lag_seconds",
		 lag >= 0 ? lg : NULL, NULL);
}

void trs__serve_archive_deleted(serve_state *s, const trs_queue_message *m, const char *bucket, const char *key,
				trs_report *report, double started_at, double lag, int rc, const trs_error *err)
{
	/* Every object was written: the archive's metrics are a success's, whatever the delete did. */
	if (report && s->o.metrics)
		trs_metrics_record_report(s->o.metrics, report, 0);
	if (rc == TRS_ECANCELED) {
		trs__log(s->ctx, TRS_LOG_WARN,
			 "archive restored, but the stop canceled its staging delete; its message goes back to the "
			 "queue and the next delivery deletes it",
			 "queue", s->label, "message_id", m->id, "bucket", bucket, "key", key, NULL);
		atomic_fetch_add(&s->archives_canceled, 1);
		return;
	}
	if (rc < 0)
		trs__log(s->ctx, TRS_LOG_WARN,
			 "archive restored, but it could not be deleted from staging; its message is deleted all the "
			 "same: check s3:DeleteObject on the staging bucket, then delete the archive by hand or let a "
			 "lifecycle rule expire it",
			 "queue", s->label, "message_id", m->id, "bucket", bucket, "key", key, "code", trs_strerror(rc),
			 "error", err->message, NULL);
	log_restored(s, m, bucket, key, report, trs__now() - started_at, lag);
	atomic_fetch_add(&s->archives_done, 1);
}

/* The destination's retries since the last archive (several archives share
 * one S3 client, so its counters are read as deltas under the lock) and the
 * limit on its requests in flight now. */
static void emit_retry_metrics(serve_state *s)
{
	trs_retry_stats now, was;
	if (!s->o.metrics)
		return;
	pthread_mutex_lock(&s->lock); /* read and remembered together: deltas never overlap */
	bool known = trs_storage_retry_stats(s->dest, &now) == 0;
	was = s->work.retries_emitted;
	s->work.retries_emitted = now;
	pthread_mutex_unlock(&s->lock);
	if (!known)
		return;
	now.retried -= was.retried;
	now.throttled -= was.throttled;
	now.refused_by_budget -= was.refused_by_budget;
	now.limit_decreases -= was.limit_decreases;
	trs_metrics_record_retries(s->o.metrics, &now);
}

static archive_result restore_archive(serve_state *s, serve_msg *sm, const trs_archive_ref *ref)
{
	const trs_queue_message *m = &sm->m;
	double t0 = trs__now();
	trs_error err = TRS_ERROR_INIT;
	trs_report *report = NULL;
	char secs[32], n1[32], n2[32];
	pthread_mutex_lock(&s->lock);
	unsigned int in_flight = s->work.running;
	pthread_mutex_unlock(&s->lock);
	char nf[32];
	trs__serve_fmt_u64(nf, sizeof(nf), in_flight);
	trs__log(s->ctx, TRS_LOG_INFO, "archive started", "queue", s->label, "message_id", m->id, "bucket", ref->bucket,
		 "key", ref->key, "archives_in_flight", nf, NULL);
	if (s->o.metrics)
		trs_metrics_put(s->o.metrics, "ArchivesInFlight", "Count", (double)in_flight, NULL, 0);

	/* A message delivered before (a failure, a kill, a visibility timeout, a lost delete) mostly finds
	 * its objects written already: each write looks at its key before it sends the body. */
	trs_process_options po;
	int rc = trs__process_options_take(&po, s->o.process, &err);
	po.redelivery = m->receive_count > 1;
	if (rc == 0)
		rc = trs__process_from_storage_shared(&s->run_ctx, s->dest, s->staging, ref->bucket, ref->key, s->o.fetch,
						      &po, &s->budget, &report, &err);
	if (rc == TRS_ENOTFOUND && !report && archive_gone(&err)) {
		/* Restored and deleted by an earlier delivery of this message (or deleted by hand). */
		trs__log(s->ctx, TRS_LOG_WARN,
			 "archive not in staging; counted as done (a redelivery after an earlier success)", "queue",
			 s->label, "message_id", m->id, "bucket", ref->bucket, "key", ref->key, NULL);
		atomic_fetch_add(&s->archives_done, 1);
		return ARCHIVE_OK;
	}
	bool canceled = rc == TRS_ECANCELED || (rc < 0 && aborted(s));
	if (!canceled)
		emit_retry_metrics(s);
	if (rc == 0) {
		/* Every object written: the staging delete goes to the deleting threads, this runner goes on. */
		trs__serve_delete_staging(s, sm, ref, report, t0, replication_lag(s, ref));
		return ARCHIVE_OK;
	}
	/* A stop is not a failure: nothing refused the canceled objects, so no failure metric. */
	if (report && s->o.metrics && !canceled) {
		bool unreadable = rc != TRS_EPARTIAL && report->objects_written == 0 && report->puts_failed == 0 &&
				  rc != TRS_ENET && rc != TRS_EHTTP && rc != TRS_EAUTH && rc != TRS_EINVAL;
		trs_metrics_record_report(s->o.metrics, report, unreadable);
	}
	double seconds = trs__now() - t0;
	fmt_secs(secs, sizeof(secs), seconds);
	if (canceled) {
		trs__serve_fmt_u64(n1, sizeof(n1), report ? report->objects_written : 0);
		trs__log(s->ctx, TRS_LOG_WARN, "archive canceled by the stop; its message goes back to the queue",
			 "queue", s->label, "message_id", m->id, "bucket", ref->bucket, "key", ref->key,
			 "objects_written", n1, "seconds", secs, NULL);
	} else if (rc == TRS_EREGION) {
		/* No retry will change it: the queue's redrive policy moves the message to its dead-letter queue. */
		trs__log(s->ctx, TRS_LOG_ERROR,
			 "archive has no target in this region; archive and message kept for the dead-letter queue",
			 "queue", s->label, "message_id", m->id, "bucket", ref->bucket, "key", ref->key, "region",
			 trs_ctx_region(s->ctx), "target_regions", report ? report->target_regions : NULL, "error",
			 err.message, NULL);
	} else {
		trs__serve_fmt_u64(n1, sizeof(n1), report ? report->objects_failed : 0);
		trs__serve_fmt_u64(n2, sizeof(n2), report ? report->puts_failed : 0);
		trs__log(s->ctx, TRS_LOG_ERROR, "archive failed; archive and message kept for a retry", "queue",
			 s->label, "message_id", m->id, "bucket", ref->bucket, "key", ref->key, "code",
			 trs_strerror(rc), "error", err.message, "objects_failed", n1, "puts_failed", n2, "seconds", secs,
			 NULL);
	}
	trs_report_free(report);
	if (canceled) {
		atomic_fetch_add(&s->archives_canceled, 1);
		return ARCHIVE_CANCELED;
	}
	atomic_fetch_add(&s->archives_failed, 1);
	return ARCHIVE_FAILED;
}

static serve_msg_state handle_message(serve_state *s, serve_msg *sm)
{
	const trs_queue_message *m = &sm->m;
	char count[16];
	snprintf(count, sizeof(count), "%u", m->receive_count);
	trs_event *ev = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_event_parse(m->body, m->body_len, &ev, &err) < 0) {
		atomic_fetch_add(&s->messages_poison, 1);
		trs__log(s->ctx, TRS_LOG_ERROR, "poison message left for the queue's redrive policy", "queue", s->label,
			 "message_id", m->id, "receive_count", count, "code", trs_strerror(err.code), "error", err.message,
			 NULL);
		return MSG_LEFT;
	}
	if (ev->kind != TRS_EVENT_WORK) {
		trs__log(s->ctx, TRS_LOG_INFO,
			 ev->kind == TRS_EVENT_TEST ? "test event; deleted without work"
						    : "no ObjectCreated record; deleted without work",
			 "queue", s->label, "message_id", m->id, "shape", ev->shape, NULL);
		trs_event_free(ev);
		return MSG_DONE;
	}
	bool all_ok = true;
	serve_msg_state st = MSG_DONE;
	for (size_t r = 0; r < ev->nrefs; r++) {
		if (r > 0 && atomic_load(&s->stopping)) {
			st = MSG_HELD; /* the rest waits for another consumer */
			break;
		}
		archive_result ar = restore_archive(s, sm, &ev->refs[r]);
		if (ar == ARCHIVE_CANCELED) {
			st = MSG_HELD;
			break;
		}
		if (ar != ARCHIVE_OK)
			all_ok = false;
	}
	trs_event_free(ev);
	if (st == MSG_HELD)
		return MSG_HELD;
	return all_ok ? MSG_DONE : MSG_LEFT;
}

void *trs__serve_runner(void *arg)
{
	serve_state *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->work.work_head && !atomic_load(&s->stopping) && !atomic_load(&s->receiving_done))
			pthread_cond_wait(&s->work.work_cv, &s->lock);
		if (atomic_load(&s->stopping) || trs__serve_stop_requested(s) || !s->work.work_head)
			break; /* PENDING messages left are released by the keeper */
		serve_msg *sm = s->work.work_head;
		s->work.work_head = sm->next_work;
		if (!s->work.work_head)
			s->work.work_tail = NULL;
		sm->next_work = NULL;
		sm->state = MSG_RUNNING;
		s->work.running++;
		if (s->work.running > s->work.peak_running)
			s->work.peak_running = s->work.running;
		pthread_mutex_unlock(&s->lock);

		serve_msg_state st = handle_message(s, sm);
		/* From its receipt to its archives done, as the Python service times
		 * process_message_batch for its batch of one message. */
		trs_metrics_record_processing_time(s->o.metrics, "process_message_batch", trs__now() - sm->received_at);

		pthread_mutex_lock(&s->lock);
		sm->outcome = st;
		sm->state = sm->deletes ? MSG_DELETING : trs__serve_msg_outcome(sm);
		s->work.running--;
		s->work.held--;
		pthread_cond_signal(&s->work.slot_cv);
		pthread_cond_signal(&s->work.keeper_cv);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}
