/* SMTP command-line framing and MAIL/RCPT/BDAT argument grammars; see cmd_parser.h. The line
 * parser keeps one bounded buffer per session and decides everything per byte, so feeding the
 * input whole or one byte at a time gives the same results. */
#include "cmd_parser.h"

#include <arpa/inet.h>
#include <string.h>

#include "mail/addr.h"
#include "util/buf.h"
#include "util/strconv.h"
#include "util/xalloc.h"

struct smtp_cmd_parser {
	struct smtp_cmd_limits lim;
	struct buf line;   /* the current line without its LF */
	bool have_line;    /* line holds a line returned by the last call */
	bool skipping;     /* after "line too long": drop bytes up to the next LF */
	bool auth;         /* AUTH continuation mode */
	bool bare_cr, nul; /* seen in the current line */
};

struct smtp_cmd_parser *
smtp_cmd_parser_new(const struct smtp_cmd_limits *limits)
{
	struct smtp_cmd_parser *p = xcalloc(1, sizeof *p);
	p->lim = *limits;
	if (p->lim.auth_line_max < p->lim.line_max)
		p->lim.auth_line_max = p->lim.line_max;
	buf_init(&p->line, p->lim.auth_line_max);
	return p;
}

void
smtp_cmd_parser_free(struct smtp_cmd_parser **pp)
{
	struct smtp_cmd_parser *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	buf_deinit(&p->line);
	free(p);
}

static void
line_clear(struct smtp_cmd_parser *p)
{
	buf_reset(&p->line);
	p->have_line = false;
	p->bare_cr = p->nul = false;
}

void
smtp_cmd_parser_reset(struct smtp_cmd_parser *p)
{
	line_clear(p);
	p->skipping = false;
}

void
smtp_cmd_parser_set_auth(struct smtp_cmd_parser *p, bool on)
{
	p->auth = on;
}

bool
smtp_cmd_parser_has_partial(const struct smtp_cmd_parser *p)
{
	return !p->have_line && (p->line.len > 0 || p->skipping);
}

/* The limit for the line being read. A line that starts with "AUTH " may be longer (RFC 4954 §4);
 * the first five bytes are always known before the short limit can be reached. */
static size_t
line_limit(const struct smtp_cmd_parser *p)
{
	if (p->auth)
		return p->lim.auth_line_max;
	if (p->line.len >= 5 && slice_has_prefix_nocase(buf_slice(&p->line), "AUTH "))
		return p->lim.auth_line_max;
	return p->lim.line_max;
}

static void
split_line(struct smtp_cmd_parser *p, struct smtp_cmd *cmd_r)
{
	struct slice line = {(const char *)p->line.data, p->line.len};
	if (line.p == NULL)
		line.p = "";
	struct slice verb, arg = slice_cut(line, ' ', &verb);
	cmd_r->line = line;
	cmd_r->verb = verb;
	cmd_r->arg = arg.p ? slice_trim(arg) : (struct slice){line.p + line.len, 0};
}

enum smtp_parse
smtp_cmd_parse(struct smtp_cmd_parser *p, const unsigned char *in, size_t len, size_t *used_r,
               struct smtp_cmd *cmd_r, const char **err_r)
{
	if (p->have_line)
		line_clear(p);
	size_t i = 0;
	while (i < len) {
		unsigned char c = in[i++];
		if (p->skipping) {
			if (c == '\n')
				p->skipping = false;
			continue;
		}
		if (c == '\n') {
			*used_r = i;
			p->have_line = true;
			size_t n = p->line.len;
			if (n == 0 || p->line.data[n - 1] != '\r') {
				*err_r = "bare LF";
				return SMTP_PARSE_ERROR;
			}
			p->line.len = n - 1;
			p->line.data[n - 1] = '\0';
			if (p->bare_cr || p->nul) {
				*err_r = p->bare_cr ? "bare CR" : "NUL";
				return SMTP_PARSE_ERROR;
			}
			split_line(p, cmd_r);
			return SMTP_PARSE_CMD;
		}
		/* content plus the final CR must stay below the limit, which counts CRLF */
		if (p->line.len + 1 > line_limit(p) - 1) {
			line_clear(p);
			p->skipping = true;
			*used_r = i;
			*err_r = "line too long";
			return SMTP_PARSE_ERROR;
		}
		if (p->line.len > 0 && p->line.data[p->line.len - 1] == '\r')
			p->bare_cr = true;
		if (c == '\0')
			p->nul = true;
		(void)buf_append_byte(&p->line, c); /* cannot fail: checked against max above */
	}
	*used_r = i;
	return SMTP_PARSE_NEED_MORE;
}

/* ---- argument grammars ---- */

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 §3.2.3 atext, plus UTF8-non-ascii (RFC 6531 §3.3); UTF-8 validity is checked over
 * the whole path afterwards. */
static bool
is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c) || c >= 0x80)
		return true;
	return c != '\0' && memchr("!#$%&'*+-/=?^_`{|}~", c, 19) != NULL;
}

bool
smtp_cmd_domain_is_valid(struct slice d, bool utf8)
{
	if (d.len == 0 || d.len > SMTP_DOMAIN_MAX)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= d.len; i++) {
		if (i == d.len || d.p[i] == '.') {
			size_t n = i - start;
			if (n == 0 || n > 63 || d.p[start] == '-' || d.p[i - 1] == '-')
				return false;
			start = i + 1;
			continue;
		}
		unsigned char c = (unsigned char)d.p[i];
		if (!is_alpha(c) && !is_digit(c) && c != '-' && !(utf8 && c >= 0x80))
			return false;
	}
	return !utf8 || addr_utf8_is_valid(d);
}

bool
smtp_cmd_addr_literal_is_valid(struct slice d)
{
	if (d.len < 3 || d.p[0] != '[' || d.p[d.len - 1] != ']')
		return false;
	struct slice in = {d.p + 1, d.len - 2};
	char tmp[64];
	if (slice_has_prefix_nocase(in, "IPv6:")) {
		if (in.len - 5 >= sizeof tmp)
			return false;
		memcpy(tmp, in.p + 5, in.len - 5);
		tmp[in.len - 5] = '\0';
		unsigned char a[16];
		return inet_pton(AF_INET6, tmp, a) == 1;
	}
	if (is_digit((unsigned char)in.p[0])) {
		if (in.len >= sizeof tmp)
			return false;
		memcpy(tmp, in.p, in.len);
		tmp[in.len] = '\0';
		unsigned char a[4];
		return inet_pton(AF_INET, tmp, a) == 1;
	}
	/* General-address-literal = Standardized-tag ":" 1*dcontent */
	struct slice tag, content = slice_cut(in, ':', &tag);
	if (tag.len == 0 || content.p == NULL || content.len == 0)
		return false;
	for (size_t i = 0; i < tag.len; i++) {
		unsigned char c = (unsigned char)tag.p[i];
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return false;
	}
	for (size_t i = 0; i < content.len; i++) {
		unsigned char c = (unsigned char)content.p[i];
		if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
			return false;
	}
	return true;
}

bool
smtp_cmd_helo_is_valid(struct slice d)
{
	if (d.len == 0 || d.len > SMTP_DOMAIN_MAX)
		return false;
	if (d.p[0] == '[')
		return smtp_cmd_addr_literal_is_valid(d);
	for (size_t i = 0; i < d.len; i++) {
		unsigned char c = (unsigned char)d.p[i];
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_')
			return false;
	}
	return true;
}

static int
hexval(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' +
		       10; /* RFC 3461 says upper case; accepting lower case is harmless */
	return -1;
}

int
smtp_xtext_decode(struct slice in, char *out, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < in.len; i++) {
		unsigned char c = (unsigned char)in.p[i];
		if (c == '+') {
			if (in.len - i < 3)
				return -1;
			int h = hexval((unsigned char)in.p[i + 1]),
			    l = hexval((unsigned char)in.p[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (unsigned char)(h << 4 | l);
			i += 2;
			if (c < 0x20 || c > 0x7e)
				return -1;
		} else if (c < 33 || c > 126 || c == '=') {
			return -1;
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = (char)c;
	}
	if (n == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

/* A cursor over an argument. */
struct cur {
	const char *p;
	size_t len, i;
};

static int
peek(const struct cur *c)
{
	return c->i < c->len ? (unsigned char)c->p[c->i] : -1;
}

/* Dot-string (RFC 5321 §4.1.2): Atom *("." Atom). */
static bool
scan_dot_string(struct cur *c)
{
	bool need_atom = true;
	while (c->i < c->len) {
		unsigned char ch = (unsigned char)c->p[c->i];
		if (ch == '.') {
			if (need_atom)
				return false;
			need_atom = true;
		} else if (is_atext(ch)) {
			need_atom = false;
		} else {
			break;
		}
		c->i++;
	}
	return !need_atom;
}

/* Quoted-string (RFC 5321 §4.1.2) with RFC 6531 UTF-8. */
static bool
scan_quoted(struct cur *c)
{
	c->i++; /* opening DQUOTE */
	while (c->i < c->len) {
		unsigned char ch = (unsigned char)c->p[c->i++];
		if (ch == '"')
			return true;
		if (ch == '\\') {
			if (c->i >= c->len)
				return false;
			unsigned char q = (unsigned char)c->p[c->i++];
			if (q < 32 || q > 126)
				return false;
		} else if (!((ch >= 32 && ch <= 126) || ch >= 0x80)) {
			return false;
		}
	}
	return false;
}

/* Domain or address literal up to the next '>' or ',' or ':'. */
static bool
scan_domain(struct cur *c, struct slice *d_r)
{
	size_t start = c->i;
	if (peek(c) == '[') {
		while (c->i < c->len && c->p[c->i] != ']')
			c->i++;
		if (c->i >= c->len)
			return false;
		c->i++;
		*d_r = (struct slice){c->p + start, c->i - start};
		return smtp_cmd_addr_literal_is_valid(*d_r);
	}
	while (c->i < c->len && c->p[c->i] != '>' && c->p[c->i] != ',' && c->p[c->i] != ':')
		c->i++;
	*d_r = (struct slice){c->p + start, c->i - start};
	return smtp_cmd_domain_is_valid(*d_r, true);
}

enum path_kind { PATH_MAIL, PATH_RCPT };

/* Path = "<" [ A-d-l ":" ] Mailbox ">" (RFC 5321 §4.1.2); the reverse path may be "<>". The
 * source route is checked and dropped (§C: "MUST accept and MAY ignore"). */
static bool
scan_path(struct cur *c, enum path_kind kind, struct slice *mbox_r, bool *null_r,
          bool *postmaster_r)
{
	size_t open = c->i;
	*null_r = *postmaster_r = false;
	if (peek(c) != '<')
		return false;
	c->i++;
	if (peek(c) == '>') {
		c->i++;
		*mbox_r = (struct slice){c->p + c->i - 1, 0};
		*null_r = true;
		return kind == PATH_MAIL;
	}
	if (peek(c) == '@') {
		for (;;) {
			c->i++; /* '@' */
			struct slice d;
			if (!scan_domain(c, &d) || d.p[0] == '[')
				return false;
			if (peek(c) == ':')
				break;
			if (peek(c) != ',')
				return false;
			c->i++;
			if (peek(c) != '@')
				return false;
		}
		c->i++; /* ':' */
	}
	size_t start = c->i;
	if (peek(c) == '"') {
		if (!scan_quoted(c))
			return false;
	} else if (!scan_dot_string(c)) {
		return false;
	}
	size_t local_len = c->i - start;
	if (peek(c) == '>' && kind == PATH_RCPT &&
	    slice_eq_nocase((struct slice){c->p + start, local_len}, "postmaster")) {
		*mbox_r = (struct slice){c->p + start, local_len};
		*postmaster_r = true;
		c->i++;
		return true;
	}
	if (local_len > ADDR_LOCAL_MAX || peek(c) != '@')
		return false;
	c->i++;
	struct slice d;
	if (!scan_domain(c, &d) || peek(c) != '>')
		return false;
	*mbox_r = (struct slice){c->p + start, c->i - start};
	c->i++;
	if (c->i - open > SMTP_PATH_MAX)
		return false;
	return addr_utf8_is_valid(*mbox_r);
}

static bool
has_8bit(struct slice s)
{
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] >= 0x80)
			return true;
	return false;
}

/* Matches "FROM:" / "TO:" and the optional spaces some clients put after the colon. */
static bool
scan_prefix(struct cur *c, const char *prefix)
{
	struct slice s = {c->p, c->len};
	if (!slice_has_prefix_nocase(s, prefix))
		return false;
	c->i = strlen(prefix);
	while (peek(c) == ' ')
		c->i++;
	return true;
}

/* Next esmtp-param "keyword[=value]" (RFC 5321 §4.1.2). 0: one found; 1: end; -1: syntax. */
static int
next_param(struct cur *c, struct slice *kw_r, struct slice *val_r, bool *has_val_r)
{
	if (c->i >= c->len)
		return 1;
	if (peek(c) != ' ')
		return -1;
	while (peek(c) == ' ')
		c->i++;
	if (c->i >= c->len)
		return 1;
	size_t start = c->i;
	while (c->i < c->len &&
	       (is_alpha((unsigned char)c->p[c->i]) || is_digit((unsigned char)c->p[c->i]) ||
	        (c->i > start && c->p[c->i] == '-')))
		c->i++;
	*kw_r = (struct slice){c->p + start, c->i - start};
	if (kw_r->len == 0)
		return -1;
	*has_val_r = false;
	*val_r = (struct slice){c->p + c->i, 0};
	if (peek(c) == '=') {
		c->i++;
		start = c->i;
		while (c->i < c->len) {
			unsigned char ch = (unsigned char)c->p[c->i];
			if (ch < 33 || ch > 126 || ch == '=')
				break;
			c->i++;
		}
		*val_r = (struct slice){c->p + start, c->i - start};
		if (val_r->len == 0)
			return -1;
		*has_val_r = true;
	}
	if (c->i < c->len && peek(c) != ' ')
		return -1;
	return 0;
}

static int
fail(struct smtp_cmd_error *e, int code, const char *enh, const char *text)
{
	*e = (struct smtp_cmd_error){code, enh, text};
	return -1;
}

#define BAD_PARAM(e) fail(e, 501, "5.5.4", "Invalid parameter value")
#define DUP_PARAM(e) fail(e, 501, "5.5.4", "Duplicate parameter")

int
smtp_cmd_parse_mail(struct slice arg, struct smtp_mail_args *out, struct smtp_cmd_error *err_r)
{
	memset(out, 0, sizeof *out);
	struct cur c = {arg.p, arg.len, 0};
	if (!scan_prefix(&c, "FROM:"))
		return fail(err_r, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	bool postmaster;
	if (!scan_path(&c, PATH_MAIL, &out->path, &out->null_path, &postmaster))
		return fail(err_r, 501, "5.1.7", "Bad sender address syntax");
	out->utf8 = has_8bit(out->path);
	bool seen_auth = false;
	struct slice kw, val;
	bool has_val;
	int r;
	while ((r = next_param(&c, &kw, &val, &has_val)) == 0) {
		if (slice_eq_nocase(kw, "SIZE")) {
			if (out->has_size)
				return DUP_PARAM(err_r);
			if (!has_val || val.len > 20 ||
			    strconv_u64(val, UINT64_MAX, &out->size) < 0)
				return BAD_PARAM(err_r);
			out->has_size = true;
		} else if (slice_eq_nocase(kw, "BODY")) {
			if (out->body != SMTP_BODY_NONE)
				return DUP_PARAM(err_r);
			if (has_val && slice_eq_nocase(val, "7BIT"))
				out->body = SMTP_BODY_7BIT;
			else if (has_val && slice_eq_nocase(val, "8BITMIME"))
				out->body = SMTP_BODY_8BITMIME;
			else
				return fail(err_r, 501, "5.5.4", "Unsupported BODY type");
		} else if (slice_eq_nocase(kw, "SMTPUTF8")) {
			if (out->smtputf8)
				return DUP_PARAM(err_r);
			if (has_val)
				return BAD_PARAM(err_r);
			out->smtputf8 = true;
		} else if (slice_eq_nocase(kw, "REQUIRETLS")) {
			if (out->requiretls)
				return DUP_PARAM(err_r);
			if (has_val)
				return BAD_PARAM(err_r);
			out->requiretls = true;
		} else if (slice_eq_nocase(kw, "RET")) {
			if (out->ret != SMTP_RET_NONE)
				return DUP_PARAM(err_r);
			if (has_val && slice_eq_nocase(val, "FULL"))
				out->ret = SMTP_RET_FULL;
			else if (has_val && slice_eq_nocase(val, "HDRS"))
				out->ret = SMTP_RET_HDRS;
			else
				return BAD_PARAM(err_r);
		} else if (slice_eq_nocase(kw, "ENVID")) {
			if (out->has_envid)
				return DUP_PARAM(err_r);
			if (!has_val || val.len > SMTP_ENVID_MAX ||
			    smtp_xtext_decode(val, out->envid, sizeof out->envid) < 0)
				return BAD_PARAM(err_r);
			out->has_envid = true;
		} else if (slice_eq_nocase(kw, "AUTH")) {
			/* RFC 4954 §5: we are the final destination or trust nobody's claim */
			if (seen_auth)
				return DUP_PARAM(err_r);
			if (!has_val)
				return BAD_PARAM(err_r);
			seen_auth = true;
		} else {
			return fail(err_r, 555, "5.5.4", "Unsupported parameter");
		}
	}
	if (r < 0)
		return fail(err_r, 501, "5.5.4", "Bad parameter syntax");
	return 0;
}

static int
parse_notify(struct slice val, unsigned *notify_r)
{
	unsigned n = 0;
	struct slice rest = val, item;
	while (rest.p != NULL) {
		rest = slice_cut(rest, ',', &item);
		if (slice_eq_nocase(item, "NEVER"))
			n |= SMTP_NOTIFY_NEVER;
		else if (slice_eq_nocase(item, "SUCCESS"))
			n |= SMTP_NOTIFY_SUCCESS;
		else if (slice_eq_nocase(item, "FAILURE"))
			n |= SMTP_NOTIFY_FAILURE;
		else if (slice_eq_nocase(item, "DELAY"))
			n |= SMTP_NOTIFY_DELAY;
		else
			return -1;
	}
	if ((n & SMTP_NOTIFY_NEVER) && n != SMTP_NOTIFY_NEVER)
		return -1;
	*notify_r = n;
	return 0;
}

/* ORCPT=addr-type ";" xtext (RFC 3461 §4.2); out gets "addr-type;decoded". */
static int
parse_orcpt(struct slice val, char *out, size_t n)
{
	struct slice type, addr = slice_cut(val, ';', &type);
	if (type.len == 0 || addr.p == NULL || addr.len == 0 || val.len > SMTP_ORCPT_MAX)
		return -1;
	for (size_t i = 0; i < type.len; i++) {
		unsigned char c = (unsigned char)type.p[i];
		if (c >= 0x80 || !is_atext(c))
			return -1;
	}
	memcpy(out, type.p, type.len);
	out[type.len] = ';';
	return smtp_xtext_decode(addr, out + type.len + 1, n - type.len - 1);
}

int
smtp_cmd_parse_rcpt(struct slice arg, struct smtp_rcpt_args *out, struct smtp_cmd_error *err_r)
{
	memset(out, 0, sizeof *out);
	struct cur c = {arg.p, arg.len, 0};
	if (!scan_prefix(&c, "TO:"))
		return fail(err_r, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	bool null_path;
	if (!scan_path(&c, PATH_RCPT, &out->path, &null_path, &out->postmaster))
		return fail(err_r, 501, "5.1.3", "Bad recipient address syntax");
	out->utf8 = has_8bit(out->path);
	bool seen_notify = false;
	struct slice kw, val;
	bool has_val;
	int r;
	while ((r = next_param(&c, &kw, &val, &has_val)) == 0) {
		if (slice_eq_nocase(kw, "NOTIFY")) {
			if (seen_notify)
				return DUP_PARAM(err_r);
			if (!has_val || parse_notify(val, &out->notify) < 0)
				return BAD_PARAM(err_r);
			seen_notify = true;
		} else if (slice_eq_nocase(kw, "ORCPT")) {
			if (out->has_orcpt)
				return DUP_PARAM(err_r);
			if (!has_val || parse_orcpt(val, out->orcpt, sizeof out->orcpt) < 0)
				return BAD_PARAM(err_r);
			out->has_orcpt = true;
		} else {
			return fail(err_r, 555, "5.5.4", "Unsupported parameter");
		}
	}
	if (r < 0)
		return fail(err_r, 501, "5.5.4", "Bad parameter syntax");
	return 0;
}

int
smtp_cmd_parse_bdat(struct slice arg, uint64_t *size_r, bool *last_r)
{
	struct slice num, rest = slice_cut(arg, ' ', &num);
	*last_r = false;
	if (num.len == 0 || num.len > 20 || strconv_u64(num, UINT64_MAX, size_r) < 0)
		return -1;
	if (rest.p == NULL)
		return 0;
	rest = slice_trim(rest);
	if (!slice_eq_nocase(rest, "LAST"))
		return -1;
	*last_r = true;
	return 0;
}
