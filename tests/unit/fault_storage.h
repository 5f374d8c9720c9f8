/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Storages for unit tests, written against the public backend vtable
 * (include/trs/sys/storage.h) like any user's own backend:
 *
 * - tu_mem_storage: objects kept in memory (bucket, key, bytes, tags,
 *   metadata), a later put to the same key replacing the earlier one;
 * - tu_fault: a wrapper around any storage that fails chosen writes (puts
 *   and copies) with a chosen error: the k-th write, every write from the
 *   k-th on, or every write to a key. It records what it failed.
 *
 *     trs_storage *mem = tu_mem_storage_new();
 *     tu_fault *f = tu_fault_new(mem);   (owns mem from now on)
 *     f->fail_nth = 3;                   (the third write fails with f->code)
 *     trs_process(ctx, &f->parent, ...);
 *     trs_storage_free(&f->parent);
 */
#ifndef TRS_TEST_FAULT_STORAGE_H
#define TRS_TEST_FAULT_STORAGE_H

#include "trs.h"
#include "trs/sys/storage.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- an in-memory storage ---- */

/* Fill err (when there is one) and return code. */
static int tu_err(trs_error *err, int code, const char *what, const char *bucket, const char *key)
{
	if (err) {
		err->code = code;
		snprintf(err->message, sizeof(err->message), "%s s3://%s/%s", what, bucket, key);
	}
	return code;
}

typedef struct tu_kv {
	char *key;
	char *value;
} tu_kv;

typedef struct tu_mem_object {
	char *bucket;
	char *key;
	unsigned char *data;
	size_t len;
	size_t ntags;
	tu_kv tags[10];
	size_t nmetadata;
	tu_kv *metadata;
	uint64_t seq;           /* the write that made it (1, 2, ...) */
} tu_mem_object;

typedef struct tu_mem_storage {
	trs_storage parent;
	pthread_mutex_t mu;
	tu_mem_object *objects;
	size_t nobjects, cap;
	uint64_t writes;
} tu_mem_storage;

static char *tu_strdup(const char *s)
{
	size_t n = strlen(s ? s : "") + 1;
	char *d = malloc(n);
	memcpy(d, s ? s : "", n);
	return d;
}

static void tu_mem_object_clear(tu_mem_object *o)
{
	free(o->bucket);
	free(o->key);
	free(o->data);
	for (size_t i = 0; i < o->ntags; i++) {
		free(o->tags[i].key);
		free(o->tags[i].value);
	}
	for (size_t i = 0; i < o->nmetadata; i++) {
		free(o->metadata[i].key);
		free(o->metadata[i].value);
	}
	free(o->metadata);
	memset(o, 0, sizeof(*o));
}

/* Store a finished object under the lock, replacing one at the same key. */
static void tu_mem_store(tu_mem_storage *m, const trs_put_request *req, unsigned char *data, size_t len)
{
	tu_mem_object o;
	memset(&o, 0, sizeof(o));
	o.bucket = tu_strdup(req->bucket);
	o.key = tu_strdup(req->key);
	o.data = data;
	o.len = len;
	for (size_t i = 0; i < req->ntags && i < 10; i++) {
		o.tags[i].key = tu_strdup(req->tags[i].key);
		o.tags[i].value = tu_strdup(req->tags[i].value);
		o.ntags++;
	}
	o.metadata = calloc(req->nmetadata + 1, sizeof(tu_kv));
	for (size_t i = 0; i < req->nmetadata; i++) {
		o.metadata[i].key = tu_strdup(req->metadata[i].key);
		o.metadata[i].value = tu_strdup(req->metadata[i].value);
		o.nmetadata++;
	}
	pthread_mutex_lock(&m->mu);
	o.seq = ++m->writes;
	size_t i = 0;
	while (i < m->nobjects && (strcmp(m->objects[i].bucket, o.bucket) || strcmp(m->objects[i].key, o.key)))
		i++;
	if (i < m->nobjects) {
		tu_mem_object_clear(&m->objects[i]);
	} else {
		if (m->nobjects == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 16;
			m->objects = realloc(m->objects, m->cap * sizeof(*m->objects));
		}
		m->nobjects++;
	}
	m->objects[i] = o;
	pthread_mutex_unlock(&m->mu);
}

static int tu_mem_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	size_t cap = body->length + 1, len = 0;
	unsigned char *data = malloc(cap);
	for (;;) {
		if (len == cap)
			data = realloc(data, cap *= 2);
		int64_t n = body->read(body->self, data + len, cap - len, err);
		if (n < 0) {
			free(data);
			return (int)n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	tu_mem_store((tu_mem_storage *)self, req, data, len);
	return 0;
}

/* The object at bucket/key, or NULL (not locked: call when no writer runs). */
static const tu_mem_object *tu_mem_find(trs_storage *s, const char *bucket, const char *key)
{
	tu_mem_storage *m = (tu_mem_storage *)s;
	for (size_t i = 0; i < m->nobjects; i++)
		if (!strcmp(m->objects[i].bucket, bucket) && !strcmp(m->objects[i].key, key))
			return &m->objects[i];
	return NULL;
}

static int tu_mem_copy(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
		       trs_error *err)
{
	tu_mem_storage *m = (tu_mem_storage *)self;
	pthread_mutex_lock(&m->mu);
	const tu_mem_object *src = tu_mem_find(self, src_bucket, src_key);
	unsigned char *data = src ? malloc(src->len + 1) : NULL;
	size_t len = src ? src->len : 0;
	if (src)
		memcpy(data, src->data, len);
	pthread_mutex_unlock(&m->mu);
	if (!src)
		return tu_err(err, TRS_ENOTFOUND, "no object", src_bucket, src_key);
	tu_mem_store(m, req, data, len);
	return 0;
}

static int tu_mem_head(trs_storage *self, const char *bucket, const char *key, trs_object_info *info, trs_error *err)
{
	tu_mem_storage *m = (tu_mem_storage *)self;
	pthread_mutex_lock(&m->mu);
	const tu_mem_object *o = tu_mem_find(self, bucket, key);
	if (o)
		info->size = o->len;
	pthread_mutex_unlock(&m->mu);
	if (!o)
		return tu_err(err, TRS_ENOTFOUND, "no object", bucket, key);
	return 0;
}

/* Ranged reads, as trs_storage_get (length UINT64_MAX: to the end). Copies
 * the range under the lock, then feeds the sink in 64 KiB pieces. */
static int tu_mem_get(trs_storage *self, const char *bucket, const char *key, uint64_t offset, uint64_t length,
		      trs_sink_fn sink, void *userdata, trs_error *err)
{
	tu_mem_storage *m = (tu_mem_storage *)self;
	pthread_mutex_lock(&m->mu);
	const tu_mem_object *o = tu_mem_find(self, bucket, key);
	size_t from = o && offset < o->len ? (size_t)offset : o ? o->len : 0;
	size_t n = o ? o->len - from : 0;
	if (length < n)
		n = (size_t)length;
	unsigned char *copy = o ? malloc(n + 1) : NULL;
	if (o)
		memcpy(copy, o->data + from, n);
	pthread_mutex_unlock(&m->mu);
	if (!o)
		return tu_err(err, TRS_ENOTFOUND, "no object", bucket, key);
	int rc = 0;
	for (size_t done = 0; rc == 0 && done < n; done += 65536)
		rc = sink(userdata, copy + done, n - done < 65536 ? n - done : 65536, err);
	free(copy);
	return rc;
}

/* Store `len` bytes at bucket/key (a test's set-up: an archive in "staging"). */
static inline void tu_mem_put_bytes(trs_storage *s, const char *bucket, const char *key, const void *data, size_t len)
{
	trs_put_request req;
	memset(&req, 0, sizeof(req));
	req.bucket = bucket;
	req.key = key;
	unsigned char *copy = malloc(len + 1);
	memcpy(copy, data, len);
	tu_mem_store((tu_mem_storage *)s, &req, copy, len);
}

static void tu_mem_free(trs_storage *self)
{
	tu_mem_storage *m = (tu_mem_storage *)self;
	for (size_t i = 0; i < m->nobjects; i++)
		tu_mem_object_clear(&m->objects[i]);
	free(m->objects);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static inline trs_storage *tu_mem_storage_new(void)
{
	tu_mem_storage *m = calloc(1, sizeof(*m));
	trs_storage_init_backend(&m->parent, TRS_STORAGE_VERSION);
	m->parent.name = "memory";
	m->parent.put = tu_mem_put;
	m->parent.get = tu_mem_get;
	m->parent.copy = tu_mem_copy;
	m->parent.head = tu_mem_head;
	m->parent.free = tu_mem_free;
	pthread_mutex_init(&m->mu, NULL);
	return &m->parent;
}

/* ---- failing chosen writes ---- */

typedef struct tu_fault {
	trs_storage parent;
	trs_storage *inner;
	/* What fails (any that matches): */
	uint64_t fail_nth;       /* the n-th write (put or copy), counting from 1; 0: none */
	uint64_t fail_from;      /* every write from the n-th on; 0: none */
	const char *fail_key;    /* every write to this key; NULL: none */
	/* How: */
	int code;                /* default TRS_EIO */
	const char *aws_code;    /* copied into err->aws_code when set (e.g. "AccessDenied") */
	int drain;               /* read the body to its end first, as a server that refuses after the upload */
	unsigned put_delay_ms;   /* every put waits this long first, as a distant server */
	/* What happened (read when no write runs): */
	pthread_mutex_t mu;
	uint64_t writes;         /* writes seen, failed or not */
	uint64_t failed;
	char **failed_keys;      /* "bucket/key" of each failed write, in order */
} tu_fault;

static int tu_fault_should_fail(tu_fault *f, const trs_put_request *req)
{
	pthread_mutex_lock(&f->mu);
	uint64_t n = ++f->writes;
	int fail = (f->fail_nth && n == f->fail_nth) || (f->fail_from && n >= f->fail_from) ||
		   (f->fail_key && !strcmp(f->fail_key, req->key));
	if (fail) {
		size_t len = strlen(req->bucket) + strlen(req->key) + 2;
		f->failed_keys = realloc(f->failed_keys, (f->failed + 1) * sizeof(*f->failed_keys));
		f->failed_keys[f->failed] = malloc(len);
		snprintf(f->failed_keys[f->failed], len, "%s/%s", req->bucket, req->key);
		f->failed++;
	}
	pthread_mutex_unlock(&f->mu);
	return fail;
}

static int tu_fault_fail(tu_fault *f, const trs_put_request *req, trs_error *err)
{
	int code = tu_err(err, f->code ? f->code : TRS_EIO, "injected failure of", req->bucket, req->key);
	if (err && f->aws_code)
		snprintf(err->aws_code, sizeof(err->aws_code), "%s", f->aws_code);
	return code;
}

static int tu_fault_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	tu_fault *f = (tu_fault *)self;
	if (f->put_delay_ms) {
		struct timespec ts = {f->put_delay_ms / 1000, (long)(f->put_delay_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (!tu_fault_should_fail(f, req))
		return trs_upload(f->inner, req, body, err);
	if (f->drain) {
		unsigned char buf[65536];
		int64_t n;
		while ((n = body->read(body->self, buf, sizeof(buf), err)) > 0)
			;
		if (n < 0)
			return (int)n; /* the body's own verdict (integrity) comes first */
	}
	return tu_fault_fail(f, req, err);
}

static int tu_fault_copy(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
			 trs_error *err)
{
	tu_fault *f = (tu_fault *)self;
	if (tu_fault_should_fail(f, req))
		return tu_fault_fail(f, req, err);
	return trs_storage_copy(f->inner, src_bucket, src_key, req, err);
}

static int tu_fault_get(trs_storage *self, const char *bucket, const char *key, uint64_t offset, uint64_t length,
			trs_sink_fn sink, void *userdata, trs_error *err)
{
	return trs_storage_get(((tu_fault *)self)->inner, bucket, key, offset, length, sink, userdata, err);
}

static int tu_fault_head(trs_storage *self, const char *bucket, const char *key, trs_object_info *info,
			 trs_error *err)
{
	return trs_storage_head(((tu_fault *)self)->inner, bucket, key, info, err);
}

static int tu_fault_del(trs_storage *self, const char *bucket, const char *key, trs_error *err)
{
	return trs_storage_delete(((tu_fault *)self)->inner, bucket, key, err);
}

static void tu_fault_free(trs_storage *self)
{
	tu_fault *f = (tu_fault *)self;
	trs_storage_free(f->inner);
	for (uint64_t i = 0; i < f->failed; i++)
		free(f->failed_keys[i]);
	free(f->failed_keys);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/* A wrapper that owns `inner` (freed with it); nothing fails until told. */
static inline tu_fault *tu_fault_new(trs_storage *inner)
{
	tu_fault *f = calloc(1, sizeof(*f));
	trs_storage_init_backend(&f->parent, TRS_STORAGE_VERSION);
	f->parent.name = "fault";
	f->parent.put = tu_fault_put;
	f->parent.copy = tu_fault_copy;
	f->parent.get = tu_fault_get;
	f->parent.head = tu_fault_head;
	f->parent.del = tu_fault_del;
	f->parent.free = tu_fault_free;
	f->inner = inner;
	pthread_mutex_init(&f->mu, NULL);
	return f;
}

#endif
