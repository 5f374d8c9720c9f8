/* SPDX-License-Identifier: Apache-2.0 */
/*
 * custom_queue: a custom queue backend plugged into trs_serve. Each line
 * of stdin is one message body (an S3 event notification, its SNS envelope,
 * an EventBridge event: what SQS would carry). Archives are read from
 * STAGING/<bucket>/<key> and restored into DEST/<bucket>/<key>, both local
 * directories. At the end of stdin, once every message was deleted or
 * given up, the program stops.
 *
 *     cc custom_queue.c $(pkg-config --cflags --libs libtrs) -o custom_queue
 *     echo '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
 *            "s3":{"bucket":{"name":"staging"},"object":{"key":"a.tar.zst"}}}]}' |
 *         ./custom_queue staging-dir restored eu-west-1
 *
 * stdout gets one line per message, "deleted <id>" or "dead-letter <id>";
 * stderr the serve loop's log. Exit status: 0 when every message was
 * deleted, 1 when some went to the dead-letter list, 2 usage or setup.
 *
 * What it shows (docs/api.md, "Writing a queue backend"):
 * - the SQS semantics a backend owes the serve loop: a received message is
 *   invisible until its visibility deadline; one not deleted by then comes
 *   back with a higher receive count; change_visibility moves the deadline
 *   (the loop's heartbeat, and 0 at shutdown); a message received
 *   MAX_RECEIVES times goes to a dead-letter list, like a redrive policy;
 * - receive honours options->interrupt while it waits;
 * - receive runs on the loop's thread while change_visibility runs on its
 *   heartbeat thread: a mutex guards the state;
 * - the end of the input raises the serve loop's stop flag (options.stop).
 */
#define _POSIX_C_SOURCE 200809L /* poll, clock_gettime, nanosleep, strdup */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <trs.h>
#include <trs/sys/queue.h>

#define MAX_RECEIVES 3

typedef struct line_msg {
	char *body;
	size_t len;
	unsigned long id;
	unsigned int receives;
	int inflight;
	double deadline; /* while inflight: visible again after this */
	struct line_msg *next;
} line_msg;

typedef struct stdin_queue {
	trs_queue parent; /* first: the library sees a trs_queue */
	pthread_mutex_t lock;
	line_msg *msgs;   /* every message not yet deleted or dead, in arrival order */
	unsigned long next_id;
	char *partial;    /* bytes of a line not yet ended */
	size_t npartial;
	int eof;
	unsigned int deleted, dead;
	volatile int *stop; /* raised when stdin is over and no message is left */
} stdin_queue;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int oom(trs_error *err)
{
	err->code = TRS_ENOMEM;
	snprintf(err->message, sizeof(err->message), "out of memory");
	return TRS_ENOMEM;
}

/* Append one complete line (without its newline) as a message; blank lines are not messages. */
static int add_line(stdin_queue *q, const char *s, size_t len)
{
	while (len && (s[len - 1] == '\r' || s[len - 1] == ' '))
		len--;
	if (!len)
		return 0;
	line_msg *m = calloc(1, sizeof(*m));
	if (!m || !(m->body = malloc(len + 1))) {
		free(m);
		return TRS_ENOMEM;
	}
	memcpy(m->body, s, len);
	m->body[len] = 0;
	m->len = len;
	m->id = ++q->next_id;
	line_msg **tail = &q->msgs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = m;
	return 0;
}

/* Read what stdin has now (never blocks); called with the lock held. */
static int read_stdin(stdin_queue *q)
{
	char buf[64 * 1024];
	while (!q->eof) {
		struct pollfd p = {STDIN_FILENO, POLLIN, 0};
		if (poll(&p, 1, 0) <= 0)
			return 0;
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			q->eof = 1; /* an unended last line is still a message */
			int rc = add_line(q, q->partial ? q->partial : "", q->npartial);
			free(q->partial);
			q->partial = NULL;
			q->npartial = 0;
			return rc;
		}
		char *joined = realloc(q->partial, q->npartial + (size_t)n);
		if (!joined)
			return TRS_ENOMEM;
		memcpy(joined + q->npartial, buf, (size_t)n);
		q->partial = joined;
		q->npartial += (size_t)n;
		size_t start = 0;
		for (size_t i = 0; i < q->npartial; i++) {
			if (joined[i] != '\n')
				continue;
			if (add_line(q, joined + start, i - start) < 0)
				return TRS_ENOMEM;
			start = i + 1;
		}
		memmove(joined, joined + start, q->npartial - start);
		q->npartial -= start;
	}
	return 0;
}

static void unlink_msg(stdin_queue *q, line_msg *m)
{
	for (line_msg **p = &q->msgs; *p; p = &(*p)->next) {
		if (*p == m) {
			*p = m->next;
			break;
		}
	}
	free(m->body);
	free(m);
}

static line_msg *find_handle(stdin_queue *q, const char *handle)
{
	unsigned long id = strtoul(handle, NULL, 10);
	for (line_msg *m = q->msgs; m; m = m->next)
		if (m->id == id && m->inflight)
			return m;
	return NULL;
}

/* Take up to `max` visible messages; called with the lock held. */
static size_t take_visible(stdin_queue *q, unsigned int max, unsigned int visibility, line_msg **taken)
{
	size_t n = 0;
	double t = now();
	line_msg *m = q->msgs;
	while (m && n < max) {
		line_msg *next = m->next;
		if (m->inflight && m->deadline <= t)
			m->inflight = 0; /* its visibility timeout ran out */
		if (!m->inflight && m->receives >= MAX_RECEIVES) {
			printf("dead-letter %lu\n", m->id); /* our redrive policy */
			fflush(stdout);
			q->dead++;
			unlink_msg(q, m);
		} else if (!m->inflight) {
			m->inflight = 1;
			m->receives++;
			m->deadline = t + visibility;
			taken[n++] = m;
		}
		m = next;
	}
	return n;
}

static int q_receive(trs_queue *self, const trs_queue_receive_options *o, trs_queue_message **out, size_t *count,
		     trs_error *err)
{
	stdin_queue *q = (stdin_queue *)self;
	unsigned int max = o->max_messages ? o->max_messages : 1;
	unsigned int visibility = o->visibility_timeout ? o->visibility_timeout : 30;
	line_msg *taken[TRS_QUEUE_MAX_MESSAGES];
	double end = now() + o->wait_seconds;
	size_t n = 0;
	*out = NULL;
	*count = 0;
	for (;;) {
		pthread_mutex_lock(&q->lock);
		if (read_stdin(q) < 0) {
			pthread_mutex_unlock(&q->lock);
			return oom(err);
		}
		n = take_visible(q, max, visibility, taken);
		if (!n && q->eof && !q->msgs)
			*q->stop = 1; /* nothing more will ever come */
		pthread_mutex_unlock(&q->lock);
		if (n || *q->stop || (o->interrupt && *o->interrupt) || now() >= end)
			break;
		struct pollfd p = {STDIN_FILENO, POLLIN, 0};
		poll(&p, q->eof ? 0 : 1, 100); /* short steps: the interrupt flag is checked between them */
		if (q->eof) {
			struct timespec ts = {0, 100 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	if (!n)
		return 0;
	trs_queue_message *msgs = calloc(n, sizeof(*msgs));
	if (!msgs)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof(id), "%lu", taken[i]->id);
		msgs[i].id = strdup(id);
		msgs[i].receipt_handle = strdup(id); /* a real queue's handle changes per receive */
		msgs[i].body = malloc(taken[i]->len + 1);
		if (!msgs[i].id || !msgs[i].receipt_handle || !msgs[i].body) {
			trs_queue_messages_free(msgs, n);
			goto nomem;
		}
		memcpy(msgs[i].body, taken[i]->body, taken[i]->len + 1);
		msgs[i].body_len = taken[i]->len;
		msgs[i].receive_count = taken[i]->receives;
	}
	*out = msgs;
	*count = n;
	return 0;
nomem:
	/* The messages stay inflight; their deadline brings them back. */
	return oom(err);
}

static int q_delete_batch(trs_queue *self, const char *const *handles, size_t count, int *codes, trs_error *err)
{
	stdin_queue *q = (stdin_queue *)self;
	int rc = 0;
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < count; i++) {
		line_msg *m = find_handle(q, handles[i]);
		if (!m) {
			codes[i] = TRS_ENOTFOUND;
			if (rc == 0) {
				err->code = TRS_ENOTFOUND;
				snprintf(err->message, sizeof(err->message), "no message in flight with handle %s",
					 handles[i]);
			}
			rc = TRS_EPARTIAL;
			continue;
		}
		printf("deleted %lu\n", m->id);
		fflush(stdout);
		q->deleted++;
		unlink_msg(q, m);
		codes[i] = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static int q_change_visibility(trs_queue *self, const char *handle, unsigned int seconds, trs_error *err)
{
	stdin_queue *q = (stdin_queue *)self;
	pthread_mutex_lock(&q->lock);
	line_msg *m = find_handle(q, handle);
	if (m)
		m->deadline = now() + seconds; /* 0: visible again at once */
	pthread_mutex_unlock(&q->lock);
	if (m)
		return 0;
	err->code = TRS_ENOTFOUND;
	snprintf(err->message, sizeof(err->message), "no message in flight with handle %s", handle);
	return TRS_ENOTFOUND;
}

static void q_free(trs_queue *self)
{
	stdin_queue *q = (stdin_queue *)self;
	while (q->msgs)
		unlink_msg(q, q->msgs);
	free(q->partial);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static int stdin_queue_new(trs_queue **out, volatile int *stop, trs_error *err)
{
	stdin_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return oom(err);
	if (trs_queue_init_backend(&q->parent, TRS_QUEUE_VERSION) < 0) {
		free(q);
		err->code = TRS_EINVAL;
		snprintf(err->message, sizeof(err->message), "this libtrs does not know queue version %d",
			 TRS_QUEUE_VERSION);
		return TRS_EINVAL;
	}
	q->parent.name = "stdin";
	q->parent.receive = q_receive;
	q->parent.delete_batch = q_delete_batch;
	q->parent.change_visibility = q_change_visibility;
	q->parent.free = q_free;
	q->stop = stop;
	pthread_mutex_init(&q->lock, NULL);
	*out = &q->parent;
	return 0;
}

/* The serve loop's log, as text lines on stderr. */
static void log_line(trs_log_level level, const char *message, const trs_log_field *fields, size_t nfields,
		     void *userdata)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	(void)userdata;
	fprintf(stderr, "%s: %s", names[level], message);
	for (size_t i = 0; i < nfields; i++)
		fprintf(stderr, " %s=%s", fields[i].key, fields[i].value);
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s STAGING_DIR DEST_DIR [REGION] < events\n", argv[0]);
		return 2;
	}
	static volatile int stop;
	trs_error err = TRS_ERROR_INIT;
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	co.region = argc == 4 ? argv[3] : NULL;
	co.log = log_line;
	trs_ctx *ctx = NULL;
	trs_queue *queue = NULL;
	trs_storage *staging = NULL, *dest = NULL;
	int status = 2;
	if (trs_ctx_new(&ctx, &co, &err) < 0 || stdin_queue_new(&queue, &stop, &err) < 0 ||
	    trs_storage_fs_new(&staging, ctx, argv[1], &err) < 0 || trs_storage_fs_new(&dest, ctx, argv[2], &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		goto out;
	}
	trs_serve_options so = TRS_SERVE_OPTIONS_INIT;
	so.max_messages = 10;
	so.visibility_timeout = 1; /* a failed message comes back after a second (heartbeats extend live ones) */
	so.wait_seconds = 1;
	so.wait_set = 1;
	so.stop = &stop;
	so.staging = staging;
	so.queue_label = "stdin";
	if (trs_serve(ctx, queue, dest, &so, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		goto out;
	}
	stdin_queue *q = (stdin_queue *)queue;
	fprintf(stderr, "%u messages deleted, %u dead-lettered\n", q->deleted, q->dead);
	status = q->dead ? 1 : 0;
out:
	trs_storage_free(dest);
	trs_storage_free(staging);
	trs_queue_free(queue);
	trs_ctx_free(ctx);
	return status;
}
