/* ENVELOPE (RFC 9051 §7.5.2) of a message header: Date, Subject, In-Reply-To and Message-ID as
 * strings (the last occurrence of each, as Dovecot) and the six address fields parsed as RFC 5322
 * §3.4 address lists, groups and obsolete routes included, with Dovecot 2.3's answers for broken
 * input (MISSING_MAILBOX, MISSING_DOMAIN, SYNTAX_ERROR, "user words" as a display name). The
 * parsers are one pass over each field value; the scratch buffers live in struct wctx. */
#include <string.h>

#include "mail/mime_private.h"

static const char *const addr_fields[A_N] = {"From", "Sender", "Reply-To", "To", "Cc", "Bcc"};

/* phrase / obs-phrase (RFC 5322 §3.2.5, §4.1): words joined by one space, quoted strings
 * unquoted, '.' allowed, comments dropped. *any_r: at least one word. */
static size_t
parse_phrase(const unsigned char *s, size_t i, size_t e, struct buf *out, bool *any_r)
{
	*any_r = false;
	i = skip_lwsp(s, i, e);
	if (i >= e || s[i] == '.')
		return i;
	for (;;) {
		if (s[i] == '"') {
			size_t mark = out->len;
			bool closed;
			i = mime_parse_quoted(s, i, e, out, &closed);
			if (!closed) { /* unterminated: the phrase fails (as Dovecot) */
				out->len = mark;
				*any_r = false;
				return e;
			}
		} else if (is_atext(s[i]) || s[i] == '.') {
			size_t a = i;
			while (i < e && (is_atext(s[i]) || s[i] == '.'))
				i++;
			buf_append(out, s + a, i - a);
		} else {
			break;
		}
		*any_r = true;
		i = skip_lwsp(s, i, e);
		if (i >= e || !(is_atext(s[i]) || s[i] == '"' || s[i] == '.'))
			break;
		buf_append_byte(out, ' ');
	}
	return i;
}

/* dot-atom / obs-local-part / obs-domain: words separated by '.', CFWS around them dropped. */
static size_t
parse_dotwords(const unsigned char *s, size_t i, size_t e, struct buf *out, bool *quoted_r,
               size_t *cs, size_t *ce)
{
	while (i < e) {
		if (quoted_r != NULL && s[i] == '"') {
			size_t mark = out->len;
			bool closed;
			i = mime_parse_quoted(s, i, e, out, &closed);
			if (!closed) { /* unterminated: nothing usable (as Dovecot) */
				out->len = mark;
				return e;
			}
			*quoted_r = true;
		} else if (is_atext(s[i])) {
			size_t a = i;
			while (i < e && is_atext(s[i]))
				i++;
			buf_append(out, s + a, i - a);
		} else if (quoted_r == NULL && s[i] == '[') {
			size_t a = i;
			while (i < e && s[i] != ']')
				i++;
			if (i < e)
				i++;
			buf_append(out, s + a, i - a);
		} else {
			break;
		}
		i = mime_skip_cfws(s, i, e, cs, ce);
		if (i >= e || s[i] != '.')
			break;
		buf_append_byte(out, '.');
		i = mime_skip_cfws(s, i + 1, e, cs, ce);
	}
	return i;
}

/* addr-spec: local-part ["@" domain]; comments after it are reported through cs/ce. */
static size_t
parse_addr_spec(struct wctx *w, const unsigned char *s, size_t i, size_t e, bool *quoted_r,
                bool *domain_r, size_t *cs, size_t *ce)
{
	i = skip_lwsp(s, i, e);
	i = parse_dotwords(s, i, e, &w->mbox, quoted_r, cs, ce);
	i = mime_skip_cfws(s, i, e, cs, ce);
	if (i < e && s[i] == '@') {
		*domain_r = true;
		i = mime_skip_cfws(s, i + 1, e, cs, ce);
		i = parse_dotwords(s, i, e, &w->host, NULL, cs, ce);
		i = mime_skip_cfws(s, i, e, cs, ce);
	}
	return i;
}

static void
emit_address(struct buf *out, const struct buf *name, bool have_name, const struct buf *adl,
             const struct buf *mbox, const struct buf *host, bool have_domain, bool bad)
{
	buf_append_byte(out, '(');
	if (have_name)
		mime_out_human(out, name->data, name->len);
	else
		buf_append_str(out, "NIL");
	buf_append_byte(out, ' ');
	if (adl->len > 0)
		mime_out_string(out, adl->data, adl->len);
	else
		buf_append_str(out, "NIL");
	buf_append_byte(out, ' ');
	if (mbox->len > 0)
		mime_out_string(out, mbox->data, mbox->len);
	else
		buf_append_str(out, "\"MISSING_MAILBOX\""); /* as Dovecot fills missing parts */
	buf_append_byte(out, ' ');
	if (bad) /* an unterminated <...>: Dovecot's marker */
		buf_append_str(out, "\"SYNTAX_ERROR\"");
	else if (have_domain && host->len > 0)
		mime_out_string(out, host->data, host->len);
	else
		buf_append_str(out, "\"MISSING_DOMAIN\"");
	buf_append_byte(out, ')');
}

/* mailbox = name-addr / addr-spec (RFC 5322 §3.4, obs-angle-addr with a route). */
static size_t
parse_mailbox(struct wctx *w, const unsigned char *s, size_t i, size_t e, struct buf *out,
              size_t *count)
{
	buf_reset(&w->name);
	buf_reset(&w->adl);
	buf_reset(&w->mbox);
	buf_reset(&w->host);
	bool any, quoted = false, domain = false, have_name, bad = false;
	size_t cs = SIZE_MAX, ce = 0;
	size_t j = parse_phrase(s, i, e, &w->name, &any);
	j = skip_lwsp(s, j, e);
	if (j < e && s[j] == '<') {
		have_name = any && w->name.len > 0;
		j = skip_lwsp(s, j + 1, e);
		while (j < e && s[j] == '@') {
			buf_append_byte(&w->adl, '@');
			j = skip_lwsp(s, j + 1, e);
			j = parse_dotwords(s, j, e, &w->adl, NULL, NULL, NULL);
			j = skip_lwsp(s, j, e);
			if (j < e && s[j] == ',') {
				buf_append_byte(&w->adl, ',');
				j = skip_lwsp(s, j + 1, e);
				continue;
			}
			if (j < e && s[j] == ':')
				j++;
			break;
		}
		j = parse_addr_spec(w, s, j, e, &quoted, &domain, NULL, NULL);
		if (j < e && s[j] == '>')
			j = skip_lwsp(s, j + 1, e);
		else
			bad = true;
	} else {
		buf_reset(&w->name);
		j = parse_addr_spec(w, s, i, e, &quoted, &domain, &cs, &ce);
		have_name = false;
		size_t after;
		bool more = false;
		if (!quoted && !domain && w->mbox.len > 0) { /* "user words": all a display name */
			buf_append(&w->name, w->mbox.data, w->mbox.len);
			buf_append_byte(&w->name, ' ');
			after = parse_phrase(s, j, e, &w->name, &more);
			if (more) {
				j = after;
				buf_reset(&w->mbox);
				have_name = true;
			} else {
				buf_reset(&w->name);
			}
		}
		if (more) {
			/* done above */
		} else if (quoted && !domain) { /* "only a name": a display name, no address */
			buf_append(&w->name, w->mbox.data, w->mbox.len);
			buf_reset(&w->mbox);
			have_name = true;
		} else if (cs != SIZE_MAX) { /* addr@host (Name): the comment, unescaped */
			for (size_t k = cs; k < ce; k++) {
				if (s[k] == '\\' && k + 1 < ce)
					k++;
				buf_append_byte(&w->name, s[k]);
			}
			have_name = true;
		}
	}
	emit_address(out, &w->name, have_name, &w->adl, &w->mbox, &w->host, domain, bad);
	(*count)++;
	return j;
}

/* address-list with groups (RFC 5322 §3.4): a group is (NIL NIL "name" NIL) ... (NIL NIL NIL
 * NIL) (RFC 9051 §7.5.2). */
static void
parse_addr_list(struct wctx *w, const unsigned char *s, size_t e, struct buf *out, size_t *count)
{
	size_t i = 0;
	for (;;) {
		i = skip_lwsp(s, i, e);
		if (i >= e)
			break;
		size_t start = i;
		bool any;
		buf_reset(&w->name);
		size_t j = parse_phrase(s, i, e, &w->name, &any);
		if (any && j < e && s[j] == ':') {
			buf_append_str(out, "(NIL NIL ");
			mime_out_string(out, w->name.data, w->name.len);
			buf_append_str(out, " NIL)");
			(*count)++;
			j++;
			for (;;) {
				j = skip_lwsp(s, j, e);
				if (j >= e)
					break;
				if (s[j] == ';') {
					j++;
					break;
				}
				if (s[j] == ',') {
					j++;
					continue;
				}
				size_t k = parse_mailbox(w, s, j, e, out, count);
				k = skip_lwsp(s, k, e);
				if (k < e && s[k] == ',') {
					k++;
				} else if (k < e && s[k] != ';') {
					j = e; /* junk: stop */
					break;
				}
				j = k;
			}
			buf_append_str(out, "(NIL NIL NIL NIL)");
			(*count)++;
			i = j;
		} else {
			i = parse_mailbox(w, s, start, e, out, count);
		}
		i = skip_lwsp(s, i, e);
		if (i < e && s[i] != ',')
			break; /* junk: Dovecot stops at an invalid address */
		i++;
	}
}

void
mime_write_envelope(struct wctx *w, const struct node *nd, struct buf *out)
{
	enum { S_DATE, S_SUBJECT, S_IRT, S_MSGID, S_N };
	static const char *const str_fields[S_N] = {"Date", "Subject", "In-Reply-To", "Message-ID"};
	const unsigned char *m = w->p->m;
	size_t soff[S_N] = {0}, slen[S_N] = {0};
	bool shas[S_N] = {false};
	for (int a = 0; a < A_N; a++) {
		buf_reset(&w->addr[a]);
		w->naddr[a] = 0;
	}
	size_t fp = nd->hdr_start, voff, vlen;
	struct slice name;
	while (mime_field_next(m, nd->hdr_end, &fp, &name, &voff, &vlen)) {
		const unsigned char *np = (const unsigned char *)name.p;
		for (int f = 0; f < S_N; f++) {
			if (slice_ieq(np, name.len, str_fields[f])) { /* the last one (Dovecot) */
				shas[f] = true;
				soff[f] = voff;
				slen[f] = vlen;
			}
		}
		for (int a = 0; a < A_N; a++)
			if (slice_ieq(np, name.len, addr_fields[a]))
				parse_addr_list(w, m + voff, vlen, &w->addr[a], &w->naddr[a]);
	}
	buf_append_byte(out, '(');
	for (int k = 0; k < 10; k++) {
		if (k > 0)
			buf_append_byte(out, ' ');
		int sf = k == 0   ? S_DATE
		         : k == 1 ? S_SUBJECT
		         : k == 8 ? S_IRT
		         : k == 9 ? S_MSGID
		                  : -1;
		if (sf >= 0) {
			if (!shas[sf]) {
				buf_append_str(out, "NIL");
				continue;
			}
			size_t o = soff[sf], l = slen[sf];
			trim_value(m, &o, &l);
			if (sf == S_SUBJECT)
				mime_out_human(out, m + o, l);
			else
				mime_out_string(out, m + o, l);
			continue;
		}
		int a = k - 2; /* from sender reply-to to cc bcc */
		if ((a == A_SENDER || a == A_REPLY_TO) && w->naddr[a] == 0)
			a = A_FROM;
		if (w->naddr[a] == 0) {
			buf_append_str(out, "NIL");
		} else {
			buf_append_byte(out, '(');
			buf_append(out, w->addr[a].data, w->addr[a].len);
			buf_append_byte(out, ')');
		}
	}
	buf_append_byte(out, ')');
}

void
mime_wctx_init(struct wctx *w, struct mp *p)
{
	memset(w, 0, sizeof *w);
	w->p = p;
	buf_init(&w->name, 0);
	buf_init(&w->adl, 0);
	buf_init(&w->mbox, 0);
	buf_init(&w->host, 0);
	for (int a = 0; a < A_N; a++)
		buf_init(&w->addr[a], 0);
}

void
mime_wctx_deinit(struct wctx *w)
{
	buf_deinit(&w->name);
	buf_deinit(&w->adl);
	buf_deinit(&w->mbox);
	buf_deinit(&w->host);
	for (int a = 0; a < A_N; a++)
		buf_deinit(&w->addr[a]);
}
