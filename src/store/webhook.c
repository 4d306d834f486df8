/* Webhooks (migration 7): endpoints with their signing secret, the event types they want and an
 * optional domain scope, and the durable delivery rows the sender (events/webhook.c) works
 * through. Deliveries are created by the event fan-out (event.c). The sender claims due rows
 * ('pending' → 'sending') in one write, POSTs them, and records each attempt together with the
 * delivery's new state in one write; at start-up the rows left 'sending' by a crash go back to
 * 'pending'. Types are kept as ",a,b," so that the fan-out matches one with instr(); the API
 * sees "a,b". */
#include "store_private.h"

#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define WEBHOOK_URL_MAX      2048
#define WEBHOOK_SECRET_MAX   256
#define WEBHOOK_TYPES_MAX    1024 /* the stored ",a,b," form */
#define WEBHOOK_ERROR_MAX    1024 /* an attempt's error text, cut at a UTF-8 boundary */
#define WEBHOOK_CLAIM_MAX    1000
#define WEBHOOK_LIST_MAX     1000
#define WEBHOOK_ATTEMPTS_MAX 100 /* attempts listed per delivery (newest) */

#define WEBHOOK_COLS                                                                               \
	"SELECT w.id, w.url, w.secret, w.types, d.name, w.created FROM webhooks w"                 \
	" LEFT JOIN domains d ON d.id = w.domain_id"

/* Printable text without control bytes, 1..max bytes. */
static bool
webhook_text_ok(const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max + 1) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* "a, b" → ",a,b," into out; NULL or "" → "". EINVAL for a bad or empty type. */
static int
webhook_types_pack(const char *in, char *out, size_t cap, struct err *err)
{
	out[0] = '\0';
	if (in == NULL || in[0] == '\0')
		return 0;
	size_t len = 0;
	const char *p = in;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *e = p;
		while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		size_t n = (size_t)(e - p);
		char type[STORE_EVENT_TYPE_MAX + 1];
		if (n == 0 || n > STORE_EVENT_TYPE_MAX)
			return err_set(err, STORE_EINVAL, "bad webhook event type list");
		memcpy(type, p, n);
		type[n] = '\0';
		if (!store_event_type_ok(type))
			return err_set(err, STORE_EINVAL, "bad webhook event type %s", type);
		if (len + n + 2 >= cap)
			return err_set(err, STORE_EINVAL, "webhook event type list too long");
		out[len++] = ',';
		memcpy(out + len, type, n);
		len += n;
		p = e;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
			return err_set(err, STORE_EINVAL, "bad webhook event type list");
		p++;
	}
	out[len++] = ',';
	out[len] = '\0';
	return 0;
}

/* ",a,b," → "a,b" (heap). */
static char *
webhook_types_unpack(sqlite3_stmt *stmt, int col)
{
	const char *s = (const char *)sqlite3_column_text(stmt, col);
	size_t n = s ? strlen(s) : 0;
	if (n < 2)
		return xstrdup("");
	return xstrndup(s + 1, n - 2);
}

static void
webhook_from_row(sqlite3_stmt *stmt, struct store_webhook *w, bool secret)
{
	w->id = sqlite3_column_int64(stmt, 0);
	w->url = store_db_strdup(stmt, 1);
	w->secret = secret ? store_db_strdup(stmt, 2) : NULL;
	w->types = webhook_types_unpack(stmt, 3);
	w->domain = store_db_strdup(stmt, 4);
	w->created = sqlite3_column_int64(stmt, 5);
}

/* A listed webhook: without its secret. */
static void
webhook_list_row(sqlite3_stmt *stmt, void *elem)
{
	webhook_from_row(stmt, elem, false);
}

/* ---- management ---- */

struct webhook_add_args {
	const char *url, *secret, *types, *domain; /* types packed, domain normalised or NULL */
	int64_t now, id;
};

static int
webhook_add_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct webhook_add_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t domain_id = 0;
	if (a->domain != NULL) {
		int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1",
		                               a->domain, NULL, &domain_id, err);
		if (found < 0)
			return -1;
		if (!found)
			return err_set(err, STORE_ENOTFOUND, "no domain %s", a->domain);
	}
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "INSERT INTO webhooks (url, secret, types, domain_id, created)"
	                     " VALUES (?1, ?2, ?3, nullif(?4, 0), ?5)",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, a->secret, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, a->types, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, domain_id);
	sqlite3_bind_int64(stmt, 5, a->now);
	int rc = store_db_step_done(db, stmt, err, "webhook-add");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	a->id = sqlite3_last_insert_rowid(db);
	return 0;
}

int
store_webhook_add(struct store *st, const char *url, const char *secret, const char *types,
                  const char *domain, int64_t now, int64_t *id_r, struct err *err)
{
	if (!webhook_text_ok(url, WEBHOOK_URL_MAX))
		return err_set(err, STORE_EINVAL, "bad webhook URL");
	if (!webhook_text_ok(secret, WEBHOOK_SECRET_MAX))
		return err_set(err, STORE_EINVAL, "bad webhook secret");
	char packed[WEBHOOK_TYPES_MAX + 1];
	if (webhook_types_pack(types, packed, sizeof packed, err) < 0)
		return -1;
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain != NULL && store_name_domain(domain, norm, err) < 0)
		return -1;
	struct webhook_add_args a = {url, secret, packed, domain ? norm : NULL, now, 0};
	if (store_write(st, webhook_add_fn, &a, err) < 0)
		return -1;
	if (id_r != NULL)
		*id_r = a.id;
	return 0;
}

int
store_webhook_get(struct store *st, int64_t id, struct store_webhook *w_r, struct err *err)
{
	memset(w_r, 0, sizeof *w_r);
	sqlite3 *db = store_db_reader(st, err);
	sqlite3_stmt *stmt;
	if (db == NULL || store_db_prepare(db, WEBHOOK_COLS " WHERE w.id = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW)
		webhook_from_row(stmt, w_r, true);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, STORE_ENOTFOUND, "no webhook %lld", (long long)id);
	else
		ret = store_db_fail(db, err, "webhook-get");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_webhook_list(struct store *st, const char *domain, struct store_webhook **v_r, size_t *n_r,
                   struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain != NULL && store_name_domain(domain, norm, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	sqlite3_stmt *stmt;
	if (db == NULL ||
	    store_db_prepare(db, WEBHOOK_COLS " WHERE ?1 IS NULL OR d.name = ?1 ORDER BY w.id",
	                     &stmt, err) < 0)
		return -1;
	if (domain != NULL)
		sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	void *p;
	size_t n;
	int rc = store_stmt_collect(stmt, sizeof(struct store_webhook), webhook_list_row, &p, &n);
	struct store_webhook *v = p;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		store_webhook_list_free(&v, n);
		return store_db_fail(db, err, "webhook-list");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

static int
webhook_remove_fn(struct store_tx *tx, void *arg, struct err *err)
{
	int64_t id = *(int64_t *)arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	/* The deliveries and their attempts go with it (ON DELETE CASCADE). */
	if (store_db_prepare(db, "DELETE FROM webhooks WHERE id = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	int rc = store_db_step_done(db, stmt, err, "webhook-remove");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	if (sqlite3_changes(db) == 0)
		return err_set(err, STORE_ENOTFOUND, "no webhook %lld", (long long)id);
	return 0;
}

int
store_webhook_remove(struct store *st, int64_t id, struct err *err)
{
	return store_write(st, webhook_remove_fn, &id, err);
}

void
store_webhook_deinit(struct store_webhook *w)
{
	if (w == NULL)
		return;
	x_free(&w->url);
	x_free(&w->secret);
	x_free(&w->types);
	x_free(&w->domain);
}

void
store_webhook_list_free(struct store_webhook **vp, size_t n)
{
	if (vp == NULL || *vp == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_webhook_deinit(&(*vp)[i]);
	x_free(vp);
}

/* ---- the sender's side ---- */

struct webhook_claim_args {
	int64_t now;
	size_t max;
	struct store_webhook_job *v;
	size_t n;
};

static int
webhook_id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Loads the job of claimed delivery id into j; 0 when its event is gone (the delivery is then
 * marked failed: there is nothing to send). */
static int
webhook_job_load(struct store_tx *tx, int64_t id, struct store_webhook_job *j, bool *ok_r,
                 struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	*ok_r = false;
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_WEBHOOK_JOB, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 5) != SQLITE_NULL) {
		memset(j, 0, sizeof *j);
		j->delivery_id = id;
		j->webhook_id = sqlite3_column_int64(stmt, 0);
		j->attempts = (uint32_t)sqlite3_column_int64(stmt, 1);
		j->url = store_db_strdup(stmt, 2);
		j->secret = store_db_strdup(stmt, 3);
		j->event_id = sqlite3_column_int64(stmt, 4);
		store_event_row_load(stmt, 5, &j->event);
		*ok_r = true;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_stmt_release(stmt);
		return store_db_fail(db, err, "webhook-job");
	}
	store_stmt_release(stmt);
	if (*ok_r || rc == SQLITE_DONE)
		return 0;
	log_warn("store webhook delivery %lld: event gone, marked failed", (long long)id);
	stmt = store_tx_stmt(tx, STMT_WEBHOOK_FAIL, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	return store_stmt_done(db, stmt, err, "webhook-fail");
}

static int
webhook_claim_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct webhook_claim_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_WEBHOOK_CLAIM, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->now);
	sqlite3_bind_int64(stmt, 2, (int64_t)a->max);
	int64_t *ids = xcalloc(a->max, sizeof *ids);
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		if (n < a->max)
			ids[n++] = sqlite3_column_int64(stmt, 0);
	store_stmt_release(stmt);
	if (rc != SQLITE_DONE) {
		free(ids);
		return store_db_fail(db, err, "webhook-claim");
	}
	/* RETURNING gives no order; hand them out oldest first. */
	qsort(ids, n, sizeof *ids, webhook_id_cmp);
	a->v = n ? xcalloc(n, sizeof *a->v) : NULL;
	a->n = 0;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		bool ok;
		ret = webhook_job_load(tx, ids[i], &a->v[a->n], &ok, err);
		if (ret == 0 && ok)
			a->n++;
	}
	free(ids);
	if (ret < 0)
		store_webhook_jobs_free(&a->v, a->n);
	return ret;
}

int
store_webhook_claim(struct store *st, int64_t now, size_t max, struct store_webhook_job **v_r,
                    size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	if (max == 0)
		return 0;
	struct webhook_claim_args a = {now, max > WEBHOOK_CLAIM_MAX ? WEBHOOK_CLAIM_MAX : max, NULL,
	                               0};
	if (store_write(st, webhook_claim_fn, &a, err) < 0) {
		store_webhook_jobs_free(&a.v, a.n);
		return -1;
	}
	*v_r = a.v;
	*n_r = a.n;
	return 0;
}

void
store_webhook_jobs_free(struct store_webhook_job **vp, size_t n)
{
	if (vp == NULL || *vp == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		struct store_webhook_job *j = &(*vp)[i];
		free(j->url);
		free(j->secret);
		store_event_row_deinit(&j->event);
	}
	x_free(vp);
}

static int
webhook_recover_fn(struct store_tx *tx, void *arg, struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "UPDATE webhook_deliveries SET status = 'pending', next_attempt = ?1"
	                     " WHERE status IN ('pending', 'sending') AND status = 'sending'",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, *(int64_t *)arg);
	int rc = store_db_step_done(db, stmt, err, "webhook-recover");
	sqlite3_finalize(stmt);
	return rc;
}

int
store_webhook_recover(struct store *st, int64_t now, struct err *err)
{
	return store_write(st, webhook_recover_fn, &now, err);
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t
webhook_cut(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

struct webhook_record_args {
	const struct store_webhook_result *r;
	int64_t now;
};

/* A delivery removed meanwhile (its webhook was deleted during the POST) is skipped. */
static int
webhook_record_fn(struct store_tx *tx, void *arg, struct err *err)
{
	static const char *const status[] = {
	    [STORE_WEBHOOK_DELIVERED] = "delivered",
	    [STORE_WEBHOOK_RETRY] = "pending",
	    [STORE_WEBHOOK_FAILED] = "failed",
	};
	struct webhook_record_args *a = arg;
	const struct store_webhook_result *r = a->r;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_WEBHOOK_UPDATE, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, r->delivery_id);
	sqlite3_bind_text(stmt, 2, status[r->outcome], -1, SQLITE_STATIC);
	if (r->outcome == STORE_WEBHOOK_RETRY)
		sqlite3_bind_int64(stmt, 3, r->next_attempt);
	if (store_stmt_done(db, stmt, err, "webhook-update") < 0)
		return -1;
	if (sqlite3_changes(db) == 0)
		return 0;
	stmt = store_tx_stmt(tx, STMT_WEBHOOK_ATTEMPT, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, r->delivery_id);
	sqlite3_bind_int64(stmt, 2, a->now);
	sqlite3_bind_int(stmt, 3, r->status_code);
	if (r->error != NULL)
		sqlite3_bind_text(stmt, 4, r->error, (int)webhook_cut(r->error, WEBHOOK_ERROR_MAX),
		                  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, r->duration_ms > 0 ? r->duration_ms : 0);
	return store_stmt_done(db, stmt, err, "webhook-attempt");
}

int
store_webhook_record(struct store *st, const struct store_webhook_result *r, int64_t now,
                     struct err *err)
{
	if (r == NULL || (unsigned)r->outcome > STORE_WEBHOOK_FAILED)
		return err_set(err, STORE_EINVAL, "bad webhook outcome");
	if (r->status_code < 0 || r->status_code > 999)
		return err_set(err, STORE_EINVAL, "bad HTTP status %d", r->status_code);
	struct webhook_record_args a = {r, now};
	return store_write(st, webhook_record_fn, &a, err);
}

int
store_webhook_next_due(struct store *st, int64_t *next_r, struct err *err)
{
	*next_r = 0;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	int64_t v = 0;
	int found =
	    store_db_query_int(db,
	                       "SELECT coalesce(min(next_attempt), 0) FROM webhook_deliveries"
	                       " WHERE status IN ('pending', 'sending') AND status = 'pending'",
	                       NULL, NULL, &v, err);
	if (found < 0)
		return -1;
	*next_r = v;
	return 0;
}

/* ---- delivery history (API) ---- */

static void
webhook_try_row(sqlite3_stmt *stmt, void *elem)
{
	struct store_webhook_attempt *t = elem;
	t->at = sqlite3_column_int64(stmt, 0);
	t->status_code = sqlite3_column_int(stmt, 1);
	t->error = store_db_strdup(stmt, 2);
	t->duration_ms = sqlite3_column_int64(stmt, 3);
}

static int
webhook_tries_load(sqlite3 *db, sqlite3_stmt *stmt, struct store_webhook_delivery *d,
                   struct err *err)
{
	sqlite3_bind_int64(stmt, 1, d->id);
	sqlite3_bind_int(stmt, 2, WEBHOOK_ATTEMPTS_MAX);
	void *p;
	int rc = store_stmt_collect(stmt, sizeof(struct store_webhook_attempt), webhook_try_row, &p,
	                            &d->n_tries);
	d->tries = p;
	store_stmt_release(stmt);
	return rc == SQLITE_DONE ? 0 : store_db_fail(db, err, "webhook-attempts");
}

static int
webhook_deliveries_read(sqlite3 *db, int64_t webhook_id, int64_t before_id, size_t limit,
                        struct store_webhook_delivery **v_r, size_t *n_r, struct err *err)
{
	sqlite3_stmt *stmt, *tries;
	if (store_db_prepare(db, "SELECT 1 FROM webhooks WHERE id = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, webhook_id);
	int rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_DONE)
		return err_set(err, STORE_ENOTFOUND, "no webhook %lld", (long long)webhook_id);
	if (rc != SQLITE_ROW)
		return store_db_fail(db, err, "webhook-exists");
	if (store_db_prepare(db,
	                     "SELECT wd.id, wd.event_id, e.type, wd.status, wd.attempts,"
	                     " wd.next_attempt, wd.created FROM webhook_deliveries wd"
	                     " LEFT JOIN events e ON e.id = wd.event_id WHERE wd.webhook_id = ?1"
	                     " AND (?2 <= 0 OR wd.id < ?2) ORDER BY wd.id DESC LIMIT ?3",
	                     &stmt, err) < 0)
		return -1;
	if (store_db_prepare(db,
	                     "SELECT at, status_code, error, duration_ms FROM webhook_attempts"
	                     " WHERE delivery_id = ?1 ORDER BY id DESC LIMIT ?2",
	                     &tries, err) < 0) {
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_bind_int64(stmt, 1, webhook_id);
	sqlite3_bind_int64(stmt, 2, before_id);
	sqlite3_bind_int64(stmt, 3, (int64_t)limit);
	struct store_webhook_delivery *v = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_webhook_delivery *d = &v[n++];
		memset(d, 0, sizeof *d);
		d->id = sqlite3_column_int64(stmt, 0);
		d->event_id = sqlite3_column_int64(stmt, 1);
		d->event_type = store_db_strdup(stmt, 2);
		if (d->event_type == NULL)
			d->event_type = xstrdup("");
		d->status = store_db_strdup(stmt, 3);
		d->attempts = (uint32_t)sqlite3_column_int64(stmt, 4);
		d->next_attempt = sqlite3_column_int64(stmt, 5);
		d->created = sqlite3_column_int64(stmt, 6);
		if (webhook_tries_load(db, tries, d, err) < 0) {
			ret = -1;
			break;
		}
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_fail(db, err, "webhook-deliveries");
	sqlite3_finalize(stmt);
	sqlite3_finalize(tries);
	if (ret < 0) {
		store_webhook_deliveries_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

int
store_webhook_deliveries(struct store *st, int64_t webhook_id, int64_t before_id, size_t limit,
                         struct store_webhook_delivery **v_r, size_t *n_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	if (limit == 0 || limit > WEBHOOK_LIST_MAX)
		limit = WEBHOOK_LIST_MAX;
	sqlite3 *db = store_db_reader(st, err);
	/* One snapshot: the deliveries and their attempts agree. */
	if (db == NULL || store_db_read_begin(db, err) < 0)
		return -1;
	int ret = webhook_deliveries_read(db, webhook_id, before_id, limit, v_r, n_r, err);
	store_db_read_end(db);
	return ret;
}

void
store_webhook_deliveries_free(struct store_webhook_delivery **vp, size_t n)
{
	if (vp == NULL || *vp == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		struct store_webhook_delivery *d = &(*vp)[i];
		free(d->event_type);
		free(d->status);
		for (size_t k = 0; k < d->n_tries; k++)
			free(d->tries[k].error);
		free(d->tries);
	}
	x_free(vp);
}
