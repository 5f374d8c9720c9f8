/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trs_process: one archive, from compressed bytes to every object written
 * to every target of this region (docs/operations.md).
 *
 * The calling thread decompresses and walks the tar; writer threads
 * (lib/core/pipeline.c) write the objects. The source side puts manifest.json
 * last, so objects arrive before we know where they go: they are kept in
 * memory, within the budget, until the manifest comes. When the budget runs
 * out first, the rest of the archive is restored in a second pass that
 * skips what was already written: it costs a second decompression, never
 * a second write.
 */
#include "digest.h"
#include "archive/object_iter.h"
#include "backup.h"
#include "early.h"
#include "archive/link_memo.h"
#include "pipeline.h"
#include "process_options.h"
#include "select.h"
#include "report.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


typedef struct {
	trs__run run;
	trs_process_options opt; /* the caller's, at the current version */
	trs_archive *archive;
	trs_object_iter *it;
	trs_manifest *manifest;
	uint64_t small_max;   /* objects up to this size travel whole */
	uint64_t chunk;       /* larger ones in chunks of this size */
	trs__early early;     /* the objects before the manifest (lib/core/early.c) */
	uint64_t files_before_manifest;
	uint64_t manifest_index;
	unsigned char manifest_md5[16];
	uint64_t early_skipped; /* members before the manifest never to be restored */
	trs__link_memo links;   /* of those, the links and devices of objects/ (handed to the iterator) */
} walk;

/* Walk to the manifest, keeping the objects before it; parse it. */
static int find_manifest(walk *w, trs_error *err)
{
	const trs_ctx *ctx = w->run.ctx;
	trs_member m;
	int rc;
	while ((rc = trs_archive_next(w->archive, &m, err)) == 1) {
		if (trs__canceled(ctx))
			return trs__error_set(err, TRS_ECANCELED, "archive %s: canceled",
					      TRS__SHORT(trs_archive_name(w->archive)));
		if (trs__archive_is_manifest(m.path)) {
			if (m.type != TRS_MEMBER_FILE)
				return trs__error_set(err, TRS_EMANIFEST, "archive %s: manifest.json is not a regular file",
						      TRS__SHORT(trs_archive_name(w->archive)));
			break;
		}
		if (m.type == TRS_MEMBER_FILE)
			w->files_before_manifest++;
		const char *why = trs__member_skip_reason(m.path, m.type);
		if (why) {
			w->early_skipped++;
			trs__link_memo_add(&w->links, m.path, m.type);
			if (trs__repeat_log(&w->run.repeats, ctx, TRS__REPEAT_MEMBER_SKIPPED))
				trs__log(ctx, TRS_LOG_WARN, why, "archive", trs_archive_name(w->archive), "member", m.path, NULL);
			continue;
		}
		if (m.type == TRS_MEMBER_FILE && (rc = trs__early_keep(&w->early, &m, err)) < 0)
			return rc;
	}
	if (rc < 0)
		return rc;
	if (rc == 0)
		return trs__error_set(err, TRS_EMANIFEST,
				      "archive %s has no manifest.json; it is not an archive from the source side",
				      TRS__SHORT(trs_archive_name(w->archive)));
	w->manifest_index = m.index;
	w->run.report->manifest_bytes = m.size; /* what it claims, refused or not */
	if (m.size > ctx->max_manifest_bytes)
		return trs__error_set(err, TRS_ELIMIT,
				      "archive %s: manifest.json claims %llu bytes, over the limit of %llu; refusing it. "
				      "What to do: raise the limit (--max-manifest, trs_ctx_options.max_manifest_bytes) "
				      "if the archive is trusted: a manifest of 2.7 million objects is about 1 GiB",
				      TRS__SHORT(trs_archive_name(w->archive)), (unsigned long long)m.size,
				      (unsigned long long)ctx->max_manifest_bytes);
	trs_manifest_limits limits = {ctx->max_manifest_bytes, ctx->max_manifest_objects, 0};
	trs_manifest_parser *p;
	if ((rc = trs_manifest_parser_new(&p, &limits, err)) < 0)
		return rc;
	unsigned char buf[65536];
	int64_t n = 0;
	EVP_MD_CTX *md5 = EVP_MD_CTX_new();
	if (!md5 || !EVP_DigestInit_ex(md5, trs__md5_md(), NULL))
		rc = trs__error_set(err, TRS_ENOMEM, "cannot start an MD5 digest");
	while (rc == 0 && (n = trs_archive_read(w->archive, buf, sizeof(buf), err)) > 0) {
		EVP_DigestUpdate(md5, buf, (size_t)n); /* to know a second manifest.json for a copy (or not) */
		if ((rc = trs_manifest_parser_feed(p, buf, (size_t)n, err)) < 0)
			break;
	}
	if (rc == 0)
		EVP_DigestFinal_ex(md5, w->manifest_md5, NULL);
	EVP_MD_CTX_free(md5);
	if (rc == 0 && n < 0)
		rc = (int)n;
	if (rc == 0)
		rc = trs_manifest_parser_finish(p, &w->manifest, err);
	trs_manifest_parser_free(p);
	if (rc < 0)
		trs__error_prefix(err, "archive %s", TRS__SHORT(trs_archive_name(w->archive)));
	return rc;
}

/* Objects with no put here are counted, not written. Returns 1 when there is work. */
static int needs_work(walk *w, const trs_object *o)
{
	if (!trs__select_chosen(&w->opt, o->entry)) {
		pthread_mutex_lock(&w->run.mu);
		w->run.report->objects_unselected++;
		pthread_mutex_unlock(&w->run.mu);
		return 0;
	}
	if (o->nputs)
		return 1;
	if (o->entry->flags & TRS_MANIFEST_OBJECT_SUPERSEDED) {
		pthread_mutex_lock(&w->run.mu);
		w->run.report->objects_superseded++;
		pthread_mutex_unlock(&w->run.mu);
		return 0;
	}
	if (!o->backup_targets) {
		pthread_mutex_lock(&w->run.mu);
		w->run.report->objects_skipped++;
		pthread_mutex_unlock(&w->run.mu);
	}
	return 0;
}

/* Stream a large body through its job's channel, chunk by chunk. */
static int stream_body(walk *w, trs__job *j, trs_error *err)
{
	trs_body *body = trs_object_body(w->it);
	uint64_t left = body->length;
	int rc = 0;
	trs_error berr = TRS_ERROR_INIT;
	for (;;) {
		uint64_t want = left < w->chunk ? left : w->chunk;
		if (want == 0)
			want = 1; /* room to see the end (and the integrity verdict) */
		trs__run_budget_take(&w->run, want, 1);
		trs__chunk *c = malloc(sizeof(*c) + want);
		if (!c) {
			trs__run_budget_give(&w->run, want);
			rc = trs__error_set(&berr, TRS_ENOMEM, "out of memory");
			break;
		}
		c->len = 0;
		int64_t n = 1;
		while (c->len < want && (n = body->read(body->self, c->data + c->len, (size_t)(want - c->len), &berr)) > 0)
			c->len += (size_t)n;
		trs__run_budget_give(&w->run, want - c->len);
		left -= c->len < left ? c->len : left;
		if (c->len)
			trs__job_push(&w->run, j, c);
		else
			free(c);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
	}
	trs__job_end(&w->run, j, rc, &berr);
	/* An integrity failure belongs to this object; anything else stops the archive. */
	if (rc < 0 && rc != TRS_EINTEGRITY) {
		if (err)
			*err = berr;
		return rc;
	}
	return 0;
}

/* Write object `o`: its bytes `held` in memory already (with their MD5 when known), or read from the archive. */
static int dispatch(walk *w, const trs_object *o, unsigned char *held, uint64_t held_size, const char *held_md5,
		    trs_error *err)
{
	if (!needs_work(w, o)) {
		if (held) {
			free(held);
			trs__run_budget_give(&w->run, held_size);
		}
		return 0;
	}
	trs__job *j = trs__job_new(o, err);
	if (j)
		j->rewrite = trs__object_iter_repeat(w->it);
	if (!j) {
		if (held) {
			free(held);
			trs__run_budget_give(&w->run, held_size);
		}
		return TRS_ENOMEM;
	}
	if (o->status == TRS_OBJECT_MISSING) {
		trs__job_submit(&w->run, j);
		return 0;
	}
	if (held) {
		j->data = held;
		j->len = j->budget = held_size;
		if (held_md5)
			memcpy(j->staged_md5, held_md5, sizeof(j->staged_md5));
		trs__job_submit(&w->run, j);
		return 0;
	}
	uint64_t size = trs__object_iter_member_size(w->it);
	if (size <= w->small_max) {
		trs__run_budget_take(&w->run, size, 1);
		j->data = malloc(size ? size : 1);
		j->len = j->budget = size;
		int rc = j->data ? trs__read_member(w->archive, j->data, size, err)
				 : trs__error_set(err, TRS_ENOMEM, "out of memory");
		if (rc < 0) {
			trs__run_budget_give(&w->run, size);
			free(j->data);
			free(j);
			return rc;
		}
		trs__job_submit(&w->run, j);
		return 0;
	}
	trs__job_stream(j, size);
	trs__job_submit(&w->run, j);
	return stream_body(w, j, err);
}

static int publish_staged(walk *w, const trs_object *o, trs__early_member *p, trs_error *err)
{
	if (!needs_work(w, o)) {
		trs__early_drop(&w->early, p);
		return 0;
	}
	trs__job *j = trs__job_new(o, err);
	if (!j)
		return TRS_ENOMEM;
	j->kind = TRS_JOB_PUBLISH;
	j->rewrite = trs__object_iter_repeat(w->it);
	j->stage = w->early.stage;
	j->stage_index = p->stage_index;
	j->len = p->size;
	memcpy(j->staged_md5, p->result.md5, sizeof(j->staged_md5));
	if (p->result.code < 0) {
		/* Staging failed (a full disk, say): this object fails, with that reason. */
		j->stage_code = p->result.code;
		j->stage_err = p->result.err; /* the job's now */
		p->result.err = NULL;
	}
	trs__job_submit(&w->run, j);
	return 0;
}

/* An object that came before the manifest, joined: staged, held in memory, or a record of the spool. */
static int restore_early(walk *w, const trs__early_item *item, const trs_object *o, trs_error *err)
{
	if (item->member && item->member->staged)
		return publish_staged(w, o, item->member, err);
	if (item->member)
		return dispatch(w, o, item->member->data, item->size, NULL, err);
	/* From the spool: a body in memory, as if just read from the archive. */
	trs__run_budget_take(&w->run, item->size, 1);
	unsigned char *data = malloc(item->size ? item->size : 1);
	if (!data) {
		trs__run_budget_give(&w->run, item->size);
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	}
	memcpy(data, item->data, (size_t)item->size);
	return dispatch(w, o, data, item->size, item->md5, err);
}

static int restore(walk *w, trs_error *err)
{
	int rc;
	const trs_object *o;
	/* What came before the manifest, in tar order. Every stage and spool
	 * write is done first, so that the MD5 of what was staged is known. */
	if (w->early.stage || w->early.spool)
		trs__run_wait_idle(&w->run);
	trs__early_item item;
	for (uint64_t n = 1; (rc = trs__early_next(&w->early, &item, err)) != 0; n++) {
		if (rc < 0)
			return rc;
		if ((n & 63) == 0)
			trs__restore_progress(&w->run, w->archive);
		rc = trs__object_iter_join(w->it, item.path, item.index, item.size, &o, err);
		if (rc == 1 && trs__object_iter_repeat(w->it))
			trs__run_wait_idle(&w->run); /* the earlier copy is written first, then this one over it */
		if (rc == 1)
			rc = restore_early(w, &item, o, err);
		else if (item.member)
			trs__early_drop(&w->early, item.member);
		if (item.member)
			free(item.member->result.err);
		if (rc < 0)
			return rc;
		if ((rc = trs__run_aborted(&w->run, err)) < 0)
			return rc;
	}
	trs__object_iter_defer_missing(w->it, w->early.overflow);
	for (int pass = 0; pass < 2; pass++) {
		uint64_t n = 0;
		while ((rc = trs_object_iter_next(w->it, &o, err)) == 1) {
			if (trs__canceled(w->run.ctx))
				return trs__error_set(err, TRS_ECANCELED, "archive %s: canceled",
						      TRS__SHORT(w->run.report->archive));
			if (trs__object_iter_repeat(w->it))
				trs__run_wait_idle(&w->run); /* the earlier copy is written first, then this one over it */
			if ((rc = dispatch(w, o, NULL, 0, NULL, err)) < 0)
				return rc;
			if ((rc = trs__run_aborted(&w->run, err)) < 0)
				return rc; /* no credentials: every further object would fail the same way */
			if ((++n & 63) == 0)
				trs__restore_progress(&w->run, w->archive);
		}
		if (rc < 0 || !w->early.overflow || pass == 1)
			return rc;
		/* The budget ran out before the manifest: walk again for the rest. */
		trs__log(w->run.ctx, TRS_LOG_INFO,
			 "objects before the manifest exceeded the memory budget; reading the archive a second time",
			 "archive", w->run.report->archive, NULL);
		if ((rc = trs_archive_rewind(w->archive, err)) < 0)
			return rc;
		trs__object_iter_restart(w->it, w->manifest_index);
		trs__object_iter_defer_missing(w->it, 0);
	}
	return 0;
}

/* The distinct regions of the manifest's targets, in manifest order, comma-separated. */
static int list_regions(trs_report *rep, const trs_manifest *m, trs_error *err)
{
	trs__buf b = TRS_BUF_INIT;
	int rc = trs__buf_puts(&b, "", err);
	size_t n = trs_manifest_target_count(m);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *region = trs_manifest_target_at(m, i)->region;
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = !strcmp(trs_manifest_target_at(m, k)->region, region);
		if (!seen)
			rc = trs__buf_printf(&b, err, "%s%s", b.len ? ", " : "", *region ? region : "(none)");
	}
	if (rc < 0) {
		trs__buf_free(&b);
		return rc;
	}
	rep->target_regions = b.data;
	return 0;
}

/*
 * An archive reaches a region's staging bucket because the source side's
 * replication sends its prefix there for a target in that region. Targets,
 * none of them here, means a wrong region setting or a wrong rule: fail it
 * (its message stays queued for the dead-letter queue), unless the operator
 * said such archives are expected. 1 when there is nothing to do here.
 */
static int foreign_archive(const trs_ctx *ctx, const trs_manifest *m, const trs_process_options *opt,
			   trs_report *rep, trs_error *err)
{
	size_t n = trs_manifest_target_count(m);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(trs_manifest_target_at(m, i)->region, ctx->region))
			return 0;
	if (n == 0)
		return 0; /* no targets at all: every object is skipped, with the manifest's warning */
	rep->objects_skipped = rep->objects_total;
	rep->foreign = 1;
	if (opt->foreign_archives == TRS_FOREIGN_SKIP) {
		trs__log(ctx, TRS_LOG_INFO, "archive has no target in this region: nothing to do here (--foreign-archives skip)",
			 "archive", rep->archive, "region", ctx->region, "target_regions", rep->target_regions, NULL);
		return 1;
	}
	return trs__error_set(err, TRS_EREGION,
			      "archive %s has targets in %s and none in %s, this service's region: nothing was "
			      "written and the archive is kept. Fix the region (--region, AWS_REGION) or the source "
			      "side's replication rule that sent it here; where such archives are expected, pass "
			      "--foreign-archives skip (TRS_FOREIGN_ARCHIVES=skip)",
			      TRS__SHORT(rep->archive), rep->target_regions, ctx->region);
}

/* The message of TRS_EPARTIAL: object failures first, else the first other failure. */
static int partial_error(const trs_report *rep, trs_error *err)
{
	if (rep->objects_failed)
		return trs__error_set(err, TRS_EPARTIAL,
				      "archive %s: %llu of %llu objects failed (the others were written; running again is safe)",
				      TRS__SHORT(rep->archive), (unsigned long long)rep->objects_failed,
				      (unsigned long long)(rep->objects_failed + rep->objects_written));
	return trs__error_set(err, TRS_EPARTIAL, "%s (running again is safe)", rep->failures[0].message);
}

TRS_EXTERN(int) trs_process(trs_ctx *ctx, trs_storage *storage, const trs_archive_source *source,
			    const trs_process_options *options, trs_report **report_out, trs_error *err)
{
	return trs__process_shared(ctx, storage, source, options, NULL, report_out, err);
}

int trs__process_shared(trs_ctx *ctx, trs_storage *storage, const trs_archive_source *source,
			const trs_process_options *options, trs__budget *shared, trs_report **report_out, trs_error *err)
{
	*report_out = NULL;
	if (!ctx || !storage || !source)
		return trs__error_set(err, TRS_EINVAL, "trs_process needs a context, a storage and a source");
	if (trs__storage_check_version(storage, err) < 0)
		return TRS_EINVAL;
	trs_process_options opt;
	if (trs__process_options_take(&opt, options, err) < 0)
		return TRS_EINVAL;
	if (!*ctx->region)
		return trs__error_set(err, TRS_EINVAL,
				      "no region is set: pass --region or set AWS_REGION (only targets in this "
				      "service's region are restored)");
	const char *name = source->name ? source->name : source->path ? source->path : "<archive>";
	trs_report *rep = trs__report_new(name, err);
	if (!rep)
		return TRS_ENOMEM;
	*report_out = rep;
	walk w;
	memset(&w, 0, sizeof(w));
	w.run.ctx = ctx;
	w.run.storage = storage;
	w.run.report = rep;
	w.run.shared = shared;
	w.opt = opt;
	w.run.dry_run = opt.dry_run;
	w.run.overwrite_always = opt.overwrite == TRS_OVERWRITE_ALWAYS;
	w.run.write_flags = opt.redelivery ? TRS_WRITE_ASK_FIRST : 0;
	rep->dry_run = w.run.dry_run;
	w.chunk = w.small_max = trs__run_chunk_size(ctx);
	w.early.run = &w.run;
	w.early.chunk = w.chunk;
	w.early.small_max = w.small_max;
	double t0 = trs__now();
	int rc = trs__run_start(&w.run, trs__run_writer_threads(ctx, storage), err);
	if (rc < 0) {
		free(w.run.threads);
		return rc;
	}
	if ((rc = trs_archive_open(&w.archive, source, ctx, err)) == 0) {
		w.early.archive = w.archive;
		rc = find_manifest(&w, err);
	}
	rep->seconds_manifest = trs__now() - t0;
	if (rc == 0)
		trs__early_log(&w.early);
	if (rc == 0) {
		trs__report_manifest(rep, w.manifest);
		w.run.manifest = w.manifest;
		if (!(w.run.outcomes = trs__calloc(rep->objects_total + 1, 1, err)))
			rc = TRS_ENOMEM;
		for (size_t i = 0; i < trs_manifest_warning_count(w.manifest); i++)
			if (trs__repeat_log(&w.run.repeats, ctx, TRS__REPEAT_MANIFEST))
				trs__log(ctx, TRS_LOG_WARN, trs_manifest_warning_at(w.manifest, i), "archive", rep->archive, NULL);
		trs__repeat_unlogged(&w.run.repeats, TRS__REPEAT_MANIFEST, trs__manifest_warnings_dropped(w.manifest));
		if (rc == 0 && opt.to_bucket)
			rc = trs__select_retarget(ctx, w.manifest, opt.to_bucket, rep->archive, err);
		if (rc == 0)
			rc = trs__report_init_targets(rep, w.manifest, ctx->region, err);
		if (rc == 0)
			rc = list_regions(rep, w.manifest, err);
	}
	int nothing_here = 0;
	if (rc == 0 && !opt.to_bucket && (rc = foreign_archive(ctx, w.manifest, &opt, rep, err)) == 1) {
		nothing_here = 1;
		rc = 0;
	}
	/* A restore (only, to_bucket) is not a new backup; everything else plans its backups first, so that
	 * a missing catalog bucket fails the archive before anything is written. */
	int64_t backup_ms = opt.backup_time_ms ? opt.backup_time_ms : trs__wall_ms();
	if (rc == 0 && !opt.nonly && !opt.to_bucket)
		rc = trs__backup_plan(ctx, w.manifest, &opt, backup_ms, rep, err);
	if (rc == 0 && opt.nonly && !rep->ntargets)
		rc = trs__error_set(err, TRS_EINVAL,
				    "archive %s has no non-backup target in %s to restore the chosen objects to; name "
				    "a bucket (--to-bucket)",
				    TRS__SHORT(rep->archive), ctx->region);
	if (rc == 0)
		rc = trs__select_check_only(ctx, w.manifest, &opt, rep, err);
	/* Targets here that are all backups: the archive is stored as it is, its bodies are never walked. */
	int walk_objects = !(rep->nbackups && !rep->ntargets) && !nothing_here;
	if (rc == 0 && walk_objects && (rc = trs_object_iter_new(&w.it, w.archive, w.manifest, ctx, err)) == 0) {
		trs__object_iter_add_skipped(w.it, w.early_skipped);
		trs__object_iter_share_repeats(w.it, &w.run.repeats);
		trs__object_iter_take_links(w.it, &w.links);
		trs__object_iter_set_manifest(w.it, w.manifest_index, w.manifest_md5);
	}
	double t1 = trs__now();
	if (rc == 0 && walk_objects)
		rc = restore(&w, err);
	/* Every queued job finishes first, whatever happened: stage jobs still
	 * write into the members' results that trs__early_free releases. */
	trs__restore_wait_idle(&w.run, w.archive);
	/* Missing or refused credentials are the archive's error, said once. */
	if ((rc == 0 || rc == TRS_EPARTIAL || rc == TRS_EAUTH) && trs__run_aborted(&w.run, NULL)) {
		trs_error first = TRS_ERROR_INIT;
		rc = trs__run_aborted(&w.run, &first);
		if (err) {
			*err = first;
			trs__error_prefix(err, "archive %s: stopped, no object can be written with these credentials",
					  TRS__SHORT(rep->archive));
		}
	}
	trs__early_free(&w.early);
	trs__run_finish(&w.run);
	trs__run_log_failures(&w.run);
	trs__repeat_summary(&w.run.repeats, ctx, rep->archive); /* every writer is done */
	free(w.run.outcomes);
	rep->seconds_restore = trs__now() - t1;
	rep->members_skipped = w.it ? trs_object_iter_skipped_members(w.it) : w.early_skipped;
	if (w.archive) {
		trs_archive_stats st;
		trs_archive_get_stats(w.archive, &st);
		rep->compressed_bytes = source->compressed_size ? source->compressed_size
					: st.passes ? st.compressed_read / st.passes : st.compressed_read;
		rep->decompressed_bytes = st.tar_size;
		rep->passes = st.passes;
		rep->seconds_decompress = st.decompress_seconds;
		if (w.manifest)
			rep->manifest_position = w.files_before_manifest == 0 ? TRS_MANIFEST_FIRST
						 : st.members && w.manifest_index + 1 < st.members ? TRS_MANIFEST_MIDDLE
												  : TRS_MANIFEST_LAST;
	}
	if (w.manifest)
		trs__log(ctx, TRS_LOG_DEBUG, "archive walked", "archive", rep->archive, "passes",
			 rep->passes > 1 ? "2" : "1", NULL);
	trs_object_iter_free(w.it);
	trs__link_memo_free(&w.links);
	trs_archive_close(w.archive); /* before the backups: an upload reads the source again */
	/* Backups only after every object was written: a retry redoes the whole archive, and a backup
	 * stored by a failed attempt would be a second copy under another timestamp. */
	if (rc == 0 && rep->nbackups && rep->nfailures) {
		trs__log(ctx, TRS_LOG_WARN, "objects failed; the backup is left for the next attempt", "archive",
			 rep->archive, NULL);
		rep->backups_failed = rep->nbackups;
	} else if (rc == 0 && rep->nbackups) {
		double tb = trs__now();
		rc = trs__backup_write(ctx, storage, source, &opt, w.manifest, backup_ms, rep, err);
		rep->seconds_restore += trs__now() - tb;
	}
	if (rc == 0 && rep->nfailures)
		rc = partial_error(rep, err);
	rep->seconds_total = trs__now() - t0;
	trs_manifest_free(w.manifest);
	return rc;
}
