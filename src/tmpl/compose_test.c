/* Unit tests for tmpl/compose.c: every shape (text, html, alternative, related, mixed, all of
 * them) is built, parsed back with GMime and checked for structure, content types, decoded
 * bodies and attachment bytes, encoded-word and RFC 2231 round trips, header order, CRLF-only
 * 7-bit output, Message-ID handling and every validation error.
 *
 * COMPOSE_TEST_EML=path writes the rich message of test_all_together to path (for checking it
 * with another MIME parser by hand). */
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "test.h"
#include "tmpl/tmpl.h"
#include "util/buf.h"

#define DATE_1700000000 "Tue, 14 Nov 2023 22:13:20 +0000"

static const struct compose_addr to1[] = {{"Bob Example", "bob@example.org"}};

static struct compose_msg
base_msg(void)
{
	return (struct compose_msg){.from = {"Alice", "alice@example.com"},
	                            .to = to1,
	                            .n_to = 1,
	                            .subject = "Hello",
	                            .text = "Hi Bob\n",
	                            .date = 1700000000};
}

/* Every line ends in CRLF: no bare LF, no bare CR; and every byte is 7-bit. */
static bool
crlf_7bit_only(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = b->data[i];
		if (c >= 0x80 || c == 0)
			return false;
		if (c == '\n' && (i == 0 || b->data[i - 1] != '\r'))
			return false;
		if (c == '\r' && (i + 1 == b->len || b->data[i + 1] != '\n'))
			return false;
	}
	return b->len >= 2 && b->data[b->len - 2] == '\r' && b->data[b->len - 1] == '\n';
}

static size_t
longest_line(const struct buf *b)
{
	size_t best = 0, cur = 0;
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\r' || b->data[i] == '\n') {
			cur = 0;
			continue;
		}
		if (++cur > best)
			best = cur;
	}
	return best;
}

static GMimeMessage *
parse(const struct buf *b)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer((const char *)b->data, b->len);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(st);
	return msg;
}

/* Builds m, checks the generic properties, parses it back. out holds the bytes. */
static GMimeMessage *
build(const struct compose_msg *m, struct buf *out, char *id)
{
	struct err err = {0};
	buf_init(out, 0);
	int rc = compose_build(m, out, id, &err);
	CHECK_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  compose_build: %s\n", err.msg);
		return NULL;
	}
	CHECK(crlf_7bit_only(out));
	CHECK(longest_line(out) <= 998);
	GMimeMessage *msg = parse(out);
	CHECK(msg != NULL);
	return msg;
}

static bool
is_type(GMimeObject *o, const char *type, const char *sub)
{
	return o && g_mime_content_type_is_type(g_mime_object_get_content_type(o), type, sub);
}

static GMimeObject *
child(GMimeObject *o, int i)
{
	if (o == NULL || !GMIME_IS_MULTIPART(o) ||
	    i >= g_mime_multipart_get_count(GMIME_MULTIPART(o)))
		return NULL;
	return g_mime_multipart_get_part(GMIME_MULTIPART(o), i);
}

static int
n_children(GMimeObject *o)
{
	return o && GMIME_IS_MULTIPART(o) ? g_mime_multipart_get_count(GMIME_MULTIPART(o)) : -1;
}

/* Builds m (as build() does) and checks that its body is a multipart/sub of n parts; the body
 * into *b_r. Returns the message (g_object_unref it), NULL when the build failed. */
static GMimeMessage *
build_multipart(const struct compose_msg *m, struct buf *out, const char *sub, int n,
                GMimeObject **b_r)
{
	GMimeMessage *msg = build(m, out, NULL);
	if (msg == NULL)
		return NULL;
	*b_r = g_mime_message_get_mime_part(msg);
	CHECK(is_type(*b_r, "multipart", sub));
	CHECK_INT(n_children(*b_r), n);
	return msg;
}

/* The transfer-decoded content of a leaf part into b (reset first). */
static void
decoded(GMimeObject *o, struct buf *b)
{
	buf_reset(b);
	if (o == NULL || !GMIME_IS_PART(o))
		return;
	GMimeStream *st = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(o)), st);
	GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(st));
	buf_append(b, ba->data, ba->len);
	g_object_unref(st);
}

static void
check_text(GMimeObject *o, const char *sub, const char *want, const char *cte)
{
	CHECK(is_type(o, "text", sub));
	if (o == NULL)
		return;
	CHECK_STR(g_mime_object_get_content_type_parameter(o, "charset"), "utf-8");
	CHECK_STR(g_mime_object_get_header(o, "Content-Transfer-Encoding"), cte);
	struct buf b;
	buf_init(&b, 0);
	decoded(o, &b);
	CHECK_STR(buf_cstr(&b), want);
	buf_deinit(&b);
}

static void
check_attachment(GMimeObject *o, const char *type, const char *sub, const char *disp,
                 const char *filename, const char *cid, const unsigned char *data, size_t len)
{
	CHECK(is_type(o, type, sub));
	if (o == NULL)
		return;
	CHECK_STR(g_mime_object_get_disposition(o), disp);
	CHECK_STR(g_mime_part_get_filename(GMIME_PART(o)), filename);
	CHECK_STR(g_mime_object_get_content_id(o), cid);
	CHECK_INT(g_mime_part_get_content_encoding(GMIME_PART(o)), GMIME_CONTENT_ENCODING_BASE64);
	struct buf b;
	buf_init(&b, 0);
	decoded(o, &b);
	CHECK_INT(b.len, len);
	CHECK(b.len == len && (len == 0 || memcmp(b.data, data, len) == 0));
	buf_deinit(&b);
}

/* The names of the top-level header fields in order, comma-separated, into out. */
static void
header_names(const struct buf *b, char *out, size_t outsz)
{
	size_t o = 0, i = 0;
	out[0] = '\0';
	while (i < b->len && !(b->data[i] == '\r' && i + 1 < b->len && b->data[i + 1] == '\n')) {
		size_t e = i;
		while (e < b->len && b->data[e] != '\r')
			e++;
		if (b->data[i] != ' ' && b->data[i] != '\t') {
			const unsigned char *colon = memchr(b->data + i, ':', e - i);
			size_t n = colon ? (size_t)(colon - (b->data + i)) : 0;
			o += (size_t)snprintf(out + o, o < outsz ? outsz - o : 0, "%s%.*s",
			                      o ? "," : "", (int)n, (const char *)b->data + i);
		}
		i = e + 2;
	}
}

/* ---- shapes ---- */

static void
test_text_only(void)
{
	struct compose_msg m = base_msg();
	m.text = "Hello\nWorld\r\nthird\rfourth";
	struct buf out;
	char id[TMPL_MSGID_MAX];
	GMimeMessage *msg = build(&m, &out, id);
	if (msg == NULL)
		goto out;
	GMimeObject *b = g_mime_message_get_mime_part(msg);
	check_text(b, "plain", "Hello\r\nWorld\r\nthird\r\nfourth\r\n", "7bit");
	char names[512];
	header_names(&out, names, sizeof names);
	CHECK_STR(names, "From,To,Subject,Date,Message-ID,MIME-Version,Content-Type,"
	                 "Content-Transfer-Encoding");
	CHECK_STR(g_mime_object_get_header(GMIME_OBJECT(msg), "Date"), DATE_1700000000);
	CHECK_STR(g_mime_object_get_header(GMIME_OBJECT(msg), "MIME-Version"), "1.0");
	CHECK_STR(g_mime_message_get_subject(msg), "Hello");
	CHECK(strstr(buf_cstr(&out), "From: Alice <alice@example.com>\r\n") != NULL);
	CHECK(strstr(buf_cstr(&out), "To: Bob Example <bob@example.org>\r\n") != NULL);
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

static void
test_html_only(void)
{
	struct compose_msg m = base_msg();
	m.text = NULL;
	m.html = "<p>Grüße</p>\n";
	struct buf out;
	GMimeMessage *msg = build(&m, &out, NULL);
	if (msg == NULL)
		goto out;
	check_text(g_mime_message_get_mime_part(msg), "html", "<p>Grüße</p>\r\n",
	           "quoted-printable");
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

static void
test_alternative(void)
{
	struct compose_msg m = base_msg();
	m.text = "plain text\n";
	m.html = "<b>html</b>\n";
	struct buf out;
	GMimeObject *b;
	GMimeMessage *msg = build_multipart(&m, &out, "alternative", 2, &b);
	if (msg == NULL)
		goto out;
	check_text(child(b, 0), "plain", "plain text\r\n", "7bit");
	check_text(child(b, 1), "html", "<b>html</b>\r\n", "7bit");
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 0xff};

static void
test_related(void)
{
	struct compose_attachment att[] = {
	    {"logo.png", "image/png", "logo@example.com", png, sizeof png},
	    {"dot.gif", "image/gif", "dot", png, 4},
	};
	struct compose_msg m = base_msg();
	m.html = "<img src=\"cid:logo@example.com\">\n";
	m.att = att;
	m.n_att = 2;
	struct buf out;
	GMimeObject *b;
	GMimeMessage *msg = build_multipart(&m, &out, "related", 3, &b);
	if (msg == NULL)
		goto out;
	CHECK_STR(g_mime_object_get_content_type_parameter(b, "type"), "multipart/alternative");
	CHECK(is_type(child(b, 0), "multipart", "alternative"));
	check_text(child(child(b, 0), 0), "plain", "Hi Bob\r\n", "7bit");
	check_text(child(child(b, 0), 1), "html", "<img src=\"cid:logo@example.com\">\r\n", "7bit");
	check_attachment(child(b, 1), "image", "png", "inline", "logo.png", "logo@example.com", png,
	                 sizeof png);
	check_attachment(child(b, 2), "image", "gif", "inline", "dot.gif", "dot", png, 4);
	CHECK(strstr(buf_cstr(&out), "Content-Id: <logo@example.com>\r\n") ||
	      strstr(buf_cstr(&out), "Content-ID: <logo@example.com>\r\n"));
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

static void
test_related_html_only(void)
{
	struct compose_attachment att[] = {{"logo.png", "image/png", "logo", png, sizeof png}};
	struct compose_msg m = base_msg();
	m.text = NULL;
	m.html = "<img src=\"cid:logo\">";
	m.att = att;
	m.n_att = 1;
	struct buf out;
	GMimeObject *b;
	GMimeMessage *msg = build_multipart(&m, &out, "related", 2, &b);
	if (msg == NULL)
		goto out;
	CHECK_STR(g_mime_object_get_content_type_parameter(b, "type"), "text/html");
	check_text(child(b, 0), "html", "<img src=\"cid:logo\">", "7bit");
	check_attachment(child(b, 1), "image", "png", "inline", "logo.png", "logo", png,
	                 sizeof png);
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

/* Inline parts without html are ordinary attachments (no Content-ID, no related). */
static void
test_inline_without_html(void)
{
	struct compose_attachment att[] = {{"logo.png", "image/png", "logo", png, sizeof png}};
	struct compose_msg m = base_msg();
	m.att = att;
	m.n_att = 1;
	struct buf out;
	GMimeObject *b;
	GMimeMessage *msg = build_multipart(&m, &out, "mixed", 2, &b);
	if (msg == NULL)
		goto out;
	check_text(child(b, 0), "plain", "Hi Bob\r\n", "7bit");
	check_attachment(child(b, 1), "image", "png", "attachment", "logo.png", NULL, png,
	                 sizeof png);
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

static void
test_mixed(void)
{
	const unsigned char txt[] = "line1\nline2\r\nline3\r";
	struct compose_attachment att[] = {
	    {"report.bin", NULL, NULL, png, sizeof png},
	    {"notes.txt", "text/plain", NULL, txt, sizeof txt - 1},
	    {"empty.dat", "application/x-empty", NULL, NULL, 0},
	};
	struct compose_msg m = base_msg();
	m.att = att;
	m.n_att = 3;
	struct buf out;
	GMimeObject *b;
	GMimeMessage *msg = build_multipart(&m, &out, "mixed", 4, &b);
	if (msg == NULL)
		goto out;
	check_text(child(b, 0), "plain", "Hi Bob\r\n", "7bit");
	check_attachment(child(b, 1), "application", "octet-stream", "attachment", "report.bin",
	                 NULL, png, sizeof png);
	/* a text attachment keeps its bytes exactly (base64, no line-ending conversion) */
	check_attachment(child(b, 2), "text", "plain", "attachment", "notes.txt", NULL, txt,
	                 sizeof txt - 1);
	check_attachment(child(b, 3), "application", "x-empty", "attachment", "empty.dat", NULL,
	                 NULL, 0);
	CHECK(strstr(buf_cstr(&out), "Content-Disposition: attachment; filename=report.bin\r\n") !=
	      NULL);
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

static void
test_all_together(void)
{
	size_t big_len = 1024 * 1024;
	unsigned char *big = malloc(big_len);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (unsigned char)(i * 7 + i / 256);
	for (size_t i = 0; i < 256; i++)
		big[i] = (unsigned char)i; /* all byte values, and in order at the start */
	struct compose_attachment att[] = {
	    {"résumé – ünïcødé file name that is long enough to be split.pdf", "application/pdf",
	     NULL, png, sizeof png},
	    {"logo.png", "image/png", "logo@x", png, sizeof png},
	    {"big.bin", "application/octet-stream", NULL, big, big_len},
	};
	struct compose_addr to[] = {{"Jürgen Müller, Jr.", "j@example.org"},
	                            {NULL, "plain@example.org"},
	                            {"", "empty@example.org"}};
	struct compose_addr cc[] = {{"Doe, \"J\" (x)", "doe@example.org"}};
	struct compose_addr rt[] = {{"Ẓoë Réply", "reply@example.org"}};
	struct compose_header hdrs[] = {{"X-Campaign", "spring ünïcode"},
	                                {"List-Unsubscribe", "<mailto:u@example.com>"},
	                                {"X-Empty", ""}};
	struct compose_msg m = {.from = {"Sënder Ñame", "sender@example.com"},
	                        .to = to,
	                        .n_to = 3,
	                        .cc = cc,
	                        .n_cc = 1,
	                        .reply_to = rt,
	                        .n_reply_to = 1,
	                        .subject = "Grüße aus Köln – a long subject line that has to be "
	                                   "folded by the writer somewhere along the way, twice",
	                        .text = "Hallo Jürgen,\n\nplain part\n",
	                        .html = "<p>Hallo J&uuml;rgen <img src=\"cid:logo@x\"></p>\r\n",
	                        .att = att,
	                        .n_att = 3,
	                        .headers = hdrs,
	                        .n_headers = 3,
	                        .message_id = "given.1@example.com",
	                        .date = 1700000000};
	struct buf out;
	char id[TMPL_MSGID_MAX];
	GMimeMessage *msg = build(&m, &out, id);
	if (msg == NULL)
		goto out;
	const char *path = getenv("COMPOSE_TEST_EML");
	if (path) {
		FILE *f = fopen(path, "wb");
		if (f) {
			fwrite(out.data, 1, out.len, f);
			fclose(f);
		}
	}
	char names[512];
	header_names(&out, names, sizeof names);
	CHECK_STR(names, "From,To,Cc,Reply-To,Subject,Date,Message-ID,MIME-Version,X-Campaign,"
	                 "List-Unsubscribe,X-Empty,Content-Type");
	CHECK_STR(id, "given.1@example.com");
	CHECK_STR(g_mime_message_get_message_id(msg), "given.1@example.com");
	CHECK(strstr(buf_cstr(&out), "Message-ID: <given.1@example.com>\r\n") != NULL);
	CHECK_STR(g_mime_message_get_subject(msg), m.subject);
	CHECK(strstr(buf_cstr(&out), "Subject: =?UTF-8?") != NULL);
	CHECK_STR(g_mime_object_get_header(GMIME_OBJECT(msg), "X-Campaign"), "spring ünïcode");
	CHECK_STR(g_mime_object_get_header(GMIME_OBJECT(msg), "List-Unsubscribe"),
	          "<mailto:u@example.com>");

	/* addresses: display names decode to what was given */
	InternetAddressList *l = g_mime_message_get_from(msg);
	CHECK_INT(internet_address_list_length(l), 1);
	CHECK_STR(internet_address_get_name(internet_address_list_get_address(l, 0)),
	          "Sënder Ñame");
	l = g_mime_message_get_to(msg);
	CHECK_INT(internet_address_list_length(l), 3);
	if (internet_address_list_length(l) == 3) {
		InternetAddress *a = internet_address_list_get_address(l, 0);
		CHECK_STR(internet_address_get_name(a), "Jürgen Müller, Jr.");
		CHECK_STR(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)),
		          "j@example.org");
		a = internet_address_list_get_address(l, 1);
		const char *nm = internet_address_get_name(a);
		CHECK(nm == NULL || nm[0] == '\0');
		CHECK_STR(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)),
		          "plain@example.org");
	}
	l = g_mime_message_get_cc(msg);
	CHECK_INT(internet_address_list_length(l), 1);
	if (internet_address_list_length(l) == 1)
		CHECK_STR(internet_address_get_name(internet_address_list_get_address(l, 0)),
		          "Doe, \"J\" (x)");
	l = g_mime_message_get_reply_to(msg);
	CHECK_INT(internet_address_list_length(l), 1);
	if (internet_address_list_length(l) == 1)
		CHECK_STR(internet_address_get_name(internet_address_list_get_address(l, 0)),
		          "Ẓoë Réply");

	/* mixed[ related[ alternative[text, html], logo ], pdf, big ] */
	GMimeObject *b = g_mime_message_get_mime_part(msg);
	CHECK(is_type(b, "multipart", "mixed"));
	CHECK_INT(n_children(b), 3);
	GMimeObject *rel = child(b, 0), *alt = child(rel, 0);
	CHECK(is_type(rel, "multipart", "related"));
	CHECK_INT(n_children(rel), 2);
	CHECK(is_type(alt, "multipart", "alternative"));
	check_text(child(alt, 0), "plain", "Hallo Jürgen,\r\n\r\nplain part\r\n",
	           "quoted-printable");
	check_text(child(alt, 1), "html", "<p>Hallo J&uuml;rgen <img src=\"cid:logo@x\"></p>\r\n",
	           "7bit");
	check_attachment(child(rel, 1), "image", "png", "inline", "logo.png", "logo@x", png,
	                 sizeof png);
	check_attachment(child(b, 1), "application", "pdf", "attachment", att[0].filename, NULL,
	                 png, sizeof png);
	check_attachment(child(b, 2), "application", "octet-stream", "attachment", "big.bin", NULL,
	                 big, big_len);
	/* RFC 2231 (not RFC 2047) for the filename */
	CHECK(strstr(buf_cstr(&out), "filename*0*=UTF-8''r%C3%A9sum%C3%A9") != NULL);
	CHECK(strcasestr(buf_cstr(&out), "bcc") == NULL);
	/* RFC 2047 in UTF-8 (not GMime's ISO-8859-1 pick) for display names */
	CHECK(strstr(buf_cstr(&out), "\r\nTo: =?UTF-8?b?SsO8cmdlbiBNw7xsbGVyLA==?= \"Jr.\" "
	                             "<j@example.org>,\r\n") != NULL);
	CHECK(strstr(buf_cstr(&out),
	             "From: =?UTF-8?b?U8OrbmRlciDDkWFtZQ==?= <sender@example.com>") != NULL);
	g_object_unref(msg);
out:
	buf_deinit(&out);
	free(big);
}

/* ---- details ---- */

static void
test_long_lines(void)
{
	static char text[6000], subj[1500], val[1200];
	memset(text, 'x', 2500); /* one 2500-octet ASCII line: must become quoted-printable */
	memcpy(text + 2500, "\nshort\n", 8);
	memset(subj, 's', sizeof subj - 1);
	memset(val, 'v', sizeof val - 1);
	struct compose_header h[] = {{"X-Long", val}};
	struct compose_msg m = base_msg();
	m.text = text;
	m.subject = subj;
	m.headers = h;
	m.n_headers = 1;
	struct buf out;
	GMimeMessage *msg = build(&m, &out, NULL);
	if (msg == NULL)
		goto out;
	CHECK(longest_line(&out) <= 78 + 20);
	char want[6000];
	memset(want, 'x', 2500);
	memcpy(want + 2500, "\r\nshort\r\n", 10);
	check_text(g_mime_message_get_mime_part(msg), "plain", want, "quoted-printable");
	CHECK_STR(g_mime_message_get_subject(msg), subj);
	CHECK_STR(g_mime_object_get_header(GMIME_OBJECT(msg), "X-Long"), val);
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

static void
test_message_id(void)
{
	struct compose_msg m = base_msg();
	char id1[TMPL_MSGID_MAX], id2[TMPL_MSGID_MAX];
	struct buf out;
	GMimeMessage *msg = build(&m, &out, id1);
	if (msg) {
		const char *at = strchr(id1, '@');
		CHECK(at != NULL && at - id1 >= 16);
		CHECK_STR(at, "@example.com");
		for (const char *p = id1; at && p < at; p++)
			CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9'));
		CHECK_STR(g_mime_message_get_message_id(msg), id1);
		char line[TMPL_MSGID_MAX + 32];
		snprintf(line, sizeof line, "\r\nMessage-ID: <%s>\r\n", id1);
		CHECK(strstr(buf_cstr(&out), line) != NULL);
		g_object_unref(msg);
	}
	buf_deinit(&out);
	msg = build(&m, &out, id2);
	CHECK(strcmp(id1, id2) != 0);
	if (msg)
		g_object_unref(msg);
	buf_deinit(&out);
	/* message_id_r may be NULL; date 0 is now */
	m.date = 0;
	msg = build(&m, &out, NULL);
	if (msg) {
		GDateTime *d = g_mime_message_get_date(msg);
		GDateTime *now = g_date_time_new_now_utc();
		CHECK(d != NULL &&
		      llabs((long long)(g_date_time_to_unix(now) - g_date_time_to_unix(d))) < 60);
		g_date_time_unref(now);
		g_object_unref(msg);
	}
	buf_deinit(&out);
}

/* Extra headers are written as given even when GMime has a structured formatter for the name
 * (addresses, message ids) that would drop what it cannot parse. */
static void
test_extra_headers_verbatim(void)
{
	struct compose_header h[] = {{"Sender", "not an address"},
	                             {"In-Reply-To", "<a@example.com>"},
	                             {"References", "<a@example.com> <b@example.com> ü"},
	                             {"Resent-To", "x"},
	                             {"Received", "from a by b; Tue, 14 Nov 2023 22:13:20 +0000"}};
	struct compose_addr to[] = {{" \t", "blank@example.org"}};
	struct compose_msg m = base_msg();
	m.headers = h;
	m.n_headers = 5;
	m.to = to;
	struct buf out;
	GMimeMessage *msg = build(&m, &out, NULL);
	if (msg == NULL)
		goto out;
	CHECK(strstr(buf_cstr(&out), "\r\nTo: blank@example.org\r\n") != NULL);
	CHECK(strstr(buf_cstr(&out),
	             "\r\nMIME-Version: 1.0\r\n"
	             "Sender: not an address\r\n"
	             "In-Reply-To: <a@example.com>\r\n"
	             "References: <a@example.com> <b@example.com> =?UTF-8?B?w7w=?=\r\n"
	             "Resent-To: x\r\n"
	             "Received: from a by b; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	             "Content-Type: text/plain; charset=utf-8\r\n") != NULL);
	g_object_unref(msg);
out:
	buf_deinit(&out);
}

/* Each case must fail with -1, a message, and leave out exactly as it was. */
static void
expect_fail(const struct compose_msg *m, const char *what)
{
	struct buf out;
	buf_init(&out, 0);
	buf_append_str(&out, "keep");
	struct err err = {0};
	char id[TMPL_MSGID_MAX] = "untouched";
	int rc = compose_build(m, &out, id, &err);
	if (rc != -1)
		fprintf(stderr, "  case %s: rc %d\n", what, rc);
	CHECK_INT(rc, -1);
	CHECK(err.msg[0] != '\0');
	CHECK_STR(buf_cstr(&out), "keep");
	CHECK_STR(id, "untouched");
	buf_deinit(&out);
}

static void
expect_ok(const struct compose_msg *m, const char *what)
{
	struct buf out;
	buf_init(&out, 0);
	struct err err = {0};
	int rc = compose_build(m, &out, NULL, &err);
	if (rc != 0)
		fprintf(stderr, "  case %s: %s\n", what, err.msg);
	CHECK_INT(rc, 0);
	buf_deinit(&out);
}

static void
test_bad_headers(void)
{
	static const char *const bad_names[] = {
	    "",
	    "X Space",
	    "X:Colon",
	    "X-\xc3\xa4",
	    "X-\x7f",
	    "X-\x01",
	    "From",
	    "to",
	    "CC",
	    "bcc",
	    "BCC",
	    "subject",
	    "Date",
	    "message-id",
	    "MESSAGE-ID",
	    "Mime-Version",
	    "reply-to",
	    "Content-Type",
	    "content-transfer-encoding",
	    "CONTENT-X",
	    "Content-",
	};
	struct compose_msg m = base_msg();
	for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
		struct compose_header h[] = {{"X-Ok", "fine"}, {bad_names[i], "v"}};
		m.headers = h;
		m.n_headers = 2;
		expect_fail(&m, bad_names[i]);
	}
	char longname[100];
	memset(longname, 'N', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	struct compose_header h1[] = {{longname, "v"}};
	m.headers = h1;
	m.n_headers = 1;
	expect_fail(&m, "long name");
	static const char *const bad_values[] = {"a\r\nBcc: x@y", "a\nb", "a\rb", "a\x01",
	                                         "bad utf8 \xc3"};
	for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
		struct compose_header h[] = {{"X-Ok", bad_values[i]}};
		m.headers = h;
		m.n_headers = 1;
		expect_fail(&m, bad_values[i]);
	}
	struct compose_header hnull[] = {{"X-Ok", NULL}};
	m.headers = hnull;
	expect_fail(&m, "NULL value");
	/* the limit itself, and one more */
	struct compose_header many[COMPOSE_MAX_HEADERS + 1];
	char nm[COMPOSE_MAX_HEADERS + 1][16];
	for (size_t i = 0; i <= COMPOSE_MAX_HEADERS; i++) {
		snprintf(nm[i], sizeof nm[i], "X-H%zu", i);
		many[i] = (struct compose_header){nm[i], "v"};
	}
	m.headers = many;
	m.n_headers = COMPOSE_MAX_HEADERS;
	expect_ok(&m, "max headers");
	m.n_headers = COMPOSE_MAX_HEADERS + 1;
	expect_fail(&m, "too many headers");
	/* tab is allowed in a value; printable names like "X-a.b_c!~" too */
	struct compose_header ok[] = {{"X-a.b_c!~", "a\tb"}};
	m.headers = ok;
	m.n_headers = 1;
	expect_ok(&m, "tab");
}

static void
test_bad_fields(void)
{
	struct compose_msg m = base_msg();
	m.text = NULL;
	expect_fail(&m, "no body");
	m = base_msg();
	m.subject = "two\nlines";
	expect_fail(&m, "subject LF");
	m.subject = "two\rlines";
	expect_fail(&m, "subject CR");
	m.subject = "\xff\xfe";
	expect_fail(&m, "subject utf8");
	m = base_msg();
	m.text = "bad \xc3(";
	expect_fail(&m, "text utf8");
	m = base_msg();
	m.from.name = "Evil\r\nBcc: x@y";
	expect_fail(&m, "from name CRLF");
	m = base_msg();
	m.from.email = "";
	expect_fail(&m, "empty from");
	struct compose_addr bad_to[] = {{"ok", "a@b\nc"}};
	m = base_msg();
	m.to = bad_to;
	expect_fail(&m, "to LF");
	m = base_msg();
	m.date = -1;
	expect_fail(&m, "date < 0");
	m.date = INT64_MAX;
	expect_fail(&m, "date huge");
	static const char *const bad_ids[] = {"no-at", "<a@b>", "a b@c", "@b",
	                                      "a@",    "a@b>",  "é@b",   ""};
	for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++) {
		m = base_msg();
		m.message_id = bad_ids[i];
		expect_fail(&m, bad_ids[i]);
	}
	char longid[TMPL_MSGID_MAX + 1];
	memset(longid, 'i', TMPL_MSGID_MAX);
	longid[3] = '@';
	longid[TMPL_MSGID_MAX] = '\0';
	m.message_id = longid;
	expect_fail(&m, "long message id");
	longid[TMPL_MSGID_MAX - 1] = '\0'; /* 255 characters: fits */
	expect_ok(&m, "255-char message id");
}

static void
test_bad_attachments(void)
{
	struct compose_msg m = base_msg();
	m.html = "<p>x</p>";
	struct compose_attachment a = {"f.bin", NULL, NULL, png, sizeof png};
	m.att = &a;
	m.n_att = 1;
	expect_ok(&m, "plain attachment");
	a.filename = NULL;
	expect_fail(&m, "NULL filename");
	a.filename = "";
	expect_fail(&m, "empty filename");
	a.filename = "a\nb";
	expect_fail(&m, "filename LF");
	a.filename = "f.bin";
	static const char *const bad_ct[] = {
	    "image",           "image/",          "/png",           "image/png; x=y",
	    "image png/x",     "ima(ge/png",      "image/png/x",    "",
	    "image/p\xc3\xa4", "multipart/mixed", "Message/rfc822", "text/plain\r\nX: y",
	};
	for (size_t i = 0; i < sizeof bad_ct / sizeof *bad_ct; i++) {
		a.content_type = bad_ct[i];
		expect_fail(&m, bad_ct[i]);
	}
	static const char *const good_ct[] = {"application/vnd.ms-excel", "IMAGE/PNG",
	                                      "application/x-foo+json",
	                                      "text/x.y-z_1!#$%&'*^`{|}~"};
	for (size_t i = 0; i < sizeof good_ct / sizeof *good_ct; i++) {
		a.content_type = good_ct[i];
		expect_ok(&m, good_ct[i]);
	}
	a.content_type = NULL;
	static const char *const bad_cid[] = {"",    "a b", "<a>",  "a>b",
	                                      "a<b", "ü@x", "a\tb", "a\nb"};
	for (size_t i = 0; i < sizeof bad_cid / sizeof *bad_cid; i++) {
		a.content_id = bad_cid[i];
		expect_fail(&m, bad_cid[i]);
	}
	a.content_id = "part1.abc@x!#$%";
	expect_ok(&m, "cid");
	a.content_id = NULL;
	a.data = NULL; /* len > 0 without data */
	expect_fail(&m, "no data");
	a.data = png;
	/* the limit itself, and one more */
	struct compose_attachment many[COMPOSE_MAX_ATTACHMENTS + 1];
	for (size_t i = 0; i <= COMPOSE_MAX_ATTACHMENTS; i++)
		many[i] = a;
	m.att = many;
	m.n_att = COMPOSE_MAX_ATTACHMENTS;
	expect_ok(&m, "max attachments");
	m.n_att = COMPOSE_MAX_ATTACHMENTS + 1;
	expect_fail(&m, "too many attachments");
}

static void
test_rcpt_limit(void)
{
	static struct compose_addr a[COMPOSE_MAX_RCPTS + 1];
	for (size_t i = 0; i <= COMPOSE_MAX_RCPTS; i++)
		a[i] = (struct compose_addr){NULL, "r@example.org"};
	struct compose_msg m = base_msg();
	m.to = a;
	m.n_to = 600;
	m.cc = a;
	m.n_cc = 399;
	m.reply_to = a;
	m.n_reply_to = 1;
	expect_ok(&m, "1000 addresses");
	m.n_reply_to = 2;
	expect_fail(&m, "1001 addresses");
	m.n_reply_to = 0;
	m.n_cc = 0;
	m.n_to = COMPOSE_MAX_RCPTS + 1;
	expect_fail(&m, "1001 to");
}

/* A buffer too small for the message: -1, nothing appended. */
static void
test_too_big(void)
{
	struct compose_msg m = base_msg();
	struct buf out;
	buf_init(&out, 64);
	buf_append_str(&out, "keep");
	struct err err = {0};
	CHECK_INT(compose_build(&m, &out, NULL, &err), -1);
	CHECK_STR(buf_cstr(&out), "keep");
	CHECK(err.msg[0] != '\0');
	buf_deinit(&out);
	/* appends after what is there */
	buf_init(&out, 0);
	buf_append_str(&out, "prefix");
	CHECK_INT(compose_build(&m, &out, NULL, &err), 0);
	CHECK(out.len > 6 && memcmp(out.data, "prefixFrom: ", 12) == 0);
	buf_deinit(&out);
}

int
main(void)
{
	g_mime_init();
	RUN(test_text_only);
	RUN(test_html_only);
	RUN(test_alternative);
	RUN(test_related);
	RUN(test_related_html_only);
	RUN(test_inline_without_html);
	RUN(test_mixed);
	RUN(test_all_together);
	RUN(test_long_lines);
	RUN(test_message_id);
	RUN(test_extra_headers_verbatim);
	RUN(test_bad_headers);
	RUN(test_bad_fields);
	RUN(test_bad_attachments);
	RUN(test_rcpt_limit);
	RUN(test_too_big);
	g_mime_shutdown();
	return test_done("compose");
}
