/*
 * The report of one archive (include/trs/process.h's trs_report), for the
 * library's files: it is created, grown and freed here alone (lib/report.c).
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

/* The entry of rep->targets for `bucket`, or NULL when it is not one. */
trs_report_target *trs__report_target(trs_report *rep, const char *bucket);

#endif
