/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS credential chain and region lookup, against stand-in ECS, EC2
 * metadata and STS endpoints served on 127.0.0.1 (tests/unit/mini_server.h).
 */
#include "harness.h"
#include "mini_server.h"
#include "aws/aws_config.h"
#include "aws/credentials.h"
#include "codec.h"
#include "aws/sts.h"

#include <stdlib.h>
#include <sys/stat.h>

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY-SECRET"
#define SESSION "IQoJb3JpZ2luX2VjEXAMPLE-SESSION-TOKEN"

static mini_server server;
static char tmpdir[256];

typedef struct fake_aws {
	int expires_in;           /* seconds from now for temporary credentials */
	const char *ecs_auth;     /* the Authorization the ECS endpoint demands */
	int ecs_status;           /* 0: 200 */
	int ecs_failures;         /* the first answers of the ECS endpoint are 500 */
	int sts_failures;         /* the first answers of STS are 503 Throttling */
	int sts_calls;            /* STS requests seen */
	int ecs_calls;
} fake_aws;

static fake_aws fake;

static void fake_handler(const mini_request *req, mini_response *resp, void *ud)
{
	fake_aws *f = ud;
	char exp[32], json[1024];
	time_t t = time(NULL) + f->expires_in;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(json, sizeof(json),
		 "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIATEMP\",\"SecretAccessKey\":\"%s\","
		 "\"Token\":\"%s\",\"Expiration\":\"%s\"}",
		 SECRET, SESSION, exp);
	const char *imds_token = mini_header(req, "X-aws-ec2-metadata-token");
	if (strcmp(req->method, "PUT") == 0 && strcmp(req->target, "/latest/api/token") == 0) {
		if (!mini_header(req, "X-aws-ec2-metadata-token-ttl-seconds"))
			resp->status = 400;
		else
			mini_set_body(resp, "imds-session-token");
	} else if (strncmp(req->target, "/latest/meta-data/", 18) == 0) {
		if (!imds_token || strcmp(imds_token, "imds-session-token") != 0)
			resp->status = 401;
		else if (strcmp(req->target, "/latest/meta-data/iam/security-credentials/") == 0)
			mini_set_body(resp, "test-role\n");
		else if (strcmp(req->target, "/latest/meta-data/iam/security-credentials/test-role") == 0)
			mini_set_body(resp, json);
		else if (strcmp(req->target, "/latest/meta-data/placement/region") == 0)
			mini_set_body(resp, "ap-southeast-2");
		else
			resp->status = 404;
	} else if (strncmp(req->target, "/ecs-creds", 10) == 0) {
		const char *auth = mini_header(req, "Authorization");
		if (f->ecs_calls++ < f->ecs_failures)
			resp->status = 500;
		else if (f->ecs_status)
			resp->status = f->ecs_status;
		else if (f->ecs_auth && (!auth || strcmp(auth, f->ecs_auth) != 0))
			resp->status = 403;
		else
			mini_set_body(resp, json);
	} else if (strcmp(req->method, "POST") == 0 && f->sts_calls++ < f->sts_failures) {
		resp->status = 503;
		mini_set_body(resp, "<ErrorResponse><Error><Code>Throttling</Code>"
				    "<Message>Rate exceeded</Message></Error></ErrorResponse>");
	} else if (strcmp(req->method, "POST") == 0 && strstr(req->body, "Action=AssumeRole&")) {
		/* Signed with the source profile's keys, for the profile's role and external id. */
		const char *auth = mini_header(req, "Authorization");
		if (!auth || !strstr(auth, "Credential=AKIASOURCE/") || !strstr(auth, "/sts/aws4_request") ||
		    !strstr(req->body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy") ||
		    !strstr(req->body, "ExternalId=ext-42") || !strstr(req->body, "RoleSessionName=ops")) {
			resp->status = 403;
			mini_set_body(resp, "<ErrorResponse><Error><Code>AccessDenied</Code>"
					    "<Message>not authorized</Message></Error></ErrorResponse>");
			return;
		}
		char xml[2048];
		snprintf(xml, sizeof(xml),
			 "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
			 "<SessionToken>%s</SessionToken><SecretAccessKey>%s</SecretAccessKey>"
			 "<Expiration>%s</Expiration><AccessKeyId>ASIAROLE</AccessKeyId></Credentials>"
			 "</AssumeRoleResult></AssumeRoleResponse>",
			 SESSION, SECRET, exp);
		mini_set_body(resp, xml);
	} else if (strcmp(req->method, "POST") == 0) {
		if (!strstr(req->body, "Action=AssumeRoleWithWebIdentity") ||
		    !strstr(req->body, "WebIdentityToken=eyJ-web-token") ||
		    !strstr(req->body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fpod")) {
			resp->status = 400;
			mini_set_body(resp, "<ErrorResponse><Error><Code>InvalidParameterValue</Code>"
					    "<Message>bad form</Message></Error></ErrorResponse>");
			return;
		}
		char xml[2048];
		snprintf(xml, sizeof(xml),
			 "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
			 "<SessionToken>%s</SessionToken><SecretAccessKey>%s</SecretAccessKey>"
			 "<Expiration>%s</Expiration><AccessKeyId>ASIAWEB</AccessKeyId></Credentials>"
			 "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
			 SESSION, SECRET, exp);
		mini_set_body(resp, xml);
	} else {
		resp->status = 404;
	}
}

static const char *const aws_vars[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
	"AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_DISABLED",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_MAX_ATTEMPTS",
};

/* Every test starts from a clean AWS environment that points nowhere real. */
static void clean_env(void)
{
	for (size_t i = 0; i < TRS_ARRAY_SIZE(aws_vars); i++)
		unsetenv(aws_vars[i]);
	char path[512];
	snprintf(path, sizeof(path), "%s/none", tmpdir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_CONFIG_FILE", path, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	memset(&fake, 0, sizeof(fake));
	fake.expires_in = 3600;
}

static void set_endpoint(const char *var, const char *path)
{
	char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", server.port, path);
	setenv(var, url, 1);
}

static void write_file(const char *name, const char *text, char *path_out, size_t path_len)
{
	snprintf(path_out, path_len, "%s/%s", tmpdir, name);
	FILE *f = fopen(path_out, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Everything the library logged, to prove no secret went there. */
static trs__buf logged;
static void capture_log(trs_log_level level, const char *message, const trs_log_field *fields, size_t n,
			void *ud)
{
	(void)level;
	(void)ud;
	trs__buf_printf(&logged, NULL, "%s", message);
	for (size_t i = 0; i < n; i++)
		trs__buf_printf(&logged, NULL, " %s=%s", fields[i].key, fields[i].value);
	trs__buf_puts(&logged, "\n", NULL);
}

static trs_ctx *debug_ctx(void)
{
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.log = capture_log;
	o.log_level = TRS_LOG_DEBUG;
	trs_ctx *ctx = NULL;
	trs_ctx_new(&ctx, &o, NULL);
	return ctx;
}

/* Resolve once with a fresh provider. */
static int get_once(trs__aws_credentials *c, trs_error *err)
{
	trs_ctx *ctx = debug_ctx();
	trs__http *http = NULL;
	trs__cred_provider *p = NULL;
	int rc = trs__http_new(&http, ctx, NULL, err);
	if (rc == 0)
		rc = trs__cred_provider_new(&p, ctx, http, err);
	if (rc == 0)
		rc = trs__cred_provider_get(p, false, c, err);
	trs__cred_provider_free(p);
	trs__http_free(http);
	trs_ctx_free(ctx);
	return rc;
}

TEST(environment_credentials_come_first)
{
	clean_env();
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_SESSION_TOKEN", SESSION, 1);
	set_endpoint("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/ecs-creds");
	int before = mini_count(&server);
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	int rc = get_once(&c, &err);
	int ok = rc == 0 && strcmp(c.access_key_id, "AKIAENV") == 0 && strcmp(c.session_token, SESSION) == 0 &&
		 strcmp(c.source, "environment") == 0 && c.expiration == 0;
	trs__aws_credentials_clear(&c);
	CHECK(ok);
	CHECK(mini_count(&server) == before);
}

TEST(shared_files_honour_aws_profile_in_both_files)
{
	clean_env();
	char cred[512], conf[512];
	write_file("credentials",
		   "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n\n"
		   "[other]\n aws_access_key_id=AKIAOTHER \naws_secret_access_key= " SECRET "\n",
		   cred, sizeof(cred));
	write_file("config", "[default]\nregion = us-west-2\n[profile cfgonly]\naws_access_key_id = AKIACFG\n"
			     "aws_secret_access_key = s3\naws_session_token = tok3\nregion = eu-central-1\n",
		   conf, sizeof(conf));
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	CHECK(get_once(&c, &err) == 0);
	int ok = strcmp(c.access_key_id, "AKIADEFAULT") == 0 && strcmp(c.source, "shared-file") == 0;
	trs__aws_credentials_clear(&c);
	CHECK(ok);

	setenv("AWS_PROFILE", "other", 1);
	CHECK(get_once(&c, &err) == 0);
	ok = strcmp(c.access_key_id, "AKIAOTHER") == 0 && strcmp(c.secret_access_key, SECRET) == 0 &&
	     !c.session_token;
	trs__aws_credentials_clear(&c);
	CHECK(ok);

	setenv("AWS_PROFILE", "cfgonly", 1);
	CHECK(get_once(&c, &err) == 0);
	ok = strcmp(c.access_key_id, "AKIACFG") == 0 && c.session_token && strcmp(c.session_token, "tok3") == 0;
	trs__aws_credentials_clear(&c);
	CHECK(ok);

	char *region = NULL;
	CHECK(trs__aws_region(NULL, NULL, &region, &err) == 0);
	ok = strcmp(region, "eu-central-1") == 0;
	free(region);
	CHECK(ok);
	unsetenv("AWS_PROFILE");
	CHECK(trs__aws_region(NULL, NULL, &region, &err) == 0);
	ok = strcmp(region, "us-west-2") == 0;
	free(region);
	CHECK(ok);
	setenv("AWS_DEFAULT_REGION", "sa-east-1", 1);
	CHECK(trs__aws_region(NULL, NULL, &region, &err) == 0);
	ok = strcmp(region, "sa-east-1") == 0;
	free(region);
	CHECK(ok);
	setenv("AWS_REGION", "ca-central-1", 1);
	CHECK(trs__aws_region(NULL, NULL, &region, &err) == 0);
	ok = strcmp(region, "ca-central-1") == 0;
	free(region);
	CHECK(ok);
}

TEST(unknown_explicit_profile_is_an_error_naming_it)
{
	clean_env();
	setenv("AWS_PROFILE", "no-such-profile", 1);
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "no-such-profile");
}

TEST(ecs_full_uri_sends_the_token_from_its_file)
{
	clean_env();
	char tokfile[512];
	write_file("ecs-token", "  ecs-auth-token-123\n", tokfile, sizeof(tokfile));
	set_endpoint("AWS_CONTAINER_CREDENTIALS_FULL_URI", "/ecs-creds");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokfile, 1);
	fake.ecs_auth = "ecs-auth-token-123";
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	int rc = get_once(&c, &err);
	if (rc)
		printf("  %s\n", err.message);
	int ok = rc == 0 && strcmp(c.access_key_id, "ASIATEMP") == 0 && strcmp(c.source, "ecs") == 0 &&
		 c.session_token && c.expiration > time(NULL) + 3000;
	trs__aws_credentials_clear(&c);
	CHECK(ok);

	/* The literal token variable works too, and a wrong one is refused without leaking it. */
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token-value", 1);
	rc = get_once(&c, &err);
	CHECK(rc == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "403");
	CHECK(!strstr(err.message, "wrong-token-value"));
	CHECK(fake.ecs_calls == 2); /* a 403 is not retried */

	/* Two 500s, then the answer: three tries, the policy's. */
	fake.ecs_calls = 0;
	fake.ecs_failures = 2;
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token-123", 1);
	rc = get_once(&c, &err);
	trs__aws_credentials_clear(&c);
	CHECK(rc == 0);
	CHECK(fake.ecs_calls == 3);
	fake.ecs_calls = 0;
	fake.ecs_failures = 3;
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "HTTP 500");
	CHECK(fake.ecs_calls == 3);
}

TEST(ecs_full_uri_to_a_remote_http_host_is_refused)
{
	clean_env();
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.1.1.example.com/creds", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token", 1);
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "FULL_URI");
}

TEST(imds_v2_takes_a_session_token_then_the_role)
{
	clean_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	set_endpoint("AWS_EC2_METADATA_SERVICE_ENDPOINT", "/");
	int before = mini_count(&server);
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	int rc = get_once(&c, &err);
	if (rc)
		printf("  %s\n", err.message);
	int ok = rc == 0 && strcmp(c.access_key_id, "ASIATEMP") == 0 && strcmp(c.source, "imds") == 0;
	trs__aws_credentials_clear(&c);
	CHECK(ok);
	/* token PUT, role list, role credentials: the two GETs carried the session token */
	CHECK(mini_count(&server) - before == 4);
	CHECK(strcmp(server.log[before].method, "PUT") == 0);
	CHECK_STR(server.log[before + 3].target, "/latest/meta-data/iam/security-credentials/test-role");
	CHECK_STR(mini_header(&server.log[before + 3], "X-aws-ec2-metadata-token"), "imds-session-token");
}

TEST(temporary_credentials_are_refreshed_five_minutes_early)
{
	clean_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	set_endpoint("AWS_EC2_METADATA_SERVICE_ENDPOINT", "");
	fake.expires_in = 120; /* inside the 5-minute margin: every get refreshes */
	trs__http *http = NULL;
	trs__cred_provider *p = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__http_new(&http, NULL, NULL, &err) == 0);
	CHECK(trs__cred_provider_new(&p, NULL, http, &err) == 0);
	trs__aws_credentials c;
	int n0 = mini_count(&server);
	int rc1 = trs__cred_provider_get(p, false, &c, &err);
	trs__aws_credentials_clear(&c);
	int n1 = mini_count(&server);
	int rc2 = trs__cred_provider_get(p, false, &c, &err);
	trs__aws_credentials_clear(&c);
	int n2 = mini_count(&server);
	fake.expires_in = 3600; /* far from expiry: cached */
	int rc3 = trs__cred_provider_get(p, true, &c, &err);
	trs__aws_credentials_clear(&c);
	int n3 = mini_count(&server);
	int rc4 = trs__cred_provider_get(p, false, &c, &err);
	trs__aws_credentials_clear(&c);
	int n4 = mini_count(&server);
	trs__cred_provider_free(p);
	trs__http_free(http);
	CHECK(rc1 == 0 && rc2 == 0 && rc3 == 0 && rc4 == 0);
	CHECK(n1 > n0);
	CHECK(n2 > n1);  /* refreshed: within the margin */
	CHECK(n3 > n2);  /* forced (ExpiredToken) */
	CHECK(n4 == n3); /* cached */
}

TEST(imds_disabled_means_no_credentials_and_says_so)
{
	clean_env();
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "AWS_EC2_METADATA_DISABLED");
}

/* A metadata endpoint that accepts connections but never answers must not hang us. */
TEST(imds_that_never_answers_fails_within_seconds)
{
	clean_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 4) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	double t0 = trs__now();
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	int rc = get_once(&c, &err);
	double took = trs__now() - t0;
	close(fd);
	CHECK(rc == TRS_EAUTH);
	CHECK(took < 3.0);
	CHECK_CONTAINS(err.message, "no AWS credentials found");
}

/* A clean environment for web identity: a token file, a role and the fake STS. */
static void web_identity_env(void)
{
	clean_env();
	char tokfile[512];
	write_file("web-token", "eyJ-web-token\n", tokfile, sizeof(tokfile));
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokfile, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod", 1);
	set_endpoint("AWS_ENDPOINT_URL_STS", "/");
}

TEST(web_identity_assumes_the_role_through_sts)
{
	web_identity_env();
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1/", 1); /* the STS-specific one wins */
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	int rc = get_once(&c, &err);
	if (rc)
		printf("  %s\n", err.message);
	int ok = rc == 0 && strcmp(c.access_key_id, "ASIAWEB") == 0 && strcmp(c.source, "web-identity") == 0 &&
		 c.expiration > time(NULL);
	trs__aws_credentials_clear(&c);
	CHECK(ok);

	unsetenv("AWS_ROLE_ARN");
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "AWS_ROLE_ARN");
}

TEST(sts_throttling_and_5xx_are_retried_through_the_aws_layer)
{
	web_identity_env();
	fake.sts_failures = 2; /* the third attempt succeeds */
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	int rc = get_once(&c, &err);
	if (rc)
		printf("  %s\n", err.message);
	int ok = rc == 0 && strcmp(c.access_key_id, "ASIAWEB") == 0;
	trs__aws_credentials_clear(&c);
	CHECK(ok);
	CHECK(fake.sts_calls == 3);
	CHECK_CONTAINS(logged.data, "STS request failed; retrying");

	/* AWS_MAX_ATTEMPTS bounds the tries; the failure names the code. */
	fake.sts_calls = 0;
	fake.sts_failures = 5;
	setenv("AWS_MAX_ATTEMPTS", "2", 1);
	rc = get_once(&c, &err);
	unsetenv("AWS_MAX_ATTEMPTS");
	CHECK(rc == TRS_EAUTH);
	CHECK(fake.sts_calls == 2);
	CHECK_CONTAINS(err.message, "Throttling");
}

TEST(sts_endpoint_follows_the_shared_endpoint_rules)
{
	clean_env();
	trs__buf url = TRS_BUF_INIT, auth = TRS_BUF_INIT;
	CHECK(trs__sts_endpoint("eu-west-1", &url, &auth, NULL) == 0);
	CHECK_STR(url.data, "https://sts.eu-west-1.amazonaws.com/");
	CHECK_STR(auth.data, "sts.eu-west-1.amazonaws.com");
	trs__buf_free(&url);
	trs__buf_free(&auth);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566", 1);
	CHECK(trs__sts_endpoint("eu-west-1", &url, &auth, NULL) == 0);
	CHECK_STR(url.data, "http://127.0.0.1:4566/");
	CHECK_STR(auth.data, "127.0.0.1:4566");
	trs__buf_free(&url);
	trs__buf_free(&auth);
	/* The old copy of this lookup forgot this one. */
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4567/sts", 1);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	CHECK(trs__sts_endpoint(NULL, &url, &auth, NULL) == 0);
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	CHECK_STR(url.data, "https://sts.amazonaws.com/");
	trs__buf_free(&url);
	trs__buf_free(&auth);
	CHECK(trs__sts_endpoint(NULL, &url, &auth, NULL) == 0);
	CHECK_STR(url.data, "http://127.0.0.1:4567/sts");
	trs__buf_free(&url);
	trs__buf_free(&auth);
}

TEST(region_falls_back_to_instance_metadata)
{
	clean_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	set_endpoint("AWS_EC2_METADATA_SERVICE_ENDPOINT", "");
	trs__http *http = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__http_new(&http, NULL, NULL, &err) == 0);
	char *region = NULL;
	int rc = trs__aws_region(NULL, http, &region, &err);
	int ok = rc == 0 && region && strcmp(region, "ap-southeast-2") == 0;
	free(region);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	int rc2 = trs__aws_region(NULL, http, &region, &err);
	trs__http_free(http);
	CHECK(ok);
	CHECK(rc2 == TRS_ENOTFOUND);
	CHECK_CONTAINS(err.message, "AWS_REGION");
}

TEST(static_provider_hands_out_its_keys)
{
	trs__cred_provider *p = NULL;
	CHECK(trs__cred_provider_new_static(&p, "AKIASTATIC", SECRET, NULL, NULL) == 0);
	trs__aws_credentials c;
	int rc = trs__cred_provider_get(p, true, &c, NULL);
	int ok = rc == 0 && strcmp(c.access_key_id, "AKIASTATIC") == 0 && !c.session_token;
	trs__aws_credentials_clear(&c);
	trs__cred_provider_free(p);
	CHECK(ok);
}

TEST(iso8601_timestamps_parse)
{
	CHECK(trs__parse_iso8601("2015-08-30T12:36:00Z") == 1440938160);
	CHECK(trs__parse_iso8601("2015-08-30T12:36:00.123Z") == 1440938160);
	CHECK(trs__parse_iso8601("2015-08-30T14:36:00+02:00") == 1440938160);
	CHECK(trs__parse_iso8601("garbage") == 0);
	CHECK(trs__parse_iso8601(NULL) == 0);
}

/* Run last: everything logged by the tests above must be free of secrets. */
TEST(no_secret_was_ever_logged)
{
	CHECK(logged.len > 0);
	CHECK(!strstr(logged.data, SECRET));
	CHECK(!strstr(logged.data, SESSION));
	CHECK(!strstr(logged.data, "ecs-auth-token-123"));
	CHECK(!strstr(logged.data, "imds-session-token"));
	CHECK(!strstr(logged.data, "eyJ-web-token"));
}

TEST(ini_sections_skip_nested_settings_and_the_credentials_file_wins)
{
	clean_env();
	char cred[512], conf[512];
	write_file("credentials", "[dev]\nAWS_Access_Key_ID = AKIACRED\n", cred, sizeof(cred));
	write_file("config",
		   "[profile dev]\naws_access_key_id = AKIACONF\ns3 =\n  region = nested-not-mine\n"
		   "  addressing_style = path\nregion = eu-north-1\n; comment\n[profile default]\nregion = r-def\n"
		   "[sso-session corp]\nregion = r-sso\n",
		   conf, sizeof(conf));
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);
	trs__aws_profile p;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__aws_profile_load("dev", &p, &err) == 0);
	CHECK(p.found);
	CHECK_STR(trs__aws_profile_get(&p, "aws_access_key_id"), "AKIACRED");
	CHECK_STR(trs__aws_profile_get(&p, "region"), "eu-north-1");
	CHECK(trs__aws_profile_get(&p, "addressing_style") == NULL);
	CHECK(trs__aws_profile_get(&p, "s3") == NULL); /* empty: a nested block's head */
	trs__aws_profile_free(&p);
	CHECK(trs__aws_profile_load("default", &p, &err) == 0);
	CHECK(p.found);
	CHECK_STR(trs__aws_profile_get(&p, "region"), "r-def");
	trs__aws_profile_free(&p);
	CHECK(trs__aws_profile_load("corp", &p, &err) == 0);
	CHECK(!p.found); /* an sso-session section is not a profile */
	trs__aws_profile_free(&p);
}

static void write_config(const char *text)
{
	char conf[512];
	write_file("config", text, conf, sizeof(conf));
	setenv("AWS_CONFIG_FILE", conf, 1);
}

TEST(credential_process_output_is_read_and_checked)
{
	clean_env();
	char exp[32];
	time_t t = time(NULL) + 7200;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	char text[1024];
	snprintf(text, sizeof(text),
		 "[profile proc]\ncredential_process = printf '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", "
		 "\"SecretAccessKey\": \"%s\", \"SessionToken\": \"%s\", \"Expiration\": \"%s\"}'\n"
		 "[profile failing]\ncredential_process = sh -c 'echo nope >&2; exit 3'\n"
		 "[profile noversion]\ncredential_process = echo '{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"B\"}'\n"
		 "[profile garbage]\ncredential_process = echo not json\n",
		 SECRET, SESSION, exp);
	write_config(text);
	setenv("AWS_PROFILE", "proc", 1);
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	int rc = get_once(&c, &err);
	if (rc)
		printf("  %s\n", err.message);
	int ok = rc == 0 && strcmp(c.access_key_id, "AKIAPROC") == 0 && strcmp(c.secret_access_key, SECRET) == 0 &&
		 c.session_token && strcmp(c.session_token, SESSION) == 0 && c.expiration == t &&
		 strcmp(c.source, "credential-process") == 0;
	trs__aws_credentials_clear(&c);
	CHECK(ok);
	setenv("AWS_PROFILE", "failing", 1);
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "credential_process of profile 'failing' exited with status 3");
	setenv("AWS_PROFILE", "noversion", 1);
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "\"Version\": 1");
	setenv("AWS_PROFILE", "garbage", 1);
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "did not print a JSON object");
}

TEST(role_arn_profile_assumes_the_role_with_its_source_profile)
{
	clean_env();
	char cred[512];
	write_file("credentials", "[base]\naws_access_key_id = AKIASOURCE\naws_secret_access_key = src-secret\n",
		   cred, sizeof(cred));
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	write_config("[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = base\n"
		     "external_id = ext-42\nrole_session_name = ops\nregion = eu-west-3\n"
		     "[profile chained]\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = deploy\n"
		     "[profile loop-a]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = loop-b\n"
		     "[profile loop-b]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = loop-a\n"
		     "[profile orphan]\nrole_arn = arn:aws:iam::123456789012:role/x\n"
		     "[profile mfa]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n"
		     "mfa_serial = arn:aws:iam::123456789012:mfa/me\n");
	set_endpoint("AWS_ENDPOINT_URL_STS", "/");
	setenv("AWS_PROFILE", "deploy", 1);
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	int rc = get_once(&c, &err);
	if (rc)
		printf("  %s\n", err.message);
	int ok = rc == 0 && strcmp(c.access_key_id, "ASIAROLE") == 0 && strcmp(c.source, "assume-role") == 0 &&
		 c.session_token && c.expiration > time(NULL);
	trs__aws_credentials_clear(&c);
	CHECK(ok);
	/* The role assumed for "chained" is signed with ASIAROLE, which the fake STS refuses. */
	setenv("AWS_PROFILE", "chained", 1);
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "AccessDenied");
	CHECK_CONTAINS(err.message, "profile 'chained'");
	setenv("AWS_PROFILE", "loop-a", 1);
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "a loop?");
	setenv("AWS_PROFILE", "orphan", 1);
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "neither source_profile nor credential_source");
	setenv("AWS_PROFILE", "mfa", 1);
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "aws configure export-credentials --profile mfa --format env");
}

TEST(sso_profile_is_refused_with_the_export_command)
{
	clean_env();
	write_config("[profile corp]\nsso_session = corp\nsso_account_id = 123456789012\n"
		     "sso_role_name = Admin\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n");
	setenv("AWS_PROFILE", "corp", 1);
	trs__aws_credentials c;
	trs_error err = TRS_ERROR_INIT;
	CHECK(get_once(&c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "IAM Identity Center (SSO), which trs does not support");
	CHECK_CONTAINS(err.message, "aws configure export-credentials --profile corp --format env");
	CHECK(strstr(err.message, "no AWS credentials found") == NULL);
}

TEST(context_profile_beats_environment_keys_and_gives_the_region)
{
	clean_env();
	write_config("[profile ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = ops-secret\n"
		     "region = ap-northeast-3\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.profile = "ops";
	trs_ctx *ctx = NULL;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_ctx_new(&ctx, &o, &err) == 0);
	CHECK_STR(trs_ctx_region(ctx), "ap-northeast-3");
	trs__http *http = NULL;
	trs__cred_provider *p = NULL;
	trs__aws_credentials c;
	memset(&c, 0, sizeof(c));
	CHECK(trs__http_new(&http, ctx, NULL, &err) == 0);
	CHECK(trs__cred_provider_new(&p, ctx, http, &err) == 0);
	CHECK(trs__cred_provider_get(p, false, &c, &err) == 0);
	CHECK(c.access_key_id && strcmp(c.access_key_id, "AKIAOPS") == 0);
	trs__aws_credentials_clear(&c);
	trs__cred_provider_free(p);
	trs__http_free(http);
	trs_ctx_free(ctx);
	/* Without the option the environment's keys come first, and AWS_REGION beats the profile. */
	setenv("AWS_PROFILE", "ops", 1);
	CHECK(get_once(&c, &err) == 0);
	CHECK(c.access_key_id && strcmp(c.access_key_id, "AKIAENV") == 0);
	trs__aws_credentials_clear(&c);
	setenv("AWS_REGION", "us-east-2", 1);
	CHECK(trs_ctx_new(&ctx, NULL, &err) == 0);
	CHECK_STR(trs_ctx_region(ctx), "us-east-2");
	trs_ctx_free(ctx);
	o.profile = "missing";
	unsetenv("AWS_ACCESS_KEY_ID");
	CHECK(trs_ctx_new(&ctx, &o, &err) == 0);
	CHECK(trs__http_new(&http, ctx, NULL, &err) == 0);
	CHECK(trs__cred_provider_new(&p, ctx, http, &err) == 0);
	CHECK(trs__cred_provider_get(p, false, &c, &err) == TRS_EAUTH);
	CHECK_CONTAINS(err.message, "profile 'missing' (--profile)");
	trs__cred_provider_free(p);
	trs__http_free(http);
	trs_ctx_free(ctx);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/trs-test-credentials-XXXXXX");
	if (!mkdtemp(tmpdir) || mini_start(&server, fake_handler, &fake) < 0) {
		printf("FAIL setup: cannot create a temporary directory or a loopback server\n");
		return 1;
	}
	RUN(environment_credentials_come_first);
	RUN(shared_files_honour_aws_profile_in_both_files);
	RUN(unknown_explicit_profile_is_an_error_naming_it);
	RUN(ecs_full_uri_sends_the_token_from_its_file);
	RUN(ecs_full_uri_to_a_remote_http_host_is_refused);
	RUN(imds_v2_takes_a_session_token_then_the_role);
	RUN(temporary_credentials_are_refreshed_five_minutes_early);
	RUN(imds_disabled_means_no_credentials_and_says_so);
	RUN(imds_that_never_answers_fails_within_seconds);
	RUN(web_identity_assumes_the_role_through_sts);
	RUN(sts_throttling_and_5xx_are_retried_through_the_aws_layer);
	RUN(sts_endpoint_follows_the_shared_endpoint_rules);
	RUN(region_falls_back_to_instance_metadata);
	RUN(static_provider_hands_out_its_keys);
	RUN(iso8601_timestamps_parse);
	RUN(ini_sections_skip_nested_settings_and_the_credentials_file_wins);
	RUN(credential_process_output_is_read_and_checked);
	RUN(role_arn_profile_assumes_the_role_with_its_source_profile);
	RUN(sso_profile_is_refused_with_the_export_command);
	RUN(context_profile_beats_environment_keys_and_gives_the_region);
	RUN(no_secret_was_ever_logged);
	mini_stop(&server);
	trs__buf_free(&logged);
	const char *files[] = {"credentials", "config", "ecs-token", "web-token"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(files); i++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
		unlink(p);
	}
	rmdir(tmpdir);
	return harness_done();
}
