/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS shared files (private): ~/.aws/config and ~/.aws/credentials,
 * their INI dialect, and the settings of one profile.
 *
 * - Files: AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE ("~/" expanded),
 *   else $HOME/.aws/config and $HOME/.aws/credentials. Each at most 1 MiB.
 * - Sections: "[name]" in the credentials file; "[profile name]" in the
 *   config file, except "[default]" (and "[profile default]", which occurs).
 * - Lines: "key = value", '#' and ';' comments. An indented line under a
 *   key with an empty value is a nested setting ("s3 =\n  addressing_style
 *   = path") and belongs to that key, not to the profile.
 * - A key set in both files takes the credentials file's value (as the AWS
 *   CLI does).
 */
#ifndef TRS_AWS_CONFIG_H
#define TRS_AWS_CONFIG_H

#include "internal.h"

/* The value of environment variable `name`, or NULL when unset or empty. */
const char *trs__env(const char *name);

/* Leading and trailing white space removed, in place. */
char *trs__trim(char *s);

/* A whole small file, NUL-terminated (malloc'ed); NULL when it cannot be read (err set for a file over 1 MiB). */
char *trs__read_small_file(const char *path, size_t *len, trs_error *err);

/*
 * The settings of `section` (e.g. "profile dev") in INI text, appended to
 * *kv / *n (keys lower-cased; a key already in *kv is kept). *found tells
 * whether the section exists. 0 or TRS_ENOMEM.
 */
int trs__ini_section(const char *text, const char *section, trs_kv **kv, size_t *n, bool *found, trs_error *err);

/* The profile in use: ctx's (--profile), else AWS_PROFILE, AWS_DEFAULT_PROFILE, "default". */
const char *trs__aws_profile_name(const trs_ctx *ctx);

/* True when the profile was chosen (ctx or AWS_PROFILE), not the "default" fallback. */
bool trs__aws_profile_explicit(const trs_ctx *ctx);

typedef struct trs__aws_profile {
	char *name;
	bool found;       /* the profile has a section in either file */
	char *cred_path;  /* the files read, for messages (may be NULL without HOME) */
	char *conf_path;
	trs_kv *settings; /* owned keys and values; values are scrubbed on free */
	size_t nsettings;
} trs__aws_profile;

/* Read profile `name` from both files. 0 (also when not found: see ->found) or TRS_ENOMEM / TRS_ELIMIT. */
int trs__aws_profile_load(const char *name, trs__aws_profile *out, trs_error *err);

/* A setting of the profile (key lower-case), or NULL when unset or empty. */
const char *trs__aws_profile_get(const trs__aws_profile *p, const char *key);

void trs__aws_profile_free(trs__aws_profile *p);

#endif
