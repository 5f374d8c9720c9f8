/* The memory budget (see lib/core/budget.h). */
#include "budget.h"

void trs__budget_init(trs__budget *b, uint64_t limit)
{
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->freed, NULL);
	b->waiters = 0;
	b->limit = limit;
	b->used = 0;
}

void trs__budget_destroy(trs__budget *b)
{
	pthread_cond_destroy(&b->freed);
	pthread_mutex_destroy(&b->mu);
}

/* Under the lock: n more bytes would pass the limit (alone, anything goes). */
static bool over(const trs__budget *b, uint64_t n)
{
	return b->used && b->used + n > b->limit;
}

int trs__budget_take(trs__budget *b, uint64_t n, bool wait)
{
	pthread_mutex_lock(&b->mu);
	if (!wait && b->used + n > b->limit) {
		pthread_mutex_unlock(&b->mu);
		return -1;
	}
	while (over(b, n)) {
		b->waiters++;
		pthread_cond_wait(&b->freed, &b->mu);
		b->waiters--;
	}
	b->used += n;
	pthread_mutex_unlock(&b->mu);
	return 0;
}

void trs__budget_give(trs__budget *b, uint64_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&b->mu);
	b->used -= n;
	if (b->waiters)
		pthread_cond_broadcast(&b->freed);
	pthread_mutex_unlock(&b->mu);
}

bool trs__budget_short(trs__budget *b, uint64_t n)
{
	pthread_mutex_lock(&b->mu);
	bool s = over(b, n);
	pthread_mutex_unlock(&b->mu);
	return s;
}

uint64_t trs__budget_used(trs__budget *b)
{
	pthread_mutex_lock(&b->mu);
	uint64_t u = b->used;
	pthread_mutex_unlock(&b->mu);
	return u;
}
