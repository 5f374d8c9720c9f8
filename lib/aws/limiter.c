/* Adaptive concurrency (AIMD) for one client's requests (see lib/aws/limiter.h). */
#include "limiter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_COOLDOWN_S 0.1
#define WAIT_STEP_NS 50000000L
/* Windows of successes per additional request in flight: growing back slowly
 * keeps one burst of refusals from becoming a cycle of them. */
#define GROWTH_WINDOWS 8.0

void trs__aws_limiter_init(trs__aws_limiter *l, const trs_ctx *ctx, const char *service, unsigned int ceiling)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->ctx = ctx;
	l->service = service;
	l->ceiling = l->limit = l->lowest = ceiling ? (double)ceiling : 1.0;
	l->cooldown = DEFAULT_COOLDOWN_S;
	l->enabled = trs__aws_retry_mode_from_env() == TRS__AWS_MODE_ADAPTIVE;
}

void trs__aws_limiter_destroy(trs__aws_limiter *l)
{
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
}

int trs__aws_limiter_acquire(trs__aws_limiter *l, trs_error *err)
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
	pthread_mutex_unlock(&l->mu);
	return 0;
}

static void log_limit(const trs__aws_limiter *l, trs_log_level level, const char *message, double limit)
{
	char v[32], c[32];
	snprintf(v, sizeof(v), "%.0f", limit);
	snprintf(c, sizeof(c), "%.0f", l->ceiling);
	trs__log(l->ctx, level, message, "service", l->service, "requests_in_flight_limit", v, "ceiling", c,
		 NULL);
}

void trs__aws_limiter_release(trs__aws_limiter *l, bool throttled, bool success)
{
	const char *msg = NULL;
	trs_log_level level = TRS_LOG_WARN;
	double logged = 0;
	pthread_mutex_lock(&l->mu);
	l->in_flight--;
	if (throttled)
		l->throttled++;
	double now = trs__now();
	if (l->enabled && throttled && now - l->last_decrease >= l->cooldown) {
		double before = l->limit;
		l->limit = l->limit / 2 < 1 ? 1 : l->limit / 2;
		l->last_decrease = now;
		l->decreases++;
		if (l->limit < l->lowest)
			l->lowest = l->limit;
		/* Logged when it first drops, and again each time it halves to a new level. */
		if (!l->reduced || (int)before != (int)l->limit) {
			msg = "throttled: fewer requests in flight (halved; grows back by one per window of successes)";
			logged = l->limit;
		}
		l->reduced = true;
	} else if (l->enabled && success && l->limit < l->ceiling) {
		l->limit += 1.0 / (GROWTH_WINDOWS * l->limit);
		if (l->limit >= l->ceiling) {
			l->limit = l->ceiling;
			if (l->reduced) {
				l->reduced = false;
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
