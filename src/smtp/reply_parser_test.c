/* Unit tests for src/smtp/reply_parser: replies fed whole, one byte at a time and in threes must
 * give the same log; enhanced codes, multi-line replies, limits, malformed input and junk. */
#include <string.h>

#include "smtp/reply_parser.h"
#include "test.h"
#include "util/buf.h"

/* Feeds in with the given step (0 = whole) and logs each result as one line:
 * "R <code> [<enh>] <line>|<line>..." or "E <error text>", plus "PARTIAL" at the end. */
static void
run(const char *in, size_t len, size_t step, struct buf *log)
{
	struct smtp_reply_parser *p = smtp_reply_parser_new();
	size_t off = 0;
	while (off < len) {
		size_t n = step ? (len - off < step ? len - off : step) : len - off;
		const unsigned char *chunk = (const unsigned char *)in + off;
		size_t done = 0;
		while (done < n) {
			size_t used = 0;
			struct smtp_reply rp;
			enum smtp_reply_error e;
			enum smtp_reply_parse r =
			    smtp_reply_parse(p, chunk + done, n - done, &used, &rp, &e);
			done += used;
			if (r == SMTP_REPLY_OK) {
				buf_printf(log, "R %d [%s] ", rp.code, rp.enhanced);
				for (size_t i = 0; i < rp.nlines; i++) {
					if (i > 0)
						buf_append_str(log, "|");
					buf_append(log, rp.lines[i].p, rp.lines[i].len);
				}
				buf_append_str(log, "\n");
			} else if (r == SMTP_REPLY_ERROR) {
				CHECK(e != SMTP_REPLY_ERR_NONE);
				buf_printf(log, "E %s\n", smtp_reply_error_text(e));
			} else {
				CHECK(used == n - (done - used));
			}
		}
		off += n;
	}
	if (smtp_reply_parser_has_partial(p))
		buf_append_str(log, "PARTIAL\n");
	smtp_reply_parser_free(&p);
}

static void
check_case(const char *in, size_t len, const char *want)
{
	struct buf whole, bytes, threes;
	buf_init(&whole, 0);
	buf_init(&bytes, 0);
	buf_init(&threes, 0);
	run(in, len, 0, &whole);
	run(in, len, 1, &bytes);
	run(in, len, 3, &threes);
	CHECK_STR(buf_cstr(&whole), want);
	CHECK_STR(buf_cstr(&bytes), want);
	CHECK_STR(buf_cstr(&threes), want);
	buf_deinit(&whole);
	buf_deinit(&bytes);
	buf_deinit(&threes);
}

#define CASE(in, want) check_case(in, sizeof(in) - 1, want)

static void
test_basic(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"220 mx.example ESMTP\r\n", "R 220 [] mx.example ESMTP\n"},
	    {"250 2.1.5 Ok\r\n", "R 250 [2.1.5] Ok\n"},
	    {"250\r\n", "R 250 [] \n"},
	    {"250 \r\n", "R 250 [] \n"},
	    {"354 End data with <CR><LF>.<CR><LF>\r\n",
	     "R 354 [] End data with <CR><LF>.<CR><LF>\n"},
	    /* enhanced code: class must match, needs SP or end after it */
	    {"550 5.1.1\r\n", "R 550 [5.1.1] \n"},
	    {"550 4.1.1 x\r\n", "R 550 [] 4.1.1 x\n"},
	    {"550 5.1.1x y\r\n", "R 550 [] 5.1.1x y\n"},
	    {"550 5.1234.1 y\r\n", "R 550 [] 5.1234.1 y\n"},
	    {"451 4.3.0 try later\r\n", "R 451 [4.3.0] try later\n"},
	    /* multi-line */
	    {"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
	     "R 250 [] mx.example|PIPELINING|SIZE 1000|8BITMIME\n"},
	    {"550-5.1.1 no such\r\n550 5.1.1 user\r\n", "R 550 [5.1.1] no such|user\n"},
	    /* bare LF tolerated, several replies in one input */
	    {"250 a\n250 b\r\n", "R 250 [] a\nR 250 [] b\n"},
	    /* a partial reply */
	    {"250-a\r\n250 b", "PARTIAL\n"},
	    {"", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(cases[i].in, strlen(cases[i].in), cases[i].want);
}

static void
test_malformed(void)
{
	CASE("25 x\r\n", "E malformed reply code\n");
	CASE("abc x\r\n", "E malformed reply code\n");
	CASE("150 x\r\n", "E malformed reply code\n");
	CASE("650 x\r\n", "E malformed reply code\n");
	CASE("250x\r\n", "E malformed reply separator\n");
	CASE("\r\n", "E malformed reply code\n");
	CASE("250-a\r\n251 b\r\n", "E reply code changes within a multi-line reply\n");
	CASE("250 a\0b\r\n", "E NUL in reply\n");
	/* resynchronisation at the next line */
	CASE("junk\r\n250 ok\r\n", "E malformed reply code\nR 250 [] ok\n");
	CASE("250-a\r\n251 b\r\n250 c\r\n",
	     "E reply code changes within a multi-line reply\nR 250 [] c\n");
}

static void
test_limits(void)
{
	struct buf in, want;
	buf_init(&in, 0);
	buf_init(&want, 0);
	/* exactly 512 octets with CRLF: accepted */
	buf_append_str(&in, "250 ");
	for (int i = 0; i < 512 - 6; i++)
		buf_append_byte(&in, 'a');
	buf_append_str(&in, "\r\n");
	CHECK_INT(in.len, 512);
	buf_append_str(&want, "R 250 [] ");
	buf_append(&want, in.data + 4, 512 - 6);
	buf_append_str(&want, "\n");
	check_case((const char *)in.data, in.len, buf_cstr(&want));

	/* 513: too long, rest of the line skipped, next reply fine */
	buf_reset(&in);
	buf_append_str(&in, "250 ");
	for (int i = 0; i < 512 - 5; i++)
		buf_append_byte(&in, 'a');
	buf_append_str(&in, "\r\n250 next\r\n");
	check_case((const char *)in.data, in.len, "E reply line too long\nR 250 [] next\n");

	/* a huge line: one error, bounded memory */
	buf_reset(&in);
	for (int i = 0; i < 100000; i++)
		buf_append_byte(&in, 'x');
	buf_append_str(&in, "\n");
	check_case((const char *)in.data, in.len, "E reply line too long\n");

	/* 100 lines accepted, 101 refused */
	buf_reset(&in);
	for (int i = 0; i < 99; i++)
		buf_append_str(&in, "250-x\r\n");
	buf_append_str(&in, "250 y\r\n");
	struct buf got;
	buf_init(&got, 0);
	run((const char *)in.data, in.len, 1, &got);
	CHECK(strncmp(buf_cstr(&got), "R 250 [] x|x|", 13) == 0);
	CHECK(got.len == strlen("R 250 [] ") + 99 * 2 + 1 + 1);
	buf_reset(&in);
	for (int i = 0; i < 100; i++)
		buf_append_str(&in, "250-x\r\n");
	buf_append_str(&in, "250 y\r\n");
	check_case((const char *)in.data, in.len, "E too many reply lines\n");
	/* endless continuation lines: an error every 100 lines, never unbounded */
	buf_reset(&in);
	for (int i = 0; i < 250; i++)
		buf_append_str(&in, "250-x\r\n");
	check_case((const char *)in.data, in.len,
	           "E too many reply lines\nE too many reply lines\n"
	           "PARTIAL\n");
	buf_deinit(&got);
	buf_deinit(&in);
	buf_deinit(&want);
}

static void
test_reset(void)
{
	struct smtp_reply_parser *p = smtp_reply_parser_new();
	size_t used;
	struct smtp_reply rp;
	enum smtp_reply_error e;
	const char *a = "250-partial\r\n250 x";
	CHECK_INT(smtp_reply_parse(p, (const unsigned char *)a, strlen(a), &used, &rp, &e),
	          SMTP_REPLY_NEED_MORE);
	CHECK(smtp_reply_parser_has_partial(p));
	smtp_reply_parser_reset(p);
	CHECK(!smtp_reply_parser_has_partial(p));
	const char *b = "220 go\r\n";
	CHECK_INT(smtp_reply_parse(p, (const unsigned char *)b, strlen(b), &used, &rp, &e),
	          SMTP_REPLY_OK);
	CHECK_INT(rp.code, 220);
	CHECK_INT(rp.nlines, 1);
	CHECK(slice_eq(rp.lines[0], "go"));
	CHECK(!smtp_reply_parser_has_partial(p));
	smtp_reply_parser_free(&p);
	CHECK(p == NULL);
	smtp_reply_parser_free(&p);
}

int
main(void)
{
	RUN(test_basic);
	RUN(test_malformed);
	RUN(test_limits);
	RUN(test_reset);
	return test_done("smtp_reply_parser");
}
