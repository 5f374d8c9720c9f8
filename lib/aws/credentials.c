/* SPDX-License-Identifier: Apache-2.0 */
/* The AWS credential chain and region lookup. */
#include "credentials.h"
#include "aws_config.h"
#include "sigv4.h"
#include "sts.h"
#include "aws/retry.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#define REFRESH_MARGIN_S 300
#define IMDS_TIMEOUT_MS 1000L
#define ECS_TIMEOUT_MS 5000L
#define ECS_ATTEMPTS 3
#define ECS_BACKOFF_BASE_S 0.2
#define ECS_BACKOFF_CAP_S 1.0
#define MAX_PROFILE_CHAIN 5
#define ECS_HOST "http://169.254.170.2"
#define IMDS_HOST "http://169.254.169.254"

struct trs__cred_provider {
	const trs_ctx *ctx;
	trs__http *http;
	pthread_mutex_t lock;
	trs__aws_credentials current;
	bool have;
	bool is_static;
};

void trs__aws_credentials_clear(trs__aws_credentials *c)
{
	if (!c)
		return;
	/* Scrub secrets before their memory goes back to the allocator. */
	if (c->secret_access_key)
		memset(c->secret_access_key, 0, strlen(c->secret_access_key));
	if (c->session_token)
		memset(c->session_token, 0, strlen(c->session_token));
	free(c->access_key_id);
	free(c->secret_access_key);
	free(c->session_token);
	memset(c, 0, sizeof(*c));
}

int trs__aws_credentials_set(trs__aws_credentials *c, const char *ak, const char *sk, const char *token,
		     time_t expiration, const char *source, trs_error *err)
{
	memset(c, 0, sizeof(*c));
	c->access_key_id = trs__strdup(ak, err);
	c->secret_access_key = c->access_key_id ? trs__strdup(sk, err) : NULL;
	if (c->secret_access_key && token && *token)
		c->session_token = trs__strdup(token, err);
	if (!c->access_key_id || !c->secret_access_key || (token && *token && !c->session_token)) {
		trs__aws_credentials_clear(c);
		return TRS_ENOMEM;
	}
	c->expiration = expiration;
	c->source = source;
	return 0;
}

static int creds_copy(trs__aws_credentials *dst, const trs__aws_credentials *src, trs_error *err)
{
	return trs__aws_credentials_set(dst, src->access_key_id, src->secret_access_key, src->session_token, src->expiration,
			 src->source, err);
}

time_t trs__parse_iso8601(const char *s)
{
	int y, mo, d, h, mi, sec;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
		return 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return 0;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	/* A numeric offset after the seconds (and optional fraction): "+02:00". */
	const char *p = s + 19;
	if (*p == '.')
		while (isdigit((unsigned char)*++p))
			;
	int oh, om;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
		long off = (long)oh * 3600 + (long)om * 60;
		t += *p == '+' ? -off : off;
	}
	return t;
}

/* ---- HTTP sources ---- */

static const char *json_string(yajl_val v)
{
	return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* Credentials from the JSON that ECS and IMDS both answer. */
static int from_json(const char *json, const char *source, const char *where, trs__aws_credentials *out,
		     trs_error *err)
{
	char ebuf[256];
	yajl_val root = yajl_tree_parse(json, ebuf, sizeof(ebuf));
	if (!root)
		return trs__error_set(err, TRS_EAUTH, "the %s credentials answer from %s is not JSON", source, where);
	static const char *ak_path[] = {"AccessKeyId", NULL};
	static const char *sk_path[] = {"SecretAccessKey", NULL};
	static const char *tok_path[] = {"Token", NULL};
	static const char *exp_path[] = {"Expiration", NULL};
	static const char *code_path[] = {"Code", NULL};
	const char *ak = json_string(yajl_tree_get(root, ak_path, yajl_t_string));
	const char *sk = json_string(yajl_tree_get(root, sk_path, yajl_t_string));
	const char *tok = json_string(yajl_tree_get(root, tok_path, yajl_t_string));
	const char *exp = json_string(yajl_tree_get(root, exp_path, yajl_t_string));
	const char *code = json_string(yajl_tree_get(root, code_path, yajl_t_string));
	int rc;
	if (code && strcmp(code, "Success") != 0) {
		rc = trs__error_set(err, TRS_EAUTH, "%s at %s answered Code '%s' instead of credentials", source,
				    where, code);
	} else if (!ak || !sk) {
		rc = trs__error_set(err, TRS_EAUTH, "the %s credentials answer from %s lacks AccessKeyId or "
				    "SecretAccessKey", source, where);
	} else {
		rc = trs__aws_credentials_set(out, ak, sk, tok, exp ? trs__parse_iso8601(exp) : 0, source, err);
	}
	yajl_tree_free(root);
	return rc;
}

static int http_fetch(trs__http *http, const char *method, const char *url, const trs_kv *headers, size_t nheaders,
		      const char *body, long timeout_ms, trs__http_response *resp, trs_error *err)
{
	trs__http_request req = {0};
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.nheaders = nheaders;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.timeout_ms = timeout_ms;
	req.connect_timeout_ms = timeout_ms;
	req.max_response = 256u << 10;
	return trs__http_do(http, &req, resp, err);
}

/* Full URIs may only point at the container agent, loopback, or use TLS (as the SDKs require). */
static bool ecs_host_allowed(const char *url)
{
	if (strncasecmp(url, "https://", 8) == 0)
		return true;
	if (strncasecmp(url, "http://", 7) != 0)
		return false;
	const char *host = url + 7;
	static const char *const allowed[] = {"127.", "localhost", "[::1]", "169.254.170.2", "169.254.170.23",
					      "[fd00:ec2::23]"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(allowed); i++) {
		size_t n = strlen(allowed[i]);
		if (strncasecmp(host, allowed[i], n) == 0) {
			char next = host[n];
			if (allowed[i][n - 1] == '.' || next == ':' || next == '/' || next == '\0')
				return true;
		}
	}
	return false;
}

static int from_ecs(trs__cred_provider *p, trs__aws_credentials *out, trs_error *err)
{
	const char *rel = trs__env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = trs__env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	trs__buf url = TRS_BUF_INIT;
	char *token = NULL;
	int rc;
	if (rel) {
		rc = trs__buf_printf(&url, err, "%s%s%s", ECS_HOST, rel[0] == '/' ? "" : "/", rel);
	} else {
		if (!ecs_host_allowed(full))
			return trs__error_set(err, TRS_EAUTH,
					      "AWS_CONTAINER_CREDENTIALS_FULL_URI must use https or a loopback or "
					      "container-agent address; refusing to send a token elsewhere");
		rc = trs__buf_puts(&url, full, err);
	}
	if (rc < 0)
		return rc;
	const char *token_file = trs__env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	if (token_file) {
		token = trs__read_small_file(token_file, NULL, err);
		if (!token) {
			trs__buf_free(&url);
			return trs__error_set(err, TRS_EAUTH, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
					      token_file);
		}
		char *t = trs__trim(token);
		memmove(token, t, strlen(t) + 1);
	} else if (trs__env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
		token = trs__strdup(trs__env("AWS_CONTAINER_AUTHORIZATION_TOKEN"), err);
		if (!token) {
			trs__buf_free(&url);
			return TRS_ENOMEM;
		}
	}
	trs_kv h[1] = {{"Authorization", token}};
	trs__http_response resp;
	/* The agent answers 5xx or drops a connection now and then (throttling, a restart): a short
	 * retry here keeps one hiccup from failing every request that waits for credentials. */
	trs__aws_retry r;
	trs__aws_retry_start(&r, p->ctx, NULL, ECS_ATTEMPTS, ECS_BACKOFF_BASE_S, ECS_BACKOFF_CAP_S);
	for (;;) {
		rc = http_fetch(p->http, "GET", url.data, h, token ? 1 : 0, NULL, ECS_TIMEOUT_MS, &resp, err);
		trs__aws_verdict verdict = rc == 0 ? trs__aws_classify(resp.status, NULL, false)
					   : rc == TRS_ENET && err && err->retryable ? TRS__AWS_RETRY
										     : TRS__AWS_FAIL;
		if ((rc == 0 && resp.status == 200) || !trs__aws_retry_allowed(&r, verdict, false, false))
			break;
		trs__log(p->ctx, TRS_LOG_WARN, "the ECS container credentials endpoint failed; retrying", NULL);
		trs__http_response_free(&resp);
		if (trs__aws_retry_wait(&r, NULL) < 0) {
			rc = trs__error_set(err, TRS_ECANCELED, "canceled while waiting for the ECS container credentials");
			break;
		}
	}
	if (rc < 0) {
		trs__error_prefix(err, "ECS container credentials");
		rc = TRS_EAUTH;
		if (err)
			err->code = rc;
	} else if (resp.status != 200) {
		rc = trs__error_set(err, TRS_EAUTH, "the ECS container credentials endpoint answered HTTP %ld",
				    resp.status);
	} else {
		rc = from_json(resp.body.data ? resp.body.data : "", "ecs", "the container credentials endpoint", out,
			       err);
	}
	trs__http_response_free(&resp);
	trs__buf_free(&url);
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	return rc;
}

static char *imds_base(trs_error *err)
{
	const char *e = trs__env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char *b = trs__strdup(e ? e : IMDS_HOST, err);
	if (b) {
		size_t n = strlen(b);
		while (n && b[n - 1] == '/')
			b[--n] = '\0';
	}
	return b;
}

static bool imds_disabled(void)
{
	const char *d = trs__env("AWS_EC2_METADATA_DISABLED");
	return d && strcasecmp(d, "true") == 0;
}

/* GET base+path with an IMDSv2 session token into *body (malloc'ed). */
static int imds_get(trs__http *http, const char *base, const char *path, char **body, trs_error *err)
{
	*body = NULL;
	trs__buf url = TRS_BUF_INIT;
	trs__http_response resp;
	int rc = trs__buf_printf(&url, err, "%s/latest/api/token", base);
	if (rc < 0)
		return rc;
	trs_kv ttl[1] = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
	rc = http_fetch(http, "PUT", url.data, ttl, 1, NULL, IMDS_TIMEOUT_MS, &resp, err);
	if (rc == 0 && resp.status != 200)
		rc = trs__error_set(err, TRS_EAUTH, "EC2 instance metadata refused a session token (HTTP %ld)",
				    resp.status);
	char *token = NULL;
	if (rc == 0) {
		token = trs__strndup(resp.body.data ? resp.body.data : "", resp.body.len, err);
		if (!token)
			rc = TRS_ENOMEM;
	}
	trs__http_response_free(&resp);
	url.len = 0;
	if (rc == 0)
		rc = trs__buf_printf(&url, err, "%s%s", base, path);
	if (rc == 0) {
		trs_kv h[1] = {{"X-aws-ec2-metadata-token", trs__trim(token)}};
		rc = http_fetch(http, "GET", url.data, h, 1, NULL, IMDS_TIMEOUT_MS, &resp, err);
		if (rc == 0 && resp.status == 404)
			rc = trs__error_set(err, TRS_ENOTFOUND, "EC2 instance metadata has no %s", path);
		else if (rc == 0 && resp.status != 200)
			rc = trs__error_set(err, TRS_EAUTH, "EC2 instance metadata answered HTTP %ld for %s",
					    resp.status, path);
		if (rc == 0) {
			*body = trs__strndup(resp.body.data ? resp.body.data : "", resp.body.len, err);
			if (!*body)
				rc = TRS_ENOMEM;
		}
		trs__http_response_free(&resp);
	}
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	trs__buf_free(&url);
	return rc;
}

static int from_imds(trs__cred_provider *p, trs__aws_credentials *out, trs_error *err)
{
	char *base = imds_base(err);
	if (!base)
		return TRS_ENOMEM;
	char *roles = NULL, *json = NULL;
	trs__buf path = TRS_BUF_INIT;
	int rc = imds_get(p->http, base, "/latest/meta-data/iam/security-credentials/", &roles, err);
	if (rc == 0) {
		char *role = trs__trim(roles);
		role[strcspn(role, "\r\n")] = '\0';
		if (!*role)
			rc = trs__error_set(err, TRS_EAUTH, "this EC2 instance has no IAM role attached");
		else
			rc = trs__buf_printf(&path, err, "/latest/meta-data/iam/security-credentials/%s", role);
	}
	if (rc == 0)
		rc = imds_get(p->http, base, path.data, &json, err);
	if (rc == 0)
		rc = from_json(json, "imds", "EC2 instance metadata", out, err);
	if (json) {
		memset(json, 0, strlen(json));
		free(json);
	}
	free(roles);
	free(base);
	trs__buf_free(&path);
	return rc;
}

static int from_web_identity(trs__cred_provider *p, trs__aws_credentials *out, trs_error *err)
{
	const char *token_file = trs__env("AWS_WEB_IDENTITY_TOKEN_FILE");
	trs__sts_role role = {trs__env("AWS_ROLE_ARN"), trs__env("AWS_ROLE_SESSION_NAME"), NULL, 0, NULL};
	if (!role.role_arn)
		return trs__error_set(err, TRS_EAUTH,
				      "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; set both");
	char *token = trs__read_small_file(token_file, NULL, err);
	if (!token)
		return trs__error_set(err, TRS_EAUTH, "cannot read the web identity token file %s", token_file);
	int rc = trs__sts_assume_role_with_web_identity(p->ctx, p->http, &role, trs__trim(token), out, err);
	memset(token, 0, strlen(token));
	free(token);
	return rc;
}

/* ---- profiles of the shared files ---- */

static int from_profile(trs__cred_provider *p, const char *name, unsigned int depth, bool *found,
			trs__aws_credentials *out, trs_error *err);

/* The identity a role_arn profile assumes the role with: source_profile or credential_source. */
static int role_source(trs__cred_provider *p, const trs__aws_profile *prof, unsigned int depth,
		       trs__aws_credentials *out, trs_error *err)
{
	const char *source = trs__aws_profile_get(prof, "source_profile");
	const char *cs = trs__aws_profile_get(prof, "credential_source");
	const char *ak = trs__aws_profile_get(prof, "aws_access_key_id");
	const char *sk = trs__aws_profile_get(prof, "aws_secret_access_key");
	if (source && cs)
		return trs__error_set(err, TRS_EAUTH, "profile '%s' sets both source_profile and credential_source; "
				      "keep one", prof->name);
	if (source && strcmp(source, prof->name) == 0) {
		if (!ak || !sk)
			return trs__error_set(err, TRS_EAUTH, "profile '%s' is its own source_profile but has no "
					      "aws_access_key_id / aws_secret_access_key", prof->name);
		return trs__aws_credentials_set(out, ak, sk, trs__aws_profile_get(prof, "aws_session_token"), 0,
						"shared-file", err);
	}
	if (source) {
		if (depth >= MAX_PROFILE_CHAIN)
			return trs__error_set(err, TRS_EAUTH, "profile '%s': the source_profile chain is longer than %d "
					      "(a loop?)", prof->name, MAX_PROFILE_CHAIN);
		bool source_found = false;
		int rc = from_profile(p, source, depth + 1, &source_found, out, err);
		if (rc == 0)
			rc = trs__error_set(err, TRS_EAUTH, "source_profile '%s' of profile '%s' %s", source, prof->name,
					    source_found ? "has no credentials" : "is in neither shared file");
		return rc < 0 ? rc : 0;
	}
	if (cs && strcmp(cs, "Environment") == 0) {
		const char *eak = trs__env("AWS_ACCESS_KEY_ID"), *esk = trs__env("AWS_SECRET_ACCESS_KEY");
		if (!eak || !esk)
			return trs__error_set(err, TRS_EAUTH, "profile '%s' has credential_source Environment but "
					      "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set", prof->name);
		return trs__aws_credentials_set(out, eak, esk, trs__env("AWS_SESSION_TOKEN"), 0, "environment", err);
	}
	if (cs && strcmp(cs, "EcsContainer") == 0)
		return from_ecs(p, out, err);
	if (cs && strcmp(cs, "Ec2InstanceMetadata") == 0)
		return from_imds(p, out, err);
	if (cs)
		return trs__error_set(err, TRS_EAUTH, "profile '%s': credential_source '%s' is not Environment, "
				      "EcsContainer or Ec2InstanceMetadata", prof->name, cs);
	return trs__error_set(err, TRS_EAUTH, "profile '%s' has role_arn but neither source_profile nor "
			      "credential_source; add one", prof->name);
}

/* STS AssumeRole for a profile with role_arn. */
static int assume_profile_role(trs__cred_provider *p, const trs__aws_profile *prof, unsigned int depth,
			       trs__aws_credentials *out, trs_error *err)
{
	if (trs__aws_profile_get(prof, "mfa_serial"))
		return trs__error_set(err, TRS_EAUTH, "profile '%s' needs an MFA code (mfa_serial), which trs cannot "
				      "ask for; export credentials first: aws configure export-credentials --profile "
				      "%s --format env", prof->name, prof->name);
	const char *duration = trs__aws_profile_get(prof, "duration_seconds");
	char *end = NULL;
	unsigned long secs = duration ? strtoul(duration, &end, 10) : 0;
	if (duration && (*end || secs < TRS__STS_MIN_DURATION_S || secs > TRS__STS_MAX_DURATION_S))
		return trs__error_set(err, TRS_EAUTH, "profile '%s': duration_seconds '%s' is not %d to %d",
				      prof->name, duration, TRS__STS_MIN_DURATION_S, TRS__STS_MAX_DURATION_S);
	trs__aws_credentials source;
	memset(&source, 0, sizeof(source));
	int rc = role_source(p, prof, depth, &source, err);
	const char *region = trs__aws_profile_get(prof, "region");
	trs__sts_role role = {trs__aws_profile_get(prof, "role_arn"), trs__aws_profile_get(prof, "role_session_name"),
			      trs__aws_profile_get(prof, "external_id"), (unsigned int)secs,
			      region ? region : trs_ctx_region(p->ctx)};
	if (rc == 0)
		rc = trs__sts_assume_role(p->ctx, p->http, &role, &source, out, err);
	if (rc < 0)
		trs__error_prefix(err, "profile '%s'", prof->name);
	trs__aws_credentials_clear(&source);
	return rc;
}

/*
 * Credentials of one profile, in the AWS CLI's order: role_arn (STS
 * AssumeRole), static keys, credential_process. SSO profiles are refused
 * with the command that exports their credentials. 1 when the profile gave
 * credentials, 0 when it has none, < 0 on failure.
 */
static int from_profile(trs__cred_provider *p, const char *name, unsigned int depth, bool *found,
			trs__aws_credentials *out, trs_error *err)
{
	trs__aws_profile prof;
	int rc = trs__aws_profile_load(name, &prof, err);
	if (rc < 0)
		return rc;
	*found = prof.found;
	const char *ak = trs__aws_profile_get(&prof, "aws_access_key_id");
	const char *sk = trs__aws_profile_get(&prof, "aws_secret_access_key");
	const char *process = trs__aws_profile_get(&prof, "credential_process");
	if (trs__aws_profile_get(&prof, "role_arn"))
		rc = assume_profile_role(p, &prof, depth, out, err);
	else if (ak && sk)
		rc = trs__aws_credentials_set(out, ak, sk, trs__aws_profile_get(&prof, "aws_session_token"), 0,
					      "shared-file", err);
	else if (process)
		rc = trs__credential_process(p->ctx, name, process, out, err);
	else if (trs__aws_profile_get(&prof, "sso_session") || trs__aws_profile_get(&prof, "sso_start_url") ||
		 trs__aws_profile_get(&prof, "sso_account_id"))
		rc = trs__error_set(err, TRS_EAUTH,
				    "profile '%s' uses AWS IAM Identity Center (SSO), which trs does not support; "
				    "export its credentials: eval \"$(aws configure export-credentials --profile %s "
				    "--format env)\", or give trs a profile with credential_process = aws configure "
				    "export-credentials --profile %s --format process",
				    name, name, name);
	else
		rc = 0;
	if (rc == 0 && (prof.found && (ak || process || trs__aws_profile_get(&prof, "role_arn"))))
		rc = 1;
	if (rc == 1)
		trs__log(p->ctx, TRS_LOG_DEBUG, "using AWS credentials of a shared-file profile", "profile", name, NULL);
	trs__aws_profile_free(&prof);
	return rc;
}

static int from_shared_files(trs__cred_provider *p, trs__aws_credentials *out, trs_error *err)
{
	const char *name = trs__aws_profile_name(p->ctx);
	bool found = false;
	int rc = from_profile(p, name, 0, &found, out, err);
	if (rc == 0 && !found && trs__aws_profile_explicit(p->ctx)) {
		trs__aws_profile prof;
		if (trs__aws_profile_load(name, &prof, NULL) == 0) {
			rc = trs__error_set(err, TRS_EAUTH,
					    "profile '%s' (%s) is in neither %s nor %s; fix the name or add the profile",
					    name, TRS_CTX(p->ctx)->profile ? "--profile" : "AWS_PROFILE",
					    prof.cred_path ? prof.cred_path : "~/.aws/credentials",
					    prof.conf_path ? prof.conf_path : "~/.aws/config");
			trs__aws_profile_free(&prof);
		}
	}
	return rc;
}

/* Walk the chain once. */
static int resolve(trs__cred_provider *p, trs__aws_credentials *out, trs_error *err)
{
	/* A profile named by the caller (--profile) comes before the environment's keys, as in the AWS CLI. */
	bool profile_first = TRS_CTX(p->ctx)->profile != NULL;
	int rc = profile_first ? from_shared_files(p, out, err) : 0;
	if (rc != 0)
		return rc < 0 ? rc : 0;
	const char *ak = trs__env("AWS_ACCESS_KEY_ID"), *sk = trs__env("AWS_SECRET_ACCESS_KEY");
	if (ak && sk)
		return trs__aws_credentials_set(out, ak, sk, trs__env("AWS_SESSION_TOKEN"), 0, "environment", err);
	rc = profile_first ? 0 : from_shared_files(p, out, err);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (trs__env("AWS_WEB_IDENTITY_TOKEN_FILE"))
		return from_web_identity(p, out, err);
	if (trs__env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || trs__env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
		return from_ecs(p, out, err);
	if (!imds_disabled()) {
		trs_error imds_err = TRS_ERROR_INIT;
		rc = from_imds(p, out, &imds_err);
		if (rc == 0)
			return 0;
		if (rc == TRS_ENOMEM)
			return trs__error_set(err, TRS_ENOMEM, "%s", imds_err.message);
		return trs__error_set(err, TRS_EAUTH,
				      "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a "
				      "profile (--profile, AWS_PROFILE: keys, credential_process, or role_arn with "
				      "source_profile), web identity, or run with an ECS task role or EC2 instance "
				      "role (instance metadata: %s)",
				      imds_err.message);
	}
	return trs__error_set(err, TRS_EAUTH,
			      "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile "
			      "(--profile, AWS_PROFILE: keys, credential_process, or role_arn with source_profile), "
			      "web identity, or an ECS task role (EC2 instance metadata is disabled by "
			      "AWS_EC2_METADATA_DISABLED)");
}

int trs__cred_provider_new(trs__cred_provider **out, const trs_ctx *ctx, trs__http *http, trs_error *err)
{
	*out = NULL;
	trs__cred_provider *p = trs__calloc(1, sizeof(*p), err);
	if (!p)
		return TRS_ENOMEM;
	p->ctx = ctx;
	p->http = http;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

int trs__cred_provider_new_static(trs__cred_provider **out, const char *access_key_id,
				  const char *secret_access_key, const char *session_token, trs_error *err)
{
	int rc = trs__cred_provider_new(out, NULL, NULL, err);
	if (rc < 0)
		return rc;
	rc = trs__aws_credentials_set(&(*out)->current, access_key_id, secret_access_key, session_token, 0, "static", err);
	if (rc < 0) {
		trs__cred_provider_free(*out);
		*out = NULL;
		return rc;
	}
	(*out)->have = true;
	(*out)->is_static = true;
	return 0;
}

static bool needs_refresh(const trs__aws_credentials *c, time_t now)
{
	return c->expiration && now + REFRESH_MARGIN_S >= c->expiration;
}

int trs__cred_provider_get(trs__cred_provider *p, bool force_refresh, trs__aws_credentials *out, trs_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	time_t now = time(NULL);
	if (!p->is_static && (!p->have || force_refresh || needs_refresh(&p->current, now))) {
		trs__aws_credentials fresh;
		trs_error rerr = TRS_ERROR_INIT;
		rc = resolve(p, &fresh, &rerr);
		if (rc == 0) {
			trs__aws_credentials_clear(&p->current);
			p->current = fresh;
			p->have = true;
			char exp[32] = "never";
			if (fresh.expiration)
				trs__amz_date(fresh.expiration, exp);
			trs__log(p->ctx, TRS_LOG_DEBUG, "AWS credentials loaded", "source", fresh.source, "expires",
				 exp, NULL);
		} else if (p->have && !force_refresh && p->current.expiration > now) {
			/* Still valid for a while: keep them and try again on the next call. */
			trs__log(p->ctx, TRS_LOG_WARN, "refreshing AWS credentials failed; using the current ones",
				 "error", rerr.message, NULL);
			rc = 0;
		} else {
			if (err)
				*err = rerr;
		}
	}
	if (rc == 0)
		rc = creds_copy(out, &p->current, err);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void trs__cred_provider_free(trs__cred_provider *p)
{
	if (!p)
		return;
	trs__aws_credentials_clear(&p->current);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int trs__aws_region(const trs_ctx *ctx, trs__http *http, char **out, trs_error *err)
{
	*out = NULL;
	const char *r = trs__env("AWS_REGION");
	if (!r)
		r = trs__env("AWS_DEFAULT_REGION");
	if (r) {
		*out = trs__strdup(r, err);
		return *out ? 0 : TRS_ENOMEM;
	}
	trs__aws_profile prof;
	int prc = trs__aws_profile_load(trs__aws_profile_name(ctx), &prof, err);
	if (prc < 0 && prc != TRS_ELIMIT)
		return prc;
	const char *pr = prc == 0 ? trs__aws_profile_get(&prof, "region") : NULL;
	if (pr) {
		*out = trs__strdup(pr, err);
		trs__aws_profile_free(&prof);
		return *out ? 0 : TRS_ENOMEM;
	}
	if (prc == 0)
		trs__aws_profile_free(&prof);
	if (http && !imds_disabled()) {
		char *base = imds_base(err);
		if (!base)
			return TRS_ENOMEM;
		char *body = NULL;
		trs_error ierr = TRS_ERROR_INIT;
		int rc = imds_get(http, base, "/latest/meta-data/placement/region", &body, &ierr);
		free(base);
		if (rc == 0 && body && *trs__trim(body)) {
			char *t = trs__strdup(trs__trim(body), err);
			free(body);
			if (!t)
				return TRS_ENOMEM;
			trs__log(ctx, TRS_LOG_DEBUG, "region from EC2 instance metadata", "region", t, NULL);
			*out = t;
			return 0;
		}
		free(body);
	}
	return trs__error_set(err, TRS_ENOTFOUND,
			      "no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION), or a region in the "
			      "profile of ~/.aws/config");
}
