/* REST API keys (migration 6): only the SHA-256 of a token and a display prefix are stored, so
 * a copy of the database does not hand out working keys. A key belongs to a domain (deleted with
 * it through the foreign key) or, with no domain, is an admin key. Revocation sets a time and
 * keeps the row for the listing. The lookup runs on every API request: it is one cached
 * statement on the caller's read connection, so a revocation committed by another process (the
 * CLI) is seen by the next request. */
#include "store_private.h"

#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define APIKEY_PREFIX_MAX 32
#define APIKEY_NAME_MAX   128

#define APIKEY_COLS                                                                                \
	"SELECT k.id, k.prefix, k.name, d.name, k.created, k.revoked FROM api_keys k"              \
	" LEFT JOIN domains d ON d.id = k.domain_id"

static bool
apikey_hash_ok(const char *h)
{
	if (h == NULL || strnlen(h, STORE_SHA_HEX + 1) != STORE_SHA_HEX)
		return false;
	for (size_t i = 0; i < STORE_SHA_HEX; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return true;
}

/* Printable text without control bytes, at most max bytes; empty allowed when !nonempty. */
static bool
apikey_text_ok(const char *s, size_t max, bool nonempty)
{
	size_t n = strnlen(s, max + 1);
	if (n > max || (nonempty && n == 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void
apikey_from_row(sqlite3_stmt *stmt, struct store_apikey *k)
{
	k->id = sqlite3_column_int64(stmt, 0);
	k->prefix = store_db_strdup(stmt, 1);
	k->name = store_db_strdup(stmt, 2);
	if (k->name == NULL)
		k->name = xstrdup("");
	k->domain = store_db_strdup(stmt, 3);
	k->created = sqlite3_column_int64(stmt, 4);
	k->revoked = sqlite3_column_int64(stmt, 5);
}

static void
apikey_row(sqlite3_stmt *stmt, void *elem)
{
	apikey_from_row(stmt, elem);
}

struct apikey_args {
	const char *hash, *prefix, *name, *domain; /* domain normalised or NULL */
	int64_t now, id;
	bool found; /* revoke */
};

static int
apikey_add_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct apikey_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t domain_id = 0, dummy;
	if (a->domain != NULL) {
		int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1",
		                               a->domain, NULL, &domain_id, err);
		if (found < 0)
			return -1;
		if (!found)
			return err_set(err, STORE_ENOTFOUND, "no domain %s", a->domain);
	}
	int found = store_db_query_int(db, "SELECT id FROM api_keys WHERE hash = ?1", a->hash, NULL,
	                               &dummy, err);
	if (found < 0)
		return -1;
	if (found)
		return err_set(err, STORE_EEXIST, "an API key with that hash exists");
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "INSERT INTO api_keys (hash, prefix, name, domain_id, created)"
	                     " VALUES (?1, ?2, ?3, nullif(?4, 0), ?5)",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, a->prefix, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, domain_id);
	sqlite3_bind_int64(stmt, 5, a->now);
	int rc = store_db_step_done(db, stmt, err, "apikey-add");
	sqlite3_finalize(stmt);
	if (rc == 0)
		a->id = sqlite3_last_insert_rowid(db);
	return rc;
}

int
store_apikey_add(struct store *st, const char *hash_hex, const char *prefix, const char *name,
                 const char *domain, int64_t now, int64_t *id_r, struct err *err)
{
	if (!apikey_hash_ok(hash_hex))
		return err_set(err, STORE_EINVAL, "API key hash must be 64 lower-case hex digits");
	if (prefix == NULL || !apikey_text_ok(prefix, APIKEY_PREFIX_MAX, true))
		return err_set(err, STORE_EINVAL, "bad API key prefix");
	if (name == NULL)
		name = "";
	if (!apikey_text_ok(name, APIKEY_NAME_MAX, false))
		return err_set(err, STORE_EINVAL,
		               "API key name must be at most %d bytes without control characters",
		               APIKEY_NAME_MAX);
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain != NULL && store_name_domain(domain, norm, err) < 0)
		return -1;
	struct apikey_args a = {.hash = hash_hex,
	                        .prefix = prefix,
	                        .name = name,
	                        .domain = domain ? norm : NULL,
	                        .now = now};
	if (store_write(st, apikey_add_fn, &a, err) < 0)
		return -1;
	if (id_r)
		*id_r = a.id;
	log_info("store - apikey-add id=%lld prefix=%s scope=%s", (long long)a.id, prefix,
	         domain ? norm : "admin");
	return 0;
}

int
store_apikey_lookup(struct store *st, const char *hash_hex, struct store_apikey *k_r,
                    struct err *err)
{
	memset(k_r, 0, sizeof *k_r);
	if (!apikey_hash_ok(hash_hex))
		return err_set(err, STORE_ENOTFOUND, "no such API key");
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_APIKEY_LOOKUP, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, hash_hex, STORE_SHA_HEX, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW)
		apikey_from_row(stmt, k_r);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, STORE_ENOTFOUND, "no such API key");
	else
		ret = store_db_fail(r->db, err, "apikey-lookup");
	store_stmt_release(stmt);
	return ret;
}

int
store_apikey_get(struct store *st, int64_t id, struct store_apikey *k_r, struct err *err)
{
	memset(k_r, 0, sizeof *k_r);
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, APIKEY_COLS " WHERE k.id = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW)
		apikey_from_row(stmt, k_r);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, STORE_ENOTFOUND, "no API key %lld", (long long)id);
	else
		ret = store_db_fail(db, err, "apikey-get");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_apikey_list(struct store *st, const char *domain, struct store_apikey **v_r, size_t *n_r,
                  struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain != NULL && store_name_domain(domain, norm, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, APIKEY_COLS " WHERE ?1 IS NULL OR d.name = ?1 ORDER BY k.id",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, domain ? norm : NULL, -1, SQLITE_STATIC);
	void *p;
	size_t n;
	int rc = store_stmt_collect(stmt, sizeof(struct store_apikey), apikey_row, &p, &n);
	struct store_apikey *v = p;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		store_apikey_list_free(&v, n);
		return store_db_fail(db, err, "apikey-list");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

static int
apikey_revoke_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct apikey_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "UPDATE api_keys SET revoked = CASE WHEN revoked = 0 THEN ?2"
	                     " ELSE revoked END WHERE id = ?1",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->id);
	/* 0 means "active": a revocation at time 0 (tests, broken clocks) is stored as 1. */
	sqlite3_bind_int64(stmt, 2, a->now > 0 ? a->now : 1);
	int rc = store_db_step_done(db, stmt, err, "apikey-revoke");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	if (sqlite3_changes(db) == 0)
		return err_set(err, STORE_ENOTFOUND, "no API key %lld", (long long)a->id);
	return 0;
}

int
store_apikey_revoke(struct store *st, int64_t id, int64_t now, struct err *err)
{
	struct apikey_args a = {.id = id, .now = now};
	if (store_write(st, apikey_revoke_fn, &a, err) < 0)
		return -1;
	log_info("store - apikey-revoke id=%lld", (long long)id);
	return 0;
}

void
store_apikey_deinit(struct store_apikey *k)
{
	if (k == NULL)
		return;
	x_free(&k->prefix);
	x_free(&k->name);
	x_free(&k->domain);
}

void
store_apikey_list_free(struct store_apikey **vp, size_t n)
{
	struct store_apikey *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_apikey_deinit(&v[i]);
	x_free(vp);
}
