/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The queue consumer's shared state (lib/serve*.c).
 *
 * - lib/serve/serve.c: options, the receiving loop (the caller's thread), start and stop;
 * - lib/serve/serve_archive.c: what an archive runner does with one message;
 * - lib/serve/serve_keeper.c: the keeper thread: stop flags, per-message visibility
 *   heartbeats, batched deletes, releases;
 * - lib/serve/serve_delete.c: the deleting threads: staging deletes off the runners' path;
 * - lib/serve/serve_health.c: the loop's signs of life (the health file, the service manager).
 *
 * Every message received is a serve_msg on `msgs` until the keeper deletes,
 * leaves or releases it. Runners take PENDING messages from the work queue.
 */
#ifndef TRS_SERVE_INTERNAL_H
#define TRS_SERVE_INTERNAL_H

#include "core/budget.h"
#include "internal.h"
#include "notify.h"
#include "trs/serve.h"

#include <pthread.h>
#include <stdatomic.h>

typedef enum {
	MSG_PENDING = 0, /* received, waiting for a runner; heartbeats keep it */
	MSG_RUNNING,     /* a runner works on it; heartbeats keep it */
	MSG_DELETING,    /* runner done, staging deletes pending; heartbeats keep it */
	MSG_DONE,        /* all its archives done: the keeper deletes it */
	MSG_LEFT,        /* failed or poison: its visibility timeout brings it back */
	MSG_HELD         /* not finished because of a stop: the keeper releases it */
} serve_msg_state;

typedef struct serve_msg {
	struct serve_msg *next;      /* on serve_state.msgs */
	struct serve_msg *next_work; /* on the work queue while PENDING */
	trs_queue_message m;         /* owned (strings malloc'ed by the queue backend) */
	serve_msg_state state;
	serve_msg_state outcome; /* what its runner said; its state once its staging deletes returned */
	unsigned int deletes;    /* staging deletes queued or in progress */
	bool delete_canceled;    /* one of them was canceled by the stop */
	double received_at;
	double next_heartbeat;
} serve_msg;

typedef struct serve_delete serve_delete; /* lib/serve/serve_delete.c */

/*
 * The state of one trs_serve, grouped by who owns what (as aws-c-s3 groups a
 * meta request's synced_data and threaded_data). Threads: the receiving loop
 * (trs_serve's own thread), the archive runners (serve_archive.c), the
 * deleters (serve_delete.c) and the keeper (serve_keeper.c); each gets the
 * whole serve_state through pthread_create and touches only its groups.
 */
typedef struct serve_state {
	/* Set up before any thread starts; read-only after. */
	trs_ctx *ctx;              /* the caller's */
	struct trs_ctx run_ctx;    /* what archives run with: the caller's, its cancel flag `abort_archive` */
	trs__budget budget;        /* memory and writers, shared by the archives in flight (its own lock) */
	trs_queue *queue;
	trs_storage *dest;
	trs_storage *staging;
	trs_serve_options o;
	const char *label;
	pthread_t *runners;        /* started and joined by the receiving thread */
	unsigned int nrunners;

	/* Flags, any thread. These two are read through the public `const volatile
	 * int *` protocols of trs_ctx_options.cancel and trs_queue_receive_options.
	 * interrupt (so their type is the API's); they are written with atomic
	 * stores and read with atomic loads (trs__flag_raised), like the others. */
	volatile int interrupt;     /* stops a receive that is waiting */
	volatile int abort_archive; /* cancels the archives in progress */
	atomic_int stopping;        /* a stop was requested: no more receives or starts */
	atomic_int receiving_done;  /* the receiving loop ended: runners exit when the work is gone */
	atomic_int finished;        /* the runners are gone: the keeper flushes and exits */

	/* Counters, any thread (atomics), reported at the end. */
	atomic_uint_fast64_t archives_done, archives_failed, archives_canceled, messages_deleted, messages_poison,
		messages_released;

	pthread_mutex_t lock;       /* guards `work` and `del` */

	/* The messages held, the work queue, and the retry counters already reported: receiver,
	 * runners and keeper, under `lock`. */
	struct {
		pthread_cond_t work_cv;   /* runners: work queued, or the end */
		pthread_cond_t slot_cv;   /* receiver: a message left a slot */
		pthread_cond_t keeper_cv; /* keeper: something to delete or release */
		serve_msg *msgs;
		serve_msg *work_head, *work_tail;
		unsigned int held;        /* PENDING or RUNNING */
		unsigned int running;     /* RUNNING */
		unsigned int peak_running;
		bool backpressure_logged;
		trs_retry_stats retries_emitted; /* runners: the destination's retry counters at the last metrics */
	} work;

	/* The staging deletes: runners queue them, the deleters take them, under `lock`. */
	struct {
		pthread_cond_t cv;        /* deleters: a delete queued, or the end */
		pthread_cond_t room_cv;   /* runners: room in the queue */
		serve_delete *head, *tail;
		unsigned int queued, room;
		bool stopping;
		pthread_t *threads;
		unsigned int nthreads;
	} del;

	/* The keeper thread's alone. */
	struct {
		double stop_at;            /* when it saw the stop: the shutdown grace counts from here */
	} keeper;

	/* Signs of life (lib/serve/serve_health.c): the receiving thread's alone. */
	struct {
		trs__notify notify;
		double alive_every;    /* seconds between two signs of life, at least */
		double alive_at;       /* the last one (trs__now) */
		bool ready;            /* the queue answered: READY=1 sent */
		bool receive_failing;  /* the last receive failed: STATUS says so until one succeeds */
		bool notify_failed;    /* a notification failed: logged once */
		char status[320];      /* the last STATUS= sent */
	} health;
} serve_state;

/* lib/serve/serve_archive.c: a runner thread. */
void *trs__serve_runner(void *arg);

/* lib/serve/serve_archive.c: an archive's end once its staging delete returned
 * (rc): logged, counted, its metrics recorded. */
void trs__serve_archive_deleted(serve_state *s, const trs_queue_message *m, const char *bucket, const char *key,
				trs_report *report, double started_at, double lag, int rc, const trs_error *err);

/* lib/serve/serve_delete.c: the deleting threads. delete_staging queues the
 * staging delete of a restored archive of `sm` (taking `report`; waits while
 * the queue is full); deleters_stop drains the queue and joins them. */
void trs__serve_deleters_start(serve_state *s);
void trs__serve_deleters_stop(serve_state *s);
void trs__serve_delete_staging(serve_state *s, serve_msg *sm, const trs_archive_ref *ref, trs_report *report,
			       double started_at, double lag);
serve_msg_state trs__serve_msg_outcome(const serve_msg *sm);

/* lib/serve/serve_health.c, from the receiving thread without the lock held:
 * health_open opens the manager's socket (and shortens a long poll that would
 * outlast half the watchdog); alive is a turn of the loop (the health file,
 * WATCHDOG=1, a changed STATUS=; at most every alive_every seconds); ready is
 * the queue's first answer (READY=1); receive_failing and stopping say so in
 * STATUS= (stopping with STOPPING=1). */
void trs__serve_health_open(serve_state *s);
void trs__serve_alive(serve_state *s);
void trs__serve_ready(serve_state *s);
void trs__serve_receive_failing(serve_state *s, const char *error);
void trs__serve_stopping(serve_state *s, int rc, const trs_error *err);
void trs__serve_health_close(serve_state *s);

/* lib/serve/serve_keeper.c: the keeper thread. */
void *trs__serve_keeper(void *arg);

bool trs__serve_stop_requested(const serve_state *s);
void trs__serve_fmt_u64(char *buf, size_t size, uint64_t v);

#endif
