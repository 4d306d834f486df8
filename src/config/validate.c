/* Value checks for lightr.yaml: turns one YAML scalar into a typed field according to its row in
 * params.c, and checks hostnames and listener addresses. Every number goes through util/strconv,
 * which (unlike strtoul) rejects "-5", "+1", spaces and overflow. Messages carry no path or line;
 * load.c adds "file:line: path: " in front. */
#include "config/config_private.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/strconv.h"
#include "util/xalloc.h"

/* The user's text, made safe to put in a one-line message. */
static const char *
echo(const char *s, char *out, unsigned n)
{
	return log_escape(s, out, n);
}

static void
format_value(enum param_type t, uint64_t v, char *out, size_t n)
{
	if (t == PARAM_SIZE)
		config_format_size(v, out, n);
	else if (t == PARAM_DURATION)
		config_format_duration(v, out, n);
	else
		snprintf(out, n, "%llu", (unsigned long long)v);
}

static int
parse_number(enum param_type t, struct slice s, uint64_t *v_r)
{
	switch (t) {
	case PARAM_SIZE:
		return strconv_size(s, UINT64_MAX, v_r);
	case PARAM_DURATION:
		return strconv_duration(s, UINT64_MAX, v_r);
	default:
		return strconv_u64(s, UINT64_MAX, v_r);
	}
}

/* true when s is digits plus a valid unit whose value overflowed 64 bits. */
static bool
number_overflows(enum param_type t, struct slice s)
{
	size_t i = 0;
	while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9')
		i++;
	if (i == 0 || s.len - i > 8)
		return false;
	char one[16] = "1";
	memcpy(one + 1, s.p + i, s.len - i);
	uint64_t v;
	return parse_number(t, slice_make(one, 1 + s.len - i), &v) == 0;
}

static const char *
set_number(struct config *c, const struct param *p, const char *s, size_t len, char *msg,
           size_t msgsize)
{
	static const char *const expected[] = {
	    [PARAM_UINT] = "expected a number",
	    [PARAM_SIZE] = "expected a size like 25MiB",
	    [PARAM_DURATION] = "expected a duration like 5m",
	};
	struct slice sl = slice_make(s, len);
	char e[64], lim[32];
	uint64_t v;
	if (parse_number(p->type, sl, &v) < 0) {
		if (len > 1 && s[0] == '-' && s[1] >= '0' && s[1] <= '9')
			snprintf(msg, msgsize, "%s is not a valid number", echo(s, e, sizeof e));
		else if (number_overflows(p->type, sl)) {
			format_value(p->type, p->max, lim, sizeof lim);
			snprintf(msg, msgsize, "%s is above maximum %s", echo(s, e, sizeof e), lim);
		} else
			snprintf(msg, msgsize, "%s", expected[p->type]);
		return msg;
	}
	if (v < p->min) {
		format_value(p->type, p->min, lim, sizeof lim);
		snprintf(msg, msgsize, "%s is below minimum %s", echo(s, e, sizeof e), lim);
		return msg;
	}
	if (v > p->max) {
		format_value(p->type, p->max, lim, sizeof lim);
		snprintf(msg, msgsize, "%s is above maximum %s", echo(s, e, sizeof e), lim);
		return msg;
	}
	*(uint64_t *)config_field(c, p) = v;
	return NULL;
}

static const char *
set_string(struct config *c, const struct param *p, const char *s, size_t len, char *msg,
           size_t msgsize)
{
	const char *why = NULL;
	if (memchr(s, '\0', len) != NULL)
		why = "must not contain NUL bytes";
	else if (len == 0)
		why = "must not be empty";
	else if (p->check != NULL)
		why = p->check(s);
	if (why != NULL) {
		snprintf(msg, msgsize, "%s", why);
		return msg;
	}
	char **f = config_field(c, p);
	free(*f);
	*f = xstrndup(s, len);
	return NULL;
}

static const char *
set_enum(struct config *c, const struct param *p, const char *s, size_t len, char *msg,
         size_t msgsize)
{
	for (size_t i = 0; p->choices[i] != NULL; i++) {
		if (slice_eq(slice_make(s, len), p->choices[i])) {
			char **f = config_field(c, p);
			free(*f);
			*f = xstrdup(p->choices[i]);
			return NULL;
		}
	}
	size_t o = (size_t)snprintf(msg, msgsize, "must be one of");
	for (size_t i = 0; p->choices[i] != NULL && o < msgsize; i++)
		o += (size_t)snprintf(msg + o, msgsize - o, "%s %s", i ? "," : "", p->choices[i]);
	return msg;
}

const char *
config_set_scalar(struct config *c, const struct param *p, const char *s, size_t len, char *msg,
                  size_t msgsize)
{
	int b;
	switch (p->type) {
	case PARAM_STRING:
		return set_string(c, p, s, len, msg, msgsize);
	case PARAM_ENUM:
		return set_enum(c, p, s, len, msg, msgsize);
	case PARAM_BOOL:
		if (strconv_bool(slice_make(s, len), &b) < 0) {
			snprintf(msg, msgsize, "expected true or false");
			return msg;
		}
		*(bool *)config_field(c, p) = b;
		return NULL;
	case PARAM_UINT:
	case PARAM_SIZE:
	case PARAM_DURATION:
		return set_number(c, p, s, len, msg, msgsize);
	case PARAM_LISTENERS:
		break;
	}
	snprintf(msg, msgsize, "expected a list");
	return msg;
}

/* RFC 1123 §2.1 host name: dot-separated labels of letters, digits and inner hyphens, each at
 * most 63 octets, 253 in all. No trailing dot: this name goes into greetings as is. */
const char *
config_check_hostname(const char *s)
{
	size_t n = strlen(s), label = 0;
	if (n == 0 || n > 253)
		return "not a valid hostname";
	for (size_t i = 0; i <= n; i++) {
		char ch = s[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return "not a valid hostname";
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		           (ch >= '0' && ch <= '9') || (ch == '-' && label > 0)) {
			label++;
		} else {
			return "not a valid hostname";
		}
	}
	return NULL;
}

/* Paths and user names: any text without control characters (they would garble logs). */
const char *
config_check_plain(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "must not contain control characters";
	return NULL;
}

const char *
config_check_address(const char *s, struct config_addr *a)
{
	const char *colon, *host = s;
	size_t hostlen;
	char tmp[64];
	unsigned char bin[16];
	memset(a, 0, sizeof *a);
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return "expected [IPv6]:port, like [::1]:25";
		host = s + 1;
		hostlen = (size_t)(end - host);
		colon = end + 1;
		if (hostlen == 0 || hostlen >= sizeof tmp)
			return "not a valid IPv6 address";
		memcpy(tmp, host, hostlen);
		tmp[hostlen] = '\0';
		if (inet_pton(AF_INET6, tmp, bin) != 1)
			return "not a valid IPv6 address";
		inet_ntop(AF_INET6, bin, a->host, sizeof a->host);
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return "expected host:port, like 127.0.0.1:25 or :25";
		hostlen = (size_t)(colon - s);
		if (memchr(s, ':', hostlen) != NULL)
			return "an IPv6 address must be in brackets, like [::1]:25";
		if (hostlen >= sizeof tmp)
			return "host must be an IP address, localhost or empty (all addresses)";
		memcpy(tmp, s, hostlen);
		tmp[hostlen] = '\0';
		if (hostlen == 0 || strcmp(tmp, "localhost") == 0)
			memcpy(a->host, tmp, hostlen + 1);
		else if (inet_pton(AF_INET, tmp, bin) == 1)
			inet_ntop(AF_INET, bin, a->host, sizeof a->host);
		else
			return "host must be an IP address, localhost or empty (all addresses)";
	}
	uint64_t port;
	if (strconv_u64(slice_from(colon + 1), 65535, &port) < 0 || port == 0)
		return "port must be a number from 1 to 65535";
	a->port = (unsigned)port;
	return NULL;
}

bool
config_addr_conflict(const struct config_addr *a, const struct config_addr *b)
{
	if (a->port != b->port)
		return false;
	return a->host[0] == '\0' || b->host[0] == '\0' || strcmp(a->host, b->host) == 0;
}
