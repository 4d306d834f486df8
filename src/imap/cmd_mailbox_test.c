/* Mailbox commands (cmd_mailbox.c, cmd_list.c) and reply helpers (reply.c), driven directly
 * through the imap_private.h contract on the in-memory mailstore (imap_mailstore_stub):
 * name encoding (modified UTF-7 / UTF-8, INBOX case), CREATE/DELETE/RENAME/SUBSCRIBE, STATUS,
 * NAMESPACE, QUOTA, LIST/LSUB with every option, pattern edge cases and hostile patterns. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "imap/imap_private.h"
#include "test.h"
#include "util/xalloc.h"

static const char *const msgs[] = {
    "From: a@a.example\r\nSubject: one\r\n\r\nHello one\r\n",
    "From: b@a.example\r\nSubject: two\r\n\r\nHello two, a longer body\r\n",
    "From: c@a.example\r\nSubject: three\r\n\r\nHello three\r\n",
};

static struct imap_mailstore *ms;
static struct buf out;
static struct imap_cmdctx cx;

static void
setup(bool utf8)
{
	size_t lens[3];
	for (size_t i = 0; i < 3; i++)
		lens[i] = strlen(msgs[i]);
	ms = imap_mailstore_stub(msgs, lens, 3);
	buf_init(&out, 0);
	cx = (struct imap_cmdctx){
	    .ms = ms, .out = &out, .tag = "t", .utf8 = utf8, .rev2 = false, .depth_max = 16};
}

static void
teardown(void)
{
	imap_mailstore_free(&ms);
	buf_deinit(&out);
}

static int last_rc;

/* Runs "<verb> <args>" (args = everything after the verb and its space) and returns the
 * responses. */
static const char *
run(const char *verb, const char *args)
{
	buf_reset(&out);
	cx.selected_gone = false;
	struct imap_cursor c;
	imap_cur_init(&c, slice_from(args), cx.depth_max);
	int r;
	if (!strcmp(verb, "LIST"))
		r = imap_cmd_list(&cx, &c, false);
	else if (!strcmp(verb, "LSUB"))
		r = imap_cmd_list(&cx, &c, true);
	else if (!strcmp(verb, "CREATE"))
		r = imap_cmd_create(&cx, &c);
	else if (!strcmp(verb, "DELETE"))
		r = imap_cmd_delete(&cx, &c);
	else if (!strcmp(verb, "RENAME"))
		r = imap_cmd_rename(&cx, &c);
	else if (!strcmp(verb, "SUBSCRIBE"))
		r = imap_cmd_subscribe(&cx, &c, true);
	else if (!strcmp(verb, "UNSUBSCRIBE"))
		r = imap_cmd_subscribe(&cx, &c, false);
	else if (!strcmp(verb, "STATUS"))
		r = imap_cmd_status(&cx, &c);
	else if (!strcmp(verb, "NAMESPACE"))
		r = imap_cmd_namespace(&cx, &c);
	else if (!strcmp(verb, "GETQUOTA"))
		r = imap_cmd_getquota(&cx, &c);
	else if (!strcmp(verb, "GETQUOTAROOT"))
		r = imap_cmd_getquotaroot(&cx, &c);
	else
		r = imap_cmd_setquota(&cx, &c);
	last_rc = r;
	return buf_cstr(&out);
}

static bool
has(const char *s, const char *sub)
{
	if (strstr(s, sub) != NULL)
		return true;
	fprintf(stderr, "  missing \"%s\" in:\n%s", sub, s);
	return false;
}

static bool
lacks(const char *s, const char *sub)
{
	if (strstr(s, sub) == NULL)
		return true;
	fprintf(stderr, "  unexpected \"%s\" in:\n%s", sub, s);
	return false;
}

static size_t
count(const char *s, const char *sub)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, sub)) != NULL; p += strlen(sub))
		n++;
	return n;
}

/* ---- reply.c ---- */

static void
test_reply_helpers(void)
{
	struct buf b;
	buf_init(&b, 0);
	imap_reply_tagged(&b, "a1", "NO", "CANNOT", "bad %s\r\nx", "name");
	CHECK_STR(buf_cstr(&b), "a1 NO [CANNOT] bad name  x\r\n");
	buf_reset(&b);
	imap_reply_tagged(&b, "a2", "OK", NULL, "done");
	CHECK_STR(buf_cstr(&b), "a2 OK done\r\n");

	static const struct {
		int code;
		bool trycreate;
		const char *want;
	} errs[] = {
	    {IMAP_MS_ENONEXISTENT, false, "t NO [NONEXISTENT] m\r\n"},
	    {IMAP_MS_ENONEXISTENT, true, "t NO [TRYCREATE] m\r\n"},
	    {IMAP_MS_EEXISTS, false, "t NO [ALREADYEXISTS] m\r\n"},
	    {IMAP_MS_EOVERQUOTA, false, "t NO [OVERQUOTA] m\r\n"},
	    {IMAP_MS_EINVAL, false, "t NO [CANNOT] m\r\n"},
	    {IMAP_MS_EHASCHILDREN, false, "t NO [HASCHILDREN] m\r\n"},
	    {IMAP_MS_EINTERNAL, false,
	     "t NO [SERVERBUG] Internal error occurred, try again later\r\n"},
	};
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		struct err e = {.code = errs[i].code};
		(void)snprintf(e.msg, sizeof e.msg, "m");
		buf_reset(&b);
		imap_reply_ms_error(&b, "t", &e, errs[i].trycreate);
		CHECK_STR(buf_cstr(&b), errs[i].want);
	}

	static const struct {
		const char *in;
		bool utf8;
		const char *want;
	} strs[] = {
	    {"abc", false, "\"abc\""},
	    {"a\"b\\c", false, "\"a\\\"b\\\\c\""},
	    {"", false, "\"\""},
	    {"a\r\nb", false, "{4}\r\na\r\nb"},
	    {"caf\xc3\xa9", false, "{5}\r\ncaf\xc3\xa9"},
	    {"caf\xc3\xa9", true, "\"caf\xc3\xa9\""},
	    {"bad\xc3", true, "{4}\r\nbad\xc3"},
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		buf_reset(&b);
		imap_string_out(&b, strs[i].in, strlen(strs[i].in), strs[i].utf8);
		CHECK_STR(buf_cstr(&b), strs[i].want);
	}
	buf_reset(&b);
	imap_string_out(&b, NULL, 0, false);
	CHECK_STR(buf_cstr(&b), "NIL");
	char big[1100];
	memset(big, 'x', sizeof big);
	buf_reset(&b);
	imap_string_out(&b, big, sizeof big, true);
	CHECK(strncmp(buf_cstr(&b), "{1100}\r\n", 8) == 0);

	static const struct {
		const char *in, *want;
	} astr[] = {
	    {"abc", "abc"},   {"a]b", "a]b"},       {"NIL", "\"NIL\""}, {"nil", "\"nil\""},
	    {"", "\"\""},     {"a b", "\"a b\""},   {"a*", "\"a*\""},   {"a(b", "\"a(b\""},
	    {"a{", "\"a{\""}, {"a\"", "\"a\\\"\""},
	};
	for (size_t i = 0; i < sizeof astr / sizeof astr[0]; i++) {
		buf_reset(&b);
		imap_astring_out(&b, astr[i].in, false);
		CHECK_STR(buf_cstr(&b), astr[i].want);
	}
	buf_deinit(&b);
}

/* ---- names ---- */

static void
check_arg(bool utf8, const char *wire, int want_rc, bool want_bad, const char *want_name)
{
	struct imap_cmdctx c0 = {.utf8 = utf8, .depth_max = 16};
	struct imap_cursor c;
	imap_cur_init(&c, slice_from(wire), 16);
	struct buf name;
	buf_init(&name, 0);
	bool bad = false;
	const char *why = NULL;
	int r = imap_mailbox_arg(&c0, &c, &name, &bad, &why);
	CHECK_INT(r, want_rc);
	if (r != want_rc)
		fprintf(stderr, "  for \"%s\": why=%s\n", wire, why ? why : "-");
	if (r == 0)
		CHECK_STR(buf_cstr(&name), want_name);
	else
		CHECK(bad == want_bad && why != NULL);
	buf_deinit(&name);
}

static void
test_mailbox_arg(void)
{
	check_arg(false, "INBOX", 0, false, "INBOX");
	check_arg(false, "inbox", 0, false, "INBOX");
	check_arg(false, "\"InBoX\"", 0, false, "INBOX");
	check_arg(false, "inbox/Sub", 0, false, "INBOX/Sub");
	check_arg(false, "inboxes", 0, false, "inboxes");
	check_arg(false, "Work/Projects", 0, false, "Work/Projects");
	check_arg(false, "&ZeVnLIqe-", 0, false, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	check_arg(false, "A&-B", 0, false, "A&B");
	check_arg(false, "{3}\r\nabc", 0, false, "abc");
	/* modified UTF-7 errors are NO [CANNOT], not BAD */
	check_arg(false, "&Jjo", -1, false, NULL);
	check_arg(false, "\"&AGE-\"", -1, false, NULL); /* "a" must not be encoded */
	check_arg(false, "\"caf\xc3\xa9\"", -1, false, NULL);
	/* UTF-8 mode: names as they are, "&" is a plain character */
	check_arg(true, "\"caf\xc3\xa9\"", 0, false, "caf\xc3\xa9");
	check_arg(true, "A&-B", 0, false, "A&-B");
	check_arg(true, "\"bad\xc3\"", -1, false, NULL);
	check_arg(true, "\"\xc0\xaf\"", -1, false, NULL); /* overlong */
	/* shape */
	check_arg(false, "\"\"", -1, false, NULL);
	check_arg(false, "/abc", -1, false, NULL);
	check_arg(false, "abc/", -1, false, NULL);
	check_arg(false, "a//b", -1, false, NULL);
	check_arg(false, "{3}\r\na\tb", -1, false, NULL);
	check_arg(false, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", 0, false,
	          "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p");
	check_arg(false, "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", -1, false, NULL);
	char longname[1100];
	memset(longname, 'n', 1025);
	longname[1025] = '\0';
	check_arg(false, longname, -1, false, NULL);
	longname[1024] = '\0';
	check_arg(false, longname, 0, false, longname);
	/* syntax: BAD */
	check_arg(false, "", -1, true, NULL);
	check_arg(false, "(x)", -1, true, NULL);
	check_arg(false, "\"open", -1, true, NULL);
}

static void
test_mailbox_out(void)
{
	struct buf b;
	buf_init(&b, 0);
	imap_mailbox_out(&b, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", false);
	CHECK_STR(buf_cstr(&b), "\"&ZeVnLIqe-\"");
	buf_reset(&b);
	imap_mailbox_out(&b, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", true);
	CHECK_STR(buf_cstr(&b), "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"");
	buf_reset(&b);
	imap_mailbox_out(&b, "A&B \"q\"", false);
	CHECK_STR(buf_cstr(&b), "\"A&-B \\\"q\\\"\"");
	buf_deinit(&b);
}

/* ---- CREATE / DELETE / RENAME / SUBSCRIBE ---- */

static void
test_create(void)
{
	setup(false);
	CHECK(has(run("CREATE", "Work"), "t OK"));
	CHECK(has(run("CREATE", "Work"), "t NO [ALREADYEXISTS]"));
	CHECK(has(run("CREATE", "INBOX"), "t NO [ALREADYEXISTS]"));
	CHECK(has(run("CREATE", "inbox"), "t NO [ALREADYEXISTS]"));
	CHECK(has(run("CREATE", "Trailing/"), "t OK"));
	CHECK(has(run("LIST", "\"\" Trailing"), "* LIST (\\HasNoChildren) \"/\" \"Trailing\""));
	/* missing superior levels become real mailboxes */
	CHECK(has(run("CREATE", "a/b/c"), "t OK"));
	const char *r = run("LIST", "\"\" a*");
	CHECK(has(r, "* LIST (\\HasChildren) \"/\" \"a\"\r\n"));
	CHECK(has(r, "* LIST (\\HasChildren) \"/\" \"a/b\"\r\n"));
	CHECK(has(r, "* LIST (\\HasNoChildren) \"/\" \"a/b/c\"\r\n"));
	CHECK(has(run("STATUS", "a (MESSAGES)"), "* STATUS \"a\" (MESSAGES 0)"));
	CHECK(has(run("CREATE", "INBOX/Child"), "t OK"));
	CHECK(has(run("LIST", "\"\" INBOX"), "* LIST (\\HasChildren) \"/\" \"INBOX\""));
	/* CREATE-SPECIAL-USE */
	CHECK(has(run("CREATE", "Arch (USE (\\Archive))"), "t OK"));
	CHECK(has(run("LIST", "\"\" Arch"), "* LIST (\\HasNoChildren \\Archive) \"/\" \"Arch\""));
	CHECK(has(run("CREATE", "J (use (\\junk))"), "t OK"));
	CHECK(has(run("LIST", "\"\" J"), "\\Junk)"));
	CHECK(has(run("CREATE", "X1 (USE (\\Bogus))"), "t NO [USEATTR]"));
	CHECK(has(run("CREATE", "X2 (USE (\\Sent \\Trash))"), "t NO [USEATTR]"));
	CHECK(has(run("CREATE", "X3 (USE ())"), "t OK"));
	CHECK(has(run("CREATE", "X4 (FOO (bar))"), "t BAD"));
	CHECK_INT(last_rc, -1);
	CHECK(has(run("CREATE", "X5 (USE (\\Sent)"), "t BAD"));
	CHECK(has(run("CREATE", "X6 junk"), "t BAD"));
	CHECK(has(run("LIST", "\"\" X%"), "\"X3\""));
	CHECK(lacks(buf_cstr(&out), "X1"));
	CHECK(lacks(buf_cstr(&out), "X2"));
	/* refused names */
	CHECK(has(run("CREATE", "\"a*b\""), "t NO [CANNOT]"));
	CHECK(has(run("CREATE", "\"a%b\""), "t NO [CANNOT]"));
	CHECK(has(run("CREATE", "\"a//b\""), "t NO [CANNOT]"));
	CHECK(has(run("CREATE", "&Jjo"), "t NO [CANNOT] Invalid mailbox name encoding"));
	CHECK_INT(last_rc, 0);
	CHECK(has(run("CREATE", ""), "t BAD"));
	CHECK_INT(last_rc, -1);
	teardown();
}

static void
test_utf7_roundtrip(void)
{
	setup(false);
	CHECK(has(run("CREATE", "&ZeVnLIqe-"), "t OK"));
	CHECK(has(run("LIST", "\"\" *"), "* LIST (\\HasNoChildren) \"/\" \"&ZeVnLIqe-\"\r\n"));
	CHECK(has(run("STATUS", "&ZeVnLIqe- (MESSAGES)"), "* STATUS \"&ZeVnLIqe-\" (MESSAGES 0)"));
	CHECK(has(run("LIST", "\"\" &ZeVn*"), "&ZeVnLIqe-"));
	/* the same mailbox seen by a UTF-8 (IMAP4rev2) client */
	cx.utf8 = cx.rev2 = true;
	CHECK(has(run("LIST", "\"\" *"),
	          "* LIST (\\HasNoChildren) \"/\" \"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"\r\n"));
	CHECK(has(run("LIST", "\"\" \"\xe6\x97\xa5*\""), "\xe6\x97\xa5\xe6\x9c\xac"));
	CHECK(has(run("CREATE", "\"caf\xc3\xa9/\xc3\xa0\""), "t OK"));
	CHECK(has(run("CREATE", "A&B"), "t OK"));
	cx.utf8 = cx.rev2 = false;
	const char *r = run("LIST", "\"\" *");
	CHECK(has(r, "\"caf&AOk-\""));
	CHECK(has(r, "\"caf&AOk-/&AOA-\""));
	CHECK(has(r, "\"A&-B\""));
	CHECK(has(run("DELETE", "caf&AOk-/&AOA-"), "t OK"));
	teardown();
}

static void
test_delete(void)
{
	setup(false);
	CHECK(has(run("DELETE", "INBOX"), "t NO [CANNOT]"));
	CHECK(has(run("DELETE", "inbox"), "t NO [CANNOT]"));
	CHECK(has(run("DELETE", "Nope"), "t NO [NONEXISTENT]"));
	CHECK(has(run("CREATE", "P/C"), "t OK"));
	CHECK(has(run("DELETE", "P"), "t NO [HASCHILDREN]"));
	CHECK(has(run("DELETE", "P/C"), "t OK"));
	CHECK(!cx.selected_gone);
	CHECK(has(run("DELETE", "P"), "t OK"));
	CHECK(has(run("DELETE", "P"), "t NO [NONEXISTENT]"));
	CHECK(has(run("DELETE", "P extra"), "t BAD"));
	/* the selected mailbox */
	struct imap_ms_status st = {0};
	struct err err = {0};
	CHECK(ms->ops->status(ms, "Trash", &st, &err) == 0);
	free(st.special_use);
	cx.selected = st.id;
	CHECK(has(run("DELETE", "Trash"), "t OK"));
	CHECK(cx.selected_gone);
	teardown();
}

static void
test_rename(void)
{
	setup(false);
	CHECK(has(run("CREATE", "Old/Sub"), "t OK"));
	CHECK(has(run("RENAME", "Old New"), "t OK"));
	const char *r = run("LIST", "\"\" *");
	CHECK(has(r, "\"New\""));
	CHECK(has(r, "\"New/Sub\""));
	CHECK(lacks(r, "\"Old"));
	CHECK(has(run("RENAME", "New Sent"), "t NO [ALREADYEXISTS]"));
	CHECK(has(run("RENAME", "Nope Other"), "t NO [NONEXISTENT]"));
	CHECK(has(run("RENAME", "New INBOX"), "t NO [ALREADYEXISTS]"));
	CHECK(has(run("RENAME", "New \"a*\""), "t NO [CANNOT]"));
	CHECK(has(run("RENAME", "New New/Inside"), "t NO [CANNOT]"));
	CHECK(lacks(run("LIST", "\"\" New/*"), "Inside")); /* nothing left behind */
	CHECK(has(run("RENAME", "New"), "t BAD"));
	CHECK_INT(last_rc, -1);
	/* superior levels of the target are created */
	CHECK(has(run("RENAME", "New Deep/Er/Name"), "t OK"));
	r = run("LIST", "\"\" Deep*");
	CHECK(has(r, "* LIST (\\HasChildren) \"/\" \"Deep\""));
	CHECK(has(r, "* LIST (\\HasChildren) \"/\" \"Deep/Er\""));
	CHECK(has(r, "* LIST (\\HasChildren) \"/\" \"Deep/Er/Name\""));
	CHECK(has(r, "* LIST (\\HasNoChildren) \"/\" \"Deep/Er/Name/Sub\""));
	/* RENAME INBOX: messages move, INBOX stays (empty) */
	struct imap_ms_status st = {0};
	struct err err = {0};
	CHECK(ms->ops->status(ms, "INBOX", &st, &err) == 0);
	free(st.special_use);
	cx.selected = st.id;
	CHECK(has(run("RENAME", "inbox Saved"), "t OK"));
	CHECK(cx.selected_gone);
	CHECK(has(run("STATUS", "Saved (MESSAGES)"), "(MESSAGES 3)"));
	CHECK(has(run("STATUS", "INBOX (MESSAGES)"), "(MESSAGES 0)"));
	/* renaming another (selected) mailbox keeps the session's selection */
	CHECK(ms->ops->status(ms, "Saved", &st, &err) == 0);
	free(st.special_use);
	cx.selected = st.id;
	CHECK(has(run("RENAME", "Saved Kept"), "t OK"));
	CHECK(!cx.selected_gone);
	teardown();
}

static void
test_subscribe_lsub(void)
{
	setup(false);
	CHECK(has(run("CREATE", "Fruit/Banana"), "t OK"));
	CHECK(has(run("CREATE", "Fruit/Apple"), "t OK"));
	CHECK(has(run("CREATE", "Veg"), "t OK"));
	CHECK(has(run("CREATE", "Veg/Leek"), "t OK"));
	CHECK(has(run("SUBSCRIBE", "Fruit/Banana"), "t OK"));
	CHECK(has(run("SUBSCRIBE", "Veg"), "t OK"));
	CHECK(has(run("SUBSCRIBE", "Veg/Leek"), "t OK"));
	CHECK(has(run("SUBSCRIBE", "Ghost/Only"), "t OK")); /* no such mailbox: allowed */
	CHECK(has(run("UNSUBSCRIBE", "Trash"), "t OK"));
	CHECK(has(run("SUBSCRIBE", "\"a//b\""), "t NO [CANNOT]"));
	CHECK(has(run("SUBSCRIBE", ""), "t BAD"));

	/* LSUB: \Noselect for levels that are not subscribed but hide subscribed ones */
	const char *r = run("LSUB", "\"\" %");
	CHECK(has(r, "* LSUB () \"/\" \"INBOX\"\r\n"));
	CHECK(has(r, "* LSUB (\\Noselect) \"/\" \"Fruit\"\r\n"));
	CHECK(has(r, "* LSUB () \"/\" \"Veg\"\r\n"));
	CHECK(has(r, "* LSUB (\\Noselect) \"/\" \"Ghost\"\r\n"));
	CHECK(lacks(r, "Trash"));
	CHECK(lacks(r, "Banana"));
	CHECK(has(r, "t OK LSUB completed"));
	r = run("LSUB", "\"\" *");
	CHECK(has(r, "* LSUB () \"/\" \"Fruit/Banana\"\r\n"));
	CHECK(has(r, "* LSUB () \"/\" \"Ghost/Only\"\r\n"));
	CHECK(lacks(r, "\"Fruit\""));
	CHECK(lacks(r, "Apple"));
	CHECK(has(run("LSUB", "\"\" \"\""), "t OK"));
	CHECK(has(run("LSUB", "(SUBSCRIBED) \"\" *"), "t BAD"));

	/* LIST (SUBSCRIBED): accurate attributes, \NonExistent for subscription-only names */
	r = run("LIST", "(SUBSCRIBED) \"\" *");
	CHECK(has(r, "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Fruit/Banana\"\r\n"));
	CHECK(has(r, "* LIST (\\NonExistent \\Subscribed) \"/\" \"Ghost/Only\"\r\n"));
	CHECK(has(r, "* LIST (\\HasChildren \\Subscribed) \"/\" \"Veg\"\r\n"));
	CHECK(lacks(r, "\"Fruit\""));
	CHECK(lacks(r, "Trash"));
	/* RECURSIVEMATCH: parents of subscribed names get CHILDINFO */
	r = run("LIST", "(SUBSCRIBED RECURSIVEMATCH) \"\" %");
	CHECK(
	    has(r, "* LIST (\\HasChildren) \"/\" \"Fruit\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"));
	CHECK(has(r, "* LIST (\\HasChildren \\Subscribed) \"/\" \"Veg\" (\"CHILDINFO\" "
	             "(\"SUBSCRIBED\"))\r\n"));
	CHECK(
	    has(r, "* LIST (\\NonExistent) \"/\" \"Ghost\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"));
	CHECK(has(r, "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"\r\n"));
	CHECK(lacks(r, "Trash"));
	CHECK(has(run("LIST", "(RECURSIVEMATCH) \"\" %"), "t BAD"));
	CHECK(has(run("LIST", "(REMOTE RECURSIVEMATCH) \"\" %"), "t BAD"));
	/* RETURN (SUBSCRIBED) on a plain selection */
	r = run("LIST", "\"\" % RETURN (SUBSCRIBED)");
	CHECK(has(r, "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"\r\n"));
	CHECK(has(r, "* LIST (\\HasNoChildren \\Sent \\Subscribed) \"/\" \"Sent\"\r\n"));
	CHECK(lacks(r, "Ghost")); /* plain LIST: only mailboxes and their parents */
	/* rev2: a plain LIST never shows subscription-only names either */
	cx.utf8 = cx.rev2 = true;
	CHECK(lacks(run("LIST", "\"\" *"), "Ghost"));
	teardown();
}

/* ---- STATUS, NAMESPACE, QUOTA ---- */

static void
test_status(void)
{
	setup(false);
	const char *r = run("STATUS", "INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE "
	                              "HIGHESTMODSEQ RECENT)");
	CHECK(has(r, "* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY "));
	CHECK(has(r, " UNSEEN 3 DELETED 0 SIZE "));
	CHECK(has(r, " RECENT 0)\r\n"));
	CHECK(has(r, "t OK STATUS completed"));
	size_t sz = strlen(msgs[0]) + strlen(msgs[1]) + strlen(msgs[2]);
	char want[64];
	(void)snprintf(want, sizeof want, "SIZE %zu ", sz);
	CHECK(has(r, want));
	/* order kept, duplicates once, case-insensitive */
	CHECK(has(run("STATUS", "inbox (unseen messages UNSEEN)"),
	          "* STATUS \"INBOX\" (UNSEEN 3 MESSAGES 3)\r\n"));
	CHECK(has(run("STATUS", "INBOX (MESSAGES BOGUS)"), "t BAD"));
	CHECK_INT(last_rc, -1);
	CHECK(has(run("STATUS", "INBOX ()"), "t BAD"));
	CHECK(has(run("STATUS", "INBOX"), "t BAD"));
	CHECK(has(run("STATUS", "INBOX MESSAGES"), "t BAD"));
	CHECK(has(run("STATUS", "INBOX (MESSAGES) x"), "t BAD"));
	CHECK(has(run("STATUS", "Nope (MESSAGES)"), "t NO [NONEXISTENT]"));
	CHECK_INT(last_rc, 0);
	CHECK(has(run("STATUS", "&Jjo (MESSAGES)"), "t NO [CANNOT]"));
	teardown();
}

static int
fake_quota(struct imap_mailstore *m, uint64_t *used_r, uint64_t *limit_r, uint64_t *messages_r,
           struct err *err)
{
	*used_r = 1025;
	*limit_r = 10 * 1024 * 1024;
	*messages_r = 3;
	return 0;
}

static void
test_namespace_quota(void)
{
	setup(false);
	CHECK_STR(run("NAMESPACE", ""),
	          "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nt OK NAMESPACE completed\r\n");
	CHECK(has(run("NAMESPACE", "x"), "t BAD"));
	/* the stub has no storage limit: no quota root */
	CHECK_STR(run("GETQUOTAROOT", "inbox"),
	          "* QUOTAROOT \"INBOX\"\r\nt OK GETQUOTAROOT completed\r\n");
	CHECK(has(run("GETQUOTAROOT", "Nope"), "t NO [NONEXISTENT]"));
	CHECK(has(run("GETQUOTAROOT", ""), "t BAD"));
	CHECK(has(run("GETQUOTA", "\"\""), "t NO"));
	CHECK(has(run("SETQUOTA", "\"\" (STORAGE 512)"), "t NO [NOPERM]"));
	CHECK_INT(last_rc, 0);
	CHECK(has(run("SETQUOTA", "\"\" ()"), "t NO [NOPERM]"));
	CHECK(has(run("SETQUOTA", "\"\" (STORAGE)"), "t BAD"));
	CHECK(has(run("SETQUOTA", "\"\""), "t BAD"));
	/* with a limit: root "", STORAGE in KiB (usage rounded up) */
	struct imap_mailstore_ops ops = *ms->ops;
	ops.quota = fake_quota;
	const struct imap_mailstore_ops *saved = ms->ops;
	ms->ops = &ops;
	CHECK_STR(run("GETQUOTAROOT", "Sent"), "* QUOTAROOT \"Sent\" \"\"\r\n"
	                                       "* QUOTA \"\" (STORAGE 2 10240)\r\n"
	                                       "t OK GETQUOTAROOT completed\r\n");
	CHECK_STR(run("GETQUOTA", "\"\""),
	          "* QUOTA \"\" (STORAGE 2 10240)\r\nt OK GETQUOTA completed\r\n");
	CHECK(has(run("GETQUOTA", "other"), "t NO [NONEXISTENT]"));
	CHECK(has(run("GETQUOTA", "\"\" x"), "t BAD"));
	ms->ops = saved;
	teardown();
}

/* ---- LIST ---- */

static void
test_list_basic(void)
{
	setup(false);
	CHECK(has(run("CREATE", "Work/Projects/Alpha"), "t OK"));
	CHECK(has(run("CREATE", "Workshop"), "t OK"));
	CHECK(has(run("CREATE", "INBOX/Receipts"), "t OK"));

	const char *r = run("LIST", "\"\" *");
	/* INBOX first, then each mailbox followed by its inferiors */
	const char *order[] = {
	    "\"INBOX\"",   "\"INBOX/Receipts\"", "\"Drafts\"",        "\"Sent\"",
	    "\"Trash\"",   "\"Work\"",           "\"Work/Projects\"", "\"Work/Projects/Alpha\"",
	    "\"Workshop\""};
	const char *at = r;
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		const char *p = strstr(at, order[i]);
		CHECK(p != NULL);
		if (p == NULL) {
			fprintf(stderr, "  order: %s not after previous in\n%s", order[i], r);
			break;
		}
		at = p;
	}
	CHECK(has(r, "* LIST (\\HasChildren) \"/\" \"INBOX\"\r\n"));
	CHECK(has(r, "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"));
	CHECK(has(r, "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"\r\n"));
	CHECK_INT(count(r, "* LIST "), 9);

	/* "%" stops at the separator */
	r = run("LIST", "\"\" %");
	CHECK_INT(count(r, "* LIST "), 6);
	CHECK(lacks(r, "Projects"));
	CHECK(lacks(r, "Receipts"));
	r = run("LIST", "\"\" Work/%");
	CHECK_INT(count(r, "* LIST "), 1);
	CHECK(has(r, "\"Work/Projects\""));
	r = run("LIST", "\"\" Work/%/%");
	CHECK_INT(count(r, "* LIST "), 1);
	CHECK(has(r, "\"Work/Projects/Alpha\""));
	r = run("LIST", "\"\" %/%");
	CHECK_INT(count(r, "* LIST "), 2);
	CHECK(has(r, "\"INBOX/Receipts\""));
	r = run("LIST", "\"\" Work*");
	CHECK_INT(count(r, "* LIST "), 4);
	r = run("LIST", "\"\" Work%");
	CHECK_INT(count(r, "* LIST "), 2);
	r = run("LIST", "\"\" *Alpha");
	CHECK_INT(count(r, "* LIST "), 1);
	r = run("LIST", "\"\" *o*");
	CHECK_INT(count(r, "* LIST "), 6); /* INBOX, INBOX/Receipts, Work, Work/..., Workshop */
	r = run("LIST", "\"\" Nothing*");
	CHECK_STR(r, "t OK LIST completed\r\n");

	/* reference */
	r = run("LIST", "Work/ %");
	CHECK_INT(count(r, "* LIST "), 1);
	CHECK(has(r, "\"Work/Projects\""));
	r = run("LIST", "Work/ *");
	CHECK_INT(count(r, "* LIST "), 2);
	r = run("LIST", "Work %");
	CHECK_INT(count(r, "* LIST "), 2); /* "Work%": Work, Workshop */
	r = run("LIST", "Work/ /Sent");    /* a pattern starting with "/" ignores the reference */
	CHECK_INT(count(r, "* LIST "), 0);

	/* INBOX in any case, also as the first level */
	CHECK(has(run("LIST", "\"\" inbox"), "* LIST (\\HasChildren) \"/\" \"INBOX\"\r\n"));
	CHECK(has(run("LIST", "\"\" iNbOx/%"), "\"INBOX/Receipts\""));
	CHECK_INT(count(run("LIST", "\"\" Inbox*"), "* LIST "), 2);
	CHECK_INT(count(run("LIST", "\"\" inb%"), "* LIST "), 1);
	CHECK_INT(count(run("LIST", "\"\" sent"), "* LIST "), 0); /* only INBOX is case-blind */
	CHECK_INT(count(run("LIST", "inbox/ %"), "* LIST "), 1);

	/* empty pattern: the separator */
	CHECK_STR(run("LIST", "\"\" \"\""),
	          "* LIST (\\Noselect) \"/\" \"\"\r\nt OK LIST completed\r\n");
	CHECK(has(run("LIST", "Work \"\""), "* LIST (\\Noselect) \"/\" \"\"\r\n"));

	/* syntax */
	CHECK(has(run("LIST", "\"\""), "t BAD"));
	CHECK_INT(last_rc, -1);
	CHECK(has(run("LIST", ""), "t BAD"));
	CHECK(has(run("LIST", "\"\" * extra"), "t BAD"));
	CHECK(has(run("LIST", "\"\" (*"), "t BAD"));
	CHECK(has(run("LIST", "(BOGUS) \"\" *"), "t BAD"));
	CHECK(has(run("LIST", "\"\" * RETURN (BOGUS)"), "t BAD"));
	CHECK(has(run("LIST", "\"\" * RETURN (STATUS (BOGUS))"), "t BAD"));
	/* undecodable patterns match the names' modified UTF-7 form */
	CHECK_STR(run("LIST", "\"\" \"&Jjo\""), "t OK LIST completed\r\n");
	teardown();
}

static void
test_list_extended(void)
{
	setup(false);
	CHECK(has(run("CREATE", "Work/Sub"), "t OK"));
	/* several patterns, each mailbox once */
	const char *r = run("LIST", "\"\" (INBOX Sent S* Work/%)");
	CHECK_INT(count(r, "* LIST "), 3);
	CHECK_INT(count(r, "\"Sent\""), 1);
	CHECK(has(r, "\"Work/Sub\""));
	/* empty selection and return lists = plain LIST */
	CHECK_INT(count(run("LIST", "() \"\" % RETURN ()"), "* LIST "), 5);
	/* SPECIAL-USE selection; special-use attributes always present */
	r = run("LIST", "(SPECIAL-USE) \"\" *");
	CHECK_INT(count(r, "* LIST "), 3);
	CHECK(has(r, "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\""));
	CHECK(lacks(r, "INBOX"));
	r = run("LIST", "\"\" * RETURN (SPECIAL-USE CHILDREN)");
	CHECK(has(r, "* LIST (\\HasChildren) \"/\" \"Work\""));
	CHECK(has(r, "\\Drafts"));
	/* LIST-STATUS: a STATUS after each selectable mailbox */
	r = run("LIST", "\"\" % RETURN (STATUS (MESSAGES UNSEEN))");
	CHECK(has(r, "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
	             "* STATUS \"INBOX\" (MESSAGES 3 UNSEEN 3)\r\n"));
	CHECK(has(r, "* STATUS \"Work\" (MESSAGES 0 UNSEEN 0)\r\n"));
	CHECK_INT(count(r, "* STATUS "), 5);
	r = run("LIST", "(SUBSCRIBED) \"\" * RETURN (STATUS (MESSAGES) CHILDREN)");
	CHECK_INT(count(r, "* STATUS "), 4);
	CHECK(lacks(r, "Work"));
	/* a non-existent level with mailboxes below (a store that keeps none as placeholders
	 * can still get there, e.g. through another client's RENAME) */
	struct err err = {0};
	CHECK(ms->ops->create(ms, "Tmp", NULL, &err) == 0);
	CHECK(ms->ops->rename(ms, "Tmp", "Ghost/Kid", &err) == 0);
	r = run("LIST", "\"\" %");
	CHECK(has(r, "* LIST (\\Noselect \\HasChildren) \"/\" \"Ghost\"\r\n"));
	r = run("LIST", "\"\" % RETURN (STATUS (MESSAGES))");
	CHECK(has(r, "* LIST (\\NonExistent \\HasChildren) \"/\" \"Ghost\"\r\n* LIST"));
	CHECK(lacks(r, "STATUS \"Ghost\""));
	cx.utf8 = cx.rev2 = true;
	CHECK(
	    has(run("LIST", "\"\" *"), "* LIST (\\NonExistent \\HasChildren) \"/\" \"Ghost\"\r\n"));
	teardown();
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_list_hostile(void)
{
	setup(false);
	/* many long names */
	char name[1100], cmd[1200];
	for (int i = 0; i < 200; i++) {
		memset(name, 'a', 1000);
		(void)snprintf(name + 1000, 20, "%d", i);
		struct err err = {0};
		CHECK(ms->ops->create(ms, name, NULL, &err) == 0);
	}
	static const struct {
		const char *unit;
		int reps;
	} pats[] = {{"*%", 2000}, {"a%", 500}, {"%a", 500}, {"a*", 500}, {"*a", 1000}};
	for (size_t u = 0; u < sizeof pats / sizeof pats[0]; u++) {
		/* wildcards and letters, then a "b" that no name has */
		struct buf pat;
		buf_init(&pat, 0);
		(void)buf_append_str(&pat, "\"\" \"");
		for (int i = 0; i < pats[u].reps; i++)
			(void)buf_append_str(&pat, pats[u].unit);
		(void)buf_append_str(&pat, "b\"");
		double t0 = now_s();
		const char *r = run("LIST", buf_cstr(&pat));
		double dt = now_s() - t0;
		CHECK(has(r, "t OK LIST completed"));
		CHECK_INT(count(r, "* LIST "), 0);
		CHECK(dt < 2.0);
		if (dt >= 2.0)
			fprintf(stderr, "  pattern %s...: %.2fs\n", pats[u].unit, dt);
		buf_deinit(&pat);
	}
	/* more literal bytes than a name can have: nothing to do */
	struct buf lp;
	buf_init(&lp, 0);
	(void)buf_append_str(&lp, "\"\" ");
	for (int i = 0; i < 1100; i++)
		(void)buf_append_str(&lp, "a%");
	CHECK_STR(run("LIST", buf_cstr(&lp)), "t OK LIST completed\r\n");
	buf_deinit(&lp);
	/* too much matching work in one command */
	buf_init(&lp, 0);
	(void)buf_append_str(&lp, "\"\" (");
	for (int i = 0; i < 5; i++) {
		(void)buf_append_str(&lp, i ? " " : "");
		for (int j = 0; j < 500; j++)
			(void)buf_append_str(&lp, "a*");
	}
	(void)buf_append_str(&lp, ")");
	CHECK(has(run("LIST", buf_cstr(&lp)), "t NO [LIMIT]"));
	buf_deinit(&lp);
	/* the most patterns allowed, each matching every long name */
	struct buf pat;
	buf_init(&pat, 0);
	(void)buf_append_str(&pat, "\"\" (");
	for (int i = 0; i < 32; i++)
		(void)buf_append_str(&pat, i ? " *%*%*a*a*a*%a%a%a%*" : "*%*%*a*a*a*%a%a%a%*");
	(void)buf_append_str(&pat, ")");
	double t0 = now_s();
	const char *r = run("LIST", buf_cstr(&pat));
	CHECK_INT(count(r, "* LIST "), 200);
	CHECK(now_s() - t0 < 2.0);
	pat.len--;
	(void)buf_append_str(&pat, " x)");
	CHECK(has(run("LIST", buf_cstr(&pat)), "t BAD")); /* 33 patterns */
	buf_deinit(&pat);
	/* nesting and odd bytes */
	(void)snprintf(cmd, sizeof cmd, "\"\" ((((((((((((((((((((*))))))))))))))))))))");
	CHECK(has(run("LIST", cmd), "t BAD"));
	CHECK(has(run("LIST", "\"\" {3}\r\na\tb"), "t OK"));
	teardown();
}

int
main(void)
{
	RUN(test_reply_helpers);
	RUN(test_mailbox_arg);
	RUN(test_mailbox_out);
	RUN(test_create);
	RUN(test_utf7_roundtrip);
	RUN(test_delete);
	RUN(test_rename);
	RUN(test_subscribe_lsub);
	RUN(test_status);
	RUN(test_namespace_quota);
	RUN(test_list_basic);
	RUN(test_list_extended);
	RUN(test_list_hostile);
	return test_done("imap_cmd_mailbox");
}
