/* REST API: the events of issue 7 (GET /api/v1/events), read from the one events table of the
 * store, oldest first, each item exactly the object a webhook delivery carries
 * (events_event_json). The list is paged by event id in the store rather than in memory
 * (http_list_reply) because the table grows without bound: the cursor is the last id of the
 * page, opaque to clients ("e" + hex). ?after=evt_N starts after that event instead. A domain
 * key sees only events of its own domain; naming another one is 403 before any lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/events.h"
#include "http_private.h"
#include "util/log.h"
#include "util/strconv.h"

#define EVENTS_FILTER_MAX 320 /* ?type=, ?message=, ?recipient= (an address is at most 254) */
#define EVENTS_CURSOR_MAX 20  /* "e" + 16 hex digits */

/* "e<hex id>" for the cursor after id into out (EVENTS_CURSOR_MAX bytes). */
static void
events_cursor_encode(int64_t id, char out[EVENTS_CURSOR_MAX])
{
	(void)snprintf(out, EVENTS_CURSOR_MAX, "e%llx", (unsigned long long)id);
}

static int
events_cursor_decode(const char *s, int64_t *id_r)
{
	size_t n = strlen(s);
	if (n < 2 || n > 17 || s[0] != 'e')
		return -1;
	uint64_t v = 0;
	for (size_t i = 1; i < n; i++) {
		char ch = s[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else
			return -1;
		v = v * 16 + d;
	}
	if (v > INT64_MAX)
		return -1;
	*id_r = (int64_t)v;
	return 0;
}

/* A text filter ?key=: NULL when absent or empty; 400 bad_request when too long. */
static int
events_filter(struct http_ctx *c, const char *key, const char **out)
{
	const char *s = http_query(c, key);
	*out = s && *s ? s : NULL;
	if (*out && strlen(*out) > EVENTS_FILTER_MAX)
		return http_error(c, 400, "bad_request", key, "%s is too long", key);
	return 0;
}

/* The id to start after: ?cursor= (ours) or ?after=evt_N; 0 = from the first. */
static int
events_start(struct http_ctx *c, int64_t *after_r)
{
	*after_r = 0;
	const char *cs = http_query(c, "cursor"), *as = http_query(c, "after");
	if (cs && *cs) {
		if (events_cursor_decode(cs, after_r) < 0)
			return http_error(c, 400, "bad_request", "cursor", "malformed cursor");
		return 0;
	}
	if (as && *as) {
		uint64_t v;
		if (strncmp(as, "evt_", 4) != 0 ||
		    strconv_u64(slice_from(as + 4), INT64_MAX, &v) < 0)
			return http_error(c, 400, "bad_request", "after",
			                  "after must be an event id (evt_N)");
		*after_r = (int64_t)v;
	}
	return 0;
}

static void
route_list(struct http_ctx *c)
{
	/* the scope first: a domain key names no other domain */
	char domain[ADDR_DOMAIN_MAX + 1] = "";
	const char *ds = http_query(c, "domain");
	if (ds && *ds) {
		if (!addr_domain_is_valid(slice_from(ds)) ||
		    addr_lower(slice_from(ds), domain, sizeof domain) < 0) {
			if (!c->admin)
				http_scope_domain(c, "");
			else
				http_error(c, 422, "invalid", "domain", "not a domain name");
			return;
		}
		if (http_scope_domain(c, domain) < 0)
			return;
	} else if (!c->admin) {
		(void)snprintf(domain, sizeof domain, "%s", c->key_domain);
	}
	struct store_event_filter f = {.domain = domain[0] ? domain : NULL};
	uint64_t limit = HTTP_LIMIT_DEFAULT;
	const char *ls = http_query(c, "limit");
	if (ls && (strconv_u64(slice_from(ls), HTTP_LIMIT_MAX, &limit) < 0 || limit == 0)) {
		http_error(c, 400, "bad_request", "limit", "limit must be a number from 1 to %d",
		           HTTP_LIMIT_MAX);
		return;
	}
	if (events_filter(c, "type", &f.type) < 0 || events_filter(c, "message", &f.message) < 0 ||
	    events_filter(c, "recipient", &f.recipient) < 0 || events_start(c, &f.after_id) < 0)
		return;
	/* one more than the page tells whether there is a next one (the store's limit caps it:
	 * a full page of HTTP_LIMIT_MAX always gets a cursor) */
	f.limit = limit < HTTP_LIMIT_MAX ? (size_t)limit + 1 : HTTP_LIMIT_MAX;
	struct store_event_row *v;
	size_t n;
	struct err err;
	if (store_event_list(c->st, &f, &v, &n, &err) < 0) {
		http_store_error(c, &err, "event list");
		return;
	}
	bool more = n > limit || (n == limit && limit == HTTP_LIMIT_MAX);
	size_t page = n > limit ? (size_t)limit : n;
	json_t *data = json_array();
	for (size_t i = 0; i < page; i++) {
		char *text = events_event_json(&v[i]);
		json_t *o = text ? json_loads(text, 0, NULL) : NULL;
		if (o == NULL)
			log_error("http %s event %lld: no JSON for it", c->request_id,
			          (long long)v[i].ev.id);
		else
			json_array_append_new(data, o);
		free(text);
	}
	json_t *next = json_null();
	if (more && page > 0) {
		char cur[EVENTS_CURSOR_MAX];
		events_cursor_encode(v[page - 1].ev.id, cur);
		json_decref(next);
		next = json_string(cur);
	}
	store_event_rows_free(&v, n);
	http_reply(c, 200, json_pack("{s:o,s:o}", "data", data, "next_cursor", next));
}

const struct http_route http_routes_events[] = {
    {"GET", "/api/v1/events", route_list, 0},
};
const size_t http_routes_events_n = sizeof http_routes_events / sizeof http_routes_events[0];
