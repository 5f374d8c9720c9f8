/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest.json's parser: the public API (trs_manifest_parser_*), which
 * feeds yajl in linear time and enforces the size limits; the grammar, in
 * yajl's callbacks, is lib/manifest.c.
 */
#include "manifest_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TRS_EXTERN(int) trs_manifest_parser_new(trs_manifest_parser **out, const trs_manifest_limits *limits, trs_error *err)
{
	*out = NULL;
	trs_manifest_parser *p = trs__calloc(1, sizeof(*p), err);
	if (!p)
		return TRS_ENOMEM;
	p->limits.max_bytes = limits && limits->max_bytes ? limits->max_bytes : DEFAULT_MAX_BYTES;
	p->limits.max_objects = limits && limits->max_objects ? limits->max_objects : DEFAULT_MAX_OBJECTS;
	if (p->limits.max_objects > UINT32_MAX - 1)
		p->limits.max_objects = UINT32_MAX - 1;
	p->limits.max_depth = limits && limits->max_depth ? limits->max_depth : DEFAULT_MAX_DEPTH;
	p->m = trs__calloc(1, sizeof(*p->m), err);
	if (!p->m) {
		free(p);
		return TRS_ENOMEM;
	}
	p->yajl = yajl_alloc(&trs__manifest_callbacks, NULL, p);
	if (!p->yajl) {
		free(p->m);
		free(p);
		return trs__error_set(err, TRS_ENOMEM, "out of memory creating the JSON parser");
	}
	*out = p;
	return 0;
}

static int parser_error(trs_manifest_parser *p, yajl_status st, const unsigned char *data, size_t len, trs_error *err)
{
	if (p->failed) {
		if (err)
			*err = p->error;
		return p->error.code;
	}
	(void)st;
	unsigned char *msg = yajl_get_error(p->yajl, 0, data, len);
	int code = trs__error_set(err, TRS_EMANIFEST, "manifest.json is not valid JSON: %s",
				  msg ? (const char *)msg : "parse error");
	if (msg)
		yajl_free_error(p->yajl, msg);
	/* yajl's message ends with a newline; messages here are one line. */
	if (err) {
		size_t n = strlen(err->message);
		while (n && (err->message[n - 1] == '\n' || err->message[n - 1] == ' '))
			err->message[--n] = '\0';
	}
	p->failed = 1;
	p->error.code = code;
	return code;
}

/*
 * yajl's lexer keeps a token that spans two yajl_parse calls in a buffer and
 * reads it again from its start on the next call, so one long string fed in
 * fixed chunks costs time quadratic in its length (64 MiB in 64 KiB chunks:
 * ten seconds). Bytes are therefore held back until there are at least as
 * many as yajl has been given since a token last ended: each time a partial
 * token is read again, it has at least doubled, and the whole parse stays
 * linear. One token may not pass a quarter of the size limit (1 MiB at
 * least), so that the lexer's copy, ours and the stored string stay within it.
 */
static int parse_chunk(trs_manifest_parser *p, const unsigned char *data, size_t len, trs_error *err)
{
	uint64_t events = p->events;
	if (trs__json_scan_feed(&p->scan, data, len) < 0) {
		trs__manifest_fail(p, TRS_ENOMEM, "out of memory");
		return parser_error(p, yajl_status_error, NULL, 0, err);
	}
	yajl_status st = yajl_parse(p->yajl, data, len);
	p->fed += len;
	if (p->events != events)
		p->fed_at_event = p->fed;
	if (st != yajl_status_ok)
		return parser_error(p, st, data, len, err);
	uint64_t max_token = p->limits.max_bytes / 4 > (1u << 20) ? p->limits.max_bytes / 4 : (1u << 20);
	if (p->fed - p->fed_at_event > max_token) {
		trs__manifest_fail(p, TRS_ELIMIT, "manifest.json holds one value of more than %llu bytes; refusing it "
		     "(a quarter of the manifest limit: raise --max-manifest)", (unsigned long long)max_token);
		return parser_error(p, yajl_status_error, NULL, 0, err);
	}
	return 0;
}

/*
 * The parsed manifest's memory (trs_manifest_memory) is held to the same
 * limit as its JSON: a list of tiny entries takes more memory parsed than
 * as text, and is refused before it passes the limit.
 */
int trs__manifest_parser_memory_ok(trs_manifest_parser *p, size_t more)
{
	uint64_t used = (uint64_t)trs_manifest_memory(p->m) + more;
	if (used <= p->limits.max_bytes)
		return 1;
	return trs__manifest_fail(p, TRS_ELIMIT,
				  "manifest.json needs more than %llu bytes of memory once parsed (%zu entries so far); "
				  "refusing it (raise the manifest limit, --max-manifest)",
				  (unsigned long long)p->limits.max_bytes, p->m->nobjects);
}

#define FEED_MIN 65536

TRS_EXTERN(int) trs_manifest_parser_feed(trs_manifest_parser *p, const void *data, size_t len, trs_error *err)
{
	if (p->failed)
		return parser_error(p, yajl_status_error, NULL, 0, err);
	p->bytes += len;
	if (p->bytes > p->limits.max_bytes) {
		trs__manifest_fail(p, TRS_ELIMIT, "manifest.json is larger than %llu bytes; refusing it (raise the "
		     "manifest limit, --max-manifest)", (unsigned long long)p->limits.max_bytes);
		return parser_error(p, yajl_status_error, NULL, 0, err);
	}
	uint64_t want = p->fed - p->fed_at_event;
	if (want < FEED_MIN)
		want = FEED_MIN;
	if (!p->pending.len && len >= want)
		return parse_chunk(p, data, len, err);
	if (trs__buf_put(&p->pending, data, len, err) < 0)
		return TRS_ENOMEM;
	if (p->pending.len < want)
		return 0;
	int rc = parse_chunk(p, (const unsigned char *)p->pending.data, p->pending.len, err);
	p->pending.len = 0;
	if (p->pending.cap > (4u << 20))
		trs__buf_free(&p->pending); /* a long token's copy is not kept for small ones */
	return rc;
}

TRS_EXTERN(int) trs_manifest_parser_finish(trs_manifest_parser *p, trs_manifest **out, trs_error *err)
{
	*out = NULL;
	if (p->failed)
		return parser_error(p, yajl_status_error, NULL, 0, err);
	if (p->finished)
		return trs__error_set(err, TRS_EINVAL, "the manifest parser was already finished");
	if (p->pending.len) {
		int rc = parse_chunk(p, (const unsigned char *)p->pending.data, p->pending.len, err);
		trs__buf_free(&p->pending);
		if (rc < 0)
			return rc;
	}
	yajl_status st = yajl_complete_parse(p->yajl);
	if (st != yajl_status_ok)
		return parser_error(p, st, NULL, 0, err);
	if (p->state != ST_DONE)
		return trs__error_set(err, TRS_EMANIFEST, "manifest.json is empty or incomplete");
	if (p->m->ntargets == 0)
		trs__manifest_parser_warn(p, "manifest.json has no targets: nothing will be restored from this archive");
	if (!trs__manifest_warn_repeats(p))
		return parser_error(p, yajl_status_error, NULL, 0, err);
	int rc = trs__manifest_build_index(p->m, err);
	if (rc < 0)
		return rc;
	if (!trs__manifest_parser_memory_ok(p, 0))
		return parser_error(p, yajl_status_error, NULL, 0, err);
	p->m->json_bytes = p->bytes;
	p->finished = 1;
	*out = p->m;
	p->m = NULL;
	return 0;
}

TRS_EXTERN(void) trs_manifest_parser_free(trs_manifest_parser *p)
{
	if (!p)
		return;
	if (p->yajl)
		yajl_free(p->yajl);
	trs_manifest_free(p->m);
	free(p->tags.items);
	trs__buf_free(&p->pending);
	trs__json_scan_free(&p->scan);
	free(p);
}
