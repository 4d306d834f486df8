/* The outbound queue (issue 6), admin keys only: what `lightr queue list|show|retry|hold|
 * release|drop` does (cli/cmd_queue.c), over HTTP. Changes are committed to the store; the
 * scheduler sees them at its next poll. Queue ids in the path are positive integers; anything
 * else is 404 like an unknown id. */
#include <stdint.h>
#include <string.h>

#include "http_private.h"
#include "util/strconv.h"

static const char *const queue_states[] = {"queued",    "deferred", "delivering", "held",
                                           "delivered", "bounced",  "expired",    NULL};

/* Path parameter 0 as a queue id; 404 unless a positive integer. */
static int
queue_id_param(struct http_ctx *c, int64_t *id_r)
{
	uint64_t v;
	if (c->n_params < 1 || strconv_u64(slice_from(c->params[0]), INT64_MAX, &v) < 0 || v == 0)
		return http_error(c, 404, "not_found", NULL, "no such queue message");
	*id_r = (int64_t)v;
	return 0;
}

/* A recipient row as the list shows it. */
static json_t *
queue_item_json(const struct store_queue_item *it)
{
	return json_pack("{s:I,s:I,s:s,s:s,s:s,s:I,s:o,s:o,s:o,s:o}", "id", (json_int_t)it->id,
	                 "message_id", (json_int_t)it->msg_id, "recipient", it->rcpt, "domain",
	                 it->domain, "state", it->status, "attempts", (json_int_t)it->attempts,
	                 "next_attempt", http_json_time(it->next_attempt), "last_attempt",
	                 http_json_time(it->last_attempt), "last_error",
	                 http_json_strn(it->last_error), "created", http_json_time(it->created));
}

static void
route_list(struct http_ctx *c)
{
	const char *state = http_query(c, "state");
	if (state) {
		bool ok = false;
		for (size_t i = 0; queue_states[i] && !ok; i++)
			ok = strcmp(state, queue_states[i]) == 0;
		if (!ok) {
			http_error(c, 422, "invalid", "state",
			           "state must be one of queued, deferred, delivering, held, "
			           "delivered, bounced, expired");
			return;
		}
	}
	const char *dq = http_query(c, "domain");
	char domain[ADDR_DOMAIN_MAX + 1];
	if (dq && (!addr_domain_is_valid(slice_from(dq)) ||
	           addr_lower(slice_from(dq), domain, sizeof domain) < 0)) {
		http_error(c, 422, "invalid", "domain", "not a domain name");
		return;
	}
	struct store_queue_item *v;
	size_t n;
	struct err err;
	if (store_queue_items(c->st, state, dq ? domain : NULL, &v, &n, &err) < 0) {
		http_store_error(c, &err, "queue list");
		return;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, queue_item_json(&v[i]));
	store_queue_items_free(&v, n);
	http_list_reply(c, items, "id");
}

static void
route_show(struct http_ctx *c)
{
	int64_t id;
	if (queue_id_param(c, &id) < 0)
		return;
	struct store_queue_msg m;
	struct store_queue_item *v;
	size_t n;
	struct err err;
	if (store_queue_show(c->st, id, &m, &v, &n, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			http_error(c, 404, "not_found", NULL, "no queue message %lld",
			           (long long)id);
		else
			http_store_error(c, &err, "queue show");
		return;
	}
	json_t *rcpts = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = queue_item_json(&v[i]);
		json_object_set_new(o, "delivered_at", http_json_time(v[i].delivered_at));
		json_object_set_new(o, "last_dsn", http_json_strn(v[i].last_dsn));
		json_object_set_new(o, "relay", http_json_strn(v[i].relay));
		json_array_append_new(rcpts, o);
	}
	http_reply(c, 200,
	           json_pack("{s:I,s:s,s:o,s:o,s:I,s:o}", "id", (json_int_t)m.id, "from",
	                     m.mail_from, "return_path", http_json_strn(m.return_path), "created",
	                     http_json_time(m.created), "size", (json_int_t)m.size, "recipients",
	                     rcpts));
	store_queue_items_free(&v, n);
	store_queue_msg_deinit(&m);
}

/* Runs cmd on the message in the path (all messages when all) and answers 200 {"changed": n},
 * or 204 for a drop. */
static void
queue_command(struct http_ctx *c, enum store_queue_cmd cmd, bool all)
{
	int64_t id = 0;
	if (!all && queue_id_param(c, &id) < 0)
		return;
	size_t n = 0;
	struct err err;
	if (store_queue_command(c->st, cmd, id, c->now, &n, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			http_error(c, 404, "not_found", NULL, "no queue message %lld",
			           (long long)id);
		else
			http_store_error(c, &err, "queue command");
		return;
	}
	if (cmd == STORE_QUEUE_DROP)
		http_reply(c, 204, NULL);
	else
		http_reply(c, 200, json_pack("{s:I}", "changed", (json_int_t)n));
}

static void
route_retry_all(struct http_ctx *c)
{
	queue_command(c, STORE_QUEUE_RETRY, true);
}

static void
route_retry(struct http_ctx *c)
{
	queue_command(c, STORE_QUEUE_RETRY, false);
}

static void
route_hold(struct http_ctx *c)
{
	queue_command(c, STORE_QUEUE_HOLD, false);
}

static void
route_release(struct http_ctx *c)
{
	queue_command(c, STORE_QUEUE_RELEASE, false);
}

static void
route_drop(struct http_ctx *c)
{
	queue_command(c, STORE_QUEUE_DROP, false);
}

const struct http_route http_routes_queue[] = {
    {"GET", "/api/v1/queue", route_list, HTTP_ROUTE_ADMIN},
    {"POST", "/api/v1/queue/retry", route_retry_all, HTTP_ROUTE_ADMIN},
    {"GET", "/api/v1/queue/{id}", route_show, HTTP_ROUTE_ADMIN},
    {"DELETE", "/api/v1/queue/{id}", route_drop, HTTP_ROUTE_ADMIN},
    {"POST", "/api/v1/queue/{id}/retry", route_retry, HTTP_ROUTE_ADMIN},
    {"POST", "/api/v1/queue/{id}/hold", route_hold, HTTP_ROUTE_ADMIN},
    {"POST", "/api/v1/queue/{id}/release", route_release, HTTP_ROUTE_ADMIN},
};
const size_t http_routes_queue_n = sizeof http_routes_queue / sizeof http_routes_queue[0];
