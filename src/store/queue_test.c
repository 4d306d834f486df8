/* Tests of the outbound queue scheduling API (queue.c): migration 5 columns, envelope and bounce
 * token, due list and claim (grouping by message and domain, held rows, not twice), results
 * (attempts, delivered_at, skipped when dropped meanwhile), body reads by ranges, the CLI commands
 * (list filters, show, retry, hold, release, drop with blob refcounts), start-up recovery, and a
 * kill -9 while claiming and recording: every recorded delivery stays delivered, nothing stays
 * 'delivering' after recovery, and no row is lost. */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_test_util.h"
#include "test.h"
#include "test_kill.h"
#include "test_tmp.h"
#include "util/log.h"
#include "util/xalloc.h"

static char tmpdir[64];
static char dbpath[128];

static struct store *
open_fresh(void)
{
	return store_test_open(tmpdir, sizeof tmpdir, dbpath, sizeof dbpath, "queue");
}

static int64_t
sql_int(const char *sql)
{
	return store_test_sql_int(dbpath, sql);
}

/* Queues body for the comma-separated remote recipients; returns the queue id (0 on failure). */
static int64_t
enqueue(struct store *st, const char *body, const char *rcpts)
{
	char *copy = xstrdup(rcpts), *save = NULL;
	struct store_remote_rcpt r[16];
	size_t n = 0;
	for (char *t = strtok_r(copy, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
		r[n++] = (struct store_remote_rcpt){.address = t, .notify = "FAILURE,DELAY"};
	struct store_delivery d = {
	    .body = (const unsigned char *)body,
	    .body_len = strlen(body),
	    .internal_date = 1000,
	    .mail_from = "alice@example.com",
	    .auth_user = "alice@example.com",
	    .envid = "env1",
	    .queue_header = "Received: x\r\n",
	    .queue_header_len = 13,
	    .remote = r,
	    .n_remote = n,
	};
	int64_t id = 0;
	struct err err = {0};
	if (store_deliver(st, &d, &id, &err) < 0)
		fprintf(stderr, "  store_deliver: %s\n", err.msg);
	free(copy);
	return id;
}

static void
test_schema(void)
{
	struct store *st = open_fresh();
	CHECK(store_schema_version(st) >= 5);
	int64_t id = enqueue(st, "hello\r\n", "a@remote.test");
	CHECK(id > 0);
	struct err err = {0};
	CHECK_INT(store_queue_set_envelope(st, id, "bounce+tok1@example.com", "tok1",
	                                   "alice@example.com", &err),
	          0);
	int64_t id2 = enqueue(st, "other\r\n", "b@remote.test");
	CHECK_INT(store_queue_set_envelope(st, id2, NULL, "tok1", NULL, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	CHECK_INT(store_queue_set_envelope(st, 999, NULL, "x", NULL, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	struct store_queue_msg m;
	CHECK_INT(store_queue_by_token(st, "tok1", &m, &err), 0);
	CHECK_INT(m.id, id);
	CHECK_STR(m.return_path, "bounce+tok1@example.com");
	CHECK_STR(m.dsn_to, "alice@example.com");
	CHECK_STR(m.mail_from, "alice@example.com");
	CHECK_STR(m.envid, "env1");
	CHECK_INT(m.header_len, 13);
	CHECK_INT(m.size, 13 + 7);
	store_queue_msg_deinit(&m);
	CHECK_INT(store_queue_by_token(st, "nope", &m, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_claim_record(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	int64_t now = 2000000000;
	int64_t id = enqueue(st, "body bytes\r\n", "a@one.test,b@ONE.test,c@two.test");
	CHECK(id > 0);
	struct store_queue_due *due;
	size_t n;
	CHECK_INT(store_queue_due_list(st, now, 10, &due, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(due[0].msg_id, id);
		CHECK(strcmp(due[0].domain, "one.test") == 0 ||
		      strcmp(due[1].domain, "one.test") == 0);
	}
	free(due);
	uint64_t seq = store_queue_change_seq(st);
	struct store_queue_job j = {0};
	CHECK_INT(store_queue_claim(st, id, "one.test", now, &j, &err), 1);
	CHECK(store_queue_change_seq(st) != seq);
	CHECK_INT(j.n_rcpts, 2);
	CHECK_STR(j.domain, "one.test");
	CHECK_STR(j.msg.header_text.data ? buf_cstr(&j.msg.header_text) : "", "Received: x\r\n");
	if (j.n_rcpts == 2) {
		CHECK_STR(j.rcpts[0].rcpt, "a@one.test");
		CHECK_STR(j.rcpts[0].status, "delivering");
		CHECK_STR(j.rcpts[0].notify, "FAILURE,DELAY");
	}
	/* Not twice. */
	struct store_queue_job j2 = {0};
	CHECK_INT(store_queue_claim(st, id, "one.test", now, &j2, &err), 0);
	CHECK_INT(store_queue_due_list(st, now, 10, &due, &n, &err), 0);
	CHECK_INT(n, 1);
	free(due);
	/* Body by ranges. */
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(store_queue_read(st, id, 0, 1000, &b, &err), 0);
	CHECK_STR(buf_cstr(&b), "Received: x\r\nbody bytes\r\n");
	buf_reset(&b);
	CHECK_INT(store_queue_read(st, id, 10, 8, &b, &err), 0);
	CHECK_STR(buf_cstr(&b), "x\r\nbody ");
	buf_reset(&b);
	CHECK_INT(store_queue_read(st, id, 20, 100, &b, &err), 0);
	CHECK_STR(buf_cstr(&b), "tes\r\n");
	buf_deinit(&b);
	/* Results. */
	if (j.n_rcpts == 2) {
		struct store_queue_result r[2] = {
		    {.rcpt_id = j.rcpts[0].id,
		     .outcome = STORE_QUEUE_DELIVERED,
		     .relay = "mx.one.test[127.0.0.1]:25",
		     .error = "250 ok",
		     .count_attempt = true},
		    {.rcpt_id = j.rcpts[1].id,
		     .outcome = STORE_QUEUE_DEFERRED,
		     .next_attempt = now + 60,
		     .error = "451 later",
		     .dsn = "4.0.0",
		     .count_attempt = true},
		};
		CHECK_INT(store_queue_record(st, r, 2, now, &err), 0);
		/* Recording again is a no-op: the rows are no longer 'delivering'. */
		r[0].outcome = STORE_QUEUE_BOUNCED;
		CHECK_INT(store_queue_record(st, r, 1, now, &err), 0);
	}
	struct store_queue_msg m;
	struct store_queue_item *v;
	CHECK_INT(store_queue_show(st, id, &m, &v, &n, &err), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(v[0].status, "delivered");
		CHECK_INT(v[0].attempts, 1);
		CHECK_INT(v[0].delivered_at, now);
		CHECK_STR(v[0].relay, "mx.one.test[127.0.0.1]:25");
		CHECK_STR(v[1].status, "deferred");
		CHECK_INT(v[1].next_attempt, now + 60);
		CHECK_STR(v[1].last_dsn, "4.0.0");
		CHECK_STR(v[1].last_error, "451 later");
		CHECK_INT(v[1].last_attempt, now);
		CHECK_STR(v[2].status, "queued");
	}
	store_queue_items_free(&v, n);
	store_queue_msg_deinit(&m);
	int64_t next;
	CHECK_INT(store_queue_next_due(st, &next, &err), 0);
	CHECK(next <= now); /* c@two.test is still due */
	int64_t ids[1] = {j.n_rcpts ? j.rcpts[0].id : 0};
	CHECK_INT(store_queue_dsn_done(st, ids, 1, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts WHERE dsn_done = 1"), 1);
	store_queue_job_deinit(&j);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_commands(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	int64_t now = 2000000000;
	int64_t a = enqueue(st, "one\r\n", "x@one.test,y@two.test");
	int64_t b = enqueue(st, "two\r\n", "z@two.test");
	struct store_queue_item *v;
	size_t n, changed;
	CHECK_INT(store_queue_items(st, NULL, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 3);
	store_queue_items_free(&v, n);
	CHECK_INT(store_queue_items(st, NULL, "TWO.test", &v, &n, &err), 0);
	CHECK_INT(n, 2);
	store_queue_items_free(&v, n);
	/* hold a: never due */
	CHECK_INT(store_queue_command(st, STORE_QUEUE_HOLD, a, now, &changed, &err), 0);
	CHECK_INT(changed, 2);
	CHECK_INT(store_queue_items(st, "held", NULL, &v, &n, &err), 0);
	CHECK_INT(n, 2);
	store_queue_items_free(&v, n);
	struct store_queue_due *due;
	CHECK_INT(store_queue_due_list(st, now, 10, &due, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(due[0].msg_id, b);
	free(due);
	struct store_queue_job j = {0};
	CHECK_INT(store_queue_claim(st, a, "one.test", now, &j, &err), 0);
	/* release */
	CHECK_INT(store_queue_command(st, STORE_QUEUE_RELEASE, a, now + 5, &changed, &err), 0);
	CHECK_INT(changed, 2);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts WHERE status = 'queued'"
	                  " AND next_attempt = 2000000005"),
	          2);
	/* retry all: deferred rows due now */
	CHECK_INT(store_queue_claim(st, b, "two.test", now, &j, &err), 1);
	struct store_queue_result r = {.rcpt_id = j.n_rcpts ? j.rcpts[0].id : 0,
	                               .outcome = STORE_QUEUE_DEFERRED,
	                               .next_attempt = now + 3600,
	                               .count_attempt = true};
	CHECK_INT(store_queue_record(st, &r, 1, now, &err), 0);
	store_queue_job_deinit(&j);
	CHECK_INT(store_queue_items(st, "deferred", NULL, &v, &n, &err), 0);
	CHECK_INT(n, 1);
	store_queue_items_free(&v, n);
	CHECK_INT(store_queue_command(st, STORE_QUEUE_RETRY, 0, now + 10, &changed, &err), 0);
	CHECK_INT(changed, 3);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts WHERE next_attempt = 2000000010"
	                  " AND status = 'queued'"),
	          3);
	CHECK_INT(store_queue_command(st, STORE_QUEUE_RETRY, 12345, now, &changed, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	/* drop: rows and blob refcount go */
	int64_t blobs = sql_int("SELECT count(*) FROM blobs");
	CHECK_INT(store_queue_command(st, STORE_QUEUE_DROP, a, now, &changed, &err), 0);
	CHECK_INT(changed, 1);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts"), 1);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_messages"), 1);
	CHECK(sql_int("SELECT count(*) FROM blobs") <= blobs);
	struct store_queue_msg m;
	CHECK_INT(store_queue_show(st, a, &m, &v, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_queue_command(st, STORE_QUEUE_DROP, 0, now, &changed, &err), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_messages"), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM blobs WHERE refcount > 0"), 0);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_recover(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	int64_t now = 2000000000;
	int64_t id = enqueue(st, "one\r\n", "x@one.test");
	struct store_queue_job j = {0};
	CHECK_INT(store_queue_claim(st, id, "one.test", now, &j, &err), 1);
	store_queue_job_deinit(&j);
	store_close(&st);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts WHERE status = 'delivering'"), 1);
	CHECK_INT(store_open(dbpath, &st, &err), 0);
	size_t n = 0;
	CHECK_INT(store_queue_recover(st, now + 1, &n, &err), 0);
	CHECK_INT(n, 1);
	CHECK_INT(store_queue_claim(st, id, "one.test", now + 1, &j, &err), 1);
	store_queue_job_deinit(&j);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

/* ---- kill -9 between claim and record ---- */

#define KILL_MSGS 200

static void
kill_child(int fd)
{
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0)
		_exit(2);
	for (;;) {
		struct store_queue_due *due;
		size_t n;
		if (store_queue_due_list(st, 2000000000, 4, &due, &n, &err) < 0)
			_exit(3);
		if (n == 0)
			_exit(0);
		for (size_t i = 0; i < n; i++) {
			struct store_queue_job j = {0};
			if (store_queue_claim(st, due[i].msg_id, due[i].domain, 2000000000, &j,
			                      &err) <= 0)
				continue;
			struct store_queue_result r = {.rcpt_id = j.rcpts[0].id,
			                               .outcome = STORE_QUEUE_DELIVERED,
			                               .count_attempt = true};
			if (store_queue_record(st, &r, 1, 2000000000, &err) < 0)
				_exit(4);
			int64_t ack = r.rcpt_id;
			if (write(fd, &ack, sizeof ack) != sizeof ack)
				_exit(5);
			store_queue_job_deinit(&j);
		}
		free(due);
	}
}

static void
test_kill9(void)
{
	struct store *st = open_fresh();
	for (int i = 0; i < KILL_MSGS; i++)
		CHECK(enqueue(st, "kill body\r\n", "k@kill.test") > 0);
	store_close(&st);
	size_t n = 0;
	bool killed = false;
	char *acks = test_kill_burst(kill_child, sizeof(int64_t), KILL_MSGS / 4, &n, &killed);
	CHECK(n >= KILL_MSGS / 4);
	struct err err = {0};
	CHECK_INT(store_open(dbpath, &st, &err), 0);
	size_t reset = 0;
	CHECK_INT(store_queue_recover(st, 2000000000, &reset, &err), 0);
	CHECK(reset <= 1); /* at most the one claimed when killed */
	for (size_t i = 0; i < n; i++) {
		int64_t id;
		memcpy(&id, acks + i * sizeof id, sizeof id);
		char sql[128];
		(void)snprintf(sql, sizeof sql,
		               "SELECT count(*) FROM queue_rcpts WHERE id = %lld AND status = "
		               "'delivered'",
		               (long long)id);
		if (sql_int(sql) != 1) {
			CHECK(!"acknowledged delivery lost");
			break;
		}
	}
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts WHERE status = 'delivering'"), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM queue_rcpts"), KILL_MSGS);
	CHECK(sql_int("SELECT count(*) FROM queue_rcpts WHERE status = 'delivered'") >= (int64_t)n);
	free(acks);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	RUN(test_schema);
	RUN(test_claim_record);
	RUN(test_commands);
	RUN(test_recover);
	RUN(test_kill9);
	return test_done("store-queue");
}
