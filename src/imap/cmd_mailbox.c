/* Mailbox names on the wire (RFC 3501 §5.1.3 modified UTF-7, RFC 9051 §5.1 UTF-8) and the
 * mailbox commands that change the mailbox tree or read account-wide data: CREATE (with
 * CREATE-SPECIAL-USE, RFC 6154 §3), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 §6.3.4-8),
 * NAMESPACE (RFC 2342), GETQUOTA, GETQUOTAROOT, SETQUOTA (RFC 9208). LIST, LSUB and STATUS are
 * in cmd_list.c. Protocol code only: storage goes through cx->ms. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_private.h"
#include "mail/addr.h"

/* A wire name is at most this long: modified UTF-7 needs at most ~3 bytes per UTF-8 byte
 * ("&" → "&-", 3 UTF-8 bytes → 2 UTF-16 → 6 base64 chars); anything longer decodes to more
 * than IMAP_MAILBOX_NAME_MAX. */
#define MAILBOX_WIRE_MAX (IMAP_MAILBOX_NAME_MAX * 4)

/* RFC 6154 §2 special-use attributes accepted by CREATE (USE (...)). */
static const char *const special_uses[] = {"\\All",  "\\Archive", "\\Drafts", "\\Flagged",
                                           "\\Junk", "\\Sent",    "\\Trash"};

/* "INBOX" in any case, alone or as the first level, is spelled "INBOX" (RFC 9051 §5.1). */
static void
inbox_normalise(struct buf *name)
{
	if (name->len >= 5 && strncasecmp((const char *)name->data, "INBOX", 5) == 0 &&
	    (name->len == 5 || name->data[5] == '/'))
		memcpy(name->data, "INBOX", 5);
}

static int
name_validate(const struct buf *name, const char **why_r)
{
	const unsigned char *p = name->data;
	size_t n = name->len;
	if (n == 0) {
		*why_r = "Empty mailbox name";
		return -1;
	}
	if (n > IMAP_MAILBOX_NAME_MAX) {
		*why_r = "Mailbox name too long";
		return -1;
	}
	if (p[0] == '/' || p[n - 1] == '/') {
		*why_r = "Mailbox name may not start or end with the hierarchy separator";
		return -1;
	}
	unsigned levels = 1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f) {
			*why_r = "Invalid characters in mailbox name";
			return -1;
		}
		if (p[i] == '/') {
			if (p[i + 1] == '/') {
				*why_r = "Empty hierarchy level in mailbox name";
				return -1;
			}
			levels++;
		}
	}
	if (levels > IMAP_MAILBOX_DEPTH) {
		*why_r = "Mailbox hierarchy too deep";
		return -1;
	}
	return 0;
}

/* imap_mailbox_arg, optionally tolerating one trailing separator (CREATE, RFC 9051 §6.3.4). */
static int
mailbox_arg(struct imap_cmdctx *cx, struct imap_cursor *c, struct buf *name_r, bool trailing_ok,
            bool *bad_r, const char **why_r)
{
	buf_reset(name_r);
	*bad_r = false;
	*why_r = NULL;
	struct buf raw;
	buf_init(&raw, MAILBOX_WIRE_MAX);
	int r = -1;
	if (!imap_cur_astring(c, &raw)) {
		if (raw.overflow) {
			*why_r = "Mailbox name too long";
		} else {
			*bad_r = true;
			*why_r = c->error != NULL ? c->error : "Invalid mailbox name";
		}
		goto out;
	}
	if (cx->utf8) {
		if (!addr_utf8_is_valid(slice_make(raw.data, raw.len))) {
			*why_r = "Invalid mailbox name encoding";
			goto out;
		}
		(void)buf_append(name_r, raw.data, raw.len);
	} else if (imap_mutf7_decode(buf_slice(&raw), name_r) < 0) {
		*why_r = "Invalid mailbox name encoding";
		goto out;
	}
	if (name_r->overflow) {
		*why_r = "Mailbox name too long";
		goto out;
	}
	if (trailing_ok && name_r->len > 1 && name_r->data[name_r->len - 1] == '/') {
		name_r->len--;
		name_r->data[name_r->len] = '\0';
	}
	inbox_normalise(name_r);
	if (name_validate(name_r, why_r) < 0)
		goto out;
	r = 0;
out:
	buf_deinit(&raw);
	if (r < 0)
		buf_reset(name_r);
	return r;
}

int
imap_mailbox_arg(struct imap_cmdctx *cx, struct imap_cursor *c, struct buf *name_r, bool *bad_r,
                 const char **why_r)
{
	return mailbox_arg(cx, c, name_r, false, bad_r, why_r);
}

void
imap_mailbox_out(struct buf *out, const char *name, bool utf8)
{
	size_t len = strlen(name);
	if (utf8) {
		imap_string_out(out, name, len, true);
		return;
	}
	struct buf enc;
	buf_init(&enc, 0);
	if (imap_mutf7_encode(slice_make(name, len), &enc) == 0)
		imap_string_out(out, (const char *)enc.data, enc.len, false);
	else
		imap_string_out(out, name, len, false); /* not UTF-8: raw bytes in a literal */
	buf_deinit(&enc);
}

/* Replies to a failed mailbox argument: BAD for syntax, NO [CANNOT] for a refused name.
 * Returns what the command returns. */
static int
arg_failed(struct imap_cmdctx *cx, const struct imap_cursor *c, bool bad, const char *why)
{
	if (bad || why == NULL) {
		imap_reply_tagged(cx->out, cx->tag, "BAD", NULL, "%s",
		                  why != NULL        ? why
		                  : c->error != NULL ? c->error
		                                     : "Syntax error");
		return -1;
	}
	imap_reply_tagged(cx->out, cx->tag, "NO", "CANNOT", "%s", why);
	return 0;
}

static int
syntax_error(struct imap_cmdctx *cx, const struct imap_cursor *c, const char *usage)
{
	imap_reply_tagged(cx->out, cx->tag, "BAD", NULL, "%s", c->error != NULL ? c->error : usage);
	return -1;
}

/* The one mailbox argument of DELETE, SUBSCRIBE, GETQUOTAROOT... followed by the end of the
 * command, into name (initialised here; the caller deinits it). Returns 1 when the name is ready;
 * otherwise the command was answered and *r_r is its result. */
static int
single_mailbox(struct imap_cmdctx *cx, struct imap_cursor *c, struct buf *name, const char *usage,
               int *r_r)
{
	buf_init(name, 0);
	bool bad = false;
	const char *why = NULL;
	if (imap_mailbox_arg(cx, c, name, &bad, &why) < 0) {
		*r_r = arg_failed(cx, c, bad, why);
		return 0;
	}
	if (!imap_cur_eol(c)) {
		*r_r = syntax_error(cx, c, usage);
		return 0;
	}
	return 1;
}

static bool
has_wildcards(const char *name)
{
	return strpbrk(name, "*%") != NULL;
}

/* Creates every missing superior level of name (RFC 9051 §6.3.4: "the server SHOULD create
 * any superior hierarchical names that are needed"), as real mailboxes. */
static int
create_parents(struct imap_cmdctx *cx, const char *name, struct err *err)
{
	struct buf parent;
	buf_init(&parent, 0);
	int r = 0;
	for (const char *p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/')) {
		buf_reset(&parent);
		(void)buf_append(&parent, name, (size_t)(p - name));
		if (strcmp(buf_cstr(&parent), "INBOX") == 0)
			continue;
		struct err e = {0};
		if (cx->ms->ops->create(cx->ms, buf_cstr(&parent), NULL, &e) < 0 &&
		    e.code != IMAP_MS_EEXISTS) {
			*err = e;
			r = -1;
			break;
		}
	}
	buf_deinit(&parent);
	return r;
}

/* create-params: "(" "USE" SP "(" [use-attr *(SP use-attr)] ")" ")" (RFC 6154 §3, RFC 4466).
 * *use_r: the special use, NULL for none; *use_bad_r set when it cannot be honoured. */
static bool
create_params(struct imap_cursor *c, const char **use_r, bool *use_bad_r)
{
	if (!imap_cur_list_open(c))
		return false;
	for (;;) {
		struct slice param;
		if (!imap_cur_atom(c, &param))
			return false;
		if (!slice_eq_nocase(param, "USE")) {
			c->error = "Unknown CREATE parameter";
			return false;
		}
		if (!imap_cur_sp(c) || !imap_cur_list_open(c))
			return false;
		while (imap_cur_peek(c) != ')') {
			struct slice att;
			if (!imap_cur_fetch_att(c, &att))
				return false;
			const char *found = NULL;
			for (size_t i = 0; i < sizeof special_uses / sizeof special_uses[0]; i++)
				if (slice_eq_nocase(att, special_uses[i]))
					found = special_uses[i];
			if (found == NULL || *use_r != NULL)
				*use_bad_r = true; /* unknown, or more than one per mailbox */
			else
				*use_r = found;
			if (imap_cur_peek(c) != ')' && !imap_cur_sp(c))
				return false;
		}
		if (!imap_cur_list_close(c))
			return false;
		if (imap_cur_peek(c) == ')')
			break;
		if (!imap_cur_sp(c))
			return false;
	}
	return imap_cur_list_close(c);
}

int
imap_cmd_create(struct imap_cmdctx *cx, struct imap_cursor *c)
{
	struct buf name;
	buf_init(&name, 0);
	bool bad = false, use_bad = false;
	const char *why = NULL, *use = NULL;
	int r = 0;
	if (mailbox_arg(cx, c, &name, true, &bad, &why) < 0) {
		r = arg_failed(cx, c, bad, why);
		goto out;
	}
	if (imap_cur_peek(c) == ' ') {
		if (!imap_cur_sp(c) || !create_params(c, &use, &use_bad)) {
			r = syntax_error(cx, c, "Syntax: CREATE mailbox [(USE (attr))]");
			goto out;
		}
	}
	if (!imap_cur_eol(c)) {
		r = syntax_error(cx, c, "Syntax: CREATE mailbox [(USE (attr))]");
		goto out;
	}
	const char *nm = buf_cstr(&name);
	if (strcmp(nm, "INBOX") == 0) {
		imap_reply_tagged(cx->out, cx->tag, "NO", "ALREADYEXISTS", "INBOX always exists");
		goto out;
	}
	if (has_wildcards(nm)) {
		imap_reply_tagged(cx->out, cx->tag, "NO", "CANNOT",
		                  "Mailbox names may not contain * or %%");
		goto out;
	}
	if (use_bad) {
		imap_reply_tagged(cx->out, cx->tag, "NO", "USEATTR",
		                  "Unsupported special-use attribute (one of \\All \\Archive "
		                  "\\Drafts \\Flagged \\Junk \\Sent \\Trash)");
		goto out;
	}
	struct err err = {0};
	if (create_parents(cx, nm, &err) < 0 || cx->ms->ops->create(cx->ms, nm, use, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "CREATE completed");
out:
	buf_deinit(&name);
	return r;
}

int
imap_cmd_delete(struct imap_cmdctx *cx, struct imap_cursor *c)
{
	struct buf name;
	int r = 0;
	if (!single_mailbox(cx, c, &name, "Syntax: DELETE mailbox", &r))
		goto out;
	const char *nm = buf_cstr(&name);
	if (strcmp(nm, "INBOX") == 0) {
		imap_reply_tagged(cx->out, cx->tag, "NO", "CANNOT", "INBOX cannot be deleted");
		goto out;
	}
	struct imap_ms_status st = {0};
	struct err err = {0};
	if (cx->ms->ops->status(cx->ms, nm, &st, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	free(st.special_use);
	if (cx->ms->ops->delete (cx->ms, nm, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	if (cx->selected != 0 && st.id == cx->selected)
		cx->selected_gone = true;
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "DELETE completed");
out:
	buf_deinit(&name);
	return r;
}

int
imap_cmd_rename(struct imap_cmdctx *cx, struct imap_cursor *c)
{
	struct buf from, to;
	buf_init(&from, 0);
	buf_init(&to, 0);
	bool bad = false;
	const char *why = NULL;
	int r = 0;
	if (imap_mailbox_arg(cx, c, &from, &bad, &why) < 0) {
		r = arg_failed(cx, c, bad, why);
		goto out;
	}
	if (!imap_cur_sp(c)) {
		r = syntax_error(cx, c, "Syntax: RENAME old new");
		goto out;
	}
	if (mailbox_arg(cx, c, &to, true, &bad, &why) < 0) {
		r = arg_failed(cx, c, bad, why);
		goto out;
	}
	if (!imap_cur_eol(c)) {
		r = syntax_error(cx, c, "Syntax: RENAME old new");
		goto out;
	}
	const char *old = buf_cstr(&from), *nw = buf_cstr(&to);
	if (strcmp(nw, "INBOX") == 0) {
		imap_reply_tagged(cx->out, cx->tag, "NO", "ALREADYEXISTS", "INBOX always exists");
		goto out;
	}
	if (has_wildcards(nw)) {
		imap_reply_tagged(cx->out, cx->tag, "NO", "CANNOT",
		                  "Mailbox names may not contain * or %%");
		goto out;
	}
	struct imap_ms_status st = {0};
	struct err err = {0};
	if (cx->ms->ops->status(cx->ms, old, &st, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	free(st.special_use);
	if (cx->ms->ops->rename(cx->ms, old, nw, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	/* superior levels of the new name, after the rename so that a refused rename leaves
	 * nothing behind (RFC 9051 §6.3.6: created as needed) */
	if (create_parents(cx, nw, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	/* RENAME INBOX empties it under a new UIDVALIDITY: the session's view of it is stale */
	if (strcmp(old, "INBOX") == 0 && cx->selected != 0 && st.id == cx->selected)
		cx->selected_gone = true;
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "RENAME completed");
out:
	buf_deinit(&from);
	buf_deinit(&to);
	return r;
}

int
imap_cmd_subscribe(struct imap_cmdctx *cx, struct imap_cursor *c, bool on)
{
	struct buf name;
	int r = 0;
	if (!single_mailbox(cx, c, &name,
	                    on ? "Syntax: SUBSCRIBE mailbox" : "Syntax: UNSUBSCRIBE mailbox", &r))
		goto out;
	struct err err = {0};
	if (cx->ms->ops->subscribe(cx->ms, buf_cstr(&name), on, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "%s completed",
	                  on ? "SUBSCRIBE" : "UNSUBSCRIBE");
out:
	buf_deinit(&name);
	return r;
}

int
imap_cmd_namespace(struct imap_cmdctx *cx, struct imap_cursor *c)
{
	if (!imap_cur_eol(c))
		return syntax_error(cx, c, "Syntax: NAMESPACE");
	/* RFC 2342: one personal namespace, no prefix, "/" separator; no other users' or shared */
	(void)buf_append_str(cx->out, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "NAMESPACE completed");
	return 0;
}

/* ---- QUOTA (RFC 9208): one quota root "" for the whole account; STORAGE in KiB ---- */

struct quota {
	uint64_t used, limit, messages; /* bytes; limit 0 = none */
};

/* "* QUOTA "" (STORAGE used limit)": RFC 9208 §5.1 counts STORAGE in units of 1024 octets
 * (usage rounded up). MESSAGE is not listed: accounts have no message-count limit. */
static void
quota_out(struct imap_cmdctx *cx, const struct quota *q)
{
	(void)buf_printf(cx->out, "* QUOTA \"\" (STORAGE %llu %llu)\r\n",
	                 (unsigned long long)((q->used + 1023) / 1024),
	                 (unsigned long long)(q->limit / 1024));
}

int
imap_cmd_getquotaroot(struct imap_cmdctx *cx, struct imap_cursor *c)
{
	struct buf name;
	int r = 0;
	if (!single_mailbox(cx, c, &name, "Syntax: GETQUOTAROOT mailbox", &r))
		goto out;
	struct imap_ms_status st = {0};
	struct err err = {0};
	if (cx->ms->ops->status(cx->ms, buf_cstr(&name), &st, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	free(st.special_use);
	struct quota q = {0};
	if (cx->ms->ops->quota(cx->ms, &q.used, &q.limit, &q.messages, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	/* without a limit the mailbox has no quota root at all: "* QUOTAROOT INBOX" */
	(void)buf_append_str(cx->out, "* QUOTAROOT ");
	imap_mailbox_out(cx->out, buf_cstr(&name), cx->utf8);
	(void)buf_append_str(cx->out, q.limit != 0 ? " \"\"\r\n" : "\r\n");
	if (q.limit != 0)
		quota_out(cx, &q);
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "GETQUOTAROOT completed");
out:
	buf_deinit(&name);
	return r;
}

int
imap_cmd_getquota(struct imap_cmdctx *cx, struct imap_cursor *c)
{
	struct buf root;
	buf_init(&root, MAILBOX_WIRE_MAX);
	int r = 0;
	if (!imap_cur_astring(c, &root) || !imap_cur_eol(c)) {
		r = syntax_error(cx, c, "Syntax: GETQUOTA root");
		goto out;
	}
	struct err err = {0};
	struct quota q = {0};
	if (root.len == 0 && cx->ms->ops->quota(cx->ms, &q.used, &q.limit, &q.messages, &err) < 0) {
		imap_reply_ms_error(cx->out, cx->tag, &err, false);
		goto out;
	}
	if (root.len != 0 || q.limit == 0) {
		imap_reply_tagged(cx->out, cx->tag, "NO", "NONEXISTENT", "No such quota root");
		goto out;
	}
	quota_out(cx, &q);
	imap_reply_tagged(cx->out, cx->tag, "OK", NULL, "GETQUOTA completed");
out:
	buf_deinit(&root);
	return r;
}

/* SETQUOTA root (resource limit ...): parsed for syntax, always refused (limits are set by the
 * administrator, RFC 9208 §4.3). */
int
imap_cmd_setquota(struct imap_cmdctx *cx, struct imap_cursor *c)
{
	struct buf root;
	buf_init(&root, MAILBOX_WIRE_MAX);
	int r = 0;
	if (!imap_cur_astring(c, &root) || !imap_cur_sp(c) || !imap_cur_list_open(c))
		goto syntax;
	while (imap_cur_peek(c) != ')') {
		struct slice res;
		uint64_t limit;
		if (!imap_cur_atom(c, &res) || !imap_cur_sp(c) || !imap_cur_number64(c, &limit))
			goto syntax;
		if (imap_cur_peek(c) != ')' && !imap_cur_sp(c))
			goto syntax;
	}
	if (!imap_cur_list_close(c) || !imap_cur_eol(c))
		goto syntax;
	imap_reply_tagged(cx->out, cx->tag, "NO", "NOPERM",
	                  "Quota limits cannot be changed by users");
	goto out;
syntax:
	r = syntax_error(cx, c, "Syntax: SETQUOTA root (resource limit ...)");
out:
	buf_deinit(&root);
	return r;
}
