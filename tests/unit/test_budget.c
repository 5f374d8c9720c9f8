/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The restore's memory budget (trs__run_budget_take / trs__run_budget_give):
 * grants within the limit, a taker that waits until bytes come back, a
 * request larger than the whole budget granted only when nothing is held,
 * and many concurrent takers never above the limit together. Shared by
 * accounts (the archives in flight of trs_serve): one account alone borrows
 * everything, a newcomer's floor comes back to it and is not lent again,
 * writers likewise, and members together never pass the limits.
 */
#include "harness.h"
#include "core/budget.h"

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

/* Join from another thread (it may wait); `joined` says when it did. */
typedef struct joiner {
	trs__budget *b;
	trs__budget_account a;
	atomic_int joined;
} joiner;

static void *join_later(void *arg)
{
	joiner *j = arg;
	trs__budget_join(j->b, &j->a, NULL);
	atomic_store(&j->joined, 1);
	return NULL;
}

TEST(one_account_borrows_everything_and_a_newcomer_gets_its_floor_back)
{
	trs__budget b;
	trs__budget_init(&b, 1000);
	trs__budget_share(&b, 400, 4, 2);
	trs__budget_account big;
	CHECK(trs__budget_join(&b, &big, NULL) == 0 && big.writers == 2);
	/* Alone: the whole budget, and every writer. */
	CHECK(trs__account_take(&big, 900, false) == 0);
	CHECK(trs__account_borrow_writer(&big) && trs__account_borrow_writer(&big));
	CHECK(!trs__account_borrow_writer(&big)); /* all 4 held */
	CHECK(trs__account_take(&big, 101, false) == -1); /* never past the limit */

	joiner small = {.b = &b};
	pthread_t t;
	pthread_create(&t, NULL, join_later, &small);
	for (int i = 0; i < 5000 && !trs__account_writer_wanted(&big); i++)
		usleep(1000);
	CHECK(trs__account_writer_wanted(&big)); /* borrowed writers are asked back */
	CHECK(!atomic_load(&small.joined));      /* its 400 bytes and 2 writers are not free */
	/* While it waits, nothing more is lent: bytes given back stay free for it. */
	trs__account_give(&big, 400);
	CHECK(trs__account_take(&big, 100, false) == -1);
	trs__account_return_writer(&big);
	CHECK(!trs__account_borrow_writer(&big));
	trs__account_return_writer(&big);
	pthread_join(t, NULL);
	CHECK(small.joined && small.a.writers == 2);
	/* Its floor is its own: the big one borrows only what is left beside it (100), the
	 * small one takes its floor without waiting. */
	CHECK(trs__account_take(&big, 101, false) == -1);
	CHECK(trs__account_take(&big, 100, false) == 0);
	CHECK(trs__account_take(&small.a, 400, false) == 0);
	CHECK(trs__budget_used(&b) == 1000 && trs__budget_peak(&b) == 1000);
	trs__account_give(&small.a, 400);
	trs__account_give(&big, 600);
	trs__budget_leave(&small.a);
	trs__budget_leave(&big);
	CHECK(trs__budget_used(&b) == 0 && trs__budget_writers_peak(&b) == 4);
	trs__budget_destroy(&b);
}

TEST(a_take_within_the_floor_does_not_wait_for_another_account)
{
	trs__budget b;
	trs__budget_init(&b, 1000);
	trs__budget_share(&b, 300, 0, 0);
	trs__budget_account x, y;
	CHECK(trs__budget_join(&b, &x, NULL) == 0 && trs__budget_join(&b, &y, NULL) == 0);
	/* x borrows all that y's floor does not keep, and no more. */
	CHECK(trs__account_take(&x, 700, false) == 0);
	CHECK(trs__account_take(&x, 1, false) == -1);
	/* y's floor is there whatever x holds. */
	CHECK(trs__account_take(&y, 200, false) == 0 && trs__account_take(&y, 100, false) == 0);
	CHECK(trs__account_take(&y, 1, false) == -1);
	trs__account_give(&y, 300);
	trs__account_give(&x, 700);
	trs__budget_leave(&x);
	trs__budget_leave(&y);
	trs__budget_destroy(&b);
}

#define MEMBERS 4

typedef struct member {
	trs__budget *b;
	unsigned int seed;
	int over;
} member;

static void *member_takes_and_gives(void *arg)
{
	member *m = arg;
	trs__budget_account a;
	trs__budget_join(m->b, &a, NULL);
	for (int i = 0; i < ROUNDS; i++) {
		/* Within the floor (a chunk, as the pipeline asks), holding up to three at once. */
		uint64_t n = 1 + (uint64_t)rand_r(&m->seed) % (LIMIT / MEMBERS / 3);
		trs__account_take(&a, n, true);
		uint64_t n2 = 1 + (uint64_t)rand_r(&m->seed) % (LIMIT / MEMBERS / 3);
		trs__account_take(&a, n2, true);
		if (trs__budget_used(m->b) > LIMIT)
			m->over = 1;
		if (i % 16 == 0)
			usleep(100);
		trs__account_give(&a, n + n2);
	}
	trs__budget_leave(&a);
	return NULL;
}

TEST(members_together_never_hold_more_than_the_limit)
{
	trs__budget b;
	trs__budget_init(&b, LIMIT);
	trs__budget_share(&b, LIMIT / MEMBERS, 0, 0);
	member m[MEMBERS];
	pthread_t th[MEMBERS];
	for (int i = 0; i < MEMBERS; i++) {
		m[i] = (member){&b, (unsigned int)(i * 104729 + 3), 0};
		pthread_create(&th[i], NULL, member_takes_and_gives, &m[i]);
	}
	int over = 0;
	for (int i = 0; i < MEMBERS; i++) {
		pthread_join(th[i], NULL);
		over |= m[i].over;
	}
	CHECK(!over);
	CHECK(trs__budget_peak(&b) <= LIMIT);
	CHECK(trs__budget_used(&b) == 0);
	trs__budget_destroy(&b);
}

int main(void)
{
	RUN(grants_within_the_limit_and_refuses_beyond_it_without_waiting);
	RUN(a_taker_waits_until_enough_comes_back);
	RUN(a_request_larger_than_the_budget_is_granted_alone);
	RUN(concurrent_takers_never_hold_more_than_the_limit_together);
	RUN(one_account_borrows_everything_and_a_newcomer_gets_its_floor_back);
	RUN(a_take_within_the_floor_does_not_wait_for_another_account);
	RUN(members_together_never_hold_more_than_the_limit);
	return harness_done();
}
