/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libtrs private: error text that keeps its reason (lib/error_text.c).
 *
 * A message is at most TRS_ERROR_MESSAGE_SIZE bytes, and an S3 key alone may
 * take 1,024. Names (keys, paths, archives) are therefore shown shortened in
 * the middle, "first…last (N bytes)", and every cut lands on a UTF-8
 * character boundary, so that the reason and the fix always fit and a log
 * line stays valid UTF-8. The full names go into structured fields and the
 * report, never only into the sentence.
 */
#ifndef TRS_ERROR_TEXT_H
#define TRS_ERROR_TEXT_H

#include <stddef.h>

/* Room for a name in a message: a key of up to 119 bytes is shown whole. */
#define TRS__SHORT_KEY_SIZE 120

/*
 * `name` as it goes into a message: whole when it fits in `size` bytes,
 * else its first and last bytes around "…" with its length,
 * "logs/2025/aaaa…aaaa/report.csv (1024 bytes)", cut on UTF-8 boundaries.
 * Returns `out` (NUL-terminated; "" for a NULL name).
 */
const char *trs__short_key(char *out, size_t size, const char *name);
/* The same for the first `len` bytes of `text` (no NUL needed there). */
const char *trs__short_text(char *out, size_t size, const char *text, size_t len);

/* trs__short_key into a buffer that lives until the end of the enclosing block, for printf
 * arguments: trs__error_set(err, code, "cannot write %s", TRS__SHORT(key)). */
#define TRS__SHORT(name) trs__short_key((char[TRS__SHORT_KEY_SIZE]){0}, TRS__SHORT_KEY_SIZE, (name))

/* The longest n <= len such that s[0..n) does not end inside a UTF-8 character: where a cut of
 * s at len must land. Bytes that are no part of a valid character are left as they are. */
size_t trs__utf8_cut(const char *s, size_t len);

/* Cut the string `s`, which is (or was, before a printf cut it) longer than `max` bytes, to at
 * most `max` bytes ending on a UTF-8 boundary with "…", so a reader sees that text is missing.
 * `max` is at least 3. */
void trs__text_cut(char *s, size_t max);

#endif
