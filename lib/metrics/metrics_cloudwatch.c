/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CloudWatch metrics sink: PutMetricData (AWS query protocol, form-encoded
 * POST, SigV4 service "monitoring") sent from one background thread.
 *
 * trs_metrics_put only appends to a bounded queue; the sender takes up to
 * 1000 data per call (CloudWatch's limit), lingering briefly so that the
 * metrics of one archive travel together. A full queue drops data with a
 * warning, and a CloudWatch that keeps failing is logged and given up on
 * after a few attempts: metrics never hold up or fail a restore.
 */
#include "metrics_cloudwatch.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/sigv4.h"
#include "aws/retry.h"
#include "aws/send.h"
#include "aws/xml.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_ATTEMPTS 4
#define DEFAULT_BACKOFF_BASE_S 0.2
#define BACKOFF_CAP_S 5.0
#define DEFAULT_LINGER_S 0.5
#define REQUEST_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 5000

struct trs__cw {
	const trs_ctx *ctx;
	trs__http *http;
	trs__cred_provider *creds;
	char *metric_namespace;
	char *region;
	char *url;        /* scheme://authority/base/ */
	char *authority;  /* the Host header */
	char *path;       /* "/base/" as sent */
	unsigned int max_attempts;
	double backoff_base_s;
	double linger_s;

	pthread_mutex_t lock;
	pthread_cond_t wake;      /* to the sender: data, a flush, or stop */
	pthread_cond_t progress;  /* to flushers: `finished` moved */
	trs__metric_datum **ring;
	size_t cap, head, count;
	uint64_t enqueued;        /* data accepted so far */
	uint64_t finished;        /* of those, sent or given up on */
	uint64_t dropped;
	uint64_t failed_calls;
	char last_error[256];
	unsigned int flushers;
	bool stop;
	bool started;
	pthread_t thread;
};

/* ---- the request body ---- */

static int put_param(trs__buf *b, const char *name, const char *value, trs_error *err)
{
	int rc = trs__buf_printf(b, err, "&%s=", name);
	return rc ? rc : trs__uri_encode(b, value, strlen(value), false, err);
}

static void iso8601_ms(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static int put_datum(trs__buf *b, size_t member, const trs__metric_datum *d, trs_error *err)
{
	char name[96], num[32], ts[32];
	int rc;
	snprintf(name, sizeof(name), "MetricData.member.%zu.MetricName", member);
	rc = put_param(b, name, d->name, err);
	for (size_t j = 0; rc == 0 && j < d->ndims; j++) {
		snprintf(name, sizeof(name), "MetricData.member.%zu.Dimensions.member.%zu.Name", member, j + 1);
		rc = put_param(b, name, d->dims[j].key, err);
		snprintf(name, sizeof(name), "MetricData.member.%zu.Dimensions.member.%zu.Value", member, j + 1);
		if (rc == 0)
			rc = put_param(b, name, d->dims[j].value, err);
	}
	iso8601_ms(d->timestamp_ms, ts);
	snprintf(name, sizeof(name), "MetricData.member.%zu.Timestamp", member);
	if (rc == 0)
		rc = put_param(b, name, ts, err);
	trs__metric_format_double(d->value, num);
	snprintf(name, sizeof(name), "MetricData.member.%zu.Value", member);
	if (rc == 0)
		rc = put_param(b, name, num, err);
	snprintf(name, sizeof(name), "MetricData.member.%zu.Unit", member);
	if (rc == 0)
		rc = put_param(b, name, d->unit, err);
	return rc;
}

long trs__cw_build_body(trs__buf *b, const char *metric_namespace, trs__metric_datum *const *data, size_t n,
			size_t max_bytes, trs_error *err)
{
	b->len = 0;
	int rc = trs__buf_puts(b, "Action=PutMetricData&Version=2010-08-01", err);
	if (rc == 0)
		rc = put_param(b, "Namespace", metric_namespace, err);
	size_t taken = 0;
	while (rc == 0 && taken < n && taken < TRS_CW_MAX_DATA_PER_CALL) {
		size_t before = b->len;
		rc = put_datum(b, taken + 1, data[taken], err);
		if (rc == 0 && taken > 0 && b->len > max_bytes) {
			b->len = before; /* this one starts the next call */
			break;
		}
		if (rc == 0)
			taken++;
	}
	if (rc < 0)
		return rc;
	b->data[b->len] = '\0';
	return (long)taken;
}

/* ---- sending one call ---- */

static int attempt_once(trs__cw *cw, const trs__buf *body, const char *payload_hash, bool refresh,
			trs__http_response *resp, trs_error *err)
{
	trs_kv h[] = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
	trs__sigv4_options o = TRS_SIGV4_GENERIC("monitoring");
	o.region = cw->region;
	trs__aws_target t = {cw->authority, cw->path, NULL, payload_hash};
	trs__http_request req = {.method = "POST", .url = cw->url, .headers = h, .nheaders = TRS_ARRAY_SIZE(h),
				 .body = body->data, .body_len = body->len, .max_response = 64 * 1024,
				 .timeout_ms = REQUEST_TIMEOUT_MS, .connect_timeout_ms = CONNECT_TIMEOUT_MS};
	return trs__aws_send_as(cw->http, cw->creds, refresh, &o, &t, &req, resp, err);
}

/* One PutMetricData call with its retries. On failure err says why (never with credentials). */
static int send_call(trs__cw *cw, const trs__buf *body, size_t ndata, trs_error *err)
{
	char payload_hash[TRS_SHA256_HEX_LEN + 1];
	trs__sha256_hex(body->data, body->len, payload_hash);
	trs__aws_retry r;
	trs__aws_retry_start(&r, cw->ctx, NULL, cw->max_attempts, cw->backoff_base_s, BACKOFF_CAP_S);
	for (;;) {
		trs__http_response resp;
		memset(&resp, 0, sizeof(resp));
		trs_error aerr = TRS_ERROR_INIT;
		int rc = attempt_once(cw, body, payload_hash, r.refresh, &resp, &aerr);
		char status_text[16] = "";
		char code[64] = "";
		trs__aws_xml x;
		memset(&x, 0, sizeof(x));
		trs__aws_verdict verdict;
		if (rc < 0) {
			verdict = rc == TRS_ENET && aerr.retryable ? TRS__AWS_RETRY : TRS__AWS_FAIL;
		} else if (resp.status >= 200 && resp.status < 300) {
			trs__http_response_free(&resp);
			return 0;
		} else {
			if (resp.body.len)
				trs__aws_xml_parse(resp.body.data, resp.body.len, &x, NULL);
			snprintf(code, sizeof(code), "%s", x.code ? x.code : "");
			verdict = trs__aws_classify(resp.status, code, false);
			snprintf(status_text, sizeof(status_text), "%ld", resp.status);
			rc = resp.status == 401 || resp.status == 403 ? TRS_EAUTH : TRS_EHTTP;
			trs__error_set(&aerr, rc, "HTTP %ld %s%s%.200s", resp.status, code, x.message ? ": " : "",
				       x.message ? x.message : "");
			aerr.http_status = (int)resp.status;
			snprintf(aerr.aws_code, sizeof(aerr.aws_code), "%s", code);
		}
		trs__aws_xml_free(&x);
		trs__http_response_free(&resp);
		if (!trs__aws_retry_allowed(&r, verdict, false, false) || trs__canceled(cw->ctx)) {
			if (err)
				*err = aerr;
			trs__error_prefix(err, "CloudWatch PutMetricData (%zu data) to %s failed%s", ndata, cw->url,
					  r.attempt > 1 ? " after retries" : "");
			return rc;
		}
		trs__log(cw->ctx, TRS_LOG_WARN, "CloudWatch PutMetricData failed; retrying", "status",
			 status_text[0] ? status_text : NULL, "code", code[0] ? code : NULL, "error", aerr.message,
			 NULL);
		trs__aws_retry_wait(&r, NULL); /* canceled: the next attempt's check ends it */
	}
}

/* Send data[0..n) in as many calls as it takes. */
static void send_all(trs__cw *cw, trs__metric_datum **data, size_t n)
{
	trs__buf body = TRS_BUF_INIT;
	size_t done = 0;
	while (done < n) {
		trs_error err = TRS_ERROR_INIT;
		long taken = trs__cw_build_body(&body, cw->metric_namespace, data + done, n - done,
						TRS_CW_MAX_BODY_BYTES - 4096, &err);
		int rc = taken < 0 ? (int)taken : send_call(cw, &body, (size_t)taken, &err);
		size_t count = taken > 0 ? (size_t)taken : n - done;
		if (rc < 0) {
			char ndata[24];
			snprintf(ndata, sizeof(ndata), "%zu", count);
			trs__log(cw->ctx, TRS_LOG_ERROR, "metrics not sent to CloudWatch", "namespace",
				 cw->metric_namespace, "data", ndata, "error", err.message, NULL);
			pthread_mutex_lock(&cw->lock);
			cw->failed_calls++;
			snprintf(cw->last_error, sizeof(cw->last_error), "%s", err.message);
			pthread_mutex_unlock(&cw->lock);
		}
		done += count;
	}
	trs__buf_free(&body);
}

/* ---- the sender thread ---- */

static void deadline_after(struct timespec *ts, double seconds)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	long long ns = (long long)ts->tv_nsec + (long long)(seconds * 1e9);
	ts->tv_sec += (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
}

static void *sender(void *arg)
{
	trs__cw *cw = arg;
	trs__metric_datum **batch = malloc(TRS_CW_MAX_DATA_PER_CALL * sizeof(*batch));
	pthread_mutex_lock(&cw->lock);
	for (;;) {
		while (!cw->stop && cw->count == 0)
			pthread_cond_wait(&cw->wake, &cw->lock);
		if (cw->count == 0)
			break; /* stopping with nothing left */
		/* Linger so that one archive's metrics share a call, unless someone waits. */
		struct timespec until;
		deadline_after(&until, cw->linger_s);
		while (!cw->stop && !cw->flushers && cw->count < TRS_CW_MAX_DATA_PER_CALL &&
		       pthread_cond_timedwait(&cw->wake, &cw->lock, &until) != ETIMEDOUT)
			;
		size_t n = 0;
		size_t limit = batch ? TRS_CW_MAX_DATA_PER_CALL : 0;
		while (cw->count && n < limit) {
			batch[n++] = cw->ring[cw->head];
			cw->head = (cw->head + 1) % cw->cap;
			cw->count--;
		}
		if (!batch) { /* no memory for a batch: give the queue up rather than spin */
			while (cw->count) {
				trs__metric_datum_free(cw->ring[cw->head]);
				cw->head = (cw->head + 1) % cw->cap;
				cw->count--;
				cw->finished++;
				cw->dropped++;
			}
			pthread_cond_broadcast(&cw->progress);
			continue;
		}
		pthread_mutex_unlock(&cw->lock);
		send_all(cw, batch, n);
		for (size_t i = 0; i < n; i++)
			trs__metric_datum_free(batch[i]);
		pthread_mutex_lock(&cw->lock);
		cw->finished += n;
		pthread_cond_broadcast(&cw->progress);
	}
	pthread_mutex_unlock(&cw->lock);
	free(batch);
	return NULL;
}

/* ---- construction ---- */

static int set_endpoint(trs__cw *cw, const char *url, trs_error *err)
{
	const char *sep = strstr(url, "://");
	size_t slen = sep ? (size_t)(sep - url) : 0;
	if (!sep || !((slen == 4 && strncasecmp(url, "http", 4) == 0) || (slen == 5 && strncasecmp(url, "https", 5) == 0)))
		return trs__error_set(err, TRS_EINVAL, "CloudWatch endpoint '%s' must look like https://host[:port]",
				      url);
	const char *auth = sep + 3;
	size_t alen = strcspn(auth, "/?#");
	if (alen == 0)
		return trs__error_set(err, TRS_EINVAL, "CloudWatch endpoint '%s' has no host", url);
	if (auth[alen] == '?' || auth[alen] == '#')
		return trs__error_set(err, TRS_EINVAL, "CloudWatch endpoint '%s' must not have a query or fragment",
				      url);
	const char *base = auth + alen;
	size_t blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	trs__buf u = TRS_BUF_INIT, p = TRS_BUF_INIT;
	int rc = trs__buf_printf(&p, err, "%.*s/", (int)blen, base);
	if (rc == 0) {
		rc = trs__buf_printf(&u, err, "%.*s://%.*s%s", (int)slen, url, (int)alen, auth, p.data);
		for (size_t i = 0; rc == 0 && i < slen; i++)
			u.data[i] = (char)tolower((unsigned char)u.data[i]);
	}
	if (rc == 0) {
		cw->authority = trs__strndup(auth, alen, err);
		rc = cw->authority ? 0 : TRS_ENOMEM;
	}
	if (rc == 0) {
		cw->url = u.data;
		cw->path = p.data;
		return 0;
	}
	trs__buf_free(&u);
	trs__buf_free(&p);
	return rc;
}

int trs__cw_new(trs__cw **out, const trs_ctx *ctx, const trs__cw_options *o, trs_error *err)
{
	*out = NULL;
	trs__cw *cw = trs__calloc(1, sizeof(*cw), err);
	if (!cw)
		return TRS_ENOMEM;
	cw->ctx = ctx;
	cw->max_attempts = trs__aws_max_attempts(o->max_attempts, DEFAULT_ATTEMPTS);
	cw->backoff_base_s = o->backoff_base_s > 0 ? o->backoff_base_s : DEFAULT_BACKOFF_BASE_S;
	cw->linger_s = o->linger_s > 0 ? o->linger_s : DEFAULT_LINGER_S;
	cw->cap = o->queue_cap ? o->queue_cap : TRS_CW_QUEUE_CAP;
	pthread_mutex_init(&cw->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cw->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&cw->progress, NULL);

	int rc = 0;
	cw->metric_namespace = trs__strdup(o->metric_namespace, err);
	cw->ring = cw->metric_namespace ? trs__calloc(cw->cap, sizeof(*cw->ring), err) : NULL;
	if (!cw->ring)
		rc = TRS_ENOMEM;
	trs__http_options ho = TRS_HTTP_OPTIONS_INIT;
	ho.insecure = o->insecure;
	ho.pool_size = 2;
	if (rc == 0)
		rc = trs__http_new(&cw->http, ctx, &ho, err);
	if (rc == 0)
		rc = trs__cred_provider_new(&cw->creds, ctx, cw->http, err);

	const char *endpoint = trs__aws_endpoint("CLOUDWATCH", o->endpoint_url);
	if (rc == 0) {
		const char *region = o->region && *o->region ? o->region : trs_ctx_region(ctx);
		if (region && *region) {
			cw->region = trs__strdup(region, err);
			rc = cw->region ? 0 : TRS_ENOMEM;
		} else {
			trs_error rerr = TRS_ERROR_INIT;
			rc = trs__aws_region(ctx, endpoint ? NULL : cw->http, &cw->region, &rerr);
			if (rc == TRS_ENOTFOUND && endpoint) /* a local endpoint signs for any region */
				rc = (cw->region = trs__strdup("us-east-1", err)) ? 0 : TRS_ENOMEM;
			else if (rc == TRS_ENOTFOUND)
				rc = trs__error_set(err, TRS_EINVAL,
						    "no region for CloudWatch metrics: set AWS_REGION (or an endpoint)");
			else if (rc < 0 && err)
				*err = rerr;
		}
	}
	if (rc == 0 && endpoint) {
		rc = set_endpoint(cw, endpoint, err);
	} else if (rc == 0) {
		char url[256];
		snprintf(url, sizeof(url), "https://monitoring.%s.amazonaws.com%s", cw->region,
			 strncmp(cw->region, "cn-", 3) == 0 ? ".cn" : "");
		rc = set_endpoint(cw, url, err);
	}
	if (rc == 0) {
		if (pthread_create(&cw->thread, NULL, sender, cw) != 0)
			rc = trs__error_set(err, TRS_ENOMEM, "cannot start the CloudWatch metrics thread");
		else
			cw->started = true;
	}
	if (rc < 0) {
		trs__cw_free(cw);
		return rc;
	}
	trs__log(ctx, TRS_LOG_DEBUG, "CloudWatch metrics sink ready", "endpoint", cw->url, "region", cw->region,
		 "namespace", cw->metric_namespace, NULL);
	*out = cw;
	return 0;
}

void trs__cw_enqueue(trs__cw *cw, trs__metric_datum *d)
{
	bool dropped = false;
	uint64_t ndropped = 0;
	pthread_mutex_lock(&cw->lock);
	if (cw->stop || cw->count == cw->cap) {
		dropped = true;
		ndropped = ++cw->dropped;
	} else {
		cw->ring[(cw->head + cw->count) % cw->cap] = d;
		cw->count++;
		cw->enqueued++;
		pthread_cond_signal(&cw->wake);
	}
	pthread_mutex_unlock(&cw->lock);
	if (!dropped)
		return;
	/* The first drop and then every thousandth: a stuck CloudWatch must not flood the log. */
	if (ndropped == 1 || ndropped % 1000 == 0) {
		char n[24];
		snprintf(n, sizeof(n), "%llu", (unsigned long long)ndropped);
		trs__log(cw->ctx, TRS_LOG_WARN, "CloudWatch metrics queue full; metric dropped", "metric", d->name,
			 "dropped_total", n, NULL);
	}
	trs__metric_datum_free(d);
}

int trs__cw_flush(trs__cw *cw, trs_error *err)
{
	pthread_mutex_lock(&cw->lock);
	uint64_t target = cw->enqueued;
	uint64_t failed_before = cw->failed_calls;
	cw->flushers++;
	pthread_cond_signal(&cw->wake);
	while (cw->started && cw->finished < target)
		pthread_cond_wait(&cw->progress, &cw->lock);
	cw->flushers--;
	int rc = 0;
	if (cw->failed_calls != failed_before)
		rc = trs__error_set(err, TRS_EHTTP, "%s", cw->last_error);
	pthread_mutex_unlock(&cw->lock);
	return rc;
}

uint64_t trs__cw_dropped(trs__cw *cw)
{
	pthread_mutex_lock(&cw->lock);
	uint64_t n = cw->dropped;
	pthread_mutex_unlock(&cw->lock);
	return n;
}

void trs__cw_free(trs__cw *cw)
{
	if (!cw)
		return;
	if (cw->started) {
		trs__cw_flush(cw, NULL);
		pthread_mutex_lock(&cw->lock);
		cw->stop = true;
		pthread_cond_signal(&cw->wake);
		pthread_mutex_unlock(&cw->lock);
		pthread_join(cw->thread, NULL);
	}
	while (cw->ring && cw->count) {
		trs__metric_datum_free(cw->ring[cw->head]);
		cw->head = (cw->head + 1) % cw->cap;
		cw->count--;
	}
	free(cw->ring);
	trs__cred_provider_free(cw->creds);
	trs__http_free(cw->http);
	pthread_cond_destroy(&cw->wake);
	pthread_cond_destroy(&cw->progress);
	pthread_mutex_destroy(&cw->lock);
	free(cw->metric_namespace);
	free(cw->region);
	free(cw->url);
	free(cw->authority);
	free(cw->path);
	free(cw);
}
