/* Server-side TLS set-up (OpenSSL 3): the SSL_CTX every TLS listener and STARTTLS upgrade
 * shares, and the self-signed certificate that makes a fresh install work with one command
 * (DESIGN.md §4). The SSL_CTX is immutable after net_tls_server_ctx() returns and may be used
 * by any number of threads at once. */
#ifndef LIGHTR_NET_TLS_H
#define LIGHTR_NET_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "util/err.h"

/* Self-signed certificates live ~1 year and are renewed at start-up when less than this many
 * days remain. */
#define NET_TLS_SELFSIGNED_DAYS 365
#define NET_TLS_RENEW_DAYS      30

/* A server context from PEM files: cert_file holds the certificate followed by its chain,
 * key_file the private key. TLS 1.2 minimum, forward-secret AEAD-first cipher list for TLS 1.2,
 * no compression, no renegotiation, server cipher preference, released buffers on idle
 * connections. Returns NULL with "cert.pem: ..." style text in err (unreadable file, key that
 * does not match the certificate, ...). */
SSL_CTX *net_tls_server_ctx(const char *cert_file, const char *key_file, struct err *err);
/* SSL_CTX_free and *ctxp = NULL; accepts NULL. */
void net_tls_ctx_free(SSL_CTX **ctxp);

enum net_tls_selfsigned {
	NET_TLS_REUSED,  /* dir/cert.pem and dir/key.pem existed and are valid long enough */
	NET_TLS_CREATED, /* none (or only one of them) existed: a new pair was written */
	NET_TLS_RENEWED, /* the existing certificate expires within NET_TLS_RENEW_DAYS */
};

/* Makes sure dir/cert.pem and dir/key.pem hold a usable self-signed pair for hostname,
 * creating dir (mode 0750) when missing. A new pair has an EC P-256 key (file mode 0600), CN =
 * hostname, subjectAltName DNS:hostname (IP: when hostname is an address), DNS:localhost and
 * IP:127.0.0.1, serverAuth, valid NET_TLS_SELFSIGNED_DAYS. Files are written under temporary
 * names and renamed into place. Returns 0 with *what_r set, or -1 with the reason in err. */
int net_tls_selfsigned_ensure(const char *dir, const char *hostname,
                              enum net_tls_selfsigned *what_r, struct err *err);

#endif
