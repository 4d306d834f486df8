/* libFuzzer target: the whole IMAP session (command table, reader limits, literals, LOGIN and
 * AUTHENTICATE, SELECT, FETCH/STORE/SEARCH/SORT/THREAD/COPY/MOVE/APPEND/EXPUNGE, IDLE, ENABLE,
 * STARTTLS, COMPRESS) on the in-memory mailstore with three small messages. data[0] picks TLS
 * and whether the input follows an automatic "a LOGIN user@test.example secret"; the input is
 * split at data[0] % size to exercise resumption (STYLE.md B.13 ex. 9); a pending STARTTLS or
 * COMPRESS is "completed" between the pieces, and an IDLE is polled. */
#include <stdint.h>
#include <string.h>

#include "imap/imap.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const msgs[] = {
    "From: Alice <alice@a.example>\r\nTo: bob@b.example\r\nSubject: first\r\n"
    "Message-ID: <1@a.example>\r\nContent-Type: text/plain\r\n\r\nHello one\r\n",
    "From: carol@c.example\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
    "part one\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\n",
    "From: dave@d.example\r\nSubject: Re: first\r\nIn-Reply-To: <1@a.example>\r\n"
    "References: <1@a.example>\r\n\r\nHello three\r\n",
};

static void
stub_log(void *ctx, const char *line)
{
	ASSERT(strncmp(line, "imap ", 5) == 0);
	ASSERT(strpbrk(line, "\r\n") == NULL); /* no log injection */
}

static int64_t
stub_now(void *ctx)
{
	return 1700000000;
}

static int
stub_flush(void *ctx, struct buf *out)
{
	buf_reset(out);
	return 0;
}

static void
feed(struct imap_session *s, const uint8_t *p, size_t n)
{
	imap_session_input(s, p, n);
	struct buf *out = imap_session_output(s);
	ASSERT(out->len == 0 || (out->len >= 2 && out->data[out->len - 1] == '\n'));
	ASSERT(!out->overflow);
	buf_reset(out);
	(void)imap_session_delay_ms(s);
	if (imap_session_wants_tls(s))
		imap_session_tls_started(s);
	if (imap_session_wants_compress(s))
		imap_session_compress_started(s);
	if (imap_session_idling(s)) {
		imap_session_poll(s);
		buf_reset(imap_session_output(s));
	}
	(void)imap_session_mailbox(s);
	(void)imap_session_timeout_ms(s, 1800000);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_limits lim = {
	    .hostname = "imap.example",
	    .line_max = 4096,
	    .preauth_line_max = 512,
	    /* above the 64 KiB spool threshold, so "APPEND x {70000}" takes the spooling path (the
	     * input ends before the literal does: announcement, partial data, cleanup) */
	    .literal_max = 1 << 20,
	    .preauth_literal_max = 256,
	    .command_max = 2 << 20,
	    .depth_max = 8,
	    .max_errors = 20,
	    .max_auth_failures = 3,
	    .auth_fail_delay_ms = 10,
	    .plaintext_auth_ok = false,
	};
	struct imap_hooks hooks = {.log = stub_log, .now = stub_now, .flush = stub_flush};
	struct imap_conn_info info = {.client_ip = "192.0.2.1", .listener = "fuzz"};
	size_t lens[3];
	for (size_t i = 0; i < 3; i++)
		lens[i] = strlen(msgs[i]);
	struct imap_mailstore *ms = imap_mailstore_stub(msgs, lens, 3);
	uint8_t sel = size ? data[0] : 0;
	bool tls = sel & 0x40;
	struct imap_session *s = imap_session_new(&lim, &hooks, &info, ms, tls, !tls, "fz");
	buf_reset(imap_session_output(s));
	if (sel & 0x80) {
		static const char login[] = "a LOGIN user@test.example secret\r\n";
		if (!tls)
			imap_session_tls_started(s);
		feed(s, (const uint8_t *)login, sizeof login - 1);
		ASSERT(imap_session_user(s) != NULL);
	}
	size_t cut = size ? data[0] % size : 0;
	feed(s, data, cut);
	feed(s, data + cut, size - cut);
	if (sel & 0x20)
		imap_session_close(s, sel & 0x10);
	(void)imap_session_done(s);
	(void)imap_session_user(s);
	imap_session_free(&s);
	return 0;
}
