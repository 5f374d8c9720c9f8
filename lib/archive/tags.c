/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tags and user metadata within S3's limits. S3 refuses a PUT whose tags
 * break its rules (more than 10, too long, characters outside letters,
 * digits, spaces and "+-=._:/@", an "aws:" key) and one with more than 2 KB
 * of user metadata or 8 KB of headers: such an object would fail on every
 * retry. So the tag set is built to fit, in this order:
 *
 * 1. the original tags S3 accepts, while the x-amz-tagging header fits;
 * 2. OriginalCreationTime and OriginalETag, while there is room;
 * 3. as user metadata, while 2 KB allow: original-creation-time and
 *    original-etag first, then original-tags (URL-encoded k=v&...) with as
 *    many of the other tags as fit. What is left is dropped, and logged.
 */
#include "tags.h"
#include "codec.h"

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

/* Our own metadata budget counts the "x-amz-meta-" prefix too: a margin on any reading of S3's rule. */
#define METADATA_BUDGET 2000
#define META_PREFIX "x-amz-meta-"
/* Headers besides tags, metadata, the key and the KMS key id: request line, host, authorization, dates,
 * class, the SSE algorithm. */
#define OTHER_HEADERS 1536

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Decode one UTF-8 character at s; its length, or 0 when s is not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, unsigned int *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t n = s[0] >= 0xF0 && s[0] < 0xF5 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
	if (!n)
		return 0;
	unsigned int c = s[0] & (0x7F >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	static const unsigned int min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

/* S3's tag characters: Unicode letters, digits and spaces, and + - = . _ : / @. Outside a
 * UTF-8 locale only ASCII ones are known, and the others are taken as refused. */
static bool tag_char(unsigned int c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		       (c && strchr(" +-=._:/@", (int)c));
	pthread_once(&utf8_once, utf8_init);
	if (utf8_locale == (locale_t)0)
		return false;
	return iswalnum_l((wint_t)c, utf8_locale) || iswspace_l((wint_t)c, utf8_locale);
}

bool trs__tag_acceptable(const char *s, bool is_key)
{
	if (is_key && (!*s || !strncasecmp(s, "aws:", 4)))
		return false;
	size_t chars = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; chars++) {
		unsigned int c;
		size_t n = utf8_decode(p, &c);
		if (!n || !tag_char(c))
			return false;
		p += n;
	}
	return chars <= (is_key ? TRS_S3_MAX_TAG_KEY : TRS_S3_MAX_TAG_VALUE);
}

/* Bytes of s once URL-encoded as x-amz-tagging and original-tags are. */
static int encoded_len(trs__tagset *ts, const char *s, bool keep_slash, size_t *len, trs_error *err)
{
	ts->scratch.len = 0;
	if (trs__uri_encode(&ts->scratch, s, strlen(s), keep_slash, err) < 0)
		return TRS_ENOMEM;
	*len = ts->scratch.len;
	return 0;
}

static int append_pair(trs__buf *b, const trs_kv *t, trs_error *err)
{
	if ((b->len && trs__buf_put(b, "&", 1, err) < 0) || trs__uri_encode(b, t->key, strlen(t->key), false, err) < 0 ||
	    trs__buf_put(b, "=", 1, err) < 0 || trs__uri_encode(b, t->value, strlen(t->value), false, err) < 0)
		return TRS_ENOMEM;
	return 0;
}

/* Bytes of a metadata value as sent: plain printable ASCII, else RFC 2047 base64. */
static size_t metadata_value_len(const char *v)
{
	size_t n = strlen(v);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return 12 + 4 * ((n + 2) / 3);
	return n;
}

static size_t metadata_cost(const char *name, const char *value)
{
	return strlen(META_PREFIX) + strlen(name) + metadata_value_len(value);
}

typedef struct {
	const trs_kv *kv;
	const char *meta_name; /* an original's metadata name; NULL for a manifest tag */
} carried_tag;

/* Tag t when S3 takes it and the header has room; else carry it. */
static int place(trs__tagset *ts, const trs_kv *t, size_t *tag_bytes, size_t tag_budget, bool *placed,
		 trs_error *err)
{
	*placed = false;
	if (ts->ntags >= TRS_S3_MAX_TAGS || !trs__tag_acceptable(t->key, true) || !trs__tag_acceptable(t->value, false))
		return 0;
	size_t k, v;
	if (encoded_len(ts, t->key, false, &k, err) < 0 || encoded_len(ts, t->value, false, &v, err) < 0)
		return TRS_ENOMEM;
	size_t cost = k + v + 1 + (ts->ntags ? 1 : 0);
	if (*tag_bytes + cost > tag_budget)
		return 0;
	*tag_bytes += cost;
	ts->tags[ts->ntags++] = *t;
	*placed = true;
	return 0;
}

int trs__tagset_build(trs__tagset *ts, const trs_manifest_object *e, const char *key, size_t header_bytes,
		      trs_error *err)
{
	ts->ntags = ts->nmetadata = ts->carried = ts->dropped = 0;
	ts->original_tags.len = ts->dropped_list.len = 0;
	if (trs__buf_grow(&ts->original_tags, 1, err) < 0 || trs__buf_grow(&ts->dropped_list, 1, err) < 0)
		return TRS_ENOMEM;
	ts->original_tags.data[0] = ts->dropped_list.data[0] = '\0';
	size_t key_bytes;
	if (encoded_len(ts, key, true, &key_bytes, err) < 0)
		return TRS_ENOMEM;
	/* The 8 KB of headers: the other headers, the key and the caller's (a KMS key id) first; then
	 * the metadata's 2 KB, or what they leave of it (a 2 KB key id and a 3 KB encoded key); the
	 * tags take the rest. */
	size_t fixed = OTHER_HEADERS + key_bytes + header_bytes + 3 * 4; /* ": " and CRLF per metadata header */
	size_t room = TRS_S3_MAX_HEADERS > fixed ? TRS_S3_MAX_HEADERS - fixed : 0;
	size_t metadata_budget = room < METADATA_BUDGET ? room : METADATA_BUDGET;
	size_t tagging_line = strlen("x-amz-tagging: \r\n");
	size_t tag_budget = room > metadata_budget + tagging_line ? room - metadata_budget - tagging_line : 0;
	size_t tag_bytes = 0;

	carried_tag stack[16];
	carried_tag *carried = e->ntags + 2 <= TRS_ARRAY_SIZE(stack) ? stack : calloc(e->ntags + 2, sizeof(*carried));
	if (!carried)
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	size_t ncarried = 0;
	int rc = 0;
	bool placed;
	for (size_t i = 0; rc == 0 && i < e->ntags; i++) {
		rc = place(ts, &e->tags[i], &tag_bytes, tag_budget, &placed, err);
		if (rc == 0 && !placed)
			carried[ncarried++] = (carried_tag){&e->tags[i], NULL};
	}

	/* The originals, as tags when they fit (an original tag of that name gives way). */
	trs_kv originals[2];
	const char *names[2];
	bool originals_placed[2] = {false, false};
	size_t noriginals = 0;
	if (*e->creation_time) {
		originals[noriginals] = (trs_kv){"OriginalCreationTime", e->creation_time};
		names[noriginals++] = "original-creation-time";
	}
	if (*e->etag) {
		size_t len = strlen(e->etag);
		const char *etag = e->etag;
		if (len >= 2 && etag[0] == '"' && etag[len - 1] == '"') {
			etag++;
			len -= 2;
		}
		snprintf(ts->etag, sizeof(ts->etag), "%.*s", (int)(len < sizeof(ts->etag) ? len : sizeof(ts->etag) - 1),
			 etag);
		originals[noriginals] = (trs_kv){"OriginalETag", ts->etag};
		names[noriginals++] = "original-etag";
	}
	for (size_t o = 0; rc == 0 && o < noriginals; o++) {
		size_t same = SIZE_MAX;
		for (size_t i = 0; i < ts->ntags; i++)
			if (!strcmp(ts->tags[i].key, originals[o].key))
				same = i;
		if (same != SIZE_MAX) {
			/* Drop the manifest's tag of this name; the original takes its place or goes to metadata. */
			memmove(&ts->tags[same], &ts->tags[same + 1], (ts->ntags - same - 1) * sizeof(ts->tags[0]));
			ts->ntags--;
			tag_bytes = 0;
			for (size_t i = 0; i < ts->ntags; i++) {
				size_t k = 0, v = 0;
				if (encoded_len(ts, ts->tags[i].key, false, &k, err) < 0 ||
				    encoded_len(ts, ts->tags[i].value, false, &v, err) < 0)
					rc = TRS_ENOMEM;
				tag_bytes += k + v + 1 + (i ? 1 : 0);
			}
		}
		if (rc == 0)
			rc = place(ts, &originals[o], &tag_bytes, tag_budget, &placed, err);
		if (rc == 0 && !placed)
			carried[ncarried++] = (carried_tag){&originals[o], names[o]};
		originals_placed[o] = placed;
	}

	/*
	 * Metadata: the originals first, whether or not they are tags too (a
	 * HEAD returns metadata, not tags, and it is what the next write of the
	 * key compares versions with: lib/storage/version.c), then as many other
	 * tags as 2 KB allow.
	 */
	size_t left = metadata_budget;
	for (size_t o = 0; rc == 0 && o < noriginals; o++) {
		size_t cost = metadata_cost(names[o], originals[o].value);
		if (cost <= left) {
			left -= cost;
			ts->metadata[ts->nmetadata++] = (trs_kv){names[o], originals[o].value};
		} else if (!originals_placed[o]) {
			ts->dropped++;
			rc = append_pair(&ts->dropped_list, &originals[o], err);
		}
	}
	size_t base = strlen(META_PREFIX) + strlen("original-tags");
	for (size_t i = 0; rc == 0 && i < ncarried; i++) {
		const carried_tag *c = &carried[i];
		if (c->meta_name)
			continue;
		size_t before = ts->original_tags.len;
		if ((rc = append_pair(&ts->original_tags, c->kv, err)) < 0)
			break;
		if (base + ts->original_tags.len > left) {
			ts->original_tags.len = before; /* cut: it does not fit */
			ts->original_tags.data[before] = '\0';
			ts->dropped++;
			rc = append_pair(&ts->dropped_list, c->kv, err);
		}
	}
	if (rc == 0 && ts->original_tags.len)
		ts->metadata[ts->nmetadata++] = (trs_kv){"original-tags", ts->original_tags.data};
	ts->carried = ncarried;
	if (carried != stack)
		free(carried);
	return rc;
}

void trs__tagset_free(trs__tagset *ts)
{
	trs__buf_free(&ts->original_tags);
	trs__buf_free(&ts->dropped_list);
	trs__buf_free(&ts->scratch);
}
