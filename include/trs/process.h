/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: the whole pipeline for one archive (docs/operations.md).
 *
 * trs_process reads the archive, finds the manifest, and writes every object
 * to every target in the context's region through `storage`. Objects that
 * fail are not written; the others still are. The report says what happened
 * to each.
 */
#ifndef TRS_PROCESS_H
#define TRS_PROCESS_H

#include "archive.h"
#include "object.h"
#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One failed object-target (or object, when bucket is ""). */
typedef struct trs_failure {
	char *relative_key;
	char *bucket;
	char *key;
	int code;
	char *message;
} trs_failure;

/** What one target bucket received. */
typedef struct trs_report_target {
	char *bucket;
	uint64_t puts_written;
	uint64_t puts_failed;
	uint64_t bytes_written;
} trs_report_target;

/** What one backup target received: the archive itself (docs/operations.md, backup targets). */
typedef struct trs_report_backup {
	char *bucket;
	char *key;                   /* <source_prefix>/backup_<unix-ms>.tar.zst */
	int written;
	int copied;                  /* server-side copy (else: the bytes were uploaded) */
	uint64_t bytes;
} trs_report_backup;

typedef struct trs_report {
	char *archive;
	uint64_t objects_total;     /* manifest entries */
	uint64_t objects_written;   /* objects all of whose puts succeeded */
	uint64_t puts_written;      /* object-target writes that succeeded */
	uint64_t objects_failed;
	uint64_t puts_failed;
	uint64_t objects_skipped;   /* all targets elsewhere (SkippedObjects) */
	uint64_t members_skipped;   /* tar members not restored (no entry, links, ...) */
	uint64_t bytes_written;     /* object bytes, counted once per put */
	uint64_t compressed_bytes;
	uint64_t decompressed_bytes; /* one pass of tar bytes */
	trs_manifest_position manifest_position;
	unsigned int passes;
	double seconds_total;
	double seconds_manifest;
	double seconds_restore;
	double seconds_decompress;
	double seconds_download;     /* filled by the caller that fetched the archive (trs_fetch) */
	double seconds_cleanup;      /* filled by the caller that cleans up (trs_serve) */
	trs_report_target *targets;  /* the target buckets of this region, in manifest order */
	size_t ntargets;
	trs_failure *failures;
	size_t nfailures;
	int dry_run;
	/* Backup targets of this region (docs/operations.md, backup targets). */
	uint64_t backups_written;    /* backup buckets that received the archive */
	uint64_t backups_failed;     /* backup buckets that did not (each also a trs_failure) */
	uint64_t catalog_rows;       /* rows of the catalog written; 0 when none was */
	trs_report_backup *backups;  /* one per backup bucket of this region, in manifest order */
	size_t nbackups;
	char *catalog_bucket;        /* NULL when the archive has no backup target here */
	char *catalog_key;           /* the catalog's key (set even when its write failed) */
	int catalog_written;
	uint64_t objects_unselected; /* objects not chosen by trs_process_options.only */
	uint64_t objects_superseded; /* entries not written: a later entry writes the same key */
	uint64_t manifest_bytes;     /* manifest.json's JSON, in bytes */
	uint64_t manifest_memory;    /* what the parsed manifest held (trs_manifest_memory); both within max_manifest_bytes */
	/* Newest wins (trs_process_options.overwrite, docs/formats.md): objects and puts not written
	 * because the key holds a newer version, or this very version already (a redelivery). An
	 * object counts once: failed, else written when one of its puts was, else kept_newer when
	 * one was, else current. */
	uint64_t objects_kept_newer;
	uint64_t objects_current;
	uint64_t puts_kept_newer;
	uint64_t puts_current;
	uint64_t puts_unchecked;     /* written (and in puts_written) without the comparison: the
	                                destination refused the read it needs (TRS_WRITTEN_UNCHECKED) */
	/* The regions of the manifest's targets, comma-separated ("" when it has none), for a
	 * caller to name when none of them is this one (TRS_EREGION). */
	char *target_regions;
	int foreign;                 /* the manifest has targets and none in this region (TRS_EREGION,
	                                or nothing to do with TRS_FOREIGN_SKIP) */
} trs_report;

/*
 * Version 1 has only dry_run; version 2 adds archive_storage to to_bucket;
 * version 3 the newest-wins and region switches. A caller built with
 * TRS_PROCESS_OPTIONS_INIT always gets the version its fields match.
 */
#define TRS_PROCESS_OPTIONS_VERSION 3

/* trs_process_options.overwrite */
#define TRS_OVERWRITE_NEWER 0  /* an object replaces only an older version of itself (docs/formats.md) */
#define TRS_OVERWRITE_ALWAYS 1 /* every object is written, whatever stands at its key (servers that
                                  ignore conditional writes; the Python service's behaviour) */

/* trs_process_options.foreign_archives */
#define TRS_FOREIGN_FAIL 0     /* targets, none in this region: TRS_EREGION, nothing written */
#define TRS_FOREIGN_SKIP 1     /* the same archive is nothing to do here: 0, objects_skipped */

typedef struct trs_process_options {
	unsigned int version;
	int dry_run;                 /* read and check everything, write nothing */
	/*
	 * Where the archive itself is stored, when it is (staging). A backup
	 * target then gets a server-side copy of it (trs_storage_copy) when
	 * archive_storage is the destination storage itself; otherwise the
	 * archive's bytes are uploaded from the source (read again from its
	 * start: a path, an fd, memory, or a rewindable source such as
	 * trs_fetch's spool).
	 */
	trs_storage *archive_storage;
	const char *archive_bucket;
	const char *archive_key;
	/* Where backup catalogs go (CATALOG_BUCKET), in the destination storage.
	 * NULL or "": an archive with a backup target in this region fails with
	 * TRS_EINVAL before anything is written. */
	const char *catalog_bucket;
	int64_t backup_time_ms;      /* the backup's unix-ms timestamp; 0: now */
	/*
	 * Restore only these objects, each named by relative_key or object_name
	 * (a name may select several). Other objects are counted in
	 * objects_unselected, not failed; a name that matches nothing is a
	 * failure. With `only` or `to_bucket`, backup targets are not written: a
	 * restore is not a new backup.
	 */
	const char *const *only;
	size_t nonly;
	/* Write every object to this bucket (the object's own storage class, no
	 * KMS key) instead of the manifest's targets. NULL: the manifest's
	 * non-backup targets in this region. */
	const char *to_bucket;
	/* Version 3. */
	int overwrite;               /* TRS_OVERWRITE_NEWER (default) or TRS_OVERWRITE_ALWAYS */
	int foreign_archives;        /* TRS_FOREIGN_FAIL (default) or TRS_FOREIGN_SKIP */
	/*
	 * The archive was delivered before (SQS's ApproximateReceiveCount > 1):
	 * most objects are likely current already, so each write looks at its
	 * key before it sends the body (TRS_WRITE_ASK_FIRST). Only a cost: the
	 * result is the same either way.
	 */
	int redelivery;
} trs_process_options;

#define TRS_PROCESS_OPTIONS_INIT {TRS_PROCESS_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * The version-3 switches from the environment, over what `options` holds:
 * TRS_OVERWRITE ("newer" or "always") and TRS_FOREIGN_ARCHIVES ("fail" or
 * "skip"). Unset or empty leaves a field as it is; anything else is
 * TRS_EINVAL with a message naming the variable and its values.
 */
TRS_EXTERN(int) trs_process_options_from_env(trs_process_options *options, trs_error *err);

/**
 * Restore one archive. Objects go to the non-backup targets of this region;
 * backup targets of this region get the archive unchanged plus one catalog
 * row per object in options->catalog_bucket (docs/operations.md, backup targets). An archive
 * whose targets here are all backups is not walked past its manifest.
 *
 * An object replaces what stands at its key only when it is a newer version
 * (options->overwrite; TRS_OVERWRITE_ALWAYS writes regardless): the others
 * are counted in objects_kept_newer and objects_current, not failed.
 *
 * Returns 0 when every object and every backup for this region was
 * written (or kept from writing by a newer or the same version); TRS_EREGION
 * when the manifest has targets but none in the context's region (unless
 * options->foreign_archives is TRS_FOREIGN_SKIP): nothing is written, and
 * report->target_regions names the regions it has; TRS_EPARTIAL when some failed (the report lists them, a failed
 * backup copy or catalog write as a trs_failure naming its bucket and key;
 * the rest was written, running again is safe); TRS_EINVAL for a backup
 * target without a catalog bucket, or `only` with no target to restore to;
 * another negative code when the archive could not be read at all
 * (TRS_EARCHIVE, TRS_EMANIFEST, ...).
 * *report is allocated in every case where it is non-NULL on return; free it
 * with trs_report_free.
 */
TRS_EXTERN(int) trs_process(trs_ctx *ctx, trs_storage *storage, const trs_archive_source *source,
			    const trs_process_options *options, trs_report **report, trs_error *err);

TRS_EXTERN(void) trs_report_free(trs_report *report);

#ifdef __cplusplus
}
#endif
#endif
