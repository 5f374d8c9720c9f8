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
 */
#ifndef TRS_SYS_STORAGE_H
#define TRS_SYS_STORAGE_H

#include "../storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRS_STORAGE_VERSION 1

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
};

#define TRS_STORAGE_INIT {TRS_STORAGE_VERSION, 0, 0, 0, 0, 0, 0, 0}

/** Zero `backend` and set its version; returns TRS_EINVAL for an unknown version. */
TRS_EXTERN(int) trs_storage_init_backend(trs_storage *backend, unsigned int version);

#ifdef __cplusplus
}
#endif
#endif
