/* trs restore-backup: chosen objects out of a backup archive (FORMAT.md §5). */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
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
	"  --dry-run               read and check everything, write nothing\n"
	"  --json                  print the report as JSON on stdout\n"
	"  --log-level L           error, warn, info (default), debug\n"
	"  --log-format F          json (default when stderr is not a terminal) or text\n";

static volatile int canceled;

static void on_signal(int sig)
{
	(void)sig;
	canceled = 1;
}

static void print_json(const trs_report *r, int rc, const trs_error *err)
{
	FILE *f = stdout;
	fputs("{\"archive\":", f);
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
	fputs("]}\n", f);
}

int cmd_restore_backup(int argc, char **argv)
{
	enum { O_OBJECT = 256, O_TO, O_DEST, O_REGION, O_ENDPOINT, O_NOVERIFY, O_DRY, O_JSON, O_LEVEL, O_FORMAT };
	static const struct option opts[] = {
		{"object", required_argument, 0, O_OBJECT},
		{"to-bucket", required_argument, 0, O_TO},
		{"dest", required_argument, 0, O_DEST},
		{"region", required_argument, 0, O_REGION},
		{"endpoint-url", required_argument, 0, O_ENDPOINT},
		{"no-verify-ssl", no_argument, 0, O_NOVERIFY},
		{"dry-run", no_argument, 0, O_DRY},
		{"json", no_argument, 0, O_JSON},
		{"log-level", required_argument, 0, O_LEVEL},
		{"log-format", required_argument, 0, O_FORMAT},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	cli_log log;
	cli_log_init(&log);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	trs_process_options po = TRS_PROCESS_OPTIONS_INIT;
	trs_s3_options s3o = TRS_S3_OPTIONS_INIT;
	const char *dest = NULL;
	bool json = false;
	const char **names = calloc((size_t)argc + 1, sizeof(*names));
	size_t nnames = 0;
	if (!names) {
		fputs("trs restore-backup: out of memory\n", stderr);
		return EXIT_USAGE;
	}
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
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
		case O_REGION: co.region = optarg; break;
		case O_ENDPOINT: s3o.endpoint_url = optarg; break;
		case O_NOVERIFY: s3o.no_verify_ssl = 1; break;
		case O_DRY: po.dry_run = 1; break;
		case O_JSON: json = true; break;
		case O_LEVEL:
			if (!cli_log_level_parse(optarg, &log.level))
				goto bad_value;
			break;
		case O_FORMAT:
			if (!cli_log_format_parse(optarg, &log.json))
				goto bad_value;
			break;
		case 'h': fputs(usage, stdout); free(names); return EXIT_OK;
		default: fputs(usage, stderr); free(names); return EXIT_USAGE;
		}
		continue;
	bad_value:
		fprintf(stderr, "trs restore-backup: bad value '%s' for --%s\n", optarg, opts[c - O_OBJECT].name);
		free(names);
		return EXIT_USAGE;
	}
	if (optind != argc - 1 || !nnames) {
		fprintf(stderr, "trs restore-backup: give one ARCHIVE and at least one --object\n\n%s", usage);
		free(names);
		return EXIT_USAGE;
	}
	po.only = names;
	po.nonly = nnames;
	const char *archive = argv[optind];
	co.log = cli_log_sink;
	co.log_level = log.level;
	co.log_userdata = &log;
	co.cancel = &canceled;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	trs_error err = TRS_ERROR_INIT;
	trs_ctx *ctx = NULL;
	trs_storage *storage = NULL, *source_storage = NULL;
	trs_report *report = NULL;
	trs_fetch *fetch = NULL;
	char *bucket = NULL;
	int is_s3 = strncmp(archive, "s3://", 5) == 0;
	int rc = trs_ctx_new(&ctx, &co, &err);
	if (rc == 0 && !*trs_ctx_region(ctx)) {
		rc = TRS_EINVAL;
		snprintf(err.message, sizeof(err.message), "no region: pass --region or set AWS_REGION");
	}
	if (rc == 0)
		rc = dest ? trs_storage_open(&storage, ctx, dest, &err) : trs_storage_s3_new(&storage, ctx, &s3o, &err);
	if (rc == 0 && is_s3 && dest)
		rc = trs_storage_s3_new(&source_storage, ctx, &s3o, &err);
	const char *slash = is_s3 ? strchr(archive + 5, '/') : NULL;
	if (rc == 0 && is_s3 && (!slash || slash == archive + 5 || !slash[1])) {
		rc = TRS_EINVAL;
		snprintf(err.message, sizeof(err.message), "'%s' is not s3://bucket/key", archive);
	}
	if (rc < 0) {
		cli_log_msg(&log, TRS_LOG_ERROR, err.message, NULL, NULL);
		trs_storage_free(storage);
		trs_storage_free(source_storage);
		trs_ctx_free(ctx);
		free(names);
		return EXIT_USAGE;
	}
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	if (is_s3) {
		bucket = strndup(archive + 5, (size_t)(slash - (archive + 5)));
		rc = bucket ? trs_fetch_start(&fetch, source_storage ? source_storage : storage, bucket, slash + 1, ctx, NULL,
					      &src, &err)
			    : TRS_ENOMEM;
	} else {
		src.path = archive;
	}
	if (rc == 0)
		rc = trs_process(ctx, storage, &src, &po, &report, &err);
	trs_fetch_free(fetch);
	if (rc < 0)
		cli_log_msg(&log, TRS_LOG_ERROR, err.message, "archive", archive);
	if (report && json) {
		print_json(report, rc, &err);
	} else if (report && (rc == 0 || rc == TRS_EPARTIAL) && !log.json && log.level >= TRS_LOG_INFO) {
		fprintf(stderr, "%s %s: %llu objects written (%llu not chosen, %llu failed)\n",
			rc == 0 ? "restored from" : "finished with failures:", report->archive,
			(unsigned long long)report->objects_written, (unsigned long long)report->objects_unselected,
			(unsigned long long)report->objects_failed);
	}
	trs_report_free(report);
	trs_storage_free(storage);
	trs_storage_free(source_storage);
	trs_ctx_free(ctx);
	free(bucket);
	free(names);
	return cli_exit_code(rc);
}
