/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backup targets (docs/operations.md): the archive, unchanged, in each backup
 * bucket of this region, and a JSON Lines catalog of its objects.
 *
 * The archive goes by server-side copy when it sits in the destination
 * storage (staging), else it is uploaded once, read again from the source,
 * and copied server-side to any further backup bucket. The catalog is
 * generated row by row while it is uploaded (its length is measured by a
 * first generation), so that a manifest of millions of objects does not
 * need its catalog in memory.
 */
#include "backup.h"
#include "archive/object_iter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

size_t trs__backup_targets(const trs_manifest *m, const char *region, const trs_manifest_target **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < trs_manifest_target_count(m); i++) {
		const trs_manifest_target *t = trs_manifest_target_at(m, i);
		if (!t->backup || strcmp(t->region, region) != 0)
			continue;
		int dup = 0;
		for (size_t j = 0; j < i && !dup; j++) {
			const trs_manifest_target *u = trs_manifest_target_at(m, j);
			dup = u->backup && !strcmp(u->region, region) && !strcmp(u->bucket, t->bucket);
		}
		if (dup)
			continue;
		if (n < max)
			out[n] = t;
		n++;
	}
	return n;
}

static const trs_manifest_object *first_object(const trs_manifest *m)
{
	return trs_manifest_object_count(m) ? trs_manifest_object_at(m, 0) : NULL;
}

static void utc_date(int64_t ms, struct tm *tm)
{
	time_t secs = (time_t)(ms / 1000);
	memset(tm, 0, sizeof(*tm));
	gmtime_r(&secs, tm);
}

int trs__backup_key(const trs_manifest *m, int64_t ms, trs__buf *out, trs_error *err)
{
	const trs_manifest_object *o = first_object(m);
	const char *prefix = o ? o->source_prefix : "";
	return trs__buf_printf(out, err, "%s%sbackup_%lld.tar.zst", prefix, *prefix ? "/" : "", (long long)ms);
}

int trs__catalog_key(const trs_manifest *m, const char *backup_key, int64_t ms, trs__buf *out, trs_error *err)
{
	const trs_manifest_object *o = first_object(m);
	const char *bucket = o ? o->source_bucket : "";
	const char *prefix = o ? o->source_prefix : "";
	const char *slash = strrchr(backup_key, '/');
	const char *file = slash ? slash + 1 : backup_key;
	struct tm tm;
	utc_date(ms, &tm);
	return trs__buf_printf(out, err, "%s%s%s%syear=%04d/month=%02d/day=%02d/%s.jsonl", bucket, *bucket ? "/" : "",
			       prefix, *prefix ? "/" : "", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, file);
}

/* "YYYY-MM-DD" from the start of a creation_time, or 0 when it does not start with one. */
static int creation_date(const char *t, char out[11])
{
	static const char shape[] = "dddd-dd-dd";
	for (int i = 0; i < 10; i++) {
		char c = t[i];
		if (shape[i] == 'd' ? (c < '0' || c > '9') : c != '-')
			return 0;
	}
	memcpy(out, t, 10);
	out[10] = '\0';
	return 1;
}

static int gen_str(yajl_gen g, const char *s)
{
	return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) != yajl_gen_status_ok;
}

static int gen_str_or_null(yajl_gen g, const char *s)
{
	return *s ? gen_str(g, s) : yajl_gen_null(g) != yajl_gen_status_ok;
}

int trs__catalog_row(trs__buf *out, const trs_manifest_object *e, const char *backup_key, int64_t ms,
		     const char *const *buckets, size_t nbuckets, trs_error *err)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	char num[32], date[11], cdate[11];
	struct tm tm;
	utc_date(ms, &tm);
	snprintf(date, sizeof(date), "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100);
	size_t klen = trs_manifest_dest_key(e, NULL, 0);
	char *path = malloc(klen + 1);
	if (!path) {
		yajl_gen_free(g);
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	}
	trs_manifest_dest_key(e, path, klen + 1);
	int bad = yajl_gen_map_open(g) != yajl_gen_status_ok;
	bad |= gen_str(g, "backup_file") | gen_str(g, backup_key);
	snprintf(num, sizeof(num), "%lld", (long long)(ms / 1000));
	bad |= gen_str(g, "backup_timestamp") | (yajl_gen_number(g, num, strlen(num)) != yajl_gen_status_ok);
	bad |= gen_str(g, "backup_date") | gen_str(g, date);
	bad |= gen_str(g, "source_bucket") | gen_str(g, e->source_bucket);
	bad |= gen_str(g, "source_prefix") | gen_str(g, e->source_prefix);
	bad |= gen_str(g, "object_name") | gen_str(g, e->object_name);
	bad |= gen_str(g, "object_path") | gen_str(g, path);
	bad |= gen_str(g, "object_size");
	if (e->has_size) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)e->size);
		bad |= yajl_gen_number(g, num, strlen(num)) != yajl_gen_status_ok;
	} else {
		bad |= yajl_gen_null(g) != yajl_gen_status_ok;
	}
	bad |= gen_str(g, "creation_time") | gen_str_or_null(g, e->creation_time);
	bad |= gen_str(g, "creation_date") |
	       (creation_date(e->creation_time, cdate) ? gen_str(g, cdate) : yajl_gen_null(g) != yajl_gen_status_ok);
	bad |= gen_str(g, "target_buckets") | (yajl_gen_array_open(g) != yajl_gen_status_ok);
	for (size_t i = 0; i < nbuckets; i++)
		bad |= gen_str(g, buckets[i]);
	bad |= yajl_gen_array_close(g) != yajl_gen_status_ok;
	bad |= yajl_gen_map_close(g) != yajl_gen_status_ok;
	free(path);
	int rc = 0;
	if (bad) {
		rc = trs__error_set(err, TRS_EINVAL, "cannot write the catalog row of %s (a field is not UTF-8?)",
				    TRS__SHORT(e->relative_key));
	} else {
		const unsigned char *buf;
		size_t len;
		yajl_gen_get_buf(g, &buf, &len);
		if ((rc = trs__buf_put(out, buf, len, err)) == 0)
			rc = trs__buf_put(out, "\n", 1, err);
	}
	yajl_gen_free(g);
	return rc;
}

/* ---- the catalog as a body generated on demand ---- */

typedef struct {
	const trs_manifest *m;
	const char *backup_key;
	int64_t ms;
	const char *const *buckets;
	size_t nbuckets;
	size_t next;  /* the next row to generate */
	trs__buf line;
	size_t pos;   /* read position in line */
} catalog_body;

static int64_t catalog_read(void *self, void *buf, size_t len, trs_error *err)
{
	catalog_body *cb = self;
	while (cb->pos == cb->line.len) {
		if (cb->next == trs_manifest_object_count(cb->m))
			return 0;
		cb->line.len = cb->pos = 0;
		int rc = trs__catalog_row(&cb->line, trs_manifest_object_at(cb->m, cb->next++), cb->backup_key, cb->ms,
					  cb->buckets, cb->nbuckets, err);
		if (rc < 0)
			return rc;
	}
	size_t n = cb->line.len - cb->pos < len ? cb->line.len - cb->pos : len;
	memcpy(buf, cb->line.data + cb->pos, n);
	cb->pos += n;
	return (int64_t)n;
}

/* The catalog's length: every row generated once and measured. */
static int catalog_length(catalog_body *cb, uint64_t *out, trs_error *err)
{
	uint64_t total = 0;
	for (size_t i = 0; i < trs_manifest_object_count(cb->m); i++) {
		cb->line.len = 0;
		int rc = trs__catalog_row(&cb->line, trs_manifest_object_at(cb->m, i), cb->backup_key, cb->ms, cb->buckets,
					  cb->nbuckets, err);
		if (rc < 0)
			return rc;
		total += cb->line.len;
	}
	cb->line.len = cb->pos = 0;
	*out = total;
	return 0;
}

/* ---- the archive's bytes, read again from the source ---- */

typedef struct {
	const trs_archive_source *src;
	const char *name;
	int fd;
	uint64_t pos;
	uint64_t length;
} archive_body;

static int64_t archive_read(void *self, void *buf, size_t len, trs_error *err)
{
	archive_body *ab = self;
	uint64_t left = ab->length - ab->pos;
	if (!left)
		return 0;
	if (len > left)
		len = (size_t)left;
	int64_t n;
	if (ab->fd >= 0) {
		ssize_t r;
		do
			r = pread(ab->fd, buf, len, (off_t)ab->pos);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return trs__error_errno(err, errno, "archive %s: cannot read it again for its backup",
						TRS__SHORT(ab->name));
		n = r;
	} else {
		n = ab->src->read(ab->src->userdata, buf, len, err);
		if (n < 0)
			return n;
	}
	if (n == 0)
		return trs__error_set(err, TRS_EIO, "archive %s ended after %llu of %llu bytes while it was stored as a backup",
				      TRS__SHORT(ab->name), (unsigned long long)ab->pos,
				      (unsigned long long)ab->length);
	ab->pos += (uint64_t)n;
	return n;
}

static int upload_archive(trs_storage *dest, const trs_archive_source *src, const char *name, trs_put_request *req,
			  uint64_t *bytes, trs_error *err)
{
	archive_body ab = {src, name, -1, 0, 0};
	int own_fd = -1;
	if (src->data) {
		trs_memory_body mb;
		req->size = src->size;
		*bytes = src->size;
		return trs_upload(dest, req, trs_memory_body_init(&mb, src->data, src->size), err);
	}
	if (src->path || src->fd >= 0) {
		ab.fd = src->path ? (own_fd = open(src->path, O_RDONLY | O_CLOEXEC)) : src->fd;
		struct stat st;
		int e = ab.fd < 0 ? errno : fstat(ab.fd, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : 0;
		if (e) {
			if (own_fd >= 0)
				close(own_fd);
			return trs__error_errno(err, e, "archive %s: cannot read it again for its backup",
						TRS__SHORT(name));
		}
		ab.length = (uint64_t)st.st_size;
	} else if (src->read && src->rewind && src->compressed_size) {
		int rc = src->rewind(src->userdata, err);
		if (rc < 0)
			return rc;
		ab.length = src->compressed_size;
	} else {
		return trs__error_set(err, TRS_EUNSUPPORTED,
				      "archive %s: its source cannot be read again (no rewind or no size), so it cannot "
				      "be stored as a backup",
				      TRS__SHORT(name));
	}
	req->size = ab.length;
	*bytes = ab.length;
	trs_body body = {archive_read, &ab, ab.length};
	int rc = trs_upload(dest, req, &body, err);
	if (own_fd >= 0)
		close(own_fd);
	return rc;
}

/* ---- planning and writing ---- */

int trs__backup_plan(const trs_ctx *ctx, const trs_manifest *m, const trs_process_options *o, int64_t ms, trs_report *rep,
		     trs_error *err)
{
	size_t n = trs__backup_targets(m, ctx->region, NULL, 0);
	if (!n)
		return 0;
	const char *catalog = o ? o->catalog_bucket : NULL;
	const trs_manifest_target **targets = trs__calloc(n, sizeof(*targets), err);
	if (!targets)
		return TRS_ENOMEM;
	trs__backup_targets(m, ctx->region, targets, n);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (!*targets[i]->bucket)
			rc = trs__error_set(err, TRS_EMANIFEST,
					    "archive %s: a backup target in %s has no bucket; nothing was written",
					    TRS__SHORT(rep->archive), ctx->region);
	if (rc == 0 && (!catalog || !*catalog))
		rc = trs__error_set(err, TRS_EINVAL,
				    "archive %s has a backup target in %s (bucket %s) but no catalog bucket is "
				    "configured: set CATALOG_BUCKET (or pass --catalog-bucket); nothing was written",
				    TRS__SHORT(rep->archive), ctx->region, targets[0]->bucket);
	trs__buf key = TRS_BUF_INIT, ckey = TRS_BUF_INIT;
	if (rc == 0 && (rc = trs__backup_key(m, ms, &key, err)) == 0)
		rc = trs__catalog_key(m, key.data, ms, &ckey, err);
	if (rc == 0 && !(rep->backups = trs__calloc(n, sizeof(*rep->backups), err)))
		rc = TRS_ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		trs_report_backup *b = &rep->backups[i];
		if (!(b->bucket = trs__strdup(targets[i]->bucket, err)) || !(b->key = trs__strdup(key.data, err)))
			rc = TRS_ENOMEM;
		rep->nbackups++;
	}
	if (rc == 0 && (!(rep->catalog_bucket = trs__strdup(catalog, err)) ||
			!(rep->catalog_key = trs__strdup(ckey.data, err))))
		rc = TRS_ENOMEM;
	trs__buf_free(&key);
	trs__buf_free(&ckey);
	free(targets);
	return rc;
}

static const trs_manifest_target *target_of(const trs_manifest *m, const char *region, const char *bucket)
{
	for (size_t i = 0; i < trs_manifest_target_count(m); i++) {
		const trs_manifest_target *t = trs_manifest_target_at(m, i);
		if (t->backup && !strcmp(t->region, region) && !strcmp(t->bucket, bucket))
			return t;
	}
	return NULL;
}

static int write_catalog(const trs_ctx *ctx, trs_storage *dest, const trs_manifest *m, int64_t ms, trs_report *rep,
			 trs_error *err)
{
	const char **buckets = trs__calloc(rep->nbackups, sizeof(*buckets), err);
	if (!buckets)
		return TRS_ENOMEM;
	size_t nb = 0;
	for (size_t i = 0; i < rep->nbackups; i++)
		if (rep->backups[i].written)
			buckets[nb++] = rep->backups[i].bucket;
	catalog_body cb = {m, rep->backups[0].key, ms, buckets, nb, 0, TRS_BUF_INIT, 0};
	uint64_t length = 0;
	int rc = catalog_length(&cb, &length, err);
	if (rc == 0) {
		trs_put_request req = TRS_PUT_REQUEST_INIT;
		req.bucket = rep->catalog_bucket;
		req.key = rep->catalog_key;
		req.size = length;
		trs_body body = {catalog_read, &cb, length};
		rc = trs_upload(dest, &req, &body, err);
	}
	trs__buf_free(&cb.line);
	free(buckets);
	if (rc == 0) {
		rep->catalog_written = 1;
		rep->catalog_rows = trs_manifest_object_count(m);
		char rows[32];
		snprintf(rows, sizeof(rows), "%llu", (unsigned long long)rep->catalog_rows);
		trs__log(ctx, TRS_LOG_INFO, "backup catalog written", "archive", rep->archive, "bucket", rep->catalog_bucket,
			 "key", rep->catalog_key, "rows", rows, NULL);
	}
	return rc;
}

int trs__backup_write(const trs_ctx *ctx, trs_storage *dest, const trs_archive_source *source, const trs_process_options *o,
		      const trs_manifest *m, int64_t ms, trs_report *rep, trs_error *err)
{
	if (!rep->nbackups)
		return 0;
	if (o && o->dry_run) {
		for (size_t i = 0; i < rep->nbackups; i++)
			trs__log(ctx, TRS_LOG_INFO, "dry run: the archive would be stored as a backup", "archive",
				 rep->archive, "bucket", rep->backups[i].bucket, "key", rep->backups[i].key, NULL);
		return 0;
	}
	const trs_report_backup *first = NULL;
	int same_storage = o && o->archive_storage == dest && o->archive_bucket && o->archive_key;
	for (size_t i = 0; i < rep->nbackups; i++) {
		trs_report_backup *b = &rep->backups[i];
		const trs_manifest_target *t = target_of(m, ctx->region, b->bucket);
		trs_put_request req = TRS_PUT_REQUEST_INIT;
		req.bucket = b->bucket;
		req.key = b->key;
		req.storage_class = t && *t->storage_class ? t->storage_class : NULL;
		req.kms_key_id = t && *t->kms_key_arn ? t->kms_key_arn : NULL;
		req.size = source->compressed_size;
		trs_error berr = TRS_ERROR_INIT;
		int rc;
		uint64_t bytes = source->compressed_size;
		const char *kms_problem = t ? trs__kms_key_problem(t->kms_key_arn, t->flags) : NULL;
		if (kms_problem) {
			rc = trs__error_set(&berr, TRS_EINVAL, "%s", kms_problem);
		} else if (t && (t->flags & TRS_MANIFEST_TARGET_CLASS_HAS_NUL)) {
			rc = trs__error_set(&berr, TRS_EINVAL, "the manifest target's storage_class holds a NUL byte; not "
					    "written (the class ends at it, so another class would be used)");
		} else if (same_storage) {
			rc = trs_storage_copy(dest, o->archive_bucket, o->archive_key, &req, &berr);
			b->copied = 1;
		} else if (first) {
			req.size = first->bytes;
			bytes = first->bytes;
			rc = trs_storage_copy(dest, first->bucket, first->key, &req, &berr);
			b->copied = 1;
		} else {
			rc = upload_archive(dest, source, rep->archive, &req, &bytes, &berr);
		}
		if (rc == 0) {
			b->written = 1;
			b->bytes = bytes;
			rep->backups_written++;
			if (!first)
				first = b;
			trs__log(ctx, TRS_LOG_INFO, b->copied ? "archive copied to its backup target" : "archive uploaded to its backup target",
				 "archive", rep->archive, "bucket", b->bucket, "key", b->key, NULL);
			continue;
		}
		rep->backups_failed++;
		char msg[TRS_ERROR_MESSAGE_SIZE + 512];
		snprintf(msg, sizeof(msg), "archive %s -> backup s3://%s/%s: %s", TRS__SHORT(rep->archive), b->bucket,
			 TRS__SHORT(b->key), berr.message);
		trs__log(ctx, TRS_LOG_ERROR, msg, "archive", rep->archive, "bucket", b->bucket, "key", b->key, "error",
			 trs_strerror(rc), NULL);
		if (trs__report_add_failure(rep, "", b->bucket, b->key, rc, msg, err) < 0)
			return TRS_ENOMEM;
	}
	if (!first)
		return 0; /* no backup was stored: a catalog would point at nothing */
	trs_error cerr = TRS_ERROR_INIT;
	int rc = write_catalog(ctx, dest, m, ms, rep, &cerr);
	if (rc < 0) {
		char msg[TRS_ERROR_MESSAGE_SIZE + 512];
		snprintf(msg, sizeof(msg), "archive %s -> backup catalog s3://%s/%s: %s", TRS__SHORT(rep->archive),
			 rep->catalog_bucket, TRS__SHORT(rep->catalog_key), cerr.message);
		trs__log(ctx, TRS_LOG_ERROR, msg, "archive", rep->archive, "bucket", rep->catalog_bucket, "key",
			 rep->catalog_key, "error", trs_strerror(rc), NULL);
		if (trs__report_add_failure(rep, "", rep->catalog_bucket, rep->catalog_key, rc, msg, err) < 0)
			return TRS_ENOMEM;
	}
	return 0;
}
