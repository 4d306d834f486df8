/* Region allocator: many small allocations, one free. One per connection, SMTP transaction or
 * IMAP command (STYLE.md B.6). Objects inside have no free function of their own. Not
 * thread-safe. Allocations are 16-byte aligned. */
#ifndef LIGHTR_ARENA_H
#define LIGHTR_ARENA_H

#include <stddef.h>

struct arena;

/* name is static text used in panics; chunk is the default block size (0: 4096). */
struct arena *arena_new(const char *name, size_t chunk);
/* Frees every block and sets *ap = NULL; accepts NULL. */
void arena_free(struct arena **ap);
void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Bytes handed out so far (for limits and tests). */
size_t arena_used(const struct arena *a);

#endif
