/* SPDX-License-Identifier: Apache-2.0 */
/* The dir:// queue: claim, visibility, redelivery, delete, competing consumers. */
#include "harness.h"
#include "internal.h"
#include "trs/sys/queue.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static trs_queue *fresh(void)
{
	snprintf(root, sizeof(root), "/tmp/trs-qdir-test-XXXXXX");
	if (!mkdtemp(root))
		return NULL;
	trs_queue *q;
	char url[300];
	snprintf(url, sizeof(url), "dir://%s", root);
	trs_error err = TRS_ERROR_INIT;
	return trs_queue_open(&q, NULL, url, &err) == 0 ? q : NULL;
}

static void cleanup(trs_queue *q)
{
	trs_queue_free(q);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		printf("  cleanup failed\n");
}

static void put_message(const char *name, const char *body)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(body, f);
		fclose(f);
	}
}

static size_t receive(trs_queue *q, unsigned int max, unsigned int visibility, trs_queue_message **msgs)
{
	trs_queue_receive_options o = TRS_QUEUE_RECEIVE_OPTIONS_INIT;
	o.max_messages = max;
	o.wait_seconds = 0;
	o.visibility_timeout = visibility;
	size_t n = 0;
	trs_error err = TRS_ERROR_INIT;
	if (trs_queue_receive(q, &o, msgs, &n, &err) < 0)
		return (size_t)-1;
	return n;
}

TEST(dir_queue_receive_claims_and_delete_removes)
{
	trs_queue *q = fresh();
	CHECK(q);
	CHECK_STR(trs_queue_name(q), "dir");
	put_message("b.json", "{\"two\":2}");
	put_message("a.json", "{\"one\":1}");
	put_message("ignored.txt", "not a message");
	trs_queue_message *m;
	CHECK(receive(q, 10, 30, &m) == 2);
	CHECK_STR(m[0].id, "a");
	CHECK_STR(m[0].body, "{\"one\":1}");
	CHECK(m[0].body_len == 9);
	CHECK(m[0].receive_count == 1);
	CHECK_STR(m[1].id, "b");
	/* Claimed: nothing more to receive while they are in flight. */
	trs_queue_message *none;
	CHECK(receive(q, 10, 30, &none) == 0);
	const char *handles[2] = {m[0].receipt_handle, m[1].receipt_handle};
	int codes[2] = {1, 1};
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_queue_delete_batch(q, handles, 2, codes, &err) == 0);
	CHECK(codes[0] == 0 && codes[1] == 0);
	/* A second delete reports per entry. */
	CHECK(trs_queue_delete_batch(q, handles, 2, codes, &err) == TRS_EPARTIAL);
	CHECK(codes[0] == TRS_ENOTFOUND && codes[1] == TRS_ENOTFOUND);
	trs_queue_messages_free(m, 2);
	cleanup(q);
}

TEST(dir_queue_expired_message_comes_back_with_higher_count)
{
	trs_queue *q = fresh();
	CHECK(q);
	put_message("m.json", "{}");
	trs_queue_message *m, *again;
	CHECK(receive(q, 1, 30, &m) == 1);
	trs_error err = TRS_ERROR_INIT;
	/* Visible again at once, as trs_serve does on a stop. */
	CHECK(trs_queue_change_visibility(q, m[0].receipt_handle, 0, &err) == 0);
	usleep(10000);
	CHECK(receive(q, 1, 30, &again) == 1);
	CHECK_STR(again[0].id, "m");
	CHECK(again[0].receive_count == 2);
	/* The old handle no longer works: another consumer holds the message now. */
	CHECK(trs_queue_change_visibility(q, m[0].receipt_handle, 30, &err) == TRS_ENOTFOUND);
	const char *old[1] = {m[0].receipt_handle};
	int code = 0;
	CHECK(trs_queue_delete_batch(q, old, 1, &code, &err) == TRS_EPARTIAL && code == TRS_ENOTFOUND);
	const char *cur[1] = {again[0].receipt_handle};
	CHECK(trs_queue_delete_batch(q, cur, 1, &code, &err) == 0);
	trs_queue_messages_free(m, 1);
	trs_queue_messages_free(again, 1);
	cleanup(q);
}

TEST(dir_queue_heartbeat_keeps_message_invisible)
{
	trs_queue *q = fresh();
	CHECK(q);
	put_message("m.json", "{}");
	trs_queue_message *m, *none;
	CHECK(receive(q, 1, 1, &m) == 1);
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_queue_change_visibility(q, m[0].receipt_handle, 60, &err) == 0);
	sleep(2); /* past the first 1 s deadline */
	CHECK(receive(q, 1, 1, &none) == 0);
	trs_queue_messages_free(m, 1);
	cleanup(q);
}

TEST(dir_queue_refuses_foreign_handles_and_urls)
{
	trs_queue *q = fresh();
	CHECK(q);
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_queue_change_visibility(q, "../../etc/passwd@1@x", 5, &err) == TRS_EINVAL);
	CHECK(trs_queue_change_visibility(q, ".hidden@1@x", 5, &err) == TRS_EINVAL);
	trs_queue *other;
	CHECK(trs_queue_open(&other, NULL, "ftp://x/y", &err) == TRS_EINVAL);
	CHECK(trs_queue_open(&other, NULL, "dir://", &err) == TRS_EINVAL);
	trs_queue_receive_options o = TRS_QUEUE_RECEIVE_OPTIONS_INIT;
	o.max_messages = 11;
	trs_queue_message *m;
	size_t n;
	CHECK(trs_queue_receive(q, &o, &m, &n, &err) == TRS_EINVAL);
	cleanup(q);
}

TEST(dir_queue_long_poll_waits_and_interrupt_stops_it)
{
	trs_queue *q = fresh();
	CHECK(q);
	trs_queue_receive_options o = TRS_QUEUE_RECEIVE_OPTIONS_INIT;
	o.wait_seconds = 1;
	trs_queue_message *m;
	size_t n;
	trs_error err = TRS_ERROR_INIT;
	double t0 = trs__now();
	CHECK(trs_queue_receive(q, &o, &m, &n, &err) == 0 && n == 0);
	CHECK(trs__now() - t0 >= 0.9);
	volatile int interrupt = 1;
	o.wait_seconds = 20;
	o.interrupt = &interrupt;
	t0 = trs__now();
	CHECK(trs_queue_receive(q, &o, &m, &n, &err) == 0 && n == 0);
	CHECK(trs__now() - t0 < 1.0);
	cleanup(q);
}

TEST(dir_queue_oversized_body_is_capped)
{
	trs_queue *q = fresh();
	CHECK(q);
	char path[512];
	snprintf(path, sizeof(path), "%s/big.json", root);
	FILE *f = fopen(path, "w");
	CHECK(f);
	for (int i = 0; i < 3 * 1024; i++)
		fputs("                                                                                                "
		      "                                                                                                "
		      "                                                                                                "
		      "                                                                                                ",
		      f);
	fclose(f);
	trs_queue_message *m;
	CHECK(receive(q, 1, 30, &m) == 1);
	CHECK(m[0].body_len == TRS_EVENT_MAX_BYTES + 1);
	trs_event *ev;
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs_event_parse(m[0].body, m[0].body_len, &ev, &err) == TRS_ELIMIT);
	trs_queue_messages_free(m, 1);
	cleanup(q);
}

/* A fresh queue directory opened with `params` after its path ("?max_receives=2"). */
static trs_queue *fresh_with(const char *params, trs_error *err)
{
	snprintf(root, sizeof(root), "/tmp/trs-qdir-test-XXXXXX");
	if (!mkdtemp(root))
		return NULL;
	char url[600];
	snprintf(url, sizeof(url), "dir://%s%s", root, params);
	trs_queue *q;
	return trs_queue_open(&q, NULL, url, err) == 0 ? q : NULL;
}

static bool exists(const char *dir, const char *name)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	struct stat st;
	return stat(path, &st) == 0;
}

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* Receive `id` once more and make it visible again at once, as after a failed archive. */
static bool receive_and_give_back(trs_queue *q, const char *id, unsigned int count)
{
	trs_queue_message *m;
	if (receive(q, 1, 30, &m) != 1)
		return false;
	trs_error err = TRS_ERROR_INIT;
	bool ok = !strcmp(m[0].id, id) && m[0].receive_count == count &&
		  trs_queue_change_visibility(q, m[0].receipt_handle, 0, &err) == 0;
	trs_queue_messages_free(m, 1);
	usleep(10000);
	return ok;
}

TEST(dir_queue_moves_a_message_past_max_receives_to_the_dead_letter_directory)
{
	trs_error err = TRS_ERROR_INIT;
	trs_queue *q = fresh_with("?max_receives=3", &err);
	CHECK(q);
	put_message("poison.json", "{poison");
	put_message("good.json", "{}");
	trs_queue_message *m;
	CHECK(receive(q, 1, 30, &m) == 1 && !strcmp(m[0].id, "good"));
	for (unsigned int count = 1; count <= 3; count++)
		CHECK(receive_and_give_back(q, "poison", count));
	/* Its fourth receive moves it instead: nothing more comes, however often one asks. */
	trs_queue_message *none;
	for (int i = 0; i < 3; i++)
		CHECK(receive(q, 10, 30, &none) == 0);
	char dead[600], inflight[600];
	snprintf(dead, sizeof(dead), "%s/.dead", root);
	snprintf(inflight, sizeof(inflight), "%s/.inflight", root);
	CHECK(exists(dead, "poison.json"));
	CHECK(entries(dead) == 1);
	CHECK(entries(inflight) == 1); /* good, still held */
	char path[700], body[32] = "";
	snprintf(path, sizeof(path), "%s/poison.json", dead);
	FILE *f = fopen(path, "r");
	CHECK(f);
	CHECK(fgets(body, sizeof(body), f) != NULL);
	fclose(f);
	CHECK_STR(body, "{poison");
	/* The holder of the good message is not disturbed: its delete works. */
	const char *h[1] = {m[0].receipt_handle};
	int code = 1;
	CHECK(trs_queue_delete_batch(q, h, 1, &code, &err) == 0 && code == 0);
	trs_queue_messages_free(m, 1);
	cleanup(q);
}

TEST(dir_queue_dead_letters_go_to_a_named_directory_and_come_back_when_moved)
{
	char other[256];
	snprintf(other, sizeof(other), "/tmp/trs-qdir-dead-XXXXXX");
	CHECK(mkdtemp(other));
	char params[300];
	snprintf(params, sizeof(params), "?max_receives=1&dead_letter=%s/dlq", other);
	trs_error err = TRS_ERROR_INIT;
	trs_queue *q = fresh_with(params, &err);
	CHECK(q);
	put_message("m.json", "{\"a\":1}");
	CHECK(receive_and_give_back(q, "m", 1));
	trs_queue_message *none;
	CHECK(receive(q, 1, 30, &none) == 0);
	char dlq[300];
	snprintf(dlq, sizeof(dlq), "%s/dlq", other);
	CHECK(exists(dlq, "m.json"));
	/* A second dead letter of the same id keeps the first. */
	put_message("m.json", "{\"a\":2}");
	CHECK(receive_and_give_back(q, "m", 1));
	CHECK(receive(q, 1, 30, &none) == 0);
	CHECK(entries(dlq) == 2 && exists(dlq, "m.json"));
	/* Redrive: moved back into the queue, it is received again, from its first receive. */
	char from[700], to[700];
	snprintf(from, sizeof(from), "%s/m.json", dlq);
	snprintf(to, sizeof(to), "%s/m.json", root);
	CHECK(rename(from, to) == 0);
	trs_queue_message *again;
	CHECK(receive(q, 1, 30, &again) == 1);
	CHECK_STR(again[0].id, "m");
	CHECK_STR(again[0].body, "{\"a\":1}");
	CHECK(again[0].receive_count == 1);
	trs_queue_messages_free(again, 1);
	cleanup(q);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", other);
	CHECK(system(cmd) == 0);
}

TEST(dir_queue_receives_a_message_again_when_its_dead_letter_directory_is_gone)
{
	trs_error err = TRS_ERROR_INIT;
	trs_queue *q = fresh_with("?max_receives=1", &err);
	CHECK(q);
	put_message("m.json", "{}");
	CHECK(receive_and_give_back(q, "m", 1));
	char dead[600];
	snprintf(dead, sizeof(dead), "%s/.dead", root);
	CHECK(rmdir(dead) == 0);
	/* It cannot move: the queue goes on, and the message comes back rather than vanish. */
	CHECK(receive_and_give_back(q, "m", 2));
	CHECK(mkdir(dead, 0700) == 0);
	trs_queue_message *none;
	CHECK(receive(q, 1, 30, &none) == 0);
	CHECK(exists(dead, "m.json"));
	cleanup(q);
}

TEST(dir_queue_without_max_receives_receives_a_message_again_and_again)
{
	trs_queue *q = fresh();
	CHECK(q);
	put_message("m.json", "{}");
	for (unsigned int count = 1; count <= 5; count++)
		CHECK(receive_and_give_back(q, "m", count));
	CHECK(!exists(root, ".dead"));
	cleanup(q);
}

TEST(dir_queue_refuses_bad_redrive_parameters)
{
	static const char *const bad[] = {"?max_receives=0", "?max_receives=1001", "?max_receives=3x",
					  "?max_receives=", "?max_receives=-1", "?dead_letter=/tmp/x",
					  "?max_receives=2&max_receives=3", "?maxReceiveCount=2",
					  "?max_receives=2&dead_letter=", "?max_receives=2&dead_letter=%s",
					  "?max_receives=2&dead_letter=%s/.inflight",
					  "?max_receives=2&dead_letter=/dev/shm/trs-qdir-dead-test"};
	for (size_t i = 0; i < TRS_ARRAY_SIZE(bad); i++) {
		/* %s: the queue's own directory, which the URL names too. */
		snprintf(root, sizeof(root), "/tmp/trs-qdir-test-XXXXXX");
		CHECK(mkdtemp(root));
		if (strstr(bad[i], "/dev/shm")) {
			struct stat shm, tmp;
			if (stat("/dev/shm", &shm) < 0 || stat("/tmp", &tmp) < 0 || shm.st_dev == tmp.st_dev) {
				rmdir(root);
				continue; /* no other filesystem at hand */
			}
		}
		char params[300], url[700];
		snprintf(params, sizeof(params), bad[i], root);
		snprintf(url, sizeof(url), "dir://%s%s", root, params);
		trs_error err = TRS_ERROR_INIT;
		trs_queue *q = NULL;
		int rc = trs_queue_open(&q, NULL, url, &err);
		if (rc != TRS_EINVAL)
			printf("  %s: %s\n", url, q ? "accepted" : err.message);
		trs_queue_free(q);
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' /dev/shm/trs-qdir-dead-test", root);
		CHECK(system(cmd) == 0);
		CHECK(rc == TRS_EINVAL && !q);
		CHECK(err.code == TRS_EINVAL);
	}
	/* The largest SQS allows. */
	trs_error err = TRS_ERROR_INIT;
	trs_queue *q = fresh_with("?max_receives=1000", &err);
	CHECK(q);
	cleanup(q);
}

int main(void)
{
	RUN(dir_queue_receive_claims_and_delete_removes);
	RUN(dir_queue_expired_message_comes_back_with_higher_count);
	RUN(dir_queue_heartbeat_keeps_message_invisible);
	RUN(dir_queue_refuses_foreign_handles_and_urls);
	RUN(dir_queue_long_poll_waits_and_interrupt_stops_it);
	RUN(dir_queue_oversized_body_is_capped);
	RUN(dir_queue_moves_a_message_past_max_receives_to_the_dead_letter_directory);
	RUN(dir_queue_dead_letters_go_to_a_named_directory_and_come_back_when_moved);
	RUN(dir_queue_receives_a_message_again_when_its_dead_letter_directory_is_gone);
	RUN(dir_queue_without_max_receives_receives_a_message_again_and_again);
	RUN(dir_queue_refuses_bad_redrive_parameters);
	return harness_done();
}
