/* Schema migrations (DESIGN.md §2): a table of numbered steps, applied at store_open in order,
 * each in its own BEGIN IMMEDIATE transaction that also sets PRAGMA user_version and records the
 * step in schema_migrations. A database already at the newest version gets nothing applied. Never
 * edit a released step: append a new one. A database newer than this build is refused, since
 * older code could corrupt columns it does not know. */
#include "store_private.h"

#include <stdio.h>

#include "util/clock.h"
#include "util/log.h"

struct migration {
	int version;
	const char *name;
	const char *sql; /* one or more statements */
};

/* Conventions: names and addresses COLLATE NOCASE (domains and the domain part of addresses are
 * also stored lower-case); times are unix seconds; booleans are 0/1 integers. Mailbox names are
 * case-sensitive except INBOX, which imap/ normalises (RFC 3501 5.1), so they use BINARY. */
static const struct migration migrations[] = {
    {1, "initial schema",
     "CREATE TABLE schema_migrations ("
     "  version INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL,"
     "  applied INTEGER NOT NULL"
     ");"
     /* Named counters that must survive restarts (e.g. the last UIDVALIDITY handed out). */
     "CREATE TABLE counters ("
     "  name TEXT PRIMARY KEY,"
     "  value INTEGER NOT NULL"
     ");"
     "CREATE TABLE domains ("
     "  id INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
     "  created INTEGER NOT NULL"
     ");"
     "CREATE TABLE accounts ("
     "  id INTEGER PRIMARY KEY,"
     "  address TEXT NOT NULL UNIQUE COLLATE NOCASE,"
     "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
     "  password_hash TEXT NOT NULL DEFAULT '',"
     "  quota INTEGER NOT NULL DEFAULT 0," /* bytes; 0 = unlimited */
     "  used INTEGER NOT NULL DEFAULT 0,"  /* bytes, kept by the messages triggers */
     "  disabled INTEGER NOT NULL DEFAULT 0,"
     "  created INTEGER NOT NULL"
     ");"
     "CREATE INDEX accounts_domain ON accounts(domain_id);"
     "CREATE TABLE aliases ("
     "  id INTEGER PRIMARY KEY,"
     "  address TEXT NOT NULL UNIQUE COLLATE NOCASE," /* local@domain, or @domain = catch-all */
     "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
     "  created INTEGER NOT NULL"
     ");"
     "CREATE INDEX aliases_domain ON aliases(domain_id);"
     "CREATE TABLE alias_targets ("
     "  alias_id INTEGER NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,"
     "  target TEXT NOT NULL COLLATE NOCASE,"
     "  PRIMARY KEY (alias_id, target)"
     ") WITHOUT ROWID;"
     "CREATE TABLE mailboxes ("
     "  id INTEGER PRIMARY KEY,"
     "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
     "  name TEXT NOT NULL,"
     "  special_use TEXT," /* \\Sent etc. (RFC 6154), NULL for none */
     "  subscribed INTEGER NOT NULL DEFAULT 1,"
     "  uidvalidity INTEGER NOT NULL,"
     "  uidnext INTEGER NOT NULL DEFAULT 1,"
     "  highestmodseq INTEGER NOT NULL DEFAULT 1,"
     "  UNIQUE (account_id, name)"
     ");"
     /* Bodies, once per distinct content; refcount counts referencing rows (messages now, queue
      * entries later) and is kept by triggers. A blob put but never referenced stays at 0 until
      * housekeeping collects old orphans (created). */
     "CREATE TABLE blobs ("
     "  sha256 TEXT PRIMARY KEY," /* lower-case hex */
     "  size INTEGER NOT NULL,"
     "  refcount INTEGER NOT NULL DEFAULT 0,"
     "  created INTEGER NOT NULL,"
     "  data BLOB NOT NULL" /* last: the large column */
     ");"
     "CREATE TABLE messages ("
     "  id INTEGER PRIMARY KEY,"
     "  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
     "  uid INTEGER NOT NULL,"
     "  modseq INTEGER NOT NULL,"
     "  flags INTEGER NOT NULL DEFAULT 0,"  /* system flags bitmask */
     "  keywords TEXT NOT NULL DEFAULT ''," /* space-separated */
     "  internal_date INTEGER NOT NULL,"
     "  size INTEGER NOT NULL," /* RFC822.SIZE: header_text + blob */
     "  blob_sha256 TEXT NOT NULL REFERENCES blobs(sha256),"
     "  header_text BLOB NOT NULL DEFAULT x''," /* per-recipient Return-Path, Delivered-To... */
     "  envelope TEXT,"                         /* IMAP ENVELOPE, computed at delivery */
     "  bodystructure TEXT,"                    /* IMAP BODYSTRUCTURE */
     "  part_offsets BLOB,"                     /* section → byte ranges in the blob */
     "  UNIQUE (mailbox_id, uid)"
     ");"
     "CREATE INDEX messages_blob ON messages(blob_sha256);"
     "CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);"
     "CREATE TRIGGER messages_ins AFTER INSERT ON messages BEGIN"
     "  UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = NEW.blob_sha256;"
     "  UPDATE accounts SET used = used + NEW.size"
     "    WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);"
     "END;"
     "CREATE TRIGGER messages_del AFTER DELETE ON messages BEGIN"
     "  UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = OLD.blob_sha256;"
     "  DELETE FROM blobs WHERE sha256 = OLD.blob_sha256 AND refcount <= 0;"
     "  UPDATE accounts SET used = max(used - OLD.size, 0)"
     "    WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);"
     "END;"},
    /* Domain admins (may send as any address of their domain) and the outbound queue: one
     * queue_messages row per accepted message (envelope, DSN parameters, the header prepended
     * for the outbound copy, the shared body) and one queue_rcpts row per remote recipient,
     * which carries the scheduling state. status: 'queued' (due at next_attempt), 'deferred'
     * (temporary failure, due at next_attempt), 'delivering' (taken by a worker; back to
     * 'queued' at start-up), and the final 'delivered', 'bounced', 'expired'. */
    {2, "domain admins, outbound queue",
     "ALTER TABLE accounts ADD COLUMN domain_admin INTEGER NOT NULL DEFAULT 0;"
     "CREATE TABLE queue_messages ("
     "  id INTEGER PRIMARY KEY,"
     "  created INTEGER NOT NULL,"
     "  mail_from TEXT NOT NULL,"               /* '' = null sender */
     "  auth_user TEXT,"                        /* account that submitted it; NULL when relayed */
     "  ret TEXT,"                              /* DSN RET (RFC 3461 4.3): FULL, HDRS or NULL */
     "  envid TEXT,"                            /* DSN ENVID (RFC 3461 4.4), xtext-decoded */
     "  requiretls INTEGER NOT NULL DEFAULT 0," /* RFC 8689 */
     "  smtputf8 INTEGER NOT NULL DEFAULT 0,"   /* RFC 6531 */
     "  eightbit INTEGER NOT NULL DEFAULT 0,"   /* BODY=8BITMIME (RFC 6152) */
     "  size INTEGER NOT NULL,"                 /* header_text + blob: SIZE= when relaying */
     "  header_text BLOB NOT NULL DEFAULT x''," /* prepended to the body (Received, DKIM) */
     "  blob_sha256 TEXT NOT NULL REFERENCES blobs(sha256)"
     ");"
     "CREATE INDEX queue_messages_blob ON queue_messages(blob_sha256);"
     "CREATE TABLE queue_rcpts ("
     "  id INTEGER PRIMARY KEY,"
     "  msg_id INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,"
     "  rcpt TEXT NOT NULL COLLATE NOCASE,"
     "  domain TEXT NOT NULL COLLATE NOCASE," /* lower-case; the destination to schedule by */
     "  notify TEXT,"                         /* DSN NOTIFY (RFC 3461 4.1) or NULL */
     "  orcpt TEXT,"                          /* DSN ORCPT (RFC 3461 4.2) or NULL */
     "  status TEXT NOT NULL DEFAULT 'queued',"
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  next_attempt INTEGER NOT NULL," /* unix seconds */
     "  last_attempt INTEGER,"
     "  last_error TEXT," /* the remote reply or local reason of the last failure */
     "  last_dsn TEXT,"   /* enhanced status code of the last attempt (RFC 3463) */
     "  relay TEXT,"      /* host[ip]:port of the last attempt */
     "  created INTEGER NOT NULL"
     ");"
     "CREATE INDEX queue_rcpts_msg ON queue_rcpts(msg_id);"
     "CREATE INDEX queue_rcpts_due ON queue_rcpts(status, next_attempt);"
     "CREATE INDEX queue_rcpts_domain ON queue_rcpts(domain, status);"
     "CREATE TRIGGER queue_messages_ins AFTER INSERT ON queue_messages BEGIN"
     "  UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = NEW.blob_sha256;"
     "END;"
     "CREATE TRIGGER queue_messages_del AFTER DELETE ON queue_messages BEGIN"
     "  UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = OLD.blob_sha256;"
     "  DELETE FROM blobs WHERE sha256 = OLD.blob_sha256 AND refcount <= 0;"
     "END;"},
    /* IMAP: BODY (without extension data) next to BODYSTRUCTURE; a covering index for the hot
     * reads of a session (UIDs, flags, MODSEQs, keywords in UID order; STATUS counts), so they
     * never touch the wide message rows; expunged UIDs with the MODSEQ of their expunge
     * (QRESYNC VANISHED, RFC 7162 §3.2.5, and how other sessions learn of an expunge); and
     * subscriptions of names that are no mailbox (RFC 9051 §6.3.9: a subscription outlives its
     * mailbox), while mailboxes.subscribed stays the flag of existing mailboxes. A name is in at
     * most one of the two places. Quota bytes stay with the messages triggers: every IMAP path
     * (append, copy, move, expunge, delete) inserts or deletes message rows. */
    {3, "imap: body, view index, expunged, subscriptions",
     "ALTER TABLE messages ADD COLUMN body TEXT;"
     "CREATE INDEX messages_view ON messages(mailbox_id, uid, flags, modseq, size, keywords);"
     "CREATE TABLE expunged ("
     "  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
     "  uid INTEGER NOT NULL,"
     "  modseq INTEGER NOT NULL,"
     "  PRIMARY KEY (mailbox_id, uid)"
     ") WITHOUT ROWID;"
     "CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);"
     "CREATE TABLE subscriptions ("
     "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
     "  name TEXT NOT NULL,"
     "  PRIMARY KEY (account_id, name)"
     ") WITHOUT ROWID;"},
    /* DKIM keys (RFC 6376): per domain and selector; state 'active' keys sign, 'published' ones
     * (rotated out) stay listed for DNS until retire_at (unix seconds), then become 'retired'.
     * private_key is PKCS#8 PEM and never leaves the store unless exported; public_key is the
     * base64 of the p= tag (RSA SubjectPublicKeyInfo DER, or the raw 32-byte Ed25519 key). */
    {4, "dkim keys",
     "CREATE TABLE dkim_keys ("
     "  id INTEGER PRIMARY KEY,"
     "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
     "  selector TEXT NOT NULL,"
     "  algo TEXT NOT NULL," /* 'ed25519' or 'rsa' */
     "  bits INTEGER NOT NULL,"
     "  private_key TEXT NOT NULL,"
     "  public_key TEXT NOT NULL,"
     "  state TEXT NOT NULL DEFAULT 'active',"
     "  created INTEGER NOT NULL,"
     "  retire_at INTEGER,"
     "  UNIQUE (domain_id, selector)"
     ");"
     "CREATE INDEX dkim_keys_domain ON dkim_keys(domain_id, state);"},
    /* Outbound scheduling and DSNs: the VERP envelope sender used when relaying (return_path,
     * "bounce+<token>@<domain>", NULL = mail_from) with its token, who gets DSNs (dsn_to: the
     * submitting person, NULL = nobody), and per recipient whether a delay notice went out, whether
     * the final DSN was handled, and when it was delivered. queue_rcpts.status may now also be
     * 'held' (never due until released). */
    {5, "queue scheduling, dsn",
     "ALTER TABLE queue_messages ADD COLUMN return_path TEXT;"
     "ALTER TABLE queue_messages ADD COLUMN bounce_token TEXT;"
     "ALTER TABLE queue_messages ADD COLUMN dsn_to TEXT;"
     "CREATE UNIQUE INDEX queue_messages_token ON queue_messages(bounce_token)"
     "  WHERE bounce_token IS NOT NULL;"
     "ALTER TABLE queue_rcpts ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE queue_rcpts ADD COLUMN dsn_done INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE queue_rcpts ADD COLUMN delivered_at INTEGER;"
     "CREATE INDEX queue_rcpts_msg_domain ON queue_rcpts(msg_id, domain, status);"},
    /* REST API (issue 6). api_keys: only the SHA-256 of a token is kept (hash), with a display
     * prefix; domain_id NULL = admin key; revoked 0 = active. AUTOINCREMENT so that the id of a
     * key deleted with its domain is never handed out again (API messages and idempotency rows
     * keep plain key ids, without a foreign key, as a record). templates: per domain and name.
     * api_messages: one per accepted API send, linked to its queue message (plain id: the queue
     * row may be dropped or cleaned up while the record stays), with one api_message_rcpts row
     * per requested recipient (its status at acceptance). api_idempotency: the response stored
     * for (key, Idempotency-Key); a row older than 24 h is replaced by a new request. events:
     * one row per thing that happened to a message and recipient (DESIGN.md §8), for all mail,
     * with the queue message and API message when there is one. */
    {6, "rest api: keys, templates, api messages, idempotency, events",
     "CREATE TABLE api_keys ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  hash TEXT NOT NULL UNIQUE," /* lower-case hex SHA-256 of the whole token */
     "  prefix TEXT NOT NULL,"      /* first 12 characters of the token, for display */
     "  name TEXT NOT NULL DEFAULT '',"
     "  domain_id INTEGER REFERENCES domains(id) ON DELETE CASCADE," /* NULL = admin */
     "  created INTEGER NOT NULL,"
     "  revoked INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX api_keys_domain ON api_keys(domain_id);"
     "CREATE TABLE templates ("
     "  id INTEGER PRIMARY KEY,"
     "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
     "  name TEXT NOT NULL,"
     "  subject TEXT,"
     "  text TEXT,"
     "  html TEXT,"
     "  created INTEGER NOT NULL,"
     "  updated INTEGER NOT NULL,"
     "  UNIQUE (domain_id, name)"
     ");"
     "CREATE TABLE api_messages ("
     "  id INTEGER PRIMARY KEY,"
     "  public_id TEXT NOT NULL UNIQUE,"
     "  apikey_id INTEGER NOT NULL,"
     "  domain TEXT NOT NULL COLLATE NOCASE," /* the sending domain */
     "  mail_from TEXT NOT NULL,"
     "  subject TEXT,"
     "  message_id TEXT,"
     "  tags TEXT,"            /* JSON array text */
     "  metadata TEXT,"        /* JSON object text */
     "  queue_msg_id INTEGER," /* NULL when nothing was queued */
     "  created INTEGER NOT NULL"
     ");"
     "CREATE INDEX api_messages_queue ON api_messages(queue_msg_id)"
     "  WHERE queue_msg_id IS NOT NULL;"
     "CREATE INDEX api_messages_domain ON api_messages(domain, created);"
     "CREATE TABLE api_message_rcpts ("
     "  id INTEGER PRIMARY KEY,"
     "  api_msg_id INTEGER NOT NULL REFERENCES api_messages(id) ON DELETE CASCADE,"
     "  address TEXT NOT NULL COLLATE NOCASE,"
     "  kind TEXT NOT NULL,"   /* to, cc, bcc */
     "  status TEXT NOT NULL," /* at acceptance: delivered, queued, rejected */
     "  error TEXT"
     ");"
     "CREATE INDEX api_message_rcpts_msg ON api_message_rcpts(api_msg_id);"
     "CREATE TABLE api_idempotency ("
     "  apikey_id INTEGER NOT NULL,"
     "  key TEXT NOT NULL,"
     "  api_msg_id INTEGER REFERENCES api_messages(id) ON DELETE SET NULL,"
     "  response TEXT NOT NULL,"
     "  created INTEGER NOT NULL,"
     "  PRIMARY KEY (apikey_id, key)"
     ") WITHOUT ROWID;"
     "CREATE INDEX api_idempotency_created ON api_idempotency(created);"
     "CREATE TABLE events ("
     "  id INTEGER PRIMARY KEY,"
     "  created INTEGER NOT NULL,"
     "  type TEXT NOT NULL," /* message.queued, message.delivered, ... */
     "  recipient TEXT NOT NULL COLLATE NOCASE,"
     "  queue_msg_id INTEGER," /* plain id: the queue row may be gone */
     "  api_msg_id INTEGER REFERENCES api_messages(id) ON DELETE SET NULL,"
     "  detail TEXT NOT NULL DEFAULT '{}'" /* JSON object text */
     ");"
     "CREATE INDEX events_api ON events(api_msg_id) WHERE api_msg_id IS NOT NULL;"
     "CREATE INDEX events_queue ON events(queue_msg_id) WHERE queue_msg_id IS NOT "
     "NULL;"
     "CREATE INDEX events_created ON events(created);"},
    /* Events for everyone (issue 7): each event names its domain and the public id of its
     * message (api_messages.public_id for sent mail, one per inbound delivery for
     * message.received). webhooks: an endpoint with its signing secret, the event types it
     * wants ("" = all; else ",type,type," for instr()) and an optional domain scope.
     * webhook_deliveries: one row per (webhook, event), created in the transaction that
     * inserts the event, so no event is lost; webhook_attempts: every POST made for it.
     * suppressions: per domain (the sending domain), address folded (lower-case, +tag
     * removed). bounce_counts: consecutive soft bounces per (domain, address). track_links:
     * the URLs of a tracked message by index (a click token may only lead there). secrets:
     * server-side keys (the tracking HMAC key). domains.track_*: tracking defaults. */
    {7, "events for all mail, webhooks, suppressions, tracking",
     "ALTER TABLE events ADD COLUMN domain TEXT COLLATE NOCASE;"
     "ALTER TABLE events ADD COLUMN message TEXT;"
     "CREATE INDEX events_domain ON events(domain, id);"
     "CREATE INDEX events_message ON events(message) WHERE message IS NOT NULL;"
     "ALTER TABLE domains ADD COLUMN track_opens INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE domains ADD COLUMN track_clicks INTEGER NOT NULL DEFAULT 0;"
     "CREATE TABLE webhooks ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  url TEXT NOT NULL,"
     "  secret TEXT NOT NULL,"
     "  types TEXT NOT NULL DEFAULT '',"
     "  domain_id INTEGER REFERENCES domains(id) ON DELETE CASCADE," /* NULL = all domains */
     "  created INTEGER NOT NULL"
     ");"
     "CREATE TABLE webhook_deliveries ("
     "  id INTEGER PRIMARY KEY,"
     "  webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
     "  event_id INTEGER NOT NULL,"
     "  status TEXT NOT NULL DEFAULT 'pending'," /* pending, sending, delivered, failed */
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  next_attempt INTEGER NOT NULL,"
     "  created INTEGER NOT NULL,"
     "  UNIQUE (webhook_id, event_id)"
     ");"
     "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt)"
     "  WHERE status IN ('pending', 'sending');"
     "CREATE TABLE webhook_attempts ("
     "  id INTEGER PRIMARY KEY,"
     "  delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,"
     "  at INTEGER NOT NULL,"
     "  status_code INTEGER NOT NULL DEFAULT 0," /* HTTP status, 0 = none */
     "  error TEXT,"
     "  duration_ms INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id);"
     "CREATE TABLE suppressions ("
     "  id INTEGER PRIMARY KEY,"
     "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
     "  address TEXT NOT NULL COLLATE NOCASE,"
     "  reason TEXT NOT NULL,"            /* hard_bounce, soft_bounces, complaint, manual */
     "  source TEXT NOT NULL DEFAULT ''," /* the reply, DSN, or who added it */
     "  created INTEGER NOT NULL,"
     "  UNIQUE (domain_id, address)"
     ");"
     "CREATE TABLE bounce_counts ("
     "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
     "  address TEXT NOT NULL COLLATE NOCASE,"
     "  soft INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (domain_id, address)"
     ") WITHOUT ROWID;"
     "CREATE TABLE track_links ("
     "  message TEXT NOT NULL,"
     "  idx INTEGER NOT NULL,"
     "  url TEXT NOT NULL,"
     "  PRIMARY KEY (message, idx)"
     ") WITHOUT ROWID;"
     "CREATE TABLE secrets ("
     "  name TEXT PRIMARY KEY,"
     "  value BLOB NOT NULL"
     ") WITHOUT ROWID;"},
    /* Rate limits (issue 8). limit_usage: daily counters by the limiter's key ("acct:<address>:
     * messages", ...) and day (unix seconds / 86400), added to by store_deliver in the
     * transaction of the message; the day index serves the pruning. Overrides replace the
     * configured value of a rule (0 = unlimited) for one account or one domain: two tables, so
     * that each key is a real primary key (NULLs never collide in a UNIQUE constraint) and each
     * row goes with its account or domain through the foreign key. */
    {8, "rate limits: usage, overrides",
     "CREATE TABLE limit_usage ("
     "  key TEXT NOT NULL,"
     "  day INTEGER NOT NULL,"
     "  count INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (key, day)"
     ") WITHOUT ROWID;"
     "CREATE INDEX limit_usage_day ON limit_usage(day);"
     "CREATE TABLE limit_account_overrides ("
     "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
     "  rule TEXT NOT NULL,"
     "  value INTEGER NOT NULL,"
     "  PRIMARY KEY (account_id, rule)"
     ") WITHOUT ROWID;"
     "CREATE TABLE limit_domain_overrides ("
     "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
     "  rule TEXT NOT NULL,"
     "  value INTEGER NOT NULL,"
     "  PRIMARY KEY (domain_id, rule)"
     ") WITHOUT ROWID;"},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

int
store_migrate_latest(void)
{
	return migrations[N_MIGRATIONS - 1].version;
}

static int
store_migrate_version(sqlite3 *db, int *v_r, struct err *err)
{
	int64_t v = 0;
	if (store_db_query_int(db, "PRAGMA user_version", NULL, NULL, &v, err) < 0)
		return -1;
	*v_r = (int)v;
	return 0;
}

/* Applies one step unless another process did it first. */
static int
store_migrate_one(sqlite3 *db, const struct migration *m, struct err *err)
{
	if (store_db_exec(db, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	int cur;
	if (store_migrate_version(db, &cur, err) < 0)
		goto fail;
	if (cur >= m->version) {
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	if (sqlite3_exec(db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
		store_db_fail(db, err, "migration");
		goto fail;
	}
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db, "INSERT INTO schema_migrations (version, name, applied) VALUES (?1, ?2, ?3)",
	        &stmt, err) < 0)
		goto fail;
	sqlite3_bind_int(stmt, 1, m->version);
	sqlite3_bind_text(stmt, 2, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, clock_now());
	int rc = store_db_step_done(db, stmt, err, "migration-record");
	sqlite3_finalize(stmt);
	if (rc < 0)
		goto fail;
	char sql[64];
	(void)snprintf(sql, sizeof sql, "PRAGMA user_version = %d", m->version);
	if (store_db_exec(db, sql, err) < 0)
		goto fail;
	if (store_db_exec(db, "COMMIT", err) < 0)
		goto fail;
	log_info("store - migrated version=%d name=\"%s\"", m->version, m->name);
	return 0;
fail:
	(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
store_migrate(sqlite3 *db, int *version_r, struct err *err)
{
	int cur;
	if (store_migrate_version(db, &cur, err) < 0)
		return -1;
	if (cur > store_migrate_latest()) {
		log_error("store - schema-too-new version=%d known=%d", cur,
		          store_migrate_latest());
		return err_set(err, STORE_EINTERNAL,
		               "database schema version %d is newer than this program (%d)", cur,
		               store_migrate_latest());
	}
	for (size_t i = 0; i < N_MIGRATIONS; i++) {
		if (migrations[i].version <= cur)
			continue;
		if (store_migrate_one(db, &migrations[i], err) < 0)
			return -1;
	}
	return store_migrate_version(db, version_r, err);
}
