/* A bare trs_run for unit tests of the budget and the chunk channel: its lock,
 * its budget condition and a limit, no writers. */
#ifndef TRS_TEST_BARE_RUN_H
#define TRS_TEST_BARE_RUN_H

#include "pipeline.h"

#include <string.h>

static void run_init(trs_run *r, uint64_t budget)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->space_cv, NULL);
	r->budget_max = budget;
}

static void run_destroy(trs_run *r)
{
	pthread_cond_destroy(&r->space_cv);
	pthread_mutex_destroy(&r->mu);
}

/* The budget held now. */
static uint64_t used(trs_run *r)
{
	pthread_mutex_lock(&r->mu);
	uint64_t u = r->budget_used;
	pthread_mutex_unlock(&r->mu);
	return u;
}

#endif
