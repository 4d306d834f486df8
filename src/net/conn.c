/* Connection I/O with deadlines and the STARTTLS upgrade; see conn.h. Every operation first
 * tries the non-blocking call and only then waits in poll() for what the socket (or OpenSSL,
 * through SSL_ERROR_WANT_READ/WRITE) says it needs, bounded by the deadline. OpenSSL's error
 * queue is per thread: it is cleared before each call and drained into c->err on failure. */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/xalloc.h"

struct conn *
conn_new(int fd)
{
	struct conn *c = xcalloc(1, sizeof *c);
	c->fd = fd;
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		net_addr_format((const struct sockaddr *)&ss, len, true, c->peer);
		net_addr_format((const struct sockaddr *)&ss, len, false, c->peer_ip);
	} else {
		c->peer[0] = c->peer_ip[0] = '?';
	}
	return c;
}

void
conn_free(struct conn **cp)
{
	struct conn *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	if (c->ssl) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl); /* one close_notify; do not wait for the peer's */
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

int64_t
conn_deadline(uint64_t timeout_ms)
{
	if (timeout_ms == 0 || timeout_ms > INT64_MAX / 2)
		return CONN_NO_DEADLINE;
	return clock_mono_ms() + (int64_t)timeout_ms;
}

/* c->err = "<what>: <strerror(e)>" (strerror is banned: not thread-safe). */
static void
conn_set_errno(struct conn *c, const char *what, int e)
{
	char tmp[96];
	const char *text = strerror_r(e, tmp, sizeof tmp); /* GNU variant (_GNU_SOURCE) */
	(void)snprintf(c->err, sizeof c->err, "%s: %s", what, text);
}

/* Waits until fd is ready for events. 0 ready, CONN_TIMEOUT, CONN_ERROR. */
static int
conn_wait(struct conn *c, short events, int64_t deadline)
{
	for (;;) {
		int ms = -1;
		if (deadline != CONN_NO_DEADLINE) {
			int64_t left = deadline - clock_mono_ms();
			if (left <= 0)
				return CONN_TIMEOUT;
			ms = left > 60 * 60 * 1000 ? 60 * 60 * 1000 : (int)left;
		}
		struct pollfd pfd = {.fd = c->fd, .events = events};
		int n = poll(&pfd, 1, ms);
		if (n > 0)
			return 0; /* readable, writable, HUP or ERR: the next call tells which */
		if (n == 0)
			continue; /* re-check the deadline */
		if (errno == EINTR)
			continue;
		conn_set_errno(c, "poll", errno);
		return CONN_ERROR;
	}
}

/* Records the reason of a failed OpenSSL call in c->err and clears the error queue. */
static void
conn_ssl_error(struct conn *c, const char *what, int sslerr)
{
	unsigned long e = ERR_get_error();
	if (e != 0) {
		char tmp[120];
		ERR_error_string_n(e, tmp, sizeof tmp);
		(void)snprintf(c->err, sizeof c->err, "%s: %s", what, tmp);
	} else if (sslerr == SSL_ERROR_SYSCALL && errno != 0) {
		conn_set_errno(c, what, errno);
	} else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
		(void)snprintf(c->err, sizeof c->err, "%s: connection closed by peer", what);
	} else {
		(void)snprintf(c->err, sizeof c->err, "%s: ssl error %d", what, sslerr);
	}
	ERR_clear_error();
}

static ssize_t
conn_read_plain(struct conn *c, void *buf, size_t len, int64_t deadline)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			if (errno == ECONNRESET)
				return CONN_EOF;
			conn_set_errno(c, "read", errno);
			return CONN_ERROR;
		}
		int w = conn_wait(c, POLLIN, deadline);
		if (w < 0)
			return w;
	}
}

static ssize_t
conn_read_tls(struct conn *c, void *buf, size_t len, int64_t deadline)
{
	for (;;) {
		size_t n = 0;
		ERR_clear_error();
		errno = 0;
		int rc = SSL_read_ex(c->ssl, buf, len, &n);
		if (rc == 1)
			return (ssize_t)n;
		int e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_ZERO_RETURN) {
			ERR_clear_error();
			return CONN_EOF;
		}
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			int w = conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
			if (w < 0)
				return w;
			continue;
		}
		if (e == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET) &&
		    ERR_peek_error() == 0)
			return CONN_EOF; /* closed without close_notify */
		conn_ssl_error(c, "tls read", e);
		return CONN_ERROR;
	}
}

ssize_t
conn_read(struct conn *c, void *buf, size_t len, int64_t deadline)
{
	ssize_t n =
	    c->ssl ? conn_read_tls(c, buf, len, deadline) : conn_read_plain(c, buf, len, deadline);
	if (n > 0)
		c->bytes_in += (uint64_t)n;
	return n;
}

int
conn_write(struct conn *c, const void *p, size_t len, int64_t deadline)
{
	const unsigned char *s = p;
	while (len > 0) {
		size_t n = 0;
		int want = 0;
		if (c->ssl) {
			ERR_clear_error();
			errno = 0;
			int rc = SSL_write_ex(c->ssl, s, len, &n);
			if (rc != 1) {
				int e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_WANT_READ)
					want = POLLIN;
				else if (e == SSL_ERROR_WANT_WRITE)
					want = POLLOUT;
				else {
					conn_ssl_error(c, "tls write", e);
					return CONN_ERROR;
				}
			}
		} else {
			ssize_t w = send(c->fd, s, len, MSG_NOSIGNAL);
			if (w >= 0)
				n = (size_t)w;
			else if (errno == EINTR)
				continue;
			else if (errno == EAGAIN || errno == EWOULDBLOCK)
				want = POLLOUT;
			else {
				conn_set_errno(c, "write", errno);
				return CONN_ERROR;
			}
		}
		if (want) {
			int w = conn_wait(c, (short)want, deadline);
			if (w < 0)
				return w;
			continue;
		}
		s += n;
		len -= n;
		c->bytes_out += n;
	}
	return 0;
}

int
conn_write_buf(struct conn *c, struct buf *b, int64_t deadline)
{
	int rc = conn_write(c, b->data, b->len, deadline);
	buf_reset(b);
	return rc;
}

int
conn_start_tls(struct conn *c, SSL_CTX *ctx, struct conn_lines *discard, int64_t deadline,
               size_t *discarded_r)
{
	size_t dropped = discard ? conn_lines_discard(discard) : 0;
	if (discarded_r)
		*discarded_r = dropped;
	if (c->ssl) {
		(void)snprintf(c->err, sizeof c->err, "tls: already active");
		return CONN_ERROR;
	}
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
		conn_ssl_error(c, "tls setup", SSL_ERROR_SSL);
		SSL_free(ssl);
		return CONN_ERROR;
	}
	SSL_set_accept_state(ssl);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int rc = SSL_accept(ssl);
		if (rc == 1)
			break;
		int e = SSL_get_error(ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			int w = conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
			if (w == CONN_TIMEOUT)
				(void)snprintf(c->err, sizeof c->err, "tls handshake: timeout");
			if (w < 0) {
				SSL_free(ssl);
				ERR_clear_error();
				return w;
			}
			continue;
		}
		conn_ssl_error(c, "tls handshake", e);
		SSL_free(ssl);
		return CONN_ERROR;
	}
	c->ssl = ssl;
	return 0;
}

const char *
conn_tls_version(const struct conn *c)
{
	return c->ssl ? SSL_get_version(c->ssl) : "-";
}

const char *
conn_tls_cipher(const struct conn *c)
{
	return c->ssl ? SSL_get_cipher_name(c->ssl) : "-";
}

/* ---- line reading ---- */

void
conn_lines_init(struct conn_lines *l, size_t line_max)
{
	memset(l, 0, sizeof *l);
	l->line_max = line_max;
	buf_init(&l->in, line_max);
}

void
conn_lines_deinit(struct conn_lines *l)
{
	buf_deinit(&l->in);
}

size_t
conn_lines_pending(const struct conn_lines *l)
{
	return l->in.len - l->used;
}

size_t
conn_lines_discard(struct conn_lines *l)
{
	size_t n = l->in.len - l->used;
	buf_reset(&l->in);
	l->used = 0;
	l->too_long = false;
	return n;
}

int
conn_read_line(struct conn *c, struct conn_lines *l, int64_t deadline, struct slice *line_r)
{
	if (l->used > 0) {
		buf_consume(&l->in, l->used);
		l->used = 0;
	}
	size_t scanned = 0; /* bytes of l->in already known to hold no LF */
	for (;;) {
		unsigned char *lf = l->in.len > scanned
		                        ? memchr(l->in.data + scanned, '\n', l->in.len - scanned)
		                        : NULL;
		if (lf != NULL) {
			size_t end = (size_t)(lf - l->in.data);
			if (l->too_long) {
				buf_consume(&l->in, end + 1);
				l->too_long = false;
				return CONN_LINE_TOO_LONG;
			}
			size_t n = end;
			if (n > 0 && l->in.data[n - 1] == '\r')
				n--;
			*line_r = slice_make(l->in.data, n);
			l->used = end + 1;
			return CONN_LINE;
		}
		scanned = l->in.len;
		if (l->in.len >= l->line_max) {
			/* Full and no LF: drop what we have and keep dropping up to the LF. */
			l->too_long = true;
			buf_reset(&l->in);
			scanned = 0;
		}
		unsigned char tmp[4096];
		size_t want = l->line_max - l->in.len;
		if (want > sizeof tmp)
			want = sizeof tmp;
		ssize_t n = conn_read(c, tmp, want, deadline);
		if (n <= 0)
			return (int)n;
		if (buf_append(&l->in, tmp, (size_t)n) < 0) {
			(void)snprintf(c->err, sizeof c->err, "line buffer overflow");
			return CONN_ERROR; /* cannot happen: want fits */
		}
	}
}
