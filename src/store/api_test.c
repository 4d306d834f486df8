/* Unit tests of the REST API part of the store (migration 6): API keys (add, lookup, get, list,
 * revoke, error codes), templates, both deleted with their domain, API send records written by
 * store_deliver with their recipients and events, queue results adding events and moving the
 * recipient status, idempotency keys inside and after the 24 h window, and events for mail that
 * did not come through the API. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"
#include "store/store_test_util.h"
#include "test.h"
#include "test_tmp.h"
#include "util/log.h"

static char tmpdir[64];
static char dbpath[128];

static const char H1[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char H2[] = "2222222222222222222222222222222222222222222222222222222222222222";
static const char H3[] = "3333333333333333333333333333333333333333333333333333333333333333";

static struct store *
open_fresh(void)
{
	return store_test_open(tmpdir, sizeof tmpdir, dbpath, sizeof dbpath, "store-api");
}

static int64_t
sql_int(const char *sql)
{
	return store_test_sql_int(dbpath, sql);
}

static void
test_apikeys(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK(store_schema_version(st) >= 6);
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	int64_t admin = 0, dk = 0;
	CHECK_INT(store_apikey_add(st, H1, "lr_aaaaaaaaa", NULL, NULL, 100, &admin, &err), 0);
	CHECK(admin > 0);
	CHECK_INT(store_apikey_add(st, H2, "lr_bbbbbbbbb", "ci", "Example.COM", 200, &dk, &err), 0);
	CHECK(dk > admin);
	/* errors */
	CHECK_INT(store_apikey_add(st, H1, "lr_ccccccccc", NULL, NULL, 100, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	CHECK_INT(store_apikey_add(st, H3, "lr_ccccccccc", NULL, "nope.test", 100, NULL, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_apikey_add(st, "ABCD", "lr_ccccccccc", NULL, NULL, 100, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_apikey_add(st, H3, "lr_ccccccccc", "bad\nname", NULL, 100, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_apikey_add(st, H3, "lr_ccccccccc", NULL, "bad domain", 100, NULL, &err),
	          -1);
	CHECK_INT(err.code, STORE_EINVAL);

	struct store_apikey k;
	CHECK_INT(store_apikey_lookup(st, H1, &k, &err), 0);
	CHECK_INT(k.id, admin);
	CHECK_STR(k.prefix, "lr_aaaaaaaaa");
	CHECK_STR(k.name, "");
	CHECK(k.domain == NULL);
	CHECK_INT(k.created, 100);
	CHECK_INT(k.revoked, 0);
	store_apikey_deinit(&k);
	CHECK_INT(store_apikey_lookup(st, H2, &k, &err), 0);
	CHECK_STR(k.domain, "example.com");
	CHECK_STR(k.name, "ci");
	store_apikey_deinit(&k);
	CHECK_INT(store_apikey_lookup(st, H3, &k, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_apikey_lookup(st, "not hex", &k, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_apikey_get(st, dk, &k, &err), 0);
	CHECK_STR(k.prefix, "lr_bbbbbbbbb");
	store_apikey_deinit(&k);
	CHECK_INT(store_apikey_get(st, 999, &k, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	struct store_apikey *v;
	size_t n;
	CHECK_INT(store_apikey_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(v[0].id, admin);
		CHECK_INT(v[1].id, dk);
	}
	store_apikey_list_free(&v, n);
	CHECK(v == NULL);
	CHECK_INT(store_apikey_list(st, "EXAMPLE.com", &v, &n, &err), 0);
	CHECK_INT(n, 1);
	store_apikey_list_free(&v, n);

	/* revoke: lookup fails, listing keeps it, the first time stays */
	CHECK_INT(store_apikey_revoke(st, admin, 500, &err), 0);
	CHECK_INT(store_apikey_lookup(st, H1, &k, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_apikey_revoke(st, admin, 600, &err), 0);
	CHECK_INT(store_apikey_get(st, admin, &k, &err), 0);
	CHECK_INT(k.revoked, 500);
	store_apikey_deinit(&k);
	CHECK_INT(store_apikey_revoke(st, 999, 600, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_apikey_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 2);
	store_apikey_list_free(&v, n);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_templates(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	struct store_template t = {.domain = "Example.com",
	                           .name = "welcome",
	                           .subject = "Hi {{name}}",
	                           .text = "Hello \"{{name}}\""};
	CHECK_INT(store_template_add(st, &t, 100, &err), 0);
	CHECK_INT(store_template_add(st, &t, 100, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	struct store_template t2 = {.domain = "example.com", .name = "alpha", .html = "<p>x</p>"};
	CHECK_INT(store_template_add(st, &t2, 150, &err), 0);
	struct store_template bad = {.domain = "nope.test", .name = "x", .text = "y"};
	CHECK_INT(store_template_add(st, &bad, 100, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	bad.domain = "example.com";
	bad.name = "";
	CHECK_INT(store_template_add(st, &bad, 100, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);

	struct store_template g;
	CHECK_INT(store_template_get(st, "example.com", "welcome", &g, &err), 0);
	CHECK_STR(g.domain, "example.com");
	CHECK_STR(g.subject, "Hi {{name}}");
	CHECK_STR(g.text, "Hello \"{{name}}\"");
	CHECK(g.html == NULL);
	CHECK_INT(g.created, 100);
	CHECK_INT(g.updated, 100);
	store_template_deinit(&g);
	CHECK_INT(store_template_get(st, "example.com", "nope", &g, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	t.subject = NULL;
	t.text = NULL;
	t.html = "<b>new</b>";
	CHECK_INT(store_template_update(st, &t, 300, &err), 0);
	CHECK_INT(store_template_get(st, "example.com", "welcome", &g, &err), 0);
	CHECK(g.subject == NULL && g.text == NULL);
	CHECK_STR(g.html, "<b>new</b>");
	CHECK_INT(g.created, 100);
	CHECK_INT(g.updated, 300);
	store_template_deinit(&g);
	struct store_template miss = {.domain = "example.com", .name = "missing", .text = "x"};
	CHECK_INT(store_template_update(st, &miss, 300, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	struct store_template *v;
	size_t n;
	CHECK_INT(store_template_list(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].name, "alpha");
		CHECK_STR(v[1].name, "welcome");
	}
	store_template_list_free(&v, n);
	CHECK_INT(store_template_remove(st, "example.com", "alpha", &err), 0);
	CHECK_INT(store_template_remove(st, "example.com", "alpha", &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_template_list(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 1);
	store_template_list_free(&v, n);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_domain_remove(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_domain_add(st, "other.com", &err), 0);
	CHECK_INT(store_apikey_add(st, H1, "lr_aaaaaaaaa", "a", "example.com", 1, NULL, &err), 0);
	CHECK_INT(store_apikey_add(st, H2, "lr_bbbbbbbbb", "b", "other.com", 1, NULL, &err), 0);
	CHECK_INT(store_apikey_add(st, H3, "lr_ccccccccc", "admin", NULL, 1, NULL, &err), 0);
	struct store_template t = {.domain = "example.com", .name = "t", .text = "x"};
	CHECK_INT(store_template_add(st, &t, 1, &err), 0);
	t.domain = "other.com";
	CHECK_INT(store_template_add(st, &t, 1, &err), 0);
	CHECK_INT(store_domain_remove(st, "example.com", false, &err), 0);
	struct store_apikey k;
	CHECK_INT(store_apikey_lookup(st, H1, &k, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_apikey_lookup(st, H2, &k, &err), 0);
	store_apikey_deinit(&k);
	CHECK_INT(store_apikey_lookup(st, H3, &k, &err), 0);
	store_apikey_deinit(&k);
	CHECK_INT(sql_int("SELECT count(*) FROM api_keys"), 2);
	CHECK_INT(sql_int("SELECT count(*) FROM templates"), 1);
	struct store_template g;
	CHECK_INT(store_template_get(st, "example.com", "t", &g, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	/* key ids are never reused (idempotency rows and API messages refer to them) */
	int64_t id = 0;
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_apikey_add(st, H1, "lr_aaaaaaaaa", "a", "example.com", 1, &id, &err), 0);
	CHECK_INT(id, 4);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

/* Sends "hi" through the API for bob (local) and two remote recipients, one rejected one. */
static int
api_deliver(struct store *st, const char *public_id, int64_t key, const char *idem,
            const char *resp, int64_t created, int64_t *qid_r, struct err *err)
{
	static const char body[] = "Subject: x\r\n\r\nhi\r\n";
	struct store_local_rcpt l[] = {
	    {.account = "bob@example.com", .header = "", .header_len = 0}};
	struct store_remote_rcpt r[] = {{.address = "Carol@Remote.test"},
	                                {.address = "dan@far.test"}};
	struct store_api_rcpt ar[] = {
	    {"bob@example.com", "to", "delivered", NULL},
	    {"carol@remote.test", "to", "queued", NULL},
	    {"dan@far.test", "cc", "queued", NULL},
	    {"eve@example.com", "bcc", "rejected", "no such user"},
	};
	struct store_api_send api = {.public_id = public_id,
	                             .apikey_id = key,
	                             .domain = "example.com",
	                             .from = "alice@example.com",
	                             .subject = "x",
	                             .message_id = "abc@example.com",
	                             .tags_json = "[\"t1\"]",
	                             .metadata_json = "{\"k\":\"v\"}",
	                             .rcpts = ar,
	                             .n_rcpts = 4,
	                             .idempotency_key = idem,
	                             .response = resp,
	                             .created = created};
	struct store_delivery d = {.body = (const unsigned char *)body,
	                           .body_len = sizeof body - 1,
	                           .internal_date = created,
	                           .local = l,
	                           .n_local = 1,
	                           .mail_from = "alice@example.com",
	                           .queue_header = "",
	                           .remote = r,
	                           .n_remote = 2,
	                           .api = &api};
	return store_deliver(st, &d, qid_r, err);
}

static const struct store_event *
find_event(const struct store_api_message *m, const char *type, const char *rcpt)
{
	for (size_t i = 0; i < m->n_events; i++)
		if (strcmp(m->events[i].type, type) == 0 &&
		    strcasecmp(m->events[i].recipient, rcpt) == 0)
			return &m->events[i];
	return NULL;
}

static void
test_api_send(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "x", 0, &err), 0);
	int64_t key = 0, qid = 0;
	CHECK_INT(store_apikey_add(st, H1, "lr_aaaaaaaaa", NULL, "example.com", 1, &key, &err), 0);
	CHECK_INT(api_deliver(st, "msg_one", key, NULL, NULL, 1000, &qid, &err), 0);
	CHECK(qid > 0);
	/* the same public id twice */
	CHECK_INT(api_deliver(st, "msg_one", key, NULL, NULL, 1000, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_messages"), 1); /* rolled back */

	struct store_api_message m;
	CHECK_INT(store_api_message_get(st, "msg_nope", &m, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_api_message_get(st, "msg_one", &m, &err), 0);
	CHECK_STR(m.public_id, "msg_one");
	CHECK_STR(m.domain, "example.com");
	CHECK_STR(m.from, "alice@example.com");
	CHECK_STR(m.subject, "x");
	CHECK_STR(m.message_id, "abc@example.com");
	CHECK_STR(m.tags_json, "[\"t1\"]");
	CHECK_STR(m.metadata_json, "{\"k\":\"v\"}");
	CHECK_INT(m.apikey_id, key);
	CHECK_INT(m.queue_msg_id, qid);
	CHECK_INT(m.created, 1000);
	CHECK_INT(m.n_rcpts, 4);
	if (m.n_rcpts == 4) {
		CHECK_STR(m.rcpts[0].address, "bob@example.com");
		CHECK_STR(m.rcpts[0].status, "delivered");
		CHECK_STR(m.rcpts[1].status, "queued"); /* the queue row's state */
		CHECK_INT(m.rcpts[1].next_attempt > 0, 1);
		CHECK_STR(m.rcpts[2].kind, "cc");
		CHECK_STR(m.rcpts[3].status, "rejected");
		CHECK_STR(m.rcpts[3].error, "no such user");
		CHECK(m.rcpts[3].last_dsn == NULL);
	}
	CHECK_INT(m.n_events, 3);
	CHECK(find_event(&m, "message.delivered", "bob@example.com") != NULL);
	CHECK(find_event(&m, "message.queued", "carol@remote.test") != NULL);
	CHECK(find_event(&m, "message.queued", "dan@far.test") != NULL);
	if (m.n_events == 3) {
		CHECK(m.events[0].id < m.events[1].id && m.events[1].id < m.events[2].id);
		CHECK_STR(m.events[1].detail, "{}");
	}
	store_api_message_deinit(&m);

	/* a queue result: status follows the queue row, one event each, details escaped */
	int64_t now = 2000000000;
	struct store_queue_job j = {0};
	CHECK_INT(store_queue_claim(st, qid, "remote.test", now, &j, &err), 1);
	CHECK_INT(j.n_rcpts, 1);
	struct store_queue_result res = {.rcpt_id = j.n_rcpts ? j.rcpts[0].id : 0,
	                                 .outcome = STORE_QUEUE_DEFERRED,
	                                 .next_attempt = now + 600,
	                                 .error = "451 \"busy\"\\ try\tlater \xff",
	                                 .dsn = "4.3.0",
	                                 .relay = "mx.remote.test[127.0.0.1]:25",
	                                 .count_attempt = true};
	CHECK_INT(store_queue_record(st, &res, 1, now, &err), 0);
	store_queue_job_deinit(&j);
	CHECK_INT(store_api_message_get(st, "msg_one", &m, &err), 0);
	if (m.n_rcpts == 4) {
		CHECK_STR(m.rcpts[1].status, "deferred");
		CHECK_INT(m.rcpts[1].attempts, 1);
		CHECK_INT(m.rcpts[1].next_attempt, now + 600);
		CHECK_INT(m.rcpts[1].last_attempt, now);
		CHECK_STR(m.rcpts[1].last_dsn, "4.3.0");
		CHECK_STR(m.rcpts[2].status, "queued");
	}
	CHECK_INT(m.n_events, 4);
	const struct store_event *e = find_event(&m, "message.deferred", "carol@remote.test");
	CHECK(e != NULL);
	if (e) {
		CHECK_INT(e->created, now);
		CHECK(strstr(e->detail, "\"dsn\":\"4.3.0\"") != NULL);
		CHECK(strstr(e->detail, "\"reply\":\"451 \\\"busy\\\"\\\\ try\\tlater ?\"") !=
		      NULL);
		CHECK(strstr(e->detail, "\"next_attempt\":2000000600") != NULL);
		CHECK(strstr(e->detail, "\"relay\":\"mx.remote.test[127.0.0.1]:25\"") != NULL);
	}
	store_api_message_deinit(&m);

	/* delivered, then bounced and expired on the other domain */
	CHECK_INT(store_queue_command(st, STORE_QUEUE_RETRY, qid, now, NULL, &err), 0);
	CHECK_INT(store_queue_claim(st, qid, "remote.test", now, &j, &err), 1);
	res.rcpt_id = j.n_rcpts ? j.rcpts[0].id : 0;
	res.outcome = STORE_QUEUE_DELIVERED;
	res.error = "250 ok";
	res.dsn = "2.0.0";
	CHECK_INT(store_queue_record(st, &res, 1, now + 700, &err), 0);
	/* recording again is skipped (no longer delivering): no second event */
	CHECK_INT(store_queue_record(st, &res, 1, now + 701, &err), 0);
	store_queue_job_deinit(&j);
	CHECK_INT(store_queue_claim(st, qid, "far.test", now, &j, &err), 1);
	struct store_queue_result ex = {.rcpt_id = j.n_rcpts ? j.rcpts[0].id : 0,
	                                .outcome = STORE_QUEUE_EXPIRED,
	                                .error = "too old"};
	CHECK_INT(store_queue_record(st, &ex, 1, now + 800, &err), 0);
	store_queue_job_deinit(&j);
	CHECK_INT(store_api_message_get(st, "msg_one", &m, &err), 0);
	if (m.n_rcpts == 4) {
		CHECK_STR(m.rcpts[1].status, "delivered");
		CHECK_INT(m.rcpts[1].delivered_at, now + 700);
		CHECK_STR(m.rcpts[1].last_dsn, "2.0.0");
		CHECK_STR(m.rcpts[2].status, "expired");
	}
	CHECK_INT(m.n_events, 6);
	CHECK(find_event(&m, "message.delivered", "carol@remote.test") != NULL);
	e = find_event(&m, "message.bounced", "dan@far.test");
	CHECK(e != NULL);
	if (e)
		CHECK(strstr(e->detail, "\"reason\":\"expired\"") != NULL);
	store_api_message_deinit(&m);
	CHECK_INT(sql_int("SELECT count(*) FROM events"), 6);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_idempotency(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "x", 0, &err), 0);
	int64_t k1 = 0, k2 = 0;
	CHECK_INT(store_apikey_add(st, H1, "lr_aaaaaaaaa", NULL, "example.com", 1, &k1, &err), 0);
	CHECK_INT(store_apikey_add(st, H2, "lr_bbbbbbbbb", NULL, NULL, 1, &k2, &err), 0);
	int64_t t0 = 1000000;
	CHECK_INT(api_deliver(st, "msg_a", k1, "key-1", "{\"id\":\"msg_a\"}", t0, NULL, &err), 0);
	char *resp = NULL;
	CHECK_INT(store_idempotency_get(st, k1, "key-1", t0 - 86400, &resp, &err), 0);
	CHECK_STR(resp, "{\"id\":\"msg_a\"}");
	free(resp);
	CHECK_INT(store_idempotency_get(st, k2, "key-1", 0, &resp, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK(resp == NULL);
	CHECK_INT(store_idempotency_get(st, k1, "key-2", 0, &resp, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_idempotency_get(st, k1, "key-1", t0 + 1, &resp, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	/* within 24 h: EEXIST and nothing stored */
	CHECK_INT(api_deliver(st, "msg_b", k1, "key-1", "{}", t0 + 86400, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	struct store_api_message m;
	CHECK_INT(store_api_message_get(st, "msg_b", &m, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_messages"), 1);
	CHECK_INT(sql_int("SELECT count(*) FROM messages"), 1);
	/* another key may use the same idempotency key */
	CHECK_INT(api_deliver(st, "msg_c", k2, "key-1", "{\"id\":\"msg_c\"}", t0 + 10, NULL, &err),
	          0);
	/* after 24 h the old row is replaced */
	CHECK_INT(
	    api_deliver(st, "msg_d", k1, "key-1", "{\"id\":\"msg_d\"}", t0 + 86401, NULL, &err), 0);
	CHECK_INT(store_idempotency_get(st, k1, "key-1", t0 + 1, &resp, &err), 0);
	CHECK_STR(resp, "{\"id\":\"msg_d\"}");
	free(resp);
	CHECK_INT(sql_int("SELECT count(*) FROM api_idempotency"), 2);
	/* a key without a response is refused */
	CHECK_INT(api_deliver(st, "msg_e", k1, "key-3", NULL, t0, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

/* Mail that did not come through the API gets events too, without an API message. */
static void
test_plain_events(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "x", 0, &err), 0);
	static const char body[] = "x\r\n";
	struct store_local_rcpt l[] = {{.account = "bob@example.com"}};
	struct store_remote_rcpt r[] = {{.address = "x@remote.test"}};
	struct store_delivery d = {.body = (const unsigned char *)body,
	                           .body_len = 3,
	                           .internal_date = 1,
	                           .local = l,
	                           .n_local = 1,
	                           .mail_from = "",
	                           .remote = r,
	                           .n_remote = 1};
	int64_t qid;
	CHECK_INT(store_deliver(st, &d, &qid, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM events WHERE api_msg_id IS NULL"), 2);
	CHECK_INT(sql_int("SELECT count(*) FROM events WHERE type = 'message.queued'"
	                  " AND queue_msg_id IS NOT NULL"),
	          1);
	CHECK_INT(sql_int("SELECT count(*) FROM events WHERE type = 'message.delivered'"
	                  " AND queue_msg_id IS NULL AND recipient = 'bob@example.com'"),
	          1);
	struct store_queue_job j = {0};
	CHECK_INT(store_queue_claim(st, qid, "remote.test", 2000000000, &j, &err), 1);
	struct store_queue_result res = {.rcpt_id = j.n_rcpts ? j.rcpts[0].id : 0,
	                                 .outcome = STORE_QUEUE_BOUNCED,
	                                 .error = "550 no",
	                                 .dsn = "5.1.1"};
	CHECK_INT(store_queue_record(st, &res, 1, 20, &err), 0);
	store_queue_job_deinit(&j);
	CHECK_INT(sql_int("SELECT count(*) FROM events WHERE type = 'message.bounced'"
	                  " AND api_msg_id IS NULL AND recipient = 'x@remote.test'"),
	          1);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_apikeys);
	RUN(test_templates);
	RUN(test_domain_remove);
	RUN(test_api_send);
	RUN(test_idempotency);
	RUN(test_plain_events);
	return test_done("store_api");
}
