/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trs_pack: write an archive the way the source side does. Python's tarfile
 * writes PAX (pax headers only where ustar cannot say it); libarchive's
 * "pax restricted" format is the same rule. Objects come first and
 * manifest.json last unless asked otherwise.
 */
#include "digest.h"
#include "internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <zstd.h>

typedef struct {
	char *rel;      /* path relative to input_dir */
	uint64_t size;
	char md5[33];
	int64_t mtime;
} pack_file;

typedef struct {
	const trs_ctx *ctx;
	const trs_pack_options *o;
	pack_file *files;
	size_t nfiles, cap;
	/* output */
	int fd;
	int fd_is_callers;  /* output_fd: written, never synced, closed or removed */
	const char *name;   /* the output, in messages */
	ZSTD_CCtx *zstd;
	unsigned char *zbuf;
	size_t zbuf_size;
	trs_error io_error;
	int io_failed;
} packer;

static int cmp_files(const void *a, const void *b)
{
	return strcmp(((const pack_file *)a)->rel, ((const pack_file *)b)->rel);
}

static int file_md5(const char *path, char out[33], uint64_t *size, trs_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return trs__error_errno(err, errno, "cannot open %s", TRS__SHORT(path));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536];
	ssize_t n;
	*size = 0;
	EVP_DigestInit_ex(md, trs__md5_md(), NULL);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	int saved = errno;
	close(fd);
	unsigned char d[16];
	EVP_DigestFinal_ex(md, d, NULL);
	EVP_MD_CTX_free(md);
	if (n < 0)
		return trs__error_errno(err, saved, "cannot read %s", TRS__SHORT(path));
	trs__hex(d, 16, out);
	return 0;
}

static int walk(packer *p, const char *dir, const char *rel, trs_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return trs__error_errno(err, errno, "cannot list %s", TRS__SHORT(dir));
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		size_t plen = strlen(dir) + strlen(de->d_name) + 2;
		size_t rlen = strlen(rel) + strlen(de->d_name) + 2;
		char *path = malloc(plen), *r = malloc(rlen);
		if (!path || !r) {
			free(path);
			free(r);
			rc = trs__error_set(err, TRS_ENOMEM, "out of memory");
			break;
		}
		snprintf(path, plen, "%s/%s", dir, de->d_name);
		snprintf(r, rlen, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		struct stat st;
		if (lstat(path, &st) < 0) {
			rc = trs__error_errno(err, errno, "cannot stat %s", TRS__SHORT(path));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(p, path, r, err);
		} else if (S_ISREG(st.st_mode)) {
			if (p->nfiles == p->cap) {
				size_t cap = p->cap ? p->cap * 2 : 64;
				pack_file *f = realloc(p->files, cap * sizeof(*f));
				if (!f) {
					rc = trs__error_set(err, TRS_ENOMEM, "out of memory");
					free(path);
					free(r);
					break;
				}
				p->files = f;
				p->cap = cap;
			}
			pack_file *f = &p->files[p->nfiles];
			f->rel = r;
			f->mtime = (int64_t)st.st_mtime;
			rc = file_md5(path, f->md5, &f->size, err);
			if (rc == 0) {
				p->nfiles++;
				r = NULL;
			}
		} else {
			trs__log(p->ctx, TRS_LOG_WARN, "not a regular file; not packed", "path", path, NULL);
		}
		free(path);
		free(r);
	}
	closedir(d);
	return rc;
}

static void gstr(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gpair(yajl_gen g, const char *k, const char *v)
{
	gstr(g, k);
	gstr(g, v);
}

static int build_manifest(packer *p, yajl_gen g)
{
	const trs_pack_options *o = p->o;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "    ");
	yajl_gen_map_open(g);
	gstr(g, "targets");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < o->ntargets; i++) {
		const trs_manifest_target *t = &o->targets[i];
		yajl_gen_map_open(g);
		gpair(g, "region", t->region);
		gpair(g, "bucket", t->bucket);
		if (t->storage_class && *t->storage_class)
			gpair(g, "storage_class", t->storage_class);
		if (t->kms_key_arn && *t->kms_key_arn)
			gpair(g, "kms_key_arn", t->kms_key_arn);
		if (t->backup) {
			gstr(g, "backup");
			yajl_gen_bool(g, 1);
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	gstr(g, "objects");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < p->nfiles; i++) {
		const pack_file *f = &p->files[i];
		char when[32];
		time_t t = (time_t)f->mtime;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		yajl_gen_map_open(g);
		gpair(g, "source_bucket", o->source_bucket ? o->source_bucket : "local");
		gpair(g, "source_prefix", o->source_prefix ? o->source_prefix : "");
		gpair(g, "object_name", f->rel);
		gpair(g, "relative_key", f->rel);
		gstr(g, "tags");
		yajl_gen_array_open(g);
		yajl_gen_array_close(g);
		gpair(g, "creation_time", when);
		gpair(g, "etag", f->md5);
		gstr(g, "size");
		yajl_gen_integer(g, (long long)f->size);
		gpair(g, "storage_class", "STANDARD");
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return 0;
}

static int out_write(packer *p, const void *data, size_t len, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = {data, len, 0};
	for (;;) {
		ZSTD_outBuffer out = {p->zbuf, p->zbuf_size, 0};
		size_t left = ZSTD_compressStream2(p->zstd, &out, &in, mode);
		if (ZSTD_isError(left)) {
			trs__error_set(&p->io_error, TRS_EIO, "zstd: %s", ZSTD_getErrorName(left));
			return -1;
		}
		const unsigned char *b = p->zbuf;
		size_t n = out.pos;
		while (n) {
			ssize_t w = write(p->fd, b, n);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				trs__error_errno(&p->io_error, errno, "cannot write %s", TRS__SHORT(p->name));
				return -1;
			}
			b += w;
			n -= (size_t)w;
		}
		if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return 0;
	}
}

static la_ssize_t tar_write(struct archive *a, void *ud, const void *buf, size_t len)
{
	packer *p = ud;
	if (out_write(p, buf, len, ZSTD_e_continue) < 0) {
		p->io_failed = 1;
		archive_set_error(a, EIO, "%s", p->io_error.message);
		return -1;
	}
	return (la_ssize_t)len;
}

static int add_member(packer *p, struct archive *a, const char *name, const void *data, uint64_t size,
		      const char *path, int64_t mtime, trs_error *err)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	archive_entry_set_pathname_utf8(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, (time_t)mtime, 0);
	int rc = 0;
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		rc = trs__error_set(err, TRS_EIO, "cannot add %s to the archive: %s", TRS__SHORT(name),
				    archive_error_string(a));
		goto out;
	}
	if (data) {
		if (archive_write_data(a, data, (size_t)size) < 0)
			rc = trs__error_set(err, TRS_EIO, "cannot add %s: %s", TRS__SHORT(name),
					    archive_error_string(a));
		goto out;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = trs__error_errno(err, errno, "cannot open %s", TRS__SHORT(path));
		goto out;
	}
	static __thread unsigned char buf[256 * 1024];
	ssize_t n;
	uint64_t total = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0 && total < size) {
		if ((uint64_t)n > size - total)
			n = (ssize_t)(size - total); /* the file grew since we measured it */
		if (archive_write_data(a, buf, (size_t)n) < 0) {
			rc = trs__error_set(err, TRS_EIO, "cannot add %s: %s", TRS__SHORT(name),
					    archive_error_string(a));
			break;
		}
		total += (uint64_t)n;
	}
	close(fd);
	if (rc == 0 && total != size)
		rc = trs__error_set(err, TRS_EIO, "%s changed size while being packed", TRS__SHORT(path));
out:
	archive_entry_free(e);
	return rc;
}

TRS_EXTERN(int) trs_pack(const trs_ctx *ctx, const trs_pack_options *o, uint64_t *objects, trs_error *err)
{
	int output_fd = o && o->version >= 2 ? o->output_fd : -1;
	if (!o || o->version == 0 || o->version > TRS_PACK_OPTIONS_VERSION || !o->input_dir ||
	    (!o->output_path && output_fd < 0))
		return trs__error_set(err, TRS_EINVAL, "trs_pack needs options with input_dir and output_path or output_fd");
	if (o->level < 0 || o->level > 22)
		return trs__error_set(err, TRS_EINVAL, "zstd level must be 1..22, not %d", o->level);
	packer p = {0};
	p.ctx = TRS_CTX(ctx);
	p.o = o;
	p.fd = -1;
	p.name = o->output_path ? o->output_path : "the output";
	int rc = walk(&p, o->input_dir, "", err);
	yajl_gen g = NULL;
	struct archive *a = NULL;
	char *tmp = NULL;
	if (rc < 0)
		goto done;
	qsort(p.files, p.nfiles, sizeof(*p.files), cmp_files);
	g = yajl_gen_alloc(NULL);
	if (!g) {
		rc = trs__error_set(err, TRS_ENOMEM, "out of memory");
		goto done;
	}
	build_manifest(&p, g);
	const unsigned char *mjson;
	size_t mlen;
	yajl_gen_get_buf(g, &mjson, &mlen);

	p.zstd = ZSTD_createCCtx();
	p.zbuf_size = ZSTD_CStreamOutSize();
	p.zbuf = malloc(p.zbuf_size);
	if (!p.zstd || !p.zbuf) {
		rc = trs__error_set(err, TRS_ENOMEM, "out of memory");
		goto done;
	}
	if (output_fd >= 0) {
		p.fd = output_fd;
		p.fd_is_callers = 1;
	} else {
		/* A temporary file renamed over the output at the end: a reader never sees half an archive. */
		size_t tlen = strlen(o->output_path) + 16;
		if (!(tmp = malloc(tlen))) {
			rc = trs__error_set(err, TRS_ENOMEM, "out of memory");
			goto done;
		}
		snprintf(tmp, tlen, "%s.tmp%05d", o->output_path, (int)(getpid() % 100000));
		p.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (p.fd < 0) {
			rc = trs__error_errno(err, errno, "cannot create %s", TRS__SHORT(tmp));
			goto done;
		}
	}
	ZSTD_CCtx_setParameter(p.zstd, ZSTD_c_compressionLevel, o->level ? o->level : 3);
	ZSTD_CCtx_setParameter(p.zstd, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(p.zstd, ZSTD_c_nbWorkers, (int)(o->threads ? o->threads : p.ctx->workers));
	a = archive_write_new();
	if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open(a, &p, NULL, tar_write, NULL) != ARCHIVE_OK) {
		rc = trs__error_set(err, TRS_EIO, "cannot start the tar writer");
		goto done;
	}
	time_t now = time(NULL);
	if (o->manifest_first)
		rc = add_member(&p, a, "manifest.json", mjson, mlen, NULL, (int64_t)now, err);
	for (size_t i = 0; rc == 0 && i < p.nfiles; i++) {
		const pack_file *f = &p.files[i];
		size_t nlen = strlen(f->rel) + 9, plen = strlen(o->input_dir) + strlen(f->rel) + 2;
		char *name = malloc(nlen), *path = malloc(plen);
		if (!name || !path) {
			rc = trs__error_set(err, TRS_ENOMEM, "out of memory");
		} else {
			snprintf(name, nlen, "objects/%s", f->rel);
			snprintf(path, plen, "%s/%s", o->input_dir, f->rel);
			rc = add_member(&p, a, name, NULL, f->size, path, f->mtime, err);
		}
		free(name);
		free(path);
	}
	if (rc == 0 && !o->manifest_first)
		rc = add_member(&p, a, "manifest.json", mjson, mlen, NULL, (int64_t)now, err);
	if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
		rc = trs__error_set(err, TRS_EIO, "cannot finish the tar: %s", archive_error_string(a));
	if (rc == 0 && out_write(&p, NULL, 0, ZSTD_e_end) < 0) {
		if (err)
			*err = p.io_error;
		rc = p.io_error.code;
	}
	if (rc < 0 && p.io_failed && err)
		*err = p.io_error;
	if (rc == 0 && p.fd_is_callers) {
		p.fd = -1;
	} else if (rc == 0 && (fsync(p.fd) < 0 || close(p.fd) < 0)) {
		rc = trs__error_errno(err, errno, "cannot write %s", TRS__SHORT(tmp));
		p.fd = -1;
	} else if (rc == 0) {
		p.fd = -1;
		if (rename(tmp, o->output_path) < 0)
			rc = trs__error_errno(err, errno, "cannot rename %s to %s", TRS__SHORT(tmp),
					      TRS__SHORT(o->output_path));
	}
	if (rc == 0 && objects)
		*objects = p.nfiles;
done:
	if (a)
		archive_write_free(a);
	if (p.fd >= 0 && !p.fd_is_callers)
		close(p.fd);
	if (rc < 0 && tmp)
		unlink(tmp);
	free(tmp);
	if (g)
		yajl_gen_free(g);
	ZSTD_freeCCtx(p.zstd);
	free(p.zbuf);
	for (size_t i = 0; i < p.nfiles; i++)
		free(p.files[i].rel);
	free(p.files);
	return rc;
}
