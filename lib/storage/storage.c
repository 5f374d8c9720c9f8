/* SPDX-License-Identifier: Apache-2.0 */
/* Storage: dispatch to a backend's vtable, and the pieces every backend shares. */
#include "internal.h"
#include "storage_open.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TRS_EXTERN(int) trs_storage_init_backend(trs_storage *backend, unsigned int version)
{
	if (!backend || !trs__vtable_version_known(version, TRS_STORAGE_VERSION))
		return TRS_EINVAL;
	/* An older caller's struct ends where its version did: never write past it. */
	memset(backend, 0, version == 1   ? offsetof(trs_storage, caps)
			   : version == 2 ? offsetof(trs_storage, put_if_newer)
			   : version == 3 ? offsetof(trs_storage, stage_open)
					  : sizeof(*backend));
	backend->version = version;
	return 0;
}

int trs__storage_check_version(const trs_storage *s, trs_error *err)
{
	if (!trs__vtable_version_known(s->version, TRS_STORAGE_VERSION))
		return trs__error_set(err, TRS_EINVAL, "storage backend '%s' has version %u, this library knows 1 to %u",
				      s->name ? s->name : "?", s->version, TRS_STORAGE_VERSION);
	return 0;
}

/* The version-2 members, read only from a backend that has them. */
unsigned int trs__storage_caps(const trs_storage *s)
{
	return s->version >= 2 ? s->caps : 0;
}

unsigned int trs__storage_parallelism(const trs_storage *s)
{
	return s->version >= 2 ? s->parallelism : 0;
}

uint64_t trs__storage_md5_checked_below(const trs_storage *s)
{
	return s->version >= 2 && (s->caps & TRS_STORAGE_CHECKS_CONTENT_MD5) ? s->md5_checked_below : 0;
}

uint64_t trs__storage_reserved_memory(const trs_storage *s)
{
	return s->version >= 2 ? s->reserved_memory : 0;
}

/* The version-4 staging members: all six, or the backend does not stage. */
static bool stages(const trs_storage *s)
{
	return s->version >= 4 && (s->caps & TRS_STORAGE_STAGE_EARLY) && s->stage_open && s->stage_create &&
	       s->stage_publish && s->stage_discard && s->stage_spool && s->stage_close;
}

int trs__storage_stage_open(trs_storage *s, trs_storage_stage **out, trs_error *err)
{
	*out = NULL;
	if (!stages(s))
		return TRS_EUNSUPPORTED;
	int rc = s->stage_open(s, out, err);
	if (rc == 0 && !*out)
		rc = trs__error_set(err, TRS_EINVAL, "storage backend '%s': stage_open gave no stage",
				    s->name ? s->name : "?");
	if (rc == 0)
		(*out)->storage = s;
	return rc;
}

int trs__storage_stage_create(trs_storage_stage *st, uint64_t index, trs_error *err)
{
	return st->storage->stage_create(st, index, err);
}

int trs__storage_stage_publish(trs_storage_stage *st, uint64_t index, const trs_put_request *req, uint64_t size,
			       const char *md5, const trs_write_condition *cond, trs_error *err)
{
	/* Versions are compared by a backend that compares them on put too; any other publishes plainly. */
	return st->storage->stage_publish(st, index, req, size, md5, trs__storage_writes_if_newer(st->storage) ? cond : NULL,
					  err);
}

void trs__storage_stage_discard(trs_storage_stage *st, uint64_t index)
{
	st->storage->stage_discard(st, index);
}

int trs__storage_stage_spool(trs_storage_stage *st, char *where, size_t where_size, trs_error *err)
{
	return st->storage->stage_spool(st, where, where_size, err);
}

void trs__storage_stage_close(trs_storage_stage *st)
{
	if (st)
		st->storage->stage_close(st);
}

TRS_EXTERN(int) trs_storage_retry_stats(const trs_storage *st, trs_retry_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!st || st->version < 4 || !st->retry_stats)
		return TRS_EUNSUPPORTED;
	return st->retry_stats(st, out);
}

static int unsupported(const trs_storage *s, const char *what, trs_error *err)
{
	return trs__error_set(err, TRS_EUNSUPPORTED, "the %s storage backend does not support %s",
			      s->name ? s->name : "custom", what);
}

TRS_EXTERN(int) trs_upload(trs_storage *s, const trs_put_request *req, trs_body *body, trs_error *err)
{
	if (!s || !req || !body || !req->bucket || !req->key)
		return trs__error_set(err, TRS_EINVAL, "trs_upload needs a storage, a request with bucket and key, and a body");
	if (req->version == 0 || req->version > TRS_PUT_REQUEST_VERSION)
		return trs__error_set(err, TRS_EINVAL, "trs_put_request has unknown version %u", req->version);
	if (!s->put)
		return unsupported(s, "put", err);
	return s->put(s, req, body, err);
}

static int condition_usable(const trs_write_condition *cond, trs_error *err)
{
	if (cond && (cond->version == 0 || cond->version > TRS_WRITE_CONDITION_VERSION))
		return trs__error_set(err, TRS_EINVAL, "trs_write_condition has unknown version %u", cond->version);
	return 0;
}

TRS_EXTERN(int) trs_upload_if_newer(trs_storage *s, const trs_put_request *req, const trs_write_condition *cond,
				    trs_body *body, trs_error *err)
{
	if (!s || !req || !body || !req->bucket || !req->key)
		return trs__error_set(err, TRS_EINVAL,
				      "trs_upload_if_newer needs a storage, a request with bucket and key, and a body");
	if (req->version == 0 || req->version > TRS_PUT_REQUEST_VERSION)
		return trs__error_set(err, TRS_EINVAL, "trs_put_request has unknown version %u", req->version);
	if (condition_usable(cond, err) < 0)
		return TRS_EINVAL;
	if (cond && s->version >= 3 && s->put_if_newer)
		return s->put_if_newer(s, req, cond, body, err);
	if (!s->put)
		return unsupported(s, "put", err);
	return s->put(s, req, body, err);
}

TRS_EXTERN(int) trs_storage_copy_if_newer(trs_storage *s, const char *src_bucket, const char *src_key,
					  const trs_put_request *req, const trs_write_condition *cond, trs_error *err)
{
	if (!s || !src_bucket || !src_key || !req || !req->bucket || !req->key)
		return trs__error_set(err, TRS_EINVAL, "trs_storage_copy_if_newer needs source and destination");
	if (condition_usable(cond, err) < 0)
		return TRS_EINVAL;
	if (cond && s->version >= 3 && s->copy_if_newer)
		return s->copy_if_newer(s, src_bucket, src_key, req, cond, err);
	if (!s->copy)
		return unsupported(s, "copy", err);
	return s->copy(s, src_bucket, src_key, req, err);
}

/* Does the backend compare versions when it writes (version 3)? */
int trs__storage_writes_if_newer(const trs_storage *s)
{
	return s->version >= 3 && s->put_if_newer != NULL;
}

TRS_EXTERN(int) trs_storage_get(trs_storage *s, const char *bucket, const char *key, uint64_t offset,
				uint64_t length, trs_sink_fn sink, void *ud, trs_error *err)
{
	if (!s || !bucket || !key || !sink)
		return trs__error_set(err, TRS_EINVAL, "trs_storage_get needs a storage, bucket, key and sink");
	if (!s->get)
		return unsupported(s, "get", err);
	return s->get(s, bucket, key, offset, length, sink, ud, err);
}

TRS_EXTERN(int) trs_storage_head(trs_storage *s, const char *bucket, const char *key, trs_object_info *info,
				 trs_error *err)
{
	if (!s || !bucket || !key || !info)
		return trs__error_set(err, TRS_EINVAL, "trs_storage_head needs a storage, bucket, key and info");
	memset(info, 0, sizeof(*info));
	if (!s->head)
		return unsupported(s, "head", err);
	return s->head(s, bucket, key, info, err);
}

TRS_EXTERN(int) trs_storage_delete(trs_storage *s, const char *bucket, const char *key, trs_error *err)
{
	if (!s || !bucket || !key)
		return trs__error_set(err, TRS_EINVAL, "trs_storage_delete needs a storage, bucket and key");
	if (!s->del)
		return unsupported(s, "delete", err);
	return s->del(s, bucket, key, err);
}

TRS_EXTERN(int) trs_storage_copy(trs_storage *s, const char *src_bucket, const char *src_key,
				 const trs_put_request *req, trs_error *err)
{
	if (!s || !src_bucket || !src_key || !req || !req->bucket || !req->key)
		return trs__error_set(err, TRS_EINVAL, "trs_storage_copy needs source and destination");
	if (!s->copy)
		return unsupported(s, "copy", err);
	return s->copy(s, src_bucket, src_key, req, err);
}

TRS_EXTERN(const char *) trs_storage_name(const trs_storage *s)
{
	return s && s->name ? s->name : "custom";
}

TRS_EXTERN(void) trs_storage_free(trs_storage *s)
{
	if (s && s->free)
		s->free(s);
}

TRS_EXTERN(void) trs_object_info_clear(trs_object_info *info)
{
	if (!info)
		return;
	free(info->etag);
	free(info->storage_class);
	free(info->kms_key_id);
	for (size_t i = 0; i < info->ntags; i++) {
		free((char *)info->tags[i].key);
		free((char *)info->tags[i].value);
	}
	free(info->tags);
	for (size_t i = 0; i < info->nmetadata; i++) {
		free((char *)info->metadata[i].key);
		free((char *)info->metadata[i].value);
	}
	free(info->metadata);
	memset(info, 0, sizeof(*info));
}

static int64_t memory_read(void *self, void *buf, size_t len, trs_error *err)
{
	(void)err;
	trs_memory_body *mb = self;
	size_t left = mb->len - mb->pos;
	if (len > left)
		len = left;
	memcpy(buf, mb->data + mb->pos, len);
	mb->pos += len;
	return (int64_t)len;
}

static int64_t vouched_read(void *self, void *buf, size_t len, trs_error *err)
{
	trs_body *inner = ((trs__vouched_body *)self)->inner;
	return inner->read(inner->self, buf, len, err);
}

trs_body *trs__vouched_body_init(trs__vouched_body *vb, trs_body *inner, const char *md5_hex)
{
	vb->inner = inner;
	vb->body.read = vouched_read;
	vb->body.self = vb;
	vb->body.length = inner->length;
	snprintf(vb->md5, sizeof(vb->md5), "%s", md5_hex);
	return &vb->body;
}

static const trs_memory_body *memory_body_of(const trs_body *body)
{
	if (body->read == vouched_read)
		body = ((const trs__vouched_body *)body->self)->inner;
	const trs_memory_body *mb = body->read == memory_read ? body->self : NULL;
	return mb && mb->pos == 0 ? mb : NULL;
}

TRS_EXTERN(int) trs_body_memory(const trs_body *body, const void **data, size_t *len)
{
	const trs_memory_body *mb = body ? memory_body_of(body) : NULL;
	if (!mb)
		return 0;
	*data = mb->data;
	*len = mb->len;
	return 1;
}

TRS_EXTERN(const char *) trs_body_verified_md5(const trs_body *body)
{
	return body && body->read == vouched_read ? ((const trs__vouched_body *)body->self)->md5 : NULL;
}

TRS_EXTERN(trs_body *) trs_memory_body_init(trs_memory_body *mb, const void *data, size_t len)
{
	mb->data = data;
	mb->len = len;
	mb->pos = 0;
	mb->body.read = memory_read;
	mb->body.self = mb;
	mb->body.length = len;
	return &mb->body;
}

TRS_EXTERN(int) trs_storage_open(trs_storage **out, trs_ctx *ctx, const char *url, trs_error *err)
{
	*out = NULL;
	if (!url || !*url)
		return trs__error_set(err, TRS_EINVAL, "no storage URL given");
	if (strncmp(url, "file://", 7) == 0)
		return trs_storage_fs_new(out, ctx, url + 7, err);
	if (strncmp(url, "s3://", 5) == 0 || strcmp(url, "s3") == 0)
		return trs__storage_s3_open(out, ctx, url, err);
	if (strstr(url, "://"))
		return trs__error_set(err, TRS_EINVAL,
				      "unknown storage URL '%s': use file://DIR or s3://", url);
	return trs_storage_fs_new(out, ctx, url, err);
}
