/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small driver of the public S3 API for tests/integration/test_s3_backend.py:
 * one storage operation per run, through trs_storage_s3_new and the
 * trs_upload / trs_storage_* calls only (it links the shared library).
 *
 *   s3_put_driver [--endpoint URL] [--region R] [--threshold N] [--part-size N]
 *                 [--attempts N] COMMAND ARGS [OPTIONS]
 *   put BUCKET KEY FILE [--tag K=V]... [--meta K=V]... [--class C] [--kms ID] [--md5 HEX]
 *   put-failing BUCKET KEY SIZE FAIL_AT     body whose read() fails at byte FAIL_AT
 *   get BUCKET KEY OUT [--offset N] [--length N]
 *   head BUCKET KEY                         prints size=, etag=, class=, kms=, tag:K=V, meta:K=V
 *   copy SRC_BUCKET SRC_KEY BUCKET KEY [put options]
 *   delete BUCKET KEY
 *
 * Exit 0 on success; otherwise the trs_error on stderr as
 * "error code=.. http=.. aws=.. message=.." and exit 1 (2: bad usage).
 */
#include <trs.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KV 32

typedef struct put_opts {
	trs_kv tags[MAX_KV];
	size_t ntags;
	trs_kv meta[MAX_KV];
	size_t nmeta;
	const char *storage_class, *kms, *md5;
} put_opts;

static int usage(void)
{
	fprintf(stderr, "usage: s3_put_driver [--endpoint URL] [--region R] [--threshold N] [--part-size N] "
			"COMMAND ARGS (see the source)\n");
	return 2;
}

static int fail(const trs_error *err)
{
	fprintf(stderr, "error code=%s http=%d aws=%s retryable=%d message=%s\n", trs_strerror(err->code),
		err->http_status, err->aws_code, err->retryable, err->message);
	return 1;
}

static int split_kv(char *arg, trs_kv *kv)
{
	char *eq = strchr(arg, '=');
	if (!eq)
		return -1;
	*eq = '\0';
	kv->key = arg;
	kv->value = eq + 1;
	return 0;
}

/* Parse put options from argv[i..]; returns -1 on a bad option. */
static int parse_put_opts(int argc, char **argv, int i, put_opts *po)
{
	for (; i < argc; i++) {
		if (i + 1 >= argc)
			return -1;
		if (strcmp(argv[i], "--tag") == 0 && po->ntags < MAX_KV) {
			if (split_kv(argv[++i], &po->tags[po->ntags++]) < 0)
				return -1;
		} else if (strcmp(argv[i], "--meta") == 0 && po->nmeta < MAX_KV) {
			if (split_kv(argv[++i], &po->meta[po->nmeta++]) < 0)
				return -1;
		} else if (strcmp(argv[i], "--class") == 0) {
			po->storage_class = argv[++i];
		} else if (strcmp(argv[i], "--kms") == 0) {
			po->kms = argv[++i];
		} else if (strcmp(argv[i], "--md5") == 0) {
			po->md5 = argv[++i];
		} else {
			return -1;
		}
	}
	return 0;
}

static void fill_request(trs_put_request *req, const char *bucket, const char *key, const put_opts *po)
{
	req->bucket = bucket;
	req->key = key;
	req->tags = po->tags;
	req->ntags = po->ntags;
	req->metadata = po->meta;
	req->nmetadata = po->nmeta;
	req->storage_class = po->storage_class;
	req->kms_key_id = po->kms;
	req->content_md5_hex = po->md5;
}

/* A file body read in pieces, as an archive member would be. */
typedef struct file_body {
	trs_body body;
	FILE *f;
} file_body;

static int64_t file_read(void *self, void *buf, size_t len, trs_error *err)
{
	file_body *fb = self;
	if (len > 65536)
		len = 65536;
	size_t n = fread(buf, 1, len, fb->f);
	if (n == 0 && ferror(fb->f)) {
		err->code = TRS_EIO;
		snprintf(err->message, sizeof(err->message), "reading the input file failed");
		return TRS_EIO;
	}
	return (int64_t)n;
}

/* A body of deterministic bytes whose read() fails at fail_at, like a failed MD5 check. */
typedef struct failing_body {
	trs_body body;
	uint64_t pos, fail_at;
} failing_body;

static int64_t failing_read(void *self, void *buf, size_t len, trs_error *err)
{
	failing_body *fb = self;
	if (fb->pos >= fb->fail_at) {
		err->code = TRS_EINTEGRITY;
		snprintf(err->message, sizeof(err->message), "driver: injected body failure at byte %llu",
			 (unsigned long long)fb->pos);
		return TRS_EINTEGRITY;
	}
	uint64_t left = fb->body.length - fb->pos;
	if (left == 0)
		return 0;
	if (len > left)
		len = (size_t)left;
	if (len > fb->fail_at - fb->pos)
		len = (size_t)(fb->fail_at - fb->pos);
	memset(buf, 'z', len);
	fb->pos += len;
	return (int64_t)len;
}

static int write_sink(void *ud, const void *data, size_t len, trs_error *err)
{
	if (fwrite(data, 1, len, ud) != len) {
		err->code = TRS_EIO;
		snprintf(err->message, sizeof(err->message), "writing the output file failed");
		return TRS_EIO;
	}
	return 0;
}

int main(int argc, char **argv)
{
	trs_s3_options o = TRS_S3_OPTIONS_INIT;
	int i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--endpoint") == 0)
			o.endpoint_url = argv[i + 1];
		else if (strcmp(argv[i], "--region") == 0)
			o.region = argv[i + 1];
		else if (strcmp(argv[i], "--threshold") == 0)
			o.multipart_threshold = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--part-size") == 0)
			o.part_size = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--attempts") == 0)
			o.max_attempts = (unsigned int)strtoul(argv[i + 1], NULL, 10);
		else
			return usage();
	}
	if (i >= argc)
		return usage();
	const char *cmd = argv[i++];
	trs_error err = TRS_ERROR_INIT;
	trs_ctx *ctx = NULL;
	trs_storage *s = NULL;
	if (trs_ctx_new(&ctx, NULL, &err) < 0 || trs_storage_s3_new(&s, ctx, &o, &err) < 0) {
		trs_ctx_free(ctx);
		return fail(&err);
	}
	int rc = 0, status = 0;
	put_opts po;
	memset(&po, 0, sizeof(po));
	trs_put_request req = TRS_PUT_REQUEST_INIT;

	if (strcmp(cmd, "put") == 0 && argc - i >= 3) {
		if (parse_put_opts(argc, argv, i + 3, &po) < 0) {
			status = usage();
			goto out;
		}
		FILE *f = fopen(argv[i + 2], "rb");
		if (!f) {
			perror(argv[i + 2]);
			status = 2;
			goto out;
		}
		fseek(f, 0, SEEK_END);
		file_body fb = {{file_read, NULL, (uint64_t)ftell(f)}, f};
		fseek(f, 0, SEEK_SET);
		fb.body.self = &fb;
		fill_request(&req, argv[i], argv[i + 1], &po);
		req.size = fb.body.length;
		rc = trs_upload(s, &req, &fb.body, &err);
		fclose(f);
	} else if (strcmp(cmd, "put-failing") == 0 && argc - i == 4) {
		failing_body fb = {{failing_read, NULL, strtoull(argv[i + 2], NULL, 10)}, 0,
				   strtoull(argv[i + 3], NULL, 10)};
		fb.body.self = &fb;
		fill_request(&req, argv[i], argv[i + 1], &po);
		req.size = fb.body.length;
		rc = trs_upload(s, &req, &fb.body, &err);
	} else if (strcmp(cmd, "get") == 0 && argc - i >= 3) {
		uint64_t offset = 0, length = UINT64_MAX;
		for (int j = i + 3; j + 1 < argc; j += 2) {
			if (strcmp(argv[j], "--offset") == 0)
				offset = strtoull(argv[j + 1], NULL, 10);
			else if (strcmp(argv[j], "--length") == 0)
				length = strtoull(argv[j + 1], NULL, 10);
		}
		FILE *f = fopen(argv[i + 2], "wb");
		if (!f) {
			perror(argv[i + 2]);
			status = 2;
			goto out;
		}
		rc = trs_storage_get(s, argv[i], argv[i + 1], offset, length, write_sink, f, &err);
		if (fclose(f) != 0 && rc == 0)
			rc = TRS_EIO;
	} else if (strcmp(cmd, "head") == 0 && argc - i == 2) {
		trs_object_info info;
		rc = trs_storage_head(s, argv[i], argv[i + 1], &info, &err);
		if (rc == 0) {
			printf("size=%llu\netag=%s\nclass=%s\nkms=%s\n", (unsigned long long)info.size, info.etag,
			       info.storage_class, info.kms_key_id ? info.kms_key_id : "");
			for (size_t t = 0; t < info.ntags; t++)
				printf("tag:%s=%s\n", info.tags[t].key, info.tags[t].value);
			for (size_t m = 0; m < info.nmetadata; m++)
				printf("meta:%s=%s\n", info.metadata[m].key, info.metadata[m].value);
			trs_object_info_clear(&info);
		}
	} else if (strcmp(cmd, "copy") == 0 && argc - i >= 4) {
		if (parse_put_opts(argc, argv, i + 4, &po) < 0) {
			status = usage();
			goto out;
		}
		fill_request(&req, argv[i + 2], argv[i + 3], &po);
		rc = trs_storage_copy(s, argv[i], argv[i + 1], &req, &err);
	} else if (strcmp(cmd, "delete") == 0 && argc - i == 2) {
		rc = trs_storage_delete(s, argv[i], argv[i + 1], &err);
	} else {
		status = usage();
	}
	if (rc < 0)
		status = fail(&err);
out:
	trs_storage_free(s);
	trs_ctx_free(ctx);
	return status;
}
