/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fs backend's conditional writes: newest wins, with the comparison and
 * the write one step against writers in other threads and other processes.
 */
#include "harness.h"
#include "internal.h"
#include "storage/storage_fs.h"
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[256];

static trs_storage *fresh(int sidecar)
{
	trs_storage *s = tu_fs_fresh(root, sizeof(root), "trs-guard-test");
	if (s && sidecar)
		((fs_storage *)s)->sidecar = 1; /* as on a filesystem without user xattrs */
	return s;
}

/* A body that is not in memory, so the backend streams it (the O_TMPFILE path). */
typedef struct {
	const char *data;
	size_t len, pos;
} slow_body;

static int64_t slow_read(void *self, void *buf, size_t len, trs_error *err)
{
	(void)err;
	slow_body *b = self;
	size_t n = b->len - b->pos < len ? b->len - b->pos : len;
	if (n > 3)
		n = 3;
	memcpy(buf, b->data + b->pos, n);
	b->pos += n;
	return (int64_t)n;
}

/* Write version `minute` (its bytes name it) of bucket/key: the time is 10:<minute>. */
static int put_version(trs_storage *s, const char *key, int minute, int streamed, trs_error *err)
{
	char data[64], when[32], etag[16];
	snprintf(data, sizeof(data), "version %02d", minute);
	snprintf(when, sizeof(when), "2025-01-23 10:%02d:00", minute);
	snprintf(etag, sizeof(etag), "e%02d", minute);
	trs_kv meta[] = {{"original-creation-time", when}, {"original-etag", etag}};
	trs_put_request r = TRS_PUT_REQUEST_INIT;
	r.bucket = "bkt";
	r.key = key;
	r.metadata = meta;
	r.nmetadata = 2;
	trs_write_condition c = TRS_WRITE_CONDITION_INIT;
	c.source_time = when;
	c.source_etag = etag;
	trs_memory_body mb;
	slow_body sb = {data, strlen(data), 0};
	trs_body b = {slow_read, &sb, strlen(data)};
	return trs_upload_if_newer(s, &r, &c, streamed ? &b : trs_memory_body_init(&mb, data, strlen(data)), err);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	if (d)
		closedir(d);
	return n;
}

static int sink(void *ud, const void *data, size_t len, trs_error *err)
{
	(void)err;
	strncat(ud, data, len);
	return 0;
}

static void read_back(trs_storage *s, const char *key, char *out)
{
	trs_error err = TRS_ERROR_INIT;
	out[0] = '\0';
	trs_storage_get(s, "bkt", key, 0, UINT64_MAX, sink, out, &err);
}

static void newest_wins(int streamed, int sidecar)
{
	trs_storage *s = fresh(sidecar);
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	char got[64];
	CHECK(put_version(s, "k", 5, streamed, &err) == TRS_WRITTEN);
	CHECK(put_version(s, "k", 3, streamed, &err) == TRS_KEPT_NEWER);
	read_back(s, "k", got);
	CHECK_STR(got, "version 05");
	CHECK(put_version(s, "k", 5, streamed, &err) == TRS_ALREADY_CURRENT);
	CHECK(put_version(s, "k", 7, streamed, &err) == TRS_WRITTEN);
	read_back(s, "k", got);
	CHECK_STR(got, "version 07");
	trs_object_info info;
	CHECK(trs_storage_head(s, "bkt", "k", &info, &err) == 0);
	const char *t, *e;
	trs__recorded_version(&info, &t, &e);
	CHECK_STR(t, "2025-01-23 10:07:00");
	trs_object_info_clear(&info);
	/* nothing left behind: no temporary beside the object */
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/bkt", root);
	CHECK(count_entries(dir) == 1);
	tu_fs_cleanup(s, root);
}

TEST(fs_guard_newer_then_older_keeps_the_newer_in_memory)
{
	newest_wins(0, 0);
}

TEST(fs_guard_newer_then_older_keeps_the_newer_streamed)
{
	newest_wins(1, 0);
}

TEST(fs_guard_newer_then_older_keeps_the_newer_with_sidecars)
{
	newest_wins(0, 1);
	newest_wins(1, 1);
}

TEST(fs_guard_replaces_an_object_without_a_version_and_a_planted_symlink)
{
	trs_storage *s = fresh(0);
	CHECK(s);
	trs_error err = TRS_ERROR_INIT;
	trs_put_request r = TRS_PUT_REQUEST_INIT;
	r.bucket = "bkt";
	r.key = "plain";
	trs_memory_body mb;
	CHECK(trs_upload(s, &r, trs_memory_body_init(&mb, "someone else's", 14), &err) == 0);
	CHECK(put_version(s, "plain", 1, 0, &err) == TRS_WRITTEN);
	char outside[512], planted[512], got[64];
	snprintf(outside, sizeof(outside), "%s.outside", root);
	FILE *f = fopen(outside, "w");
	CHECK(f);
	fputs("not yours", f);
	fclose(f);
	snprintf(planted, sizeof(planted), "%s/bkt/link", root);
	CHECK(symlink(outside, planted) == 0);
	CHECK(put_version(s, "link", 1, 1, &err) == TRS_WRITTEN);
	struct stat st;
	CHECK(lstat(planted, &st) == 0 && S_ISREG(st.st_mode));
	f = fopen(outside, "r");
	CHECK(f && fgets(got, sizeof(got), f));
	fclose(f);
	CHECK_STR(got, "not yours");
	unlink(outside);
	tu_fs_cleanup(s, root);
}

#define RACERS 6
#define ROUNDS 20

typedef struct {
	trs_storage *s;
	int minute;
	int round;
	int outcome;
	pthread_barrier_t *go;
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	char key[32];
	snprintf(key, sizeof(key), "race-%d", r->round);
	trs_error err = TRS_ERROR_INIT;
	pthread_barrier_wait(r->go);
	r->outcome = put_version(r->s, key, r->minute, r->minute % 2, &err);
	return NULL;
}

/* Writers of one key in threads, in every order: the newest stands, and exactly one write of each
 * version that was newer than what it found went through. */
static void race_threads(int sidecar)
{
	trs_storage *s = fresh(sidecar);
	CHECK(s);
	for (int round = 0; round < ROUNDS; round++) {
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, RACERS);
		racer r[RACERS];
		pthread_t t[RACERS];
		for (int i = 0; i < RACERS; i++) {
			r[i] = (racer){s, 10 + (i * 7 + round) % RACERS, round, -99, &go};
			pthread_create(&t[i], NULL, race, &r[i]);
		}
		int newest_written = 0;
		for (int i = 0; i < RACERS; i++) {
			pthread_join(t[i], NULL);
			CHECK(r[i].outcome == TRS_WRITTEN || r[i].outcome == TRS_KEPT_NEWER);
			if (r[i].minute == 10 + RACERS - 1)
				newest_written = r[i].outcome == TRS_WRITTEN;
		}
		pthread_barrier_destroy(&go);
		CHECK(newest_written);
		char key[32], got[64], want[64];
		snprintf(key, sizeof(key), "race-%d", round);
		snprintf(want, sizeof(want), "version %02d", 10 + RACERS - 1);
		read_back(s, key, got);
		CHECK_STR(got, want);
	}
	tu_fs_cleanup(s, root);
}

TEST(fs_guard_threads_racing_on_one_key_leave_the_newest)
{
	race_threads(0);
}

TEST(fs_guard_threads_racing_on_one_key_leave_the_newest_with_sidecars)
{
	race_threads(1);
}

/* Processes with storages of their own on one directory (two consumers on one host). */
TEST(fs_guard_processes_racing_on_one_key_leave_the_newest)
{
	trs_storage *s = fresh(0);
	CHECK(s);
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", root);
	for (int round = 0; round < 10; round++) {
		pid_t kids[4];
		for (int i = 0; i < 4; i++) {
			kids[i] = fork();
			if (kids[i] == 0) {
				trs_storage *mine = NULL;
				trs_error err = TRS_ERROR_INIT;
				char key[32];
				snprintf(key, sizeof(key), "proc-%d", round);
				if (trs_storage_fs_new(&mine, NULL, dir, &err) < 0)
					_exit(3);
				int minute = 20 + (i + round) % 4;
				int rc = 0;
				for (int again = 0; again < 5 && rc >= 0; again++)
					rc = put_version(mine, key, minute, (i + again) % 2, &err);
				trs_storage_free(mine);
				_exit(rc < 0 ? 1 : 0);
			}
		}
		int bad = 0;
		for (int i = 0; i < 4; i++) {
			int st;
			waitpid(kids[i], &st, 0);
			bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
		}
		CHECK(!bad);
		char key[32], got[64];
		snprintf(key, sizeof(key), "proc-%d", round);
		read_back(s, key, got);
		CHECK_STR(got, "version 23");
	}
	tu_fs_cleanup(s, root);
}

int main(void)
{
	srandom((unsigned)getpid());
	RUN(fs_guard_newer_then_older_keeps_the_newer_in_memory);
	RUN(fs_guard_newer_then_older_keeps_the_newer_streamed);
	RUN(fs_guard_newer_then_older_keeps_the_newer_with_sidecars);
	RUN(fs_guard_replaces_an_object_without_a_version_and_a_planted_symlink);
	RUN(fs_guard_threads_racing_on_one_key_leave_the_newest);
	RUN(fs_guard_threads_racing_on_one_key_leave_the_newest_with_sidecars);
	RUN(fs_guard_processes_racing_on_one_key_leave_the_newest);
	return harness_done();
}
