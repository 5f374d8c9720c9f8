/* SPDX-License-Identifier: Apache-2.0 */
/* trs pack: write an archive in the source side's format. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: trs pack DIR -o OUT.tar.zst --target REGION:BUCKET[:CLASS] ... [options]\n"
	"\n"
	"Pack every regular file under DIR as an object (relative path = object name),\n"
	"with a manifest.json last, as the source side writes archives.\n"
	"\n"
	"  -o, --output FILE        the archive to write; - for stdout (not a terminal)\n"
	"  --target R:B[:CLASS]     a target region and bucket (repeatable); add\n"
	"                           :kms=ARN or :backup after the class field to set those\n"
	"  --source-bucket NAME     manifest source_bucket (default: local)\n"
	"  --source-prefix PREFIX   manifest source_prefix (default: none)\n"
	"  --level N                zstd level 1..22 (default 3)\n"
	"  --manifest-first         write manifest.json before the objects\n"
	"  -q, --quiet              only errors: no warnings, no closing line\n"
	"  -v, --verbose            info records too; -vv: debug\n";

/* REGION:BUCKET[:CLASS][:kms=ARN][:backup]; an ARN holds ':' so kms= takes the rest. */
static bool parse_target(char *spec, trs_manifest_target *t)
{
	memset(t, 0, sizeof(*t));
	t->storage_class = t->kms_key_arn = "";
	char *kms = strstr(spec, ":kms=");
	if (kms) {
		*kms = '\0';
		t->kms_key_arn = kms + 5;
	}
	char *backup = strstr(spec, ":backup");
	if (backup && backup[7] == '\0') {
		*backup = '\0';
		t->backup = 1;
	}
	char *region = strtok(spec, ":");
	char *bucket = strtok(NULL, ":");
	char *cls = strtok(NULL, ":");
	if (!region || !bucket || strtok(NULL, ":"))
		return false;
	t->region = region;
	t->bucket = bucket;
	if (cls)
		t->storage_class = cls;
	return true;
}

int cmd_pack(int argc, char **argv)
{
	enum { O_TARGET = 256, O_SB, O_SP, O_LEVEL, O_MF };
	static const struct option opts[] = {
		{"output", required_argument, 0, 'o'},
		{"target", required_argument, 0, O_TARGET},
		{"source-bucket", required_argument, 0, O_SB},
		{"source-prefix", required_argument, 0, O_SP},
		{"level", required_argument, 0, O_LEVEL},
		{"manifest-first", no_argument, 0, O_MF},
		CLI_VERBOSITY_OPTIONS,
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	trs_pack_options po = TRS_PACK_OPTIONS_INIT;
	trs_manifest_target *targets = calloc((size_t)argc + 1, sizeof(*targets));
	size_t ntargets = 0;
	unsigned long long v;
	int c, rc = EXIT_USAGE;
	if (!targets)
		return EXIT_USAGE;
	cli_log log;
	cli_log_init(&log);
	log.level = TRS_LOG_WARN;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:hqv", opts, "pack")) != -1) {
		if (cli_verbosity_option(c, &log))
			continue;
		switch (c) {
		case 'o': po.output_path = optarg; break;
		case O_TARGET:
			if (!parse_target(optarg, &targets[ntargets])) {
				fprintf(stderr, "trs pack: bad --target '%s': use REGION:BUCKET[:CLASS]\n", optarg);
				goto out;
			}
			ntargets++;
			break;
		case O_SB: po.source_bucket = optarg; break;
		case O_SP: po.source_prefix = optarg; break;
		case O_LEVEL:
			if (!cli_parse_uint(optarg, 22, &v) || v < 1) {
				cli_bad_value("pack", optarg, "level");
				goto out;
			}
			po.level = (int)v;
			break;
		case O_MF: po.manifest_first = 1; break;
		case 'h': fputs(usage, stdout); rc = EXIT_OK; goto out;
		default: cli_usage_error("pack", NULL); goto out;
		}
	}
	if (optind != argc - 1 || !po.output_path || ntargets == 0) {
		cli_usage_error("pack", "give DIR, -o OUT and at least one --target");
		goto out;
	}
	/* As zstd: an archive is binary, never for a terminal. */
	if (strcmp(po.output_path, "-") == 0) {
		if (isatty(STDOUT_FILENO)) {
			fprintf(stderr, "trs pack: stdout is a terminal: redirect it (trs pack DIR -o - ... > OUT.tar.zst)\n");
			goto out;
		}
		po.output_fd = STDOUT_FILENO;
		po.output_path = "stdout";
	}
	po.input_dir = argv[optind];
	po.targets = targets;
	po.ntargets = ntargets;
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	co.log = cli_log_sink;
	co.log_level = log.level;
	co.log_userdata = &log;
	trs_ctx *ctx;
	trs_error err = TRS_ERROR_INIT;
	uint64_t n = 0;
	int r = trs_ctx_new(&ctx, &co, &err);
	if (r == 0) {
		r = trs_pack(ctx, &po, &n, &err);
		trs_ctx_free(ctx);
	}
	if (r < 0) {
		fprintf(stderr, "trs pack: %s\n", err.message);
		rc = r == TRS_EINVAL ? EXIT_USAGE : EXIT_PARTIAL;
	} else {
		if (!log.quiet)
			fprintf(stderr, "packed %llu objects into %s\n", (unsigned long long)n, po.output_path);
		rc = EXIT_OK;
	}
out:
	free(targets);
	return rc;
}
