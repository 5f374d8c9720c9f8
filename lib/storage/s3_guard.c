/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The s3 backend's conditional writes: newest wins across every consumer on
 * every machine, with S3 itself as the only arbiter (include/trs/storage.h,
 * trs_write_condition).
 *
 * A write carries a precondition on what it replaces: If-None-Match: * for
 * a key we saw empty, If-Match: <ETag> for the object we compared with. A
 * new key, the common case, costs nothing more: the first PUT goes out with
 * If-None-Match: * and succeeds. Refused (412 PreconditionFailed; 409
 * ConditionalRequestConflict while another conditional write of the key is
 * in flight; 404 for an If-Match whose object is gone), we look at the key
 * (HEAD; GetObjectTagging only for an object whose version is in its tags
 * alone, one written before restores recorded it as metadata too), compare
 * with trs_write_condition_check, and either stop (a newer version, or this
 * one, stands there) or write again under the new precondition.
 *
 * A large upload looks first, so that it is never sent in full only to be
 * refused at CompleteMultipartUpload; so does every write of a redelivered
 * archive (TRS_WRITE_ASK_FIRST), where most objects are current already
 * and their bodies need not travel.
 *
 * Credentials that may write but not read a bucket (the sample stack's task
 * role: PutObject, PutObjectTagging, PutObjectAcl) cannot look: their
 * writes to that bucket go out as before, without a precondition, counted
 * (TRS_WRITTEN_UNCHECKED) and said once per bucket with the permission to
 * grant.
 */
#include "storage_s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUNDS 8

int trs__s3_guard_headers(const trs__s3_guard *g, trs__s3_headers *h, trs_error *err)
{
	if (!g)
		return 0;
	return g->absent ? trs__s3_headers_add(h, "If-None-Match", "*", err)
			 : trs__s3_headers_add(h, "If-Match", g->etag, err);
}

bool trs__s3_guard_refused(const trs__s3_guard *g, int rc, const trs_error *err)
{
	if (!g || rc >= 0 || !err)
		return false;
	if (err->http_status == 412)
		return true;
	if (err->http_status == 409 && !strcmp(err->aws_code, "ConditionalRequestConflict"))
		return true;
	/* If-Match on a key whose object was deleted since we looked. */
	return !g->absent && err->http_status == 404 &&
	       (!strcmp(err->aws_code, "NoSuchKey") || !strcmp(err->aws_code, "NotFound"));
}

/* Is `bucket` in the list (under s->unguarded_lock)? Adds it when `add`; true when it was there. */
static bool listed(trs__s3 *s, char ***list, size_t *n, const char *bucket, bool add)
{
	pthread_mutex_lock(&s->unguarded_lock);
	bool found = false;
	for (size_t i = 0; i < *n && !found; i++)
		found = !strcmp((*list)[i], bucket);
	if (!found && add) {
		char **grown = realloc(*list, (*n + 1) * sizeof(**list));
		char *copy = strdup(bucket);
		if (grown)
			*list = grown;
		if (grown && copy)
			(*list)[(*n)++] = copy;
		else
			free(copy);
	}
	pthread_mutex_unlock(&s->unguarded_lock);
	return found;
}

void trs__s3_unguarded_free(trs__s3 *s)
{
	for (size_t i = 0; i < s->nunguarded; i++)
		free(s->unguarded[i]);
	free(s->unguarded);
	for (size_t i = 0; i < s->nuntagged; i++)
		free(s->untagged[i]);
	free(s->untagged);
	pthread_mutex_destroy(&s->unguarded_lock);
}

static void refused_reading(trs__s3 *s, const char *bucket)
{
	if (listed(s, &s->unguarded, &s->nunguarded, bucket, true))
		return;
	trs__log(s->ctx, TRS_LOG_WARN,
		 "cannot read objects of this bucket to compare versions (HeadObject answered 403): its objects are "
		 "written without the newest-wins check, as the Python service writes them, and an older archive "
		 "arriving late can replace a newer object. What to do: allow s3:GetObject on the bucket's objects "
		 "(docs/operations.md, Permissions); the UncheckedWrites metric counts these writes",
		 "bucket", bucket, "permission", "s3:GetObject", NULL);
}

static void refused_tags(trs__s3 *s, const char *bucket)
{
	if (listed(s, &s->untagged, &s->nuntagged, bucket, true))
		return;
	trs__log(s->ctx, TRS_LOG_WARN,
		 "cannot read the tags of objects in this bucket (GetObjectTagging answered 403): objects written "
		 "before restores recorded their version as metadata are taken as having none, and replaced. What "
		 "to do: allow s3:GetObjectTagging on the bucket's objects (docs/operations.md, Permissions)",
		 "bucket", bucket, "permission", "s3:GetObjectTagging", NULL);
}

/*
 * Look at the key: 0 with g->outcome (and g's precondition for the write),
 * 1 when these credentials may not read it (HEAD answered 403), or a code.
 */
int trs__s3_guard_look(trs__s3 *s, const trs_put_request *req, trs__s3_guard *g, trs_error *err)
{
	trs_object_info info;
	memset(&info, 0, sizeof(info));
	trs_error herr = TRS_ERROR_INIT;
	bool tags_readable = !listed(s, &s->untagged, &s->nuntagged, req->bucket, false);
	int rc = trs__s3_head_info(s, req->bucket, req->key, tags_readable ? TRS__S3_TAGS_FOR_VERSION : TRS__S3_TAGS_NEVER,
				   &info, &herr);
	if (rc < 0 && herr.http_status == 403 && info.etag) {
		refused_tags(s, req->bucket); /* the HEAD went through: compare without the tags */
		trs_object_info_clear(&info);
		rc = trs__s3_head_info(s, req->bucket, req->key, TRS__S3_TAGS_NEVER, &info, &herr);
	}
	if (rc == TRS_ENOTFOUND && herr.http_status == 404) {
		g->absent = 1;
		g->outcome = TRS_WRITTEN;
		trs_object_info_clear(&info);
		return 0;
	}
	if (rc < 0 && herr.http_status == 403) {
		trs_object_info_clear(&info);
		refused_reading(s, req->bucket);
		return 1;
	}
	if (rc < 0) {
		trs_object_info_clear(&info);
		if (err)
			*err = herr;
		trs__error_prefix(err, "cannot compare versions before writing s3://%s/%s", req->bucket,
				  TRS__SHORT(req->key));
		return rc;
	}
	g->outcome = trs_write_condition_check(g->cond, &info);
	g->absent = 0;
	snprintf(g->etag, sizeof(g->etag), "%s", info.etag ? info.etag : "");
	trs_object_info_clear(&info);
	return 0;
}

/*
 * The look after a refusal found this very version. When the refused write
 * was a retry (an earlier attempt's answer lost on the way), the version is
 * most likely that attempt's: ours, written. Otherwise it was there before.
 */
int trs__s3_guard_own_write(const trs__s3_guard *g)
{
	return g->outcome == TRS_ALREADY_CURRENT && g->attempts > 1 ? TRS_WRITTEN : g->outcome;
}

/* A conflicting conditional write is in flight: give it a moment before looking again. */
static void conflict_pause(const trs__s3 *s, const trs_error *err)
{
	if (err && err->http_status == 409)
		trs__sleep_until(0.02 + 0.08 * trs__aws_jitter(), NULL, NULL);
	(void)s;
}

/* The write as before conditional writes: nothing compared, and counted so. */
static int unchecked_put(trs__s3 *s, const trs_put_request *req, trs_body *body, const void *bytes, trs_error *err)
{
	int rc;
	if (bytes)
		rc = trs__s3_put_single(s, req, bytes, (size_t)body->length, NULL, err);
	else
		rc = s->parent.put(&s->parent, req, body, err);
	return rc < 0 ? rc : TRS_WRITTEN_UNCHECKED;
}

int trs__s3_put_if_newer(trs_storage *self, const trs_put_request *req, const trs_write_condition *cond,
			 trs_body *body, trs_error *err)
{
	trs__s3 *s = (trs__s3 *)self;
	int rc = trs__s3_check_put(req, body, err);
	if (rc < 0)
		return rc;
	if (listed(s, &s->unguarded, &s->nunguarded, req->bucket, false))
		return unchecked_put(s, req, body, NULL, err);
	trs__s3_guard g = {cond, 1, "", TRS_WRITTEN, 0};
	bool multipart = body->length >= s->threshold;
	if (multipart || (cond->flags & TRS_WRITE_ASK_FIRST)) {
		rc = trs__s3_guard_look(s, req, &g, err);
		if (rc == 1)
			return unchecked_put(s, req, body, NULL, err);
		if (rc < 0 || g.outcome != TRS_WRITTEN)
			return rc < 0 ? rc : g.outcome; /* the body was not read */
	}
	if (multipart)
		return trs__s3_multipart_put(s, req, body, &g, err);

	const void *bytes = NULL;
	unsigned char *owned;
	if ((rc = trs__s3_body_bytes(body, req, &bytes, &owned, err)) < 0) {
		free(owned);
		return rc;
	}
	for (int round = 0;; round++) {
		rc = trs__s3_put_single(s, req, bytes, (size_t)body->length, &g, err);
		if (!trs__s3_guard_refused(&g, rc, err))
			break;
		if (round == MAX_ROUNDS) {
			rc = trs__error_set(err, TRS_EHTTP,
					    "s3://%s/%s changed under every one of %d conditional writes; nothing was "
					    "replaced. Run again",
					    req->bucket, TRS__SHORT(req->key), MAX_ROUNDS + 1);
			break;
		}
		conflict_pause(s, err);
		if ((rc = trs__s3_guard_look(s, req, &g, err)) == 1) {
			rc = unchecked_put(s, req, body, bytes, err);
			break;
		}
		if (rc < 0 || g.outcome != TRS_WRITTEN) {
			rc = rc < 0 ? rc : trs__s3_guard_own_write(&g);
			break;
		}
	}
	free(owned);
	return rc;
}

int trs__s3_copy_if_newer(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
			  const trs_write_condition *cond, trs_error *err)
{
	trs__s3 *s = (trs__s3 *)self;
	if (listed(s, &s->unguarded, &s->nunguarded, req->bucket, false)) {
		int rc = trs__s3_copy_object(s, src_bucket, src_key, req, NULL, err);
		return rc < 0 ? rc : TRS_WRITTEN_UNCHECKED;
	}
	trs__s3_guard g = {cond, 1, "", TRS_WRITTEN, 0};
	for (int round = 0;; round++) {
		int rc = trs__s3_copy_object(s, src_bucket, src_key, req, &g, err);
		if (!trs__s3_guard_refused(&g, rc, err))
			return rc;
		if (round == MAX_ROUNDS)
			return trs__error_set(err, TRS_EHTTP,
					      "s3://%s/%s changed under every one of %d conditional copies; nothing was "
					      "replaced. Run again",
					      req->bucket, TRS__SHORT(req->key), MAX_ROUNDS + 1);
		conflict_pause(s, err);
		if ((rc = trs__s3_guard_look(s, req, &g, err)) == 1) {
			rc = trs__s3_copy_object(s, src_bucket, src_key, req, NULL, err);
			return rc < 0 ? rc : TRS_WRITTEN_UNCHECKED;
		}
		if (rc < 0 || g.outcome != TRS_WRITTEN)
			return rc < 0 ? rc : trs__s3_guard_own_write(&g);
	}
}
