/* Owned, growable byte buffer with a hard maximum. A NUL is always kept after the data, so
 * buf_cstr() is a C string when the data has no NUL. Appending past max returns -1 and sets
 * overflow; it never aborts, because network input must never panic us. One owner, not
 * thread-safe. */
#ifndef LIGHTR_BUF_H
#define LIGHTR_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "slice.h"

struct buf {
	unsigned char *data;
	size_t len, cap;
	size_t max;    /* hard upper bound on len */
	bool overflow; /* an append was refused because of max */
};

/* max 0 means SIZE_MAX / 2. No allocation happens until the first append. */
void buf_init(struct buf *b, size_t max);
void buf_deinit(struct buf *b);
/* len = 0, overflow = false; keeps the allocation. */
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_byte(struct buf *b, unsigned char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* The data as a C string (never NULL). */
const char *buf_cstr(const struct buf *b);
struct slice buf_slice(const struct buf *b);

#endif
