/* SMTP server session (RFC 5321 with RFC 1870, 2034, 2920, 3030, 3207, 3461, 4954, 6152, 6531,
 * 8689). Protocol code only: it never touches a socket or the store (DESIGN.md §1), and reads the
 * wall clock only for the Received date (hooks->now, else time()).
 * The per-connection driver (server/smtp_conn.c) feeds received bytes with smtp_server_input(),
 * writes smtp_server_output(), performs the TLS handshake when smtp_server_wants_tls() says so,
 * and honours smtp_server_delay_ms() (AUTH failure delay) before writing. Everything the session
 * must ask the rest of the server (is this recipient local, is this password right, may this
 * account send as that address, store this message) goes through struct smtp_hooks, which
 * server/hooks.c fills in; the fuzz target and unit tests use stubs.
 *
 * One session per connection; not thread-safe; hooks are called synchronously from
 * smtp_server_input() on the driver's thread. */
#ifndef LIGHTR_SMTP_SERVER_H
#define LIGHTR_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF. */
#define SMTP_CMD_LINE_MAX 512
/* RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF. Policy: a DATA or BDAT
 * message with a longer line is read to its end and refused (500 5.5.2); it is never stored
 * wrapped or cut. */
#define SMTP_TEXT_LINE_MAX 1000
/* AUTH line (RFC 4954 §4: the 512-octet limit does not apply to AUTH; 12288 covers any PLAIN
 * response with a 1024-byte password). */
#define SMTP_AUTH_LINE_MAX 12288

enum smtp_role {
	SMTP_ROLE_MX,          /* port 25: no AUTH, local recipients only */
	SMTP_ROLE_SUBMISSION,  /* port 587: STARTTLS, then AUTH before MAIL */
	SMTP_ROLE_SUBMISSIONS, /* port 465: implicit TLS, AUTH before MAIL */
};

/* Limits and settings, filled from config by server/ (lower layers never read config). */
struct smtp_limits {
	const char *hostname;        /* greeting, EHLO, Received "by" */
	uint64_t max_message_size;   /* octets; SIZE advertised; 552 5.3.4 past it */
	unsigned max_recipients;     /* per message; 452 4.5.3 past it */
	unsigned max_messages;       /* per connection; then 421 4.7.0 and close */
	unsigned max_errors;         /* protocol errors per connection; then 421 4.7.0 and close */
	unsigned max_auth_failures;  /* failed AUTH attempts; then 421 4.7.0 and close */
	unsigned auth_fail_delay_ms; /* delay before the reply to the n-th failure: n * this */
	char subaddress_sep;         /* '+' by default; '\0' switches sub-addressing off */
};

/* What is known about the connection (set by the driver). */
struct smtp_conn_info {
	const char *client_ip;   /* "192.0.2.1" or "2001:db8::1" */
	const char *client_name; /* reverse name if known, else NULL */
	const char *listener;    /* for logs */
};

/* Reply produced by a hook: a 3-digit code, an enhanced status code ("5.1.1") and text. The
 * session formats it; text must be one line of printable ASCII (no CR/LF). */
struct smtp_hook_reply {
	int code;
	char enhanced[16];
	char text[200];
};

enum smtp_rcpt_kind {
	SMTP_RCPT_LOCAL,  /* delivered to local mailboxes */
	SMTP_RCPT_REMOTE, /* not one of our domains: queued for relay (submission only) */
	SMTP_RCPT_REJECT, /* reply_r says why (550 5.1.1 unknown, 550 5.2.1 disabled, 452 4.2.2...)
	                   */
};

/* One accepted recipient of the transaction. */
struct smtp_rcpt {
	char *addr;   /* as given (without <>), owned by the transaction */
	char *notify; /* DSN NOTIFY value or NULL (RFC 3461 §4.1) */
	char *orcpt;  /* DSN ORCPT value (xtext-decoded "rfc822;addr") or NULL */
	enum smtp_rcpt_kind kind;
};

/* The envelope handed to the deliver hook. All strings owned by the session; valid during the
 * hook call only. */
struct smtp_envelope {
	const char *mail_from; /* reverse-path without <>; "" for the null sender */
	const char *auth_user; /* authenticated account, NULL on MX */
	const char *helo;      /* EHLO/HELO argument */
	const char *ret;       /* DSN RET: "FULL", "HDRS" or NULL */
	const char *envid;     /* DSN ENVID (xtext-decoded) or NULL */
	bool smtputf8, eightbit, requiretls;
	const struct smtp_rcpt *rcpts;
	size_t n_rcpts;
	/* "Received: from ... by ... with ESMTPSA id ...; date\r\n", folded, built by the session
	 * (RFC 5321 §4.4), with the TLS version/cipher and the authenticated user where present.
	 * The hook prepends it (and Return-Path, Delivered-To per local recipient). */
	const char *received;
	const char *id; /* session-made message id for logs and the Received "id" clause */
};

struct smtp_hooks {
	void *ctx;
	/* RCPT TO: classify addr (without <>). size_hint is the MAIL SIZE parameter or 0. On MX a
	 * remote recipient is refused by the session itself (550 5.7.1 relay denied), so the hook
	 * only classifies. Required. */
	enum smtp_rcpt_kind (*rcpt)(void *ctx, const char *addr, uint64_t size_hint,
	                            struct smtp_hook_reply *reply_r);
	/* AUTH: 1 authenticated, 0 wrong user or password, -1 temporary failure (454 4.7.0).
	 * user/pass are NUL-terminated; pass may hold no NUL. Required on submission roles. */
	int (*auth)(void *ctx, const char *user, const char *pass, size_t pass_len);
	/* May account send as addr (envelope sender or a From: address)? Required on submission. */
	bool (*sender_ok)(void *ctx, const char *account, const char *addr);
	/* End of DATA / BDAT LAST with a message that passed every check. msg is exactly the
	 * received bytes, dot-unstuffed. Returns 0 when the message is durably stored and queued
	 * (the session then replies 250 2.0.0), or -1 with reply_r filled (typically 451 4.3.0). */
	int (*deliver)(void *ctx, const struct smtp_envelope *env, const unsigned char *msg,
	               size_t len, struct smtp_hook_reply *reply_r);
	/* Optional rate limits (issue 8); NULL = no limit. Nonzero = refuse with *reply_r
	 * (typically 451 4.7.1 naming the limit and when it frees; a code outside 400..599 becomes
	 * 451 4.7.1 "Rate limit reached, try again later"); 0 = go on.
	 * mail_check: at MAIL, after the command and the sender check passed (the transaction is
	 * dropped on refusal). account is the authenticated user, NULL on MX; from is the
	 * reverse-path without <> ("" for the null sender). */
	int (*mail_check)(void *ctx, const char *account, const char *from,
	                  struct smtp_hook_reply *reply_r);
	/* rcpt_check: at RCPT, for a recipient the rcpt hook accepted (never for refused ones or a
	 * relay denied on MX); n = recipients accepted so far including this one. A refused
	 * recipient is not added to the transaction. */
	int (*rcpt_check)(void *ctx, const char *account, const char *rcpt, size_t n,
	                  struct smtp_hook_reply *reply_r);
	/* Optional: a session-level log line at info ("smtp <id> <event> k=v"). NULL = silent. */
	void (*log)(void *ctx, const char *line);
	/* Optional: wall-clock seconds since the epoch for the Received date (tests and fuzzing
	 * pin it). NULL = time(NULL). */
	int64_t (*now)(void *ctx);
};

struct smtp_server;

/* Creates a session and queues the 220 greeting. tls_active: the connection is already TLS
 * (implicit TLS on submissions). limits and hooks are copied (the strings they point to must
 * outlive the session). id is the connection id for logs. */
struct smtp_server *smtp_server_new(enum smtp_role role, const struct smtp_limits *limits,
                                    const struct smtp_hooks *hooks,
                                    const struct smtp_conn_info *info, bool tls_active,
                                    const char *id);
/* Frees the session and its transaction; accepts NULL; sets *sp = NULL. */
void smtp_server_free(struct smtp_server **sp);

/* Consumes len received bytes (any split: the result is the same whole or byte by byte), runs
 * complete commands (calling hooks) and queues replies. Pipelined commands (RFC 2920) are handled
 * in order; after STARTTLS is accepted, every further byte of this call and any buffered
 * plaintext is discarded (CVE-2011-0411) and smtp_server_wants_tls() becomes true. */
void smtp_server_input(struct smtp_server *s, const unsigned char *in, size_t len);
/* Replies queued so far; the driver writes and resets it. */
struct buf *smtp_server_output(struct smtp_server *s);
/* True after "220 Ready to start TLS" was queued: the driver writes the output, discards any
 * unread plaintext, performs the handshake and then calls smtp_server_tls_started(). */
bool smtp_server_wants_tls(const struct smtp_server *s);
/* The handshake succeeded: the session resets to the greeted-without-EHLO state (RFC 3207 §4.2)
 * and records version/cipher for the Received header. */
void smtp_server_tls_started(struct smtp_server *s, const char *version, const char *cipher);
/* Milliseconds the driver should wait before writing the output (AUTH failure delay); reading
 * it resets it to 0. */
unsigned smtp_server_delay_ms(struct smtp_server *s);
/* True when the driver should read with the DATA timeout (inside DATA or between BDAT chunks). */
bool smtp_server_in_data(const struct smtp_server *s);
/* True after QUIT or a 421 was queued: write the output, then close. */
bool smtp_server_done(const struct smtp_server *s);
/* The driver timed out or is shutting down: queues "421 4.4.2 <hostname> Timeout" (or the
 * shutdown text when shutdown is true) and marks the session done. */
void smtp_server_close(struct smtp_server *s, bool shutdown);
/* Counters for the disconnect log line. */
unsigned smtp_server_messages(const struct smtp_server *s);
const char *smtp_server_auth_user(const struct smtp_server *s); /* NULL when not authenticated */

#endif
