/* Automatic suppression from delivery results (issue 7), in the transaction that records the
 * result (queue.c record_fn): a hard bounce (enhanced status 5.1.x or 5.2.1, or a 550/551/553
 * reply without a more precise status) suppresses the address for the sending domain; any other
 * permanent failure or an expiry counts as a soft bounce, and BOUNCE_SOFT_LIMIT of them in a
 * row suppress it too; a delivery resets the count. The sending domain is the message record's
 * domain, else the envelope sender's; mail from a domain we do not serve is left alone.
 * Addresses are folded with '+' as the sub-address separator (the store does not know the
 * configured one). */
#include <string.h>

#include "store_private.h"

#define BOUNCE_SOFT_LIMIT 3

bool
store_bounce_is_hard(const struct store_queue_result *r)
{
	const char *d = r->dsn ? r->dsn : "";
	if (strncmp(d, "5.1.", 4) == 0 || strcmp(d, "5.2.1") == 0)
		return true;
	const char *e = r->error ? r->error : "";
	bool vague = d[0] == '\0' || strcmp(d, "5.0.0") == 0;
	return vague && (strncmp(e, "550", 3) == 0 || strncmp(e, "551", 3) == 0 ||
	                 strncmp(e, "553", 3) == 0);
}

static int
bounce_suppress(struct store_tx *tx, int64_t domain_id, const char *addr, const char *reason,
                const char *source, int64_t now, struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_BOUNCE_SUPPRESS, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, domain_id);
	sqlite3_bind_text(stmt, 2, addr, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, source ? source : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, now);
	return store_stmt_done(store_tx_db(tx), stmt, err, "bounce-suppress");
}

int
store_tx_bounce_rules(struct store_tx *tx, const struct store_queue_result *r, int64_t now,
                      struct err *err)
{
	if (r->outcome == STORE_QUEUE_DEFERRED)
		return 0;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_BOUNCE_CTX, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, r->rcpt_id);
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		store_stmt_release(stmt);
		return rc == SQLITE_DONE ? 0 : store_db_fail(db, err, "bounce-ctx");
	}
	int64_t domain_id = sqlite3_column_int64(stmt, 0);
	char addr[STORE_ADDR_MAX + 2];
	store_suppress_fold((const char *)sqlite3_column_text(stmt, 1), '+', addr, sizeof addr);
	store_stmt_release(stmt);
	if (r->outcome == STORE_QUEUE_DELIVERED) {
		stmt = store_tx_stmt(tx, STMT_BOUNCE_CLEAR, err);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, domain_id);
		sqlite3_bind_text(stmt, 2, addr, -1, SQLITE_STATIC);
		return store_stmt_done(db, stmt, err, "bounce-clear");
	}
	if (r->outcome == STORE_QUEUE_BOUNCED && store_bounce_is_hard(r))
		return bounce_suppress(tx, domain_id, addr, "hard_bounce", r->error, now, err);
	stmt = store_tx_stmt(tx, STMT_BOUNCE_SOFT_INC, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, domain_id);
	sqlite3_bind_text(stmt, 2, addr, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	int64_t soft = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(stmt);
	store_stmt_release(stmt);
	if (rc != SQLITE_DONE)
		return store_db_fail(db, err, "bounce-soft");
	if (soft >= BOUNCE_SOFT_LIMIT)
		return bounce_suppress(tx, domain_id, addr, "soft_bounces", r->error, now, err);
	return 0;
}
