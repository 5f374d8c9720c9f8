/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: the storage backend API, for implementors (like libgit2's
 * git2/sys/odb_backend.h). Users of the library never need this header.
 *
 * A backend is a struct whose first member is a trs_storage, filled with
 * TRS_STORAGE_INIT and the functions it supports:
 *
 *     struct my_backend { trs_storage parent; sqlite3 *db; };
 *     struct my_backend *b = calloc(1, sizeof(*b));
 *     trs_storage_init_backend(&b->parent, TRS_STORAGE_VERSION);
 *     b->parent.name = "sqlite";
 *     b->parent.put = my_put;
 *     b->parent.free = my_free;
 *
 * Contract:
 * - put must read the body until read() returns 0 before making the object
 *   visible; if read() returns a negative code, abandon the write and return
 *   that code with err as read() filled it.
 * - Functions may be called concurrently from several threads for different
 *   keys; a backend that cannot do that must lock internally.
 * - NULL members are "not supported": the library answers TRS_EUNSUPPORTED.
 * - Allocate what goes into trs_object_info with malloc; the library frees it.
 *
 * Version 2 adds what the library may rely on when it plans a restore, so
 * that it never has to know a backend by its name: capability flags, a
 * parallelism hint, and the memory the backend keeps for itself. A backend
 * that leaves them zero gets the careful defaults (the library checks every
 * byte itself, one writer per transfer in flight, objects before the
 * manifest held in memory). A version-1 backend keeps working: the library
 * reads these members only when version >= 2.
 *
 * Version 3 adds optional conditional writes, for the rule that the newest
 * version of an object wins (trs_write_condition in trs/storage.h):
 * put_if_newer and copy_if_newer write only when what stands at the key is
 * older (trs_write_condition_check says so), and return TRS_KEPT_NEWER or
 * TRS_ALREADY_CURRENT, writing nothing, otherwise. Make the comparison and
 * the write one atomic step against other writers of the key, on every
 * machine that writes there (S3: If-None-Match / If-Match; a database: a
 * transaction). A backend that leaves them NULL gets plain put and copy:
 * whatever arrives last stands, as before version 3.
 *
 * Version 4 adds two optional groups, so that nothing the built-in
 * backends do is out of a user backend's reach:
 * - Early staging (with TRS_STORAGE_STAGE_EARLY): objects that come before
 *   the manifest in the archive are kept on the destination's own disk
 *   instead of in memory, and moved to their keys once the manifest names
 *   them, so a manifest-last archive is restored in one pass whatever its
 *   size. stage_open makes a staging area (a directory of the backend's)
 *   for one restore, and the other stage_* members work in it; all six or
 *   none. The library writes each staged object through the fd that
 *   stage_create returns, checks its size and MD5 itself, then calls
 *   stage_publish once per target with that MD5; small objects go to one
 *   unnamed spool file (stage_spool) and then through put() as usual.
 *   stage_close removes whatever is still staged.
 * - retry_stats: the counters behind trs_storage_retry_stats (and the
 *   service's retry metrics) for a backend with a retry layer of its own.
 * A backend that leaves them NULL gets what version 3 did: objects before
 * the manifest held in memory (or read in a second pass), and
 * TRS_EUNSUPPORTED from trs_storage_retry_stats.
 *
 * Bodies carry hints a backend may use (trs_body_memory,
 * trs_body_verified_md5 in trs/storage.h); they are the same for built-in
 * and user backends.
 */
#ifndef TRS_SYS_STORAGE_H
#define TRS_SYS_STORAGE_H

#include "../storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRS_STORAGE_VERSION 4

/*
 * Capabilities (trs_storage.caps, version 2).
 *
 * TRS_STORAGE_CHECKS_CONTENT_MD5: put() refuses, writing nothing, a body
 *   whose MD5 is not req->content_md5_hex, for bodies shorter than
 *   md5_checked_below bytes (S3's single PutObject with Content-MD5: 400
 *   BadDigest). The library then skips its own MD5 of such bodies. Do not
 *   set it for a server that ignores Content-MD5.
 * TRS_STORAGE_LOCAL: writes are bound by the CPU and system calls, not by
 *   a network: one writer per CPU (the context's workers) instead of one
 *   per transfer in flight.
 * TRS_STORAGE_STAGE_EARLY: objects that come before the manifest are
 *   kept on the destination itself instead of being held in memory: small
 *   ones in a spool file, put() once the manifest names them; large ones
 *   staged and moved into place, through the version-4 stage_* members.
 *   A backend that sets it without them is handled as without it.
 */
#define TRS_STORAGE_CHECKS_CONTENT_MD5 (1u << 0)
#define TRS_STORAGE_LOCAL (1u << 1)
#define TRS_STORAGE_STAGE_EARLY (1u << 2)

/*
 * A staging area (version 4): the backend's own struct, with this as its
 * first member, as trs_storage is for the backend itself. `storage` is the
 * backend that opened it; the library reads nothing else.
 */
typedef struct trs_storage_stage {
	trs_storage *storage;
} trs_storage_stage;

struct trs_storage {
	unsigned int version;
	const char *name;

	int (*put)(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err);
	int (*get)(trs_storage *self, const char *bucket, const char *key, uint64_t offset,
		   uint64_t length, trs_sink_fn sink, void *userdata, trs_error *err);
	int (*head)(trs_storage *self, const char *bucket, const char *key, trs_object_info *info,
		    trs_error *err);
	int (*copy)(trs_storage *self, const char *src_bucket, const char *src_key,
		    const trs_put_request *req, trs_error *err);
	int (*del)(trs_storage *self, const char *bucket, const char *key, trs_error *err);
	void (*free)(trs_storage *self);

	/* Version 2. */
	unsigned int caps;            /* TRS_STORAGE_* flags */
	unsigned int parallelism;     /* at most this many concurrent puts suit the backend; 0: no limit of its own */
	uint64_t md5_checked_below;   /* with TRS_STORAGE_CHECKS_CONTENT_MD5: bodies shorter than this */
	uint64_t reserved_memory;     /* bytes of the context's max_memory the backend keeps for itself
	                                 (S3: multipart part buffers); the restore's budget is the rest */

	/* Version 3: optional; NULL gives put and copy, unconditional. */
	int (*put_if_newer)(trs_storage *self, const trs_put_request *req, const trs_write_condition *cond,
			    trs_body *body, trs_error *err);
	int (*copy_if_newer)(trs_storage *self, const char *src_bucket, const char *src_key,
			     const trs_put_request *req, const trs_write_condition *cond, trs_error *err);

	/* Version 4: optional (see above). Early staging: all six or none. */
	/* A new staging area for one restore, in *out (its storage member set). */
	int (*stage_open)(trs_storage *self, trs_storage_stage **out, trs_error *err);
	/* A new staged object numbered `index` (unique in the area): an fd open for writing, which
	 * the library writes and closes, or a negative code. */
	int (*stage_create)(trs_storage_stage *stage, uint64_t index, trs_error *err);
	/* Move staged `index` to req's bucket and key with req's metadata; its `size` bytes were
	 * checked against `md5_hex` (NULL with --verify size). Called once per target: after the
	 * first success the object may be gone from the area, and the library copies it to the
	 * other targets (copy). `cond` is given only to a backend with put_if_newer, and then as
	 * there: TRS_WRITTEN, TRS_KEPT_NEWER (the staged object stays), TRS_ALREADY_CURRENT, or a
	 * negative code; without it, 0 or a negative code. */
	int (*stage_publish)(trs_storage_stage *stage, uint64_t index, const trs_put_request *req, uint64_t size,
			     const char *md5_hex, const trs_write_condition *cond, trs_error *err);
	/* Drop staged `index` (it failed its checks, or no target wants it). */
	void (*stage_discard)(trs_storage_stage *stage, uint64_t index);
	/* A file with no name, open for reading and writing, for the spool of small objects: an fd
	 * or a negative code. `where` gets a path for messages (the area's directory). */
	int (*stage_spool)(trs_storage_stage *stage, char *where, size_t where_size, trs_error *err);
	/* Remove whatever is still staged, and the area; free the stage. */
	void (*stage_close)(trs_storage_stage *stage);
	/* Fill *out (zeroed by the library first); 0, or TRS_EUNSUPPORTED. */
	int (*retry_stats)(const trs_storage *self, trs_retry_stats *out);
};

#define TRS_STORAGE_INIT {TRS_STORAGE_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * Zero `backend` as far as `version` reaches (a version-1 struct is never
 * written past its end) and set its version; TRS_EINVAL for an unknown one.
 */
TRS_EXTERN(int) trs_storage_init_backend(trs_storage *backend, unsigned int version);

#ifdef __cplusplus
}
#endif
#endif
