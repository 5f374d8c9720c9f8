/* SPDX-License-Identifier: Apache-2.0 */
/* trs head: what a storage knows about one object (size, class, tags, metadata). */
#include "cli.h"

#include <string.h>

static const char usage[] =
	"usage: trs head STORAGE BUCKET KEY\n"
	"\n"
	"Print a restored object's size, storage class, KMS key, tags and metadata as\n"
	"JSON (its first field, \"schema\": 1, versions the others). STORAGE is\n"
	"file://DIR (what --dest was) or s3. A KEY that starts with - comes after --:\n"
	"trs head s3 BUCKET -- -KEY\n";

static void kv_json(FILE *f, const char *name, const trs_kv *kv, size_t n)
{
	fprintf(f, ",\"%s\":{", name);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		cli_json_string(f, kv[i].key);
		fputc(':', f);
		cli_json_string(f, kv[i].value);
	}
	fputc('}', f);
}

int cmd_head(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "h", opts, "head")) != -1) {
		if (c != 'h')
			return cli_usage_error("head", NULL);
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (argc - optind != 3)
		return cli_usage_error("head", "give STORAGE, BUCKET and KEY");
	argv += optind - 1; /* argv[1..3]: STORAGE BUCKET KEY */
	trs_error err = TRS_ERROR_INIT;
	trs_ctx *ctx = NULL;
	trs_storage *s = NULL;
	trs_object_info info;
	memset(&info, 0, sizeof(info));
	int rc = trs_ctx_new(&ctx, NULL, &err);
	if (rc == 0)
		rc = trs_storage_open(&s, ctx, argv[1], &err);
	if (rc == 0)
		rc = trs_storage_head(s, argv[2], argv[3], &info, &err);
	if (rc == 0) {
		FILE *f = stdout;
		fprintf(f, "{\"schema\":%d,\"bucket\":", CLI_JSON_SCHEMA);
		cli_json_string(f, argv[2]);
		fputs(",\"key\":", f);
		cli_json_string(f, argv[3]);
		fprintf(f, ",\"size\":%llu", (unsigned long long)info.size);
		const char *fields[][2] = {{"etag", info.etag}, {"storage_class", info.storage_class}, {"kms_key_id", info.kms_key_id}};
		for (size_t i = 0; i < 3; i++) {
			if (!fields[i][1])
				continue;
			fprintf(f, ",\"%s\":", fields[i][0]);
			cli_json_string(f, fields[i][1]);
		}
		kv_json(f, "tags", info.tags, info.ntags);
		kv_json(f, "metadata", info.metadata, info.nmetadata);
		fputs("}\n", f);
	} else {
		fprintf(stderr, "trs head: %s\n", err.message);
	}
	trs_object_info_clear(&info);
	trs_storage_free(s);
	trs_ctx_free(ctx);
	return rc == 0 ? EXIT_OK : rc == TRS_ENOTFOUND ? EXIT_PARTIAL : cli_exit_code(rc);
}
