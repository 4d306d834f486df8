/* A borrowed byte range. Never freed; valid as long as its owner (named by whoever hands it out)
 * keeps the bytes unchanged. Network bytes may contain NUL, so length is explicit. */
#ifndef LIGHTR_SLICE_H
#define LIGHTR_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct slice {
	const char *p;
	size_t len;
};

static inline struct slice
slice_from(const char *s)
{
	return (struct slice){s, s ? strlen(s) : 0};
}

static inline struct slice
slice_make(const void *p, size_t len)
{
	return (struct slice){(const char *)p, len};
}

/* true when s equals the literal exactly (bytes, case-sensitive). */
bool slice_eq(struct slice s, const char *lit);
/* true when s equals the literal ignoring ASCII case. */
bool slice_eq_nocase(struct slice s, const char *lit);
/* true when s starts with the literal ignoring ASCII case. */
bool slice_has_prefix_nocase(struct slice s, const char *lit);
/* s without leading and trailing spaces and tabs. */
struct slice slice_trim(struct slice s);
/* Splits s at the first occurrence of c: *head_r gets the part before, the return value the
 * part after (len 0, p NULL when c is absent, and then *head_r is all of s). */
struct slice slice_cut(struct slice s, char c, struct slice *head_r);

#endif
