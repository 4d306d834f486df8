/* SELECT and EXAMINE (RFC 9051 §6.3.2-6.3.3 with CONDSTORE/QRESYNC parameters, RFC 7162
 * §3.1.8, §3.2.5), CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315), CHECK, and
 * the hand-over of the mailbox commands to cmd_mailbox.c. */
#include <stdio.h>
#include <string.h>

#include "session_private.h"
#include "util/log.h"
#include "util/xalloc.h"

#define SELECT_KEYWORDS_MAX 200 /* keywords listed in FLAGS / PERMANENTFLAGS */

void
imap_deselect(struct imap_session *s)
{
	imap_view_clear(&s->sel);
	x_free(&s->saved); /* RFC 5182 §2.1: $ is empty in a newly selected mailbox */
	s->n_saved = 0;
	if (s->state == IMAP_STATE_SELECTED)
		imap_enter(s, IMAP_STATE_AUTH);
}

/* Distinct keywords of the view, space-separated, into out (bounded). */
static void
view_keywords(const struct imap_view *v, struct buf *out)
{
	size_t count = 0;
	for (size_t i = 0; i < v->n && count < SELECT_KEYWORDS_MAX; i++) {
		const char *p = v->v[i].keywords;
		while (p != NULL && *p != '\0' && count < SELECT_KEYWORDS_MAX) {
			const char *e = strchr(p, ' ');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			bool seen = false;
			const char *q = buf_cstr(out);
			while (*q != '\0' && !seen) {
				const char *qe = strchr(q, ' ');
				size_t ql = qe ? (size_t)(qe - q) : strlen(q);
				seen = ql == len && strncmp(q, p, len) == 0;
				q += ql + (qe != NULL);
			}
			if (!seen && len > 0) {
				if (out->len > 0)
					(void)buf_append_byte(out, ' ');
				(void)buf_append(out, p, len);
				count++;
			}
			p += len + (e != NULL);
		}
	}
}

/* QRESYNC parameters: (uidvalidity modseq [known-uids [(seq-match)]]). */
struct qresync_arg {
	bool on;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known;
	bool has_known;
};

static bool
parse_select_params(struct imap_session *s, struct imap_cursor *c, bool *condstore_r,
                    struct qresync_arg *q)
{
	if (imap_cur_at_end(c))
		return true;
	if (!imap_cur_sp(c) || !imap_cur_list_open(c))
		return false;
	do {
		struct slice name;
		if (!imap_cur_atom(c, &name))
			return false;
		if (slice_eq_nocase(name, "CONDSTORE")) {
			*condstore_r = true;
		} else if (slice_eq_nocase(name, "QRESYNC") && s->qresync && !q->on) {
			q->on = true;
			if (!imap_cur_sp(c) || !imap_cur_list_open(c) ||
			    !imap_cur_nz_number(c, &q->uidvalidity) || !imap_cur_sp(c) ||
			    !imap_cur_number64(c, &q->modseq))
				return false;
			if (imap_cur_skip(c, ' ')) {
				if (imap_cur_peek(c) != '(') {
					if (!imap_cur_seqset(c, &q->known, false))
						return false;
					q->has_known = true;
					(void)imap_cur_skip(c, ' ');
				}
				if (imap_cur_peek(c) == '(') {
					/* seq-match-data: we keep full expunge history, so it is
					 * parsed and not needed (RFC 7162 §3.2.5.2) */
					struct imap_seqset a;
					imap_seqset_init(&a);
					bool ok = imap_cur_list_open(c) &&
					          imap_cur_seqset(c, &a, false) && imap_cur_sp(c) &&
					          imap_cur_seqset(c, &a, false) &&
					          imap_cur_list_close(c);
					imap_seqset_deinit(&a);
					if (!ok)
						return false;
				}
			}
			if (!imap_cur_list_close(c))
				return false;
		} else {
			return false;
		}
	} while (imap_cur_skip(c, ' '));
	return imap_cur_list_close(c);
}

static void
qresync_replay(struct imap_session *s, struct qresync_arg *q)
{
	struct imap_view *v = &s->sel;
	if (q->uidvalidity != v->uidvalidity)
		return; /* RFC 7162 §3.2.5: the client must resynchronise fully */
	if (q->has_known)
		imap_seqset_resolve(&q->known, v->n ? v->v[v->n - 1].uid : 0);
	uint32_t *gone = NULL;
	size_t n_gone = 0;
	struct err err;
	if (s->ms->ops->vanished(s->ms, v->id, q->modseq, &gone, &n_gone, &err) == 0) {
		size_t k = 0;
		for (size_t i = 0; i < n_gone; i++)
			if (!q->has_known || imap_seqset_contains(&q->known, gone[i]))
				gone[k++] = gone[i];
		if (k > 0) {
			(void)buf_append_str(&s->out, "* VANISHED (EARLIER) ");
			imap_seqset_format(&s->out, gone, k);
			(void)buf_append_str(&s->out, "\r\n");
		}
		free(gone);
	}
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i].modseq > q->modseq)
			imap_fetch_flags_out(s, i, true);
}

void
imap_cmd_select(struct imap_session *s, struct imap_call *k)
{
	bool examine = strcmp(k->verb, "EXAMINE") == 0;
	struct imap_cmdctx cx;
	imap_cmdctx_init(s, &cx);
	struct buf name;
	buf_init(&name, 0);
	bool bad = false, condstore = false;
	const char *why = NULL;
	struct qresync_arg q = {0};
	imap_seqset_init(&q.known);
	bool was_selected = s->state == IMAP_STATE_SELECTED;
	/* RFC 9051 §6.3.2: a SELECT ends the previous selection, even when it fails */
	if (imap_mailbox_arg(&cx, k->c, &name, &bad, &why) < 0) {
		if (bad) {
			(void)imap_bad(s, why);
			goto out;
		}
		imap_deselect(s);
		imap_tagged(s, "NO", "CANNOT", "%s", why ? why : "Invalid mailbox name");
		goto out;
	}
	if (!parse_select_params(s, k->c, &condstore, &q) || !imap_cur_eol(k->c)) {
		(void)imap_bad(s, k->c->error ? k->c->error : "Invalid SELECT parameters");
		goto out;
	}
	if (was_selected) {
		imap_deselect(s);
		if (s->qresync || s->rev2)
			(void)buf_append_str(&s->out, "* OK [CLOSED] Previous mailbox closed\r\n");
	}
	if (condstore)
		imap_condstore_on(s);
	struct imap_ms_status st = {0};
	struct err err = {0};
	if (s->ms->ops->status(s->ms, buf_cstr(&name), &st, &err) < 0) {
		imap_reply_ms_error(&s->out, s->tag, &err, false);
		goto out;
	}
	struct imap_view *v = &s->sel;
	v->id = st.id;
	v->name = xstrdup(buf_cstr(&name));
	v->readonly = examine;
	v->uidvalidity = st.uidvalidity;
	v->change_seq = s->ms->ops->change_seq ? s->ms->ops->change_seq(s->ms, st.id) : 0;
	v->checked_at = imap_now_s(s);
	free(st.special_use);
	struct imap_ms_msg *m = NULL;
	size_t n = 0;
	if (s->ms->ops->messages(s->ms, st.id, 0, &m, &n, &v->uidnext, &v->highestmodseq, &err) <
	    0) {
		imap_view_clear(v);
		imap_reply_ms_error(&s->out, s->tag, &err, false);
		goto out;
	}
	v->cap = n ? n : 1;
	v->v = xcalloc(v->cap, sizeof v->v[0]);
	for (size_t i = 0; i < n; i++) {
		v->v[i] = (struct imap_vmsg){.uid = m[i].uid,
		                             .flags = m[i].flags,
		                             .modseq = m[i].modseq,
		                             .keywords = m[i].keywords};
		m[i].keywords = NULL;
	}
	v->n = n;
	imap_ms_msgs_free(&m, n);
	imap_enter(s, IMAP_STATE_SELECTED);

	struct buf kw;
	buf_init(&kw, 0);
	view_keywords(v, &kw);
	const char *sp = kw.len ? " " : "";
	(void)buf_printf(&s->out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s)\r\n",
	                 sp, buf_cstr(&kw));
	(void)buf_printf(&s->out, "* %zu EXISTS\r\n", v->n);
	if (!s->rev2) {
		(void)buf_append_str(&s->out, "* 0 RECENT\r\n");
		for (size_t i = 0; i < v->n; i++)
			if (!(v->v[i].flags & IMAP_FLAG_SEEN)) {
				(void)buf_printf(&s->out, "* OK [UNSEEN %zu] First unseen\r\n",
				                 i + 1);
				break;
			}
	}
	(void)buf_printf(&s->out, "* OK [UIDVALIDITY %u] UIDs valid\r\n", v->uidvalidity);
	(void)buf_printf(&s->out, "* OK [UIDNEXT %u] Predicted next UID\r\n", v->uidnext);
	if (examine)
		(void)buf_append_str(&s->out, "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
	else
		(void)buf_printf(&s->out,
		                 "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
		                 "\\Draft%s%s \\*)] Flags permitted\r\n",
		                 sp, buf_cstr(&kw));
	buf_deinit(&kw);
	(void)buf_printf(&s->out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	                 (unsigned long long)v->highestmodseq);
	if (s->rev2) {
		/* RFC 9051 §6.3.2: a LIST response with the mailbox name */
		(void)buf_append_str(&s->out, "* LIST () \"/\" ");
		imap_mailbox_out(&s->out, v->name, true);
		(void)buf_append_str(&s->out, "\r\n");
	}
	if (q.on)
		qresync_replay(s, &q);
	imap_tagged(s, "OK", examine ? "READ-ONLY" : "READ-WRITE", "%s completed",
	            examine ? "EXAMINE" : "SELECT");
out:
	imap_seqset_deinit(&q.known);
	buf_deinit(&name);
}

void
imap_cmd_close(struct imap_session *s, struct imap_call *k)
{
	if (!imap_cur_eol(k->c)) {
		(void)imap_bad(s, "Unexpected arguments");
		return;
	}
	if (!s->sel.readonly) {
		/* RFC 9051 §6.4.1: silent expunge */
		uint32_t *gone = NULL;
		size_t n = 0;
		struct err err;
		if (s->ms->ops->expunge(s->ms, s->sel.id, NULL, 0, &gone, &n, &err) < 0)
			log_warn("imap %s close-expunge-failed msg=\"%s\"", s->id, err.msg);
		free(gone);
	}
	imap_deselect(s);
	imap_tagged(s, "OK", NULL, "Close completed");
}

void
imap_cmd_unselect(struct imap_session *s, struct imap_call *k)
{
	if (!imap_cur_eol(k->c)) {
		(void)imap_bad(s, "Unexpected arguments");
		return;
	}
	imap_deselect(s);
	imap_tagged(s, "OK", NULL, "Unselect completed");
}

void
imap_cmd_expunge(struct imap_session *s, struct imap_call *k)
{
	size_t *idx = NULL, n = 0;
	uint32_t *uids = NULL;
	if (k->uid) {
		if (imap_set_arg(s, k, &idx, &n) < 0)
			return;
		uids = n ? xmalloc(n * sizeof *uids) : NULL;
		for (size_t i = 0; i < n; i++)
			uids[i] = s->sel.v[idx[i]].uid;
		free(idx);
	}
	if (!imap_cur_eol(k->c)) {
		free(uids);
		(void)imap_bad(s, "Unexpected arguments");
		return;
	}
	if (s->sel.readonly) {
		free(uids);
		imap_tagged(s, "NO", "READ-ONLY", "Mailbox is read-only");
		return;
	}
	uint32_t *gone = NULL;
	size_t n_gone = 0;
	struct err err = {0};
	int r = 0;
	if (!k->uid || n > 0)
		r = s->ms->ops->expunge(s->ms, s->sel.id, k->uid ? uids : NULL, n, &gone, &n_gone,
		                        &err);
	free(uids);
	if (r < 0) {
		imap_reply_ms_error(&s->out, s->tag, &err, false);
		return;
	}
	imap_view_sync(s, true, true); /* others' expunges first, in order */
	imap_view_expunged(s, gone, n_gone);
	free(gone);
	imap_tagged(s, "OK", NULL, "Expunge completed");
}

void
imap_cmd_check(struct imap_session *s, struct imap_call *k)
{
	if (!imap_cur_eol(k->c)) {
		(void)imap_bad(s, "Unexpected arguments");
		return;
	}
	imap_tagged(s, "OK", NULL, "Check completed");
}

void
imap_cmd_mailbox(struct imap_session *s, struct imap_call *k)
{
	struct imap_cmdctx cx;
	imap_cmdctx_init(s, &cx);
	const char *v = k->verb;
	int r;
	if (!strcmp(v, "LIST"))
		r = imap_cmd_list(&cx, k->c, false);
	else if (!strcmp(v, "LSUB"))
		r = imap_cmd_list(&cx, k->c, true);
	else if (!strcmp(v, "CREATE"))
		r = imap_cmd_create(&cx, k->c);
	else if (!strcmp(v, "DELETE"))
		r = imap_cmd_delete(&cx, k->c);
	else if (!strcmp(v, "RENAME"))
		r = imap_cmd_rename(&cx, k->c);
	else if (!strcmp(v, "SUBSCRIBE"))
		r = imap_cmd_subscribe(&cx, k->c, true);
	else if (!strcmp(v, "UNSUBSCRIBE"))
		r = imap_cmd_subscribe(&cx, k->c, false);
	else if (!strcmp(v, "STATUS"))
		r = imap_cmd_status(&cx, k->c);
	else if (!strcmp(v, "NAMESPACE"))
		r = imap_cmd_namespace(&cx, k->c);
	else if (!strcmp(v, "GETQUOTA"))
		r = imap_cmd_getquota(&cx, k->c);
	else if (!strcmp(v, "GETQUOTAROOT"))
		r = imap_cmd_getquotaroot(&cx, k->c);
	else
		r = imap_cmd_setquota(&cx, k->c);
	if (r < 0) {
		s->errors++;
		if (s->lim.max_errors != 0 && s->errors >= s->lim.max_errors)
			imap_bye(s, "Too many invalid commands");
	}
	if (cx.selected_gone && s->state == IMAP_STATE_SELECTED)
		imap_deselect(s); /* later commands get "BAD No mailbox selected" */
	if (cx.condstore_enable && !s->condstore)
		imap_before_tagged(s, imap_condstore_on); /* RFC 7162 §3.1 */
}
