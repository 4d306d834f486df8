/* Internal declarations shared by the files of store/ (never included from another directory,
 * STYLE.md B.3). db.c owns connections and SQL helpers, migrate.c the schema, writer.c the group
 * commit thread; domain.c, account.c, alias.c, mailbox.c and blob.c implement the public API on
 * top of them. Every write runs on the writer thread through store_write() with the writer's
 * connection (store_tx_db); every read runs on the calling thread's read connection
 * (store_db_reader). */
#ifndef LIGHTR_STORE_PRIVATE_H
#define LIGHTR_STORE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Limits on names (RFC 5321 4.5.3.1.1 local part 64, 4.5.3.1.2 domain 255 octets, of which DNS
 * allows 253 in text form; 4.5.3.1.3 path 256 including the angle brackets). */
#define STORE_LOCAL_MAX  64
#define STORE_DOMAIN_MAX 253
#define STORE_ADDR_MAX   254

/* The CLI and the server share the file; a writer may wait this long for the other's lock. */
#define STORE_BUSY_TIMEOUT_MS 10000

/* A read connection owned by one thread; linked into its store so store_close can close it. */
struct store_reader {
	struct store *st;
	sqlite3 *db;
	struct store_reader *prev, *next;
};

/* A queued write request; lives on the waiting caller's stack. */
struct store_req {
	store_write_fn *fn;
	void *arg;
	struct err *err; /* the caller's, may be NULL */
	int result;
	bool done;
	struct store_req *next;
};

struct store_tx {
	struct store *st;
	sqlite3 *db;
	unsigned depth; /* nesting level of savepoints (store_write from inside a fn) */
};

struct store {
	char *path;
	sqlite3 *wdb; /* the writer's connection; also runs migrations at open */
	int schema_version;

	pthread_mutex_t mu;     /* guards everything below */
	pthread_cond_t work_cv; /* writer waits for requests or stop */
	pthread_cond_t done_cv; /* callers wait for their request's group to commit */
	struct store_req *head, *tail;
	bool stopping;
	bool writer_started;
	pthread_t writer;
	struct store_tx *cur_tx; /* set while the writer runs a group (writer thread only) */
	uint64_t commits;

	pthread_key_t reader_key; /* → struct store_reader of the calling thread */
	struct store_reader *readers;
};

/* ---- db.c ---- */
/* Opens a connection to path with SQLITE_OPEN_NOMUTEX and applies the per-connection pragmas
 * (busy_timeout, synchronous=FULL, foreign_keys, secure_delete=OFF, journal_size_limit); reader
 * connections are also query_only. Returns NULL and fills err on failure. */
sqlite3 *store_db_open(const char *path, bool reader, struct err *err);
void store_db_close(sqlite3 **dbp);
/* The calling thread's read connection, opened on first use; NULL + err on failure. It does not
 * see the writer's uncommitted changes: code running inside a store_write fn reads through
 * store_tx_db instead. */
sqlite3 *store_db_reader(struct store *st, struct err *err);
/* Logs the connection's last error and sets err (STORE_EINTERNAL, sqlite3_errmsg). Returns -1. */
int store_db_fail(sqlite3 *db, struct err *err, const char *op);
/* sqlite3_exec of one or more statements without result rows. */
int store_db_exec(sqlite3 *db, const char *sql, struct err *err);
int store_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt_r, struct err *err);
/* Steps a statement that returns no row (SQLITE_DONE); -1 + err otherwise. The statement is
 * reset, not finalized. */
int store_db_step_done(sqlite3 *db, sqlite3_stmt *stmt, struct err *err, const char *op);
/* Column text as a fresh heap string; NULL for SQL NULL. */
char *store_db_strdup(sqlite3_stmt *stmt, int col);
/* Runs a query that yields one integer (first column of the first row) with up to two text
 * parameters (NULL: not bound). Returns 1 with *v_r set, 0 when there is no row, -1 + err. */
int store_db_query_int(sqlite3 *db, const char *sql, const char *p1, const char *p2, int64_t *v_r,
                       struct err *err);
/* Begins/ends a read transaction on a reader connection so multi-statement reads see one
 * snapshot. store_db_read_end always succeeds (a failed COMMIT of a read-only transaction is
 * followed by ROLLBACK). */
int store_db_read_begin(sqlite3 *db, struct err *err);
void store_db_read_end(sqlite3 *db);

/* ---- migrate.c ---- */
/* Applies every migration newer than the database's PRAGMA user_version, each in its own
 * BEGIN IMMEDIATE transaction (re-checking the version inside it, so two processes opening at
 * once apply each migration once). Sets *version_r to the resulting version. */
int store_migrate(sqlite3 *db, int *version_r, struct err *err);
/* Number of the newest migration this build knows. */
int store_migrate_latest(void);

/* ---- writer.c ---- */
int store_writer_start(struct store *st, struct err *err);
/* Lets the writer commit everything queued, then joins it. */
void store_writer_stop(struct store *st);
sqlite3 *store_tx_db(struct store_tx *tx);
/* Next UIDVALIDITY: max(now, last + 1), persisted in the counters table inside tx. */
int store_tx_next_uidvalidity(struct store_tx *tx, uint32_t *v_r, struct err *err);

/* ---- names.c ---- */
/* Validates a domain name (LDH labels, "_" tolerated, 1..63 per label, <= 253) and writes it
 * lower-case into out (STORE_DOMAIN_MAX + 1 bytes). EINVAL otherwise. */
int store_name_domain(const char *in, char *out, struct err *err);
/* Validates "local@domain" (dot-atom local part, RFC 5322 3.4.1) and writes it with the domain
 * lower-cased into out (STORE_ADDR_MAX + 1 bytes); *at_r is the index of '@' in out. With
 * allow_catchall, "@domain" is accepted too. EINVAL otherwise. */
int store_name_address(const char *in, bool allow_catchall, char *out, size_t *at_r,
                       struct err *err);

#endif
