/* SPDX-License-Identifier: Apache-2.0 */
/* trs process: restore one archive. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: trs process ARCHIVE [options]\n"
	"\n"
	"Restore every object of ARCHIVE (a path, s3://bucket/key, or - for stdin) to its\n"
	"targets in this region.\n"
	"\n"
	"  --dest URL              file://DIR restores into DIR/<bucket>/<key> (metadata in the\n"
	"                          user.trs.meta xattr, else DIR/.trs-meta/); default: S3\n"
	"  --endpoint-url URL      S3-compatible endpoint (default: AWS_ENDPOINT_URL_S3,\n"
	"                          AWS_ENDPOINT_URL, else AWS)\n"
	"  --multipart-threshold BYTES  objects this large go multipart (default 16M)\n"
	"  --part-size BYTES       multipart part size (default 16M; raised to fit 10,000 parts)\n"
	"  --no-verify-ssl         do not verify TLS certificates (test endpoints only)\n"
	CLI_COMMON_HELP
	CLI_VERIFY_USAGE
	CLI_WRITE_USAGE
	"  --metrics SINK          cloudwatch, emf (JSON lines on stdout; on stderr with --json)\n"
	"                          or none (default: TRS_METRICS, else none); CloudWatch endpoint\n"
	"                          from AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL, else AWS\n"
	"  --catalog-bucket B      bucket of the backup catalogs, in the --dest storage (needed\n"
	"                          by archives with a backup target here) [CATALOG_BUCKET]\n"
	"  --region R              this service's region (default: AWS_REGION, AWS_DEFAULT_REGION,\n"
	"                          the profile's region)\n"
	"  --dry-run               read and check everything, write nothing (DIR is not\n"
	"                          created); list each planned put on stdout: bucket, key,\n"
	"                          size, class, KMS key (tab-separated; in the report with --json)\n"
	"  --json                  print the report as JSON on stdout\n"
	"                          (its first field, \"schema\": 1, versions the others)\n"
	"  --workers N             parallel writers to a local directory (default: cpu count)\n"
	"  --max-inflight N        concurrent transfers to S3 (default 32)\n"
	"  --max-memory BYTES      object data buffered in flight (default 256M)\n"
	"  --max-ratio N           refuse archives expanding more than N:1 (default: no limit)\n"
	"  --max-decompressed BYTES  refuse archives expanding beyond BYTES (default 16T)\n"
	"  --max-manifest BYTES    refuse manifests larger than BYTES of JSON, or taking more\n"
	"                          than BYTES of memory once parsed (default 1G)\n"
	"  --no-progress           no progress bar on a terminal\n"
	"  -q, --quiet             no progress bar or summary; only errors are logged\n"
	"  -v, --verbose           info records (the default); -vv: debug records too\n"
	"  --log-level L           error, warn, info (default), debug\n"
	"  --log-format F          json (default when stderr is not a terminal) or text\n";

static const char *position_name(trs_manifest_position p)
{
	switch (p) {
	case TRS_MANIFEST_FIRST: return "first";
	case TRS_MANIFEST_LAST: return "last";
	case TRS_MANIFEST_MIDDLE: return "middle";
	case TRS_MANIFEST_ABSENT: return "absent";
	default: return "unknown";
	}
}

/* The destination's retry layer (S3): retries, throttling, the budget's refusals, adaptive concurrency. */
static void print_json_retries(FILE *f, const trs_storage *dest)
{
	trs_retry_stats rs;
	if (trs_storage_retry_stats(dest, &rs) < 0) {
		fputs(",\"retries\":null", f);
		return;
	}
	fprintf(f,
		",\"retries\":{\"retried\":%llu,\"throttled\":%llu,\"refused_by_budget\":%llu,\"limit_decreases\":%llu,"
		"\"limit_lowest\":%.0f,\"limit_ceiling\":%.0f}",
		(unsigned long long)rs.retried, (unsigned long long)rs.throttled,
		(unsigned long long)rs.refused_by_budget, (unsigned long long)rs.limit_decreases, rs.limit_lowest,
		rs.limit_ceiling);
}

static void print_json_report(const trs_report *r, int rc, const trs_error *err, const trs_storage *plan,
			      const trs_storage *dest)
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
		",\"dry_run\":%s,\"manifest_position\":\"%s\",\"passes\":%u,\"objects_total\":%llu,"
		"\"objects_written\":%llu,\"objects_failed\":%llu,\"objects_skipped\":%llu,"
		"\"members_skipped\":%llu,\"puts_written\":%llu,\"puts_failed\":%llu,\"bytes_written\":%llu,"
		"\"compressed_bytes\":%llu,\"decompressed_bytes\":%llu,\"ratio\":%.3f,"
		"\"manifest_bytes\":%llu,\"manifest_memory\":%llu,\"objects_kept_newer\":%llu,\"objects_current\":%llu,"
		"\"puts_kept_newer\":%llu,\"puts_current\":%llu,\"puts_unchecked\":%llu,"
		"\"seconds\":{\"total\":%.3f,\"manifest\":%.3f,\"restore\":%.3f,\"decompress\":%.3f},\"failures\":[",
		r->dry_run ? "true" : "false", position_name(r->manifest_position), r->passes,
		(unsigned long long)r->objects_total, (unsigned long long)r->objects_written,
		(unsigned long long)r->objects_failed, (unsigned long long)r->objects_skipped,
		(unsigned long long)r->members_skipped, (unsigned long long)r->puts_written,
		(unsigned long long)r->puts_failed, (unsigned long long)r->bytes_written,
		(unsigned long long)r->compressed_bytes, (unsigned long long)r->decompressed_bytes,
		r->compressed_bytes ? (double)r->decompressed_bytes / (double)r->compressed_bytes : 0.0,
		(unsigned long long)r->manifest_bytes, (unsigned long long)r->manifest_memory,
		(unsigned long long)r->objects_kept_newer, (unsigned long long)r->objects_current,
		(unsigned long long)r->puts_kept_newer, (unsigned long long)r->puts_current,
		(unsigned long long)r->puts_unchecked, r->seconds_total, r->seconds_manifest, r->seconds_restore, r->seconds_decompress);
	for (size_t i = 0; i < r->nfailures; i++) {
		const trs_failure *x = &r->failures[i];
		fputs(i ? ",{\"relative_key\":" : "{\"relative_key\":", f);
		cli_json_string(f, x->relative_key);
		fputs(",\"bucket\":", f);
		cli_json_string(f, x->bucket);
		fputs(",\"key\":", f);
		cli_json_string(f, x->key);
		fprintf(f, ",\"code\":\"%s\",\"message\":", trs_strerror(x->code));
		cli_json_string(f, x->message);
		fputc('}', f);
	}
	fputs("],\"targets\":[", f);
	for (size_t i = 0; i < r->ntargets; i++) {
		const trs_report_target *t = &r->targets[i];
		fputs(i ? ",{\"bucket\":" : "{\"bucket\":", f);
		cli_json_string(f, t->bucket);
		fprintf(f, ",\"puts_written\":%llu,\"puts_failed\":%llu,\"bytes_written\":%llu}",
			(unsigned long long)t->puts_written, (unsigned long long)t->puts_failed,
			(unsigned long long)t->bytes_written);
	}
	fprintf(f, "],\"objects_unselected\":%llu,\"backups_written\":%llu,\"backups_failed\":%llu,\"catalog_rows\":%llu,"
		"\"backups\":[",
		(unsigned long long)r->objects_unselected, (unsigned long long)r->backups_written,
		(unsigned long long)r->backups_failed, (unsigned long long)r->catalog_rows);
	for (size_t i = 0; i < r->nbackups; i++) {
		const trs_report_backup *b = &r->backups[i];
		fputs(i ? ",{\"bucket\":" : "{\"bucket\":", f);
		cli_json_string(f, b->bucket);
		fputs(",\"key\":", f);
		cli_json_string(f, b->key);
		fprintf(f, ",\"written\":%s,\"copied\":%s,\"bytes\":%llu}", b->written ? "true" : "false",
			b->copied ? "true" : "false", (unsigned long long)b->bytes);
	}
	fputs("],\"catalog\":", f);
	if (r->catalog_bucket) {
		fputs("{\"bucket\":", f);
		cli_json_string(f, r->catalog_bucket);
		fputs(",\"key\":", f);
		cli_json_string(f, r->catalog_key);
		fprintf(f, ",\"written\":%s}", r->catalog_written ? "true" : "false");
	} else {
		fputs("null", f);
	}
	fprintf(f, ",\"seconds_download\":%.3f,\"target_regions\":", r->seconds_download);
	cli_json_string(f, r->target_regions ? r->target_regions : "");
	print_json_retries(f, dest);
	if (plan) {
		fputs(",\"planned\":", f);
		cli_plan_json(plan, f);
	}
	fputs("}\n", f);
}

static void emf_to_stderr(const char *line, size_t len, void *userdata)
{
	(void)userdata;
	fwrite(line, 1, len, stderr);
}

/* The failures by bucket and code: one line for each with the first one's message (--json has them all). */
static void print_failures(FILE *f, const trs_report *r)
{
	size_t shown = 0;
	for (size_t i = 0; i < r->nfailures; i++) {
		const trs_failure *x = &r->failures[i];
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = r->failures[k].code == x->code && !strcmp(r->failures[k].bucket, x->bucket);
		if (seen)
			continue;
		if (shown++ == 8) {
			fprintf(f, "  ... and more causes: --json lists every failure\n");
			return;
		}
		size_t same = 0;
		for (size_t k = i; k < r->nfailures; k++)
			same += r->failures[k].code == x->code && !strcmp(r->failures[k].bucket, x->bucket);
		if (same == 1)
			fprintf(f, "  FAILED    %s\n", x->message);
		else
			fprintf(f, "  FAILED    %zu objects to bucket %s (%s), the first: %s\n", same, x->bucket,
				trs_strerror(x->code), x->message);
	}
}

static void print_summary(const trs_report *r, int rc)
{
	FILE *f = stderr;
	double mib = (double)r->bytes_written / 1048576.0;
	if (r->dry_run)
		fprintf(f, "dry run of %s: nothing written; the puts are listed on stdout\n", r->archive);
	else
		fprintf(f, "%s %s\n", rc == 0 ? "restored" : "finished with failures:", r->archive);
	fprintf(f, "  objects   %llu written, %llu failed, %llu for other regions, %llu members skipped\n",
		(unsigned long long)r->objects_written, (unsigned long long)r->objects_failed,
		(unsigned long long)r->objects_skipped, (unsigned long long)r->members_skipped);
	if (r->objects_kept_newer || r->objects_current)
		fprintf(f, "  versions  %llu not written: a newer version stands there; %llu already current\n",
			(unsigned long long)r->objects_kept_newer, (unsigned long long)r->objects_current);
	if (r->puts_unchecked)
		fprintf(f, "  unchecked %llu written without comparing versions (the destination refused the read)\n",
			(unsigned long long)r->puts_unchecked);
	fprintf(f, "  bytes     %.1f MiB written, %.1f MiB compressed -> %.1f MiB (ratio %.2f)\n", mib,
		(double)r->compressed_bytes / 1048576.0, (double)r->decompressed_bytes / 1048576.0,
		r->compressed_bytes ? (double)r->decompressed_bytes / (double)r->compressed_bytes : 0.0);
	fprintf(f, "  time      %.2f s (manifest %.2f s, restore %.2f s, zstd %.2f s), %.1f MiB/s\n",
		r->seconds_total, r->seconds_manifest, r->seconds_restore, r->seconds_decompress,
		r->seconds_total > 0 ? mib / r->seconds_total : 0.0);
	fprintf(f, "  manifest  %s (%u pass%s)\n", position_name(r->manifest_position), r->passes,
		r->passes == 1 ? "" : "es");
	for (size_t i = 0; i < r->nbackups; i++)
		fprintf(f, "  backup    s3://%s/%s %s\n", r->backups[i].bucket, r->backups[i].key,
			r->backups[i].written ? (r->backups[i].copied ? "copied" : "uploaded") : "NOT written");
	if (r->catalog_bucket)
		fprintf(f, "  catalog   s3://%s/%s %s (%llu rows)\n", r->catalog_bucket, r->catalog_key,
			r->catalog_written ? "written" : "NOT written", (unsigned long long)r->catalog_rows);
	print_failures(f, r);
}

static void log_summary(cli_log *log, const trs_report *r, int rc)
{
	char written[24], failed[24], skipped[24], bytes[24], secs[24], kept[24], current[24];
	snprintf(kept, sizeof(kept), "%llu", (unsigned long long)r->objects_kept_newer);
	snprintf(current, sizeof(current), "%llu", (unsigned long long)r->objects_current);
	snprintf(written, sizeof(written), "%llu", (unsigned long long)r->objects_written);
	snprintf(failed, sizeof(failed), "%llu", (unsigned long long)r->objects_failed);
	snprintf(skipped, sizeof(skipped), "%llu", (unsigned long long)r->objects_skipped);
	snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)r->bytes_written);
	snprintf(secs, sizeof(secs), "%.3f", r->seconds_total);
	trs_log_field f[] = {{"archive", r->archive}, {"objects_written", written}, {"objects_failed", failed},
			     {"objects_skipped", skipped}, {"objects_kept_newer", kept}, {"objects_current", current},
			     {"bytes_written", bytes}, {"duration_s", secs}};
	if ((rc == 0 ? TRS_LOG_INFO : TRS_LOG_ERROR) <= log->level)
		cli_log_sink(rc == 0 ? TRS_LOG_INFO : TRS_LOG_ERROR,
			     r->dry_run ? "dry run: archive checked, nothing written"
			     : rc == 0  ? "archive restored"
					: "archive restored with failures",
			     f, sizeof(f) / sizeof(f[0]), log);
}

int cmd_process(int argc, char **argv)
{
	enum { O_DEST = 256, O_DRY, O_JSON, O_WORKERS, O_MEM, O_RATIO, O_MAXDEC, O_MAXMAN, O_NOPROG, O_THRESHOLD,
	       O_PARTSIZE, O_INFLIGHT, O_METRICS, O_CATALOG };
	static const struct option opts[] = {
		CLI_COMMON_OPTIONS,
		CLI_VERIFY_OPTIONS,
		CLI_WRITE_OPTIONS,
		{"dest", required_argument, 0, O_DEST},
		{"dry-run", no_argument, 0, O_DRY},
		{"json", no_argument, 0, O_JSON},
		{"workers", required_argument, 0, O_WORKERS},
		{"max-memory", required_argument, 0, O_MEM},
		{"max-ratio", required_argument, 0, O_RATIO},
		{"max-decompressed", required_argument, 0, O_MAXDEC},
		{"max-manifest", required_argument, 0, O_MAXMAN},
		{"no-progress", no_argument, 0, O_NOPROG},
		{"multipart-threshold", required_argument, 0, O_THRESHOLD},
		{"part-size", required_argument, 0, O_PARTSIZE},
		{"max-inflight", required_argument, 0, O_INFLIGHT},
		{"metrics", required_argument, 0, O_METRICS},
		{"catalog-bucket", required_argument, 0, O_CATALOG},
		CLI_VERBOSITY_OPTIONS,
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	cli_log log;
	cli_log_init(&log);
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	trs_process_options po = TRS_PROCESS_OPTIONS_INIT;
	trs_s3_options s3o = TRS_S3_OPTIONS_INIT;
	cli_common cc = {0};
	const char *dest = NULL;
	bool json = false, progress = isatty(STDERR_FILENO), dry_run = false;
	unsigned long long v;
	int c, taken;
	trs_metrics_sink metrics_sink = TRS_METRICS_NONE;
	bool metrics_set = false;
	po.catalog_bucket = getenv("CATALOG_BUCKET") && *getenv("CATALOG_BUCKET") ? getenv("CATALOG_BUCKET") : NULL;
	trs_error env_err = TRS_ERROR_INIT;
	if (trs_process_options_from_env(&po, &env_err) < 0) {
		fprintf(stderr, "trs process: %s\n", env_err.message);
		return EXIT_USAGE;
	}
	optind = 1;
	while ((c = cli_getopt(argc, argv, "hqv", opts, "process")) != -1) {
		if (cli_verbosity_option(c, &log))
			continue;
		if ((taken = cli_common_option(c, optarg, &cc, &log)) < 0 ||
		    (!taken && (taken = cli_verify_option(c, optarg, &co, &s3o)) < 0) ||
		    (!taken && (taken = cli_write_option(c, optarg, &po)) < 0))
			goto bad_value;
		if (taken)
			continue;
		switch (c) {
		case O_DEST: dest = optarg; break;
		case O_DRY: dry_run = true; break;
		case O_JSON: json = true; break;
		case O_NOPROG: progress = false; break;
		case O_WORKERS:
			if (!cli_parse_uint(optarg, 1024, &v) || v == 0)
				goto bad_value;
			co.workers = (unsigned)v;
			break;
		case O_MEM:
			if (!cli_parse_bytes(optarg, &co.max_memory) || co.max_memory < (1u << 20))
				goto bad_value;
			break;
		case O_RATIO:
			if (!cli_parse_uint(optarg, UINT32_MAX, &v) || v == 0)
				goto bad_value;
			co.max_ratio = v;
			break;
		case O_MAXDEC:
			if (!cli_parse_bytes(optarg, &co.max_decompressed_bytes) || !co.max_decompressed_bytes)
				goto bad_value;
			break;
		case O_MAXMAN:
			if (!cli_parse_bytes(optarg, &co.max_manifest_bytes) || !co.max_manifest_bytes)
				goto bad_value;
			break;
		case O_THRESHOLD:
			if (!cli_parse_bytes(optarg, &s3o.multipart_threshold) || s3o.multipart_threshold < (5u << 20))
				goto bad_value;
			break;
		case O_PARTSIZE:
			if (!cli_parse_bytes(optarg, &s3o.part_size) || s3o.part_size < (5u << 20) ||
			    s3o.part_size > (5ull << 30))
				goto bad_value;
			break;
		case O_INFLIGHT:
			if (!cli_parse_uint(optarg, 1024, &v) || v == 0)
				goto bad_value;
			co.max_inflight = (unsigned)v;
			break;
		case O_METRICS:
			if (trs_metrics_sink_parse(optarg, &metrics_sink) < 0)
				goto bad_value;
			metrics_set = true;
			break;
		case O_CATALOG:
			if (!*optarg)
				goto bad_value;
			po.catalog_bucket = optarg;
			break;
		case 'h': fputs(usage, stdout); return EXIT_OK;
		default: return cli_usage_error("process", NULL);
		}
		continue;
	bad_value:
		return cli_bad_value("process", optarg, cli_option_name(opts, c));
	}
	if (!metrics_set && getenv("TRS_METRICS") && *getenv("TRS_METRICS") &&
	    trs_metrics_sink_parse(getenv("TRS_METRICS"), &metrics_sink) < 0) {
		fprintf(stderr, "trs process: bad value '%s' for TRS_METRICS (cloudwatch, emf or none)\n",
			getenv("TRS_METRICS"));
		return EXIT_USAGE;
	}
	if (optind != argc - 1) {
		return cli_usage_error("process", "give exactly one ARCHIVE (a path, s3://bucket/key, or - for stdin)");
	}
	const char *archive = argv[optind];
	/* As zstd -q: no progress bar, no summary; errors are still said. */
	if (log.quiet)
		progress = false;
	cli_common_apply(&cc, &co);
	s3o.endpoint_url = cc.endpoint;
	s3o.no_verify_ssl = cc.no_verify_ssl;
	if (progress) {
		co.progress = cli_progress_sink;
		co.progress_userdata = &log;
	}
	/* A dry run writes to a plan that lists every put (cli/plan.c): on stdout, or in the --json report. */
	trs_storage *plan = dry_run ? cli_plan_new(json ? NULL : stdout) : NULL;
	if (dry_run && !plan) {
		cli_log_msg(&log, TRS_LOG_ERROR, "out of memory", NULL, NULL);
		return EXIT_ARCHIVE;
	}
	cli_job job;
	int rc = cli_job_open(&job, archive, dest, &co, &s3o, plan, &log);
	if (rc)
		return rc;
	trs_ctx *ctx = job.ctx;
	trs_report *report = NULL;
	trs_error err = TRS_ERROR_INIT;
	if (progress)
		cli_progress_start(&log);
	/* An s3:// archive in the destination storage: a backup target copies it server-side. */
	rc = cli_job_run(&job, &po, &report, &err);
	cli_progress_stop(&log);
	if (report && dry_run)
		report->dry_run = 1;
	if (rc < 0 && rc != TRS_EPARTIAL)
		cli_log_msg(&log, TRS_LOG_ERROR, err.message, "archive", archive);
	if (report) {
		if (json)
			print_json_report(report, rc, &err, plan, job.storage);
		else if ((rc == 0 || rc == TRS_EPARTIAL) && log.level >= TRS_LOG_INFO && !log.json && !log.quiet)
			print_summary(report, rc);
		if (log.json && (rc == 0 || rc == TRS_EPARTIAL))
			log_summary(&log, report, rc);
	}
	if (metrics_sink != TRS_METRICS_NONE && !dry_run) {
		/* After the report: metrics never change the outcome or the exit code. */
		trs_metrics_options mo = TRS_METRICS_OPTIONS_INIT;
		mo.sink = metrics_sink;
		mo.no_verify_ssl = s3o.no_verify_ssl;
		if (json)
			mo.emf_write = emf_to_stderr; /* stdout holds one document: the report */
		trs_metrics *metrics = NULL;
		trs_error merr = TRS_ERROR_INIT;
		if (trs_metrics_new(&metrics, ctx, &mo, &merr) == 0) {
			trs_metrics_record_report(metrics, report, rc < 0 && rc != TRS_EPARTIAL && rc != TRS_ECANCELED);
			trs_retry_stats rs;
			if (trs_storage_retry_stats(job.storage, &rs) == 0)
				trs_metrics_record_retries(metrics, &rs);
			trs_metrics_free(metrics);
		} else {
			cli_log_msg(&log, TRS_LOG_WARN, merr.message, "metrics", "not sent");
		}
	}
	trs_report_free(report);
	cli_job_close(&job);
	return cli_job_exit_code(rc);
}
