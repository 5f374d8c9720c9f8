/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: queues. Where the notifications of new archives come from.
 *
 * A trs_queue is a backend behind a small vtable (trs/sys/queue.h), like
 * trs_storage. Built in:
 *
 * - "sqs": an Amazon SQS queue (AWS JSON 1.0 protocol, SigV4), opened from
 *   its URL ("https://sqs.eu-west-1.amazonaws.com/123456789012/name", or
 *   "http://127.0.0.1:PORT/123456789012/name" for a local endpoint).
 * - "dir": a spool directory ("dir://PATH"): each PATH/<id>.json file is one
 *   message with the same body SQS would carry. A receive claims a file by
 *   renaming it atomically into PATH/.inflight/ (so several consumers can
 *   share the directory); its visibility deadline is the file's mtime.
 *   Delete removes it; change_visibility moves the deadline; a file whose
 *   deadline passed is received again (its receive count goes up), or, with
 *   a redrive policy ("dir://PATH?max_receives=N[&dead_letter=DIR]", SQS's
 *   maxReceiveCount), moved to the dead-letter directory (PATH/.dead unless
 *   DIR is given) once it was received N times.
 *
 * Messages follow SQS's at-least-once contract: a message received and not
 * deleted before its visibility timeout ends is delivered again.
 */
#ifndef TRS_QUEUE_H
#define TRS_QUEUE_H

#include "common.h"
#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trs_queue trs_queue;

/** One received message. Owned by the array trs_queue_receive returns. */
typedef struct trs_queue_message {
	char *id;              /* the queue's message id */
	char *receipt_handle;  /* what delete and change_visibility need; never log it in full */
	char *body;            /* NUL-terminated; body_len bytes */
	size_t body_len;
	unsigned int receive_count; /* ApproximateReceiveCount: 1 on the first delivery */
} trs_queue_message;

#define TRS_QUEUE_RECEIVE_OPTIONS_VERSION 1
#define TRS_QUEUE_MAX_MESSAGES 10   /* SQS's limit per receive */
#define TRS_QUEUE_MAX_WAIT 20       /* SQS's longest long poll, seconds */
#define TRS_QUEUE_MAX_VISIBILITY 43200 /* SQS's longest visibility timeout, seconds (12 h) */

typedef struct trs_queue_receive_options {
	unsigned int version;
	unsigned int max_messages;       /* 1..10; 0: 1 */
	unsigned int wait_seconds;       /* long poll, 0..20 */
	unsigned int visibility_timeout; /* seconds the received messages stay invisible; 0: the queue's */
	/* When *interrupt becomes nonzero (another thread, a signal handler), a
	 * receive still waiting returns at once with no messages. NULL: none. */
	const volatile int *interrupt;
} trs_queue_receive_options;

#define TRS_QUEUE_RECEIVE_OPTIONS_INIT {TRS_QUEUE_RECEIVE_OPTIONS_VERSION, 1, TRS_QUEUE_MAX_WAIT, 0, 0}

/**
 * Open a queue by URL: "dir://PATH" for a spool directory, with its
 * redrive policy as parameters ("dir://PATH?max_receives=5",
 * "&dead_letter=DIR": percent-decoded, DIR on PATH's filesystem; PATH
 * cannot hold a '?'), an http(s) SQS queue URL for SQS (endpoint:
 * AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, the URL's own host when it is not
 * an AWS host, else the regional endpoint; region: the context's, the
 * environment's, or the one in the URL's host). Returns 0, TRS_EINVAL for a
 * URL of no known kind or a parameter the dir queue does not know.
 */
TRS_EXTERN(int) trs_queue_open(trs_queue **out, const trs_ctx *ctx, const char *url, trs_error *err);

/** The "dir" backend over PATH (created when missing, with PATH/.inflight), without a redrive
 * policy: trs_queue_open("dir://PATH?max_receives=N") gives one. */
TRS_EXTERN(int) trs_queue_dir_new(trs_queue **out, const trs_ctx *ctx, const char *path, trs_error *err);

#define TRS_SQS_OPTIONS_VERSION 1

typedef struct trs_sqs_options {
	unsigned int version;
	const char *queue_url;     /* required */
	const char *endpoint_url;  /* NULL: AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, the URL's host, AWS */
	const char *region;        /* NULL: the context's, then the environment's, then the URL's host */
	unsigned int max_attempts; /* tries per request; default 5 */
	int no_verify_ssl;         /* skip TLS verification (test endpoints only; logged) */
} trs_sqs_options;

#define TRS_SQS_OPTIONS_INIT {TRS_SQS_OPTIONS_VERSION, 0, 0, 0, 0, 0}

/** The "sqs" backend with explicit settings (strings are copied). */
TRS_EXTERN(int) trs_queue_sqs_new(trs_queue **out, const trs_ctx *ctx, const trs_sqs_options *options, trs_error *err);

/**
 * Receive up to options->max_messages messages, waiting up to
 * options->wait_seconds for the first. *out is a new array of *count
 * messages (possibly 0 and NULL); free it with trs_queue_messages_free.
 * Returns 0, or a negative code (TRS_ENET, TRS_EHTTP, TRS_EAUTH, ...).
 */
TRS_EXTERN(int) trs_queue_receive(trs_queue *queue, const trs_queue_receive_options *options,
				  trs_queue_message **out, size_t *count, trs_error *err);

TRS_EXTERN(void) trs_queue_messages_free(trs_queue_message *messages, size_t count);

/**
 * Delete `count` messages by receipt handle. codes (count entries, may be
 * NULL) receives 0 or a negative code per entry. Returns 0 when all were
 * deleted, TRS_EPARTIAL when some were not (err names the first failure),
 * or another negative code when the call itself failed (none deleted).
 */
TRS_EXTERN(int) trs_queue_delete_batch(trs_queue *queue, const char *const *receipt_handles, size_t count,
				       int *codes, trs_error *err);

/** Keep a received message invisible for `seconds` from now (0: visible again at once). */
TRS_EXTERN(int) trs_queue_change_visibility(trs_queue *queue, const char *receipt_handle, unsigned int seconds,
					    trs_error *err);

/** The backend's short name: "sqs", "dir", or what a custom backend says. */
TRS_EXTERN(const char *) trs_queue_name(const trs_queue *queue);

/** Free a queue (calls the backend's free). NULL is ignored. */
TRS_EXTERN(void) trs_queue_free(trs_queue *queue);

#ifdef __cplusplus
}
#endif
#endif
