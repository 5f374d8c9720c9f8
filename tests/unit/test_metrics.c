/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics: EMF lines parsed back (namespace, dimensions, units, values),
 * the namespace rules (option, STACK_NAME, default), the PutMetricData body
 * (query-protocol encoding, 1000 data and 1 MB per call), and the CloudWatch
 * sender against a scripted endpoint on 127.0.0.1: signed batches when it
 * works; when it answers 500 or refuses connections, trs_metrics_put still
 * returns at once, flush reports the failure, nothing crashes or leaks.
 */
#include "harness.h"
#include "metrics/metrics_cloudwatch.h"
#include "mini_server.h"

#include <math.h>
#include <stdlib.h>
#include <yajl/yajl_tree.h>

/* ---- capture ---- */

typedef struct lines {
	pthread_mutex_t lock;
	char *text[64];
	int n;
} lines;

static void capture_line(const char *line, size_t len, void *ud)
{
	lines *l = ud;
	pthread_mutex_lock(&l->lock);
	if (l->n < 64) {
		l->text[l->n] = malloc(len + 1);
		memcpy(l->text[l->n], line, len);
		l->text[l->n][len] = '\0';
		l->n++;
	}
	pthread_mutex_unlock(&l->lock);
}

static void lines_free(lines *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->text[i]);
	l->n = 0;
}

static char logbuf[65536];
static size_t loglen;
static pthread_mutex_t loglock = PTHREAD_MUTEX_INITIALIZER;

static void capture_log(trs_log_level level, const char *message, const trs_log_field *f, size_t n, void *ud)
{
	(void)level;
	(void)ud;
	pthread_mutex_lock(&loglock);
	int w = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s", message);
	if (w > 0 && (size_t)w < sizeof(logbuf) - loglen)
		loglen += (size_t)w;
	for (size_t i = 0; i < n; i++) {
		w = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, " %s=%s", f[i].key, f[i].value);
		if (w > 0 && (size_t)w < sizeof(logbuf) - loglen)
			loglen += (size_t)w;
	}
	if (loglen + 1 < sizeof(logbuf))
		logbuf[loglen++] = '\n';
	logbuf[loglen < sizeof(logbuf) ? loglen : sizeof(logbuf) - 1] = '\0';
	pthread_mutex_unlock(&loglock);
}

static trs_ctx *logging_ctx(void)
{
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.region = "eu-west-1";
	o.log = capture_log;
	o.log_level = TRS_LOG_DEBUG;
	trs_ctx *ctx = NULL;
	trs_ctx_new(&ctx, &o, NULL);
	pthread_mutex_lock(&loglock);
	loglen = 0;
	logbuf[0] = '\0';
	pthread_mutex_unlock(&loglock);
	return ctx;
}

static trs_metrics *emf_metrics(lines *l, const char *ns)
{
	trs_metrics_options o = TRS_METRICS_OPTIONS_INIT;
	o.sink = TRS_METRICS_EMF;
	o.metric_namespace = ns;
	o.emf_write = capture_line;
	o.emf_userdata = l;
	trs_metrics *m = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_metrics_new(&m, NULL, &o, &err) < 0)
		printf("  trs_metrics_new: %s\n", err.message);
	return m;
}

/* A report of an archive restored to two buckets. */
static trs_report_target two_targets[2] = {{"dest-a", 3, 0, 300}, {"dest-b", 2, 1, 200}};

static trs_report sample_report(void)
{
	trs_report r;
	memset(&r, 0, sizeof(r));
	r.archive = "in/a.tar.zst";
	r.objects_total = 4;
	r.objects_written = 2;
	r.puts_written = 5;
	r.puts_failed = 1;
	r.objects_skipped = 1;
	r.compressed_bytes = 1000;
	r.decompressed_bytes = 4000;
	r.seconds_total = 2.5;
	r.seconds_manifest = 0.25;
	r.seconds_restore = 1.5;
	r.seconds_decompress = 0.75;
	r.seconds_download = 0.5;
	r.targets = two_targets;
	r.ntargets = 2;
	return r;
}

static double num_at(yajl_val doc, const char *key)
{
	const char *path[] = {key, NULL};
	yajl_val v = yajl_tree_get(doc, path, yajl_t_number);
	return v ? YAJL_GET_DOUBLE(v) : NAN;
}

static const char *str_at(yajl_val doc, const char *key)
{
	const char *path[] = {key, NULL};
	yajl_val v = yajl_tree_get(doc, path, yajl_t_string);
	return v ? YAJL_GET_STRING(v) : NULL;
}

/* The "_aws".CloudWatchMetrics[0] directive of an EMF document. */
static yajl_val directive(yajl_val doc)
{
	const char *path[] = {"_aws", "CloudWatchMetrics", NULL};
	yajl_val a = yajl_tree_get(doc, path, yajl_t_array);
	return a && YAJL_GET_ARRAY(a)->len == 1 ? YAJL_GET_ARRAY(a)->values[0] : NULL;
}

static const char *unit_of(yajl_val dir, const char *name)
{
	const char *path[] = {"Metrics", NULL};
	yajl_val a = yajl_tree_get(dir, path, yajl_t_array);
	for (size_t i = 0; a && i < YAJL_GET_ARRAY(a)->len; i++) {
		yajl_val m = YAJL_GET_ARRAY(a)->values[i];
		const char *n = str_at(m, "Name");
		if (n && strcmp(n, name) == 0)
			return str_at(m, "Unit");
	}
	return NULL;
}

/* The dimension names of the directive's only dimension set, joined by ','. */
static void dim_names(yajl_val dir, char *out, size_t size)
{
	out[0] = '\0';
	const char *path[] = {"Dimensions", NULL};
	yajl_val a = yajl_tree_get(dir, path, yajl_t_array);
	if (!a || YAJL_GET_ARRAY(a)->len != 1 || !YAJL_IS_ARRAY(YAJL_GET_ARRAY(a)->values[0]))
		return;
	yajl_val set = YAJL_GET_ARRAY(a)->values[0];
	for (size_t i = 0; i < YAJL_GET_ARRAY(set)->len; i++) {
		size_t len = strlen(out);
		snprintf(out + len, size - len, "%s%s", i ? "," : "", YAJL_GET_STRING(YAJL_GET_ARRAY(set)->values[i]));
	}
}

/* ---- EMF ---- */

TEST(sink_names_parse)
{
	trs_metrics_sink s = TRS_METRICS_NONE;
	CHECK(trs_metrics_sink_parse("emf", &s) == 0 && s == TRS_METRICS_EMF);
	CHECK(trs_metrics_sink_parse("cloudwatch", &s) == 0 && s == TRS_METRICS_CLOUDWATCH);
	CHECK(trs_metrics_sink_parse("none", &s) == 0 && s == TRS_METRICS_NONE);
	CHECK(trs_metrics_sink_parse("statsd", &s) == TRS_EINVAL);
	CHECK(trs_metrics_sink_parse(NULL, &s) == TRS_EINVAL);
}

TEST(emf_report_lines_carry_namespace_dimensions_units_and_values)
{
	lines l = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
	unsetenv("STACK_NAME");
	trs_metrics *m = emf_metrics(&l, NULL);
	CHECK(m != NULL);
	trs_report r = sample_report();
	trs_metrics_record_report(m, &r, 0);
	trs_metrics_free(m);
	/*
	 * Once per archive, under the first bucket (dest-a): the archive line and
	 * one per stage (download, manifest, decompress, upload); dest-b's own
	 * counts; ProcessingTime of the download (Function process_s3_object).
	 */
	int nl = l.n;
	int archive_lines = 0, stage_lines = 0, count_lines = 0, function_lines = 0;
	bool ok = nl == 7;
	for (int i = 0; ok && i < nl; i++) {
		size_t len = strlen(l.text[i]);
		ok = len > 1 && l.text[i][len - 1] == '\n' && !memchr(l.text[i], '\n', len - 1);
		char ebuf[128];
		yajl_val doc = yajl_tree_parse(l.text[i], ebuf, sizeof(ebuf));
		yajl_val dir = doc ? directive(doc) : NULL;
		if (!dir) {
			printf("  line %d is not an EMF document: %s\n", i, l.text[i]);
			ok = false;
			yajl_tree_free(doc);
			break;
		}
		const char *path[] = {"_aws", "Timestamp", NULL};
		ok = yajl_tree_get(doc, path, yajl_t_number) != NULL && strcmp(str_at(dir, "Namespace"), "S3Compressor") == 0;
		char dims[128];
		dim_names(dir, dims, sizeof(dims));
		const char *bucket = str_at(doc, "TargetBucket");
		bool a = bucket && strcmp(bucket, "dest-a") == 0;
		if (ok && strcmp(dims, "TargetBucket") == 0 && a) {
			archive_lines++;
			ok = num_at(doc, "DecompressionRatio") == 4.0 && strcmp(unit_of(dir, "DecompressionRatio"), "None") == 0 &&
			     num_at(doc, "CompressedSize") == 1000 && strcmp(unit_of(dir, "CompressedSize"), "Bytes") == 0 &&
			     num_at(doc, "DecompressedSize") == 4000 &&
			     num_at(doc, "DecompressionTimeSeconds") == 0.75 &&
			     strcmp(unit_of(dir, "DecompressionTimeSeconds"), "Seconds") == 0 &&
			     num_at(doc, "ObjectRestoreTime") == 3.0 && num_at(doc, "ObjectsProcessed") == 3 &&
			     strcmp(unit_of(dir, "ObjectsProcessed"), "Count") == 0 &&
			     num_at(doc, "FailedTargetUploads") == 0 && num_at(doc, "SkippedObjects") == 1 &&
			     unit_of(dir, "FailedDecompressions") == NULL;
		} else if (ok && strcmp(dims, "TargetBucket") == 0 && bucket && strcmp(bucket, "dest-b") == 0) {
			/* Only the bucket's own counts: archive values are not repeated. */
			count_lines++;
			ok = num_at(doc, "ObjectsProcessed") == 2 && num_at(doc, "FailedTargetUploads") == 1 &&
			     unit_of(dir, "DecompressionRatio") == NULL && unit_of(dir, "CompressedSize") == NULL &&
			     unit_of(dir, "SkippedObjects") == NULL;
		} else if (ok && strcmp(dims, "TargetBucket,Stage") == 0 && a) {
			stage_lines++;
			const char *stage = str_at(doc, "Stage");
			double want = strcmp(stage, "download") == 0     ? 0.5
				      : strcmp(stage, "manifest") == 0   ? 0.25
				      : strcmp(stage, "decompress") == 0 ? 0.75
				      : strcmp(stage, "upload") == 0     ? 1.5
									 : -1;
			ok = num_at(doc, "ProcessingTimeByStage") == want &&
			     strcmp(unit_of(dir, "ProcessingTimeByStage"), "Seconds") == 0;
		} else if (ok && strcmp(dims, "Function") == 0) {
			function_lines++;
			ok = strcmp(str_at(doc, "Function"), "process_s3_object") == 0 &&
			     num_at(doc, "ProcessingTime") == 0.5 && strcmp(unit_of(dir, "ProcessingTime"), "Seconds") == 0;
		} else {
			ok = false;
		}
		if (!ok)
			printf("  unexpected line: %s", l.text[i]);
		yajl_tree_free(doc);
	}
	lines_free(&l);
	CHECK(nl == 7);
	CHECK(ok);
	CHECK(archive_lines == 1 && stage_lines == 4 && count_lines == 1 && function_lines == 1);
}

TEST(emf_processing_time_has_the_function_dimension)
{
	lines l = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
	setenv("STACK_NAME", "my-stack", 1);
	trs_metrics *m = emf_metrics(&l, NULL);
	trs_metrics_record_processing_time(m, "process_message_batch", 2.25);
	trs_metrics_record_processing_time(m, "", 1); /* no function: nothing */
	trs_metrics_free(m);
	unsetenv("STACK_NAME");
	int n = l.n;
	yajl_val doc = n == 1 ? yajl_tree_parse(l.text[0], NULL, 0) : NULL;
	lines_free(&l);
	yajl_val dir = doc ? directive(doc) : NULL;
	char dims[64] = "";
	if (dir)
		dim_names(dir, dims, sizeof(dims));
	CHECK(n == 1);
	CHECK(dir && strcmp(str_at(dir, "Namespace"), "my-stack") == 0 && strcmp(dims, "Function") == 0);
	CHECK(doc && strcmp(str_at(doc, "Function"), "process_message_batch") == 0 &&
	      num_at(doc, "ProcessingTime") == 2.25 && strcmp(unit_of(dir, "ProcessingTime"), "Seconds") == 0);
	yajl_tree_free(doc);
}

TEST(emf_namespace_is_the_option_then_stack_name_then_default)
{
	lines l = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
	setenv("STACK_NAME", "prod-compressor", 1);
	trs_metrics *m = emf_metrics(&l, NULL);
	trs_metrics_put(m, "Probe", "Count", 1, NULL, 0);
	trs_metrics_free(m);
	m = emf_metrics(&l, "Explicit");
	trs_metrics_put(m, "Probe", "Count", 1, NULL, 0);
	trs_metrics_free(m);
	setenv("STACK_NAME", "", 1);
	m = emf_metrics(&l, NULL);
	trs_metrics_put(m, "Probe", "Count", 1, NULL, 0);
	trs_metrics_free(m);
	unsetenv("STACK_NAME");
	int n = l.n;
	char *t0 = n > 0 ? strdup(l.text[0]) : NULL, *t1 = n > 1 ? strdup(l.text[1]) : NULL,
	     *t2 = n > 2 ? strdup(l.text[2]) : NULL;
	lines_free(&l);
	bool ok = n == 3 && strstr(t0, "\"Namespace\":\"prod-compressor\"") &&
		  strstr(t1, "\"Namespace\":\"Explicit\"") && strstr(t2, "\"Namespace\":\"S3Compressor\"") &&
		  strstr(t2, "\"Dimensions\":[[]]") && strstr(t2, "\"Probe\":1");
	free(t0);
	free(t1);
	free(t2);
	CHECK(ok);
}

TEST(emf_archive_without_targets_reports_bucket_none_and_failures)
{
	lines l = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
	trs_metrics *m = emf_metrics(&l, NULL);
	trs_report r = sample_report();
	r.targets = NULL;
	r.ntargets = 0;
	r.puts_written = 0;
	r.puts_failed = 0;
	r.seconds_download = r.seconds_manifest = r.seconds_restore = r.seconds_decompress = 0;
	trs_metrics_record_report(m, &r, 0);
	trs_metrics_record_report(m, NULL, 1); /* unreadable before any report existed */
	trs_metrics_free(m);
	int n = l.n;
	bool ok = n == 2;
	yajl_val d0 = ok ? yajl_tree_parse(l.text[0], NULL, 0) : NULL;
	yajl_val d1 = ok ? yajl_tree_parse(l.text[1], NULL, 0) : NULL;
	lines_free(&l);
	ok = ok && d0 && d1 && strcmp(str_at(d0, "TargetBucket"), "none") == 0 && num_at(d0, "ObjectsProcessed") == 0 &&
	     num_at(d0, "SkippedObjects") == 1 && isnan(num_at(d0, "FailedDecompressions")) &&
	     strcmp(str_at(d1, "TargetBucket"), "none") == 0 && num_at(d1, "FailedDecompressions") == 1 &&
	     strcmp(unit_of(directive(d1), "FailedDecompressions"), "Count") == 0 &&
	     isnan(num_at(d1, "DecompressionRatio"));
	yajl_tree_free(d0);
	yajl_tree_free(d1);
	CHECK(ok);
}

TEST(put_refuses_what_cloudwatch_would)
{
	lines l = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
	trs_metrics *m = emf_metrics(&l, NULL);
	trs_kv empty_value[] = {{"TargetBucket", ""}};
	int r1 = trs_metrics_put(m, "X", "Count", NAN, NULL, 0);
	int r2 = trs_metrics_put(m, "X", "Furlongs", 1, NULL, 0);
	int r3 = trs_metrics_put(m, "", "Count", 1, NULL, 0);
	int r4 = trs_metrics_put(m, "X", "Count", 1, empty_value, 1);
	int r5 = trs_metrics_put(m, "X\xff", "Count", 1, NULL, 0); /* not UTF-8 */
	int r6 = trs_metrics_put(m, "Quote\"d", NULL, 0.1, NULL, 0);
	trs_metrics_free(m);
	int n = l.n;
	char *t = n ? strdup(l.text[0]) : NULL;
	lines_free(&l);
	bool ok = n == 1 && strstr(t, "\"Quote\\\"d\":0.1") && strstr(t, "\"Unit\":\"None\"");
	free(t);
	CHECK(r1 == TRS_EINVAL && r2 == TRS_EINVAL && r3 == TRS_EINVAL && r4 == TRS_EINVAL && r5 == TRS_EINVAL);
	CHECK(r6 == 0);
	CHECK(ok);
	CHECK(trs_metrics_put(NULL, "X", "Count", 1, NULL, 0) == TRS_EINVAL);
}

TEST(none_sink_records_nothing)
{
	trs_metrics *m = NULL;
	CHECK(trs_metrics_new(&m, NULL, NULL, NULL) == 0);
	trs_report r = sample_report();
	trs_metrics_record_report(m, &r, 0);
	CHECK(trs_metrics_put(m, "X", "Count", 1, NULL, 0) == 0);
	CHECK(trs_metrics_flush(m, NULL) == 0);
	trs_metrics_free(m);
	trs_metrics_free(NULL);
}

typedef struct counting_lines {
	pthread_mutex_t lock;
	int whole;
	int broken;
} counting_lines;

static void count_line(const char *line, size_t len, void *ud)
{
	counting_lines *c = ud;
	char *copy = malloc(len + 1);
	memcpy(copy, line, len);
	copy[len] = '\0';
	yajl_val doc = yajl_tree_parse(copy, NULL, 0);
	bool whole = doc && len && line[len - 1] == '\n' && !memchr(line, '\n', len - 1);
	yajl_tree_free(doc);
	free(copy);
	pthread_mutex_lock(&c->lock);
	if (whole)
		c->whole++;
	else
		c->broken++;
	pthread_mutex_unlock(&c->lock);
}

static void *put_many(void *arg)
{
	trs_metrics *m = arg;
	char bucket[32];
	snprintf(bucket, sizeof(bucket), "bucket-%p", (void *)&bucket);
	trs_kv dims[] = {{"TargetBucket", bucket}};
	for (int i = 0; i < 200; i++)
		trs_metrics_put(m, "ObjectsProcessed", "Count", i, dims, 1);
	return NULL;
}

TEST(emf_lines_stay_whole_across_threads)
{
	counting_lines c = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
	trs_metrics_options o = TRS_METRICS_OPTIONS_INIT;
	o.sink = TRS_METRICS_EMF;
	o.emf_write = count_line;
	o.emf_userdata = &c;
	trs_metrics *m = NULL;
	CHECK(trs_metrics_new(&m, NULL, &o, NULL) == 0);
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, put_many, m);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	trs_metrics_free(m);
	CHECK(c.whole == 8 * 200);
	CHECK(c.broken == 0);
}

/* ---- the PutMetricData body ---- */

TEST(put_metric_data_body_uses_the_query_protocol)
{
	trs_kv dims[] = {{"TargetBucket", "dest a+b"}, {"Stage", "upload"}};
	trs__metric_datum *d[2];
	d[0] = trs__metric_datum_new("DecompressionRatio", "None", 4.25, 1737627300123LL, NULL, 0, NULL);
	d[1] = trs__metric_datum_new("ProcessingTimeByStage", "Seconds", 0.1, 1737627300000LL, dims, 2, NULL);
	trs__buf b = TRS_BUF_INIT;
	long taken = trs__cw_build_body(&b, "My Stack/1", d, 2, TRS_CW_MAX_BODY_BYTES, NULL);
	char *body = b.data ? strdup(b.data) : NULL;
	trs__buf_free(&b);
	trs__metric_datum_free(d[0]);
	trs__metric_datum_free(d[1]);
	const char *want =
		"Action=PutMetricData&Version=2010-08-01&Namespace=My%20Stack%2F1"
		"&MetricData.member.1.MetricName=DecompressionRatio"
		"&MetricData.member.1.Timestamp=2025-01-23T10%3A15%3A00.123Z"
		"&MetricData.member.1.Value=4.25&MetricData.member.1.Unit=None"
		"&MetricData.member.2.MetricName=ProcessingTimeByStage"
		"&MetricData.member.2.Dimensions.member.1.Name=TargetBucket"
		"&MetricData.member.2.Dimensions.member.1.Value=dest%20a%2Bb"
		"&MetricData.member.2.Dimensions.member.2.Name=Stage"
		"&MetricData.member.2.Dimensions.member.2.Value=upload"
		"&MetricData.member.2.Timestamp=2025-01-23T10%3A15%3A00.000Z"
		"&MetricData.member.2.Value=0.1&MetricData.member.2.Unit=Seconds";
	bool ok = taken == 2 && body && strcmp(body, want) == 0;
	if (!ok)
		printf("  got  %s\n  want %s\n", body ? body : "(null)", want);
	free(body);
	CHECK(ok);
}

TEST(put_metric_data_bodies_hold_1000_data_and_stay_under_the_byte_limit)
{
	enum { N = 2500 };
	trs__metric_datum **d = calloc(N, sizeof(*d));
	trs_kv dims[] = {{"TargetBucket", "dest-a"}};
	for (int i = 0; i < N; i++)
		d[i] = trs__metric_datum_new("ObjectsProcessed", "Count", i, 0, dims, 1, NULL);
	trs__buf b = TRS_BUF_INIT;
	long calls[4] = {0};
	size_t done = 0;
	int ncalls = 0;
	while (done < N && ncalls < 4) {
		calls[ncalls] = trs__cw_build_body(&b, "S3Compressor", d + done, N - done, TRS_CW_MAX_BODY_BYTES, NULL);
		done += (size_t)calls[ncalls++];
	}
	bool last_member_is_500 = strstr(b.data, "MetricData.member.500.Value=2499&") && !strstr(b.data, "member.501.");
	/* A small byte limit cuts earlier, but always takes at least one datum. */
	long small = trs__cw_build_body(&b, "S3Compressor", d, N, 1000, NULL);
	size_t small_len = b.len;
	long tiny = trs__cw_build_body(&b, "S3Compressor", d, N, 10, NULL);
	trs__buf_free(&b);
	for (int i = 0; i < N; i++)
		trs__metric_datum_free(d[i]);
	free(d);
	CHECK(ncalls == 3 && calls[0] == 1000 && calls[1] == 1000 && calls[2] == 500);
	CHECK(last_member_is_500);
	CHECK(small > 1 && small < 10 && small_len <= 1000);
	CHECK(tiny == 1);
}

TEST(values_print_short_and_exact)
{
	char s[32];
	trs__metric_format_double(0.1, s);
	CHECK_STR(s, "0.1");
	trs__metric_format_double(4, s);
	CHECK_STR(s, "4");
	trs__metric_format_double(1.0 / 3.0, s);
	CHECK(strtod(s, NULL) == 1.0 / 3.0);
	trs__metric_format_double(123456789012345678.0, s);
	CHECK(strtod(s, NULL) == 123456789012345678.0);
}

/* ---- the CloudWatch sender against a scripted endpoint ---- */

static mini_server server;
static volatile int answer_status = 200;

static void cw_handler(const mini_request *req, mini_response *resp, void *ud)
{
	(void)req;
	(void)ud;
	resp->status = answer_status;
	if (answer_status != 200)
		mini_set_body(resp, "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
				    "<Message>scripted</Message></Error><RequestId>r1</RequestId></ErrorResponse>");
	else
		mini_set_body(resp, "<PutMetricDataResponse><ResponseMetadata><RequestId>r2</RequestId>"
				    "</ResponseMetadata></PutMetricDataResponse>");
}

static void fake_credentials(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIATESTMETRICS", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "metrics-secret-do-not-log", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_CLOUDWATCH");
}

static trs_metrics *cw_metrics(trs_ctx *ctx, const char *url)
{
	fake_credentials();
	trs_metrics_options o = TRS_METRICS_OPTIONS_INIT;
	o.sink = TRS_METRICS_CLOUDWATCH;
	o.endpoint_url = url;
	trs_metrics *m = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (trs_metrics_new(&m, ctx, &o, &err) < 0)
		printf("  trs_metrics_new: %s\n", err.message);
	return m;
}

TEST(cloudwatch_sends_signed_batches_of_up_to_1000)
{
	answer_status = 200;
	int first = mini_count(&server);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", server.port);
	trs_ctx *ctx = logging_ctx();
	trs_metrics *m = cw_metrics(ctx, url);
	CHECK(m != NULL);
	trs_kv dims[] = {{"TargetBucket", "dest-a"}};
	for (int i = 0; i < 1500; i++)
		trs_metrics_put(m, "ObjectsProcessed", "Count", 1, dims, 1);
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_metrics_flush(m, &err);
	trs_metrics_free(m);
	trs_ctx_free(ctx);
	CHECK(rc == 0);
	int n = mini_count(&server) - first;
	CHECK(n == 2);
	const mini_request *r = &server.log[first];
	CHECK_STR(r->method, "POST");
	CHECK_STR(r->target, "/");
	CHECK_CONTAINS(mini_header(r, "Content-Type"), "application/x-www-form-urlencoded");
	CHECK_CONTAINS(mini_header(r, "Authorization"), "/eu-west-1/monitoring/aws4_request");
	CHECK_CONTAINS(r->body, "Action=PutMetricData&Version=2010-08-01&Namespace=S3Compressor&");
	CHECK_CONTAINS(r->body, "MetricData.member.1000.MetricName=ObjectsProcessed");
	CHECK(strstr(r->body, "member.1001.") == NULL);
	CHECK_CONTAINS(server.log[first + 1].body, "MetricData.member.500.Unit=Count");
	CHECK(strstr(server.log[first + 1].body, "member.501.") == NULL);
}

TEST(cloudwatch_answering_500_never_blocks_put_and_flush_reports_it)
{
	answer_status = 500;
	int first = mini_count(&server);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", server.port);
	trs_ctx *ctx = logging_ctx();
	trs_metrics *m = cw_metrics(ctx, url);
	CHECK(m != NULL);
	trs_report r = sample_report();
	double t0 = trs__now();
	for (int i = 0; i < 50; i++)
		trs_metrics_record_report(m, &r, 0);
	double put_seconds = trs__now() - t0;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_metrics_flush(m, &err);
	trs_metrics_free(m);
	trs_ctx_free(ctx);
	answer_status = 200;
	int attempts = mini_count(&server) - first;
	CHECK(put_seconds < 0.5);
	CHECK(rc == TRS_EHTTP);
	CHECK_CONTAINS(err.message, "InternalFailure");
	CHECK(attempts >= 4); /* retried: 1000 data need two calls of four attempts each, at least one call */
	pthread_mutex_lock(&loglock);
	bool logged = strstr(logbuf, "metrics not sent to CloudWatch") != NULL;
	bool secret = strstr(logbuf, "metrics-secret-do-not-log") || strstr(logbuf, "Signature=");
	pthread_mutex_unlock(&loglock);
	CHECK(logged);
	CHECK(!secret);
}

TEST(cloudwatch_refusing_connections_never_blocks_put)
{
	/* A port that was just free: nothing listens there. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &alen);
	close(fd);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	trs_ctx *ctx = logging_ctx();
	trs_metrics *m = cw_metrics(ctx, url);
	CHECK(m != NULL);
	double t0 = trs__now();
	for (int i = 0; i < 100; i++)
		trs_metrics_put(m, "ObjectsProcessed", "Count", i, NULL, 0);
	double put_seconds = trs__now() - t0;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_metrics_flush(m, &err);
	t0 = trs__now();
	trs_metrics_free(m);
	double free_seconds = trs__now() - t0;
	trs_ctx_free(ctx);
	CHECK(put_seconds < 0.5);
	CHECK(rc < 0);
	CHECK(free_seconds < 1.0); /* flushed already: nothing left to wait for */
}

TEST(cloudwatch_full_queue_drops_and_the_rest_is_sent)
{
	answer_status = 200;
	fake_credentials();
	int first = mini_count(&server);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", server.port);
	trs_ctx *ctx = logging_ctx();
	trs__cw_options o = {0};
	o.metric_namespace = "S3Compressor";
	o.endpoint_url = url;
	o.queue_cap = 10;
	o.linger_s = 30; /* the sender waits for a full batch or a flush */
	trs__cw *cw = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__cw_new(&cw, ctx, &o, &err) == 0);
	for (int i = 0; i < 25; i++)
		trs__cw_enqueue(cw, trs__metric_datum_new("ObjectsProcessed", "Count", i, 0, NULL, 0, NULL));
	uint64_t dropped = trs__cw_dropped(cw);
	double t0 = trs__now();
	int rc = trs__cw_flush(cw, &err);
	double flush_seconds = trs__now() - t0;
	trs__cw_free(cw);
	trs_ctx_free(ctx);
	CHECK(dropped == 15);
	CHECK(rc == 0);
	CHECK(flush_seconds < 5); /* a flush cuts the linger short */
	CHECK(mini_count(&server) - first == 1);
	CHECK_CONTAINS(server.log[first].body, "MetricData.member.10.Value=9&");
	pthread_mutex_lock(&loglock);
	bool warned = strstr(logbuf, "queue full") != NULL;
	pthread_mutex_unlock(&loglock);
	CHECK(warned);
}

TEST(cloudwatch_endpoint_comes_from_the_environment)
{
	answer_status = 200;
	fake_credentials();
	int first = mini_count(&server);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/cw", server.port);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1/", 1);
	setenv("AWS_ENDPOINT_URL_CLOUDWATCH", url, 1);
	trs_metrics_options o = TRS_METRICS_OPTIONS_INIT;
	o.sink = TRS_METRICS_CLOUDWATCH;
	o.region = "ap-south-1";
	trs_metrics *m = NULL;
	int rc = trs_metrics_new(&m, NULL, &o, NULL);
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_CLOUDWATCH");
	CHECK(rc == 0);
	trs_metrics_put(m, "ObjectsProcessed", "Count", 1, NULL, 0);
	rc = trs_metrics_flush(m, NULL);
	trs_metrics_free(m);
	CHECK(rc == 0);
	CHECK(mini_count(&server) - first == 1);
	CHECK_STR(server.log[first].target, "/cw/");
	CHECK_CONTAINS(mini_header(&server.log[first], "Authorization"), "/ap-south-1/monitoring/aws4_request");
}

int main(void)
{
	RUN(sink_names_parse);
	RUN(emf_report_lines_carry_namespace_dimensions_units_and_values);
	RUN(emf_processing_time_has_the_function_dimension);
	RUN(emf_namespace_is_the_option_then_stack_name_then_default);
	RUN(emf_archive_without_targets_reports_bucket_none_and_failures);
	RUN(put_refuses_what_cloudwatch_would);
	RUN(none_sink_records_nothing);
	RUN(emf_lines_stay_whole_across_threads);
	RUN(put_metric_data_body_uses_the_query_protocol);
	RUN(put_metric_data_bodies_hold_1000_data_and_stay_under_the_byte_limit);
	RUN(values_print_short_and_exact);
	if (mini_start(&server, cw_handler, NULL) != 0) {
		printf("FAIL cannot start the scripted endpoint\n");
		return 1;
	}
	RUN(cloudwatch_sends_signed_batches_of_up_to_1000);
	RUN(cloudwatch_answering_500_never_blocks_put_and_flush_reports_it);
	RUN(cloudwatch_refusing_connections_never_blocks_put);
	RUN(cloudwatch_full_queue_drops_and_the_rest_is_sent);
	RUN(cloudwatch_endpoint_comes_from_the_environment);
	mini_stop(&server);
	return harness_done();
}
