/* Keeps the OpenAPI document (openapi.json, embedded by openapi.c) and the router in sync: the
 * document parses and is OpenAPI 3.1.0; every route of http_route_at() is an operation under
 * the same path template and every operation is a route; path parameters match the {names} of
 * the template; the routes without a key say `security: []` and the others do not; admin routes
 * document 403; operationIds exist and are unique; every $ref resolves inside the document;
 * and GET /api/v1/openapi.json serves exactly this text without a key. Mismatches are printed
 * by name. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_private.h"
#include "test.h"
#include "util/log.h"

#define REF_DEPTH_MAX 64 /* the document nests far less; a loop would stop here */

static const char *const op_methods[] = {"get", "post", "put", "patch", "delete", NULL};
/* the other members a Path Item Object may have (OpenAPI 3.1 §4.8.9) */
static const char *const path_item_other[] = {"parameters", "summary", "description",
                                              "servers",    "$ref",    NULL};

static json_t *doc;

static bool
in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* "GET" → "get" into out (16 bytes). */
static void
lower_method(const char *m, char out[16])
{
	size_t i = 0;
	for (; m[i] && i < 15; i++)
		out[i] = (char)tolower((unsigned char)m[i]);
	out[i] = '\0';
}

static const struct http_route *
route_find(const char *pattern, const char *method_lower)
{
	char m[16];
	for (size_t i = 0; i < http_route_count(); i++) {
		const struct http_route *r = http_route_at(i);
		lower_method(r->method, m);
		if (strcmp(r->pattern, pattern) == 0 && strcmp(m, method_lower) == 0)
			return r;
	}
	return NULL;
}

/* A JSON pointer ("#/a/b~1c") inside doc, or NULL. */
static json_t *
ref_resolve(const char *ref)
{
	if (strncmp(ref, "#/", 2) != 0)
		return NULL;
	json_t *v = doc;
	const char *p = ref + 1;
	while (*p == '/' && v) {
		p++;
		char tok[256];
		size_t n = 0;
		for (; *p && *p != '/'; p++) {
			char ch = *p;
			if (ch == '~') {
				if (p[1] != '0' && p[1] != '1')
					return NULL;
				ch = p[1] == '0' ? '~' : '/';
				p++;
			}
			if (n + 1 >= sizeof tok)
				return NULL;
			tok[n++] = ch;
		}
		tok[n] = '\0';
		if (json_is_object(v)) {
			v = json_object_get(v, tok);
		} else if (json_is_array(v)) {
			char *end;
			unsigned long i = strtoul(tok, &end, 10);
			v = n > 0 && *end == '\0' ? json_array_get(v, i) : NULL;
		} else {
			v = NULL;
		}
	}
	return *p == '\0' ? v : NULL;
}

/* v itself, or what its "$ref" points to (one level). */
static json_t *
deref(json_t *v)
{
	json_t *r = json_object_get(v, "$ref");
	return json_is_string(r) ? ref_resolve(json_string_value(r)) : v;
}

static json_t *
operation(const char *path, const char *method_lower)
{
	return json_object_get(json_object_get(json_object_get(doc, "paths"), path), method_lower);
}

static void
test_parse(void)
{
	json_error_t je;
	doc = json_loads(http_openapi_json, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		fprintf(stderr, "  openapi.json line %d, column %d: %s\n", je.line, je.column,
		        je.text);
		CHECK(doc != NULL);
		return;
	}
	CHECK_STR(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
	json_t *info = json_object_get(doc, "info");
	CHECK_STR(json_string_value(json_object_get(info, "title")), "Lightr");
	CHECK(json_is_string(json_object_get(info, "version")));
	CHECK(json_is_object(json_object_get(doc, "paths")));
	json_t *bearer = json_object_get(
	    json_object_get(json_object_get(doc, "components"), "securitySchemes"), "bearer");
	CHECK_STR(json_string_value(json_object_get(bearer, "type")), "http");
	CHECK_STR(json_string_value(json_object_get(bearer, "scheme")), "bearer");
	json_t *sec = json_object_get(doc, "security");
	CHECK(json_is_array(sec) && json_object_get(json_array_get(sec, 0), "bearer") != NULL);
}

/* Does op (or its path item) declare a required path parameter called name? */
static bool
has_path_param(json_t *item, json_t *op, const char *name)
{
	json_t *lists[2] = {json_object_get(item, "parameters"), json_object_get(op, "parameters")};
	for (size_t l = 0; l < 2; l++) {
		size_t i;
		json_t *p;
		json_array_foreach(lists[l], i, p)
		{
			p = deref(p);
			if (json_is_string(json_object_get(p, "name")) &&
			    strcmp(json_string_value(json_object_get(p, "name")), name) == 0 &&
			    json_is_string(json_object_get(p, "in")) &&
			    strcmp(json_string_value(json_object_get(p, "in")), "path") == 0 &&
			    json_is_true(json_object_get(p, "required")))
				return true;
		}
	}
	return false;
}

/* Every {name} segment of pattern has a path parameter, and every path parameter of the
 * operation is a {name} of pattern. */
static bool
path_params_match(const char *pattern, json_t *item, json_t *op, const char *what)
{
	bool ok = true;
	for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
		const char *e = strchr(p, '}');
		char name[64];
		if (e == NULL || (size_t)(e - p - 1) >= sizeof name) {
			fprintf(stderr, "  %s: malformed pattern\n", what);
			return false;
		}
		memcpy(name, p + 1, (size_t)(e - p - 1));
		name[e - p - 1] = '\0';
		if (!has_path_param(item, op, name)) {
			fprintf(stderr, "  %s: no required path parameter \"%s\"\n", what, name);
			ok = false;
		}
	}
	json_t *lists[2] = {json_object_get(item, "parameters"), json_object_get(op, "parameters")};
	for (size_t l = 0; l < 2; l++) {
		size_t i;
		json_t *p;
		json_array_foreach(lists[l], i, p)
		{
			p = deref(p);
			const char *in = json_string_value(json_object_get(p, "in"));
			const char *name = json_string_value(json_object_get(p, "name"));
			if (in == NULL || name == NULL) {
				fprintf(stderr, "  %s: a parameter without name or in\n", what);
				ok = false;
				continue;
			}
			char seg[80];
			(void)snprintf(seg, sizeof seg, "{%s}", name);
			if (strcmp(in, "path") == 0 && strstr(pattern, seg) == NULL) {
				fprintf(stderr, "  %s: path parameter \"%s\" is not in the path\n",
				        what, name);
				ok = false;
			}
		}
	}
	return ok;
}

static void
test_routes_documented(void)
{
	size_t n = http_route_count(), missing = 0;
	CHECK(n > 0);
	for (size_t i = 0; i < n; i++) {
		const struct http_route *r = http_route_at(i);
		char m[16];
		lower_method(r->method, m);
		json_t *op = operation(r->pattern, m);
		if (op == NULL) {
			fprintf(stderr, "  route %s %s is not in openapi.json\n", r->method,
			        r->pattern);
			missing++;
			continue;
		}
		char what[256];
		(void)snprintf(what, sizeof what, "%s %s", r->method, r->pattern);
		json_t *item = json_object_get(json_object_get(doc, "paths"), r->pattern);
		CHECK(path_params_match(r->pattern, item, op, what));
		/* no key needed exactly when the operation overrides security with [] */
		json_t *sec = json_object_get(op, "security");
		bool open = json_is_array(sec) && json_array_size(sec) == 0;
		if (open != ((r->flags & HTTP_ROUTE_NOAUTH) != 0)) {
			fprintf(stderr, "  %s: security: [] %s\n", what,
			        open ? "but the route needs a key"
			             : "missing (the route needs no key)");
			CHECK(open == ((r->flags & HTTP_ROUTE_NOAUTH) != 0));
		}
		json_t *resp = json_object_get(op, "responses");
		if (!(r->flags & HTTP_ROUTE_NOAUTH) && json_object_get(resp, "401") == NULL) {
			fprintf(stderr, "  %s: no 401 response\n", what);
			CHECK(json_object_get(resp, "401") != NULL);
		}
		if ((r->flags & HTTP_ROUTE_ADMIN) && json_object_get(resp, "403") == NULL) {
			fprintf(stderr, "  %s: admin only, but no 403 response\n", what);
			CHECK(json_object_get(resp, "403") != NULL);
		}
	}
	CHECK_INT(missing, 0);
}

static void
test_paths_routed(void)
{
	const char *path;
	json_t *item;
	size_t extra = 0;
	json_object_foreach(json_object_get(doc, "paths"), path, item)
	{
		const char *key;
		json_t *op;
		size_t n_ops = 0;
		json_object_foreach(item, key, op)
		{
			if (in_list(path_item_other, key))
				continue;
			if (!in_list(op_methods, key)) {
				fprintf(stderr, "  %s: \"%s\" is not a method the router knows\n",
				        path, key);
				extra++;
				continue;
			}
			n_ops++;
			if (route_find(path, key) == NULL) {
				fprintf(stderr, "  %s %s is in openapi.json but is no route\n", key,
				        path);
				extra++;
			}
			json_t *resp = json_object_get(op, "responses");
			bool ok2xx = false;
			const char *code;
			json_t *r;
			json_object_foreach(resp, code, r)
			{
				(void)r;
				/* a redirect is the success of /t/c/{token} */
				ok2xx |= code[0] == '2' || strcmp(code, "302") == 0;
			}
			if (!ok2xx) {
				fprintf(stderr, "  %s %s: no 2xx response\n", key, path);
				extra++;
			}
		}
		if (n_ops == 0) {
			fprintf(stderr, "  %s: a path without operations\n", path);
			extra++;
		}
	}
	CHECK_INT(extra, 0);
}

static void
test_operation_ids(void)
{
	json_t *seen = json_object();
	const char *path;
	json_t *item;
	size_t bad = 0;
	json_object_foreach(json_object_get(doc, "paths"), path, item)
	{
		for (size_t m = 0; op_methods[m]; m++) {
			json_t *op = json_object_get(item, op_methods[m]);
			if (op == NULL)
				continue;
			const char *id = json_string_value(json_object_get(op, "operationId"));
			if (id == NULL || *id == '\0') {
				fprintf(stderr, "  %s %s: no operationId\n", op_methods[m], path);
				bad++;
				continue;
			}
			if (json_is_string(json_object_get(op, "summary")) == 0) {
				fprintf(stderr, "  %s: no summary\n", id);
				bad++;
			}
			json_t *prev = json_object_get(seen, id);
			if (prev) {
				fprintf(stderr, "  operationId %s twice: %s and %s %s\n", id,
				        json_string_value(prev), op_methods[m], path);
				bad++;
				continue;
			}
			char where[300];
			(void)snprintf(where, sizeof where, "%s %s", op_methods[m], path);
			json_object_set_new(seen, id, json_string(where));
		}
	}
	CHECK(json_object_size(seen) > 0);
	CHECK_INT(bad, 0);
	json_decref(seen);
}

/* where + "/" + key as a JSON pointer (RFC 6901: "~" as "~0", "/" as "~1"), truncated to n. */
static void
pointer_append(char *out, size_t n, const char *where, const char *key)
{
	int w = snprintf(out, n, "%s/", where);
	size_t o = w < 0 ? 0 : (size_t)w;
	for (; *key && o + 3 < n; key++) {
		if (*key == '~' || *key == '/') {
			out[o++] = '~';
			out[o++] = *key == '~' ? '0' : '1';
		} else {
			out[o++] = *key;
		}
	}
	if (o < n)
		out[o] = '\0';
}

/* Counts the $refs under v that do not resolve; where is the JSON pointer of v. */
static size_t
refs_check(json_t *v, const char *where, int depth, size_t *n_refs)
{
	if (depth > REF_DEPTH_MAX) {
		fprintf(stderr, "  %s: nested too deep\n", where);
		return 1;
	}
	size_t bad = 0;
	char sub[512];
	if (json_is_object(v)) {
		const char *key;
		json_t *m;
		json_object_foreach(v, key, m)
		{
			pointer_append(sub, sizeof sub, where, key);
			if (strcmp(key, "$ref") == 0 && json_is_string(m)) {
				(*n_refs)++;
				if (ref_resolve(json_string_value(m)) == NULL) {
					fprintf(stderr, "  %s: \"%s\" does not resolve\n", sub,
					        json_string_value(m));
					bad++;
				}
				continue;
			}
			bad += refs_check(m, sub, depth + 1, n_refs);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *m;
		json_array_foreach(v, i, m)
		{
			(void)snprintf(sub, sizeof sub, "%s/%zu", where, i);
			bad += refs_check(m, sub, depth + 1, n_refs);
		}
	}
	return bad;
}

static void
test_refs(void)
{
	size_t n_refs = 0;
	CHECK_INT(refs_check(doc, "#", 0, &n_refs), 0);
	CHECK(n_refs > 0);
	/* the resolver itself */
	CHECK(ref_resolve("#/components/schemas/Error") != NULL);
	CHECK(ref_resolve("#/components/schemas/NoSuchThing") == NULL);
	CHECK(ref_resolve("#/paths/~1healthz/get") != NULL);
	CHECK(ref_resolve("other.json#/x") == NULL);
	CHECK(ref_resolve("#/servers/0/url") != NULL);
}

/* GET /api/v1/openapi.json without a key serves the document as it is. */
static void
test_served(void)
{
	struct http_limits lim = {0};
	static const struct http_hooks hooks;
	struct http_api *api = http_api_new(NULL, &hooks, &lim);
	struct http_request req = {.method = "GET", .path = "/api/v1/openapi.json"};
	struct http_response resp;
	buf_init(&resp.body, 0);
	http_api_handle(api, &req, &resp);
	CHECK_INT(resp.status, 200);
	CHECK_STR(resp.content_type, "application/json");
	CHECK_INT(resp.body.len, strlen(http_openapi_json));
	CHECK(resp.body.len == strlen(http_openapi_json) &&
	      memcmp(resp.body.data, http_openapi_json, resp.body.len) == 0);
	buf_deinit(&resp.body);
	http_api_free(&api);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	RUN(test_parse);
	if (doc == NULL)
		return test_done("http_openapi");
	RUN(test_routes_documented);
	RUN(test_paths_routed);
	RUN(test_operation_ids);
	RUN(test_refs);
	RUN(test_served);
	json_decref(doc);
	return test_done("http_openapi");
}
