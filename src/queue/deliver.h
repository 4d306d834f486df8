/* The delivery worker (DESIGN.md §7): takes one struct queue_batch (one message, one destination
 * domain, its recipients), finds where to send it, runs one SMTP transaction and reports every
 * recipient's result with queue_batch_done. It is the scheduler's queue_deliver_fn.
 *
 * Routing, first match wins:
 *   1. routes: a per-domain "host:port" (no MX lookup; host may be an IP literal or a name whose
 *      A/AAAA are looked up);
 *   2. relay: the smarthost "host:port" for every domain;
 *   3. MX lookup (dns_mx): null MX (RFC 7505) bounces every recipient at once with 5.1.10; no MX
 *      uses the domain itself (implicit MX, RFC 5321 §5.1); the hosts are tried in order, each
 *      host's addresses (IPv6 first, then IPv4) in turn, on mx_port.
 * A connection failure, a TLS failure, a 4xx at greeting/EHLO/MAIL moves on to the next address
 * and host; a 5xx at greeting/EHLO/MAIL also moves on, and becomes permanent only when every host
 * answered so (RFC 5321 §5.1 allows trying others). Once RCPT is reached the attempt ends there:
 * per-recipient 4xx -> QUEUE_TEMPFAIL, 5xx -> QUEUE_PERMFAIL, with the remote reply kept.
 *
 * TLS: STARTTLS whenever the server offers it (opportunistic, RFC 7435): a certificate that does
 * not verify is logged and recorded as tls=unverified, not fatal. Exception: a message with
 * REQUIRETLS (RFC 8689) needs a verified certificate, else the host is skipped with a temporary
 * failure ("4.7.10 REQUIRETLS: no verified TLS").
 *
 * Connection reuse: after a transaction whose results were committed (queue_batch_done, before
 * anything else is sent), the connection carries the next due message of the same destination
 * domain, or of another domain routed (routes/relay) to the same host:port
 * (queue_batch_next_route, RSET handled by the SMTP client), at most 100 messages per
 * connection; it is closed (QUIT) when nothing more is due, on a 421 or a failure before RCPT,
 * on any I/O error, or when the scheduler stops. A follower whose transaction dies before RCPT
 * is given back (due at once, no attempt counted); a REQUIRETLS follower needs a verified TLS
 * session, else it is given back too. "queue - connection relay=... messages=n" is logged for
 * a connection that carried more than one message.
 *
 * Shutdown: reads wait in slices of 500 ms and check queue_sched_stopping; once stopping, the
 * session is aborted, no further address is tried, and the report is interrupted: unfinished
 * recipients are due again at once without an attempt counted (delivered/bounced ones stay
 * recorded). Not sliced (gaps): the TCP connect (delivery.connect_timeout), the TLS handshake
 * and socket writes, which keep their own deadlines.
 *
 * Logging (STYLE.md B.7), one line per recipient:
 *   queue <msgid> delivered rcpt=<a@b> relay=mx.example[192.0.2.1]:25 delay=2.1 dsn=2.0.0
 *         tls=TLSv1.3
 *   queue <msgid> deferred|bounced rcpt=... relay=... delay=... dsn=4.x.x reply="..."
 *
 * Thread safety: a struct queue_deliver is immutable after queue_deliver_new and shared by all
 * worker threads. */
#ifndef LIGHTR_QUEUE_DELIVER_H
#define LIGHTR_QUEUE_DELIVER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/sched.h"
#include "util/err.h"

struct dns_resolver;

/* One per-domain route: mail for domain goes to host:port without MX lookup. */
struct queue_route {
	const char *domain; /* lower-case, no trailing dot */
	const char *hostport;
};

/* DNS as the worker sees it. The default (ops NULL) uses dns_mx / dns_addrs on cfg.dns; unit
 * tests substitute fakes. */
enum queue_dns_rc {
	QUEUE_DNS_OK,       /* *n_r >= 1 entries */
	QUEUE_DNS_NULLMX,   /* RFC 7505 null MX (mx only) */
	QUEUE_DNS_NOTFOUND, /* NXDOMAIN / no address: permanent */
	QUEUE_DNS_TEMP,     /* SERVFAIL, timeout: temporary */
};
#define QUEUE_HOST_MAX 256
#define QUEUE_IP_MAX   48
struct queue_dns_ops {
	/* MX hosts of domain in the order to try (implicit MX: the domain itself). */
	enum queue_dns_rc (*mx)(void *ctx, const char *domain, char (*hosts)[QUEUE_HOST_MAX],
	                        size_t max, size_t *n_r, char *why, size_t why_len);
	/* Numeric addresses of host, IPv6 first, then IPv4. */
	enum queue_dns_rc (*addrs)(void *ctx, const char *host, char (*ips)[QUEUE_IP_MAX],
	                           size_t max, size_t *n_r, char *why, size_t why_len);
	void *ctx;
};

enum queue_relay_tls {
	QUEUE_RELAY_STARTTLS, /* STARTTLS when offered (opportunistic), the default */
	QUEUE_RELAY_NONE,     /* never TLS */
	QUEUE_RELAY_TLS,      /* implicit TLS right after connect (port 465) */
};

struct queue_deliver_config {
	struct dns_resolver *dns; /* required unless every destination is routed or dns_ops set */
	const struct queue_dns_ops *dns_ops; /* NULL: the resolver (copied when set) */
	SSL_CTX *tls;           /* client context (net_tls_client_ctx); NULL = never STARTTLS */
	const char *helo;       /* EHLO name (config hostname) */
	const char *relay;      /* smarthost "host:port"; NULL/"" = none */
	const char *relay_user; /* AUTH PLAIN at the smarthost (under TLS only); NULL = none */
	const char *relay_pass;
	enum queue_relay_tls relay_tls; /* TLS towards the smarthost */
	const struct queue_route *routes;
	size_t n_routes;
	uint16_t mx_port;            /* port for MX hosts; 0: 25 (tests use another) */
	uint32_t connect_timeout;    /* seconds per address; 0: 30 */
	const char *source_address4; /* bind IPv4 connections to this; NULL = any */
	const char *source_address6; /* bind IPv6 connections to this; NULL = any */
	size_t max_hosts;            /* MX hosts tried per attempt; 0: 5 */
	size_t max_addrs;            /* addresses tried per attempt, all hosts together; 0: 10 */
};

struct queue_deliver;

/* Copies cfg (strings included). The resolver and TLS context stay the caller's and must outlive
 * the struct queue_deliver. */
int queue_deliver_new(const struct queue_deliver_config *cfg, struct queue_deliver **d_r,
                      struct err *err);
void queue_deliver_free(struct queue_deliver **dp);

/* queue_deliver_fn: ctx is the struct queue_deliver. */
void queue_deliver_batch(void *ctx, struct queue_batch *b);

/* ---- pieces exposed for unit tests ---- */

/* A destination to try: host name (for SNI/logs), port, and whether it came from MX. */
struct queue_target {
	char host[QUEUE_HOST_MAX];
	uint16_t port;
	bool from_mx;
	bool relay; /* the smarthost (delivery.relay): AUTH and relay_tls apply */
};

/* Parses "host:port", "[v6]:port" or "host" (port = default_port) into t. -1 + err when bad. */
int queue_target_parse(const char *hostport, uint16_t default_port, struct queue_target *t,
                       struct err *err);

/* Where mail for domain goes when routes/relay apply: 1 with *t filled (route first, then
 * relay), 0 when MX lookup is needed, -1 + err for a malformed route/relay. */
int queue_route_lookup(const struct queue_deliver *d, const char *domain, struct queue_target *t,
                       struct err *err);

/* The targets of one attempt for domain, in order: the route or relay (1 target), else the MX
 * hosts (port mx_port). Returns QUEUE_DNS_OK with *n_r targets, or the DNS outcome (NULLMX,
 * NOTFOUND, TEMP) with the reason in why; a malformed route/relay is QUEUE_DNS_TEMP (a config
 * problem must not bounce mail). */
enum queue_dns_rc queue_deliver_targets(const struct queue_deliver *d, const char *domain,
                                        struct queue_target *t, size_t max, size_t *n_r, char *why,
                                        size_t why_len);

#endif
