/* SPDX-License-Identifier: Apache-2.0 */
/* Adaptive concurrency for one client's requests (see lib/aws/limiter.h). */
#include "limiter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_STEP_NS 50000000L
/* Growth per success. In proportion to what succeeds, not one per round
 * trip: a round trip of L answers with a few percent of random SlowDowns
 * grows the limit by about L/8 and cuts it by L * share / 2, so a steady
 * share of up to about a tenth leaves it near the ceiling, and a limit cut
 * by a burst is back in a few dozen round trips whatever its size. */
#define GROWTH_PER_SUCCESS 0.125
/* ... damped by the throttled share, to none once half the recent answers
 * are throttles: after a server has refused everything for a while (a rate
 * limit's window is spent), the limit waits for successes to outweigh those
 * refusals instead of climbing straight back into them. Against a fixed
 * rate the two settle where about 15% of the answers are refusals
 * ((1 - s)(1 - 2s) / 8 = s / 2). */
#define GROWTH_STOPS_AT 0.5
/* The throttled share is a moving average over about this many answers:
 * a window's worth at the usual limits, so one decision does not rest on
 * the single answer that triggered it. */
#define SHARE_ANSWERS 32.0
/* The log reports a cut once the limit is below this part of the ceiling,
 * then each halving from the level it reported. The ceiling is twice
 * max_inflight, which bounds the writers' own requests: above half of it
 * the cut slows none of them, and a warning would be noise. */
#define LOG_BELOW 0.5

void trs__aws_limiter_init(trs__aws_limiter *l, const trs_ctx *ctx, const char *service, unsigned int ceiling)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->ctx = ctx;
	l->service = service;
	l->ceiling = l->limit = l->lowest = ceiling ? (double)ceiling : 1.0;
	l->enabled = trs__aws_retry_mode_from_env() == TRS__AWS_MODE_ADAPTIVE;
}

void trs__aws_limiter_destroy(trs__aws_limiter *l)
{
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
}

int trs__aws_limiter_acquire(trs__aws_limiter *l, uint64_t *ticket, trs_error *err)
{
	pthread_mutex_lock(&l->mu);
	while ((double)l->in_flight + 1 > (l->limit < 1 ? 1 : l->limit)) {
		if (trs__canceled(l->ctx)) {
			pthread_mutex_unlock(&l->mu);
			return trs__error_set(err, TRS_ECANCELED, "canceled while waiting for a request slot");
		}
		trs__cond_wait_ns(&l->cv, &l->mu, WAIT_STEP_NS);
	}
	l->in_flight++;
	*ticket = l->next_ticket++;
	pthread_mutex_unlock(&l->mu);
	return 0;
}

trs__aws_answer trs__aws_limiter_answer(long status, const char *aws_code, bool success)
{
	if (success)
		return TRS__AWS_ANSWER_OK;
	return trs__aws_throttled(status, aws_code) ? TRS__AWS_ANSWER_THROTTLED : TRS__AWS_ANSWER_OTHER;
}

static void log_limit(const trs__aws_limiter *l, trs_log_level level, const char *message, double limit)
{
	char v[32], c[32];
	snprintf(v, sizeof(v), "%.0f", limit);
	snprintf(c, sizeof(c), "%.0f", l->ceiling);
	trs__log(l->ctx, level, message, "service", l->service, "requests_in_flight_limit", v, "ceiling", c,
		 NULL);
}

/* The first throttle of a request sent since the last decrease: one decrease
 * for this round trip. Returns whether the log should say so. */
static bool decrease(trs__aws_limiter *l)
{
	l->limit *= 1.0 - l->throttle_share / 2;
	if (l->limit < 1)
		l->limit = 1;
	l->recovery = l->next_ticket;
	l->decreases++;
	if (l->limit < l->lowest)
		l->lowest = l->limit;
	bool report = l->logged ? l->limit <= l->logged / 2 : l->limit < l->ceiling * LOG_BELOW;
	if (report)
		l->logged = l->limit;
	return report;
}

void trs__aws_limiter_release(trs__aws_limiter *l, uint64_t ticket, trs__aws_answer answer)
{
	const char *msg = NULL;
	trs_log_level level = TRS_LOG_WARN;
	double logged = 0;
	pthread_mutex_lock(&l->mu);
	l->in_flight--;
	if (answer == TRS__AWS_ANSWER_THROTTLED)
		l->throttled++;
	if (answer != TRS__AWS_ANSWER_NONE) {
		double sample = answer == TRS__AWS_ANSWER_THROTTLED ? 1.0 : 0.0;
		l->throttle_share += (sample - l->throttle_share) / SHARE_ANSWERS;
	}
	if (l->enabled && answer == TRS__AWS_ANSWER_THROTTLED && ticket >= l->recovery) {
		if (decrease(l)) {
			msg = "throttled: fewer requests in flight (cut by half the throttled share of answers; "
			      "grows back with successes)";
			logged = l->limit;
		}
	} else if (l->enabled && answer == TRS__AWS_ANSWER_OK && l->limit < l->ceiling) {
		double damping = 1.0 - l->throttle_share / GROWTH_STOPS_AT;
		if (damping > 0)
			l->limit += GROWTH_PER_SUCCESS * damping;
		if (l->limit >= l->ceiling) {
			l->limit = l->ceiling;
			if (l->logged) {
				l->logged = 0;
				msg = "requests in flight back at the ceiling";
				level = TRS_LOG_INFO;
				logged = l->limit;
			}
		}
	}
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (msg)
		log_limit(l, level, msg, logged);
}

double trs__aws_limiter_limit(trs__aws_limiter *l)
{
	pthread_mutex_lock(&l->mu);
	double v = l->limit;
	pthread_mutex_unlock(&l->mu);
	return v;
}
