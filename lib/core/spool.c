/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The spool of small objects that come before the manifest (the source
 * side writes manifest.json last, so their keys are not known yet).
 *
 * Staging each one as a file of its own cost a file creation, then a link
 * into place and an unlink of the staged name: three directory operations
 * per object where tar does one, and the writers took turns on the
 * directory locks. Appended to one file instead, they cost a memcpy on
 * the reader, and a write per buffer on a writer thread, which hashes
 * each record on the way (the writers have nothing else to do until the
 * manifest comes). Once it has come, each object is created at its key
 * from its record, as a manifest-first archive's are.
 *
 * The file is unlinked from the start (it goes away with the process, kill
 * -9 included), and read back in order: what was read is punched out of
 * it, so that the spool and the restored objects do not take the space
 * twice.
 */
#include "spool.h"
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A record: index (8 bytes), size (8), path length (4), whether the MD5
 * was computed (4), the MD5 (16), the path and a NUL, the bytes.
 */
#define HEADER 40u

struct trs__spool {
	int fd;
	char *where;
	unsigned char *buf;
	size_t cap;
	size_t len;          /* bytes in buf: to write out, or read and not yet consumed */
	size_t pos;          /* reading: where the current record starts in buf */
	size_t last;         /* writing: where the last reserved record starts */
	int hash;
	uint64_t offset;     /* writing: the file offset of buf[0] */
	uint64_t read_at;    /* reading: the file offset after buf[len] */
	uint64_t punched;    /* reading: the file's bytes before this were given back */
	uint64_t count, bytes;
	int reading;
	int have;            /* reading: cur is parsed */
	size_t cur_len;
	char cur_md5[33];
	trs__spool_record cur;
	pthread_mutex_t mu;  /* writer threads: the first failure */
	int failed;
	trs_error err;
};

int trs__spool_new(trs__spool **out, int fd, unsigned char *first, size_t buffer, int hash, const char *where,
		   trs_error *err)
{
	*out = NULL;
	trs__spool *sp = first ? trs__calloc(1, sizeof(*sp), err) : NULL;
	if (sp) {
		sp->fd = fd;
		sp->buf = first;
		sp->cap = buffer;
		sp->hash = hash;
		pthread_mutex_init(&sp->mu, NULL);
		sp->where = trs__strdup(where, err);
	}
	if (!sp || !sp->where) {
		if (!first)
			trs__error_set(err, TRS_ENOMEM, "out of memory");
		if (sp)
			free(sp->where);
		free(sp);
		free(first);
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
	close(sp->fd);
	free(sp->buf);
	free(sp->where);
	pthread_mutex_destroy(&sp->mu);
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

unsigned char *trs__spool_reserve(trs__spool *sp, const char *path, uint64_t index, uint64_t size)
{
	size_t need = record_size(path, size);
	if (sp->len + need > sp->cap)
		return NULL;
	unsigned char *at = sp->buf + sp->len;
	uint32_t plen = (uint32_t)strlen(path), hashed = 0;
	memcpy(at, &index, 8);
	memcpy(at + 8, &size, 8);
	memcpy(at + 16, &plen, 4);
	memcpy(at + 20, &hashed, 4);
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
	memcpy(&size, sp->buf + sp->last + 8, 8);
	sp->len = sp->last;
	sp->count--;
	sp->bytes -= size;
}

void trs__spool_detach(trs__spool *sp, unsigned char **buf, size_t *len, uint64_t *offset)
{
	*buf = sp->buf;
	*len = sp->len;
	*offset = sp->offset;
	sp->offset += sp->len;
	sp->buf = NULL;
	sp->len = 0;
}

void trs__spool_attach(trs__spool *sp, unsigned char *buf)
{
	sp->buf = buf;
	sp->len = 0;
}

static void hash_records(unsigned char *buf, size_t len)
{
	for (size_t at = 0; at + HEADER <= len;) {
		uint64_t size;
		uint32_t plen, hashed = 1;
		memcpy(&size, buf + at + 8, 8);
		memcpy(&plen, buf + at + 16, 4);
		unsigned char *data = buf + at + HEADER + plen + 1;
		EVP_Digest(data, (size_t)size, buf + at + 24, NULL, trs__md5_md(), NULL);
		memcpy(buf + at + 20, &hashed, 4);
		at += HEADER + plen + 1 + (size_t)size;
	}
}

void trs__spool_write(trs__spool *sp, unsigned char *buf, size_t len, uint64_t offset)
{
	if (sp->hash)
		hash_records(buf, len);
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(sp->fd, buf + done, len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = n < 0 ? errno : EIO;
			pthread_mutex_lock(&sp->mu);
			if (!sp->failed++) {
				trs__error_errno(&sp->err, saved, "cannot write the spool of objects before the manifest in %s",
						 TRS__SHORT(sp->where));
				if (saved == ENOSPC || saved == EFBIG)
					snprintf(sp->err.message + strlen(sp->err.message),
						 sizeof(sp->err.message) - strlen(sp->err.message), " (free some space and run again)");
			}
			pthread_mutex_unlock(&sp->mu);
			return;
		}
		done += (size_t)n;
	}
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
	while (sp->len < sp->cap && sp->read_at < sp->offset) {
		ssize_t n = pread(sp->fd, sp->buf + sp->len, sp->cap - sp->len, (off_t)sp->read_at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return trs__error_errno(err, n < 0 ? errno : EIO,
						"cannot read back the spool of objects before the manifest in %s",
						TRS__SHORT(sp->where));
		sp->len += (size_t)n;
		sp->read_at += (uint64_t)n;
	}
	return 0;
}

int trs__spool_failed(trs__spool *sp, trs_error *err)
{
	pthread_mutex_lock(&sp->mu);
	int failed = sp->failed;
	if (failed && err)
		*err = sp->err;
	pthread_mutex_unlock(&sp->mu);
	return failed ? (err ? err->code : TRS_EIO) : 0;
}

/* The end of the writing: the last buffer is written out here, and becomes the one to read into. */
static int end_writing(trs__spool *sp, trs_error *err)
{
	sp->reading = 1;
	unsigned char *buf;
	size_t len;
	uint64_t offset;
	trs__spool_detach(sp, &buf, &len, &offset);
	trs__spool_write(sp, buf, len, offset);
	trs__spool_attach(sp, buf);
	return trs__spool_failed(sp, err);
}

int trs__spool_peek(trs__spool *sp, trs__spool_record *rec, trs_error *err)
{
	int rc;
	if (!sp->reading && (rc = end_writing(sp, err)) < 0)
		return rc;
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
	uint32_t plen = 0, hashed = 0;
	if (sp->len - sp->pos >= HEADER) {
		memcpy(&size, at + 8, 8);
		memcpy(&plen, at + 16, 4);
		sp->cur_len = HEADER + (size_t)plen + 1 + (size_t)size;
	}
	if (sp->len - sp->pos < HEADER || sp->cur_len > sp->cap)
		return trs__error_set(err, TRS_EIO, "the spool of objects before the manifest in %s is damaged",
				      TRS__SHORT(sp->where));
	if (sp->len - sp->pos < sp->cur_len) {
		if ((rc = refill(sp, err)) < 0)
			return rc;
		at = sp->buf;
		if (sp->len < sp->cur_len)
			return trs__error_set(err, TRS_EIO, "the spool of objects before the manifest in %s ends early",
					      TRS__SHORT(sp->where));
	}
	memcpy(&index, at, 8);
	memcpy(&hashed, at + 20, 4);
	if (hashed)
		trs__hex(at + 24, 16, sp->cur_md5);
	sp->cur = (trs__spool_record){(const char *)at + HEADER, index, size, at + HEADER + plen + 1,
				      hashed ? sp->cur_md5 : NULL};
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
