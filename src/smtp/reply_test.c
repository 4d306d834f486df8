/* Unit tests for src/smtp/reply: single and multi-line replies, enhanced codes, sanitising and
 * the line limit. */
#include <string.h>

#include "smtp/reply.h"
#include "test.h"
#include "util/buf.h"

static void
test_single(void)
{
	struct buf b;
	buf_init(&b, 0);
	smtp_reply(&b, 250, "2.1.0", "Ok");
	CHECK_STR(buf_cstr(&b), "250 2.1.0 Ok\r\n");
	buf_reset(&b);
	smtp_reply(&b, 220, NULL, "mx.example ESMTP");
	CHECK_STR(buf_cstr(&b), "220 mx.example ESMTP\r\n");
	buf_reset(&b);
	smtp_reply(&b, 334, NULL, "");
	CHECK_STR(buf_cstr(&b), "334 \r\n");
	buf_reset(&b);
	smtp_replyf(&b, 552, "5.3.4", "max %d", 10);
	CHECK_STR(buf_cstr(&b), "552 5.3.4 max 10\r\n");
	buf_reset(&b);
	/* CR/LF and control bytes never reach the client */
	smtp_reply(&b, 550, "5.1.1", "bad\r\n250 ok\x01\xff");
	CHECK_STR(buf_cstr(&b), "550 5.1.1 bad??250 ok??\r\n");
	buf_reset(&b);
	/* enhanced code class must match; malformed ones are replaced */
	smtp_reply(&b, 451, "5.3.0", "x");
	CHECK_STR(buf_cstr(&b), "451 4.0.0 x\r\n");
	buf_reset(&b);
	smtp_reply(&b, 550, "5.1234.1", "x");
	CHECK_STR(buf_cstr(&b), "550 5.0.0 x\r\n");
	buf_deinit(&b);
}

static void
test_enh(void)
{
	CHECK(smtp_reply_enh_is_valid("2.0.0", 250));
	CHECK(smtp_reply_enh_is_valid("5.7.11", 538));
	CHECK(smtp_reply_enh_is_valid("4.123.456", 421));
	CHECK(!smtp_reply_enh_is_valid("4.0.0", 250));
	CHECK(!smtp_reply_enh_is_valid("3.0.0", 354));
	CHECK(!smtp_reply_enh_is_valid("2.0", 250));
	CHECK(!smtp_reply_enh_is_valid("2..0", 250));
	CHECK(!smtp_reply_enh_is_valid("2.0.0 ", 250));
	CHECK(!smtp_reply_enh_is_valid("", 250));
	CHECK(!smtp_reply_enh_is_valid(NULL, 250));
}

static void
test_multi_and_limit(void)
{
	struct buf b;
	buf_init(&b, 0);
	const char *lines[] = {"mx.example", "PIPELINING", "SIZE 100"};
	smtp_reply_lines(&b, 250, NULL, lines, 3);
	CHECK_STR(buf_cstr(&b), "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
	buf_reset(&b);
	const char *help[] = {"a", "b"};
	smtp_reply_lines(&b, 214, "2.0.0", help, 2);
	CHECK_STR(buf_cstr(&b), "214-2.0.0 a\r\n214 2.0.0 b\r\n");
	buf_reset(&b);
	char long_text[2000];
	memset(long_text, 'z', sizeof long_text - 1);
	long_text[sizeof long_text - 1] = '\0';
	smtp_reply(&b, 500, "5.5.2", long_text);
	CHECK_INT(b.len, SMTP_REPLY_LINE_MAX);
	CHECK(memcmp(b.data + b.len - 2, "\r\n", 2) == 0);
	buf_deinit(&b);
	/* a full output buffer reports it */
	buf_init(&b, 8);
	CHECK_INT(smtp_reply(&b, 250, "2.0.0", "Ok"), -1);
	buf_deinit(&b);
}

int
main(void)
{
	RUN(test_single);
	RUN(test_enh);
	RUN(test_multi_and_limit);
	return test_done("smtp_reply");
}
