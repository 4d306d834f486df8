/* Unit tests for src/mail/mime_summary.c: a plain message, multipart/alternative, mixed with
 * attachments (RFC 2231 filename, decoded sizes, Content-ID, a forwarded message), RFC 2047
 * header words and a legacy charset body, truncation on a UTF-8 boundary, and malformed input
 * (every truncation of one message) without a crash. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mime.h"
#include "test.h"
#include "util/buf.h"

static void
build(const char *m, size_t body_max, struct mime_summary *s)
{
	CHECK_INT(mime_summary_build((const unsigned char *)m, strlen(m), body_max, s), 0);
}

static void
test_plain(void)
{
	struct mime_summary s;
	build("From: Alice Example <alice@example.org>\r\n"
	      "To: bob@example.net, \"Carol C.\" <carol@example.net>\r\n"
	      "Subject: Hello there\r\n"
	      "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	      "Message-ID: <m1@example.org>\r\n"
	      "\r\n"
	      "Just text.\r\n",
	      1000, &s);
	CHECK_STR(s.from, "Alice Example <alice@example.org>");
	CHECK(s.to != NULL && strstr(s.to, "bob@example.net") != NULL &&
	      strstr(s.to, "carol@example.net") != NULL);
	CHECK_STR(s.cc, NULL);
	CHECK_STR(s.subject, "Hello there");
	CHECK_STR(s.date, "Tue, 14 Nov 2023 22:13:20 +0000");
	CHECK_STR(s.message_id, "<m1@example.org>");
	CHECK_STR(s.text, "Just text.\r\n");
	CHECK_STR(s.html, NULL);
	CHECK(!s.text_truncated);
	CHECK_INT(s.n_att, 0);
	mime_summary_deinit(&s);
	CHECK_STR(s.from, NULL);
}

static void
test_alternative(void)
{
	struct mime_summary s;
	build("From: a@example.org\nCc: c@example.org\nSubject: alt\n"
	      "Content-Type: multipart/alternative; boundary=\"b1\"\n\n"
	      "--b1\nContent-Type: text/plain; charset=iso-8859-1\n"
	      "Content-Transfer-Encoding: quoted-printable\n\nCaf=E9 au lait\n"
	      "--b1\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
	      "PHA+Q2Fmw6k8L3A+\n"
	      "--b1--\n",
	      1000, &s);
	CHECK_STR(s.cc, "c@example.org");
	CHECK_STR(s.text, "Caf\xc3\xa9 au lait"); /* the break before a boundary is its own */
	CHECK_STR(s.html, "<p>Caf\xc3\xa9</p>");
	CHECK_INT(s.n_att, 0);
	CHECK_STR(s.date, NULL);
	CHECK_STR(s.message_id, NULL);
	mime_summary_deinit(&s);
}

static void
test_mixed(void)
{
	struct mime_summary s;
	build("From: a@example.org\nSubject: files\nMIME-Version: 1.0\n"
	      "Content-Type: multipart/mixed; boundary=outer\n\n"
	      "--outer\nContent-Type: multipart/alternative; boundary=inner\n\n"
	      "--inner\nContent-Type: text/plain\n\nsee attached\n"
	      "--inner\nContent-Type: text/html\n\n<b>see attached</b>\n"
	      "--inner--\n"
	      "--outer\nContent-Type: application/pdf\n"
	      "Content-Disposition: attachment;\n"
	      " filename*=utf-8''R%C3%A9sum%C3%A9%20final.pdf\n"
	      "Content-Transfer-Encoding: base64\n\nSGVsbG8gV29ybGQh\n"
	      "--outer\nContent-Type: image/png; name=\"dot.png\"\nContent-ID: <img1@example.org>\n"
	      "Content-Disposition: inline\nContent-Transfer-Encoding: base64\n\nAAECAw==\n"
	      "--outer\nContent-Type: text/plain; name=notes.txt\n"
	      "Content-Disposition: attachment\n\nline one\nline two\n"
	      "--outer\nContent-Type: message/rfc822\n\nSubject: fwd\n\nfwd body\n"
	      "--outer--\n",
	      1000, &s);
	CHECK_STR(s.text, "see attached");
	CHECK_STR(s.html, "<b>see attached</b>");
	CHECK_INT(s.n_att, 4);
	if (s.n_att == 4) {
		CHECK_STR(s.att[0].filename, "R\xc3\xa9sum\xc3\xa9 final.pdf");
		CHECK_STR(s.att[0].content_type, "application/pdf");
		CHECK_INT(s.att[0].size, 12); /* "Hello World!" */
		CHECK_STR(s.att[0].content_id, NULL);
		CHECK_STR(s.att[1].filename, "dot.png");
		CHECK_STR(s.att[1].content_type, "image/png");
		CHECK_STR(s.att[1].content_id, "img1@example.org");
		CHECK_INT(s.att[1].size, 4);
		CHECK_STR(s.att[2].filename, "notes.txt");
		CHECK_STR(s.att[2].content_type, "text/plain");
		CHECK_INT(s.att[2].size, 17); /* "line one\nline two" */
		CHECK_STR(s.att[3].content_type, "message/rfc822");
		CHECK(s.att[3].size > 0);
	}
	mime_summary_deinit(&s);

	/* more than MIME_SUMMARY_MAX_ATTACHMENTS */
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "Content-Type: multipart/mixed; boundary=z\n\n");
	for (int i = 0; i < MIME_SUMMARY_MAX_ATTACHMENTS + 20; i++)
		buf_printf(&b, "--z\nContent-Type: application/octet-stream; name=f%d\n\nx\n", i);
	buf_append_str(&b, "--z--\n");
	build(buf_cstr(&b), 10, &s);
	CHECK_INT(s.n_att, MIME_SUMMARY_MAX_ATTACHMENTS);
	CHECK_STR(s.att[MIME_SUMMARY_MAX_ATTACHMENTS - 1].filename, "f99");
	mime_summary_deinit(&s);
	buf_deinit(&b);
}

static void
test_rfc2047(void)
{
	struct mime_summary s;
	build("From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\n"
	      "To: =?iso-8859-1?b?U+lu?= <s@example.org>\n"
	      "Subject: =?utf-8?b?w4dh?= va =?iso-8859-1?q?tr=E8s?=\n"
	      " bien\n"
	      "Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n",
	      1000, &s);
	CHECK_STR(s.subject, "\xc3\x87"
	                     "a va tr\xc3\xa8s bien");
	CHECK_STR(s.from, "J\xc3\xbcrgen <j@example.org>");
	CHECK_STR(s.to, "S\xc3\xa9n <s@example.org>");
	CHECK_STR(s.text, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\n"); /* Привет */
	mime_summary_deinit(&s);
}

static void
test_truncation(void)
{
	/* "é" is two bytes: a cut at an odd length must step back to a character boundary */
	static const char m[] = "Content-Type: multipart/alternative; boundary=b\n\n"
	                        "--b\nContent-Type: text/plain; charset=utf-8\n\n"
	                        "a\xc3\xa9\xc3\xa9\xc3\xa9\n"
	                        "--b\nContent-Type: text/html; charset=utf-8\n\n"
	                        "\xe2\x82\xac\xe2\x82\xac\n--b--\n";
	struct mime_summary s;
	build(m, 4, &s);
	CHECK_STR(s.text, "a\xc3\xa9");
	CHECK(s.text_truncated);
	CHECK_STR(s.html, "\xe2\x82\xac");
	CHECK(s.html_truncated);
	mime_summary_deinit(&s);
	build(m, 8, &s);
	CHECK_STR(s.text, "a\xc3\xa9\xc3\xa9\xc3\xa9");
	CHECK(!s.text_truncated);
	mime_summary_deinit(&s);
	build(m, 0, &s);
	CHECK_STR(s.text, "");
	CHECK(s.text_truncated);
	mime_summary_deinit(&s);
	/* invalid UTF-8 in a utf-8 part is replaced, never passed on */
	build("Content-Type: text/plain; charset=utf-8\n\nbad \xff\xfe end\n", 100, &s);
	CHECK(s.text != NULL && strchr(s.text, '\xff') == NULL && strchr(s.text, '\xfe') == NULL);
	CHECK(s.text != NULL && strncmp(s.text, "bad ", 4) == 0);
	mime_summary_deinit(&s);
}

static void
test_malformed(void)
{
	static const char *const cases[] = {
	    "",
	    "\n",
	    "garbage without header",
	    "Content-Type: multipart/mixed\n\nno boundary\n",
	    "Content-Type: multipart/mixed; boundary=x\n\n--x\n--x\n--x--\n--x\n",
	    "Content-Type: message/rfc822\n\n",
	    "Content-Type: text/plain; charset=no-such-charset\n\nx\xff\n",
	    "From: <<<@@@>>>\nTo: ,,,;;;\nSubject: =?bad?x?zz?=\nContent-Type: ///\n\n",
	    "Content-Type: application/x; name*0*=utf-8''%FF; name*1=%zz\n"
	    "Content-Transfer-Encoding: base64\n\n!!!!\n",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mime_summary s;
		build(cases[i], 100, &s);
		mime_summary_deinit(&s);
	}
	struct mime_summary s;
	CHECK_INT(mime_summary_build(NULL, 0, 10, &s), 0);
	mime_summary_deinit(&s);

	/* every truncation of a multipart message; exact-size copies so ASan sees overreads */
	static const char m[] =
	    "From: =?utf-8?q?A?= <a@example.org>\r\nSubject: =?utf-8?b?w4dh?=\r\n"
	    "Content-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\n"
	    "Content-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9\r\n--q\r\n"
	    "Content-Type: application/pdf\r\nContent-Disposition: attachment;"
	    " filename*=utf-8''%C3%A9.pdf\r\nContent-Transfer-Encoding: base64"
	    "\r\n\r\nSGVsbG8=\r\n--q--\r\n";
	size_t n = strlen(m);
	for (size_t len = 0; len <= n; len++) {
		unsigned char *c = malloc(len ? len : 1);
		memcpy(c, m, len);
		CHECK_INT(mime_summary_build(c, len, 3, &s), 0);
		CHECK(s.text == NULL || strlen(s.text) <= 3);
		mime_summary_deinit(&s);
		free(c);
	}
}

int
main(void)
{
	RUN(test_plain);
	RUN(test_alternative);
	RUN(test_mixed);
	RUN(test_rfc2047);
	RUN(test_truncation);
	RUN(test_malformed);
	return test_done("mail/mime_summary");
}
