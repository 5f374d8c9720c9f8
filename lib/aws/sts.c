/* SPDX-License-Identifier: Apache-2.0 */
/* AWS STS: AssumeRoleWithWebIdentity (EKS) and AssumeRole (profiles with role_arn). */
#include "sts.h"
#include "aws_config.h"
#include "aws/retry.h"
#include "aws/send.h"
#include "xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STS_TIMEOUT_MS 10000L
#define STS_ATTEMPTS 3          /* AWS_MAX_ATTEMPTS overrides */
#define STS_BACKOFF_BASE_S 0.2
#define STS_BACKOFF_CAP_S 5.0

static const char *sts_region(const trs__sts_role *role)
{
	const char *r = role->region && *role->region ? role->region : trs__env("AWS_REGION");
	return r ? r : trs__env("AWS_DEFAULT_REGION");
}

int trs__sts_endpoint(const char *region, trs__buf *url, trs__buf *authority, trs_error *err)
{
	const char *endpoint = trs__aws_endpoint("STS", NULL);
	int rc;
	if (endpoint)
		rc = trs__buf_puts(url, endpoint, err);
	else if (region)
		rc = trs__buf_printf(url, err, "https://sts.%s.amazonaws.com/", region);
	else
		rc = trs__buf_puts(url, "https://sts.amazonaws.com/", err);
	if (rc < 0)
		return rc;
	const char *sep = strstr(url->data, "://");
	if (!sep || !sep[3])
		return trs__error_set(err, TRS_EINVAL, "STS endpoint '%s' must look like https://host[:port]",
				      url->data);
	const char *host = sep + 3;
	size_t hlen = strcspn(host, "/?#");
	rc = trs__buf_put(authority, host, hlen, err);
	if (rc == 0)
		rc = trs__buf_puts(authority, "", err);
	if (rc == 0 && !host[hlen])
		rc = trs__buf_puts(url, "/", err);
	return rc;
}

static int form_add(trs__buf *b, const char *k, const char *v, trs_error *err)
{
	int rc = trs__buf_printf(b, err, "%s%s=", b->len ? "&" : "", k);
	return rc == 0 ? trs__uri_encode(b, v, strlen(v), false, err) : rc;
}

static int role_form(const char *action, const trs__sts_role *role, trs__buf *form, trs_error *err)
{
	char session[64];
	const char *session_name = role->session_name && *role->session_name ? role->session_name : NULL;
	if (!session_name) {
		snprintf(session, sizeof(session), "libtrs-%lld", (long long)time(NULL));
		session_name = session;
	}
	int rc = form_add(form, "Action", action, err);
	if (rc == 0)
		rc = form_add(form, "Version", "2011-06-15", err);
	if (rc == 0)
		rc = form_add(form, "RoleArn", role->role_arn, err);
	if (rc == 0)
		rc = form_add(form, "RoleSessionName", session_name, err);
	if (rc == 0 && role->external_id && *role->external_id)
		rc = form_add(form, "ExternalId", role->external_id, err);
	if (rc == 0 && role->duration_seconds)
		rc = trs__buf_printf(form, err, "&DurationSeconds=%u", role->duration_seconds);
	return rc;
}

/* The answer of one attempt: 0 and *out, or the failure and the verdict on retrying it. */
static int read_answer(const trs_ctx *ctx, const char *action, const trs__sts_role *role, const trs__http_response *resp,
		       const char *source_name, const char *hint, trs__aws_verdict *verdict, trs__aws_credentials *out,
		       trs_error *err)
{
	trs__aws_xml x;
	int rc = trs__aws_xml_parse(resp->body.data ? resp->body.data : "", resp->body.len, &x, err);
	*verdict = TRS__AWS_FAIL;
	if (rc == 0 && x.kind == TRS_AWS_XML_STS_CREDENTIALS && resp->status == 200 && x.access_key_id &&
	    x.secret_access_key) {
		rc = trs__aws_credentials_set(out, x.access_key_id, x.secret_access_key, x.session_token,
					      trs__parse_iso8601(x.expiration), source_name, err);
		if (rc == 0)
			trs__log(ctx, TRS_LOG_DEBUG, "assumed a role through STS", "action", action, "role_arn",
				 role->role_arn, NULL);
	} else if (rc != TRS_ENOMEM) {
		/* The source's keys cannot be refreshed from here: an expired token is final. A 200
		 * without credentials (cut short, not the answer) is a failed attempt, retried. */
		*verdict = resp->status >= 200 && resp->status < 300 ? TRS__AWS_RETRY
								      : trs__aws_classify(resp->status, x.code, false);
		if (*verdict == TRS__AWS_REFRESH_AND_RETRY)
			*verdict = TRS__AWS_FAIL;
		rc = trs__error_set(err, TRS_EAUTH, "STS %s for %s failed (HTTP %ld%s%s%s%s): %s", action,
				    role->role_arn, resp->status, x.code ? ", " : "", x.code ? x.code : "",
				    x.message ? ": " : "", x.message ? x.message : "", hint);
		if (err) {
			err->http_status = (int)resp->status;
			snprintf(err->aws_code, sizeof(err->aws_code), "%s", x.code ? x.code : "");
		}
	}
	trs__aws_xml_free(&x);
	return rc;
}

/* POST the form (signed when `source` is given) and read the credentials from
 * the answer, retrying transport errors, throttling and 5xx (lib/aws/retry.h). */
static int sts_call(const trs_ctx *ctx, trs__http *http, const char *action, const trs__sts_role *role,
		    const trs__buf *form, const trs__aws_credentials *source, const char *hint,
		    trs__aws_credentials *out, trs_error *err)
{
	const char *region = sts_region(role);
	trs__buf url = TRS_BUF_INIT, authority = TRS_BUF_INIT;
	int rc = trs__sts_endpoint(region, &url, &authority, err);
	if (rc < 0)
		goto done;
	const char *sep = strstr(url.data, "://") + 3;
	const char *path = sep + strcspn(sep, "/?#");
	trs__aws_target t = {authority.data, *path == '/' ? path : "/", NULL, NULL};
	trs__sigv4_options o = TRS_SIGV4_GENERIC("sts");
	o.region = region ? region : "us-east-1";
	trs_kv h[] = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
	trs__http_request req = {.method = "POST", .url = url.data, .headers = h, .nheaders = TRS_ARRAY_SIZE(h),
				 .body = form->data, .body_len = form->len, .max_response = 256u << 10,
				 .timeout_ms = STS_TIMEOUT_MS, .connect_timeout_ms = STS_TIMEOUT_MS};
	const char *source_name = source ? "assume-role" : "web-identity";
	trs__aws_retry r;
	trs__aws_retry_start(&r, ctx, NULL, trs__aws_max_attempts(0, STS_ATTEMPTS), STS_BACKOFF_BASE_S,
			     STS_BACKOFF_CAP_S);
	for (;;) {
		trs__http_response resp;
		memset(&resp, 0, sizeof(resp));
		trs__aws_verdict verdict;
		rc = trs__aws_send(http, &o, source, &t, &req, &resp, err);
		if (rc == 0)
			rc = read_answer(ctx, action, role, &resp, source_name, hint, &verdict, out, err);
		else
			verdict = rc == TRS_ENET && err && err->retryable ? TRS__AWS_RETRY : TRS__AWS_FAIL;
		trs__http_response_free(&resp);
		if (rc == 0 || rc == TRS_ENOMEM || !trs__aws_retry_allowed(&r, verdict, false, false))
			break;
		trs__log(ctx, TRS_LOG_WARN, "STS request failed; retrying", "action", action, "role_arn", role->role_arn,
			 "error", err ? err->message : NULL, NULL);
		if ((rc = trs__aws_retry_wait(&r, err)) < 0)
			goto done;
	}
	if (rc < 0 && rc != TRS_ENOMEM && rc != TRS_EAUTH) {
		trs__error_prefix(err, "STS %s", action);
		if (err)
			err->code = rc = TRS_EAUTH;
	}
done:
	trs__buf_free(&url);
	trs__buf_free(&authority);
	return rc;
}

int trs__sts_assume_role_with_web_identity(const trs_ctx *ctx, trs__http *http, const trs__sts_role *role,
					   const char *token, trs__aws_credentials *out, trs_error *err)
{
	trs__buf form = TRS_BUF_INIT;
	int rc = role_form("AssumeRoleWithWebIdentity", role, &form, err);
	if (rc == 0)
		rc = form_add(&form, "WebIdentityToken", token, err);
	if (rc == 0)
		rc = sts_call(ctx, http, "AssumeRoleWithWebIdentity", role, &form, NULL,
			      "check the role's trust policy and the token file", out, err);
	if (form.data)
		memset(form.data, 0, form.len);
	trs__buf_free(&form);
	return rc;
}

int trs__sts_assume_role(const trs_ctx *ctx, trs__http *http, const trs__sts_role *role,
			 const trs__aws_credentials *source, trs__aws_credentials *out, trs_error *err)
{
	trs__buf form = TRS_BUF_INIT;
	int rc = role_form("AssumeRole", role, &form, err);
	if (rc == 0)
		rc = sts_call(ctx, http, "AssumeRole", role, &form, source,
			      "check the role's trust policy (it must trust the source profile's identity) and "
			      "role_arn / external_id in the profile",
			      out, err);
	trs__buf_free(&form);
	return rc;
}
