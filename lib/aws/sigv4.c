/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4: canonical request, string to sign, signature. */
#include "sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

void trs__amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
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

static int canonical_uri(trs__buf *out, const char *path, const trs__sigv4_options *o, trs_error *err)
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
	trs__buf joined = TRS_BUF_INIT;
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
	trs__buf b = TRS_BUF_INIT;
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

static int params_join(trs__buf *out, const param *ps, size_t n, trs_error *err)
{
	int rc = trs__buf_puts(out, "", err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = trs__buf_cat(out, err, i ? "&" : "", ps[i].key, "=", ps[i].value, (char *)NULL);
	return rc;
}

/* ---- canonical headers ---- */

typedef struct hdr {
	char *name;  /* lower case */
	trs__buf value; /* trimmed, runs of white space collapsed; duplicates joined with ',' */
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

static int put_trimmed(trs__buf *b, const char *v, trs_error *err)
{
	/* Runs of non-space bytes at once, one space between them. */
	bool first = true;
	for (;;) {
		while (is_space(*v))
			v++;
		if (!*v)
			break;
		const char *run = v;
		while (*v && !is_space(*v))
			v++;
		if (!first && trs__buf_put(b, " ", 1, err) < 0)
			return TRS_ENOMEM;
		if (trs__buf_put(b, run, (size_t)(v - run), err) < 0)
			return TRS_ENOMEM;
		first = false;
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
	if (trs__hmac(key, keylen, msg, msglen, out) < 0)
		return trs__error_set(err, TRS_ENOMEM, "HMAC-SHA256 failed in OpenSSL while signing a request");
	return 0;
}

static int signing_key(const char *secret, const char *date8, const char *region, const char *service,
		       unsigned char key[32], trs_error *err)
{
	trs__buf k = TRS_BUF_INIT;
	int rc = trs__buf_puts(&k, "AWS4", err);
	if (rc == 0)
		rc = trs__buf_puts(&k, secret, err);
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
	EVP_MAC_CTX_free(c->keyed);
	pthread_mutex_destroy(&c->mu);
}

/* The signature of msg: under the cached keyed context when the cache holds
 * this very scope and secret, else with the key derived (and kept). */
static int signature(trs__sigv4_key_cache *c, const char *secret, const char *date8, const char *region,
		     const char *service, const char *msg, size_t len, unsigned char sig[32], trs_error *err)
{
	char scope[96];
	int n = snprintf(scope, sizeof(scope), "%s/%s/%s", date8, region, service);
	bool cacheable = c && n > 0 && (size_t)n < sizeof(scope);
	if (cacheable) {
		pthread_mutex_lock(&c->mu);
		EVP_MAC_CTX *mine = NULL;
		bool hit = c->keyed && c->secret && !strcmp(c->scope, scope) && !strcmp(c->secret, secret);
		if (hit)
			mine = EVP_MAC_CTX_dup(c->keyed);
		pthread_mutex_unlock(&c->mu);
		if (hit) {
			int rc = trs__hmac_finish(mine, msg, len, sig);
			return rc < 0 ? trs__error_set(err, TRS_ENOMEM,
						       "HMAC-SHA256 failed in OpenSSL while signing a request")
				      : 0;
		}
	}
	unsigned char key[32];
	int rc = signing_key(secret, date8, region, service, key, err);
	EVP_MAC_CTX *keyed = rc == 0 ? trs__hmac_new(key, sizeof(key)) : NULL;
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == 0 && (!keyed || trs__hmac_keyed(keyed, msg, len, sig) < 0))
		rc = trs__error_set(err, TRS_ENOMEM, "HMAC-SHA256 failed in OpenSSL while signing a request");
	char *copy = rc == 0 && cacheable ? strdup(secret) : NULL;
	if (!copy) {
		/* not kept: derived again next time */
		EVP_MAC_CTX_free(keyed);
		return rc;
	}
	pthread_mutex_lock(&c->mu);
	if (c->secret) {
		OPENSSL_cleanse(c->secret, strlen(c->secret));
		free(c->secret);
	}
	EVP_MAC_CTX_free(c->keyed);
	c->secret = copy;
	c->keyed = keyed;
	snprintf(c->scope, sizeof(c->scope), "%s", scope);
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
	trs__buf scope = TRS_BUF_INIT, tmp = TRS_BUF_INIT;
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
			rc = trs__buf_cat(&hs[merged - 1].value, err, ",", hs[i].value.data ? hs[i].value.data : "",
					  (char *)NULL);
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

	rc = trs__buf_cat(&scope, err, date8, "/", o->region, "/", o->service, "/aws4_request", (char *)NULL);
	if (rc < 0)
		goto done;

	/* Query: the request's, plus the presign parameters. */
	rc = params_parse(&ps, &np, &pcap, req->query, err);
	if (rc == 0 && o->presign) {
		char expires[24];
		snprintf(expires, sizeof(expires), "%u", o->expires ? o->expires : 3600);
		rc = trs__buf_cat(&tmp, err, creds->access_key_id, "/", scope.data, (char *)NULL);
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
	trs__buf *cr = &out->canonical_request;
	rc = trs__buf_cat(cr, err, req->method, "\n", (char *)NULL);
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
		rc = trs__buf_cat(cr, err, "\n", out->signed_headers.data, "\n", payload_hash, (char *)NULL);
	if (rc < 0)
		goto done;

	char crhash[TRS_SHA256_HEX_LEN + 1];
	trs__sha256_hex(cr->data, cr->len, crhash);
	rc = trs__buf_cat(&out->string_to_sign, err, ALGORITHM "\n", out->amz_date, "\n", scope.data, "\n", crhash,
			  (char *)NULL);
	if (rc < 0)
		goto done;

	unsigned char sig[32];
	rc = signature(o->key_cache, creds->secret_access_key, date8, o->region, o->service,
		       out->string_to_sign.data, out->string_to_sign.len, sig, err);
	if (rc < 0)
		goto done;
	trs__hex(sig, 32, out->signature);

	if (o->presign) {
		rc = params_join(&out->query, ps, np, err);
		if (rc == 0)
			rc = trs__buf_cat(&out->query, err, "&X-Amz-Signature=", out->signature, (char *)NULL);
		if (rc == 0 && token && o->omit_session_token) {
			rc = trs__buf_puts(&out->query, "&X-Amz-Security-Token=", err);
			if (rc == 0)
				rc = trs__uri_encode(&out->query, token, strlen(token), false, err);
		}
	} else {
		rc = trs__buf_cat(&out->authorization, err, ALGORITHM " Credential=", creds->access_key_id, "/",
				  scope.data, ", SignedHeaders=", out->signed_headers.data,
				  ", Signature=", out->signature, (char *)NULL);
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
