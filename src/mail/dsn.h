/* Delivery status notifications (RFC 3464, RFC 6522, RFC 3461): builds the complete message
 * that reports what happened to recipients of an earlier message. Pure: no I/O, no store, no
 * clock (dates come in as arguments); thread-safe.
 *
 * The result is a multipart/report; report-type=delivery-status message:
 *   From: Mail Delivery System <MAILER-DAEMON@<reporting_mta>>, To: <to>, Subject, Date,
 *   Message-ID, MIME-Version, Auto-Submitted: auto-replied (RFC 3834);
 *   part 1 text/plain: a human-readable explanation with one line per recipient;
 *   part 2 message/delivery-status: Reporting-MTA: dns; <reporting_mta>, Original-Envelope-Id
 *     (ENVID), Arrival-Date, then per recipient Original-Recipient (from ORCPT), Final-Recipient,
 *     Action, Status, Remote-MTA, Diagnostic-Code: smtp; <reply> (folded at 78 columns),
 *     Last-Attempt-Date, Will-Retry-Until (delays only);
 *   part 3: the original as message/rfc822 (ret == DSN_RET_FULL) or its header section as
 *     text/rfc822-headers (DSN_RET_HDRS, the default).
 * Lines end in CRLF. It is to be sent with the null envelope sender (RFC 3461 §6.2). */
#ifndef LIGHTR_MAIL_DSN_H
#define LIGHTR_MAIL_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
};

enum dsn_ret {
	DSN_RET_HDRS, /* header section only (default) */
	DSN_RET_FULL, /* the whole original message */
};

/* One recipient reported on; strings borrowed. */
struct dsn_rcpt {
	const char *final_rcpt; /* address the MTA tried (without "rfc822;") */
	const char *orcpt;      /* ORCPT value "rfc822;addr" (or "type;addr"), NULL = none */
	enum dsn_action action;
	const char *status;       /* "5.1.1"; NULL = 5.0.0 / 4.0.0 / 2.0.0 from action */
	const char *remote_mta;   /* host name (or host[ip]:port: the host is taken), NULL */
	const char *diagnostic;   /* remote SMTP reply or local reason, NULL = none */
	int64_t last_attempt;     /* unix seconds, 0 = none */
	int64_t will_retry_until; /* unix seconds, DELAYED only, 0 = none */
};

struct dsn_report {
	const char *reporting_mta; /* our host name */
	const char *to;            /* recipient of the DSN (the original sender) */
	const char *envid;         /* original ENVID, NULL = none */
	int64_t arrival;           /* when the original was accepted (unix seconds) */
	int64_t now;               /* Date of the DSN */
	const char *message_id;    /* "<...>" for the DSN; NULL = derived from now + boundary */
	const char *boundary;      /* MIME boundary (caller-chosen, random); NULL = fixed default */
	enum dsn_ret ret;
	const struct dsn_rcpt *rcpts;
	size_t n_rcpts;
	const unsigned char *original; /* the original message (header + body), may be NULL */
	size_t original_len;
};

/* Limit on the copy of the original with DSN_RET_FULL: above it only the header section is
 * returned (RFC 3461 §4.3 allows truncation; keeps DSNs of huge messages small). */
#define DSN_FULL_MAX (10u * 1024u * 1024u)

/* Appends the complete DSN message to out. Returns 0, or -1 when out overflows or r is invalid
 * (no recipients, missing reporting_mta/to). */
int dsn_build(const struct dsn_report *r, struct buf *out);

/* "failed", "delayed", "delivered". */
const char *dsn_action_name(enum dsn_action a);

/* ---- parsing reports that come back (issue 7, dsn_parse.c) ----
 * A message arriving for a bounce+<token>@ address: an RFC 3464 delivery status notification
 * (multipart/report; report-type=delivery-status: per-recipient Final-Recipient,
 * Original-Recipient, Action, Status, Diagnostic-Code, Remote-MTA), an RFC 5965 ARF feedback
 * report (multipart/report; report-type=feedback-report: Feedback-Type, Original-Rcpt-To,
 * and the returned message's header), or, best effort, a non-standard bounce in plain text
 * (common MTA phrasings: "550 5.1.1 <user@example.com>: ... User unknown", "... does not
 * exist", qmail's "<addr>:" paragraphs; an enhanced status code or SMTP reply code found near
 * an address). Pure: no I/O; thread-safe; never fails on malformed input (it finds less).
 * Limits: DSN_PARSE_MAX_RCPTS recipients, DSN_PARSE_MAX_PARTS MIME parts looked at, fields
 * of at most 998 bytes are read (longer ones are cut). */
#define DSN_PARSE_MAX_RCPTS 100
#define DSN_PARSE_MAX_PARTS 64

enum dsn_parse_kind {
	DSN_PARSE_NONE,      /* nothing recognisable */
	DSN_PARSE_DSN,       /* RFC 3464 */
	DSN_PARSE_ARF,       /* RFC 5965 feedback report */
	DSN_PARSE_HEURISTIC, /* plain-text bounce, best effort */
};
struct dsn_parsed_rcpt {
	char address[256]; /* Final-Recipient (or Original-Rcpt-To for ARF), without "rfc822;" */
	char orig_address[256]; /* Original-Recipient without the type, "" when absent */
	char action[16];        /* "failed", "delayed", "delivered", "relayed", "expanded" or "" */
	char status[16];        /* "5.1.1" or "" */
	char diagnostic[512];   /* Diagnostic-Code text after "smtp;" (unfolded), or "" */
	char remote_mta[256];   /* or "" */
};
struct dsn_parsed {
	enum dsn_parse_kind kind;
	char reporting_mta[256];
	char feedback_type[32];        /* ARF: "abuse", "fraud", ...; "" otherwise */
	char original_mail_from[256];  /* ARF: Original-Mail-From without <>, or "" */
	char original_message_id[256]; /* Message-ID (without <>) of the returned message, or "" */
	struct dsn_parsed_rcpt rcpts[DSN_PARSE_MAX_RCPTS];
	size_t n_rcpts;
};
/* Parses msg (the whole message as received, CRLF or LF) into *out. */
void dsn_parse(const unsigned char *msg, size_t len, struct dsn_parsed *out);
/* Hard or soft? A permanent failure: status class 5, else an SMTP code 5xx in the diagnostic
 * (550/551/553 unknown-user classes included). */
bool dsn_parsed_is_hard(const struct dsn_parsed_rcpt *r);

#endif
