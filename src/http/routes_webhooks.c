/* REST API: webhooks (issue 7): create, list, get, delete, and the deliveries of one with every
 * attempt. The signing secret is generated here ("whsec_" + 32 random letters and digits) and
 * shown only in the answer to the create; afterwards only the sender (events/webhook.c) reads
 * it from the store. The URL is checked by events_url_check (http/https, and public addresses
 * only unless webhooks.allow_private_addresses), the same check the sender repeats before
 * every attempt, because DNS may change meanwhile.
 *
 * Scope: a webhook with a domain belongs to that domain; one without (admin scope, every
 * domain) is invisible to domain keys (404, like one that does not exist). A domain key's
 * webhooks are always scoped to its domain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "events/events.h"
#include "http_private.h"
#include "util/rand.h"
#include "util/strconv.h"

#define WEBHOOK_URL_MAX        2048
#define WEBHOOK_SECRET_PREFIX  "whsec_"
#define WEBHOOK_SECRET_RANDOM  32 /* [A-Za-z0-9]: ~190 bits */
#define WEBHOOK_TYPES_TEXT_MAX 512
#define WEBHOOK_CURSOR_MAX     20 /* "d" + 16 hex digits */

/* The event types a webhook may ask for (events.h, DESIGN.md §8). */
static const char *const webhook_types[] = {
    "message.queued",  "message.delivered",  "message.deferred",
    "message.bounced", "message.suppressed", "message.opened",
    "message.clicked", "message.received",   "message.complained",
};
#define WEBHOOK_N_TYPES (sizeof webhook_types / sizeof webhook_types[0])

static int
webhook_type_index(const char *s, size_t len)
{
	for (size_t i = 0; i < WEBHOOK_N_TYPES; i++)
		if (strlen(webhook_types[i]) == len && memcmp(webhook_types[i], s, len) == 0)
			return (int)i;
	return -1;
}

/* The stored types ("" = all, else "a,b") as a JSON array; all types listed for "". */
static json_t *
webhook_types_json(const char *types)
{
	json_t *a = json_array();
	if (types == NULL || *types == '\0') {
		for (size_t i = 0; i < WEBHOOK_N_TYPES; i++)
			json_array_append_new(a, json_string(webhook_types[i]));
		return a;
	}
	for (const char *p = types; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len > 0)
			json_array_append_new(a, json_stringn(p, len));
		p += len + (e != NULL);
	}
	return a;
}

static json_t *
webhook_json(const struct store_webhook *w)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(w->id));
	json_object_set_new(o, "url", http_json_strn(w->url));
	json_object_set_new(o, "events", webhook_types_json(w->types));
	json_object_set_new(o, "domain", http_json_strn(w->domain));
	json_object_set_new(o, "created", http_json_time(w->created));
	return o;
}

/* May this key see w? */
static bool
webhook_visible(const struct http_ctx *c, const struct store_webhook *w)
{
	return c->admin || (w->domain && strcasecmp(w->domain, c->key_domain) == 0);
}

/* Path parameter 0 as a webhook this key may see, into *w_r (deinit it); 404 otherwise. */
static int
webhook_param(struct http_ctx *c, struct store_webhook *w_r)
{
	uint64_t id;
	if (c->n_params < 1 || strconv_u64(slice_from(c->params[0]), INT64_MAX, &id) < 0 || id == 0)
		return http_error(c, 404, "not_found", NULL, "no such webhook");
	struct err err;
	if (store_webhook_get(c->st, (int64_t)id, w_r, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			return http_error(c, 404, "not_found", NULL, "no such webhook");
		return http_store_error(c, &err, "webhook get");
	}
	if (!webhook_visible(c, w_r)) {
		store_webhook_deinit(w_r);
		return http_error(c, 404, "not_found", NULL, "no such webhook");
	}
	return 0;
}

/* "events": absent/null = all (""); else a non-empty array of known types, joined with ","
 * into out without repeats. */
static int
webhook_read_types(struct http_ctx *c, const json_t *body, char out[WEBHOOK_TYPES_TEXT_MAX])
{
	out[0] = '\0';
	const json_t *a = json_object_get(body, "events");
	if (a == NULL || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return http_error(c, 422, "invalid_type", "events",
		                  "events must be an array of event types");
	if (json_array_size(a) == 0)
		return http_error(c, 422, "invalid", "events",
		                  "events must name at least one type (leave it out for all)");
	bool want[WEBHOOK_N_TYPES] = {false};
	size_t i;
	const json_t *t;
	json_array_foreach(a, i, t)
	{
		char field[32];
		(void)snprintf(field, sizeof field, "events[%zu]", i);
		if (!json_is_string(t))
			return http_error(c, 422, "invalid_type", field,
			                  "an event type is a string");
		int k = webhook_type_index(json_string_value(t), json_string_length(t));
		if (k < 0)
			return http_error(c, 422, "invalid", field,
			                  "unknown event type; one of message.queued, "
			                  "message.delivered, message.deferred, message.bounced, "
			                  "message.suppressed, message.opened, message.clicked, "
			                  "message.received, message.complained");
		want[k] = true;
	}
	size_t len = 0;
	for (size_t k = 0; k < WEBHOOK_N_TYPES; k++) {
		if (!want[k])
			continue;
		int w = snprintf(out + len, WEBHOOK_TYPES_TEXT_MAX - len, "%s%s", len ? "," : "",
		                 webhook_types[k]);
		if (w < 0 || (size_t)w >= WEBHOOK_TYPES_TEXT_MAX - len)
			return http_error(c, 500, "internal", NULL, "event types too long");
		len += (size_t)w;
	}
	return 0;
}

/* "domain" of the body: a domain key's own one (another is 403), or for an admin key the one
 * named (validated) or "" for all domains. */
static int
webhook_read_domain(struct http_ctx *c, const json_t *body, char out[ADDR_DOMAIN_MAX + 1])
{
	const char *s;
	if (http_json_str(c, body, "domain", false, ADDR_DOMAIN_MAX, &s) < 0)
		return -1;
	out[0] = '\0';
	if (s == NULL) {
		if (!c->admin)
			(void)snprintf(out, ADDR_DOMAIN_MAX + 1, "%s", c->key_domain);
		return 0;
	}
	if (!addr_domain_is_valid(slice_from(s)) ||
	    addr_lower(slice_from(s), out, ADDR_DOMAIN_MAX + 1) < 0)
		return c->admin ? http_error(c, 422, "invalid", "domain", "not a domain name")
		                : http_scope_domain(c, "");
	return http_scope_domain(c, out);
}

static void
route_create(struct http_ctx *c)
{
	static const char *const allowed[] = {"url", "events", "domain", NULL};
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *url;
	char types[WEBHOOK_TYPES_TEXT_MAX], domain[ADDR_DOMAIN_MAX + 1];
	if (http_json_only(c, body, allowed) < 0 ||
	    http_json_str(c, body, "url", true, WEBHOOK_URL_MAX, &url) < 0 ||
	    webhook_read_types(c, body, types) < 0 || webhook_read_domain(c, body, domain) < 0)
		goto out;
	struct err err;
	if (events_url_check(url, c->api->lim.webhooks_allow_private, NULL, NULL, &err) < 0) {
		http_error(c, 422, "invalid", "url", "%s", err.msg);
		goto out;
	}
	char secret[sizeof WEBHOOK_SECRET_PREFIX + WEBHOOK_SECRET_RANDOM];
	memcpy(secret, WEBHOOK_SECRET_PREFIX, sizeof WEBHOOK_SECRET_PREFIX - 1);
	rand_token(secret + sizeof WEBHOOK_SECRET_PREFIX - 1, WEBHOOK_SECRET_RANDOM);
	int64_t id;
	if (store_webhook_add(c->st, url, secret, types, domain[0] ? domain : NULL, c->now, &id,
	                      &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			http_error(c, 404, "not_found", "domain", "no domain %s", domain);
		else
			http_store_error(c, &err, "webhook add");
		goto out;
	}
	struct store_webhook w = {.id = id,
	                          .url = (char *)url,
	                          .types = types,
	                          .domain = domain[0] ? domain : NULL,
	                          .created = c->now};
	json_t *o = webhook_json(&w);
	json_object_set_new(o, "secret", json_string(secret));
	http_reply(c, 201, o);
out:
	json_decref(body);
}

static void
route_list(struct http_ctx *c)
{
	char domain[ADDR_DOMAIN_MAX + 1] = "";
	const char *ds = http_query(c, "domain");
	if (ds && *ds) {
		if (http_scope_query_domain(c, domain) < 0)
			return;
	} else if (!c->admin) {
		(void)snprintf(domain, sizeof domain, "%s", c->key_domain);
	}
	struct store_webhook *v;
	size_t n;
	struct err err;
	if (store_webhook_list(c->st, domain[0] ? domain : NULL, &v, &n, &err) < 0) {
		http_store_error(c, &err, "webhook list");
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		if (webhook_visible(c, &v[i]))
			json_array_append_new(a, webhook_json(&v[i]));
	store_webhook_list_free(&v, n);
	http_list_reply(c, a, "id");
}

static void
route_get(struct http_ctx *c)
{
	struct store_webhook w;
	if (webhook_param(c, &w) < 0)
		return;
	http_reply(c, 200, webhook_json(&w));
	store_webhook_deinit(&w);
}

static void
route_delete(struct http_ctx *c)
{
	struct store_webhook w;
	if (webhook_param(c, &w) < 0)
		return;
	struct err err;
	int rc = store_webhook_remove(c->st, w.id, &err);
	store_webhook_deinit(&w);
	if (rc < 0) {
		http_store_error(c, &err, "webhook remove");
		return;
	}
	http_reply(c, 204, NULL);
}

static json_t *
delivery_json(const struct store_webhook_delivery *d)
{
	char evt[32];
	(void)snprintf(evt, sizeof evt, "evt_%lld", (long long)d->event_id);
	json_t *log = json_array();
	for (size_t i = 0; i < d->n_tries; i++) {
		const struct store_webhook_attempt *t = &d->tries[i];
		json_t *a = json_object();
		json_object_set_new(a, "at", http_json_time(t->at));
		json_object_set_new(a, "status_code",
		                    t->status_code ? json_integer(t->status_code) : json_null());
		json_object_set_new(a, "error", http_json_strn(t->error));
		json_object_set_new(a, "duration_ms", json_integer(t->duration_ms));
		json_array_append_new(log, a);
	}
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(d->id));
	json_object_set_new(o, "event_id", json_string(evt));
	json_object_set_new(o, "event_type", http_json_strn(d->event_type));
	json_object_set_new(o, "status", http_json_strn(d->status));
	json_object_set_new(o, "attempts", json_integer(d->attempts));
	json_object_set_new(o, "next_attempt", http_json_time(d->next_attempt));
	json_object_set_new(o, "created", http_json_time(d->created));
	json_object_set_new(o, "attempts_log", log);
	return o;
}

static int
delivery_cursor_decode(const char *s, int64_t *id_r)
{
	size_t n = strlen(s);
	if (n < 2 || n > 17 || s[0] != 'd')
		return -1;
	uint64_t v = 0;
	for (size_t i = 1; i < n; i++) {
		char ch = s[i];
		if (ch >= '0' && ch <= '9')
			v = v * 16 + (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = v * 16 + (unsigned)(ch - 'a' + 10);
		else
			return -1;
	}
	if (v == 0 || v > INT64_MAX)
		return -1;
	*id_r = (int64_t)v;
	return 0;
}

/* Newest first, paged by delivery id: the cursor is "d" + the hex id of the last one shown. */
static void
route_deliveries(struct http_ctx *c)
{
	struct store_webhook w;
	if (webhook_param(c, &w) < 0)
		return;
	int64_t wid = w.id;
	store_webhook_deinit(&w);
	uint64_t limit = HTTP_LIMIT_DEFAULT;
	int64_t before = 0;
	const char *ls = http_query(c, "limit"), *cs = http_query(c, "cursor");
	if (ls && (strconv_u64(slice_from(ls), HTTP_LIMIT_MAX, &limit) < 0 || limit == 0)) {
		http_error(c, 400, "bad_request", "limit", "limit must be a number from 1 to %d",
		           HTTP_LIMIT_MAX);
		return;
	}
	if (cs && *cs && delivery_cursor_decode(cs, &before) < 0) {
		http_error(c, 400, "bad_request", "cursor", "malformed cursor");
		return;
	}
	size_t want = limit < HTTP_LIMIT_MAX ? (size_t)limit + 1 : HTTP_LIMIT_MAX;
	struct store_webhook_delivery *v;
	size_t n;
	struct err err;
	if (store_webhook_deliveries(c->st, wid, before, want, &v, &n, &err) < 0) {
		http_store_error(c, &err, "webhook deliveries");
		return;
	}
	bool more = n > limit || (n == limit && limit == HTTP_LIMIT_MAX);
	size_t page = n > limit ? (size_t)limit : n;
	json_t *data = json_array();
	for (size_t i = 0; i < page; i++)
		json_array_append_new(data, delivery_json(&v[i]));
	json_t *next = json_null();
	if (more && page > 0) {
		char cur[WEBHOOK_CURSOR_MAX];
		(void)snprintf(cur, sizeof cur, "d%llx", (unsigned long long)v[page - 1].id);
		json_decref(next);
		next = json_string(cur);
	}
	store_webhook_deliveries_free(&v, n);
	http_reply(c, 200, json_pack("{s:o,s:o}", "data", data, "next_cursor", next));
}

const struct http_route http_routes_webhooks[] = {
    {"GET", "/api/v1/webhooks", route_list, 0},
    {"POST", "/api/v1/webhooks", route_create, 0},
    {"GET", "/api/v1/webhooks/{id}", route_get, 0},
    {"DELETE", "/api/v1/webhooks/{id}", route_delete, 0},
    {"GET", "/api/v1/webhooks/{id}/deliveries", route_deliveries, 0},
};
const size_t http_routes_webhooks_n = sizeof http_routes_webhooks / sizeof http_routes_webhooks[0];
