/* IMAP server session: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051, after ENABLE IMAP4rev2)
 * with the extensions listed in imap_session_capabilities(). Protocol code only (DESIGN.md §1):
 * it never touches a socket; storage goes through struct imap_mailstore (imap/mailstore.h).
 *
 * The per-connection driver (server/imap_conn.c) feeds received bytes with
 * imap_session_input(), writes imap_session_output(), and acts on the session's requests:
 * STARTTLS handshake (imap_session_wants_tls), COMPRESS=DEFLATE (imap_session_wants_compress),
 * the delay before the reply to a failed login (imap_session_delay_ms), and IDLE (while
 * imap_session_idling() it waits for input or for ms->ops->change_seq to move, calling
 * imap_session_poll() at least every second). Responses larger than IMAP_OUT_FLUSH (FETCH of a
 * large body) are handed to hooks->flush while the command runs, so output stays bounded.
 *
 * One session per connection; not thread-safe. */
#ifndef LIGHTR_IMAP_IMAP_H
#define LIGHTR_IMAP_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/mailstore.h"
#include "util/buf.h"

#define IMAP_OUT_FLUSH (256 * 1024) /* output bytes that make the session call hooks->flush */

/* Limits and settings, filled from config by server/ (lower layers never read config). */
struct imap_limits {
	const char *hostname;
	size_t line_max;         /* after login (RFC 9051 §4: at least 8000) */
	size_t preauth_line_max; /* before login: much smaller */
	size_t literal_max;      /* largest literal after login = APPEND size limit (APPENDLIMIT) */
	size_t preauth_literal_max;
	size_t command_max;          /* a whole command with its literals, after login */
	unsigned depth_max;          /* parenthesis nesting (SEARCH, FETCH) */
	unsigned max_errors;         /* BAD commands before BYE */
	unsigned max_auth_failures;  /* failed LOGIN/AUTHENTICATE before BYE */
	unsigned auth_fail_delay_ms; /* delay before the n-th failure reply: n * this */
	bool plaintext_auth_ok; /* LOGIN/AUTHENTICATE allowed without TLS (loopback exception) */
};

struct imap_conn_info {
	const char *client_ip;
	const char *listener; /* for logs */
};

struct imap_hooks {
	void *ctx;
	/* Writes out now (the output buffer is full mid-command). Returns 0, or -1 when the
	 * connection is gone: the session then stops the command and marks itself done. */
	int (*flush)(void *ctx, struct buf *out);
	/* Optional: info-level log line ("imap <id> <event> k=v"). */
	void (*log)(void *ctx, const char *line);
	/* Optional: wall clock seconds (tests pin it); NULL = time(NULL). */
	int64_t (*now)(void *ctx);
	/* Optional auth-failure tracking (issue 8), around the password check of LOGIN and
	 * AUTHENTICATE. auth_gate is called before it (it may wait on the caller's thread):
	 * false = the client is locked out, the attempt fails as a wrong password would (NO
	 * [AUTHENTICATIONFAILED], counted towards max_auth_failures) without being checked.
	 * auth_result is called after a check that gave a verdict (not after a temporary
	 * failure). NULL = no tracking. */
	bool (*auth_gate)(void *ctx, const char *user);
	void (*auth_result)(void *ctx, const char *user, bool ok);
};

struct imap_session;

/* Creates a session and queues the greeting ("* OK [CAPABILITY ...]"). tls_active: implicit TLS
 * (993); starttls_offered: STARTTLS is possible on this connection. ms is owned by the session
 * from now on. limits/hooks are copied; the strings they point to must outlive the session. */
struct imap_session *imap_session_new(const struct imap_limits *limits,
                                      const struct imap_hooks *hooks,
                                      const struct imap_conn_info *info, struct imap_mailstore *ms,
                                      bool tls_active, bool starttls_offered, const char *id);
void imap_session_free(struct imap_session **sp);

/* Consumes received bytes (any split gives the same result), runs complete commands and queues
 * responses. After STARTTLS is accepted, the rest of the input is discarded (CVE-2011-0411). */
void imap_session_input(struct imap_session *s, const unsigned char *in, size_t len);
/* Responses queued so far; the driver writes and resets it. */
struct buf *imap_session_output(struct imap_session *s);
/* After "OK Begin TLS negotiation now": handshake, then imap_session_tls_started(). */
bool imap_session_wants_tls(const struct imap_session *s);
void imap_session_tls_started(struct imap_session *s);
/* After "OK DEFLATE active" (RFC 4978): the driver writes the output uncompressed, then
 * compresses everything further in both directions, then calls ..._compress_started(). */
bool imap_session_wants_compress(const struct imap_session *s);
void imap_session_compress_started(struct imap_session *s);
/* Milliseconds to wait before writing the output (failed login); reading resets it. */
unsigned imap_session_delay_ms(struct imap_session *s);
/* Inside IDLE (after "+ idling"): the driver waits for input or for change_seq to move. */
bool imap_session_idling(const struct imap_session *s);
/* The selected mailbox id, or 0 (for the driver's change_seq check). */
int64_t imap_session_mailbox(const struct imap_session *s);
/* Looks for changes of the selected mailbox and queues untagged EXISTS / EXPUNGE (VANISHED) /
 * FETCH responses when the current state allows them (during IDLE: always). */
void imap_session_poll(struct imap_session *s);
/* Read timeout the driver should use now: 60 s before login, the autologout timer (>= 30 min,
 * RFC 9051 §5.4) after. */
uint64_t imap_session_timeout_ms(const struct imap_session *s, uint64_t autologout_ms);
/* True after LOGOUT or a BYE: write the output, then close. */
bool imap_session_done(const struct imap_session *s);
/* Timeout or shutdown: queues "* BYE ..." and marks the session done. */
void imap_session_close(struct imap_session *s, bool shutdown);
/* The logged-in user or NULL (for the disconnect log line). */
const char *imap_session_user(const struct imap_session *s);

#endif
