/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: metrics (docs/metrics.md), in the namespace "S3Compressor" or the
 * value of STACK_NAME, with the TargetBucket and Stage dimensions the
 * running service uses.
 *
 * Sinks: CloudWatch PutMetricData (batched, sent from a background thread:
 * never blocks a restore, and a failing CloudWatch never fails an archive),
 * CloudWatch Embedded Metric Format JSON lines (to a callback, stdout by
 * default), or none.
 */
#ifndef TRS_METRICS_H
#define TRS_METRICS_H

#include "context.h"
#include "manifest.h"
#include "process.h"
#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trs_metrics trs_metrics;

typedef enum {
	TRS_METRICS_NONE = 0,
	TRS_METRICS_EMF,
	TRS_METRICS_CLOUDWATCH
} trs_metrics_sink;

#define TRS_METRICS_OPTIONS_VERSION 1

typedef struct trs_metrics_options {
	unsigned int version;
	trs_metrics_sink sink;
	const char *metric_namespace;   /* NULL: $STACK_NAME, else "S3Compressor" */
	/* EMF: each JSON line (with its newline) goes here; NULL: stdout. */
	void (*emf_write)(const char *line, size_t len, void *userdata);
	void *emf_userdata;
	/* CloudWatch: NULL: AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL, the regional endpoint. */
	const char *endpoint_url;
	const char *region;              /* NULL: the context's region */
	int no_verify_ssl;
} trs_metrics_options;

#define TRS_METRICS_OPTIONS_INIT {TRS_METRICS_OPTIONS_VERSION, TRS_METRICS_NONE, 0, 0, 0, 0, 0, 0}

/** Parse "cloudwatch", "emf" or "none". TRS_EINVAL otherwise. */
TRS_EXTERN(int) trs_metrics_sink_parse(const char *name, trs_metrics_sink *out);

/**
 * Create a metrics recorder. `options` NULL means the "none" sink. For
 * CloudWatch this starts the sender thread; credentials are looked up on the
 * first send, so a missing identity is logged then rather than failing here.
 * TRS_EINVAL for a bad option (or no region and no endpoint for CloudWatch).
 * The recorder may be used from many threads at once; ctx must outlive it.
 */
TRS_EXTERN(int) trs_metrics_new(trs_metrics **out, const trs_ctx *ctx, const trs_metrics_options *options, trs_error *err);

/**
 * One datum; `dims` may be NULL; `unit` NULL means "None". Never blocks on
 * the network. TRS_EINVAL (and a warning in the log) for what CloudWatch
 * would refuse: an empty or too long name, an unknown unit, a NaN or
 * infinite value, more than 30 dimensions or an empty dimension value, text
 * that is not UTF-8. A datum dropped because the CloudWatch queue is full
 * still returns 0 (the drop is logged): metrics never fail the caller.
 * EMF: one JSON line per call, written whole even from several threads.
 */
TRS_EXTERN(int) trs_metrics_put(trs_metrics *m, const char *name, const char *unit, double value,
				const trs_kv *dims, size_t ndims);

/**
 * Every metric of one processed archive, from its report. Archive-level
 * values are recorded once per archive, with TargetBucket the first target
 * bucket of this region: DecompressionRatio, CompressedSize,
 * DecompressedSize, DecompressionTimeSeconds, ObjectRestoreTime,
 * SkippedObjects, ProcessingTimeByStage (one datum per stage, with Stage),
 * and FailedDecompressions when the archive could not be read
 * (`archive_failed`). ObjectsProcessed and FailedTargetUploads are recorded
 * per target bucket of this region (each bucket's own counts). When the
 * report has a download time, ProcessingTime with Function
 * "process_s3_object" (the Python service's name for that step).
 * With backup targets: BackupUploads / FailedBackupUploads per backup bucket
 * and CatalogWrites / FailedCatalogWrites for the catalog bucket (Count).
 * `report` may be NULL (with archive_failed: the archive failed before a
 * report existed). An archive without targets in this region is recorded
 * with TargetBucket "none". Errors are logged, never returned.
 */
TRS_EXTERN(void) trs_metrics_record_report(trs_metrics *m, const trs_report *report, int archive_failed);

/**
 * ProcessingTime (Seconds) with dimension Function = `function`: how long
 * one step took, as the Python service reports its functions
 * ("process_message_batch" for one received batch, "process_s3_object" for
 * an archive's download). Errors are logged, never returned.
 */
TRS_EXTERN(void) trs_metrics_record_processing_time(trs_metrics *m, const char *function, double seconds);

/**
 * The S3 retry layer's figures (Count, no dimension): S3ConcurrencyLimit,
 * the limit on requests in flight now (a gauge); S3RetriedRequests,
 * S3ThrottledRequests and S3RetriesRefused from `stats` as given (totals,
 * or the caller's deltas since its last call). Errors are logged, never
 * returned.
 */
TRS_EXTERN(void) trs_metrics_record_retries(trs_metrics *m, const trs_retry_stats *stats);

/** Send what is buffered and wait for it (CloudWatch); errors are logged, and returned. */
TRS_EXTERN(int) trs_metrics_flush(trs_metrics *m, trs_error *err);

/** Flush, stop the sender, free. NULL is ignored. */
TRS_EXTERN(void) trs_metrics_free(trs_metrics *m);

#ifdef __cplusplus
}
#endif
#endif
