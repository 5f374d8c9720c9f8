/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trs_process_options: a caller's struct, of whatever version, at this
 * library's version; and the switches an operator sets in the environment.
 */
#include "process_options.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The caller's options at this version: fields an older caller does not have keep their defaults. */
int trs__process_options_take(trs_process_options *out, const trs_process_options *given, trs_error *err)
{
	trs_process_options d = TRS_PROCESS_OPTIONS_INIT;
	*out = d;
	if (!given)
		return 0;
	if (given->version == 0 || given->version > TRS_PROCESS_OPTIONS_VERSION)
		return trs__error_set(err, TRS_EINVAL, "trs_process_options has unknown version %u", given->version);
	if (given->version == 1) {
		out->dry_run = given->dry_run;
		return 0;
	}
	memcpy(out, given, given->version == 2 ? offsetof(trs_process_options, overwrite) : sizeof(*out));
	out->version = TRS_PROCESS_OPTIONS_VERSION;
	if (out->nonly && !out->only)
		return trs__error_set(err, TRS_EINVAL, "trs_process_options: nonly without only");
	if (out->to_bucket && !*out->to_bucket)
		return trs__error_set(err, TRS_EINVAL, "trs_process_options: to_bucket is empty");
	if (out->overwrite != TRS_OVERWRITE_NEWER && out->overwrite != TRS_OVERWRITE_ALWAYS)
		return trs__error_set(err, TRS_EINVAL,
				      "trs_process_options: overwrite must be TRS_OVERWRITE_NEWER or TRS_OVERWRITE_ALWAYS");
	if (out->foreign_archives != TRS_FOREIGN_FAIL && out->foreign_archives != TRS_FOREIGN_SKIP)
		return trs__error_set(err, TRS_EINVAL,
				      "trs_process_options: foreign_archives must be TRS_FOREIGN_FAIL or TRS_FOREIGN_SKIP");
	return 0;
}

static int env_choice(const char *name, const char *a, const char *b, int *out, trs_error *err)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return 0;
	if (!strcmp(v, a))
		*out = 0;
	else if (!strcmp(v, b))
		*out = 1;
	else
		return trs__error_set(err, TRS_EINVAL, "bad value '%.64s' for %s (%s or %s)", v, name, a, b);
	return 0;
}

TRS_EXTERN(int) trs_process_options_from_env(trs_process_options *o, trs_error *err)
{
	if (!o || o->version < 3 || o->version > TRS_PROCESS_OPTIONS_VERSION)
		return trs__error_set(err, TRS_EINVAL, "trs_process_options_from_env needs options of version 3");
	int rc = env_choice("TRS_OVERWRITE", "newer", "always", &o->overwrite, err);
	if (rc == 0)
		rc = env_choice("TRS_FOREIGN_ARCHIVES", "fail", "skip", &o->foreign_archives, err);
	return rc;
}

