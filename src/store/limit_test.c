/* Unit tests of store/limit.c and the rate limit part of store_deliver: usage counters added by
 * deliveries (two add up, a failed delivery adds nothing, another day is separate, the counts
 * survive a reopen, pruning), bad counters, and the overrides (set, replace, remove, listed by
 * rule, per account and per domain, unknown owners, bad rule names, removal with their account
 * or domain). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "test.h"
#include "test_tmp.h"
#include "util/log.h"

static char tmpdir[64];
static char dbpath[128];

static struct store *
open_db(void)
{
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		exit(1);
	}
	return st;
}

static struct store *
open_fresh(void)
{
	test_tmpdir(tmpdir, sizeof tmpdir, "store-limit");
	(void)snprintf(dbpath, sizeof dbpath, "%s/lightr.db", tmpdir);
	return open_db();
}

/* Runs sql on a separate raw connection (the store is closed meanwhile). */
static int
sql_exec(const char *sql)
{
	sqlite3 *db;
	int rc = sqlite3_open(dbpath, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* bob local, carol remote, with the given counters. */
static int
deliver(struct store *st, const char *account, const struct store_limit_inc *incs, size_t n,
        struct err *err)
{
	static const char body[] = "Subject: x\r\n\r\nhi\r\n";
	struct store_local_rcpt l[] = {{.account = account}};
	struct store_remote_rcpt r[] = {{.address = "carol@remote.example"}};
	struct store_delivery d = {.body = (const unsigned char *)body,
	                           .body_len = sizeof body - 1,
	                           .internal_date = 1,
	                           .local = l,
	                           .n_local = 1,
	                           .mail_from = "bob@example.com",
	                           .auth_user = "bob@example.com",
	                           .remote = r,
	                           .n_remote = 1,
	                           .limit_incs = incs,
	                           .n_limit_incs = n};
	return store_deliver(st, &d, NULL, err);
}

static uint64_t
usage(struct store *st, const char *key, int64_t day)
{
	struct err err = {0};
	uint64_t n = 12345;
	if (store_limit_usage(st, key, day, &n, &err) < 0) {
		fprintf(stderr, "  store_limit_usage %s: %s\n", key, err.msg);
		return 99999;
	}
	return n;
}

static void
test_usage(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "h", 0, &err), 0);
	int64_t today = (int64_t)time(NULL) / 86400;

	const char *km = "acct:bob@example.com:messages", *kr = "acct:bob@example.com:recipients";
	const char *kd = "dom:example.com:recipients";
	CHECK_INT(usage(st, km, today), 0);
	struct store_limit_inc incs[] = {{km, 1}, {kr, 2}, {kd, 2}};
	CHECK_INT(deliver(st, "bob@example.com", incs, 3, &err), 0);
	CHECK_INT(usage(st, km, today), 1);
	CHECK_INT(usage(st, kr, today), 2);
	CHECK_INT(usage(st, kd, today), 2);
	struct store_limit_inc incs2[] = {{km, 1}, {kr, 5}, {"other", 0}};
	CHECK_INT(deliver(st, "bob@example.com", incs2, 3, &err), 0);
	CHECK_INT(usage(st, km, today), 2);
	CHECK_INT(usage(st, kr, today), 7);
	CHECK_INT(usage(st, kd, today), 2);
	CHECK_INT(usage(st, "other", today), 0); /* n 0: no row */
	CHECK_INT(usage(st, km, today + 1), 0);
	CHECK_INT(usage(st, km, today - 1), 0);
	/* without counters nothing changes */
	CHECK_INT(deliver(st, "bob@example.com", NULL, 0, &err), 0);
	CHECK_INT(usage(st, km, today), 2);
	/* a failed delivery adds nothing (same transaction) */
	CHECK_INT(deliver(st, "nobody@example.com", incs, 3, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(usage(st, km, today), 2);
	/* bad counters */
	char longkey[600];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	struct store_limit_inc bad[][1] = {
	    {{NULL, 1}}, {{"", 1}}, {{longkey, 1}}, {{"a\nb", 1}}, {{km, (uint64_t)INT64_MAX + 1}}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(deliver(st, "bob@example.com", bad[i], 1, &err), -1);
		CHECK_INT(err.code, STORE_EINVAL);
	}
	CHECK_INT(deliver(st, "bob@example.com", NULL, 1, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	struct store_limit_inc many[65];
	for (size_t i = 0; i < 65; i++)
		many[i] = (struct store_limit_inc){km, 1};
	CHECK_INT(deliver(st, "bob@example.com", many, 65, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(deliver(st, "bob@example.com", many, 64, &err), 0);
	CHECK_INT(usage(st, km, today), 66);
	uint64_t n;
	CHECK_INT(store_limit_usage(st, longkey, today, &n, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_limit_usage(st, NULL, today, &n, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	/* saturates instead of overflowing */
	struct store_limit_inc huge[] = {{"huge", (uint64_t)INT64_MAX}, {"huge", 5}};
	CHECK_INT(deliver(st, "bob@example.com", huge, 2, &err), 0);
	CHECK(usage(st, "huge", today) == (uint64_t)INT64_MAX);

	/* another day is separate: move today's rows back a day, then deliver again */
	store_close(&st);
	CHECK_INT(sql_exec("UPDATE limit_usage SET day = day - 1"), SQLITE_OK);
	st = open_db();
	CHECK_INT(usage(st, km, today), 0);
	CHECK_INT(usage(st, km, today - 1), 66); /* survived the reopen */
	CHECK_INT(deliver(st, "bob@example.com", incs, 3, &err), 0);
	CHECK_INT(usage(st, km, today), 1);
	CHECK_INT(usage(st, kr, today), 2);
	CHECK_INT(usage(st, km, today - 1), 66);
	CHECK_INT(usage(st, kr, today - 1), 7);

	/* prune: rows older than the given day go */
	CHECK_INT(store_limit_usage_prune(st, today - 1, &err), 0);
	CHECK_INT(usage(st, km, today - 1), 66);
	CHECK_INT(store_limit_usage_prune(st, today, &err), 0);
	CHECK_INT(usage(st, km, today - 1), 0);
	CHECK_INT(usage(st, kr, today - 1), 0);
	CHECK_INT(usage(st, km, today), 1);
	CHECK_INT(usage(st, kd, today), 2);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

/* The overrides of name as "rule=value,..." (or "ENOTFOUND" / "ERR"). */
static void
overrides_str(struct store *st, enum store_limit_scope scope, const char *name, char *out, size_t n)
{
	struct err err = {0};
	struct store_limit_override *v;
	size_t nv;
	if (store_limit_overrides(st, scope, name, &v, &nv, &err) < 0) {
		(void)snprintf(out, n, "%s", err.code == STORE_ENOTFOUND ? "ENOTFOUND" : "ERR");
		return;
	}
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < nv; i++) {
		int w = snprintf(out + len, n - len, "%s%s=%llu", i ? "," : "", v[i].rule,
		                 (unsigned long long)v[i].value);
		if (w > 0 && (size_t)w < n - len)
			len += (size_t)w;
	}
	store_limit_overrides_free(&v, nv);
	CHECK(v == NULL);
}

#define CHECK_OVR(scope, name, want)                                                               \
	do {                                                                                       \
		char got_[512];                                                                    \
		overrides_str(st, scope, name, got_, sizeof got_);                                 \
		CHECK_STR(got_, want);                                                             \
	} while (0)

static void
test_overrides(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_domain_add(st, "other.example", &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "h", 0, &err), 0);
	CHECK_INT(store_account_add(st, "amy@example.com", "h", 0, &err), 0);
	CHECK_INT(store_account_add(st, "zed@other.example", "h", 0, &err), 0);
	const enum store_limit_scope A = STORE_LIMIT_ACCOUNT, D = STORE_LIMIT_DOMAIN;

	CHECK_OVR(A, "bob@example.com", "");
	CHECK_OVR(D, "example.com", "");
	CHECK_INT(store_limit_override_set(st, A, "bob@Example.COM", "messages_per_minute", true,
	                                   10, &err),
	          0);
	CHECK_INT(
	    store_limit_override_set(st, A, "bob@example.com", "messages_per_day", true, 0, &err),
	    0);
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", "recipients_per_message", true,
	                                   50, &err),
	          0);
	CHECK_INT(
	    store_limit_override_set(st, A, "amy@example.com", "messages_per_day", true, 7, &err),
	    0);
	CHECK_INT(
	    store_limit_override_set(st, D, "Example.com", "messages_per_hour", true, 1000, &err),
	    0);
	CHECK_INT(
	    store_limit_override_set(st, D, "other.example", "messages_per_hour", true, 5, &err),
	    0);
	CHECK_OVR(A, "bob@example.com",
	          "messages_per_day=0,messages_per_minute=10,recipients_per_message=50");
	CHECK_OVR(A, "BOB@example.com",
	          "messages_per_day=0,messages_per_minute=10,recipients_per_message=50");
	CHECK_OVR(A, "amy@example.com", "messages_per_day=7");
	CHECK_OVR(D, "example.com", "messages_per_hour=1000");
	CHECK_OVR(D, "OTHER.example", "messages_per_hour=5");
	CHECK_OVR(A, "zed@other.example", "");
	/* replace */
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", "messages_per_minute", true,
	                                   20, &err),
	          0);
	CHECK_OVR(A, "bob@example.com",
	          "messages_per_day=0,messages_per_minute=20,recipients_per_message=50");
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", "big", true,
	                                   (uint64_t)INT64_MAX, &err),
	          0);
	CHECK_OVR(A, "bob@example.com",
	          "big=9223372036854775807,messages_per_day=0,messages_per_minute=20,"
	          "recipients_per_message=50");
	/* remove (removing what is not there is fine) */
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", "big", false, 0, &err), 0);
	CHECK_INT(
	    store_limit_override_set(st, A, "bob@example.com", "messages_per_day", false, 0, &err),
	    0);
	CHECK_INT(
	    store_limit_override_set(st, A, "bob@example.com", "messages_per_day", false, 0, &err),
	    0);
	CHECK_OVR(A, "bob@example.com", "messages_per_minute=20,recipients_per_message=50");
	CHECK_INT(
	    store_limit_override_set(st, D, "other.example", "messages_per_hour", false, 0, &err),
	    0);
	CHECK_OVR(D, "other.example", "");

	/* unknown owners */
	CHECK_INT(store_limit_override_set(st, A, "nobody@example.com", "messages_per_day", true, 1,
	                                   &err),
	          -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(
	    store_limit_override_set(st, D, "nope.example", "messages_per_day", true, 1, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_limit_override_set(st, A, "nobody@example.com", "messages_per_day", false,
	                                   0, &err),
	          -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_OVR(A, "nobody@example.com", "ENOTFOUND");
	CHECK_OVR(D, "nope.example", "ENOTFOUND");
	CHECK_OVR(D, "bob@example.com", "ERR"); /* not a domain name: EINVAL */

	/* bad rule names, values and names */
	char longrule[70];
	memset(longrule, 'a', sizeof longrule - 1);
	longrule[sizeof longrule - 1] = '\0';
	static const char *const bad_rules[] = {"", "Messages", "per-day", "a1", "a b", "é"};
	for (size_t i = 0; i < sizeof bad_rules / sizeof bad_rules[0]; i++) {
		CHECK_INT(
		    store_limit_override_set(st, A, "bob@example.com", bad_rules[i], true, 1, &err),
		    -1);
		CHECK_INT(err.code, STORE_EINVAL);
	}
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", NULL, true, 1, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", longrule, true, 1, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	longrule[64] = '\0';
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", longrule, true, 1, &err), 0);
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", longrule, false, 0, &err), 0);
	CHECK_INT(store_limit_override_set(st, A, "bob@example.com", "x", true,
	                                   (uint64_t)INT64_MAX + 1, &err),
	          -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_limit_override_set(st, A, "not an address", "x", true, 1, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_limit_override_set(st, A, NULL, "x", true, 1, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_limit_override_set(st, (enum store_limit_scope)7, "example.com", "x", true,
	                                   1, &err),
	          -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_OVR(A, "bob@example.com", "messages_per_minute=20,recipients_per_message=50");

	/* a cap on overrides per owner; replacing one at the cap still works */
	char rule[16];
	for (int i = 0; i < 256; i++) {
		(void)snprintf(rule, sizeof rule, "r_%c%c", 'a' + i / 26 % 26, 'a' + i % 26);
		CHECK_INT(store_limit_override_set(st, D, "other.example", rule, true, 1, &err), 0);
	}
	CHECK_INT(store_limit_override_set(st, D, "other.example", "one_more", true, 1, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_limit_override_set(st, D, "other.example", "r_aa", true, 2, &err), 0);
	struct store_limit_override *v;
	size_t nv;
	CHECK_INT(store_limit_overrides(st, D, "other.example", &v, &nv, &err), 0);
	CHECK_INT(nv, 256);
	if (nv == 256) {
		CHECK_STR(v[0].rule, "r_aa");
		CHECK_INT(v[0].value, 2);
	}
	store_limit_overrides_free(&v, nv);

	/* they go with their account or domain */
	CHECK_INT(store_account_remove(st, "bob@example.com", &err), 0);
	CHECK_OVR(A, "bob@example.com", "ENOTFOUND");
	CHECK_INT(store_account_add(st, "bob@example.com", "h", 0, &err), 0);
	CHECK_OVR(A, "bob@example.com", "");
	CHECK_OVR(A, "amy@example.com", "messages_per_day=7");
	CHECK_INT(
	    store_limit_override_set(st, A, "zed@other.example", "messages_per_day", true, 3, &err),
	    0);
	CHECK_INT(store_domain_remove(st, "other.example", true, &err), 0);
	CHECK_OVR(D, "other.example", "ENOTFOUND");
	CHECK_OVR(A, "zed@other.example", "ENOTFOUND");
	CHECK_INT(store_domain_add(st, "other.example", &err), 0);
	CHECK_OVR(D, "other.example", "");
	CHECK_OVR(D, "example.com", "messages_per_hour=1000");
	CHECK_INT(store_domain_remove(st, "example.com", true, &err), 0);
	store_close(&st);
	sqlite3 *db;
	int64_t left = -1;
	if (sqlite3_open(dbpath, &db) == SQLITE_OK) {
		sqlite3_stmt *stmt;
		if (sqlite3_prepare_v2(db,
		                       "SELECT (SELECT count(*) FROM limit_account_overrides)"
		                       " + (SELECT count(*) FROM limit_domain_overrides)",
		                       -1, &stmt, NULL) == SQLITE_OK) {
			if (sqlite3_step(stmt) == SQLITE_ROW)
				left = sqlite3_column_int64(stmt, 0);
			sqlite3_finalize(stmt);
		}
	}
	sqlite3_close(db);
	CHECK_INT(left, 0);
	st = open_db();
	CHECK_INT(store_integrity_check(st, &err), 0);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	RUN(test_usage);
	RUN(test_overrides);
	return test_done("store-limit");
}
