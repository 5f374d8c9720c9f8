/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs: queue message bodies (docs/operations.md).
 *
 * A message body names the archives to restore. trs_event_parse accepts
 * the shapes a staging bucket's notification can arrive in:
 *
 * - S3 event notifications: {"Records":[{"eventSource":"aws:s3",
 *   "eventName":"ObjectCreated:Put","s3":{"bucket":{"name":...},
 *   "object":{"key":...}}}, ...]}. Keys are URL-encoded the way S3 does it
 *   and are decoded like Python's unquote_plus ('+' is a space, %XX a byte,
 *   invalid UTF-8 becomes U+FFFD). Records of another source or event name
 *   are not work and are skipped.
 * - The same wrapped in an SNS envelope: {"Type":"Notification",
 *   "Message":"<the JSON above, as a string>"}.
 * - EventBridge: {"source":"aws.s3","detail-type":"Object Created",
 *   "detail":{"bucket":{"name":...},"object":{"key":...}}}; keys are not
 *   encoded there and are taken as they are.
 * - The test event S3 sends when a notification is configured
 *   ({"Service":"Amazon S3","Event":"s3:TestEvent",...}, or a record whose
 *   eventName is "s3:TestEvent"): no work, delete the message.
 *
 * Anything else is a poison message: trs_event_parse returns TRS_EINVAL
 * with the reason, and a queue consumer leaves the message for the queue's
 * redrive policy. Bodies are bounded (TRS_EVENT_MAX_BYTES, nesting depth
 * TRS_EVENT_MAX_DEPTH, TRS_EVENT_MAX_RECORDS records): beyond them the
 * answer is TRS_ELIMIT, which is poison too.
 */
#ifndef TRS_EVENT_H
#define TRS_EVENT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRS_EVENT_MAX_BYTES (1024u * 1024u) /* SQS's largest message is 1 MiB */
#define TRS_EVENT_MAX_DEPTH 32
#define TRS_EVENT_MAX_RECORDS 1000

/** One archive to restore: an object of the staging bucket. */
typedef struct trs_archive_ref {
	char *bucket;
	char *key;   /* decoded, UTF-8, never contains NUL */
	double event_time; /* the event's time (records: eventTime; EventBridge: time), unix seconds; 0: unknown */
} trs_archive_ref;

typedef enum {
	TRS_EVENT_WORK = 0,    /* refs lists the archives (at least one) */
	TRS_EVENT_TEST,        /* the s3:TestEvent: delete without work */
	TRS_EVENT_NO_WORK      /* only records that are not ObjectCreated: delete without work */
} trs_event_kind;

typedef struct trs_event {
	trs_event_kind kind;
	const char *shape;     /* "s3", "sns", "eventbridge" or "test" (static strings) */
	trs_archive_ref *refs;
	size_t nrefs;
	size_t records_skipped; /* records that were not work */
} trs_event;

/**
 * Parse one message body of `len` bytes (it need not be NUL-terminated).
 * On success *out is a new event (free it with trs_event_free). On failure
 * *out is NULL and the code is TRS_EINVAL (not a shape we know, or a
 * record without bucket or key), TRS_ELIMIT (too large, too deep, too many
 * records) or TRS_ENOMEM; err->message says why.
 */
TRS_EXTERN(int) trs_event_parse(const char *body, size_t len, trs_event **out, trs_error *err);

/** Free an event. NULL is ignored. */
TRS_EXTERN(void) trs_event_free(trs_event *event);

/**
 * Decode an S3 event key like Python's urllib.parse.unquote_plus: '+' is a
 * space, %XX a byte (a '%' not followed by two hex digits stays as it is),
 * and byte sequences that are not UTF-8 become U+FFFD. Returns a malloc'ed
 * string, or NULL with err filled: TRS_EINVAL when the result would hold a
 * NUL byte, TRS_ENOMEM.
 */
TRS_EXTERN(char *) trs_event_decode_key(const char *encoded, size_t len, trs_error *err);

#ifdef __cplusplus
}
#endif
#endif
