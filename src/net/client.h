/* Outbound connections (DESIGN.md §7, delivery): connect to one address with a deadline and,
 * after STARTTLS, the client side of TLS. The result is an ordinary struct conn, so the caller
 * uses conn_read / conn_write / conn_read_line exactly as the server drivers do.
 *
 * TLS policy is the caller's: net_tls_client_start always completes the handshake when it can
 * (opportunistic TLS, RFC 3207 + RFC 7435: an unverifiable certificate is still better than
 * plaintext) and reports whether the peer's certificate verified against the system CA store and
 * matched the expected host name. A caller that requires verification (REQUIRETLS, a future
 * MTA-STS/DANE policy) closes the connection when *verified_r is false. */
#ifndef LIGHTR_NET_CLIENT_H
#define LIGHTR_NET_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "util/err.h"

/* Connects a TCP socket to ip (a numeric IPv4 or IPv6 literal, no brackets) port, bound first to
 * source_ip when it is non-NULL and non-empty (must be of the same family; a family mismatch is
 * skipped silently so that one source address of each family can be configured by the caller).
 * Non-blocking connect + poll, bounded by deadline (absolute, conn_deadline()). Returns the
 * connection, or NULL with the reason in err ("connect 192.0.2.1:25: Connection refused",
 * "... timeout"). */
struct conn *net_client_connect(const char *ip, uint16_t port, const char *source_ip,
                                int64_t deadline, struct err *err);

/* The client SSL_CTX shared by all delivery workers: TLS >= 1.2, system default CA store,
 * SSL_VERIFY_NONE at the handshake (verification is checked afterwards and reported, see above),
 * no compression, no renegotiation. Immutable once returned. NULL + err on failure. */
SSL_CTX *net_tls_client_ctx(struct err *err);

/* Client handshake on c (plaintext before): SNI = host (skipped when host is an IP literal or
 * empty) and host-name checking with SSL_set1_host. Returns 0 with *verified_r = true when the
 * chain verified and the name matched; on a verification failure 0 with *verified_r = false and
 * the reason in c->err ("certificate verify failed: self-signed certificate"). CONN_ERROR /
 * CONN_TIMEOUT when the handshake itself failed (connection unusable). Calling it with TLS
 * already up is an error. */
int net_tls_client_start(struct conn *c, SSL_CTX *ctx, const char *host, int64_t deadline,
                         bool *verified_r);

#endif
