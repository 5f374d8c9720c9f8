/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs private declarations, by concept; every library file includes this
 * umbrella (or only the header it needs):
 *
 *   util.h         errors, allocation, buffers, hex, time, the cancellable sleep
 *   error_text.h   names shortened for messages, cuts on UTF-8 boundaries
 *   ctx.h          the context's inside, logging, cancel/stop flags
 *   backend.h      storage and queue backends beyond their vtables: versions,
 *                  capabilities, vouched bodies, staging (retry statistics
 *                  are public: trs_storage_retry_stats in trs/storage.h)
 *
 * Names with a double underscore (trs__) are internal and never exported.
 */
#ifndef TRS_INTERNAL_H
#define TRS_INTERNAL_H

#include "util.h"
#include "error_text.h"
#include "ctx.h"
#include "backend.h"

#endif
