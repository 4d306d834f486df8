/* libFuzzer target: REST API request decoding (issue 6) through http_api_handle: the JSON body
 * parser with its typed member checks, the address/recipient parsing, templates, attachments,
 * composition with GMime, the raw-message checks and the answers. A real store lives in a
 * temporary directory for the whole run (one admin key, one domain with an account); the submit
 * hook checks what would be sent and stores nothing, and routes that hash passwords (Argon2id,
 * 64 MiB each) are not exercised. data[0] picks the route; the rest is the body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/passwd.h"
#include "http/http.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *st;
static struct http_api *api;
static char auth_header[128];
static char dir[] = "/tmp/lightr-fuzz-api.XXXXXX";

/* At exit: the store and its directory go. */
static void
fz_cleanup(void)
{
	http_api_free(&api);
	store_close(&st);
	char path[96];
	static const char *const files[] = {"fuzz.db", "fuzz.db-wal", "fuzz.db-shm"};
	for (size_t i = 0; i < 3; i++) {
		(void)snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		(void)unlink(path);
	}
	(void)rmdir(dir);
}

static int
fz_submit(void *ctx, const struct http_submit *s, int64_t *queue_id_r, struct err *err)
{
	(void)ctx;
	(void)err;
	ASSERT(s->from && strchr(s->from, '@') && s->api);
	ASSERT(s->api->response && s->api->public_id);
	for (size_t i = 0; i + 1 < s->len; i++) /* CRLF lines only */
		ASSERT(s->msg[i] != '\n' || (i > 0 && s->msg[i - 1] == '\r'));
	*queue_id_r = 0;
	return 0;
}

static int
fz_keys(void *ctx, const char *domain, struct err *err)
{
	(void)ctx;
	(void)domain;
	(void)err;
	return 0;
}

static int
fz_generate(void *ctx, const char *domain, const char *algo, unsigned bits, const char *selector,
            char *selector_r, struct err *err)
{
	(void)ctx;
	(void)domain;
	(void)algo;
	(void)bits;
	(void)err;
	(void)snprintf(selector_r, 64, "%s", selector ? selector : "s1");
	return 0;
}

static int
fz_rotate(void *ctx, const char *domain, unsigned keep_days, struct err *err)
{
	(void)ctx;
	(void)domain;
	(void)keep_days;
	(void)err;
	return 0;
}

static const struct http_hooks hooks = {
    .submit = fz_submit,
    .dkim_default_keys = fz_keys,
    .dkim_generate = fz_generate,
    .dkim_rotate = fz_rotate,
};

static void
fz_init(void)
{
	char path[64];
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(fz_cleanup);
	(void)snprintf(path, sizeof path, "%s/fuzz.db", dir);
	log_set_level(LOG_ERROR);
	struct err err;
	if (store_open(path, &st, &err) < 0 || store_domain_add(st, "f.example", &err) < 0 ||
	    store_account_add(st, "a@f.example", "x", 0, &err) < 0)
		abort();
	struct store_template t = {.domain = "f.example",
	                           .name = "t",
	                           .subject = "Hi {{name}}",
	                           .text = "{{#items}}- {{title}}\n{{/items}}",
	                           .html = "<p>{{name}}</p>"};
	if (store_template_add(st, &t, 1, &err) < 0)
		abort();
	char token[AUTH_APIKEY_TOKEN_SIZE], hash[65], prefix[AUTH_APIKEY_PREFIX_SIZE];
	auth_apikey_new(token, hash, prefix);
	if (store_apikey_add(st, hash, prefix, "fuzz", NULL, 1, NULL, &err) < 0)
		abort();
	(void)snprintf(auth_header, sizeof auth_header, "Bearer %s", token);
	struct http_limits lim = {.body_max = 64 * 1024, .send_max = 1024 * 1024};
	api = http_api_new(st, &hooks, &lim);
}

static const struct {
	const char *method, *path;
} routes[] = {
    {"POST", "/api/v1/messages"},
    {"POST", "/api/v1/messages/raw"},
    {"POST", "/api/v1/templates/t/render"},
    {"POST", "/api/v1/aliases"},
    {"PATCH", "/api/v1/templates/t"},
    {"POST", "/api/v1/domains/f.example/dkim"},
    {"POST", "/api/v1/domains/f.example/dkim/rotate"},
    {"GET", "/api/v1/accounts"},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (api == NULL)
		fz_init();
	if (size < 1)
		return 0;
	size_t r = data[0] % (sizeof routes / sizeof routes[0]);
	/* the query string for the templates routes and the list */
	struct http_kv q[2] = {{"domain", "f.example"}, {"limit", "2"}};
	struct http_request req = {
	    .method = routes[r].method,
	    .path = routes[r].path,
	    .query = q,
	    .n_query = 2,
	    .authorization = auth_header,
	    .content_type = "application/json",
	    .idempotency_key = (data[0] & 0x80) ? "fuzz-key" : NULL,
	    .body = data + 1,
	    .body_len = size - 1,
	    .client = "fuzz",
	};
	struct http_response resp;
	buf_init(&resp.body, 0);
	http_api_handle(api, &req, &resp);
	ASSERT(resp.status >= 200 && resp.status < 600);
	ASSERT(resp.body.len == 0 || resp.body.data[0] == '{');
	buf_deinit(&resp.body);
	return 0;
}
