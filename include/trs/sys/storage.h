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

#define TRS_STORAGE_VERSION 3

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
 *   staged and moved into place. Implemented for the built-in "fs"
 *   backend; any other backend that sets it is handled as without it.
 */
#define TRS_STORAGE_CHECKS_CONTENT_MD5 (1u << 0)
#define TRS_STORAGE_LOCAL (1u << 1)
#define TRS_STORAGE_STAGE_EARLY (1u << 2)

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
};

#define TRS_STORAGE_INIT {TRS_STORAGE_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * Zero `backend` as far as `version` reaches (a version-1 struct is never
 * written past its end) and set its version; TRS_EINVAL for an unknown one.
 */
TRS_EXTERN(int) trs_storage_init_backend(trs_storage *backend, unsigned int version);

#ifdef __cplusplus
}
#endif
#endif
