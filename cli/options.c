/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How trs reads a command line, beyond what getopt_long does:
 *
 * - options are written in full. getopt_long takes any unambiguous prefix
 *   (`--dry` for `--dry-run`), so a script that abbreviates works today and
 *   breaks the day another option shares the prefix; it is refused, naming
 *   the option it would have been;
 * - a mistyped command or option gets the nearest real one named ("did you
 *   mean"), only when it is close: a guess far off is noise;
 * - -v, -vv and -q set the log level, as zstd and git do.
 *
 * Every usage error is one line ("trs CMD: ...") followed by the caller's
 * "Try 'trs CMD --help'" hint, and exit code 2.
 */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

/* Words longer than this are compared as unlike anything (no name is as long). */
#define WORD_MAX 64

/* Optimal string alignment distance: Levenshtein plus swapped neighbours ("porcess"). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > WORD_MAX || lb > WORD_MAX)
		return (size_t)-1;
	size_t d[WORD_MAX + 1][WORD_MAX + 1];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *cli_nearest(const char *word, const char *const *names, size_t n)
{
	size_t len = strlen(word);
	if (len == 0)
		return NULL;
	/* The start of exactly one name: what getopt would have taken it for ("restore" for restore-backup). */
	const char *prefix_of = NULL;
	size_t prefixes = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(names[i], word, len) == 0) {
			prefix_of = names[i];
			prefixes++;
		}
	}
	if (prefixes == 1 && len >= 2)
		return prefix_of;
	/* Else the nearest, when it is one or two edits away (a third of the word at most) and alone there. */
	size_t limit = len / 3 ? len / 3 : 1, best = (size_t)-1;
	const char *nearest = NULL;
	bool tie = false;
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, names[i]);
		if (d < best) {
			best = d;
			nearest = names[i];
			tie = false;
		} else if (d == best) {
			tie = true;
		}
	}
	return nearest && best <= limit && best < len && !tie ? nearest : NULL;
}

/* The nearest long option to `name` (without its dashes), or NULL. */
static const char *nearest_option(const char *name, size_t len, const struct option *opts)
{
	char word[WORD_MAX + 1];
	if (len > WORD_MAX)
		return NULL;
	memcpy(word, name, len);
	word[len] = '\0';
	const char *names[128];
	size_t n = 0;
	for (; opts->name && n < sizeof(names) / sizeof(names[0]); opts++)
		names[n++] = opts->name;
	return cli_nearest(word, names, n);
}

/* "unknown option '--x'", and the nearest real one when there is one. */
static void unknown_long(const char *cmd, const char *text, const struct option *opts)
{
	const char *name = text + 2;
	size_t len = strcspn(name, "=");
	const char *near = nearest_option(name, len, opts);
	if (near)
		cli_usage_line(cmd, "unknown option '--%.*s'; did you mean '--%s'?", (int)len, name, near);
	else
		cli_usage_line(cmd, "unknown option '--%.*s'", (int)len, name);
}

/* getopt stays on an element whose rest it has not read yet ("-xq"), else it has moved past it. */
static bool in_cluster(int argc, char **argv)
{
	return optind < argc && argv[optind][0] == '-' && argv[optind][1] != '-' && strchr(argv[optind] + 1, optopt);
}

/* An unknown short option; "-json" was likely meant as "--json". */
static void unknown_short(const char *cmd, int argc, char **argv, const struct option *opts)
{
	const char *text = in_cluster(argc, argv) ? argv[optind] : argv[optind - 1];
	const char *near = text[0] == '-' && text[1] != '-' && strlen(text) > 2
				   ? nearest_option(text + 1, strlen(text + 1), opts)
				   : NULL;
	if (near)
		cli_usage_line(cmd, "unknown option '%s'; did you mean '--%s'?", text, near);
	else
		cli_usage_line(cmd, "unknown option '-%c'", optopt);
}

void cli_usage_line(const char *cmd, const char *fmt, ...)
{
	fprintf(stderr, "trs%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts, const char *cmd)
{
	/* A leading ':' tells a missing value (':') from an unknown option ('?'). */
	char spec[32];
	snprintf(spec, sizeof(spec), ":%s", shortopts);
	opterr = 0;
	int index = -1;
	int c = getopt_long(argc, argv, spec, opts, &index);
	if (c == -1)
		return -1;
	if (c == ':') {
		const char *name = cli_option_name(opts, optopt);
		if (strcmp(name, "?") != 0)
			cli_usage_line(cmd, "option '--%s' needs a value", name);
		else
			cli_usage_line(cmd, "option '-%c' needs a value", optopt);
		return '?';
	}
	if (c == '?') {
		if (optopt == 0)
			unknown_long(cmd, argv[optind - 1], opts);
		else if (!in_cluster(argc, argv) && strncmp(argv[optind - 1], "--", 2) == 0)
			cli_usage_line(cmd, "option '--%s' takes no value", cli_option_name(opts, optopt));
		else
			unknown_short(cmd, argc, argv, opts);
		return '?';
	}
	if (index < 0)
		return c;
	/* A long option: the element that named it is the last one taken, or the one before its value. */
	const char *text = optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
	if (strncmp(text, "--", 2) != 0 || strcspn(text + 2, "=") != strlen(opts[index].name)) {
		cli_usage_line(cmd, "unknown option '--%.*s'; did you mean '--%s'?", (int)strcspn(text + 2, "="),
			       text + 2, opts[index].name);
		return '?';
	}
	return c;
}

int cli_verbosity_option(int c, cli_log *log)
{
	switch (c) {
	case 'v':
		log->quiet = false;
		log->verbose++;
		trs_log_level wanted = log->verbose >= 2 ? TRS_LOG_DEBUG : TRS_LOG_INFO;
		if (log->level < wanted)
			log->level = wanted;
		return 1;
	case 'q':
		log->quiet = true;
		log->verbose = 0;
		log->level = TRS_LOG_ERROR;
		return 1;
	default: return 0;
	}
}

/*
 * What an option takes, for the message that refuses a value: a range and
 * its unit, or the words it knows. A bad value is fixed at once when the
 * message says what a good one is.
 */
const char *cli_option_takes(const char *name)
{
	static const struct {
		const char *name, *takes;
	} table[] = {
		{"max-memory", "a size of at least 1M (bytes, or with K, M, G, T: 256M)"},
		{"max-decompressed", "a size above 0 (bytes, or with K, M, G, T: 16T)"},
		{"max-manifest", "a size above 0 (bytes, or with K, M, G, T: 1G)"},
		{"multipart-threshold", "a size of at least 5M (bytes, or with K, M, G, T: 16M)"},
		{"part-size", "a size from 5M to 5G (bytes, or with K, M, G: 16M)"},
		{"workers", "a whole number from 1 to 1024"},
		{"max-inflight", "a whole number from 1 to 1024"},
		{"max-ratio", "a whole number from 1 to 4294967295 (N for N:1)"},
		{"batch", "a whole number of messages from 1 to 10"},
		{"visibility-timeout", "a whole number of seconds from 1 to 43200"},
		{"poll-interval", "a whole number of seconds from 0 to 20"},
		{"archives", "a whole number from 1 to 256"},
		{"max-attempts", "a whole number from 1 to 100"},
		{"shutdown-grace", "a whole number of seconds from 0 to 3600"},
		{"max-idle", "a whole number of seconds from 0 to 86400"},
		{"max-age", "a whole number of seconds from 1 to 86400"},
		{"level", "a zstd level from 1 to 22"},
		{"metrics", "cloudwatch, emf or none"},
		{"verify", "md5 or size"},
		{"overwrite", "newer or always"},
		{"foreign-archives", "fail or skip"},
		{"log-level", "error, warn, info or debug"},
		{"log-format", "json or text"},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(name, table[i].name))
			return table[i].takes;
	return NULL;
}

int cli_bad_value(const char *cmd, const char *value, const char *option)
{
	const char *takes = cli_option_takes(option);
	return cli_usage_error(cmd, "bad value '%s' for --%s%s%s", value, option, takes ? ": it takes " : "",
			       takes ? takes : "");
}
