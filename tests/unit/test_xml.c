/* SPDX-License-Identifier: Apache-2.0 */
/* S3 XML answers: each kind the backend relies on, and hostile input. */
#include "harness.h"
#include "aws/xml.h"

#include <stdlib.h>

static char *corpus(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "../fuzz/corpus/xml/%s", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	trs__buf b = TRS_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		trs__buf_put(&b, chunk, n, NULL);
	fclose(f);
	*len = b.len;
	return b.data;
}

static int parse_file(const char *name, trs__aws_xml *x, trs_error *err)
{
	size_t len = 0;
	char *data = corpus(name, &len);
	if (!data) {
		printf("  cannot read corpus file %s\n", name);
		memset(x, 0, sizeof(*x));
		return -100;
	}
	int rc = trs__aws_xml_parse(data, len, x, err);
	free(data);
	return rc;
}

TEST(xml_error_gives_code_message_and_request_id)
{
	trs__aws_xml x;
	trs_error err = TRS_ERROR_INIT;
	int rc = parse_file("error_nosuchbucket.xml", &x, &err);
	int ok = rc == 0 && x.kind == TRS_AWS_XML_ERROR && x.code && strcmp(x.code, "NoSuchBucket") == 0 &&
		 x.message && strstr(x.message, "does not exist") && x.request_id &&
		 strcmp(x.request_id, "4442587FB7D0A2F9") == 0;
	trs__aws_xml_free(&x);
	CHECK(ok);
}

TEST(xml_initiate_gives_upload_id)
{
	trs__aws_xml x;
	int rc = parse_file("initiate.xml", &x, NULL);
	int ok = rc == 0 && x.kind == TRS_AWS_XML_INITIATE && x.upload_id &&
		 strcmp(x.upload_id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA") == 0;
	trs__aws_xml_free(&x);
	CHECK(ok);
}

TEST(xml_complete_gives_etag_with_quotes)
{
	trs__aws_xml x;
	int rc = parse_file("complete.xml", &x, NULL);
	int ok = rc == 0 && x.kind == TRS_AWS_XML_COMPLETE && x.etag &&
		 strcmp(x.etag, "\"3858f62230ac3c915f300c664312c11f-9\"") == 0;
	trs__aws_xml_free(&x);
	CHECK(ok);
}

/* CompleteMultipartUpload can answer 200 with an Error body: it must read as an error. */
TEST(xml_error_inside_a_200_answer_is_an_error)
{
	trs__aws_xml x;
	int rc = parse_file("complete_error_in_200.xml", &x, NULL);
	int ok = rc == 0 && x.kind == TRS_AWS_XML_ERROR && x.code && strcmp(x.code, "InternalError") == 0 &&
		 !x.etag;
	trs__aws_xml_free(&x);
	CHECK(ok);
}

TEST(xml_copy_results_give_etag)
{
	trs__aws_xml x;
	int rc = parse_file("copy_object.xml", &x, NULL);
	int ok = rc == 0 && x.kind == TRS_AWS_XML_COPY_OBJECT && x.etag &&
		 strcmp(x.etag, "\"9b2cf535f27731c974343645a3985328\"") == 0;
	trs__aws_xml_free(&x);
	CHECK(ok);
	rc = parse_file("copy_part.xml", &x, NULL);
	ok = rc == 0 && x.kind == TRS_AWS_XML_COPY_PART && x.etag != NULL;
	trs__aws_xml_free(&x);
	CHECK(ok);
}

TEST(xml_tagging_gives_pairs_with_entities_decoded)
{
	trs__aws_xml x;
	int rc = parse_file("tagging.xml", &x, NULL);
	int ok = rc == 0 && x.kind == TRS_AWS_XML_TAGGING && x.ntags == 2 &&
		 strcmp(x.tags[0].key, "team") == 0 && strcmp(x.tags[0].value, "finance & ops") == 0 &&
		 strcmp(x.tags[1].key, "OriginalETag") == 0;
	trs__aws_xml_free(&x);
	CHECK(ok);
}

TEST(xml_list_parts_gives_numbers_sizes_and_truncation)
{
	trs__aws_xml x;
	int rc = parse_file("list_parts.xml", &x, NULL);
	int ok = rc == 0 && x.kind == TRS_AWS_XML_LIST_PARTS && x.nparts == 2 && x.parts[0].number == 2 &&
		 x.parts[1].size == 10485760 && x.is_truncated;
	trs__aws_xml_free(&x);
	CHECK(ok);
}

TEST(xml_sts_credentials_and_sts_error)
{
	trs__aws_xml x;
	int rc = parse_file("sts_web_identity.xml", &x, NULL);
	int ok = rc == 0 && x.kind == TRS_AWS_XML_STS_CREDENTIALS && x.access_key_id &&
		 strcmp(x.access_key_id, "ASgeIAIOSFODNN7EXAMPLE") == 0 && x.secret_access_key &&
		 x.session_token && x.expiration && strcmp(x.expiration, "2014-10-24T23:00:23Z") == 0;
	trs__aws_xml_free(&x);
	CHECK(ok);
	rc = parse_file("sts_error.xml", &x, NULL);
	ok = rc == 0 && x.kind == TRS_AWS_XML_ERROR && x.code && strcmp(x.code, "InvalidIdentityToken") == 0 &&
	     x.request_id != NULL;
	trs__aws_xml_free(&x);
	CHECK(ok);
}

TEST(xml_refuses_doctype_and_entities)
{
	trs__aws_xml x;
	trs_error err = TRS_ERROR_INIT;
	int rc = parse_file("doctype_entities.xml", &x, &err);
	trs__aws_xml_free(&x);
	CHECK(rc == TRS_EHTTP);
	CHECK_CONTAINS(err.message, "DOCTYPE");
}

TEST(xml_refuses_garbage_truncation_and_depth)
{
	static const char *bad[] = {"", "not xml", "<Error><Code>x</Code>", "<a></b>", "<Error>\x01</Error>"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(bad); i++) {
		trs__aws_xml x;
		trs_error err = TRS_ERROR_INIT;
		int rc = trs__aws_xml_parse(bad[i], strlen(bad[i]), &x, &err);
		trs__aws_xml_free(&x);
		CHECK(rc == TRS_EHTTP);
	}
	trs__buf deep = TRS_BUF_INIT;
	for (int i = 0; i < 100; i++)
		trs__buf_puts(&deep, "<a>", NULL);
	for (int i = 0; i < 100; i++)
		trs__buf_puts(&deep, "</a>", NULL);
	trs__aws_xml x;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__aws_xml_parse(deep.data, deep.len, &x, &err);
	trs__aws_xml_free(&x);
	trs__buf_free(&deep);
	CHECK(rc == TRS_EHTTP);
	CHECK_CONTAINS(err.message, "deep");
}

TEST(xml_escape_escapes_markup)
{
	trs__buf b = TRS_BUF_INIT;
	CHECK(trs__xml_escape(&b, "\"e<t>&'", NULL) == 0);
	int ok = strcmp(b.data, "&quot;e&lt;t&gt;&amp;&apos;") == 0;
	trs__buf_free(&b);
	CHECK(ok);
}

int main(void)
{
	RUN(xml_error_gives_code_message_and_request_id);
	RUN(xml_initiate_gives_upload_id);
	RUN(xml_complete_gives_etag_with_quotes);
	RUN(xml_error_inside_a_200_answer_is_an_error);
	RUN(xml_copy_results_give_etag);
	RUN(xml_tagging_gives_pairs_with_entities_decoded);
	RUN(xml_list_parts_gives_numbers_sizes_and_truncation);
	RUN(xml_sts_credentials_and_sts_error);
	RUN(xml_refuses_doctype_and_entities);
	RUN(xml_refuses_garbage_truncation_and_depth);
	RUN(xml_escape_escapes_markup);
	return harness_done();
}
