/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The headers of an S3 write: the list a request carries, the headers a
 * put request turns into (storage class, tags, user metadata, SSE-KMS) and
 * the x-amz-copy-source of a copy.
 */
#include "storage_s3.h"
#include "codec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int trs__s3_headers_add(trs__s3_headers *h, const char *name, const char *value, trs_error *err)
{
	for (const char *p = value; *p; p++)
		if (*p == '\r' || *p == '\n')
			return trs__error_set(err, TRS_EINVAL, "header %s has a line break in its value", name);
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		trs_kv *kv = realloc(h->kv, cap * sizeof(*kv));
		if (!kv)
			return trs__error_set(err, TRS_ENOMEM, "out of memory building S3 headers");
		h->kv = kv;
		h->cap = cap;
	}
	char *n = trs__strdup(name, err);
	char *v = n ? trs__strdup(value, err) : NULL;
	if (!v) {
		free(n);
		return TRS_ENOMEM;
	}
	h->kv[h->n].key = n;
	h->kv[h->n].value = v;
	h->n++;
	return 0;
}

void trs__s3_headers_free(trs__s3_headers *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free((char *)h->kv[i].key);
		free((char *)h->kv[i].value);
	}
	free(h->kv);
	memset(h, 0, sizeof(*h));
}

static bool printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static bool metadata_name_ok(const char *name)
{
	if (!*name)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.!#$%&'*+^`|~", *p))
			return false;
	return true;
}

int trs__s3_put_headers(const trs__s3 *s, trs__s3_headers *h, const trs_put_request *req, trs_error *err)
{
	int rc = 0;
	if (req->ntags) {
		/* x-amz-tagging is a URL query string: k1=v1&k2=v2, each part encoded. */
		trs__buf tags = TRS_BUF_INIT;
		for (size_t i = 0; rc == 0 && i < req->ntags; i++) {
			const char *k = req->tags[i].key ? req->tags[i].key : "";
			const char *v = req->tags[i].value ? req->tags[i].value : "";
			if (i)
				rc = trs__buf_puts(&tags, "&", err);
			if (rc == 0)
				rc = trs__uri_encode(&tags, k, strlen(k), false, err);
			if (rc == 0)
				rc = trs__buf_puts(&tags, "=", err);
			if (rc == 0)
				rc = trs__uri_encode(&tags, v, strlen(v), false, err);
		}
		if (rc == 0)
			rc = trs__s3_headers_add(h, "x-amz-tagging", tags.data, err);
		trs__buf_free(&tags);
	}
	if (rc == 0 && req->storage_class && *req->storage_class)
		rc = trs__s3_headers_add(h, "x-amz-storage-class", req->storage_class, err);
	if (rc == 0 && req->kms_key_id && *req->kms_key_id) {
		rc = trs__s3_headers_add(h, "x-amz-server-side-encryption", "aws:kms", err);
		if (rc == 0)
			rc = trs__s3_headers_add(h, "x-amz-server-side-encryption-aws-kms-key-id", req->kms_key_id, err);
		/* An S3 Bucket Key: S3 asks KMS for a bucket-level key now and then instead of once per object. */
		if (rc == 0 && s->bucket_key)
			rc = trs__s3_headers_add(h, "x-amz-server-side-encryption-bucket-key-enabled", "true", err);
	}
	for (size_t i = 0; rc == 0 && i < req->nmetadata; i++) {
		const char *name = req->metadata[i].key ? req->metadata[i].key : "";
		const char *value = req->metadata[i].value ? req->metadata[i].value : "";
		if (!metadata_name_ok(name))
			return trs__error_set(err, TRS_EINVAL,
					      "metadata name '%.100s' of s3://%s/%s is not a valid HTTP header name", name,
					      req->bucket, TRS__SHORT(req->key));
		trs__buf hn = TRS_BUF_INIT, hv = TRS_BUF_INIT;
		rc = trs__buf_printf(&hn, err, "x-amz-meta-%s", name);
		for (char *p = hn.data; rc == 0 && *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (rc == 0 && printable_ascii(value)) {
			rc = trs__buf_puts(&hv, value, err);
		} else if (rc == 0) {
			/* RFC 2047, as S3 itself returns non-ASCII metadata. */
			size_t vl = strlen(value);
			rc = trs__buf_grow(&hv, 16 + 4 * (vl / 3 + 1), err);
			if (rc == 0) {
				hv.len = (size_t)snprintf(hv.data, hv.cap, "=?UTF-8?B?");
				trs__base64((const unsigned char *)value, vl, hv.data + hv.len);
				hv.len += strlen(hv.data + hv.len);
				rc = trs__buf_puts(&hv, "?=", err);
			}
		}
		if (rc == 0)
			rc = trs__s3_headers_add(h, hn.data, hv.data, err);
		trs__buf_free(&hn);
		trs__buf_free(&hv);
	}
	return rc;
}

int trs__s3_copy_source(trs__buf *b, const char *bucket, const char *key, trs_error *err)
{
	int rc = trs__buf_puts(b, "/", err);
	if (rc == 0)
		rc = trs__uri_encode(b, bucket, strlen(bucket), false, err);
	if (rc == 0)
		rc = trs__buf_puts(b, "/", err);
	if (rc == 0)
		rc = trs__uri_encode(b, key, strlen(key), true, err);
	return rc;
}

