/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A memory budget (lib/core/budget.c): bytes are taken before they are allocated
 * and given back when freed, and never more than the limit is held at once.
 * A request larger than the whole budget is granted alone, when nothing
 * else is held, so that one huge object still goes. Any number of threads
 * may take and give; a taker that waits is woken when bytes come back.
 *
 * A budget can be shared by several runs (the archives in flight of one
 * trs_serve): each run takes through its own account, and the budget also
 * counts the writer threads of all runs. Sharing keeps three promises
 * (docs/architecture.md, "One budget for the archives in flight"):
 *
 * - the totals never pass the limits: bytes held by all accounts together
 *   stay within the limit (or are one request granted alone), writers
 *   within the writer count;
 * - every member account is sure of a floor (bytes and writers): a join
 *   waits until the floor is free, and no other account borrows it after.
 *   A take that fits the account's own floor never waits for another
 *   account, so a run waits only for what it holds itself, as it did with
 *   a budget of its own;
 * - what no floor keeps is lent to whoever asks, without waiting: one run
 *   alone can use the whole budget. While an account waits to join (or a
 *   request waits to be granted alone), nobody borrows, so what was lent
 *   comes back as the borrowers' work ends and the newcomer is not starved.
 */
#ifndef TRS_BUDGET_H
#define TRS_BUDGET_H

#include "util.h"

#include <pthread.h>

typedef struct trs__budget {
	pthread_mutex_t mu;
	pthread_cond_t freed;      /* bytes or writers were given back, or a gate lifted */
	unsigned int waiters;
	uint64_t limit;
	uint64_t used;
	uint64_t peak;             /* the most held at once (for tests, logs and benchmarks) */

	/* Sharing between accounts (trs__budget_share): */
	uint64_t floor;            /* bytes each member is sure of */
	uint64_t unheld_floors;    /* over the members: what of its floor each does not hold */
	unsigned int members;
	unsigned int joining;      /* accounts waiting to join: nobody borrows meanwhile */
	unsigned int alone_waiting; /* requests above the limit waiting for an empty budget: same */
	unsigned int writers;      /* writer threads of all members together; 0: not counted */
	unsigned int writers_used;
	unsigned int writer_floor; /* writers each member is sure of */
	unsigned int writers_peak;
} trs__budget;

/* What one run holds of a budget (trs__budget_join). */
typedef struct trs__budget_account {
	trs__budget *pool;
	uint64_t held;
	unsigned int writers;      /* writer threads it holds (its floor, then borrowed ones) */
} trs__budget_account;

void trs__budget_init(trs__budget *b, uint64_t limit);
/* Make `b` shared: each member is sure of `floor` bytes and `writer_floor` of
 * `writers` writer threads (writers 0: threads are not counted). */
void trs__budget_share(trs__budget *b, uint64_t floor, unsigned int writers, unsigned int writer_floor);
void trs__budget_destroy(trs__budget *b);
/* Take n bytes and return 0. Without `wait`, -1 (nothing taken) when they
 * are not free now; with it, block until they are. */
int trs__budget_take(trs__budget *b, uint64_t n, bool wait);
void trs__budget_give(trs__budget *b, uint64_t n);
/* The bytes held now, and the most held at once (for tests and logs). */
uint64_t trs__budget_used(trs__budget *b);
uint64_t trs__budget_peak(trs__budget *b);
/* The most writers held at once. */
unsigned int trs__budget_writers_peak(trs__budget *b);

/* Join `b` as a member: wait until its floor is free (bytes and writers),
 * then hold the writer floor. 0 with the writers granted in a->writers, or
 * TRS_ECANCELED when `cancel` is raised meanwhile (nothing held). */
int trs__budget_join(trs__budget *b, trs__budget_account *a, const volatile int *cancel);
/* Leave: give back the account's writers (its bytes must be given back first). */
void trs__budget_leave(trs__budget_account *a);
/* trs__budget_take and trs__budget_give through an account. */
int trs__account_take(trs__budget_account *a, uint64_t n, bool wait);
void trs__account_give(trs__budget_account *a, uint64_t n);
/* One more writer thread beyond the floor, if one is free and nobody waits to join. */
bool trs__account_borrow_writer(trs__budget_account *a);
/* Give back a borrowed writer (or the unused part of the floor). */
void trs__account_return_writer(trs__budget_account *a);
/* Should a borrowed writer go back now (an account waits to join)? */
bool trs__account_writer_wanted(trs__budget_account *a);

#endif
