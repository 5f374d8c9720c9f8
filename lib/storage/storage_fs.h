/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fs backend's insides, shared by lib/storage/storage_fs.c (the backend) and
 * lib/storage/fs_stage.c (staging objects before the manifest names them) and
 * lib/storage/fs_meta.c (its metadata).
 */
#ifndef TRS_STORAGE_FS_H
#define TRS_STORAGE_FS_H

#include "internal.h"
#include "fs_dirs.h"

#include <sys/types.h>

typedef struct fs_storage {
	trs_storage parent;
	const trs_ctx *ctx;
	char *root;
	int root_fd;
	trs__fsdirs *dirs;
	int sidecar;   /* the filesystem refused user xattrs: metadata in DIR/.trs-meta */
	int no_tmpfile; /* the filesystem has no O_TMPFILE: named temporaries */
} fs_storage;

#define TRS__FS_META_DIR ".trs-meta"
#define TRS__FS_META_XATTR "user.trs.meta"

/* A temporary name beside the target in dirfd: O_EXCL, never reused. */
int trs__fs_open_temp(int dirfd, char *name, size_t size, mode_t mode);

/* Nonzero when `s` is the fs backend. */
/* The version-4 staging members (lib/storage/fs_stage.c), for the vtable. */
int trs__fs_stage_open(trs_storage *s, trs_storage_stage **out, trs_error *err);
int trs__fs_stage_create(trs_storage_stage *stage, uint64_t index, trs_error *err);
int trs__fs_stage_publish(trs_storage_stage *stage, uint64_t index, const trs_put_request *req, uint64_t size,
			  const char *md5, const trs_write_condition *cond, trs_error *err);
void trs__fs_stage_discard(trs_storage_stage *stage, uint64_t index);
int trs__fs_stage_spool(trs_storage_stage *stage, char *where, size_t where_size, trs_error *err);
void trs__fs_stage_close(trs_storage_stage *stage);
int trs__fs_check_bucket(const char *bucket, trs_error *err);
int trs__fs_check_key(const char *bucket, const char *key, trs_error *err);
/* Check req's bucket and key, then hold the directory the key's file goes in (*base: its name there). */
int trs__fs_key_dir(fs_storage *fs, const trs_put_request *req, trs__fsdir **d, const char **base, trs_error *err);
/*
 * Attach the metadata to the unpublished file (xattr, or the sidecar where
 * there are none): to the open `fd`, or, when `fd` is -1, to the file
 * `name` in `dirfd` (a symlink there is not followed).
 */
int trs__fs_attach_meta(fs_storage *fs, int fd, int dirfd, const char *name, const trs_put_request *req,
			uint64_t size, const char *md5, trs_error *err);
/* The two halves of trs__fs_attach_meta, for a write that publishes under a lock (fs_guard.c): the
 * xattr (1 when the filesystem has none: the sidecar is still to write), and the sidecar. */
int trs__fs_meta_to_file(fs_storage *fs, int fd, int dirfd, const char *name, const trs_put_request *req, uint64_t size,
			 const char *md5, trs_error *err);
int trs__fs_meta_sidecar(fs_storage *fs, const trs_put_request *req, uint64_t size, const char *md5, trs_error *err);
/* The metadata of the object open at fd (its xattr, else its sidecar) into info: tags, metadata, class,
 * KMS key, etag. 0 with nothing filled when the object has none. */
int trs__fs_read_meta(fs_storage *fs, int fd, const char *bucket, const char *key, trs_object_info *info,
		      trs_error *err);
int trs__fs_exists_as_dir(int dirfd, const char *base);

/* ---- conditional writes (lib/storage/fs_guard.c) ---- */

/* A finished file, with its bytes and (unless sidecar_due) its metadata, ready to appear at a key. */
typedef struct trs__fs_finished {
	int src_dirfd;         /* the directory it is in; AT_FDCWD for an O_TMPFILE */
	const char *src_name;  /* its name there; "/proc/self/fd/N" for an O_TMPFILE */
	int link_flags;        /* for linkat(2): AT_SYMLINK_FOLLOW for an O_TMPFILE */
	int unnamed;           /* an O_TMPFILE: linked, never renamed */
	int sidecar_due;       /* no xattr on it: the sidecar is written when it is published */
	uint64_t size;
	const char *md5;
} trs__fs_finished;

/* Replace dirfd/base with a file that has no name to rename (an O_TMPFILE at src_name with
 * AT_SYMLINK_FOLLOW): linked under a temporary name beside it, then renamed over it. */
int trs__fs_link_over(int src_dirfd, const char *src_name, int link_flags, int dirfd, const char *base,
		      const trs_put_request *req, const char *root, trs_error *err);
/* Does dirfd/base still name the file open at fd? */
int trs__fs_still_at(int dirfd, const char *base, int fd);
/* Lock what stands at dirfd/base (flock on a descriptor of our own): *fd the locked file, -1 when
 * nothing stands there, TRS__FS_UNLOCKABLE for something that is no regular file (a symlink planted
 * there, a FIFO: no object of ours, replaced without a comparison); with `create`, an empty file of
 * ours takes the key when nothing stands there, locked (*created). */
#define TRS__FS_UNLOCKABLE (-2)
int trs__fs_key_lock(int dirfd, const char *base, int create, int *fd, int *created, const trs_put_request *req,
		     trs_error *err);
/* The locked file fd against cond: TRS_WRITTEN to go ahead, TRS_KEPT_NEWER, TRS_ALREADY_CURRENT. */
int trs__fs_key_decide(fs_storage *fs, int fd, const trs_put_request *req, const trs_write_condition *cond,
		       trs_error *err);
/* Put f at dirfd/base when nothing newer stands there: TRS_WRITTEN (f is gone from where it was),
 * TRS_KEPT_NEWER or TRS_ALREADY_CURRENT (f is left for the caller to drop), or a negative code. */
int trs__fs_publish_if_newer(fs_storage *fs, int dirfd, const char *base, const trs__fs_finished *f,
			     const trs_put_request *req, const trs_write_condition *cond, trs_error *err);
int trs__fs_prefix_conflict(const trs_put_request *req, trs_error *err);

#endif
