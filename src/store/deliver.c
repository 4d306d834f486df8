/* Durable delivery of one accepted message (DESIGN.md §2, §7): in a single write request, the
 * body is stored once (blob keyed by SHA-256, computed here on the caller's thread), every local
 * recipient gets a message row in its INBOX with the next UID and a new MODSEQ, and the remote
 * recipients get one outbound queue message with a row each. The triggers of migrate.c keep blob
 * refcounts and the accounts' used bytes. The request runs inside the writer's group
 * transaction under its own savepoint, so it is all or nothing and durable when store_deliver
 * returns 0; its statements are cached on the writer's connection (stmt.c), so the writer's work
 * per message is a handful of binds and steps. The same request writes the events of acceptance
 * and, for a REST API send, its record (api_msg.c). Also here: reading messages and queue rows
 * back. */
#include "store_private.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

struct deliver_args {
	const struct store_delivery *d;
	char sha[STORE_SHA_HEX + 1];
	int64_t now;
	int64_t queue_id;   /* out */
	int64_t *mailboxes; /* out: the INBOX of each local recipient (change counters) */
};

/* Binds n bytes (possibly none) as a blob without copying them. */
static void
deliver_bind_bytes(sqlite3_stmt *stmt, int col, const void *p, size_t n)
{
	sqlite3_bind_blob64(stmt, col, n ? p : "", n, SQLITE_STATIC);
}

/* One message row in the INBOX of l->account: UID = UIDNEXT, MODSEQ = HIGHESTMODSEQ + 1, both
 * advanced by the same statement. */
static int
deliver_local(struct store_tx *tx, const struct deliver_args *a, const struct store_local_rcpt *l,
              int64_t *mailbox_r, struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_DELIVER_INBOX, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, l->account, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, l->mailbox, -1, SQLITE_STATIC); /* NULL: INBOX */
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		int ret = rc == SQLITE_DONE
		              ? err_set(err, STORE_ENOTFOUND, "no account %s (or no mailbox %s)",
		                        l->account, l->mailbox ? l->mailbox : "INBOX")
		              : store_db_fail(db, err, "deliver-inbox");
		store_stmt_release(stmt);
		return ret;
	}
	int64_t mailbox_id = sqlite3_column_int64(stmt, 0);
	int64_t uid = sqlite3_column_int64(stmt, 1);
	int64_t modseq = sqlite3_column_int64(stmt, 2);
	store_stmt_release(stmt);        /* RETURNING: the update completed with the first row */
	if (uid < 1 || uid > UINT32_MAX) /* RFC 3501 2.3.1.1: UIDs are 32-bit */
		return err_set(err, STORE_EINTERNAL, "UID space of the INBOX of %s is exhausted",
		               l->account);
	const struct store_delivery *d = a->d;
	stmt = store_tx_stmt(tx, STMT_DELIVER_MESSAGE, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_int64(stmt, 3, modseq);
	sqlite3_bind_int64(stmt, 4, d->internal_date);
	sqlite3_bind_int64(stmt, 5, (int64_t)(l->header_len + d->body_len));
	sqlite3_bind_text(stmt, 6, a->sha, STORE_SHA_HEX, SQLITE_STATIC);
	deliver_bind_bytes(stmt, 7, l->header, l->header_len);
	/* IMAP metadata (NULL pointers bind SQL NULL: computed later when asked). */
	sqlite3_bind_text(stmt, 8, d->meta_envelope, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 9, d->meta_body, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 10, d->meta_bodystructure, -1, SQLITE_STATIC);
	if (d->meta_parts != NULL && d->meta_parts_len > 0)
		sqlite3_bind_blob64(stmt, 11, d->meta_parts, d->meta_parts_len, SQLITE_STATIC);
	*mailbox_r = mailbox_id;
	return store_stmt_done(db, stmt, err, "deliver-message");
}

/* The outbound queue message and one row per remote recipient, due at once. */
static int
deliver_queue(struct store_tx *tx, struct deliver_args *a, struct err *err)
{
	const struct store_delivery *d = a->d;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_DELIVER_QUEUE_MSG, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->now);
	sqlite3_bind_text(stmt, 2, d->mail_from, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, d->auth_user, -1, SQLITE_STATIC); /* NULL binds NULL */
	sqlite3_bind_text(stmt, 4, d->ret, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, d->envid, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 6, d->requiretls);
	sqlite3_bind_int(stmt, 7, d->smtputf8);
	sqlite3_bind_int(stmt, 8, d->eightbit);
	sqlite3_bind_int64(stmt, 9, (int64_t)(d->queue_header_len + d->body_len));
	deliver_bind_bytes(stmt, 10, d->queue_header, d->queue_header_len);
	sqlite3_bind_text(stmt, 11, a->sha, STORE_SHA_HEX, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 12, d->return_path, -1, SQLITE_STATIC); /* NULL binds NULL */
	sqlite3_bind_text(stmt, 13, d->bounce_token, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 14, d->dsn_to, -1, SQLITE_STATIC);
	if (store_stmt_done(db, stmt, err, "deliver-queue") < 0)
		return -1;
	a->queue_id = sqlite3_last_insert_rowid(db);
	stmt = store_tx_stmt(tx, STMT_DELIVER_QUEUE_RCPT, err);
	if (stmt == NULL)
		return -1;
	for (size_t i = 0; i < d->n_remote; i++) {
		const struct store_remote_rcpt *r = &d->remote[i];
		sqlite3_bind_int64(stmt, 1, a->queue_id);
		sqlite3_bind_text(stmt, 2, r->address, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, strrchr(r->address, '@') + 1, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 4, r->notify, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 5, r->orcpt, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 6, a->now);
		if (store_stmt_done(db, stmt, err, "deliver-queue-rcpt") < 0)
			return -1;
	}
	return 0;
}

/* message.received for account's copy: the account's domain, the delivery's public id. */
static int
deliver_event_received(struct store_tx *tx, int64_t now, const struct store_delivery *d,
                       const char *account, struct err *err)
{
	const char *at = strrchr(account, '@');
	struct store_event_new e = {.type = "message.received",
	                            .domain = at ? at + 1 : "",
	                            .message = d->received_id,
	                            .recipient = account,
	                            .detail = d->received_detail,
	                            .created = now};
	return store_tx_event_new(tx, &e, NULL, err);
}

/* Rate limits (issue 8): the delivery's usage counters of today, in its transaction. */
static int
deliver_limits(struct store_tx *tx, const struct deliver_args *a, struct err *err)
{
	const struct store_delivery *d = a->d;
	if (d->n_limit_incs == 0)
		return 0;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_LIMIT_USAGE_ADD, err);
	if (stmt == NULL)
		return -1;
	for (size_t i = 0; i < d->n_limit_incs; i++) {
		const struct store_limit_inc *inc = &d->limit_incs[i];
		if (inc->n == 0)
			continue;
		sqlite3_bind_text(stmt, 1, inc->key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, a->now / 86400);
		sqlite3_bind_int64(stmt, 3, (int64_t)inc->n);
		if (store_stmt_done(db, stmt, err, "deliver-limit") < 0)
			return -1;
	}
	return 0;
}

static int
deliver_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct deliver_args *a = arg;
	const struct store_delivery *d = a->d;
	/* (a record alone: every recipient was suppressed; no body is kept) */
	if (d->n_local + d->n_remote > 0 &&
	    store_tx_blob_put(tx, a->sha, d->body, d->body_len, err) < 0)
		return -1;
	for (size_t i = 0; i < d->n_local; i++)
		if (deliver_local(tx, a, &d->local[i], &a->mailboxes[i], err) < 0)
			return -1;
	if (d->n_remote > 0 && deliver_queue(tx, a, err) < 0)
		return -1;
	int64_t api_id = 0;
	if (d->api != NULL && store_tx_api_send(tx, d->api, a->queue_id, &api_id, err) < 0)
		return -1;
	/* The events of acceptance, for all mail (DESIGN.md §8): inbound mail is
	 * message.received in the recipient's domain, sent mail message.delivered. */
	for (size_t i = 0; i < d->n_local; i++) {
		const char *acct = d->local[i].account;
		if (d->received_detail != NULL) {
			if (deliver_event_received(tx, a->now, d, acct, err) < 0)
				return -1;
		} else if (store_tx_event_add(tx, a->now, "message.delivered", acct, 0, api_id,
		                              d->local[i].mailbox &&
		                                      strcmp(d->local[i].mailbox, "Junk") == 0
		                                  ? "{\"mailbox\":\"Junk\"}"
		                                  : "{\"mailbox\":\"INBOX\"}",
		                              err) < 0) {
			return -1;
		}
	}
	for (size_t i = 0; d->api != NULL && i < d->api->n_rcpts; i++)
		if (d->api->rcpts[i].status != NULL &&
		    strcmp(d->api->rcpts[i].status, "suppressed") == 0 &&
		    store_tx_event_add(tx, a->now, "message.suppressed", d->api->rcpts[i].address,
		                       0, api_id, "{\"reason\":\"on the suppression list\"}",
		                       err) < 0)
			return -1;
	for (size_t i = 0; i < d->n_remote; i++)
		if (store_tx_event_add(tx, a->now, "message.queued", d->remote[i].address,
		                       a->queue_id, api_id, NULL, err) < 0)
			return -1;
	return deliver_limits(tx, a, err);
}

/* Rejects what the schema or the contract cannot take, before the writer sees it. */
static int
deliver_check(const struct store_delivery *d, struct err *err)
{
	if (d == NULL || (d->n_local + d->n_remote == 0 && d->api == NULL))
		return err_set(err, STORE_EINVAL, "delivery without recipients");
	if (d->body == NULL && d->body_len > 0)
		return err_set(err, STORE_EINVAL, "body missing");
	if (d->body_len > INT64_MAX / 2)
		return err_set(err, STORE_EINVAL, "body too large");
	for (size_t i = 0; i < d->n_local; i++) {
		const struct store_local_rcpt *l = &d->local[i];
		if (l->account == NULL || (l->header == NULL && l->header_len > 0) ||
		    l->header_len > INT64_MAX / 2)
			return err_set(err, STORE_EINVAL, "local recipient %zu is incomplete", i);
	}
	if (d->api != NULL && store_api_send_check(d->api, err) < 0)
		return -1;
	if (d->n_limit_incs > STORE_LIMIT_INCS_MAX ||
	    (d->n_limit_incs > 0 && d->limit_incs == NULL))
		return err_set(err, STORE_EINVAL, "bad rate limit counters");
	for (size_t i = 0; i < d->n_limit_incs; i++)
		if (!store_limit_key_ok(d->limit_incs[i].key) || d->limit_incs[i].n > INT64_MAX)
			return err_set(err, STORE_EINVAL, "bad rate limit counter %zu", i);
	if (d->n_remote == 0)
		return 0;
	if (d->mail_from == NULL || (d->queue_header == NULL && d->queue_header_len > 0) ||
	    d->queue_header_len > INT64_MAX / 2)
		return err_set(err, STORE_EINVAL, "queue envelope is incomplete");
	for (size_t i = 0; i < d->n_remote; i++) {
		const char *addr = d->remote[i].address;
		const char *at = addr ? strrchr(addr, '@') : NULL;
		if (at == NULL || at[1] == '\0')
			return err_set(err, STORE_EINVAL, "remote recipient %zu has no domain", i);
	}
	return 0;
}

int
store_deliver(struct store *st, const struct store_delivery *d, int64_t *queue_id_r,
              struct err *err)
{
	if (queue_id_r)
		*queue_id_r = 0;
	if (deliver_check(d, err) < 0)
		return -1;
	struct deliver_args a = {.d = d, .now = clock_now()};
	/* Hashing a large body takes a while: do it here, not on the shared writer thread. */
	if (store_blob_sha256(d->body, d->body_len, a.sha, err) < 0)
		return -1;
	a.mailboxes = xcalloc(d->n_local + 1, sizeof *a.mailboxes);
	if (store_write(st, deliver_fn, &a, err) < 0) {
		free(a.mailboxes);
		return -1;
	}
	/* Committed: IDLE sessions on these INBOXes may look now. */
	for (size_t i = 0; i < d->n_local; i++)
		store_mailbox_changed(st, a.mailboxes[i]);
	free(a.mailboxes);
	if (queue_id_r)
		*queue_id_r = a.queue_id;
	log_debug("store - delivered blob=%.12s size=%zu local=%zu remote=%zu queue=%lld", a.sha,
	          d->body_len, d->n_local, d->n_remote, (long long)a.queue_id);
	return 0;
}

/* ---- reading back ---- */

int
store_message_list(struct store *st, const char *account, const char *mailbox,
                   struct store_message **v_r, size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char norm[STORE_ADDR_MAX + 1];
	size_t at;
	if (store_name_address(account, false, norm, &at, err) < 0)
		return -1;
	if (mailbox == NULL)
		return err_set(err, STORE_EINVAL, "mailbox missing");
	/* RFC 3501 5.1: INBOX is case-insensitive, every other name is not. */
	const char *name = strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	if (store_db_read_begin(db, err) < 0)
		return -1;
	int ret = -1;
	struct store_message *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *stmt = NULL;
	int64_t mailbox_id;
	int found = store_db_query_int(db,
	                               "SELECT mb.id FROM mailboxes mb JOIN accounts a"
	                               " ON mb.account_id = a.id WHERE a.address = ?1"
	                               " AND mb.name = ?2",
	                               norm, name, &mailbox_id, err);
	if (found < 0)
		goto out;
	if (!found) {
		err_set(err, STORE_ENOTFOUND, "no mailbox %s of %s", name, norm);
		goto out;
	}
	if (store_db_prepare(db,
	                     "SELECT id, uid, modseq, internal_date, size, blob_sha256, header_text"
	                     " FROM messages WHERE mailbox_id = ?1 ORDER BY uid",
	                     &stmt, err) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_message *m = &v[n++];
		memset(m, 0, sizeof *m);
		m->id = sqlite3_column_int64(stmt, 0);
		m->uid = (uint32_t)sqlite3_column_int64(stmt, 1);
		m->modseq = (uint64_t)sqlite3_column_int64(stmt, 2);
		m->internal_date = sqlite3_column_int64(stmt, 3);
		m->size = (uint64_t)sqlite3_column_int64(stmt, 4);
		const unsigned char *sha = sqlite3_column_text(stmt, 5);
		(void)snprintf(m->blob_sha256, sizeof m->blob_sha256, "%s",
		               sha ? (const char *)sha : "");
		buf_init(&m->header_text, 0);
		const void *h = sqlite3_column_blob(stmt, 6);
		size_t hn = (size_t)sqlite3_column_bytes(stmt, 6);
		if (hn > 0)
			(void)buf_append(&m->header_text, h, hn); /* max 0: cannot overflow */
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(db, err, "message-list");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_db_read_end(db);
	if (ret < 0) {
		store_message_list_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

void
store_message_list_free(struct store_message **vp, size_t n)
{
	struct store_message *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		buf_deinit(&v[i].header_text);
	x_free(vp);
}

int
store_queue_list(struct store *st, struct store_queue_rcpt **v_r, size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT m.id, m.mail_from, r.rcpt, r.notify, r.orcpt, m.ret, m.envid,"
	                     " m.auth_user, r.status, m.requiretls FROM queue_rcpts r"
	                     " JOIN queue_messages m ON r.msg_id = m.id ORDER BY m.id, r.id",
	                     &stmt, err) < 0)
		return -1;
	struct store_queue_rcpt *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_queue_rcpt *q = &v[n++];
		q->msg_id = sqlite3_column_int64(stmt, 0);
		q->mail_from = store_db_strdup(stmt, 1);
		q->rcpt = store_db_strdup(stmt, 2);
		q->notify = store_db_strdup(stmt, 3);
		q->orcpt = store_db_strdup(stmt, 4);
		q->ret = store_db_strdup(stmt, 5);
		q->envid = store_db_strdup(stmt, 6);
		q->auth_user = store_db_strdup(stmt, 7);
		q->status = store_db_strdup(stmt, 8);
		q->requiretls = sqlite3_column_int(stmt, 9) != 0;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		store_queue_list_free(&v, n);
		return store_db_fail(db, err, "queue-list");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

void
store_queue_list_free(struct store_queue_rcpt **vp, size_t n)
{
	struct store_queue_rcpt *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		struct store_queue_rcpt *q = &v[i];
		free(q->mail_from);
		free(q->rcpt);
		free(q->notify);
		free(q->orcpt);
		free(q->ret);
		free(q->envid);
		free(q->auth_user);
		free(q->status);
	}
	x_free(vp);
}
