/* Inside the REST API: the request context, the route tables and the helpers every
 * routes_<resource>.c uses (implemented in api.c and json.c). A route handler answers through
 * exactly one of http_reply / http_error / http_list_reply (or a helper that calls one of them
 * and returns -1); it never touches resp directly. */
#ifndef LIGHTR_HTTP_PRIVATE_H
#define LIGHTR_HTTP_PRIVATE_H

#include <jansson.h>

#include "http.h"
#include "mail/addr.h"

#ifndef LIGHTR_VERSION
#define LIGHTR_VERSION "0.1.0"
#endif

#define HTTP_PARAMS_MAX    4
#define HTTP_LIMIT_DEFAULT 100 /* list page size when ?limit= is absent */
#define HTTP_LIMIT_MAX     1000

struct http_api {
	struct store *st;
	const struct http_hooks *hooks;
	struct http_limits lim;
	/* idempotency keys in flight (routes_messages.c) */
	void *inflight;
};

struct http_ctx {
	struct http_api *api;
	struct store *st;
	const struct http_hooks *hooks;
	const struct http_request *req;
	struct http_response *resp;
	/* the authenticated key (not for HTTP_ROUTE_NOAUTH routes) */
	int64_t key_id;
	bool admin;
	char key_domain[ADDR_DOMAIN_MAX + 1]; /* "" for admin keys */
	/* path parameters, in pattern order, percent-decoded, NUL-terminated */
	char *params[HTTP_PARAMS_MAX];
	size_t n_params;
	char request_id[32]; /* for logs, "req_<token>" */
	int64_t now;         /* unix seconds at the start of the request */
	bool answered;
};

typedef void http_route_fn(struct http_ctx *c);
enum {
	HTTP_ROUTE_NOAUTH = 1u << 0, /* no API key needed (/healthz, openapi.json) */
	HTTP_ROUTE_ADMIN = 1u << 1,  /* admin keys only: others get 403 */
	HTTP_ROUTE_SEND = 1u << 2,   /* body limit send_max instead of body_max */
};
struct http_route {
	const char *method;  /* "GET", "POST", "PATCH", "DELETE" (HEAD is answered as GET) */
	const char *pattern; /* "/api/v1/domains/{domain}": a {name} segment matches one
	                      * non-empty path segment */
	http_route_fn *fn;
	unsigned flags;
};
/* Each routes_<resource>.c defines one table; api.c lists them all. */
#define HTTP_ROUTE_TABLE(name)                                                                     \
	extern const struct http_route http_routes_##name[];                                       \
	extern const size_t http_routes_##name##_n
HTTP_ROUTE_TABLE(meta); /* api.c: /healthz, /api/v1/openapi.json */
HTTP_ROUTE_TABLE(domains);
HTTP_ROUTE_TABLE(accounts);
HTTP_ROUTE_TABLE(templates);
HTTP_ROUTE_TABLE(apikeys);
HTTP_ROUTE_TABLE(messages);
HTTP_ROUTE_TABLE(queue);
HTTP_ROUTE_TABLE(events);       /* issue 7: /api/v1/events */
HTTP_ROUTE_TABLE(webhooks);     /* /api/v1/webhooks... */
HTTP_ROUTE_TABLE(suppressions); /* /api/v1/suppressions... */
HTTP_ROUTE_TABLE(track);        /* /t/o/{token}, /t/c/{token} (no key) */

/* Frees what routes_messages.c keeps in api (http_api_free calls it). */
void http_messages_cleanup(struct http_api *api);

/* Every route, for the router and for the OpenAPI test (api.c). */
const struct http_route *http_route_at(size_t i);
size_t http_route_count(void);
/* The OpenAPI 3.1 document (openapi.c), static JSON text. */
extern const char http_openapi_json[];

/* ---- answering (api.c) ---- */
/* Sends len bytes of data (copied) as content_type (a static string) with status; location
 * (may be NULL) becomes the Location header (302). */
void http_reply_raw(struct http_ctx *c, unsigned status, const char *content_type, const void *data,
                    size_t len, const char *location);
/* Sends obj (reference stolen; NULL = empty body) with status. */
void http_reply(struct http_ctx *c, unsigned status, json_t *obj);
/* Sends the standard error body; field may be NULL. Returns -1 for "return http_error(...)". */
int http_error(struct http_ctx *c, unsigned status, const char *code, const char *field,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A rate limit refused (issue 8): 429 {"error": {"code": "rate_limited", "message": v->text,
 * "field": null, "limit": {"rule", "who", "limit", "retry_after"}}} with Retry-After
 * v->retry_after_s. A limit that waiting cannot satisfy (retry_after_s < 1:
 * recipients_per_message) is 422 "limit_exceeded" with "retry_after": null and no
 * Retry-After. Returns -1. */
int http_error_limited(struct http_ctx *c, const struct http_limit_verdict *v);
/* Maps a store error: ENOTFOUND 404 not_found, EEXIST 409 conflict, EBUSY 409 conflict,
 * EINVAL 422 invalid, EOVERQUOTA 422, anything else 500 internal (logged with what; the
 * client gets no internal detail). Returns -1. */
int http_store_error(struct http_ctx *c, const struct err *err, const char *what);
/* items: a JSON array (stolen) already in list order; key: the member of each item that orders
 * the list (a unique string or integer). Reads ?limit= (1..HTTP_LIMIT_MAX, default
 * HTTP_LIMIT_DEFAULT) and ?cursor= (opaque; 400 bad_request when malformed) and answers 200
 * {"data": [...page...], "next_cursor": "..." or null}. */
void http_list_reply(struct http_ctx *c, json_t *items, const char *key);

/* ---- request parts (api.c) ---- */
const char *http_query(const struct http_ctx *c, const char *key); /* NULL when absent */
/* ?name=true|false (also 1/0, yes/no); absent: def. Returns -1 (400) for another value. */
int http_query_bool(struct http_ctx *c, const char *key, bool def, bool *v_r);
/* s as "local@domain" (dot-atom local part kept as given, domain lower-cased) into out, or as
 * "@domain" (a catch-all) when catchall. false when malformed or too long. */
bool http_addr_norm(const char *s, bool catchall, char out[ADDR_MAX + 1]);
/* Path parameter i as a domain name / address: validated and lower-cased into out. A malformed
 * one answers 404 not_found and returns -1. */
int http_param_domain(struct http_ctx *c, size_t i, char out[ADDR_DOMAIN_MAX + 1]);
int http_param_address(struct http_ctx *c, size_t i, char out[ADDR_MAX + 1]);

/* ---- scope (api.c) ---- */
/* 0 when the key may act on domain (admin, or its own domain); else 403 forbidden, -1. The
 * check comes before any lookup, so a domain key learns nothing about other domains. */
int http_scope_domain(struct http_ctx *c, const char *domain);
/* The domain a request works on for per-domain resources without a domain in the path
 * (templates): a domain key's own domain (a ?domain= naming another one is 403); an admin key
 * must give ?domain= (422 missing_field otherwise). Validated, lower-cased. */
int http_scope_query_domain(struct http_ctx *c, char out[ADDR_DOMAIN_MAX + 1]);

/* ---- rate limits (limits.c, issue 8) ---- */
/* The rules an override may set, NULL-terminated (the same names as server/limits.c). */
extern const char *const http_limit_rule_names[];
#define HTTP_LIMIT_VALUE_MAX 1000000000000ull /* an override's largest value */
/* One override change of a PATCH: set value (0 = unlimited) or remove (set false). */
struct http_limit_change {
	const char *rule; /* static: from http_limit_rule_names */
	bool set;
	uint64_t value;
};
/* The "limits" member of a PATCH body, {"<rule>": N or null}: absent → *n_r 0. Only admin keys
 * may change overrides (403 forbidden otherwise); an unknown rule is 422 unknown_field, a value
 * that is neither null nor an integer 0..HTTP_LIMIT_VALUE_MAX 422 invalid_type/out_of_range,
 * each with field "limits.<rule>". -1 when answered. */
int http_limits_parse(struct http_ctx *c, const json_t *body,
                      struct http_limit_change out[HTTP_LIMIT_RULES], size_t *n_r);
/* Stores the changes (store_limit_override_set) for the account (domain false) or domain name;
 * -1 after answering a store error. */
int http_limits_apply(struct http_ctx *c, bool domain, const char *name,
                      const struct http_limit_change *v, size_t n);
/* Answers 200 {"limits": [{"rule", "limit", "used", "remaining", "resets_in", "overridden"}]}
 * from hooks->limit_usage ("limit" and "remaining" null when unlimited). The caller has checked
 * the scope and that the account/domain exists. */
void http_limits_reply(struct http_ctx *c, bool domain, const char *name);

/* ---- JSON input (json.c) ---- */
/* The body as a JSON object: 415 unsupported_media_type unless Content-Type is
 * application/json (parameters allowed); 400 invalid_json (message with line and column) for
 * malformed JSON or duplicate keys; 422 invalid_type when it is not an object. NULL when
 * answered; else a new reference. */
json_t *http_body_object(struct http_ctx *c);
/* 422 unknown_field (field = the first member not in allowed, a NULL-terminated list). */
int http_json_only(struct http_ctx *c, const json_t *obj, const char *const *allowed);
/* Member key of obj as a string: absent → *out NULL, or 422 missing_field when required;
 * not a string (null counts as absent) → 422 invalid_type; longer than max bytes → 422
 * too_long; containing NUL → 422 invalid. field names the member (prefix: "to[2].email" style
 * paths are the caller's business via http_json_str_at). */
int http_json_str(struct http_ctx *c, const json_t *obj, const char *key, bool required, size_t max,
                  const char **out);
/* The same with an explicit field path for error messages. */
int http_json_str_at(struct http_ctx *c, const json_t *v, const char *field, bool required,
                     size_t max, const char **out);
/* Boolean member: absent/null leaves *out alone (and *present false); else 422 invalid_type
 * unless true/false. present may be NULL. */
int http_json_bool(struct http_ctx *c, const json_t *obj, const char *key, bool *out,
                   bool *present);
/* Non-negative integer member up to max: absent/null leaves *out alone; 422 invalid_type,
 * 422 out_of_range. */
int http_json_uint(struct http_ctx *c, const json_t *obj, const char *key, uint64_t max,
                   uint64_t *out, bool *present);

/* ---- JSON output (json.c) ---- */
/* RFC 3339 UTC ("2026-11-29T09:05:51Z") or null for t == 0. New reference. */
json_t *http_json_time(int64_t t);
/* A string or null for NULL. New reference. */
json_t *http_json_strn(const char *s);

#endif
