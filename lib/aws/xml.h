/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS's XML answers (private), parsed with expat: S3's results and errors,
 * STS's credentials, and the <ErrorResponse> of STS and CloudWatch.
 *
 * One entry point reads every answer the callers care about and reports
 * which one it was; the fields that answer does not carry stay NULL. It is
 * also the libFuzzer entry point (fuzz/fuzz_xml.c): whatever the bytes,
 * it returns 0 or a negative code and leaks nothing.
 *
 * DOCTYPE declarations are refused, so no entity expansion can happen.
 */
#ifndef TRS_XML_H
#define TRS_XML_H

#include "internal.h"

typedef enum {
	TRS_AWS_XML_UNKNOWN = 0,
	TRS_AWS_XML_ERROR,            /* <Error>: also inside a 200 CompleteMultipartUpload answer */
	TRS_AWS_XML_INITIATE,         /* InitiateMultipartUploadResult */
	TRS_AWS_XML_COMPLETE,         /* CompleteMultipartUploadResult */
	TRS_AWS_XML_COPY_OBJECT,      /* CopyObjectResult */
	TRS_AWS_XML_COPY_PART,        /* CopyPartResult */
	TRS_AWS_XML_TAGGING,          /* Tagging (GetObjectTagging) */
	TRS_AWS_XML_LIST_PARTS,       /* ListPartsResult */
	TRS_AWS_XML_STS_CREDENTIALS,  /* AssumeRoleWithWebIdentityResponse (and AssumeRole) */
} trs__aws_xml_kind;

typedef struct trs__aws_xml_part {
	unsigned int number;
	char *etag;
	uint64_t size;
} trs__aws_xml_part;

#define TRS_AWS_XML_MAX_TAGS 64
#define TRS_AWS_XML_MAX_PARTS 10000

typedef struct trs__aws_xml {
	trs__aws_xml_kind kind;
	char root[64];        /* the root element's local name */
	/* Error */
	char *code;
	char *message;
	char *request_id;
	char *resource;
	/* Initiate / Complete / Copy */
	char *upload_id;
	char *bucket;
	char *key;
	char *etag;
	char *location;
	/* Tagging */
	trs_kv *tags;         /* owned strings */
	size_t ntags;
	/* ListParts */
	trs__aws_xml_part *parts;
	size_t nparts;
	bool is_truncated;
	/* STS */
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	char *expiration;
} trs__aws_xml;

/*
 * Parse len bytes of one XML document into out (zeroed first). Returns 0,
 * or TRS_EHTTP when the bytes are not well-formed XML or too large/deep.
 * Free out with trs__aws_xml_free in every case.
 */
int trs__aws_xml_parse(const char *data, size_t len, trs__aws_xml *out, trs_error *err);
void trs__aws_xml_free(trs__aws_xml *x);

/* Append s to b with &, <, >, " and ' escaped. */
int trs__xml_escape(trs__buf *b, const char *s, trs_error *err);

#endif
