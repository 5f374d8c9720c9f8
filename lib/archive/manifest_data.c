/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parsed manifest: its accessors, the index of its targets (a target
 * repeated is written once), and the indexes built once every entry is in:
 * relative_key -> entry (joining tar members with their entries), and
 * destination keys written twice.
 *
 * The tar holds one member per name, so the entries that share a
 * relative_key share one member. Two entries that write one destination key
 * would race each other; the later entry in the manifest wins, as the last
 * write would in the source side's order, whatever the timing here.
 */
#include "manifest_impl.h"
#include "object_iter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int trs__manifest_warn(trs_manifest *m, const char *fmt, ...)
{
	if (m->nwarnings >= 1000) {
		m->nwarnings_dropped++; /* enough to diagnose; do not let warnings grow without bound */
		return 0;
	}
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(msg))
		trs__text_cut(msg, sizeof(msg) - 1);
	char **w = realloc(m->warnings, (m->nwarnings + 1) * sizeof(*w));
	if (!w)
		return TRS_ENOMEM;
	m->warnings = w;
	w[m->nwarnings] = trs__arena_strdup(&m->arena, msg, strlen(msg));
	if (!w[m->nwarnings])
		return TRS_ENOMEM;
	m->nwarnings++;
	return 0;
}

/* Parse a JSON number as an exact unsigned size: integers of any length up
 * to 2^64-1 exactly; floats only when integral (1048576.0, 1e3). */
int trs__manifest_parse_size(const char *s, size_t len, uint64_t *out)
{
	char buf[64];
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] == '-')
		return (strspn(buf + 1, "0.eE+-") == len - 1) ? (*out = 0, 0) : -1; /* -0 is 0 */
	if (strspn(buf, "0123456789") == len) {
		errno = 0;
		char *end;
		unsigned long long v = strtoull(buf, &end, 10);
		if (errno == ERANGE || *end)
			return -1;
		*out = v;
		return 0;
	}
	/* Decimal with only zeros after the point: exact without going through double. */
	char *dot = strchr(buf, '.');
	if (dot && !strpbrk(buf, "eE") && strspn(dot + 1, "0") == strlen(dot + 1)) {
		*dot = '\0';
		return trs__manifest_parse_size(buf, (size_t)(dot - buf), out);
	}
	errno = 0;
	char *end;
	double d = strtod(buf, &end);
	if (errno == ERANGE || *end || !(d >= 0) || d > 9007199254740992.0 || (double)(uint64_t)d != d)
		return -1;
	*out = (uint64_t)d;
	return 1;
}

static uint64_t hash_key(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static size_t table_size(size_t n)
{
	size_t size = 16;
	while (size < n * 2)
		size *= 2;
	return size;
}

/* Render e's destination key into b (reused). */
static int dest_key(const trs_manifest_object *e, trs__buf *b, trs_error *err)
{
	size_t need = trs_manifest_dest_key(e, NULL, 0) + 1;
	b->len = 0;
	if (trs__buf_grow(b, need, err) < 0)
		return TRS_ENOMEM;
	b->len = trs_manifest_dest_key(e, b->data, need);
	return 0;
}

/* Walk the entries from the last: one whose destination key a later entry took is superseded. */
static int mark_superseded(trs_manifest *m, trs_error *err)
{
	size_t mask = table_size(m->nobjects) - 1;
	uint32_t *table = calloc(mask + 1, sizeof(*table));
	uint64_t *hashes = calloc(mask + 1, sizeof(*hashes));
	trs__buf key = TRS_BUF_INIT, other = TRS_BUF_INIT;
	int rc = table && hashes ? 0 : trs__error_set(err, TRS_ENOMEM, "out of memory indexing the manifest");
	for (size_t i = m->nobjects; rc == 0 && i-- > 0;) {
		trs_manifest_object *e = &m->objects[i];
		if (e->flags & (TRS_MANIFEST_OBJECT_KEY_HAS_NUL | TRS_MANIFEST_OBJECT_KEY_HAS_SURROGATE))
			continue; /* never written, so it takes no key from another */
		if ((rc = dest_key(e, &key, err)) < 0)
			break;
		uint64_t h = hash_key(key.data, key.len);
		size_t slot = h & mask;
		size_t winner = SIZE_MAX;
		for (; table[slot]; slot = (slot + 1) & mask) {
			if (hashes[slot] != h)
				continue;
			if ((rc = dest_key(&m->objects[table[slot] - 1], &other, err)) < 0)
				break;
			if (other.len == key.len && !memcmp(other.data, key.data, key.len)) {
				winner = table[slot] - 1;
				break;
			}
		}
		if (rc < 0)
			break;
		if (winner == SIZE_MAX) {
			table[slot] = (uint32_t)(i + 1);
			hashes[slot] = h;
			continue;
		}
		e->flags |= TRS_MANIFEST_OBJECT_SUPERSEDED;
		if (trs__manifest_warn(m, "objects[%zu] and objects[%zu] both write key '%s'; the later entry, objects[%zu], wins",
				       i, winner, TRS__SHORT(key.data), winner) < 0)
			rc = trs__error_set(err, TRS_ENOMEM, "out of memory");
	}
	free(table);
	free(hashes);
	trs__buf_free(&key);
	trs__buf_free(&other);
	return rc;
}

/* ---- targets ---- */

static uint64_t target_hash(const trs_manifest_target *t)
{
	uint64_t h = hash_key(t->region, strlen(t->region) + 1); /* with its NUL: "ab"+"c" is not "a"+"bc" */
	h ^= hash_key(t->bucket, strlen(t->bucket)) * 31;
	return h ^ (uint64_t)(t->backup ? 2 : 1) ^ (uint64_t)(t->flags & TRS_MANIFEST_TARGET_BUCKET_HAS_NUL) << 8;
}

/* One target writes the same keys as another: same region, same bucket (even cut at the same NUL), same role. */
static int same_target(const trs_manifest_target *a, const trs_manifest_target *b)
{
	return !strcmp(a->region, b->region) && !strcmp(a->bucket, b->bucket) && !a->backup == !b->backup &&
	       (a->flags & TRS_MANIFEST_TARGET_BUCKET_HAS_NUL) == (b->flags & TRS_MANIFEST_TARGET_BUCKET_HAS_NUL);
}

/*
 * A target repeated writes every object again to the same key (65,536
 * copies of one target were 65,536 PUTs of each object), so a repeat is
 * folded into the first: one write. The source side writes its targets in
 * order, and the last write is what stands, so the repeat's storage_class
 * and kms_key_arn replace the first's.
 */
int trs__manifest_fold_target(trs_manifest_parser *p)
{
	trs_manifest *m = p->m;
	size_t last = m->ntargets - 1;
	trs_manifest_target *t = &m->targets[last];
	size_t slot = target_hash(t) & (TARGET_SLOTS - 1);
	for (; p->target_slots[slot]; slot = (slot + 1) & (TARGET_SLOTS - 1)) {
		trs_manifest_target *kept = &m->targets[p->target_slots[slot] - 1];
		if (!same_target(kept, t))
			continue;
		p->repeat_differs |= strcmp(kept->storage_class, t->storage_class) || strcmp(kept->kms_key_arn, t->kms_key_arn) ||
				     kept->flags != t->flags;
		if (!p->target_repeats++) {
			p->first_repeat = p->targets_seen - 1;
			p->first_repeated = p->target_slots[slot] - 1;
		}
		kept->storage_class = t->storage_class;
		kept->kms_key_arn = t->kms_key_arn;
		kept->flags = t->flags;
		m->ntargets--;
		return 0;
	}
	if (m->ntargets <= TRS_MANIFEST_MAX_TARGETS) { /* one more is refused by the caller */
		p->target_slots[slot] = (uint16_t)m->ntargets;
		p->target_at[last] = (uint32_t)(p->targets_seen - 1);
	}
	return 1;
}

void trs__manifest_forget_targets(trs_manifest_parser *p)
{
	p->m->ntargets = 0;
	p->targets_seen = 0;
	p->target_repeats = 0;
	p->repeat_differs = 0;
	memset(p->target_slots, 0, sizeof(p->target_slots));
}

int trs__manifest_warn_repeats(trs_manifest_parser *p)
{
	if (!p->target_repeats)
		return 1;
	const trs_manifest_target *t = &p->m->targets[p->first_repeated];
	return trs__manifest_parser_warn(
		p,
		"manifest.json: targets[%zu] repeats targets[%zu] (region '%s', %sbucket '%s'); %zu repeat%s of an "
		"earlier target in all: each target is written once, not once per repeat%s",
		p->first_repeat, (size_t)p->target_at[p->first_repeated], t->region, t->backup ? "backup " : "", t->bucket,
		p->target_repeats, p->target_repeats == 1 ? "" : "s",
		p->repeat_differs ? "; where a repeat's storage_class or kms_key_arn differs, the last one is used, as "
				    "its write would have been the last"
				  : "");
}

/* ---- relative keys ---- */

static size_t find_slot(const trs_manifest *m, const char *key, size_t len)
{
	size_t slot = hash_key(key, len) & m->index_mask;
	while (m->index[slot]) {
		const trs_manifest_object *o = &m->objects[m->index[slot] - 1];
		if (strncmp(o->relative_key, key, len) == 0 && o->relative_key[len] == '\0')
			break;
		slot = (slot + 1) & m->index_mask;
	}
	return slot;
}

int trs__manifest_build_index(trs_manifest *m, trs_error *err)
{
	if (mark_superseded(m, err) < 0)
		return err ? err->code : TRS_ENOMEM;
	size_t size = table_size(m->nobjects);
	m->index = calloc(size, sizeof(*m->index));
	if (!m->index)
		return trs__error_set(err, TRS_ENOMEM, "out of memory indexing %zu manifest entries", m->nobjects);
	m->index_mask = size - 1;
	/* A relative_key's member serves its first entry that is not superseded. */
	for (size_t i = 0; i < m->nobjects; i++) {
		const trs_manifest_object *e = &m->objects[i];
		size_t slot = find_slot(m, e->relative_key, strlen(e->relative_key));
		if (!m->index[slot] || ((m->objects[m->index[slot] - 1].flags & TRS_MANIFEST_OBJECT_SUPERSEDED) &&
					!(e->flags & TRS_MANIFEST_OBJECT_SUPERSEDED)))
			m->index[slot] = (uint32_t)(i + 1);
	}
	/* Any other entry that still has to be written can never get its own member. */
	for (size_t i = 0; i < m->nobjects; i++) {
		trs_manifest_object *e = &m->objects[i];
		size_t first = m->index[find_slot(m, e->relative_key, strlen(e->relative_key))] - 1;
		if (first == i || (e->flags & TRS_MANIFEST_OBJECT_SUPERSEDED))
			continue;
		e->flags |= TRS_MANIFEST_OBJECT_REPEATS_KEY;
		if (trs__manifest_warn(m,
				       "objects[%zu] repeats relative_key '%s' of objects[%zu]; the archive holds one "
				       "member for both, restored for objects[%zu]: this entry fails",
				       i, TRS__SHORT(e->relative_key), first, first) < 0)
			return trs__error_set(err, TRS_ENOMEM, "out of memory");
	}
	return 0;
}

TRS_EXTERN(const trs_manifest_object *) trs_manifest_find(const trs_manifest *m, const char *key, size_t len)
{
	if (!m || !m->index)
		return NULL;
	size_t slot = find_slot(m, key, len);
	return m->index[slot] ? &m->objects[m->index[slot] - 1] : NULL;
}

TRS_EXTERN(size_t) trs_manifest_object_index(const trs_manifest *m, const trs_manifest_object *obj)
{
	return (size_t)(obj - m->objects);
}

TRS_EXTERN(size_t) trs_manifest_dest_key(const trs_manifest_object *o, char *buf, size_t size)
{
	int n = *o->source_prefix ? snprintf(buf, size, "%s/%s", o->source_prefix, o->object_name)
				  : snprintf(buf, size, "%s", o->object_name);
	return n < 0 ? 0 : (size_t)n;
}

TRS_EXTERN(size_t) trs_manifest_object_count(const trs_manifest *m)
{
	return m ? m->nobjects : 0;
}

TRS_EXTERN(const trs_manifest_object *) trs_manifest_object_at(const trs_manifest *m, size_t i)
{
	return m && i < m->nobjects ? &m->objects[i] : NULL;
}

TRS_EXTERN(size_t) trs_manifest_target_count(const trs_manifest *m)
{
	return m ? m->ntargets : 0;
}

TRS_EXTERN(const trs_manifest_target *) trs_manifest_target_at(const trs_manifest *m, size_t i)
{
	return m && i < m->ntargets ? &m->targets[i] : NULL;
}

TRS_EXTERN(size_t) trs_manifest_memory(const trs_manifest *m)
{
	if (!m)
		return 0;
	return sizeof(*m) + m->arena.bytes + m->objects_cap * sizeof(*m->objects) +
	       m->targets_cap * sizeof(*m->targets) + m->nwarnings * sizeof(*m->warnings) +
	       (m->index ? (m->index_mask + 1) * sizeof(*m->index) : 0);
}

TRS_EXTERN(uint64_t) trs_manifest_json_bytes(const trs_manifest *m)
{
	return m ? m->json_bytes : 0;
}

TRS_EXTERN(size_t) trs_manifest_warning_count(const trs_manifest *m)
{
	return m ? m->nwarnings : 0;
}

size_t trs__manifest_warnings_dropped(const trs_manifest *m)
{
	return m ? m->nwarnings_dropped : 0;
}

TRS_EXTERN(const char *) trs_manifest_warning_at(const trs_manifest *m, size_t i)
{
	return m && i < m->nwarnings ? m->warnings[i] : NULL;
}

TRS_EXTERN(void) trs_manifest_free(trs_manifest *m)
{
	if (!m)
		return;
	trs__arena_free(&m->arena);
	free(m->targets);
	free(m->objects);
	free(m->warnings);
	free(m->index);
	free(m);
}

TRS_EXTERN(int) trs_manifest_parse(const char *json, size_t len, trs_manifest **out, trs_error *err)
{
	trs_manifest_parser *p;
	*out = NULL;
	int rc = trs_manifest_parser_new(&p, NULL, err);
	if (rc < 0)
		return rc;
	rc = trs_manifest_parser_feed(p, json, len, err);
	if (rc == 0)
		rc = trs_manifest_parser_finish(p, out, err);
	trs_manifest_parser_free(p);
	return rc;
}
