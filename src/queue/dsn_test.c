/* Tests of the DSN decisions (queue/dsn.c) on a real store: the NOTIFY table, a failure DSN
 * landing in the local sender's INBOX with the original headers, NOTIFY=NEVER / SUCCESS /
 * DELAY, no DSN for the null sender or without dsn_to (no loops), a remote dsn_to queued with the
 * null sender, RET=FULL returning the body, and queue_dsn_hook marking rows dsn_done. */
#include <stdio.h>
#include <string.h>

#include "queue/dsn.h"
#include "store/store.h"
#include "test.h"
#include "test_tmp.h"
#include "util/log.h"

static char tmpdir[64];

static struct store *
open_store(void)
{
	char path[128];
	test_tmpdir(tmpdir, sizeof tmpdir, "qdsn");
	(void)snprintf(path, sizeof path, "%s/lightr.db", tmpdir);
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(path, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		return NULL;
	}
	CHECK_INT(store_domain_add(st, "example.org", &err), 0);
	CHECK_INT(store_account_add(st, "alice@example.org", "$argon2id$x", 0, &err), 0);
	return st;
}

static const char original[] = "From: alice@example.org\r\nTo: carol@remote.example\r\n"
                               "Subject: the original\r\n\r\nSECRET BODY TEXT\r\n";

/* Queues original from mail_from to carol (notify) and returns the queue id; dsn_to set. */
static int64_t
queue_one(struct store *st, const char *mail_from, const char *notify, const char *ret,
          const char *dsn_to)
{
	struct store_remote_rcpt rr = {
	    .address = "carol@remote.example", .notify = notify, .orcpt = "rfc822;c@example.org"};
	struct store_delivery d = {
	    .body = (const unsigned char *)original,
	    .body_len = strlen(original),
	    .internal_date = 1700000000,
	    .mail_from = mail_from,
	    .ret = ret,
	    .queue_header = "Received: by test\r\n",
	    .queue_header_len = 18,
	    .remote = &rr,
	    .n_remote = 1,
	};
	int64_t qid = 0;
	struct err err = {0};
	CHECK_INT(store_deliver(st, &d, &qid, &err), 0);
	if (dsn_to)
		CHECK_INT(store_queue_set_envelope(st, qid, NULL, NULL, dsn_to, &err), 0);
	return qid;
}

/* Emits kind for all rows of qid; returns whether a DSN was stored. */
static bool
emit(struct store *st, int64_t qid, enum queue_dsn_kind kind)
{
	struct store_queue_msg m;
	struct store_queue_item *v = NULL;
	size_t n = 0;
	struct err err = {0};
	CHECK_INT(store_queue_show(st, qid, &m, &v, &n, &err), 0);
	CHECK_INT(n, 1);
	bool sent = false;
	char diag[] = "550 5.1.1 <carol@remote.example>: no such user";
	char dsn[] = "5.1.1";
	char relay[] = "mx.remote.example[127.0.0.1]:25";
	struct store_queue_item copy = v[0];
	copy.last_error = diag;
	copy.last_dsn = dsn;
	copy.relay = relay;
	const struct store_queue_item *items[1] = {&copy};
	CHECK_INT(queue_dsn_emit(st, "mail.example.org", &m, items, 1, kind, 1700000500, 0, '+',
	                         &sent, &err),
	          0);
	store_queue_items_free(&v, n);
	store_queue_msg_deinit(&m);
	return sent;
}

static size_t
inbox_count(struct store *st)
{
	struct store_message *v = NULL;
	size_t n = 0;
	struct err err = {0};
	CHECK_INT(store_message_list(st, "alice@example.org", "INBOX", &v, &n, &err), 0);
	store_message_list_free(&v, n);
	return n;
}

static void
test_wanted(void)
{
	CHECK(queue_dsn_wanted(NULL, QUEUE_DSN_FAILED));
	CHECK(queue_dsn_wanted(NULL, QUEUE_DSN_DELAYED));
	CHECK(!queue_dsn_wanted(NULL, QUEUE_DSN_DELIVERED));
	CHECK(!queue_dsn_wanted("NEVER", QUEUE_DSN_FAILED));
	CHECK(queue_dsn_wanted("success,failure", QUEUE_DSN_FAILED));
	CHECK(queue_dsn_wanted("SUCCESS,FAILURE", QUEUE_DSN_DELIVERED));
	CHECK(!queue_dsn_wanted("SUCCESS,FAILURE", QUEUE_DSN_DELAYED));
	CHECK(!queue_dsn_wanted("SUCCESS", QUEUE_DSN_FAILED));
	CHECK(queue_dsn_wanted("DELAY", QUEUE_DSN_DELAYED));
	CHECK(!queue_dsn_wanted("FAILUREX", QUEUE_DSN_FAILED));
}

static void
test_emit(void)
{
	struct store *st = open_store();
	if (st == NULL) {
		CHECK(0);
		return;
	}
	/* failure, NOTIFY absent: DSN with the headers only in the local sender's INBOX */
	int64_t q1 = queue_one(st, "alice@example.org", NULL, NULL, "alice@example.org");
	CHECK(emit(st, q1, QUEUE_DSN_FAILED));
	CHECK_INT(inbox_count(st), 1);
	struct store_message *v = NULL;
	size_t n = 0;
	struct err err = {0};
	CHECK_INT(store_message_list(st, "alice@example.org", "INBOX", &v, &n, &err), 0);
	if (n == 1) {
		CHECK(strstr(buf_cstr(&v[0].header_text), "Return-Path: <>\r\n") != NULL);
		struct buf body;
		buf_init(&body, 0);
		CHECK_INT(store_imap_read(st, v[0].id, 0, v[0].size, &body, &err), 0);
		const char *b = buf_cstr(&body);
		CHECK(strstr(b, "Final-Recipient: rfc822;carol@remote.example\r\n") != NULL);
		CHECK(strstr(b, "Original-Recipient: rfc822;c@example.org\r\n") != NULL);
		CHECK(strstr(b, "Action: failed\r\nStatus: 5.1.1\r\n") != NULL);
		CHECK(strstr(b, "Diagnostic-Code: smtp; 550 5.1.1") != NULL);
		CHECK(strstr(b, "text/rfc822-headers") != NULL);
		CHECK(strstr(b, "Subject: the original\r\n") != NULL);
		CHECK(strstr(b, "SECRET BODY TEXT") == NULL);
		buf_deinit(&body);
	}
	store_message_list_free(&v, n);

	/* no DSN: NOTIFY=NEVER, success without SUCCESS, null sender, no dsn_to */
	int64_t q2 = queue_one(st, "alice@example.org", "NEVER", NULL, "alice@example.org");
	CHECK(!emit(st, q2, QUEUE_DSN_FAILED));
	CHECK(!emit(st, q2, QUEUE_DSN_DELAYED));
	int64_t q3 = queue_one(st, "alice@example.org", "FAILURE", NULL, "alice@example.org");
	CHECK(!emit(st, q3, QUEUE_DSN_DELIVERED));
	CHECK(!emit(st, q3, QUEUE_DSN_DELAYED));
	int64_t q4 = queue_one(st, "", NULL, NULL, "alice@example.org");
	CHECK(!emit(st, q4, QUEUE_DSN_FAILED));
	int64_t q5 = queue_one(st, "alice@example.org", NULL, NULL, NULL);
	CHECK(!emit(st, q5, QUEUE_DSN_FAILED));
	CHECK_INT(inbox_count(st), 1);

	/* NOTIFY=SUCCESS with RET=FULL: the body comes back */
	int64_t q6 = queue_one(st, "alice@example.org", "SUCCESS", "FULL", "alice@example.org");
	CHECK(emit(st, q6, QUEUE_DSN_DELIVERED));
	CHECK(emit(st, q1, QUEUE_DSN_DELAYED));
	CHECK_INT(inbox_count(st), 3);

	/* a remote dsn_to: queued from the null sender, and that one gets no DSN itself */
	struct store_queue_rcpt *qv = NULL;
	size_t qn = 0;
	CHECK_INT(store_queue_list(st, &qv, &qn, &err), 0);
	size_t before = qn;
	store_queue_list_free(&qv, qn);
	int64_t q7 = queue_one(st, "alice@example.org", NULL, NULL, "someone@remote.example");
	CHECK(emit(st, q7, QUEUE_DSN_FAILED));
	CHECK_INT(store_queue_list(st, &qv, &qn, &err), 0);
	CHECK_INT(qn, before + 2);
	bool found = false;
	for (size_t i = 0; i < qn; i++)
		if (strcmp(qv[i].rcpt, "someone@remote.example") == 0) {
			found = true;
			CHECK_STR(qv[i].mail_from, "");
		}
	CHECK(found);
	store_queue_list_free(&qv, qn);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_wanted);
	RUN(test_emit);
	return test_done("queue_dsn");
}
