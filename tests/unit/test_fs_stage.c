/* Staging before the manifest (lib/storage/fs_stage.c): a real random name, a lock
 * held while the run lives, and stale staging of dead runs removed. */
#include "harness.h"
#include "internal.h"
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
	trs__fs_stage *a = NULL, *b = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__fs_stage_new(s, &a, &err) | trs__fs_stage_new(s, &b, &err);
	char name[128] = "";
	int n = staging_dirs(name, sizeof(name));
	trs__fs_stage_free(a);
	trs__fs_stage_free(b);
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
		trs__fs_stage *st = NULL;
		trs_error err = TRS_ERROR_INIT;
		if (trs__fs_stage_new(s, &st, &err) < 0)
			_exit(1);
		int fd = trs__fs_stage_create(st, 0, &err);
		_exit(fd >= 0 && write(fd, "bytes", 5) == 5 ? 0 : 1); /* dies with its staging in place */
	}
	int status = 0;
	waitpid(child, &status, 0);
	int left = staging_dirs(NULL, 0);
	trs__fs_stage *st = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__fs_stage_new(s, &st, &err);
	char name[128] = "";
	int now = staging_dirs(name, sizeof(name));
	char mine[64];
	snprintf(mine, sizeof(mine), ".trs-staging-%ld-", (long)getpid());
	trs__fs_stage_free(st);
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
	trs__fs_stage *st = NULL;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs__fs_stage_new(s, &st, &err);
	int kept_locked = exists(locked), removed_dead = !exists(dead), kept_old = exists(old_live);
	trs__fs_stage_free(st);
	close(lockfd);
	cleanup(s);
	CHECK(rc == 0);
	CHECK(kept_locked);
	CHECK(removed_dead);
	CHECK(kept_old);
}

int main(void)
{
	RUN(fs_stage_names_are_random_and_the_directory_goes_away);
	RUN(fs_stage_of_a_killed_run_is_removed_by_the_next);
	RUN(fs_stage_cleanup_spares_live_runs);
	return harness_done();
}
