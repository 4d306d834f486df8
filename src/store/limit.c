/* Rate limit storage (migration 8, issue 8): the daily usage counters that survive restarts
 * and the per-account / per-domain overrides of the configured rules. store_deliver adds to the
 * counters in the transaction of the message (deliver.c); this file reads them, prunes old days
 * and keeps the overrides. store_limit_usage and store_limit_overrides run for every message:
 * both use cached statements on the caller's read connection. The overrides of an account or
 * domain go with it through the foreign keys (ON DELETE CASCADE). */
#include "store_private.h"

#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define LIMIT_RULE_MAX      64  /* [a-z_]{1,64} */
#define LIMIT_OVERRIDES_MAX 256 /* per account or domain */

/* What differs between the two scopes (tables over code). */
static const struct limit_scope {
	const char *what;
	const char *id_sql;    /* ?1 = normalised name -> id */
	const char *count_sql; /* ?1 = id, ?2 = rule -> number of the other overrides */
	const char *set_sql;   /* ?1 = id, ?2 = rule, ?3 = value */
	const char *del_sql;   /* ?1 = id, ?2 = rule */
	enum store_stmt_id list;
} limit_scopes[] = {
    [STORE_LIMIT_ACCOUNT] = {"account", "SELECT id FROM accounts WHERE address = ?1",
                             "SELECT count(*) FROM limit_account_overrides WHERE account_id = ?1"
                             " AND rule <> ?2",
                             "INSERT INTO limit_account_overrides (account_id, rule, value)"
                             " VALUES (?1, ?2, ?3)"
                             " ON CONFLICT (account_id, rule) DO UPDATE SET value = excluded.value",
                             "DELETE FROM limit_account_overrides WHERE account_id = ?1"
                             " AND rule = ?2",
                             STMT_LIMIT_OVERRIDES_ACCOUNT},
    [STORE_LIMIT_DOMAIN] = {"domain", "SELECT id FROM domains WHERE name = ?1",
                            "SELECT count(*) FROM limit_domain_overrides WHERE domain_id = ?1"
                            " AND rule <> ?2",
                            "INSERT INTO limit_domain_overrides (domain_id, rule, value)"
                            " VALUES (?1, ?2, ?3)"
                            " ON CONFLICT (domain_id, rule) DO UPDATE SET value = excluded.value",
                            "DELETE FROM limit_domain_overrides WHERE domain_id = ?1 AND rule = ?2",
                            STMT_LIMIT_OVERRIDES_DOMAIN},
};

bool
store_limit_key_ok(const char *key)
{
	if (key == NULL)
		return false;
	size_t len = strnlen(key, STORE_LIMIT_KEY_MAX + 1);
	if (len == 0 || len > STORE_LIMIT_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return false;
	return true;
}

static bool
limit_rule_ok(const char *rule)
{
	if (rule == NULL)
		return false;
	size_t len = strnlen(rule, LIMIT_RULE_MAX + 1);
	if (len == 0 || len > LIMIT_RULE_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((rule[i] >= 'a' && rule[i] <= 'z') || rule[i] == '_'))
			return false;
	return true;
}

/* Normalises name (an account address or a domain name) into out. */
static int
limit_name(enum store_limit_scope scope, const char *name, char out[STORE_ADDR_MAX + 1],
           struct err *err)
{
	if ((unsigned)scope >= sizeof limit_scopes / sizeof limit_scopes[0])
		return err_set(err, STORE_EINVAL, "bad rate limit scope");
	if (name == NULL)
		return err_set(err, STORE_EINVAL, "%s missing", limit_scopes[scope].what);
	if (scope == STORE_LIMIT_DOMAIN)
		return store_name_domain(name, out, err);
	size_t at;
	return store_name_address(name, false, out, &at, err);
}

int
store_limit_usage(struct store *st, const char *key, int64_t day, uint64_t *count_r,
                  struct err *err)
{
	*count_r = 0;
	if (!store_limit_key_ok(key))
		return err_set(err, STORE_EINVAL, "bad rate limit key");
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_LIMIT_USAGE_GET, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, day);
	int rc = sqlite3_step(stmt), ret = 0;
	if (rc == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(stmt, 0);
		*count_r = v > 0 ? (uint64_t)v : 0;
	} else if (rc != SQLITE_DONE) {
		ret = store_db_fail(r->db, err, "limit-usage");
	}
	store_stmt_release(stmt);
	return ret;
}

struct limit_prune_args {
	int64_t before_day;
	int64_t removed; /* out */
};

static int
limit_prune_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct limit_prune_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "DELETE FROM limit_usage WHERE day < ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->before_day);
	int rc = store_db_step_done(db, stmt, err, "limit-prune");
	sqlite3_finalize(stmt);
	if (rc == 0)
		a->removed = sqlite3_changes64(db);
	return rc;
}

int
store_limit_usage_prune(struct store *st, int64_t before_day, struct err *err)
{
	struct limit_prune_args a = {.before_day = before_day};
	if (store_write(st, limit_prune_fn, &a, err) < 0)
		return -1;
	if (a.removed > 0)
		log_info("store - limit-prune before_day=%lld removed=%lld", (long long)before_day,
		         (long long)a.removed);
	return 0;
}

struct limit_set_args {
	const struct limit_scope *sc;
	const char *name; /* normalised */
	const char *rule;
	bool set;
	int64_t value;
};

/* Runs sql with ?1 = id, ?2 = rule, ?3 = value (when set). */
static int
limit_set_exec(sqlite3 *db, const char *sql, int64_t id, const struct limit_set_args *a,
               struct err *err)
{
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, sql, &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, a->rule, -1, SQLITE_STATIC);
	if (a->set)
		sqlite3_bind_int64(stmt, 3, a->value);
	int rc = store_db_step_done(db, stmt, err, "limit-override");
	sqlite3_finalize(stmt);
	return rc;
}

static int
limit_set_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct limit_set_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t id;
	int found = store_db_query_int(db, a->sc->id_sql, a->name, NULL, &id, err);
	if (found < 0)
		return -1;
	if (!found)
		return err_set(err, STORE_ENOTFOUND, "no %s %s", a->sc->what, a->name);
	if (!a->set)
		return limit_set_exec(db, a->sc->del_sql, id, a, err);
	sqlite3_stmt *stmt; /* a new rule must fit under the cap, a replaced one always does */
	if (store_db_prepare(db, a->sc->count_sql, &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, a->rule, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		store_db_fail(db, err, "limit-override-count");
		sqlite3_finalize(stmt);
		return -1;
	}
	int64_t others = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (others >= LIMIT_OVERRIDES_MAX)
		return err_set(err, STORE_EINVAL, "%s %s has %d rate limit overrides already",
		               a->sc->what, a->name, LIMIT_OVERRIDES_MAX);
	return limit_set_exec(db, a->sc->set_sql, id, a, err);
}

int
store_limit_override_set(struct store *st, enum store_limit_scope scope, const char *name,
                         const char *rule, bool set, uint64_t value, struct err *err)
{
	char norm[STORE_ADDR_MAX + 1];
	if (limit_name(scope, name, norm, err) < 0)
		return -1;
	if (!limit_rule_ok(rule))
		return err_set(err, STORE_EINVAL, "bad rate limit rule name");
	if (set && value > INT64_MAX)
		return err_set(err, STORE_EINVAL, "rate limit value too large");
	struct limit_set_args a = {.sc = &limit_scopes[scope],
	                           .name = norm,
	                           .rule = rule,
	                           .set = set,
	                           .value = (int64_t)value};
	if (store_write(st, limit_set_fn, &a, err) < 0)
		return -1;
	if (set)
		log_info("store - limit-override %s=%s rule=%s value=%llu", a.sc->what, norm, rule,
		         (unsigned long long)value);
	else
		log_info("store - limit-override-remove %s=%s rule=%s", a.sc->what, norm, rule);
	return 0;
}

int
store_limit_overrides(struct store *st, enum store_limit_scope scope, const char *name,
                      struct store_limit_override **v_r, size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char norm[STORE_ADDR_MAX + 1];
	if (limit_name(scope, name, norm, err) < 0)
		return -1;
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, limit_scopes[scope].list, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	struct store_limit_override *v = NULL;
	size_t n = 0, cap = 0;
	bool owner = false;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		owner = true;
		if (sqlite3_column_type(stmt, 0) == SQLITE_NULL)
			continue; /* the owner without overrides */
		if (n == LIMIT_OVERRIDES_MAX)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof *v);
		}
		int64_t value = sqlite3_column_int64(stmt, 1);
		v[n].rule = store_db_strdup(stmt, 0);
		v[n].value = value > 0 ? (uint64_t)value : 0;
		n++;
	}
	int ret = 0;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = store_db_fail(r->db, err, "limit-overrides");
	else if (!owner)
		ret = err_set(err, STORE_ENOTFOUND, "no %s %s", limit_scopes[scope].what, norm);
	store_stmt_release(stmt);
	if (ret < 0) {
		store_limit_overrides_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

void
store_limit_overrides_free(struct store_limit_override **vp, size_t n)
{
	struct store_limit_override *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].rule);
	x_free(vp);
}
