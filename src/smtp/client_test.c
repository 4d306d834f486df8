/* Unit tests for src/smtp/client: scripted server replies (fed whole and one byte at a time)
 * against the exact client output and the per-recipient results. */
#include <string.h>

#include "smtp/client.h"
#include "test.h"
#include "util/buf.h"

static bool g_bytewise; /* feed server replies one byte at a time */

struct drv {
	struct smtp_client *c;
	struct buf sent; /* client output not yet checked */
};

static void
flush(struct drv *d)
{
	struct slice s = smtp_client_output(d->c);
	buf_append(&d->sent, s.p, s.len);
	smtp_client_output_done(d->c, s.len);
}

static void
drv_start(struct drv *d, const struct smtp_client_opts *o, const struct smtp_client_msg *m)
{
	d->c = smtp_client_new(o, m);
	buf_init(&d->sent, 0);
	flush(d);
}

static void
drv_end(struct drv *d)
{
	smtp_client_free(&d->c);
	buf_deinit(&d->sent);
}

/* The server sends s. */
static void
srv(struct drv *d, const char *s)
{
	size_t len = strlen(s);
	CHECK_INT(smtp_client_want(d->c), SMTP_CLIENT_WANT_READ);
	if (g_bytewise) {
		for (size_t i = 0; i < len; i++)
			smtp_client_input(d->c, (const unsigned char *)s + i, 1);
	} else {
		smtp_client_input(d->c, (const unsigned char *)s, len);
	}
	flush(d);
}

/* The client has sent exactly want since the last check. */
#define SENT(d, want)                                                                              \
	do {                                                                                       \
		CHECK_STR(buf_cstr(&(d)->sent), want);                                             \
		buf_reset(&(d)->sent);                                                             \
	} while (0)

static void
body(struct drv *d, const char *s)
{
	CHECK_INT(smtp_client_want(d->c), SMTP_CLIENT_WANT_BODY);
	smtp_client_body_chunk(d->c, (const unsigned char *)s, strlen(s));
	flush(d);
}

static void
body_end(struct drv *d)
{
	smtp_client_body_end(d->c);
	flush(d);
}

#define RESULT(d, i, st, stg, code_, enh)                                                          \
	do {                                                                                       \
		const struct smtp_client_result *r_ = smtp_client_rcpt_result((d)->c, i);          \
		CHECK_STR(smtp_client_status_name(r_->status), smtp_client_status_name(st));       \
		CHECK_STR(smtp_client_stage_name(r_->stage), smtp_client_stage_name(stg));         \
		CHECK_INT(r_->code, code_);                                                        \
		CHECK_STR(r_->enhanced, enh);                                                      \
	} while (0)

static const struct smtp_client_opts opts_plain = {.helo_name = "me.example"};

static struct smtp_client_rcpt rcpts3[] = {
    {.addr = "a@y.example"}, {.addr = "b@y.example"}, {.addr = "c@y.example"}};

static struct smtp_client_msg
msg_n(size_t n)
{
	return (struct smtp_client_msg){
	    .mail_from = "s@x.example", .rcpts = rcpts3, .nrcpts = n, .size = 100};
}

#define EHLO_PIPE "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"

static void
test_plain(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(1);
	drv_start(&d, &opts_plain, &m);
	SENT(&d, "");
	CHECK_INT(smtp_client_timeout_ms(d.c), SMTP_CLIENT_TIMEOUT_INITIAL);
	srv(&d, "220 mx.example ESMTP\r\n");
	SENT(&d, "EHLO me.example\r\n");
	srv(&d, "250-mx.example\r\n250-SIZE 1000\r\n250 ENHANCEDSTATUSCODES\r\n");
	SENT(&d, "MAIL FROM:<s@x.example> SIZE=100\r\n");
	CHECK_INT(smtp_client_extensions(d.c),
	          SMTP_CLIENT_EXT_SIZE | SMTP_CLIENT_EXT_ENHANCEDSTATUSCODES);
	CHECK_INT(smtp_client_server_size(d.c), 1000);
	CHECK_INT(smtp_client_timeout_ms(d.c), SMTP_CLIENT_TIMEOUT_MAIL);
	srv(&d, "250 2.1.0 ok\r\n");
	SENT(&d, "RCPT TO:<a@y.example>\r\n");
	CHECK_INT(smtp_client_timeout_ms(d.c), SMTP_CLIENT_TIMEOUT_RCPT);
	srv(&d, "250 2.1.5 ok\r\n");
	SENT(&d, "DATA\r\n");
	CHECK_INT(smtp_client_timeout_ms(d.c), SMTP_CLIENT_TIMEOUT_DATA_INIT);
	RESULT(&d, 0, SMTP_CLIENT_PENDING, SMTP_CLIENT_STAGE_CONNECT, 0, "");
	srv(&d, "354 go ahead\r\n");
	CHECK_INT(smtp_client_timeout_ms(d.c), SMTP_CLIENT_TIMEOUT_BLOCK);
	body(&d, "Subject: hi\r\n\r\nhello\r\n");
	body_end(&d);
	SENT(&d, "Subject: hi\r\n\r\nhello\r\n.\r\n");
	CHECK_INT(smtp_client_timeout_ms(d.c), SMTP_CLIENT_TIMEOUT_DATA_TERM);
	srv(&d, "250 2.0.0 queued as X\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
	RESULT(&d, 0, SMTP_CLIENT_DELIVERED, SMTP_CLIENT_STAGE_BODY, 250, "2.0.0");
	CHECK_STR(smtp_client_rcpt_result(d.c, 0)->text, "250 2.0.0 queued as X");
	smtp_client_quit(d.c);
	flush(&d);
	SENT(&d, "QUIT\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	CHECK(!smtp_client_tls_active(d.c));
	drv_end(&d);
}

static void
test_pipelining_some_refused(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(3);
	m.eightbit = true;
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n");
	SENT(&d, "EHLO me.example\r\n");
	srv(&d, EHLO_PIPE);
	SENT(&d, "MAIL FROM:<s@x.example> SIZE=100 BODY=8BITMIME\r\n"
	         "RCPT TO:<a@y.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\n"
	         "DATA\r\n");
	srv(&d, "250 ok\r\n250 ok\r\n550-5.1.1 no such\r\n550 5.1.1 user\r\n451 4.2.0 later\r\n"
	        "354 go\r\n");
	body(&d, "x\r\n");
	body_end(&d);
	SENT(&d, "x\r\n.\r\n");
	srv(&d, "250 ok\r\n");
	RESULT(&d, 0, SMTP_CLIENT_DELIVERED, SMTP_CLIENT_STAGE_BODY, 250, "2.0.0");
	RESULT(&d, 1, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_RCPT, 550, "5.1.1");
	CHECK_STR(smtp_client_rcpt_result(d.c, 1)->text, "550 5.1.1 no such; user");
	RESULT(&d, 2, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_RCPT, 451, "4.2.0");
	drv_end(&d);
}

static void
test_all_refused(void)
{
	/* without pipelining: RSET, no DATA */
	struct drv d;
	struct smtp_client_msg m = msg_n(2);
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250 mx\r\n");
	SENT(&d, "EHLO me.example\r\nMAIL FROM:<s@x.example>\r\n");
	srv(&d, "250 ok\r\n550 no\r\n");
	SENT(&d, "RCPT TO:<a@y.example>\r\nRCPT TO:<b@y.example>\r\n");
	srv(&d, "550 no\r\n");
	SENT(&d, "RSET\r\n");
	srv(&d, "250 ok\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_RCPT, 550, "5.0.0");
	RESULT(&d, 1, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_RCPT, 550, "5.0.0");
	drv_end(&d);

	/* with pipelining: DATA was sent; 503 then RSET; a rogue 354 gets an empty message */
	for (int rogue = 0; rogue < 2; rogue++) {
		drv_start(&d, &opts_plain, &m);
		srv(&d, "220 hi\r\n" EHLO_PIPE);
		buf_reset(&d.sent);
		srv(&d, "250 ok\r\n550 no\r\n450 later\r\n");
		if (rogue) {
			srv(&d, "354 go\r\n");
			SENT(&d, ".\r\n");
			srv(&d, "554 no valid recipients\r\n");
		} else {
			srv(&d, "503 no recipients\r\n");
		}
		SENT(&d, "RSET\r\n");
		srv(&d, "250 ok\r\n");
		CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
		RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_RCPT, 550, "5.0.0");
		RESULT(&d, 1, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_RCPT, 450, "4.0.0");
		drv_end(&d);
	}
}

static void
test_mail_refused_pipelined(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(2);
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n" EHLO_PIPE);
	buf_reset(&d.sent);
	srv(&d, "553 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"
	        "503 5.5.1 need RCPT\r\n");
	SENT(&d, "");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, 553, "5.7.1");
	RESULT(&d, 1, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, 553, "5.7.1");
	drv_end(&d);
}

static void
test_starttls(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(1);
	struct smtp_client_opts o = {.helo_name = "me.example", .tls_available = true};
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n");
	SENT(&d, "EHLO me.example\r\n");
	srv(&d, "250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
	SENT(&d, "STARTTLS\r\n");
	srv(&d, "220 2.0.0 ready\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_TLS);
	SENT(&d, "");
	smtp_client_tls_done(d.c, true);
	flush(&d);
	CHECK(smtp_client_tls_active(d.c));
	SENT(&d, "EHLO me.example\r\n");
	srv(&d, "250-mx\r\n250-STARTTLS\r\n250 SIZE\r\n");
	SENT(&d, "MAIL FROM:<s@x.example> SIZE=100\r\n");
	drv_end(&d);

	/* plaintext injected after 220 ready: refused */
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 STARTTLS\r\n");
	buf_reset(&d.sent);
	srv(&d, "220 ready\r\n250 injected\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_STARTTLS, 0, "4.5.0");
	drv_end(&d);

	/* handshake failure */
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 STARTTLS\r\n220 ready\r\n");
	smtp_client_tls_done(d.c, false);
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_STARTTLS, 0, "4.7.0");
	drv_end(&d);

	/* STARTTLS refused: opportunistic, go on in plaintext */
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 STARTTLS\r\n");
	buf_reset(&d.sent);
	srv(&d, "454 4.7.0 TLS not available\r\n");
	SENT(&d, "MAIL FROM:<s@x.example>\r\n");
	drv_end(&d);

	/* TLS not available in the driver: STARTTLS is not used */
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 STARTTLS\r\n");
	SENT(&d, "EHLO me.example\r\nMAIL FROM:<s@x.example>\r\n");
	drv_end(&d);

	/* require_tls without STARTTLS */
	o.require_tls = true;
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 PIPELINING\r\n");
	SENT(&d, "EHLO me.example\r\nQUIT\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_STARTTLS, 0, "4.7.10");
	drv_end(&d);
}

static void
test_auth(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(1);
	struct smtp_client_opts o = {
	    .helo_name = "me", .tls_available = true, .auth_user = "a", .auth_pass = "b"};
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250-AUTH LOGIN PLAIN\r\n250 STARTTLS\r\n220 go\r\n");
	smtp_client_tls_done(d.c, true);
	flush(&d);
	buf_reset(&d.sent);
	srv(&d, "250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
	SENT(&d, "AUTH PLAIN AGEAYg==\r\n");
	srv(&d, "235 2.7.0 ok\r\n");
	SENT(&d, "MAIL FROM:<s@x.example>\r\n");
	drv_end(&d);

	/* bad credentials: temporary, never a bounce */
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n");
	smtp_client_tls_done(d.c, true);
	srv(&d, "250-mx\r\n250 AUTH PLAIN\r\n535 5.7.8 bad credentials\r\n");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_AUTH, 535, "4.7.8");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	drv_end(&d);

	/* no TLS: AUTH not attempted */
	o.tls_available = false;
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 AUTH PLAIN\r\n");
	SENT(&d, "EHLO me\r\nQUIT\r\n");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_AUTH, 0, "4.7.0");
	drv_end(&d);

	/* ... unless explicitly allowed */
	o.auth_allow_plaintext = true;
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 AUTH PLAIN\r\n");
	SENT(&d, "EHLO me\r\nAUTH PLAIN AGEAYg==\r\n");
	drv_end(&d);
}

static void
test_helo_fallback(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(1);
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 old server\r\n");
	SENT(&d, "EHLO me.example\r\n");
	srv(&d, "502 command not implemented\r\n");
	SENT(&d, "HELO me.example\r\n");
	srv(&d, "250 hello\r\n");
	SENT(&d, "MAIL FROM:<s@x.example>\r\n");
	CHECK_INT(smtp_client_extensions(d.c), 0);
	drv_end(&d);

	/* after HELO an 8-bit message cannot go: 5.6.3, nothing sent */
	m.eightbit = true;
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 old\r\n500 what\r\n250 hello\r\n");
	SENT(&d, "EHLO me.example\r\nHELO me.example\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, 0, "5.6.3");
	drv_end(&d);

	/* EHLO 4xx: temporary */
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 old\r\n421 4.3.2 shutting down\r\n");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_EHLO, 421, "4.3.2");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	drv_end(&d);
}

static void
test_size_utf8_reuse(void)
{
	struct drv d;
	struct smtp_client_msg big = msg_n(2);
	big.size = 5000;
	drv_start(&d, &opts_plain, &big);
	srv(&d, "220 hi\r\n" EHLO_PIPE);
	SENT(&d, "EHLO me.example\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, 0, "5.3.4");
	RESULT(&d, 1, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, 0, "5.3.4");

	/* SMTPUTF8 needed but not offered */
	struct smtp_client_msg utf = msg_n(1);
	utf.smtputf8 = true;
	CHECK_INT(smtp_client_next_message(d.c, &utf), 0);
	flush(&d);
	SENT(&d, "");
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, 0, "5.6.7");

	/* a fitting message on the same connection, then another one */
	struct smtp_client_msg ok = msg_n(1);
	ok.mail_from = ""; /* null sender */
	for (int round = 0; round < 2; round++) {
		CHECK_INT(smtp_client_next_message(d.c, &ok), 0);
		flush(&d);
		SENT(&d, "MAIL FROM:<> SIZE=100\r\nRCPT TO:<a@y.example>\r\nDATA\r\n");
		srv(&d, "250 ok\r\n250 ok\r\n354 go\r\n");
		body(&d, "hi");
		body_end(&d);
		SENT(&d, "hi\r\n.\r\n");
		srv(&d, round ? "250 ok\r\n" : "451 4.3.0 try later\r\n");
		RESULT(&d, 0, round ? SMTP_CLIENT_DELIVERED : SMTP_CLIENT_TEMPFAIL,
		       SMTP_CLIENT_STAGE_BODY, round ? 250 : 451, round ? "2.0.0" : "4.3.0");
		CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
	}
	CHECK_INT(smtp_client_next_message(d.c, &ok), 0);
	CHECK_INT(smtp_client_next_message(d.c, &ok), -1); /* not idle */
	drv_end(&d);
}

static void
test_data_451(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(2);
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250 mx\r\n250 ok\r\n250 ok\r\n250 ok\r\n");
	SENT(&d, "EHLO me.example\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<a@y.example>\r\n"
	         "RCPT TO:<b@y.example>\r\nDATA\r\n");
	srv(&d, "451 4.3.0 local problem\r\n");
	SENT(&d, "RSET\r\n");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_DATA, 451, "4.3.0");
	RESULT(&d, 1, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_DATA, 451, "4.3.0");
	srv(&d, "250 ok\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
	drv_end(&d);
}

static void
test_dsn_params(void)
{
	struct smtp_client_rcpt r[] = {
	    {.addr = "b@y.example",
	     .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
	     .orcpt = "rfc822;b+c=d@y.example"},
	    {.addr = "c@y.example", .notify = SMTP_NOTIFY_NEVER},
	};
	struct smtp_client_msg m = {.mail_from = "s@x.example",
	                            .rcpts = r,
	                            .nrcpts = 2,
	                            .ret = SMTP_RET_HDRS,
	                            .envid = "id+1 x"};
	struct drv d;
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250-DSN\r\n250 PIPELINING\r\n");
	SENT(&d, "EHLO me.example\r\nMAIL FROM:<s@x.example> RET=HDRS ENVID=id+2B1+20x\r\n"
	         "RCPT TO:<b@y.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bc+3Dd@y.example\r\n"
	         "RCPT TO:<c@y.example> NOTIFY=NEVER\r\nDATA\r\n");
	drv_end(&d);

	/* no DSN extension: no DSN parameters */
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 PIPELINING\r\n");
	SENT(&d, "EHLO me.example\r\nMAIL FROM:<s@x.example>\r\n"
	         "RCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n");
	drv_end(&d);
}

static void
test_dot_stuffing(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(1);
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	buf_reset(&d.sent);
	body(&d, ".\r\n");
	body(&d, "a\r");
	body(&d, "\n.");
	body(&d, ".x\r\n..\r\nmid.dle\r\nend");
	body_end(&d);
	SENT(&d, "..\r\na\r\n...x\r\n...\r\nmid.dle\r\nend\r\n.\r\n");
	drv_end(&d);

	/* ends with CR; empty body; bare LF followed by a dot */
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"x\r", "x\r\n.\r\n"},   {"", ".\r\n"},           {"a\n.\r\n", "a\n..\r\n.\r\n"},
	    {"a\n", "a\n\r\n.\r\n"}, {"a\r\n", "a\r\n.\r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		drv_start(&d, &opts_plain, &m);
		srv(&d, "220 hi\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n");
		buf_reset(&d.sent);
		if (cases[i].in[0])
			body(&d, cases[i].in);
		body_end(&d);
		SENT(&d, cases[i].want);
		drv_end(&d);
	}
}

static void
test_greeting_and_garbage(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(2);
	drv_start(&d, &opts_plain, &m);
	srv(&d, "554 5.7.1 go away\r\n");
	SENT(&d, "QUIT\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_GREETING, 554, "5.7.1");
	RESULT(&d, 1, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_GREETING, 554, "5.7.1");
	CHECK_STR(smtp_client_rcpt_result(d.c, 1)->text, "554 5.7.1 go away");
	drv_end(&d);

	drv_start(&d, &opts_plain, &m);
	srv(&d, "421 busy\r\n");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_GREETING, 421, "4.0.0");
	drv_end(&d);

	/* garbage */
	drv_start(&d, &opts_plain, &m);
	srv(&d, "HTTP/1.1 400 Bad Request\r\n");
	SENT(&d, "QUIT\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_GREETING, 0, "4.5.0");
	CHECK_STR(smtp_client_rcpt_result(d.c, 0)->text, "protocol error: malformed reply code");
	drv_end(&d);

	/* garbage mid-transaction, and a 2xx to DATA */
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250 mx\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_DATA, 0, "4.5.0");
	drv_end(&d);

	/* 3xx where a verdict is due; control characters are sanitised */
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250 mx\r\n334 what\x01\x7f\r\n");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_MAIL, 334, "4.5.0");
	CHECK_STR(smtp_client_rcpt_result(d.c, 0)->text, "334 what??");
	drv_end(&d);

	/* unsolicited bytes between transactions */
	struct smtp_client_msg big = msg_n(1);
	big.smtputf8 = true;
	drv_start(&d, &opts_plain, &big);
	srv(&d, "220 hi\r\n250 mx\r\n");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_MESSAGE);
	smtp_client_input(d.c, (const unsigned char *)"x", 1);
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, 0, "5.6.7");
	drv_end(&d);
}

static void
test_abort_and_limits(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(2);
	drv_start(&d, &opts_plain, &m);
	smtp_client_abort(d.c, SMTP_CLIENT_STAGE_CONNECT, "connect: refused");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_CONNECT, 0, "4.4.1");
	CHECK_STR(smtp_client_rcpt_result(d.c, 0)->text, "connect: refused");
	CHECK_INT(smtp_client_want(d.c), SMTP_CLIENT_WANT_CLOSE);
	drv_end(&d);

	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250 mx\r\n250 ok\r\n550 no\r\n");
	smtp_client_abort(d.c, SMTP_CLIENT_STAGE_MAIL, "EOF");
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_RCPT, 550, "5.0.0");
	RESULT(&d, 1, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_RCPT, 0, "4.4.2");
	CHECK_INT(smtp_client_output(d.c).len, 0);
	drv_end(&d);

	/* quit mid-body: no QUIT in the message stream */
	drv_start(&d, &opts_plain, &m);
	srv(&d, "220 hi\r\n250 mx\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	buf_reset(&d.sent);
	smtp_client_quit(d.c);
	flush(&d);
	SENT(&d, "");
	RESULT(&d, 0, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_BODY, 0, "4.4.2");
	drv_end(&d);

	/* a malformed recipient is refused locally, the others go */
	struct smtp_client_rcpt bad[] = {{.addr = "x@y\r\nRSET"}, {.addr = "ok@y.example"}};
	struct smtp_client_msg mb = {.mail_from = "s@x.example", .rcpts = bad, .nrcpts = 2};
	drv_start(&d, &opts_plain, &mb);
	srv(&d, "220 hi\r\n250 mx\r\n250 ok\r\n");
	SENT(&d, "EHLO me.example\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<ok@y.example>\r\n");
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_RCPT, 0, "5.1.3");
	drv_end(&d);

	/* a long reply text is truncated */
	drv_start(&d, &opts_plain, &m);
	struct buf r;
	buf_init(&r, 0);
	buf_append_str(&r, "554 ");
	for (int i = 0; i < 400; i++)
		buf_append_byte(&r, 'z');
	buf_append_str(&r, "\r\n");
	srv(&d, buf_cstr(&r));
	CHECK_INT(strlen(smtp_client_rcpt_result(d.c, 0)->text), SMTP_CLIENT_TEXT_MAX - 1);
	buf_deinit(&r);
	drv_end(&d);
}

static void
test_requiretls(void)
{
	struct drv d;
	struct smtp_client_msg m = msg_n(1);
	m.requiretls = true;
	struct smtp_client_opts o = {.helo_name = "me", .tls_available = true};
	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n");
	smtp_client_tls_done(d.c, true);
	flush(&d);
	SENT(&d, "EHLO me\r\nSTARTTLS\r\nEHLO me\r\n");
	srv(&d, "250-mx\r\n250 REQUIRETLS\r\n");
	SENT(&d, "MAIL FROM:<s@x.example> REQUIRETLS\r\n");
	drv_end(&d);

	drv_start(&d, &o, &m);
	srv(&d, "220 hi\r\n250-mx\r\n250 REQUIRETLS\r\n");
	RESULT(&d, 0, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, 0, "5.7.30");
	drv_end(&d);
}

static void
run_all(void)
{
	RUN(test_plain);
	RUN(test_pipelining_some_refused);
	RUN(test_all_refused);
	RUN(test_mail_refused_pipelined);
	RUN(test_starttls);
	RUN(test_auth);
	RUN(test_helo_fallback);
	RUN(test_size_utf8_reuse);
	RUN(test_data_451);
	RUN(test_dsn_params);
	RUN(test_dot_stuffing);
	RUN(test_greeting_and_garbage);
	RUN(test_abort_and_limits);
	RUN(test_requiretls);
}

int
main(void)
{
	g_bytewise = false;
	run_all();
	g_bytewise = true;
	run_all();
	return test_done("smtp_client");
}
