/* Unit tests of events and webhooks in the store (migration 7): store_event_add with its webhook
 * fan-out (all, type filter, domain scope), the fan-out of the events store_deliver and
 * store_queue_record write, listing with filters and paging, webhook management, the sender's
 * cycle (claim, retry, claim when due, delivered; recovery after a crash; giving up), the
 * delivery history with attempts, removal with its deliveries, and retention. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_test_util.h"
#include "test.h"
#include "test_tmp.h"
#include "util/log.h"

static char tmpdir[64];
static char dbpath[128];

static const char H1[] = "1111111111111111111111111111111111111111111111111111111111111111";

static struct store *
open_fresh(void)
{
	return store_test_open(tmpdir, sizeof tmpdir, dbpath, sizeof dbpath, "store-event");
}

static void
close_fresh(struct store **st)
{
	store_close(st);
	test_tmpdir_remove(tmpdir);
}

static int64_t
sql_int(const char *sql)
{
	return store_test_sql_int(dbpath, sql);
}

/* Deliveries of webhook id (any status). */
static int64_t
n_deliveries(int64_t webhook)
{
	char sql[128];
	(void)snprintf(sql, sizeof sql,
	               "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %lld",
	               (long long)webhook);
	return sql_int(sql);
}

static int64_t
add_event(struct store *st, const char *type, const char *domain, const char *message,
          const char *rcpt, int64_t created)
{
	struct err err = {0};
	struct store_event_new e = {.type = type,
	                            .domain = domain,
	                            .message = message,
	                            .recipient = rcpt,
	                            .detail = "{\"k\":1}",
	                            .created = created};
	int64_t id = 0;
	if (store_event_add(st, &e, &id, &err) < 0)
		fprintf(stderr, "store_event_add: %s\n", err.msg);
	return id;
}

static void
test_webhooks_manage(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	int64_t a = 0, b = 0;
	CHECK_INT(store_webhook_add(st, "https://h.test/a", "s3cret", NULL, NULL, 10, &a, &err), 0);
	CHECK_INT(store_webhook_add(st, "https://h.test/b", "s2", "message.opened, message.clicked",
	                            "Example.COM", 20, &b, &err),
	          0);
	CHECK(a > 0 && b > a);
	CHECK_INT(sql_int("SELECT types = ',message.opened,message.clicked,' FROM webhooks"
	                  " WHERE id = 2"),
	          1);
	/* errors */
	CHECK_INT(store_webhook_add(st, "https://h.test/c", "s", "x", "nope.test", 1, NULL, &err),
	          -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_webhook_add(st, "https://h.test/c", "s", "a,,b", NULL, 1, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_webhook_add(st, "https://h.test/c", "s", "a b", NULL, 1, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_webhook_add(st, "https://h.test/c", "s", "Message.X", NULL, 1, NULL, &err),
	          -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_webhook_add(st, "https://h.test/c", "s", "a,", NULL, 1, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_webhook_add(st, "", "s", NULL, NULL, 1, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_webhook_add(st, "https://h.test/\n", "s", NULL, NULL, 1, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_webhook_add(st, "https://h.test/c", "", NULL, NULL, 1, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	char *big = malloc(5000);
	memset(big, 'a', 4999);
	big[4999] = '\0';
	CHECK_INT(store_webhook_add(st, big, "s", NULL, NULL, 1, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_webhook_add(st, "https://h.test/c", "s", big, NULL, 1, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	free(big);

	struct store_webhook w;
	CHECK_INT(store_webhook_get(st, b, &w, &err), 0);
	CHECK_INT(w.id, b);
	CHECK_STR(w.url, "https://h.test/b");
	CHECK_STR(w.secret, "s2");
	CHECK_STR(w.types, "message.opened,message.clicked");
	CHECK_STR(w.domain, "example.com");
	CHECK_INT(w.created, 20);
	store_webhook_deinit(&w);
	CHECK_INT(store_webhook_get(st, a, &w, &err), 0);
	CHECK_STR(w.types, "");
	CHECK(w.domain == NULL);
	store_webhook_deinit(&w);
	CHECK_INT(store_webhook_get(st, 99, &w, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	struct store_webhook *v;
	size_t n;
	CHECK_INT(store_webhook_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(v[0].id, a);
		CHECK(v[0].secret == NULL && v[1].secret == NULL);
		CHECK_STR(v[1].types, "message.opened,message.clicked");
	}
	store_webhook_list_free(&v, n);
	CHECK(v == NULL);
	CHECK_INT(store_webhook_list(st, "EXAMPLE.com", &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(v[0].id, b);
	store_webhook_list_free(&v, n);
	CHECK_INT(store_webhook_list(st, "other.test", &v, &n, &err), 0);
	CHECK_INT(n, 0);
	store_webhook_list_free(&v, n);

	CHECK_INT(store_webhook_remove(st, a, &err), 0);
	CHECK_INT(store_webhook_remove(st, a, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	/* deleted with its domain */
	CHECK_INT(store_domain_remove(st, "example.com", false, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM webhooks"), 0);
	close_fresh(&st);
}

static void
test_event_fanout(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_domain_add(st, "other.com", &err), 0);
	/* no webhooks: the event alone */
	int64_t e0 = add_event(st, "message.opened", "example.com", NULL, "x@y.test", 5);
	CHECK(e0 > 0);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries"), 0);

	int64_t all = 0, types = 0, dom = 0, other = 0;
	CHECK_INT(store_webhook_add(st, "https://h.test/all", "s", "", NULL, 1, &all, &err), 0);
	CHECK_INT(store_webhook_add(st, "https://h.test/t", "s", "message.opened,message.clicked",
	                            NULL, 1, &types, &err),
	          0);
	CHECK_INT(
	    store_webhook_add(st, "https://h.test/d", "s", NULL, "example.com", 1, &dom, &err), 0);
	CHECK_INT(store_webhook_add(st, "https://h.test/o", "s", "message.delivered", "other.com",
	                            1, &other, &err),
	          0);

	int64_t e1 = add_event(st, "message.opened", "Example.COM", "msg_x", "x@y.test", 10);
	CHECK(e1 > e0);
	CHECK_INT(sql_int("SELECT domain = 'example.com' AND message = 'msg_x' FROM events"
	                  " WHERE id = 2"),
	          1);
	CHECK_INT(n_deliveries(all), 1);
	CHECK_INT(n_deliveries(types), 1);
	CHECK_INT(n_deliveries(dom), 1);
	CHECK_INT(n_deliveries(other), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries WHERE event_id = 2"
	                  " AND status = 'pending' AND next_attempt = 10 AND created = 10"
	                  " AND attempts = 0"),
	          3);

	add_event(st, "message.delivered", "other.com", NULL, "x@y.test", 11);
	CHECK_INT(n_deliveries(all), 2);
	CHECK_INT(n_deliveries(types), 1);
	CHECK_INT(n_deliveries(dom), 1);
	CHECK_INT(n_deliveries(other), 1);
	/* a type that is a prefix of a wanted one does not match */
	add_event(st, "message.open", "example.com", NULL, "", 12);
	CHECK_INT(n_deliveries(all), 3);
	CHECK_INT(n_deliveries(types), 1);
	CHECK_INT(n_deliveries(dom), 2);
	/* no domain: only the webhooks for all domains */
	add_event(st, "message.clicked", NULL, NULL, NULL, 13);
	CHECK_INT(n_deliveries(all), 4);
	CHECK_INT(n_deliveries(types), 2);
	CHECK_INT(n_deliveries(dom), 2);
	/* a domain we do not serve */
	add_event(st, "message.received", "elsewhere.test", NULL, NULL, 14);
	CHECK_INT(n_deliveries(all), 5);
	CHECK_INT(n_deliveries(dom), 2);
	CHECK_INT(n_deliveries(other), 1);

	/* bad input */
	struct store_event_new bad = {.type = "Bad Type", .created = 1};
	CHECK_INT(store_event_add(st, &bad, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	bad.type = NULL;
	CHECK_INT(store_event_add(st, &bad, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	char big[300];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	struct store_event_new bad2 = {.type = "message.opened", .domain = big, .created = 1};
	CHECK_INT(store_event_add(st, &bad2, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	bad2.domain = NULL;
	bad2.message = big;
	CHECK_INT(store_event_add(st, &bad2, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(sql_int("SELECT count(*) FROM events"), 6);
	close_fresh(&st);
}

/* An API send through store_deliver: bob local, carol and dan remote. */
static int
api_deliver(struct store *st, const char *public_id, int64_t key, int64_t *qid_r, struct err *err)
{
	static const char body[] = "Subject: x\r\n\r\nhi\r\n";
	struct store_local_rcpt l[] = {{.account = "bob@example.com"}};
	struct store_remote_rcpt r[] = {{.address = "carol@remote.test"},
	                                {.address = "dan@far.test"}};
	struct store_api_rcpt ar[] = {
	    {"bob@example.com", "to", "delivered", NULL},
	    {"carol@remote.test", "to", "queued", NULL},
	    {"dan@far.test", "cc", "queued", NULL},
	};
	struct store_api_send api = {.public_id = public_id,
	                             .apikey_id = key,
	                             .domain = "Example.com",
	                             .from = "alice@example.com",
	                             .tags_json = "[\"t1\"]",
	                             .metadata_json = "{\"k\":\"v\"}",
	                             .rcpts = ar,
	                             .n_rcpts = 3,
	                             .created = 1000};
	struct store_delivery d = {.body = (const unsigned char *)body,
	                           .body_len = sizeof body - 1,
	                           .internal_date = 1000,
	                           .local = l,
	                           .n_local = 1,
	                           .mail_from = "alice@example.com",
	                           .queue_header = "",
	                           .remote = r,
	                           .n_remote = 2,
	                           .api = &api};
	return store_deliver(st, &d, qid_r, err);
}

static void
test_deliver_fanout(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_domain_add(st, "other.com", &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "x", 0, &err), 0);
	int64_t key = 0, all = 0, dom = 0, oth = 0, qid = 0;
	CHECK_INT(store_apikey_add(st, H1, "lr_aaaaaaaaa", NULL, "example.com", 1, &key, &err), 0);
	CHECK_INT(store_webhook_add(st, "https://h.test/all", "s", NULL, NULL, 1, &all, &err), 0);
	CHECK_INT(store_webhook_add(st, "https://h.test/d", "s", "message.queued,message.deferred",
	                            "example.com", 1, &dom, &err),
	          0);
	CHECK_INT(store_webhook_add(st, "https://h.test/o", "s", NULL, "other.com", 1, &oth, &err),
	          0);
	CHECK_INT(api_deliver(st, "msg_one", key, &qid, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM events WHERE domain = 'example.com'"
	                  " AND message = 'msg_one'"),
	          3);
	CHECK_INT(n_deliveries(all), 3);
	CHECK_INT(n_deliveries(dom), 2); /* the two message.queued */
	CHECK_INT(n_deliveries(oth), 0);

	/* a queue result */
	int64_t now = 2000000000;
	struct store_queue_job j = {0};
	CHECK_INT(store_queue_claim(st, qid, "remote.test", now, &j, &err), 1);
	struct store_queue_result res = {.rcpt_id = j.n_rcpts ? j.rcpts[0].id : 0,
	                                 .outcome = STORE_QUEUE_DEFERRED,
	                                 .next_attempt = now + 600,
	                                 .error = "451 busy",
	                                 .count_attempt = true};
	CHECK_INT(store_queue_record(st, &res, 1, now, &err), 0);
	store_queue_job_deinit(&j);
	CHECK_INT(sql_int("SELECT count(*) FROM events WHERE type = 'message.deferred'"
	                  " AND domain = 'example.com' AND message = 'msg_one'"),
	          1);
	CHECK_INT(n_deliveries(all), 4);
	CHECK_INT(n_deliveries(dom), 3);
	CHECK_INT(
	    sql_int("SELECT count(*) FROM webhook_deliveries WHERE next_attempt = 2000000000"), 2);

	/* listed with the API record's tags and metadata */
	struct store_event_row *v;
	size_t n;
	struct store_event_filter f = {.message = "msg_one"};
	CHECK_INT(store_event_list(st, &f, &v, &n, &err), 0);
	CHECK_INT(n, 4);
	if (n == 4) {
		CHECK_STR(v[0].ev.type, "message.delivered");
		CHECK_STR(v[0].ev.recipient, "bob@example.com");
		CHECK_STR(v[0].domain, "example.com");
		CHECK_STR(v[0].message, "msg_one");
		CHECK_STR(v[0].tags_json, "[\"t1\"]");
		CHECK_STR(v[0].metadata_json, "{\"k\":\"v\"}");
		CHECK_STR(v[3].ev.type, "message.deferred");
		CHECK_STR(v[3].ev.recipient, "carol@remote.test");
		CHECK(strstr(v[3].ev.detail, "451 busy") != NULL);
	}
	store_event_rows_free(&v, n);
	CHECK(v == NULL);

	/* a later event naming the message (tracking) is linked to its record */
	int64_t e =
	    add_event(st, "message.opened", "example.com", "msg_one", "carol@remote.test", 5);
	CHECK(e > 0);
	f.type = "message.opened";
	CHECK_INT(store_event_list(st, &f, &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_STR(v[0].tags_json, "[\"t1\"]");
	store_event_rows_free(&v, n);

	/* mail without an API record: no domain, only the webhooks for all domains */
	static const char body[] = "x\r\n";
	struct store_local_rcpt l[] = {{.account = "bob@example.com"}};
	struct store_delivery d = {.body = (const unsigned char *)body,
	                           .body_len = 3,
	                           .internal_date = 1,
	                           .local = l,
	                           .n_local = 1};
	CHECK_INT(store_deliver(st, &d, NULL, &err), 0);
	CHECK_INT(n_deliveries(all), 6);
	CHECK_INT(n_deliveries(dom), 3);
	CHECK_INT(sql_int("SELECT count(*) FROM events WHERE domain IS NULL AND message IS NULL"),
	          1);
	close_fresh(&st);
}

static void
test_event_list(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	int64_t id[6];
	id[0] = add_event(st, "message.opened", "a.test", "m1", "x@a.test", 1);
	id[1] = add_event(st, "message.clicked", "a.test", "m1", "x@a.test", 2);
	id[2] = add_event(st, "message.opened", "b.test", "m2", "y@b.test", 3);
	id[3] = add_event(st, "message.received", "B.TEST", "m3", "Y@b.test", 4);
	id[4] = add_event(st, "message.opened", "a.test", "m4", "z@a.test", 5);
	id[5] = add_event(st, "message.opened", NULL, NULL, NULL, 6);
	struct store_event_row *v;
	size_t n;
	struct store_event_filter f = {0};
	CHECK_INT(store_event_list(st, &f, &v, &n, &err), 0);
	CHECK_INT(n, 6);
	for (size_t i = 0; i < n && i < 6; i++)
		CHECK_INT(v[i].ev.id, id[i]);
	if (n == 6) {
		CHECK_INT(v[1].ev.created, 2);
		CHECK_STR(v[1].ev.detail, "{\"k\":1}");
		CHECK_STR(v[3].domain, "b.test");
		CHECK(v[3].tags_json == NULL && v[3].metadata_json == NULL);
		CHECK(v[5].domain == NULL && v[5].message == NULL);
		CHECK_STR(v[5].ev.recipient, "");
	}
	store_event_rows_free(&v, n);

	struct {
		struct store_event_filter f;
		size_t want;
		int first; /* index into id[] */
	} cases[] = {
	    {{.type = "message.opened"}, 4, 0},
	    {{.domain = "A.test"}, 3, 0},
	    {{.domain = "b.test"}, 2, 2},
	    {{.domain = "b.test", .type = "message.received"}, 1, 3},
	    {{.message = "m1"}, 2, 0},
	    {{.recipient = "y@B.test"}, 2, 2},
	    {{.type = "message.bounced"}, 0, 0},
	    {{.after_id = id[3]}, 2, 4},
	    {{.type = "message.opened", .after_id = id[2]}, 2, 4},
	    {{.limit = 2}, 2, 0},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		CHECK_INT(store_event_list(st, &cases[c].f, &v, &n, &err), 0);
		if (n != cases[c].want)
			fprintf(stderr, "  case %zu\n", c);
		CHECK_INT(n, cases[c].want);
		if (n > 0)
			CHECK_INT(v[0].ev.id, id[cases[c].first]);
		store_event_rows_free(&v, n);
	}
	/* paging: after_id from the last row */
	f.limit = 4;
	f.type = "message.opened";
	size_t seen = 0;
	for (int page = 0; page < 5; page++) {
		CHECK_INT(store_event_list(st, &f, &v, &n, &err), 0);
		if (n == 0) {
			store_event_rows_free(&v, n);
			break;
		}
		f.limit = 2;
		seen += n;
		f.after_id = v[n - 1].ev.id;
		store_event_rows_free(&v, n);
	}
	CHECK_INT(seen, 4);
	/* values past the limits match nothing */
	char big[400];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	struct store_event_filter fb = {.domain = big};
	CHECK_INT(store_event_list(st, &fb, &v, &n, &err), 0);
	CHECK_INT(n, 0);
	store_event_rows_free(&v, n);
	close_fresh(&st);
}

static void
test_sender_cycle(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	int64_t wh = 0, now = 1000, next = -1;
	CHECK_INT(store_webhook_next_due(st, &next, &err), 0);
	CHECK_INT(next, 0);
	CHECK_INT(
	    store_webhook_add(st, "https://h.test/w", "sec", NULL, "example.com", 1, &wh, &err), 0);
	int64_t e1 = add_event(st, "message.opened", "example.com", "m1", "x@y.test", now);
	CHECK_INT(store_webhook_next_due(st, &next, &err), 0);
	CHECK_INT(next, now);

	struct store_webhook_job *jobs;
	size_t n;
	CHECK_INT(store_webhook_claim(st, now - 1, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 0);
	store_webhook_jobs_free(&jobs, n);
	CHECK_INT(store_webhook_claim(st, now, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 1);
	int64_t did = 0;
	if (n == 1) {
		did = jobs[0].delivery_id;
		CHECK(did > 0);
		CHECK_INT(jobs[0].webhook_id, wh);
		CHECK_STR(jobs[0].url, "https://h.test/w");
		CHECK_STR(jobs[0].secret, "sec");
		CHECK_INT(jobs[0].attempts, 0);
		CHECK_INT(jobs[0].event_id, e1);
		CHECK_INT(jobs[0].event.ev.id, e1);
		CHECK_STR(jobs[0].event.ev.type, "message.opened");
		CHECK_STR(jobs[0].event.ev.recipient, "x@y.test");
		CHECK_STR(jobs[0].event.ev.detail, "{\"k\":1}");
		CHECK_STR(jobs[0].event.domain, "example.com");
		CHECK_STR(jobs[0].event.message, "m1");
	}
	store_webhook_jobs_free(&jobs, n);
	CHECK(jobs == NULL);
	/* claimed: not handed out again, not due */
	CHECK_INT(store_webhook_claim(st, now + 5000, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 0);
	store_webhook_jobs_free(&jobs, n);
	CHECK_INT(store_webhook_next_due(st, &next, &err), 0);
	CHECK_INT(next, 0);

	/* retry in a minute */
	struct store_webhook_result r = {.delivery_id = did,
	                                 .outcome = STORE_WEBHOOK_RETRY,
	                                 .next_attempt = now + 60,
	                                 .status_code = 0,
	                                 .error = "timeout",
	                                 .duration_ms = 10000};
	CHECK_INT(store_webhook_record(st, &r, now + 10, &err), 0);
	CHECK_INT(store_webhook_next_due(st, &next, &err), 0);
	CHECK_INT(next, now + 60);
	CHECK_INT(store_webhook_claim(st, now + 59, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 0);
	store_webhook_jobs_free(&jobs, n);
	CHECK_INT(store_webhook_claim(st, now + 60, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_INT(jobs[0].delivery_id, did);
		CHECK_INT(jobs[0].attempts, 1);
	}
	store_webhook_jobs_free(&jobs, n);
	r.outcome = STORE_WEBHOOK_DELIVERED;
	r.status_code = 200;
	r.error = NULL;
	r.duration_ms = 35;
	CHECK_INT(store_webhook_record(st, &r, now + 61, &err), 0);
	CHECK_INT(store_webhook_next_due(st, &next, &err), 0);
	CHECK_INT(next, 0);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"
	                  " AND attempts = 2"),
	          1);

	/* a crash while sending: recovery makes it due again */
	int64_t e2 = add_event(st, "message.clicked", "example.com", "m1", "x@y.test", now + 100);
	CHECK_INT(store_webhook_claim(st, now + 100, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 1);
	int64_t did2 = n == 1 ? jobs[0].delivery_id : 0;
	store_webhook_jobs_free(&jobs, n);
	CHECK_INT(store_webhook_recover(st, now + 200, &err), 0);
	CHECK_INT(store_webhook_next_due(st, &next, &err), 0);
	CHECK_INT(next, now + 200);
	CHECK_INT(store_webhook_claim(st, now + 200, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(jobs[0].event_id, e2);
	store_webhook_jobs_free(&jobs, n);
	/* given up; an over-long error is cut */
	char longerr[3000];
	memset(longerr, 'e', sizeof longerr - 1);
	longerr[sizeof longerr - 1] = '\0';
	struct store_webhook_result f = {.delivery_id = did2,
	                                 .outcome = STORE_WEBHOOK_FAILED,
	                                 .status_code = 500,
	                                 .error = longerr,
	                                 .duration_ms = 5};
	CHECK_INT(store_webhook_record(st, &f, now + 201, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'"
	                  " AND attempts = 1"),
	          1);
	CHECK_INT(sql_int("SELECT max(length(error)) FROM webhook_attempts"), 1024);
	/* bad results; a vanished delivery is skipped */
	f.outcome = (enum store_webhook_outcome)7;
	CHECK_INT(store_webhook_record(st, &f, now, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	f.outcome = STORE_WEBHOOK_DELIVERED;
	f.delivery_id = 999;
	CHECK_INT(store_webhook_record(st, &f, now, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_attempts"), 3);

	/* the history: newest delivery first, attempts newest first */
	struct store_webhook_delivery *d;
	CHECK_INT(store_webhook_deliveries(st, wh, 0, 50, &d, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(d[0].id, did2);
		CHECK_INT(d[0].event_id, e2);
		CHECK_STR(d[0].event_type, "message.clicked");
		CHECK_STR(d[0].status, "failed");
		CHECK_INT(d[0].n_tries, 1);
		if (d[0].n_tries == 1)
			CHECK_INT(d[0].tries[0].status_code, 500);
		CHECK_INT(d[1].id, did);
		CHECK_STR(d[1].status, "delivered");
		CHECK_INT(d[1].attempts, 2);
		CHECK_INT(d[1].created, now);
		CHECK_INT(d[1].n_tries, 2);
		if (d[1].n_tries == 2) {
			CHECK_INT(d[1].tries[0].at, now + 61);
			CHECK_INT(d[1].tries[0].status_code, 200);
			CHECK(d[1].tries[0].error == NULL);
			CHECK_INT(d[1].tries[0].duration_ms, 35);
			CHECK_INT(d[1].tries[1].at, now + 10);
			CHECK_INT(d[1].tries[1].status_code, 0);
			CHECK_STR(d[1].tries[1].error, "timeout");
			CHECK_INT(d[1].tries[1].duration_ms, 10000);
		}
	}
	store_webhook_deliveries_free(&d, n);
	CHECK(d == NULL);
	CHECK_INT(store_webhook_deliveries(st, wh, did2, 50, &d, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(d[0].id, did);
	store_webhook_deliveries_free(&d, n);
	CHECK_INT(store_webhook_deliveries(st, wh, 0, 1, &d, &n, &err), 0);
	CHECK_INT(n, 1);
	store_webhook_deliveries_free(&d, n);
	CHECK_INT(store_webhook_deliveries(st, 999, 0, 10, &d, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	/* removal takes the deliveries and attempts with it */
	CHECK_INT(store_webhook_remove(st, wh, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries"), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_attempts"), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM events"), 2);
	CHECK_INT(store_webhook_deliveries(st, wh, 0, 10, &d, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	close_fresh(&st);
}

static void
test_claim_many(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	int64_t w1 = 0, w2 = 0;
	CHECK_INT(store_webhook_add(st, "https://h.test/1", "s", NULL, NULL, 1, &w1, &err), 0);
	CHECK_INT(store_webhook_add(st, "https://h.test/2", "s", NULL, NULL, 1, &w2, &err), 0);
	for (int i = 0; i < 5; i++)
		add_event(st, "message.opened", NULL, NULL, NULL, 100 + i);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries"), 10);
	struct store_webhook_job *jobs;
	size_t n;
	CHECK_INT(store_webhook_claim(st, 1000, 0, &jobs, &n, &err), 0);
	CHECK_INT(n, 0);
	CHECK_INT(store_webhook_claim(st, 1000, 4, &jobs, &n, &err), 0);
	CHECK_INT(n, 4);
	for (size_t i = 1; i < n; i++)
		CHECK(jobs[i].delivery_id > jobs[i - 1].delivery_id);
	if (n == 4)
		CHECK_INT(jobs[0].event.ev.created, 100); /* the oldest due first */
	store_webhook_jobs_free(&jobs, n);
	CHECK_INT(store_webhook_claim(st, 1000, 100, &jobs, &n, &err), 0);
	CHECK_INT(n, 6);
	store_webhook_jobs_free(&jobs, n);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries WHERE status = 'sending'"), 10);
	close_fresh(&st);
}

static void
test_prune(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	int64_t wh = 0;
	int64_t e1 = add_event(st, "message.opened", NULL, NULL, NULL, 100);
	CHECK_INT(store_webhook_add(st, "https://h.test/w", "s", NULL, NULL, 1, &wh, &err), 0);
	int64_t e2 = add_event(st, "message.opened", NULL, NULL, NULL, 200);
	int64_t e3 = add_event(st, "message.opened", NULL, NULL, NULL, 300);
	int64_t e4 = add_event(st, "message.opened", NULL, NULL, NULL, 400);
	CHECK(e1 > 0 && e2 > e1 && e4 > e3);
	/* e2's delivery delivered, e3's pending, e4 new */
	struct store_webhook_job *jobs;
	size_t n;
	CHECK_INT(store_webhook_claim(st, 200, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 1);
	int64_t d2 = n == 1 ? jobs[0].delivery_id : 0;
	store_webhook_jobs_free(&jobs, n);
	struct store_webhook_result r = {
	    .delivery_id = d2, .outcome = STORE_WEBHOOK_DELIVERED, .status_code = 204};
	CHECK_INT(store_webhook_record(st, &r, 201, &err), 0);

	size_t pruned = 99;
	CHECK_INT(store_event_prune(st, 350, &pruned, &err), 0);
	CHECK_INT(pruned, 2); /* e1 (no deliveries) and e2 (delivered) */
	CHECK_INT(sql_int("SELECT count(*) FROM events"), 2);
	CHECK_INT(sql_int("SELECT min(id) FROM events"), e3);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries"), 2);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_attempts"), 0);
	CHECK_INT(store_event_prune(st, 350, &pruned, &err), 0);
	CHECK_INT(pruned, 0);
	/* e3's delivery finishes: it goes with the next run */
	CHECK_INT(store_webhook_claim(st, 300, 10, &jobs, &n, &err), 0);
	CHECK_INT(n, 1);
	r.delivery_id = n == 1 ? jobs[0].delivery_id : 0;
	store_webhook_jobs_free(&jobs, n);
	r.outcome = STORE_WEBHOOK_FAILED;
	CHECK_INT(store_webhook_record(st, &r, 301, &err), 0);
	CHECK_INT(store_event_prune(st, 350, NULL, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM events"), 1);
	CHECK_INT(sql_int("SELECT count(*) FROM webhook_deliveries"), 1);
	close_fresh(&st);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_webhooks_manage);
	RUN(test_event_fanout);
	RUN(test_deliver_fanout);
	RUN(test_event_list);
	RUN(test_sender_cycle);
	RUN(test_claim_many);
	RUN(test_prune);
	return test_done("store_event");
}
