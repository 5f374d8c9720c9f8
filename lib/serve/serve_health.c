/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The receiving loop's signs of life, for whoever supervises the consumer:
 *
 * - the health file (options.health_file), touched at the loop's turns, whose
 *   age a probe reads (trs_serve_health_age, `trs health`): containers;
 * - the service manager's socket (options.notify_socket, lib/serve/notify.c):
 *   READY=1 once the queue first answered, WATCHDOG=1 at the turns, STATUS=
 *   lines and STOPPING=1: systemd's Type=notify with WatchdogSec=.
 *
 * Both are given from the receiving thread only, at its turns: a stuck loop
 * stops them, a busy consumer does not (the loop turns every second while
 * every archive runner is busy, lib/serve/serve.c). Every function here
 * runs on that thread, without serve_state.lock held.
 */
#include "notify.h"
#include "serve_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Signs of life come at most this often: a loop turning fast (messages
 * arriving quickly, a receive backoff's 50 ms steps) must not write the file
 * or wake the manager each time. With a watchdog, often enough that one
 * skipped turn still leaves room within half of it. */
static double alive_every(double watchdog)
{
	return watchdog > 0 && watchdog / 8 < 1.0 ? watchdog / 8 : 1.0;
}

static bool has_watchdog(const serve_state *s)
{
	return s->o.watchdog_seconds > 0 && isfinite(s->o.watchdog_seconds);
}

/* A name from outside (the queue's URL, an error message) on one STATUS line:
 * a newline would start another assignment, so control bytes become '?'. */
static void put_clean(char *out, size_t size, const char *text)
{
	size_t i = 0;
	for (; text && text[i] && i + 1 < size; i++)
		out[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
	out[i] = '\0';
}

static void notify(serve_state *s, const char *state)
{
	trs_error err = TRS_ERROR_INIT;
	if (trs__notify_send(&s->health.notify, state, &err) == 0 || s->health.notify_failed)
		return;
	s->health.notify_failed = true; /* said once: the manager's socket does not come back by itself */
	trs__log(s->ctx, TRS_LOG_WARN,
		 "cannot notify the service manager; with a watchdog it will take the service for stuck",
		 "notify_socket", s->o.notify_socket, "error", err.message, NULL);
}

static void serving_status(serve_state *s, char *out, size_t size)
{
	pthread_mutex_lock(&s->lock);
	unsigned int held = s->work.held;
	pthread_mutex_unlock(&s->lock);
	char queue[200];
	put_clean(queue, sizeof(queue), s->label);
	snprintf(out, size, "serving %s: %u messages in progress, %llu archives restored, %llu failed", queue, held,
		 (unsigned long long)atomic_load(&s->archives_done), (unsigned long long)atomic_load(&s->archives_failed));
}

static void touch_health(serve_state *s)
{
	if (!s->o.health_file)
		return;
	if (utimensat(AT_FDCWD, s->o.health_file, NULL, 0) == 0)
		return;
	int fd = errno == ENOENT ? open(s->o.health_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1;
	if (fd >= 0) {
		close(fd);
		return;
	}
	static const char msg[] = "cannot touch the health file; a liveness probe watching it will fail";
	trs__log(s->ctx, TRS_LOG_WARN, msg, "path", s->o.health_file, "error", strerror(errno), NULL);
}

void trs__serve_health_open(serve_state *s)
{
	s->health.notify = (trs__notify)TRS__NOTIFY_INIT;
	s->health.alive_every = alive_every(has_watchdog(s) ? s->o.watchdog_seconds : 0);
	if (has_watchdog(s)) {
		/* A turn of the loop, and so a WATCHDOG=1, at least every half of the
		 * watchdog: the long poll leaves room for one skipped sign of life and
		 * half a second of the receive's own round trip. */
		double room = s->o.watchdog_seconds / 2 - s->health.alive_every - 0.5;
		unsigned int fit = room >= TRS_QUEUE_MAX_WAIT ? TRS_QUEUE_MAX_WAIT : room > 0 ? (unsigned int)room : 0;
		if (s->o.wait_seconds > fit) {
			char asked[16], now[16], dog[32];
			snprintf(asked, sizeof(asked), "%u", s->o.wait_seconds);
			snprintf(now, sizeof(now), "%u", fit);
			snprintf(dog, sizeof(dog), "%.3f", s->o.watchdog_seconds);
			trs__log(s->ctx, TRS_LOG_INFO,
				 "the long poll is shortened to give the service manager's watchdog a sign of life every "
				 "half of it",
				 "poll_interval", now, "poll_interval_asked", asked, "watchdog_seconds", dog, NULL);
			s->o.wait_seconds = fit;
		}
	}
	if (!s->o.notify_socket || !*s->o.notify_socket)
		return;
	trs_error err = TRS_ERROR_INIT;
	if (trs__notify_open(&s->health.notify, s->o.notify_socket, &err) < 0) {
		trs__log(s->ctx, TRS_LOG_WARN, "cannot reach the service manager's socket; serving without notifying it",
			 "notify_socket", s->o.notify_socket, "error", err.message, NULL);
		return;
	}
	char queue[200], state[256];
	put_clean(queue, sizeof(queue), s->label);
	snprintf(state, sizeof(state), "STATUS=starting: first receive from %s", queue);
	notify(s, state);
}

void trs__serve_alive(serve_state *s)
{
	double now = trs__now();
	if (s->health.alive_at > 0 && now - s->health.alive_at < s->health.alive_every)
		return;
	s->health.alive_at = now;
	touch_health(s);
	if (s->health.notify.fd < 0)
		return;
	char status[sizeof(s->health.status)];
	bool changed = false;
	if (s->health.ready && !s->health.receive_failing) {
		serving_status(s, status, sizeof(status));
		changed = strcmp(status, s->health.status) != 0;
	}
	if (!changed && !has_watchdog(s))
		return;
	char state[sizeof(status) + 32];
	snprintf(state, sizeof(state), "%s%s%s", has_watchdog(s) ? "WATCHDOG=1\n" : "", changed ? "STATUS=" : "",
		 changed ? status : "");
	notify(s, state);
	if (changed)
		memcpy(s->health.status, status, sizeof(status));
}

void trs__serve_ready(serve_state *s)
{
	s->health.receive_failing = false;
	if (s->health.ready)
		return;
	s->health.ready = true;
	if (s->health.notify.fd < 0)
		return;
	serving_status(s, s->health.status, sizeof(s->health.status));
	char state[sizeof(s->health.status) + 32];
	snprintf(state, sizeof(state), "READY=1\nSTATUS=%s", s->health.status);
	notify(s, state);
}

void trs__serve_receive_failing(serve_state *s, const char *error)
{
	s->health.receive_failing = true;
	if (s->health.notify.fd < 0)
		return;
	char why[200], state[sizeof(s->health.status) + 32];
	put_clean(why, sizeof(why), error);
	snprintf(s->health.status, sizeof(s->health.status), "receive failed, retrying: %s", why);
	snprintf(state, sizeof(state), "STATUS=%s", s->health.status);
	notify(s, state);
}

void trs__serve_stopping(serve_state *s, int rc, const trs_error *err)
{
	if (s->health.notify.fd < 0)
		return;
	char state[sizeof(s->health.status) + 32];
	if (rc < 0) {
		char why[200];
		put_clean(why, sizeof(why), err ? err->message : trs_strerror(rc));
		snprintf(state, sizeof(state), "STOPPING=1\nSTATUS=stopping on an error: %s", why);
	} else {
		pthread_mutex_lock(&s->lock);
		unsigned int held = s->work.held;
		pthread_mutex_unlock(&s->lock);
		snprintf(state, sizeof(state), "STOPPING=1\nSTATUS=stopping: %u messages in progress", held);
	}
	notify(s, state);
}

void trs__serve_health_close(serve_state *s)
{
	trs__notify_close(&s->health.notify);
}

TRS_EXTERN(int) trs_serve_health_age(const char *path, double *age_seconds, trs_error *err)
{
	if (!path || !*path || !age_seconds)
		return trs__error_set(err, TRS_EINVAL, "trs_serve_health_age needs a path and somewhere to put the age");
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return trs__error_set(err, TRS_ENOTFOUND, "no health file %s", path);
		return trs__error_errno(err, errno, "cannot read the health file %s", path);
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	double age = (double)(now.tv_sec - st.st_mtim.tv_sec) + (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
	*age_seconds = age > 0 ? age : 0;
	return 0;
}
