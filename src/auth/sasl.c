/* SASL PLAIN/LOGIN decoding; see sasl.h. Decoded bytes go through a fixed stack buffer that is
 * wiped before return, so a password never sits in freed heap memory. */
#include "sasl.h"

#include <string.h>

#include "util/base64.h"
#include "util/buf.h"

enum sasl_mech
sasl_mech_parse(struct slice name)
{
	if (slice_eq_nocase(name, "PLAIN"))
		return SASL_MECH_PLAIN;
	if (slice_eq_nocase(name, "LOGIN"))
		return SASL_MECH_LOGIN;
	return SASL_MECH_UNKNOWN;
}

void
sasl_creds_wipe(struct sasl_creds *c)
{
	explicit_bzero(c, sizeof *c);
}

/* Decodes response into out (cap bytes). "*" cancels; "=" is the empty response (RFC 4954 §4). */
static enum sasl_result
decode(struct slice response, unsigned char *out, size_t cap, size_t *len_r)
{
	if (slice_eq(response, "*"))
		return SASL_CANCEL;
	*len_r = 0;
	if (slice_eq(response, "=") || response.len == 0)
		return SASL_OK;
	if (response.len > SASL_RESPONSE_MAX)
		return SASL_BAD_MESSAGE;
	/* decode into a buf that never reallocates: its storage is the caller's array */
	struct buf b;
	buf_init(&b, cap - 1);
	b.data = out;
	b.cap = cap;
	int r = base64_decode(response.p, response.len, 0, &b);
	*len_r = b.len;
	if (r < 0)
		return b.overflow ? SASL_BAD_MESSAGE : SASL_BAD_BASE64;
	return SASL_OK;
}

/* A user name: 1..SASL_USER_MAX bytes, no NUL, no control bytes. */
static bool
user_ok(const unsigned char *p, size_t n)
{
	if (n == 0 || n > SASL_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

enum sasl_result
sasl_plain_decode(struct slice response, struct sasl_creds *c)
{
	unsigned char raw[2 * SASL_USER_MAX + AUTH_PASSWORD_MAX + 3];
	size_t n = 0;
	sasl_creds_wipe(c);
	enum sasl_result r = decode(response, raw, sizeof raw, &n);
	if (r != SASL_OK)
		goto out;
	r = SASL_BAD_MESSAGE;
	unsigned char *nul1 = memchr(raw, '\0', n);
	if (nul1 == NULL)
		goto out;
	size_t zlen = (size_t)(nul1 - raw);
	unsigned char *user = nul1 + 1;
	unsigned char *nul2 = memchr(user, '\0', n - zlen - 1);
	if (nul2 == NULL)
		goto out;
	size_t ulen = (size_t)(nul2 - user);
	unsigned char *pass = nul2 + 1;
	size_t plen = n - zlen - ulen - 2;
	if (!user_ok(user, ulen) || plen == 0 || plen > AUTH_PASSWORD_MAX ||
	    memchr(pass, '\0', plen) != NULL)
		goto out;
	if (zlen != 0 && (zlen != ulen || memcmp(raw, user, ulen) != 0)) {
		r = SASL_BAD_AUTHZID;
		goto out;
	}
	memcpy(c->user, user, ulen);
	c->user[ulen] = '\0';
	memcpy(c->pass, pass, plen);
	c->pass[plen] = '\0';
	c->pass_len = plen;
	r = SASL_OK;
out:
	explicit_bzero(raw, sizeof raw);
	if (r != SASL_OK)
		sasl_creds_wipe(c);
	return r;
}

enum sasl_result
sasl_login_user(struct slice response, struct sasl_creds *c)
{
	unsigned char raw[SASL_USER_MAX + 2];
	size_t n = 0;
	enum sasl_result r = decode(response, raw, sizeof raw, &n);
	if (r == SASL_OK && !user_ok(raw, n))
		r = SASL_BAD_MESSAGE;
	if (r == SASL_OK) {
		memcpy(c->user, raw, n);
		c->user[n] = '\0';
	}
	explicit_bzero(raw, sizeof raw);
	return r;
}

enum sasl_result
sasl_login_pass(struct slice response, struct sasl_creds *c)
{
	unsigned char raw[AUTH_PASSWORD_MAX + 2];
	size_t n = 0;
	enum sasl_result r = decode(response, raw, sizeof raw, &n);
	if (r == SASL_OK && (n == 0 || n > AUTH_PASSWORD_MAX || memchr(raw, '\0', n) != NULL))
		r = SASL_BAD_MESSAGE;
	if (r == SASL_OK) {
		memcpy(c->pass, raw, n);
		c->pass[n] = '\0';
		c->pass_len = n;
	}
	explicit_bzero(raw, sizeof raw);
	return r;
}
