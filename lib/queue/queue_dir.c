/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "dir" queue backend: a spool directory of message files.
 *
 *   PATH/<id>.json                          a message waiting (any body SQS would carry)
 *   PATH/.inflight/<id>.json@<count>@<nonce> a received message; the name is its receipt
 *                                           handle, the mtime its visibility deadline
 *
 *   DEAD/<id>.json                          a message received max_receives times
 *                                           (DEAD: PATH/.dead unless dead_letter= names one)
 *
 * Claiming is a rename, which exactly one of several competing consumers
 * wins. The deadline is written (utimensat) before the rename, so that no
 * other consumer ever sees a freshly claimed file with a past deadline. A
 * file whose deadline passed is claimed again in place, under a new name
 * (count + 1, new nonce): a consumer still holding the old handle can then
 * no longer delete it, as with SQS.
 *
 * The redrive policy is SQS's: "dir://PATH?max_receives=N" moves a message
 * whose deadline passed after its N-th receive to the dead-letter directory
 * instead of receiving it again, by a rename that one consumer wins, under its
 * first name, so that moving it back to PATH redrives it.
 */
#include "internal.h"
#include "queue_open.h"
#include "trs/sys/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_VISIBILITY 30
#define POLL_STEP_S 0.1
#define MAX_BODY ((size_t)TRS_EVENT_MAX_BYTES + 1) /* more is poison anyway; the parser says so */
#define INFLIGHT ".inflight"
#define DEAD ".dead"
#define MAX_RECEIVES_LIMIT 1000 /* SQS's highest maxReceiveCount */

typedef struct dir_queue {
	trs_queue parent;
	const trs_ctx *ctx;
	char *url; /* as opened: what log lines name the queue by */
	char *path;
	char *inflight;
	unsigned int max_receives; /* 0: received again for ever, as SQS without a redrive policy */
	char *dead;                /* the dead-letter directory when max_receives is set */
	pthread_mutex_t lock;      /* the nonce counter */
	unsigned long nonce;
} dir_queue;

static struct timespec deadline_in(unsigned int seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	return ts;
}

static bool expired(const struct stat *st)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return st->st_mtim.tv_sec < now.tv_sec ||
	       (st->st_mtim.tv_sec == now.tv_sec && st->st_mtim.tv_nsec <= now.tv_nsec);
}

static int set_deadline(int dirfd, const char *name, unsigned int seconds)
{
	struct timespec times[2];
	times[0].tv_sec = 0;
	times[0].tv_nsec = UTIME_OMIT;
	times[1] = deadline_in(seconds);
	return utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW);
}

/* A receipt handle names a file directly inside .inflight and nothing else. */
static bool handle_ok(const char *h)
{
	return h && *h && *h != '.' && !strchr(h, '/') && strlen(h) < 4096 && strchr(h, '@');
}

/* Split "<orig>@<count>@<nonce>": the length of <orig> and the count. */
static bool parse_inflight(const char *name, size_t *orig_len, unsigned int *count)
{
	const char *nonce = strrchr(name, '@');
	if (!nonce || nonce == name)
		return false;
	const char *at = nonce - 1;
	while (at > name && *at != '@')
		at--;
	if (*at != '@' || at == name)
		return false;
	char *end;
	unsigned long c = strtoul(at + 1, &end, 10);
	if (end != nonce || c > 1000000)
		return false;
	*orig_len = (size_t)(at - name);
	*count = (unsigned int)c;
	return true;
}

static int read_body(dir_queue *q, const char *name, trs_queue_message *m, trs_error *err)
{
	char path[8192];
	snprintf(path, sizeof(path), "%s/%s", q->inflight, name);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return trs__error_errno(err, errno, "cannot open queue message %s", TRS__SHORT(path));
	trs__buf b = TRS_BUF_INIT;
	int rc = 0;
	while (rc == 0 && b.len < MAX_BODY) {
		rc = trs__buf_grow(&b, 65536, err);
		if (rc < 0)
			break;
		size_t want = b.cap - b.len - 1;
		if (want > MAX_BODY - b.len)
			want = MAX_BODY - b.len;
		ssize_t n = read(fd, b.data + b.len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = trs__error_errno(err, errno, "cannot read queue message %s", TRS__SHORT(path));
		else if (n == 0)
			break;
		else
			b.len += (size_t)n;
	}
	close(fd);
	if (rc == 0)
		rc = trs__buf_grow(&b, 1, err);
	if (rc < 0) {
		trs__buf_free(&b);
		return rc;
	}
	b.data[b.len] = '\0';
	m->body = b.data;
	m->body_len = b.len;
	return 0;
}

/* Claim `name` of directory `from` (PATH or .inflight) as `orig` received for the count-th time. */
static int claim(dir_queue *q, int fromfd, int inflightfd, const char *name, const char *orig, size_t orig_len,
		 unsigned int count, unsigned int visibility, trs_queue_message *m, trs_error *err)
{
	if (set_deadline(fromfd, name, visibility) < 0)
		return errno == ENOENT ? 1 : trs__error_errno(err, errno, "cannot claim queue message %s",
							      TRS__SHORT(name));
	pthread_mutex_lock(&q->lock);
	unsigned long nonce = ++q->nonce;
	pthread_mutex_unlock(&q->lock);
	trs__buf handle = TRS_BUF_INIT;
	int rc = trs__buf_printf(&handle, err, "%.*s@%u@%lx%lx%lx", (int)orig_len, orig, count, (unsigned long)getpid(),
				 (unsigned long)time(NULL), nonce);
	if (rc < 0)
		return rc;
	if (renameat(fromfd, name, inflightfd, handle.data) < 0) {
		int e = errno;
		trs__buf_free(&handle);
		return e == ENOENT ? 1 : trs__error_errno(err, e, "cannot claim queue message %s", TRS__SHORT(name));
	}
	memset(m, 0, sizeof(*m));
	m->receipt_handle = handle.data;
	size_t id_len = orig_len > 5 && memcmp(orig + orig_len - 5, ".json", 5) == 0 ? orig_len - 5 : orig_len;
	m->id = trs__strndup(orig, id_len, err);
	m->receive_count = count;
	rc = m->id ? read_body(q, m->receipt_handle, m, err) : TRS_ENOMEM;
	if (rc < 0) {
		/* Leave it in flight: its deadline brings it back. */
		free(m->id);
		free(m->receipt_handle);
		free(m->body);
		memset(m, 0, sizeof(*m));
	}
	return rc;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir (not starting with '.'), sorted; for the queue itself only *.json. */
static int list_names(const char *dir, bool json_only, char ***out, size_t *n, trs_error *err)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return trs__error_errno(err, errno, "cannot read queue directory %s", TRS__SHORT(dir));
	size_t cap = 0;
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || (json_only && (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)))
			continue;
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 32;
			char **grown = realloc(*out, cap * sizeof(**out));
			if (!grown) {
				rc = trs__error_set(err, TRS_ENOMEM, "out of memory listing %s", TRS__SHORT(dir));
				break;
			}
			*out = grown;
		}
		(*out)[*n] = trs__strdup(e->d_name, err);
		if (!(*out)[*n])
			rc = TRS_ENOMEM;
		else
			(*n)++;
	}
	closedir(d);
	if (rc == 0 && *n)
		qsort(*out, *n, sizeof(**out), cmp_names);
	return rc;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* rename without replacing: RENAME_NOREPLACE, or where a filesystem has none a look first (two
 * dead letters of one id at the same instant are all that look can miss). */
static int rename_noreplace(int fromfd, const char *from, int tofd, const char *to)
{
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	if (faccessat(tofd, to, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	return renameat(fromfd, from, tofd, to);
}

/*
 * The in-flight file `name` (the message `orig`, received `count` times) goes to the
 * dead-letter directory under its first name, or, when one is there already, under
 * that name with the nonce in it: a dead letter never replaces another.
 */
static int dead_letter(dir_queue *q, int inflightfd, const char *name, const char *orig, size_t orig_len,
		       unsigned int count, trs_error *err)
{
	int deadfd = open(q->dead, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (deadfd < 0)
		return trs__error_errno(err, errno, "cannot open the dead-letter directory %s of queue %s",
					TRS__SHORT(q->dead), TRS__SHORT(q->path));
	size_t id_len = orig_len > 5 && memcmp(orig + orig_len - 5, ".json", 5) == 0 ? orig_len - 5 : orig_len;
	trs__buf target = TRS_BUF_INIT;
	int rc = trs__buf_printf(&target, err, "%.*s", (int)orig_len, orig);
	for (int attempt = 0; rc == 0; attempt++) {
		if (rename_noreplace(inflightfd, name, deadfd, target.data) == 0)
			break;
		int e = errno;
		if (e == ENOENT) {
			rc = 1; /* claimed or moved by another consumer meanwhile */
		} else if (e == EEXIST && attempt == 0) {
			target.len = 0;
			rc = trs__buf_printf(&target, err, "%.*s@%s.json", (int)id_len, orig, strrchr(name, '@') + 1);
		} else {
			rc = trs__error_errno(err, e, "cannot move queue message %s to the dead-letter directory %s",
					      TRS__SHORT(name), TRS__SHORT(q->dead));
		}
	}
	close(deadfd);
	if (rc == 0 && trs__log_enabled(q->ctx, TRS_LOG_ERROR)) {
		char id[TRS__SHORT_KEY_SIZE], received[16], max[16];
		trs__short_text(id, sizeof(id), orig, id_len);
		snprintf(received, sizeof(received), "%u", count);
		snprintf(max, sizeof(max), "%u", q->max_receives);
		trs__log(q->ctx, TRS_LOG_ERROR,
			 "message moved to the dead-letter directory after its maximum receives; look at it there",
			 "queue", q->url, "message_id", id, "receive_count", received, "max_receives", max,
			 "dead_letter", q->dead, "file", target.data, NULL);
	}
	trs__buf_free(&target);
	return rc;
}

/* One sweep: expired in-flight messages first (they are the oldest), then new ones. */
static int sweep(dir_queue *q, const trs_queue_receive_options *o, trs_queue_message *msgs, size_t *count,
		 trs_error *err)
{
	int qfd = open(q->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ifd = qfd >= 0 ? open(q->inflight, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (qfd < 0 || ifd < 0) {
		int e = errno;
		if (qfd >= 0)
			close(qfd);
		return trs__error_errno(err, e, "cannot open queue directory %s", TRS__SHORT(q->path));
	}
	unsigned int visibility = o->visibility_timeout ? o->visibility_timeout : DEFAULT_VISIBILITY;
	char **names = NULL;
	size_t n = 0;
	int rc = list_names(q->inflight, false, &names, &n, err);
	for (size_t i = 0; rc == 0 && i < n && *count < o->max_messages; i++) {
		struct stat st;
		size_t orig_len;
		unsigned int c;
		if (!parse_inflight(names[i], &orig_len, &c) || fstatat(ifd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || !expired(&st))
			continue;
		if (q->max_receives && c >= q->max_receives) {
			trs_error derr = TRS_ERROR_INIT;
			int moved = dead_letter(q, ifd, names[i], names[i], orig_len, c, &derr);
			if (moved >= 0)
				continue; /* moved, or taken by another consumer */
			/* One message that cannot move must not stop the queue: it is received again. */
			trs__log(q->ctx, TRS_LOG_ERROR,
				 "message not moved to the dead-letter directory; received again. Check that the "
				 "directory is writable",
				 "queue", q->url, "dead_letter", q->dead, "code", trs_strerror(moved), "error",
				 derr.message, NULL);
		}
		rc = claim(q, ifd, ifd, names[i], names[i], orig_len, c + 1, visibility, &msgs[*count], err);
		if (rc == 0)
			(*count)++;
		else if (rc > 0)
			rc = 0;
	}
	free_names(names, n);
	names = NULL;
	n = 0;
	if (rc == 0 && *count < o->max_messages)
		rc = list_names(q->path, true, &names, &n, err);
	for (size_t i = 0; rc == 0 && i < n && *count < o->max_messages; i++) {
		struct stat st;
		if (fstatat(qfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		rc = claim(q, qfd, ifd, names[i], names[i], strlen(names[i]), 1, visibility, &msgs[*count], err);
		if (rc == 0)
			(*count)++;
		else if (rc > 0)
			rc = 0;
	}
	free_names(names, n);
	close(qfd);
	close(ifd);
	return rc;
}

static int dir_receive(trs_queue *self, const trs_queue_receive_options *o, trs_queue_message **out,
		       size_t *count, trs_error *err)
{
	dir_queue *q = (dir_queue *)self;
	trs_queue_message *msgs = trs__calloc(o->max_messages, sizeof(*msgs), err);
	if (!msgs)
		return TRS_ENOMEM;
	double give_up = trs__now() + o->wait_seconds;
	int rc;
	for (;;) {
		rc = sweep(q, o, msgs, count, err);
		if (rc < 0 || *count > 0 || trs__now() >= give_up)
			break;
		if (trs__flag_raised(o->interrupt) || trs__canceled(q->ctx))
			break;
		trs__sleep_until(POLL_STEP_S, NULL, NULL);
	}
	if (*count == 0) {
		free(msgs);
		msgs = NULL;
	}
	*out = msgs;
	return rc;
}

static int dir_delete_batch(trs_queue *self, const char *const *handles, size_t count, int *codes,
			    trs_error *err)
{
	dir_queue *q = (dir_queue *)self;
	size_t failed = 0;
	for (size_t i = 0; i < count; i++) {
		trs_error e = TRS_ERROR_INIT;
		if (!handle_ok(handles[i])) {
			codes[i] = trs__error_set(&e, TRS_EINVAL, "'%.40s' is not a receipt handle of this queue",
						  handles[i] ? handles[i] : "");
		} else {
			char path[8192];
			snprintf(path, sizeof(path), "%s/%s", q->inflight, handles[i]);
			if (unlink(path) == 0)
				continue;
			if (errno == ENOENT)
				codes[i] = trs__error_set(&e, TRS_ENOTFOUND,
							  "message %s is no longer in flight under this receipt handle "
							  "(deleted already, or received again after its visibility timeout)",
							  TRS__SHORT(handles[i]));
			else
				codes[i] = trs__error_errno(&e, errno, "cannot delete queue message %s",
							    TRS__SHORT(path));
		}
		if (failed++ == 0 && err)
			*err = e;
	}
	if (failed && err)
		trs__error_prefix(err, "%zu of %zu deletes failed", failed, count);
	return failed ? TRS_EPARTIAL : 0;
}

static int dir_change_visibility(trs_queue *self, const char *handle, unsigned int seconds, trs_error *err)
{
	dir_queue *q = (dir_queue *)self;
	if (!handle_ok(handle))
		return trs__error_set(err, TRS_EINVAL, "'%.40s' is not a receipt handle of this queue", handle);
	int fd = open(q->inflight, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return trs__error_errno(err, errno, "cannot open %s", TRS__SHORT(q->inflight));
	int rc = set_deadline(fd, handle, seconds);
	int e = errno;
	close(fd);
	if (rc == 0)
		return 0;
	if (e == ENOENT)
		return trs__error_set(err, TRS_ENOTFOUND, "message %s is no longer in flight under this receipt handle",
				      TRS__SHORT(handle));
	return trs__error_errno(err, e, "cannot change the visibility of %s", TRS__SHORT(handle));
}

static void dir_free(trs_queue *self)
{
	dir_queue *q = (dir_queue *)self;
	pthread_mutex_destroy(&q->lock);
	free(q->url);
	free(q->path);
	free(q->inflight);
	free(q->dead);
	free(q);
}

static int make_dir(const char *path, trs_error *err)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST) {
		struct stat st;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		return trs__error_set(err, TRS_EIO, "queue directory %s is not a directory", TRS__SHORT(path));
	}
	return trs__error_errno(err, errno, "cannot create queue directory %s", TRS__SHORT(path));
}

/* The dead-letter directory must take a rename from .inflight, and must not be the queue. */
static int check_dead_letter(const dir_queue *q, trs_error *err)
{
	struct stat dead, queue, inflight;
	if (stat(q->dead, &dead) < 0 || stat(q->path, &queue) < 0 || stat(q->inflight, &inflight) < 0)
		return trs__error_errno(err, errno, "cannot look at the dead-letter directory %s", TRS__SHORT(q->dead));
	if ((dead.st_dev == queue.st_dev && dead.st_ino == queue.st_ino) ||
	    (dead.st_dev == inflight.st_dev && dead.st_ino == inflight.st_ino))
		return trs__error_set(err, TRS_EINVAL,
				      "the dead-letter directory %s is the queue %s itself; name another one "
				      "(dead_letter=DIR)",
				      TRS__SHORT(q->dead), TRS__SHORT(q->path));
	if (dead.st_dev != inflight.st_dev)
		return trs__error_set(err, TRS_EINVAL,
				      "the dead-letter directory %s is on another filesystem than the queue %s: messages "
				      "move there by rename; name one on the same filesystem (dead_letter=DIR)",
				      TRS__SHORT(q->dead), TRS__SHORT(q->path));
	return 0;
}

static int open_dir_queue(trs_queue **out, const trs_ctx *ctx, const char *url, const char *path,
			  unsigned int max_receives, const char *dead, trs_error *err)
{
	*out = NULL;
	dir_queue *q = trs__calloc(1, sizeof(*q), err);
	if (!q)
		return TRS_ENOMEM;
	trs_queue_init_backend(&q->parent, TRS_QUEUE_VERSION);
	q->parent.name = "dir";
	q->parent.receive = dir_receive;
	q->parent.delete_batch = dir_delete_batch;
	q->parent.change_visibility = dir_change_visibility;
	q->parent.free = dir_free;
	q->ctx = ctx;
	q->max_receives = max_receives;
	pthread_mutex_init(&q->lock, NULL);
	trs__buf b = TRS_BUF_INIT, d = TRS_BUF_INIT, u = TRS_BUF_INIT;
	int rc = 0;
	q->path = trs__strdup(path, err);
	if (!q->path || trs__buf_printf(&b, err, "%s/%s", path, INFLIGHT) < 0 ||
	    (url ? trs__buf_puts(&u, url, err) : trs__buf_printf(&u, err, "dir://%s", path)) < 0)
		rc = TRS_ENOMEM;
	q->url = u.data;
	q->inflight = b.data;
	if (rc == 0 && max_receives &&
	    (dead ? trs__buf_puts(&d, dead, err) : trs__buf_printf(&d, err, "%s/%s", path, DEAD)) < 0)
		rc = TRS_ENOMEM;
	q->dead = d.data;
	if (rc == 0)
		rc = make_dir(q->path, err);
	if (rc == 0)
		rc = make_dir(q->inflight, err);
	if (rc == 0 && q->dead)
		rc = make_dir(q->dead, err);
	if (rc == 0 && q->dead)
		rc = check_dead_letter(q, err);
	if (rc < 0) {
		dir_free(&q->parent);
		return rc;
	}
	*out = &q->parent;
	return 0;
}

int trs_queue_dir_new(trs_queue **out, const trs_ctx *ctx, const char *path, trs_error *err)
{
	if (!out || !path || !*path)
		return trs__error_set(err, TRS_EINVAL, "trs_queue_dir_new needs an output pointer and a path");
	return open_dir_queue(out, ctx, NULL, path, 0, NULL, err);
}

/* A query value, percent-decoded so that any path can be given ("%26" for '&'). */
static int query_value(const char *v, size_t len, trs__buf *out, trs_error *err)
{
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (c == '%' && i + 2 < len && trs__hexval((unsigned char)v[i + 1]) >= 0 &&
		    trs__hexval((unsigned char)v[i + 2]) >= 0) {
			c = (char)(trs__hexval((unsigned char)v[i + 1]) * 16 + trs__hexval((unsigned char)v[i + 2]));
			i += 2;
		}
		if (c == '\0')
			return trs__error_set(err, TRS_EINVAL, "a dir:// queue parameter decodes to a NUL byte");
		if (trs__buf_put(out, &c, 1, err) < 0)
			return TRS_ENOMEM;
	}
	return 0;
}

int trs__queue_dir_open_url(trs_queue **out, const trs_ctx *ctx, const char *url, trs_error *err)
{
	*out = NULL;
	const char *spec = url + 6; /* after "dir://" */
	const char *query = strchr(spec, '?');
	size_t path_len = query ? (size_t)(query - spec) : strlen(spec);
	if (path_len == 0)
		return trs__error_set(err, TRS_EINVAL, "queue URL 'dir://%s' names no directory", TRS__SHORT(spec));
	trs__buf path = TRS_BUF_INIT, dead = TRS_BUF_INIT, max = TRS_BUF_INIT;
	int rc = trs__buf_put(&path, spec, path_len, err);
	bool has_dead = false, has_max = false;
	for (const char *p = query ? query + 1 : NULL; rc == 0 && p && *p;) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		size_t name_len = eq ? (size_t)(eq - p) : len;
		const char *value = eq ? eq + 1 : p + len;
		size_t value_len = (size_t)(p + len - value);
		if (name_len == 12 && !memcmp(p, "max_receives", 12) && !has_max) {
			has_max = true;
			rc = query_value(value, value_len, &max, err);
		} else if (name_len == 11 && !memcmp(p, "dead_letter", 11) && !has_dead) {
			has_dead = true;
			rc = query_value(value, value_len, &dead, err);
		} else {
			rc = trs__error_set(err, TRS_EINVAL,
					    "queue URL 'dir://%s': '%.*s' is not a parameter of a dir:// queue, or is "
					    "given twice (max_receives=N, dead_letter=DIR)",
					    TRS__SHORT(spec), (int)(name_len < 64 ? name_len : 64), p);
		}
		p += len + (p[len] == '&');
	}
	unsigned long receives = 0;
	if (rc == 0 && has_max) {
		char *end = NULL;
		receives = max.data && *max.data >= '0' && *max.data <= '9' ? strtoul(max.data, &end, 10) : 0;
		if (!end || *end || receives < 1 || receives > MAX_RECEIVES_LIMIT)
			rc = trs__error_set(err, TRS_EINVAL,
					    "queue URL 'dir://%s': max_receives must be a whole number from 1 to %d "
					    "(SQS's maxReceiveCount)",
					    TRS__SHORT(spec), MAX_RECEIVES_LIMIT);
	}
	if (rc == 0 && has_dead && !has_max)
		rc = trs__error_set(err, TRS_EINVAL,
				    "queue URL 'dir://%s': dead_letter needs max_receives=N, the receives after which a "
				    "message goes there",
				    TRS__SHORT(spec));
	if (rc == 0 && has_dead && (!dead.data || !*dead.data))
		rc = trs__error_set(err, TRS_EINVAL, "queue URL 'dir://%s': dead_letter names no directory",
				    TRS__SHORT(spec));
	if (rc == 0)
		rc = open_dir_queue(out, ctx, url, path.data, (unsigned int)receives, has_dead ? dead.data : NULL,
				    err);
	trs__buf_free(&path);
	trs__buf_free(&dead);
	trs__buf_free(&max);
	return rc;
}
