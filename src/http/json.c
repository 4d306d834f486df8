/* JSON in and out for the REST API (http_private.h): request bodies through jansson with
 * duplicate keys rejected (DESIGN.md §3), typed member access that answers 4xx naming the
 * field, and the output conventions (RFC 3339 times, null for absent strings). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_private.h"

static bool
json_content_type_ok(const char *ct)
{
	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	static const char want[] = "application/json";
	if (strncasecmp(ct, want, sizeof want - 1) != 0)
		return false;
	char next = ct[sizeof want - 1];
	return next == '\0' || next == ';' || next == ' ';
}

json_t *
http_body_object(struct http_ctx *c)
{
	if (!json_content_type_ok(c->req->content_type)) {
		http_error(c, 415, "unsupported_media_type", NULL,
		           "the request body must be Content-Type: application/json");
		return NULL;
	}
	json_error_t je;
	json_t *o = json_loadb((const char *)c->req->body, c->req->body_len,
	                       JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
	if (o == NULL) {
		http_error(c, 400, "invalid_json", NULL, "line %d, column %d: %s", je.line,
		           je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		http_error(c, 422, "invalid_type", NULL, "the request body must be a JSON object");
		return NULL;
	}
	return o;
}

int
http_json_only(struct http_ctx *c, const json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		(void)v;
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(allowed[i], key) == 0;
		if (!ok)
			return http_error(c, 422, "unknown_field", key, "unknown field");
	}
	return 0;
}

int
http_json_str_at(struct http_ctx *c, const json_t *v, const char *field, bool required, size_t max,
                 const char **out)
{
	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return http_error(c, 422, "missing_field", field, "%s is required", field);
		return 0;
	}
	if (!json_is_string(v))
		return http_error(c, 422, "invalid_type", field, "%s must be a string", field);
	size_t len = json_string_length(v);
	const char *s = json_string_value(v);
	if (strlen(s) != len)
		return http_error(c, 422, "invalid", field, "%s must not contain NUL", field);
	if (len > max)
		return http_error(c, 422, "too_long", field, "%s is longer than %zu bytes", field,
		                  max);
	if (required && len == 0)
		return http_error(c, 422, "missing_field", field, "%s must not be empty", field);
	*out = s;
	return 0;
}

int
http_json_str(struct http_ctx *c, const json_t *obj, const char *key, bool required, size_t max,
              const char **out)
{
	return http_json_str_at(c, json_object_get(obj, key), key, required, max, out);
}

int
http_json_bool(struct http_ctx *c, const json_t *obj, const char *key, bool *out, bool *present)
{
	const json_t *v = json_object_get(obj, key);
	if (present)
		*present = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return http_error(c, 422, "invalid_type", key, "%s must be true or false", key);
	*out = json_is_true(v);
	if (present)
		*present = true;
	return 0;
}

int
http_json_uint(struct http_ctx *c, const json_t *obj, const char *key, uint64_t max, uint64_t *out,
               bool *present)
{
	const json_t *v = json_object_get(obj, key);
	if (present)
		*present = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return http_error(c, 422, "invalid_type", key, "%s must be an integer", key);
	json_int_t i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max)
		return http_error(c, 422, "out_of_range", key, "%s must be from 0 to %llu", key,
		                  (unsigned long long)max);
	*out = (uint64_t)i;
	if (present)
		*present = true;
	return 0;
}

json_t *
http_json_time(int64_t t)
{
	if (t == 0)
		return json_null();
	time_t tt = (time_t)t;
	struct tm tm;
	char s[32];
	if (gmtime_r(&tt, &tm) == NULL || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(s);
}

json_t *
http_json_strn(const char *s)
{
	json_t *v = s ? json_string(s) : NULL;
	return v ? v : json_null();
}
