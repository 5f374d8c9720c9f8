/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics (private): the pieces lib/metrics/metrics.c (options, EMF, the report's
 * metrics) shares with lib/metrics/metrics_cloudwatch.c (PutMetricData: the body,
 * the bounded queue, the sender thread).
 */
#ifndef TRS_METRICS_CLOUDWATCH_H
#define TRS_METRICS_CLOUDWATCH_H

#include "internal.h"

/* CloudWatch's limits (PutMetricData API reference). */
#define TRS_CW_MAX_DATA_PER_CALL 1000
#define TRS_CW_MAX_BODY_BYTES (1000u * 1000u) /* 1 MB per POST; a little headroom kept below */
#define TRS_CW_MAX_DIMS 30
#define TRS_CW_MAX_NAME 255
#define TRS_CW_MAX_DIM_VALUE 1024
/* Data waiting for the sender; beyond this, trs_metrics_put drops (and warns). */
#define TRS_CW_QUEUE_CAP 20000

/* One data point, every string owned. */
typedef struct trs__metric_datum {
	char *name;
	char *unit;
	double value;
	int64_t timestamp_ms;   /* Unix epoch milliseconds */
	trs_kv *dims;
	size_t ndims;
} trs__metric_datum;

/* A deep copy; NULL on allocation failure (err filled). */
trs__metric_datum *trs__metric_datum_new(const char *name, const char *unit, double value, int64_t timestamp_ms,
					 const trs_kv *dims, size_t ndims, trs_error *err);
void trs__metric_datum_free(trs__metric_datum *d);

/* Shortest "%g" text that reads back as v (v finite) into out. */
void trs__metric_format_double(double v, char out[32]);

/* Epoch milliseconds, wall clock. */
int64_t trs__metric_now_ms(void);

/*
 * The form-encoded PutMetricData body for as many of data[0..n) as fit in
 * one call (at most TRS_CW_MAX_DATA_PER_CALL, body at most max_bytes),
 * replacing b's contents. Returns how many were taken (>= 1 when n >= 1,
 * even if a single datum exceeds max_bytes), or a negative code.
 */
long trs__cw_build_body(trs__buf *b, const char *metric_namespace, trs__metric_datum *const *data, size_t n,
			size_t max_bytes, trs_error *err);

typedef struct trs__cw trs__cw;

typedef struct trs__cw_options {
	const char *metric_namespace;
	const char *endpoint_url;   /* NULL: environment, then the regional endpoint */
	const char *region;         /* NULL: the context's, then the AWS chain */
	bool insecure;
	unsigned int max_attempts;  /* 0: 4 */
	double backoff_base_s;      /* 0: 0.2 */
	double linger_s;            /* how long the sender waits to fill a batch; 0: 0.5 */
	size_t queue_cap;           /* 0: TRS_CW_QUEUE_CAP */
} trs__cw_options;

/* Start the sender thread. */
int trs__cw_new(trs__cw **out, const trs_ctx *ctx, const trs__cw_options *o, trs_error *err);
/* Queue d (ownership taken, also when it is dropped because the queue is full). */
void trs__cw_enqueue(trs__cw *cw, trs__metric_datum *d);
/* Wait until everything queued before the call was sent (or given up on). */
int trs__cw_flush(trs__cw *cw, trs_error *err);
/* Flush, stop the thread, free. */
void trs__cw_free(trs__cw *cw);
/* Data dropped because the queue was full (tests, diagnostics). */
uint64_t trs__cw_dropped(trs__cw *cw);

#endif
