/*
 * libtrs: the whole pipeline for one archive (FORMAT.md §4).
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
} trs_report;

#define TRS_PROCESS_OPTIONS_VERSION 1

typedef struct trs_process_options {
	unsigned int version;
	int dry_run;                 /* read and check everything, write nothing */
} trs_process_options;

#define TRS_PROCESS_OPTIONS_INIT {TRS_PROCESS_OPTIONS_VERSION, 0}

/**
 * Restore one archive. Returns 0 when every object for this region was
 * written; TRS_EPARTIAL when some failed (the report lists them, the others
 * were written, running again is safe); another negative code when the
 * archive could not be read at all (TRS_EARCHIVE, TRS_EMANIFEST, ...).
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
