/* Unit tests for src/mail/dsn: the built multipart/report is split back into its parts and the
 * delivery-status fields, RET variants, ORCPT, folding of long diagnostics and the cleaning of
 * hostile reply text are checked; GMime (mail/mime.h) must parse it as multipart/report. */
#include <stdbool.h>
#include <string.h>

#include "mail/dsn.h"
#include "mail/mime.h"
#include "test.h"
#include "util/buf.h"

#define B "dsn-test-boundary"

static const char original[] = "From: alice@example.org\r\nTo: bob@remote.example\r\n"
                               "Subject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\n"
                               "The body line.\r\n";

/* Splits msg at the boundary B: part i (0 = preamble/top header, 1..n) into parts[i]. */
static size_t
split(const char *msg, const char *parts[8], size_t lens[8])
{
	const char *delim = "\r\n--" B;
	size_t dl = strlen(delim), n = 0;
	const char *p = msg;
	while (n < 8) {
		const char *q = strstr(p, delim);
		parts[n] = p;
		lens[n] = q ? (size_t)(q - p) : strlen(p);
		n++;
		if (q == NULL)
			break;
		p = q + dl;
		if (strncmp(p, "--", 2) == 0)
			break;
		if (strncmp(p, "\r\n", 2) == 0)
			p += 2;
	}
	return n;
}

static bool
part_has(const char *part, size_t len, const char *needle)
{
	size_t nl = strlen(needle);
	for (size_t i = 0; i + nl <= len; i++)
		if (memcmp(part + i, needle, nl) == 0)
			return true;
	return false;
}

/* Every line ends in CRLF, and no bare CR or LF occurs. */
static bool
crlf_only(const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return false;
		if (s[i] == '\r' && s[i + 1] != '\n')
			return false;
	}
	return true;
}

static void
build(const struct dsn_report *r, struct buf *out)
{
	buf_init(out, 0);
	CHECK_INT(dsn_build(r, out), 0);
	CHECK(crlf_only(buf_cstr(out)));
}

static void
test_failed_headers(void)
{
	struct dsn_rcpt rc = {
	    .final_rcpt = "bob@remote.example",
	    .action = DSN_ACTION_FAILED,
	    .status = "5.1.1",
	    .remote_mta = "mx.remote.example[127.0.0.1]:25",
	    .diagnostic = "550 5.1.1 <bob@remote.example>: no such user",
	    .last_attempt = 1700000100,
	};
	struct dsn_report r = {
	    .reporting_mta = "mail.example.org",
	    .to = "alice@example.org",
	    .envid = "ENV123",
	    .arrival = 1700000000,
	    .now = 1700000200,
	    .boundary = B,
	    .ret = DSN_RET_HDRS,
	    .rcpts = &rc,
	    .n_rcpts = 1,
	    .original = (const unsigned char *)original,
	    .original_len = strlen(original),
	};
	struct buf out;
	build(&r, &out);
	const char *m = buf_cstr(&out);
	const char *parts[8];
	size_t lens[8];
	size_t n = split(m, parts, lens);
	CHECK_INT(n, 4);
	CHECK(part_has(parts[0], lens[0],
	               "From: Mail Delivery System <MAILER-DAEMON@mail.example.org>"));
	CHECK(part_has(parts[0], lens[0], "To: <alice@example.org>"));
	CHECK(part_has(parts[0], lens[0], "Auto-Submitted: auto-replied"));
	CHECK(part_has(parts[0], lens[0], "report-type=delivery-status"));
	CHECK(part_has(parts[0], lens[0], "Date: Tue, 14 Nov 2023 22:16:40 +0000"));
	CHECK(part_has(parts[1], lens[1], "Content-Type: text/plain"));
	CHECK(part_has(parts[1], lens[1], "<bob@remote.example>: failed"));
	CHECK(part_has(parts[2], lens[2], "Content-Type: message/delivery-status"));
	CHECK(part_has(parts[2], lens[2], "Reporting-MTA: dns; mail.example.org\r\n"));
	CHECK(part_has(parts[2], lens[2], "Original-Envelope-Id: ENV123\r\n"));
	CHECK(part_has(parts[2], lens[2], "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	CHECK(
	    part_has(parts[2], lens[2], "\r\n\r\nFinal-Recipient: rfc822;bob@remote.example\r\n"));
	CHECK(part_has(parts[2], lens[2], "Action: failed\r\nStatus: 5.1.1\r\n"));
	CHECK(part_has(parts[2], lens[2], "Remote-MTA: dns; mx.remote.example\r\n"));
	CHECK(part_has(parts[2], lens[2],
	               "Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.example>: no such user\r\n"));
	CHECK(part_has(parts[2], lens[2], "Last-Attempt-Date: "));
	CHECK(!part_has(parts[2], lens[2], "Will-Retry-Until"));
	CHECK(!part_has(parts[2], lens[2], "Original-Recipient"));
	CHECK(part_has(parts[3], lens[3], "Content-Type: text/rfc822-headers"));
	CHECK(part_has(parts[3], lens[3], "Subject: hello\r\n"));
	CHECK(!part_has(parts[3], lens[3], "The body line."));
	CHECK(strstr(m, "\r\n--" B "--\r\n") != NULL);

	/* GMime sees a multipart/report with three parts */
	struct mime_meta meta = {0};
	CHECK_INT(mime_meta_build(out.data, out.len, &meta), 0);
	CHECK(meta.bodystructure && strstr(meta.bodystructure, "\"report\"") != NULL);
	CHECK(meta.bodystructure && strstr(meta.bodystructure, "\"delivery-status\"") != NULL);
	CHECK(meta.bodystructure && strstr(meta.bodystructure, "\"rfc822-headers\"") != NULL);
	mime_meta_deinit(&meta);
	buf_deinit(&out);
}

static void
test_full_orcpt_delay(void)
{
	struct dsn_rcpt rc[2] = {
	    {.final_rcpt = "carol@remote.example",
	     .orcpt = "rfc822;list@example.org",
	     .action = DSN_ACTION_DELAYED,
	     .diagnostic = "451 4.4.1 try later",
	     .last_attempt = 1700000100,
	     .will_retry_until = 1700432000},
	    {.final_rcpt = "dave@remote.example",
	     .orcpt = "dave-orig@example.org",
	     .action = DSN_ACTION_DELAYED},
	};
	struct dsn_report r = {
	    .reporting_mta = "mail.example.org",
	    .to = "alice@example.org",
	    .arrival = 1700000000,
	    .now = 1700000200,
	    .message_id = "<fixed@mail.example.org>",
	    .boundary = B,
	    .ret = DSN_RET_FULL,
	    .rcpts = rc,
	    .n_rcpts = 2,
	    .original = (const unsigned char *)"Subject: lf\n\nbody\n",
	    .original_len = 18,
	};
	struct buf out;
	build(&r, &out);
	const char *m = buf_cstr(&out);
	const char *parts[8];
	size_t lens[8];
	CHECK_INT(split(m, parts, lens), 4);
	CHECK(part_has(parts[0], lens[0], "Message-ID: <fixed@mail.example.org>\r\n"));
	CHECK(part_has(parts[0], lens[0], "Subject: Delayed Mail"));
	CHECK(part_has(parts[2], lens[2],
	               "Original-Recipient: rfc822;list@example.org\r\n"
	               "Final-Recipient: rfc822;carol@remote.example\r\nAction: delayed\r\n"
	               "Status: 4.0.0\r\n"));
	CHECK(part_has(parts[2], lens[2], "Action: delayed\r\nStatus: 4.0.0\r\n"));
	CHECK(part_has(parts[2], lens[2], "Will-Retry-Until: "));
	CHECK(part_has(parts[2], lens[2], "Original-Recipient: rfc822;dave-orig@example.org\r\n"));
	CHECK(part_has(parts[3], lens[3], "Content-Type: message/rfc822"));
	CHECK(part_has(parts[3], lens[3], "\r\n\r\nSubject: lf\r\n\r\nbody\r\n"));
	buf_deinit(&out);

	/* delivered; RET=FULL without an original: no third part */
	struct dsn_rcpt ok = {.final_rcpt = "e@remote.example", .action = DSN_ACTION_DELIVERED};
	r.rcpts = &ok;
	r.n_rcpts = 1;
	r.original = NULL;
	r.original_len = 0;
	build(&r, &out);
	CHECK_INT(split(buf_cstr(&out), parts, lens), 3);
	CHECK(strstr(buf_cstr(&out), "Action: delivered\r\nStatus: 2.0.0\r\n") != NULL);
	buf_deinit(&out);
}

static void
test_long_and_hostile(void)
{
	struct buf diag;
	buf_init(&diag, 0);
	buf_append_str(&diag, "550-5.7.1 first line of a long reply\r\n550 5.7.1");
	for (int i = 0; i < 40; i++)
		buf_printf(&diag, " word%d", i);
	buf_append_str(&diag, "\r\nBcc: injected@evil.example\r\n\r\n--" B "\r\n\x80\xff");
	struct dsn_rcpt rc = {
	    .final_rcpt = "bob@remote.example\r\nX-Evil: 1",
	    .action = DSN_ACTION_FAILED,
	    .diagnostic = buf_cstr(&diag),
	};
	struct dsn_report r = {
	    .reporting_mta = "mail.example.org",
	    .to = "alice@example.org",
	    .now = 1700000200,
	    .boundary = B,
	    .rcpts = &rc,
	    .n_rcpts = 1,
	};
	struct buf out;
	build(&r, &out);
	const char *m = buf_cstr(&out);
	CHECK(strstr(m, "\r\nBcc:") == NULL);
	CHECK(strstr(m, "\r\nX-Evil") == NULL);
	CHECK(strstr(m, "\x80") == NULL);
	const char *parts[8];
	size_t lens[8];
	CHECK_INT(split(m, parts, lens), 3); /* the injected boundary did not start a part */
	const char *d = strstr(m, "Diagnostic-Code: smtp; 550-5.7.1 first line");
	CHECK(d != NULL);
	/* folded: several lines, each at most 78 octets, continuation lines start with a space */
	size_t lines = 0;
	for (const char *p = d; p && *p;) {
		const char *e = strstr(p, "\r\n");
		CHECK(e != NULL && (size_t)(e - p) <= 78);
		lines++;
		p = e ? e + 2 : NULL;
		if (p == NULL || *p != ' ')
			break;
	}
	CHECK(lines >= 3);
	CHECK(strstr(m, "Status: 5.0.0\r\n") != NULL);
	buf_deinit(&out);
	buf_deinit(&diag);
}

static void
test_invalid(void)
{
	struct buf out;
	buf_init(&out, 0);
	struct dsn_report r = {.reporting_mta = "h", .to = "a@b"};
	CHECK_INT(dsn_build(&r, &out), -1); /* no recipients */
	struct dsn_rcpt rc = {.final_rcpt = "x@y", .action = DSN_ACTION_FAILED};
	r.rcpts = &rc;
	r.n_rcpts = 1;
	r.to = NULL;
	CHECK_INT(dsn_build(&r, &out), -1);
	buf_deinit(&out);
	/* overflow of a bounded buffer */
	buf_init(&out, 100);
	r.to = "a@b";
	CHECK_INT(dsn_build(&r, &out), -1);
	buf_deinit(&out);
	CHECK_STR(dsn_action_name(DSN_ACTION_DELAYED), "delayed");
}

int
main(void)
{
	RUN(test_failed_headers);
	RUN(test_full_orcpt_delay);
	RUN(test_long_and_hostile);
	RUN(test_invalid);
	return test_done("mail_dsn");
}
