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

#endif
