/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Objects that come before the manifest: kept by the reader until the
 * manifest says where they go (lib/core/early.h says how).
 */
#include "early.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Objects up to this size go to the spool; larger ones are staged as files of their own. */
#define SPOOL_OBJECT_MAX (64u << 10)
/* The spool's buffers: a local destination batches small jobs up to 4 MiB, so a buffer this size goes to a
 * writer at once. */
#define SPOOL_BUFFER (4u << 20)

int trs__read_member(trs_archive *a, unsigned char *buf, uint64_t size, trs_error *err)
{
	uint64_t got = 0;
	while (got < size) {
		int64_t n = trs_archive_read(a, buf + got, (size_t)(size - got), err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return trs__error_set(err, TRS_EARCHIVE, "archive %s: member ends early",
					      TRS__SHORT(trs_archive_name(a)));
		got += (uint64_t)n;
	}
	return 0;
}

static void append(trs__early *e, trs__early_member *p)
{
	if (e->tail)
		e->tail->next = p;
	else
		e->head = p;
	e->tail = p;
}

static trs__early_member *new_member(trs__early *e, const trs_member *m)
{
	trs__early_member *p = trs__arena_alloc(&e->mem, sizeof(*p), _Alignof(trs__early_member));
	if (p)
		*p = (trs__early_member){.size = m->size,
					 .index = m->index,
					 .path = trs__arena_strdup(&e->mem, m->path, strlen(m->path))};
	return p && p->path ? p : NULL;
}

/* Write a member to the staging directory: small ones through a writer
 * thread (so decompression goes on meanwhile), large ones here. */
static int stage_member(trs__early *e, const trs_member *m, trs_error *err)
{
	trs__run *run = e->run;
	trs__early_member *p = new_member(e, m);
	if (!p)
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	p->staged = 1;
	p->stage_index = e->stage_next++;
	append(e, p);
	e->staged++;
	if (m->size <= e->small_max) {
		trs__run_budget_take(run, m->size, 1);
		unsigned char *data = malloc(m->size ? m->size : 1);
		int rc = data ? trs__read_member(e->archive, data, m->size, err)
			      : trs__error_set(err, TRS_ENOMEM, "out of memory");
		trs__job *j = rc == 0 ? trs__job_new_stage(e->stage, p->stage_index, data, m->size, &p->result, err) : NULL;
		if (!j) {
			free(data);
			trs__run_budget_give(run, m->size);
			return rc < 0 ? rc : TRS_ENOMEM;
		}
		trs__job_submit(run, j);
		return 0;
	}
	/* Large: a writer thread stages it from a chunk channel while we go on. */
	trs__job *j = trs__job_new_stage(e->stage, p->stage_index, NULL, 0, &p->result, err);
	if (!j)
		return TRS_ENOMEM;
	trs__job_stream(j, m->size);
	trs__job_submit(run, j);
	uint64_t left = m->size;
	int rc = 0;
	trs_error rerr = TRS_ERROR_INIT;
	while (left && rc == 0) {
		uint64_t want = left < e->chunk ? left : e->chunk;
		trs__run_budget_take(run, want, 1);
		trs__chunk *c = malloc(sizeof(*c) + want);
		if (!c) {
			trs__run_budget_give(run, want);
			rc = trs__error_set(&rerr, TRS_ENOMEM, "out of memory");
			break;
		}
		c->len = 0;
		rc = trs__read_member(e->archive, c->data, want, &rerr);
		if (rc < 0) {
			free(c);
			trs__run_budget_give(run, want);
			break;
		}
		c->len = (size_t)want;
		left -= want;
		trs__job_push(run, j, c);
	}
	trs__job_end(run, j, rc, &rerr);
	if (rc < 0 && err)
		*err = rerr;
	return rc;
}

static size_t spool_buffer(const trs__early *e)
{
	return e->chunk < SPOOL_BUFFER ? (size_t)e->chunk : SPOOL_BUFFER;
}

/* The spool: in the staging directory of a local destination, else in TMPDIR. 0, or -1 when there is none. */
static int open_spool(trs__early *e)
{
	if (e->spool || e->spool_tried)
		return e->spool ? 0 : -1;
	e->spool_tried = 1;
	trs__run *run = e->run;
	trs_error why = TRS_ERROR_INIT;
	char where[4096];
	int fd;
	if (e->stage) {
		fd = trs__storage_stage_spool(e->stage, where, sizeof(where), &why);
	} else {
		const char *dir = getenv("TMPDIR");
		snprintf(where, sizeof(where), "%s", dir && *dir ? dir : "/tmp");
		int dirfd = open(where, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fd = dirfd >= 0 ? trs__tmpfile_at(dirfd) : -1;
		if (fd < 0)
			trs__error_errno(&why, errno, "cannot create a file in %s (set TMPDIR)", TRS__SHORT(where));
		if (dirfd >= 0)
			close(dirfd);
	}
	/* Its buffers come out of the budget: one being filled, the others being written out. */
	e->spool_buffer = spool_buffer(e);
	if (fd >= 0) {
		trs__run_budget_take(run, e->spool_buffer, 1);
		/* What the storage checks itself (S3's Content-MD5) is not hashed here. */
		int hash = run->ctx->verify != TRS_VERIFY_SIZE && trs__storage_md5_checked_below(run->storage) <= SPOOL_OBJECT_MAX;
		if (trs__spool_new(&e->spool, fd, malloc(e->spool_buffer), e->spool_buffer, hash, where, &why) == 0)
			return 0;
		trs__run_budget_give(run, e->spool_buffer);
	}
	trs__log(run->ctx, TRS_LOG_WARN,
		 e->stage ? "cannot spool the objects before the manifest; staging them one by one"
			  : "cannot spool the objects before the manifest; what the memory budget does not hold is "
			    "read in a second pass",
		 "archive", trs_archive_name(e->archive), "error", why.message, NULL);
	return -1;
}

/* Hand the spool's full buffer to a writer thread, and give it a new one. */
static int hand_over(trs__early *e, trs_error *err)
{
	trs__run *run = e->run;
	unsigned char *buf;
	size_t len;
	uint64_t offset;
	int rc = trs__spool_failed(e->spool, err); /* a full disk: stop now, not at the end of the archive */
	if (rc < 0) {
		trs__error_prefix(err, "archive %s", TRS__SHORT(trs_archive_name(e->archive)));
		return rc;
	}
	trs__spool_detach(e->spool, &buf, &len, &offset);
	trs__job *j = trs__job_new_stage(NULL, offset, buf, len, NULL, err);
	if (!j) {
		trs__spool_attach(e->spool, buf); /* the records in it are lost with the archive */
		return TRS_ENOMEM;
	}
	j->kind = TRS_JOB_SPOOL;
	j->spool = e->spool;
	j->budget = e->spool_buffer;
	trs__job_submit(run, j);
	trs__run_budget_take(run, e->spool_buffer, 1);
	unsigned char *next = malloc(e->spool_buffer);
	if (!next) {
		trs__run_budget_give(run, e->spool_buffer);
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	}
	trs__spool_attach(e->spool, next);
	return 0;
}

/* 1 when `m` was appended to the spool, 0 when it is not for the spool, or a negative code. */
static int spool_member(trs__early *e, const trs_member *m, trs_error *err)
{
	if (m->size > SPOOL_OBJECT_MAX || open_spool(e) < 0 || !trs__spool_fits(e->spool, m->path, m->size))
		return 0;
	unsigned char *at = trs__spool_reserve(e->spool, m->path, m->index, m->size);
	int rc;
	if (!at && (rc = hand_over(e, err)) < 0)
		return rc;
	if (!at)
		at = trs__spool_reserve(e->spool, m->path, m->index, m->size);
	if ((rc = trs__read_member(e->archive, at, m->size, err)) < 0) {
		trs__spool_unreserve(e->spool);
		return rc;
	}
	return 1;
}

int trs__early_keep(trs__early *e, const trs_member *m, trs_error *err)
{
	trs__run *run = e->run;
	int rc;
	if (!e->stage_tried && !run->dry_run && (trs__storage_caps(run->storage) & TRS_STORAGE_STAGE_EARLY)) {
		trs_error ignored = TRS_ERROR_INIT;
		e->stage_tried = 1;
		rc = trs__storage_stage_open(run->storage, &e->stage, &ignored);
		if (rc < 0 && rc != TRS_EUNSUPPORTED)
			trs__log(run->ctx, TRS_LOG_WARN, "cannot stage objects on disk; holding them in memory",
				 "error", ignored.message, NULL);
	}
	if (e->stage) {
		if ((rc = spool_member(e, m, err)) != 0)
			return rc < 0 ? rc : 0;
		return stage_member(e, m, err);
	}
	/* Other destinations: in memory while the budget lasts, then (small ones) in the spool, whose
	 * buffers need room in the budget too: two of them are left free. */
	uint64_t keep_free = run->dry_run || (e->spool_tried && !e->spool) ? 0 : 2 * (uint64_t)spool_buffer(e);
	if (!e->spool && !e->overflow && trs__run_budget_take(run, m->size + keep_free, 0) == 0) {
		trs__run_budget_give(run, keep_free);
		trs__early_member *p = new_member(e, m);
		unsigned char *data = malloc(m->size ? m->size : 1);
		if (!p || !data) {
			free(data);
			trs__run_budget_give(run, m->size);
			e->overflow = 1; /* short of memory: the second pass restores it */
			return 0;
		}
		if ((rc = trs__read_member(e->archive, data, m->size, err)) < 0) {
			free(data);
			trs__run_budget_give(run, m->size);
			return rc;
		}
		p->data = data;
		append(e, p);
		e->held++;
		return 0;
	}
	if (!run->dry_run && (rc = spool_member(e, m, err)) != 0)
		return rc < 0 ? rc : 0;
	e->overflow = 1;
	return 0;
}

void trs__early_log(const trs__early *e)
{
	char held[24], staged[24], spooled[24], bytes[24];
	snprintf(held, sizeof(held), "%llu", (unsigned long long)e->held);
	snprintf(staged, sizeof(staged), "%llu", (unsigned long long)e->staged);
	snprintf(spooled, sizeof(spooled), "%llu", (unsigned long long)(e->spool ? trs__spool_count(e->spool) : 0));
	snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)(e->spool ? trs__spool_bytes(e->spool) : 0));
	trs__log(e->run->ctx, TRS_LOG_DEBUG, "objects before the manifest", "archive", trs_archive_name(e->archive),
		 "held", held, "staged", staged, "spooled", spooled, "spooled_bytes", bytes, "second_pass",
		 e->overflow ? "true" : "false", NULL);
}

int trs__early_next(trs__early *e, trs__early_item *item, trs_error *err)
{
	if (e->from_spool)
		trs__spool_advance(e->spool);
	e->from_spool = 0;
	trs__spool_record rec;
	int have = e->spool ? trs__spool_peek(e->spool, &rec, err) : 0;
	if (have < 0) {
		trs__error_prefix(err, "archive %s", TRS__SHORT(trs_archive_name(e->archive)));
		return have;
	}
	trs__early_member *p = e->head;
	if (have && (!p || rec.index < p->index)) {
		e->from_spool = 1;
		*item = (trs__early_item){NULL, rec.path, rec.index, rec.size, rec.data, rec.md5};
		return 1;
	}
	if (!p)
		return 0;
	e->head = p->next;
	if (!e->head)
		e->tail = NULL;
	*item = (trs__early_item){p, p->path, p->index, p->size, p->data, NULL};
	return 1;
}

void trs__early_drop(trs__early *e, trs__early_member *p)
{
	if (p->staged) {
		trs__storage_stage_discard(e->stage, p->stage_index);
	} else {
		free(p->data);
		trs__run_budget_give(e->run, p->size);
	}
	p->data = NULL;
	free(p->result.err);
	p->result.err = NULL;
}

void trs__early_free(trs__early *e)
{
	for (trs__early_member *p = e->head; p; p = p->next) {
		if (!p->staged)
			trs__run_budget_give(e->run, p->size);
		free(p->data);
		free(p->result.err);
	}
	e->head = e->tail = NULL;
	trs__arena_free(&e->mem);
	if (e->spool)
		trs__run_budget_give(e->run, e->spool_buffer);
	trs__spool_free(e->spool);
	e->spool = NULL;
	trs__storage_stage_close(e->stage);
	e->stage = NULL;
}
