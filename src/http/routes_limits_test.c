/* The REST API's rate limits (issue 8) with fake hooks: 429 with Retry-After and the JSON error
 * for requests per key, locked-out IPs and sends; the budget is taken once per send, refunded
 * when the send fails and not taken by an idempotent replay; the limits endpoints and the
 * overrides in PATCH (set, remove, validation, admin only). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_private.h"
#include "http/http_test.h"
#include "util/log.h"

static char tmpdir[100];
static struct store *st;
static struct http_api *api;
static char admin_tok[80], dom_tok[80], other_tok[80];

/* ---- fake hooks ---- */

static struct {
	bool refuse_request;
	int64_t gate;       /* what auth_gate answers */
	char gate_ip[64];   /* the last ip it was asked about */
	int n_ok, n_fail;   /* auth_result calls */
	size_t send_budget; /* recipients limit_send allows */
	size_t send_n;      /* the last n asked */
	int n_send, n_refund, n_done, n_submit;
	bool submit_fails;
	void *submit_taken; /* what submit saw */
	char usage_name[320];
	bool usage_domain;
} fk;
static int fake_handle;

static int
fake_submit(void *ctx, const struct http_submit *s, int64_t *queue_id_r, struct err *err)
{
	fk.n_submit++;
	fk.submit_taken = s->limit_taken;
	if (fk.submit_fails)
		return err_set(err, STORE_EINTERNAL, "disk full");
	/* only the API record (with its idempotency key), as for an all-suppressed send */
	struct store_delivery d = {
	    .body = s->msg, .body_len = s->len, .mail_from = s->from, .api = s->api};
	return store_deliver(st, &d, queue_id_r, err);
}

static void
fill_verdict(struct http_limit_verdict *v, const char *rule, const char *who, uint64_t limit,
             int64_t retry)
{
	v->rule = rule;
	(void)snprintf(v->who, sizeof v->who, "%s", who);
	v->limit = limit;
	v->retry_after_s = retry;
	(void)snprintf(v->text, sizeof v->text, "limit of %llu %s for %s reached",
	               (unsigned long long)limit, rule, who);
}

static int
fake_limit_send(void *ctx, const char *from, const char *domain, size_t n, void **taken_r,
                struct http_limit_verdict *v)
{
	fk.n_send++;
	fk.send_n = n;
	if (n > fk.send_budget) {
		fill_verdict(v, "recipients_per_day", domain, fk.send_budget, 42);
		return 1;
	}
	*taken_r = &fake_handle;
	return 0;
}

static void
fake_limit_refund(void *ctx, void *taken)
{
	CHECK(taken == &fake_handle);
	fk.n_refund++;
}

static void
fake_limit_done(void *ctx, void *taken)
{
	CHECK(taken == &fake_handle);
	fk.n_done++;
}

static bool
fake_limit_request(void *ctx, int64_t key_id, struct http_limit_verdict *v)
{
	if (!fk.refuse_request)
		return true;
	char who[32];
	(void)snprintf(who, sizeof who, "key %lld", (long long)key_id);
	fill_verdict(v, "requests_per_second", who, 5, 1);
	return false;
}

static int64_t
fake_auth_gate(void *ctx, const char *ip)
{
	(void)snprintf(fk.gate_ip, sizeof fk.gate_ip, "%s", ip);
	return fk.gate;
}

static void
fake_auth_result(void *ctx, const char *ip, bool ok)
{
	if (ok)
		fk.n_ok++;
	else
		fk.n_fail++;
}

static int
fake_limit_usage(void *ctx, bool domain, const char *name,
                 struct http_limit_usage out[HTTP_LIMIT_RULES], struct err *err)
{
	fk.usage_domain = domain;
	(void)snprintf(fk.usage_name, sizeof fk.usage_name, "%s", name);
	static const char *const rules[] = {"messages_per_minute", "messages_per_hour",
	                                    "messages_per_day", "recipients_per_day",
	                                    "recipients_per_message"};
	for (size_t i = 0; i < HTTP_LIMIT_RULES; i++)
		out[i] = (struct http_limit_usage){.rule = rules[i],
		                                   .limit = i == 1 ? 0 : 10 * (i + 1),
		                                   .used = i == 0 ? 25 : i,
		                                   .resets_in_s = 30,
		                                   .overridden = i == 2};
	return 0;
}

static const struct http_hooks hooks = {
    .submit = fake_submit,
    .limit_send = fake_limit_send,
    .limit_refund = fake_limit_refund,
    .limit_done = fake_limit_done,
    .limit_request = fake_limit_request,
    .auth_gate = fake_auth_gate,
    .auth_result = fake_auth_result,
    .limit_usage = fake_limit_usage,
};

/* ---- helpers ---- */

/* One request with its Retry-After and Idempotency-Key (http_test_request has neither). */
static unsigned
call_full(const char *tok, const char *method, const char *path, const char *body,
          const char *client, const char *idem, char retry_after[16], json_t **j_r)
{
	char auth[160];
	if (tok)
		(void)snprintf(auth, sizeof auth, "Bearer %s", tok);
	struct http_request r = {
	    .method = method,
	    .path = path,
	    .authorization = tok ? auth : NULL,
	    .content_type = body ? "application/json" : NULL,
	    .idempotency_key = idem,
	    .body = (const unsigned char *)body,
	    .body_len = body ? strlen(body) : 0,
	    .client = client ? client : "127.0.0.1:40000",
	};
	struct http_response resp;
	memset(&resp, 0, sizeof resp);
	buf_init(&resp.body, 0);
	http_api_handle(api, &r, &resp);
	if (retry_after)
		memcpy(retry_after, resp.retry_after, 16);
	if (j_r)
		*j_r = resp.body.len
		           ? json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL)
		           : NULL;
	buf_deinit(&resp.body);
	return resp.status;
}

static json_t *
err_obj(json_t *j)
{
	return json_object_get(j, "error");
}

static void
setup(void)
{
	static const char *const doms[] = {"example.com", "other.org", NULL};
	st = http_test_store_open(tmpdir, sizeof tmpdir, "routes_limits", doms);
	struct err err;
	if (store_account_add(st, "alice@example.com", "x", 0, &err) < 0 ||
	    store_account_add(st, "carol@other.org", "x", 0, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(1);
	}
	CHECK(http_test_make_key(st, NULL, 1, admin_tok) > 0);
	CHECK(http_test_make_key(st, "example.com", 1, dom_tok) > 0);
	CHECK(http_test_make_key(st, "other.org", 1, other_tok) > 0);
	struct http_limits lim = {0};
	api = http_api_new(st, &hooks, &lim);
	memset(&fk, 0, sizeof fk);
	fk.send_budget = 100;
}

/* ---- tests ---- */

static void
test_request_limit(void)
{
	char ra[16];
	json_t *j;
	fk.refuse_request = true;
	CHECK_INT(call_full(dom_tok, "GET", "/api/v1/domains", NULL, NULL, NULL, ra, &j), 429);
	CHECK_STR(ra, "1");
	json_t *e = err_obj(j);
	CHECK_STR(http_test_jstr(e, "code"), "rate_limited");
	CHECK(json_is_null(json_object_get(e, "field")));
	CHECK(strstr(http_test_jstr(e, "message"), "requests_per_second") != NULL);
	json_t *l = json_object_get(e, "limit");
	CHECK_STR(http_test_jstr(l, "rule"), "requests_per_second");
	CHECK(strncmp(http_test_jstr(l, "who") ? http_test_jstr(l, "who") : "", "key ", 4) == 0);
	CHECK_INT(json_integer_value(json_object_get(l, "limit")), 5);
	CHECK_INT(json_integer_value(json_object_get(l, "retry_after")), 1);
	json_decref(j);
	/* no key at all is still 401: the per-key budget needs a key */
	CHECK_INT(call_full(NULL, "GET", "/api/v1/domains", NULL, NULL, NULL, ra, NULL), 401);
	CHECK_STR(ra, "");
	/* the unauthenticated routes are not limited */
	CHECK_INT(call_full(NULL, "GET", "/healthz", NULL, NULL, NULL, NULL, NULL), 200);
	fk.refuse_request = false;
	CHECK_INT(call_full(dom_tok, "GET", "/api/v1/domains", NULL, NULL, NULL, ra, NULL), 200);
	CHECK_STR(ra, "");
}

static void
test_auth_gate(void)
{
	char ra[16];
	json_t *j;
	fk.n_ok = fk.n_fail = 0;
	/* a wrong key is reported as a failure of the IP without its port */
	CHECK_INT(call_full("lr_wrong", "GET", "/api/v1/domains", NULL, "127.0.0.2:5555", NULL,
	                    NULL, NULL),
	          401);
	CHECK_STR(fk.gate_ip, "127.0.0.2");
	CHECK_INT(fk.n_fail, 1);
	CHECK_INT(
	    call_full(admin_tok, "GET", "/api/v1/domains", NULL, "[::1]:443", NULL, NULL, NULL),
	    200);
	CHECK_STR(fk.gate_ip, "::1");
	CHECK_INT(fk.n_ok, 1);
	/* a delay is slept, then the request goes on */
	fk.gate = 20;
	CHECK_INT(call_full(admin_tok, "GET", "/api/v1/domains", NULL, NULL, NULL, NULL, NULL),
	          200);
	CHECK_STR(fk.gate_ip, "127.0.0.1");
	/* locked out: 429 before the key is looked at, even the right one */
	fk.gate = -1;
	CHECK_INT(call_full(admin_tok, "GET", "/api/v1/domains", NULL, NULL, NULL, ra, &j), 429);
	CHECK_STR(ra, "60");
	CHECK_STR(http_test_jstr(err_obj(j), "code"), "rate_limited");
	CHECK_STR(http_test_jstr(json_object_get(err_obj(j), "limit"), "rule"), "auth_failures");
	CHECK_INT(fk.n_ok, 2);
	CHECK_INT(fk.n_fail, 1);
	json_decref(j);
	fk.gate = 0;
}

static const char send_body[] =
    "{\"from\": \"alice@example.com\", \"to\": [\"bob@remote.test\", "
    "\"dave@remote.test\", \"bob@remote.test\", "
    "\"nobody@example.com\"], \"subject\": \"hi\", \"text\": \"hello\"}";

static void
test_send_limit(void)
{
	char ra[16];
	json_t *j;
	/* refused: 429, nothing submitted, the count is the attempted recipients (the duplicate
	 * and the rejected local one do not count) */
	fk.send_budget = 1;
	fk.n_send = fk.n_submit = fk.n_done = fk.n_refund = 0;
	CHECK_INT(call_full(dom_tok, "POST", "/api/v1/messages", send_body, NULL, NULL, ra, &j),
	          429);
	CHECK_INT(fk.send_n, 2);
	CHECK_INT(fk.n_submit, 0);
	CHECK_STR(ra, "42");
	json_t *e = err_obj(j);
	CHECK_STR(http_test_jstr(e, "code"), "rate_limited");
	CHECK_STR(http_test_jstr(json_object_get(e, "limit"), "who"), "example.com");
	CHECK_STR(http_test_jstr(json_object_get(e, "limit"), "rule"), "recipients_per_day");
	json_decref(j);
	/* allowed: the handle goes to submit, then limit_done */
	fk.send_budget = 100;
	CHECK_INT(
	    call_full(dom_tok, "POST", "/api/v1/messages", send_body, NULL, "idem-1", ra, NULL),
	    202);
	CHECK_INT(fk.n_submit, 1);
	CHECK(fk.submit_taken == &fake_handle);
	CHECK_INT(fk.n_done, 1);
	CHECK_INT(fk.n_refund, 0);
	/* an idempotent replay takes no budget */
	int sends = fk.n_send;
	CHECK_INT(
	    call_full(dom_tok, "POST", "/api/v1/messages", send_body, NULL, "idem-1", NULL, NULL),
	    202);
	CHECK_INT(fk.n_send, sends);
	CHECK_INT(fk.n_submit, 1);
	/* a failed submit gives the budget back */
	fk.submit_fails = true;
	CHECK_INT(call_full(dom_tok, "POST", "/api/v1/messages", send_body, NULL, NULL, NULL, NULL),
	          500);
	CHECK_INT(fk.n_refund, 1);
	CHECK_INT(fk.n_done, 1);
	fk.submit_fails = false;
	/* a limit waiting cannot satisfy: 422 limit_exceeded, no Retry-After */
	struct http_ctx c = {0};
	struct http_response resp;
	memset(&resp, 0, sizeof resp);
	buf_init(&resp.body, 0);
	c.resp = &resp;
	struct http_limit_verdict v = {0};
	fill_verdict(&v, "recipients_per_message", "example.com", 2, -1);
	CHECK_INT(http_error_limited(&c, &v), -1);
	CHECK_INT(resp.status, 422);
	CHECK_STR(resp.retry_after, "");
	j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	CHECK_STR(http_test_jstr(err_obj(j), "code"), "limit_exceeded");
	CHECK(json_is_null(json_object_get(json_object_get(err_obj(j), "limit"), "retry_after")));
	json_decref(j);
	buf_deinit(&resp.body);
}

static void
test_limits_get(void)
{
	json_t *j;
	CHECK_INT(call_full(dom_tok, "GET", "/api/v1/accounts/alice@example.com/limits", NULL, NULL,
	                    NULL, NULL, &j),
	          200);
	CHECK_STR(fk.usage_name, "alice@example.com");
	CHECK(!fk.usage_domain);
	json_t *a = json_object_get(j, "limits");
	CHECK_INT(json_array_size(a), HTTP_LIMIT_RULES);
	json_t *r0 = json_array_get(a, 0), *r1 = json_array_get(a, 1), *r2 = json_array_get(a, 2);
	CHECK_STR(http_test_jstr(r0, "rule"), "messages_per_minute");
	CHECK_INT(json_integer_value(json_object_get(r0, "limit")), 10);
	CHECK_INT(json_integer_value(json_object_get(r0, "used")), 25);
	CHECK_INT(json_integer_value(json_object_get(r0, "remaining")), 0);
	CHECK_INT(json_integer_value(json_object_get(r0, "resets_in")), 30);
	CHECK(json_is_false(json_object_get(r0, "overridden")));
	CHECK(json_is_null(json_object_get(r1, "limit")));
	CHECK(json_is_null(json_object_get(r1, "remaining")));
	CHECK_INT(json_integer_value(json_object_get(r2, "remaining")), 28);
	CHECK(json_is_true(json_object_get(r2, "overridden")));
	json_decref(j);
	CHECK_INT(call_full(admin_tok, "GET", "/api/v1/domains/other.org/limits", NULL, NULL, NULL,
	                    NULL, NULL),
	          200);
	CHECK_STR(fk.usage_name, "other.org");
	CHECK(fk.usage_domain);
	/* scope before lookup; unknown ones are 404 */
	CHECK_INT(call_full(dom_tok, "GET", "/api/v1/domains/other.org/limits", NULL, NULL, NULL,
	                    NULL, NULL),
	          403);
	CHECK_INT(call_full(dom_tok, "GET", "/api/v1/accounts/carol@other.org/limits", NULL, NULL,
	                    NULL, NULL, NULL),
	          403);
	CHECK_INT(call_full(dom_tok, "GET", "/api/v1/accounts/nobody@example.com/limits", NULL,
	                    NULL, NULL, NULL, NULL),
	          404);
	CHECK_INT(call_full(admin_tok, "GET", "/api/v1/domains/nowhere.test/limits", NULL, NULL,
	                    NULL, NULL, NULL),
	          404);
	CHECK_INT(call_full(admin_tok, "POST", "/api/v1/domains/example.com/limits", "{}", NULL,
	                    NULL, NULL, NULL),
	          405);
}

/* The overrides of an account/domain as "rule=value,..." */
static void
overrides(bool domain, const char *name, char *out, size_t n)
{
	struct store_limit_override *v = NULL;
	size_t nv = 0, off = 0;
	struct err err;
	out[0] = '\0';
	CHECK_INT(store_limit_overrides(st, domain ? STORE_LIMIT_DOMAIN : STORE_LIMIT_ACCOUNT, name,
	                                &v, &nv, &err),
	          0);
	for (size_t i = 0; i < nv && off < n; i++)
		off += (size_t)snprintf(out + off, n - off, "%s%s=%llu", i ? "," : "", v[i].rule,
		                        (unsigned long long)v[i].value);
	store_limit_overrides_free(&v, nv);
}

static unsigned
patch_err(const char *tok, const char *path, const char *body, const char *code, const char *field)
{
	json_t *j;
	unsigned s = call_full(tok, "PATCH", path, body, NULL, NULL, NULL, &j);
	CHECK_STR(http_test_jstr(err_obj(j), "code"), code);
	if (field)
		CHECK_STR(http_test_jstr(err_obj(j), "field"), field);
	json_decref(j);
	return s;
}

static void
test_overrides(void)
{
	char got[256];
	const char *dp = "/api/v1/domains/example.com", *ap = "/api/v1/accounts/alice@example.com";
	CHECK_INT(
	    call_full(admin_tok, "PATCH", dp,
	              "{\"limits\": {\"messages_per_minute\": 10, \"recipients_per_day\": 0}}",
	              NULL, NULL, NULL, NULL),
	    200);
	overrides(true, "example.com", got, sizeof got);
	CHECK_STR(got, "messages_per_minute=10,recipients_per_day=0");
	CHECK_INT(call_full(admin_tok, "PATCH", dp,
	                    "{\"track_opens\": true, \"limits\": {\"messages_per_minute\": null}}",
	                    NULL, NULL, NULL, NULL),
	          200);
	overrides(true, "example.com", got, sizeof got);
	CHECK_STR(got, "recipients_per_day=0");
	CHECK_INT(call_full(admin_tok, "PATCH", ap,
	                    "{\"limits\": {\"recipients_per_message\": 50}, \"quota\": 1000}", NULL,
	                    NULL, NULL, NULL),
	          200);
	overrides(false, "alice@example.com", got, sizeof got);
	CHECK_STR(got, "recipients_per_message=50");
	CHECK_INT(call_full(admin_tok, "PATCH", ap, "{\"limits\": {}}", NULL, NULL, NULL, NULL),
	          200);
	/* validation: nothing is stored */
	CHECK_INT(patch_err(admin_tok, ap, "{\"limits\": {\"bogus\": 1}}", "unknown_field",
	                    "limits.bogus"),
	          422);
	CHECK_INT(patch_err(admin_tok, ap,
	                    "{\"limits\": {\"messages_per_day\": 5, \"messages_per_hour\": -1}}",
	                    "out_of_range", "limits.messages_per_hour"),
	          422);
	CHECK_INT(patch_err(admin_tok, dp, "{\"limits\": {\"messages_per_day\": \"5\"}}",
	                    "invalid_type", "limits.messages_per_day"),
	          422);
	CHECK_INT(patch_err(admin_tok, dp, "{\"limits\": {\"messages_per_day\": 1.5}}",
	                    "invalid_type", "limits.messages_per_day"),
	          422);
	CHECK_INT(patch_err(admin_tok, dp, "{\"limits\": {\"messages_per_day\": 2000000000000}}",
	                    "out_of_range", "limits.messages_per_day"),
	          422);
	CHECK_INT(patch_err(admin_tok, dp, "{\"limits\": [1]}", "invalid_type", "limits"), 422);
	overrides(false, "alice@example.com", got, sizeof got);
	CHECK_STR(got, "recipients_per_message=50");
	overrides(true, "example.com", got, sizeof got);
	CHECK_STR(got, "recipients_per_day=0");
	/* scope: domain keys may not change limits, even of their own domain */
	CHECK_INT(patch_err(dom_tok, dp, "{\"limits\": {\"messages_per_day\": 1000}}", "forbidden",
	                    "limits"),
	          403);
	CHECK_INT(patch_err(dom_tok, ap, "{\"limits\": {\"messages_per_day\": 1000}}", "forbidden",
	                    "limits"),
	          403);
	CHECK_INT(patch_err(other_tok, ap, "{\"limits\": {\"messages_per_day\": 1000}}",
	                    "forbidden", NULL),
	          403);
	overrides(false, "alice@example.com", got, sizeof got);
	CHECK_STR(got, "recipients_per_message=50");
	/* but a domain key still changes the rest */
	CHECK_INT(
	    call_full(dom_tok, "PATCH", dp, "{\"track_clicks\": true}", NULL, NULL, NULL, NULL),
	    200);
	/* unknown account or domain */
	CHECK_INT(call_full(admin_tok, "PATCH", "/api/v1/accounts/nobody@example.com",
	                    "{\"limits\": {\"messages_per_day\": 1}}", NULL, NULL, NULL, NULL),
	          404);
	CHECK_INT(call_full(admin_tok, "PATCH", "/api/v1/domains/nowhere.test",
	                    "{\"limits\": {\"messages_per_day\": 1}}", NULL, NULL, NULL, NULL),
	          404);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	if (auth_init(1) < 0)
		return 1;
	setup();
	RUN(test_request_limit);
	RUN(test_auth_gate);
	RUN(test_send_limit);
	RUN(test_limits_get);
	RUN(test_overrides);
	http_test_teardown(&api, &st, tmpdir);
	return test_done("http_routes_limits");
}
