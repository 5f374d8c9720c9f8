/*
 * The restore's memory budget (trs__run_budget_take / trs__run_budget_give):
 * grants within the limit, a taker that waits until bytes come back, a
 * request larger than the whole budget granted only when nothing is held,
 * and many concurrent takers never above the limit together.
 */
#include "harness.h"
#include "budget.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

TEST(grants_within_the_limit_and_refuses_beyond_it_without_waiting)
{
	trs__budget r;
	trs__budget_init(&r, 1000);
	CHECK(trs__budget_take(&r, 600, 0) == 0);
	CHECK(trs__budget_take(&r, 400, 0) == 0); /* exactly the limit */
	CHECK(trs__budget_used(&r) == 1000);
	CHECK(trs__budget_take(&r, 1, 0) == -1);
	CHECK(trs__budget_used(&r) == 1000); /* a refusal takes nothing */
	trs__budget_give(&r, 400);
	CHECK(trs__budget_take(&r, 300, 0) == 0);
	trs__budget_give(&r, 300);
	trs__budget_give(&r, 600);
	CHECK(trs__budget_used(&r) == 0);
	/* Never more than the whole budget without waiting, even when nothing is held. */
	CHECK(trs__budget_take(&r, 1001, 0) == -1);
	trs__budget_destroy(&r);
}

typedef struct taker {
	trs__budget *r;
	uint64_t n;
	atomic_int granted;
} taker;

static void *take_waiting(void *arg)
{
	taker *t = arg;
	trs__budget_take(t->r, t->n, 1);
	atomic_store(&t->granted, 1);
	return NULL;
}

/* Wait (at most 10 s) for the grant; false when it did not come. */
static int granted_within(taker *t, int tenths)
{
	for (int i = 0; i < tenths * 10 && !atomic_load(&t->granted); i++)
		usleep(10000);
	return atomic_load(&t->granted);
}

TEST(a_taker_waits_until_enough_comes_back)
{
	trs__budget r;
	trs__budget_init(&r, 1000);
	CHECK(trs__budget_take(&r, 800, 1) == 0);
	taker t = {&r, 500, 0};
	pthread_t th;
	pthread_create(&th, NULL, take_waiting, &t);
	usleep(150000);
	CHECK(!atomic_load(&t.granted)); /* 800 + 500 > 1000: it waits */
	trs__budget_give(&r, 200);
	usleep(150000);
	CHECK(!atomic_load(&t.granted)); /* 600 + 500 > 1000: still */
	trs__budget_give(&r, 300);
	CHECK(granted_within(&t, 100)); /* 300 + 500: granted */
	pthread_join(th, NULL);
	CHECK(trs__budget_used(&r) == 800);
	trs__budget_give(&r, 800);
	CHECK(trs__budget_used(&r) == 0);
	trs__budget_destroy(&r);
}

TEST(a_request_larger_than_the_budget_is_granted_alone)
{
	trs__budget r;
	trs__budget_init(&r, 1000);
	CHECK(trs__budget_take(&r, 10, 1) == 0);
	taker t = {&r, 5000, 0};
	pthread_t th;
	pthread_create(&th, NULL, take_waiting, &t);
	usleep(150000);
	CHECK(!atomic_load(&t.granted)); /* something is held: it waits */
	trs__budget_give(&r, 10);
	CHECK(granted_within(&t, 100)); /* alone: granted, or one huge object would never go */
	pthread_join(th, NULL);
	CHECK(trs__budget_take(&r, 1, 0) == -1); /* and nothing beside it */
	trs__budget_give(&r, 5000);
	CHECK(trs__budget_used(&r) == 0);
	trs__budget_destroy(&r);
}

#define TAKERS 8
#define ROUNDS 400
#define LIMIT 10000

typedef struct worker {
	trs__budget *r;
	unsigned int seed;
	int over;                  /* the budget was seen above its limit */
} worker;

static void *take_and_give(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t n = 1 + (uint64_t)rand_r(&w->seed) % (LIMIT / 2);
		trs__budget_take(w->r, n, 1);
		if (trs__budget_used(w->r) > LIMIT)
			w->over = 1;
		if (i % 16 == 0)
			usleep(100);
		trs__budget_give(w->r, n);
	}
	return NULL;
}

TEST(concurrent_takers_never_hold_more_than_the_limit_together)
{
	trs__budget r;
	trs__budget_init(&r, LIMIT);
	worker w[TAKERS];
	pthread_t th[TAKERS];
	for (int i = 0; i < TAKERS; i++) {
		w[i] = (worker){&r, (unsigned int)(i * 7919 + 1), 0};
		pthread_create(&th[i], NULL, take_and_give, &w[i]);
	}
	int over = 0;
	for (int i = 0; i < TAKERS; i++) {
		pthread_join(th[i], NULL);
		over |= w[i].over;
	}
	CHECK(!over);
	CHECK(trs__budget_used(&r) == 0); /* everything taken came back: no one is left waiting */
	trs__budget_destroy(&r);
}

int main(void)
{
	RUN(grants_within_the_limit_and_refuses_beyond_it_without_waiting);
	RUN(a_taker_waits_until_enough_comes_back);
	RUN(a_request_larger_than_the_budget_is_granted_alone);
	RUN(concurrent_takers_never_hold_more_than_the_limit_together);
	return harness_done();
}
