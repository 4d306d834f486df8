/* FETCH on the in-memory mailstore: parsing (macros, sections, partials, modifiers, errors),
 * every item's response, HEADER.FIELDS(.NOT), nested sections of a multipart holding a
 * message/rfc822 part, the per-recipient header prefix (header_len) through a wrapping store,
 * a large body streamed through flush with a bounded buffer, and a vanished message. Also the
 * stub mailstore's own operations. */
#include <string.h>

#include "imap/fetch.h"
#include "imap/imap.h"
#include "test.h"
#include "util/xalloc.h"

static const char msg_simple[] = "From: Alice <alice@example.com>\r\n"
                                 "To: bob@example.org\r\n"
                                 "Subject: Hello\r\n"
                                 "X-Folded: one\r\n two\r\n"
                                 "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
                                 "Message-ID: <1@example.com>\r\n"
                                 "\r\n"
                                 "Hello body\r\n";

static const char msg_multi[] = "From: Alice <alice@example.com>\r\n"
                                "Subject: multi\r\n"
                                "MIME-Version: 1.0\r\n"
                                "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
                                "\r\n"
                                "preamble\r\n"
                                "--outer\r\n"
                                "Content-Type: text/plain; charset=us-ascii\r\n"
                                "\r\n"
                                "part one\r\n"
                                "--outer\r\n"
                                "Content-Type: message/rfc822\r\n"
                                "\r\n"
                                "From: Inner <inner@example.net>\r\n"
                                "Subject: inner\r\n"
                                "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
                                "\r\n"
                                "--inner\r\n"
                                "Content-Type: text/plain\r\n"
                                "\r\n"
                                "inner plain\r\n"
                                "--inner\r\n"
                                "Content-Type: text/html\r\n"
                                "\r\n"
                                "<p>inner html</p>\r\n"
                                "--inner--\r\n"
                                "\r\n"
                                "--outer\r\n"
                                "Content-Type: application/octet-stream\r\n"
                                "Content-Transfer-Encoding: base64\r\n"
                                "\r\n"
                                "AAECAw==\r\n"
                                "--outer--\r\n";

struct fx {
	struct imap_mailstore *ms;
	int64_t inbox;
	struct buf out;
	struct imap_out o;
	char *big;
	size_t big_len;
};

static void
fx_init(struct fx *f, bool with_big)
{
	const char *msgs[3] = {msg_simple, msg_multi, NULL};
	size_t lens[3] = {strlen(msg_simple), strlen(msg_multi), 0};
	size_t n = 2;
	f->big = NULL;
	if (with_big) {
		const char *head = "From: big@example.com\r\nSubject: big\r\n\r\n";
		f->big_len = strlen(head) + 3 * 1024 * 1024;
		f->big = xmalloc(f->big_len);
		memcpy(f->big, head, strlen(head));
		for (size_t i = strlen(head); i < f->big_len; i++)
			f->big[i] = (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
		msgs[2] = f->big;
		lens[2] = f->big_len;
		n = 3;
	}
	f->ms = imap_mailstore_stub(msgs, lens, n);
	struct imap_ms_status st;
	struct err err;
	CHECK_INT(f->ms->ops->status(f->ms, "INBOX", &st, &err), 0);
	free(st.special_use);
	f->inbox = st.id;
	buf_init(&f->out, 0);
	f->o = (struct imap_out){.out = &f->out};
}

static void
fx_deinit(struct fx *f)
{
	imap_mailstore_free(&f->ms);
	buf_deinit(&f->out);
	free(f->big);
}

static struct imap_fetch_spec *
parse(const char *args, bool uid, const char **err_r)
{
	struct imap_cursor c;
	imap_cur_init(&c, slice_from(args), 16);
	*err_r = NULL;
	return imap_fetch_parse(&c, uid, err_r);
}

/* FETCH args for message seq (uid == seq in the stub's INBOX); returns the response text. */
static const char *
fetch(struct fx *f, const char *args, uint32_t seq, int *rc_r)
{
	const char *e;
	struct imap_fetch_spec *sp = parse(args, false, &e);
	buf_reset(&f->out);
	if (sp == NULL) {
		buf_printf(&f->out, "PARSE ERROR %s", e);
		return buf_cstr(&f->out);
	}
	struct imap_msgref m = {.seq = seq, .uid = seq, .flags = IMAP_FLAG_SEEN, .modseq = 7};
	struct err err = {0};
	int rc = imap_fetch_one(sp, f->ms, f->inbox, &m, false, false, &f->o, &err);
	if (rc_r != NULL)
		*rc_r = rc;
	imap_fetch_spec_free(&sp);
	return buf_cstr(&f->out);
}

static void
test_parse_errors(void)
{
	static const char *const bad[] = {"FOO",
	                                  "BODY[MIME]",
	                                  "BODY[1.]",
	                                  "BODY[HEADER.FIELDS]",
	                                  "BODY[HEADER.FIELDS ()]",
	                                  "(FLAGS",
	                                  "(FLAGS UID",
	                                  "BODY[]<0.0>",
	                                  "BODY[]<5>",
	                                  "BODY[0]",
	                                  "BODY[TEXTX]",
	                                  "FLAGS (CHANGEDSINCE 0)",
	                                  "FLAGS (VANISHED)",
	                                  "FLAGS (CHANGEDSINCE x)",
	                                  "BINARY[1]",
	                                  "BODY[1.2.HEADER.FIELDS (A)",
	                                  "FLAGS extra",
	                                  "()",
	                                  "BODY[HEADER.FIELDS (\"a b\")]",
	                                  "BODY[HEADER.FIELDS (\"a\\\"b\")]",
	                                  "BODY[HEADER.FIELDS (\"\")]"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *e;
		struct imap_fetch_spec *sp = parse(bad[i], true, &e);
		if (sp != NULL)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(sp == NULL);
		CHECK(sp != NULL || e != NULL);
		imap_fetch_spec_free(&sp);
	}
	const char *e;
	struct imap_fetch_spec *sp = parse("FLAGS (CHANGEDSINCE 5 VANISHED)", false, &e);
	CHECK(sp == NULL); /* VANISHED needs UID FETCH */
	sp = parse("FLAGS (CHANGEDSINCE 5 VANISHED)", true, &e);
	CHECK(sp != NULL);
	if (sp != NULL) {
		CHECK_INT(imap_fetch_changedsince(sp), 5);
		CHECK(imap_fetch_vanished(sp));
		CHECK(imap_fetch_wants_modseq(sp));
	}
	imap_fetch_spec_free(&sp);
	sp = parse("(FLAGS BODY.PEEK[HEADER] RFC822.HEADER)", false, &e);
	CHECK(sp != NULL && !imap_fetch_sets_seen(sp) && !imap_fetch_wants_modseq(sp));
	imap_fetch_spec_free(&sp);
	static const char *const seen[] = {"BODY[]", "RFC822", "RFC822.TEXT", "(UID BODY[1.MIME])"};
	for (size_t i = 0; i < sizeof seen / sizeof seen[0]; i++) {
		sp = parse(seen[i], false, &e);
		CHECK(sp != NULL && imap_fetch_sets_seen(sp));
		imap_fetch_spec_free(&sp);
	}
	sp = parse("MODSEQ", false, &e);
	CHECK(sp != NULL && imap_fetch_wants_modseq(sp));
	imap_fetch_spec_free(&sp);
}

static void
test_simple_items(void)
{
	struct fx f;
	fx_init(&f, false);
	char want[256];
	snprintf(want, sizeof want,
	         "* 1 FETCH (FLAGS (\\Seen) INTERNALDATE \"14-Nov-2023 22:13:20 +0000\" "
	         "RFC822.SIZE %zu)\r\n",
	         strlen(msg_simple));
	CHECK_STR(fetch(&f, "FAST", 1, NULL), want);
	CHECK_STR(fetch(&f, "(uid flags)", 1, NULL), "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n");
	CHECK_STR(fetch(&f, "(FLAGS UID)", 1, NULL), "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n");
	CHECK_STR(fetch(&f, "MODSEQ", 1, NULL), "* 1 FETCH (MODSEQ (7))\r\n");
	CHECK_STR(fetch(&f, "FLAGS (CHANGEDSINCE 3)", 1, NULL),
	          "* 1 FETCH (FLAGS (\\Seen) MODSEQ (7))\r\n");
	const char *r = fetch(&f, "ALL", 1, NULL);
	CHECK(strstr(r, "ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"Hello\"") != NULL);
	CHECK(strstr(r, " BODY ") == NULL);
	r = fetch(&f, "FULL", 1, NULL);
	CHECK(strstr(r, " BODY (\"TEXT\" \"PLAIN\"") != NULL ||
	      strstr(r, " BODY (\"text\" \"plain\"") != NULL);
	r = fetch(&f, "BODYSTRUCTURE", 2, NULL);
	CHECK(strncmp(r, "* 2 FETCH (BODYSTRUCTURE ((", 27) == 0);

	/* flags formatting with keywords, and the session's with_flags/modseq_on */
	struct buf b;
	buf_init(&b, 0);
	imap_fetch_flags(&b, IMAP_FLAG_DRAFT | IMAP_FLAG_ANSWERED | IMAP_FLAG_DELETED, "$Junk kw");
	CHECK_STR(buf_cstr(&b), "(\\Answered \\Deleted \\Draft $Junk kw)");
	buf_reset(&b);
	imap_fetch_flags(&b, 0, NULL);
	CHECK_STR(buf_cstr(&b), "()");
	buf_deinit(&b);
	const char *e;
	struct imap_fetch_spec *sp = parse("UID", true, &e);
	struct imap_msgref m = {.seq = 2, .uid = 2, .flags = IMAP_FLAG_FLAGGED, .modseq = 9};
	struct err err;
	buf_reset(&f.out);
	CHECK_INT(imap_fetch_one(sp, f.ms, f.inbox, &m, true, true, &f.o, &err), 0);
	CHECK_STR(buf_cstr(&f.out), "* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (9))\r\n");
	imap_fetch_spec_free(&sp);
	fx_deinit(&f);
}

static void
check_literal(const char *resp, const char *name, const char *bytes)
{
	char want[8192];
	size_t n = strlen(bytes);
	if (n == 0)
		snprintf(want, sizeof want, "(%s \"\")\r\n", name);
	else
		snprintf(want, sizeof want, "(%s {%zu}\r\n%s)\r\n", name, n, bytes);
	const char *p = strchr(resp, '(');
	CHECK_STR(p, want);
}

static void
test_sections_simple(void)
{
	struct fx f;
	fx_init(&f, false);
	check_literal(fetch(&f, "BODY[]", 1, NULL), "BODY[]", msg_simple);
	check_literal(fetch(&f, "RFC822", 1, NULL), "RFC822", msg_simple);
	const char *body = strstr(msg_simple, "\r\n\r\n") + 4;
	char head[1024];
	snprintf(head, sizeof head, "%.*s", (int)(body - msg_simple), msg_simple);
	check_literal(fetch(&f, "BODY.PEEK[HEADER]", 1, NULL), "BODY[HEADER]", head);
	check_literal(fetch(&f, "RFC822.HEADER", 1, NULL), "RFC822.HEADER", head);
	check_literal(fetch(&f, "BODY[TEXT]", 1, NULL), "BODY[TEXT]", body);
	check_literal(fetch(&f, "RFC822.TEXT", 1, NULL), "RFC822.TEXT", body);
	check_literal(fetch(&f, "BODY[1]", 1, NULL), "BODY[1]", body);
	check_literal(fetch(&f, "BODY[2]", 1, NULL), "BODY[2]", "");
	check_literal(fetch(&f, "BODY[]<0.5>", 1, NULL), "BODY[]<0>", "From:");
	check_literal(fetch(&f, "BODY.PEEK[TEXT]<6.100>", 1, NULL), "BODY[TEXT]<6>", "body\r\n");
	check_literal(fetch(&f, "BODY[]<100000.5>", 1, NULL), "BODY[]<100000>", "");
	check_literal(fetch(&f, "BODY.PEEK[HEADER.FIELDS (subject from)]", 1, NULL),
	              "BODY[HEADER.FIELDS (SUBJECT FROM)]",
	              "From: Alice <alice@example.com>\r\nSubject: Hello\r\n\r\n");
	check_literal(fetch(&f, "BODY.PEEK[HEADER.FIELDS (x-folded \"Nope\")]", 1, NULL),
	              "BODY[HEADER.FIELDS (X-FOLDED NOPE)]", "X-Folded: one\r\n two\r\n\r\n");
	check_literal(
	    fetch(&f, "BODY.PEEK[HEADER.FIELDS.NOT (To Date Message-ID X-Folded)]", 1, NULL),
	    "BODY[HEADER.FIELDS.NOT (TO DATE MESSAGE-ID X-FOLDED)]",
	    "From: Alice <alice@example.com>\r\nSubject: Hello\r\n\r\n");
	check_literal(fetch(&f, "BODY.PEEK[HEADER.FIELDS (Subject)]<2.5>", 1, NULL),
	              "BODY[HEADER.FIELDS (SUBJECT)]<2>", "bject");
	check_literal(fetch(&f, "BODY.PEEK[HEADER.FIELDS (None)]", 1, NULL),
	              "BODY[HEADER.FIELDS (NONE)]", "\r\n");
	/* several items in one response, in the order asked */
	const char *r = fetch(&f, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] UID BODY[]<0.4>)", 1, NULL);
	CHECK_STR(r,
	          "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: Hello\r\n\r\n "
	          "BODY[]<0> {4}\r\nFrom)\r\n");
	fx_deinit(&f);
}

/* The byte range of the first occurrence of from..to (to included) in s. */
static void
span(const char *s, const char *from, const char *to, char *out, size_t cap)
{
	const char *a = strstr(s, from);
	const char *b = a ? strstr(a, to) : NULL;
	if (a == NULL || b == NULL) {
		snprintf(out, cap, "<missing %s>", from);
		return;
	}
	snprintf(out, cap, "%.*s", (int)(b + strlen(to) - a), a);
}

static void
test_sections_nested(void)
{
	struct fx f;
	fx_init(&f, false);
	char want[2048];
	span(msg_multi, "part one", "part one", want, sizeof want);
	check_literal(fetch(&f, "BODY[1]", 2, NULL), "BODY[1]", want);
	span(msg_multi, "Content-Type: text/plain; charset", "\r\n\r\n", want, sizeof want);
	check_literal(fetch(&f, "BODY[1.MIME]", 2, NULL), "BODY[1.MIME]", want);
	span(msg_multi, "From: Inner", "--inner--\r\n", want, sizeof want);
	const char *r = fetch(&f, "BODY[2]", 2, NULL);
	CHECK(strstr(r, want) != NULL);
	span(msg_multi, "From: Inner", "inner\"\r\n\r\n", want, sizeof want);
	check_literal(fetch(&f, "BODY[2.HEADER]", 2, NULL), "BODY[2.HEADER]", want);
	check_literal(fetch(&f, "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]", 2, NULL),
	              "BODY[2.HEADER.FIELDS (SUBJECT)]", "Subject: inner\r\n\r\n");
	span(msg_multi, "--inner\r\n", "--inner--\r\n", want, sizeof want);
	r = fetch(&f, "BODY[2.TEXT]", 2, NULL);
	CHECK(strstr(r, want) != NULL);
	check_literal(fetch(&f, "BODY[2.1]", 2, NULL), "BODY[2.1]", "inner plain");
	check_literal(fetch(&f, "BODY[2.2]", 2, NULL), "BODY[2.2]", "<p>inner html</p>");
	check_literal(fetch(&f, "BODY[2.2.MIME]", 2, NULL), "BODY[2.2.MIME]",
	              "Content-Type: text/html\r\n\r\n");
	check_literal(fetch(&f, "BODY[3]", 2, NULL), "BODY[3]", "AAECAw==");
	check_literal(fetch(&f, "BODY[4]", 2, NULL), "BODY[4]", "");
	check_literal(fetch(&f, "BODY[2.3]", 2, NULL), "BODY[2.3]", "");
	check_literal(fetch(&f, "BODY[1.HEADER]", 2, NULL), "BODY[1.HEADER]", "");
	check_literal(fetch(&f, "BODY[3]<2.3>", 2, NULL), "BODY[3]<2>", "ECA");
	fx_deinit(&f);
}

/* ---- header_len: a store that prepends a per-recipient header ---- */

static const char prefix[] = "Return-Path: <alice@example.com>\r\n";

struct wrap {
	struct imap_mailstore base;
	struct imap_mailstore *in;
};

static int
w_meta(struct imap_mailstore *ms, int64_t mb, uint32_t uid, struct imap_ms_meta *m, struct err *err)
{
	struct imap_mailstore *in = ((struct wrap *)ms)->in;
	if (in->ops->meta(in, mb, uid, m, err) < 0)
		return -1;
	m->header_len = strlen(prefix);
	m->size += m->header_len;
	return 0;
}

static int
w_read(struct imap_mailstore *ms, const struct imap_ms_meta *m, uint64_t off, uint64_t len,
       struct buf *out, struct err *err)
{
	struct imap_mailstore *in = ((struct wrap *)ms)->in;
	uint64_t p = strlen(prefix);
	if (off < p) {
		uint64_t n = len < p - off ? len : p - off;
		buf_append(out, prefix + off, (size_t)n);
		off += n;
		len -= n;
	}
	if (len == 0)
		return 0;
	return in->ops->read(in, m, off - p, len, out, err);
}

static void
w_free(struct imap_mailstore *ms)
{
	imap_mailstore_free(&((struct wrap *)ms)->in);
	free(ms);
}

static void
test_header_len(void)
{
	struct fx f;
	fx_init(&f, false);
	static struct imap_mailstore_ops ops;
	ops = *f.ms->ops;
	ops.meta = w_meta;
	ops.read = w_read;
	ops.free = w_free;
	struct wrap *w = xcalloc(1, sizeof *w);
	w->base.ops = &ops;
	w->in = f.ms;
	f.ms = &w->base;
	char want[4096];
	snprintf(want, sizeof want, "%s%s", prefix, msg_simple);
	check_literal(fetch(&f, "BODY[]", 1, NULL), "BODY[]", want);
	const char *body = strstr(msg_simple, "\r\n\r\n") + 4;
	snprintf(want, sizeof want, "%s%.*s", prefix, (int)(body - msg_simple), msg_simple);
	check_literal(fetch(&f, "BODY[HEADER]", 1, NULL), "BODY[HEADER]", want);
	check_literal(fetch(&f, "BODY[TEXT]", 1, NULL), "BODY[TEXT]", body);
	check_literal(fetch(&f, "BODY.PEEK[HEADER.FIELDS (RETURN-PATH)]", 1, NULL),
	              "BODY[HEADER.FIELDS (RETURN-PATH)]",
	              "Return-Path: <alice@example.com>\r\n\r\n");
	check_literal(fetch(&f, "BODY[]<0.6>", 1, NULL), "BODY[]<0>", "Return");
	snprintf(want, sizeof want, "* 1 FETCH (RFC822.SIZE %zu)\r\n",
	         strlen(prefix) + strlen(msg_simple));
	CHECK_STR(fetch(&f, "RFC822.SIZE", 1, NULL), want);
	check_literal(fetch(&f, "BODY[2.2.MIME]", 2, NULL), "BODY[2.2.MIME]",
	              "Content-Type: text/html\r\n\r\n");
	check_literal(fetch(&f, "BODY[2.1]", 2, NULL), "BODY[2.1]", "inner plain");
	fx_deinit(&f);
}

/* ---- large body: streamed in chunks, flushed, never whole in memory ---- */

struct sink {
	struct buf got;
	size_t max_len, flushes;
	bool fail;
};

static int
sink_flush(void *ctx, struct buf *out)
{
	struct sink *k = ctx;
	if (out->len > k->max_len)
		k->max_len = out->len;
	k->flushes++;
	if (k->fail)
		return -1;
	buf_append(&k->got, out->data, out->len);
	buf_reset(out);
	return 0;
}

static void
test_large_streamed(void)
{
	struct fx f;
	fx_init(&f, true);
	struct sink k = {0};
	buf_init(&k.got, 0);
	buf_deinit(&f.out);
	buf_init(&f.out, IMAP_OUT_FLUSH + 128 * 1024); /* a hard cap: overflow would fail */
	f.o.flush = sink_flush;
	f.o.ctx = &k;
	int rc = -9;
	fetch(&f, "BODY.PEEK[]", 3, &rc);
	CHECK_INT(rc, 0);
	buf_append(&k.got, f.out.data, f.out.len);
	CHECK(k.flushes >= 3 * 1024 * 1024 / IMAP_OUT_FLUSH - 1);
	CHECK(k.max_len <= IMAP_OUT_FLUSH + 64 * 1024 + 100);
	CHECK(!f.out.overflow);
	char head[64];
	int hl = snprintf(head, sizeof head, "* 3 FETCH (BODY[] {%zu}\r\n", f.big_len);
	CHECK(k.got.len == (size_t)hl + f.big_len + 3);
	CHECK(k.got.len > (size_t)hl && memcmp(k.got.data, head, (size_t)hl) == 0);
	CHECK(k.got.len > (size_t)hl + f.big_len && memcmp(k.got.data + hl, f.big, f.big_len) == 0);
	/* a partial in the middle */
	buf_reset(&k.got);
	fetch(&f, "BODY.PEEK[]<1000000.300000>", 3, &rc);
	CHECK_INT(rc, 0);
	buf_append(&k.got, f.out.data, f.out.len);
	hl = snprintf(head, sizeof head, "* 3 FETCH (BODY[]<1000000> {300000}\r\n");
	CHECK(k.got.len == (size_t)hl + 300000 + 3);
	CHECK(k.got.len > (size_t)hl + 300000 &&
	      memcmp(k.got.data + hl, f.big + 1000000, 300000) == 0);
	/* the connection goes away mid-body */
	k.fail = true;
	fetch(&f, "BODY.PEEK[]", 3, &rc);
	CHECK_INT(rc, -2);
	buf_deinit(&k.got);
	fx_deinit(&f);
}

static void
test_vanished(void)
{
	struct fx f;
	fx_init(&f, false);
	struct err err = {0};
	uint32_t uid = 1, *failed, *ex;
	struct imap_ms_msg *ch;
	size_t nch, nf, nex;
	CHECK_INT(f.ms->ops->store(f.ms, f.inbox, &uid, 1, IMAP_MS_FLAGS_ADD, IMAP_FLAG_DELETED,
	                           NULL, 0, &ch, &nch, &failed, &nf, &err),
	          0);
	CHECK_INT(nch, 1);
	imap_ms_msgs_free(&ch, nch);
	free(failed);
	CHECK_INT(f.ms->ops->expunge(f.ms, f.inbox, NULL, 0, &ex, &nex, &err), 0);
	CHECK_INT(nex, 1);
	free(ex);
	int rc = 0;
	const char *r = fetch(&f, "(FLAGS BODY.PEEK[HEADER])", 1, &rc);
	CHECK_INT(rc, -1);
	CHECK_STR(r, "");
	/* FLAGS and UID come from the view alone: no storage access */
	r = fetch(&f, "(FLAGS UID)", 1, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(r, "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n");
	uint32_t *v;
	size_t nv;
	CHECK_INT(f.ms->ops->vanished(f.ms, f.inbox, 0, &v, &nv, &err), 0);
	CHECK(nv == 1 && v[0] == 1);
	free(v);
	fx_deinit(&f);
}

/* ---- the stub store itself ---- */

static bool
listed(struct imap_mailstore *ms, const char *name, bool *exists_r)
{
	struct imap_ms_mailbox *v;
	size_t n;
	struct err err;
	bool found = false;
	if (ms->ops->list(ms, &v, &n, &err) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0) {
			found = true;
			if (exists_r)
				*exists_r = v[i].exists;
		}
	imap_ms_mailboxes_free(&v, n);
	return found;
}

static void
test_stub_store(void)
{
	struct fx f;
	fx_init(&f, false);
	struct imap_mailstore *ms = f.ms;
	struct err err;
	CHECK_INT(ms->ops->login(ms, "user@test.example", "nope", 4, &err), 0);
	CHECK_INT(ms->ops->login(ms, "USER@test.example", "secret", 6, &err), 1);
	CHECK_STR(ms->user, "user@test.example");
	struct imap_ms_mailbox *v;
	size_t n;
	CHECK_INT(ms->ops->list(ms, &v, &n, &err), 0);
	CHECK_INT(n, 4);
	if (n == 4) {
		CHECK_STR(v[0].name, "INBOX");
		CHECK_STR(v[3].name, "Trash");
		CHECK_STR(v[3].special_use, "\\Trash");
	}
	imap_ms_mailboxes_free(&v, n);
	/* create / rename with children / delete */
	CHECK_INT(ms->ops->create(ms, "a", NULL, &err), 0);
	CHECK_INT(ms->ops->create(ms, "a/b", NULL, &err), 0);
	CHECK_INT(ms->ops->create(ms, "a", NULL, &err), -1);
	CHECK_INT(err.code, IMAP_MS_EEXISTS);
	CHECK_INT(ms->ops->delete (ms, "a", &err), -1);
	CHECK_INT(err.code, IMAP_MS_EHASCHILDREN);
	CHECK_INT(ms->ops->rename(ms, "a", "c", &err), 0);
	CHECK(listed(ms, "c/b", NULL) && !listed(ms, "a/b", NULL));
	CHECK_INT(ms->ops->rename(ms, "c", "c/x", &err), -1);
	CHECK_INT(ms->ops->create(ms, "d/b", NULL, &err), 0);
	CHECK_INT(ms->ops->create(ms, "e", NULL, &err), 0);
	CHECK_INT(ms->ops->rename(ms, "c", "d", &err), -1); /* c/b would land on d/b */
	CHECK_INT(err.code, IMAP_MS_EEXISTS);
	CHECK_INT(ms->ops->rename(ms, "c", "e", &err), -1);
	CHECK_INT(ms->ops->delete (ms, "d/b", &err), 0);
	CHECK_INT(ms->ops->delete (ms, "e", &err), 0);
	CHECK_INT(ms->ops->subscribe(ms, "f/b", true, &err), 0);
	CHECK_INT(ms->ops->rename(ms, "c", "f", &err), 0); /* takes over the bare subscription */
	bool fex = false;
	CHECK(listed(ms, "f/b", &fex) && fex);
	CHECK_INT(ms->ops->rename(ms, "f", "c", &err), 0);
	CHECK(!listed(ms, "f/b", NULL)); /* subscriptions move with the mailbox */
	CHECK(listed(ms, "c/b", &fex) && fex);
	CHECK_INT(ms->ops->delete (ms, "c/b", &err), 0);
	CHECK_INT(ms->ops->delete (ms, "c", &err), 0);
	CHECK_INT(ms->ops->delete (ms, "INBOX", &err), -1);
	CHECK_INT(err.code, IMAP_MS_EINVAL);
	CHECK_INT(ms->ops->delete (ms, "zz", &err), -1);
	CHECK_INT(err.code, IMAP_MS_ENONEXISTENT);
	/* subscriptions survive without a mailbox */
	CHECK_INT(ms->ops->subscribe(ms, "ghost", true, &err), 0);
	bool ex = true;
	CHECK(listed(ms, "ghost", &ex) && !ex);
	CHECK_INT(ms->ops->subscribe(ms, "ghost", false, &err), 0);
	CHECK(!listed(ms, "ghost", NULL));
	/* append, copy, move with COPYUID data */
	uint32_t uv, uid;
	CHECK_INT(ms->ops->append(ms, "Sent", IMAP_FLAG_SEEN, "kw", 1000,
	                          (const unsigned char *)"A: b\r\n\r\nx\r\n", 11, &uv, &uid, &err),
	          0);
	CHECK_INT(uid, 1);
	CHECK_INT(
	    ms->ops->append(ms, "Nope", 0, NULL, 0, (const unsigned char *)"x", 1, &uv, &uid, &err),
	    -1);
	CHECK_INT(err.code, IMAP_MS_ENONEXISTENT);
	uint32_t uids[2] = {1, 2}, *src, *dst;
	size_t nc;
	CHECK_INT(ms->ops->copy(ms, f.inbox, uids, 2, "Trash", false, &uv, &src, &dst, &nc, &err),
	          0);
	CHECK(nc == 2 && src[0] == 1 && dst[1] == 2);
	free(src);
	free(dst);
	CHECK_INT(ms->ops->copy(ms, f.inbox, uids, 1, "Drafts", true, &uv, &src, &dst, &nc, &err),
	          0);
	CHECK_INT(nc, 1);
	free(src);
	free(dst);
	struct imap_ms_status st;
	CHECK_INT(ms->ops->status(ms, "INBOX", &st, &err), 0);
	CHECK_INT(st.messages, 1);
	CHECK_INT(st.uidnext, 3);
	free(st.special_use);
	uint32_t *gone;
	size_t ng;
	CHECK_INT(ms->ops->vanished(ms, f.inbox, 0, &gone, &ng, &err), 0);
	CHECK(ng == 1 && gone[0] == 1);
	free(gone);
	/* STORE with UNCHANGEDSINCE */
	struct imap_ms_msg *ch, *mv;
	uint32_t *failed, uidnext;
	size_t nch, nf, nm;
	uint64_t hms;
	CHECK_INT(ms->ops->messages(ms, f.inbox, 0, &mv, &nm, &uidnext, &hms, &err), 0);
	CHECK(nm == 1 && mv[0].uid == 2);
	uint64_t ms2 = nm ? mv[0].modseq : 0;
	imap_ms_msgs_free(&mv, nm);
	uint32_t two = 2;
	CHECK_INT(ms->ops->store(ms, f.inbox, &two, 1, IMAP_MS_FLAGS_ADD, IMAP_FLAG_FLAGGED, "$x",
	                         ms2 - 1, &ch, &nch, &failed, &nf, &err),
	          0);
	CHECK(nch == 0 && nf == 1);
	imap_ms_msgs_free(&ch, nch);
	free(failed);
	uint64_t before = ms->ops->change_seq(ms, f.inbox);
	CHECK_INT(ms->ops->store(ms, f.inbox, &two, 1, IMAP_MS_FLAGS_ADD, IMAP_FLAG_FLAGGED, "$x",
	                         ms2, &ch, &nch, &failed, &nf, &err),
	          0);
	CHECK(nch == 1 && nf == 0 && ch[0].modseq > ms2);
	CHECK_STR(nch ? ch[0].keywords : NULL, "$x");
	imap_ms_msgs_free(&ch, nch);
	free(failed);
	CHECK(ms->ops->change_seq(ms, f.inbox) != before);
	CHECK_INT(ms->ops->messages(ms, f.inbox, ms2, &mv, &nm, &uidnext, &hms, &err), 0);
	CHECK_INT(nm, 1);
	imap_ms_msgs_free(&mv, nm);
	/* INBOX rename moves the messages */
	CHECK_INT(ms->ops->rename(ms, "INBOX", "old", &err), 0);
	CHECK_INT(ms->ops->status(ms, "old", &st, &err), 0);
	CHECK_INT(st.messages, 1);
	free(st.special_use);
	CHECK_INT(ms->ops->status(ms, "INBOX", &st, &err), 0);
	CHECK_INT(st.messages, 0);
	CHECK_INT(st.uidnext, 3);
	free(st.special_use);
	CHECK_INT(ms->ops->vanished(ms, f.inbox, 0, &gone, &ng, &err), 0);
	CHECK(ng == 2 && gone[0] == 1 && gone[1] == 2);
	free(gone);
	/* UID EXPUNGE touches only the listed \Deleted messages; the log comes out sorted */
	for (int i = 0; i < 3; i++)
		CHECK_INT(ms->ops->append(ms, "INBOX", IMAP_FLAG_DELETED, NULL, 0,
		                          (const unsigned char *)"A: b\r\n\r\n", 8, &uv, &uid,
		                          &err),
		          0);
	uint32_t some[2] = {5, 3};
	CHECK_INT(ms->ops->expunge(ms, f.inbox, some, 2, &gone, &ng, &err), 0);
	CHECK(ng == 2 && gone[0] == 3 && gone[1] == 5);
	free(gone);
	CHECK_INT(ms->ops->expunge(ms, f.inbox, NULL, 0, &gone, &ng, &err), 0);
	CHECK(ng == 1 && gone[0] == 4);
	free(gone);
	uint64_t used, limit, nmsg;
	CHECK_INT(ms->ops->quota(ms, &used, &limit, &nmsg, &err), 0);
	CHECK(limit == 0 && nmsg == 5 && used > 0);
	fx_deinit(&f);
}

int
main(void)
{
	RUN(test_parse_errors);
	RUN(test_simple_items);
	RUN(test_sections_simple);
	RUN(test_sections_nested);
	RUN(test_header_len);
	RUN(test_large_streamed);
	RUN(test_vanished);
	RUN(test_stub_store);
	return test_done("imap_fetch");
}
