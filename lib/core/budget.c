/* SPDX-License-Identifier: Apache-2.0 */
/* The memory budget, alone or shared by the archives in flight (see lib/core/budget.h). */
#include "budget.h"
#include "ctx.h"

#define JOIN_WAIT_STEP_NS 50000000L /* a join looks at its cancel flag this often */

void trs__budget_init(trs__budget *b, uint64_t limit)
{
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->freed, NULL);
	b->waiters = 0;
	b->limit = limit;
	b->used = b->peak = 0;
	b->floor = b->unheld_floors = 0;
	b->members = b->joining = b->alone_waiting = 0;
	b->writers = b->writers_used = b->writer_floor = b->writers_peak = 0;
}

void trs__budget_share(trs__budget *b, uint64_t floor, unsigned int writers, unsigned int writer_floor)
{
	b->floor = floor;
	b->writers = writers;
	b->writer_floor = writers ? writer_floor : 0;
}

void trs__budget_destroy(trs__budget *b)
{
	pthread_cond_destroy(&b->freed);
	pthread_mutex_destroy(&b->mu);
}

/* What of the floor a member holding `held` bytes does not hold. */
static uint64_t unheld(const trs__budget *b, uint64_t held)
{
	return held < b->floor ? b->floor - held : 0;
}

/* Nobody borrows while someone waits for what borrowers hold. */
static bool gated(const trs__budget *b)
{
	return b->joining || b->alone_waiting;
}

/*
 * Under the lock: may `a` (NULL: a taker without an account) take n bytes
 * now? Never past the limit. Within the account's floor, always: that much
 * is kept free for it. Beyond, only from what no other member's floor keeps,
 * and not while the budget is gated.
 */
static bool fits(const trs__budget *b, const trs__budget_account *a, uint64_t n)
{
	if (b->used + n > b->limit)
		return false;
	uint64_t held = a ? a->held : 0;
	if (a && held + n <= b->floor)
		return true;
	uint64_t others = b->unheld_floors - (a ? unheld(b, held) : 0);
	return !gated(b) && b->used + n + others <= b->limit;
}

static void charge(trs__budget *b, trs__budget_account *a, uint64_t n)
{
	if (a) {
		b->unheld_floors -= unheld(b, a->held) - unheld(b, a->held + n);
		a->held += n;
	}
	b->used += n;
	if (b->used > b->peak)
		b->peak = b->used;
}

static void wake(trs__budget *b)
{
	if (b->waiters)
		pthread_cond_broadcast(&b->freed);
}

static int take(trs__budget *b, trs__budget_account *a, uint64_t n, bool wait)
{
	pthread_mutex_lock(&b->mu);
	bool alone = false;
	/* Alone (nothing held by anyone), anything goes: one huge object still goes. */
	while (!fits(b, a, n) && !(wait && b->used == 0)) {
		if (!wait) {
			pthread_mutex_unlock(&b->mu);
			return -1;
		}
		if (!alone && n > b->limit) {
			alone = true; /* only an empty budget grants it: stop the lending that keeps it busy */
			b->alone_waiting++;
		}
		b->waiters++;
		pthread_cond_wait(&b->freed, &b->mu);
		b->waiters--;
	}
	if (alone) {
		b->alone_waiting--;
		wake(b);
	}
	charge(b, a, n);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static void give(trs__budget *b, trs__budget_account *a, uint64_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&b->mu);
	if (a) {
		b->unheld_floors += unheld(b, a->held - n) - unheld(b, a->held);
		a->held -= n;
	}
	b->used -= n;
	wake(b);
	pthread_mutex_unlock(&b->mu);
}

int trs__budget_take(trs__budget *b, uint64_t n, bool wait)
{
	return take(b, NULL, n, wait);
}

void trs__budget_give(trs__budget *b, uint64_t n)
{
	give(b, NULL, n);
}

uint64_t trs__budget_used(trs__budget *b)
{
	pthread_mutex_lock(&b->mu);
	uint64_t u = b->used;
	pthread_mutex_unlock(&b->mu);
	return u;
}

uint64_t trs__budget_peak(trs__budget *b)
{
	pthread_mutex_lock(&b->mu);
	uint64_t p = b->peak;
	pthread_mutex_unlock(&b->mu);
	return p;
}

unsigned int trs__budget_writers_peak(trs__budget *b)
{
	pthread_mutex_lock(&b->mu);
	unsigned int p = b->writers_peak;
	pthread_mutex_unlock(&b->mu);
	return p;
}

/* Under the lock: is a new member's floor free? What members hold beyond
 * their floors comes back, and is not lent again, while this is false. */
static bool floor_free(const trs__budget *b)
{
	return !b->alone_waiting && b->used + b->unheld_floors + b->floor <= b->limit &&
	       (!b->writers || b->writers_used + b->writer_floor <= b->writers);
}

static void hold_writers(trs__budget *b, trs__budget_account *a, unsigned int n)
{
	b->writers_used += n;
	a->writers += n;
	if (b->writers_used > b->writers_peak)
		b->writers_peak = b->writers_used;
}

int trs__budget_join(trs__budget *b, trs__budget_account *a, const volatile int *cancel)
{
	*a = (trs__budget_account){.pool = b};
	pthread_mutex_lock(&b->mu);
	b->joining++;
	while (!floor_free(b)) {
		if (trs__flag_raised(cancel)) {
			b->joining--;
			wake(b);
			pthread_mutex_unlock(&b->mu);
			return TRS_ECANCELED;
		}
		b->waiters++;
		trs__cond_wait_ns(&b->freed, &b->mu, JOIN_WAIT_STEP_NS);
		b->waiters--;
	}
	b->joining--;
	b->members++;
	b->unheld_floors += b->floor;
	hold_writers(b, a, b->writer_floor);
	wake(b); /* the gate may be lifted: borrowers go on */
	pthread_mutex_unlock(&b->mu);
	return 0;
}

void trs__budget_leave(trs__budget_account *a)
{
	trs__budget *b = a->pool;
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->unheld_floors -= unheld(b, a->held);
	b->members--;
	b->writers_used -= a->writers;
	a->writers = 0;
	wake(b);
	pthread_mutex_unlock(&b->mu);
	a->pool = NULL;
}

int trs__account_take(trs__budget_account *a, uint64_t n, bool wait)
{
	return take(a->pool, a, n, wait);
}

void trs__account_give(trs__budget_account *a, uint64_t n)
{
	give(a->pool, a, n);
}

bool trs__account_borrow_writer(trs__budget_account *a)
{
	trs__budget *b = a->pool;
	pthread_mutex_lock(&b->mu);
	bool ok = b->writers && !gated(b) && b->writers_used < b->writers;
	if (ok)
		hold_writers(b, a, 1);
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void trs__account_return_writer(trs__budget_account *a)
{
	trs__budget *b = a->pool;
	pthread_mutex_lock(&b->mu);
	if (a->writers) {
		a->writers--;
		b->writers_used--;
		wake(b);
	}
	pthread_mutex_unlock(&b->mu);
}

bool trs__account_writer_wanted(trs__budget_account *a)
{
	trs__budget *b = a->pool;
	pthread_mutex_lock(&b->mu);
	bool wanted = b->joining != 0;
	pthread_mutex_unlock(&b->mu);
	return wanted;
}
