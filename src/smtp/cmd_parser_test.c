/* Unit tests for src/smtp/cmd_parser: line framing (whole and one byte at a time), limits,
 * MAIL/RCPT paths and ESMTP parameters, xtext, BDAT arguments, domains and literals. */
#include <stdint.h>
#include <string.h>

#include "mail/addr.h"
#include "smtp/cmd_parser.h"
#include "smtp/server.h"
#include "test.h"
#include "util/buf.h"

/* Feeds in with the given step (0 = whole) and records every result as one line of text:
 * "CMD <verb>|<arg>" or "ERR <why>", plus "PARTIAL" when a line is left over. */
static void
run_parser(const char *in, size_t len, size_t step, struct buf *log)
{
	struct smtp_cmd_parser *p = smtp_cmd_parser_new(&(struct smtp_cmd_limits){
	    .line_max = SMTP_CMD_LINE_MAX, .auth_line_max = SMTP_AUTH_LINE_MAX});
	size_t off = 0;
	while (off < len) {
		size_t n = step ? (len - off < step ? len - off : step) : len - off;
		const unsigned char *chunk = (const unsigned char *)in + off;
		size_t done = 0;
		while (done < n) {
			size_t used = 0;
			struct smtp_cmd cmd;
			const char *err = NULL;
			enum smtp_parse r =
			    smtp_cmd_parse(p, chunk + done, n - done, &used, &cmd, &err);
			done += used;
			if (r == SMTP_PARSE_CMD) {
				buf_append_str(log, "CMD ");
				buf_append(log, cmd.verb.p, cmd.verb.len);
				buf_append_str(log, "|");
				buf_append(log, cmd.arg.p, cmd.arg.len);
				buf_append_str(log, "\n");
			} else if (r == SMTP_PARSE_ERROR) {
				buf_printf(log, "ERR %s\n", err);
			} else if (used == 0) {
				break;
			}
		}
		off += n;
	}
	if (smtp_cmd_parser_has_partial(p))
		buf_append_str(log, "PARTIAL\n");
	smtp_cmd_parser_free(&p);
}

static void
check_case(const char *in, size_t len, const char *want)
{
	struct buf whole, bytes, threes;
	buf_init(&whole, 0);
	buf_init(&bytes, 0);
	buf_init(&threes, 0);
	run_parser(in, len, 0, &whole);
	run_parser(in, len, 1, &bytes);
	run_parser(in, len, 3, &threes);
	CHECK_STR(buf_cstr(&whole), want);
	CHECK_STR(buf_cstr(&bytes), want);
	CHECK_STR(buf_cstr(&threes), want);
	buf_deinit(&whole);
	buf_deinit(&bytes);
	buf_deinit(&threes);
}

static void
test_framing(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"EHLO a.example\r\n", "CMD EHLO|a.example\n"},
	    {"MAIL FROM:<>\r\n", "CMD MAIL|FROM:<>\n"},
	    {"NOOP\r\n", "CMD NOOP|\n"},
	    {"noop   \r\n", "CMD noop|\n"},
	    {"VRFY   x  \r\n", "CMD VRFY|x\n"},
	    {"\r\n", "CMD |\n"},
	    {"NOOP\rX\r\n", "ERR bare CR\n"},
	    {"NOOP\n", "ERR bare LF\n"},
	    {"NOOP\r\r\n", "ERR bare CR\n"},
	    {"A\r\nB\nC\r\n", "CMD A|\nERR bare LF\nCMD C|\n"},
	    {"RSET\r\nQUIT\r\nNOOP", "CMD RSET|\nCMD QUIT|\nPARTIAL\n"},
	    {"HELO x\r", "PARTIAL\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_case(cases[i].in, strlen(cases[i].in), cases[i].want);
	/* NUL inside a line */
	check_case("NO\0OP\r\nNOOP\r\n", 13, "ERR NUL\nCMD NOOP|\n");
}

static void
test_limits(void)
{
	struct buf in;
	buf_init(&in, 0);
	/* 510 octets + CRLF = 512: accepted */
	buf_append_str(&in, "NOOP ");
	for (int i = 0; i < 505; i++)
		buf_append_byte(&in, 'x');
	buf_append_str(&in, "\r\n");
	CHECK_INT(in.len, 512);
	struct buf log;
	buf_init(&log, 0);
	run_parser((const char *)in.data, in.len, 1, &log);
	CHECK(strncmp(buf_cstr(&log), "CMD NOOP|xxx", 12) == 0);
	/* one more: too long, reported once, skipped to the next LF */
	buf_reset(&in);
	buf_append_str(&in, "NOOP ");
	for (int i = 0; i < 2000; i++)
		buf_append_byte(&in, 'x');
	buf_append_str(&in, "\r\nQUIT\r\n");
	check_case((const char *)in.data, in.len, "ERR line too long\nCMD QUIT|\n");
	buf_reset(&in);
	buf_append_str(&in, "NOOP ");
	for (int i = 0; i < 506; i++)
		buf_append_byte(&in, 'x');
	buf_append_str(&in, "\r\nQUIT\r\n");
	check_case((const char *)in.data, in.len, "ERR line too long\nCMD QUIT|\n");
	/* AUTH lines may be longer (RFC 4954 §4) */
	buf_reset(&in);
	buf_append_str(&in, "AUTH PLAIN ");
	for (int i = 0; i < 4000; i++)
		buf_append_byte(&in, 'A');
	buf_append_str(&in, "\r\n");
	buf_reset(&log);
	run_parser((const char *)in.data, in.len, 7, &log);
	CHECK(strncmp(buf_cstr(&log), "CMD AUTH|PLAIN AAAA", 19) == 0);
	/* ... but not past SMTP_AUTH_LINE_MAX */
	buf_reset(&in);
	buf_append_str(&in, "auth plain ");
	for (int i = 0; i < SMTP_AUTH_LINE_MAX; i++)
		buf_append_byte(&in, 'A');
	buf_append_str(&in, "\r\nQUIT\r\n");
	check_case((const char *)in.data, in.len, "ERR line too long\nCMD QUIT|\n");
	buf_deinit(&log);
	buf_deinit(&in);
}

static void
test_auth_mode_and_reset(void)
{
	struct smtp_cmd_parser *p = smtp_cmd_parser_new(&(struct smtp_cmd_limits){
	    .line_max = SMTP_CMD_LINE_MAX, .auth_line_max = SMTP_AUTH_LINE_MAX});
	char line[2002];
	memset(line, 'A', 2000);
	memcpy(line + 2000, "\r\n", 2);
	size_t used;
	struct smtp_cmd cmd;
	const char *err;
	smtp_cmd_parser_set_auth(p, true);
	CHECK_INT(smtp_cmd_parse(p, (const unsigned char *)line, sizeof line, &used, &cmd, &err),
	          SMTP_PARSE_CMD);
	CHECK_INT(used, sizeof line);
	CHECK_INT(cmd.line.len, 2000);
	smtp_cmd_parser_set_auth(p, false);
	CHECK_INT(smtp_cmd_parse(p, (const unsigned char *)line, sizeof line, &used, &cmd, &err),
	          SMTP_PARSE_ERROR);
	CHECK_STR(err, "line too long");
	CHECK(smtp_cmd_parser_has_partial(p));
	smtp_cmd_parser_reset(p);
	CHECK(!smtp_cmd_parser_has_partial(p));
	/* stops right after a line: the rest is for DATA/BDAT/TLS */
	const char *two = "DATA\r\nHello\r\n";
	CHECK_INT(smtp_cmd_parse(p, (const unsigned char *)two, strlen(two), &used, &cmd, &err),
	          SMTP_PARSE_CMD);
	CHECK_INT(used, 6);
	smtp_cmd_parser_free(&p);
	smtp_cmd_parser_free(&p); /* NULL is fine */
}

static void
test_mail(void)
{
	struct smtp_mail_args m;
	struct smtp_cmd_error e;
	CHECK_INT(smtp_cmd_parse_mail(slice_from("FROM:<a@b.example>"), &m, &e), 0);
	CHECK(slice_eq(m.path, "a@b.example"));
	CHECK(!m.null_path && !m.utf8);
	CHECK_INT(smtp_cmd_parse_mail(slice_from("from:<>"), &m, &e), 0);
	CHECK(m.null_path && m.path.len == 0);
	CHECK_INT(smtp_cmd_parse_mail(slice_from("FROM: <a@b.example>"), &m, &e), 0);
	CHECK_INT(smtp_cmd_parse_mail(
	              slice_from("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS "
	                         "ENVID=QQ+2B1 AUTH=<> REQUIRETLS"),
	              &m, &e),
	          0);
	CHECK(m.has_size && m.size == 1000);
	CHECK_INT(m.body, SMTP_BODY_8BITMIME);
	CHECK(m.smtputf8 && m.requiretls);
	CHECK_INT(m.ret, SMTP_RET_HDRS);
	CHECK(m.has_envid);
	CHECK_STR(m.envid, "QQ+1");
	CHECK_INT(smtp_cmd_parse_mail(slice_from("FROM:<a@b.example> body=7bit  ret=full"), &m, &e),
	          0);
	CHECK_INT(m.body, SMTP_BODY_7BIT);
	CHECK_INT(m.ret, SMTP_RET_FULL);
	/* source route stripped */
	CHECK_INT(
	    smtp_cmd_parse_mail(slice_from("FROM:<@r1.example,@r2.example:u@c.example>"), &m, &e),
	    0);
	CHECK(slice_eq(m.path, "u@c.example"));
	/* quoted local part, address literal */
	CHECK_INT(smtp_cmd_parse_mail(slice_from("FROM:<\"john doe\"@[192.0.2.1]>"), &m, &e), 0);
	CHECK(slice_eq(m.path, "\"john doe\"@[192.0.2.1]"));
	CHECK_INT(smtp_cmd_parse_mail(slice_from("FROM:<x@[IPv6:2001:db8::1]>"), &m, &e), 0);
	/* UTF-8 (RFC 6531): flagged, the session decides */
	CHECK_INT(smtp_cmd_parse_mail(slice_from("FROM:<j\xc3\xb6rg@b\xc3\xbc.example> SMTPUTF8"),
	                              &m, &e),
	          0);
	CHECK(m.utf8);
	static const struct {
		const char *arg;
		int code;
		const char *enh;
	} bad[] = {
	    {"FROM:a@b.example", 501, "5.1.7"},
	    {"TO:<a@b.example>", 501, "5.5.4"},
	    {"FROM:<a@b.example", 501, "5.1.7"},
	    {"FROM:<a>", 501, "5.1.7"},
	    {"FROM:<a..b@c.example>", 501, "5.1.7"},
	    {"FROM:<a@-b.example>", 501, "5.1.7"},
	    {"FROM:<a@b..example>", 501, "5.1.7"},
	    {"FROM:<a@[300.1.1.1]>", 501, "5.1.7"},
	    {"FROM:<j\xc3\x28@b.example>", 501, "5.1.7"},    /* invalid UTF-8 */
	    {"FROM:<\xed\xa0\x80@b.example>", 501, "5.1.7"}, /* surrogate */
	    {"FROM:<a@b.example>SIZE=1", 501, "5.5.4"},
	    {"FROM:<a@b.example> SIZE=1 SIZE=2", 501, "5.5.4"},
	    {"FROM:<a@b.example> SIZE=-1", 501, "5.5.4"},
	    {"FROM:<a@b.example> SIZE=99999999999999999999999", 501, "5.5.4"},
	    {"FROM:<a@b.example> SIZE", 501, "5.5.4"},
	    {"FROM:<a@b.example> BODY=BINARYMIME", 501, "5.5.4"},
	    {"FROM:<a@b.example> SMTPUTF8=yes", 501, "5.5.4"},
	    {"FROM:<a@b.example> ENVID=a+zz", 501, "5.5.4"},
	    {"FROM:<a@b.example> ENVID=a+0A", 501, "5.5.4"},
	    {"FROM:<a@b.example> RET=ALL", 501, "5.5.4"},
	    {"FROM:<a@b.example> X-FOO=1", 555, "5.5.4"},
	    {"FROM:<a@b.example> SIZE=", 501, "5.5.4"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		e = (struct smtp_cmd_error){0};
		CHECK_INT(smtp_cmd_parse_mail(slice_from(bad[i].arg), &m, &e), -1);
		CHECK_INT(e.code, bad[i].code);
		CHECK_STR(e.enhanced, bad[i].enh);
	}
	/* path length limit (RFC 5321 §4.5.3.1.3) and local part (§4.5.3.1.1) */
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "FROM:<");
	for (int i = 0; i < 64; i++)
		buf_append_byte(&b, 'a');
	buf_append_str(&b, "@");
	for (int i = 0; i < 4; i++)
		buf_append_str(&b,
		               "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");
	buf_append_str(&b, "example>");
	CHECK_INT(smtp_cmd_parse_mail(buf_slice(&b), &m, &e), -1);
	buf_reset(&b);
	buf_append_str(&b, "FROM:<");
	for (int i = 0; i < 65; i++)
		buf_append_byte(&b, 'a');
	buf_append_str(&b, "@b.example>");
	CHECK_INT(smtp_cmd_parse_mail(buf_slice(&b), &m, &e), -1);
	buf_reset(&b);
	buf_append_str(&b, "FROM:<");
	for (int i = 0; i < 64; i++)
		buf_append_byte(&b, 'a');
	buf_append_str(&b, "@b.example>");
	CHECK_INT(smtp_cmd_parse_mail(buf_slice(&b), &m, &e), 0);
	buf_deinit(&b);
}

static void
test_rcpt(void)
{
	struct smtp_rcpt_args r;
	struct smtp_cmd_error e;
	CHECK_INT(smtp_cmd_parse_rcpt(slice_from("TO:<a@b.example>"), &r, &e), 0);
	CHECK(slice_eq(r.path, "a@b.example"));
	CHECK_INT(r.notify, 0);
	CHECK(!r.has_orcpt);
	CHECK_INT(smtp_cmd_parse_rcpt(slice_from("To:<Postmaster>"), &r, &e), 0);
	CHECK(r.postmaster);
	CHECK_INT(smtp_cmd_parse_rcpt(slice_from("TO:<a@b.example> NOTIFY=SUCCESS,delay "
	                                         "ORCPT=rfc822;a+2Bx@b.example"),
	                              &r, &e),
	          0);
	CHECK_INT(r.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
	CHECK(r.has_orcpt);
	CHECK_STR(r.orcpt, "rfc822;a+x@b.example");
	CHECK_INT(smtp_cmd_parse_rcpt(slice_from("TO:<a@b.example> NOTIFY=NEVER"), &r, &e), 0);
	CHECK_INT(r.notify, SMTP_NOTIFY_NEVER);
	const char *bad[] = {
	    "TO:<>",
	    "TO:<a>",
	    "TO:<a@b.example> NOTIFY=NEVER,SUCCESS",
	    "TO:<a@b.example> NOTIFY=SOMETIMES",
	    "TO:<a@b.example> NOTIFY=",
	    "TO:<a@b.example> ORCPT=rfc822",
	    "TO:<a@b.example> ORCPT=;a@b",
	    "TO:<a@b.example> ORCPT=rfc822;a=b",
	    "TO:<a@b.example> NOTIFY=DELAY NOTIFY=DELAY",
	    "TO:<a@b.example> SIZE=10",
	    "FROM:<a@b.example>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(smtp_cmd_parse_rcpt(slice_from(bad[i]), &r, &e), -1);
	CHECK_INT(smtp_cmd_parse_rcpt(slice_from("TO:<a@b.example> SIZE=10"), &r, &e), -1);
	CHECK_INT(e.code, 555);
}

static void
test_bdat_xtext_domains(void)
{
	uint64_t n;
	bool last;
	CHECK_INT(smtp_cmd_parse_bdat(slice_from("100"), &n, &last), 0);
	CHECK(n == 100 && !last);
	CHECK_INT(smtp_cmd_parse_bdat(slice_from("0 LAST"), &n, &last), 0);
	CHECK(n == 0 && last);
	CHECK_INT(smtp_cmd_parse_bdat(slice_from("7 last"), &n, &last), 0);
	CHECK(last);
	CHECK_INT(smtp_cmd_parse_bdat(slice_from(""), &n, &last), -1);
	CHECK_INT(smtp_cmd_parse_bdat(slice_from("-1"), &n, &last), -1);
	CHECK_INT(smtp_cmd_parse_bdat(slice_from("1 FIRST"), &n, &last), -1);
	CHECK_INT(smtp_cmd_parse_bdat(slice_from("18446744073709551616"), &n, &last), -1);
	char out[16];
	CHECK_INT(smtp_xtext_decode(slice_from("a+2Bb+3Dc"), out, sizeof out), 0);
	CHECK_STR(out, "a+b=c");
	CHECK_INT(smtp_xtext_decode(slice_from("a+2"), out, sizeof out), -1);
	CHECK_INT(smtp_xtext_decode(slice_from("a b"), out, sizeof out), -1);
	CHECK_INT(smtp_xtext_decode(slice_from("0123456789abcdef"), out, sizeof out), -1);
	CHECK(smtp_cmd_domain_is_valid(slice_from("localhost"), false));
	CHECK(smtp_cmd_domain_is_valid(slice_from("a-b.example"), false));
	CHECK(!smtp_cmd_domain_is_valid(slice_from("a_b.example"), false));
	CHECK(!smtp_cmd_domain_is_valid(slice_from("b\xc3\xbc.example"), false));
	CHECK(smtp_cmd_domain_is_valid(slice_from("b\xc3\xbc.example"), true));
	CHECK(!smtp_cmd_domain_is_valid(slice_from("example."), false));
	CHECK(smtp_cmd_addr_literal_is_valid(slice_from("[192.0.2.1]")));
	CHECK(smtp_cmd_addr_literal_is_valid(slice_from("[IPv6:::1]")));
	CHECK(smtp_cmd_addr_literal_is_valid(slice_from("[x-tag:abc]")));
	CHECK(!smtp_cmd_addr_literal_is_valid(slice_from("[1.2.3]")));
	CHECK(!smtp_cmd_addr_literal_is_valid(slice_from("[]")));
	/* RFC 3629 UTF-8 validity (mail/addr) used for SMTPUTF8 paths */
	CHECK(addr_utf8_is_valid(slice_from("plain")));
	CHECK(addr_utf8_is_valid(slice_from("\xc3\xb6\xe2\x82\xac\xf0\x9f\x98\x80")));
	CHECK(!addr_utf8_is_valid(slice_from("\xc0\xaf")));         /* overlong */
	CHECK(!addr_utf8_is_valid(slice_from("\xe0\x80\xaf")));     /* overlong */
	CHECK(!addr_utf8_is_valid(slice_from("\xed\xa0\x80")));     /* surrogate */
	CHECK(!addr_utf8_is_valid(slice_from("\xf4\x90\x80\x80"))); /* > U+10FFFF */
	CHECK(!addr_utf8_is_valid(slice_from("\xc3")));             /* truncated */
	CHECK(!addr_utf8_is_valid(slice_from("\x80")));
	CHECK(smtp_cmd_helo_is_valid(slice_from("my_host.example")));
	CHECK(smtp_cmd_helo_is_valid(slice_from("[127.0.0.1]")));
	CHECK(!smtp_cmd_helo_is_valid(slice_from("")));
	CHECK(!smtp_cmd_helo_is_valid(slice_from("a b")));
	CHECK(!smtp_cmd_helo_is_valid(slice_from("a(b)")));
}

int
main(void)
{
	RUN(test_framing);
	RUN(test_limits);
	RUN(test_auth_mode_and_reset);
	RUN(test_mail);
	RUN(test_rcpt);
	RUN(test_bdat_xtext_domains);
	return test_done("smtp_cmd_parser");
}
