/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tar_stdout_backend: a custom storage backend. Restores an archive, but
 * instead of writing objects to S3 or a directory, writes them as one PAX
 * tar stream on stdout: member "<bucket>/<key>", with the storage class,
 * KMS key, tags and metadata of the put as PAX extended attributes
 * (SCHILY.xattr.user.trs.storage_class, ...kms_key_id, ...tag.<k>,
 * ...meta.<k>; `tar --xattrs -xf` restores them as user.* xattrs).
 *
 *     cc tar_stdout_backend.c $(pkg-config --cflags --libs libtrs libarchive) -o tar_stdout_backend
 *     ./tar_stdout_backend data/example.tar.zst eu-west-1 > restored.tar
 *     tar -tvf restored.tar
 *
 * What it shows (docs/api.md, "Writing a storage backend"):
 * - a struct whose first member is a trs_storage, set up with
 *   trs_storage_init_backend, handed to trs_process like a built-in backend;
 * - put's contract: read the body until read() returns 0 before the object
 *   becomes visible, and drop it when read() fails (an integrity failure at
 *   the last byte). A tar stream cannot take back a member once its header
 *   is out, so each body is spooled to an unlinked temporary file first and
 *   appended to the stream only when complete;
 * - puts may come from several threads at once: a mutex serialises appends;
 * - copy (the library uses it for the second and later targets of a large
 *   object) becomes a hard-link member pointing at the first target's member.
 *
 * Exit status: 0 all written, 1 some objects failed, 2 usage, 3 unreadable.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <trs.h>
#include <trs/sys/storage.h>

typedef struct tar_backend {
	trs_storage parent; /* first: the library sees a trs_storage */
	struct archive *out;
	pthread_mutex_t lock; /* one member at a time into the stream */
	int broken;           /* the stream failed: every later put fails */
} tar_backend;

static int fail(trs_error *err, int code, const char *what, const char *bucket, const char *key)
{
	err->code = code;
	snprintf(err->message, sizeof(err->message), "%s (%s/%s)", what, bucket, key);
	return code;
}

static char *member_name(const char *bucket, const char *key)
{
	size_t n = strlen(bucket) + strlen(key) + 2;
	char *name = malloc(n);
	if (name)
		snprintf(name, n, "%s/%s", bucket, key);
	return name;
}

static void add_attr(struct archive_entry *e, const char *prefix, const char *name, const char *value)
{
	char attr[512];
	snprintf(attr, sizeof(attr), "%s%s", prefix, name);
	archive_entry_xattr_add_entry(e, attr, value, strlen(value));
}

static void add_request_attrs(struct archive_entry *e, const trs_put_request *req)
{
	if (req->storage_class && *req->storage_class)
		add_attr(e, "user.trs.", "storage_class", req->storage_class);
	if (req->kms_key_id && *req->kms_key_id)
		add_attr(e, "user.trs.", "kms_key_id", req->kms_key_id);
	for (size_t i = 0; i < req->ntags; i++)
		add_attr(e, "user.trs.tag.", req->tags[i].key, req->tags[i].value);
	for (size_t i = 0; i < req->nmetadata; i++)
		add_attr(e, "user.trs.meta.", req->metadata[i].key, req->metadata[i].value);
}

/* Append one complete member; called with the lock held. */
static int append_member(tar_backend *b, const trs_put_request *req, FILE *spool, uint64_t size, trs_error *err)
{
	char *name = member_name(req->bucket, req->key);
	struct archive_entry *e = archive_entry_new();
	int rc = 0;
	if (!name || !e) {
		rc = fail(err, TRS_ENOMEM, "out of memory", req->bucket, req->key);
		goto out;
	}
	archive_entry_set_pathname_utf8(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	add_request_attrs(e, req);
	if (archive_write_header(b->out, e) != ARCHIVE_OK) {
		rc = fail(err, TRS_EIO, archive_error_string(b->out), req->bucket, req->key);
		goto out;
	}
	char buf[64 * 1024];
	size_t n;
	rewind(spool);
	while ((n = fread(buf, 1, sizeof(buf), spool)) > 0) {
		if (archive_write_data(b->out, buf, n) != (la_ssize_t)n) {
			rc = fail(err, TRS_EIO, archive_error_string(b->out), req->bucket, req->key);
			goto out;
		}
	}
	if (ferror(spool))
		rc = fail(err, TRS_EIO, "cannot read back the spooled body", req->bucket, req->key);
out:
	if (rc == TRS_EIO)
		b->broken = 1; /* a half-written member: the stream is unusable */
	archive_entry_free(e);
	free(name);
	return rc;
}

static int tar_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	tar_backend *b = (tar_backend *)self;
	FILE *spool = tmpfile(); /* unlinked: nothing is left behind whatever happens */
	if (!spool)
		return fail(err, TRS_EIO, strerror(errno), req->bucket, req->key);
	char buf[64 * 1024];
	uint64_t size = 0;
	int64_t n;
	/* Read until 0: only then has the library checked size and MD5. */
	while ((n = body->read(body->self, buf, sizeof(buf), err)) > 0) {
		if (fwrite(buf, 1, (size_t)n, spool) != (size_t)n) {
			fclose(spool);
			return fail(err, TRS_EIO, "cannot spool the body", req->bucket, req->key);
		}
		size += (uint64_t)n;
	}
	if (n < 0) {
		fclose(spool); /* the object never becomes visible; err is read()'s */
		return (int)n;
	}
	if (fflush(spool) != 0) {
		fclose(spool);
		return fail(err, TRS_EIO, "cannot spool the body", req->bucket, req->key);
	}
	pthread_mutex_lock(&b->lock);
	int rc = b->broken ? fail(err, TRS_EIO, "the tar stream failed earlier", req->bucket, req->key)
			   : append_member(b, req, spool, size, err);
	pthread_mutex_unlock(&b->lock);
	fclose(spool);
	return rc;
}

static int tar_copy(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
		    trs_error *err)
{
	tar_backend *b = (tar_backend *)self;
	char *name = member_name(req->bucket, req->key);
	char *target = member_name(src_bucket, src_key);
	struct archive_entry *e = archive_entry_new();
	int rc = 0;
	if (!name || !target || !e) {
		rc = fail(err, TRS_ENOMEM, "out of memory", req->bucket, req->key);
		goto out;
	}
	archive_entry_set_pathname_utf8(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_hardlink_utf8(e, target); /* the source member is already in the stream */
	archive_entry_set_size(e, 0);
	add_request_attrs(e, req);
	pthread_mutex_lock(&b->lock);
	if (b->broken || archive_write_header(b->out, e) != ARCHIVE_OK) {
		b->broken = 1;
		rc = fail(err, TRS_EIO, "cannot write a hard-link member", req->bucket, req->key);
	}
	pthread_mutex_unlock(&b->lock);
out:
	archive_entry_free(e);
	free(target);
	free(name);
	return rc;
}

static void tar_free(trs_storage *self)
{
	tar_backend *b = (tar_backend *)self;
	archive_write_close(b->out); /* the end-of-archive blocks */
	archive_write_free(b->out);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static int tar_backend_new(trs_storage **out, int fd, trs_error *err)
{
	tar_backend *b = calloc(1, sizeof(*b));
	if (!b) {
		err->code = TRS_ENOMEM;
		snprintf(err->message, sizeof(err->message), "out of memory");
		return TRS_ENOMEM;
	}
	int rc = trs_storage_init_backend(&b->parent, TRS_STORAGE_VERSION);
	if (rc < 0) {
		free(b);
		err->code = rc;
		snprintf(err->message, sizeof(err->message), "this libtrs does not know storage version %d",
			 TRS_STORAGE_VERSION);
		return rc;
	}
	b->parent.name = "tar-stdout";
	b->parent.put = tar_put;
	b->parent.copy = tar_copy;
	b->parent.free = tar_free; /* get, head, del stay NULL: "not supported" */
	pthread_mutex_init(&b->lock, NULL);
	b->out = archive_write_new();
	if (!b->out || archive_write_set_format_pax_restricted(b->out) != ARCHIVE_OK ||
	    /* Attributes as SCHILY.xattr.* records only, which GNU tar reads too. */
	    archive_write_set_format_option(b->out, "pax", "xattrheader", "SCHILY") < ARCHIVE_WARN ||
	    archive_write_open_fd(b->out, fd) != ARCHIVE_OK) {
		err->code = TRS_EIO;
		snprintf(err->message, sizeof(err->message), "cannot start the tar stream: %s",
			 b->out ? archive_error_string(b->out) : "out of memory");
		if (b->out)
			archive_write_free(b->out);
		pthread_mutex_destroy(&b->lock);
		free(b);
		return TRS_EIO;
	}
	*out = &b->parent;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s ARCHIVE.tar.zst [REGION] > restored.tar\n", argv[0]);
		return 2;
	}
	/* libarchive converts names through the locale's character set (and its
	 * pax writer cannot cope with a name that has no form in it): keys are
	 * UTF-8, so use a UTF-8 locale whatever the environment says. */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, "%s: stdout is a terminal; redirect it to a file or a pipe\n", argv[0]);
		return 2;
	}
	trs_error err = TRS_ERROR_INIT;
	trs_ctx_options opts = TRS_CTX_OPTIONS_INIT;
	opts.region = argc == 3 ? argv[2] : NULL; /* NULL: AWS_REGION, AWS_DEFAULT_REGION */
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.path = argv[1];

	trs_ctx *ctx = NULL;
	trs_storage *tar = NULL;
	trs_report *report = NULL;
	int status = 2;
	if (trs_ctx_new(&ctx, &opts, &err) < 0 || tar_backend_new(&tar, STDOUT_FILENO, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		goto out;
	}
	int rc = trs_process(ctx, tar, &src, NULL, &report, &err);
	if (report) {
		fprintf(stderr, "%llu objects written (%llu puts), %llu failed, %llu skipped\n",
			(unsigned long long)report->objects_written, (unsigned long long)report->puts_written,
			(unsigned long long)report->objects_failed, (unsigned long long)report->objects_skipped);
		for (size_t i = 0; i < report->nfailures; i++)
			fprintf(stderr, "FAILED %s -> %s/%s: %s\n", report->failures[i].relative_key,
				report->failures[i].bucket, report->failures[i].key, report->failures[i].message);
	}
	if (rc == 0) {
		status = 0;
	} else {
		fprintf(stderr, "%s: %s\n", trs_strerror(rc), err.message);
		status = rc == TRS_EPARTIAL ? 1 : rc == TRS_EINVAL ? 2 : 3;
	}
out:
	trs_report_free(report);
	trs_storage_free(tar); /* closes the tar stream */
	trs_ctx_free(ctx);
	return status;
}
