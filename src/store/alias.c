/* Aliases: an address ("local@domain", or "@domain" for the catch-all) that forwards to one or
 * more targets, kept one per row in alias_targets so adding merges and removing one target is a
 * single DELETE. The alias's own domain must be served here; targets may be anywhere. */
#include "store_private.h"

#include <string.h>
#include <strings.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

struct alias_args {
	const char *address; /* normalised */
	const char *domain;  /* points into address */
	char (*targets)[STORE_ADDR_MAX + 1];
	size_t n_targets;
	const char *target; /* remove: one target, or NULL */
};

static int
alias_add_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct alias_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t id;
	int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", a->domain,
	                               NULL, &id, err);
	if (found < 0)
		return -1;
	if (!found)
		return err_set(err, STORE_EINVAL, "domain %s is not served here", a->domain);
	found = store_db_query_int(db, "SELECT id FROM accounts WHERE address = ?1", a->address,
	                           NULL, &id, err);
	if (found < 0)
		return -1;
	if (found)
		return err_set(err, STORE_EEXIST, "account %s exists", a->address);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "INSERT INTO aliases (address, domain_id, created)"
	                     " SELECT ?1, id, ?3 FROM domains WHERE name = ?2"
	                     " ON CONFLICT (address) DO NOTHING",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, a->domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, clock_now());
	int rc = store_db_step_done(db, stmt, err, "alias-add");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	if (store_db_prepare(db,
	                     "INSERT OR IGNORE INTO alias_targets (alias_id, target)"
	                     " SELECT id, ?2 FROM aliases WHERE address = ?1",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->address, -1, SQLITE_STATIC);
	for (size_t i = 0; i < a->n_targets && rc == 0; i++) {
		sqlite3_bind_text(stmt, 2, a->targets[i], -1, SQLITE_STATIC);
		rc = store_db_step_done(db, stmt, err, "alias-add-target");
	}
	sqlite3_finalize(stmt);
	return rc;
}

int
store_alias_add(struct store *st, const char *address, const char *const *targets, size_t n_targets,
                struct err *err)
{
	char norm[STORE_ADDR_MAX + 1];
	size_t at;
	if (store_name_address(address, true, norm, &at, err) < 0)
		return -1;
	if (n_targets == 0)
		return err_set(err, STORE_EINVAL, "alias %s needs at least one target", norm);
	struct alias_args a = {.address = norm, .domain = norm + at + 1, .n_targets = n_targets};
	a.targets = xcalloc(n_targets, sizeof *a.targets);
	int ret = -1;
	for (size_t i = 0; i < n_targets; i++) {
		size_t tat;
		if (store_name_address(targets[i], false, a.targets[i], &tat, err) < 0)
			goto out;
		if (strcasecmp(a.targets[i], norm) == 0) {
			err_set(err, STORE_EINVAL, "alias %s cannot point to itself", norm);
			goto out;
		}
	}
	if (store_write(st, alias_add_fn, &a, err) < 0)
		goto out;
	log_info("store - alias-add address=%s targets=%zu", norm, n_targets);
	ret = 0;
out:
	free(a.targets);
	return ret;
}

static void
alias_list_free_one(struct store_alias *a)
{
	for (size_t i = 0; i < a->n_targets; i++)
		free(a->targets[i]);
	free(a->targets);
	free(a->address);
}

int
store_alias_list(struct store *st, const char *domain, struct store_alias **v_r, size_t *n_r,
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
	int ret = -1;
	struct store_alias *v = NULL;
	size_t n = 0, cap = 0, tcap = 0;
	sqlite3_stmt *stmt = NULL;
	if (domain) {
		int64_t id;
		int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", norm,
		                               NULL, &id, err);
		if (found < 0)
			goto out;
		if (!found) {
			err_set(err, STORE_ENOTFOUND, "no domain %s", norm);
			goto out;
		}
	}
	/* One joined query, rows grouped by alias. */
	if (store_db_prepare(db,
	                     "SELECT a.id, a.address, t.target FROM aliases a"
	                     " JOIN domains d ON a.domain_id = d.id"
	                     " JOIN alias_targets t ON t.alias_id = a.id"
	                     " WHERE ?1 IS NULL OR d.name = ?1 ORDER BY a.address, a.id, t.target",
	                     &stmt, err) < 0)
		goto out;
	if (domain)
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(stmt, 0);
		if (n == 0 || v[n - 1].id != id) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				v = xrealloc(v, cap * sizeof *v);
			}
			memset(&v[n], 0, sizeof v[n]);
			v[n].id = id;
			v[n].address = store_db_strdup(stmt, 1);
			n++;
			tcap = 0;
		}
		struct store_alias *a = &v[n - 1];
		if (a->n_targets == tcap) {
			tcap = tcap ? tcap * 2 : 4;
			a->targets = xrealloc(a->targets, tcap * sizeof *a->targets);
		}
		a->targets[a->n_targets++] = store_db_strdup(stmt, 2);
	}
	if (rc != SQLITE_DONE) {
		store_db_fail(db, err, "alias-list");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_db_read_end(db);
	if (ret < 0) {
		store_alias_list_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

/* ?1 is the alias address, ?2 the target. Removing one target drops the alias with its last
 * target; removing the whole alias lets the cascade take the targets. The first statement's
 * change count tells whether there was anything to remove. */
static const char *const alias_remove_all_sql[] = {"DELETE FROM aliases WHERE address = ?1"};
static const char *const alias_remove_one_sql[] = {
    "DELETE FROM alias_targets WHERE target = ?2"
    " AND alias_id = (SELECT id FROM aliases WHERE address = ?1)",
    "DELETE FROM aliases WHERE address = ?1"
    " AND NOT EXISTS (SELECT 1 FROM alias_targets WHERE alias_id = aliases.id)",
};

static int
alias_remove_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct alias_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	const char *const *sql = a->target ? alias_remove_one_sql : alias_remove_all_sql;
	size_t n = a->target ? 2 : 1;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *stmt;
		if (store_db_prepare(db, sql[i], &stmt, err) < 0)
			return -1;
		sqlite3_bind_text(stmt, 1, a->address, -1, SQLITE_STATIC);
		if (a->target)
			sqlite3_bind_text(stmt, 2, a->target, -1, SQLITE_STATIC);
		int rc = store_db_step_done(db, stmt, err, "alias-remove");
		sqlite3_finalize(stmt);
		if (rc < 0)
			return -1;
		if (i > 0 || sqlite3_changes(db) > 0)
			continue;
		if (a->target)
			return err_set(err, STORE_ENOTFOUND, "alias %s has no target %s",
			               a->address, a->target);
		return err_set(err, STORE_ENOTFOUND, "no alias %s", a->address);
	}
	return 0;
}

int
store_alias_remove(struct store *st, const char *address, const char *target, struct err *err)
{
	char norm[STORE_ADDR_MAX + 1], tnorm[STORE_ADDR_MAX + 1];
	size_t at;
	if (store_name_address(address, true, norm, &at, err) < 0)
		return -1;
	if (target && store_name_address(target, false, tnorm, &at, err) < 0)
		return -1;
	struct alias_args a = {.address = norm, .target = target ? tnorm : NULL};
	if (store_write(st, alias_remove_fn, &a, err) < 0)
		return -1;
	log_info("store - alias-remove address=%s target=%s", norm, target ? tnorm : "*");
	return 0;
}

void
store_alias_list_free(struct store_alias **vp, size_t n)
{
	struct store_alias *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		alias_list_free_one(&v[i]);
	x_free(vp);
}
