/* Tests of the IMAP storage functions (imap_mbox.c, imap_msg.c, the metadata columns of
 * deliver.c): mailbox create/delete/rename (inferiors, INBOX), subscriptions, status, UID and
 * MODSEQ monotonicity, STORE with keywords and UNCHANGEDSINCE, expunge and vanished, copy/move
 * with COPYUID pairs, shared bodies and quota, byte-range reads across the header/body
 * boundary, change counters, and a 10,000-message performance run (printed, never asserted). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_private.h" /* store_keywords_apply */
#include "test.h"
#include "test_tmp.h"
#include "util/log.h"
#include "util/xalloc.h"

#define STORE_FLAG_FLAGGED_TEST (1u << 2) /* \Flagged as imap/ numbers it */

static char tmpdir[64];
static char dbpath[128];

#define MUST(call)                                                                                 \
	do {                                                                                       \
		struct err e_ = {0};                                                               \
		if ((call) < 0) {                                                                  \
			fprintf(stderr, "  setup failed %s:%d: %s: %s\n", __FILE__, __LINE__,      \
			        #call, e_.msg);                                                    \
			test_cur_failed_ = 1;                                                      \
		}                                                                                  \
	} while (0)

/* A fresh store with domain example.com and account u@example.com (quota as given). */
static struct store *
open_fresh(uint64_t quota, int64_t *account_r)
{
	test_tmpdir(tmpdir, sizeof tmpdir, "imapstore");
	(void)snprintf(dbpath, sizeof dbpath, "%s/lightr.db", tmpdir);
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0 || store_domain_add(st, "example.com", &err) < 0 ||
	    store_account_add(st, "u@example.com", "", quota, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(1);
	}
	struct store_account a;
	if (store_account_get(st, "u@example.com", &a, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(1);
	}
	*account_r = a.id;
	store_account_deinit(&a);
	return st;
}

static void
close_store(struct store **st)
{
	store_close(st);
	test_tmpdir_remove(tmpdir);
}

static int64_t
sql_int(const char *sql)
{
	sqlite3 *db;
	int64_t v = -1;
	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *stmt;
		if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK) {
			if (sqlite3_step(stmt) == SQLITE_ROW)
				v = sqlite3_column_int64(stmt, 0);
			sqlite3_finalize(stmt);
		}
	}
	sqlite3_close(db);
	return v;
}

static int64_t
used_bytes(void)
{
	return sql_int("SELECT used FROM accounts WHERE address = 'u@example.com'");
}

static int64_t
mbox_id(struct store *st, int64_t account, const char *name)
{
	struct store_imap_status s;
	struct err err = {0};
	if (store_imap_status(st, account, name, &s, &err) < 0)
		return 0;
	int64_t id = s.id;
	store_imap_status_deinit(&s);
	return id;
}

static uint32_t
append(struct store *st, int64_t account, const char *mailbox, const char *msg, uint32_t flags,
       const char *keywords)
{
	struct store_imap_append a = {.mailbox = mailbox,
	                              .flags = flags,
	                              .keywords = keywords,
	                              .internal_date = 1700000000,
	                              .msg = (const unsigned char *)msg,
	                              .len = strlen(msg),
	                              .envelope = "(NIL)",
	                              .body = "(\"text\" \"plain\")",
	                              .bodystructure = "(\"text\" \"plain\" NIL)",
	                              .parts = "PT",
	                              .parts_len = 2};
	uint32_t uv, uid = 0;
	MUST(store_imap_append(st, account, &a, &uv, &uid, &e_));
	return uid;
}

/* "name:exists:subscribed,..." of the mailbox list. */
static void
list_str(struct store *st, int64_t account, char *out, size_t cap)
{
	struct store_imap_mailbox *v;
	size_t n, len = 0;
	out[0] = '\0';
	MUST(store_imap_mailbox_list(st, account, &v, &n, &e_));
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + len, cap - len, "%s%s:%d%d", i ? "," : "", v[i].name,
		                 v[i].exists, v[i].subscribed);
		if (w > 0 && (size_t)w < cap - len)
			len += (size_t)w;
	}
	store_imap_mailbox_list_free(&v, n);
}

static void
test_keywords(void)
{
	static const struct {
		const char *cur;
		enum store_flags_op op;
		const char *req, *want;
		bool changed;
	} cases[] = {
	    {"", STORE_FLAGS_ADD, "a b", "a b", true},
	    {"a b", STORE_FLAGS_ADD, "B c", "a b c", true},
	    {"a b", STORE_FLAGS_ADD, "A", "a b", false},
	    {"a b", STORE_FLAGS_ADD, NULL, "a b", false},
	    {"a b c", STORE_FLAGS_REMOVE, "B", "a c", true},
	    {"a", STORE_FLAGS_REMOVE, "x", "a", false},
	    {"a b", STORE_FLAGS_SET, "b a", "b a", false},
	    {"a b", STORE_FLAGS_SET, NULL, "", true},
	    {"", STORE_FLAGS_SET, "  x   x X y ", "x y", true},
	    {NULL, STORE_FLAGS_SET, NULL, "", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out = NULL;
		bool changed = !cases[i].changed;
		struct err err = {0};
		CHECK(store_keywords_apply(cases[i].cur, cases[i].op, cases[i].req, &out, &changed,
		                           &err) == 0);
		CHECK_STR(out, cases[i].want);
		CHECK(changed == cases[i].changed);
		free(out);
	}
	/* more than STORE_KEYWORDS_MAX */
	char big[1024] = "";
	size_t len = 0;
	for (int i = 0; i <= STORE_KEYWORDS_MAX; i++)
		len += (size_t)snprintf(big + len, sizeof big - len, "k%d ", i);
	char *out = NULL;
	bool changed;
	struct err err = {0};
	CHECK(store_keywords_apply("", STORE_FLAGS_ADD, big, &out, &changed, &err) < 0);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK(out == NULL);
}

static void
test_mailboxes(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	struct err err = {0};
	char s[1024];
	list_str(st, acct, s, sizeof s);
	CHECK_STR(s, "INBOX:11,Archive:11,Drafts:11,Junk:11,Sent:11,Trash:11");

	/* create: superiors made, special-use, errors */
	MUST(store_imap_create(st, acct, "Work/Projects/X", "\\Flagged", &e_));
	CHECK(store_imap_create(st, acct, "Work", NULL, &err) < 0 && err.code == STORE_EEXIST);
	CHECK(store_imap_create(st, acct, "INBOX", NULL, &err) < 0 && err.code == STORE_EEXIST);
	CHECK(store_imap_create(st, acct, "a//b", NULL, &err) < 0 && err.code == STORE_EINVAL);
	CHECK(store_imap_create(st, acct, "/a", NULL, &err) < 0 && err.code == STORE_EINVAL);
	CHECK(store_imap_create(st, acct, "a/", NULL, &err) < 0 && err.code == STORE_EINVAL);
	CHECK(store_imap_create(st, acct, "", NULL, &err) < 0 && err.code == STORE_EINVAL);
	CHECK(store_imap_create(st, acct, "b", "\\Bogus", &err) < 0 && err.code == STORE_EINVAL);
	struct store_imap_status ss;
	MUST(store_imap_status(st, acct, "Work/Projects/X", &ss, &e_));
	CHECK_STR(ss.special_use, "\\Flagged");
	CHECK(ss.uidvalidity > 0 && ss.uidnext == 1 && ss.messages == 0);
	uint32_t uv_x = ss.uidvalidity;
	store_imap_status_deinit(&ss);
	MUST(store_imap_status(st, acct, "Work/Projects", &ss, &e_));
	CHECK(ss.special_use == NULL && ss.uidvalidity != uv_x);
	store_imap_status_deinit(&ss);
	CHECK(store_imap_status(st, acct, "Nope", &ss, &err) < 0 && err.code == STORE_ENOTFOUND);
	list_str(st, acct, s, sizeof s);
	CHECK_STR(s, "INBOX:11,Archive:11,Drafts:11,Junk:11,Sent:11,Trash:11,Work:10,"
	             "Work/Projects:10,Work/Projects/X:10");

	/* subscriptions of names without a mailbox */
	MUST(store_imap_subscribe(st, acct, "Later", true, &e_));
	MUST(store_imap_subscribe(st, acct, "Later", true, &e_)); /* idempotent */
	MUST(store_imap_subscribe(st, acct, "Work", true, &e_));
	MUST(store_imap_subscribe(st, acct, "Sent", false, &e_));
	list_str(st, acct, s, sizeof s);
	CHECK_STR(s, "INBOX:11,Archive:11,Drafts:11,Junk:11,Later:01,Sent:10,Trash:11,Work:11,"
	             "Work/Projects:10,Work/Projects/X:10");
	MUST(store_imap_create(st, acct, "Later", NULL, &e_));
	CHECK_INT(sql_int("SELECT count(*) FROM subscriptions"), 0);
	list_str(st, acct, s, sizeof s);
	CHECK(strstr(s, "Later:11") != NULL);
	MUST(store_imap_subscribe(st, acct, "Gone", true, &e_));
	MUST(store_imap_subscribe(st, acct, "Gone", false, &e_));
	CHECK_INT(sql_int("SELECT count(*) FROM subscriptions"), 0);

	/* delete: INBOX refused, children refused, messages and their bytes go, subscription
	 * stays */
	CHECK(store_imap_delete(st, acct, "INBOX", &err) < 0 && err.code == STORE_EINVAL);
	CHECK(store_imap_delete(st, acct, "Work", &err) < 0 && err.code == STORE_EHASCHILDREN);
	CHECK(store_imap_delete(st, acct, "Nope", &err) < 0 && err.code == STORE_ENOTFOUND);
	append(st, acct, "Later", "Subject: a\r\n\r\nbody\r\n", 0, NULL);
	append(st, acct, "Later", "Subject: b\r\n\r\nbody 2\r\n", 0, NULL);
	CHECK(used_bytes() > 0);
	int64_t later = mbox_id(st, acct, "Later");
	uint64_t seq = store_mailbox_change_seq(st, later);
	MUST(store_imap_delete(st, acct, "Later", &e_));
	CHECK(store_mailbox_change_seq(st, later) != seq);
	CHECK_INT(used_bytes(), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 0);
	list_str(st, acct, s, sizeof s);
	CHECK(strstr(s, "Later:01") != NULL);
	MUST(store_imap_delete(st, acct, "Work/Projects/X", &e_));
	MUST(store_imap_delete(st, acct, "Work/Projects", &e_));
	list_str(st, acct, s, sizeof s);
	CHECK_STR(s, "INBOX:11,Archive:11,Drafts:11,Junk:11,Later:01,Sent:10,Trash:11,Work:11");
	close_store(&st);
}

static void
test_rename(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	struct err err = {0};
	char s[1024];
	MUST(store_imap_create(st, acct, "a/b/c", NULL, &e_));
	MUST(store_imap_create(st, acct, "ab", NULL, &e_)); /* not an inferior of "a" */
	MUST(store_imap_subscribe(st, acct, "a/b", true, &e_));
	uint32_t uid = append(st, acct, "a/b", "Subject: x\r\n\r\nx\r\n", 0, NULL);
	struct store_imap_status before;
	MUST(store_imap_status(st, acct, "a/b", &before, &e_));
	CHECK(store_imap_rename(st, acct, "a", "ab", &err) < 0 && err.code == STORE_EEXIST);
	CHECK(store_imap_rename(st, acct, "a", "Sent", &err) < 0 && err.code == STORE_EEXIST);
	CHECK(store_imap_rename(st, acct, "a", "INBOX", &err) < 0 && err.code == STORE_EEXIST);
	CHECK(store_imap_rename(st, acct, "nope", "z", &err) < 0 && err.code == STORE_ENOTFOUND);
	CHECK(store_imap_rename(st, acct, "a", "a/z", &err) < 0 && err.code == STORE_EINVAL);
	MUST(store_imap_subscribe(st, acct, "x/y/b/c", true, &e_)); /* no mailbox yet */
	MUST(store_imap_rename(st, acct, "a", "x/y", &e_));
	CHECK_INT(sql_int("SELECT count(*) FROM subscriptions"), 0);
	list_str(st, acct, s, sizeof s);
	CHECK_STR(s, "INBOX:11,Archive:11,Drafts:11,Junk:11,Sent:11,Trash:11,ab:10,x:10,x/y:10,"
	             "x/y/b:11,x/y/b/c:11");
	struct store_imap_status after;
	MUST(store_imap_status(st, acct, "x/y/b", &after, &e_));
	CHECK(after.id == before.id && after.uidvalidity == before.uidvalidity &&
	      after.messages == 1 && after.uidnext == uid + 1);
	store_imap_status_deinit(&before);
	store_imap_status_deinit(&after);

	/* INBOX: messages move with their UIDs into a new mailbox, INBOX stays, empty */
	MUST(store_imap_create(st, acct, "INBOX/kid", NULL, &e_));
	uint32_t u1 = append(st, acct, "INBOX", "Subject: 1\r\n\r\n1\r\n", STORE_FLAG_SEEN, "k");
	uint32_t u2 = append(st, acct, "INBOX", "Subject: 2\r\n\r\n2\r\n", 0, NULL);
	int64_t used = used_bytes();
	struct store_imap_status inbox0, inbox1, old;
	MUST(store_imap_status(st, acct, "INBOX", &inbox0, &e_));
	uint64_t seq = store_mailbox_change_seq(st, inbox0.id);
	MUST(store_imap_rename(st, acct, "INBOX", "Old/Inbox", &e_));
	CHECK(store_mailbox_change_seq(st, inbox0.id) != seq);
	MUST(store_imap_status(st, acct, "INBOX", &inbox1, &e_));
	MUST(store_imap_status(st, acct, "Old/Inbox", &old, &e_));
	CHECK(inbox1.id == inbox0.id && inbox1.uidvalidity == inbox0.uidvalidity);
	CHECK(inbox1.uidnext == inbox0.uidnext && inbox1.messages == 0);
	CHECK(inbox1.highestmodseq > inbox0.highestmodseq);
	CHECK(old.messages == 2 && old.unseen == 1 && old.uidnext == inbox0.uidnext);
	CHECK(old.uidvalidity != inbox0.uidvalidity);
	CHECK_INT(used_bytes(), used);
	struct store_imap_msg *v;
	size_t n;
	uint32_t un;
	uint64_t hms;
	MUST(store_imap_messages(st, old.id, 0, &v, &n, &un, &hms, &e_));
	CHECK(n == 2 && v[0].uid == u1 && v[1].uid == u2 && v[0].flags == STORE_FLAG_SEEN);
	if (n == 2)
		CHECK_STR(v[0].keywords, "k");
	store_imap_msgs_free(&v, n);
	uint32_t *vu;
	MUST(store_imap_vanished(st, inbox0.id, inbox0.highestmodseq, &vu, &n, &e_));
	CHECK(n == 2 && vu[0] == u1 && vu[1] == u2);
	free(vu);
	CHECK(mbox_id(st, acct, "INBOX/kid") != 0);
	/* a new message in INBOX continues its UIDs */
	uint32_t u3 = append(st, acct, "INBOX", "Subject: 3\r\n\r\n3\r\n", 0, NULL);
	CHECK(u3 == u2 + 1);
	store_imap_status_deinit(&inbox0);
	store_imap_status_deinit(&inbox1);
	store_imap_status_deinit(&old);
	close_store(&st);
}

static void
test_append_status(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	struct err err = {0};
	int64_t inbox = mbox_id(st, acct, "INBOX");
	uint32_t last_uid = 0;
	uint64_t last_modseq = 0;
	for (int i = 0; i < 20; i++) {
		char msg[64];
		(void)snprintf(msg, sizeof msg, "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		uint32_t uid =
		    append(st, acct, "INBOX", msg,
		           (i % 2 ? STORE_FLAG_SEEN : 0) | (i % 5 == 0 ? STORE_FLAG_DELETED : 0),
		           i == 3 ? "$Junk foo $junk" : NULL);
		CHECK(uid > last_uid);
		last_uid = uid;
	}
	struct store_imap_msg *v;
	size_t n;
	uint32_t uidnext;
	uint64_t hms;
	MUST(store_imap_messages(st, inbox, 0, &v, &n, &uidnext, &hms, &e_));
	CHECK_INT(n, 20);
	CHECK_INT(uidnext, 21);
	CHECK_INT(hms, 21);
	for (size_t i = 0; i < n; i++) {
		CHECK(v[i].uid == i + 1 && v[i].modseq > last_modseq && v[i].modseq <= hms);
		last_modseq = v[i].modseq;
	}
	if (n == 20) {
		CHECK_STR(v[3].keywords, "$Junk foo");
		CHECK(v[4].keywords == NULL);
	}
	store_imap_msgs_free(&v, n);
	MUST(store_imap_messages(st, inbox, 18, &v, &n, &uidnext, &hms, &e_));
	CHECK(n == 3 && v[0].uid == 18);
	store_imap_msgs_free(&v, n);
	CHECK(store_imap_messages(st, 999999, 0, &v, &n, &uidnext, &hms, &err) < 0 &&
	      err.code == STORE_ENOTFOUND);
	struct store_imap_status s;
	MUST(store_imap_status(st, acct, "INBOX", &s, &e_));
	CHECK(s.messages == 20 && s.unseen == 10 && s.deleted == 4 && s.uidnext == 21 &&
	      s.highestmodseq == 21);
	CHECK_INT(s.size, used_bytes());
	store_imap_status_deinit(&s);
	uint64_t used, limit, msgs;
	MUST(store_imap_quota(st, acct, &used, &limit, &msgs, &e_));
	CHECK(used == (uint64_t)used_bytes() && limit == 0 && msgs == 20);
	/* nonexistent mailbox */
	struct store_imap_append a = {
	    .mailbox = "Nope", .msg = (const unsigned char *)"x", .len = 1};
	uint32_t uv, uid;
	CHECK(store_imap_append(st, acct, &a, &uv, &uid, &err) < 0 && err.code == STORE_ENOTFOUND);
	/* meta of an appended message */
	struct store_imap_meta m;
	MUST(store_imap_meta(st, inbox, 4, &m, &e_));
	CHECK(m.uid == 4 && m.internal_date == 1700000000 && m.header_len == 0);
	CHECK_STR(m.envelope, "(NIL)");
	CHECK_STR(m.body, "(\"text\" \"plain\")");
	CHECK(m.parts.len == 2 && memcmp(m.parts.data, "PT", 2) == 0);
	store_imap_meta_deinit(&m);
	CHECK(store_imap_meta(st, inbox, 99, &m, &err) < 0 && err.code == STORE_ENOTFOUND);
	store_imap_meta_deinit(&m);
	close_store(&st);
}

static void
test_store_flags(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	struct err err = {0};
	int64_t inbox = mbox_id(st, acct, "INBOX");
	for (int i = 0; i < 5; i++)
		append(st, acct, "INBOX", "Subject: s\r\n\r\nx\r\n", 0, NULL);
	/* hms is 6 now (1 + 5 appends) */
	uint32_t uids[] = {1, 2, 3, 7};
	struct store_imap_msg *ch;
	size_t nch, nf;
	uint32_t *failed;
	MUST(store_imap_store(st, inbox, uids, 4, STORE_FLAGS_ADD, STORE_FLAG_SEEN, "Foo", 0, &ch,
	                      &nch, &failed, &nf, &e_));
	CHECK(nch == 3 && nf == 0);
	for (size_t i = 0; i < nch; i++) {
		CHECK(ch[i].uid == i + 1 && ch[i].flags == STORE_FLAG_SEEN);
		CHECK_INT(ch[i].modseq, 7 + i); /* one new MODSEQ per changed message */
		CHECK_STR(ch[i].keywords, "Foo");
	}
	store_imap_msgs_free(&ch, nch);
	free(failed);
	/* no change: no new MODSEQ */
	MUST(store_imap_store(st, inbox, uids, 3, STORE_FLAGS_ADD, STORE_FLAG_SEEN, "foo", 0, &ch,
	                      &nch, &failed, &nf, &e_));
	CHECK(nch == 0 && nf == 0);
	store_imap_msgs_free(&ch, nch);
	free(failed);
	/* keywords add and remove */
	MUST(store_imap_store(st, inbox, uids, 1, STORE_FLAGS_ADD, 0, "Bar $Work", 0, &ch, &nch,
	                      NULL, NULL, &e_));
	CHECK(nch == 1 && ch[0].modseq == 10);
	if (nch == 1)
		CHECK_STR(ch[0].keywords, "Foo Bar $Work");
	store_imap_msgs_free(&ch, nch);
	MUST(store_imap_store(st, inbox, uids, 1, STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, "FOO $work",
	                      0, &ch, &nch, NULL, NULL, &e_));
	CHECK(nch == 1 && ch[0].flags == 0);
	if (nch == 1)
		CHECK_STR(ch[0].keywords, "Bar");
	store_imap_msgs_free(&ch, nch);
	/* set replaces both */
	MUST(store_imap_store(st, inbox, uids, 1, STORE_FLAGS_SET, STORE_FLAG_DELETED, NULL, 0, &ch,
	                      &nch, NULL, NULL, &e_));
	CHECK(nch == 1 && ch[0].flags == STORE_FLAG_DELETED && ch[0].keywords == NULL);
	store_imap_msgs_free(&ch, nch);
	/* UNCHANGEDSINCE: message 1 (modseq 12) and 2 (modseq 8); 3 at 9; 4 at 4 */
	uint32_t all[] = {1, 2, 3, 4, 5};
	MUST(store_imap_store(st, inbox, all, 5, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED_TEST, NULL, 8,
	                      &ch, &nch, &failed, &nf, &e_));
	CHECK(nf == 2 && failed[0] == 1 && failed[1] == 3);
	CHECK(nch == 3 && ch[0].uid == 2 && ch[1].uid == 4 && ch[2].uid == 5);
	CHECK(nch == 3 && ch[0].modseq == 13 && ch[2].modseq == 15);
	store_imap_msgs_free(&ch, nch);
	free(failed);
	struct store_imap_status s;
	MUST(store_imap_status(st, acct, "INBOX", &s, &e_));
	CHECK_INT(s.highestmodseq, 15);
	store_imap_status_deinit(&s);
	/* too many keywords: nothing changes */
	char big[1024] = "";
	size_t len = 0;
	for (int i = 0; i <= STORE_KEYWORDS_MAX; i++)
		len += (size_t)snprintf(big + len, sizeof big - len, "k%d ", i);
	CHECK(store_imap_store(st, inbox, all, 5, STORE_FLAGS_ADD, 0, big, 0, &ch, &nch, NULL, NULL,
	                       &err) < 0 &&
	      err.code == STORE_EINVAL);
	CHECK(store_imap_store(st, 424242, all, 5, STORE_FLAGS_ADD, 1, NULL, 0, &ch, &nch, NULL,
	                       NULL, &err) < 0 &&
	      err.code == STORE_ENOTFOUND);
	MUST(store_imap_status(st, acct, "INBOX", &s, &e_));
	CHECK_INT(s.highestmodseq, 15);
	store_imap_status_deinit(&s);
	close_store(&st);
}

static void
test_expunge(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	int64_t inbox = mbox_id(st, acct, "INBOX");
	for (int i = 0; i < 6; i++)
		append(st, acct, "INBOX",
		       i % 2 ? "Subject: a\r\n\r\na\r\n" : "Subject: b\r\n\r\nb\r\n",
		       i < 4 ? STORE_FLAG_DELETED : 0, NULL);
	int64_t used0 = used_bytes();
	uint32_t *x;
	size_t n;
	/* UID EXPUNGE 2,3,5: 5 is not \Deleted */
	uint32_t some[] = {2, 3, 5, 77};
	MUST(store_imap_expunge(st, inbox, some, 4, &x, &n, &e_));
	CHECK(n == 2 && x[0] == 2 && x[1] == 3);
	free(x);
	CHECK(used_bytes() < used0);
	struct store_imap_status s;
	MUST(store_imap_status(st, acct, "INBOX", &s, &e_));
	CHECK(s.messages == 4 && s.highestmodseq == 8);
	store_imap_status_deinit(&s);
	MUST(store_imap_expunge(st, inbox, NULL, 0, &x, &n, &e_));
	CHECK(n == 2 && x[0] == 1 && x[1] == 4);
	free(x);
	MUST(store_imap_expunge(st, inbox, NULL, 0, &x, &n, &e_)); /* nothing left */
	CHECK(n == 0);
	free(x);
	MUST(store_imap_vanished(st, inbox, 0, &x, &n, &e_));
	CHECK(n == 4 && x[0] == 1 && x[1] == 2 && x[2] == 3 && x[3] == 4);
	free(x);
	MUST(store_imap_vanished(st, inbox, 8, &x, &n, &e_));
	CHECK(n == 2 && x[0] == 1 && x[1] == 4);
	free(x);
	MUST(store_imap_vanished(st, inbox, 9, &x, &n, &e_));
	CHECK(n == 0);
	free(x);
	MUST(store_imap_status(st, acct, "INBOX", &s, &e_));
	CHECK(s.messages == 2 && s.highestmodseq == 9 && s.uidnext == 7);
	store_imap_status_deinit(&s);
	/* both bodies are still referenced by the two messages left */
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 2);
	CHECK_INT(sql_int("SELECT sum(refcount) FROM blobs"), 2);
	close_store(&st);
}

static void
test_copy_move(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	struct err err = {0};
	int64_t inbox = mbox_id(st, acct, "INBOX");
	for (int i = 0; i < 4; i++)
		append(st, acct, "INBOX", "Subject: same body\r\n\r\nshared\r\n",
		       i == 1 ? STORE_FLAG_SEEN : 0, i == 1 ? "kw" : NULL);
	append(st, acct, "Archive", "Subject: pre\r\n\r\nx\r\n", 0, NULL);
	int64_t used0 = used_bytes();
	uint32_t uids[] = {2, 3, 9};
	uint32_t uv, *src, *dst;
	size_t n;
	struct store_imap_status arch;
	MUST(store_imap_status(st, acct, "Archive", &arch, &e_));
	MUST(store_imap_copy(st, acct, inbox, uids, 3, "Archive", false, &uv, &src, &dst, &n, &e_));
	CHECK(uv == arch.uidvalidity && n == 2);
	CHECK(n == 2 && src[0] == 2 && src[1] == 3 && dst[0] == 2 && dst[1] == 3);
	free(src);
	free(dst);
	CHECK_INT(used_bytes(),
	          used0 + 2 * (int64_t)strlen("Subject: same body\r\n\r\nshared\r\n"));
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 2); /* no copy of the bytes */
	CHECK_INT(sql_int("SELECT refcount FROM blobs ORDER BY refcount DESC LIMIT 1"), 6);
	struct store_imap_meta m;
	MUST(store_imap_meta(st, arch.id, 2, &m, &e_));
	CHECK_STR(m.bodystructure, "(\"text\" \"plain\" NIL)");
	store_imap_meta_deinit(&m);
	struct store_imap_msg *v;
	size_t nv;
	uint32_t un;
	uint64_t hms;
	MUST(store_imap_messages(st, arch.id, 0, &v, &nv, &un, &hms, &e_));
	CHECK(nv == 3 && v[1].flags == STORE_FLAG_SEEN && un == 4 && hms == 4);
	if (nv == 3)
		CHECK_STR(v[1].keywords, "kw");
	store_imap_msgs_free(&v, nv);
	CHECK(store_imap_copy(st, acct, inbox, uids, 3, "Nope", false, &uv, &src, &dst, &n, &err) <
	          0 &&
	      err.code == STORE_ENOTFOUND);

	/* move: sources vanish, bytes unchanged */
	int64_t used1 = used_bytes();
	uint64_t seq_in = store_mailbox_change_seq(st, inbox);
	uint64_t seq_tr = store_mailbox_change_seq(st, mbox_id(st, acct, "Trash"));
	uint32_t mv[] = {1, 4};
	MUST(store_imap_copy(st, acct, inbox, mv, 2, "Trash", true, &uv, &src, &dst, &n, &e_));
	CHECK(n == 2 && src[0] == 1 && src[1] == 4 && dst[0] == 1 && dst[1] == 2);
	free(src);
	free(dst);
	CHECK(store_mailbox_change_seq(st, inbox) != seq_in);
	CHECK(store_mailbox_change_seq(st, mbox_id(st, acct, "Trash")) != seq_tr);
	CHECK_INT(used_bytes(), used1);
	uint32_t *x;
	MUST(store_imap_vanished(st, inbox, 0, &x, &n, &e_));
	CHECK(n == 2 && x[0] == 1 && x[1] == 4);
	free(x);
	struct store_imap_status s;
	MUST(store_imap_status(st, acct, "INBOX", &s, &e_));
	CHECK(s.messages == 2 && s.highestmodseq == 6);
	store_imap_status_deinit(&s);
	/* move within the same mailbox: new UIDs, old ones vanish */
	uint32_t one[] = {2};
	MUST(store_imap_copy(st, acct, inbox, one, 1, "INBOX", true, &uv, &src, &dst, &n, &e_));
	CHECK(n == 1 && dst[0] == 5);
	free(src);
	free(dst);
	MUST(store_imap_messages(st, inbox, 0, &v, &nv, &un, &hms, &e_));
	CHECK(nv == 2 && v[0].uid == 3 && v[1].uid == 5 && un == 6 && hms == 8);
	store_imap_msgs_free(&v, nv);
	store_imap_status_deinit(&arch);

	/* quota: a copy that does not fit fails whole; a move still works */
	MUST(store_account_set_quota(st, "u@example.com", (uint64_t)used_bytes() + 10, &e_));
	uint32_t two[] = {3, 5};
	CHECK(store_imap_copy(st, acct, inbox, two, 2, "Drafts", false, &uv, &src, &dst, &n, &err) <
	          0 &&
	      err.code == STORE_EOVERQUOTA);
	MUST(store_imap_status(st, acct, "Drafts", &s, &e_));
	CHECK(s.messages == 0 && s.uidnext == 1);
	store_imap_status_deinit(&s);
	MUST(store_imap_copy(st, acct, inbox, two, 2, "Drafts", true, &uv, &src, &dst, &n, &e_));
	CHECK(n == 2);
	free(src);
	free(dst);
	struct store_imap_append a = {
	    .mailbox = "INBOX", .msg = (const unsigned char *)"12345678901", .len = 11};
	uint32_t uid;
	CHECK(store_imap_append(st, acct, &a, &uv, &uid, &err) < 0 && err.code == STORE_EOVERQUOTA);
	a.len = 10;
	MUST(store_imap_append(st, acct, &a, &uv, &uid, &e_));
	uint64_t used, limit, msgs;
	MUST(store_imap_quota(st, acct, &used, &limit, &msgs, &e_));
	CHECK(used == limit && msgs == 8);
	close_store(&st);
}

/* Delivery stores the metadata columns; reads of ranges across the header/body boundary. */
static void
test_deliver_read(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	struct err err = {0};
	int64_t inbox = mbox_id(st, acct, "INBOX");
	const char *hdr = "Return-Path: <a@b>\r\n";
	const char *body = "Subject: hi\r\n\r\nHello world\r\n";
	struct store_local_rcpt l = {
	    .account = "u@example.com", .header = hdr, .header_len = strlen(hdr)};
	struct store_delivery d = {.body = (const unsigned char *)body,
	                           .body_len = strlen(body),
	                           .internal_date = 1234,
	                           .local = &l,
	                           .n_local = 1,
	                           .meta_envelope = "(ENV)",
	                           .meta_body = "(BODY)",
	                           .meta_bodystructure = "(BS)",
	                           .meta_parts = "\x01\x02\x03",
	                           .meta_parts_len = 3};
	uint64_t seq = store_mailbox_change_seq(st, inbox);
	MUST(store_deliver(st, &d, NULL, &e_));
	CHECK(store_mailbox_change_seq(st, inbox) == seq + 1);
	struct store_imap_meta m;
	MUST(store_imap_meta(st, inbox, 1, &m, &e_));
	CHECK_STR(m.envelope, "(ENV)");
	CHECK_STR(m.body, "(BODY)");
	CHECK_STR(m.bodystructure, "(BS)");
	CHECK(m.parts.len == 3 && m.parts.data[2] == 3);
	CHECK(m.header_len == strlen(hdr) && m.size == strlen(hdr) + strlen(body));
	CHECK(m.internal_date == 1234);
	char full[256];
	(void)snprintf(full, sizeof full, "%s%s", hdr, body);
	size_t flen = strlen(full);
	static const struct {
		uint64_t off, len;
	} ranges[] = {
	    {0, 5},    {0, 20},    {0, 21},   {15, 10}, {20, 4}, {25, 3},
	    {0, 1000}, {30, 1000}, {1000, 5}, {48, 5},  {0, 0},
	};
	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
		struct buf b;
		buf_init(&b, 0);
		MUST(store_imap_read(st, m.id, ranges[i].off, ranges[i].len, &b, &e_));
		size_t o = ranges[i].off < flen ? (size_t)ranges[i].off : flen;
		size_t want = flen - o < ranges[i].len ? flen - o : (size_t)ranges[i].len;
		CHECK_INT(b.len, want);
		CHECK(b.len == want && (want == 0 || memcmp(b.data, full + o, want) == 0));
		buf_deinit(&b);
	}
	/* a buffer too small */
	struct buf small;
	buf_init(&small, 4);
	CHECK(store_imap_read(st, m.id, 0, 100, &small, &err) < 0 && err.code == STORE_EINVAL);
	buf_deinit(&small);
	/* gone */
	uint32_t one = 1, *x;
	size_t n;
	struct store_imap_msg *ch;
	MUST(store_imap_store(st, inbox, &one, 1, STORE_FLAGS_ADD, STORE_FLAG_DELETED, NULL, 0, &ch,
	                      &n, NULL, NULL, &e_));
	store_imap_msgs_free(&ch, n);
	MUST(store_imap_expunge(st, inbox, NULL, 0, &x, &n, &e_));
	free(x);
	struct buf b;
	buf_init(&b, 0);
	CHECK(store_imap_read(st, m.id, 0, 10, &b, &err) < 0 && err.code == STORE_ENOTFOUND);
	buf_deinit(&b);
	store_imap_meta_deinit(&m);
	close_store(&st);
}

/* A body above the incremental-I/O threshold read in pieces. */
static void
test_read_large(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	int64_t inbox = mbox_id(st, acct, "INBOX");
	size_t len = 3 * 1024 * 1024 + 17;
	unsigned char *msg = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		msg[i] = (unsigned char)(i * 7 + i / 251);
	struct store_imap_append a = {.mailbox = "INBOX", .msg = msg, .len = len};
	uint32_t uv, uid;
	MUST(store_imap_append(st, acct, &a, &uv, &uid, &e_));
	struct store_imap_meta m;
	MUST(store_imap_meta(st, inbox, uid, &m, &e_));
	CHECK(m.size == len && m.envelope == NULL);
	struct buf b;
	buf_init(&b, 0);
	for (uint64_t off = 0; off < len; off += 1000003) {
		buf_reset(&b);
		MUST(store_imap_read(st, m.id, off, 700001, &b, &e_));
		size_t want = len - off < 700001 ? len - off : 700001;
		CHECK(b.len == want && memcmp(b.data, msg + off, want) == 0);
	}
	buf_reset(&b);
	MUST(store_imap_read(st, m.id, 0, UINT64_MAX, &b, &e_));
	CHECK(b.len == len && memcmp(b.data, msg, len) == 0);
	buf_deinit(&b);
	store_imap_meta_deinit(&m);
	free(msg);
	close_store(&st);
}

static void
test_change_seq(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	int64_t inbox = mbox_id(st, acct, "INBOX"), sent = mbox_id(st, acct, "Sent");
	CHECK(store_mailbox_change_seq(st, 0) == 0);
	uint64_t a = store_mailbox_change_seq(st, inbox), b = store_mailbox_change_seq(st, sent);
	append(st, acct, "INBOX", "Subject: 1\r\n\r\n1\r\n", 0, NULL);
	uint64_t a1 = store_mailbox_change_seq(st, inbox);
	CHECK(a1 > a && store_mailbox_change_seq(st, sent) == b);
	uint32_t one = 1, *x;
	size_t n;
	struct store_imap_msg *ch;
	MUST(store_imap_store(st, inbox, &one, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &ch,
	                      &n, NULL, NULL, &e_));
	store_imap_msgs_free(&ch, n);
	uint64_t a2 = store_mailbox_change_seq(st, inbox);
	CHECK(a2 > a1);
	/* unchanged STORE: nothing to notice */
	MUST(store_imap_store(st, inbox, &one, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &ch,
	                      &n, NULL, NULL, &e_));
	store_imap_msgs_free(&ch, n);
	CHECK(store_mailbox_change_seq(st, inbox) == a2);
	MUST(store_imap_store(st, inbox, &one, 1, STORE_FLAGS_ADD, STORE_FLAG_DELETED, NULL, 0, &ch,
	                      &n, NULL, NULL, &e_));
	store_imap_msgs_free(&ch, n);
	uint64_t a3 = store_mailbox_change_seq(st, inbox);
	MUST(store_imap_expunge(st, inbox, NULL, 0, &x, &n, &e_));
	free(x);
	CHECK(store_mailbox_change_seq(st, inbox) > a3);
	CHECK(store_mailbox_change_seq(st, sent) == b);
	/* a reader released and re-acquired (IDLE) */
	store_thread_done(st);
	struct store_imap_status s;
	MUST(store_imap_status(st, acct, "INBOX", &s, &e_));
	CHECK(s.messages == 0);
	store_imap_status_deinit(&s);
	close_store(&st);
}

/* A reader polling (change counter, messages since, meta, read) while a writer appends and
 * expunges: UIDNEXT and HIGHESTMODSEQ never go back, and every message listed can be read or
 * is reported gone. */
struct poll_arg {
	struct store *st;
	int64_t acct, inbox;
	atomic_int stop;
	int errors, polls;
};

static void *
poll_thread(void *arg)
{
	struct poll_arg *p = arg;
	uint32_t last_next = 0;
	uint64_t last_hms = 0, last_seq = 0;
	struct buf b;
	buf_init(&b, 0);
	while (!atomic_load(&p->stop)) {
		uint64_t seq = store_mailbox_change_seq(p->st, p->inbox);
		if (seq == last_seq) {
			usleep(100);
			continue;
		}
		last_seq = seq;
		struct store_imap_msg *v;
		size_t n;
		uint32_t un;
		uint64_t hms;
		struct err err = {0};
		if (store_imap_messages(p->st, p->inbox, 0, &v, &n, &un, &hms, &err) < 0) {
			p->errors++;
			continue;
		}
		if (un < last_next || hms < last_hms)
			p->errors++;
		last_next = un;
		last_hms = hms;
		for (size_t i = 0; i < n; i++) {
			struct store_imap_meta m;
			if (store_imap_meta(p->st, p->inbox, v[i].uid, &m, &err) == 0) {
				buf_reset(&b);
				if (store_imap_read(p->st, m.id, 0, m.size, &b, &err) < 0
				        ? err.code != STORE_ENOTFOUND
				        : b.len != m.size)
					p->errors++;
			} else if (err.code != STORE_ENOTFOUND) {
				p->errors++;
			}
			store_imap_meta_deinit(&m);
		}
		store_imap_msgs_free(&v, n);
		p->polls++;
	}
	buf_deinit(&b);
	store_thread_done(p->st);
	return NULL;
}

static void
test_concurrent_poll(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	struct poll_arg pa = {.st = st, .acct = acct, .inbox = mbox_id(st, acct, "INBOX")};
	pthread_t th;
	pthread_create(&th, NULL, poll_thread, &pa);
	for (int i = 0; i < 300; i++) {
		append(st, acct, "INBOX", "Subject: c\r\n\r\nconcurrent\r\n",
		       i % 3 == 0 ? STORE_FLAG_DELETED : 0, NULL);
		if (i % 50 == 49) {
			uint32_t *x;
			size_t n;
			MUST(store_imap_expunge(st, pa.inbox, NULL, 0, &x, &n, &e_));
			free(x);
		}
	}
	atomic_store(&pa.stop, 1);
	pthread_join(th, NULL);
	CHECK_INT(pa.errors, 0);
	CHECK(pa.polls > 0);
	close_store(&st);
}

/* ---- performance sanity: numbers printed, never asserted ---- */

#define PERF_MSGS    10000
#define PERF_THREADS 8

struct perf_arg {
	struct store *st;
	int64_t acct;
	int idx;
	int failures;
};

static const char perf_body[] =
    "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.com>\r\nSubject: perf %d\r\n"
    "Message-ID: <%d@example.com>\r\nDate: Tue, 1 Oct 2024 10:00:00 +0000\r\n\r\n"
    "Hello Bob, this is message %d with a little text so the body is not trivial.\r\n";

static void *
perf_thread(void *arg)
{
	struct perf_arg *p = arg;
	for (int i = p->idx; i < PERF_MSGS; i += PERF_THREADS) {
		char msg[512];
		int len = snprintf(msg, sizeof msg, perf_body, i, i, i);
		struct store_imap_append a = {
		    .mailbox = "INBOX",
		    .flags = i % 3 ? STORE_FLAG_SEEN : 0,
		    .internal_date = 1700000000 + i,
		    .msg = (const unsigned char *)msg,
		    .len = (size_t)len,
		    .envelope = "(\"Tue, 1 Oct 2024 10:00:00 +0000\" \"perf\" "
		                "((\"Alice\" NIL \"alice\" \"example.com\")) "
		                "NIL NIL NIL NIL NIL NIL NIL)",
		    .body = "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 80 2)",
		    .bodystructure = "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 80 2 NIL "
		                     "NIL NIL NIL)",
		    .parts = "0123456789abcdef0123456789abcdef",
		    .parts_len = 32};
		uint32_t uv, uid;
		struct err err = {0};
		if (store_imap_append(p->st, p->acct, &a, &uv, &uid, &err) < 0)
			p->failures++;
	}
	store_thread_done(p->st);
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_perf(void)
{
	int64_t acct;
	struct store *st = open_fresh(0, &acct);
	int64_t inbox = mbox_id(st, acct, "INBOX");
	double t0 = now_s();
	pthread_t th[PERF_THREADS];
	struct perf_arg pa[PERF_THREADS];
	for (int i = 0; i < PERF_THREADS; i++) {
		pa[i] = (struct perf_arg){.st = st, .acct = acct, .idx = i};
		pthread_create(&th[i], NULL, perf_thread, &pa[i]);
	}
	int failures = 0;
	for (int i = 0; i < PERF_THREADS; i++) {
		pthread_join(th[i], NULL);
		failures += pa[i].failures;
	}
	double t_append = now_s() - t0;
	CHECK_INT(failures, 0);

	t0 = now_s();
	struct store_imap_msg *v;
	size_t n;
	uint32_t un;
	uint64_t hms;
	MUST(store_imap_messages(st, inbox, 0, &v, &n, &un, &hms, &e_));
	double t_list = now_s() - t0;
	CHECK_INT(n, PERF_MSGS);
	CHECK_INT(un, PERF_MSGS + 1);
	for (size_t i = 1; i < n; i++)
		CHECK(v[i].uid > v[i - 1].uid);

	t0 = now_s();
	struct store_imap_status s;
	MUST(store_imap_status(st, acct, "INBOX", &s, &e_));
	double t_status = now_s() - t0;
	CHECK_INT(s.messages, PERF_MSGS);
	store_imap_status_deinit(&s);

	t0 = now_s();
	size_t bytes = 0, bad = 0;
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		struct store_imap_meta m;
		struct err err = {0};
		if (store_imap_meta(st, inbox, v[i].uid, &m, &err) < 0 ||
		    store_imap_read(st, m.id, 0, m.size, &b, &err) < 0 || m.envelope == NULL)
			bad++;
		bytes += b.len;
		buf_reset(&b);
		store_imap_meta_deinit(&m);
	}
	double t_read = now_s() - t0;
	buf_deinit(&b);
	CHECK_INT(bad, 0);

	uint32_t *uids = xmalloc(n * sizeof *uids);
	for (size_t i = 0; i < n; i++)
		uids[i] = v[i].uid;
	store_imap_msgs_free(&v, n);
	t0 = now_s();
	struct store_imap_msg *ch;
	size_t nch;
	MUST(store_imap_store(st, inbox, uids, n, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED_TEST, NULL, 0,
	                      &ch, &nch, NULL, NULL, &e_));
	double t_store = now_s() - t0;
	CHECK_INT(nch, PERF_MSGS);
	store_imap_msgs_free(&ch, nch);

	t0 = now_s();
	MUST(store_imap_messages(st, inbox, hms, &v, &n, &un, &hms, &e_));
	double t_since = now_s() - t0;
	CHECK_INT(n, PERF_MSGS);
	store_imap_msgs_free(&v, n);
	free(uids);

	printf("perf %d messages: append %.2fs (%.0f/s, %d threads), list %.1fms, status %.1fms, "
	       "meta+read all %.1fms (%zu bytes), store flags all %.1fms, changed-since all "
	       "%.1fms\n",
	       PERF_MSGS, t_append, PERF_MSGS / t_append, PERF_THREADS, t_list * 1e3,
	       t_status * 1e3, t_read * 1e3, bytes, t_store * 1e3, t_since * 1e3);
	close_store(&st);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_keywords);
	RUN(test_mailboxes);
	RUN(test_rename);
	RUN(test_append_status);
	RUN(test_store_flags);
	RUN(test_expunge);
	RUN(test_copy_move);
	RUN(test_deliver_read);
	RUN(test_read_large);
	RUN(test_change_seq);
	RUN(test_concurrent_poll);
	RUN(test_perf);
	return test_done("store-imap");
}
