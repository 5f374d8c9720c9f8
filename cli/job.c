/*
 * What `trs process` and `trs restore-backup` share: the options that name
 * where to talk to (region, endpoint, TLS, logging), and opening a job: the
 * context, the destination storage and the archive, a file or s3://.
 */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_common_option(int c, const char *arg, cli_common *cc, cli_log *log)
{
	switch (c) {
	case CLI_O_REGION: cc->region = arg; return 1;
	case CLI_O_ENDPOINT: cc->endpoint = arg; return 1;
	case CLI_O_NOVERIFY: cc->no_verify_ssl = 1; return 1;
	case CLI_O_LEVEL: return cli_log_level_parse(arg, &log->level) ? 1 : -1;
	case CLI_O_FORMAT: return cli_log_format_parse(arg, &log->json) ? 1 : -1;
	case CLI_O_PROFILE: cc->profile = arg; return *arg ? 1 : -1;
	case CLI_O_CABUNDLE: cc->ca_bundle = arg; return *arg ? 1 : -1;
	default: return 0;
	}
}

void cli_common_apply(const cli_common *cc, trs_ctx_options *co)
{
	co->region = cc->region;
	co->profile = cc->profile;
	co->ca_bundle = cc->ca_bundle;
}

const char *cli_option_name(const struct option *opts, int c)
{
	for (; opts->name; opts++)
		if (opts->val == c)
			return opts->name;
	return "?";
}

static volatile int canceled;

static void on_signal(int sig)
{
	(void)sig;
	canceled = 1;
}

int cli_job_open(cli_job *j, const char *archive, const char *dest, trs_ctx_options *co, const trs_s3_options *s3o,
		 cli_log *log)
{
	memset(j, 0, sizeof(*j));
	j->src = (trs_archive_source)TRS_ARCHIVE_SOURCE_INIT;
	co->log = cli_log_sink;
	co->log_level = log->level;
	co->log_userdata = log;
	co->cancel = &canceled;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	trs_error err = TRS_ERROR_INIT;
	int is_s3 = strncmp(archive, "s3://", 5) == 0;
	const char *slash = is_s3 ? strchr(archive + 5, '/') : NULL;
	int rc = trs_ctx_new(&j->ctx, co, &err);
	if (rc == 0 && !*trs_ctx_region(j->ctx)) {
		rc = TRS_EINVAL;
		snprintf(err.message, sizeof(err.message),
			 "no region: pass --region, set AWS_REGION, or set region in the AWS profile (only targets in "
			 "this service's region are restored)");
	}
	if (rc == 0)
		rc = dest ? trs_storage_open(&j->storage, j->ctx, dest, &err) : trs_storage_s3_new(&j->storage, j->ctx, s3o, &err);
	/* s3:// archives come from S3 even when the destination is a directory. */
	if (rc == 0 && is_s3 && dest)
		rc = trs_storage_s3_new(&j->source_storage, j->ctx, s3o, &err);
	if (rc == 0 && is_s3 && (!slash || slash == archive + 5 || !slash[1])) {
		rc = TRS_EINVAL;
		snprintf(err.message, sizeof(err.message), "'%s' is not s3://bucket/key", archive);
	}
	if (rc == 0 && is_s3 && !(j->archive_bucket = strndup(archive + 5, (size_t)(slash - (archive + 5))))) {
		rc = TRS_ENOMEM;
		snprintf(err.message, sizeof(err.message), "out of memory");
	}
	if (rc < 0) {
		cli_log_msg(log, TRS_LOG_ERROR, err.message, NULL, NULL);
		cli_job_close(j);
		return EXIT_USAGE;
	}
	if (is_s3) {
		j->archive_storage = j->source_storage ? j->source_storage : j->storage;
		j->archive_key = slash + 1;
	} else {
		j->src.path = archive;
	}
	return 0;
}

int cli_job_start(cli_job *j, trs_error *err)
{
	if (!j->archive_bucket)
		return 0;
	return trs_fetch_start(&j->fetch, j->archive_storage, j->archive_bucket, j->archive_key, j->ctx, NULL, &j->src,
			       err);
}

void cli_job_close(cli_job *j)
{
	trs_fetch_free(j->fetch);
	trs_storage_free(j->storage);
	trs_storage_free(j->source_storage);
	trs_ctx_free(j->ctx);
	free(j->archive_bucket);
	memset(j, 0, sizeof(*j));
}
