/* Address and domain syntax checks; see addr.h. */
#include "addr.h"

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

/* RFC 5322 §3.2.3 atext. */
static bool
is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return c != '\0' && memchr("!#$%&'*+-/=?^_`{|}~", c, 19) != NULL;
}

bool
addr_domain_is_valid(struct slice d)
{
	if (d.len == 0 || d.len > ADDR_DOMAIN_MAX)
		return false;
	size_t labels = 0, start = 0;
	bool all_digits = true;
	for (size_t i = 0; i <= d.len; i++) {
		if (i == d.len || d.p[i] == '.') {
			size_t len = i - start;
			if (len == 0 || len > ADDR_LABEL_MAX || d.p[start] == '-' ||
			    d.p[i - 1] == '-')
				return false;
			labels++;
			if (i == d.len)
				break;
			all_digits = true;
			start = i + 1;
			continue;
		}
		unsigned char c = (unsigned char)d.p[i];
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return false;
		if (!is_digit(c))
			all_digits = false;
	}
	return labels >= 2 && !all_digits;
}

bool
addr_parse(struct slice s, struct slice *local_r, struct slice *domain_r)
{
	if (s.len == 0 || s.len > ADDR_MAX)
		return false;
	const char *at = NULL;
	for (size_t i = s.len; i > 0; i--)
		if (s.p[i - 1] == '@') {
			at = s.p + i - 1;
			break;
		}
	if (at == NULL)
		return false;
	struct slice local = {s.p, (size_t)(at - s.p)};
	struct slice domain = {at + 1, s.len - local.len - 1};
	if (local.len == 0 || local.len > ADDR_LOCAL_MAX)
		return false;
	if (local.p[0] == '.' || local.p[local.len - 1] == '.')
		return false;
	for (size_t i = 0; i < local.len; i++) {
		unsigned char c = (unsigned char)local.p[i];
		if (c == '.') {
			if (local.p[i + 1] == '.')
				return false;
		} else if (!is_atext(c)) {
			return false;
		}
	}
	if (!addr_domain_is_valid(domain))
		return false;
	*local_r = local;
	*domain_r = domain;
	return true;
}

bool
addr_utf8_is_valid(struct slice s)
{
	const unsigned char *p = (const unsigned char *)s.p;
	size_t i = 0;
	while (i < s.len) {
		unsigned char c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			return false;
		}
		if (s.len - i < n || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k < n; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += n;
	}
	return true;
}

int
addr_lower(struct slice s, char *out, size_t n)
{
	if (s.len >= n)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[s.len] = '\0';
	return 0;
}
