/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs private: what the core knows of storage and queue backends beyond
 * their public vtables (lib/storage/storage.c, lib/queue/queue.c).
 */
#ifndef TRS_BACKEND_H
#define TRS_BACKEND_H

#include "ctx.h"
#include "trs/sys/storage.h"

/*
 * The sister vtables (trs_storage, trs_queue) check versions one way: a
 * backend's version is known when it is 1 to the library's current one
 * (trs_*_init_backend refuses others), and it is checked once where the
 * library takes the backend (trs_process, trs_serve), never per call;
 * members newer than version 1 are read only when the version has them.
 */
static inline bool trs__vtable_version_known(unsigned int version, unsigned int current)
{
	return version >= 1 && version <= current;
}
int trs__storage_check_version(const trs_storage *s, trs_error *err);
int trs__queue_check_version(const trs_queue *q, trs_error *err);

/*
 * A vouched body (lib/storage/storage.c): `inner` whose MD5 the library already
 * verified against the manifest, or vouches for (--verify size), so that a
 * backend need not hash it again (trs_body_verified_md5). Over a memory
 * body it is still one for trs_body_memory.
 */
typedef struct trs__vouched_body {
	trs_body body;
	trs_body *inner;
	char md5[33];
} trs__vouched_body;
trs_body *trs__vouched_body_init(trs__vouched_body *vb, trs_body *inner, const char *md5_hex);

/* A backend's version-2 members (trs/sys/storage.h), 0 for a version-1 backend (lib/storage/storage.c). */
unsigned int trs__storage_caps(const trs_storage *s);
unsigned int trs__storage_parallelism(const trs_storage *s);
uint64_t trs__storage_md5_checked_below(const trs_storage *s);
uint64_t trs__storage_reserved_memory(const trs_storage *s);
/* The version-3 member put_if_newer: nonzero when the backend compares versions as it writes. */
int trs__storage_writes_if_newer(const trs_storage *s);

/* Newest wins (lib/storage/version.c). A manifest time ("YYYY-MM-DD HH:MM:SS", ISO 8601 forms) in unix
 * seconds, or -1; the version an earlier restore recorded on an object (time NULL when none); the
 * name of a write's outcome (TRS_WRITTEN, ...) for logs and reports. */
int trs__source_time_parse(const char *s, int64_t *out);
void trs__recorded_version(const trs_object_info *info, const char **time, const char **etag);
const char *trs__write_outcome_name(int outcome);

/*
 * Early staging through a backend's version-4 members (trs/sys/storage.h; lib/storage/storage.c).
 * trs__storage_stage_open answers TRS_EUNSUPPORTED for a backend that does not set
 * TRS_STORAGE_STAGE_EARLY or lacks any of the six; the others call the member of the
 * backend that opened the stage.
 */
int trs__storage_stage_open(trs_storage *s, trs_storage_stage **out, trs_error *err);
int trs__storage_stage_create(trs_storage_stage *st, uint64_t index, trs_error *err);
int trs__storage_stage_publish(trs_storage_stage *st, uint64_t index, const trs_put_request *req, uint64_t size,
			       const char *md5, const trs_write_condition *cond, trs_error *err);
void trs__storage_stage_discard(trs_storage_stage *st, uint64_t index);
int trs__storage_stage_spool(trs_storage_stage *st, char *where, size_t where_size, trs_error *err);
void trs__storage_stage_close(trs_storage_stage *st);

#endif
