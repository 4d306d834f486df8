/* DKIM canonicalisation (RFC 6376 §3.4): relaxed header, relaxed and simple body. Input line
 * ends may be CRLF or bare LF (treated as CRLF). No I/O. */
#include "dkim.h"

#include <stdbool.h>

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Next line of body starting at *pos: [*start, *start + *len) without its line end; *had_eol
 * tells whether a line end followed. Returns false at the end of the input. */
static bool
next_line(const unsigned char *p, size_t n, size_t *pos, size_t *start_r, size_t *len_r,
          bool *had_eol_r)
{
	if (*pos >= n)
		return false;
	size_t i = *pos;
	*start_r = i;
	while (i < n && p[i] != '\n')
		i++;
	size_t end = i;
	*had_eol_r = i < n;
	if (*had_eol_r && end > *start_r && p[end - 1] == '\r')
		end--;
	*len_r = end - *start_r;
	*pos = *had_eol_r ? i + 1 : i;
	return true;
}

int
dkim_canon_body_relaxed(const unsigned char *body, size_t len, struct buf *out)
{
	size_t pos = 0, start, n, empty_run = 0;
	bool eol;
	while (next_line(body, len, &pos, &start, &n, &eol)) {
		const unsigned char *l = body + start;
		/* drop trailing WSP */
		while (n > 0 && is_wsp(l[n - 1]))
			n--;
		if (n == 0) {
			empty_run++;
			continue;
		}
		for (; empty_run > 0; empty_run--)
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
		for (size_t i = 0; i < n;) {
			if (is_wsp(l[i])) {
				while (i < n && is_wsp(l[i]))
					i++;
				if (buf_append_byte(out, ' ') < 0)
					return -1;
				continue;
			}
			size_t run = 1;
			while (i + run < n && !is_wsp(l[i + run]))
				run++;
			if (buf_append(out, l + i, run) < 0)
				return -1;
			i += run;
		}
		if (buf_append(out, "\r\n", 2) < 0)
			return -1;
	}
	/* an empty (or all-empty-lines) body canonicalises to nothing (§3.4.4) */
	return 0;
}

int
dkim_canon_body_simple(const unsigned char *body, size_t len, struct buf *out)
{
	size_t pos = 0, start, n, empty_run = 0;
	bool eol, any = false;
	while (next_line(body, len, &pos, &start, &n, &eol)) {
		if (n == 0) {
			empty_run++;
			continue;
		}
		for (; empty_run > 0; empty_run--)
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
		any = true;
		if (buf_append(out, body + start, n) < 0 || buf_append(out, "\r\n", 2) < 0)
			return -1;
	}
	/* §3.4.3: an empty body is a single CRLF */
	if (!any && buf_append(out, "\r\n", 2) < 0)
		return -1;
	return 0;
}

int
dkim_canon_header_relaxed(const unsigned char *field, size_t len, struct buf *out)
{
	size_t colon = 0;
	while (colon < len && field[colon] != ':')
		colon++;
	if (colon == len)
		return -1;
	size_t nlen = colon;
	while (nlen > 0 && is_wsp(field[nlen - 1]))
		nlen--;
	for (size_t i = 0; i < nlen; i++) {
		unsigned char c = field[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (buf_append_byte(out, c) < 0)
			return -1;
	}
	if (buf_append_byte(out, ':') < 0)
		return -1;
	/* value: unfold (drop CR and LF), WSP runs to one SP, trim both ends */
	bool pending_sp = false, started = false;
	for (size_t i = colon + 1; i < len; i++) {
		unsigned char c = field[i];
		if (c == '\r' || c == '\n')
			continue;
		if (is_wsp(c)) {
			pending_sp = started;
			continue;
		}
		if (pending_sp && buf_append_byte(out, ' ') < 0)
			return -1;
		pending_sp = false;
		started = true;
		if (buf_append_byte(out, c) < 0)
			return -1;
	}
	return buf_append(out, "\r\n", 2);
}
