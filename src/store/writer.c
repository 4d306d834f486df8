/* The single writer thread with group commit (DESIGN.md §2). Callers of store_write() append a
 * request to a FIFO and sleep; the writer takes everything queued (up to STORE_GROUP_MAX), opens
 * one BEGIN IMMEDIATE transaction, runs each request under its own SAVEPOINT (RELEASE on success,
 * ROLLBACK TO on -1, so one failed request never undoes another), COMMITs once and wakes all the
 * callers. While that commit's fsync runs, new requests queue up and form the next group, so the
 * number of fsyncs grows with load far slower than the number of writes. A request reports
 * success only after the commit returned: a 0 from store_write means durable. */
#include "store_private.h"

#include <stdio.h>

#include "util/clock.h"
#include "util/log.h"

#define STORE_GROUP_MAX 1024 /* requests per transaction: bounds one group's latency */

sqlite3 *
store_tx_db(struct store_tx *tx)
{
	return tx->db;
}

/* "SAVEPOINT wN" or "RELEASE wN" for the current depth; depth 0 (once per request) uses the
 * cached statement, nested writes (rare) an ad-hoc one. */
static int
store_tx_sp(struct store_tx *tx, enum store_stmt_id id, const char *verb, const char *sp,
            struct err *err)
{
	if (tx->depth == 0) {
		sqlite3_stmt *stmt = store_tx_stmt(tx, id, err);
		return stmt ? store_stmt_done(tx->db, stmt, err, verb) : -1;
	}
	char sql[64];
	(void)snprintf(sql, sizeof sql, "%s %s", verb, sp);
	return store_db_exec(tx->db, sql, err);
}

/* Runs fn under a savepoint named after the nesting depth. Returns fn's result; when SQLite
 * rolled the whole transaction back behind our back (disk full, I/O error) the caller sees
 * sqlite3_get_autocommit() turn true and fails the group. */
static int
store_tx_run(struct store_tx *tx, store_write_fn *fn, void *arg, struct err *err)
{
	char sp[16], sql[64];
	(void)snprintf(sp, sizeof sp, "w%u", tx->depth);
	if (store_tx_sp(tx, STMT_SAVEPOINT, "SAVEPOINT", sp, err) < 0)
		return -1;
	tx->depth++;
	int rc = fn(tx, arg, err);
	tx->depth--;
	if (sqlite3_get_autocommit(tx->db)) {
		if (rc == 0)
			err_set(err, STORE_EINTERNAL, "transaction rolled back");
		return -1;
	}
	if (rc == 0) {
		if (store_tx_sp(tx, STMT_RELEASE, "RELEASE", sp, err) == 0)
			return 0;
		rc = -1;
	}
	(void)snprintf(sql, sizeof sql, "ROLLBACK TO %s; RELEASE %s", sp, sp);
	if (sqlite3_exec(tx->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		log_error("store - rollback-to-failed msg=\"%s\"", sqlite3_errmsg(tx->db));
		(void)sqlite3_exec(tx->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

static void
store_writer_fail_all(struct store_req *list, const struct err *why)
{
	for (struct store_req *r = list; r; r = r->next)
		r->result = err_set(r->err, STORE_EINTERNAL, "%s", why->msg);
}

/* One group: BEGIN IMMEDIATE, a savepoint per request, COMMIT. Returns true when it committed. */
static bool
store_writer_group(struct store *st, struct store_req *list)
{
	sqlite3 *db = st->wdb;
	struct err why = {0};
	if (store_db_exec(db, "BEGIN IMMEDIATE", &why) < 0) {
		store_writer_fail_all(list, &why);
		return false;
	}
	struct store_tx tx = {.st = st, .db = db, .depth = 0};
	st->cur_tx = &tx;
	bool aborted = false;
	for (struct store_req *r = list; r && !aborted; r = r->next) {
		r->result = store_tx_run(&tx, r->fn, r->arg, r->err);
		aborted = sqlite3_get_autocommit(db) != 0;
	}
	st->cur_tx = NULL;
	if (aborted) {
		/* Earlier requests in this group were rolled back too: none of them is durable. */
		log_error("store - group-aborted msg=\"%s\"", sqlite3_errmsg(db));
		err_set(&why, STORE_EINTERNAL, "transaction aborted: %s", sqlite3_errmsg(db));
		store_writer_fail_all(list, &why);
		return false;
	}
	if (store_db_exec(db, "COMMIT", &why) < 0) {
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		store_writer_fail_all(list, &why);
		return false;
	}
	return true;
}

static void *
store_writer_main(void *arg)
{
	struct store *st = arg;
	pthread_mutex_lock(&st->mu);
	for (;;) {
		while (st->head == NULL && !st->stopping)
			pthread_cond_wait(&st->work_cv, &st->mu);
		if (st->head == NULL)
			break; /* stopping, and everything queued has been committed */
		struct store_req *list = st->head, *last = list;
		for (unsigned n = 1; n < STORE_GROUP_MAX && last->next; n++)
			last = last->next;
		st->head = last->next;
		if (st->head == NULL)
			st->tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&st->mu);

		bool committed = store_writer_group(st, list);

		pthread_mutex_lock(&st->mu);
		if (committed)
			st->commits++;
		/* Wake only this group's callers; those queued for the next one sleep on. */
		for (struct store_req *r = list, *next; r; r = next) {
			next = r->next; /* r lives on its caller's stack: gone once done is seen */
			r->done = true;
			pthread_cond_signal(&r->cv); /* under mu: r outlives the call */
		}
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

int
store_writer_start(struct store *st, struct err *err)
{
	int rc = pthread_create(&st->writer, NULL, store_writer_main, st);
	if (rc != 0)
		return err_set_errno(err, STORE_EINTERNAL, rc, "cannot start writer thread");
	st->writer_started = true;
	return 0;
}

void
store_writer_stop(struct store *st)
{
	if (!st->writer_started)
		return;
	pthread_mutex_lock(&st->mu);
	st->stopping = true;
	pthread_cond_signal(&st->work_cv);
	pthread_mutex_unlock(&st->mu);
	pthread_join(st->writer, NULL);
	st->writer_started = false;
}

int
store_write(struct store *st, store_write_fn *fn, void *arg, struct err *err)
{
	/* Called from inside a write fn (on the writer thread): nest in the running group. */
	if (st->writer_started && pthread_equal(pthread_self(), st->writer) && st->cur_tx)
		return store_tx_run(st->cur_tx, fn, arg, err);
	struct store_req r = {.fn = fn, .arg = arg, .err = err};
	pthread_mutex_lock(&st->mu);
	if (st->stopping || !st->writer_started) {
		pthread_mutex_unlock(&st->mu);
		return err_set(err, STORE_EINTERNAL, "store is closing");
	}
	pthread_cond_init(&r.cv, NULL);
	if (st->tail)
		st->tail->next = &r;
	else
		st->head = &r;
	st->tail = &r;
	pthread_cond_signal(&st->work_cv);
	while (!r.done)
		pthread_cond_wait(&r.cv, &st->mu);
	pthread_mutex_unlock(&st->mu);
	pthread_cond_destroy(&r.cv);
	return r.result;
}

uint64_t
store_commit_count(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	uint64_t n = st->commits;
	pthread_mutex_unlock(&st->mu);
	return n;
}

int
store_tx_next_uidvalidity(struct store_tx *tx, uint32_t *v_r, struct err *err)
{
	int64_t last = 0;
	if (store_db_query_int(tx->db, "SELECT value FROM counters WHERE name = 'uidvalidity'",
	                       NULL, NULL, &last, err) < 0)
		return -1;
	int64_t v = clock_now();
	if (v <= last)
		v = last + 1;
	if (v > UINT32_MAX || v < 1)
		v = 1; /* past 2106 the 32-bit space wraps; clients see a new UIDVALIDITY anyway */
	sqlite3_stmt *stmt;
	if (store_db_prepare(tx->db,
	                     "INSERT INTO counters (name, value) VALUES ('uidvalidity', ?1)"
	                     " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, v);
	int rc = store_db_step_done(tx->db, stmt, err, "uidvalidity");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}
