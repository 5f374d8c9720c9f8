/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs private: the object iterator's doors for the core (lib/archive/object.c)
 * and the member rules it shares with lib/archive.c.
 */
#ifndef TRS_OBJECT_ITER_H
#define TRS_OBJECT_ITER_H

#include "util.h"

/* "manifest.json" or "./manifest.json" (lib/archive/archive.c). */
int trs__archive_is_manifest(const char *path);

/* lib/archive/target.c: a target's fields as S3 takes them. */
/* Why S3 refuses `name` as a bucket name (a sentence), or NULL; fs buckets follow the same rules. */
const char *trs__bucket_name_problem(const char *name);
/* AWS KMS's longest key id (KeyId: a key id, key ARN, alias name or alias ARN), in characters. */
#define TRS_KMS_MAX_KEY_ID 2048
/* Why S3 would refuse, or misread, kms_key_arn `id` of a target with flags
 * `target_flags` (TRS_MANIFEST_TARGET_*) as the object's KMS key id: a
 * sentence, or NULL when it is fine ("" is no key, and fine). */
const char *trs__kms_key_problem(const char *id, unsigned int target_flags);

/* lib/archive/object.c, for the pipeline (lib/core/process.c). */
int trs__plain_md5(const char *etag, char out[33]);
/* An object's bytes against its entry: size, then MD5 (md5_hex NULL: size only). TRS_EINTEGRITY otherwise. */
int trs__check_integrity(const trs_manifest_object *e, uint64_t size, const char *md5_hex, trs_error *err);
/* Join a member read outside the iterator (its bytes held by the caller). */
int trs__object_iter_join(trs_object_iter *it, const char *path, uint64_t index, uint64_t size,
			  const trs_object **out, trs_error *err);
/* The object just returned is a later copy of a tar member already joined
 * (it is to be written after, and over, the earlier one). */
int trs__object_iter_repeat(const trs_object_iter *it);
/* The manifest came from tar member `index`, whose bytes hash to md5: another
 * manifest.json member is compared with it (lib/archive/object.c). */
void trs__object_iter_set_manifest(trs_object_iter *it, uint64_t index, const unsigned char md5[16]);
void trs__object_iter_defer_missing(trs_object_iter *it, int defer);
/* The archive was rewound: walk it again, skipping members already joined, and
 * warning only about members before index `loud_before` (not looked at before). */
void trs__object_iter_restart(trs_object_iter *it, uint64_t loud_before);
void trs__object_iter_add_skipped(trs_object_iter *it, uint64_t n);
/* Why a member is never restored (a sentence), or NULL for objects/ files, directories and the manifest. */
const char *trs__member_skip_reason(const char *path, trs_member_type type);
uint64_t trs__object_iter_member_size(const trs_object_iter *it);
/* Count the iterator's repeated lines with the archive's others (lib/log_repeat.h), which the caller
 * sums up at the archive's end; by default the iterator keeps its own, summed up when it is done. */
struct trs__log_repeats;
void trs__object_iter_share_repeats(trs_object_iter *it, struct trs__log_repeats *repeats);
/* Links and devices of objects/ the caller met before the iterator (lib/archive/link_memo.h): the
 * iterator takes them (`links` is left empty), so that the entries they name say what they are. */
struct trs__link_memo;
void trs__object_iter_take_links(trs_object_iter *it, struct trs__link_memo *links);

/* lib/archive/manifest_data.c, for the core: warnings beyond the 1,000 a manifest keeps. */
size_t trs__manifest_warnings_dropped(const trs_manifest *m);

#endif
