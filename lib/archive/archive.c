/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading a .tar.zst: libzstd decodes, libarchive walks the tar.
 *
 * zstd is ours rather than libarchive's filter so that we control the window
 * limit, see every frame boundary and truncation, count bytes for the bomb
 * guards and progress, and time decompression on its own. libarchive reads
 * the decompressed stream through a callback that hands it our output
 * buffer directly: no copy between the two.
 */
#include "internal.h"
#include "object_iter.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#define IN_SIZE (1u << 20)
#define OUT_SIZE (1u << 20)
#define MANIFEST_NAME "manifest.json"

struct trs_archive {
	const trs_ctx *ctx;
	char *name;
	/* the source */
	int fd;            /* ours when owns_fd */
	int owns_fd;
	uint64_t fd_offset;
	const unsigned char *data;
	size_t data_size;
	size_t data_pos;
	int64_t (*read_cb)(void *, void *, size_t, trs_error *);
	int (*rewind_cb)(void *, trs_error *);
	void *userdata;
	uint64_t compressed_size;
	/* decoding */
	ZSTD_DStream *zstd;
	unsigned char *in;
	ZSTD_inBuffer zin;
	unsigned char *out;
	int input_eof;
	int frame_open;     /* inside a frame: EOF now means truncation */
	size_t frames;
	struct archive *tar;
	trs_error cb_error; /* the precise error behind a libarchive failure */
	int cb_failed;
	/* position */
	uint64_t member_index;  /* index of the next member */
	int have_member;
	int at_end;
	char *path;             /* current member path (owned copy) */
	size_t path_cap;
	/* manifest */
	trs_manifest_position manifest_position;
	/* stats */
	uint64_t compressed_pass;
	uint64_t decompressed_pass;
	trs_archive_stats stats;
	double last_progress;
};

static void report_progress(trs_archive *a, int force)
{
	const trs_ctx *ctx = a->ctx;
	if (!ctx->progress)
		return;
	double now = trs__now();
	if (!force && now - a->last_progress < 0.1)
		return;
	a->last_progress = now;
	trs_progress p = {0};
	p.compressed_read = a->compressed_pass;
	p.compressed_total = a->compressed_size;
	p.decompressed = a->decompressed_pass;
	p.pass = (int)a->stats.passes;
	ctx->progress(&p, ctx->progress_userdata);
}

/* Pull more compressed bytes into a->in. Returns bytes read, 0 at EOF, < 0 on error. */
static int64_t source_read(trs_archive *a, trs_error *err)
{
	if (a->data) {
		size_t n = a->data_size - a->data_pos;
		if (n > IN_SIZE)
			n = IN_SIZE;
		/* Memory sources are decoded in place: point zin at the data itself. */
		a->zin.src = a->data + a->data_pos;
		a->zin.size = n;
		a->zin.pos = 0;
		a->data_pos += n;
		return (int64_t)n;
	}
	int64_t n;
	if (a->read_cb) {
		n = a->read_cb(a->userdata, a->in, IN_SIZE, err);
		if (n < 0)
			return n;
	} else {
		ssize_t r;
		do
			r = pread(a->fd, a->in, IN_SIZE, (off_t)a->fd_offset);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return trs__error_errno(err, errno, "archive %s: read failed", TRS__SHORT(a->name));
		a->fd_offset += (uint64_t)r;
		n = r;
	}
	a->zin.src = a->in;
	a->zin.size = (size_t)n;
	a->zin.pos = 0;
	return n;
}

static int zstd_failure(trs_archive *a, size_t code, trs_error *err)
{
	ZSTD_ErrorCode ec = ZSTD_getErrorCode(code);
	if (ec == ZSTD_error_memory_allocation)
		return trs__error_set(err, TRS_ENOMEM,
				      "archive %s: not enough memory for its zstd window (the frame asks for up to 2^%u "
				      "bytes); give the service more memory (or lower the context's max_window_log)",
				      TRS__SHORT(a->name), a->ctx->max_window_log);
	if (ec == ZSTD_error_frameParameter_windowTooLarge)
		return trs__error_set(err, TRS_ELIMIT,
				      "archive %s: its zstd window is larger than 2^%u bytes; refusing it "
				      "(recompress with a smaller --long window, or raise max_window_log)",
				      TRS__SHORT(a->name), a->ctx->max_window_log);
	if (ec == ZSTD_error_prefix_unknown && a->compressed_pass <= a->zin.size && a->frames == 0)
		return trs__error_set(err, TRS_EARCHIVE,
				      "archive %s is not zstd-compressed (no zstd frame at its start); "
				      "expected a .tar.zst from the source side",
				      TRS__SHORT(a->name));
	return trs__error_set(err, TRS_EARCHIVE,
			      "archive %s: zstd stream is corrupt after %llu compressed bytes (%s); "
			      "the archive is damaged, ask the source side to send it again",
			      TRS__SHORT(a->name), (unsigned long long)a->compressed_pass, ZSTD_getErrorName(code));
}

/* libarchive's read callback: decompress the next block into a->out. */
static la_ssize_t tar_read(struct archive *ar, void *userdata, const void **buffer)
{
	trs_archive *a = userdata;
	ZSTD_outBuffer zout = {a->out, OUT_SIZE, 0};
	*buffer = a->out;
	if (trs__canceled(a->ctx)) {
		trs__error_set(&a->cb_error, TRS_ECANCELED, "archive %s: canceled", TRS__SHORT(a->name));
		goto failed;
	}
	while (zout.pos == 0) {
		if (a->zin.pos == a->zin.size) {
			if (a->input_eof)
				break;
			int64_t n = source_read(a, &a->cb_error);
			if (n < 0)
				goto failed;
			if (n == 0) {
				a->input_eof = 1;
				break;
			}
			a->compressed_pass += (uint64_t)n;
			a->stats.compressed_read += (uint64_t)n;
		}
		double t0 = trs__now();
		size_t before = a->zin.pos;
		size_t rc = ZSTD_decompressStream(a->zstd, &zout, &a->zin);
		a->stats.decompress_seconds += trs__now() - t0;
		if (ZSTD_isError(rc)) {
			zstd_failure(a, rc, &a->cb_error);
			goto failed;
		}
		if (a->zin.pos > before || zout.pos > 0)
			a->frame_open = rc != 0;
		if (rc == 0)
			a->frames++;
	}
	if (zout.pos == 0 && a->input_eof) {
		if (a->frame_open) {
			trs__error_set(&a->cb_error, TRS_EARCHIVE,
				       "archive %s is truncated: its zstd stream ends in the middle of a frame "
				       "after %llu compressed bytes; the copy is incomplete, fetch it again",
				       TRS__SHORT(a->name), (unsigned long long)a->compressed_pass);
			goto failed;
		}
		if (a->compressed_pass == 0) {
			trs__error_set(&a->cb_error, TRS_EARCHIVE, "archive %s is empty (0 bytes)",
				       TRS__SHORT(a->name));
			goto failed;
		}
		return 0;
	}
	a->decompressed_pass += zout.pos;
	a->stats.decompressed += zout.pos;
	const trs_ctx *ctx = a->ctx;
	if (a->decompressed_pass > ctx->max_decompressed_bytes) {
		trs__error_set(&a->cb_error, TRS_ELIMIT,
			       "archive %s expands beyond the limit of %llu bytes; refusing it as a "
			       "decompression bomb (raise --max-decompressed if it is genuine)",
			       TRS__SHORT(a->name), (unsigned long long)ctx->max_decompressed_bytes);
		goto failed;
	}
	if (ctx->max_ratio && a->decompressed_pass > (1u << 20) &&
	    a->decompressed_pass / (a->compressed_pass ? a->compressed_pass : 1) > ctx->max_ratio) {
		trs__error_set(&a->cb_error, TRS_ELIMIT,
			       "archive %s expands more than %llu:1 (compression ratio limit); refusing it as "
			       "a decompression bomb (raise --max-ratio if it is genuine)",
			       TRS__SHORT(a->name), (unsigned long long)ctx->max_ratio);
		goto failed;
	}
	report_progress(a, 0);
	return (la_ssize_t)zout.pos;
failed:
	a->cb_failed = 1;
	archive_set_error(ar, EIO, "%s", a->cb_error.message);
	return -1;
}

static int tar_error(trs_archive *a, const char *doing, trs_error *err)
{
	if (a->cb_failed) {
		if (err)
			*err = a->cb_error;
		return a->cb_error.code;
	}
	const char *why = archive_error_string(a->tar);
	return trs__error_set(err, TRS_EARCHIVE,
			      "archive %s is not a readable tar (%s member %llu: %s); the archive is damaged "
			      "or not from the source side",
			      TRS__SHORT(a->name), doing, (unsigned long long)a->member_index,
			      why ? why : "unknown error");
}

static void close_tar(trs_archive *a)
{
	if (a->tar) {
		archive_read_free(a->tar);
		a->tar = NULL;
	}
}

static int start_pass(trs_archive *a, trs_error *err)
{
	close_tar(a);
	ZSTD_DCtx_reset(a->zstd, ZSTD_reset_session_only);
	a->zin.src = a->in;
	a->zin.size = a->zin.pos = 0;
	a->input_eof = 0;
	a->frame_open = 0;
	a->frames = 0;
	a->cb_failed = 0;
	a->member_index = 0;
	a->have_member = 0;
	a->at_end = 0;
	a->compressed_pass = 0;
	a->decompressed_pass = 0;
	a->fd_offset = 0;
	a->data_pos = 0;
	a->stats.passes++;
	a->tar = archive_read_new();
	if (!a->tar)
		return trs__error_set(err, TRS_ENOMEM, "out of memory creating a tar reader");
	archive_read_support_format_tar(a->tar);
	/* PAX headers carry UTF-8 names; read them as such whatever the locale. */
	archive_read_set_options(a->tar, "hdrcharset=UTF-8");
	if (archive_read_open(a->tar, a, NULL, tar_read, NULL) != ARCHIVE_OK)
		return tar_error(a, "opening", err);
	return 0;
}

TRS_EXTERN(int) trs_archive_open(trs_archive **out, const trs_archive_source *src, const trs_ctx *ctx, trs_error *err)
{
	*out = NULL;
	if (!src || src->version == 0 || src->version > TRS_ARCHIVE_SOURCE_VERSION)
		return trs__error_set(err, TRS_EINVAL, "trs_archive_open needs a trs_archive_source from TRS_ARCHIVE_SOURCE_INIT");
	int kinds = !!src->path + (src->fd >= 0) + !!src->data + !!src->read;
	if (kinds != 1)
		return trs__error_set(err, TRS_EINVAL, "trs_archive_source needs exactly one of path, fd, data or read");
	trs_archive *a = trs__calloc(1, sizeof(*a), err);
	if (!a)
		return TRS_ENOMEM;
	a->ctx = TRS_CTX(ctx);
	a->fd = -1;
	const char *name = src->name ? src->name : src->path ? src->path : src->data ? "<memory>" : "<stream>";
	int rc = TRS_ENOMEM;
	if (!(a->name = trs__strdup(name, err)))
		goto fail;
	if (src->path) {
		a->fd = open(src->path, O_RDONLY | O_CLOEXEC);
		if (a->fd < 0) {
			rc = trs__error_errno(err, errno, "archive %s: cannot open it", TRS__SHORT(a->name));
			if (err && errno == ENOENT)
				err->code = rc = TRS_ENOTFOUND;
			goto fail;
		}
		a->owns_fd = 1;
	} else if (src->fd >= 0) {
		a->fd = src->fd;
	}
	if (a->fd >= 0) {
		struct stat st;
		if (fstat(a->fd, &st) == 0 && S_ISREG(st.st_mode))
			a->compressed_size = (uint64_t)st.st_size;
		else if (fstat(a->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			rc = trs__error_set(err, TRS_EINVAL, "archive %s is a directory, not a .tar.zst file",
					    TRS__SHORT(a->name));
			goto fail;
		}
		posix_fadvise(a->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	a->data = src->data;
	a->data_size = src->size;
	if (a->data)
		a->compressed_size = src->size;
	a->read_cb = src->read;
	a->rewind_cb = src->rewind;
	a->userdata = src->userdata;
	if (src->compressed_size)
		a->compressed_size = src->compressed_size;
	a->in = trs__malloc(IN_SIZE, err);
	a->out = trs__malloc(OUT_SIZE, err);
	a->zstd = ZSTD_createDStream();
	if (!a->in || !a->out || !a->zstd) {
		rc = trs__error_set(err, TRS_ENOMEM, "out of memory opening archive %s", TRS__SHORT(a->name));
		goto fail;
	}
	ZSTD_DCtx_setParameter(a->zstd, ZSTD_d_windowLogMax, (int)a->ctx->max_window_log);
	if ((rc = start_pass(a, err)) < 0)
		goto fail;
	*out = a;
	return 0;
fail:
	trs_archive_close(a);
	return rc;
}

static trs_member_type member_type(struct archive_entry *e)
{
	if (archive_entry_hardlink(e))
		return TRS_MEMBER_HARDLINK;
	switch (archive_entry_filetype(e)) {
	case AE_IFREG: return TRS_MEMBER_FILE;
	case AE_IFDIR: return TRS_MEMBER_DIRECTORY;
	case AE_IFLNK: return TRS_MEMBER_SYMLINK;
	default: return TRS_MEMBER_OTHER;
	}
}

TRS_EXTERN(int) trs_archive_next(trs_archive *a, trs_member *member, trs_error *err)
{
	if (a->at_end)
		return 0;
	struct archive_entry *e;
	int r = archive_read_next_header(a->tar, &e);
	if (r == ARCHIVE_EOF) {
		a->at_end = 1;
		a->have_member = 0;
		a->stats.tar_size = a->decompressed_pass;
		a->stats.members = a->member_index;
		report_progress(a, 1);
		return 0;
	}
	if (r < ARCHIVE_WARN) {
		a->have_member = 0;
		return tar_error(a, "reading the header of", err);
	}
	const char *path = archive_entry_pathname_utf8(e);
	if (!path)
		path = archive_entry_pathname(e);
	if (!path)
		return trs__error_set(err, TRS_EARCHIVE, "archive %s: member %llu has no readable name",
				      TRS__SHORT(a->name), (unsigned long long)a->member_index);
	size_t len = strlen(path);
	if (len + 1 > a->path_cap) {
		char *p = realloc(a->path, len + 1);
		if (!p)
			return trs__error_set(err, TRS_ENOMEM, "out of memory");
		a->path = p;
		a->path_cap = len + 1;
	}
	memcpy(a->path, path, len + 1);
	member->path = a->path;
	member->type = member_type(e);
	member->size = archive_entry_size_is_set(e) && archive_entry_size(e) > 0 ? (uint64_t)archive_entry_size(e) : 0;
	member->index = a->member_index++;
	a->have_member = 1;
	return 1;
}

TRS_EXTERN(int64_t) trs_archive_read(trs_archive *a, void *buf, size_t len, trs_error *err)
{
	if (!a->have_member)
		return 0;
	la_ssize_t n = archive_read_data(a->tar, buf, len);
	if (n < 0)
		return tar_error(a, "reading the data of", err);
	return n;
}

TRS_EXTERN(int) trs_archive_rewind(trs_archive *a, trs_error *err)
{
	if (a->read_cb) {
		if (!a->rewind_cb)
			return trs__error_set(err, TRS_EUNSUPPORTED,
					      "archive %s: its source cannot be read twice, and the manifest is not first",
					      TRS__SHORT(a->name));
		int rc = a->rewind_cb(a->userdata, err);
		if (rc < 0)
			return rc;
	}
	return start_pass(a, err);
}

/* tarfile writes "manifest.json"; accept "./manifest.json" as GNU tar would write it. */
static int is_manifest(const char *path)
{
	if (path[0] == '.' && path[1] == '/')
		path += 2;
	return strcmp(path, MANIFEST_NAME) == 0;
}

int trs__archive_is_manifest(const char *path)
{
	return is_manifest(path);
}

TRS_EXTERN(int) trs_archive_read_manifest(trs_archive *a, trs_manifest **out, trs_error *err)
{
	*out = NULL;
	if (a->member_index > 0 || a->at_end) {
		int rc = trs_archive_rewind(a, err);
		if (rc < 0)
			return rc;
	}
	trs_member m;
	int rc;
	uint64_t files_before = 0;
	while ((rc = trs_archive_next(a, &m, err)) == 1) {
		if (!is_manifest(m.path)) {
			if (m.type == TRS_MEMBER_FILE)
				files_before++;
			continue;
		}
		if (m.type != TRS_MEMBER_FILE)
			return trs__error_set(err, TRS_EMANIFEST, "archive %s: manifest.json is not a regular file",
					      TRS__SHORT(a->name));
		break;
	}
	if (rc < 0)
		return rc;
	if (rc == 0) {
		a->manifest_position = TRS_MANIFEST_ABSENT;
		return trs__error_set(err, TRS_EMANIFEST,
				      "archive %s has no manifest.json; it is not an archive from the source side",
				      TRS__SHORT(a->name));
	}
	if (m.size > a->ctx->max_manifest_bytes)
		return trs__error_set(err, TRS_ELIMIT,
				      "archive %s: manifest.json claims %llu bytes, over the limit of %llu; refusing it "
				      "(raise --max-manifest if the archive is trusted)",
				      TRS__SHORT(a->name), (unsigned long long)m.size,
				      (unsigned long long)a->ctx->max_manifest_bytes);
	trs_manifest_limits limits = {a->ctx->max_manifest_bytes, a->ctx->max_manifest_objects, 0};
	trs_manifest_parser *p;
	if ((rc = trs_manifest_parser_new(&p, &limits, err)) < 0)
		return rc;
	unsigned char buf[65536];
	int64_t n;
	while ((n = trs_archive_read(a, buf, sizeof(buf), err)) > 0) {
		if ((rc = trs_manifest_parser_feed(p, buf, (size_t)n, err)) < 0)
			break;
	}
	if (n < 0)
		rc = (int)n;
	if (rc == 0)
		rc = trs_manifest_parser_finish(p, out, err);
	trs_manifest_parser_free(p);
	if (rc < 0) {
		trs__error_prefix(err, "archive %s", TRS__SHORT(a->name));
		return rc;
	}
	if (files_before == 0) {
		/* One pass does everything: stay where we are, right after the manifest. */
		a->manifest_position = TRS_MANIFEST_FIRST;
		return 0;
	}
	/* Is anything after it? One more header tells LAST from MIDDLE. */
	trs_member next;
	int more;
	do
		more = trs_archive_next(a, &next, err);
	while (more == 1 && next.type == TRS_MEMBER_DIRECTORY);
	if (more < 0)
		goto fail;
	a->manifest_position = more == 1 ? TRS_MANIFEST_MIDDLE : TRS_MANIFEST_LAST;
	if ((rc = trs_archive_rewind(a, err)) < 0)
		goto fail_rc;
	return 0;
fail:
	rc = more;
fail_rc:
	trs_manifest_free(*out);
	*out = NULL;
	return rc;
}

TRS_EXTERN(trs_manifest_position) trs_archive_manifest_position(const trs_archive *a)
{
	return a->manifest_position;
}

TRS_EXTERN(void) trs_archive_get_stats(const trs_archive *a, trs_archive_stats *stats)
{
	*stats = a->stats;
}

TRS_EXTERN(const char *) trs_archive_name(const trs_archive *a)
{
	return a->name;
}

TRS_EXTERN(void) trs_archive_close(trs_archive *a)
{
	if (!a)
		return;
	close_tar(a);
	if (a->zstd)
		ZSTD_freeDStream(a->zstd);
	if (a->owns_fd && a->fd >= 0)
		close(a->fd);
	free(a->in);
	free(a->out);
	free(a->path);
	free(a->name);
	free(a);
}
