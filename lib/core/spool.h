/*
 * The spool (lib/core/spool.c): small objects that come before the
 * manifest, appended to one unlinked file as records (the member's index
 * in the tar, its size, its path, its bytes) and read back in the same
 * order once the manifest has come. It keeps nothing per object in memory:
 * one buffer, for writing and then for reading.
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
} trs__spool_record;

/* A spool on `fd` (the spool's now: closed by trs__spool_free) through a
 * buffer of `buffer` bytes; `where` names the file's directory in errors. */
int trs__spool_new(trs__spool **out, int fd, size_t buffer, const char *where, trs_error *err);
void trs__spool_free(trs__spool *sp);

/* Whether a member of `size` bytes named `path` fits in one record. */
int trs__spool_fits(const trs__spool *sp, const char *path, uint64_t size);
/* Room for the bytes of member `path` (`index`, `size`, which must fit):
 * where to put them, or NULL with err filled when writing out the buffer
 * failed (the spool is then unusable). */
unsigned char *trs__spool_reserve(trs__spool *sp, const char *path, uint64_t index, uint64_t size, trs_error *err);
/* Take back the record just reserved (its bytes could not be read). */
void trs__spool_unreserve(trs__spool *sp);
uint64_t trs__spool_count(const trs__spool *sp);
uint64_t trs__spool_bytes(const trs__spool *sp);

/*
 * Reading, from the first record on (the first call ends the writing): 1
 * with *rec the current record (its strings and bytes valid until
 * trs__spool_advance), 0 after the last, or a negative code.
 */
int trs__spool_peek(trs__spool *sp, trs__spool_record *rec, trs_error *err);
void trs__spool_advance(trs__spool *sp);

#endif
