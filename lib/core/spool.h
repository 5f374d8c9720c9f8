/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The spool (lib/core/spool.c): small objects that come before the
 * manifest, appended to one unlinked file as records (the member's index
 * in the tar, its size, its path, its bytes) and read back in the same
 * order once the manifest has come. It keeps nothing per object in memory:
 * buffers, written out by writer threads (with each record's MD5, on the
 * core that would wait for the manifest otherwise), and one for reading.
 */
#ifndef TRS_SPOOL_H
#define TRS_SPOOL_H

#include "internal.h"

typedef struct trs__spool trs__spool;

typedef struct trs__spool_record {
	const char *path;          /* the member's path in the tar */
	uint64_t index;            /* its position in the tar */
	uint64_t size;
	const unsigned char *data; /* its `size` bytes */
	const char *md5;           /* their MD5 in hex, or NULL when the spool did not hash */
} trs__spool_record;

/* A spool on `fd` (the spool's now: closed by trs__spool_free) whose
 * records go through buffers of `buffer` bytes, `first` the first of them
 * (the spool's; NULL with err filled when that is out of memory). `hash`:
 * writing out a buffer computes each record's MD5 (lib/core/spool.c).
 * `where` names the file's directory in errors. */
int trs__spool_new(trs__spool **out, int fd, unsigned char *first, size_t buffer, int hash, const char *where,
		   trs_error *err);
void trs__spool_free(trs__spool *sp);

/* Whether a member of `size` bytes named `path` fits in one record. */
int trs__spool_fits(const trs__spool *sp, const char *path, uint64_t size);
/* Room in the buffer for the bytes of member `path` (`index`, `size`,
 * which must fit), or NULL when the buffer is full: hand it over
 * (trs__spool_detach) and give the spool a new one, then ask again. */
unsigned char *trs__spool_reserve(trs__spool *sp, const char *path, uint64_t index, uint64_t size);
/* Take back the record just reserved (its bytes could not be read). */
void trs__spool_unreserve(trs__spool *sp);
/* The full buffer, now the caller's, to be written out with
 * trs__spool_write (on a writer thread); then a new empty one for the spool. */
void trs__spool_detach(trs__spool *sp, unsigned char **buf, size_t *len, uint64_t *offset);
void trs__spool_attach(trs__spool *sp, unsigned char *buf);
/* Write out a detached buffer at its offset, the MD5 of each record first
 * (any thread). A failure is kept for trs__spool_peek to return. */
void trs__spool_write(trs__spool *sp, unsigned char *buf, size_t len, uint64_t offset);
/* The first failure of trs__spool_write (err filled), or 0. */
int trs__spool_failed(trs__spool *sp, trs_error *err);
uint64_t trs__spool_count(const trs__spool *sp);
uint64_t trs__spool_bytes(const trs__spool *sp);

/*
 * Reading, from the first record on. The first call ends the writing:
 * every detached buffer must have been written out by then. 1 with *rec
 * the current record (its strings and bytes valid until
 * trs__spool_advance), 0 after the last, or a negative code (a write or
 * a read of the file failed).
 */
int trs__spool_peek(trs__spool *sp, trs__spool_record *rec, trs_error *err);
void trs__spool_advance(trs__spool *sp);

#endif
