/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What yajl's string callbacks cannot tell (lib/archive/json_scan.c): which strings
 * of a JSON text held a lone UTF-16 surrogate escape ("\ud800" without its
 * pair). yajl turns one into '?', so "a\ud800" and "a\udc00" would both
 * become "a?"; the raw text is scanned as it is fed, and the strings are
 * numbered in the order yajl delivers them (values and keys alike).
 */
#ifndef TRS_JSON_SCAN_H
#define TRS_JSON_SCAN_H

#include "internal.h"

typedef struct trs__json_scan {
	int state;
	unsigned int hex;
	int hex_digits;
	int high;                 /* a high surrogate escape waits for its low half */
	uint64_t strings;         /* strings opened so far */
	uint64_t *flagged;        /* numbers (from 1) of strings with a lone surrogate, oldest first */
	size_t head, n, cap;
} trs__json_scan;

/* Scan the next bytes of the text (before yajl parses them). TRS_ENOMEM, or 0. */
int trs__json_scan_feed(trs__json_scan *s, const unsigned char *data, size_t len);
/* Did string number `string_no` (from 1, in yajl's order) hold a lone surrogate? Ask in increasing order. */
bool trs__json_scan_flagged(trs__json_scan *s, uint64_t string_no);
void trs__json_scan_free(trs__json_scan *s);

#endif
