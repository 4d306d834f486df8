/* IMAP mailboxes of an account (RFC 9051 §6.3): listing with subscriptions, STATUS counts,
 * CREATE (with missing superiors, so there are no \Noselect placeholders), DELETE, RENAME (with
 * inferiors, and the INBOX special case), SUBSCRIBE, the account's QUOTA (RFC 9208), and the
 * per-mailbox change counters IDLE polls. Names are compared byte-wise (BINARY); an inferior of
 * "a" is any name in the range ("a/", "a0"), since '0' follows '/' in ASCII, which lets the
 * UNIQUE (account_id, name) index find them. Every write is one store_write request. */
#include "store_private.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define MBOX_NAME_MAX 1024 /* bytes, as imap/mailstore.h IMAP_MAILBOX_NAME_MAX */

/* RFC 6154 §2 and RFC 8457 (\Flagged is in 6154 too). */
static const char *const special_uses[] = {"\\All",  "\\Archive", "\\Drafts", "\\Flagged",
                                           "\\Junk", "\\Sent",    "\\Trash"};

void
store_mailbox_changed(struct store *st, int64_t mailbox)
{
	if (mailbox <= 0)
		return;
	atomic_fetch_add_explicit(&st->change_seq[(uint64_t)mailbox % STORE_CHANGE_SLOTS], 1,
	                          memory_order_release);
}

uint64_t
store_mailbox_change_seq(struct store *st, int64_t mailbox)
{
	if (mailbox <= 0)
		return 0;
	return atomic_load_explicit(&st->change_seq[(uint64_t)mailbox % STORE_CHANGE_SLOTS],
	                            memory_order_acquire);
}

/* Non-empty, no empty level, bounded. */
static int
mbox_name_check(const char *name, struct err *err)
{
	if (name == NULL || name[0] == '\0')
		return err_set(err, STORE_EINVAL, "empty mailbox name");
	size_t n = strlen(name);
	if (n > MBOX_NAME_MAX)
		return err_set(err, STORE_EINVAL, "mailbox name too long");
	if (name[0] == '/' || name[n - 1] == '/' || strstr(name, "//") != NULL)
		return err_set(err, STORE_EINVAL, "mailbox name has an empty level");
	return 0;
}

int
store_tx_mailbox_find(struct store_tx *tx, int64_t account, const char *name, int64_t *id_r,
                      struct err *err)
{
	*id_r = 0;
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MBOX_BY_NAME, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, account);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(stmt, 0);
	else if (rc != SQLITE_DONE)
		ret = store_db_fail(store_tx_db(tx), err, "mailbox-find");
	store_stmt_release(stmt);
	return ret;
}

/* Runs one prepared-once statement with an account id and up to two text parameters. */
static int
mbox_exec(sqlite3 *db, const char *sql, int64_t account, const char *p2, const char *p3,
          struct err *err)
{
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, sql, &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, account);
	if (p2)
		sqlite3_bind_text(stmt, 2, p2, -1, SQLITE_STATIC);
	if (p3)
		sqlite3_bind_text(stmt, 3, p3, -1, SQLITE_STATIC);
	int rc = store_db_step_done(db, stmt, err, "mailbox");
	sqlite3_finalize(stmt);
	return rc;
}

/* 1 when name or an inferior of it exists, 0 when not, -1 on error. */
static int
mbox_tx_exists_tree(sqlite3 *db, int64_t account, const char *name, bool inferiors_only,
                    struct err *err)
{
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db,
	        "SELECT 1 FROM mailboxes WHERE account_id = ?1 AND ((?3 = 0 AND name = ?2)"
	        " OR (name > ?2 || '/' AND name < ?2 || '0')) LIMIT 1",
	        &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, account);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 3, inferiors_only);
	int rc = sqlite3_step(stmt);
	int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_db_fail(db, err, "exists");
	sqlite3_finalize(stmt);
	return ret;
}

/* Inserts mailbox name (which must not exist) with a fresh UIDVALIDITY; a subscription to the
 * name becomes its subscribed flag. */
static int
mbox_tx_insert(struct store_tx *tx, int64_t account, const char *name, const char *special_use,
               uint32_t uidnext, uint64_t highestmodseq, int64_t *id_r, struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	uint32_t uidvalidity;
	if (store_tx_next_uidvalidity(tx, &uidvalidity, err) < 0)
		return -1;
	if (mbox_exec(db, "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2", account,
	              name, NULL, err) < 0)
		return -1;
	bool subscribed = sqlite3_changes(db) > 0;
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db,
	        "INSERT INTO mailboxes (account_id, name, special_use, subscribed,"
	        " uidvalidity, uidnext, highestmodseq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	        &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, account);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, special_use, -1, SQLITE_STATIC); /* NULL binds NULL */
	sqlite3_bind_int(stmt, 4, subscribed);
	sqlite3_bind_int64(stmt, 5, uidvalidity);
	sqlite3_bind_int64(stmt, 6, uidnext);
	sqlite3_bind_int64(stmt, 7, (int64_t)highestmodseq);
	int rc = store_db_step_done(db, stmt, err, "mailbox-create");
	sqlite3_finalize(stmt);
	if (rc == 0 && id_r)
		*id_r = sqlite3_last_insert_rowid(db);
	return rc;
}

/* Creates every missing superior of name ("a" and "a/b" for "a/b/c"). */
static int
mbox_tx_superiors(struct store_tx *tx, int64_t account, const char *name, struct err *err)
{
	char *copy = xstrdup(name);
	int ret = 0;
	for (char *p = strchr(copy, '/'); p && ret == 0; p = strchr(p + 1, '/')) {
		*p = '\0';
		int64_t id;
		ret = store_tx_mailbox_find(tx, account, copy, &id, err);
		if (ret == 0 && id == 0)
			ret = mbox_tx_insert(tx, account, copy, NULL, 1, 1, NULL, err);
		*p = '/';
	}
	free(copy);
	return ret;
}

struct mbox_args {
	int64_t account;
	const char *name, *new_name, *special_use;
	bool on;
	int64_t touched[2]; /* out: mailboxes whose change counter must move */
};

static int
mbox_create_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct mbox_args *a = arg;
	int64_t id;
	if (store_tx_mailbox_find(tx, a->account, a->name, &id, err) < 0)
		return -1;
	if (id != 0)
		return err_set(err, STORE_EEXIST, "mailbox %s exists", a->name);
	if (mbox_tx_superiors(tx, a->account, a->name, err) < 0)
		return -1;
	return mbox_tx_insert(tx, a->account, a->name, a->special_use, 1, 1, &a->touched[0], err);
}

int
store_imap_create(struct store *st, int64_t account, const char *name, const char *special_use,
                  struct err *err)
{
	if (mbox_name_check(name, err) < 0)
		return -1;
	if (special_use) {
		bool ok = false;
		for (size_t i = 0; i < sizeof special_uses / sizeof special_uses[0]; i++)
			ok |= strcmp(special_use, special_uses[i]) == 0;
		if (!ok)
			return err_set(err, STORE_EINVAL, "unknown special-use %s", special_use);
	}
	struct mbox_args a = {.account = account, .name = name, .special_use = special_use};
	if (store_write(st, mbox_create_fn, &a, err) < 0)
		return -1;
	log_debug("store - mailbox-create account=%lld id=%lld", (long long)account,
	          (long long)a.touched[0]);
	return 0;
}

static int
mbox_delete_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct mbox_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t id;
	if (store_tx_mailbox_find(tx, a->account, a->name, &id, err) < 0)
		return -1;
	if (id == 0)
		return err_set(err, STORE_ENOTFOUND, "no mailbox %s", a->name);
	int kids = mbox_tx_exists_tree(db, a->account, a->name, true, err);
	if (kids < 0)
		return -1;
	if (kids)
		return err_set(err, STORE_EHASCHILDREN, "mailbox %s has inferiors", a->name);
	int64_t subscribed = 0;
	char idbuf[32];
	(void)snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
	if (store_db_query_int(db, "SELECT subscribed FROM mailboxes WHERE id = ?1", idbuf, NULL,
	                       &subscribed, err) < 0)
		return -1;
	/* Messages first, while the mailbox row still names the account: the delete trigger
	 * gives their bytes back to it. */
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "DELETE FROM messages WHERE mailbox_id = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	int rc = store_db_step_done(db, stmt, err, "mailbox-delete-messages");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	if (store_db_prepare(db, "DELETE FROM mailboxes WHERE id = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	rc = store_db_step_done(db, stmt, err, "mailbox-delete");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	a->touched[0] = id;
	if (subscribed &&
	    mbox_exec(db, "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
	              a->account, a->name, NULL, err) < 0)
		return -1;
	return 0;
}

int
store_imap_delete(struct store *st, int64_t account, const char *name, struct err *err)
{
	if (mbox_name_check(name, err) < 0)
		return -1;
	if (strcmp(name, "INBOX") == 0)
		return err_set(err, STORE_EINVAL, "INBOX cannot be deleted");
	struct mbox_args a = {.account = account, .name = name};
	if (store_write(st, mbox_delete_fn, &a, err) < 0)
		return -1;
	store_mailbox_changed(st, a.touched[0]);
	log_info("store - mailbox-delete account=%lld id=%lld", (long long)account,
	         (long long)a.touched[0]);
	return 0;
}

/* RFC 9051 §6.3.6: INBOX's messages go to a new mailbox new_name with their UIDs (the new
 * mailbox has its own UIDVALIDITY), INBOX stays with its UIDVALIDITY and UIDNEXT, empty, and
 * records the moved UIDs as expunged. */
static int
mbox_rename_inbox(struct store_tx *tx, struct mbox_args *a, int64_t inbox, struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MBOX_BY_ID, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, inbox);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_stmt_release(stmt);
		return store_db_fail(db, err, "rename-inbox");
	}
	uint32_t uidnext = (uint32_t)sqlite3_column_int64(stmt, 2);
	uint64_t hms = (uint64_t)sqlite3_column_int64(stmt, 3);
	store_stmt_release(stmt);
	int64_t id;
	if (mbox_tx_insert(tx, a->account, a->new_name, NULL, uidnext, hms, &id, err) < 0)
		return -1;
	uint64_t xmodseq = hms + 1;
	if (store_db_prepare(db,
	                     "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
	                     " SELECT ?1, uid, ?2 FROM messages WHERE mailbox_id = ?1",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, inbox);
	sqlite3_bind_int64(stmt, 2, (int64_t)xmodseq);
	int rc = store_db_step_done(db, stmt, err, "rename-inbox-expunged");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	if (store_db_prepare(db, "UPDATE messages SET mailbox_id = ?2 WHERE mailbox_id = ?1", &stmt,
	                     err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, inbox);
	sqlite3_bind_int64(stmt, 2, id);
	rc = store_db_step_done(db, stmt, err, "rename-inbox-move");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	stmt = store_tx_stmt(tx, STMT_IMAP_MBOX_UPDATE, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, inbox);
	sqlite3_bind_int64(stmt, 2, uidnext);
	sqlite3_bind_int64(stmt, 3, (int64_t)xmodseq);
	if (store_stmt_done(db, stmt, err, "rename-inbox-modseq") < 0)
		return -1;
	a->touched[0] = inbox;
	a->touched[1] = id;
	return 0;
}

static int
mbox_rename_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct mbox_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t id;
	if (store_tx_mailbox_find(tx, a->account, a->name, &id, err) < 0)
		return -1;
	if (id == 0)
		return err_set(err, STORE_ENOTFOUND, "no mailbox %s", a->name);
	int clash = mbox_tx_exists_tree(db, a->account, a->new_name, false, err);
	if (clash < 0)
		return -1;
	if (clash)
		return err_set(err, STORE_EEXIST, "mailbox %s exists", a->new_name);
	if (strcmp(a->name, "INBOX") == 0) {
		if (mbox_rename_inbox(tx, a, id, err) < 0)
			return -1;
	} else {
		sqlite3_stmt *stmt;
		/* Byte-wise: the new prefix and the rest of the old name after the old prefix. */
		if (store_db_prepare(db,
		                     "UPDATE mailboxes SET name = ?3 ||"
		                     " CAST(substr(CAST(name AS BLOB), ?4) AS TEXT)"
		                     " WHERE account_id = ?1 AND (name = ?2"
		                     " OR (name > ?2 || '/' AND name < ?2 || '0'))",
		                     &stmt, err) < 0)
			return -1;
		sqlite3_bind_int64(stmt, 1, a->account);
		sqlite3_bind_text(stmt, 2, a->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, a->new_name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, (int64_t)strlen(a->name) + 1);
		int rc = store_db_step_done(db, stmt, err, "mailbox-rename");
		sqlite3_finalize(stmt);
		if (rc < 0)
			return -1;
		/* A subscription to a name that now is a mailbox becomes its flag (a name lives in
		 * one of the two places). */
		if (mbox_exec(
		        db,
		        "UPDATE mailboxes SET subscribed = 1 WHERE account_id = ?1 AND name IN"
		        " (SELECT name FROM subscriptions WHERE account_id = ?1)",
		        a->account, NULL, NULL, err) < 0 ||
		    mbox_exec(db,
		              "DELETE FROM subscriptions WHERE account_id = ?1 AND name IN"
		              " (SELECT name FROM mailboxes WHERE account_id = ?1)",
		              a->account, NULL, NULL, err) < 0)
			return -1;
		a->touched[0] = id;
	}
	return mbox_tx_superiors(tx, a->account, a->new_name, err);
}

int
store_imap_rename(struct store *st, int64_t account, const char *old_name, const char *new_name,
                  struct err *err)
{
	if (mbox_name_check(old_name, err) < 0 || mbox_name_check(new_name, err) < 0)
		return -1;
	if (strcmp(new_name, "INBOX") == 0)
		return err_set(err, STORE_EEXIST, "INBOX exists");
	size_t on = strlen(old_name);
	if (strcmp(old_name, "INBOX") != 0 && strncmp(new_name, old_name, on) == 0 &&
	    new_name[on] == '/')
		return err_set(err, STORE_EINVAL, "cannot rename %s into itself", old_name);
	struct mbox_args a = {.account = account, .name = old_name, .new_name = new_name};
	if (store_write(st, mbox_rename_fn, &a, err) < 0)
		return -1;
	/* Inferiors renamed along keep their ids; sessions on them learn of it at their next
	 * LIST. The renamed mailbox itself (and INBOX and its heir) are signalled. */
	store_mailbox_changed(st, a.touched[0]);
	store_mailbox_changed(st, a.touched[1]);
	log_info("store - mailbox-rename account=%lld id=%lld inbox=%s", (long long)account,
	         (long long)(a.touched[1] ? a.touched[1] : a.touched[0]),
	         a.touched[1] ? "yes" : "no");
	return 0;
}

static int
mbox_subscribe_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct mbox_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db, "UPDATE mailboxes SET subscribed = ?3 WHERE account_id = ?1 AND name = ?2",
	        &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->account);
	sqlite3_bind_text(stmt, 2, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 3, a->on);
	int rc = store_db_step_done(db, stmt, err, "subscribe");
	sqlite3_finalize(stmt);
	if (rc < 0 || sqlite3_changes(db) > 0)
		return rc;
	return mbox_exec(db,
	                 a->on ? "INSERT OR IGNORE INTO subscriptions (account_id, name)"
	                         " VALUES (?1, ?2)"
	                       : "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2",
	                 a->account, a->name, NULL, err);
}

int
store_imap_subscribe(struct store *st, int64_t account, const char *name, bool on, struct err *err)
{
	if (mbox_name_check(name, err) < 0)
		return -1;
	struct mbox_args a = {.account = account, .name = name, .on = on};
	return store_write(st, mbox_subscribe_fn, &a, err);
}

/* ---- reads ---- */

int
store_imap_mailbox_list(struct store *st, int64_t account, struct store_imap_mailbox **v_r,
                        size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT * FROM (SELECT name, special_use, subscribed, 1 FROM mailboxes"
	                     " WHERE account_id = ?1 UNION ALL"
	                     " SELECT name, NULL, 1, 0 FROM subscriptions WHERE account_id = ?1)"
	                     " ORDER BY name <> 'INBOX', name",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, account);
	struct store_imap_mailbox *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_imap_mailbox *m = &v[n++];
		m->name = store_db_strdup(stmt, 0);
		m->special_use = store_db_strdup(stmt, 1);
		m->subscribed = sqlite3_column_int(stmt, 2) != 0;
		m->exists = sqlite3_column_int(stmt, 3) != 0;
		if (m->name == NULL)
			m->name = xstrdup("");
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		store_imap_mailbox_list_free(&v, n);
		return store_db_fail(db, err, "imap-list");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

void
store_imap_mailbox_list_free(struct store_imap_mailbox **vp, size_t n)
{
	struct store_imap_mailbox *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].special_use);
	}
	x_free(vp);
}

static uint32_t
clamp32(int64_t v)
{
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int
store_imap_status(struct store *st, int64_t account, const char *name,
                  struct store_imap_status *s_r, struct err *err)
{
	memset(s_r, 0, sizeof *s_r);
	if (name == NULL)
		return err_set(err, STORE_EINVAL, "mailbox missing");
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL || store_reader_begin(r, err) < 0)
		return -1;
	int ret = -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_IMAP_MBOX_BY_NAME, err);
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, account);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		s_r->id = sqlite3_column_int64(stmt, 0);
		s_r->uidvalidity = clamp32(sqlite3_column_int64(stmt, 1));
		s_r->uidnext = clamp32(sqlite3_column_int64(stmt, 2));
		s_r->highestmodseq = (uint64_t)sqlite3_column_int64(stmt, 3);
		s_r->special_use = store_db_strdup(stmt, 4);
	}
	store_stmt_release(stmt);
	if (rc == SQLITE_DONE) {
		err_set(err, STORE_ENOTFOUND, "no mailbox %s", name);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		store_db_fail(r->db, err, "imap-status");
		goto out;
	}
	stmt = store_reader_stmt(r, STMT_IMAP_STATUS_COUNTS, err);
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, s_r->id);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_db_fail(r->db, err, "imap-status-counts");
		store_stmt_release(stmt);
		goto out;
	}
	s_r->messages = clamp32(sqlite3_column_int64(stmt, 0));
	s_r->unseen = clamp32(sqlite3_column_int64(stmt, 1));
	s_r->deleted = clamp32(sqlite3_column_int64(stmt, 2));
	s_r->size = (uint64_t)sqlite3_column_int64(stmt, 3);
	store_stmt_release(stmt);
	ret = 0;
out:
	store_reader_end(r);
	if (ret < 0)
		store_imap_status_deinit(s_r);
	return ret;
}

void
store_imap_status_deinit(struct store_imap_status *s)
{
	if (s)
		x_free(&s->special_use);
}

int
store_imap_quota(struct store *st, int64_t account, uint64_t *used_r, uint64_t *limit_r,
                 uint64_t *messages_r, struct err *err)
{
	*used_r = *limit_r = *messages_r = 0;
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_IMAP_QUOTA, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, account);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		*used_r = (uint64_t)sqlite3_column_int64(stmt, 0);
		*limit_r = (uint64_t)sqlite3_column_int64(stmt, 1);
		*messages_r = (uint64_t)sqlite3_column_int64(stmt, 2);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, STORE_ENOTFOUND, "no account %lld", (long long)account);
	} else {
		ret = store_db_fail(r->db, err, "imap-quota");
	}
	store_stmt_release(stmt);
	return ret;
}
