/* SPDX-License-Identifier: Apache-2.0 */
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
	"  health [PATH] [--max-age S]                         is trs serve's health file fresh? (probes)\n"
	"\n"
	"  trs help <command>      options of a command (also: trs <command> --help)\n"
	"  trs --version           version of trs and libtrs\n"
	"\n"
	"exit codes: 0 done, 1 some objects failed (nothing lost; run again),\n"
	"            2 bad usage or configuration, 3 the archive cannot be read,\n"
	"            4 the archive has targets, none in this region (nothing written),\n"
	"            5 a service could not be reached (endpoint, network, TLS)\n";

static const struct {
	const char *name, *prog; /* prog: argv[0] of the command, as its messages name it */
	int (*run)(int, char **);
} commands[] = {
	{"process", "trs process", cmd_process},
	{"inspect", "trs inspect", cmd_inspect},
	{"pack", "trs pack", cmd_pack},
	{"head", "trs head", cmd_head},
	{"serve", "trs serve", cmd_serve},
	{"restore-backup", "trs restore-backup", cmd_restore_backup},
	{"health", "trs health", cmd_health},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return (int)i;
	return -1;
}

/* "unknown command 'proces'; did you mean 'process'?" (only when one is close). */
static int unknown_command(const char *name)
{
	if (name[0] == '-') {
		static const char *const top[] = {"--help", "--version"};
		const char *near = cli_nearest(name, top, 2);
		if (near)
			cli_usage_line(NULL, "unknown option '%s'; did you mean '%s'?", name, near);
		else
			cli_usage_line(NULL, "unknown option '%s'", name);
		return cli_usage_error(NULL, NULL);
	}
	const char *names[NCOMMANDS + 1];
	for (size_t i = 0; i < NCOMMANDS; i++)
		names[i] = commands[i].name;
	names[NCOMMANDS] = "help";
	const char *near = cli_nearest(name, names, NCOMMANDS + 1);
	if (near)
		cli_usage_line(NULL, "unknown command '%s'; did you mean '%s'?", name, near);
	else
		cli_usage_line(NULL, "unknown command '%s'", name);
	return cli_usage_error(NULL, NULL);
}

static int run_command(int i, int argc, char **argv)
{
	argv[0] = (char *)commands[i].prog;
	return commands[i].run(argc, argv);
}

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || (!strcmp(cmd, "help") && argc == 2)) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("trs %s (libtrs %s)\n", TRS_VERSION, trs_version());
		return EXIT_OK;
	}
	/* `trs help CMD`, as git: CMD's own --help. */
	if (!strcmp(cmd, "help")) {
		if (argc > 3)
			return cli_usage_error(NULL, "give one command to help with");
		if (!strcmp(argv[2], "help")) {
			fputs(usage, stdout);
			return EXIT_OK;
		}
		int i = find_command(argv[2]);
		if (i < 0)
			return unknown_command(argv[2]);
		char *help_argv[] = {NULL, "--help", NULL};
		return run_command(i, 2, help_argv);
	}
	int i = find_command(cmd);
	if (i < 0)
		return unknown_command(cmd);
	return run_command(i, argc - 1, argv + 1);
}
