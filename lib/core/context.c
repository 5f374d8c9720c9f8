/* SPDX-License-Identifier: Apache-2.0 */
/* The context: settings shared by every operation of one library user. */
#include "aws/aws_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_MANIFEST_BYTES (1ull << 30)
#define DEFAULT_MAX_MANIFEST_OBJECTS 50000000ull
#define DEFAULT_MAX_DECOMPRESSED (16ull << 40)
#define DEFAULT_MAX_MEMORY (256ull << 20)
#define DEFAULT_WINDOW_LOG 31

static void ctx_defaults(trs_ctx *c)
{
	c->log_level = TRS_LOG_INFO;
	c->max_manifest_bytes = DEFAULT_MAX_MANIFEST_BYTES;
	c->max_manifest_objects = DEFAULT_MAX_MANIFEST_OBJECTS;
	c->max_decompressed_bytes = DEFAULT_MAX_DECOMPRESSED;
	c->max_window_log = DEFAULT_WINDOW_LOG;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c->workers = ncpu > 0 ? (unsigned int)ncpu : 1;
	c->max_memory = DEFAULT_MAX_MEMORY;
	c->max_inflight = 32;
}

const trs_ctx *trs__ctx_default(void)
{
	/* Immutable after first initialisation; every field is a plain value. */
	static trs_ctx def;
	static int ready;
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		trs_ctx tmp = {0};
		ctx_defaults(&tmp);
		tmp.region = (char *)"";
		def = tmp;
		__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	}
	return &def;
}

TRS_EXTERN(int) trs_ctx_new(trs_ctx **out, const trs_ctx_options *o, trs_error *err)
{
	*out = NULL;
	if (o && (o->version == 0 || o->version > TRS_CTX_OPTIONS_VERSION))
		return trs__error_set(err, TRS_EINVAL, "trs_ctx_options has unknown version %u", o->version);
	if (o && o->version >= 3 && o->verify != TRS_VERIFY_MD5 && o->verify != TRS_VERIFY_SIZE)
		return trs__error_set(err, TRS_EINVAL, "trs_ctx_options: verify must be TRS_VERIFY_MD5 or TRS_VERIFY_SIZE");
	if (o && o->max_window_log && (o->max_window_log < 10 || o->max_window_log > 31))
		return trs__error_set(err, TRS_EINVAL, "max_window_log must be between 10 and 31");
	trs_ctx *c = trs__calloc(1, sizeof(*c), err);
	if (!c)
		return TRS_ENOMEM;
	ctx_defaults(c);
	const char *region = NULL;
	if (o) {
		region = o->region;
		c->log = o->log;
		c->log_level = o->log_level;
		c->log_userdata = o->log_userdata;
		c->progress = o->progress;
		c->progress_userdata = o->progress_userdata;
		c->cancel = o->cancel;
		if (o->max_manifest_bytes)
			c->max_manifest_bytes = o->max_manifest_bytes;
		if (o->max_manifest_objects)
			c->max_manifest_objects = o->max_manifest_objects;
		if (o->max_decompressed_bytes)
			c->max_decompressed_bytes = o->max_decompressed_bytes;
		c->max_ratio = o->max_ratio;
		if (o->max_window_log)
			c->max_window_log = o->max_window_log;
		if (o->workers)
			c->workers = o->workers;
		if (o->max_memory)
			c->max_memory = o->max_memory;
		if (o->max_inflight)
			c->max_inflight = o->max_inflight;
		if (o->version >= 3)
			c->verify = o->verify; /* an older struct ends before it */
	}
	int rc = 0;
	const char *ca_bundle = o && o->version >= 2 ? o->ca_bundle : NULL;
	if (!ca_bundle || !*ca_bundle)
		ca_bundle = trs__env("AWS_CA_BUNDLE");
	if (o && o->version >= 2 && o->profile && *o->profile && !(c->profile = trs__strdup(o->profile, err)))
		rc = TRS_ENOMEM;
	if (rc == 0 && ca_bundle && !(c->ca_bundle = trs__strdup(ca_bundle, err)))
		rc = TRS_ENOMEM;
	if (rc == 0 && ca_bundle) {
		/* Said now, not as a TLS failure of the first request. */
		FILE *f = fopen(ca_bundle, "r");
		if (f)
			fclose(f);
		else
			rc = trs__error_errno(err, errno, "cannot read the CA bundle %s (--ca-bundle or AWS_CA_BUNDLE)",
					      ca_bundle);
		if (rc < 0 && err)
			err->code = TRS_EINVAL;
		if (rc < 0)
			rc = TRS_EINVAL;
	}
	const char *from = "--region";
	if (!region || !*region) {
		region = getenv("AWS_REGION");
		from = "AWS_REGION";
	}
	if (!region || !*region) {
		region = getenv("AWS_DEFAULT_REGION");
		from = "AWS_DEFAULT_REGION";
	}
	char *profile_region = NULL;
	if (rc == 0 && (!region || !*region)) {
		/* The region of the profile in use, as the AWS CLI reads it. */
		trs__aws_profile prof;
		if (trs__aws_profile_load(trs__aws_profile_name(c), &prof, NULL) == 0) {
			const char *r = trs__aws_profile_get(&prof, "region");
			if (r && !(profile_region = trs__strdup(r, err)))
				rc = TRS_ENOMEM;
			trs__aws_profile_free(&prof);
		}
		region = profile_region;
		from = "the AWS profile's region";
	}
	if (rc == 0 && region)
		rc = trs__region_check(region, from, err);
	if (rc == 0 && !(c->region = trs__strdup(region ? region : "", err)))
		rc = TRS_ENOMEM;
	free(profile_region);
	if (rc < 0) {
		trs_ctx_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

TRS_EXTERN(const char *) trs_ctx_region(const trs_ctx *ctx)
{
	return TRS_CTX(ctx)->region;
}

TRS_EXTERN(void) trs_ctx_free(trs_ctx *ctx)
{
	if (!ctx)
		return;
	free(ctx->region);
	free(ctx->profile);
	free(ctx->ca_bundle);
	free(ctx);
}
