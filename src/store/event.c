/* Events for all mail (migration 7, DESIGN.md §8): each row names its domain and the public id
 * of its message, and inserting one also inserts a pending webhook_deliveries row for every
 * webhook that wants it, in the same transaction, so an event is never lost between the two.
 * store_deliver and store_queue_record insert theirs through api_msg.c; other producers
 * (tracking, inbound, bounces, suppressions) through store_event_add. Both paths use cached
 * statements on the writer's connection: this runs for every message. Listing joins the API
 * message record for its tags and metadata; retention deletes old events and their finished
 * webhook deliveries. */
#include "store_private.h"

#include <stddef.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define EVENT_RCPT_MAX   STORE_ADDR_MAX
#define EVENT_DETAIL_MAX (64 * 1024) /* JSON object text */
#define EVENT_LIST_MAX   1000

bool
store_event_type_ok(const char *type)
{
	size_t n = type ? strnlen(type, STORE_EVENT_TYPE_MAX + 1) : 0;
	if (n == 0 || n > STORE_EVENT_TYPE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = type[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

int
store_tx_event_fanout(struct store_tx *tx, int64_t event_id, int64_t now, struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_WEBHOOK_FANOUT, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, event_id);
	sqlite3_bind_int64(stmt, 2, now);
	return store_stmt_done(store_tx_db(tx), stmt, err, "webhook-fanout");
}

int
store_tx_event_insert(struct store_tx *tx, sqlite3_stmt *stmt, int64_t now, const char *op,
                      int64_t *id_r, struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	int64_t id = 0;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(stmt, 0);
		rc = sqlite3_step(stmt);
	}
	int ret = rc == SQLITE_DONE ? 0 : store_db_fail(db, err, op);
	store_stmt_release(stmt);
	if (ret == 0 && id > 0)
		ret = store_tx_event_fanout(tx, id, now, err);
	if (ret == 0 && id_r != NULL)
		*id_r = id;
	return ret;
}

int
store_tx_event_new(struct store_tx *tx, const struct store_event_new *e, int64_t *id_r,
                   struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_EVENT_NEW, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, e->created);
	sqlite3_bind_text(stmt, 2, e->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, e->recipient ? e->recipient : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, e->domain, -1, SQLITE_STATIC); /* NULL binds NULL */
	sqlite3_bind_text(stmt, 5, e->message, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, e->detail ? e->detail : "{}", -1, SQLITE_STATIC);
	return store_tx_event_insert(tx, stmt, e->created, "event-new", id_r, err);
}

/* ---- store_event_add ---- */

struct event_add_args {
	const struct store_event_new *e;
	int64_t id;
};

static int
event_add_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct event_add_args *a = arg;
	return store_tx_event_new(tx, a->e, &a->id, err);
}

int
store_event_add(struct store *st, const struct store_event_new *e, int64_t *id_r, struct err *err)
{
	if (e == NULL || !store_event_type_ok(e->type))
		return err_set(err, STORE_EINVAL, "bad event type");
	if (e->domain != NULL && strnlen(e->domain, STORE_DOMAIN_MAX + 1) > STORE_DOMAIN_MAX)
		return err_set(err, STORE_EINVAL, "event domain too long");
	if (e->message != NULL && strnlen(e->message, STORE_API_ID_MAX + 1) > STORE_API_ID_MAX)
		return err_set(err, STORE_EINVAL, "event message id too long");
	if (e->recipient != NULL && strnlen(e->recipient, EVENT_RCPT_MAX + 1) > EVENT_RCPT_MAX)
		return err_set(err, STORE_EINVAL, "event recipient too long");
	if (e->detail != NULL && strnlen(e->detail, EVENT_DETAIL_MAX + 1) > EVENT_DETAIL_MAX)
		return err_set(err, STORE_EINVAL, "event detail too long");
	struct event_add_args a = {e, 0};
	if (store_write(st, event_add_fn, &a, err) < 0)
		return -1;
	if (id_r != NULL)
		*id_r = a.id;
	return 0;
}

/* ---- listing ---- */

void
store_event_row_load(sqlite3_stmt *stmt, int col, struct store_event_row *r)
{
	r->ev.id = sqlite3_column_int64(stmt, col);
	r->ev.created = sqlite3_column_int64(stmt, col + 1);
	r->ev.type = store_db_strdup(stmt, col + 2);
	r->ev.recipient = store_db_strdup(stmt, col + 3);
	if (r->ev.recipient == NULL)
		r->ev.recipient = xstrdup("");
	r->ev.detail = store_db_strdup(stmt, col + 4);
	if (r->ev.detail == NULL)
		r->ev.detail = xstrdup("{}");
	r->domain = store_db_strdup(stmt, col + 5);
	r->message = store_db_strdup(stmt, col + 6);
	r->tags_json = store_db_strdup(stmt, col + 7);
	r->metadata_json = store_db_strdup(stmt, col + 8);
}

void
store_event_row_deinit(struct store_event_row *r)
{
	if (r == NULL)
		return;
	x_free(&r->ev.type);
	x_free(&r->ev.recipient);
	x_free(&r->ev.detail);
	x_free(&r->domain);
	x_free(&r->message);
	x_free(&r->tags_json);
	x_free(&r->metadata_json);
}

/* One optional filter: its condition, appended when the value is set (parameter ?N fixed). */
struct event_cond {
	size_t off; /* of the const char * in struct store_event_filter */
	const char *sql;
	size_t max;
};

static const struct event_cond event_conds[] = {
    {offsetof(struct store_event_filter, type), " AND e.type = ?1", STORE_EVENT_TYPE_MAX},
    {offsetof(struct store_event_filter, domain), " AND e.domain = ?2", STORE_DOMAIN_MAX},
    {offsetof(struct store_event_filter, message), " AND e.message = ?3", STORE_API_ID_MAX},
    {offsetof(struct store_event_filter, recipient), " AND e.recipient = ?4", EVENT_RCPT_MAX},
};

#define EVENT_NCONDS (sizeof event_conds / sizeof event_conds[0])

static const char *
event_filter_value(const struct store_event_filter *f, size_t i)
{
	return *(const char *const *)((const char *)f + event_conds[i].off);
}

static void
event_list_row(sqlite3_stmt *stmt, void *elem)
{
	store_event_row_load(stmt, 0, elem);
}

int
store_event_list(struct store *st, const struct store_event_filter *f, struct store_event_row **v_r,
                 size_t *n_r, struct err *err)
{
	static const struct store_event_filter any = {0};
	*v_r = NULL;
	*n_r = 0;
	if (f == NULL)
		f = &any;
	/* Outside 1..EVENT_LIST_MAX: the most allowed. */
	size_t limit = f->limit == 0 || f->limit > EVENT_LIST_MAX ? EVENT_LIST_MAX : f->limit;
	/* A value past its column's limit cannot match anything. */
	for (size_t i = 0; i < EVENT_NCONDS; i++) {
		const char *v = event_filter_value(f, i);
		if (v != NULL && strnlen(v, event_conds[i].max + 1) > event_conds[i].max)
			return 0;
	}
	static const char head[] =
	    "SELECT " STORE_EVENT_ROW_COLS " FROM events e"
	    " LEFT JOIN api_messages a ON a.id = e.api_msg_id WHERE e.id > ?5";
	char sql[512];
	size_t len = sizeof head - 1;
	memcpy(sql, head, sizeof head);
	for (size_t i = 0; i < EVENT_NCONDS; i++) {
		if (event_filter_value(f, i) == NULL)
			continue;
		size_t n = strlen(event_conds[i].sql);
		ASSERT(len + n < sizeof sql);
		memcpy(sql + len, event_conds[i].sql, n + 1);
		len += n;
	}
	static const char tail[] = " ORDER BY e.id LIMIT ?6";
	ASSERT(len + sizeof tail <= sizeof sql);
	memcpy(sql + len, tail, sizeof tail);

	sqlite3 *db = store_db_reader(st, err);
	sqlite3_stmt *stmt;
	if (db == NULL || store_db_prepare(db, sql, &stmt, err) < 0)
		return -1;
	for (size_t i = 0; i < EVENT_NCONDS; i++) {
		const char *v = event_filter_value(f, i);
		if (v != NULL)
			sqlite3_bind_text(stmt, (int)i + 1, v, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(stmt, 5, f->after_id > 0 ? f->after_id : 0);
	sqlite3_bind_int64(stmt, 6, (int64_t)limit);
	void *p;
	size_t n;
	int rc = store_stmt_collect(stmt, sizeof(struct store_event_row), event_list_row, &p, &n);
	struct store_event_row *v = p;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		store_event_rows_free(&v, n);
		return store_db_fail(db, err, "event-list");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

void
store_event_rows_free(struct store_event_row **vp, size_t n)
{
	if (vp == NULL || *vp == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_event_row_deinit(&(*vp)[i]);
	x_free(vp);
}

/* ---- retention ---- */

struct event_prune_args {
	int64_t cutoff;
	size_t n;
};

/* Finished deliveries of old events go first; an event with a delivery still pending or being
 * sent stays until that one finishes (the sender needs its row for the body). */
static int
event_prune_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct event_prune_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	static const char *const sql[] = {
	    "DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed')"
	    " AND event_id IN (SELECT id FROM events WHERE created < ?1)",
	    "DELETE FROM events WHERE created < ?1 AND id NOT IN (SELECT event_id"
	    " FROM webhook_deliveries WHERE status IN ('pending', 'sending'))",
	};
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		sqlite3_stmt *stmt;
		if (store_db_prepare(db, sql[i], &stmt, err) < 0)
			return -1;
		sqlite3_bind_int64(stmt, 1, a->cutoff);
		int rc = store_db_step_done(db, stmt, err, "event-prune");
		sqlite3_finalize(stmt);
		if (rc < 0)
			return -1;
		a->n = (size_t)sqlite3_changes(db);
	}
	return 0;
}

int
store_event_prune(struct store *st, int64_t cutoff, size_t *n_r, struct err *err)
{
	struct event_prune_args a = {cutoff, 0};
	if (store_write(st, event_prune_fn, &a, err) < 0)
		return -1;
	if (n_r != NULL)
		*n_r = a.n;
	return 0;
}
