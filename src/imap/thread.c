/* THREAD (RFC 5256 §3, §4): ORDEREDSUBJECT and REFERENCES over the messages the search part
 * matches. REFERENCES follows the algorithm of RFC 5256 §4 step by step (Message-ID table,
 * parent/child links from References / In-Reply-To without loops, dummies, pruning, grouping by
 * base subject, sorting by sent date with the sequence number as tie-breaker). Containers live
 * in one array and are linked by index; the Message-ID table is an open-addressing hash. */
#include "imap/fetch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_private.h"
#include "mail/hdr.h"
#include "mail/mime.h"
#include "util/xalloc.h"

#define THREAD_REFS_MAX  500 /* message-ids taken from one References field: policy */
#define THREAD_DEPTH_MAX 256 /* levels before a thread is split (see cut_deep) */
#define NONE             ((size_t)-1)

enum thread_alg { T_ORDEREDSUBJECT, T_REFERENCES };

struct imap_thread {
	enum thread_alg alg;
	struct imap_search *search;
};

void
imap_thread_free(struct imap_thread **tp)
{
	struct imap_thread *t = *tp;
	if (t == NULL)
		return;
	*tp = NULL;
	imap_search_free(&t->search);
	free(t);
}

struct imap_thread *
imap_thread_parse(struct imap_cursor *c, bool *badcharset_r, const char **err_r)
{
	*badcharset_r = false;
	struct slice a;
	struct imap_thread *t = xcalloc(1, sizeof *t);
	if (!imap_cur_atom(c, &a) || !imap_cur_sp(c)) {
		*err_r = "Missing thread algorithm";
		goto fail;
	}
	if (slice_eq_nocase(a, "REFERENCES")) {
		t->alg = T_REFERENCES;
	} else if (slice_eq_nocase(a, "ORDEREDSUBJECT")) {
		t->alg = T_ORDEREDSUBJECT;
	} else {
		*err_r = "Unknown thread algorithm";
		goto fail;
	}
	struct buf cs;
	buf_init(&cs, 256);
	if (!imap_cur_astring(c, &cs) || !imap_cur_sp(c)) {
		buf_deinit(&cs);
		*err_r = "Missing charset";
		goto fail;
	}
	struct slice v = buf_slice(&cs);
	bool ok = slice_eq_nocase(v, "UTF-8") || slice_eq_nocase(v, "US-ASCII");
	buf_deinit(&cs);
	if (!ok) {
		*badcharset_r = true;
		*err_r = "Unsupported charset";
		goto fail;
	}
	t->search = imap_search_parse_keys(c, err_r);
	if (t->search == NULL)
		goto fail;
	return t;
fail:
	imap_thread_free(&t);
	return NULL;
}

/* One message or dummy (msg == NONE). */
struct node {
	size_t msg;                 /* index into the record array */
	size_t parent, child, next; /* first child, next sibling */
};

struct trec {
	uint32_t num; /* sequence number or UID for the output */
	uint32_t seq;
	int64_t date;
	char *subject; /* base subject */
	bool is_reply;
	char *msgid;
	char **refs; /* References, or In-Reply-To's first id when References has none */
	size_t nrefs;
};

struct tctx {
	struct trec *r;
	size_t nr;
	struct node *nodes;
	size_t nn, cap;
};

static size_t
node_new(struct tctx *t, size_t msg)
{
	if (t->nn == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->nodes = xrealloc(t->nodes, t->cap * sizeof *t->nodes);
	}
	t->nodes[t->nn] = (struct node){msg, NONE, NONE, NONE};
	return t->nn++;
}

/* ---- header parsing ---- */

static void
raw_field(const struct buf *hdr, const char *name, struct buf *out)
{
	struct hdr_iter it;
	struct hdr_field f;
	const char *why;
	hdr_iter_init(&it, hdr->data, hdr->len);
	while (hdr_iter_next(&it, &f, &why) == HDR_FIELD) {
		if (slice_eq_nocase(f.name, name)) {
			hdr_unfold(f.value, out);
			return;
		}
	}
}

/* The msg-ids "<...>" of a field value, in order (at most max). */
static size_t
msg_ids(struct slice v, char ***ids_r, size_t max)
{
	char **ids = NULL;
	size_t n = 0;
	const char *p = v.p, *end = v.p + v.len;
	while (p < end && n < max) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (lt == NULL)
			break;
		const char *gt = memchr(lt, '>', (size_t)(end - lt));
		if (gt == NULL)
			break;
		struct buf id;
		buf_init(&id, 0);
		for (const char *q = lt + 1; q < gt; q++)
			if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
				buf_append_byte(&id, (unsigned char)*q);
		if (id.len > 0) {
			ids = xrealloc(ids, (n + 1) * sizeof *ids);
			ids[n++] = xstrdup(buf_cstr(&id));
		}
		buf_deinit(&id);
		p = gt + 1;
	}
	*ids_r = ids;
	return n;
}

static void
fill_rec(struct trec *r, const struct buf *hdr, int64_t internal_date, bool refs)
{
	r->date = imap_search_sent_date(hdr, internal_date, NULL);
	struct buf all, base;
	buf_init(&all, 0);
	buf_init(&base, 0);
	mime_search_header(hdr->data, hdr->len, "Subject", &all);
	const unsigned char *nl = all.len ? memchr(all.data, '\n', all.len) : NULL;
	mime_base_subject(slice_make(all.data, nl ? (size_t)(nl - all.data) : all.len), &base,
	                  &r->is_reply);
	r->subject = xstrdup(buf_cstr(&base));
	buf_deinit(&all);
	buf_deinit(&base);
	if (!refs)
		return;
	struct buf v;
	buf_init(&v, 0);
	char **ids;
	raw_field(hdr, "Message-ID", &v);
	size_t n = msg_ids(buf_slice(&v), &ids, 1);
	if (n == 1) {
		r->msgid = ids[0];
		free(ids);
	}
	buf_reset(&v);
	raw_field(hdr, "References", &v);
	r->nrefs = msg_ids(buf_slice(&v), &r->refs, THREAD_REFS_MAX);
	if (r->nrefs == 0) {
		free(r->refs);
		buf_reset(&v);
		raw_field(hdr, "In-Reply-To", &v);
		r->nrefs = msg_ids(buf_slice(&v), &r->refs, 1);
	}
	buf_deinit(&v);
}

/* ---- sorting helpers ---- */

/* The record that gives a node its date/subject: itself, or for a dummy its first child. */
static const struct trec *
node_rec(const struct tctx *t, size_t n)
{
	while (n != NONE && t->nodes[n].msg == NONE)
		n = t->nodes[n].child;
	return n == NONE ? NULL : &t->r[t->nodes[n].msg];
}

static int
cmp_nodes(const struct tctx *t, size_t a, size_t b)
{
	const struct trec *ra = node_rec(t, a), *rb = node_rec(t, b);
	if (ra == NULL || rb == NULL)
		return (ra == NULL) - (rb == NULL);
	if (ra->date != rb->date)
		return ra->date < rb->date ? -1 : 1;
	return ra->seq < rb->seq ? -1 : ra->seq > rb->seq;
}

/* Sorts a sibling list (insertion sort on the linked list: lists are short) after sorting
 * each member's children, so that a dummy's date is its earliest child's. */
static size_t
sort_list(struct tctx *t, size_t head)
{
	for (size_t n = head; n != NONE; n = t->nodes[n].next)
		t->nodes[n].child = sort_list(t, t->nodes[n].child);
	size_t sorted = NONE;
	while (head != NONE) {
		size_t n = head;
		head = t->nodes[n].next;
		size_t *pp = &sorted;
		while (*pp != NONE && cmp_nodes(t, *pp, n) <= 0)
			pp = &t->nodes[*pp].next;
		t->nodes[n].next = *pp;
		*pp = n;
	}
	return sorted;
}

static void
add_child(struct tctx *t, size_t parent, size_t child)
{
	t->nodes[child].parent = parent;
	t->nodes[child].next = NONE;
	size_t *pp = &t->nodes[parent].child;
	while (*pp != NONE)
		pp = &t->nodes[*pp].next;
	*pp = child;
}

static void
unlink_child(struct tctx *t, size_t child)
{
	size_t parent = t->nodes[child].parent;
	if (parent == NONE)
		return;
	size_t *pp = &t->nodes[parent].child;
	while (*pp != NONE && *pp != child)
		pp = &t->nodes[*pp].next;
	if (*pp == child)
		*pp = t->nodes[child].next;
	t->nodes[child].parent = NONE;
	t->nodes[child].next = NONE;
}

/* True when a is b or an ancestor of b. */
static bool
is_ancestor(const struct tctx *t, size_t a, size_t b)
{
	for (size_t n = b; n != NONE; n = t->nodes[n].parent)
		if (n == a)
			return true;
	return false;
}

/* ---- string → index tables (Message-IDs, base subjects) ---- */

struct idtab {
	const char **keys;
	size_t *vals;
	size_t cap;
	bool nocase; /* base subjects compare with i;ascii-casemap, Message-IDs exactly */
};

static void
tab_init(struct idtab *tab, size_t n, bool nocase)
{
	tab->nocase = nocase;
	tab->cap = 16;
	while (tab->cap < n * 2)
		tab->cap *= 2;
	tab->keys = xcalloc(tab->cap, sizeof *tab->keys);
	tab->vals = xcalloc(tab->cap, sizeof *tab->vals);
}

static void
tab_deinit(struct idtab *tab)
{
	free(tab->keys);
	free(tab->vals);
}

static uint64_t
hash_str(const char *s, bool nocase)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (nocase && ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		h = (h ^ ch) * 1099511628211ull;
	}
	return h;
}

/* The slot of key: holds key, or is free (keys[i] == NULL). The table never fills (cap >= 2n). */
static size_t
tab_slot(const struct idtab *tab, const char *key)
{
	size_t i = (size_t)(hash_str(key, tab->nocase) & (tab->cap - 1));
	while (tab->keys[i] != NULL &&
	       (tab->nocase ? strcasecmp(tab->keys[i], key) : strcmp(tab->keys[i], key)) != 0)
		i = (i + 1) & (tab->cap - 1);
	return i;
}

/* The container for id, created as a dummy when new. */
static size_t
id_lookup(struct idtab *tab, struct tctx *t, const char *id, bool *created_r)
{
	size_t i = tab_slot(tab, id);
	*created_r = tab->keys[i] == NULL;
	if (*created_r) {
		tab->keys[i] = id;
		tab->vals[i] = node_new(t, NONE);
	}
	return tab->vals[i];
}

/* The later steps recurse over the tree, so a hostile chain of replies must not make it deep:
 * every node at a depth that is a multiple of THREAD_DEPTH_MAX starts a thread of its own.
 * XXX: such a thread shows as several; real threads are far shallower. */
static void
cut_deep(struct tctx *t)
{
	size_t *depth = xmalloc((t->nn ? t->nn : 1) * sizeof *depth);
	size_t *stack = xmalloc((t->nn ? t->nn : 1) * sizeof *stack);
	for (size_t i = 0; i < t->nn; i++)
		depth[i] = NONE;
	for (size_t i = 0; i < t->nn; i++) {
		size_t sp = 0, n = i;
		while (n != NONE && depth[n] == NONE) {
			stack[sp++] = n;
			n = t->nodes[n].parent;
		}
		size_t d = n == NONE ? 0 : depth[n] + 1;
		while (sp > 0) {
			depth[stack[--sp]] = d;
			d++;
		}
	}
	for (size_t i = 0; i < t->nn; i++)
		if (depth[i] > 0 && depth[i] % THREAD_DEPTH_MAX == 0)
			unlink_child(t, i);
	free(depth);
	free(stack);
}

/* RFC 5256 §4 REFERENCES steps 1-3: returns the list of roots (linked through next). */
static size_t
build_links(struct tctx *t)
{
	size_t nids = 0;
	for (size_t i = 0; i < t->nr; i++)
		nids += 1 + t->r[i].nrefs;
	struct idtab tab;
	tab_init(&tab, nids, false);
	for (size_t i = 0; i < t->nr; i++) {
		struct trec *r = &t->r[i];
		bool created;
		size_t me = NONE;
		if (r->msgid != NULL) {
			me = id_lookup(&tab, t, r->msgid, &created);
			if (t->nodes[me].msg != NONE) /* duplicate Message-ID: a unique one */
				me = NONE;
		}
		if (me == NONE)
			me = node_new(t, i);
		t->nodes[me].msg = i;
		/* 1.A: link the References chain, parent before child, keeping existing links */
		size_t prev = NONE;
		for (size_t k = 0; k < r->nrefs; k++) {
			size_t cur = id_lookup(&tab, t, r->refs[k], &created);
			if (prev != NONE && t->nodes[cur].parent == NONE && cur != prev &&
			    (created || !is_ancestor(t, cur, prev)))
				add_child(t, prev, cur);
			prev = cur;
		}
		/* 1.B: the last reference is the parent, replacing a link guessed earlier */
		bool loop = prev != NONE && (prev == me || is_ancestor(t, me, prev));
		if (!loop && t->nodes[me].parent != prev) {
			unlink_child(t, me);
			if (prev != NONE)
				add_child(t, prev, me);
		}
	}
	tab_deinit(&tab);
	cut_deep(t);
	/* 2: the root set */
	size_t roots = NONE, *tail = &roots;
	for (size_t n = 0; n < t->nn; n++) {
		if (t->nodes[n].parent == NONE) {
			t->nodes[n].next = NONE;
			*tail = n;
			tail = &t->nodes[n].next;
		}
	}
	return roots;
}

/* 4: prunes dummies in a sibling list; returns the new list. */
static size_t
prune(struct tctx *t, size_t head, size_t parent, bool root)
{
	size_t out = NONE, *tail = &out;
	while (head != NONE) {
		size_t n = head;
		head = t->nodes[n].next;
		t->nodes[n].next = NONE;
		t->nodes[n].child = prune(t, t->nodes[n].child, n, false);
		if (t->nodes[n].msg == NONE) {
			size_t kids = t->nodes[n].child;
			if (kids == NONE)
				continue; /* A: dummy without children goes */
			if (!root || t->nodes[kids].next == NONE) {
				/* B: promote the children (at the root only a single child) */
				for (size_t k = kids; k != NONE; k = t->nodes[k].next)
					t->nodes[k].parent = parent;
				*tail = kids;
				while (*tail != NONE)
					tail = &t->nodes[*tail].next;
				continue;
			}
		}
		t->nodes[n].parent = parent;
		*tail = n;
		tail = &t->nodes[n].next;
	}
	return out;
}

/* 5.B-C: groups the (date-sorted) roots by base subject; the result is re-sorted by the
 * caller. */
static size_t
group_subjects(struct tctx *t, size_t roots)
{
	size_t nroots = 0;
	for (size_t n = roots; n != NONE; n = t->nodes[n].next)
		nroots++;
	size_t *v = xmalloc((nroots ? nroots : 1) * sizeof *v), k = 0;
	bool *dropped = xcalloc(nroots ? nroots : 1, sizeof *dropped);
	for (size_t n = roots; n != NONE; n = t->nodes[n].next)
		v[k++] = n;
	struct idtab tab; /* base subject -> representing container */
	tab_init(&tab, nroots, true);
	/* pass 1: the container that represents each subject */
	for (size_t i = 0; i < nroots; i++) {
		const struct trec *r = node_rec(t, v[i]);
		if (r == NULL || r->subject[0] == '\0')
			continue;
		size_t slot = tab_slot(&tab, r->subject);
		if (tab.keys[slot] == NULL) {
			tab.keys[slot] = r->subject;
			tab.vals[slot] = v[i];
			continue;
		}
		size_t c = tab.vals[slot];
		bool old_dummy = t->nodes[c].msg == NONE, dummy = t->nodes[v[i]].msg == NONE;
		if ((dummy && !old_dummy) ||
		    (!old_dummy && node_rec(t, c)->is_reply && !r->is_reply))
			tab.vals[slot] = v[i];
	}
	/* pass 2: merge the other roots of a subject into its container */
	size_t *extra = xmalloc((nroots ? nroots : 1) * sizeof *extra), nextra = 0;
	for (size_t i = 0; i < nroots; i++) {
		size_t n = v[i];
		const struct trec *r = node_rec(t, n);
		if (r == NULL || r->subject[0] == '\0' || t->nodes[n].parent != NONE)
			continue;
		size_t slot = tab_slot(&tab, r->subject), c = tab.vals[slot];
		if (c == n)
			continue;
		bool cd = t->nodes[c].msg == NONE, nd = t->nodes[n].msg == NONE;
		if (cd && nd) { /* a: both dummies: n's children join c's */
			size_t kids = t->nodes[n].child;
			t->nodes[n].child = NONE;
			while (kids != NONE) {
				size_t nx = t->nodes[kids].next;
				add_child(t, c, kids);
				kids = nx;
			}
			dropped[i] = true;
		} else if (cd) { /* b: the message joins the dummy's children */
			add_child(t, c, n);
		} else if (nd) {
			add_child(t, n, c);
			tab.vals[slot] = n;
		} else if (!node_rec(t, c)->is_reply && r->is_reply) { /* c */
			add_child(t, c, n);
		} else if (node_rec(t, c)->is_reply && !r->is_reply) { /* d */
			add_child(t, n, c);
			tab.vals[slot] = n;
		} else { /* e: a new dummy holds both as siblings */
			size_t d = node_new(t, NONE);
			add_child(t, d, c);
			add_child(t, d, n);
			tab.vals[slot] = d;
			extra[nextra++] = d;
		}
	}
	size_t out = NONE, *tail = &out;
	for (size_t i = 0; i < nroots + nextra; i++) {
		size_t n = i < nroots ? v[i] : extra[i - nroots];
		if (t->nodes[n].parent != NONE || (i < nroots && dropped[i]))
			continue;
		t->nodes[n].next = NONE;
		*tail = n;
		tail = &t->nodes[n].next;
	}
	tab_deinit(&tab);
	free(v);
	free(dropped);
	free(extra);
	return out;
}

/* ORDEREDSUBJECT (RFC 5256 §3): sorted by base subject then date; the first message of each
 * subject is the parent of the others. */
static size_t
ordered_subject(struct tctx *t, size_t *order)
{
	size_t out = NONE, *tail = &out, parent = NONE;
	const char *subj = NULL;
	for (size_t i = 0; i < t->nr; i++) {
		const struct trec *r = &t->r[order[i]];
		size_t n = node_new(t, order[i]);
		if (subj != NULL && strcasecmp(subj, r->subject) == 0) {
			add_child(t, parent, n);
			continue;
		}
		subj = r->subject;
		parent = n;
		*tail = n;
		tail = &t->nodes[n].next;
	}
	return out;
}

static int
cmp_subject_date(const void *pa, const void *pb, void *arg)
{
	const struct trec *r = arg;
	const struct trec *a = &r[*(const size_t *)pa], *b = &r[*(const size_t *)pb];
	int c = strcasecmp(a->subject, b->subject);
	if (c != 0)
		return c;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* RFC 5256 §4 output: "(" chain ")" per thread; a node with one child continues the chain,
 * several children each get "(" ... ")". */
static void
out_chain(const struct tctx *t, size_t n, struct buf *out)
{
	bool dummy = t->nodes[n].msg == NONE;
	if (!dummy)
		buf_printf(out, "%u", t->r[t->nodes[n].msg].num);
	size_t kids = t->nodes[n].child;
	if (kids == NONE)
		return;
	if (!dummy)
		buf_append_byte(out, ' ');
	if (!dummy && t->nodes[kids].next == NONE) {
		out_chain(t, kids, out);
		return;
	}
	for (size_t k = kids; k != NONE; k = t->nodes[k].next) {
		buf_append_byte(out, '(');
		out_chain(t, k, out);
		buf_append_byte(out, ')');
	}
}

int
imap_thread_run(const struct imap_thread *tp, const struct imap_search_ctx *ctx, bool uid,
                struct buf *out, struct err *err)
{
	size_t *idx, n;
	if (imap_search_run(tp->search, ctx, &idx, &n, err) < 0)
		return -1;
	struct tctx t;
	memset(&t, 0, sizeof t);
	t.r = xcalloc(n ? n : 1, sizeof *t.r);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const struct imap_msgref *m = &ctx->msgs[idx[i]];
		struct imap_ms_meta meta;
		struct buf hdr;
		memset(&meta, 0, sizeof meta);
		buf_init(&hdr, 0);
		if (imap_search_load_header(ctx->ms, ctx->mailbox, m->uid, &meta, &hdr, err) < 0) {
			buf_deinit(&hdr);
			if (err->code != IMAP_MS_ENONEXISTENT) {
				rc = -1;
				break;
			}
			meta.internal_date = 0; /* vanished meanwhile: no headers */
		} else {
			imap_ms_meta_deinit(&meta);
		}
		struct trec *r = &t.r[t.nr++];
		r->num = uid ? m->uid : m->seq;
		r->seq = m->seq;
		fill_rec(r, &hdr, meta.internal_date, tp->alg == T_REFERENCES);
		buf_deinit(&hdr);
	}
	if (rc == 0) {
		size_t roots;
		if (tp->alg == T_REFERENCES) {
			roots = build_links(&t);
			roots = prune(&t, roots, NONE, true);
			roots = sort_list(&t, roots);
			roots = group_subjects(&t, roots);
		} else {
			size_t *order = xmalloc((t.nr ? t.nr : 1) * sizeof *order);
			for (size_t i = 0; i < t.nr; i++)
				order[i] = i;
			qsort_r(order, t.nr, sizeof *order, cmp_subject_date, t.r);
			roots = ordered_subject(&t, order);
			free(order);
		}
		roots = sort_list(&t, roots);
		for (size_t r = roots; r != NONE; r = t.nodes[r].next) {
			buf_append_byte(out, '(');
			out_chain(&t, r, out);
			buf_append_byte(out, ')');
		}
	}
	for (size_t i = 0; i < t.nr; i++) {
		free(t.r[i].subject);
		free(t.r[i].msgid);
		for (size_t k = 0; k < t.r[i].nrefs; k++)
			free(t.r[i].refs[k]);
		free(t.r[i].refs);
	}
	free(t.r);
	free(t.nodes);
	free(idx);
	return rc;
}
