/* Tests of the outbound scheduler (sched.c) on a temporary store with a fake clock and fake
 * workers: the retry schedule and its parser, deferral times from attempts, max_age expiry with a
 * FAILED DSN call, delay warnings once, a worker that reports nothing, destination backoff after
 * consecutive connection failures (and its end), and the per-destination concurrency limit with
 * real worker threads. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/sched.h"
#include "test.h"
#include "test_tmp.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

static char tmpdir[64];
static char dbpath[128];

static struct store *
open_fresh(void)
{
	test_tmpdir(tmpdir, sizeof tmpdir, "sched");
	(void)snprintf(dbpath, sizeof dbpath, "%s/lightr.db", tmpdir);
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		exit(1);
	}
	return st;
}

static int64_t
enqueue(struct store *st, const char *rcpt)
{
	struct store_remote_rcpt r = {.address = rcpt};
	struct store_delivery d = {
	    .body = (const unsigned char *)"hi\r\n",
	    .body_len = 4,
	    .mail_from = "a@example.com",
	    .remote = &r,
	    .n_remote = 1,
	};
	int64_t id = 0;
	struct err err = {0};
	if (store_deliver(st, &d, &id, &err) < 0)
		fprintf(stderr, "  store_deliver: %s\n", err.msg);
	return id;
}

/* ---- fake clock and worker ---- */

static _Atomic int64_t fake_now;

static int64_t
fake_clock(void *ctx)
{
	(void)ctx;
	return atomic_load(&fake_now);
}

struct fake {
	enum queue_outcome outcome;
	bool conn_failure;
	bool no_report;
	int calls;
	int dsn_failed, dsn_delayed, dsn_delivered;
	/* concurrency test */
	_Atomic int running, max_running;
	useconds_t sleep_us;
};

static void
fake_deliver(void *ctx, struct queue_batch *b)
{
	struct fake *f = ctx;
	int now_running = atomic_fetch_add(&f->running, 1) + 1;
	int m = atomic_load(&f->max_running);
	while (now_running > m && !atomic_compare_exchange_weak(&f->max_running, &m, now_running))
		;
	if (f->sleep_us)
		usleep(f->sleep_us);
	atomic_fetch_sub(&f->running, 1);
	__atomic_fetch_add(&f->calls, 1, __ATOMIC_SEQ_CST);
	if (f->no_report)
		return;
	struct queue_result res[8];
	for (size_t i = 0; i < b->job.n_rcpts && i < 8; i++)
		res[i] = (struct queue_result){f->outcome, "451 try later", NULL};
	struct queue_report rep = {
	    .results = res, .relay = "mx.test[127.0.0.1]:25", .conn_failure = f->conn_failure};
	struct err err = {0};
	(void)queue_batch_done(b, &rep, &err);
}

static void
fake_dsn(void *ctx, const struct queue_batch *b, enum queue_dsn_kind kind,
         const struct store_queue_item *const *items, size_t n)
{
	struct fake *f = ctx;
	(void)b;
	(void)items;
	if (kind == QUEUE_DSN_FAILED)
		f->dsn_failed += (int)n;
	else if (kind == QUEUE_DSN_DELAYED)
		f->dsn_delayed += (int)n;
	else
		f->dsn_delivered += (int)n;
}

static struct queue_sched *
sched_make(struct store *st, struct fake *f, struct queue_sched_config *cfg)
{
	cfg->deliver = fake_deliver;
	cfg->deliver_ctx = f;
	cfg->dsn = fake_dsn;
	cfg->dsn_ctx = f;
	cfg->clock = fake_clock;
	struct queue_sched *s = NULL;
	struct err err = {0};
	if (queue_sched_new(st, cfg, &s, &err) < 0) {
		fprintf(stderr, "queue_sched_new: %s\n", err.msg);
		exit(1);
	}
	return s;
}

/* The single recipient row of message id. */
static void
row_get(struct store *st, int64_t id, struct store_queue_item *it_r)
{
	struct store_queue_msg m;
	struct store_queue_item *v = NULL;
	size_t n = 0;
	struct err err = {0};
	memset(it_r, 0, sizeof *it_r);
	if (store_queue_show(st, id, &m, &v, &n, &err) < 0 || n != 1) {
		fprintf(stderr, "  row_get %lld failed\n", (long long)id);
		store_queue_items_free(&v, n);
		return;
	}
	*it_r = v[0];
	free(v);
	store_queue_msg_deinit(&m);
}

static void
item_clear(struct store_queue_item *it)
{
	store_queue_item_deinit(it);
}

/* ---- tests ---- */

static void
test_schedule(void)
{
	struct queue_sched_config cfg = {0};
	static const uint32_t want[] = {60,   60,    300,   900,   1800, 3600,
	                                7200, 14400, 28800, 28800, 28800};
	for (uint32_t a = 0; a < sizeof want / sizeof want[0]; a++)
		CHECK_INT(queue_retry_delay(&cfg, a), want[a]);
	uint32_t r[QUEUE_RETRY_MAX];
	size_t n;
	struct err err = {0};
	CHECK_INT(queue_retry_parse("1m,5m, 15m ,1h,90", r, &n, &err), 0);
	CHECK_INT(n, 5);
	CHECK_INT(r[0], 60);
	CHECK_INT(r[2], 900);
	CHECK_INT(r[4], 90);
	const char *bad[] = {
	    "",
	    "1m,,5m",
	    "0",
	    "8d",
	    "5x",
	    "1m,",
	    "-1m",
	    "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,"
	    "1s,1s,1s,1s,1s,1s,1s,1s"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(queue_retry_parse(bad[i], r, &n, &err), -1);
	cfg.n_retry = 2;
	cfg.retry[0] = 10;
	cfg.retry[1] = 20;
	CHECK_INT(queue_retry_delay(&cfg, 1), 10);
	CHECK_INT(queue_retry_delay(&cfg, 2), 20);
	CHECK_INT(queue_retry_delay(&cfg, 9), 20);
}

static void
test_retry_and_expiry(void)
{
	struct store *st = open_fresh();
	int64_t id = enqueue(st, "x@retry.test");
	struct store_queue_item it;
	row_get(st, id, &it);
	int64_t created = it.created;
	item_clear(&it);
	atomic_store(&fake_now, created);
	struct fake f = {.outcome = QUEUE_TEMPFAIL};
	struct queue_sched_config cfg = {.max_age = 86400, .delay_warning = 3600};
	struct queue_sched *s = sched_make(st, &f, &cfg);
	struct err err = {0};
	size_t ran;
	/* attempts 1..3: +60, +300, +900 */
	static const int64_t steps[] = {60, 300, 900};
	for (size_t k = 0; k < 3; k++) {
		CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
		CHECK_INT(ran, 1);
		row_get(st, id, &it);
		CHECK_STR(it.status, "deferred");
		CHECK_INT(it.attempts, k + 1);
		CHECK_INT(it.next_attempt, atomic_load(&fake_now) + steps[k]);
		CHECK_STR(it.last_error, "451 try later");
		CHECK_STR(it.relay, "mx.test[127.0.0.1]:25");
		/* not due before its time */
		atomic_store(&fake_now, it.next_attempt - 1);
		CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
		CHECK_INT(ran, 0);
		atomic_store(&fake_now, it.next_attempt);
		item_clear(&it);
	}
	CHECK_INT(f.dsn_delayed, 0);
	/* past delay_warning: one DELAYED notice, not twice */
	atomic_store(&fake_now, created + 3600);
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	CHECK_INT(f.dsn_delayed, 1);
	row_get(st, id, &it);
	CHECK(it.delay_notified);
	atomic_store(&fake_now, it.next_attempt);
	item_clear(&it);
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	CHECK_INT(f.dsn_delayed, 1);
	/* the next attempt is clipped at created + max_age */
	atomic_store(&fake_now, created + 86400 - 100);
	CHECK_INT(store_queue_command(st, STORE_QUEUE_RETRY, id, created + 86400 - 100, NULL, &err),
	          0);
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	row_get(st, id, &it);
	CHECK_STR(it.status, "deferred");
	CHECK_INT(it.next_attempt, created + 86400);
	item_clear(&it);
	/* at max_age: expired, FAILED DSN */
	atomic_store(&fake_now, created + 86400);
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	CHECK_INT(ran, 1);
	row_get(st, id, &it);
	CHECK_STR(it.status, "expired");
	CHECK_STR(it.last_dsn, "4.4.7");
	item_clear(&it);
	CHECK_INT(f.dsn_failed, 1);
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	CHECK_INT(ran, 0);
	/* a permanent failure bounces at once; success delivers */
	int64_t id2 = enqueue(st, "y@retry.test");
	f.outcome = QUEUE_PERMFAIL;
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	row_get(st, id2, &it);
	CHECK_STR(it.status, "bounced");
	CHECK_STR(it.last_dsn, "5.0.0");
	item_clear(&it);
	CHECK_INT(f.dsn_failed, 2);
	int64_t id3 = enqueue(st, "z@retry.test");
	f.outcome = QUEUE_OK;
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	row_get(st, id3, &it);
	CHECK_STR(it.status, "delivered");
	CHECK_INT(it.delivered_at, atomic_load(&fake_now));
	item_clear(&it);
	CHECK_INT(f.dsn_delivered, 1);
	/* a worker that reports nothing: deferred */
	int64_t id4 = enqueue(st, "w@retry.test");
	atomic_store(&fake_now, clock_now() + 1); /* young message: no expiry */
	f.no_report = true;
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	row_get(st, id4, &it);
	CHECK_STR(it.status, "deferred");
	CHECK_STR(it.last_error, "internal: no result");
	item_clear(&it);
	queue_sched_free(&s);
	CHECK(s == NULL);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_backoff(void)
{
	struct store *st = open_fresh();
	int64_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] = enqueue(st, "x@down.test");
	int64_t other = enqueue(st, "x@up.test");
	atomic_store(&fake_now, clock_now() + 10);
	struct fake f = {.outcome = QUEUE_TEMPFAIL, .conn_failure = true};
	struct queue_sched_config cfg = {.backoff_failures = 2};
	struct queue_sched *s = sched_make(st, &f, &cfg);
	struct err err = {0};
	size_t ran;
	/* Two batches of down.test fail at connection level; then down.test waits, up.test not. */
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	CHECK_INT(ran, 3); /* 2 of down.test, then backed off; up.test */
	CHECK(queue_sched_backed_off(s, "down.test"));
	CHECK(queue_sched_backed_off(s, "DOWN.test"));
	CHECK(!queue_sched_backed_off(s, "up.test"));
	struct store_queue_item it;
	row_get(st, ids[3], &it);
	CHECK_STR(it.status, "queued");
	CHECK_INT(it.attempts, 0);
	item_clear(&it);
	row_get(st, other, &it);
	CHECK_STR(it.status, "deferred");
	item_clear(&it);
	/* Backoff = retry step 2 (5m) from the last failure. */
	atomic_store(&fake_now, atomic_load(&fake_now) + 299);
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	row_get(st, ids[3], &it);
	CHECK_STR(it.status, "queued");
	item_clear(&it);
	atomic_store(&fake_now, atomic_load(&fake_now) + 1);
	CHECK(!queue_sched_backed_off(s, "down.test"));
	f.conn_failure = false;
	f.outcome = QUEUE_OK;
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	row_get(st, ids[3], &it);
	CHECK_STR(it.status, "delivered");
	item_clear(&it);
	CHECK(!queue_sched_backed_off(s, "down.test"));
	queue_sched_free(&s);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static size_t
count_state(struct store *st, const char *state)
{
	struct store_queue_item *v = NULL;
	size_t n = 0;
	struct err err = {0};
	if (store_queue_items(st, state, NULL, &v, &n, &err) < 0)
		return 0;
	store_queue_items_free(&v, n);
	return n;
}

static void
test_concurrency(void)
{
	struct store *st = open_fresh();
	for (int i = 0; i < 8; i++)
		enqueue(st, "x@busy.test");
	/* a row stuck 'delivering' from a "previous run" is recovered at start */
	struct store_queue_job j = {0};
	struct err err = {0};
	int64_t stuck = enqueue(st, "x@stuck.test");
	CHECK_INT(store_queue_claim(st, stuck, "stuck.test", clock_now() + 5, &j, &err), 1);
	store_queue_job_deinit(&j);
	atomic_store(&fake_now, clock_now() + 5);
	struct fake f = {.outcome = QUEUE_OK, .sleep_us = 50000};
	struct queue_sched_config cfg = {.workers = 8, .max_per_destination = 2};
	struct queue_sched *s = sched_make(st, &f, &cfg);
	CHECK_INT(queue_sched_start(s, &err), 0);
	queue_sched_wake(s);
	for (int i = 0; i < 100 && count_state(st, "delivered") < 9; i++)
		usleep(50000);
	CHECK_INT(count_state(st, "delivered"), 9);
	CHECK(atomic_load(&f.max_running) <= 3); /* 2 of busy.test + 1 of stuck.test */
	CHECK(atomic_load(&f.max_running) >= 2);
	/* results are committed just before the worker gives its slot back */
	for (int i = 0; i < 100 && queue_sched_inflight(s, "busy.test") > 0; i++)
		usleep(10000);
	CHECK_INT(queue_sched_inflight(s, "busy.test"), 0);
	/* a row queued later is picked up by the polling thread */
	enqueue(st, "y@busy.test");
	for (int i = 0; i < 60 && count_state(st, "delivered") < 10; i++)
		usleep(50000);
	CHECK_INT(count_state(st, "delivered"), 10);
	queue_sched_free(&s);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

/* ---- connection reuse, interrupted attempts, DKIM retirement ---- */

static int chain_calls, chain_followers;

static void
ok_all(struct queue_batch *b, bool interrupted)
{
	struct queue_result res[8];
	for (size_t i = 0; i < b->job.n_rcpts && i < 8; i++)
		res[i] = (struct queue_result){interrupted ? QUEUE_TEMPFAIL : QUEUE_OK,
		                               interrupted ? "shutdown" : "250 ok", NULL};
	struct queue_report rep = {.results = res, .interrupted = interrupted};
	struct err err = {0};
	CHECK_INT(queue_batch_done(b, &rep, &err), 0);
}

/* Delivers b, then every further due batch of its domain as if on the same connection. */
static void
chain_deliver(void *ctx, struct queue_batch *b)
{
	(void)ctx;
	chain_calls++;
	ok_all(b, false);
	struct queue_batch *nb;
	while ((nb = queue_batch_next(b)) != NULL) {
		CHECK_STR(nb->job.domain, b->job.domain);
		CHECK(nb->job.msg.id != b->job.msg.id);
		chain_followers++;
		ok_all(nb, false);
		queue_batch_release(nb);
	}
}

static bool
same_always(void *ctx, const char *a, const char *b)
{
	(void)ctx;
	(void)a;
	(void)b;
	return true;
}

static void
test_batch_next(void)
{
	struct store *st = open_fresh();
	int64_t ids[4];
	for (int i = 0; i < 3; i++)
		ids[i] = enqueue(st, "x@chain.test");
	ids[3] = enqueue(st, "y@other.test");
	atomic_store(&fake_now, clock_now() + 5);
	struct queue_sched_config cfg = {.deliver = chain_deliver, .clock = fake_clock};
	struct queue_sched *s = NULL;
	struct err err = {0};
	CHECK_INT(queue_sched_new(st, &cfg, &s, &err), 0);
	size_t ran = 0;
	CHECK_INT(queue_sched_run_once(s, &ran, &err), 0);
	CHECK_INT(ran, 2); /* one chain.test batch (+2 followers), one other.test */
	CHECK_INT(chain_calls, 2);
	CHECK_INT(chain_followers, 2);
	for (int i = 0; i < 4; i++) {
		struct store_queue_item it;
		row_get(st, ids[i], &it);
		CHECK_STR(it.status, "delivered");
		CHECK_INT(it.attempts, 1);
		item_clear(&it);
	}
	/* a follower released without a result is due again at once, no attempt counted */
	int64_t a = enqueue(st, "x@chain.test");
	int64_t b2 = enqueue(st, "z@chain.test");
	struct queue_batch first = {.sched = s};
	CHECK_INT(store_queue_claim(st, a, "chain.test", atomic_load(&fake_now), &first.job, &err),
	          1);
	struct queue_batch *nb = queue_batch_next(&first);
	CHECK(nb != NULL);
	if (nb != NULL) {
		CHECK_INT(nb->job.msg.id, b2);
		queue_batch_release(nb);
	}
	struct store_queue_item it;
	row_get(st, b2, &it);
	CHECK_STR(it.status, "deferred");
	CHECK_INT(it.attempts, 0);
	CHECK(it.next_attempt <= atomic_load(&fake_now));
	item_clear(&it);
	/* an interrupted attempt: due again at once, no attempt, no backoff */
	ok_all(&first, true);
	row_get(st, a, &it);
	CHECK_STR(it.status, "deferred");
	CHECK_INT(it.attempts, 0);
	CHECK(it.next_attempt <= atomic_load(&fake_now));
	item_clear(&it);
	store_queue_job_deinit(&first.job);
	/* another domain follows only when the route predicate says so */
	int64_t r1 = enqueue(st, "x@r1.test");
	int64_t r2 = enqueue(st, "x@r2.test");
	struct queue_batch b1 = {.sched = s};
	CHECK_INT(store_queue_claim(st, r1, "r1.test", atomic_load(&fake_now), &b1.job, &err), 1);
	CHECK(queue_batch_next(&b1) == NULL);
	nb = queue_batch_next_route(&b1, same_always, NULL);
	CHECK(nb != NULL);
	if (nb != NULL) {
		CHECK_INT(nb->job.msg.id, r2);
		CHECK_STR(nb->job.domain, "r2.test");
		ok_all(nb, false);
		queue_batch_release(nb);
	}
	ok_all(&b1, false);
	store_queue_job_deinit(&b1.job);
	row_get(st, r2, &it);
	CHECK_STR(it.status, "delivered");
	item_clear(&it);
	queue_sched_free(&s);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static const char *
dkim_state(struct store *st, const char *selector)
{
	static char state[32];
	struct store_dkim_key *v = NULL;
	size_t n = 0;
	struct err err = {0};
	state[0] = '\0';
	if (store_dkim_list(st, "dk.test", &v, &n, &err) < 0)
		return state;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].selector, selector) == 0)
			(void)snprintf(state, sizeof state, "%s", v[i].state);
	store_dkim_list_free(&v, n);
	return state;
}

static void
test_dkim_retire(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	int64_t t0 = clock_now();
	CHECK_INT(store_domain_add(st, "dk.test", &err), 0);
	struct store_dkim_new k1 = {"old", "ed25519", 256, "PEM1", "cHViMQ=="};
	struct store_dkim_new k2 = {"new", "ed25519", 256, "PEM2", "cHViMg=="};
	CHECK_INT(store_dkim_add(st, "dk.test", &k1, t0, &err), 0);
	CHECK_INT(store_dkim_rotate(st, "dk.test", &k2, 1, t0, 1, &err), 0);
	CHECK_STR(dkim_state(st, "old"), "published");
	struct fake f = {.outcome = QUEUE_OK};
	struct queue_sched_config cfg = {0};
	struct queue_sched *s = sched_make(st, &f, &cfg);
	atomic_store(&fake_now, t0 + 10);
	CHECK_INT(queue_sched_run_once(s, NULL, &err), 0);
	CHECK_STR(dkim_state(st, "old"), "published");
	atomic_store(&fake_now, t0 + 86400 + 30);
	CHECK_INT(queue_sched_run_once(s, NULL, &err), 0);
	CHECK_STR(dkim_state(st, "old"), "retired");
	CHECK_STR(dkim_state(st, "new"), "active");
	queue_sched_free(&s);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

/* A reused connection claims up to SCHED_PREFETCH messages of its domain in one commit and
 * hands them along the chain; what the chain does not reach goes back, due at once. */
static void
test_prefetch(void)
{
	struct store *st = open_fresh();
	int64_t ids[5];
	for (int i = 0; i < 5; i++)
		ids[i] = enqueue(st, "x@pf.test");
	atomic_store(&fake_now, clock_now() + 5);
	struct queue_sched_config cfg = {.deliver = chain_deliver, .clock = fake_clock};
	struct queue_sched *s = NULL;
	struct err err = {0};
	CHECK_INT(queue_sched_new(st, &cfg, &s, &err), 0);
	struct queue_batch first = {.sched = s};
	CHECK_INT(
	    store_queue_claim(st, ids[0], "pf.test", atomic_load(&fake_now), &first.job, &err), 1);
	uint64_t commits = store_commit_count(st);
	struct queue_batch *nb1 = queue_batch_next(&first);
	CHECK(nb1 != NULL && nb1->n_ahead == 3);
	CHECK_INT(store_commit_count(st), commits + 1); /* four claims, one commit */
	ok_all(&first, false);
	store_queue_job_deinit(&first.job);
	if (nb1 == NULL)
		goto out;
	CHECK_INT(nb1->job.msg.id, ids[1]);
	ok_all(nb1, false);
	commits = store_commit_count(st);
	struct queue_batch *nb2 = queue_batch_next(nb1);
	CHECK(nb2 != NULL && nb2->n_ahead == 2 && nb1->n_ahead == 0);
	CHECK_INT(store_commit_count(st), commits); /* taken from the claimed ones */
	queue_batch_release(nb1);
	if (nb2 != NULL) {
		CHECK_INT(nb2->job.msg.id, ids[2]);
		queue_batch_release(nb2); /* never sent: it and the two ahead go back */
	}
	for (int i = 0; i < 5; i++) {
		struct store_queue_item it;
		row_get(st, ids[i], &it);
		CHECK_STR(it.status, i < 2 ? "delivered" : "deferred");
		CHECK_INT(it.attempts, i < 2 ? 1 : 0);
		if (i >= 2)
			CHECK(it.next_attempt <= atomic_load(&fake_now));
		item_clear(&it);
	}
out:
	queue_sched_free(&s);
	store_close(&st);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	RUN(test_schedule);
	RUN(test_retry_and_expiry);
	RUN(test_backoff);
	RUN(test_concurrency);
	RUN(test_batch_next);
	RUN(test_prefetch);
	RUN(test_dkim_retire);
	return test_done("queue-sched");
}
