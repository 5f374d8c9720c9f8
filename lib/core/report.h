/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The report of one archive (include/trs/process.h's trs_report), for the
 * library's files: it is created, grown and freed here alone (lib/core/report.c).
 * Callers that share a report between threads hold their own lock around
 * these calls (the pipeline's run mutex).
 */
#ifndef TRS_REPORT_H
#define TRS_REPORT_H

#include "internal.h"

/* A new, empty report for archive `name`. */
trs_report *trs__report_new(const char *name, trs_error *err);

/* Append one failure (copies of every string). The only way anything is
 * added to rep->failures. TRS_ENOMEM leaves the list as it was. */
int trs__report_add_failure(trs_report *rep, const char *relative_key, const char *bucket, const char *key, int code,
			    const char *message, trs_error *err);

/* What the report says of the parsed manifest: objects_total, manifest_bytes, manifest_memory. */
void trs__report_manifest(trs_report *rep, const trs_manifest *m);

/* rep->targets: one entry per distinct bucket of region's non-backup targets. */
int trs__report_init_targets(trs_report *rep, const trs_manifest *m, const char *region, trs_error *err);

/* The entry of rep->targets for `bucket`, or NULL when it is not one. */
trs_report_target *trs__report_target(trs_report *rep, const char *bucket);

/* What became of one object, from its puts: failed when one failed, else written when one was, else
 * kept_newer when one found a newer version, else current. */
enum { TRS__OBJECT_WRITTEN = 1, TRS__OBJECT_FAILED, TRS__OBJECT_KEPT_NEWER, TRS__OBJECT_CURRENT };

/*
 * One object's puts are all recorded: count it once by its state
 * (TRS__OBJECT_*). A rewrite (a later copy of a tar member, written over
 * the earlier one) is the same object again, and its result replaces the
 * earlier one's. `outcome` is the object's own byte (0 at first), kept by
 * the caller; NULL when no rewrite can come.
 */
void trs__report_count_object(trs_report *rep, unsigned char *outcome, int state, int rewrite);

/* A rewrite is about to be recorded: forget the earlier failure of its put to bucket/key. */
void trs__report_forget_failure(trs_report *rep, const char *relative_key, const char *bucket, const char *key);

#endif
