/* Unit tests for src/auth/sasl: PLAIN and LOGIN decoding, cancel, malformed input, limits. */
#include <string.h>

#include "auth/sasl.h"
#include "test.h"
#include "util/base64.h"
#include "util/buf.h"

/* base64 of n raw bytes, into a static buffer. */
static struct slice
b64(const char *raw, size_t n)
{
	static struct buf b;
	buf_deinit(&b);
	buf_init(&b, 0);
	base64_encode((const unsigned char *)raw, n, &b);
	return buf_slice(&b);
}

#define B64(lit) b64(lit, sizeof lit - 1)

static void
test_mech(void)
{
	CHECK_INT(sasl_mech_parse(slice_from("plain")), SASL_MECH_PLAIN);
	CHECK_INT(sasl_mech_parse(slice_from("LOGIN")), SASL_MECH_LOGIN);
	CHECK_INT(sasl_mech_parse(slice_from("CRAM-MD5")), SASL_MECH_UNKNOWN);
	CHECK_INT(sasl_mech_parse(slice_from("")), SASL_MECH_UNKNOWN);
}

static void
test_plain(void)
{
	struct sasl_creds c;
	CHECK_INT(sasl_plain_decode(B64("\0user@a.example\0secret"), &c), SASL_OK);
	CHECK_STR(c.user, "user@a.example");
	CHECK_STR(c.pass, "secret");
	CHECK_INT(c.pass_len, 6);
	CHECK_INT(sasl_plain_decode(B64("u\0u\0p w"), &c), SASL_OK);
	CHECK_STR(c.pass, "p w");
	CHECK_INT(sasl_plain_decode(B64("other\0u\0p"), &c), SASL_BAD_AUTHZID);
	CHECK_STR(c.user, ""); /* wiped */
	CHECK_INT(sasl_plain_decode(slice_from("*"), &c), SASL_CANCEL);
	CHECK_INT(sasl_plain_decode(slice_from("="), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_plain_decode(slice_from("not base64!"), &c), SASL_BAD_BASE64);
	CHECK_INT(sasl_plain_decode(slice_from("AGEAYg"), &c), SASL_BAD_BASE64); /* no padding */
	CHECK_INT(sasl_plain_decode(B64("\0user"), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_plain_decode(B64("\0\0pass"), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_plain_decode(B64("\0user\0"), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_plain_decode(B64("\0user\0pa\0ss"), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_plain_decode(B64("\0us\ter\0pass"), &c), SASL_BAD_MESSAGE);
	/* limits: password of AUTH_PASSWORD_MAX is fine, one more is not */
	char raw[2 + 10 + AUTH_PASSWORD_MAX + 2];
	memcpy(raw, "\0user\0", 6);
	memset(raw + 6, 'p', AUTH_PASSWORD_MAX + 1);
	CHECK_INT(sasl_plain_decode(b64(raw, 6 + AUTH_PASSWORD_MAX), &c), SASL_OK);
	CHECK_INT(c.pass_len, AUTH_PASSWORD_MAX);
	CHECK_INT(sasl_plain_decode(b64(raw, 6 + AUTH_PASSWORD_MAX + 1), &c), SASL_BAD_MESSAGE);
	char user[SASL_USER_MAX + 10];
	user[0] = '\0';
	memset(user + 1, 'u', SASL_USER_MAX + 1);
	user[SASL_USER_MAX + 2] = '\0';
	user[SASL_USER_MAX + 3] = 'p';
	CHECK_INT(sasl_plain_decode(b64(user, SASL_USER_MAX + 4), &c), SASL_BAD_MESSAGE);
	/* a huge response is refused before decoding */
	char huge[SASL_RESPONSE_MAX + 8];
	memset(huge, 'A', sizeof huge);
	CHECK_INT(sasl_plain_decode(slice_make(huge, sizeof huge), &c), SASL_BAD_MESSAGE);
	sasl_creds_wipe(&c);
	CHECK_INT(c.pass_len, 0);
}

static void
test_login(void)
{
	struct sasl_creds c;
	memset(&c, 0, sizeof c);
	CHECK_INT(sasl_login_user(B64("user@a.example"), &c), SASL_OK);
	CHECK_STR(c.user, "user@a.example");
	CHECK_INT(sasl_login_pass(B64("secret"), &c), SASL_OK);
	CHECK_STR(c.pass, "secret");
	CHECK_INT(sasl_login_user(slice_from("*"), &c), SASL_CANCEL);
	CHECK_INT(sasl_login_pass(slice_from("*"), &c), SASL_CANCEL);
	CHECK_INT(sasl_login_user(slice_from("="), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_login_user(slice_from(""), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_login_user(B64("a\0b"), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_login_pass(B64("a\0b"), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_login_pass(slice_from("%%%%"), &c), SASL_BAD_BASE64);
	char pw[AUTH_PASSWORD_MAX + 1];
	memset(pw, 'p', sizeof pw);
	CHECK_INT(sasl_login_pass(b64(pw, sizeof pw), &c), SASL_BAD_MESSAGE);
	CHECK_INT(sasl_login_pass(b64(pw, sizeof pw - 1), &c), SASL_OK);
	b64("", 0);
	sasl_creds_wipe(&c);
}

int
main(void)
{
	RUN(test_mech);
	RUN(test_plain);
	RUN(test_login);
	struct slice s = b64("", 0); /* free the helper's buffer */
	(void)s;
	return test_done("auth_sasl");
}
