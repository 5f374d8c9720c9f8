/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4: canonical request, string to sign, signature. */
#include "sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

void trs__sha256_hex(const void *data, size_t len, char out[TRS_SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	/* EVP_Digest only fails on allocation failure inside OpenSSL; an all-zero
	 * digest then makes the request fail its signature check, never pass. */
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
		memset(md, 0, sizeof(md));
	trs__hex(md, sizeof(md), out);
}

void trs__md5(const void *data, size_t len, unsigned char out[16])
{
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, out, &mdlen, EVP_md5(), NULL))
		memset(out, 0, 16);
}

void trs__base64(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

void trs__amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

int trs__uri_encode(trs_buf *b, const char *s, size_t len, bool keep_slash, trs_error *err)
{
	static const char digits[] = "0123456789ABCDEF";
	if (trs__buf_grow(b, len * 3, err) < 0)
		return TRS_ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			b->data[b->len++] = (char)c;
		} else {
			b->data[b->len++] = '%';
			b->data[b->len++] = digits[c >> 4];
			b->data[b->len++] = digits[c & 15];
		}
	}
	b->data[b->len] = '\0';
	return 0;
}

/* Percent-decode in place ("+" is left alone: SigV4 does not treat it as a space). */
static size_t uri_decode(char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < len && (hi = trs__hexval(s[i + 1])) >= 0 && (lo = trs__hexval(s[i + 2])) >= 0) {
			s[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			s[o++] = s[i];
		}
	}
	return o;
}

/* ---- canonical URI ---- */

static int canonical_uri(trs_buf *out, const char *path, const trs__sigv4_options *o, trs_error *err)
{
	if (!path || !*path)
		path = "/";
	if (!o->normalize_path) {
		if (o->double_encode)
			return trs__uri_encode(out, path, strlen(path), true, err);
		return trs__buf_puts(out, path, err);
	}
	/* Resolve "." and ".." and drop empty segments, keeping a trailing slash. */
	size_t plen = strlen(path);
	const char **seg = trs__calloc(plen + 1, sizeof(*seg), err);
	size_t *seglen = trs__calloc(plen + 1, sizeof(*seglen), err);
	int rc = 0;
	if (!seg || !seglen) {
		rc = TRS_ENOMEM;
		goto done;
	}
	size_t nseg = 0;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchr(p, '/');
		size_t l = end ? (size_t)(end - p) : strlen(p);
		if (l == 1 && p[0] == '.') {
			/* pointless */
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			if (nseg)
				nseg--;
		} else {
			seg[nseg] = p;
			seglen[nseg] = l;
			nseg++;
		}
		p += l;
	}
	trs_buf joined = TRS_BUF_INIT;
	rc = trs__buf_puts(&joined, "/", err);
	for (size_t i = 0; rc == 0 && i < nseg; i++) {
		rc = trs__buf_put(&joined, seg[i], seglen[i], err);
		if (rc == 0 && (i + 1 < nseg || path[plen - 1] == '/'))
			rc = trs__buf_puts(&joined, "/", err);
	}
	if (rc == 0) {
		if (o->double_encode)
			rc = trs__uri_encode(out, joined.data, joined.len, true, err);
		else
			rc = trs__buf_put(out, joined.data, joined.len, err);
	}
	trs__buf_free(&joined);
done:
	free(seg);
	free(seglen);
	return rc;
}

/* ---- canonical query ---- */

typedef struct param {
	char *key; /* encoded */
	char *value;
} param;

static int param_cmp(const void *a, const void *b)
{
	const param *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

static void params_free(param *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].key);
		free(p[i].value);
	}
	free(p);
}

/* Decode then encode a component so that "%E1%88%B4" and raw UTF-8 sign alike. */
static char *reencode(const char *s, size_t len, bool decode, trs_error *err)
{
	char *tmp = trs__strndup(s, len, err);
	if (!tmp)
		return NULL;
	size_t l = decode ? uri_decode(tmp, len) : len;
	trs_buf b = TRS_BUF_INIT;
	int rc = trs__uri_encode(&b, tmp, l, false, err);
	free(tmp);
	if (rc < 0) {
		trs__buf_free(&b);
		return NULL;
	}
	if (!b.data)
		return trs__strdup("", err);
	return b.data;
}

static int params_add(param **ps, size_t *n, size_t *cap, const char *k, size_t klen, const char *v,
		      size_t vlen, bool decode, trs_error *err)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		param *np = realloc(*ps, nc * sizeof(*np));
		if (!np)
			return trs__error_set(err, TRS_ENOMEM, "out of memory signing a request");
		*ps = np;
		*cap = nc;
	}
	param *p = &(*ps)[*n];
	p->key = reencode(k, klen, decode, err);
	p->value = p->key ? reencode(v, vlen, decode, err) : NULL;
	if (!p->key || !p->value) {
		free(p->key);
		free(p->value);
		return TRS_ENOMEM;
	}
	(*n)++;
	return 0;
}

static int params_parse(param **ps, size_t *n, size_t *cap, const char *query, trs_error *err)
{
	if (!query)
		return 0;
	for (const char *p = query; *p;) {
		const char *amp = strchr(p, '&');
		size_t l = amp ? (size_t)(amp - p) : strlen(p);
		if (l) {
			const char *eq = memchr(p, '=', l);
			size_t kl = eq ? (size_t)(eq - p) : l;
			const char *v = eq ? eq + 1 : "";
			size_t vl = eq ? l - kl - 1 : 0;
			if (params_add(ps, n, cap, p, kl, v, vl, true, err) < 0)
				return TRS_ENOMEM;
		}
		p += l;
		if (*p == '&')
			p++;
	}
	return 0;
}

static int params_join(trs_buf *out, const param *ps, size_t n, trs_error *err)
{
	int rc = trs__buf_puts(out, "", err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = trs__buf_printf(out, err, "%s%s=%s", i ? "&" : "", ps[i].key, ps[i].value);
	return rc;
}

/* ---- canonical headers ---- */

typedef struct hdr {
	char *name;  /* lower case */
	trs_buf value; /* trimmed, runs of white space collapsed; duplicates joined with ',' */
	size_t order;
} hdr;

static int hdr_cmp(const void *a, const void *b)
{
	const hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int put_trimmed(trs_buf *b, const char *v, trs_error *err)
{
	while (is_space(*v))
		v++;
	bool pending_space = false;
	for (; *v; v++) {
		if (is_space(*v)) {
			pending_space = true;
			continue;
		}
		if (pending_space && trs__buf_put(b, " ", 1, err) < 0)
			return TRS_ENOMEM;
		pending_space = false;
		if (trs__buf_put(b, v, 1, err) < 0)
			return TRS_ENOMEM;
	}
	return trs__buf_puts(b, "", err);
}

/* Headers that proxies and HTTP stacks rewrite; signing them only breaks requests. */
static bool unsignable(const char *lname)
{
	static const char *const skip[] = {"authorization", "user-agent", "expect", "x-amzn-trace-id",
					   "connection", "transfer-encoding"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(skip); i++)
		if (strcmp(lname, skip[i]) == 0)
			return true;
	return false;
}

static int hdr_add(hdr *hs, size_t *n, const char *name, const char *value, trs_error *err)
{
	hdr *h = &hs[*n];
	memset(h, 0, sizeof(*h));
	h->name = trs__strdup(name, err);
	if (!h->name)
		return TRS_ENOMEM;
	for (char *c = h->name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	h->order = *n;
	(*n)++;
	if (unsignable(h->name)) {
		(*n)--;
		free(h->name);
		return 0;
	}
	return put_trimmed(&h->value, value ? value : "", err);
}

static void hdrs_free(hdr *hs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(hs[i].name);
		trs__buf_free(&hs[i].value);
	}
	free(hs);
}

/* ---- HMAC ---- */

static int hmac(const void *key, size_t keylen, const char *msg, size_t msglen, unsigned char out[32],
		trs_error *err)
{
	unsigned int outlen = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, msglen, out, &outlen) ||
	    outlen != 32)
		return trs__error_set(err, TRS_ENOMEM, "HMAC-SHA256 failed in OpenSSL while signing a request");
	return 0;
}

static int signing_key(const char *secret, const char *date8, const char *region, const char *service,
		       unsigned char key[32], trs_error *err)
{
	trs_buf k = TRS_BUF_INIT;
	int rc = trs__buf_printf(&k, err, "AWS4%s", secret);
	if (rc == 0)
		rc = hmac(k.data, k.len, date8, strlen(date8), key, err);
	if (k.data)
		OPENSSL_cleanse(k.data, k.len);
	trs__buf_free(&k);
	if (rc == 0)
		rc = hmac(key, 32, region, strlen(region), key, err);
	if (rc == 0)
		rc = hmac(key, 32, service, strlen(service), key, err);
	if (rc == 0)
		rc = hmac(key, 32, "aws4_request", 12, key, err);
	return rc;
}

void trs__sigv4_key_cache_init(trs__sigv4_key_cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
}

void trs__sigv4_key_cache_free(trs__sigv4_key_cache *c)
{
	if (c->secret) {
		OPENSSL_cleanse(c->secret, strlen(c->secret));
		free(c->secret);
	}
	OPENSSL_cleanse(c->key, sizeof(c->key));
	pthread_mutex_destroy(&c->mu);
}

/* The signing key from the cache when it holds this very scope and secret, else derived and kept. */
static int cached_signing_key(trs__sigv4_key_cache *c, const char *secret, const char *date8, const char *region,
			      const char *service, unsigned char key[32], trs_error *err)
{
	char scope[96];
	int n = snprintf(scope, sizeof(scope), "%s/%s/%s", date8, region, service);
	if (!c || n < 0 || (size_t)n >= sizeof(scope))
		return signing_key(secret, date8, region, service, key, err);
	pthread_mutex_lock(&c->mu);
	bool hit = c->secret && !strcmp(c->scope, scope) && !strcmp(c->secret, secret);
	if (hit)
		memcpy(key, c->key, 32);
	pthread_mutex_unlock(&c->mu);
	if (hit)
		return 0;
	int rc = signing_key(secret, date8, region, service, key, err);
	char *copy = rc == 0 ? strdup(secret) : NULL;
	if (!copy)
		return rc; /* not kept: derived again next time */
	pthread_mutex_lock(&c->mu);
	if (c->secret) {
		OPENSSL_cleanse(c->secret, strlen(c->secret));
		free(c->secret);
	}
	c->secret = copy;
	snprintf(c->scope, sizeof(c->scope), "%s", scope);
	memcpy(c->key, key, 32);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

void trs__sigv4_result_free(trs__sigv4_result *r)
{
	if (!r)
		return;
	trs__buf_free(&r->canonical_request);
	trs__buf_free(&r->string_to_sign);
	trs__buf_free(&r->signed_headers);
	trs__buf_free(&r->authorization);
	trs__buf_free(&r->query);
	memset(r, 0, sizeof(*r));
}

int trs__sigv4_sign(const trs__sigv4_credentials *creds, const trs__sigv4_options *o,
		    const trs__sigv4_request *req, trs__sigv4_result *out, trs_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!creds || !creds->access_key_id || !creds->secret_access_key || !o->region || !*o->region ||
	    !o->service || !req->method)
		return trs__error_set(err, TRS_EINVAL,
				      "cannot sign a request without credentials, region, service and method");
	const char *token = creds->session_token && *creds->session_token ? creds->session_token : NULL;
	const char *payload_hash = req->payload_hash ? req->payload_hash : TRS_SHA256_EMPTY;
	trs__amz_date(o->now, out->amz_date);
	char date8[9];
	memcpy(date8, out->amz_date, 8);
	date8[8] = '\0';

	int rc = 0;
	param *ps = NULL;
	size_t np = 0, pcap = 0;
	hdr *hs = trs__calloc(req->nheaders + 4, sizeof(*hs), err);
	size_t nh = 0;
	trs_buf scope = TRS_BUF_INIT, tmp = TRS_BUF_INIT;
	if (!hs)
		return TRS_ENOMEM;

	/* Headers: the caller's, plus the ones signing adds. */
	for (size_t i = 0; rc == 0 && i < req->nheaders; i++)
		rc = hdr_add(hs, &nh, req->headers[i].key, req->headers[i].value, err);
	if (rc == 0 && !o->presign) {
		rc = hdr_add(hs, &nh, "x-amz-date", out->amz_date, err);
		if (rc == 0 && token && !o->omit_session_token)
			rc = hdr_add(hs, &nh, "x-amz-security-token", token, err);
		if (rc == 0 && o->content_sha256_header)
			rc = hdr_add(hs, &nh, "x-amz-content-sha256", payload_hash, err);
	}
	if (rc < 0)
		goto done;
	qsort(hs, nh, sizeof(*hs), hdr_cmp);
	/* Merge duplicates (now adjacent, in request order) into the first. */
	size_t merged = 0;
	for (size_t i = 0; i < nh; i++) {
		if (merged && strcmp(hs[merged - 1].name, hs[i].name) == 0) {
			rc = trs__buf_printf(&hs[merged - 1].value, err, ",%s",
					     hs[i].value.data ? hs[i].value.data : "");
			free(hs[i].name);
			trs__buf_free(&hs[i].value);
			if (rc < 0) {
				/* keep the array consistent for hdrs_free */
				for (size_t j = i + 1; j < nh; j++)
					hs[merged++] = hs[j];
				nh = merged;
				goto done;
			}
		} else {
			hs[merged++] = hs[i];
		}
	}
	nh = merged;
	for (size_t i = 0; rc == 0 && i < nh; i++) {
		rc = i ? trs__buf_put(&out->signed_headers, ";", 1, err) : 0;
		if (rc == 0)
			rc = trs__buf_puts(&out->signed_headers, hs[i].name, err);
	}
	if (rc < 0)
		goto done;

	rc = trs__buf_printf(&scope, err, "%s/%s/%s/aws4_request", date8, o->region, o->service);
	if (rc < 0)
		goto done;

	/* Query: the request's, plus the presign parameters. */
	rc = params_parse(&ps, &np, &pcap, req->query, err);
	if (rc == 0 && o->presign) {
		char expires[24];
		snprintf(expires, sizeof(expires), "%u", o->expires ? o->expires : 3600);
		rc = trs__buf_printf(&tmp, err, "%s/%s", creds->access_key_id, scope.data);
#define ADD(k, v) (rc == 0 ? params_add(&ps, &np, &pcap, k, strlen(k), v, strlen(v), false, err) : rc)
		rc = ADD("X-Amz-Algorithm", ALGORITHM);
		rc = ADD("X-Amz-Credential", tmp.data);
		rc = ADD("X-Amz-Date", out->amz_date);
		rc = ADD("X-Amz-Expires", expires);
		if (token && !o->omit_session_token)
			rc = ADD("X-Amz-Security-Token", token);
		rc = ADD("X-Amz-SignedHeaders", out->signed_headers.data);
#undef ADD
	}
	if (rc < 0)
		goto done;
	if (np)
		qsort(ps, np, sizeof(*ps), param_cmp);

	/* The canonical request. */
	trs_buf *cr = &out->canonical_request;
	rc = trs__buf_printf(cr, err, "%s\n", req->method);
	if (rc == 0)
		rc = canonical_uri(cr, req->path, o, err);
	if (rc == 0)
		rc = trs__buf_puts(cr, "\n", err);
	if (rc == 0)
		rc = params_join(cr, ps, np, err);
	if (rc == 0)
		rc = trs__buf_puts(cr, "\n", err);
	for (size_t i = 0; rc == 0 && i < nh; i++) {
		/* name:value\n, without printf: a request signs a line per header */
		rc = trs__buf_puts(cr, hs[i].name, err);
		if (rc == 0)
			rc = trs__buf_put(cr, ":", 1, err);
		if (rc == 0 && hs[i].value.data)
			rc = trs__buf_put(cr, hs[i].value.data, hs[i].value.len, err);
		if (rc == 0)
			rc = trs__buf_put(cr, "\n", 1, err);
	}
	if (rc == 0)
		rc = trs__buf_printf(cr, err, "\n%s\n%s", out->signed_headers.data, payload_hash);
	if (rc < 0)
		goto done;

	char crhash[TRS_SHA256_HEX_LEN + 1];
	trs__sha256_hex(cr->data, cr->len, crhash);
	rc = trs__buf_printf(&out->string_to_sign, err, "%s\n%s\n%s\n%s", ALGORITHM, out->amz_date, scope.data,
			     crhash);
	if (rc < 0)
		goto done;

	unsigned char key[32], sig[32];
	rc = cached_signing_key(o->key_cache, creds->secret_access_key, date8, o->region, o->service, key, err);
	if (rc == 0)
		rc = hmac(key, 32, out->string_to_sign.data, out->string_to_sign.len, sig, err);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc < 0)
		goto done;
	trs__hex(sig, 32, out->signature);

	if (o->presign) {
		rc = params_join(&out->query, ps, np, err);
		if (rc == 0)
			rc = trs__buf_printf(&out->query, err, "&X-Amz-Signature=%s", out->signature);
		if (rc == 0 && token && o->omit_session_token) {
			rc = trs__buf_puts(&out->query, "&X-Amz-Security-Token=", err);
			if (rc == 0)
				rc = trs__uri_encode(&out->query, token, strlen(token), false, err);
		}
	} else {
		rc = trs__buf_printf(&out->authorization, err, "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
				     ALGORITHM, creds->access_key_id, scope.data, out->signed_headers.data,
				     out->signature);
		if (rc == 0) {
			size_t n = 0;
			out->add_headers[n++] = (trs_kv){"X-Amz-Date", out->amz_date};
			if (token)
				out->add_headers[n++] = (trs_kv){"X-Amz-Security-Token", token};
			if (o->content_sha256_header) {
				snprintf(out->content_sha256, sizeof(out->content_sha256), "%s", payload_hash);
				out->add_headers[n++] = (trs_kv){"x-amz-content-sha256", out->content_sha256};
			}
			out->add_headers[n++] = (trs_kv){"Authorization", out->authorization.data};
			out->nadd_headers = n;
		}
	}

done:
	hdrs_free(hs, nh);
	params_free(ps, np);
	trs__buf_free(&scope);
	trs__buf_free(&tmp);
	return rc;
}
