/* authres - the Authentication-Results header field (RFC 8601): building ours, and removing
 * incoming ones that claim our authserv-id (RFC 8601 §5). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

#define AUTHRES_COLS 78 /* RFC 5322 §2.1.1: lines SHOULD be at most 78 characters */
#define AUTHRES_TAB  8  /* columns a leading tab is counted as */

/* A folding writer: units separated by one space, or by a fold when the line would get too
 * long. */
struct ar_writer {
	struct buf *out;
	size_t col;
};

static void
ar_raw(struct ar_writer *w, const char *s, size_t n)
{
	(void)buf_append(w->out, s, n);
	w->col += n;
}

static void
ar_newline(struct ar_writer *w, const char *indent)
{
	(void)buf_append_str(w->out, "\r\n");
	(void)buf_append_str(w->out, indent);
	w->col = AUTHRES_TAB + strlen(indent) - 1;
}

/* ar_unit - one unit of n bytes, preceded by a space or a fold. */
static void
ar_unit(struct ar_writer *w, const char *s, size_t n)
{
	if (w->col + 1 + n + 1 > AUTHRES_COLS && w->col > AUTHRES_TAB + 2) /* room for ";" */
		ar_newline(w, "\t  ");
	else
		ar_raw(w, " ", 1);
	ar_raw(w, s, n);
}

/* RFC 2045 §5.1 token characters. */
static bool
ar_is_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* ar_value - value as an RFC 2045 token, or as a quoted-string when it is empty or has other
 * characters (non-printable bytes become '?'). Written into tmp (size n). */
static const char *
ar_value(const char *v, char *tmp, size_t n)
{
	bool token = v[0] != '\0';
	for (const char *p = v; *p && token; p++)
		token = ar_is_token_char((unsigned char)*p);
	if (token)
		return v;
	size_t o = 0;
	tmp[o++] = '"';
	for (const char *p = v; *p && o + 3 < n; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			tmp[o++] = '\\';
		tmp[o++] = c >= ' ' && c < 0x7f ? (char)c : '?';
	}
	tmp[o++] = '"';
	tmp[o] = '\0';
	return tmp;
}

/* ar_prop - " ptype.property=value" as one unit (skipped when value is empty). */
static void
ar_prop(struct ar_writer *w, const char *name, const char *value)
{
	char q[600], u[700];
	if (value == NULL || value[0] == '\0')
		return;
	int k = snprintf(u, sizeof u, "%s=%s", name, ar_value(value, q, sizeof q));
	if (k > 0)
		ar_unit(w, u, (size_t)k < sizeof u ? (size_t)k : sizeof u - 1);
}

/* ar_comment - "(text)", folded between words; '(' ')' '\\' become quoted-pairs, other
 * whitespace a space, non-printable bytes '?'. Nothing when text is empty. */
static void
ar_comment(struct ar_writer *w, const char *text)
{
	if (text == NULL || text[0] == '\0')
		return;
	char c[1024];
	size_t o = 0;
	c[o++] = '(';
	for (const char *p = text; *p && o + 4 < sizeof c; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '\t' || ch == '\r' || ch == '\n')
			ch = ' ';
		if (ch == ' ' && (c[o - 1] == ' ' || c[o - 1] == '('))
			continue;
		if (ch == '(' || ch == ')' || ch == '\\')
			c[o++] = '\\';
		c[o++] = ch > ' ' && ch < 0x7f ? (char)ch : ch == ' ' ? ' ' : '?';
	}
	if (c[o - 1] == ' ')
		o--;
	c[o++] = ')';
	size_t start = 0;
	for (size_t k = 0; k <= o; k++)
		if (k == o || c[k] == ' ') {
			ar_unit(w, c + start, k - start);
			start = k + 1;
		}
}

/* ar_method - starts a resinfo: ";" then a new line, then "method=result". */
static void
ar_method(struct ar_writer *w, const char *method, const char *result)
{
	ar_raw(w, ";", 1);
	ar_newline(w, "\t");
	char u[64];
	int k = snprintf(u, sizeof u, "%s=%s", method, result);
	ar_unit(w, u, (size_t)k < sizeof u ? (size_t)k : sizeof u - 1);
}

void
authres_build(const char *authserv_id, const struct spf_outcome *spf,
              const struct dkim_verify_result *dkim, const struct dmarc_outcome *dmarc,
              struct buf *out)
{
	struct ar_writer w = {.out = out};
	char q[600];
	ar_raw(&w, "Authentication-Results:", strlen("Authentication-Results:"));
	const char *id = ar_value(authserv_id != NULL ? authserv_id : "", q, sizeof q);
	ar_unit(&w, id, strlen(id));

	if (spf != NULL) {
		ar_method(&w, "spf", spf_result_name(spf->result));
		ar_comment(&w, spf->reason);
		ar_prop(&w, spf->helo_identity ? "smtp.helo" : "smtp.mailfrom", spf->domain);
	}
	size_t nsig = dkim != NULL ? dkim->n : 0;
	if (nsig > DKIM_VERIFY_MAX)
		nsig = DKIM_VERIFY_MAX;
	if (nsig == 0) {
		ar_method(&w, "dkim", dkim_result_name(DKIM_RESULT_NONE));
	}
	for (size_t i = 0; i < nsig; i++) {
		const struct dkim_sig_result *s = &dkim->sigs[i];
		ar_method(&w, "dkim", dkim_result_name(s->result));
		char why[sizeof s->reason + 64];
		(void)snprintf(why, sizeof why, "%.*s%s%s", (int)sizeof s->reason, s->reason,
		               s->body_partial && s->reason[0] ? "; " : "",
		               s->body_partial ? "body partially signed (l=)" : "");
		ar_comment(&w, why);
		ar_prop(&w, "header.d", s->domain);
		ar_prop(&w, "header.s", s->selector);
		ar_prop(&w, "header.b", s->b_prefix);
	}
	if (dmarc != NULL) {
		ar_method(&w, "dmarc", dmarc_result_name(dmarc->result));
		char c[sizeof dmarc->reason + 64];
		(void)snprintf(c, sizeof c, "p=%s dis=%s%s%.*s", dmarc_policy_name(dmarc->policy),
		               dmarc_policy_name(dmarc->applied),
		               dmarc->result != DMARC_PASS && dmarc->reason[0] ? "; " : "",
		               (int)sizeof dmarc->reason,
		               dmarc->result != DMARC_PASS ? dmarc->reason : "");
		ar_comment(&w, c);
		ar_prop(&w, "header.from", dmarc->from_domain);
	}
	(void)buf_append_str(out, "\r\n");
}

/* ---- strip ---- */

/* ar_skip_cfws - skips whitespace, line breaks and (nested) comments from v[*i]. */
static void
ar_skip_cfws(const unsigned char *v, size_t len, size_t *i)
{
	unsigned depth = 0;
	while (*i < len) {
		unsigned char c = v[*i];
		if (depth > 0 && c == '\\' && *i + 1 < len) {
			*i += 2;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n')
			return;
		(*i)++;
	}
}

/* ar_is_ours - the authserv-id of an Authentication-Results value (token or quoted-string) is
 * id, ignoring case. */
static bool
ar_is_ours(const unsigned char *v, size_t len, const char *id)
{
	size_t i = 0, idlen = strlen(id), o = 0;
	ar_skip_cfws(v, len, &i);
	if (i < len && v[i] == '"') {
		for (i++; i < len && v[i] != '"'; i++) {
			if (v[i] == '\\' && i + 1 < len)
				i++;
			else if (v[i] == '\r' || v[i] == '\n')
				continue;
			if (o >= idlen || tolower(v[i]) != tolower((unsigned char)id[o]))
				return false;
			o++;
		}
		return i < len && o == idlen;
	}
	size_t start = i;
	while (i < len && ar_is_token_char(v[i]))
		i++;
	return i - start == idlen && idlen > 0 &&
	       strncasecmp((const char *)&v[start], id, idlen) == 0;
}

/* ar_line_end - the index after the line starting at i (its LF included, or len). */
static size_t
ar_line_end(const unsigned char *msg, size_t len, size_t i)
{
	const unsigned char *nl = memchr(msg + i, '\n', len - i);
	return nl != NULL ? (size_t)(nl - msg) + 1 : len;
}

size_t
authres_strip(const unsigned char *msg, size_t len, const char *authserv_id, struct buf *out)
{
	static const char name[] = "Authentication-Results";
	size_t i = 0, removed = 0;
	if (authserv_id == NULL)
		authserv_id = "";
	while (i < len) {
		/* the blank line: the body follows untouched */
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
			break;
		size_t end = ar_line_end(msg, len, i);
		while (end < len && (msg[end] == ' ' || msg[end] == '\t'))
			end = ar_line_end(msg, len, end);
		size_t nlen = sizeof name - 1, k = i + nlen;
		bool match = false;
		if (end - i > nlen && strncasecmp((const char *)msg + i, name, nlen) == 0) {
			while (k < end && (msg[k] == ' ' || msg[k] == '\t'))
				k++;
			if (k < end && msg[k] == ':')
				match = ar_is_ours(msg + k + 1, end - k - 1, authserv_id);
		}
		if (match)
			removed++;
		else
			(void)buf_append(out, msg + i, end - i);
		i = end;
	}
	if (i < len)
		(void)buf_append(out, msg + i, len - i);
	return removed;
}
