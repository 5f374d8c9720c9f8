/* SPDX-License-Identifier: Apache-2.0 */
/* The service manager's notification socket: lib/serve/notify.h. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

int trs__notify_open(trs__notify *n, const char *name, trs_error *err)
{
	*n = (trs__notify)TRS__NOTIFY_INIT;
	size_t len = name ? strlen(name) : 0;
	/* '@' names an abstract socket, '/' a path; anything else (a relative path,
	 * systemd's newer "vsock:" addresses) is not a socket we can reach. */
	if (len < 2 || (name[0] != '/' && name[0] != '@'))
		return trs__error_set(err, TRS_EINVAL,
				      "NOTIFY_SOCKET '%.64s' is neither an absolute path nor @ and an abstract name",
				      name ? name : "");
	if (len >= sizeof(n->addr.sun_path))
		return trs__error_set(err, TRS_EINVAL, "NOTIFY_SOCKET is longer than a unix socket address (%zu bytes)",
				      sizeof(n->addr.sun_path) - 1);
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, name, len);
	if (name[0] == '@') {
		/* An abstract name is its bytes after a NUL, with no terminator: the length says where it ends. */
		n->addr.sun_path[0] = '\0';
		n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0)
		return trs__error_errno(err, errno, "cannot make a socket for NOTIFY_SOCKET");
	/* A manager too busy to read its socket must not stall the loop that reports to it. */
	struct timeval limit = {1, 0};
	(void)setsockopt(n->fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
	return 0;
}

int trs__notify_send(trs__notify *n, const char *state, trs_error *err)
{
	if (n->fd < 0)
		return 0;
	ssize_t sent;
	do
		sent = sendto(n->fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addr_len);
	while (sent < 0 && errno == EINTR);
	if (sent < 0)
		return trs__error_errno(err, errno, "cannot notify the service manager");
	return 0;
}

void trs__notify_close(trs__notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
