/* Parsing bounces and complaints that come back (see dsn.h, "parsing reports that come back").
 * GMime finds the MIME parts and undoes the transfer encodings; the fields of the
 * message/delivery-status (RFC 3464 §2) and message/feedback-report (RFC 5965 §3.1) parts are
 * read here: groups separated by blank lines, header-style fields with folding, each value cut
 * at DSN_FIELD_MAX bytes. Without such a part, the first text/plain part is searched for the
 * common plain-text phrasings (Exim, Postfix, qmail, sendmail): an address opening a line and an
 * SMTP reply code or enhanced status code (RFC 3463) after it.
 *
 * Work is bounded: DSN_PARSE_MAX_PARTS parts are looked at, MIME_DEPTH_MAX nesting, every scan is
 * linear in the decoded part. */
#include "mail/dsn.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"

/* RFC 5322 §2.1.1: a line is at most 998 bytes; longer field values are cut. */
#define DSN_FIELD_MAX 998
/* Decoded bytes of one part that are looked at (far above real reports). */
#define DSN_PART_MAX (4u * 1024u * 1024u)

/* copies p[0, n) into dst (size cap) as a C string: NUL and line breaks become spaces, runs of
 * whitespace one space, leading and trailing whitespace dropped; cut at cap - 1 bytes without
 * splitting a UTF-8 sequence. */
static void
copy_clean(char *dst, size_t cap, const char *p, size_t n)
{
	size_t o = 0;
	bool sp = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == 0 || c == '\r' || c == '\n' || c == '\t' || c == ' ') {
			sp = o > 0;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			c = '?';
		if (o + (sp ? 2 : 1) >= cap)
			break;
		if (sp)
			dst[o++] = ' ';
		sp = false;
		dst[o++] = (char)c;
	}
	if (o > 0 && o + 1 >= cap) { /* may have cut inside a UTF-8 sequence: drop its start */
		size_t k = o;
		while (k > 0 && ((unsigned char)dst[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)dst[k - 1] & 0xc0) == 0xc0) {
			size_t need = ((unsigned char)dst[k - 1] & 0xe0) == 0xc0   ? 2
			              : ((unsigned char)dst[k - 1] & 0xf0) == 0xe0 ? 3
			                                                           : 4;
			if (o - (k - 1) < need)
				o = k - 1;
		}
	}
	dst[o] = '\0';
}

/* "type; value" -> value (RFC 3464 §2.1.2: address-type, diagnostic-type, mta-name-type). */
static void
strip_type(const char **p, size_t *n)
{
	const char *semi = memchr(*p, ';', *n);
	if (semi == NULL)
		return;
	for (const char *q = *p; q < semi; q++)
		if (!(q[0] == '-' || q[0] == ' ' || q[0] == '\t' || (q[0] >= '0' && q[0] <= '9') ||
		      ((q[0] | 0x20) >= 'a' && (q[0] | 0x20) <= 'z')))
			return;
	*n -= (size_t)(semi + 1 - *p);
	*p = semi + 1;
}

static void
trim(const char **p, size_t *n)
{
	while (*n > 0 && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
		(*n)--;
}

/* An address value: type prefix, whitespace and one pair of angle brackets removed. */
static void
copy_addr(char *dst, size_t cap, const char *p, size_t n, bool typed)
{
	if (typed)
		strip_type(&p, &n);
	trim(&p, &n);
	if (n >= 2 && p[0] == '<') {
		const char *gt = memchr(p, '>', n);
		if (gt != NULL) {
			n = (size_t)(gt - p) - 1;
			p++;
		}
	}
	trim(&p, &n);
	copy_clean(dst, cap, p, n);
}

/* ---- SMTP codes (RFC 5321 §4.2) and enhanced status codes (RFC 3463 §2) ---- */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A reply code "[245]dd" at p[i] standing alone: after start/space/'(', before end/space/'-'. */
static bool
code_at(const char *p, size_t n, size_t i)
{
	if (i + 3 > n || p[i] < '2' || p[i] > '5' || p[i] == '3' || !is_digit(p[i + 1]) ||
	    !is_digit(p[i + 2]))
		return false;
	if (i > 0 && !(p[i - 1] == ' ' || p[i - 1] == '\t' || p[i - 1] == '(' || p[i - 1] == '"'))
		return false;
	return i + 3 == n || p[i + 3] == ' ' || p[i + 3] == '-' || p[i + 3] == '\t' ||
	       p[i + 3] == '\r' || p[i + 3] == '\n';
}

/* An enhanced status "[245].d{1,3}.d{1,3}" at p[i]; its length, or 0. */
static size_t
status_at(const char *p, size_t n, size_t i)
{
	if (i + 5 > n || !(p[i] == '2' || p[i] == '4' || p[i] == '5') || p[i + 1] != '.')
		return 0;
	if (i > 0 && (is_digit(p[i - 1]) || p[i - 1] == '.' || p[i - 1] == '-'))
		return 0;
	size_t j = i + 2, k = 0;
	while (j < n && is_digit(p[j]) && k < 4) {
		j++;
		k++;
	}
	if (k == 0 || k > 3 || j >= n || p[j] != '.')
		return 0;
	j++;
	k = 0;
	while (j < n && is_digit(p[j]) && k < 4) {
		j++;
		k++;
	}
	if (k == 0 || k > 3 || (j < n && (is_digit(p[j]) || p[j] == '.')))
		return 0;
	return j - i;
}

/* The first reply code in p[0, n): its index, or n. */
static size_t
find_code(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (code_at(p, n, i))
			return i;
	return n;
}

bool
dsn_parsed_is_hard(const struct dsn_parsed_rcpt *r)
{
	if (r->status[0] != '\0')
		return r->status[0] == '5';
	size_t n = strnlen(r->diagnostic, sizeof r->diagnostic);
	size_t i = find_code(r->diagnostic, n);
	return i < n && r->diagnostic[i] == '5';
}

/* ---- header-style field groups (RFC 3464 §2, RFC 5965 §3.1) ---- */

struct field {
	char name[64];
	char value[DSN_FIELD_MAX + 1];
	size_t len;
	bool cut;
};

/* Called per field (and with name NULL at the end of each group). */
typedef void field_fn(void *ctx, const char *name, const char *value, size_t len);

static void
field_emit(struct field *f, field_fn *fn, void *ctx)
{
	if (f->name[0] != '\0')
		fn(ctx, f->name, f->value, f->len);
	f->name[0] = '\0';
	f->len = 0;
}

static void
field_add(struct field *f, const char *p, size_t n)
{
	size_t room = DSN_FIELD_MAX - f->len;
	if (n > room)
		n = room;
	memcpy(f->value + f->len, p, n);
	f->len += n;
	f->value[f->len] = '\0';
}

static void
fields_scan(const char *p, size_t n, field_fn *fn, void *ctx)
{
	struct field f = {0};
	bool in_group = false;
	size_t pos = 0;
	while (pos < n) {
		const char *lf = memchr(p + pos, '\n', n - pos);
		size_t ls = pos, le = lf ? (size_t)(lf - p) : n;
		pos = lf ? le + 1 : n;
		if (le > ls && p[le - 1] == '\r')
			le--;
		size_t k = ls;
		while (k < le && (p[k] == ' ' || p[k] == '\t'))
			k++;
		if (k == le) { /* blank line: end of a group */
			field_emit(&f, fn, ctx);
			if (in_group)
				fn(ctx, NULL, NULL, 0);
			in_group = false;
			continue;
		}
		if (k > ls) { /* a fold (RFC 5322 §2.2.3) */
			if (f.name[0] != '\0')
				field_add(&f, p + ls, le - ls);
			continue;
		}
		field_emit(&f, fn, ctx);
		const char *colon = memchr(p + ls, ':', le - ls);
		if (colon == NULL)
			continue;
		size_t nl = (size_t)(colon - (p + ls));
		while (nl > 0 && (p[ls + nl - 1] == ' ' || p[ls + nl - 1] == '\t'))
			nl--;
		if (nl == 0 || nl >= sizeof f.name)
			continue;
		memcpy(f.name, p + ls, nl);
		f.name[nl] = '\0';
		size_t vs = (size_t)(colon - p) + 1;
		field_add(&f, p + vs, le - vs);
		in_group = true;
	}
	field_emit(&f, fn, ctx);
	if (in_group)
		fn(ctx, NULL, NULL, 0);
}

/* ---- RFC 3464 delivery-status ---- */

struct ds_ctx {
	struct dsn_parsed *out;
	struct dsn_parsed_rcpt *cur; /* recipient of the current group, or NULL */
	bool cur_has_final, cur_has_orig;
};

static struct dsn_parsed_rcpt *
rcpt_new(struct dsn_parsed *out)
{
	if (out->n_rcpts >= DSN_PARSE_MAX_RCPTS)
		return NULL;
	struct dsn_parsed_rcpt *r = &out->rcpts[out->n_rcpts++];
	memset(r, 0, sizeof *r);
	return r;
}

static void
ds_field(void *vctx, const char *name, const char *v, size_t n)
{
	struct ds_ctx *c = vctx;
	if (name == NULL) { /* end of group */
		c->cur = NULL;
		c->cur_has_final = c->cur_has_orig = false;
		return;
	}
	if (strcasecmp(name, "Reporting-MTA") == 0) {
		if (c->out->reporting_mta[0] == '\0') {
			strip_type(&v, &n);
			copy_clean(c->out->reporting_mta, sizeof c->out->reporting_mta, v, n);
		}
		return;
	}
	bool is_final = strcasecmp(name, "Final-Recipient") == 0;
	bool is_orig = strcasecmp(name, "Original-Recipient") == 0;
	/* a second recipient field in one group: the blank line was left out, start a new one */
	if ((is_final && c->cur_has_final) || (is_orig && c->cur_has_orig) ||
	    ((is_final || is_orig) && c->cur == NULL)) {
		c->cur = rcpt_new(c->out);
		c->cur_has_final = c->cur_has_orig = false;
	}
	struct dsn_parsed_rcpt *r = c->cur;
	if (r == NULL)
		return;
	if (is_final) {
		copy_addr(r->address, sizeof r->address, v, n, true);
		c->cur_has_final = true;
	} else if (is_orig) {
		copy_addr(r->orig_address, sizeof r->orig_address, v, n, true);
		c->cur_has_orig = true;
	} else if (strcasecmp(name, "Action") == 0) {
		trim(&v, &n);
		size_t k = 0;
		while (k < n && k + 1 < sizeof r->action && v[k] != ' ' && v[k] != '\t' &&
		       v[k] != '(') {
			char ch = v[k];
			r->action[k++] = (char)(ch >= 'A' && ch <= 'Z' ? ch | 0x20 : ch);
		}
		r->action[k] = '\0';
	} else if (strcasecmp(name, "Status") == 0) {
		trim(&v, &n);
		size_t k = 0;
		while (k < n && (is_digit(v[k]) || v[k] == '.'))
			k++;
		copy_clean(r->status, sizeof r->status, v, k < sizeof r->status ? k : 0);
	} else if (strcasecmp(name, "Diagnostic-Code") == 0) {
		strip_type(&v, &n);
		copy_clean(r->diagnostic, sizeof r->diagnostic, v, n);
	} else if (strcasecmp(name, "Remote-MTA") == 0) {
		strip_type(&v, &n);
		copy_clean(r->remote_mta, sizeof r->remote_mta, v, n);
	}
}

/* Only the header fields Final-Recipient/Original-Recipient start a recipient; a group of other
 * fields (the per-message group) never does. After the scan, recipients without any address are
 * dropped. */
static void
ds_parse(const char *p, size_t n, struct dsn_parsed *out)
{
	struct ds_ctx c = {.out = out};
	fields_scan(p, n, ds_field, &c);
	size_t k = 0;
	for (size_t i = 0; i < out->n_rcpts; i++) {
		struct dsn_parsed_rcpt *r = &out->rcpts[i];
		if (r->address[0] == '\0' && r->orig_address[0] != '\0')
			memcpy(r->address, r->orig_address, sizeof r->address);
		if (r->address[0] == '\0')
			continue;
		if (k != i)
			out->rcpts[k] = *r;
		k++;
	}
	out->n_rcpts = k;
}

/* ---- RFC 5965 feedback-report ---- */

static void
arf_field(void *vctx, const char *name, const char *v, size_t n)
{
	struct dsn_parsed *out = vctx;
	if (name == NULL)
		return;
	if (strcasecmp(name, "Feedback-Type") == 0) {
		if (out->feedback_type[0] == '\0')
			copy_clean(out->feedback_type, sizeof out->feedback_type, v, n);
	} else if (strcasecmp(name, "Original-Rcpt-To") == 0) {
		struct dsn_parsed_rcpt *r = rcpt_new(out);
		if (r != NULL) {
			copy_addr(r->address, sizeof r->address, v, n, false);
			if (r->address[0] == '\0')
				out->n_rcpts--;
		}
	} else if (strcasecmp(name, "Original-Mail-From") == 0) {
		if (out->original_mail_from[0] == '\0')
			copy_addr(out->original_mail_from, sizeof out->original_mail_from, v, n,
			          false);
	} else if (strcasecmp(name, "Reporting-MTA") == 0) {
		if (out->reporting_mta[0] == '\0') {
			strip_type(&v, &n);
			copy_clean(out->reporting_mta, sizeof out->reporting_mta, v, n);
		}
	}
}

/* ---- the returned message's header ---- */

struct hdr_ctx {
	struct dsn_parsed *out;
	bool done;    /* past the first group: the header section ended */
	char to[256]; /* the first To: address, for ARF reports without Original-Rcpt-To */
};

static void
hdr_field(void *vctx, const char *name, const char *v, size_t n)
{
	struct hdr_ctx *c = vctx;
	if (name == NULL) {
		c->done = true;
		return;
	}
	if (c->done)
		return;
	if (strcasecmp(name, "Message-ID") == 0 && c->out->original_message_id[0] == '\0') {
		copy_addr(c->out->original_message_id, sizeof c->out->original_message_id, v, n,
		          false);
	} else if (strcasecmp(name, "To") == 0 && c->to[0] == '\0') {
		const char *lt = memchr(v, '<', n);
		if (lt != NULL) {
			n -= (size_t)(lt - v);
			v = lt;
		}
		const char *end = memchr(v, ',', n);
		copy_addr(c->to, sizeof c->to, v, end ? (size_t)(end - v) : n, false);
	}
}

/* ---- plain-text bounces ---- */

static bool
is_addr_char(char c)
{
	unsigned char u = (unsigned char)c;
	return u >= 0x80 || is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
	       (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* An address opening line p[0, n) (after whitespace and an optional '<'): its bounds and where
 * the rest of the line starts. The address has one '@', a local part and a dotted domain, and
 * is followed by end of line, '>', ':', whitespace or '.'. */
static bool
leading_addr(const char *p, size_t n, size_t *as, size_t *ae, size_t *rest)
{
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i < n && p[i] == '<')
		i++;
	size_t s = i, at = 0;
	bool dot = false;
	while (i < n && (is_addr_char(p[i]) || p[i] == '@')) {
		if (p[i] == '@') {
			if (at != 0)
				return false;
			at = i;
		} else if (at != 0 && p[i] == '.') {
			dot = true;
		}
		i++;
	}
	while (i > s && p[i - 1] == '.') /* a sentence's full stop */
		i--;
	if (at <= s || at + 1 >= i || !dot || p[i - 1] == '.')
		return false;
	size_t j = i;
	if (j < n && p[j] == '.')
		j++;
	if (j < n && p[j] == '>')
		j++;
	if (j < n && p[j] == ':')
		j++;
	if (j < n && !(p[j] == ' ' || p[j] == '\t' || p[j] == '\r'))
		return false;
	*as = s;
	*ae = i;
	*rest = j;
	return true;
}

/* An address anywhere in p[0, n) in angle brackets, as in "550 5.1.1 <user@example.com>:". */
static bool
bracket_addr(const char *p, size_t n, size_t *as, size_t *ae)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '<')
			continue;
		const char *gt = memchr(p + i, '>', n - i);
		if (gt == NULL)
			return false;
		size_t e = (size_t)(gt - p), r;
		size_t s2, e2;
		if (leading_addr(p + i, e - i + 1, &s2, &e2, &r)) {
			*as = i + s2;
			*ae = i + e2;
			return true;
		}
	}
	return false;
}

/* Lines after which the rest is the returned message, not the report. */
static const char *const copy_markers[] = {
    "copy of the message",    "copy of message",     "original message follows", "returned message",
    "----- original message", "undelivered message", "message headers follow",
};

/* Phrases that tell a failure when no code is given. */
static const char *const fail_phrases[] = {
    "user unknown",      "unknown user",     "does not exist", "no such user",
    "no such address",   "unrouteable",      "unroutable",     "mailbox unavailable",
    "mailbox not found", "address rejected", "not found",      "invalid recipient",
    "permanent",         "failed",
};

static bool
has_ci(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	for (size_t i = 0; i + l <= n; i++)
		if (strncasecmp(p + i, lit, l) == 0)
			return true;
	return false;
}

struct heur {
	struct dsn_parsed *out;
	struct dsn_parsed_rcpt *cur;
	char diag[512]; /* block text gathered for cur */
	size_t dlen;
	size_t indent; /* of the line that opened cur */
};

static void
heur_add_text(struct heur *h, const char *p, size_t n)
{
	trim(&p, &n);
	if (n == 0)
		return;
	if (h->dlen > 0 && h->dlen + 1 < sizeof h->diag)
		h->diag[h->dlen++] = ' ';
	size_t room = sizeof h->diag - 1 - h->dlen;
	if (n > room)
		n = room;
	memcpy(h->diag + h->dlen, p, n);
	h->dlen += n;
	h->diag[h->dlen] = '\0';
}

/* Ends the block of the current recipient: status, action and diagnostic from its text; a
 * recipient with neither a code nor a failure phrase is dropped. */
static void
heur_close(struct heur *h)
{
	struct dsn_parsed_rcpt *r = h->cur;
	if (r == NULL)
		return;
	h->cur = NULL;
	const char *d = h->diag;
	size_t n = h->dlen, ci = find_code(d, n), si = n, sl = 0;
	for (size_t i = 0; i < n && sl == 0; i++)
		if ((sl = status_at(d, n, i)) != 0)
			si = i;
	bool phrase = false;
	for (size_t i = 0; i < sizeof fail_phrases / sizeof fail_phrases[0] && !phrase; i++)
		phrase = has_ci(d, n, fail_phrases[i]);
	if (ci == n && sl == 0 && !phrase) {
		h->out->n_rcpts--;
		return;
	}
	if (sl != 0)
		copy_clean(r->status, sizeof r->status, d + si, sl);
	size_t from = ci < si ? ci : si;
	if (from == n)
		from = 0;
	copy_clean(r->diagnostic, sizeof r->diagnostic, d + from, n - from);
	char cls = sl != 0 ? d[si] : ci < n ? d[ci] : '5';
	snprintf(r->action, sizeof r->action, "%s",
	         cls == '5'   ? "failed"
	         : cls == '4' ? "delayed"
	                      : "delivered");
}

static void
heur_open(struct heur *h, const char *a, size_t an)
{
	heur_close(h);
	char addr[256];
	copy_clean(addr, sizeof addr, a, an);
	for (size_t i = 0; i < h->out->n_rcpts; i++)
		if (strcasecmp(h->out->rcpts[i].address, addr) == 0)
			return; /* already reported (an address repeated in a diagnostic) */
	struct dsn_parsed_rcpt *r = rcpt_new(h->out);
	if (r == NULL)
		return;
	memcpy(r->address, addr, sizeof addr);
	h->cur = r;
	h->dlen = 0;
	h->diag[0] = '\0';
}

static void
heur_parse(const char *p, size_t n, struct dsn_parsed *out)
{
	struct heur h = {.out = out};
	size_t pos = 0;
	while (pos < n) {
		const char *lf = memchr(p + pos, '\n', n - pos);
		size_t ls = pos, le = lf ? (size_t)(lf - p) : n;
		pos = lf ? le + 1 : n;
		if (le > ls && p[le - 1] == '\r')
			le--;
		const char *l = p + ls;
		size_t ln = le - ls, as, ae, rest;
		bool stop = false;
		for (size_t i = 0; i < sizeof copy_markers / sizeof copy_markers[0] && !stop; i++)
			stop = has_ci(l, ln, copy_markers[i]);
		if (stop)
			break;
		size_t k = 0;
		while (k < ln && (l[k] == ' ' || l[k] == '\t'))
			k++;
		if (k == ln) { /* a blank line ends a qmail/Postfix paragraph, not an Exim block */
			continue;
		}
		/* a line indented deeper than the open recipient's continues its block */
		bool cont = h.cur != NULL && k > h.indent;
		if (!cont && leading_addr(l, ln, &as, &ae, &rest)) {
			heur_open(&h, l + as, ae - as);
			h.indent = k;
			if (h.cur != NULL)
				heur_add_text(&h, l + rest, ln - rest);
			continue;
		}
		if (h.cur == NULL &&
		    (find_code(l + k, ln - k) == 0 || status_at(l + k, ln - k, 0)) &&
		    bracket_addr(l, ln, &as, &ae)) {
			/* "550 5.1.1 <user@example.com>: Recipient address rejected" */
			heur_open(&h, l + as, ae - as);
			if (h.cur != NULL)
				heur_add_text(&h, l + k, ln - k);
			heur_close(&h);
			continue;
		}
		if (h.cur != NULL) {
			if (k == 0 && h.dlen > 0 && find_code(h.diag, h.dlen) < h.dlen &&
			    find_code(l, ln) == ln) {
				heur_close(&h); /* unindented prose after a complete block */
				continue;
			}
			heur_add_text(&h, l, ln);
		}
	}
	heur_close(&h);
}

/* ---- walking the MIME tree ---- */

struct walk {
	struct dsn_parsed *out;
	size_t parts;
	GByteArray *ds, *fb, *hdr, *text; /* decoded contents of the first of each kind */
};

static GByteArray *
part_bytes(GMimeObject *o)
{
	GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(o));
	if (w == NULL)
		return NULL;
	GMimeStream *ms = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, ms);
	GByteArray *a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(ms), FALSE);
	g_object_unref(ms);
	if (a != NULL && a->len > DSN_PART_MAX)
		g_byte_array_set_size(a, DSN_PART_MAX);
	return a;
}

static GByteArray *
object_header_bytes(GMimeObject *o)
{
	char *h = g_mime_object_get_headers(o, NULL);
	if (h == NULL)
		return NULL;
	GByteArray *a = g_byte_array_new();
	size_t n = strlen(h);
	g_byte_array_append(a, (const guint8 *)h, (guint)(n < DSN_PART_MAX ? n : DSN_PART_MAX));
	g_free(h);
	return a;
}

static void
walk(struct walk *w, GMimeObject *o, unsigned depth, bool inside_returned)
{
	if (o == NULL || depth > MIME_DEPTH_MAX || w->parts >= DSN_PARSE_MAX_PARTS)
		return;
	w->parts++;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n && w->parts < DSN_PARSE_MAX_PARTS; i++)
			walk(w, g_mime_multipart_get_part(mp, i), depth + 1, inside_returned);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(o)) { /* the returned message (message/rfc822) */
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		if (m != NULL && w->hdr == NULL && !inside_returned)
			w->hdr = object_header_bytes(GMIME_OBJECT(m));
		return; /* its own parts are not the report's */
	}
	if (!GMIME_IS_PART(o) || inside_returned)
		return;
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	if (ct == NULL)
		return;
	GByteArray **slot = NULL;
	if (g_mime_content_type_is_type(ct, "message", "delivery-status") ||
	    g_mime_content_type_is_type(ct, "message", "global-delivery-status"))
		slot = &w->ds;
	else if (g_mime_content_type_is_type(ct, "message", "feedback-report"))
		slot = &w->fb;
	else if (g_mime_content_type_is_type(ct, "text", "rfc822-headers") ||
	         g_mime_content_type_is_type(ct, "message", "global-headers"))
		slot = &w->hdr;
	else if (g_mime_content_type_is_type(ct, "text", "plain"))
		slot = &w->text;
	if (slot != NULL && *slot == NULL)
		*slot = part_bytes(o);
}

static void
free_bytes(GByteArray *a)
{
	if (a != NULL)
		g_byte_array_free(a, TRUE);
}

void
dsn_parse(const unsigned char *msg, size_t len, struct dsn_parsed *out)
{
	memset(out, 0, sizeof *out);
	if (msg == NULL || len == 0)
		return;
	struct walk w = {.out = out};
	if (mime_init()) {
		GMimeStream *st = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
		GMimeParser *ps = g_mime_parser_new_with_stream(st);
		GMimeMessage *m = g_mime_parser_construct_message(ps, NULL);
		if (m != NULL)
			walk(&w, g_mime_message_get_mime_part(m), 0, false);
		if (m != NULL)
			g_object_unref(m);
		g_object_unref(ps);
		g_object_unref(st);
	}
	if (w.ds != NULL) {
		out->kind = DSN_PARSE_DSN;
		ds_parse((const char *)w.ds->data, w.ds->len, out);
	} else if (w.fb != NULL) {
		out->kind = DSN_PARSE_ARF;
		fields_scan((const char *)w.fb->data, w.fb->len, arf_field, out);
	}
	if (w.hdr != NULL) {
		struct hdr_ctx hc = {.out = out};
		fields_scan((const char *)w.hdr->data, w.hdr->len, hdr_field, &hc);
		if (out->kind == DSN_PARSE_ARF && out->n_rcpts == 0 && hc.to[0] != '\0') {
			struct dsn_parsed_rcpt *r = rcpt_new(out);
			memcpy(r->address, hc.to, sizeof hc.to);
		}
	}
	if (out->kind == DSN_PARSE_NONE) {
		if (w.text != NULL)
			heur_parse((const char *)w.text->data, w.text->len, out);
		else if (w.parts == 0) /* not even a message to GMime: read the bytes as text */
			heur_parse((const char *)msg, len < DSN_PART_MAX ? len : DSN_PART_MAX, out);
		if (out->n_rcpts > 0)
			out->kind = DSN_PARSE_HEURISTIC;
	}
	free_bytes(w.ds);
	free_bytes(w.fb);
	free_bytes(w.hdr);
	free_bytes(w.text);
}
