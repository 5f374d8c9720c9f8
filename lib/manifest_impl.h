/*
 * The parsed manifest's layout, shared by its parser (lib/manifest.c) and
 * its accessors and indexes (lib/manifest_data.c).
 */
#ifndef TRS_MANIFEST_IMPL_H
#define TRS_MANIFEST_IMPL_H

#include "internal.h"
#include "arena.h"

struct trs_manifest {
	trs_arena arena;
	trs_manifest_target *targets;
	size_t ntargets;
	trs_manifest_object *objects;
	size_t nobjects;
	char **warnings;
	size_t nwarnings;
	/* relative_key -> object index + 1 (0 = empty slot); open addressing. */
	uint32_t *index;
	size_t index_mask;
};

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

#endif
