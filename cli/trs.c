/* trs: restore .tar.zst archives of the S3 Cross-Region Compressor. */
#include "cli.h"

#include <locale.h>
#include <string.h>

static const char usage[] =
	"usage: trs <command> [options]\n"
	"\n"
	"Restores .tar.zst archives made by the source side of the S3 Cross-Region\n"
	"Compressor into their destination buckets.\n"
	"\n"
	"commands:\n"
	"  process ARCHIVE [--dest file://DIR] [--region R]   restore one archive\n"
	"  inspect ARCHIVE [--json]                            show manifest, members, joins\n"
	"  pack DIR -o OUT.tar.zst --target REGION:BUCKET[:CLASS] ...\n"
	"                                                      write an archive in the source side's format\n"
	"  serve --queue URL [--dest file://DIR] [--batch N]  consume S3 notifications from SQS (or dir://PATH)\n"
	"  head STORAGE BUCKET KEY                             show a restored object's tags, class, metadata\n"
	"  restore-backup s3://BUCKET/KEY --object NAME ...    restore chosen objects from a backup archive\n"
	"\n"
	"  trs <command> --help    options of a command\n"
	"  trs --version           version of trs and libtrs\n"
	"\n"
	"exit codes: 0 done, 1 some objects failed (nothing lost; run again),\n"
	"            2 bad usage or configuration, 3 the archive cannot be read,\n"
	"            4 the archive has targets, none in this region (nothing written),\n"
	"            5 a service could not be reached (endpoint, network, TLS)\n";

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("trs %s (libtrs %s)\n", TRS_VERSION, trs_version());
		return EXIT_OK;
	}
	static const struct {
		const char *name, *prog; /* prog: argv[0] of the command, as getopt's messages name it */
		int (*run)(int, char **);
	} commands[] = {
		{"process", "trs process", cmd_process},
		{"inspect", "trs inspect", cmd_inspect},
		{"pack", "trs pack", cmd_pack},
		{"head", "trs head", cmd_head},
		{"serve", "trs serve", cmd_serve},
		{"restore-backup", "trs restore-backup", cmd_restore_backup},
	};
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(cmd, commands[i].name)) {
			argv[1] = (char *)commands[i].prog;
			return commands[i].run(argc - 1, argv + 1);
		}
	}
	return cli_usage_error(NULL, "unknown command '%s'", cmd);
}
