/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for unit tests: build .tar.zst archives in memory. */
#ifndef TRS_TESTUTIL_H
#define TRS_TESTUTIL_H

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "trs.h"

typedef struct {
	const char *path;
	const char *data;    /* NULL: empty */
	size_t len;          /* 0: strlen(data) */
	int type;            /* 0 file, 1 symlink, 2 directory */
} tu_member;

typedef struct {
	unsigned char *data;
	size_t len, cap;
} tu_buf;

static la_ssize_t tu_write(struct archive *a, void *ud, const void *buf, size_t len)
{
	(void)a;
	tu_buf *b = ud;
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->data = realloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	return (la_ssize_t)len;
}

/* A PAX tar of `members`, zstd-compressed in `frames` frames at `level`. Caller frees *out. */
static inline size_t tu_archive(const tu_member *m, size_t n, int frames, int level, unsigned char **out)
{
	tu_buf tar = {0};
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_open(a, &tar, NULL, tu_write, NULL);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		size_t len = m[i].data ? (m[i].len ? m[i].len : strlen(m[i].data)) : 0;
		archive_entry_set_pathname_utf8(e, m[i].path);
		if (m[i].type == 1) {
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, "/etc/passwd");
			len = 0;
		} else if (m[i].type == 2) {
			archive_entry_set_filetype(e, AE_IFDIR);
			len = 0;
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
		}
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)len);
		archive_write_header(a, e);
		if (len)
			archive_write_data(a, m[i].data, len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	if (frames < 1)
		frames = 1;
	size_t bound = ZSTD_compressBound(tar.len) + (size_t)frames * 64;
	unsigned char *z = malloc(bound);
	size_t zlen = 0, slice = tar.len / (size_t)frames + 1, off = 0;
	for (int f = 0; f < frames && off < tar.len; f++) {
		size_t len = off + slice > tar.len ? tar.len - off : slice;
		zlen += ZSTD_compress(z + zlen, bound - zlen, tar.data + off, len, level);
		off += len;
	}
	free(tar.data);
	*out = z;
	return zlen;
}

/* A fs storage over a new directory under /tmp (its path in root); NULL on failure. */
static inline trs_storage *tu_fs_fresh(char *root, size_t size, const char *name)
{
	snprintf(root, size, "/tmp/%s-XXXXXX", name);
	if (!mkdtemp(root))
		return NULL;
	trs_storage *s;
	trs_error err = TRS_ERROR_INIT;
	return trs_storage_fs_new(&s, NULL, root, &err) == 0 ? s : NULL;
}

/* Free the storage and remove its directory. */
static inline void tu_fs_cleanup(trs_storage *s, const char *root)
{
	trs_storage_free(s);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		printf("  cleanup of %s failed\n", root);
}

#endif
