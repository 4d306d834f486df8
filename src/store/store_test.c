/* Unit tests of store/: migrations (and the upgrade from version 1), CRUD of domains, accounts,
 * aliases, mailboxes and blobs with every error code, the savepoint isolation of store_write, the
 * blob/quota triggers, backup and integrity check. Concurrency (group commit, readers during
 * writes, kill -9) is in writer_test.c; recipients and delivery are in deliver_test.c. Each test
 * uses a fresh database in a temporary directory. White-box where it helps: the SQL is checked
 * through a separate raw SQLite connection. */
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_private.h"
#include "test.h"
#include "test_tmp.h"
#include "util/log.h"

static char tmpdir[64];
static char dbpath[128];

static void
tmp_setup(void)
{
	test_tmpdir(tmpdir, sizeof tmpdir, "store");
	(void)snprintf(dbpath, sizeof dbpath, "%s/lightr.db", tmpdir);
}

static void
tmp_cleanup(void)
{
	test_tmpdir_remove(tmpdir);
}

/* A fresh store in a fresh directory. */
static struct store *
open_fresh(void)
{
	tmp_setup();
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		exit(1);
	}
	return st;
}

/* First column of the first row of sql on a separate raw connection; -1 on error. */
static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	int64_t v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *stmt;
		if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK) {
			if (sqlite3_step(stmt) == SQLITE_ROW)
				v = sqlite3_column_int64(stmt, 0);
			sqlite3_finalize(stmt);
		}
	}
	sqlite3_close(db);
	return v;
}

/* The read/write format version bytes of the database header (1: rollback journal, 2: WAL). */
static int
file_format(const char *path)
{
	unsigned char h[20];
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	size_t n = fread(h, 1, sizeof h, f);
	fclose(f);
	return n == sizeof h && h[18] == h[19] ? h[18] : -1;
}

static void
test_migrations(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_schema_version(st), store_migrate_latest());
	CHECK(store_schema_version(st) >= 1);
	CHECK_INT(store_domain_add(st, "keep.example", &err), 0);
	store_close(&st);
	CHECK(st == NULL);
	CHECK_INT(sql_int(dbpath, "PRAGMA user_version"), store_migrate_latest());
	CHECK_INT(sql_int(dbpath, "SELECT count(*) FROM schema_migrations"),
	          store_migrate_latest());
	CHECK_INT(file_format(dbpath), 2); /* header bytes 18-19 are 2 in WAL mode */
	int64_t applied = sql_int(dbpath, "SELECT sum(applied) FROM schema_migrations");

	/* Re-open: nothing applied again, data kept. */
	CHECK_INT(store_open(dbpath, &st, &err), 0);
	CHECK_INT(store_schema_version(st), store_migrate_latest());
	struct store_domain d;
	CHECK_INT(store_domain_get(st, "keep.example", &d, &err), 0);
	CHECK_STR(d.name, "keep.example");
	store_domain_deinit(&d);
	store_close(&st);
	CHECK_INT(sql_int(dbpath, "SELECT count(*) FROM schema_migrations"),
	          store_migrate_latest());
	CHECK_INT(sql_int(dbpath, "SELECT sum(applied) FROM schema_migrations"), applied);

	/* A database from a newer program is refused. */
	sqlite3 *db;
	CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 9999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	CHECK_INT(store_open(dbpath, &st, &err), -1);
	CHECK_INT(err.code, STORE_EINTERNAL);
	CHECK(st == NULL);
	store_close(&st); /* accepts NULL */
	tmp_cleanup();

	/* A file that is not a database fails with EINTERNAL and a message. */
	CHECK_INT(store_open("/nonexistent-dir/x/lightr.db", &st, &err), -1);
	CHECK_INT(err.code, STORE_EINTERNAL);
	CHECK(err.msg[0] != '\0');
}

/* A database left at version 1 by the previous release is upgraded in place: accounts keep their
 * rows and get domain_admin = 0, and the queue tables appear. */
static void
test_migration_upgrade(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "h", 7, &err), 0);
	store_close(&st);
	sqlite3 *db;
	CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db,
	                       "DROP TABLE limit_domain_overrides;"
	                       "DROP TABLE limit_account_overrides; DROP TABLE limit_usage;"
	                       "DROP TABLE secrets; DROP TABLE track_links;"
	                       "DROP TABLE bounce_counts; DROP TABLE suppressions;"
	                       "DROP TABLE webhook_attempts; DROP TABLE webhook_deliveries;"
	                       "DROP TABLE webhooks;"
	                       "ALTER TABLE domains DROP COLUMN track_opens;"
	                       "ALTER TABLE domains DROP COLUMN track_clicks;"
	                       "DROP TABLE events; DROP TABLE api_idempotency;"
	                       "DROP TABLE api_message_rcpts; DROP TABLE api_messages;"
	                       "DROP TABLE templates; DROP TABLE api_keys;"
	                       "DROP TABLE dkim_keys; DROP TABLE subscriptions; DROP TABLE "
	                       "expunged; DROP INDEX messages_view;"
	                       "ALTER TABLE messages DROP COLUMN body;"
	                       "DROP TABLE queue_rcpts; DROP TABLE queue_messages;"
	                       "ALTER TABLE accounts DROP COLUMN domain_admin;"
	                       "DELETE FROM schema_migrations WHERE version >= 2;"
	                       "PRAGMA user_version = 1;",
	                       NULL, NULL, NULL),
	          SQLITE_OK);
	sqlite3_close(db);
	CHECK_INT(sql_int(dbpath, "PRAGMA user_version"), 1);

	CHECK_INT(store_open(dbpath, &st, &err), 0);
	if (st == NULL)
		return;
	CHECK_INT(store_schema_version(st), store_migrate_latest());
	struct store_account a;
	CHECK_INT(store_account_get(st, "bob@example.com", &a, &err), 0);
	CHECK_INT(a.quota, 7);
	CHECK(!a.domain_admin);
	store_account_deinit(&a);
	CHECK_INT(store_account_set_domain_admin(st, "bob@example.com", true, &err), 0);
	CHECK_INT(store_account_get(st, "bob@example.com", &a, &err), 0);
	CHECK(a.domain_admin);
	store_account_deinit(&a);
	struct store_queue_rcpt *q;
	size_t n;
	CHECK_INT(store_queue_list(st, &q, &n, &err), 0);
	CHECK_INT(n, 0);
	store_queue_list_free(&q, n);
	CHECK_INT(store_integrity_check(st, &err), 0);
	store_close(&st);
	CHECK_INT(sql_int(dbpath, "SELECT count(*) FROM schema_migrations"),
	          store_migrate_latest());
	tmp_cleanup();
}

static void
test_domains(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "Example.COM", &err), 0);
	CHECK_INT(store_domain_add(st, "a.example", &err), 0);
	CHECK_INT(store_domain_add(st, "example.com", &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	static const char *const bad[] = {"",
	                                  "a..b",
	                                  ".a",
	                                  "a.",
	                                  "-a.example",
	                                  "a-.example",
	                                  "a b.example",
	                                  "a@b",
	                                  "ex\xc3\xa4mple.com"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err.code = 0;
		CHECK_INT(store_domain_add(st, bad[i], &err), -1);
		CHECK_INT(err.code, STORE_EINVAL);
	}
	CHECK_INT(store_domain_add(st, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);

	struct store_domain d;
	CHECK_INT(store_domain_get(st, "EXAMPLE.com", &d, &err), 0);
	CHECK_STR(d.name, "example.com");
	CHECK(d.id > 0);
	CHECK(d.created > 0);
	CHECK_INT(d.n_accounts, 0);
	store_domain_deinit(&d);
	CHECK_INT(store_domain_get(st, "nope.example", &d, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	CHECK_INT(store_account_add(st, "u1@example.com", "h", 0, &err), 0);
	const char *t[] = {"x@remote.example"};
	CHECK_INT(store_alias_add(st, "al@example.com", t, 1, &err), 0);
	struct store_domain *v;
	size_t n;
	CHECK_INT(store_domain_list(st, &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].name, "a.example");
		CHECK_STR(v[1].name, "example.com");
		CHECK_INT(v[1].n_accounts, 1);
		CHECK_INT(v[1].n_aliases, 1);
	}
	store_domain_list_free(&v, n);
	CHECK(v == NULL);

	CHECK_INT(store_domain_remove(st, "nope.example", false, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_domain_remove(st, "example.com", false, &err), -1);
	CHECK_INT(err.code, STORE_EBUSY);
	CHECK_INT(store_domain_remove(st, "a.example", false, &err), 0);
	CHECK_INT(store_domain_remove(st, "Example.com", true, &err), 0);
	struct store_account a;
	CHECK_INT(store_account_get(st, "u1@example.com", &a, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_domain_list(st, &v, &n, &err), 0);
	CHECK_INT(n, 0);
	store_domain_list_free(&v, n);
	store_close(&st);
	CHECK_INT(sql_int(dbpath, "SELECT count(*) FROM mailboxes"), 0);
	CHECK_INT(sql_int(dbpath, "SELECT count(*) FROM alias_targets"), 0);
	tmp_cleanup();
}

static const struct {
	const char *name, *special_use;
} want_mailboxes[] = {
    {"INBOX", NULL},    {"Archive", "\\Archive"}, {"Drafts", "\\Drafts"},
    {"Junk", "\\Junk"}, {"Sent", "\\Sent"},       {"Trash", "\\Trash"},
};

static void
test_accounts(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_account_add(st, "bob@example.com", "h", 0, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_domain_add(st, "other.example", &err), 0);
	CHECK_INT(store_account_add(st, "Bob@EXAMPLE.com", "$argon2id$x", 1000, &err), 0);
	CHECK_INT(store_account_add(st, "alice@example.com", "$argon2id$y", 0, &err), 0);
	CHECK_INT(store_account_add(st, "carol@other.example", "$argon2id$z", 0, &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "h", 0, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	const char *t[] = {"bob@example.com"};
	CHECK_INT(store_alias_add(st, "info@example.com", t, 1, &err), 0);
	CHECK_INT(store_account_add(st, "INFO@example.com", "h", 0, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	static const char *const bad[] = {"bob",
	                                  "@example.com",
	                                  "bob@",
	                                  "a b@example.com",
	                                  ".bob@example.com",
	                                  "bob.@example.com",
	                                  "b..ob@example.com",
	                                  "bob@ex..com",
	                                  "\"q\"@example.com"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err.code = 0;
		CHECK_INT(store_account_add(st, bad[i], "h", 0, &err), -1);
		CHECK_INT(err.code, STORE_EINVAL);
	}
	CHECK_INT(store_account_add(st, "big@example.com", "h", UINT64_MAX, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);

	struct store_account a;
	CHECK_INT(store_account_get(st, "BOB@example.COM", &a, &err), 0);
	CHECK_STR(a.address, "Bob@example.com");
	CHECK_STR(a.domain, "example.com");
	CHECK_STR(a.password_hash, "$argon2id$x");
	CHECK_INT(a.quota, 1000);
	CHECK_INT(a.used, 0);
	CHECK(!a.disabled);
	CHECK(a.created > 0);
	store_account_deinit(&a);
	CHECK_INT(store_account_get(st, "nobody@example.com", &a, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	CHECK_INT(store_account_set_password(st, "bob@example.com", "$argon2id$new", &err), 0);
	CHECK_INT(store_account_set_disabled(st, "bob@example.com", true, &err), 0);
	CHECK_INT(store_account_set_quota(st, "bob@example.com", 5000, &err), 0);
	CHECK_INT(store_account_get(st, "bob@example.com", &a, &err), 0);
	CHECK_STR(a.password_hash, "$argon2id$new");
	CHECK(a.disabled);
	CHECK_INT(a.quota, 5000);
	store_account_deinit(&a);
	CHECK_INT(store_account_set_password(st, "nobody@example.com", "h", &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_account_set_disabled(st, "nobody@example.com", true, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_account_set_quota(st, "nobody@example.com", 1, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_account_set_quota(st, "bob@example.com", UINT64_MAX, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);

	struct store_account *v;
	size_t n;
	CHECK_INT(store_account_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(v[0].address, "alice@example.com");
		CHECK_STR(v[1].address, "Bob@example.com");
		CHECK_STR(v[2].address, "carol@other.example");
	}
	store_account_list_free(&v, n);
	CHECK_INT(store_account_list(st, "Other.Example", &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_STR(v[0].domain, "other.example");
	store_account_list_free(&v, n);
	CHECK_INT(store_account_list(st, "missing.example", &v, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK(v == NULL && n == 0);

	/* The six standard mailboxes, INBOX first, then by name. */
	struct store_mailbox *mb;
	CHECK_INT(store_mailbox_list(st, "bob@example.com", &mb, &n, &err), 0);
	CHECK_INT(n, 6);
	for (size_t i = 0; i < n && i < 6; i++) {
		CHECK_STR(mb[i].name, want_mailboxes[i].name);
		CHECK_STR(mb[i].special_use, want_mailboxes[i].special_use);
		CHECK(mb[i].subscribed);
		CHECK(mb[i].uidvalidity > 0);
		CHECK_INT(mb[i].uidnext, 1);
		CHECK_INT(mb[i].highestmodseq, 1);
		CHECK_INT(mb[i].n_messages, 0);
		for (size_t j = 0; j < i; j++)
			CHECK(mb[i].uidvalidity != mb[j].uidvalidity);
	}
	uint32_t old_inbox_uv = n > 0 ? mb[0].uidvalidity : 0;
	store_mailbox_list_free(&mb, n);
	CHECK_INT(store_mailbox_list(st, "nobody@example.com", &mb, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	CHECK_INT(store_account_remove(st, "bob@example.com", &err), 0);
	CHECK_INT(store_account_remove(st, "bob@example.com", &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_account_get(st, "bob@example.com", &a, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	/* Recreated at once: the new INBOX never reuses the old UIDVALIDITY (RFC 3501 2.3.1.1). */
	CHECK_INT(store_account_add(st, "bob@example.com", "h", 0, &err), 0);
	CHECK_INT(store_mailbox_list(st, "bob@example.com", &mb, &n, &err), 0);
	CHECK(n > 0 && mb[0].uidvalidity > old_inbox_uv);
	store_mailbox_list_free(&mb, n);
	store_close(&st);
	tmp_cleanup();
}

static bool
alias_has(const struct store_alias *a, const char *target)
{
	for (size_t i = 0; i < a->n_targets; i++)
		if (strcmp(a->targets[i], target) == 0)
			return true;
	return false;
}

static void
test_aliases(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	const char *t1[] = {"a@remote.example", "b@example.com"};
	const char *t2[] = {"B@EXAMPLE.COM", "c@remote.example"};
	CHECK_INT(store_alias_add(st, "team@example.com", t1, 2, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_domain_add(st, "two.example", &err), 0);
	CHECK_INT(store_account_add(st, "owner@example.com", "h", 0, &err), 0);
	CHECK_INT(store_alias_add(st, "Owner@example.com", t1, 2, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	CHECK_INT(store_alias_add(st, "team@example.com", t1, 0, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	const char *badt[] = {"not-an-address"};
	CHECK_INT(store_alias_add(st, "team@example.com", badt, 1, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	const char *self[] = {"TEAM@example.com"};
	CHECK_INT(store_alias_add(st, "team@example.com", self, 1, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);

	CHECK_INT(store_alias_add(st, "team@example.com", t1, 2, &err), 0);
	CHECK_INT(store_alias_add(st, "Team@Example.com", t2, 2, &err), 0); /* merges */
	const char *ca[] = {"owner@example.com"};
	CHECK_INT(store_alias_add(st, "@two.example", ca, 1, &err), 0); /* catch-all */

	struct store_alias *v;
	size_t n;
	CHECK_INT(store_alias_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].address, "@two.example");
		CHECK_INT(v[0].n_targets, 1);
		CHECK_STR(v[1].address, "team@example.com");
		CHECK_INT(v[1].n_targets, 3);
		CHECK(alias_has(&v[1], "a@remote.example"));
		CHECK(alias_has(&v[1], "b@example.com"));
		CHECK(alias_has(&v[1], "c@remote.example"));
	}
	store_alias_list_free(&v, n);
	CHECK_INT(store_alias_list(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 1);
	store_alias_list_free(&v, n);
	CHECK_INT(store_alias_list(st, "missing.example", &v, &n, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);

	/* An alias address blocks an account with that address (tested in test_accounts), and
	 * an account blocks the alias (above). Removing: */
	CHECK_INT(store_alias_remove(st, "team@example.com", "zz@remote.example", &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_alias_remove(st, "nope@example.com", NULL, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_alias_remove(st, "team@example.com", "A@remote.example", &err), 0);
	CHECK_INT(store_alias_remove(st, "team@example.com", "b@example.com", &err), 0);
	CHECK_INT(store_alias_list(st, "example.com", &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_INT(v[0].n_targets, 1);
		CHECK_STR(v[0].targets[0], "c@remote.example");
	}
	store_alias_list_free(&v, n);
	/* The last target takes the alias with it. */
	CHECK_INT(store_alias_remove(st, "team@example.com", "c@remote.example", &err), 0);
	CHECK_INT(store_alias_remove(st, "team@example.com", NULL, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_alias_remove(st, "@two.example", NULL, &err), 0);
	CHECK_INT(store_alias_list(st, NULL, &v, &n, &err), 0);
	CHECK_INT(n, 0);
	store_alias_list_free(&v, n);
	store_close(&st);
	CHECK_INT(sql_int(dbpath, "SELECT count(*) FROM alias_targets"), 0);
	tmp_cleanup();
}

static void
test_blobs(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	char sha[65], sha2[65];
	CHECK_INT(store_blob_put(st, "hello", 5, sha, &err), 0);
	CHECK_STR(sha, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	CHECK_INT(store_blob_put(st, "hello", 5, sha2, &err), 0);
	CHECK_STR(sha2, sha);
	CHECK_INT(store_blob_put(st, "", 0, sha2, &err), 0);
	CHECK_STR(sha2, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	unsigned char bin[300];
	for (size_t i = 0; i < sizeof bin; i++)
		bin[i] = (unsigned char)i; /* NULs and high bytes */
	char sha3[65];
	CHECK_INT(store_blob_put(st, bin, sizeof bin, sha3, &err), 0);

	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(store_blob_get(st, sha, &b, &err), 0);
	CHECK_INT(b.len, 5);
	CHECK(memcmp(b.data, "hello", 5) == 0);
	buf_reset(&b);
	CHECK_INT(store_blob_get(st, sha2, &b, &err), 0);
	CHECK_INT(b.len, 0);
	buf_reset(&b);
	CHECK_INT(store_blob_get(st, sha3, &b, &err), 0);
	CHECK_INT(b.len, sizeof bin);
	CHECK(b.len == sizeof bin && memcmp(b.data, bin, sizeof bin) == 0);
	buf_deinit(&b);
	buf_init(&b, 10); /* too small for the 300 bytes */
	CHECK_INT(store_blob_get(st, sha3, &b, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	buf_deinit(&b);
	buf_init(&b, 0);
	CHECK_INT(store_blob_get(st,
	                         "00000000000000000000000000000000000000000000000000000000000000"
	                         "00",
	                         &b, &err),
	          -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_blob_get(st, "xyz", &b, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	buf_deinit(&b);
	store_close(&st);
	CHECK_INT(sql_int(dbpath, "SELECT count(*) FROM blobs"), 3); /* "hello" stored once */
	tmp_cleanup();
}

/* ---- white-box: the generic write path and the triggers ---- */

struct msg_args {
	const char *address, *mailbox, *sha;
	int64_t uid, size;
};

static int
insert_message_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct msg_args *m = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db,
	        "INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_sha256)"
	        " SELECT mb.id, ?3, 1, 0, ?4, ?5 FROM mailboxes mb"
	        " JOIN accounts a ON mb.account_id = a.id WHERE a.address = ?1 AND mb.name = ?2",
	        &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, m->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, m->mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, m->uid);
	sqlite3_bind_int64(stmt, 4, m->size);
	sqlite3_bind_text(stmt, 5, m->sha, -1, SQLITE_STATIC);
	int rc = store_db_step_done(db, stmt, err, "test-insert");
	sqlite3_finalize(stmt);
	if (rc == 0 && sqlite3_changes(db) != 1)
		return err_set(err, STORE_ENOTFOUND, "no such mailbox");
	return rc;
}

static int
failing_fn(struct store_tx *tx, void *arg, struct err *err)
{
	if (store_db_exec(store_tx_db(tx),
	                  "INSERT INTO domains (name, created) VALUES ('rb.example', 0)", err) < 0)
		return -1;
	return err_set(err, STORE_EINVAL, "deliberate");
}

static int
nested_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct store *st = arg;
	if (store_db_exec(store_tx_db(tx),
	                  "INSERT INTO domains (name, created) VALUES ('outer.example', 0)",
	                  err) < 0)
		return -1;
	/* A failing nested write undoes only itself; a nested domain add joins the group. */
	struct err inner;
	if (store_write(st, failing_fn, NULL, &inner) != -1 || inner.code != STORE_EINVAL)
		return err_set(err, STORE_EINTERNAL, "nested failure not reported");
	return store_domain_add(st, "inner.example", err);
}

static void
test_write_path(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	uint64_t c0 = store_commit_count(st);
	CHECK_INT(store_write(st, failing_fn, NULL, &err), -1);
	CHECK_INT(err.code, STORE_EINVAL);
	CHECK_STR(err.msg, "deliberate");
	struct store_domain d;
	CHECK_INT(store_domain_get(st, "rb.example", &d, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_write(st, nested_fn, st, &err), 0);
	CHECK_INT(store_domain_get(st, "outer.example", &d, &err), 0);
	store_domain_deinit(&d);
	CHECK_INT(store_domain_get(st, "inner.example", &d, &err), 0);
	store_domain_deinit(&d);
	CHECK_INT(store_domain_get(st, "rb.example", &d, &err), -1);
	CHECK(store_commit_count(st) >= c0 + 2);

	/* Messages keep blob refcounts and the account's used bytes; removing the account drops
	 * blobs nobody references any more, and keeps shared ones. */
	CHECK_INT(store_account_add(st, "u@outer.example", "h", 0, &err), 0);
	CHECK_INT(store_account_add(st, "v@outer.example", "h", 0, &err), 0);
	char s1[65], s2[65];
	CHECK_INT(store_blob_put(st, "body one", 8, s1, &err), 0);
	CHECK_INT(store_blob_put(st, "body two", 8, s2, &err), 0);
	struct msg_args m[] = {
	    {"u@outer.example", "INBOX", s1, 1, 100},
	    {"u@outer.example", "Sent", s1, 1, 100},
	    {"u@outer.example", "INBOX", s2, 2, 50},
	    {"v@outer.example", "INBOX", s2, 1, 50},
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		CHECK_INT(store_write(st, insert_message_fn, &m[i], &err), 0);
	CHECK_INT(store_write(st, insert_message_fn, &m[0], &err), -1); /* UNIQUE(mailbox, uid) */
	CHECK_INT(err.code, STORE_EINTERNAL);
	struct store_account a;
	CHECK_INT(store_account_get(st, "u@outer.example", &a, &err), 0);
	CHECK_INT(a.used, 250);
	store_account_deinit(&a);
	struct store_mailbox *mb;
	size_t n;
	CHECK_INT(store_mailbox_list(st, "u@outer.example", &mb, &n, &err), 0);
	CHECK(n == 6 && mb[0].n_messages == 2);
	store_mailbox_list_free(&mb, n);
	CHECK_INT(sql_int(dbpath, "SELECT sum(refcount) FROM blobs"), 4);
	CHECK_INT(store_account_remove(st, "u@outer.example", &err), 0);
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(store_blob_get(st, s1, &b, &err), -1);
	CHECK_INT(err.code, STORE_ENOTFOUND);
	CHECK_INT(store_blob_get(st, s2, &b, &err), 0); /* still in v's INBOX */
	buf_deinit(&b);
	store_close(&st);
	CHECK_INT(sql_int(dbpath, "SELECT count(*) FROM messages"), 1);
	CHECK_INT(sql_int(dbpath, "SELECT max(refcount) FROM blobs"), 1);
	tmp_cleanup();
}

static void
test_backup(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	CHECK_INT(store_account_add(st, "bob@example.com", "h", 0, &err), 0);
	char sha[65];
	CHECK_INT(store_blob_put(st, "body", 4, sha, &err), 0);
	CHECK_INT(store_integrity_check(st, &err), 0);
	char dest[160];
	(void)snprintf(dest, sizeof dest, "%s/backup.db", tmpdir);
	CHECK_INT(store_backup(st, dest, &err), 0);
	CHECK_INT(store_backup(st, dest, &err), -1);
	CHECK_INT(err.code, STORE_EEXIST);
	char bad[200];
	(void)snprintf(bad, sizeof bad, "%s/no/such/dir.db", tmpdir);
	CHECK_INT(store_backup(st, bad, &err), -1);
	CHECK_INT(err.code, STORE_EINTERNAL);
	store_close(&st);

	CHECK_INT(file_format(dest), 1); /* self-contained: no WAL needed to read it */
	CHECK_INT(store_open(dest, &st, &err), 0);
	if (st) {
		CHECK_INT(store_integrity_check(st, &err), 0);
		struct store_account a;
		CHECK_INT(store_account_get(st, "bob@example.com", &a, &err), 0);
		store_account_deinit(&a);
		struct buf b;
		buf_init(&b, 0);
		CHECK_INT(store_blob_get(st, sha, &b, &err), 0);
		CHECK_INT(b.len, 4);
		buf_deinit(&b);
		store_close(&st);
	}

	/* Corruption is reported: break an index behind SQLite's back. */
	sqlite3 *db;
	CHECK_INT(sqlite3_open(dest, &db), SQLITE_OK);
	CHECK_INT(
	    sqlite3_exec(db,
	                 "PRAGMA writable_schema = ON;"
	                 "UPDATE sqlite_schema SET sql = replace(sql, 'domain_id)', 'address)')"
	                 " WHERE name = 'accounts_domain';",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	CHECK_INT(store_open(dest, &st, &err), 0);
	if (st) {
		CHECK_INT(store_integrity_check(st, &err), -1);
		CHECK_INT(err.code, STORE_EINTERNAL);
		store_close(&st);
	}
	tmp_cleanup();
}

int
main(void)
{
	log_set_level(LOG_WARN);
	RUN(test_migrations);
	RUN(test_migration_upgrade);
	RUN(test_domains);
	RUN(test_accounts);
	RUN(test_aliases);
	RUN(test_blobs);
	RUN(test_write_path);
	RUN(test_backup);
	return test_done("store");
}
