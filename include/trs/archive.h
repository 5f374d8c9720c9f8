/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: reading a .tar.zst archive (docs/formats.md) as a stream.
 *
 * zstd is decoded with libzstd (several frames, skippable frames, windows up
 * to 2^31) and the tar (PAX, GNU, ustar) walked with libarchive. Decompressed
 * bytes never touch the disk. The archive is read front to back; when the
 * manifest comes last, trs_archive_read_manifest reads once to find it and
 * rewinds, so the source must be re-readable (a path, a memory buffer, or a
 * callback source with a rewind function).
 */
#ifndef TRS_ARCHIVE_H
#define TRS_ARCHIVE_H

#include "common.h"
#include "context.h"
#include "manifest.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trs_archive trs_archive;

#define TRS_ARCHIVE_SOURCE_VERSION 1

/**
 * Where the compressed bytes come from: exactly one of `path`, `data` or
 * `read` (fd >= 0 is read through with pread, so it is rewindable when it is
 * a regular file). `name` is how messages refer to the archive
 * (default: the path, or "<memory>").
 */
typedef struct trs_archive_source {
	unsigned int version;
	const char *name;
	const char *path;
	int fd;                  /* -1 when unused */
	const void *data;
	size_t size;
	int64_t (*read)(void *userdata, void *buf, size_t len, trs_error *err); /* 0 at end */
	int (*rewind)(void *userdata, trs_error *err);                          /* NULL: not rewindable */
	void *userdata;
	uint64_t compressed_size; /* for progress and ratio limits; 0 when unknown */
} trs_archive_source;

#define TRS_ARCHIVE_SOURCE_INIT {TRS_ARCHIVE_SOURCE_VERSION, 0, 0, -1, 0, 0, 0, 0, 0, 0}

/** Open an archive. `ctx` supplies limits and logging (NULL: defaults, silent). */
TRS_EXTERN(int) trs_archive_open(trs_archive **out, const trs_archive_source *source, const trs_ctx *ctx, trs_error *err);

/** What a member is. Only TRS_MEMBER_FILE members carry data. */
typedef enum {
	TRS_MEMBER_FILE = 0,
	TRS_MEMBER_DIRECTORY,
	TRS_MEMBER_SYMLINK,
	TRS_MEMBER_HARDLINK,
	TRS_MEMBER_OTHER          /* devices, FIFOs, sockets */
} trs_member_type;

typedef struct trs_member {
	const char *path;         /* as stored, UTF-8 */
	trs_member_type type;
	uint64_t size;
	uint64_t index;           /* 0-based position in the tar */
} trs_member;

/**
 * Advance to the next member. Returns 1 with *member filled (valid until the
 * next call), 0 at the end of the archive, or a negative code (TRS_EARCHIVE
 * for corrupt or truncated input, TRS_ELIMIT for a bomb). The rest of the
 * previous member's data is skipped.
 */
TRS_EXTERN(int) trs_archive_next(trs_archive *a, trs_member *member, trs_error *err);

/** Read the current member's data: bytes read, 0 at its end, or a negative code. */
TRS_EXTERN(int64_t) trs_archive_read(trs_archive *a, void *buf, size_t len, trs_error *err);

/** Start again from the first member. TRS_EUNSUPPORTED for a source without rewind. */
TRS_EXTERN(int) trs_archive_rewind(trs_archive *a, trs_error *err);

typedef enum {
	TRS_MANIFEST_UNKNOWN = 0,
	TRS_MANIFEST_FIRST,       /* the first file member: one pass does everything */
	TRS_MANIFEST_LAST,        /* after every object: the source side's normal case */
	TRS_MANIFEST_MIDDLE,
	TRS_MANIFEST_ABSENT
} trs_manifest_position;

/**
 * Find and parse manifest.json, then rewind so that trs_archive_next starts
 * from the first member again. When the manifest is the first member no
 * second pass is needed, and none is made. TRS_EMANIFEST when there is none
 * or it does not parse.
 */
TRS_EXTERN(int) trs_archive_read_manifest(trs_archive *a, trs_manifest **out, trs_error *err);

/** Where the manifest was found (after trs_archive_read_manifest). */
TRS_EXTERN(trs_manifest_position) trs_archive_manifest_position(const trs_archive *a);

typedef struct trs_archive_stats {
	uint64_t compressed_read;   /* bytes consumed, all passes */
	uint64_t decompressed;      /* tar bytes produced, all passes */
	uint64_t tar_size;          /* bytes of tar in one full pass, 0 until known */
	uint64_t members;           /* members seen in one full pass, 0 until known */
	unsigned int passes;        /* passes started */
	double decompress_seconds;  /* CPU-side time spent in zstd */
} trs_archive_stats;

/**
 * Copy the archive's counters so far into *stats (all passes: a second pass,
 * after a rewind, adds to compressed_read and decompressed). Cheap; may be
 * called at any time between trs_archive_open and trs_archive_close, from the
 * thread that reads the archive.
 */
TRS_EXTERN(void) trs_archive_get_stats(const trs_archive *a, trs_archive_stats *stats);

/** The name messages use for this archive. */
TRS_EXTERN(const char *) trs_archive_name(const trs_archive *a);

/** Close an archive. NULL is ignored. */
TRS_EXTERN(void) trs_archive_close(trs_archive *a);

#ifdef __cplusplus
}
#endif
#endif
