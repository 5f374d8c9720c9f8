/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Queue message bodies: S3 notifications (bare or in an SNS envelope),
 * EventBridge "Object Created" events, and the s3:TestEvent (docs/operations.md).
 * S3's other events (records' ObjectRemoved:*, EventBridge's Object Deleted, ...)
 * are no work.
 *
 * Bodies are small (SQS caps them at 1 MiB), so a yajl tree is fine, once
 * the nesting depth is known to be bounded: yajl_tree_free recurses, and a
 * body of a million '[' would otherwise take the stack with it.
 */
#include "internal.h"
#include "trs/event.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_tree.h>

/* ---- key decoding ---- */

/*
 * Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not valid.
 * *maximal receives how many bytes form the maximal invalid subpart, which
 * Python (like the Unicode recommendation) replaces with one U+FFFD.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *maximal)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf;
	*maximal = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	for (size_t i = 1; i < need; i++) {
		unsigned char lower = i == 1 ? lo : 0x80, upper = i == 1 ? hi : 0xbf;
		if (i >= n || s[i] < lower || s[i] > upper) {
			*maximal = i;
			return 0;
		}
	}
	return need;
}

char *trs_event_decode_key(const char *encoded, size_t len, trs_error *err)
{
	trs__buf raw = TRS_BUF_INIT, out = TRS_BUF_INIT;
	if (!encoded)
		encoded = "";
	int rc = trs__buf_grow(&raw, len + 1, err);
	for (size_t i = 0; rc == 0 && i < len; i++) {
		unsigned char c = (unsigned char)encoded[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < len && trs__hexval((unsigned char)encoded[i + 1]) >= 0 &&
			   trs__hexval((unsigned char)encoded[i + 2]) >= 0) {
			c = (unsigned char)(trs__hexval((unsigned char)encoded[i + 1]) * 16 +
					    trs__hexval((unsigned char)encoded[i + 2]));
			i += 2;
		}
		if (c == 0) {
			rc = trs__error_set(err, TRS_EINVAL, "the object key decodes to a NUL byte");
			break;
		}
		raw.data[raw.len++] = (char)c;
	}
	if (rc == 0)
		rc = trs__buf_grow(&out, raw.len * 3 + 1, err);
	const unsigned char *s = (const unsigned char *)raw.data;
	for (size_t i = 0; rc == 0 && i < raw.len;) {
		size_t maximal;
		size_t n = utf8_seq(s + i, raw.len - i, &maximal);
		if (n) {
			memcpy(out.data + out.len, s + i, n);
			out.len += n;
			i += n;
		} else {
			/* U+FFFD: 3 bytes for at least 1 consumed, so 3x the input always fits. */
			memcpy(out.data + out.len, "\xef\xbf\xbd", 3);
			out.len += 3;
			i += maximal;
		}
	}
	trs__buf_free(&raw);
	if (rc < 0) {
		trs__buf_free(&out);
		return NULL;
	}
	out.data[out.len] = '\0';
	return out.data;
}

/* ---- bounds ---- */

/* The deepest nesting of [ and { outside strings; stops counting past limit. */
static unsigned int json_depth(const char *s, size_t len, unsigned int limit)
{
	unsigned int depth = 0, deepest = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > deepest)
				deepest = depth;
			if (deepest > limit)
				return deepest;
		} else if ((c == ']' || c == '}') && depth) {
			depth--;
		}
	}
	return deepest;
}

/* ---- tree helpers ---- */

static yajl_val get(yajl_val v, const char *a, const char *b, const char *c)
{
	const char *path[4] = {a, b, c, NULL};
	return v && YAJL_IS_OBJECT(v) ? yajl_tree_get(v, path, yajl_t_any) : NULL;
}

static const char *get_str(yajl_val v, const char *a, const char *b, const char *c)
{
	yajl_val x = get(v, a, b, c);
	return YAJL_IS_STRING(x) ? YAJL_GET_STRING(x) : NULL;
}

static bool str_is(const char *s, const char *want)
{
	return s && strcmp(s, want) == 0;
}

typedef struct parse_state {
	trs_event *ev;
	size_t cap;
	trs_error *err;
} parse_state;

/* "2026-12-01T09:31:34.438Z" as unix seconds (S3's form; a time without a zone, or
 * with +00:00, is read as UTC too); 0 when it is not such a time. */
static double parse_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!p)
		return 0;
	double frac = 0;
	if (*p == '.') {
		double scale = 0.1;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	if (*p && strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return 0;
	time_t t = timegm(&tm);
	return t > 0 ? (double)t + frac : 0;
}

static int push_ref(parse_state *st, const char *bucket, const char *key, bool decode, size_t index,
		    const char *time)
{
	trs_event *ev = st->ev;
	if (!bucket || !*bucket)
		return trs__error_set(st->err, TRS_EINVAL, "record %zu has no s3.bucket.name string", index);
	if (!key || !*key)
		return trs__error_set(st->err, TRS_EINVAL, "record %zu of bucket '%.200s' has no s3.object.key string",
				      index, bucket);
	if (ev->nrefs == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 4;
		trs_archive_ref *r = realloc(ev->refs, cap * sizeof(*r));
		if (!r)
			return trs__error_set(st->err, TRS_ENOMEM, "out of memory parsing a queue message");
		ev->refs = r;
		st->cap = cap;
	}
	trs_archive_ref *ref = &ev->refs[ev->nrefs];
	ref->event_time = parse_time(time);
	ref->bucket = trs__strdup(bucket, st->err);
	if (!ref->bucket)
		return TRS_ENOMEM;
	if (decode) {
		ref->key = trs_event_decode_key(key, strlen(key), st->err);
		if (!ref->key && st->err && st->err->code == TRS_EINVAL)
			trs__error_prefix(st->err, "record %zu (s3://%.200s/%.200s)", index, bucket, key);
	} else {
		ref->key = trs__strdup(key, st->err);
	}
	if (!ref->key) {
		free(ref->bucket);
		return st->err->code ? st->err->code : TRS_ENOMEM;
	}
	ev->nrefs++;
	return 0;
}

static int parse_records(parse_state *st, yajl_val records)
{
	if (!YAJL_IS_ARRAY(records))
		return trs__error_set(st->err, TRS_EINVAL, "\"Records\" is not a list");
	size_t n = records->u.array.len;
	if (n == 0)
		return trs__error_set(st->err, TRS_EINVAL, "\"Records\" is an empty list");
	if (n > TRS_EVENT_MAX_RECORDS)
		return trs__error_set(st->err, TRS_ELIMIT, "%zu records in one message; at most %u are accepted", n,
				      (unsigned)TRS_EVENT_MAX_RECORDS);
	bool test = false;
	for (size_t i = 0; i < n; i++) {
		yajl_val r = records->u.array.values[i];
		if (!YAJL_IS_OBJECT(r))
			return trs__error_set(st->err, TRS_EINVAL, "record %zu is not an object", i);
		const char *name = get_str(r, "eventName", NULL, NULL);
		const char *source = get_str(r, "eventSource", NULL, NULL);
		if (str_is(name, "s3:TestEvent")) {
			test = true;
			st->ev->records_skipped++;
			continue;
		}
		if (!str_is(source, "aws:s3") || !name || strncmp(name, "ObjectCreated", 13) != 0) {
			if (!source && !name)
				return trs__error_set(st->err, TRS_EINVAL,
						      "record %zu has neither eventSource nor eventName", i);
			st->ev->records_skipped++;
			continue;
		}
		int rc = push_ref(st, get_str(r, "s3", "bucket", "name"), get_str(r, "s3", "object", "key"), true, i,
				  get_str(r, "eventTime", NULL, NULL));
		if (rc < 0)
			return rc;
	}
	if (st->ev->nrefs)
		st->ev->kind = TRS_EVENT_WORK;
	else
		st->ev->kind = test ? TRS_EVENT_TEST : TRS_EVENT_NO_WORK;
	return 0;
}

static bool is_test_event(yajl_val root)
{
	return str_is(get_str(root, "Event", NULL, NULL), "s3:TestEvent");
}

static int parse_tree(parse_state *st, yajl_val root, bool inside_sns);

static int parse_text(parse_state *st, const char *text, size_t len, bool inside_sns)
{
	if (len > TRS_EVENT_MAX_BYTES)
		return trs__error_set(st->err, TRS_ELIMIT, "the message is %zu bytes; at most %u are accepted", len,
				      (unsigned)TRS_EVENT_MAX_BYTES);
	if (memchr(text, '\0', len))
		return trs__error_set(st->err, TRS_EINVAL, "the message holds a NUL byte");
	unsigned int depth = json_depth(text, len, TRS_EVENT_MAX_DEPTH);
	if (depth > TRS_EVENT_MAX_DEPTH)
		return trs__error_set(st->err, TRS_ELIMIT, "the message nests deeper than %d levels",
				      TRS_EVENT_MAX_DEPTH);
	char *copy = trs__strndup(text, len, st->err);
	if (!copy)
		return TRS_ENOMEM;
	char why[256] = "";
	yajl_val root = yajl_tree_parse(copy, why, sizeof(why));
	free(copy);
	if (!root) {
		/* yajl's message may span lines (it quotes the input); keep the first. */
		why[strcspn(why, "\r\n")] = '\0';
		return trs__error_set(st->err, TRS_EINVAL, "the message is not JSON: %s", why[0] ? why : "parse error");
	}
	int rc = parse_tree(st, root, inside_sns);
	yajl_tree_free(root);
	return rc;
}

static int parse_tree(parse_state *st, yajl_val root, bool inside_sns)
{
	if (!YAJL_IS_OBJECT(root))
		return trs__error_set(st->err, TRS_EINVAL, "the message is not a JSON object");
	if (is_test_event(root)) {
		st->ev->kind = TRS_EVENT_TEST;
		st->ev->shape = "test";
		return 0;
	}
	yajl_val records = get(root, "Records", NULL, NULL);
	if (records) {
		if (!inside_sns)
			st->ev->shape = "s3";
		int rc = parse_records(st, records);
		if (rc == 0 && st->ev->kind == TRS_EVENT_TEST && !inside_sns)
			st->ev->shape = "test";
		return rc;
	}
	if (str_is(get_str(root, "Type", NULL, NULL), "Notification")) {
		if (inside_sns)
			return trs__error_set(st->err, TRS_EINVAL, "an SNS envelope inside an SNS envelope");
		const char *inner = get_str(root, "Message", NULL, NULL);
		if (!inner)
			return trs__error_set(st->err, TRS_EINVAL, "SNS notification without a \"Message\" string");
		st->ev->shape = "sns";
		int rc = parse_text(st, inner, strlen(inner), true);
		if (rc < 0)
			trs__error_prefix(st->err, "SNS message");
		return rc;
	}
	const char *source = get_str(root, "source", NULL, NULL);
	const char *detail_type = get_str(root, "detail-type", NULL, NULL);
	if (!inside_sns && (source || detail_type)) {
		if (!str_is(source, "aws.s3") || !detail_type)
			return trs__error_set(st->err, TRS_EINVAL,
					      "an EventBridge event of source '%.64s' and detail-type '%.64s' (only "
					      "aws.s3 / Object Created is work)",
					      source ? source : "", detail_type ? detail_type : "");
		st->ev->shape = "eventbridge";
		if (!str_is(detail_type, "Object Created")) {
			/* Object Deleted, Object Restore Completed, ...: S3's own events, like a record's ObjectRemoved:*. */
			st->ev->kind = TRS_EVENT_NO_WORK;
			st->ev->records_skipped++;
			return 0;
		}
		st->ev->kind = TRS_EVENT_WORK;
		return push_ref(st, get_str(root, "detail", "bucket", "name"), get_str(root, "detail", "object", "key"),
				false, 0, get_str(root, "time", NULL, NULL));
	}
	return trs__error_set(st->err, TRS_EINVAL,
			      "the message is neither an S3 notification, an SNS envelope, an EventBridge event nor "
			      "the s3:TestEvent");
}

int trs_event_parse(const char *body, size_t len, trs_event **out, trs_error *err)
{
	if (!out)
		return trs__error_set(err, TRS_EINVAL, "trs_event_parse needs an output pointer");
	*out = NULL;
	if (!body && len)
		return trs__error_set(err, TRS_EINVAL, "trs_event_parse: NULL body");
	trs_event *ev = trs__calloc(1, sizeof(*ev), err);
	if (!ev)
		return TRS_ENOMEM;
	ev->shape = "s3";
	/* A local error always, so that the code of a failure is known even when err is NULL. */
	trs_error local = TRS_ERROR_INIT;
	parse_state st = {ev, 0, &local};
	int rc = parse_text(&st, body ? body : "", len, false);
	if (rc < 0) {
		trs_event_free(ev);
		if (err)
			*err = local;
		return rc;
	}
	*out = ev;
	return 0;
}

void trs_event_free(trs_event *event)
{
	if (!event)
		return;
	for (size_t i = 0; i < event->nrefs; i++) {
		free(event->refs[i].bucket);
		free(event->refs[i].key);
	}
	free(event->refs);
	free(event);
}
