/* SPDX-License-Identifier: Apache-2.0 */
/* Staging before the manifest (lib/storage/fs_stage.c): a real random name, a lock
 * held while the run lives, and stale staging of dead runs removed. Then the
 * spool of small objects before the manifest (lib/core/spool.c) through
 * trs_process into a directory: small ones spooled, large ones staged, tar
 * order kept, and nothing left behind when it fails. */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REGION "eu-west-1"
#define TARGETS "{\"targets\":[{\"region\":\"" REGION "\",\"bucket\":\"dest\"}],\"objects\":["

static char root[256];

static trs_storage *fresh(void)
{
	return tu_fs_fresh(root, sizeof(root), "trs-stage-test");
}

static void cleanup(trs_storage *s)
{
	tu_fs_cleanup(s, root);
}

static int staging_dirs(char *first, size_t size)
{
	int n = 0;
	DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, ".trs-staging-", 13) && n++ == 0 && first)
			snprintf(first, size, "%s", de->d_name);
	if (d)
		closedir(d);
	return n;
}

/* A staging directory as a run leaves it: `name`, one staged file in it. */
static int make_left_over(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (mkdir(path, 0700) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s/0", root, name);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		return -1;
	int ok = write(fd, "x", 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

static int exists(const char *name)
{
	char path[512];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s", root, name);
	return stat(path, &sb) == 0;
}

/* A pid that is not running: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

TEST(fs_stage_names_are_random_and_the_directory_goes_away)
{
	trs_storage *s = fresh();
	CHECK(s);
	trs_storage_stage *a = NULL, *b = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__storage_stage_open(s, &a, &err) | trs__storage_stage_open(s, &b, &err);
	char name[128] = "";
	int n = staging_dirs(name, sizeof(name));
	trs__storage_stage_close(a);
	trs__storage_stage_close(b);
	int after = staging_dirs(NULL, 0);
	cleanup(s);
	CHECK(rc == 0);
	CHECK(n == 2);
	/* .trs-staging-<pid>-<16 hex digits of getrandom> */
	char want[64];
	snprintf(want, sizeof(want), ".trs-staging-%ld-", (long)getpid());
	CHECK(!strncmp(name, want, strlen(want)) && strlen(name) == strlen(want) + 16);
	CHECK(after == 0);
}

/* kill -9 leaves the staging directory; the next run removes it. */
TEST(fs_stage_of_a_killed_run_is_removed_by_the_next)
{
	trs_storage *s = fresh();
	CHECK(s);
	pid_t child = fork();
	if (child == 0) {
		trs_storage_stage *st = NULL;
		trs_error err = TRS_ERROR_INIT;
		if (trs__storage_stage_open(s, &st, &err) < 0)
			_exit(1);
		int fd = trs__storage_stage_create(st, 0, &err);
		_exit(fd >= 0 && write(fd, "bytes", 5) == 5 ? 0 : 1); /* dies with its staging in place */
	}
	int status = 0;
	waitpid(child, &status, 0);
	int left = staging_dirs(NULL, 0);
	trs_storage_stage *st = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__storage_stage_open(s, &st, &err);
	char name[128] = "";
	int now = staging_dirs(name, sizeof(name));
	char mine[64];
	snprintf(mine, sizeof(mine), ".trs-staging-%ld-", (long)getpid());
	trs__storage_stage_close(st);
	cleanup(s);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(left == 1);
	CHECK(rc == 0);
	CHECK(now == 1 && !strncmp(name, mine, strlen(mine)));
}

/* A live run's staging is never touched, whatever its pid says; an unlocked one of a dead pid is. */
TEST(fs_stage_cleanup_spares_live_runs)
{
	trs_storage *s = fresh();
	CHECK(s);
	char locked[64], dead[64], old_live[64];
	snprintf(locked, sizeof(locked), ".trs-staging-%ld-aaaa", (long)dead_pid()); /* pid gone, lock held */
	snprintf(dead, sizeof(dead), ".trs-staging-%ld-bbbb", (long)dead_pid());
	snprintf(old_live, sizeof(old_live), ".trs-staging-1-cccc"); /* no lock, but its pid runs: maybe an older version */
	CHECK(make_left_over(locked) == 0 && make_left_over(dead) == 0 && make_left_over(old_live) == 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, locked);
	int lockfd = open(path, O_RDONLY | O_DIRECTORY);
	CHECK(lockfd >= 0 && flock(lockfd, LOCK_EX) == 0); /* as the running owner holds it */
	trs_storage_stage *st = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__storage_stage_open(s, &st, &err);
	int kept_locked = exists(locked), removed_dead = !exists(dead), kept_old = exists(old_live);
	trs__storage_stage_close(st);
	close(lockfd);
	cleanup(s);
	CHECK(rc == 0);
	CHECK(kept_locked);
	CHECK(removed_dead);
	CHECK(kept_old);
}

/* A spool file has no name: the staging directory stays empty, the bytes are there. */
TEST(fs_stage_spool_is_a_file_with_no_name)
{
	trs_storage *s = fresh();
	CHECK(s);
	trs_storage_stage *st = NULL;
	trs_error err = TRS_ERROR_INIT;
	char where[512] = "", name[128] = "", path[700];
	int rc = trs__storage_stage_open(s, &st, &err);
	int fd = rc == 0 ? trs__storage_stage_spool(st, where, sizeof(where), &err) : -1;
	char back[6] = "";
	int wrote = fd >= 0 && pwrite(fd, "bytes", 5, 0) == 5 && pread(fd, back, 5, 0) == 5;
	staging_dirs(name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", root, name);
	int entries = 0;
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d)))
		entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	if (fd >= 0)
		close(fd);
	trs__storage_stage_close(st);
	cleanup(s);
	CHECK(rc == 0 && fd >= 0);
	CHECK(!strcmp(where, path));
	CHECK(wrote && !strcmp(back, "bytes"));
	CHECK(entries == 0);
}

/* What the restore says about the objects before the manifest (a debug record). */
typedef struct {
	int seen;
	long spooled, staged;
} early_log;

static void capture(trs_log_level level, const char *message, const trs_log_field *f, size_t n, void *ud)
{
	(void)level;
	early_log *l = ud;
	if (strcmp(message, "objects before the manifest") != 0)
		return;
	l->seen = 1;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(f[i].key, "spooled"))
			l->spooled = atol(f[i].value);
		else if (!strcmp(f[i].key, "staged"))
			l->staged = atol(f[i].value);
	}
}

/* trs_process of members (tar order) into storage s. */
static int restore_fs(trs_storage *s, const tu_member *m, size_t n, uint64_t max_memory, early_log *log,
		      trs_report **rep, trs_error *err)
{
	unsigned char *z = NULL;
	size_t zlen = tu_archive(m, n, 1, 1, &z);
	trs_ctx_options o = TRS_CTX_OPTIONS_INIT;
	o.region = REGION;
	o.workers = 2;
	o.max_memory = max_memory;
	o.log = capture;
	o.log_userdata = log;
	o.log_level = TRS_LOG_DEBUG;
	trs_ctx *ctx = NULL;
	int rc = trs_ctx_new(&ctx, &o, err);
	trs_archive_source src = TRS_ARCHIVE_SOURCE_INIT;
	src.name = "spool.tar.zst";
	src.data = z;
	src.size = zlen;
	*rep = NULL;
	if (rc == 0)
		rc = trs_process(ctx, s, &src, NULL, rep, err);
	trs_ctx_free(ctx);
	free(z);
	return rc;
}

/* The file root/dest/key holds exactly `len` bytes of `data`. */
static int holds(const char *key, const char *data, size_t len)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/dest/%s", root, key);
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	char *buf = malloc(len + 1);
	size_t got = fread(buf, 1, len + 1, f);
	fclose(f);
	int same = got == len && !memcmp(buf, data, len);
	free(buf);
	return same;
}

/* Nothing but the destination's buckets in root: no staging directory, no temporary. */
static int only_buckets(void)
{
	int other = 0;
	DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d)))
		other += de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	return d && !other;
}

static char *body(size_t len, int seed)
{
	char *b = malloc(len + 1);
	for (size_t k = 0; k < len; k++)
		b[k] = (char)('a' + (k * 7 + (size_t)seed) % 26);
	b[len] = 0;
	return b;
}

static void md5_hex(const char *data, size_t len, char out[33])
{
	unsigned char d[16];
	EVP_Digest(data, len, d, NULL, EVP_md5(), NULL);
	trs__hex(d, 16, out);
}

/* Small objects before the manifest go to the spool, a large one is staged; each is checked
 * against its MD5 (the spool's, computed as it was written), and nothing is left behind. */
TEST(fs_spool_takes_small_objects_and_stages_large_ones)
{
	enum { N = 60, SMALL = 2000, LARGE = 200 << 10 };
	tu_member m[N + 2];
	char *bodies[N + 1];
	char *json = malloc(N * 200 + 512);
	size_t len = (size_t)sprintf(json, TARGETS);
	for (int i = 0; i <= N; i++) {
		size_t size = i == N ? LARGE : SMALL;
		bodies[i] = body(size, i);
		char *path = malloc(32);
		snprintf(path, 32, "objects/o%d", i);
		m[i] = (tu_member){path, bodies[i], size, 0};
		char md5[33];
		md5_hex(bodies[i], size, md5);
		if (i == 7)
			md5[0] = md5[0] == '0' ? '1' : '0'; /* the bytes in the archive do not match their entry */
		len += (size_t)sprintf(json + len, "%s{\"object_name\":\"o%d\",\"size\":%zu,\"etag\":\"%s\"}", i ? "," : "", i,
				       size, md5);
	}
	sprintf(json + len, "]}");
	m[N + 1] = (tu_member){"manifest.json", json, 0, 0};
	trs_storage *s = fresh();
	CHECK(s);
	early_log log = {0};
	trs_report *rep = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = restore_fs(s, m, N + 2, 0, &log, &rep, &err);
	int ok = 1;
	for (int i = 0; i <= N; i++) {
		char key[32];
		snprintf(key, sizeof(key), "o%d", i);
		if (holds(key, bodies[i], i == N ? LARGE : SMALL) != (i != 7)) {
			printf("  o%d: %s\n", i, i == 7 ? "written" : "missing or wrong");
			ok = 0;
		}
	}
	int clean = only_buckets();
	int written = rep && rep->objects_written == N && rep->objects_failed == 1 && rep->passes == 1 &&
		      rep->failures[0].code == TRS_EINTEGRITY;
	trs_report_free(rep);
	cleanup(s);
	for (int i = 0; i <= N; i++) {
		free(bodies[i]);
		free((char *)m[i].path);
	}
	free(json);
	CHECK(rc == TRS_EPARTIAL);
	CHECK(log.seen && log.spooled == N && log.staged == 1);
	CHECK(ok);
	CHECK(written);
	CHECK(clean);
}

/* A spool that cannot be written (here: over the file size limit) fails the archive before anything is
 * placed: nothing at the keys, no staging directory, no spool. */
TEST(fs_spool_write_failure_leaves_nothing_behind)
{
	enum { N = 300, SMALL = 2000 };
	tu_member m[N + 1];
	char *bodies[N];
	char *json = malloc(N * 100 + 512);
	size_t len = (size_t)sprintf(json, TARGETS);
	for (int i = 0; i < N; i++) {
		bodies[i] = body(SMALL, i);
		char *path = malloc(32);
		snprintf(path, 32, "objects/o%d", i);
		m[i] = (tu_member){path, bodies[i], SMALL, 0};
		len += (size_t)sprintf(json + len, "%s{\"object_name\":\"o%d\",\"size\":%d}", i ? "," : "", i, SMALL);
	}
	sprintf(json + len, "]}");
	m[N] = (tu_member){"manifest.json", json, 0, 0};
	trs_storage *s = fresh();
	CHECK(s);
	/* Each object alone is well under the limit; the spool (128 KiB buffers with 1 MiB of budget) is not. */
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 64 << 10;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	setrlimit(RLIMIT_FSIZE, &lim);
	early_log log = {0};
	trs_report *rep = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = restore_fs(s, m, N + 1, 1 << 20, &log, &rep, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, prev);
	char dest[600];
	snprintf(dest, sizeof(dest), "%s/dest", root);
	struct stat sb;
	int nothing = stat(dest, &sb) < 0;
	int clean = only_buckets() && staging_dirs(NULL, 0) == 0;
	trs_report_free(rep);
	cleanup(s);
	for (int i = 0; i < N; i++) {
		free(bodies[i]);
		free((char *)m[i].path);
	}
	free(json);
	if (rc != TRS_EIO)
		printf("  rc %d: %s\n", rc, err.message);
	CHECK(rc == TRS_EIO);
	CHECK(strstr(err.message, "spool.tar.zst") && strstr(err.message, "cannot write the spool"));
	CHECK(nothing);
	CHECK(clean);
}

/* A member twice in the tar: the last copy wins, whether each copy went to the spool or was staged. */
TEST(fs_spool_duplicate_member_last_copy_wins)
{
	char *large_a = body(100 << 10, 1), *large_b = body(90 << 10, 2);
	struct {
		const char *first, *last;
		size_t first_len, last_len;
	} cases[] = {
		{"small first", "small last", 11, 10},
		{large_a, "small last", 100 << 10, 10},
		{"small first", large_b, 11, 90 << 10},
		{large_a, large_b, 100 << 10, 90 << 10},
	};
	for (size_t c = 0; c < TRS_ARRAY_SIZE(cases); c++) {
		char json[256];
		snprintf(json, sizeof(json), TARGETS "{\"object_name\":\"x\",\"size\":%zu},{\"object_name\":\"y\",\"size\":1}]}",
			 cases[c].last_len);
		tu_member m[] = {
			{"objects/x", cases[c].first, cases[c].first_len, 0},
			{"objects/y", "y", 1, 0},
			{"objects/x", cases[c].last, cases[c].last_len, 0},
			{"manifest.json", json, 0, 0},
		};
		trs_storage *s = fresh();
		CHECK(s);
		early_log log = {0};
		trs_report *rep = NULL;
		trs_error err = TRS_ERROR_INIT;
		int rc = restore_fs(s, m, 4, 0, &log, &rep, &err);
		int ok = rc == 0 && holds("x", cases[c].last, cases[c].last_len) && holds("y", "y", 1) &&
			 rep->objects_written == 2 && log.spooled + log.staged == 3 && only_buckets();
		if (!ok)
			printf("  case %zu: rc %d %s, spooled %ld, staged %ld\n", c, rc, err.message, log.spooled, log.staged);
		trs_report_free(rep);
		cleanup(s);
		CHECK(ok);
	}
	free(large_a);
	free(large_b);
}

/* A spooled member that the manifest does not name is dropped, as before; the others are written. */
TEST(fs_spool_member_without_an_entry_is_dropped)
{
	tu_member m[] = {
		{"objects/stray", "not in the manifest", 0, 0},
		{"objects/a", "aaaa", 0, 0},
		{"manifest.json", TARGETS "{\"object_name\":\"a\",\"size\":4}]}", 0, 0},
	};
	trs_storage *s = fresh();
	CHECK(s);
	early_log log = {0};
	trs_report *rep = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = restore_fs(s, m, 3, 0, &log, &rep, &err);
	char path[600];
	snprintf(path, sizeof(path), "%s/dest/stray", root);
	struct stat sb;
	int ok = rc == 0 && holds("a", "aaaa", 4) && stat(path, &sb) < 0 && rep->objects_written == 1 &&
		 rep->members_skipped == 1 && log.spooled == 2 && only_buckets();
	trs_report_free(rep);
	cleanup(s);
	CHECK(ok);
}

int main(void)
{
	RUN(fs_stage_names_are_random_and_the_directory_goes_away);
	RUN(fs_stage_of_a_killed_run_is_removed_by_the_next);
	RUN(fs_stage_cleanup_spares_live_runs);
	RUN(fs_stage_spool_is_a_file_with_no_name);
	RUN(fs_spool_takes_small_objects_and_stages_large_ones);
	RUN(fs_spool_write_failure_leaves_nothing_behind);
	RUN(fs_spool_duplicate_member_last_copy_wins);
	RUN(fs_spool_member_without_an_entry_is_dropped);
	return harness_done();
}
