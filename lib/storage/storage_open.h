/* SPDX-License-Identifier: Apache-2.0 */
/* The built-in storage backends that trs_storage_open (lib/storage/storage.c) opens from a URL. */
#ifndef TRS_STORAGE_OPEN_H
#define TRS_STORAGE_OPEN_H

#include "internal.h"

/* The s3 backend's constructor (lib/storage/storage_s3.c); url is "s3" or "s3://...". */
int trs__storage_s3_open(trs_storage **out, trs_ctx *ctx, const char *url, trs_error *err);

#endif
