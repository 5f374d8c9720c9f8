/* SPDX-License-Identifier: Apache-2.0 */
/* Cached, symlink-proof directory lookups for the fs backend. */
#include "fs_dirs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CACHE_SLOTS 64

struct trs__fsdir {
	char *path;       /* top \0 bucket/dirs, as a flat key */
	size_t path_len;
	uint64_t hash;
	int fd;
	int refs;         /* under the cache's mutex */
	int stale;
	int uncached;     /* set before the handle is handed out, never changed: read without the mutex */
	uint64_t used;    /* LRU tick */
};

struct trs__fsdirs {
	int root_fd;
	const char *root;
	pthread_mutex_t mu;
	trs__fsdir slots[CACHE_SLOTS];
	uint64_t tick;
};

int trs__fsdirs_new(trs__fsdirs **out, int root_fd, const char *root, trs_error *err)
{
	trs__fsdirs *c = trs__calloc(1, sizeof(*c), err);
	if (!c)
		return TRS_ENOMEM;
	c->root_fd = root_fd;
	c->root = root;
	pthread_mutex_init(&c->mu, NULL);
	for (int i = 0; i < CACHE_SLOTS; i++)
		c->slots[i].fd = -1;
	*out = c;
	return 0;
}

void trs__fsdirs_free(trs__fsdirs *c)
{
	if (!c)
		return;
	for (int i = 0; i < CACHE_SLOTS; i++) {
		if (c->slots[i].fd >= 0)
			close(c->slots[i].fd);
		free(c->slots[i].path);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static int open_dir_at(int dirfd, const char *name, int create)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
			return -1;
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd;
}

/* Walk the components of `path` (separated by '/') under root. */
static int walk(trs__fsdirs *c, const char *top, const char *bucket, const char *dirs, size_t dirs_len, int create,
		const char *key, trs_error *err)
{
	int fd = dup(c->root_fd);
	if (fd < 0)
		return trs__error_errno(err, errno, "cannot use directory %s", TRS__SHORT(c->root));
	char seg[256];
	const char *parts[2] = {top, bucket};
	for (int i = 0; i < 3; i++) {
		const char *s = i < 2 ? parts[i] : dirs;
		size_t left = i < 2 ? strlen(s) : dirs_len;
		while (left) {
			const char *slash = i < 2 ? NULL : memchr(s, '/', left);
			size_t len = slash ? (size_t)(slash - s) : left;
			if (len >= sizeof(seg)) {
				close(fd);
				return trs__error_set(err, TRS_EUNSAFE, "key %s: a path segment is too long",
						      TRS__SHORT(key));
			}
			memcpy(seg, s, len);
			seg[len] = '\0';
			int next = open_dir_at(fd, seg, create);
			int saved = errno;
			close(fd);
			if (next < 0) {
				if (saved == ENOENT && !create)
					return trs__error_set(err, TRS_ENOTFOUND, "no object %s/%s in %s", bucket,
							      TRS__SHORT(key), TRS__SHORT(c->root));
				if (saved == ENOTDIR || saved == ELOOP || saved == EEXIST)
					return trs__error_set(err, TRS_EEXISTS,
							      "key %s in bucket %s: '%s' is already a file or link here, so it "
							      "cannot be a directory (S3 allows keys that are prefixes of others; "
							      "a directory cannot)",
							      TRS__SHORT(key), bucket, TRS__SHORT(seg));
				return trs__error_errno(err, saved, "key %s in bucket %s: cannot open directory '%s' under %s",
							TRS__SHORT(key), bucket, TRS__SHORT(seg), TRS__SHORT(c->root));
			}
			fd = next;
			s += len;
			left -= len;
			if (slash) {
				s++;
				left--;
			}
		}
	}
	return fd;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

int trs__fsdir_get(trs__fsdirs *c, const char *top, const char *bucket, const char *key, int create,
		   trs__fsdir **out, const char **base, trs_error *err)
{
	const char *slash = strrchr(key, '/');
	size_t dirs_len = slash ? (size_t)(slash - key) : 0;
	*base = slash ? slash + 1 : key;
	size_t tlen = strlen(top), blen = strlen(bucket);
	size_t plen = tlen + 1 + blen + 1 + dirs_len;
	char stack[512];
	char *path = plen <= sizeof(stack) ? stack : malloc(plen);
	if (!path)
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	memcpy(path, top, tlen);
	path[tlen] = '\0';
	memcpy(path + tlen + 1, bucket, blen);
	path[tlen + 1 + blen] = '/';
	memcpy(path + tlen + 2 + blen, key, dirs_len);
	uint64_t h = hash_bytes(path, plen);

	pthread_mutex_lock(&c->mu);
	c->tick++;
	for (int i = 0; i < CACHE_SLOTS; i++) {
		trs__fsdir *d = &c->slots[i];
		if (d->fd >= 0 && !d->stale && d->hash == h && d->path_len == plen && !memcmp(d->path, path, plen)) {
			d->refs++;
			d->used = c->tick;
			pthread_mutex_unlock(&c->mu);
			if (path != stack)
				free(path);
			*out = d;
			return 0;
		}
	}
	pthread_mutex_unlock(&c->mu);

	int fd = walk(c, top, bucket, key, dirs_len, create, key, err);
	if (fd < 0) {
		if (path != stack)
			free(path);
		return fd;
	}
	pthread_mutex_lock(&c->mu);
	trs__fsdir *victim = NULL;
	for (int i = 0; i < CACHE_SLOTS; i++) {
		trs__fsdir *d = &c->slots[i];
		if (d->refs)
			continue;
		if (!victim || d->fd < 0 || d->used < victim->used)
			victim = d;
		if (d->fd < 0)
			break;
	}
	char *copy = victim ? malloc(plen) : NULL;
	if (!victim || !copy) {
		/* Every slot busy (or no memory): an uncached handle, closed on release. */
		pthread_mutex_unlock(&c->mu);
		free(copy);
		trs__fsdir *d = calloc(1, sizeof(*d));
		if (path != stack)
			free(path);
		if (!d) {
			close(fd);
			return trs__error_set(err, TRS_ENOMEM, "out of memory");
		}
		d->fd = fd;
		d->uncached = 1;
		*out = d;
		return 0;
	}
	if (victim->fd >= 0)
		close(victim->fd);
	free(victim->path);
	memcpy(copy, path, plen);
	victim->path = copy;
	victim->path_len = plen;
	victim->hash = h;
	victim->fd = fd;
	victim->refs = 1;
	victim->stale = 0;
	victim->used = c->tick;
	pthread_mutex_unlock(&c->mu);
	if (path != stack)
		free(path);
	*out = victim;
	return 0;
}

int trs__fsdir_fd(const trs__fsdir *d)
{
	return d->fd;
}

void trs__fsdir_release(trs__fsdirs *c, trs__fsdir *d, int stale)
{
	/* Not d->refs: another holder of a cached slot changes it under the mutex. */
	if (d->uncached) {
		close(d->fd);
		free(d);
		return;
	}
	pthread_mutex_lock(&c->mu);
	d->refs--;
	if (stale)
		d->stale = 1;
	if (d->stale && d->refs == 0) {
		close(d->fd);
		d->fd = -1;
		free(d->path);
		d->path = NULL;
	}
	pthread_mutex_unlock(&c->mu);
}
