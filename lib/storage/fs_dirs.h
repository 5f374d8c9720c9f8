/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Safe, cached directory lookups for the fs backend (lib/storage/fs_dirs.c).
 *
 * Paths are walked one component at a time with openat(O_NOFOLLOW |
 * O_DIRECTORY) from the root's fd, so no symlink is ever followed. The
 * directories a restore writes into are few and used over and over, so
 * their fds are kept in a small cache: one openat chain per directory, not
 * per object.
 */
#ifndef TRS_FS_DIRS_H
#define TRS_FS_DIRS_H

#include "internal.h"

typedef struct trs__fsdirs trs__fsdirs;
typedef struct trs__fsdir trs__fsdir;

int trs__fsdirs_new(trs__fsdirs **out, int root_fd, const char *root, trs_error *err);
void trs__fsdirs_free(trs__fsdirs *c);

/*
 * The directory holding `key` in `top/bucket` ("" top: the data tree),
 * created when `create`; *base gets the key's last segment. TRS_ENOTFOUND
 * when it does not exist (and !create), TRS_EEXISTS when a file stands where
 * a directory must be. Release the handle with trs__fsdir_release.
 */
int trs__fsdir_get(trs__fsdirs *c, const char *top, const char *bucket, const char *key, int create,
		   trs__fsdir **out, const char **base, trs_error *err);
int trs__fsdir_fd(const trs__fsdir *d);
/* `stale`: the directory turned out to be gone; drop it from the cache. */
void trs__fsdir_release(trs__fsdirs *c, trs__fsdir *d, int stale);

#endif
