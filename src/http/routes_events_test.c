/* Tests of the issue 7 routes (routes_events.c, routes_webhooks.c, routes_suppressions.c,
 * routes_track.c and the tracking members of routes_domains.c) through http_api_handle on a
 * real store in a temporary directory: the events list with its filters, cursor and scope; a
 * webhook's life (secret shown once, private URLs refused unless allowed, scope, deliveries);
 * suppressions with address folding; the domain tracking defaults; and the tracking endpoints
 * with tokens made by track_token (pixel, redirect, events first then repeat, forged tokens). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "events/events.h"
#include "http/http_private.h"
#include "http/http_test.h"
#include "test.h"
#include "util/log.h"

static char tmpdir[64];
static struct store *st;
static struct http_api *api;
static int events_added_calls;
static char admin_tok[128], dom_tok[128];

static void
hook_events_added(void *ctx)
{
	(void)ctx;
	events_added_calls++;
}
static const struct http_hooks hooks = {.events_added = hook_events_added};

static void
setup(void)
{
	static const char *const domains[] = {"example.com", "other.test", NULL};
	st = http_test_store_open(tmpdir, sizeof tmpdir, "routes-events", domains);
	if (http_test_make_key(st, NULL, 1000, admin_tok) == 0 ||
	    http_test_make_key(st, "example.com", 1000, dom_tok) == 0)
		exit(1);
	struct http_limits lim = {.subaddress_sep = '+'};
	api = http_api_new(st, &hooks, &lim);
}

static void
teardown(void)
{
	http_test_teardown(&api, &st, tmpdir);
}

/* One request on a (target may carry "?k=v&k=v"); body NULL = none; ua may be NULL. */
static void
req_raw(struct http_api *a, const char *tok, const char *method, const char *target,
        const char *body, const char *ua, struct http_test_answer *out)
{
	struct http_test_req rq = {.tok = tok,
	                           .method = method,
	                           .target = target,
	                           .body = body,
	                           .ua = ua,
	                           .client = "127.0.0.1:40000"};
	http_test_request(a, &rq, out);
}

static unsigned
req(const char *tok, const char *method, const char *target, const char *body, json_t **j_r)
{
	struct http_test_req rq = {.tok = tok,
	                           .method = method,
	                           .target = target,
	                           .body = body,
	                           .client = "127.0.0.1:40000"};
	return http_test_call(api, &rq, j_r);
}

/* The status, checking the error code (and field when not NULL). */
static unsigned
req_err(const char *tok, const char *method, const char *target, const char *body, const char *code,
        const char *field)
{
	struct http_test_req rq = {.tok = tok,
	                           .method = method,
	                           .target = target,
	                           .body = body,
	                           .client = "127.0.0.1:40000"};
	return http_test_err(api, &rq, code, field);
}

#define jstr http_test_jstr

/* The number of items of the list at target (-1 unless 200). */
static long long
list_len(const char *tok, const char *target)
{
	return http_test_list_len(api, tok, target);
}

static int64_t
add_event(const char *type, const char *domain, const char *message, const char *rcpt)
{
	struct store_event_new e = {.type = type,
	                            .domain = domain,
	                            .message = message,
	                            .recipient = rcpt,
	                            .detail = "{\"reply\":\"250 ok\"}",
	                            .created = 2000};
	int64_t id = 0;
	struct err err = {0};
	if (store_event_add(st, &e, &id, &err) < 0)
		fprintf(stderr, "  store_event_add: %s\n", err.msg);
	return id;
}

/* ---- events ---- */

#define E_BASE "/api/v1/events"

static void
test_events(void)
{
	int64_t e1 = add_event("message.delivered", "example.com", "msg_a", "bob@far.test");
	int64_t e2 = add_event("message.bounced", "other.test", "msg_b", "dan@far.test");
	int64_t e3 = add_event("message.opened", "example.com", "msg_a", "eve@far.test");
	CHECK(e1 > 0 && e2 > e1 && e3 > e2);

	json_t *j;
	char t[256], evt[32];
	CHECK_INT(req(admin_tok, "GET", E_BASE, NULL, &j), 200);
	json_t *d = json_object_get(j, "data");
	CHECK_INT(json_array_size(d), 3);
	CHECK(json_is_null(json_object_get(j, "next_cursor")));
	(void)snprintf(evt, sizeof evt, "evt_%lld", (long long)e1);
	CHECK_STR(jstr(json_array_get(d, 0), "id"), evt);
	CHECK_STR(jstr(json_array_get(d, 0), "type"), "message.delivered");
	CHECK(json_is_string(json_object_get(json_array_get(d, 0), "created_at")));
	json_t *data0 = json_object_get(json_array_get(d, 0), "data");
	CHECK_STR(jstr(data0, "domain"), "example.com");
	CHECK_STR(jstr(data0, "message"), "msg_a");
	CHECK_STR(jstr(data0, "recipient"), "bob@far.test");
	CHECK_STR(jstr(json_array_get(d, 2), "type"), "message.opened");
	/* exactly events_event_json's object */
	struct store_event_filter f = {.after_id = e1 - 1, .limit = 1};
	struct store_event_row *v;
	size_t n;
	struct err err = {0};
	if (store_event_list(st, &f, &v, &n, &err) == 0 && n == 1) {
		char *text = events_event_json(&v[0]);
		json_t *want = text ? json_loads(text, 0, NULL) : NULL;
		CHECK(want != NULL && json_equal(want, json_array_get(d, 0)));
		json_decref(want);
		free(text);
		store_event_rows_free(&v, n);
	} else {
		CHECK(0);
	}
	json_decref(j);

	CHECK_INT(list_len(admin_tok, E_BASE "?type=message.bounced"), 1);
	CHECK_INT(list_len(admin_tok, E_BASE "?domain=example.com"), 2);
	CHECK_INT(list_len(admin_tok, E_BASE "?domain=Other.Test"), 1);
	CHECK_INT(list_len(admin_tok, E_BASE "?message=msg_a"), 2);
	CHECK_INT(list_len(admin_tok, E_BASE "?recipient=eve@far.test"), 1);
	CHECK_INT(list_len(admin_tok, E_BASE "?type=message.opened&domain=other.test"), 0);
	(void)snprintf(t, sizeof t, E_BASE "?after=evt_%lld", (long long)e1);
	CHECK_INT(list_len(admin_tok, t), 2);
	(void)snprintf(t, sizeof t, E_BASE "?after=evt_%lld", (long long)e3);
	CHECK_INT(list_len(admin_tok, t), 0);

	/* a domain key: its own domain only */
	CHECK_INT(list_len(dom_tok, E_BASE), 2);
	CHECK_INT(list_len(dom_tok, E_BASE "?domain=example.com"), 2);
	CHECK_INT(req_err(dom_tok, "GET", E_BASE "?domain=other.test", NULL, "forbidden", NULL),
	          403);
	CHECK_INT(req_err(dom_tok, "GET", E_BASE "?domain=-bad-", NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(admin_tok, "GET", E_BASE "?domain=-bad-", NULL, "invalid", "domain"),
	          422);

	/* pages */
	CHECK_INT(req(admin_tok, "GET", E_BASE "?limit=2", NULL, &j), 200);
	CHECK_INT(json_array_size(json_object_get(j, "data")), 2);
	const char *cur = jstr(j, "next_cursor");
	CHECK(cur != NULL);
	(void)snprintf(t, sizeof t, E_BASE "?limit=2&cursor=%s", cur ? cur : "");
	json_decref(j);
	CHECK_INT(req(admin_tok, "GET", t, NULL, &j), 200);
	d = json_object_get(j, "data");
	CHECK_INT(json_array_size(d), 1);
	(void)snprintf(evt, sizeof evt, "evt_%lld", (long long)e3);
	CHECK_STR(jstr(json_array_get(d, 0), "id"), evt);
	CHECK(json_is_null(json_object_get(j, "next_cursor")));
	json_decref(j);
	CHECK_INT(req_err(admin_tok, "GET", E_BASE "?cursor=zz", NULL, "bad_request", "cursor"),
	          400);
	CHECK_INT(req_err(admin_tok, "GET", E_BASE "?after=12", NULL, "bad_request", "after"), 400);
	CHECK_INT(req_err(admin_tok, "GET", E_BASE "?limit=0", NULL, "bad_request", "limit"), 400);
	CHECK_INT(req_err(NULL, "GET", E_BASE, NULL, "unauthorized", NULL), 401);
}

/* ---- webhooks ---- */

#define W_BASE "/api/v1/webhooks"

static void
test_webhooks(void)
{
	json_t *j;
	char t[256];
	/* the SSRF guard */
	CHECK_INT(req_err(admin_tok, "POST", W_BASE, "{\"url\":\"https://127.0.0.1/hook\"}",
	                  "invalid", "url"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", W_BASE, "{\"url\":\"ftp://1.1.1.1/hook\"}", "invalid",
	                  "url"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", W_BASE, "{}", "missing_field", "url"), 422);
	CHECK_INT(
	    req_err(admin_tok, "POST", W_BASE,
	            "{\"url\":\"https://1.1.1.1/h\",\"events\":[\"message.opened\",\"nope\"]}",
	            "invalid", "events[1]"),
	    422);
	CHECK_INT(req_err(admin_tok, "POST", W_BASE,
	                  "{\"url\":\"https://1.1.1.1/h\",\"events\":[]}", "invalid", "events"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", W_BASE, "{\"url\":\"https://1.1.1.1/h\",\"x\":1}",
	                  "unknown_field", "x"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", W_BASE,
	                  "{\"url\":\"https://1.1.1.1/h\",\"domain\":\"nope.test\"}", "not_found",
	                  "domain"),
	          404);

	/* an admin webhook for every domain and every type, with its secret */
	CHECK_INT(req(admin_tok, "POST", W_BASE, "{\"url\":\"https://1.1.1.1/all\"}", &j), 201);
	json_int_t w_all = json_integer_value(json_object_get(j, "id"));
	CHECK(w_all > 0);
	const char *secret = jstr(j, "secret");
	CHECK(secret && strlen(secret) == 38 && strncmp(secret, "whsec_", 6) == 0);
	CHECK_INT(json_array_size(json_object_get(j, "events")), 9);
	CHECK(json_is_null(json_object_get(j, "domain")));
	CHECK_STR(jstr(j, "url"), "https://1.1.1.1/all");
	json_decref(j);

	/* a domain key's webhook is its domain's, and asks for two types */
	CHECK_INT(req_err(dom_tok, "POST", W_BASE,
	                  "{\"url\":\"https://1.1.1.1/x\",\"domain\":\"other.test\"}", "forbidden",
	                  NULL),
	          403);
	CHECK_INT(req(dom_tok, "POST", W_BASE,
	              "{\"url\":\"https://1.1.1.1/dom\",\"events\":[\"message.opened\","
	              "\"message.clicked\",\"message.opened\"]}",
	              &j),
	          201);
	json_int_t w_dom = json_integer_value(json_object_get(j, "id"));
	CHECK_STR(jstr(j, "domain"), "example.com");
	json_t *ev = json_object_get(j, "events");
	CHECK_INT(json_array_size(ev), 2);
	CHECK_STR(json_string_value(json_array_get(ev, 0)), "message.opened");
	CHECK_STR(json_string_value(json_array_get(ev, 1)), "message.clicked");
	CHECK(json_is_string(json_object_get(j, "secret")));
	json_decref(j);

	/* the secret is never shown again */
	CHECK_INT(req(admin_tok, "GET", W_BASE, NULL, &j), 200);
	CHECK_INT(json_array_size(json_object_get(j, "data")), 2);
	CHECK(json_object_get(json_array_get(json_object_get(j, "data"), 0), "secret") == NULL);
	json_decref(j);
	CHECK_INT(list_len(dom_tok, W_BASE), 1);
	CHECK_INT(list_len(admin_tok, W_BASE "?domain=example.com"), 1);
	CHECK_INT(req_err(dom_tok, "GET", W_BASE "?domain=other.test", NULL, "forbidden", NULL),
	          403);
	(void)snprintf(t, sizeof t, W_BASE "/%lld", (long long)w_dom);
	CHECK_INT(req(dom_tok, "GET", t, NULL, &j), 200);
	CHECK(json_object_get(j, "secret") == NULL);
	CHECK_STR(jstr(j, "url"), "https://1.1.1.1/dom");
	json_decref(j);
	/* the admin one is invisible to the domain key */
	(void)snprintf(t, sizeof t, W_BASE "/%lld", (long long)w_all);
	CHECK_INT(req_err(dom_tok, "GET", t, NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(dom_tok, "DELETE", t, NULL, "not_found", NULL), 404);
	CHECK_INT(req(admin_tok, "GET", t, NULL, NULL), 200);
	CHECK_INT(req_err(admin_tok, "GET", W_BASE "/0", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "GET", W_BASE "/abc", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "GET", W_BASE "/99999", NULL, "not_found", NULL), 404);

	/* deliveries: an event fans out to the webhooks that want it */
	int64_t e = add_event("message.opened", "example.com", "msg_w", "bob@far.test");
	add_event("message.delivered", "example.com", "msg_w", "bob@far.test");
	(void)snprintf(t, sizeof t, W_BASE "/%lld/deliveries", (long long)w_dom);
	CHECK_INT(req(dom_tok, "GET", t, NULL, &j), 200);
	json_t *dv = json_object_get(j, "data");
	CHECK_INT(json_array_size(dv), 1);
	char evt[32];
	(void)snprintf(evt, sizeof evt, "evt_%lld", (long long)e);
	json_t *d0 = json_array_get(dv, 0);
	CHECK_STR(jstr(d0, "event_id"), evt);
	CHECK_STR(jstr(d0, "event_type"), "message.opened");
	CHECK(json_is_string(json_object_get(d0, "status")));
	CHECK_INT(json_integer_value(json_object_get(d0, "attempts")), 0);
	CHECK_INT(json_array_size(json_object_get(d0, "attempts_log")), 0);
	json_decref(j);
	(void)snprintf(t, sizeof t, W_BASE "/%lld/deliveries?limit=1", (long long)w_all);
	CHECK_INT(req(admin_tok, "GET", t, NULL, &j), 200);
	dv = json_object_get(j, "data");
	CHECK_INT(json_array_size(dv), 1);
	CHECK_STR(jstr(json_array_get(dv, 0), "event_type"), "message.delivered"); /* newest */
	const char *cur = jstr(j, "next_cursor");
	CHECK(cur != NULL);
	char t2[300];
	(void)snprintf(t2, sizeof t2, "%s&cursor=%s", t, cur ? cur : "");
	json_decref(j);
	CHECK_INT(req(admin_tok, "GET", t2, NULL, &j), 200);
	dv = json_object_get(j, "data");
	CHECK_INT(json_array_size(dv), 1);
	CHECK_STR(jstr(json_array_get(dv, 0), "event_type"), "message.opened");
	json_decref(j);
	(void)snprintf(t, sizeof t, W_BASE "/%lld/deliveries", (long long)w_all);
	CHECK_INT(req_err(dom_tok, "GET", t, NULL, "not_found", NULL), 404);

	/* removal */
	(void)snprintf(t, sizeof t, W_BASE "/%lld", (long long)w_all);
	CHECK_INT(req(admin_tok, "DELETE", t, NULL, NULL), 204);
	CHECK_INT(req_err(admin_tok, "GET", t, NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "DELETE", t, NULL, "not_found", NULL), 404);
	(void)snprintf(t, sizeof t, W_BASE "/%lld", (long long)w_dom);
	CHECK_INT(req(dom_tok, "DELETE", t, NULL, NULL), 204);
	CHECK_INT(list_len(admin_tok, W_BASE), 0);

	/* private receivers when the configuration allows them */
	struct http_limits lim = {.webhooks_allow_private = true};
	struct http_api *priv = http_api_new(st, &hooks, &lim);
	struct http_test_answer a;
	req_raw(priv, admin_tok, "POST", W_BASE, "{\"url\":\"http://127.0.0.1:9/hook\"}", NULL, &a);
	CHECK_INT(a.status, 201);
	buf_deinit(&a.body);
	http_api_free(&priv);
	CHECK_INT(list_len(admin_tok, W_BASE), 1);
}

/* ---- suppressions ---- */

#define S_BASE "/api/v1/suppressions"

static void
test_suppressions(void)
{
	json_t *j;
	CHECK_INT(req_err(admin_tok, "POST", S_BASE, "{\"address\":\"bob@far.test\"}",
	                  "missing_field", "domain"),
	          422);
	CHECK_INT(req_err(admin_tok, "GET", S_BASE, NULL, "missing_field", "domain"), 422);
	CHECK_INT(req(admin_tok, "POST", S_BASE,
	              "{\"address\":\"Bob+news@Far.Test\",\"domain\":\"example.com\"}", &j),
	          201);
	CHECK_STR(jstr(j, "address"), "bob@far.test");
	CHECK_STR(jstr(j, "domain"), "example.com");
	CHECK_STR(jstr(j, "reason"), "manual");
	CHECK_STR(jstr(j, "source"), "api");
	CHECK(json_is_string(json_object_get(j, "created")));
	json_decref(j);
	/* already listed: 200 */
	CHECK_INT(req(admin_tok, "POST", S_BASE "?domain=example.com",
	              "{\"address\":\"bob@far.test\",\"reason\":\"complaint\"}", NULL),
	          200);
	CHECK_INT(req(dom_tok, "POST", S_BASE,
	              "{\"address\":\"carol@far.test\",\"reason\":\"hard_bounce\","
	              "\"source\":\"import\"}",
	              &j),
	          201);
	CHECK_STR(jstr(j, "reason"), "hard_bounce");
	CHECK_STR(jstr(j, "source"), "import");
	json_decref(j);
	CHECK_INT(req_err(dom_tok, "POST", S_BASE,
	                  "{\"address\":\"x@far.test\",\"domain\":\"other.test\"}", "forbidden",
	                  NULL),
	          403);
	CHECK_INT(req_err(admin_tok, "POST", S_BASE "?domain=example.com",
	                  "{\"address\":\"x@far.test\",\"reason\":\"bogus\"}", "invalid", "reason"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", S_BASE "?domain=example.com",
	                  "{\"address\":\"not an address\"}", "invalid", "address"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", S_BASE "?domain=nope.test",
	                  "{\"address\":\"x@far.test\"}", "not_found", "domain"),
	          404);

	CHECK_INT(req(admin_tok, "GET", S_BASE "?domain=example.com", NULL, &j), 200);
	json_t *d = json_object_get(j, "data");
	CHECK_INT(json_array_size(d), 2);
	CHECK_STR(jstr(json_array_get(d, 0), "address"), "bob@far.test");
	CHECK_STR(jstr(json_array_get(d, 0), "reason"), "manual"); /* the first entry stays */
	json_decref(j);
	CHECK_INT(list_len(dom_tok, S_BASE), 2);
	CHECK_INT(list_len(admin_tok, S_BASE "?domain=other.test"), 0);
	CHECK_INT(req_err(dom_tok, "GET", S_BASE "?domain=other.test", NULL, "forbidden", NULL),
	          403);
	CHECK_INT(req_err(admin_tok, "GET", S_BASE "?domain=nope.test", NULL, "not_found", NULL),
	          404);

	/* one address, folded */
	CHECK_INT(req(dom_tok, "GET", S_BASE "/BOB+x@far.test", NULL, &j), 200);
	CHECK_STR(jstr(j, "address"), "bob@far.test");
	json_decref(j);
	CHECK_INT(req(admin_tok, "GET", S_BASE "/bob@far.test?domain=example.com", NULL, NULL),
	          200);
	CHECK_INT(req_err(admin_tok, "GET", S_BASE "/bob@far.test?domain=other.test", NULL,
	                  "not_found", NULL),
	          404);
	CHECK_INT(req_err(dom_tok, "GET", S_BASE "/bob@far.test?domain=other.test", NULL,
	                  "forbidden", NULL),
	          403);
	CHECK_INT(req_err(dom_tok, "GET", S_BASE "/nobody@far.test", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(dom_tok, "GET", S_BASE "/garbage", NULL, "not_found", NULL), 404);
	CHECK_INT(req(dom_tok, "DELETE", S_BASE "/Bob+y@FAR.test", NULL, NULL), 204);
	CHECK_INT(req_err(dom_tok, "DELETE", S_BASE "/bob@far.test", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(dom_tok, "GET", S_BASE "/bob@far.test", NULL, "not_found", NULL), 404);
	CHECK_INT(list_len(dom_tok, S_BASE), 1);
}

/* ---- domain tracking defaults ---- */

static void
test_domain_tracking(void)
{
	json_t *j;
	CHECK_INT(req(dom_tok, "GET", "/api/v1/domains/example.com", NULL, &j), 200);
	CHECK(json_is_false(json_object_get(j, "track_opens")));
	CHECK(json_is_false(json_object_get(j, "track_clicks")));
	json_decref(j);
	CHECK_INT(
	    req(dom_tok, "PATCH", "/api/v1/domains/example.com", "{\"track_opens\":true}", &j),
	    200);
	CHECK(json_is_true(json_object_get(j, "track_opens")));
	CHECK(json_is_false(json_object_get(j, "track_clicks")));
	CHECK_STR(jstr(j, "name"), "example.com");
	json_decref(j);
	CHECK_INT(
	    req(admin_tok, "PATCH", "/api/v1/domains/example.com", "{\"track_clicks\":true}", &j),
	    200);
	CHECK(json_is_true(json_object_get(j, "track_opens")));
	CHECK(json_is_true(json_object_get(j, "track_clicks")));
	json_decref(j);
	CHECK_INT(req(admin_tok, "GET", "/api/v1/domains", NULL, &j), 200);
	json_t *d = json_object_get(j, "data");
	CHECK_INT(json_array_size(d), 2);
	CHECK(json_is_true(json_object_get(json_array_get(d, 0), "track_clicks")));
	CHECK(json_is_false(json_object_get(json_array_get(d, 1), "track_clicks")));
	json_decref(j);
	CHECK_INT(req_err(dom_tok, "PATCH", "/api/v1/domains/other.test", "{\"track_opens\":true}",
	                  "forbidden", NULL),
	          403);
	CHECK_INT(req_err(admin_tok, "PATCH", "/api/v1/domains/example.com", "{\"track_opens\":1}",
	                  "invalid_type", "track_opens"),
	          422);
	CHECK_INT(req_err(admin_tok, "PATCH", "/api/v1/domains/example.com", "{\"opens\":true}",
	                  "unknown_field", "opens"),
	          422);
	CHECK_INT(req_err(admin_tok, "PATCH", "/api/v1/domains/nope.test", "{}", "not_found", NULL),
	          404);
}

/* ---- tracking ---- */

static int
api_send(const char *public_id)
{
	static const char body[] = "Subject: x\r\n\r\nhi\r\n";
	struct store_remote_rcpt r[] = {{.address = "carol@remote.test"},
	                                {.address = "dan@far.test"}};
	struct store_api_rcpt ar[] = {
	    {"carol@remote.test", "to", "queued", NULL},
	    {"dan@far.test", "to", "queued", NULL},
	};
	struct store_api_send as = {.public_id = public_id,
	                            .domain = "example.com",
	                            .from = "alice@example.com",
	                            .subject = "x",
	                            .rcpts = ar,
	                            .n_rcpts = 2,
	                            .created = 1500};
	struct store_delivery d = {.body = (const unsigned char *)body,
	                           .body_len = sizeof body - 1,
	                           .internal_date = 1500,
	                           .mail_from = "alice@example.com",
	                           .queue_header = "",
	                           .remote = r,
	                           .n_remote = 2,
	                           .api = &as};
	int64_t qid;
	struct err err = {0};
	if (store_deliver(st, &d, &qid, &err) < 0) {
		fprintf(stderr, "  store_deliver: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The events of type for message and recipient, oldest first (heap). */
static size_t
track_events(const char *type, const char *rcpt, struct store_event_row **v_r)
{
	struct store_event_filter f = {
	    .type = type, .message = "msg_track1", .recipient = rcpt, .limit = 100};
	size_t n = 0;
	struct err err = {0};
	if (store_event_list(st, &f, v_r, &n, &err) < 0) {
		fprintf(stderr, "  store_event_list: %s\n", err.msg);
		*v_r = NULL;
	}
	return n;
}

static json_t *
detail_of(const struct store_event_row *e)
{
	return json_loads(e->ev.detail, 0, NULL);
}

static void
test_tracking(void)
{
	CHECK_INT(api_send("msg_track1"), 0);
	static const char *const urls[] = {"https://example.org/a?x=1", "https://example.org/b"};
	struct err err = {0};
	CHECK_INT(store_track_links_add(st, "msg_track1", urls, 2, &err), 0);
	unsigned char key[TRACK_KEY_LEN];
	CHECK_INT(store_secret(st, "tracking", key, sizeof key, &err), 0);
	char tok[TRACK_TOKEN_MAX], target[TRACK_TOKEN_MAX + 16];
	struct http_test_answer a;
	int calls = events_added_calls;

	/* the pixel, twice: first, then a repeat */
	CHECK_INT(track_token(key, "msg_track1", 1, TRACK_LINK_OPEN, tok), 0);
	(void)snprintf(target, sizeof target, "/t/o/%s", tok);
	for (int i = 0; i < 2; i++) {
		req_raw(api, NULL, "GET", target, NULL, "Mozilla/5.0 (X11; Linux x86_64)", &a);
		CHECK_INT(a.status, 200);
		CHECK_STR(a.ctype, "image/gif");
		CHECK_INT(a.body.len, 43);
		CHECK(a.body.len == 43 && memcmp(a.body.data, "GIF89a", 6) == 0 &&
		      a.body.data[42] == 0x3b);
		buf_deinit(&a.body);
	}
	CHECK_INT(events_added_calls, calls + 2);
	struct store_event_row *v;
	size_t n = track_events("message.opened", "dan@far.test", &v);
	CHECK_INT(n, 2);
	if (n == 2) {
		json_t *d0 = detail_of(&v[0]), *d1 = detail_of(&v[1]);
		CHECK(json_is_true(json_object_get(d0, "first")));
		CHECK(json_is_false(json_object_get(d1, "first")));
		CHECK_STR(jstr(d0, "ip"), "127.0.0.1");
		CHECK_STR(jstr(d0, "user_agent"), "Mozilla/5.0 (X11; Linux x86_64)");
		CHECK(json_is_boolean(json_object_get(d0, "machine")));
		CHECK(json_object_get(d0, "url") == NULL);
		CHECK_STR(v[0].domain, "example.com");
		json_decref(d0);
		json_decref(d1);
	}
	store_event_rows_free(&v, n);
	CHECK_INT(track_events("message.opened", "carol@remote.test", &v), 0);
	store_event_rows_free(&v, 0);

	/* a click: 302 to the stored URL */
	CHECK_INT(track_token(key, "msg_track1", 0, 1, tok), 0);
	(void)snprintf(target, sizeof target, "/t/c/%s", tok);
	req_raw(api, NULL, "GET", target, NULL, "curl/8.0", &a);
	CHECK_INT(a.status, 302);
	CHECK_STR(a.location, "https://example.org/b");
	buf_deinit(&a.body);
	n = track_events("message.clicked", "carol@remote.test", &v);
	CHECK_INT(n, 1);
	if (n == 1) {
		json_t *d0 = detail_of(&v[0]);
		CHECK(json_is_true(json_object_get(d0, "first")));
		CHECK_STR(jstr(d0, "url"), "https://example.org/b");
		CHECK(json_is_true(json_object_get(d0, "machine"))); /* curl */
		json_decref(d0);
	}
	store_event_rows_free(&v, n);
	/* visible in the API */
	CHECK_INT(list_len(admin_tok, "/api/v1/events?type=message.clicked&message=msg_track1"), 1);

	/* refused: a link the message does not have, the open token on /t/c and back, a forged
	 * or cut token, another key */
	CHECK_INT(track_token(key, "msg_track1", 0, 7, tok), 0);
	(void)snprintf(target, sizeof target, "/t/c/%s", tok);
	req_raw(api, NULL, "GET", target, NULL, NULL, &a);
	CHECK_INT(a.status, 404);
	CHECK_STR(a.location, "");
	buf_deinit(&a.body);
	CHECK_INT(track_token(key, "msg_track1", 1, TRACK_LINK_OPEN, tok), 0);
	(void)snprintf(target, sizeof target, "/t/c/%s", tok);
	CHECK_INT(req(NULL, "GET", target, NULL, NULL), 404);
	CHECK_INT(track_token(key, "msg_track1", 0, 0, tok), 0);
	(void)snprintf(target, sizeof target, "/t/o/%s", tok);
	CHECK_INT(req(NULL, "GET", target, NULL, NULL), 404);
	size_t tl = strlen(tok);
	tok[tl - 1] = tok[tl - 1] == 'A' ? 'B' : 'A';
	(void)snprintf(target, sizeof target, "/t/c/%s", tok);
	CHECK_INT(req_err(NULL, "GET", target, NULL, "not_found", NULL), 404);
	tok[tl / 2] = '\0';
	(void)snprintf(target, sizeof target, "/t/c/%s", tok);
	CHECK_INT(req(NULL, "GET", target, NULL, NULL), 404);
	unsigned char other[TRACK_KEY_LEN];
	memset(other, 7, sizeof other);
	CHECK_INT(track_token(other, "msg_track1", 1, TRACK_LINK_OPEN, tok), 0);
	(void)snprintf(target, sizeof target, "/t/o/%s", tok);
	CHECK_INT(req(NULL, "GET", target, NULL, NULL), 404);
	CHECK_INT(req(NULL, "GET", "/t/o/x", NULL, NULL), 404);
	{
		char huge[600];
		memset(huge, 'a', sizeof huge - 1);
		huge[sizeof huge - 1] = '\0';
		(void)snprintf(target, sizeof target, "/t/o/%.*s", TRACK_TOKEN_MAX, huge);
		CHECK_INT(req(NULL, "GET", target, NULL, NULL), 404);
	}
	/* nothing was recorded for the refused ones */
	CHECK_INT(list_len(admin_tok, "/api/v1/events?type=message.clicked&message=msg_track1"), 1);
	CHECK_INT(list_len(admin_tok, "/api/v1/events?type=message.opened&message=msg_track1"), 2);

	/* a copy shared by several recipients: the event has no recipient */
	CHECK_INT(track_token(key, "msg_track1", TRACK_RCPT_ALL, TRACK_LINK_OPEN, tok), 0);
	(void)snprintf(target, sizeof target, "/t/o/%s", tok);
	for (int i = 0; i < 2; i++)
		CHECK_INT(req(NULL, "GET", target, NULL, NULL), 200);
	n = track_events("message.opened", "", &v);
	CHECK_INT(n, 2);
	if (n == 2) {
		json_t *d0 = detail_of(&v[0]), *d1 = detail_of(&v[1]);
		CHECK(json_is_true(json_object_get(d0, "first")));
		CHECK(json_is_false(json_object_get(d1, "first")));
		CHECK(json_is_true(json_object_get(d0, "machine"))); /* no User-Agent */
		json_decref(d0);
		json_decref(d1);
	}
	store_event_rows_free(&v, n);

	/* a verified token of a message without a record still answers */
	CHECK_INT(track_token(key, "msg_gone", 0, TRACK_LINK_OPEN, tok), 0);
	(void)snprintf(target, sizeof target, "/t/o/%s", tok);
	req_raw(api, NULL, "GET", target, NULL, NULL, &a); /* logs an error line */
	CHECK_INT(a.status, 200);
	buf_deinit(&a.body);
}

static void
test_route_tables(void)
{
	CHECK_INT(http_routes_events_n, 1);
	CHECK_INT(http_routes_webhooks_n, 5);
	CHECK_INT(http_routes_suppressions_n, 4);
	CHECK_INT(http_routes_track_n, 2);
	for (size_t i = 0; i < http_routes_track_n; i++)
		CHECK(http_routes_track[i].flags & HTTP_ROUTE_NOAUTH);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	if (auth_init(1) < 0)
		return 1;
	setup();
	RUN(test_route_tables);
	RUN(test_events);
	RUN(test_webhooks);
	RUN(test_suppressions);
	RUN(test_domain_tracking);
	RUN(test_tracking);
	teardown();
	return test_done("http_routes_events");
}
