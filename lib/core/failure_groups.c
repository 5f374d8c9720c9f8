/* SPDX-License-Identifier: Apache-2.0 */
/* Failed puts grouped by cause: bucket, error code and the service's code (lib/core/failure_groups.h). */
#include "failure_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static trs__failure_group *find(trs__failure_groups *gs, const char *bucket, int code, const char *aws_code)
{
	for (size_t i = 0; i < gs->n; i++) {
		trs__failure_group *g = &gs->g[i];
		if (g->code == code && !strcmp(g->bucket, bucket) && !strcmp(g->aws_code, aws_code))
			return g;
	}
	return NULL;
}

static trs__failure_group *add_group(trs__failure_groups *gs, const char *bucket, int code, const char *aws_code,
				     const char *message)
{
	if (gs->n == TRS__FAILURE_GROUPS_MAX)
		return NULL;
	if (!gs->g && !(gs->g = calloc(TRS__FAILURE_GROUPS_MAX, sizeof(*gs->g))))
		return NULL;
	trs__failure_group *g = &gs->g[gs->n];
	memset(g, 0, sizeof(*g));
	g->bucket = strdup(bucket);
	g->message = strdup(message);
	if (!g->bucket || !g->message) {
		free(g->bucket);
		free(g->message);
		return NULL;
	}
	g->code = code;
	snprintf(g->aws_code, sizeof(g->aws_code), "%s", aws_code);
	gs->n++;
	return g;
}

void trs__failure_groups_add(trs__failure_groups *gs, const char *relative_key, const char *bucket, const char *key,
			     int code, const char *aws_code, const char *message)
{
	aws_code = aws_code ? aws_code : "";
	trs__failure_group *g = find(gs, bucket, code, aws_code);
	if (!g)
		g = add_group(gs, bucket, code, aws_code, message);
	if (!g) {
		gs->other++;
		return;
	}
	if (g->count < TRS__FAILURE_FIRST_KEYS)
		g->first_keys[g->count] = strdup(key); /* NULL when out of memory: one key fewer named */
	if (!g->count)
		g->relative_key = strdup(relative_key);
	g->count++;
}

void trs__failure_groups_log(trs__failure_groups *gs, const trs_ctx *ctx, const char *archive)
{
	for (size_t i = 0; i < gs->n; i++) {
		trs__failure_group *g = &gs->g[i];
		char count[24], keys[3 * 140 + 16] = "", line[TRS_ERROR_MESSAGE_SIZE * 2 + 128];
		snprintf(count, sizeof(count), "%llu", (unsigned long long)g->count);
		for (size_t k = 0; k < TRS__FAILURE_FIRST_KEYS && k < g->count; k++) {
			if (!g->first_keys[k])
				continue;
			size_t used = strlen(keys);
			snprintf(keys + used, sizeof(keys) - used, "%s%s", used ? ", " : "", TRS__SHORT(g->first_keys[k]));
		}
		if (g->count == 1)
			snprintf(line, sizeof(line), "%s", g->message);
		else
			snprintf(line, sizeof(line), "%s objects failed to bucket %s for one cause (the first: %s%s): %s",
				 count, g->bucket, keys, g->count > TRS__FAILURE_FIRST_KEYS ? ", ..." : "", g->message);
		trs__log(ctx, TRS_LOG_ERROR, line, "archive", archive, "relative_key", g->count == 1 ? g->relative_key : NULL,
			 "bucket", g->bucket, "key", g->count == 1 ? g->first_keys[0] : NULL, "objects_failed", count, "error", trs_strerror(g->code),
			 "aws_code", *g->aws_code ? g->aws_code : NULL, "first_keys", g->count > 1 ? keys : NULL, NULL);
	}
	if (gs->other) {
		char count[24];
		snprintf(count, sizeof(count), "%llu", (unsigned long long)gs->other);
		trs__log(ctx, TRS_LOG_ERROR,
			 "more objects failed, for causes beyond the ones above; the report (--json) lists each", "archive",
			 archive, "objects_failed", count, NULL);
	}
	trs__failure_groups_free(gs);
}

void trs__failure_groups_free(trs__failure_groups *gs)
{
	for (size_t i = 0; i < gs->n; i++) {
		free(gs->g[i].bucket);
		free(gs->g[i].message);
		free(gs->g[i].relative_key);
		for (size_t k = 0; k < TRS__FAILURE_FIRST_KEYS; k++)
			free(gs->g[i].first_keys[k]);
	}
	free(gs->g);
	memset(gs, 0, sizeof(*gs));
}
