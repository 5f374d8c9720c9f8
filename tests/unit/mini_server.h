/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny scripted HTTP/1.1 server on 127.0.0.1 for unit tests: it stands in
 * for the ECS and EC2 metadata endpoints, STS and S3. One thread, one
 * connection at a time, "Connection: close" on every answer; it answers
 * through a handler the test supplies and records every request.
 * Loopback only; it stops when asked or after MINI_SERVER_LIFETIME_S.
 */
#ifndef TRS_TEST_MINI_SERVER_H
#define TRS_TEST_MINI_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MINI_SERVER_LIFETIME_S 120
#define MINI_MAX_REQUESTS 128
#define MINI_MAX_HEADERS 32

typedef struct mini_request {
	char method[16];
	char target[2048];
	char header_names[MINI_MAX_HEADERS][64];
	char header_values[MINI_MAX_HEADERS][2048];
	int nheaders;
	char *body;
	size_t body_len;
} mini_request;

typedef struct mini_response {
	int status;
	char headers[2048];  /* extra header lines, each ending in \r\n */
	char *body;          /* malloc'ed or NULL */
	size_t body_len;
	int drop;            /* close the connection without answering */
	size_t send_only;    /* nonzero: announce body_len but send only this many bytes, then close */
} mini_response;

typedef void (*mini_handler)(const mini_request *req, mini_response *resp, void *userdata);

typedef struct mini_server {
	int listen_fd;
	int port;
	pthread_t thread;
	atomic_int stop;
	mini_handler handler;
	void *userdata;
	pthread_mutex_t lock;
	mini_request log[MINI_MAX_REQUESTS]; /* bodies freed at stop */
	int nlog;
} mini_server;

static inline const char *mini_header(const mini_request *r, const char *name)
{
	for (int i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->header_names[i], name) == 0)
			return r->header_values[i];
	return NULL;
}

static inline void mini_set_body(mini_response *resp, const char *text)
{
	resp->body_len = strlen(text);
	resp->body = malloc(resp->body_len + 1);
	if (resp->body)
		memcpy(resp->body, text, resp->body_len + 1);
	else
		resp->body_len = 0;
}

static int mini_read_request(int fd, mini_request *r)
{
	char buf[65536];
	size_t len = 0;
	char *end = NULL;
	while (!end) {
		if (len == sizeof(buf) - 1)
			return -1;
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	memset(r, 0, sizeof(*r));
	char *line_end = strstr(buf, "\r\n");
	*line_end = '\0';
	if (sscanf(buf, "%15s %2047s", r->method, r->target) != 2)
		return -1;
	char *p = line_end + 2;
	while (p < end && r->nheaders < MINI_MAX_HEADERS) {
		char *le = strstr(p, "\r\n");
		*le = '\0';
		char *colon = strchr(p, ':');
		if (colon) {
			*colon = '\0';
			char *v = colon + 1;
			while (*v == ' ')
				v++;
			snprintf(r->header_names[r->nheaders], sizeof(r->header_names[0]), "%s", p);
			snprintf(r->header_values[r->nheaders], sizeof(r->header_values[0]), "%s", v);
			r->nheaders++;
		}
		p = le + 2;
	}
	const char *cl = mini_header(r, "Content-Length");
	size_t want = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
	r->body = malloc(want + 1);
	if (!r->body)
		return -1;
	size_t have = len - (size_t)(end + 4 - buf);
	if (have > want)
		have = want;
	memcpy(r->body, end + 4, have);
	while (have < want) {
		ssize_t n = recv(fd, r->body + have, want - have, 0);
		if (n <= 0) {
			free(r->body);
			r->body = NULL;
			return -1;
		}
		have += (size_t)n;
	}
	r->body[want] = '\0';
	r->body_len = want;
	return 0;
}

static void mini_send_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

static void *mini_thread(void *arg)
{
	mini_server *s = arg;
	time_t deadline = time(NULL) + MINI_SERVER_LIFETIME_S;
	while (!atomic_load(&s->stop) && time(NULL) < deadline) {
		struct pollfd pfd = {s->listen_fd, POLLIN, 0};
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int fd = accept(s->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		mini_request req;
		if (mini_read_request(fd, &req) == 0) {
			mini_response resp;
			memset(&resp, 0, sizeof(resp));
			resp.status = 200;
			s->handler(&req, &resp, s->userdata);
			pthread_mutex_lock(&s->lock);
			if (s->nlog < MINI_MAX_REQUESTS)
				s->log[s->nlog++] = req;
			else
				free(req.body);
			pthread_mutex_unlock(&s->lock);
			if (!resp.drop) {
				char head[4096];
				int n = snprintf(head, sizeof(head),
						 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
						 resp.status, resp.body_len, resp.headers);
				mini_send_all(fd, head, (size_t)n);
				if (strcmp(req.method, "HEAD") != 0 && resp.body_len)
					mini_send_all(fd, resp.body,
						      resp.send_only && resp.send_only < resp.body_len ? resp.send_only
												       : resp.body_len);
			}
			free(resp.body);
		}
		close(fd);
	}
	return NULL;
}

static inline int mini_start(mini_server *s, mini_handler handler, void *userdata)
{
	memset(s, 0, sizeof(*s));
	s->handler = handler;
	s->userdata = userdata;
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->listen_fd < 0)
		return -1;
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	socklen_t alen = sizeof(a);
	if (bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->listen_fd, 16) < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) < 0) {
		close(s->listen_fd);
		return -1;
	}
	s->port = ntohs(a.sin_port);
	if (pthread_create(&s->thread, NULL, mini_thread, s) != 0) {
		close(s->listen_fd);
		return -1;
	}
	return 0;
}

static inline int mini_count(mini_server *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->nlog;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static inline void mini_stop(mini_server *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	for (int i = 0; i < s->nlog; i++)
		free(s->log[i].body);
	pthread_mutex_destroy(&s->lock);
}

#endif
