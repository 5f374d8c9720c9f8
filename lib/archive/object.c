/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Objects of an archive joined with their manifest entries, and what each
 * means for the targets in this region: destination key, tags within S3's
 * limits, storage class, KMS key; and a body that checks itself.
 */
#include "digest.h"
#include "object_iter.h"
#include "link_memo.h"
#include "log_repeat.h"
#include "tags.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define S3_MAX_KEY_BYTES 1024
#define OBJECTS_PREFIX "objects/"

typedef enum { BODY_UNREAD, BODY_READING, BODY_DONE, BODY_FAILED } body_state;

struct trs_object_iter {
	const trs_ctx *ctx;
	trs_archive *archive;
	const trs_manifest *manifest;
	uint64_t *joined_at;       /* per manifest entry: 1 + the tar index of the member joined, 0: none yet */
	int repeat;                /* the object returned is a later copy of a member already joined */
	int manifest_known;
	uint64_t manifest_index;   /* the manifest.json member the manifest came from */
	unsigned char manifest_md5[16];
	size_t missing_cursor;
	int tar_done;
	int defer_missing;         /* at the tar's end, return 0 instead of the missing entries */
	int pass2;                 /* a second walk: most skips were already reported */
	uint64_t loud_before;      /* in pass 2, members before this index were not yet looked at... */
	unsigned char *joined_early; /* ...unless their bit is here: kept before the manifest and joined */
	uint64_t joined_early_bits;
	uint64_t skipped_members;
	trs__log_repeats *repeats; /* &own_repeats, or the archive's (trs__object_iter_share_repeats) */
	trs__log_repeats own_repeats;
	trs__link_memo links;      /* members of objects/ that are links or devices, for the entries they name */

	trs_object obj;
	trs_member member;
	trs_object_put *puts;
	size_t puts_cap;
	char *dest_key;
	size_t dest_key_cap;
	trs__tagset tagset;
	const char **kms_problems; /* per target: why its kms_key_arn is refused, or NULL */
	size_t kms_header_bytes;   /* the longest KMS key id header of a put here (it shares S3's 8 KB) */

	trs_body body;
	body_state body_state;
	uint64_t body_read;
	int check_md5;
	char md5_expected[33];
	EVP_MD_CTX *md5;
};

/* A plain MD5 etag: 32 hex digits, maybe in quotes; "-N" multipart etags are not. */
int trs__plain_md5(const char *etag, char out[33])
{
	size_t len = strlen(etag);
	if (len == 34 && etag[0] == '"' && etag[33] == '"') {
		etag++;
		len -= 2;
	}
	if (len != 32)
		return 0;
	for (size_t i = 0; i < 32; i++) {
		char c = etag[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
		out[i] = c;
	}
	out[32] = '\0';
	return 1;
}

/* Tags and metadata are the same for every target of an object: build them once. */
static int build_tags(trs_object_iter *it, const trs_manifest_object *e, trs_error *err)
{
	trs__tagset *ts = &it->tagset;
	if (trs__tagset_build(ts, e, it->dest_key, it->kms_header_bytes, err) < 0)
		return TRS_ENOMEM;
	it->obj.overflow_tags = ts->carried;
	if ((ts->dropped || (ts->carried && trs__log_enabled(it->ctx, TRS_LOG_INFO))) &&
	    !trs__repeat_log(it->repeats, it->ctx, TRS__REPEAT_TAGS))
		return 0;
	if (ts->dropped)
		trs__log(it->ctx, TRS_LOG_WARN,
			 "object's tags do not all fit in S3's tags (10, 8 KB of headers) and user metadata (2 KB); "
			 "the object is written without the tags named here",
			 "archive", trs_archive_name(it->archive), "relative_key", e->relative_key, "dropped_tags",
			 ts->dropped_list.data, NULL);
	else if (ts->carried && trs__log_enabled(it->ctx, TRS_LOG_INFO))
		trs__log(it->ctx, TRS_LOG_INFO,
			 "object has tags S3 does not take as tags (more than 10, too long, or refused characters); "
			 "they are kept as user metadata",
			 "archive", trs_archive_name(it->archive), "relative_key", e->relative_key, NULL);
	return 0;
}

static int build_puts(trs_object_iter *it, const trs_manifest_object *e, trs_error *err)
{
	trs_object *o = &it->obj;
	const trs_manifest *m = it->manifest;
	const char *region = it->ctx->region;
	o->entry = e;
	o->nputs = o->other_region_targets = o->backup_targets = o->overflow_tags = 0;

	size_t ntargets = trs_manifest_target_count(m);
	if (ntargets > it->puts_cap) {
		trs_object_put *p = realloc(it->puts, ntargets * sizeof(*p));
		if (!p)
			return trs__error_set(err, TRS_ENOMEM, "out of memory");
		it->puts = p;
		it->puts_cap = ntargets;
	}
	size_t need = trs_manifest_dest_key(e, NULL, 0) + 1;
	if (need > it->dest_key_cap) {
		char *k = realloc(it->dest_key, need);
		if (!k)
			return trs__error_set(err, TRS_ENOMEM, "out of memory");
		it->dest_key = k;
		it->dest_key_cap = need;
	}
	trs_manifest_dest_key(e, it->dest_key, need);
	int tags_built = 0;
	int md5 = trs__plain_md5(e->etag, it->md5_expected);

	for (size_t i = 0; i < ntargets; i++) {
		const trs_manifest_target *t = trs_manifest_target_at(m, i);
		if (e->flags & TRS_MANIFEST_OBJECT_SUPERSEDED && !t->backup && !strcmp(t->region, region))
			continue; /* a later entry writes this key (the manifest warned) */
		if (strcmp(t->region, region) != 0) {
			o->other_region_targets++;
			continue;
		}
		if (t->backup) {
			o->backup_targets++;
			continue;
		}
		if (!tags_built) {
			if (build_tags(it, e, err) < 0)
				return TRS_ENOMEM;
			tags_built = 1;
		}
		trs_object_put *p = &it->puts[o->nputs++];
		trs_put_request r = TRS_PUT_REQUEST_INIT;
		r.bucket = t->bucket;
		r.key = it->dest_key;
		r.size = e->has_size ? e->size : 0;
		r.storage_class = *t->storage_class ? t->storage_class
				  : *e->storage_class ? e->storage_class
						      : "STANDARD";
		r.kms_key_id = *t->kms_key_arn ? t->kms_key_arn : NULL;
		r.tags = it->tagset.tags;
		r.ntags = it->tagset.ntags;
		r.metadata = it->tagset.metadata;
		r.nmetadata = it->tagset.nmetadata;
		r.content_md5_hex = md5 ? it->md5_expected : NULL;
		p->request = r;
		p->target = t;
		p->error = 0;
		p->error_message = NULL;
		const char *bucket_problem = *t->bucket ? trs__bucket_name_problem(t->bucket) : NULL;
		if (!*t->bucket) {
			p->error = TRS_EINVAL;
			p->error_message = "the manifest target has no bucket";
		} else if (t->flags & TRS_MANIFEST_TARGET_BUCKET_HAS_NUL) {
			p->error = TRS_EINVAL;
			p->error_message = "the manifest target's bucket name contains a NUL byte; not written (the name "
					   "shown ends at it)";
		} else if (bucket_problem) {
			p->error = TRS_EINVAL;
			p->error_message = bucket_problem;
		} else if (it->kms_problems[i]) {
			p->error = TRS_EINVAL;
			p->error_message = it->kms_problems[i];
		} else if (t->flags & TRS_MANIFEST_TARGET_CLASS_HAS_NUL) {
			p->error = TRS_EINVAL;
			p->error_message = "the manifest target's storage_class holds a NUL byte; not written (the class "
					   "ends at it, so another class would be used)";
		} else if (e->flags & TRS_MANIFEST_OBJECT_BAD_SIZE) {
			p->error = TRS_EMANIFEST;
			p->error_message = "the manifest entry's size is not a non-negative whole number, so its bytes "
					   "cannot be checked; not written (ask the source side to resend)";
		} else if (e->flags & TRS_MANIFEST_OBJECT_BAD_TAGS) {
			p->error = TRS_EMANIFEST;
			p->error_message = "the manifest entry's tags are neither a list of {\"key\": \"value\"} nor one "
					   "object of pairs; not written (ask the source side to resend)";
		} else if (e->flags & TRS_MANIFEST_OBJECT_REPEATS_KEY) {
			p->error = TRS_EMANIFEST;
			p->error_message = "another manifest entry has the same relative_key; the archive's one member for "
					   "it was restored for that entry, not this one (ask the source side to send this "
					   "object on its own)";
		} else if (e->flags & TRS_MANIFEST_OBJECT_KEY_HAS_NUL) {
			p->error = TRS_EUNSAFE;
			p->error_message = "the object's key contains a NUL byte";
		} else if (e->flags & TRS_MANIFEST_OBJECT_KEY_HAS_SURROGATE) {
			p->error = TRS_EUNSAFE;
			p->error_message = "the object's key holds a lone UTF-16 surrogate (\\ud800-\\udfff) that no UTF-8 "
					   "key can carry; not written (as '?' it could overwrite another object)";
		} else if (!*it->dest_key) {
			p->error = TRS_EUNSAFE;
			p->error_message = "the destination key is empty";
		} else if (need - 1 > S3_MAX_KEY_BYTES) {
			p->error = TRS_ELIMIT;
			p->error_message = "the destination key is longer than S3's 1024 bytes";
		}
	}
	o->puts = it->puts;
	return 0;
}

TRS_EXTERN(int) trs_object_iter_new(trs_object_iter **out, trs_archive *a, const trs_manifest *m, const trs_ctx *ctx,
				    trs_error *err)
{
	*out = NULL;
	if (!a || !m)
		return trs__error_set(err, TRS_EINVAL, "trs_object_iter_new needs an archive and a manifest");
	trs_object_iter *it = trs__calloc(1, sizeof(*it), err);
	if (!it)
		return TRS_ENOMEM;
	it->ctx = TRS_CTX(ctx);
	it->archive = a;
	it->manifest = m;
	it->repeats = &it->own_repeats;
	it->joined_at = trs__calloc(trs_manifest_object_count(m) + 1, sizeof(*it->joined_at), err);
	it->kms_problems = trs__calloc(trs_manifest_target_count(m) + 1, sizeof(*it->kms_problems), err);
	it->md5 = EVP_MD_CTX_new();
	if (!it->joined_at || !it->kms_problems || !it->md5) {
		trs_object_iter_free(it);
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	}
	/* Targets are the same for every object: judge their KMS key ids once. */
	for (size_t i = 0; i < trs_manifest_target_count(m); i++) {
		const trs_manifest_target *t = trs_manifest_target_at(m, i);
		it->kms_problems[i] = trs__kms_key_problem(t->kms_key_arn, t->flags);
		if (!it->kms_problems[i] && *t->kms_key_arn && !t->backup && !strcmp(t->region, it->ctx->region) &&
		    trs__kms_header_bytes(t->kms_key_arn) > it->kms_header_bytes)
			it->kms_header_bytes = trs__kms_header_bytes(t->kms_key_arn);
	}
	*out = it;
	return 0;
}

static void skip_member(trs_object_iter *it, const char *path, const char *why, trs__repeat_kind kind)
{
	it->skipped_members++;
	if (trs__repeat_log(it->repeats, it->ctx, kind))
		trs__log(it->ctx, TRS_LOG_WARN, why, "archive", trs_archive_name(it->archive), "member", path, NULL);
}

void trs__object_iter_share_repeats(trs_object_iter *it, trs__log_repeats *repeats)
{
	it->repeats = repeats;
}

void trs__object_iter_take_links(trs_object_iter *it, trs__link_memo *links)
{
	trs__link_memo_free(&it->links);
	it->links = *links;
	memset(links, 0, sizeof(*links));
}

/*
 * An entry without a regular file: when the archive holds its name as a
 * link or a device, its puts fail saying so, not that it was lost upstream
 * (the pipeline's word for the others).
 */
static void missing_as_held(trs_object_iter *it, const trs_manifest_object *e)
{
	const char *why;
	int code = TRS_EUNSAFE;
	switch (trs__link_memo_find(&it->links, e->relative_key)) {
	case TRS_MEMBER_SYMLINK:
		why = "the archive holds this object as a symbolic link, which is never restored (a link could point "
		      "anywhere); not written (ask the source side to send the file itself)";
		break;
	case TRS_MEMBER_HARDLINK:
		why = "the archive holds this object as a hard link, which is never restored; not written (ask the "
		      "source side to send the file itself)";
		break;
	case TRS_MEMBER_OTHER:
		why = "the archive holds this object as a device, FIFO or socket, which is never restored; not written";
		break;
	default:
		if (!it->links.forgotten)
			return;
		code = TRS_ENOTFOUND;
		why = "the manifest lists this object but the archive holds no regular file for it: lost upstream, or "
		      "held as one of the archive's many links, devices or FIFOs, which are never restored";
	}
	for (size_t i = 0; i < it->obj.nputs; i++) {
		if (!it->puts[i].error) {
			it->puts[i].error = code;
			it->puts[i].error_message = why;
		}
	}
}

const char *trs__member_skip_reason(const char *path, trs_member_type type)
{
	if (path[0] == '.' && path[1] == '/')
		path += 2;
	if (type == TRS_MEMBER_DIRECTORY || trs__archive_is_manifest(path))
		return NULL;
	if (strncmp(path, OBJECTS_PREFIX, strlen(OBJECTS_PREFIX)) != 0)
		return "member is outside objects/; skipped";
	switch (type) {
	case TRS_MEMBER_FILE: return NULL;
	case TRS_MEMBER_SYMLINK: return "member is a symbolic link; links are never restored";
	case TRS_MEMBER_HARDLINK: return "member is a hard link; links are never restored";
	default: return "member is a device, FIFO or socket; never restored";
	}
}

/* Mark member `index` as looked at before the manifest; out of memory, it may be said twice. */
static void mark_joined_early(trs_object_iter *it, uint64_t index)
{
	if (index >= it->joined_early_bits) {
		uint64_t bits = (index + 1) * 2 > 4096 ? (index + 1) * 2 : 4096;
		bits = (bits + 7) & ~(uint64_t)7; /* whole bytes: every bit counted is allocated */
		unsigned char *p = realloc(it->joined_early, (size_t)(bits / 8));
		if (!p)
			return;
		memset(p + it->joined_early_bits / 8, 0, (size_t)((bits - it->joined_early_bits) / 8));
		it->joined_early = p;
		it->joined_early_bits = bits;
	}
	it->joined_early[index / 8] |= (unsigned char)(1u << (index % 8));
}

static bool joined_early(const trs_object_iter *it, uint64_t index)
{
	return index < it->joined_early_bits && (it->joined_early[index / 8] & (1u << (index % 8)));
}

/*
 * Join one member with its entry and build its puts. Returns 1 with *out
 * set, 0 when the member is not an object to restore (reported once), or a
 * negative code. `index` is the member's position in the tar.
 */
static int join_member(trs_object_iter *it, const char *path, trs_member_type type, uint64_t index,
		       const trs_object **out, trs_error *err)
{
	/* In a second walk only members before the manifest that were not kept
	 * (held, spooled or staged) are new; every other skip was reported the first time. */
	int loud = !it->pass2 || (index < it->loud_before && !joined_early(it, index));
	const char *why = trs__member_skip_reason(path, type);
	if (why) {
		if (!it->pass2) {
			trs__link_memo_add(&it->links, path, type);
			skip_member(it, path, why, TRS__REPEAT_MEMBER_SKIPPED);
		}
		return 0;
	}
	if (path[0] == '.' && path[1] == '/')
		path += 2;
	if (type == TRS_MEMBER_DIRECTORY || trs__archive_is_manifest(path))
		return 0;
	const char *rel = path + strlen(OBJECTS_PREFIX);
	const trs_manifest_object *e = trs_manifest_find(it->manifest, rel, strlen(rel));
	if (!e) {
		if (loud)
			skip_member(it, path, "member has no manifest entry; skipped", TRS__REPEAT_MEMBER_UNLISTED);
		return 0;
	}
	size_t idx = trs_manifest_object_index(it->manifest, e);
	/* A name twice in the tar: Python's tarfile, on the source side, reads the
	 * last copy, so each later copy is written over the one before. */
	it->repeat = 0;
	if (it->joined_at[idx]) {
		if (index < it->joined_at[idx])
			return 0; /* this copy or a later one was joined before (a second walk) */
		it->repeat = 1;
		if (loud && trs__repeat_log(it->repeats, it->ctx, TRS__REPEAT_MEMBER_TWICE))
			trs__log(it->ctx, TRS_LOG_WARN, "member appears twice in the archive; the last copy wins", "archive",
				 trs_archive_name(it->archive), "member", path, NULL);
	}
	it->joined_at[idx] = index + 1;
	if (build_puts(it, e, err) < 0)
		return TRS_ENOMEM;
	it->obj.status = TRS_OBJECT_READY;
	it->obj.member_path = path;
	*out = &it->obj;
	return 1;
}

int trs__object_iter_join(trs_object_iter *it, const char *path, uint64_t index, uint64_t size,
			  const trs_object **out, trs_error *err)
{
	*out = NULL;
	if (!it->pass2)
		mark_joined_early(it, index);
	it->body_state = BODY_FAILED; /* the caller holds the bytes */
	it->member.size = size;
	return join_member(it, path, TRS_MEMBER_FILE, index, out, err);
}

int trs__object_iter_repeat(const trs_object_iter *it)
{
	return it->repeat;
}

void trs__object_iter_defer_missing(trs_object_iter *it, int defer)
{
	it->defer_missing = defer;
}

void trs__object_iter_restart(trs_object_iter *it, uint64_t loud_before)
{
	it->tar_done = 0;
	it->pass2 = 1;
	it->loud_before = loud_before;
}

void trs__object_iter_add_skipped(trs_object_iter *it, uint64_t n)
{
	it->skipped_members += n;
}

uint64_t trs__object_iter_member_size(const trs_object_iter *it)
{
	return it->member.size;
}

void trs__object_iter_set_manifest(trs_object_iter *it, uint64_t index, const unsigned char md5[16])
{
	it->manifest_known = 1;
	it->manifest_index = index;
	memcpy(it->manifest_md5, md5, 16);
}

/*
 * manifest.json again, at another place in the tar. Python's tarfile, on
 * the source side, would read the last copy; here the first one already
 * decided where objects went. The same bytes: a warning. Other bytes: the
 * archive is refused, as neither reading can be trusted.
 */
static int second_manifest(trs_object_iter *it, trs_error *err)
{
	const char *archive = trs_archive_name(it->archive);
	EVP_MD_CTX *md5 = EVP_MD_CTX_new();
	if (!md5 || !EVP_DigestInit_ex(md5, trs__md5_md(), NULL)) {
		EVP_MD_CTX_free(md5);
		return trs__error_set(err, TRS_ENOMEM, "cannot start an MD5 digest");
	}
	unsigned char buf[65536], digest[16];
	int64_t n;
	while ((n = trs_archive_read(it->archive, buf, sizeof(buf), err)) > 0)
		EVP_DigestUpdate(md5, buf, (size_t)n);
	EVP_DigestFinal_ex(md5, digest, NULL);
	EVP_MD_CTX_free(md5);
	if (n < 0)
		return (int)n;
	if (memcmp(digest, it->manifest_md5, 16) != 0)
		return trs__error_set(err, TRS_EMANIFEST,
				      "archive %s holds a second, different manifest.json (member %llu); the source side "
				      "would read the last one, but objects were already placed by the first: the archive "
				      "is refused (ask the source side to resend it)",
				      TRS__SHORT(archive), (unsigned long long)it->member.index);
	if (!it->pass2)
		trs__log(it->ctx, TRS_LOG_WARN, "archive holds manifest.json twice, both the same; it is read once",
			 "archive", archive, NULL);
	return 0;
}

TRS_EXTERN(int) trs_object_iter_next(trs_object_iter *it, const trs_object **out, trs_error *err)
{
	*out = NULL;
	it->body_state = BODY_UNREAD;
	while (!it->tar_done) {
		int rc = trs_archive_next(it->archive, &it->member, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			it->tar_done = 1;
			break;
		}
		if (it->manifest_known && it->member.type == TRS_MEMBER_FILE && it->member.index != it->manifest_index &&
		    trs__archive_is_manifest(it->member.path)) {
			if ((rc = second_manifest(it, err)) < 0)
				return rc;
			continue;
		}
		rc = join_member(it, it->member.path, it->member.type, it->member.index, out, err);
		if (rc != 0)
			return rc;
	}
	if (it->defer_missing)
		return 0;
	size_t n = trs_manifest_object_count(it->manifest);
	while (it->missing_cursor < n) {
		size_t i = it->missing_cursor++;
		if (it->joined_at[i])
			continue;
		it->repeat = 0;
		if (build_puts(it, trs_manifest_object_at(it->manifest, i), err) < 0)
			return TRS_ENOMEM;
		missing_as_held(it, trs_manifest_object_at(it->manifest, i));
		it->obj.status = TRS_OBJECT_MISSING;
		it->obj.member_path = NULL;
		it->body_state = BODY_FAILED;
		*out = &it->obj;
		return 1;
	}
	if (it->repeats == &it->own_repeats)
		trs__repeat_summary(it->repeats, it->ctx, trs_archive_name(it->archive));
	return 0;
}

int trs__check_integrity(const trs_manifest_object *e, uint64_t size, const char *md5_hex, trs_error *err)
{
	char expected[33];
	if (e->has_size && e->size != size)
		return trs__error_set(err, TRS_EINTEGRITY,
				      "the archive holds %llu bytes but the manifest says %llu; not written (the archive is "
				      "corrupt or the manifest wrong: ask the source side to resend)",
				      (unsigned long long)size, (unsigned long long)e->size);
	if (md5_hex && trs__plain_md5(e->etag, expected) && strcmp(md5_hex, expected) != 0)
		return trs__error_set(err, TRS_EINTEGRITY,
				      "MD5 of its bytes is %s but the manifest etag is %s; not written (the archive is "
				      "corrupt: ask the source side to resend)",
				      md5_hex, expected);
	return 0;
}

/* An integrity failure of the current body, with the archive and object named. */
static int64_t body_integrity(trs_object_iter *it, uint64_t size, const char *md5_hex, trs_error *err)
{
	int rc = trs__check_integrity(it->obj.entry, size, md5_hex, err);
	if (rc < 0) {
		it->body_state = BODY_FAILED;
		trs__error_prefix(err, "archive %s, object %s", TRS__SHORT(trs_archive_name(it->archive)),
				  TRS__SHORT(it->obj.entry->relative_key));
	}
	return rc;
}

static int64_t body_fail(trs_object_iter *it, int code, trs_error *err, const char *fmt, ...) TRS_PRINTF(4, 5);
static int64_t body_fail(trs_object_iter *it, int code, trs_error *err, const char *fmt, ...)
{
	it->body_state = BODY_FAILED;
	va_list ap;
	va_start(ap, fmt);
	trs__error_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

static int64_t body_read(void *self, void *buf, size_t len, trs_error *err)
{
	trs_object_iter *it = self;
	const trs_manifest_object *e = it->obj.entry;
	const char *archive = trs_archive_name(it->archive);
	switch (it->body_state) {
	case BODY_DONE:
		return 0;
	case BODY_FAILED:
		return trs__error_set(err, TRS_EINVAL, "archive %s, object %s: the body was already consumed or is unavailable",
				      TRS__SHORT(archive), TRS__SHORT(e->relative_key));
	case BODY_UNREAD:
		if (body_integrity(it, it->member.size, NULL, err) < 0)
			return TRS_EINTEGRITY;
		/* --verify size: the size is still checked, and libzstd checks the frame checksum itself. */
		it->check_md5 = it->ctx->verify != TRS_VERIFY_SIZE && trs__plain_md5(e->etag, it->md5_expected);
		if (it->check_md5 && !EVP_DigestInit_ex(it->md5, trs__md5_md(), NULL))
			return body_fail(it, TRS_ENOMEM, err, "cannot start an MD5 digest");
		it->body_read = 0;
		it->body_state = BODY_READING;
		break;
	case BODY_READING:
		break;
	}
	int64_t n = trs_archive_read(it->archive, buf, len, err);
	if (n < 0) {
		it->body_state = BODY_FAILED;
		trs__error_prefix(err, "object %s", TRS__SHORT(e->relative_key));
		return n;
	}
	if (n > 0) {
		it->body_read += (uint64_t)n;
		if (it->check_md5)
			EVP_DigestUpdate(it->md5, buf, (size_t)n);
		return n;
	}
	if (it->body_read != it->member.size)
		return body_fail(it, TRS_EARCHIVE, err, "archive %s, object %s: member ends after %llu of %llu bytes",
				 archive, e->relative_key, (unsigned long long)it->body_read,
				 (unsigned long long)it->member.size);
	if (it->check_md5) {
		unsigned char digest[16];
		char hex[33];
		unsigned int dlen = 0;
		EVP_DigestFinal_ex(it->md5, digest, &dlen);
		trs__hex(digest, 16, hex);
		if (body_integrity(it, it->body_read, hex, err) < 0)
			return TRS_EINTEGRITY;
	}
	it->body_state = BODY_DONE;
	return 0;
}

TRS_EXTERN(trs_body *) trs_object_body(trs_object_iter *it)
{
	it->body.read = body_read;
	it->body.self = it;
	it->body.length = it->obj.status == TRS_OBJECT_READY ? it->member.size : 0;
	return &it->body;
}

TRS_EXTERN(uint64_t) trs_object_iter_skipped_members(const trs_object_iter *it)
{
	return it->skipped_members;
}

TRS_EXTERN(void) trs_object_iter_free(trs_object_iter *it)
{
	if (!it)
		return;
	free(it->joined_at);
	free(it->joined_early);
	free(it->kms_problems);
	trs__link_memo_free(&it->links);
	free(it->puts);
	free(it->dest_key);
	trs__tagset_free(&it->tagset);
	if (it->md5)
		EVP_MD_CTX_free(it->md5);
	free(it);
}
