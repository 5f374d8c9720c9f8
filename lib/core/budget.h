/*
 * A memory budget (lib/core/budget.c): bytes are taken before they are allocated
 * and given back when freed, and never more than the limit is held at once.
 * A request larger than the whole budget is granted alone, when nothing
 * else is held, so that one huge object still goes. Any number of threads
 * may take and give; a taker that waits is woken when bytes come back.
 */
#ifndef TRS_BUDGET_H
#define TRS_BUDGET_H

#include "util.h"

#include <pthread.h>

typedef struct trs__budget {
	pthread_mutex_t mu;
	pthread_cond_t freed;      /* bytes were given back */
	unsigned int waiters;
	uint64_t limit;
	uint64_t used;
} trs__budget;

void trs__budget_init(trs__budget *b, uint64_t limit);
void trs__budget_destroy(trs__budget *b);
/* Take n bytes and return 0. Without `wait`, -1 (nothing taken) when they
 * are not free now; with it, block until they are. */
int trs__budget_take(trs__budget *b, uint64_t n, bool wait);
void trs__budget_give(trs__budget *b, uint64_t n);
/* Would taking n bytes now have to wait? */
bool trs__budget_short(trs__budget *b, uint64_t n);
/* The bytes held now (for tests and logs). */
uint64_t trs__budget_used(trs__budget *b);

#endif
