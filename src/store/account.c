/* Accounts: a mailbox owner with a password hash (argon2id, computed by auth/), a quota and the
 * bytes it uses (kept by the messages triggers, see migrate.c). Creating an account creates its
 * standard mailboxes in the same request, so an account never exists without an INBOX. An
 * address is either an account or an alias, never both: both add paths check the other table
 * inside the writer's transaction, which makes the check race-free. */
#include "store_private.h"

#include <stdint.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

/* The mailboxes of a new account (RFC 6154 special-use attributes). */
static const struct {
	const char *name;
	const char *special_use;
} std_mailboxes[] = {
    {"INBOX", NULL},      {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},
    {"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

enum account_field { ACCOUNT_PASSWORD, ACCOUNT_DISABLED, ACCOUNT_QUOTA, ACCOUNT_DOMAIN_ADMIN };

/* One UPDATE per settable field; ?1 is the new value, ?2 the address. */
static const char *const account_set_sql[] = {
    [ACCOUNT_PASSWORD] = "UPDATE accounts SET password_hash = ?1 WHERE address = ?2",
    [ACCOUNT_DISABLED] = "UPDATE accounts SET disabled = ?1 WHERE address = ?2",
    [ACCOUNT_QUOTA] = "UPDATE accounts SET quota = ?1 WHERE address = ?2",
    [ACCOUNT_DOMAIN_ADMIN] = "UPDATE accounts SET domain_admin = ?1 WHERE address = ?2",
};

static const char *const account_field_names[] = {
    [ACCOUNT_PASSWORD] = "password",
    [ACCOUNT_DISABLED] = "disabled",
    [ACCOUNT_QUOTA] = "quota",
    [ACCOUNT_DOMAIN_ADMIN] = "domain_admin",
};

struct account_args {
	const char *address; /* normalised */
	const char *domain;  /* points into address */
	const char *password_hash;
	int64_t quota;
	enum account_field field;
	int64_t ival;
};

/* Creates the standard mailboxes of account id, each with its own UIDVALIDITY. */
static int
account_add_mailboxes(struct store_tx *tx, int64_t id, struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db,
	        "INSERT INTO mailboxes (account_id, name, special_use, subscribed, uidvalidity,"
	        " uidnext, highestmodseq) VALUES (?1, ?2, ?3, 1, ?4, 1, 1)",
	        &stmt, err) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < sizeof std_mailboxes / sizeof std_mailboxes[0] && ret == 0; i++) {
		uint32_t uidvalidity;
		if (store_tx_next_uidvalidity(tx, &uidvalidity, err) < 0) {
			ret = -1;
			break;
		}
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_text(stmt, 2, std_mailboxes[i].name, -1, SQLITE_STATIC);
		if (std_mailboxes[i].special_use)
			sqlite3_bind_text(stmt, 3, std_mailboxes[i].special_use, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(stmt, 3);
		sqlite3_bind_int64(stmt, 4, uidvalidity);
		ret = store_db_step_done(db, stmt, err, "mailbox-add");
	}
	sqlite3_finalize(stmt);
	return ret;
}

static int
account_add_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct account_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t domain_id, other;
	int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", a->domain,
	                               NULL, &domain_id, err);
	if (found < 0)
		return -1;
	if (!found)
		return err_set(err, STORE_EINVAL, "domain %s is not served here", a->domain);
	found = store_db_query_int(db,
	                           "SELECT 1 FROM accounts WHERE address = ?1 UNION ALL"
	                           " SELECT 2 FROM aliases WHERE address = ?1",
	                           a->address, NULL, &other, err);
	if (found < 0)
		return -1;
	if (found)
		return err_set(err, STORE_EEXIST, "%s %s exists", other == 1 ? "account" : "alias",
		               a->address);
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db,
	        "INSERT INTO accounts (address, domain_id, password_hash, quota, created)"
	        " VALUES (?1, ?2, ?3, ?4, ?5)",
	        &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, domain_id);
	sqlite3_bind_text(stmt, 3, a->password_hash ? a->password_hash : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, a->quota);
	sqlite3_bind_int64(stmt, 5, clock_now());
	int rc = store_db_step_done(db, stmt, err, "account-add");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	return account_add_mailboxes(tx, sqlite3_last_insert_rowid(db), err);
}

static int
account_check_quota(uint64_t quota, struct err *err)
{
	if (quota > INT64_MAX)
		return err_set(err, STORE_EINVAL, "quota too large");
	return 0;
}

int
store_account_add(struct store *st, const char *address, const char *password_hash, uint64_t quota,
                  struct err *err)
{
	char norm[STORE_ADDR_MAX + 1];
	size_t at;
	if (store_name_address(address, false, norm, &at, err) < 0 ||
	    account_check_quota(quota, err) < 0)
		return -1;
	struct account_args a = {.address = norm,
	                         .domain = norm + at + 1,
	                         .password_hash = password_hash,
	                         .quota = (int64_t)quota};
	if (store_write(st, account_add_fn, &a, err) < 0)
		return -1;
	log_info("store - account-add address=%s quota=%llu", norm, (unsigned long long)quota);
	return 0;
}

#define ACCOUNT_COLS                                                                               \
	"SELECT a.id, a.address, d.name, a.password_hash, a.quota, a.used, a.disabled, a.created," \
	" a.domain_admin FROM accounts a JOIN domains d ON a.domain_id = d.id"

static void
account_from_row(sqlite3_stmt *stmt, struct store_account *a)
{
	a->id = sqlite3_column_int64(stmt, 0);
	a->address = store_db_strdup(stmt, 1);
	a->domain = store_db_strdup(stmt, 2);
	a->password_hash = store_db_strdup(stmt, 3);
	a->quota = (uint64_t)sqlite3_column_int64(stmt, 4);
	a->used = (uint64_t)sqlite3_column_int64(stmt, 5);
	a->disabled = sqlite3_column_int(stmt, 6) != 0;
	a->created = sqlite3_column_int64(stmt, 7);
	a->domain_admin = sqlite3_column_int(stmt, 8) != 0;
}

int
store_account_get(struct store *st, const char *address, struct store_account *a_r, struct err *err)
{
	memset(a_r, 0, sizeof *a_r);
	char norm[STORE_ADDR_MAX + 1];
	size_t at;
	if (store_name_address(address, false, norm, &at, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, ACCOUNT_COLS " WHERE a.address = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	int ret = 0;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		account_from_row(stmt, a_r);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, STORE_ENOTFOUND, "no account %s", norm);
	else
		ret = store_db_fail(db, err, "account-get");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_account_list(struct store *st, const char *domain, struct store_account **v_r, size_t *n_r,
                   struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain && store_name_domain(domain, norm, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	if (store_db_read_begin(db, err) < 0)
		return -1;
	int64_t id;
	int ret = -1;
	struct store_account *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *stmt = NULL;
	if (domain) {
		int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", norm,
		                               NULL, &id, err);
		if (found < 0)
			goto out;
		if (!found) {
			err_set(err, STORE_ENOTFOUND, "no domain %s", norm);
			goto out;
		}
	}
	if (store_db_prepare(db,
	                     domain ? ACCOUNT_COLS " WHERE d.name = ?1 ORDER BY a.address"
	                            : ACCOUNT_COLS " ORDER BY a.address",
	                     &stmt, err) < 0)
		goto out;
	if (domain)
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		account_from_row(stmt, &v[n++]);
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(db, err, "account-list");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_db_read_end(db);
	if (ret < 0) {
		store_account_list_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

static int
account_set_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct account_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, account_set_sql[a->field], &stmt, err) < 0)
		return -1;
	if (a->field == ACCOUNT_PASSWORD)
		sqlite3_bind_text(stmt, 1, a->password_hash ? a->password_hash : "", -1,
		                  SQLITE_STATIC);
	else
		sqlite3_bind_int64(stmt, 1, a->ival);
	sqlite3_bind_text(stmt, 2, a->address, -1, SQLITE_STATIC);
	int rc = store_db_step_done(db, stmt, err, "account-set");
	sqlite3_finalize(stmt);
	if (rc == 0 && sqlite3_changes(db) == 0)
		return err_set(err, STORE_ENOTFOUND, "no account %s", a->address);
	return rc;
}

static int
account_set(struct store *st, const char *address, struct account_args *a, struct err *err)
{
	char norm[STORE_ADDR_MAX + 1];
	size_t at;
	if (store_name_address(address, false, norm, &at, err) < 0)
		return -1;
	a->address = norm;
	if (store_write(st, account_set_fn, a, err) < 0)
		return -1;
	/* Never log the hash itself (STYLE.md B.7). */
	log_info("store - account-set address=%s field=%s", norm, account_field_names[a->field]);
	return 0;
}

int
store_account_set_password(struct store *st, const char *address, const char *password_hash,
                           struct err *err)
{
	struct account_args a = {.field = ACCOUNT_PASSWORD, .password_hash = password_hash};
	return account_set(st, address, &a, err);
}

int
store_account_set_disabled(struct store *st, const char *address, bool disabled, struct err *err)
{
	struct account_args a = {.field = ACCOUNT_DISABLED, .ival = disabled ? 1 : 0};
	return account_set(st, address, &a, err);
}

int
store_account_set_quota(struct store *st, const char *address, uint64_t quota, struct err *err)
{
	if (account_check_quota(quota, err) < 0)
		return -1;
	struct account_args a = {.field = ACCOUNT_QUOTA, .ival = (int64_t)quota};
	return account_set(st, address, &a, err);
}

int
store_account_set_domain_admin(struct store *st, const char *address, bool admin, struct err *err)
{
	struct account_args a = {.field = ACCOUNT_DOMAIN_ADMIN, .ival = admin ? 1 : 0};
	return account_set(st, address, &a, err);
}

static int
account_remove_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct account_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	/* Cascades to mailboxes and messages; the messages trigger drops unreferenced blobs. */
	if (store_db_prepare(db, "DELETE FROM accounts WHERE address = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->address, -1, SQLITE_STATIC);
	int rc = store_db_step_done(db, stmt, err, "account-remove");
	sqlite3_finalize(stmt);
	if (rc == 0 && sqlite3_changes(db) == 0)
		return err_set(err, STORE_ENOTFOUND, "no account %s", a->address);
	return rc;
}

int
store_account_remove(struct store *st, const char *address, struct err *err)
{
	char norm[STORE_ADDR_MAX + 1];
	size_t at;
	if (store_name_address(address, false, norm, &at, err) < 0)
		return -1;
	struct account_args a = {.address = norm};
	if (store_write(st, account_remove_fn, &a, err) < 0)
		return -1;
	log_info("store - account-remove address=%s", norm);
	return 0;
}

void
store_account_deinit(struct store_account *a)
{
	if (a == NULL)
		return;
	x_free(&a->address);
	x_free(&a->domain);
	x_free(&a->password_hash);
}

void
store_account_list_free(struct store_account **vp, size_t n)
{
	struct store_account *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_account_deinit(&v[i]);
	x_free(vp);
}
