/* Allocators that abort on out-of-memory (as Postfix mymalloc and OpenSMTPD xmalloc do), so call
 * sites never check for NULL. Thread-safe. */
#ifndef LIGHTR_XALLOC_H
#define LIGHTR_XALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; never NULL. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* free(*p) and set *p = NULL; accepts NULL. */
static inline void
x_free(void *pp)
{
	void **p = (void **)pp;
	free(*p);
	*p = NULL;
}

#endif
