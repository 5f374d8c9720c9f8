/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The writer threads of a restore run, and what they take of the memory
 * budget and of the writers.
 *
 * A run alone (trs_process) has a budget of its own and starts all its
 * writers at once. The archives in flight of one trs_serve share one budget
 * (r->shared): a run joins it, starts the writers of its floor, and
 * borrows one more writer whenever a job waits with no writer free and the
 * budget has one to lend; a borrowed writer goes back as soon as it finds
 * no job, or when another archive waits to join. So one archive alone gets
 * every writer, and many share them (docs/architecture.md).
 */
#include "pipeline.h"

#include <stdlib.h>

#define CHUNK_MAX (8ull << 20)
#define CHUNK_MIN 65536ull
#define BATCH_JOBS 32 /* small jobs a writer takes at once (local destinations) */

enum { TRS_WRITER_EMPTY = 0, TRS_WRITER_RUNNING, TRS_WRITER_EXITED };

unsigned int trs__run_writer_threads(const trs_ctx *ctx, const trs_storage *s)
{
	/* Local writes are CPU- and syscall-bound; remote ones wait on the network. The backend may cap it. */
	unsigned int n = ctx->max_inflight > ctx->workers && !(trs__storage_caps(s) & TRS_STORAGE_LOCAL) ? ctx->max_inflight
													   : ctx->workers;
	unsigned int cap = trs__storage_parallelism(s);
	return cap && cap < n ? cap : n;
}

uint64_t trs__run_chunk_size(const trs_ctx *ctx)
{
	uint64_t chunk = ctx->max_memory / 8 < CHUNK_MAX ? ctx->max_memory / 8 : CHUNK_MAX;
	return chunk < CHUNK_MIN ? CHUNK_MIN : chunk;
}

/* What a run may hold: the context's memory less what the storage keeps for itself (S3's part buffers). */
static uint64_t run_memory(const trs_ctx *ctx, const trs_storage *s)
{
	uint64_t reserved = trs__storage_reserved_memory(s);
	return ctx->max_memory > reserved ? ctx->max_memory - reserved : ctx->max_memory / 2;
}

void trs__run_share_init(trs__budget *b, const trs_ctx *ctx, const trs_ctx *run_ctx, const trs_storage *dest,
			 unsigned int archives)
{
	uint64_t limit = run_memory(ctx, dest);
	trs__budget_init(b, limit);
	/* A run's floor holds at least one of its chunks: every wait of its reader
	 * (a chunk or a whole small body at most) can be met by what it holds itself. */
	uint64_t floor = limit / archives, chunk = trs__run_chunk_size(run_ctx);
	if (floor < chunk)
		floor = chunk < limit ? chunk : limit; /* then fewer archives run at once: a join waits for a floor */
	unsigned int writers = trs__run_writer_threads(ctx, dest);
	unsigned int writer_floor = writers / archives ? writers / archives : 1;
	if (writers < writer_floor * archives)
		writers = writer_floor * archives; /* one writer per archive at least, as before */
	trs__budget_share(b, floor, writers, writer_floor);
}

/* Under r->mu: this borrowed writer should go back (no job waits, or an archive waits to join). */
static bool give_back(trs__run *r, const trs__writer *w)
{
	return w->borrowed && (!r->head || trs__account_writer_wanted(&r->account));
}

static void *writer_main(void *arg)
{
	trs__writer *w = arg;
	trs__run *r = w->run;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->head && !r->stopping && !give_back(r, w)) {
			r->idle++;
			pthread_cond_wait(&r->work_cv, &r->mu);
			r->idle--;
		}
		trs__job *j = r->head;
		if (!j || give_back(r, w))
			break;
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		if (r->queued-- == r->queue_max)
			pthread_cond_signal(&r->queue_cv);
		pthread_mutex_unlock(&r->mu);
		unsigned int n = j->batch_count;
		while (j) {
			trs__job *next = j->batch_next;
			trs__job_execute(r, j);
			trs__job_unref(r, j);
			j = next;
		}
		pthread_mutex_lock(&r->mu);
		if ((r->busy -= n) == 0)
			pthread_cond_signal(&r->idle_cv);
	}
	r->live--;
	w->state = TRS_WRITER_EXITED;
	if (w->borrowed)
		trs__account_return_writer(&r->account);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Under r->mu: start a writer in a free slot (an exited one is joined first). */
static bool spawn_locked(trs__run *r, bool borrowed)
{
	trs__writer *w = NULL;
	for (unsigned int i = 0; i < r->nthreads && !w; i++)
		if (r->threads[i].state == TRS_WRITER_EXITED) {
			pthread_join(r->threads[i].thread, NULL); /* it has returned, or is about to */
			w = &r->threads[i];
		}
	if (!w && r->nthreads < r->max_threads)
		w = &r->threads[r->nthreads++];
	if (!w)
		return false;
	w->run = r;
	w->borrowed = borrowed;
	w->state = TRS_WRITER_RUNNING;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		w->state = TRS_WRITER_EMPTY;
		return false;
	}
	r->live++;
	return true;
}

void trs__run_grow_locked(trs__run *r)
{
	if (r->queued <= r->idle || r->live >= r->max_threads || !trs__account_borrow_writer(&r->account))
		return;
	if (!spawn_locked(r, true))
		trs__account_return_writer(&r->account);
}

int trs__run_start(trs__run *r, unsigned int threads, trs_error *err)
{
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->work_cv, NULL);
	pthread_cond_init(&r->idle_cv, NULL);
	pthread_cond_init(&r->queue_cv, NULL);
	if (threads < 1)
		threads = 1;
	r->queue_max = 4 * threads + 16;
	r->batch_max = trs__storage_caps(r->storage) & TRS_STORAGE_LOCAL ? BATCH_JOBS : 1;
	r->server_md5_below = trs__storage_md5_checked_below(r->storage);
	r->stream_one_ahead = trs__storage_reserved_memory(r->storage) > 0;
	trs__budget *shared = r->shared;
	if (!shared) {
		trs__budget_init(&r->budget, run_memory(r->ctx, r->storage));
		trs__budget_join(&r->budget, &r->account, NULL); /* no floor: it never waits */
	} else if (trs__budget_join(shared, &r->account, r->ctx->cancel) < 0) {
		return trs__error_set(err, TRS_ECANCELED, "canceled while waiting for memory and writers");
	}
	r->max_threads = threads;
	r->threads = trs__calloc(threads, sizeof(*r->threads), err);
	if (!r->threads) {
		trs__budget_leave(&r->account);
		return TRS_ENOMEM;
	}
	/* The floor's writers (all of them when writers are not shared); the rest are borrowed. */
	unsigned int start = shared && r->account.writers ? r->account.writers : threads;
	pthread_mutex_lock(&r->mu);
	for (unsigned int i = 0; i < start && i < threads; i++)
		if (!spawn_locked(r, false))
			break;
	while (shared && r->account.writers > r->live)
		trs__account_return_writer(&r->account); /* fewer writers than the floor: lend the rest */
	pthread_mutex_unlock(&r->mu);
	if (!r->live) {
		trs__budget_leave(&r->account);
		return trs__error_set(err, TRS_ENOMEM, "cannot start writer threads");
	}
	return 0;
}

void trs__run_wait_idle(trs__run *r)
{
	trs__run_flush(r);
	pthread_mutex_lock(&r->mu);
	while (r->busy)
		pthread_cond_wait(&r->idle_cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

void trs__run_finish(trs__run *r)
{
	trs__run_flush(r);
	trs__run_forget_streamed(r);
	pthread_mutex_lock(&r->mu);
	while (r->busy)
		pthread_cond_wait(&r->idle_cv, &r->mu);
	r->stopping = 1;
	pthread_cond_broadcast(&r->work_cv);
	pthread_mutex_unlock(&r->mu);
	for (unsigned int i = 0; i < r->nthreads; i++) {
		pthread_mutex_lock(&r->mu); /* a writer marks its slot as it leaves */
		bool started = r->threads[i].state != TRS_WRITER_EMPTY;
		pthread_mutex_unlock(&r->mu);
		if (started)
			pthread_join(r->threads[i].thread, NULL);
	}
	free(r->threads);
	r->threads = NULL;
	r->nthreads = 0;
	trs__budget_leave(&r->account);
	if (!r->shared)
		trs__budget_destroy(&r->budget);
	pthread_cond_destroy(&r->work_cv);
	pthread_cond_destroy(&r->idle_cv);
	pthread_cond_destroy(&r->queue_cv);
	pthread_mutex_destroy(&r->mu);
}
