/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for queue message bodies (lib/serve/event.c).
 *
 * Any bytes must give 0 or a negative code, never a crash or leak, and:
 * - on success the event is consistent: WORK has at least one archive,
 *   TEST and NO_WORK none; every bucket and key is a non-empty string that
 *   is valid UTF-8 (keys are decoded; U+FFFD replaces what is not UTF-8);
 * - on failure *out is NULL and the error carries the code and a message;
 * - parsing is deterministic (a second parse gives the same answer);
 * - trs_event_decode_key on the same bytes returns valid UTF-8 or fails
 *   with TRS_EINVAL (a NUL byte).
 *
 *     fuzz/run.sh 60 fuzz_event   (or: build-fuzz/fuzz/fuzz_event fuzz/corpus/event)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <trs.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                      \
	do {                             \
		if (!(cond))             \
			__builtin_trap(); \
	} while (0)

static int utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned char c = *s;
		size_t need = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3
			: (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
		if (!need)
			return 0;
		for (size_t i = 1; i < need; i++)
			if ((s[i] & 0xc0) != 0x80)
				return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
		    (c == 0xf4 && s[1] > 0x8f))
			return 0;
		s += need;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy so that ASan catches any read past size. */
	char *body = malloc(size ? size : 1);
	if (!body)
		return 0;
	memcpy(body, data, size);

	trs_event *ev = (trs_event *)1;
	trs_error err = TRS_ERROR_INIT;
	int rc = trs_event_parse(body, size, &ev, &err);
	if (rc == 0) {
		CHECK(ev != NULL);
		CHECK(ev->shape != NULL);
		if (ev->kind == TRS_EVENT_WORK)
			CHECK(ev->nrefs >= 1);
		else
			CHECK(ev->nrefs == 0);
		for (size_t i = 0; i < ev->nrefs; i++) {
			CHECK(ev->refs[i].bucket && ev->refs[i].bucket[0]);
			CHECK(ev->refs[i].key && ev->refs[i].key[0]);
			if (strcmp(ev->shape, "eventbridge") != 0)
				CHECK(utf8_valid((const unsigned char *)ev->refs[i].key));
		}
	} else {
		CHECK(ev == NULL);
		CHECK(err.code == rc);
		CHECK(err.message[0] != '\0');
		CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
	}

	trs_event *again = NULL;
	int rc2 = trs_event_parse(body, size, &again, NULL);
	CHECK(rc2 == rc);
	if (rc == 0) {
		CHECK(again->kind == ev->kind && again->nrefs == ev->nrefs);
		for (size_t i = 0; i < ev->nrefs; i++)
			CHECK(strcmp(again->refs[i].key, ev->refs[i].key) == 0);
	}
	trs_event_free(again);
	trs_event_free(rc == 0 ? ev : NULL);

	trs_error kerr = TRS_ERROR_INIT;
	char *key = trs_event_decode_key(body, size, &kerr);
	if (key) {
		CHECK(utf8_valid((const unsigned char *)key));
		free(key);
	} else {
		CHECK(kerr.code == TRS_EINVAL || kerr.code == TRS_ENOMEM);
	}
	free(body);
	return 0;
}
