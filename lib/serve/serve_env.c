/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service's configuration from the environment: the Python container's
 * names (SQS_QUEUE_URL, CATALOG_BUCKET, and the tunables its code keeps as
 * constants, read here as variables with the same defaults), MAX_ARCHIVES,
 * TRS_HEALTH_FILE, and what systemd gives a unit of Type=notify
 * (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID). A program linking libtrs
 * gets the same drop-in behaviour as `trs serve`.
 */
#include "internal.h"
#include "trs/serve.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_WORKERS_LIMIT 1024

/* 1 and *out when `name` holds a whole number in [lo, hi]; 0 when unset; TRS_EINVAL otherwise. */
static int env_uint(const char *name, unsigned long lo, unsigned long hi, unsigned int *out, trs_error *err)
{
	const char *v = trs__env_nonempty(name);
	if (!v)
		return 0;
	char *end = NULL;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (*v < '0' || *v > '9' || errno || !end || *end || n < lo || n > hi)
		return trs__error_set(err, TRS_EINVAL, "bad value '%.64s' for %s (a whole number from %lu to %lu)", v,
				      name, lo, hi);
	*out = (unsigned int)n;
	return 1;
}

/* WATCHDOG_USEC, in seconds into *seconds (0: no watchdog for this process).
 * systemd sets WATCHDOG_PID too when the variables may reach children: the
 * watchdog is then only the named process's. */
static int env_watchdog(double *seconds, trs_error *err)
{
	const char *v = trs__env_nonempty("WATCHDOG_USEC");
	*seconds = 0;
	if (!v)
		return 0;
	char *end = NULL;
	errno = 0;
	unsigned long long usec = strtoull(v, &end, 10);
	if (*v < '0' || *v > '9' || errno || !end || *end || usec == 0)
		return trs__error_set(err, TRS_EINVAL, "bad value '%.64s' for WATCHDOG_USEC (microseconds, above 0)", v);
	const char *pid = trs__env_nonempty("WATCHDOG_PID");
	if (pid) {
		errno = 0;
		unsigned long long owner = strtoull(pid, &end, 10);
		if (errno || !end || *end || owner != (unsigned long long)getpid())
			return 0;
	}
	*seconds = (double)usec / 1e6;
	return 0;
}

TRS_EXTERN(int) trs_serve_options_from_env(trs_serve_options *o, trs_serve_env *env, trs_error *err)
{
	if (!o || o->version == 0 || o->version > TRS_SERVE_OPTIONS_VERSION)
		return trs__error_set(err, TRS_EINVAL, "trs_serve_options_from_env needs options at a known version");
	if (env && (env->version == 0 || env->version > TRS_SERVE_ENV_VERSION))
		return trs__error_set(err, TRS_EINVAL, "trs_serve_env has unknown version %u", env ? env->version : 0);
	unsigned int v;
	int rc;
	if ((rc = env_uint("MAX_MESSAGES_PER_BATCH", 1, TRS_QUEUE_MAX_MESSAGES, &v, err)) < 0)
		return rc;
	if (rc)
		o->max_messages = v;
	if ((rc = env_uint("VISIBILITY_TIMEOUT", 1, TRS_QUEUE_MAX_VISIBILITY, &v, err)) < 0)
		return rc;
	if (rc)
		o->visibility_timeout = v;
	if ((rc = env_uint("POLL_INTERVAL", 0, TRS_QUEUE_MAX_WAIT, &v, err)) < 0)
		return rc;
	if (rc) {
		o->wait_seconds = v;
		o->wait_set = 1;
	}
	if (o->version >= 2) {
		if ((rc = env_uint("MAX_ARCHIVES", 1, TRS_SERVE_MAX_ARCHIVES, &v, err)) < 0)
			return rc;
		if (rc)
			o->archives = v;
		const char *health = trs__env_nonempty("TRS_HEALTH_FILE");
		if (health)
			o->health_file = health;
	}
	if (o->version >= 3) {
		const char *sock = trs__env_nonempty("NOTIFY_SOCKET");
		if (sock)
			o->notify_socket = sock;
		double watchdog;
		if ((rc = env_watchdog(&watchdog, err)) < 0)
			return rc;
		if (watchdog > 0)
			o->watchdog_seconds = watchdog;
	}
	unsigned int workers = 0;
	if ((rc = env_uint("MAX_WORKERS", 1, MAX_WORKERS_LIMIT, &workers, err)) < 0)
		return rc;
	if (env) {
		env->queue_url = trs__env_nonempty("SQS_QUEUE_URL");
		env->catalog_bucket = trs__env_nonempty("CATALOG_BUCKET");
		env->workers = workers;
	}
	return 0;
}
