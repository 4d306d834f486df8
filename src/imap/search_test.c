/* SEARCH, SORT and THREAD on the in-memory mailstore: every search key, OR/NOT/list nesting and
 * its depth limit, MIME-decoded header and body matches, CHARSET errors, ESEARCH RETURN parsing,
 * $ and MODSEQ; SORT by each criterion with REVERSE and the sequence tie-break; THREAD
 * ORDEREDSUBJECT and REFERENCES against RFC 5256 semantics (references, dummies, pruning,
 * subject grouping, loops, duplicate Message-IDs). */
#include <stdlib.h>
#include <string.h>

#include "imap/fetch.h"
#include "test.h"
#include "util/xalloc.h"

static const char *const smsgs[] = {
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.org\r\n"
    "Cc: Carol <carol@example.net>\r\n"
    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    "Message-ID: <s1@example.com>\r\n"
    "\r\n"
    "The quick brown fox\r\n",

    "From: \"Bob\" <bob@example.org>\r\n"
    "To: alice@example.com\r\n"
    "Subject: Re: Hello\r\n"
    "Date: Tue, 2 Jan 2024 23:30:00 -0500\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "R3LDvGV6aSBhdXMgWsO8cmljaA0K\r\n",

    "From: zed@example.com\r\n"
    "To: Dan <dan@example.com>\r\n"
    "Bcc: secret@example.com\r\n"
    "Subject: Hello\r\n"
    "X-Custom: some value\r\n"
    "Date: Fri, 5 Jan 2024 08:00:00 +0100\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "un caf=E9 noir\r\n"
    "--b--\r\n",

    "From: Mike <mike@example.com>\r\n"
    "Subject: aaa\r\n"
    "\r\n"
    "no date here, and a longer body to change the size a little\r\n",
};
#define NS (sizeof smsgs / sizeof smsgs[0])

struct sfx {
	struct imap_mailstore *ms;
	struct imap_msgref refs[16];
	struct imap_search_ctx ctx;
	struct buf out;
};

static void
sfx_init(struct sfx *f, const char *const *msgs, size_t n)
{
	size_t lens[16];
	for (size_t i = 0; i < n; i++)
		lens[i] = strlen(msgs[i]);
	f->ms = imap_mailstore_stub(msgs, lens, n);
	struct imap_ms_status st;
	struct err err;
	f->ms->ops->status(f->ms, "INBOX", &st, &err);
	free(st.special_use);
	memset(f->refs, 0, sizeof f->refs);
	for (size_t i = 0; i < n; i++) {
		f->refs[i].seq = (uint32_t)i + 1;
		f->refs[i].uid = (uint32_t)i + 1;
	}
	f->ctx = (struct imap_search_ctx){.ms = f->ms, .mailbox = st.id, .msgs = f->refs, .n = n};
	buf_init(&f->out, 0);
}

static void
sfx_search_init(struct sfx *f)
{
	sfx_init(f, smsgs, NS);
	f->refs[0].flags = IMAP_FLAG_SEEN;
	f->refs[0].keywords = "$Work";
	f->refs[1].flags = IMAP_FLAG_ANSWERED | IMAP_FLAG_FLAGGED;
	f->refs[2].flags = IMAP_FLAG_DELETED | IMAP_FLAG_DRAFT;
	f->refs[2].keywords = "$work other";
	static const uint64_t modseqs[] = {2, 3, 5, 9};
	for (size_t i = 0; i < NS; i++)
		f->refs[i].modseq = modseqs[i];
	/* internal dates are 1700000000 + i * 3600 (14-Nov-2023 22:13:20 UTC onwards) */
	f->ctx.now = 1700000000 + 3 * 3600 + 10;
}

static void
sfx_deinit(struct sfx *f)
{
	imap_mailstore_free(&f->ms);
	buf_deinit(&f->out);
}

static void
out_idx(struct sfx *f, const size_t *idx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_printf(&f->out, "%s%u", i ? " " : "", f->refs[idx[i]].seq);
}

/* Runs SEARCH args; the matching sequence numbers ("1 3"), or "ERR <text>" / "BADCHARSET". */
static const char *
search(struct sfx *f, const char *args)
{
	struct imap_cursor c;
	imap_cur_init(&c, slice_from(args), 32);
	unsigned ret;
	bool badcs;
	const char *e = NULL;
	buf_reset(&f->out);
	struct imap_search *s = imap_search_parse(&c, true, &ret, &badcs, &e);
	if (s == NULL) {
		buf_append_str(&f->out, badcs ? "BADCHARSET" : "ERR ");
		if (!badcs)
			buf_append_str(&f->out, e ? e : "(null)");
		return buf_cstr(&f->out);
	}
	size_t *idx, n;
	struct err err = {0};
	if (imap_search_run(s, &f->ctx, &idx, &n, &err) < 0) {
		buf_printf(&f->out, "RUNERR %s", err.msg);
	} else {
		out_idx(f, idx, n);
		free(idx);
	}
	imap_search_free(&s);
	return buf_cstr(&f->out);
}

static const struct {
	const char *args, *want;
} search_cases[] = {
    {"ALL", "1 2 3 4"},
    {"SEEN", "1"},
    {"UNSEEN", "2 3 4"},
    {"ANSWERED", "2"},
    {"UNANSWERED", "1 3 4"},
    {"FLAGGED", "2"},
    {"UNFLAGGED", "1 3 4"},
    {"DELETED", "3"},
    {"UNDELETED", "1 2 4"},
    {"DRAFT", "3"},
    {"UNDRAFT", "1 2 4"},
    {"KEYWORD $work", "1 3"},
    {"UNKEYWORD $WORK", "2 4"},
    {"KEYWORD other", "3"},
    {"NEW", ""},
    {"OLD", "1 2 3 4"},
    {"RECENT", ""},
    {"FROM alice", "1"},
    {"FROM \"BOB\"", "2"},
    {"FROM example.com", "1 3 4"},
    {"TO alice", "2"},
    {"CC carol", "1"},
    {"BCC secret", "3"},
    {"SUBJECT hello", "2 3"},
    {"SUBJECT \"KÖLN\"", "1"},
    {"SUBJECT \"grüße aus\"", "1"},
    {"HEADER X-Custom \"\"", "3"},
    {"HEADER x-custom VALUE", "3"},
    {"HEADER Nope \"\"", ""},
    {"HEADER Message-ID s1@", "1"},
    {"BODY fox", "1"},
    {"BODY \"ZÜRICH\"", "2"},
    {"BODY \"CAFÉ\"", "3"},
    {"BODY alice", ""},
    {"TEXT alice", "1 2"},
    {"TEXT fox", "1"},
    {"BEFORE 15-Nov-2023", "1 2"},
    {"ON 15-Nov-2023", "3 4"},
    {"ON \"14-Nov-2023\"", "1 2"},
    {"SINCE 15-Nov-2023", "3 4"},
    {"SENTON 2-Jan-2024", "2"},
    {"SENTBEFORE 2-Jan-2024", "1 4"},
    {"SENTSINCE 2-Jan-2024", "2 3"},
    {"SENTSINCE 1-Jan-2024 SENTBEFORE 5-Jan-2024", "1 2"},
    {"YOUNGER 3600", "4"},
    {"OLDER 3600", "1 2 3"},
    {"2:3", "2 3"},
    {"*", "4"},
    {"3:*", "3 4"},
    {"2,4", "2 4"},
    {"5:*", "4"},
    {"UID 2:3", "2 3"},
    {"UID *", "4"},
    {"UID 9", ""},
    {"MODSEQ 5", "3 4"},
    {"MODSEQ \"/flags/\\\\draft\" all 5", "3 4"},
    {"OR SEEN FLAGGED", "1 2"},
    {"NOT SEEN", "2 3 4"},
    {"NOT NOT SEEN", "1"},
    {"OR (SEEN DELETED) ANSWERED", "2"},
    {"NOT (OR SEEN FLAGGED)", "3 4"},
    {"(SEEN KEYWORD $Work)", "1"},
    {"OR OR SEEN DRAFT OR FLAGGED SUBJECT aaa", "1 2 3 4"},
    {"UNSEEN NOT DELETED", "2 4"},
    {"seen", "1"},
    {"CHARSET UTF-8 SUBJECT hello", "2 3"},
    {"CHARSET us-ascii ALL", "1 2 3 4"},
    {"CHARSET \"UTF-8\" ALL", "1 2 3 4"},
    {"CHARSET KOI8-R ALL", "BADCHARSET"},
    {"RETURN (MIN MAX) FLAGGED", "2"},
    {"", "ERR"},
    {"FOO", "ERR"},
    {"SEEN (", "ERR"},
    {"(SEEN", "ERR"},
    {"OR SEEN", "ERR"},
    {"LARGER x", "ERR"},
    {"BEFORE 1-Foo-2020", "ERR"},
    {"UID", "ERR"},
    {"HEADER Subject", "ERR"},
    {"SEEN  ALL", "ERR"},
    {"CHARSET", "ERR"},
    {"RETURN (FOO) ALL", "ERR"},
    {"MODSEQ \"/x\" all 5", "ERR"},
    {"YOUNGER 0", "ERR"},
};

static void
test_search_keys(void)
{
	struct sfx f;
	sfx_search_init(&f);
	for (size_t i = 0; i < sizeof search_cases / sizeof search_cases[0]; i++) {
		const char *got = search(&f, search_cases[i].args);
		const char *want = search_cases[i].want;
		bool ok = strcmp(want, "ERR") == 0 ? strncmp(got, "ERR ", 4) == 0
		                                   : strcmp(got, want) == 0;
		if (!ok)
			fprintf(stderr, "  search %s: got \"%s\" want \"%s\"\n",
			        search_cases[i].args, got, want);
		CHECK(ok);
	}
	/* sizes */
	char q[128];
	size_t l1 = strlen(smsgs[0]);
	snprintf(q, sizeof q, "LARGER %zu SMALLER %zu", l1 - 1, l1 + 1);
	CHECK_STR(search(&f, q), "1");
	snprintf(q, sizeof q, "SMALLER %zu", l1);
	CHECK(strstr(search(&f, q), "1") == NULL);
	sfx_deinit(&f);
}

static void
test_search_saved_and_nesting(void)
{
	struct sfx f;
	sfx_search_init(&f);
	uint32_t saved[] = {4, 1};
	f.ctx.saved = saved;
	f.ctx.n_saved = 2;
	CHECK_STR(search(&f, "$"), "1 4");
	CHECK_STR(search(&f, "UID $"), "1 4");
	CHECK_STR(search(&f, "NOT $"), "2 3");
	f.ctx.saved = NULL;
	f.ctx.n_saved = 0;
	CHECK_STR(search(&f, "$"), "");
	/* nesting is bounded: NOT chains and parentheses alike */
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i < 200; i++)
		buf_append_str(&b, "NOT ");
	buf_append_str(&b, "SEEN");
	CHECK(strncmp(search(&f, buf_cstr(&b)), "ERR", 3) == 0);
	buf_reset(&b);
	for (int i = 0; i < 200; i++)
		buf_append_str(&b, "(");
	buf_append_str(&b, "SEEN");
	for (int i = 0; i < 200; i++)
		buf_append_str(&b, ")");
	CHECK(strncmp(search(&f, buf_cstr(&b)), "ERR", 3) == 0);
	buf_reset(&b);
	for (int i = 0; i < 10; i++)
		buf_append_str(&b, "OR SEEN ");
	buf_append_str(&b, "DRAFT");
	CHECK_STR(search(&f, buf_cstr(&b)), "1 3");
	buf_deinit(&b);
	/* a message expunged meanwhile simply does not match */
	struct err err;
	uint32_t uid = 1, *failed, *ex;
	struct imap_ms_msg *ch;
	size_t nch, nf, nex;
	f.ms->ops->store(f.ms, f.ctx.mailbox, &uid, 1, IMAP_MS_FLAGS_ADD, IMAP_FLAG_DELETED, NULL,
	                 0, &ch, &nch, &failed, &nf, &err);
	imap_ms_msgs_free(&ch, nch);
	free(failed);
	f.ms->ops->expunge(f.ms, f.ctx.mailbox, NULL, 0, &ex, &nex, &err);
	free(ex);
	CHECK_STR(search(&f, "TEXT e"), "2 3 4");
	CHECK_STR(search(&f, "SEEN"), "1"); /* flags come from the view */
	sfx_deinit(&f);
}

static void
test_search_return(void)
{
	static const struct {
		const char *args;
		bool with_return;
		unsigned want;
		bool ok;
	} cases[] = {
	    {"RETURN (MIN MAX) ALL", true, IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX, true},
	    {"RETURN () ALL", true, IMAP_SEARCH_RET_ALL, true},
	    {"RETURN (COUNT SAVE) SEEN", true, IMAP_SEARCH_RET_COUNT | IMAP_SEARCH_RET_SAVE, true},
	    {"return (all) CHARSET UTF-8 ALL", true, IMAP_SEARCH_RET_ALL, true},
	    {"ALL", true, 0, true},
	    {"RETURN (MIN) ALL", false, 0, false},
	    {"RETURN (MIN ALL", true, 0, false},
	    {"RETURN MIN ALL", true, 0, false},
	    {"RETURN (PARTIAL 1:5) ALL", true, 0, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct imap_cursor c;
		imap_cur_init(&c, slice_from(cases[i].args), 16);
		unsigned ret = 99;
		bool badcs;
		const char *e = NULL;
		struct imap_search *s =
		    imap_search_parse(&c, cases[i].with_return, &ret, &badcs, &e);
		CHECK((s != NULL) == cases[i].ok);
		if (s != NULL)
			CHECK_INT(ret, cases[i].want);
		CHECK(s != NULL || e != NULL);
		imap_search_free(&s);
	}
	struct imap_cursor c;
	imap_cur_init(&c, slice_from("MODSEQ 3"), 16);
	const char *e;
	struct imap_search *s = imap_search_parse_keys(&c, &e);
	CHECK(s != NULL && imap_search_uses_modseq(s));
	imap_search_free(&s);
	imap_cur_init(&c, slice_from("SEEN"), 16);
	s = imap_search_parse_keys(&c, &e);
	CHECK(s != NULL && !imap_search_uses_modseq(s));
	imap_search_free(&s);
}

/* ---- SORT ---- */

static const char *
sort(struct sfx *f, const char *args)
{
	struct imap_cursor c;
	imap_cur_init(&c, slice_from(args), 16);
	bool badcs;
	const char *e = NULL;
	buf_reset(&f->out);
	struct imap_sort *s = imap_sort_parse(&c, &badcs, &e);
	if (s == NULL) {
		buf_append_str(&f->out, badcs ? "BADCHARSET" : "ERR");
		return buf_cstr(&f->out);
	}
	size_t *idx, n;
	struct err err = {0};
	if (imap_sort_run(s, &f->ctx, &idx, &n, &err) < 0) {
		buf_printf(&f->out, "RUNERR %s", err.msg);
	} else {
		out_idx(f, idx, n);
		free(idx);
	}
	imap_sort_free(&s);
	return buf_cstr(&f->out);
}

static void
test_sort(void)
{
	struct sfx f;
	sfx_search_init(&f);
	/* base subjects: "Grüße aus Köln", "Hello" (Re: removed), "Hello", "aaa" */
	CHECK_STR(sort(&f, "(SUBJECT) UTF-8 ALL"), "4 1 2 3");
	CHECK_STR(sort(&f, "(REVERSE SUBJECT) UTF-8 ALL"), "2 3 1 4");
	CHECK_STR(sort(&f, "(ARRIVAL) UTF-8 ALL"), "1 2 3 4");
	CHECK_STR(sort(&f, "(REVERSE ARRIVAL) US-ASCII ALL"), "4 3 2 1");
	/* sent dates: 1 Jan 10:00Z, 3 Jan 04:30Z, 5 Jan 07:00Z; 4 has none: its internal date */
	CHECK_STR(sort(&f, "(DATE) UTF-8 ALL"), "4 1 2 3");
	CHECK_STR(sort(&f, "(REVERSE DATE) UTF-8 ALL"), "3 2 1 4");
	/* first mailbox local parts: alice, bob, zed, mike */
	CHECK_STR(sort(&f, "(FROM) UTF-8 ALL"), "1 2 4 3");
	/* To: bob, alice, dan, none */
	CHECK_STR(sort(&f, "(TO) UTF-8 ALL"), "4 2 1 3");
	CHECK_STR(sort(&f, "(CC) UTF-8 ALL"), "2 3 4 1");
	char want[64];
	size_t sz[NS], order[NS] = {0, 1, 2, 3};
	for (size_t i = 0; i < NS; i++)
		sz[i] = strlen(smsgs[i]);
	for (size_t i = 1; i < NS; i++)
		for (size_t j = i; j > 0 && sz[order[j - 1]] > sz[order[j]]; j--) {
			size_t t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	snprintf(want, sizeof want, "%zu %zu %zu %zu", order[0] + 1, order[1] + 1, order[2] + 1,
	         order[3] + 1);
	CHECK_STR(sort(&f, "(SIZE) UTF-8 ALL"), want);
	CHECK_STR(sort(&f, "(SUBJECT REVERSE ARRIVAL) UTF-8 ALL"), "4 1 3 2");
	CHECK_STR(sort(&f, "(ARRIVAL) UTF-8 UNSEEN"), "2 3 4");
	CHECK_STR(sort(&f, "(SUBJECT) UTF-8 SUBJECT hello"), "2 3");
	CHECK_STR(sort(&f, "(SUBJECT) KOI8-R ALL"), "BADCHARSET");
	CHECK_STR(sort(&f, "(FOO) UTF-8 ALL"), "ERR");
	CHECK_STR(sort(&f, "() UTF-8 ALL"), "ERR");
	CHECK_STR(sort(&f, "(REVERSE) UTF-8 ALL"), "ERR");
	CHECK_STR(sort(&f, "(DATE) UTF-8"), "ERR");
	CHECK_STR(sort(&f, "DATE UTF-8 ALL"), "ERR");
	sfx_deinit(&f);
}

/* ---- THREAD ---- */

#define TMSG(id, hdrs, subj, day)                                                                  \
	"From: t@example.com\r\nMessage-ID: <" id ">\r\n" hdrs "Subject: " subj "\r\nDate: " day   \
	" Jan 2024 12:00:00 +0000\r\n\r\nx\r\n"

static const char *const tmsgs[] = {
    TMSG("a@x", "", "Topic A", "1"),
    TMSG("b@x", "In-Reply-To: <a@x>\r\n", "Re: Topic A", "2"),
    TMSG("c@x", "References: <a@x> <b@x>\r\n", "Re: Topic A", "3"),
    TMSG("d@x", "References: <a@x>\r\n", "RE: Topic A", "4"),
    TMSG("e@x", "", "Other", "5"),
    TMSG("f@x", "References: <missing@x>\r\n", "Lost", "6"),
    TMSG("g@x", "References: <missing2@x>\r\n", "Two", "7"),
    TMSG("h@x", "References:\r\n <missing2@x>\r\n", "Two", "8"),
    TMSG("i@x", "", "Re: Other", "9"),
    TMSG("j@x", "", "Topic A", "10"),
};
#define NT (sizeof tmsgs / sizeof tmsgs[0])

static const char *
thread(struct sfx *f, const char *args, bool uid)
{
	struct imap_cursor c;
	imap_cur_init(&c, slice_from(args), 16);
	bool badcs;
	const char *e = NULL;
	buf_reset(&f->out);
	struct imap_thread *t = imap_thread_parse(&c, &badcs, &e);
	if (t == NULL) {
		buf_append_str(&f->out, badcs ? "BADCHARSET" : "ERR");
		return buf_cstr(&f->out);
	}
	struct err err = {0};
	if (imap_thread_run(t, &f->ctx, uid, &f->out, &err) < 0)
		buf_printf(&f->out, "RUNERR %s", err.msg);
	imap_thread_free(&t);
	return buf_cstr(&f->out);
}

static void
test_thread(void)
{
	struct sfx f;
	sfx_init(&f, tmsgs, NT);
	CHECK_STR(thread(&f, "REFERENCES UTF-8 ALL", false), "((1 (2 3)(4))(10))(5 9)(6)((7)(8))");
	CHECK_STR(thread(&f, "ORDEREDSUBJECT UTF-8 ALL", false), "(1 (2)(3)(4)(10))(5 9)(6)(7 8)");
	/* a subset: without 10 the "Topic A" thread needs no dummy; without 8 the dummy for
	 * <missing2@x> has one child and is pruned */
	CHECK_STR(thread(&f, "REFERENCES UTF-8 NOT 8 NOT 10", false), "(1 (2 3)(4))(5 9)(6)(7)");
	/* without 2, message 3 still hangs below 1 through the dummy for <b@x> (promoted) */
	CHECK_STR(thread(&f, "REFERENCES UTF-8 1:9 NOT 2", false), "(1 (3)(4))(5 9)(6)((7)(8))");
	CHECK_STR(thread(&f, "ORDEREDSUBJECT UTF-8 1:2", false), "(1 2)");
	CHECK_STR(thread(&f, "REFERENCES UTF-8 SUBJECT nothing", false), "");
	CHECK_STR(thread(&f, "REFERENCES UTF-8 ALL", true), "((1 (2 3)(4))(10))(5 9)(6)((7)(8))");
	CHECK_STR(thread(&f, "FOO UTF-8 ALL", false), "ERR");
	CHECK_STR(thread(&f, "REFERENCES KOI8-R ALL", false), "BADCHARSET");
	CHECK_STR(thread(&f, "REFERENCES UTF-8", false), "ERR");
	sfx_deinit(&f);
}

static const char *const lmsgs[] = {
    /* a loop through References, a duplicate Message-ID, a self reference */
    TMSG("x@x", "References: <y@x>\r\n", "loop", "1"),
    TMSG("y@x", "References: <x@x>\r\n", "loop", "2"),
    TMSG("x@x", "", "dup", "3"),
    TMSG("z@x", "References: <z@x>\r\n", "self", "4"),
    "Subject: no id, no date\r\n\r\nbody\r\n",
    TMSG("w@x", "In-Reply-To: <x@x> (comment) <y@x>\r\n", "Re: loop", "6"),
};

static void
test_thread_hostile(void)
{
	struct sfx f;
	sfx_init(&f, lmsgs, sizeof lmsgs / sizeof lmsgs[0]);
	const char *r = thread(&f, "REFERENCES UTF-8 ALL", false);
	/* every message appears exactly once */
	for (int i = 1; i <= 6; i++) {
		char d[16];
		snprintf(d, sizeof d, "%d", i);
		const char *p = strstr(r, d);
		CHECK(p != NULL && strstr(p + 1, d) == NULL);
	}
	CHECK_STR(r, "(5)(2 1 6)(3)(4)");
	r = thread(&f, "ORDEREDSUBJECT UTF-8 ALL", false);
	CHECK_STR(r, "(5)(1 (2)(6))(3)(4)");
	/* message 4 expunged by another session meanwhile: still listed (the view has it), with
	 * no header, so no date (it sorts first) and no subject */
	struct err err;
	uint32_t uid = 4, *failed, *ex;
	struct imap_ms_msg *ch;
	size_t nch, nf, nex;
	f.ms->ops->store(f.ms, f.ctx.mailbox, &uid, 1, IMAP_MS_FLAGS_ADD, IMAP_FLAG_DELETED, NULL,
	                 0, &ch, &nch, &failed, &nf, &err);
	imap_ms_msgs_free(&ch, nch);
	free(failed);
	f.ms->ops->expunge(f.ms, f.ctx.mailbox, NULL, 0, &ex, &nex, &err);
	free(ex);
	CHECK_STR(thread(&f, "REFERENCES UTF-8 ALL", false), "(4)(5)(2 1 6)(3)");
	CHECK_STR(thread(&f, "ORDEREDSUBJECT UTF-8 ALL", false), "(4)(5)(1 (2)(6))(3)");
	CHECK_STR(sort(&f, "(DATE) UTF-8 ALL"), "4 5 1 2 3 6");
	CHECK_STR(sort(&f, "(SUBJECT) UTF-8 ALL"), "4 3 1 2 6 5");
	sfx_deinit(&f);
}

/* A chain of 1000 replies: the tree is split every THREAD_DEPTH_MAX levels instead of being
 * walked recursively that deep; every message still appears once, in date order. */
static void
test_thread_deep(void)
{
	enum { N = 1000 };
	char **m = xcalloc(N, sizeof *m);
	size_t *lens = xcalloc(N, sizeof *lens);
	for (int i = 0; i < N; i++) {
		m[i] = xasprintf(
		    "Message-ID: <%d@deep>\r\nReferences: <%d@deep>\r\n"
		    "Subject: Re: deep %d\r\nDate: 1 Jan 2024 00:00:00 +0000\r\n\r\nx\r\n",
		    i, i - 1, i);
		lens[i] = strlen(m[i]);
	}
	struct imap_mailstore *ms = imap_mailstore_stub((const char *const *)m, lens, N);
	struct imap_ms_status st;
	struct err err = {0};
	ms->ops->status(ms, "INBOX", &st, &err);
	free(st.special_use);
	struct imap_msgref *refs = xcalloc(N, sizeof *refs);
	for (int i = 0; i < N; i++)
		refs[i].seq = refs[i].uid = (uint32_t)i + 1;
	struct imap_search_ctx ctx = {.ms = ms, .mailbox = st.id, .msgs = refs, .n = N};
	struct imap_cursor c;
	imap_cur_init(&c, slice_from("REFERENCES UTF-8 ALL"), 16);
	bool badcs;
	const char *e;
	struct imap_thread *t = imap_thread_parse(&c, &badcs, &e);
	struct buf out;
	buf_init(&out, 0);
	CHECK(t != NULL && imap_thread_run(t, &ctx, false, &out, &err) == 0);
	/* "(1 2 ... 256)(257 ...)": numbers ascending, each once */
	const char *p = buf_cstr(&out);
	unsigned next = 1, seen = 0, parens = 0;
	while (*p) {
		if (*p == '(' || *p == ')' || *p == ' ') {
			parens += *p == '(';
			p++;
			continue;
		}
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		CHECK(v == next);
		next = (unsigned)v + 1;
		seen++;
		p = end;
	}
	CHECK_INT(seen, N);
	CHECK(parens >= 4 && parens < 10);
	buf_deinit(&out);
	imap_thread_free(&t);
	imap_mailstore_free(&ms);
	for (int i = 0; i < N; i++)
		free(m[i]);
	free(m);
	free(lens);
	free(refs);
}

static void
test_date_parse(void)
{
	bool imap_search_date_parse(struct slice v, int64_t * t_r, int64_t * day_r);
	static const struct {
		const char *in;
		bool ok;
		int64_t t;
	} cases[] = {
	    {"Mon, 7 Feb 1994 21:52:25 -0800", true, 760686745},
	    {"7 Feb 1994 21:52:25 -0800", true, 760686745},
	    {"Mon, 07 Feb 94 21:52 PST", true, 760686720},
	    {"Tue, 1 Jan 2030 00:00:00 +0000 (UTC)", true, 1893456000},
	    {"1 Jan 2030 00:00:00 GMT", true, 1893456000},
	    {"garbage", false, 0},
	    {"32 Jan 2024 10:00", false, 0},
	    {"", false, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t t = 0, day = 0;
		bool ok = imap_search_date_parse(slice_from(cases[i].in), &t, &day);
		CHECK(ok == cases[i].ok);
		if (ok && cases[i].ok)
			CHECK_INT(t, cases[i].t);
	}
}

int
main(void)
{
	RUN(test_search_keys);
	RUN(test_search_saved_and_nesting);
	RUN(test_search_return);
	RUN(test_sort);
	RUN(test_thread);
	RUN(test_thread_hostile);
	RUN(test_thread_deep);
	RUN(test_date_parse);
	return test_done("imap_search");
}
