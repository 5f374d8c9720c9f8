/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: the context. Settings shared by every operation of one user of
 * the library: region, logging, limits, concurrency, cancellation.
 *
 * There is no global state: two contexts can live in one process, and a
 * context may be used from several threads once configured.
 */
#ifndef TRS_CONTEXT_H
#define TRS_CONTEXT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trs_ctx trs_ctx;

/**
 * Progress of one archive, reported from the thread that reads it. A report
 * may carry only some figures (0 for the others): the archive reader knows
 * the bytes, the restore the objects. Keep the largest value of each.
 */
typedef struct trs_progress {
	uint64_t compressed_read;    /* compressed bytes consumed so far */
	uint64_t compressed_total;   /* 0 when unknown */
	uint64_t decompressed;       /* tar bytes produced so far */
	uint64_t objects_done;       /* objects finished (written, failed or skipped) */
	uint64_t objects_total;      /* manifest entries, 0 until the manifest is read */
	int pass;                    /* 1: looking for the manifest, 2: restoring */
	/* Appended later: a callback built against the shorter struct reads only the fields above. */
	uint64_t bytes_written;      /* object bytes written to their targets (each target counts), as
	                              * trs_report's; what advances while the objects of a manifest-last
	                              * archive are written after its last byte was decompressed */
} trs_progress;

typedef void (*trs_progress_fn)(const trs_progress *progress, void *userdata);

#define TRS_CTX_OPTIONS_VERSION 3

/** How a restore checks an object's bytes against its manifest entry. */
typedef enum trs_verify {
	TRS_VERIFY_MD5 = 0,  /* size and MD5 (the etag), here or by a server that checks Content-MD5 */
	TRS_VERIFY_SIZE = 1  /* size only, plus zstd's frame checksum where the archive has one: for
	                        trusted local restores; a backend records the manifest's MD5 as given */
} trs_verify;

/**
 * Context settings. Start from TRS_CTX_OPTIONS_INIT: every zero field means
 * "the default", so a program compiled against an older header keeps working.
 */
typedef struct trs_ctx_options {
	unsigned int version;
	const char *region;            /* this service's region; NULL: AWS_REGION, AWS_DEFAULT_REGION, then the
	                                * profile's "region" in ~/.aws/config */
	trs_log_fn log;                /* NULL: silent */
	trs_log_level log_level;       /* records above this level are not built */
	void *log_userdata;
	trs_progress_fn progress;      /* NULL: none */
	void *progress_userdata;
	const volatile int *cancel;    /* when *cancel becomes nonzero, long operations stop with TRS_ECANCELED;
	                                * set it from a signal handler or any thread with an atomic store, e.g.
	                                * __atomic_store_n(&flag, 1, __ATOMIC_SEQ_CST) (it is read with atomic loads) */
	uint64_t max_manifest_bytes;   /* default 1 GiB */
	uint64_t max_manifest_objects; /* default 50 million */
	uint64_t max_decompressed_bytes; /* bomb guard on the tar stream; default 0 = 16 TiB */
	uint64_t max_ratio;            /* bomb guard: decompressed/compressed; default 0 = none beyond size */
	unsigned int max_window_log;   /* zstd window; default 31 (2 GiB) */
	unsigned int workers;          /* CPU-side parallelism (local writes); default: cpu count */
	uint64_t max_memory;           /* bytes of object data buffered in flight; default 256 MiB */
	unsigned int max_inflight;     /* concurrent transfers to a remote storage; default 32 */
	/* Version 2: */
	const char *profile;           /* AWS shared-file profile; NULL: AWS_PROFILE, else "default". When set,
	                                * it is used even if AWS_ACCESS_KEY_ID is set (as the AWS CLI's --profile) */
	const char *ca_bundle;         /* PEM file of the CAs trusted for TLS; NULL: AWS_CA_BUNDLE, else the system's */
	/* Version 3: */
	trs_verify verify;             /* default TRS_VERIFY_MD5 */
} trs_ctx_options;

#define TRS_CTX_OPTIONS_INIT {TRS_CTX_OPTIONS_VERSION, 0, 0, TRS_LOG_INFO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, TRS_VERIFY_MD5}

/**
 * Create a context. `options` may be NULL for all defaults. Strings are
 * copied. Returns 0, or TRS_EINVAL (bad option) / TRS_ENOMEM.
 */
TRS_EXTERN(int) trs_ctx_new(trs_ctx **out, const trs_ctx_options *options, trs_error *err);

/** The region in effect ("" when none could be found). */
TRS_EXTERN(const char *) trs_ctx_region(const trs_ctx *ctx);

/** Free a context. NULL is ignored. Objects made with it must be freed first. */
TRS_EXTERN(void) trs_ctx_free(trs_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
