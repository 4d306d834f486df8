/* Tests of the template, API key and queue routes (routes_templates.c, routes_apikeys.c,
 * routes_queue.c) through http_api_handle on a real store in a temporary directory: every route
 * with its success and error answers, template syntax errors with their position, rendering
 * with and without HTML escaping and the missing names, a key's whole life (created, used,
 * revoked, refused), the scope of a domain key, and the queue commands on rows made with
 * store_deliver. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "http/http_private.h"
#include "http/http_test.h"
#include "test.h"
#include "tmpl/tmpl.h"
#include "util/log.h"
#include "util/xalloc.h"

static char tmpdir[64];
static struct store *st;
static struct http_api *api;
static const struct http_hooks hooks; /* none of these routes uses a hook */
static char admin_tok[128], dom_tok[128];

static void
setup(void)
{
	static const char *const domains[] = {"example.com", "other.test", NULL};
	st = http_test_store_open(tmpdir, sizeof tmpdir, "routes-misc", domains);
	if (http_test_make_key(st, NULL, 1000, admin_tok) == 0 ||
	    http_test_make_key(st, "example.com", 1000, dom_tok) == 0)
		exit(1);
	struct http_limits lim = {0};
	api = http_api_new(st, &hooks, &lim);
}

static void
teardown(void)
{
	http_test_teardown(&api, &st, tmpdir);
}

/* One request: target may carry "?k=v&k=v" (no percent-encoding); ctype NULL with a body means
 * application/json. Returns the status; the parsed body (or NULL) into *j_r when j_r. */
static unsigned
req_ct(const char *tok, const char *method, const char *target, const char *ctype, const char *body,
       json_t **j_r)
{
	struct http_test_req rq = {
	    .tok = tok, .method = method, .target = target, .ctype = ctype, .body = body};
	return http_test_call(api, &rq, j_r);
}

static unsigned
req(const char *tok, const char *method, const char *target, const char *body, json_t **j_r)
{
	return req_ct(tok, method, target, NULL, body, j_r);
}

/* The status, checking the error code (and field when not NULL) of an error answer. */
static unsigned
req_err(const char *tok, const char *method, const char *target, const char *body, const char *code,
        const char *field)
{
	struct http_test_req rq = {.tok = tok, .method = method, .target = target, .body = body};
	return http_test_err(api, &rq, code, field);
}

#define jstr http_test_jstr

static const char *
err_msg(const json_t *j)
{
	return jstr(json_object_get(j, "error"), "message");
}

/* ---- templates ---- */

#define T_BASE "/api/v1/templates"

static void
test_template_crud(void)
{
	json_t *j;
	/* authentication and scope come first */
	CHECK_INT(req_err(NULL, "GET", T_BASE, NULL, "unauthorized", NULL), 401);
	CHECK_INT(req_err("lr_nonsense", "GET", T_BASE, NULL, "unauthorized", NULL), 401);
	CHECK_INT(req_err(admin_tok, "GET", T_BASE, NULL, "missing_field", "domain"), 422);
	CHECK_INT(req_err(admin_tok, "GET", T_BASE "?domain=nope.test", NULL, "not_found", NULL),
	          404);
	CHECK_INT(req_err(dom_tok, "GET", T_BASE "?domain=other.test", NULL, "forbidden", NULL),
	          403);
	CHECK_INT(req_err(dom_tok, "POST", T_BASE "?domain=other.test", "{\"name\":\"x\"}",
	                  "forbidden", NULL),
	          403);
	CHECK_INT(
	    req_err(dom_tok, "GET", T_BASE "/welcome?domain=other.test", NULL, "forbidden", NULL),
	    403);
	CHECK_INT(req(dom_tok, "GET", T_BASE, NULL, &j), 200);
	CHECK_INT(json_array_size(json_object_get(j, "data")), 0);
	json_decref(j);

	/* create */
	const char *welcome = "{\"name\":\"welcome\",\"subject\":\"Hi {{name}}\","
	                      "\"text\":\"Hello {{name}}!\",\"html\":\"<p>Hello {{name}}</p>\"}";
	CHECK_INT(req(admin_tok, "POST", T_BASE "?domain=example.com", welcome, &j), 201);
	CHECK_STR(jstr(j, "name"), "welcome");
	CHECK_STR(jstr(j, "subject"), "Hi {{name}}");
	CHECK_STR(jstr(j, "text"), "Hello {{name}}!");
	CHECK_STR(jstr(j, "html"), "<p>Hello {{name}}</p>");
	CHECK(jstr(j, "created") != NULL && jstr(j, "updated") != NULL);
	json_decref(j);
	CHECK_INT(req_err(dom_tok, "POST", T_BASE, welcome, "conflict", NULL), 409);
	CHECK_INT(req(dom_tok, "POST", T_BASE, "{\"name\":\"a.b-C_9\",\"html\":\"<b>x</b>\"}", &j),
	          201);
	CHECK(json_is_null(json_object_get(j, "text")));
	CHECK(json_is_null(json_object_get(j, "subject")));
	json_decref(j);

	/* bad bodies */
	CHECK_INT(
	    req_ct(admin_tok, "POST", T_BASE "?domain=example.com", "text/plain", welcome, NULL),
	    415);
	CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=example.com",
	                  "{\"name\":", "invalid_json", NULL),
	          400);
	CHECK_INT(
	    req_err(admin_tok, "POST", T_BASE "?domain=example.com", "[]", "invalid_type", NULL),
	    422);
	CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=example.com",
	                  "{\"name\":\"x\",\"text\":\"t\",\"body\":\"b\"}", "unknown_field",
	                  "body"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=example.com", "{\"text\":\"t\"}",
	                  "missing_field", "name"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=example.com",
	                  "{\"name\":\"bad name\",\"text\":\"t\"}", "invalid", "name"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=example.com",
	                  "{\"name\":\"x\",\"subject\":\"s\"}", "missing_field", "text"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=example.com",
	                  "{\"name\":\"x\",\"text\":\"\",\"html\":null}", "missing_field", "text"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=example.com",
	                  "{\"name\":\"x\",\"text\":5}", "invalid_type", "text"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=nope.test",
	                  "{\"name\":\"x\",\"text\":\"t\"}", "not_found", NULL),
	          404);
	{
		/* a part above TMPL_SOURCE_MAX */
		size_t n = TMPL_SOURCE_MAX + 1;
		char *big = xmalloc(n + 64);
		int w = snprintf(big, 64, "{\"name\":\"big\",\"text\":\"");
		memset(big + w, 'a', n);
		memcpy(big + w + n, "\"}", 3);
		CHECK_INT(req_err(admin_tok, "POST", T_BASE "?domain=example.com", big, "too_long",
		                  "text"),
		          422);
		free(big);
	}

	/* list, get */
	CHECK_INT(req(admin_tok, "GET", T_BASE "?domain=example.com", NULL, &j), 200);
	json_t *data = json_object_get(j, "data");
	CHECK_INT(json_array_size(data), 2);
	CHECK_STR(jstr(json_array_get(data, 0), "name"), "a.b-C_9");
	CHECK_STR(jstr(json_array_get(data, 1), "name"), "welcome");
	CHECK(json_is_null(json_object_get(j, "next_cursor")));
	json_decref(j);
	CHECK_INT(req(admin_tok, "GET", T_BASE "?domain=other.test", NULL, &j), 200);
	CHECK_INT(json_array_size(json_object_get(j, "data")), 0);
	json_decref(j);
	CHECK_INT(req(dom_tok, "GET", T_BASE "?limit=1", NULL, &j), 200);
	CHECK_INT(json_array_size(json_object_get(j, "data")), 1);
	CHECK(jstr(j, "next_cursor") != NULL);
	json_decref(j);
	CHECK_INT(req(dom_tok, "GET", T_BASE "/welcome", NULL, &j), 200);
	CHECK_STR(jstr(j, "text"), "Hello {{name}}!");
	json_decref(j);
	CHECK_INT(req_err(dom_tok, "GET", T_BASE "/nope", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(dom_tok, "GET", T_BASE "/bad name", NULL, "not_found", NULL), 404);
	CHECK_INT(
	    req_err(admin_tok, "GET", T_BASE "/welcome?domain=other.test", NULL, "not_found", NULL),
	    404);

	/* update */
	CHECK_INT(
	    req(dom_tok, "PATCH", T_BASE "/welcome", "{\"subject\":null,\"text\":\"Bye\"}", &j),
	    200);
	CHECK(json_is_null(json_object_get(j, "subject")));
	CHECK_STR(jstr(j, "text"), "Bye");
	CHECK_STR(jstr(j, "html"), "<p>Hello {{name}}</p>");
	json_decref(j);
	CHECK_INT(req(dom_tok, "PATCH", T_BASE "/welcome", "{}", &j), 200);
	CHECK_STR(jstr(j, "text"), "Bye");
	json_decref(j);
	CHECK_INT(req_err(dom_tok, "PATCH", T_BASE "/welcome", "{\"text\":null,\"html\":\"\"}",
	                  "missing_field", "text"),
	          422);
	CHECK_INT(req_err(dom_tok, "PATCH", T_BASE "/welcome", "{\"name\":\"x\"}", "unknown_field",
	                  "name"),
	          422);
	CHECK_INT(req_err(dom_tok, "PATCH", T_BASE "/nope", "{\"text\":\"t\"}", "not_found", NULL),
	          404);
	CHECK_INT(req_ct(dom_tok, "PATCH", T_BASE "/welcome", "text/plain", "{}", NULL), 415);
	CHECK_INT(
	    req(dom_tok, "PATCH", T_BASE "/a.b-C_9", "{\"html\":null,\"text\":\"plain\"}", &j),
	    200);
	CHECK(json_is_null(json_object_get(j, "html")));
	CHECK_STR(jstr(j, "text"), "plain");
	json_decref(j);

	/* delete */
	CHECK_INT(req(dom_tok, "DELETE", T_BASE "/a.b-C_9", NULL, &j), 204);
	CHECK(j == NULL);
	CHECK_INT(req_err(dom_tok, "DELETE", T_BASE "/a.b-C_9", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(dom_tok, "DELETE", T_BASE "/welcome?domain=other.test", NULL, "forbidden",
	                  NULL),
	          403);
	CHECK_INT(req_err(dom_tok, "PUT", T_BASE "/welcome", "{}", "method_not_allowed", NULL),
	          405);
}

static void
test_template_syntax(void)
{
	json_t *j;
	/* {{/b}} starts at line 2, column 4 */
	CHECK_INT(req(dom_tok, "POST", T_BASE, "{\"name\":\"s1\",\"text\":\"ab\\ncd {{/b}}\"}", &j),
	          422);
	json_t *e = json_object_get(j, "error");
	CHECK_STR(jstr(e, "code"), "template_syntax");
	CHECK_STR(jstr(e, "field"), "text");
	CHECK(strncmp(err_msg(j) ? err_msg(j) : "", "line 2, column 4: ", 18) == 0);
	json_decref(j);
	/* in the html part: the {{/b}} closing {{#a}} at line 3, column 10 */
	CHECK_INT(req(dom_tok, "POST", T_BASE,
	              "{\"name\":\"s2\",\"text\":\"ok\",\"html\":\"<p>\\n\\n  {{#a}}x{{/b}}\"}",
	              &j),
	          422);
	e = json_object_get(j, "error");
	CHECK_STR(jstr(e, "code"), "template_syntax");
	CHECK_STR(jstr(e, "field"), "html");
	CHECK(strncmp(err_msg(j) ? err_msg(j) : "", "line 3, column 10: ", 19) == 0);
	json_decref(j);
	/* the subject is checked too; an unterminated tag */
	CHECK_INT(req(dom_tok, "POST", T_BASE,
	              "{\"name\":\"s3\",\"text\":\"ok\",\"subject\":\"x {{a\"}", &j),
	          422);
	e = json_object_get(j, "error");
	CHECK_STR(jstr(e, "code"), "template_syntax");
	CHECK_STR(jstr(e, "field"), "subject");
	CHECK(strncmp(err_msg(j) ? err_msg(j) : "", "line 1, column ", 15) == 0);
	json_decref(j);
	/* nothing was stored */
	CHECK_INT(req_err(dom_tok, "GET", T_BASE "/s1", NULL, "not_found", NULL), 404);
	/* and PATCH checks the same way */
	CHECK_INT(req(dom_tok, "POST", T_BASE, "{\"name\":\"s4\",\"text\":\"ok\"}", NULL), 201);
	CHECK_INT(req(dom_tok, "PATCH", T_BASE "/s4", "{\"html\":\"{{#x}}\\n{{/y}}\"}", &j), 422);
	e = json_object_get(j, "error");
	CHECK_STR(jstr(e, "code"), "template_syntax");
	CHECK_STR(jstr(e, "field"), "html");
	CHECK(strncmp(err_msg(j) ? err_msg(j) : "", "line 2, column 1: ", 18) == 0);
	json_decref(j);
	CHECK_INT(req(dom_tok, "GET", T_BASE "/s4", NULL, &j), 200);
	CHECK(json_is_null(json_object_get(j, "html")));
	json_decref(j);
	CHECK_INT(req(dom_tok, "DELETE", T_BASE "/s4", NULL, NULL), 204);
}

static void
test_template_render(void)
{
	json_t *j;
	CHECK_INT(req(dom_tok, "POST", T_BASE,
	              "{\"name\":\"r\",\"subject\":\"For {{c}}\",\"text\":\"Hi {{name}} {{a}}\","
	              "\"html\":\"<p>{{name}} {{{name}}} {{a}} {{b}} {{c}}</p>\"}",
	              NULL),
	          201);
	CHECK_INT(req(dom_tok, "POST", T_BASE "/r/render",
	              "{\"variables\":{\"name\":\"<b>&\\\"'\"}}", &j),
	          200);
	CHECK_STR(jstr(j, "subject"), "For ");
	CHECK_STR(jstr(j, "text"), "Hi <b>&\"' ");
	CHECK_STR(jstr(j, "html"), "<p>&lt;b&gt;&amp;&quot;&#39; <b>&\"'   </p>");
	json_t *m = json_object_get(j, "missing");
	CHECK_INT(json_array_size(m), 3);
	CHECK_STR(json_string_value(json_array_get(m, 0)), "c");
	CHECK_STR(json_string_value(json_array_get(m, 1)), "a");
	CHECK_STR(json_string_value(json_array_get(m, 2)), "b");
	json_decref(j);

	CHECK_INT(req(dom_tok, "POST", T_BASE "/r/render",
	              "{\"variables\":{\"name\":\"n\",\"a\":1,\"b\":true,\"c\":\"x\"}}", &j),
	          200);
	CHECK_STR(jstr(j, "subject"), "For x");
	CHECK_STR(jstr(j, "text"), "Hi n 1");
	CHECK_INT(json_array_size(json_object_get(j, "missing")), 0);
	json_decref(j);

	/* no variables at all: everything missing; a template without html gives null */
	CHECK_INT(
	    req(dom_tok, "POST", T_BASE, "{\"name\":\"t\",\"text\":\"{{x}}{{x}}{{y.z}}\"}", NULL),
	    201);
	CHECK_INT(req(dom_tok, "POST", T_BASE "/t/render", "{}", &j), 200);
	CHECK(json_is_null(json_object_get(j, "html")));
	CHECK(json_is_null(json_object_get(j, "subject")));
	CHECK_STR(jstr(j, "text"), "");
	m = json_object_get(j, "missing");
	CHECK_INT(json_array_size(m), 2);
	CHECK_STR(json_string_value(json_array_get(m, 0)), "x");
	CHECK_STR(json_string_value(json_array_get(m, 1)), "y.z");
	json_decref(j);
	CHECK_INT(req(dom_tok, "POST", T_BASE "/t/render", "{\"variables\":null}", NULL), 200);

	CHECK_INT(req_err(dom_tok, "POST", T_BASE "/t/render", "{\"variables\":[1]}",
	                  "invalid_type", "variables"),
	          422);
	CHECK_INT(
	    req_err(dom_tok, "POST", T_BASE "/t/render", "{\"vars\":{}}", "unknown_field", "vars"),
	    422);
	CHECK_INT(req_err(dom_tok, "POST", T_BASE "/nope/render", "{}", "not_found", NULL), 404);
	CHECK_INT(
	    req_err(dom_tok, "POST", T_BASE "/t/render?domain=other.test", "{}", "forbidden", NULL),
	    403);
	CHECK_INT(req_ct(dom_tok, "POST", T_BASE "/t/render", "text/plain", "{}", NULL), 415);
	CHECK_INT(req(admin_tok, "POST", T_BASE "/t/render?domain=example.com", "{}", NULL), 200);

	/* output above TMPL_OUTPUT_MAX: 2000 times 8 KiB */
	{
		struct buf b;
		buf_init(&b, 0);
		(void)buf_append_str(&b, "{\"name\":\"huge\",\"html\":\"{{#l}}");
		for (int i = 0; i < 8192; i++)
			(void)buf_append_byte(&b, 'x');
		(void)buf_append_str(&b, "{{/l}}\"}");
		CHECK_INT(req(dom_tok, "POST", T_BASE, buf_cstr(&b), NULL), 201);
		buf_reset(&b);
		(void)buf_append_str(&b, "{\"variables\":{\"l\":[1");
		for (int i = 1; i < 2000; i++)
			(void)buf_append_str(&b, ",1");
		(void)buf_append_str(&b, "]}}");
		CHECK_INT(req_err(dom_tok, "POST", T_BASE "/huge/render", buf_cstr(&b), "too_long",
		                  "html"),
		          422);
		buf_deinit(&b);
	}
}

/* ---- API keys ---- */

#define K_BASE "/api/v1/apikeys"

static void
test_apikeys(void)
{
	json_t *j;
	/* domain keys may not touch keys at all */
	CHECK_INT(req_err(dom_tok, "GET", K_BASE, NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(dom_tok, "POST", K_BASE, "{}", "forbidden", NULL), 403);
	CHECK_INT(req_err(dom_tok, "GET", K_BASE "/1", NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(dom_tok, "DELETE", K_BASE "/1", NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(NULL, "GET", K_BASE, NULL, "unauthorized", NULL), 401);

	CHECK_INT(req(admin_tok, "GET", K_BASE, NULL, &j), 200);
	json_t *data = json_object_get(j, "data");
	CHECK_INT(json_array_size(data), 2);
	CHECK_STR(jstr(json_array_get(data, 0), "scope"), "admin");
	CHECK_STR(jstr(json_array_get(data, 1), "scope"), "example.com");
	CHECK(json_is_null(json_object_get(json_array_get(data, 0), "revoked")));
	CHECK(json_object_get(json_array_get(data, 0), "token") == NULL);
	json_decref(j);

	/* create a domain key: the token is shown once and works */
	CHECK_INT(req(admin_tok, "POST", K_BASE, "{\"name\":\"ci\",\"domain\":\"Other.Test\"}", &j),
	          201);
	const char *t = jstr(j, "token");
	char tok[128] = "";
	CHECK(t != NULL && strncmp(t, "lr_", 3) == 0);
	if (t)
		(void)snprintf(tok, sizeof tok, "%s", t);
	CHECK(strncmp(tok, jstr(j, "prefix") ? jstr(j, "prefix") : "", 12) == 0);
	CHECK_STR(jstr(j, "name"), "ci");
	CHECK_STR(jstr(j, "scope"), "other.test");
	CHECK(jstr(j, "created") != NULL);
	CHECK(json_is_null(json_object_get(j, "revoked")));
	json_int_t id = json_integer_value(json_object_get(j, "id"));
	CHECK(id > 0);
	json_decref(j);
	CHECK_INT(req(tok, "GET", T_BASE, NULL, NULL), 200);
	CHECK_INT(req_err(tok, "GET", T_BASE "?domain=example.com", NULL, "forbidden", NULL), 403);

	char path[64];
	(void)snprintf(path, sizeof path, K_BASE "/%lld", (long long)id);
	CHECK_INT(req(admin_tok, "GET", path, NULL, &j), 200);
	CHECK_STR(jstr(j, "scope"), "other.test");
	CHECK(json_object_get(j, "token") == NULL);
	json_decref(j);

	/* an admin key without name */
	CHECK_INT(req(admin_tok, "POST", K_BASE, "{}", &j), 201);
	CHECK_STR(jstr(j, "scope"), "admin");
	CHECK_STR(jstr(j, "name"), "");
	char tok2[128] = "";
	if (jstr(j, "token"))
		(void)snprintf(tok2, sizeof tok2, "%s", jstr(j, "token"));
	json_int_t id2 = json_integer_value(json_object_get(j, "id"));
	json_decref(j);
	CHECK_INT(req(tok2, "GET", K_BASE, NULL, NULL), 200);

	/* bad input */
	CHECK_INT(
	    req_err(admin_tok, "POST", K_BASE, "{\"domain\":\"nope.test\"}", "invalid", "domain"),
	    422);
	CHECK_INT(req_err(admin_tok, "POST", K_BASE, "{\"domain\":\"not a domain\"}", "invalid",
	                  "domain"),
	          422);
	CHECK_INT(req_err(admin_tok, "POST", K_BASE, "{\"domain\":7}", "invalid_type", "domain"),
	          422);
	CHECK_INT(
	    req_err(admin_tok, "POST", K_BASE, "{\"scope\":\"admin\"}", "unknown_field", "scope"),
	    422);
	CHECK_INT(req_err(admin_tok, "POST", K_BASE, "{\"name\":\"a\\u0001\"}", "invalid", "name"),
	          422);
	CHECK_INT(req_ct(admin_tok, "POST", K_BASE, "text/plain", "{}", NULL), 415);
	CHECK_INT(req_err(admin_tok, "GET", K_BASE "/999", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "GET", K_BASE "/0", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "GET", K_BASE "/abc", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "GET", K_BASE "/-1", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "DELETE", K_BASE "/999", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "DELETE", K_BASE "/x1", NULL, "not_found", NULL), 404);

	/* revoke: the token stops working, the key stays listed */
	CHECK_INT(req(admin_tok, "DELETE", path, NULL, &j), 204);
	CHECK(j == NULL);
	CHECK_INT(req_err(tok, "GET", T_BASE, NULL, "unauthorized", NULL), 401);
	CHECK_INT(req(admin_tok, "GET", path, NULL, &j), 200);
	CHECK(jstr(j, "revoked") != NULL);
	json_decref(j);
	CHECK_INT(req(admin_tok, "DELETE", path, NULL, NULL), 204); /* again: still revoked */
	CHECK_INT(req(admin_tok, "GET", K_BASE, NULL, &j), 200);
	CHECK_INT(json_array_size(json_object_get(j, "data")), 4);
	json_decref(j);

	/* an admin key may revoke itself; its next request is 401 */
	(void)snprintf(path, sizeof path, K_BASE "/%lld", (long long)id2);
	CHECK_INT(req(tok2, "DELETE", path, NULL, NULL), 204);
	CHECK_INT(req_err(tok2, "GET", K_BASE, NULL, "unauthorized", NULL), 401);
}

/* ---- queue ---- */

#define Q_BASE "/api/v1/queue"

static int64_t
enqueue(const char *body, const struct store_remote_rcpt *r, size_t n)
{
	struct store_delivery d = {
	    .body = (const unsigned char *)body,
	    .body_len = strlen(body),
	    .internal_date = 1000,
	    .mail_from = "alice@example.com",
	    .auth_user = "alice@example.com",
	    .queue_header = "Received: x\r\n",
	    .queue_header_len = 13,
	    .remote = r,
	    .n_remote = n,
	    .return_path = "bounce+tok1@example.com",
	};
	int64_t id = 0;
	struct err err = {0};
	if (store_deliver(st, &d, &id, &err) < 0)
		fprintf(stderr, "  store_deliver: %s\n", err.msg);
	return id;
}

/* The number of rows of GET target (a list). */
static long long
list_len(const char *target)
{
	return http_test_list_len(api, admin_tok, target);
}

/* POST target; the "changed" count or -1. */
static long long
command(const char *target)
{
	json_t *j;
	if (req(admin_tok, "POST", target, NULL, &j) != 200)
		return -1;
	long long n = json_integer_value(json_object_get(j, "changed"));
	json_decref(j);
	return n;
}

static void
test_queue(void)
{
	json_t *j;
	const struct store_remote_rcpt r1[] = {
	    {.address = "a@remote.test"}, {.address = "b@remote.test"}, {.address = "c@far.test"}};
	const struct store_remote_rcpt r2[] = {{.address = "d@far.test"}};
	int64_t q1 = enqueue("hello\r\n", r1, 3), q2 = enqueue("bye\r\n", r2, 1);
	CHECK(q1 > 0 && q2 > q1);

	/* domain keys get nothing */
	CHECK_INT(req_err(dom_tok, "GET", Q_BASE, NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(dom_tok, "GET", Q_BASE "/1", NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(dom_tok, "POST", Q_BASE "/retry", NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(dom_tok, "POST", Q_BASE "/1/hold", NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(dom_tok, "DELETE", Q_BASE "/1", NULL, "forbidden", NULL), 403);
	CHECK_INT(req_err(NULL, "GET", Q_BASE, NULL, "unauthorized", NULL), 401);

	/* list */
	CHECK_INT(req(admin_tok, "GET", Q_BASE, NULL, &j), 200);
	json_t *data = json_object_get(j, "data");
	CHECK_INT(json_array_size(data), 4);
	json_t *it = json_array_get(data, 0);
	CHECK_INT(json_integer_value(json_object_get(it, "message_id")), q1);
	CHECK(json_integer_value(json_object_get(it, "id")) > 0);
	CHECK_STR(jstr(it, "recipient"), "a@remote.test");
	CHECK_STR(jstr(it, "domain"), "remote.test");
	CHECK_STR(jstr(it, "state"), "queued");
	CHECK_INT(json_integer_value(json_object_get(it, "attempts")), 0);
	CHECK(jstr(it, "next_attempt") != NULL);
	CHECK(json_is_null(json_object_get(it, "last_attempt")));
	CHECK(json_is_null(json_object_get(it, "last_error")));
	CHECK(jstr(it, "created") != NULL);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(data, 3), "message_id")), q2);
	json_decref(j);
	CHECK_INT(list_len(Q_BASE "?domain=far.test"), 2);
	CHECK_INT(list_len(Q_BASE "?domain=FAR.test&state=queued"), 2);
	CHECK_INT(list_len(Q_BASE "?state=held"), 0);
	CHECK_INT(list_len(Q_BASE "?limit=3"), 3);
	CHECK_INT(req_err(admin_tok, "GET", Q_BASE "?state=bogus", NULL, "invalid", "state"), 422);
	CHECK_INT(req_err(admin_tok, "GET", Q_BASE "?domain=a..b", NULL, "invalid", "domain"), 422);

	/* show */
	char p[96];
	(void)snprintf(p, sizeof p, Q_BASE "/%lld", (long long)q1);
	CHECK_INT(req(admin_tok, "GET", p, NULL, &j), 200);
	CHECK_INT(json_integer_value(json_object_get(j, "id")), q1);
	CHECK_STR(jstr(j, "from"), "alice@example.com");
	CHECK_STR(jstr(j, "return_path"), "bounce+tok1@example.com");
	CHECK_INT(json_integer_value(json_object_get(j, "size")), 13 + 7);
	CHECK(jstr(j, "created") != NULL);
	json_t *rc = json_object_get(j, "recipients");
	CHECK_INT(json_array_size(rc), 3);
	it = json_array_get(rc, 2);
	CHECK_STR(jstr(it, "recipient"), "c@far.test");
	CHECK(json_is_null(json_object_get(it, "delivered_at")));
	CHECK(json_is_null(json_object_get(it, "last_dsn")));
	CHECK(json_is_null(json_object_get(it, "relay")));
	CHECK(json_object_get(it, "state") != NULL);
	json_decref(j);
	CHECK_INT(req_err(admin_tok, "GET", Q_BASE "/9999", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "GET", Q_BASE "/0", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "GET", Q_BASE "/1x", NULL, "not_found", NULL), 404);
	CHECK_INT(
	    req_err(admin_tok, "GET", Q_BASE "/99999999999999999999", NULL, "not_found", NULL),
	    404);

	/* hold, release, retry */
	char hold[112], rel[112], retry[112];
	(void)snprintf(hold, sizeof hold, "%s/hold", p);
	(void)snprintf(rel, sizeof rel, "%s/release", p);
	(void)snprintf(retry, sizeof retry, "%s/retry", p);
	CHECK_INT(command(hold), 3);
	CHECK_INT(list_len(Q_BASE "?state=held"), 3);
	CHECK_INT(command(hold), 0);
	CHECK_INT(command(retry), 0); /* held rows are not retried */
	CHECK_INT(command(rel), 3);
	CHECK_INT(list_len(Q_BASE "?state=held"), 0);
	CHECK_INT(command(retry), 3);
	CHECK_INT(command(Q_BASE "/retry"), 4);
	CHECK_INT(req_err(admin_tok, "POST", Q_BASE "/9999/hold", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "POST", Q_BASE "/9999/release", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "POST", Q_BASE "/0/retry", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "POST", Q_BASE "/abc/retry", NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "PATCH", Q_BASE "/1", "{}", "method_not_allowed", NULL), 405);

	/* drop */
	CHECK_INT(req(admin_tok, "DELETE", p, NULL, &j), 204);
	CHECK(j == NULL);
	CHECK_INT(req_err(admin_tok, "GET", p, NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "DELETE", p, NULL, "not_found", NULL), 404);
	CHECK_INT(req_err(admin_tok, "DELETE", Q_BASE "/zero", NULL, "not_found", NULL), 404);
	CHECK_INT(list_len(Q_BASE), 1);
}

/* Every route of these tables is reachable through the router (none shadowed by another). */
static void
test_route_tables(void)
{
	const struct {
		const struct http_route *v;
		size_t n;
	} t[] = {{http_routes_templates, http_routes_templates_n},
	         {http_routes_apikeys, http_routes_apikeys_n},
	         {http_routes_queue, http_routes_queue_n}};
	size_t total = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		for (size_t k = 0; k < t[i].n; k++, total++) {
			bool found = false;
			for (size_t r = 0; r < http_route_count() && !found; r++)
				found = http_route_at(r) == &t[i].v[k];
			CHECK(found);
			if (strncmp(t[i].v[k].pattern, "/api/v1/templates", 17) != 0)
				CHECK(t[i].v[k].flags & HTTP_ROUTE_ADMIN);
		}
	CHECK_INT(total, 6 + 4 + 7);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	if (auth_init(1) < 0)
		return 1;
	setup();
	RUN(test_route_tables);
	RUN(test_template_crud);
	RUN(test_template_syntax);
	RUN(test_template_render);
	RUN(test_apikeys);
	RUN(test_queue);
	teardown();
	return test_done("http_routes_misc");
}
