/* SPF: check_host() of RFC 7208 §4–§7 on our own code. A record is parsed completely first (any
 * syntax error anywhere is a permerror, §4.6), then its mechanisms are evaluated left to right;
 * include and redirect recurse with the shared lookup counters of §4.6.4. All DNS goes through
 * struct policy_dns, so the same code runs against the resolver (server/) and against tables
 * (spf_test.c, fuzz/fuzz_spf.c). Terms are slices into the record, which lives until its
 * check_host() frame returns; nothing else is allocated per term. */
#include "policy.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/slice.h"
#include "util/xalloc.h"

enum {
	SPF_LOOKUP_MAX = 10,   /* DNS-querying terms per check (RFC 7208 §4.6.4) */
	SPF_VOID_MAX = 2,      /* void lookups per check (§4.6.4) */
	SPF_MX_MAX = 10,       /* MX names per mx term; more is a permerror (§4.6.4) */
	SPF_PTR_MAX = 10,      /* PTR names per ptr term; the rest are ignored (§4.6.4) */
	SPF_DOMAIN_MAX = 253,  /* expanded domains are cut to this from the left (§7.3) */
	SPF_LABEL_MAX = 63,    /* RFC 1035 §2.3.4 */
	SPF_SENDER_MAX = 512,  /* our bound on <sender> (RFC 5321 §4.5.3.1.3 allows 256) */
	SPF_RECORD_MAX = 8192, /* our bound on one record (§3.4 asks for one UDP datagram) */
	SPF_EXPAND_MAX = 8192, /* our bound on one macro-string before the §7.3 truncation */
};

void
policy_strings_free(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static const char *const result_names[] = {
    [SPF_NONE] = "none",           [SPF_NEUTRAL] = "neutral",   [SPF_PASS] = "pass",
    [SPF_FAIL] = "fail",           [SPF_SOFTFAIL] = "softfail", [SPF_TEMPERROR] = "temperror",
    [SPF_PERMERROR] = "permerror",
};

const char *
spf_result_name(enum spf_result r)
{
	if ((unsigned)r >= sizeof result_names / sizeof result_names[0])
		return "permerror";
	return result_names[r];
}

/* ---- one check ---- */

struct spf_ctx {
	const struct spf_request *req;
	const struct policy_dns *dns;
	char sender[SPF_SENDER_MAX + 1]; /* <sender>: local "@" domain (§4.1) */
	size_t local_len;                /* the local part is sender[0..local_len) */
	const char *sender_domain;       /* inside sender */
	bool v6;
	unsigned char ip[16];           /* 4 or 16 bytes used */
	char ip_text[INET6_ADDRSTRLEN]; /* normalised, for PTR queries and %{c} */
	int lookups, voids;             /* shared by include/redirect (§4.6.4) */
	char reason[sizeof((struct spf_outcome *)0)->reason];
	bool reason_final; /* an error reason is never overwritten by outer frames */
	bool p_loaded;     /* p_names filled (%{p}) */
	size_t p_count;
	char p_names[SPF_PTR_MAX][256]; /* validated PTR names */
};

static void set_reason(struct spf_ctx *c, bool final, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_reason(struct spf_ctx *c, bool final, const char *fmt, ...)
{
	if (c->reason_final)
		return;
	va_list ap;
	va_start(ap, fmt);
	/* truncation only shortens a diagnostic */
	(void)vsnprintf(c->reason, sizeof c->reason, fmt, ap);
	va_end(ap);
	c->reason_final = final;
}

#define ERR(c, res, ...) (set_reason((c), true, __VA_ARGS__), (res))

static bool
is_alpha(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool
is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static int
to_lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* A domain we may query: 1..253 characters, labels 1..63 (a trailing dot was removed). */
static bool
domain_is_queryable(const char *d)
{
	size_t n = strlen(d), label = 0;
	if (n == 0 || n > SPF_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || d[i] == '.') {
			if (label == 0 || label > SPF_LABEL_MAX)
				return false;
			label = 0;
		} else {
			label++;
		}
	}
	return true;
}

/* ---- DNS wrappers: invalid names are void without a query (as NXDOMAIN would be) ---- */

static int
dns_addr(struct spf_ctx *c, const char *name, bool v6, char ***v_r, size_t *n_r)
{
	*v_r = NULL;
	*n_r = 0;
	if (!domain_is_queryable(name))
		return 1;
	int rc = c->dns->addr(c->dns->ctx, name, v6, v_r, n_r);
	if (rc == 0 && *n_r == 0)
		rc = 1;
	if (rc != 0) {
		policy_strings_free(*v_r, *n_r);
		*v_r = NULL;
		*n_r = 0;
	}
	return rc;
}

static int
dns_call(struct spf_ctx *c, int (*fn)(void *, const char *, char ***, size_t *), const char *name,
         char ***v_r, size_t *n_r)
{
	*v_r = NULL;
	*n_r = 0;
	int rc = fn(c->dns->ctx, name, v_r, n_r);
	if (rc == 0 && *n_r == 0)
		rc = 1;
	if (rc != 0) {
		policy_strings_free(*v_r, *n_r);
		*v_r = NULL;
		*n_r = 0;
	}
	return rc;
}

/* Counts a void lookup; false when the limit is now exceeded (the reason is set). */
static bool
count_void(struct spf_ctx *c, const char *name)
{
	if (++c->voids > SPF_VOID_MAX) {
		set_reason(c, true, "more than %d void DNS lookups (at %.100s)", SPF_VOID_MAX,
		           name);
		return false;
	}
	return true;
}

static bool
count_lookup(struct spf_ctx *c, struct slice term)
{
	if (++c->lookups > SPF_LOOKUP_MAX) {
		set_reason(c, true, "more than %d DNS-querying terms (at %.*s)", SPF_LOOKUP_MAX,
		           (int)(term.len > 100 ? 100 : term.len), term.p);
		return false;
	}
	return true;
}

/* ---- addresses ---- */

/* Parses text as an address of the client's family into out; false otherwise. */
static bool
addr_parse(const char *text, bool v6, unsigned char out[16])
{
	return inet_pton(v6 ? AF_INET6 : AF_INET, text, out) == 1;
}

static bool
cidr_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* true when one of the n address strings is in the client's network of bits. */
static bool
addrs_match(const struct spf_ctx *c, char **v, size_t n, int bits)
{
	unsigned char a[16];
	for (size_t i = 0; i < n; i++)
		if (addr_parse(v[i], c->v6, a) && cidr_match(a, c->ip, bits))
			return true;
	return false;
}

/* ---- macros (§7) ---- */

static bool
is_delimiter(int ch)
{
	return ch != 0 && strchr(".-+,/_=", ch) != NULL;
}

/* Validates a macro-string (§7.1). exp_text allows c, r and t (§7.2). *ends_macro_r tells
 * whether it ends with a macro-expand (a valid domain-end, §4.8). NULL or an error text. */
static const char *
macro_string_check(struct slice s, bool exp_text, bool *ends_macro_r)
{
	bool ends_macro = false;
	for (size_t i = 0; i < s.len;) {
		unsigned char ch = (unsigned char)s.p[i];
		if (ch != '%') {
			if (ch < 0x21 || ch > 0x7e)
				return "invalid character";
			ends_macro = false;
			i++;
			continue;
		}
		if (i + 1 >= s.len)
			return "'%' at the end";
		char nx = s.p[i + 1];
		if (nx == '%' || nx == '_' || nx == '-') {
			ends_macro = true;
			i += 2;
			continue;
		}
		if (nx != '{')
			return "invalid macro ('%' not followed by '{', '%', '_' or '-')";
		i += 2;
		if (i >= s.len)
			return "unterminated macro";
		int letter = to_lower((unsigned char)s.p[i]);
		if (letter == 0 || strchr("slodipvhcrt", letter) == NULL)
			return "unknown macro letter";
		if (!exp_text && strchr("crt", letter) != NULL)
			return "macros c, r and t are allowed in exp text only";
		i++;
		size_t digits = 0;
		bool nonzero = false;
		while (i < s.len && is_digit(s.p[i])) {
			nonzero |= s.p[i] != '0';
			digits++;
			i++;
		}
		if (digits > 0 && !nonzero)
			return "macro transformer 0";
		if (i < s.len && to_lower(s.p[i]) == 'r')
			i++;
		while (i < s.len && is_delimiter(s.p[i]))
			i++;
		if (i >= s.len || s.p[i] != '}')
			return "unterminated macro";
		i++;
		ends_macro = true;
	}
	*ends_macro_r = ends_macro;
	return NULL;
}

/* toplabel of §4.8: alphanumerics and '-', not all digits, '-' neither first nor last. */
static bool
toplabel_is_valid(struct slice l)
{
	bool alpha = false, hyphen = false;
	if (l.len == 0 || l.p[0] == '-' || l.p[l.len - 1] == '-')
		return false;
	for (size_t i = 0; i < l.len; i++) {
		if (is_alpha(l.p[i]))
			alpha = true;
		else if (l.p[i] == '-')
			hyphen = true;
		else if (!is_digit(l.p[i]))
			return false;
	}
	return alpha || hyphen;
}

/* domain-spec = macro-string domain-end (§4.8). NULL or an error text. */
static const char *
domain_spec_check(struct slice s)
{
	bool ends_macro = false;
	if (s.len == 0)
		return "empty domain-spec";
	const char *e = macro_string_check(s, false, &ends_macro);
	if (e != NULL || ends_macro)
		return e;
	if (s.p[s.len - 1] == '.')
		s.len--;
	size_t dot = s.len;
	while (dot > 0 && s.p[dot - 1] != '.')
		dot--;
	if (dot == 0)
		return "domain-spec does not end with '.' toplabel";
	if (!toplabel_is_valid(slice_make(s.p + dot, s.len - dot)))
		return "domain-spec does not end with a valid toplabel";
	return NULL;
}

/* The PTR-validated names of the client (procedure of §5.5), looked up once per check so that
 * %{p} costs at most 1 + SPF_PTR_MAX queries however often it appears (§4.6.4 asks for DoS
 * limits; the p macro is not counted against the 10 terms). */
static void
p_names_load(struct spf_ctx *c)
{
	char **names, **addrs;
	size_t nn, na;
	c->p_loaded = true;
	if (dns_call(c, c->dns->ptr, c->ip_text, &names, &nn) != 0)
		return;
	for (size_t i = 0; i < nn && i < SPF_PTR_MAX; i++) {
		size_t len = strlen(names[i]);
		if (len > 0 && names[i][len - 1] == '.')
			names[i][--len] = '\0';
		if (len >= sizeof c->p_names[0] || dns_addr(c, names[i], c->v6, &addrs, &na) != 0)
			continue;
		if (addrs_match(c, addrs, na, c->v6 ? 128 : 32))
			memcpy(c->p_names[c->p_count++], names[i], len + 1);
		policy_strings_free(addrs, na);
	}
	policy_strings_free(names, nn);
}

/* %{p} (§7.3): a validated name equal to domain, else a subdomain of it, else any validated
 * name, else "unknown". */
static void
macro_p(struct spf_ctx *c, const char *domain, char *out, size_t n)
{
	int best = 0; /* 3 equal, 2 subdomain, 1 other */
	size_t dl = strlen(domain);
	if (!c->p_loaded)
		p_names_load(c);
	snprintf(out, n, "unknown");
	for (size_t i = 0; i < c->p_count && best < 3; i++) {
		const char *name = c->p_names[i];
		size_t len = strlen(name);
		int rank = 1;
		if (len == dl && strcasecmp(name, domain) == 0)
			rank = 3;
		else if (len > dl && name[len - dl - 1] == '.' &&
		         strcasecmp(name + len - dl, domain) == 0)
			rank = 2;
		if (rank > best) {
			best = rank;
			snprintf(out, n, "%s", name);
		}
	}
}

/* The value of one macro letter (lower case) into out. */
static void
macro_value(struct spf_ctx *c, const char *domain, int letter, char *out, size_t n)
{
	const struct spf_request *r = c->req;
	switch (letter) {
	case 's':
		snprintf(out, n, "%s", c->sender);
		break;
	case 'l':
		snprintf(out, n, "%.*s", (int)c->local_len, c->sender);
		break;
	case 'o':
		snprintf(out, n, "%s", c->sender_domain);
		break;
	case 'd':
		snprintf(out, n, "%s", domain);
		break;
	case 'i':
		if (!c->v6) {
			snprintf(out, n, "%u.%u.%u.%u", c->ip[0], c->ip[1], c->ip[2], c->ip[3]);
		} else { /* §7.3: dot-format nibbles */
			static const char hex[] = "0123456789abcdef";
			size_t k = 0;
			for (int i = 0; i < 16 && k + 4 <= n; i++) {
				out[k++] = hex[c->ip[i] >> 4];
				out[k++] = '.';
				out[k++] = hex[c->ip[i] & 15];
				out[k++] = '.';
			}
			out[k > 0 ? k - 1 : 0] = '\0';
		}
		break;
	case 'p':
		macro_p(c, domain, out, n);
		break;
	case 'v':
		snprintf(out, n, "%s", c->v6 ? "ip6" : "in-addr");
		break;
	case 'h':
		snprintf(out, n, "%s", r->helo != NULL ? r->helo : "");
		break;
	case 'c':
		snprintf(out, n, "%s", c->ip_text);
		break;
	case 'r':
		snprintf(out, n, "%s",
		         r->receiver != NULL && r->receiver[0] != '\0' ? r->receiver : "unknown");
		break;
	case 't':
		snprintf(out, n, "%lld", (long long)r->now);
		break;
	default:
		out[0] = '\0';
	}
}

static int
append_escaped(struct buf *out, const char *s, size_t n, bool escape)
{
	if (!escape)
		return buf_append(out, s, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '.' || ch == '_' ||
		    ch == '~') {
			if (buf_append_byte(out, ch) < 0)
				return -1;
		} else if (buf_printf(out, "%%%02X", ch) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Expands one checked "%{...}" at s (after "%{") into out; returns the bytes used after "%{". */
static size_t
expand_one(struct spf_ctx *c, const char *domain, struct slice s, struct buf *out)
{
	char value[SPF_SENDER_MAX + 64];
	size_t i = 0;
	int letter = (unsigned char)s.p[i++];
	bool upper = letter >= 'A' && letter <= 'Z';
	macro_value(c, domain, to_lower(letter), value, sizeof value);
	size_t keep = 0;
	while (i < s.len && is_digit(s.p[i])) {
		if (keep < 1000)
			keep = keep * 10 + (size_t)(s.p[i] - '0');
		i++;
	}
	bool reverse = false;
	if (i < s.len && to_lower(s.p[i]) == 'r') {
		reverse = true;
		i++;
	}
	char delims[8] = {0};
	size_t nd = 0;
	while (i < s.len && is_delimiter(s.p[i])) {
		if (nd < sizeof delims - 1 && strchr(delims, s.p[i]) == NULL)
			delims[nd++] = s.p[i];
		i++;
	}
	if (nd == 0)
		delims[nd++] = '.';
	i++; /* '}' */

	/* §7.3: split on the delimiters, reverse if asked, keep the rightmost parts, join with
	 * '.'. */
	struct slice parts[sizeof value];
	size_t np = 0, start = 0, len = strlen(value);
	for (size_t k = 0; k <= len; k++) {
		if (k == len || strchr(delims, value[k]) != NULL) {
			parts[np++] = slice_make(value + start, k - start);
			start = k + 1;
		}
	}
	if (reverse)
		for (size_t a = 0, b = np - 1; a < b; a++, b--) {
			struct slice t = parts[a];
			parts[a] = parts[b];
			parts[b] = t;
		}
	size_t first = keep > 0 && keep < np ? np - keep : 0;
	for (size_t k = first; k < np; k++) {
		if (k > first)
			(void)append_escaped(out, ".", 1, false);
		(void)append_escaped(out, parts[k].p, parts[k].len, upper);
	}
	return i;
}

/* Expands a checked macro-string (§7.3) into out. -1 when out overflowed. */
static int
macro_expand(struct spf_ctx *c, const char *domain, struct slice s, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < s.len;) {
		if (s.p[i] != '%') {
			(void)buf_append_byte(out, (unsigned char)s.p[i++]);
			continue;
		}
		char nx = s.p[i + 1];
		i += 2;
		if (nx == '%')
			(void)buf_append_byte(out, '%');
		else if (nx == '_')
			(void)buf_append_byte(out, ' ');
		else if (nx == '-')
			(void)buf_append_str(out, "%20");
		else
			i += expand_one(c, domain, slice_make(s.p + i, s.len - i), out);
	}
	return out->overflow ? -1 : 0;
}

/* Expands a checked domain-spec into out (size 256): without a trailing dot, cut from the
 * left to 253 characters (§7.3). An empty spec is the current domain. false on overflow. */
static bool
expand_domain(struct spf_ctx *c, const char *domain, struct slice spec, char out[256])
{
	if (spec.len == 0) {
		snprintf(out, 256, "%s", domain);
		return true;
	}
	struct buf b;
	buf_init(&b, SPF_EXPAND_MAX);
	if (macro_expand(c, domain, spec, &b) < 0) {
		buf_deinit(&b);
		set_reason(c, true, "macro expansion too long");
		return false;
	}
	const char *p = buf_cstr(&b);
	size_t n = b.len;
	if (n > 0 && p[n - 1] == '.')
		n--;
	while (n > SPF_DOMAIN_MAX) {
		const char *dot = memchr(p, '.', n);
		if (dot == NULL) { /* one huge label: keep it invalid, never queried */
			p += n - (SPF_DOMAIN_MAX + 1);
			n = SPF_DOMAIN_MAX + 1;
			break;
		}
		n -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	if (n > 255)
		n = 255;
	memcpy(out, p, n);
	out[n] = '\0';
	buf_deinit(&b);
	return true;
}

/* ---- terms (§4.6.1, §5, §6) ---- */

enum term_kind {
	T_ALL,
	T_INCLUDE,
	T_A,
	T_MX,
	T_PTR,
	T_IP4,
	T_IP6,
	T_EXISTS,
	T_REDIRECT,
	T_EXP,
	T_UNKNOWN_MOD,
};

enum term_arg {
	ARG_NONE,       /* all */
	ARG_DOMAIN,     /* ":" domain-spec, required */
	ARG_DOMAIN_OPT, /* [":" domain-spec] */
	ARG_DUAL_CIDR,  /* [":" domain-spec] [dual-cidr-length] */
	ARG_IP4,        /* ":" ip4-network [ip4-cidr-length] */
	ARG_IP6,        /* ":" ip6-network [ip6-cidr-length] */
};

static const struct mech_def {
	const char *name;
	enum term_kind kind;
	enum term_arg arg;
	bool lookup; /* counts against SPF_LOOKUP_MAX */
} mechs[] = {
    {"all", T_ALL, ARG_NONE, false},      {"include", T_INCLUDE, ARG_DOMAIN, true},
    {"a", T_A, ARG_DUAL_CIDR, true},      {"mx", T_MX, ARG_DUAL_CIDR, true},
    {"ptr", T_PTR, ARG_DOMAIN_OPT, true}, {"ip4", T_IP4, ARG_IP4, false},
    {"ip6", T_IP6, ARG_IP6, false},       {"exists", T_EXISTS, ARG_DOMAIN, true},
};

struct spf_term {
	enum term_kind kind;
	enum spf_result qual;
	bool lookup;
	struct slice text; /* the whole term, for reasons */
	struct slice spec; /* domain-spec; len 0 = the current domain */
	int cidr4, cidr6;
	unsigned char net[16];
};

/* A CIDR length: "0" or digits without a leading zero, at most max. -1 when invalid. */
static int
cidr_parse(struct slice s, int max)
{
	int v = 0;
	if (s.len == 0 || s.len > 3 || (s.len > 1 && s.p[0] == '0'))
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		if (!is_digit(s.p[i]))
			return -1;
		v = v * 10 + (s.p[i] - '0');
	}
	return v <= max ? v : -1;
}

/* Length of the trailing "/digits" of s (0 when none). */
static size_t
cidr_suffix(struct slice s)
{
	size_t k = s.len;
	while (k > 0 && is_digit(s.p[k - 1]))
		k--;
	if (k == s.len || k == 0 || s.p[k - 1] != '/')
		return 0;
	return s.len - k + 1;
}

static const char *
parse_ip_arg(struct slice rest, bool v6, struct spf_term *t)
{
	if (rest.len < 2 || rest.p[0] != ':')
		return v6 ? "ip6 needs an address" : "ip4 needs an address";
	struct slice a = slice_make(rest.p + 1, rest.len - 1);
	const char *slash = memchr(a.p, '/', a.len);
	int bits = v6 ? 128 : 32;
	if (slash != NULL) {
		bits = cidr_parse(slice_make(slash + 1, (size_t)(a.p + a.len - slash - 1)),
		                  v6 ? 128 : 32);
		if (bits < 0)
			return "invalid CIDR length";
		a.len = (size_t)(slash - a.p);
	}
	char text[INET6_ADDRSTRLEN + 1];
	if (a.len == 0 || a.len >= sizeof text)
		return "invalid address";
	memcpy(text, a.p, a.len);
	text[a.len] = '\0';
	if (!addr_parse(text, v6, t->net))
		return "invalid address";
	if (v6)
		t->cidr6 = bits;
	else
		t->cidr4 = bits;
	return NULL;
}

/* Parses one term. NULL or an error text (a permerror). */
static const char *
term_parse(struct slice s, struct spf_term *t)
{
	memset(t, 0, sizeof *t);
	t->text = s;
	t->qual = SPF_PASS;
	t->cidr4 = 32;
	t->cidr6 = 128;

	/* modifier = name "=" macro-string; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
	size_t k = 0;
	if (is_alpha(s.p[0])) {
		while (k < s.len && (is_alpha(s.p[k]) || is_digit(s.p[k]) || s.p[k] == '-' ||
		                     s.p[k] == '_' || s.p[k] == '.'))
			k++;
		if (k < s.len && s.p[k] == '=') {
			struct slice name = slice_make(s.p, k);
			t->spec = slice_make(s.p + k + 1, s.len - k - 1);
			if (slice_eq_nocase(name, "redirect")) {
				t->kind = T_REDIRECT;
				t->lookup = true;
				return domain_spec_check(t->spec);
			}
			if (slice_eq_nocase(name, "exp")) {
				t->kind = T_EXP;
				return domain_spec_check(t->spec);
			}
			t->kind = T_UNKNOWN_MOD; /* §6: ignored, but must be a macro-string */
			bool ends;
			return macro_string_check(t->spec, false, &ends);
		}
	}

	k = 0;
	switch (s.p[0]) {
	case '+':
		t->qual = SPF_PASS, k = 1;
		break;
	case '-':
		t->qual = SPF_FAIL, k = 1;
		break;
	case '~':
		t->qual = SPF_SOFTFAIL, k = 1;
		break;
	case '?':
		t->qual = SPF_NEUTRAL, k = 1;
		break;
	}
	size_t name_start = k;
	while (k < s.len && (is_alpha(s.p[k]) || is_digit(s.p[k])))
		k++;
	struct slice name = slice_make(s.p + name_start, k - name_start);
	struct slice rest = slice_make(s.p + k, s.len - k);
	const struct mech_def *m = NULL;
	for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
		if (slice_eq_nocase(name, mechs[i].name))
			m = &mechs[i];
	if (m == NULL || (rest.len > 0 && rest.p[0] != ':' && rest.p[0] != '/'))
		return "unknown mechanism";
	t->kind = m->kind;
	t->lookup = m->lookup;

	switch (m->arg) {
	case ARG_NONE:
		return rest.len == 0 ? NULL : "all takes no argument";
	case ARG_IP4:
	case ARG_IP6:
		return parse_ip_arg(rest, m->arg == ARG_IP6, t);
	case ARG_DUAL_CIDR: {
		size_t n = cidr_suffix(rest);
		if (n > 0 && rest.len > n && rest.p[rest.len - n - 1] == '/') { /* "//cidr6" */
			if ((t->cidr6 =
			         cidr_parse(slice_make(rest.p + rest.len - n + 1, n - 1), 128)) < 0)
				return "invalid IPv6 CIDR length";
			rest.len -= n + 1;
			n = cidr_suffix(rest);
		}
		if (n > 0) {
			if ((t->cidr4 =
			         cidr_parse(slice_make(rest.p + rest.len - n + 1, n - 1), 32)) < 0)
				return "invalid IPv4 CIDR length";
			rest.len -= n;
		}
		break;
	}
	case ARG_DOMAIN:
	case ARG_DOMAIN_OPT:
		break;
	}
	if (rest.len == 0)
		return m->arg == ARG_DOMAIN ? "missing domain-spec" : NULL;
	if (rest.p[0] != ':')
		return "unexpected text after the mechanism";
	t->spec = slice_make(rest.p + 1, rest.len - 1);
	return domain_spec_check(t->spec);
}

/* Space-separated terms of a record (after "v=spf1"); tabs are tolerated as pyspf does. */
struct term_iter {
	const char *p, *end;
};

static bool
term_next(struct term_iter *it, struct slice *t_r)
{
	while (it->p < it->end && (*it->p == ' ' || *it->p == '\t'))
		it->p++;
	if (it->p >= it->end)
		return false;
	const char *b = it->p;
	while (it->p < it->end && *it->p != ' ' && *it->p != '\t')
		it->p++;
	*t_r = slice_make(b, (size_t)(it->p - b));
	return true;
}

/* ---- evaluation (§4.6, §5) ---- */

static enum spf_result check_host(struct spf_ctx *c, const char *domain, bool nested);

static const char *
trim_dot(char *s)
{
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		s[n - 1] = '\0';
	return s;
}

/* Evaluates one mechanism: 1 match, 0 no match, or -1 with *err_r set (temperror or
 * permerror). */
static int
mech_eval(struct spf_ctx *c, const char *domain, const struct spf_term *t, enum spf_result *err_r)
{
	char target[256];
	char **v = NULL, **w = NULL;
	size_t n = 0, nw = 0;
	int rc, bits = c->v6 ? t->cidr6 : t->cidr4;

	if (t->lookup && !count_lookup(c, t->text))
		return *err_r = SPF_PERMERROR, -1;
	if (t->lookup && !expand_domain(c, domain, t->spec, target))
		return *err_r = SPF_PERMERROR, -1;

	switch (t->kind) {
	case T_ALL:
		return 1;
	case T_IP4:
	case T_IP6:
		if ((t->kind == T_IP6) != c->v6)
			return 0;
		return cidr_match(t->net, c->ip, bits);
	case T_INCLUDE: {
		/* §5.2 table */
		enum spf_result r = check_host(c, target, true);
		switch (r) {
		case SPF_PASS:
			return 1;
		case SPF_FAIL:
		case SPF_SOFTFAIL:
		case SPF_NEUTRAL:
			return 0;
		case SPF_TEMPERROR:
			return *err_r = SPF_TEMPERROR, -1;
		case SPF_NONE:
			set_reason(c, true, "include:%s has no SPF record", target);
			return *err_r = SPF_PERMERROR, -1;
		default:
			return *err_r = SPF_PERMERROR, -1;
		}
	}
	case T_A:
	case T_EXISTS: {
		bool v6 = t->kind == T_A && c->v6; /* exists always queries A (§5.7) */
		rc = dns_addr(c, target, v6, &v, &n);
		if (rc < 0) {
			set_reason(c, true, "DNS temporary failure for %s of %s", v6 ? "AAAA" : "A",
			           target);
			return *err_r = SPF_TEMPERROR, -1;
		}
		if (rc > 0)
			return count_void(c, target) ? 0 : (*err_r = SPF_PERMERROR, -1);
		rc = t->kind == T_EXISTS ? 1 : addrs_match(c, v, n, bits);
		policy_strings_free(v, n);
		return rc;
	}
	case T_MX: {
		rc = domain_is_queryable(target) ? dns_call(c, c->dns->mx, target, &v, &n) : 1;
		if (rc < 0) {
			set_reason(c, true, "DNS temporary failure for MX of %s", target);
			return *err_r = SPF_TEMPERROR, -1;
		}
		if (rc > 0)
			return count_void(c, target) ? 0 : (*err_r = SPF_PERMERROR, -1);
		if (n > SPF_MX_MAX) {
			policy_strings_free(v, n);
			set_reason(c, true, "more than %d MX names for %s", SPF_MX_MAX, target);
			return *err_r = SPF_PERMERROR, -1;
		}
		int res = 0;
		for (size_t i = 0; i < n && res == 0; i++) {
			rc = dns_addr(c, trim_dot(v[i]), c->v6, &w, &nw);
			if (rc < 0) {
				set_reason(c, true, "DNS temporary failure for address of %.100s",
				           v[i]);
				*err_r = SPF_TEMPERROR;
				res = -1;
			} else if (rc == 0) {
				res = addrs_match(c, w, nw, bits);
				policy_strings_free(w, nw);
			}
		}
		policy_strings_free(v, n);
		return res;
	}
	case T_PTR: {
		/* §5.5: DNS errors make the mechanism (or the name) not match */
		rc = dns_call(c, c->dns->ptr, c->ip_text, &v, &n);
		if (rc < 0)
			return 0;
		if (rc > 0)
			return count_void(c, c->ip_text) ? 0 : (*err_r = SPF_PERMERROR, -1);
		size_t tl = strlen(target);
		int res = 0;
		for (size_t i = 0; i < n && i < SPF_PTR_MAX && res == 0; i++) {
			const char *name = trim_dot(v[i]);
			size_t len = strlen(name);
			bool in = (len == tl && strcasecmp(name, target) == 0) ||
			          (len > tl && name[len - tl - 1] == '.' &&
			           strcasecmp(name + len - tl, target) == 0);
			if (!in || dns_addr(c, name, c->v6, &w, &nw) != 0)
				continue;
			res = addrs_match(c, w, nw, c->v6 ? 128 : 32);
			policy_strings_free(w, nw);
		}
		policy_strings_free(v, n);
		return res;
	}
	default:
		return 0;
	}
}

static enum spf_result
eval_record(struct spf_ctx *c, const char *domain, const char *rec)
{
	size_t len = strlen(rec);
	if (len > SPF_RECORD_MAX)
		return ERR(c, SPF_PERMERROR, "SPF record of %s too long", domain);
	struct term_iter it = {rec + 6, rec + len};
	struct slice s, redirect = {0};
	struct spf_term t;
	bool have_redirect = false, have_exp = false;

	/* pass 1: syntax of every term (§4.6: any error → permerror before evaluation) */
	while (term_next(&it, &s)) {
		const char *e = term_parse(s, &t);
		if (e != NULL)
			return ERR(c, SPF_PERMERROR, "syntax error in %.*s: %s",
			           (int)(s.len > 80 ? 80 : s.len), s.p, e);
		if (t.kind == T_REDIRECT) {
			if (have_redirect)
				return ERR(c, SPF_PERMERROR, "more than one redirect modifier");
			have_redirect = true;
			redirect = s;
		} else if (t.kind == T_EXP) {
			if (have_exp)
				return ERR(c, SPF_PERMERROR, "more than one exp modifier");
			have_exp = true;
		}
	}

	/* pass 2: mechanisms left to right (§4.6.2) */
	it = (struct term_iter){rec + 6, rec + len};
	while (term_next(&it, &s)) {
		(void)term_parse(s, &t);
		if (t.kind >= T_REDIRECT)
			continue;
		enum spf_result err = SPF_PERMERROR;
		int m = mech_eval(c, domain, &t, &err);
		if (m < 0)
			return err;
		if (m > 0) {
			set_reason(c, false, "mechanism %.*s matched",
			           (int)(s.len > 120 ? 120 : s.len), s.p);
			return t.qual;
		}
	}

	/* §6.1: redirect only when nothing matched */
	if (have_redirect) {
		char target[256];
		(void)term_parse(redirect, &t);
		if (!count_lookup(c, redirect) || !expand_domain(c, domain, t.spec, target))
			return SPF_PERMERROR;
		enum spf_result r = check_host(c, target, true);
		if (r == SPF_NONE)
			return ERR(c, SPF_PERMERROR, "redirect=%s has no SPF record", target);
		return r;
	}
	set_reason(c, false, "no mechanism matched in the record of %s", domain);
	return SPF_NEUTRAL;
}

/* check_host(<ip>, <domain>, <sender>) of §4. nested: reached by include/redirect, whose TXT
 * lookup counts as a void lookup when empty. */
static enum spf_result
check_host(struct spf_ctx *c, const char *domain, bool nested)
{
	char **v = NULL;
	size_t n = 0;
	/* §4.3: a malformed or single-label domain has no record */
	if (!domain_is_queryable(domain) || strchr(domain, '.') == NULL) {
		set_reason(c, false, "%s is not a valid domain name", domain);
		return SPF_NONE;
	}
	int rc = dns_call(c, c->dns->txt, domain, &v, &n);
	if (rc < 0)
		return ERR(c, SPF_TEMPERROR, "DNS temporary failure for TXT of %s", domain);
	if (rc > 0) {
		if (nested && !count_void(c, domain))
			return SPF_PERMERROR;
		set_reason(c, false, "no SPF record at %s", domain);
		return SPF_NONE;
	}
	/* §4.5: records beginning with "v=spf1" and then a space or the end */
	const char *rec = NULL;
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] != NULL && strncasecmp(v[i], "v=spf1", 6) == 0 &&
		    (v[i][6] == '\0' || v[i][6] == ' ')) {
			rec = v[i];
			found++;
		}
	}
	enum spf_result r;
	if (found == 0) {
		set_reason(c, false, "no SPF record at %s", domain);
		r = SPF_NONE;
	} else if (found > 1) {
		r = ERR(c, SPF_PERMERROR, "more than one SPF record at %s", domain);
	} else {
		r = eval_record(c, domain, rec);
	}
	policy_strings_free(v, n);
	return r;
}

/* Fills the client address; false when it is not an address. */
static bool
ctx_set_ip(struct spf_ctx *c, const char *ip)
{
	unsigned char a[16];
	if (ip == NULL)
		return false;
	if (inet_pton(AF_INET, ip, a) == 1) {
		c->v6 = false;
		memcpy(c->ip, a, 4);
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		c->v6 = memcmp(a, mapped, 12) != 0; /* IPv4-mapped: the IPv4 address (§5) */
		memcpy(c->ip, c->v6 ? a : a + 12, c->v6 ? 16 : 4);
	} else {
		return false;
	}
	return inet_ntop(c->v6 ? AF_INET6 : AF_INET, c->ip, c->ip_text, sizeof c->ip_text) != NULL;
}

void
spf_check(const struct spf_request *req, const struct policy_dns *dns, struct spf_outcome *out)
{
	struct spf_ctx *c = xcalloc(1, sizeof *c);
	const char *mf = req->mail_from != NULL ? req->mail_from : "";
	const char *helo = req->helo != NULL ? req->helo : "";
	char domain[256];

	memset(out, 0, sizeof *out);
	c->req = req;
	c->dns = dns;
	/* §2.3/§2.4: the null sender is checked as postmaster@helo */
	out->helo_identity = mf[0] == '\0';
	const char *at = strrchr(mf, '@');
	int n;
	if (out->helo_identity)
		n = snprintf(c->sender, sizeof c->sender, "postmaster@%s", helo);
	else if (at == NULL || at == mf) /* §4.3: no local part → postmaster */
		n = snprintf(c->sender, sizeof c->sender, "postmaster@%s", at ? at + 1 : mf);
	else
		n = snprintf(c->sender, sizeof c->sender, "%s", mf);
	at = strrchr(c->sender, '@');
	c->local_len = (size_t)(at - c->sender);
	c->sender_domain = at + 1;

	snprintf(domain, sizeof domain, "%.255s", c->sender_domain);
	size_t dl = strlen(domain);
	if (dl > 0 && domain[dl - 1] == '.')
		domain[--dl] = '\0';
	for (size_t i = 0; i < dl; i++)
		out->domain[i] = (char)to_lower((unsigned char)domain[i]);

	if (n < 0 || (size_t)n >= sizeof c->sender)
		out->result = ERR(c, SPF_PERMERROR, "sender address too long");
	else if (!ctx_set_ip(c, req->ip))
		out->result = ERR(c, SPF_PERMERROR, "invalid client address");
	else
		out->result = check_host(c, out->domain, false);
	snprintf(out->reason, sizeof out->reason, "%s", c->reason);
	free(c);
}
