/* API keys (issue 6), admin keys only: list, create, show, revoke.
 *
 * A token is made by auth_apikey_new and shown once, in the 201 answer of its creation; the
 * store keeps its SHA-256 and a display prefix. A revoked key stays listed with "revoked" set.
 * An admin key may revoke itself: the request names it explicitly, and the next request with
 * it is 401 (another admin key or `lightr apikey` can always make a new one), so refusing would
 * only protect against a mistake nobody makes by accident. */
#include <stdint.h>
#include <string.h>

#include "auth/passwd.h"
#include "http_private.h"
#include "util/strconv.h"

#define APIKEY_NAME_MAX 128 /* bytes */

static json_t *
apikey_json(const struct store_apikey *k)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:o,s:o}", "id", (json_int_t)k->id, "prefix", k->prefix,
	                 "name", k->name ? k->name : "", "scope", k->domain ? k->domain : "admin",
	                 "created", http_json_time(k->created), "revoked",
	                 http_json_time(k->revoked));
}

/* Path parameter 0 as a key id; 404 unless a positive integer. */
static int
apikey_id_param(struct http_ctx *c, int64_t *id_r)
{
	uint64_t v;
	if (c->n_params < 1 || strconv_u64(slice_from(c->params[0]), INT64_MAX, &v) < 0 || v == 0)
		return http_error(c, 404, "not_found", NULL, "no such API key");
	*id_r = (int64_t)v;
	return 0;
}

static void
route_list(struct http_ctx *c)
{
	struct store_apikey *v;
	size_t n;
	struct err err;
	if (store_apikey_list(c->st, NULL, &v, &n, &err) < 0) {
		http_store_error(c, &err, "apikey list");
		return;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, apikey_json(&v[i]));
	store_apikey_list_free(&v, n);
	http_list_reply(c, items, "id");
}

static void
route_create(struct http_ctx *c)
{
	static const char *const allowed[] = {"name", "domain", NULL};
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *name, *dom;
	char domain[ADDR_DOMAIN_MAX + 1];
	if (http_json_only(c, body, allowed) < 0 ||
	    http_json_str(c, body, "name", false, APIKEY_NAME_MAX, &name) < 0 ||
	    http_json_str(c, body, "domain", false, ADDR_DOMAIN_MAX, &dom) < 0)
		goto out;
	for (const char *p = name; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			http_error(c, 422, "invalid", "name",
			           "name must not contain control characters");
			goto out;
		}
	if (dom && (!addr_domain_is_valid(slice_from(dom)) ||
	            addr_lower(slice_from(dom), domain, sizeof domain) < 0)) {
		http_error(c, 422, "invalid", "domain", "not a domain name");
		goto out;
	}
	char token[AUTH_APIKEY_TOKEN_SIZE], hash[AUTH_APIKEY_HASH_MAX],
	    prefix[AUTH_APIKEY_PREFIX_SIZE];
	auth_apikey_new(token, hash, prefix);
	int64_t id;
	struct err err;
	if (store_apikey_add(c->st, hash, prefix, name ? name : "", dom ? domain : NULL, c->now,
	                     &id, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			http_error(c, 422, "invalid", "domain", "no domain %s", domain);
		else
			http_store_error(c, &err, "apikey add");
		goto out;
	}
	struct store_apikey k;
	if (store_apikey_get(c->st, id, &k, &err) < 0) {
		http_store_error(c, &err, "apikey get");
		goto out;
	}
	json_t *o = apikey_json(&k);
	json_object_set_new(o, "token", json_string(token));
	explicit_bzero(token, sizeof token);
	store_apikey_deinit(&k);
	http_reply(c, 201, o);
out:
	json_decref(body);
}

static void
route_get(struct http_ctx *c)
{
	int64_t id;
	if (apikey_id_param(c, &id) < 0)
		return;
	struct store_apikey k;
	struct err err;
	if (store_apikey_get(c->st, id, &k, &err) < 0) {
		http_store_error(c, &err, "apikey get");
		return;
	}
	http_reply(c, 200, apikey_json(&k));
	store_apikey_deinit(&k);
}

/* Revoking the key of this very request is allowed (see the top of the file). */
static void
route_revoke(struct http_ctx *c)
{
	int64_t id;
	if (apikey_id_param(c, &id) < 0)
		return;
	struct err err;
	if (store_apikey_revoke(c->st, id, c->now, &err) < 0) {
		http_store_error(c, &err, "apikey revoke");
		return;
	}
	http_reply(c, 204, NULL);
}

const struct http_route http_routes_apikeys[] = {
    {"GET", "/api/v1/apikeys", route_list, HTTP_ROUTE_ADMIN},
    {"POST", "/api/v1/apikeys", route_create, HTTP_ROUTE_ADMIN},
    {"GET", "/api/v1/apikeys/{id}", route_get, HTTP_ROUTE_ADMIN},
    {"DELETE", "/api/v1/apikeys/{id}", route_revoke, HTTP_ROUTE_ADMIN},
};
const size_t http_routes_apikeys_n = sizeof http_routes_apikeys / sizeof http_routes_apikeys[0];
