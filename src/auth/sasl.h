/* SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) response decoding for SMTP AUTH
 * (RFC 4954). Decoding only: no lookups, no I/O, no allocation that outlives a call; the
 * password check happens behind the session's auth hook. Thread-safe (no shared state).
 * Credentials live in a caller-owned struct that sasl_creds_wipe() clears. */
#ifndef LIGHTR_AUTH_SASL_H
#define LIGHTR_AUTH_SASL_H

#include <stddef.h>

#include "passwd.h"
#include "util/slice.h"

/* Longest user name (authcid/authzid) accepted: an address is at most 254 octets (RFC 5321
 * §4.5.3.1.3). */
#define SASL_USER_MAX 255
/* Longest base64 response line decoded: authzid + authcid + password + 2 NULs, encoded. */
#define SASL_RESPONSE_MAX (((2 * SASL_USER_MAX + AUTH_PASSWORD_MAX + 2) + 2) / 3 * 4)

enum sasl_mech {
	SASL_MECH_UNKNOWN,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

enum sasl_result {
	SASL_OK,
	SASL_CANCEL,      /* the client sent "*" (RFC 4954 §4): 501 5.0.0 */
	SASL_BAD_BASE64,  /* not base64: 501 5.5.2 */
	SASL_BAD_MESSAGE, /* decoded but malformed (missing NULs, empty or too long fields, NUL or
	                     control bytes in a user name, NUL in a LOGIN password): 535 5.7.8 */
	SASL_BAD_AUTHZID, /* PLAIN authzid neither empty nor equal to authcid: 535 5.7.8 */
};

struct sasl_creds {
	char user[SASL_USER_MAX + 1];     /* NUL-terminated; printable, no NUL */
	char pass[AUTH_PASSWORD_MAX + 1]; /* NUL-terminated; holds no NUL */
	size_t pass_len;
};

/* Mechanism name, case-insensitive ("PLAIN", "LOGIN"). */
enum sasl_mech sasl_mech_parse(struct slice name);

/* PLAIN: response is the base64 text of "authzid NUL authcid NUL passwd" ("=" for an empty
 * response, which is then malformed). Fills *c on SASL_OK; c is wiped on any other result. */
enum sasl_result sasl_plain_decode(struct slice response, struct sasl_creds *c);
/* LOGIN user name step: base64 of the user name. Fills c->user. */
enum sasl_result sasl_login_user(struct slice response, struct sasl_creds *c);
/* LOGIN password step: base64 of the password. Fills c->pass and c->pass_len. */
enum sasl_result sasl_login_pass(struct slice response, struct sasl_creds *c);

/* Overwrites the password (and user) so it does not linger in memory. */
void sasl_creds_wipe(struct sasl_creds *c);

#endif
