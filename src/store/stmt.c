/* Prepared statements cached per connection. Every connection belongs to one thread (the writer's
 * to the writer, a reader to its thread), so each keeps its own array of statements, prepared on
 * first use with SQLITE_PREPARE_PERSISTENT and finalized when the connection closes. The SQL is
 * in one table below, indexed by enum store_stmt_id; the hot paths (RCPT lookups and
 * store_deliver) then cost a bind and a step per statement instead of a parse. A statement is
 * reset and unbound after each use, so no reader keeps a stale snapshot open. */
#include "store_private.h"

#include <stdint.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

static const char *const stmt_sql[STORE_STMT_COUNT] = {
    [STMT_READ_BEGIN] = "BEGIN",
    [STMT_READ_END] = "COMMIT",
    [STMT_DOMAIN_EXISTS] = "SELECT 1 FROM domains WHERE name = ?1",
    [STMT_DOMAIN_GET] = STORE_DOMAIN_COLS " WHERE d.name = ?1",
    [STMT_DKIM_ACTIVE] = "SELECT d.name, k.selector, k.algo, k.bits, k.public_key, k.state,"
                         " k.created, k.retire_at, k.id, k.private_key"
                         " FROM dkim_keys k JOIN domains d ON k.domain_id = d.id"
                         " WHERE d.name = ?1 AND k.state = 'active'"
                         " ORDER BY k.created, k.selector",
    [STMT_DKIM_LIST] = "SELECT d.name, k.selector, k.algo, k.bits, k.public_key, k.state,"
                       " k.created, k.retire_at, k.id, NULL"
                       " FROM dkim_keys k JOIN domains d ON k.domain_id = d.id"
                       " WHERE ?1 IS NULL OR d.name = ?1"
                       " ORDER BY d.name, k.created, k.selector",
    [STMT_RCPT_ACCOUNT] = "SELECT address, quota, used, disabled FROM accounts WHERE address = ?1",
    [STMT_RCPT_ALIAS] = "SELECT t.target FROM aliases a JOIN alias_targets t ON t.alias_id = a.id"
                        " WHERE a.address = ?1 ORDER BY t.target",
    [STMT_SENDER_ACCOUNT] = "SELECT a.address, d.name, a.domain_admin FROM accounts a"
                            " JOIN domains d ON a.domain_id = d.id WHERE a.address = ?1",
    [STMT_SENDER_ALIAS] = "SELECT 1 FROM aliases a JOIN alias_targets t ON t.alias_id = a.id"
                          " WHERE a.address = ?1 AND t.target = ?2",
    [STMT_DELIVER_BLOB] = "INSERT INTO blobs (sha256, size, created, data) VALUES (?1, ?2, ?3, ?4)"
                          " ON CONFLICT (sha256) DO NOTHING",
    /* Takes the next UID and MODSEQ of the account's INBOX in one step (RFC 3501 2.3.1.1,
     * RFC 7162 3.1.1): returns the mailbox, the UID handed out and the new HIGHESTMODSEQ. */
    [STMT_DELIVER_INBOX] =
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
        " WHERE id = (SELECT mb.id FROM mailboxes mb JOIN accounts a ON mb.account_id = a.id"
        "  WHERE a.address = ?1 AND mb.name = coalesce(?2, 'INBOX'))"
        " RETURNING id, uidnext - 1, highestmodseq",
    [STMT_DELIVER_MESSAGE] =
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size, blob_sha256,"
        " header_text, envelope, body, bodystructure, part_offsets)"
        " VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [STMT_DELIVER_QUEUE_MSG] =
        "INSERT INTO queue_messages (created, mail_from, auth_user, ret, envid, requiretls,"
        " smtputf8, eightbit, size, header_text, blob_sha256, return_path, bounce_token, dsn_to)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [STMT_DELIVER_QUEUE_RCPT] =
        "INSERT INTO queue_rcpts (msg_id, rcpt, domain, notify, orcpt, next_attempt, created)"
        " VALUES (?1, ?2, lower(?3), ?4, ?5, ?6, ?6)",
    [STMT_SAVEPOINT] = "SAVEPOINT w0",
    [STMT_RELEASE] = "RELEASE w0",
    /* IMAP. A mailbox's UIDNEXT and HIGHESTMODSEQ are read and written back by the request that
     * changes it (the writer is the only one writing, so nothing interleaves). */
    [STMT_IMAP_MBOX_BY_NAME] = "SELECT id, uidvalidity, uidnext, highestmodseq, special_use"
                               " FROM mailboxes WHERE account_id = ?1 AND name = ?2",
    [STMT_IMAP_MBOX_BY_ID] = "SELECT id, uidvalidity, uidnext, highestmodseq, special_use"
                             " FROM mailboxes WHERE id = ?1",
    [STMT_IMAP_MBOX_UPDATE] = "UPDATE mailboxes SET uidnext = ?2, highestmodseq = ?3 WHERE id = ?1",
    /* The session's view of a whole mailbox: the covering index messages_view (migration 3). */
    [STMT_IMAP_MSGS_ALL] = "SELECT uid, flags, modseq, keywords FROM messages"
                           " INDEXED BY messages_view WHERE mailbox_id = ?1 ORDER BY uid",
    /* Polls (NOOP, IDLE, QRESYNC) ask for few changes: walk the MODSEQ index, sort the few. */
    [STMT_IMAP_MSGS_SINCE] = "SELECT uid, flags, modseq, keywords FROM messages"
                             " INDEXED BY messages_modseq WHERE mailbox_id = ?1 AND modseq > ?2"
                             " ORDER BY uid",
    [STMT_IMAP_VANISHED] = "SELECT uid FROM expunged INDEXED BY expunged_modseq"
                           " WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
    [STMT_IMAP_META] = "SELECT id, internal_date, size, length(header_text), envelope, body,"
                       " bodystructure, part_offsets FROM messages"
                       " WHERE mailbox_id = ?1 AND uid = ?2",
    [STMT_IMAP_READ] = "SELECT b.rowid, b.size, m.header_text FROM messages m"
                       " JOIN blobs b ON b.sha256 = m.blob_sha256 WHERE m.id = ?1",
    [STMT_IMAP_MSG_GET] = "SELECT id, flags, keywords, modseq, size FROM messages"
                          " WHERE mailbox_id = ?1 AND uid = ?2",
    [STMT_IMAP_MSG_FLAGS] =
        "UPDATE messages SET flags = ?2, keywords = ?3, modseq = ?4 WHERE id = ?1",
    /* System flags only, on a UID range, one MODSEQ for all (RFC 7162 §3.1 lets one operation
     * give several messages the same mod-sequence); unchanged rows are not touched. */
    [STMT_IMAP_FLAGS_ADD] =
        "UPDATE messages SET flags = flags | ?4, modseq = ?5 WHERE mailbox_id = ?1"
        " AND uid BETWEEN ?2 AND ?3 AND (flags | ?4) != flags RETURNING uid, flags, keywords",
    [STMT_IMAP_FLAGS_REMOVE] =
        "UPDATE messages SET flags = flags & ~?4, modseq = ?5 WHERE mailbox_id = ?1"
        " AND uid BETWEEN ?2 AND ?3 AND (flags & ?4) != 0 RETURNING uid, flags, keywords",
    [STMT_IMAP_FLAGS_SET] =
        "UPDATE messages SET flags = ?4, keywords = '', modseq = ?5 WHERE mailbox_id = ?1"
        " AND uid BETWEEN ?2 AND ?3 AND (flags != ?4 OR keywords != '')"
        " RETURNING uid, flags, keywords",
    [STMT_IMAP_MSG_COPY] =
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size,"
        " blob_sha256, header_text, envelope, body, bodystructure, part_offsets)"
        " SELECT ?2, ?3, ?4, flags, keywords, internal_date, size, blob_sha256, header_text,"
        " envelope, body, bodystructure, part_offsets FROM messages WHERE id = ?1",
    [STMT_IMAP_MSG_DELETE] = "DELETE FROM messages WHERE id = ?1",
    [STMT_IMAP_EXPUNGED_ADD] =
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)",
    [STMT_IMAP_APPEND] =
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, size,"
        " blob_sha256, envelope, body, bodystructure, part_offsets)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [STMT_IMAP_STATUS_COUNTS] =
        "SELECT count(*), coalesce(sum((flags & 1) = 0), 0), coalesce(sum((flags & 8) <> 0), 0),"
        " coalesce(sum(size), 0) FROM messages INDEXED BY messages_view WHERE mailbox_id = ?1",
    [STMT_IMAP_QUOTA] = "SELECT used, quota, (SELECT count(*) FROM messages WHERE mailbox_id IN"
                        " (SELECT id FROM mailboxes WHERE account_id = ?1))"
                        " FROM accounts WHERE id = ?1",
    /* REST API (api_msg.c, apikey.c): key lookup on every request, records and events on
     * every send and queue result. */
    [STMT_APIKEY_LOOKUP] = "SELECT k.id, k.prefix, k.name, d.name, k.created, k.revoked"
                           " FROM api_keys k LEFT JOIN domains d ON d.id = k.domain_id"
                           " WHERE k.hash = ?1 AND k.revoked = 0",
    [STMT_API_MSG_ADD] =
        "INSERT INTO api_messages (public_id, apikey_id, domain, mail_from, subject, message_id,"
        " tags, metadata, queue_msg_id, created) VALUES (?1, ?2, lower(?3), ?4, ?5, ?6, ?7, ?8,"
        " nullif(?9, 0), ?10)",
    [STMT_API_RCPT_ADD] = "INSERT INTO api_message_rcpts (api_msg_id, address, kind, status,"
                          " error) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_IDEM_FIND] = "SELECT created, response FROM api_idempotency"
                       " WHERE apikey_id = ?1 AND key = ?2",
    [STMT_IDEM_PUT] = "INSERT OR REPLACE INTO api_idempotency (apikey_id, key, api_msg_id,"
                      " response, created) VALUES (?1, ?2, ?3, ?4, ?5)",
    /* domain and message are those of the API message record (NULL without one). */
    [STMT_EVENT_ADD] =
        "INSERT INTO events (created, type, recipient, queue_msg_id, api_msg_id, detail, domain,"
        " message) VALUES (?1, ?2, ?3, nullif(?4, 0), nullif(?5, 0), ?6,"
        " (SELECT domain FROM api_messages WHERE id = ?5),"
        " (SELECT public_id FROM api_messages WHERE id = ?5)) RETURNING id",
    /* The recipient and messages come from the queue row just updated. */
    [STMT_EVENT_QUEUE_RESULT] =
        "INSERT INTO events (created, type, recipient, queue_msg_id, api_msg_id, detail, domain,"
        " message) SELECT ?2, ?3, r.rcpt, r.msg_id, a.id, ?4, a.domain, a.public_id"
        " FROM queue_rcpts r LEFT JOIN api_messages a ON a.id = (SELECT x.id"
        "  FROM api_messages x WHERE x.queue_msg_id = r.msg_id ORDER BY x.id LIMIT 1)"
        " WHERE r.id = ?1 RETURNING id",
    /* Suppressions and tracking (suppress.c, track.c): the check runs for every recipient of
     * every send, the reset after every delivery, the link lookup for every click. The check
     * yields one row when the domain exists, with NULLs when the address is not listed. */
    [STMT_SUPPRESS_CHECK] = "SELECT s.id, d.name, s.address, s.reason, s.source, s.created"
                            " FROM domains d LEFT JOIN suppressions s"
                            " ON s.domain_id = d.id AND s.address = ?2 WHERE d.name = ?1",
    [STMT_BOUNCE_RESET] = "DELETE FROM bounce_counts WHERE address = ?2"
                          " AND domain_id = (SELECT id FROM domains WHERE name = ?1)",
    [STMT_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
    [STMT_TRACK_LINK] = "SELECT url FROM track_links WHERE message = ?1 AND idx = ?2",
    /* Events and webhooks (event.c, webhook.c): the fan-out runs after every event insert. */
    [STMT_EVENT_NEW] =
        "INSERT INTO events (created, type, recipient, api_msg_id, detail, domain, message)"
        " VALUES (?1, ?2, ?3, (SELECT id FROM api_messages WHERE public_id = ?5), ?6,"
        " lower(?4), ?5) RETURNING id",
    [STMT_WEBHOOK_FANOUT] =
        "INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt, created)"
        " SELECT w.id, e.id, ?2, ?2 FROM events e JOIN webhooks w"
        " ON (w.domain_id IS NULL OR w.domain_id = (SELECT d.id FROM domains d"
        "  WHERE d.name = e.domain))"
        " AND (w.types = '' OR instr(w.types, ',' || e.type || ',') > 0)"
        " WHERE e.id = ?1",
    /* The status terms repeat the partial index's WHERE so that it is used. */
    [STMT_WEBHOOK_CLAIM] =
        "UPDATE webhook_deliveries SET status = 'sending' WHERE id IN (SELECT id"
        " FROM webhook_deliveries WHERE status IN ('pending', 'sending') AND status = 'pending'"
        " AND next_attempt <= ?1 ORDER BY next_attempt, id LIMIT ?2) RETURNING id",
    [STMT_WEBHOOK_JOB] = "SELECT wd.webhook_id, wd.attempts, w.url, w.secret, wd.event_id,"
                         " " STORE_EVENT_ROW_COLS " FROM webhook_deliveries wd"
                         " JOIN webhooks w ON w.id = wd.webhook_id"
                         " LEFT JOIN events e ON e.id = wd.event_id"
                         " LEFT JOIN api_messages a ON a.id = e.api_msg_id WHERE wd.id = ?1",
    [STMT_WEBHOOK_FAIL] = "UPDATE webhook_deliveries SET status = 'failed' WHERE id = ?1",
    [STMT_WEBHOOK_UPDATE] = "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1,"
                            " next_attempt = coalesce(?3, next_attempt) WHERE id = ?1",
    [STMT_WEBHOOK_ATTEMPT] = "INSERT INTO webhook_attempts (delivery_id, at, status_code, error,"
                             " duration_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    /* Automatic suppression (bounce_rules.c): the sending domain of a queue row. */
    [STMT_BOUNCE_CTX] =
        "SELECT d.id, q.rcpt FROM queue_rcpts q JOIN queue_messages m ON m.id = q.msg_id"
        " JOIN domains d ON d.name = lower(coalesce((SELECT a.domain FROM api_messages a"
        "  WHERE a.queue_msg_id = m.id LIMIT 1),"
        "  substr(m.mail_from, instr(m.mail_from, '@') + 1))) WHERE q.id = ?1",
    [STMT_BOUNCE_CLEAR] = "DELETE FROM bounce_counts WHERE domain_id = ?1 AND address = ?2",
    [STMT_BOUNCE_SOFT_INC] =
        "INSERT INTO bounce_counts (domain_id, address, soft) VALUES (?1, ?2, 1)"
        " ON CONFLICT (domain_id, address) DO UPDATE SET soft = soft + 1"
        " RETURNING soft",
    [STMT_BOUNCE_SUPPRESS] =
        "INSERT INTO suppressions (domain_id, address, reason, source, created)"
        " VALUES (?1, ?2, ?3, substr(?4, 1, 1000), ?5)"
        " ON CONFLICT (domain_id, address) DO NOTHING",
    /* Rate limits (migration 8): a day's counter grows, saturating instead of overflowing. The
     * override lists return one row with a NULL rule for an owner without overrides, and none
     * for an unknown owner. */
    [STMT_LIMIT_USAGE_ADD] =
        "INSERT INTO limit_usage (key, day, count) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (key, day) DO UPDATE SET count = CASE"
        "  WHEN count > 9223372036854775807 - excluded.count THEN 9223372036854775807"
        "  ELSE count + excluded.count END",
    [STMT_LIMIT_USAGE_GET] = "SELECT count FROM limit_usage WHERE key = ?1 AND day = ?2",
    [STMT_LIMIT_OVERRIDES_ACCOUNT] = "SELECT o.rule, o.value FROM accounts a"
                                     " LEFT JOIN limit_account_overrides o ON o.account_id = a.id"
                                     " WHERE a.address = ?1 ORDER BY o.rule",
    [STMT_LIMIT_OVERRIDES_DOMAIN] = "SELECT o.rule, o.value FROM domains d"
                                    " LEFT JOIN limit_domain_overrides o ON o.domain_id = d.id"
                                    " WHERE d.name = ?1 ORDER BY o.rule",
};

sqlite3_stmt *
store_stmt_get(sqlite3 *db, struct store_stmts *c, enum store_stmt_id id, struct err *err)
{
	ASSERT(id < STORE_STMT_COUNT && stmt_sql[id] != NULL);
	if (c->v[id] != NULL)
		return c->v[id];
	if (sqlite3_prepare_v3(db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->v[id], NULL) !=
	    SQLITE_OK) {
		c->v[id] = NULL;
		store_db_fail(db, err, "prepare");
		return NULL;
	}
	return c->v[id];
}

sqlite3_stmt *
store_tx_stmt(struct store_tx *tx, enum store_stmt_id id, struct err *err)
{
	return store_stmt_get(tx->db, &tx->st->wstmts, id, err);
}

sqlite3_stmt *
store_reader_stmt(struct store_reader *r, enum store_stmt_id id, struct err *err)
{
	return store_stmt_get(r->db, &r->stmts, id, err);
}

void
store_stmt_release(sqlite3_stmt *stmt)
{
	if (stmt == NULL)
		return;
	(void)sqlite3_reset(stmt);
	(void)sqlite3_clear_bindings(stmt);
}

int
store_stmt_done(sqlite3 *db, sqlite3_stmt *stmt, struct err *err, const char *op)
{
	int rc = sqlite3_step(stmt);
	int ret = rc == SQLITE_DONE ? 0 : store_db_fail(db, err, op);
	store_stmt_release(stmt);
	return ret;
}

int
store_reader_begin(struct store_reader *r, struct err *err)
{
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_READ_BEGIN, err);
	return stmt ? store_stmt_done(r->db, stmt, err, "begin") : -1;
}

void
store_reader_end(struct store_reader *r)
{
	if (sqlite3_get_autocommit(r->db))
		return;
	struct err ignored;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_READ_END, &ignored);
	if (stmt == NULL || store_stmt_done(r->db, stmt, &ignored, "commit") < 0)
		(void)sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
}

void
store_stmts_finalize(struct store_stmts *c)
{
	for (size_t i = 0; i < STORE_STMT_COUNT; i++) {
		sqlite3_finalize(c->v[i]);
		c->v[i] = NULL;
	}
}

int
store_stmt_collect(sqlite3_stmt *stmt, size_t elem_size, store_row_fn *fn, void **v_r, size_t *n_r)
{
	ASSERT(elem_size > 0);
	unsigned char *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			if (cap > SIZE_MAX / 2 / elem_size) {
				rc = SQLITE_NOMEM;
				break;
			}
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * elem_size);
		}
		void *elem = v + n++ * elem_size;
		memset(elem, 0, elem_size);
		fn(stmt, elem);
	}
	*v_r = v;
	*n_r = n;
	return rc;
}
