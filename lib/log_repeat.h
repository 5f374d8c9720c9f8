/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log lines that repeat per member or per object of one archive (lib/log_repeat.c).
 * A 1 MB archive can hold 400,000 members without an entry, or a manifest of
 * 400,000 entries without a member: a line for each was 147 MB of log. The
 * first TRS__LOG_REPEAT_MAX lines of each kind are logged and the others only
 * counted; at the archive's end one line per kind says how many were left
 * out. The report's counts stay exact, and at debug level every line is
 * logged.
 */
#ifndef TRS_LOG_REPEAT_H
#define TRS_LOG_REPEAT_H

#include "ctx.h"

#define TRS__LOG_REPEAT_MAX 100

typedef enum {
	TRS__REPEAT_MEMBER_SKIPPED,  /* a member never restored: outside objects/, a link, a device */
	TRS__REPEAT_MEMBER_UNLISTED, /* a member without a manifest entry */
	TRS__REPEAT_MEMBER_TWICE,    /* a name twice in the tar */
	TRS__REPEAT_MANIFEST,        /* the manifest's own warnings */
	TRS__REPEAT_TAGS,            /* an object's tags that are not all tags */
	TRS__REPEAT_NOT_WRITTEN,     /* a put the newest-wins rule kept from writing */
	TRS__REPEAT_KINDS            /* (failed puts are said once per cause: lib/core/failure_groups.c) */
} trs__repeat_kind;

/* Zeroed at the start; the reading thread and the writers count into it at once. */
typedef struct trs__log_repeats {
	uint64_t seen[TRS__REPEAT_KINDS];
	uint64_t unlogged[TRS__REPEAT_KINDS];
} trs__log_repeats;

/* Count one line of `kind`: true when it is to be logged (one of the first
 * TRS__LOG_REPEAT_MAX, or ctx logs at debug level), false when it is left out. */
bool trs__repeat_log(trs__log_repeats *r, const trs_ctx *ctx, trs__repeat_kind kind);

/* Lines of `kind` left out before they reached us (the manifest keeps 1,000 warnings at most). */
void trs__repeat_unlogged(trs__log_repeats *r, trs__repeat_kind kind, uint64_t n);

/* At the archive's end, once the writers are done: one line per kind that
 * left lines out, saying how many, at the level of its lines. Counts start again. */
void trs__repeat_summary(trs__log_repeats *r, const trs_ctx *ctx, const char *archive);

#endif
