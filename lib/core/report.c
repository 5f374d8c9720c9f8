/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The report of one archive: created, grown and freed here alone. Its list
 * of failures is appended through one function, whose capacity follows from
 * the list's length alone, so that no second count can disagree with it.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#define FAILURES_MIN 16

trs_report *trs__report_new(const char *name, trs_error *err)
{
	trs_report *rep = trs__calloc(1, sizeof(*rep), err);
	if (!rep)
		return NULL;
	if (!(rep->archive = trs__strdup(name, err))) {
		free(rep);
		return NULL;
	}
	return rep;
}

/* The capacity of a list of n failures: FAILURES_MIN, then powers of two.
 * It grows exactly when n reaches it. */
static size_t failures_capacity(size_t n)
{
	size_t cap = FAILURES_MIN;
	while (cap < n)
		cap *= 2;
	return cap;
}

int trs__report_add_failure(trs_report *rep, const char *relative_key, const char *bucket, const char *key, int code,
			    const char *message, trs_error *err)
{
	size_t n = rep->nfailures;
	if (n == 0 || n == failures_capacity(n)) {
		size_t cap = failures_capacity(n + 1);
		if (cap < n || cap > SIZE_MAX / sizeof(trs_failure))
			return trs__error_set(err, TRS_ENOMEM, "out of memory");
		trs_failure *grown = realloc(rep->failures, cap * sizeof(*grown));
		if (!grown)
			return trs__error_set(err, TRS_ENOMEM, "out of memory");
		rep->failures = grown;
	}
	trs_failure *f = &rep->failures[n];
	memset(f, 0, sizeof(*f));
	f->code = code;
	if (!(f->relative_key = strdup(relative_key ? relative_key : "")) || !(f->bucket = strdup(bucket ? bucket : "")) ||
	    !(f->key = strdup(key ? key : "")) || !(f->message = strdup(message ? message : ""))) {
		free(f->relative_key);
		free(f->bucket);
		free(f->key);
		free(f->message);
		return trs__error_set(err, TRS_ENOMEM, "out of memory");
	}
	rep->nfailures = n + 1;
	return 0;
}

/* One entry per distinct bucket of this region's non-backup targets. */
void trs__report_manifest(trs_report *rep, const trs_manifest *m)
{
	rep->objects_total = trs_manifest_object_count(m);
	rep->manifest_bytes = trs_manifest_json_bytes(m);
	rep->manifest_memory = trs_manifest_memory(m);
}

int trs__report_init_targets(trs_report *rep, const trs_manifest *m, const char *region, trs_error *err)
{
	size_t n = trs_manifest_target_count(m);
	rep->targets = trs__calloc(n ? n : 1, sizeof(*rep->targets), err);
	if (!rep->targets)
		return TRS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const trs_manifest_target *t = trs_manifest_target_at(m, i);
		if (t->backup || strcmp(t->region, region) != 0 || !*t->bucket)
			continue;
		int dup = 0;
		for (size_t k = 0; k < rep->ntargets; k++)
			dup |= !strcmp(rep->targets[k].bucket, t->bucket);
		if (dup)
			continue;
		if (!(rep->targets[rep->ntargets].bucket = trs__strdup(t->bucket, err)))
			return TRS_ENOMEM;
		rep->ntargets++;
	}
	return 0;
}

trs_report_target *trs__report_target(trs_report *rep, const char *bucket)
{
	for (size_t i = 0; i < rep->ntargets; i++)
		if (!strcmp(rep->targets[i].bucket, bucket))
			return &rep->targets[i];
	return NULL;
}

static uint64_t *object_counter(trs_report *rep, int state)
{
	switch (state) {
	case TRS__OBJECT_WRITTEN: return &rep->objects_written;
	case TRS__OBJECT_FAILED: return &rep->objects_failed;
	case TRS__OBJECT_KEPT_NEWER: return &rep->objects_kept_newer;
	case TRS__OBJECT_CURRENT: return &rep->objects_current;
	default: return NULL;
	}
}

void trs__report_count_object(trs_report *rep, unsigned char *outcome, int state, int rewrite)
{
	uint64_t *before = rewrite && outcome ? object_counter(rep, *outcome) : NULL;
	if (before)
		(*before)--;
	uint64_t *now = object_counter(rep, state);
	if (now)
		(*now)++;
	if (outcome)
		*outcome = (unsigned char)state;
}

void trs__report_forget_failure(trs_report *rep, const char *relative_key, const char *bucket, const char *key)
{
	size_t kept = 0;
	for (size_t i = 0; i < rep->nfailures; i++) {
		trs_failure *f = &rep->failures[i];
		if (!strcmp(f->relative_key, relative_key) && !strcmp(f->bucket, bucket) && !strcmp(f->key, key)) {
			rep->puts_failed--;
			trs_report_target *t = trs__report_target(rep, bucket);
			if (t)
				t->puts_failed--;
			free(f->relative_key);
			free(f->bucket);
			free(f->key);
			free(f->message);
			continue;
		}
		rep->failures[kept++] = *f;
	}
	rep->nfailures = kept; /* the allocation stays at least the capacity a shorter list implies */
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
	for (size_t i = 0; i < rep->nbackups; i++) {
		free(rep->backups[i].bucket);
		free(rep->backups[i].key);
	}
	free(rep->backups);
	free(rep->catalog_bucket);
	free(rep->catalog_key);
	free(rep->target_regions);
	free(rep->archive);
	free(rep);
}
