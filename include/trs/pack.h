/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: writing archives in the source side's exact format (docs/formats.md):
 * a PAX tar of objects/<relative_key> members and manifest.json (last, as
 * the source side writes it, or first on request), compressed with zstd.
 * For tests, demos and migrations.
 */
#ifndef TRS_PACK_H
#define TRS_PACK_H

#include "common.h"
#include "context.h"
#include "manifest.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRS_PACK_OPTIONS_VERSION 2

typedef struct trs_pack_options {
	unsigned int version;
	const char *input_dir;            /* every regular file under it becomes an object */
	const char *output_path;          /* the .tar.zst to write (replaced atomically); with output_fd, only
	                                   * the name messages use */
	const trs_manifest_target *targets;
	size_t ntargets;
	const char *source_bucket;        /* manifest source_bucket; default "local" */
	const char *source_prefix;        /* manifest source_prefix; default "" */
	int level;                        /* zstd level 1..22; default 3 */
	int manifest_first;               /* write manifest.json before the objects */
	unsigned int threads;             /* zstd worker threads; default: the context's workers */
	/* Version 2: */
	int output_fd;                    /* -1 (the default): write output_path. Else write the archive to this
	                                   * descriptor as it is made (a pipe, stdout); it is neither synced nor
	                                   * closed, and on failure what was written stays written */
} trs_pack_options;

#define TRS_PACK_OPTIONS_INIT {TRS_PACK_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1}

/**
 * Pack `input_dir` into `output_path` (or `output_fd`). *objects (when
 * non-NULL) gets the object count. TRS_EINVAL for options without an input
 * or an output, TRS_EIO when a file cannot be read or the output written.
 */
TRS_EXTERN(int) trs_pack(const trs_ctx *ctx, const trs_pack_options *options, uint64_t *objects, trs_error *err);

#ifdef __cplusplus
}
#endif
#endif
