/* In-memory mailstore (imap_mailstore_stub, mailstore.h) for unit tests and the imap_session
 * fuzz target: one account, mailboxes in a flat array kept sorted by name (INBOX first), each
 * with its messages (raw bytes + mime_meta computed on append), its expunge log (QRESYNC
 * VANISHED) and its counters. Behaves like the SQL store on every operation the session uses,
 * including the CREATE/RENAME/DELETE hierarchy rules and CONDSTORE modseqs, but with no
 * durability and no locking (one session). */
#include "imap/mailstore.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"
#include "util/xalloc.h"

#define STUB_USER      "user@test.example"
#define STUB_PASS      "secret"
#define STUB_MSGS_MAX  100000 /* per mailbox: bounds the fuzz target's memory */
#define STUB_BOXES_MAX 1000

struct stub_msg {
	uint32_t uid, flags;
	uint64_t modseq;
	char *keywords;
	int64_t internal_date;
	unsigned char *data;
	size_t len;
	struct mime_meta mm;
};

struct stub_gone {
	uint32_t uid;
	uint64_t modseq;
};

struct stub_box {
	char *name, *special_use;
	bool exists, subscribed;
	int64_t id;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq, change;
	struct stub_msg *msgs;
	size_t n;
	struct stub_gone *gone;
	size_t ngone;
};

struct stub {
	struct imap_mailstore base; /* first: the ops receive &base */
	struct stub_box *boxes;
	size_t nboxes;
	int64_t next_id;
	uint32_t next_uidvalidity;
};

static struct stub *
stub_of(struct imap_mailstore *ms)
{
	return (struct stub *)ms;
}

static int
cmp_names(const char *a, const char *b)
{
	bool ia = strcmp(a, "INBOX") == 0, ib = strcmp(b, "INBOX") == 0;
	if (ia || ib)
		return ia && ib ? 0 : ia ? -1 : 1;
	return strcmp(a, b);
}

static struct stub_box *
find_name(struct stub *st, const char *name, bool must_exist)
{
	for (size_t i = 0; i < st->nboxes; i++)
		if (strcmp(st->boxes[i].name, name) == 0)
			return !must_exist || st->boxes[i].exists ? &st->boxes[i] : NULL;
	return NULL;
}

static struct stub_box *
find_id(struct stub *st, int64_t id)
{
	for (size_t i = 0; i < st->nboxes; i++)
		if (st->boxes[i].id == id && st->boxes[i].exists)
			return &st->boxes[i];
	return NULL;
}

static int
box_sort_cmp(const void *a, const void *b)
{
	return cmp_names(((const struct stub_box *)a)->name, ((const struct stub_box *)b)->name);
}

static void
sort_boxes(struct stub *st)
{
	qsort(st->boxes, st->nboxes, sizeof *st->boxes, box_sort_cmp);
}

static void
msg_free(struct stub_msg *m)
{
	free(m->keywords);
	free(m->data);
	mime_meta_deinit(&m->mm);
}

static void
box_clear_msgs(struct stub_box *b)
{
	for (size_t i = 0; i < b->n; i++)
		msg_free(&b->msgs[i]);
	free(b->msgs);
	b->msgs = NULL;
	b->n = 0;
	free(b->gone);
	b->gone = NULL;
	b->ngone = 0;
}

/* Makes (or revives) a mailbox entry; pointers into st->boxes are invalid afterwards. */
static struct stub_box *
box_add(struct stub *st, const char *name, const char *special_use)
{
	struct stub_box *b = find_name(st, name, false);
	if (b == NULL) {
		st->boxes = xrealloc(st->boxes, (st->nboxes + 1) * sizeof *st->boxes);
		b = &st->boxes[st->nboxes++];
		memset(b, 0, sizeof *b);
		b->name = xstrdup(name);
	}
	b->exists = true;
	free(b->special_use);
	b->special_use = special_use ? xstrdup(special_use) : NULL;
	b->id = st->next_id++;
	b->uidvalidity = st->next_uidvalidity++;
	b->uidnext = 1;
	b->highestmodseq = 1;
	b->change++;
	sort_boxes(st);
	return find_name(st, name, true);
}

static void
box_drop(struct stub *st, struct stub_box *b)
{
	box_clear_msgs(b);
	b->exists = false;
	b->id = 0;
	free(b->special_use);
	b->special_use = NULL;
	if (!b->subscribed) {
		free(b->name);
		size_t i = (size_t)(b - st->boxes);
		memmove(b, b + 1, (st->nboxes - i - 1) * sizeof *b);
		st->nboxes--;
	}
}

static bool
is_inferior(const char *name, const char *parent)
{
	size_t n = strlen(parent);
	return strncmp(name, parent, n) == 0 && name[n] == '/';
}

/* Adds a message (copied) to b with a fresh UID and modseq. */
static struct stub_msg *
box_put(struct stub_box *b, const unsigned char *data, size_t len, uint32_t flags,
        const char *keywords, int64_t internal_date)
{
	b->msgs = xrealloc(b->msgs, (b->n + 1) * sizeof *b->msgs);
	struct stub_msg *m = &b->msgs[b->n++];
	memset(m, 0, sizeof *m);
	m->uid = b->uidnext++;
	m->flags = flags;
	m->modseq = ++b->highestmodseq;
	m->keywords = keywords && *keywords ? xstrdup(keywords) : NULL;
	m->internal_date = internal_date;
	m->data = xmalloc(len ? len : 1);
	memcpy(m->data, data, len);
	m->len = len;
	mime_meta_build(data, len, &m->mm);
	b->change++;
	return m;
}

static struct stub_msg *
find_msg(struct stub_box *b, uint32_t uid)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->msgs[mid].uid == uid)
			return &b->msgs[mid];
		if (b->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void box_remove(struct stub_box *b, const bool *drop);

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int
enoent(struct err *err)
{
	return err_set(err, IMAP_MS_ENONEXISTENT, "No such mailbox");
}

/* ---- operations ---- */

static int
stub_login(struct imap_mailstore *ms, const char *user, const char *pass, size_t pass_len,
           struct err *err)
{
	if (strcasecmp(user, STUB_USER) != 0 || pass_len != strlen(STUB_PASS) ||
	    memcmp(pass, STUB_PASS, pass_len) != 0)
		return 0;
	free(ms->user);
	ms->user = xstrdup(STUB_USER);
	return 1;
}

static int
stub_list(struct imap_mailstore *ms, struct imap_ms_mailbox **v_r, size_t *n_r, struct err *err)
{
	struct stub *st = stub_of(ms);
	struct imap_ms_mailbox *v = xcalloc(st->nboxes ? st->nboxes : 1, sizeof *v);
	for (size_t i = 0; i < st->nboxes; i++) {
		v[i].name = xstrdup(st->boxes[i].name);
		v[i].special_use =
		    st->boxes[i].special_use ? xstrdup(st->boxes[i].special_use) : NULL;
		v[i].subscribed = st->boxes[i].subscribed;
		v[i].exists = st->boxes[i].exists;
	}
	*v_r = v;
	*n_r = st->nboxes;
	return 0;
}

static int
stub_status(struct imap_mailstore *ms, const char *name, struct imap_ms_status *st_r,
            struct err *err)
{
	struct stub_box *b = find_name(stub_of(ms), name, true);
	if (b == NULL)
		return enoent(err);
	memset(st_r, 0, sizeof *st_r);
	st_r->id = b->id;
	st_r->uidvalidity = b->uidvalidity;
	st_r->uidnext = b->uidnext;
	st_r->highestmodseq = b->highestmodseq;
	st_r->messages = (uint32_t)b->n;
	for (size_t i = 0; i < b->n; i++) {
		st_r->unseen += !(b->msgs[i].flags & IMAP_FLAG_SEEN);
		st_r->deleted += (b->msgs[i].flags & IMAP_FLAG_DELETED) != 0;
		st_r->size += b->msgs[i].len;
	}
	st_r->special_use = b->special_use ? xstrdup(b->special_use) : NULL;
	return 0;
}

static int
stub_create(struct imap_mailstore *ms, const char *name, const char *special_use, struct err *err)
{
	struct stub *st = stub_of(ms);
	if (find_name(st, name, true) != NULL)
		return err_set(err, IMAP_MS_EEXISTS, "Mailbox already exists");
	if (st->nboxes >= STUB_BOXES_MAX)
		return err_set(err, IMAP_MS_EOVERQUOTA, "Too many mailboxes");
	box_add(st, name, special_use);
	return 0;
}

static int
stub_delete(struct imap_mailstore *ms, const char *name, struct err *err)
{
	struct stub *st = stub_of(ms);
	if (strcmp(name, "INBOX") == 0)
		return err_set(err, IMAP_MS_EINVAL, "INBOX cannot be deleted");
	struct stub_box *b = find_name(st, name, true);
	if (b == NULL)
		return enoent(err);
	for (size_t i = 0; i < st->nboxes; i++)
		if (st->boxes[i].exists && is_inferior(st->boxes[i].name, name))
			return err_set(err, IMAP_MS_EHASCHILDREN, "Mailbox has children");
	box_drop(st, b);
	return 0;
}

static int
stub_rename(struct imap_mailstore *ms, const char *old_name, const char *new_name, struct err *err)
{
	struct stub *st = stub_of(ms);
	struct stub_box *b = find_name(st, old_name, true);
	if (b == NULL)
		return enoent(err);
	if (find_name(st, new_name, true) != NULL)
		return err_set(err, IMAP_MS_EEXISTS, "Mailbox already exists");
	bool inbox = strcmp(old_name, "INBOX") == 0;
	if (strcmp(old_name, new_name) == 0 || (!inbox && is_inferior(new_name, old_name)))
		return err_set(err, IMAP_MS_EINVAL, "Cannot rename a mailbox into itself");
	size_t olen = strlen(old_name);
	for (size_t i = 0; i < st->nboxes && !inbox; i++) { /* no inferior may land on a mailbox */
		if (!st->boxes[i].exists || !is_inferior(st->boxes[i].name, old_name))
			continue;
		char *nn = xasprintf("%s%s", new_name, st->boxes[i].name + olen);
		bool clash = find_name(st, nn, true) != NULL;
		free(nn);
		if (clash)
			return err_set(err, IMAP_MS_EEXISTS, "Mailbox already exists");
	}
	if (inbox) {
		/* RFC 9051 §6.3.6: the messages move into a new mailbox; INBOX stays, empty. */
		struct stub_box *nb = box_add(st, new_name, NULL);
		int64_t nid = nb->id;
		b = find_name(st, "INBOX", true);
		nb = find_id(st, nid);
		for (size_t i = 0; i < b->n; i++) {
			struct stub_msg *m = &b->msgs[i];
			box_put(nb, m->data, m->len, m->flags, m->keywords, m->internal_date);
		}
		bool *drop = xmalloc((b->n ? b->n : 1) * sizeof *drop);
		for (size_t i = 0; i < b->n; i++)
			drop[i] = true;
		box_remove(b, drop); /* sessions on INBOX see them expunged */
		free(drop);
		return 0;
	}
	for (size_t i = 0; i < st->nboxes; i++) {
		struct stub_box *x = &st->boxes[i];
		if (!x->exists ||
		    !(strcmp(x->name, old_name) == 0 || is_inferior(x->name, old_name)))
			continue;
		char *nn = xasprintf("%s%s", new_name, x->name + olen);
		struct stub_box *clash = find_name(st, nn, false);
		if (clash != NULL &&
		    !clash->exists) { /* a bare subscription: merged, dropped below */
			x->subscribed = x->subscribed || clash->subscribed;
			clash->id = -1;
		}
		free(x->name);
		x->name = nn;
		x->change++;
	}
	for (size_t i = 0; i < st->nboxes;) {
		if (st->boxes[i].id == -1) {
			free(st->boxes[i].name);
			memmove(&st->boxes[i], &st->boxes[i + 1],
			        (st->nboxes - i - 1) * sizeof *st->boxes);
			st->nboxes--;
		} else {
			i++;
		}
	}
	sort_boxes(st);
	return 0;
}

static int
stub_subscribe(struct imap_mailstore *ms, const char *name, bool on, struct err *err)
{
	struct stub *st = stub_of(ms);
	struct stub_box *b = find_name(st, name, false);
	if (b == NULL) {
		if (!on)
			return 0;
		if (st->nboxes >= STUB_BOXES_MAX)
			return err_set(err, IMAP_MS_EOVERQUOTA, "Too many mailboxes");
		st->boxes = xrealloc(st->boxes, (st->nboxes + 1) * sizeof *st->boxes);
		b = &st->boxes[st->nboxes++];
		memset(b, 0, sizeof *b);
		b->name = xstrdup(name);
		b->subscribed = true;
		sort_boxes(st);
		return 0;
	}
	b->subscribed = on;
	if (!on && !b->exists)
		box_drop(st, b);
	return 0;
}

static int
stub_messages(struct imap_mailstore *ms, int64_t mailbox, uint64_t changed_since,
              struct imap_ms_msg **v_r, size_t *n_r, uint32_t *uidnext_r, uint64_t *highestmodseq_r,
              struct err *err)
{
	struct stub_box *b = find_id(stub_of(ms), mailbox);
	if (b == NULL)
		return enoent(err);
	struct imap_ms_msg *v = xcalloc(b->n ? b->n : 1, sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct stub_msg *m = &b->msgs[i];
		if (m->modseq <= changed_since)
			continue;
		v[n].uid = m->uid;
		v[n].flags = m->flags;
		v[n].modseq = m->modseq;
		v[n].keywords = m->keywords ? xstrdup(m->keywords) : NULL;
		n++;
	}
	*v_r = v;
	*n_r = n;
	*uidnext_r = b->uidnext;
	*highestmodseq_r = b->highestmodseq;
	return 0;
}

static int
stub_vanished(struct imap_mailstore *ms, int64_t mailbox, uint64_t since, uint32_t **uids_r,
              size_t *n_r, struct err *err)
{
	struct stub_box *b = find_id(stub_of(ms), mailbox);
	if (b == NULL)
		return enoent(err);
	uint32_t *v = xmalloc((b->ngone ? b->ngone : 1) * sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < b->ngone; i++) /* in expunge order */
		if (b->gone[i].modseq > since)
			v[n++] = b->gone[i].uid;
	qsort(v, n, sizeof *v, cmp_u32);
	*uids_r = v;
	*n_r = n;
	return 0;
}

static int
stub_meta(struct imap_mailstore *ms, int64_t mailbox, uint32_t uid, struct imap_ms_meta *m_r,
          struct err *err)
{
	struct stub_box *b = find_id(stub_of(ms), mailbox);
	if (b == NULL)
		return enoent(err);
	struct stub_msg *m = find_msg(b, uid);
	if (m == NULL)
		return err_set(err, IMAP_MS_ENONEXISTENT, "No such message");
	memset(m_r, 0, sizeof *m_r);
	m_r->uid = uid;
	m_r->internal_date = m->internal_date;
	m_r->size = m->len;
	m_r->header_len = 0;
	m_r->envelope = xstrdup(m->mm.envelope ? m->mm.envelope : "NIL");
	m_r->body = xstrdup(m->mm.body ? m->mm.body : "NIL");
	m_r->bodystructure = xstrdup(m->mm.bodystructure ? m->mm.bodystructure : "NIL");
	buf_init(&m_r->parts, 0);
	buf_append(&m_r->parts, m->mm.parts.data, m->mm.parts.len);
	m_r->ref = mailbox;
	return 0;
}

static int
stub_read(struct imap_mailstore *ms, const struct imap_ms_meta *mt, uint64_t off, uint64_t len,
          struct buf *out, struct err *err)
{
	struct stub_box *b = find_id(stub_of(ms), mt->ref);
	struct stub_msg *m = b ? find_msg(b, mt->uid) : NULL;
	if (m == NULL)
		return err_set(err, IMAP_MS_ENONEXISTENT, "No such message");
	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	if (buf_append(out, m->data + off, (size_t)len) < 0)
		return err_set(err, IMAP_MS_EINTERNAL, "output buffer full");
	return 0;
}

/* Keyword list operations on space-separated lists (case-insensitive names). */
static bool
kw_has(const char *list, const char *kw, size_t n)
{
	for (const char *p = list; p != NULL && *p;) {
		const char *sp = strchr(p, ' ');
		size_t l = sp ? (size_t)(sp - p) : strlen(p);
		if (l == n && strncasecmp(p, kw, n) == 0)
			return true;
		p = sp ? sp + 1 : NULL;
	}
	return false;
}

static char *
kw_apply(const char *cur, enum imap_ms_store_op op, const char *kws)
{
	struct buf b;
	buf_init(&b, 0);
	if (op != IMAP_MS_FLAGS_SET) { /* keep the current ones not removed */
		for (const char *p = cur; p != NULL && *p;) {
			const char *sp = strchr(p, ' ');
			size_t l = sp ? (size_t)(sp - p) : strlen(p);
			if (op == IMAP_MS_FLAGS_ADD || !kw_has(kws, p, l)) {
				if (b.len)
					buf_append_byte(&b, ' ');
				buf_append(&b, p, l);
			}
			p = sp ? sp + 1 : NULL;
		}
	}
	if (op != IMAP_MS_FLAGS_REMOVE) {
		for (const char *p = kws; p != NULL && *p;) {
			const char *sp = strchr(p, ' ');
			size_t l = sp ? (size_t)(sp - p) : strlen(p);
			if (l > 0 && !kw_has(b.len ? buf_cstr(&b) : NULL, p, l)) {
				if (b.len)
					buf_append_byte(&b, ' ');
				buf_append(&b, p, l);
			}
			p = sp ? sp + 1 : NULL;
		}
	}
	char *r = b.len ? xstrdup(buf_cstr(&b)) : NULL;
	buf_deinit(&b);
	return r;
}

static int
stub_store(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
           enum imap_ms_store_op op, uint32_t flags, const char *keywords, uint64_t unchangedsince,
           struct imap_ms_msg **changed_r, size_t *n_changed_r, uint32_t **failed_r,
           size_t *n_failed_r, struct err *err)
{
	struct stub_box *b = find_id(stub_of(ms), mailbox);
	if (b == NULL)
		return enoent(err);
	struct imap_ms_msg *ch = xcalloc(n ? n : 1, sizeof *ch);
	uint32_t *failed = xmalloc((n ? n : 1) * sizeof *failed);
	size_t nch = 0, nf = 0;
	for (size_t i = 0; i < n; i++) {
		struct stub_msg *m = find_msg(b, uids[i]);
		if (m == NULL)
			continue;
		if (unchangedsince != 0 && m->modseq > unchangedsince) {
			failed[nf++] = m->uid;
			continue;
		}
		uint32_t nfl = op == IMAP_MS_FLAGS_SET   ? flags
		               : op == IMAP_MS_FLAGS_ADD ? m->flags | flags
		                                         : m->flags & ~flags;
		char *nkw = kw_apply(m->keywords, op, keywords);
		bool same = nfl == m->flags &&
		            ((nkw == NULL && m->keywords == NULL) ||
		             (nkw != NULL && m->keywords != NULL && strcmp(nkw, m->keywords) == 0));
		if (same) {
			free(nkw);
			continue;
		}
		free(m->keywords);
		m->keywords = nkw;
		m->flags = nfl;
		m->modseq = ++b->highestmodseq;
		b->change++;
		ch[nch].uid = m->uid;
		ch[nch].flags = m->flags;
		ch[nch].modseq = m->modseq;
		ch[nch].keywords = m->keywords ? xstrdup(m->keywords) : NULL;
		nch++;
	}
	*changed_r = ch;
	*n_changed_r = nch;
	*failed_r = failed;
	*n_failed_r = nf;
	return 0;
}

static void
record_gone(struct stub_box *b, uint32_t uid)
{
	b->gone = xrealloc(b->gone, (b->ngone + 1) * sizeof *b->gone);
	b->gone[b->ngone].uid = uid;
	b->gone[b->ngone].modseq = ++b->highestmodseq;
	b->ngone++;
	b->change++;
}

/* Removes the messages with drop[i] set, logging them as vanished (QRESYNC, other sessions). */
static void
box_remove(struct stub_box *b, const bool *drop)
{
	size_t w = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (drop[i]) {
			record_gone(b, b->msgs[i].uid);
			msg_free(&b->msgs[i]);
		} else {
			b->msgs[w++] = b->msgs[i];
		}
	}
	b->n = w;
}

static int
stub_copy(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
          const char *dest, bool move, uint32_t *dest_uidvalidity_r, uint32_t **src_r,
          uint32_t **dst_r, size_t *n_r, struct err *err)
{
	struct stub *st = stub_of(ms);
	struct stub_box *b = find_id(st, mailbox), *d = find_name(st, dest, true);
	if (b == NULL || d == NULL)
		return enoent(err);
	if (d->n + n > STUB_MSGS_MAX)
		return err_set(err, IMAP_MS_EOVERQUOTA, "Mailbox full");
	uint32_t *src = xmalloc((n ? n : 1) * sizeof *src),
	         *dst = xmalloc((n ? n : 1) * sizeof *dst);
	bool *drop = xcalloc(b->n ? b->n : 1, sizeof *drop);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct stub_msg *m = find_msg(b, uids[i]);
		if (m == NULL)
			continue;
		src[k] = m->uid;
		if (d == b) { /* copy into the same mailbox: the array moves under m */
			size_t at = (size_t)(m - b->msgs);
			struct stub_msg copy = *m;
			dst[k] = box_put(d, copy.data, copy.len, copy.flags, copy.keywords,
			                 copy.internal_date)
			             ->uid;
			if (move)
				drop[at] = true;
		} else {
			dst[k] =
			    box_put(d, m->data, m->len, m->flags, m->keywords, m->internal_date)
			        ->uid;
			if (move)
				drop[(size_t)(m - b->msgs)] = true;
		}
		k++;
	}
	if (move) {
		if (d == b) {
			drop = xrealloc(drop, b->n * sizeof *drop);
			memset(drop + (b->n - k), 0, k * sizeof *drop);
		}
		box_remove(b, drop);
	}
	free(drop);
	*dest_uidvalidity_r = d->uidvalidity;
	*src_r = src;
	*dst_r = dst;
	*n_r = k;
	return 0;
}

static int
stub_expunge(struct imap_mailstore *ms, int64_t mailbox, const uint32_t *uids, size_t n,
             uint32_t **expunged_r, size_t *n_r, struct err *err)
{
	struct stub_box *b = find_id(stub_of(ms), mailbox);
	if (b == NULL)
		return enoent(err);
	uint32_t *sorted = NULL;
	if (uids != NULL) {
		sorted = xmalloc((n ? n : 1) * sizeof *sorted);
		memcpy(sorted, uids, n * sizeof *sorted);
		qsort(sorted, n, sizeof *sorted, cmp_u32);
	}
	bool *drop = xcalloc(b->n ? b->n : 1, sizeof *drop);
	uint32_t *ex = xmalloc((b->n ? b->n : 1) * sizeof *ex);
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (!(b->msgs[i].flags & IMAP_FLAG_DELETED))
			continue;
		if (sorted != NULL &&
		    bsearch(&b->msgs[i].uid, sorted, n, sizeof *sorted, cmp_u32) == NULL)
			continue;
		drop[i] = true;
		ex[k++] = b->msgs[i].uid;
	}
	box_remove(b, drop);
	free(drop);
	free(sorted);
	*expunged_r = ex;
	*n_r = k;
	return 0;
}

static int
stub_append(struct imap_mailstore *ms, const char *name, uint32_t flags, const char *keywords,
            int64_t internal_date, const unsigned char *msg, size_t len, uint32_t *uidvalidity_r,
            uint32_t *uid_r, struct err *err)
{
	struct stub_box *b = find_name(stub_of(ms), name, true);
	if (b == NULL)
		return enoent(err);
	if (b->n >= STUB_MSGS_MAX)
		return err_set(err, IMAP_MS_EOVERQUOTA, "Mailbox full");
	*uid_r = box_put(b, msg, len, flags, keywords, internal_date)->uid;
	*uidvalidity_r = b->uidvalidity;
	return 0;
}

static int
stub_quota(struct imap_mailstore *ms, uint64_t *used_r, uint64_t *limit_r, uint64_t *messages_r,
           struct err *err)
{
	struct stub *st = stub_of(ms);
	uint64_t used = 0, n = 0;
	for (size_t i = 0; i < st->nboxes; i++) {
		for (size_t j = 0; j < st->boxes[i].n; j++)
			used += st->boxes[i].msgs[j].len;
		n += st->boxes[i].n;
	}
	*used_r = used;
	*limit_r = 0;
	*messages_r = n;
	return 0;
}

static uint64_t
stub_change_seq(struct imap_mailstore *ms, int64_t mailbox)
{
	struct stub_box *b = find_id(stub_of(ms), mailbox);
	return b ? b->change : 0;
}

static void
stub_free(struct imap_mailstore *ms)
{
	struct stub *st = stub_of(ms);
	for (size_t i = 0; i < st->nboxes; i++) {
		box_clear_msgs(&st->boxes[i]);
		free(st->boxes[i].name);
		free(st->boxes[i].special_use);
	}
	free(st->boxes);
	free(ms->user);
	free(st);
}

static const struct imap_mailstore_ops stub_ops = {
    .login = stub_login,
    .list = stub_list,
    .status = stub_status,
    .create = stub_create,
    .delete = stub_delete,
    .rename = stub_rename,
    .subscribe = stub_subscribe,
    .messages = stub_messages,
    .vanished = stub_vanished,
    .meta = stub_meta,
    .read = stub_read,
    .store = stub_store,
    .copy = stub_copy,
    .expunge = stub_expunge,
    .append = stub_append,
    .quota = stub_quota,
    .change_seq = stub_change_seq,
    .idle_release = NULL,
    .free = stub_free,
};

struct imap_mailstore *
imap_mailstore_stub(const char *const *msgs, const size_t *lens, size_t n_msgs)
{
	struct stub *st = xcalloc(1, sizeof *st);
	st->base.ops = &stub_ops;
	st->next_id = 1;
	st->next_uidvalidity = 1700000000u;
	static const char *const boxes[][2] = {
	    {"INBOX", NULL}, {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"}, {"Trash", "\\Trash"}};
	for (size_t i = 0; i < 4; i++) {
		struct stub_box *b = box_add(st, boxes[i][0], boxes[i][1]);
		b->subscribed = true;
	}
	struct stub_box *inbox = find_name(st, "INBOX", true);
	for (size_t i = 0; i < n_msgs && i < STUB_MSGS_MAX; i++)
		box_put(inbox, (const unsigned char *)msgs[i], lens[i], 0, NULL,
		        1700000000 + (int64_t)i * 3600);
	return &st->base;
}
