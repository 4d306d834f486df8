/* Suppression list and soft-bounce counters (migration 7, issue 7): per sending domain, the
 * addresses we no longer send to (hard bounces, repeated soft bounces, complaints, manual
 * entries), and the consecutive soft bounces of each address that lead there. Addresses are
 * folded (store_suppress_fold) before they reach SQL, so "Bob+news@Example.COM" and
 * "bob@example.com" are one entry. Both tables belong to their domain and go with it through
 * the foreign key. store_suppress_check runs for every recipient of every send and
 * store_bounce_reset after every delivery: both use cached statements. */
#include "store_private.h"

#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define SUPPRESS_SOURCE_MAX 4096 /* longer sources (multi-line replies) are cut */

static const char *const suppress_reasons[] = {"hard_bounce", "soft_bounces", "complaint",
                                               "manual"};

struct suppress_args {
	const char *domain;  /* normalised */
	const char *address; /* folded */
	const char *reason;
	const char *source;
	int source_len;
	int64_t now;
	bool added;     /* add */
	uint32_t count; /* soft */
};

/* The local part starts at 0 and ends at the last '@' (a quoted local part may hold one). A
 * separator at the very start is kept: the local part would be empty without it. */
void
store_suppress_fold(const char *address, char sep, char *out, size_t n)
{
	if (n == 0)
		return;
	const char *at = strrchr(address, '@');
	const char *cut = NULL; /* first separator of the local part */
	if (sep != '\0' && at != NULL) {
		const char *p = memchr(address, sep, (size_t)(at - address));
		if (p != NULL && p != address)
			cut = p;
	}
	size_t o = 0;
	for (const char *p = address; *p != '\0' && o + 1 < n; p++) {
		if (cut != NULL && p >= cut && p < at)
			continue;
		char c = *p;
		out[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[o] = '\0';
}

/* Normalises domain into dom and folds address into addr; EINVAL for what cannot be an
 * address (empty, no '@' between local part and domain, control characters, too long). */
static int
suppress_prepare(const char *domain, const char *address, char sep, char dom[STORE_DOMAIN_MAX + 1],
                 char addr[STORE_ADDR_MAX + 2], struct err *err)
{
	if (domain == NULL)
		return err_set(err, STORE_EINVAL, "domain missing");
	if (store_name_domain(domain, dom, err) < 0)
		return -1;
	if (address == NULL)
		return err_set(err, STORE_EINVAL, "address missing");
	store_suppress_fold(address, sep, addr, STORE_ADDR_MAX + 2);
	size_t len = strlen(addr);
	if (len > STORE_ADDR_MAX)
		return err_set(err, STORE_EINVAL, "address longer than %d bytes", STORE_ADDR_MAX);
	const char *at = strrchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0')
		return err_set(err, STORE_EINVAL, "bad address");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)addr[i] < 0x20 || addr[i] == 0x7f)
			return err_set(err, STORE_EINVAL, "address has control characters");
	return 0;
}

/* Inside tx: the id of domain (normalised); ENOTFOUND. */
static int
suppress_domain_id(sqlite3 *db, const char *domain, int64_t *id_r, struct err *err)
{
	int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", domain, NULL,
	                               id_r, err);
	if (found < 0)
		return -1;
	if (!found)
		return err_set(err, STORE_ENOTFOUND, "no domain %s", domain);
	return 0;
}

static int
suppress_add_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct suppress_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t domain_id;
	if (suppress_domain_id(db, a->domain, &domain_id, err) < 0)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db,
	        "INSERT INTO suppressions (domain_id, address, reason, source, created)"
	        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (domain_id, address) DO NOTHING",
	        &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, domain_id);
	sqlite3_bind_text(stmt, 2, a->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, a->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, a->source, a->source_len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, a->now);
	int rc = store_db_step_done(db, stmt, err, "suppress-add");
	sqlite3_finalize(stmt);
	if (rc == 0)
		a->added = sqlite3_changes(db) > 0;
	return rc;
}

int
store_suppress_add(struct store *st, const char *domain, const char *address, char sep,
                   const char *reason, const char *source, int64_t now, bool *added_r,
                   struct err *err)
{
	if (added_r)
		*added_r = false;
	char dom[STORE_DOMAIN_MAX + 1], addr[STORE_ADDR_MAX + 2];
	if (suppress_prepare(domain, address, sep, dom, addr, err) < 0)
		return -1;
	bool known = false;
	for (size_t i = 0; reason && i < sizeof suppress_reasons / sizeof suppress_reasons[0]; i++)
		known |= strcmp(reason, suppress_reasons[i]) == 0;
	if (!known)
		return err_set(err, STORE_EINVAL, "bad suppression reason");
	if (source == NULL)
		source = "";
	size_t slen = strnlen(source, SUPPRESS_SOURCE_MAX + 1);
	if (slen > SUPPRESS_SOURCE_MAX) {
		slen = SUPPRESS_SOURCE_MAX;
		while (slen > 0 && ((unsigned char)source[slen] & 0xc0) == 0x80)
			slen--; /* never cut a UTF-8 sequence */
	}
	struct suppress_args a = {.domain = dom,
	                          .address = addr,
	                          .reason = reason,
	                          .source = source,
	                          .source_len = (int)slen,
	                          .now = now};
	if (store_write(st, suppress_add_fn, &a, err) < 0)
		return -1;
	if (a.added)
		log_info("store - suppress-add domain=%s rcpt=<%s> reason=%s", dom, addr, reason);
	if (added_r)
		*added_r = a.added;
	return 0;
}

static void
suppression_from_row(sqlite3_stmt *stmt, struct store_suppression *s)
{
	s->id = sqlite3_column_int64(stmt, 0);
	s->domain = store_db_strdup(stmt, 1);
	s->address = store_db_strdup(stmt, 2);
	s->reason = store_db_strdup(stmt, 3);
	s->source = store_db_strdup(stmt, 4);
	s->created = sqlite3_column_int64(stmt, 5);
}

static void
suppression_row(sqlite3_stmt *stmt, void *elem)
{
	suppression_from_row(stmt, elem);
}

int
store_suppress_check(struct store *st, const char *domain, const char *address, char sep,
                     struct store_suppression *s_r, struct err *err)
{
	if (s_r)
		memset(s_r, 0, sizeof *s_r);
	char dom[STORE_DOMAIN_MAX + 1], addr[STORE_ADDR_MAX + 2];
	if (suppress_prepare(domain, address, sep, dom, addr, err) < 0)
		return -1;
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_SUPPRESS_CHECK, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, dom, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, addr, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt), ret;
	if (rc == SQLITE_ROW) {
		/* the domain exists; s.id is NULL when the address is not listed */
		ret = sqlite3_column_type(stmt, 0) != SQLITE_NULL;
		if (ret && s_r)
			suppression_from_row(stmt, s_r);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, STORE_ENOTFOUND, "no domain %s", dom);
	} else {
		ret = store_db_fail(r->db, err, "suppress-check");
	}
	store_stmt_release(stmt);
	return ret;
}

/* domain NULL lists every domain's entries (ordered by address, then domain). */
int
store_suppress_list(struct store *st, const char *domain, struct store_suppression **v_r,
                    size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char dom[STORE_DOMAIN_MAX + 1];
	if (domain && store_name_domain(domain, dom, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL || store_db_read_begin(db, err) < 0)
		return -1;
	int ret = -1;
	struct store_suppression *v = NULL;
	size_t n = 0;
	sqlite3_stmt *stmt = NULL;
	if (domain) {
		int64_t id;
		int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", dom,
		                               NULL, &id, err);
		if (found < 0)
			goto out;
		if (!found) {
			err_set(err, STORE_ENOTFOUND, "no domain %s", dom);
			goto out;
		}
	}
	if (store_db_prepare(db,
	                     "SELECT s.id, d.name, s.address, s.reason, s.source, s.created"
	                     " FROM suppressions s JOIN domains d ON d.id = s.domain_id"
	                     " WHERE ?1 IS NULL OR d.name = ?1 ORDER BY s.address, d.name",
	                     &stmt, err) < 0)
		goto out;
	if (domain)
		sqlite3_bind_text(stmt, 1, dom, -1, SQLITE_STATIC);
	void *p;
	int rc =
	    store_stmt_collect(stmt, sizeof(struct store_suppression), suppression_row, &p, &n);
	v = p;
	if (rc != SQLITE_DONE) {
		store_db_fail(db, err, "suppress-list");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(stmt);
	store_db_read_end(db);
	if (ret < 0) {
		store_suppression_list_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

/* The address's soft-bounce count goes too: a removed entry starts over. */
static int
suppress_remove_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct suppress_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t domain_id;
	if (suppress_domain_id(db, a->domain, &domain_id, err) < 0)
		return -1;
	static const char *const sql[] = {
	    "DELETE FROM suppressions WHERE domain_id = ?1 AND address = ?2",
	    "DELETE FROM bounce_counts WHERE domain_id = ?1 AND address = ?2",
	};
	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *stmt;
		if (store_db_prepare(db, sql[i], &stmt, err) < 0)
			return -1;
		sqlite3_bind_int64(stmt, 1, domain_id);
		sqlite3_bind_text(stmt, 2, a->address, -1, SQLITE_STATIC);
		int rc = store_db_step_done(db, stmt, err, "suppress-remove");
		sqlite3_finalize(stmt);
		if (rc < 0)
			return -1;
		if (i == 0 && sqlite3_changes(db) == 0)
			return err_set(err, STORE_ENOTFOUND, "%s is not suppressed for %s",
			               a->address, a->domain);
	}
	return 0;
}

int
store_suppress_remove(struct store *st, const char *domain, const char *address, char sep,
                      struct err *err)
{
	char dom[STORE_DOMAIN_MAX + 1], addr[STORE_ADDR_MAX + 2];
	if (suppress_prepare(domain, address, sep, dom, addr, err) < 0)
		return -1;
	struct suppress_args a = {.domain = dom, .address = addr};
	if (store_write(st, suppress_remove_fn, &a, err) < 0)
		return -1;
	log_info("store - suppress-remove domain=%s rcpt=<%s>", dom, addr);
	return 0;
}

void
store_suppression_deinit(struct store_suppression *s)
{
	if (s == NULL)
		return;
	x_free(&s->domain);
	x_free(&s->address);
	x_free(&s->reason);
	x_free(&s->source);
}

void
store_suppression_list_free(struct store_suppression **vp, size_t n)
{
	struct store_suppression *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_suppression_deinit(&v[i]);
	x_free(vp);
}

/* The count saturates at UINT32_MAX. */
static int
bounce_soft_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct suppress_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t domain_id;
	if (suppress_domain_id(db, a->domain, &domain_id, err) < 0)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db,
	        "INSERT INTO bounce_counts (domain_id, address, soft) VALUES (?1, ?2, 1)"
	        " ON CONFLICT (domain_id, address)"
	        " DO UPDATE SET soft = min(soft + 1, 4294967295) RETURNING soft",
	        &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, domain_id);
	sqlite3_bind_text(stmt, 2, a->address, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt), ret = 0;
	if (rc == SQLITE_ROW) {
		a->count = (uint32_t)sqlite3_column_int64(stmt, 0);
		rc = sqlite3_step(stmt); /* runs the statement to its end */
	}
	if (rc != SQLITE_DONE)
		ret = store_db_fail(db, err, "bounce-soft");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_bounce_soft(struct store *st, const char *domain, const char *address, char sep,
                  uint32_t *count_r, struct err *err)
{
	if (count_r)
		*count_r = 0;
	char dom[STORE_DOMAIN_MAX + 1], addr[STORE_ADDR_MAX + 2];
	if (suppress_prepare(domain, address, sep, dom, addr, err) < 0)
		return -1;
	struct suppress_args a = {.domain = dom, .address = addr};
	if (store_write(st, bounce_soft_fn, &a, err) < 0)
		return -1;
	if (count_r)
		*count_r = a.count;
	return 0;
}

static int
bounce_reset_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct suppress_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_DOMAIN_EXISTS, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, a->domain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	store_stmt_release(stmt);
	if (rc == SQLITE_DONE)
		return err_set(err, STORE_ENOTFOUND, "no domain %s", a->domain);
	if (rc != SQLITE_ROW)
		return store_db_fail(db, err, "bounce-reset");
	stmt = store_tx_stmt(tx, STMT_BOUNCE_RESET, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, a->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, a->address, -1, SQLITE_STATIC);
	return store_stmt_done(db, stmt, err, "bounce-reset");
}

int
store_bounce_reset(struct store *st, const char *domain, const char *address, char sep,
                   struct err *err)
{
	char dom[STORE_DOMAIN_MAX + 1], addr[STORE_ADDR_MAX + 2];
	if (suppress_prepare(domain, address, sep, dom, addr, err) < 0)
		return -1;
	struct suppress_args a = {.domain = dom, .address = addr};
	return store_write(st, bounce_reset_fn, &a, err);
}
