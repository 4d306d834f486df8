/* libFuzzer target: SASL PLAIN and LOGIN response decoding. Accepted credentials respect the
 * limits and hold no NUL. */
#include <stdint.h>
#include <string.h>

#include "auth/sasl.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice in = slice_make(data, size);
	struct sasl_creds c;
	(void)sasl_mech_parse(in);
	if (sasl_plain_decode(in, &c) == SASL_OK) {
		size_t ul = strlen(c.user);
		ASSERT(ul >= 1 && ul <= SASL_USER_MAX);
		ASSERT(c.pass_len >= 1 && c.pass_len <= AUTH_PASSWORD_MAX);
		ASSERT(strlen(c.pass) == c.pass_len);
	} else {
		ASSERT(c.user[0] == '\0' && c.pass_len == 0);
	}
	memset(&c, 0, sizeof c);
	if (sasl_login_user(in, &c) == SASL_OK)
		ASSERT(strlen(c.user) >= 1 && strlen(c.user) <= SASL_USER_MAX);
	if (sasl_login_pass(in, &c) == SASL_OK)
		ASSERT(strlen(c.pass) == c.pass_len && c.pass_len <= AUTH_PASSWORD_MAX);
	sasl_creds_wipe(&c);
	return 0;
}
