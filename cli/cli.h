/* SPDX-License-Identifier: Apache-2.0 */
/* The trs command: shared pieces of the subcommands. Parsing and printing only. */
#ifndef TRS_CLI_H
#define TRS_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <trs.h>

/* Exit codes (trs --help, man/trs.1 EXIT STATUS). */
enum {
	EXIT_OK = 0,
	EXIT_PARTIAL = 1,  /* some objects failed; nothing lost, running again is safe */
	EXIT_USAGE = 2,    /* bad usage or configuration */
	EXIT_ARCHIVE = 3,  /* the archive cannot be read */
	EXIT_REGION = 4,   /* the archive has targets, none in this region: nothing written, kept */
	EXIT_NETWORK = 5   /* a service could not be reached (endpoint, network, TLS): nothing written */
};

typedef struct cli_log {
	trs_log_level level;
	bool json;
	bool progress;      /* a progress bar is on stderr's last line */
	bool quiet;         /* -q: errors only, no progress bar or summary */
	int verbose;        /* -v given this many times */
	struct cli_progress *bar; /* cli/progress.c, while a bar is drawn */
} cli_log;

/* Parse --log-level / --log-format values. Return false on a bad value. */
bool cli_log_level_parse(const char *s, trs_log_level *out);
bool cli_log_format_parse(const char *s, bool *json);
void cli_log_init(cli_log *l);
/* The trs_log_fn for a cli_log. */
void cli_log_sink(trs_log_level level, const char *message, const trs_log_field *fields, size_t n, void *ud);
/* Log from the command itself. */
void cli_log_msg(cli_log *l, trs_log_level level, const char *message, const char *k1, const char *v1);
/* Write text to stderr whole, erasing the progress bar first (any thread). */
void cli_term_write(cli_log *l, const char *text, size_t len);
/* Erase a progress bar before other output. */
void cli_progress_clear(cli_log *l);
/* The trs_progress_fn: updates the bar's snapshot (userdata: the cli_log). */
void cli_progress_sink(const trs_progress *p, void *ud);
/* Start the thread that draws the bar (false when it cannot); stop it and erase the bar. */
bool cli_progress_start(cli_log *l);
void cli_progress_stop(cli_log *l);

/*
 * The command line (cli/options.c). cli_getopt is getopt_long that refuses
 * abbreviated long options and names the nearest real option of a mistyped
 * one: on such an error it prints "trs CMD: ..." (one line) and returns '?',
 * after which the caller prints the hint (cli_usage_error(CMD, NULL)).
 */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts, const char *cmd);
/* The name of `names` that `word` was likely meant as (a unique prefix, or a close spelling), or NULL. */
const char *cli_nearest(const char *word, const char *const *names, size_t n);
/* "trs CMD: <message>" on stderr, without the hint. */
void cli_usage_line(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* -v (info), -vv (debug), -q (errors only) on every command that logs; the last of them and
 * --log-level wins. */
#define CLI_VERBOSITY_OPTIONS {"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'}
/* Take -v or -q: 1 when taken, 0 when `c` is neither. */
int cli_verbosity_option(int c, cli_log *log);

/* Parse a byte count: "1048576", "64M", "1G" (binary units). */
bool cli_parse_bytes(const char *s, uint64_t *out);
bool cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/*
 * A usage error: "trs CMD: <message>" (when fmt is not NULL), then
 * "Try 'trs CMD --help' for more information." on stderr. Returns EXIT_USAGE.
 */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* What option `name` (without "--") takes, a range and its unit or its words; NULL when any text does. */
const char *cli_option_takes(const char *name);
/* The usage error of a refused value: "bad value 'V' for --NAME: it takes ...". Returns EXIT_USAGE. */
int cli_bad_value(const char *cmd, const char *value, const char *option);

/* Exit code for a library error code. */
int cli_exit_code(int rc);

/*
 * The version of the --json documents (the reports of process and
 * restore-backup, inspect's listing, head's object): their first field,
 * "schema". It is raised when a field is removed or renamed, or changes its
 * type or meaning; fields are added without raising it, so a reader checks
 * the number and ignores the fields it does not know.
 */
#define CLI_JSON_SCHEMA 1

/* A JSON string, escaped, to a stream. */
void cli_json_string(FILE *f, const char *s);

/*
 * Options shared by the commands that talk to storage (cli/job.c). Their
 * codes sit below the commands' own (256 and up).
 */
enum { CLI_O_REGION = 200, CLI_O_ENDPOINT, CLI_O_NOVERIFY, CLI_O_LEVEL, CLI_O_FORMAT, CLI_O_PROFILE, CLI_O_CABUNDLE };
#define CLI_COMMON_OPTIONS                                                                                        \
	{"region", required_argument, 0, CLI_O_REGION}, {"endpoint-url", required_argument, 0, CLI_O_ENDPOINT},    \
		{"no-verify-ssl", no_argument, 0, CLI_O_NOVERIFY}, {"log-level", required_argument, 0, CLI_O_LEVEL}, \
		{"log-format", required_argument, 0, CLI_O_FORMAT}, {"profile", required_argument, 0, CLI_O_PROFILE}, \
		{"ca-bundle", required_argument, 0, CLI_O_CABUNDLE}

/* Their --help lines. */
#define CLI_COMMON_HELP                                                                               \
	"  --profile NAME          AWS profile of ~/.aws/config and ~/.aws/credentials (keys,\n"        \
	"                          credential_process, role_arn + source_profile); beats\n"             \
	"                          AWS_ACCESS_KEY_ID [AWS_PROFILE]\n"                                     \
	"  --ca-bundle FILE        PEM file of the CAs to trust for TLS, e.g. a TLS-inspecting\n"       \
	"                          proxy's [AWS_CA_BUNDLE]\n"

typedef struct cli_common {
	const char *region;
	const char *endpoint;
	int no_verify_ssl;
	const char *profile;
	const char *ca_bundle;
} cli_common;

/* The shared options that configure the context: region, profile, CA bundle. */
void cli_common_apply(const cli_common *cc, trs_ctx_options *co);

/*
 * How a restore checks bytes, and S3 put settings (trs process, trs
 * restore-backup; trs serve takes TRS_VERIFY_LOCAL and TRS_S3_BUCKET_KEY
 * from the environment).
 */
enum { CLI_O_VERIFY = 220, CLI_O_VERIFYLOCAL, CLI_O_NOBUCKETKEY };
#define CLI_VERIFY_OPTIONS                                                                                        \
	{"verify", required_argument, 0, CLI_O_VERIFY}, {"verify-local", no_argument, 0, CLI_O_VERIFYLOCAL},        \
		{"no-bucket-key", no_argument, 0, CLI_O_NOBUCKETKEY}
#define CLI_VERIFY_USAGE                                                                                          \
	"  --verify MODE           md5 (default): size and MD5 of every object; size: size and\n"                  \
	"                          zstd's frame checksum only (trusted local restores)\n"                           \
	"  --verify-local          hash single PUTs here too, for S3-compatible servers that\n"                     \
	"                          ignore Content-MD5 (moto) [TRS_VERIFY_LOCAL=1]\n"                                \
	"  --no-bucket-key         SSE-KMS puts without an S3 Bucket Key (one KMS call per\n"                       \
	"                          object) [TRS_S3_BUCKET_KEY=false]\n"
int cli_verify_option(int c, const char *arg, trs_ctx_options *co, trs_s3_options *s3o);

/* Options of the commands that write objects: which version wins, archives for other regions
 * (trs process, serve, restore-backup). Their defaults come from TRS_OVERWRITE and
 * TRS_FOREIGN_ARCHIVES (trs_process_options_from_env). */
enum { CLI_O_OVERWRITE = 240, CLI_O_FOREIGN };
#define CLI_WRITE_OPTIONS                                                                                         	{"overwrite", required_argument, 0, CLI_O_OVERWRITE}, {"foreign-archives", required_argument, 0, CLI_O_FOREIGN}
#define CLI_WRITE_USAGE                                                                         \
	"  --overwrite WHEN        newer (default): an object replaces only an older version of\n" \
	"                          itself (S3 conditional writes); always: write whatever stands\n" \
	"                          there (servers without conditional writes) [TRS_OVERWRITE]\n"    \
	"  --foreign-archives A    fail (default): an archive with targets but none in this\n"     \
	"                          region is an error (exit 4), kept; skip: nothing to do\n"       \
	"                          [TRS_FOREIGN_ARCHIVES]\n"
int cli_write_option(int c, const char *arg, trs_process_options *po);

/* Take a shared option: 1 when taken, 0 when `c` is not one, -1 on a bad value. */
int cli_common_option(int c, const char *arg, cli_common *cc, cli_log *log);
/* The long name of option code `c` in `opts`, for messages. */
const char *cli_option_name(const struct option *opts, int c);

/* `-`: the archive from stdin (cli/stdin.c). */
typedef struct cli_stdin {
	const volatile int *cancel; /* a read interrupted once this is set returns TRS_ECANCELED */
	int spool_fd;               /* what stdin gave, kept for a rewind; -1 when not rewindable */
	uint64_t spooled;           /* bytes in the spool */
	uint64_t pos;               /* where the archive reader is */
} cli_stdin;

/*
 * Make `src` read stdin through `in` (named "(stdin)"); with `rewindable`,
 * what was read is kept in an unlinked temporary file so that the archive
 * can be read again. TRS_EINVAL when stdin is a terminal (`cmd` names the
 * command in the message), TRS_EIO when no temporary file can be made.
 */
int cli_stdin_source(cli_stdin *in, trs_archive_source *src, bool rewindable, const volatile int *cancel,
		     const char *cmd, trs_error *err);
void cli_stdin_close(cli_stdin *in);

/* One archive to restore: the context, the destination and the archive. */
typedef struct cli_job {
	trs_ctx *ctx;
	trs_storage *storage;         /* the destination */
	trs_storage *source_storage;  /* S3, for an s3:// archive when the destination is not S3 */
	trs_storage *archive_storage; /* where an s3:// archive is read from; NULL for a file */
	char *archive_bucket;
	const char *archive_key;
	trs_archive_source src;       /* a file or stdin */
	cli_stdin in;                 /* when the archive is `-` */
} cli_job;

/*
 * Create the context (logging to `log`, canceled by SIGINT and SIGTERM),
 * open the destination (`dest`, else S3 with `s3o`; `plan` instead, taken
 * over, for a dry run) and check the archive name. Returns 0, or EXIT_USAGE
 * after logging why.
 */
int cli_job_open(cli_job *j, const char *archive, const char *dest, trs_ctx_options *co, const trs_s3_options *s3o,
		 trs_storage *plan, cli_log *log);

/*
 * The storage a dry run writes to (cli/plan.c): it lists every put, one line
 * on `out` (bucket, key, size, class, KMS key, tab-separated), or keeps them
 * for cli_plan_json when `out` is NULL. NULL when out of memory.
 */
trs_storage *cli_plan_new(FILE *out);
/* The kept puts as a JSON array. */
void cli_plan_json(const trs_storage *plan, FILE *f);
/* Restore the archive into the destination: trs_process_from_storage for an
 * s3:// archive (the library's fetch-process-finish, as trs serve), else trs_process. */
int cli_job_run(cli_job *j, const trs_process_options *po, trs_report **report, trs_error *err);
void cli_job_close(cli_job *j);
/* The exit code: cli_exit_code, or 128 + the signal's number when SIGINT or SIGTERM canceled the job. */
int cli_job_exit_code(int rc);

int cmd_process(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_head(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_restore_backup(int argc, char **argv);
int cmd_health(int argc, char **argv);

#endif
