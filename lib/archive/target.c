/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A manifest target's fields as S3 takes them: the bucket name and the KMS
 * key id. A field S3 would refuse fails that target's puts before any
 * request (lib/archive/object.c), with a sentence saying why; a field S3
 * would read otherwise than the manifest means (cut at a NUL, a blank taken
 * as no key at all) is refused the same way, never passed on.
 */
#include "internal.h"
#include "object_iter.h"

#include <string.h>

/* Why S3 refuses `name` as a general purpose bucket's, or NULL. The fs
 * backend mirrors S3, so its bucket directories follow the same rules. */
const char *trs__bucket_name_problem(const char *name)
{
	static const char *const prefixes[] = {"xn--", "sthree-", "amzn-s3-demo-"};
	static const char *const suffixes[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"};
	size_t len = strlen(name);
	if (len < 3 || len > 63)
		return "S3 bucket names are 3 to 63 characters long";
	int digits_and_dots = 1, dots = 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return "S3 bucket names hold only lower-case letters, digits, dots and hyphens";
		if (c == '.' && i && name[i - 1] == '.')
			return "S3 bucket names have no two dots in a row";
		digits_and_dots &= (c >= '0' && c <= '9') || c == '.';
		dots += c == '.';
	}
	if (name[0] == '.' || name[0] == '-' || name[len - 1] == '.' || name[len - 1] == '-')
		return "S3 bucket names begin and end with a letter or digit";
	if (digits_and_dots && dots == 3)
		return "S3 bucket names are not IP addresses";
	for (size_t i = 0; i < TRS_ARRAY_SIZE(prefixes); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return "S3 reserves this bucket name prefix";
	for (size_t i = 0; i < TRS_ARRAY_SIZE(suffixes); i++)
		if (len >= strlen(suffixes[i]) && !strcmp(name + len - strlen(suffixes[i]), suffixes[i]))
			return "S3 reserves this bucket name suffix";
	return NULL;
}

/*
 * The forms S3 takes in x-amz-server-side-encryption-aws-kms-key-id (a key
 * id, a key ARN, an alias name "alias/...", an alias ARN, a multi-region key
 * "mrk-...") are all made of letters, digits and ":/_-": anything else
 * names no key, and S3 would refuse the object on every retry. A blank is
 * worse: HTTP trims it, and " " reaches S3 as no key id at all, which
 * encrypts with the bucket's default key instead of the one asked for.
 */
const char *trs__kms_key_problem(const char *id, unsigned int target_flags)
{
	if (target_flags & TRS_MANIFEST_TARGET_KMS_HAS_NUL)
		return "the manifest target's kms_key_arn holds a NUL byte; not written (the key id ends at it, so "
		       "another key would be used)";
	size_t len = 0;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++, len++) {
		unsigned char c = *p;
		if (c == ' ' || c == '\t')
			return "the manifest target's kms_key_arn holds a blank, which no KMS key id has; not written "
			       "(S3 would take a blank key id as none and use the bucket's default key)";
		if (c < 0x20 || c == 0x7f)
			return "the manifest target's kms_key_arn holds a control character, which no KMS key id has; "
			       "not written";
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(":/_-", c)))
			return "the manifest target's kms_key_arn holds a character that no KMS key id, alias or ARN "
			       "has (they are letters, digits and : / _ -); not written";
	}
	if (len > TRS_KMS_MAX_KEY_ID)
		return "the manifest target's kms_key_arn is longer than the 2048 characters AWS KMS allows in a key "
		       "id; not written";
	return NULL;
}
