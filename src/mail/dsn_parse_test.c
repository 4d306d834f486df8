/* Unit tests for src/mail/dsn_parse.c: our own DSNs parse back, hand-written RFC 3464 reports
 * (several recipients, folds, Original-Recipient, delayed and failed), an RFC 5965 feedback
 * report, plain-text bounces in the Postfix, Exim and qmail phrasings, garbage, every
 * truncation of one report, and the limits. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mail/dsn.h"
#include "test.h"
#include "util/buf.h"

static void
parse(const char *s, struct dsn_parsed *out)
{
	dsn_parse((const unsigned char *)s, strlen(s), out);
}

static void
test_own_dsn(void)
{
	struct dsn_rcpt rc[2] = {
	    {.final_rcpt = "bob@remote.example",
	     .orcpt = "rfc822;Bob.List@example.org",
	     .action = DSN_ACTION_FAILED,
	     .status = "5.1.1",
	     .remote_mta = "mx.remote.example[127.0.0.1]:25",
	     .diagnostic = "550 5.1.1 <bob@remote.example>: Recipient address rejected: the "
	                   "mailbox does not exist here and never did, please check the address "
	                   "and try again",
	     .last_attempt = 1700000100},
	    {.final_rcpt = "carol@remote.example",
	     .action = DSN_ACTION_DELAYED,
	     .diagnostic = "451 4.4.1 try later",
	     .will_retry_until = 1700432000},
	};
	static const char original[] = "From: alice@example.org\r\nTo: bob@remote.example\r\n"
	                               "Subject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\n"
	                               "The body line.\r\n";
	struct dsn_report r = {
	    .reporting_mta = "mail.example.org",
	    .to = "alice@example.org",
	    .envid = "ENV123",
	    .arrival = 1700000000,
	    .now = 1700000200,
	    .boundary = "b-1",
	    .rcpts = rc,
	    .n_rcpts = 2,
	    .original = (const unsigned char *)original,
	    .original_len = strlen(original),
	};
	for (int ret = 0; ret < 2; ret++) {
		r.ret = ret ? DSN_RET_FULL : DSN_RET_HDRS;
		struct buf b;
		buf_init(&b, 0);
		CHECK_INT(dsn_build(&r, &b), 0);
		struct dsn_parsed p;
		dsn_parse(b.data, b.len, &p);
		CHECK_INT(p.kind, DSN_PARSE_DSN);
		CHECK_STR(p.reporting_mta, "mail.example.org");
		CHECK_STR(p.original_message_id, "m1@example.org");
		CHECK_INT(p.n_rcpts, 2);
		CHECK_STR(p.rcpts[0].address, "bob@remote.example");
		CHECK_STR(p.rcpts[0].orig_address, "Bob.List@example.org");
		CHECK_STR(p.rcpts[0].action, "failed");
		CHECK_STR(p.rcpts[0].status, "5.1.1");
		CHECK_STR(p.rcpts[0].remote_mta, "mx.remote.example");
		CHECK_STR(p.rcpts[0].diagnostic, rc[0].diagnostic);
		CHECK(dsn_parsed_is_hard(&p.rcpts[0]));
		CHECK_STR(p.rcpts[1].address, "carol@remote.example");
		CHECK_STR(p.rcpts[1].orig_address, "");
		CHECK_STR(p.rcpts[1].action, "delayed");
		CHECK_STR(p.rcpts[1].status, "4.0.0");
		CHECK_STR(p.rcpts[1].diagnostic, "451 4.4.1 try later");
		CHECK(!dsn_parsed_is_hard(&p.rcpts[1]));
		buf_deinit(&b);
	}
}

/* RFC 3464 §6-style report, LF line ends, folded diagnostic, three recipients. */
static const char rfc3464[] =
    "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.remote.example>\n"
    "To: <bounce+abc@example.org>\n"
    "Subject: Returned mail\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=delivery-status;\n"
    "\tboundary=\"RAA14128.773615765/mx.remote.example\"\n"
    "\n"
    "This is a MIME-encapsulated message\n"
    "\n"
    "--RAA14128.773615765/mx.remote.example\n"
    "\n"
    "The original message was received at Sat, 9 Jul 1994 17:17:56 -0400\n"
    "----- The following addresses had delivery problems -----\n"
    "<louisl@larry.slip.example>  (unrecoverable error)\n"
    "\n"
    "--RAA14128.773615765/mx.remote.example\n"
    "content-type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx.remote.example\n"
    "Arrival-Date: Sat, 9 Jul 1994 17:17:56 -0400\n"
    "\n"
    "Original-Recipient: rfc822;Louis.L@larry.slip.example\n"
    "Final-Recipient: RFC822; louisl@larry.slip.example\n"
    "Action: Failed (permanent)\n"
    "Status: 5.1.1 (user unknown)\n"
    "Remote-MTA: DNS; larry.slip.example\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <louisl@larry.slip.example>...\n"
    "   User unknown in\n"
    "\tlocal recipient table\n"
    "\n"
    "Final-Recipient: rfc822; pongo@zoo.example\n"
    "Action: delayed\n"
    "Status: 4.0.0\n"
    "Will-Retry-Until: Sun, 10 Jul 1994 17:17:56 -0400\n"
    "\n"
    "Final-Recipient: rfc822;<vera@zoo.example>\n"
    "Action: failed\n"
    "Diagnostic-Code: smtp;554 transaction failed\n"
    "\n"
    "--RAA14128.773615765/mx.remote.example\n"
    "content-type: message/rfc822\n"
    "\n"
    "From: alice@example.org\n"
    "Message-Id: <199407092338.TAA23293@example.org>\n"
    "Subject: hi\n"
    "\n"
    "body\n"
    "--RAA14128.773615765/mx.remote.example--\n";

static void
test_rfc3464(void)
{
	struct dsn_parsed p;
	parse(rfc3464, &p);
	CHECK_INT(p.kind, DSN_PARSE_DSN);
	CHECK_STR(p.reporting_mta, "mx.remote.example");
	CHECK_STR(p.original_message_id, "199407092338.TAA23293@example.org");
	CHECK_INT(p.n_rcpts, 3);
	CHECK_STR(p.rcpts[0].address, "louisl@larry.slip.example");
	CHECK_STR(p.rcpts[0].orig_address, "Louis.L@larry.slip.example");
	CHECK_STR(p.rcpts[0].action, "failed");
	CHECK_STR(p.rcpts[0].status, "5.1.1");
	CHECK_STR(p.rcpts[0].remote_mta, "larry.slip.example");
	CHECK_STR(p.rcpts[0].diagnostic,
	          "550 5.1.1 <louisl@larry.slip.example>... User unknown in local recipient table");
	CHECK(dsn_parsed_is_hard(&p.rcpts[0]));
	CHECK_STR(p.rcpts[1].address, "pongo@zoo.example");
	CHECK_STR(p.rcpts[1].action, "delayed");
	CHECK_STR(p.rcpts[1].status, "4.0.0");
	CHECK(!dsn_parsed_is_hard(&p.rcpts[1]));
	CHECK_STR(p.rcpts[2].address, "vera@zoo.example");
	CHECK_STR(p.rcpts[2].status, "");
	CHECK_STR(p.rcpts[2].diagnostic, "554 transaction failed");
	CHECK(dsn_parsed_is_hard(&p.rcpts[2])); /* no status: the 5xx code decides */

	/* CRLF and no blank line between the per-message and recipient fields */
	static const char squeezed[] =
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
	    "--x\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns;a.example\r\nFinal-Recipient: rfc822;u1@b.example\r\n"
	    "Action: failed\r\nStatus: 5.2.2\r\nFinal-Recipient: rfc822;u2@b.example\r\n"
	    "Action: delivered\r\nStatus: 2.0.0\r\n--x--\r\n";
	parse(squeezed, &p);
	CHECK_INT(p.kind, DSN_PARSE_DSN);
	CHECK_STR(p.reporting_mta, "a.example");
	CHECK_INT(p.n_rcpts, 2);
	CHECK_STR(p.rcpts[0].address, "u1@b.example");
	CHECK_STR(p.rcpts[0].status, "5.2.2");
	CHECK_STR(p.rcpts[1].address, "u2@b.example");
	CHECK_STR(p.rcpts[1].action, "delivered");
	CHECK(!dsn_parsed_is_hard(&p.rcpts[1]));
	CHECK_STR(p.original_message_id, "");
}

/* RFC 5965 Appendix B shape. */
static const char arf[] = "From: <abusedesk@example.com>\r\n"
                          "Date: Thu, 8 Mar 2005 17:40:36 EDT\r\n"
                          "Subject: FW: Earn money\r\n"
                          "To: <abuse@example.net>\r\n"
                          "MIME-Version: 1.0\r\n"
                          "Content-Type: multipart/report; report-type=feedback-report;\r\n"
                          "     boundary=\"part1_13d.2e68ed54_boundary\"\r\n"
                          "\r\n"
                          "--part1_13d.2e68ed54_boundary\r\n"
                          "Content-Type: text/plain; charset=\"US-ASCII\"\r\n"
                          "Content-Transfer-Encoding: 7bit\r\n"
                          "\r\n"
                          "This is an email abuse report for an email message received from IP\r\n"
                          "192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.\r\n"
                          "--part1_13d.2e68ed54_boundary\r\n"
                          "Content-Type: message/feedback-report\r\n"
                          "\r\n"
                          "Feedback-Type: abuse\r\n"
                          "User-Agent: SomeGenerator/1.0\r\n"
                          "Version: 1\r\n"
                          "Original-Mail-From: <somespammer@example.net>\r\n"
                          "Original-Rcpt-To: <user@example.com>\r\n"
                          "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\n"
                          "Reporting-MTA: dns; mail.example.com\r\n"
                          "Source-IP: 192.0.2.1\r\n"
                          "\r\n"
                          "--part1_13d.2e68ed54_boundary\r\n"
                          "Content-Type: message/rfc822\r\n"
                          "Content-Disposition: inline\r\n"
                          "\r\n"
                          "From: <somespammer@example.net>\r\n"
                          "Received: from mailserver.example.net (mailserver.example.net\r\n"
                          "        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;\r\n"
                          "        Thu, 08 Mar 2005 14:00:00 -0400\r\n"
                          "To: <Undisclosed Recipients>\r\n"
                          "Subject: Earn money\r\n"
                          "MIME-Version: 1.0\r\n"
                          "Content-type: text/plain\r\n"
                          "Message-ID: <8787KJKJ3K4J3K4J3K4J3.mail@example.net>\r\n"
                          "Date: Thu, 02 Sep 2004 12:31:03 -0500\r\n"
                          "\r\n"
                          "Spam Spam Spam\r\n"
                          "--part1_13d.2e68ed54_boundary--\r\n";

static void
test_arf(void)
{
	struct dsn_parsed p;
	parse(arf, &p);
	CHECK_INT(p.kind, DSN_PARSE_ARF);
	CHECK_STR(p.feedback_type, "abuse");
	CHECK_STR(p.original_mail_from, "somespammer@example.net");
	CHECK_STR(p.reporting_mta, "mail.example.com");
	CHECK_STR(p.original_message_id, "8787KJKJ3K4J3K4J3K4J3.mail@example.net");
	CHECK_INT(p.n_rcpts, 1);
	CHECK_STR(p.rcpts[0].address, "user@example.com");
	CHECK_STR(p.rcpts[0].action, "");
	CHECK(!dsn_parsed_is_hard(&p.rcpts[0]));

	/* headers only (text/rfc822-headers), no Original-Rcpt-To: the returned To: is used */
	static const char arf2[] =
	    "Content-Type: multipart/report; report-type=feedback-report; boundary=\"q\"\n\n"
	    "--q\nContent-Type: message/feedback-report\n\nFeedback-Type: fraud\nVersion: 1\n\n"
	    "--q\nContent-Type: text/rfc822-headers\n\nTo: Some One <one@example.org>, "
	    "two@example.org\nMessage-ID: <x1@example.org>\n\n--q--\n";
	parse(arf2, &p);
	CHECK_INT(p.kind, DSN_PARSE_ARF);
	CHECK_STR(p.feedback_type, "fraud");
	CHECK_STR(p.original_message_id, "x1@example.org");
	CHECK_INT(p.n_rcpts, 1);
	CHECK_STR(p.rcpts[0].address, "one@example.org");
}

static const char postfix[] =
    "From: MAILER-DAEMON@mail.example.org (Mail Delivery System)\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "To: bounce+t1@example.org\n"
    "\n"
    "This is the mail system at host mail.example.org.\n"
    "\n"
    "I'm sorry to have to inform you that your message could not\n"
    "be delivered to one or more recipients. It's attached below.\n"
    "\n"
    "                   The mail system\n"
    "\n"
    "<user@example.com>: host mx.example.com[127.0.0.1] said: 550 5.1.1\n"
    "    <user@example.com>: Recipient address rejected: User unknown in local\n"
    "    recipient table (in reply to RCPT TO command)\n"
    "\n"
    "<other@example.net>: host mx.example.net[127.0.0.2] said: 452 4.2.2 Mailbox\n"
    "    full (in reply to RCPT TO command)\n"
    "\n"
    "------ This is a copy of the message, including all the headers. ------\n"
    "\n"
    "To: <notme@example.com>\n"
    "<ignored@example.com>: 550 5.1.1 nope\n";

static const char exim[] =
    "From: Mail Delivery System <Mailer-Daemon@mx.example.com>\r\n"
    "To: bounce+t2@example.org\r\n"
    "Subject: Mail delivery failed: returning message to sender\r\n"
    "\r\n"
    "This message was created automatically by mail delivery software.\r\n"
    "\r\n"
    "A message that you sent could not be delivered to one or more of its\r\n"
    "recipients. This is a permanent error. The following address(es) failed:\r\n"
    "\r\n"
    "  user@example.com\r\n"
    "    host mx.example.com [127.0.0.1]\r\n"
    "    SMTP error from remote mail server after RCPT TO:<user@example.com>:\r\n"
    "    550 5.1.1 <user@example.com>: User unknown\r\n"
    "  nobody@example.net\r\n"
    "    Unrouteable address\r\n"
    "\r\n"
    "------ This is a copy of the message, including all the headers. ------\r\n"
    "\r\n"
    "  someone@example.com said: 550 5.1.1\r\n";

static const char qmail[] =
    "Subject: failure notice\n\n"
    "Hi. This is the qmail-send program at mx.example.com.\n"
    "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
    "This is a permanent error; I've given up. Sorry it didn't work out.\n"
    "\n"
    "<user@example.com>:\n"
    "127.0.0.1 does not like recipient.\n"
    "Remote host said: 550 sorry, no mailbox here by that name\n"
    "Giving up on 127.0.0.1.\n"
    "\n"
    "--- Below this line is a copy of the message.\n"
    "\n"
    "<x@example.com>: 550 no\n";

static void
test_plain_text(void)
{
	struct dsn_parsed p;
	parse(postfix, &p);
	CHECK_INT(p.kind, DSN_PARSE_HEURISTIC);
	CHECK_INT(p.n_rcpts, 2);
	CHECK_STR(p.rcpts[0].address, "user@example.com");
	CHECK_STR(p.rcpts[0].status, "5.1.1");
	CHECK_STR(p.rcpts[0].action, "failed");
	CHECK_STR(p.rcpts[0].diagnostic,
	          "550 5.1.1 <user@example.com>: Recipient address rejected: User unknown in local "
	          "recipient table (in reply to RCPT TO command)");
	CHECK(dsn_parsed_is_hard(&p.rcpts[0]));
	CHECK_STR(p.rcpts[1].address, "other@example.net");
	CHECK_STR(p.rcpts[1].status, "4.2.2");
	CHECK_STR(p.rcpts[1].action, "delayed");
	CHECK(!dsn_parsed_is_hard(&p.rcpts[1]));

	parse(exim, &p);
	CHECK_INT(p.kind, DSN_PARSE_HEURISTIC);
	CHECK_INT(p.n_rcpts, 2);
	CHECK_STR(p.rcpts[0].address, "user@example.com");
	CHECK_STR(p.rcpts[0].status, "5.1.1");
	CHECK_STR(p.rcpts[0].action, "failed");
	CHECK(strstr(p.rcpts[0].diagnostic, "550 5.1.1 <user@example.com>: User unknown") != NULL);
	CHECK(dsn_parsed_is_hard(&p.rcpts[0]));
	CHECK_STR(p.rcpts[1].address, "nobody@example.net");
	CHECK_STR(p.rcpts[1].action, "failed");
	CHECK_STR(p.rcpts[1].diagnostic, "Unrouteable address");

	parse(qmail, &p);
	CHECK_INT(p.kind, DSN_PARSE_HEURISTIC);
	CHECK_INT(p.n_rcpts, 1);
	CHECK_STR(p.rcpts[0].address, "user@example.com");
	CHECK_STR(p.rcpts[0].status, "");
	CHECK_STR(p.rcpts[0].action, "failed");
	CHECK(strncmp(p.rcpts[0].diagnostic, "550 sorry", 9) == 0);
	CHECK(dsn_parsed_is_hard(&p.rcpts[0]));

	/* code first, address in brackets */
	parse("Subject: x\n\nDelivery failed:\n550 5.1.1 <gone@example.com>: User unknown\n", &p);
	CHECK_INT(p.kind, DSN_PARSE_HEURISTIC);
	CHECK_INT(p.n_rcpts, 1);
	CHECK_STR(p.rcpts[0].address, "gone@example.com");
	CHECK_STR(p.rcpts[0].status, "5.1.1");

	/* an ordinary message is not a bounce */
	parse("From: a@example.org\nSubject: hi\n\nWrite to bob@example.org at 10:55 550 times.\n"
	      "Our IP is 5.1.1.1 and port :550.\n",
	      &p);
	CHECK_INT(p.kind, DSN_PARSE_NONE);
	CHECK_INT(p.n_rcpts, 0);
}

static void
test_garbage(void)
{
	static const char *const cases[] = {
	    "",
	    "\n\n\n",
	    "::::\r\n\r\n",
	    "Content-Type: multipart/report; boundary=\n\n--\n--\n",
	    "Content-Type: message/delivery-status\n\nFinal-Recipient:\nAction:\n",
	    "Content-Type: message/delivery-status\n\n\tfold first\n:\nFinal-Recipient: ;\n",
	    "Content-Type: message/feedback-report\n\nOriginal-Rcpt-To: <>\n",
	    "<@>:\n<a@>:\n<@b.c>: 550\n@@@ 550 5.1.1\n",
	    "\x01\x02\xff\xfe<\x80@\x81.\x82>: 550 5.0.0\n",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dsn_parsed p;
		parse(cases[i], &p);
		CHECK(p.n_rcpts <= DSN_PARSE_MAX_RCPTS);
		for (size_t k = 0; k < p.n_rcpts; k++)
			CHECK(p.rcpts[k].address[0] != '\0');
	}
	struct dsn_parsed p;
	dsn_parse(NULL, 0, &p);
	CHECK_INT(p.kind, DSN_PARSE_NONE);
	/* NUL bytes inside fields */
	static const char nul[] = "Content-Type: message/delivery-status\n\n"
	                          "Final-Recipient: rfc822;a\0b@example.org\nStatus: 5.1\0.1\n";
	dsn_parse((const unsigned char *)nul, sizeof nul - 1, &p);
	CHECK_INT(p.kind, DSN_PARSE_DSN);
	CHECK_INT(p.n_rcpts, 1);
	CHECK_STR(p.rcpts[0].address, "a b@example.org");
}

static void
test_truncated(void)
{
	const char *samples[] = {rfc3464, arf, postfix};
	for (size_t s = 0; s < 3; s++) {
		size_t n = strlen(samples[s]);
		for (size_t len = 0; len <= n; len++) {
			unsigned char *copy =
			    malloc(len ? len : 1); /* exact size: ASan sees overreads */
			memcpy(copy, samples[s], len);
			struct dsn_parsed p;
			dsn_parse(copy, len, &p);
			CHECK(p.n_rcpts <= DSN_PARSE_MAX_RCPTS);
			free(copy);
		}
	}
}

static void
test_limits(void)
{
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "Content-Type: multipart/report; report-type=delivery-status; "
	                   "boundary=z\n\n--z\nContent-Type: message/delivery-status\n\n"
	                   "Reporting-MTA: dns; ");
	for (int i = 0; i < 2000; i++)
		buf_append_byte(&b, 'm');
	buf_append_str(&b, "\n\n");
	for (int i = 0; i < 150; i++)
		buf_printf(&b, "Final-Recipient: rfc822;u%d@example.com\nAction: failed\n\n", i);
	buf_append_str(&b, "Final-Recipient: rfc822;");
	for (int i = 0; i < 3000; i++)
		buf_append_byte(&b, 'x');
	buf_append_str(&b, "\n--z--\n");
	struct dsn_parsed p;
	dsn_parse(b.data, b.len, &p);
	CHECK_INT(p.kind, DSN_PARSE_DSN);
	CHECK_INT(p.n_rcpts, DSN_PARSE_MAX_RCPTS);
	CHECK_STR(p.rcpts[99].address, "u99@example.com");
	CHECK_INT(strlen(p.reporting_mta), sizeof p.reporting_mta - 1);
	buf_deinit(&b);

	/* more parts than DSN_PARSE_MAX_PARTS: the report after them is not looked at */
	buf_init(&b, 0);
	buf_append_str(&b, "Content-Type: multipart/mixed; boundary=z\n\n");
	for (int i = 0; i < DSN_PARSE_MAX_PARTS + 5; i++)
		buf_append_str(&b, "--z\nContent-Type: application/octet-stream\n\nx\n");
	buf_append_str(&b, "--z\nContent-Type: message/delivery-status\n\n"
	                   "Final-Recipient: rfc822;late@example.com\n--z--\n");
	dsn_parse(b.data, b.len, &p);
	CHECK_INT(p.kind, DSN_PARSE_NONE);
	CHECK_INT(p.n_rcpts, 0);
	buf_deinit(&b);

	/* a long diagnostic is cut on a UTF-8 boundary */
	buf_init(&b, 0);
	buf_append_str(&b, "Content-Type: message/delivery-status\n\n"
	                   "Final-Recipient: rfc822;a@example.com\nDiagnostic-Code: smtp; 550 ");
	for (int i = 0; i < 400; i++)
		buf_append_str(&b, "\xc3\xa9");
	buf_append_str(&b, "\n");
	dsn_parse(b.data, b.len, &p);
	size_t dl = strlen(p.rcpts[0].diagnostic);
	CHECK(dl < sizeof p.rcpts[0].diagnostic);
	CHECK(dl > 500);
	CHECK((dl - 4) % 2 == 0); /* "550 " then whole two-byte characters */
	CHECK(dsn_parsed_is_hard(&p.rcpts[0]));
	buf_deinit(&b);
}

int
main(void)
{
	RUN(test_own_dsn);
	RUN(test_rfc3464);
	RUN(test_arf);
	RUN(test_plain_text);
	RUN(test_garbage);
	RUN(test_truncated);
	RUN(test_limits);
	return test_done("mail/dsn_parse");
}
