/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Members of objects/ that are not regular files, by the hash of their
 * relative key (lib/archive/link_memo.h). Appended while the tar is walked,
 * sorted once when the first entry without a member asks, searched in
 * O(log n) for each: 400,000 entries without a member cost no scan each.
 */
#include "link_memo.h"

#include <stdlib.h>
#include <string.h>

#define OBJECTS_PREFIX "objects/"

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a, then a mix of its high bits into the low ones */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	h ^= h >> 31;
	return h & ~(uint64_t)3;
}

void trs__link_memo_add(trs__link_memo *memo, const char *path, trs_member_type type)
{
	if (type != TRS_MEMBER_SYMLINK && type != TRS_MEMBER_HARDLINK && type != TRS_MEMBER_OTHER)
		return;
	if (path[0] == '.' && path[1] == '/')
		path += 2;
	if (strncmp(path, OBJECTS_PREFIX, strlen(OBJECTS_PREFIX)) != 0)
		return;
	if (memo->n == memo->cap) {
		size_t cap = memo->cap ? memo->cap * 2 : 64;
		uint64_t *items = cap <= TRS__LINK_MEMO_MAX ? realloc(memo->items, cap * sizeof(*items)) : NULL;
		if (!items) {
			memo->forgotten++; /* its entry's failure then says it may be held so */
			return;
		}
		memo->items = items;
		memo->cap = cap;
	}
	unsigned int kind = type == TRS_MEMBER_SYMLINK ? 1 : type == TRS_MEMBER_HARDLINK ? 2 : 3;
	memo->items[memo->n++] = name_hash(path + strlen(OBJECTS_PREFIX)) | kind;
	memo->sorted = 0;
}

static int by_name(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a & ~(uint64_t)3, y = *(const uint64_t *)b & ~(uint64_t)3;
	return x < y ? -1 : x > y;
}

trs_member_type trs__link_memo_find(trs__link_memo *memo, const char *relative_key)
{
	if (!memo->n)
		return TRS_MEMBER_FILE;
	if (!memo->sorted) {
		qsort(memo->items, memo->n, sizeof(*memo->items), by_name);
		memo->sorted = 1;
	}
	uint64_t key = name_hash(relative_key);
	const uint64_t *hit = bsearch(&key, memo->items, memo->n, sizeof(*memo->items), by_name);
	if (!hit)
		return TRS_MEMBER_FILE;
	static const trs_member_type types[] = {TRS_MEMBER_FILE, TRS_MEMBER_SYMLINK, TRS_MEMBER_HARDLINK, TRS_MEMBER_OTHER};
	return types[*hit & 3];
}

void trs__link_memo_free(trs__link_memo *memo)
{
	free(memo->items);
	memset(memo, 0, sizeof(*memo));
}
