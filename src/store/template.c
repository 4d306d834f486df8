/* Message templates of the REST API (migration 6): per domain and name, with an optional
 * subject, text body and HTML body (tmpl/ renders them). They belong to their domain and are
 * deleted with it through the foreign key. Writes go through store_write; reads use the calling
 * thread's connection. */
#include "store_private.h"

#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define TEMPLATE_NAME_MAX 128
#define TEMPLATE_TEXT_MAX (1024 * 1024) /* subject and each body; the HTTP body limit */

#define TEMPLATE_COLS                                                                              \
	"SELECT t.id, d.name, t.name, t.subject, t.text, t.html, t.created, t.updated"             \
	" FROM templates t JOIN domains d ON d.id = t.domain_id"

struct template_args {
	const struct store_template *t;
	const char *domain; /* normalised */
	const char *name;
	int64_t now;
	bool update;
};

static int
template_name_check(const char *name, struct err *err)
{
	size_t n = name ? strnlen(name, TEMPLATE_NAME_MAX + 1) : 0;
	if (n == 0 || n > TEMPLATE_NAME_MAX)
		return err_set(err, STORE_EINVAL, "template name must be 1 to %d bytes",
		               TEMPLATE_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return err_set(err, STORE_EINVAL, "template name has control characters");
	return 0;
}

static int
template_check(const struct store_template *t, char norm[STORE_DOMAIN_MAX + 1], struct err *err)
{
	if (t == NULL || t->domain == NULL)
		return err_set(err, STORE_EINVAL, "template without domain");
	if (store_name_domain(t->domain, norm, err) < 0 || template_name_check(t->name, err) < 0)
		return -1;
	const char *v[] = {t->subject, t->text, t->html};
	for (size_t i = 0; i < 3; i++)
		if (v[i] != NULL && strnlen(v[i], TEMPLATE_TEXT_MAX + 1) > TEMPLATE_TEXT_MAX)
			return err_set(err, STORE_EINVAL, "template part longer than %d bytes",
			               TEMPLATE_TEXT_MAX);
	return 0;
}

static int
template_write_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct template_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	int64_t domain_id, id;
	int found = store_db_query_int(db, "SELECT id FROM domains WHERE name = ?1", a->domain,
	                               NULL, &domain_id, err);
	if (found < 0)
		return -1;
	if (!found)
		return err_set(err, STORE_ENOTFOUND, "no domain %s", a->domain);
	found = store_db_query_int(db,
	                           "SELECT t.id FROM templates t JOIN domains d ON d.id ="
	                           " t.domain_id WHERE d.name = ?1 AND t.name = ?2",
	                           a->domain, a->name, &id, err);
	if (found < 0)
		return -1;
	if (found && !a->update)
		return err_set(err, STORE_EEXIST, "template %s of %s exists", a->name, a->domain);
	if (!found && a->update)
		return err_set(err, STORE_ENOTFOUND, "no template %s of %s", a->name, a->domain);
	sqlite3_stmt *stmt;
	const char *sql = a->update ? "UPDATE templates SET subject = ?3, text = ?4, html = ?5,"
	                              " updated = ?6 WHERE id = ?1"
	                            : "INSERT INTO templates (domain_id, name, subject, text, html,"
	                              " created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
	if (store_db_prepare(db, sql, &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, a->update ? id : domain_id);
	if (!a->update)
		sqlite3_bind_text(stmt, 2, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, a->t->subject, -1, SQLITE_STATIC); /* NULL binds NULL */
	sqlite3_bind_text(stmt, 4, a->t->text, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, a->t->html, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, a->now);
	int rc = store_db_step_done(db, stmt, err, a->update ? "template-update" : "template-add");
	sqlite3_finalize(stmt);
	return rc;
}

static int
template_write(struct store *st, const struct store_template *t, int64_t now, bool update,
               struct err *err)
{
	char norm[STORE_DOMAIN_MAX + 1];
	if (template_check(t, norm, err) < 0)
		return -1;
	struct template_args a = {
	    .t = t, .domain = norm, .name = t->name, .now = now, .update = update};
	if (store_write(st, template_write_fn, &a, err) < 0)
		return -1;
	log_info("store - template-%s domain=%s", update ? "update" : "add", norm);
	return 0;
}

int
store_template_add(struct store *st, const struct store_template *t, int64_t now, struct err *err)
{
	return template_write(st, t, now, false, err);
}

int
store_template_update(struct store *st, const struct store_template *t, int64_t now,
                      struct err *err)
{
	return template_write(st, t, now, true, err);
}

static void
template_from_row(sqlite3_stmt *stmt, struct store_template *t)
{
	t->id = sqlite3_column_int64(stmt, 0);
	t->domain = store_db_strdup(stmt, 1);
	t->name = store_db_strdup(stmt, 2);
	t->subject = store_db_strdup(stmt, 3);
	t->text = store_db_strdup(stmt, 4);
	t->html = store_db_strdup(stmt, 5);
	t->created = sqlite3_column_int64(stmt, 6);
	t->updated = sqlite3_column_int64(stmt, 7);
}

static void
template_row(sqlite3_stmt *stmt, void *elem)
{
	template_from_row(stmt, elem);
}

int
store_template_get(struct store *st, const char *domain, const char *name,
                   struct store_template *t_r, struct err *err)
{
	memset(t_r, 0, sizeof *t_r);
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain == NULL || store_name_domain(domain, norm, err) < 0)
		return domain ? -1 : err_set(err, STORE_EINVAL, "domain missing");
	if (template_name_check(name, err) < 0)
		return -1;
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, TEMPLATE_COLS " WHERE d.name = ?1 AND t.name = ?2", &stmt, err) <
	    0)
		return -1;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW)
		template_from_row(stmt, t_r);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, STORE_ENOTFOUND, "no template %s of %s", name, norm);
	else
		ret = store_db_fail(db, err, "template-get");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_template_list(struct store *st, const char *domain, struct store_template **v_r, size_t *n_r,
                    struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain == NULL || store_name_domain(domain, norm, err) < 0)
		return domain ? -1 : err_set(err, STORE_EINVAL, "domain missing");
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, TEMPLATE_COLS " WHERE d.name = ?1 ORDER BY t.name", &stmt, err) <
	    0)
		return -1;
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_STATIC);
	void *p;
	size_t n;
	int rc = store_stmt_collect(stmt, sizeof(struct store_template), template_row, &p, &n);
	struct store_template *v = p;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		store_template_list_free(&v, n);
		return store_db_fail(db, err, "template-list");
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

static int
template_remove_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct template_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "DELETE FROM templates WHERE name = ?2 AND domain_id ="
	                     " (SELECT id FROM domains WHERE name = ?1)",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, a->name, -1, SQLITE_STATIC);
	int rc = store_db_step_done(db, stmt, err, "template-remove");
	sqlite3_finalize(stmt);
	if (rc < 0)
		return -1;
	if (sqlite3_changes(db) == 0)
		return err_set(err, STORE_ENOTFOUND, "no template %s of %s", a->name, a->domain);
	return 0;
}

int
store_template_remove(struct store *st, const char *domain, const char *name, struct err *err)
{
	char norm[STORE_DOMAIN_MAX + 1];
	if (domain == NULL || store_name_domain(domain, norm, err) < 0)
		return domain ? -1 : err_set(err, STORE_EINVAL, "domain missing");
	if (template_name_check(name, err) < 0)
		return -1;
	struct template_args a = {.domain = norm, .name = name};
	if (store_write(st, template_remove_fn, &a, err) < 0)
		return -1;
	log_info("store - template-remove domain=%s", norm);
	return 0;
}

void
store_template_deinit(struct store_template *t)
{
	if (t == NULL)
		return;
	x_free(&t->domain);
	x_free(&t->name);
	x_free(&t->subject);
	x_free(&t->text);
	x_free(&t->html);
}

void
store_template_list_free(struct store_template **vp, size_t n)
{
	struct store_template *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_template_deinit(&v[i]);
	x_free(vp);
}
