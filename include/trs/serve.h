/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: the queue consumer (`trs serve`), a drop-in for the Target Region
 * Service's Python container.
 *
 * trs_serve receives notifications from a queue (trs/queue.h), restores
 * every archive they name (trs_fetch_start from the staging storage, then
 * trs_process into the destination storage), and only when every object of
 * this region was written deletes the archive from staging and then the
 * message. Anything else keeps both: the visibility timeout brings the
 * message back and the next attempt redoes the work (puts are idempotent).
 *
 * - Backup targets (docs/operations.md, backup targets) get a server-side copy of the archive
 *   when staging is the destination storage itself, else an upload from
 *   the fetched spool; options->process->catalog_bucket must be set for
 *   them (an archive with a backup target and no catalog bucket fails and
 *   keeps its message). A failed backup copy or catalog write keeps the
 *   archive and the message like a failed object.
 * - An archive that is already gone (a redelivery after success) counts as
 *   done. A message is deleted only when all its archives are done.
 * - A poison message (not a notification we know, docs/operations.md) is logged
 *   and left alone for the queue's redrive policy. The s3:TestEvent is
 *   deleted without work.
 * - Several archives in flight (options->archives, default 16): each
 *   message goes to one of that many archive runners; the next receive
 *   is made as soon as a runner is free, while the others work. A message
 *   is deleted as soon as its own archives are done (DeleteMessageBatch when
 *   several finish together), never held back by a slower one. All
 *   archives in flight take from one budget of the context's max_memory
 *   and writers (max_inflight, workers): each running archive is sure of a
 *   floor of 1/archives of it, and what no running archive's floor keeps is
 *   lent to whichever asks, so one archive alone may use all of it and the
 *   totals stay within the context's limits whatever `archives` is
 *   (docs/architecture.md, "One budget for the archives in flight"); all
 *   share the storages' connection pools.
 * - Each message held has its own visibility heartbeat
 *   (ChangeMessageVisibility to visibility_timeout every third of it).
 * - Signs of life: options->health_file is touched at every turn of the
 *   receiving loop; with options->notify_socket the service manager hears
 *   READY=1 once the queue first answered, WATCHDOG=1 at the turns,
 *   STATUS= lines and STOPPING=1 when the loop ends (systemd Type=notify).
 * - Stopping: when *options->stop becomes nonzero (a signal handler may set
 *   it), no more messages are received or started; the archives in
 *   progress have shutdown_grace seconds to finish, then they are
 *   canceled; messages not done are made visible again at once; trs_serve
 *   returns 0. Raising the context's cancel flag stops at once the same
 *   way (no grace).
 */
#ifndef TRS_SERVE_H
#define TRS_SERVE_H

#include "fetch.h"
#include "metrics.h"
#include "process.h"
#include "queue.h"
#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRS_SERVE_OPTIONS_VERSION 3
#define TRS_SERVE_DEFAULT_ARCHIVES 16
#define TRS_SERVE_MAX_ARCHIVES 256

typedef struct trs_serve_options {
	unsigned int version;
	unsigned int max_messages;       /* per receive, 1..10; default 1 (MAX_MESSAGES_PER_BATCH) */
	unsigned int visibility_timeout; /* seconds; default 300 (VISIBILITY_TIMEOUT) */
	unsigned int wait_seconds;       /* long poll, 0..20; default 20 (POLL_INTERVAL); see wait_set */
	int wait_set;                    /* nonzero: wait_seconds is meant even when 0 */
	double shutdown_grace;           /* seconds the archive in progress may take after a stop; default 30 */
	const volatile int *stop;        /* graceful stop flag, raised as the context's cancel flag is (an
	                                  * atomic store); NULL: only the context's cancel flag */
	trs_storage *staging;            /* where archives are fetched from; NULL: the destination storage */
	trs_metrics *metrics;            /* per-archive metrics; NULL: none */
	const trs_fetch_options *fetch;  /* NULL: defaults */
	const trs_process_options *process; /* NULL: defaults */
	const char *queue_label;         /* the queue as logs name it (e.g. its URL); NULL: the backend's name */
	uint64_t max_batches;            /* stop after this many receives that returned messages; 0: never (tests) */
	/* version 2 */
	unsigned int archives;           /* archives in flight, 1..256; default 16 (MAX_ARCHIVES) */
	double max_idle;                 /* return 0 after this many seconds with no message held or
	                                    received; 0: never (batch jobs, benchmarks) */
	const char *health_file;         /* touched at every turn of the loop (a liveness probe, at most once a
	                                    second; trs_serve_health_age reads it); NULL: none */
	/* version 3 */
	const char *notify_socket;       /* the service manager's socket (systemd's NOTIFY_SOCKET: a path, or
	                                    "@name" in the abstract namespace): READY=1 once the queue first
	                                    answered, STATUS= lines, WATCHDOG=1, STOPPING=1; NULL: none */
	double watchdog_seconds;         /* the manager's watchdog (WATCHDOG_USEC / 1e6): WATCHDOG=1 at the turns
	                                    of the loop, at least every half of it (a longer long poll is
	                                    shortened to fit); 0: none */
} trs_serve_options;

#define TRS_SERVE_OPTIONS_INIT {TRS_SERVE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

#define TRS_SERVE_ENV_VERSION 1

/** What the environment says beyond trs_serve_options (strings point into the environment). */
typedef struct trs_serve_env {
	unsigned int version;
	const char *queue_url;       /* SQS_QUEUE_URL; NULL when unset */
	const char *catalog_bucket;  /* CATALOG_BUCKET; NULL when unset */
	unsigned int workers;        /* MAX_WORKERS, 1..1024; 0 when unset. The consumer's parallel
	                                writers, all archives in flight together: give it to
	                                trs_ctx_options.workers and, unless set otherwise,
	                                trs_ctx_options.max_inflight */
} trs_serve_env;

#define TRS_SERVE_ENV_INIT {TRS_SERVE_ENV_VERSION, 0, 0, 0}

/**
 * Read the service's environment into `options` (set up with
 * TRS_SERVE_OPTIONS_INIT first) and `env` (may be NULL), as `trs serve` does:
 *
 * - MAX_MESSAGES_PER_BATCH, 1..10: options->max_messages;
 * - VISIBILITY_TIMEOUT, 1..TRS_QUEUE_MAX_VISIBILITY (43200) seconds: options->visibility_timeout;
 * - POLL_INTERVAL, 0..20 seconds: options->wait_seconds (the long poll);
 * - MAX_ARCHIVES, 1..256: options->archives;
 * - TRS_HEALTH_FILE: options->health_file (version 2 and later);
 * - NOTIFY_SOCKET and WATCHDOG_USEC, as systemd sets them for a unit of
 *   Type=notify: options->notify_socket and options->watchdog_seconds
 *   (version 3 and later; the watchdog is left off when WATCHDOG_PID names
 *   another process);
 * - MAX_WORKERS, SQS_QUEUE_URL, CATALOG_BUCKET: into `env`.
 *
 * Unset or empty variables leave their fields alone. Returns 0, or
 * TRS_EINVAL naming the variable and its range for a bad value.
 */
TRS_EXTERN(int) trs_serve_options_from_env(trs_serve_options *options, trs_serve_env *env, trs_error *err);

/**
 * Run the consumer until stopped. `destination` receives the restored
 * objects. Returns 0 after a stop; TRS_EINVAL for bad options; or, when the
 * very first receive fails for a reason retrying cannot fix (no such queue,
 * refused credentials), that error. Later receive failures are logged and
 * retried with backoff.
 */
TRS_EXTERN(int) trs_serve(trs_ctx *ctx, trs_queue *queue, trs_storage *destination,
			  const trs_serve_options *options, trs_error *err);

/**
 * How long ago the health file at `path` (trs_serve_options.health_file)
 * was last touched, in seconds, into *age_seconds: what a liveness probe
 * compares with its limit (`trs health`). A time in the future (the clock
 * stepped back) counts as 0. Returns 0; TRS_ENOTFOUND when there is no
 * such file (the loop never turned, or serves without a health file);
 * TRS_EIO when it cannot be read; TRS_EINVAL for a NULL or empty path.
 */
TRS_EXTERN(int) trs_serve_health_age(const char *path, double *age_seconds, trs_error *err);

#ifdef __cplusplus
}
#endif
#endif
