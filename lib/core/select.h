/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Restore selection (lib/core/select.c): trs_process_options.only chooses
 * entries by name, .to_bucket sends them all to one bucket.
 */
#ifndef TRS_SELECT_H
#define TRS_SELECT_H

#include "internal.h"

/* Is the entry one of opt->only (by relative_key or object_name)? Always, without `only`. */
int trs__select_chosen(const trs_process_options *opt, const trs_manifest_object *e);

/* Every name of opt->only must select something: one that does not is a
 * failure added to rep. 0, or TRS_ENOMEM. */
int trs__select_check_only(const trs_ctx *ctx, const trs_manifest *m, const trs_process_options *opt,
			   trs_report *rep, trs_error *err);

/*
 * to_bucket: every object goes to that bucket alone. The manifest is the
 * caller's own (parsed for this run), so its targets are rewritten in place:
 * the first becomes the new target, the others are moved out of the region.
 * TRS_EMANIFEST when it has no target.
 */
int trs__select_retarget(const trs_ctx *ctx, trs_manifest *m, const char *to_bucket, const char *archive,
			 trs_error *err);

#endif
