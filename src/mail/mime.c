/* MIME structure of a stored message (see mime.h): one linear pass over the raw bytes finds the
 * header and body of every part (boundary lines are matched the way Dovecot's message parser
 * does: "--" + boundary as a prefix of the line, innermost boundary first, the line break before
 * a boundary belongs to the boundary), then ENVELOPE / BODY / BODYSTRUCTURE are written from the
 * part tree, with Dovecot 2.3's choices for quoting, defaults and RFC 2231 merging (checked
 * against a live Dovecot: tests/testdata/mime/, tools/update-golden.sh). Offsets are always
 * those of the raw input, so FETCH serves the stored bytes. GMime is used for what it is good at
 * (RFC 2047 words, charsets, transfer decoding) in mime_search.c and mime_search_body below.
 *
 * Work is bounded: MIME_DEPTH_MAX nesting, MIME_PARTS_MAX parts, MIME_PARAMS_MAX parameters per
 * header; every scan is linear in the input (times the nesting depth at worst). */
#include "mail/mime.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mail/mime_private.h"
#include "util/xalloc.h"

/* ---- one-time GMime init ---- */

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;
static bool mime_ok;

static void
mime_init_once(void)
{
	g_mime_init();
	mime_ok = true;
}

bool
mime_init(void)
{
	pthread_once(&mime_once, mime_init_once);
	return mime_ok;
}

/* ---- lexical helpers (RFC 5322 §3.2, RFC 2045 §5.1) ---- */

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 atext, plus 8-bit bytes (as Dovecot accepts them). */
static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 2045 token character: CHAR except SPACE, CTLs, tspecials; 8-bit kept (as Dovecot). */
static bool
is_token(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= 0x20 || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Skips whitespace, line breaks and (nested) comments. When cmt_r is not NULL it receives the
 * inner range of the last comment skipped (untouched when there is none). */
static size_t
skip_cfws(const unsigned char *s, size_t i, size_t e, size_t *cmt_start, size_t *cmt_end)
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

static size_t
skip_lwsp(const unsigned char *s, size_t i, size_t e)
{
	return skip_cfws(s, i, e, NULL, NULL);
}

/* s[i] == '"': appends the unescaped content (line breaks removed) to out and returns the index
 * after the closing quote (e when unterminated). */
static size_t
parse_quoted(const unsigned char *s, size_t i, size_t e, struct buf *out, bool *closed_r)
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

static bool
slice_ieq(const unsigned char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n == l && strncasecmp((const char *)p, lit, l) == 0;
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
static void
env_human(struct buf *out, const unsigned char *p, size_t n)
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

/* Other ENVELOPE strings (date, message ids, addresses), as Dovecot's imap_append_nstring_nolf:
 * line breaks removed (a space kept between lines), '"' and '\\' escaped, a literal for 8-bit
 * bytes. */
static void
env_string(struct buf *out, const unsigned char *p, size_t n)
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

/* BODYSTRUCTURE strings, as Dovecot: unfolded, '"' and '\' escaped in a quoted string, a
 * literal when there are 8-bit bytes. */
static void
bs_string(struct buf *out, const unsigned char *p, size_t n)
{
	bool brk = false, high = false, special = false;
	clean_append(NULL, p, n, false, &brk, &high, &special);
	if (high) {
		size_t len = clean_append(NULL, p, n, false, &brk, &high, &special);
		buf_printf(out, "{%zu}\r\n", len);
		clean_append(out, p, n, false, &brk, &high, &special);
		return;
	}
	buf_append_byte(out, '"');
	clean_append(out, p, n, true, &brk, &high, &special);
	buf_append_byte(out, '"');
}

static void
bs_cstr(struct buf *out, const char *s)
{
	bs_string(out, (const unsigned char *)s, strlen(s));
}

/* ---- header fields ---- */

static size_t
line_next(const unsigned char *m, size_t pos, size_t e)
{
	const unsigned char *lf = memchr(m + pos, '\n', e - pos);
	return lf ? (size_t)(lf - m) + 1 : e;
}

/* Next field of the header section m[*pos, e): its name and raw value (after ':' up to the end
 * of its last line, folds included, final line break excluded). Lines that are neither a field
 * nor a fold are skipped. */
bool
mime_field_next(const unsigned char *m, size_t e, size_t *pos, struct slice *name_r, size_t *voff_r,
                size_t *vlen_r)
{
	while (*pos < e) {
		size_t ls = *pos, next = line_next(m, ls, e);
		*pos = next;
		if (is_wsp(m[ls]))
			continue;
		size_t le = next;
		if (le > ls && m[le - 1] == '\n')
			le--;
		const unsigned char *colon = memchr(m + ls, ':', le - ls);
		if (colon == NULL)
			continue;
		size_t vend = le;
		while (next < e && is_wsp(m[next])) {
			size_t n2 = line_next(m, next, e);
			vend = n2;
			if (vend > next && m[vend - 1] == '\n')
				vend--;
			next = n2;
		}
		if (vend > ls && m[vend - 1] == '\r')
			vend--;
		*pos = next;
		size_t nend = (size_t)(colon - m);
		while (nend > ls && is_wsp(m[nend - 1]))
			nend--;
		*name_r = slice_make(m + ls, nend - ls);
		*voff_r = (size_t)(colon - m) + 1;
		*vlen_r = vend > *voff_r ? vend - *voff_r : 0;
		return true;
	}
	return false;
}

/* ---- parameters (RFC 2045 §5.1, RFC 2231 continuations merged as Dovecot does) ---- */

struct param {
	size_t k_off, k_len, v_off, v_len; /* in plist.sb */
	uint32_t idx;                      /* RFC 2231 section number */
	bool is2231, ext;
};

struct plist {
	struct buf sb;
	size_t n;
	struct param p[MIME_PARAMS_MAX];
};

static void
plist_add(struct plist *pl, const void *k, size_t kl, const void *v, size_t vl)
{
	if (pl->n >= MIME_PARAMS_MAX)
		return;
	struct param *p = &pl->p[pl->n++];
	memset(p, 0, sizeof *p);
	p->k_off = pl->sb.len;
	buf_append(&pl->sb, k, kl);
	p->k_len = kl;
	p->v_off = pl->sb.len;
	buf_append(&pl->sb, v, vl);
	p->v_len = vl;
}

static const unsigned char *
pk(const struct plist *pl, const struct param *p)
{
	return pl->sb.data + p->k_off;
}

static const unsigned char *
pv(const struct plist *pl, const struct param *p)
{
	return pl->sb.data + p->v_off;
}

/* Parses ";" key "=" value pairs of s[i, e) into raw (unmerged) entries of pl. Broken input is
 * skipped up to the next ';', as Dovecot's rfc2231_parse does. */
static void
params_parse_raw(struct plist *pl, const unsigned char *s, size_t i, size_t e)
{
	uint32_t carry = 0;
	while (i < e && pl->n < MIME_PARAMS_MAX) {
		if (s[i] != ';') {
			i++;
			continue;
		}
		i = skip_lwsp(s, i + 1, e);
		size_t k0 = i;
		while (i < e && is_token(s[i]))
			i++;
		/* on an error, Dovecot skips the byte it stopped at (even a ';') and looks for the
		 * next ';' */
		size_t k1 = i;
		if (k1 == k0) {
			i++;
			continue;
		}
		i = skip_lwsp(s, i, e);
		if (i >= e || s[i] != '=') {
			i++;
			continue;
		}
		size_t cs = SIZE_MAX, ce = 0;
		i = skip_cfws(s, i + 1, e, &cs, &ce);
		if (cs != SIZE_MAX && ce == e) /* unterminated comment: dropped (as Dovecot) */
			continue;
		size_t v0, vlen;
		size_t mark = pl->sb.len;
		if (i < e && s[i] == '"') {
			bool closed;
			i = parse_quoted(s, i, e, &pl->sb, &closed);
			if (!closed) { /* unterminated: the parameter is dropped (as Dovecot) */
				pl->sb.len = mark;
				continue;
			}
			v0 = mark;
			vlen = pl->sb.len - mark;
		} else {
			size_t t0 = i;
			if (i < e &&
			    s[i] == '=') /* broken name==?utf-8?...: taken up to ';' or WSP */
				while (i < e && s[i] != ';' && !is_wsp(s[i]) && s[i] != '\r' &&
				       s[i] != '\n')
					i++;
			else
				while (i < e && is_token(s[i]))
					i++;
			v0 = pl->sb.len;
			buf_append(&pl->sb, s + t0, i - t0);
			vlen = i - t0;
		}
		/* key after the value so both live in sb; store the key now */
		size_t koff = pl->sb.len;
		buf_append(&pl->sb, s + k0, k1 - k0);
		struct param *p = &pl->p[pl->n++];
		memset(p, 0, sizeof *p);
		p->k_off = koff;
		p->k_len = k1 - k0;
		p->v_off = v0;
		p->v_len = vlen;
		/* RFC 2231 §3/§4 name: key*N, key*N*, key* */
		const unsigned char *k = s + k0, *star = memchr(k, '*', k1 - k0);
		if (star != NULL) {
			size_t j = (size_t)(star - k), kl = k1 - k0;
			/* XXX: a bare "key*" takes the section number of the previous one, a
			 * Dovecot 2.3 quirk we copy so BODYSTRUCTURE matches it */
			uint32_t idx = carry;
			if (j + 1 < kl) {
				j++;
				idx = 0;
				while (j < kl && k[j] >= '0' && k[j] <= '9') {
					if (idx < 100000)
						idx = idx * 10 + (uint32_t)(k[j] - '0');
					j++;
				}
				carry = idx;
			}
			bool ext = false;
			if (j < kl && k[j] == '*') {
				ext = true;
				j++;
			}
			if (j == kl) {
				p->is2231 = true;
				p->ext = ext;
				p->idx = idx;
				p->k_len = (size_t)(star - k);
			}
		}
		i = skip_lwsp(s, i, e);
	}
}

static int
param_key_cmp(const struct plist *pl, const struct param *a, const struct param *b)
{
	size_t n = a->k_len < b->k_len ? a->k_len : b->k_len;
	int r = memcmp(pk(pl, a), pk(pl, b), n);
	if (r != 0)
		return r;
	return a->k_len < b->k_len ? -1 : a->k_len > b->k_len ? 1 : 0;
}

/* Parses the parameters of s[i, e) into out (reset first), merging RFC 2231 continuations:
 * plain parameters first in their order, then the RFC 2231 ones sorted by name; a complete
 * sequence key*0..key*N becomes "key" (or "key*" with its charset'lang' prefix when any piece
 * was extended); an incomplete one is kept piece by piece. */
static void
params_parse(struct plist *raw, struct plist *out, const unsigned char *s, size_t i, size_t e)
{
	raw->n = 0;
	buf_reset(&raw->sb);
	out->n = 0;
	buf_reset(&out->sb);
	params_parse_raw(raw, s, i, e);
	size_t order[MIME_PARAMS_MAX], no = 0;
	for (size_t j = 0; j < raw->n; j++) {
		const struct param *p = &raw->p[j];
		if (!p->is2231)
			plist_add(out, pk(raw, p), p->k_len, pv(raw, p), p->v_len);
		else
			order[no++] = j;
	}
	/* stable insertion sort by (key, idx); n <= MIME_PARAMS_MAX */
	for (size_t a = 1; a < no; a++) {
		size_t v = order[a], b = a;
		while (b > 0) {
			const struct param *x = &raw->p[order[b - 1]], *y = &raw->p[v];
			int c = param_key_cmp(raw, x, y);
			if (c < 0 || (c == 0 && x->idx <= y->idx))
				break;
			order[b] = order[b - 1];
			b--;
		}
		order[b] = v;
	}
	struct buf val;
	buf_init(&val, 0);
	for (size_t a = 0, next; a < no; a = next) {
		const struct param *first = &raw->p[order[a]];
		bool ok = true, have_ext = false;
		uint32_t want = 0;
		for (next = a; next < no; next++) {
			const struct param *p = &raw->p[order[next]];
			if (param_key_cmp(raw, first, p) != 0)
				break;
			if (p->idx != want)
				ok = false;
			if (p->ext)
				have_ext = true;
			want++;
		}
		if (!ok) {
			for (size_t j = a; j < next; j++) {
				const struct param *p = &raw->p[order[j]];
				buf_reset(&val);
				buf_append(&val, pk(raw, p), p->k_len);
				buf_printf(&val, p->ext ? "*%u*" : "*%u", p->idx);
				plist_add(out, val.data, val.len, pv(raw, p), p->v_len);
			}
			continue;
		}
		buf_reset(&val);
		if (!first->ext && have_ext)
			buf_append(&val, "''", 2);
		for (size_t j = a; j < next; j++) {
			const struct param *p = &raw->p[order[j]];
			const unsigned char *v = pv(raw, p);
			if (!p->ext && have_ext) {
				for (size_t x = 0; x < p->v_len; x++) {
					if (v[x] == '%')
						buf_append(&val, "%25", 3);
					else
						buf_append_byte(&val, v[x]);
				}
			} else {
				buf_append(&val, v, p->v_len);
			}
		}
		size_t vl = val.len;
		buf_append(&val, pk(raw, first), first->k_len);
		if (have_ext)
			buf_append_byte(&val, '*');
		plist_add(out, val.data + vl, val.len - vl, val.data, vl);
	}
	buf_deinit(&val);
}

static const struct param *
plist_find(const struct plist *pl, const char *key)
{
	for (size_t j = 0; j < pl->n; j++)
		if (slice_ieq(pk(pl, &pl->p[j]), pl->p[j].k_len, key))
			return &pl->p[j];
	return NULL;
}

/* Content-Type: type "/" subtype (RFC 2045 §5.1). Returns true when both parsed and nothing but
 * parameters follow (then *params_r is where they start). On false, *type_r is empty (an invalid
 * field) or the lone type of "Content-Type: text" (kept without subtype, as Dovecot). */
static bool
ctype_parse(const unsigned char *s, size_t e, struct slice *type_r, struct slice *sub_r,
            size_t *params_r)
{
	size_t i = skip_lwsp(s, 0, e), t0 = i;
	*type_r = *sub_r = slice_make("", 0);
	while (i < e && is_token(s[i]))
		i++;
	if (i == t0)
		return false;
	size_t t1 = i;
	i = skip_lwsp(s, i, e);
	if (i >= e) { /* "text" alone: kept without subtype and parameters (as Dovecot) */
		*type_r = slice_make(s + t0, t1 - t0);
		return false;
	}
	if (s[i] != '/')
		return false;
	i = skip_lwsp(s, i + 1, e);
	size_t s0 = i;
	while (i < e && is_token(s[i]))
		i++;
	size_t s1 = i;
	i = skip_lwsp(s, i, e);
	if (i < e && s[i] != ';')
		return false; /* junk after the subtype: the whole field is invalid */
	*type_r = slice_make(s + t0, t1 - t0);
	*sub_r = slice_make(s + s0, s1 - s0);
	*params_r = i;
	return true;
}

/* ---- the part tree ---- */

enum {
	F_CT,
	F_CTE,
	F_CID,
	F_CDESC,
	F_CMD5,
	F_CDISP,
	F_CLANG,
	F_CLOC,
	F_N,
};
static const char *const field_names[F_N] = {
    "Content-Type", "Content-Transfer-Encoding", "Content-ID",       "Content-Description",
    "Content-MD5",  "Content-Disposition",       "Content-Language", "Content-Location",
};

enum {
	N_MULTIPART = 1 << 0, /* multipart/x, children are its parts */
	N_RFC822 = 1 << 1,    /* message/rfc822, one child: the encapsulated message */
	N_TEXT = 1 << 2,      /* text/x (or the text/plain default) */
	N_OPAQUE = 1 << 3,    /* multipart or message past a limit: application/octet-stream */
	N_DIGEST = 1 << 4,    /* no Content-Type inside multipart/digest: message/rfc822 */
	N_HAS_CT = 1 << 5,    /* a Content-Type with at least a type token */
	N_IS_DIGEST = 1 << 6, /* multipart/digest: its parts default to message/rfc822 */
	N_MESSAGE = 1 << 7,   /* the top level or an encapsulated message */
};

struct node {
	size_t hdr_start, hdr_end, body_start, body_end;
	size_t f_off[F_N], f_len[F_N];
	uint32_t fields; /* bit i: field i present */
	uint32_t nchildren, subtree, depth;
	uint32_t flags;
};

struct mp {
	const unsigned char *m;
	size_t len, pos;
	struct node *nodes;
	size_t n, cap;
	struct {
		struct buf b;
	} bnd[MIME_DEPTH_MAX + 1];
	size_t nbnd;
	size_t gave_break_at; /* boundary line whose break an empty part gave up, or SIZE_MAX */
	struct plist raw, pl;
};

/* Index of the boundary (innermost first) that the line at pos is a delimiter for, or -1.
 * *close_r: the closing delimiter "--b--". */
static int
boundary_at(const struct mp *p, size_t pos, bool *close_r)
{
	if (p->nbnd == 0 || p->len - pos < 2 || p->m[pos] != '-' || p->m[pos + 1] != '-')
		return -1;
	size_t rest = p->len - pos - 2;
	const unsigned char *l = p->m + pos + 2;
	int best = -1;
	size_t best_len = 0;
	/* innermost first; the longest matching prefix wins (as Dovecot's boundary_find) */
	for (size_t i = p->nbnd; i-- > 0;) {
		const struct buf *b = &p->bnd[i].b;
		if (rest >= b->len && (best < 0 || b->len > best_len) &&
		    memcmp(l, b->data ? b->data : (const unsigned char *)"", b->len) == 0) {
			best = (int)i;
			best_len = b->len;
		}
	}
	if (best >= 0)
		*close_r = rest - best_len >= 2 && l[best_len] == '-' && l[best_len + 1] == '-';
	return best;
}

/* The end of the content before the boundary line at pos: its line break belongs to the
 * boundary (RFC 2046 §5.1.1). */
static size_t
before_break(const struct mp *p, size_t pos, size_t floor)
{
	if (pos > floor && p->m[pos - 1] == '\n') {
		pos--;
		if (pos > floor && p->m[pos - 1] == '\r')
			pos--;
	}
	return pos;
}

static uint32_t
node_new(struct mp *p, uint32_t depth)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->nodes = xrealloc(p->nodes, p->cap * sizeof *p->nodes);
	}
	struct node *nd = &p->nodes[p->n];
	memset(nd, 0, sizeof *nd);
	nd->depth = depth;
	nd->subtree = 1;
	return (uint32_t)p->n++;
}

/* Skips lines from p->pos up to a boundary line (returns its index, p->pos at the line) or the
 * end (returns -1, p->pos == len). */
static int
skip_to_boundary(struct mp *p, bool *close_r)
{
	while (p->pos < p->len) {
		int b = boundary_at(p, p->pos, close_r);
		if (b >= 0)
			return b;
		p->pos = line_next(p->m, p->pos, p->len);
	}
	return -1;
}

static int parse_part(struct mp *p, uint32_t ni, bool in_digest, bool *close_r);

/* Reads the header of node ni at p->pos: up to the blank line (included), a boundary line, or
 * the end. Returns the boundary hit (-1 for none). */
static int
parse_header(struct mp *p, uint32_t ni, bool in_digest, bool *close_r)
{
	size_t start = p->pos;
	int hit = -1;
	struct node *nd = &p->nodes[ni];
	nd->hdr_start = start;
	for (;;) {
		if (p->pos >= p->len) {
			nd->hdr_end = nd->body_start = p->len;
			break;
		}
		hit = boundary_at(p, p->pos, close_r);
		if (hit >= 0) {
			nd->hdr_end = nd->body_start = before_break(p, p->pos, start);
			break;
		}
		size_t next = line_next(p->m, p->pos, p->len);
		size_t l = next - p->pos;
		if ((l == 1 && p->m[p->pos] == '\n') ||
		    (l == 2 && p->m[p->pos] == '\r' && p->m[p->pos + 1] == '\n')) {
			p->pos = next;
			nd->hdr_end = nd->body_start = next;
			break;
		}
		p->pos = next;
	}
	/* the Content-* fields: first occurrence wins (as Dovecot) */
	size_t fp = nd->hdr_start, voff, vlen;
	struct slice name;
	bool mime_version = false;
	while (mime_field_next(p->m, nd->hdr_end, &fp, &name, &voff, &vlen)) {
		if (slice_ieq((const unsigned char *)name.p, name.len, "MIME-Version"))
			mime_version = true;
		if (name.len < 10 || strncasecmp(name.p, "Content-", 8) != 0)
			continue;
		for (int f = 0; f < F_N; f++) {
			if (!(nd->fields & (1u << f)) &&
			    slice_ieq((const unsigned char *)name.p, name.len, field_names[f])) {
				nd->fields |= 1u << f;
				nd->f_off[f] = voff;
				nd->f_len[f] = vlen;
			}
		}
	}
	/* a message's Content-* fields count only in a MIME message: one with MIME-Version or
	 * Content-Type (as Dovecot); parts of a multipart always are MIME */
	if ((nd->flags & N_MESSAGE) && !mime_version && !(nd->fields & (1u << F_CT)))
		nd->fields = 0;
	struct slice type, sub;
	size_t params_at = 0;
	bool have_sub = false;
	if (nd->fields & (1u << F_CT)) {
		have_sub =
		    ctype_parse(p->m + nd->f_off[F_CT], nd->f_len[F_CT], &type, &sub, &params_at);
		if (type.len > 0)
			nd->flags |= N_HAS_CT;
	}
	if (!(nd->flags & N_HAS_CT)) {
		nd->flags |= in_digest ? N_DIGEST | N_RFC822 : N_TEXT;
	} else if (slice_ieq((const unsigned char *)type.p, type.len, "text")) {
		nd->flags |= N_TEXT;
	} else if (slice_ieq((const unsigned char *)type.p, type.len, "multipart")) {
		/* without a subtype it is opaque data (as Dovecot) */
		nd->flags |= have_sub ? N_MULTIPART : N_OPAQUE;
	} else if (slice_ieq((const unsigned char *)type.p, type.len, "message") &&
	           slice_ieq((const unsigned char *)sub.p, sub.len, "rfc822")) {
		nd->flags |= N_RFC822;
	}
	if ((nd->flags & (N_MULTIPART | N_RFC822)) &&
	    (nd->depth >= MIME_DEPTH_MAX || p->n >= MIME_PARTS_MAX)) {
		nd->flags &= ~(uint32_t)(N_MULTIPART | N_RFC822 | N_DIGEST);
		nd->flags |= N_OPAQUE;
	}
	/* the boundary, pushed by the caller once the header is done */
	if ((nd->flags & N_MULTIPART) && have_sub) {
		if (slice_ieq((const unsigned char *)sub.p, sub.len, "digest"))
			nd->flags |= N_IS_DIGEST;
		const unsigned char *ct = p->m + nd->f_off[F_CT];
		params_parse(&p->raw, &p->pl, ct, params_at, nd->f_len[F_CT]);
		const struct param *b = plist_find(&p->pl, "boundary");
		if (b != NULL && p->nbnd < MIME_DEPTH_MAX + 1) {
			struct buf *bb = &p->bnd[p->nbnd].b;
			buf_reset(bb);
			buf_append(bb, pv(&p->pl, b), b->v_len);
			p->nbnd++;
			return hit < 0 ? -2 : hit; /* -2: no hit, boundary pushed */
		}
	}
	return hit;
}

/* Parses node ni from p->pos (its header) to the end of its body, which is a boundary line of
 * an ancestor (returned, p->pos at that line) or the end of the input (-1). */
static int
parse_part(struct mp *p, uint32_t ni, bool in_digest, bool *close_r)
{
	size_t depth = p->nodes[ni].depth;
	size_t nbnd_before = p->nbnd;
	int hit = parse_header(p, ni, in_digest, close_r);
	bool pushed = p->nbnd > nbnd_before;
	if (hit == -2)
		hit = -1;
	if (hit >= 0 && hit < (int)nbnd_before) {
		/* the header was cut by an ancestor's boundary: empty body */
		p->nbnd = nbnd_before;
		p->nodes[ni].body_end = p->nodes[ni].body_start;
		if (p->nodes[ni].hdr_end < p->pos)
			p->gave_break_at = p->pos; /* its ancestors keep that break */
		return hit;
	}
	/* floor: a line break that ended a delimiter line stays in this body (as Dovecot) */
	size_t floor = p->nodes[ni].body_start;
	if (pushed) {
		int own = (int)nbnd_before;
		bool digest = p->nodes[ni].flags & N_IS_DIGEST;
		hit = skip_to_boundary(p, close_r); /* preamble */
		while (hit == own && !*close_r) {
			p->pos = line_next(p->m, p->pos, p->len);
			floor = p->pos;
			if (p->n >= MIME_PARTS_MAX) { /* the rest is not described */
				hit = skip_to_boundary(p, close_r);
				continue;
			}
			uint32_t ci = node_new(p, (uint32_t)depth + 1);
			hit = parse_part(p, ci, digest, close_r);
			p->nodes[ni].nchildren++;
			p->nodes[ni].subtree += p->nodes[ci].subtree;
		}
		p->nbnd = nbnd_before;
		if (hit == own) { /* closing delimiter, then the epilogue */
			p->pos = line_next(p->m, p->pos, p->len);
			floor = p->pos;
			hit = skip_to_boundary(p, close_r);
		}
	} else if (p->nodes[ni].flags & N_RFC822) {
		uint32_t ci = node_new(p, (uint32_t)depth + 1);
		p->nodes[ci].flags |= N_MESSAGE;
		hit = parse_part(p, ci, false, close_r);
		struct node *nd = &p->nodes[ni], *c = &p->nodes[ci];
		nd->nchildren = 1;
		nd->subtree += c->subtree;
		/* a child that gave its blank line to the boundary still has it in here */
		nd->body_end = hit >= 0 && p->pos == p->gave_break_at ? p->pos : c->body_end;
		if (hit >= 0 && c->hdr_start == c->body_end && nd->hdr_end == nd->body_start &&
		    c->body_end == nd->body_start) {
			/* empty message right before a boundary: as for an empty body below */
			size_t at = before_break(p, nd->body_start, nd->hdr_start);
			nd->hdr_end = nd->body_start = nd->body_end = at;
			c->hdr_start = c->hdr_end = c->body_start = c->body_end = at;
		}
		return hit;
	} else {
		hit = skip_to_boundary(p, close_r);
	}
	struct node *nd = &p->nodes[ni];
	if (hit >= 0 && p->pos == nd->body_start && nd->hdr_end == nd->body_start &&
	    floor == nd->body_start) {
		/* empty body right before an ancestor's boundary: the blank line's break is the
		 * boundary's (as Dovecot) */
		nd->hdr_end = nd->body_start = nd->body_end =
		    before_break(p, p->pos, nd->hdr_start);
		p->gave_break_at = p->pos;
		return hit;
	}
	if (hit < 0)
		nd->body_end = p->len;
	else if (p->pos == p->gave_break_at) /* ancestors of that part keep the break */
		nd->body_end = p->pos;
	else
		nd->body_end = before_break(p, p->pos, floor);
	return hit;
}

static void
mp_deinit(struct mp *p)
{
	for (size_t i = 0; i <= MIME_DEPTH_MAX; i++)
		buf_deinit(&p->bnd[i].b);
	buf_deinit(&p->raw.sb);
	buf_deinit(&p->pl.sb);
	x_free(&p->nodes);
}

static void
mp_parse(struct mp *p, const unsigned char *msg, size_t len)
{
	memset(p, 0, sizeof *p);
	p->m = msg ? msg : (const unsigned char *)"";
	p->len = msg ? len : 0;
	for (size_t i = 0; i <= MIME_DEPTH_MAX; i++)
		buf_init(&p->bnd[i].b, 0);
	buf_init(&p->raw.sb, 0);
	buf_init(&p->pl.sb, 0);
	p->gave_break_at = SIZE_MAX;
	uint32_t root = node_new(p, 0);
	bool close;
	p->nodes[root].flags |= N_MESSAGE;
	parse_part(p, root, false, &close);
}

static size_t
count_lines(const unsigned char *m, size_t s, size_t e)
{
	size_t n = 0;
	while (s < e) {
		const unsigned char *lf = memchr(m + s, '\n', e - s);
		if (lf == NULL)
			break;
		n++;
		s = (size_t)(lf - m) + 1;
	}
	return n;
}

/* ---- ENVELOPE (RFC 9051 §7.5.2) ---- */

enum { A_FROM, A_SENDER, A_REPLY_TO, A_TO, A_CC, A_BCC, A_N };
static const char *const addr_fields[A_N] = {"From", "Sender", "Reply-To", "To", "Cc", "Bcc"};

struct wctx {
	struct mp *p;
	struct buf name, adl, mbox, host; /* one address being parsed */
	struct buf addr[A_N];             /* "(...)(...)" per address field */
	size_t naddr[A_N];
};

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
			i = parse_quoted(s, i, e, out, &closed);
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
			i = parse_quoted(s, i, e, out, &closed);
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
		i = skip_cfws(s, i, e, cs, ce);
		if (i >= e || s[i] != '.')
			break;
		buf_append_byte(out, '.');
		i = skip_cfws(s, i + 1, e, cs, ce);
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
	i = skip_cfws(s, i, e, cs, ce);
	if (i < e && s[i] == '@') {
		*domain_r = true;
		i = skip_cfws(s, i + 1, e, cs, ce);
		i = parse_dotwords(s, i, e, &w->host, NULL, cs, ce);
		i = skip_cfws(s, i, e, cs, ce);
	}
	return i;
}

static void
emit_address(struct buf *out, const struct buf *name, bool have_name, const struct buf *adl,
             const struct buf *mbox, const struct buf *host, bool have_domain, bool bad)
{
	buf_append_byte(out, '(');
	if (have_name)
		env_human(out, name->data, name->len);
	else
		buf_append_str(out, "NIL");
	buf_append_byte(out, ' ');
	if (adl->len > 0)
		env_string(out, adl->data, adl->len);
	else
		buf_append_str(out, "NIL");
	buf_append_byte(out, ' ');
	if (mbox->len > 0)
		env_string(out, mbox->data, mbox->len);
	else
		buf_append_str(out, "\"MISSING_MAILBOX\""); /* as Dovecot fills missing parts */
	buf_append_byte(out, ' ');
	if (bad) /* an unterminated <...>: Dovecot's marker */
		buf_append_str(out, "\"SYNTAX_ERROR\"");
	else if (have_domain && host->len > 0)
		env_string(out, host->data, host->len);
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
			env_string(out, w->name.data, w->name.len);
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

static void
trim_value(const unsigned char *m, size_t *off, size_t *len)
{
	while (*len > 0 && (is_wsp(m[*off]) || m[*off] == '\r' || m[*off] == '\n')) {
		(*off)++;
		(*len)--;
	}
}

static void
write_envelope(struct wctx *w, const struct node *nd, struct buf *out)
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
				env_human(out, m + o, l);
			else
				env_string(out, m + o, l);
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

/* ---- BODY / BODYSTRUCTURE (RFC 9051 §7.5.2, RFC 3501 §7.4.2) ---- */

static bool
field_get(const struct mp *p, const struct node *nd, int f, const unsigned char **v, size_t *n)
{
	if (!(nd->fields & (1u << f)))
		return false;
	size_t o = nd->f_off[f], l = nd->f_len[f];
	trim_value(p->m, &o, &l);
	*v = p->m + o;
	*n = l;
	return true;
}

static void
write_nstring_field(struct wctx *w, const struct node *nd, int f, struct buf *out)
{
	const unsigned char *v;
	size_t n;
	if (field_get(w->p, nd, f, &v, &n))
		bs_string(out, v, n);
	else
		buf_append_str(out, "NIL");
}

/* The Content-Transfer-Encoding token, or NULL when absent or not a single token. */
static bool
cte_get(const struct mp *p, const struct node *nd, struct slice *tok)
{
	const unsigned char *v;
	size_t n;
	if (!field_get(p, nd, F_CTE, &v, &n))
		return false;
	size_t i = 0;
	while (i < n && is_token(v[i]))
		i++;
	if (i == 0 || skip_lwsp(v, i, n) != n)
		return false;
	*tok = slice_make(v, i);
	return true;
}

/* Parameter list "(k v ...)" or NIL; text parts get "charset" "us-ascii" when they have no
 * charset (as Dovecot). */
static void
write_params(struct wctx *w, const unsigned char *s, size_t i, size_t e, bool text, struct buf *out)
{
	struct plist *pl = &w->p->pl;
	params_parse(&w->p->raw, pl, s, i, e);
	bool add_cs = text && plist_find(pl, "charset") == NULL;
	if (pl->n == 0 && !add_cs) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_byte(out, '(');
	for (size_t j = 0; j < pl->n; j++) {
		if (j > 0)
			buf_append_byte(out, ' ');
		bs_string(out, pk(pl, &pl->p[j]), pl->p[j].k_len);
		buf_append_byte(out, ' ');
		bs_string(out, pv(pl, &pl->p[j]), pl->p[j].v_len);
	}
	if (add_cs)
		buf_append_str(out, pl->n > 0 ? " \"charset\" \"us-ascii\""
		                              : "\"charset\" \"us-ascii\"");
	buf_append_byte(out, ')');
}

static void
write_ct_params(struct wctx *w, const struct node *nd, bool text, struct buf *out)
{
	struct slice t, s;
	size_t pa = 0;
	const unsigned char *ct = w->p->m + nd->f_off[F_CT];
	if ((nd->flags & N_HAS_CT) && ctype_parse(ct, nd->f_len[F_CT], &t, &s, &pa))
		write_params(w, ct, pa, nd->f_len[F_CT], text, out);
	else
		write_params(w, ct, 0, 0, text, out);
}

static void
write_disposition(struct wctx *w, const struct node *nd, struct buf *out)
{
	const unsigned char *v;
	size_t n;
	if (!field_get(w->p, nd, F_CDISP, &v, &n)) {
		buf_append_str(out, "NIL");
		return;
	}
	size_t i = skip_lwsp(v, 0, n), t0 = i;
	while (i < n && is_token(v[i]))
		i++;
	if (i == t0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_byte(out, '(');
	bs_string(out, v + t0, i - t0);
	buf_append_byte(out, ' ');
	write_params(w, v, skip_lwsp(v, i, n), n, false, out);
	buf_append_byte(out, ')');
}

static void
write_language(struct wctx *w, const struct node *nd, struct buf *out)
{
	const unsigned char *v;
	size_t n, count = 0;
	if (field_get(w->p, nd, F_CLANG, &v, &n)) {
		size_t i = skip_lwsp(v, 0, n);
		while (i < n) {
			size_t a = i;
			while (i < n && is_atext(v[i]))
				i++;
			if (i == a)
				break;
			buf_append_str(out, count++ == 0 ? "(" : " ");
			bs_string(out, v + a, i - a);
			i = skip_lwsp(v, i, n);
			if (i >= n || v[i] != ',')
				break;
			i = skip_lwsp(v, i + 1, n);
		}
	}
	buf_append_str(out, count > 0 ? ")" : "NIL");
}

static void
write_ext_common(struct wctx *w, const struct node *nd, struct buf *out)
{
	buf_append_byte(out, ' ');
	write_disposition(w, nd, out);
	buf_append_byte(out, ' ');
	write_language(w, nd, out);
	buf_append_byte(out, ' ');
	write_nstring_field(w, nd, F_CLOC, out);
}

#define EMPTY_TEXT "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"
#define EMPTY_EXT  " NIL NIL NIL NIL"

/* Dovecot writes a top-level text/plain; charset=us-ascii 7bit part with nothing else in its
 * header as the lower-case default (imap_bodystructure_is_plain_7bit). */
static bool
is_plain_7bit(struct wctx *w, const struct node *nd)
{
	if (!(nd->flags & N_TEXT) || (nd->flags & N_DIGEST))
		return false;
	if (nd->flags & N_HAS_CT) {
		struct slice t, s;
		size_t pa = 0;
		const unsigned char *ct = w->p->m + nd->f_off[F_CT];
		if (!ctype_parse(ct, nd->f_len[F_CT], &t, &s, &pa) ||
		    !slice_ieq((const unsigned char *)s.p, s.len, "plain"))
			return false;
		struct plist *pl = &w->p->pl;
		params_parse(&w->p->raw, pl, ct, pa, nd->f_len[F_CT]);
		if (pl->n > 1 ||
		    (pl->n == 1 && !(slice_ieq(pk(pl, &pl->p[0]), pl->p[0].k_len, "charset") &&
		                     slice_ieq(pv(pl, &pl->p[0]), pl->p[0].v_len, "us-ascii"))))
			return false;
	}
	struct slice cte;
	if (cte_get(w->p, nd, &cte) && !slice_ieq((const unsigned char *)cte.p, cte.len, "7bit"))
		return false;
	uint32_t other = 1u << F_CID | 1u << F_CDESC | 1u << F_CMD5 | 1u << F_CDISP |
	                 1u << F_CLANG | 1u << F_CLOC;
	return (nd->fields & other) == 0;
}

static void
write_part(struct wctx *w, uint32_t ni, bool ext, struct buf *out)
{
	const struct mp *p = w->p;
	const struct node *nd = &p->nodes[ni];
	struct slice type = slice_make("", 0), sub = slice_make("", 0);
	size_t pa;
	if (nd->flags & N_HAS_CT)
		ctype_parse(p->m + nd->f_off[F_CT], nd->f_len[F_CT], &type, &sub, &pa);
	if (nd->flags & N_MULTIPART) {
		buf_append_byte(out, '(');
		if (nd->nchildren == 0) {
			buf_append_str(out, EMPTY_TEXT);
			buf_append_str(out, ext ? EMPTY_EXT ")" : ")");
		}
		for (uint32_t c = ni + 1, k = 0; k < nd->nchildren; k++) {
			write_part(w, c, ext, out);
			c += p->nodes[c].subtree;
		}
		buf_append_byte(out, ' ');
		bs_string(out, (const unsigned char *)sub.p, sub.len);
		if (ext) {
			buf_append_byte(out, ' ');
			write_ct_params(w, nd, false, out);
			write_ext_common(w, nd, out);
		}
		buf_append_byte(out, ')');
		return;
	}
	size_t size = nd->body_end - nd->body_start;
	bool text = nd->flags & N_TEXT;
	if (ni == 0 && is_plain_7bit(w, nd)) {
		buf_printf(out, EMPTY_TEXT);
		out->len -= 4; /* " 0 0" */
		buf_printf(out, " %zu %zu%s)", size,
		           count_lines(p->m, nd->body_start, nd->body_end), ext ? EMPTY_EXT : "");
		return;
	}
	buf_append_byte(out, '(');
	if (nd->flags & N_OPAQUE) {
		buf_append_str(out, "\"application\" \"octet-stream\"");
	} else if (!(nd->flags & N_HAS_CT)) {
		buf_append_str(out, nd->flags & N_DIGEST ? "\"message\" \"rfc822\""
		                                         : "\"text\" \"plain\"");
	} else {
		bs_string(out, (const unsigned char *)type.p, type.len);
		buf_append_byte(out, ' ');
		bs_string(out, (const unsigned char *)sub.p, sub.len);
	}
	buf_append_byte(out, ' ');
	write_ct_params(w, nd, text, out);
	buf_append_byte(out, ' ');
	write_nstring_field(w, nd, F_CID, out);
	buf_append_byte(out, ' ');
	write_nstring_field(w, nd, F_CDESC, out);
	buf_append_byte(out, ' ');
	struct slice cte;
	if (cte_get(p, nd, &cte))
		bs_string(out, (const unsigned char *)cte.p, cte.len);
	else
		bs_cstr(out, "7bit");
	buf_printf(out, " %zu", size);
	if (text)
		buf_printf(out, " %zu", count_lines(p->m, nd->body_start, nd->body_end));
	if (nd->flags & N_RFC822) {
		buf_append_byte(out, ' ');
		if (nd->nchildren == 1) {
			write_envelope(w, &p->nodes[ni + 1], out);
			buf_append_byte(out, ' ');
			write_part(w, ni + 1, ext, out);
		} else {
			buf_append_str(out,
			               "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) " EMPTY_TEXT);
			buf_append_str(out, ext ? EMPTY_EXT ")" : ")");
		}
		buf_printf(out, " %zu", count_lines(p->m, nd->body_start, nd->body_end));
	}
	if (ext) {
		buf_append_byte(out, ' ');
		write_nstring_field(w, nd, F_CMD5, out);
		write_ext_common(w, nd, out);
	}
	buf_append_byte(out, ')');
}

/* ---- the part table ----
 * "LMP1", u32 count, then count records in pre-order (little-endian): u64 hdr_start, hdr_end,
 * body_start, body_end; u32 nchildren, subtree (nodes in the subtree, itself included), flags. */
#define PT_MAGIC "LMP1"
#define PT_HDR   8
#define PT_REC   44
enum { PT_MULTIPART = 1, PT_MESSAGE = 2 };

static void
put_u32(unsigned char *d, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		d[i] = (unsigned char)(v >> (8 * i));
}

static void
put_u64(unsigned char *d, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		d[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get_u32(const unsigned char *d)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | d[i];
	return v;
}

static uint64_t
get_u64(const unsigned char *d)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | d[i];
	return v;
}

static void
parts_write(const struct mp *p, struct buf *out)
{
	unsigned char h[PT_HDR], r[PT_REC];
	memcpy(h, PT_MAGIC, 4);
	put_u32(h + 4, (uint32_t)p->n);
	buf_append(out, h, sizeof h);
	for (size_t i = 0; i < p->n; i++) {
		const struct node *nd = &p->nodes[i];
		put_u64(r, nd->hdr_start);
		put_u64(r + 8, nd->hdr_end);
		put_u64(r + 16, nd->body_start);
		put_u64(r + 24, nd->body_end);
		put_u32(r + 32, nd->nchildren);
		put_u32(r + 36, nd->subtree);
		uint32_t fl = 0;
		if (nd->flags & N_MULTIPART)
			fl |= PT_MULTIPART;
		if ((nd->flags & N_RFC822) && nd->nchildren == 1)
			fl |= PT_MESSAGE;
		put_u32(r + 40, fl);
		buf_append(out, r, sizeof r);
	}
}

struct pt_rec {
	uint64_t hs, he, bs, be;
	uint32_t nchildren, subtree, flags;
};

static bool
pt_get(struct slice parts, uint32_t count, uint32_t i, struct pt_rec *r)
{
	if (i >= count)
		return false;
	const unsigned char *d = (const unsigned char *)parts.p + PT_HDR + (size_t)i * PT_REC;
	r->hs = get_u64(d);
	r->he = get_u64(d + 8);
	r->bs = get_u64(d + 16);
	r->be = get_u64(d + 24);
	r->nchildren = get_u32(d + 32);
	r->subtree = get_u32(d + 36);
	r->flags = get_u32(d + 40);
	return r->subtree >= 1;
}

bool
mime_parts_find(struct slice parts, const uint32_t *path, size_t n, struct mime_section *s_r)
{
	memset(s_r, 0, sizeof *s_r);
	if (parts.len < PT_HDR || memcmp(parts.p, PT_MAGIC, 4) != 0)
		return false;
	uint32_t count = get_u32((const unsigned char *)parts.p + 4);
	if (count == 0 || (parts.len - PT_HDR) / PT_REC < count)
		return false;
	uint32_t cur = 0;
	struct pt_rec r;
	if (!pt_get(parts, count, cur, &r))
		return false;
	if (n == 0) {
		s_r->header_start = s_r->msg_header_start = r.hs;
		s_r->header_end = s_r->msg_header_end = r.he;
		s_r->body_start = s_r->text_start = r.bs;
		s_r->body_end = s_r->text_end = r.be;
		s_r->is_message = true;
		s_r->is_multipart = r.flags & PT_MULTIPART;
		return true;
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t num = path[k];
		if (num == 0)
			return false;
		if (r.flags & PT_MULTIPART) {
			if (num > r.nchildren)
				return false;
			uint32_t c = cur + 1;
			struct pt_rec cr;
			for (uint32_t j = 1;; j++) {
				if (!pt_get(parts, count, c, &cr))
					return false;
				if (j == num)
					break;
				if (cr.subtree > count - c)
					return false;
				c += cr.subtree;
			}
			cur = c;
			r = cr;
		} else if (num != 1) {
			return false; /* a non-multipart has only part 1: itself (RFC 9051 §6.4.5)
			               */
		}
		if (k + 1 < n && (r.flags & PT_MESSAGE)) { /* continue inside message/rfc822 */
			cur++;
			if (!pt_get(parts, count, cur, &r))
				return false;
		}
	}
	s_r->header_start = r.hs;
	s_r->header_end = r.he;
	s_r->body_start = s_r->text_start = r.bs;
	s_r->body_end = s_r->text_end = r.be;
	s_r->is_multipart = r.flags & PT_MULTIPART;
	struct pt_rec er;
	if ((r.flags & PT_MESSAGE) && pt_get(parts, count, cur + 1, &er)) {
		s_r->is_message = true;
		s_r->text_start = er.bs;
		s_r->text_end = er.be;
		s_r->msg_header_start = er.hs;
		s_r->msg_header_end = er.he;
	}
	return true;
}

/* ---- mime_meta_build ---- */

static char *
buf_steal(struct buf *b)
{
	char *s = b->data ? (char *)b->data : xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

static void
wctx_init(struct wctx *w, struct mp *p)
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

static void
wctx_deinit(struct wctx *w)
{
	buf_deinit(&w->name);
	buf_deinit(&w->adl);
	buf_deinit(&w->mbox);
	buf_deinit(&w->host);
	for (int a = 0; a < A_N; a++)
		buf_deinit(&w->addr[a]);
}

int
mime_meta_build(const unsigned char *msg, size_t len, struct mime_meta *m)
{
	memset(m, 0, sizeof *m);
	buf_init(&m->parts, 0);
	if (!mime_init())
		return -1;
	struct mp p;
	mp_parse(&p, msg, len);
	struct wctx w;
	wctx_init(&w, &p);
	struct buf b;
	buf_init(&b, 0);
	write_envelope(&w, &p.nodes[0], &b);
	m->envelope = buf_steal(&b);
	write_part(&w, 0, false, &b);
	m->body = buf_steal(&b);
	write_part(&w, 0, true, &b);
	m->bodystructure = buf_steal(&b);
	parts_write(&p, &m->parts);
	wctx_deinit(&w);
	mp_deinit(&p);
	return 0;
}

void
mime_meta_deinit(struct mime_meta *m)
{
	x_free(&m->envelope);
	x_free(&m->body);
	x_free(&m->bodystructure);
	buf_deinit(&m->parts);
}

/* ---- for mime_search.c ---- */

size_t
mime_header_end(const unsigned char *msg, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		size_t next = line_next(msg, pos, len), l = next - pos;
		if ((l == 1 && msg[pos] == '\n') ||
		    (l == 2 && msg[pos] == '\r' && msg[pos + 1] == '\n'))
			return next;
		pos = next;
	}
	return len;
}

void
mime_text_parts(const unsigned char *msg, size_t len, mime_text_fn *fn, void *ctx)
{
	struct mp p;
	mp_parse(&p, msg, len);
	char cs[64];
	for (size_t i = 0; i < p.n; i++) {
		const struct node *nd = &p.nodes[i];
		if (!(nd->flags & N_TEXT))
			continue;
		struct mime_text_part tp = {
		    .body = slice_make(p.m + nd->body_start, nd->body_end - nd->body_start),
		    .charset = slice_make("", 0),
		    .cte = slice_make("", 0),
		};
		struct slice t, s;
		size_t pa = 0;
		const unsigned char *ct = p.m + nd->f_off[F_CT];
		if ((nd->flags & N_HAS_CT) && ctype_parse(ct, nd->f_len[F_CT], &t, &s, &pa)) {
			params_parse(&p.raw, &p.pl, ct, pa, nd->f_len[F_CT]);
			const struct param *c = plist_find(&p.pl, "charset");
			if (c != NULL && c->v_len < sizeof cs) {
				memcpy(cs, pv(&p.pl, c), c->v_len);
				cs[c->v_len] = '\0';
				tp.charset = slice_make(cs, c->v_len);
			}
		}
		cte_get(&p, nd, &tp.cte);
		if (!fn(ctx, &tp))
			break;
	}
	mp_deinit(&p);
}
