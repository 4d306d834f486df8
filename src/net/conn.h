/* One client connection: a socket plus, after a TLS upgrade, an OpenSSL SSL object, driven with
 * blocking-style I/O that honours deadlines (DESIGN.md §1: a thread per connection, poll plus
 * timeout). The socket is non-blocking underneath; every wait is a poll() bounded by the
 * caller's deadline, so a silent client can never hold a thread past its timeout.
 *
 * STARTTLS (RFC 3207 §4.2 / RFC 9051 §6.2.1; CVE-2011-0411): bytes that arrived in plaintext
 * before the handshake must never be treated as if they came over TLS. conn itself keeps no
 * read-ahead at all (conn_read returns only what the kernel or OpenSSL already has), and
 * conn_start_tls() empties the caller's line buffer before the handshake, so the rule cannot be
 * forgotten by a driver that uses struct conn_lines. A driver that buffers elsewhere must drop
 * that buffer itself.
 *
 * Deadlines are absolute CLOCK_MONOTONIC milliseconds (clock_mono_ms() + timeout), or
 * CONN_NO_DEADLINE. A struct conn belongs to one thread (another thread may shutdown(2) its fd
 * to wake it: see net_pool_shutdown_all). */
#ifndef LIGHTR_NET_CONN_H
#define LIGHTR_NET_CONN_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "listen.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/slice.h"

#define CONN_NO_DEADLINE ((int64_t)-1)

/* Results of reads and writes (negative ones are errors). */
enum conn_result {
	CONN_EOF = 0,      /* the peer closed the connection (reads only) */
	CONN_ERROR = -1,   /* socket or TLS failure; conn->err says which */
	CONN_TIMEOUT = -2, /* the deadline passed first */
};

struct conn {
	int fd;
	SSL *ssl;                       /* NULL until conn_start_tls() succeeded */
	char peer[NET_ADDR_STR_MAX];    /* "1.2.3.4:5555" / "[::1]:5555" */
	char peer_ip[NET_ADDR_STR_MAX]; /* "1.2.3.4" / "::1": key of per-IP limits */
	char err[160];                  /* last error text, for logs */
	uint64_t bytes_in, bytes_out;   /* application bytes, for the disconnect log line */
};

/* Takes over fd (a connected stream socket), makes it non-blocking and fills in the peer
 * address. Never fails (an address that cannot be read is shown as "?"). */
struct conn *conn_new(int fd);
/* Sends a TLS close_notify when TLS is up (without waiting for the peer's), closes the socket and
 * frees c; sets *cp = NULL; accepts NULL. */
void conn_free(struct conn **cp);

/* Deadline timeout_ms from now (0: no deadline). */
int64_t conn_deadline(uint64_t timeout_ms);

/* Reads up to len (> 0) bytes into buf: returns how many (> 0), CONN_EOF, CONN_ERROR or
 * CONN_TIMEOUT. Over TLS, data OpenSSL has already decrypted (SSL_pending) is returned without
 * waiting. */
ssize_t conn_read(struct conn *c, void *buf, size_t len, int64_t deadline);
/* Writes all len bytes (looping over partial writes): 0, CONN_ERROR or CONN_TIMEOUT. Never
 * raises SIGPIPE for plaintext writes (MSG_NOSIGNAL); the daemon ignores SIGPIPE for TLS. */
int conn_write(struct conn *c, const void *p, size_t len, int64_t deadline);
/* conn_write of b's contents, then buf_reset(b). */
int conn_write_buf(struct conn *c, struct buf *b, int64_t deadline);

/* Server-side TLS handshake on the same socket. discard (may be NULL) is the caller's read
 * buffer: it is emptied first, and *discarded_r (may be NULL) gets the number of plaintext bytes
 * thrown away. Returns 0; or CONN_ERROR / CONN_TIMEOUT with the reason in c->err, after which
 * the connection is unusable and must be closed. Calling it when TLS is already up is an
 * error. */
struct conn_lines;
int conn_start_tls(struct conn *c, SSL_CTX *ctx, struct conn_lines *discard, int64_t deadline,
                   size_t *discarded_r);
static inline bool
conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}
/* "TLSv1.3" and the cipher name of the established session; "-" without TLS. */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);

/* ---- bounded line reading (driver side) ----
 * A read buffer that hands out one line at a time. Lines end at LF; a CR before the LF is
 * removed. A line longer than line_max bytes (including its CRLF) is dropped as it streams in
 * and reported once, as CONN_LINE_TOO_LONG, when its LF arrives; memory stays bounded by
 * line_max whatever the client sends. */
struct conn_lines {
	struct buf in;   /* received bytes not yet handed out; max = line_max */
	size_t line_max; /* longest accepted line, CRLF included */
	size_t used;     /* bytes of the line returned last, dropped on the next call */
	bool too_long;   /* dropping the rest of an over-long line */
};

enum conn_line_result {
	CONN_LINE = 1,          /* *line_r is the line without CR/LF */
	CONN_LINE_TOO_LONG = 2, /* an over-long line ended; it was dropped */
};

void conn_lines_init(struct conn_lines *l, size_t line_max);
void conn_lines_deinit(struct conn_lines *l);
/* Returns CONN_LINE (with *line_r valid until the next call on l), CONN_LINE_TOO_LONG, CONN_EOF
 * (also when the peer closes in the middle of a line), CONN_ERROR or CONN_TIMEOUT. */
int conn_read_line(struct conn *c, struct conn_lines *l, int64_t deadline, struct slice *line_r);
/* Bytes received after the line returned last (pipelined input). */
size_t conn_lines_pending(const struct conn_lines *l);
/* Drops everything buffered (including a partly received line); returns how many bytes. */
size_t conn_lines_discard(struct conn_lines *l);

#endif
