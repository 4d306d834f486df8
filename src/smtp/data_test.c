/* Unit tests for src/smtp/data: the DATA end marker, dot-unstuffing, SMTP smuggling sequences
 * (CVE-2023-51764 and relatives), line and size limits, BDAT chunks; every DATA case is fed
 * whole, one byte at a time and in 7-byte pieces. */
#include <string.h>

#include "smtp/data.h"
#include "smtp/server.h"
#include "test.h"

struct outcome {
	bool ended;
	size_t used; /* bytes consumed up to and including the end marker */
	enum smtp_data_result result;
	char msg[4096];
	size_t msg_len;
};

static void
feed(const char *in, size_t len, size_t step, uint64_t max, struct outcome *o)
{
	struct smtp_data d;
	smtp_data_init(&d);
	smtp_data_begin(&d, max);
	memset(o, 0, sizeof *o);
	size_t off = 0;
	while (off < len && !o->ended) {
		size_t n = step ? (len - off < step ? len - off : step) : len - off;
		size_t used = 0;
		o->ended = smtp_data_feed(&d, (const unsigned char *)in + off, n, &used);
		off += used;
	}
	o->used = off;
	o->result = smtp_data_result(&d);
	o->msg_len = d.msg.len < sizeof o->msg ? d.msg.len : sizeof o->msg;
	if (o->msg_len)
		memcpy(o->msg, d.msg.data, o->msg_len);
	smtp_data_deinit(&d);
}

/* Feeds whole, bytewise and in 7-byte pieces; all three must agree with the expectation. */
static void
expect(const char *in, size_t len, uint64_t max, bool ended, size_t used,
       enum smtp_data_result result, const char *msg)
{
	static const size_t steps[] = {0, 1, 7};
	for (size_t i = 0; i < 3; i++) {
		struct outcome o;
		feed(in, len, steps[i], max, &o);
		CHECK_INT(o.ended, ended);
		CHECK_INT(o.used, used);
		CHECK_INT(o.result, result);
		if (msg) {
			CHECK_INT(o.msg_len, strlen(msg));
			CHECK(o.msg_len == strlen(msg) && memcmp(o.msg, msg, o.msg_len) == 0);
		}
	}
}

#define S(lit) lit, sizeof lit - 1

static void
test_end_and_unstuff(void)
{
	expect(S("Subject: x\r\n\r\nbody\r\n.\r\n"), 0, true, 23, SMTP_DATA_OK,
	       "Subject: x\r\n\r\nbody\r\n");
	/* the final marker right at the start: empty message */
	expect(S(".\r\n"), 0, true, 3, SMTP_DATA_OK, "");
	/* dot-stuffed lines lose one dot */
	expect(S("..\r\n..x\r\n.y\r\n.\r\n"), 0, true, 16, SMTP_DATA_OK, ".\r\n.x\r\ny\r\n");
	/* bytes after the marker are not consumed */
	expect(S("a\r\n.\r\nQUIT\r\n"), 0, true, 6, SMTP_DATA_OK, "a\r\n");
	/* no end yet */
	expect(S("a\r\n.\r"), 0, false, 5, SMTP_DATA_OK, "a\r\n");
	expect(S("a\r\n. \r\n"), 0, false, 7, SMTP_DATA_OK, "a\r\n \r\n");
}

static void
test_smuggling(void)
{
	/* none of these end the data; the real end does, and the message is refused */
	expect(S("a\n.\nMAIL FROM:<x@y.example>\r\n.\r\n"), 0, true, 32, SMTP_DATA_BARE_LF, NULL);
	expect(S("a\r.\rMAIL FROM:<x@y.example>\r\n.\r\n"), 0, true, 32, SMTP_DATA_BARE_CR, NULL);
	expect(S("a\n.\r\nMAIL FROM:<x@y.example>\r\n.\r\n"), 0, true, 33, SMTP_DATA_BARE_LF, NULL);
	expect(S("a\r\n.\nMAIL FROM:<x@y.example>\r\n.\r\n"), 0, true, 33, SMTP_DATA_BARE_LF, NULL);
	expect(S("a\r\n.\rMAIL\r\n.\r\n"), 0, true, 14, SMTP_DATA_BARE_CR, NULL);
	expect(S("a\r\r\n.\r\n"), 0, true, 7, SMTP_DATA_BARE_CR, NULL);
	/* "\n.\n" alone never ends: still waiting */
	expect(S("a\n.\n"), 0, false, 4, SMTP_DATA_BARE_LF, NULL);
	expect(S("a\r.\r"), 0, false, 4, SMTP_DATA_BARE_CR, NULL);
	/* NUL anywhere */
	expect(S("a\0b\r\n.\r\n"), 0, true, 8, SMTP_DATA_NUL, NULL);
	/* bare LF at the very start */
	expect(S("\n.\r\n"), 0, false, 4, SMTP_DATA_BARE_LF, NULL);
}

static void
test_limits(void)
{
	char in[3000];
	/* 998 octets + CRLF = 1000: fine; one more: refused, but still read to the end */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	expect(in, 1003, 0, true, 1003, SMTP_DATA_OK, NULL);
	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	expect(in, 1004, 0, true, 1004, SMTP_DATA_LONG_LINE, NULL);
	/* a stuffed dot does not count */
	in[0] = '.';
	memset(in + 1, 'x', 998);
	memcpy(in + 999, "\r\n.\r\n", 5);
	expect(in, 1004, 0, true, 1004, SMTP_DATA_OK, NULL);
	/* size: past the limit nothing is stored, the end is still found */
	memset(in, 'y', 100);
	memcpy(in + 100, "\r\n.\r\n", 5);
	expect(in, 105, 102, true, 105, SMTP_DATA_OK, NULL);
	expect(in, 105, 101, true, 105, SMTP_DATA_TOO_BIG, NULL);
	struct outcome o;
	feed(in, 105, 1, 50, &o);
	CHECK_INT(o.msg_len, 50);
	CHECK_INT(o.result, SMTP_DATA_TOO_BIG);
	/* bare LF outranks size */
	expect(S("aaaa\nbbbb\r\n.\r\n"), 3, true, 14, SMTP_DATA_BARE_LF, NULL);
	int code;
	const char *enh, *text;
	smtp_data_reply(SMTP_DATA_TOO_BIG, &code, &enh, &text);
	CHECK_INT(code, 552);
	CHECK_STR(enh, "5.3.4");
	smtp_data_reply(SMTP_DATA_LONG_LINE, &code, &enh, &text);
	CHECK_INT(code, 500);
	CHECK_STR(enh, "5.5.2");
	smtp_data_reply(SMTP_DATA_BARE_LF, &code, &enh, &text);
	CHECK_INT(code, 550);
	CHECK_STR(smtp_data_result_name(SMTP_DATA_BARE_CR), "bare-cr");
}

/* BDAT: chunks concatenate; CR at a chunk end may meet LF at the next chunk's start. */
static enum smtp_data_result
chunks(const char *const *parts, size_t n, uint64_t max, size_t *len_r)
{
	struct smtp_data d;
	smtp_data_init(&d);
	smtp_data_begin(&d, max);
	for (size_t i = 0; i < n; i++)
		smtp_data_chunk(&d, (const unsigned char *)parts[i], strlen(parts[i]));
	smtp_data_chunk_end(&d);
	enum smtp_data_result r = smtp_data_result(&d);
	*len_r = d.msg.len;
	smtp_data_deinit(&d);
	return r;
}

static void
test_bdat(void)
{
	size_t len;
	const char *ok[] = {"Subject: a\r", "\n\r\n.\r\n", "..x\r\n"};
	CHECK_INT(chunks(ok, 3, 0, &len), SMTP_DATA_OK);
	CHECK_INT(len, 22); /* binary-exact: no unstuffing, no end marker */
	const char *lf[] = {"a\r\n", "b\n"};
	CHECK_INT(chunks(lf, 2, 0, &len), SMTP_DATA_BARE_LF);
	const char *cr[] = {"a\r", "b\r\n"};
	CHECK_INT(chunks(cr, 2, 0, &len), SMTP_DATA_BARE_CR);
	const char *tail[] = {"a\r\n", "b\r"};
	CHECK_INT(chunks(tail, 2, 0, &len), SMTP_DATA_BARE_CR);
	const char *big[] = {"0123456789", "0123456789"};
	CHECK_INT(chunks(big, 2, 15, &len), SMTP_DATA_TOO_BIG);
	CHECK_INT(len, 15);
	/* bytewise gives the same */
	struct smtp_data d;
	smtp_data_init(&d);
	smtp_data_begin(&d, 0);
	const char *b = "x\r\n\r\ny\n";
	for (size_t i = 0; b[i]; i++)
		smtp_data_chunk(&d, (const unsigned char *)b + i, 1);
	smtp_data_chunk_end(&d);
	CHECK_INT(smtp_data_result(&d), SMTP_DATA_BARE_LF);
	/* begin() resets everything for the next message */
	smtp_data_begin(&d, 0);
	CHECK_INT(smtp_data_result(&d), SMTP_DATA_OK);
	CHECK_INT(d.msg.len, 0);
	smtp_data_deinit(&d);
}

int
main(void)
{
	RUN(test_end_and_unstuff);
	RUN(test_smuggling);
	RUN(test_limits);
	RUN(test_bdat);
	return test_done("smtp_data");
}
