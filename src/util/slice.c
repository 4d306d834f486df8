/* Borrowed-slice helpers; see slice.h. */
#include "slice.h"

#include <strings.h>

bool
slice_eq(struct slice s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

static inline char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool
slice_eq_nocase(struct slice s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && slice_has_prefix_nocase(s, lit);
}

bool
slice_has_prefix_nocase(struct slice s, const char *lit)
{
	size_t n = strlen(lit);
	if (s.len < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(s.p[i]) != ascii_lower(lit[i]))
			return false;
	return true;
}

struct slice
slice_trim(struct slice s)
{
	while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

struct slice
slice_cut(struct slice s, char c, struct slice *head_r)
{
	const char *hit = s.len ? memchr(s.p, c, s.len) : NULL;
	if (hit == NULL) {
		*head_r = s;
		return (struct slice){NULL, 0};
	}
	*head_r = (struct slice){s.p, (size_t)(hit - s.p)};
	return (struct slice){hit + 1, s.len - (size_t)(hit - s.p) - 1};
}
