/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parsed manifest's layout, shared by its parser (lib/archive/manifest.c) and
 * its accessors and indexes (lib/archive/manifest_data.c).
 */
#ifndef TRS_MANIFEST_IMPL_H
#define TRS_MANIFEST_IMPL_H

#include "internal.h"
#include "arena.h"
#include "json_scan.h"

#include <yajl/yajl_parse.h>

struct trs_manifest {
	trs__arena arena;
	trs_manifest_target *targets;
	size_t ntargets;
	trs_manifest_object *objects;
	size_t nobjects;
	char **warnings;
	size_t nwarnings;
	size_t nwarnings_dropped; /* beyond the 1,000 kept */
	/* relative_key -> object index + 1 (0 = empty slot); open addressing. */
	uint32_t *index;
	size_t index_mask;
	size_t objects_cap;       /* entries allocated in objects */
	size_t targets_cap;
	uint64_t json_bytes;      /* the JSON it was parsed from */
};

/* Refuse (TRS_ELIMIT, in a callback) when the manifest's memory plus
 * `more` bytes about to be allocated would pass the limit. 1, or 0 after failing. */
int trs__manifest_parser_memory_ok(trs_manifest_parser *p, size_t more);

/* Parse a JSON number as an exact unsigned size: integers of any length up
 * to 2^64-1 exactly; floats only when integral (1048576.0, 1e3). 0 (or 1
 * for a float), or -1 when it is none of those. */
int trs__manifest_parse_size(const char *s, size_t len, uint64_t *out);

/* Add a warning (at most 1000 are kept). 0, or TRS_ENOMEM. */
int trs__manifest_warn(trs_manifest *m, const char *fmt, ...) TRS_PRINTF(2, 3);

/*
 * Once every entry is in: mark the entries whose destination key a later
 * entry also writes (TRS_MANIFEST_OBJECT_SUPERSEDED) and those that repeat
 * the relative_key of another (TRS_MANIFEST_OBJECT_REPEATS_KEY), warning
 * about each, and index the relative keys. 0, or TRS_ENOMEM.
 */
int trs__manifest_build_index(trs_manifest *m, trs_error *err);

/*
 * The last target of p->m is complete: when an earlier one has its region,
 * bucket and backup flag, fold it into that one (its storage_class and
 * kms_key_arn replace the earlier's) and drop it. 1 when it was kept, 0 when
 * folded.
 */
int trs__manifest_fold_target(trs_manifest_parser *p);
/* Forget every target (a repeated "targets" list starts again). */
void trs__manifest_forget_targets(trs_manifest_parser *p);
/* The warning about repeated targets, once per manifest: 1, or 0 after failing for lack of memory. */
int trs__manifest_warn_repeats(trs_manifest_parser *p);

/* ---- the parser's state, shared by lib/archive/manifest.c (grammar) and lib/archive/manifest_parser.c (feeding) ---- */

#define DEFAULT_MAX_BYTES (1ull << 30)
#define DEFAULT_MAX_OBJECTS 50000000ull
#define DEFAULT_MAX_DEPTH 64
#define MAX_KEY 64
/* Slots of the index of targets by (region, bucket, backup): twice the most there can be. */
#define TARGET_SLOTS 2048
_Static_assert(TARGET_SLOTS >= 2 * (TRS_MANIFEST_MAX_TARGETS + 1), "the target index has room for every target");


typedef enum {
	ST_TOP,          /* before the document */
	ST_ROOT,         /* in the top-level object */
	ST_TARGETS,      /* in "targets": [...] */
	ST_TARGET,       /* in one target {...} */
	ST_OBJECTS,      /* in "objects": [...] */
	ST_OBJECT,       /* in one object {...} */
	ST_TAGS,         /* in an object's "tags": [...] */
	ST_TAG,          /* in one {"k": "v"} */
	ST_DONE
} parse_state;

/* Which field the next scalar belongs to. */
typedef enum {
	F_NONE,
	F_T_REGION, F_T_BUCKET, F_T_CLASS, F_T_KMS, F_T_BACKUP,
	F_O_SRC_BUCKET, F_O_SRC_PREFIX, F_O_NAME, F_O_REL_KEY, F_O_CTIME, F_O_ETAG,
	F_O_SIZE, F_O_CLASS, F_O_TAGS,
	F_TAG_VALUE,
	F_TARGETS, F_OBJECTS
} field_id;

typedef struct {
	trs_kv *items;
	size_t n, cap;
} kv_list;

struct trs_manifest_parser {
	yajl_handle yajl;
	trs_manifest *m;
	trs_manifest_limits limits;
	uint64_t bytes;
	parse_state state;
	unsigned int depth;
	unsigned int skip_depth; /* > 0: inside an ignored value that opened at this depth */
	field_id field;
	char key[MAX_KEY + 1];   /* current key, truncated; only known (short) keys matter */
	trs_manifest_object cur;  /* the object being built */
	char *cur_tag_key;
	kv_list tags;
	size_t entry_index;       /* position of the object being built in "objects" */
	size_t entries_seen;
	int cur_has_name;
	int cur_has_relkey;
	int tags_map;
	trs__json_scan scan;      /* lone surrogates, which yajl turns into '?' */
	uint64_t strings;         /* strings delivered by yajl (values and keys) */
	int lone_surrogate;       /* the string being delivered held one */             /* "tags" is one object of pairs, not a list */
	uint64_t events;          /* callbacks so far: a token ended */
	trs__buf pending;          /* bytes held back from yajl (see feed_policy) */
	uint64_t fed;             /* bytes handed to yajl */
	uint64_t fed_at_event;    /* p->fed after the last yajl_parse that ended a token */
	/* Targets: repeats of one (region, bucket, backup) are folded into the first (manifest_data.c). */
	size_t targets_seen;      /* entries of "targets" so far, repeats too: the index messages give */
	uint32_t target_at[TRS_MANIFEST_MAX_TARGETS + 1]; /* per kept target, its index in "targets" */
	uint16_t target_slots[TARGET_SLOTS]; /* kept target + 1, by hash; 0: empty */
	size_t target_repeats;    /* entries folded into an earlier one */
	size_t first_repeat;      /* the first of them, its index in "targets" */
	size_t first_repeated;    /* and the kept target it repeats */
	int repeat_differs;       /* a repeat had another storage_class or kms_key_arn */
	unsigned int fields_seen; /* 1 << field_id of the current target or object, and of the root */
	unsigned int root_seen;
	int failed;
	trs_error error;          /* the first error, set inside callbacks */
	int finished;
};

extern const yajl_callbacks trs__manifest_callbacks;
/* Record the first error (inside a callback) and return 0, which stops yajl. */
int trs__manifest_fail(trs_manifest_parser *p, int code, const char *fmt, ...) TRS_PRINTF(3, 4);
/* Add a warning; 1, or 0 after failing for lack of memory. */
int trs__manifest_parser_warn(trs_manifest_parser *p, const char *fmt, ...) TRS_PRINTF(2, 3);

#endif
