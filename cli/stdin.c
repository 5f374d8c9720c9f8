/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `-`: the archive comes from stdin (`aws s3 cp s3://b/k - | trs process -`).
 *
 * A pipe is read once. trs process needs no more: the library keeps what
 * comes before the manifest. trs inspect reads an archive whose manifest
 * comes last twice (once to find the manifest, once to list the members), so
 * for it what stdin gave is kept in an unlinked temporary file as it is read,
 * and a rewind reads that file again before going on with stdin. The file
 * holds compressed bytes only, at most the archive's size.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t failed(trs_error *err, int code, const char *what)
{
	if (err) {
		err->code = code;
		snprintf(err->message, sizeof(err->message), "%s", what);
	}
	return code;
}

static int64_t failed_errno(trs_error *err, const char *doing)
{
	if (err) {
		err->code = TRS_EIO;
		snprintf(err->message, sizeof(err->message), "%s: %s", doing, strerror(errno));
	}
	return TRS_EIO;
}

/* Write all of buf to the spool at `offset`. */
static bool spool_write(int fd, const void *buf, size_t len, uint64_t offset)
{
	const char *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return true;
}

static int64_t stdin_read(void *userdata, void *buf, size_t len, trs_error *err)
{
	cli_stdin *in = userdata;
	if (in->pos < in->spooled) {
		/* After a rewind: what stdin gave already, from the spool. */
		size_t want = in->spooled - in->pos < len ? (size_t)(in->spooled - in->pos) : len;
		ssize_t n;
		do
			n = pread(in->spool_fd, buf, want, (off_t)in->pos);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return n < 0 ? failed_errno(err, "reading back the archive from stdin")
				     : failed(err, TRS_EIO, "reading back the archive from stdin: the temporary file is short");
		in->pos += (uint64_t)n;
		return n;
	}
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, len);
		if (n >= 0) {
			if (n > 0 && in->spool_fd >= 0) {
				if (!spool_write(in->spool_fd, buf, (size_t)n, in->spooled))
					return failed_errno(err, "keeping the archive from stdin in a temporary file");
				in->spooled += (uint64_t)n;
			}
			in->pos += (uint64_t)n;
			return n;
		}
		if (errno == EINTR && in->cancel && __atomic_load_n(in->cancel, __ATOMIC_ACQUIRE))
			return failed(err, TRS_ECANCELED, "canceled while reading the archive from stdin");
		if (errno != EINTR)
			return failed_errno(err, "reading the archive from stdin");
	}
}

static int stdin_rewind(void *userdata, trs_error *err)
{
	(void)err;
	cli_stdin *in = userdata;
	in->pos = 0;
	return 0;
}

int cli_stdin_source(cli_stdin *in, trs_archive_source *src, bool rewindable, const volatile int *cancel,
		     const char *cmd, trs_error *err)
{
	memset(in, 0, sizeof(*in));
	in->spool_fd = -1;
	in->cancel = cancel;
	if (isatty(STDIN_FILENO)) {
		err->code = TRS_EINVAL;
		snprintf(err->message, sizeof(err->message),
			 "stdin is a terminal: pipe the archive in (aws s3 cp s3://bucket/key - | trs %s -)", cmd);
		return TRS_EINVAL;
	}
	if (rewindable) {
		const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		char path[4096];
		snprintf(path, sizeof(path), "%s/trs-stdin-XXXXXX", dir);
		in->spool_fd = mkstemp(path);
		if (in->spool_fd < 0)
			return (int)failed_errno(err, "cannot create a temporary file for the archive from stdin");
		unlink(path); /* gone with the descriptor, whatever happens */
		src->rewind = stdin_rewind;
	}
	src->name = "(stdin)";
	src->read = stdin_read;
	src->userdata = in;
	return 0;
}

void cli_stdin_close(cli_stdin *in)
{
	if (in->spool_fd >= 0)
		close(in->spool_fd);
	in->spool_fd = -1;
}
