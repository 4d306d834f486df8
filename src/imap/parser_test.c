/* Unit tests for src/imap/parser.c, seqset.c and mutf7.c: command framing with literals (whole,
 * one byte at a time and in threes), limits with bounded memory, line mode, refused literals,
 * discard; the cursor grammar helpers; sequence sets; modified UTF-7 (RFC 3501 §5.1.3). */
#include <stdint.h>
#include <string.h>

#include "imap/parser.h"
#include "test.h"
#include "util/buf.h"

static const struct imap_reader_limits lim_small = {
    .line_max = 100, .literal_max = 1000, .command_max = 2000, .literal_plus = false};
static const struct imap_reader_limits lim_big = {
    .line_max = 100, .literal_max = 10000, .command_max = 20000, .literal_plus = false};
static const struct imap_reader_limits lim_plus = {
    .line_max = 100, .literal_max = 10000, .command_max = 20000, .literal_plus = true};

static void
log_bytes(struct buf *log, struct slice s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c == '\r')
			buf_append_str(log, "\\r");
		else if (c == '\n')
			buf_append_str(log, "\\n");
		else if (c < 0x20 || c >= 0x7f)
			buf_printf(log, "\\x%02x", c);
		else
			buf_append_byte(log, c);
	}
}

/* Feeds in with the given step (0 = whole) and records every event as a line of text:
 * "CMD <bytes>", "CONT <n>", "LONG <tag>", "BIG <n> <tag>", plus "PARTIAL" when bytes are left
 * buffered. refuse: answer every CONTINUE with imap_reader_refuse_literal. *maxbuf_r gets the
 * largest imap_reader_buffered() seen. */
static void
run_reader(const struct imap_reader_limits *lim, const char *in, size_t len, size_t step,
           bool refuse, struct buf *log, size_t *maxbuf_r)
{
	struct imap_reader *r = imap_reader_new(lim);
	size_t off = 0, maxbuf = 0;
	while (off < len) {
		size_t n = step ? (len - off < step ? len - off : step) : len - off;
		const unsigned char *chunk = (const unsigned char *)in + off;
		size_t done = 0;
		for (;;) {
			size_t used = 0;
			struct slice cmd = {NULL, 0};
			uint64_t lit = 0;
			enum imap_read ev =
			    imap_reader_feed(r, chunk + done, n - done, &used, &cmd, &lit);
			done += used;
			if (imap_reader_buffered(r) > maxbuf)
				maxbuf = imap_reader_buffered(r);
			if (ev == IMAP_READ_NEED_MORE) {
				CHECK(done == n);
				break;
			}
			switch (ev) {
			case IMAP_READ_COMMAND:
				buf_append_str(log, "CMD ");
				log_bytes(log, cmd);
				break;
			case IMAP_READ_CONTINUE:
				buf_printf(log, "CONT %llu", (unsigned long long)lit);
				if (refuse)
					imap_reader_refuse_literal(r);
				break;
			case IMAP_READ_LINE_LONG:
				buf_append_str(log, "LONG ");
				log_bytes(log, cmd);
				break;
			case IMAP_READ_LITERAL_BIG:
				buf_printf(log, "BIG %llu ", (unsigned long long)lit);
				log_bytes(log, cmd);
				break;
			default:
				break;
			}
			buf_append_str(log, "\n");
		}
		off += n;
	}
	if (imap_reader_buffered(r) > 0)
		buf_append_str(log, "PARTIAL\n");
	if (maxbuf_r)
		*maxbuf_r = maxbuf;
	imap_reader_free(&r);
	CHECK(r == NULL);
}

static void
check_reader(const struct imap_reader_limits *lim, const char *in, size_t len, bool refuse,
             const char *want)
{
	static const size_t steps[] = {0, 1, 3, 7};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct buf log;
		buf_init(&log, 0);
		run_reader(lim, in, len, steps[i], refuse, &log, NULL);
		CHECK_STR(buf_cstr(&log), want);
		if (strcmp(buf_cstr(&log), want) != 0)
			fprintf(stderr, "    (step %zu)\n", steps[i]);
		buf_deinit(&log);
	}
}

static void
test_reader_framing(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"a NOOP\r\n", "CMD a NOOP\n"},
	    {"a NOOP\n", "CMD a NOOP\n"},
	    {"\r\n", "CMD \n"},
	    {"a1 LOGIN u p\r\nb2 LOGOUT\r\nc3 CAPABILITY\n",
	     "CMD a1 LOGIN u p\nCMD b2 LOGOUT\nCMD c3 CAPABILITY\n"},
	    {"a NOOP", "PARTIAL\n"},
	    {"a NOOP\r", "PARTIAL\n"},
	    {"a APPEND INBOX {5}\r\nhello\r\n", "CONT 5\nCMD a APPEND INBOX {5}\\r\\nhello\n"},
	    {"a APPEND INBOX (\\Seen) {5}\nhello\n",
	     "CONT 5\nCMD a APPEND INBOX (\\Seen) {5}\\nhello\n"},
	    {"a APPEND INBOX {5+}\r\nhello\r\nb NOOP\r\n",
	     "CMD a APPEND INBOX {5+}\\r\\nhello\nCMD b NOOP\n"},
	    {"a LOGIN {1}\r\nu {1}\r\np\r\n",
	     "CONT 1\nCONT 1\nCMD a LOGIN {1}\\r\\nu {1}\\r\\np\n"},
	    {"a LOGIN {1+}\r\nu {1+}\r\np\r\n", "CMD a LOGIN {1+}\\r\\nu {1+}\\r\\np\n"},
	    /* literal bytes are never scanned for CRLF or "{N}" */
	    {"a X {5}\r\n{3}\r\n\r\n", "CONT 5\nCMD a X {5}\\r\\n{3}\\r\\n\n"},
	    {"a X {0}\r\n\r\n", "CONT 0\nCMD a X {0}\\r\\n\n"},
	    {"a X {0+}\r\n y\r\n", "CMD a X {0+}\\r\\n y\n"},
	    /* not literal announcements */
	    {"a X {5} y\r\n", "CMD a X {5} y\n"},
	    {"a X {}\r\n", "CMD a X {}\n"},
	    {"a X {5++}\r\n", "CMD a X {5++}\n"},
	    {"a X {x}\r\n", "CMD a X {x}\n"},
	    {"a X {123456789012345678901}\r\n", "CMD a X {123456789012345678901}\n"},
	    /* bare CR and NUL are passed on (the cursor refuses them) */
	    {"a X\ry\r\n", "CMD a X\\ry\n"},
	    /* literal over literal_max: sync drops the command, the client sends nothing */
	    {"a APPEND INBOX {1001}\r\nb NOOP\r\n", "BIG 1001 a\nCMD b NOOP\n"},
	    {"a APPEND INBOX {1000}\r\n", "CONT 1000\nPARTIAL\n"},
	    {"a APPEND INBOX {99999999999999999999}\r\nb NOOP\r\n",
	     "BIG 18446744073709551615 a\nCMD b NOOP\n"},
	    {"{2000}\r\nb NOOP\r\n", "BIG 2000 \nCMD b NOOP\n"},
	    /* ... a non-sync one is swallowed with the rest of its command */
	    {"t1 APPEND INBOX {1001+}\r\n", "BIG 1001 t1\n"},
	    /* LITERAL-: a non-sync literal over 4096 */
	    {"a LOGIN {4097+}\r\n", "BIG 4097 a\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_reader(&lim_small, cases[i].in, strlen(cases[i].in), false, cases[i].want);
	/* NUL inside a line */
	check_reader(&lim_small, "a X\0y\r\nb\r\n", 10, false, "CMD a X\\x00y\nCMD b\n");
}

/* Builds prefix + n times ch + suffix. */
static void
make(struct buf *b, const char *prefix, size_t n, char ch, const char *suffix)
{
	buf_reset(b);
	buf_append_str(b, prefix);
	for (size_t i = 0; i < n; i++)
		buf_append_byte(b, (unsigned char)ch);
	buf_append_str(b, suffix);
}

static void
test_reader_literal_limits(void)
{
	struct buf in, want;
	buf_init(&in, 0);
	buf_init(&want, 0);
	/* LITERAL-: 4096 non-sync is fine, 4097 is refused and swallowed with its command */
	make(&in, "a APPEND INBOX {4096+}\r\n", 4096, 'x', "\r\nb NOOP\r\n");
	make(&want, "CMD a APPEND INBOX {4096+}\\r\\n", 4096, 'x', "\nCMD b NOOP\n");
	check_reader(&lim_big, (const char *)in.data, in.len, false, buf_cstr(&want));
	make(&in, "a APPEND INBOX {4097+}\r\n", 4097, 'x', " {3+}\r\nabc\r\nb NOOP\r\n");
	check_reader(&lim_big, (const char *)in.data, in.len, false, "BIG 4097 a\nCMD b NOOP\n");
	/* the same with LITERAL+ */
	make(&in, "a APPEND INBOX {4097+}\r\n", 4097, 'x', "\r\nb NOOP\r\n");
	make(&want, "CMD a APPEND INBOX {4097+}\\r\\n", 4097, 'x', "\nCMD b NOOP\n");
	check_reader(&lim_plus, (const char *)in.data, in.len, false, buf_cstr(&want));
	/* a sync 4097 is fine under LITERAL- */
	make(&in, "a APPEND INBOX {4097}\r\n", 4097, 'x', "\r\n");
	make(&want, "CONT 4097\nCMD a APPEND INBOX {4097}\\r\\n", 4097, 'x', "\n");
	check_reader(&lim_big, (const char *)in.data, in.len, false, buf_cstr(&want));
	/* a sync literal after a swallowed one ends the dropped command */
	make(&in, "a X {5000+}\r\n", 5000, 'x', " {3}\r\nb NOOP\r\n");
	check_reader(&lim_big, (const char *)in.data, in.len, false, "BIG 5000 a\nCMD b NOOP\n");
	/* command_max: the third 900-byte literal would exceed 2000 */
	buf_reset(&in);
	buf_append_str(&in, "a X {900}\r\n");
	make(&want, "", 900, 'y', " {900}\r\n");
	buf_append(&in, want.data, want.len);
	buf_append(&in, want.data, want.len);
	buf_append_str(&in, "b NOOP\r\n");
	check_reader(&lim_small, (const char *)in.data, in.len, false,
	             "CONT 900\nCONT 900\nBIG 900 a\nCMD b NOOP\n");
	/* refused literal: the client does not send it */
	check_reader(&lim_small, "a APPEND x {10}\r\nb NOOP\r\n", 25, true,
	             "CONT 10\nCMD b NOOP\n");
	buf_deinit(&in);
	buf_deinit(&want);
}

static void
test_reader_line_limits(void)
{
	struct buf in;
	buf_init(&in, 0);
	/* line_max counts the CRLF: 98 + 2 = 100 fits, 101 does not */
	make(&in, "a ", 96, 'x', "\r\nb NOOP\r\n");
	CHECK(strncmp(buf_cstr(&in), "a xxx", 5) == 0);
	struct buf log;
	buf_init(&log, 0);
	run_reader(&lim_small, (const char *)in.data, in.len, 1, false, &log, NULL);
	CHECK(strncmp(buf_cstr(&log), "CMD a xxxx", 10) == 0);
	CHECK(strstr(buf_cstr(&log), "\nCMD b NOOP\n") != NULL);
	make(&in, "a ", 97, 'x', "\r\nb NOOP\r\n");
	check_reader(&lim_small, (const char *)in.data, in.len, false, "LONG a\nCMD b NOOP\n");
	make(&in, "a ", 98, 'x', "\nb NOOP\r\n");
	check_reader(&lim_small, (const char *)in.data, in.len, false, "LONG a\nCMD b NOOP\n");
	/* no tag to report */
	make(&in, "", 300, 'x', "\r\nb NOOP\r\n");
	check_reader(&lim_small, (const char *)in.data, in.len, false, "LONG \nCMD b NOOP\n");
	make(&in, "(", 300, 'x', "\r\nb NOOP\r\n");
	check_reader(&lim_small, (const char *)in.data, in.len, false, "LONG \nCMD b NOOP\n");
	/* a too-long line ending with a non-sync literal: the literal is swallowed too */
	make(&in, "a ", 300, 'x', " {5+}\r\nhello rest\r\nb NOOP\r\n");
	check_reader(&lim_small, (const char *)in.data, in.len, false, "LONG a\nCMD b NOOP\n");
	/* a too-long line after a literal still reports the command's tag */
	make(&in, "tag5 X {3}\r\nabc", 300, 'x', "\r\nb NOOP\r\n");
	check_reader(&lim_small, (const char *)in.data, in.len, false,
	             "CONT 3\nLONG tag5\nCMD b NOOP\n");
	/* 10 MB of junk on one line: memory stays bounded by line_max */
	const size_t junk = 10 * 1024 * 1024;
	make(&in, "a1 APPEND ", junk, 'j', "\r\na2 NOOP\r\n");
	static const size_t steps[] = {0, 65536, 4093};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		size_t maxbuf = 0;
		buf_reset(&log);
		run_reader(&lim_small, (const char *)in.data, in.len, steps[i], false, &log,
		           &maxbuf);
		CHECK_STR(buf_cstr(&log), "LONG a1\nCMD a2 NOOP\n");
		CHECK(maxbuf <= lim_small.line_max);
	}
	/* junk with no LF at all: nothing reported yet, nothing buffered */
	buf_reset(&log);
	size_t maxbuf = 0;
	run_reader(&lim_small, (const char *)in.data, junk, 4096, false, &log, &maxbuf);
	CHECK_STR(buf_cstr(&log), "");
	CHECK(maxbuf <= lim_small.line_max);
	buf_deinit(&log);
	buf_deinit(&in);
}

static enum imap_read
feed_str(struct imap_reader *r, const char *s, size_t *used_r, struct slice *cmd_r)
{
	uint64_t lit = 0;
	return imap_reader_feed(r, (const unsigned char *)s, strlen(s), used_r, cmd_r, &lit);
}

static void
test_reader_modes(void)
{
	struct imap_reader *r = imap_reader_new(&lim_small);
	size_t used;
	struct slice cmd;
	/* line mode: the next line as-is, with no literal detection, then back to normal */
	CHECK_INT(feed_str(r, "a AUTHENTICATE PLAIN\r\n", &used, &cmd), IMAP_READ_COMMAND);
	imap_reader_line_mode(r);
	CHECK_INT(feed_str(r, "dGVzdA== {5}\r\n", &used, &cmd), IMAP_READ_COMMAND);
	CHECK(slice_eq(cmd, "dGVzdA== {5}"));
	CHECK_INT(used, 14);
	CHECK_INT(feed_str(r, "b X {5}\r\n", &used, &cmd), IMAP_READ_CONTINUE);
	imap_reader_refuse_literal(r);
	/* line mode set while idle; a too-long line reports no tag */
	imap_reader_line_mode(r);
	char longl[300];
	memset(longl, 'A', sizeof longl - 3);
	memcpy(longl + sizeof longl - 3, "\r\n", 3);
	longl[3] = ' ';
	CHECK_INT(feed_str(r, longl, &used, &cmd), IMAP_READ_LINE_LONG);
	CHECK_INT(cmd.len, 0);
	CHECK_INT(feed_str(r, "DONE\r\n", &used, &cmd), IMAP_READ_COMMAND);
	CHECK(slice_eq(cmd, "DONE"));
	/* discard: a STARTTLS with pipelined plaintext */
	const char *in = "c STARTTLS\r\nd NO";
	CHECK_INT(feed_str(r, in, &used, &cmd), IMAP_READ_COMMAND);
	CHECK(slice_eq(cmd, "c STARTTLS"));
	CHECK_INT(imap_reader_discard(r), 0);
	CHECK_INT(feed_str(r, in + used, &used, &cmd), IMAP_READ_NEED_MORE);
	CHECK_INT(imap_reader_buffered(r), 4);
	CHECK_INT(imap_reader_discard(r), 4);
	CHECK_INT(imap_reader_buffered(r), 0);
	CHECK_INT(feed_str(r, "OP\r\ne NOOP\r\n", &used, &cmd), IMAP_READ_COMMAND);
	CHECK(slice_eq(cmd, "OP"));
	/* new limits apply from the next command */
	CHECK_INT(feed_str(r, "f X", &used, &cmd), IMAP_READ_NEED_MORE);
	imap_reader_set_limits(
	    r, &(struct imap_reader_limits){.line_max = 10, .literal_max = 10, .command_max = 100});
	CHECK_INT(feed_str(r, " 0123456789\r\n", &used, &cmd), IMAP_READ_COMMAND);
	CHECK(slice_eq(cmd, "f X 0123456789"));
	CHECK_INT(feed_str(r, "g X 0123456789\r\n", &used, &cmd), IMAP_READ_LINE_LONG);
	CHECK(slice_eq(cmd, "g"));
	CHECK_INT(feed_str(r, "h {11}\r\n", &used, &cmd), IMAP_READ_LITERAL_BIG);
	CHECK(slice_eq(cmd, "h"));
	CHECK_INT(feed_str(r, "", &used, &cmd), IMAP_READ_NEED_MORE);
	CHECK_INT(used, 0);
	imap_reader_free(&r);
	imap_reader_free(&r); /* NULL is fine */
}

/* ---- cursor ---- */

static struct imap_cursor
cur(const char *s)
{
	struct imap_cursor c;
	imap_cur_init(&c, slice_from(s), 4);
	return c;
}

static void
test_cursor_basic(void)
{
	struct imap_cursor c = cur("a001 LOGIN ]x ok");
	struct slice s;
	CHECK(imap_cur_tag(&c, &s) && slice_eq(s, "a001"));
	CHECK(imap_cur_sp(&c));
	CHECK(imap_cur_atom(&c, &s) && slice_eq(s, "LOGIN"));
	CHECK(imap_cur_sp(&c));
	CHECK(!imap_cur_atom(&c, &s));
	CHECK_STR(c.error, "Invalid characters in atom");
	struct buf b;
	buf_init(&b, 0);
	CHECK(imap_cur_astring(&c, &b));
	CHECK_STR(buf_cstr(&b), "]x");
	CHECK(!imap_cur_eol(&c));
	CHECK_STR(c.error, "Invalid characters in atom"); /* the first error stays */
	CHECK(imap_cur_peek(&c) == ' ');
	CHECK(imap_cur_skip(&c, ' ') && !imap_cur_skip(&c, ' '));
	CHECK(imap_cur_atom(&c, &s) && imap_cur_at_end(&c) && imap_cur_peek(&c) == -1);
	c = cur("a");
	CHECK(imap_cur_atom(&c, NULL) && !imap_cur_sp(&c));
	CHECK_STR(c.error, "Missing argument");
	c = cur("+ x");
	CHECK(!imap_cur_tag(&c, &s) && c.p == c.end - 3);
	c = cur("* x");
	CHECK(!imap_cur_tag(&c, &s));
	c = cur("x y");
	CHECK(imap_cur_atom(&c, NULL) && !imap_cur_eol(&c));
	CHECK_STR(c.error, "Unexpected extra arguments");
	buf_deinit(&b);
}

static void
test_cursor_strings(void)
{
	static const struct {
		const char *in;
		int fn; /* 0 string, 1 astring, 2 nstring, 3 list_mailbox */
		bool ok;
		const char *out; /* decoded value ("NIL" marks nil) */
		size_t rest;     /* bytes left after */
	} cases[] = {
	    {"\"hello world\" x", 0, true, "hello world", 2},
	    {"\"a\\\"b\\\\c\"", 0, true, "a\"b\\c", 0},
	    {"\"\"", 0, true, "", 0},
	    {"\"a\\b\"", 0, false, NULL, 5},
	    {"\"unterminated", 0, false, NULL, 13},
	    {"\"caf\xc3\xa9\"", 0, true, "caf\xc3\xa9", 0},
	    {"\"a\rb\"", 0, false, NULL, 5},
	    {"{5}\r\nhello rest", 0, true, "hello", 5},
	    {"{5+}\r\nhe\"lo", 0, true, "he\"lo", 0},
	    {"{5}\nhello", 0, true, "hello", 0},
	    {"{0}\r\n", 0, true, "", 0},
	    {"{6}\r\nhello", 0, false, NULL, 10},
	    {"{5}hello", 0, false, NULL, 8},
	    {"{5 }\r\nhello", 0, false, NULL, 11},
	    {"{99999999999999999999}\r\n", 0, false, NULL, 24},
	    {"atom", 0, false, NULL, 4},
	    {"atom] x", 1, true, "atom]", 2},
	    {"\"q\"", 1, true, "q", 0},
	    {"{1}\r\nq", 1, true, "q", 0},
	    {"(x", 1, false, NULL, 2},
	    {"%x", 1, false, NULL, 2},
	    {"NIL", 2, true, "NIL", 0},
	    {"nil)", 2, true, "NIL", 1},
	    {"NILS", 2, false, NULL, 4},
	    {"\"NIL\"", 2, true, "NIL\"", 0},
	    {"foo/%/*] x", 3, true, "foo/%/*]", 2},
	    {"\"*\"", 3, true, "*", 0},
	    {"(", 3, false, NULL, 1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct imap_cursor c = cur(cases[i].in);
		struct buf b;
		buf_init(&b, 0);
		bool ok = false, nil = false, lit = false;
		switch (cases[i].fn) {
		case 0:
			ok = imap_cur_string(&c, &b, &lit);
			break;
		case 1:
			ok = imap_cur_astring(&c, &b);
			break;
		case 2:
			ok = imap_cur_nstring(&c, &b, &nil);
			if (nil)
				buf_append_str(&b, "NIL");
			else if (ok)
				buf_append_str(&b, "\""); /* marks a string */
			break;
		default:
			ok = imap_cur_list_mailbox(&c, &b);
			break;
		}
		if (ok != cases[i].ok)
			fprintf(stderr, "    case %zu: %s\n", i, cases[i].in);
		CHECK(ok == cases[i].ok);
		if (cases[i].fn == 2 && ok && !nil) {
			CHECK(b.len > 0);
		} else if (ok) {
			CHECK_STR(buf_cstr(&b), cases[i].out);
		} else {
			CHECK(c.error != NULL);
			CHECK_INT(b.len, 0);
		}
		CHECK_INT((size_t)(c.end - c.p), cases[i].rest);
		buf_deinit(&b);
	}
	/* a literal's flag, and NUL refused in literals */
	struct imap_cursor c = cur("{1}\r\nx");
	bool lit = false;
	CHECK(imap_cur_string(&c, NULL, &lit) && lit);
	imap_cur_init(&c, slice_make("{3}\r\na\0b", 8), 4);
	CHECK(!imap_cur_string(&c, NULL, NULL));
	/* out's max is honoured and out is restored */
	struct buf small;
	buf_init(&small, 4);
	buf_append_str(&small, "ab");
	c = cur("\"cdef\"");
	CHECK(!imap_cur_string(&c, &small, NULL));
	CHECK_STR(c.error, "String too long");
	CHECK_STR(buf_cstr(&small), "ab");
	buf_deinit(&small);
}

static void
test_cursor_numbers(void)
{
	struct imap_cursor c = cur("4294967295 4294967296 0 01 9223372036854775807 "
	                           "9223372036854775808 x");
	uint32_t n;
	uint64_t v;
	CHECK(imap_cur_number(&c, &n) && n == 4294967295u);
	CHECK(imap_cur_sp(&c));
	CHECK(!imap_cur_number(&c, &n));
	CHECK_STR(c.error, "Number too big");
	CHECK(imap_cur_number64(&c, &v) && v == 4294967296ull);
	CHECK(imap_cur_sp(&c));
	CHECK(!imap_cur_nz_number(&c, &n));
	CHECK(imap_cur_number(&c, &n) && n == 0);
	CHECK(imap_cur_sp(&c));
	CHECK(!imap_cur_nz_number(&c, &n));
	CHECK(imap_cur_number(&c, &n) && n == 1);
	CHECK(imap_cur_sp(&c));
	CHECK(imap_cur_number64(&c, &v) && v == 9223372036854775807ull);
	CHECK(imap_cur_sp(&c));
	CHECK(!imap_cur_number64(&c, &v));
	c = cur("x");
	CHECK(!imap_cur_number(&c, &n));
	CHECK_STR(c.error, "Expected a number");
	c = cur("");
	CHECK(!imap_cur_nz_number(&c, &n));
	CHECK_STR(c.error, "Missing argument");
	c = cur("7)");
	CHECK(imap_cur_nz_number(&c, &n) && n == 7 && imap_cur_peek(&c) == ')');
}

static void
test_cursor_lists(void)
{
	struct imap_cursor c = cur("(((((x");
	CHECK(imap_cur_list_open(&c) && imap_cur_list_open(&c) && imap_cur_list_open(&c));
	CHECK(imap_cur_list_open(&c) && c.depth == 4);
	CHECK(!imap_cur_list_open(&c));
	CHECK_STR(c.error, "Too deeply nested");
	c = cur("(a)");
	CHECK(imap_cur_list_open(&c) && !imap_cur_list_close(&c));
	CHECK(imap_cur_atom(&c, NULL) && imap_cur_list_close(&c) && c.depth == 0);
	CHECK(imap_cur_eol(&c));
}

static void
test_cursor_dates(void)
{
	static const struct {
		const char *in;
		bool datetime, ok;
		int64_t t;
	} cases[] = {
	    {"1-Feb-1994", false, true, 760060800},
	    {"01-feb-1994", false, true, 760060800},
	    {"\"1-Feb-1994\"", false, true, 760060800},
	    {"1-Jan-1970", false, true, 0},
	    {"29-Feb-2000", false, true, 951782400},
	    {"29-Feb-1900", false, false, 0},
	    {"29-Feb-2001", false, false, 0},
	    {"31-Apr-2020", false, false, 0},
	    {"0-Jan-2020", false, false, 0},
	    {"1-Foo-2020", false, false, 0},
	    {"1-Jan-20", false, false, 0},
	    {"\"1-Feb-1994", false, false, 0},
	    {"1-Feb-1994\"", false, true, 760060800},
	    {"\"17-Jul-1996 02:44:25 -0700\"", true, true, 837596665},
	    {"\"17-Jul-1996 09:44:25 +0000\"", true, true, 837596665},
	    {"\"17-Jul-1996 11:14:25 +0130\"", true, true, 837596665},
	    {"\" 1-Jan-1970 00:00:00 +0000\"", true, true, 0},
	    {"\"01-Jan-1970 00:00:00 +0100\"", true, true, -3600},
	    {"\"31-Dec-1999 23:59:59 -0000\"", true, true, 946684799},
	    {"\"17-Jul-1996 24:00:00 -0700\"", true, false, 0},
	    {"\"17-Jul-1996 02:60:00 -0700\"", true, false, 0},
	    {"\"17-Jul-1996 02:44:25 -0760\"", true, false, 0},
	    {"\"17-Jul-1996 02:44:25 0700\"", true, false, 0},
	    {"\"17-Jul-1996 02:44:25\"", true, false, 0},
	    {"17-Jul-1996 02:44:25 -0700", true, false, 0},
	    {"\"32-Jul-1996 02:44:25 -0700\"", true, false, 0},
	    {"\"17-Jul-1996 2:44:25 -0700\"", true, false, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct imap_cursor c = cur(cases[i].in);
		int64_t t = -1;
		bool ok = cases[i].datetime ? imap_cur_date_time(&c, &t) : imap_cur_date(&c, &t);
		if (ok != cases[i].ok || (ok && t != cases[i].t))
			fprintf(stderr, "    case %zu: %s -> %d %lld\n", i, cases[i].in, ok,
			        (long long)t);
		CHECK(ok == cases[i].ok);
		if (ok) {
			CHECK(t == cases[i].t);
		} else {
			CHECK(c.error != NULL && c.p == cases[i].in);
		}
	}
	struct imap_cursor c = cur("1-Feb-1994\"");
	int64_t t;
	CHECK(imap_cur_date(&c, &t) && imap_cur_peek(&c) == '"');
}

static void
test_cursor_fetch_att(void)
{
	static const struct {
		const char *in, *att; /* att NULL: refused */
	} cases[] = {
	    {"FLAGS", "FLAGS"},
	    {"BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID",
	     "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>"},
	    {"BINARY.PEEK[1]<0.10>)", "BINARY.PEEK[1]<0.10>"},
	    {"BODY[]", "BODY[]"},
	    {"BODY[1.2.MIME]", "BODY[1.2.MIME]"},
	    {"BODY[HEADER.FIELDS (\"X-A]\" {1}\r\nB)]", "BODY[HEADER.FIELDS (\"X-A]\" {1}\r\nB)]"},
	    {"\\Seen \\Answered", "\\Seen"},
	    {"$Forwarded)", "$Forwarded"},
	    {"FLAGS.SILENT", "FLAGS.SILENT"},
	    {"BODY[HEADER", NULL},
	    {"BODY[(((((x)))))]", NULL},
	    {"BODY[a)]", NULL},
	    {"BODY[a[b]]", NULL},
	    {"BODY[a\rb]", NULL},
	    {"(FLAGS)", NULL},
	    {"", NULL},
	    {"]", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct imap_cursor c = cur(cases[i].in);
		struct slice s = {NULL, 0};
		bool ok = imap_cur_fetch_att(&c, &s);
		CHECK(ok == (cases[i].att != NULL));
		if (ok) {
			CHECK(slice_eq(s, cases[i].att));
		} else {
			CHECK(c.error != NULL && c.p == cases[i].in);
		}
	}
}

static void
test_cursor_seqset(void)
{
	static const struct {
		const char *in;
		bool dollar_ok, ok;
		const char *ranges; /* "lo:hi," each; "$" for dollar */
	} cases[] = {
	    {"1", false, true, "1:1,"},
	    {"1,3:5,*,7:*", false, true, "1:1,3:5,0:0,7:0,"},
	    {"*:*", false, true, "0:0,"},
	    {"5:2 x", false, true, "5:2,"},
	    {"4294967295", false, true, "4294967295:4294967295,"},
	    {"$", true, true, "$"},
	    {"$ ", true, true, "$"},
	    {"$", false, false, NULL},
	    {"$,1", true, false, NULL},
	    {"0", false, false, NULL},
	    {"1:0", false, false, NULL},
	    {"01", false, false, NULL},
	    {"4294967296", false, false, NULL},
	    {"1,", false, false, NULL},
	    {",1", false, false, NULL},
	    {"1,,2", false, false, NULL},
	    {"1:", false, false, NULL},
	    {":1", false, false, NULL},
	    {"", false, false, NULL},
	    {"x", false, false, NULL},
	};
	struct imap_seqset s;
	imap_seqset_init(&s);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct imap_cursor c = cur(cases[i].in);
		bool ok = imap_cur_seqset(&c, &s, cases[i].dollar_ok);
		CHECK(ok == cases[i].ok);
		if (!ok) {
			CHECK(c.error != NULL && c.p == cases[i].in && s.n == 0);
			continue;
		}
		struct buf b;
		buf_init(&b, 0);
		if (s.dollar)
			buf_append_str(&b, "$");
		for (size_t k = 0; k < s.n; k++)
			buf_printf(&b, "%u:%u,", s.v[k].lo, s.v[k].hi);
		CHECK_STR(buf_cstr(&b), cases[i].ranges);
		buf_deinit(&b);
	}
	/* IMAP_SEQSET_MAX_RANGES */
	struct buf in;
	buf_init(&in, 0);
	for (int k = 1; k <= IMAP_SEQSET_MAX_RANGES; k++)
		buf_printf(&in, "%s%d", k > 1 ? "," : "", 2 * k);
	struct imap_cursor c;
	imap_cur_init(&c, buf_slice(&in), 4);
	CHECK(imap_cur_seqset(&c, &s, false) && s.n == IMAP_SEQSET_MAX_RANGES);
	buf_append_str(&in, ",1");
	imap_cur_init(&c, buf_slice(&in), 4);
	CHECK(!imap_cur_seqset(&c, &s, false));
	CHECK_STR(c.error, "Sequence set too long");
	buf_deinit(&in);
	imap_seqset_deinit(&s);
}

/* ---- sequence sets ---- */

static void
test_seqset_resolve(void)
{
	static const struct {
		const char *in;
		uint32_t max;
		const char *want;             /* resolved ranges */
		const char *in_set, *out_set; /* numbers (comma separated) inside / outside */
	} cases[] = {
	    {"1,3:5,*,7:*", 10, "1:1,3:5,7:10,", "1,3,4,5,7,8,9,10", "2,6,11,0"},
	    {"*:*", 0, "", "", "0,1"},
	    {"1:*", 0, "", "", "0,1,2"},
	    {"*", 0, "", "", "1"},
	    {"5", 0, "5:5,", "5", "1"},
	    {"5:2", 10, "2:5,", "2,5", "1,6"},
	    {"20:*", 10, "10:20,", "10,15,20", "9,21"},
	    {"3,2,1,5:6,4", 10, "1:6,", "1,6", "7"},
	    {"4294967295,1:4294967294", 7, "1:4294967295,", "1,4294967295", "0"},
	    {"9:7,1:3,2:8", 20, "1:9,", "5", "10"},
	    {"1,3,5", 5, "1:1,3:3,5:5,", "1,3,5", "2,4,6"},
	};
	struct imap_seqset s;
	imap_seqset_init(&s);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct imap_cursor c = cur(cases[i].in);
		CHECK(imap_cur_seqset(&c, &s, false));
		imap_seqset_resolve(&s, cases[i].max);
		struct buf b;
		buf_init(&b, 0);
		for (size_t k = 0; k < s.n; k++)
			buf_printf(&b, "%u:%u,", s.v[k].lo, s.v[k].hi);
		CHECK_STR(buf_cstr(&b), cases[i].want);
		for (int pass = 0; pass < 2; pass++) {
			const char *list = pass ? cases[i].out_set : cases[i].in_set;
			struct slice rest = slice_from(list), one;
			while (rest.len > 0) {
				rest = slice_cut(rest, ',', &one);
				uint64_t v = 0;
				for (size_t k = 0; k < one.len; k++)
					v = v * 10 + (uint64_t)(one.p[k] - '0');
				if (imap_seqset_contains(&s, (uint32_t)v) != !pass)
					fprintf(stderr, "    case %zu: %llu\n", i,
					        (unsigned long long)v);
				CHECK(imap_seqset_contains(&s, (uint32_t)v) == !pass);
			}
		}
		buf_deinit(&b);
	}
	imap_seqset_reset(&s);
	CHECK(s.n == 0 && !s.dollar);
	CHECK(imap_seqset_add(&s, 3, 0) == 0);
	imap_seqset_resolve(&s, 2);
	CHECK(s.n == 1 && s.v[0].lo == 2 && s.v[0].hi == 3);
	imap_seqset_deinit(&s);
	imap_seqset_deinit(&s);
}

static void
test_seqset_format(void)
{
	static const uint32_t a[] = {1, 2, 3, 5, 7, 8, 9};
	static const uint32_t b[] = {4};
	static const uint32_t c[] = {1, 1, 2, 4294967294u, 4294967295u};
	struct buf out;
	buf_init(&out, 0);
	imap_seqset_format(&out, a, 7);
	CHECK_STR(buf_cstr(&out), "1:3,5,7:9");
	buf_reset(&out);
	imap_seqset_format(&out, b, 1);
	CHECK_STR(buf_cstr(&out), "4");
	buf_reset(&out);
	imap_seqset_format(&out, c, 5);
	CHECK_STR(buf_cstr(&out), "1:2,4294967294:4294967295");
	buf_reset(&out);
	imap_seqset_format(&out, NULL, 0);
	CHECK_STR(buf_cstr(&out), "");
	buf_deinit(&out);
}

/* ---- modified UTF-7 ---- */

static void
test_mutf7(void)
{
	static const struct {
		const char *utf7, *utf8;
	} pairs[] = {
	    {"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	                                        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
	    {"&Jjo-!", "\xe2\x98\xba!"},
	    {"Entw&APw-rfe", "Entw\xc3\xbc"
	                     "rfe"},
	    {"INBOX", "INBOX"},
	    {"", ""},
	    {"&-", "&"},
	    {"a&-b&-&-", "a&b&&"},
	    {"&AOQ-", "\xc3\xa4"},
	    {"&AOQA5A-", "\xc3\xa4\xc3\xa4"},
	    {"&AOQA5ADk-", "\xc3\xa4\xc3\xa4\xc3\xa4"},
	    {"&2D3eAA-", "\xf0\x9f\x98\x80"}, /* U+1F600 as a surrogate pair */
	    {"&AAk-", "\t"},
	    {"&AH8-", "\x7f"},
	};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		struct buf b;
		buf_init(&b, 0);
		CHECK(imap_mutf7_decode(slice_from(pairs[i].utf7), &b) == 0);
		CHECK_STR(buf_cstr(&b), pairs[i].utf8);
		buf_reset(&b);
		CHECK(imap_mutf7_encode(slice_from(pairs[i].utf8), &b) == 0);
		CHECK_STR(buf_cstr(&b), pairs[i].utf7);
		buf_deinit(&b);
	}
	static const char *const bad7[] = {
	    "&",           /* unterminated */
	    "a&U,BTFw",    /* unterminated */
	    "&U,BTFw-&",   /* unterminated */
	    "&AGE-",       /* "a" encoded */
	    "&ACY-",       /* "&" encoded */
	    "&AOQ",        /* no "-" */
	    "&AO-",        /* too few bits for a unit */
	    "&AOR-",       /* nonzero leftover bits */
	    "&AOQA-",      /* a leftover base64 char */
	    "&AOQ=-",      /* padding */
	    "&AO/k-",      /* "/" is not modified base64 */
	    "&2D0-",       /* lone high surrogate */
	    "&3gA-",       /* lone low surrogate */
	    "&2D3YPQ-",    /* high surrogate followed by a high one */
	    "&AAA-",       /* NUL */
	    "caf\xc3\xa9", /* 8-bit */
	    "a\tb",        /* control char not encoded */
	    "&Jjo!-",
	};
	for (size_t i = 0; i < sizeof bad7 / sizeof bad7[0]; i++) {
		struct buf b;
		buf_init(&b, 0);
		buf_append_str(&b, "keep");
		if (imap_mutf7_decode(slice_from(bad7[i]), &b) != -1)
			fprintf(stderr, "    accepted %s\n", bad7[i]);
		CHECK(imap_mutf7_decode(slice_from(bad7[i]), &b) == -1);
		CHECK_STR(buf_cstr(&b), "keep");
		buf_deinit(&b);
	}
	static const char *const bad8[] = {
	    "\xc3",             /* truncated */
	    "\xc0\xa0",         /* overlong */
	    "\xe0\x80\xaf",     /* overlong */
	    "\xed\xa0\x80",     /* surrogate */
	    "\xf4\x90\x80\x80", /* past U+10FFFF */
	    "\xff",
	    "a\x80",
	};
	for (size_t i = 0; i < sizeof bad8 / sizeof bad8[0]; i++) {
		struct buf b;
		buf_init(&b, 0);
		CHECK(imap_mutf7_encode(slice_from(bad8[i]), &b) == -1);
		CHECK_INT(b.len, 0);
		buf_deinit(&b);
	}
	struct buf b;
	buf_init(&b, 0);
	CHECK(imap_mutf7_encode(slice_make("a\0b", 3), &b) == -1);
	buf_deinit(&b);
	/* overflow of out's max is an error, out unchanged */
	buf_init(&b, 4);
	CHECK(imap_mutf7_decode(slice_from("&Jjo-!"), &b) == 0);
	buf_reset(&b);
	CHECK(imap_mutf7_decode(slice_from("&Jjo-!!"), &b) == -1 && b.len == 0);
	CHECK(imap_mutf7_encode(slice_from("\xe2\x98\xba"), &b) == -1 && b.len == 0);
	buf_deinit(&b);
}

/* ---- diverted literals ---- */

struct sink_rec {
	struct buf got;
	size_t calls;
	bool fail_after_first;
};

static int
rec_sink(void *ctx, const unsigned char *p, size_t n)
{
	struct sink_rec *k = ctx;
	k->calls++;
	(void)buf_append(&k->got, p, n);
	return k->fail_after_first ? -1 : 0;
}

/* Feeds in with the given step; diverts every literal of at least min bytes (events on). Logs
 * events like run_reader plus "DIV <off> <len> <data>" after each command with a diverted
 * literal, and "LIT <n>" for non-synchronizing announcements. */
static void
run_divert(const char *in, size_t len, size_t step, uint64_t min, struct buf *log, size_t *maxbuf_r)
{
	struct imap_reader *r = imap_reader_new(&lim_plus);
	imap_reader_literal_events(r, true);
	struct sink_rec k = {0};
	buf_init(&k.got, 0);
	size_t off = 0, maxbuf = 0;
	while (off < len) {
		size_t n = step ? (len - off < step ? len - off : step) : len - off;
		const unsigned char *chunk = (const unsigned char *)in + off;
		size_t done = 0;
		for (;;) {
			size_t used = 0, doff = 0;
			struct slice cmd = {NULL, 0};
			uint64_t lit = 0, dlen = 0;
			enum imap_read ev =
			    imap_reader_feed(r, chunk + done, n - done, &used, &cmd, &lit);
			done += used;
			if (imap_reader_buffered(r) > maxbuf)
				maxbuf = imap_reader_buffered(r);
			if (ev == IMAP_READ_NEED_MORE)
				break;
			switch (ev) {
			case IMAP_READ_CONTINUE:
			case IMAP_READ_LITERAL:
				buf_printf(log, "%s %llu\n",
				           ev == IMAP_READ_LITERAL ? "LIT" : "CONT",
				           (unsigned long long)lit);
				if (lit >= min) {
					bool first = imap_reader_divert(r, rec_sink, &k);
					CHECK(!imap_reader_divert(r, rec_sink, &k)); /* once */
					buf_printf(log, "%s\n", first ? "DIVERTED" : "INLINE");
				}
				break;
			case IMAP_READ_COMMAND:
				buf_append_str(log, "CMD ");
				log_bytes(log, cmd);
				buf_append_str(log, "\n");
				if (imap_reader_diverted(r, &doff, &dlen)) {
					buf_printf(log, "DIV %zu %llu ", doff,
					           (unsigned long long)dlen);
					log_bytes(log, buf_slice(&k.got));
					buf_append_str(log, "\n");
					buf_reset(&k.got);
				}
				break;
			default:
				buf_printf(log, "EV %d\n", (int)ev);
				break;
			}
		}
		off += n;
	}
	if (maxbuf_r)
		*maxbuf_r = maxbuf;
	buf_deinit(&k.got);
	imap_reader_free(&r);
}

static void
test_reader_divert(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"a APPEND INBOX {10}\r\n0123456789\r\n",
	     "CONT 10\nDIVERTED\nCMD a APPEND INBOX {10}\\r\\n\nDIV 21 10 0123456789\n"},
	    {"a APPEND INBOX {10+}\r\n0123456789 x\r\nb NOOP\r\n",
	     "LIT 10\nDIVERTED\nCMD a APPEND INBOX {10+}\\r\\n x\nDIV 22 10 0123456789\n"
	     "CMD b NOOP\n"},
	    /* small literals stay inline; only one literal per command is diverted */
	    {"a X {2}\r\nab {10}\r\n0123456789 {11}\r\n0123456789z\r\n",
	     "CONT 2\nCONT 10\nDIVERTED\nCONT 11\nINLINE\n"
	     "CMD a X {2}\\r\\nab {10}\\r\\n {11}\\r\\n0123456789z\nDIV 18 10 0123456789\n"},
	    {"a X {0}\r\n\r\n", "CONT 0\nCMD a X {0}\\r\\n\n"},
	    {"a X {4+}\r\nabcd\r\n", "LIT 4\nCMD a X {4+}\\r\\nabcd\n"},
	};
	static const size_t steps[] = {0, 1, 3, 7};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (size_t j = 0; j < sizeof steps / sizeof steps[0]; j++) {
			struct buf log;
			buf_init(&log, 0);
			run_divert(cases[i].in, strlen(cases[i].in), steps[j], 10, &log, NULL);
			CHECK_STR(buf_cstr(&log), cases[i].want);
			buf_deinit(&log);
		}
	}
	/* a big literal never sits in memory */
	size_t big = 9000, maxbuf = 0;
	struct buf in, log;
	buf_init(&in, 0);
	buf_init(&log, 0);
	buf_printf(&in, "a APPEND INBOX {%zu}\r\n", big);
	for (size_t i = 0; i < big; i++)
		buf_append_byte(&in, (unsigned char)('a' + i % 26));
	buf_append_str(&in, "\r\n");
	run_divert((const char *)in.data, in.len, 0, 100, &log, &maxbuf);
	CHECK(maxbuf < 100);
	CHECK(strstr(buf_cstr(&log), "DIV 23 9000 abcdef") != NULL);
	buf_reset(&log);
	run_divert((const char *)in.data, in.len, 1, 100, &log, &maxbuf);
	CHECK(maxbuf < 100);
	buf_deinit(&log);
	buf_deinit(&in);
	/* without events, non-synchronizing literals are silent; a failing sink gets one call */
	struct imap_reader *r = imap_reader_new(&lim_plus);
	struct sink_rec k = {.fail_after_first = true};
	buf_init(&k.got, 0);
	size_t used = 0, doff = 0;
	struct slice cmd;
	uint64_t lit = 0, dlen = 0;
	const char *s1 = "a X {5+}\r\nhello\r\n";
	CHECK_INT(imap_reader_feed(r, (const unsigned char *)s1, strlen(s1), &used, &cmd, &lit),
	          IMAP_READ_COMMAND);
	CHECK(!imap_reader_divert(r, rec_sink, &k));
	const char *s2 = "b X {5}\r\n";
	CHECK_INT(imap_reader_feed(r, (const unsigned char *)s2, strlen(s2), &used, &cmd, &lit),
	          IMAP_READ_CONTINUE);
	CHECK(imap_reader_divert(r, rec_sink, &k));
	for (const char *p = "hello\r\n"; *p; p++) {
		enum imap_read ev =
		    imap_reader_feed(r, (const unsigned char *)p, 1, &used, &cmd, &lit);
		CHECK(ev == (p[1] == '\0' ? IMAP_READ_COMMAND : IMAP_READ_NEED_MORE));
	}
	CHECK(k.calls == 1);
	CHECK(imap_reader_diverted(r, &doff, &dlen) && doff == 9 && dlen == 5);
	/* the cursor: only imap_cur_diverted takes it */
	struct imap_cursor c;
	imap_cur_init(&c, cmd, 8);
	imap_cur_set_diverted(&c, doff, dlen);
	struct slice t;
	struct buf out;
	buf_init(&out, 0);
	CHECK(imap_cur_tag(&c, &t) && imap_cur_sp(&c) && imap_cur_atom(&c, &t) && imap_cur_sp(&c));
	const char *at = c.p;
	CHECK(!imap_cur_string(&c, &out, NULL));
	CHECK_STR(c.error, "Unexpected large literal");
	CHECK(c.p == at);
	c.error = NULL;
	CHECK(!imap_cur_astring(&c, &out));
	c.error = NULL;
	CHECK(imap_cur_diverted(&c, &dlen) && dlen == 5);
	CHECK(c.error == NULL && imap_cur_eol(&c));
	/* an ordinary literal is not a diverted one */
	imap_cur_init(&c, slice_from("{3}\r\nabc"), 8);
	CHECK(!imap_cur_diverted(&c, &dlen) && c.error == NULL);
	imap_cur_set_diverted(&c, 8, 3);
	CHECK(!imap_cur_diverted(&c, &dlen) && c.error == NULL);
	CHECK(imap_cur_string(&c, &out, NULL));
	CHECK_STR(buf_cstr(&out), "abc");
	buf_deinit(&out);
	buf_deinit(&k.got);
	imap_reader_free(&r);
}

int
main(void)
{
	RUN(test_reader_framing);
	RUN(test_reader_literal_limits);
	RUN(test_reader_line_limits);
	RUN(test_reader_modes);
	RUN(test_cursor_basic);
	RUN(test_cursor_strings);
	RUN(test_cursor_numbers);
	RUN(test_cursor_lists);
	RUN(test_cursor_dates);
	RUN(test_cursor_fetch_att);
	RUN(test_cursor_seqset);
	RUN(test_seqset_resolve);
	RUN(test_seqset_format);
	RUN(test_mutf7);
	RUN(test_reader_divert);
	return test_done("imap_parser");
}
