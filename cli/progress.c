/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The progress bar on a terminal's stderr, one phase at a time:
 *
 *   reading   the archive up to its manifest (manifest-last archives: all of
 *             it): compressed bytes read of the archive's size, bytes
 *             decompressed and their rate;
 *   restoring the objects: objects done of the manifest's count, object
 *             bytes written and their rate. (Decompressed bytes would stand
 *             still here: a manifest-last archive is all decompressed
 *             before its objects are written.)
 *
 * The library's reports only update a snapshot (they may come from the
 * archive reader and the restore walk, each knowing part of it); one thread
 * of ours draws the bar from the snapshot five times a second, so it never
 * flickers between phases and keeps its ETA and rate current while nothing
 * is reported. The ETA is the current phase's: the time it took so far for
 * the part of the phase done so far; the rate is that of the last two
 * seconds. Log lines share stderr under one lock and erase the bar first.
 *
 * The line fits the terminal (COLUMNS, else the width the terminal says,
 * asked again at each redraw) and never reaches its last column, where a
 * terminal wraps: a line that wraps scrolls the screen at every redraw.
 * Narrower, it drops its least useful fields first (the rate, the bytes,
 * the ETA, the bar), keeping the phase and its count.
 */
#include "cli.h"

#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define DRAW_INTERVAL_NS 200000000L
/* Rate samples: one per redraw, so the rate is that of the last two seconds. */
#define RATE_SAMPLES 10
#define BAR_MAX 24
#define BAR_MIN 8

typedef struct cli_progress {
	pthread_mutex_t lock;     /* the snapshot */
	trs_progress seen;        /* the largest value of every counter reported */
	bool restoring;
	double phase_start;
	double phase_from;        /* the phase's fraction when it began */
	double sample_time[RATE_SAMPLES];  /* the phase's figure (decompressed, written) at past redraws */
	uint64_t sample_bytes[RATE_SAMPLES];
	unsigned nsamples, next_sample;
	pthread_t thread;
	bool running;
	atomic_int stop;          /* set by cli_progress_stop, read by the drawing thread */
} cli_progress;

static pthread_mutex_t term_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bar_erase(cli_log *l)
{
	if (l->progress) {
		fputs("\r\033[K", stderr);
		l->progress = false;
	}
}

void cli_term_write(cli_log *l, const char *text, size_t len)
{
	pthread_mutex_lock(&term_lock);
	bar_erase(l);
	fwrite(text, 1, len, stderr);
	pthread_mutex_unlock(&term_lock);
}

void cli_progress_clear(cli_log *l)
{
	pthread_mutex_lock(&term_lock);
	bar_erase(l);
	pthread_mutex_unlock(&term_lock);
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void cli_progress_sink(const trs_progress *p, void *ud)
{
	cli_log *l = ud;
	cli_progress *pr = l->bar;
	if (!pr)
		return;
	pthread_mutex_lock(&pr->lock);
	trs_progress *s = &pr->seen;
	s->compressed_read = max_u64(s->compressed_read, p->compressed_read);
	s->compressed_total = max_u64(s->compressed_total, p->compressed_total);
	s->decompressed = max_u64(s->decompressed, p->decompressed);
	s->objects_done = max_u64(s->objects_done, p->objects_done);
	s->objects_total = max_u64(s->objects_total, p->objects_total);
	s->bytes_written = max_u64(s->bytes_written, p->bytes_written);
	if (p->pass > s->pass)
		s->pass = p->pass;
	pthread_mutex_unlock(&pr->lock);
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

/* Columns the bar may use: COLUMNS, else the terminal's width, else 80; never the last one. */
static size_t line_width(void)
{
	unsigned long long cols = 0;
	const char *env = getenv("COLUMNS");
	struct winsize ws;
	if (!(env && cli_parse_uint(env, 10000, &cols) && cols > 0)) {
		if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
			cols = ws.ws_col;
		else
			cols = 80;
	}
	return cols > 1 ? (size_t)cols - 1 : 1;
}

/* The phase's byte rate over the last samples; the sample of `now` is kept. */
static double sample_rate(cli_progress *pr, double now, uint64_t bytes)
{
	unsigned oldest = pr->nsamples < RATE_SAMPLES ? 0 : pr->next_sample;
	double rate = -1;
	if (pr->nsamples > 0 && now - pr->sample_time[oldest] > 0.1)
		rate = (double)(bytes - pr->sample_bytes[oldest]) / (now - pr->sample_time[oldest]);
	pr->sample_time[pr->next_sample] = now;
	pr->sample_bytes[pr->next_sample] = bytes;
	pr->next_sample = (pr->next_sample + 1) % RATE_SAMPLES;
	if (pr->nsamples < RATE_SAMPLES)
		pr->nsamples++;
	return rate;
}

/* The fields of the line, most useful first: a narrower line drops them from the end. */
enum { F_COUNT, F_BAR, F_ETA, F_BYTES, F_RATE, NFIELDS };

/* The bar's line from the snapshot (under pr->lock), at most `width` columns (all ASCII). */
static void render(cli_progress *pr, double now, size_t width, char *line, size_t size)
{
	const trs_progress *s = &pr->seen;
	bool restoring = s->objects_total > 0;
	double frac = -1;
	if (restoring)
		frac = (double)s->objects_done / (double)s->objects_total;
	else if (s->compressed_total)
		frac = (double)s->compressed_read / (double)s->compressed_total;
	if (frac > 1)
		frac = 1;
	if (restoring != pr->restoring || pr->phase_start == 0) {
		pr->restoring = restoring;
		pr->phase_start = now;
		pr->phase_from = frac > 0 ? frac : 0;
		pr->nsamples = pr->next_sample = 0; /* the rate is of another figure now */
	}
	uint64_t figure = restoring ? s->bytes_written : s->decompressed;
	double rate = sample_rate(pr, now, figure);

	char field[NFIELDS][64] = {{0}}, a[24], b[24];
	const char *label = restoring ? "restoring" : "reading  ";
	if (restoring) {
		snprintf(field[F_COUNT], sizeof(field[F_COUNT]), " %llu/%llu objects",
			 (unsigned long long)s->objects_done, (unsigned long long)s->objects_total);
	} else if (s->compressed_total) {
		human_bytes((double)s->compressed_read, a, sizeof(a));
		human_bytes((double)s->compressed_total, b, sizeof(b));
		snprintf(field[F_COUNT], sizeof(field[F_COUNT]), " %s of %s", a, b);
	}
	human_bytes((double)figure, a, sizeof(a));
	snprintf(field[F_BYTES], sizeof(field[F_BYTES]), "%s %s", a, restoring ? "written" : "decompressed");
	if (rate >= 0) {
		human_bytes(rate, a, sizeof(a));
		snprintf(field[F_RATE], sizeof(field[F_RATE]), "%s/s", a);
	}
	double phase_secs = now - pr->phase_start, gained = frac - pr->phase_from;
	if (frac >= 0 && frac < 1 && gained > 0.01 && phase_secs > 0.5)
		snprintf(field[F_ETA], sizeof(field[F_ETA]), "ETA %.0fs", phase_secs / gained * (1 - frac));

	/* Take the fields in order of use while they fit; the bar takes what is left, up to its width. */
	size_t used = strlen(label), bar_width = 0;
	bool shown[NFIELDS] = {false};
	for (int f = 0; f < NFIELDS; f++) {
		size_t need = f == F_BAR ? (frac >= 0 ? BAR_MIN + 3 : 0) : strlen(field[f]);
		if (!need)
			continue;
		if (f != F_COUNT && f != F_BAR)
			need += 2; /* ", " before it (or one space) */
		if (used + need > width)
			break;
		used += need;
		shown[f] = true;
	}
	if (shown[F_BAR]) {
		bar_width = BAR_MIN + (width - used < BAR_MAX - BAR_MIN ? width - used : BAR_MAX - BAR_MIN);
		used += bar_width - BAR_MIN;
	}

	/* Drawn as: label [bar] count, bytes, rate, ETA */
	size_t n = (size_t)snprintf(line, size, "\r\033[K%s", label);
	if (shown[F_BAR] && n + bar_width + 4 < size) {
		int filled = (int)(frac * (double)bar_width);
		line[n++] = ' ';
		line[n++] = '[';
		for (size_t i = 0; i < bar_width; i++)
			line[n++] = (int)i < filled ? '#' : '.';
		line[n++] = ']';
		line[n] = '\0';
	}
	if (shown[F_COUNT] && n < size)
		n += (size_t)snprintf(line + n, size - n, "%s", field[F_COUNT]);
	const int tail[] = {F_BYTES, F_RATE, F_ETA};
	bool first = !shown[F_COUNT];
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++) {
		if (!shown[tail[i]] || n >= size)
			continue;
		n += (size_t)snprintf(line + n, size - n, "%s%s", first ? " " : ", ", field[tail[i]]);
		first = false;
	}
	/* Whatever happens above (a terminal narrower than the label), the line stops at the width. */
	size_t prefix = 4; /* "\r\033[K" */
	if (n > prefix + width && prefix + width < size)
		line[prefix + width] = '\0';
}

static void *draw_loop(void *arg)
{
	cli_log *l = arg;
	cli_progress *pr = l->bar;
	while (!atomic_load(&pr->stop)) {
		char line[512];
		size_t width = line_width();
		pthread_mutex_lock(&pr->lock);
		bool have = pr->seen.pass != 0;
		if (have)
			render(pr, now_s(), width, line, sizeof(line));
		pthread_mutex_unlock(&pr->lock);
		if (have) {
			pthread_mutex_lock(&term_lock);
			fputs(line, stderr);
			fflush(stderr);
			l->progress = true;
			pthread_mutex_unlock(&term_lock);
		}
		struct timespec ts = {0, DRAW_INTERVAL_NS};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

bool cli_progress_start(cli_log *l)
{
	cli_progress *pr = calloc(1, sizeof(*pr));
	if (!pr)
		return false;
	pthread_mutex_init(&pr->lock, NULL);
	l->bar = pr;
	if (pthread_create(&pr->thread, NULL, draw_loop, l) != 0) {
		l->bar = NULL;
		pthread_mutex_destroy(&pr->lock);
		free(pr);
		return false;
	}
	pr->running = true;
	return true;
}

void cli_progress_stop(cli_log *l)
{
	cli_progress *pr = l->bar;
	if (!pr)
		return;
	atomic_store(&pr->stop, 1);
	if (pr->running)
		pthread_join(pr->thread, NULL);
	l->bar = NULL;
	pthread_mutex_destroy(&pr->lock);
	free(pr);
	cli_progress_clear(l);
}
