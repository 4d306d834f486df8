/* Sequence sets (RFC 9051 §9 sequence-set): a vector of ranges where 0 stands for "*" until
 * imap_seqset_resolve() maps it onto the mailbox and sorts and merges the ranges, after which
 * lookups are binary searches. See parser.h. */
#include <stdlib.h>

#include "parser.h"
#include "util/xalloc.h"

void
imap_seqset_init(struct imap_seqset *s)
{
	s->v = NULL;
	s->n = s->cap = 0;
	s->dollar = false;
}

void
imap_seqset_deinit(struct imap_seqset *s)
{
	x_free(&s->v);
	s->n = s->cap = 0;
	s->dollar = false;
}

void
imap_seqset_reset(struct imap_seqset *s)
{
	s->n = 0;
	s->dollar = false;
}

/* Appends the range; returns 0 (allocation failure aborts). The IMAP_SEQSET_MAX_RANGES limit
 * on what a client may send is enforced by imap_cur_seqset(), not here, so that server-side
 * sets (search results) may be larger. */
int
imap_seqset_add(struct imap_seqset *s, uint32_t lo, uint32_t hi)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		if (cap > SIZE_MAX / sizeof *s->v)
			return -1;
		s->v = xrealloc(s->v, cap * sizeof *s->v);
		s->cap = cap;
	}
	s->v[s->n++] = (struct imap_seqrange){lo, hi};
	return 0;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct imap_seqrange *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return 0;
}

/* With max 0 (empty mailbox) "*" is 0, and a range that reaches 0 ("*", "*:*", "1:*") matches
 * nothing: it is dropped. */
void
imap_seqset_resolve(struct imap_seqset *s, uint32_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		uint32_t lo = s->v[i].lo ? s->v[i].lo : max;
		uint32_t hi = s->v[i].hi ? s->v[i].hi : max;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (lo == 0)
			continue;
		s->v[k++] = (struct imap_seqrange){lo, hi};
	}
	s->n = k;
	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof *s->v, range_cmp);
	k = 0;
	for (size_t i = 1; i < s->n; i++) {
		struct imap_seqrange *last = &s->v[k];
		if (s->v[i].lo <= last->hi || s->v[i].lo - 1 == last->hi) {
			if (s->v[i].hi > last->hi)
				last->hi = s->v[i].hi;
		} else {
			s->v[++k] = s->v[i];
		}
	}
	s->n = k + 1;
}

bool
imap_seqset_contains(const struct imap_seqset *s, uint32_t n)
{
	size_t lo = 0, hi = s->n;
	if (n == 0)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n < s->v[mid].lo)
			hi = mid;
		else if (n > s->v[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

void
imap_seqset_format(struct buf *out, const uint32_t *v, size_t n)
{
	size_t i = 0;
	bool first = true;
	while (i < n) {
		uint32_t start = v[i], end = v[i];
		i++;
		while (i < n && (v[i] == end || (end != UINT32_MAX && v[i] == end + 1))) {
			end = v[i];
			i++;
		}
		if (start == end)
			(void)buf_printf(out, "%s%u", first ? "" : ",", start);
		else
			(void)buf_printf(out, "%s%u:%u", first ? "" : ",", start, end);
		first = false;
	}
}
