/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS STS (private): the two calls the credential chain makes.
 *
 * Endpoint (lib/aws/endpoint.c): AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL
 * (neither when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), else
 * https://sts.<region>.amazonaws.com/ (https://sts.amazonaws.com/ without a
 * region, signed for us-east-1). Signed and sent by lib/aws/send.c; transport
 * errors, throttling and 5xx are retried with the policy of lib/aws/retry.h
 * (3 attempts, AWS_MAX_ATTEMPTS). Answers are the query protocol's XML
 * (lib/aws/xml.c). Nothing here logs a token, a key or a signature.
 */
#ifndef TRS_STS_H
#define TRS_STS_H

#include "credentials.h"

/* DurationSeconds STS accepts for AssumeRole: 15 minutes to 12 hours. */
#define TRS__STS_MIN_DURATION_S 900
#define TRS__STS_MAX_DURATION_S 43200

typedef struct trs__sts_role {
	const char *role_arn;
	const char *session_name;     /* NULL: "libtrs-<unix time>" */
	const char *external_id;      /* NULL: none */
	unsigned int duration_seconds; /* 0: STS's default (1 hour) */
	const char *region;           /* NULL: AWS_REGION, AWS_DEFAULT_REGION, else the global endpoint */
} trs__sts_role;

/* The endpoint's URL (ending in '/' when it has no path) and its "host[:port]". */
int trs__sts_endpoint(const char *region, trs__buf *url, trs__buf *authority, trs_error *err);

/* AssumeRoleWithWebIdentity (unsigned: the token is the proof). source "web-identity". TRS_EAUTH on refusal. */
int trs__sts_assume_role_with_web_identity(const trs_ctx *ctx, trs__http *http, const trs__sts_role *role,
					   const char *token, trs__aws_credentials *out, trs_error *err);

/* AssumeRole signed with `source`'s keys. source "assume-role". TRS_EAUTH on refusal. */
int trs__sts_assume_role(const trs_ctx *ctx, trs__http *http, const trs__sts_role *role,
			 const trs__aws_credentials *source, trs__aws_credentials *out, trs_error *err);

#endif
