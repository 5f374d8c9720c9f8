/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: the Target Region Service library.
 *
 * Restores .tar.zst archives made by the source side of the S3 Cross-Region
 * Compressor into their destination buckets. Include this one header.
 *
 *     trs_ctx *ctx; trs_storage *dest; trs_report *report;
 *     trs_error err = TRS_ERROR_INIT;
 *     trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
 *     src.path = "archive.tar.zst";
 *     trs_ctx_new(&ctx, NULL, &err);
 *     trs_storage_fs_new(&dest, ctx, "restored", &err);
 *     trs_process(ctx, dest, &src, NULL, &report, &err);
 */
#ifndef TRS_H
#define TRS_H

#include "trs/common.h"
#include "trs/context.h"
#include "trs/manifest.h"
#include "trs/archive.h"
#include "trs/storage.h"
#include "trs/s3.h"
#include "trs/object.h"
#include "trs/process.h"
#include "trs/pack.h"
#include "trs/fetch.h"
#include "trs/metrics.h"
#include "trs/event.h"
#include "trs/queue.h"
#include "trs/serve.h"

#endif
