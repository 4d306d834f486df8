/* LIST (RFC 9051 §6.3.9, RFC 3501 §6.3.8) with LIST-EXTENDED (RFC 5258), LIST-STATUS
 * (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348); LSUB (RFC 3501 §6.3.9); STATUS
 * (RFC 9051 §6.3.11, CONDSTORE's HIGHESTMODSEQ, RFC 7162 §3.1.4).
 *
 * LIST reads the account's whole mailbox list once (ms->ops->list), adds the superior levels
 * of every name as "virtual" nodes, sorts the nodes in hierarchy order (INBOX first; children
 * right after their parent) and derives each node's attributes from that one array.
 *
 * Patterns are matched by simulating the pattern's automaton over a bitset of positions (one
 * pass over the name, O(len(name) * len(pattern) / 64)): no backtracking, so "*%*%*%..." or
 * "a*a*a*a*...b" cost the same as "*". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_private.h"
#include "util/xalloc.h"

#define LIST_PATTERNS_MAX 32 /* patterns per LIST (RFC 5258 sets no limit) */
#define LIST_WIRE_MAX     (IMAP_MAILBOX_NAME_MAX * 4)
/* Tokens of all patterns of one LIST together (after collapsing wildcard runs): bounds the
 * matching work at (names × name length × this / 64) word operations. */
#define LIST_TOKENS_MAX 4096

/* ---- STATUS items ---- */

enum status_item {
	ST_MESSAGES,
	ST_UIDNEXT,
	ST_UIDVALIDITY,
	ST_UNSEEN,
	ST_DELETED,
	ST_SIZE,
	ST_HIGHESTMODSEQ,
	ST_RECENT,
	ST_COUNT
};

static const char *const status_names[ST_COUNT] = {
    "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "HIGHESTMODSEQ", "RECENT",
};

/* The items asked for, in the client's order, each once. */
struct status_items {
	unsigned char v[ST_COUNT];
	size_t n;
};

/* "(" status-att *(SP status-att) ")" */
static bool
status_items_parse(struct imap_cursor *c, struct status_items *it)
{
	it->n = 0;
	unsigned seen = 0;
	if (!imap_cur_list_open(c))
		return false;
	for (;;) {
		struct slice a;
		if (!imap_cur_atom(c, &a))
			return false;
		size_t i = 0;
		while (i < ST_COUNT && !slice_eq_nocase(a, status_names[i]))
			i++;
		if (i == ST_COUNT) {
			c->p = a.p;
			c->error = "Unknown STATUS item";
			return false;
		}
		if (!(seen & (1u << i))) {
			seen |= 1u << i;
			it->v[it->n++] = (unsigned char)i;
		}
		if (imap_cur_peek(c) == ')')
			break;
		if (!imap_cur_sp(c))
			return false;
	}
	return imap_cur_list_close(c);
}

/* HIGHESTMODSEQ asked: RFC 7162 §3.1 makes the command a CONDSTORE enabling one. */
static bool
status_wants_modseq(const struct status_items *it)
{
	for (size_t i = 0; i < it->n; i++)
		if (it->v[i] == ST_HIGHESTMODSEQ)
			return true;
	return false;
}

static void
status_out(struct imap_cmdctx *cx, const char *name, const struct imap_ms_status *st,
           const struct status_items *it)
{
	(void)buf_append_str(cx->out, "* STATUS ");
	imap_mailbox_out(cx->out, name, cx->utf8);
	(void)buf_append_str(cx->out, " (");
	for (size_t i = 0; i < it->n; i++) {
		unsigned long long v = 0;
		switch ((enum status_item)it->v[i]) {
		case ST_MESSAGES:
			v = st->messages;
			break;
		case ST_UIDNEXT:
			v = st->uidnext;
			break;
		case ST_UIDVALIDITY:
			v = st->uidvalidity;
			break;
		case ST_UNSEEN:
			v = st->unseen;
			break;
		case ST_DELETED:
			v = st->deleted;
			break;
		case ST_SIZE:
			v = st->size;
			break;
		case ST_HIGHESTMODSEQ:
			v = st->highestmodseq;
			break;
		case ST_RECENT: /* \Recent is not kept (IMAP4rev2 dropped it) */
		case ST_COUNT:
			v = 0;
			break;
		}
		(void)buf_printf(cx->out, "%s%s %llu", i ? " " : "", status_names[it->v[i]], v);
	}
	(void)buf_append_str(cx->out, ")\r\n");
}

int
imap_cmd_status(struct imap_cmdctx *cx, struct imap_cursor *c)
{
	struct buf name;
	buf_init(&name, 0);
	bool bad = false;
	const char *why = NULL;
	int r = 0;
	struct status_items it;
	if (imap_mailbox_arg(cx, c, &name, &bad, &why) < 0) {
		if (bad || why == NULL) {
			imap_reply_tagged(cx->out, cx->tag, "BAD", NULL, "%s",
			                  why != NULL ? why : "Syntax: STATUS mailbox (items)");
			r = -1;
		} else {
			imap_reply_tagged(cx->out, cx->tag, "NO", "CANNOT", "%s", why);
		}
		goto out;
	}
	if (!imap_cur_sp(c) || !status_items_parse(c, &it) || !imap_cur_eol(c)) {
		imap_reply_tagged(cx->out, cx->tag, "BAD", NULL, "%s",
		                  c->error != NULL ? c->error : "Syntax: STATUS mailbox (items)");
		r = -1;
		goto out;
	}
	if (status_wants_modseq(&it))
		cx->condstore_enable = true;
	struct imap_ms_status st = {0};
	struct err err = {0};
	if (cx->ms->ops->status(cx->ms, buf_cstr(&name), &st, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	free(st.special_use);
	status_out(cx, buf_cstr(&name), &st, &it);
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "STATUS completed");
out:
	buf_deinit(&name);
	return r;
}

/* ---- pattern matching ---- */

/* A compiled pattern: tokens are literal bytes or the wildcards "*" (anything) and "%"
 * (anything but "/"), runs of wildcards collapsed ("*%" = "*", "%%" = "%"). State i means
 * "the first i tokens are matched"; the name matches when state k is reachable at its end. */
struct pattern {
	unsigned char *tok;
	size_t k;               /* tokens */
	size_t w;               /* 64-bit words per state set (k + 1 states) */
	bool never;             /* more literal bytes than any name can hold */
	bool wire;              /* not decodable: matched against the names' modified UTF-7 form */
	unsigned char row[256]; /* byte → row of lit (0: the byte appears nowhere) */
	uint64_t *lit;          /* rows of w words: states whose token is that literal byte */
	uint64_t *star, *pct, *wild;
	uint64_t *s, *t; /* scratch state sets */
};

static void
pattern_compile(struct pattern *pt, const char *p, size_t len)
{
	memset(pt, 0, sizeof *pt);
	pt->tok = xmalloc(len + 1);
	size_t lits = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		bool wild = ch == '*' || ch == '%';
		if (wild && pt->k > 0 && (pt->tok[pt->k - 1] == '*' || pt->tok[pt->k - 1] == '%')) {
			if (ch == '*')
				pt->tok[pt->k - 1] = '*';
			continue;
		}
		lits += !wild;
		pt->tok[pt->k++] = ch;
	}
	if (lits > IMAP_MAILBOX_NAME_MAX) {
		pt->never = true;
		return;
	}
	pt->w = (pt->k + 1 + 63) / 64;
	size_t rows = 1;
	for (size_t i = 0; i < pt->k; i++) {
		unsigned char ch = pt->tok[i];
		if (ch != '*' && ch != '%' && pt->row[ch] == 0)
			pt->row[ch] = (unsigned char)rows++;
	}
	pt->lit = xcalloc(rows * pt->w, sizeof *pt->lit);
	pt->star = xcalloc(5 * pt->w, sizeof *pt->star);
	pt->pct = pt->star + pt->w;
	pt->wild = pt->pct + pt->w;
	pt->s = pt->wild + pt->w;
	pt->t = pt->s + pt->w;
	for (size_t i = 0; i < pt->k; i++) {
		unsigned char ch = pt->tok[i];
		uint64_t bit = UINT64_C(1) << (i % 64);
		if (ch == '*')
			pt->star[i / 64] |= bit;
		else if (ch == '%')
			pt->pct[i / 64] |= bit;
		else
			pt->lit[pt->row[ch] * pt->w + i / 64] |= bit;
		if (ch == '*' || ch == '%')
			pt->wild[i / 64] |= bit;
	}
}

static void
pattern_free(struct pattern *pt)
{
	free(pt->tok);
	free(pt->lit);
	free(pt->star);
	memset(pt, 0, sizeof *pt);
}

/* dst |= (src & mask) << 1, over w words */
static void
shl_or(uint64_t *dst, const uint64_t *src, const uint64_t *mask, size_t w)
{
	uint64_t carry = 0;
	for (size_t i = 0; i < w; i++) {
		uint64_t v = mask != NULL ? src[i] & mask[i] : src[i];
		dst[i] |= (v << 1) | carry;
		carry = v >> 63;
	}
}

static const uint64_t *
lit_row(const struct pattern *pt, unsigned char ch)
{
	return pt->lit + (size_t)pt->row[ch] * pt->w;
}

/* "INBOX" is case-insensitive (RFC 9051 §5.1), also as the first level of "INBOX/x": the
 * first five bytes of such a name match pattern letters in any case. */
static bool
pattern_match(struct pattern *pt, const char *name)
{
	if (pt->never)
		return false;
	size_t w = pt->w;
	uint64_t *s = pt->s, *t = pt->t;
	memset(s, 0, w * sizeof *s);
	s[0] = 1;
	shl_or(s, s, pt->wild, w); /* a leading wildcard may match nothing */
	bool inbox = strncmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/');
	for (size_t pos = 0; name[pos] != '\0'; pos++) {
		unsigned char ch = (unsigned char)name[pos];
		memset(t, 0, w * sizeof *t);
		if (inbox && pos < 5) {
			shl_or(t, s, lit_row(pt, ch), w);
			shl_or(t, s, lit_row(pt, (unsigned char)(ch | 0x20)), w);
		} else {
			shl_or(t, s, lit_row(pt, ch), w);
		}
		bool any = false;
		for (size_t i = 0; i < w; i++) {
			t[i] |= s[i] & pt->star[i];
			if (ch != '/')
				t[i] |= s[i] & pt->pct[i];
		}
		shl_or(t, t, pt->wild, w); /* no two wildcards in a row: one step closes it */
		for (size_t i = 0; i < w; i++)
			any |= t[i] != 0;
		if (!any)
			return false;
		uint64_t *x = s;
		s = t;
		t = x;
	}
	return (s[pt->k / 64] >> (pt->k % 64)) & 1;
}

/* ---- the mailbox tree ---- */

struct lnode {
	const char *name;
	size_t len;
	char *own; /* virtual nodes own their name */
	const char *special_use;
	bool exists, subscribed;
	bool matched, meets;
	bool child_exists;        /* an existing mailbox below */
	bool child_meets;         /* a mailbox below meets the selection criteria */
	bool child_sub_unmatched; /* a subscribed name below that no pattern matches (LSUB) */
};

static bool
is_inbox_tree(const char *s, size_t n)
{
	return n >= 5 && memcmp(s, "INBOX", 5) == 0 && (n == 5 || s[5] == '/');
}

/* INBOX and its children first, then hierarchy order: "/" sorts below every other byte, so
 * "a", "a/b", "a b" and each node's inferiors follow it directly. */
static int
tree_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	bool ia = is_inbox_tree(a, an), ib = is_inbox_tree(b, bn);
	if (ia != ib)
		return ia ? -1 : 1;
	size_t n = an < bn ? an : bn;
	for (size_t i = 0; i < n; i++) {
		unsigned x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x == y)
			continue;
		x = x == '/' ? 1 : x + 1;
		y = y == '/' ? 1 : y + 1;
		return x < y ? -1 : 1;
	}
	return an < bn ? -1 : an > bn ? 1 : 0;
}

static int
node_cmp(const void *a, const void *b)
{
	const struct lnode *x = a, *y = b;
	return tree_cmp(x->name, x->len, y->name, y->len);
}

static struct lnode *
node_find(struct lnode *v, size_t n, const char *name, size_t len)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = tree_cmp(v[mid].name, v[mid].len, name, len);
		if (c == 0)
			return &v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

enum mark { MARK_EXISTS, MARK_MEETS, MARK_SUB_UNMATCHED };

/* Sets the flag on every superior level of node j. */
static void
mark_ancestors(struct lnode *v, size_t n, size_t j, enum mark m)
{
	const char *name = v[j].name;
	for (const char *p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/')) {
		struct lnode *a = node_find(v, n, name, (size_t)(p - name));
		if (a == NULL)
			continue;
		if (m == MARK_EXISTS)
			a->child_exists = true;
		else if (m == MARK_MEETS)
			a->child_meets = true;
		else
			a->child_sub_unmatched = true;
	}
}

/* Nodes for every stored entry and every superior level of it, sorted, one per name. */
static struct lnode *
tree_build(const struct imap_ms_mailbox *mb, size_t nmb, size_t *n_r)
{
	size_t cap = nmb + 1, n = 0;
	for (size_t i = 0; i < nmb; i++)
		for (const char *p = mb[i].name; (p = strchr(p, '/')) != NULL; p++)
			cap++;
	struct lnode *v = xcalloc(cap, sizeof *v);
	for (size_t i = 0; i < nmb; i++) {
		const char *nm = mb[i].name;
		v[n++] = (struct lnode){.name = nm,
		                        .len = strlen(nm),
		                        .special_use = mb[i].exists ? mb[i].special_use : NULL,
		                        .exists = mb[i].exists,
		                        .subscribed = mb[i].subscribed};
		for (const char *p = strchr(nm, '/'); p != NULL; p = strchr(p + 1, '/')) {
			char *own = xstrndup(nm, (size_t)(p - nm));
			v[n++] = (struct lnode){.name = own, .len = (size_t)(p - nm), .own = own};
		}
	}
	qsort(v, n, sizeof *v, node_cmp);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && node_cmp(&v[m - 1], &v[i]) == 0) {
			struct lnode *d = &v[m - 1], *x = &v[i];
			d->exists = d->exists || x->exists;
			d->subscribed = d->subscribed || x->subscribed;
			if (d->special_use == NULL)
				d->special_use = x->special_use;
			if (d->own != NULL && x->own == NULL) { /* keep the stored name */
				free(d->own);
				d->own = NULL;
				d->name = x->name;
			} else {
				free(x->own);
			}
			continue;
		}
		v[m++] = v[i];
	}
	for (size_t j = 0; j < m; j++)
		if (v[j].exists)
			mark_ancestors(v, m, j, MARK_EXISTS);
	*n_r = m;
	return v;
}

static void
tree_free(struct lnode *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].own);
	free(v);
}

/* ---- the command ---- */

enum {
	SEL_SUBSCRIBED = 1u << 0,
	SEL_REMOTE = 1u << 1,
	SEL_RECURSIVE = 1u << 2,
	SEL_SPECIAL = 1u << 3,
};
enum {
	RET_SUBSCRIBED = 1u << 0,
	RET_CHILDREN = 1u << 1,
	RET_SPECIAL = 1u << 2,
	RET_STATUS = 1u << 3,
};

struct list_req {
	bool lsub, extended;
	unsigned sel, ret;
	struct status_items items;
	struct buf ref;
	struct buf pats[LIST_PATTERNS_MAX];
	size_t npats;
};

static const struct {
	const char *name;
	unsigned bit;
} sel_opts[] = {{"SUBSCRIBED", SEL_SUBSCRIBED},
                {"REMOTE", SEL_REMOTE},
                {"RECURSIVEMATCH", SEL_RECURSIVE},
                {"SPECIAL-USE", SEL_SPECIAL}};

static bool
select_opts(struct imap_cursor *c, unsigned *sel_r)
{
	if (!imap_cur_list_open(c))
		return false;
	while (imap_cur_peek(c) != ')') {
		struct slice a;
		if (!imap_cur_atom(c, &a))
			return false;
		size_t i = 0;
		while (i < sizeof sel_opts / sizeof sel_opts[0] &&
		       !slice_eq_nocase(a, sel_opts[i].name))
			i++;
		if (i == sizeof sel_opts / sizeof sel_opts[0]) {
			c->p = a.p;
			c->error = "Unknown LIST selection option";
			return false;
		}
		*sel_r |= sel_opts[i].bit;
		if (imap_cur_peek(c) != ')' && !imap_cur_sp(c))
			return false;
	}
	if (!imap_cur_list_close(c))
		return false;
	/* RFC 5258 §3: RECURSIVEMATCH alone (or with REMOTE only) is an error */
	if ((*sel_r & SEL_RECURSIVE) && !(*sel_r & (SEL_SUBSCRIBED | SEL_SPECIAL))) {
		c->error = "RECURSIVEMATCH needs another selection option";
		return false;
	}
	return true;
}

/* "RETURN" SP "(" [return-option *(SP return-option)] ")" */
static bool
return_opts(struct imap_cursor *c, struct list_req *rq)
{
	struct slice a;
	if (!imap_cur_atom(c, &a))
		return false;
	if (!slice_eq_nocase(a, "RETURN")) {
		c->p = a.p;
		c->error = "Expected RETURN";
		return false;
	}
	if (!imap_cur_sp(c) || !imap_cur_list_open(c))
		return false;
	while (imap_cur_peek(c) != ')') {
		if (!imap_cur_atom(c, &a))
			return false;
		if (slice_eq_nocase(a, "SUBSCRIBED")) {
			rq->ret |= RET_SUBSCRIBED;
		} else if (slice_eq_nocase(a, "CHILDREN")) {
			rq->ret |= RET_CHILDREN;
		} else if (slice_eq_nocase(a, "SPECIAL-USE")) {
			rq->ret |= RET_SPECIAL;
		} else if (slice_eq_nocase(a, "STATUS")) {
			if (!imap_cur_sp(c) || !status_items_parse(c, &rq->items))
				return false;
			rq->ret |= RET_STATUS;
		} else {
			c->p = a.p;
			c->error = "Unknown LIST return option";
			return false;
		}
		if (imap_cur_peek(c) != ')' && !imap_cur_sp(c))
			return false;
	}
	return imap_cur_list_close(c);
}

static bool
pattern_arg(struct imap_cursor *c, struct list_req *rq)
{
	if (rq->npats == LIST_PATTERNS_MAX) {
		c->error = "Too many patterns";
		return false;
	}
	struct buf *b = &rq->pats[rq->npats];
	buf_init(b, LIST_WIRE_MAX);
	rq->npats++;
	return imap_cur_list_mailbox(c, b);
}

/* list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts] */
static bool
list_parse(struct imap_cursor *c, struct list_req *rq)
{
	if (!rq->lsub && imap_cur_peek(c) == '(') {
		rq->extended = true;
		if (!select_opts(c, &rq->sel) || !imap_cur_sp(c))
			return false;
	}
	if (!imap_cur_astring(c, &rq->ref) || !imap_cur_sp(c))
		return false;
	if (!rq->lsub && imap_cur_peek(c) == '(') {
		rq->extended = true;
		if (!imap_cur_list_open(c))
			return false;
		for (;;) {
			if (!pattern_arg(c, rq))
				return false;
			if (imap_cur_peek(c) == ')')
				break;
			if (!imap_cur_sp(c))
				return false;
		}
		if (!imap_cur_list_close(c))
			return false;
	} else if (!pattern_arg(c, rq)) {
		return false;
	}
	if (!rq->lsub && imap_cur_peek(c) == ' ') {
		rq->extended = true;
		if (!imap_cur_sp(c) || !return_opts(c, rq))
			return false;
	}
	return imap_cur_eol(c);
}

/* Wire form → UTF-8 (modified UTF-7 unless utf8). */
static int
wire_decode(const struct imap_cmdctx *cx, const struct buf *in, struct buf *out)
{
	if (cx->utf8)
		return buf_append(out, in->data, in->len);
	return imap_mutf7_decode(buf_slice(in), out);
}

/* The canonical pattern: reference and pattern joined (RFC 9051 §6.3.9); a pattern that
 * starts with the separator ignores the reference (names never start with it). Without
 * decode, the wire bytes are joined as they are. */
static int
canonical_pattern(const struct imap_cmdctx *cx, const struct buf *ref, const struct buf *pat,
                  bool decode, struct buf *out)
{
	buf_reset(out);
	if (!decode) {
		if (pat->len == 0 || pat->data[0] != '/')
			(void)buf_append(out, ref->data, ref->len);
		return buf_append(out, pat->data, pat->len);
	}
	if (pat->len == 0 || pat->data[0] != '/') {
		if (wire_decode(cx, ref, out) < 0)
			return -1;
	}
	return wire_decode(cx, pat, out);
}

static void
list_line(struct imap_cmdctx *cx, const struct list_req *rq, const struct lnode *nd, bool childinfo)
{
	struct buf *o = cx->out;
	const char *sp = "";
	(void)buf_printf(o, "* %s (", rq->lsub ? "LSUB" : "LIST");
	if (rq->lsub) {
		/* RFC 3501 §6.3.9: \Noselect marks a level that is not subscribed itself */
		if (!nd->subscribed)
			(void)buf_append_str(o, "\\Noselect");
	} else {
		if (!nd->exists) {
			(void)buf_append_str(o, rq->extended || cx->rev2 ? "\\NonExistent"
			                                                 : "\\Noselect");
			sp = " ";
		}
		if (nd->exists || nd->child_exists) {
			(void)buf_printf(o, "%s%s", sp,
			                 nd->child_exists ? "\\HasChildren" : "\\HasNoChildren");
			sp = " ";
		}
		if (nd->exists && nd->special_use != NULL) {
			(void)buf_printf(o, "%s%s", sp, nd->special_use);
			sp = " ";
		}
		if ((rq->sel & SEL_SUBSCRIBED || rq->ret & RET_SUBSCRIBED) && nd->subscribed)
			(void)buf_printf(o, "%s\\Subscribed", sp);
	}
	(void)buf_append_str(o, ") \"/\" ");
	imap_mailbox_out(o, nd->name, cx->utf8);
	if (childinfo) {
		/* RFC 5258 §3.5: the selection criteria some inferior meets */
		(void)buf_append_str(o, " (\"CHILDINFO\" (");
		sp = "";
		if (rq->sel & SEL_SUBSCRIBED) {
			(void)buf_append_str(o, "\"SUBSCRIBED\"");
			sp = " ";
		}
		if (rq->sel & SEL_SPECIAL)
			(void)buf_printf(o, "%s\"SPECIAL-USE\"", sp);
		(void)buf_append_str(o, "))");
	}
	(void)buf_append_str(o, "\r\n");
}

static bool
meets_selection(const struct list_req *rq, const struct lnode *nd)
{
	if (rq->lsub)
		return nd->subscribed;
	bool ok = true;
	if (rq->sel & SEL_SUBSCRIBED)
		ok = ok && nd->subscribed;
	if (rq->sel & SEL_SPECIAL)
		ok = ok && nd->exists && nd->special_use != NULL;
	if (!(rq->sel & (SEL_SUBSCRIBED | SEL_SPECIAL)))
		ok = nd->exists;
	return ok;
}

static void
list_run(struct imap_cmdctx *cx, struct list_req *rq, struct pattern *pt, size_t npt,
         struct lnode *v, size_t n)
{
	struct buf enc;
	buf_init(&enc, 0);
	for (size_t i = 0; i < n; i++) {
		bool encoded = false;
		for (size_t j = 0; j < npt && !v[i].matched; j++) {
			if (!pt[j].wire) {
				v[i].matched = pattern_match(&pt[j], v[i].name);
				continue;
			}
			if (!encoded) {
				buf_reset(&enc);
				if (imap_mutf7_encode(slice_from(v[i].name), &enc) < 0)
					buf_reset(&enc);
				encoded = true;
			}
			v[i].matched = enc.len > 0 && pattern_match(&pt[j], buf_cstr(&enc));
		}
		v[i].meets = meets_selection(rq, &v[i]);
	}
	buf_deinit(&enc);
	for (size_t i = 0; i < n; i++) {
		if (v[i].meets)
			mark_ancestors(v, n, i, MARK_MEETS);
		if (v[i].subscribed && !v[i].matched)
			mark_ancestors(v, n, i, MARK_SUB_UNMATCHED);
	}
	for (size_t i = 0; i < n; i++) {
		const struct lnode *nd = &v[i];
		if (!nd->matched)
			continue;
		bool recursive = (rq->sel & SEL_RECURSIVE) && nd->child_meets;
		bool show;
		if (rq->lsub)
			show = nd->meets || nd->child_sub_unmatched;
		else if (rq->sel & (SEL_SUBSCRIBED | SEL_SPECIAL))
			show = nd->meets || recursive;
		else /* plain LIST: mailboxes, and levels that only exist as parents */
			show = nd->exists || nd->child_exists;
		if (!show)
			continue;
		list_line(cx, rq, nd, recursive);
		if ((rq->ret & RET_STATUS) && nd->exists) {
			/* RFC 5819 §2: a STATUS response after the LIST of each selectable mailbox;
			 * one that vanished meanwhile is skipped */
			struct imap_ms_status st = {0};
			struct err err = {0};
			if (cx->ms->ops->status(cx->ms, nd->name, &st, &err) == 0) {
				status_out(cx, nd->name, &st, &rq->items);
				free(st.special_use);
			}
		}
	}
}

int
imap_cmd_list(struct imap_cmdctx *cx, struct imap_cursor *c, bool lsub)
{
	struct list_req rq = {.lsub = lsub};
	buf_init(&rq.ref, LIST_WIRE_MAX);
	struct pattern pt[LIST_PATTERNS_MAX];
	size_t npt = 0;
	struct buf canon;
	buf_init(&canon, 0);
	int r = 0;
	const char *verb = lsub ? "LSUB" : "LIST";
	if (!list_parse(c, &rq)) {
		imap_reply_tagged(cx->out, cx->tag, "BAD", NULL, "%s",
		                  c->error != NULL ? c->error : "Syntax error in LIST");
		r = -1;
		goto out;
	}
	if ((rq.ret & RET_STATUS) && status_wants_modseq(&rq.items))
		cx->condstore_enable = true;
	size_t tokens = 0;
	bool all_empty = true;
	for (size_t i = 0; i < rq.npats; i++)
		all_empty = all_empty && rq.pats[i].len == 0;
	if (all_empty) {
		/* RFC 9051 §6.3.9: an empty pattern asks for the separator and the root */
		if (!lsub)
			(void)buf_append_str(cx->out, "* LIST (\\Noselect) \"/\" \"\"\r\n");
		imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "%s completed", verb);
		goto out;
	}
	for (size_t i = 0; i < rq.npats; i++) {
		if (rq.pats[i].len == 0)
			continue;
		bool wire = false;
		if (canonical_pattern(cx, &rq.ref, &rq.pats[i], true, &canon) < 0) {
			/* not valid modified UTF-7 (a prefix like "&ZeVn*" of an encoded name):
			 * match it against the encoded names instead */
			if (cx->utf8 ||
			    canonical_pattern(cx, &rq.ref, &rq.pats[i], false, &canon) < 0) {
				imap_reply_tagged(cx->out, cx->tag, "NO", "CANNOT",
				                  "Invalid mailbox name encoding");
				goto out;
			}
			wire = true;
		}
		pattern_compile(&pt[npt], (const char *)canon.data, canon.len);
		pt[npt].wire = wire;
		tokens += pt[npt].never ? 0 : pt[npt].k;
		npt++;
		if (tokens > LIST_TOKENS_MAX) {
			imap_reply_tagged(cx->out, cx->tag, "NO", "LIMIT", "Patterns too long");
			goto out;
		}
	}
	struct imap_ms_mailbox *mb = NULL;
	size_t nmb = 0, n = 0;
	struct err err = {0};
	if (cx->ms->ops->list(cx->ms, &mb, &nmb, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	struct lnode *v = tree_build(mb, nmb, &n);
	list_run(cx, &rq, pt, npt, v, n);
	tree_free(v, n);
	imap_ms_mailboxes_free(&mb, nmb);
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "%s completed", verb);
out:
	for (size_t i = 0; i < npt; i++)
		pattern_free(&pt[i]);
	for (size_t i = 0; i < rq.npats; i++)
		buf_deinit(&rq.pats[i]);
	buf_deinit(&rq.ref);
	buf_deinit(&canon);
	return r;
}
