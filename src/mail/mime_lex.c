/* The lexical level of the MIME module: reading RFC 5322 / RFC 2045 lexemes (comments and
 * whitespace, quoted strings) and writing IMAP strings the way Dovecot 2.3 writes them in
 * ENVELOPE and BODYSTRUCTURE (quoted with escapes, or a literal for 8-bit bytes; line breaks
 * unfolded; NUL replaced). Every function is linear in its input and allocates only in the
 * buffer it is handed. Shared through mime_private.h. */
#include <stdio.h>
#include <string.h>

#include "mail/mime_private.h"

/* ---- lexemes (RFC 5322 §3.2, RFC 2045 §5.1) ---- */

/* Skips whitespace, line breaks and (nested) comments. When cmt_start is not NULL it receives the
 * inner range of the last comment skipped (untouched when there is none). */
size_t
mime_skip_cfws(const unsigned char *s, size_t i, size_t e, size_t *cmt_start, size_t *cmt_end)
{
	while (i < e) {
		unsigned char c = s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (c != '(')
			break;
		size_t start = ++i;
		unsigned depth = 1;
		while (i < e && depth > 0) {
			if (s[i] == '\\' && i + 1 < e)
				i++;
			else if (s[i] == '(')
				depth++;
			else if (s[i] == ')')
				depth--;
			i++;
		}
		if (cmt_start != NULL) {
			*cmt_start = start;
			*cmt_end = depth == 0 ? i - 1 : i;
		}
	}
	return i;
}

/* s[i] == '"': appends the unescaped content (line breaks removed) to out and returns the index
 * after the closing quote (e when unterminated). */
size_t
mime_parse_quoted(const unsigned char *s, size_t i, size_t e, struct buf *out, bool *closed_r)
{
	if (closed_r != NULL)
		*closed_r = false;
	for (i++; i < e; i++) {
		unsigned char c = s[i];
		if (c == '"') {
			if (closed_r != NULL)
				*closed_r = true;
			return i + 1;
		}
		if (c == '\\' && i + 1 < e)
			c = s[++i];
		if (c == '\r' || c == '\n')
			continue;
		buf_append_byte(out, c);
	}
	return e;
}

/* ---- IMAP string output ---- */

/* Appends p[0, n) cleaned as Dovecot does: a line break and the whitespace after it become one
 * space, NUL becomes U+FFFD (a literal must not
 * carry NUL); with esc, '"' and '\' get a backslash. With out NULL, only measures: returns the
 * length and sets the flags. */
static size_t
clean_append(struct buf *out, const unsigned char *p, size_t n, bool esc, bool *brk_r, bool *high_r,
             bool *special_r)
{
	size_t run = 0, i = 0, len = 0;
	if (n == 0) /* p may be NULL (an empty buffer) */
		return 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c == '\r' || c == '\n') {
			if (out != NULL)
				buf_append(out, p + run, i - run);
			len += i - run;
			while (i < n && (p[i] == '\r' || p[i] == '\n'))
				i++;
			while (i < n && is_wsp(p[i]))
				i++;
			if (out != NULL)
				buf_append_byte(out, ' ');
			len++;
			*brk_r = true;
			run = i;
			continue;
		}
		if (c >= 0x80 || c == 0)
			*high_r = true;
		if (c == '"' || c == '\\')
			*special_r = true;
		if (c == 0 || (esc && (c == '"' || c == '\\'))) {
			if (out != NULL)
				buf_append(out, p + run, i - run);
			len += i - run;
			if (c == 0) {
				if (out != NULL)
					buf_append(out, "\xef\xbf\xbd", 3);
				len += 3;
			} else {
				if (out != NULL) {
					buf_append_byte(out, '\\');
					buf_append_byte(out, c);
				}
				len += 2;
			}
			run = ++i;
			continue;
		}
		i++;
	}
	if (out != NULL)
		buf_append(out, p + run, n - run);
	return len + (n - run);
}

/* ENVELOPE subject and display names, as Dovecot's imap_append_string_for_humans: runs of
 * whitespace (line breaks and TABs included) become one space, leading and trailing whitespace
 * go, NUL becomes 0x80; any such change, '"', '\\' or an 8-bit byte makes it a literal. */
void
mime_out_human(struct buf *out, const unsigned char *p, size_t n)
{
	size_t remove = 0;
	bool prefix = true, last_lwsp = true, modify = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
			if (c != ' ')
				modify = true;
			if (last_lwsp) {
				modify = true;
				remove++;
			}
			last_lwsp = true;
		} else {
			if (c == 0 || c == '"' || c == '\\' || c >= 0x80)
				modify = true;
			last_lwsp = false;
			prefix = false;
		}
	}
	if (last_lwsp && n > 0 && !prefix) {
		modify = true;
		remove++;
	}
	if (!modify) {
		buf_append_byte(out, '"');
		buf_append(out, p, n);
		buf_append_byte(out, '"');
		return;
	}
	if (remove >= n) {
		buf_append_str(out, "\"\"");
		return;
	}
	buf_printf(out, "{%zu}\r\n", n - remove);
	size_t start = out->len, run = 0;
	last_lwsp = true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		bool ws = c == '\r' || c == '\n' || c == '\t' || c == ' ';
		if (!ws && c != 0)
			continue;
		/* flush the run of ordinary bytes before i */
		if (i > run) {
			buf_append(out, p + run, i - run);
			last_lwsp = false;
		}
		if (c == 0) {
			buf_append_byte(out, 0x80);
			last_lwsp = false;
		} else {
			if (!last_lwsp)
				buf_append_byte(out, ' ');
			last_lwsp = true;
		}
		run = i + 1;
	}
	if (n > run) {
		buf_append(out, p + run, n - run);
		last_lwsp = false;
	}
	if (last_lwsp && out->len > start)
		out->len--; /* the trailing space */
}

/* ENVELOPE strings other than the human ones (date, message ids, addresses) and every
 * BODYSTRUCTURE string: one function, as the two wrote the same bytes. */
void
mime_out_string(struct buf *out, const unsigned char *p, size_t n)
{
	bool brk = false, high = false, special = false;
	size_t len = clean_append(NULL, p, n, false, &brk, &high, &special);
	if (high) {
		buf_printf(out, "{%zu}\r\n", len);
		clean_append(out, p, n, false, &brk, &high, &special);
		return;
	}
	buf_append_byte(out, '"');
	clean_append(out, p, n, true, &brk, &high, &special);
	buf_append_byte(out, '"');
}
