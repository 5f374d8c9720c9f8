/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A loopback TCP relay that delays each direction by D milliseconds, for
 * bench/stream.sh, bench/throttle.sh and bench/s3.sh: one thread, epoll, no
 * HTTP parsing on the forwarding path unless asked to throttle.
 *
 * usage: relay [-c RTTS] [-s SHARE] [-r SEED] LISTEN_PORT TARGET_PORT DELAY_MS [REQUEST_LOG]
 *
 * -c RTTS charges each new connection RTTS round trips (2*D each) before its
 * first bytes reach the server: the TCP handshake, which the loopback
 * connect does not pay. Default 1, as a TCP connection costs; 0 as before.
 * A TLS handshake is charged by the delay itself, since its messages are
 * chunks like any other (TLS 1.3: one more round trip before the request).
 * Connections are counted: "connections N" goes to stderr at exit, and
 * REQUEST_LOG gets a line per connection accepted (below).
 *
 * -s SHARE answers that share (0 to 1) of the client's requests with 503
 * SlowDown and S3's XML error body, as S3 does while it repartitions a busy
 * prefix, on the same keep-alive connection and after the same round trip
 * (2*D); the server never sees those requests. Which ones is drawn per
 * request from a generator seeded with SEED (default 1). For this the relay
 * frames the client's requests (head, then Content-Length bytes of body):
 * a connection whose request it cannot frame (a chunked body, a head over
 * 16 KiB, Expect: 100-continue) is forwarded as it is from there on, never
 * answered. -s 0 frames the requests and answers none: the same path as
 * with faults, for a baseline. With -s, on SIGTERM it prints
 * "requests N slowdown M" to stderr.
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
 * request starts a chunk; over TLS no chunk does), and one line per
 * connection accepted: "<seconds> <connection> open". Prints "ready" once
 * listening; exits on SIGTERM.
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
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 1024
#define MAX_QUEUED (4u << 20)
#define READ_SIZE 65536
#define MAX_HEAD 16384

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

/* Where the client's byte stream is, request by request (with -s only). */
typedef struct framing {
	char head[MAX_HEAD];  /* the head of the next request, until its blank line */
	size_t head_len;
	size_t body_left;     /* body bytes of the current request still to come */
	int swallowing;       /* the current request is answered here, not forwarded */
	int lost;             /* cannot frame this connection: forward the rest as it is */
} framing;

typedef struct pair {
	side up, down; /* up: client -> server */
	unsigned long id;
	double open_at; /* the connect's round trips are over: client bytes leave from then */
	int closed;
	int hung[2];    /* the client's (0) or server's (1) fd hung up: out of the epoll set */
	framing *fr;    /* with -s */
} pair;

static int ep;
static double delay;
static double connect_rtts = 1;
static unsigned long n_connections;
static FILE *request_log;
static double slowdown_share;
static int framing_on;  /* -s given, even -s 0: the same path with and without faults */
static uint64_t rng_state = 1;
static unsigned long n_requests, n_slowdowns;
static pair *all[MAX_PAIRS];
static volatile sig_atomic_t stop;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* When bytes the client sends now reach the server: after the delay, and
 * never before the connection's handshake round trips are over. */
static double due_up(const pair *p)
{
	double t = now();
	return (t < p->open_at ? p->open_at : t) + delay;
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

/* Append `len` bytes to a side's queue, due at `due`; -1 when out of memory. */
static int enqueue(side *s, const void *data, size_t len, double due)
{
	chunk *c = malloc(sizeof(*c) + len);
	if (!c)
		return -1;
	memcpy(c->data, data, len);
	c->next = NULL;
	c->due = due;
	c->len = len;
	c->off = 0;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->queued += len;
	return 0;
}

static double uniform01(void)
{
	/* xorshift64*: reproducible draws for a given seed, no libc state. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* The value of header `name` in a complete head, or NULL. */
static const char *header_value(const char *head, const char *name, size_t *len)
{
	size_t n = strlen(name);
	for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
		const char *h = line + 2;
		if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
			h += n + 1;
			while (*h == ' ' || *h == '\t')
				h++;
			*len = strcspn(h, "\r");
			return h;
		}
	}
	return NULL;
}

/* The 503 SlowDown S3 sends, queued to the client after the round trip. */
static int answer_slowdown(pair *p, int head_only)
{
	static const char body[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
				   "<Message>Please reduce your request rate.</Message><RequestId>RELAY</RequestId>"
				   "<HostId>relay</HostId></Error>";
	char answer[512];
	int n = snprintf(answer, sizeof(answer),
			 "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nx-amz-request-id: RELAY\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 head_only ? (size_t)0 : sizeof(body) - 1, head_only ? "" : body);
	n_slowdowns++;
	return enqueue(&p->down, answer, (size_t)n, due_up(p) + delay);
}

/* A complete head: forward it or answer it, and how much body follows. */
static int end_of_head(pair *p, const char *head, size_t len)
{
	framing *f = p->fr;
	size_t te_len = 0, expect_len = 0, cl_len = 0;
	const char *te = header_value(head, "Transfer-Encoding", &te_len);
	const char *expect = header_value(head, "Expect", &expect_len);
	const char *cl = header_value(head, "Content-Length", &cl_len);
	n_requests++;
	if (request_log)
		log_request(p, (const unsigned char *)head, len);
	f->body_left = cl ? strtoull(cl, NULL, 10) : 0;
	if (te || (expect && expect_len)) {
		f->lost = 1; /* the body's end is not ours to find: forward from here on */
		return enqueue(&p->up, head, len, due_up(p));
	}
	f->swallowing = uniform01() < slowdown_share;
	if (!f->swallowing)
		return enqueue(&p->up, head, len, due_up(p));
	if (f->body_left == 0) {
		f->swallowing = 0;
		return answer_slowdown(p, strncmp(head, "HEAD ", 5) == 0);
	}
	return 0;
}

/* Bytes from the client under -s: split into requests, each forwarded or answered. */
static int frame(pair *p, const char *d, size_t n)
{
	framing *f = p->fr;
	while (n > 0) {
		if (f->lost)
			return enqueue(&p->up, d, n, due_up(p));
		if (f->body_left) {
			size_t take = n < f->body_left ? n : f->body_left;
			if (!f->swallowing && enqueue(&p->up, d, take, due_up(p)) < 0)
				return -1;
			f->body_left -= take;
			d += take;
			n -= take;
			if (!f->body_left && f->swallowing) {
				f->swallowing = 0;
				if (answer_slowdown(p, 0) < 0)
					return -1;
			}
			continue;
		}
		/* The head, up to its blank line: bytes go into f->head one at a
		 * time until it ends (heads are a few hundred bytes). */
		size_t used = 0;
		while (used < n && f->head_len < MAX_HEAD - 1) {
			f->head[f->head_len++] = d[used++];
			if (f->head_len >= 4 && !memcmp(f->head + f->head_len - 4, "\r\n\r\n", 4))
				break;
		}
		d += used;
		n -= used;
		f->head[f->head_len] = 0;
		if (f->head_len >= 4 && !memcmp(f->head + f->head_len - 4, "\r\n\r\n", 4)) {
			size_t len = f->head_len;
			f->head_len = 0;
			if (end_of_head(p, f->head, len) < 0)
				return -1;
		} else if (f->head_len >= MAX_HEAD - 1) {
			f->lost = 1;
			if (enqueue(&p->up, f->head, f->head_len, due_up(p)) < 0)
				return -1;
		}
	}
	return 0;
}

static void read_side(pair *p, unsigned int slot, int which)
{
	static unsigned char buf[READ_SIZE];
	side *s = which ? &p->down : &p->up;
	while (!s->eof_read && s->queued < MAX_QUEUED) {
		ssize_t n = read(s->from, buf, READ_SIZE);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			s->eof_read = 1;
			break;
		}
		int rc;
		if (s->is_request && p->fr) {
			rc = frame(p, (const char *)buf, (size_t)n);
		} else {
			if (s->is_request && request_log)
				log_request(p, buf, (size_t)n);
			rc = enqueue(s, buf, (size_t)n, s->is_request ? due_up(p) : now() + delay);
		}
		if (rc < 0) {
			pair_close(p);
			return;
		}
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
		if (p && framing_on && !(p->fr = calloc(1, sizeof(*p->fr)))) {
			free(p);
			p = NULL;
		}
		if (!p) {
			close(c);
			if (s >= 0)
				close(s);
			continue;
		}
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		p->id = (*next_id)++;
		p->open_at = now() + connect_rtts * 2 * delay;
		n_connections++;
		if (request_log)
			fprintf(request_log, "%.6f %lu open\n", now(), p->id);
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
	free(p->fr);
	free(p);
}

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const char usage[] =
		"usage: relay [-c RTTS] [-s SHARE] [-r SEED] LISTEN_PORT TARGET_PORT DELAY_MS [REQUEST_LOG]\n";
	int opt;
	while ((opt = getopt(argc, argv, "c:s:r:")) != -1) {
		if (opt == 'c') {
			connect_rtts = atof(optarg);
		} else if (opt == 's') {
			slowdown_share = atof(optarg);
			framing_on = 1;
		} else if (opt == 'r') {
			rng_state = strtoull(optarg, NULL, 10) | 1; /* xorshift needs a nonzero state */
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc < 4 || argc > 5 || slowdown_share < 0 || slowdown_share > 1 || connect_rtts < 0) {
		fputs(usage, stderr);
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
	if (framing_on)
		fprintf(stderr, "requests %lu slowdown %lu\n", n_requests, n_slowdowns);
	fprintf(stderr, "connections %lu\n", n_connections);
	return 0;
}
