/* Templates per domain (issue 6): list, create, get, update, delete, and a test render.
 *
 * The domain comes from http_scope_query_domain (a domain key's own domain, or ?domain= for an
 * admin key), checked before any lookup. Every part that is stored was compiled first with
 * tmpl_compile (subject and text as plain text, html with HTML escaping), so a stored template
 * always compiles; a syntax error is 422 "template_syntax" naming the part and the position.
 * An empty string for a part is the same as no part. */
#include <stdio.h>
#include <string.h>

#include "http_private.h"
#include "tmpl/tmpl.h"

#define TEMPLATE_NAME_MAX 64

enum tpl_part { TPL_SUBJECT, TPL_TEXT, TPL_HTML, TPL_N };

static const struct {
	const char *field;
	bool html;
} tpl_parts[TPL_N] = {
    [TPL_SUBJECT] = {"subject", false},
    [TPL_TEXT] = {"text", false},
    [TPL_HTML] = {"html", true},
};

/* The parts of t in tpl_parts order (borrowed). */
static void
tpl_parts_of(const struct store_template *t, const char *v[TPL_N])
{
	v[TPL_SUBJECT] = t->subject;
	v[TPL_TEXT] = t->text;
	v[TPL_HTML] = t->html;
}

static bool
tpl_name_is_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TEMPLATE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

static json_t *
tpl_json(const struct store_template *t)
{
	return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o}", "name", t->name, "subject",
	                 http_json_strn(t->subject), "text", http_json_strn(t->text), "html",
	                 http_json_strn(t->html), "created", http_json_time(t->created), "updated",
	                 http_json_time(t->updated));
}

/* The domain of the request and the {name} path parameter (404 when malformed). */
static int
tpl_target(struct http_ctx *c, char domain[ADDR_DOMAIN_MAX + 1], const char **name_r)
{
	if (http_scope_query_domain(c, domain) < 0)
		return -1;
	if (c->n_params < 1 || !tpl_name_is_valid(c->params[0]))
		return http_error(c, 404, "not_found", NULL, "no such template");
	*name_r = c->params[0];
	return 0;
}

/* Compiles src as part p to check its syntax: 0, or 422 template_syntax. */
static int
tpl_check(struct http_ctx *c, enum tpl_part p, const char *src)
{
	if (src == NULL)
		return 0;
	struct tmpl_error te = {0};
	struct tmpl *t = tmpl_compile(src, strlen(src), tpl_parts[p].html, &te);
	if (t == NULL)
		return http_error(c, 422, "template_syntax", tpl_parts[p].field,
		                  "line %u, column %u: %s", te.line, te.column, te.msg);
	tmpl_free(&t);
	return 0;
}

/* Reads part p from body: *present false when the member is absent; *src_r NULL for null or
 * "" (the part is removed / not given). 422 for a non-string or one above TMPL_SOURCE_MAX. */
static int
tpl_read_part(struct http_ctx *c, const json_t *body, enum tpl_part p, bool *present,
              const char **src_r)
{
	*present = json_object_get(body, tpl_parts[p].field) != NULL;
	if (http_json_str(c, body, tpl_parts[p].field, false, TMPL_SOURCE_MAX, src_r) < 0)
		return -1;
	if (*src_r && **src_r == '\0')
		*src_r = NULL;
	return 0;
}

/* 404 with a message naming the domain when it is not ours, else 0. */
static int
tpl_domain_exists(struct http_ctx *c, const char *domain)
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

static void
route_list(struct http_ctx *c)
{
	char domain[ADDR_DOMAIN_MAX + 1];
	if (http_scope_query_domain(c, domain) < 0 || tpl_domain_exists(c, domain) < 0)
		return;
	struct store_template *v;
	size_t n;
	struct err err;
	if (store_template_list(c->st, domain, &v, &n, &err) < 0) {
		http_store_error(c, &err, "template list");
		return;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, tpl_json(&v[i]));
	store_template_list_free(&v, n);
	http_list_reply(c, items, "name");
}

/* Answers 200/201 with the stored template (domain, name). */
static void
tpl_reply_stored(struct http_ctx *c, unsigned status, const char *domain, const char *name)
{
	struct store_template t;
	struct err err;
	if (store_template_get(c->st, domain, name, &t, &err) < 0) {
		http_store_error(c, &err, "template get");
		return;
	}
	http_reply(c, status, tpl_json(&t));
	store_template_deinit(&t);
}

static void
route_create(struct http_ctx *c)
{
	static const char *const allowed[] = {"name", "subject", "text", "html", NULL};
	char domain[ADDR_DOMAIN_MAX + 1];
	if (http_scope_query_domain(c, domain) < 0)
		return;
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *name, *src[TPL_N];
	bool present;
	if (http_json_only(c, body, allowed) < 0 ||
	    http_json_str(c, body, "name", true, TEMPLATE_NAME_MAX, &name) < 0)
		goto out;
	if (!tpl_name_is_valid(name)) {
		http_error(c, 422, "invalid", "name",
		           "a template name is 1 to %d characters of A-Z a-z 0-9 _ . -",
		           TEMPLATE_NAME_MAX);
		goto out;
	}
	for (int p = 0; p < TPL_N; p++)
		if (tpl_read_part(c, body, (enum tpl_part)p, &present, &src[p]) < 0)
			goto out;
	if (src[TPL_TEXT] == NULL && src[TPL_HTML] == NULL) {
		http_error(c, 422, "missing_field", "text", "a template needs text or html");
		goto out;
	}
	for (int p = 0; p < TPL_N; p++)
		if (tpl_check(c, (enum tpl_part)p, src[p]) < 0)
			goto out;
	struct store_template t = {
	    .domain = domain,
	    .name = (char *)name,
	    .subject = (char *)src[TPL_SUBJECT],
	    .text = (char *)src[TPL_TEXT],
	    .html = (char *)src[TPL_HTML],
	};
	struct err err;
	if (store_template_add(c->st, &t, c->now, &err) < 0) {
		if (err.code == STORE_EEXIST)
			http_error(c, 409, "conflict", "name", "template %s exists in %s", name,
			           domain);
		else if (err.code == STORE_ENOTFOUND)
			http_error(c, 404, "not_found", "domain", "no domain %s", domain);
		else
			http_store_error(c, &err, "template add");
		goto out;
	}
	tpl_reply_stored(c, 201, domain, name);
out:
	json_decref(body);
}

static void
route_get(struct http_ctx *c)
{
	char domain[ADDR_DOMAIN_MAX + 1];
	const char *name;
	if (tpl_target(c, domain, &name) < 0)
		return;
	tpl_reply_stored(c, 200, domain, name);
}

static void
route_update(struct http_ctx *c)
{
	static const char *const allowed[] = {"subject", "text", "html", NULL};
	char domain[ADDR_DOMAIN_MAX + 1];
	const char *name;
	if (tpl_target(c, domain, &name) < 0)
		return;
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	const char *src[TPL_N];
	bool present[TPL_N];
	if (http_json_only(c, body, allowed) < 0)
		goto out;
	for (int p = 0; p < TPL_N; p++)
		if (tpl_read_part(c, body, (enum tpl_part)p, &present[p], &src[p]) < 0)
			goto out;
	for (int p = 0; p < TPL_N; p++)
		if (tpl_check(c, (enum tpl_part)p, src[p]) < 0)
			goto out;
	struct store_template t;
	struct err err;
	if (store_template_get(c->st, domain, name, &t, &err) < 0) {
		http_store_error(c, &err, "template get");
		goto out;
	}
	const char *old[TPL_N], *now[TPL_N];
	tpl_parts_of(&t, old);
	for (int p = 0; p < TPL_N; p++)
		now[p] = present[p] ? src[p] : old[p];
	if (now[TPL_TEXT] == NULL && now[TPL_HTML] == NULL) {
		http_error(c, 422, "missing_field", "text", "a template needs text or html");
	} else {
		struct store_template u = {
		    .domain = domain,
		    .name = (char *)name,
		    .subject = (char *)now[TPL_SUBJECT],
		    .text = (char *)now[TPL_TEXT],
		    .html = (char *)now[TPL_HTML],
		};
		if (store_template_update(c->st, &u, c->now, &err) < 0)
			http_store_error(c, &err, "template update");
		else
			tpl_reply_stored(c, 200, domain, name);
	}
	store_template_deinit(&t);
out:
	json_decref(body);
}

static void
route_delete(struct http_ctx *c)
{
	char domain[ADDR_DOMAIN_MAX + 1];
	const char *name;
	if (tpl_target(c, domain, &name) < 0)
		return;
	struct err err;
	if (store_template_remove(c->st, domain, name, &err) < 0) {
		http_store_error(c, &err, "template remove");
		return;
	}
	http_reply(c, 204, NULL);
}

/* Adds the names of m not yet in arr (a JSON array of strings). */
static void
tpl_missing_merge(json_t *arr, const struct tmpl_missing *m)
{
	for (size_t i = 0; i < m->n; i++) {
		bool seen = false;
		for (size_t j = 0; j < json_array_size(arr) && !seen; j++)
			seen = strcmp(json_string_value(json_array_get(arr, j)), m->names[i]) == 0;
		if (!seen)
			json_array_append_new(arr, http_json_strn(m->names[i]));
	}
}

/* Renders part p of source src into *out_r (a JSON string, or null when src is NULL), adding
 * missing names to missing. */
static int
tpl_render_part(struct http_ctx *c, enum tpl_part p, const char *src, const json_t *vars,
                json_t *missing, json_t **out_r)
{
	*out_r = json_null();
	if (src == NULL)
		return 0;
	struct tmpl_error te = {0};
	struct tmpl *t = tmpl_compile(src, strlen(src), tpl_parts[p].html, &te);
	if (t == NULL) /* stored before a syntax change; report it like a create would */
		return http_error(c, 422, "template_syntax", tpl_parts[p].field,
		                  "line %u, column %u: %s", te.line, te.column, te.msg);
	struct buf out;
	struct tmpl_missing m = {0};
	struct err err;
	buf_init(&out, TMPL_OUTPUT_MAX + 1);
	int rc = tmpl_render(t, vars, &out, &m, &err);
	tmpl_free(&t);
	if (rc < 0) {
		http_error(c, 422, "too_long", tpl_parts[p].field, "rendered %s: %s",
		           tpl_parts[p].field, err.msg);
	} else {
		json_t *s = json_stringn(buf_cstr(&out), out.len);
		if (s == NULL) {
			rc = http_error(c, 422, "invalid", tpl_parts[p].field,
			                "the rendered %s is not valid UTF-8", tpl_parts[p].field);
		} else {
			json_decref(*out_r);
			*out_r = s;
			tpl_missing_merge(missing, &m);
		}
	}
	tmpl_missing_deinit(&m);
	buf_deinit(&out);
	return rc;
}

static void
route_render(struct http_ctx *c)
{
	static const char *const allowed[] = {"variables", NULL};
	char domain[ADDR_DOMAIN_MAX + 1];
	const char *name;
	if (tpl_target(c, domain, &name) < 0)
		return;
	json_t *body = http_body_object(c);
	if (body == NULL)
		return;
	if (http_json_only(c, body, allowed) < 0)
		goto out;
	const json_t *vars = json_object_get(body, "variables");
	if (json_is_null(vars))
		vars = NULL;
	if (vars && !json_is_object(vars)) {
		http_error(c, 422, "invalid_type", "variables", "variables must be an object");
		goto out;
	}
	struct store_template t;
	struct err err;
	if (store_template_get(c->st, domain, name, &t, &err) < 0) {
		http_store_error(c, &err, "template get");
		goto out;
	}
	const char *src[TPL_N];
	json_t *res[TPL_N] = {NULL}, *missing = json_array();
	tpl_parts_of(&t, src);
	int rc = 0;
	for (int p = 0; p < TPL_N && rc == 0; p++)
		rc = tpl_render_part(c, (enum tpl_part)p, src[p], vars, missing, &res[p]);
	if (rc == 0) {
		http_reply(c, 200,
		           json_pack("{s:o,s:o,s:o,s:o}", "subject", res[TPL_SUBJECT], "text",
		                     res[TPL_TEXT], "html", res[TPL_HTML], "missing", missing));
	} else {
		for (int p = 0; p < TPL_N; p++)
			json_decref(res[p]);
		json_decref(missing);
	}
	store_template_deinit(&t);
out:
	json_decref(body);
}

const struct http_route http_routes_templates[] = {
    {"GET", "/api/v1/templates", route_list, 0},
    {"POST", "/api/v1/templates", route_create, 0},
    {"GET", "/api/v1/templates/{name}", route_get, 0},
    {"PATCH", "/api/v1/templates/{name}", route_update, 0},
    {"DELETE", "/api/v1/templates/{name}", route_delete, 0},
    {"POST", "/api/v1/templates/{name}/render", route_render, 0},
};
const size_t http_routes_templates_n =
    sizeof http_routes_templates / sizeof http_routes_templates[0];
