/* Outbound SMTP client (RFC 5321) as a pure state machine: no I/O, no clock, no DNS, no TLS.
 * A delivery worker (the driver, queue/deliver.c) owns the socket and runs this loop:
 *
 *     c = smtp_client_new(&opts, &msg);         // after the TCP connect succeeded
 *     for (;;) {
 *         out = smtp_client_output(c);           // write ALL of it first (may be empty),
 *         write(out); smtp_client_output_done(c, out.len);
 *         switch (smtp_client_want(c)) {
 *         case SMTP_CLIENT_WANT_READ:            // read with smtp_client_timeout_ms(c), then
 *             smtp_client_input(c, bytes, n);    // (EOF/timeout/IO error: smtp_client_abort)
 *             break;
 *         case SMTP_CLIENT_WANT_TLS:             // TLS handshake on the socket, then
 *             smtp_client_tls_done(c, ok); break;
 *         case SMTP_CLIENT_WANT_BODY:            // stream the message (flush output often):
 *             smtp_client_body_chunk(c, p, n) ...; smtp_client_body_end(c); break;
 *         case SMTP_CLIENT_WANT_MESSAGE:         // transaction over: read results, then
 *             smtp_client_next_message(c, &msg2) or smtp_client_quit(c); break;
 *         case SMTP_CLIENT_WANT_CLOSE:           // output written (QUIT): close the socket
 *             goto done;
 *         }
 *     }
 *     // per-recipient results: smtp_client_rcpt_result(c, i); then smtp_client_free(&c)
 *
 * When the connection itself could not be made, the driver may still call smtp_client_new()
 * and smtp_client_abort(c, SMTP_CLIENT_STAGE_CONNECT, "connect: ...") to get uniform results.
 *
 * Behaviour: waits for a 220 greeting; EHLO (HELO when EHLO gets 5xx); STARTTLS whenever offered
 * and opts.tls_available (then EHLO again; the driver does the handshake and decides about
 * certificates); AUTH PLAIN when opts.auth_user is set (only under TLS unless
 * opts.auth_allow_plaintext); MAIL FROM with SIZE=, BODY=8BITMIME, SMTPUTF8, REQUIRETLS and DSN
 * parameters (RET/ENVID/NOTIFY/ORCPT only when the server offers DSN); RCPT TO per recipient;
 * with PIPELINING (RFC 2920) MAIL, every RCPT and DATA are sent as one group and the replies
 * matched in order. No downgrade: a message needing SMTPUTF8 to a server without it fails
 * permanently with 5.6.7, one needing 8BITMIME with 5.6.3, one larger than the server's SIZE
 * with 5.3.4, one with requiretls where REQUIRETLS is not offered under TLS with 5.7.30 -- all
 * without sending MAIL, and the connection stays usable for another message.
 *
 * Results: every recipient ends DELIVERED, TEMPFAIL or PERMFAIL. RCPT 4xx/5xx decides for that
 * recipient; for recipients accepted at RCPT the final reply after the body decides (2xx
 * delivered, 4xx temporary, 5xx permanent). When every RCPT is refused, no DATA is sent (RSET).
 * Failures of the whole session (greeting, EHLO, STARTTLS, AUTH, MAIL, garbage replies, abort)
 * apply to every recipient still pending: a 5xx reply is permanent, anything else temporary
 * (AUTH failures are always temporary: a smarthost credential problem must not bounce mail).
 * Garbage from the server (unparsable reply, wrong code) is a temporary failure "4.5.0" and
 * ends the connection.
 *
 * Thread safety: one client per connection, used by one thread at a time. */
#ifndef LIGHTR_SMTP_CLIENT_H
#define LIGHTR_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/cmd_parser.h" /* enum smtp_ret, SMTP_NOTIFY_* */
#include "util/slice.h"

struct smtp_client_opts {
	const char *helo_name; /* our name for EHLO/HELO; required */
	bool tls_available;    /* the driver can run a client TLS handshake (STARTTLS) */
	bool require_tls;      /* no STARTTLS offered, or TLS unavailable: everything TEMPFAIL
	                        * "4.7.10" at stage STARTTLS, nothing is sent */
	const char *auth_user; /* NULL: no AUTH. Smarthost credentials for AUTH PLAIN */
	const char *auth_pass;
	bool auth_allow_plaintext; /* allow AUTH without TLS (loopback smarthosts, tests) */
};

struct smtp_client_rcpt {
	const char *addr;  /* forward-path without angle brackets (UTF-8 allowed with smtputf8) */
	unsigned notify;   /* SMTP_NOTIFY_* flags; 0: no NOTIFY parameter */
	const char *orcpt; /* NULL or "addr-type;address" decoded, e.g. "rfc822;a@b.example";
	                    * the client xtext-encodes the address part (RFC 3461 §4.2) */
};

/* The envelope of one message. Borrowed: msg, rcpts and every string must stay valid and
 * unchanged until the transaction ends (smtp_client_want() returns MESSAGE or CLOSE) and the
 * results have been read. */
struct smtp_client_msg {
	const char *mail_from; /* reverse-path without <>; "" is the null sender <> */
	const struct smtp_client_rcpt *rcpts;
	size_t nrcpts;     /* >= 1 */
	enum smtp_ret ret; /* SMTP_RET_NONE: no RET parameter */
	const char *envid; /* NULL: no ENVID; decoded, xtext-encoded by the client */
	uint64_t size;     /* message size in octets (for SIZE=); 0: unknown, not sent */
	bool eightbit;     /* needs 8BITMIME (BODY=8BITMIME) */
	bool smtputf8;     /* needs SMTPUTF8 (UTF-8 addresses or headers) */
	bool requiretls;   /* RFC 8689 REQUIRETLS */
};

enum smtp_client_want {
	SMTP_CLIENT_WANT_READ, /* write the output, then read server bytes into smtp_client_input */
	SMTP_CLIENT_WANT_TLS,  /* write the output (it is empty), do the TLS handshake, then
	                        * smtp_client_tls_done() */
	SMTP_CLIENT_WANT_BODY, /* 354 received: smtp_client_body_chunk()..., smtp_client_body_end()
	                        */
	SMTP_CLIENT_WANT_MESSAGE, /* transaction over, results final; the connection is usable:
	                           * smtp_client_next_message() or smtp_client_quit() */
	SMTP_CLIENT_WANT_CLOSE,   /* write the output (QUIT, maybe), then close; results final */
};

enum smtp_client_stage {
	SMTP_CLIENT_STAGE_CONNECT,
	SMTP_CLIENT_STAGE_GREETING,
	SMTP_CLIENT_STAGE_EHLO,
	SMTP_CLIENT_STAGE_STARTTLS,
	SMTP_CLIENT_STAGE_AUTH,
	SMTP_CLIENT_STAGE_MAIL,
	SMTP_CLIENT_STAGE_RCPT,
	SMTP_CLIENT_STAGE_DATA,
	SMTP_CLIENT_STAGE_BODY, /* the final reply after the end of data */
};

enum smtp_client_status {
	SMTP_CLIENT_PENDING, /* not decided yet (only while the transaction runs) */
	SMTP_CLIENT_DELIVERED,
	SMTP_CLIENT_TEMPFAIL,
	SMTP_CLIENT_PERMFAIL,
};

/* Server extensions seen in the last EHLO reply (bit flags). */
enum {
	SMTP_CLIENT_EXT_PIPELINING = 1 << 0,
	SMTP_CLIENT_EXT_SIZE = 1 << 1,
	SMTP_CLIENT_EXT_8BITMIME = 1 << 2,
	SMTP_CLIENT_EXT_SMTPUTF8 = 1 << 3,
	SMTP_CLIENT_EXT_STARTTLS = 1 << 4,
	SMTP_CLIENT_EXT_DSN = 1 << 5,
	SMTP_CLIENT_EXT_AUTH_PLAIN = 1 << 6, /* AUTH offered with the PLAIN mechanism */
	SMTP_CLIENT_EXT_ENHANCEDSTATUSCODES = 1 << 7,
	SMTP_CLIENT_EXT_REQUIRETLS = 1 << 8,
	SMTP_CLIENT_EXT_CHUNKING = 1 << 9, /* recorded, never used */
};

#define SMTP_CLIENT_TEXT_MAX 256 /* result text buffer, including NUL */

struct smtp_client_result {
	enum smtp_client_status status;
	enum smtp_client_stage stage;    /* where it was decided */
	int code;                        /* basic reply code; 0 when decided locally or on abort */
	char enhanced[16];               /* "5.6.7": from the reply, else derived from the code */
	char text[SMTP_CLIENT_TEXT_MAX]; /* remote reply as one line "550 5.1.1 no such user" (all
	                                  * lines joined with "; "), or a local explanation;
	                                  * printable ASCII only (others become '?'), truncated */
};

/* RFC 5321 §4.5.3.2 timeouts in milliseconds. */
#define SMTP_CLIENT_TIMEOUT_INITIAL   (5 * 60 * 1000) /* greeting, EHLO, STARTTLS, AUTH, RSET */
#define SMTP_CLIENT_TIMEOUT_MAIL      (5 * 60 * 1000)
#define SMTP_CLIENT_TIMEOUT_RCPT      (5 * 60 * 1000)
#define SMTP_CLIENT_TIMEOUT_DATA_INIT (2 * 60 * 1000)
#define SMTP_CLIENT_TIMEOUT_BLOCK     (3 * 60 * 1000)  /* each body write */
#define SMTP_CLIENT_TIMEOUT_DATA_TERM (10 * 60 * 1000) /* final reply after "." */

struct smtp_client;

/* opts is copied (strings duplicated); msg is borrowed (see struct smtp_client_msg) and may be
 * NULL (the client then stops at WANT_MESSAGE once the session is set up). Never returns NULL
 * (aborts on OOM). The client then waits for the greeting. */
struct smtp_client *smtp_client_new(const struct smtp_client_opts *opts,
                                    const struct smtp_client_msg *msg);
/* Accepts NULL; sets *cp = NULL. Wipes the stored password. */
void smtp_client_free(struct smtp_client **cp);

enum smtp_client_want smtp_client_want(const struct smtp_client *c);
/* The timeout that applies to the current wait (read, TLS handshake, or each body write). */
unsigned smtp_client_timeout_ms(const struct smtp_client *c);

/* Bytes to send to the server. Valid until the next call on c other than smtp_client_want(),
 * smtp_client_timeout_ms() and result getters. */
struct slice smtp_client_output(const struct smtp_client *c);
/* The driver wrote the first n bytes of the output (n <= its length). */
void smtp_client_output_done(struct smtp_client *c, size_t n);

/* Server bytes (any split). Only in WANT_READ; extra bytes after the reply a state waits for are
 * kept (pipelining). Bytes arriving in any other state are protocol errors (after STARTTLS's 220
 * any buffered plaintext is an error: CVE-2011-0411 style injection). */
void smtp_client_input(struct smtp_client *c, const unsigned char *in, size_t len);

/* After WANT_TLS: ok = the handshake succeeded (EHLO is then sent again); !ok fails every
 * pending recipient TEMPFAIL "4.7.0" at stage STARTTLS and the client wants CLOSE. */
void smtp_client_tls_done(struct smtp_client *c, bool ok);
/* true after a successful smtp_client_tls_done(). */
bool smtp_client_tls_active(const struct smtp_client *c);

/* WANT_BODY: appends message bytes (any split, CRLF line ends) to the output with dot-stuffing
 * (RFC 5321 §4.5.2). The driver should write the output after every chunk; the output grows
 * without bound otherwise. */
void smtp_client_body_chunk(struct smtp_client *c, const unsigned char *p, size_t len);
/* Ends the body: adds CRLF when the message did not end with one, then ".\r\n"; WANT_READ. */
void smtp_client_body_end(struct smtp_client *c);

/* The connection failed (EOF, timeout, I/O or TLS error, or the connect itself with
 * SMTP_CLIENT_STAGE_CONNECT): every pending recipient TEMPFAIL, enhanced "4.4.1" at CONNECT and
 * "4.4.2" elsewhere, text = why (a static or caller string, copied). stage
 * SMTP_CLIENT_STAGE_CONNECT forces that stage; any other value means "the current stage".
 * The client wants CLOSE (output discarded). Safe in any state; no effect once closed. */
void smtp_client_abort(struct smtp_client *c, enum smtp_client_stage stage, const char *why);

/* WANT_MESSAGE only: starts another transaction on the same connection; results of the
 * previous message are discarded. Returns -1 (and does nothing) in any other state. */
int smtp_client_next_message(struct smtp_client *c, const struct smtp_client_msg *msg);
/* Sends QUIT (when the connection is usable) and wants CLOSE; pending recipients (only when
 * called mid-transaction) become TEMPFAIL "4.4.2". */
void smtp_client_quit(struct smtp_client *c);

/* The result of recipient i of the current message (i < nrcpts). Valid until
 * smtp_client_next_message() or smtp_client_free(). */
const struct smtp_client_result *smtp_client_rcpt_result(const struct smtp_client *c, size_t i);
/* SMTP_CLIENT_EXT_* flags from the last EHLO (0 after HELO). */
unsigned smtp_client_extensions(const struct smtp_client *c);
/* Server's SIZE limit (0: none announced). */
uint64_t smtp_client_server_size(const struct smtp_client *c);
/* Short names for logs: "greeting", "rcpt", ...; "delivered", "tempfail", ... */
const char *smtp_client_stage_name(enum smtp_client_stage s);
const char *smtp_client_status_name(enum smtp_client_status s);

#endif
