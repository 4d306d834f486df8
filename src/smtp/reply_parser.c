/* Incremental SMTP reply parser; see reply_parser.h. */
#include "reply_parser.h"

#include <string.h>

#include "util/xalloc.h"

struct smtp_reply_parser {
	unsigned char line[SMTP_REPLY_LINE_MAX]; /* current line, without LF */
	size_t line_len;
	bool skipping;       /* a too-long line is being skipped up to its LF */
	bool returned;       /* the last call returned a reply or an error: start afresh */
	unsigned char *text; /* texts of the reply's lines, back to back */
	size_t text_len;
	size_t off[SMTP_REPLY_LINES_MAX], len[SMTP_REPLY_LINES_MAX];
	size_t nlines;
	int code;
	char enhanced[SMTP_REPLY_ENH_MAX];
};

struct smtp_reply_parser *
smtp_reply_parser_new(void)
{
	struct smtp_reply_parser *p = xcalloc(1, sizeof(*p));
	p->text = xmalloc((size_t)SMTP_REPLY_LINES_MAX * SMTP_REPLY_LINE_MAX);
	return p;
}

void
smtp_reply_parser_free(struct smtp_reply_parser **pp)
{
	if (*pp == NULL)
		return;
	free((*pp)->text);
	x_free(pp);
}

static void
reply_clear(struct smtp_reply_parser *p)
{
	p->text_len = 0;
	p->nlines = 0;
	p->code = 0;
	p->enhanced[0] = '\0';
}

void
smtp_reply_parser_reset(struct smtp_reply_parser *p)
{
	reply_clear(p);
	p->line_len = 0;
	p->skipping = false;
	p->returned = false;
}

bool
smtp_reply_parser_has_partial(const struct smtp_reply_parser *p)
{
	return !p->returned && (p->line_len > 0 || p->skipping || p->nlines > 0);
}

const char *
smtp_reply_error_text(enum smtp_reply_error e)
{
	switch (e) {
	case SMTP_REPLY_ERR_NONE:
		return "no error";
	case SMTP_REPLY_ERR_LINE_TOO_LONG:
		return "reply line too long";
	case SMTP_REPLY_ERR_TOO_MANY_LINES:
		return "too many reply lines";
	case SMTP_REPLY_ERR_BAD_CODE:
		return "malformed reply code";
	case SMTP_REPLY_ERR_BAD_SEPARATOR:
		return "malformed reply separator";
	case SMTP_REPLY_ERR_CODE_MISMATCH:
		return "reply code changes within a multi-line reply";
	case SMTP_REPLY_ERR_NUL:
		return "NUL in reply";
	}
	return "unknown reply error";
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Length of a leading enhanced status code "c.s.d" (followed by SP or end) of class cls, or 0.
 * The length includes the following SP. */
static size_t
enhanced_len(const unsigned char *t, size_t n, int cls)
{
	if (n < 5 || t[0] != '0' + cls || t[1] != '.')
		return 0;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < n && is_digit(t[i]) && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return 0;
		if (part == 0) {
			if (i >= n || t[i] != '.')
				return 0;
			i++;
		}
	}
	if (i == n)
		return i;
	if (t[i] != ' ')
		return 0;
	return i + 1;
}

/* Handles one complete line (without LF). Returns OK when it was the last line of a reply,
 * NEED_MORE for a continuation line, ERROR with *err_r. */
static enum smtp_reply_parse
handle_line(struct smtp_reply_parser *p, enum smtp_reply_error *err_r)
{
	unsigned char *l = p->line;
	size_t n = p->line_len;
	if (n > 0 && l[n - 1] == '\r')
		n--;
	if (memchr(l, '\0', n) != NULL) {
		*err_r = SMTP_REPLY_ERR_NUL;
		return SMTP_REPLY_ERROR;
	}
	if (n < 3 || l[0] < '2' || l[0] > '5' || !is_digit(l[1]) || !is_digit(l[2])) {
		*err_r = SMTP_REPLY_ERR_BAD_CODE;
		return SMTP_REPLY_ERROR;
	}
	int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	bool last;
	if (n == 3 || l[3] == ' ')
		last = true;
	else if (l[3] == '-')
		last = false;
	else {
		*err_r = SMTP_REPLY_ERR_BAD_SEPARATOR;
		return SMTP_REPLY_ERROR;
	}
	if (p->nlines > 0 && code != p->code) {
		*err_r = SMTP_REPLY_ERR_CODE_MISMATCH;
		return SMTP_REPLY_ERROR;
	}
	if (p->nlines >= SMTP_REPLY_LINES_MAX) {
		*err_r = SMTP_REPLY_ERR_TOO_MANY_LINES;
		return SMTP_REPLY_ERROR;
	}
	const unsigned char *t = n > 4 ? l + 4 : l + n;
	size_t tn = n > 4 ? n - 4 : 0;
	size_t el = enhanced_len(t, tn, code / 100);
	if (el > 0) {
		if (p->nlines == 0) {
			size_t k = t[el - 1] == ' ' ? el - 1 : el;
			memcpy(p->enhanced, t, k); /* k <= 9 < SMTP_REPLY_ENH_MAX */
			p->enhanced[k] = '\0';
		}
		t += el;
		tn -= el;
	}
	p->code = code;
	memcpy(p->text + p->text_len, t, tn);
	p->off[p->nlines] = p->text_len;
	p->len[p->nlines] = tn;
	p->text_len += tn;
	p->nlines++;
	return last ? SMTP_REPLY_OK : SMTP_REPLY_NEED_MORE;
}

enum smtp_reply_parse
smtp_reply_parse(struct smtp_reply_parser *p, const unsigned char *in, size_t len, size_t *used_r,
                 struct smtp_reply *reply_r, enum smtp_reply_error *err_r)
{
	*err_r = SMTP_REPLY_ERR_NONE;
	if (p->returned) {
		reply_clear(p);
		p->returned = false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];
		if (p->skipping) {
			if (c == '\n')
				p->skipping = false;
			continue;
		}
		if (c != '\n') {
			/* room for the LF: content is at most LINE_MAX - 1 octets */
			if (p->line_len >= SMTP_REPLY_LINE_MAX - 1) {
				p->line_len = 0;
				p->skipping = true;
				p->returned = true;
				*used_r = i + 1;
				*err_r = SMTP_REPLY_ERR_LINE_TOO_LONG;
				return SMTP_REPLY_ERROR;
			}
			p->line[p->line_len++] = c;
			continue;
		}
		enum smtp_reply_parse r = handle_line(p, err_r);
		p->line_len = 0;
		if (r == SMTP_REPLY_NEED_MORE)
			continue;
		*used_r = i + 1;
		p->returned = true;
		if (r == SMTP_REPLY_OK) {
			reply_r->code = p->code;
			memcpy(reply_r->enhanced, p->enhanced, sizeof(p->enhanced));
			reply_r->nlines = p->nlines;
			for (size_t k = 0; k < p->nlines; k++)
				reply_r->lines[k] = slice_make(p->text + p->off[k], p->len[k]);
		}
		return r;
	}
	*used_r = len;
	return SMTP_REPLY_NEED_MORE;
}
