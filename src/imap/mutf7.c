/* Modified UTF-7 mailbox names (RFC 3501 §5.1.3): printable ASCII stands for itself ("&" as
 * "&-"), anything else is UTF-16 in modified BASE64 ("," for "/", no padding) between "&" and
 * "-". The decoder accepts only the canonical form, so that two different wire names never map
 * onto one stored UTF-8 name. See parser.h. */
#include <string.h>

#include "parser.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static bool
is_printable(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

static int
put_utf8(struct buf *out, uint32_t cp)
{
	unsigned char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, u, n);
}

/* Decodes the base64 run p[0..n) (between "&" and "-") into UTF-8. */
static int
decode_run(const unsigned char *p, size_t n, struct buf *out)
{
	uint32_t bits = 0, hi_sur = 0;
	unsigned nbits = 0;
	if (n == 0)
		return -1; /* "&-" is handled by the caller; "&" then "-" with nothing else here */
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(p[i]);
		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (hi_sur) {
			if (u < 0xdc00 || u > 0xdfff)
				return -1;
			uint32_t cp = 0x10000 + ((hi_sur - 0xd800) << 10) + (u - 0xdc00);
			hi_sur = 0;
			if (put_utf8(out, cp) < 0)
				return -1;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			hi_sur = u;
		} else if ((u >= 0xdc00 && u <= 0xdfff) || is_printable(u) || u == 0) {
			return -1; /* lone low surrogate; ASCII that stands for itself; NUL */
		} else if (put_utf8(out, u) < 0) {
			return -1;
		}
	}
	/* canonical: fewer than 6 bits left over, all zero; no surrogate left open */
	if (hi_sur || nbits >= 6 || bits != 0)
		return -1;
	return 0;
}

int
imap_mutf7_decode(struct slice in, struct buf *out)
{
	size_t mark = out->len;
	const unsigned char *p = (const unsigned char *)in.p;
	size_t i = 0;
	while (i < in.len) {
		unsigned char c = p[i];
		if (c != '&') {
			if (!is_printable(c) || buf_append_byte(out, c) < 0)
				goto bad;
			i++;
			continue;
		}
		const unsigned char *dash = memchr(p + i + 1, '-', in.len - i - 1);
		if (dash == NULL)
			goto bad;
		size_t n = (size_t)(dash - (p + i + 1));
		if (n == 0) {
			if (buf_append_byte(out, '&') < 0)
				goto bad;
		} else if (decode_run(p + i + 1, n, out) < 0) {
			goto bad;
		}
		i += n + 2;
	}
	return 0;
bad:
	out->len = mark;
	if (out->data)
		out->data[mark] = '\0';
	return -1;
}

/* Next code point of valid UTF-8 at p[0..n) (no overlongs, surrogates or values past
 * U+10FFFF); returns its length or 0. */
static size_t
utf8_next(const unsigned char *p, size_t n, uint32_t *cp_r)
{
	unsigned char c = p[0];
	uint32_t cp, min;
	size_t len;
	if (c < 0x80) {
		*cp_r = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		cp = c & 0x1f;
		len = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		cp = c & 0x0f;
		len = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		cp = c & 0x07;
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

/* Appends the 16-bit unit to the base64 bit stream. */
static int
push_unit(struct buf *out, uint32_t u, uint32_t *bits, unsigned *nbits)
{
	*bits = (*bits << 16) | u;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		if (buf_append_byte(out, (unsigned char)b64[(*bits >> *nbits) & 0x3f]) < 0)
			return -1;
	}
	*bits &= (1u << *nbits) - 1;
	return 0;
}

/* NUL is refused too (valid UTF-8, but never part of a mailbox name, and the decoder refuses
 * it). */
int
imap_mutf7_encode(struct slice in, struct buf *out)
{
	size_t mark = out->len;
	const unsigned char *p = (const unsigned char *)in.p;
	size_t i = 0;
	bool in_b64 = false;
	uint32_t bits = 0;
	unsigned nbits = 0;
	while (i < in.len) {
		uint32_t cp;
		size_t n = utf8_next(p + i, in.len - i, &cp);
		if (n == 0 || cp == 0)
			goto bad;
		i += n;
		if (is_printable(cp)) {
			if (in_b64) {
				if (nbits > 0 &&
				    buf_append_byte(
				        out, (unsigned char)b64[(bits << (6 - nbits)) & 0x3f]) < 0)
					goto bad;
				if (buf_append_byte(out, '-') < 0)
					goto bad;
				in_b64 = false;
				bits = nbits = 0;
			}
			if (buf_append(out, cp == '&' ? "&-" : (const char *)&p[i - 1],
			               cp == '&' ? 2 : 1) < 0)
				goto bad;
			continue;
		}
		if (!in_b64) {
			if (buf_append_byte(out, '&') < 0)
				goto bad;
			in_b64 = true;
		}
		if (cp >= 0x10000) {
			uint32_t v = cp - 0x10000;
			if (push_unit(out, 0xd800 | (v >> 10), &bits, &nbits) < 0 ||
			    push_unit(out, 0xdc00 | (v & 0x3ff), &bits, &nbits) < 0)
				goto bad;
		} else if (push_unit(out, cp, &bits, &nbits) < 0) {
			goto bad;
		}
	}
	if (in_b64) {
		if (nbits > 0 &&
		    buf_append_byte(out, (unsigned char)b64[(bits << (6 - nbits)) & 0x3f]) < 0)
			goto bad;
		if (buf_append_byte(out, '-') < 0)
			goto bad;
	}
	return 0;
bad:
	out->len = mark;
	if (out->data)
		out->data[mark] = '\0';
	return -1;
}
