/* SPDX-License-Identifier: Apache-2.0 */
/*
 * S3 multipart upload (the copy of objects over 5 GiB is in s3_multipart_copy.c).
 *
 * Upload: the calling thread reads the body part by part into up to
 * parts_in_flight part buffers, whose memory comes from a pool that all
 * uploads of the storage share (half of --max-memory), and worker threads
 * send each full buffer as an UploadPart, keeping it until
 * the part succeeded so that retries re-send the same bytes. Any failure -
 * a part that kept failing, a body read() returning a negative code, a
 * failed Complete - aborts the upload, so no parts stay behind and nothing
 * becomes visible.
 *
 * Over https (unless every payload is to be signed) the upload is created
 * with x-amz-checksum-algorithm CRC32 and each part carries its CRC-32,
 * which S3 verifies: the part is then signed UNSIGNED-PAYLOAD instead of
 * having its SHA-256 computed, as a single PUT with Content-MD5 is. The
 * Complete names each part's CRC-32 beside its ETag.
 */
#include "storage_s3.h"
#include "archive/object_iter.h"
#include "digest.h"
#include "codec.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t trs__s3_part_size(uint64_t object_size, uint64_t wanted)
{
	uint64_t ps = wanted < TRS_S3_MIN_PART ? TRS_S3_MIN_PART : wanted;
	if (ps > TRS_S3_MAX_PART)
		ps = TRS_S3_MAX_PART;
	if ((object_size + ps - 1) / ps > TRS_S3_MAX_PARTS) {
		/* Grow to the smallest whole MiB that fits in 10,000 parts. */
		uint64_t need = (object_size + TRS_S3_MAX_PARTS - 1) / TRS_S3_MAX_PARTS;
		ps = (need + (1ull << 20) - 1) & ~((1ull << 20) - 1);
		if (ps > TRS_S3_MAX_PART)
			ps = TRS_S3_MAX_PART;
	}
	return ps;
}

/* The part of an upload id that goes in a query string. */
int trs__s3_mpu_query(trs__buf *q, const char *upload_id, unsigned int part_number, trs_error *err)
{
	int rc = 0;
	if (part_number)
		rc = trs__buf_printf(q, err, "partNumber=%u&", part_number);
	if (rc == 0)
		rc = trs__buf_puts(q, "uploadId=", err);
	if (rc == 0)
		rc = trs__uri_encode(q, upload_id, strlen(upload_id), false, err);
	return rc;
}

int trs__s3_mpu_create(trs__s3 *s, const trs_put_request *req, bool crc, char **upload_id, trs_error *err)
{
	*upload_id = NULL;
	trs__s3_headers h = TRS_S3_HEADERS_INIT;
	int rc = trs__s3_put_headers(s, &h, req, err);
	if (rc == 0 && crc)
		rc = trs__s3_headers_add(&h, "x-amz-checksum-algorithm", "CRC32", err);
	if (rc < 0) {
		trs__s3_headers_free(&h);
		return rc;
	}
	trs__s3_call c = {0};
	c.op = "CreateMultipartUpload";
	c.method = "POST";
	c.bucket = req->bucket;
	c.key = req->key;
	c.query = "uploads=";
	c.expect = TRS_AWS_XML_INITIATE;
	c.headers = h.kv;
	c.nheaders = h.n;
	trs__http_response resp;
	rc = trs__s3_request(s, &c, &resp, err);
	if (rc == 0) {
		trs__aws_xml x;
		rc = trs__aws_xml_parse(resp.body.data, resp.body.len, &x, err);
		if (rc == 0 && (x.kind != TRS_AWS_XML_INITIATE || !x.upload_id || !*x.upload_id))
			rc = trs__error_set(err, TRS_EHTTP, "S3 CreateMultipartUpload of s3://%s/%s answered without "
					    "an UploadId", req->bucket, TRS__SHORT(req->key));
		if (rc == 0) {
			*upload_id = x.upload_id;
			x.upload_id = NULL;
		}
		trs__aws_xml_free(&x);
	}
	trs__http_response_free(&resp);
	trs__s3_headers_free(&h);
	return rc;
}

/* Best effort: on failure the parts stay until a lifecycle rule removes them, so say which. */
void trs__s3_mpu_abort(trs__s3 *s, const trs_put_request *req, const char *upload_id)
{
	trs__buf q = TRS_BUF_INIT;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__s3_mpu_query(&q, upload_id, 0, &err);
	if (rc == 0) {
		trs__s3_call c = {0};
		c.op = "AbortMultipartUpload";
		c.method = "DELETE";
		c.bucket = req->bucket;
		c.key = req->key;
		c.query = q.data;
		c.not_found_ok = true;
		trs__http_response resp;
		rc = trs__s3_request(s, &c, &resp, &err);
		trs__http_response_free(&resp);
	}
	if (rc < 0)
		trs__log(s->ctx, TRS_LOG_ERROR,
			 "aborting a multipart upload failed; its parts stay until aborted or expired by a "
			 "lifecycle rule (AbortIncompleteMultipartUpload)",
			 "bucket", req->bucket, "key", req->key, "upload_id", upload_id, "error", err.message, NULL);
	else
		trs__log(s->ctx, TRS_LOG_DEBUG, "multipart upload aborted", "bucket", req->bucket, "key", req->key,
			 NULL);
	trs__buf_free(&q);
}

int trs__s3_multipart_etag(char *const *etags, unsigned int nparts, char out[48])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = md && nparts && EVP_DigestInit_ex(md, trs__md5_md(), NULL) ? 0 : -1;
	for (unsigned int i = 0; rc == 0 && i < nparts; i++) {
		char hex[33];
		unsigned char bin[16];
		if (!trs__plain_md5(etags[i], hex) || trs__unhex(hex, bin, sizeof(bin)) < 0)
			rc = -1;
		if (rc == 0 && !EVP_DigestUpdate(md, bin, sizeof(bin)))
			rc = -1;
	}
	unsigned char d[16];
	if (rc == 0 && !EVP_DigestFinal_ex(md, d, NULL))
		rc = -1;
	EVP_MD_CTX_free(md);
	if (rc == 0) {
		trs__hex(d, sizeof(d), out);
		snprintf(out + 32, 16, "-%u", nparts);
	}
	return rc;
}

/*
 * CompleteMultipartUpload answered NoSuchUpload. When an earlier attempt
 * reached S3 and only its answer was lost, S3 may have completed the upload
 * and forgotten the id, so the repeat finds nothing. The object then stands
 * with the ETag these very parts give it: look before failing a restore
 * that succeeded. Any other ETag (or no object) and the error stands.
 */
static bool completed_already(trs__s3 *s, const trs_put_request *req, char **etags, unsigned int nparts)
{
	char want[48];
	if (trs__s3_multipart_etag(etags, nparts, want) < 0)
		return false;
	trs_object_info info = {0};
	trs_error herr = TRS_ERROR_INIT;
	bool same = false;
	if (s->parent.head(&s->parent, req->bucket, req->key, &info, &herr) == 0) {
		/* S3 quotes ETags; compare without the quotes. */
		const char *v = info.etag;
		size_t n = strlen(v), w = strlen(want);
		if (n == w + 2 && v[0] == '"' && v[n - 1] == '"')
			v++, n -= 2;
		same = n == w && strncasecmp(v, want, w) == 0;
	}
	trs_object_info_clear(&info);
	return same;
}

/* crcs: each part's x-amz-checksum-crc32, for an upload created with the algorithm; else NULL. */
int trs__s3_mpu_complete(trs__s3 *s, const trs_put_request *req, const char *upload_id, char **etags,
			 const trs__s3_part_crc *crcs, unsigned int nparts, trs__s3_guard *guard, trs_error *err)
{
	trs__s3_headers h = TRS_S3_HEADERS_INIT;
	trs__buf body = TRS_BUF_INIT, q = TRS_BUF_INIT;
	int rc = trs__buf_puts(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
			       err);
	for (unsigned int i = 0; rc == 0 && i < nparts; i++) {
		rc = trs__buf_printf(&body, err, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
		if (rc == 0)
			rc = trs__xml_escape(&body, etags[i], err);
		if (rc == 0 && crcs)
			rc = trs__buf_printf(&body, err, "</ETag><ChecksumCRC32>%s</ChecksumCRC32></Part>", crcs[i].b64);
		else if (rc == 0)
			rc = trs__buf_puts(&body, "</ETag></Part>", err);
	}
	if (rc == 0)
		rc = trs__buf_puts(&body, "</CompleteMultipartUpload>", err);
	if (rc == 0)
		rc = trs__s3_mpu_query(&q, upload_id, 0, err);
	if (rc == 0)
		rc = trs__s3_headers_add(&h, "Content-Type", "application/xml", err);
	if (rc == 0)
		rc = trs__s3_guard_headers(guard, &h, err);
	if (rc == 0) {
		trs__s3_call c = {0};
		c.op = "CompleteMultipartUpload";
		c.method = "POST";
		c.bucket = req->bucket;
		c.key = req->key;
		c.query = q.data;
		c.headers = h.kv;
		c.nheaders = h.n;
		c.body = body.data;
		c.body_len = body.len;
		c.error_in_200 = true;
		c.expect = TRS_AWS_XML_COMPLETE;
		unsigned int attempts = 0;
		c.attempts = guard ? &attempts : NULL;
		trs__http_response resp;
		trs_error cerr = TRS_ERROR_INIT;
		rc = trs__s3_request(s, &c, &resp, &cerr);
		trs__http_response_free(&resp);
		if (guard)
			guard->attempts = attempts;
		if (rc < 0 && strcmp(cerr.aws_code, "NoSuchUpload") == 0 && completed_already(s, req, etags, nparts)) {
			trs__log(s->ctx, TRS_LOG_INFO,
				 "CompleteMultipartUpload found no upload, but the object stands with these parts' ETag: "
				 "an earlier attempt completed it",
				 "bucket", req->bucket, "key", req->key, NULL);
			rc = 0;
		}
		if (rc < 0 && err)
			*err = cerr;
	}
	trs__s3_headers_free(&h);
	trs__buf_free(&body);
	trs__buf_free(&q);
	return rc;
}

/*
 * Complete under the guard's precondition. Refused (another writer got
 * there since we looked), look again: complete under the new precondition
 * when ours is still newer, else return why not (the caller aborts).
 */
static int complete_guarded(trs__s3 *s, const trs_put_request *req, const char *upload_id, char **etags,
			    const trs__s3_part_crc *crcs, unsigned int nparts, trs__s3_guard *guard, trs_error *err)
{
	for (int round = 0;; round++) {
		int rc = trs__s3_mpu_complete(s, req, upload_id, etags, crcs, nparts, guard, err);
		if (!guard || !trs__s3_guard_refused(guard, rc, err) || round >= 8)
			return rc;
		if ((rc = trs__s3_guard_look(s, req, guard, err)) < 0)
			return rc;
		if (guard->outcome != TRS_WRITTEN)
			return trs__s3_guard_own_write(guard);
	}
}

/* ---- parallel upload ---- */

typedef struct part_job {
	unsigned char *data;
	size_t len;
	unsigned int number; /* 0: the buffer is free */
} part_job;

typedef struct upload {
	trs__s3 *s;
	const trs_put_request *req;
	const char *upload_id;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	part_job *bufs;          /* up to parts_in_flight buffers */
	unsigned int nbufs;
	unsigned int granted;    /* part buffers' worth of memory taken from the pool */
	unsigned int claimed;    /* buffers given memory (or about to be) */
	uint64_t part_size;
	unsigned int *ready;     /* FIFO of buffer indexes waiting for a worker */
	unsigned int ready_head, ready_count;
	bool reading_done;
	bool failed;
	int first_rc;
	trs_error first_err;
	char **etags;            /* by part number - 1 */
	trs__s3_part_crc *crcs;  /* by part number - 1, when the parts carry their CRC-32; else NULL */
} upload;

static void fail_upload(upload *u, int rc, const trs_error *err)
{
	if (!u->failed) {
		u->failed = true;
		u->first_rc = rc;
		if (err)
			u->first_err = *err;
	}
	pthread_cond_broadcast(&u->changed);
}

static int send_part(upload *u, part_job *job, char **etag, trs_error *err)
{
	trs__buf q = TRS_BUF_INIT;
	trs_kv crc_header = {"x-amz-checksum-crc32", NULL};
	if (u->crcs) {
		/* Each part's own slot, written by the one worker that sends it, read after all have joined. */
		char *b64 = u->crcs[job->number - 1].b64;
		trs__crc32_base64(job->data, job->len, b64);
		crc_header.value = b64;
	}
	int rc = trs__s3_mpu_query(&q, u->upload_id, job->number, err);
	if (rc == 0) {
		trs__s3_call c = {0};
		if (u->crcs) {
			c.headers = &crc_header;
			c.nheaders = 1;
			c.checksummed = true;
		}
		c.op = "UploadPart";
		c.method = "PUT";
		c.bucket = u->req->bucket;
		c.key = u->req->key;
		c.query = q.data;
		c.body = job->data;
		c.body_len = job->len;
		trs__http_response resp;
		rc = trs__s3_request(u->s, &c, &resp, err);
		if (rc == 0) {
			const char *e = trs__http_header(&resp, "ETag");
			if (!e || !*e)
				rc = trs__error_set(err, TRS_EHTTP, "S3 UploadPart %u of s3://%s/%s answered without an ETag",
						    job->number, u->req->bucket, TRS__SHORT(u->req->key));
			else if (!(*etag = trs__strdup(e, err)))
				rc = TRS_ENOMEM;
		}
		trs__http_response_free(&resp);
	}
	trs__buf_free(&q);
	return rc;
}

static void *part_worker(void *arg)
{
	upload *u = arg;
	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (!u->ready_count && !u->reading_done && !u->failed)
			pthread_cond_wait(&u->changed, &u->lock);
		if (u->failed || !u->ready_count)
			break;
		part_job *job = &u->bufs[u->ready[u->ready_head]];
		u->ready_head = (u->ready_head + 1) % u->nbufs;
		u->ready_count--;
		pthread_mutex_unlock(&u->lock);

		char *etag = NULL;
		trs_error err = TRS_ERROR_INIT;
		int rc = trs__canceled(u->s->ctx) ? trs__error_set(&err, TRS_ECANCELED, "canceled")
						  : send_part(u, job, &etag, &err);

		pthread_mutex_lock(&u->lock);
		if (rc == 0)
			u->etags[job->number - 1] = etag;
		else
			fail_upload(u, rc, &err);
		job->number = 0; /* the buffer is free again */
		pthread_cond_broadcast(&u->changed);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/*
 * The pool of part memory shared by all uploads of a storage. A request
 * larger than the whole pool (parts grow for huge objects) is granted when
 * the pool is idle.
 */
static bool pool_take(trs__s3 *s, uint64_t n, bool wait)
{
	pthread_mutex_lock(&s->mem_lock);
	while (s->upload_memory_used && s->upload_memory_used + n > s->upload_memory) {
		if (!wait) {
			pthread_mutex_unlock(&s->mem_lock);
			return false;
		}
		pthread_cond_wait(&s->mem_freed, &s->mem_lock);
	}
	s->upload_memory_used += n;
	pthread_mutex_unlock(&s->mem_lock);
	return true;
}

static void pool_give(trs__s3 *s, uint64_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&s->mem_lock);
	s->upload_memory_used -= n;
	pthread_cond_broadcast(&s->mem_freed);
	pthread_mutex_unlock(&s->mem_lock);
}

/*
 * Wait for a free buffer; NULL when the upload failed meanwhile. A buffer
 * that has memory comes first. A new one needs memory from the pool and
 * takes it only while the pool has room. The upload's first buffer was
 * waited for before the upload began, so an upload always holds one and
 * progresses: uploads never wait for each other while holding memory.
 */
static part_job *take_buffer(upload *u)
{
	part_job *job = NULL;
	pthread_mutex_lock(&u->lock);
	while (!u->failed && !job) {
		part_job *empty = NULL;
		for (unsigned int i = 0; i < u->nbufs && !job; i++)
			if (u->bufs[i].number == 0) {
				if (u->bufs[i].data)
					job = &u->bufs[i];
				else if (!empty)
					empty = &u->bufs[i];
			}
		if (!job && empty && u->claimed == u->granted && pool_take(u->s, u->part_size, false))
			u->granted++;
		if (!job && empty && u->claimed < u->granted) {
			job = empty;
			u->claimed++;
		}
		if (!job)
			pthread_cond_wait(&u->changed, &u->lock);
	}
	if (u->failed)
		job = NULL;
	pthread_mutex_unlock(&u->lock);
	return job;
}

int trs__s3_multipart_put(trs__s3 *s, const trs_put_request *req, trs_body *body, trs__s3_guard *guard,
			  trs_error *err)
{
	uint64_t size = body->length;
	uint64_t ps = trs__s3_part_size(size, s->part_size);
	unsigned int nparts = (unsigned int)((size + ps - 1) / ps);
	if (nparts == 0)
		nparts = 1;
	/* Parts grow for huge objects; keep the buffers within the same pool (at least one). */
	unsigned int inflight = s->parts_in_flight;
	if (ps > s->part_size) {
		uint64_t fit = s->upload_memory / ps;
		inflight = fit < 1 ? 1 : fit < inflight ? (unsigned int)fit : inflight;
	}
	if (inflight > nparts)
		inflight = nparts;

	upload u;
	memset(&u, 0, sizeof(u));
	u.s = s;
	u.req = req;
	u.nbufs = inflight;
	u.part_size = ps;
	u.bufs = trs__calloc(inflight, sizeof(*u.bufs), err);
	u.ready = trs__calloc(inflight, sizeof(*u.ready), err);
	u.etags = trs__calloc(nparts, sizeof(*u.etags), err);
	bool crc = trs__s3_unsigned_payload(s); /* the parts carry their CRC-32 */
	if (crc)
		u.crcs = trs__calloc(nparts, sizeof(*u.crcs), err);
	char *upload_id = NULL;
	pthread_t *threads = trs__calloc(inflight, sizeof(*threads), err);
	unsigned int nthreads = 0;
	int rc = 0;
	if (!u.bufs || !u.ready || !u.etags || !threads || (crc && !u.crcs)) {
		rc = TRS_ENOMEM;
		goto out;
	}
	/* Memory for the first part: wait for it before the upload begins. */
	pool_take(s, ps, true);
	u.granted = 1;
	rc = trs__s3_mpu_create(s, req, crc, &upload_id, err);
	if (rc < 0)
		goto out;
	u.upload_id = upload_id;
	char psz[24];
	snprintf(psz, sizeof(psz), "%llu", (unsigned long long)ps);
	trs__log(s->ctx, TRS_LOG_DEBUG, "multipart upload started", "bucket", req->bucket, "key", req->key,
		 "part_size", psz, NULL);

	pthread_mutex_init(&u.lock, NULL);
	pthread_cond_init(&u.changed, NULL);
	for (; nthreads < inflight; nthreads++)
		if (pthread_create(&threads[nthreads], NULL, part_worker, &u) != 0)
			break;
	if (nthreads == 0) {
		trs_error terr = TRS_ERROR_INIT;
		trs__error_set(&terr, TRS_ENOMEM, "cannot start threads for a multipart upload");
		fail_upload(&u, TRS_ENOMEM, &terr);
	}

	/* Read the body, one part after another, on this thread. */
	uint64_t sent = 0;
	for (unsigned int n = 1; n <= nparts; n++) {
		part_job *job = take_buffer(&u);
		if (!job)
			break;
		size_t len = (size_t)(size - sent < ps ? size - sent : ps);
		trs_error rerr = TRS_ERROR_INIT;
		int rrc = 0;
		if (!job->data) {
			job->data = malloc((size_t)ps);
			if (!job->data)
				rrc = trs__error_set(&rerr, TRS_ENOMEM, "out of memory for a %llu-byte part",
						     (unsigned long long)ps);
		}
		/* The last part also reads the body's end: that is when integrity checks speak. */
		if (rrc == 0)
			rrc = trs__s3_read_body(body, job->data, len, n == nparts, req, &rerr);
		pthread_mutex_lock(&u.lock);
		if (rrc < 0) {
			fail_upload(&u, rrc, &rerr);
		} else {
			job->len = len;
			job->number = n;
			u.ready[(u.ready_head + u.ready_count) % u.nbufs] = (unsigned int)(job - u.bufs);
			u.ready_count++;
			pthread_cond_broadcast(&u.changed);
		}
		bool stop = u.failed;
		pthread_mutex_unlock(&u.lock);
		if (stop)
			break;
		sent += len;
	}
	pthread_mutex_lock(&u.lock);
	u.reading_done = true;
	pthread_cond_broadcast(&u.changed);
	pthread_mutex_unlock(&u.lock);
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);

	if (u.failed) {
		rc = u.first_rc;
		if (err)
			*err = u.first_err;
	} else {
		rc = complete_guarded(s, req, upload_id, u.etags, u.crcs, nparts, guard, err);
	}
	if (rc != TRS_WRITTEN)
		trs__s3_mpu_abort(s, req, upload_id); /* failed, or a newer version stands there: no parts stay behind */
	else
		trs__log(s->ctx, TRS_LOG_DEBUG, "multipart upload complete", "bucket", req->bucket, "key", req->key,
			 NULL);
	pthread_cond_destroy(&u.changed);
	pthread_mutex_destroy(&u.lock);
out:
	if (u.bufs)
		for (unsigned int i = 0; i < u.nbufs; i++)
			free(u.bufs[i].data);
	pool_give(s, u.granted * ps);
	if (u.etags)
		for (unsigned int i = 0; i < nparts; i++)
			free(u.etags[i]);
	free(u.bufs);
	free(u.ready);
	free(u.etags);
	free(u.crcs);
	free(threads);
	free(upload_id);
	return rc;
}
