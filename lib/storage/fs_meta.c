/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fs backend's metadata codec: an object's tags, class, KMS key, user
 * metadata and MD5 as JSON, attached to the unpublished file as the
 * user.trs.meta xattr, or written to the sidecar tree
 * DIR/.trs-meta/<bucket>/<key> where the filesystem has no user xattrs;
 * and read back (head, and the version a conditional write compares with).
 */
#include "storage_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <stdlib.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define MAX_META_BYTES (1u << 20)

/* Write `data` to dirfd/base through a temporary and rename (the sidecar metadata). */
static int replace_file(int dirfd, const char *base, const void *data, size_t len)
{
	char tmp[96];
	int fd = trs__fs_open_temp(dirfd, tmp, sizeof(tmp), 0644);
	if (fd < 0)
		return -1;
	if (trs__write_all(fd, data, len) < 0 || close(fd) < 0) {
		int saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (renameat(dirfd, tmp, dirfd, base) < 0) {
		int saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

/*
 * setxattrat(2) (Linux 6.13) sets an xattr of dirfd/name, looking up that
 * one name; the C library may not wrap it yet. Its number is the same on
 * every architecture of the common syscall table.
 */
#if !defined(__NR_setxattrat) && defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#define __NR_setxattrat 463
#endif

/*
 * The xattr of the unpublished file dirfd/name, a final symlink not
 * followed. setxattrat where the kernel has it: a restore of 100,000 small
 * manifest-last objects sets 100,000 of them, and the other ways cost a
 * path walk through /proc (lsetxattr) or three syscalls (open, fsetxattr,
 * close) each.
 */
static int set_xattr_at(int dirfd, const char *name, const void *value, size_t len)
{
#ifdef __NR_setxattrat
	static int no_setxattrat;
	int tried = 0;
	if (!__atomic_load_n(&no_setxattrat, __ATOMIC_RELAXED)) {
		struct { uint64_t value; uint32_t size; uint32_t flags; } args = {(uint64_t)(uintptr_t)value, (uint32_t)len, 0};
		if (syscall(__NR_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, TRS__FS_META_XATTR, &args, sizeof(args)) == 0)
			return 0;
		/* An old kernel (ENOSYS), or a seccomp filter that does not know the call (often EPERM): the older way
		 * says whether xattrs work at all. */
		if (errno != ENOSYS && errno != EPERM)
			return -1;
		tried = 1;
	}
#endif
	char path[64 + 256];
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	int rc = lsetxattr(path, TRS__FS_META_XATTR, value, len, 0);
	if (rc < 0 && (errno == ENOENT || errno == ENOTDIR)) {
		/* No /proc here: open the file (O_NOFOLLOW), fsetxattr, close. */
		int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -1;
		rc = fsetxattr(fd, TRS__FS_META_XATTR, value, len, 0);
		int saved = errno;
		close(fd);
		errno = saved;
	}
#ifdef __NR_setxattrat
	if (rc == 0 && tried)
		__atomic_store_n(&no_setxattrat, 1, __ATOMIC_RELAXED);
#endif
	return rc;
}

static void gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_kv_map(yajl_gen g, const char *name, const trs_kv *kv, size_t n)
{
	gen_str(g, name);
	yajl_gen_map_open(g);
	for (size_t i = 0; i < n; i++) {
		gen_str(g, kv[i].key);
		gen_str(g, kv[i].value);
	}
	yajl_gen_map_close(g);
}

static yajl_gen meta_json(const trs_put_request *req, uint64_t size, const char *md5, int beautify)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return NULL;
	yajl_gen_config(g, yajl_gen_beautify, beautify);
	yajl_gen_config(g, yajl_gen_validate_utf8, 0);
	yajl_gen_map_open(g);
	gen_str(g, "bucket");
	gen_str(g, req->bucket);
	gen_str(g, "key");
	gen_str(g, req->key);
	gen_str(g, "size");
	yajl_gen_integer(g, (long long)size);
	gen_str(g, "storage_class");
	gen_str(g, req->storage_class && *req->storage_class ? req->storage_class : "STANDARD");
	if (req->kms_key_id && *req->kms_key_id) {
		gen_str(g, "kms_key_id");
		gen_str(g, req->kms_key_id);
	}
	gen_str(g, "md5");
	gen_str(g, md5);
	gen_kv_map(g, "tags", req->tags, req->ntags);
	gen_kv_map(g, "metadata", req->metadata, req->nmetadata);
	yajl_gen_map_close(g);
	return g;
}

static int write_sidecar(fs_storage *fs, const trs_put_request *req, const unsigned char *json, size_t len,
			 trs_error *err)
{
	const char *base;
	trs__fsdir *d;
	int rc = trs__fsdir_get(fs->dirs, TRS__FS_META_DIR, req->bucket, req->key, 1, &d, &base, err);
	if (rc < 0)
		return rc;
	if (replace_file(trs__fsdir_fd(d), base, json, len) < 0)
		rc = trs__error_errno(err, errno, "cannot write the metadata of %s/%s under %s/%s", req->bucket,
				      TRS__SHORT(req->key), TRS__SHORT(fs->root), TRS__FS_META_DIR);
	trs__fsdir_release(fs->dirs, d, 0);
	return rc;
}

/*
 * The metadata as an xattr of the unpublished file fd (or dirfd/name when fd
 * is -1), so that the object appears with it, atomically. 1 when the
 * filesystem has no user xattrs: the caller writes the sidecar
 * (trs__fs_meta_sidecar) when the object is published.
 */
int trs__fs_meta_to_file(fs_storage *fs, int fd, int dirfd, const char *name, const trs_put_request *req, uint64_t size,
			 const char *md5, trs_error *err)
{
	if (__atomic_load_n(&fs->sidecar, __ATOMIC_RELAXED))
		return 1;
	yajl_gen g = meta_json(req, size, md5, 0);
	if (!g)
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	const unsigned char *json;
	size_t len;
	yajl_gen_get_buf(g, &json, &len);
	int rc = 0;
	if ((fd >= 0 ? fsetxattr(fd, TRS__FS_META_XATTR, json, len, 0) : set_xattr_at(dirfd, name, json, len)) < 0) {
		if (errno == ENOTSUP || errno == EPERM) {
			__atomic_store_n(&fs->sidecar, 1, __ATOMIC_RELAXED);
			trs__log(fs->ctx, TRS_LOG_INFO, "no user xattrs here: metadata goes to sidecar files", "dir",
				 fs->root, NULL);
			rc = 1;
		} else {
			rc = trs__error_errno(err, errno, "cannot attach the metadata of %s/%s in %s", req->bucket,
					      TRS__SHORT(req->key), TRS__SHORT(fs->root));
			if (err && errno == ENOSPC)
				snprintf(err->message + strlen(err->message), sizeof(err->message) - strlen(err->message),
					 " (free some space and run again)");
		}
	}
	yajl_gen_free(g);
	return rc;
}

int trs__fs_meta_sidecar(fs_storage *fs, const trs_put_request *req, uint64_t size, const char *md5, trs_error *err)
{
	yajl_gen g = meta_json(req, size, md5, 1);
	if (!g)
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	const unsigned char *json;
	size_t len;
	yajl_gen_get_buf(g, &json, &len);
	int rc = write_sidecar(fs, req, json, len, err);
	yajl_gen_free(g);
	return rc;
}

/*
 * Attach the metadata: as an xattr of the unpublished file, or, where the
 * filesystem has no user xattrs, as a sidecar file written before the
 * object is published.
 */
int trs__fs_attach_meta(fs_storage *fs, int fd, int dirfd, const char *name, const trs_put_request *req,
			uint64_t size, const char *md5, trs_error *err)
{
	int rc = trs__fs_meta_to_file(fs, fd, dirfd, name, req, size, md5, err);
	return rc == 1 ? trs__fs_meta_sidecar(fs, req, size, md5, err) : rc;
}

/* ---- reading ---- */

static char *dup_json_string(yajl_val v)
{
	const char *s = YAJL_IS_STRING(v) ? v->u.string : NULL;
	return s ? strdup(s) : NULL;
}

static int kv_from_json(yajl_val obj, trs_kv **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!YAJL_IS_OBJECT(obj) || obj->u.object.len == 0)
		return 0;
	size_t len = obj->u.object.len;
	trs_kv *kv = calloc(len, sizeof(*kv));
	if (!kv)
		return -1;
	for (size_t i = 0; i < len; i++) {
		kv[i].key = strdup(obj->u.object.keys[i]);
		kv[i].value = dup_json_string(obj->u.object.values[i]);
		if (!kv[i].value)
			kv[i].value = strdup("");
		*n = i + 1;
		if (!kv[i].key || !kv[i].value) {
			*out = kv;
			return -1;
		}
	}
	*out = kv;
	return 0;
}

int trs__fs_read_meta(fs_storage *fs, int fd, const char *bucket, const char *key, trs_object_info *info,
		      trs_error *err)
{
	char *json = malloc(MAX_META_BYTES + 1);
	if (!json)
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	ssize_t len = fgetxattr(fd, TRS__FS_META_XATTR, json, MAX_META_BYTES);
	if (len < 0) {
		/* No xattr: a sidecar, or no metadata at all (an object is still an object). */
		const char *base;
		trs__fsdir *d;
		trs_error ignored = TRS_ERROR_INIT;
		int mfd = -1;
		if (trs__fsdir_get(fs->dirs, TRS__FS_META_DIR, bucket, key, 0, &d, &base, &ignored) == 0) {
			mfd = openat(trs__fsdir_fd(d), base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			trs__fsdir_release(fs->dirs, d, 0);
		}
		if (mfd < 0) {
			free(json);
			return 0;
		}
		len = read(mfd, json, MAX_META_BYTES);
		close(mfd);
	}
	if (len < 0) {
		free(json);
		return trs__error_errno(err, errno, "cannot read the metadata of %s/%s", bucket, TRS__SHORT(key));
	}
	json[len] = '\0';
	char why[128];
	yajl_val tree = yajl_tree_parse(json, why, sizeof(why));
	free(json);
	if (!tree)
		return trs__error_set(err, TRS_EIO, "the metadata of %s/%s in %s/%s is not valid JSON: %s", bucket,
				      TRS__SHORT(key), TRS__SHORT(fs->root), TRS__FS_META_DIR, why);
	const char *p_class[] = {"storage_class", NULL};
	const char *p_kms[] = {"kms_key_id", NULL};
	const char *p_md5[] = {"md5", NULL};
	const char *p_tags[] = {"tags", NULL};
	const char *p_meta[] = {"metadata", NULL};
	info->storage_class = dup_json_string(yajl_tree_get(tree, p_class, yajl_t_string));
	info->kms_key_id = dup_json_string(yajl_tree_get(tree, p_kms, yajl_t_string));
	info->etag = dup_json_string(yajl_tree_get(tree, p_md5, yajl_t_string));
	int bad = kv_from_json(yajl_tree_get(tree, p_tags, yajl_t_object), &info->tags, &info->ntags) < 0 ||
		  kv_from_json(yajl_tree_get(tree, p_meta, yajl_t_object), &info->metadata, &info->nmetadata) < 0;
	yajl_tree_free(tree);
	if (bad) {
		trs_object_info_clear(info);
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	}
	return 0;
}
