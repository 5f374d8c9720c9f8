/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP over libcurl: a thread-safe pool of easy handles sharing connections. */
#include "http.h"
#include "sigv4.h"
#include "tls_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_LOW_SPEED_TIME_S 60L
#define DEFAULT_POOL_SIZE 64
#define DEFAULT_MAX_RESPONSE (1u << 20)

struct trs__http {
	const trs_ctx *ctx;
	trs__http_options opts;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL **pool;
	size_t npool;
	long clock_offset;       /* seconds to add to this host's clock to sign in AWS's time (clock.c) */
	trs__sigv4_key_cache keys; /* the signing key of this client's last scope (sigv4.c) */
	trs__tls_store tls;        /* the CA certificates, loaded once (tls_store.c) */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr)
{
	(void)handle;
	(void)access;
	trs__http *h = userptr;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
	(void)handle;
	trs__http *h = userptr;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_locks[data]);
}

int trs__http_new(trs__http **out, const trs_ctx *ctx, const trs__http_options *opts, trs_error *err)
{
	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return trs__error_set(err, TRS_ENET, "libcurl failed to initialise: %s", curl_easy_strerror(global_rc));
	trs__http *h = trs__calloc(1, sizeof(*h), err);
	if (!h)
		return TRS_ENOMEM;
	h->ctx = ctx;
	trs__sigv4_key_cache_init(&h->keys);
	trs__tls_store_init(&h->tls);
	if (opts)
		h->opts = *opts;
	if (!h->opts.connect_timeout_ms)
		h->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	if (!h->opts.low_speed_time_s) {
		/* TRS_HTTP_LOW_SPEED_TIME_S lets fault-injection tests give up on a stalled server in
		 * seconds rather than a minute; whole seconds, 1..3600, anything else ignored. */
		const char *v = getenv("TRS_HTTP_LOW_SPEED_TIME_S");
		char *end = NULL;
		long secs = v && *v ? strtol(v, &end, 10) : 0;
		h->opts.low_speed_time_s = end && !*end && secs >= 1 && secs <= 3600 ? secs : DEFAULT_LOW_SPEED_TIME_S;
	}
	if (!h->opts.pool_size)
		h->opts.pool_size = DEFAULT_POOL_SIZE;
	h->pool = trs__calloc(h->opts.pool_size, sizeof(*h->pool), err);
	if (!h->pool) {
		trs__sigv4_key_cache_free(&h->keys);
		trs__tls_store_free(&h->tls);
		free(h);
		return TRS_ENOMEM;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	h->share = curl_share_init();
	if (!h->share) {
		trs__http_free(h);
		return trs__error_set(err, TRS_ENOMEM, "out of memory creating a libcurl share");
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	if (h->opts.insecure)
		trs__log(ctx, TRS_LOG_WARN,
			 "TLS certificate verification is OFF for this endpoint; use this only against test servers",
			 NULL);
	*out = h;
	return 0;
}

long trs__http_clock_offset(const trs__http *h)
{
	return h ? __atomic_load_n(&h->clock_offset, __ATOMIC_RELAXED) : 0;
}

void trs__http_set_clock_offset(trs__http *h, long seconds)
{
	__atomic_store_n(&h->clock_offset, seconds, __ATOMIC_RELAXED);
}

const trs_ctx *trs__http_ctx(const trs__http *h)
{
	return h->ctx;
}

trs__sigv4_key_cache *trs__http_key_cache(trs__http *h)
{
	return &h->keys;
}

void trs__http_free(trs__http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	free(h->pool);
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	pthread_mutex_destroy(&h->pool_lock);
	trs__sigv4_key_cache_free(&h->keys);
	trs__tls_store_free(&h->tls);
	free(h);
}

static CURL *handle_take(trs__http *h)
{
	CURL *c = NULL;
	pthread_mutex_lock(&h->pool_lock);
	if (h->npool)
		c = h->pool[--h->npool];
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_reset(c);
	else
		c = curl_easy_init();
	return c;
}

static void handle_give(trs__http *h, CURL *c)
{
	pthread_mutex_lock(&h->pool_lock);
	if (h->npool < h->opts.pool_size) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

/* State of one transfer, seen by the callbacks. */
typedef struct transfer {
	trs__http *http;
	CURL *curl;
	const trs__http_request *req;
	trs__http_response *resp;
	size_t body_pos;         /* memory body: bytes handed to curl */
	uint64_t stream_sent;    /* streamed body: bytes handed to curl */
	int cb_code;             /* first failure inside a callback */
	trs_error *err;
	size_t max_response;
	int to_sink;             /* -1 undecided, 0 memory, 1 sink */
} transfer;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	transfer *t = userdata;
	size_t cap = size * nitems;
	const trs__http_request *req = t->req;
	if (req->body_stream) {
		trs_body *b = req->body_stream;
		uint64_t left = b->length - t->stream_sent;
		if (left == 0)
			return 0;
		if (cap > left)
			cap = (size_t)left;
		int64_t n = b->read(b->self, buf, cap, t->err);
		if (n < 0) {
			t->cb_code = (int)n;
			return CURL_READFUNC_ABORT;
		}
		if (n == 0) {
			/* The stream ended before its announced length: never send a short body. */
			t->cb_code = trs__error_set(t->err, TRS_EIO,
						    "the body ended after %llu of %llu bytes",
						    (unsigned long long)t->stream_sent, (unsigned long long)b->length);
			return CURL_READFUNC_ABORT;
		}
		t->stream_sent += (uint64_t)n;
		return (size_t)n;
	}
	size_t left = req->body_len - t->body_pos;
	if (cap > left)
		cap = left;
	if (cap == 0)
		return 0;
	memcpy(buf, (const char *)req->body + t->body_pos, cap);
	t->body_pos += cap;
	return cap;
}

/* curl rewinds on redirects and some retries; only a memory body can do that. */
static int seek_cb(void *userdata, curl_off_t offset, int origin)
{
	transfer *t = userdata;
	if (t->req->body_stream || origin != SEEK_SET || offset < 0 || (size_t)offset > t->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	t->body_pos = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	transfer *t = userdata;
	size_t len = size * nmemb;
	if (t->to_sink < 0) {
		long status = 0;
		curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
		t->to_sink = t->req->sink && status >= 200 && status < 300;
	}
	if (t->to_sink) {
		int rc = t->req->sink(t->req->sink_userdata, data, len, t->err);
		if (rc < 0) {
			t->cb_code = rc;
			return 0; /* makes curl stop with CURLE_WRITE_ERROR */
		}
		return len;
	}
	trs__http_response *r = t->resp;
	size_t room = t->max_response > r->body.len ? t->max_response - r->body.len : 0;
	size_t keep = len < room ? len : room;
	if (keep < len)
		r->truncated = true;
	if (keep && trs__buf_put(&r->body, data, keep, t->err) < 0) {
		t->cb_code = TRS_ENOMEM;
		return 0;
	}
	return len;
}

static void headers_clear(trs__http_response *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free((char *)r->headers[i].key);
		free((char *)r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->nheaders = 0;
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *userdata)
{
	transfer *t = userdata;
	size_t len = size * nitems;
	trs__http_response *r = t->resp;
	/* A new status line (after a 100 Continue or a redirect) starts a new header set. */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		headers_clear(r);
		t->to_sink = -1;
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return len;
	size_t nl = (size_t)(colon - data);
	const char *v = colon + 1;
	const char *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	trs_kv *nh = realloc(r->headers, (r->nheaders + 1) * sizeof(*nh));
	if (!nh)
		goto oom;
	r->headers = nh;
	char *name = trs__strndup(data, nl, t->err);
	char *value = name ? trs__strndup(v, (size_t)(end - v), t->err) : NULL;
	if (!value) {
		free(name);
		goto oom;
	}
	r->headers[r->nheaders].key = name;
	r->headers[r->nheaders].value = value;
	r->nheaders++;
	return len;
oom:
	t->cb_code = trs__error_set(t->err, TRS_ENOMEM, "out of memory reading response headers");
	return 0;
}

static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	transfer *t = userdata;
	if (trs__canceled(t->http->ctx)) {
		t->cb_code = trs__error_set(t->err, TRS_ECANCELED, "canceled");
		return 1;
	}
	return 0;
}

const char *trs__http_header(const trs__http_response *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].key, name) == 0)
			return r->headers[i].value;
	return NULL;
}

void trs__http_response_free(trs__http_response *r)
{
	if (!r)
		return;
	headers_clear(r);
	trs__buf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

/* Connection, DNS, TLS and timeout failures: trying again may well work. */
static bool curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_AGAIN:
		return true;
	default:
		return false;
	}
}

/* The URL without its query (it may hold signatures), shortened in the middle: a key of 1,024
 * bytes percent-encoded would leave no room for curl's reason. */
static void url_for_message(const char *url, char *out, size_t outlen)
{
	trs__short_text(out, outlen, url, strcspn(url, "?"));
}

int trs__http_do(trs__http *h, const trs__http_request *req, trs__http_response *resp, trs_error *err)
{
	memset(resp, 0, sizeof(*resp));
	if (trs__canceled(h->ctx))
		return trs__error_set(err, TRS_ECANCELED, "canceled");
	CURL *c = handle_take(h);
	if (!c)
		return trs__error_set(err, TRS_ENOMEM, "out of memory creating a libcurl handle");
	transfer t = {0};
	t.http = h;
	t.curl = c;
	t.req = req;
	t.resp = resp;
	t.err = err;
	t.max_response = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
	t.to_sink = -1;

	struct curl_slist *hl = NULL;
	int rc = 0;
	trs__buf line = TRS_BUF_INIT; /* one buffer for every line: curl copies each */
	for (size_t i = 0; i < req->nheaders; i++) {
		/* "Name;" is curl's way to send a header with an empty value. */
		const char *v = req->headers[i].value ? req->headers[i].value : "";
		line.len = 0;
		rc = trs__buf_puts(&line, req->headers[i].key, err);
		if (rc == 0)
			rc = *v ? trs__buf_put(&line, ": ", 2, err) : trs__buf_put(&line, ";", 1, err);
		if (rc == 0)
			rc = trs__buf_puts(&line, v, err);
		struct curl_slist *n = rc == 0 ? curl_slist_append(hl, line.data) : NULL;
		if (!n) {
			trs__buf_free(&line);
			rc = trs__error_set(err, TRS_ENOMEM, "out of memory building request headers");
			goto done;
		}
		hl = n;
	}
	trs__buf_free(&line);
	/* S3 handles the body without a 100-continue round trip; curl would otherwise wait for one. */
	struct curl_slist *n = curl_slist_append(hl, "Expect:");
	if (!n) {
		rc = trs__error_set(err, TRS_ENOMEM, "out of memory building request headers");
		goto done;
	}
	hl = n;

	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_SHARE, h->share);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	/* S3 keys may hold "/./", "/../" and "//": send the path exactly as signed. */
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms ? req->connect_timeout_ms : h->opts.connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->opts.low_speed_time_s);
	if (req->timeout_ms)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Each curl_easy_perform runs in a private multi whose idle-connection limit
	 * defaults to 4: with many threads sharing one cache, every other connection
	 * would be closed after one request. Keep one per in-flight transfer. */
	curl_easy_setopt(c, CURLOPT_MAXCONNECTS, 256L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (h->opts.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (strncmp(req->url, "https:", 6) == 0) {
		/* AWS_CA_BUNDLE, --ca-bundle, or the system's: loaded once for this client */
		trs__tls_store_apply(&h->tls, c, TRS_CTX(h->ctx)->ca_bundle, h->ctx);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

	/* PUT and POST always send a Content-Length (0 without a body): S3 wants one, and
	 * curl's POSTFIELDS would add a Content-Type that CreateMultipartUpload would store. */
	bool has_body = req->body_stream || req->body || strcmp(req->method, "PUT") == 0 ||
			strcmp(req->method, "POST") == 0;
	curl_off_t body_len = req->body_stream ? (curl_off_t)req->body_stream->length : (curl_off_t)req->body_len;
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "GET") == 0 && !has_body) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (has_body) {
		/* Upload mode with a known size: curl sends Content-Length, never chunked. */
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, body_len);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, &t);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	}

	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (t.cb_code < 0) {
		rc = t.cb_code;
	} else if (cc != CURLE_OK) {
		char where[TRS__SHORT_KEY_SIZE + 128];
		url_for_message(req->url, where, sizeof(where));
		bool untrusted = cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE;
		/* Nothing answered as a service would: the endpoint is the first suspect, name its settings. */
		bool unreachable = cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT ||
				   cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_UNSUPPORTED_PROTOCOL ||
				   cc == CURLE_WEIRD_SERVER_REPLY || cc == CURLE_URL_MALFORMAT;
		rc = trs__error_set(err, TRS_ENET, "%s %s failed: %s%s", req->method, where, curl_easy_strerror(cc),
				    untrusted ? " (the server's certificate is not trusted: behind a TLS-inspecting "
						"proxy, pass --ca-bundle FILE or set AWS_CA_BUNDLE to its CA)"
				    : unreachable
					    ? ". What to do: check the endpoint's host, port and http or https "
					      "(--endpoint-url, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>; the region "
					      "when none is set), the network and DNS"
					    : "");
		if (err)
			err->retryable = curl_retryable(cc);
	} else {
		resp->status = status;
	}
done:
	curl_slist_free_all(hl);
	/* Clear pointers into this call's stack before the handle goes back to the pool. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	handle_give(h, c);
	return rc;
}
