/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: fetching an archive from a storage (s3://bucket/key) to read it.
 *
 * The first GET asks for the first megabyte: a smaller archive comes whole
 * in that one request (no HEAD). A larger one is sized with a HEAD and the
 * rest is downloaded with parallel ranged GETs into a spool:
 * memory when the archive is small, an unlinked temporary file (O_EXCL,
 * 0600) otherwise. Decompressed bytes never touch the disk. The archive
 * source that trs_fetch_start fills reads the spool as the download fills
 * it, so decompression starts with the first chunk instead of after the
 * last; it is rewindable (the manifest-last pass reads it again from the
 * spool, not from the network).
 */
#ifndef TRS_FETCH_H
#define TRS_FETCH_H

#include "archive.h"
#include "process.h"
#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trs_fetch trs_fetch;

#define TRS_FETCH_OPTIONS_VERSION 1

typedef struct trs_fetch_options {
	unsigned int version;
	unsigned int connections;  /* ranged GETs in flight; default 4 */
	uint64_t chunk_size;       /* bytes per ranged GET; default 8 MiB */
	uint64_t memory_limit;     /* spool in memory up to this archive size; default 64 MiB or a
	                              quarter of the context's max_memory, whichever is smaller */
	const char *spool_dir;     /* for larger archives; default $TMPDIR, else /tmp */
} trs_fetch_options;

#define TRS_FETCH_OPTIONS_INIT {TRS_FETCH_OPTIONS_VERSION, 0, 0, 0, 0}

/**
 * Start fetching bucket/key from `storage` and fill `*source` to read it
 * (the source stays valid until trs_fetch_free). Returns TRS_ENOTFOUND when
 * the object does not exist (for a queue consumer: a redelivery after the
 * archive was already restored and deleted), TRS_EIO when the spool cannot
 * be created (the message names the directory and the space needed).
 */
TRS_EXTERN(int) trs_fetch_start(trs_fetch **out, trs_storage *storage, const char *bucket, const char *key,
				const trs_ctx *ctx, const trs_fetch_options *options, trs_archive_source *source,
				trs_error *err);

/** Wait for the whole download; 0 or the first download error. */
TRS_EXTERN(int) trs_fetch_finish(trs_fetch *f, trs_error *err);

/** The archive's size and the seconds the download took so far. */
TRS_EXTERN(uint64_t) trs_fetch_size(const trs_fetch *f);
TRS_EXTERN(double) trs_fetch_seconds(const trs_fetch *f);

/** Stop any download still running, remove the spool, free. NULL is ignored. */
TRS_EXTERN(void) trs_fetch_free(trs_fetch *f);

/**
 * Restore the archive at bucket/key of `source` into `dest`: trs_fetch_start,
 * trs_process while the download runs, then trs_fetch_finish (so a download
 * that failed after the last byte the walk needed still fails the archive).
 * options->archive_storage, archive_bucket and archive_key are set to the
 * archive's place (a backup target in `dest` then copies it server-side);
 * options NULL: defaults. (*report)->seconds_download is the download's time.
 * Returns what trs_fetch_start returns when the fetch cannot start
 * (TRS_ENOTFOUND: no such archive; *report is then NULL), else as trs_process.
 * `trs process s3://...` and `trs serve` both restore through this.
 */
TRS_EXTERN(int) trs_process_from_storage(trs_ctx *ctx, trs_storage *dest, trs_storage *source, const char *bucket,
					 const char *key, const trs_fetch_options *fetch_options,
					 const trs_process_options *options, trs_report **report, trs_error *err);

#ifdef __cplusplus
}
#endif
#endif
