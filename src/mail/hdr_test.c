/* Unit tests for src/mail/hdr: header iteration (folding, limits, malformed lines), unfolding,
 * and address-list extraction with display names, quoted strings, comments, groups, routes. */
#include <string.h>

#include "mail/hdr.h"
#include "test.h"
#include "util/arena.h"
#include "util/buf.h"

static void
test_iter(void)
{
	const char *m = "From: a@b.example\r\nSubject: one\r\n two\r\n\tthree\r\nX-Empty:\r\n"
	                "To : c@d.example\r\n\r\nBody: not a header\r\n";
	struct hdr_iter it;
	struct hdr_field f;
	const char *err;
	hdr_iter_init(&it, (const unsigned char *)m, strlen(m));
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_FIELD);
	CHECK(slice_eq(f.name, "From"));
	CHECK(slice_eq(f.value, " a@b.example"));
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_FIELD);
	CHECK(slice_eq(f.name, "Subject"));
	CHECK(slice_eq(f.value, " one\r\n two\r\n\tthree"));
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(hdr_unfold(f.value, &b), 0);
	CHECK_STR(buf_cstr(&b), " one two\tthree");
	buf_deinit(&b);
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_FIELD);
	CHECK(slice_eq(f.name, "X-Empty"));
	CHECK_INT(f.value.len, 0);
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_FIELD);
	CHECK(slice_eq(f.name, "To")); /* obs-optional WSP before ':' */
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_END);
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_END);

	/* LF-only lines, header-only message without a final break */
	const char *lf = "A: 1\nB: 2";
	hdr_iter_init(&it, (const unsigned char *)lf, strlen(lf));
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_FIELD);
	CHECK(slice_eq(f.value, " 1"));
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_FIELD);
	CHECK(slice_eq(f.value, " 2"));
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_END);

	const char *bad[] = {" folded first\r\n\r\n", "no colon here\r\n\r\n", ": x\r\n",
	                     "Na me: x\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		hdr_iter_init(&it, (const unsigned char *)bad[i], strlen(bad[i]));
		CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_ERROR);
		CHECK(err != NULL);
	}
	/* empty message, message starting with the blank line */
	hdr_iter_init(&it, (const unsigned char *)"", 0);
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_END);
	hdr_iter_init(&it, (const unsigned char *)"\r\nbody", 6);
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_END);
}

static void
test_limits(void)
{
	struct buf m;
	buf_init(&m, 0);
	for (int i = 0; i < HDR_FIELDS_MAX + 1; i++)
		buf_append_str(&m, "X: y\r\n");
	struct hdr_iter it;
	struct hdr_field f;
	const char *err = NULL;
	enum hdr_next r;
	int n = 0;
	hdr_iter_init(&it, m.data, m.len);
	while ((r = hdr_iter_next(&it, &f, &err)) == HDR_FIELD)
		n++;
	CHECK_INT(r, HDR_ERROR);
	CHECK_INT(n, HDR_FIELDS_MAX);
	CHECK_STR(err, "too many header fields");
	buf_reset(&m);
	buf_append_str(&m, "X: ");
	for (int i = 0; i < HDR_FIELD_MAX; i++)
		buf_append_byte(&m, i % 70 == 69 ? ' ' : 'a');
	buf_append_str(&m, "\r\n\r\n");
	hdr_iter_init(&it, m.data, m.len);
	CHECK_INT(hdr_iter_next(&it, &f, &err), HDR_ERROR);
	CHECK_STR(err, "header field too long");
	buf_deinit(&m);
}

/* Parses value and compares the addresses joined by '|'; want NULL means an error. */
static void
addrs(const char *value, const char *want)
{
	struct arena *a = arena_new("test", 0);
	char **v;
	size_t n;
	const char *err = NULL;
	int r = hdr_addr_list(slice_from(value), a, &v, &n, &err);
	if (want == NULL) {
		if (r != -1)
			fprintf(stderr, "  expected an error for [%s]\n", value);
		CHECK_INT(r, -1);
		CHECK(err != NULL);
	} else {
		struct buf b;
		buf_init(&b, 0);
		for (size_t i = 0; r == 0 && i < n; i++)
			buf_printf(&b, "%s%s", i ? "|" : "", v[i]);
		if (r != 0)
			fprintf(stderr, "  [%s]: %s\n", value, err);
		CHECK_INT(r, 0);
		CHECK_STR(buf_cstr(&b), want);
		buf_deinit(&b);
	}
	arena_free(&a);
}

static void
test_addr_list(void)
{
	addrs(" a@b.example", "a@b.example");
	addrs(" John Doe <john@b.example>", "john@b.example");
	addrs(" \"Doe, John\" <john@b.example>, x@y.example", "john@b.example|x@y.example");
	addrs(" john@b.example (John Doe)", "john@b.example");
	addrs(" (c) john (c) . (c) doe (c) @ (c) b.example (nested (c))", "john.doe@b.example");
	addrs(" \"john\"@b.example", "john@b.example");
	addrs(" \"john doe\"@b.example", "\"john doe\"@b.example");
	addrs(" \"a\\\"b\"@b.example", "\"a\\\"b\"@b.example");
	addrs(" <@r.example,@s.example:u@b.example>", "u@b.example");
	addrs(" team: a@b.example, Bob <c@d.example>;, e@f.example",
	      "a@b.example|c@d.example|e@f.example");
	addrs(" undisclosed-recipients:;", "");
	addrs(" a@[192.0.2.1]", "a@[192.0.2.1]");
	addrs(" =?utf-8?q?J=C3=B6rg?= <j@b.example>", "j@b.example");
	addrs(" J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc.example>", "j\xc3\xb6rg@b\xc3\xbc.example");
	addrs(" a@b.example,, ,c@d.example", "a@b.example|c@d.example");
	addrs(" Mr. J. Doe <j@b.example>", "j@b.example");
	addrs("\r\n a@b.example,\r\n\tc@d.example", "a@b.example|c@d.example");
	addrs("", "");
	/* errors */
	addrs(" john", NULL);
	addrs(" John Doe", NULL);
	addrs(" John Doe@b.example", NULL);
	addrs(" <john>", NULL);
	addrs(" <>", NULL);
	addrs(" a@b.example <c@d.example>", NULL);
	addrs(" a@", NULL);
	addrs(" a@b..example", NULL);
	addrs(" \"unterminated@b.example", NULL);
	addrs(" a@b.example (unterminated", NULL);
	addrs(" g: a@b.example", NULL);
	addrs(" g: h: a@b.example;;", NULL);
	addrs(" a@b.example;", NULL);
	addrs(" <a@b.example", NULL);
	addrs(" a\\b@c.example", NULL);
	addrs(" \"a\x01b\"@c.example", NULL); /* control bytes in a quoted string */
	addrs(" a@[1.2\x00]", NULL);
	/* more than HDR_ADDRS_MAX */
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i <= HDR_ADDRS_MAX; i++)
		buf_printf(&b, "%sa%d@b.example", i ? "," : "", i);
	addrs(buf_cstr(&b), NULL);
	buf_deinit(&b);
}

int
main(void)
{
	RUN(test_iter);
	RUN(test_limits);
	RUN(test_addr_list);
	return test_done("mail_hdr");
}
