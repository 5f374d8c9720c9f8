/* The dir:// queue: claim, visibility, redelivery, delete, competing consumers. */
#include "harness.h"
#include "internal.h"
#include "trs/sys/queue.h"

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

int main(void)
{
	RUN(dir_queue_receive_claims_and_delete_removes);
	RUN(dir_queue_expired_message_comes_back_with_higher_count);
	RUN(dir_queue_heartbeat_keeps_message_invisible);
	RUN(dir_queue_refuses_foreign_handles_and_urls);
	RUN(dir_queue_long_poll_waits_and_interrupt_stops_it);
	RUN(dir_queue_oversized_body_is_capped);
	return harness_done();
}
