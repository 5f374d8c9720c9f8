/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backup targets (docs/operations.md), for lib/core/process.c: the archive stored
 * unchanged in each backup bucket of this region, and a JSON Lines catalog
 * of its objects in the catalog bucket.
 */
#ifndef TRS_BACKUP_H
#define TRS_BACKUP_H

#include "internal.h"
#include "report.h"

/* The distinct backup buckets of `region`, in manifest order (at most `max`
 * stored in out; the full count is returned). */
size_t trs__backup_targets(const trs_manifest *m, const char *region, const trs_manifest_target **out, size_t max);

/* "<source_prefix>/backup_<ms>.tar.zst" (source_prefix of the first object;
 * no leading '/' when it is empty). */
int trs__backup_key(const trs_manifest *m, int64_t ms, trs__buf *out, trs_error *err);

/* "<source_bucket>/<source_prefix>/year=YYYY/month=MM/day=DD/<backup file name>.jsonl",
 * empty segments left out, the date in UTC. */
int trs__catalog_key(const trs_manifest *m, const char *backup_key, int64_t ms, trs__buf *out, trs_error *err);

/* Append one catalog row (a JSON object and '\n') for entry e. */
int trs__catalog_row(trs__buf *out, const trs_manifest_object *e, const char *backup_key, int64_t ms,
		     const char *const *buckets, size_t nbuckets, trs_error *err);

/*
 * Fill rep->backups for the backup buckets of ctx's region; TRS_EINVAL
 * when there is one and no catalog bucket. Writes nothing.
 */
int trs__backup_plan(const trs_ctx *ctx, const trs_manifest *m, const trs_process_options *o, int64_t ms, trs_report *rep,
		     trs_error *err);

/*
 * Store the archive in every planned backup bucket, then the catalog.
 * Failures are added to rep->failures (and logged); returns 0, or a
 * negative code only for a failure that is not one of those (no memory).
 */
int trs__backup_write(const trs_ctx *ctx, trs_storage *dest, const trs_archive_source *source, const trs_process_options *o,
		      const trs_manifest *m, int64_t ms, trs_report *rep, trs_error *err);

#endif
