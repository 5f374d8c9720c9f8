/* SPDX-License-Identifier: Apache-2.0 */
/* A bump allocator for the manifest's strings: one malloc per 64 KiB, not per field. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE (64 * 1024)

struct trs__arena_chunk {
	trs__arena_chunk *next;
	max_align_t data[];
};

void *trs__arena_alloc(trs__arena *a, size_t size, size_t align)
{
	size_t start = (a->used + align - 1) & ~(align - 1);
	if (!a->head || start + size > a->cap || start + size < start) {
		size_t cap = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
		if (cap > SIZE_MAX - sizeof(trs__arena_chunk))
			return NULL;
		trs__arena_chunk *c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		a->bytes += sizeof(*c) + cap;
		if (a->head && cap != CHUNK_SIZE) {
			/* A big one-off: link it behind the head so the head keeps filling. */
			c->next = a->head->next;
			a->head->next = c;
			return c->data;
		}
		c->next = a->head;
		a->head = c;
		a->used = 0;
		a->cap = cap;
		start = 0;
	}
	a->used = start + size;
	return (char *)a->head->data + start;
}

char *trs__arena_strdup(trs__arena *a, const char *s, size_t len)
{
	char *p = trs__arena_alloc(a, len + 1, 1);
	if (p) {
		if (len)
			memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

void trs__arena_free(trs__arena *a)
{
	trs__arena_chunk *c = a->head;
	while (c) {
		trs__arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = a->cap = a->bytes = 0;
}
