/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fs backend's conditional writes (newest wins, include/trs/storage.h):
 * the comparison with what stands at a key and the write that replaces it
 * are one step against every other writer of that key, in this process or
 * in another one writing into the same directory.
 *
 * The lock is flock(2) on the file standing at the key, taken through a
 * descriptor of its own (flock locks belong to an open file description, so
 * two threads each with their own open exclude each other too). A rename
 * replaces that file with another inode, so whoever gets the lock checks
 * that the name still names the file it locked, and starts again if not.
 * A new key is created without replacing anything (link, or O_EXCL), which
 * fails with EEXIST when another writer created it first: then the lock,
 * and the comparison with what that writer wrote.
 *
 * An object created at its final name (a body held in memory) is locked
 * right after its creation, before a byte is written. A writer that got in
 * between the two finds a file without a version and replaces it; the
 * creator sees, once it holds the lock, that its file no longer stands at
 * the key, and compares again with what does.
 */
#include "storage_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ROUNDS 100

static int lock_fd(int fd)
{
	int rc;
	do
		rc = flock(fd, LOCK_EX);
	while (rc < 0 && errno == EINTR);
	return rc;
}

/* Does dirfd/base still name the file open at fd? */
int trs__fs_still_at(int dirfd, const char *base, int fd)
{
	struct stat held, named;
	return fstat(fd, &held) == 0 && fstatat(dirfd, base, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
	       held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

/*
 * Lock what stands at dirfd/base: *fd the locked file, or -1 when nothing
 * stands there; with `create`, nothing there is replaced by a new empty file
 * of ours, locked, and *created says so.
 */
int trs__fs_key_lock(int dirfd, const char *base, int create, int *fd, int *created, const trs_put_request *req,
		     trs_error *err)
{
	*fd = -1;
	*created = 0;
	for (int round = 0; round < MAX_ROUNDS; round++) {
		int f = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		int made = 0;
		if (f < 0 && errno == ELOOP) {
			*fd = TRS__FS_UNLOCKABLE; /* a symlink: replaced, never followed */
			return 0;
		}
		if (f < 0 && errno == ENOENT && create) {
			f = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
			if (f < 0 && errno == EEXIST)
				continue;
			made = 1;
		}
		if (f < 0 && errno == ENOENT)
			return 0;
		if (f < 0)
			return trs__error_errno(err, errno, "cannot open %s/%s to compare versions", req->bucket,
						TRS__SHORT(req->key));
		struct stat st;
		if (fstat(f, &st) == 0 && S_ISDIR(st.st_mode)) {
			close(f);
			return trs__fs_prefix_conflict(req, err);
		}
		if (!made && !S_ISREG(st.st_mode)) {
			close(f);
			*fd = TRS__FS_UNLOCKABLE; /* a FIFO, a device: no object of ours, replaced */
			return 0;
		}
		if (lock_fd(f) < 0) {
			int saved = errno;
			close(f);
			return trs__error_errno(err, saved, "cannot lock %s/%s", req->bucket, TRS__SHORT(req->key));
		}
		if (trs__fs_still_at(dirfd, base, f)) {
			*fd = f;
			*created = made;
			return 0;
		}
		close(f); /* replaced while we waited: lock what stands there now */
	}
	return trs__error_set(err, TRS_EIO, "%s/%s: the key kept changing under %d attempts to lock it; run again",
			      req->bucket, TRS__SHORT(req->key), MAX_ROUNDS);
}

/* Compare the locked file fd (its recorded version) with cond: TRS_WRITTEN to go ahead, or why not. */
int trs__fs_key_decide(fs_storage *fs, int fd, const trs_put_request *req, const trs_write_condition *cond,
		       trs_error *err)
{
	trs_object_info info;
	memset(&info, 0, sizeof(info));
	int rc = trs__fs_read_meta(fs, fd, req->bucket, req->key, &info, err);
	if (rc == 0)
		rc = trs_write_condition_check(cond, &info);
	trs_object_info_clear(&info);
	return rc;
}

/* Move the finished file f over dirfd/base, replacing what stands there. */
static int replace(int dirfd, const char *base, const trs__fs_finished *f, const trs_put_request *req,
		   const char *root, trs_error *err)
{
	if (!f->unnamed) {
		if (renameat(f->src_dirfd, f->src_name, dirfd, base) == 0)
			return 0;
		int saved = errno;
		if (saved == EISDIR || saved == ENOTEMPTY || saved == EEXIST)
			return trs__fs_prefix_conflict(req, err);
		return trs__error_errno(err, saved, "cannot move %s/%s into place in %s", req->bucket,
					TRS__SHORT(req->key), TRS__SHORT(root));
	}
	/* An O_TMPFILE has no name to rename: linked under a temporary one first. */
	return trs__fs_link_over(f->src_dirfd, f->src_name, f->link_flags, dirfd, base, req, root, err);
}

int trs__fs_publish_if_newer(fs_storage *fs, int dirfd, const char *base, const trs__fs_finished *f,
			     const trs_put_request *req, const trs_write_condition *cond, trs_error *err)
{
	for (int round = 0; round < MAX_ROUNDS; round++) {
		int sidecar = __atomic_load_n(&fs->sidecar, __ATOMIC_RELAXED) || f->sidecar_due;
		if (!sidecar) {
			/* A new key: the file appears complete, with its metadata, or not at all. */
			if (linkat(f->src_dirfd, f->src_name, dirfd, base, f->link_flags) == 0) {
				if (!f->unnamed)
					unlinkat(f->src_dirfd, f->src_name, 0);
				return TRS_WRITTEN;
			}
			if (errno != EEXIST)
				return trs__error_errno(err, errno, "cannot link %s/%s into place in %s", req->bucket,
							TRS__SHORT(req->key), TRS__SHORT(fs->root));
			if (trs__fs_exists_as_dir(dirfd, base))
				return trs__fs_prefix_conflict(req, err);
		}
		/* Without xattrs the sidecar must be written under the lock too: hold the key even when new. */
		int fd, created, rc;
		if ((rc = trs__fs_key_lock(dirfd, base, sidecar, &fd, &created, req, err)) < 0)
			return rc;
		if (fd == TRS__FS_UNLOCKABLE) {
			rc = sidecar ? trs__fs_meta_sidecar(fs, req, f->size, f->md5, err) : 0;
			return rc < 0 ? rc : replace(dirfd, base, f, req, fs->root, err);
		}
		if (fd < 0)
			continue; /* deleted since: create it */
		rc = created ? TRS_WRITTEN : trs__fs_key_decide(fs, fd, req, cond, err);
		if (rc == TRS_WRITTEN && sidecar)
			rc = trs__fs_meta_sidecar(fs, req, f->size, f->md5, err);
		if (rc == TRS_WRITTEN)
			rc = replace(dirfd, base, f, req, fs->root, err);
		if (rc < 0 && created)
			unlinkat(dirfd, base, 0); /* our empty file, still ours: we hold its lock */
		close(fd);
		return rc;
	}
	return trs__error_set(err, TRS_EIO, "%s/%s: the key kept changing; run again", req->bucket,
			      TRS__SHORT(req->key));
}
