/* REST API: domains and their DKIM keys (issue 6; the "Domains" routes). The same
 * operations as `lightr domain` and `lightr dkim`: the store does the bookkeeping, and what
 * needs key generation or the DNS view (dkim/, server/ sit above us, STYLE.md B.3) goes through
 * struct http_hooks. A domain key sees only its own domain: every route that names a domain
 * checks the scope before it looks anything up, so other domains neither exist nor not exist
 * for it. Private keys never leave this module. */
#include <stdio.h>
#include <string.h>

#include "http_private.h"
#include "util/log.h"

#define DKIM_KEEP_DAYS_DEF 7
#define DKIM_KEEP_DAYS_MAX 3650
#define DKIM_SELECTOR_MAX  63 /* one DNS label (RFC 1035 §2.3.4) */
#define DKIM_ALGO_NAME_MAX 16
#define DKIM_SELECTOR_BUF  64 /* http_hooks.dkim_generate selector_r */
#define DKIM_RSA_BITS_DEF  2048
#define DKIM_ED25519_BITS  256

/* ---- JSON shapes ---- */

static json_t *
domain_json(const struct store_domain *d)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", http_json_strn(d->name));
	json_object_set_new(o, "created", http_json_time(d->created));
	json_object_set_new(o, "accounts", json_integer((json_int_t)d->n_accounts));
	json_object_set_new(o, "aliases", json_integer((json_int_t)d->n_aliases));
	return o;
}

/* Adds the tracking defaults of domain (issue 7) to o: "track_opens", "track_clicks". -1 after
 * answering a store error. */
static int
domain_tracking_json(struct http_ctx *c, json_t *o, const char *domain)
{
	bool opens = false, clicks = false;
	struct err err;
	if (store_domain_tracking(c->st, domain, &opens, &clicks, &err) < 0)
		return http_store_error(c, &err, "domain tracking");
	json_object_set_new(o, "track_opens", json_boolean(opens));
	json_object_set_new(o, "track_clicks", json_boolean(clicks));
	return 0;
}

/* domain_json with the tracking defaults; NULL after answering an error. */
static json_t *
domain_json_full(struct http_ctx *c, const struct store_domain *d)
{
	json_t *o = domain_json(d);
	if (domain_tracking_json(c, o, d->name) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
dkim_key_json(const struct store_dkim_key *k)
{
	json_t *o = json_object();
	json_object_set_new(o, "selector", http_json_strn(k->selector));
	json_object_set_new(o, "algorithm", http_json_strn(k->algo));
	json_object_set_new(o, "bits", json_integer((json_int_t)k->bits));
	json_object_set_new(o, "state", http_json_strn(k->state));
	json_object_set_new(o, "public_key", http_json_strn(k->public_key));
	json_object_set_new(o, "created", http_json_time(k->created));
	json_object_set_new(o, "retire_at", http_json_time(k->retire_at));
	return o;
}

/* The domain's keys as a JSON array in store order (NULL after answering an error). */
static json_t *
dkim_keys_json(struct http_ctx *c, const char *domain)
{
	struct store_dkim_key *v;
	size_t n;
	struct err err;
	if (store_dkim_retire_due(c->st, c->now, NULL, &err) < 0 ||
	    store_dkim_list(c->st, domain, &v, &n, &err) < 0) {
		http_store_error(c, &err, "dkim list");
		return NULL;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, dkim_key_json(&v[i]));
	store_dkim_list_free(&v, n);
	return a;
}

/* Path parameter 0 as a domain the key may act on: malformed → 404, out of scope → 403 (before
 * any lookup). */
static int
domain_param(struct http_ctx *c, char out[ADDR_DOMAIN_MAX + 1])
{
	if (http_param_domain(c, 0, out) < 0)
		return -1;
	return http_scope_domain(c, out);
}

/* The body as an object, or an empty object when there is no body at all (routes whose members
 * are all optional). */
static json_t *
optional_body(struct http_ctx *c)
{
	if (c->req->body_len == 0)
		return json_object();
	return http_body_object(c);
}

static int
hook_missing(struct http_ctx *c, const char *what)
{
	log_error("http %s no %s hook", c->request_id, what);
	return http_error(c, 500, "internal", NULL, "internal error (request %s)", c->request_id);
}

/* ---- routes ---- */

static void
route_list(struct http_ctx *c)
{
	struct store_domain *v;
	size_t n;
	struct err err;
	if (store_domain_list(c->st, &v, &n, &err) < 0) {
		http_store_error(c, &err, "domain list");
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (!c->admin && strcmp(v[i].name, c->key_domain) != 0)
			continue;
		json_t *o = domain_json_full(c, &v[i]);
		if (o == NULL) {
			json_decref(a);
			store_domain_list_free(&v, n);
			return;
		}
		json_array_append_new(a, o);
	}
	store_domain_list_free(&v, n);
	http_list_reply(c, a, "name");
}

static void
route_create(struct http_ctx *c)
{
	static const char *const allowed[] = {"name", NULL};
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *s;
	char name[ADDR_DOMAIN_MAX + 1];
	struct err err;
	if (http_json_only(c, body, allowed) < 0 ||
	    http_json_str(c, body, "name", true, ADDR_DOMAIN_MAX, &s) < 0)
		goto out;
	if (!addr_domain_is_valid(slice_from(s)) ||
	    addr_lower(slice_from(s), name, sizeof name) < 0) {
		http_error(c, 422, "invalid", "name", "not a valid domain name");
		goto out;
	}
	if (c->hooks == NULL || c->hooks->dkim_default_keys == NULL) {
		hook_missing(c, "dkim_default_keys");
		goto out;
	}
	if (store_domain_add(c->st, name, &err) < 0) {
		http_store_error(c, &err, "domain add");
		goto out;
	}
	if (c->hooks->dkim_default_keys(c->hooks->ctx, name, &err) < 0) {
		char esc[300];
		log_error("http %s domain-add %s: DKIM keys failed: %s", c->request_id, name,
		          log_escape(err.msg, esc, sizeof esc));
		struct err err2;
		if (store_domain_remove(c->st, name, true, &err2) < 0)
			log_error("http %s domain-add %s: could not remove it again: %s",
			          c->request_id, name, log_escape(err2.msg, esc, sizeof esc));
		http_error(c, 500, "internal", NULL, "could not create the DKIM keys (request %s)",
		           c->request_id);
		goto out;
	}
	struct store_domain d;
	if (store_domain_get(c->st, name, &d, &err) < 0) {
		http_store_error(c, &err, "domain get");
		goto out;
	}
	json_t *o = domain_json_full(c, &d);
	store_domain_deinit(&d);
	if (o == NULL)
		goto out;
	json_t *keys = dkim_keys_json(c, name);
	if (keys == NULL) {
		json_decref(o);
		goto out;
	}
	json_object_set_new(o, "dkim", keys);
	http_reply(c, 201, o);
out:
	json_decref(body);
}

static void
route_get(struct http_ctx *c)
{
	char name[ADDR_DOMAIN_MAX + 1];
	if (domain_param(c, name) < 0)
		return;
	struct store_domain d;
	struct err err;
	if (store_domain_get(c->st, name, &d, &err) < 0) {
		http_store_error(c, &err, "domain get");
		return;
	}
	json_t *o = domain_json_full(c, &d);
	store_domain_deinit(&d);
	if (o)
		http_reply(c, 200, o);
}

/* PATCH {"track_opens"?, "track_clicks"?, "limits"?}: the domain's tracking defaults (issue
 * 7) and rate-limit overrides (issue 8, admin keys only); members left out keep their value. */
static void
route_update(struct http_ctx *c)
{
	static const char *const allowed[] = {"track_opens", "track_clicks", "limits", NULL};
	char name[ADDR_DOMAIN_MAX + 1];
	if (domain_param(c, name) < 0)
		return;
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	struct store_domain d;
	struct err err;
	bool opens = false, clicks = false;
	struct http_limit_change lim[HTTP_LIMIT_RULES];
	size_t n_lim = 0;
	if (http_json_only(c, body, allowed) < 0 || http_limits_parse(c, body, lim, &n_lim) < 0)
		goto out;
	if (store_domain_get(c->st, name, &d, &err) < 0) {
		http_store_error(c, &err, "domain get");
		goto out;
	}
	if (store_domain_tracking(c->st, name, &opens, &clicks, &err) < 0) {
		store_domain_deinit(&d);
		http_store_error(c, &err, "domain tracking");
		goto out;
	}
	bool has_opens = false, has_clicks = false;
	if (http_json_bool(c, body, "track_opens", &opens, &has_opens) < 0 ||
	    http_json_bool(c, body, "track_clicks", &clicks, &has_clicks) < 0) {
		store_domain_deinit(&d);
		goto out;
	}
	if ((has_opens || has_clicks) &&
	    store_domain_set_tracking(c->st, name, opens, clicks, &err) < 0) {
		store_domain_deinit(&d);
		http_store_error(c, &err, "domain set tracking");
		goto out;
	}
	if (http_limits_apply(c, true, name, lim, n_lim) < 0) {
		store_domain_deinit(&d);
		goto out;
	}
	json_t *o = domain_json_full(c, &d);
	store_domain_deinit(&d);
	if (o)
		http_reply(c, 200, o);
out:
	json_decref(body);
}

static void
route_delete(struct http_ctx *c)
{
	char name[ADDR_DOMAIN_MAX + 1];
	bool force;
	if (domain_param(c, name) < 0 || http_query_bool(c, "force", false, &force) < 0)
		return;
	struct err err;
	if (store_domain_remove(c->st, name, force, &err) < 0) {
		if (err.code == STORE_EBUSY)
			http_error(c, 409, "conflict", NULL,
			           "%s; use ?force=true to remove them too, with all their mail",
			           err.msg);
		else
			http_store_error(c, &err, "domain remove");
		return;
	}
	http_reply(c, 204, NULL);
}

/* GET .../limits: the domain's rate limits and current usage (issue 8). */
static void
route_limits(struct http_ctx *c)
{
	char name[ADDR_DOMAIN_MAX + 1];
	if (domain_param(c, name) < 0)
		return;
	struct store_domain d;
	struct err err;
	if (store_domain_get(c->st, name, &d, &err) < 0) {
		http_store_error(c, &err, "domain get");
		return;
	}
	store_domain_deinit(&d);
	http_limits_reply(c, true, name);
}

static void
route_dns(struct http_ctx *c)
{
	char name[ADDR_DOMAIN_MAX + 1];
	if (domain_param(c, name) < 0)
		return;
	if (c->hooks == NULL || c->hooks->domain_dns == NULL) {
		hook_missing(c, "domain_dns");
		return;
	}
	struct store_domain d;
	struct err err;
	if (store_domain_get(c->st, name, &d, &err) < 0) {
		http_store_error(c, &err, "domain get");
		return;
	}
	store_domain_deinit(&d);
	struct http_dns_record *v = NULL;
	size_t n = 0;
	if (c->hooks->domain_dns(c->hooks->ctx, name, &v, &n, &err) < 0) {
		http_store_error(c, &err, "domain dns");
		return;
	}
	json_t *recs = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_object();
		json_object_set_new(r, "name", http_json_strn(v[i].name));
		json_object_set_new(r, "type", http_json_strn(v[i].type));
		json_object_set_new(r, "value", http_json_strn(v[i].value));
		json_object_set_new(r, "comment", http_json_strn(v[i].comment));
		json_array_append_new(recs, r);
	}
	struct buf zone;
	buf_init(&zone, 0);
	http_dns_zone(name, v, n, &zone);
	http_dns_records_free(&v, n);
	json_t *o = json_object();
	json_object_set_new(o, "domain", json_string(name));
	json_object_set_new(o, "records", recs);
	json_object_set_new(o, "zone", http_json_strn(buf_cstr(&zone)));
	buf_deinit(&zone);
	http_reply(c, 200, o);
}

static void
route_dkim_list(struct http_ctx *c)
{
	char name[ADDR_DOMAIN_MAX + 1];
	if (domain_param(c, name) < 0)
		return;
	json_t *a = dkim_keys_json(c, name);
	if (a)
		http_list_reply(c, a, "selector");
}

/* [a-z0-9-]{1,63} */
static bool
selector_is_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > DKIM_SELECTOR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static void
route_dkim_generate(struct http_ctx *c)
{
	static const char *const allowed[] = {"algorithm", "bits", "selector", NULL};
	char name[ADDR_DOMAIN_MAX + 1];
	if (domain_param(c, name) < 0)
		return;
	json_t *body = optional_body(c);
	if (body == NULL)
		return;
	const char *algo = NULL, *selector = NULL;
	uint64_t bits = DKIM_RSA_BITS_DEF;
	bool has_bits;
	if (http_json_only(c, body, allowed) < 0 ||
	    http_json_str(c, body, "algorithm", false, DKIM_ALGO_NAME_MAX, &algo) < 0 ||
	    http_json_uint(c, body, "bits", 4096, &bits, &has_bits) < 0 ||
	    http_json_str(c, body, "selector", false, DKIM_SELECTOR_MAX, &selector) < 0)
		goto out;
	if (algo == NULL)
		algo = "ed25519";
	bool rsa = strcmp(algo, "rsa") == 0;
	if (!rsa && strcmp(algo, "ed25519") != 0) {
		http_error(c, 422, "invalid", "algorithm", "algorithm must be ed25519 or rsa");
		goto out;
	}
	if (has_bits && !rsa) {
		http_error(c, 422, "invalid", "bits", "bits is only for algorithm rsa");
		goto out;
	}
	if (rsa && bits != 2048 && bits != 3072 && bits != 4096) {
		http_error(c, 422, "out_of_range", "bits", "bits must be 2048, 3072 or 4096");
		goto out;
	}
	if (!rsa)
		bits = DKIM_ED25519_BITS;
	if (selector && !selector_is_valid(selector)) {
		http_error(c, 422, "invalid", "selector",
		           "selector must be 1 to 63 characters of a-z, 0-9 and '-'");
		goto out;
	}
	if (c->hooks == NULL || c->hooks->dkim_generate == NULL) {
		hook_missing(c, "dkim_generate");
		goto out;
	}
	struct err err; /* an unknown domain: the hook's ENOTFOUND (404) */
	char sel[DKIM_SELECTOR_BUF] = "";
	if (c->hooks->dkim_generate(c->hooks->ctx, name, algo, (unsigned)bits, selector, sel,
	                            &err) < 0) {
		http_store_error(c, &err, "dkim generate");
		goto out;
	}
	struct store_dkim_key *v;
	size_t n;
	if (store_dkim_list(c->st, name, &v, &n, &err) < 0) {
		http_store_error(c, &err, "dkim list");
		goto out;
	}
	json_t *o = NULL;
	for (size_t i = 0; i < n && o == NULL; i++)
		if (strcmp(v[i].selector, sel) == 0)
			o = dkim_key_json(&v[i]);
	store_dkim_list_free(&v, n);
	if (o == NULL) {
		log_error("http %s dkim-generate %s: new key %s not found", c->request_id, name,
		          sel);
		http_error(c, 500, "internal", NULL, "internal error (request %s)", c->request_id);
		goto out;
	}
	http_reply(c, 201, o);
out:
	json_decref(body);
}

static void
route_dkim_rotate(struct http_ctx *c)
{
	static const char *const allowed[] = {"keep_days", NULL};
	char name[ADDR_DOMAIN_MAX + 1];
	if (domain_param(c, name) < 0)
		return;
	json_t *body = optional_body(c);
	if (body == NULL)
		return;
	uint64_t keep = DKIM_KEEP_DAYS_DEF;
	if (http_json_only(c, body, allowed) < 0 ||
	    http_json_uint(c, body, "keep_days", DKIM_KEEP_DAYS_MAX, &keep, NULL) < 0)
		goto out;
	if (c->hooks == NULL || c->hooks->dkim_rotate == NULL) {
		hook_missing(c, "dkim_rotate");
		goto out;
	}
	struct err err; /* an unknown domain: the hook's ENOTFOUND (404) */
	if (c->hooks->dkim_rotate(c->hooks->ctx, name, (unsigned)keep, &err) < 0) {
		http_store_error(c, &err, "dkim rotate");
		goto out;
	}
	json_t *keys = dkim_keys_json(c, name);
	if (keys)
		http_reply(c, 200, json_pack("{s:o}", "keys", keys));
out:
	json_decref(body);
}

const struct http_route http_routes_domains[] = {
    {"GET", "/api/v1/domains", route_list, 0},
    {"POST", "/api/v1/domains", route_create, HTTP_ROUTE_ADMIN},
    {"GET", "/api/v1/domains/{domain}", route_get, 0},
    {"PATCH", "/api/v1/domains/{domain}", route_update, 0},
    {"DELETE", "/api/v1/domains/{domain}", route_delete, HTTP_ROUTE_ADMIN},
    {"GET", "/api/v1/domains/{domain}/dns", route_dns, 0},
    {"GET", "/api/v1/domains/{domain}/limits", route_limits, 0},
    {"GET", "/api/v1/domains/{domain}/dkim", route_dkim_list, 0},
    {"POST", "/api/v1/domains/{domain}/dkim", route_dkim_generate, 0},
    {"POST", "/api/v1/domains/{domain}/dkim/rotate", route_dkim_rotate, 0},
};
const size_t http_routes_domains_n = sizeof http_routes_domains / sizeof http_routes_domains[0];
