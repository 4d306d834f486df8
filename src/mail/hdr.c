/* Header fields and RFC 5322 address lists; see hdr.h. The address parser tokenises the raw
 * field value (CFWS dropped, quoted strings and domain literals kept whole) and then walks the
 * token array by recursive descent, so every obsolete form of §4.4 is handled in one place. */
#include "hdr.h"

#include <string.h>

/* ---- header section ---- */

void
hdr_iter_init(struct hdr_iter *it, const unsigned char *msg, size_t len)
{
	memset(it, 0, sizeof *it);
	it->msg = msg;
	it->len = len;
}

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

enum hdr_next
hdr_iter_next(struct hdr_iter *it, struct hdr_field *f_r, const char **err_r)
{
	if (it->done || it->pos >= it->len) {
		it->done = true;
		return HDR_END;
	}
	const unsigned char *m = it->msg;
	size_t pos = it->pos, len = it->len;
	if (m[pos] == '\n' || (m[pos] == '\r' && (pos + 1 >= len || m[pos + 1] == '\n'))) {
		it->done = true;
		return HDR_END;
	}
	*err_r = NULL;
	/* field-name = 1*ftext (RFC 5322 §3.6.8), optional WSP (obs-optional), ':' */
	size_t start = pos;
	while (pos < len && m[pos] >= 33 && m[pos] <= 126 && m[pos] != ':')
		pos++;
	size_t name_end = pos;
	while (pos < len && is_wsp(m[pos]))
		pos++;
	if (name_end == start || pos >= len || m[pos] != ':') {
		*err_r = start < len && is_wsp(m[start]) ? "folded line without a field"
		                                         : "malformed header line";
		it->done = true;
		return HDR_ERROR;
	}
	pos++;
	size_t vstart = pos, vend;
	for (;;) {
		size_t window = len - pos;
		if (window > HDR_FIELD_MAX + 2)
			window = HDR_FIELD_MAX + 2;
		const unsigned char *lf = memchr(m + pos, '\n', window);
		if (lf == NULL) {
			if (len - pos > HDR_FIELD_MAX + 1)
				goto too_long;
			vend = pos = len; /* header-only message without a final line break */
			break;
		}
		size_t at = (size_t)(lf - m);
		if (at + 1 < len && is_wsp(m[at + 1])) {
			pos = at + 1;
			if (pos - start > HDR_FIELD_MAX)
				goto too_long;
			continue;
		}
		vend = at > vstart && m[at - 1] == '\r' ? at - 1 : at;
		pos = at + 1;
		break;
	}
	if (pos - start > HDR_FIELD_MAX)
		goto too_long;
	if (pos > HDR_SECTION_MAX) {
		*err_r = "header section too large";
		it->done = true;
		return HDR_ERROR;
	}
	if (++it->fields > HDR_FIELDS_MAX) {
		*err_r = "too many header fields";
		it->done = true;
		return HDR_ERROR;
	}
	it->pos = pos;
	f_r->name = (struct slice){(const char *)m + start, name_end - start};
	f_r->value = (struct slice){(const char *)m + vstart, vend - vstart};
	return HDR_FIELD;
too_long:
	*err_r = "header field too long";
	it->done = true;
	return HDR_ERROR;
}

int
hdr_unfold(struct slice value, struct buf *out)
{
	for (size_t i = 0; i < value.len; i++)
		if (value.p[i] != '\r' && value.p[i] != '\n')
			if (buf_append_byte(out, (unsigned char)value.p[i]) < 0)
				return -1;
	return 0;
}

/* ---- address lists ---- */

#define HDR_TOKENS_MAX 4096 /* policy: no real address list comes near */

enum tok_type { T_ATOM, T_QSTR, T_DLIT, T_SPECIAL, T_END };

struct tok {
	enum tok_type type;
	const char *p; /* T_ATOM: the atom; T_QSTR: inside the quotes (escapes kept); T_DLIT: the
	                  whole literal with brackets; T_SPECIAL: the character */
	size_t len;
};

struct lex {
	struct tok *t;
	size_t n, i;
	struct arena *a;
	char **addrs;
	size_t n_addrs;
	const char *err;
};

static bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
		return true;
	return c != '\0' && memchr("!#$%&'*+-/=?^_`{|}~", c, 19) != NULL;
}

static bool
is_fws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Control characters other than folding white space (RFC 5322 §3.2.4 excludes them from qtext;
 * obs-qtext would allow some, but an address with them is refused rather than mis-compared). */
static bool
is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

/* Skips a (nested) comment starting at s[*i] == '('. */
static bool
skip_comment(struct slice s, size_t *i)
{
	unsigned depth = 0;
	while (*i < s.len) {
		char c = s.p[(*i)++];
		if (c == '\\') {
			if (*i >= s.len)
				return false;
			(*i)++;
		} else if (c == '(') {
			if (++depth > 64)
				return false;
		} else if (c == ')') {
			if (--depth == 0)
				return true;
		}
	}
	return false;
}

static int
tokenize(struct slice s, struct lex *lx)
{
	size_t cap = s.len < HDR_TOKENS_MAX ? s.len : HDR_TOKENS_MAX; /* a token is >= 1 byte */
	lx->t = arena_alloc(lx->a, (cap + 1) * sizeof *lx->t);
	size_t i = 0;
	while (i < s.len) {
		unsigned char c = (unsigned char)s.p[i];
		if (is_fws(c)) {
			i++;
			continue;
		}
		if (c == '(') {
			if (!skip_comment(s, &i))
				return lx->err = "unterminated comment", -1;
			continue;
		}
		if (lx->n == cap)
			return lx->err = "address list too long", -1;
		struct tok *t = &lx->t[lx->n++];
		size_t start = i;
		if (c == '"') {
			i++;
			while (i < s.len && s.p[i] != '"') {
				if (s.p[i] == '\\' && ++i >= s.len)
					break;
				if (is_ctl((unsigned char)s.p[i]))
					return lx->err = "control character in quoted string", -1;
				i++;
			}
			if (i >= s.len)
				return lx->err = "unterminated quoted string", -1;
			*t = (struct tok){T_QSTR, s.p + start + 1, i - start - 1};
			i++;
		} else if (c == '[') {
			while (i < s.len && s.p[i] != ']') {
				if ((s.p[i] == '[' && i > start) || is_ctl((unsigned char)s.p[i]))
					return lx->err = "bad domain literal", -1;
				if (s.p[i] == '\\' && ++i >= s.len)
					break;
				i++;
			}
			if (i >= s.len)
				return lx->err = "unterminated domain literal", -1;
			i++;
			*t = (struct tok){T_DLIT, s.p + start, i - start};
		} else if (strchr("<>@,:;.", c) != NULL && c != '\0') {
			*t = (struct tok){T_SPECIAL, s.p + i, 1};
			i++;
		} else if (is_atext(c)) {
			while (i < s.len && is_atext((unsigned char)s.p[i]))
				i++;
			*t = (struct tok){T_ATOM, s.p + start, i - start};
		} else {
			return lx->err = "unexpected character in address", -1;
		}
	}
	lx->t[lx->n] = (struct tok){T_END, s.p + s.len, 0};
	return 0;
}

static const struct tok *
peek(const struct lex *lx)
{
	return &lx->t[lx->i];
}

static bool
is_special(const struct tok *t, char c)
{
	return t->type == T_SPECIAL && t->p[0] == c;
}

static bool
is_word(const struct tok *t)
{
	return t->type == T_ATOM || t->type == T_QSTR;
}

/* Appends the content of a word (quoted-pairs resolved, folding dropped). */
static void
word_content(const struct tok *t, struct buf *b)
{
	for (size_t k = 0; k < t->len; k++) {
		char c = t->p[k];
		if (t->type == T_QSTR && c == '\\' && k + 1 < t->len)
			c = t->p[++k];
		else if (c == '\r' || c == '\n')
			continue;
		(void)buf_append_byte(b, (unsigned char)c);
	}
}

static bool
is_dot_atom(struct slice s)
{
	if (s.len == 0 || s.p[0] == '.' || s.p[s.len - 1] == '.')
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c == '.' ? s.p[i + 1] == '.' : !is_atext(c))
			return false;
	}
	return true;
}

/* addr-spec from token index `from` (a local part of word *("." word)) up to '@', then the
 * domain; appends the normalised address. */
static int
addr_spec(struct lex *lx, size_t from)
{
	struct buf local, out;
	buf_init(&local, HDR_ADDR_MAX);
	buf_init(&out, HDR_ADDR_MAX);
	int ret = -1;
	size_t i = from;
	for (;;) {
		if (!is_word(&lx->t[i])) {
			lx->err = "bad local part";
			goto done;
		}
		word_content(&lx->t[i++], &local);
		if (!is_special(&lx->t[i], '.'))
			break;
		(void)buf_append_byte(&local, '.');
		i++;
	}
	if (!is_special(&lx->t[i], '@')) {
		lx->err = "address without a domain";
		goto done;
	}
	i++;
	struct slice ls = buf_slice(&local);
	if (is_dot_atom(ls)) {
		(void)buf_append(&out, ls.p, ls.len);
	} else {
		(void)buf_append_byte(&out, '"');
		for (size_t k = 0; k < ls.len; k++) {
			if (ls.p[k] == '"' || ls.p[k] == '\\')
				(void)buf_append_byte(&out, '\\');
			(void)buf_append_byte(&out, (unsigned char)ls.p[k]);
		}
		(void)buf_append_byte(&out, '"');
	}
	(void)buf_append_byte(&out, '@');
	if (lx->t[i].type == T_DLIT) {
		const struct tok *t = &lx->t[i++];
		for (size_t k = 0; k < t->len; k++)
			if (!is_fws((unsigned char)t->p[k]))
				(void)buf_append_byte(&out, (unsigned char)t->p[k]);
	} else {
		for (;;) {
			if (lx->t[i].type != T_ATOM) {
				lx->err = "bad domain";
				goto done;
			}
			(void)buf_append(&out, lx->t[i].p, lx->t[i].len);
			i++;
			if (!is_special(&lx->t[i], '.'))
				break;
			(void)buf_append_byte(&out, '.');
			i++;
		}
	}
	if (local.overflow || out.overflow) {
		lx->err = "address too long";
		goto done;
	}
	if (lx->n_addrs == HDR_ADDRS_MAX) {
		lx->err = "too many addresses";
		goto done;
	}
	lx->addrs[lx->n_addrs++] = arena_strndup(lx->a, buf_cstr(&out), out.len);
	lx->i = i;
	ret = 0;
done:
	buf_deinit(&local);
	buf_deinit(&out);
	return ret;
}

/* angle-addr after '<': [obs-route] addr-spec '>' */
static int
angle_addr(struct lex *lx)
{
	lx->i++; /* '<' */
	if (is_special(peek(lx), '@')) {
		/* obs-route = obs-domain-list ":" — dropped */
		while (!is_special(peek(lx), ':')) {
			if (peek(lx)->type == T_END || is_special(peek(lx), '>'))
				return lx->err = "bad route", -1;
			lx->i++;
		}
		lx->i++;
	}
	if (addr_spec(lx, lx->i) < 0)
		return -1;
	if (!is_special(peek(lx), '>'))
		return lx->err = "missing '>'", -1;
	lx->i++;
	return 0;
}

static int address_list(struct lex *lx, bool in_group);

/* address = mailbox / group; mailbox = name-addr / addr-spec */
static int
address(struct lex *lx, bool in_group)
{
	size_t start = lx->i;
	size_t words = 0;
	while (is_word(peek(lx)) || is_special(peek(lx), '.')) {
		words++;
		lx->i++;
	}
	const struct tok *t = peek(lx);
	if (is_special(t, '<'))
		return angle_addr(lx);
	if (is_special(t, ':') && words > 0) {
		if (in_group)
			return lx->err = "nested group", -1;
		lx->i++;
		if (address_list(lx, true) < 0)
			return -1;
		lx->i++; /* ';' */
		return 0;
	}
	if (is_special(t, '@') && words > 0)
		return addr_spec(lx, start);
	return lx->err = "address without a domain", -1;
}

/* Elements separated by ','; empty elements allowed (obs-addr-list). In a group, ends at ';'
 * (not consumed). */
static int
address_list(struct lex *lx, bool in_group)
{
	for (;;) {
		const struct tok *t = peek(lx);
		if (t->type == T_END)
			return in_group ? (lx->err = "unterminated group", -1) : 0;
		if (is_special(t, ';')) {
			if (in_group)
				return 0;
			return lx->err = "unexpected ';'", -1;
		}
		if (is_special(t, ',')) {
			lx->i++;
			continue;
		}
		if (address(lx, in_group) < 0)
			return -1;
		t = peek(lx);
		if (is_special(t, ','))
			lx->i++;
		else if (t->type != T_END && !(in_group && is_special(t, ';')))
			return lx->err = "junk after address", -1;
	}
}

int
hdr_addr_list(struct slice value, struct arena *a, char ***addrs_r, size_t *n_r, const char **err_r)
{
	struct lex lx = {.a = a};
	lx.addrs = arena_alloc(a, HDR_ADDRS_MAX * sizeof *lx.addrs);
	*n_r = 0;
	*addrs_r = lx.addrs;
	if (value.len > HDR_FIELD_MAX) {
		*err_r = "header field too long";
		return -1;
	}
	if (tokenize(value, &lx) < 0 || address_list(&lx, false) < 0) {
		*err_r = lx.err;
		return -1;
	}
	*n_r = lx.n_addrs;
	return 0;
}
