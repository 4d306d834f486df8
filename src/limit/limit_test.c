/* Unit tests for src/limit: the GCRA table (every window, refund, peek, eviction, expiry,
 * threads), the daily counters and the authentication failure table, on controllable clocks. */
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>

#include "limit/limit.h"
#include "test.h"

static int64_t fake_ms;
static int64_t fake_s;

static int64_t
clock_fake_ms(void)
{
	return fake_ms;
}

static int64_t
clock_fake_s(void)
{
	return fake_s;
}

static const struct limit_rule per_minute_10 = {"messages_per_minute", 10, 60000};
static const struct limit_rule per_hour_60 = {"messages_per_hour", 60, 3600000};
static const struct limit_rule per_second_5 = {"api_per_second", 5, 1000};

static void
test_per_minute(void)
{
	fake_ms = 1000000;
	struct limit_table *t = limit_table_new(100, clock_fake_ms);
	int64_t retry = 0;
	for (int i = 0; i < 10; i++)
		CHECK(limit_take(t, "acct:a@x.example", &per_minute_10, 1, true, &retry));
	CHECK(!limit_take(t, "acct:a@x.example", &per_minute_10, 1, true, &retry));
	CHECK_INT(retry, 6000);
	fake_ms += 5999;
	CHECK(!limit_take(t, "acct:a@x.example", &per_minute_10, 1, true, &retry));
	CHECK_INT(retry, 1);
	fake_ms += 1;
	CHECK(limit_take(t, "acct:a@x.example", &per_minute_10, 1, true, &retry));
	CHECK(!limit_take(t, "acct:a@x.example", &per_minute_10, 1, true, &retry));
	CHECK_INT(retry, 6000);
	/* a whole idle minute refills the burst, never more */
	fake_ms += 600000;
	for (int i = 0; i < 10; i++)
		CHECK(limit_take(t, "acct:a@x.example", &per_minute_10, 1, true, NULL));
	CHECK(!limit_take(t, "acct:a@x.example", &per_minute_10, 1, true, NULL));
	/* another key is independent */
	CHECK(limit_take(t, "acct:b@x.example", &per_minute_10, 1, true, NULL));
	limit_table_free(&t);
	CHECK(t == NULL);
	limit_table_free(&t);
}

static void
test_per_hour_and_second(void)
{
	fake_ms = 0;
	struct limit_table *t = limit_table_new(100, clock_fake_ms);
	int64_t retry;
	CHECK(limit_take(t, "k", &per_hour_60, 60, true, &retry)); /* the whole burst at once */
	CHECK(!limit_take(t, "k", &per_hour_60, 1, true, &retry));
	CHECK_INT(retry, 60000);
	CHECK(!limit_take(t, "k", &per_hour_60, 2, true, &retry));
	CHECK_INT(retry, 120000);
	fake_ms = 60000;
	CHECK(limit_take(t, "k", &per_hour_60, 1, true, &retry));
	CHECK(!limit_take(t, "k", &per_hour_60, 1, false, &retry));

	/* 5/second: 5 at once, then one every 200 ms; sustained exactly 5 per second */
	fake_ms = 10000;
	int allowed = 0;
	for (int ms = 0; ms < 10000; ms++) {
		fake_ms = 10000 + ms;
		while (limit_take(t, "ip:127.0.0.1", &per_second_5, 1, true, NULL))
			allowed++;
	}
	CHECK_INT(allowed, 5 + 49); /* the burst, then one at 200, 400, ..., 9800 ms */
	limit_table_free(&t);
}

static void
test_odd_counts(void)
{
	/* 7 per second: exactly 7 in a burst, 7 more over the next second, no rounding drift */
	struct limit_rule r = {"odd", 7, 1000};
	fake_ms = 0;
	struct limit_table *t = limit_table_new(10, clock_fake_ms);
	int n = 0;
	while (limit_take(t, "k", &r, 1, true, NULL))
		n++;
	CHECK_INT(n, 7);
	for (int ms = 1; ms <= 1000; ms++) {
		fake_ms = ms;
		while (limit_take(t, "k", &r, 1, true, NULL))
			n++;
	}
	CHECK_INT(n, 14);
	limit_table_free(&t);
}

static void
test_edges(void)
{
	fake_ms = 0;
	struct limit_table *t = limit_table_new(10, clock_fake_ms);
	int64_t retry = 0;
	CHECK(!limit_take(t, "k", &per_minute_10, 11, true, &retry));
	CHECK_INT(retry, -1);
	CHECK(!limit_take(t, "k", &per_minute_10, 11, false, &retry));
	CHECK_INT(retry, -1);
	struct limit_rule unlimited = {"none", 0, 60000};
	for (int i = 0; i < 1000; i++)
		CHECK(limit_take(t, "k", &unlimited, 1000000, true, &retry));
	CHECK_INT(limit_table_size(t), 0);
	CHECK(limit_take(t, "k", NULL, 1, true, NULL));
	/* a check without take creates nothing and consumes nothing */
	CHECK(limit_take(t, "k", &per_minute_10, 10, false, &retry));
	CHECK_INT(limit_table_size(t), 0);
	CHECK(limit_take(t, "k", &per_minute_10, 10, true, &retry));
	CHECK_INT(limit_table_size(t), 1);
	/* n = 0 is always allowed */
	CHECK(limit_take(t, "k", &per_minute_10, 0, true, &retry));
	/* overlong and NULL keys do not crash */
	char big[2000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CHECK(limit_take(t, big, &per_minute_10, 1, true, NULL));
	CHECK(limit_take(t, NULL, &per_minute_10, 1, true, NULL));
	limit_table_free(&t);
}

static void
test_refund_peek(void)
{
	fake_ms = 50000;
	struct limit_table *t = limit_table_new(10, clock_fake_ms);
	uint64_t avail = 99;
	int64_t full_in = 99, retry;
	limit_peek(t, "k", &per_minute_10, &avail, &full_in);
	CHECK_INT(avail, 10);
	CHECK_INT(full_in, 0);
	CHECK(limit_take(t, "k", &per_minute_10, 4, true, NULL));
	limit_peek(t, "k", &per_minute_10, &avail, &full_in);
	CHECK_INT(avail, 6);
	CHECK_INT(full_in, 24000);
	fake_ms += 6000;
	limit_peek(t, "k", &per_minute_10, &avail, &full_in);
	CHECK_INT(avail, 7);
	CHECK_INT(full_in, 18000);
	CHECK(limit_take(t, "k", &per_minute_10, 7, true, NULL));
	CHECK(!limit_take(t, "k", &per_minute_10, 1, true, &retry));
	limit_refund(t, "k", &per_minute_10, 2);
	limit_peek(t, "k", &per_minute_10, &avail, NULL);
	CHECK_INT(avail, 2);
	CHECK(limit_take(t, "k", &per_minute_10, 2, true, NULL));
	CHECK(!limit_take(t, "k", &per_minute_10, 1, true, NULL));
	/* refunding more than was taken only fills the bucket */
	limit_refund(t, "k", &per_minute_10, 1000);
	limit_peek(t, "k", &per_minute_10, &avail, &full_in);
	CHECK_INT(avail, 10);
	CHECK_INT(full_in, 0);
	limit_refund(t, "absent", &per_minute_10, 1);
	limit_peek(t, "k", NULL, &avail, &full_in);
	CHECK_INT(avail, 0);
	limit_table_free(&t);
}

static void
test_rules_independent(void)
{
	fake_ms = 0;
	struct limit_table *t = limit_table_new(100, clock_fake_ms);
	CHECK(limit_take(t, "acct:a", &per_minute_10, 10, true, NULL));
	CHECK(!limit_take(t, "acct:a", &per_minute_10, 1, true, NULL));
	CHECK(limit_take(t, "acct:a", &per_hour_60, 60, true, NULL));
	CHECK(!limit_take(t, "acct:a", &per_hour_60, 1, true, NULL));
	fake_ms = 6000;
	CHECK(limit_take(t, "acct:a", &per_minute_10, 1, true, NULL));
	CHECK(!limit_take(t, "acct:a", &per_hour_60, 1, true, NULL));
	CHECK_INT(limit_table_size(t), 2);
	/* a rule whose count changes (an override) keeps the backlog in time, not units */
	fake_ms = 12000;
	struct limit_rule bigger = {"messages_per_minute", 20, 60000};
	uint64_t avail;
	limit_peek(t, "acct:a", &bigger, &avail, NULL);
	CHECK_INT(avail, 2); /* 54 s of backlog in a 60 s period: 6 s free = 2 units of 3 s */
	limit_table_free(&t);
}

static void
test_eviction_expiry(void)
{
	fake_ms = 0;
	struct limit_table *t = limit_table_new(16, clock_fake_ms);
	char key[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "ip:10.0.%d.%d", i / 256, i % 256);
		CHECK(limit_take(t, key, &per_minute_10, 1, true, NULL));
		CHECK(limit_table_size(t) <= 16);
	}
	/* an active key survives a flood of new keys when the flood's keys go idle */
	struct limit_table *t2 = limit_table_new(64, clock_fake_ms);
	fake_ms = 0;
	CHECK(limit_take(t2, "victim", &per_hour_60, 60, true, NULL));
	for (int i = 0; i < 5000; i++) {
		fake_ms = i * 10;
		snprintf(key, sizeof key, "flood%d", i);
		limit_take(t2, key, &per_second_5, 1, true, NULL); /* idle again after 200 ms */
		limit_take(t2, "victim", &per_hour_60, 1, false, NULL); /* keep it recently used */
	}
	CHECK(limit_table_size(t2) <= 64);
	CHECK(!limit_take(t2, "victim", &per_hour_60, 1, true, NULL));
	limit_table_free(&t2);

	/* keys in use survive a flood of busy (not idle) new keys: second chance */
	struct limit_table *t4 = limit_table_new(64, clock_fake_ms);
	fake_ms = 0;
	for (int h = 0; h < 10; h++) {
		snprintf(key, sizeof key, "hot%d", h);
		CHECK(limit_take(t4, key, &per_hour_60, 60, true, NULL));
	}
	for (int i = 0; i < 3000; i++) {
		for (int h = 0; h < 10; h++) {
			snprintf(key, sizeof key, "hot%d", h);
			CHECK(!limit_take(t4, key, &per_hour_60, 1, false, NULL));
		}
		snprintf(key, sizeof key, "busy%d", i);
		CHECK(limit_take(t4, key, &per_hour_60, 1, true, NULL));
		CHECK(limit_table_size(t4) <= 64);
	}
	limit_table_free(&t4);

	/* expiry: only buckets that are full again go */
	struct limit_table *t3 = limit_table_new(1000, clock_fake_ms);
	fake_ms = 0;
	CHECK(limit_take(t3, "a", &per_second_5, 1, true, NULL));
	CHECK(limit_take(t3, "b", &per_minute_10, 1, true, NULL));
	CHECK(limit_take(t3, "c", &per_hour_60, 1, true, NULL));
	CHECK_INT(limit_table_expire(t3), 0);
	fake_ms = 200;
	CHECK_INT(limit_table_expire(t3), 1);
	CHECK_INT(limit_table_size(t3), 2);
	fake_ms = 60000;
	CHECK_INT(limit_table_expire(t3), 2);
	CHECK_INT(limit_table_size(t3), 0);
	limit_table_free(&t3);
	limit_table_free(&t);
}

#define THREADS    4
#define PER_THREAD 5000
#define BUDGET     1000

struct hammer {
	struct limit_table *t;
	int allowed;
};

static void *
hammer_run(void *arg)
{
	struct hammer *h = arg;
	static const struct limit_rule r = {"budget", BUDGET, 3600000};
	char key[32];
	for (int i = 0; i < PER_THREAD; i++) {
		if (limit_take(h->t, "shared", &r, 1, true, NULL))
			h->allowed++;
		snprintf(key, sizeof key, "k%d", i % 97);
		limit_take(h->t, key, &r, 1, true, NULL);
	}
	return NULL;
}

static void
test_threads(void)
{
	fake_ms = 777;
	struct limit_table *t = limit_table_new(1000, clock_fake_ms);
	pthread_t th[THREADS];
	struct hammer h[THREADS];
	for (int i = 0; i < THREADS; i++) {
		h[i] = (struct hammer){t, 0};
		pthread_create(&th[i], NULL, hammer_run, &h[i]);
	}
	int total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		total += h[i].allowed;
	}
	CHECK_INT(total, BUDGET);
	CHECK_INT(limit_table_size(t), 98);
	limit_table_free(&t);
}

static void
test_daily(void)
{
	fake_s = 1700000000; /* 2023-11-14 22:13:20 UTC */
	struct limit_daily *d = limit_daily_new(100, clock_fake_s);
	CHECK_INT(limit_daily_today(d), 1700000000 / 86400);
	CHECK(!limit_daily_loaded(d, "acct:a"));
	CHECK_INT(limit_daily_count(d, "acct:a"), 0);
	limit_daily_load(d, "acct:a", 95);
	CHECK(limit_daily_loaded(d, "acct:a"));
	limit_daily_load(d, "acct:a", 5); /* already loaded: the in-memory count wins */
	CHECK_INT(limit_daily_count(d, "acct:a"), 95);
	int64_t reset = 0;
	CHECK(limit_daily_reserve(d, "acct:a", 3, 100, &reset));
	CHECK(limit_daily_reserve(d, "acct:a", 2, 100, &reset));
	CHECK(!limit_daily_reserve(d, "acct:a", 1, 100, &reset));
	CHECK_INT(reset, 86400 - 1700000000 % 86400);
	CHECK_INT(limit_daily_count(d, "acct:a"), 100);
	limit_daily_release(d, "acct:a", 4);
	CHECK_INT(limit_daily_count(d, "acct:a"), 96);
	CHECK(!limit_daily_reserve(d, "acct:a", 5, 100, &reset));
	CHECK(limit_daily_reserve(d, "acct:a", 4, 100, &reset));
	limit_daily_release(d, "acct:a", 1000);
	CHECK_INT(limit_daily_count(d, "acct:a"), 0);
	CHECK(limit_daily_reserve(d, "acct:a", 100, 100, NULL));
	/* max 0 = unlimited, still counted */
	CHECK(limit_daily_reserve(d, "acct:b", 1000000, 0, NULL));
	CHECK_INT(limit_daily_count(d, "acct:b"), 1000000);
	CHECK(!limit_daily_reserve(d, "acct:b", UINT64_MAX, 0, NULL)); /* overflow */
	/* a new UTC day resets */
	fake_s = (1700000000 / 86400 + 1) * 86400 - 1;
	CHECK(!limit_daily_reserve(d, "acct:a", 1, 100, &reset));
	CHECK_INT(reset, 1);
	fake_s += 1;
	CHECK(!limit_daily_loaded(d, "acct:a"));
	CHECK_INT(limit_daily_count(d, "acct:a"), 0);
	limit_daily_load(d, "acct:a", 7);
	CHECK_INT(limit_daily_count(d, "acct:a"), 7);
	CHECK(limit_daily_reserve(d, "acct:a", 93, 100, NULL));
	CHECK(!limit_daily_reserve(d, "acct:a", 1, 100, &reset));
	CHECK_INT(reset, 86400);
	/* bounded: yesterday's entries go first, never more than max_keys */
	char key[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CHECK(limit_daily_reserve(d, key, 1, 10, NULL));
	}
	limit_daily_free(&d);
	limit_daily_free(&d);
}

static const struct limit_auth_policy policy = {
    .delay_after = 3,
    .step_ms = 1000,
    .max_delay_ms = 5000,
    .lockout_after = 10,
    .lockout_s = 900,
    .window_s = 600,
};

static void
test_auth_delays_lockout(void)
{
	fake_ms = 1000000;
	struct limit_auth *a = limit_auth_new(&policy, 100, clock_fake_ms);
	int64_t left = -5;
	bool first = true;
	CHECK_INT(limit_auth_check(a, "127.0.0.1", "u@x", &left, &first), 0);
	CHECK(!first);
	CHECK_INT(left, 0);
	static const int64_t want[] = {0, 0, 1000, 2000, 3000, 4000, 5000, 5000, 5000};
	for (int i = 0; i < 9; i++) {
		limit_auth_failed(a, "127.0.0.1", "u@x");
		CHECK_INT(limit_auth_check(a, "127.0.0.1", "u@x", &left, &first), want[i]);
	}
	/* another IP for the same account: delayed by the account's count, not locked */
	CHECK_INT(limit_auth_check(a, "127.0.0.2", "u@x", &left, NULL), 5000);
	CHECK_INT(limit_auth_check(a, "127.0.0.2", "v@x", &left, NULL), 0);
	limit_auth_failed(a, "127.0.0.1", "u@x"); /* the 10th: lockout */
	CHECK_INT(limit_auth_check(a, "127.0.0.1", "u@x", &left, &first), -1);
	CHECK(first);
	CHECK_INT(left, 900);
	CHECK_INT(limit_auth_check(a, "127.0.0.1", "other@x", &left, &first), -1);
	CHECK(!first);
	fake_ms += 1500;
	CHECK_INT(limit_auth_check(a, "127.0.0.1", NULL, &left, &first), -1);
	CHECK(!first);
	CHECK_INT(left, 899);
	CHECK(limit_auth_check(a, "127.0.0.2", "u@x", &left, &first) > 0);
	/* a success from the other IP clears the account, not the locked IP */
	limit_auth_succeeded(a, "127.0.0.2", "u@x");
	CHECK_INT(limit_auth_check(a, "127.0.0.2", "u@x", &left, &first), 0);
	CHECK_INT(limit_auth_check(a, "127.0.0.1", "u@x", &left, &first), -1);
	/* the lockout ends with a clean slate; a new lockout is logged once again */
	fake_ms += 900000;
	CHECK_INT(limit_auth_check(a, "127.0.0.1", "u@x", &left, &first), 0);
	CHECK(!first);
	for (int i = 0; i < 10; i++)
		limit_auth_failed(a, "127.0.0.1", NULL);
	CHECK_INT(limit_auth_check(a, "127.0.0.1", "u@x", &left, &first), -1);
	CHECK(first);
	CHECK_INT(limit_auth_check(a, "127.0.0.1", "u@x", &left, &first), -1);
	CHECK(!first);
	limit_auth_free(&a);
	limit_auth_free(&a);
}

static void
test_auth_window(void)
{
	fake_ms = 0;
	struct limit_auth *a = limit_auth_new(&policy, 100, clock_fake_ms);
	for (int i = 0; i < 5; i++)
		limit_auth_failed(a, "::1", "u@x");
	CHECK_INT(limit_auth_check(a, "::1", "u@x", NULL, NULL), 3000);
	/* failures spread over more than the window never add up to a lockout */
	fake_ms = 600000;
	CHECK_INT(limit_auth_check(a, "::1", "u@x", NULL, NULL), 0);
	for (int i = 0; i < 9; i++)
		limit_auth_failed(a, "::1", "u@x");
	fake_ms = 1200000;
	for (int i = 0; i < 9; i++)
		limit_auth_failed(a, "::1", "u@x");
	CHECK_INT(limit_auth_check(a, "::1", "u@x", NULL, NULL), 5000);
	/* the success clears the account's count only */
	limit_auth_succeeded(a, "::1", "u@x");
	CHECK_INT(limit_auth_check(a, "::1", "v@x", NULL, NULL), 5000);
	CHECK_INT(limit_auth_check(a, "127.0.0.2", "u@x", NULL, NULL), 0);
	/* bounded memory under a flood of addresses */
	char ip[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(ip, sizeof ip, "10.1.%d.%d", i / 256, i % 256);
		limit_auth_failed(a, ip, "");
	}
	limit_auth_free(&a);
}

int
main(void)
{
	RUN(test_per_minute);
	RUN(test_per_hour_and_second);
	RUN(test_odd_counts);
	RUN(test_edges);
	RUN(test_refund_peek);
	RUN(test_rules_independent);
	RUN(test_eviction_expiry);
	RUN(test_threads);
	RUN(test_daily);
	RUN(test_auth_delays_lockout);
	RUN(test_auth_window);
	return test_done("limit");
}
