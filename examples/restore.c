/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore: restore one .tar.zst archive into a local directory, the way
 * `trs process ARCHIVE --dest file://DIR` does, and print the report.
 *
 *     cc restore.c $(pkg-config --cflags --libs libtrs) -o restore
 *     ./restore data/example.tar.zst restored eu-west-1
 *
 * Objects land at DIR/<bucket>/<key> for every target in REGION (default:
 * AWS_REGION). Exit status: 0 all written, 1 some failed, 2 usage, 3 the
 * archive could not be read.
 */
#include <stdio.h>

#include <trs.h>

static void print_report(const trs_report *r)
{
	printf("archive:          %s\n", r->archive);
	printf("objects:          %llu\n", (unsigned long long)r->objects_total);
	printf("written:          %llu (%llu puts, %llu bytes)\n", (unsigned long long)r->objects_written,
	       (unsigned long long)r->puts_written, (unsigned long long)r->bytes_written);
	printf("failed:           %llu\n", (unsigned long long)r->objects_failed);
	printf("skipped:          %llu (all targets in other regions)\n",
	       (unsigned long long)r->objects_skipped);
	printf("members skipped:  %llu\n", (unsigned long long)r->members_skipped);
	printf("seconds:          %.3f\n", r->seconds_total);
	for (size_t i = 0; i < r->nfailures; i++)
		printf("FAILED %s -> %s/%s: %s\n", r->failures[i].relative_key, r->failures[i].bucket,
		       r->failures[i].key, r->failures[i].message);
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s ARCHIVE.tar.zst DIR [REGION]\n", argv[0]);
		return 2;
	}
	trs_error err = TRS_ERROR_INIT;
	trs_ctx_options opts = TRS_CTX_OPTIONS_INIT;
	opts.region = argc == 4 ? argv[3] : NULL; /* NULL: AWS_REGION */

	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.path = argv[1];

	trs_ctx *ctx = NULL;
	trs_storage *dest = NULL;
	trs_report *report = NULL;
	int status = 2;

	if (trs_ctx_new(&ctx, &opts, &err) < 0 || trs_storage_fs_new(&dest, ctx, argv[2], &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		goto out;
	}

	int rc = trs_process(ctx, dest, &src, NULL, &report, &err);
	if (report)
		print_report(report);
	if (rc == 0) {
		status = 0;
	} else {
		fprintf(stderr, "%s: %s\n", trs_strerror(rc), err.message);
		status = rc == TRS_EPARTIAL ? 1 : rc == TRS_EINVAL ? 2 : 3;
	}
out:
	trs_report_free(report);
	trs_storage_free(dest);
	trs_ctx_free(ctx);
	return status;
}
