/*
 * A loopback TCP relay that delays each direction by D milliseconds, for
 * bench/stream.sh: one thread, epoll, no HTTP parsing on the forwarding path.
 *
 * usage: relay LISTEN_PORT TARGET_PORT DELAY_MS [REQUEST_LOG]
 *
 * Each chunk read is written to the other side D ms after it arrived, so a
 * request/answer exchange costs 2*D more, as a network with that one-way
 * latency would, while chunks in flight overlap (throughput is not limited).
 * Connections are relayed one to one, so client keep-alive is kept. Both
 * ends are 127.0.0.1 only. Bounded: at most MAX_PAIRS connections, and a side
 * is no longer read while more than MAX_QUEUED bytes wait to go the other way.
 *
 * REQUEST_LOG, when given, gets one line per request the client starts:
 * "<seconds> <connection> <request line>" for each chunk from a client that
 * begins with an HTTP method (clients here send no pipelined requests, so a
 * request starts a chunk). Prints "ready" once listening; exits on SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 1024
#define MAX_QUEUED (4u << 20)
#define READ_SIZE 65536

typedef struct chunk {
	struct chunk *next;
	double due;
	size_t len, off;
	unsigned char data[];
} chunk;

/* One direction: bytes read from `from`, written to `to` when due. */
typedef struct side {
	int from, to;
	chunk *head, *tail;
	size_t queued;
	int eof_read;   /* `from` ended: shut `to` down once the queue is empty */
	int shut;
	int want_write; /* `to` would block: wait for EPOLLOUT */
	int is_request; /* client to server */
} side;

typedef struct pair {
	side up, down; /* up: client -> server */
	unsigned long id;
	int closed;
	int hung[2];    /* the client's (0) or server's (1) fd hung up: out of the epoll set */
} pair;

static int ep;
static double delay;
static FILE *request_log;
static pair *all[MAX_PAIRS];
static volatile sig_atomic_t stop;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pair_close(pair *p)
{
	if (p->closed)
		return;
	p->closed = 1; /* freed by the main loop: events of this turn may still name it */
	close(p->up.from);
	close(p->down.from);
}

/* The epoll interest of the client's (which 0) or server's (1) fd: reading
 * while its reading side has room, writing while its writing side is blocked. */
static void interest(pair *p, unsigned int slot, int which)
{
	if (p->closed || p->hung[which])
		return;
	side *rd = which ? &p->down : &p->up, *wr = which ? &p->up : &p->down;
	struct epoll_event e = {.data.u64 = ((uint64_t)slot << 1) | (uint64_t)which};
	if (!rd->eof_read && rd->queued < MAX_QUEUED)
		e.events |= EPOLLIN;
	if (wr->want_write)
		e.events |= EPOLLOUT;
	epoll_ctl(ep, EPOLL_CTL_MOD, rd->from, &e);
}

static void log_request(const pair *p, const unsigned char *d, size_t n)
{
	static const char *const methods[] = {"GET ", "PUT ", "POST ", "HEAD ", "DELETE "};
	for (size_t i = 0; i < sizeof(methods) / sizeof(*methods); i++) {
		size_t m = strlen(methods[i]);
		if (n > m && !memcmp(d, methods[i], m)) {
			const unsigned char *eol = memchr(d, '\r', n);
			int len = (int)(eol ? (size_t)(eol - d) : (n < 200 ? n : 200));
			fprintf(request_log, "%.6f %lu %.*s\n", now(), p->id, len, (const char *)d);
			return;
		}
	}
}

static void read_side(pair *p, unsigned int slot, int which)
{
	side *s = which ? &p->down : &p->up;
	while (!s->eof_read && s->queued < MAX_QUEUED) {
		chunk *c = malloc(sizeof(*c) + READ_SIZE);
		if (!c) {
			pair_close(p);
			return;
		}
		ssize_t n = read(s->from, c->data, READ_SIZE);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			free(c);
			break;
		}
		if (n <= 0) {
			free(c);
			s->eof_read = 1;
			break;
		}
		if (s->is_request && request_log)
			log_request(p, c->data, (size_t)n);
		c->next = NULL;
		c->due = now() + delay;
		c->len = (size_t)n;
		c->off = 0;
		if (s->tail)
			s->tail->next = c;
		else
			s->head = c;
		s->tail = c;
		s->queued += (size_t)n;
	}
	interest(p, slot, which);
}

/* Write what is due on one side; returns its next due time (0: none, or blocked until EPOLLOUT). */
static double write_side(pair *p, unsigned int slot, int which, double t)
{
	side *s = which ? &p->down : &p->up;
	int changed = 0, blocked = 0;
	while (s->head && s->head->due <= t) {
		chunk *c = s->head;
		ssize_t n = write(s->to, c->data + c->off, c->len - c->off);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			blocked = 1;
			break;
		}
		if (n < 0) {
			pair_close(p);
			return 0;
		}
		changed = 1;
		c->off += (size_t)n;
		s->queued -= (size_t)n;
		if (c->off < c->len)
			continue;
		s->head = c->next;
		if (!s->head)
			s->tail = NULL;
		free(c);
	}
	if (blocked != s->want_write) {
		s->want_write = blocked;
		changed = 1;
	}
	if (changed) {
		interest(p, slot, which);  /* reads `from`: room again */
		interest(p, slot, !which); /* `to`: writing interest */
	}
	if (!s->head && s->eof_read && !s->shut) {
		s->shut = 1;
		shutdown(s->to, SHUT_WR);
	}
	return s->head && !blocked ? s->head->due : 0;
}

static int connect_target(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void accept_all(int ls, int target_port, unsigned long *next_id)
{
	int c, one = 1;
	while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		unsigned int slot = 0;
		while (slot < MAX_PAIRS && all[slot])
			slot++;
		int s = slot < MAX_PAIRS ? connect_target(target_port) : -1;
		pair *p = s >= 0 ? calloc(1, sizeof(*p)) : NULL;
		if (!p) {
			close(c);
			if (s >= 0)
				close(s);
			continue;
		}
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		p->id = (*next_id)++;
		p->up = (side){.from = c, .to = s, .is_request = 1};
		p->down = (side){.from = s, .to = c};
		struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)slot << 1};
		epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
		e.data.u64 |= 1;
		epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
		all[slot] = p;
	}
}

static void pair_free(pair *p)
{
	for (side *s = &p->up; s; s = s == &p->up ? &p->down : NULL)
		for (chunk *c = s->head, *n; c; c = n) {
			n = c->next;
			free(c);
		}
	free(p);
}

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: relay LISTEN_PORT TARGET_PORT DELAY_MS [REQUEST_LOG]\n");
		return 2;
	}
	int listen_port = atoi(argv[1]), target_port = atoi(argv[2]);
	delay = atof(argv[3]) / 1000.0;
	if (argc == 5 && !(request_log = fopen(argv[4], "w"))) {
		perror(argv[4]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_stop};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 512) < 0) {
		perror("relay: listen");
		return 2;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &le);
	printf("ready\n");
	fflush(stdout);

	unsigned long next_id = 0;
	while (!stop) {
		double t = now(), next = 0;
		for (unsigned int i = 0; i < MAX_PAIRS; i++) {
			pair *p = all[i];
			for (int which = 0; p && which < 2 && !p->closed; which++) {
				double due = write_side(p, i, which, t);
				if (due && (!next || due < next))
					next = due;
			}
			if (p && !p->closed && p->up.shut && p->down.shut)
				pair_close(p);
			if (p && p->closed) {
				pair_free(p);
				all[i] = NULL;
			}
		}
		int timeout = -1;
		if (next) {
			double ms = (next - now()) * 1000.0;
			timeout = ms <= 0 ? 0 : (int)ms + 1;
		}
		struct epoll_event ev[64];
		int n = epoll_wait(ep, ev, 64, timeout);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == UINT64_MAX) {
				accept_all(ls, target_port, &next_id);
				continue;
			}
			unsigned int slot = (unsigned int)(ev[i].data.u64 >> 1);
			int which = (int)(ev[i].data.u64 & 1);
			pair *p = all[slot];
			if (!p || p->closed)
				continue;
			side *rd = which ? &p->down : &p->up;
			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				read_side(p, slot, which);
			if (!p->closed && rd->eof_read && (ev[i].events & (EPOLLHUP | EPOLLERR))) {
				/* Reported whatever the interest: out of the set, or the loop would spin. */
				epoll_ctl(ep, EPOLL_CTL_DEL, rd->from, NULL);
				p->hung[which] = 1;
			}
		}
		if (request_log)
			fflush(request_log);
	}
	return 0;
}
