/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "fs" storage backend: a local directory standing in for S3.
 *
 * DIR/<bucket>/<key> holds the bytes; the tags, class and metadata are JSON
 * in the file's extended attribute user.trs.meta, or, on filesystems without
 * user xattrs, in a sidecar file DIR/.trs-meta/<bucket>/<key>. Every path is
 * walked component by component with openat(O_NOFOLLOW) (lib/storage/fs_dirs.c), so
 * neither a hostile key nor a symlink planted in DIR can make us write
 * outside it. An object is written to an unnamed O_TMPFILE (or an O_EXCL
 * temporary name) and linked into place, with its metadata, only once the
 * body was read to its end: a reader never sees half an object.
 */
#include "digest.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_dirs.h"
#include "storage_fs.h"
#include <openssl/evp.h>

#define COPY_BUF (256u * 1024)

int trs__fs_check_bucket(const char *bucket, trs_error *err)
{
	if (!*bucket || bucket[0] == '.' || strchr(bucket, '/') || strlen(bucket) > 255)
		return trs__error_set(err, TRS_EUNSAFE,
				      "bucket name '%s' cannot be a directory name here (empty, starts with '.', or has '/')",
				      TRS__SHORT(bucket));
	return 0;
}

/* Every '/'-separated segment must be a plain name: no "", ".", "..". */
int trs__fs_check_key(const char *bucket, const char *key, trs_error *err)
{
	const char *why = NULL;
	if (!*key)
		why = "it is empty";
	else if (key[0] == '/')
		why = "it is absolute";
	for (const char *seg = key; !why && *seg;) {
		const char *end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		if (len == 0)
			why = "it has an empty path segment ('//' or a trailing '/')";
		else if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			why = "it has a '.' or '..' segment that would escape the directory";
		else if (len > 255)
			why = "a path segment is longer than 255 bytes";
		if (!end)
			break;
		seg = end + 1;
		if (!*seg)
			why = "it ends with '/'";
	}
	if (why)
		return trs__error_set(err, TRS_EUNSAFE, "key '%s' in bucket %s is refused for a local directory: %s",
				      TRS__SHORT(key), bucket, why);
	return 0;
}

/* A temporary name beside the target in dirfd: O_EXCL, never reused. */
int trs__fs_open_temp(int dirfd, char *name, size_t size, mode_t mode)
{
	static unsigned long counter;
	for (int attempt = 0; attempt < 100; attempt++) {
		unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
		snprintf(name, size, ".trs-tmp-%ld-%lu-%lx", (long)getpid(), n, (unsigned long)random());
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

int trs__fs_exists_as_dir(int dirfd, const char *base)
{
	struct stat st;
	return fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int trs__fs_prefix_conflict(const trs_put_request *req, trs_error *err)
{
	return trs__error_set(err, TRS_EEXISTS,
			      "key %s in bucket %s: a directory already stands there (another key uses it as a "
			      "prefix), so it cannot be a file",
			      TRS__SHORT(req->key), req->bucket);
}

/* Replace dirfd/base with a file that has no name to rename (an O_TMPFILE): link it under a
 * temporary name beside the target, then rename that over it. */
int trs__fs_link_over(int src_dirfd, const char *src_name, int link_flags, int dirfd, const char *base,
		      const trs_put_request *req, const char *root, trs_error *err)
{
	char name[96];
	for (int attempt = 0;; attempt++) {
		snprintf(name, sizeof(name), ".trs-tmp-%ld-%d-%lx", (long)getpid(), attempt, (unsigned long)random());
		if (linkat(src_dirfd, src_name, dirfd, name, link_flags) == 0)
			break;
		if (errno != EEXIST || attempt > 100)
			return trs__error_errno(err, errno, "cannot link %s/%s in %s", req->bucket,
						TRS__SHORT(req->key), TRS__SHORT(root));
	}
	if (renameat(dirfd, name, dirfd, base) < 0) {
		int saved = errno;
		unlinkat(dirfd, name, 0);
		return trs__error_errno(err, saved, "cannot move %s/%s into place in %s", req->bucket,
					TRS__SHORT(req->key), TRS__SHORT(root));
	}
	return 0;
}

/* Make the finished file visible at dirfd/base, replacing what was there. */
static int publish(int dirfd, int fd, const char *tmp, const char *base, const trs_put_request *req, const char *root,
		   trs_error *err)
{
	if (!tmp) {
		/* An O_TMPFILE: link it in. A new key costs one directory operation. */
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, dirfd, base, AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno != EEXIST)
			return trs__error_errno(err, errno, "cannot link %s/%s into place in %s", req->bucket,
						TRS__SHORT(req->key), TRS__SHORT(root));
		if (trs__fs_exists_as_dir(dirfd, base))
			return trs__fs_prefix_conflict(req, err);
		return trs__fs_link_over(AT_FDCWD, proc, AT_SYMLINK_FOLLOW, dirfd, base, req, root, err);
	}
	if (renameat(dirfd, tmp, dirfd, base) < 0) {
		int saved = errno;
		if (saved == EISDIR || saved == ENOTEMPTY || saved == EEXIST)
			return trs__fs_prefix_conflict(req, err);
		return trs__error_errno(err, saved, "cannot move %s/%s into place in %s", req->bucket,
					TRS__SHORT(req->key), TRS__SHORT(root));
	}
	return 0;
}

/* The bytes of a body held in memory, and their metadata, into the new file fd. */
static int fill_direct(fs_storage *fs, int fd, const void *data, size_t len, const trs_put_request *req,
		       const char *md5_hex, trs_error *err)
{
	int rc = 0;
	if (trs__write_all(fd, data, len) < 0) {
		rc = trs__error_errno(err, errno, "cannot write %s/%s in %s", req->bucket, TRS__SHORT(req->key),
				      TRS__SHORT(fs->root));
		if (err && errno == ENOSPC)
			snprintf(err->message + strlen(err->message), sizeof(err->message) - strlen(err->message),
				 " (free some space and run again)");
	}
	if (rc == 0)
		rc = trs__fs_attach_meta(fs, fd, -1, NULL, req, len, md5_hex, err);
	return rc;
}

static int lock_new(int fd)
{
	int rc;
	do
		rc = flock(fd, LOCK_EX);
	while (rc < 0 && errno == EINTR);
	return rc;
}

/*
 * put_direct under a condition (lib/storage/fs_guard.c has the protocol): a
 * new key is created at its final name and locked before a byte goes in;
 * an existing one is locked, compared, and replaced through a temporary.
 */
static int direct_if_newer(fs_storage *fs, int dirfd, const char *base, const trs_put_request *req, const void *data,
			   size_t len, const char *md5_hex, const trs_write_condition *cond, int *stale, trs_error *err)
{
	for (int round = 0; round < 100; round++) {
		int sidecar = __atomic_load_n(&fs->sidecar, __ATOMIC_RELAXED);
		if (!sidecar) {
			int fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
			if (fd >= 0) {
				/* Replaced before we held it (a rename over it left our file without a link):
				 * compare with what stands there. Only our own code links a file it creates. */
				struct stat st;
				if (lock_new(fd) < 0 || fstat(fd, &st) < 0 || st.st_nlink == 0) {
					close(fd);
					continue;
				}
				int rc = fill_direct(fs, fd, data, len, req, md5_hex, err);
				if (rc < 0)
					unlinkat(dirfd, base, 0); /* still ours: we hold its lock */
				close(fd);
				return rc;
			}
			if (errno != EEXIST) {
				*stale = errno == ENOENT;
				return trs__error_errno(err, errno, "cannot create %s/%s in %s", req->bucket,
							TRS__SHORT(req->key), TRS__SHORT(fs->root));
			}
			if (trs__fs_exists_as_dir(dirfd, base))
				return trs__fs_prefix_conflict(req, err);
		}
		int lfd, created, rc;
		if ((rc = trs__fs_key_lock(dirfd, base, sidecar, &lfd, &created, req, err)) < 0)
			return rc;
		if (lfd == -1)
			continue;
		rc = created || lfd == TRS__FS_UNLOCKABLE ? TRS_WRITTEN : trs__fs_key_decide(fs, lfd, req, cond, err);
		if (rc == TRS_WRITTEN) {
			char tmp[96];
			int fd = trs__fs_open_temp(dirfd, tmp, sizeof(tmp), 0666);
			if (fd < 0)
				rc = trs__error_errno(err, errno, "cannot create %s/%s in %s", req->bucket,
						      TRS__SHORT(req->key), TRS__SHORT(fs->root));
			else if ((rc = fill_direct(fs, fd, data, len, req, md5_hex, err)) == 0 && close(fd) < 0)
				rc = trs__error_errno(err, errno, "cannot finish %s/%s in %s", req->bucket,
						      TRS__SHORT(req->key), TRS__SHORT(fs->root));
			else if (rc < 0)
				close(fd);
			if (rc == 0 && renameat(dirfd, tmp, dirfd, base) < 0)
				rc = trs__error_errno(err, errno, "cannot move %s/%s into place in %s", req->bucket,
						      TRS__SHORT(req->key), TRS__SHORT(fs->root));
			if (rc < 0 && fd >= 0)
				unlinkat(dirfd, tmp, 0);
		}
		if (rc < 0 && created)
			unlinkat(dirfd, base, 0);
		if (lfd >= 0)
			close(lfd);
		return rc;
	}
	return trs__error_set(err, TRS_EIO, "%s/%s: the key kept changing; run again", req->bucket,
			      TRS__SHORT(req->key));
}

/*
 * A body held in memory cannot fail half-way, and its MD5 can be checked
 * before a byte is written: create the file at its final name, like tar
 * does (one directory operation per object), instead of a temporary and a
 * rename. Replacing an existing object still goes through a temporary, so
 * a reader sees the old version or the new one. A crash in the middle of
 * the write can leave a short new file (without metadata, so with no
 * version); the restore that is run again (the queue's redelivery, or the
 * user) replaces it.
 */
static int put_direct(fs_storage *fs, trs__fsdir *d, const char *base, const trs_put_request *req, trs_body *body,
		      const trs_write_condition *cond, trs_error *err)
{
	const void *data;
	size_t len;
	trs_body_memory(body, &data, &len);
	int dirfd = trs__fsdir_fd(d);
	unsigned char digest[16];
	char md5_hex[33];
	int rc = 0;
	int stale = 0;
	const char *checked = trs_body_verified_md5(body);
	if (checked) {
		snprintf(md5_hex, sizeof(md5_hex), "%s", checked); /* the pipeline hashed these bytes already */
	} else if (!EVP_Digest(data, len, digest, NULL, trs__md5_md(), NULL)) {
		rc = trs__error_set(err, TRS_ENOMEM, "cannot compute an MD5");
		goto out;
	} else {
		trs__hex(digest, 16, md5_hex);
	}
	if (req->content_md5_hex && *req->content_md5_hex && strcasecmp(req->content_md5_hex, md5_hex) != 0) {
		rc = trs__error_set(err, TRS_EINTEGRITY, "%s/%s: the bytes have MD5 %s, not %s as the request says; not written",
				    req->bucket, TRS__SHORT(req->key), md5_hex, req->content_md5_hex);
		goto out;
	}
	if (cond) {
		rc = direct_if_newer(fs, dirfd, base, req, data, len, md5_hex, cond, &stale, err);
		goto out;
	}
	char tmpbuf[96];
	const char *tmp = NULL;
	int fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd < 0 && errno == EEXIST) {
		if (trs__fs_exists_as_dir(dirfd, base)) {
			rc = trs__fs_prefix_conflict(req, err);
			goto out;
		}
		fd = trs__fs_open_temp(dirfd, tmpbuf, sizeof(tmpbuf), 0666);
		tmp = tmpbuf;
	}
	if (fd < 0) {
		int saved = errno;
		trs__fsdir_release(fs->dirs, d, saved == ENOENT);
		return trs__error_errno(err, saved, "cannot create %s/%s in %s", req->bucket, TRS__SHORT(req->key),
					TRS__SHORT(fs->root));
	}
	rc = fill_direct(fs, fd, data, len, req, md5_hex, err);
	if (close(fd) < 0 && rc == 0)
		rc = trs__error_errno(err, errno, "cannot finish %s/%s in %s", req->bucket, TRS__SHORT(req->key),
				      TRS__SHORT(fs->root));
	if (rc == 0 && tmp)
		rc = publish(dirfd, -1, tmp, base, req, fs->root, err);
	if (rc < 0)
		unlinkat(dirfd, tmp ? tmp : base, 0); /* nothing half-written stays behind */
out:
	trs__fsdir_release(fs->dirs, d, stale);
	return rc;
}

int trs__fs_key_dir(fs_storage *fs, const trs_put_request *req, trs__fsdir **d, const char **base, trs_error *err)
{
	int rc;
	if ((rc = trs__fs_check_bucket(req->bucket, err)) < 0 || (rc = trs__fs_check_key(req->bucket, req->key, err)) < 0)
		return rc;
	return trs__fsdir_get(fs->dirs, "", req->bucket, req->key, 1, d, base, err);
}

/* The new file fd (named tmp, or an O_TMPFILE when tmp is NULL) into place when nothing newer stands there. */
static int publish_if_newer(fs_storage *fs, int dirfd, int fd, const char *tmp, const char *base,
			    const trs_put_request *req, uint64_t size, const char *md5, const trs_write_condition *cond,
			    trs_error *err)
{
	int due = trs__fs_meta_to_file(fs, fd, -1, NULL, req, size, md5, err);
	if (due < 0)
		return due;
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	trs__fs_finished f = {tmp ? dirfd : AT_FDCWD, tmp ? tmp : proc, tmp ? 0 : AT_SYMLINK_FOLLOW, !tmp, due, size, md5};
	return trs__fs_publish_if_newer(fs, dirfd, base, &f, req, cond, err);
}

static int put_common(trs_storage *self, const trs_put_request *req, trs_body *body, const trs_write_condition *cond,
		      trs_error *err)
{
	fs_storage *fs = (fs_storage *)self;
	int rc;
	const char *base;
	trs__fsdir *d;
	if ((rc = trs__fs_key_dir(fs, req, &d, &base, err)) < 0)
		return rc;
	int dirfd = trs__fsdir_fd(d);
	char tmpbuf[96];
	const char *tmp = NULL;
	int fd = -1;
	const void *data;
	size_t len;
	if (trs_body_memory(body, &data, &len))
		return put_direct(fs, d, base, req, body, cond, err);
	if (!__atomic_load_n(&fs->no_tmpfile, __ATOMIC_RELAXED)) {
		fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
		if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
			__atomic_store_n(&fs->no_tmpfile, 1, __ATOMIC_RELAXED);
	}
	if (fd < 0 && __atomic_load_n(&fs->no_tmpfile, __ATOMIC_RELAXED)) {
		fd = trs__fs_open_temp(dirfd, tmpbuf, sizeof(tmpbuf), 0666);
		tmp = tmpbuf;
	}
	if (fd < 0) {
		int saved = errno;
		trs__fsdir_release(fs->dirs, d, saved == ENOENT);
		return trs__error_errno(err, saved, "cannot create a file for %s/%s in %s", req->bucket,
					TRS__SHORT(req->key), TRS__SHORT(fs->root));
	}
	/* Like S3, the backend computes the MD5 itself: it is the object's etag,
	 * and a request that names one must match it (S3 answers BadDigest). */
	const char *vouched = trs_body_verified_md5(body);
	char *buf = trs__malloc(COPY_BUF, err);
	EVP_MD_CTX *md5 = EVP_MD_CTX_new();
	uint64_t written = 0;
	rc = buf && md5 && EVP_DigestInit_ex(md5, trs__md5_md(), NULL) ? 0 : trs__error_set(err, TRS_ENOMEM, "out of memory");
	while (rc == 0) {
		int64_t n = body->read(body->self, buf, COPY_BUF, err);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		if (trs__write_all(fd, buf, (size_t)n) < 0) {
			rc = trs__error_errno(err, errno, "cannot write %s/%s in %s", req->bucket, TRS__SHORT(req->key),
					      TRS__SHORT(fs->root));
			if (err && errno == ENOSPC)
				snprintf(err->message + strlen(err->message), sizeof(err->message) - strlen(err->message),
					 " (free some space and run again)");
		}
		if (!vouched)
			EVP_DigestUpdate(md5, buf, (size_t)n);
		written += (uint64_t)n;
	}
	free(buf);
	char md5_hex[33] = "";
	if (rc == 0) {
		unsigned char digest[16];
		if (vouched) {
			snprintf(md5_hex, sizeof(md5_hex), "%s", vouched); /* checked, or vouched for, by the library */
		} else {
			EVP_DigestFinal_ex(md5, digest, NULL);
			trs__hex(digest, 16, md5_hex);
		}
		if (req->content_md5_hex && *req->content_md5_hex && strcasecmp(req->content_md5_hex, md5_hex) != 0)
			rc = trs__error_set(err, TRS_EINTEGRITY, "%s/%s: the bytes have MD5 %s, not %s as the request says; not written",
					    req->bucket, TRS__SHORT(req->key), md5_hex, req->content_md5_hex);
	}
	EVP_MD_CTX_free(md5);
	if (rc == 0 && tmp && trs__fs_exists_as_dir(dirfd, base))
		rc = trs__fs_prefix_conflict(req, err);
	if (rc == 0 && cond) {
		rc = publish_if_newer(fs, dirfd, fd, tmp, base, req, written, md5_hex, cond, err);
	} else if (rc == 0) {
		rc = trs__fs_attach_meta(fs, fd, -1, NULL, req, written, md5_hex, err);
		if (rc == 0)
			rc = publish(dirfd, fd, tmp, base, req, fs->root, err);
	}
	if (close(fd) < 0 && rc == 0)
		rc = trs__error_errno(err, errno, "cannot finish %s/%s in %s", req->bucket, TRS__SHORT(req->key),
				      TRS__SHORT(fs->root));
	if (rc != TRS_WRITTEN && tmp)
		unlinkat(dirfd, tmp, 0); /* failed, or not written: something newer (or the same) stands there */
	trs__fsdir_release(fs->dirs, d, 0);
	return rc;
}

static int fs_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	return put_common(self, req, body, NULL, err);
}

static int fs_put_if_newer(trs_storage *self, const trs_put_request *req, const trs_write_condition *cond,
			   trs_body *body, trs_error *err)
{
	return put_common(self, req, body, cond, err);
}

static int open_object(fs_storage *fs, const char *bucket, const char *key, trs_error *err)
{
	int rc;
	if ((rc = trs__fs_check_bucket(bucket, err)) < 0 || (rc = trs__fs_check_key(bucket, key, err)) < 0)
		return rc;
	const char *base;
	trs__fsdir *d;
	if ((rc = trs__fsdir_get(fs->dirs, "", bucket, key, 0, &d, &base, err)) < 0)
		return rc == TRS_EEXISTS ? trs__error_set(err, TRS_ENOTFOUND, "no object %s/%s in %s", bucket,
							  TRS__SHORT(key), TRS__SHORT(fs->root)) : rc;
	int fd = openat(trs__fsdir_fd(d), base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int saved = errno;
	trs__fsdir_release(fs->dirs, d, fd < 0 && saved == ENOENT);
	if (fd < 0) {
		if (saved == ENOENT)
			return trs__error_set(err, TRS_ENOTFOUND, "no object %s/%s in %s", bucket, TRS__SHORT(key),
					      TRS__SHORT(fs->root));
		return trs__error_errno(err, saved, "cannot open %s/%s in %s", bucket, TRS__SHORT(key),
					TRS__SHORT(fs->root));
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return trs__error_set(err, TRS_ENOTFOUND, "no object %s/%s in %s (not a regular file)", bucket,
				      TRS__SHORT(key), TRS__SHORT(fs->root));
	}
	return fd;
}

static int fs_get(trs_storage *self, const char *bucket, const char *key, uint64_t offset, uint64_t length,
		  trs_sink_fn sink, void *ud, trs_error *err)
{
	fs_storage *fs = (fs_storage *)self;
	int fd = open_object(fs, bucket, key, err);
	if (fd < 0)
		return fd;
	char *buf = trs__malloc(COPY_BUF, err);
	int rc = buf ? 0 : TRS_ENOMEM;
	while (rc == 0 && length > 0) {
		size_t want = length < COPY_BUF ? (size_t)length : COPY_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = trs__error_errno(err, errno, "cannot read %s/%s in %s", bucket, TRS__SHORT(key),
					      TRS__SHORT(fs->root));
			break;
		}
		if (n == 0)
			break;
		rc = sink(ud, buf, (size_t)n, err);
		offset += (uint64_t)n;
		length -= (uint64_t)n;
	}
	free(buf);
	close(fd);
	return rc;
}

static int fs_head(trs_storage *self, const char *bucket, const char *key, trs_object_info *info, trs_error *err)
{
	fs_storage *fs = (fs_storage *)self;
	int fd = open_object(fs, bucket, key, err);
	if (fd < 0)
		return fd;
	struct stat st;
	fstat(fd, &st);
	info->size = (uint64_t)st.st_size;
	info->mtime = (int64_t)st.st_mtime;
	int rc = trs__fs_read_meta(fs, fd, bucket, key, info, err);
	close(fd);
	return rc;
}

typedef struct {
	int fd;
	uint64_t offset;
	const char *what;
} file_body;

static int64_t file_body_read(void *self, void *buf, size_t len, trs_error *err)
{
	file_body *fb = self;
	ssize_t n;
	do
		n = pread(fb->fd, buf, len, (off_t)fb->offset);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return trs__error_errno(err, errno, "cannot read %s", TRS__SHORT(fb->what));
	fb->offset += (uint64_t)n;
	return n;
}

static int copy_common(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
		       const trs_write_condition *cond, trs_error *err)
{
	fs_storage *fs = (fs_storage *)self;
	int fd = open_object(fs, src_bucket, src_key, err);
	if (fd < 0)
		return fd;
	struct stat st;
	fstat(fd, &st);
	file_body fb = {fd, 0, src_key};
	trs_body body = {file_body_read, &fb, (uint64_t)st.st_size};
	trs_put_request r = *req;
	r.size = (uint64_t)st.st_size;
	int rc = put_common(self, &r, &body, cond, err);
	close(fd);
	return rc;
}

static int fs_copy(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
		   trs_error *err)
{
	return copy_common(self, src_bucket, src_key, req, NULL, err);
}

static int fs_copy_if_newer(trs_storage *self, const char *src_bucket, const char *src_key,
			    const trs_put_request *req, const trs_write_condition *cond, trs_error *err)
{
	return copy_common(self, src_bucket, src_key, req, cond, err);
}

static int fs_del(trs_storage *self, const char *bucket, const char *key, trs_error *err)
{
	fs_storage *fs = (fs_storage *)self;
	int rc;
	if ((rc = trs__fs_check_bucket(bucket, err)) < 0 || (rc = trs__fs_check_key(bucket, key, err)) < 0)
		return rc;
	const char *tops[2] = {"", TRS__FS_META_DIR};
	for (int i = 0; i < 2; i++) {
		const char *base;
		trs__fsdir *d;
		trs_error ignored = TRS_ERROR_INIT;
		if (trs__fsdir_get(fs->dirs, tops[i], bucket, key, 0, &d, &base, &ignored) < 0)
			continue; /* deleting what is not there succeeds */
		int failed = unlinkat(trs__fsdir_fd(d), base, 0) < 0 && errno != ENOENT && i == 0;
		int saved = errno;
		trs__fsdir_release(fs->dirs, d, 0);
		if (failed)
			return trs__error_errno(err, saved, "cannot delete %s/%s in %s", bucket, TRS__SHORT(key),
						TRS__SHORT(fs->root));
	}
	return 0;
}

static void fs_free(trs_storage *self)
{
	fs_storage *fs = (fs_storage *)self;
	trs__fsdirs_free(fs->dirs);
	if (fs->root_fd >= 0)
		close(fs->root_fd);
	free(fs->root);
	free(fs);
}

/* mkdir -p for the root itself (the only path we resolve the ordinary way). */
static int make_root(const char *dir)
{
	char *copy = strdup(dir);
	if (!copy)
		return -1;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			free(copy);
			return -1;
		}
		*p = '/';
	}
	int rc = mkdir(copy, 0755) < 0 && errno != EEXIST ? -1 : 0;
	free(copy);
	return rc;
}

TRS_EXTERN(int) trs_storage_fs_new(trs_storage **out, trs_ctx *ctx, const char *dir, trs_error *err)
{
	*out = NULL;
	if (!dir || !*dir)
		return trs__error_set(err, TRS_EINVAL, "the fs storage needs a directory (file://DIR)");
	fs_storage *fs = trs__calloc(1, sizeof(*fs), err);
	if (!fs)
		return TRS_ENOMEM;
	fs->root_fd = -1;
	trs_storage_init_backend(&fs->parent, TRS_STORAGE_VERSION);
	fs->parent.name = "fs";
	fs->parent.put = fs_put;
	fs->parent.get = fs_get;
	fs->parent.head = fs_head;
	fs->parent.copy = fs_copy;
	fs->parent.del = fs_del;
	fs->parent.free = fs_free;
	fs->parent.put_if_newer = fs_put_if_newer;
	fs->parent.copy_if_newer = fs_copy_if_newer;
	fs->parent.stage_open = trs__fs_stage_open;
	fs->parent.stage_create = trs__fs_stage_create;
	fs->parent.stage_publish = trs__fs_stage_publish;
	fs->parent.stage_discard = trs__fs_stage_discard;
	fs->parent.stage_spool = trs__fs_stage_spool;
	fs->parent.stage_close = trs__fs_stage_close;
	fs->parent.caps = TRS_STORAGE_LOCAL | TRS_STORAGE_STAGE_EARLY;
	fs->ctx = TRS_CTX(ctx);
	int rc;
	if (!(fs->root = trs__strdup(dir, err))) {
		rc = TRS_ENOMEM;
		goto fail;
	}
	if (make_root(dir) < 0 ||
	    (fs->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = trs__error_errno(err, errno, "cannot use %s as the destination directory", TRS__SHORT(dir));
		goto fail;
	}
	if ((rc = trs__fsdirs_new(&fs->dirs, fs->root_fd, fs->root, err)) < 0)
		goto fail;
	*out = &fs->parent;
	return 0;
fail:
	fs_free(&fs->parent);
	return rc;
}
