/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the manifest.json parser (lib/archive/manifest.c).
 *
 * Input: one selector byte, then the JSON. The JSON is parsed three ways:
 * whole with trs_manifest_parse, streamed in chunks whose sizes come from the
 * selector, and streamed again under tight limits. Any bytes must give 0 or a
 * negative code, never a crash or leak, and:
 *
 * - the whole and the chunked parse agree (same code, same entries): how the
 *   decompressor happens to cut the JSON must not change the result;
 * - on success every string is non-NULL, every entry is found again by its
 *   relative_key (trs_manifest_find returns that very entry), the
 *   destination key is what trs_manifest_dest_key says it is;
 * - on failure *out is NULL and the error carries the code and a message.
 *
 * Selector byte b: b < 0x80 feeds fixed chunks of b + 1 bytes; otherwise the
 * chunk sizes (1..4096) are drawn from a PRNG seeded with b.
 *
 *     fuzz/run.sh 60        (or: build-fuzz/fuzz/fuzz_manifest fuzz/corpus/manifest)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <trs.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                      \
	do {                             \
		if (!(cond))             \
			__builtin_trap(); \
	} while (0)

struct chunker {
	unsigned int fixed;   /* 0: draw sizes from state */
	uint32_t state;
};

static size_t next_chunk(struct chunker *c, size_t left)
{
	size_t n;
	if (c->fixed) {
		n = c->fixed;
	} else {
		/* xorshift32: cheap, deterministic per input */
		c->state ^= c->state << 13;
		c->state ^= c->state >> 17;
		c->state ^= c->state << 5;
		n = 1 + c->state % ((c->state & 0x100) ? 4096 : 16);
	}
	return n < left ? n : left;
}

static void check_error(int rc, const trs_manifest *m, const trs_error *err)
{
	CHECK(rc < 0);
	CHECK(m == NULL);
	CHECK(err->code == rc);
	CHECK(err->message[0] != '\0');
	CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
}

static void check_manifest(const trs_manifest *m)
{
	size_t nobjects = trs_manifest_object_count(m);
	size_t ntargets = trs_manifest_target_count(m);
	char small[8];

	for (size_t i = 0; i < ntargets; i++) {
		const trs_manifest_target *t = trs_manifest_target_at(m, i);
		CHECK(t != NULL);
		CHECK(t->region && t->bucket && t->storage_class && t->kms_key_arn);
	}
	CHECK(trs_manifest_target_at(m, ntargets) == NULL);

	for (size_t i = 0; i < nobjects; i++) {
		const trs_manifest_object *o = trs_manifest_object_at(m, i);
		CHECK(o != NULL);
		CHECK(o->source_bucket && o->source_prefix && o->object_name && o->relative_key);
		CHECK(o->creation_time && o->etag && o->storage_class);
		CHECK(o->ntags == 0 || o->tags != NULL);
		for (size_t t = 0; t < o->ntags; t++)
			CHECK(o->tags[t].key && o->tags[t].value);
		CHECK(trs_manifest_object_index(m, o) == i);

		/* Each relative_key finds one entry of that key; another entry of the same key
		 * is superseded (a later one writes its key) or fails as a repeat. */
		size_t klen = strlen(o->relative_key);
		const trs_manifest_object *found = trs_manifest_find(m, o->relative_key, klen);
		CHECK(found && !strcmp(found->relative_key, o->relative_key));
		CHECK(found == o || (o->flags & (TRS_MANIFEST_OBJECT_SUPERSEDED | TRS_MANIFEST_OBJECT_REPEATS_KEY)));
		CHECK(!(found->flags & TRS_MANIFEST_OBJECT_REPEATS_KEY));

		/* dest_key behaves like snprintf: full length, truncated copy. */
		size_t want = *o->source_prefix ? strlen(o->source_prefix) + 1 + strlen(o->object_name)
						: strlen(o->object_name);
		CHECK(trs_manifest_dest_key(o, small, sizeof(small)) == want);
		CHECK(memchr(small, '\0', sizeof(small)) != NULL);
		char *full = malloc(want + 1);
		if (full) {
			CHECK(trs_manifest_dest_key(o, full, want + 1) == want);
			CHECK(strlen(full) == want);
			free(full);
		}
	}
	CHECK(trs_manifest_object_at(m, nobjects) == NULL);

	for (size_t i = 0; i < trs_manifest_warning_count(m); i++)
		CHECK(trs_manifest_warning_at(m, i) != NULL);
}

static int parse_chunked(const uint8_t *json, size_t len, struct chunker c,
			 const trs_manifest_limits *limits, trs_manifest **out, trs_error *err)
{
	trs_manifest_parser *p = NULL;
	*out = NULL;
	int rc = trs_manifest_parser_new(&p, limits, err);
	if (rc < 0)
		return rc;
	size_t pos = 0;
	while (rc == 0 && pos < len) {
		size_t n = next_chunk(&c, len - pos);
		/* A private copy of each chunk, so that ASan sees a read past its end. */
		uint8_t *chunk = malloc(n);
		if (!chunk)
			break;
		memcpy(chunk, json + pos, n);
		rc = trs_manifest_parser_feed(p, chunk, n, err);
		free(chunk);
		pos += n;
	}
	/* A zero-length feed is legal and changes nothing. */
	if (rc == 0)
		rc = trs_manifest_parser_feed(p, "", 0, err);
	if (rc == 0) {
		rc = trs_manifest_parser_finish(p, out, err);
	} else {
		/* Finishing after a failed feed must repeat the failure, not crash. */
		trs_error again = TRS_ERROR_INIT;
		trs_manifest *none = (trs_manifest *)1;
		CHECK(trs_manifest_parser_finish(p, &none, &again) == rc);
		CHECK(none == NULL);
	}
	if (rc == 0) {
		/* A second finish is refused. */
		trs_error again = TRS_ERROR_INIT;
		trs_manifest *none = (trs_manifest *)1;
		CHECK(trs_manifest_parser_finish(p, &none, &again) < 0);
		CHECK(none == NULL);
	}
	trs_manifest_parser_free(p);
	return rc;
}

static void check_same(const trs_manifest *a, const trs_manifest *b)
{
	CHECK(trs_manifest_object_count(a) == trs_manifest_object_count(b));
	CHECK(trs_manifest_target_count(a) == trs_manifest_target_count(b));
	CHECK(trs_manifest_warning_count(a) == trs_manifest_warning_count(b));
	for (size_t i = 0; i < trs_manifest_object_count(a); i++) {
		const trs_manifest_object *x = trs_manifest_object_at(a, i);
		const trs_manifest_object *y = trs_manifest_object_at(b, i);
		CHECK(strcmp(x->relative_key, y->relative_key) == 0);
		CHECK(strcmp(x->object_name, y->object_name) == 0);
		CHECK(strcmp(x->source_prefix, y->source_prefix) == 0);
		CHECK(strcmp(x->etag, y->etag) == 0);
		CHECK(x->size == y->size && x->has_size == y->has_size);
		CHECK(x->flags == y->flags && x->ntags == y->ntags);
		for (size_t t = 0; t < x->ntags; t++) {
			CHECK(strcmp(x->tags[t].key, y->tags[t].key) == 0);
			CHECK(strcmp(x->tags[t].value, y->tags[t].value) == 0);
		}
	}
	for (size_t i = 0; i < trs_manifest_target_count(a); i++) {
		const trs_manifest_target *x = trs_manifest_target_at(a, i);
		const trs_manifest_target *y = trs_manifest_target_at(b, i);
		CHECK(strcmp(x->region, y->region) == 0 && strcmp(x->bucket, y->bucket) == 0);
		CHECK(x->backup == y->backup);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t selector = data[0];
	const uint8_t *json = data + 1;
	size_t len = size - 1;

	/* Whole: an exact-size copy so that ASan catches any read past len. */
	char *whole = malloc(len ? len : 1);
	if (!whole)
		return 0;
	memcpy(whole, json, len);
	trs_error err_whole = TRS_ERROR_INIT;
	trs_manifest *m_whole = NULL;
	int rc_whole = trs_manifest_parse(whole, len, &m_whole, &err_whole);
	free(whole);
	if (rc_whole == 0) {
		CHECK(m_whole != NULL);
		check_manifest(m_whole);
	} else {
		check_error(rc_whole, m_whole, &err_whole);
	}

	/* Chunked, same limits: must agree with the whole parse. */
	struct chunker c = {0, 0};
	if (selector < 0x80)
		c.fixed = selector + 1u;
	else
		c.state = 0x9e3779b9u ^ selector;
	trs_error err_chunked = TRS_ERROR_INIT;
	trs_manifest *m_chunked = NULL;
	int rc_chunked = parse_chunked(json, len, c, NULL, &m_chunked, &err_chunked);
	CHECK(rc_chunked == rc_whole);
	if (rc_chunked == 0) {
		CHECK(m_chunked != NULL);
		check_manifest(m_chunked);
		check_same(m_whole, m_chunked);
	} else {
		check_error(rc_chunked, m_chunked, &err_chunked);
	}
	trs_manifest_free(m_chunked);
	trs_manifest_free(m_whole);

	/* Tight limits: the limit paths must clean up as well as the happy path. */
	trs_manifest_limits tight = {0, 0, 0};
	tight.max_bytes = 1 + selector * 16u;
	tight.max_objects = 1 + (selector & 7u);
	tight.max_depth = 1 + (selector & 15u);
	trs_error err_tight = TRS_ERROR_INIT;
	trs_manifest *m_tight = NULL;
	struct chunker whole_chunk = {(unsigned int)(len ? len : 1), 0};
	int rc_tight = parse_chunked(json, len, whole_chunk, &tight, &m_tight, &err_tight);
	if (rc_tight == 0) {
		CHECK(m_tight != NULL);
		CHECK(trs_manifest_object_count(m_tight) <= tight.max_objects);
		CHECK(trs_manifest_memory(m_tight) <= tight.max_bytes);
		check_manifest(m_tight);
	} else {
		check_error(rc_tight, m_tight, &err_tight);
	}
	trs_manifest_free(m_tight);
	trs_error_clear(&err_whole);
	return 0;
}
