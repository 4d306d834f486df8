/* REST API: rate-limit overrides and usage shared by the account and domain routes (issue 8,
 * http_private.h). The limits themselves live in server/ (through http_hooks.limit_usage); the
 * overrides are plain store rows (store_limit_override_set). Changing an override needs an
 * admin key: a domain key could otherwise lift its own domain's limits. */
#include <stdio.h>
#include <string.h>

#include "http_private.h"
#include "util/log.h"

#define LIMIT_FIELD_MAX 96 /* "limits.<rule>" in error fields, truncated */

const char *const http_limit_rule_names[] = {
    "messages_per_minute", "messages_per_hour",      "messages_per_day",
    "recipients_per_day",  "recipients_per_message", NULL,
};

static const char *
limit_rule_find(const char *name)
{
	for (size_t i = 0; http_limit_rule_names[i]; i++)
		if (strcmp(http_limit_rule_names[i], name) == 0)
			return http_limit_rule_names[i];
	return NULL;
}

int
http_limits_parse(struct http_ctx *c, const json_t *body,
                  struct http_limit_change out[HTTP_LIMIT_RULES], size_t *n_r)
{
	*n_r = 0;
	const json_t *lim = json_object_get(body, "limits");
	if (lim == NULL)
		return 0;
	if (!c->admin)
		return http_error(c, 403, "forbidden", "limits",
		                  "only an admin API key may change limits");
	if (!json_is_object(lim))
		return http_error(c, 422, "invalid_type", "limits",
		                  "limits must be an object of rule: number or null");
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)lim, key, v)
	{
		char field[LIMIT_FIELD_MAX];
		(void)snprintf(field, sizeof field, "limits.%s", key);
		const char *rule = limit_rule_find(key);
		if (rule == NULL)
			return http_error(
			    c, 422, "unknown_field", field,
			    "unknown limit rule (known: messages_per_minute, "
			    "messages_per_hour, messages_per_day, recipients_per_day, "
			    "recipients_per_message)");
		if (*n_r == HTTP_LIMIT_RULES) /* unreachable: keys are unique and known */
			return http_error(c, 422, "invalid", field, "too many rules");
		struct http_limit_change ch = {.rule = rule, .set = !json_is_null(v)};
		if (ch.set) {
			if (!json_is_integer(v))
				return http_error(c, 422, "invalid_type", field,
				                  "a limit is a number (0 = unlimited) or null "
				                  "(back to the default)");
			json_int_t n = json_integer_value(v);
			if (n < 0 || (uint64_t)n > HTTP_LIMIT_VALUE_MAX)
				return http_error(c, 422, "out_of_range", field,
				                  "a limit is 0 (unlimited) to %llu",
				                  (unsigned long long)HTTP_LIMIT_VALUE_MAX);
			ch.value = (uint64_t)n;
		}
		out[(*n_r)++] = ch;
	}
	return 0;
}

int
http_limits_apply(struct http_ctx *c, bool domain, const char *name,
                  const struct http_limit_change *v, size_t n)
{
	struct err err;
	for (size_t i = 0; i < n; i++) {
		if (store_limit_override_set(c->st,
		                             domain ? STORE_LIMIT_DOMAIN : STORE_LIMIT_ACCOUNT,
		                             name, v[i].rule, v[i].set, v[i].value, &err) < 0)
			return http_store_error(c, &err, "limit override");
		char esc[320];
		log_info("http %s limit %s=%s rule=%s value=%llu%s", c->request_id,
		         domain ? "domain" : "account", log_escape(name, esc, sizeof esc),
		         v[i].rule, (unsigned long long)v[i].value, v[i].set ? "" : " removed");
	}
	return 0;
}

void
http_limits_reply(struct http_ctx *c, bool domain, const char *name)
{
	if (c->hooks == NULL || c->hooks->limit_usage == NULL) {
		log_error("http %s no limit_usage hook", c->request_id);
		http_error(c, 500, "internal", NULL, "internal error (request %s)", c->request_id);
		return;
	}
	struct http_limit_usage u[HTTP_LIMIT_RULES];
	struct err err = {0};
	memset(u, 0, sizeof u);
	if (c->hooks->limit_usage(c->hooks->ctx, domain, name, u, &err) < 0) {
		http_store_error(c, &err, "limit usage");
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < HTTP_LIMIT_RULES; i++) {
		if (u[i].rule == NULL)
			continue;
		json_t *o = json_object();
		bool unlimited = u[i].limit == 0;
		uint64_t left = u[i].used < u[i].limit ? u[i].limit - u[i].used : 0;
		json_object_set_new(o, "rule", json_string(u[i].rule));
		json_object_set_new(o, "limit",
		                    unlimited ? json_null() : json_integer((json_int_t)u[i].limit));
		json_object_set_new(o, "used", json_integer((json_int_t)u[i].used));
		json_object_set_new(o, "remaining",
		                    unlimited ? json_null() : json_integer((json_int_t)left));
		json_object_set_new(
		    o, "resets_in",
		    json_integer((json_int_t)(u[i].resets_in_s > 0 ? u[i].resets_in_s : 0)));
		json_object_set_new(o, "overridden", json_boolean(u[i].overridden));
		json_array_append_new(a, o);
	}
	http_reply(c, 200, json_pack("{s:o}", "limits", a));
}
