/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The restore pipeline's moving parts (lib/core/pipeline.c): the run's memory
 * budget (an account of a trs__budget, lib/core/budget.c: the run's own, or the
 * one the archives in flight of trs_serve share), a queue of jobs, writer threads
 * that write objects (lib/core/pipeline_workers.c), and the channel that streams
 * a large object's body from the reading thread to its worker.
 * lib/core/process.c walks the archive and feeds it.
 */
#ifndef TRS_PIPELINE_H
#define TRS_PIPELINE_H

#include "internal.h"
#include "archive/object_iter.h"
#include "budget.h"
#include "failure_groups.h"
#include "log_repeat.h"

#include <pthread.h>

typedef struct trs__chunk {
	struct trs__chunk *next;
	size_t len;
	size_t pos;
	unsigned char data[];
} trs__chunk;

typedef enum {
	TRS_JOB_PUT = 0,   /* write an object to its puts */
	TRS_JOB_STAGE,     /* write bytes that came before the manifest to the staging directory */
	TRS_JOB_PUBLISH,   /* move a staged object into place for its puts */
	TRS_JOB_SPOOL      /* write out a buffer of the spool (lib/core/spool.c) at offset stage_index */
} trs__job_kind;

/* What a stage job reports back to the reader's pending entry (one per early object: kept small). */
typedef struct trs__stage_result {
	char md5[33];
	int code;
	trs_error *err;            /* malloc'ed on failure only (NULL when that failed too) */
} trs__stage_result;

typedef struct trs__job {
	struct trs__job *next;
	struct trs__job *batch_next; /* small jobs a worker takes together (local destinations) */
	unsigned int batch_count;  /* on the first of a batch: how many */
	trs__job_kind kind;
	trs_storage_stage *stage;      /* STAGE, PUBLISH */
	struct trs__spool *spool;  /* SPOOL */
	uint64_t stage_index;
	trs__stage_result *stage_result; /* STAGE: where to report */
	char staged_md5[33];       /* PUBLISH, PUT from the spool: what the bytes hash to ("": not hashed) */
	int stage_code;            /* PUBLISH: staging failed with this code */
	trs_error *stage_err;      /* PUBLISH: and this error (the job's, malloc'ed; NULL: out of memory) */
	const trs_manifest_object *entry;
	trs_object_put *puts;      /* deep copies; strings in `strings` */
	size_t nputs;
	char *strings;
	int missing;               /* an entry without a member: every put fails */
	int rewrite;               /* a later copy of a tar member: written over the earlier one */

	/* A buffered body: the worker checks size and MD5, then uploads from memory. */
	unsigned char *data;
	uint64_t len;
	uint64_t budget;           /* budget bytes held by `data` */
	char md5[33];              /* expected MD5, "" when the etag is not one */

	/* A streamed body: chunks pushed by the reader, pulled by the worker's upload. */
	int streamed;
	uint64_t stream_len;
	pthread_cond_t cv;
	trs__chunk *head, *tail;
	trs__chunk *peeked;         /* the head chunk as the worker last saw it (worker only) */
	int ended;                 /* the reader pushed everything (or failed: end_code) */
	int end_code;
	trs_error *end_error;      /* malloc'ed on failure only: a job is allocated per object, kept small */
	int closed;                /* the worker is done with the channel: pushes are dropped */
	int started;               /* the worker read from the channel (or closed it) */
	int refs;                  /* reader + worker (+ the run while it is the last streamed job) */
	trs_body body;
	struct trs__run *run;
} trs__job;

typedef struct trs__run trs__run;

/* A writer thread's slot (lib/core/pipeline_workers.c). */
typedef struct trs__writer {
	trs__run *run;
	pthread_t thread;
	int state;                 /* TRS_WRITER_EMPTY, _RUNNING or _EXITED (joined when the slot is reused) */
	int borrowed;              /* beyond the run's floor: goes back to the shared budget when idle */
} trs__writer;

struct trs__run {
	trs_ctx *ctx;
	trs_storage *storage;
	trs_report *report;
	int dry_run;
	uint64_t server_md5_below; /* the storage checks Content-MD5 of single puts below this size */
	int overwrite_always;      /* TRS_OVERWRITE_ALWAYS: no version is compared */
	unsigned int write_flags;  /* TRS_WRITE_* of every write's condition (TRS_WRITE_ASK_FIRST on a redelivery) */

	pthread_mutex_t mu;
	pthread_cond_t work_cv;    /* a job was queued (or stop) */
	pthread_cond_t idle_cv;    /* no job queued or running */
	pthread_cond_t queue_cv;   /* a queued job was taken */
	unsigned int queued, queue_max; /* jobs waiting for a worker: the reader waits beyond queue_max */
	trs__job *head, *tail;
	trs__job *batch_head, *batch_tail; /* the reader's batch, not yet queued (reader only) */
	unsigned int batch_n, batch_max;
	uint64_t batch_bytes;
	trs__budget *shared;       /* the budget of the archives in flight (trs_serve), or NULL */
	trs__budget budget;        /* the run's own, when nothing is shared */
	trs__budget_account account; /* what the run holds: bytes, and writers when they are shared */
	trs__writer *threads;       /* max_threads slots */
	unsigned int nthreads;     /* slots used so far */
	unsigned int max_threads;
	unsigned int live;         /* writers running */
	unsigned int idle;         /* writers waiting for a job */
	unsigned int busy;         /* jobs queued or running */
	int stopping;
	uint64_t objects_done;
	const trs_manifest *manifest;
	unsigned char *outcomes;   /* per manifest entry, for rewrites (lib/core/report.c); NULL: none kept */
	int abort_code;            /* credentials failed: every later object would fail alike */
	/* The storage keeps memory of its own (S3's part pool), which an upload may wait for
	 * before it reads its body: the next streamed job waits until this one is read from. */
	int stream_one_ahead;
	trs__job *last_streamed;
	trs_error abort_err;
	trs__log_repeats repeats;  /* lines of this archive that repeat, capped per kind (the reader's too) */
	trs__failure_groups failures; /* failed puts by cause, said once each at the end (under mu) */
};

/* Start the writers (lib/core/pipeline_workers.c): `threads` at most. With a
 * shared budget (r->shared), join it first (waiting for this run's floor),
 * start the floor's writers and borrow the others while jobs wait. */
int trs__run_start(trs__run *r, unsigned int threads, trs_error *err);
/* Wait until every submitted job is done, then stop the workers. */
void trs__run_finish(trs__run *r);
/* Under r->mu, after a job was queued: one more writer if jobs wait for one and the budget lends it. */
void trs__run_grow_locked(trs__run *r);
/* Drop the run's reference to its last streamed job (before the run ends). */
void trs__run_forget_streamed(trs__run *r);
/* Queue the reader's batch of small jobs. */
void trs__run_flush(trs__run *r);
/* Run one job (lib/core/pipeline.c). */
void trs__job_execute(trs__run *r, trs__job *j);

/* Writer threads of a run to `s`: the context's workers for a local
 * destination, else its max_inflight; the backend may cap it. */
unsigned int trs__run_writer_threads(const trs_ctx *ctx, const trs_storage *s);
/* The size of the chunks (and the largest whole body) of a run with this context. */
uint64_t trs__run_chunk_size(const trs_ctx *ctx);
/* Set up `b` for `archives` runs at once of `run_ctx` (its max_memory one
 * archive's share, its limits otherwise the whole's) into `dest`: the whole
 * memory and writers, and each run's floor (docs/architecture.md). */
void trs__run_share_init(trs__budget *b, const trs_ctx *ctx, const trs_ctx *run_ctx, const trs_storage *dest,
			 unsigned int archives);
/* trs_process and trs_process_from_storage with a budget shared by the archives in flight of one
 * trs_serve (NULL: the restore's own, as the public calls do); lib/core/process.c, fetch.c. */
int trs__process_shared(trs_ctx *ctx, trs_storage *storage, const trs_archive_source *source,
			const trs_process_options *options, trs__budget *shared, trs_report **report_out, trs_error *err);
int trs__process_from_storage_shared(trs_ctx *ctx, trs_storage *dest, trs_storage *source, const char *bucket,
				     const char *key, const trs_fetch_options *fetch_options,
				     const trs_process_options *options, trs__budget *shared, trs_report **report,
				     trs_error *err);

/* The run's budget (lib/core/budget.c): trs__budget_take and trs__budget_give,
 * but a reader about to wait first hands its batch (which holds budget) to
 * the writers. */
int trs__run_budget_take(trs__run *r, uint64_t n, int wait);
void trs__run_budget_give(trs__run *r, uint64_t n);

/* Wait until every submitted job is done; the workers keep running. */
void trs__run_wait_idle(trs__run *r);

/* A job writing `data` (taken from the budget) to staged file `index`. */
trs__job *trs__job_new_stage(trs_storage_stage *st, uint64_t index, unsigned char *data, uint64_t len,
			    trs__stage_result *result, trs_error *err);

/* Run a TRS_JOB_STAGE job (lib/core/pipeline_stage.c): write its bytes to the staged file, report to the reader. */
void trs__stage_write(trs__job *j);
/* Run a TRS_JOB_SPOOL job (lib/core/pipeline_stage.c). */
void trs__spool_write_job(trs__job *j);

/* A job for one object (puts deep-copied). */
trs__job *trs__job_new(const trs_object *o, trs_error *err);
/* Queue a job (the reading thread only). Waits while queue_max jobs wait for a worker, so that
 * what the restore holds per object does not grow with the archive (objects that were staged
 * take no budget: nothing else would stop the reader). */
void trs__job_submit(trs__run *r, trs__job *j);

/* Drop a reference (reader or worker); the last one frees the job and gives its memory back. */
void trs__job_unref(trs__run *r, trs__job *j);

/* The chunk channel (lib/core/chunk_channel.c). Make `j` a streamed job before
 * submitting it; then push chunks (taken from the budget by the caller) and
 * end it once. The worker reads j->body, or the channel directly. */
void trs__job_stream(trs__job *j, uint64_t length);
void trs__job_push(trs__run *r, trs__job *j, trs__chunk *c);
void trs__job_end(trs__run *r, trs__job *j, int code, const trs_error *err);
int64_t trs__channel_read(trs__job *j, void *buf, size_t len, trs_error *err);
/* The next unread bytes of the channel, in place: their count (*data valid until
 * trs__channel_advance), 0 at the end, or the reader's failure code (err filled). */
int64_t trs__channel_peek(trs__job *j, const unsigned char **data, trs_error *err);
/* Mark n of the bytes trs__channel_peek gave as read (a finished chunk goes back to the budget). */
void trs__channel_advance(trs__job *j, size_t n);
/* Read to the end, discarding: 0, or the reader's failure code (err filled). */
int trs__channel_drain(trs__job *j, trs_error *err);
/* Has the worker read from the channel (or closed it)? */
int trs__channel_started(trs__job *j);
/* The worker is done: later pushes are dropped, what is queued is freed. */
void trs__channel_close(trs__run *r, trs__job *j);
/* Free a list of chunks; returns the budget bytes they held. */
uint64_t trs__chunks_free(trs__chunk *c);

/* Say the archive's failed puts, one line per cause, after trs__run_finish (no writer is left). */
void trs__run_log_failures(trs__run *r);
/* Report an object-target failure found by the reader (under the run's lock). */
void trs__run_put_failed(trs__run *r, const trs_manifest_object *e, const trs_object_put *p, int code,
			 const char *message);

/* Objects finished and object bytes written so far (under the run's lock). */
void trs__run_done(trs__run *r, uint64_t *objects, uint64_t *bytes);

/* Report progress (ctx->progress) from the reading thread (lib/core/progress.c). */
void trs__restore_progress(trs__run *run, const trs_archive *archive);
/* trs__run_wait_idle, reporting progress every 0.2 s while the writers work. */
void trs__restore_wait_idle(trs__run *run, const trs_archive *archive);

/* TRS_EAUTH (with the first such error in *err) once the credentials were
 * found missing or refused; then the reader stops sending objects. */
int trs__run_aborted(trs__run *r, trs_error *err);

#endif
