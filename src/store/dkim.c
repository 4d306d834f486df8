/* DKIM keys (migration 4): per-domain signing keys with their life cycle active → published
 * (after a rotation, until retire_at) → retired. Writes go through store_write, reads through
 * the calling thread's reader. Private keys leave the store only through store_dkim_active
 * (signing) and store_dkim_export. */
#include "store_private.h"

#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define DKIM_SELECTOR_MAX 63 /* one DNS label (RFC 1035 §2.3.4) */

struct dkim_args {
	const char *domain; /* normalised */
	const struct store_dkim_new *keys;
	size_t n;
	int64_t now;
	int64_t retire_at; /* rotate */
	bool rotate;
	size_t changed; /* retire: rows changed */
};

static int
dkim_check_new(const struct store_dkim_new *k, struct err *err)
{
	size_t n = k->selector ? strlen(k->selector) : 0;
	if (n == 0 || n > DKIM_SELECTOR_MAX)
		return err_set(err, STORE_EINVAL, "bad DKIM selector");
	for (size_t i = 0; i < n; i++) {
		char c = k->selector[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return err_set(err, STORE_EINVAL, "bad DKIM selector %s", k->selector);
	}
	if (k->algo == NULL || (strcmp(k->algo, "ed25519") != 0 && strcmp(k->algo, "rsa") != 0))
		return err_set(err, STORE_EINVAL, "bad DKIM algorithm");
	if (k->private_pem == NULL || k->public_b64 == NULL)
		return err_set(err, STORE_EINVAL, "DKIM key material missing");
	return 0;
}

static int
dkim_write_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct dkim_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t domain_id;
	int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", a->domain,
	                               NULL, &domain_id, err);
	if (found < 0)
		return -1;
	if (!found)
		return err_set(err, STORE_ENOTFOUND, "no domain %s", a->domain);
	sqlite3_stmt *stmt;
	int rc;
	if (a->rotate) {
		if (store_db_prepare(db,
		                     "UPDATE dkim_keys SET state = 'published', retire_at = ?2"
		                     " WHERE domain_id = ?1 AND state = 'active'",
		                     &stmt, err) < 0)
			return -1;
		sqlite3_bind_int64(stmt, 1, domain_id);
		sqlite3_bind_int64(stmt, 2, a->retire_at);
		rc = store_db_step_done(db, stmt, err, "dkim-rotate");
		sqlite3_finalize(stmt);
		if (rc < 0)
			return -1;
	}
	if (store_db_prepare(db,
	                     "INSERT INTO dkim_keys (domain_id, selector, algo, bits, private_key,"
	                     " public_key, state, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	                     " 'active', ?7)",
	                     &stmt, err) < 0)
		return -1;
	rc = 0;
	for (size_t i = 0; i < a->n && rc == 0; i++) {
		const struct store_dkim_new *k = &a->keys[i];
		int64_t dummy;
		found =
		    store_db_query_int(db,
		                       "SELECT k.id FROM dkim_keys k JOIN domains d ON"
		                       " k.domain_id = d.id WHERE d.name = ?1 AND k.selector = ?2",
		                       a->domain, k->selector, &dummy, err);
		if (found < 0) {
			rc = -1;
			break;
		}
		if (found) {
			rc = err_set(err, STORE_EEXIST, "domain %s already has selector %s",
			             a->domain, k->selector);
			break;
		}
		sqlite3_bind_int64(stmt, 1, domain_id);
		sqlite3_bind_text(stmt, 2, k->selector, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 3, k->algo, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, k->bits);
		sqlite3_bind_text(stmt, 5, k->private_pem, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 6, k->public_b64, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 7, a->now);
		rc = store_db_step_done(db, stmt, err, "dkim-add");
	}
	sqlite3_finalize(stmt);
	return rc;
}

static int
dkim_insert(struct store *st, const char *domain, const struct store_dkim_new *keys, size_t n,
            int64_t now, bool rotate, int64_t retire_at, struct err *err)
{
	char norm[STORE_DOMAIN_MAX + 1];
	if (store_name_domain(domain, norm, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (dkim_check_new(&keys[i], err) < 0)
			return -1;
	struct dkim_args a = {.domain = norm,
	                      .keys = keys,
	                      .n = n,
	                      .now = now,
	                      .rotate = rotate,
	                      .retire_at = retire_at};
	if (store_write(st, dkim_write_fn, &a, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		log_info("store - dkim-%s domain=%s selector=%s algo=%s", rotate ? "rotate" : "add",
		         norm, keys[i].selector, keys[i].algo);
	return 0;
}

int
store_dkim_add(struct store *st, const char *domain, const struct store_dkim_new *k, int64_t now,
               struct err *err)
{
	return dkim_insert(st, domain, k, 1, now, false, 0, err);
}

int
store_dkim_rotate(struct store *st, const char *domain, const struct store_dkim_new *keys, size_t n,
                  int64_t now, unsigned keep_days, struct err *err)
{
	return dkim_insert(st, domain, keys, n, now, true, now + (int64_t)keep_days * 86400, err);
}

static int
dkim_retire_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct dkim_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "UPDATE dkim_keys SET state = 'retired'"
	                     " WHERE state = 'published' AND retire_at <= ?1",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->now);
	int rc = store_db_step_done(db, stmt, err, "dkim-retire");
	sqlite3_finalize(stmt);
	if (rc == 0)
		a->changed = (size_t)sqlite3_changes(db);
	return rc;
}

int
store_dkim_retire_due(struct store *st, int64_t now, size_t *n_r, struct err *err)
{
	struct dkim_args a = {.now = now};
	if (store_write(st, dkim_retire_fn, &a, err) < 0)
		return -1;
	if (a.changed)
		log_info("store - dkim-retire keys=%zu", a.changed);
	if (n_r)
		*n_r = a.changed;
	return 0;
}

static void
dkim_key_free_one(struct store_dkim_key *k)
{
	free(k->domain);
	free(k->selector);
	free(k->algo);
	free(k->public_key);
	free(k->private_key);
	free(k->state);
}

void
store_dkim_list_free(struct store_dkim_key **vp, size_t n)
{
	struct store_dkim_key *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		dkim_key_free_one(&v[i]);
	x_free(vp);
}

/* Columns: d.name, selector, algo, bits, public_key, state, created, retire_at, id, private.
 * Cached statements: store_dkim_active runs for every signed message. */
static int
dkim_query(struct store *st, const char *domain, bool active, struct store_dkim_key **v_r,
           size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain && store_name_domain(domain, norm, err) < 0)
		return -1;
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL || store_reader_begin(r, err) < 0)
		return -1;
	int ret = -1;
	struct store_dkim_key *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *stmt = NULL;
	if (domain) {
		stmt = store_reader_stmt(r, STMT_DOMAIN_EXISTS, err);
		if (stmt == NULL)
			goto out;
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
		int rc = sqlite3_step(stmt);
		store_stmt_release(stmt);
		stmt = NULL;
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			store_db_fail(r->db, err, "dkim-domain");
			goto out;
		}
		if (rc == SQLITE_DONE) {
			err_set(err, STORE_ENOTFOUND, "no domain %s", norm);
			goto out;
		}
	}
	stmt = store_reader_stmt(r, active ? STMT_DKIM_ACTIVE : STMT_DKIM_LIST, err);
	if (stmt == NULL)
		goto out;
	if (domain)
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_dkim_key *k = &v[n++];
		memset(k, 0, sizeof *k);
		k->domain = store_db_strdup(stmt, 0);
		k->selector = store_db_strdup(stmt, 1);
		k->algo = store_db_strdup(stmt, 2);
		k->bits = (unsigned)sqlite3_column_int64(stmt, 3);
		k->public_key = store_db_strdup(stmt, 4);
		k->state = store_db_strdup(stmt, 5);
		k->created = sqlite3_column_int64(stmt, 6);
		k->retire_at = sqlite3_column_int64(stmt, 7); /* NULL reads as 0 */
		k->id = sqlite3_column_int64(stmt, 8);
		k->private_key = store_db_strdup(stmt, 9);
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(r->db, err, "dkim-list");
		goto out;
	}
	ret = 0;
out:
	store_stmt_release(stmt);
	store_reader_end(r);
	if (ret < 0) {
		store_dkim_list_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

int
store_dkim_list(struct store *st, const char *domain, struct store_dkim_key **v_r, size_t *n_r,
                struct err *err)
{
	return dkim_query(st, domain, false, v_r, n_r, err);
}

int
store_dkim_active(struct store *st, const char *domain, struct store_dkim_key **v_r, size_t *n_r,
                  struct err *err)
{
	if (domain == NULL)
		return err_set(err, STORE_EINVAL, "domain needed");
	return dkim_query(st, domain, true, v_r, n_r, err);
}

int
store_dkim_export(struct store *st, const char *domain, const char *selector, char **pem_r,
                  struct err *err)
{
	*pem_r = NULL;
	char norm[STORE_DOMAIN_MAX + 1];
	if (store_name_domain(domain, norm, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT k.private_key FROM dkim_keys k JOIN domains d"
	                     " ON k.domain_id = d.id WHERE d.name = ?1 AND k.selector = ?2",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, selector, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt), ret = -1;
	if (rc == SQLITE_ROW) {
		*pem_r = store_db_strdup(stmt, 0);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		err_set(err, STORE_ENOTFOUND, "no DKIM key %s for domain %s", selector, norm);
	} else {
		store_db_fail(db, err, "dkim-export");
	}
	sqlite3_finalize(stmt);
	return ret;
}
