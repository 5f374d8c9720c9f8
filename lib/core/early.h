/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Objects that come before the manifest (lib/core/early.c). The source side
 * writes manifest.json last, so the reader keeps each object until the
 * manifest says where it goes:
 * - small ones are appended to the spool (lib/core/spool.c): in the staging
 *   area of a destination that stages (TRS_STORAGE_STAGE_EARLY and the
 *   version-4 stage_* members: the fs backend, or a user's), or in TMPDIR
 *   once the memory budget is spent for any other;
 * - large ones are staged as objects of their own through the backend's
 *   stage_create and stage_publish (lib/core/pipeline_stage.c);
 * - for other destinations they are held in memory within the budget, and
 *   what does not fit is left to a second pass (lib/core/process.c).
 */
#ifndef TRS_EARLY_H
#define TRS_EARLY_H

#include "arena.h"
#include "pipeline.h"
#include "spool.h"

/* An object held in memory or staged: about 100 bytes (an arena's) until the manifest comes. */
typedef struct trs__early_member {
	struct trs__early_member *next;
	char *path;
	unsigned char *data;  /* held in memory (budget), or NULL when staged */
	uint64_t size;
	uint64_t index;       /* the member's position in the tar */
	int staged;           /* written through the destination's stage_create */
	uint64_t stage_index;
	trs__stage_result result;
} trs__early_member;

typedef struct trs__early {
	trs__run *run;
	trs_archive *archive;
	uint64_t small_max;   /* objects up to this size travel whole */
	uint64_t chunk;       /* larger ones in chunks of this size */
	trs__early_member *head, *tail;
	int overflow;         /* some object did not fit: the second pass restores it */
	trs__arena mem;        /* the members and their paths: one malloc per 64 KiB, freed at the end */
	trs_storage_stage *stage; /* a local destination: staging and the spool there */
	int stage_tried;
	uint64_t stage_next;
	trs__spool *spool;
	size_t spool_buffer;  /* the size of its buffers */
	int spool_tried;
	int from_spool;       /* the last item given was the spool's current record */
	uint64_t held, staged;
} trs__early;

/* The next object before the manifest, in tar order. */
typedef struct trs__early_item {
	trs__early_member *member; /* held or staged (off the list: the caller's), or NULL for a spool record */
	const char *path;
	uint64_t index;
	uint64_t size;
	const unsigned char *data; /* a spool record's bytes, until the next call */
	const char *md5;           /* and their MD5 when the spool computed it */
} trs__early_item;

/* Read exactly `size` bytes of the archive's current member. */
int trs__read_member(trs_archive *a, unsigned char *buf, uint64_t size, trs_error *err);

/* Keep objects/ file member `m`, read from e->archive. */
int trs__early_keep(trs__early *e, const trs_member *m, trs_error *err);
/* Log what was kept and how (once the manifest has come). */
void trs__early_log(const trs__early *e);
/* 1 with *item, 0 after the last, or a negative code (the spool could not be read back). */
int trs__early_next(trs__early *e, trs__early_item *item, trs_error *err);
/* A member that is not to be restored: its staged file or memory goes. */
void trs__early_drop(trs__early *e, trs__early_member *p);
/* Everything left, the spool and the staging directory (no job may still use them). */
void trs__early_free(trs__early *e);

#endif
