/* Text for IMAP SEARCH (RFC 9051 §6.4.4) and SORT/THREAD base subjects (RFC 5256 §2.1): header
 * values RFC 2047-decoded to UTF-8 (GMime), body text parts transfer-decoded and converted to
 * UTF-8 (GMime encoders, iconv through GMime's charset aliases), and a case-insensitive
 * substring test with simple case folding for Latin, Greek and Cyrillic. The part structure
 * comes from mime.c (mime_private.h), so SEARCH sees exactly the parts FETCH serves.
 *
 * Work is linear: folding is per code point into one buffer, the substring test is glibc's
 * two-way memmem, and body decoding stops once max bytes have been produced. */
#include <errno.h>
#include <gmime/gmime.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"
#include "mail/mime_private.h"
#include "util/xalloc.h"

/* ---- header values ---- */

static bool
needs_decode(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 0x80 || (p[i] == '=' && i + 1 < n && p[i + 1] == '?') || p[i] == 0)
			return true;
	return false;
}

void
mime_search_header(const unsigned char *msg, size_t len, const char *field, struct buf *out)
{
	if (msg == NULL || !mime_init())
		return;
	size_t he = mime_header_end(msg, len), pos = 0, voff, vlen;
	struct slice name;
	struct buf v;
	buf_init(&v, 0);
	while (mime_field_next(msg, he, &pos, &name, &voff, &vlen)) {
		if (field != NULL && !slice_ieq((const unsigned char *)name.p, name.len, field))
			continue;
		buf_reset(&v);
		const unsigned char *p = msg + voff;
		size_t i = 0;
		while (i < vlen && is_wsp(p[i]))
			i++;
		for (; i < vlen; i++) /* unfold (RFC 5322 §2.2.3); NUL would end the C string */
			if (p[i] != '\r' && p[i] != '\n')
				buf_append_byte(&v, p[i] ? p[i] : ' ');
		if (!needs_decode(v.data ? v.data : (const unsigned char *)"", v.len)) {
			buf_append(out, v.data, v.len);
		} else {
			char *d = g_mime_utils_header_decode_text(NULL, buf_cstr(&v));
			if (d != NULL)
				buf_append_str(out, d);
			g_free(d);
		}
		buf_append_byte(out, '\n');
	}
	buf_deinit(&v);
}

/* ---- body text ---- */

struct body_ctx {
	struct buf *out;
	size_t start, max;
	bool first, full;
	unsigned char *dec; /* transfer-decoded bytes, reused */
	size_t dec_cap;
};

static size_t
room(const struct body_ctx *c)
{
	size_t used = c->out->len - c->start;
	return used >= c->max ? 0 : c->max - used;
}

/* Appends at most room() bytes, not cutting a UTF-8 sequence. */
static void
put(struct body_ctx *c, const void *p, size_t n)
{
	size_t r = room(c);
	if (n > r) {
		const unsigned char *u = p;
		size_t k = r;
		while (k > 0 && k > r - 3 && (u[k] & 0xc0) == 0x80)
			k--;
		n = k;
		c->full = true;
	}
	buf_append(c->out, p, n);
	if (c->out->overflow)
		c->full = true;
}

static bool
is_utf8_name(struct slice cs)
{
	return cs.len == 0 || (cs.len == 8 && strncasecmp(cs.p, "us-ascii", 8) == 0) ||
	       (cs.len == 5 && strncasecmp(cs.p, "utf-8", 5) == 0) ||
	       (cs.len == 4 && strncasecmp(cs.p, "utf8", 4) == 0) ||
	       (cs.len == 5 && strncasecmp(cs.p, "ascii", 5) == 0);
}

static void
put_converted(struct body_ctx *c, struct slice cs, const unsigned char *p, size_t n)
{
	if (is_utf8_name(cs)) {
		put(c, p, n);
		return;
	}
	char name[64];
	if (cs.len >= sizeof name) {
		put(c, p, n);
		return;
	}
	memcpy(name, cs.p, cs.len);
	name[cs.len] = '\0';
	GIConv cd = g_mime_iconv_open("UTF-8", name);
	if (cd == (GIConv)-1) {
		put(c, p, n);
		return;
	}
	char *in = (char *)p, chunk[4096];
	size_t inleft = n;
	while (inleft > 0 && !c->full) {
		char *o = chunk;
		size_t oleft = sizeof chunk;
		size_t r = g_mime_iconv(cd, &in, &inleft, &o, &oleft);
		int err = r == (size_t)-1 ? errno : 0;
		put(c, chunk, sizeof chunk - oleft);
		if (err == EILSEQ || err == EINVAL) { /* skip one bad byte */
			put(c, "?", 1);
			in++;
			inleft--;
		} else if (err != 0 && err != E2BIG) {
			break;
		}
	}
	g_mime_iconv_close(cd);
}

static bool
body_part(void *ctx, const struct mime_text_part *tp)
{
	struct body_ctx *c = ctx;
	if (!c->first)
		put(c, "\n", 1);
	c->first = false;
	if (c->full)
		return false;
	if (tp->is_header) {
		struct buf h;
		buf_init(&h, room(c) + 1);
		mime_search_header((const unsigned char *)tp->body.p, tp->body.len, NULL, &h);
		put(c, h.data, h.len);
		buf_deinit(&h);
		return !c->full;
	}
	/* decoded output is at most 3 bytes per input byte per charset step; bound the input */
	size_t want = room(c), n = tp->body.len;
	if (want < SIZE_MAX / 8 && n > want * 4 + 64)
		n = want * 4 + 64;
	const unsigned char *p = (const unsigned char *)tp->body.p;
	GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
	if (tp->cte.len == 6 && strncasecmp(tp->cte.p, "base64", 6) == 0)
		enc = GMIME_CONTENT_ENCODING_BASE64;
	else if (tp->cte.len == 16 && strncasecmp(tp->cte.p, "quoted-printable", 16) == 0)
		enc = GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
	if (enc != GMIME_CONTENT_ENCODING_DEFAULT) {
		GMimeEncoding st;
		g_mime_encoding_init_decode(&st, enc);
		size_t outlen = g_mime_encoding_outlen(&st, n) + 16;
		if (outlen > c->dec_cap) {
			c->dec = xrealloc(c->dec, outlen);
			c->dec_cap = outlen;
		}
		size_t got = g_mime_encoding_step(&st, (const char *)p, n, (char *)c->dec);
		got += g_mime_encoding_flush(&st, "", 0, (char *)c->dec + got);
		p = c->dec;
		n = got;
	}
	put_converted(c, tp->charset, p, n);
	return !c->full;
}

void
mime_search_body(const unsigned char *msg, size_t len, size_t max, struct buf *out)
{
	if (msg == NULL || max == 0 || !mime_init())
		return;
	struct body_ctx c = {.out = out, .start = out->len, .max = max, .first = true};
	mime_text_parts(msg, len, body_part, &c);
	free(c.dec);
}

/* ---- case-insensitive containment ---- */

/* Unicode simple case folding (CaseFolding.txt, status C+S) for Basic Latin, Latin-1, Latin
 * Extended-A, Greek and Cyrillic; other code points are unchanged. */
static uint32_t
fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c == 0xb5)
		return 0x3bc;
	if (c >= 0xc0 && c <= 0xde && c != 0xd7)
		return c + 32;
	if (c >= 0x100 && c <= 0x17f) {
		if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149)
			return c;
		if (c == 0x178)
			return 0xff;
		if (c == 0x17f)
			return 's';
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return (c & 1) ? c + 1 : c;
		return (c & 1) ? c : c + 1;
	}
	if (c >= 0x370 && c <= 0x3ff) {
		if (c == 0x386)
			return 0x3ac;
		if (c >= 0x388 && c <= 0x38a)
			return c + 37;
		if (c == 0x38c)
			return 0x3cc;
		if (c == 0x38e || c == 0x38f)
			return c + 63;
		if ((c >= 0x391 && c <= 0x3a1) || (c >= 0x3a3 && c <= 0x3ab))
			return c + 32;
		if (c == 0x3c2)
			return 0x3c3;
		return c;
	}
	if (c >= 0x400 && c <= 0x52f) {
		if (c <= 0x40f)
			return c + 80;
		if (c <= 0x42f)
			return c + 32;
		if (c <= 0x45f)
			return c;
		if (c == 0x4c0)
			return 0x4cf;
		if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) || (c >= 0x4d0))
			return (c & 1) ? c : c + 1;
		if (c >= 0x4c1 && c <= 0x4ce)
			return (c & 1) ? c + 1 : c;
		return c;
	}
	return c;
}

/* Folds UTF-8 s into out (out has room for n bytes: folding never lengthens these ranges);
 * invalid bytes are copied as they are. Returns the folded length. */
static size_t
fold_utf8(const unsigned char *s, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned char b = s[i];
		uint32_t c;
		size_t l;
		if (b < 0x80) {
			out[o++] = (unsigned char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
			i++;
			continue;
		}
		if ((b & 0xe0) == 0xc0 && i + 1 < n && (s[i + 1] & 0xc0) == 0x80 && b >= 0xc2) {
			c = (uint32_t)(b & 0x1f) << 6 | (s[i + 1] & 0x3f);
			l = 2;
		} else {
			out[o++] =
			    b; /* 3/4-byte sequences and invalid bytes: unchanged, bytewise */
			i++;
			continue;
		}
		uint32_t f = fold_cp(c);
		if (f < 0x80) {
			out[o++] = (unsigned char)f;
		} else {
			out[o++] = (unsigned char)(0xc0 | f >> 6);
			out[o++] = (unsigned char)(0x80 | (f & 0x3f));
		}
		i += l;
	}
	return o;
}

bool
mime_search_contains(struct slice haystack, struct slice needle)
{
	if (needle.len == 0)
		return true;
	if (haystack.len < needle.len / 2 || haystack.p == NULL)
		return false;
	unsigned char sh[2048], sn[256];
	unsigned char *h = haystack.len <= sizeof sh ? sh : xmalloc(haystack.len);
	unsigned char *nd = needle.len <= sizeof sn ? sn : xmalloc(needle.len);
	size_t hl = fold_utf8((const unsigned char *)haystack.p, haystack.len, h);
	size_t nl = fold_utf8((const unsigned char *)needle.p, needle.len, nd);
	bool found = memmem(h, hl, nd, nl) != NULL;
	if (h != sh)
		free(h);
	if (nd != sn)
		free(nd);
	return found;
}

/* ---- RFC 5256 §2.1 base subject ---- */

static bool
ieq_at(const unsigned char *s, size_t i, size_t e, const char *lit)
{
	size_t l = strlen(lit);
	return e - i >= l && strncasecmp((const char *)s + i, lit, l) == 0;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP; returns its end or i when none. */
static size_t
match_blob(const unsigned char *s, size_t i, size_t e)
{
	if (i >= e || s[i] != '[')
		return i;
	size_t j = i + 1;
	while (j < e && s[j] != '[' && s[j] != ']')
		j++;
	if (j >= e || s[j] != ']')
		return i;
	for (j++; j < e && s[j] == ' '; j++)
		;
	return j;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static size_t
match_refwd(const unsigned char *s, size_t i, size_t e)
{
	size_t j;
	if (ieq_at(s, i, e, "re"))
		j = i + 2;
	else if (ieq_at(s, i, e, "fwd"))
		j = i + 3;
	else if (ieq_at(s, i, e, "fw"))
		j = i + 2;
	else
		return i;
	while (j < e && s[j] == ' ')
		j++;
	j = match_blob(s, j, e);
	return j < e && s[j] == ':' ? j + 1 : i;
}

void
mime_base_subject(struct slice subject_utf8, struct buf *out, bool *is_reply_r)
{
	bool reply = false;
	/* (1) tabs and line breaks to spaces, runs of spaces to one */
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < subject_utf8.len; i++) {
		unsigned char c = (unsigned char)subject_utf8.p[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && b.len > 0 && b.data[b.len - 1] == ' ')
			continue;
		buf_append_byte(&b, c);
	}
	const unsigned char *s = b.data ? b.data : (const unsigned char *)"";
	size_t st = 0, e = b.len;
	for (;;) {
		/* (2) trailers: "(fwd)" and WSP */
		for (;;) {
			if (e > st && s[e - 1] == ' ') {
				e--;
			} else if (e - st >= 5 && ieq_at(s, e - 5, e, "(fwd)")) {
				e -= 5;
				reply = true;
			} else {
				break;
			}
		}
		/* (3)-(5) leaders and blobs */
		for (bool changed = true; changed;) {
			changed = false;
			while (st < e) {
				if (s[st] == ' ') {
					st++;
					changed = true;
					continue;
				}
				size_t j = st, k;
				while ((k = match_blob(s, j, e)) != j)
					j = k;
				k = match_refwd(s, j, e);
				if (k == j)
					break;
				st = k;
				reply = true;
				changed = true;
			}
			size_t k = match_blob(s, st, e);
			if (k != st && k < e) {
				st = k;
				changed = true;
			}
		}
		/* (6) "[fwd:" ... "]" */
		if (e - st >= 6 && ieq_at(s, st, e, "[fwd:") && s[e - 1] == ']') {
			st += 5;
			e--;
			reply = true;
			continue;
		}
		break;
	}
	buf_append(out, s + st, e - st);
	buf_deinit(&b);
	if (is_reply_r != NULL)
		*is_reply_r = reply;
}
