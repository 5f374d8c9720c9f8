/* SPDX-License-Identifier: Apache-2.0 */
/* The built-in queue backends that trs_queue_open (lib/queue/queue.c) opens from a URL. */
#ifndef TRS_QUEUE_OPEN_H
#define TRS_QUEUE_OPEN_H

#include "internal.h"

/* The dir queue of a URL "dir://PATH[?max_receives=N[&dead_letter=DIR]]" (lib/queue/queue_dir.c). */
int trs__queue_dir_open_url(trs_queue **out, const trs_ctx *ctx, const char *url, trs_error *err);

#endif
