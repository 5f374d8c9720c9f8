/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS call layer's shared pieces (lib/aws/): what S3, SQS and CloudWatch
 * requests all need and none owns.
 *
 * - retry policy: classification of an answer, full-jitter backoff, the
 *   cancellable sleep between attempts, the number of attempts
 *   (AWS_MAX_ATTEMPTS);
 * - a retry budget (the AWS SDKs' "standard" retry mode): a token bucket
 *   per client; each retry costs tokens, each success gives some back, and
 *   when the bucket is empty a failure is final at once, so an outage makes
 *   requests fail fast instead of multiplying the load;
 * - adaptive concurrency (lib/aws/limiter.c): requests in flight shrink,
 *   at most once per round trip, by half the share of throttling answers
 *   (503 SlowDown, 429) and grow back with successes;
 * - endpoint resolution from the environment (lib/aws/endpoint.c).
 */
#ifndef TRS_AWS_RETRY_H
#define TRS_AWS_RETRY_H

#include "internal.h"

#include <pthread.h>

typedef enum {
	TRS__AWS_FAIL = 0,
	TRS__AWS_RETRY,
	TRS__AWS_REFRESH_AND_RETRY,
} trs__aws_verdict;

/* status 0 is "no answer" (a transport error, retryable or not as curl said). */
trs__aws_verdict trs__aws_classify(long status, const char *aws_code, bool transport_retryable);
/* A throttling answer (SlowDown, Throttling, 429, ...): what adaptive concurrency reacts to.
 * A failing server (500 InternalError, 503 ServiceUnavailable) is not one: retried, costing the budget. */
bool trs__aws_throttled(long status, const char *aws_code);
/* Full jitter: u01 * min(cap, base * 2^attempt), attempt counting from 0. */
double trs__aws_backoff(unsigned int attempt, double base, double cap, double u01);
/* A uniform number in [0, 1] from per-thread state (threads do not retry in lockstep). */
double trs__aws_jitter(void);
/* Sleep `seconds`, waking early with TRS_ECANCELED when the context is canceled (trs__sleep_until). */
int trs__aws_sleep(const trs_ctx *ctx, double seconds, trs_error *err);
/* Tries per request: `configured` when nonzero, else AWS_MAX_ATTEMPTS (1..100), else `fallback`. */
unsigned int trs__aws_max_attempts(unsigned int configured, unsigned int fallback);

/* AWS_RETRY_MODE, as the AWS SDKs read it: "legacy" (retries bounded only by
 * the attempts), "standard" (and the retry budget), "adaptive" (and adaptive
 * concurrency where the client has it; the default). */
typedef enum { TRS__AWS_MODE_LEGACY, TRS__AWS_MODE_STANDARD, TRS__AWS_MODE_ADAPTIVE } trs__aws_retry_mode;
trs__aws_retry_mode trs__aws_retry_mode_from_env(void);

/* The retry budget, as the AWS SDKs' standard mode: 500 tokens, a retry
 * costs 5 (10 after a timeout), a success refunds what its retries cost, or
 * 1 when it needed none. */
#define TRS__AWS_BUDGET_TOKENS 500
#define TRS__AWS_RETRY_COST 5
#define TRS__AWS_TIMEOUT_COST 10

typedef struct trs__aws_budget {
	pthread_mutex_t mu;
	const trs_ctx *ctx;
	const char *service;   /* "S3", "SQS", "CloudWatch": for the log */
	int tokens;
	int capacity;
	bool enabled;          /* false in the legacy retry mode */
	bool empty_logged;     /* the log says so once per change */
	uint64_t retries;      /* retries made (granted, or free: see trs__aws_budget_count) */
	uint64_t refused;      /* retries refused: the budget was spent */
} trs__aws_budget;

void trs__aws_budget_init(trs__aws_budget *b, const trs_ctx *ctx, const char *service);
void trs__aws_budget_destroy(trs__aws_budget *b);
/* Take a retry's cost; false (and a warning, once until it recovers) when the budget is spent. */
bool trs__aws_budget_take(trs__aws_budget *b, bool timeout, int *cost);
/* A retry that costs no tokens (a throttling answer under adaptive concurrency, a refresh): counted all the same. */
void trs__aws_budget_count(trs__aws_budget *b);
/* A request succeeded after retries that cost `cost` tokens (0: none). */
void trs__aws_budget_success(trs__aws_budget *b, int cost);

/*
 * One request's retries: the attempt count, the budget's tokens it took and
 * whether the next attempt refreshes credentials. The caller's loop is
 *
 *     trs__aws_retry r;
 *     trs__aws_retry_start(&r, ctx, &budget, max_attempts, base_s, cap_s);
 *     for (;;) {
 *             ... one attempt (r.refresh: refresh the credentials first) ...
 *             if (success) { trs__aws_retry_succeeded(&r); return 0; }
 *             if (!trs__aws_retry_allowed(&r, verdict, costs, timeout)) return the failure;
 *             log "retrying";
 *             if (trs__aws_retry_wait(&r, err) < 0) return TRS_ECANCELED;
 *     }
 */
typedef struct trs__aws_retry {
	const trs_ctx *ctx;        /* its cancellation ends the wait */
	trs__aws_budget *budget;   /* NULL: retries bounded by the attempts alone */
	unsigned int max_attempts;
	double base_s, cap_s;      /* full-jitter backoff */
	unsigned int attempt;      /* the attempt under way, from 1 */
	int cost;                  /* budget tokens taken by this request's retries */
	bool refresh;              /* the next attempt refreshes credentials (no wait before it) */
} trs__aws_retry;

void trs__aws_retry_start(trs__aws_retry *r, const trs_ctx *ctx, trs__aws_budget *budget,
			  unsigned int max_attempts, double base_s, double cap_s);
/* After a failed attempt: may another one go? No when the verdict is final,
 * the attempts are spent, or `costs` and the budget refuses (a timeout or a
 * transport error costs more: `timeout`). */
bool trs__aws_retry_allowed(trs__aws_retry *r, trs__aws_verdict verdict, bool costs, bool timeout);
/* Wait the backoff before the next attempt (none before a credential
 * refresh) and count it. TRS_ECANCELED when the context is canceled. */
int trs__aws_retry_wait(trs__aws_retry *r, trs_error *err);
/* The request succeeded: the budget gets back what its retries took. */
void trs__aws_retry_succeeded(trs__aws_retry *r);

/* Endpoint for a service from the environment (lib/aws/endpoint.c): `given`
 * when set; else AWS_ENDPOINT_URL_<SERVICE> (e.g. "S3", "SQS", "CLOUDWATCH"),
 * then AWS_ENDPOINT_URL, both ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
 * is "true"; else NULL (the service's AWS endpoint). */
const char *trs__aws_endpoint(const char *service_env, const char *given);

#endif
