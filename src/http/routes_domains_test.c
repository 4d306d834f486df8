/* Unit tests of routes_domains.c and routes_accounts.c: every route through http_api_handle on a
 * real store in a temporary directory, with API keys made directly in the store and fake DKIM
 * and DNS hooks (fake key material). Status codes, scope isolation between two domains (a
 * domain key gets the same 403 for another domain's existing and missing resources),
 * pagination, and the 4xx answers to malformed bodies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/passwd.h"
#include "http/http.h"
#include "store/store.h"
#include "http/http_test.h"
#include "test.h"
#include "util/clock.h"
#include "util/log.h"

static char tmpdir[64];
static struct store *st;
static struct http_api *api;
static char admin_tok[128], a_tok[128], b_tok[128];

/* ---- fake hooks ---- */

static int gen_counter;
static bool fail_default_keys;

static int
fake_add(const char *domain, const char *sel, const char *algo, unsigned bits, struct err *err)
{
	struct store_dkim_new k = {sel, algo, bits, "-----BEGIN PRIVATE KEY-----\nSECRET\n", "PUB"};
	return store_dkim_add(st, domain, &k, clock_now(), err);
}

static int
fake_default_keys(void *ctx, const char *domain, struct err *err)
{
	(void)ctx;
	if (fail_default_keys)
		return err_set(err, STORE_EINTERNAL, "no entropy today");
	if (fake_add(domain, "ed25519-test", "ed25519", 256, err) < 0)
		return -1;
	return fake_add(domain, "rsa-test", "rsa", 2048, err);
}

static int
fake_generate(void *ctx, const char *domain, const char *algo, unsigned bits, const char *selector,
              char *selector_r, struct err *err)
{
	(void)ctx;
	char sel[64];
	if (selector)
		(void)snprintf(sel, sizeof sel, "%s", selector);
	else
		(void)snprintf(sel, sizeof sel, "gen-%d", ++gen_counter);
	if (fake_add(domain, sel, algo, bits, err) < 0)
		return -1;
	(void)snprintf(selector_r, 64, "%s", sel);
	return 0;
}

static int
fake_rotate(void *ctx, const char *domain, unsigned keep_days, struct err *err)
{
	(void)ctx;
	char s1[32], s2[32];
	int n = ++gen_counter;
	(void)snprintf(s1, sizeof s1, "rot-%d-ed", n);
	(void)snprintf(s2, sizeof s2, "rot-%d-rsa", n);
	struct store_dkim_new k[2] = {{s1, "ed25519", 256, "PEM", "PUB1"},
	                              {s2, "rsa", 2048, "PEM", "PUB2"}};
	return store_dkim_rotate(st, domain, k, 2, clock_now(), keep_days, err);
}

static char long_txt[301];

static int
fake_dns(void *ctx, const char *domain, struct http_dns_record **v_r, size_t *n_r, struct err *err)
{
	(void)ctx;
	(void)err;
	struct http_dns_record *v = calloc(3, sizeof *v);
	char buf[600];
	(void)snprintf(buf, sizeof buf, "%s.", domain);
	v[0] = (struct http_dns_record){strdup(buf), strdup("MX"), strdup("10 mail.test."), NULL};
	(void)snprintf(buf, sizeof buf, "sel._domainkey.%s.", domain);
	v[1] = (struct http_dns_record){strdup(buf), strdup("TXT"), strdup(long_txt),
	                                strdup("DKIM rsa key (active)")};
	(void)snprintf(buf, sizeof buf, "_dmarc.%s.", domain);
	v[2] =
	    (struct http_dns_record){strdup(buf), strdup("TXT"), strdup("v=DMARC1; p=none"), NULL};
	*v_r = v;
	*n_r = 3;
	return 0;
}

static const struct http_hooks hooks = {
    .dkim_default_keys = fake_default_keys,
    .dkim_generate = fake_generate,
    .dkim_rotate = fake_rotate,
    .domain_dns = fake_dns,
};

/* ---- requests ---- */

static json_t *last;         /* parsed body of the last response (or NULL) */
static char last_body[4096]; /* its text */

/* query: "k=v&k2=v2" (no decoding) or NULL; ct NULL = application/json when body != NULL */
static unsigned
req(const char *method, const char *path, const char *query, const char *tok, const char *ct,
    const char *body)
{
	char target[4096];
	(void)snprintf(target, sizeof target, "%s%s%s", path, query ? "?" : "", query ? query : "");
	struct http_test_req rq = {
	    .tok = tok, .method = method, .target = target, .ctype = ct, .body = body};
	struct http_test_answer a;
	http_test_request(api, &rq, &a);
	json_decref(last);
	last = NULL;
	(void)snprintf(last_body, sizeof last_body, "%s", buf_cstr(&a.body));
	if (a.body.len)
		last = json_loadb((const char *)a.body.data, a.body.len, 0, NULL);
	buf_deinit(&a.body);
	return a.status;
}

/* printf-style body */
static unsigned reqf(const char *method, const char *path, const char *tok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static unsigned
reqf(const char *method, const char *path, const char *tok, const char *fmt, ...)
{
	char body[8192];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	return req(method, path, NULL, tok, NULL, body);
}

#define jstr http_test_jstr

static const char *
err_code(void)
{
	return jstr(json_object_get(last, "error"), "code");
}

static const char *
err_field(void)
{
	return jstr(json_object_get(last, "error"), "field");
}

static size_t
data_n(void)
{
	return json_array_size(json_object_get(last, "data"));
}

static const json_t *
data_at(size_t i)
{
	return json_array_get(json_object_get(last, "data"), i);
}

/* ---- setup ---- */

static void
make_key(const char *domain, char *tok, size_t n)
{
	if (n < AUTH_APIKEY_TOKEN_SIZE || http_test_make_key(st, domain, clock_now(), tok) == 0)
		exit(1);
}

static void
setup(void)
{
	log_set_level(LOG_WARN);
	if (auth_init(2) < 0) {
		fprintf(stderr, "setup: auth_init\n");
		exit(1);
	}
	st = http_test_store_open(tmpdir, sizeof tmpdir, "http-domains", NULL);
	memset(long_txt, 'k', 300);
	api = http_api_new(st, &hooks, &(struct http_limits){0});
	make_key(NULL, admin_tok, sizeof admin_tok);
}

/* ---- tests ---- */

static void
test_auth(void)
{
	CHECK_INT(req("GET", "/api/v1/domains", NULL, NULL, NULL, NULL), 401);
	CHECK_STR(err_code(), "unauthorized");
	CHECK_INT(req("GET", "/api/v1/domains", NULL, "lr_nope", NULL, NULL), 401);
	CHECK_INT(req("GET", "/api/v1/domains/x.example/nothing", NULL, NULL, NULL, NULL), 401);
	CHECK_INT(req("PUT", "/api/v1/domains", NULL, admin_tok, NULL, NULL), 405);
}

static void
test_domain_create(void)
{
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": \"A.Example\"}"), 201);
	CHECK_STR(jstr(last, "name"), "a.example");
	CHECK_INT(json_integer_value(json_object_get(last, "accounts")), 0);
	CHECK(json_is_string(json_object_get(last, "created")));
	const json_t *keys = json_object_get(last, "dkim");
	CHECK_INT(json_array_size(keys), 2);
	for (size_t i = 0; i < json_array_size(keys); i++) {
		const json_t *k = json_array_get(keys, i);
		CHECK(json_object_get(k, "private_key") == NULL);
		CHECK_STR(jstr(k, "state"), "active");
		CHECK(json_is_null(json_object_get(k, "retire_at")));
	}
	CHECK(strstr(last_body, "SECRET") == NULL);
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": \"b.example\"}"), 201);
	make_key("a.example", a_tok, sizeof a_tok);
	make_key("b.example", b_tok, sizeof b_tok);

	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": \"a.example\"}"), 409);
	CHECK_STR(err_code(), "conflict");
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": \"bad..example\"}"), 422);
	CHECK_STR(err_code(), "invalid");
	CHECK_STR(err_field(), "name");
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": 5}"), 422);
	CHECK_STR(err_code(), "invalid_type");
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{}"), 422);
	CHECK_STR(err_code(), "missing_field");
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": \"c.example\", \"x\": 1}"),
	          422);
	CHECK_STR(err_code(), "unknown_field");
	CHECK_STR(err_field(), "x");
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": "), 400);
	CHECK_STR(err_code(), "invalid_json");
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "[1]"), 422);
	CHECK_INT(req("POST", "/api/v1/domains", NULL, admin_tok, "text/plain",
	              "{\"name\": \"c.example\"}"),
	          415);
	CHECK_STR(err_code(), "unsupported_media_type");
	CHECK_INT(reqf("POST", "/api/v1/domains", a_tok, "{\"name\": \"c.example\"}"), 403);

	/* DKIM keys fail: the domain goes again */
	fail_default_keys = true;
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": \"fail.example\"}"), 500);
	fail_default_keys = false;
	struct store_domain d;
	struct err err;
	CHECK_INT(store_domain_get(st, "fail.example", &d, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
}

static void
test_domain_get_list(void)
{
	CHECK_INT(req("GET", "/api/v1/domains", NULL, admin_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 2);
	CHECK(json_is_null(json_object_get(last, "next_cursor")));
	CHECK_INT(req("GET", "/api/v1/domains", NULL, a_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 1);
	CHECK_STR(jstr(data_at(0), "name"), "a.example");
	CHECK_INT(req("GET", "/api/v1/domains", "limit=1", admin_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 1);
	CHECK(json_is_string(json_object_get(last, "next_cursor")));

	CHECK_INT(req("GET", "/api/v1/domains/A.EXAMPLE", NULL, a_tok, NULL, NULL), 200);
	CHECK_STR(jstr(last, "name"), "a.example");
	CHECK_INT(req("GET", "/api/v1/domains/nope.example", NULL, admin_tok, NULL, NULL), 404);
	CHECK_INT(req("GET", "/api/v1/domains/not_a_domain", NULL, admin_tok, NULL, NULL), 404);
	/* scope: existing and missing other domains answer alike */
	char other[4096];
	CHECK_INT(req("GET", "/api/v1/domains/b.example", NULL, a_tok, NULL, NULL), 403);
	CHECK_STR(err_code(), "forbidden");
	(void)snprintf(other, sizeof other, "%s", last_body);
	CHECK_INT(req("GET", "/api/v1/domains/nope.example", NULL, a_tok, NULL, NULL), 403);
	CHECK_STR(last_body, other);
	static const char *const sub[] = {"/dns", "/dkim"};
	for (size_t i = 0; i < 2; i++) {
		char p1[128], p2[128];
		(void)snprintf(p1, sizeof p1, "/api/v1/domains/b.example%s", sub[i]);
		(void)snprintf(p2, sizeof p2, "/api/v1/domains/nope.example%s", sub[i]);
		CHECK_INT(req("GET", p1, NULL, a_tok, NULL, NULL), 403);
		(void)snprintf(other, sizeof other, "%s", last_body);
		CHECK_INT(req("GET", p2, NULL, a_tok, NULL, NULL), 403);
		CHECK_STR(last_body, other);
	}
	CHECK_INT(reqf("POST", "/api/v1/domains/b.example/dkim", a_tok, "{}"), 403);
	CHECK_STR(last_body, other);
	CHECK_INT(reqf("POST", "/api/v1/domains/nope.example/dkim/rotate", a_tok, "{}"), 403);
	CHECK_STR(last_body, other);
}

static void
test_domain_dns(void)
{
	CHECK_INT(req("GET", "/api/v1/domains/a.example/dns", NULL, a_tok, NULL, NULL), 200);
	CHECK_STR(jstr(last, "domain"), "a.example");
	const json_t *recs = json_object_get(last, "records");
	CHECK_INT(json_array_size(recs), 3);
	CHECK_STR(jstr(json_array_get(recs, 0), "type"), "MX");
	CHECK(json_is_null(json_object_get(json_array_get(recs, 0), "comment")));
	CHECK_STR(jstr(json_array_get(recs, 1), "value"), long_txt);
	char want[2048];
	(void)snprintf(want, sizeof want,
	               "; DNS records for a.example (zone-file lines; names are absolute)\n"
	               "a.example.\tIN\tMX\t10 mail.test.\n"
	               "; DKIM rsa key (active)\n"
	               "sel._domainkey.a.example.\tIN\tTXT\t\"%.255s\" \"%.45s\"\n"
	               "_dmarc.a.example.\tIN\tTXT\t\"v=DMARC1; p=none\"\n",
	               long_txt, long_txt);
	CHECK_STR(jstr(last, "zone"), want);
	CHECK_INT(req("GET", "/api/v1/domains/nope.example/dns", NULL, admin_tok, NULL, NULL), 404);
	CHECK_INT(req("POST", "/api/v1/domains/a.example/dns", NULL, admin_tok, NULL, NULL), 405);
}

static void
test_dkim(void)
{
	CHECK_INT(req("GET", "/api/v1/domains/a.example/dkim", NULL, a_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 2);
	CHECK_STR(jstr(data_at(0), "public_key"), "PUB");
	CHECK(json_object_get(data_at(0), "private_key") == NULL);
	CHECK_INT(req("GET", "/api/v1/domains/nope.example/dkim", NULL, admin_tok, NULL, NULL),
	          404);

	CHECK_INT(reqf("POST", "/api/v1/domains/a.example/dkim", a_tok, "{}"), 201);
	CHECK_STR(jstr(last, "algorithm"), "ed25519");
	CHECK_INT(json_integer_value(json_object_get(last, "bits")), 256);
	CHECK_STR(jstr(last, "state"), "active");
	CHECK_INT(req("POST", "/api/v1/domains/a.example/dkim", NULL, a_tok, NULL, NULL), 201);
	CHECK_INT(reqf("POST", "/api/v1/domains/a.example/dkim", a_tok,
	               "{\"algorithm\": \"rsa\", \"bits\": 3072, \"selector\": \"s-1\"}"),
	          201);
	CHECK_STR(jstr(last, "selector"), "s-1");
	CHECK_STR(jstr(last, "algorithm"), "rsa");
	CHECK_INT(json_integer_value(json_object_get(last, "bits")), 3072);
	CHECK_INT(reqf("POST", "/api/v1/domains/a.example/dkim", a_tok,
	               "{\"algorithm\": \"rsa\", \"selector\": \"s-1\"}"),
	          409);
	CHECK_INT(reqf("POST", "/api/v1/domains/a.example/dkim", a_tok, "{\"algorithm\": \"rsa\"}"),
	          201);
	CHECK_INT(json_integer_value(json_object_get(last, "bits")), 2048);

	static const struct {
		const char *body, *code, *field;
	} bad[] = {
	    {"{\"algorithm\": \"dsa\"}", "invalid", "algorithm"},
	    {"{\"algorithm\": 1}", "invalid_type", "algorithm"},
	    {"{\"bits\": 2048}", "invalid", "bits"},
	    {"{\"algorithm\": \"rsa\", \"bits\": 1024}", "out_of_range", "bits"},
	    {"{\"algorithm\": \"rsa\", \"bits\": 99999}", "out_of_range", "bits"},
	    {"{\"algorithm\": \"rsa\", \"bits\": \"2048\"}", "invalid_type", "bits"},
	    {"{\"selector\": \"Bad_Sel\"}", "invalid", "selector"},
	    {"{\"selector\": \"\"}", "invalid", "selector"},
	    {"{\"selector\": "
	     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	     "too_long", "selector"},
	    {"{\"private_key\": \"x\"}", "unknown_field", "private_key"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(
		    req("POST", "/api/v1/domains/a.example/dkim", NULL, a_tok, NULL, bad[i].body),
		    422);
		CHECK_STR(err_code(), bad[i].code);
		CHECK_STR(err_field(), bad[i].field);
	}
	CHECK_INT(reqf("POST", "/api/v1/domains/nope.example/dkim", admin_tok, "{}"), 404);

	/* rotation */
	CHECK_INT(req("GET", "/api/v1/domains/a.example/dkim", NULL, a_tok, NULL, NULL), 200);
	size_t before = data_n();
	CHECK_INT(
	    reqf("POST", "/api/v1/domains/a.example/dkim/rotate", a_tok, "{\"keep_days\": 3}"),
	    200);
	const json_t *keys = json_object_get(last, "keys");
	CHECK_INT(json_array_size(keys), before + 2);
	size_t active = 0, published = 0;
	for (size_t i = 0; i < json_array_size(keys); i++) {
		const char *state = jstr(json_array_get(keys, i), "state");
		if (state && strcmp(state, "active") == 0)
			active++;
		if (state && strcmp(state, "published") == 0) {
			published++;
			CHECK(
			    json_is_string(json_object_get(json_array_get(keys, i), "retire_at")));
		}
	}
	CHECK_INT(active, 2);
	CHECK_INT(published, before);
	CHECK_INT(req("POST", "/api/v1/domains/a.example/dkim/rotate", NULL, a_tok, NULL, NULL),
	          200);
	CHECK_INT(
	    reqf("POST", "/api/v1/domains/a.example/dkim/rotate", a_tok, "{\"keep_days\": 3651}"),
	    422);
	CHECK_STR(err_code(), "out_of_range");
	CHECK_INT(
	    reqf("POST", "/api/v1/domains/a.example/dkim/rotate", a_tok, "{\"keep_days\": -1}"),
	    422);
	CHECK_INT(reqf("POST", "/api/v1/domains/a.example/dkim/rotate", a_tok, "{\"keep\": 1}"),
	          422);
	CHECK_STR(err_code(), "unknown_field");
	CHECK_INT(
	    req("POST", "/api/v1/domains/a.example/dkim/rotate", NULL, a_tok, "text/plain", "x"),
	    415);
	CHECK_INT(reqf("POST", "/api/v1/domains/nope.example/dkim/rotate", admin_tok, "{}"), 404);
}

static void
test_account_create(void)
{
	CHECK_INT(reqf("POST", "/api/v1/accounts", a_tok,
	               "{\"address\": \"Joe@A.example\", \"password\": \"secret123\"}"),
	          201);
	CHECK_STR(jstr(last, "address"), "Joe@a.example");
	CHECK_STR(jstr(last, "domain"), "a.example");
	CHECK(json_object_get(last, "password") == NULL);
	CHECK(json_object_get(last, "password_hash") == NULL);
	CHECK_INT(json_integer_value(json_object_get(last, "quota")), 0);
	CHECK(json_is_false(json_object_get(last, "disabled")));
	CHECK(json_is_false(json_object_get(last, "domain_admin")));
	struct store_account a;
	struct err err;
	if (store_account_get(st, "joe@a.example", &a, &err) == 0) {
		CHECK(auth_verify(a.password_hash, "secret123", 9));
		store_account_deinit(&a);
	} else {
		CHECK(0);
	}

	CHECK_INT(reqf("POST", "/api/v1/accounts", a_tok,
	               "{\"address\": \"gen@a.example\", \"quota\": 1048576, \"disabled\": true,"
	               " \"domain_admin\": true}"),
	          201);
	const char *pw = jstr(last, "password");
	CHECK(pw != NULL && strlen(pw) == 24);
	for (size_t i = 0; pw && pw[i]; i++)
		CHECK((pw[i] >= 'a' && pw[i] <= 'z') || (pw[i] >= 'A' && pw[i] <= 'Z') ||
		      (pw[i] >= '0' && pw[i] <= '9'));
	CHECK_INT(json_integer_value(json_object_get(last, "quota")), 1048576);
	CHECK(json_is_true(json_object_get(last, "disabled")));
	CHECK(json_is_true(json_object_get(last, "domain_admin")));
	if (pw && store_account_get(st, "gen@a.example", &a, &err) == 0) {
		CHECK(auth_verify(a.password_hash, pw, strlen(pw)));
		store_account_deinit(&a);
	}

	CHECK_INT(reqf("POST", "/api/v1/accounts", a_tok,
	               "{\"address\": \"joe@a.example\", \"password\": \"secret123\"}"),
	          409);
	CHECK_STR(err_code(), "conflict");
	CHECK_INT(reqf("POST", "/api/v1/accounts", admin_tok,
	               "{\"address\": \"bob@b.example\", \"password\": \"secret123\"}"),
	          201);

	char pw1025[1100];
	memset(pw1025, 'p', 1025);
	pw1025[1025] = '\0';
	char big[1200];
	(void)snprintf(big, sizeof big, "{\"address\": \"x@a.example\", \"password\": \"%s\"}",
	               pw1025);
	static const struct {
		const char *body, *code, *field;
	} bad[] = {
	    {"{\"address\": \"x@a.example\", \"password\": \"short\"}", "invalid", "password"},
	    {"{\"address\": \"x@a.example\", \"password\": \"abc\\u0001defgh\"}", "invalid",
	     "password"},
	    {"{\"address\": \"x@a.example\", \"password\": \"abcdefgh\\u0000\"}", "invalid",
	     "password"},
	    {"{\"address\": \"x@a.example\", \"password\": 12345678}", "invalid_type", "password"},
	    {"{\"address\": \"x@a.example\", \"quota\": -1}", "out_of_range", "quota"},
	    {"{\"address\": \"x@a.example\", \"quota\": \"1G\"}", "invalid_type", "quota"},
	    {"{\"address\": \"x@a.example\", \"disabled\": \"yes\"}", "invalid_type", "disabled"},
	    {"{\"address\": \"x@a.example\", \"domain_admin\": 1}", "invalid_type", "domain_admin"},
	    {"{\"address\": \"not-an-address\"}", "invalid", "address"},
	    {"{\"address\": \"@a.example\"}", "invalid", "address"},
	    {"{\"address\": [\"x@a.example\"]}", "invalid_type", "address"},
	    {"{\"password\": \"secret123\"}", "missing_field", "address"},
	    {"{\"address\": \"x@a.example\", \"password_hash\": \"$argon2id$\"}", "unknown_field",
	     "password_hash"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(req("POST", "/api/v1/accounts", NULL, a_tok, NULL, bad[i].body), 422);
		CHECK_STR(err_code(), bad[i].code);
		CHECK_STR(err_field(), bad[i].field);
	}
	CHECK_INT(req("POST", "/api/v1/accounts", NULL, a_tok, NULL, big), 422);
	CHECK_STR(err_code(), "too_long");
	CHECK_INT(req("POST", "/api/v1/accounts", NULL, a_tok, NULL, "{\"address\": \"x@a"), 400);
	CHECK_INT(req("POST", "/api/v1/accounts", NULL, a_tok, NULL, "{\"a\": 1, \"a\": 2}"), 400);
	CHECK_INT(req("POST", "/api/v1/accounts", NULL, a_tok, "application/xml",
	              "{\"address\": \"x@a.example\"}"),
	          415);

	/* scope: other domain, existing or not, is 403; an admin gets 422 for a domain not ours */
	char other[4096];
	CHECK_INT(reqf("POST", "/api/v1/accounts", a_tok, "{\"address\": \"x@b.example\"}"), 403);
	(void)snprintf(other, sizeof other, "%s", last_body);
	CHECK_INT(reqf("POST", "/api/v1/accounts", a_tok, "{\"address\": \"x@nope.example\"}"),
	          403);
	CHECK_STR(last_body, other);
	CHECK_INT(reqf("POST", "/api/v1/accounts", admin_tok, "{\"address\": \"x@nope.example\"}"),
	          422);
	CHECK_STR(err_field(), "address");
}

static void
test_account_get_update_delete(void)
{
	CHECK_INT(req("GET", "/api/v1/accounts/Joe@A.EXAMPLE", NULL, a_tok, NULL, NULL), 200);
	CHECK_STR(jstr(last, "address"), "Joe@a.example");
	CHECK(strstr(last_body, "argon2") == NULL);
	CHECK_INT(req("GET", "/api/v1/accounts/nobody@a.example", NULL, a_tok, NULL, NULL), 404);
	CHECK_INT(req("GET", "/api/v1/accounts/@a.example", NULL, a_tok, NULL, NULL), 404);
	CHECK_INT(req("GET", "/api/v1/accounts/garbage", NULL, a_tok, NULL, NULL), 404);

	/* scope */
	static const char *const methods[] = {"GET", "PATCH", "DELETE"};
	for (size_t i = 0; i < 3; i++) {
		const char *body = strcmp(methods[i], "PATCH") == 0 ? "{\"quota\": 1}" : NULL;
		char other[4096];
		CHECK_INT(
		    req(methods[i], "/api/v1/accounts/bob@b.example", NULL, a_tok, NULL, body),
		    403);
		(void)snprintf(other, sizeof other, "%s", last_body);
		CHECK_INT(
		    req(methods[i], "/api/v1/accounts/nobody@b.example", NULL, a_tok, NULL, body),
		    403);
		CHECK_STR(last_body, other);
		CHECK_INT(
		    req(methods[i], "/api/v1/accounts/x@nope.example", NULL, a_tok, NULL, body),
		    403);
		CHECK_STR(last_body, other);
	}
	CHECK_INT(req("GET", "/api/v1/accounts/bob@b.example", NULL, b_tok, NULL, NULL), 200);

	CHECK_INT(reqf("PATCH", "/api/v1/accounts/joe@a.example", a_tok,
	               "{\"quota\": 5000, \"disabled\": true, \"domain_admin\": true}"),
	          200);
	CHECK_INT(json_integer_value(json_object_get(last, "quota")), 5000);
	CHECK(json_is_true(json_object_get(last, "disabled")));
	CHECK(json_is_true(json_object_get(last, "domain_admin")));
	CHECK_INT(reqf("PATCH", "/api/v1/accounts/joe@a.example", a_tok, "{\"disabled\": false}"),
	          200);
	CHECK(json_is_false(json_object_get(last, "disabled")));
	CHECK(json_is_true(json_object_get(last, "domain_admin")));
	CHECK_INT(json_integer_value(json_object_get(last, "quota")), 5000);
	CHECK_INT(reqf("PATCH", "/api/v1/accounts/joe@a.example", a_tok,
	               "{\"password\": \"another-pass\"}"),
	          200);
	CHECK(json_object_get(last, "password") == NULL);
	struct store_account a;
	struct err err;
	if (store_account_get(st, "joe@a.example", &a, &err) == 0) {
		CHECK(auth_verify(a.password_hash, "another-pass", 12));
		store_account_deinit(&a);
	}
	CHECK_INT(reqf("PATCH", "/api/v1/accounts/joe@a.example", a_tok, "{}"), 200);
	CHECK_INT(reqf("PATCH", "/api/v1/accounts/joe@a.example", a_tok, "{\"address\": \"x\"}"),
	          422);
	CHECK_STR(err_code(), "unknown_field");
	CHECK_INT(reqf("PATCH", "/api/v1/accounts/joe@a.example", a_tok, "{\"password\": \"1\"}"),
	          422);
	CHECK_INT(reqf("PATCH", "/api/v1/accounts/joe@a.example", a_tok, "{\"quota\": true}"), 422);
	CHECK_STR(err_code(), "invalid_type");
	CHECK_INT(reqf("PATCH", "/api/v1/accounts/joe@a.example", a_tok, "nope"), 400);
	CHECK_INT(reqf("PATCH", "/api/v1/accounts/nobody@a.example", a_tok, "{\"quota\": 1}"), 404);

	CHECK_INT(req("DELETE", "/api/v1/accounts/gen@a.example", NULL, a_tok, NULL, NULL), 204);
	CHECK_INT(last_body[0], '\0');
	CHECK_INT(req("GET", "/api/v1/accounts/gen@a.example", NULL, a_tok, NULL, NULL), 404);
	CHECK_INT(req("DELETE", "/api/v1/accounts/gen@a.example", NULL, a_tok, NULL, NULL), 404);
}

static void
test_account_list(void)
{
	struct err err;
	char addr[64];
	for (int i = 0; i < 7; i++) {
		(void)snprintf(addr, sizeof addr, "user%d@a.example", i);
		CHECK_INT(store_account_add(st, addr, "$argon2id$fake", 0, &err), 0);
	}
	CHECK_INT(req("GET", "/api/v1/accounts", NULL, a_tok, NULL, NULL), 200);
	size_t total = data_n();
	CHECK_INT(total, 8); /* Joe + user0..6 */
	for (size_t i = 0; i < total; i++)
		CHECK_STR(jstr(data_at(i), "domain"), "a.example");
	CHECK(json_object_get(data_at(0), "password_hash") == NULL);

	/* pages of 3 cover everything once, in order */
	char seen[16][64];
	size_t n_seen = 0;
	char query[700] = "limit=3";
	for (int page = 0; page < 10; page++) {
		CHECK_INT(req("GET", "/api/v1/accounts", query, a_tok, NULL, NULL), 200);
		CHECK(data_n() <= 3);
		for (size_t i = 0; i < data_n() && n_seen < 16; i++)
			(void)snprintf(seen[n_seen++], 64, "%s", jstr(data_at(i), "address"));
		const char *next = jstr(last, "next_cursor");
		if (next == NULL)
			break;
		(void)snprintf(query, sizeof query, "limit=3&cursor=%s", next);
	}
	CHECK_INT(n_seen, total);
	for (size_t i = 1; i < n_seen; i++)
		CHECK(strcmp(seen[i - 1], seen[i]) < 0);

	CHECK_INT(req("GET", "/api/v1/accounts", "limit=0", a_tok, NULL, NULL), 400);
	CHECK_INT(req("GET", "/api/v1/accounts", "limit=abc", a_tok, NULL, NULL), 400);
	CHECK_INT(req("GET", "/api/v1/accounts", "cursor=zz", a_tok, NULL, NULL), 400);

	/* domains */
	CHECK_INT(req("GET", "/api/v1/accounts", "domain=a.example", a_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), total);
	char other[4096];
	CHECK_INT(req("GET", "/api/v1/accounts", "domain=b.example", a_tok, NULL, NULL), 403);
	(void)snprintf(other, sizeof other, "%s", last_body);
	CHECK_INT(req("GET", "/api/v1/accounts", "domain=nope.example", a_tok, NULL, NULL), 403);
	CHECK_STR(last_body, other);
	CHECK_INT(req("GET", "/api/v1/accounts", "domain=b.example", admin_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 1);
	CHECK_STR(jstr(data_at(0), "address"), "bob@b.example");
	CHECK_INT(req("GET", "/api/v1/accounts", NULL, admin_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), total + 1);
	CHECK_INT(req("GET", "/api/v1/accounts", "domain=nope.example", admin_tok, NULL, NULL),
	          404);
	CHECK_INT(req("GET", "/api/v1/accounts", "domain=bad..x", admin_tok, NULL, NULL), 422);
}

static void
test_aliases(void)
{
	CHECK_INT(reqf("POST", "/api/v1/aliases", a_tok,
	               "{\"address\": \"info@a.example\", \"targets\": [\"joe@a.example\"]}"),
	          201);
	CHECK_STR(jstr(last, "address"), "info@a.example");
	CHECK_INT(json_array_size(json_object_get(last, "targets")), 1);
	/* targets are added to an existing alias, duplicates kept once */
	CHECK_INT(reqf("POST", "/api/v1/aliases", a_tok,
	               "{\"address\": \"info@a.example\", \"targets\": [\"joe@a.example\","
	               " \"someone@remote.example\"]}"),
	          201);
	CHECK_INT(json_array_size(json_object_get(last, "targets")), 2);
	CHECK_INT(reqf("POST", "/api/v1/aliases", a_tok,
	               "{\"address\": \"@A.example\", \"targets\": [\"joe@a.example\"]}"),
	          201);
	CHECK_STR(jstr(last, "address"), "@a.example");
	CHECK_INT(req("GET", "/api/v1/aliases/@a.example", NULL, a_tok, NULL, NULL), 200);
	CHECK_STR(jstr(last, "address"), "@a.example");
	CHECK_INT(req("GET", "/api/v1/aliases/info@a.example", NULL, a_tok, NULL, NULL), 200);
	CHECK_INT(json_array_size(json_object_get(last, "targets")), 2);
	CHECK_INT(req("GET", "/api/v1/aliases/none@a.example", NULL, a_tok, NULL, NULL), 404);

	/* an account's address cannot be an alias */
	CHECK_INT(reqf("POST", "/api/v1/aliases", a_tok,
	               "{\"address\": \"joe@a.example\", \"targets\": [\"x@remote.example\"]}"),
	          409);

	char targets101[101 * 24 + 16];
	size_t off = 0;
	off += (size_t)snprintf(targets101, sizeof targets101, "[");
	for (int i = 0; i < 101; i++)
		off += (size_t)snprintf(targets101 + off, sizeof targets101 - off,
		                        "%s\"t%d@r.example\"", i ? "," : "", i);
	(void)snprintf(targets101 + off, sizeof targets101 - off, "]");
	char body101[sizeof targets101 + 64];
	(void)snprintf(body101, sizeof body101, "{\"address\": \"m@a.example\", \"targets\": %s}",
	               targets101);
	static const struct {
		const char *body, *code, *field;
	} bad[] = {
	    {"{\"address\": \"m@a.example\", \"targets\": []}", "out_of_range", "targets"},
	    {"{\"address\": \"m@a.example\", \"targets\": \"x@r.example\"}", "invalid_type",
	     "targets"},
	    {"{\"address\": \"m@a.example\"}", "missing_field", "targets"},
	    {"{\"address\": \"m@a.example\", \"targets\": [\"ok@r.example\", 5]}", "invalid_type",
	     "targets[1]"},
	    {"{\"address\": \"m@a.example\", \"targets\": [\"bad\"]}", "invalid", "targets[0]"},
	    {"{\"address\": \"m@a.example\", \"targets\": [\"@r.example\"]}", "invalid",
	     "targets[0]"},
	    {"{\"address\": \"m@@a.example\", \"targets\": [\"x@r.example\"]}", "invalid",
	     "address"},
	    {"{\"targets\": [\"x@r.example\"]}", "missing_field", "address"},
	    {"{\"address\": \"m@a.example\", \"targets\": [\"x@r.example\"], \"y\": 0}",
	     "unknown_field", "y"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(req("POST", "/api/v1/aliases", NULL, a_tok, NULL, bad[i].body), 422);
		CHECK_STR(err_code(), bad[i].code);
		CHECK_STR(err_field(), bad[i].field);
	}
	CHECK_INT(req("POST", "/api/v1/aliases", NULL, a_tok, NULL, body101), 422);
	CHECK_STR(err_code(), "out_of_range");
	CHECK_INT(reqf("POST", "/api/v1/aliases", admin_tok,
	               "{\"address\": \"m@nope.example\", \"targets\": [\"x@r.example\"]}"),
	          422);

	/* scope */
	CHECK_INT(reqf("POST", "/api/v1/aliases", admin_tok,
	               "{\"address\": \"sales@b.example\", \"targets\": [\"bob@b.example\"]}"),
	          201);
	char other[4096];
	CHECK_INT(reqf("POST", "/api/v1/aliases", a_tok,
	               "{\"address\": \"sales@b.example\", \"targets\": [\"joe@a.example\"]}"),
	          403);
	(void)snprintf(other, sizeof other, "%s", last_body);
	CHECK_INT(reqf("POST", "/api/v1/aliases", a_tok,
	               "{\"address\": \"x@nope.example\", \"targets\": [\"joe@a.example\"]}"),
	          403);
	CHECK_STR(last_body, other);
	static const char *const paths[] = {"/api/v1/aliases/sales@b.example",
	                                    "/api/v1/aliases/none@b.example",
	                                    "/api/v1/aliases/@b.example"};
	for (size_t i = 0; i < 3; i++) {
		CHECK_INT(req("GET", paths[i], NULL, a_tok, NULL, NULL), 403);
		CHECK_STR(last_body, other);
		CHECK_INT(req("DELETE", paths[i], NULL, a_tok, NULL, NULL), 403);
		CHECK_STR(last_body, other);
	}
	CHECK_INT(req("GET", "/api/v1/aliases", "domain=b.example", a_tok, NULL, NULL), 403);
	CHECK_INT(req("GET", "/api/v1/aliases", NULL, a_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 2);
	CHECK_INT(req("GET", "/api/v1/aliases", NULL, b_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 1);
	CHECK_INT(req("GET", "/api/v1/aliases", NULL, admin_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 3);
	CHECK_INT(req("GET", "/api/v1/aliases", "limit=1", admin_tok, NULL, NULL), 200);
	CHECK_INT(data_n(), 1);
	CHECK(json_is_string(json_object_get(last, "next_cursor")));

	/* delete one target, then the whole alias */
	CHECK_INT(req("DELETE", "/api/v1/aliases/info@a.example", "target=someone@remote.example",
	              a_tok, NULL, NULL),
	          204);
	CHECK_INT(req("GET", "/api/v1/aliases/info@a.example", NULL, a_tok, NULL, NULL), 200);
	CHECK_INT(json_array_size(json_object_get(last, "targets")), 1);
	CHECK_INT(req("DELETE", "/api/v1/aliases/info@a.example", "target=someone@remote.example",
	              a_tok, NULL, NULL),
	          404);
	CHECK_INT(
	    req("DELETE", "/api/v1/aliases/info@a.example", "target=garbage", a_tok, NULL, NULL),
	    400);
	CHECK_INT(req("DELETE", "/api/v1/aliases/info@a.example", NULL, a_tok, NULL, NULL), 204);
	CHECK_INT(req("GET", "/api/v1/aliases/info@a.example", NULL, a_tok, NULL, NULL), 404);
	CHECK_INT(req("DELETE", "/api/v1/aliases/@a.example", NULL, a_tok, NULL, NULL), 204);
	CHECK_INT(req("DELETE", "/api/v1/aliases/@a.example", NULL, a_tok, NULL, NULL), 404);
}

static void
test_domain_delete(void)
{
	CHECK_INT(req("DELETE", "/api/v1/domains/b.example", NULL, b_tok, NULL, NULL), 403);
	CHECK_INT(req("DELETE", "/api/v1/domains/b.example", NULL, admin_tok, NULL, NULL), 409);
	CHECK_STR(err_code(), "conflict");
	CHECK_INT(req("DELETE", "/api/v1/domains/b.example", "force=maybe", admin_tok, NULL, NULL),
	          400);
	CHECK_INT(req("DELETE", "/api/v1/domains/b.example", "force=false", admin_tok, NULL, NULL),
	          409);
	CHECK_INT(req("DELETE", "/api/v1/domains/b.example", "force=true", admin_tok, NULL, NULL),
	          204);
	CHECK_INT(last_body[0], '\0');
	CHECK_INT(req("GET", "/api/v1/domains/b.example", NULL, admin_tok, NULL, NULL), 404);
	/* its key went with it */
	CHECK_INT(req("GET", "/api/v1/domains", NULL, b_tok, NULL, NULL), 401);
	CHECK_INT(req("DELETE", "/api/v1/domains/b.example", NULL, admin_tok, NULL, NULL), 404);
	CHECK_INT(reqf("POST", "/api/v1/domains", admin_tok, "{\"name\": \"empty.example\"}"), 201);
	CHECK_INT(req("DELETE", "/api/v1/domains/empty.example", NULL, admin_tok, NULL, NULL), 204);
}

int
main(void)
{
	setup();
	RUN(test_auth);
	RUN(test_domain_create);
	RUN(test_domain_get_list);
	RUN(test_domain_dns);
	RUN(test_dkim);
	RUN(test_account_create);
	RUN(test_account_get_update_delete);
	RUN(test_account_list);
	RUN(test_aliases);
	RUN(test_domain_delete);
	json_decref(last);
	http_api_free(&api);
	store_close(&st);
	test_tmpdir_remove(tmpdir);
	return test_done("http_routes_domains");
}
