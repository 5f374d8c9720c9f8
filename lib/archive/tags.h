/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An object's tag set and user metadata, within what S3 accepts
 * (lib/archive/tags.c): at most 10 tags of S3's characters and lengths, an
 * x-amz-tagging header that keeps the request under S3's 8 KB of headers,
 * and at most 2 KB of user metadata. What does not fit as tags is carried
 * as metadata; what fits in neither is dropped and named in the log. An
 * object is never refused for its tags.
 */
#ifndef TRS_TAGS_H
#define TRS_TAGS_H

#include "internal.h"

#include <string.h>

#define TRS_S3_MAX_TAGS 10
#define TRS_S3_MAX_TAG_KEY 128     /* characters */
#define TRS_S3_MAX_TAG_VALUE 256
#define TRS_S3_MAX_METADATA 2048   /* bytes of metadata names and values, as S3 counts them */
#define TRS_S3_MAX_HEADERS 8192    /* bytes of a request's headers */
#define TRS_S3_KMS_KEY_HEADER "x-amz-server-side-encryption-aws-kms-key-id"

/* The bytes of the KMS key id's header line: up to 2 KB of the 8 KB, which the tags must leave. */
static inline size_t trs__kms_header_bytes(const char *kms_key_id)
{
	return strlen(TRS_S3_KMS_KEY_HEADER ": \r\n") + strlen(kms_key_id);
}

typedef struct trs__tagset {
	trs_kv tags[TRS_S3_MAX_TAGS];
	size_t ntags;
	trs_kv metadata[3];        /* original-creation-time, original-etag, original-tags */
	size_t nmetadata;
	size_t carried;            /* tags of the manifest (and originals) not in `tags` */
	size_t dropped;            /* of those, the ones in neither tags nor metadata */
	trs__buf original_tags;     /* URL-encoded k=v&... carried as metadata */
	trs__buf dropped_list;      /* URL-encoded k=v&... of the dropped, for the log */
	trs__buf scratch;
	char etag[64];
} trs__tagset;

#define TRS_TAGSET_INIT {{{0, 0}}, 0, {{0, 0}}, 0, 0, 0, TRS_BUF_INIT, TRS_BUF_INIT, TRS_BUF_INIT, {0}}

/*
 * Build the set for entry e, whose destination key is `key` (its encoded
 * length takes part in the 8 KB of headers), for puts that also send
 * `header_bytes` of headers of their own (the KMS key id's line, from
 * trs__kms_header_bytes; 0 without). Strings point into e and ts; they live
 * until the next build or trs__tagset_free. 0, or TRS_ENOMEM.
 */
int trs__tagset_build(trs__tagset *ts, const trs_manifest_object *e, const char *key, size_t header_bytes,
		      trs_error *err);

/* Would S3 take this as a tag key (is_key) or value: its characters, its length, no "aws:" prefix? */
bool trs__tag_acceptable(const char *s, bool is_key);

void trs__tagset_free(trs__tagset *ts);

#endif
