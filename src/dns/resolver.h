/* DNS lookups for delivery and policy (DESIGN.md §7): MX, A/AAAA and TXT through libunbound's
 * synchronous API (ub_resolve).
 *
 * Errors: every fallible function returns 0 or -1; on -1 err->code is DNS_ETEMP (SERVFAIL,
 * timeout, no usable answer from the network: retry later) or DNS_EPERM (the name does not exist,
 * null MX, invalid name or argument: do not retry). The result structs carry the details
 * (nxdomain, null_mx) so that callers can pick the right enhanced status code.
 *
 * Names: given as presentation text without escapes ("mx1.example" or "mx1.example."),
 * at most DNS_NAME_MAX characters; names in results are lower-case and have no trailing dot.
 *
 * Thread safety: a struct dns_resolver is configured in dns_resolver_new and then only read;
 * dns_mx, dns_addrs, dns_txt and dns_ptr may be called from any number of threads at once on the
 * same resolver. libunbound documents its functions as thread-safe; each synchronous ub_resolve
 * runs its own worker, and all of them share the one context's cache. dns_resolver_free must not
 * race with lookups. */
#ifndef LIGHTR_DNS_RESOLVER_H
#define LIGHTR_DNS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* err->code values. */
enum {
	DNS_ETEMP = 1, /* temporary: SERVFAIL, timeout, network or resolver failure */
	DNS_EPERM = 2, /* permanent: NXDOMAIN, null MX, bad name or argument */
};

#define DNS_NAME_MAX    253 /* RFC 1035 §2.3.4: 255 octets on the wire, 253 in text form */
#define DNS_MX_MAX      64  /* MX records kept per domain; more are dropped after sorting */
#define DNS_ADDRS_MAX   32  /* addresses kept per host (AAAA and A together) */
#define DNS_ADDR_STRLEN 46  /* INET6_ADDRSTRLEN */
#define DNS_TXT_MAX     32  /* TXT records kept per name */

struct dns_mx {
	char host[DNS_NAME_MAX + 1]; /* "" for the root (null MX target) */
	uint16_t pref;
};

/* About 16.5 KiB: fine on a worker thread's stack, or allocate it. */
struct dns_mx_result {
	struct dns_mx mx[DNS_MX_MAX]; /* sorted: preference ascending, random among equals */
	size_t n;
	bool implicit; /* no MX records: mx[0] is the domain itself (RFC 5321 §5.1) */
	bool null_mx;  /* RFC 7505 null MX: the domain accepts no mail (n == 0, DNS_EPERM) */
	bool nxdomain; /* the domain does not exist (n == 0, DNS_EPERM) */
	bool secure;   /* the answer was DNSSEC-validated (only with a trust anchor; never now) */
};

struct dns_addr {
	int family;                 /* AF_INET6 or AF_INET */
	char addr[DNS_ADDR_STRLEN]; /* textual: "192.0.2.1", "2001:db8::1" */
};

struct dns_addr_result {
	struct dns_addr a[DNS_ADDRS_MAX]; /* all AAAA first (when wanted), then all A */
	size_t n;
	bool nxdomain; /* the host does not exist (n == 0, DNS_EPERM) */
};

struct dns_txt_result {
	char **txt;  /* n heap strings: each record's character-strings concatenated, NUL added */
	size_t *len; /* their lengths (a TXT string may contain NUL bytes) */
	size_t n;    /* at most DNS_TXT_MAX */
	bool nxdomain;
};

struct dns_resolver;

/* Creates a resolver. forwarders: n strings "ip", "ip@port", "ipv4:port" or "[ipv6]:port"
 * (loopback allowed); queries are sent to them with recursion desired, and libunbound's built-in
 * local zones test., invalid., localhost., onion., home.arpa. and local. are made transparent so
 * that the forwarders answer those names too. No DNSSEC trust anchor is set (no validation).
 * No per-query timeout: an unanswered query ends in DNS_ETEMP after libunbound's own retries
 * (about 17 s against one silent forwarder). n == 0: use the servers of /etc/resolv.conf (and
 * /etc/hosts); libunbound then answers the RFC 6761 special-use names itself. Returns NULL and sets
 * err (DNS_EPERM) on a bad forwarder or a libunbound failure. */
struct dns_resolver *dns_resolver_new(const char *const *forwarders, size_t n, struct err *err);
/* Frees *rp and sets it to NULL; accepts NULL. No lookup may be running. */
void dns_resolver_free(struct dns_resolver **rp);

/* MX lookup for domain, filling *res (always reset first):
 *  - MX records found: up to DNS_MX_MAX of them, sorted by dns_mx_sort; records whose exchange is
 *    an IP address literal are dropped (RFC 5321 §5.1: it must be a name); if none remain, -1
 *    with DNS_EPERM;
 *  - null MX (RFC 7505: the only MX record has the root "." as exchange): res->null_mx, -1 with
 *    DNS_EPERM;
 *  - no MX records but the name exists: if it has an A or AAAA record, one entry (the domain
 *    itself, pref 0) with res->implicit; otherwise -1 with DNS_EPERM;
 *  - NXDOMAIN: res->nxdomain, -1 with DNS_EPERM;
 *  - SERVFAIL, timeout, other failures: -1 with DNS_ETEMP.
 * A CNAME at domain is followed by libunbound. */
int dns_mx(struct dns_resolver *r, const char *domain, struct dns_mx_result *res, struct err *err);

/* A (and AAAA when want_v6) lookup for host, filling *res (always reset first): the AAAA
 * addresses first, then A, at most DNS_ADDRS_MAX; CNAMEs are followed by libunbound. If host is
 * itself an IPv4 or IPv6 literal (optionally in [brackets]), the result is that one address.
 * Returns 0 when at least one address was found. -1 with DNS_EPERM: NXDOMAIN (res->nxdomain) or
 * no address record; -1 with DNS_ETEMP: SERVFAIL/timeout on the A query (or on the AAAA query
 * when no A address was found). */
int dns_addrs(struct dns_resolver *r, const char *host, bool want_v6, struct dns_addr_result *res,
              struct err *err);

/* TXT lookup for name (for SPF/DMARC/DKIM): res is reset first and then owns heap strings; free
 * them with dns_txt_result_free. Returns 0 also when the name has no TXT record or does not exist
 * (n == 0; res->nxdomain tells which), because SPF/DMARC treat both as "no record"; -1 with
 * DNS_ETEMP on SERVFAIL/timeout, -1 with DNS_EPERM on an invalid name. */
int dns_txt(struct dns_resolver *r, const char *name, struct dns_txt_result *res, struct err *err);
void dns_txt_result_free(struct dns_txt_result *res);

/* PTR lookup for an IPv4 or IPv6 address given as text ("192.0.2.1", "2001:db8::1"; no
 * brackets), for SPF's ptr mechanism and %{p} macro: res is reset first and then holds the PTR
 * target names (lower-case, no trailing dot; txt[i] with len[i]) as heap strings, at most
 * DNS_PTR_MAX; free them with dns_txt_result_free. Targets that are not valid names are skipped.
 * Like dns_txt, returns 0 also when there is no PTR record or the reverse name does not exist
 * (n == 0; res->nxdomain tells which); -1 with DNS_ETEMP on SERVFAIL/timeout, -1 with DNS_EPERM
 * when ip is not an address. */
#define DNS_PTR_MAX 32 /* PTR names kept per address */
int dns_ptr(struct dns_resolver *r, const char *ip, struct dns_txt_result *res, struct err *err);
/* The reverse-lookup name of ip (RFC 1035 §3.5 "4.3.2.1.in-addr.arpa", RFC 3596 §2.5 nibbles
 * under "ip6.arpa"), without a trailing dot, into out (size n; 73 bytes are enough). Returns 0,
 * or -1 when ip is not an IPv4/IPv6 address or out is too small. */
int dns_ptr_name(const char *ip, char *out, size_t n);

/* ---- pure helpers (mx.c), exposed for tests and callers ---- */

/* Returns a uniformly random integer in [0, bound) (bound >= 1). */
typedef uint32_t dns_rand_fn(void *ctx, uint32_t bound);

/* Sorts mx[0..n) by preference ascending, then shuffles each run of equal preference with rnd
 * (RFC 5321 §5.1: randomize among equal preferences). Ties are first ordered by host name, so a
 * fixed rnd gives a fixed result. rnd NULL: uniform random from rand_bytes. */
void dns_mx_sort(struct dns_mx *mx, size_t n, dns_rand_fn *rnd, void *rnd_ctx);

/* True when the record set is a null MX (RFC 7505 §3): exactly one record, exchange "" or ".".
 * (A "." mixed with real exchanges is not a null MX; dns_mx drops such "." records.) */
bool dns_mx_is_null(const struct dns_mx *mx, size_t n);

/* True when s is an IPv4 or IPv6 address literal, optionally in brackets ("[192.0.2.1]"). */
bool dns_is_ip_literal(const char *s);

#endif
