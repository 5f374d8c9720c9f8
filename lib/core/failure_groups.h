/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Failed puts grouped by cause (lib/core/failure_groups.c): one missing
 * bucket in an archive of 47 objects is one cause, said once with its count
 * and the first keys, not 47 lines. Each put's own line goes out at debug;
 * the report lists every failure.
 */
#ifndef TRS_FAILURE_GROUPS_H
#define TRS_FAILURE_GROUPS_H

#include "internal.h"

#define TRS__FAILURE_GROUPS_MAX 32 /* causes said one by one per archive; the rest summed in one line */
#define TRS__FAILURE_FIRST_KEYS 3

typedef struct trs__failure_group {
	char *bucket;
	int code;                    /* TRS_E* */
	char aws_code[64];           /* the service's error code, "" when none */
	uint64_t count;
	char *first_keys[TRS__FAILURE_FIRST_KEYS];
	char *relative_key;          /* the first failure's, for a cause of one object */
	char *message;               /* the first failure's message: the reason and what to do */
} trs__failure_group;

typedef struct trs__failure_groups {
	trs__failure_group *g;
	size_t n;
	uint64_t other;              /* failures of causes beyond TRS__FAILURE_GROUPS_MAX */
} trs__failure_groups;

/* Count one failed put (the caller holds the lock that guards `gs`). Out of memory: counted in `other`. */
void trs__failure_groups_add(trs__failure_groups *gs, const char *relative_key, const char *bucket, const char *key,
			     int code, const char *aws_code, const char *message);
/* One error line per cause, then free: `archive` names them. */
void trs__failure_groups_log(trs__failure_groups *gs, const trs_ctx *ctx, const char *archive);
void trs__failure_groups_free(trs__failure_groups *gs);

#endif
