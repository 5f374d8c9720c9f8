/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: manifest.json, the archive's table of contents (docs/formats.md).
 *
 * The parser is strict about types and liberal about everything else:
 * unknown fields are ignored, numbers may be integers or floats, sizes are
 * exact beyond 2^53. Nesting depth, total size and entry count are limited so
 * that hostile JSON cannot exhaust the stack or memory.
 */
#ifndef TRS_MANIFEST_H
#define TRS_MANIFEST_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trs_manifest trs_manifest;

/** A key/value pair (tags, metadata). Both strings are NUL-terminated UTF-8. */
typedef struct trs_kv {
	const char *key;
	const char *value;
} trs_kv;

/** One entry of "targets". Strings are never NULL; absent ones are "". */
typedef struct trs_manifest_target {
	const char *region;
	const char *bucket;        /* "" when missing: a failure for every object on this target */
	const char *storage_class; /* override; "" when absent */
	const char *kms_key_arn;   /* "" when absent */
	int backup;                /* "backup": true */
	unsigned int flags;        /* TRS_MANIFEST_TARGET_* */
} trs_manifest_target;

/**
 * The most targets a manifest may name; one more refuses it (TRS_ELIMIT).
 * A target repeated (the same region, bucket and backup flag) counts once:
 * it writes the same keys, so it is written once (docs/formats.md). Every
 * target costs each object a look, and S3 Replication itself stops at 1,000
 * rules a bucket: a source side that sends more sends something else.
 */
#define TRS_MANIFEST_MAX_TARGETS 1000

/* The target's bucket holds a NUL byte: `bucket` ends at it, and no object is written there. */
#define TRS_MANIFEST_TARGET_BUCKET_HAS_NUL 1u
/* The target's kms_key_arn holds a NUL byte: `kms_key_arn` ends at it (it would name another key),
 * and no object is written there. */
#define TRS_MANIFEST_TARGET_KMS_HAS_NUL 2u
/* The target's storage_class holds a NUL byte: `storage_class` ends at it (another class), and no object
 * is written there. */
#define TRS_MANIFEST_TARGET_CLASS_HAS_NUL 4u

/** One entry of "objects". Strings are never NULL; absent ones are "". */
typedef struct trs_manifest_object {
	const char *source_bucket;
	const char *source_prefix;
	const char *object_name;
	const char *relative_key;  /* defaults to object_name */
	const char *creation_time;
	const char *etag;
	const char *storage_class; /* "" when absent (STANDARD applies) */
	const trs_kv *tags;        /* merged in order, a later duplicate key wins; [{"k": "v"}, ...] or {"k": "v", ...} */
	size_t ntags;
	uint64_t size;
	int has_size;              /* 0: "size" was absent, not checked */
	unsigned int flags;        /* TRS_MANIFEST_OBJECT_* */
} trs_manifest_object;

/* A key field (source_prefix, object_name, relative_key) holds a NUL byte:
 * the strings above end at it, and the object can never be written safely. */
#define TRS_MANIFEST_OBJECT_KEY_HAS_NUL 1u
/* A later entry writes the same destination key: it wins, this one is not written. */
#define TRS_MANIFEST_OBJECT_SUPERSEDED 2u
/* An earlier entry has the same relative_key: the archive's one member for
 * it serves that entry, and this one cannot be restored (it fails). */
#define TRS_MANIFEST_OBJECT_REPEATS_KEY 4u
/* "size" is not a non-negative whole number: the object cannot be checked, it fails (the others go on). */
#define TRS_MANIFEST_OBJECT_BAD_SIZE 8u
/* "tags" is neither a list of one-pair objects nor one object of pairs: the object fails. */
#define TRS_MANIFEST_OBJECT_BAD_TAGS 16u
/* A key field held a lone UTF-16 surrogate escape ("\ud800"), which no UTF-8 key can carry
 * (JSON readers make it '?', so two keys could become one): the object fails. */
#define TRS_MANIFEST_OBJECT_KEY_HAS_SURROGATE 32u

/**
 * Parser limits. Zero fields take the defaults named here. max_bytes bounds
 * both the JSON read and the parsed manifest's memory (trs_manifest_memory),
 * which is counted as it grows: a manifest that would pass it is refused
 * (TRS_ELIMIT) before it does.
 */
typedef struct trs_manifest_limits {
	uint64_t max_bytes;        /* default 1 GiB of JSON, and of memory once parsed */
	uint64_t max_objects;      /* default 50,000,000 entries */
	unsigned int max_depth;    /* default 64 levels of nesting */
} trs_manifest_limits;

/**
 * Parse a whole manifest held in memory. On success *out owns everything it
 * points to; free it with trs_manifest_free. On failure returns
 * TRS_EMANIFEST (not JSON, wrong type: the message names the field, e.g.
 * "objects[3].size must be a non-negative integer") or TRS_ELIMIT, and sets
 * *out to NULL.
 */
TRS_EXTERN(int) trs_manifest_parse(const char *json, size_t len, trs_manifest **out, trs_error *err);

/** Streaming parse: feed the JSON in pieces as it is decompressed. */
typedef struct trs_manifest_parser trs_manifest_parser;
TRS_EXTERN(int) trs_manifest_parser_new(trs_manifest_parser **out, const trs_manifest_limits *limits, trs_error *err);
TRS_EXTERN(int) trs_manifest_parser_feed(trs_manifest_parser *p, const void *data, size_t len, trs_error *err);
/** Finish the document and hand over the result. The parser must still be freed. */
TRS_EXTERN(int) trs_manifest_parser_finish(trs_manifest_parser *p, trs_manifest **out, trs_error *err);
TRS_EXTERN(void) trs_manifest_parser_free(trs_manifest_parser *p);

/** The number of objects the manifest lists (0 for NULL). */
TRS_EXTERN(size_t) trs_manifest_object_count(const trs_manifest *m);
/**
 * Object i, in manifest order, 0 <= i < trs_manifest_object_count(m); NULL
 * when i is out of range. The object belongs to m: valid until
 * trs_manifest_free(m), never to be freed on its own.
 */
TRS_EXTERN(const trs_manifest_object *) trs_manifest_object_at(const trs_manifest *m, size_t i);
/** The number of targets, in manifest order; a repeat of one (same region, bucket and backup) is folded
 * into it, so this counts distinct targets (0 for NULL). */
TRS_EXTERN(size_t) trs_manifest_target_count(const trs_manifest *m);
/** Target i, 0 <= i < trs_manifest_target_count(m); NULL when out of range. Owned by m, as objects are. */
TRS_EXTERN(const trs_manifest_target *) trs_manifest_target_at(const trs_manifest *m, size_t i);

/**
 * The memory the parsed manifest holds, in bytes: its strings' arena, entry
 * and target arrays, warnings and index (what trs_manifest_free releases).
 */
TRS_EXTERN(size_t) trs_manifest_memory(const trs_manifest *m);

/** The size of the JSON the manifest was parsed from, in bytes. */
TRS_EXTERN(uint64_t) trs_manifest_json_bytes(const trs_manifest *m);

/**
 * Non-fatal findings of the parse (an object without object_name, a
 * duplicate relative_key, no targets, repeated targets), as sentences. Entries that were
 * dropped are not in the object list.
 */
TRS_EXTERN(size_t) trs_manifest_warning_count(const trs_manifest *m);
TRS_EXTERN(const char *) trs_manifest_warning_at(const trs_manifest *m, size_t i);

/**
 * Find the entry whose relative_key is `key` (length `len`), or NULL.
 * The first entry wins when the manifest repeats a relative_key.
 */
TRS_EXTERN(const trs_manifest_object *) trs_manifest_find(const trs_manifest *m, const char *key, size_t len);

/** The index of an entry returned by this manifest's accessors. */
TRS_EXTERN(size_t) trs_manifest_object_index(const trs_manifest *m, const trs_manifest_object *obj);

/**
 * The destination key of an entry: source_prefix + "/" + object_name when
 * source_prefix is non-empty, else object_name. Writes at most `size` bytes
 * including the NUL; returns the full length (like snprintf).
 */
TRS_EXTERN(size_t) trs_manifest_dest_key(const trs_manifest_object *obj, char *buf, size_t size);

/** Free a manifest. NULL is ignored. */
TRS_EXTERN(void) trs_manifest_free(trs_manifest *m);

#ifdef __cplusplus
}
#endif
#endif
