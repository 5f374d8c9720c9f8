/* SPDX-License-Identifier: Apache-2.0 */
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
#include <unistd.h>

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

int cli_verify_option(int c, const char *arg, trs_ctx_options *co, trs_s3_options *s3o)
{
	switch (c) {
	case CLI_O_VERIFY:
		if (!strcmp(arg, "md5"))
			co->verify = TRS_VERIFY_MD5;
		else if (!strcmp(arg, "size"))
			co->verify = TRS_VERIFY_SIZE;
		else
			return -1;
		return 1;
	case CLI_O_VERIFYLOCAL: s3o->verify_local = 1; return 1;
	case CLI_O_NOBUCKETKEY: s3o->no_bucket_key = 1; return 1;
	default: return 0;
	}
}

int cli_write_option(int c, const char *arg, trs_process_options *po)
{
	switch (c) {
	case CLI_O_OVERWRITE:
		if (!strcmp(arg, "newer"))
			po->overwrite = TRS_OVERWRITE_NEWER;
		else if (!strcmp(arg, "always"))
			po->overwrite = TRS_OVERWRITE_ALWAYS;
		else
			return -1;
		return 1;
	case CLI_O_FOREIGN:
		if (!strcmp(arg, "fail"))
			po->foreign_archives = TRS_FOREIGN_FAIL;
		else if (!strcmp(arg, "skip"))
			po->foreign_archives = TRS_FOREIGN_SKIP;
		else
			return -1;
		return 1;
	default: return 0;
	}
}

const char *cli_option_name(const struct option *opts, int c)
{
	for (; opts->name; opts++)
		if (opts->val == c)
			return opts->name;
	return "?";
}

static volatile int canceled;
static volatile sig_atomic_t stopped_by;

/* The library's threads read `canceled` with atomic loads: an atomic store
 * (lock-free, so async-signal-safe), after `stopped_by` is set. */
static void on_signal(int sig)
{
	stopped_by = sig;
	__atomic_store_n(&canceled, 1, __ATOMIC_SEQ_CST);
}

int cli_job_exit_code(int rc)
{
	/* Stopped by a signal: 128 + its number, as shells report it (SIGINT: 130). */
	if (rc == TRS_ECANCELED && stopped_by)
		return 128 + (int)stopped_by;
	return cli_exit_code(rc);
}

int cli_job_open(cli_job *j, const char *archive, const char *dest, trs_ctx_options *co, const trs_s3_options *s3o,
		 trs_storage *plan, cli_log *log)
{
	memset(j, 0, sizeof(*j));
	j->src = (trs_archive_source)TRS_ARCHIVE_SOURCE_INIT;
	j->in.spool_fd = -1;
	co->log = cli_log_sink;
	co->log_level = log->level;
	co->log_userdata = log;
	co->cancel = &canceled;
	/* No SA_RESTART: a read of stdin that waits returns EINTR and sees the cancel. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

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
	if (rc == 0 && dest && plan && strstr(dest, "://") && strncmp(dest, "file://", 7) != 0 &&
	    strncmp(dest, "s3://", 5) != 0) {
		rc = TRS_EINVAL;
		snprintf(err.message, sizeof(err.message), "unknown storage URL '%s': use file://DIR or s3://", dest);
	}
	/* A dry run writes to the plan, never to the destination (which is not even opened). */
	if (rc == 0 && plan) {
		j->storage = plan;
		plan = NULL;
	} else if (rc == 0) {
		rc = dest ? trs_storage_open(&j->storage, j->ctx, dest, &err) : trs_storage_s3_new(&j->storage, j->ctx, s3o, &err);
	}
	/* s3:// archives come from S3 even when the destination is a directory (or a dry run's plan). */
	if (rc == 0 && is_s3 && strcmp(trs_storage_name(j->storage), "s3") != 0)
		rc = trs_storage_s3_new(&j->source_storage, j->ctx, s3o, &err);
	if (rc == 0 && strcmp(archive, "-") == 0)
		rc = cli_stdin_source(&j->in, &j->src, false, &canceled, "process", &err);
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
		trs_storage_free(plan); /* not taken */
		cli_job_close(j);
		return EXIT_USAGE;
	}
	if (is_s3) {
		j->archive_storage = j->source_storage ? j->source_storage : j->storage;
		j->archive_key = slash + 1;
	} else if (strcmp(archive, "-") != 0) {
		j->src.path = archive;
	}
	return 0;
}

int cli_job_run(cli_job *j, const trs_process_options *po, trs_report **report, trs_error *err)
{
	if (!j->archive_bucket)
		return trs_process(j->ctx, j->storage, &j->src, po, report, err);
	return trs_process_from_storage(j->ctx, j->storage, j->archive_storage, j->archive_bucket, j->archive_key,
					NULL, po, report, err);
}

void cli_job_close(cli_job *j)
{
	trs_storage_free(j->storage);
	trs_storage_free(j->source_storage);
	trs_ctx_free(j->ctx);
	free(j->archive_bucket);
	cli_stdin_close(&j->in);
	memset(j, 0, sizeof(*j));
	j->in.spool_fd = -1;
}
