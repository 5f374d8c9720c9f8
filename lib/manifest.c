/*
 * manifest.json (FORMAT.md §2), parsed with yajl's event parser.
 *
 * The event parser, not the tree parser: yajl_tree recurses per nesting
 * level and builds a full DOM, while the events let us enforce a depth limit
 * at the first '[' too many, stream the JSON as it is decompressed, and keep
 * only the fields we use, in one arena.
 */
#include "manifest_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#define DEFAULT_MAX_BYTES (1ull << 30)
#define DEFAULT_MAX_OBJECTS 50000000ull
#define DEFAULT_MAX_DEPTH 64
#define MAX_KEY 64


typedef enum {
	ST_TOP,          /* before the document */
	ST_ROOT,         /* in the top-level object */
	ST_TARGETS,      /* in "targets": [...] */
	ST_TARGET,       /* in one target {...} */
	ST_OBJECTS,      /* in "objects": [...] */
	ST_OBJECT,       /* in one object {...} */
	ST_TAGS,         /* in an object's "tags": [...] */
	ST_TAG,          /* in one {"k": "v"} */
	ST_DONE
} parse_state;

/* Which field the next scalar belongs to. */
typedef enum {
	F_NONE,
	F_T_REGION, F_T_BUCKET, F_T_CLASS, F_T_KMS, F_T_BACKUP,
	F_O_SRC_BUCKET, F_O_SRC_PREFIX, F_O_NAME, F_O_REL_KEY, F_O_CTIME, F_O_ETAG,
	F_O_SIZE, F_O_CLASS, F_O_TAGS,
	F_TAG_VALUE,
	F_TARGETS, F_OBJECTS
} field_id;

typedef struct {
	trs_kv *items;
	size_t n, cap;
} kv_list;

struct trs_manifest_parser {
	yajl_handle yajl;
	trs_manifest *m;
	trs_manifest_limits limits;
	uint64_t bytes;
	parse_state state;
	unsigned int depth;
	unsigned int skip_depth; /* > 0: inside an ignored value that opened at this depth */
	field_id field;
	char key[MAX_KEY + 1];   /* current key, truncated; only known (short) keys matter */
	size_t objects_cap;
	size_t targets_cap;
	trs_manifest_object cur;  /* the object being built */
	char *cur_tag_key;
	kv_list tags;
	size_t entry_index;       /* position of the object being built in "objects" */
	size_t entries_seen;
	int cur_has_name;
	int cur_has_relkey;
	uint64_t events;          /* callbacks so far: a token ended */
	trs_buf pending;          /* bytes held back from yajl (see feed_policy) */
	uint64_t fed;             /* bytes handed to yajl */
	uint64_t fed_at_event;    /* p->fed after the last yajl_parse that ended a token */
	unsigned int fields_seen; /* 1 << field_id of the current target or object, and of the root */
	unsigned int root_seen;
	int failed;
	trs_error error;          /* the first error, set inside callbacks */
	int finished;
};

static const char *const EMPTY = "";

/* ---- errors from inside callbacks ---- */

static int fail(trs_manifest_parser *p, int code, const char *fmt, ...) TRS_PRINTF(3, 4);
static int fail(trs_manifest_parser *p, int code, const char *fmt, ...)
{
	if (!p->failed) {
		va_list ap;
		va_start(ap, fmt);
		trs__error_vset(&p->error, code, fmt, ap);
		va_end(ap);
		p->failed = 1;
	}
	return 0; /* tells yajl to stop */
}

static void where(trs_manifest_parser *p, char *buf, size_t size)
{
	switch (p->state) {
	case ST_TARGET:
		snprintf(buf, size, "targets[%zu].%s", p->m->ntargets - 1, p->key);
		break;
	case ST_OBJECT:
		snprintf(buf, size, "objects[%zu].%s", p->entry_index, p->key);
		break;
	case ST_TAGS:
	case ST_TAG:
		snprintf(buf, size, "objects[%zu].tags", p->entry_index);
		break;
	default:
		snprintf(buf, size, "%s", p->key);
	}
}

static const char *kind_name(int kind)
{
	static const char *const names[] = {"null", "a boolean", "a number", "a string", "an object", "a list"};
	return names[kind];
}

enum { K_NULL, K_BOOL, K_NUMBER, K_STRING, K_MAP, K_ARRAY };

static int wrong_type(trs_manifest_parser *p, const char *expected, int got)
{
	char field[160];
	where(p, field, sizeof(field));
	return fail(p, TRS_EMANIFEST, "manifest.json: %s must be %s, got %s", field, expected, kind_name(got));
}

static int warn(trs_manifest_parser *p, const char *fmt, ...) TRS_PRINTF(2, 3);
static int warn(trs_manifest_parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (trs__manifest_warn(p->m, "%s", msg) < 0)
		return fail(p, TRS_ENOMEM, "out of memory");
	return 1;
}

/* ---- values ---- */

static int store_string(trs_manifest_parser *p, const char **slot, const char *s, size_t len)
{
	char *copy = trs__arena_strdup(&p->m->arena, s, len);
	if (!copy)
		return fail(p, TRS_ENOMEM, "out of memory storing the manifest");
	*slot = copy;
	return 1;
}

static int on_scalar(trs_manifest_parser *p, int kind, const char *s, size_t len, int boolean)
{
	p->events++;
	if (p->skip_depth)
		return 1;
	switch (p->state) {
	case ST_TOP:
		return fail(p, TRS_EMANIFEST, "manifest.json must be a JSON object, got %s", kind_name(kind));
	case ST_ROOT:
		if ((p->field == F_TARGETS || p->field == F_OBJECTS) && kind != K_NULL)
			return wrong_type(p, "a list", kind);
		return 1; /* unknown top-level scalar, or a null list: ignored */
	case ST_TARGETS:
		return fail(p, TRS_EMANIFEST, "manifest.json: targets[%zu] must be an object, got %s",
			    p->m->ntargets, kind_name(kind));
	case ST_OBJECTS:
		return fail(p, TRS_EMANIFEST, "manifest.json: objects[%zu] must be an object, got %s",
			    p->entries_seen, kind_name(kind));
	case ST_TAGS:
		return fail(p, TRS_EMANIFEST, "manifest.json: objects[%zu].tags[%zu] must be an object like {\"key\": \"value\"}, got %s",
			    p->entry_index, p->tags.n, kind_name(kind));
	case ST_TARGET: {
		trs_manifest_target *t = &p->m->targets[p->m->ntargets - 1];
		if (p->field == F_NONE || kind == K_NULL)
			return 1;
		if (p->field == F_T_BACKUP) {
			if (kind != K_BOOL)
				return wrong_type(p, "true or false", kind);
			t->backup = boolean;
			return 1;
		}
		if (kind != K_STRING)
			return wrong_type(p, "a string", kind);
		if (p->field == F_T_BUCKET && memchr(s, 0, len))
			t->flags |= TRS_MANIFEST_TARGET_BUCKET_HAS_NUL;
		const char **slot = p->field == F_T_REGION ? &t->region
				    : p->field == F_T_BUCKET ? &t->bucket
				    : p->field == F_T_CLASS  ? &t->storage_class
							     : &t->kms_key_arn;
		return store_string(p, slot, s, len);
	}
	case ST_OBJECT: {
		trs_manifest_object *o = &p->cur;
		if (p->field == F_NONE || kind == K_NULL)
			return 1;
		if (p->field == F_O_TAGS)
			return wrong_type(p, "a list", kind);
		if (p->field == F_O_SIZE) {
			if (kind != K_NUMBER || trs__manifest_parse_size(s, len, &o->size) < 0) {
				char field[160];
				where(p, field, sizeof(field));
				return fail(p, TRS_EMANIFEST, "manifest.json: %s must be a non-negative whole number%s%s",
					    field, kind == K_NUMBER ? ", got " : "", kind == K_NUMBER ? "a fraction or too large" : "");
			}
			o->has_size = 1;
			return 1;
		}
		if (kind != K_STRING)
			return wrong_type(p, "a string", kind);
		const char **slot;
		switch (p->field) {
		case F_O_SRC_BUCKET: slot = &o->source_bucket; break;
		case F_O_SRC_PREFIX: slot = &o->source_prefix; break;
		case F_O_NAME: slot = &o->object_name; p->cur_has_name = 1; break;
		case F_O_REL_KEY: slot = &o->relative_key; p->cur_has_relkey = 1; break;
		case F_O_CTIME: slot = &o->creation_time; break;
		case F_O_ETAG: slot = &o->etag; break;
		default: slot = &o->storage_class; break;
		}
		if (slot != &o->etag && slot != &o->creation_time && slot != &o->storage_class &&
		    slot != &o->source_bucket && memchr(s, 0, len))
			o->flags |= TRS_MANIFEST_OBJECT_KEY_HAS_NUL;
		return store_string(p, slot, s, len);
	}
	case ST_TAG: {
		/* Tag values: strings; numbers and booleans are taken as their JSON text (liberal). */
		if (kind == K_NULL)
			return wrong_type(p, "a list of {\"key\": \"value\"} with string values", kind);
		const char *key = p->cur_tag_key;
		const char *value;
		if (kind == K_BOOL) {
			s = boolean ? "true" : "false";
			len = strlen(s);
		}
		value = trs__arena_strdup(&p->m->arena, s, len);
		if (!value)
			return fail(p, TRS_ENOMEM, "out of memory");
		for (size_t i = 0; i < p->tags.n; i++) {
			if (strcmp(p->tags.items[i].key, key) == 0) {
				p->tags.items[i].value = value; /* a later duplicate wins, in place */
				return 1;
			}
		}
		if (p->tags.n == p->tags.cap) {
			size_t cap = p->tags.cap ? p->tags.cap * 2 : 8;
			trs_kv *items = realloc(p->tags.items, cap * sizeof(*items));
			if (!items)
				return fail(p, TRS_ENOMEM, "out of memory");
			p->tags.items = items;
			p->tags.cap = cap;
		}
		p->tags.items[p->tags.n].key = key;
		p->tags.items[p->tags.n].value = value;
		p->tags.n++;
		return 1;
	}
	default:
		return 1;
	}
}

static int cb_null(void *ctx) { return on_scalar(ctx, K_NULL, NULL, 0, 0); }
static int cb_boolean(void *ctx, int b) { return on_scalar(ctx, K_BOOL, NULL, 0, b); }
static int cb_number(void *ctx, const char *s, size_t len) { return on_scalar(ctx, K_NUMBER, s, len, 0); }
static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
	return on_scalar(ctx, K_STRING, (const char *)s, len, 0);
}

/* ---- structure ---- */

static field_id target_field(const char *k)
{
	if (!strcmp(k, "region")) return F_T_REGION;
	if (!strcmp(k, "bucket")) return F_T_BUCKET;
	if (!strcmp(k, "storage_class")) return F_T_CLASS;
	if (!strcmp(k, "kms_key_arn")) return F_T_KMS;
	if (!strcmp(k, "backup")) return F_T_BACKUP;
	return F_NONE;
}

static field_id object_field(const char *k)
{
	if (!strcmp(k, "source_bucket")) return F_O_SRC_BUCKET;
	if (!strcmp(k, "source_prefix")) return F_O_SRC_PREFIX;
	if (!strcmp(k, "object_name")) return F_O_NAME;
	if (!strcmp(k, "relative_key")) return F_O_REL_KEY;
	if (!strcmp(k, "creation_time")) return F_O_CTIME;
	if (!strcmp(k, "etag")) return F_O_ETAG;
	if (!strcmp(k, "size")) return F_O_SIZE;
	if (!strcmp(k, "storage_class")) return F_O_CLASS;
	if (!strcmp(k, "tags")) return F_O_TAGS;
	return F_NONE;
}

/*
 * A key repeated in one JSON object: Python's json, which the source side
 * uses, keeps the last value, so the first one is forgotten here (a list
 * starts again empty, a field takes its default) and a warning says so.
 */
static int repeated_field(trs_manifest_parser *p, unsigned int *seen)
{
	if (p->field == F_NONE)
		return 1;
	unsigned int bit = 1u << p->field;
	if (!(*seen & bit)) {
		*seen |= bit;
		return 1;
	}
	char field[160];
	where(p, field, sizeof(field));
	if (!warn(p, "manifest.json: %s appears twice in one object; the last one is used", field))
		return 0;
	trs_manifest_target *t = p->state == ST_TARGET ? &p->m->targets[p->m->ntargets - 1] : NULL;
	trs_manifest_object *o = &p->cur;
	switch (p->field) {
	case F_TARGETS: p->m->ntargets = 0; break;
	case F_OBJECTS: p->m->nobjects = 0; p->entries_seen = 0; break;
	case F_T_REGION: t->region = EMPTY; break;
	case F_T_BUCKET: t->bucket = EMPTY; t->flags = 0; break;
	case F_T_CLASS: t->storage_class = EMPTY; break;
	case F_T_KMS: t->kms_key_arn = EMPTY; break;
	case F_T_BACKUP: t->backup = 0; break;
	case F_O_SRC_BUCKET: o->source_bucket = EMPTY; break;
	case F_O_SRC_PREFIX: o->source_prefix = EMPTY; break;
	case F_O_NAME: o->object_name = EMPTY; p->cur_has_name = 0; break;
	case F_O_REL_KEY: o->relative_key = EMPTY; p->cur_has_relkey = 0; break;
	case F_O_CTIME: o->creation_time = EMPTY; break;
	case F_O_ETAG: o->etag = EMPTY; break;
	case F_O_SIZE: o->size = 0; o->has_size = 0; break;
	case F_O_CLASS: o->storage_class = EMPTY; break;
	case F_O_TAGS: p->tags.n = 0; break;
	default: break;
	}
	return 1;
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
	trs_manifest_parser *p = ctx;
	p->events++;
	if (p->skip_depth)
		return 1;
	size_t n = len > MAX_KEY ? MAX_KEY : len;
	memcpy(p->key, s, n);
	p->key[n] = '\0';
	int known_len = len <= MAX_KEY;
	switch (p->state) {
	case ST_ROOT:
		p->field = !known_len ? F_NONE
			   : !strcmp(p->key, "targets") ? F_TARGETS
			   : !strcmp(p->key, "objects") ? F_OBJECTS
							: F_NONE;
		return repeated_field(p, &p->root_seen);
	case ST_TARGET:
		p->field = known_len ? target_field(p->key) : F_NONE;
		return repeated_field(p, &p->fields_seen);
	case ST_OBJECT:
		p->field = known_len ? object_field(p->key) : F_NONE;
		return repeated_field(p, &p->fields_seen);
	case ST_TAG:
		p->cur_tag_key = trs__arena_strdup(&p->m->arena, (const char *)s, len);
		if (!p->cur_tag_key)
			return fail(p, TRS_ENOMEM, "out of memory");
		p->field = F_TAG_VALUE;
		return 1;
	default:
		return 1;
	}
}

static int enter(trs_manifest_parser *p)
{
	if (++p->depth > p->limits.max_depth)
		return fail(p, TRS_ELIMIT, "manifest.json nests deeper than %u levels; refusing it",
			    p->limits.max_depth);
	return 1;
}

static void reset_object(trs_manifest_parser *p)
{
	memset(&p->cur, 0, sizeof(p->cur));
	p->cur.source_bucket = p->cur.source_prefix = p->cur.object_name = p->cur.relative_key = EMPTY;
	p->cur.creation_time = p->cur.etag = p->cur.storage_class = EMPTY;
	p->tags.n = 0;
	p->cur_has_name = p->cur_has_relkey = 0;
}

static int open_container(trs_manifest_parser *p, int kind)
{
	p->events++;
	if (!enter(p))
		return 0;
	if (p->skip_depth)
		return 1;
	switch (p->state) {
	case ST_TOP:
		if (kind != K_MAP)
			return fail(p, TRS_EMANIFEST, "manifest.json must be a JSON object, got a list");
		p->state = ST_ROOT;
		return 1;
	case ST_ROOT:
		if (p->field == F_TARGETS || p->field == F_OBJECTS) {
			if (kind != K_ARRAY)
				return wrong_type(p, "a list", kind);
			p->state = p->field == F_TARGETS ? ST_TARGETS : ST_OBJECTS;
			return 1;
		}
		break;
	case ST_TARGETS: {
		if (kind != K_MAP)
			return fail(p, TRS_EMANIFEST, "manifest.json: targets[%zu] must be an object, got a list",
				    p->m->ntargets);
		trs_manifest *m = p->m;
		if (m->ntargets == p->targets_cap) {
			size_t cap = p->targets_cap ? p->targets_cap * 2 : 4;
			if (cap > 100000)
				return fail(p, TRS_ELIMIT, "manifest.json has more than 100000 targets; refusing it");
			trs_manifest_target *t = realloc(m->targets, cap * sizeof(*t));
			if (!t)
				return fail(p, TRS_ENOMEM, "out of memory");
			m->targets = t;
			p->targets_cap = cap;
		}
		trs_manifest_target *t = &m->targets[m->ntargets++];
		t->region = t->bucket = t->storage_class = t->kms_key_arn = EMPTY;
		t->backup = 0;
		t->flags = 0;
		p->state = ST_TARGET;
		p->field = F_NONE;
		p->fields_seen = 0;
		return 1;
	}
	case ST_OBJECTS:
		if (kind != K_MAP)
			return fail(p, TRS_EMANIFEST, "manifest.json: objects[%zu] must be an object, got a list",
				    p->entries_seen);
		reset_object(p);
		p->fields_seen = 0;
		p->entry_index = p->entries_seen++;
		p->state = ST_OBJECT;
		p->field = F_NONE;
		return 1;
	case ST_OBJECT:
		if (p->field == F_O_TAGS) {
			if (kind != K_ARRAY)
				return wrong_type(p, "a list", kind);
			p->state = ST_TAGS;
			return 1;
		}
		if (p->field != F_NONE)
			return wrong_type(p, p->field == F_O_SIZE ? "a number" : "a string", kind);
		break;
	case ST_TARGET:
		if (p->field != F_NONE)
			return wrong_type(p, p->field == F_T_BACKUP ? "true or false" : "a string", kind);
		break;
	case ST_TAGS:
		if (kind != K_MAP)
			return fail(p, TRS_EMANIFEST, "manifest.json: objects[%zu].tags[%zu] must be an object like {\"key\": \"value\"}, got a list",
				    p->entry_index, p->tags.n);
		p->state = ST_TAG;
		return 1;
	case ST_TAG:
		return wrong_type(p, "a list of {\"key\": \"value\"} with string values", kind);
	default:
		break;
	}
	/* An unknown field's object or list: skip it whole. */
	p->skip_depth = p->depth;
	return 1;
}

static int finish_object(trs_manifest_parser *p)
{
	trs_manifest *m = p->m;
	trs_manifest_object *o = &p->cur;
	if (!p->cur_has_name || !*o->object_name) {
		return warn(p, "objects[%zu] has no object_name; skipped (relative_key '%s')",
			    p->entry_index, o->relative_key);
	}
	if (!p->cur_has_relkey || !*o->relative_key)
		o->relative_key = o->object_name;
	if (m->nobjects >= p->limits.max_objects)
		return fail(p, TRS_ELIMIT, "manifest.json lists more than %llu objects; refusing it (raise the limit)",
			    (unsigned long long)p->limits.max_objects);
	if (p->tags.n) {
		trs_kv *tags = trs__arena_alloc(&m->arena, p->tags.n * sizeof(*tags), _Alignof(trs_kv));
		if (!tags)
			return fail(p, TRS_ENOMEM, "out of memory");
		memcpy(tags, p->tags.items, p->tags.n * sizeof(*tags));
		o->tags = tags;
		o->ntags = p->tags.n;
	}
	if (m->nobjects == p->objects_cap) {
		size_t cap = p->objects_cap ? p->objects_cap * 2 : 64;
		trs_manifest_object *objs = realloc(m->objects, cap * sizeof(*objs));
		if (!objs)
			return fail(p, TRS_ENOMEM, "out of memory for %zu manifest entries", cap);
		m->objects = objs;
		p->objects_cap = cap;
	}
	m->objects[m->nobjects++] = *o;
	return 1;
}

static int close_container(trs_manifest_parser *p)
{
	p->events++;
	if (p->skip_depth) {
		if (p->depth-- == p->skip_depth)
			p->skip_depth = 0;
		return 1;
	}
	p->depth--;
	switch (p->state) {
	case ST_ROOT: p->state = ST_DONE; break;
	case ST_TARGETS:
	case ST_OBJECTS: p->state = ST_ROOT; p->field = F_NONE; break;
	case ST_TARGET: p->state = ST_TARGETS; break;
	case ST_OBJECT:
		p->state = ST_OBJECTS;
		return finish_object(p);
	case ST_TAGS: p->state = ST_OBJECT; p->field = F_NONE; break;
	case ST_TAG: p->state = ST_TAGS; break;
	default: break;
	}
	return 1;
}

static int cb_start_map(void *ctx) { return open_container(ctx, K_MAP); }
static int cb_start_array(void *ctx) { return open_container(ctx, K_ARRAY); }
static int cb_end(void *ctx) { return close_container(ctx); }

static const yajl_callbacks callbacks = {
	cb_null, cb_boolean, NULL, NULL, cb_number, cb_string,
	cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

/* ---- public API ---- */

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
	p->yajl = yajl_alloc(&callbacks, NULL, p);
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
	yajl_status st = yajl_parse(p->yajl, data, len);
	p->fed += len;
	if (p->events != events)
		p->fed_at_event = p->fed;
	if (st != yajl_status_ok)
		return parser_error(p, st, data, len, err);
	uint64_t max_token = p->limits.max_bytes / 4 > (1u << 20) ? p->limits.max_bytes / 4 : (1u << 20);
	if (p->fed - p->fed_at_event > max_token) {
		fail(p, TRS_ELIMIT, "manifest.json holds one value of more than %llu bytes; refusing it",
		     (unsigned long long)max_token);
		return parser_error(p, yajl_status_error, NULL, 0, err);
	}
	return 0;
}

#define FEED_MIN 65536

TRS_EXTERN(int) trs_manifest_parser_feed(trs_manifest_parser *p, const void *data, size_t len, trs_error *err)
{
	if (p->failed)
		return parser_error(p, yajl_status_error, NULL, 0, err);
	p->bytes += len;
	if (p->bytes > p->limits.max_bytes) {
		fail(p, TRS_ELIMIT, "manifest.json is larger than %llu bytes; refusing it (raise the limit)",
		     (unsigned long long)p->limits.max_bytes);
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
		warn(p, "manifest.json has no targets: nothing will be restored from this archive");
	int rc = trs__manifest_build_index(p->m, err);
	if (rc < 0)
		return rc;
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
	free(p);
}
