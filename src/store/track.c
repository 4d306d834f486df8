/* Open and click tracking data (migration 7, issue 7): server secrets (the key that signs
 * tracking tokens), the links of each tracked message by index (a click token may only lead to
 * a URL the message contained), and each domain's tracking defaults. Secrets are created on
 * first use inside one write, so concurrent first callers (or processes) agree on one value.
 * store_track_link runs for every click and store_secret may run per request: both read through
 * cached statements. */
#include "store_private.h"

#include <string.h>

#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define SECRET_NAME_MAX 64
#define SECRET_MAX      1024 /* bytes of one secret */
#define TRACK_LINKS_MAX 10000
/* RFC 9110 §4.1 recommends supporting URIs of at least 8000 octets. */
#define TRACK_URL_MAX 8192

struct secret_args {
	const char *name;
	const unsigned char *fresh; /* the value to store when there is none */
	unsigned char *out;
	size_t n;
	bool created;
};

struct links_args {
	const char *message;
	const char *const *urls;
	size_t n;
};

struct tracking_args {
	const char *domain; /* normalised */
	bool opens, clicks;
};

static int
secret_name_check(const char *name, struct err *err)
{
	size_t len = name ? strnlen(name, SECRET_NAME_MAX + 1) : 0;
	if (len == 0 || len > SECRET_NAME_MAX)
		return err_set(err, STORE_EINVAL, "secret name must be 1 to %d bytes",
		               SECRET_NAME_MAX);
	return 0;
}

/* Copies column 0 of a secrets row into out; EINVAL when it is not n bytes long. */
static int
secret_copy(sqlite3_stmt *stmt, const char *name, unsigned char *out, size_t n, struct err *err)
{
	int len = sqlite3_column_bytes(stmt, 0);
	const void *p = sqlite3_column_blob(stmt, 0);
	if (p == NULL || len < 0 || (size_t)len != n)
		return err_set(err, STORE_EINVAL, "secret %s has %d bytes, not %zu", name, len, n);
	memcpy(out, p, n);
	return 0;
}

/* 1 found (out filled), 0 absent, -1 + err. */
static int
secret_read(struct store *st, const char *name, unsigned char *out, size_t n, struct err *err)
{
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_SECRET_GET, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt), ret = 0;
	if (rc == SQLITE_ROW)
		ret = secret_copy(stmt, name, out, n, err) < 0 ? -1 : 1;
	else if (rc != SQLITE_DONE)
		ret = store_db_fail(r->db, err, "secret-get");
	store_stmt_release(stmt);
	return ret;
}

/* INSERT OR IGNORE, then read back what is there: the first writer's value wins. */
static int
secret_create_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct secret_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 2, a->fresh, (int)a->n, SQLITE_STATIC);
	int rc = store_db_step_done(db, stmt, err, "secret-add");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	a->created = sqlite3_changes(db) > 0;
	stmt = store_tx_stmt(tx, STMT_SECRET_GET, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, a->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	int ret;
	if (rc == SQLITE_ROW)
		ret = secret_copy(stmt, a->name, a->out, a->n, err);
	else if (rc == SQLITE_DONE) /* cannot happen: inserted or present above */
		ret = err_set(err, STORE_EINTERNAL, "secret %s vanished", a->name);
	else
		ret = store_db_fail(db, err, "secret-get");
	store_stmt_release(stmt);
	return ret;
}

int
store_secret(struct store *st, const char *name, unsigned char *out, size_t n, struct err *err)
{
	if (secret_name_check(name, err) < 0)
		return -1;
	if (n == 0 || n > SECRET_MAX)
		return err_set(err, STORE_EINVAL, "secret size must be 1 to %d bytes", SECRET_MAX);
	int found = secret_read(st, name, out, n, err);
	if (found != 0)
		return found < 0 ? -1 : 0;
	unsigned char fresh[SECRET_MAX];
	rand_bytes(fresh, n);
	struct secret_args a = {.name = name, .fresh = fresh, .out = out, .n = n};
	int rc = store_write(st, secret_create_fn, &a, err);
	explicit_bzero(fresh, sizeof fresh);
	if (rc < 0) {
		explicit_bzero(out, n);
		return -1;
	}
	if (a.created)
		log_info("store - secret-create name=%s bytes=%zu", name, n);
	return 0;
}

static int
track_message_check(const char *message, struct err *err)
{
	size_t len = message ? strnlen(message, STORE_API_ID_MAX + 1) : 0;
	if (len == 0 || len > STORE_API_ID_MAX)
		return err_set(err, STORE_EINVAL, "message id must be 1 to %d bytes",
		               STORE_API_ID_MAX);
	return 0;
}

static int
track_links_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct links_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t dummy;
	int found = store_db_query_int(db, "SELECT idx FROM track_links WHERE message = ?1 LIMIT 1",
	                               a->message, NULL, &dummy, err);
	if (found < 0)
		return -1;
	if (found)
		return err_set(err, STORE_EEXIST, "links of %s already stored", a->message);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "INSERT INTO track_links (message, idx, url) VALUES (?1, ?2, ?3)",
	                     &stmt, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < a->n && rc == 0; i++) {
		sqlite3_bind_text(stmt, 1, a->message, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, (int64_t)i);
		sqlite3_bind_text(stmt, 3, a->urls[i], -1, SQLITE_STATIC);
		rc = store_db_step_done(db, stmt, err, "track-links");
	}
	sqlite3_finalize(stmt);
	return rc;
}

/* EEXIST when the message has links already (one message is tracked once); n == 0 stores
 * nothing. */
int
store_track_links_add(struct store *st, const char *message, const char *const *urls, size_t n,
                      struct err *err)
{
	if (track_message_check(message, err) < 0)
		return -1;
	if (n > TRACK_LINKS_MAX)
		return err_set(err, STORE_EINVAL, "more than %d tracked links", TRACK_LINKS_MAX);
	if (n == 0)
		return 0;
	if (urls == NULL)
		return err_set(err, STORE_EINVAL, "links missing");
	for (size_t i = 0; i < n; i++) {
		size_t len = urls[i] ? strnlen(urls[i], TRACK_URL_MAX + 1) : 0;
		if (len == 0 || len > TRACK_URL_MAX)
			return err_set(err, STORE_EINVAL, "tracked link %zu must be 1 to %d bytes",
			               i, TRACK_URL_MAX);
	}
	struct links_args a = {.message = message, .urls = urls, .n = n};
	return store_write(st, track_links_fn, &a, err);
}

int
store_track_link(struct store *st, const char *message, uint32_t idx, char **url_r, struct err *err)
{
	*url_r = NULL;
	if (track_message_check(message, err) < 0)
		return -1;
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_TRACK_LINK, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, message, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, idx);
	int rc = sqlite3_step(stmt), ret = 0;
	if (rc == SQLITE_ROW)
		*url_r = store_db_strdup(stmt, 0);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, STORE_ENOTFOUND, "no link %u of %s", idx, message);
	else
		ret = store_db_fail(r->db, err, "track-link");
	store_stmt_release(stmt);
	if (ret == 0 && *url_r == NULL) /* NOT NULL column; keep the contract anyway */
		*url_r = xstrdup("");
	return ret;
}

int
store_domain_tracking(struct store *st, const char *domain, bool *opens_r, bool *clicks_r,
                      struct err *err)
{
	*opens_r = *clicks_r = false;
	char dom[STORE_DOMAIN_MAX + 1];
	if (domain == NULL)
		return err_set(err, STORE_EINVAL, "domain missing");
	if (store_name_domain(domain, dom, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "SELECT track_opens, track_clicks FROM domains WHERE name = ?1",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, dom, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt), ret = 0;
	if (rc == SQLITE_ROW) {
		*opens_r = sqlite3_column_int64(stmt, 0) != 0;
		*clicks_r = sqlite3_column_int64(stmt, 1) != 0;
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, STORE_ENOTFOUND, "no domain %s", dom);
	} else {
		ret = store_db_fail(db, err, "domain-tracking");
	}
	sqlite3_finalize(stmt);
	return ret;
}

static int
tracking_set_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct tracking_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db, "UPDATE domains SET track_opens = ?2, track_clicks = ?3 WHERE name = ?1", &stmt,
	        err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, a->opens);
	sqlite3_bind_int(stmt, 3, a->clicks);
	int rc = store_db_step_done(db, stmt, err, "domain-set-tracking");
	sqlite3_finalize(stmt);
	if (rc == 0 && sqlite3_changes(db) == 0)
		rc = err_set(err, STORE_ENOTFOUND, "no domain %s", a->domain);
	return rc;
}

int
store_domain_set_tracking(struct store *st, const char *domain, bool opens, bool clicks,
                          struct err *err)
{
	char dom[STORE_DOMAIN_MAX + 1];
	if (domain == NULL)
		return err_set(err, STORE_EINVAL, "domain missing");
	if (store_name_domain(domain, dom, err) < 0)
		return -1;
	struct tracking_args a = {.domain = dom, .opens = opens, .clicks = clicks};
	if (store_write(st, tracking_set_fn, &a, err) < 0)
		return -1;
	log_info("store - domain-tracking domain=%s opens=%d clicks=%d", dom, opens, clicks);
	return 0;
}
