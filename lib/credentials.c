/* The AWS credential chain and region lookup. */
#include "credentials.h"
#include "sigv4.h"
#include "xml.h"

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
#define ECS_RETRY_DELAY_NS 200000000L /* doubled per attempt */
#define STS_TIMEOUT_MS 10000L
#define MAX_FILE_BYTES (1u << 20)
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

static int creds_set(trs__aws_credentials *c, const char *ak, const char *sk, const char *token,
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
	return creds_set(dst, src->access_key_id, src->secret_access_key, src->session_token, src->expiration,
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

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* ---- files ---- */

static char *read_file(const char *path, size_t *len, trs_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	trs_buf b = TRS_BUF_INIT;
	char chunk[4096];
	size_t n;
	int rc = 0;
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + n > MAX_FILE_BYTES)
			rc = trs__error_set(err, TRS_ELIMIT, "%s is larger than %u bytes", path, MAX_FILE_BYTES);
		else
			rc = trs__buf_put(&b, chunk, n, err);
	}
	fclose(f);
	if (rc == 0)
		rc = trs__buf_puts(&b, "", err);
	if (rc < 0) {
		trs__buf_free(&b);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.data;
}

/* path, or $HOME/<home_rel>; "~/" in path is expanded too. */
static char *config_path(const char *env_name, const char *home_rel, trs_error *err)
{
	const char *p = env(env_name);
	const char *home = env("HOME");
	trs_buf b = TRS_BUF_INIT;
	int rc;
	if (p && strncmp(p, "~/", 2) == 0 && home)
		rc = trs__buf_printf(&b, err, "%s/%s", home, p + 2);
	else if (p)
		rc = trs__buf_puts(&b, p, err);
	else if (home)
		rc = trs__buf_printf(&b, err, "%s/%s", home, home_rel);
	else
		return NULL;
	if (rc < 0) {
		trs__buf_free(&b);
		return NULL;
	}
	return b.data;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * The value of `key` in `[section]` of an INI file (the AWS dialect: '#'
 * and ';' comments, "key = value"). *found tells whether the section exists.
 */
static char *ini_get(const char *text, const char *section, const char *key, bool *found, trs_error *err)
{
	char *copy = trs__strdup(text, err);
	if (!copy)
		return NULL;
	char *result = NULL;
	bool in_section = false;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *l = trim(line);
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');
			if (!end)
				continue;
			*end = '\0';
			/* "[profile  name]" and "[ name ]" both occur in the wild. */
			char *name = trim(l + 1);
			char norm[512];
			if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7]) &&
			    strcmp(trim(name + 8), "default") != 0)
				snprintf(norm, sizeof(norm), "profile %s", trim(name + 8));
			else if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7]))
				snprintf(norm, sizeof(norm), "default");
			else
				snprintf(norm, sizeof(norm), "%s", name);
			in_section = strcmp(norm, section) == 0;
			if (in_section && found)
				*found = true;
			continue;
		}
		if (!in_section || result)
			continue;
		char *eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (strcasecmp(trim(l), key) == 0)
			result = trs__strdup(trim(eq + 1), err);
	}
	free(copy);
	return result;
}

static const char *profile_name(void)
{
	const char *p = env("AWS_PROFILE");
	if (!p)
		p = env("AWS_DEFAULT_PROFILE");
	return p ? p : "default";
}

/* The config file names profiles "[profile x]", except "[default]". */
static void config_section(const char *profile, char *out, size_t outlen)
{
	if (strcmp(profile, "default") == 0)
		snprintf(out, outlen, "default");
	else
		snprintf(out, outlen, "profile %s", profile);
}

/* 1 when the profile gave credentials, 0 when it has none, < 0 on failure. */
static int from_shared_files(const trs_ctx *ctx, trs__aws_credentials *out, trs_error *err)
{
	const char *profile = profile_name();
	bool explicit_profile = env("AWS_PROFILE") != NULL;
	char *cred_path = config_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", err);
	char *conf_path = config_path("AWS_CONFIG_FILE", ".aws/config", err);
	char *cred_text = cred_path ? read_file(cred_path, NULL, err) : NULL;
	char *conf_text = conf_path ? read_file(conf_path, NULL, err) : NULL;
	char *ak = NULL, *sk = NULL, *token = NULL;
	bool found_cred = false, found_conf = false;
	int rc = 0;
	if (cred_text) {
		ak = ini_get(cred_text, profile, "aws_access_key_id", &found_cred, err);
		sk = ini_get(cred_text, profile, "aws_secret_access_key", NULL, err);
		token = ini_get(cred_text, profile, "aws_session_token", NULL, err);
	}
	if (conf_text && (!ak || !sk)) {
		char section[512];
		config_section(profile, section, sizeof(section));
		free(ak);
		free(sk);
		free(token);
		ak = ini_get(conf_text, section, "aws_access_key_id", &found_conf, err);
		sk = ini_get(conf_text, section, "aws_secret_access_key", NULL, err);
		token = ini_get(conf_text, section, "aws_session_token", NULL, err);
	}
	if (ak && sk && *ak && *sk) {
		rc = creds_set(out, ak, sk, token, 0, "shared-file", err);
		if (rc == 0) {
			trs__log(ctx, TRS_LOG_DEBUG, "using AWS credentials from the shared files", "profile", profile,
				 NULL);
			rc = 1;
		}
	} else if (explicit_profile && !found_cred && !found_conf) {
		rc = trs__error_set(err, TRS_EAUTH,
				    "AWS_PROFILE names profile '%s', which is in neither %s nor %s; fix AWS_PROFILE or "
				    "add the profile",
				    profile, cred_path ? cred_path : "~/.aws/credentials",
				    conf_path ? conf_path : "~/.aws/config");
	}
	free(ak);
	if (sk)
		memset(sk, 0, strlen(sk));
	free(sk);
	free(token);
	free(cred_text);
	free(conf_text);
	free(cred_path);
	free(conf_path);
	return rc;
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
		rc = creds_set(out, ak, sk, tok, exp ? trs__parse_iso8601(exp) : 0, source, err);
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
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	trs_buf url = TRS_BUF_INIT;
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
	const char *token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	if (token_file) {
		token = read_file(token_file, NULL, err);
		if (!token) {
			trs__buf_free(&url);
			return trs__error_set(err, TRS_EAUTH, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
					      token_file);
		}
		char *t = trim(token);
		memmove(token, t, strlen(t) + 1);
	} else if (env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
		token = trs__strdup(env("AWS_CONTAINER_AUTHORIZATION_TOKEN"), err);
		if (!token) {
			trs__buf_free(&url);
			return TRS_ENOMEM;
		}
	}
	trs_kv h[1] = {{"Authorization", token}};
	trs__http_response resp;
	/* The agent answers 5xx or drops a connection now and then (throttling, a restart): a short
	 * retry here keeps one hiccup from failing every request that waits for credentials. */
	for (unsigned int attempt = 1;; attempt++) {
		rc = http_fetch(p->http, "GET", url.data, h, token ? 1 : 0, NULL, ECS_TIMEOUT_MS, &resp, err);
		bool transient = rc == TRS_ENET ? err && err->retryable
						: rc == 0 && (resp.status >= 500 || resp.status == 429);
		if (!transient || attempt >= ECS_ATTEMPTS || trs__canceled(p->ctx))
			break;
		trs__log(p->ctx, TRS_LOG_WARN, "the ECS container credentials endpoint failed; retrying", NULL);
		trs__http_response_free(&resp);
		struct timespec ts = {0, ECS_RETRY_DELAY_NS << (attempt - 1)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
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
	const char *e = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
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
	const char *d = env("AWS_EC2_METADATA_DISABLED");
	return d && strcasecmp(d, "true") == 0;
}

/* GET base+path with an IMDSv2 session token into *body (malloc'ed). */
static int imds_get(trs__http *http, const char *base, const char *path, char **body, trs_error *err)
{
	*body = NULL;
	trs_buf url = TRS_BUF_INIT;
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
		trs_kv h[1] = {{"X-aws-ec2-metadata-token", trim(token)}};
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
	trs_buf path = TRS_BUF_INIT;
	int rc = imds_get(p->http, base, "/latest/meta-data/iam/security-credentials/", &roles, err);
	if (rc == 0) {
		char *role = trim(roles);
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

static int form_add(trs_buf *b, const char *k, const char *v, trs_error *err)
{
	int rc = trs__buf_printf(b, err, "%s%s=", b->len ? "&" : "", k);
	return rc == 0 ? trs__uri_encode(b, v, strlen(v), false, err) : rc;
}

static int from_web_identity(trs__cred_provider *p, trs__aws_credentials *out, trs_error *err)
{
	const char *token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role_arn = env("AWS_ROLE_ARN");
	if (!role_arn)
		return trs__error_set(err, TRS_EAUTH,
				      "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; set both");
	char *token = read_file(token_file, NULL, err);
	if (!token)
		return trs__error_set(err, TRS_EAUTH, "cannot read the web identity token file %s", token_file);
	char session[64];
	const char *session_name = env("AWS_ROLE_SESSION_NAME");
	if (!session_name) {
		snprintf(session, sizeof(session), "libtrs-%lld", (long long)time(NULL));
		session_name = session;
	}
	trs_buf url = TRS_BUF_INIT, form = TRS_BUF_INIT;
	const char *endpoint = env("AWS_ENDPOINT_URL_STS");
	if (!endpoint)
		endpoint = env("AWS_ENDPOINT_URL");
	const char *region = env("AWS_REGION");
	if (!region)
		region = env("AWS_DEFAULT_REGION");
	int rc;
	if (endpoint)
		rc = trs__buf_puts(&url, endpoint, err);
	else if (region)
		rc = trs__buf_printf(&url, err, "https://sts.%s.amazonaws.com/", region);
	else
		rc = trs__buf_puts(&url, "https://sts.amazonaws.com/", err);
	/* AssumeRoleWithWebIdentity is unsigned: the token is the proof. */
	if (rc == 0)
		rc = form_add(&form, "Action", "AssumeRoleWithWebIdentity", err);
	if (rc == 0)
		rc = form_add(&form, "Version", "2011-06-15", err);
	if (rc == 0)
		rc = form_add(&form, "RoleArn", role_arn, err);
	if (rc == 0)
		rc = form_add(&form, "RoleSessionName", session_name, err);
	if (rc == 0)
		rc = form_add(&form, "WebIdentityToken", trim(token), err);
	trs__http_response resp;
	memset(&resp, 0, sizeof(resp));
	if (rc == 0) {
		trs_kv h[1] = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
		rc = http_fetch(p->http, "POST", url.data, h, 1, form.data, STS_TIMEOUT_MS, &resp, err);
	}
	if (rc == 0) {
		trs__s3_xml x;
		int xrc = trs__xml_parse_s3(resp.body.data ? resp.body.data : "", resp.body.len, &x, err);
		if (xrc == 0 && x.kind == TRS_S3_XML_STS_CREDENTIALS && resp.status == 200 && x.access_key_id &&
		    x.secret_access_key) {
			rc = creds_set(out, x.access_key_id, x.secret_access_key, x.session_token,
				       trs__parse_iso8601(x.expiration), "web-identity", err);
			if (rc == 0)
				trs__log(p->ctx, TRS_LOG_DEBUG, "assumed a role with a web identity token", "role_arn",
					 role_arn, NULL);
		} else {
			rc = trs__error_set(err, TRS_EAUTH,
					    "STS AssumeRoleWithWebIdentity for %s failed (HTTP %ld%s%s%s%s): check the "
					    "role's trust policy and the token file",
					    role_arn, resp.status, x.code ? ", " : "", x.code ? x.code : "",
					    x.message ? ": " : "", x.message ? x.message : "");
			if (err && x.code)
				snprintf(err->aws_code, sizeof(err->aws_code), "%s", x.code);
		}
		trs__s3_xml_free(&x);
	} else if (rc != TRS_ENOMEM) {
		trs__error_prefix(err, "STS AssumeRoleWithWebIdentity");
		if (err)
			err->code = rc = TRS_EAUTH;
	}
	trs__http_response_free(&resp);
	if (form.data)
		memset(form.data, 0, form.len);
	trs__buf_free(&form);
	trs__buf_free(&url);
	memset(token, 0, strlen(token));
	free(token);
	return rc;
}

/* Walk the chain once. */
static int resolve(trs__cred_provider *p, trs__aws_credentials *out, trs_error *err)
{
	const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
	if (ak && sk)
		return creds_set(out, ak, sk, env("AWS_SESSION_TOKEN"), 0, "environment", err);
	int rc = from_shared_files(p->ctx, out, err);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (env("AWS_WEB_IDENTITY_TOKEN_FILE"))
		return from_web_identity(p, out, err);
	if (env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
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
				      "profile in ~/.aws/credentials, web identity, or run with an ECS task role or "
				      "EC2 instance role (instance metadata: %s)",
				      imds_err.message);
	}
	return trs__error_set(err, TRS_EAUTH,
			      "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile "
			      "in ~/.aws/credentials, web identity, or an ECS task role (EC2 instance metadata is "
			      "disabled by AWS_EC2_METADATA_DISABLED)");
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
	rc = creds_set(&(*out)->current, access_key_id, secret_access_key, session_token, 0, "static", err);
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
	const char *r = env("AWS_REGION");
	if (!r)
		r = env("AWS_DEFAULT_REGION");
	if (r) {
		*out = trs__strdup(r, err);
		return *out ? 0 : TRS_ENOMEM;
	}
	char *conf_path = config_path("AWS_CONFIG_FILE", ".aws/config", err);
	char *conf = conf_path ? read_file(conf_path, NULL, err) : NULL;
	free(conf_path);
	if (conf) {
		char section[512];
		config_section(profile_name(), section, sizeof(section));
		char *v = ini_get(conf, section, "region", NULL, err);
		free(conf);
		if (v && *v) {
			*out = v;
			return 0;
		}
		free(v);
	}
	if (http && !imds_disabled()) {
		char *base = imds_base(err);
		if (!base)
			return TRS_ENOMEM;
		char *body = NULL;
		trs_error ierr = TRS_ERROR_INIT;
		int rc = imds_get(http, base, "/latest/meta-data/placement/region", &body, &ierr);
		free(base);
		if (rc == 0 && body && *trim(body)) {
			char *t = trs__strdup(trim(body), err);
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
