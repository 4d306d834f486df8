/* DSN message builder (RFC 3464 delivery-status, RFC 6522 multipart/report, RFC 3461 RET and
 * ORCPT). Everything that comes from outside (remote replies, addresses, ORCPT) is written with
 * control characters replaced, so a hostile reply cannot inject header fields or MIME parts. */
#include "mail/dsn.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#define DSN_LINE_MAX         78   /* RFC 5322 §2.1.1 recommended line length */
#define DSN_DIAG_MAX         2000 /* bytes of a diagnostic kept */
#define DSN_DEFAULT_BOUNDARY "=_lightr-dsn-boundary"

const char *
dsn_action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	}
	return "failed";
}

static const char *
default_status(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "5.0.0";
	case DSN_ACTION_DELAYED:
		return "4.0.0";
	case DSN_ACTION_DELIVERED:
		return "2.0.0";
	}
	return "5.0.0";
}

/* RFC 5322 §3.3 date-time in UTC, independent of the locale. */
static int
put_date(struct buf *out, int64_t t)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11)
		return -1;
	return buf_printf(out, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Appends s with CR, LF, other controls and non-ASCII bytes replaced by a space ('?' for
 * non-ASCII), runs of spaces collapsed, at most max bytes. */
static int
put_clean(struct buf *out, const char *s, size_t max)
{
	bool space = false;
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && n < max; p++) {
		unsigned char c = *p;
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		else if (c >= 0x80)
			c = '?';
		if (c == ' ') {
			if (space)
				continue;
			space = true;
		} else {
			space = false;
		}
		if (buf_append_byte(out, c) < 0)
			return -1;
		n++;
	}
	return 0;
}

/* "Name: value" cleaned and folded at spaces so no line exceeds DSN_LINE_MAX where possible
 * (RFC 5322 §2.2.3); a word longer than a line stays whole. */
static int
put_folded(struct buf *out, const char *name, const char *value)
{
	struct buf v;
	buf_init(&v, DSN_DIAG_MAX + 1);
	if (put_clean(&v, value, DSN_DIAG_MAX) < 0) {
		buf_deinit(&v);
		return -1;
	}
	const char *s = v.len ? buf_cstr(&v) : "";
	while (*s == ' ')
		s++;
	size_t col = strlen(name) + 2;
	int rc = buf_printf(out, "%s:", name);
	bool first = true;
	while (rc == 0 && *s) {
		const char *e = strchr(s, ' ');
		size_t wl = e ? (size_t)(e - s) : strlen(s);
		if (!first && col + 1 + wl > DSN_LINE_MAX) {
			rc = buf_append_str(out, "\r\n");
			col = 0;
		}
		if (rc == 0)
			rc = buf_append_byte(out, ' ');
		if (rc == 0)
			rc = buf_append(out, s, wl);
		col += 1 + wl;
		first = false;
		s += wl;
		while (*s == ' ')
			s++;
	}
	if (rc == 0)
		rc = buf_append_str(out, "\r\n");
	buf_deinit(&v);
	return rc;
}

/* Remote-MTA wants a host name: "mx.example.net[192.0.2.1]:25" gives "mx.example.net". */
static int
put_remote_mta(struct buf *out, const char *relay)
{
	char host[256];
	size_t n = strcspn(relay, "[:");
	if (n == 0 || n >= sizeof host)
		return 0;
	memcpy(host, relay, n);
	host[n] = '\0';
	if (buf_append_str(out, "Remote-MTA: dns; ") < 0 || put_clean(out, host, n) < 0)
		return -1;
	return buf_append_str(out, "\r\n");
}

/* Length of the header section of msg including the empty line (or all of msg). */
static size_t
header_section_len(const unsigned char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* Appends bytes with every line ending in CRLF (bare LF becomes CRLF). */
static int
put_crlf(struct buf *out, const unsigned char *p, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n' || (i > 0 && p[i - 1] == '\r'))
			continue;
		if (buf_append(out, p + start, i - start) < 0 || buf_append_str(out, "\r\n") < 0)
			return -1;
		start = i + 1;
	}
	if (buf_append(out, p + start, len - start) < 0)
		return -1;
	if (len > 0 && p[len - 1] != '\n')
		return buf_append_str(out, "\r\n");
	return 0;
}

static const char *
subject_for(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "Undelivered Mail Returned to Sender";
	case DSN_ACTION_DELAYED:
		return "Delayed Mail (still being retried)";
	case DSN_ACTION_DELIVERED:
		return "Successful Mail Delivery Report";
	}
	return "Delivery Status Notification";
}

static int
put_human(struct buf *out, const struct dsn_report *r)
{
	const char *intro;
	switch (r->rcpts[0].action) {
	case DSN_ACTION_DELAYED:
		intro =
		    "Your message has not been delivered yet to the recipients below. The mail\r\n"
		    "system keeps trying; you do not need to send it again now.\r\n";
		break;
	case DSN_ACTION_DELIVERED:
		intro = "Your message was delivered to the recipients below.\r\n";
		break;
	default:
		intro =
		    "Your message could not be delivered to one or more recipients. This is a\r\n"
		    "permanent error; the mail system has given up.\r\n";
		break;
	}
	int rc = buf_printf(out, "This is the mail system at %s.\r\n\r\n%s\r\n", r->reporting_mta,
	                    intro);
	for (size_t i = 0; rc == 0 && i < r->n_rcpts; i++) {
		const struct dsn_rcpt *rc_ = &r->rcpts[i];
		rc = buf_append_str(out, "<");
		if (rc == 0)
			rc = put_clean(out, rc_->final_rcpt, 320);
		if (rc == 0)
			rc = buf_printf(out, ">: %s", dsn_action_name(rc_->action));
		if (rc == 0 && rc_->diagnostic) {
			rc = buf_append_str(out, "\r\n    ");
			if (rc == 0)
				rc = put_clean(out, rc_->diagnostic, 500);
		}
		if (rc == 0)
			rc = buf_append_str(out, "\r\n");
	}
	return rc;
}

static int
put_status_rcpt(struct buf *out, const struct dsn_rcpt *rc)
{
	int e = buf_append_str(out, "\r\n");
	if (e == 0 && rc->orcpt && *rc->orcpt) {
		const char *v = rc->orcpt;
		/* ORCPT without an address type is taken as rfc822 (RFC 3461 §4.2). */
		e = buf_append_str(out, strchr(v, ';') ? "Original-Recipient: "
		                                       : "Original-Recipient: rfc822;");
		if (e == 0)
			e = put_clean(out, v, 500);
		if (e == 0)
			e = buf_append_str(out, "\r\n");
	}
	if (e == 0)
		e = buf_append_str(out, "Final-Recipient: rfc822;");
	if (e == 0)
		e = put_clean(out, rc->final_rcpt, 320);
	if (e == 0)
		e = buf_printf(out, "\r\nAction: %s\r\nStatus: ", dsn_action_name(rc->action));
	if (e == 0)
		e = put_clean(
		    out, rc->status && *rc->status ? rc->status : default_status(rc->action), 16);
	if (e == 0)
		e = buf_append_str(out, "\r\n");
	if (e == 0 && rc->remote_mta && *rc->remote_mta)
		e = put_remote_mta(out, rc->remote_mta);
	if (e == 0 && rc->diagnostic && *rc->diagnostic) {
		struct buf v;
		buf_init(&v, DSN_DIAG_MAX + 16);
		e = buf_append_str(&v, "smtp; ");
		if (e == 0)
			e = buf_append(&v, rc->diagnostic, strnlen(rc->diagnostic, DSN_DIAG_MAX));
		if (e == 0)
			e = put_folded(out, "Diagnostic-Code", buf_cstr(&v));
		buf_deinit(&v);
	}
	if (e == 0 && rc->last_attempt > 0) {
		e = buf_append_str(out, "Last-Attempt-Date: ");
		if (e == 0)
			e = put_date(out, rc->last_attempt);
		if (e == 0)
			e = buf_append_str(out, "\r\n");
	}
	if (e == 0 && rc->action == DSN_ACTION_DELAYED && rc->will_retry_until > 0) {
		e = buf_append_str(out, "Will-Retry-Until: ");
		if (e == 0)
			e = put_date(out, rc->will_retry_until);
		if (e == 0)
			e = buf_append_str(out, "\r\n");
	}
	return e;
}

static int
put_original(struct buf *out, const struct dsn_report *r, const char *b)
{
	if (r->original == NULL || r->original_len == 0)
		return 0;
	bool full = r->ret == DSN_RET_FULL && r->original_len <= DSN_FULL_MAX;
	size_t n = full ? r->original_len : header_section_len(r->original, r->original_len);
	int e = buf_printf(out, "\r\n--%s\r\nContent-Type: %s\r\nContent-Description: %s\r\n\r\n",
	                   b, full ? "message/rfc822" : "text/rfc822-headers",
	                   full ? "Undelivered Message" : "Undelivered Message Headers");
	if (e == 0)
		e = put_crlf(out, r->original, n);
	return e;
}

int
dsn_build(const struct dsn_report *r, struct buf *out)
{
	if (r == NULL || r->n_rcpts == 0 || r->rcpts == NULL || r->reporting_mta == NULL ||
	    r->to == NULL || *r->reporting_mta == '\0')
		return -1;
	for (size_t i = 0; i < r->n_rcpts; i++)
		if (r->rcpts[i].final_rcpt == NULL)
			return -1;
	const char *b = r->boundary ? r->boundary : DSN_DEFAULT_BOUNDARY;
	int e = buf_append_str(out, "From: Mail Delivery System <MAILER-DAEMON@");
	if (e == 0)
		e = put_clean(out, r->reporting_mta, 255);
	if (e == 0)
		e = buf_append_str(out, ">\r\nTo: <");
	if (e == 0)
		e = put_clean(out, r->to, 320);
	if (e == 0)
		e = buf_printf(out, ">\r\nSubject: %s\r\nDate: ", subject_for(r->rcpts[0].action));
	if (e == 0)
		e = put_date(out, r->now);
	if (e == 0) {
		if (r->message_id)
			e = buf_printf(out, "\r\nMessage-ID: %s\r\n", r->message_id);
		else
			e = buf_printf(out, "\r\nMessage-ID: <dsn.%lld.%s@%s>\r\n",
			               (long long)r->now, b, r->reporting_mta);
	}
	if (e == 0)
		e = buf_printf(out,
		               "MIME-Version: 1.0\r\n"
		               "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		               "\tboundary=\"%s\"\r\n"
		               "Auto-Submitted: auto-replied\r\n"
		               "\r\n"
		               "This is a MIME-encapsulated message.\r\n"
		               "\r\n--%s\r\n"
		               "Content-Type: text/plain; charset=us-ascii\r\n"
		               "Content-Description: Notification\r\n\r\n",
		               b, b);
	if (e == 0)
		e = put_human(out, r);
	if (e == 0)
		e = buf_printf(out,
		               "\r\n--%s\r\nContent-Type: message/delivery-status\r\n"
		               "Content-Description: Delivery report\r\n\r\n"
		               "Reporting-MTA: dns; ",
		               b);
	if (e == 0)
		e = put_clean(out, r->reporting_mta, 255);
	if (e == 0)
		e = buf_append_str(out, "\r\n");
	if (e == 0 && r->envid && *r->envid) {
		e = buf_append_str(out, "Original-Envelope-Id: ");
		if (e == 0)
			e = put_clean(out, r->envid, 100);
		if (e == 0)
			e = buf_append_str(out, "\r\n");
	}
	if (e == 0 && r->arrival > 0) {
		e = buf_append_str(out, "Arrival-Date: ");
		if (e == 0)
			e = put_date(out, r->arrival);
		if (e == 0)
			e = buf_append_str(out, "\r\n");
	}
	for (size_t i = 0; e == 0 && i < r->n_rcpts; i++)
		e = put_status_rcpt(out, &r->rcpts[i]);
	if (e == 0)
		e = put_original(out, r, b);
	if (e == 0)
		e = buf_printf(out, "\r\n--%s--\r\n", b);
	return e < 0 || out->overflow ? -1 : 0;
}
