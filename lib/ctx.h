/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs private: the context's inside (lib/context.c), its log
 * (lib/common.c) and the flags that stop work (cancel, stop, interrupt).
 */
#ifndef TRS_CTX_H
#define TRS_CTX_H

#include "util.h"

struct trs_ctx {
	char *region;
	trs_log_fn log;
	trs_log_level log_level;
	void *log_userdata;
	trs_progress_fn progress;
	void *progress_userdata;
	const volatile int *cancel;
	uint64_t max_manifest_bytes;
	uint64_t max_manifest_objects;
	uint64_t max_decompressed_bytes;
	uint64_t max_ratio;
	unsigned int max_window_log;
	unsigned int workers;
	uint64_t max_memory;
	unsigned int max_inflight;
	char *profile;   /* NULL: AWS_PROFILE (lib/aws/aws_config.c) */
	char *ca_bundle; /* NULL: the system's CAs */
	trs_verify verify;
};

/* A context with every default, for calls made with ctx == NULL. */
const trs_ctx *trs__ctx_default(void);
#define TRS_CTX(c) ((c) ? (const trs_ctx *)(c) : trs__ctx_default())

/* Log with structured fields: trs__log(ctx, TRS_LOG_WARN, "msg", "key", val, ..., NULL). */
void trs__log(const trs_ctx *ctx, trs_log_level level, const char *message, ...);
bool trs__log_enabled(const trs_ctx *ctx, trs_log_level level);

/* A flag of the public API (cancel, stop, interrupt: `const volatile int *`,
 * so that a signal handler may raise it) read by another thread: an atomic
 * load, never a plain read of the volatile. */
static inline bool trs__flag_raised(const volatile int *flag)
{
	return flag && __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
}

static inline bool trs__canceled(const trs_ctx *ctx)
{
	return ctx && trs__flag_raised(ctx->cancel);
}

/* The service's region (lib/region.c): shaped like an AWS region name (lower-case words, a number),
 * the known region nearest to `r`, and the check the context makes: 0, or TRS_EINVAL with a message
 * naming where the region came from (`from`) and the nearest real one. "" passes (no region yet). */
bool trs__region_shaped(const char *r);
const char *trs__region_nearest(const char *r);
int trs__region_check(const char *region, const char *from, trs_error *err);

#endif
