/* Connections and lifecycle of the SQLite store (DESIGN.md §2). Every connection is opened with
 * SQLITE_OPEN_NOMUTEX and used by one thread only: the writer thread owns st->wdb, and every
 * other thread gets its own read connection on first use, kept in a pthread key of the store and
 * in a list so store_close can close them all. The database is in WAL mode, so readers never
 * block the writer and the writer never blocks readers; busy_timeout covers the short locks
 * another process (the CLI next to the server) may hold. Also here: open/close, backup and
 * integrity check, which read through the calling thread's connection. */
#include "store_private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Pragmas for every connection, in order (busy_timeout is set before them through the API).
 * journal_mode is persistent in the file and set once by store_open; these are per connection.
 * journal_size_limit: after a checkpoint the WAL file is truncated to 64 MiB. */
static const char *const conn_pragmas[] = {
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = OFF",
    "PRAGMA journal_size_limit = 67108864",
};

int
store_db_fail(sqlite3 *db, struct err *err, const char *op)
{
	int rc = db ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
	const char *msg = db ? sqlite3_errmsg(db) : "no connection";
	log_error("store - sqlite-error op=%s rc=%d msg=\"%s\"", op, rc, msg);
	return err_set(err, STORE_EINTERNAL, "%s: %s", op, msg);
}

int
store_db_exec(sqlite3 *db, const char *sql, struct err *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_db_fail(db, err, sql);
	return 0;
}

int
store_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt_r, struct err *err)
{
	if (sqlite3_prepare_v2(db, sql, -1, stmt_r, NULL) != SQLITE_OK) {
		*stmt_r = NULL;
		return store_db_fail(db, err, "prepare");
	}
	return 0;
}

int
store_db_step_done(sqlite3 *db, sqlite3_stmt *stmt, struct err *err, const char *op)
{
	int rc = sqlite3_step(stmt);
	(void)sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return store_db_fail(db, err, op);
	return 0;
}

char *
store_db_strdup(sqlite3_stmt *stmt, int col)
{
	const unsigned char *s = sqlite3_column_text(stmt, col);
	return s ? xstrdup((const char *)s) : NULL;
}

int
store_db_query_int(sqlite3 *db, const char *sql, const char *p1, const char *p2, int64_t *v_r,
                   struct err *err)
{
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, sql, &stmt, err) < 0)
		return -1;
	if (p1)
		sqlite3_bind_text(stmt, 1, p1, -1, SQLITE_STATIC);
	if (p2)
		sqlite3_bind_text(stmt, 2, p2, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret;
	if (rc == SQLITE_ROW) {
		*v_r = sqlite3_column_int64(stmt, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = store_db_fail(db, err, "query");
	}
	sqlite3_finalize(stmt);
	return ret;
}

int
store_db_read_begin(sqlite3 *db, struct err *err)
{
	return store_db_exec(db, "BEGIN", err);
}

void
store_db_read_end(sqlite3 *db)
{
	if (sqlite3_get_autocommit(db))
		return;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3 *
store_db_open(const char *path, bool reader, struct err *err)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (reader ? 0 : SQLITE_OPEN_CREATE);
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		store_db_fail(db, err, "open");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	for (size_t i = 0; i < sizeof conn_pragmas / sizeof conn_pragmas[0]; i++)
		if (store_db_exec(db, conn_pragmas[i], err) < 0)
			goto fail;
	if (reader && store_db_exec(db, "PRAGMA query_only = ON", err) < 0)
		goto fail;
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

void
store_db_close(sqlite3 **dbp)
{
	if (*dbp == NULL)
		return;
	/* Statements are always finalized before we return to callers, so close_v2 never has to
	 * defer; a failure here means a leaked statement, which is a bug. */
	if (sqlite3_close(*dbp) != SQLITE_OK)
		log_error("store - close-failed msg=\"%s\"", sqlite3_errmsg(*dbp));
	*dbp = NULL;
}

struct store_reader *
store_db_reader_get(struct store *st, struct err *err)
{
	struct store_reader *r = pthread_getspecific(st->reader_key);
	if (r != NULL && r->st == st)
		return r;
	sqlite3 *db = store_db_open(st->path, true, err);
	if (db == NULL)
		return NULL;
	r = xcalloc(1, sizeof *r);
	r->st = st;
	r->db = db;
	pthread_mutex_lock(&st->mu);
	r->next = st->readers;
	if (st->readers)
		st->readers->prev = r;
	st->readers = r;
	pthread_mutex_unlock(&st->mu);
	if (pthread_setspecific(st->reader_key, r) != 0)
		log_panic("store - pthread_setspecific failed");
	return r;
}

sqlite3 *
store_db_reader(struct store *st, struct err *err)
{
	struct store_reader *r = store_db_reader_get(st, err);
	return r ? r->db : NULL;
}

/* Unlinks and closes reader r of its store. */
static void
store_reader_free(struct store_reader *r)
{
	struct store *st = r->st;
	pthread_mutex_lock(&st->mu);
	if (r->prev)
		r->prev->next = r->next;
	else
		st->readers = r->next;
	if (r->next)
		r->next->prev = r->prev;
	pthread_mutex_unlock(&st->mu);
	store_stmts_finalize(&r->stmts);
	store_db_close(&r->db);
	free(r);
}

void
store_thread_done(struct store *st)
{
	if (st == NULL)
		return;
	struct store_reader *r = pthread_getspecific(st->reader_key);
	if (r == NULL || r->st != st)
		return;
	pthread_setspecific(st->reader_key, NULL);
	store_reader_free(r);
}

/* A thread that ends without store_thread_done (e.g. libmicrohttpd's connection threads) still
 * gives its read connection back. Threads that use the store end before store_close. */
static void
store_reader_destructor(void *p)
{
	if (p)
		store_reader_free(p);
}

/* Switches the file to WAL mode (persistent; a no-op when it already is). */
static int
store_db_set_wal(sqlite3 *db, struct err *err)
{
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "PRAGMA journal_mode = WAL", &stmt, err) < 0)
		return -1;
	int rc = sqlite3_step(stmt);
	const unsigned char *mode = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
	bool ok = mode && strcmp((const char *)mode, "wal") == 0;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW)
		return store_db_fail(db, err, "journal_mode");
	if (!ok)
		return err_set(err, STORE_EINTERNAL, "cannot switch %s to WAL mode",
		               sqlite3_db_filename(db, "main"));
	return 0;
}

int
store_open(const char *path, struct store **st_r, struct err *err)
{
	*st_r = NULL;
	if (!sqlite3_threadsafe())
		return err_set(err, STORE_EINTERNAL, "SQLite was built without thread support");
	struct store *st = xcalloc(1, sizeof *st);
	st->path = xstrdup(path);
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->work_cv, NULL);
	if (pthread_key_create(&st->reader_key, store_reader_destructor) != 0)
		log_panic("store - pthread_key_create failed");
	st->wdb = store_db_open(path, false, err);
	if (st->wdb == NULL)
		goto fail;
	if (store_db_set_wal(st->wdb, err) < 0)
		goto fail;
	if (store_migrate(st->wdb, &st->schema_version, err) < 0)
		goto fail;
	if (store_writer_start(st, err) < 0)
		goto fail;
	log_info("store - open path=%s schema=%d", path, st->schema_version);
	*st_r = st;
	return 0;
fail:
	store_close(&st);
	return -1;
}

void
store_close(struct store **stp)
{
	struct store *st = *stp;
	if (st == NULL)
		return;
	*stp = NULL;
	store_writer_stop(st);
	store_stmts_finalize(&st->wstmts);
	store_db_close(&st->wdb);
	struct store_reader *r = st->readers;
	while (r) {
		struct store_reader *next = r->next;
		store_stmts_finalize(&r->stmts);
		store_db_close(&r->db);
		free(r);
		r = next;
	}
	pthread_setspecific(st->reader_key, NULL);
	pthread_key_delete(st->reader_key);
	pthread_cond_destroy(&st->work_cv);
	pthread_mutex_destroy(&st->mu);
	free(st->path);
	free(st);
}

int
store_schema_version(struct store *st)
{
	return st->schema_version;
}

/* Copies src into the open destination; pages the writer changes while we copy make the step
 * restart, and BUSY/LOCKED (another process checkpointing) are retried after a short sleep. */
static int
store_backup_copy(sqlite3 *src, sqlite3 *dst, struct err *err)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (b == NULL)
		return store_db_fail(dst, err, "backup-init");
	int rc;
	for (;;) {
		rc = sqlite3_backup_step(b, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
			sqlite3_sleep(10);
			continue;
		}
		break;
	}
	int frc = sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE || frc != SQLITE_OK)
		return store_db_fail(dst, err, "backup-step");
	return 0;
}

int
store_backup(struct store *st, const char *dest_path, struct err *err)
{
	sqlite3 *src = store_db_reader(st, err);
	if (src == NULL)
		return -1;
	/* O_EXCL creates the file atomically, so two backups never write one file; SQLite treats
	 * the empty file as an empty database. */
	int fd = open(dest_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return err_set(err, STORE_EEXIST, "%s exists", dest_path);
		return err_set_errno(err, STORE_EINTERNAL, errno, "create %s", dest_path);
	}
	close(fd);
	sqlite3 *dst = NULL;
	int ret = -1;
	if (sqlite3_open_v2(dest_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		store_db_fail(dst, err, "backup-open");
		goto out;
	}
	if (store_backup_copy(src, dst, err) < 0)
		goto out;
	/* The copy carries the WAL flag of the source; switch it back so the backup is one
	 * self-contained file (store_open turns WAL on again when it is used). */
	if (store_db_exec(dst, "PRAGMA journal_mode = DELETE", err) < 0)
		goto out;
	ret = 0;
out:
	if (dst && sqlite3_close(dst) != SQLITE_OK && ret == 0)
		ret = store_db_fail(dst, err, "backup-close");
	if (ret < 0)
		(void)unlink(dest_path);
	else
		log_info("store - backup dest=%s", dest_path);
	return ret;
}

int
store_integrity_check(struct store *st, struct err *err)
{
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "PRAGMA integrity_check", &stmt, err) < 0)
		return -1;
	int ret = 0;
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		ret = store_db_fail(db, err, "integrity_check");
	} else {
		const char *res = (const char *)sqlite3_column_text(stmt, 0);
		if (res == NULL || strcmp(res, "ok") != 0) {
			log_error("store - integrity-check-failed first=\"%s\"", res ? res : "");
			ret = err_set(err, STORE_EINTERNAL, "integrity check: %s", res ? res : "?");
		}
	}
	sqlite3_finalize(stmt);
	return ret;
}
