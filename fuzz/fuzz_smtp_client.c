/* libFuzzer target: the whole outbound SMTP client FSM fed arbitrary server bytes. data[0]
 * picks the options and the message (TLS, require_tls, AUTH, 8BITMIME, SMTPUTF8, REQUIRETLS,
 * DSN parameters, recipients); the server bytes are fed line by line and also split at
 * data[0] % size. The driver loop completes STARTTLS, streams a body with dots and reuses the
 * connection for up to three messages. Invariants: results are final whenever the client is
 * idle or closed, and the output never holds a bare LF. */
#include <stdint.h>
#include <string.h>

#include "smtp/client.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char last_out; /* the last byte written so far (the output may be split anywhere) */

static void
drain(struct smtp_client *c)
{
	struct slice s = smtp_client_output(c);
	for (size_t i = 0; i < s.len; i++) {
		ASSERT(s.p[i] != '\n' || last_out == '\r');
		last_out = s.p[i];
	}
	smtp_client_output_done(c, s.len);
}

static void
check_final(const struct smtp_client *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct smtp_client_result *r = smtp_client_rcpt_result(c, i);
		ASSERT(r->status != SMTP_CLIENT_PENDING);
		ASSERT(r->enhanced[0] == (r->status == SMTP_CLIENT_DELIVERED  ? '2'
		                          : r->status == SMTP_CLIENT_TEMPFAIL ? '4'
		                                                              : '5'));
		for (const char *t = r->text; *t; t++)
			ASSERT(*t >= 0x20 && *t < 0x7f);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned f = data[0];
	static const struct smtp_client_rcpt rcpts[] = {
	    {.addr = "a@y.example", .notify = SMTP_NOTIFY_SUCCESS, .orcpt = "rfc822;a@y.example"},
	    {.addr = "b@y.example", .notify = SMTP_NOTIFY_NEVER},
	    {.addr = "c@y.example"},
	};
	struct smtp_client_opts o = {
	    .helo_name = "me.example",
	    .tls_available = f & 1,
	    .require_tls = (f & 0x42) == 0x42,
	    .auth_user = (f & 4) ? "u" : NULL,
	    .auth_pass = "p",
	    .auth_allow_plaintext = f & 8,
	};
	struct smtp_client_msg m = {
	    .mail_from = (f & 16) ? "" : "s@x.example",
	    .rcpts = rcpts,
	    .nrcpts = 1 + (f >> 6) % 3,
	    .ret = SMTP_RET_FULL,
	    .envid = "env+id",
	    .size = (f & 32) ? 100000 : 10,
	    .eightbit = f & 2,
	    .smtputf8 = (f & 0x82) == 0x82,
	    .requiretls = (f & 0x21) == 0x21,
	};
	struct smtp_client *c = smtp_client_new(&o, &m);
	last_out = 0;
	size_t cut = data[0] % size, off = 1, messages = 1;
	for (int steps = 0; steps < 10000; steps++) {
		drain(c);
		enum smtp_client_want w = smtp_client_want(c);
		ASSERT(smtp_client_timeout_ms(c) > 0);
		if (w == SMTP_CLIENT_WANT_CLOSE) {
			check_final(c, m.nrcpts);
			break;
		}
		if (w == SMTP_CLIENT_WANT_TLS) {
			smtp_client_tls_done(c, !(f & 0x10) || (off & 1));
		} else if (w == SMTP_CLIENT_WANT_BODY) {
			static const char b1[] = ".\r\nline\r\n..x\r";
			static const char b2[] = "\n.\r\nend";
			smtp_client_body_chunk(c, (const unsigned char *)b1, sizeof(b1) - 1);
			drain(c);
			smtp_client_body_chunk(c, (const unsigned char *)b2, sizeof(b2) - 1);
			smtp_client_body_end(c);
		} else if (w == SMTP_CLIENT_WANT_MESSAGE) {
			check_final(c, m.nrcpts);
			if (messages++ < 3)
				ASSERT(smtp_client_next_message(c, &m) == 0);
			else
				smtp_client_quit(c);
		} else if (off >= size) {
			smtp_client_abort(c, SMTP_CLIENT_STAGE_MAIL, "EOF");
		} else {
			/* one line, or up to the cut */
			size_t end = off;
			while (end < size && data[end] != '\n' && end != cut)
				end++;
			if (end < size && end != cut)
				end++;
			if (end == off)
				end++;
			smtp_client_input(c, data + off, end - off);
			off = end;
		}
	}
	smtp_client_free(&c);
	return 0;
}
