/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Staging writes: an object that comes before the manifest, written by a
 * worker to the fd its destination's stage_create gave (the fs backend:
 * lib/storage/fs_stage.c), hashed on the way unless the restore checks sizes only.
 * The reader keeps what it reports until the manifest names the object.
 * Small objects go to the spool instead (lib/core/spool.c), a buffer of
 * them at a time.
 */
#include "pipeline.h"
#include "digest.h"
#include "spool.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

/* The reader keeps one result per early object until the manifest comes: the error only on failure. */
static void stage_done(trs__stage_result *res, int code, const trs_error *err)
{
	res->code = code;
	if (code < 0 && (res->err = malloc(sizeof(*res->err))))
		*res->err = *err;
}

/*
 * Write an early object to its staged file: from memory (small), or from
 * its chunk channel while the reader goes on decompressing (large). The
 * channel is always read to its end, so the reader never waits on us.
 */
void trs__stage_write(trs__job *j)
{
	trs__stage_result *res = j->stage_result;
	struct { int code; trs_error err; } st = {0, TRS_ERROR_INIT};
	int hash = j->run->ctx->verify != TRS_VERIFY_SIZE; /* size only: publish takes the manifest's MD5 */
	unsigned char digest[16];
	int fd = trs__storage_stage_create(j->stage, j->stage_index, &st.err);
	if (fd < 0)
		st.code = fd;
	if (!j->streamed) {
		if (fd >= 0 && trs__write_all(fd, j->data, (size_t)j->len) < 0)
			st.code = trs__error_errno(&st.err, errno, "cannot write a staged object");
		if (fd >= 0 && close(fd) < 0 && !st.code)
			st.code = trs__error_errno(&st.err, errno, "cannot write a staged object");
		if (!st.code && hash) {
			EVP_Digest(j->data, (size_t)j->len, digest, NULL, trs__md5_md(), NULL);
			trs__hex(digest, 16, res->md5);
		}
		stage_done(res, st.code, &st.err);
		return;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, trs__md5_md(), NULL))
		st.code = trs__error_set(&st.err, TRS_ENOMEM, "out of memory");
	/* Written from the chunks themselves: no copy on the way. */
	const unsigned char *buf;
	trs_error err = TRS_ERROR_INIT;
	int64_t n;
	while ((n = trs__channel_peek(j, &buf, &err)) > 0) {
		if (!st.code && hash)
			EVP_DigestUpdate(md, buf, (size_t)n);
		if (!st.code && trs__write_all(fd, buf, (size_t)n) < 0)
			st.code = trs__error_errno(&st.err, errno, "cannot write a staged object");
		trs__channel_advance(j, (size_t)n); /* after a failure: drain */
	}
	if (n < 0 && !st.code) {
		st.code = (int)n;
		st.err = err;
	}
	if (fd >= 0 && close(fd) < 0 && !st.code)
		st.code = trs__error_errno(&st.err, errno, "cannot write a staged object");
	if (!st.code && hash) {
		EVP_DigestFinal_ex(md, digest, NULL);
		trs__hex(digest, 16, res->md5);
	}
	EVP_MD_CTX_free(md);
	stage_done(res, st.code, &st.err);
}

void trs__spool_write_job(trs__job *j)
{
	trs__spool_write(j->spool, j->data, (size_t)j->len, j->stage_index);
}
