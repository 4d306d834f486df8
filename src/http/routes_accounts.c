/* REST API: accounts and aliases (issue 6; the "Accounts and aliases" routes). The same rules
 * as `lightr account` and `lightr alias`: addresses keep their local part and get a lower-case
 * domain, passwords are 8..AUTH_PASSWORD_MAX bytes without control characters (or generated and
 * shown once) and only their argon2id hash is stored, alias targets are added to an existing
 * alias. The scope of a domain key is checked against the address's domain before any lookup.
 * Password hashes never leave the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/passwd.h"
#include "http_private.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define ACCOUNT_PASSWORD_MIN 8  /* as `lightr account add --password-stdin` */
#define ACCOUNT_PASSWORD_GEN 24 /* generated: [A-Za-z0-9]{24}, about 143 bits */
#define ACCOUNT_QUOTA_MAX    (UINT64_MAX / 2)
#define ALIAS_TARGETS_MAX    100

/* ---- addresses ---- */

static const char *
address_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : addr;
}

/* Path parameter 0 as an address whose domain the key may act on (404 malformed, 403 out of
 * scope). */
static int
address_param(struct http_ctx *c, bool catchall, char out[ADDR_MAX + 1])
{
	if (http_param_address(c, 0, out) < 0)
		return -1;
	if (!catchall && out[0] == '@')
		return http_error(c, 404, "not_found", NULL, "no such resource");
	return http_scope_domain(c, address_domain(out));
}

/* The domain a list is about: ?domain= (validated, in scope), or for a domain key its own;
 * *all_r when an admin key gave none. */
static int
list_domain(struct http_ctx *c, char out[ADDR_DOMAIN_MAX + 1], bool *all_r)
{
	*all_r = false;
	if (http_query(c, "domain") == NULL && c->admin) {
		*all_r = true;
		return 0;
	}
	return http_scope_query_domain(c, out);
}

/* A domain named in a body must be ours: 422 with field otherwise. */
static int
domain_served(struct http_ctx *c, const char *domain, const char *field)
{
	struct store_domain d;
	struct err err;
	if (store_domain_get(c->st, domain, &d, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			return http_error(c, 422, "invalid", field, "domain %s is not served here",
			                  domain);
		return http_store_error(c, &err, "domain get");
	}
	store_domain_deinit(&d);
	return 0;
}

/* ---- accounts ---- */

static json_t *
account_json(const struct store_account *a)
{
	json_t *o = json_object();
	json_object_set_new(o, "address", http_json_strn(a->address));
	json_object_set_new(o, "domain", http_json_strn(a->domain));
	json_object_set_new(o, "quota", json_integer((json_int_t)a->quota));
	json_object_set_new(o, "used", json_integer((json_int_t)a->used));
	json_object_set_new(o, "disabled", json_boolean(a->disabled));
	json_object_set_new(o, "domain_admin", json_boolean(a->domain_admin));
	json_object_set_new(o, "created", http_json_time(a->created));
	return o;
}

/* Answers 200/201 with the account as stored now (plus extra members, stolen). */
static void
account_reply(struct http_ctx *c, unsigned status, const char *addr, const char *password)
{
	struct store_account a;
	struct err err;
	if (store_account_get(c->st, addr, &a, &err) < 0) {
		http_store_error(c, &err, "account get");
		return;
	}
	json_t *o = account_json(&a);
	store_account_deinit(&a);
	if (password)
		json_object_set_new(o, "password", json_string(password));
	http_reply(c, status, o);
}

/* "password": 8..AUTH_PASSWORD_MAX bytes, no control characters (as cli_read_password). */
static int
password_member(struct http_ctx *c, const json_t *body, const char **pw_r)
{
	if (http_json_str(c, body, "password", false, AUTH_PASSWORD_MAX, pw_r) < 0)
		return -1;
	const char *pw = *pw_r;
	if (pw == NULL)
		return 0;
	if (strlen(pw) < ACCOUNT_PASSWORD_MIN)
		return http_error(c, 422, "invalid", "password",
		                  "password is shorter than %d characters", ACCOUNT_PASSWORD_MIN);
	for (const char *p = pw; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return http_error(c, 422, "invalid", "password",
			                  "password contains a control character");
	return 0;
}

static int
password_hash(struct http_ctx *c, const char *pw, char hash[AUTH_HASH_MAX])
{
	if (auth_hash(pw, strlen(pw), hash) < 0) {
		log_error("http %s cannot hash a password", c->request_id);
		return http_error(c, 500, "internal", NULL, "internal error (request %s)",
		                  c->request_id);
	}
	return 0;
}

static void
route_account_list(struct http_ctx *c)
{
	char dom[ADDR_DOMAIN_MAX + 1];
	bool all;
	if (list_domain(c, dom, &all) < 0)
		return;
	struct store_account *v;
	size_t n;
	struct err err;
	if (store_account_list(c->st, all ? NULL : dom, &v, &n, &err) < 0) {
		http_store_error(c, &err, "account list");
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, account_json(&v[i]));
	store_account_list_free(&v, n);
	http_list_reply(c, a, "address");
}

static void
route_account_create(struct http_ctx *c)
{
	static const char *const allowed[] = {"address",  "password",     "quota",
	                                      "disabled", "domain_admin", NULL};
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *s, *pw;
	uint64_t quota = 0;
	bool disabled = false, admin = false;
	char addr[ADDR_MAX + 1], gen[ACCOUNT_PASSWORD_GEN + 1], hash[AUTH_HASH_MAX];
	struct err err;
	if (http_json_only(c, body, allowed) < 0 ||
	    http_json_str(c, body, "address", true, ADDR_MAX, &s) < 0 ||
	    password_member(c, body, &pw) < 0 ||
	    http_json_uint(c, body, "quota", ACCOUNT_QUOTA_MAX, &quota, NULL) < 0 ||
	    http_json_bool(c, body, "disabled", &disabled, NULL) < 0 ||
	    http_json_bool(c, body, "domain_admin", &admin, NULL) < 0)
		goto out;
	if (!http_addr_norm(s, false, addr)) {
		http_error(c, 422, "invalid", "address", "not a valid address (local@domain)");
		goto out;
	}
	if (http_scope_domain(c, address_domain(addr)) < 0 ||
	    domain_served(c, address_domain(addr), "address") < 0)
		goto out;
	if (pw == NULL) {
		rand_token(gen, ACCOUNT_PASSWORD_GEN);
		pw = gen;
	}
	if (password_hash(c, pw, hash) < 0)
		goto out;
	if (store_account_add(c->st, addr, hash, quota, &err) < 0 ||
	    (disabled && store_account_set_disabled(c->st, addr, true, &err) < 0) ||
	    (admin && store_account_set_domain_admin(c->st, addr, true, &err) < 0)) {
		http_store_error(c, &err, "account add");
		goto out;
	}
	account_reply(c, 201, addr, pw == gen ? gen : NULL);
out:
	explicit_bzero(gen, sizeof gen);
	json_decref(body);
}

static void
route_account_get(struct http_ctx *c)
{
	char addr[ADDR_MAX + 1];
	if (address_param(c, false, addr) < 0)
		return;
	account_reply(c, 200, addr, NULL);
}

static void
route_account_update(struct http_ctx *c)
{
	static const char *const allowed[] = {"password",     "quota",  "disabled",
	                                      "domain_admin", "limits", NULL};
	char addr[ADDR_MAX + 1];
	if (address_param(c, false, addr) < 0)
		return;
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *pw;
	uint64_t quota = 0;
	bool disabled = false, admin = false, has_quota, has_disabled, has_admin;
	char hash[AUTH_HASH_MAX];
	struct err err;
	struct http_limit_change lim[HTTP_LIMIT_RULES];
	size_t n_lim = 0;
	if (http_json_only(c, body, allowed) < 0 || http_limits_parse(c, body, lim, &n_lim) < 0 ||
	    password_member(c, body, &pw) < 0 ||
	    http_json_uint(c, body, "quota", ACCOUNT_QUOTA_MAX, &quota, &has_quota) < 0 ||
	    http_json_bool(c, body, "disabled", &disabled, &has_disabled) < 0 ||
	    http_json_bool(c, body, "domain_admin", &admin, &has_admin) < 0)
		goto out;
	struct store_account a;
	if (store_account_get(c->st, addr, &a, &err) < 0) {
		http_store_error(c, &err, "account get");
		goto out;
	}
	store_account_deinit(&a);
	if (pw && password_hash(c, pw, hash) < 0)
		goto out;
	if ((pw && store_account_set_password(c->st, addr, hash, &err) < 0) ||
	    (has_quota && store_account_set_quota(c->st, addr, quota, &err) < 0) ||
	    (has_disabled && store_account_set_disabled(c->st, addr, disabled, &err) < 0) ||
	    (has_admin && store_account_set_domain_admin(c->st, addr, admin, &err) < 0)) {
		http_store_error(c, &err, "account update");
		goto out;
	}
	if (http_limits_apply(c, false, addr, lim, n_lim) < 0)
		goto out;
	account_reply(c, 200, addr, NULL);
out:
	json_decref(body);
}

static void
route_account_delete(struct http_ctx *c)
{
	char addr[ADDR_MAX + 1];
	if (address_param(c, false, addr) < 0)
		return;
	struct err err;
	if (store_account_remove(c->st, addr, &err) < 0) {
		http_store_error(c, &err, "account remove");
		return;
	}
	http_reply(c, 204, NULL);
}

/* GET .../limits: the account's rate limits and current usage (issue 8). */
static void
route_account_limits(struct http_ctx *c)
{
	char addr[ADDR_MAX + 1];
	if (address_param(c, false, addr) < 0)
		return;
	struct store_account a;
	struct err err;
	if (store_account_get(c->st, addr, &a, &err) < 0) {
		http_store_error(c, &err, "account get");
		return;
	}
	store_account_deinit(&a);
	http_limits_reply(c, false, addr);
}

/* ---- aliases ---- */

static json_t *
alias_json(const struct store_alias *a)
{
	json_t *t = json_array();
	for (size_t i = 0; i < a->n_targets; i++)
		json_array_append_new(t, http_json_strn(a->targets[i]));
	json_t *o = json_object();
	json_object_set_new(o, "address", http_json_strn(a->address));
	json_object_set_new(o, "targets", t);
	return o;
}

/* Answers status with the alias addr (404 when there is none). */
static void
alias_reply(struct http_ctx *c, unsigned status, const char *addr)
{
	struct store_alias *v;
	size_t n;
	struct err err;
	if (store_alias_list(c->st, address_domain(addr), &v, &n, &err) < 0) {
		http_store_error(c, &err, "alias list");
		return;
	}
	json_t *o = NULL;
	for (size_t i = 0; i < n && o == NULL; i++)
		if (strcasecmp(v[i].address, addr) == 0)
			o = alias_json(&v[i]);
	store_alias_list_free(&v, n);
	if (o == NULL) {
		http_error(c, 404, "not_found", NULL, "no alias %s", addr);
		return;
	}
	http_reply(c, status, o);
}

static void
route_alias_list(struct http_ctx *c)
{
	char dom[ADDR_DOMAIN_MAX + 1];
	bool all;
	if (list_domain(c, dom, &all) < 0)
		return;
	struct store_alias *v;
	size_t n;
	struct err err;
	if (store_alias_list(c->st, all ? NULL : dom, &v, &n, &err) < 0) {
		http_store_error(c, &err, "alias list");
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, alias_json(&v[i]));
	store_alias_list_free(&v, n);
	http_list_reply(c, a, "address");
}

static void
route_alias_create(struct http_ctx *c)
{
	static const char *const allowed[] = {"address", "targets", NULL};
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *s;
	char addr[ADDR_MAX + 1];
	char(*targets)[ADDR_MAX + 1] = NULL;
	const char **tp = NULL;
	size_t nt = 0;
	if (http_json_only(c, body, allowed) < 0 ||
	    http_json_str(c, body, "address", true, ADDR_MAX, &s) < 0)
		goto out;
	const json_t *jt = json_object_get(body, "targets");
	if (jt == NULL || json_is_null(jt)) {
		http_error(c, 422, "missing_field", "targets", "targets is required");
		goto out;
	}
	if (!json_is_array(jt)) {
		http_error(c, 422, "invalid_type", "targets",
		           "targets must be an array of addresses");
		goto out;
	}
	nt = json_array_size(jt);
	if (nt == 0 || nt > ALIAS_TARGETS_MAX) {
		http_error(c, 422, "out_of_range", "targets", "targets must have 1 to %d addresses",
		           ALIAS_TARGETS_MAX);
		goto out;
	}
	targets = xcalloc(nt, sizeof *targets);
	tp = xcalloc(nt, sizeof *tp);
	for (size_t i = 0; i < nt; i++) {
		char field[32];
		const char *t;
		(void)snprintf(field, sizeof field, "targets[%zu]", i);
		if (http_json_str_at(c, json_array_get(jt, i), field, true, ADDR_MAX, &t) < 0)
			goto out;
		if (!http_addr_norm(t, false, targets[i])) {
			http_error(c, 422, "invalid", field, "not a valid address (local@domain)");
			goto out;
		}
		tp[i] = targets[i];
	}
	if (!http_addr_norm(s, true, addr)) {
		http_error(c, 422, "invalid", "address",
		           "not a valid address (local@domain, or @domain for a catch-all)");
		goto out;
	}
	if (http_scope_domain(c, address_domain(addr)) < 0 ||
	    domain_served(c, address_domain(addr), "address") < 0)
		goto out;
	struct err err;
	if (store_alias_add(c->st, addr, tp, nt, &err) < 0) {
		http_store_error(c, &err, "alias add");
		goto out;
	}
	alias_reply(c, 201, addr);
out:
	free(tp);
	free(targets);
	json_decref(body);
}

static void
route_alias_get(struct http_ctx *c)
{
	char addr[ADDR_MAX + 1];
	if (address_param(c, true, addr) < 0)
		return;
	alias_reply(c, 200, addr);
}

static void
route_alias_delete(struct http_ctx *c)
{
	char addr[ADDR_MAX + 1], target[ADDR_MAX + 1];
	if (address_param(c, true, addr) < 0)
		return;
	const char *t = http_query(c, "target");
	if (t && (strlen(t) > ADDR_MAX || !http_addr_norm(t, false, target))) {
		http_error(c, 400, "bad_request", "target", "target must be an address");
		return;
	}
	struct err err;
	if (store_alias_remove(c->st, addr, t ? target : NULL, &err) < 0) {
		http_store_error(c, &err, "alias remove");
		return;
	}
	http_reply(c, 204, NULL);
}

const struct http_route http_routes_accounts[] = {
    {"GET", "/api/v1/accounts", route_account_list, 0},
    {"POST", "/api/v1/accounts", route_account_create, 0},
    {"GET", "/api/v1/accounts/{address}", route_account_get, 0},
    {"PATCH", "/api/v1/accounts/{address}", route_account_update, 0},
    {"DELETE", "/api/v1/accounts/{address}", route_account_delete, 0},
    {"GET", "/api/v1/accounts/{address}/limits", route_account_limits, 0},
    {"GET", "/api/v1/aliases", route_alias_list, 0},
    {"POST", "/api/v1/aliases", route_alias_create, 0},
    {"GET", "/api/v1/aliases/{address}", route_alias_get, 0},
    {"DELETE", "/api/v1/aliases/{address}", route_alias_delete, 0},
};
const size_t http_routes_accounts_n = sizeof http_routes_accounts / sizeof http_routes_accounts[0];
