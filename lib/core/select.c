/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Restore selection (trs_process_options.only and .to_bucket): which
 * entries of the manifest are restored, and where.
 */
#include "select.h"
#include "report.h"

#include <stdio.h>
#include <string.h>

/* Is the entry one of options->only (by relative_key or object_name)? */
int trs__select_chosen(const trs_process_options *opt, const trs_manifest_object *e)
{
	if (!opt->nonly)
		return 1;
	for (size_t i = 0; i < opt->nonly; i++)
		if (!strcmp(opt->only[i], e->relative_key) || !strcmp(opt->only[i], e->object_name))
			return 1;
	return 0;
}

/* Every name of options->only must select something: one that does not is a failure. */
int trs__select_check_only(const trs_ctx *ctx, const trs_manifest *m, const trs_process_options *opt,
			   trs_report *rep, trs_error *err)
{
	for (size_t i = 0; i < opt->nonly; i++) {
		const char *name = opt->only[i];
		int found = 0;
		for (size_t k = 0; k < trs_manifest_object_count(m) && !found; k++) {
			const trs_manifest_object *e = trs_manifest_object_at(m, k);
			found = !strcmp(name, e->relative_key) || !strcmp(name, e->object_name);
		}
		if (found)
			continue;
		char msg[TRS_ERROR_MESSAGE_SIZE];
		snprintf(msg, sizeof(msg),
			 "archive %s: no object named %s (by relative_key or object_name) in its manifest",
			 TRS__SHORT(rep->archive), TRS__SHORT(name));
		trs__log(ctx, TRS_LOG_ERROR, msg, "archive", rep->archive, "object", name, NULL);
		if (trs__report_add_failure(rep, name, "", "", TRS_ENOTFOUND, msg, err) < 0)
			return TRS_ENOMEM;
	}
	return 0;
}

/*
 * options->to_bucket: every object goes to that bucket alone. The manifest
 * is ours (parsed for this run), so its targets are rewritten in place: the
 * first becomes the new target, the others are moved out of this region.
 */
int trs__select_retarget(const trs_ctx *ctx, trs_manifest *m, const char *to_bucket, const char *archive,
			 trs_error *err)
{
	size_t n = trs_manifest_target_count(m);
	if (!n)
		return trs__error_set(err, TRS_EMANIFEST, "archive %s: its manifest has no targets; nothing to restore",
				      TRS__SHORT(archive));
	for (size_t i = 0; i < n; i++) {
		trs_manifest_target *t = (trs_manifest_target *)trs_manifest_target_at(m, i);
		t->backup = 0;
		if (i == 0) {
			t->region = ctx->region;
			t->bucket = to_bucket;
			t->storage_class = "";
			t->kms_key_arn = "";
		} else {
			t->region = "";
		}
	}
	return 0;
}
