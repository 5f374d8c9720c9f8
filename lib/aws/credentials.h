/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS credentials and region (private).
 *
 * The chain, in the AWS SDKs' order; the first source that is configured
 * answers, and when it is configured but fails, that failure is reported
 * (falling through to another identity would be a surprise):
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   2. shared files (lib/aws/aws_config.c): AWS_SHARED_CREDENTIALS_FILE
 *      (~/.aws/credentials) and AWS_CONFIG_FILE (~/.aws/config), the profile
 *      of trs_ctx_options.profile, AWS_PROFILE or "default": role_arn with
 *      source_profile or credential_source (STS AssumeRole, lib/aws/sts.c), static
 *      keys, credential_process (lib/aws/credentials_process.c). SSO profiles are
 *      refused with the command that exports their credentials. A profile
 *      given in the context comes before the environment's keys.
 *   3. web identity (EKS): AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, via STS
 *      AssumeRoleWithWebIdentity (endpoint as lib/aws/sts.h says)
 *   4. ECS container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE);
 *      5xx, 429 and dropped connections retried (3 tries, lib/aws/retry.h)
 *   5. EC2 IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT; AWS_EC2_METADATA_DISABLED=true skips it)
 *
 * Temporary credentials are refreshed 5 minutes before they expire. A
 * provider is safe to share between threads. Secrets are never logged.
 */
#ifndef TRS_CREDENTIALS_H
#define TRS_CREDENTIALS_H

#include "http.h"

#include <time.h>

typedef struct trs__aws_credentials {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;     /* NULL for long-term keys */
	time_t expiration;       /* 0: does not expire */
	const char *source;      /* "environment", "shared-file", "credential-process", "assume-role",
	                          * "web-identity", "ecs", "imds", "static" */
} trs__aws_credentials;

void trs__aws_credentials_clear(trs__aws_credentials *c);

/* Fill c with copies (token may be NULL or ""); `source` is a static string. 0 or TRS_ENOMEM. */
int trs__aws_credentials_set(trs__aws_credentials *c, const char *ak, const char *sk, const char *token,
			     time_t expiration, const char *source, trs_error *err);

/*
 * Run a profile's credential_process command (lib/aws/credentials_process.c)
 * and read the credentials it prints. TRS_EAUTH when it fails, times out
 * or prints something else; the message names the profile.
 */
int trs__credential_process(const trs_ctx *ctx, const char *profile, const char *command, trs__aws_credentials *out,
			    trs_error *err);

typedef struct trs__cred_provider trs__cred_provider;

/* http is borrowed and must outlive the provider. */
int trs__cred_provider_new(trs__cred_provider **out, const trs_ctx *ctx, trs__http *http, trs_error *err);

/* A provider that always hands out these keys (tests, explicit configuration). */
int trs__cred_provider_new_static(trs__cred_provider **out, const char *access_key_id,
				  const char *secret_access_key, const char *session_token, trs_error *err);

/*
 * A copy of the current credentials in out (clear it afterwards). Resolves
 * the chain on first use and refreshes temporary credentials when they are
 * within 5 minutes of expiring, or at once when force_refresh is set (S3
 * answered ExpiredToken). TRS_EAUTH when no source has credentials.
 */
int trs__cred_provider_get(trs__cred_provider *p, bool force_refresh, trs__aws_credentials *out, trs_error *err);
void trs__cred_provider_free(trs__cred_provider *p);

/*
 * The region to use when none was configured: AWS_REGION, AWS_DEFAULT_REGION,
 * the profile's "region" in the config file, then IMDS (1 s timeout). *out
 * is malloc'ed; TRS_ENOTFOUND when no source knows. http may be NULL (no IMDS).
 */
int trs__aws_region(const trs_ctx *ctx, trs__http *http, char **out, trs_error *err);

/* Parse "2014-10-24T23:00:23Z" (fractions and a numeric offset accepted); 0 on error. */
time_t trs__parse_iso8601(const char *s);

#endif
