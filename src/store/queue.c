/* Outbound queue scheduling and commands (store.h "outbound queue (scheduling)"). Claims and
 * results are separate committed writes so that a crash between them leaves rows 'delivering',
 * which store_queue_recover puts back to 'queued' at start-up. The queries here run a few times
 * per second at most, so they are prepared per call rather than cached (stmt.c). Each recorded
 * result also writes its event in the same write (api_msg.c). */
#include "store_private.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define MSG_COLS                                                                                   \
	"m.id, m.created, m.mail_from, m.return_path, m.bounce_token, m.dsn_to, m.auth_user,"      \
	" m.ret, m.envid, m.requiretls, m.smtputf8, m.eightbit, m.size, m.blob_sha256,"            \
	" m.header_text"
#define ITEM_COLS                                                                                  \
	"id, msg_id, rcpt, domain, notify, orcpt, status, attempts, next_attempt, last_attempt,"   \
	" delivered_at, created, last_error, last_dsn, relay, delay_notified, dsn_done"

static void
queue_changed(struct store *st)
{
	atomic_fetch_add_explicit(&st->queue_seq, 1, memory_order_release);
}

uint64_t
store_queue_change_seq(struct store *st)
{
	return atomic_load_explicit(&st->queue_seq, memory_order_acquire);
}

/* ---- rows ---- */

static void
msg_from_row(sqlite3_stmt *stmt, struct store_queue_msg *m)
{
	memset(m, 0, sizeof *m);
	m->id = sqlite3_column_int64(stmt, 0);
	m->created = sqlite3_column_int64(stmt, 1);
	m->mail_from = store_db_strdup(stmt, 2);
	if (m->mail_from == NULL)
		m->mail_from = xstrdup("");
	m->return_path = store_db_strdup(stmt, 3);
	m->bounce_token = store_db_strdup(stmt, 4);
	m->dsn_to = store_db_strdup(stmt, 5);
	m->auth_user = store_db_strdup(stmt, 6);
	m->ret = store_db_strdup(stmt, 7);
	m->envid = store_db_strdup(stmt, 8);
	m->requiretls = sqlite3_column_int(stmt, 9) != 0;
	m->smtputf8 = sqlite3_column_int(stmt, 10) != 0;
	m->eightbit = sqlite3_column_int(stmt, 11) != 0;
	m->size = (uint64_t)sqlite3_column_int64(stmt, 12);
	const unsigned char *sha = sqlite3_column_text(stmt, 13);
	(void)snprintf(m->blob_sha256, sizeof m->blob_sha256, "%s", sha ? (const char *)sha : "");
	buf_init(&m->header_text, 0);
	const void *h = sqlite3_column_blob(stmt, 14);
	size_t hn = (size_t)sqlite3_column_bytes(stmt, 14);
	if (hn > 0)
		(void)buf_append(&m->header_text, h, hn); /* max 0: cannot fail */
	m->header_len = hn;
}

/* Reads columns off..off+16 (ITEM_COLS). */
static void
item_from_row(sqlite3_stmt *stmt, int off, struct store_queue_item *q)
{
	memset(q, 0, sizeof *q);
	q->id = sqlite3_column_int64(stmt, off + 0);
	q->msg_id = sqlite3_column_int64(stmt, off + 1);
	q->rcpt = store_db_strdup(stmt, off + 2);
	q->domain = store_db_strdup(stmt, off + 3);
	q->notify = store_db_strdup(stmt, off + 4);
	q->orcpt = store_db_strdup(stmt, off + 5);
	q->status = store_db_strdup(stmt, off + 6);
	q->attempts = (uint32_t)sqlite3_column_int64(stmt, off + 7);
	q->next_attempt = sqlite3_column_int64(stmt, off + 8);
	q->last_attempt = sqlite3_column_int64(stmt, off + 9);
	q->delivered_at = sqlite3_column_int64(stmt, off + 10);
	q->created = sqlite3_column_int64(stmt, off + 11);
	q->last_error = store_db_strdup(stmt, off + 12);
	q->last_dsn = store_db_strdup(stmt, off + 13);
	q->relay = store_db_strdup(stmt, off + 14);
	q->delay_notified = sqlite3_column_int(stmt, off + 15) != 0;
	q->dsn_done = sqlite3_column_int(stmt, off + 16) != 0;
}

void
store_queue_item_deinit(struct store_queue_item *q)
{
	free(q->rcpt);
	free(q->domain);
	free(q->notify);
	free(q->orcpt);
	free(q->status);
	free(q->last_error);
	free(q->last_dsn);
	free(q->relay);
	memset(q, 0, sizeof *q);
}

void
store_queue_msg_deinit(struct store_queue_msg *m)
{
	free(m->mail_from);
	free(m->return_path);
	free(m->bounce_token);
	free(m->dsn_to);
	free(m->auth_user);
	free(m->ret);
	free(m->envid);
	buf_deinit(&m->header_text);
	memset(m, 0, sizeof *m);
}

void
store_queue_items_free(struct store_queue_item **vp, size_t n)
{
	struct store_queue_item *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_queue_item_deinit(&v[i]);
	x_free(vp);
}

void
store_queue_job_deinit(struct store_queue_job *j)
{
	store_queue_msg_deinit(&j->msg);
	free(j->domain);
	store_queue_items_free(&j->rcpts, j->n_rcpts);
	memset(j, 0, sizeof *j);
}

/* Steps stmt collecting items (columns from 0); -1 + err on failure (items freed). */
static int
items_collect(sqlite3 *db, sqlite3_stmt *stmt, struct store_queue_item **v_r, size_t *n_r,
              struct err *err)
{
	struct store_queue_item *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof *v);
		}
		item_from_row(stmt, 0, &v[n++]);
	}
	if (rc != SQLITE_DONE) {
		store_queue_items_free(&v, n);
		return store_db_fail(db, err, "queue-items");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

/* Loads message id through db into m; 1 found, 0 not found, -1 + err. */
static int
msg_load(sqlite3 *db, const char *where, int64_t id, const char *text, struct store_queue_msg *m,
         struct err *err)
{
	char sql[512];
	(void)snprintf(sql, sizeof sql, "SELECT " MSG_COLS " FROM queue_messages m WHERE %s",
	               where);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, sql, &stmt, err) < 0)
		return -1;
	if (text)
		sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(stmt, 1, id);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		msg_from_row(stmt, m);
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = store_db_fail(db, err, "queue-msg");
	}
	sqlite3_finalize(stmt);
	return ret;
}

/* ---- envelope ---- */

struct env_args {
	int64_t id;
	const char *return_path, *token, *dsn_to;
};

static int
env_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct env_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "UPDATE queue_messages SET return_path = coalesce(?2, return_path),"
	                     " bounce_token = coalesce(?3, bounce_token),"
	                     " dsn_to = coalesce(?4, dsn_to) WHERE id = ?1",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->id);
	sqlite3_bind_text(stmt, 2, a->return_path, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, a->token, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, a->dsn_to, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return err_set(err, STORE_EEXIST, "bounce token already in use");
	if (rc != SQLITE_DONE)
		return store_db_fail(db, err, "queue-envelope");
	if (sqlite3_changes(db) == 0)
		return err_set(err, STORE_ENOTFOUND, "no queue message %lld", (long long)a->id);
	return 0;
}

int
store_queue_set_envelope(struct store *st, int64_t id, const char *return_path,
                         const char *bounce_token, const char *dsn_to, struct err *err)
{
	struct env_args a = {id, return_path, bounce_token, dsn_to};
	if (store_write(st, env_fn, &a, err) < 0)
		return -1;
	queue_changed(st);
	return 0;
}

int
store_queue_by_token(struct store *st, const char *token, struct store_queue_msg *m_r,
                     struct err *err)
{
	if (token == NULL)
		return err_set(err, STORE_EINVAL, "token missing");
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	int found = msg_load(db, "m.bounce_token = ?1", 0, token, m_r, err);
	if (found < 0)
		return -1;
	if (!found)
		return err_set(err, STORE_ENOTFOUND, "no queue message with that token");
	return 0;
}

/* ---- recovery ---- */

struct simple_args {
	const char *sql;
	int64_t p1, p2;
	size_t changes;
};

static int
simple_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct simple_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, a->sql, &stmt, err) < 0)
		return -1;
	if (sqlite3_bind_parameter_count(stmt) >= 1)
		sqlite3_bind_int64(stmt, 1, a->p1);
	if (sqlite3_bind_parameter_count(stmt) >= 2)
		sqlite3_bind_int64(stmt, 2, a->p2);
	int rc = store_db_step_done(db, stmt, err, "queue-update");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	a->changes += (size_t)sqlite3_changes(db);
	return 0;
}

int
store_queue_recover(struct store *st, int64_t now, size_t *n_r, struct err *err)
{
	struct simple_args a = {.sql = "UPDATE queue_rcpts SET status = 'queued', next_attempt = ?1"
	                               " WHERE status = 'delivering'",
	                        .p1 = now};
	if (store_write(st, simple_fn, &a, err) < 0)
		return -1;
	if (a.changes > 0)
		log_info("queue - recovered rows=%zu", a.changes);
	if (n_r)
		*n_r = a.changes;
	queue_changed(st);
	return 0;
}

/* ---- due work ---- */

int
store_queue_due_list(struct store *st, int64_t now, size_t max, struct store_queue_due **v_r,
                     size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT msg_id, lower(domain), min(next_attempt) FROM queue_rcpts"
	                     " WHERE status IN ('queued', 'deferred') AND next_attempt <= ?1"
	                     " GROUP BY msg_id, lower(domain) ORDER BY 3, 1 LIMIT ?2",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, now);
	sqlite3_bind_int64(stmt, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	struct store_queue_due *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_queue_due *d = &v[n++];
		d->msg_id = sqlite3_column_int64(stmt, 0);
		const unsigned char *dom = sqlite3_column_text(stmt, 1);
		(void)snprintf(d->domain, sizeof d->domain, "%s", dom ? (const char *)dom : "");
		d->next_attempt = sqlite3_column_int64(stmt, 2);
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_db_fail(db, err, "queue-due");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

int
store_queue_next_due(struct store *st, int64_t *next_r, struct err *err)
{
	*next_r = 0;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	int64_t v = 0;
	int found = store_db_query_int(db,
	                               "SELECT min(next_attempt) FROM queue_rcpts"
	                               " WHERE status IN ('queued', 'deferred')",
	                               NULL, NULL, &v, err);
	if (found < 0)
		return -1;
	*next_r = found ? v : 0;
	return 0;
}

struct claim_args {
	int64_t msg_id, now;
	const char *domain;
	struct store_queue_job *job;
	int claimed;
};

static int
claim_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct claim_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "UPDATE queue_rcpts SET status = 'delivering' WHERE msg_id = ?1"
	                     " AND lower(domain) = lower(?2) AND status IN ('queued', 'deferred')"
	                     " AND next_attempt <= ?3 RETURNING " ITEM_COLS,
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->msg_id);
	sqlite3_bind_text(stmt, 2, a->domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, a->now);
	struct store_queue_job *j = a->job;
	int rc = items_collect(db, stmt, &j->rcpts, &j->n_rcpts, err);
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	if (j->n_rcpts == 0)
		return 0;
	int found = msg_load(db, "m.id = ?1", a->msg_id, NULL, &j->msg, err);
	if (found <= 0) {
		store_queue_items_free(&j->rcpts, j->n_rcpts);
		j->n_rcpts = 0;
		if (found == 0)
			err_set(err, STORE_EINTERNAL, "queue rows without message %lld",
			        (long long)a->msg_id);
		return -1;
	}
	j->domain = xstrdup(a->domain);
	a->claimed = 1;
	return 0;
}

static int
item_cmp_id(const void *x, const void *y)
{
	const struct store_queue_item *a = x, *b = y;
	return a->id < b->id ? -1 : a->id > b->id;
}

int
store_queue_claim(struct store *st, int64_t msg_id, const char *domain, int64_t now,
                  struct store_queue_job *job_r, struct err *err)
{
	if (domain == NULL)
		return err_set(err, STORE_EINVAL, "domain missing");
	struct store_queue_job j = {0};
	struct claim_args a = {.msg_id = msg_id, .now = now, .domain = domain, .job = &j};
	if (store_write(st, claim_fn, &a, err) < 0) {
		store_queue_job_deinit(&j);
		return -1;
	}
	if (!a.claimed)
		return 0;
	qsort(j.rcpts, j.n_rcpts, sizeof *j.rcpts, item_cmp_id);
	queue_changed(st);
	*job_r = j;
	return 1;
}

struct claim_many_args {
	const struct store_queue_due *due;
	size_t n;
	int64_t now;
	struct store_queue_job *jobs;
	size_t claimed;
};

static int
claim_many_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct claim_many_args *m = arg;
	for (size_t i = 0; i < m->n; i++) {
		struct claim_args a = {.msg_id = m->due[i].msg_id,
		                       .now = m->now,
		                       .domain = m->due[i].domain,
		                       .job = &m->jobs[m->claimed]};
		if (claim_fn(tx, &a, err) < 0)
			return -1;
		m->claimed += (size_t)a.claimed;
	}
	return 0;
}

int
store_queue_claim_many(struct store *st, const struct store_queue_due *due, size_t n, int64_t now,
                       struct store_queue_job *jobs_r, size_t *n_r, struct err *err)
{
	*n_r = 0;
	memset(jobs_r, 0, n * sizeof *jobs_r);
	struct claim_many_args m = {.due = due, .n = n, .now = now, .jobs = jobs_r};
	if (store_write(st, claim_many_fn, &m, err) < 0) {
		for (size_t i = 0; i <= m.claimed && i < n; i++)
			store_queue_job_deinit(&jobs_r[i]);
		return -1;
	}
	for (size_t i = 0; i < m.claimed; i++)
		qsort(jobs_r[i].rcpts, jobs_r[i].n_rcpts, sizeof *jobs_r[i].rcpts, item_cmp_id);
	if (m.claimed > 0)
		queue_changed(st);
	*n_r = m.claimed;
	return 0;
}

/* ---- body ---- */

int
store_queue_read(struct store *st, int64_t id, uint64_t off, uint64_t len, struct buf *out,
                 struct err *err)
{
	sqlite3 *db = store_db_reader(st, err);
	/* One snapshot for the row and the blob: the blob's rowid cannot be reused meanwhile. */
	if (db == NULL || store_db_read_begin(db, err) < 0)
		return -1;
	int ret = -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT b.rowid, b.size, m.header_text FROM queue_messages m"
	                     " JOIN blobs b ON b.sha256 = m.blob_sha256 WHERE m.id = ?1",
	                     &stmt, err) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			err_set(err, STORE_ENOTFOUND, "queue message %lld is gone", (long long)id);
		else
			store_db_fail(db, err, "queue-read");
		sqlite3_finalize(stmt);
		goto out;
	}
	int64_t rowid = sqlite3_column_int64(stmt, 0);
	uint64_t body_len = (uint64_t)sqlite3_column_int64(stmt, 1);
	const unsigned char *h = sqlite3_column_blob(stmt, 2);
	uint64_t hlen = (uint64_t)sqlite3_column_bytes(stmt, 2);
	rc = store_message_range(db, h, hlen, rowid, body_len, off, len, out, err);
	sqlite3_finalize(stmt);
	if (rc < 0)
		goto out;
	ret = 0;
out:
	store_db_read_end(db);
	return ret;
}

/* ---- results ---- */

static const char *const outcome_status[] = {
    [STORE_QUEUE_DELIVERED] = "delivered",
    [STORE_QUEUE_DEFERRED] = "deferred",
    [STORE_QUEUE_BOUNCED] = "bounced",
    [STORE_QUEUE_EXPIRED] = "expired",
};

struct record_args {
	const struct store_queue_result *r;
	size_t n;
	int64_t now;
};

static int
record_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct record_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "UPDATE queue_rcpts SET status = ?2, next_attempt = coalesce(?3,"
	                     " next_attempt), last_attempt = CASE WHEN ?8 THEN ?4 ELSE last_attempt"
	                     " END, last_error = ?5, last_dsn = ?6, relay = coalesce(?7, relay),"
	                     " attempts = attempts + ?8, delivered_at = CASE WHEN ?2 = 'delivered'"
	                     " THEN ?4 ELSE delivered_at END,"
	                     " delay_notified = max(delay_notified, ?9)"
	                     " WHERE id = ?1 AND status = 'delivering'",
	                     &stmt, err) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < a->n && ret == 0; i++) {
		const struct store_queue_result *r = &a->r[i];
		sqlite3_bind_int64(stmt, 1, r->rcpt_id);
		sqlite3_bind_text(stmt, 2, outcome_status[r->outcome], -1, SQLITE_STATIC);
		if (r->outcome == STORE_QUEUE_DEFERRED)
			sqlite3_bind_int64(stmt, 3, r->next_attempt);
		else
			sqlite3_bind_null(stmt, 3);
		sqlite3_bind_int64(stmt, 4, a->now);
		sqlite3_bind_text(stmt, 5, r->error, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 6, r->dsn, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 7, r->relay, -1, SQLITE_STATIC);
		sqlite3_bind_int(stmt, 8, r->count_attempt ? 1 : 0);
		sqlite3_bind_int(stmt, 9, r->set_delay_notified ? 1 : 0);
		ret = store_db_step_done(db, stmt, err, "queue-record");
		sqlite3_clear_bindings(stmt);
		/* One event per result actually recorded (a skipped row changed nothing). */
		if (ret == 0 && sqlite3_changes(db) > 0) {
			ret = store_tx_event_queue_result(tx, a->now, r, err);
			if (ret == 0)
				ret = store_tx_bounce_rules(tx, r, a->now, err);
		}
	}
	sqlite3_finalize(stmt);
	return ret;
}

int
store_queue_record(struct store *st, const struct store_queue_result *r, size_t n, int64_t now,
                   struct err *err)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned)r[i].outcome > STORE_QUEUE_EXPIRED)
			return err_set(err, STORE_EINVAL, "bad outcome %d", (int)r[i].outcome);
	struct record_args a = {r, n, now};
	if (store_write(st, record_fn, &a, err) < 0)
		return -1;
	queue_changed(st);
	return 0;
}

struct ids_args {
	const int64_t *ids;
	size_t n;
};

static int
dsn_done_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct ids_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "UPDATE queue_rcpts SET dsn_done = 1 WHERE id = ?1", &stmt, err) <
	    0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < a->n && ret == 0; i++) {
		sqlite3_bind_int64(stmt, 1, a->ids[i]);
		ret = store_db_step_done(db, stmt, err, "queue-dsn-done");
	}
	sqlite3_finalize(stmt);
	return ret;
}

int
store_queue_dsn_done(struct store *st, const int64_t *rcpt_ids, size_t n, struct err *err)
{
	if (n == 0)
		return 0;
	struct ids_args a = {rcpt_ids, n};
	if (store_write(st, dsn_done_fn, &a, err) < 0)
		return -1;
	queue_changed(st);
	return 0;
}

/* ---- commands ---- */

int
store_queue_items(struct store *st, const char *state, const char *domain,
                  struct store_queue_item **v_r, size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT " ITEM_COLS " FROM queue_rcpts WHERE (?1 IS NULL OR"
	                     " status = ?1) AND (?2 IS NULL OR lower(domain) = lower(?2))"
	                     " ORDER BY msg_id, id",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, domain, -1, SQLITE_STATIC);
	int rc = items_collect(db, stmt, v_r, n_r, err);
	sqlite3_finalize(stmt);
	return rc;
}

int
store_queue_show(struct store *st, int64_t id, struct store_queue_msg *m_r,
                 struct store_queue_item **v_r, size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL || store_db_read_begin(db, err) < 0)
		return -1;
	int ret = -1;
	int found = msg_load(db, "m.id = ?1", id, NULL, m_r, err);
	if (found <= 0) {
		if (found == 0)
			err_set(err, STORE_ENOTFOUND, "no queue message %lld", (long long)id);
		goto out;
	}
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT " ITEM_COLS " FROM queue_rcpts WHERE msg_id = ?1"
	                     " ORDER BY id",
	                     &stmt, err) < 0) {
		store_queue_msg_deinit(m_r);
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	ret = items_collect(db, stmt, v_r, n_r, err);
	sqlite3_finalize(stmt);
	if (ret < 0)
		store_queue_msg_deinit(m_r);
out:
	store_db_read_end(db);
	return ret;
}

struct cmd_args {
	enum store_queue_cmd cmd;
	int64_t id, now;
	size_t changes;
};

static int
cmd_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct cmd_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	if (a->id > 0) {
		sqlite3_stmt *q;
		if (store_db_prepare(db, "SELECT 1 FROM queue_messages WHERE id = ?1", &q, err) < 0)
			return -1;
		sqlite3_bind_int64(q, 1, a->id);
		int rc = sqlite3_step(q);
		sqlite3_finalize(q);
		if (rc == SQLITE_DONE)
			return err_set(err, STORE_ENOTFOUND, "no queue message %lld",
			               (long long)a->id);
		if (rc != SQLITE_ROW)
			return store_db_fail(db, err, "queue-cmd");
	}
	static const char *const sql[] = {
	    [STORE_QUEUE_RETRY] =
	        "UPDATE queue_rcpts SET status = 'queued', next_attempt = ?1"
	        " WHERE status IN ('queued', 'deferred') AND (?2 = 0 OR msg_id = ?2)",
	    [STORE_QUEUE_HOLD] = "UPDATE queue_rcpts SET status = 'held' WHERE status IN ('queued',"
	                         " 'deferred') AND (?2 = 0 OR msg_id = ?2)",
	    [STORE_QUEUE_RELEASE] = "UPDATE queue_rcpts SET status = 'queued', next_attempt = ?1"
	                            " WHERE status = 'held' AND (?2 = 0 OR msg_id = ?2)",
	    [STORE_QUEUE_DROP] = "DELETE FROM queue_messages WHERE ?1 = ?1 AND (?2 = 0 OR id = ?2)",
	};
	struct simple_args s = {.sql = sql[a->cmd], .p1 = a->now, .p2 = a->id};
	if (simple_fn(tx, &s, err) < 0)
		return -1;
	a->changes = s.changes;
	return 0;
}

int
store_queue_command(struct store *st, enum store_queue_cmd cmd, int64_t id, int64_t now,
                    size_t *n_r, struct err *err)
{
	if ((unsigned)cmd > STORE_QUEUE_DROP || id < 0)
		return err_set(err, STORE_EINVAL, "bad queue command");
	struct cmd_args a = {.cmd = cmd, .id = id, .now = now};
	if (store_write(st, cmd_fn, &a, err) < 0)
		return -1;
	if (n_r)
		*n_r = a.changes;
	queue_changed(st);
	static const char *const names[] = {"retry", "hold", "release", "drop"};
	log_info("queue - %s id=%lld rows=%zu", names[cmd], (long long)id, a.changes);
	return 0;
}
