/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "sqs" queue backend: Amazon SQS over the AWS JSON 1.0 protocol
 * (POST /, X-Amz-Target: AmazonSQS.<Action>), SigV4-signed for service
 * "sqs", through the same HTTP client, credential chain and retry policy as
 * the S3 backend (lib/aws/http.h, lib/aws/credentials.h, lib/aws/retry.h).
 *
 * A receive waits up to 20 s inside one request. So that a stop request
 * need not wait for it, receives go through their own HTTP client whose
 * context's cancellation flag is the caller's interrupt flag.
 */
#include "aws/retry.h"
#include "aws/send.h"
#include "aws/clock.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/sigv4.h"
#include "trs/sys/queue.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#define DEFAULT_ATTEMPTS 5
#define CALL_TIMEOUT_MS 30000L
/* Ten messages of at most 1 MiB each, with their attributes and JSON escaping. */
#define MAX_ANSWER (24u << 20)

typedef struct sqs_queue {
	trs_queue parent;
	const trs_ctx *ctx;
	trs__http *http;          /* delete, change visibility (never canceled: call_ctx) */
	trs__http *recv_http;     /* receive: its context's cancel flag is the interrupt */
	struct trs_ctx recv_ctx;  /* a copy of the caller's, owned here; cancel set per receive */
	/* Deletes and visibility changes are short cleanup calls that must still go
	 * out after the caller's cancel flag is raised (a second SIGTERM still
	 * releases the messages): their HTTP client's context has no cancel flag.
	 * The caller's context still stops their retries. */
	struct trs_ctx call_ctx;
	pthread_mutex_t recv_lock;
	trs__cred_provider *creds;
	char *queue_url;
	char *endpoint;           /* "scheme://authority" */
	char *authority;
	char *path;               /* "/" or the endpoint's base path */
	char *region;
	unsigned int max_attempts;
	trs__aws_budget budget;
} sqs_queue;

/* ---- small helpers ---- */

static int json_string(trs__buf *b, const char *s, trs_error *err)
{
	int rc = trs__buf_puts(b, "\"", err);
	for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
		if (*p == '"' || *p == '\\')
			rc = trs__buf_printf(b, err, "\\%c", *p);
		else if (*p < 0x20)
			rc = trs__buf_printf(b, err, "\\u%04x", *p);
		else
			rc = trs__buf_put(b, p, 1, err);
	}
	return rc == 0 ? trs__buf_puts(b, "\"", err) : rc;
}

/* The first characters of a receipt handle, for messages and logs: never the whole. */
static void handle_hint(const char *h, char out[16])
{
	snprintf(out, 16, "%.8s...", h ? h : "");
}

/* ---- one call ---- */

static int sign_and_send(sqs_queue *q, trs__http *http, const char *action, const trs__buf *body, long timeout_ms,
			 bool refresh, trs__http_response *resp, trs_error *err)
{
	char target[64];
	snprintf(target, sizeof(target), "AmazonSQS.%s", action);
	trs_kv h[] = {{"Content-Type", "application/x-amz-json-1.0"}, {"X-Amz-Target", target}};
	trs__sigv4_options o = TRS_SIGV4_GENERIC("sqs");
	o.region = q->region;
	trs__aws_target t = {q->authority, q->path, NULL, NULL};
	trs__buf url = TRS_BUF_INIT;
	int rc = trs__buf_printf(&url, err, "%s%s", q->endpoint, q->path);
	trs__http_request req = {.method = "POST", .url = url.data, .headers = h, .nheaders = TRS_ARRAY_SIZE(h),
				 .body = body->data, .body_len = body->len, .max_response = MAX_ANSWER,
				 .timeout_ms = timeout_ms};
	if (rc == 0)
		rc = trs__aws_send_as(http, q->creds, refresh, &o, &t, &req, resp, err);
	trs__buf_free(&url);
	return rc;
}

/* "com.amazonaws.sqs#QueueDoesNotExist" -> "QueueDoesNotExist"; the query-compatible header wins. */
static void error_code(const trs__http_response *resp, yajl_val doc, char *code, size_t size, char *msg,
		       size_t msize)
{
	const char *paths[][2] = {{"__type", NULL}, {"code", NULL}};
	const char *type = NULL, *message = NULL;
	for (size_t i = 0; doc && i < 2 && !type; i++) {
		const char *p[] = {paths[i][0], NULL};
		yajl_val v = yajl_tree_get(doc, p, yajl_t_string);
		type = v ? YAJL_GET_STRING(v) : NULL;
	}
	const char *mp[][2] = {{"message", NULL}, {"Message", NULL}};
	for (size_t i = 0; doc && i < 2 && !message; i++) {
		const char *p[] = {mp[i][0], NULL};
		yajl_val v = yajl_tree_get(doc, p, yajl_t_string);
		message = v ? YAJL_GET_STRING(v) : NULL;
	}
	const char *hash = type ? strrchr(type, '#') : NULL;
	snprintf(code, size, "%s", hash ? hash + 1 : type ? type : "");
	const char *query = trs__http_header(resp, "x-amzn-query-error");
	if (!*code && query)
		snprintf(code, size, "%.*s", (int)strcspn(query, ";"), query);
	snprintf(msg, msize, "%s", message ? message : "");
}

static const char *hint_for(long status, const char *code)
{
	if (strstr(code, "NonExistentQueue") || strstr(code, "QueueDoesNotExist"))
		return "check SQS_QUEUE_URL (and the region: a queue URL belongs to one region)";
	if (strstr(code, "AccessDenied") || status == 403)
		return "check that these credentials may call sqs:ReceiveMessage, sqs:DeleteMessage and "
		       "sqs:ChangeMessageVisibility on the queue";
	if (strstr(code, "Signature") || strstr(code, "ClientToken") || strstr(code, "Token"))
		return "check the AWS credentials in use (and the system clock)";
	return NULL;
}

/*
 * Perform one action with retries. On 0, *doc is the parsed JSON answer
 * (free with yajl_tree_free; NULL for an empty body).
 */
static int sqs_call(sqs_queue *q, trs__http *http, const trs_ctx *ctx, const char *action, const trs__buf *body,
		    long timeout_ms, yajl_val *doc, trs_error *err)
{
	*doc = NULL;
	trs__aws_retry r;
	trs__aws_retry_start(&r, ctx, &q->budget, q->max_attempts, 0.2, 20.0);
	for (;;) {
		trs__http_response resp;
		memset(&resp, 0, sizeof(resp));
		trs_error aerr = TRS_ERROR_INIT;
		int rc = sign_and_send(q, http, action, body, timeout_ms, r.refresh, &resp, &aerr);
		char code[96] = "", message[512] = "";
		if (rc < 0) {
			trs__http_response_free(&resp);
			if (rc != TRS_ENET || !aerr.retryable || !trs__aws_retry_allowed(&r, TRS__AWS_RETRY, true, true)) {
				if (err)
					*err = aerr;
				trs__error_prefix(err, "SQS %s on %s failed%s", action, q->queue_url,
						  r.attempt > 1 ? " after retries" : "");
				return rc;
			}
			trs__log(q->ctx, TRS_LOG_WARN, "SQS request failed; retrying", "op", action, "error", aerr.message,
				 NULL);
		} else {
			long status = resp.status;
			yajl_val parsed = NULL;
			if (resp.body.len && !resp.truncated) {
				char *text = trs__strndup(resp.body.data, resp.body.len, NULL);
				parsed = text ? yajl_tree_parse(text, NULL, 0) : NULL;
				free(text);
			}
			bool odd = false;
			if (status >= 200 && status < 300) {
				bool bad = resp.truncated || (resp.body.len && !YAJL_IS_OBJECT(parsed));
				if (!bad) {
					trs__http_response_free(&resp);
					*doc = parsed;
					trs__aws_retry_succeeded(&r);
					return 0;
				}
				/* A 200 that holds no answer (cut short, not JSON): a failed attempt, retried as
				 * a 500 is, as the AWS SDKs do. */
				odd = true;
				status = 500;
				snprintf(code, sizeof(code), "InternalError");
				snprintf(message, sizeof(message), "SQS answered 200 OK with a body that is not a JSON object%s",
					 resp.truncated ? " (too large)" : "");
			}
			if (!odd)
				error_code(&resp, parsed, code, sizeof(code), message, sizeof(message));
			yajl_tree_free(parsed);
			trs__aws_verdict verdict = trs__aws_classify(status, code, false);
			if (trs__aws_clock_correct(http, &resp, code, "SQS"))
				verdict = TRS__AWS_RETRY; /* signed in SQS's time from now on */
			trs__http_response_free(&resp);
			if (!trs__aws_retry_allowed(&r, verdict, verdict == TRS__AWS_RETRY, false)) {
				int trs_code = status == 401 || status == 403 ? TRS_EAUTH
					       : strstr(code, "NonExistentQueue") || strstr(code, "QueueDoesNotExist")
						       ? TRS_ENOTFOUND
						       : TRS_EHTTP;
				const char *hint = hint_for(status, code);
				trs__error_set(err, trs_code, "SQS %s on %s failed%s: HTTP %ld %s%s%.300s%s%s", action,
					       q->queue_url, r.attempt > 1 ? " after retries" : "", status, code,
					       *message ? ": " : "", message, hint ? ". What to do: " : "",
					       hint ? hint : "");
				if (err) {
					err->http_status = (int)status;
					snprintf(err->aws_code, sizeof(err->aws_code), "%s", code);
					err->retryable = verdict != TRS__AWS_FAIL;
				}
				return trs_code;
			}
			char st[16];
			snprintf(st, sizeof(st), "%ld", status);
			trs__log(q->ctx, TRS_LOG_WARN, "SQS request failed; retrying", "op", action, "status", st, "code",
				 code, NULL);
		}
		if (trs__aws_retry_wait(&r, NULL) < 0)
			return trs__error_set(err, TRS_ECANCELED, "SQS %s: canceled while waiting to retry", action);
	}
}

/* ---- actions ---- */

static const char *obj_str(yajl_val v, const char *name)
{
	const char *p[] = {name, NULL};
	yajl_val x = v ? yajl_tree_get(v, p, yajl_t_string) : NULL;
	return x ? YAJL_GET_STRING(x) : NULL;
}

static int take_message(sqs_queue *q, yajl_val m, trs_queue_message *out, trs_error *err)
{
	const char *id = obj_str(m, "MessageId");
	const char *handle = obj_str(m, "ReceiptHandle");
	const char *body = obj_str(m, "Body");
	const char *md5 = obj_str(m, "MD5OfBody");
	if (!id || !handle || !body)
		return trs__error_set(err, TRS_EHTTP, "SQS ReceiveMessage on %s: a message without id, handle or body",
				      q->queue_url);
	if (md5) {
		unsigned char raw[16];
		char hex[33];
		trs__md5(body, strlen(body), raw);
		trs__hex(raw, 16, hex);
		if (strcasecmp(hex, md5) != 0) {
			/* Not deleted: it comes back after its visibility timeout, hopefully intact. */
			trs__log(q->ctx, TRS_LOG_WARN, "SQS message body does not match its MD5; skipped", "queue",
				 q->queue_url, "message_id", id, NULL);
			return 1;
		}
	}
	const char *cp[] = {"Attributes", "ApproximateReceiveCount", NULL};
	yajl_val count = yajl_tree_get(m, cp, yajl_t_string);
	memset(out, 0, sizeof(*out));
	const char *count_text = count ? YAJL_GET_STRING(count) : NULL;
	out->receive_count = count_text ? (unsigned int)strtoul(count_text, NULL, 10) : 0;
	out->id = trs__strdup(id, err);
	out->receipt_handle = out->id ? trs__strdup(handle, err) : NULL;
	out->body = out->receipt_handle ? trs__strdup(body, err) : NULL;
	out->body_len = out->body ? strlen(out->body) : 0;
	if (!out->body) {
		free(out->id);
		free(out->receipt_handle);
		memset(out, 0, sizeof(*out));
		return TRS_ENOMEM;
	}
	return 0;
}

static int sqs_receive(trs_queue *self, const trs_queue_receive_options *o, trs_queue_message **out, size_t *count,
		       trs_error *err)
{
	sqs_queue *q = (sqs_queue *)self;
	trs__buf body = TRS_BUF_INIT;
	int rc = trs__buf_puts(&body, "{\"QueueUrl\":", err);
	if (rc == 0)
		rc = json_string(&body, q->queue_url, err);
	if (rc == 0)
		rc = trs__buf_printf(&body, err,
				     ",\"MaxNumberOfMessages\":%u,\"WaitTimeSeconds\":%u,"
				     "\"AttributeNames\":[\"ApproximateReceiveCount\"],"
				     "\"MessageSystemAttributeNames\":[\"ApproximateReceiveCount\"]",
				     o->max_messages, o->wait_seconds);
	if (rc == 0 && o->visibility_timeout)
		rc = trs__buf_printf(&body, err, ",\"VisibilityTimeout\":%u", o->visibility_timeout);
	if (rc == 0)
		rc = trs__buf_puts(&body, "}", err);
	yajl_val doc = NULL;
	if (rc == 0) {
		/* One receive at a time owns recv_ctx's cancel pointer. */
		pthread_mutex_lock(&q->recv_lock);
		q->recv_ctx.cancel = o->interrupt ? o->interrupt : TRS_CTX(q->ctx)->cancel;
		rc = sqs_call(q, q->recv_http, &q->recv_ctx, "ReceiveMessage", &body,
			      (long)(o->wait_seconds + 30) * 1000L, &doc, err);
		q->recv_ctx.cancel = TRS_CTX(q->ctx)->cancel;
		pthread_mutex_unlock(&q->recv_lock);
		if (rc == TRS_ECANCELED && trs__flag_raised(o->interrupt))
			rc = 0; /* interrupted: no messages */
	}
	trs__buf_free(&body);
	const char *mp[] = {"Messages", NULL};
	yajl_val msgs = rc == 0 && doc ? yajl_tree_get(doc, mp, yajl_t_array) : NULL;
	size_t n = msgs ? msgs->u.array.len : 0;
	if (n > o->max_messages)
		n = o->max_messages;
	if (n) {
		*out = trs__calloc(n, sizeof(**out), err);
		if (!*out)
			rc = TRS_ENOMEM;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			int took = take_message(q, msgs->u.array.values[i], &(*out)[*count], err);
			if (took == 0)
				(*count)++;
			else if (took < 0)
				rc = took;
		}
		if (rc == 0 && *count == 0) {
			/* Every message failed its MD5: the caller gets no array to free for none. */
			free(*out);
			*out = NULL;
		}
	}
	yajl_tree_free(doc);
	return rc;
}

static int delete_chunk(sqs_queue *q, const char *const *handles, size_t n, int *codes, size_t *failed,
			trs_error *err)
{
	trs__buf body = TRS_BUF_INIT;
	int rc = trs__buf_puts(&body, "{\"QueueUrl\":", err);
	if (rc == 0)
		rc = json_string(&body, q->queue_url, err);
	if (rc == 0)
		rc = trs__buf_puts(&body, ",\"Entries\":[", err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = trs__buf_printf(&body, err, "%s{\"Id\":\"m%zu\",\"ReceiptHandle\":", i ? "," : "", i);
		if (rc == 0)
			rc = json_string(&body, handles[i] ? handles[i] : "", err);
		if (rc == 0)
			rc = trs__buf_puts(&body, "}", err);
	}
	if (rc == 0)
		rc = trs__buf_puts(&body, "]}", err);
	yajl_val doc = NULL;
	if (rc == 0)
		rc = sqs_call(q, q->http, q->ctx, "DeleteMessageBatch", &body, CALL_TIMEOUT_MS, &doc, err);
	trs__buf_free(&body);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			codes[i] = rc;
		*failed += n;
		return rc;
	}
	/* Every entry is failed until the answer lists it as successful. */
	bool *ok = trs__calloc(n ? n : 1, sizeof(*ok), err);
	if (!ok) {
		yajl_tree_free(doc);
		return TRS_ENOMEM;
	}
	const char *sp[] = {"Successful", NULL}, *fp[] = {"Failed", NULL};
	yajl_val good = doc ? yajl_tree_get(doc, sp, yajl_t_array) : NULL;
	yajl_val bad = doc ? yajl_tree_get(doc, fp, yajl_t_array) : NULL;
	for (size_t i = 0; good && i < good->u.array.len; i++) {
		const char *id = obj_str(good->u.array.values[i], "Id");
		size_t idx;
		if (id && id[0] == 'm' && sscanf(id + 1, "%zu", &idx) == 1 && idx < n)
			ok[idx] = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (ok[i])
			continue;
		const char *why = "not in the answer", *code = "";
		for (size_t j = 0; bad && j < bad->u.array.len; j++) {
			const char *id = obj_str(bad->u.array.values[j], "Id");
			size_t idx;
			if (id && id[0] == 'm' && sscanf(id + 1, "%zu", &idx) == 1 && idx == i) {
				const char *c = obj_str(bad->u.array.values[j], "Code");
				const char *m = obj_str(bad->u.array.values[j], "Message");
				code = c ? c : "";
				why = m ? m : "";
			}
		}
		codes[i] = strstr(code, "ReceiptHandleIsInvalid") || strstr(code, "NotFound") ? TRS_ENOTFOUND
											       : TRS_EHTTP;
		if ((*failed)++ == 0) {
			char hint[16];
			handle_hint(handles[i], hint);
			trs__error_set(err, codes[i], "SQS DeleteMessageBatch on %s: message with handle %s not deleted: %s%s%.300s",
				       q->queue_url, hint, code, *code ? ": " : "", why);
			if (err)
				snprintf(err->aws_code, sizeof(err->aws_code), "%s", code);
		}
	}
	free(ok);
	yajl_tree_free(doc);
	return 0;
}

static int sqs_delete_batch(trs_queue *self, const char *const *handles, size_t count, int *codes, trs_error *err)
{
	sqs_queue *q = (sqs_queue *)self;
	size_t failed = 0;
	int last = 0;
	for (size_t at = 0; at < count; at += TRS_QUEUE_MAX_MESSAGES) {
		size_t n = count - at < TRS_QUEUE_MAX_MESSAGES ? count - at : TRS_QUEUE_MAX_MESSAGES;
		trs_error e = TRS_ERROR_INIT;
		size_t before = failed;
		int rc = delete_chunk(q, handles + at, n, codes + at, &failed, &e);
		if (rc == TRS_ENOMEM)
			return trs__error_set(err, TRS_ENOMEM, "out of memory deleting SQS messages");
		if (failed > before && before == 0 && err)
			*err = e;
		last = rc;
	}
	if (!failed)
		return 0;
	/* Nothing deleted because every call failed: the call's own code tells more. */
	return failed == count && last < 0 ? last : TRS_EPARTIAL;
}

static int sqs_change_visibility(trs_queue *self, const char *handle, unsigned int seconds, trs_error *err)
{
	sqs_queue *q = (sqs_queue *)self;
	trs__buf body = TRS_BUF_INIT;
	int rc = trs__buf_puts(&body, "{\"QueueUrl\":", err);
	if (rc == 0)
		rc = json_string(&body, q->queue_url, err);
	if (rc == 0)
		rc = trs__buf_puts(&body, ",\"ReceiptHandle\":", err);
	if (rc == 0)
		rc = json_string(&body, handle, err);
	if (rc == 0)
		rc = trs__buf_printf(&body, err, ",\"VisibilityTimeout\":%u}", seconds);
	yajl_val doc = NULL;
	if (rc == 0)
		rc = sqs_call(q, q->http, q->ctx, "ChangeMessageVisibility", &body, CALL_TIMEOUT_MS, &doc, err);
	yajl_tree_free(doc);
	trs__buf_free(&body);
	return rc;
}

static void sqs_free(trs_queue *self)
{
	sqs_queue *q = (sqs_queue *)self;
	trs__cred_provider_free(q->creds);
	trs__http_free(q->recv_http);
	trs__http_free(q->http);
	pthread_mutex_destroy(&q->recv_lock);
	trs__aws_budget_destroy(&q->budget);
	free(q->queue_url);
	free(q->endpoint);
	free(q->authority);
	free(q->path);
	free(q->region);
	free(q);
}

/* ---- set-up ---- */

/* Split "scheme://authority/path..." into its pieces (any may be NULL). */
static int split_url(const char *url, char **scheme_authority, char **authority, char **path, trs_error *err)
{
	const char *sep = strstr(url, "://");
	if (!sep || (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0))
		return trs__error_set(err, TRS_EINVAL, "'%.200s' is not an http(s) URL", url);
	const char *auth = sep + 3;
	size_t alen = strcspn(auth, "/?#");
	if (alen == 0)
		return trs__error_set(err, TRS_EINVAL, "URL '%.200s' has no host", url);
	if (scheme_authority && !(*scheme_authority = trs__strndup(url, (size_t)(auth + alen - url), err)))
		return TRS_ENOMEM;
	if (authority && !(*authority = trs__strndup(auth, alen, err)))
		return TRS_ENOMEM;
	if (path) {
		const char *p = auth + alen;
		size_t plen = strcspn(p, "?#");
		while (plen && p[plen - 1] == '/')
			plen--;
		*path = plen ? trs__strndup(p, plen, err) : trs__strdup("/", err);
		if (!*path)
			return TRS_ENOMEM;
	}
	return 0;
}

/* "sqs.eu-west-1.amazonaws.com" -> "eu-west-1"; NULL when the host is not AWS's. */
static char *aws_host_region(const char *authority, bool *is_aws)
{
	size_t hlen = strcspn(authority, ":");
	char host[256];
	snprintf(host, sizeof(host), "%.*s", (int)hlen, authority);
	for (char *p = host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	size_t n = strlen(host);
	*is_aws = (n > 14 && strcmp(host + n - 14, ".amazonaws.com") == 0) ||
		  (n > 17 && strcmp(host + n - 17, ".amazonaws.com.cn") == 0);
	if (!*is_aws)
		return NULL;
	/* sqs.<region>.amazonaws.com, or <region>.queue.amazonaws.com (legacy). */
	char *first = strchr(host, '.');
	if (!first)
		return NULL;
	if (strncmp(host, "sqs.", 4) == 0) {
		char *second = strchr(first + 1, '.');
		return second ? strndup(first + 1, (size_t)(second - first - 1)) : NULL;
	}
	if (strncmp(first, ".queue.", 7) == 0)
		return strndup(host, (size_t)(first - host));
	return NULL;
}

int trs_queue_sqs_new(trs_queue **out, const trs_ctx *ctx, const trs_sqs_options *options, trs_error *err)
{
	if (!out || !options || !options->queue_url || !*options->queue_url)
		return trs__error_set(err, TRS_EINVAL, "trs_queue_sqs_new needs an output pointer and a queue URL");
	if (options->version == 0 || options->version > TRS_SQS_OPTIONS_VERSION)
		return trs__error_set(err, TRS_EINVAL, "trs_sqs_options has unknown version %u", options->version);
	*out = NULL;
	sqs_queue *q = trs__calloc(1, sizeof(*q), err);
	if (!q)
		return TRS_ENOMEM;
	trs_queue_init_backend(&q->parent, TRS_QUEUE_VERSION);
	q->parent.name = "sqs";
	q->parent.receive = sqs_receive;
	q->parent.delete_batch = sqs_delete_batch;
	q->parent.change_visibility = sqs_change_visibility;
	q->parent.free = sqs_free;
	q->ctx = ctx;
	/* A private copy: only its cancel pointer differs (set per receive). */
	q->recv_ctx = *TRS_CTX(ctx);
	q->call_ctx = *TRS_CTX(ctx);
	q->call_ctx.cancel = NULL;
	pthread_mutex_init(&q->recv_lock, NULL);
	q->max_attempts = trs__aws_max_attempts(options->max_attempts, DEFAULT_ATTEMPTS);
	trs__aws_budget_init(&q->budget, ctx, "SQS");

	char *queue_authority = NULL, *queue_path = NULL, *url_region = NULL;
	int rc = 0;
	if (!(q->queue_url = trs__strdup(options->queue_url, err)))
		rc = TRS_ENOMEM;
	if (rc == 0)
		rc = split_url(options->queue_url, NULL, &queue_authority, &queue_path, err);
	if (rc == 0 && strcmp(queue_path, "/") == 0)
		rc = trs__error_set(err, TRS_EINVAL, "queue URL '%.200s' names no queue (.../ACCOUNT/NAME)",
				    options->queue_url);
	bool is_aws = false;
	if (rc == 0)
		url_region = aws_host_region(queue_authority, &is_aws);

	const char *endpoint = trs__aws_endpoint("SQS", options->endpoint_url);
	trs__http_options ho = TRS_HTTP_OPTIONS_INIT;
	ho.insecure = options->no_verify_ssl != 0;
	ho.pool_size = 4;
	if (rc == 0)
		rc = trs__http_new(&q->http, &q->call_ctx, &ho, err);
	if (rc == 0)
		rc = trs__http_new(&q->recv_http, &q->recv_ctx, &ho, err);
	if (rc == 0)
		rc = trs__cred_provider_new(&q->creds, ctx, q->http, err);

	/* Region: explicit, the one in an AWS queue URL, the context's, the environment's. */
	if (rc == 0) {
		if (options->region && *options->region)
			q->region = trs__strdup(options->region, err);
		else if (url_region)
			q->region = trs__strdup(url_region, err);
		else if (*trs_ctx_region(ctx))
			q->region = trs__strdup(trs_ctx_region(ctx), err);
		else {
			trs_error rerr = TRS_ERROR_INIT;
			bool custom = endpoint || !is_aws;
			rc = trs__aws_region(ctx, custom ? NULL : q->http, &q->region, &rerr);
			if (rc == TRS_ENOTFOUND && custom) {
				q->region = trs__strdup("us-east-1", err);
				rc = 0;
			} else if (rc < 0 && err) {
				*err = rerr;
			}
		}
		if (rc == 0 && !q->region)
			rc = TRS_ENOMEM;
	}
	/* Endpoint: configured, else the queue URL's own host unless it is AWS's, else regional. */
	if (rc == 0) {
		if (endpoint) {
			rc = split_url(endpoint, &q->endpoint, &q->authority, &q->path, err);
			if (rc == TRS_EINVAL)
				trs__error_prefix(err, "SQS endpoint");
		} else if (!is_aws) {
			rc = split_url(options->queue_url, &q->endpoint, &q->authority, NULL, err);
			if (rc == 0 && !(q->path = trs__strdup("/", err)))
				rc = TRS_ENOMEM;
		} else {
			trs__buf a = TRS_BUF_INIT, e = TRS_BUF_INIT;
			const char *suffix = strstr(queue_authority, ".amazonaws.com.cn") ? "amazonaws.com.cn"
											 : "amazonaws.com";
			rc = trs__buf_printf(&a, err, "sqs.%s.%s", q->region, suffix);
			if (rc == 0)
				rc = trs__buf_printf(&e, err, "https://%s", a.data);
			q->authority = a.data;
			q->endpoint = e.data;
			if (rc == 0 && !(q->path = trs__strdup("/", err)))
				rc = TRS_ENOMEM;
		}
	}
	free(queue_authority);
	free(queue_path);
	free(url_region);
	if (rc < 0) {
		sqs_free(&q->parent);
		return rc;
	}
	trs__log(ctx, TRS_LOG_DEBUG, "SQS queue ready", "queue", q->queue_url, "endpoint", q->endpoint, "region",
		 q->region, NULL);
	*out = &q->parent;
	return 0;
}
