/* SPDX-License-Identifier: Apache-2.0 */
/* Lone UTF-16 surrogate escapes in the strings of a JSON text (see json_scan.h). */
#include "json_scan.h"

#include <stdlib.h>

enum { OUTSIDE = 0, IN_STRING, ESCAPE, UNICODE };

static int flag(trs__json_scan *s)
{
	if (s->n && s->flagged[(s->head + s->n - 1) % s->cap] == s->strings)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		uint64_t *q = malloc(cap * sizeof(*q));
		if (!q)
			return TRS_ENOMEM;
		for (size_t i = 0; i < s->n; i++)
			q[i] = s->flagged[(s->head + i) % s->cap];
		free(s->flagged);
		s->flagged = q;
		s->cap = cap;
		s->head = 0;
	}
	s->flagged[(s->head + s->n++) % s->cap] = s->strings;
	return 0;
}

/* A character other than a low surrogate escape came: a waiting high one was alone. */
static int not_low(trs__json_scan *s)
{
	if (!s->high)
		return 0;
	s->high = 0;
	return flag(s);
}

int trs__json_scan_feed(trs__json_scan *s, const unsigned char *data, size_t len)
{
	int rc = 0;
	for (size_t i = 0; i < len && rc == 0; i++) {
		unsigned char c = data[i];
		switch (s->state) {
		case OUTSIDE:
			if (c == '"') {
				s->state = IN_STRING;
				s->strings++;
				s->high = 0;
			}
			break;
		case IN_STRING:
			if (c == '\\') {
				s->state = ESCAPE;
			} else {
				rc = not_low(s);
				if (c == '"')
					s->state = OUTSIDE;
			}
			break;
		case ESCAPE:
			if (c == 'u') {
				s->state = UNICODE;
				s->hex = 0;
				s->hex_digits = 0;
			} else {
				rc = not_low(s);
				s->state = IN_STRING;
			}
			break;
		default: {
			int v = trs__hexval(c);
			if (v < 0) { /* not JSON: yajl will say so */
				s->state = IN_STRING;
				break;
			}
			s->hex = s->hex << 4 | (unsigned int)v;
			if (++s->hex_digits < 4)
				break;
			s->state = IN_STRING;
			if (s->hex >= 0xD800 && s->hex <= 0xDBFF) {
				rc = not_low(s);
				s->high = 1;
			} else if (s->hex >= 0xDC00 && s->hex <= 0xDFFF) {
				if (s->high)
					s->high = 0;
				else
					rc = flag(s);
			} else {
				rc = not_low(s);
			}
		}
		}
	}
	return rc;
}

bool trs__json_scan_flagged(trs__json_scan *s, uint64_t string_no)
{
	while (s->n && s->flagged[s->head] < string_no) {
		s->head = (s->head + 1) % s->cap;
		s->n--;
	}
	return s->n && s->flagged[s->head] == string_no;
}

void trs__json_scan_free(trs__json_scan *s)
{
	free(s->flagged);
	s->flagged = NULL;
	s->n = s->cap = s->head = 0;
}
