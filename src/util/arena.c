/* Arena: a singly linked list of blocks; allocation bumps a pointer in the newest block, and an
 * allocation larger than the chunk size gets a block of its own. */
#include "arena.h"

#include <stdint.h>
#include <string.h>

#include "xalloc.h"

struct arena_block {
	struct arena_block *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

struct arena {
	const char *name;
	size_t chunk;
	size_t total;
	struct arena_block *head;
};

struct arena *
arena_new(const char *name, size_t chunk)
{
	struct arena *a = xcalloc(1, sizeof *a);
	a->name = name;
	a->chunk = chunk ? chunk : 4096;
	return a;
}

void
arena_free(struct arena **ap)
{
	struct arena *a = *ap;
	if (a == NULL)
		return;
	*ap = NULL;
	while (a->head) {
		struct arena_block *b = a->head;
		a->head = b->next;
		free(b);
	}
	free(a);
}

void *
arena_alloc(struct arena *a, size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;
	if (need < n)
		abort();
	struct arena_block *b = a->head;
	if (b == NULL || b->size - b->used < need) {
		size_t size = need > a->chunk ? need : a->chunk;
		b = xmalloc(sizeof *b + size);
		b->size = size;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += need;
	a->total += n;
	return p;
}

void *
arena_zalloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);
	memset(p, 0, n);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = arena_alloc(a, len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, SIZE_MAX);
}

size_t
arena_used(const struct arena *a)
{
	return a->total;
}
