/* Internal declarations shared by the files of store/ (never included from another directory,
 * STYLE.md B.3). db.c owns connections and SQL helpers, stmt.c the per-connection statement
 * cache, migrate.c the schema, writer.c the group commit thread; domain.c, account.c, alias.c,
 * mailbox.c, blob.c, rcpt.c (recipient resolution), deliver.c and imap_mbox.c / imap_msg.c (the
 * IMAP section of store.h) implement the public API on top of them. Every write runs on the writer
 * thread through store_write() with the writer's connection (store_tx_db); every read runs on the
 * calling thread's read connection (store_db_reader). */
#ifndef LIGHTR_STORE_PRIVATE_H
#define LIGHTR_STORE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Limits on names (RFC 5321 4.5.3.1.1 local part 64, 4.5.3.1.2 domain 255 octets, of which DNS
 * allows 253 in text form; 4.5.3.1.3 path 256 including the angle brackets). */
#define STORE_LOCAL_MAX  64
#define STORE_DOMAIN_MAX 253
#define STORE_ADDR_MAX   254

/* The CLI and the server share the file; a writer may wait this long for the other's lock. */
#define STORE_BUSY_TIMEOUT_MS 10000

/* Statements prepared once per connection and kept until it closes (STYLE.md B.1: tables over
 * code). The SQL of each id is in stmt.c. Used on the hot paths (recipient lookup, delivery) so
 * that per-request work is binding and stepping, not parsing SQL. */
/* A domain row with its account and alias counts (domain.c; append a WHERE/ORDER BY). */
#define STORE_DOMAIN_COLS                                                                          \
	"SELECT d.id, d.name, d.created,"                                                          \
	" (SELECT count(*) FROM accounts WHERE domain_id = d.id),"                                 \
	" (SELECT count(*) FROM aliases WHERE domain_id = d.id) FROM domains d"

enum store_stmt_id {
	STMT_READ_BEGIN,
	STMT_READ_END,
	STMT_DOMAIN_EXISTS,
	STMT_DOMAIN_GET,
	STMT_DKIM_ACTIVE,
	STMT_DKIM_LIST,
	STMT_RCPT_ACCOUNT,
	STMT_RCPT_ALIAS,
	STMT_SENDER_ACCOUNT,
	STMT_SENDER_ALIAS,
	STMT_DELIVER_BLOB,
	STMT_DELIVER_INBOX,
	STMT_DELIVER_MESSAGE,
	STMT_DELIVER_QUEUE_MSG,
	STMT_DELIVER_QUEUE_RCPT,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	/* IMAP (imap_mbox.c, imap_msg.c) */
	STMT_IMAP_MBOX_BY_NAME,
	STMT_IMAP_MBOX_BY_ID,
	STMT_IMAP_MBOX_UPDATE,
	STMT_IMAP_MSGS_ALL,
	STMT_IMAP_MSGS_SINCE,
	STMT_IMAP_VANISHED,
	STMT_IMAP_META,
	STMT_IMAP_READ,
	STMT_IMAP_MSG_GET,
	STMT_IMAP_MSG_FLAGS,
	STMT_IMAP_FLAGS_ADD,
	STMT_IMAP_FLAGS_REMOVE,
	STMT_IMAP_FLAGS_SET,
	STMT_IMAP_MSG_COPY,
	STMT_IMAP_MSG_DELETE,
	STMT_IMAP_EXPUNGED_ADD,
	STMT_IMAP_APPEND,
	STMT_IMAP_STATUS_COUNTS,
	STMT_IMAP_QUOTA,
	/* REST API and events (api_msg.c, apikey.c) */
	STMT_APIKEY_LOOKUP,
	STMT_API_MSG_ADD,
	STMT_API_RCPT_ADD,
	STMT_IDEM_FIND,
	STMT_IDEM_PUT,
	STMT_EVENT_ADD,
	STMT_EVENT_QUEUE_RESULT,
	/* suppressions and tracking (suppress.c, track.c) */
	STMT_SUPPRESS_CHECK,
	STMT_BOUNCE_RESET,
	STMT_SECRET_GET,
	STMT_TRACK_LINK,
	/* events and webhooks (event.c, webhook.c) */
	STMT_EVENT_NEW,
	STMT_WEBHOOK_FANOUT,
	STMT_WEBHOOK_CLAIM,
	STMT_WEBHOOK_JOB,
	STMT_WEBHOOK_FAIL,
	STMT_WEBHOOK_UPDATE,
	STMT_WEBHOOK_ATTEMPT,
	STMT_BOUNCE_CTX,
	STMT_BOUNCE_CLEAR,
	STMT_BOUNCE_SOFT_INC,
	STMT_BOUNCE_SUPPRESS,
	/* rate limits (limit.c, deliver.c) */
	STMT_LIMIT_USAGE_ADD,
	STMT_LIMIT_USAGE_GET,
	STMT_LIMIT_OVERRIDES_ACCOUNT,
	STMT_LIMIT_OVERRIDES_DOMAIN,
	STORE_STMT_COUNT
};

struct store_stmts {
	sqlite3_stmt *v[STORE_STMT_COUNT]; /* NULL until first use */
};

#define STORE_CHANGE_SLOTS 4096

/* A read connection owned by one thread; linked into its store so store_close can close it. */
struct store_reader {
	struct store *st;
	sqlite3 *db;
	struct store_stmts stmts;
	struct store_reader *prev, *next;
};

/* A queued write request; lives on the waiting caller's stack. */
struct store_req {
	store_write_fn *fn;
	void *arg;
	struct err *err; /* the caller's, may be NULL */
	int result;
	bool done;
	pthread_cond_t cv; /* signalled (under store.mu) when done is set */
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
	struct store_req *head, *tail;
	bool stopping;
	bool writer_started;
	pthread_t writer;
	struct store_tx *cur_tx;   /* set while the writer runs a group (writer thread only) */
	struct store_stmts wstmts; /* cached statements of wdb (writer thread only) */
	uint64_t commits;

	pthread_key_t reader_key; /* → struct store_reader of the calling thread */
	struct store_reader *readers;

	/* Change counters for IDLE (store_mailbox_change_seq), slot = mailbox id % slots; bumped
	 * after a commit that touched the mailbox. Zero from xcalloc. */
	_Atomic uint64_t change_seq[STORE_CHANGE_SLOTS];
	/* Moves after every outbound queue write of this process (queue.c). */
	_Atomic uint64_t queue_seq;
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
/* The calling thread's reader (opened on first use), for its statement cache; NULL + err. */
struct store_reader *store_db_reader_get(struct store *st, struct err *err);
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

/* ---- stmt.c ---- */
/* The cached statement id of connection db (prepared on first use); NULL + err on failure. A
 * statement handed out is reset and has no bindings; give it back with store_stmt_release (or
 * store_stmt_done) before the next use, also on error paths: a read statement left unreset would
 * hold its connection's snapshot open. */
sqlite3_stmt *store_stmt_get(sqlite3 *db, struct store_stmts *c, enum store_stmt_id id,
                             struct err *err);
sqlite3_stmt *store_tx_stmt(struct store_tx *tx, enum store_stmt_id id, struct err *err);
sqlite3_stmt *store_reader_stmt(struct store_reader *r, enum store_stmt_id id, struct err *err);
/* sqlite3_reset + sqlite3_clear_bindings; accepts NULL. */
void store_stmt_release(sqlite3_stmt *stmt);
/* Steps a statement expected to return no row, then releases it; -1 + err otherwise. */
int store_stmt_done(sqlite3 *db, sqlite3_stmt *stmt, struct err *err, const char *op);
/* store_db_read_begin/_end with the reader's cached BEGIN and COMMIT. */
int store_reader_begin(struct store_reader *r, struct err *err);
void store_reader_end(struct store_reader *r);
/* Finalizes every cached statement (before the connection closes). */
void store_stmts_finalize(struct store_stmts *c);
/* Loads the current row of stmt into elem (zeroed beforehand); may not fail. */
typedef void store_row_fn(sqlite3_stmt *stmt, void *elem);
/* Steps stmt until it stops returning rows, appending one elem_size element per row to a heap
 * array (grown by doubling) that fn fills. Returns the last sqlite3_step code (SQLITE_DONE on
 * success) with *v_r / *n_r set to what was collected, also on failure (the caller frees it with
 * its list-free function). Neither resets nor finalizes stmt. */
int store_stmt_collect(sqlite3_stmt *stmt, size_t elem_size, store_row_fn *fn, void **v_r,
                       size_t *n_r);

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

/* ---- blob.c ---- */
#define STORE_SHA_HEX 64
/* SHA-256 of data as lower-case hex into out (65 bytes); runs on the caller's thread. */
int store_blob_sha256(const void *data, size_t len, char out[STORE_SHA_HEX + 1], struct err *err);
/* Inside tx: stores len bytes of data as blob sha_hex unless it exists (the deduplication). The
 * bytes are bound in place, never copied by us; large bodies are written straight into the
 * database pages (incremental blob I/O) so the writer never holds a second full copy. EINVAL
 * when len exceeds SQLite's length limit. */
int store_tx_blob_put(struct store_tx *tx, const char *sha_hex, const void *data, size_t len,
                      struct err *err);

/* ---- imap_mbox.c ---- */
/* Moves the change counter of mailbox (call after the commit that touched it). */
void store_mailbox_changed(struct store *st, int64_t mailbox);
/* Inside tx: the mailbox name of account, or 0 (and no error) when there is none. */
int store_tx_mailbox_find(struct store_tx *tx, int64_t account, const char *name, int64_t *id_r,
                          struct err *err);

/* ---- imap_msg.c ---- */
/* Keyword set arithmetic on space-separated lists (ASCII case-insensitive, each kept once, in
 * first-seen order): the result of op applied to cur with req (NULL = none) into a fresh heap
 * string ("" for none); *changed_r tells whether the set differs from cur. EINVAL past
 * STORE_KEYWORDS_MAX. */
int store_keywords_apply(const char *cur, enum store_flags_op op, const char *req, char **out_r,
                         bool *changed_r, struct err *err);

/* Appends bytes [off, off + len) of a stored message — header (per-recipient or queue header
 * text, header_len bytes) followed by the body in blob rowid (body_len bytes) — to out, clipped
 * at its end. The body is read in chunks with incremental blob I/O. Run it inside one read
 * snapshot with the query that produced header and rowid (the rowid cannot be reused then). */
int store_message_range(sqlite3 *db, const unsigned char *header, uint64_t header_len,
                        int64_t rowid, uint64_t body_len, uint64_t off, uint64_t len,
                        struct buf *out, struct err *err);

/* ---- api_msg.c (REST API records and events) ---- */
/* A stored Idempotency-Key matches for this long (seconds); an older row is replaced. */
#define STORE_IDEMPOTENCY_WINDOW 86400
/* Limits on what the store accepts in an API record (the HTTP layer has tighter ones). */
#define STORE_API_ID_MAX   128               /* public id, idempotency key */
#define STORE_API_TEXT_MAX (8 * 1024 * 1024) /* tags, metadata, stored response, subject */
/* Checks an API send record before the writer sees it; EINVAL. */
int store_api_send_check(const struct store_api_send *api, struct err *err);
/* Inside tx: the api_messages row of api linked to queue_msg_id (0 = nothing queued), one
 * api_message_rcpts row per recipient, and the idempotency row when api->idempotency_key is set:
 * EEXIST when (apikey_id, key) was stored at or after api->created - STORE_IDEMPOTENCY_WINDOW,
 * an older row is replaced. *api_msg_id_r gets the new row id. */
int store_tx_api_send(struct store_tx *tx, const struct store_api_send *api, int64_t queue_msg_id,
                      int64_t *api_msg_id_r, struct err *err);
/* Inside tx: one events row. queue_msg_id / api_msg_id 0 = none; detail is JSON object text
 * (NULL = "{}"). */
int store_tx_event_add(struct store_tx *tx, int64_t now, const char *type, const char *recipient,
                       int64_t queue_msg_id, int64_t api_msg_id, const char *detail,
                       struct err *err);
/* Inside tx, right after the UPDATE that recorded r on queue row r->rcpt_id: the matching
 * event (message.delivered / .deferred / .bounced; expired = message.bounced with reason
 * "expired"), linked to the row's queue message and its API message when there is one. detail
 * carries reply, relay, dsn (as known) and next_attempt for deferrals. */
int store_tx_event_queue_result(struct store_tx *tx, int64_t now,
                                const struct store_queue_result *r, struct err *err);

/* ---- bounce_rules.c ---- */
/* A hard bounce: enhanced status 5.1.x or 5.2.1, or a 550/551/553 reply without a more precise
 * status. */
bool store_bounce_is_hard(const struct store_queue_result *r);
/* Inside tx, after result r was recorded: automatic suppression (hard bounce, soft bounces in a
 * row) or the reset of the soft count on delivery. */
int store_tx_bounce_rules(struct store_tx *tx, const struct store_queue_result *r, int64_t now,
                          struct err *err);

/* ---- event.c (events for all mail, webhook fan-out) ---- */
#define STORE_EVENT_TYPE_MAX 64 /* "message.delivered", ... */
/* An event type: 1..STORE_EVENT_TYPE_MAX of [a-z0-9._-]. */
bool store_event_type_ok(const char *type);
/* Inside tx, right after inserting event event_id: one pending webhook_deliveries row, due at
 * now, for every webhook that wants it (its types are "" or name the event's type, its domain
 * is NULL or the event's). Every event insertion calls it, in the same transaction. */
int store_tx_event_fanout(struct store_tx *tx, int64_t event_id, int64_t now, struct err *err);
/* Steps stmt, a cached event INSERT ... RETURNING id (no row: nothing was inserted), releases
 * it and calls store_tx_event_fanout for the new event. op names it in errors; *id_r (may be
 * NULL) gets the new event's id. */
int store_tx_event_insert(struct store_tx *tx, sqlite3_stmt *stmt, int64_t now, const char *op,
                          int64_t *id_r, struct err *err);
/* Inside tx: one event with its explicit domain and message (the api_messages row of that
 * public id, when there is one, is linked), with its webhook fan-out. */
int store_tx_event_new(struct store_tx *tx, const struct store_event_new *e, int64_t *id_r,
                       struct err *err);
/* The columns of a listed event (struct store_event_row), events e LEFT JOIN api_messages a. */
#define STORE_EVENT_ROW_COLS                                                                       \
	"e.id, e.created, e.type, e.recipient, e.detail, e.domain, e.message, a.tags, a.metadata"
/* Fills r from the STORE_EVENT_ROW_COLS starting at column col. */
void store_event_row_load(sqlite3_stmt *stmt, int col, struct store_event_row *r);
void store_event_row_deinit(struct store_event_row *r);

/* ---- limit.c (rate limits) ---- */
#define STORE_LIMIT_KEY_MAX  512 /* a usage key ("acct:<address>:messages", ...) */
#define STORE_LIMIT_INCS_MAX 64  /* usage counters one delivery may add to */
/* A usage key: 1..STORE_LIMIT_KEY_MAX bytes without control characters. */
bool store_limit_key_ok(const char *key);

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
