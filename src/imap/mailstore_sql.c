/* The real mailstore (imap/mailstore.h) on store/ (SQLite): every operation maps onto one
 * store_imap_* function of store.h, with the account bound at login. Passwords are checked with
 * auth/passwd.h exactly as SMTP AUTH does (server/hooks.c): an unknown user costs the same
 * argon2id computation as a known one, and a disabled account fails. Metadata for APPEND is
 * computed here with mail/mime.h; a message stored without it (e.g. injected by an older path)
 * gets it computed when FETCH first asks. One mailstore belongs to one session thread. */
#include "imap/mailstore.h"

#include <pthread.h>
#include <string.h>

#include "auth/passwd.h"
#include "mail/mime.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MS_SYSTEM_FLAGS                                                                            \
	(IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED | IMAP_FLAG_FLAGGED | IMAP_FLAG_DELETED |             \
	 IMAP_FLAG_DRAFT)

_Static_assert(IMAP_FLAG_SEEN == STORE_FLAG_SEEN, "store counts unseen by this bit");
_Static_assert(IMAP_FLAG_DELETED == STORE_FLAG_DELETED, "store expunges by this bit");
_Static_assert(IMAP_KEYWORDS_MAX == STORE_KEYWORDS_MAX, "same keyword limit");

struct ms_sql {
	struct imap_mailstore base; /* first: the ops get a struct imap_mailstore * */
	struct store *st;
	int64_t account; /* 0 until login */
	char *spool_dir; /* heap or NULL (imap_mailstore_sql_set_spool_dir) */
};

static struct ms_sql *
ms_of(struct imap_mailstore *ms)
{
	return (struct ms_sql *)ms;
}

/* Copies a store error into an imap_ms_err; returns -1. */
static int
ms_fail(const struct err *serr, struct err *err)
{
	int code;
	switch (serr->code) {
	case STORE_ENOTFOUND:
		code = IMAP_MS_ENONEXISTENT;
		break;
	case STORE_EEXIST:
		code = IMAP_MS_EEXISTS;
		break;
	case STORE_EOVERQUOTA:
		code = IMAP_MS_EOVERQUOTA;
		break;
	case STORE_EINVAL:
	case STORE_EBUSY:
		code = IMAP_MS_EINVAL;
		break;
	case STORE_EHASCHILDREN:
		code = IMAP_MS_EHASCHILDREN;
		break;
	default:
		code = IMAP_MS_EINTERNAL;
		break;
	}
	return err_set(err, code, "%s", serr->msg);
}

/* The same fixed argon2id hash trick as server/hooks.c: unknown users cost one verification. */
static char dummy_hash[AUTH_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_hash_init(void)
{
	if (auth_hash("lightr-no-such-user", 19, dummy_hash) < 0)
		dummy_hash[0] = '\0';
}

static int
ms_login(struct imap_mailstore *ms, const char *user, const char *pass, size_t pass_len,
         struct err *err)
{
	struct ms_sql *m = ms_of(ms);
	struct store_account a;
	struct err serr = {0};
	if (store_account_get(m->st, user, &a, &serr) < 0) {
		if (serr.code != STORE_ENOTFOUND && serr.code != STORE_EINVAL)
			return ms_fail(&serr, err);
		pthread_once(&dummy_once, dummy_hash_init);
		(void)auth_verify(dummy_hash, pass, pass_len);
		return 0;
	}
	bool ok = auth_verify(a.password_hash, pass, pass_len) && !a.disabled;
	if (ok) {
		free(ms->user);
		ms->user = a.address;
		a.address = NULL;
		m->account = a.id;
	}
	store_account_deinit(&a);
	return ok ? 1 : 0;
}

static int
ms_list(struct imap_mailstore *ms, struct imap_ms_mailbox **v_r, size_t *n_r, struct err *err)
{
	struct store_imap_mailbox *sv;
	size_t n;
	struct err serr = {0};
	*v_r = NULL;
	*n_r = 0;
	if (store_imap_mailbox_list(ms_of(ms)->st, ms_of(ms)->account, &sv, &n, &serr) < 0)
		return ms_fail(&serr, err);
	struct imap_ms_mailbox *v = xcalloc(n + 1, sizeof *v);
	for (size_t i = 0; i < n; i++) {
		v[i] = (struct imap_ms_mailbox){.name = sv[i].name,
		                                .special_use = sv[i].special_use,
		                                .subscribed = sv[i].subscribed,
		                                .exists = sv[i].exists};
		sv[i].name = sv[i].special_use = NULL; /* moved */
	}
	store_imap_mailbox_list_free(&sv, n);
	*v_r = v;
	*n_r = n;
	return 0;
}

static int
ms_status(struct imap_mailstore *ms, const char *name, struct imap_ms_status *st_r, struct err *err)
{
	struct store_imap_status s;
	struct err serr = {0};
	memset(st_r, 0, sizeof *st_r);
	if (store_imap_status(ms_of(ms)->st, ms_of(ms)->account, name, &s, &serr) < 0)
		return ms_fail(&serr, err);
	*st_r = (struct imap_ms_status){
	    .id = s.id,
	    .uidvalidity = s.uidvalidity,
	    .uidnext = s.uidnext,
	    .highestmodseq = s.highestmodseq,
	    .messages = s.messages,
	    .unseen = s.unseen,
	    .deleted = s.deleted,
	    .size = s.size,
	    .special_use = s.special_use, /* moved */
	};
	return 0;
}

static int
ms_create(struct imap_mailstore *ms, const char *name, const char *special_use, struct err *err)
{
	struct err serr = {0};
	if (store_imap_create(ms_of(ms)->st, ms_of(ms)->account, name, special_use, &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

static int
ms_delete(struct imap_mailstore *ms, const char *name, struct err *err)
{
	struct err serr = {0};
	if (store_imap_delete(ms_of(ms)->st, ms_of(ms)->account, name, &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

static int
ms_rename(struct imap_mailstore *ms, const char *old_name, const char *new_name, struct err *err)
{
	struct err serr = {0};
	if (store_imap_rename(ms_of(ms)->st, ms_of(ms)->account, old_name, new_name, &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

static int
ms_subscribe(struct imap_mailstore *ms, const char *name, bool on, struct err *err)
{
	struct err serr = {0};
	if (store_imap_subscribe(ms_of(ms)->st, ms_of(ms)->account, name, on, &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

/* store_imap_msg → imap_ms_msg, moving the keyword strings. */
static struct imap_ms_msg *
ms_msgs_move(struct store_imap_msg **sv, size_t n)
{
	struct imap_ms_msg *v = xcalloc(n + 1, sizeof *v);
	for (size_t i = 0; i < n; i++) {
		struct store_imap_msg *s = &(*sv)[i];
		v[i] = (struct imap_ms_msg){
		    .uid = s->uid, .flags = s->flags, .modseq = s->modseq, .keywords = s->keywords};
		s->keywords = NULL;
	}
	store_imap_msgs_free(sv, n);
	return v;
}

static int
ms_messages(struct imap_mailstore *ms, int64_t mailbox, uint64_t changed_since,
            struct imap_ms_msg **v_r, size_t *n_r, uint32_t *uidnext_r, uint64_t *highestmodseq_r,
            struct err *err)
{
	struct store_imap_msg *sv;
	size_t n;
	struct err serr = {0};
	*v_r = NULL;
	*n_r = 0;
	if (store_imap_messages(ms_of(ms)->st, mailbox, changed_since, &sv, &n, uidnext_r,
	                        highestmodseq_r, &serr) < 0)
		return ms_fail(&serr, err);
	*v_r = ms_msgs_move(&sv, n);
	*n_r = n;
	return 0;
}

static int
ms_vanished(struct imap_mailstore *ms, int64_t mailbox, uint64_t since, uint32_t **uids_r,
            size_t *n_r, struct err *err)
{
	struct err serr = {0};
	if (store_imap_vanished(ms_of(ms)->st, mailbox, since, uids_r, n_r, &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

/* A message stored without metadata: computed from its body now (loads the body once). */
static int
ms_meta_compute(struct ms_sql *m, struct imap_ms_meta *mm, struct err *err)
{
	struct buf body;
	buf_init(&body, 0);
	struct err serr = {0};
	if (store_imap_read(m->st, mm->ref, mm->header_len, mm->size - mm->header_len, &body,
	                    &serr) < 0) {
		buf_deinit(&body);
		return ms_fail(&serr, err);
	}
	struct mime_meta meta = {0};
	int rc =
	    mime_meta_build(body.data ? body.data : (const unsigned char *)"", body.len, &meta);
	buf_deinit(&body);
	if (rc < 0) {
		mime_meta_deinit(&meta);
		return err_set(err, IMAP_MS_EINTERNAL, "cannot parse message");
	}
	x_free(&mm->envelope);
	x_free(&mm->body);
	x_free(&mm->bodystructure);
	buf_deinit(&mm->parts);
	mm->envelope = meta.envelope;
	mm->body = meta.body;
	mm->bodystructure = meta.bodystructure;
	mm->parts = meta.parts;
	meta = (struct mime_meta){0};
	return 0;
}

static int
ms_meta(struct imap_mailstore *ms, int64_t mailbox, uint32_t uid, struct imap_ms_meta *m_r,
        struct err *err)
{
	struct store_imap_meta sm;
	struct err serr = {0};
	memset(m_r, 0, sizeof *m_r);
	if (store_imap_meta(ms_of(ms)->st, mailbox, uid, &sm, &serr) < 0) {
		store_imap_meta_deinit(&sm);
		return ms_fail(&serr, err);
	}
	*m_r = (struct imap_ms_meta){
	    .uid = sm.uid,
	    .internal_date = sm.internal_date,
	    .size = sm.size,
	    .header_len = sm.header_len,
	    .envelope = sm.envelope,
	    .body = sm.body,
	    .bodystructure = sm.bodystructure,
	    .parts = sm.parts, /* moved */
	    .ref = sm.id,
	};
	if (m_r->envelope == NULL || m_r->body == NULL || m_r->bodystructure == NULL) {
		if (ms_meta_compute(ms_of(ms), m_r, err) < 0) {
			imap_ms_meta_deinit(m_r);
			return -1;
		}
	}
	return 0;
}

static int
ms_read(struct imap_mailstore *ms, const struct imap_ms_meta *m, uint64_t off, uint64_t len,
        struct buf *out, struct err *err)
{
	struct err serr = {0};
	if (store_imap_read(ms_of(ms)->st, m->ref, off, len, out, &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

static int
ms_store(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
         enum imap_ms_store_op op, uint32_t flags, const char *keywords, uint64_t unchangedsince,
         struct imap_ms_msg **changed_r, size_t *n_changed_r, uint32_t **failed_r,
         size_t *n_failed_r, struct err *err)
{
	static const enum store_flags_op ops[] = {
	    [IMAP_MS_FLAGS_SET] = STORE_FLAGS_SET,
	    [IMAP_MS_FLAGS_ADD] = STORE_FLAGS_ADD,
	    [IMAP_MS_FLAGS_REMOVE] = STORE_FLAGS_REMOVE,
	};
	*changed_r = NULL;
	*n_changed_r = 0;
	if (failed_r) {
		*failed_r = NULL;
		*n_failed_r = 0;
	}
	if ((unsigned)op >= sizeof ops / sizeof ops[0])
		return err_set(err, IMAP_MS_EINVAL, "bad store operation");
	struct store_imap_msg *sv;
	size_t nc;
	struct err serr = {0};
	if (store_imap_store(ms_of(ms)->st, mailbox, uids, n, ops[op], flags & MS_SYSTEM_FLAGS,
	                     keywords, unchangedsince, &sv, &nc, failed_r, n_failed_r, &serr) < 0)
		return ms_fail(&serr, err);
	*changed_r = ms_msgs_move(&sv, nc);
	*n_changed_r = nc;
	return 0;
}

static int
ms_copy(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
        const char *dest, bool move, uint32_t *dest_uidvalidity_r, uint32_t **src_r,
        uint32_t **dst_r, size_t *n_r, struct err *err)
{
	struct err serr = {0};
	if (store_imap_copy(ms_of(ms)->st, ms_of(ms)->account, mailbox, uids, n, dest, move,
	                    dest_uidvalidity_r, src_r, dst_r, n_r, &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

static int
ms_expunge(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
           uint32_t **expunged_r, size_t *n_r, struct err *err)
{
	struct err serr = {0};
	if (store_imap_expunge(ms_of(ms)->st, mailbox, uids, n, expunged_r, n_r, &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

static int
ms_append(struct imap_mailstore *ms, const char *name, uint32_t flags, const char *keywords,
          int64_t internal_date, const unsigned char *msg, size_t len, uint32_t *uidvalidity_r,
          uint32_t *uid_r, struct err *err)
{
	struct mime_meta meta = {0};
	/* Parsing a large message takes a while: on the session's thread, before the writer. */
	if (mime_meta_build(msg, len, &meta) < 0) {
		mime_meta_deinit(&meta);
		meta = (struct mime_meta){0}; /* stored without; computed at the first FETCH */
		log_warn("imap - append-metadata failed user=%s", ms->user ? ms->user : "-");
	}
	struct store_imap_append a = {
	    .mailbox = name,
	    .flags = flags & MS_SYSTEM_FLAGS,
	    .keywords = keywords,
	    .internal_date = internal_date,
	    .msg = msg,
	    .len = len,
	    .envelope = meta.envelope,
	    .body = meta.body,
	    .bodystructure = meta.bodystructure,
	    .parts = meta.parts.data,
	    .parts_len = meta.parts.len,
	};
	struct err serr = {0};
	int rc =
	    store_imap_append(ms_of(ms)->st, ms_of(ms)->account, &a, uidvalidity_r, uid_r, &serr);
	mime_meta_deinit(&meta);
	return rc < 0 ? ms_fail(&serr, err) : 0;
}

static int
ms_quota(struct imap_mailstore *ms, uint64_t *used_r, uint64_t *limit_r, uint64_t *messages_r,
         struct err *err)
{
	struct err serr = {0};
	if (store_imap_quota(ms_of(ms)->st, ms_of(ms)->account, used_r, limit_r, messages_r,
	                     &serr) < 0)
		return ms_fail(&serr, err);
	return 0;
}

static uint64_t
ms_change_seq(struct imap_mailstore *ms, int64_t mailbox)
{
	return store_mailbox_change_seq(ms_of(ms)->st, mailbox);
}

static void
ms_idle_release(struct imap_mailstore *ms)
{
	store_thread_done(ms_of(ms)->st);
}

static const char *
ms_spool_dir(struct imap_mailstore *ms)
{
	return ms_of(ms)->spool_dir;
}

static void
ms_free(struct imap_mailstore *ms)
{
	free(ms_of(ms)->spool_dir);
	free(ms->user);
	free(ms_of(ms));
}

static const struct imap_mailstore_ops ms_sql_ops = {
    .login = ms_login,
    .list = ms_list,
    .status = ms_status,
    .create = ms_create,
    .delete = ms_delete,
    .rename = ms_rename,
    .subscribe = ms_subscribe,
    .messages = ms_messages,
    .vanished = ms_vanished,
    .meta = ms_meta,
    .read = ms_read,
    .store = ms_store,
    .copy = ms_copy,
    .expunge = ms_expunge,
    .append = ms_append,
    .quota = ms_quota,
    .change_seq = ms_change_seq,
    .idle_release = ms_idle_release,
    .free = ms_free,
    .spool_dir = ms_spool_dir,
};

struct imap_mailstore *
imap_mailstore_sql(struct store *st)
{
	struct ms_sql *m = xcalloc(1, sizeof *m);
	m->base.ops = &ms_sql_ops;
	m->st = st;
	return &m->base;
}

void
imap_mailstore_sql_set_spool_dir(struct imap_mailstore *ms, const char *dir)
{
	ASSERT(ms->ops == &ms_sql_ops);
	free(ms_of(ms)->spool_dir);
	ms_of(ms)->spool_dir = dir != NULL && *dir != '\0' ? xstrdup(dir) : NULL;
}
