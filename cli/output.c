/* Logs (JSON lines or text), the progress bar, number parsing. */
#include "cli.h"

#include <errno.h>
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
	l->level = TRS_LOG_INFO;
	l->json = !isatty(STDERR_FILENO);
	l->progress = false;
}

void cli_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
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

void cli_progress_clear(cli_log *l)
{
	if (l->progress) {
		fputs("\r\033[K", stderr);
		l->progress = false;
	}
}

void cli_log_sink(trs_log_level level, const char *message, const trs_log_field *fields, size_t n, void *ud)
{
	cli_log *l = ud;
	cli_progress_clear(l);
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
	fwrite(line, 1, len, stderr);
	free(line);
}

void cli_log_msg(cli_log *l, trs_log_level level, const char *message, const char *k1, const char *v1)
{
	if (level > l->level)
		return;
	trs_log_field f = {k1, v1};
	cli_log_sink(level, message, &f, k1 ? 1 : 0, l);
}

static void human_bytes(double b, char *out, size_t size)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(out, size, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

void cli_progress_sink(const trs_progress *p, void *ud)
{
	cli_log *l = ud;
	static double start;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (start == 0)
		start = now;
	char done[32], rate[32];
	human_bytes((double)p->decompressed, done, sizeof(done));
	double secs = now - start > 0.001 ? now - start : 0.001;
	human_bytes((double)p->decompressed / secs, rate, sizeof(rate));
	char bar[32] = "";
	double frac = -1;
	if (p->pass == 2 && p->objects_total)
		frac = (double)p->objects_done / (double)p->objects_total;
	else if (p->compressed_total)
		frac = (double)p->compressed_read / (double)p->compressed_total;
	if (frac >= 0) {
		int filled = (int)(frac * 24);
		for (int i = 0; i < 24; i++)
			bar[i] = i < filled ? '#' : '.';
		bar[24] = '\0';
	}
	fprintf(stderr, "\r\033[K%s [%s] %s decompressed, %s/s", p->pass == 2 ? "restoring" : "reading manifest", bar,
		done, rate);
	if (p->pass == 2 && p->objects_total)
		fprintf(stderr, ", %llu/%llu objects", (unsigned long long)p->objects_done,
			(unsigned long long)p->objects_total);
	if (frac > 0.01 && frac < 1)
		fprintf(stderr, ", ETA %.0fs", secs / frac - secs);
	l->progress = true;
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

int cli_exit_code(int rc)
{
	switch (rc) {
	case TRS_OK: return EXIT_OK;
	case TRS_EPARTIAL:
	case TRS_ECANCELED: return EXIT_PARTIAL;
	case TRS_EINVAL:
	case TRS_EUNSUPPORTED:
	case TRS_EAUTH: return EXIT_USAGE;
	default: return EXIT_ARCHIVE;
	}
}
