/*
 * trs_process: one archive, from compressed bytes to every object written
 * to every target of this region (FORMAT.md §4).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Objects up to this size going to several targets are read once into memory
 * and sent to each; larger ones stream to the first target and are copied
 * server-side to the others. */
#define MULTI_TARGET_BUFFER_MAX (64ull << 20)

typedef struct {
	trs_ctx *ctx;
	trs_storage *storage;
	trs_report *report;
	trs_archive *archive;
	trs_object_iter *it;
	size_t failures_cap;
	int dry_run;
} run;

static int add_failure(run *r, const trs_manifest_object *e, const char *bucket, const char *key, int code,
		       const char *message)
{
	trs_report *rep = r->report;
	if (rep->nfailures == r->failures_cap) {
		size_t cap = r->failures_cap ? r->failures_cap * 2 : 16;
		trs_failure *f = realloc(rep->failures, cap * sizeof(*f));
		if (!f)
			return TRS_ENOMEM;
		rep->failures = f;
		r->failures_cap = cap;
	}
	trs_failure *f = &rep->failures[rep->nfailures];
	f->relative_key = strdup(e ? e->relative_key : "");
	f->bucket = strdup(bucket ? bucket : "");
	f->key = strdup(key ? key : "");
	f->message = strdup(message);
	f->code = code;
	if (!f->relative_key || !f->bucket || !f->key || !f->message) {
		free(f->relative_key);
		free(f->bucket);
		free(f->key);
		free(f->message);
		return TRS_ENOMEM;
	}
	rep->nfailures++;
	trs__log(r->ctx, TRS_LOG_ERROR, message, "archive", rep->archive, "relative_key", f->relative_key,
		 "bucket", f->bucket, "key", f->key, "error", trs_strerror(code), NULL);
	return 0;
}

static trs_report_target *target_of(run *r, const char *bucket)
{
	for (size_t i = 0; i < r->report->ntargets; i++)
		if (!strcmp(r->report->targets[i].bucket, bucket))
			return &r->report->targets[i];
	return NULL;
}

/* One entry per distinct bucket of this region's non-backup targets. */
static int init_targets(run *r, const trs_manifest *m, trs_error *err)
{
	size_t n = trs_manifest_target_count(m);
	trs_report *rep = r->report;
	rep->targets = trs__calloc(n ? n : 1, sizeof(*rep->targets), err);
	if (!rep->targets)
		return TRS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const trs_manifest_target *t = trs_manifest_target_at(m, i);
		if (t->backup || strcmp(t->region, r->ctx->region) != 0 || !*t->bucket || target_of(r, t->bucket))
			continue;
		if (!(rep->targets[rep->ntargets].bucket = trs__strdup(t->bucket, err)))
			return TRS_ENOMEM;
		rep->ntargets++;
	}
	return 0;
}

static void put_failed(run *r, const trs_object *o, const trs_object_put *p, int code, const char *message)
{
	trs_report_target *t = target_of(r, p->request.bucket);
	if (t)
		t->puts_failed++;
	char full[TRS_ERROR_MESSAGE_SIZE + 256];
	snprintf(full, sizeof(full), "archive %s, object %s -> s3://%s/%s: %s", r->report->archive,
		 o->entry->relative_key, p->request.bucket, p->request.key, message);
	r->report->puts_failed++;
	add_failure(r, o->entry, p->request.bucket, p->request.key, code, full);
}

static void put_done(run *r, const trs_object *o, const trs_object_put *p, uint64_t bytes)
{
	r->report->puts_written++;
	r->report->bytes_written += bytes;
	trs_report_target *t = target_of(r, p->request.bucket);
	if (t) {
		t->puts_written++;
		t->bytes_written += bytes;
	}
	trs__log(r->ctx, TRS_LOG_DEBUG, "object written", "archive", r->report->archive, "relative_key",
		 o->entry->relative_key, "bucket", p->request.bucket, "key", p->request.key, NULL);
}

/* Read a whole body into memory (checking integrity on the way). */
static int slurp(trs_body *body, unsigned char **out, trs_error *err)
{
	unsigned char *buf = trs__malloc(body->length ? body->length : 1, err);
	if (!buf)
		return TRS_ENOMEM;
	uint64_t got = 0;
	for (;;) {
		size_t want = body->length > got ? (size_t)(body->length - got) : 1;
		unsigned char spill[1];
		int64_t n = body->read(body->self, body->length > got ? buf + got : spill, want, err);
		if (n < 0) {
			free(buf);
			return (int)n;
		}
		if (n == 0)
			break;
		got += (uint64_t)n;
		if (got > body->length) {
			free(buf);
			return trs__error_set(err, TRS_EARCHIVE, "object body longer than its header says");
		}
	}
	*out = buf;
	return 0;
}

static int restore_object(run *r, const trs_object *o)
{
	trs_report *rep = r->report;
	size_t failed_before = rep->puts_failed;
	size_t usable = 0;
	for (size_t i = 0; i < o->nputs; i++) {
		const trs_object_put *p = &o->puts[i];
		if (p->error)
			put_failed(r, o, p, p->error, p->error_message);
		else
			usable++;
	}
	if (usable == 0)
		return 0;
	trs_body *body = trs_object_body(r->it);
	if (r->dry_run) {
		/* Read and check the body all the same: a dry run proves the archive. */
		unsigned char buf[65536];
		int64_t n;
		trs_error err = TRS_ERROR_INIT;
		while ((n = body->read(body->self, buf, sizeof(buf), &err)) > 0)
			;
		for (size_t i = 0; i < o->nputs; i++)
			if (!o->puts[i].error) {
				if (n < 0)
					put_failed(r, o, &o->puts[i], err.code, err.message);
				else
					put_done(r, o, &o->puts[i], 0);
			}
		return 0;
	}
	const trs_object_put *first = NULL;
	if (usable == 1 || body->length > MULTI_TARGET_BUFFER_MAX) {
		/* Stream to the first usable target; copy to the others. */
		for (size_t i = 0; i < o->nputs; i++) {
			const trs_object_put *p = &o->puts[i];
			if (p->error)
				continue;
			trs_error err = TRS_ERROR_INIT;
			int rc;
			if (!first) {
				rc = trs_upload(r->storage, &p->request, body, &err);
				if (rc == 0) {
					first = p;
				} else {
					put_failed(r, o, p, rc, err.message);
					for (size_t j = i + 1; j < o->nputs; j++)
						if (!o->puts[j].error)
							put_failed(r, o, &o->puts[j], rc,
								   "not attempted: the object could not be written to its first target");
					break;
				}
			} else {
				rc = trs_storage_copy(r->storage, first->request.bucket, first->request.key, &p->request, &err);
				if (rc < 0) {
					put_failed(r, o, p, rc, err.message);
					continue;
				}
			}
			put_done(r, o, p, body->length);
		}
	} else {
		unsigned char *data = NULL;
		trs_error err = TRS_ERROR_INIT;
		int rc = slurp(body, &data, &err);
		for (size_t i = 0; i < o->nputs; i++) {
			const trs_object_put *p = &o->puts[i];
			if (p->error)
				continue;
			if (rc < 0) {
				put_failed(r, o, p, rc, err.message);
				continue;
			}
			trs_memory_body mb;
			trs_error perr = TRS_ERROR_INIT;
			int prc = trs_upload(r->storage, &p->request, trs_memory_body_init(&mb, data, body->length), &perr);
			if (prc < 0)
				put_failed(r, o, p, prc, perr.message);
			else
				put_done(r, o, p, body->length);
		}
		free(data);
	}
	(void)failed_before;
	return 0;
}

static void progress(run *r, uint64_t done)
{
	const trs_ctx *ctx = r->ctx;
	if (!ctx->progress)
		return;
	trs_archive_stats st;
	trs_archive_get_stats(r->archive, &st);
	trs_progress p = {0};
	p.decompressed = r->report->manifest_position == TRS_MANIFEST_FIRST ? st.decompressed
										 : st.decompressed - st.tar_size;
	p.compressed_total = 0;
	p.objects_done = done;
	p.objects_total = r->report->objects_total;
	p.pass = 2;
	ctx->progress(&p, ctx->progress_userdata);
}

TRS_EXTERN(int) trs_process(trs_ctx *ctx, trs_storage *storage, const trs_archive_source *source,
			    const trs_process_options *options, trs_report **report_out, trs_error *err)
{
	*report_out = NULL;
	if (!ctx || !storage || !source)
		return trs__error_set(err, TRS_EINVAL, "trs_process needs a context, a storage and a source");
	if (!*ctx->region)
		return trs__error_set(err, TRS_EINVAL,
				      "no region is set: pass --region or set AWS_REGION (only targets in this "
				      "service's region are restored)");
	trs_report *rep = trs__calloc(1, sizeof(*rep), err);
	if (!rep)
		return TRS_ENOMEM;
	run r = {ctx, storage, rep, NULL, NULL, 0, options ? options->dry_run : 0};
	rep->dry_run = r.dry_run;
	const char *name = source->name ? source->name : source->path ? source->path : "<archive>";
	if (!(rep->archive = trs__strdup(name, err))) {
		free(rep);
		return TRS_ENOMEM;
	}
	*report_out = rep;
	double t0 = trs__now();
	trs_manifest *m = NULL;
	int rc = trs_archive_open(&r.archive, source, ctx, err);
	if (rc == 0)
		rc = trs_archive_read_manifest(r.archive, &m, err);
	rep->seconds_manifest = trs__now() - t0;
	if (rc < 0)
		goto done;
	rep->manifest_position = trs_archive_manifest_position(r.archive);
	rep->objects_total = trs_manifest_object_count(m);
	if ((rc = init_targets(&r, m, err)) < 0)
		goto done;
	for (size_t i = 0; i < trs_manifest_warning_count(m); i++)
		trs__log(ctx, TRS_LOG_WARN, trs_manifest_warning_at(m, i), "archive", rep->archive, NULL);
	trs__log(ctx, TRS_LOG_INFO, "manifest read", "archive", rep->archive, "manifest_position",
		 rep->manifest_position == TRS_MANIFEST_FIRST ? "first" : rep->manifest_position == TRS_MANIFEST_LAST ? "last" : "middle",
		 NULL);
	double t1 = trs__now();
	if ((rc = trs_object_iter_new(&r.it, r.archive, m, ctx, err)) < 0)
		goto done;
	const trs_object *o;
	uint64_t done_count = 0;
	while ((rc = trs_object_iter_next(r.it, &o, err)) == 1) {
		if (trs__canceled(ctx)) {
			rc = trs__error_set(err, TRS_ECANCELED, "archive %s: canceled", rep->archive);
			goto done;
		}
		size_t failed_before = rep->puts_failed;
		if (o->backup_targets)
			trs__log(ctx, TRS_LOG_WARN, "backup targets are not restored by this version; the object goes to the other targets",
				 "archive", rep->archive, "relative_key", o->entry->relative_key, NULL);
		if (o->nputs == 0) {
			if (!o->backup_targets)
				rep->objects_skipped++;
		} else if (o->status == TRS_OBJECT_MISSING) {
			for (size_t i = 0; i < o->nputs; i++)
				put_failed(&r, o, &o->puts[i], TRS_ENOTFOUND,
					   "the manifest lists this object but the archive does not hold it (lost upstream)");
		} else {
			restore_object(&r, o);
		}
		if (o->nputs) {
			if (rep->puts_failed > failed_before)
				rep->objects_failed++;
			else
				rep->objects_written++;
		}
		progress(&r, ++done_count);
	}
	if (rc < 0)
		goto done;
	rep->members_skipped = trs_object_iter_skipped_members(r.it);
	rep->seconds_restore = trs__now() - t1;
	rc = rep->nfailures ? trs__error_set(err, TRS_EPARTIAL,
					     "archive %s: %llu of %llu objects failed (the others were written; "
					     "running again is safe)",
					     rep->archive, (unsigned long long)rep->objects_failed,
					     (unsigned long long)(rep->objects_failed + rep->objects_written))
			    : 0;
done:
	if (r.archive) {
		trs_archive_stats st;
		trs_archive_get_stats(r.archive, &st);
		rep->compressed_bytes = source->compressed_size ? source->compressed_size : 0;
		if (!rep->compressed_bytes)
			rep->compressed_bytes = st.passes ? st.compressed_read / st.passes : st.compressed_read;
		rep->decompressed_bytes = st.tar_size;
		rep->passes = st.passes;
		rep->seconds_decompress = st.decompress_seconds;
	}
	rep->seconds_total = trs__now() - t0;
	trs_object_iter_free(r.it);
	trs_archive_close(r.archive);
	trs_manifest_free(m);
	return rc;
}

TRS_EXTERN(void) trs_report_free(trs_report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->nfailures; i++) {
		free(rep->failures[i].relative_key);
		free(rep->failures[i].bucket);
		free(rep->failures[i].key);
		free(rep->failures[i].message);
	}
	free(rep->failures);
	for (size_t i = 0; i < rep->ntargets; i++)
		free(rep->targets[i].bucket);
	free(rep->targets);
	free(rep->archive);
	free(rep);
}
