/* SPDX-License-Identifier: Apache-2.0 */
/* Staging objects in a local directory before the manifest names them: the fs backend's
 * version-4 stage_* members (trs/sys/storage.h). */
#include "storage_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Staging, for the pipeline: the source side writes manifest.json last, so
 * objects arrive before their keys are known. Into a local directory they
 * can be written at once all the same, under a hidden staging directory of
 * DIR (.trs-staging-*: bucket names cannot start with a dot), and moved
 * into place, with their metadata, when the manifest has come. The restore
 * then streams like tar instead of holding the archive in memory.
 */
typedef struct fs_stage {
	trs_storage_stage parent;
	fs_storage *fs;
	int dirfd;
	char name[80];
} fs_stage;

#define STAGING_PREFIX ".trs-staging-"
#define STALE_SECONDS (24 * 3600)

/* A DIR over a new open of the directory `fd`, not a dup: a dup shares the read offset with every other user. */
static DIR *reopen_dir(int fd)
{
	int again = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = again >= 0 ? fdopendir(again) : NULL;
	if (!dir && again >= 0)
		close(again);
	return dir;
}

/* Remove the files of a staging directory (flat: one file per staged object). */
static void empty_dir(int dirfd)
{
	DIR *dir = reopen_dir(dirfd);
	if (!dir)
		return;
	struct dirent *de;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd, de->d_name, 0);
	closedir(dir);
}

/*
 * Is this staging directory left by a run that is gone? Its owner holds an
 * exclusive flock on it for as long as it runs, and the kernel drops the
 * lock when the process dies (kill -9 too), so a directory we can lock has
 * no live owner; that needs no pid, which a new process may have reused.
 * The pid in the name covers the instant between a run's mkdir and its
 * flock, and directories of versions that took no lock: those are stale
 * once their pid is gone, or after a day.
 */
static bool stale(int dirfd, const char *name)
{
	if (flock(dirfd, LOCK_EX | LOCK_NB) < 0)
		return false; /* a live run holds it */
	long pid = strtol(name + strlen(STAGING_PREFIX), NULL, 10);
	struct stat sb;
	if (pid <= 0 || fstat(dirfd, &sb) < 0)
		return true;
	bool alive = pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno == EPERM;
	return !alive || time(NULL) - sb.st_mtime > STALE_SECONDS;
}

/* Remove the staging directories of runs that died (kill -9, a crash, a power cut). */
static void clean_stale(fs_storage *fs)
{
	DIR *dir = reopen_dir(fs->root_fd);
	if (!dir)
		return;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, STAGING_PREFIX, strlen(STAGING_PREFIX)) != 0)
			continue;
		int dirfd = openat(fs->root_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dirfd < 0)
			continue;
		if (stale(dirfd, de->d_name)) {
			empty_dir(dirfd);
			if (unlinkat(fs->root_fd, de->d_name, AT_REMOVEDIR) == 0)
				trs__log(fs->ctx, TRS_LOG_INFO, "removed the staging directory of a run that is gone", "dir",
					 fs->root, "staging", de->d_name, NULL);
		}
		close(dirfd); /* drops our lock */
	}
	closedir(dir);
}

int trs__fs_stage_open(trs_storage *s, trs_storage_stage **out, trs_error *err)
{
	*out = NULL;
	fs_storage *fs = (fs_storage *)s;
	clean_stale(fs);
	fs_stage *st = trs__calloc(1, sizeof(*st), err);
	if (!st)
		return TRS_ENOMEM;
	st->fs = fs; /* parent.storage is set by the library (trs__storage_stage_open) */
	for (int attempt = 0;; attempt++) {
		uint64_t suffix = 0;
		if (getrandom(&suffix, sizeof(suffix), 0) != (ssize_t)sizeof(suffix))
			suffix ^= (uint64_t)trs__now() * 1000003u ^ (uint64_t)attempt; /* no entropy yet: still unique by EEXIST */
		snprintf(st->name, sizeof(st->name), STAGING_PREFIX "%ld-%016llx", (long)getpid(), (unsigned long long)suffix);
		if (mkdirat(fs->root_fd, st->name, 0700) == 0)
			break;
		if (errno != EEXIST || attempt > 100) {
			int rc = trs__error_errno(err, errno, "cannot create a staging directory in %s",
						  TRS__SHORT(fs->root));
			free(st);
			return rc;
		}
	}
	st->dirfd = openat(fs->root_fd, st->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->dirfd < 0 || flock(st->dirfd, LOCK_EX | LOCK_NB) < 0) {
		int rc = trs__error_errno(err, errno, "cannot open and lock the staging directory in %s",
					  TRS__SHORT(fs->root));
		if (st->dirfd >= 0)
			close(st->dirfd);
		unlinkat(fs->root_fd, st->name, AT_REMOVEDIR);
		free(st);
		return rc;
	}
	*out = &st->parent;
	return 0;
}

int trs__fs_stage_create(trs_storage_stage *stage, uint64_t index, trs_error *err)
{
	fs_stage *st = (fs_stage *)stage;
	char name[32];
	snprintf(name, sizeof(name), "%llu", (unsigned long long)index);
	int fd = openat(st->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd < 0)
		return trs__error_errno(err, errno, "cannot create a staged object in %s/%s", TRS__SHORT(st->fs->root),
					st->name);
	return fd;
}

int trs__fs_stage_publish(trs_storage_stage *stage, uint64_t index, const trs_put_request *req, uint64_t size,
			  const char *md5, const trs_write_condition *cond, trs_error *err)
{
	fs_stage *st = (fs_stage *)stage;
	fs_storage *fs = st->fs;
	int rc;
	const char *base;
	trs__fsdir *d;
	if ((rc = trs__fs_key_dir(fs, req, &d, &base, err)) < 0)
		return rc;
	int dirfd = trs__fsdir_fd(d);
	char name[32];
	snprintf(name, sizeof(name), "%llu", (unsigned long long)index);
	if (cond) {
		/* Newest wins: linked when the key is new, else compared and renamed under the key's lock. */
		int due = trs__fs_meta_to_file(fs, -1, st->dirfd, name, req, size, md5, err);
		trs__fs_finished f = {st->dirfd, name, 0, 0, due, size, md5};
		rc = due < 0 ? due : trs__fs_publish_if_newer(fs, dirfd, base, &f, req, cond, err);
		/* Not written: the staged file stays for the object's other targets, and goes with the
		 * staging directory. */
		trs__fsdir_release(fs->dirs, d, 0);
		return rc;
	}
	/* A directory standing at the key makes the rename fail with EISDIR; a sidecar must not be written first. */
	if (__atomic_load_n(&fs->sidecar, __ATOMIC_RELAXED) && trs__fs_exists_as_dir(dirfd, base))
		rc = trs__fs_prefix_conflict(req, err);
	else
		rc = trs__fs_attach_meta(fs, -1, st->dirfd, name, req, size, md5, err);
	/*
	 * Into place, with its metadata already on it. A new key is linked and
	 * the staged name dropped: renames between two directories take one
	 * lock per filesystem, so writers publishing at once would wait on
	 * each other, links do not. An existing key is replaced by a rename (a
	 * reader sees the old object or the new one). A staged name whose
	 * unlink fails goes with the staging directory.
	 */
	if (rc == 0 && linkat(st->dirfd, name, dirfd, base, 0) == 0)
		unlinkat(st->dirfd, name, 0);
	else if (rc == 0 && renameat(st->dirfd, name, dirfd, base) < 0) {
		int saved = errno;
		rc = saved == EISDIR || saved == ENOTEMPTY ? trs__fs_prefix_conflict(req, err)
			: trs__error_errno(err, saved, "cannot move %s/%s into place in %s", req->bucket,
					   TRS__SHORT(req->key), TRS__SHORT(fs->root));
	}
	trs__fsdir_release(fs->dirs, d, 0);
	return rc;
}

int trs__fs_stage_spool(trs_storage_stage *stage, char *where, size_t where_size, trs_error *err)
{
	fs_stage *st = (fs_stage *)stage;
	snprintf(where, where_size, "%s/%s", st->fs->root, st->name);
	int fd = trs__tmpfile_at(st->dirfd);
	if (fd < 0)
		return trs__error_errno(err, errno, "cannot create a spool file in %s", TRS__SHORT(where));
	return fd;
}

void trs__fs_stage_discard(trs_storage_stage *stage, uint64_t index)
{
	fs_stage *st = (fs_stage *)stage;
	char name[32];
	snprintf(name, sizeof(name), "%llu", (unsigned long long)index);
	unlinkat(st->dirfd, name, 0);
}

void trs__fs_stage_close(trs_storage_stage *stage)
{
	fs_stage *st = (fs_stage *)stage;
	if (!st)
		return;
	empty_dir(st->dirfd);
	unlinkat(st->fs->root_fd, st->name, AT_REMOVEDIR);
	close(st->dirfd); /* after the rmdir: the lock keeps a cleaner away until the directory is gone */
	free(st);
}
