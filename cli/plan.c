/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `--dry-run`: a storage backend (include/trs/sys/storage.h) that writes
 * nothing and lists every put the restore would make. It stands in for the
 * destination, so a dry run never creates DIR or touches a bucket, and the
 * library reads, joins and checks everything as for a real restore: each
 * body is read to its end, so sizes and MD5s are verified.
 *
 * Each planned put is one line on `out`, five tab-separated fields:
 *
 *   bucket  key  size  storage-class  kms-key-id ("-" for none)
 *
 * Control characters and backslashes in names are written as \xNN and \\,
 * so that one put is always one line. With --json the puts are kept and
 * go into the report instead (cli_plan_json).
 */
#include "cli.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <trs/sys/storage.h>

typedef struct planned {
	char *bucket, *key, *storage_class, *kms_key_id;
	uint64_t size;
} planned;

typedef struct plan_storage {
	trs_storage parent;
	pthread_mutex_t lock;
	FILE *out;          /* NULL: keep the puts for the report */
	planned *puts;
	size_t nputs, cap;
} plan_storage;

static void write_name(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

static const char *class_of(const trs_put_request *req)
{
	return req->storage_class && *req->storage_class ? req->storage_class : "STANDARD";
}

static int record(plan_storage *ps, const trs_put_request *req, uint64_t size, trs_error *err)
{
	const char *kms = req->kms_key_id && *req->kms_key_id ? req->kms_key_id : NULL;
	pthread_mutex_lock(&ps->lock);
	int rc = 0;
	if (ps->out) {
		/* One line, written whole while the lock is held. */
		write_name(ps->out, req->bucket);
		fputc('\t', ps->out);
		write_name(ps->out, req->key);
		fprintf(ps->out, "\t%llu\t", (unsigned long long)size);
		write_name(ps->out, class_of(req));
		fputc('\t', ps->out);
		write_name(ps->out, kms ? kms : "-");
		fputc('\n', ps->out);
	} else {
		if (ps->nputs == ps->cap) {
			size_t cap = ps->cap ? ps->cap * 2 : 64;
			planned *grown = realloc(ps->puts, cap * sizeof(*grown));
			if (!grown) {
				rc = TRS_ENOMEM;
			} else {
				ps->puts = grown;
				ps->cap = cap;
			}
		}
		if (rc == 0) {
			planned *p = &ps->puts[ps->nputs];
			p->bucket = strdup(req->bucket);
			p->key = strdup(req->key);
			p->storage_class = strdup(class_of(req));
			p->kms_key_id = kms ? strdup(kms) : NULL;
			p->size = size;
			if (!p->bucket || !p->key || !p->storage_class || (kms && !p->kms_key_id)) {
				free(p->bucket);
				free(p->key);
				free(p->storage_class);
				free(p->kms_key_id);
				rc = TRS_ENOMEM;
			} else {
				ps->nputs++;
			}
		}
	}
	pthread_mutex_unlock(&ps->lock);
	if (rc < 0 && err) {
		err->code = rc;
		snprintf(err->message, sizeof(err->message), "out of memory listing the planned puts");
	}
	return rc;
}

static int plan_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	/* Read the body to its end: a checked body verifies size and MD5 at its last byte. */
	unsigned char buf[65536];
	uint64_t total = 0;
	for (;;) {
		int64_t n = body->read(body->self, buf, sizeof(buf), err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		total += (uint64_t)n;
	}
	return record((plan_storage *)self, req, total, err);
}

static int plan_copy(trs_storage *self, const char *src_bucket, const char *src_key, const trs_put_request *req,
		     trs_error *err)
{
	(void)src_bucket;
	(void)src_key;
	return record((plan_storage *)self, req, req->size, err);
}

static void plan_free(trs_storage *self)
{
	plan_storage *ps = (plan_storage *)self;
	for (size_t i = 0; i < ps->nputs; i++) {
		free(ps->puts[i].bucket);
		free(ps->puts[i].key);
		free(ps->puts[i].storage_class);
		free(ps->puts[i].kms_key_id);
	}
	free(ps->puts);
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

trs_storage *cli_plan_new(FILE *out)
{
	plan_storage *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	trs_storage_init_backend(&ps->parent, TRS_STORAGE_VERSION);
	ps->parent.name = "dry-run";
	ps->parent.put = plan_put;
	ps->parent.copy = plan_copy;
	ps->parent.free = plan_free;
	pthread_mutex_init(&ps->lock, NULL);
	ps->out = out;
	return &ps->parent;
}

void cli_plan_json(const trs_storage *s, FILE *f)
{
	const plan_storage *ps = (const plan_storage *)s;
	fputc('[', f);
	for (size_t i = 0; i < ps->nputs; i++) {
		const planned *p = &ps->puts[i];
		fputs(i ? ",{\"bucket\":" : "{\"bucket\":", f);
		cli_json_string(f, p->bucket);
		fputs(",\"key\":", f);
		cli_json_string(f, p->key);
		fprintf(f, ",\"size\":%llu,\"storage_class\":", (unsigned long long)p->size);
		cli_json_string(f, p->storage_class);
		fputs(",\"kms_key_id\":", f);
		if (p->kms_key_id)
			cli_json_string(f, p->kms_key_id);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fputc(']', f);
}
