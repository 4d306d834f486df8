/* Syntax checks and normalisation of the names the store keys on: domains are stored lower-case,
 * addresses keep their local part and get a lower-case domain. The checks are deliberately
 * conservative (ASCII dot-atom local parts, LDH domain labels): quoted local parts and SMTPUTF8
 * addresses are refused with EINVAL rather than stored in a form other modules would not match. */
#include "store_private.h"

#include <string.h>

static bool
store_name_is_atext(unsigned char c)
{
	/* RFC 5322 3.2.3 atext */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
store_name_is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Checks len bytes of s as a domain and writes them lower-case to out (len + 1 bytes). */
static int
store_name_domain_n(const char *s, size_t len, char *out, struct err *err)
{
	if (len == 0 || len > STORE_DOMAIN_MAX)
		return err_set(err, STORE_EINVAL, "domain must have 1 to %d characters",
		               STORE_DOMAIN_MAX);
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return err_set(err, STORE_EINVAL, "bad domain label in \"%.*s\"",
				               (int)len, s);
			label = 0;
		} else if (store_name_is_ldh(c)) {
			if (label == 0 && c == '-')
				return err_set(err, STORE_EINVAL, "bad domain label in \"%.*s\"",
				               (int)len, s);
			if (++label > 63) /* RFC 1035 2.3.4 */
				return err_set(err, STORE_EINVAL, "domain label longer than 63");
		} else {
			return err_set(err, STORE_EINVAL, "bad character in domain \"%.*s\"",
			               (int)len, s);
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	if (label == 0 || s[len - 1] == '-')
		return err_set(err, STORE_EINVAL, "bad domain label in \"%.*s\"", (int)len, s);
	out[len] = '\0';
	return 0;
}

int
store_name_domain(const char *in, char *out, struct err *err)
{
	if (in == NULL)
		return err_set(err, STORE_EINVAL, "domain missing");
	return store_name_domain_n(in, strlen(in), out, err);
}

int
store_name_address(const char *in, bool allow_catchall, char *out, size_t *at_r, struct err *err)
{
	if (in == NULL)
		return err_set(err, STORE_EINVAL, "address missing");
	const char *at = strrchr(in, '@');
	if (at == NULL)
		return err_set(err, STORE_EINVAL, "address \"%.64s\" has no @", in);
	size_t local = (size_t)(at - in), len = strlen(in);
	if (len > STORE_ADDR_MAX)
		return err_set(err, STORE_EINVAL, "address longer than %d", STORE_ADDR_MAX);
	if (local == 0 && !allow_catchall)
		return err_set(err, STORE_EINVAL, "address \"%s\" has an empty local part", in);
	if (local > STORE_LOCAL_MAX)
		return err_set(err, STORE_EINVAL, "local part longer than %d", STORE_LOCAL_MAX);
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)in[i];
		bool dot_ok = c == '.' && i > 0 && i + 1 < local && in[i - 1] != '.';
		if (!store_name_is_atext(c) && !dot_ok)
			return err_set(err, STORE_EINVAL, "bad local part in \"%s\"", in);
		out[i] = (char)c;
	}
	out[local] = '@';
	if (store_name_domain_n(at + 1, len - local - 1, out + local + 1, err) < 0)
		return -1;
	*at_r = local;
	return 0;
}
