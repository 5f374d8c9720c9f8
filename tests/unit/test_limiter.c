/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Adaptive concurrency (lib/aws/limiter.c), driven without threads or
 * clocks: a simulated client keeps as many requests in flight as the limit
 * allows and its writers want, and answers them in the order they were
 * sent, so the requests in flight at any moment are one round trip. The
 * limiter reads no clock, so these are the same on any machine.
 *
 * What must hold: a steady 5% of SlowDowns does not pull the limit down; a
 * burst of throttles within one round trip is one decrease; throttling
 * that goes on drives the limit to 1; against a server that refuses above
 * a fixed number per round trip the limit settles near that number; a
 * failing server (500 InternalError, 503 ServiceUnavailable) is retried
 * but is no throttle to the limiter.
 */
#include "harness.h"
#include "aws/limiter.h"

#include <stdlib.h>

#define CEILING 64

/* Requests in flight, oldest first. */
typedef struct client {
	trs__aws_limiter *l;
	uint64_t tickets[1024];
	unsigned int head, count;
	unsigned int writers; /* requests the client would have in flight without a limit */
} client;

static void limiter_open(trs__aws_limiter *l, const char *mode)
{
	if (mode)
		setenv("AWS_RETRY_MODE", mode, 1);
	else
		unsetenv("AWS_RETRY_MODE");
	trs__aws_limiter_init(l, NULL, "S3", CEILING);
	unsetenv("AWS_RETRY_MODE");
}

/* Send while the limit and the writers allow; how many were sent. */
static unsigned int client_send(client *c)
{
	unsigned int sent = 0;
	trs_error err = TRS_ERROR_INIT;
	while (c->count < c->writers && (double)c->count + 1 <= trs__aws_limiter_limit(c->l)) {
		uint64_t t = 0;
		if (trs__aws_limiter_acquire(c->l, &t, &err) < 0)
			break;
		c->tickets[(c->head + c->count++) % 1024] = t;
		sent++;
	}
	return sent;
}

/* The oldest request in flight gets its answer. */
static void client_answer(client *c, trs__aws_answer a)
{
	uint64_t t = c->tickets[c->head];
	c->head = (c->head + 1) % 1024;
	c->count--;
	trs__aws_limiter_release(c->l, t, a);
}

/* `answers` answers, every `every`-th of them a throttle (0: none), with
 * the client refilling after each; the lowest limit seen once `warmup`
 * answers are past. */
static double run_steady(client *c, unsigned int answers, unsigned int every, unsigned int warmup)
{
	double lowest = CEILING;
	client_send(c);
	for (unsigned int i = 1; i <= answers; i++) {
		client_answer(c, every && i % every == 0 ? TRS__AWS_ANSWER_THROTTLED : TRS__AWS_ANSWER_OK);
		client_send(c);
		double v = trs__aws_limiter_limit(c->l);
		if (i > warmup && v < lowest)
			lowest = v;
	}
	return lowest;
}

TEST(a_steady_five_percent_of_slowdowns_keeps_the_limit_near_the_ceiling)
{
	/* The writers want the whole ceiling, so the limit is what bounds them:
	 * every round trip holds about three SlowDowns. */
	trs__aws_limiter l;
	limiter_open(&l, NULL);
	client c = {.l = &l, .writers = CEILING};
	double lowest = run_steady(&c, 4000, 20, 0);
	CHECK(l.throttled == 200);
	CHECK(lowest >= CEILING * 3 / 4.0); /* halving on each would have pinned it at 1 or 2 */
	CHECK(trs__aws_limiter_limit(&l) >= CEILING * 3 / 4.0);
	CHECK(l.decreases >= 40); /* it did react, about once per round trip */
	trs__aws_limiter_destroy(&l);

	/* Fewer writers than the ceiling (trs process: --max-inflight 32 under a
	 * ceiling of 64): the limit stays above what they use. */
	limiter_open(&l, NULL);
	client half = {.l = &l, .writers = CEILING / 2};
	CHECK(run_steady(&half, 4000, 20, 0) >= CEILING / 2);
	trs__aws_limiter_destroy(&l);
}

TEST(a_burst_of_throttles_within_one_round_trip_is_one_decrease)
{
	trs__aws_limiter l;
	limiter_open(&l, NULL);
	client c = {.l = &l, .writers = 32};
	CHECK(client_send(&c) == 32);
	for (int i = 0; i < 32; i++)
		client_answer(&c, TRS__AWS_ANSWER_THROTTLED);
	/* All 32 were sent before the first decrease: one event. */
	CHECK(l.throttled == 32 && l.decreases == 1);
	double after_first = trs__aws_limiter_limit(&l);
	CHECK(after_first < CEILING);
	/* The next round trip is refused too: a second decrease, now by half
	 * the throttled share of the answers, most of them throttles. */
	unsigned int sent = client_send(&c);
	CHECK(sent > 0);
	for (unsigned int i = 0; i < sent; i++)
		client_answer(&c, TRS__AWS_ANSWER_THROTTLED);
	CHECK(l.decreases == 2);
	CHECK(trs__aws_limiter_limit(&l) < after_first * 0.75);
	trs__aws_limiter_destroy(&l);
}

TEST(throttling_that_goes_on_drives_the_limit_to_one)
{
	trs__aws_limiter l;
	limiter_open(&l, NULL);
	client c = {.l = &l, .writers = CEILING};
	/* 40 round trips of nothing but throttles. */
	for (int round = 0; round < 40; round++) {
		unsigned int sent = client_send(&c);
		CHECK(sent > 0);
		for (unsigned int i = 0; i < sent; i++)
			client_answer(&c, TRS__AWS_ANSWER_THROTTLED);
	}
	CHECK(trs__aws_limiter_limit(&l) == 1 && l.lowest == 1);
	CHECK(l.decreases >= 8 && l.decreases <= 40); /* one per round trip at most */
	/* One request at a time, each throttled: each is its own round trip. */
	uint64_t before = l.decreases;
	for (int i = 0; i < 3; i++) {
		CHECK(client_send(&c) == 1);
		client_answer(&c, TRS__AWS_ANSWER_THROTTLED);
	}
	CHECK(l.decreases == before + 3 && trs__aws_limiter_limit(&l) == 1);
	/* Successes bring it back, up to 1/8 each: not while the throttles
	 * still weigh half of the recent answers (about the first 22), then
	 * the ceiling within a few hundred. */
	int successes = 0;
	while (trs__aws_limiter_limit(&l) < CEILING && successes < 10000) {
		client_send(&c);
		client_answer(&c, TRS__AWS_ANSWER_OK);
		if (++successes == 20)
			CHECK(trs__aws_limiter_limit(&l) == 1);
	}
	CHECK(successes >= 504 && successes <= 700);
	CHECK(l.lowest == 1);
	trs__aws_limiter_destroy(&l);
}

TEST(against_a_fixed_rate_the_limit_settles_near_it)
{
	/* A server that accepts RATE requests per round trip and refuses the
	 * rest (S3's per-prefix request rate; tests/integration/test_throttling.py
	 * does it per second). */
	enum { RATE = 8, ROUNDS = 300 };
	trs__aws_limiter l;
	limiter_open(&l, NULL);
	client c = {.l = &l, .writers = CEILING};
	unsigned int ok = 0, refused = 0;
	double low = CEILING, high = 0;
	for (int round = 0; round < ROUNDS; round++) {
		unsigned int sent = client_send(&c);
		for (unsigned int i = 0; i < sent; i++) {
			bool accepted = i < RATE;
			client_answer(&c, accepted ? TRS__AWS_ANSWER_OK : TRS__AWS_ANSWER_THROTTLED);
			if (round >= ROUNDS / 2) {
				ok += accepted;
				refused += !accepted;
			}
		}
		double v = trs__aws_limiter_limit(&l);
		if (round >= ROUNDS / 2) {
			low = v < low ? v : low;
			high = v > high ? v : high;
		}
	}
	/* Once settled: it keeps the rate (no collapse below it) and sends at
	 * most a third more than the server takes. */
	CHECK(ok >= (ROUNDS / 2) * RATE * 9 / 10);
	CHECK(refused * 3 < ok);
	CHECK(low >= RATE * 0.75 && high <= RATE * 1.5 + 1);
	trs__aws_limiter_destroy(&l);
}

TEST(a_failing_server_is_retried_but_is_no_throttle)
{
	/* The classification: throttles are 503 SlowDown, 429 and the throttling
	 * codes; a failing server's 500 and 503 ServiceUnavailable are not. */
	CHECK(trs__aws_limiter_answer(503, "SlowDown", false) == TRS__AWS_ANSWER_THROTTLED);
	CHECK(trs__aws_limiter_answer(429, "TooManyRequests", false) == TRS__AWS_ANSWER_THROTTLED);
	CHECK(trs__aws_limiter_answer(400, "ThrottlingException", false) == TRS__AWS_ANSWER_THROTTLED);
	CHECK(trs__aws_limiter_answer(500, "InternalError", false) == TRS__AWS_ANSWER_OTHER);
	CHECK(trs__aws_limiter_answer(503, "ServiceUnavailable", false) == TRS__AWS_ANSWER_OTHER);
	CHECK(trs__aws_limiter_answer(200, "", true) == TRS__AWS_ANSWER_OK);
	/* ... and the retry policy still retries them. */
	CHECK(trs__aws_classify(500, "InternalError", false) == TRS__AWS_RETRY);
	CHECK(trs__aws_classify(503, "ServiceUnavailable", false) == TRS__AWS_RETRY);

	/* Every answer a 500, round trip after round trip: the limit stays. */
	trs__aws_limiter l;
	limiter_open(&l, NULL);
	client c = {.l = &l, .writers = CEILING};
	for (int round = 0; round < 20; round++) {
		unsigned int sent = client_send(&c);
		CHECK(sent == CEILING);
		for (unsigned int i = 0; i < sent; i++)
			client_answer(&c, trs__aws_limiter_answer(500, "InternalError", false));
	}
	CHECK(l.decreases == 0 && l.throttled == 0 && trs__aws_limiter_limit(&l) == CEILING);
	/* Connection errors are no signal either: one SlowDown among them and
	 * the 500s before is a small share, a small decrease. */
	client_send(&c);
	for (unsigned int i = 0; i < CEILING; i++)
		client_answer(&c, i == 0 ? TRS__AWS_ANSWER_THROTTLED : TRS__AWS_ANSWER_NONE);
	CHECK(l.decreases == 1 && trs__aws_limiter_limit(&l) > CEILING * 0.9);
	trs__aws_limiter_destroy(&l);
}

TEST(other_retry_modes_count_throttles_at_a_fixed_limit)
{
	const char *modes[] = {"legacy", "standard"};
	for (int m = 0; m < 2; m++) {
		trs__aws_limiter l;
		limiter_open(&l, modes[m]);
		client c = {.l = &l, .writers = CEILING};
		for (int round = 0; round < 10; round++) {
			unsigned int sent = client_send(&c);
			CHECK(sent == CEILING);
			for (unsigned int i = 0; i < sent; i++)
				client_answer(&c, TRS__AWS_ANSWER_THROTTLED);
		}
		CHECK(l.throttled == 10 * CEILING && l.decreases == 0);
		CHECK(trs__aws_limiter_limit(&l) == CEILING && l.lowest == CEILING);
		trs__aws_limiter_destroy(&l);
	}
}

int main(void)
{
	RUN(a_steady_five_percent_of_slowdowns_keeps_the_limit_near_the_ceiling);
	RUN(a_burst_of_throttles_within_one_round_trip_is_one_decrease);
	RUN(throttling_that_goes_on_drives_the_limit_to_one);
	RUN(against_a_fixed_rate_the_limit_settles_near_it);
	RUN(a_failing_server_is_retried_but_is_no_throttle);
	RUN(other_retry_modes_count_throttles_at_a_fixed_limit);
	return harness_done();
}
