/* SPDX-License-Identifier: Apache-2.0 */
/* Logs (JSON lines or text), number parsing, exit codes. The progress bar is cli/progress.c. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

bool cli_log_level_parse(const char *s, trs_log_level *out)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (trs_log_level)i;
			return true;
		}
	if (!strcmp(s, "warning")) {
		*out = TRS_LOG_WARN;
		return true;
	}
	return false;
}

bool cli_log_format_parse(const char *s, bool *json)
{
	if (!strcmp(s, "json"))
		*json = true;
	else if (!strcmp(s, "text"))
		*json = false;
	else
		return false;
	return true;
}

void cli_log_init(cli_log *l)
{
	memset(l, 0, sizeof(*l));
	l->level = TRS_LOG_INFO;
	l->json = !isatty(STDERR_FILENO);
}

/*
 * Length of the valid UTF-8 character at s (NUL-terminated), or 0 when none
 * starts there; *bad then receives the length of the maximal invalid
 * subpart, which becomes one U+FFFD (as Python and the Unicode
 * recommendation replace it). Overlong forms, surrogates and code points
 * above U+10FFFF are invalid: strict decoders refuse them.
 */
static size_t utf8_char(const unsigned char *s, size_t *bad)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need;
	*bad = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	for (size_t i = 1; i < need; i++) {
		/* A NUL ends the string, and is never a continuation byte: no read past it. */
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf)) {
			*bad = i;
			return 0;
		}
	}
	return need;
}

/* Every string written is valid UTF-8, whatever the caller passes (a name cut inside a
 * character, bytes of another encoding): a bad sequence becomes U+FFFD, so that every
 * line parses with a strict JSON reader. */
void cli_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x80) {
			size_t bad, n = utf8_char(p, &bad);
			if (n)
				fwrite(p, 1, n, f);
			else
				fputs("\ufffd", f);
			p += (n ? n : bad) - 1;
			continue;
		}
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* A JSON number exactly as written: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *s)
{
	const char *p = s;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return false;
	if (*p == '.') {
		if (!(*++p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0' && p - s < 32;
}

/*
 * Fields whose values are names, even when they look like numbers (a key
 * "2025", a bucket "123456"): always JSON strings, so that a field has one
 * type in every record.
 */
static bool name_field(const char *key)
{
	static const char *const names[] = {"archive", "bucket", "key", "relative_key", "object_name", "message_id",
					    "queue", "region", "profile", "role_arn", "etag", "code", "error", "stage",
					    "path", "source", "namespace", "catalog_bucket", "version", "dead_letter",
					    "file"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(key, names[i]) == 0)
			return true;
	return false;
}

void cli_log_sink(trs_log_level level, const char *message, const trs_log_field *fields, size_t n, void *ud)
{
	cli_log *l = ud;
	/* One fprintf per line would interleave between threads; build it, write it once. */
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);
	if (!f)
		return;
	if (l->json) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		struct tm tm;
		gmtime_r(&tv.tv_sec, &tm);
		char ts[40];
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(f, "{\"timestamp\":\"%s.%03ldZ\",\"level\":\"%s\",\"message\":", ts, (long)(tv.tv_usec / 1000),
			level_names[level]);
		cli_json_string(f, message);
		for (size_t i = 0; i < n; i++) {
			fputc(',', f);
			cli_json_string(f, fields[i].key);
			fputc(':', f);
			/* Counts, sizes and durations are JSON numbers ("objects_written":4). */
			if (!name_field(fields[i].key) && json_number(fields[i].value))
				fputs(fields[i].value, f);
			else
				cli_json_string(f, fields[i].value);
		}
		fputs("}\n", f);
	} else {
		fprintf(f, "trs: %s: %s", level_names[level], message);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%s%s=%s", i ? ", " : " (", fields[i].key, fields[i].value);
		fputs(n ? ")\n" : "\n", f);
	}
	fclose(f);
	cli_term_write(l, line, len);
	free(line);
}

void cli_log_msg(cli_log *l, trs_log_level level, const char *message, const char *k1, const char *v1)
{
	if (level > l->level)
		return;
	trs_log_field f = {k1, v1};
	cli_log_sink(level, message, &f, k1 ? 1 : 0, l);
}

bool cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_parse_bytes(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return false;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	if (fmt) {
		fprintf(stderr, "trs%s%s: ", cmd ? " " : "", cmd ? cmd : "");
		va_list ap;
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "Try 'trs%s%s --help' for more information.\n", cmd ? " " : "", cmd ? cmd : "");
	return EXIT_USAGE;
}

int cli_exit_code(int rc)
{
	switch (rc) {
	case TRS_OK: return EXIT_OK;
	case TRS_EPARTIAL:
	case TRS_ECANCELED: return EXIT_PARTIAL;
	case TRS_EINVAL:
	case TRS_EUNSUPPORTED:
	case TRS_EAUTH: return EXIT_USAGE;
	case TRS_EREGION: return EXIT_REGION;
	case TRS_ENET: return EXIT_NETWORK;
	default: return EXIT_ARCHIVE;
	}
}
