/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest.json (docs/formats.md): its grammar, in yajl event callbacks
 * (feeding yajl is lib/archive/manifest_parser.c).
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

static const char *const EMPTY = "";

/* ---- errors from inside callbacks ---- */

int trs__manifest_fail(trs_manifest_parser *p, int code, const char *fmt, ...)
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
		snprintf(buf, size, "targets[%zu].%s", p->targets_seen - 1, p->key);
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
	return trs__manifest_fail(p, TRS_EMANIFEST, "manifest.json: %s must be %s, got %s", field, expected, kind_name(got));
}

int trs__manifest_parser_warn(trs_manifest_parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(msg))
		trs__text_cut(msg, sizeof(msg) - 1);
	if (trs__manifest_warn(p->m, "%s", msg) < 0)
		return trs__manifest_fail(p, TRS_ENOMEM, "out of memory");
	return 1;
}

/* A field of one entry that cannot be used: that entry fails, the others go on. */
static int entry_unusable(trs_manifest_parser *p, unsigned int flag, const char *expected)
{
	char field[160];
	where(p, field, sizeof(field));
	p->cur.flags |= flag;
	if (flag == TRS_MANIFEST_OBJECT_BAD_SIZE) {
		p->cur.size = 0;
		p->cur.has_size = 0;
	}
	return trs__manifest_parser_warn(p, "manifest.json: %s must be %s; this object fails, the others go on", field,
					 expected);
}

#define SIZE_EXPECTED "a non-negative whole number"
#define TAGS_EXPECTED "a list of {\"key\": \"value\"} or one {\"key\": \"value\", ...} object"

/* ---- values ---- */

static int store_string(trs_manifest_parser *p, const char **slot, const char *s, size_t len)
{
	char *copy = trs__arena_strdup(&p->m->arena, s, len);
	if (!copy)
		return trs__manifest_fail(p, TRS_ENOMEM, "out of memory storing the manifest");
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
		return trs__manifest_fail(p, TRS_EMANIFEST, "manifest.json must be a JSON object, got %s", kind_name(kind));
	case ST_ROOT:
		if ((p->field == F_TARGETS || p->field == F_OBJECTS) && kind != K_NULL)
			return wrong_type(p, "a list", kind);
		return 1; /* unknown top-level scalar, or a null list: ignored */
	case ST_TARGETS:
		return trs__manifest_fail(p, TRS_EMANIFEST, "manifest.json: targets[%zu] must be an object, got %s",
			    p->targets_seen, kind_name(kind));
	case ST_OBJECTS:
		return trs__manifest_fail(p, TRS_EMANIFEST, "manifest.json: objects[%zu] must be an object, got %s",
			    p->entries_seen, kind_name(kind));
	case ST_TAGS:
		return entry_unusable(p, TRS_MANIFEST_OBJECT_BAD_TAGS, TAGS_EXPECTED);
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
		/* C strings end at a NUL: flag it, so that the target fails instead of naming another bucket or key. */
		if (p->field == F_T_BUCKET && memchr(s, 0, len))
			t->flags |= TRS_MANIFEST_TARGET_BUCKET_HAS_NUL;
		if (p->field == F_T_KMS && memchr(s, 0, len))
			t->flags |= TRS_MANIFEST_TARGET_KMS_HAS_NUL;
		if (p->field == F_T_CLASS && memchr(s, 0, len))
			t->flags |= TRS_MANIFEST_TARGET_CLASS_HAS_NUL;
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
			return entry_unusable(p, TRS_MANIFEST_OBJECT_BAD_TAGS, TAGS_EXPECTED);
		if (p->field == F_O_SIZE) {
			if (kind != K_NUMBER || trs__manifest_parse_size(s, len, &o->size) < 0)
				return entry_unusable(p, TRS_MANIFEST_OBJECT_BAD_SIZE, SIZE_EXPECTED);
			o->has_size = 1;
			o->flags &= ~TRS_MANIFEST_OBJECT_BAD_SIZE; /* a repeated "size": the last one counts */
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
		int key_field = slot != &o->etag && slot != &o->creation_time && slot != &o->storage_class &&
				slot != &o->source_bucket;
		if (key_field && memchr(s, 0, len))
			o->flags |= TRS_MANIFEST_OBJECT_KEY_HAS_NUL;
		if (key_field && p->lone_surrogate)
			o->flags |= TRS_MANIFEST_OBJECT_KEY_HAS_SURROGATE;
		return store_string(p, slot, s, len);
	}
	case ST_TAG: {
		/* Tag values: strings; numbers and booleans are taken as their JSON text (liberal). */
		if (kind == K_NULL)
			return entry_unusable(p, TRS_MANIFEST_OBJECT_BAD_TAGS, TAGS_EXPECTED);
		const char *key = p->cur_tag_key;
		const char *value;
		if (kind == K_BOOL) {
			s = boolean ? "true" : "false";
			len = strlen(s);
		}
		value = trs__arena_strdup(&p->m->arena, s, len);
		if (!value)
			return trs__manifest_fail(p, TRS_ENOMEM, "out of memory");
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
				return trs__manifest_fail(p, TRS_ENOMEM, "out of memory");
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
	trs_manifest_parser *p = ctx;
	p->lone_surrogate = trs__json_scan_flagged(&p->scan, ++p->strings);
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
	if (!trs__manifest_parser_warn(p, "manifest.json: %s appears twice in one object; the last one is used", field))
		return 0;
	trs_manifest_target *t = p->state == ST_TARGET ? &p->m->targets[p->m->ntargets - 1] : NULL;
	trs_manifest_object *o = &p->cur;
	switch (p->field) {
	case F_TARGETS: trs__manifest_forget_targets(p); break;
	case F_OBJECTS: p->m->nobjects = 0; p->entries_seen = 0; break;
	case F_T_REGION: t->region = EMPTY; break;
	case F_T_BUCKET: t->bucket = EMPTY; t->flags &= ~TRS_MANIFEST_TARGET_BUCKET_HAS_NUL; break;
	case F_T_CLASS: t->storage_class = EMPTY; t->flags &= ~TRS_MANIFEST_TARGET_CLASS_HAS_NUL; break;
	case F_T_KMS: t->kms_key_arn = EMPTY; t->flags &= ~TRS_MANIFEST_TARGET_KMS_HAS_NUL; break;
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
	trs__json_scan_flagged(&p->scan, ++p->strings); /* a key is a string too: keep the count */
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
			return trs__manifest_fail(p, TRS_ENOMEM, "out of memory");
		p->field = F_TAG_VALUE;
		return 1;
	default:
		return 1;
	}
}

static int enter(trs_manifest_parser *p)
{
	if (++p->depth > p->limits.max_depth)
		return trs__manifest_fail(p, TRS_ELIMIT, "manifest.json nests deeper than %u levels; refusing it",
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
			return trs__manifest_fail(p, TRS_EMANIFEST, "manifest.json must be a JSON object, got a list");
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
			return trs__manifest_fail(p, TRS_EMANIFEST, "manifest.json: targets[%zu] must be an object, got a list",
				    p->targets_seen);
		trs_manifest *m = p->m;
		p->targets_seen++;
		if (m->ntargets == m->targets_cap) {
			/* Room for one past the limit: a target is counted once it is complete, repeats folded. */
			size_t cap = m->targets_cap ? m->targets_cap * 2 : 4;
			if (cap > TRS_MANIFEST_MAX_TARGETS + 1)
				cap = TRS_MANIFEST_MAX_TARGETS + 1;
			if (!trs__manifest_parser_memory_ok(p, (cap - m->targets_cap) * sizeof(*m->targets)))
				return 0;
			trs_manifest_target *t = realloc(m->targets, cap * sizeof(*t));
			if (!t)
				return trs__manifest_fail(p, TRS_ENOMEM, "out of memory");
			m->targets = t;
			m->targets_cap = cap;
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
			return trs__manifest_fail(p, TRS_EMANIFEST, "manifest.json: objects[%zu] must be an object, got a list",
				    p->entries_seen);
		reset_object(p);
		p->fields_seen = 0;
		p->entry_index = p->entries_seen++;
		p->state = ST_OBJECT;
		p->field = F_NONE;
		return 1;
	case ST_OBJECT:
		if (p->field == F_O_TAGS) {
			/* A list of one-pair objects, or (as some writers do) one object of pairs. */
			p->state = kind == K_ARRAY ? ST_TAGS : ST_TAG;
			p->tags_map = kind == K_MAP;
			return 1;
		}
		if (p->field == F_O_SIZE) {
			if (!entry_unusable(p, TRS_MANIFEST_OBJECT_BAD_SIZE, SIZE_EXPECTED))
				return 0;
			break;
		}
		if (p->field != F_NONE)
			return wrong_type(p, "a string", kind);
		break;
	case ST_TARGET:
		if (p->field != F_NONE)
			return wrong_type(p, p->field == F_T_BACKUP ? "true or false" : "a string", kind);
		break;
	case ST_TAGS:
		if (kind == K_MAP) {
			p->state = ST_TAG;
			return 1;
		}
		if (!entry_unusable(p, TRS_MANIFEST_OBJECT_BAD_TAGS, TAGS_EXPECTED))
			return 0;
		break;
	case ST_TAG:
		if (!entry_unusable(p, TRS_MANIFEST_OBJECT_BAD_TAGS, TAGS_EXPECTED))
			return 0;
		break;
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
		return trs__manifest_parser_warn(p, "objects[%zu] has no object_name; skipped (relative_key '%s')",
			    p->entry_index, TRS__SHORT(o->relative_key));
	}
	if (!p->cur_has_relkey || !*o->relative_key)
		o->relative_key = o->object_name;
	if (m->nobjects >= p->limits.max_objects)
		return trs__manifest_fail(p, TRS_ELIMIT, "manifest.json lists more than %llu objects; refusing it (raise the limit)",
			    (unsigned long long)p->limits.max_objects);
	if (p->tags.n) {
		trs_kv *tags = trs__arena_alloc(&m->arena, p->tags.n * sizeof(*tags), _Alignof(trs_kv));
		if (!tags)
			return trs__manifest_fail(p, TRS_ENOMEM, "out of memory");
		memcpy(tags, p->tags.items, p->tags.n * sizeof(*tags));
		o->tags = tags;
		o->ntags = p->tags.n;
	}
	if (m->nobjects == m->objects_cap) {
		size_t cap = m->objects_cap ? m->objects_cap * 2 : 64;
		if (!trs__manifest_parser_memory_ok(p, (cap - m->objects_cap) * sizeof(*m->objects)))
			return 0;
		trs_manifest_object *objs = realloc(m->objects, cap * sizeof(*objs));
		if (!objs)
			return trs__manifest_fail(p, TRS_ENOMEM, "out of memory for %zu manifest entries", cap);
		m->objects = objs;
		m->objects_cap = cap;
	}
	m->objects[m->nobjects++] = *o;
	return trs__manifest_parser_memory_ok(p, 0); /* its strings, in the arena */
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
	case ST_TARGET:
		p->state = ST_TARGETS;
		if (trs__manifest_fold_target(p) && p->m->ntargets > TRS_MANIFEST_MAX_TARGETS)
			return trs__manifest_fail(p, TRS_ELIMIT,
						  "manifest.json names more than %d targets (TRS_MANIFEST_MAX_TARGETS; a "
						  "repeated target counts once); refusing it",
						  TRS_MANIFEST_MAX_TARGETS);
		break;
	case ST_OBJECT:
		p->state = ST_OBJECTS;
		return finish_object(p);
	case ST_TAGS: p->state = ST_OBJECT; p->field = F_NONE; break;
	case ST_TAG:
		p->state = p->tags_map ? ST_OBJECT : ST_TAGS;
		if (p->tags_map)
			p->field = F_NONE;
		p->tags_map = 0;
		break;
	default: break;
	}
	return 1;
}

static int cb_start_map(void *ctx) { return open_container(ctx, K_MAP); }
static int cb_start_array(void *ctx) { return open_container(ctx, K_ARRAY); }
static int cb_end(void *ctx) { return close_container(ctx); }

const yajl_callbacks trs__manifest_callbacks = {
	cb_null, cb_boolean, NULL, NULL, cb_number, cb_string,
	cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};
