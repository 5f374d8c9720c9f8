/* SPDX-License-Identifier: Apache-2.0 */
/* S3 and STS XML answers, parsed with expat into one flat struct. */
#include "xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#define MAX_DEPTH 16
#define MAX_TEXT (64u << 10)
#define MAX_DOCUMENT (32u << 20)

typedef struct parse_state {
	XML_Parser parser;
	trs__aws_xml *out;
	trs_error *err;
	int rc;
	int depth;                  /* elements open */
	char names[MAX_DEPTH][64];  /* local names of the open elements */
	trs__buf text;
	bool text_too_long;
	/* The Tag or Part being read. */
	char *tag_key, *tag_value;
	trs__aws_xml_part part;
} parse_state;

static void fail(parse_state *s, int code, const char *what)
{
	if (s->rc == 0)
		s->rc = trs__error_set(s->err, code, "malformed S3 XML answer: %s", what);
	XML_StopParser(s->parser, XML_FALSE);
}

static const char *local_name(const char *name)
{
	const char *colon = strrchr(name, ':');
	return colon ? colon + 1 : name;
}

static bool at(const parse_state *s, int depth, const char *name)
{
	return s->depth > depth && strcmp(s->names[depth], name) == 0;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	parse_state *s = ud;
	if (s->rc)
		return;
	if (s->depth >= MAX_DEPTH) {
		fail(s, TRS_EHTTP, "nested too deeply");
		return;
	}
	snprintf(s->names[s->depth], sizeof(s->names[0]), "%s", local_name(name));
	if (s->depth == 0) {
		trs__aws_xml *o = s->out;
		snprintf(o->root, sizeof(o->root), "%s", s->names[0]);
		static const struct {
			const char *root;
			trs__aws_xml_kind kind;
		} kinds[] = {
			{"Error", TRS_AWS_XML_ERROR},
			{"ErrorResponse", TRS_AWS_XML_ERROR},
			{"InitiateMultipartUploadResult", TRS_AWS_XML_INITIATE},
			{"CompleteMultipartUploadResult", TRS_AWS_XML_COMPLETE},
			/* S3's result elements under the names some S3-compatible servers (moto) give them */
			{"CompleteMultipartUploadResponse", TRS_AWS_XML_COMPLETE},
			{"ListPartsResponse", TRS_AWS_XML_LIST_PARTS},
			{"CopyObjectResult", TRS_AWS_XML_COPY_OBJECT},
			{"CopyPartResult", TRS_AWS_XML_COPY_PART},
			{"Tagging", TRS_AWS_XML_TAGGING},
			{"ListPartsResult", TRS_AWS_XML_LIST_PARTS},
			{"AssumeRoleWithWebIdentityResponse", TRS_AWS_XML_STS_CREDENTIALS},
			{"AssumeRoleResponse", TRS_AWS_XML_STS_CREDENTIALS},
		};
		for (size_t i = 0; i < TRS_ARRAY_SIZE(kinds); i++)
			if (strcmp(o->root, kinds[i].root) == 0)
				o->kind = kinds[i].kind;
	}
	s->depth++;
	s->text.len = 0;
	s->text_too_long = false;
}

static void XMLCALL on_text(void *ud, const XML_Char *text, int len)
{
	parse_state *s = ud;
	if (s->rc || len <= 0)
		return;
	if (s->text.len + (size_t)len > MAX_TEXT) {
		s->text_too_long = true;
		return;
	}
	if (trs__buf_put(&s->text, text, (size_t)len, s->err) < 0)
		fail(s, TRS_ENOMEM, "out of memory");
}

/* Take the text of the element that just closed into *field (first one wins). */
static void take(parse_state *s, char **field)
{
	if (*field)
		return;
	*field = trs__strndup(s->text.data ? s->text.data : "", s->text.len, s->err);
	if (!*field)
		fail(s, TRS_ENOMEM, "out of memory");
}

static bool parse_u64(const char *text, size_t len, uint64_t *v)
{
	uint64_t n = 0;
	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		uint64_t d = (uint64_t)(text[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*v = n;
	return true;
}

static void end_tag(parse_state *s)
{
	trs__aws_xml *o = s->out;
	if (o->ntags >= TRS_AWS_XML_MAX_TAGS) {
		fail(s, TRS_EHTTP, "too many tags");
		return;
	}
	if (!o->tags) {
		o->tags = trs__calloc(TRS_AWS_XML_MAX_TAGS, sizeof(*o->tags), s->err);
		if (!o->tags) {
			fail(s, TRS_ENOMEM, "out of memory");
			return;
		}
	}
	if (!s->tag_key)
		s->tag_key = trs__strdup("", s->err);
	if (!s->tag_value)
		s->tag_value = trs__strdup("", s->err);
	if (!s->tag_key || !s->tag_value) {
		fail(s, TRS_ENOMEM, "out of memory");
		return;
	}
	o->tags[o->ntags].key = s->tag_key;
	o->tags[o->ntags].value = s->tag_value;
	o->ntags++;
	s->tag_key = s->tag_value = NULL;
}

static void end_part(parse_state *s)
{
	trs__aws_xml *o = s->out;
	if (o->nparts >= TRS_AWS_XML_MAX_PARTS) {
		fail(s, TRS_EHTTP, "too many parts");
		return;
	}
	if (!o->parts) {
		o->parts = trs__calloc(TRS_AWS_XML_MAX_PARTS, sizeof(*o->parts), s->err);
		if (!o->parts) {
			fail(s, TRS_ENOMEM, "out of memory");
			return;
		}
	}
	o->parts[o->nparts++] = s->part;
	memset(&s->part, 0, sizeof(s->part));
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	(void)name;
	parse_state *s = ud;
	if (s->rc)
		return;
	if (s->depth <= 0) {
		fail(s, TRS_EHTTP, "unbalanced elements");
		return;
	}
	trs__aws_xml *o = s->out;
	int d = s->depth - 1; /* index of the element that closes */
	const char *leaf = s->names[d];
	const char *parent = d > 0 ? s->names[d - 1] : "";
	if (s->text_too_long && d > 0) {
		fail(s, TRS_EHTTP, "an element's text is too long");
		return;
	}

	switch (o->kind) {
	case TRS_AWS_XML_ERROR:
		if (strcmp(parent, "Error") == 0) {
			if (strcmp(leaf, "Code") == 0)
				take(s, &o->code);
			else if (strcmp(leaf, "Message") == 0)
				take(s, &o->message);
			else if (strcmp(leaf, "RequestId") == 0)
				take(s, &o->request_id);
			else if (strcmp(leaf, "Resource") == 0)
				take(s, &o->resource);
		} else if (d == 1 && strcmp(leaf, "RequestId") == 0) {
			take(s, &o->request_id); /* STS puts it beside <Error> */
		}
		break;
	case TRS_AWS_XML_INITIATE:
	case TRS_AWS_XML_COMPLETE:
	case TRS_AWS_XML_COPY_OBJECT:
	case TRS_AWS_XML_COPY_PART:
		if (d == 1) {
			if (strcmp(leaf, "UploadId") == 0)
				take(s, &o->upload_id);
			else if (strcmp(leaf, "Bucket") == 0)
				take(s, &o->bucket);
			else if (strcmp(leaf, "Key") == 0)
				take(s, &o->key);
			else if (strcmp(leaf, "ETag") == 0)
				take(s, &o->etag);
			else if (strcmp(leaf, "Location") == 0)
				take(s, &o->location);
		}
		break;
	case TRS_AWS_XML_TAGGING:
		if (d == 3 && at(s, 1, "TagSet") && strcmp(parent, "Tag") == 0) {
			if (strcmp(leaf, "Key") == 0) {
				free(s->tag_key);
				s->tag_key = NULL;
				take(s, &s->tag_key);
			} else if (strcmp(leaf, "Value") == 0) {
				free(s->tag_value);
				s->tag_value = NULL;
				take(s, &s->tag_value);
			}
		} else if (d == 2 && at(s, 1, "TagSet") && strcmp(leaf, "Tag") == 0) {
			end_tag(s);
		}
		break;
	case TRS_AWS_XML_LIST_PARTS:
		if (d == 2 && strcmp(parent, "Part") == 0) {
			uint64_t v = 0;
			const char *text = s->text.data ? s->text.data : "";
			if (strcmp(leaf, "PartNumber") == 0) {
				if (!parse_u64(text, s->text.len, &v) || v == 0 || v > TRS_AWS_XML_MAX_PARTS)
					fail(s, TRS_EHTTP, "bad PartNumber");
				s->part.number = (unsigned int)v;
			} else if (strcmp(leaf, "Size") == 0) {
				if (!parse_u64(text, s->text.len, &v))
					fail(s, TRS_EHTTP, "bad part Size");
				s->part.size = v;
			} else if (strcmp(leaf, "ETag") == 0) {
				free(s->part.etag);
				s->part.etag = NULL;
				take(s, &s->part.etag);
			}
		} else if (d == 1 && strcmp(leaf, "Part") == 0) {
			end_part(s);
		} else if (d == 1 && strcmp(leaf, "IsTruncated") == 0) {
			o->is_truncated = s->text.len == 4 && memcmp(s->text.data, "true", 4) == 0;
		} else if (d == 1 && strcmp(leaf, "UploadId") == 0) {
			take(s, &o->upload_id);
		}
		break;
	case TRS_AWS_XML_STS_CREDENTIALS:
		if (strcmp(parent, "Credentials") == 0) {
			if (strcmp(leaf, "AccessKeyId") == 0)
				take(s, &o->access_key_id);
			else if (strcmp(leaf, "SecretAccessKey") == 0)
				take(s, &o->secret_access_key);
			else if (strcmp(leaf, "SessionToken") == 0)
				take(s, &o->session_token);
			else if (strcmp(leaf, "Expiration") == 0)
				take(s, &o->expiration);
		}
		break;
	case TRS_AWS_XML_UNKNOWN:
		break;
	}
	s->depth--;
	s->text.len = 0;
	s->text_too_long = false;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
			       int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	/* S3 never sends a DTD; refusing it rules out entity expansion attacks. */
	fail(ud, TRS_EHTTP, "a DOCTYPE declaration is not allowed");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
				   int value_len, const XML_Char *base, const XML_Char *sysid,
				   const XML_Char *pubid, const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	fail(ud, TRS_EHTTP, "entity declarations are not allowed");
}

void trs__aws_xml_free(trs__aws_xml *x)
{
	if (!x)
		return;
	free(x->code);
	free(x->message);
	free(x->request_id);
	free(x->resource);
	free(x->upload_id);
	free(x->bucket);
	free(x->key);
	free(x->etag);
	free(x->location);
	for (size_t i = 0; i < x->ntags; i++) {
		free((char *)x->tags[i].key);
		free((char *)x->tags[i].value);
	}
	free(x->tags);
	for (size_t i = 0; i < x->nparts; i++)
		free(x->parts[i].etag);
	free(x->parts);
	free(x->access_key_id);
	free(x->secret_access_key);
	free(x->session_token);
	free(x->expiration);
	memset(x, 0, sizeof(*x));
}

int trs__aws_xml_parse(const char *data, size_t len, trs__aws_xml *out, trs_error *err)
{
	memset(out, 0, sizeof(*out));
	if (len > MAX_DOCUMENT)
		return trs__error_set(err, TRS_EHTTP, "S3 XML answer of %zu bytes is too large", len);
	parse_state s;
	memset(&s, 0, sizeof(s));
	s.out = out;
	s.err = err;
	s.parser = XML_ParserCreate(NULL);
	if (!s.parser)
		return trs__error_set(err, TRS_ENOMEM, "out of memory creating an XML parser");
	XML_SetUserData(s.parser, &s);
	XML_SetElementHandler(s.parser, on_start, on_end);
	XML_SetCharacterDataHandler(s.parser, on_text);
	XML_SetStartDoctypeDeclHandler(s.parser, on_doctype);
	XML_SetEntityDeclHandler(s.parser, on_entity_decl);
	XML_SetParamEntityParsing(s.parser, XML_PARAM_ENTITY_PARSING_NEVER);
	enum XML_Status st = XML_Parse(s.parser, data ? data : "", (int)len, XML_TRUE);
	if (st != XML_STATUS_OK && s.rc == 0)
		s.rc = trs__error_set(err, TRS_EHTTP, "malformed S3 XML answer: %s at line %lu",
				      XML_ErrorString(XML_GetErrorCode(s.parser)),
				      (unsigned long)XML_GetCurrentLineNumber(s.parser));
	XML_ParserFree(s.parser);
	free(s.tag_key);
	free(s.tag_value);
	free(s.part.etag);
	trs__buf_free(&s.text);
	return s.rc;
}

int trs__xml_escape(trs__buf *b, const char *s, trs_error *err)
{
	for (; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default: break;
		}
		int rc = rep ? trs__buf_puts(b, rep, err) : trs__buf_put(b, s, 1, err);
		if (rc < 0)
			return rc;
	}
	return trs__buf_puts(b, "", err);
}
