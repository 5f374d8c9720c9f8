/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Adaptive concurrency for one client's requests: at most floor(limit) in
 * flight, the limit lowered by throttling answers and raised by successes.
 *
 * - every request takes a slot and a ticket (its place in the order of
 *   sending) before it is sent, and gives both back with its answer;
 * - one decrease per round trip: a throttling answer (503 SlowDown, 429, ...)
 *   lowers the limit only when its request was sent after the last decrease
 *   (the ticket says so); the throttles of requests already in flight then
 *   belong to the same event, as TCP's recovery point does it;
 * - the decrease is half the throttled share of recent answers: the limit
 *   becomes limit * (1 - share / 2), never below the part of it that was
 *   succeeding, limit * (1 - share), nor below 1. Answers that were all
 *   throttles halve it (TCP's decrease: a server that refuses above a
 *   rate); a few random SlowDowns among many successes cost a few percent;
 * - each success raises it by up to 1/8, up to the ceiling (twice the
 *   context's max_inflight, room for multipart parts beside the writers):
 *   growth in proportion to the requests that succeed, so a limit that a
 *   brief burst of refusals cut is back within a few dozen round trips.
 *   The growth is damped by the throttled share, to none when half the
 *   recent answers are throttles, so that against a fixed rate the limit
 *   settles where about 15% of the answers are refusals instead of climbing
 *   back into them;
 * - a failing server (500 InternalError, 503 ServiceUnavailable, a
 *   connection error) is not a throttle: the retry policy and its budget
 *   deal with it, and the limit does not move.
 *
 * Nothing here reads a clock: the order of tickets and answers is the
 * whole state, so the behaviour is the same on a slow or loaded machine.
 * Adjusts only in the adaptive retry mode (AWS_RETRY_MODE, the default
 * here); the other modes keep a fixed ceiling and count throttles. The log
 * says when the limit falls well below the ceiling and when it is back
 * (once per change, not per request).
 */
#ifndef TRS_AWS_LIMITER_H
#define TRS_AWS_LIMITER_H

#include "retry.h"

/* What an answer tells the limiter (see trs__aws_limiter_answer). */
typedef enum {
	TRS__AWS_ANSWER_OK = 0,     /* the request succeeded: the limit grows */
	TRS__AWS_ANSWER_THROTTLED,  /* 503 SlowDown, 429, ...: the server asks for less */
	TRS__AWS_ANSWER_OTHER,      /* another answer (4xx, a failing server's 5xx): no signal */
	TRS__AWS_ANSWER_NONE,       /* no answer (a transport error): no signal */
} trs__aws_answer;

typedef struct trs__aws_limiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const trs_ctx *ctx;
	const char *service;
	bool enabled;           /* false: a fixed ceiling (AWS_RETRY_MODE legacy or standard) */
	double limit;
	double ceiling;
	unsigned int in_flight;
	uint64_t next_ticket;   /* the ticket of the next request sent */
	uint64_t recovery;      /* throttles of tickets below it belong to the last decrease */
	double throttle_share;  /* throttling answers among recent answers (moving average) */
	double logged;          /* the limit the log last reported (0: at the ceiling) */
	uint64_t decreases;
	uint64_t throttled;     /* throttling answers seen */
	double lowest;
} trs__aws_limiter;

void trs__aws_limiter_init(trs__aws_limiter *l, const trs_ctx *ctx, const char *service, unsigned int ceiling);
void trs__aws_limiter_destroy(trs__aws_limiter *l);
/* Wait for a slot and take a ticket for the request about to be sent;
 * TRS_ECANCELED when the context is canceled meanwhile. */
int trs__aws_limiter_acquire(trs__aws_limiter *l, uint64_t *ticket, trs_error *err);
/* Give the slot back with what the request's answer was. */
void trs__aws_limiter_release(trs__aws_limiter *l, uint64_t ticket, trs__aws_answer answer);
/* What an HTTP answer tells the limiter: `success` (the caller's verdict on
 * the answer) is OK; a throttling status or code (trs__aws_throttled) is
 * THROTTLED; anything else, a failing server's 500 or 503 included, is
 * OTHER. */
trs__aws_answer trs__aws_limiter_answer(long status, const char *aws_code, bool success);
/* The current limit (for logs, metrics and tests). */
double trs__aws_limiter_limit(trs__aws_limiter *l);

#endif
