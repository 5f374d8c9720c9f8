/* SPDX-License-Identifier: Apache-2.0 */
/*
 * staging_backend: a custom storage backend that stages early objects.
 * Restores an archive into DIR/<bucket>/<key> (bytes only), and takes the
 * objects that come before the manifest - the source side writes the
 * manifest last - through the storage vtable's version-4 stage_* members:
 * they are written once, into a staging directory under DIR, and renamed
 * into place when the manifest names them. The restore is then one pass
 * over the archive whatever its size, with nothing held in memory but the
 * pipeline's budget.
 *
 *     cc staging_backend.c $(pkg-config --cflags --libs libtrs) -o staging_backend
 *     ./staging_backend data/example.tar.zst restored eu-west-1
 *
 * What it shows (docs/api.md, "Staging early objects"):
 * - TRS_STORAGE_STAGE_EARLY and all six stage_* members, with a stage struct
 *   whose first member is a trs_storage_stage;
 * - stage_create hands the library an fd to write; stage_publish is called
 *   once per target after the library checked size and MD5, and the
 *   library copies to further targets with copy();
 * - small early objects come back through put() from the spool file that
 *   stage_spool made.
 * It prints what went where and the number of passes over the archive.
 *
 * Exit status: 0 all written, 1 some objects failed, 2 usage, 3 unreadable.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <trs.h>
#include <trs/sys/storage.h>

#define ROOT_MAX 2048

typedef struct dir_backend {
	trs_storage parent; /* first: the library sees a trs_storage */
	char root[ROOT_MAX];
	atomic_ulong puts, staged, published, spools;
} dir_backend;

typedef struct dir_stage {
	trs_storage_stage parent; /* first: the library sees a trs_storage_stage */
	char dir[ROOT_MAX + 32];
} dir_stage;

static int fail(trs_error *err, int code, const char *what, const char *path)
{
	err->code = code;
	/* The reason before the path, so that a long path cut at the end of the message leaves it. */
	if (snprintf(err->message, sizeof(err->message), "%s: %s: %s", what, strerror(errno), path) >=
	    (int)sizeof(err->message))
		err->message[sizeof(err->message) - 2] = '~';
	return code;
}

/* ROOT/bucket/key, its parent directories made. */
static int target_path(dir_backend *b, const trs_put_request *req, char *path, size_t size, trs_error *err)
{
	if (strstr(req->key, "..") || req->key[0] == '/' || strchr(req->bucket, '/'))
		return fail(err, TRS_EINVAL, "refusing the key", req->key);
	if ((size_t)snprintf(path, size, "%s/%s/%s", b->root, req->bucket, req->key) >= size)
		return fail(err, TRS_EINVAL, "key too long", req->key);
	for (char *p = path + strlen(b->root) + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		int rc = mkdir(path, 0755);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return fail(err, TRS_EIO, "cannot create the directory of", path);
	}
	return 0;
}

/* Read the whole body into a temporary file, then rename it into place. */
static int dir_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	dir_backend *b = (dir_backend *)self;
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	int rc = target_path(b, req, path, sizeof(path), err);
	if (rc < 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(err, TRS_EIO, "cannot create", tmp);
	char buf[65536];
	int64_t n;
	while ((n = body->read(body->self, buf, sizeof(buf), err)) > 0)
		if (write(fd, buf, (size_t)n) != n) {
			rc = fail(err, TRS_EIO, "cannot write", tmp);
			break;
		}
	if (n < 0)
		rc = (int)n; /* the body failed (an integrity check): drop the object, pass the error on */
	if (close(fd) < 0 && rc == 0)
		rc = fail(err, TRS_EIO, "cannot write", tmp);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = fail(err, TRS_EIO, "cannot move into place", path);
	if (rc < 0)
		unlink(tmp);
	else
		atomic_fetch_add(&b->puts, 1);
	return rc;
}

/* Further targets of a staged object: a hard link to the first one's file. */
static int dir_copy(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
		    trs_error *err)
{
	dir_backend *b = (dir_backend *)self;
	char src[PATH_MAX], path[PATH_MAX];
	snprintf(src, sizeof(src), "%s/%s/%s", b->root, src_bucket, src_key);
	int rc = target_path(b, req, path, sizeof(path), err);
	if (rc == 0 && (unlink(path) == 0 || errno == ENOENT) && link(src, path) < 0)
		rc = fail(err, TRS_EIO, "cannot link", path);
	return rc;
}

static int dir_stage_open(trs_storage *self, trs_storage_stage **out, trs_error *err)
{
	dir_backend *b = (dir_backend *)self;
	dir_stage *st = calloc(1, sizeof(*st));
	if (!st)
		return fail(err, TRS_ENOMEM, "out of memory for", "a stage");
	snprintf(st->dir, sizeof(st->dir), "%s/.staging-%ld", b->root, (long)getpid());
	if (mkdir(st->dir, 0700) < 0) {
		int rc = fail(err, TRS_EIO, "cannot create the staging directory", st->dir);
		free(st);
		return rc;
	}
	*out = &st->parent; /* the library sets parent.storage */
	return 0;
}

static void staged_path(const dir_stage *st, uint64_t index, char *path, size_t size)
{
	snprintf(path, size, "%s/%llu", st->dir, (unsigned long long)index);
}

static int dir_stage_create(trs_storage_stage *stage, uint64_t index, trs_error *err)
{
	dir_stage *st = (dir_stage *)stage;
	char path[PATH_MAX];
	staged_path(st, index, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(err, TRS_EIO, "cannot stage", path);
	atomic_fetch_add(&((dir_backend *)stage->storage)->staged, 1);
	return fd;
}

static int dir_stage_publish(trs_storage_stage *stage, uint64_t index, const trs_put_request *req, uint64_t size,
			     const char *md5_hex, const trs_write_condition *cond, trs_error *err)
{
	dir_stage *st = (dir_stage *)stage;
	dir_backend *b = (dir_backend *)stage->storage;
	char from[PATH_MAX], path[PATH_MAX];
	staged_path(st, index, from, sizeof(from));
	int rc = target_path(b, req, path, sizeof(path), err);
	if (rc == 0 && rename(from, path) < 0)
		rc = fail(err, TRS_EIO, "cannot move into place", path);
	if (rc == 0)
		atomic_fetch_add(&b->published, 1);
	(void)size, (void)md5_hex; /* checked by the library already */
	(void)cond;                /* no put_if_newer here, so always NULL */
	return rc;
}

static void dir_stage_discard(trs_storage_stage *stage, uint64_t index)
{
	char path[PATH_MAX];
	staged_path((dir_stage *)stage, index, path, sizeof(path));
	unlink(path);
}

static int dir_stage_spool(trs_storage_stage *stage, char *where, size_t where_size, trs_error *err)
{
	dir_stage *st = (dir_stage *)stage;
	snprintf(where, where_size, "%s", st->dir);
	int fd = open(st->dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600); /* a file with no name */
	if (fd < 0)
		return fail(err, TRS_EIO, "cannot create a spool file in", st->dir);
	atomic_fetch_add(&((dir_backend *)stage->storage)->spools, 1);
	return fd;
}

static void dir_stage_close(trs_storage_stage *stage)
{
	dir_stage *st = (dir_stage *)stage;
	/* Left over: objects no target wanted, or whose publish failed. */
	DIR *d = opendir(st->dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(st->dir);
	free(st);
}

static void dir_free(trs_storage *self)
{
	free(self);
}

static int dir_backend_new(trs_storage **out, const char *root, trs_error *err)
{
	dir_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return fail(err, TRS_ENOMEM, "out of memory for", "the backend");
	if (trs_storage_init_backend(&b->parent, 4) < 0) { /* the stage_* members came with version 4 */
		free(b);
		err->code = TRS_EINVAL;
		snprintf(err->message, sizeof(err->message), "this libtrs predates storage version 4");
		return TRS_EINVAL;
	}
	size_t len = strlen(root);
	if (len >= sizeof(b->root)) {
		free(b);
		errno = ENAMETOOLONG;
		return fail(err, TRS_EINVAL, "directory name too long:", root);
	}
	memcpy(b->root, root, len + 1);
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		free(b);
		return fail(err, TRS_EIO, "cannot create", root);
	}
	b->parent.name = "staging-dir";
	b->parent.put = dir_put;
	b->parent.copy = dir_copy;
	b->parent.free = dir_free;
	b->parent.caps = TRS_STORAGE_LOCAL | TRS_STORAGE_STAGE_EARLY;
	b->parent.stage_open = dir_stage_open;
	b->parent.stage_create = dir_stage_create;
	b->parent.stage_publish = dir_stage_publish;
	b->parent.stage_discard = dir_stage_discard;
	b->parent.stage_spool = dir_stage_spool;
	b->parent.stage_close = dir_stage_close;
	*out = &b->parent;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s ARCHIVE.tar.zst DIR [REGION]\n", argv[0]);
		return 2;
	}
	trs_error err = TRS_ERROR_INIT;
	trs_ctx_options opts = TRS_CTX_OPTIONS_INIT;
	opts.region = argc == 4 ? argv[3] : NULL; /* NULL: AWS_REGION, AWS_DEFAULT_REGION */
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.path = argv[1];
	trs_ctx *ctx = NULL;
	trs_storage *dir = NULL;
	trs_report *report = NULL;
	int status = 2;
	if (trs_ctx_new(&ctx, &opts, &err) < 0 || dir_backend_new(&dir, argv[2], &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		goto out;
	}
	int rc = trs_process(ctx, dir, &src, NULL, &report, &err);
	dir_backend *b = (dir_backend *)dir;
	if (report)
		printf("objects_written=%llu objects_failed=%llu passes=%u staged=%lu published=%lu puts=%lu "
		       "spool_files=%lu\n",
		       (unsigned long long)report->objects_written, (unsigned long long)report->objects_failed,
		       report->passes, atomic_load(&b->staged), atomic_load(&b->published), atomic_load(&b->puts),
		       atomic_load(&b->spools));
	if (rc == 0) {
		status = 0;
	} else {
		fprintf(stderr, "%s: %s\n", trs_strerror(rc), err.message);
		status = rc == TRS_EPARTIAL ? 1 : rc == TRS_EINVAL ? 2 : 3;
	}
out:
	trs_report_free(report);
	trs_storage_free(dir);
	trs_ctx_free(ctx);
	return status;
}
