/* Outbound connections and client-side TLS; see client.h. */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"

/* Fills ss from a numeric address; returns its length, 0 when ip is not a literal. */
static socklen_t
client_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof *s4;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return sizeof *s6;
	}
	return 0;
}

static int
client_poll_connect(int fd, int64_t deadline)
{
	for (;;) {
		int ms = -1;
		if (deadline != CONN_NO_DEADLINE) {
			int64_t left = deadline - clock_mono_ms();
			if (left <= 0)
				return CONN_TIMEOUT;
			ms = left > 60 * 60 * 1000 ? 60 * 60 * 1000 : (int)left;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int n = poll(&pfd, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return CONN_ERROR;
	}
}

struct conn *
net_client_connect(const char *ip, uint16_t port, const char *source_ip, int64_t deadline,
                   struct err *err)
{
	struct sockaddr_storage ss;
	socklen_t len = client_sockaddr(ip, port, &ss);
	if (len == 0) {
		err_set(err, 1, "connect %s: not a numeric address", ip);
		return NULL;
	}
	char shown[NET_ADDR_STR_MAX];
	net_addr_format((const struct sockaddr *)&ss, len, true, shown);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err_set_errno(err, 1, errno, "connect %s: socket", shown);
		return NULL;
	}
	/* SMTP is request/response with small writes (the final ".\r\n" after the body): without
	 * this, each message waits out the peer's delayed ACK (measured ~40 ms per message). */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (source_ip != NULL && source_ip[0] != '\0') {
		struct sockaddr_storage src;
		socklen_t slen = client_sockaddr(source_ip, 0, &src);
		if (slen != 0 && src.ss_family == ss.ss_family &&
		    bind(fd, (const struct sockaddr *)&src, slen) < 0) {
			err_set_errno(err, 1, errno, "connect %s: bind %s", shown, source_ip);
			close(fd);
			return NULL;
		}
	}
	int rc;
	do {
		rc = connect(fd, (const struct sockaddr *)&ss, len);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0 && errno != EINPROGRESS) {
		err_set_errno(err, 1, errno, "connect %s", shown);
		close(fd);
		return NULL;
	}
	if (rc < 0) {
		int w = client_poll_connect(fd, deadline);
		if (w == CONN_TIMEOUT) {
			err_set(err, 1, "connect %s: timeout", shown);
			close(fd);
			return NULL;
		}
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (w < 0)
			soerr = errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr != 0) {
			err_set_errno(err, 1, soerr, "connect %s", shown);
			close(fd);
			return NULL;
		}
	}
	return conn_new(fd);
}

SSL_CTX *
net_tls_client_ctx(struct err *err)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		err_set(err, 1, "tls client: SSL_CTX_new failed");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		err_set(err, 1, "tls client: cannot set minimum version");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	/* A missing CA store only means nothing verifies (still opportunistic TLS). */
	(void)SSL_CTX_set_default_verify_paths(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ERR_clear_error();
	return ctx;
}

static bool
client_is_ip_literal(const char *host)
{
	unsigned char tmp[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

int
net_tls_client_start(struct conn *c, SSL_CTX *ctx, const char *host, int64_t deadline,
                     bool *verified_r)
{
	*verified_r = false;
	if (c->ssl) {
		(void)snprintf(c->err, sizeof c->err, "tls: already active");
		return CONN_ERROR;
	}
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
		(void)snprintf(c->err, sizeof c->err, "tls setup failed");
		SSL_free(ssl);
		ERR_clear_error();
		return CONN_ERROR;
	}
	bool named = host != NULL && host[0] != '\0' && !client_is_ip_literal(host);
	if (named) {
		(void)SSL_set_tlsext_host_name(ssl, host);
		(void)SSL_set1_host(ssl, host);
	} else if (host != NULL && host[0] != '\0') {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		(void)X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	}
	SSL_set_connect_state(ssl);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int rc = SSL_connect(ssl);
		if (rc == 1)
			break;
		int e = SSL_get_error(ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			int64_t left =
			    deadline == CONN_NO_DEADLINE ? -1 : deadline - clock_mono_ms();
			if (deadline != CONN_NO_DEADLINE && left <= 0) {
				(void)snprintf(c->err, sizeof c->err, "tls handshake: timeout");
				SSL_free(ssl);
				ERR_clear_error();
				return CONN_TIMEOUT;
			}
			struct pollfd pfd = {.fd = c->fd,
			                     .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
			int ms = left < 0 ? -1 : left > 3600000 ? 3600000 : (int)left;
			(void)poll(&pfd, 1, ms);
			continue;
		}
		unsigned long le = ERR_get_error();
		if (le != 0) {
			char tmp[120];
			ERR_error_string_n(le, tmp, sizeof tmp);
			(void)snprintf(c->err, sizeof c->err, "tls handshake: %s", tmp);
		} else {
			(void)snprintf(c->err, sizeof c->err, "tls handshake: failed (%d)", e);
		}
		SSL_free(ssl);
		ERR_clear_error();
		return CONN_ERROR;
	}
	c->ssl = ssl;
	long vr = SSL_get_verify_result(ssl);
	X509 *peer = SSL_get1_peer_certificate(ssl);
	if (peer == NULL) {
		(void)snprintf(c->err, sizeof c->err, "certificate verify failed: no certificate");
	} else if (vr != X509_V_OK) {
		(void)snprintf(c->err, sizeof c->err, "certificate verify failed: %s",
		               X509_verify_cert_error_string(vr));
	} else {
		*verified_r = true;
	}
	X509_free(peer);
	ERR_clear_error();
	return 0;
}
