/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log lines that repeat per member or per object of one archive, capped per
 * kind with a count (lib/log_repeat.h). The cap is per kind, so that 400,000
 * members without an entry do not hide the one symlink.
 */
#include "log_repeat.h"

#include <stdio.h>
#include <string.h>

typedef struct {
	trs_log_level level;
	const char *name;
	const char *about; /* "N more lines about <about> were not logged" */
} kind_info;

static const kind_info kinds[] = {
	[TRS__REPEAT_MEMBER_SKIPPED] = {TRS_LOG_WARN, "member_skipped",
					"members skipped as never restored (outside objects/, links, devices, FIFOs)"},
	[TRS__REPEAT_MEMBER_UNLISTED] = {TRS_LOG_WARN, "member_unlisted", "members skipped for want of a manifest entry"},
	[TRS__REPEAT_MEMBER_TWICE] = {TRS_LOG_WARN, "member_twice", "members written over an earlier copy of their name"},
	[TRS__REPEAT_MANIFEST] = {TRS_LOG_WARN, "manifest", "the manifest"},
	[TRS__REPEAT_TAGS] = {TRS_LOG_WARN, "tags", "objects whose tags were not all written as tags"},
	[TRS__REPEAT_NOT_WRITTEN] = {TRS_LOG_INFO, "not_written",
				     "puts kept from writing by a newer version, or this one, at the destination"},
};

bool trs__repeat_log(trs__log_repeats *r, const trs_ctx *ctx, trs__repeat_kind kind)
{
	uint64_t before = __atomic_fetch_add(&r->seen[kind], 1, __ATOMIC_RELAXED);
	if (before < TRS__LOG_REPEAT_MAX || trs__log_enabled(ctx, TRS_LOG_DEBUG))
		return true;
	__atomic_fetch_add(&r->unlogged[kind], 1, __ATOMIC_RELAXED);
	return false;
}

void trs__repeat_unlogged(trs__log_repeats *r, trs__repeat_kind kind, uint64_t n)
{
	__atomic_fetch_add(&r->unlogged[kind], n, __ATOMIC_RELAXED);
}

void trs__repeat_summary(trs__log_repeats *r, const trs_ctx *ctx, const char *archive)
{
	for (int kind = 0; kind < TRS__REPEAT_KINDS; kind++) {
		uint64_t n = __atomic_exchange_n(&r->unlogged[kind], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&r->seen[kind], 0, __ATOMIC_RELAXED);
		if (!n)
			continue;
		char message[256], count[24], name[48];
		snprintf(count, sizeof(count), "%llu", (unsigned long long)n);
		trs_log_level level = kinds[kind].level;
		snprintf(name, sizeof(name), "%s", kinds[kind].name);
		snprintf(message, sizeof(message), "%s more lines about %s were not logged (the first %d were)", count,
			 kinds[kind].about, TRS__LOG_REPEAT_MAX);
		trs__log(ctx, level, message, "archive", archive, "kind", name, "not_logged", count, NULL);
	}
}
