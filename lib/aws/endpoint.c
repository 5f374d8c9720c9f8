/* SPDX-License-Identifier: Apache-2.0 */
/* Endpoints from the environment, one rule for every AWS service (see lib/aws/retry.h). */
#include "retry.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

const char *trs__aws_endpoint(const char *service_env, const char *given)
{
	if (given && *given)
		return given;
	const char *ignore = trs__env_nonempty("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	if (ignore && strcasecmp(ignore, "true") == 0)
		return NULL;
	char name[64];
	snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", service_env);
	const char *v = trs__env_nonempty(name);
	return v ? v : trs__env_nonempty("AWS_ENDPOINT_URL");
}
