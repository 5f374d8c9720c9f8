/* SPDX-License-Identifier: Apache-2.0 */
/*
 * S3 multipart copy, for objects over CopyObject's 5 GiB: UploadPartCopy of
 * byte ranges of the source by a few threads, then CompleteMultipartUpload
 * (under the guard's precondition). Any failure aborts the upload. The
 * upload's create, complete and abort are shared with the multipart upload
 * (s3_multipart.c).
 */
#include "storage_s3.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct copy_job {
	trs__s3 *s;
	const trs_put_request *req;
	const char *upload_id;
	const char *source;      /* x-amz-copy-source */
	uint64_t size, part_size;
	unsigned int nparts;
	pthread_mutex_t lock;
	unsigned int next;       /* next part number to take */
	bool failed;
	int first_rc;
	trs_error first_err;
	char **etags;
} copy_job;

static int copy_part(copy_job *j, unsigned int n, char **etag, trs_error *err)
{
	uint64_t first = (uint64_t)(n - 1) * j->part_size;
	uint64_t last = first + j->part_size - 1;
	if (last >= j->size)
		last = j->size - 1;
	char range[64];
	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)first, (unsigned long long)last);
	trs_kv h[2] = {{"x-amz-copy-source", j->source}, {"x-amz-copy-source-range", range}};
	trs__buf q = TRS_BUF_INIT;
	int rc = trs__s3_mpu_query(&q, j->upload_id, n, err);
	if (rc == 0) {
		trs__s3_call c = {0};
		c.op = "UploadPartCopy";
		c.method = "PUT";
		c.bucket = j->req->bucket;
		c.key = j->req->key;
		c.query = q.data;
		c.headers = h;
		c.nheaders = 2;
		c.error_in_200 = true;
		c.expect = TRS_AWS_XML_COPY_PART;
		trs__http_response resp;
		rc = trs__s3_request(j->s, &c, &resp, err);
		if (rc == 0) {
			trs__aws_xml x;
			rc = trs__aws_xml_parse(resp.body.data, resp.body.len, &x, err);
			if (rc == 0 && (!x.etag || !*x.etag))
				rc = trs__error_set(err, TRS_EHTTP, "S3 UploadPartCopy %u of s3://%s/%s answered without "
						    "an ETag", n, j->req->bucket, TRS__SHORT(j->req->key));
			if (rc == 0) {
				*etag = x.etag;
				x.etag = NULL;
			}
			trs__aws_xml_free(&x);
		}
		trs__http_response_free(&resp);
	}
	trs__buf_free(&q);
	return rc;
}

static void *copy_worker(void *arg)
{
	copy_job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		unsigned int n = j->failed || j->next > j->nparts ? 0 : j->next++;
		pthread_mutex_unlock(&j->lock);
		if (!n)
			return NULL;
		char *etag = NULL;
		trs_error err = TRS_ERROR_INIT;
		int rc = trs__canceled(j->s->ctx) ? trs__error_set(&err, TRS_ECANCELED, "canceled")
						  : copy_part(j, n, &etag, &err);
		pthread_mutex_lock(&j->lock);
		if (rc == 0) {
			j->etags[n - 1] = etag;
		} else if (!j->failed) {
			j->failed = true;
			j->first_rc = rc;
			j->first_err = err;
		}
		pthread_mutex_unlock(&j->lock);
	}
}

int trs__s3_multipart_copy(trs__s3 *s, const char *src_bucket, const char *src_key, uint64_t size,
			   const trs_put_request *req, trs__s3_guard *guard, trs_error *err)
{
	if (size > TRS_S3_MAX_OBJECT)
		return trs__error_set(err, TRS_ELIMIT, "s3://%s/%s is over S3's 5 TiB object limit", src_bucket,
				      TRS__SHORT(src_key));
	copy_job j;
	memset(&j, 0, sizeof(j));
	j.s = s;
	j.req = req;
	j.size = size;
	/* Copies move no bytes through us: use big parts, fewer requests. */
	j.part_size = trs__s3_part_size(size, s->part_size > (512ull << 20) ? s->part_size : (512ull << 20));
	j.nparts = (unsigned int)((size + j.part_size - 1) / j.part_size);
	j.next = 1;
	trs__buf source = TRS_BUF_INIT;
	char *upload_id = NULL;
	unsigned int nthreads = 0, want = s->parts_in_flight < 4 ? 4 : s->parts_in_flight;
	pthread_t threads[16];
	if (want > 16)
		want = 16;
	j.etags = trs__calloc(j.nparts, sizeof(*j.etags), err);
	int rc = j.etags ? trs__s3_copy_source(&source, src_bucket, src_key, err) : TRS_ENOMEM;
	j.source = source.data;
	if (rc == 0)
		rc = trs__s3_mpu_create(s, req, false, &upload_id, err);
	if (rc < 0)
		goto out;
	j.upload_id = upload_id;
	pthread_mutex_init(&j.lock, NULL);
	for (; nthreads < want; nthreads++)
		if (pthread_create(&threads[nthreads], NULL, copy_worker, &j) != 0)
			break;
	if (nthreads == 0)
		copy_worker(&j); /* no threads to be had: copy on this one */
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&j.lock);
	if (j.failed) {
		rc = j.first_rc;
		if (err)
			*err = j.first_err;
	} else {
		rc = trs__s3_mpu_complete(s, req, upload_id, j.etags, NULL, j.nparts, guard, err);
	}
	if (rc < 0)
		trs__s3_mpu_abort(s, req, upload_id);
out:
	if (j.etags)
		for (unsigned int i = 0; i < j.nparts; i++)
			free(j.etags[i]);
	free(j.etags);
	free(upload_id);
	trs__buf_free(&source);
	return rc;
}
