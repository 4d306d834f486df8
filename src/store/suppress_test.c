/* Unit tests of store/suppress.c and store/track.c: address folding, the suppression list (add,
 * check, list, remove, removal with the domain), soft-bounce counters, server secrets (stable
 * across calls and reopen), tracked links and the domains' tracking defaults. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "test.h"
#include "test_tmp.h"

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
	test_tmpdir(tmpdir, sizeof tmpdir, "store-suppress");
	(void)snprintf(dbpath, sizeof dbpath, "%s/lightr.db", tmpdir);
	return open_db();
}

static void
test_fold(void)
{
	static const struct {
		const char *in;
		char sep;
		size_t n;
		const char *want;
	} cases[] = {
	    {"Bob@Example.COM", '+', 64, "bob@example.com"},
	    {"Bob+news@Example.COM", '+', 64, "bob@example.com"},
	    {"bob+a+b@example.com", '+', 64, "bob@example.com"},
	    {"Bob+news@Example.COM", '\0', 64, "bob+news@example.com"},
	    {"Bob-news@Example.COM", '-', 64, "bob@example.com"},
	    {"Bob-news@Example.COM", '+', 64, "bob-news@example.com"},
	    {"bob@ex+ample.com", '+', 64, "bob@ex+ample.com"}, /* only the local part */
	    {"+tag@example.com", '+', 64, "+tag@example.com"}, /* no empty local part */
	    {"bob+tag", '+', 64, "bob+tag"},                   /* no domain: only lower-cased */
	    {"Bob+news@Example.COM", '+', 8, "bob@exa"},       /* n - 1 at most */
	    {"Bob+news@Example.COM", '+', 1, ""},
	    {"", '+', 64, ""},
	    {"\"A@B\"+x@Example.com", '+', 64, "\"a@b\"@example.com"}, /* last '@' */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[64];
		memset(out, 'X', sizeof out);
		store_suppress_fold(cases[i].in, cases[i].sep, out, cases[i].n);
		CHECK_STR(out, cases[i].want);
		CHECK(strlen(out) < cases[i].n);
	}
	char guard[2] = {'Z', 'Z'};
	store_suppress_fold("abc", '+', guard, 0); /* n == 0 writes nothing */
	CHECK(guard[0] == 'Z');
}

static void
test_suppressions(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_domain_add(st, "other.example", &err), 0);

	bool added = false;
	CHECK_INT(store_suppress_add(st, "Example.com", "Zed+x@Dest.example", '+', "hard_bounce",
	                             "550 5.1.1 no such user", 1000, &added, &err),
	          0);
	CHECK(added);
	CHECK_INT(store_suppress_add(st, "example.com", "zed@dest.example", '+', "manual", NULL,
	                             2000, &added, &err),
	          0);
	CHECK(!added);
	CHECK_INT(store_suppress_add(st, "example.com", "amy@dest.example", '+', "complaint", "fbl",
	                             1500, NULL, &err),
	          0);
	CHECK_INT(store_suppress_add(st, "other.example", "bob@dest.example", '+', "manual",
	                             "admin", 1600, &added, &err),
	          0);
	CHECK(added);
	/* errors */
	CHECK_INT(store_suppress_add(st, "nope.example", "zed@dest.example", '+', "manual", NULL, 1,
	                             NULL, &err),
	          -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_suppress_add(st, "example.com", "zed@dest.example", '+', "whim", NULL, 1,
	                             NULL, &err),
	          -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(
	    store_suppress_add(st, "example.com", "no-at-sign", '+', "manual", NULL, 1, NULL, &err),
	    -1);
	CHECK_INT(err.code, STORE_EINVAL);
	char longaddr[400];
	memset(longaddr, 'a', sizeof longaddr);
	memcpy(longaddr + 300, "@example.com", 13);
	CHECK_INT(
	    store_suppress_add(st, "example.com", longaddr, '+', "manual", NULL, 1, NULL, &err),
	    -1);
	CHECK_INT(err.code, STORE_EINVAL);

	/* check: hit and miss, case-insensitive, with +tag folding */
	struct store_suppression s;
	CHECK_INT(store_suppress_check(st, "EXAMPLE.COM", "ZED@DEST.EXAMPLE", '+', &s, &err), 1);
	CHECK_STR(s.domain, "example.com");
	CHECK_STR(s.address, "zed@dest.example");
	CHECK_STR(s.reason, "hard_bounce");
	CHECK_STR(s.source, "550 5.1.1 no such user");
	CHECK_INT(s.created, 1000);
	CHECK(s.id > 0);
	store_suppression_deinit(&s);
	CHECK(s.address == NULL);
	CHECK_INT(
	    store_suppress_check(st, "example.com", "Zed+other@dest.example", '+', NULL, &err), 1);
	CHECK_INT(
	    store_suppress_check(st, "example.com", "zed+other@dest.example", '\0', NULL, &err), 0);
	CHECK_INT(store_suppress_check(st, "example.com", "bob@dest.example", '+', &s, &err), 0);
	CHECK(s.address == NULL);
	CHECK_INT(store_suppress_check(st, "other.example", "bob@dest.example", '+', NULL, &err),
	          1);
	CHECK_INT(store_suppress_check(st, "nope.example", "bob@dest.example", '+', NULL, &err),
	          -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	/* list: by address */
	struct store_suppression *v = NULL;
	size_t n = 0;
	CHECK_INT(store_suppress_list(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].address, "amy@dest.example");
		CHECK_STR(v[0].reason, "complaint");
		CHECK_STR(v[0].source, "fbl");
		CHECK_STR(v[1].address, "zed@dest.example");
		CHECK_STR(v[1].domain, "example.com");
	}
	store_suppression_list_free(&v, n);
	CHECK(v == NULL);
	CHECK_INT(store_suppress_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 3);
	if (n == 3)
		CHECK_STR(v[1].address, "bob@dest.example");
	store_suppression_list_free(&v, n);
	CHECK_INT(store_suppress_list(st, "nope.example", &v, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK(v == NULL && n == 0);

	/* remove */
	CHECK_INT(store_suppress_remove(st, "example.com", "Amy+x@Dest.example", '+', &err), 0);
	CHECK_INT(store_suppress_check(st, "example.com", "amy@dest.example", '+', NULL, &err), 0);
	CHECK_INT(store_suppress_remove(st, "example.com", "amy@dest.example", '+', &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_suppress_remove(st, "nope.example", "amy@dest.example", '+', &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	/* entries go with their domain */
	CHECK_INT(store_domain_remove(st, "example.com", true, &err), 0);
	CHECK_INT(store_suppress_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_STR(v[0].domain, "other.example");
	store_suppression_list_free(&v, n);
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_suppress_check(st, "example.com", "zed@dest.example", '+', NULL, &err), 0);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_bounces(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	uint32_t c = 99;
	CHECK_INT(store_bounce_soft(st, "example.com", "Amy@dest.example", '+', &c, &err), 0);
	CHECK_INT(c, 1);
	CHECK_INT(store_bounce_soft(st, "example.com", "amy+x@dest.example", '+', &c, &err), 0);
	CHECK_INT(c, 2);
	CHECK_INT(store_bounce_soft(st, "example.com", "bob@dest.example", '+', &c, &err), 0);
	CHECK_INT(c, 1);
	CHECK_INT(store_bounce_soft(st, "EXAMPLE.com", "AMY@DEST.EXAMPLE", '+', &c, &err), 0);
	CHECK_INT(c, 3);
	CHECK_INT(store_bounce_reset(st, "example.com", "amy@dest.example", '+', &err), 0);
	CHECK_INT(store_bounce_soft(st, "example.com", "amy@dest.example", '+', &c, &err), 0);
	CHECK_INT(c, 1);
	CHECK_INT(store_bounce_reset(st, "example.com", "never@dest.example", '+', &err), 0);
	CHECK_INT(store_bounce_soft(st, "nope.example", "amy@dest.example", '+', &c, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_bounce_reset(st, "nope.example", "amy@dest.example", '+', &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	/* removing a suppression starts its count over */
	CHECK_INT(store_bounce_soft(st, "example.com", "amy@dest.example", '+', &c, &err), 0);
	CHECK_INT(c, 2);
	CHECK_INT(store_suppress_add(st, "example.com", "amy@dest.example", '+', "soft_bounces",
	                             NULL, 5, NULL, &err),
	          0);
	CHECK_INT(store_suppress_remove(st, "example.com", "amy@dest.example", '+', &err), 0);
	CHECK_INT(store_bounce_soft(st, "example.com", "amy@dest.example", '+', &c, &err), 0);
	CHECK_INT(c, 1);
	/* counters go with their domain */
	CHECK_INT(store_domain_remove(st, "example.com", true, &err), 0);
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_bounce_soft(st, "example.com", "bob@dest.example", '+', &c, &err), 0);
	CHECK_INT(c, 1);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_secret(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	unsigned char a[32], b[32], zero[32] = {0};
	CHECK_INT(store_secret(st, "track", a, sizeof a, &err), 0);
	CHECK(memcmp(a, zero, sizeof a) != 0);
	CHECK_INT(store_secret(st, "track", b, sizeof b, &err), 0);
	CHECK(memcmp(a, b, sizeof a) == 0);
	CHECK_INT(store_secret(st, "other", b, sizeof b, &err), 0);
	CHECK(memcmp(a, b, sizeof a) != 0);
	CHECK_INT(store_secret(st, "track", b, 16, &err), -1); /* stored with 32 bytes */
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_secret(st, "", b, sizeof b, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_secret(st, "x", b, 0, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	store_close(&st);
	st = open_db();
	CHECK_INT(store_secret(st, "track", b, sizeof b, &err), 0);
	CHECK(memcmp(a, b, sizeof a) == 0);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

#define RACERS 4
struct racer {
	struct store *st;
	unsigned char key[32];
	int rc;
};

static void *
secret_racer(void *arg)
{
	struct racer *r = arg;
	struct err err = {0};
	r->rc = store_secret(r->st, "race", r->key, sizeof r->key, &err);
	store_thread_done(r->st);
	return NULL;
}

/* First callers racing on a fresh store all get the one stored value. */
static void
test_secret_race(void)
{
	struct store *st = open_fresh();
	struct racer r[RACERS];
	pthread_t t[RACERS];
	for (size_t i = 0; i < RACERS; i++) {
		r[i] = (struct racer){.st = st, .rc = -2};
		CHECK_INT(pthread_create(&t[i], NULL, secret_racer, &r[i]), 0);
	}
	for (size_t i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	for (size_t i = 0; i < RACERS; i++) {
		CHECK_INT(r[i].rc, 0);
		CHECK(memcmp(r[i].key, r[0].key, sizeof r[0].key) == 0);
	}
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

static void
test_links_tracking(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	const char *urls[] = {"https://example.com/a", "https://example.com/b?x=1&y=2"};
	CHECK_INT(store_track_links_add(st, "msg-1", urls, 2, &err), 0);
	CHECK_INT(store_track_links_add(st, "msg-1", urls, 2, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	CHECK_INT(store_track_links_add(st, "msg-2", NULL, 0, &err), 0);
	const char *bad[] = {"https://example.com/a", ""};
	CHECK_INT(store_track_links_add(st, "msg-3", bad, 2, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	char *url = NULL;
	CHECK_INT(store_track_link(st, "msg-1", 0, &url, &err), 0);
	CHECK_STR(url, "https://example.com/a");
	free(url);
	CHECK_INT(store_track_link(st, "msg-1", 1, &url, &err), 0);
	CHECK_STR(url, "https://example.com/b?x=1&y=2");
	free(url);
	CHECK_INT(store_track_link(st, "msg-1", 2, &url, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK(url == NULL);
	CHECK_INT(store_track_link(st, "msg-3", 0, &url, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_track_link(st, "", 0, &url, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);

	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	bool opens = true, clicks = true;
	CHECK_INT(store_domain_tracking(st, "example.com", &opens, &clicks, &err), 0);
	CHECK(!opens && !clicks);
	CHECK_INT(store_domain_set_tracking(st, "Example.COM", true, false, &err), 0);
	CHECK_INT(store_domain_tracking(st, "example.com", &opens, &clicks, &err), 0);
	CHECK(opens && !clicks);
	CHECK_INT(store_domain_set_tracking(st, "example.com", false, true, &err), 0);
	CHECK_INT(store_domain_tracking(st, "EXAMPLE.com", &opens, &clicks, &err), 0);
	CHECK(!opens && clicks);
	CHECK_INT(store_domain_set_tracking(st, "nope.example", true, true, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_domain_tracking(st, "nope.example", &opens, &clicks, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

int
main(void)
{
	RUN(test_fold);
	RUN(test_suppressions);
	RUN(test_bounces);
	RUN(test_secret);
	RUN(test_secret_race);
	RUN(test_links_tracking);
	return test_done("store-suppress");
}
