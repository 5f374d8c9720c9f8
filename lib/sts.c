/* AWS STS: AssumeRoleWithWebIdentity (EKS) and AssumeRole (profiles with role_arn). */
#include "sts.h"
#include "aws_config.h"
#include "sigv4.h"
#include "xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STS_TIMEOUT_MS 10000L

static const char *sts_region(const trs__sts_role *role)
{
	const char *r = role->region && *role->region ? role->region : trs__env("AWS_REGION");
	return r ? r : trs__env("AWS_DEFAULT_REGION");
}

/* The endpoint's URL (ending in '/' when it has no path) and its "host[:port]". */
static int sts_endpoint(const char *region, trs_buf *url, trs_buf *authority, trs_error *err)
{
	const char *endpoint = trs__env("AWS_ENDPOINT_URL_STS");
	if (!endpoint)
		endpoint = trs__env("AWS_ENDPOINT_URL");
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

static int form_add(trs_buf *b, const char *k, const char *v, trs_error *err)
{
	int rc = trs__buf_printf(b, err, "%s%s=", b->len ? "&" : "", k);
	return rc == 0 ? trs__uri_encode(b, v, strlen(v), false, err) : rc;
}

static int role_form(const char *action, const trs__sts_role *role, trs_buf *form, trs_error *err)
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

/* POST the form (signed when `source` is given) and read the credentials from the answer. */
static int sts_call(const trs_ctx *ctx, trs__http *http, const char *action, const trs__sts_role *role,
		    const trs_buf *form, const trs__aws_credentials *source, const char *hint,
		    trs__aws_credentials *out, trs_error *err)
{
	const char *region = sts_region(role);
	trs_buf url = TRS_BUF_INIT, authority = TRS_BUF_INIT;
	int rc = sts_endpoint(region, &url, &authority, err);
	trs_kv h[8];
	size_t nh = 0;
	h[nh++] = (trs_kv){"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
	trs__sigv4_result sig;
	memset(&sig, 0, sizeof(sig));
	if (rc == 0 && source) {
		h[nh++] = (trs_kv){"Host", authority.data};
		char payload_hash[TRS_SHA256_HEX_LEN + 1];
		trs__sha256_hex(form->data, form->len, payload_hash);
		const char *sep = strstr(url.data, "://") + 3;
		const char *path = sep + strcspn(sep, "/?#");
		trs__sigv4_options o = TRS_SIGV4_GENERIC("sts");
		o.region = region ? region : "us-east-1";
		o.now = time(NULL);
		trs__sigv4_credentials sc = {source->access_key_id, source->secret_access_key, source->session_token};
		trs__sigv4_request sr = {"POST", *path == '/' ? path : "/", "", h, nh, payload_hash};
		rc = trs__sigv4_sign(&sc, &o, &sr, &sig, err);
		for (size_t i = 0; rc == 0 && i < sig.nadd_headers; i++)
			h[nh++] = sig.add_headers[i];
	}
	trs__http_response resp;
	memset(&resp, 0, sizeof(resp));
	if (rc == 0) {
		trs__http_request req = {0};
		req.method = "POST";
		req.url = url.data;
		req.headers = h;
		req.nheaders = nh;
		req.body = form->data;
		req.body_len = form->len;
		req.timeout_ms = STS_TIMEOUT_MS;
		req.connect_timeout_ms = STS_TIMEOUT_MS;
		req.max_response = 256u << 10;
		rc = trs__http_do(http, &req, &resp, err);
	}
	const char *source_name = source ? "assume-role" : "web-identity";
	if (rc == 0) {
		trs__s3_xml x;
		int xrc = trs__xml_parse_s3(resp.body.data ? resp.body.data : "", resp.body.len, &x, err);
		if (xrc == 0 && x.kind == TRS_S3_XML_STS_CREDENTIALS && resp.status == 200 && x.access_key_id &&
		    x.secret_access_key) {
			rc = trs__aws_credentials_set(out, x.access_key_id, x.secret_access_key, x.session_token,
						      trs__parse_iso8601(x.expiration), source_name, err);
			if (rc == 0)
				trs__log(ctx, TRS_LOG_DEBUG, "assumed a role through STS", "action", action, "role_arn",
					 role->role_arn, NULL);
		} else {
			rc = trs__error_set(err, TRS_EAUTH, "STS %s for %s failed (HTTP %ld%s%s%s%s): %s", action,
					    role->role_arn, resp.status, x.code ? ", " : "", x.code ? x.code : "",
					    x.message ? ": " : "", x.message ? x.message : "", hint);
			if (err && x.code)
				snprintf(err->aws_code, sizeof(err->aws_code), "%s", x.code);
		}
		trs__s3_xml_free(&x);
	} else if (rc != TRS_ENOMEM) {
		trs__error_prefix(err, "STS %s", action);
		if (err)
			err->code = rc = TRS_EAUTH;
	}
	trs__http_response_free(&resp);
	trs__sigv4_result_free(&sig);
	trs__buf_free(&url);
	trs__buf_free(&authority);
	return rc;
}

int trs__sts_assume_role_with_web_identity(const trs_ctx *ctx, trs__http *http, const trs__sts_role *role,
					   const char *token, trs__aws_credentials *out, trs_error *err)
{
	trs_buf form = TRS_BUF_INIT;
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
	trs_buf form = TRS_BUF_INIT;
	int rc = role_form("AssumeRole", role, &form, err);
	if (rc == 0)
		rc = sts_call(ctx, http, "AssumeRole", role, &form, source,
			      "check the role's trust policy (it must trust the source profile's identity) and "
			      "role_arn / external_id in the profile",
			      out, err);
	trs__buf_free(&form);
	return rc;
}
