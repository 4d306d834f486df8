/* Unit tests for the SMTP server session through stub hooks: whole sessions (EHLO/MAIL/RCPT/
 * DATA/QUIT), pipelining, byte-at-a-time equivalence, BDAT, AUTH PLAIN/LOGIN with cancel and
 * failures, STARTTLS discarding pipelined plaintext, MX relay denial, sender authorisation,
 * SMTPUTF8, DSN parameters, smuggling, the limits (recipients, size, errors, messages) and the
 * rate-limit hooks (refusals at MAIL and RCPT). */
#include <string.h>

#include "smtp/server.h"
#include "test.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* ---- stub hooks ---- */

struct stub {
	int delivered;
	int deliver_fail; /* deliver returns -1 with 451 */
	char mail_from[300];
	char auth_user[300];
	char received[2048];
	char msg[8192];
	size_t msg_len;
	size_t n_rcpts;
	char rcpt0[300], notify0[64], orcpt0[300], ret[8], envid[128];
	bool smtputf8, eightbit, requiretls;
	struct buf log;
	/* rate-limit hooks (session_limited): MAIL allowed mail_left more times; at most
	 * rcpt_max recipients per message; bad_code: refuse with a (wrong) 250 reply */
	int mail_left;
	size_t rcpt_max;
	bool bad_code;
	int mail_checks, rcpt_checks;
	size_t last_n;
	char check_account[300], check_from[300], check_rcpt[300];
};

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void
set_reply(struct smtp_hook_reply *r, int code, const char *enh, const char *text)
{
	r->code = code;
	snprintf(r->enhanced, sizeof r->enhanced, "%s", enh);
	snprintf(r->text, sizeof r->text, "%s", text);
}

static enum smtp_rcpt_kind
stub_rcpt(void *ctx, const char *addr, uint64_t size_hint, struct smtp_hook_reply *reply_r)
{
	if (strcmp(addr, "unknown@local.example") == 0) {
		set_reply(reply_r, 550, "5.1.1", "No such user here");
		return SMTP_RCPT_REJECT;
	}
	if (strcmp(addr, "full@local.example") == 0) {
		set_reply(reply_r, 452, "4.2.2", "Mailbox full");
		return SMTP_RCPT_REJECT;
	}
	if (strcmp(addr, "bad@local.example") == 0) {
		set_reply(reply_r, 250, "2.0.0", "hook bug: not a refusal");
		return SMTP_RCPT_REJECT;
	}
	return ends_with(addr, "@local.example") ? SMTP_RCPT_LOCAL : SMTP_RCPT_REMOTE;
}

static int
stub_auth(void *ctx, const char *user, const char *pass, size_t pass_len)
{
	if (strcmp(user, "tempfail") == 0)
		return -1;
	return strcmp(user, "user@local.example") == 0 && pass_len == 6 &&
	       memcmp(pass, "secret", 6) == 0;
}

static bool
stub_sender_ok(void *ctx, const char *account, const char *addr)
{
	return account && strcmp(account, "user@local.example") == 0 &&
	       ends_with(addr, "@local.example");
}

static void
copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "(null)");
}

static int
stub_deliver(void *ctx, const struct smtp_envelope *env, const unsigned char *msg, size_t len,
             struct smtp_hook_reply *reply_r)
{
	struct stub *st = ctx;
	if (st->deliver_fail) {
		set_reply(reply_r, 451, "4.3.0", "Disk on fire");
		return -1;
	}
	st->delivered++;
	copy(st->mail_from, sizeof st->mail_from, env->mail_from);
	copy(st->auth_user, sizeof st->auth_user, env->auth_user);
	copy(st->received, sizeof st->received, env->received);
	st->msg_len = len < sizeof st->msg ? len : sizeof st->msg;
	memcpy(st->msg, msg, st->msg_len);
	st->n_rcpts = env->n_rcpts;
	copy(st->rcpt0, sizeof st->rcpt0, env->n_rcpts ? env->rcpts[0].addr : NULL);
	copy(st->notify0, sizeof st->notify0, env->n_rcpts ? env->rcpts[0].notify : NULL);
	copy(st->orcpt0, sizeof st->orcpt0, env->n_rcpts ? env->rcpts[0].orcpt : NULL);
	copy(st->ret, sizeof st->ret, env->ret);
	copy(st->envid, sizeof st->envid, env->envid);
	st->smtputf8 = env->smtputf8;
	st->eightbit = env->eightbit;
	st->requiretls = env->requiretls;
	return 0;
}

static int
stub_mail_check(void *ctx, const char *account, const char *from, struct smtp_hook_reply *r)
{
	struct stub *st = ctx;
	st->mail_checks++;
	copy(st->check_account, sizeof st->check_account, account);
	copy(st->check_from, sizeof st->check_from, from);
	if (st->bad_code) {
		set_reply(r, 250, "2.0.0", "hook bug: not a refusal");
		return 1;
	}
	if (st->mail_left <= 0) {
		set_reply(r, 451, "4.7.1", "limit of 1 messages per minute reached, retry in 6 s");
		return 1;
	}
	st->mail_left--;
	return 0;
}

static int
stub_rcpt_check(void *ctx, const char *account, const char *rcpt, size_t n,
                struct smtp_hook_reply *r)
{
	struct stub *st = ctx;
	st->rcpt_checks++;
	st->last_n = n;
	copy(st->check_account, sizeof st->check_account, account);
	copy(st->check_rcpt, sizeof st->check_rcpt, rcpt);
	if (n > st->rcpt_max) {
		set_reply(r, 451, "4.7.1", "limit of 2 recipients per message reached");
		return 1;
	}
	return 0;
}

static void
stub_log(void *ctx, const char *line)
{
	struct stub *st = ctx;
	buf_printf(&st->log, "%s\n", line);
}

static int64_t
stub_now(void *ctx)
{
	return 1700000000; /* Tue, 14 Nov 2023 22:13:20 +0000 */
}

static const struct smtp_limits limits = {
    .hostname = "mx.example",
    .max_message_size = 10000,
    .max_recipients = 100,
    .max_messages = 50,
    .max_errors = 10,
    .max_auth_failures = 3,
    .auth_fail_delay_ms = 1000,
    .subaddress_sep = '+',
};

static struct smtp_server *
session_hooks(struct stub *st, enum smtp_role role, bool tls, const struct smtp_limits *lim,
              bool limited)
{
	memset(st, 0, sizeof *st);
	buf_init(&st->log, 0);
	struct smtp_hooks hooks = {
	    .ctx = st,
	    .rcpt = stub_rcpt,
	    .auth = stub_auth,
	    .sender_ok = stub_sender_ok,
	    .deliver = stub_deliver,
	    .mail_check = limited ? stub_mail_check : NULL,
	    .rcpt_check = limited ? stub_rcpt_check : NULL,
	    .log = stub_log,
	    .now = stub_now,
	};
	struct smtp_conn_info info = {
	    .client_ip = "192.0.2.1", .client_name = NULL, .listener = "test"};
	return smtp_server_new(role, lim ? lim : &limits, &hooks, &info, tls, "c0ffee");
}

static struct smtp_server *
session(struct stub *st, enum smtp_role role, bool tls, const struct smtp_limits *lim)
{
	return session_hooks(st, role, tls, lim, false);
}

/* With the rate-limit hooks; the budgets are set by the caller after this. */
static struct smtp_server *
session_limited(struct stub *st, enum smtp_role role, bool tls)
{
	return session_hooks(st, role, tls, NULL, true);
}

static void
end(struct stub *st, struct smtp_server **s)
{
	smtp_server_free(s);
	buf_deinit(&st->log);
}

/* Sends input (whole) and returns the replies queued since the last call (static storage). */
static const char *
io(struct smtp_server *s, const char *in)
{
	static char out[65536];
	smtp_server_input(s, (const unsigned char *)in, strlen(in));
	struct buf *o = smtp_server_output(s);
	snprintf(out, sizeof out, "%s", buf_cstr(o));
	buf_reset(o);
	return out;
}

static const char *
io_n(struct smtp_server *s, const char *in, size_t len)
{
	static char out[65536];
	smtp_server_input(s, (const unsigned char *)in, len);
	struct buf *o = smtp_server_output(s);
	snprintf(out, sizeof out, "%s", buf_cstr(o));
	buf_reset(o);
	return out;
}

static const char *
greeting(struct smtp_server *s)
{
	return io(s, "");
}

/* base64 of "\0user@local.example\0secret" */
#define AUTH_PLAIN_OK "AUTH PLAIN AHVzZXJAbG9jYWwuZXhhbXBsZQBzZWNyZXQ=\r\n"

/* ---- tests ---- */

static void
test_basic_session(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
	CHECK_STR(greeting(s), "220 mx.example ESMTP Lightr\r\n");
	CHECK_STR(io(s, "EHLO client.example\r\n"), "250-mx.example\r\n"
	                                            "250-PIPELINING\r\n"
	                                            "250-SIZE 10000\r\n"
	                                            "250-8BITMIME\r\n"
	                                            "250-SMTPUTF8\r\n"
	                                            "250-ENHANCEDSTATUSCODES\r\n"
	                                            "250-CHUNKING\r\n"
	                                            "250-DSN\r\n"
	                                            "250 STARTTLS\r\n");
	CHECK_STR(io(s, "MAIL FROM:<a@remote.example>\r\n"), "250 2.1.0 Ok\r\n");
	CHECK_STR(io(s, "RCPT TO:<bob@local.example>\r\n"), "250 2.1.5 Ok\r\n");
	CHECK(!smtp_server_in_data(s));
	CHECK_STR(io(s, "DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
	CHECK(smtp_server_in_data(s));
	CHECK_STR(io(s, "Subject: hi\r\n\r\n..dot\r\nbody\r\n"), "");
	CHECK_STR(io(s, ".\r\n"), "250 2.0.0 Ok: queued as c0ffee-1\r\n");
	CHECK_INT(st.delivered, 1);
	CHECK_STR(st.mail_from, "a@remote.example");
	CHECK_STR(st.auth_user, "(null)");
	CHECK_STR(st.rcpt0, "bob@local.example");
	CHECK_INT(st.msg_len, strlen("Subject: hi\r\n\r\n.dot\r\nbody\r\n"));
	CHECK(memcmp(st.msg, "Subject: hi\r\n\r\n.dot\r\nbody\r\n", st.msg_len) == 0);
	CHECK_STR(st.received, "Received: from client.example (unknown [192.0.2.1])\r\n"
	                       "\tby mx.example (Lightr) with ESMTP id c0ffee-1\r\n"
	                       "\tfor <bob@local.example>;\r\n"
	                       "\tTue, 14 Nov 2023 22:13:20 +0000\r\n");
	CHECK_INT(smtp_server_messages(s), 1);
	CHECK(!smtp_server_done(s));
	CHECK_STR(io(s, "QUIT\r\n"), "221 2.0.0 mx.example Bye\r\n");
	CHECK(smtp_server_done(s));
	CHECK_STR(io(s, "NOOP\r\n"), ""); /* after QUIT: ignored */
	end(&st, &s);
}

static const char pipelined[] = "EHLO client.example\r\n"
                                "MAIL FROM:<a@remote.example> SIZE=100\r\n"
                                "RCPT TO:<bob@local.example>\r\n"
                                "RCPT TO:<unknown@local.example>\r\n"
                                "RCPT TO:<carol@local.example>\r\n"
                                "DATA\r\n"
                                "Subject: x\r\n\r\nhello\r\n.\r\n"
                                "MAIL FROM:<>\r\n"
                                "RCPT TO:<bob@local.example>\r\n"
                                "BDAT 8\r\n"
                                "A: b\r\n\r\nBDAT 3 LAST\r\n"
                                "x\r\n"
                                "RSET\r\nNOOP\r\nVRFY bob\r\nHELP\r\nFOO\r\n"
                                "QUIT\r\n";

static void
test_pipelined_and_bytewise(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	char whole[8192];
	snprintf(whole, sizeof whole, "%s", io(s, pipelined));
	CHECK_STR(whole, "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"
	                 "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n"
	                 "250 STARTTLS\r\n"
	                 "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user here\r\n"
	                 "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	                 "250 2.0.0 Ok: queued as c0ffee-1\r\n"
	                 "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 8 octets received\r\n"
	                 "250 2.0.0 Ok: queued as c0ffee-2\r\n"
	                 "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
	                 "252 2.5.0 Cannot VRFY user, but will accept message and attempt "
	                 "delivery\r\n"
	                 "214 2.0.0 Lightr SMTP: see RFC 5321\r\n"
	                 "500 5.5.1 Command unrecognized\r\n"
	                 "221 2.0.0 mx.example Bye\r\n");
	CHECK_INT(st.delivered, 2);
	CHECK_STR(st.mail_from, "");
	CHECK_INT(st.msg_len, 11);
	CHECK(memcmp(st.msg, "A: b\r\n\r\nx\r\n", 11) == 0);
	end(&st, &s);

	/* the same input one byte at a time gives the same replies */
	s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	struct buf all;
	buf_init(&all, 0);
	for (size_t i = 0; i < sizeof pipelined - 1; i++)
		buf_append_str(&all, io_n(s, pipelined + i, 1));
	CHECK_STR(buf_cstr(&all), whole);
	CHECK_INT(st.delivered, 2);
	buf_deinit(&all);
	end(&st, &s);
}

static void
test_bdat(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n");
	/* BDAT with no transaction: the octets are still consumed, then 503 */
	CHECK_STR(io(s, "BDAT 12\r\nQUIT\r\nQUIT\r\nNOOP\r\n"),
	          "503 5.5.1 Need MAIL command\r\n250 2.0.0 Ok\r\n");
	CHECK(!smtp_server_done(s));
	(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\n");
	/* chunk content that looks like commands and an end marker is just content */
	CHECK_STR(io(s, "BDAT 17\r\nA: b\r\n\r\n.\r\nQUIT\r\n"),
	          "250 2.0.0 17 octets received\r\n");
	CHECK(smtp_server_in_data(s));
	CHECK_STR(io(s, "DATA\r\n"),
	          "503 5.5.1 Only BDAT, RSET, NOOP or QUIT between BDAT chunks\r\n");
	CHECK_STR(io(s, "BDAT 0 LAST\r\n"), "250 2.0.0 Ok: queued as c0ffee-1\r\n");
	CHECK_INT(st.msg_len, 17);
	CHECK(memcmp(st.msg, "A: b\r\n\r\n.\r\nQUIT\r\n", 17) == 0);
	/* a chunk split over many reads */
	(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\n");
	CHECK_STR(io(s, "BDAT 10 LAST\r\nA: "), "");
	CHECK(smtp_server_in_data(s));
	CHECK_STR(io(s, "b\r\n\r\n"), "");
	CHECK_STR(io(s, "zzNOOP\r\n"), "250 2.0.0 Ok: queued as c0ffee-2\r\n250 2.0.0 Ok\r\n");
	/* bare LF in a chunk fails the transaction; the following chunk finds none */
	(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\n");
	CHECK_STR(io(s, "BDAT 5\r\na\nb\r\nBDAT 3 LAST\r\nx\r\n"),
	          "550 5.5.2 Message refused: bare LF in message text (RFC 5321 2.3.8)\r\n"
	          "503 5.5.1 Need MAIL command\r\n");
	/* a CR ending one chunk and LF starting the next is a CRLF */
	(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\n");
	CHECK_STR(io(s, "BDAT 5\r\nA: b\rBDAT 6 LAST\r\n\n\r\nx\r\n"),
	          "250 2.0.0 5 octets received\r\n250 2.0.0 Ok: queued as c0ffee-4\r\n");
	CHECK_INT(st.msg_len, 11);
	CHECK(memcmp(st.msg, "A: b\r\n\r\nx\r\n", 11) == 0);
	/* ... but not when the next chunk starts with anything else */
	(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\n");
	CHECK_STR(io(s, "BDAT 5\r\nA: b\rBDAT 3 LAST\r\nx\r\n"),
	          "250 2.0.0 5 octets received\r\n"
	          "550 5.5.2 Message refused: bare CR in message text (RFC 5321 2.3.8)\r\n");
	/* a CR at the very end of the last chunk is bare */
	(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\n");
	CHECK_STR(io(s, "BDAT 5 LAST\r\nA: b\r"),
	          "550 5.5.2 Message refused: bare CR in message text (RFC 5321 2.3.8)\r\n");
	/* oversize over chunks: 552, and the rest is still read */
	(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\n");
	struct buf big;
	buf_init(&big, 0);
	buf_append_str(&big, "BDAT 12000\r\n");
	for (int i = 0; i < 12000; i++)
		buf_append_byte(&big, i % 80 == 79 ? '\n' : (i % 80 == 78 ? '\r' : 'x'));
	buf_append_str(&big, "NOOP\r\n");
	CHECK_STR(io_n(s, (const char *)big.data, big.len),
	          "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n");
	buf_deinit(&big);
	/* BDAT syntax errors */
	CHECK_STR(io(s, "BDAT x\r\n"), "501 5.5.4 Syntax: BDAT size [LAST]\r\n");
	CHECK_INT(st.delivered, 3);
	end(&st, &s);
}

static void
test_auth_plain(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_SUBMISSIONS, true, NULL);
	smtp_server_tls_started(s, "TLSv1.3", "TLS_AES_256_GCM_SHA384");
	CHECK_STR(greeting(s), "220 mx.example ESMTP Lightr\r\n");
	CHECK_STR(io(s, "EHLO c.example\r\n"), "250-mx.example\r\n250-PIPELINING\r\n"
	                                       "250-SIZE 10000\r\n250-8BITMIME\r\n"
	                                       "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
	                                       "250-CHUNKING\r\n250-DSN\r\n"
	                                       "250-AUTH PLAIN LOGIN\r\n250 REQUIRETLS\r\n");
	CHECK_STR(io(s, "MAIL FROM:<user@local.example>\r\n"),
	          "530 5.7.0 Authentication required\r\n");
	CHECK(smtp_server_auth_user(s) == NULL);
	CHECK_STR(io(s, AUTH_PLAIN_OK), "235 2.7.0 Authentication successful\r\n");
	CHECK_STR(smtp_server_auth_user(s), "user@local.example");
	CHECK_STR(io(s, AUTH_PLAIN_OK), "503 5.5.1 Already authenticated\r\n");
	CHECK_STR(io(s, "MAIL FROM:<user@local.example>\r\n"), "250 2.1.0 Ok\r\n");
	CHECK_STR(io(s, "RCPT TO:<x@remote.example>\r\n"), "250 2.1.5 Ok\r\n");
	CHECK_STR(io(s, "DATA\r\nFrom: User <user@local.example>\r\n\r\nhi\r\n.\r\n"),
	          "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as c0ffee-1\r\n");
	CHECK_STR(st.received, "Received: from c.example (unknown [192.0.2.1])\r\n"
	                       "\tby mx.example (Lightr) with ESMTPSA id c0ffee-1\r\n"
	                       "\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384)\r\n"
	                       "\t(authenticated user user@local.example)\r\n"
	                       "\tfor <x@remote.example>;\r\n"
	                       "\tTue, 14 Nov 2023 22:13:20 +0000\r\n");
	CHECK_STR(st.auth_user, "user@local.example");
	CHECK_STR(io(s, "AUTH PLAIN\r\n"), "503 5.5.1 Already authenticated\r\n");
	end(&st, &s);

	/* PLAIN without initial response, and "=" / cancel / bad base64 */
	s = session(&st, SMTP_ROLE_SUBMISSIONS, true, NULL);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n");
	CHECK_STR(io(s, "AUTH PLAIN\r\n"), "334 \r\n");
	CHECK_STR(io(s, "*\r\n"), "501 5.0.0 Authentication cancelled\r\n");
	CHECK_STR(io(s, "AUTH PLAIN\r\n"), "334 \r\n");
	CHECK_STR(io(s, "%%%\r\n"), "501 5.5.2 Invalid base64 data\r\n");
	CHECK_STR(io(s, "AUTH PLAIN =\r\n"), "535 5.7.8 Authentication credentials invalid\r\n");
	CHECK_INT(smtp_server_delay_ms(s), 1000);
	CHECK_INT(smtp_server_delay_ms(s), 0); /* reading resets */
	CHECK_STR(io(s, "AUTH PLAIN\r\nAHVzZXJAbG9jYWwuZXhhbXBsZQBzZWNyZXQ=\r\n"),
	          "334 \r\n235 2.7.0 Authentication successful\r\n");
	end(&st, &s);
}

static void
test_auth_login_and_failures(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_SUBMISSIONS, true, NULL);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n");
	CHECK_STR(io(s, "AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
	CHECK_STR(io(s, "dXNlckBsb2NhbC5leGFtcGxl\r\n"), "334 UGFzc3dvcmQ6\r\n");
	CHECK_STR(io(s, "*\r\n"), "501 5.0.0 Authentication cancelled\r\n");
	/* LOGIN with the user name as initial response */
	CHECK_STR(io(s, "AUTH LOGIN dXNlckBsb2NhbC5leGFtcGxl\r\n"), "334 UGFzc3dvcmQ6\r\n");
	CHECK_STR(io(s, "d3Jvbmc=\r\n"), "535 5.7.8 Authentication credentials invalid\r\n");
	CHECK_INT(smtp_server_delay_ms(s), 1000);
	CHECK_STR(io(s, "AUTH LOGIN\r\ndGVtcGZhaWw=\r\nc2VjcmV0\r\n"),
	          "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n454 4.7.0 Temporary authentication "
	          "failure\r\n");
	CHECK_STR(io(s, "AUTH CRAM-MD5\r\n"), "504 5.5.4 Unrecognized authentication type\r\n");
	CHECK_STR(io(s, "AUTH\r\n"), "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
	CHECK_STR(io(s, "AUTH PLAIN AHgAeQ==\r\n"), /* \0x\0y */
	          "535 5.7.8 Authentication credentials invalid\r\n");
	CHECK_INT(smtp_server_delay_ms(s), 2000);
	CHECK(!smtp_server_done(s));
	/* authzid different from authcid counts as a failure too: the third one closes */
	CHECK_STR(io(s, "AUTH PLAIN eAB5AHo=\r\nNOOP\r\n"), /* x\0y\0z */
	          "535 5.7.8 Authentication credentials invalid\r\n"
	          "421 4.7.0 mx.example Too many authentication failures\r\n");
	CHECK_INT(smtp_server_delay_ms(s), 3000);
	CHECK(smtp_server_done(s));
	CHECK(strstr(st.log.data ? (char *)st.log.data : "", "auth-failed") != NULL);
	CHECK(strstr((char *)st.log.data, "c2VjcmV0") == NULL); /* no payloads in logs */
	end(&st, &s);

	/* LOGIN success */
	s = session(&st, SMTP_ROLE_SUBMISSIONS, true, NULL);
	(void)greeting(s);
	CHECK_STR(
	    io(s, "EHLO c.example\r\nAUTH LOGIN\r\ndXNlckBsb2NhbC5leGFtcGxl\r\nc2VjcmV0\r\n") +
	        strlen("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"
	               "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n"
	               "250-DSN\r\n250-AUTH PLAIN LOGIN\r\n250 REQUIRETLS\r\n"),
	    "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n");
	/* AUTH in a transaction is out of sequence */
	CHECK_STR(io(s, "MAIL FROM:<user@local.example>\r\nAUTH PLAIN\r\n"),
	          "250 2.1.0 Ok\r\n503 5.5.1 Not allowed during a mail transaction\r\n");
	end(&st, &s);
}

static void
test_submission_without_tls(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_SUBMISSION, false, NULL);
	(void)greeting(s);
	const char *ehlo = io(s, "EHLO c.example\r\n");
	CHECK(strstr(ehlo, "AUTH") == NULL);
	CHECK(strstr(ehlo, "REQUIRETLS") == NULL);
	CHECK(strstr(ehlo, "250 STARTTLS\r\n") != NULL);
	CHECK_STR(io(s, AUTH_PLAIN_OK),
	          "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
	CHECK_STR(io(s, "MAIL FROM:<user@local.example>\r\n"),
	          "530 5.7.0 Authentication required\r\n");
	/* STARTTLS, then AUTH works */
	CHECK_STR(io(s, "STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
	smtp_server_tls_started(s, "TLSv1.3", "TLS_AES_128_GCM_SHA256");
	(void)io(s, "EHLO c.example\r\n");
	CHECK_STR(io(s, AUTH_PLAIN_OK), "235 2.7.0 Authentication successful\r\n");
	end(&st, &s);
}

static void
test_starttls(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	CHECK_STR(io(s, "STARTTLS\r\n"), "503 5.5.1 Send HELO/EHLO first\r\n");
	(void)io(s, "HELO c.example\r\n");
	CHECK_STR(io(s, "STARTTLS\r\n"), "503 5.5.1 Send EHLO first\r\n");
	(void)io(s, "EHLO c.example\r\n");
	CHECK_STR(io(s, "STARTTLS x\r\n"), "501 5.5.4 Syntax error: no arguments allowed\r\n");
	/* pipelined plaintext after STARTTLS is discarded (CVE-2011-0411) */
	CHECK_STR(io(s, "STARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<b@local.example>\r\n"),
	          "220 2.0.0 Ready to start TLS\r\n");
	CHECK(smtp_server_wants_tls(s));
	CHECK_STR(io(s, "DATA\r\n"), "");
	smtp_server_tls_started(s, "TLSv1.3", "TLS_AES_128_GCM_SHA256");
	CHECK(!smtp_server_wants_tls(s));
	/* RFC 3207 §4.2: back to the start, EHLO needed again */
	CHECK_STR(io(s, "MAIL FROM:<a@r.example>\r\n"), "503 5.5.1 Send HELO/EHLO first\r\n");
	const char *ehlo = io(s, "EHLO c.example\r\n");
	CHECK(strstr(ehlo, "STARTTLS") == NULL);
	CHECK(strstr(ehlo, "REQUIRETLS") != NULL);
	CHECK(strstr(ehlo, "AUTH") == NULL); /* never on MX */
	CHECK_STR(io(s, "STARTTLS\r\n"), "503 5.5.1 TLS already active\r\n");
	CHECK_STR(io(s, "AUTH PLAIN\r\n"), "502 5.5.1 AUTH not supported on this service\r\n");
	CHECK_STR(io(s, "MAIL FROM:<a@r.example> REQUIRETLS\r\nRCPT TO:<b@local.example>\r\n"
	                "DATA\r\nA: b\r\n\r\n.\r\n"),
	          "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	          "250 2.0.0 Ok: queued as c0ffee-1\r\n");
	CHECK(st.requiretls);
	CHECK(strstr(st.received, "with ESMTPS id c0ffee-1\r\n"
	                          "\t(version=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256)") != NULL);
	end(&st, &s);
	/* REQUIRETLS without TLS is refused */
	s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n");
	CHECK_STR(io(s, "MAIL FROM:<a@r.example> REQUIRETLS\r\n"),
	          "555 5.5.4 REQUIRETLS is only offered under TLS\r\n");
	end(&st, &s);
}

static void
test_mx_relay_and_hooks(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\nMAIL FROM:<a@r.example>\r\n");
	CHECK_STR(io(s, "RCPT TO:<x@remote.example>\r\n"), "550 5.7.1 Relay access denied\r\n");
	CHECK_STR(io(s, "RCPT TO:<unknown@local.example>\r\n"), "550 5.1.1 No such user here\r\n");
	CHECK_STR(io(s, "RCPT TO:<full@local.example>\r\n"), "452 4.2.2 Mailbox full\r\n");
	CHECK_STR(io(s, "RCPT TO:<bad@local.example>\r\n"),
	          "550 5.1.1 Recipient address rejected\r\n");
	CHECK_STR(io(s, "DATA\r\n"), "503 5.5.1 Need RCPT command\r\n");
	CHECK_STR(io(s, "RCPT TO:<Postmaster>\r\n"), "550 5.7.1 Relay access denied\r\n");
	CHECK_STR(io(s, "RCPT TO:<b@local.example>\r\n"), "250 2.1.5 Ok\r\n");
	/* deliver hook failure passed through */
	st.deliver_fail = 1;
	CHECK_STR(io(s, "DATA\r\nA: b\r\n\r\n.\r\n"),
	          "354 End data with <CR><LF>.<CR><LF>\r\n451 4.3.0 Disk on fire\r\n");
	CHECK_INT(st.delivered, 0);
	CHECK_INT(smtp_server_messages(s), 0);
	/* the transaction is over */
	CHECK_STR(io(s, "RCPT TO:<b@local.example>\r\n"), "503 5.5.1 Need MAIL command\r\n");
	CHECK(strstr((char *)st.log.data, "relay-denied") != NULL);
	end(&st, &s);
}

static void
test_sender_authorisation(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_SUBMISSIONS, true, NULL);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n" AUTH_PLAIN_OK);
	CHECK_STR(io(s, "MAIL FROM:<boss@evil.example>\r\n"),
	          "553 5.7.1 Sender address not owned by the authenticated user\r\n");
	CHECK_STR(io(s, "MAIL FROM:<>\r\n"), "553 5.7.1 Null sender not allowed on submission\r\n");
	static const struct {
		const char *msg, *want;
	} cases[] = {
	    {"From: boss@evil.example\r\n\r\nx\r\n.\r\n",
	     "553 5.7.1 From address not owned by the authenticated user\r\n"},
	    {"From: me <user@local.example>, boss@evil.example\r\n\r\nx\r\n.\r\n",
	     "553 5.7.1 From address not owned by the authenticated user\r\n"},
	    {"From: user@local.example\r\nFrom: boss@evil.example\r\n\r\nx\r\n.\r\n",
	     "550 5.6.0 Message must have exactly one From field\r\n"},
	    {"Subject: no from\r\n\r\nx\r\n.\r\n",
	     "550 5.6.0 Message must have exactly one From field\r\n"},
	    {"From: user\r\n\r\nx\r\n.\r\n", "550 5.6.0 Malformed From field\r\n"},
	    {"From: g:;\r\n\r\nx\r\n.\r\n", "550 5.6.0 Malformed From field\r\n"},
	    {"not a header\r\nFrom: user@local.example\r\n\r\nx\r\n.\r\n",
	     "550 5.6.0 Malformed message header\r\n"},
	    {"FROM : \"User\" <user@local.example> (me)\r\n\r\nx\r\n.\r\n",
	     "250 2.0.0 Ok: queued as c0ffee-8\r\n"},
	    {"From: a@local.example,\r\n b@local.example\r\n\r\nx\r\n.\r\n",
	     "250 2.0.0 Ok: queued as c0ffee-9\r\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK_STR(
		    io(s, "MAIL FROM:<user+tag@local.example>\r\nRCPT TO:<x@remote.example>\r\n"
		          "DATA\r\n"),
		    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
		CHECK_STR(io(s, cases[i].msg), cases[i].want);
	}
	CHECK_INT(st.delivered, 2);
	end(&st, &s);
}

static void
test_limits(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n");
	/* SIZE early rejection */
	CHECK_STR(io(s, "MAIL FROM:<a@r.example> SIZE=10001\r\n"),
	          "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	CHECK_STR(io(s, "MAIL FROM:<a@r.example> SIZE=10000\r\n"), "250 2.1.0 Ok\r\n");
	/* 101st recipient */
	char cmd[64];
	for (int i = 0; i < 100; i++) {
		snprintf(cmd, sizeof cmd, "RCPT TO:<r%d@local.example>\r\n", i);
		CHECK_STR(io(s, cmd), "250 2.1.5 Ok\r\n");
	}
	CHECK_STR(io(s, "RCPT TO:<r100@local.example>\r\n"), "452 4.5.3 Too many recipients\r\n");
	/* oversize data: read to the end, then 552 */
	struct buf big;
	buf_init(&big, 0);
	buf_append_str(&big, "DATA\r\n");
	for (int i = 0; i < 200; i++)
		buf_append_str(&big,
		               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
	buf_append_str(&big, ".\r\nNOOP\r\n");
	CHECK_STR(io_n(s, (const char *)big.data, big.len),
	          "354 End data with <CR><LF>.<CR><LF>\r\n"
	          "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n");
	buf_deinit(&big);
	/* a text line over 1000 octets */
	(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\nDATA\r\n");
	char line[1100];
	memset(line, 'y', 1001);
	memcpy(line + 1001, "\r\n.\r\n", 6);
	CHECK_STR(io(s, line), "500 5.5.2 Message refused: line longer than 1000 octets "
	                       "(RFC 5321 4.5.3.1.6)\r\n");
	CHECK_INT(st.delivered, 0);
	end(&st, &s);

	/* protocol errors: the max_errors-th adds 421 and ends the session */
	struct smtp_limits lim = limits;
	lim.max_errors = 3;
	s = session(&st, SMTP_ROLE_MX, false, &lim);
	(void)greeting(s);
	CHECK_STR(io(s, "FOO\r\nMAIL FROM:<a@r.example>\r\nEHLO\r\nNOOP\r\n"),
	          "500 5.5.1 Command unrecognized\r\n503 5.5.1 Send HELO/EHLO first\r\n"
	          "501 5.5.4 Syntax: EHLO hostname\r\n"
	          "421 4.7.0 mx.example Too many errors, closing connection\r\n");
	CHECK(smtp_server_done(s));
	end(&st, &s);

	/* messages per connection */
	lim = limits;
	lim.max_messages = 2;
	s = session(&st, SMTP_ROLE_MX, false, &lim);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n");
	for (int i = 0; i < 2; i++)
		(void)io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\nDATA\r\n"
		            "A: b\r\n\r\n.\r\n");
	CHECK_INT(st.delivered, 2);
	CHECK_STR(io(s, "MAIL FROM:<a@r.example>\r\n"),
	          "421 4.7.0 Too many messages in this connection\r\n");
	CHECK(smtp_server_done(s));
	end(&st, &s);

	/* an over-long command line */
	s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	char longcmd[700];
	memcpy(longcmd, "NOOP ", 5);
	memset(longcmd + 5, 'z', 600);
	memcpy(longcmd + 605, "\r\nNOOP\r\n", 9);
	CHECK_STR(io(s, longcmd), "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
	CHECK_STR(io(s, "NOOP\nNOOP\r\n"),
	          "500 5.5.2 Syntax error: bare CR, bare LF or NUL in command line\r\n"
	          "250 2.0.0 Ok\r\n");
	end(&st, &s);
}

static void
test_smuggling(void)
{
	static const char *const attacks[] = {
	    "Subject: x\r\n\r\nhi\n.\nMAIL FROM:<spoof@local.example>\r\n",
	    "Subject: x\r\n\r\nhi\r.\rMAIL FROM:<spoof@local.example>\r\n",
	    "Subject: x\r\n\r\nhi\n.\r\nMAIL FROM:<spoof@local.example>\r\n",
	    "Subject: x\r\n\r\nhi\r\n.\nMAIL FROM:<spoof@local.example>\r\n",
	};
	for (size_t k = 0; k < 4; k++) {
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			struct stub st;
			struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
			(void)greeting(s);
			struct buf in, out;
			buf_init(&in, 0);
			buf_init(&out, 0);
			buf_printf(&in,
			           "EHLO c.example\r\nMAIL FROM:<a@r.example>\r\n"
			           "RCPT TO:<b@local.example>\r\nDATA\r\n%s"
			           "RCPT TO:<c@local.example>\r\nDATA\r\nsmuggled\r\n.\r\n"
			           "NOOP\r\n",
			           attacks[k]);
			(void)io(s, "");
			if (bytewise)
				for (size_t i = 0; i < in.len; i++)
					buf_append_str(&out, io_n(s, (const char *)in.data + i, 1));
			else
				buf_append_str(&out, io_n(s, (const char *)in.data, in.len));
			const char *o = buf_cstr(&out);
			CHECK(strstr(o, "354 End data") != NULL);
			CHECK(strstr(o, "550 5.5.2 Message refused: bare") != NULL);
			CHECK(ends_with(o, "250 2.0.0 Ok\r\n"));
			/* one transaction, one 354: nothing after the fake end ran as a command */
			CHECK(strstr(strstr(o, "354") + 1, "354") == NULL);
			CHECK(strstr(strstr(o, "2.1.5") + 1, "2.1.5") == NULL);
			CHECK_INT(st.delivered, 0);
			buf_deinit(&in);
			buf_deinit(&out);
			end(&st, &s);
		}
	}
}

static void
test_utf8_dsn(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n");
	CHECK_STR(io(s, "MAIL FROM:<j\xc3\xb6rg@r.example>\r\n"),
	          "553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n");
	CHECK_STR(
	    io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<j\xc3\xb6rg@local.example>\r\nRSET\r\n"),
	    "250 2.1.0 Ok\r\n553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n250 2.0.0 Ok\r\n");
	CHECK_STR(io(s, "MAIL FROM:<j\xc3\xb6rg@r.example> SMTPUTF8 BODY=8BITMIME RET=HDRS "
	                "ENVID=id+2B1\r\n"
	                "RCPT TO:<j\xc3\xb6rg@local.example> NOTIFY=FAILURE,DELAY "
	                "ORCPT=rfc822;x+2By@local.example\r\n"
	                "DATA\r\nA: b\r\n\r\n.\r\n"),
	          "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	          "250 2.0.0 Ok: queued as c0ffee-1\r\n");
	CHECK(st.smtputf8 && st.eightbit);
	CHECK_STR(st.ret, "HDRS");
	CHECK_STR(st.envid, "id+1");
	CHECK_STR(st.notify0, "FAILURE,DELAY");
	CHECK_STR(st.orcpt0, "rfc822;x+y@local.example");
	CHECK(strstr(st.received, "with UTF8SMTP id") != NULL);
	/* HELO sessions take no ESMTP parameters */
	(void)io(s, "HELO c.example\r\n");
	CHECK_STR(io(s, "MAIL FROM:<a@r.example> SIZE=10\r\n"),
	          "555 5.5.4 MAIL parameters need EHLO\r\n");
	CHECK_STR(io(s, "MAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\nDATA\r\n.\r\n"),
	          "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	          "250 2.0.0 Ok: queued as c0ffee-2\r\n");
	CHECK(strstr(st.received, "with SMTP id c0ffee-2") != NULL);
	CHECK_INT(st.msg_len, 0);
	end(&st, &s);
}

static void
test_rate_limit_hooks(void)
{
	struct stub st;
	struct smtp_server *s = session_limited(&st, SMTP_ROLE_SUBMISSIONS, true);
	st.mail_left = 1;
	st.rcpt_max = 2;
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n" AUTH_PLAIN_OK);
	/* the sender check comes first: a refused sender costs no limit check */
	CHECK_STR(io(s, "MAIL FROM:<boss@evil.example>\r\n"),
	          "553 5.7.1 Sender address not owned by the authenticated user\r\n");
	CHECK_INT(st.mail_checks, 0);
	CHECK_STR(io(s, "MAIL FROM:<user@local.example>\r\n"), "250 2.1.0 Ok\r\n");
	CHECK_INT(st.mail_checks, 1);
	CHECK_STR(st.check_account, "user@local.example");
	CHECK_STR(st.check_from, "user@local.example");
	/* refused recipients (hook, relay) are not limit-checked; accepted ones count 1, 2, ... */
	CHECK_STR(io(s, "RCPT TO:<a@remote.example>\r\n"), "250 2.1.5 Ok\r\n");
	CHECK_INT(st.last_n, 1);
	CHECK_STR(st.check_rcpt, "a@remote.example");
	CHECK_STR(io(s, "RCPT TO:<unknown@local.example>\r\n"), "550 5.1.1 No such user here\r\n");
	CHECK_INT(st.rcpt_checks, 1);
	CHECK_STR(io(s, "RCPT TO:<b@local.example>\r\n"), "250 2.1.5 Ok\r\n");
	CHECK_INT(st.last_n, 2);
	/* over the limit: 451 with the hook's text, the recipient is not added */
	CHECK_STR(io(s, "RCPT TO:<c@remote.example>\r\nRCPT TO:<d@local.example>\r\n"),
	          "451 4.7.1 limit of 2 recipients per message reached\r\n"
	          "451 4.7.1 limit of 2 recipients per message reached\r\n");
	CHECK_INT(st.last_n, 3); /* refused ones were not counted */
	CHECK(strstr(buf_cstr(&st.log), "rcpt-limited to=<c@remote.example> code=451") != NULL);
	CHECK_STR(io(s, "DATA\r\nFrom: user@local.example\r\n\r\nx\r\n.\r\n"),
	          "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as c0ffee-1\r\n");
	CHECK_INT(st.delivered, 1);
	CHECK_INT(st.n_rcpts, 2);
	/* MAIL over the limit: 451, no transaction (pipelined RCPT and DATA get 503) */
	CHECK_STR(io(s, "MAIL FROM:<user@local.example>\r\nRCPT TO:<a@remote.example>\r\n"
	                "DATA\r\n"),
	          "451 4.7.1 limit of 1 messages per minute reached, retry in 6 s\r\n"
	          "503 5.5.1 Need MAIL command\r\n503 5.5.1 Need MAIL command\r\n");
	CHECK_INT(st.mail_checks, 2);
	CHECK_INT(st.rcpt_checks, 4); /* a, b, c, d: none for the refused MAIL */
	CHECK(strstr(buf_cstr(&st.log), "mail-limited from=<user@local.example> code=451") != NULL);
	/* a limit refusal is not a protocol error: the session goes on */
	CHECK(!smtp_server_done(s));
	st.mail_left = 1;
	CHECK_STR(io(s, "MAIL FROM:<user@local.example>\r\n"), "250 2.1.0 Ok\r\n");
	end(&st, &s);

	/* MX: no account; a hook reply that is not a refusal becomes the generic 451 4.7.1 */
	s = session_limited(&st, SMTP_ROLE_MX, false);
	st.mail_left = 5;
	st.rcpt_max = 1;
	(void)greeting(s);
	(void)io(s, "EHLO c.example\r\n");
	CHECK_STR(io(s, "MAIL FROM:<>\r\nRCPT TO:<a@local.example>\r\n"
	                "RCPT TO:<x@remote.example>\r\nRCPT TO:<b@local.example>\r\n"),
	          "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.7.1 Relay access denied\r\n"
	          "451 4.7.1 limit of 2 recipients per message reached\r\n");
	CHECK_STR(st.check_account, "(null)");
	CHECK_STR(st.check_from, "");
	CHECK_INT(st.rcpt_checks, 2);
	st.bad_code = true;
	CHECK_STR(io(s, "RSET\r\nMAIL FROM:<a@r.example>\r\n"),
	          "250 2.0.0 Ok\r\n451 4.7.1 Rate limit reached, try again later\r\n");
	end(&st, &s);

	/* without the hooks nothing changes (NULL = no limit) */
	s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	CHECK_STR(io(s, "EHLO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<a@local.example>\r\n") +
	              strlen("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10000\r\n"
	                     "250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
	                     "250-CHUNKING\r\n250-DSN\r\n250 STARTTLS\r\n"),
	          "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
	end(&st, &s);
}

static void
test_misc(void)
{
	struct stub st;
	struct smtp_server *s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	CHECK_STR(io(s, "NOOP\r\nRSET\r\nVRFY\r\n"),
	          "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n501 5.5.4 Syntax: VRFY address\r\n");
	CHECK_STR(io(s, "EXPN list\r\n"), "502 5.5.1 Command not implemented\r\n");
	CHECK_STR(io(s, "HELO c.example\r\n"), "250 mx.example\r\n");
	CHECK_STR(io(s, "RSET x\r\n"), "501 5.5.4 Syntax error: no arguments allowed\r\n");
	CHECK_STR(io(s, "MAIL FROM:<a@r.example>\r\nMAIL FROM:<a@r.example>\r\n"),
	          "250 2.1.0 Ok\r\n503 5.5.1 Nested MAIL command\r\n");
	/* EHLO inside a transaction resets it */
	CHECK_STR(io(s, "EHLO c.example\r\nRCPT TO:<b@local.example>\r\n") +
	              strlen("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10000\r\n"
	                     "250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
	                     "250-CHUNKING\r\n250-DSN\r\n250 STARTTLS\r\n"),
	          "503 5.5.1 Need MAIL command\r\n");
	smtp_server_close(s, false);
	CHECK_STR(io(s, ""), "421 4.4.2 mx.example Timeout, closing connection\r\n");
	CHECK(smtp_server_done(s));
	end(&st, &s);

	s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	smtp_server_close(s, true);
	CHECK_STR(io(s, ""), "421 4.3.2 mx.example Service shutting down, closing connection\r\n");
	end(&st, &s);

	/* an HTTP client on the SMTP port */
	s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)greeting(s);
	CHECK_STR(io(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	          "421 4.7.0 mx.example Non-SMTP command, closing connection\r\n");
	CHECK(smtp_server_done(s));
	end(&st, &s);

	/* free accepts NULL; a session freed mid-DATA leaks nothing (ASan) */
	smtp_server_free(NULL);
	s = session(&st, SMTP_ROLE_MX, false, NULL);
	(void)io(s, "EHLO c.example\r\nMAIL FROM:<a@r.example>\r\nRCPT TO:<b@local.example>\r\n"
	            "DATA\r\npartial");
	CHECK(smtp_server_in_data(s));
	end(&st, &s);
	CHECK(s == NULL);
}

int
main(void)
{
	RUN(test_basic_session);
	RUN(test_pipelined_and_bytewise);
	RUN(test_bdat);
	RUN(test_auth_plain);
	RUN(test_auth_login_and_failures);
	RUN(test_submission_without_tls);
	RUN(test_starttls);
	RUN(test_mx_relay_and_hooks);
	RUN(test_sender_authorisation);
	RUN(test_limits);
	RUN(test_smuggling);
	RUN(test_utf8_dsn);
	RUN(test_rate_limit_hooks);
	RUN(test_misc);
	return test_done("smtp_server");
}
