/* Mailboxes of an account (RFC 3501 5.1). Only listing lives here for now; the standard set is
 * created with the account (account.c), and IMAP CREATE/RENAME/DELETE come with imap/. */
#include "store_private.h"

#include <string.h>

#include "util/xalloc.h"

int
store_mailbox_list(struct store *st, const char *address, struct store_mailbox **v_r, size_t *n_r,
                   struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char norm[STORE_ADDR_MAX + 1];
	size_t at;
	if (store_name_address(address, false, norm, &at, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	if (store_db_read_begin(db, err) < 0)
		return -1;
	int ret = -1;
	struct store_mailbox *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *stmt = NULL;
	int64_t account_id;
	int found = store_db_query_int(db, "SELECT id FROM accounts WHERE address = ?1", norm, NULL,
	                               &account_id, err);
	if (found < 0)
		goto out;
	if (!found) {
		err_set(err, STORE_ENOTFOUND, "no account %s", norm);
		goto out;
	}
	if (store_db_prepare(
	        db,
	        "SELECT m.id, m.name, m.special_use, m.subscribed, m.uidvalidity, m.uidnext,"
	        " m.highestmodseq, (SELECT count(*) FROM messages WHERE mailbox_id = m.id)"
	        " FROM mailboxes m WHERE m.account_id = ?1"
	        " ORDER BY m.name <> 'INBOX', m.name",
	        &stmt, err) < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, account_id);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_mailbox *m = &v[n++];
		m->id = sqlite3_column_int64(stmt, 0);
		m->name = store_db_strdup(stmt, 1);
		m->special_use = store_db_strdup(stmt, 2);
		m->subscribed = sqlite3_column_int(stmt, 3) != 0;
		m->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 4);
		m->uidnext = (uint32_t)sqlite3_column_int64(stmt, 5);
		m->highestmodseq = (uint64_t)sqlite3_column_int64(stmt, 6);
		m->n_messages = (uint64_t)sqlite3_column_int64(stmt, 7);
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(db, err, "mailbox-list");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_db_read_end(db);
	if (ret < 0) {
		store_mailbox_list_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

void
store_mailbox_list_free(struct store_mailbox **vp, size_t n)
{
	struct store_mailbox *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].special_use);
	}
	x_free(vp);
}
