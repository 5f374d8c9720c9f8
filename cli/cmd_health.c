/* SPDX-License-Identifier: Apache-2.0 */
/* trs health: a liveness probe on trs serve's health file, for images without a shell. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_AGE 120
/* Docker's HEALTHCHECK reads 1 as unhealthy (and reserves 2, which stays our usage error). */
#define EXIT_UNHEALTHY 1

static const char usage[] =
	"usage: trs health [PATH] [--max-age S]\n"
	"\n"
	"Check that trs serve touched its health file (PATH, else TRS_HEALTH_FILE) within\n"
	"the last S seconds: exit 0 when it did, 1 when the file is older or missing (the\n"
	"receiving loop is stuck, or never started). One line on stdout says which. For\n"
	"container health checks (HEALTHCHECK, ECS healthCheck, Kubernetes exec probes):\n"
	"it needs no shell.\n"
	"\n"
	"  --max-age S    the oldest the file may be, in seconds (120); trs serve touches\n"
	"                 it at every turn of its loop, at least every POLL_INTERVAL + 1 s\n"
	"                 while the queue answers\n";

int cmd_health(int argc, char **argv)
{
	enum { O_MAX_AGE = 256 };
	static const struct option opts[] = {
		{"max-age", required_argument, 0, O_MAX_AGE},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	unsigned long long max_age = DEFAULT_MAX_AGE;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "h", opts, "health")) != -1) {
		switch (c) {
		case O_MAX_AGE:
			if (!cli_parse_uint(optarg, 86400, &max_age) || max_age == 0)
				return cli_bad_value("health", optarg, "max-age");
			break;
		case 'h': fputs(usage, stdout); return EXIT_OK;
		default: return cli_usage_error("health", NULL);
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("health", "unexpected argument '%s'", argv[optind + 1]);
	const char *path = optind < argc ? argv[optind] : getenv("TRS_HEALTH_FILE");
	if (!path || !*path)
		return cli_usage_error("health", "no health file: pass PATH or set TRS_HEALTH_FILE");
	double age = 0;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_serve_health_age(path, &age, &err);
	if (rc == TRS_ENOTFOUND) {
		printf("unhealthy: no %s: trs serve has not turned its loop yet, or runs without this health file\n",
		       path);
		return EXIT_UNHEALTHY;
	}
	if (rc < 0) {
		printf("unhealthy: %s\n", err.message);
		return EXIT_UNHEALTHY;
	}
	if (age > (double)max_age) {
		printf("unhealthy: %s last touched %.0f s ago, more than %llu s: the receiving loop is stuck\n", path,
		       age, max_age);
		return EXIT_UNHEALTHY;
	}
	printf("healthy: %s touched %.0f s ago (at most %llu s)\n", path, age, max_age);
	return EXIT_OK;
}
