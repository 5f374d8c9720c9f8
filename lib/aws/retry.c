/* SPDX-License-Identifier: Apache-2.0 */
/* The retry policy shared by every AWS call (see lib/aws/retry.h). */
#include "retry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_ATTEMPTS_LIMIT 100

static const char *const throttling[] = {
	"SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
	"RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
	"ProvisionedThroughputExceededException", "PriorRequestNotComplete"};

bool trs__aws_throttled(long status, const char *aws_code)
{
	return status == 429 || trs__str_in(aws_code, throttling, TRS_ARRAY_SIZE(throttling));
}

trs__aws_verdict trs__aws_classify(long status, const char *aws_code, bool transport_retryable)
{
	static const char *const refresh[] = {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"};
	static const char *const transient[] = {"RequestTimeout", "InternalError", "ServiceUnavailable",
						"TransactionInProgressException", "IDPCommunicationError",
						"OperationAborted"};
	if (status == 0)
		return transport_retryable ? TRS__AWS_RETRY : TRS__AWS_FAIL;
	if (trs__str_in(aws_code, refresh, TRS_ARRAY_SIZE(refresh)))
		return TRS__AWS_REFRESH_AND_RETRY;
	if (trs__aws_throttled(status, aws_code) || trs__str_in(aws_code, transient, TRS_ARRAY_SIZE(transient)))
		return TRS__AWS_RETRY;
	if (status >= 500)
		return TRS__AWS_RETRY;
	return TRS__AWS_FAIL;
}

double trs__aws_backoff(unsigned int attempt, double base, double cap, double u01)
{
	double ceiling = base;
	for (unsigned int i = 0; i < attempt && ceiling < cap; i++)
		ceiling *= 2;
	if (ceiling > cap)
		ceiling = cap;
	if (u01 < 0)
		u01 = 0;
	if (u01 > 1)
		u01 = 1;
	return ceiling * u01;
}

double trs__aws_jitter(void)
{
	/* Per-thread state: no lock, and threads do not retry in lockstep. */
	static _Thread_local unsigned int seed;
	if (!seed)
		seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)&seed;
	return (double)rand_r(&seed) / (double)RAND_MAX;
}

static bool ctx_canceled(void *ud)
{
	return trs__canceled(ud);
}

int trs__aws_sleep(const trs_ctx *ctx, double seconds, trs_error *err)
{
	if (trs__sleep_until(seconds, ctx_canceled, (void *)ctx))
		return trs__error_set(err, TRS_ECANCELED, "canceled while waiting to retry");
	return 0;
}

unsigned int trs__aws_max_attempts(unsigned int configured, unsigned int fallback)
{
	if (configured)
		return configured;
	const char *v = getenv("AWS_MAX_ATTEMPTS");
	char *end = NULL;
	long n = v && *v ? strtol(v, &end, 10) : 0;
	if (end && !*end && n >= 1 && n <= MAX_ATTEMPTS_LIMIT)
		return (unsigned int)n;
	return fallback;
}

trs__aws_retry_mode trs__aws_retry_mode_from_env(void)
{
	const char *v = getenv("AWS_RETRY_MODE");
	if (v && strcasecmp(v, "legacy") == 0)
		return TRS__AWS_MODE_LEGACY;
	if (v && strcasecmp(v, "standard") == 0)
		return TRS__AWS_MODE_STANDARD;
	return TRS__AWS_MODE_ADAPTIVE;
}

/* ---- one request's retries ---- */

void trs__aws_retry_start(trs__aws_retry *r, const trs_ctx *ctx, trs__aws_budget *budget,
			  unsigned int max_attempts, double base_s, double cap_s)
{
	*r = (trs__aws_retry){ctx, budget, max_attempts ? max_attempts : 1, base_s, cap_s, 1, 0, false};
}

bool trs__aws_retry_allowed(trs__aws_retry *r, trs__aws_verdict verdict, bool costs, bool timeout)
{
	r->refresh = false;
	if (verdict == TRS__AWS_FAIL || r->attempt >= r->max_attempts)
		return false;
	if (costs && r->budget && !trs__aws_budget_take(r->budget, timeout, &r->cost))
		return false;
	r->refresh = verdict == TRS__AWS_REFRESH_AND_RETRY;
	return true;
}

int trs__aws_retry_wait(trs__aws_retry *r, trs_error *err)
{
	double delay = r->refresh ? 0 : trs__aws_backoff(r->attempt - 1, r->base_s, r->cap_s, trs__aws_jitter());
	r->attempt++;
	return trs__aws_sleep(r->ctx, delay, err);
}

void trs__aws_retry_succeeded(trs__aws_retry *r)
{
	if (r->budget)
		trs__aws_budget_success(r->budget, r->cost);
}

/* ---- the retry budget ---- */

void trs__aws_budget_init(trs__aws_budget *b, const trs_ctx *ctx, const char *service)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	b->ctx = ctx;
	b->service = service;
	b->tokens = b->capacity = TRS__AWS_BUDGET_TOKENS;
	b->enabled = trs__aws_retry_mode_from_env() != TRS__AWS_MODE_LEGACY;
}

void trs__aws_budget_destroy(trs__aws_budget *b)
{
	pthread_mutex_destroy(&b->mu);
}

bool trs__aws_budget_take(trs__aws_budget *b, bool timeout, int *cost)
{
	int c = timeout ? TRS__AWS_TIMEOUT_COST : TRS__AWS_RETRY_COST;
	pthread_mutex_lock(&b->mu);
	bool ok = !b->enabled || b->tokens >= c;
	bool log_empty = false;
	if (ok) {
		b->tokens -= c;
		b->retries++;
		*cost += c;
	} else {
		b->refused++;
		log_empty = !b->empty_logged;
		b->empty_logged = true;
	}
	pthread_mutex_unlock(&b->mu);
	if (log_empty)
		trs__log(b->ctx, TRS_LOG_WARN,
			 "retry budget spent: failures are final at once until requests succeed again (the service "
			 "is failing or throttling; nothing more is retried meanwhile)",
			 "service", b->service, NULL);
	return ok;
}

void trs__aws_budget_count(trs__aws_budget *b)
{
	pthread_mutex_lock(&b->mu);
	b->retries++;
	pthread_mutex_unlock(&b->mu);
}

void trs__aws_budget_success(trs__aws_budget *b, int cost)
{
	pthread_mutex_lock(&b->mu);
	b->tokens += cost ? cost : 1;
	if (b->tokens > b->capacity)
		b->tokens = b->capacity;
	/* Recovered: a tenth of the bucket back before the log says so (no flapping). */
	bool log_back = b->empty_logged && b->tokens >= b->capacity / 10;
	if (log_back)
		b->empty_logged = false;
	pthread_mutex_unlock(&b->mu);
	if (log_back)
		trs__log(b->ctx, TRS_LOG_INFO, "retry budget recovered; failed requests are retried again", "service",
			 b->service, NULL);
}
