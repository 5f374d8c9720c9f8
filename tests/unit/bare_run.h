/* SPDX-License-Identifier: Apache-2.0 */
/* A bare trs__run for unit tests of the chunk channel: its lock and its
 * budget (an account of its own budget), no writers. */
#ifndef TRS_TEST_BARE_RUN_H
#define TRS_TEST_BARE_RUN_H

#include "core/pipeline.h"

#include <string.h>

static void run_init(trs__run *r, uint64_t budget)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	trs__budget_init(&r->budget, budget);
	trs__budget_join(&r->budget, &r->account, NULL);
}

static void run_destroy(trs__run *r)
{
	trs__budget_leave(&r->account);
	trs__budget_destroy(&r->budget);
	pthread_mutex_destroy(&r->mu);
}

/* The budget held now. */
static uint64_t used(trs__run *r)
{
	return trs__budget_used(&r->budget);
}

#endif
