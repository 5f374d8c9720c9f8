/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SigV4: every case of the official AWS test suite (tests/fixtures/
 * sigv4-test-suite), signed in header mode and in query (presign) mode and
 * compared byte for byte; plus S3's path rules and key encoding.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strptime, timegm, strndup */
#endif
#include "harness.h"
#include "aws/sigv4.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* When set, run_case signs through this key cache (shared by every case). */
static trs__sigv4_key_cache *suite_cache;

static const char *suite_dir(void)
{
	const char *d = getenv("TRS_SIGV4_SUITE");
	return d && *d ? d : "fixtures/sigv4-test-suite";
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	trs__buf b = TRS_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (trs__buf_put(&b, chunk, n, NULL) < 0)
			break;
	fclose(f);
	if (trs__buf_puts(&b, "", NULL) < 0) {
		trs__buf_free(&b);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.data;
}

/* The value of "key": "string" in a flat JSON file (enough for context.json). */
static char *json_str(const char *json, const char *key)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *p = strstr(json, pat);
	if (!p)
		return NULL;
	p = strchr(p + strlen(pat), ':');
	if (!p)
		return NULL;
	p++;
	while (*p == ' ' || *p == '\n')
		p++;
	if (*p != '"') {
		const char *e = p;
		while (*e && *e != ',' && *e != '\n' && *e != '}')
			e++;
		return strndup(p, (size_t)(e - p));
	}
	p++;
	const char *e = strchr(p, '"');
	return e ? strndup(p, (size_t)(e - p)) : NULL;
}

typedef struct parsed_request {
	char *method, *path, *query;
	trs_kv headers[32];
	char *names[32], *values[32];
	size_t nheaders;
	const char *body;
	size_t body_len;
} parsed_request;

/* request.txt: request line, headers (continuation lines folded in), blank line, body. */
static int parse_request(char *text, size_t len, parsed_request *r)
{
	memset(r, 0, sizeof(*r));
	char *end = text + len;
	char *nl = strchr(text, '\n');
	if (!nl)
		nl = end;
	char *sp = memchr(text, ' ', (size_t)(nl - text));
	char *proto = NULL;
	for (char *p = nl - 1; p > text; p--)
		if (*p == ' ') {
			proto = p;
			break;
		}
	if (!sp || !proto || proto <= sp)
		return -1;
	r->method = strndup(text, (size_t)(sp - text));
	char *target = strndup(sp + 1, (size_t)(proto - sp - 1));
	char *q = strchr(target, '?');
	if (q) {
		r->query = strdup(q + 1);
		*q = '\0';
	}
	r->path = target;
	char *line = nl < end ? nl + 1 : end;
	while (line < end) {
		char *le = memchr(line, '\n', (size_t)(end - line));
		if (!le)
			le = end;
		if (le == line) { /* blank line: the body follows */
			r->body = le + 1 <= end ? le + 1 : end;
			r->body_len = (size_t)(end - r->body);
			break;
		}
		if ((*line == ' ' || *line == '\t') && r->nheaders) {
			char *prev = r->values[r->nheaders - 1];
			size_t pl = strlen(prev), ll = (size_t)(le - line);
			char *nv = malloc(pl + 1 + ll + 1);
			memcpy(nv, prev, pl);
			nv[pl] = '\n';
			memcpy(nv + pl + 1, line, ll);
			nv[pl + 1 + ll] = '\0';
			free(prev);
			r->values[r->nheaders - 1] = nv;
		} else if (r->nheaders < 32) {
			char *colon = memchr(line, ':', (size_t)(le - line));
			if (!colon)
				return -1;
			r->names[r->nheaders] = strndup(line, (size_t)(colon - line));
			r->values[r->nheaders] = strndup(colon + 1, (size_t)(le - colon - 1));
			r->nheaders++;
		}
		line = le + 1;
	}
	for (size_t i = 0; i < r->nheaders; i++) {
		r->headers[i].key = r->names[i];
		r->headers[i].value = r->values[i];
	}
	return 0;
}

static void free_request(parsed_request *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->names[i]);
		free(r->values[i]);
	}
}

static time_t parse_time(const char *iso)
{
	struct tm tm = {0};
	if (!iso || !strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return 0;
	return timegm(&tm);
}

static int expect_file(const char *dir, const char *name, const char *got, const char *mode)
{
	char *want = slurp(dir, name, NULL);
	if (!want) {
		printf("  %s: cannot read %s\n", dir, name);
		return -1;
	}
	int ok = got && strcmp(want, got) == 0;
	if (!ok)
		printf("  %s (%s): %s differs\n--- want\n%s\n--- got\n%s\n", dir, mode, name, want,
		       got ? got : "(null)");
	free(want);
	return ok ? 0 : -1;
}

/* Sign one suite case in one mode; 0 when every expected file matches. */
static int run_case(const char *dir, bool presign)
{
	size_t rlen = 0;
	char *ctxjson = slurp(dir, "context.json", NULL);
	char *reqtxt = slurp(dir, "request.txt", &rlen);
	parsed_request r;
	int rc = -1;
	char *ak = NULL, *sk = NULL, *token = NULL, *region = NULL, *service = NULL, *ts = NULL,
	     *normalize = NULL, *sign_body = NULL, *omit = NULL, *expires = NULL;
	memset(&r, 0, sizeof(r));
	if (!ctxjson || !reqtxt || parse_request(reqtxt, rlen, &r) < 0) {
		printf("  %s: unreadable case\n", dir);
		goto out;
	}
	ak = json_str(ctxjson, "access_key_id");
	sk = json_str(ctxjson, "secret_access_key");
	token = json_str(ctxjson, "token");
	region = json_str(ctxjson, "region");
	service = json_str(ctxjson, "service");
	ts = json_str(ctxjson, "timestamp");
	normalize = json_str(ctxjson, "normalize");
	sign_body = json_str(ctxjson, "sign_body");
	omit = json_str(ctxjson, "omit_session_token");
	expires = json_str(ctxjson, "expiration_in_seconds");

	trs__sigv4_credentials creds = {ak, sk, token};
	trs__sigv4_options o = TRS_SIGV4_GENERIC(service);
	o.region = region;
	o.now = parse_time(ts);
	o.normalize_path = !normalize || strcmp(normalize, "true") == 0;
	o.double_encode = true;
	o.content_sha256_header = sign_body && strcmp(sign_body, "true") == 0;
	o.omit_session_token = omit && strcmp(omit, "true") == 0;
	o.presign = presign;
	o.expires = expires ? (unsigned int)strtoul(expires, NULL, 10) : 3600;
	o.key_cache = suite_cache;

	char body_hash[TRS_SHA256_HEX_LEN + 1];
	trs__sha256_hex(r.body ? r.body : "", r.body_len, body_hash);
	trs__sigv4_request req = {r.method, r.path, r.query, r.headers, r.nheaders, body_hash};
	trs__sigv4_result res;
	trs_error err = TRS_ERROR_INIT;
	if (trs__sigv4_sign(&creds, &o, &req, &res, &err) < 0) {
		printf("  %s: sign failed: %s\n", dir, err.message);
		trs__sigv4_result_free(&res);
		goto out;
	}
	const char *mode = presign ? "query" : "header";
	char name[64];
	rc = 0;
	snprintf(name, sizeof(name), "%s-canonical-request.txt", mode);
	rc |= expect_file(dir, name, res.canonical_request.data, mode);
	snprintf(name, sizeof(name), "%s-string-to-sign.txt", mode);
	rc |= expect_file(dir, name, res.string_to_sign.data, mode);
	snprintf(name, sizeof(name), "%s-signature.txt", mode);
	rc |= expect_file(dir, name, res.signature, mode);

	/* The signed request must carry what we produced. */
	snprintf(name, sizeof(name), "%s-signed-request.txt", mode);
	char *signed_req = slurp(dir, name, NULL);
	trs__buf want = TRS_BUF_INIT;
	if (presign)
		trs__buf_printf(&want, NULL, "X-Amz-Signature=%s", res.signature);
	else
		trs__buf_printf(&want, NULL, "Authorization:%s\n", res.authorization.data);
	if (!signed_req || !want.data || !strstr(signed_req, want.data)) {
		printf("  %s (%s): signed request lacks \"%s\"\n", dir, mode, want.data ? want.data : "");
		rc = -1;
	}
	free(signed_req);
	trs__buf_free(&want);
	trs__sigv4_result_free(&res);
out:
	free(ak);
	free(sk);
	free(token);
	free(region);
	free(service);
	free(ts);
	free(normalize);
	free(sign_body);
	free(omit);
	free(expires);
	free_request(&r);
	free(ctxjson);
	free(reqtxt);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One PASS/FAIL line per case and mode; `label` names the run. */
static void run_suite(const char *label)
{
	DIR *d = opendir(suite_dir());
	if (!d) {
		printf("FAIL sigv4_suite_present: cannot open %s\n", suite_dir());
		harness_failed_total++;
		return;
	}
	char *names[256];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 256) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s/context.json", suite_dir(), e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		fclose(f);
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	if (n < 30) {
		printf("FAIL sigv4_suite_complete: only %zu cases found\n", n);
		harness_failed_total++;
	}
	for (size_t i = 0; i < n; i++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s", suite_dir(), names[i]);
		for (int presign = 0; presign < 2; presign++) {
			int rc = run_case(dir, presign);
			printf("%s %s/%s/%s\n", rc == 0 ? "PASS" : "FAIL", label, names[i],
			       presign ? "query" : "header");
			if (rc == 0)
				harness_passed_total++;
			else
				harness_failed_total++;
		}
		free(names[i]);
	}
	fflush(stdout);
}

static char *encode(const char *s, bool keep_slash)
{
	trs__buf b = TRS_BUF_INIT;
	if (trs__uri_encode(&b, s, strlen(s), keep_slash, NULL) < 0 || trs__buf_puts(&b, "", NULL) < 0) {
		trs__buf_free(&b);
		return NULL;
	}
	return b.data;
}

TEST(s3_key_encoding_keeps_slash_and_escapes_the_rest)
{
	static const struct {
		const char *key, *want;
	} cases[] = {
		{"plain/key.txt", "plain/key.txt"},
		{"report final.csv", "report%20final.csv"},
		{"a+b", "a%2Bb"},
		{"100%", "100%25"},
		{"!*'();:@&=$,", "%21%2A%27%28%29%3B%3A%40%26%3D%24%2C"},
		{"d\xc3\xa9j\xc3\xa0/\xe6\x97\xa5\xe6\x9c\xac", "d%C3%A9j%C3%A0/%E6%97%A5%E6%9C%AC"},
		{"-._~", "-._~"},
		{"a//b/./c/../d", "a//b/./c/../d"},
		{"?#[]", "%3F%23%5B%5D"},
	};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(cases); i++) {
		char *got = encode(cases[i].key, true);
		int same = got && strcmp(got, cases[i].want) == 0;
		if (!same)
			printf("  key \"%s\": got \"%s\", want \"%s\"\n", cases[i].key, got ? got : "(null)",
			       cases[i].want);
		free(got);
		CHECK(same);
	}
	char *q = encode("a/b c", false);
	CHECK(q != NULL);
	int ok = strcmp(q, "a%2Fb%20c") == 0;
	free(q);
	CHECK(ok);
}

/* The GET Object example of the S3 SigV4 documentation. */
TEST(s3_documented_get_object_example)
{
	trs__sigv4_credentials creds = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
	trs__sigv4_options o = TRS_SIGV4_S3;
	o.region = "us-east-1";
	o.now = 1369353600; /* 2013-05-24T00:00:00Z */
	trs_kv h[] = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
	trs__sigv4_request req = {"GET", "/test.txt", NULL, h, 2, NULL};
	trs__sigv4_result res;
	int rc = trs__sigv4_sign(&creds, &o, &req, &res, NULL);
	int ok = rc == 0 && strcmp(res.signature,
				   "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41") == 0;
	if (!ok)
		printf("  canonical request:\n%s\n  signature %s\n", res.canonical_request.data, res.signature);
	int has_sha = res.nadd_headers == 3 && strcmp(res.add_headers[1].key, "x-amz-content-sha256") == 0;
	trs__sigv4_result_free(&res);
	CHECK(ok);
	CHECK(has_sha);
}

/* S3 signs the path as sent: no normalization and no second encoding. */
TEST(s3_rules_sign_the_wire_path_verbatim)
{
	trs__sigv4_credentials creds = {"AKID", "SECRET", "TOKEN"};
	trs__sigv4_options o = TRS_SIGV4_S3;
	o.region = "eu-west-1";
	o.now = 1700000000;
	trs_kv h[] = {{"Host", "127.0.0.1:9000"}};
	trs__sigv4_request req = {"PUT", "/bucket/a//b/./c/../d%20e%2Bf%25", "uploadId=x%2By&partNumber=2", h,
				  1, TRS_SIGV4_UNSIGNED_PAYLOAD};
	trs__sigv4_result res;
	int rc = trs__sigv4_sign(&creds, &o, &req, &res, NULL);
	CHECK(rc == 0);
	char *cr = strdup(res.canonical_request.data);
	size_t nadd = res.nadd_headers;
	trs__sigv4_result_free(&res);
	CHECK(cr != NULL);
	const char *want = "PUT\n/bucket/a//b/./c/../d%20e%2Bf%25\npartNumber=2&uploadId=x%2By\n";
	int path_ok = strncmp(cr, want, strlen(want)) == 0;
	int token_signed = strstr(cr, "x-amz-security-token:TOKEN\n") != NULL;
	int unsigned_payload = strstr(cr, "x-amz-content-sha256:UNSIGNED-PAYLOAD\n") != NULL;
	if (!path_ok || !token_signed || !unsigned_payload)
		printf("  canonical request:\n%s\n", cr);
	free(cr);
	CHECK(path_ok);
	CHECK(token_signed);
	CHECK(unsigned_payload);
	CHECK(nadd == 4);
}

TEST(sign_refuses_missing_credentials)
{
	trs__sigv4_credentials creds = {NULL, NULL, NULL};
	trs__sigv4_options o = TRS_SIGV4_S3;
	o.region = "us-east-1";
	trs_kv h[] = {{"Host", "x"}};
	trs__sigv4_request req = {"GET", "/", NULL, h, 1, NULL};
	trs__sigv4_result res;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__sigv4_sign(&creds, &o, &req, &res, &err) == TRS_EINVAL);
	trs__sigv4_result_free(&res);
	CHECK_CONTAINS(err.message, "credentials");
}

/* The signature of one request under a fixed time, with or without a cache. */
static void sign_one(trs__sigv4_key_cache *cache, const char *secret, time_t now, const char *region,
		     const char *service, const char *path, char out[TRS_SHA256_HEX_LEN + 1])
{
	trs__sigv4_credentials creds = {"AKID", secret, NULL};
	trs__sigv4_options o = TRS_SIGV4_S3;
	o.region = region;
	o.service = service;
	o.now = now;
	o.key_cache = cache;
	trs_kv h[] = {{"Host", "127.0.0.1:9000"}, {"X-Amz-Meta-A", "  spaced   out\tvalue  "}};
	trs__sigv4_request req = {"PUT", path, NULL, h, 2, TRS_SHA256_EMPTY};
	trs__sigv4_result res;
	if (trs__sigv4_sign(&creds, &o, &req, &res, NULL) == 0)
		memcpy(out, res.signature, TRS_SHA256_HEX_LEN + 1);
	else
		out[0] = '\0';
	trs__sigv4_result_free(&res);
}

/* A cached key is used only for its own secret, day, region and service:
 * every change of one of them signs as a client without a cache would. */
TEST(key_cache_signs_as_without_one_whatever_changes)
{
	static const struct {
		const char *secret;
		time_t now;
		const char *region, *service;
	} steps[] = {
		{"S1", 1700000000, "eu-west-1", "s3"},
		{"S1", 1700000100, "eu-west-1", "s3"},        /* same day: the cached key */
		{"S2", 1700000200, "eu-west-1", "s3"},        /* rotated credentials */
		{"S2", 1700000200 + 86400, "eu-west-1", "s3"}, /* the next day */
		{"S2", 1700086700, "us-east-1", "s3"},        /* another region */
		{"S2", 1700086700, "us-east-1", "sqs"},       /* another service */
		{"S1", 1700000000, "eu-west-1", "s3"},        /* back to the first */
		{"S1", 1700000000, "eu-west-1", "s3"},
	};
	trs__sigv4_key_cache cache;
	trs__sigv4_key_cache_init(&cache);
	char prev[TRS_SHA256_HEX_LEN + 1] = "";
	for (size_t i = 0; i < TRS_ARRAY_SIZE(steps); i++) {
		char with[TRS_SHA256_HEX_LEN + 1], without[TRS_SHA256_HEX_LEN + 1];
		sign_one(&cache, steps[i].secret, steps[i].now, steps[i].region, steps[i].service, "/b/k", with);
		sign_one(NULL, steps[i].secret, steps[i].now, steps[i].region, steps[i].service, "/b/k", without);
		if (strcmp(with, without))
			printf("  step %zu: cached %s, derived %s\n", i, with, without);
		CHECK(with[0] != '\0');
		CHECK_STR(with, without);
		/* each step but the repeated last signs something new */
		if (i + 1 < TRS_ARRAY_SIZE(steps))
			CHECK(strcmp(with, prev) != 0);
		memcpy(prev, with, sizeof(prev));
	}
	trs__sigv4_key_cache_free(&cache);
}

/* White space in a header value signs as one space between words. */
TEST(header_values_are_trimmed_and_runs_of_space_collapsed)
{
	trs__sigv4_credentials creds = {"AKID", "SECRET", NULL};
	trs__sigv4_options o = TRS_SIGV4_S3;
	o.region = "eu-west-1";
	o.now = 1700000000;
	trs_kv h[] = {{"Host", "h"}, {"X-A", "  a   b\t\tc  "}, {"X-B", " \t "}, {"x-a", "d"}};
	trs__sigv4_request req = {"GET", "/", NULL, h, 4, NULL};
	trs__sigv4_result res;
	CHECK(trs__sigv4_sign(&creds, &o, &req, &res, NULL) == 0);
	int ok = strstr(res.canonical_request.data, "\nx-a:a b c,d\n") && strstr(res.canonical_request.data, "\nx-b:\n");
	if (!ok)
		printf("  canonical request:\n%s\n", res.canonical_request.data);
	trs__sigv4_result_free(&res);
	CHECK(ok);
}

typedef struct {
	trs__sigv4_key_cache *cache;
	int id;
	int mismatches;
	char want[2][TRS_SHA256_HEX_LEN + 1];
} signer;

static void *sign_many(void *arg)
{
	signer *s = arg;
	for (int i = 0; i < 200; i++) {
		int which = (i + s->id) % 2;
		char got[TRS_SHA256_HEX_LEN + 1];
		sign_one(s->cache, which ? "S2" : "S1", 1700000000, "eu-west-1", "s3", "/b/k", got);
		if (strcmp(got, s->want[which]))
			s->mismatches++;
	}
	return NULL;
}

/* Writer threads share their client's cache: secrets that change under
 * them (a refresh) never give a signature of the other secret. */
TEST(key_cache_shared_by_threads_that_see_the_secret_change)
{
	trs__sigv4_key_cache cache;
	trs__sigv4_key_cache_init(&cache);
	signer s[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		s[i] = (signer){&cache, i, 0, {"", ""}};
		sign_one(NULL, "S1", 1700000000, "eu-west-1", "s3", "/b/k", s[i].want[0]);
		sign_one(NULL, "S2", 1700000000, "eu-west-1", "s3", "/b/k", s[i].want[1]);
	}
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, sign_many, &s[i]) == 0);
	int mismatches = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		mismatches += s[i].mismatches;
	}
	trs__sigv4_key_cache_free(&cache);
	CHECK(strcmp(s[0].want[0], s[0].want[1]) != 0);
	CHECK(mismatches == 0);
}

int main(void)
{
	run_suite("sigv4_suite");
	trs__sigv4_key_cache cache;
	trs__sigv4_key_cache_init(&cache);
	suite_cache = &cache;
	run_suite("sigv4_suite_cached");
	suite_cache = NULL;
	trs__sigv4_key_cache_free(&cache);
	RUN(key_cache_signs_as_without_one_whatever_changes);
	RUN(header_values_are_trimmed_and_runs_of_space_collapsed);
	RUN(key_cache_shared_by_threads_that_see_the_secret_change);
	RUN(s3_key_encoding_keeps_slash_and_escapes_the_rest);
	RUN(s3_documented_get_object_example);
	RUN(s3_rules_sign_the_wire_path_verbatim);
	RUN(sign_refuses_missing_credentials);
	return harness_done();
}
