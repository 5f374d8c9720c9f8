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
	trs_fsdirs *dirs;
	int sidecar;   /* the filesystem refused user xattrs: metadata in DIR/.trs-meta */
	int no_tmpfile; /* the filesystem has no O_TMPFILE: named temporaries */
} fs_storage;

#define TRS__FS_META_DIR ".trs-meta"
#define TRS__FS_META_XATTR "user.trs.meta"

/* A temporary name beside the target in dirfd: O_EXCL, never reused. */
int trs__fs_open_temp(int dirfd, char *name, size_t size, mode_t mode);

/* Nonzero when `s` is the fs backend. */
int trs__fs_is(const trs_storage *s);
int trs__fs_check_bucket(const char *bucket, trs_error *err);
int trs__fs_check_key(const char *bucket, const char *key, trs_error *err);
/* Check req's bucket and key, then hold the directory the key's file goes in (*base: its name there). */
int trs__fs_key_dir(fs_storage *fs, const trs_put_request *req, trs_fsdir **d, const char **base, trs_error *err);
/*
 * Attach the metadata to the unpublished file (xattr, or the sidecar where
 * there are none): to the open `fd`, or, when `fd` is -1, to the file
 * `name` in `dirfd` (a symlink there is not followed).
 */
int trs__fs_attach_meta(fs_storage *fs, int fd, int dirfd, const char *name, const trs_put_request *req,
			uint64_t size, const char *md5, trs_error *err);
int trs__fs_exists_as_dir(int dirfd, const char *base);
int trs__fs_prefix_conflict(const trs_put_request *req, trs_error *err);

#endif
