/*
 * The spool of small objects that come before the manifest (the source
 * side writes manifest.json last, so their keys are not known yet).
 *
 * Staging each one as a file of its own cost a file creation, then a link
 * into place and an unlink of the staged name: three directory operations
 * per object where tar does one, and the writers took turns on the
 * directory locks. Appended to one file instead, they cost a memcpy and a
 * write per buffer, and once the manifest has come each object is created
 * at its key from its record, as a manifest-first archive's are.
 *
 * The file is unlinked from the start (it goes away with the process, kill
 * -9 included), and read back in order: what was read is punched out of
 * it, so that the spool and the restored objects do not take the space
 * twice.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A record: index (8 bytes), size (8), path length (4), the path and a NUL, the bytes. */
#define HEADER 20u

struct trs__spool {
	int fd;
	char *where;
	unsigned char *buf;
	size_t cap;
	size_t len;          /* bytes in buf: to write out, or read and not yet consumed */
	size_t pos;          /* reading: where the current record starts in buf */
	size_t last;         /* writing: where the last reserved record starts */
	uint64_t written;    /* bytes written to the file */
	uint64_t read_at;    /* reading: the file offset after buf[len] */
	uint64_t punched;    /* reading: the file's bytes before this were given back */
	uint64_t count, bytes;
	int reading;
	int have;            /* reading: cur is parsed */
	size_t cur_len;
	trs__spool_record cur;
};

int trs__spool_new(trs__spool **out, int fd, size_t buffer, const char *where, trs_error *err)
{
	*out = NULL;
	trs__spool *sp = trs__calloc(1, sizeof(*sp), err);
	if (sp) {
		sp->fd = fd;
		sp->cap = buffer;
		sp->buf = trs__malloc(buffer, err);
		sp->where = trs__strdup(where, err);
	}
	if (!sp || !sp->buf || !sp->where) {
		if (sp)
			sp->fd = -1;
		trs__spool_free(sp);
		close(fd);
		return TRS_ENOMEM;
	}
	*out = sp;
	return 0;
}

void trs__spool_free(trs__spool *sp)
{
	if (!sp)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
	free(sp->buf);
	free(sp->where);
	free(sp);
}

static size_t record_size(const char *path, uint64_t size)
{
	return HEADER + strlen(path) + 1 + (size_t)size;
}

int trs__spool_fits(const trs__spool *sp, const char *path, uint64_t size)
{
	return size <= sp->cap && record_size(path, size) <= sp->cap;
}

static int write_out(trs__spool *sp, trs_error *err)
{
	if (trs__write_all(sp->fd, sp->buf, sp->len) < 0) {
		int saved = errno;
		int rc = trs__error_errno(err, saved, "cannot write the spool of objects before the manifest in %s",
					  sp->where);
		if (err && (saved == ENOSPC || saved == EFBIG))
			snprintf(err->message + strlen(err->message), sizeof(err->message) - strlen(err->message),
				 " (free some space and run again)");
		return rc;
	}
	sp->written += sp->len;
	sp->len = 0;
	return 0;
}

unsigned char *trs__spool_reserve(trs__spool *sp, const char *path, uint64_t index, uint64_t size, trs_error *err)
{
	size_t need = record_size(path, size);
	if (sp->len + need > sp->cap && write_out(sp, err) < 0)
		return NULL;
	unsigned char *at = sp->buf + sp->len;
	uint32_t plen = (uint32_t)strlen(path);
	memcpy(at, &index, 8);
	memcpy(at + 8, &size, 8);
	memcpy(at + 16, &plen, 4);
	memcpy(at + HEADER, path, plen + 1);
	sp->last = sp->len;
	sp->len += need;
	sp->count++;
	sp->bytes += size;
	return at + HEADER + plen + 1;
}

void trs__spool_unreserve(trs__spool *sp)
{
	uint64_t size;
	memcpy(&size, sp->buf + sp->last, 8);
	sp->len = sp->last;
	sp->count--;
	sp->bytes -= size;
}

uint64_t trs__spool_count(const trs__spool *sp)
{
	return sp->count;
}

uint64_t trs__spool_bytes(const trs__spool *sp)
{
	return sp->bytes;
}

/* Move what is left of the buffer to its start and fill the rest from the file. */
static int refill(trs__spool *sp, trs_error *err)
{
	memmove(sp->buf, sp->buf + sp->pos, sp->len - sp->pos);
	sp->len -= sp->pos;
	sp->pos = 0;
	/* Every byte before what the buffer holds was consumed: give it back to the filesystem. */
	uint64_t consumed = sp->read_at - sp->len;
	if (consumed > sp->punched) {
		(void)fallocate(sp->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)sp->punched,
				(off_t)(consumed - sp->punched)); /* a filesystem that cannot keeps the bytes */
		sp->punched = consumed;
	}
	while (sp->len < sp->cap && sp->read_at < sp->written) {
		ssize_t n = pread(sp->fd, sp->buf + sp->len, sp->cap - sp->len, (off_t)sp->read_at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return trs__error_errno(err, n < 0 ? errno : EIO,
						"cannot read back the spool of objects before the manifest in %s", sp->where);
		sp->len += (size_t)n;
		sp->read_at += (uint64_t)n;
	}
	return 0;
}

int trs__spool_peek(trs__spool *sp, trs__spool_record *rec, trs_error *err)
{
	int rc;
	if (!sp->reading) {
		if ((rc = write_out(sp, err)) < 0)
			return rc;
		sp->reading = 1;
	}
	if (sp->have) {
		*rec = sp->cur;
		return 1;
	}
	if (sp->len - sp->pos < HEADER && (rc = refill(sp, err)) < 0)
		return rc;
	if (sp->len == sp->pos)
		return 0;
	unsigned char *at = sp->buf + sp->pos;
	uint64_t index = 0, size = 0;
	uint32_t plen = 0;
	if (sp->len - sp->pos >= HEADER) {
		memcpy(&index, at, 8);
		memcpy(&size, at + 8, 8);
		memcpy(&plen, at + 16, 4);
		sp->cur_len = HEADER + (size_t)plen + 1 + (size_t)size;
	}
	if (sp->len - sp->pos < HEADER || sp->cur_len > sp->cap)
		return trs__error_set(err, TRS_EIO, "the spool of objects before the manifest in %s is damaged", sp->where);
	if (sp->len - sp->pos < sp->cur_len) {
		if ((rc = refill(sp, err)) < 0)
			return rc;
		at = sp->buf;
		if (sp->len < sp->cur_len)
			return trs__error_set(err, TRS_EIO, "the spool of objects before the manifest in %s ends early",
					      sp->where);
	}
	sp->cur = (trs__spool_record){(const char *)at + HEADER, index, size, at + HEADER + plen + 1};
	sp->have = 1;
	*rec = sp->cur;
	return 1;
}

void trs__spool_advance(trs__spool *sp)
{
	if (!sp->have)
		return;
	sp->pos += sp->cur_len;
	sp->have = 0;
}
