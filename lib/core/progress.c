/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The progress of one restore (trs_progress), reported from the reading
 * thread: while it walks the archive, and while it waits for the writers
 * to finish what it handed them (the objects of a manifest-last archive are
 * all written after the last byte was read). In that wait nothing is
 * decompressed any more: the bytes written are what advances.
 */
#include "pipeline.h"

#include <errno.h>
#include <time.h>

#define WAIT_REPORT_NS 200000000L

void trs__restore_progress(trs__run *run, const trs_archive *archive)
{
	const trs_ctx *ctx = run->ctx;
	if (!ctx->progress)
		return;
	trs_archive_stats st;
	trs_archive_get_stats(archive, &st);
	trs_progress p = {0};
	p.compressed_read = st.compressed_read;
	p.decompressed = st.decompressed;
	trs__run_done(run, &p.objects_done, &p.bytes_written);
	p.objects_total = run->report->objects_total;
	p.pass = (int)st.passes + 1;
	ctx->progress(&p, ctx->progress_userdata);
}

void trs__restore_wait_idle(trs__run *run, const trs_archive *archive)
{
	if (!run->ctx->progress || !archive) {
		trs__run_wait_idle(run);
		return;
	}
	pthread_mutex_lock(&run->mu);
	while (run->busy) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until); /* idle_cv uses the default clock */
		until.tv_nsec += WAIT_REPORT_NS;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&run->idle_cv, &run->mu, &until) == ETIMEDOUT && run->busy) {
			pthread_mutex_unlock(&run->mu);
			trs__restore_progress(run, archive);
			pthread_mutex_lock(&run->mu);
		}
	}
	pthread_mutex_unlock(&run->mu);
}
