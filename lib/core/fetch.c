/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fetching an archive from a storage: parallel ranged GETs into a spool,
 * read by the decompressor as the contiguous prefix grows.
 *
 * The first GET asks for the first megabyte without knowing the size: a
 * small archive (most of them: the source side packs at most ten objects)
 * is then read whole in that one request, with no HEAD. Only when the
 * answer fills the request does a HEAD give the size for the rest.
 *
 * Workers claim the remaining chunks in order, so the prefix advances roughly at the
 * download rate; the reader waits only when it has caught up with the
 * network. The spool holds compressed bytes only, in memory for small
 * archives or in an unlinked O_TMPFILE (mode 0600) otherwise, so nothing
 * is left behind on any exit path, a kill -9 included.
 */
#include "internal.h"
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONNECTIONS 4
#define DEFAULT_CHUNK (8ull << 20)
#define DEFAULT_MEMORY_LIMIT (64ull << 20)
#define MAX_CONNECTIONS 64
#define PROBE_BYTES (1ull << 20)

struct trs_fetch {
	trs_storage *storage;
	const trs_ctx *ctx;
	char *bucket;
	char *key;
	char *name;          /* s3://bucket/key, for messages */
	uint64_t size;
	uint64_t base;       /* bytes [0, base) came with the first GET */
	uint64_t chunk;
	uint64_t nchunks;
	unsigned char *mem;  /* memory spool, or NULL */
	trs__buf first;       /* the first GET's bytes until the spool is made */
	int fd;              /* file spool, or -1 */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *chunk_done;
	uint64_t next_chunk; /* next chunk to claim */
	uint64_t prefix;     /* bytes [0, prefix) are in the spool */
	int failed;
	int stop;
	trs_error error;
	pthread_t *threads;
	unsigned int nthreads;
	unsigned int running;

	uint64_t read_pos;
	double t0;
	double t_done;
};

typedef struct {
	trs_fetch *f;
	uint64_t offset;
	uint64_t end;
} chunk_sink;

static int spool_write(void *ud, const void *data, size_t len, trs_error *err)
{
	chunk_sink *cs = ud;
	trs_fetch *f = cs->f;
	if (len > cs->end - cs->offset)
		return trs__error_set(err, TRS_EHTTP, "archive %s: the server sent more bytes than the range asked for",
				      TRS__SHORT(f->name));
	if (f->mem) {
		memcpy(f->mem + cs->offset, data, len);
	} else {
		const char *p = data;
		size_t left = len;
		uint64_t off = cs->offset;
		while (left) {
			ssize_t n = pwrite(f->fd, p, left, (off_t)off);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return trs__error_errno(err, errno, "archive %s: cannot write the download spool",
							TRS__SHORT(f->name));
			}
			p += n;
			left -= (size_t)n;
			off += (uint64_t)n;
		}
	}
	cs->offset += len;
	if (trs__canceled(f->ctx))
		return trs__error_set(err, TRS_ECANCELED, "archive %s: download canceled", TRS__SHORT(f->name));
	return 0;
}

static void *worker(void *arg)
{
	trs_fetch *f = arg;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		if (f->stop || f->failed || f->next_chunk >= f->nchunks) {
			f->running--;
			if (f->running == 0 && !f->failed)
				f->t_done = trs__now();
			pthread_cond_broadcast(&f->cv);
			pthread_mutex_unlock(&f->mu);
			return NULL;
		}
		uint64_t i = f->next_chunk++;
		pthread_mutex_unlock(&f->mu);

		uint64_t start = f->base + i * f->chunk;
		uint64_t len = f->size - start < f->chunk ? f->size - start : f->chunk;
		chunk_sink cs = {f, start, start + len};
		trs_error err = TRS_ERROR_INIT;
		int rc = trs_storage_get(f->storage, f->bucket, f->key, start, len, spool_write, &cs, &err);
		if (rc == 0 && cs.offset != start + len)
			rc = trs__error_set(&err, TRS_EHTTP,
					    "archive %s: the download of bytes %llu-%llu ended early (%llu bytes); "
					    "the object may have changed while it was read",
					    TRS__SHORT(f->name), (unsigned long long)start,
					    (unsigned long long)(start + len - 1),
					    (unsigned long long)(cs.offset - start));
		pthread_mutex_lock(&f->mu);
		if (rc < 0) {
			if (!f->failed) {
				f->failed = 1;
				f->error = err;
			}
		} else {
			f->chunk_done[i] = 1;
			while (f->prefix < f->size && f->chunk_done[(f->prefix - f->base) / f->chunk])
				f->prefix = f->prefix + f->chunk < f->size ? f->prefix + f->chunk : f->size;
		}
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
	}
}

/* The archive source's read: block until the prefix covers read_pos. */
static int64_t fetch_read(void *ud, void *buf, size_t len, trs_error *err)
{
	trs_fetch *f = ud;
	pthread_mutex_lock(&f->mu);
	while (f->read_pos >= f->prefix && f->read_pos < f->size && !f->failed)
		pthread_cond_wait(&f->cv, &f->mu);
	if (f->read_pos >= f->size) {
		pthread_mutex_unlock(&f->mu);
		return 0;
	}
	if (f->read_pos >= f->prefix && f->failed) {
		if (err)
			*err = f->error;
		int code = f->error.code;
		pthread_mutex_unlock(&f->mu);
		return code;
	}
	uint64_t avail = f->prefix - f->read_pos;
	uint64_t pos = f->read_pos;
	pthread_mutex_unlock(&f->mu);
	size_t n = avail < len ? (size_t)avail : len;
	if (f->mem) {
		memcpy(buf, f->mem + pos, n);
	} else {
		ssize_t r;
		do
			r = pread(f->fd, buf, n, (off_t)pos);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return trs__error_errno(err, r < 0 ? errno : EIO, "archive %s: cannot read the download spool",
						TRS__SHORT(f->name));
		n = (size_t)r;
	}
	pthread_mutex_lock(&f->mu);
	f->read_pos += n;
	pthread_mutex_unlock(&f->mu);
	return (int64_t)n;
}

static int fetch_rewind(void *ud, trs_error *err)
{
	(void)err;
	trs_fetch *f = ud;
	pthread_mutex_lock(&f->mu);
	f->read_pos = 0;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int open_spool(trs_fetch *f, const char *dir, trs_error *err)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f->fd = dirfd >= 0 ? trs__tmpfile_at(dirfd) : -1;
	int saved = errno;
	if (dirfd >= 0)
		close(dirfd);
	errno = saved;
	if (f->fd < 0)
		return trs__error_errno(err, errno, "archive %s: cannot create a download spool in %s (set TMPDIR)",
					TRS__SHORT(f->name), TRS__SHORT(dir));
	int e = posix_fallocate(f->fd, 0, (off_t)f->size);
	if (e == ENOSPC)
		return trs__error_set(err, TRS_EIO,
				      "archive %s: not enough free space in %s for its %llu compressed bytes; free some "
				      "space or point TMPDIR elsewhere (the message stays on the queue)",
				      TRS__SHORT(f->name), TRS__SHORT(dir), (unsigned long long)f->size);
	return 0;
}

static int buf_sink(void *ud, const void *data, size_t len, trs_error *err)
{
	trs_fetch *f = ud;
	if (trs__canceled(f->ctx))
		return trs__error_set(err, TRS_ECANCELED, "archive %s: download canceled", TRS__SHORT(f->name));
	return trs__buf_put(&f->first, data, len, err);
}

/*
 * GET the first PROBE_BYTES (or a chunk, when smaller). A shorter answer is
 * the whole archive: it becomes the memory spool. Otherwise (or when the
 * backend refuses a range past the end, as S3 does for an empty object) a
 * HEAD gives the size. A missing archive is TRS_ENOTFOUND with the
 * backend's reason (NoSuchKey, NoSuchBucket) in err->aws_code.
 */
static int first_get(trs_fetch *f, trs_error *err)
{
	uint64_t probe = f->chunk < PROBE_BYTES ? f->chunk : PROBE_BYTES;
	trs_error gerr = TRS_ERROR_INIT;
	int rc = trs_storage_get(f->storage, f->bucket, f->key, 0, probe, buf_sink, f, &gerr);
	if (rc == TRS_ENOTFOUND || rc == TRS_ECANCELED || rc == TRS_ENOMEM) {
		if (err)
			*err = gerr;
		return rc;
	}
	if (rc == 0 && f->first.len < probe) {
		f->size = f->base = f->first.len;
		f->mem = (unsigned char *)f->first.data;
		f->first = (trs__buf)TRS_BUF_INIT;
		if (!f->mem && !(f->mem = trs__malloc(1, err)))
			return TRS_ENOMEM;
		return 0;
	}
	if (rc < 0)
		trs__buf_free(&f->first);
	trs_object_info info;
	if ((rc = trs_storage_head(f->storage, f->bucket, f->key, &info, err)) < 0)
		return rc;
	f->size = info.size;
	trs_object_info_clear(&info);
	f->base = f->first.len <= f->size ? f->first.len : 0;
	if (f->base == 0)
		trs__buf_free(&f->first);
	return 0;
}

TRS_EXTERN(int) trs_fetch_start(trs_fetch **out, trs_storage *storage, const char *bucket, const char *key,
				const trs_ctx *ctx, const trs_fetch_options *o, trs_archive_source *source, trs_error *err)
{
	*out = NULL;
	if (!storage || !bucket || !key || !source)
		return trs__error_set(err, TRS_EINVAL, "trs_fetch_start needs a storage, bucket, key and source");
	trs_fetch *f = trs__calloc(1, sizeof(*f), err);
	if (!f)
		return TRS_ENOMEM;
	f->fd = -1;
	f->storage = storage;
	f->ctx = TRS_CTX(ctx);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->t0 = trs__now();
	int rc = TRS_ENOMEM;
	size_t nlen = strlen(bucket) + strlen(key) + 8;
	f->bucket = trs__strdup(bucket, err);
	f->key = trs__strdup(key, err);
	f->name = trs__malloc(nlen, err);
	if (!f->bucket || !f->key || !f->name)
		goto fail;
	snprintf(f->name, nlen, "s3://%s/%s", bucket, key);

	unsigned int conns = o && o->connections ? o->connections : DEFAULT_CONNECTIONS;
	if (conns > MAX_CONNECTIONS)
		conns = MAX_CONNECTIONS;
	f->chunk = o && o->chunk_size ? o->chunk_size : DEFAULT_CHUNK;
	/* By default the in-memory spool stays within a quarter of --max-memory: peak RSS stays bounded. */
	uint64_t mem_limit = DEFAULT_MEMORY_LIMIT;
	if (TRS_CTX(ctx)->max_memory / 4 < mem_limit)
		mem_limit = TRS_CTX(ctx)->max_memory / 4;
	if (o && o->memory_limit)
		mem_limit = o->memory_limit;
	if ((rc = first_get(f, err)) < 0)
		goto fail;
	f->nchunks = (f->size - f->base + f->chunk - 1) / f->chunk;
	if (f->mem) {
		/* The first GET brought it all. */
	} else if (f->size <= mem_limit) {
		if (!(f->mem = trs__malloc(f->size ? f->size : 1, err))) {
			rc = TRS_ENOMEM;
			goto fail;
		}
		/* An empty archive (its range refused, then HEAD) brought no first bytes: no buffer either. */
		if (f->base)
			memcpy(f->mem, f->first.data, (size_t)f->base);
	} else {
		const char *dir = o && o->spool_dir ? o->spool_dir : getenv("TMPDIR");
		chunk_sink cs = {f, 0, f->base};
		if ((rc = open_spool(f, dir && *dir ? dir : "/tmp", err)) < 0 ||
		    (rc = spool_write(&cs, f->first.data, (size_t)f->base, err)) < 0)
			goto fail;
	}
	trs__buf_free(&f->first);
	f->prefix = f->base;
	if (!(f->chunk_done = trs__calloc(f->nchunks + 1, 1, err))) {
		rc = TRS_ENOMEM;
		goto fail;
	}
	if (conns > f->nchunks)
		conns = (unsigned int)f->nchunks;
	if (!(f->threads = trs__calloc(conns ? conns : 1, sizeof(*f->threads), err))) {
		rc = TRS_ENOMEM;
		goto fail;
	}
	pthread_mutex_lock(&f->mu);
	for (unsigned int i = 0; i < conns; i++) {
		if (pthread_create(&f->threads[i], NULL, worker, f) != 0)
			break;
		f->nthreads++;
		f->running++;
	}
	if (f->nthreads == 0 || f->nchunks == 0)
		f->t_done = trs__now();
	pthread_mutex_unlock(&f->mu);
	if (f->nthreads == 0 && f->nchunks) {
		rc = trs__error_set(err, TRS_ENOMEM, "archive %s: cannot start download threads", TRS__SHORT(f->name));
		goto fail;
	}
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.name = f->name;
	src.read = fetch_read;
	src.rewind = fetch_rewind;
	src.userdata = f;
	src.compressed_size = f->size;
	*source = src;
	*out = f;
	trs__log(f->ctx, TRS_LOG_DEBUG, "downloading archive", "archive", f->name, "spool", f->mem ? "memory" : "file", NULL);
	return 0;
fail:
	trs_fetch_free(f);
	return rc;
}

TRS_EXTERN(int) trs_fetch_finish(trs_fetch *f, trs_error *err)
{
	pthread_mutex_lock(&f->mu);
	while (f->running > 0)
		pthread_cond_wait(&f->cv, &f->mu);
	int rc = 0;
	if (f->failed) {
		if (err)
			*err = f->error;
		rc = f->error.code;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

TRS_EXTERN(uint64_t) trs_fetch_size(const trs_fetch *f)
{
	return f->size;
}

TRS_EXTERN(double) trs_fetch_seconds(const trs_fetch *f)
{
	trs_fetch *m = (trs_fetch *)f;
	pthread_mutex_lock(&m->mu);
	double end = f->t_done > 0 ? f->t_done : trs__now();
	pthread_mutex_unlock(&m->mu);
	return end - f->t0;
}

TRS_EXTERN(void) trs_fetch_free(trs_fetch *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	for (unsigned int i = 0; i < f->nthreads; i++)
		pthread_join(f->threads[i], NULL);
	if (f->fd >= 0)
		close(f->fd);
	free(f->threads);
	free(f->chunk_done);
	free(f->mem);
	trs__buf_free(&f->first);
	free(f->bucket);
	free(f->key);
	free(f->name);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

TRS_EXTERN(int) trs_process_from_storage(trs_ctx *ctx, trs_storage *dest, trs_storage *source, const char *bucket,
					 const char *key, const trs_fetch_options *fetch_options,
					 const trs_process_options *options, trs_report **report, trs_error *err)
{
	return trs__process_from_storage_shared(ctx, dest, source, bucket, key, fetch_options, options, NULL, report,
						err);
}

int trs__process_from_storage_shared(trs_ctx *ctx, trs_storage *dest, trs_storage *source, const char *bucket,
				     const char *key, const trs_fetch_options *fetch_options,
				     const trs_process_options *options, trs__budget *shared, trs_report **report,
				     trs_error *err)
{
	*report = NULL;
	trs_process_options po = TRS_PROCESS_OPTIONS_INIT;
	if (options && options->version >= 2)
		po = *options;
	else if (options)
		po.dry_run = options->dry_run; /* version 1 has nothing else */
	po.archive_storage = source;
	po.archive_bucket = bucket;
	po.archive_key = key;
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	trs_fetch *f = NULL;
	int rc = trs_fetch_start(&f, source, bucket, key, ctx, fetch_options, &src, err);
	if (rc < 0)
		return rc;
	rc = trs__process_shared(ctx, dest, &src, &po, shared, report, err);
	if (rc == 0)
		rc = trs_fetch_finish(f, err);
	if (*report)
		(*report)->seconds_download = trs_fetch_seconds(f);
	trs_fetch_free(f);
	return rc;
}
