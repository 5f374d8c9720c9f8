/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics (docs/metrics.md): the namespace and options, the checks every datum
 * passes, the Embedded Metric Format sink, and the metrics of one report.
 * The CloudWatch sink (PutMetricData from a background thread) is in
 * metrics_cloudwatch.c.
 */
#include "metrics_cloudwatch.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#define DEFAULT_NAMESPACE "S3Compressor"
/* TargetBucket of an archive without targets in this region (or unreadable before its manifest). */
#define NO_TARGET_BUCKET "none"

struct trs_metrics {
	const trs_ctx *ctx;
	trs_metrics_sink sink;
	char *metric_namespace;
	void (*emf_write)(const char *line, size_t len, void *userdata);
	void *emf_userdata;
	pthread_mutex_t emf_lock; /* one EMF line at a time, whole */
	trs__cw *cw;
};

typedef struct metric_value {
	const char *name;
	const char *unit;
	double value;
} metric_value;

/* ---- shared helpers ---- */

void trs__metric_format_double(double v, char out[32])
{
	/* 15 digits reads back exactly for most values and stays short (0.1, not 0.1000000000000000055). */
	snprintf(out, 32, "%.15g", v);
	if (strtod(out, NULL) != v)
		snprintf(out, 32, "%.17g", v);
}

int64_t trs__metric_now_ms(void)
{
	return trs__wall_ms();
}

trs__metric_datum *trs__metric_datum_new(const char *name, const char *unit, double value, int64_t timestamp_ms,
					 const trs_kv *dims, size_t ndims, trs_error *err)
{
	trs__metric_datum *d = trs__calloc(1, sizeof(*d), err);
	if (!d)
		return NULL;
	d->value = value;
	d->timestamp_ms = timestamp_ms;
	d->name = trs__strdup(name, err);
	d->unit = d->name ? trs__strdup(unit, err) : NULL;
	if (!d->unit)
		goto fail;
	if (ndims) {
		d->dims = trs__calloc(ndims, sizeof(*d->dims), err);
		if (!d->dims)
			goto fail;
		for (size_t i = 0; i < ndims; i++) {
			d->ndims = i + 1;
			char *k = trs__strdup(dims[i].key, err);
			char *v = k ? trs__strdup(dims[i].value, err) : NULL;
			d->dims[i].key = k;
			d->dims[i].value = v;
			if (!v)
				goto fail;
		}
	}
	return d;
fail:
	trs__metric_datum_free(d);
	return NULL;
}

void trs__metric_datum_free(trs__metric_datum *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ndims; i++) {
		free((char *)d->dims[i].key);
		free((char *)d->dims[i].value);
	}
	free(d->dims);
	free(d->name);
	free(d->unit);
	free(d);
}

static bool unit_known(const char *unit)
{
	static const char *const units[] = {
		"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
		"Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
		"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
		"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
		"Count/Second", "None"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(units); i++)
		if (strcmp(unit, units[i]) == 0)
			return true;
	return false;
}

/* CloudWatch's rules, checked here so that EMF and PutMetricData refuse the same data. */
static int check_datum(const char *name, const char *unit, double value, const trs_kv *dims, size_t ndims,
		       trs_error *err)
{
	if (!name || !*name || strlen(name) > TRS_CW_MAX_NAME)
		return trs__error_set(err, TRS_EINVAL, "metric name must be 1 to %d bytes", TRS_CW_MAX_NAME);
	if (!unit_known(unit))
		return trs__error_set(err, TRS_EINVAL, "metric %s: '%s' is not a CloudWatch unit", name, unit);
	if (!isfinite(value))
		return trs__error_set(err, TRS_EINVAL, "metric %s: CloudWatch takes no NaN or infinite values", name);
	if (ndims > TRS_CW_MAX_DIMS || (ndims && !dims))
		return trs__error_set(err, TRS_EINVAL, "metric %s: at most %d dimensions", name, TRS_CW_MAX_DIMS);
	for (size_t i = 0; i < ndims; i++) {
		const char *k = dims[i].key, *v = dims[i].value;
		if (!k || !*k || strlen(k) > TRS_CW_MAX_NAME || !v || !*v || strlen(v) > TRS_CW_MAX_DIM_VALUE)
			return trs__error_set(err, TRS_EINVAL,
					      "metric %s: a dimension needs a name (1-%d bytes) and a value (1-%d bytes)",
					      name, TRS_CW_MAX_NAME, TRS_CW_MAX_DIM_VALUE);
	}
	return 0;
}

/* ---- EMF ---- */

static void emf_to_stdout(const char *line, size_t len, void *userdata)
{
	(void)userdata;
	fwrite(line, 1, len, stdout);
	fflush(stdout);
}

#define GEN_STR(g, s) yajl_gen_string((g), (const unsigned char *)(s), strlen(s))

/* One EMF document (and its newline) for values sharing one dimension set. */
static int emf_line(trs_metrics *m, const trs_kv *dims, size_t ndims, const metric_value *v, size_t n,
		    trs_error *err)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return trs__error_set(err, TRS_ENOMEM, "out of memory building an EMF line");
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	char num[32];
	yajl_gen_status st = yajl_gen_status_ok;
#define G(call)                                   \
	do {                                      \
		if (st == yajl_gen_status_ok)     \
			st = (call);              \
	} while (0)
	G(yajl_gen_map_open(g));
	G(GEN_STR(g, "_aws"));
	G(yajl_gen_map_open(g));
	G(GEN_STR(g, "Timestamp"));
	snprintf(num, sizeof(num), "%lld", (long long)trs__metric_now_ms());
	G(yajl_gen_number(g, num, strlen(num)));
	G(GEN_STR(g, "CloudWatchMetrics"));
	G(yajl_gen_array_open(g));
	G(yajl_gen_map_open(g));
	G(GEN_STR(g, "Namespace"));
	G(GEN_STR(g, m->metric_namespace));
	G(GEN_STR(g, "Dimensions"));
	G(yajl_gen_array_open(g));
	G(yajl_gen_array_open(g));
	for (size_t i = 0; i < ndims; i++)
		G(GEN_STR(g, dims[i].key));
	G(yajl_gen_array_close(g));
	G(yajl_gen_array_close(g));
	G(GEN_STR(g, "Metrics"));
	G(yajl_gen_array_open(g));
	for (size_t i = 0; i < n; i++) {
		G(yajl_gen_map_open(g));
		G(GEN_STR(g, "Name"));
		G(GEN_STR(g, v[i].name));
		G(GEN_STR(g, "Unit"));
		G(GEN_STR(g, v[i].unit));
		G(yajl_gen_map_close(g));
	}
	G(yajl_gen_array_close(g));
	G(yajl_gen_map_close(g));
	G(yajl_gen_array_close(g));
	G(yajl_gen_map_close(g));
	/* The values (and dimension values) are the document's own members. */
	for (size_t i = 0; i < ndims; i++) {
		G(GEN_STR(g, dims[i].key));
		G(GEN_STR(g, dims[i].value));
	}
	for (size_t i = 0; i < n; i++) {
		trs__metric_format_double(v[i].value, num);
		G(GEN_STR(g, v[i].name));
		G(yajl_gen_number(g, num, strlen(num)));
	}
	G(yajl_gen_map_close(g));
#undef G
	const unsigned char *out = NULL;
	size_t len = 0;
	if (st == yajl_gen_status_ok)
		st = yajl_gen_get_buf(g, &out, &len);
	if (st != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return trs__error_set(err, TRS_EINVAL, "metric %s: a name or dimension is not valid UTF-8", v[0].name);
	}
	trs__buf line = TRS_BUF_INIT;
	int rc = trs__buf_put(&line, out, len, err);
	if (rc == 0)
		rc = trs__buf_put(&line, "\n", 1, err);
	yajl_gen_free(g);
	if (rc == 0) {
		pthread_mutex_lock(&m->emf_lock);
		m->emf_write(line.data, line.len, m->emf_userdata);
		pthread_mutex_unlock(&m->emf_lock);
	}
	trs__buf_free(&line);
	return rc;
}

/* ---- one group of values, to the sink ---- */

static int emit(trs_metrics *m, const trs_kv *dims, size_t ndims, const metric_value *v, size_t n, trs_error *err)
{
	for (size_t i = 0; i < n; i++) {
		int rc = check_datum(v[i].name, v[i].unit, v[i].value, dims, ndims, err);
		if (rc < 0)
			return rc;
	}
	if (n == 0)
		return 0;
	switch (m->sink) {
	case TRS_METRICS_EMF: return emf_line(m, dims, ndims, v, n, err);
	case TRS_METRICS_CLOUDWATCH: {
		int64_t now = trs__metric_now_ms();
		for (size_t i = 0; i < n; i++) {
			trs__metric_datum *d = trs__metric_datum_new(v[i].name, v[i].unit, v[i].value, now, dims,
								     ndims, err);
			if (!d)
				return TRS_ENOMEM;
			trs__cw_enqueue(m->cw, d);
		}
		return 0;
	}
	default: return 0;
	}
}

/* ---- public API ---- */

TRS_EXTERN(int) trs_metrics_sink_parse(const char *name, trs_metrics_sink *out)
{
	static const struct {
		const char *name;
		trs_metrics_sink sink;
	} sinks[] = {{"none", TRS_METRICS_NONE}, {"emf", TRS_METRICS_EMF}, {"cloudwatch", TRS_METRICS_CLOUDWATCH}};
	for (size_t i = 0; name && i < TRS_ARRAY_SIZE(sinks); i++) {
		if (strcmp(name, sinks[i].name) == 0) {
			if (out)
				*out = sinks[i].sink;
			return 0;
		}
	}
	return TRS_EINVAL;
}

TRS_EXTERN(int) trs_metrics_new(trs_metrics **out, const trs_ctx *ctx, const trs_metrics_options *options, trs_error *err)
{
	if (!out)
		return trs__error_set(err, TRS_EINVAL, "trs_metrics_new: out is NULL");
	*out = NULL;
	trs_metrics_options o = TRS_METRICS_OPTIONS_INIT;
	if (options) {
		if (options->version == 0 || options->version > TRS_METRICS_OPTIONS_VERSION)
			return trs__error_set(err, TRS_EINVAL, "trs_metrics_options version %u is not supported",
					      options->version);
		o = *options;
	}
	if (o.sink != TRS_METRICS_NONE && o.sink != TRS_METRICS_EMF && o.sink != TRS_METRICS_CLOUDWATCH)
		return trs__error_set(err, TRS_EINVAL, "unknown metrics sink %d", (int)o.sink);
	const char *ns = o.metric_namespace;
	if (!ns || !*ns)
		ns = getenv("STACK_NAME");
	if (!ns || !*ns)
		ns = DEFAULT_NAMESPACE;
	if (strlen(ns) > TRS_CW_MAX_NAME)
		return trs__error_set(err, TRS_EINVAL, "metric namespace '%.40s...' is longer than %d bytes", ns,
				      TRS_CW_MAX_NAME);

	trs_metrics *m = trs__calloc(1, sizeof(*m), err);
	if (!m)
		return TRS_ENOMEM;
	m->ctx = ctx;
	m->sink = o.sink;
	m->emf_write = o.emf_write ? o.emf_write : emf_to_stdout;
	m->emf_userdata = o.emf_userdata;
	pthread_mutex_init(&m->emf_lock, NULL);
	m->metric_namespace = trs__strdup(ns, err);
	int rc = m->metric_namespace ? 0 : TRS_ENOMEM;
	if (rc == 0 && o.sink == TRS_METRICS_CLOUDWATCH) {
		trs__cw_options co = {0};
		co.metric_namespace = m->metric_namespace;
		co.endpoint_url = o.endpoint_url;
		co.region = o.region;
		co.insecure = o.no_verify_ssl != 0;
		rc = trs__cw_new(&m->cw, ctx, &co, err);
	}
	if (rc < 0) {
		trs_metrics_free(m);
		return rc;
	}
	trs__log(ctx, TRS_LOG_DEBUG, "metrics ready", "sink",
		 o.sink == TRS_METRICS_EMF ? "emf" : o.sink == TRS_METRICS_CLOUDWATCH ? "cloudwatch" : "none",
		 "namespace", m->metric_namespace, NULL);
	*out = m;
	return 0;
}

TRS_EXTERN(int) trs_metrics_put(trs_metrics *m, const char *name, const char *unit, double value,
				const trs_kv *dims, size_t ndims)
{
	if (!m)
		return TRS_EINVAL;
	metric_value v = {name, unit ? unit : "None", value};
	trs_error err = TRS_ERROR_INIT;
	int rc = emit(m, dims, ndims, &v, 1, &err);
	if (rc < 0)
		trs__log(m->ctx, TRS_LOG_WARN, "metric not recorded", "metric", name, "error", err.message, NULL);
	return rc;
}

TRS_EXTERN(void) trs_metrics_record_processing_time(trs_metrics *m, const char *function, double seconds)
{
	if (!m || m->sink == TRS_METRICS_NONE || !function || !*function)
		return;
	trs_kv dim = {"Function", function};
	trs_metrics_put(m, "ProcessingTime", "Seconds", seconds > 0 ? seconds : 0, &dim, 1);
}

TRS_EXTERN(void) trs_metrics_record_retries(trs_metrics *m, const trs_retry_stats *stats)
{
	if (!m || m->sink == TRS_METRICS_NONE || !stats)
		return;
	trs_metrics_put(m, "S3ConcurrencyLimit", "Count", stats->limit, NULL, 0);
	trs_metrics_put(m, "S3RetriedRequests", "Count", (double)stats->retried, NULL, 0);
	trs_metrics_put(m, "S3ThrottledRequests", "Count", (double)stats->throttled, NULL, 0);
	trs_metrics_put(m, "S3RetriesRefused", "Count", (double)stats->refused_by_budget, NULL, 0);
}

/* This bucket's own counts: they add up across buckets to the object-target writes. */
static size_t bucket_counts(const trs_report *report, const trs_report_target *t, metric_value *v)
{
	size_t n = 0;
	v[n++] = (metric_value){"ObjectsProcessed", "Count", (double)(t ? t->puts_written : report->puts_written)};
	v[n++] = (metric_value){"FailedTargetUploads", "Count", (double)(t ? t->puts_failed : report->puts_failed)};
	return n;
}

/* Backup targets (docs/operations.md): one set per backup bucket, and one for the catalog bucket. */
static void record_backups(trs_metrics *m, const trs_report *report)
{
	for (size_t b = 0; report && b <= report->nbackups && report->catalog_bucket; b++) {
		int catalog = b == report->nbackups;
		trs_kv dim = {"TargetBucket", catalog ? report->catalog_bucket : report->backups[b].bucket};
		metric_value v[2];
		if (catalog) {
			v[0] = (metric_value){"CatalogWrites", "Count", report->catalog_written ? 1 : 0};
			v[1] = (metric_value){"FailedCatalogWrites", "Count",
					      !report->catalog_written && report->backups_written ? 1 : 0};
		} else {
			v[0] = (metric_value){"BackupUploads", "Count", report->backups[b].written ? 1 : 0};
			v[1] = (metric_value){"FailedBackupUploads", "Count",
					      !report->backups[b].written && !report->dry_run ? 1 : 0};
		}
		trs_error err = TRS_ERROR_INIT;
		if (emit(m, &dim, 1, v, 2, &err) < 0)
			trs__log(m->ctx, TRS_LOG_WARN, "backup metrics not recorded", "archive", report->archive, "error",
				 err.message, NULL);
	}
}

TRS_EXTERN(void) trs_metrics_record_report(trs_metrics *m, const trs_report *report, int archive_failed)
{
	if (!m || m->sink == TRS_METRICS_NONE)
		return;
	const struct {
		const char *name;
		double seconds;
	} stages[] = {
		{"download", report ? report->seconds_download : 0},
		{"manifest", report ? report->seconds_manifest : 0},
		{"decompress", report ? report->seconds_decompress : 0},
		{"upload", report ? report->seconds_restore : 0},
		{"cleanup", report ? report->seconds_cleanup : 0},
	};
	/*
	 * Archive-level values once per archive, under the first target bucket
	 * of this region (the Python service's choice): a sum across buckets
	 * then counts each archive once. Each further bucket gets its counts.
	 */
	const trs_report_target *first = report && report->ntargets ? &report->targets[0] : NULL;
	trs_kv dims[2] = {{"TargetBucket", first && first->bucket && *first->bucket ? first->bucket : NO_TARGET_BUCKET},
			  {"Stage", ""}};
	metric_value v[16];
	size_t n = 0;
	if (report && !archive_failed) {
		if (report->compressed_bytes)
			v[n++] = (metric_value){"DecompressionRatio", "None",
						(double)report->decompressed_bytes / (double)report->compressed_bytes};
		v[n++] = (metric_value){"CompressedSize", "Bytes", (double)report->compressed_bytes};
		v[n++] = (metric_value){"DecompressedSize", "Bytes", (double)report->decompressed_bytes};
		v[n++] = (metric_value){"DecompressionTimeSeconds", "Seconds", report->seconds_decompress};
		v[n++] = (metric_value){"ObjectRestoreTime", "Seconds", report->seconds_total + report->seconds_download};
	}
	/* An archive whose targets are all in other regions was read well: it is no decompression failure. */
	if (archive_failed && report && report->foreign)
		v[n++] = (metric_value){"ForeignArchives", "Count", 1};
	else if (archive_failed)
		v[n++] = (metric_value){"FailedDecompressions", "Count", 1};
	if (report) {
		v[n++] = (metric_value){"SkippedObjects", "Count", (double)report->objects_skipped};
		/* Newest wins: objects a newer or the same version kept from being written, and writes made
		 * without the comparison (the destination refused the read). Only when there were any. */
		if (report->objects_kept_newer)
			v[n++] = (metric_value){"ObjectsKeptNewer", "Count", (double)report->objects_kept_newer};
		if (report->objects_current)
			v[n++] = (metric_value){"ObjectsAlreadyCurrent", "Count", (double)report->objects_current};
		if (report->puts_unchecked)
			v[n++] = (metric_value){"UncheckedWrites", "Count", (double)report->puts_unchecked};
		n += bucket_counts(report, first, v + n);
	}
	trs_error err = TRS_ERROR_INIT;
	int rc = emit(m, dims, 1, v, n, &err);
	for (size_t i = 0; rc == 0 && i < TRS_ARRAY_SIZE(stages); i++) {
		if (!(stages[i].seconds > 0))
			continue;
		dims[1].value = stages[i].name;
		metric_value sv = {"ProcessingTimeByStage", "Seconds", stages[i].seconds};
		rc = emit(m, dims, 2, &sv, 1, &err);
	}
	for (size_t s = 1; rc == 0 && report && s < report->ntargets; s++) {
		const trs_report_target *t = &report->targets[s];
		trs_kv dim = {"TargetBucket", t->bucket && *t->bucket ? t->bucket : NO_TARGET_BUCKET};
		rc = emit(m, &dim, 1, v, bucket_counts(report, t, v), &err);
	}
	if (rc < 0)
		trs__log(m->ctx, TRS_LOG_WARN, "archive metrics not recorded", "archive", report ? report->archive : NULL,
			 "error", err.message, NULL);
	/* The Python service's ProcessingTime of its archive download (Function process_s3_object). */
	if (report && report->seconds_download > 0)
		trs_metrics_record_processing_time(m, "process_s3_object", report->seconds_download);
	record_backups(m, report);
}

TRS_EXTERN(int) trs_metrics_flush(trs_metrics *m, trs_error *err)
{
	if (!m || !m->cw)
		return 0;
	return trs__cw_flush(m->cw, err);
}

TRS_EXTERN(void) trs_metrics_free(trs_metrics *m)
{
	if (!m)
		return;
	trs__cw_free(m->cw);
	pthread_mutex_destroy(&m->emf_lock);
	free(m->metric_namespace);
	free(m);
}
