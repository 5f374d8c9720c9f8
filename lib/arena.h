/* SPDX-License-Identifier: Apache-2.0 */
/* A bump allocator: many small strings, freed all at once. */
#ifndef TRS_ARENA_H
#define TRS_ARENA_H

#include <stddef.h>

typedef struct trs__arena_chunk trs__arena_chunk;

typedef struct trs__arena {
	trs__arena_chunk *head;
	size_t used;  /* bytes used in head */
	size_t cap;   /* bytes available in head */
	size_t bytes; /* allocated in all, chunk headers included */
} trs__arena;

void *trs__arena_alloc(trs__arena *a, size_t size, size_t align);
/* Copy s[0..len) and a NUL. */
char *trs__arena_strdup(trs__arena *a, const char *s, size_t len);
void trs__arena_free(trs__arena *a);

#endif
