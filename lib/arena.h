/* SPDX-License-Identifier: Apache-2.0 */
/* A bump allocator: many small strings, freed all at once. */
#ifndef TRS_ARENA_H
#define TRS_ARENA_H

#include <stddef.h>

typedef struct trs_arena_chunk trs_arena_chunk;

typedef struct trs_arena {
	trs_arena_chunk *head;
	size_t used;  /* bytes used in head */
	size_t cap;   /* bytes available in head */
	size_t bytes; /* allocated in all, chunk headers included */
} trs_arena;

void *trs__arena_alloc(trs_arena *a, size_t size, size_t align);
/* Copy s[0..len) and a NUL. */
char *trs__arena_strdup(trs_arena *a, const char *s, size_t len);
void trs__arena_free(trs_arena *a);

#endif
