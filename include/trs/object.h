/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: objects of an archive, joined with their manifest entries.
 *
 * The iterator walks the tar once, joins each objects/<relative_key> member
 * with its manifest entry and works out, for every target in the context's
 * region, the put to make: destination key, merged tags (plus
 * OriginalCreationTime and OriginalETag within S3's 10-tag limit, the rest as
 * user metadata), storage class and KMS key.
 *
 * - A member with no entry, a member outside objects/, a symlink, hard link
 *   or device is skipped with a warning and never yielded.
 * - After the last member, each entry that had no member is yielded once with
 *   status TRS_OBJECT_MISSING: it was lost upstream and is a failure. When
 *   the archive holds its name as a link or device, its puts carry that
 *   error (TRS_EUNSAFE, "the archive holds this object as a symbolic link...").
 */
#ifndef TRS_OBJECT_H
#define TRS_OBJECT_H

#include "archive.h"
#include "manifest.h"
#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trs_object_iter trs_object_iter;

typedef enum {
	TRS_OBJECT_READY = 0,   /* member and entry joined; the body can be read */
	TRS_OBJECT_MISSING,     /* entry without a member */
} trs_object_status;

/** One target's part in an object: a put, or why it cannot be made. */
typedef struct trs_object_put {
	trs_put_request request;          /* ready for trs_upload */
	const trs_manifest_target *target;
	int error;                        /* 0, or why this put cannot be made (TRS_EINVAL, TRS_ELIMIT) */
	const char *error_message;        /* a sentence when error != 0 */
} trs_object_put;

typedef struct trs_object {
	trs_object_status status;
	const trs_manifest_object *entry;
	const char *member_path;          /* "objects/<relative_key>", NULL when missing */
	const trs_object_put *puts;       /* targets in this region (backup targets excluded) */
	size_t nputs;
	size_t other_region_targets;      /* targets skipped because they are elsewhere */
	size_t backup_targets;            /* backup targets in this region (docs/operations.md) */
	size_t overflow_tags;             /* tags carried as metadata because of the 10-tag limit */
} trs_object;

/** Create an iterator over `a` (positioned at its start) for `manifest`. */
TRS_EXTERN(int) trs_object_iter_new(trs_object_iter **out, trs_archive *a, const trs_manifest *manifest,
				    const trs_ctx *ctx, trs_error *err);

/**
 * Next object: 1 with *obj set (valid until the next call), 0 when done, or
 * a negative code when the archive itself failed (the iteration is over).
 */
TRS_EXTERN(int) trs_object_iter_next(trs_object_iter *it, const trs_object **obj, trs_error *err);

/**
 * The current object's body as a stream that checks, at its last byte, the
 * size and (for a plain-MD5 etag) the MD5 against the manifest, and fails
 * with TRS_EINTEGRITY otherwise. Read it at most once.
 */
TRS_EXTERN(trs_body *) trs_object_body(trs_object_iter *it);

/** Members skipped so far (no entry, not a regular file, outside objects/). */
TRS_EXTERN(uint64_t) trs_object_iter_skipped_members(const trs_object_iter *it);

TRS_EXTERN(void) trs_object_iter_free(trs_object_iter *it);

#ifdef __cplusplus
}
#endif
#endif
