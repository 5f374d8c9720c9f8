/* SPDX-License-Identifier: Apache-2.0 */
/* Error text that keeps its reason: names shortened in the middle, cuts on UTF-8 boundaries. */
#include "error_text.h"

#include <stdio.h>
#include <string.h>

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */
#define ELLIPSIS_LEN 3

static int continuation(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

size_t trs__utf8_cut(const char *s, size_t len)
{
	/* Back over the continuation bytes (at most 3) to the last lead byte; when the
	 * character it starts needs more bytes than are left, it goes. */
	size_t tail = 0;
	while (tail < len && tail < 3 && continuation((unsigned char)s[len - 1 - tail]))
		tail++;
	if (tail == len)
		return len;
	unsigned char lead = (unsigned char)s[len - 1 - tail];
	size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	if (lead < 0xC0 || tail + 1 >= need)
		return len; /* complete, or bytes no cut made invalid */
	return len - 1 - tail;
}

void trs__text_cut(char *s, size_t max)
{
	size_t len = strlen(s);
	if (len > max)
		len = max;
	size_t keep = trs__utf8_cut(s, len >= ELLIPSIS_LEN ? len - ELLIPSIS_LEN : 0);
	memcpy(s + keep, ELLIPSIS, ELLIPSIS_LEN + 1);
}

const char *trs__short_key(char *out, size_t size, const char *name)
{
	return trs__short_text(out, size, name ? name : "", name ? strlen(name) : 0);
}

const char *trs__short_text(char *out, size_t size, const char *name, size_t len)
{
	if (!size)
		return "";
	if (len < size) {
		memcpy(out, name, len);
		out[len] = '\0';
		return out;
	}
	char count[32];
	size_t count_len = (size_t)snprintf(count, sizeof(count), " (%zu bytes)", len);
	if (size <= ELLIPSIS_LEN + 1) {
		out[0] = '\0';
		return out;
	}
	if (size < count_len + ELLIPSIS_LEN + 3) {
		/* No room for both ends: the start, cut. */
		memcpy(out, name, size - 1);
		out[size - 1] = '\0';
		trs__text_cut(out, size - 1);
		return out;
	}
	size_t room = size - 1 - count_len - ELLIPSIS_LEN;
	size_t head = trs__utf8_cut(name, (room + 1) / 2);
	size_t tail = len - (room - head);
	while (tail < len && continuation((unsigned char)name[tail]))
		tail++;
	snprintf(out, size, "%.*s" ELLIPSIS "%.*s%s", (int)head, name, (int)(len - tail), name + tail, count);
	return out;
}
