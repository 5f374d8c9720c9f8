/*
 * Adaptive concurrency for one client's requests (AIMD), as the AWS SDKs'
 * adaptive retry mode and TCP's congestion window do it:
 *
 * - every request takes a slot before it is sent and gives it back after;
 *   at most floor(limit) are in flight;
 * - a throttling answer (503 SlowDown, 429, ...) halves the limit (at most
 *   once per `cooldown`, so one burst of refusals is one decrease), never
 *   below 1;
 * - each success grows it by 1/(8 limit): one more request in flight per
 *   eight windows of successes, up to the ceiling (twice the context's
 *   max_inflight, room for multipart parts beside the writers).
 *
 * Only in the adaptive retry mode (AWS_RETRY_MODE, the default here).
 * The log says when the limit drops and when it is back at the ceiling
 * (once per change, not per request).
 */
#ifndef TRS_AWS_LIMITER_H
#define TRS_AWS_LIMITER_H

#include "retry.h"

typedef struct trs__aws_limiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const trs_ctx *ctx;
	const char *service;
	bool enabled;          /* false: a fixed ceiling (AWS_RETRY_MODE legacy or standard) */
	double limit;
	double ceiling;
	double cooldown;       /* seconds between two decreases */
	double last_decrease;
	unsigned int in_flight;
	bool reduced;          /* below the ceiling since the last log */
	uint64_t decreases;    /* halvings */
	uint64_t throttled;    /* throttling answers seen */
	double lowest;
} trs__aws_limiter;

void trs__aws_limiter_init(trs__aws_limiter *l, const trs_ctx *ctx, const char *service, unsigned int ceiling);
void trs__aws_limiter_destroy(trs__aws_limiter *l);
/* Wait for a slot; TRS_ECANCELED when the context is canceled meanwhile. */
int trs__aws_limiter_acquire(trs__aws_limiter *l, trs_error *err);
/* Give the slot back with the request's outcome. */
void trs__aws_limiter_release(trs__aws_limiter *l, bool throttled, bool success);
/* The current limit (for logs, metrics and tests). */
double trs__aws_limiter_limit(trs__aws_limiter *l);

#endif
