/* SPDX-License-Identifier: Apache-2.0 */
/* trs inspect: what an archive holds, what joins, and why not. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: trs inspect ARCHIVE [--json] [--region R] [--max-manifest BYTES]\n"
	"\n"
	"Show the manifest's targets, every tar member and whether it joins a manifest\n"
	"entry (and why not), entries without a member, and where the manifest sits.\n"
	"Nothing is written. ARCHIVE is a path or - for stdin (kept in a temporary file\n"
	"under TMPDIR while it is read: a manifest that comes last is read first).\n"
	"\n"
	"  --json                  print it as JSON on stdout\n"
	"                          (its first field, \"schema\": 1, versions the others)\n"
	"  --region R              which targets count as this region's (default:\n"
	"                          AWS_REGION, AWS_DEFAULT_REGION, the profile's region)\n"
	"  --max-manifest BYTES    refuse manifests larger than BYTES of JSON, or taking more\n"
	"                          than BYTES of memory once parsed (default 1G)\n"
	"  -q, --quiet             only errors are logged\n"
	"  -v, --verbose           info records too (default: warnings and errors); -vv: debug\n";

static const char *type_name(trs_member_type t)
{
	switch (t) {
	case TRS_MEMBER_FILE: return "file";
	case TRS_MEMBER_DIRECTORY: return "directory";
	case TRS_MEMBER_SYMLINK: return "symlink";
	case TRS_MEMBER_HARDLINK: return "hardlink";
	default: return "other";
	}
}

static const char *position_name(trs_manifest_position p)
{
	switch (p) {
	case TRS_MANIFEST_FIRST: return "first";
	case TRS_MANIFEST_LAST: return "last";
	case TRS_MANIFEST_MIDDLE: return "middle";
	default: return "absent";
	}
}

/* Why a member is or is not restored. Returns the entry when joined. */
static const trs_manifest_object *classify(const trs_manifest *m, const trs_member *mb, const char **status,
					   const char **reason)
{
	const char *path = mb->path;
	if (path[0] == '.' && path[1] == '/')
		path += 2;
	*reason = "";
	if (!strcmp(path, "manifest.json")) {
		*status = "manifest";
		return NULL;
	}
	if (mb->type == TRS_MEMBER_DIRECTORY) {
		*status = "ignored";
		*reason = "directory";
		return NULL;
	}
	if (strncmp(path, "objects/", 8) != 0) {
		*status = "skipped";
		*reason = "outside objects/";
		return NULL;
	}
	if (mb->type != TRS_MEMBER_FILE) {
		*status = "skipped";
		*reason = mb->type == TRS_MEMBER_SYMLINK ? "symbolic link" : mb->type == TRS_MEMBER_HARDLINK ? "hard link" : "not a regular file";
		return NULL;
	}
	const trs_manifest_object *e = trs_manifest_find(m, path + 8, strlen(path + 8));
	if (!e) {
		*status = "skipped";
		*reason = "no manifest entry";
		return NULL;
	}
	if (e->has_size && e->size != mb->size) {
		*status = "corrupt";
		*reason = "size differs from the manifest";
		return e;
	}
	*status = "joined";
	return e;
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, 0, 'j'},
		{"region", required_argument, 0, 'r'},
		{"max-manifest", required_argument, 0, 'M'},
		CLI_VERBOSITY_OPTIONS,
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	bool json = false;
	trs_ctx_options co = TRS_CTX_OPTIONS_INIT;
	cli_log log;
	cli_log_init(&log);
	log.level = TRS_LOG_WARN;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "hqv", opts, "inspect")) != -1) {
		if (cli_verbosity_option(c, &log))
			continue;
		switch (c) {
		case 'j': json = true; break;
		case 'r': co.region = optarg; break;
		case 'M':
			if (!cli_parse_bytes(optarg, &co.max_manifest_bytes) || !co.max_manifest_bytes)
				return cli_bad_value("inspect", optarg, "max-manifest");
			break;
		case 'h': fputs(usage, stdout); return EXIT_OK;
		default: return cli_usage_error("inspect", NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("inspect", "give exactly one ARCHIVE");
	co.log = cli_log_sink;
	co.log_level = log.level;
	co.log_userdata = &log;
	trs_error err = TRS_ERROR_INIT;
	trs_ctx *ctx = NULL;
	trs_archive *a = NULL;
	trs_manifest *m = NULL;
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	cli_stdin in = {.spool_fd = -1};
	const char *archive = argv[optind];
	int rc = 0;
	if (strcmp(archive, "-") == 0) {
		rc = cli_stdin_source(&in, &src, true, NULL, "inspect", &err);
		archive = src.name;
	} else {
		src.path = archive;
	}
	if (rc == 0)
		rc = trs_ctx_new(&ctx, &co, &err);
	if (rc == 0)
		rc = trs_archive_open(&a, &src, ctx, &err);
	if (rc == 0)
		rc = trs_archive_read_manifest(a, &m, &err);
	if (rc == 0 && trs_archive_manifest_position(a) == TRS_MANIFEST_FIRST)
		rc = trs_archive_rewind(a, &err); /* list every member, the manifest too */
	if (rc < 0) {
		fprintf(stderr, "trs inspect: %s\n", err.message);
		trs_manifest_free(m);
		trs_archive_close(a);
		trs_ctx_free(ctx);
		cli_stdin_close(&in);
		return cli_exit_code(rc);
	}
	size_t nobj = trs_manifest_object_count(m);
	unsigned char *seen = calloc(nobj + 1, 1);
	FILE *f = stdout;
	const char *region = trs_ctx_region(ctx);
	if (json) {
		fprintf(f, "{\"schema\":%d,\"archive\":", CLI_JSON_SCHEMA);
		cli_json_string(f, archive);
		fprintf(f, ",\"manifest_position\":\"%s\",\"manifest_bytes\":%llu,\"manifest_memory\":%llu,\"region\":",
			position_name(trs_archive_manifest_position(a)), (unsigned long long)trs_manifest_json_bytes(m),
			(unsigned long long)trs_manifest_memory(m));
		cli_json_string(f, region);
		fputs(",\"targets\":[", f);
	} else {
		fprintf(f, "archive   %s\nmanifest  %s (%s)\ntargets\n", archive,
			position_name(trs_archive_manifest_position(a)),
			trs_archive_manifest_position(a) == TRS_MANIFEST_FIRST
				? "objects stream to their targets as they come"
				: "objects before it wait, staged on disk or held within --max-memory; one pass when they fit");
	}
	for (size_t i = 0; i < trs_manifest_target_count(m); i++) {
		const trs_manifest_target *t = trs_manifest_target_at(m, i);
		int here = *region && !strcmp(t->region, region);
		if (json) {
			fputs(i ? ",{\"region\":" : "{\"region\":", f);
			cli_json_string(f, t->region);
			fputs(",\"bucket\":", f);
			cli_json_string(f, t->bucket);
			fputs(",\"storage_class\":", f);
			cli_json_string(f, t->storage_class);
			fputs(",\"kms_key_arn\":", f);
			cli_json_string(f, t->kms_key_arn);
			fprintf(f, ",\"backup\":%s,\"this_region\":%s}", t->backup ? "true" : "false", here ? "true" : "false");
		} else {
			fprintf(f, "  %-16s %-30s %s%s%s%s\n", t->region, t->bucket, *t->storage_class ? t->storage_class : "-",
				*t->kms_key_arn ? " kms" : "", t->backup ? " backup" : "", here ? "  (this region)" : "");
		}
	}
	if (json)
		fputs("],\"members\":[", f);
	else
		fputs("members\n", f);
	trs_member mb;
	uint64_t n = 0, joined = 0;
	while ((rc = trs_archive_next(a, &mb, &err)) == 1) {
		const char *status, *reason;
		const trs_manifest_object *e = classify(m, &mb, &status, &reason);
		if (e) {
			seen[trs_manifest_object_index(m, e)] = 1;
			joined += !strcmp(status, "joined");
		}
		if (json) {
			fputs(n ? ",{\"path\":" : "{\"path\":", f);
			cli_json_string(f, mb.path);
			fprintf(f, ",\"type\":\"%s\",\"size\":%llu,\"status\":\"%s\"", type_name(mb.type),
				(unsigned long long)mb.size, status);
			if (*reason) {
				fputs(",\"reason\":", f);
				cli_json_string(f, reason);
			}
			fputc('}', f);
		} else {
			fprintf(f, "  %-8s %12llu  %s%s%s%s\n", status, (unsigned long long)mb.size, mb.path, *reason ? "  (" : "",
				reason, *reason ? ")" : "");
		}
		n++;
	}
	if (json)
		fputs("],\"missing\":[", f);
	uint64_t missing = 0;
	for (size_t i = 0; i < nobj; i++) {
		if (seen[i])
			continue;
		const trs_manifest_object *e = trs_manifest_object_at(m, i);
		if (json) {
			if (missing)
				fputc(',', f);
			cli_json_string(f, e->relative_key);
		} else {
			fprintf(f, "  missing  %12s  objects/%s  (in the manifest, not in the archive)\n", "-", e->relative_key);
		}
		missing++;
	}
	if (json) {
		fprintf(f, "],\"objects\":%zu,\"joined\":%llu,\"warnings\":[", nobj, (unsigned long long)joined);
		for (size_t i = 0; i < trs_manifest_warning_count(m); i++) {
			if (i)
				fputc(',', f);
			cli_json_string(f, trs_manifest_warning_at(m, i));
		}
		fputs("]}\n", f);
	} else {
		fprintf(f, "summary   %zu manifest entries, %llu members, %llu joined, %llu missing\n", nobj,
			(unsigned long long)n, (unsigned long long)joined, (unsigned long long)missing);
		for (size_t i = 0; i < trs_manifest_warning_count(m); i++)
			fprintf(f, "warning   %s\n", trs_manifest_warning_at(m, i));
	}
	if (rc < 0)
		fprintf(stderr, "trs inspect: %s\n", err.message);
	free(seen);
	trs_manifest_free(m);
	trs_archive_close(a);
	trs_ctx_free(ctx);
	cli_stdin_close(&in);
	return rc < 0 ? cli_exit_code(rc) : EXIT_OK;
}
