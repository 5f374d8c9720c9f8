/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Members of objects/ that are not regular files, remembered by name
 * (lib/archive/link_memo.c): symbolic and hard links, devices, FIFOs. They are
 * never restored, but a manifest entry they would have served fails saying
 * what the archive holds instead of "lost upstream". The source side puts
 * the manifest last, so most are seen before anyone knows which names
 * matter: names are kept as 64-bit hashes, at most TRS__LINK_MEMO_MAX of
 * them (2 MiB), so that an archive of links cannot grow memory without bound.
 */
#ifndef TRS_LINK_MEMO_H
#define TRS_LINK_MEMO_H

#include "util.h"

#define TRS__LINK_MEMO_MAX (1u << 18)

typedef struct trs__link_memo {
	uint64_t *items;    /* a name's hash, its low two bits the member's type */
	size_t n, cap;
	uint64_t forgotten; /* members past TRS__LINK_MEMO_MAX, or when memory ran out */
	int sorted;
} trs__link_memo;

/* Remember member `path` (as in the tar) of `type`, when it is a link, device or FIFO under objects/. */
void trs__link_memo_add(trs__link_memo *memo, const char *path, trs_member_type type);

/* What the archive held at objects/<relative_key>: TRS_MEMBER_SYMLINK, TRS_MEMBER_HARDLINK or
 * TRS_MEMBER_OTHER; TRS_MEMBER_FILE when none of those is remembered. */
trs_member_type trs__link_memo_find(trs__link_memo *memo, const char *relative_key);

void trs__link_memo_free(trs__link_memo *memo);

#endif
