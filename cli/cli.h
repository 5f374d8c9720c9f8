/* The trs command: shared pieces of the subcommands. Parsing and printing only. */
#ifndef TRS_CLI_H
#define TRS_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <trs.h>

/* Exit codes (DESIGN.md). */
enum {
	EXIT_OK = 0,
	EXIT_PARTIAL = 1,  /* some objects failed; nothing lost, running again is safe */
	EXIT_USAGE = 2,    /* bad usage or configuration */
	EXIT_ARCHIVE = 3   /* the archive cannot be read */
};

typedef struct cli_log {
	trs_log_level level;
	bool json;
	bool progress;      /* a progress bar is on stderr's last line */
} cli_log;

/* Parse --log-level / --log-format values. Return false on a bad value. */
bool cli_log_level_parse(const char *s, trs_log_level *out);
bool cli_log_format_parse(const char *s, bool *json);
void cli_log_init(cli_log *l);
/* The trs_log_fn for a cli_log. */
void cli_log_sink(trs_log_level level, const char *message, const trs_log_field *fields, size_t n, void *ud);
/* Log from the command itself. */
void cli_log_msg(cli_log *l, trs_log_level level, const char *message, const char *k1, const char *v1);
/* Erase a progress bar before other output. */
void cli_progress_clear(cli_log *l);
void cli_progress_sink(const trs_progress *p, void *ud);

/* Parse a byte count: "1048576", "64M", "1G" (binary units). */
bool cli_parse_bytes(const char *s, uint64_t *out);
bool cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/* Exit code for a library error code. */
int cli_exit_code(int rc);

/* A JSON string, escaped, to a stream. */
void cli_json_string(FILE *f, const char *s);

int cmd_process(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_head(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_restore_backup(int argc, char **argv);

#endif
