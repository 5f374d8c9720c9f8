/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: the queue backend API, for implementors (like libgit2's
 * git2/sys/odb_backend.h). Users of the library never need this header.
 *
 * A backend is a struct whose first member is a trs_queue:
 *
 *     struct my_queue { trs_queue parent; redis *r; };
 *     struct my_queue *q = calloc(1, sizeof(*q));
 *     trs_queue_init_backend(&q->parent, TRS_QUEUE_VERSION);
 *     q->parent.name = "redis";
 *     q->parent.receive = my_receive;
 *     ...
 *
 * Contract:
 * - receive fills *out with a malloc'ed array of messages whose strings are
 *   malloc'ed too (the library frees them with free()); body is
 *   NUL-terminated. It honours options->interrupt while it waits.
 * - delete_batch reports per entry in codes[] (never NULL when the library
 *   calls it) and returns 0, TRS_EPARTIAL, or a negative code when nothing
 *   could be done.
 * - Functions may be called from several threads at once (trs_serve
 *   receives on one thread while its keeper thread deletes messages and
 *   extends their visibility); a backend that cannot do that must lock
 *   internally.
 * - NULL members are "not supported": the library answers TRS_EUNSUPPORTED.
 */
#ifndef TRS_SYS_QUEUE_H
#define TRS_SYS_QUEUE_H

#include "../queue.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRS_QUEUE_VERSION 1

struct trs_queue {
	unsigned int version;
	const char *name;

	int (*receive)(trs_queue *self, const trs_queue_receive_options *options, trs_queue_message **out,
		       size_t *count, trs_error *err);
	int (*delete_batch)(trs_queue *self, const char *const *receipt_handles, size_t count, int *codes,
			    trs_error *err);
	int (*change_visibility)(trs_queue *self, const char *receipt_handle, unsigned int seconds, trs_error *err);
	void (*free)(trs_queue *self);
};

#define TRS_QUEUE_INIT {TRS_QUEUE_VERSION, 0, 0, 0, 0, 0}

/** Zero `backend` and set its version; returns TRS_EINVAL for an unknown version. */
TRS_EXTERN(int) trs_queue_init_backend(trs_queue *backend, unsigned int version);

#ifdef __cplusplus
}
#endif
#endif
