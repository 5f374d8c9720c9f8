/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service manager's notification socket (systemd's sd_notify protocol,
 * written directly: docs/architecture.md, "Serve", says why not libsystemd).
 *
 * A notification is one datagram of newline-separated KEY=VALUE lines
 * ("READY=1\nSTATUS=serving") sent to the AF_UNIX socket that
 * $NOTIFY_SOCKET names: a path, or "@name" for a socket in Linux's
 * abstract namespace. The kernel attaches the sender's credentials, which
 * is how the manager knows the datagram is from its service.
 */
#ifndef TRS_SERVE_NOTIFY_H
#define TRS_SERVE_NOTIFY_H

#include "util.h"

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef struct trs__notify {
	int fd; /* -1: no socket */
	struct sockaddr_un addr;
	socklen_t addr_len;
} trs__notify;

#define TRS__NOTIFY_INIT {-1, {0}, 0}

/* Open the socket `name` names ($NOTIFY_SOCKET). 0; TRS_EINVAL for an
 * address this protocol cannot reach (relative, empty, too long, vsock:);
 * TRS_EIO when no socket can be made. `n` stays closed on error. */
int trs__notify_open(trs__notify *n, const char *name, trs_error *err);

/* Send `state` ("KEY=VALUE" lines) as one datagram. A closed `n` sends
 * nothing and returns 0; TRS_EIO (errno in err) when the send failed, which
 * never blocks for more than a second. */
int trs__notify_send(trs__notify *n, const char *state, trs_error *err);

void trs__notify_close(trs__notify *n);

#endif
