/* REST API: the suppression list of a sending domain (issue 7): list, add by hand, look up and
 * remove one address. Entries are also added by the server (hard bounces, repeated soft
 * bounces, complaints); all of them carry reason, source and time.
 *
 * The domain: a domain key's own one (naming another is 403); an admin key names it with
 * ?domain= (or, for POST, "domain" in the body). Addresses are folded as the store does
 * (store_suppress_fold: lower-cased, "+tag" removed with the configured separator), so the
 * answer shows the address as it is kept and looked up. */
#include <stdio.h>
#include <string.h>

#include "http_private.h"

#define SUPPRESS_SOURCE_MAX 256
#define SUPPRESS_REASON_MAX 32

/* The reasons a client may give; the server adds the same ones itself. */
static const char *const suppress_reasons[] = {"manual", "hard_bounce", "soft_bounces", "complaint",
                                               NULL};

static json_t *
suppression_json(const struct store_suppression *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "address", http_json_strn(s->address));
	json_object_set_new(o, "domain", http_json_strn(s->domain));
	json_object_set_new(o, "reason", http_json_strn(s->reason));
	json_object_set_new(o, "source", http_json_strn(s->source));
	json_object_set_new(o, "created", http_json_time(s->created));
	return o;
}

/* 404 naming the domain when it is not ours, else 0. */
static int
suppress_domain_exists(struct http_ctx *c, const char *domain)
{
	struct store_domain d;
	struct err err;
	if (store_domain_get(c->st, domain, &d, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			return http_error(c, 404, "not_found", "domain", "no domain %s", domain);
		return http_store_error(c, &err, "domain lookup");
	}
	store_domain_deinit(&d);
	return 0;
}

/* Answers status with the entry of address in domain as stored. */
static void
suppress_reply(struct http_ctx *c, unsigned status, const char *domain, const char *address)
{
	struct store_suppression s;
	struct err err;
	int rc = store_suppress_check(c->st, domain, address, c->api->lim.subaddress_sep, &s, &err);
	if (rc < 0) {
		http_store_error(c, &err, "suppression check");
		return;
	}
	if (rc == 0) {
		http_error(c, 404, "not_found", NULL, "that address is not suppressed");
		return;
	}
	http_reply(c, status, suppression_json(&s));
	store_suppression_deinit(&s);
}

static void
route_list(struct http_ctx *c)
{
	char domain[ADDR_DOMAIN_MAX + 1];
	if (http_scope_query_domain(c, domain) < 0 || suppress_domain_exists(c, domain) < 0)
		return;
	struct store_suppression *v;
	size_t n;
	struct err err;
	if (store_suppress_list(c->st, domain, &v, &n, &err) < 0) {
		http_store_error(c, &err, "suppression list");
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, suppression_json(&v[i]));
	store_suppression_list_free(&v, n);
	http_list_reply(c, a, "address");
}

/* The domain of a POST: "domain" of the body when given (scope-checked like ?domain=), else
 * http_scope_query_domain. */
static int
suppress_body_domain(struct http_ctx *c, const json_t *body, char out[ADDR_DOMAIN_MAX + 1])
{
	const char *s;
	if (http_json_str(c, body, "domain", false, ADDR_DOMAIN_MAX, &s) < 0)
		return -1;
	if (s == NULL)
		return http_scope_query_domain(c, out);
	if (!addr_domain_is_valid(slice_from(s)) ||
	    addr_lower(slice_from(s), out, ADDR_DOMAIN_MAX + 1) < 0)
		return c->admin ? http_error(c, 422, "invalid", "domain", "not a domain name")
		                : http_scope_domain(c, "");
	return http_scope_domain(c, out);
}

static void
route_create(struct http_ctx *c)
{
	static const char *const allowed[] = {"address", "domain", "reason", "source", NULL};
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *addr_s, *reason = NULL, *source = NULL;
	char domain[ADDR_DOMAIN_MAX + 1], address[ADDR_MAX + 1];
	if (http_json_only(c, body, allowed) < 0 || suppress_body_domain(c, body, domain) < 0 ||
	    http_json_str(c, body, "address", true, ADDR_MAX, &addr_s) < 0 ||
	    http_json_str(c, body, "reason", false, SUPPRESS_REASON_MAX, &reason) < 0 ||
	    http_json_str(c, body, "source", false, SUPPRESS_SOURCE_MAX, &source) < 0)
		goto out;
	if (!http_addr_norm(addr_s, false, address)) {
		http_error(c, 422, "invalid", "address", "not an email address");
		goto out;
	}
	if (reason == NULL || *reason == '\0')
		reason = "manual";
	bool known = false;
	for (size_t i = 0; suppress_reasons[i] && !known; i++)
		known = strcmp(suppress_reasons[i], reason) == 0;
	if (!known) {
		http_error(c, 422, "invalid", "reason",
		           "reason must be manual, hard_bounce, soft_bounces or complaint");
		goto out;
	}
	for (const char *p = source; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			http_error(c, 422, "invalid", "source",
			           "source must not contain control characters");
			goto out;
		}
	if (source == NULL || *source == '\0')
		source = "api";
	bool added = false;
	struct err err;
	if (store_suppress_add(c->st, domain, address, c->api->lim.subaddress_sep, reason, source,
	                       c->now, &added, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			http_error(c, 404, "not_found", "domain", "no domain %s", domain);
		else
			http_store_error(c, &err, "suppression add");
		goto out;
	}
	suppress_reply(c, added ? 201 : 200, domain, address);
out:
	json_decref(body);
}

/* The domain of the request and the {address} path parameter (404 when malformed). */
static int
suppress_target(struct http_ctx *c, char domain[ADDR_DOMAIN_MAX + 1], char address[ADDR_MAX + 1])
{
	if (http_scope_query_domain(c, domain) < 0)
		return -1;
	if (c->n_params < 1 || !http_addr_norm(c->params[0], false, address))
		return http_error(c, 404, "not_found", NULL, "that address is not suppressed");
	return 0;
}

static void
route_get(struct http_ctx *c)
{
	char domain[ADDR_DOMAIN_MAX + 1], address[ADDR_MAX + 1];
	if (suppress_target(c, domain, address) < 0)
		return;
	suppress_reply(c, 200, domain, address);
}

static void
route_delete(struct http_ctx *c)
{
	char domain[ADDR_DOMAIN_MAX + 1], address[ADDR_MAX + 1];
	if (suppress_target(c, domain, address) < 0)
		return;
	struct err err;
	if (store_suppress_remove(c->st, domain, address, c->api->lim.subaddress_sep, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			http_error(c, 404, "not_found", NULL, "that address is not suppressed");
		else
			http_store_error(c, &err, "suppression remove");
		return;
	}
	http_reply(c, 204, NULL);
}

const struct http_route http_routes_suppressions[] = {
    {"GET", "/api/v1/suppressions", route_list, 0},
    {"POST", "/api/v1/suppressions", route_create, 0},
    {"GET", "/api/v1/suppressions/{address}", route_get, 0},
    {"DELETE", "/api/v1/suppressions/{address}", route_delete, 0},
};
const size_t http_routes_suppressions_n =
    sizeof http_routes_suppressions / sizeof http_routes_suppressions[0];
