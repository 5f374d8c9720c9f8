/* SPDX-License-Identifier: Apache-2.0 */
/* trs restore-backup: chosen objects out of a backup archive (docs/operations.md). */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: trs restore-backup ARCHIVE --object NAME [--object NAME ...] [options]\n"
	"\n"
	"Restore chosen objects from a backup archive (s3://bucket/key, e.g.\n"
	"s3://<backup bucket>/<backup_file> of a catalog row, or a local path). NAME is an\n"
	"object's relative_key or object_name (a name may select several objects).\n"
	"Objects go to the manifest's non-backup targets in this region, or to\n"
	"--to-bucket; their keys are the original ones (source_prefix/object_name).\n"
	"\n"
	"  --object NAME           an object to restore (repeat for more; at least one)\n"
	"  --to-bucket B           write the objects to bucket B (their own storage class,\n"
	"                          no KMS key) instead of the manifest's targets\n"
	"  --dest URL              file://DIR writes into DIR/<bucket>/<key>; default: S3\n"
	"  --region R              this service's region (default: AWS_REGION, AWS_DEFAULT_REGION)\n"
	"  --endpoint-url URL      S3-compatible endpoint (default: AWS_ENDPOINT_URL_S3,\n"
	"                          AWS_ENDPOINT_URL, else AWS)\n"
	"  --no-verify-ssl         do not verify TLS certificates (test endpoints only)\n"
	CLI_COMMON_HELP
	CLI_VERIFY_USAGE
	"  --overwrite WHEN        always (default here): the backup's version replaces what\n"
	"                          stands at the key, newer or not (a recovery); newer: only\n"
	"                          where nothing newer stands\n"
	"  --dry-run               read and check everything, write nothing; list each planned\n"
	"                          put on stdout (bucket, key, size, class, KMS key)\n"
	"  --json                  print the report as JSON on stdout\n"
	"                          (its first field, \"schema\": 1, versions the others)\n"
	"  -q, --quiet             no summary; only errors are logged\n"
	"  -v, --verbose           info records (the default); -vv: debug records too\n"
	"  --log-level L           error, warn, info (default), debug\n"
	"  --log-format F          json (default when stderr is not a terminal) or text\n";

static void print_json(const trs_report *r, int rc, const trs_error *err, const trs_storage *plan)
{
	FILE *f = stdout;
	fprintf(f, "{\"schema\":%d,\"archive\":", CLI_JSON_SCHEMA);
	cli_json_string(f, r->archive);
	fprintf(f, ",\"ok\":%s,\"exit_code\":%d", rc == 0 ? "true" : "false", cli_exit_code(rc));
	if (rc < 0) {
		fputs(",\"error\":", f);
		cli_json_string(f, err->message);
	}
	fprintf(f,
		",\"objects_total\":%llu,\"objects_written\":%llu,\"objects_failed\":%llu,\"objects_unselected\":%llu,"
		"\"puts_written\":%llu,\"bytes_written\":%llu,\"failures\":[",
		(unsigned long long)r->objects_total, (unsigned long long)r->objects_written,
		(unsigned long long)r->objects_failed, (unsigned long long)r->objects_unselected,
		(unsigned long long)r->puts_written, (unsigned long long)r->bytes_written);
	for (size_t i = 0; i < r->nfailures; i++) {
		fputs(i ? ",{\"relative_key\":" : "{\"relative_key\":", f);
		cli_json_string(f, r->failures[i].relative_key);
		fputs(",\"message\":", f);
		cli_json_string(f, r->failures[i].message);
		fputc('}', f);
	}
	fputs("],\"targets\":[", f);
	for (size_t i = 0; i < r->ntargets; i++) {
		fputs(i ? "," : "", f);
		cli_json_string(f, r->targets[i].bucket);
	}
	fputc(']', f);
	if (plan) {
		fputs(",\"planned\":", f);
		cli_plan_json(plan, f);
	}
	fputs("}\n", f);
}

int cmd_restore_backup(int argc, char **argv)
{
	enum { O_OBJECT = 256, O_TO, O_DEST, O_DRY, O_JSON };
	static const struct option opts[] = {
		CLI_COMMON_OPTIONS,
		CLI_VERIFY_OPTIONS,
		{"overwrite", required_argument, 0, CLI_O_OVERWRITE},
		{"object", required_argument, 0, O_OBJECT},
		{"to-bucket", required_argument, 0, O_TO},
		{"dest", required_argument, 0, O_DEST},
		{"dry-run", no_argument, 0, O_DRY},
		{"json", no_argument, 0, O_JSON},
		CLI_VERBOSITY_OPTIONS,
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	cli_log log;
	cli_log_init(&log);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	trs_process_options po = TRS_PROCESS_OPTIONS_INIT;
	/* A restore from a backup is a recovery someone asked for: its version goes back in place. */
	po.overwrite = TRS_OVERWRITE_ALWAYS;
	trs_s3_options s3o = TRS_S3_OPTIONS_INIT;
	cli_common cc = {0};
	const char *dest = NULL;
	bool json = false, dry_run = false;
	const char **names = calloc((size_t)argc + 1, sizeof(*names));
	size_t nnames = 0;
	if (!names) {
		fputs("trs restore-backup: out of memory\n", stderr);
		return EXIT_USAGE;
	}
	int c, taken;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "hqv", opts, "restore-backup")) != -1) {
		if (cli_verbosity_option(c, &log))
			continue;
		if ((taken = cli_common_option(c, optarg, &cc, &log)) < 0 ||
		    (!taken && (taken = cli_verify_option(c, optarg, &co, &s3o)) < 0) ||
		    (!taken && (taken = cli_write_option(c, optarg, &po)) < 0))
			goto bad_value;
		if (taken)
			continue;
		switch (c) {
		case O_OBJECT:
			if (!*optarg)
				goto bad_value;
			names[nnames++] = optarg;
			break;
		case O_TO:
			if (!*optarg)
				goto bad_value;
			po.to_bucket = optarg;
			break;
		case O_DEST: dest = optarg; break;
		case O_DRY: dry_run = true; break;
		case O_JSON: json = true; break;
		case 'h': fputs(usage, stdout); free(names); return EXIT_OK;
		default: free(names); return cli_usage_error("restore-backup", NULL);
		}
		continue;
	bad_value:
		cli_bad_value("restore-backup", optarg, cli_option_name(opts, c));
		free(names);
		return EXIT_USAGE;
	}
	if (optind != argc - 1 || !nnames) {
		free(names);
		return cli_usage_error("restore-backup", "give one ARCHIVE and at least one --object");
	}
	po.only = names;
	po.nonly = nnames;
	const char *archive = argv[optind];
	cli_common_apply(&cc, &co);
	s3o.endpoint_url = cc.endpoint;
	s3o.no_verify_ssl = cc.no_verify_ssl;
	trs_storage *plan = dry_run ? cli_plan_new(json ? NULL : stdout) : NULL;
	cli_job job;
	int rc = dry_run && !plan ? EXIT_ARCHIVE : cli_job_open(&job, archive, dest, &co, &s3o, plan, &log);
	if (rc) {
		free(names);
		return rc;
	}
	trs_report *report = NULL;
	trs_error err = TRS_ERROR_INIT;
	rc = cli_job_run(&job, &po, &report, &err);
	if (rc < 0)
		cli_log_msg(&log, TRS_LOG_ERROR, err.message, "archive", archive);
	if (report && json) {
		print_json(report, rc, &err, plan);
	} else if (report && (rc == 0 || rc == TRS_EPARTIAL) && !log.json && !log.quiet &&
		   log.level >= TRS_LOG_INFO) {
		fprintf(stderr, "%s %s: %llu objects written (%llu not chosen, %llu failed)\n",
			rc == 0 ? "restored from" : "finished with failures:", report->archive,
			(unsigned long long)report->objects_written, (unsigned long long)report->objects_unselected,
			(unsigned long long)report->objects_failed);
	}
	trs_report_free(report);
	cli_job_close(&job);
	free(names);
	return cli_job_exit_code(rc);
}
