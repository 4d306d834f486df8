/* libFuzzer target: the whole SMTP server session (FSM, parsers, DATA/BDAT, AUTH, STARTTLS,
 * header checks, Received) with stub hooks, like Dovecot's session fuzzers. data[0] picks the
 * role, TLS and whether the rate-limit hooks are set; the input is split at data[0] % size to
 * exercise resumption (STYLE.md B.13 ex. 9); a pending STARTTLS is "completed" between the
 * pieces. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtp/server.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static enum smtp_rcpt_kind
stub_rcpt(void *ctx, const char *addr, uint64_t size_hint, struct smtp_hook_reply *reply_r)
{
	if (strncmp(addr, "no", 2) == 0) {
		reply_r->code = 550;
		snprintf(reply_r->enhanced, sizeof reply_r->enhanced, "5.1.1");
		snprintf(reply_r->text, sizeof reply_r->text, "No such user");
		return SMTP_RCPT_REJECT;
	}
	return ends_with(addr, "@l.example") ? SMTP_RCPT_LOCAL : SMTP_RCPT_REMOTE;
}

static int
stub_auth(void *ctx, const char *user, const char *pass, size_t pass_len)
{
	ASSERT(strlen(pass) == pass_len);
	if (strcmp(user, "t") == 0)
		return -1;
	return strcmp(user, "u") == 0 && strcmp(pass, "p") == 0;
}

static bool
stub_sender_ok(void *ctx, const char *account, const char *addr)
{
	ASSERT(account != NULL);
	return ends_with(addr, "@l.example");
}

static int
stub_deliver(void *ctx, const struct smtp_envelope *env, const unsigned char *msg, size_t len,
             struct smtp_hook_reply *reply_r)
{
	ASSERT(env->n_rcpts >= 1 && env->mail_from && env->received && env->id);
	ASSERT(ends_with(env->received, "\r\n"));
	for (size_t i = 0; i < len; i++) /* no bare LF/CR, no NUL ever reaches delivery */
		ASSERT(msg[i] != '\0' && (msg[i] != '\n' || (i > 0 && msg[i - 1] == '\r')) &&
		       (msg[i] != '\r' || (i + 1 < len && msg[i + 1] == '\n')));
	if (len > 0 && msg[0] == 'F') {
		reply_r->code = 451;
		snprintf(reply_r->enhanced, sizeof reply_r->enhanced, "4.3.0");
		snprintf(reply_r->text, sizeof reply_r->text, "fail");
		return -1;
	}
	return 0;
}

/* Rate-limit hooks: addresses starting with "lim" are refused (451 4.7.1), and the fifth
 * recipient too; an "x" address gets a bad (2xx) reply the session must replace. */
static int
stub_mail_check(void *ctx, const char *account, const char *from, struct smtp_hook_reply *r)
{
	ASSERT(from != NULL);
	if (strncmp(from, "lim", 3) != 0 && strncmp(from, "x", 1) != 0)
		return 0;
	r->code = from[0] == 'x' ? 250 : 451;
	snprintf(r->enhanced, sizeof r->enhanced, "4.7.1");
	snprintf(r->text, sizeof r->text, "limit of 1 message per minute reached");
	return 1;
}

static int
stub_rcpt_check(void *ctx, const char *account, const char *rcpt, size_t n,
                struct smtp_hook_reply *r)
{
	ASSERT(rcpt != NULL && n >= 1);
	if (strncmp(rcpt, "lim", 3) != 0 && n != 5)
		return 0;
	r->code = 451;
	snprintf(r->enhanced, sizeof r->enhanced, "4.7.1");
	snprintf(r->text, sizeof r->text, "limit of 4 recipients reached");
	return 1;
}

static void
stub_log(void *ctx, const char *line)
{
	ASSERT(strncmp(line, "smtp ", 5) == 0);
}

static int64_t
stub_now(void *ctx)
{
	return 1700000000;
}

static void
feed(struct smtp_server *s, const uint8_t *p, size_t n)
{
	smtp_server_input(s, p, n);
	struct buf *out = smtp_server_output(s);
	/* every reply line is CRLF-terminated, 512 octets at most */
	size_t start = 0;
	for (size_t i = 0; i < out->len; i++) {
		if (out->data[i] != '\n')
			continue;
		ASSERT(i > start && out->data[i - 1] == '\r' && i + 1 - start <= 512);
		start = i + 1;
	}
	ASSERT(start == out->len);
	buf_reset(out);
	(void)smtp_server_delay_ms(s);
	if (smtp_server_wants_tls(s))
		smtp_server_tls_started(s, "TLSv1.3", "TLS_AES_128_GCM_SHA256");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct smtp_limits lim = {
	    .hostname = "mx.example",
	    .max_message_size = 4096,
	    .max_recipients = 5,
	    .max_messages = 5,
	    .max_errors = 20,
	    .max_auth_failures = 5,
	    .auth_fail_delay_ms = 10,
	    .subaddress_sep = '+',
	};
	struct smtp_hooks hooks = {
	    .rcpt = stub_rcpt,
	    .auth = stub_auth,
	    .sender_ok = stub_sender_ok,
	    .deliver = stub_deliver,
	    .log = stub_log,
	    .now = stub_now,
	};
	struct smtp_conn_info info = {.client_ip = "192.0.2.1", .listener = "fuzz"};
	uint8_t sel = size ? data[0] : 0;
	if (sel & 32) {
		hooks.mail_check = stub_mail_check;
		hooks.rcpt_check = stub_rcpt_check;
	}
	enum smtp_role role = (enum smtp_role)(sel % 3);
	bool tls = role == SMTP_ROLE_SUBMISSIONS || (sel & 4);
	struct smtp_server *s = smtp_server_new(role, &lim, &hooks, &info, tls, "fz");
	if (tls)
		smtp_server_tls_started(s, "TLSv1.3", "TLS_AES_128_GCM_SHA256");
	size_t cut = size ? data[0] % size : 0;
	feed(s, data, cut);
	feed(s, data + cut, size - cut);
	if (sel & 8)
		smtp_server_close(s, sel & 16);
	(void)smtp_server_in_data(s);
	(void)smtp_server_done(s);
	(void)smtp_server_messages(s);
	(void)smtp_server_auth_user(s);
	smtp_server_free(&s);
	return 0;
}
