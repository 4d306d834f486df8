/* resolver - MX, A/AAAA and TXT lookups through libunbound's synchronous API (ub_resolve).
 *
 * One ub_ctx per struct dns_resolver, configured in dns_resolver_new and then shared: libunbound
 * documents its functions as thread-safe, and each synchronous ub_resolve creates its own worker
 * over the shared cache. Answers are read from ub_result.data (rdata with names decompressed).
 *
 * Timeouts are libunbound's defaults (about 17 s until SERVFAIL for a silent forwarder). Capping
 * infra-cache-max-rtt shortens that to ~5 s, but then one silent name marks the forwarder as down
 * and every later query fails for infra-host-ttl, so it is not done. */
#include "dns/resolver.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

#include "util/xalloc.h"

/* RR types and classes (RFC 1035 §3.2.2, RFC 3596 §2.1). */
enum { DNS_T_A = 1, DNS_T_PTR = 12, DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_C_IN = 1 };
/* RCODEs (RFC 1035 §4.1.1). */
enum { DNS_RCODE_NOERROR = 0, DNS_RCODE_SERVFAIL = 2, DNS_RCODE_NXDOMAIN = 3 };

/* Records read from one answer before sorting; the answer is at most 64 KiB anyway. */
#define DNS_MX_READ_MAX 1024

struct dns_resolver {
	struct ub_ctx *ctx;
};

/* Built-in local zones that would hide names from forwarders (unbound.conf(5) "local-zone").
 * They are overridden as "transparent" (answered by the forwarders): libunbound ignores
 * "nodefault" set through ub_ctx_set_option. */
static const char *const dns_nodefault_zones[] = {
    "test.", "invalid.", "localhost.", "onion.", "home.arpa.", "local.",
};

/* dns_forwarder_parse - "ip", "ip@port", "ipv4:port", "[ipv6]:port" into "ip@port" (or "ip"). */
static int
dns_forwarder_parse(const char *s, char *out, size_t outsz)
{
	char host[DNS_ADDR_STRLEN + 1];
	const char *port = NULL;
	size_t hlen;
	const char *at = strchr(s, '@');
	const char *colon = strchr(s, ':');
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			return -1;
		hlen = (size_t)(close - s - 1);
		s++;
		if (close[1] == ':' || close[1] == '@')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
	} else if (at != NULL) {
		hlen = (size_t)(at - s);
		port = at + 1;
	} else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		hlen = (size_t)(colon - s);
		port = colon + 1;
	} else {
		hlen = strlen(s);
	}
	if (hlen == 0 || hlen >= sizeof host)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	unsigned char bin[16];
	if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)
		return -1;
	unsigned long p = 0;
	if (port != NULL) {
		if (*port == '\0' || strlen(port) > 5)
			return -1;
		for (const char *c = port; *c; c++) {
			if (!isdigit((unsigned char)*c))
				return -1;
			p = p * 10 + (unsigned long)(*c - '0');
		}
		if (p == 0 || p > 65535)
			return -1;
	}
	int w = port != NULL ? snprintf(out, outsz, "%s@%lu", host, p)
	                     : snprintf(out, outsz, "%s", host);
	return w < 0 || (size_t)w >= outsz ? -1 : 0;
}

static int
dns_ub_fail(struct err *err, int code, int ub_err, const char *what)
{
	return err_set(err, code, "%s: %s", what, ub_strerror(ub_err));
}

struct dns_resolver *
dns_resolver_new(const char *const *forwarders, size_t n, struct err *err)
{
	struct ub_ctx *ctx = ub_ctx_create();
	if (ctx == NULL) {
		err_set(err, DNS_EPERM, "dns: ub_ctx_create failed");
		return NULL;
	}
	int rc;
	if (n == 0) {
		if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0) {
			dns_ub_fail(err, DNS_EPERM, rc, "dns: reading /etc/resolv.conf");
			goto fail;
		}
		/* /etc/hosts is optional. */
		(void)ub_ctx_hosts(ctx, NULL);
	} else {
		if ((rc = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) != 0) {
			dns_ub_fail(err, DNS_EPERM, rc, "dns: do-not-query-localhost");
			goto fail;
		}
		for (size_t i = 0; i < sizeof dns_nodefault_zones / sizeof dns_nodefault_zones[0];
		     i++) {
			char v[64];
			(void)snprintf(v, sizeof v, "%s transparent", dns_nodefault_zones[i]);
			if ((rc = ub_ctx_set_option(ctx, "local-zone:", v)) != 0) {
				dns_ub_fail(err, DNS_EPERM, rc, "dns: local-zone");
				goto fail;
			}
		}
		for (size_t i = 0; i < n; i++) {
			char fwd[DNS_ADDR_STRLEN + 8];
			if (forwarders[i] == NULL ||
			    dns_forwarder_parse(forwarders[i], fwd, sizeof fwd) != 0) {
				err_set(err, DNS_EPERM, "dns: bad forwarder \"%s\"",
				        forwarders[i] ? forwarders[i] : "(null)");
				goto fail;
			}
			if ((rc = ub_ctx_set_fwd(ctx, fwd)) != 0) {
				dns_ub_fail(err, DNS_EPERM, rc, "dns: forwarder");
				goto fail;
			}
		}
	}
	struct dns_resolver *r = xcalloc(1, sizeof *r);
	r->ctx = ctx;
	return r;
fail:
	ub_ctx_delete(ctx);
	return NULL;
}

void
dns_resolver_free(struct dns_resolver **rp)
{
	if (rp == NULL || *rp == NULL)
		return;
	ub_ctx_delete((*rp)->ctx);
	x_free(rp);
}

/* dns_name_check - a query name: 1..253 chars (a trailing dot allowed), no empty labels or
 * labels over 63, printable ASCII without spaces or backslashes. */
static int
dns_name_check(const char *name, struct err *err)
{
	size_t len = name ? strlen(name) : 0;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return err_set(err, DNS_EPERM, "dns: invalid name length");
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return err_set(err, DNS_EPERM, "dns: empty label in name");
			label = 0;
			continue;
		}
		if (c <= ' ' || c >= 0x7f || c == '\\')
			return err_set(err, DNS_EPERM, "dns: invalid character in name");
		if (++label > 63)
			return err_set(err, DNS_EPERM, "dns: label too long");
	}
	return 0;
}

/* dns_wire_name - reads an uncompressed wire name at p[0..len) into lower-case text without the
 * trailing dot ("" for the root). Labels with '.', '\\' or non-printable bytes are rejected.
 * Returns the bytes consumed, or -1. */
static int
dns_wire_name(const unsigned char *p, size_t len, char *out, size_t outsz)
{
	size_t i = 0, o = 0;
	for (;;) {
		if (i >= len)
			return -1;
		size_t l = p[i++];
		if (l == 0)
			break;
		if (l > 63 || i + l > len)
			return -1; /* compression pointers never appear in ub_result data */
		if (o != 0) {
			if (o + 1 >= outsz)
				return -1;
			out[o++] = '.';
		}
		for (size_t k = 0; k < l; k++) {
			unsigned char c = p[i + k];
			if (c <= ' ' || c >= 0x7f || c == '.' || c == '\\')
				return -1;
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)tolower(c);
		}
		i += l;
	}
	if (o > DNS_NAME_MAX)
		return -1;
	out[o] = '\0';
	return (int)i;
}

/* dns_query - one ub_resolve; on NOERROR/NXDOMAIN returns 0 with *res_r set (the caller frees it
 * with ub_resolve_free); anything else is DNS_ETEMP. */
static int
dns_query(struct dns_resolver *r, const char *name, int type, const char *tname,
          struct ub_result **res_r, struct err *err)
{
	struct ub_result *res = NULL;
	*res_r = NULL;
	int rc = ub_resolve(r->ctx, name, type, DNS_C_IN, &res);
	if (rc != 0)
		return err_set(err, DNS_ETEMP, "dns: %s %s: %s", tname, name, ub_strerror(rc));
	if (res->bogus) {
		err_set(err, DNS_ETEMP, "dns: %s %s: DNSSEC validation failed", tname, name);
		ub_resolve_free(res);
		return -1;
	}
	if (res->rcode != DNS_RCODE_NOERROR && res->rcode != DNS_RCODE_NXDOMAIN) {
		err_set(err, DNS_ETEMP, "dns: %s %s: %s", tname, name,
		        res->rcode == DNS_RCODE_SERVFAIL ? "SERVFAIL" : "server failure");
		ub_resolve_free(res);
		return -1;
	}
	*res_r = res;
	return 0;
}

/* dns_addrs_type - appends the A or AAAA addresses of host to res. Returns 0, or -1 with err. */
static int
dns_addrs_type(struct dns_resolver *r, const char *host, int type, struct dns_addr_result *res,
               bool *nx_r, struct err *err)
{
	struct ub_result *u;
	if (dns_query(r, host, type, type == DNS_T_A ? "A" : "AAAA", &u, err) != 0)
		return -1;
	*nx_r = u->nxdomain != 0 || u->rcode == DNS_RCODE_NXDOMAIN;
	int family = type == DNS_T_A ? AF_INET : AF_INET6;
	int want = type == DNS_T_A ? 4 : 16;
	for (size_t i = 0; u->havedata && u->data[i] != NULL && res->n < DNS_ADDRS_MAX; i++) {
		if (u->len[i] != want)
			continue;
		struct dns_addr *a = &res->a[res->n];
		if (inet_ntop(family, u->data[i], a->addr, sizeof a->addr) == NULL)
			continue;
		a->family = family;
		res->n++;
	}
	ub_resolve_free(u);
	return 0;
}

int
dns_addrs(struct dns_resolver *r, const char *host, bool want_v6, struct dns_addr_result *res,
          struct err *err)
{
	memset(res, 0, sizeof *res);
	if (host != NULL && dns_is_ip_literal(host)) {
		const char *s = host;
		size_t len = strlen(s);
		if (s[0] == '[') {
			s++;
			len -= 2;
			if (len >= 5 && strncasecmp(s, "IPv6:", 5) == 0) {
				s += 5;
				len -= 5;
			}
		}
		char tmp[DNS_ADDR_STRLEN];
		unsigned char bin[16];
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		int family = inet_pton(AF_INET, tmp, bin) == 1 ? AF_INET : AF_INET6;
		if (family == AF_INET6 && !want_v6)
			return err_set(err, DNS_EPERM, "dns: %s: IPv6 literal but IPv6 not wanted",
			               host);
		if (inet_pton(family, tmp, bin) != 1 ||
		    inet_ntop(family, bin, res->a[0].addr, sizeof res->a[0].addr) == NULL)
			return err_set(err, DNS_EPERM, "dns: %s: bad address literal", host);
		res->a[0].family = family;
		res->n = 1;
		return 0;
	}
	if (dns_name_check(host, err) != 0)
		return -1;
	bool nx6 = false, nx4 = false;
	struct err err6 = {0};
	int rc6 = 0;
	if (want_v6)
		rc6 = dns_addrs_type(r, host, DNS_T_AAAA, res, &nx6, &err6);
	size_t n6 = res->n;
	if (dns_addrs_type(r, host, DNS_T_A, res, &nx4, err) != 0) {
		if (n6 > 0) {
			err_clear(err); /* IPv6 addresses are enough to deliver */
			return 0;
		}
		return -1;
	}
	if (res->n > 0)
		return 0;
	if (rc6 != 0) {
		if (err != NULL)
			*err = err6;
		return -1;
	}
	if (nx4 || nx6) {
		res->nxdomain = true;
		return err_set(err, DNS_EPERM, "dns: %s: no such domain (NXDOMAIN)", host);
	}
	return err_set(err, DNS_EPERM, "dns: %s: no address record", host);
}

int
dns_mx(struct dns_resolver *r, const char *domain, struct dns_mx_result *res, struct err *err)
{
	memset(res, 0, sizeof *res);
	if (dns_name_check(domain, err) != 0)
		return -1;
	struct ub_result *u;
	if (dns_query(r, domain, DNS_T_MX, "MX", &u, err) != 0)
		return -1;
	if (u->nxdomain || u->rcode == DNS_RCODE_NXDOMAIN) {
		ub_resolve_free(u);
		res->nxdomain = true;
		return err_set(err, DNS_EPERM, "dns: %s: no such domain (NXDOMAIN)", domain);
	}
	res->secure = u->secure != 0;
	size_t nrec = 0;
	for (size_t i = 0; u->havedata && u->data[i] != NULL; i++)
		nrec++;
	if (nrec > DNS_MX_READ_MAX)
		nrec = DNS_MX_READ_MAX;
	struct dns_mx *all = nrec ? xcalloc(nrec, sizeof *all) : NULL;
	size_t n = 0, n_literal = 0;
	for (size_t i = 0; i < nrec; i++) {
		const unsigned char *p = (const unsigned char *)u->data[i];
		int len = u->len[i];
		if (len < 3)
			continue;
		struct dns_mx *m = &all[n];
		m->pref = (uint16_t)((p[0] << 8) | p[1]);
		if (dns_wire_name(p + 2, (size_t)len - 2, m->host, sizeof m->host) < 0)
			continue; /* unusable exchange name */
		if (m->host[0] != '\0' && dns_is_ip_literal(m->host)) {
			n_literal++;
			continue; /* RFC 5321 §5.1: the exchange must be a domain name */
		}
		n++;
	}
	ub_resolve_free(u);
	if (dns_mx_is_null(all, n)) {
		free(all);
		res->null_mx = true;
		return err_set(err, DNS_EPERM,
		               "dns: %s: null MX, domain accepts no mail (RFC 7505)", domain);
	}
	/* Drop "." exchanges mixed with real ones: they cannot be delivered to. */
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (all[i].host[0] != '\0')
			all[k++] = all[i];
	n = k;
	if (n == 0 && nrec > 0) {
		free(all);
		return err_set(err, DNS_EPERM, "dns: %s: no usable MX record%s", domain,
		               n_literal ? " (IP literal exchanges)" : "");
	}
	if (n > 0) {
		dns_mx_sort(all, n, NULL, NULL);
		if (n > DNS_MX_MAX)
			n = DNS_MX_MAX;
		memcpy(res->mx, all, n * sizeof *all);
		res->n = n;
		free(all);
		return 0;
	}
	free(all);
	/* No MX: implicit MX if the domain has an address (RFC 5321 §5.1). */
	struct dns_addr_result addrs;
	struct err aerr = {0};
	if (dns_addrs(r, domain, true, &addrs, &aerr) != 0) {
		if (aerr.code == DNS_EPERM) {
			res->nxdomain = addrs.nxdomain;
			return err_set(err, DNS_EPERM, "dns: %s: no MX and no address record",
			               domain);
		}
		if (err != NULL)
			*err = aerr;
		return -1;
	}
	size_t dlen = strlen(domain);
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	for (size_t i = 0; i < dlen; i++)
		res->mx[0].host[i] = (char)tolower((unsigned char)domain[i]);
	res->mx[0].host[dlen] = '\0';
	res->mx[0].pref = 0;
	res->n = 1;
	res->implicit = true;
	return 0;
}

int
dns_txt(struct dns_resolver *r, const char *name, struct dns_txt_result *res, struct err *err)
{
	memset(res, 0, sizeof *res);
	if (dns_name_check(name, err) != 0)
		return -1;
	struct ub_result *u;
	if (dns_query(r, name, DNS_T_TXT, "TXT", &u, err) != 0)
		return -1;
	res->nxdomain = u->nxdomain || u->rcode == DNS_RCODE_NXDOMAIN;
	size_t nrec = 0;
	for (size_t i = 0; u->havedata && u->data[i] != NULL; i++)
		nrec++;
	if (nrec > DNS_TXT_MAX)
		nrec = DNS_TXT_MAX;
	if (nrec > 0) {
		res->txt = xcalloc(nrec, sizeof *res->txt);
		res->len = xcalloc(nrec, sizeof *res->len);
	}
	for (size_t i = 0; i < nrec; i++) {
		const unsigned char *p = (const unsigned char *)u->data[i];
		size_t len = (size_t)u->len[i], o = 0;
		char *s = xmalloc(len + 1); /* the text is shorter than its rdata */
		for (size_t j = 0; j < len;) {
			size_t l = p[j++];
			if (j + l > len) {
				l = len - j; /* malformed: keep what is there */
			}
			memcpy(s + o, p + j, l);
			o += l;
			j += l;
		}
		s[o] = '\0';
		res->txt[res->n] = s;
		res->len[res->n] = o;
		res->n++;
	}
	ub_resolve_free(u);
	return 0;
}

int
dns_ptr_name(const char *ip, char *out, size_t n)
{
	unsigned char b[16];
	size_t o = 0;
	int w;
	if (ip == NULL || n == 0)
		return -1;
	if (inet_pton(AF_INET, ip, b) == 1) {
		w = snprintf(out, n, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
		return w < 0 || (size_t)w >= n ? -1 : 0;
	}
	if (inet_pton(AF_INET6, ip, b) != 1)
		return -1;
	static const char hex[] = "0123456789abcdef";
	if (n < 16 * 4 + sizeof "ip6.arpa")
		return -1;
	for (int i = 15; i >= 0; i--) {
		out[o++] = hex[b[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[b[i] >> 4];
		out[o++] = '.';
	}
	memcpy(out + o, "ip6.arpa", sizeof "ip6.arpa");
	return 0;
}

int
dns_ptr(struct dns_resolver *r, const char *ip, struct dns_txt_result *res, struct err *err)
{
	char name[80];
	memset(res, 0, sizeof *res);
	if (dns_ptr_name(ip, name, sizeof name) != 0)
		return err_set(err, DNS_EPERM, "dns: PTR: not an IP address");
	struct ub_result *u;
	if (dns_query(r, name, DNS_T_PTR, "PTR", &u, err) != 0)
		return -1;
	res->nxdomain = u->nxdomain || u->rcode == DNS_RCODE_NXDOMAIN;
	size_t nrec = 0;
	for (size_t i = 0; u->havedata && u->data[i] != NULL; i++)
		nrec++;
	if (nrec > DNS_PTR_MAX)
		nrec = DNS_PTR_MAX;
	if (nrec > 0) {
		res->txt = xcalloc(nrec, sizeof *res->txt);
		res->len = xcalloc(nrec, sizeof *res->len);
	}
	for (size_t i = 0; i < nrec; i++) {
		char host[DNS_NAME_MAX + 1];
		if (u->len[i] <= 0 ||
		    dns_wire_name((const unsigned char *)u->data[i], (size_t)u->len[i], host,
		                  sizeof host) < 0 ||
		    host[0] == '\0')
			continue; /* unusable target name */
		res->txt[res->n] = xstrdup(host);
		res->len[res->n] = strlen(host);
		res->n++;
	}
	ub_resolve_free(u);
	return 0;
}

void
dns_txt_result_free(struct dns_txt_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++)
		free(res->txt[i]);
	x_free(&res->txt);
	x_free(&res->len);
	res->n = 0;
}
