/* IMAP messages (RFC 9051, CONDSTORE/QRESYNC RFC 7162, UIDPLUS RFC 4315, MOVE RFC 6851): the
 * session's view (UID, flags, MODSEQ, keywords) read from the covering index messages_view, the
 * vanished UIDs, FETCH metadata and byte ranges of header text + body blob read incrementally,
 * and the writes STORE, COPY/MOVE, EXPUNGE and APPEND. Every write is one store_write request
 * that reads the mailbox's UIDNEXT/HIGHESTMODSEQ, hands out UIDs and MODSEQs from them and
 * writes them back (the writer thread is the only writer, so nothing interleaves); the change
 * counters of the touched mailboxes move after the commit. Bodies are never copied: a copy is a
 * new row naming the same blob (the triggers of migration 1 count references and bytes). */
#include "store_private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/xalloc.h"

/* ---- keyword sets ---- */

struct kw {
	const char *p;
	size_t n;
};

/* Splits s at spaces into a heap array (pointers into s). */
static size_t
kw_split(const char *s, struct kw **v_r)
{
	*v_r = NULL;
	if (s == NULL)
		return 0;
	size_t n = 0, cap = 0;
	struct kw *v = NULL;
	while (*s) {
		while (*s == ' ')
			s++;
		size_t len = strcspn(s, " ");
		if (len == 0)
			break;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			v = xrealloc(v, cap * sizeof *v);
		}
		v[n++] = (struct kw){s, len};
		s += len;
	}
	*v_r = v;
	return n;
}

static bool
kw_has(const struct kw *v, size_t n, struct kw k)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].n == k.n && strncasecmp(v[i].p, k.p, k.n) == 0)
			return true;
	return false;
}

/* Appends k to res unless present. */
static void
kw_add(struct kw *res, size_t *n, struct kw k)
{
	if (!kw_has(res, *n, k))
		res[(*n)++] = k;
}

int
store_keywords_apply(const char *cur, enum store_flags_op op, const char *req, char **out_r,
                     bool *changed_r, struct err *err)
{
	*out_r = NULL;
	*changed_r = false;
	struct kw *c, *r;
	size_t nc = kw_split(cur, &c), nr = kw_split(req, &r);
	struct kw *res = xmalloc((nc + nr + 1) * sizeof *res);
	size_t n = 0, ncu = 0;
	struct kw *cu = xmalloc((nc + 1) * sizeof *cu); /* cur without duplicates */
	for (size_t i = 0; i < nc; i++)
		kw_add(cu, &ncu, c[i]);
	switch (op) {
	case STORE_FLAGS_SET:
		for (size_t i = 0; i < nr; i++)
			kw_add(res, &n, r[i]);
		break;
	case STORE_FLAGS_ADD:
		for (size_t i = 0; i < ncu; i++)
			res[n++] = cu[i];
		for (size_t i = 0; i < nr; i++)
			kw_add(res, &n, r[i]);
		break;
	case STORE_FLAGS_REMOVE:
		for (size_t i = 0; i < ncu; i++)
			if (!kw_has(r, nr, cu[i]))
				res[n++] = cu[i];
		break;
	}
	int ret = 0;
	if (n > STORE_KEYWORDS_MAX) {
		ret = err_set(err, STORE_EINVAL, "more than %d keywords", STORE_KEYWORDS_MAX);
		goto out;
	}
	bool changed = n != ncu;
	for (size_t i = 0; i < n && !changed; i++)
		changed = !kw_has(cu, ncu, res[i]);
	size_t total = 1;
	for (size_t i = 0; i < n; i++)
		total += res[i].n + 1;
	char *s = xmalloc(total), *p = s;
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ' ';
		memcpy(p, res[i].p, res[i].n);
		p += res[i].n;
	}
	*p = '\0';
	*out_r = s;
	*changed_r = changed;
out:
	free(c);
	free(r);
	free(cu);
	free(res);
	return ret;
}

/* ---- small helpers ---- */

static void
u32_push(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*v = xrealloc(*v, *cap * sizeof **v);
	}
	(*v)[(*n)++] = x;
}

static void
msg_push(struct store_imap_msg **v, size_t *n, size_t *cap, struct store_imap_msg m)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*v = xrealloc(*v, *cap * sizeof **v);
	}
	(*v)[(*n)++] = m;
}

/* Keywords column → heap string or NULL when none. */
static char *
kw_dup(sqlite3_stmt *stmt, int col)
{
	const unsigned char *s = sqlite3_column_text(stmt, col);
	return s && s[0] ? xstrdup((const char *)s) : NULL;
}

/* A mailbox's counters as the writer reads and writes them back. */
struct mbox_state {
	int64_t id;
	uint32_t uidvalidity;
	int64_t uidnext;
	uint64_t hms;
};

static int
mbox_row(sqlite3 *db, sqlite3_stmt *stmt, struct mbox_state *m, const char *what, struct err *err)
{
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		m->id = sqlite3_column_int64(stmt, 0);
		m->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 1);
		m->uidnext = sqlite3_column_int64(stmt, 2);
		m->hms = (uint64_t)sqlite3_column_int64(stmt, 3);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, STORE_ENOTFOUND, "no mailbox %s", what);
	} else {
		ret = store_db_fail(db, err, "mailbox-state");
	}
	store_stmt_release(stmt);
	return ret;
}

static int
mbox_tx_by_id(struct store_tx *tx, int64_t id, struct mbox_state *m, struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MBOX_BY_ID, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	return mbox_row(store_tx_db(tx), stmt, m, "(by id)", err);
}

static int
mbox_tx_by_name(struct store_tx *tx, int64_t account, const char *name, struct mbox_state *m,
                struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MBOX_BY_NAME, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, account);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	return mbox_row(store_tx_db(tx), stmt, m, name, err);
}

static int
mbox_tx_update(struct store_tx *tx, const struct mbox_state *m, struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MBOX_UPDATE, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, m->id);
	sqlite3_bind_int64(stmt, 2, m->uidnext);
	sqlite3_bind_int64(stmt, 3, (int64_t)m->hms);
	return store_stmt_done(store_tx_db(tx), stmt, err, "mailbox-update");
}

/* The next UID of m (RFC 9051 §2.3.1.1: 32-bit, never reused). */
static int
mbox_next_uid(struct mbox_state *m, uint32_t *uid_r, struct err *err)
{
	if (m->uidnext < 1 || m->uidnext > UINT32_MAX)
		return err_set(err, STORE_EINVAL, "UID space of the mailbox is exhausted");
	*uid_r = (uint32_t)m->uidnext++;
	return 0;
}

/* EOVERQUOTA when account has a quota and used + add exceeds it. */
static int
quota_check(sqlite3 *db, int64_t account, uint64_t add, struct err *err)
{
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "SELECT quota, used FROM accounts WHERE id = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, account);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		uint64_t quota = (uint64_t)sqlite3_column_int64(stmt, 0);
		uint64_t used = (uint64_t)sqlite3_column_int64(stmt, 1);
		if (quota != 0 && (add > quota || used > quota - add))
			ret = err_set(err, STORE_EOVERQUOTA, "quota of %llu bytes exceeded",
			              (unsigned long long)quota);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, STORE_ENOTFOUND, "no account %lld", (long long)account);
	} else {
		ret = store_db_fail(db, err, "quota");
	}
	sqlite3_finalize(stmt);
	return ret;
}

static int
expunged_add(struct store_tx *tx, int64_t mailbox, uint32_t uid, uint64_t modseq, struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_EXPUNGED_ADD, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_int64(stmt, 3, (int64_t)modseq);
	return store_stmt_done(store_tx_db(tx), stmt, err, "expunged-add");
}

static int
msg_delete(struct store_tx *tx, int64_t id, struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MSG_DELETE, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	return store_stmt_done(store_tx_db(tx), stmt, err, "message-delete");
}

/* One row of STMT_IMAP_MSG_GET: 1 found, 0 missing, -1 error. */
struct msg_row {
	int64_t id;
	uint32_t flags;
	char *keywords; /* heap, "" when none */
	uint64_t modseq, size;
};

static int
msg_get(struct store_tx *tx, int64_t mailbox, uint32_t uid, struct msg_row *r, struct err *err)
{
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MSG_GET, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox);
	sqlite3_bind_int64(stmt, 2, uid);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		r->id = sqlite3_column_int64(stmt, 0);
		r->flags = (uint32_t)sqlite3_column_int64(stmt, 1);
		r->keywords = store_db_strdup(stmt, 2);
		if (r->keywords == NULL)
			r->keywords = xstrdup("");
		r->modseq = (uint64_t)sqlite3_column_int64(stmt, 3);
		r->size = (uint64_t)sqlite3_column_int64(stmt, 4);
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = store_db_fail(store_tx_db(tx), err, "message-get");
	}
	store_stmt_release(stmt);
	return ret;
}

/* ---- reads ---- */

int
store_imap_messages(struct store *st, int64_t mailbox, uint64_t changed_since,
                    struct store_imap_msg **v_r, size_t *n_r, uint32_t *uidnext_r,
                    uint64_t *highestmodseq_r, struct err *err)
{
	*v_r = NULL;
	*n_r = 0;
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL || store_reader_begin(r, err) < 0)
		return -1;
	struct store_imap_msg *v = NULL;
	size_t n = 0, cap = 0;
	int ret = -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_IMAP_MBOX_BY_ID, err);
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, mailbox);
	struct mbox_state m;
	if (mbox_row(r->db, stmt, &m, "(by id)", err) < 0)
		goto out;
	stmt = store_reader_stmt(r, changed_since ? STMT_IMAP_MSGS_SINCE : STMT_IMAP_MSGS_ALL, err);
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, mailbox);
	if (changed_since)
		sqlite3_bind_int64(stmt, 2, (int64_t)changed_since);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		msg_push(&v, &n, &cap,
		         (struct store_imap_msg){
		             .uid = (uint32_t)sqlite3_column_int64(stmt, 0),
		             .flags = (uint32_t)sqlite3_column_int64(stmt, 1),
		             .modseq = (uint64_t)sqlite3_column_int64(stmt, 2),
		             .keywords = kw_dup(stmt, 3),
		         });
	store_stmt_release(stmt);
	if (rc != SQLITE_DONE) {
		store_db_fail(r->db, err, "imap-messages");
		goto out;
	}
	*uidnext_r = m.uidnext > UINT32_MAX ? UINT32_MAX : (uint32_t)m.uidnext;
	*highestmodseq_r = m.hms;
	ret = 0;
out:
	store_reader_end(r);
	if (ret < 0) {
		store_imap_msgs_free(&v, n);
		return -1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

void
store_imap_msgs_free(struct store_imap_msg **vp, size_t n)
{
	struct store_imap_msg *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].keywords);
	x_free(vp);
}

int
store_imap_vanished(struct store *st, int64_t mailbox, uint64_t since, uint32_t **uids_r,
                    size_t *n_r, struct err *err)
{
	*uids_r = NULL;
	*n_r = 0;
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_IMAP_VANISHED, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox);
	sqlite3_bind_int64(stmt, 2, since > INT64_MAX ? INT64_MAX : (int64_t)since);
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		u32_push(&v, &n, &cap, (uint32_t)sqlite3_column_int64(stmt, 0));
	store_stmt_release(stmt);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_db_fail(r->db, err, "imap-vanished");
	}
	*uids_r = v;
	*n_r = n;
	return 0;
}

int
store_imap_meta(struct store *st, int64_t mailbox, uint32_t uid, struct store_imap_meta *m_r,
                struct err *err)
{
	memset(m_r, 0, sizeof *m_r);
	buf_init(&m_r->parts, 0);
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_IMAP_META, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox);
	sqlite3_bind_int64(stmt, 2, uid);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		m_r->id = sqlite3_column_int64(stmt, 0);
		m_r->uid = uid;
		m_r->internal_date = sqlite3_column_int64(stmt, 1);
		m_r->size = (uint64_t)sqlite3_column_int64(stmt, 2);
		m_r->header_len = (uint64_t)sqlite3_column_int64(stmt, 3);
		m_r->envelope = store_db_strdup(stmt, 4);
		m_r->body = store_db_strdup(stmt, 5);
		m_r->bodystructure = store_db_strdup(stmt, 6);
		const void *p = sqlite3_column_blob(stmt, 7);
		size_t pn = (size_t)sqlite3_column_bytes(stmt, 7);
		if (p && pn)
			(void)buf_append(&m_r->parts, p, pn); /* max 0: cannot overflow */
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, STORE_ENOTFOUND, "no message %u", uid);
	} else {
		ret = store_db_fail(r->db, err, "imap-meta");
	}
	store_stmt_release(stmt);
	return ret;
}

void
store_imap_meta_deinit(struct store_imap_meta *m)
{
	if (m == NULL)
		return;
	x_free(&m->envelope);
	x_free(&m->body);
	x_free(&m->bodystructure);
	buf_deinit(&m->parts);
}

int
store_imap_read(struct store *st, int64_t id, uint64_t off, uint64_t len, struct buf *out,
                struct err *err)
{
	struct store_reader *r = store_db_reader_get(st, err);
	/* One snapshot for the row and the blob: the blob's rowid cannot be reused meanwhile. */
	if (r == NULL || store_reader_begin(r, err) < 0)
		return -1;
	int ret = -1;
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_IMAP_READ, err);
	if (stmt == NULL)
		goto out;
	sqlite3_bind_int64(stmt, 1, id);
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			err_set(err, STORE_ENOTFOUND, "message %lld is gone", (long long)id);
		else
			store_db_fail(r->db, err, "imap-read");
		store_stmt_release(stmt);
		goto out;
	}
	int64_t rowid = sqlite3_column_int64(stmt, 0);
	uint64_t body_len = (uint64_t)sqlite3_column_int64(stmt, 1);
	const unsigned char *h = sqlite3_column_blob(stmt, 2);
	uint64_t hlen = (uint64_t)sqlite3_column_bytes(stmt, 2);
	rc = store_message_range(r->db, h, hlen, rowid, body_len, off, len, out, err);
	store_stmt_release(stmt);
	if (rc < 0)
		goto out;
	ret = 0;
out:
	store_reader_end(r);
	return ret;
}

/* ---- STORE ---- */

static int
msg_cmp_uid(const void *x, const void *y)
{
	const struct store_imap_msg *a = x, *b = y;
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

struct flags_args {
	int64_t mailbox;
	const uint32_t *uids;
	size_t n;
	enum store_flags_op op;
	uint32_t flags;
	const char *keywords;
	uint64_t unchangedsince;
	struct store_imap_msg *changed;
	size_t n_changed, cap_changed;
	uint32_t *failed;
	size_t n_failed, cap_failed;
};

/* Applies the change to one message; 0 also when it is missing or unchanged. */
static int
flags_one(struct store_tx *tx, struct flags_args *a, struct mbox_state *m, uint32_t uid,
          struct err *err)
{
	struct msg_row row;
	int found = msg_get(tx, a->mailbox, uid, &row, err);
	if (found <= 0)
		return found;
	int ret = 0;
	char *kw = NULL;
	if (a->unchangedsince && row.modseq > a->unchangedsince) {
		u32_push(&a->failed, &a->n_failed, &a->cap_failed, uid);
		goto out;
	}
	uint32_t flags = a->op == STORE_FLAGS_SET   ? a->flags
	                 : a->op == STORE_FLAGS_ADD ? row.flags | a->flags
	                                            : row.flags & ~a->flags;
	bool kw_changed;
	if (store_keywords_apply(row.keywords, a->op, a->keywords, &kw, &kw_changed, err) < 0) {
		ret = -1;
		goto out;
	}
	if (flags == row.flags && !kw_changed)
		goto out; /* RFC 7162 §3.1.3: no change, no new MODSEQ */
	uint64_t modseq = ++m->hms;
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MSG_FLAGS, err);
	if (stmt == NULL) {
		ret = -1;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, row.id);
	sqlite3_bind_int64(stmt, 2, flags);
	sqlite3_bind_text(stmt, 3, kw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, (int64_t)modseq);
	if (store_stmt_done(store_tx_db(tx), stmt, err, "store-flags") < 0) {
		ret = -1;
		goto out;
	}
	msg_push(&a->changed, &a->n_changed, &a->cap_changed,
	         (struct store_imap_msg){
	             .uid = uid, .flags = flags, .modseq = modseq, .keywords = kw[0] ? kw : NULL});
	if (kw[0])
		kw = NULL; /* now owned by the changed list */
out:
	free(kw);
	free(row.keywords);
	return ret;
}

/* System flags without keywords or UNCHANGEDSINCE (the common "STORE 1:* +FLAGS (\\Seen)"): one
 * UPDATE per run of consecutive UIDs instead of a read and a write per message. */
static int
flags_ranges(struct store_tx *tx, struct flags_args *a, struct mbox_state *m, struct err *err)
{
	enum store_stmt_id id = a->op == STORE_FLAGS_ADD      ? STMT_IMAP_FLAGS_ADD
	                        : a->op == STORE_FLAGS_REMOVE ? STMT_IMAP_FLAGS_REMOVE
	                                                      : STMT_IMAP_FLAGS_SET;
	uint64_t modseq = m->hms + 1;
	size_t n0 = a->n_changed;
	for (size_t i = 0; i < a->n;) {
		size_t j = i;
		while (j + 1 < a->n && a->uids[j + 1] == a->uids[j] + 1)
			j++;
		sqlite3_stmt *stmt = store_tx_stmt(tx, id, err);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, a->mailbox);
		sqlite3_bind_int64(stmt, 2, a->uids[i]);
		sqlite3_bind_int64(stmt, 3, a->uids[j]);
		sqlite3_bind_int64(stmt, 4, a->flags);
		sqlite3_bind_int64(stmt, 5, (int64_t)modseq);
		int rc;
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			const unsigned char *kw = sqlite3_column_text(stmt, 2);
			msg_push(&a->changed, &a->n_changed, &a->cap_changed,
			         (struct store_imap_msg){
			             .uid = (uint32_t)sqlite3_column_int64(stmt, 0),
			             .flags = (uint32_t)sqlite3_column_int64(stmt, 1),
			             .modseq = modseq,
			             .keywords = kw && kw[0] ? xstrdup((const char *)kw) : NULL,
			         });
		}
		store_stmt_release(stmt);
		if (rc != SQLITE_DONE)
			return store_db_fail(store_tx_db(tx), err, "store-flags-range");
		i = j + 1;
	}
	if (a->n_changed > n0)
		m->hms = modseq;
	/* RETURNING gives no order: the contract lists changes by ascending UID. */
	if (a->n_changed > n0)
		qsort(a->changed + n0, a->n_changed - n0, sizeof *a->changed, msg_cmp_uid);
	return 0;
}

static int
flags_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct flags_args *a = arg;
	struct mbox_state m;
	if (mbox_tx_by_id(tx, a->mailbox, &m, err) < 0)
		return -1;
	uint64_t hms0 = m.hms;
	if ((a->keywords == NULL || a->keywords[0] == '\0') && a->unchangedsince == 0) {
		if (flags_ranges(tx, a, &m, err) < 0)
			return -1;
	} else {
		for (size_t i = 0; i < a->n; i++)
			if (flags_one(tx, a, &m, a->uids[i], err) < 0)
				return -1;
	}
	return m.hms != hms0 ? mbox_tx_update(tx, &m, err) : 0;
}

int
store_imap_store(struct store *st, int64_t mailbox, const uint32_t *uids, size_t n,
                 enum store_flags_op op, uint32_t flags, const char *keywords,
                 uint64_t unchangedsince, struct store_imap_msg **changed_r, size_t *n_changed_r,
                 uint32_t **failed_r, size_t *n_failed_r, struct err *err)
{
	*changed_r = NULL;
	*n_changed_r = 0;
	if (failed_r) {
		*failed_r = NULL;
		*n_failed_r = 0;
	}
	if (n > 0 && uids == NULL)
		return err_set(err, STORE_EINVAL, "uids missing");
	if (unchangedsince > INT64_MAX)
		unchangedsince = INT64_MAX;
	struct flags_args a = {.mailbox = mailbox,
	                       .uids = uids,
	                       .n = n,
	                       .op = op,
	                       .flags = flags,
	                       .keywords = keywords,
	                       .unchangedsince = unchangedsince};
	if (store_write(st, flags_fn, &a, err) < 0) {
		store_imap_msgs_free(&a.changed, a.n_changed);
		free(a.failed);
		return -1;
	}
	if (a.n_changed)
		store_mailbox_changed(st, mailbox);
	*changed_r = a.changed;
	*n_changed_r = a.n_changed;
	if (failed_r) {
		*failed_r = a.failed;
		*n_failed_r = a.n_failed;
	} else {
		free(a.failed);
	}
	return 0;
}

/* ---- COPY / MOVE ---- */

struct copy_args {
	int64_t account, mailbox;
	const uint32_t *uids;
	size_t n;
	const char *dest;
	bool move;
	uint32_t uidvalidity;
	int64_t dest_id;
	uint32_t *src, *dst;
	size_t n_done;
};

struct copy_src {
	int64_t id;
	uint32_t uid;
};

static int
copy_rows(struct store_tx *tx, struct copy_args *a, struct mbox_state *d, const struct copy_src *v,
          size_t n, struct err *err)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t uid = 0;
		if (mbox_next_uid(d, &uid, err) < 0)
			return -1;
		sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_MSG_COPY, err);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, v[i].id);
		sqlite3_bind_int64(stmt, 2, d->id);
		sqlite3_bind_int64(stmt, 3, uid);
		sqlite3_bind_int64(stmt, 4, (int64_t)++d->hms);
		if (store_stmt_done(store_tx_db(tx), stmt, err, "copy") < 0)
			return -1;
		a->src[a->n_done] = v[i].uid;
		a->dst[a->n_done++] = uid;
	}
	return 0;
}

static int
copy_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct copy_args *a = arg;
	struct mbox_state s, d;
	if (mbox_tx_by_id(tx, a->mailbox, &s, err) < 0 ||
	    mbox_tx_by_name(tx, a->account, a->dest, &d, err) < 0)
		return -1;
	a->uidvalidity = d.uidvalidity;
	a->dest_id = d.id;
	struct copy_src *v = xmalloc((a->n + 1) * sizeof *v);
	size_t n = 0;
	uint64_t bytes = 0;
	int ret = -1;
	for (size_t i = 0; i < a->n; i++) {
		struct msg_row row;
		int found = msg_get(tx, a->mailbox, a->uids[i], &row, err);
		if (found < 0)
			goto out;
		if (found == 0)
			continue;
		free(row.keywords);
		v[n++] = (struct copy_src){row.id, a->uids[i]};
		bytes += row.size;
	}
	/* A move within the account leaves the used bytes as they are. */
	if (!a->move && n > 0 && quota_check(store_tx_db(tx), a->account, bytes, err) < 0)
		goto out;
	a->src = xmalloc((n + 1) * sizeof *a->src);
	a->dst = xmalloc((n + 1) * sizeof *a->dst);
	if (copy_rows(tx, a, &d, v, n, err) < 0)
		goto out;
	if (a->move && n > 0) {
		bool same = d.id == s.id;
		uint64_t xmodseq = same ? ++d.hms : ++s.hms;
		for (size_t i = 0; i < n; i++)
			if (msg_delete(tx, v[i].id, err) < 0 ||
			    expunged_add(tx, s.id, v[i].uid, xmodseq, err) < 0)
				goto out;
		if (!same && mbox_tx_update(tx, &s, err) < 0)
			goto out;
	}
	if (n > 0 && mbox_tx_update(tx, &d, err) < 0)
		goto out;
	ret = 0;
out:
	free(v);
	return ret;
}

int
store_imap_copy(struct store *st, int64_t account, int64_t mailbox, const uint32_t *uids, size_t n,
                const char *dest, bool move, uint32_t *dest_uidvalidity_r, uint32_t **src_r,
                uint32_t **dst_r, size_t *n_r, struct err *err)
{
	*src_r = *dst_r = NULL;
	*n_r = 0;
	*dest_uidvalidity_r = 0;
	if (dest == NULL || (n > 0 && uids == NULL))
		return err_set(err, STORE_EINVAL, "copy arguments missing");
	struct copy_args a = {.account = account,
	                      .mailbox = mailbox,
	                      .uids = uids,
	                      .n = n,
	                      .dest = dest,
	                      .move = move};
	if (store_write(st, copy_fn, &a, err) < 0) {
		free(a.src);
		free(a.dst);
		return -1;
	}
	if (a.n_done) {
		store_mailbox_changed(st, a.dest_id);
		if (move)
			store_mailbox_changed(st, mailbox);
	}
	*dest_uidvalidity_r = a.uidvalidity;
	*src_r = a.src;
	*dst_r = a.dst;
	*n_r = a.n_done;
	return 0;
}

/* ---- EXPUNGE ---- */

struct expunge_args {
	int64_t mailbox;
	const uint32_t *uids; /* NULL: every \Deleted message */
	size_t n;
	uint32_t *out;
	size_t n_out, cap_out;
};

static int
expunge_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct expunge_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	struct mbox_state m;
	if (mbox_tx_by_id(tx, a->mailbox, &m, err) < 0)
		return -1;
	struct copy_src *v = NULL;
	size_t n = 0, cap = 0;
	int ret = -1;
	if (a->uids) {
		for (size_t i = 0; i < a->n; i++) {
			struct msg_row row;
			int found = msg_get(tx, a->mailbox, a->uids[i], &row, err);
			if (found < 0)
				goto out;
			if (found == 0)
				continue;
			free(row.keywords);
			if (!(row.flags & STORE_FLAG_DELETED))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				v = xrealloc(v, cap * sizeof *v);
			}
			v[n++] = (struct copy_src){row.id, a->uids[i]};
		}
	} else {
		sqlite3_stmt *stmt;
		if (store_db_prepare(db,
		                     "SELECT id, uid FROM messages WHERE mailbox_id = ?1"
		                     " AND (flags & 8) <> 0 ORDER BY uid",
		                     &stmt, err) < 0)
			goto out;
		sqlite3_bind_int64(stmt, 1, a->mailbox);
		int rc;
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				v = xrealloc(v, cap * sizeof *v);
			}
			v[n++] = (struct copy_src){sqlite3_column_int64(stmt, 0),
			                           (uint32_t)sqlite3_column_int64(stmt, 1)};
		}
		sqlite3_finalize(stmt);
		if (rc != SQLITE_DONE) {
			store_db_fail(db, err, "expunge-select");
			goto out;
		}
	}
	if (n == 0) {
		ret = 0;
		goto out;
	}
	uint64_t xmodseq = ++m.hms;
	for (size_t i = 0; i < n; i++) {
		if (msg_delete(tx, v[i].id, err) < 0 ||
		    expunged_add(tx, a->mailbox, v[i].uid, xmodseq, err) < 0)
			goto out;
		u32_push(&a->out, &a->n_out, &a->cap_out, v[i].uid);
	}
	ret = mbox_tx_update(tx, &m, err);
out:
	free(v);
	return ret;
}

int
store_imap_expunge(struct store *st, int64_t mailbox, const uint32_t *uids, size_t n,
                   uint32_t **expunged_r, size_t *n_r, struct err *err)
{
	*expunged_r = NULL;
	*n_r = 0;
	struct expunge_args a = {.mailbox = mailbox, .uids = uids, .n = n};
	if (store_write(st, expunge_fn, &a, err) < 0) {
		free(a.out);
		return -1;
	}
	if (a.n_out)
		store_mailbox_changed(st, mailbox);
	*expunged_r = a.out;
	*n_r = a.n_out;
	return 0;
}

/* ---- APPEND ---- */

struct append_args {
	int64_t account;
	const struct store_imap_append *a;
	const char *keywords; /* normalised */
	char sha[STORE_SHA_HEX + 1];
	uint32_t uidvalidity, uid;
	int64_t mailbox;
};

static void
bind_text_or_null(sqlite3_stmt *stmt, int col, const char *s)
{
	sqlite3_bind_text(stmt, col, s, -1, SQLITE_STATIC); /* NULL binds NULL */
}

static int
append_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct append_args *x = arg;
	const struct store_imap_append *a = x->a;
	sqlite3 *db = store_tx_db(tx);
	struct mbox_state m;
	if (mbox_tx_by_name(tx, x->account, a->mailbox, &m, err) < 0 ||
	    quota_check(db, x->account, a->len, err) < 0 ||
	    store_tx_blob_put(tx, x->sha, a->msg, a->len, err) < 0)
		return -1;
	uint32_t uid = 0;
	if (mbox_next_uid(&m, &uid, err) < 0)
		return -1;
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_IMAP_APPEND, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, m.id);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_int64(stmt, 3, (int64_t)++m.hms);
	sqlite3_bind_int64(stmt, 4, a->flags);
	sqlite3_bind_text(stmt, 5, x->keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, a->internal_date);
	sqlite3_bind_int64(stmt, 7, (int64_t)a->len);
	sqlite3_bind_text(stmt, 8, x->sha, STORE_SHA_HEX, SQLITE_STATIC);
	bind_text_or_null(stmt, 9, a->envelope);
	bind_text_or_null(stmt, 10, a->body);
	bind_text_or_null(stmt, 11, a->bodystructure);
	if (a->parts && a->parts_len)
		sqlite3_bind_blob64(stmt, 12, a->parts, a->parts_len, SQLITE_STATIC);
	if (store_stmt_done(db, stmt, err, "append") < 0 || mbox_tx_update(tx, &m, err) < 0)
		return -1;
	x->uidvalidity = m.uidvalidity;
	x->uid = uid;
	x->mailbox = m.id;
	return 0;
}

int
store_imap_append(struct store *st, int64_t account, const struct store_imap_append *a,
                  uint32_t *uidvalidity_r, uint32_t *uid_r, struct err *err)
{
	*uidvalidity_r = *uid_r = 0;
	if (a == NULL || a->mailbox == NULL || (a->msg == NULL && a->len > 0))
		return err_set(err, STORE_EINVAL, "append arguments missing");
	if (a->len > INT64_MAX / 2)
		return err_set(err, STORE_EINVAL, "message too large");
	struct append_args x = {.account = account, .a = a};
	char *kw;
	bool changed;
	if (store_keywords_apply(NULL, STORE_FLAGS_SET, a->keywords, &kw, &changed, err) < 0)
		return -1;
	x.keywords = kw;
	/* Hashing a large message takes a while: here, not on the shared writer thread. */
	int ret = store_blob_sha256(a->msg, a->len, x.sha, err);
	if (ret == 0)
		ret = store_write(st, append_fn, &x, err);
	free(kw);
	if (ret < 0)
		return -1;
	store_mailbox_changed(st, x.mailbox);
	*uidvalidity_r = x.uidvalidity;
	*uid_r = x.uid;
	return 0;
}
