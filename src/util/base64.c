/* Base64 per RFC 4648 §4, strict decoding (§3.3: reject non-alphabet characters). */
#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
base64_encode(const unsigned char *in, size_t len, struct buf *out)
{
	char q[4];
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		q[0] = alphabet[v >> 18];
		q[1] = alphabet[(v >> 12) & 63];
		q[2] = alphabet[(v >> 6) & 63];
		q[3] = alphabet[v & 63];
		if (buf_append(out, q, 4) < 0)
			return -1;
	}
	if (i < len) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
		q[0] = alphabet[v >> 18];
		q[1] = alphabet[(v >> 12) & 63];
		q[2] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		q[3] = '=';
		if (buf_append(out, q, 4) < 0)
			return -1;
	}
	return 0;
}

static int
value_of(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(const char *in, size_t len, int allow_space, struct buf *out)
{
	unsigned acc = 0;
	int nq = 0;   /* sextets in the current quantum */
	int npad = 0; /* '=' seen */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (allow_space && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
			continue;
		if (c == '=') {
			if (nq < 2 || nq + npad >= 4)
				return -1;
			npad++;
			continue;
		}
		int v = value_of(c);
		if (v < 0 || npad > 0)
			return -1;
		acc = acc << 6 | (unsigned)v;
		if (++nq == 4) {
			unsigned char b[3] = {(unsigned char)(acc >> 16), (unsigned char)(acc >> 8),
			                      (unsigned char)acc};
			if (buf_append(out, b, 3) < 0)
				return -1;
			nq = 0;
			acc = 0;
		}
	}
	if (nq == 0)
		return npad == 0 ? 0 : -1;
	if (nq + npad != 4)
		return -1;
	if (nq == 2) {
		if (acc & 0xf)
			return -1;
		unsigned char b = (unsigned char)(acc >> 4);
		return buf_append(out, &b, 1);
	}
	if (acc & 0x3)
		return -1;
	unsigned char b[2] = {(unsigned char)(acc >> 10), (unsigned char)(acc >> 2)};
	return buf_append(out, b, 2);
}
