/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The serve loop's signs of life (lib/serve/notify.c, lib/serve/serve_health.c):
 * datagrams to a socket at a path and to an abstract one, the addresses the
 * protocol cannot reach, a manager gone away, the health file's age, and what
 * trs_serve tells a service manager on a queue whose first receive fails.
 */
#include "harness.h"
#include "internal.h"
#include "serve/notify.h"
#include "trs/serve.h"
#include "trs/sys/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* A datagram socket bound to `name` ("/path" or "@abstract"), reads time out after 5 s. */
static int listener(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	size_t len = strlen(name);
	memcpy(a.sun_path, name, len);
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '@' ? 0 : 1));
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	struct timeval limit = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, alen) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The next datagram as a string ("" after 5 s without one). */
static void next_datagram(int fd, char *out, size_t size)
{
	ssize_t n = recv(fd, out, size - 1, 0);
	out[n > 0 ? (size_t)n : 0] = '\0';
}

TEST(notify_reaches_a_socket_at_a_path)
{
	char dir[] = "/tmp/trs-notify-XXXXXX", path[64], got[256];
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = listener(path);
	CHECK(fd >= 0);
	trs__notify n;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__notify_open(&n, path, &err) == 0);
	CHECK(trs__notify_send(&n, "READY=1\nSTATUS=serving", &err) == 0);
	next_datagram(fd, got, sizeof(got));
	CHECK_STR(got, "READY=1\nSTATUS=serving");
	trs__notify_close(&n);
	CHECK(n.fd == -1);
	close(fd);
	unlink(path);
	rmdir(dir);
}

TEST(notify_reaches_an_abstract_socket)
{
	char name[64], got[256];
	snprintf(name, sizeof(name), "@trs-test-notify-%d", (int)getpid());
	int fd = listener(name);
	CHECK(fd >= 0);
	trs__notify n;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__notify_open(&n, name, &err) == 0);
	CHECK(trs__notify_send(&n, "WATCHDOG=1", &err) == 0);
	next_datagram(fd, got, sizeof(got));
	CHECK_STR(got, "WATCHDOG=1");
	/* The name's length is the address's: a socket named with a trailing NUL is another one. */
	trs__notify other;
	char longer[80];
	snprintf(longer, sizeof(longer), "%sx", name);
	CHECK(trs__notify_open(&other, longer, &err) == 0);
	CHECK(trs__notify_send(&other, "WATCHDOG=1", &err) == TRS_EIO);
	trs__notify_close(&other);
	trs__notify_close(&n);
	close(fd);
}

TEST(notify_refuses_addresses_it_cannot_reach)
{
	char too_long[200];
	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[0] = '/';
	too_long[sizeof(too_long) - 1] = '\0';
	const char *bad[] = {"", "@", "/", "run/systemd/notify", "vsock:2:1234", too_long};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(bad); i++) {
		trs__notify n;
		trs_error err = TRS_ERROR_INIT;
		CHECK(trs__notify_open(&n, bad[i], &err) == TRS_EINVAL);
		CHECK(n.fd == -1);
		CHECK_CONTAINS(err.message, "NOTIFY_SOCKET");
	}
	trs__notify closed = TRS__NOTIFY_INIT;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__notify_send(&closed, "READY=1", &err) == 0); /* no manager: nothing to say, no error */
}

TEST(notify_to_a_manager_gone_fails_at_once)
{
	char dir[] = "/tmp/trs-notify-XXXXXX", path[64];
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = listener(path);
	CHECK(fd >= 0);
	trs__notify n;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__notify_open(&n, path, &err) == 0);
	close(fd);
	unlink(path);
	double t0 = trs__now();
	CHECK(trs__notify_send(&n, "WATCHDOG=1", &err) == TRS_EIO);
	CHECK(err.sys_errno == ENOENT || err.sys_errno == ECONNREFUSED);
	CHECK(trs__now() - t0 < 1.5 * HARNESS_SLOWDOWN);
	trs__notify_close(&n);
	rmdir(dir);
}

TEST(health_age_is_the_time_since_the_file_was_touched)
{
	char dir[] = "/tmp/trs-health-XXXXXX", path[64];
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/alive", dir);
	double age = -1;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_serve_health_age(path, &age, &err) == TRS_ENOTFOUND);
	CHECK_CONTAINS(err.message, path);
	FILE *f = fopen(path, "w");
	CHECK(f);
	fclose(f);
	CHECK(trs_serve_health_age(path, &age, &err) == 0);
	CHECK(age >= 0 && age < 5);
	struct timeval now;
	gettimeofday(&now, NULL);
	struct timeval old[2] = {{now.tv_sec - 300, 0}, {now.tv_sec - 300, 0}};
	CHECK(utimes(path, old) == 0);
	CHECK(trs_serve_health_age(path, &age, &err) == 0);
	CHECK(age >= 299 && age < 310);
	struct timeval future[2] = {{now.tv_sec + 600, 0}, {now.tv_sec + 600, 0}};
	CHECK(utimes(path, future) == 0); /* the clock stepped back: fresh, not negative */
	CHECK(trs_serve_health_age(path, &age, &err) == 0);
	CHECK(age == 0);
	CHECK(trs_serve_health_age("", &age, &err) == TRS_EINVAL);
	unlink(path);
	rmdir(dir);
}

/* A queue whose first receive fails (retried after a 1 s backoff) and whose later ones are empty. */
typedef struct flaky_queue {
	trs_queue parent;
	atomic_int receives;
} flaky_queue;

static int flaky_receive(trs_queue *self, const trs_queue_receive_options *o, trs_queue_message **out,
			 size_t *count, trs_error *err)
{
	flaky_queue *q = (flaky_queue *)self;
	*out = NULL;
	*count = 0;
	if (atomic_fetch_add(&q->receives, 1) == 0)
		return trs__error_set(err, TRS_ENET, "connection refused\nREADY=1");
	for (int i = 0; i < 10 && !(o->interrupt && __atomic_load_n(o->interrupt, __ATOMIC_ACQUIRE)); i++)
		usleep(20000);
	return 0;
}

static int flaky_delete(trs_queue *self, const char *const *handles, size_t count, int *codes, trs_error *err)
{
	(void)self, (void)handles, (void)err;
	for (size_t i = 0; i < count; i++)
		codes[i] = 0;
	return 0;
}

static int flaky_visibility(trs_queue *self, const char *handle, unsigned int seconds, trs_error *err)
{
	(void)self, (void)handle, (void)seconds, (void)err;
	return 0;
}

static int no_put(trs_storage *self, const trs_put_request *req, trs_body *body, trs_error *err)
{
	(void)self, (void)req, (void)body;
	return trs__error_set(err, TRS_EUNSUPPORTED, "no puts here");
}

typedef struct serve_run {
	flaky_queue q;
	trs_storage dest;
	trs_serve_options o;
	int rc;
} serve_run;

static volatile int stop_flag;

static void *serve_thread(void *arg)
{
	serve_run *r = arg;
	trs_error err = TRS_ERROR_INIT;
	r->rc = trs_serve(NULL, &r->q.parent, &r->dest, &r->o, &err);
	return NULL;
}

TEST(the_manager_hears_ready_only_after_the_queue_answered_then_stopping)
{
	char name[64], got[512];
	snprintf(name, sizeof(name), "@trs-test-serve-%d", (int)getpid());
	int fd = listener(name);
	CHECK(fd >= 0);
	static serve_run r;
	memset(&r, 0, sizeof(r));
	trs_queue_init_backend(&r.q.parent, TRS_QUEUE_VERSION);
	r.q.parent.name = "flaky";
	r.q.parent.receive = flaky_receive;
	r.q.parent.delete_batch = flaky_delete;
	r.q.parent.change_visibility = flaky_visibility;
	trs_storage_init_backend(&r.dest, TRS_STORAGE_VERSION);
	r.dest.name = "none";
	r.dest.put = no_put;
	r.o = (trs_serve_options)TRS_SERVE_OPTIONS_INIT;
	r.o.notify_socket = name;
	r.o.watchdog_seconds = 4;
	r.o.queue_label = "flaky\nREADY=1"; /* a name from outside: it must not start a line of its own */
	r.o.stop = &stop_flag;
	r.o.archives = 1;
	stop_flag = 0;
	pthread_t t;
	CHECK(pthread_create(&t, NULL, serve_thread, &r) == 0);
	bool starting = false, failing = false, ready = false, stopping = false;
	int watchdogs = 0;
	double t0 = trs__now();
	while (!stopping && trs__now() - t0 < 20 * HARNESS_SLOWDOWN) {
		next_datagram(fd, got, sizeof(got));
		for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n")) {
			if (!strcmp(line, "READY=1")) {
				CHECK(failing);                             /* not before the queue answered */
				CHECK(atomic_load(&r.q.receives) >= 2);
				ready = true;
				__atomic_store_n(&stop_flag, 1, __ATOMIC_SEQ_CST);
			} else if (!strcmp(line, "WATCHDOG=1")) {
				watchdogs++;
			} else if (!strcmp(line, "STOPPING=1")) {
				CHECK(ready);
				stopping = true;
			} else if (starts_with(line, "STATUS=starting: first receive from flaky?READY=1")) {
				starting = true;
			} else if (starts_with(line, "STATUS=receive failed, retrying: connection refused?READY=1")) {
				CHECK(!ready);
				failing = true;
			} else {
				CHECK(starts_with(line, "STATUS="));
			}
		}
	}
	pthread_join(t, NULL);
	close(fd);
	CHECK(r.rc == 0);
	CHECK(starting && failing && ready && stopping);
	CHECK(watchdogs >= 2); /* through the second of backoff too */
}

int main(void)
{
	RUN(notify_reaches_a_socket_at_a_path);
	RUN(notify_reaches_an_abstract_socket);
	RUN(notify_refuses_addresses_it_cannot_reach);
	RUN(notify_to_a_manager_gone_fails_at_once);
	RUN(health_age_is_the_time_since_the_file_was_touched);
	RUN(the_manager_hears_ready_only_after_the_queue_answered_then_stopping);
	return harness_done();
}
