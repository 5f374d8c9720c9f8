/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Queues: the calls users make, checked and forwarded to the backend's
 * vtable, and trs_queue_open's choice of backend by URL.
 */
#include "internal.h"
#include "queue_open.h"
#include "trs/sys/queue.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int trs_queue_init_backend(trs_queue *backend, unsigned int version)
{
	if (!backend || !trs__vtable_version_known(version, TRS_QUEUE_VERSION))
		return TRS_EINVAL;
	memset(backend, 0, sizeof(*backend));
	backend->version = version;
	return 0;
}

int trs__queue_check_version(const trs_queue *q, trs_error *err)
{
	if (!trs__vtable_version_known(q->version, TRS_QUEUE_VERSION))
		return trs__error_set(err, TRS_EINVAL, "queue backend '%s' has version %u, this library knows 1 to %u",
				      q->name ? q->name : "?", q->version, TRS_QUEUE_VERSION);
	return 0;
}

/* Per call: a queue, and the member the call needs (the version was checked by trs_serve or init). */
static int check(const trs_queue *q, bool has_fn, const char *what, trs_error *err)
{
	if (!q)
		return trs__error_set(err, TRS_EINVAL, "%s: no queue", what);
	if (!has_fn)
		return trs__error_set(err, TRS_EUNSUPPORTED, "%s: queue backend '%s' does not support it", what,
				      q->name ? q->name : "?");
	return 0;
}

int trs_queue_receive(trs_queue *queue, const trs_queue_receive_options *options, trs_queue_message **out,
		      size_t *count, trs_error *err)
{
	if (!out || !count)
		return trs__error_set(err, TRS_EINVAL, "trs_queue_receive needs out and count");
	*out = NULL;
	*count = 0;
	int rc = check(queue, queue && queue->receive, "receive", err);
	if (rc < 0)
		return rc;
	trs_queue_receive_options o = TRS_QUEUE_RECEIVE_OPTIONS_INIT;
	if (options)
		o = *options;
	if (o.max_messages == 0)
		o.max_messages = 1;
	if (o.max_messages > TRS_QUEUE_MAX_MESSAGES)
		return trs__error_set(err, TRS_EINVAL, "at most %d messages per receive, not %u",
				      TRS_QUEUE_MAX_MESSAGES, o.max_messages);
	if (o.wait_seconds > TRS_QUEUE_MAX_WAIT)
		return trs__error_set(err, TRS_EINVAL, "a receive waits at most %d seconds, not %u", TRS_QUEUE_MAX_WAIT,
				      o.wait_seconds);
	rc = queue->receive(queue, &o, out, count, err);
	if (rc < 0) {
		trs_queue_messages_free(*out, *count);
		*out = NULL;
		*count = 0;
	}
	return rc;
}

void trs_queue_messages_free(trs_queue_message *messages, size_t count)
{
	if (!messages)
		return;
	for (size_t i = 0; i < count; i++) {
		free(messages[i].id);
		free(messages[i].receipt_handle);
		free(messages[i].body);
	}
	free(messages);
}

int trs_queue_delete_batch(trs_queue *queue, const char *const *receipt_handles, size_t count, int *codes,
			   trs_error *err)
{
	int rc = check(queue, queue && queue->delete_batch, "delete", err);
	if (rc < 0 || count == 0)
		return rc;
	if (!receipt_handles)
		return trs__error_set(err, TRS_EINVAL, "delete: no receipt handles");
	int *own = NULL;
	if (!codes) {
		own = trs__calloc(count, sizeof(*own), err);
		if (!own)
			return TRS_ENOMEM;
		codes = own;
	}
	for (size_t i = 0; i < count; i++)
		codes[i] = 0;
	rc = queue->delete_batch(queue, receipt_handles, count, codes, err);
	free(own);
	return rc;
}

int trs_queue_change_visibility(trs_queue *queue, const char *receipt_handle, unsigned int seconds,
				trs_error *err)
{
	int rc = check(queue, queue && queue->change_visibility, "change_visibility", err);
	if (rc < 0)
		return rc;
	if (!receipt_handle || !*receipt_handle)
		return trs__error_set(err, TRS_EINVAL, "change_visibility: no receipt handle");
	if (seconds > TRS_QUEUE_MAX_VISIBILITY)
		return trs__error_set(err, TRS_EINVAL, "a visibility timeout is at most %d seconds, not %u",
				      TRS_QUEUE_MAX_VISIBILITY, seconds);
	return queue->change_visibility(queue, receipt_handle, seconds, err);
}

const char *trs_queue_name(const trs_queue *queue)
{
	return queue && queue->name ? queue->name : "";
}

void trs_queue_free(trs_queue *queue)
{
	if (queue && queue->free)
		queue->free(queue);
}

int trs_queue_open(trs_queue **out, const trs_ctx *ctx, const char *url, trs_error *err)
{
	if (!out)
		return trs__error_set(err, TRS_EINVAL, "trs_queue_open needs an output pointer");
	*out = NULL;
	if (!url || !*url)
		return trs__error_set(err, TRS_EINVAL, "no queue URL (set SQS_QUEUE_URL or --queue)");
	if (strncmp(url, "dir://", 6) == 0)
		return trs__queue_dir_open_url(out, ctx, url, err);
	if (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0) {
		trs_sqs_options o = TRS_SQS_OPTIONS_INIT;
		o.queue_url = url;
		return trs_queue_sqs_new(out, ctx, &o, err);
	}
	return trs__error_set(err, TRS_EINVAL,
			      "queue URL '%.200s' is neither an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) "
			      "nor dir://PATH",
			      TRS__SHORT(url));
}
