/* Unit tests of store/dkim.c: add, list (no private keys), active keys with PEM, rotation
 * bookkeeping in one transaction, retiring due keys, export, and the error codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "test.h"
#include "test_tmp.h"

static char tmpdir[64];
static char dbpath[128];

static struct store *
open_fresh(void)
{
	test_tmpdir(tmpdir, sizeof tmpdir, "store-dkim");
	(void)snprintf(dbpath, sizeof dbpath, "%s/lightr.db", tmpdir);
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		exit(1);
	}
	return st;
}

static void
test_dkim_keys(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	struct store_dkim_new k1 = {"ed25519-20261129", "ed25519", 256, "PEM-ED", "PUBED"};
	struct store_dkim_new k2 = {"rsa-20261129", "rsa", 2048, "PEM-RSA", "PUBRSA"};
	CHECK_INT(store_dkim_add(st, "Example.COM", &k1, 1000, &err), 0);
	CHECK_INT(store_dkim_add(st, "example.com", &k2, 1000, &err), 0);
	CHECK_INT(store_dkim_add(st, "example.com", &k2, 1000, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	CHECK_INT(store_dkim_add(st, "nope.example", &k1, 1000, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	struct store_dkim_new bad = {"a b", "rsa", 2048, "x", "y"};
	CHECK_INT(store_dkim_add(st, "example.com", &bad, 1000, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	bad.selector = "ok";
	bad.algo = "dsa";
	CHECK_INT(store_dkim_add(st, "example.com", &bad, 1000, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);

	struct store_dkim_key *v = NULL;
	size_t n = 0;
	CHECK_INT(store_dkim_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].domain, "example.com");
		CHECK_STR(v[0].selector, "ed25519-20261129");
		CHECK_STR(v[0].algo, "ed25519");
		CHECK_STR(v[0].state, "active");
		CHECK_STR(v[1].public_key, "PUBRSA");
		CHECK_INT(v[1].bits, 2048);
		CHECK(v[0].private_key == NULL && v[1].private_key == NULL);
		CHECK_INT(v[0].created, 1000);
		CHECK_INT(v[0].retire_at, 0);
	}
	store_dkim_list_free(&v, n);
	CHECK(v == NULL);
	CHECK_INT(store_dkim_list(st, "nope.example", &v, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	CHECK_INT(store_dkim_active(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].private_key, "PEM-ED");
		CHECK_STR(v[1].private_key, "PEM-RSA");
	}
	store_dkim_list_free(&v, n);

	/* rotation: old keys published until now + 7 days, new ones active */
	struct store_dkim_new nk[2] = {{"ed25519-new", "ed25519", 256, "PEM-ED2", "PUBED2"},
	                               {"rsa-new", "rsa", 2048, "PEM-RSA2", "PUBRSA2"}};
	CHECK_INT(store_dkim_rotate(st, "example.com", nk, 2, 5000, 7, &err), 0);
	CHECK_INT(store_dkim_active(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].selector, "ed25519-new");
		CHECK_STR(v[1].selector, "rsa-new");
	}
	store_dkim_list_free(&v, n);
	CHECK_INT(store_dkim_list(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 4);
	size_t published = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].state, "published") == 0) {
			published++;
			CHECK_INT(v[i].retire_at, 5000 + 7 * 86400);
		}
	CHECK_INT(published, 2);
	store_dkim_list_free(&v, n);
	/* a failing rotation (selector exists) changes nothing */
	CHECK_INT(store_dkim_rotate(st, "example.com", nk, 2, 6000, 7, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	CHECK_INT(store_dkim_active(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 2);
	store_dkim_list_free(&v, n);

	size_t retired = 99;
	CHECK_INT(store_dkim_retire_due(st, 5000 + 7 * 86400 - 1, &retired, &err), 0);
	CHECK_INT(retired, 0);
	CHECK_INT(store_dkim_retire_due(st, 5000 + 7 * 86400, &retired, &err), 0);
	CHECK_INT(retired, 2);
	CHECK_INT(store_dkim_list(st, NULL, &v, &n, &err), 0);
	size_t nret = 0;
	for (size_t i = 0; i < n; i++)
		nret += strcmp(v[i].state, "retired") == 0;
	CHECK_INT(nret, 2);
	store_dkim_list_free(&v, n);

	char *pem = NULL;
	CHECK_INT(store_dkim_export(st, "EXAMPLE.com", "rsa-20261129", &pem, &err), 0);
	CHECK_STR(pem, "PEM-RSA");
	free(pem);
	CHECK_INT(store_dkim_export(st, "example.com", "nope", &pem, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK(pem == NULL);

	/* keys go with their domain */
	CHECK_INT(store_domain_remove(st, "example.com", true, &err), 0);
	CHECK_INT(store_dkim_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 0);
	store_dkim_list_free(&v, n);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
}

int
main(void)
{
	RUN(test_dkim_keys);
	return test_done("store-dkim");
}
