/* Tests of recipient resolution, the sender check and durable delivery (rcpt.c, deliver.c):
 * a resolution table (accounts, case, sub-addressing, aliases nested, looping and too deep,
 * catch-all, remote, disabled, over quota), a sender table, delivery to local and remote
 * recipients read back field by field, atomicity, blob collection on account removal, 8
 * threads delivering into the same INBOXes, kill -9 during a delivery burst (every acknowledged
 * delivery must survive), and a throughput measurement that is printed, never asserted. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_private.h" /* store_blob_sha256 */
#include "test.h"
#include "test_kill.h"
#include "test_tmp.h"
#include "util/log.h"
#include "util/xalloc.h"

static char tmpdir[64];
static char dbpath[128];

static void
tmp_setup(void)
{
	test_tmpdir(tmpdir, sizeof tmpdir, "deliver");
	(void)snprintf(dbpath, sizeof dbpath, "%s/lightr.db", tmpdir);
}

static void
tmp_cleanup(void)
{
	test_tmpdir_remove(tmpdir);
}

static struct store *
open_fresh(void)
{
	tmp_setup();
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		exit(1);
	}
	return st;
}

/* First column of the first row of sql on a separate raw connection; -1 on error. */
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

/* Setup steps that must succeed. */
#define MUST(call)                                                                                 \
	do {                                                                                       \
		struct err e_ = {0};                                                               \
		if ((call) < 0) {                                                                  \
			fprintf(stderr, "  setup failed %s:%d: %s: %s\n", __FILE__, __LINE__,      \
			        #call, e_.msg);                                                    \
			test_cur_failed_ = 1;                                                      \
		}                                                                                  \
	} while (0)

static void
add_alias(struct store *st, const char *address, const char *targets)
{
	char *copy = xstrdup(targets), *save = NULL;
	const char *v[200];
	size_t n = 0;
	for (char *t = strtok_r(copy, ",", &save); t && n < 200; t = strtok_r(NULL, ",", &save))
		v[n++] = t;
	MUST(store_alias_add(st, address, v, n, &e_));
	free(copy);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The targets as a sorted list "a@x,r:b@y" (r: remote). */
static void
targets_str(const struct store_rcpt *r, char *out, size_t n)
{
	char **v = xcalloc(r->n_targets + 1, sizeof *v);
	for (size_t i = 0; i < r->n_targets; i++)
		v[i] = xasprintf("%s%s", r->targets[i].remote ? "r:" : "", r->targets[i].address);
	qsort(v, r->n_targets, sizeof *v, cmp_str);
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < r->n_targets; i++) {
		int w = snprintf(out + len, n - len, "%s%s", i ? "," : "", v[i]);
		if (w > 0 && (size_t)w < n - len)
			len += (size_t)w;
		free(v[i]);
	}
	free(v);
}

/* Puts bytes of quota use on an account through a real delivery. */
static void
use_bytes(struct store *st, const char *account, size_t n)
{
	unsigned char *body = xmalloc(n);
	memset(body, 'u', n);
	struct store_local_rcpt l = {.account = account};
	struct store_delivery d = {.body = body, .body_len = n, .local = &l, .n_local = 1};
	MUST(store_deliver(st, &d, NULL, &e_));
	free(body);
}

static const struct {
	const char *addr;
	char sep;
	uint64_t hint;
	enum store_rcpt_status status;
	const char *targets; /* sorted, "r:" = remote */
	const char *problem;
} rcpt_cases[] = {
    /* accounts, case, sub-addressing */
    {"bob@example.com", '+', 0, STORE_RCPT_OK, "bob@example.com", NULL},
    {"BOB@EXAMPLE.COM", '+', 0, STORE_RCPT_OK, "bob@example.com", NULL},
    {"Carol@Example.com", '+', 0, STORE_RCPT_OK, "CAROL@example.com", NULL},
    {"bob+news@example.com", '+', 0, STORE_RCPT_OK, "bob@example.com", NULL},
    {"Bob+News@Example.COM", '+', 0, STORE_RCPT_OK, "bob@example.com", NULL},
    {"bob+a+b@example.com", '+', 0, STORE_RCPT_OK, "bob@example.com", NULL},
    {"bob+news@example.com", '\0', 0, STORE_RCPT_UNKNOWN, "", NULL}, /* sep off */
    {"bob+news@example.com", '-', 0, STORE_RCPT_UNKNOWN, "", NULL},
    {"bob-news@example.com", '-', 0, STORE_RCPT_OK, "bob@example.com", NULL},
    {"bob-a+b@example.com", '-', 0, STORE_RCPT_OK, "bob@example.com", NULL},
    {"+news@example.com", '+', 0, STORE_RCPT_UNKNOWN, "", NULL},                 /* empty base */
    {"bob+vip@example.com", '+', 0, STORE_RCPT_OK, "bob+vip@example.com", NULL}, /* exact */
    /* aliases */
    {"team@example.com", '+', 0, STORE_RCPT_OK,
     "alice@example.com,bob@example.com,r:ext@remote.example", NULL},
    {"TEAM+x@example.com", '+', 0, STORE_RCPT_OK,
     "alice@example.com,bob@example.com,r:ext@remote.example", NULL},
    {"nest@example.com", '+', 0, STORE_RCPT_OK,
     "CAROL@example.com,alice@example.com,bob@example.com,r:ext@remote.example,"
     "r:z@remote.example",
     NULL},
    {"loop1@example.com", '+', 0, STORE_RCPT_OK, "bob@example.com", NULL},
    {"ring1@example.com", '+', 0, STORE_RCPT_UNKNOWN, "", NULL}, /* only a loop */
    {"dangling@example.com", '+', 0, STORE_RCPT_OK, "alice@example.com", NULL},
    {"c1@example.com", '+', 0, STORE_RCPT_OK, "bob@example.com", NULL},     /* 8 levels */
    {"c0@example.com", '+', 0, STORE_RCPT_UNKNOWN, "", NULL},               /* 9 levels */
    {"tagged@example.com", '+', 0, STORE_RCPT_OK, "bob@example.com", NULL}, /* → bob+x */
    /* catch-all */
    {"anyone@other.example", '+', 0, STORE_RCPT_OK, "pm@other.example", NULL},
    {"ANYONE+x@Other.Example", '+', 0, STORE_RCPT_OK, "pm@other.example", NULL},
    {"pm@other.example", '+', 0, STORE_RCPT_OK, "pm@other.example", NULL},
    {"catchall-loop@example.com", '+', 0, STORE_RCPT_OK, "pm@other.example", NULL},
    /* unknown, remote, odd input */
    {"nobody@example.com", '+', 0, STORE_RCPT_UNKNOWN, "", NULL},
    {"x@remote.example", '+', 0, STORE_RCPT_REMOTE, "", NULL},
    {"x@sub.example.com", '+', 0, STORE_RCPT_REMOTE, "", NULL},
    {"x@[192.0.2.1]", '+', 0, STORE_RCPT_REMOTE, "", NULL},
    {"bob", '+', 0, STORE_RCPT_UNKNOWN, "", NULL},
    {"@example.com", '+', 0, STORE_RCPT_UNKNOWN, "", NULL},
    /* disabled, quota */
    {"dis@example.com", '+', 0, STORE_RCPT_DISABLED, "dis@example.com", "dis@example.com"},
    {"dis+x@example.com", '+', 0, STORE_RCPT_DISABLED, "dis@example.com", "dis@example.com"},
    {"staff@example.com", '+', 0, STORE_RCPT_DISABLED, "alice@example.com,dis@example.com",
     "dis@example.com"},
    {"small@example.com", '+', 399, STORE_RCPT_OK, "small@example.com", NULL},
    {"small@example.com", '+', 400, STORE_RCPT_OVER_QUOTA, "small@example.com",
     "small@example.com"},
    {"small@example.com", '+', UINT64_MAX, STORE_RCPT_OVER_QUOTA, "small@example.com",
     "small@example.com"},
    {"bob@example.com", '+', UINT64_MAX, STORE_RCPT_OK, "bob@example.com", NULL}, /* no quota */
    {"smalls@example.com", '+', 400, STORE_RCPT_OVER_QUOTA, "alice@example.com,small@example.com",
     "small@example.com"},
};

static void
test_rcpt_resolve(void)
{
	struct store *st = open_fresh();
	MUST(store_domain_add(st, "example.com", &e_));
	MUST(store_domain_add(st, "other.example", &e_));
	static const char *const accounts[] = {"bob@example.com",   "alice@example.com",
	                                       "CAROL@example.com", "bob+vip@example.com",
	                                       "dis@example.com",   "pm@other.example"};
	for (size_t i = 0; i < sizeof accounts / sizeof accounts[0]; i++)
		MUST(store_account_add(st, accounts[i], "h", 0, &e_));
	MUST(store_account_add(st, "small@example.com", "h", 1000, &e_));
	MUST(store_account_set_disabled(st, "dis@example.com", true, &e_));
	use_bytes(st, "small@example.com", 600);
	add_alias(st, "team@example.com", "bob@example.com,alice@example.com,ext@remote.example");
	add_alias(st, "nest@example.com", "team@example.com,carol@example.com,z@remote.example");
	add_alias(st, "loop1@example.com", "loop2@example.com");
	add_alias(st, "loop2@example.com", "loop1@example.com,bob@example.com");
	add_alias(st, "ring1@example.com", "ring2@example.com");
	add_alias(st, "ring2@example.com", "ring1@example.com");
	add_alias(st, "dangling@example.com", "nobody@example.com,alice@example.com");
	add_alias(st, "staff@example.com", "alice@example.com,dis@example.com");
	add_alias(st, "smalls@example.com", "alice@example.com,small@example.com");
	add_alias(st, "tagged@example.com", "bob+x@example.com");
	add_alias(st, "@other.example", "pm@other.example");
	add_alias(st, "catchall-loop@example.com", "nobody@other.example");
	/* c0 → c1 → ... → c8 → bob: c1 starts a chain of 8 aliases, c0 one of 9. */
	for (int i = 0; i < 9; i++) {
		char a[64], t[64];
		(void)snprintf(a, sizeof a, "c%d@example.com", i);
		(void)snprintf(t, sizeof t, i == 8 ? "bob@example.com" : "c%d@example.com", i + 1);
		add_alias(st, a, t);
	}
	for (size_t i = 0; i < sizeof rcpt_cases / sizeof rcpt_cases[0]; i++) {
		struct store_rcpt r;
		struct err err = {0};
		char got[1024];
		if (store_rcpt_resolve(st, rcpt_cases[i].addr, rcpt_cases[i].sep,
		                       rcpt_cases[i].hint, &r, &err) < 0) {
			fprintf(stderr, "  case %zu %s: %s\n", i, rcpt_cases[i].addr, err.msg);
			test_cur_failed_ = 1;
			continue;
		}
		targets_str(&r, got, sizeof got);
		bool ok =
		    r.status == rcpt_cases[i].status && strcmp(got, rcpt_cases[i].targets) == 0;
		const char *want_p = rcpt_cases[i].problem;
		ok = ok && (want_p ? r.problem && strcmp(r.problem, want_p) == 0 : !r.problem);
		if (!ok) {
			fprintf(stderr, "  FAIL case %zu %s sep=%c: status %d targets \"%s\"\n", i,
			        rcpt_cases[i].addr, rcpt_cases[i].sep ? rcpt_cases[i].sep : '0',
			        (int)r.status, got);
			test_cur_failed_ = 1;
		}
		store_rcpt_deinit(&r);
		CHECK(r.targets == NULL && r.n_targets == 0 && r.problem == NULL);
	}

	/* At most STORE_RCPT_MAX_TARGETS results. */
	char *big = xstrdup("");
	for (int i = 0; i < 150; i++) {
		char *next = xasprintf("%s%sr%d@remote.example", big, i ? "," : "", i);
		free(big);
		big = next;
	}
	add_alias(st, "big@example.com", big);
	free(big);
	struct store_rcpt r;
	struct err err;
	CHECK_INT(store_rcpt_resolve(st, "big@example.com", '+', 0, &r, &err), 0);
	CHECK_INT(r.status, STORE_RCPT_OK);
	CHECK_INT(r.n_targets, STORE_RCPT_MAX_TARGETS);
	store_rcpt_deinit(&r);
	CHECK_INT(store_rcpt_resolve(st, NULL, '+', 0, &r, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	store_close(&st);
	tmp_cleanup();
}

static const struct {
	const char *account, *addr;
	char sep;
	bool want;
} sender_cases[] = {
    {"bob@example.com", "bob@example.com", '+', true},
    {"BOB@example.com", "Bob@EXAMPLE.com", '+', true},
    {"bob@example.com", "bob+lists@example.com", '+', true},
    {"bob@example.com", "BOB+x@Example.Com", '+', true},
    {"bob@example.com", "bob+lists@example.com", '\0', false},
    {"bob@example.com", "bob-lists@example.com", '+', false},
    {"bob@example.com", "bob-lists@example.com", '-', true},
    {"bob@example.com", "bobby@example.com", '+', false},
    {"bob@example.com", "bo+b@example.com", '+', false},
    {"bob@example.com", "team@example.com", '+', true}, /* direct target */
    {"bob@example.com", "TEAM@example.com", '+', true},
    {"bob@example.com", "nest@example.com", '+', false},   /* only through team */
    {"bob@example.com", "@example.com", '+', false},       /* catch-all is nobody's */
    {"bob@example.com", "anyone@example.com", '+', false}, /* bob owns the catch-all */
    {"bob@example.com", "alice@example.com", '+', false},
    {"bob@example.com", "bob@other.example", '+', false},
    {"bob@example.com", "", '+', false},
    {"bob@example.com", "bob", '+', false},
    {"admin@example.com", "alice@example.com", '+', true}, /* domain admin */
    {"admin@example.com", "whoever@EXAMPLE.COM", '+', true},
    {"admin@example.com", "bob@other.example", '+', false},
    {"admin@example.com", "x@remote.example", '+', false},
    {"nobody@example.com", "nobody@example.com", '+', false}, /* no such account */
};

static void
test_sender_allowed(void)
{
	struct store *st = open_fresh();
	MUST(store_domain_add(st, "example.com", &e_));
	MUST(store_domain_add(st, "other.example", &e_));
	MUST(store_account_add(st, "bob@example.com", "h", 0, &e_));
	MUST(store_account_add(st, "alice@example.com", "h", 0, &e_));
	MUST(store_account_add(st, "admin@example.com", "h", 0, &e_));
	MUST(store_account_add(st, "bob@other.example", "h", 0, &e_));
	add_alias(st, "team@example.com", "bob@example.com,x@remote.example");
	add_alias(st, "nest@example.com", "team@example.com");
	add_alias(st, "@example.com", "bob@example.com");
	struct err err = {0};
	CHECK_INT(store_account_set_domain_admin(st, "Admin@Example.com", true, &err), 0);
	CHECK_INT(store_account_set_domain_admin(st, "nobody@example.com", true, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	struct store_account a;
	CHECK_INT(store_account_get(st, "admin@example.com", &a, &err), 0);
	CHECK(a.domain_admin);
	store_account_deinit(&a);
	CHECK_INT(store_account_get(st, "bob@example.com", &a, &err), 0);
	CHECK(!a.domain_admin);
	store_account_deinit(&a);
	struct store_account *v;
	size_t n;
	CHECK_INT(store_account_list(st, "example.com", &v, &n, &err), 0);
	CHECK(n == 3 && v[0].domain_admin && !v[1].domain_admin && !v[2].domain_admin);
	store_account_list_free(&v, n);

	for (size_t i = 0; i < sizeof sender_cases / sizeof sender_cases[0]; i++) {
		bool ok = !sender_cases[i].want;
		if (store_sender_allowed(st, sender_cases[i].account, sender_cases[i].addr,
		                         sender_cases[i].sep, &ok, &err) < 0 ||
		    ok != sender_cases[i].want) {
			fprintf(stderr, "  FAIL sender case %zu %s as \"%s\": got %d\n", i,
			        sender_cases[i].account, sender_cases[i].addr, ok);
			test_cur_failed_ = 1;
		}
	}
	/* Revoked: alice is nobody's address again. */
	bool ok = true;
	CHECK_INT(store_account_set_domain_admin(st, "admin@example.com", false, &err), 0);
	CHECK_INT(
	    store_sender_allowed(st, "admin@example.com", "alice@example.com", '+', &ok, &err), 0);
	CHECK(!ok);
	CHECK_INT(store_sender_allowed(st, NULL, "a@b", '+', &ok, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	store_close(&st);
	tmp_cleanup();
}

static const char hdr_bob[] =
    "Return-Path: <s@remote.example>\r\nDelivered-To: bob@example.com\r\n";
static const char hdr_alice[] = "Return-Path: <s@remote.example>\r\nDelivered-To: "
                                "alice@example.com\r\nReceived: from x by y; now\r\n";
static const char hdr_queue[] = "Received: from x by y; now\r\n";
static const char body1[] = "Subject: one\r\n\r\nfirst body\r\n";
static const char body2[] = "Subject: two\r\n\r\nsecond body\r\n";

/* A delivery of body to bob and alice, plus ext@remote.example when remote. */
static struct store_delivery
delivery(const char *body, struct store_local_rcpt local[2], struct store_remote_rcpt *remote)
{
	local[0] = (struct store_local_rcpt){"bob@example.com", hdr_bob, strlen(hdr_bob), NULL};
	local[1] =
	    (struct store_local_rcpt){"alice@example.com", hdr_alice, strlen(hdr_alice), NULL};
	*remote = (struct store_remote_rcpt){"ext@Remote.Example", "SUCCESS,FAILURE",
	                                     "rfc822;team@example.com"};
	return (struct store_delivery){
	    .body = (const unsigned char *)body,
	    .body_len = strlen(body),
	    .internal_date = 1700000000,
	    .local = local,
	    .n_local = 2,
	    .mail_from = "s@remote.example",
	    .ret = "HDRS",
	    .envid = "ENV-1",
	    .requiretls = true,
	    .queue_header = hdr_queue,
	    .queue_header_len = strlen(hdr_queue),
	    .remote = remote,
	    .n_remote = 1,
	};
}

static void
deliver_setup(struct store *st)
{
	MUST(store_domain_add(st, "example.com", &e_));
	MUST(store_account_add(st, "bob@example.com", "h", 0, &e_));
	MUST(store_account_add(st, "alice@example.com", "h", 0, &e_));
}

static void
test_deliver(void)
{
	struct store *st = open_fresh();
	deliver_setup(st);
	struct err err = {0};
	struct store_local_rcpt local[2];
	struct store_remote_rcpt remote;
	struct store_delivery d = delivery(body1, local, &remote);
	int64_t qid = -1;
	CHECK_INT(store_deliver(st, &d, &qid, &err), 0);
	CHECK(qid > 0);
	d.body = (const unsigned char *)body2; /* second one: local only */
	d.body_len = strlen(body2);
	d.n_remote = 0;
	int64_t qid2 = -1;
	CHECK_INT(store_deliver(st, &d, &qid2, &err), 0);
	CHECK_INT(qid2, 0);

	char sha1[65], sha2[65];
	CHECK_INT(store_blob_put(st, body1, strlen(body1), sha1, &err), 0); /* dedup: no new row */
	CHECK_INT(store_blob_put(st, body2, strlen(body2), sha2, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 2);
	/* body1: 2 messages + 1 queue message; body2: 2 messages */
	char sql[256];
	(void)snprintf(sql, sizeof sql, "SELECT refcount FROM blobs WHERE sha256 = '%s'", sha1);
	CHECK_INT(sql_int(sql), 3);
	(void)snprintf(sql, sizeof sql, "SELECT refcount FROM blobs WHERE sha256 = '%s'", sha2);
	CHECK_INT(sql_int(sql), 2);

	struct store_message *m;
	size_t n;
	CHECK_INT(store_message_list(st, "Alice@Example.com", "inbox", &m, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(m[0].uid, 1);
		CHECK_INT(m[1].uid, 2);
		CHECK_INT(m[0].modseq, 2);
		CHECK_INT(m[1].modseq, 3);
		CHECK_INT(m[0].internal_date, 1700000000);
		CHECK_INT(m[0].size, strlen(hdr_alice) + strlen(body1));
		CHECK_INT(m[1].size, strlen(hdr_alice) + strlen(body2));
		CHECK_STR(m[0].blob_sha256, sha1);
		CHECK_STR(m[1].blob_sha256, sha2);
		CHECK_STR(buf_cstr(&m[0].header_text), hdr_alice);
	}
	store_message_list_free(&m, n);
	CHECK(m == NULL);
	CHECK_INT(store_message_list(st, "bob@example.com", "INBOX", &m, &n, &err), 0);
	CHECK(n == 2 && m[0].uid == 1 && m[1].uid == 2);
	if (n == 2)
		CHECK_STR(buf_cstr(&m[1].header_text), hdr_bob);
	store_message_list_free(&m, n);
	CHECK_INT(store_message_list(st, "bob@example.com", "Sent", &m, &n, &err), 0);
	CHECK_INT(n, 0);
	store_message_list_free(&m, n);
	CHECK_INT(store_message_list(st, "bob@example.com", "sent", &m, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_message_list(st, "nobody@example.com", "INBOX", &m, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	struct store_mailbox *mb;
	CHECK_INT(store_mailbox_list(st, "bob@example.com", &mb, &n, &err), 0);
	CHECK(n == 6 && mb[0].uidnext == 3 && mb[0].highestmodseq == 3 && mb[0].n_messages == 2);
	CHECK(n == 6 && mb[1].uidnext == 1 && mb[1].highestmodseq == 1); /* others untouched */
	store_mailbox_list_free(&mb, n);
	struct store_account a;
	CHECK_INT(store_account_get(st, "bob@example.com", &a, &err), 0);
	CHECK_INT(a.used, 2 * strlen(hdr_bob) + strlen(body1) + strlen(body2));
	store_account_deinit(&a);

	struct store_queue_rcpt *q;
	CHECK_INT(store_queue_list(st, &q, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_INT(q[0].msg_id, qid);
		CHECK_STR(q[0].mail_from, "s@remote.example");
		CHECK_STR(q[0].rcpt, "ext@Remote.Example");
		CHECK_STR(q[0].notify, "SUCCESS,FAILURE");
		CHECK_STR(q[0].orcpt, "rfc822;team@example.com");
		CHECK_STR(q[0].ret, "HDRS");
		CHECK_STR(q[0].envid, "ENV-1");
		CHECK_STR(q[0].auth_user, NULL);
		CHECK_STR(q[0].status, "queued");
		CHECK(q[0].requiretls);
	}
	store_queue_list_free(&q, n);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts WHERE domain = 'remote.example'"
	                  " AND next_attempt > 0 AND attempts = 0"),
	          1);
	CHECK_INT(sql_int("SELECT size FROM queue_messages"), strlen(hdr_queue) + strlen(body1));
	CHECK_INT(sql_int("SELECT length(header_text) FROM queue_messages"), strlen(hdr_queue));

	/* Atomic: an account that vanished fails the whole delivery, nothing is stored. */
	d.body = (const unsigned char *)"Subject: three\r\n\r\n";
	d.body_len = strlen((const char *)d.body);
	d.n_remote = 1;
	local[1].account = "gone@example.com";
	CHECK_INT(store_deliver(st, &d, &qid, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(qid, 0);
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 2);
	CHECK_INT(sql_int("SELECT count(*) FROM messages"), 4);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_messages"), 1);
	CHECK_INT(sql_int("SELECT max(uidnext) FROM mailboxes"), 3);

	/* Contract errors. */
	d.n_local = d.n_remote = 0;
	CHECK_INT(store_deliver(st, &d, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	d.n_remote = 1;
	remote.address = "no-domain@";
	CHECK_INT(store_deliver(st, &d, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);

	/* Remote only, null sender, empty body and header. */
	remote.address = "x@remote.example";
	d.mail_from = "";
	d.body = NULL;
	d.body_len = 0;
	d.queue_header = NULL;
	d.queue_header_len = 0;
	CHECK_INT(store_deliver(st, &d, &qid, &err), 0);
	CHECK(qid > 0);
	CHECK_INT(store_queue_list(st, &q, &n, &err), 0);
	CHECK(n == 2 && strcmp(q[1].mail_from, "") == 0 && q[1].msg_id == qid);
	store_queue_list_free(&q, n);
	store_close(&st);
	CHECK_INT(sql_int("PRAGMA foreign_key_check"), -1); /* no rows: no violations */
	tmp_cleanup();
}

/* A body above the incremental-write threshold is written in place, read back intact and
 * deduplicated like any other. */
static void
test_deliver_large(void)
{
	struct store *st = open_fresh();
	deliver_setup(st);
	size_t len = 3 * 1024 * 1024 + 17;
	unsigned char *body = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		body[i] = (unsigned char)(i * 7 + (i >> 13));
	struct store_local_rcpt l = {"bob@example.com", "X: y\r\n", 6, NULL};
	struct store_delivery d = {.body = body, .body_len = len, .local = &l, .n_local = 1};
	struct err err = {0};
	CHECK_INT(store_deliver(st, &d, NULL, &err), 0);
	CHECK_INT(store_deliver(st, &d, NULL, &err), 0);
	struct store_message *m;
	size_t n;
	CHECK_INT(store_message_list(st, "bob@example.com", "INBOX", &m, &n, &err), 0);
	CHECK(n == 2 && m[1].uid == 2 && m[0].size == len + 6);
	struct buf b;
	buf_init(&b, 0);
	if (n == 2) {
		CHECK_STR(m[0].blob_sha256, m[1].blob_sha256);
		CHECK_INT(store_blob_get(st, m[0].blob_sha256, &b, &err), 0);
	}
	CHECK(b.len == len && memcmp(b.data, body, len) == 0);
	buf_deinit(&b);
	store_message_list_free(&m, n);
	store_close(&st);
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 1);
	CHECK_INT(sql_int("SELECT refcount FROM blobs"), 2);
	free(body);
	tmp_cleanup();
}

static void
test_deliver_remove(void)
{
	struct store *st = open_fresh();
	deliver_setup(st);
	struct err err = {0};
	struct store_local_rcpt local[2];
	struct store_remote_rcpt remote;
	struct store_delivery d = delivery(body1, local, &remote);
	d.n_local = 1; /* bob only, and the remote copy */
	CHECK_INT(store_deliver(st, &d, NULL, &err), 0);
	d = delivery(body2, local, &remote);
	d.n_remote = 0; /* bob and alice */
	CHECK_INT(store_deliver(st, &d, NULL, &err), 0);
	local[0].account = "bob@example.com";
	d.n_local = 1;
	d.body = (const unsigned char *)"bob only";
	d.body_len = 8;
	CHECK_INT(store_deliver(st, &d, NULL, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 3);

	CHECK_INT(store_account_remove(st, "bob@example.com", &err), 0);
	/* "bob only" is collected; body1 stays for the queue, body2 for alice. */
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 2);
	CHECK_INT(sql_int("SELECT sum(refcount) FROM blobs"), 2);
	CHECK_INT(sql_int("SELECT count(*) FROM messages"), 1);
	CHECK_INT(store_account_remove(st, "alice@example.com", &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), 1);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts"), 1);
	store_close(&st);
	tmp_cleanup();
}

/* ---- concurrency ---- */

#define N_THREADS 8
#define N_EACH    100

struct dworker {
	struct store *st;
	int id, n, failures;
	const char *const *accounts;
	size_t n_accounts;
	atomic_int *stop;
	uint64_t done;
};

static void
body_of(int t, int i, char *out, size_t n)
{
	(void)snprintf(out, n, "Subject: t%d m%d\r\n\r\nbody %d of thread %d\r\n", t, i, i, t);
}

static void *
deliver_worker(void *arg)
{
	struct dworker *w = arg;
	struct store_local_rcpt l[4];
	for (size_t k = 0; k < w->n_accounts; k++)
		l[k] = (struct store_local_rcpt){w->accounts[k], "X-T: 1\r\n", 8, NULL};
	for (int i = 0; i < w->n; i++) {
		char body[128];
		body_of(w->id, i, body, sizeof body);
		struct store_delivery d = {.body = (const unsigned char *)body,
		                           .body_len = strlen(body),
		                           .local = l,
		                           .n_local = w->n_accounts};
		struct err err;
		if (store_deliver(w->st, &d, NULL, &err) < 0) {
			fprintf(stderr, "  worker %d: %s\n", w->id, err.msg);
			w->failures++;
		}
	}
	store_thread_done(w->st);
	return NULL;
}

static void
test_deliver_concurrent(void)
{
	struct store *st = open_fresh();
	deliver_setup(st);
	static const char *const accts[] = {"bob@example.com", "alice@example.com"};
	uint64_t c0 = store_commit_count(st);
	pthread_t th[N_THREADS];
	struct dworker w[N_THREADS];
	for (int t = 0; t < N_THREADS; t++) {
		w[t] = (struct dworker){
		    .st = st, .id = t, .n = N_EACH, .accounts = accts, .n_accounts = 2};
		pthread_create(&th[t], NULL, deliver_worker, &w[t]);
	}
	int failures = 0;
	for (int t = 0; t < N_THREADS; t++) {
		pthread_join(th[t], NULL);
		failures += w[t].failures;
	}
	CHECK_INT(failures, 0);
	uint64_t commits = store_commit_count(st) - c0;
	CHECK(commits < N_THREADS * N_EACH);
	printf("  concurrent: %d deliveries in %llu commits\n", N_THREADS * N_EACH,
	       (unsigned long long)commits);
	struct err err;
	for (size_t k = 0; k < 2; k++) {
		struct store_message *m;
		size_t n;
		CHECK_INT(store_message_list(st, accts[k], "INBOX", &m, &n, &err), 0);
		CHECK_INT(n, N_THREADS * N_EACH);
		int bad = 0;
		for (size_t i = 0; i < n; i++) /* by UID: exactly 1..N, modseqs increasing */
			if (m[i].uid != i + 1 || (i > 0 && m[i].modseq <= m[i - 1].modseq))
				bad++;
		CHECK_INT(bad, 0);
		store_message_list_free(&m, n);
		struct store_mailbox *mb;
		CHECK_INT(store_mailbox_list(st, accts[k], &mb, &n, &err), 0);
		CHECK(n > 0 && mb[0].uidnext == N_THREADS * N_EACH + 1 &&
		      mb[0].highestmodseq == N_THREADS * N_EACH + 1);
		store_mailbox_list_free(&mb, n);
	}
	/* Every delivery is there: each body once, referenced by both INBOXes. */
	CHECK_INT(sql_int("SELECT count(*) FROM blobs WHERE refcount = 2"), N_THREADS * N_EACH);
	for (int t = 0; t < N_THREADS; t++) {
		for (int i = 0; i < N_EACH; i += 7) {
			char body[128], sha[65];
			body_of(t, i, body, sizeof body);
			CHECK_INT(store_blob_put(st, body, strlen(body), sha, &err), 0);
		}
	}
	CHECK_INT(sql_int("SELECT count(*) FROM blobs"), N_THREADS * N_EACH); /* all were there */
	store_close(&st);
	tmp_cleanup();
}

/* ---- kill -9 during a delivery burst ---- */

#define ACK_LEN 128 /* fixed-size records, one write() each, atomic below PIPE_BUF */

static const char *const kill_accounts[] = {"bob@example.com", "alice@example.com",
                                            "carol@example.com"};

struct kill_worker {
	struct store *st;
	int id, fd;
};

/* Child: delivers forever; after each acknowledged delivery reports "<account> <sha>". */
static void *
kill_deliverer(void *arg)
{
	struct kill_worker *k = arg;
	const char *acct = kill_accounts[k->id % 3];
	struct store_local_rcpt l = {acct, "X-K: 1\r\n", 8, NULL};
	struct store_remote_rcpt r = {"far@remote.example", NULL, NULL};
	for (int i = 0;; i++) {
		char body[256], sha[65];
		body_of(k->id, i, body, sizeof body);
		struct store_delivery d = {.body = (const unsigned char *)body,
		                           .body_len = strlen(body),
		                           .local = &l,
		                           .n_local = 1,
		                           .mail_from = "s@remote.example",
		                           .remote = &r,
		                           .n_remote = (size_t)(i % 4 == 0)};
		struct err err;
		if (store_deliver(k->st, &d, NULL, &err) < 0)
			_exit(3);
		if (store_blob_sha256(body, strlen(body), sha, &err) < 0)
			_exit(3);
		char rec[ACK_LEN] = {0};
		(void)snprintf(rec, sizeof rec, "%s %s", acct, sha);
		if (write(k->fd, rec, sizeof rec) != (ssize_t)sizeof rec)
			_exit(4);
	}
	return NULL;
}

static void
kill_child(int fd)
{
	struct store *st;
	struct err err;
	if (store_open(dbpath, &st, &err) < 0)
		_exit(2);
	pthread_t th[N_THREADS];
	struct kill_worker k[N_THREADS];
	for (int t = 0; t < N_THREADS; t++) {
		k[t] = (struct kill_worker){.st = st, .id = t, .fd = fd};
		pthread_create(&th[t], NULL, kill_deliverer, &k[t]);
	}
	for (int t = 0; t < N_THREADS; t++)
		pthread_join(th[t], NULL);
	_exit(0);
}

/* Is sha among the messages of m? */
static bool
has_sha(const struct store_message *m, size_t n, const char *sha)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].blob_sha256, sha) == 0)
			return true;
	return false;
}

static void
test_deliver_kill9(void)
{
	struct store *st = open_fresh();
	deliver_setup(st);
	MUST(store_account_add(st, "carol@example.com", "h", 0, &e_));
	store_close(&st);
	size_t n = 0;
	bool killed = false;
	char(*acks)[ACK_LEN] =
	    (char(*)[ACK_LEN])test_kill_burst(kill_child, ACK_LEN, 300, &n, &killed);
	CHECK(killed);

	struct err err;
	CHECK_INT(store_open(dbpath, &st, &err), 0);
	if (st) {
		CHECK_INT(store_integrity_check(st, &err), 0);
		struct store_message *m[3];
		size_t nm[3];
		for (size_t k = 0; k < 3; k++) {
			CHECK_INT(
			    store_message_list(st, kill_accounts[k], "INBOX", &m[k], &nm[k], &err),
			    0);
			for (size_t i = 0; i < nm[k]; i++) /* UIDs unique and dense */
				CHECK_INT(m[k][i].uid, i + 1);
		}
		size_t missing = 0;
		for (size_t i = 0; i < n; i++) {
			acks[i][ACK_LEN - 1] = '\0';
			char *sp = strchr(acks[i], ' ');
			size_t k = 0;
			while (k < 3 && sp &&
			       strncmp(acks[i], kill_accounts[k], (size_t)(sp - acks[i])))
				k++;
			if (sp == NULL || k == 3 || !has_sha(m[k], nm[k], sp + 1))
				missing++;
		}
		CHECK_INT(missing, 0);
		printf("  kill -9: %zu acknowledged deliveries, all present\n", n);
		for (size_t k = 0; k < 3; k++)
			store_message_list_free(&m[k], nm[k]);
		store_close(&st);
		CHECK_INT(
		    sql_int("SELECT count(*) FROM blobs b WHERE refcount <>"
		            " (SELECT count(*) FROM messages WHERE blob_sha256 = b.sha256) +"
		            " (SELECT count(*) FROM queue_messages WHERE blob_sha256 = b.sha256)"),
		    0);
	}
	free(acks);
	tmp_cleanup();
}

/* ---- throughput (printed, not asserted) ---- */

#define BENCH_THREADS 20
#define BENCH_BODY    4096

static void *
bench_worker(void *arg)
{
	struct dworker *w = arg;
	struct store_local_rcpt l = {w->accounts[0], "Delivered-To: x\r\n", 17, NULL};
	unsigned char *body = xmalloc(BENCH_BODY);
	memset(body, 'b', BENCH_BODY);
	for (uint64_t i = 0; !atomic_load(w->stop); i++) {
		int k = snprintf((char *)body, 64, "Subject: %d %llu\r\n", w->id,
		                 (unsigned long long)i);
		body[k] = '\n';
		struct store_delivery d = {
		    .body = body, .body_len = BENCH_BODY, .local = &l, .n_local = 1};
		struct err err;
		if (store_deliver(w->st, &d, NULL, &err) < 0) {
			w->failures++;
			break;
		}
		w->done++;
	}
	free(body);
	store_thread_done(w->st);
	return NULL;
}

static double
now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_deliver_throughput(void)
{
	struct store *st = open_fresh();
	MUST(store_domain_add(st, "example.com", &e_));
	char accts[BENCH_THREADS][64];
	const char *acct_p[BENCH_THREADS];
	for (int t = 0; t < BENCH_THREADS; t++) {
		(void)snprintf(accts[t], sizeof accts[t], "user%d@example.com", t);
		acct_p[t] = accts[t];
		MUST(store_account_add(st, accts[t], "h", 0, &e_));
	}
	atomic_int stop = 0;
	pthread_t th[BENCH_THREADS];
	struct dworker w[BENCH_THREADS];
	uint64_t c0 = store_commit_count(st);
	double t0 = now_sec();
	for (int t = 0; t < BENCH_THREADS; t++) {
		w[t] = (struct dworker){.st = st, .id = t, .accounts = &acct_p[t], .stop = &stop};
		pthread_create(&th[t], NULL, bench_worker, &w[t]);
	}
	usleep(2000000);
	atomic_store(&stop, 1);
	uint64_t total = 0;
	int failures = 0;
	for (int t = 0; t < BENCH_THREADS; t++) {
		pthread_join(th[t], NULL);
		total += w[t].done;
		failures += w[t].failures;
	}
	double secs = now_sec() - t0;
	uint64_t commits = store_commit_count(st) - c0;
	CHECK_INT(failures, 0);
	printf("  throughput: %llu deliveries of %d bytes from %d threads in %.2f s = %.0f/s"
	       " (%llu commits)\n",
	       (unsigned long long)total, BENCH_BODY, BENCH_THREADS, secs, (double)total / secs,
	       (unsigned long long)commits);
	store_close(&st);
	CHECK_INT(sql_int("SELECT count(*) FROM messages"), total);
	tmp_cleanup();
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	RUN(test_rcpt_resolve);
	RUN(test_sender_allowed);
	RUN(test_deliver);
	RUN(test_deliver_large);
	RUN(test_deliver_remove);
	RUN(test_deliver_concurrent);
	RUN(test_deliver_kill9);
	RUN(test_deliver_throughput);
	return test_done("store-deliver");
}
