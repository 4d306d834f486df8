/* Commands on the messages of the selected mailbox: FETCH (RFC 9051 §6.4.5, CONDSTORE
 * CHANGEDSINCE and QRESYNC VANISHED, RFC 7162), STORE (§6.4.6, UNCHANGEDSINCE), COPY and MOVE
 * (RFC 6851) with COPYUID (RFC 4315), APPEND (§6.3.12, APPENDUID), SEARCH with ESEARCH and
 * SEARCHRES (RFC 4731, RFC 5182), SORT and THREAD (RFC 5256). Parsing and output of FETCH and
 * SEARCH items live in fetch.c/search.c; this file maps sequence sets onto the view.
 *
 * Messages expunged by another session but not yet announced stay in the view (their sequence
 * numbers must not move): FETCH omits them (the mailstore says ENONEXISTENT) and still replies
 * OK, as RFC 9051 §7.5.1 allows; STORE/COPY skip them. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "session_private.h"
#include "util/log.h"
#include "util/xalloc.h"

static struct imap_msgref
msgref(const struct imap_session *s, size_t i)
{
	const struct imap_vmsg *e = &s->sel.v[i];
	return (struct imap_msgref){.seq = (uint32_t)(i + 1),
	                            .uid = e->uid,
	                            .flags = e->flags,
	                            .modseq = e->modseq,
	                            .keywords = e->keywords};
}

static uint32_t *
idx_uids(const struct imap_session *s, const size_t *idx, size_t n)
{
	uint32_t *u = xmalloc((n ? n : 1) * sizeof *u);
	for (size_t i = 0; i < n; i++)
		u[i] = s->sel.v[idx[i]].uid;
	return u;
}

/* ---- flags ---- */

static bool
keyword_ok(struct slice kw)
{
	if (kw.len == 0 || kw.len > IMAP_KEYWORD_LEN_MAX)
		return false;
	for (size_t i = 0; i < kw.len; i++) {
		unsigned char ch = (unsigned char)kw.p[i];
		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch) != NULL)
			return false;
	}
	return true;
}

static bool
keyword_in(const struct buf *kw, struct slice k)
{
	const char *p = buf_cstr(kw);
	while (*p != '\0') {
		const char *e = strchr(p, ' ');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == k.len && strncasecmp(p, k.p, len) == 0)
			return true;
		p += len + (e != NULL);
	}
	return false;
}

static bool
one_flag(struct imap_cursor *c, uint32_t *flags, struct buf *kw, unsigned *n_kw, const char **why_r)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} sys[] = {
	    {"Seen", IMAP_FLAG_SEEN},       {"Answered", IMAP_FLAG_ANSWERED},
	    {"Flagged", IMAP_FLAG_FLAGGED}, {"Deleted", IMAP_FLAG_DELETED},
	    {"Draft", IMAP_FLAG_DRAFT},
	};
	struct slice a;
	if (imap_cur_skip(c, '\\')) {
		if (imap_cur_peek(c) == '*') {
			*why_r = "\\* is not a flag";
			return false;
		}
		if (!imap_cur_atom(c, &a)) {
			*why_r = "Invalid flag";
			return false;
		}
		for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
			if (slice_eq_nocase(a, sys[i].name)) {
				*flags |= sys[i].bit;
				return true;
			}
		*why_r =
		    slice_eq_nocase(a, "Recent") ? "\\Recent cannot be set" : "Invalid system flag";
		return false;
	}
	if (!imap_cur_atom(c, &a) || !keyword_ok(a)) {
		*why_r = "Invalid keyword";
		return false;
	}
	if (keyword_in(kw, a))
		return true;
	if (++*n_kw > IMAP_KEYWORDS_MAX) {
		*why_r = "Too many keywords";
		return false;
	}
	if (kw->len > 0)
		(void)buf_append_byte(kw, ' ');
	(void)buf_append(kw, a.p, a.len);
	return true;
}

bool
imap_flags_arg(struct imap_cursor *c, bool paren, uint32_t *flags_r, struct buf *kw,
               const char **why_r)
{
	unsigned n_kw = 0;
	*flags_r = 0;
	*why_r = "Invalid flag list";
	if (paren) {
		if (!imap_cur_list_open(c))
			return false;
		if (imap_cur_peek(c) != ')') {
			do {
				if (!one_flag(c, flags_r, kw, &n_kw, why_r))
					return false;
			} while (imap_cur_skip(c, ' '));
		}
		*why_r = "Invalid flag list";
		return imap_cur_list_close(c);
	}
	do {
		if (!one_flag(c, flags_r, kw, &n_kw, why_r))
			return false;
	} while (imap_cur_skip(c, ' '));
	return true;
}

/* ---- FETCH ---- */

static void
fetch_vanished(struct imap_session *s, uint64_t since, const size_t *idx, size_t n,
               struct imap_seqset *uidset)
{
	uint32_t *gone = NULL;
	size_t n_gone = 0;
	struct err err;
	(void)idx;
	(void)n;
	if (s->ms->ops->vanished(s->ms, s->sel.id, since, &gone, &n_gone, &err) < 0)
		return;
	size_t k = 0;
	for (size_t i = 0; i < n_gone; i++)
		if (imap_seqset_contains(uidset, gone[i]))
			gone[k++] = gone[i];
	if (k > 0) {
		(void)buf_append_str(&s->out, "* VANISHED (EARLIER) ");
		imap_seqset_format(&s->out, gone, k);
		(void)buf_append_str(&s->out, "\r\n");
	}
	free(gone);
}

/* Sets \Seen on the given view entries (implicit, RFC 9051 §6.4.5); seen_now[i] true for
 * those that changed. */
static void
implicit_seen(struct imap_session *s, const size_t *idx, size_t n, bool *seen_now)
{
	size_t k = 0;
	uint32_t *uids = xmalloc((n ? n : 1) * sizeof *uids);
	for (size_t i = 0; i < n; i++)
		if (!(s->sel.v[idx[i]].flags & IMAP_FLAG_SEEN) && !s->sel.v[idx[i]].gone)
			uids[k++] = s->sel.v[idx[i]].uid;
	if (k > 0) {
		struct imap_ms_msg *ch = NULL;
		uint32_t *failed = NULL;
		size_t n_ch = 0, n_failed = 0;
		struct err err;
		if (s->ms->ops->store(s->ms, s->sel.id, uids, k, IMAP_MS_FLAGS_ADD, IMAP_FLAG_SEEN,
		                      NULL, 0, &ch, &n_ch, &failed, &n_failed, &err) == 0) {
			imap_view_update(s, ch, n_ch);
			for (size_t i = 0; i < n; i++)
				for (size_t j = 0; j < n_ch; j++)
					if (ch[j].uid == s->sel.v[idx[i]].uid)
						seen_now[i] = true;
			imap_ms_msgs_free(&ch, n_ch);
			free(failed);
		}
	}
	free(uids);
}

void
imap_cmd_fetch(struct imap_session *s, struct imap_call *k)
{
	struct imap_cursor *c = k->c;
	struct imap_cursor at_set = *c;
	size_t *idx = NULL, n = 0;
	if (imap_set_arg(s, k, &idx, &n) < 0)
		return;
	const char *e = NULL;
	struct imap_fetch_spec *sp = NULL;
	if (!imap_cur_sp(c) || (sp = imap_fetch_parse(c, k->uid, &e)) == NULL) {
		free(idx);
		(void)imap_bad(s, e ? e : c->error ? c->error : "Syntax: FETCH set items");
		return;
	}
	if (imap_fetch_vanished(sp) && !(k->uid && s->qresync)) {
		/* RFC 7162 §3.2.6 */
		free(idx);
		imap_fetch_spec_free(&sp);
		(void)imap_bad(s, "VANISHED needs UID FETCH and QRESYNC");
		return;
	}
	if (imap_fetch_wants_modseq(sp))
		imap_condstore_on(s);
	uint64_t since = imap_fetch_changedsince(sp);
	if (imap_fetch_vanished(sp)) {
		struct imap_seqset set;
		imap_seqset_init(&set);
		(void)imap_cur_seqset(&at_set, &set, false);
		/* "*" covers UIDs expunged above the last message too */
		uint32_t top = s->sel.uidnext > 0 ? s->sel.uidnext - 1 : 0;
		if (s->sel.n && s->sel.v[s->sel.n - 1].uid > top)
			top = s->sel.v[s->sel.n - 1].uid;
		imap_seqset_resolve(&set, top);
		fetch_vanished(s, since, idx, n, &set);
		imap_seqset_deinit(&set);
	}
	bool *seen_now = n ? xcalloc(n, sizeof *seen_now) : NULL;
	if (imap_fetch_sets_seen(sp) && !s->sel.readonly)
		implicit_seen(s, idx, n, seen_now);
	struct imap_out o = {.out = &s->out, .flush = s->hooks.flush, .ctx = s->hooks.ctx};
	bool failed = false;
	for (size_t i = 0; i < n && !s->done; i++) {
		struct imap_msgref m = msgref(s, idx[i]);
		if (since > 0 && m.modseq <= since)
			continue;
		struct err err = {0};
		int r =
		    imap_fetch_one(sp, s->ms, s->sel.id, &m, seen_now[i], s->condstore, &o, &err);
		if (r == -2) {
			s->done = true; /* connection gone */
			imap_enter(s, IMAP_STATE_LOGOUT);
		} else if (r < 0 && err.code != IMAP_MS_ENONEXISTENT) {
			log_warn("imap %s fetch-failed uid=%u msg=\"%s\"", s->id, m.uid, err.msg);
			failed = true;
		}
	}
	free(seen_now);
	free(idx);
	imap_fetch_spec_free(&sp);
	if (s->done)
		return;
	if (failed)
		imap_tagged(s, "NO", "SERVERBUG", "Some messages could not be fetched");
	else
		imap_tagged(s, "OK", NULL, "Fetch completed");
}

/* ---- STORE ---- */

void
imap_cmd_store(struct imap_session *s, struct imap_call *k)
{
	struct imap_cursor *c = k->c;
	size_t *idx = NULL, n = 0;
	if (imap_set_arg(s, k, &idx, &n) < 0)
		return;
	uint64_t unchangedsince = 0;
	bool has_unchanged = false;
	struct slice item;
	const char *why = NULL;
	if (!imap_cur_sp(c))
		goto syntax;
	if (imap_cur_peek(c) == '(') {
		struct slice mod;
		if (!imap_cur_list_open(c) || !imap_cur_atom(c, &mod) ||
		    !slice_eq_nocase(mod, "UNCHANGEDSINCE") || !imap_cur_sp(c) ||
		    !imap_cur_number64(c, &unchangedsince) || !imap_cur_list_close(c) ||
		    !imap_cur_sp(c))
			goto syntax;
		has_unchanged = true;
	}
	bool add = imap_cur_skip(c, '+');
	bool del = !add && imap_cur_skip(c, '-');
	if (!imap_cur_atom(c, &item) || !imap_cur_sp(c))
		goto syntax;
	bool silent;
	if (slice_eq_nocase(item, "FLAGS"))
		silent = false;
	else if (slice_eq_nocase(item, "FLAGS.SILENT"))
		silent = true;
	else
		goto syntax;
	uint32_t flags = 0;
	struct buf kw;
	buf_init(&kw, 0);
	if (!imap_flags_arg(c, imap_cur_peek(c) == '(', &flags, &kw, &why) || !imap_cur_eol(c)) {
		buf_deinit(&kw);
		free(idx);
		(void)imap_bad(s, why);
		return;
	}
	if (has_unchanged)
		imap_condstore_on(s);
	if (s->sel.readonly) {
		buf_deinit(&kw);
		free(idx);
		imap_tagged(s, "NO", "READ-ONLY", "Mailbox is read-only");
		return;
	}
	uint32_t *uids = idx_uids(s, idx, n);
	struct imap_ms_msg *ch = NULL;
	uint32_t *failed = NULL;
	size_t n_ch = 0, n_failed = 0;
	struct err err = {0};
	enum imap_ms_store_op op = add   ? IMAP_MS_FLAGS_ADD
	                           : del ? IMAP_MS_FLAGS_REMOVE
	                                 : IMAP_MS_FLAGS_SET;
	/* UNCHANGEDSINCE 0 fails for every message (RFC 7162 §3.1.3): modseqs are >= 1 */
	int r = 0;
	if (n > 0 && has_unchanged && unchangedsince == 0) {
		failed = xmalloc(n * sizeof *failed);
		memcpy(failed, uids, n * sizeof *failed);
		n_failed = n;
	} else if (n > 0) {
		r = s->ms->ops->store(s->ms, s->sel.id, uids, n, op, flags,
		                      kw.len ? buf_cstr(&kw) : NULL, unchangedsince, &ch, &n_ch,
		                      &failed, &n_failed, &err);
	}
	buf_deinit(&kw);
	if (r < 0) {
		free(uids);
		free(idx);
		imap_reply_ms_error(&s->out, s->tag, &err, false);
		return;
	}
	imap_view_update(s, ch, n_ch);
	for (size_t i = 0; i < n; i++) {
		const struct imap_vmsg *e = &s->sel.v[idx[i]];
		bool is_failed = false;
		for (size_t j = 0; j < n_failed && !is_failed; j++)
			is_failed = failed[j] == e->uid;
		bool changed = false;
		for (size_t j = 0; j < n_ch && !changed; j++)
			changed = ch[j].uid == e->uid;
		/* .SILENT: no FETCH, except under CONDSTORE where the new MODSEQ is reported
		 * (RFC 7162 §3.1.3) */
		if (e->gone || is_failed || (silent && !(s->condstore && changed)))
			continue;
		imap_fetch_flags_out(s, idx[i], k->uid);
	}
	imap_ms_msgs_free(&ch, n_ch);
	if (n_failed > 0) {
		/* [MODIFIED set]: sequence numbers, or UIDs for UID STORE */
		uint32_t *v = xmalloc(n_failed * sizeof *v);
		size_t m = 0;
		for (size_t j = 0; j < n_failed; j++) {
			long at = imap_view_find(&s->sel, failed[j]);
			if (at >= 0)
				v[m++] = k->uid ? failed[j] : (uint32_t)(at + 1);
		}
		struct buf code;
		buf_init(&code, 0);
		(void)buf_append_str(&code, "MODIFIED ");
		imap_seqset_format(&code, v, m);
		imap_tagged(s, "OK", buf_cstr(&code), "Conditional STORE failed");
		buf_deinit(&code);
		free(v);
	} else {
		imap_tagged(s, "OK", NULL, "Store completed");
	}
	free(failed);
	free(uids);
	free(idx);
	return;
syntax:
	free(idx);
	(void)imap_bad(s, c->error ? c->error : "Syntax: STORE set [+|-]FLAGS[.SILENT] (flags)");
}

/* ---- COPY / MOVE ---- */

void
imap_cmd_copy(struct imap_session *s, struct imap_call *k)
{
	bool move = strcmp(k->verb, "MOVE") == 0;
	size_t *idx = NULL, n = 0;
	if (imap_set_arg(s, k, &idx, &n) < 0)
		return;
	struct imap_cmdctx cx;
	imap_cmdctx_init(s, &cx);
	struct buf name;
	buf_init(&name, 0);
	bool bad = false;
	const char *why = NULL;
	if (!imap_cur_sp(k->c) || imap_mailbox_arg(&cx, k->c, &name, &bad, &why) < 0 ||
	    !imap_cur_eol(k->c)) {
		free(idx);
		buf_deinit(&name);
		if (bad || why == NULL)
			(void)imap_bad(s, why ? why : k->c->error ? k->c->error : "Syntax error");
		else
			imap_tagged(s, "NO", "CANNOT", "%s", why);
		return;
	}
	if (move && s->sel.readonly) {
		free(idx);
		buf_deinit(&name);
		imap_tagged(s, "NO", "READ-ONLY", "Mailbox is read-only");
		return;
	}
	size_t m = 0;
	uint32_t *uids = xmalloc((n ? n : 1) * sizeof *uids);
	for (size_t i = 0; i < n; i++)
		if (!s->sel.v[idx[i]].gone)
			uids[m++] = s->sel.v[idx[i]].uid;
	free(idx);
	uint32_t uidvalidity = 0, *src = NULL, *dst = NULL;
	size_t n_done = 0;
	struct err err = {0};
	int r = s->ms->ops->copy(s->ms, s->sel.id, uids, m, buf_cstr(&name), move, &uidvalidity,
	                         &src, &dst, &n_done, &err);
	free(uids);
	buf_deinit(&name);
	if (r < 0) {
		imap_reply_ms_error(&s->out, s->tag, &err, true);
		return;
	}
	struct buf code;
	buf_init(&code, 0);
	if (n_done > 0) {
		(void)buf_printf(&code, "COPYUID %u ", uidvalidity);
		imap_seqset_format(&code, src, n_done);
		(void)buf_append_byte(&code, ' ');
		imap_seqset_format(&code, dst, n_done);
	}
	if (move) {
		/* RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges */
		if (n_done > 0)
			(void)buf_printf(&s->out, "* OK [%s] Moved\r\n", buf_cstr(&code));
		imap_view_expunged(s, src, n_done);
		imap_tagged(s, "OK", NULL, "Move completed");
	} else {
		imap_tagged(s, "OK", n_done ? buf_cstr(&code) : NULL, "Copy completed");
	}
	buf_deinit(&code);
	free(src);
	free(dst);
}

/* ---- APPEND ---- */

/* A literal argument taken in place (no copy): "{" number ["+"] "}" CRLF octets. */
static bool
literal_arg(struct imap_cursor *c, struct slice *lit_r)
{
	const char *p = c->p;
	if (p >= c->end || *p != '{')
		return false;
	p++;
	uint64_t n = 0;
	const char *digits = p;
	while (p < c->end && *p >= '0' && *p <= '9' && p - digits < 19)
		n = n * 10 + (uint64_t)(*p++ - '0');
	if (p == digits)
		return false;
	if (p < c->end && *p == '+')
		p++;
	if (c->end - p < 3 || p[0] != '}' || p[1] != '\r' || p[2] != '\n')
		return false;
	p += 3;
	if ((uint64_t)(c->end - p) < n)
		return false;
	*lit_r = slice_make(p, (size_t)n);
	c->p = p + n;
	return true;
}

void
imap_cmd_append(struct imap_session *s, struct imap_call *k)
{
	struct imap_cursor *c = k->c;
	struct imap_cmdctx cx;
	imap_cmdctx_init(s, &cx);
	struct buf name, kw;
	buf_init(&name, 0);
	buf_init(&kw, 0);
	bool bad = false;
	const char *why = NULL;
	uint32_t flags = 0;
	int64_t date = s->hooks.now ? s->hooks.now(s->hooks.ctx) : (int64_t)time(NULL);
	struct slice msg;
	if (imap_mailbox_arg(&cx, c, &name, &bad, &why) < 0) {
		if (bad || why == NULL)
			(void)imap_bad(s, why ? why
			                      : "Syntax: APPEND mailbox [(flags)] [date] literal");
		else
			imap_tagged(s, "NO", "CANNOT", "%s", why);
		goto out;
	}
	why = NULL;
	if (!imap_cur_sp(c))
		goto syntax;
	if (imap_cur_peek(c) == '(') {
		if (!imap_flags_arg(c, true, &flags, &kw, &why) || !imap_cur_sp(c))
			goto syntax;
	}
	if (imap_cur_peek(c) == '"') {
		if (!imap_cur_date_time(c, &date) || !imap_cur_sp(c))
			goto syntax;
	}
	uint64_t spooled = 0;
	if (imap_cur_diverted(c, &spooled)) {
		/* a large message went to a temporary file while it was read (session.c) */
		if (!imap_cur_eol(c))
			goto syntax;
		const char *fail = NULL;
		const unsigned char *p = imap_spool_map(s, spooled, &fail);
		if (p == NULL) {
			imap_tagged(s, "NO", "SERVERBUG", "%s", fail);
			goto out;
		}
		msg = slice_make((const char *)p, (size_t)spooled);
	} else if (!literal_arg(c, &msg) || !imap_cur_eol(c)) {
		goto syntax;
	}
	if (s->lim.literal_max && msg.len > s->lim.literal_max) {
		imap_tagged(s, "NO", "TOOBIG", "Message too large");
		goto out;
	}
	uint32_t uidvalidity = 0, uid = 0;
	struct err err = {0};
	if (s->ms->ops->append(s->ms, buf_cstr(&name), flags, kw.len ? buf_cstr(&kw) : NULL, date,
	                       (const unsigned char *)msg.p, msg.len, &uidvalidity, &uid,
	                       &err) < 0) {
		imap_reply_ms_error(&s->out, s->tag, &err, true);
		goto out;
	}
	char code[64];
	(void)snprintf(code, sizeof code, "APPENDUID %u %u", uidvalidity, uid);
	imap_tagged(s, "OK", code, "Append completed");
	goto out;
syntax:
	(void)imap_bad(s, why        ? why
	                  : c->error ? c->error
	                             : "Syntax: APPEND mailbox [(flags)] [date] literal");
out:
	buf_deinit(&name);
	buf_deinit(&kw);
}

/* ---- SEARCH / SORT / THREAD ---- */

static struct imap_msgref *
view_refs(const struct imap_session *s)
{
	struct imap_msgref *v = xmalloc((s->sel.n ? s->sel.n : 1) * sizeof *v);
	for (size_t i = 0; i < s->sel.n; i++)
		v[i] = msgref(s, i);
	return v;
}

static void
save_result(struct imap_session *s, const struct imap_msgref *refs, const size_t *idx, size_t n)
{
	x_free(&s->saved);
	s->n_saved = 0;
	if (n == 0)
		return;
	s->saved = xmalloc(n * sizeof *s->saved);
	for (size_t i = 0; i < n; i++)
		s->saved[i] = refs[idx[i]].uid;
	s->n_saved = n;
	/* UIDs ascending for the $ lookup (idx ascending means UIDs ascending) */
}

static void
search_out(struct imap_session *s, struct imap_call *k, const struct imap_msgref *refs,
           const size_t *idx, size_t n, unsigned ret, bool modseq)
{
	uint64_t hi = 0;
	for (size_t i = 0; i < n; i++)
		if (refs[idx[i]].modseq > hi)
			hi = refs[idx[i]].modseq;
	if (ret == 0 && !s->rev2) {
		(void)buf_append_str(&s->out, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			(void)buf_printf(&s->out, " %u",
			                 k->uid ? refs[idx[i]].uid : refs[idx[i]].seq);
		if (modseq && n > 0)
			(void)buf_printf(&s->out, " (MODSEQ %llu)", (unsigned long long)hi);
		(void)buf_append_str(&s->out, "\r\n");
		return;
	}
	if (ret == 0)
		ret = IMAP_SEARCH_RET_ALL;
	if (ret & IMAP_SEARCH_RET_SAVE) {
		/* RFC 5182 §2.4: with MIN or MAX only, the saved result is that message */
		if ((ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) &&
		    !(ret & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT)) && n > 0) {
			size_t pick[2], np = 0;
			if (ret & IMAP_SEARCH_RET_MIN)
				pick[np++] = idx[0];
			if ((ret & IMAP_SEARCH_RET_MAX) && (np == 0 || idx[n - 1] != idx[0]))
				pick[np++] = idx[n - 1];
			save_result(s, refs, pick, np);
		} else {
			save_result(s, refs, idx, n);
		}
		if (!(ret & ~IMAP_SEARCH_RET_SAVE))
			return; /* SAVE alone: no ESEARCH response */
	}
	(void)buf_printf(&s->out, "* ESEARCH (TAG \"%s\")", s->tag);
	if (k->uid)
		(void)buf_append_str(&s->out, " UID");
	if (n > 0 && (ret & IMAP_SEARCH_RET_MIN))
		(void)buf_printf(&s->out, " MIN %u", k->uid ? refs[idx[0]].uid : refs[idx[0]].seq);
	if (n > 0 && (ret & IMAP_SEARCH_RET_MAX))
		(void)buf_printf(&s->out, " MAX %u",
		                 k->uid ? refs[idx[n - 1]].uid : refs[idx[n - 1]].seq);
	if (ret & IMAP_SEARCH_RET_COUNT)
		(void)buf_printf(&s->out, " COUNT %zu", n);
	if (n > 0 && (ret & IMAP_SEARCH_RET_ALL)) {
		uint32_t *v = xmalloc(n * sizeof *v);
		for (size_t i = 0; i < n; i++)
			v[i] = k->uid ? refs[idx[i]].uid : refs[idx[i]].seq;
		(void)buf_append_str(&s->out, " ALL ");
		imap_seqset_format(&s->out, v, n);
		free(v);
	}
	if (modseq && n > 0)
		(void)buf_printf(&s->out, " MODSEQ %llu", (unsigned long long)hi);
	(void)buf_append_str(&s->out, "\r\n");
}

void
imap_cmd_search(struct imap_session *s, struct imap_call *k)
{
	struct imap_cursor *c = k->c;
	const char *e = NULL;
	bool badcharset = false;
	unsigned ret = 0;
	struct imap_search *srch = NULL;
	struct imap_sort *sort = NULL;
	struct imap_thread *thr = NULL;
	bool is_sort = !strcmp(k->verb, "SORT"), is_thread = !strcmp(k->verb, "THREAD");
	if (is_sort)
		sort = imap_sort_parse(c, &badcharset, &e);
	else if (is_thread)
		thr = imap_thread_parse(c, &badcharset, &e);
	else
		srch = imap_search_parse(c, true, &ret, &badcharset, &e);
	if (srch == NULL && sort == NULL && thr == NULL) {
		if (badcharset)
			imap_tagged(s, "NO", "BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset");
		else
			(void)imap_bad(s, e ? e : c->error ? c->error : "Invalid search program");
		if (ret & IMAP_SEARCH_RET_SAVE) {
			x_free(&s->saved);
			s->n_saved = 0;
		}
		return;
	}
	if (!imap_cur_at_end(c) && !imap_cur_eol(c)) {
		imap_search_free(&srch);
		imap_sort_free(&sort);
		imap_thread_free(&thr);
		(void)imap_bad(s, c->error);
		return;
	}
	bool modseq = srch != NULL && imap_search_uses_modseq(srch);
	if (modseq)
		imap_condstore_on(s);
	struct imap_msgref *refs = view_refs(s);
	struct imap_search_ctx ctx = {
	    .ms = s->ms,
	    .mailbox = s->sel.id,
	    .msgs = refs,
	    .n = s->sel.n,
	    .saved = s->saved,
	    .n_saved = s->n_saved,
	    .now = s->hooks.now ? s->hooks.now(s->hooks.ctx) : (int64_t)time(NULL),
	};
	size_t *idx = NULL, n = 0;
	struct err err = {0};
	int r;
	if (is_thread) {
		struct buf tb;
		buf_init(&tb, 0);
		r = imap_thread_run(thr, &ctx, k->uid, &tb, &err);
		if (r == 0)
			(void)buf_printf(&s->out, "* THREAD %s\r\n", buf_cstr(&tb));
		buf_deinit(&tb);
	} else if (is_sort) {
		r = imap_sort_run(sort, &ctx, &idx, &n, &err);
		if (r == 0) {
			(void)buf_append_str(&s->out, "* SORT");
			for (size_t i = 0; i < n; i++)
				(void)buf_printf(&s->out, " %u",
				                 k->uid ? refs[idx[i]].uid : refs[idx[i]].seq);
			(void)buf_append_str(&s->out, "\r\n");
		}
	} else {
		r = imap_search_run(srch, &ctx, &idx, &n, &err);
		if (r == 0)
			search_out(s, k, refs, idx, n, ret, modseq);
		else if (ret & IMAP_SEARCH_RET_SAVE) {
			x_free(&s->saved); /* RFC 5182 §2.1: an error empties $ */
			s->n_saved = 0;
		}
	}
	if (r < 0) {
		log_warn("imap %s search-failed msg=\"%s\"", s->id, err.msg);
		imap_tagged(s, "NO", "SERVERBUG", "Search failed");
	} else {
		imap_tagged(s, "OK", NULL, "%s completed", k->verb);
	}
	free(idx);
	free(refs);
	imap_search_free(&srch);
	imap_sort_free(&sort);
	imap_thread_free(&thr);
}
