/* REST API records and events (store.h "REST API", migration 6). store_deliver calls
 * store_tx_api_send for an API send, inside the same savepoint as the delivery, so the record,
 * its recipients, its idempotency row and the message are committed together or not at all.
 * Events are the one source of truth for what happened to mail (DESIGN.md §8): store_deliver
 * writes message.queued / message.delivered, store_queue_record the results of attempts. The
 * write statements are cached on the writer's connection (stmt.c). Event details are JSON
 * objects built with jansson, so every string in them is escaped. Each event takes its domain
 * and message id from its API message record and is fanned out to the webhooks (event.c) in
 * the same transaction. */
#include "store_private.h"

#include <jansson.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* ---- checks ---- */

static bool
api_text_ok(const char *s, size_t max)
{
	return s == NULL || strnlen(s, max + 1) <= max;
}

int
store_api_send_check(const struct store_api_send *api, struct err *err)
{
	size_t n = api->public_id ? strnlen(api->public_id, STORE_API_ID_MAX + 1) : 0;
	if (n == 0 || n > STORE_API_ID_MAX)
		return err_set(err, STORE_EINVAL, "bad API message id");
	if (api->domain == NULL || api->from == NULL ||
	    strnlen(api->domain, STORE_DOMAIN_MAX + 1) > STORE_DOMAIN_MAX ||
	    strnlen(api->from, STORE_ADDR_MAX + 1) > STORE_ADDR_MAX)
		return err_set(err, STORE_EINVAL, "API message without a valid domain or sender");
	if (!api_text_ok(api->subject, STORE_API_TEXT_MAX) ||
	    !api_text_ok(api->message_id, STORE_API_TEXT_MAX) ||
	    !api_text_ok(api->tags_json, STORE_API_TEXT_MAX) ||
	    !api_text_ok(api->metadata_json, STORE_API_TEXT_MAX))
		return err_set(err, STORE_EINVAL, "API message field too long");
	if (api->n_rcpts > 0 && api->rcpts == NULL)
		return err_set(err, STORE_EINVAL, "API recipients missing");
	for (size_t i = 0; i < api->n_rcpts; i++) {
		const struct store_api_rcpt *r = &api->rcpts[i];
		if (r->address == NULL || r->kind == NULL || r->status == NULL ||
		    strnlen(r->address, STORE_ADDR_MAX + 1) > STORE_ADDR_MAX ||
		    !api_text_ok(r->kind, 16) || !api_text_ok(r->status, 16) ||
		    !api_text_ok(r->error, 4096))
			return err_set(err, STORE_EINVAL, "API recipient %zu is incomplete", i);
	}
	if (api->idempotency_key != NULL) {
		n = strnlen(api->idempotency_key, STORE_API_ID_MAX + 1);
		if (n == 0 || n > STORE_API_ID_MAX)
			return err_set(err, STORE_EINVAL, "bad idempotency key");
		if (api->response == NULL || !api_text_ok(api->response, STORE_API_TEXT_MAX))
			return err_set(err, STORE_EINVAL, "idempotency key without a response");
	}
	return 0;
}

/* ---- writes (writer thread) ---- */

/* EEXIST when (apikey_id, key) is stored and not older than the window. */
static int
api_idem_check(struct store_tx *tx, const struct store_api_send *api, struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IDEM_FIND, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, api->apikey_id);
	sqlite3_bind_text(stmt, 2, api->idempotency_key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_int64(stmt, 0) >= api->created - STORE_IDEMPOTENCY_WINDOW)
			ret = err_set(err, STORE_EEXIST, "idempotency key already used");
	} else if (rc != SQLITE_DONE) {
		ret = store_db_fail(db, err, "idempotency-find");
	}
	store_stmt_release(stmt);
	return ret;
}

int
store_tx_api_send(struct store_tx *tx, const struct store_api_send *api, int64_t queue_msg_id,
                  int64_t *api_msg_id_r, struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	if (api->idempotency_key != NULL && api_idem_check(tx, api, err) < 0)
		return -1;
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_API_MSG_ADD, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, api->public_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, api->apikey_id);
	sqlite3_bind_text(stmt, 3, api->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, api->from, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, api->subject, -1, SQLITE_STATIC); /* NULL binds NULL */
	sqlite3_bind_text(stmt, 6, api->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 7, api->tags_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 8, api->metadata_json, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 9, queue_msg_id);
	sqlite3_bind_int64(stmt, 10, api->created);
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE) {
		int ret = sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE
		              ? err_set(err, STORE_EEXIST, "API message %s exists", api->public_id)
		              : store_db_fail(db, err, "api-message-add");
		store_stmt_release(stmt);
		return ret;
	}
	store_stmt_release(stmt);
	int64_t id = sqlite3_last_insert_rowid(db);
	stmt = store_tx_stmt(tx, STMT_API_RCPT_ADD, err);
	if (stmt == NULL)
		return -1;
	for (size_t i = 0; i < api->n_rcpts; i++) {
		const struct store_api_rcpt *r = &api->rcpts[i];
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_text(stmt, 2, r->address, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, r->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 4, r->status, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 5, r->error, -1, SQLITE_STATIC);
		if (store_stmt_done(db, stmt, err, "api-rcpt-add") < 0)
			return -1;
	}
	if (api->idempotency_key != NULL) {
		stmt = store_tx_stmt(tx, STMT_IDEM_PUT, err);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, api->apikey_id);
		sqlite3_bind_text(stmt, 2, api->idempotency_key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, id);
		sqlite3_bind_text(stmt, 4, api->response, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 5, api->created);
		if (store_stmt_done(db, stmt, err, "idempotency-put") < 0)
			return -1;
	}
	*api_msg_id_r = id;
	return 0;
}

int
store_tx_event_add(struct store_tx *tx, int64_t now, const char *type, const char *recipient,
                   int64_t queue_msg_id, int64_t api_msg_id, const char *detail, struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_EVENT_ADD, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, now);
	sqlite3_bind_text(stmt, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, recipient, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, queue_msg_id);
	sqlite3_bind_int64(stmt, 5, api_msg_id);
	sqlite3_bind_text(stmt, 6, detail ? detail : "{}", -1, SQLITE_STATIC);
	return store_tx_event_insert(tx, stmt, now, "event-add", NULL, err);
}

/* Sets key to s when s is not NULL (json_string refuses invalid UTF-8: the bytes are then kept
 * with invalid sequences replaced, so that a hostile remote reply still leaves a record). */
static void
event_detail_str(json_t *o, const char *key, const char *s)
{
	if (s == NULL)
		return;
	json_t *v = json_string(s);
	if (v == NULL) {
		size_t n = strlen(s);
		char *c = xmalloc(n + 1);
		for (size_t i = 0; i < n; i++)
			c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
		c[n] = '\0';
		v = json_string(c);
		free(c);
	}
	if (v != NULL)
		json_object_set_new(o, key, v);
}

int
store_tx_event_queue_result(struct store_tx *tx, int64_t now, const struct store_queue_result *r,
                            struct err *err)
{
	static const char *const types[] = {
	    [STORE_QUEUE_DELIVERED] = "message.delivered",
	    [STORE_QUEUE_DEFERRED] = "message.deferred",
	    [STORE_QUEUE_BOUNCED] = "message.bounced",
	    [STORE_QUEUE_EXPIRED] = "message.bounced",
	};
	json_t *d = json_object();
	if (d == NULL)
		return err_set(err, STORE_EINTERNAL, "out of memory");
	if (r->outcome == STORE_QUEUE_EXPIRED)
		json_object_set_new(d, "reason", json_string("expired"));
	if (r->outcome == STORE_QUEUE_BOUNCED || r->outcome == STORE_QUEUE_EXPIRED) {
		/* synchronous: the remote's reply at delivery (a DSN that comes back later is
		 * "source": "dsn", server/bounce.c) */
		json_object_set_new(
		    d, "source",
		    json_string(r->outcome == STORE_QUEUE_EXPIRED ? "expired" : "smtp"));
		json_object_set_new(
		    d, "hard",
		    json_boolean(r->outcome == STORE_QUEUE_BOUNCED && store_bounce_is_hard(r)));
	}
	event_detail_str(d, "reply", r->error);
	/* the relay as "host[ip]:port tls=<version>" (queue/deliver.c): split */
	const char *tls = r->relay ? strstr(r->relay, " tls=") : NULL;
	if (tls != NULL) {
		char *host = xstrndup(r->relay, (size_t)(tls - r->relay));
		event_detail_str(d, "relay", host);
		event_detail_str(d, "tls", tls + 5);
		free(host);
	} else {
		event_detail_str(d, "relay", r->relay);
	}
	event_detail_str(d, "dsn", r->dsn);
	if (r->outcome == STORE_QUEUE_DEFERRED)
		json_object_set_new(d, "next_attempt", json_integer(r->next_attempt));
	char *detail = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	if (detail == NULL)
		return err_set(err, STORE_EINTERNAL, "out of memory");
	int ret = -1;
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_EVENT_QUEUE_RESULT, err);
	if (stmt != NULL) {
		sqlite3_bind_int64(stmt, 1, r->rcpt_id);
		sqlite3_bind_int64(stmt, 2, now);
		sqlite3_bind_text(stmt, 3, types[r->outcome], -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 4, detail, -1, SQLITE_STATIC);
		ret = store_tx_event_insert(tx, stmt, now, "event-queue-result", NULL, err);
	}
	free(detail);
	return ret;
}

/* ---- reads ---- */

static int
api_rcpts_load(sqlite3 *db, struct store_api_message *m, struct err *err)
{
	sqlite3_stmt *stmt;
	/* A queued recipient's state is its queue row's (same message, address ignoring case). */
	if (store_db_prepare(db,
	                     "SELECT r.address, r.kind, r.status, r.error, q.status, q.attempts,"
	                     " q.next_attempt, q.last_attempt, q.delivered_at, q.last_dsn"
	                     " FROM api_message_rcpts r LEFT JOIN queue_rcpts q ON r.status ="
	                     " 'queued' AND q.id = (SELECT x.id FROM queue_rcpts x WHERE x.msg_id ="
	                     " ?2 AND x.rcpt = r.address COLLATE NOCASE ORDER BY x.id LIMIT 1)"
	                     " WHERE r.api_msg_id = ?1 ORDER BY r.id",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, m->id);
	sqlite3_bind_int64(stmt, 2, m->queue_msg_id);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (m->n_rcpts == cap) {
			cap = cap ? cap * 2 : 8;
			m->rcpts = xrealloc(m->rcpts, cap * sizeof *m->rcpts);
		}
		struct store_api_rcpt_status *r = &m->rcpts[m->n_rcpts++];
		memset(r, 0, sizeof *r);
		r->address = store_db_strdup(stmt, 0);
		r->kind = store_db_strdup(stmt, 1);
		r->error = store_db_strdup(stmt, 3);
		if (sqlite3_column_type(stmt, 4) != SQLITE_NULL) {
			r->status = store_db_strdup(stmt, 4);
			r->attempts = (uint32_t)sqlite3_column_int64(stmt, 5);
			r->next_attempt = sqlite3_column_int64(stmt, 6);
			r->last_attempt = sqlite3_column_int64(stmt, 7);
			r->delivered_at = sqlite3_column_int64(stmt, 8);
			r->last_dsn = store_db_strdup(stmt, 9);
		} else {
			r->status = store_db_strdup(stmt, 2);
		}
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : store_db_fail(db, err, "api-message-rcpts");
}

static int
api_events_load(sqlite3 *db, struct store_api_message *m, struct err *err)
{
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT id, created, type, recipient, detail FROM events"
	                     " WHERE api_msg_id = ?1 ORDER BY id",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, m->id);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (m->n_events == cap) {
			cap = cap ? cap * 2 : 8;
			m->events = xrealloc(m->events, cap * sizeof *m->events);
		}
		struct store_event *e = &m->events[m->n_events++];
		e->id = sqlite3_column_int64(stmt, 0);
		e->created = sqlite3_column_int64(stmt, 1);
		e->type = store_db_strdup(stmt, 2);
		e->recipient = store_db_strdup(stmt, 3);
		e->detail = store_db_strdup(stmt, 4);
		if (e->detail == NULL)
			e->detail = xstrdup("{}");
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : store_db_fail(db, err, "api-message-events");
}

int
store_api_message_get(struct store *st, const char *public_id, struct store_api_message *m_r,
                      struct err *err)
{
	memset(m_r, 0, sizeof *m_r);
	if (public_id == NULL || strnlen(public_id, STORE_API_ID_MAX + 1) > STORE_API_ID_MAX)
		return err_set(err, STORE_ENOTFOUND, "no such message");
	sqlite3 *db = store_db_reader(st, err);
	/* One snapshot: the record, the queue rows and the events agree. */
	if (db == NULL || store_db_read_begin(db, err) < 0)
		return -1;
	int ret = -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT id, public_id, domain, mail_from, subject, message_id, tags,"
	                     " metadata, apikey_id, coalesce(queue_msg_id, 0), created"
	                     " FROM api_messages WHERE public_id = ?1",
	                     &stmt, err) < 0)
		goto out;
	sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		m_r->id = sqlite3_column_int64(stmt, 0);
		m_r->public_id = store_db_strdup(stmt, 1);
		m_r->domain = store_db_strdup(stmt, 2);
		m_r->from = store_db_strdup(stmt, 3);
		m_r->subject = store_db_strdup(stmt, 4);
		m_r->message_id = store_db_strdup(stmt, 5);
		m_r->tags_json = store_db_strdup(stmt, 6);
		m_r->metadata_json = store_db_strdup(stmt, 7);
		m_r->apikey_id = sqlite3_column_int64(stmt, 8);
		m_r->queue_msg_id = sqlite3_column_int64(stmt, 9);
		m_r->created = sqlite3_column_int64(stmt, 10);
	}
	sqlite3_finalize(stmt);
	if (rc == SQLITE_DONE) {
		err_set(err, STORE_ENOTFOUND, "no such message");
		goto out;
	}
	if (rc != SQLITE_ROW) {
		store_db_fail(db, err, "api-message-get");
		goto out;
	}
	if (api_rcpts_load(db, m_r, err) < 0 || api_events_load(db, m_r, err) < 0) {
		store_api_message_deinit(m_r);
		goto out;
	}
	ret = 0;
out:
	store_db_read_end(db);
	return ret;
}

void
store_api_message_deinit(struct store_api_message *m)
{
	if (m == NULL)
		return;
	x_free(&m->public_id);
	x_free(&m->domain);
	x_free(&m->from);
	x_free(&m->subject);
	x_free(&m->message_id);
	x_free(&m->tags_json);
	x_free(&m->metadata_json);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct store_api_rcpt_status *r = &m->rcpts[i];
		free(r->address);
		free(r->kind);
		free(r->status);
		free(r->error);
		free(r->last_dsn);
	}
	x_free(&m->rcpts);
	m->n_rcpts = 0;
	for (size_t i = 0; i < m->n_events; i++) {
		free(m->events[i].type);
		free(m->events[i].recipient);
		free(m->events[i].detail);
	}
	x_free(&m->events);
	m->n_events = 0;
}

int
store_idempotency_get(struct store *st, int64_t apikey_id, const char *key, int64_t not_before,
                      char **response_r, struct err *err)
{
	*response_r = NULL;
	if (key == NULL || strnlen(key, STORE_API_ID_MAX + 1) > STORE_API_ID_MAX)
		return err_set(err, STORE_ENOTFOUND, "no such idempotency key");
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_IDEM_FIND, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, apikey_id);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW && sqlite3_column_int64(stmt, 0) >= not_before)
		*response_r = store_db_strdup(stmt, 1);
	else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		ret = err_set(err, STORE_ENOTFOUND, "no such idempotency key");
	else
		ret = store_db_fail(r->db, err, "idempotency-get");
	store_stmt_release(stmt);
	if (ret == 0 && *response_r == NULL)
		*response_r = xstrdup("");
	return ret;
}
