/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The restore pipeline: worker threads write objects while the reading
 * thread keeps decompressing. Small objects travel whole in memory; large
 * ones stream through a channel of chunks. Every buffered byte is counted
 * against one budget (the context's max_memory, lib/core/budget.c), so the reader waits for
 * the writers only when the budget is spent, and memory does not grow with
 * the archive or the object size.
 */
#include "pipeline.h"
#include "archive/object_iter.h"
#include "digest.h"
#include "report.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BATCH_BYTES (4u << 20)

/* ---- the report, under r->mu ---- */

/*
 * A failed put: in the report, and counted under its cause, which the
 * archive's end says once (lib/core/failure_groups.c); its own line goes out
 * at debug. `quiet`: not attempted (a stop, refused credentials), said once
 * by the caller, no cause of its own.
 */
static void put_failed_locked(trs__run *r, const trs_manifest_object *e, const trs_object_put *p, int code,
			      const char *aws_code, const char *message, int quiet)
{
	/* The names shortened, the cause whole: the full key is in the fields and the report. */
	char full[2 * TRS_ERROR_MESSAGE_SIZE];
	snprintf(full, sizeof(full), "archive %s, object %s -> s3://%s/%s: %s", TRS__SHORT(r->report->archive),
		 TRS__SHORT(e->relative_key), p->request.bucket, TRS__SHORT(p->request.key), message);
	r->report->puts_failed++;
	trs_report_target *t = trs__report_target(r->report, p->request.bucket);
	if (t)
		t->puts_failed++;
	/* Out of memory: the counts above still say it failed. */
	trs__report_add_failure(r->report, e->relative_key, p->request.bucket, p->request.key, code, full, NULL);
	if (!quiet)
		trs__failure_groups_add(&r->failures, e->relative_key, p->request.bucket, p->request.key, code, aws_code,
					full);
	trs__log(r->ctx, TRS_LOG_DEBUG, full, "archive", r->report->archive, "relative_key", e->relative_key, "bucket",
		 p->request.bucket, "key", p->request.key, "error", trs_strerror(code), NULL);
}

void trs__run_put_failed(trs__run *r, const trs_manifest_object *e, const trs_object_put *p, int code,
			 const char *message)
{
	pthread_mutex_lock(&r->mu);
	put_failed_locked(r, e, p, code, NULL, message, 0);
	pthread_mutex_unlock(&r->mu);
}

void trs__run_log_failures(trs__run *r)
{
	trs__failure_groups_log(&r->failures, r->ctx, r->report->archive); /* the writers are gone: no lock */
}

/* Per-job results are gathered without the lock and folded in once. */
typedef struct {
	int code;
	trs_error err;
	int done;
	int outcome;    /* when done: TRS_WRITTEN, or TRS_KEPT_NEWER / TRS_ALREADY_CURRENT (nothing written) */
	int quiet;      /* not attempted after a credentials failure: logged once, not per object */
	uint64_t bytes;
} put_result;

/* Missing or refused credentials (not a bucket's AccessDenied): nothing else can succeed. */
static int credentials_failure(const put_result *res)
{
	static const char *const codes[] = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
					    "ExpiredToken", "InvalidClientTokenId", ""};
	if (res->code != TRS_EAUTH)
		return 0;
	for (size_t i = 0; i < TRS_ARRAY_SIZE(codes); i++)
		if (!strcmp(res->err.aws_code, codes[i]))
			return 1;
	return 0;
}

int trs__run_aborted(trs__run *r, trs_error *err)
{
	pthread_mutex_lock(&r->mu);
	int code = r->abort_code;
	if (code && err)
		*err = r->abort_err;
	pthread_mutex_unlock(&r->mu);
	return code;
}

/* One line per put the newest-wins rule kept from writing, at info: counted, never an error. */
static void log_not_written(trs__run *r, const trs__job *j, const trs_object_put *p, int outcome)
{
	if (!trs__log_enabled(r->ctx, TRS_LOG_INFO) || !trs__repeat_log(&r->repeats, r->ctx, TRS__REPEAT_NOT_WRITTEN))
		return;
	trs__log(r->ctx, TRS_LOG_INFO,
		 outcome == TRS_KEPT_NEWER ? "not written: the destination holds a newer version of this object"
					   : "not written: the destination holds this version already",
		 "archive", r->report->archive, "relative_key", j->entry->relative_key, "bucket", p->request.bucket,
		 "key", p->request.key, "creation_time", j->entry->creation_time, "outcome",
		 trs__write_outcome_name(outcome), NULL);
}

static void record(trs__run *r, const trs__job *j, const put_result *res)
{
	pthread_mutex_lock(&r->mu);
	int failed = 0, written = 0, kept = 0;
	for (size_t i = 0; j->rewrite && i < j->nputs; i++)
		trs__report_forget_failure(r->report, j->entry->relative_key, j->puts[i].request.bucket,
					   j->puts[i].request.key);
	for (size_t i = 0; i < j->nputs; i++) {
		const trs_object_put *p = &j->puts[i];
		if (res[i].done && (res[i].outcome == TRS_KEPT_NEWER || res[i].outcome == TRS_ALREADY_CURRENT)) {
			if (res[i].outcome == TRS_KEPT_NEWER) {
				r->report->puts_kept_newer++;
				kept = 1;
			} else {
				r->report->puts_current++;
			}
		} else if (res[i].done) {
			written = 1;
			r->report->puts_written++;
			if (res[i].outcome == TRS_WRITTEN_UNCHECKED)
				r->report->puts_unchecked++;
			r->report->bytes_written += res[i].bytes;
			trs_report_target *t = trs__report_target(r->report, p->request.bucket);
			if (t) {
				t->puts_written++;
				t->bytes_written += res[i].bytes;
			}
		} else {
			/* A canceled put was refused by nothing: the caller reports the stop once. */
			put_failed_locked(r, j->entry, p, res[i].code, res[i].err.aws_code, res[i].err.message,
					  res[i].quiet || res[i].code == TRS_ECANCELED);
			if (!r->abort_code && credentials_failure(&res[i])) {
				r->abort_code = TRS_EAUTH;
				r->abort_err = res[i].err;
			}
			failed = 1;
		}
	}
	unsigned char *outcome = r->outcomes ? &r->outcomes[trs_manifest_object_index(r->manifest, j->entry)] : NULL;
	int state = failed    ? TRS__OBJECT_FAILED
		    : written || !j->nputs ? TRS__OBJECT_WRITTEN
		    : kept    ? TRS__OBJECT_KEPT_NEWER
			      : TRS__OBJECT_CURRENT;
	trs__report_count_object(r->report, outcome, state, j->rewrite);
	if (!j->rewrite)
		r->objects_done++;
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < j->nputs; i++)
		if (res[i].done && (res[i].outcome == TRS_KEPT_NEWER || res[i].outcome == TRS_ALREADY_CURRENT))
			log_not_written(r, j, &j->puts[i], res[i].outcome);
	if (written && !failed)
		trs__log(r->ctx, TRS_LOG_DEBUG, "object written", "archive", r->report->archive, "relative_key",
			 j->entry->relative_key, NULL);
}

/*
 * The condition of this job's writes: the entry's version, unless every
 * write overwrites (--overwrite always) or the entry has no time to compare
 * (then nothing could be kept from writing, and S3 would only pay for asking).
 */
static const trs_write_condition *job_condition(const trs__run *r, const trs__job *j, trs_write_condition *c)
{
	if (r->overwrite_always || !j->entry->creation_time || !*j->entry->creation_time)
		return NULL;
	trs_write_condition init = TRS_WRITE_CONDITION_INIT;
	*c = init;
	c->source_time = j->entry->creation_time;
	c->source_etag = j->entry->etag;
	c->flags = r->write_flags;
	return c;
}

/* ---- the budget ---- */

int trs__run_budget_take(trs__run *r, uint64_t n, int wait)
{
	/* The reader's batch holds budget that only its writers give back: hand it
	 * over before waiting (other runs may take meanwhile, so try first). */
	int rc = trs__account_take(&r->account, n, false);
	if (rc == 0 || !wait)
		return rc;
	trs__run_flush(r);
	return trs__account_take(&r->account, n, true);
}

void trs__run_budget_give(trs__run *r, uint64_t n)
{
	trs__account_give(&r->account, n);
}

void trs__run_done(trs__run *r, uint64_t *objects, uint64_t *bytes)
{
	pthread_mutex_lock(&r->mu);
	*objects = r->objects_done;
	*bytes = r->report->bytes_written;
	pthread_mutex_unlock(&r->mu);
}

/* ---- jobs ---- */

static size_t put_strings_size(const trs_put_request *q)
{
	size_t n = strlen(q->key) + 1 + (q->content_md5_hex ? 33 : 0);
	for (size_t i = 0; i < q->ntags; i++)
		n += strlen(q->tags[i].key) + strlen(q->tags[i].value) + 2;
	for (size_t i = 0; i < q->nmetadata; i++)
		n += strlen(q->metadata[i].key) + strlen(q->metadata[i].value) + 2;
	return n;
}

static char *copy_str(char **at, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = memcpy(*at, s, n);
	*at += n;
	return d;
}

/*
 * The iterator's object lives until its next call; a job outlives it. Copy
 * the puts and every string they point to that the iterator owns; strings of
 * the manifest (bucket, class, KMS key) live for the whole run.
 */
trs__job *trs__job_new(const trs_object *o, trs_error *err)
{
	size_t kv = 0, strings = 0;
	for (size_t i = 0; i < o->nputs; i++) {
		kv += o->puts[i].request.ntags + o->puts[i].request.nmetadata;
		strings += put_strings_size(&o->puts[i].request);
	}
	size_t size = sizeof(trs__job) + o->nputs * sizeof(trs_object_put) + kv * sizeof(trs_kv) + strings;
	trs__job *j = trs__calloc(1, size, err);
	if (!j)
		return NULL;
	j->entry = o->entry;
	j->missing = o->status == TRS_OBJECT_MISSING;
	j->refs = 1;
	j->puts = (trs_object_put *)(j + 1);
	j->nputs = o->nputs;
	trs_kv *kvs = (trs_kv *)(j->puts + o->nputs);
	char *at = (char *)(kvs + kv);
	j->strings = at;
	for (size_t i = 0; i < o->nputs; i++) {
		j->puts[i] = o->puts[i];
		trs_put_request *q = &j->puts[i].request;
		const trs_put_request *src = &o->puts[i].request;
		q->key = copy_str(&at, src->key);
		if (src->content_md5_hex)
			q->content_md5_hex = copy_str(&at, src->content_md5_hex);
		q->tags = kvs;
		for (size_t t = 0; t < src->ntags; t++, kvs++) {
			kvs->key = copy_str(&at, src->tags[t].key);
			kvs->value = copy_str(&at, src->tags[t].value);
		}
		q->metadata = kvs;
		for (size_t t = 0; t < src->nmetadata; t++, kvs++) {
			kvs->key = copy_str(&at, src->metadata[t].key);
			kvs->value = copy_str(&at, src->metadata[t].value);
		}
	}
	if (!trs__plain_md5(o->entry->etag, j->md5))
		j->md5[0] = '\0';
	pthread_cond_init(&j->cv, NULL);
	return j;
}

trs__job *trs__job_new_stage(trs_storage_stage *st, uint64_t index, unsigned char *data, uint64_t len,
			    trs__stage_result *result, trs_error *err)
{
	trs__job *j = trs__calloc(1, sizeof(*j), err);
	if (!j)
		return NULL;
	j->kind = TRS_JOB_STAGE;
	j->stage = st;
	j->stage_index = index;
	j->stage_result = result;
	j->data = data;
	j->len = j->budget = len;
	j->refs = 1;
	pthread_cond_init(&j->cv, NULL);
	return j;
}

void trs__job_unref(trs__run *r, trs__job *j)
{
	pthread_mutex_lock(&r->mu);
	int last = --j->refs == 0;
	pthread_mutex_unlock(&r->mu);
	if (!last)
		return;
	trs__run_budget_give(r, j->budget + trs__chunks_free(j->head));
	free(j->data);
	free(j->stage_err);
	free(j->end_error);
	pthread_cond_destroy(&j->cv);
	free(j);
}

/* Queue `j` and the jobs chained behind it (batch_next) as one entry: one wake-up for them all. */
static void enqueue(trs__run *r, trs__job *j, unsigned int n)
{
	pthread_mutex_lock(&r->mu);
	while (r->queued >= r->queue_max)
		pthread_cond_wait(&r->queue_cv, &r->mu);
	r->queued++;
	if (j->streamed)
		j->refs++; /* the reader keeps pushing after the worker took it */
	j->next = NULL;
	j->batch_count = n;
	if (r->tail)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	r->busy += n;
	pthread_cond_signal(&r->work_cv); /* one entry, one worker: no herd */
	trs__run_grow_locked(r);
	pthread_mutex_unlock(&r->mu);
}

/* Hand the reader's batch of small jobs to a worker. */
void trs__run_flush(trs__run *r)
{
	if (!r->batch_n)
		return;
	trs__job *head = r->batch_head;
	unsigned int n = r->batch_n;
	r->batch_head = r->batch_tail = NULL;
	r->batch_n = 0;
	r->batch_bytes = 0;
	enqueue(r, head, n);
}

/*
 * A streamed job whose upload waits for the storage's own memory (S3's part
 * pool) holds the chunks pushed to it meanwhile. If the reader went on to the
 * next large object, that one's upload could take the pool memory the first
 * waits for, and wait for the reader, which waits for the first one's chunks
 * to drain: so the next streamed job waits until this one is read from.
 */
static void one_streamed_job_ahead(trs__run *r, trs__job *j)
{
	pthread_mutex_lock(&r->mu);
	trs__job *prev = r->last_streamed;
	while (prev && !prev->started)
		pthread_cond_wait(&prev->cv, &r->mu);
	r->last_streamed = j;
	if (j)
		j->refs++;
	pthread_mutex_unlock(&r->mu);
	if (prev)
		trs__job_unref(r, prev);
}

void trs__run_forget_streamed(trs__run *r)
{
	one_streamed_job_ahead(r, NULL);
}

void trs__job_submit(trs__run *r, trs__job *j)
{
	j->run = r;
	j->batch_next = NULL;
	if (j->streamed && r->stream_one_ahead)
		one_streamed_job_ahead(r, j);
	if (j->streamed || r->batch_max < 2) {
		trs__run_flush(r);
		enqueue(r, j, 1);
		return;
	}
	/* A local destination: a small write costs less than waking a worker for it. Batches stay
	 * small (32 jobs, 4 MiB), so that every writer still has work. */
	if (r->batch_tail)
		r->batch_tail->batch_next = j;
	else
		r->batch_head = j;
	r->batch_tail = j;
	r->batch_bytes += j->len;
	if (++r->batch_n >= r->batch_max || r->batch_bytes >= BATCH_BYTES)
		trs__run_flush(r);
}

/* ---- the workers ---- */

/*
 * Does the server check this buffered body's MD5 for every put of it? Yes
 * when the backend says it refuses a single put whose bytes do not match
 * Content-MD5 (S3: 400 BadDigest, nothing written), the body is below its
 * single-put size, and each put carries the manifest's MD5. Not in a dry
 * run, where nothing is sent.
 */
static int server_checks_md5(const trs__run *r, const trs__job *j)
{
	if (r->dry_run || !j->md5[0] || j->len >= r->server_md5_below)
		return 0;
	for (size_t i = 0; i < j->nputs; i++) {
		const trs_put_request *q = &j->puts[i].request;
		if (!j->puts[i].error && (!q->content_md5_hex || strcasecmp(q->content_md5_hex, j->md5) != 0))
			return 0;
	}
	return 1;
}

/*
 * A buffered body against its manifest entry: the size always, the MD5
 * here unless there is none to match, the restore checks sizes only
 * (--verify size), or the server checks it. *vouched says whether the
 * bytes may be passed on as having the manifest's MD5.
 */
static int verify_buffer(const trs__run *r, const trs__job *j, int *vouched, trs_error *err)
{
	char hex[33];
	int here = j->md5[0] && r->ctx->verify != TRS_VERIFY_SIZE && !server_checks_md5(r, j);
	*vouched = j->md5[0] && (here || r->ctx->verify == TRS_VERIFY_SIZE);
	if (here && j->staged_md5[0]) {
		memcpy(hex, j->staged_md5, sizeof(hex)); /* hashed when the spool was written */
	} else if (here) {
		unsigned char digest[16];
		if (!EVP_Digest(j->data, (size_t)j->len, digest, NULL, trs__md5_md(), NULL))
			return trs__error_set(err, TRS_ENOMEM, "cannot compute an MD5");
		trs__hex(digest, 16, hex);
	}
	return trs__check_integrity(j->entry, j->len, here ? hex : NULL, err);
}

static void fail_all(const trs__job *j, put_result *res, int code, const trs_error *err)
{
	for (size_t i = 0; i < j->nputs; i++) {
		if (res[i].code)
			continue;
		res[i].code = code;
		res[i].err = *err;
	}
}

static void drain_channel(trs__job *j, put_result *res)
{
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__channel_drain(j, &err);
	if (rc < 0)
		fail_all(j, res, rc, &err);
}

void trs__job_execute(trs__run *r, trs__job *j)
{
	if (j->kind == TRS_JOB_STAGE) {
		trs__stage_write(j);
		return;
	}
	if (j->kind == TRS_JOB_SPOOL) {
		trs__spool_write_job(j);
		return;
	}
	put_result stack_res[4];
	put_result *res = j->nputs <= 4 ? stack_res : calloc(j->nputs, sizeof(*res));
	if (!res) {
		/* No memory for results: fail the object as a whole, nothing written. */
		trs_error err = TRS_ERROR_INIT;
		trs__error_set(&err, TRS_ENOMEM, "out of memory");
		for (size_t i = 0; i < j->nputs; i++)
			trs__run_put_failed(r, j->entry, &j->puts[i], TRS_ENOMEM, err.message);
		return;
	}
	memset(res, 0, j->nputs * sizeof(*res));
	size_t usable = 0;
	for (size_t i = 0; i < j->nputs; i++) {
		const trs_object_put *p = &j->puts[i];
		if (p->error) {
			res[i].code = p->error;
			snprintf(res[i].err.message, sizeof(res[i].err.message), "%s", p->error_message);
		} else if (j->missing) {
			res[i].code = TRS_ENOTFOUND;
			snprintf(res[i].err.message, sizeof(res[i].err.message),
				 "the manifest lists this object but the archive does not hold it (lost upstream)");
		} else {
			usable++;
		}
	}
	trs_error err = TRS_ERROR_INIT;
	trs_error aborted = TRS_ERROR_INIT;
	if (trs__run_aborted(r, &aborted)) {
		trs__error_set(&err, TRS_EAUTH, "not attempted: %s", aborted.message);
		fail_all(j, res, TRS_EAUTH, &err);
		for (size_t i = 0; i < j->nputs; i++)
			res[i].quiet = 1;
		if (j->streamed)
			drain_channel(j, res);
	} else if (trs__canceled(r->ctx)) {
		trs__error_set(&err, TRS_ECANCELED, "canceled before it was written");
		fail_all(j, res, TRS_ECANCELED, &err);
		if (j->streamed)
			drain_channel(j, res);
	} else if (!usable) {
		if (j->streamed)
			drain_channel(j, res);
	} else if (j->kind == TRS_JOB_PUBLISH) {
		/* The bytes are on disk already: check them, then rename into place
		 * for the first target and copy for the others. */
		int rc = j->stage_code;
		const char *md5 = j->staged_md5[0] ? j->staged_md5 : j->md5; /* not hashed: --verify size */
		if (rc < 0 && j->stage_err)
			err = *j->stage_err;
		else if (rc < 0)
			trs__error_set(&err, rc, "cannot stage this object (out of memory)");
		else
			rc = trs__check_integrity(j->entry, j->len, j->staged_md5[0] ? j->staged_md5 : NULL, &err);
		if (rc < 0)
			fail_all(j, res, rc, &err);
		const trs_object_put *first = NULL;
		trs_write_condition cbuf;
		const trs_write_condition *cond = job_condition(r, j, &cbuf);
		int staged = 1; /* the staged file is still there to publish */
		for (size_t i = 0; rc == 0 && i < j->nputs; i++) {
			if (res[i].code)
				continue;
			trs_error perr = TRS_ERROR_INIT;
			int prc = r->dry_run ? 0
				  : staged ? trs__storage_stage_publish(j->stage, j->stage_index, &j->puts[i].request, j->len, md5,
								    cond, &perr)
					   : trs_storage_copy_if_newer(r->storage, first->request.bucket, first->request.key,
								       &j->puts[i].request, cond, &perr);
			if (prc < 0) {
				res[i].code = prc;
				res[i].err = perr;
				continue;
			}
			if (staged && !r->dry_run && (prc == TRS_WRITTEN || prc == TRS_WRITTEN_UNCHECKED)) {
				staged = 0; /* moved into place: the other targets copy it from there */
				first = &j->puts[i];
			}
			res[i].done = 1;
			res[i].outcome = prc;
			res[i].bytes = j->len;
		}
	} else if (!j->streamed) {
		int vouched;
		int rc = verify_buffer(r, j, &vouched, &err);
		if (rc < 0)
			fail_all(j, res, rc, &err);
		for (size_t i = 0; rc == 0 && i < j->nputs; i++) {
			if (res[i].code)
				continue;
			if (r->dry_run) {
				res[i].done = 1;
				continue;
			}
			/* Verified (or vouched for) above: a backend that hashes what it stores (fs) can skip it. */
			trs_memory_body mb;
			trs__vouched_body vb;
			trs_body *b = trs_memory_body_init(&mb, j->data, j->len);
			if (vouched)
				b = trs__vouched_body_init(&vb, b, j->md5);
			trs_error perr = TRS_ERROR_INIT;
			trs_write_condition cbuf;
			int prc = trs_upload_if_newer(r->storage, &j->puts[i].request, job_condition(r, j, &cbuf), b, &perr);
			if (prc < 0) {
				res[i].code = prc;
				res[i].err = perr;
			} else {
				res[i].done = 1;
				res[i].outcome = prc;
				res[i].bytes = j->len;
			}
		}
	} else {
		/*
		 * Stream to the first usable target; server-side copy to the others.
		 * A target that holds a newer version (or this one) is left as it is
		 * without reading the body, when the backend can tell before the
		 * first byte: the body then goes to the next target.
		 */
		const trs_object_put *first = NULL;
		int body_used = 0;
		trs_write_condition cbuf;
		const trs_write_condition *cond = job_condition(r, j, &cbuf);
		for (size_t i = 0; i < j->nputs; i++) {
			if (res[i].code)
				continue;
			trs_error perr = TRS_ERROR_INIT;
			int prc;
			if (r->dry_run) {
				if (!first) {
					drain_channel(j, res);
					first = &j->puts[i];
				}
				if (!res[i].code)
					res[i].done = 1;
				continue;
			}
			if (!body_used) {
				/* The object's body fails its last read unless the bytes have the manifest's MD5
				 * (or, with --verify size, its size): a backend may take that MD5, not hash again. */
				trs__vouched_body vb;
				trs_body *b = j->md5[0] ? trs__vouched_body_init(&vb, &j->body, j->md5) : &j->body;
				prc = trs_upload_if_newer(r->storage, &j->puts[i].request, cond, b, &perr);
				if (prc < 0) {
					res[i].code = prc;
					res[i].err = perr;
					trs__error_set(&perr, prc, "not attempted: the object could not be written to its first target");
					fail_all(j, res, prc, &perr);
					break;
				}
				int wrote = prc == TRS_WRITTEN || prc == TRS_WRITTEN_UNCHECKED;
				body_used = wrote || trs__channel_started(j);
				if (wrote)
					first = &j->puts[i];
			} else if (first) {
				prc = trs_storage_copy_if_newer(r->storage, first->request.bucket, first->request.key,
								&j->puts[i].request, cond, &perr);
				if (prc < 0) {
					res[i].code = prc;
					res[i].err = perr;
					continue;
				}
			} else {
				/* The body was read by a write that then found a newer version: nothing to copy from. */
				res[i].code = TRS_EIO;
				trs__error_set(&res[i].err, TRS_EIO,
					       "not attempted: the object's bytes went to a target that then held a newer "
					       "version; run again to write this target");
				continue;
			}
			res[i].done = 1;
			res[i].outcome = prc;
			res[i].bytes = j->stream_len;
		}
	}
	if (j->streamed)
		trs__channel_close(r, j);
	record(r, j, res);
	if (res != stack_res)
		free(res);
}
