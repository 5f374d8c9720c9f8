/*
 * The progress bar on a terminal's stderr, one phase at a time:
 *
 *   reading   the archive up to its manifest (manifest-last archives: all of
 *             it), as compressed bytes read of the archive's size;
 *   restoring the objects, as objects done of the manifest's count.
 *
 * The library's reports only update a snapshot (they may come from the
 * archive reader and the restore walk, each knowing half of it); one thread
 * of ours draws the bar from the snapshot five times a second, so it never
 * flickers between phases and keeps its ETA current while nothing is
 * reported. The ETA is the current phase's: the time it took so far for the
 * part of the phase done so far. Log lines share stderr under one lock and
 * erase the bar first.
 */
#include "cli.h"

#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DRAW_INTERVAL_NS 200000000L

typedef struct cli_progress {
	pthread_mutex_t lock;     /* the snapshot */
	trs_progress seen;        /* the largest value of every counter reported */
	bool restoring;
	double phase_start;
	double phase_from;        /* the phase's fraction when it began */
	double start;
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

/* The bar's line from the snapshot (under pr->lock). */
static void render(cli_progress *pr, double now, char *line, size_t size)
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
	}
	char bar[32] = "";
	if (frac >= 0) {
		int filled = (int)(frac * 24);
		for (int i = 0; i < 24; i++)
			bar[i] = i < filled ? '#' : '.';
		bar[24] = '\0';
	}
	char done[32], total[32], rate[32];
	double secs = now - pr->start > 0.001 ? now - pr->start : 0.001;
	human_bytes((double)s->decompressed, done, sizeof(done));
	human_bytes((double)s->decompressed / secs, rate, sizeof(rate));
	int n;
	if (restoring) {
		n = snprintf(line, size, "\r\033[Krestoring [%s] %llu/%llu objects, %s decompressed", bar,
			     (unsigned long long)s->objects_done, (unsigned long long)s->objects_total, done);
	} else {
		human_bytes((double)s->compressed_total, total, sizeof(total));
		char read[32];
		human_bytes((double)s->compressed_read, read, sizeof(read));
		n = s->compressed_total ? snprintf(line, size, "\r\033[Kreading   [%s] %s of %s, %s decompressed, %s/s",
						   bar, read, total, done, rate)
					: snprintf(line, size, "\r\033[Kreading   %s decompressed, %s/s", done, rate);
	}
	double phase_secs = now - pr->phase_start, gained = frac - pr->phase_from;
	if (n > 0 && (size_t)n < size && frac < 1 && gained > 0.01 && phase_secs > 0.5)
		snprintf(line + n, size - (size_t)n, ", ETA %.0fs", phase_secs / gained * (1 - frac));
}

static void *draw_loop(void *arg)
{
	cli_log *l = arg;
	cli_progress *pr = l->bar;
	while (!atomic_load(&pr->stop)) {
		char line[256];
		pthread_mutex_lock(&pr->lock);
		bool have = pr->seen.pass != 0;
		if (have)
			render(pr, now_s(), line, sizeof(line));
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
	pr->start = now_s();
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
