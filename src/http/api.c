/* The REST API's router, authentication, scope checks and answers (http.h, http_private.h).
 *
 * A request is matched against one table of routes (the tables of routes_<resource>.c in
 * order); routes marked HTTP_ROUTE_NOAUTH answer without a key. Every other request under the
 * API needs a valid key before anything else is said about it: no key or a bad one is 401 even
 * for paths that do not exist, so that unauthenticated clients learn nothing. Then 404 (no such
 * path), 405 (path exists, not with this method), 403 (admin route, domain key), the handler. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/passwd.h"
#include "http_private.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/strconv.h"
#include "util/xalloc.h"

#define HTTP_CURSOR_MAX           600  /* hex of a key up to 299 bytes, plus the marker */
#define HTTP_AUTH_DELAY_MAX_MS    5000 /* the longest auth_gate delay slept in a request */
#define HTTP_AUTH_LOCKOUT_RETRY_S 60   /* Retry-After for a locked-out IP */
#define HTTP_IP_MAX               64   /* an IPv6 address as text, with room */

static void meta_healthz(struct http_ctx *c);
static void meta_openapi(struct http_ctx *c);

const struct http_route http_routes_meta[] = {
    {"GET", "/healthz", meta_healthz, HTTP_ROUTE_NOAUTH},
    {"GET", "/api/v1/openapi.json", meta_openapi, HTTP_ROUTE_NOAUTH},
};
const size_t http_routes_meta_n = sizeof http_routes_meta / sizeof http_routes_meta[0];

static const struct {
	const struct http_route *v;
	const size_t *n;
} route_tables[] = {
    {http_routes_meta, &http_routes_meta_n},
    {http_routes_domains, &http_routes_domains_n},
    {http_routes_accounts, &http_routes_accounts_n},
    {http_routes_templates, &http_routes_templates_n},
    {http_routes_apikeys, &http_routes_apikeys_n},
    {http_routes_messages, &http_routes_messages_n},
    {http_routes_queue, &http_routes_queue_n},
    {http_routes_events, &http_routes_events_n},
    {http_routes_webhooks, &http_routes_webhooks_n},
    {http_routes_suppressions, &http_routes_suppressions_n},
    {http_routes_track, &http_routes_track_n},
};

size_t
http_route_count(void)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof route_tables / sizeof route_tables[0]; i++)
		n += *route_tables[i].n;
	return n;
}

const struct http_route *
http_route_at(size_t i)
{
	for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++) {
		if (i < *route_tables[t].n)
			return &route_tables[t].v[i];
		i -= *route_tables[t].n;
	}
	return NULL;
}

struct http_api *
http_api_new(struct store *st, const struct http_hooks *hooks, const struct http_limits *lim)
{
	struct http_api *a = xcalloc(1, sizeof *a);
	a->st = st;
	a->hooks = hooks;
	a->lim = *lim;
	if (a->lim.body_max == 0)
		a->lim.body_max = HTTP_BODY_MAX_DEFAULT;
	if (a->lim.send_max == 0)
		a->lim.send_max = HTTP_SEND_MAX_DEFAULT;
	return a;
}

void
http_api_free(struct http_api **ap)
{
	struct http_api *a = *ap;
	if (a == NULL)
		return;
	*ap = NULL;
	http_messages_cleanup(a);
	free(a);
}

/* ---- matching ---- */

/* Does path match pattern? Fills params (copies, heap) when it does. */
static bool
route_match(const char *pattern, const char *path, char **params, size_t *n_params)
{
	size_t n = 0;
	const char *p = pattern, *s = path;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			goto fail;
		p++;
		s++;
		const char *pe = strchr(p, '/'), *se = strchr(s, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t slen = se ? (size_t)(se - s) : strlen(s);
		if (plen > 1 && p[0] == '{' && p[plen - 1] == '}') {
			if (slen == 0 || n == HTTP_PARAMS_MAX)
				goto fail;
			params[n++] = xstrndup(s, slen);
		} else if (plen != slen || memcmp(p, s, plen) != 0) {
			goto fail;
		}
		p += plen;
		s += slen;
	}
	if (*p || *s)
		goto fail;
	*n_params = n;
	return true;
fail:
	for (size_t i = 0; i < n; i++)
		free(params[i]);
	return false;
}

/* ---- authentication ---- */

/* The client's IP: req->client ("1.2.3.4:443", "[::1]:443", or a bare address) without the
 * port, into out. */
static void
api_client_ip(const char *client, char *out, size_t n)
{
	if (client == NULL || client[0] == '\0') {
		(void)snprintf(out, n, "-");
		return;
	}
	const char *end = NULL;
	if (client[0] == '[') {
		client++;
		end = strchr(client, ']');
	} else if (strchr(client, ':') == strrchr(client, ':')) {
		end = strchr(client, ':'); /* IPv4 with a port; a bare IPv6 has several */
	}
	size_t len = end ? (size_t)(end - client) : strlen(client);
	(void)snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), client);
}

/* Authentication failures per client IP (issue 8): auth_gate may ask for a delay (slept here,
 * at most HTTP_AUTH_DELAY_MAX_MS) or refuse a locked-out IP with 429 rate_limited and
 * Retry-After HTTP_AUTH_LOCKOUT_RETRY_S (the hook does not say how long the lockout lasts; a
 * client retrying earlier is refused again). 429 rather than 401: the key was not even checked,
 * and a client must not conclude that it is wrong. Returns -1 after answering. */
static int
api_auth_gate(struct http_ctx *c, const char *ip)
{
	if (c->hooks == NULL || c->hooks->auth_gate == NULL)
		return 0;
	int64_t ms = c->hooks->auth_gate(c->hooks->ctx, ip);
	if (ms < 0) {
		struct http_limit_verdict v = {.rule = "auth_failures",
		                               .limit = 0,
		                               .retry_after_s = HTTP_AUTH_LOCKOUT_RETRY_S};
		(void)snprintf(v.who, sizeof v.who, "%s", ip);
		(void)snprintf(v.text, sizeof v.text,
		               "too many failed authentications from %s; try again later", ip);
		return http_error_limited(c, &v);
	}
	if (ms > 0) {
		if (ms > HTTP_AUTH_DELAY_MAX_MS)
			ms = HTTP_AUTH_DELAY_MAX_MS;
		struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return 0;
}

static void
api_auth_result(struct http_ctx *c, const char *ip, bool ok)
{
	if (c->hooks && c->hooks->auth_result)
		c->hooks->auth_result(c->hooks->ctx, ip, ok);
}

/* The key's request budget (requests per key per second): 429 when over. */
static int
api_limit_request(struct http_ctx *c)
{
	struct http_limit_verdict v = {0};
	if (c->hooks == NULL || c->hooks->limit_request == NULL ||
	    c->hooks->limit_request(c->hooks->ctx, c->key_id, &v))
		return 0;
	return http_error_limited(c, &v);
}

static int
api_authenticate(struct http_ctx *c)
{
	const char *h = c->req->authorization;
	if (h == NULL)
		return http_error(c, 401, "unauthorized", NULL,
		                  "an API key is required: Authorization: Bearer lr_...");
	while (*h == ' ')
		h++;
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return http_error(c, 401, "unauthorized", NULL,
		                  "the Authorization header must be: Bearer <API key>");
	h += 7;
	while (*h == ' ')
		h++;
	size_t len = strlen(h);
	while (len > 0 && h[len - 1] == ' ')
		len--;
	char hash[65], ip[HTTP_IP_MAX];
	struct store_apikey k;
	struct err err;
	api_client_ip(c->req->client, ip, sizeof ip);
	if (api_auth_gate(c, ip) < 0)
		return -1;
	if (auth_apikey_hash(h, len, hash) < 0) {
		api_auth_result(c, ip, false);
		return http_error(c, 401, "unauthorized", NULL, "invalid or revoked API key");
	}
	if (store_apikey_lookup(c->st, hash, &k, &err) < 0) {
		if (err.code == STORE_ENOTFOUND) {
			api_auth_result(c, ip, false);
			return http_error(c, 401, "unauthorized", NULL,
			                  "invalid or revoked API key");
		}
		return http_store_error(c, &err, "api key lookup");
	}
	api_auth_result(c, ip, true);
	c->key_id = k.id;
	c->admin = k.domain == NULL;
	(void)snprintf(c->key_domain, sizeof c->key_domain, "%s", k.domain ? k.domain : "");
	store_apikey_deinit(&k);
	return api_limit_request(c);
}

/* ---- the request ---- */

static void
api_log(const struct http_ctx *c, int64_t start_ms)
{
	char m[16], p[200];
	log_info("http %s method=%s path=\"%s\" status=%u key=%lld client=%s ms=%lld",
	         c->request_id, log_escape(c->req->method, m, sizeof m),
	         log_escape(c->req->path, p, sizeof p), c->resp->status, (long long)c->key_id,
	         c->req->client ? c->req->client : "-", (long long)(clock_mono_ms() - start_ms));
}

void
http_api_handle(struct http_api *api, const struct http_request *req, struct http_response *resp)
{
	int64_t start = clock_mono_ms();
	struct http_ctx c = {.api = api,
	                     .st = api->st,
	                     .hooks = api->hooks,
	                     .req = req,
	                     .resp = resp,
	                     .now = clock_now()};
	memcpy(c.request_id, "req_", 4);
	rand_token(c.request_id + 4, 16);
	resp->status = 0;
	resp->content_type = "application/json";
	resp->retry_after[0] = resp->location[0] = '\0';
	resp->replayed = false;
	buf_reset(&resp->body);

	const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
	const struct http_route *found = NULL;
	bool path_known = false;
	size_t nr = http_route_count();
	for (size_t i = 0; i < nr && found == NULL; i++) {
		const struct http_route *r = http_route_at(i);
		char *params[HTTP_PARAMS_MAX];
		size_t np = 0;
		if (!route_match(r->pattern, req->path, params, &np))
			continue;
		if (strcmp(r->method, method) == 0) {
			found = r;
			memcpy(c.params, params, sizeof params);
			c.n_params = np;
		} else {
			path_known = true;
			for (size_t j = 0; j < np; j++)
				free(params[j]);
		}
	}
	if (found && (found->flags & HTTP_ROUTE_NOAUTH)) {
		found->fn(&c);
	} else if (api_authenticate(&c) < 0) {
		/* answered */
	} else if (found == NULL && path_known) {
		http_error(&c, 405, "method_not_allowed", NULL, "%s is not allowed on %s",
		           req->method, req->path);
	} else if (found == NULL) {
		http_error(&c, 404, "not_found", NULL, "no such API route");
	} else if ((found->flags & HTTP_ROUTE_ADMIN) && !c.admin) {
		http_error(&c, 403, "forbidden", NULL, "this needs an admin API key");
	} else {
		found->fn(&c);
	}
	if (!c.answered)
		http_error(&c, 500, "internal", NULL, "the request was not answered");
	for (size_t i = 0; i < c.n_params; i++)
		free(c.params[i]);
	if (strcmp(req->method, "HEAD") == 0)
		buf_reset(&resp->body);
	api_log(&c, start);
}

size_t
http_api_body_limit(const struct http_api *api, const char *method, const char *path)
{
	size_t nr = http_route_count();
	for (size_t i = 0; i < nr; i++) {
		const struct http_route *r = http_route_at(i);
		char *params[HTTP_PARAMS_MAX];
		size_t np = 0;
		if (!(r->flags & HTTP_ROUTE_SEND) || strcmp(r->method, method) != 0 ||
		    !route_match(r->pattern, path, params, &np))
			continue;
		for (size_t j = 0; j < np; j++)
			free(params[j]);
		return api->lim.send_max;
	}
	return api->lim.body_max;
}

/* ---- answering ---- */

static int
api_dump_cb(const char *p, size_t n, void *arg)
{
	return buf_append(arg, p, n);
}

void
http_reply(struct http_ctx *c, unsigned status, json_t *obj)
{
	c->answered = true;
	c->resp->status = status;
	buf_reset(&c->resp->body);
	if (obj) {
		if (json_dump_callback(obj, api_dump_cb, &c->resp->body,
		                       JSON_COMPACT | JSON_ENCODE_ANY) < 0) {
			buf_reset(&c->resp->body);
			c->resp->status = 500;
			(void)buf_append_str(&c->resp->body,
			                     "{\"error\":{\"code\":\"internal\",\"message\":\"the "
			                     "answer could not be encoded\"}}");
		}
		json_decref(obj);
	}
}

void
http_reply_raw(struct http_ctx *c, unsigned status, const char *content_type, const void *data,
               size_t len, const char *location)
{
	c->answered = true;
	c->resp->status = status;
	c->resp->content_type = content_type;
	buf_reset(&c->resp->body);
	if (len > 0 && buf_append(&c->resp->body, data, len) < 0) {
		http_error(c, 500, "internal", NULL, "answer too large");
		return;
	}
	if (location)
		(void)snprintf(c->resp->location, sizeof c->resp->location, "%s", location);
}

void
http_api_error(struct http_response *resp, unsigned status, const char *code, const char *message,
               const char *field)
{
	json_t *e = json_pack("{s:s,s:s}", "code", code, "message", message);
	if (e && field)
		json_object_set_new(e, "field", json_string(field));
	json_t *o = e ? json_pack("{s:o}", "error", e) : NULL;
	resp->status = status;
	resp->content_type = "application/json";
	buf_reset(&resp->body);
	if (o == NULL || json_dump_callback(o, api_dump_cb, &resp->body, JSON_COMPACT) < 0) {
		buf_reset(&resp->body);
		(void)buf_append_str(&resp->body,
		                     "{\"error\":{\"code\":\"internal\",\"message\":\"\"}}");
	}
	json_decref(o);
}

int
http_error(struct http_ctx *c, unsigned status, const char *code, const char *field,
           const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Messages may quote client input; jansson needs valid UTF-8. */
	json_t *t = json_string(msg);
	if (t == NULL)
		(void)snprintf(msg, sizeof msg, "%s", code);
	json_decref(t);
	http_api_error(c->resp, status, code, msg, field);
	c->answered = true;
	return -1;
}

int
http_error_limited(struct http_ctx *c, const struct http_limit_verdict *v)
{
	bool retry = v->retry_after_s > 0;
	json_t *lim = json_object();
	json_object_set_new(lim, "rule", http_json_strn(v->rule));
	json_object_set_new(lim, "who", http_json_strn(v->who));
	json_object_set_new(lim, "limit", json_integer((json_int_t)v->limit));
	json_object_set_new(lim, "retry_after",
	                    retry ? json_integer((json_int_t)v->retry_after_s) : json_null());
	json_t *msg = json_string(v->text);
	json_t *e = json_object();
	json_object_set_new(e, "code", json_string(retry ? "rate_limited" : "limit_exceeded"));
	json_object_set_new(e, "message", msg ? msg : json_string("rate limit reached"));
	json_object_set_new(e, "field", json_null());
	json_object_set_new(e, "limit", lim);
	http_reply(c, retry ? 429 : 422, json_pack("{s:o}", "error", e));
	if (retry)
		(void)snprintf(c->resp->retry_after, sizeof c->resp->retry_after, "%lld",
		               (long long)v->retry_after_s);
	return -1;
}

int
http_store_error(struct http_ctx *c, const struct err *err, const char *what)
{
	switch (err->code) {
	case STORE_ENOTFOUND:
		return http_error(c, 404, "not_found", NULL, "%s", err->msg);
	case STORE_EEXIST:
		return http_error(c, 409, "conflict", NULL, "%s", err->msg);
	case STORE_EBUSY:
		return http_error(c, 409, "conflict", NULL, "%s", err->msg);
	case STORE_EINVAL:
	case STORE_EOVERQUOTA:
		return http_error(c, 422, "invalid", NULL, "%s", err->msg);
	default: {
		char esc[300];
		log_error("http %s %s: %s", c->request_id, what,
		          log_escape(err->msg, esc, sizeof esc));
		return http_error(c, 500, "internal", NULL, "internal error (request %s)",
		                  c->request_id);
	}
	}
}

static void
api_cursor_encode(const char *key, char *out, size_t n)
{
	size_t len = strlen(key);
	if (2 * len + 2 > n)
		len = (n - 2) / 2;
	out[0] = 'c';
	hex_encode((const unsigned char *)key, len, out + 1);
}

static int
api_cursor_decode(const char *s, char *out, size_t n)
{
	size_t len = strlen(s);
	if (len < 1 || s[0] != 'c' || (len - 1) % 2 != 0 || (len - 1) / 2 + 1 > n)
		return -1;
	for (size_t i = 0; i < (len - 1) / 2; i++) {
		unsigned v;
		if (!isxdigit((unsigned char)s[1 + 2 * i]) ||
		    !isxdigit((unsigned char)s[2 + 2 * i]) ||
		    sscanf(s + 1 + 2 * i, "%2x", &v) != 1 || v == 0)
			return -1;
		out[i] = (char)v;
	}
	out[(len - 1) / 2] = '\0';
	return 0;
}

/* The key of item as text ("" when absent). */
static void
api_item_key(const json_t *item, const char *key, char *out, size_t n)
{
	const json_t *v = json_object_get(item, key);
	if (json_is_string(v))
		(void)snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		(void)snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else
		out[0] = '\0';
}

/* Orders two keys: integers numerically, else bytewise. */
static int
api_key_cmp(const char *a, const char *b, bool numeric)
{
	if (numeric) {
		long long x = strtoll(a, NULL, 10), y = strtoll(b, NULL, 10);
		return x < y ? -1 : x > y;
	}
	return strcmp(a, b);
}

void
http_list_reply(struct http_ctx *c, json_t *items, const char *key)
{
	uint64_t limit = HTTP_LIMIT_DEFAULT;
	const char *ls = http_query(c, "limit");
	if (ls && (strconv_u64(slice_from(ls), HTTP_LIMIT_MAX, &limit) < 0 || limit == 0)) {
		json_decref(items);
		http_error(c, 400, "bad_request", "limit", "limit must be a number from 1 to %d",
		           HTTP_LIMIT_MAX);
		return;
	}
	char after[HTTP_CURSOR_MAX / 2];
	const char *cs = http_query(c, "cursor");
	if (cs && api_cursor_decode(cs, after, sizeof after) < 0) {
		json_decref(items);
		http_error(c, 400, "bad_request", "cursor", "malformed cursor");
		return;
	}
	size_t n = json_array_size(items), start = 0;
	bool numeric = n > 0 && json_is_integer(json_object_get(json_array_get(items, 0), key));
	if (cs) {
		/* after the item with that key; when it went meanwhile, the first one above it */
		char k[HTTP_CURSOR_MAX / 2];
		start = n;
		for (size_t i = 0; i < n; i++) {
			api_item_key(json_array_get(items, i), key, k, sizeof k);
			if (strcmp(k, after) == 0) {
				start = i + 1;
				break;
			}
		}
		if (start == n) {
			for (size_t i = 0; i < n; i++) {
				api_item_key(json_array_get(items, i), key, k, sizeof k);
				if (api_key_cmp(k, after, numeric) > 0) {
					start = i;
					break;
				}
			}
		}
	}
	json_t *page = json_array();
	size_t end = start + limit < n ? start + (size_t)limit : n;
	for (size_t i = start; i < end; i++)
		json_array_append(page, json_array_get(items, i));
	json_t *next = json_null();
	if (end < n && end > start) {
		char k[HTTP_CURSOR_MAX / 2], cur[HTTP_CURSOR_MAX];
		api_item_key(json_array_get(items, end - 1), key, k, sizeof k);
		api_cursor_encode(k, cur, sizeof cur);
		json_decref(next);
		next = json_string(cur);
	}
	json_decref(items);
	http_reply(c, 200, json_pack("{s:o,s:o}", "data", page, "next_cursor", next));
}

/* ---- request parts ---- */

const char *
http_query(const struct http_ctx *c, const char *key)
{
	for (size_t i = 0; i < c->req->n_query; i++)
		if (strcmp(c->req->query[i].key, key) == 0)
			return c->req->query[i].value ? c->req->query[i].value : "";
	return NULL;
}

int
http_query_bool(struct http_ctx *c, const char *key, bool def, bool *v_r)
{
	const char *s = http_query(c, key);
	if (s == NULL) {
		*v_r = def;
		return 0;
	}
	int v;
	if (strconv_bool(slice_from(s), &v) < 0)
		return http_error(c, 400, "bad_request", key, "%s must be true or false", key);
	*v_r = v != 0;
	return 0;
}

int
http_param_domain(struct http_ctx *c, size_t i, char out[ADDR_DOMAIN_MAX + 1])
{
	if (i >= c->n_params || !addr_domain_is_valid(slice_from(c->params[i])) ||
	    addr_lower(slice_from(c->params[i]), out, ADDR_DOMAIN_MAX + 1) < 0)
		return http_error(c, 404, "not_found", NULL, "no such resource");
	return 0;
}

bool
http_addr_norm(const char *s, bool catchall, char out[ADDR_MAX + 1])
{
	struct slice local, domain;
	if (strlen(s) > ADDR_MAX)
		return false;
	if (catchall && s[0] == '@')
		return addr_domain_is_valid(slice_from(s + 1)) &&
		       addr_lower(slice_from(s), out, ADDR_MAX + 1) == 0;
	if (!addr_parse(slice_from(s), &local, &domain) || local.len + 1 + domain.len > ADDR_MAX)
		return false;
	memcpy(out, local.p, local.len);
	out[local.len] = '@';
	return addr_lower(domain, out + local.len + 1, ADDR_MAX + 1 - local.len - 1) == 0;
}

int
http_param_address(struct http_ctx *c, size_t i, char out[ADDR_MAX + 1])
{
	if (i >= c->n_params || !http_addr_norm(c->params[i], true, out))
		return http_error(c, 404, "not_found", NULL, "no such resource");
	return 0;
}

/* ---- scope ---- */

int
http_scope_domain(struct http_ctx *c, const char *domain)
{
	if (c->admin || strcasecmp(domain, c->key_domain) == 0)
		return 0;
	return http_error(c, 403, "forbidden", NULL, "this API key may not act on that domain");
}

int
http_scope_query_domain(struct http_ctx *c, char out[ADDR_DOMAIN_MAX + 1])
{
	const char *d = http_query(c, "domain");
	if (d == NULL) {
		if (!c->admin) {
			(void)snprintf(out, ADDR_DOMAIN_MAX + 1, "%s", c->key_domain);
			return 0;
		}
		return http_error(c, 422, "missing_field", "domain",
		                  "an admin key must name the domain: ?domain=");
	}
	if (!addr_domain_is_valid(slice_from(d)) ||
	    addr_lower(slice_from(d), out, ADDR_DOMAIN_MAX + 1) < 0)
		return c->admin ? http_error(c, 422, "invalid", "domain", "not a domain name")
		                : http_scope_domain(c, "");
	return http_scope_domain(c, out);
}

/* ---- meta routes ---- */

static void
meta_healthz(struct http_ctx *c)
{
	http_reply(c, 200, json_pack("{s:s,s:s}", "status", "ok", "version", LIGHTR_VERSION));
}

static void
meta_openapi(struct http_ctx *c)
{
	c->answered = true;
	c->resp->status = 200;
	buf_reset(&c->resp->body);
	if (buf_append_str(&c->resp->body, http_openapi_json) < 0)
		http_error(c, 500, "internal", NULL, "openapi document too large");
}
