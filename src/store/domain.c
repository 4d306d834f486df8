/* Domains we receive mail for. Writes go through store_write (writer thread); reads use the
 * calling thread's connection. Removing a domain with force cascades to its accounts (with their
 * mailboxes and messages) and aliases through the foreign keys, and so do its DKIM keys, API
 * keys and templates (migrations 4 and 6). */
#include "store_private.h"

#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

struct domain_args {
	const char *name; /* normalised */
	bool force;
};

static int
domain_add_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct domain_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t id;
	int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", a->name, NULL,
	                               &id, err);
	if (found < 0)
		return -1;
	if (found)
		return err_set(err, STORE_EEXIST, "domain %s exists", a->name);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "INSERT INTO domains (name, created) VALUES (?1, ?2)", &stmt,
	                     err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, clock_now());
	int rc = store_db_step_done(db, stmt, err, "domain-add");
	sqlite3_finalize(stmt);
	return rc;
}

int
store_domain_add(struct store *st, const char *name, struct err *err)
{
	char norm[STORE_DOMAIN_MAX + 1];
	if (store_name_domain(name, norm, err) < 0)
		return -1;
	struct domain_args a = {.name = norm};
	if (store_write(st, domain_add_fn, &a, err) < 0)
		return -1;
	log_info("store - domain-add name=%s", norm);
	return 0;
}

static void
domain_from_row(sqlite3_stmt *stmt, struct store_domain *d)
{
	d->id = sqlite3_column_int64(stmt, 0);
	d->name = store_db_strdup(stmt, 1);
	d->created = sqlite3_column_int64(stmt, 2);
	d->n_accounts = sqlite3_column_int64(stmt, 3);
	d->n_aliases = sqlite3_column_int64(stmt, 4);
}

int
store_domain_get(struct store *st, const char *name, struct store_domain *d_r, struct err *err)
{
	memset(d_r, 0, sizeof *d_r);
	char norm[STORE_DOMAIN_MAX + 1];
	if (store_name_domain(name, norm, err) < 0)
		return -1;
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_DOMAIN_GET, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	int ret = 0;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		domain_from_row(stmt, d_r);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, STORE_ENOTFOUND, "no domain %s", norm);
	else
		ret = store_db_fail(r->db, err, "domain-get");
	store_stmt_release(stmt);
	return ret;
}

int
store_domain_list(struct store *st, struct store_domain **v_r, size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, STORE_DOMAIN_COLS " ORDER BY d.name", &stmt, err) < 0)
		return -1;
	struct store_domain *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		domain_from_row(stmt, &v[n++]);
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		store_domain_list_free(&v, n);
		return store_db_fail(db, err, "domain-list");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

static int
domain_remove_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct domain_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t id, busy = 0;
	int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", a->name, NULL,
	                               &id, err);
	if (found < 0)
		return -1;
	if (!found)
		return err_set(err, STORE_ENOTFOUND, "no domain %s", a->name);
	if (!a->force) {
		if (store_db_query_int(
		        db,
		        "SELECT (SELECT count(*) FROM accounts a JOIN domains d ON a.domain_id = "
		        "d.id"
		        "  WHERE d.name = ?1) +"
		        " (SELECT count(*) FROM aliases a JOIN domains d ON a.domain_id = d.id"
		        "  WHERE d.name = ?1)",
		        a->name, NULL, &busy, err) < 0)
			return -1;
		if (busy > 0)
			return err_set(err, STORE_EBUSY,
			               "domain %s still has %lld accounts or aliases", a->name,
			               (long long)busy);
	}
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "DELETE FROM domains WHERE id = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	int rc = store_db_step_done(db, stmt, err, "domain-remove");
	sqlite3_finalize(stmt);
	return rc;
}

int
store_domain_remove(struct store *st, const char *name, bool force, struct err *err)
{
	char norm[STORE_DOMAIN_MAX + 1];
	if (store_name_domain(name, norm, err) < 0)
		return -1;
	struct domain_args a = {.name = norm, .force = force};
	if (store_write(st, domain_remove_fn, &a, err) < 0)
		return -1;
	log_info("store - domain-remove name=%s force=%d", norm, force);
	return 0;
}

void
store_domain_deinit(struct store_domain *d)
{
	if (d)
		x_free(&d->name);
}

void
store_domain_list_free(struct store_domain **vp, size_t n)
{
	struct store_domain *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_domain_deinit(&v[i]);
	x_free(vp);
}
