/* SPDX-License-Identifier: Apache-2.0 */
/* Error text: names shortened in the middle, cuts on UTF-8 boundaries, the reason kept. */
#include "harness.h"
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define JA "\xe6\x97\xa5" /* U+65E5, three bytes */

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as Python's decoder. */
static bool valid_utf8(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	while (*s) {
		size_t need;
		unsigned char lo = 0x80, hi = 0xbf;
		if (*s < 0x80) {
			s++;
			continue;
		} else if (*s >= 0xc2 && *s <= 0xdf) {
			need = 2;
		} else if (*s >= 0xe0 && *s <= 0xef) {
			need = 3;
			lo = *s == 0xe0 ? 0xa0 : 0x80;
			hi = *s == 0xed ? 0x9f : 0xbf;
		} else if (*s >= 0xf0 && *s <= 0xf4) {
			need = 4;
			lo = *s == 0xf0 ? 0x90 : 0x80;
			hi = *s == 0xf4 ? 0x8f : 0xbf;
		} else {
			return false;
		}
		for (size_t i = 1; i < need; i++)
			if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
				return false;
		s += need;
	}
	return true;
}

/* A key of `bytes` bytes: `unit` repeated, then 'a' to the exact length. */
static void make_key(char *out, size_t bytes, const char *unit)
{
	size_t n = 0, u = strlen(unit);
	while (n + u <= bytes) {
		memcpy(out + n, unit, u);
		n += u;
	}
	while (n < bytes)
		out[n++] = 'a';
	out[n] = '\0';
}

TEST(short_key_keeps_a_short_key_whole)
{
	char out[TRS__SHORT_KEY_SIZE];
	CHECK_STR(trs__short_key(out, sizeof(out), "logs/2025/a.txt"), "logs/2025/a.txt");
	CHECK_STR(trs__short_key(out, sizeof(out), NULL), "");
	char edge[TRS__SHORT_KEY_SIZE];
	make_key(edge, sizeof(edge) - 1, "k");
	CHECK_STR(trs__short_key(out, sizeof(out), edge), edge);
}

TEST(short_key_shows_both_ends_and_the_length_of_a_long_key)
{
	char key[1025], out[TRS__SHORT_KEY_SIZE];
	make_key(key, 1000, "m");
	memcpy(key, "first/", 6);
	memcpy(key + 1000 - 9, "/last.csv", 9);
	make_key(key + 1000, 24, "z"); /* 1,024 bytes: the end is "zzz" */
	const char *shown = trs__short_key(out, sizeof(out), key);
	CHECK(strlen(shown) < TRS__SHORT_KEY_SIZE);
	CHECK(strncmp(shown, "first/", 6) == 0);
	CHECK_CONTAINS(shown, "\xe2\x80\xa6");
	CHECK_CONTAINS(shown, "zzzz (1024 bytes)");
	/* The shortened key takes all the room it has: nothing is given away. */
	CHECK(strlen(shown) >= TRS__SHORT_KEY_SIZE - 4);
}

TEST(short_key_cuts_three_byte_characters_whole)
{
	char key[1025], out[TRS__SHORT_KEY_SIZE];
	make_key(key, 1024, JA); /* 341 characters and an 'a' */
	const char *shown = trs__short_key(out, sizeof(out), key);
	CHECK(valid_utf8(shown));
	CHECK(strncmp(shown, JA JA JA, 9) == 0);
	CHECK_CONTAINS(shown, JA "a (1024 bytes)");
	/* Every size of buffer, every offset of a cut: never inside a character. */
	for (size_t size = 1; size <= TRS__SHORT_KEY_SIZE; size++) {
		char small[TRS__SHORT_KEY_SIZE];
		for (size_t skip = 0; skip < 3; skip++) {
			trs__short_key(small, size, key + skip * 3);
			CHECK(strlen(small) < size);
			CHECK(valid_utf8(small));
		}
	}
}

TEST(utf8_cut_never_ends_inside_a_character)
{
	const char *s = "a" JA "b\xf0\x9f\x98\x80"; /* a, U+65E5, b, U+1F600 */
	size_t want[] = {0, 1, 1, 1, 4, 5, 5, 5, 5, 9};
	for (size_t len = 0; len < TRS_ARRAY_SIZE(want); len++)
		CHECK(trs__utf8_cut(s, len) == want[len]);
	/* A byte that starts nothing is left to the reader of the text. */
	CHECK(trs__utf8_cut("ab\x80", 3) == 3);
}

TEST(a_message_cut_by_its_buffer_ends_on_a_character_with_an_ellipsis)
{
	char key[4000];
	make_key(key, 3000, JA);
	for (size_t lead = 0; lead < 3; lead++) {
		trs_error err = TRS_ERROR_INIT;
		CHECK(trs__error_set(&err, TRS_EIO, "%.*s%s", (int)lead, "xy", key) == TRS_EIO);
		CHECK(err.code == TRS_EIO);
		CHECK(valid_utf8(err.message));
		size_t len = strlen(err.message);
		CHECK(len <= sizeof(err.message) - 1 && len >= sizeof(err.message) - 6);
		CHECK(strcmp(err.message + len - 3, "\xe2\x80\xa6") == 0);
	}
}

TEST(errno_text_survives_a_long_sentence)
{
	char key[1100];
	make_key(key, 1050, JA);
	trs_error err = TRS_ERROR_INIT;
	CHECK(trs__error_errno(&err, ENOSPC, "cannot write %s", key) == TRS_EIO);
	CHECK(valid_utf8(err.message));
	CHECK_CONTAINS(err.message, "\xe2\x80\xa6: ");
	char tail[128];
	snprintf(tail, sizeof(tail), ": %s", strerror(ENOSPC));
	size_t len = strlen(err.message);
	CHECK(len > strlen(tail) && strcmp(err.message + len - strlen(tail), tail) == 0);
	CHECK(err.sys_errno == ENOSPC);
}

TEST(a_prefix_gives_way_before_the_reason)
{
	char key[1100], reason[1000];
	make_key(key, 1050, JA);
	trs_error err = TRS_ERROR_INIT;
	/* A reason of 900 bytes that ends with what to do. */
	make_key(reason, 860, "r");
	trs__error_set(&err, TRS_EAUTH, "%s. What to do: check the policy", reason);
	trs__error_prefix(&err, "cannot compare versions before writing s3://b/%s", key);
	CHECK(err.code == TRS_EAUTH);
	CHECK(valid_utf8(err.message));
	CHECK(strncmp(err.message, "cannot compare versions", 23) == 0);
	CHECK_CONTAINS(err.message, "\xe2\x80\xa6: rrrr");
	size_t len = strlen(err.message);
	CHECK(len < sizeof(err.message));
	const char *advice = ". What to do: check the policy";
	CHECK(strcmp(err.message + len - strlen(advice), advice) == 0);
	/* Short enough for both: nothing is cut. */
	trs_error ok = TRS_ERROR_INIT;
	trs__error_set(&ok, TRS_EIO, "disk full");
	trs__error_prefix(&ok, "archive %s", "a.tar.zst");
	CHECK_STR(ok.message, "archive a.tar.zst: disk full");
}

TEST(a_shortened_key_leaves_room_for_s3s_reason_and_advice)
{
	/* The pipeline's sentence for a refused put: archive, object and key shortened. */
	char key[1025];
	make_key(key, 1024, JA);
	trs_error err = TRS_ERROR_INIT;
	trs__error_set(&err, TRS_EAUTH,
		       "S3 PutObject of s3://dest/%s failed: HTTP 403 AccessDenied: Access Denied. What to do: check "
		       "that the IAM policy of these credentials allows this call on the bucket",
		       TRS__SHORT(key));
	trs__error_prefix(&err, "archive s3://staging/%s, object %s", TRS__SHORT(key), TRS__SHORT(key));
	CHECK(valid_utf8(err.message));
	CHECK_CONTAINS(err.message, "AccessDenied");
	CHECK_CONTAINS(err.message, "What to do: check that the IAM policy of these credentials allows this call on "
				    "the bucket");
	CHECK_CONTAINS(err.message, "(1024 bytes)");
}

int main(void)
{
	RUN(short_key_keeps_a_short_key_whole);
	RUN(short_key_shows_both_ends_and_the_length_of_a_long_key);
	RUN(short_key_cuts_three_byte_characters_whole);
	RUN(utf8_cut_never_ends_inside_a_character);
	RUN(a_message_cut_by_its_buffer_ends_on_a_character_with_an_ellipsis);
	RUN(errno_text_survives_a_long_sentence);
	RUN(a_prefix_gives_way_before_the_reason);
	RUN(a_shortened_key_leaves_room_for_s3s_reason_and_advice);
	return harness_done();
}
