/* Recipient resolution for SMTP RCPT and delivery (DESIGN.md §7), and the sender check for
 * submission. An address in a domain we serve resolves, in this order, to an account, an alias,
 * the same two without the "+tag" sub-address, or the domain's catch-all alias; aliases expand
 * recursively into accounts (local results) and addresses elsewhere (remote results, i.e.
 * forwarding). Lookups run on the calling thread's read connection inside one read transaction,
 * so one resolution sees one snapshot, with cached statements (stmt.c). Case: address columns
 * are COLLATE NOCASE and domains are stored lower-case, so equality in SQL ignores ASCII case. */
#include "store_private.h"

#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Alias nesting followed (sendmail stops at 10, Postfix's virtual_alias_recursion_limit is
 * 1000; eight levels are more than any sane setup and bound the work per RCPT). */
#define RCPT_DEPTH_MAX 8

enum rcpt_kind { RCPT_KIND_REMOTE, RCPT_KIND_UNKNOWN, RCPT_KIND_ACCOUNT, RCPT_KIND_ALIAS };

struct rcpt_ctx {
	struct store_reader *r;
	char sep;
	uint64_t size_hint;
	struct store_rcpt *out;
	size_t cap;
	char **visited; /* alias addresses already expanded (loop protection) */
	size_t n_visited, cap_visited;
	char *disabled, *over_quota; /* first account with that problem */
	bool truncated;
};

/* Targets of one alias, copied out of the statement before recursing (the cached statement
 * cannot be stepped by two levels at once). */
struct rcpt_list {
	char **v;
	size_t n, cap;
};

static void
rcpt_list_push(struct rcpt_list *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = s;
}

static void
rcpt_list_free(struct rcpt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct rcpt_list){0};
}

static void
rcpt_add_target(struct rcpt_ctx *c, const char *addr, bool remote)
{
	struct store_rcpt *o = c->out;
	for (size_t i = 0; i < o->n_targets; i++)
		if (strcasecmp(o->targets[i].address, addr) == 0)
			return;
	if (o->n_targets == STORE_RCPT_MAX_TARGETS) {
		if (!c->truncated)
			log_warn("store - rcpt-targets-truncated max=%d dropped=%s",
			         STORE_RCPT_MAX_TARGETS, addr);
		c->truncated = true;
		return;
	}
	if (o->n_targets == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 4;
		o->targets = xrealloc(o->targets, c->cap * sizeof *o->targets);
	}
	o->targets[o->n_targets++] = (struct store_rcpt_target){xstrdup(addr), remote};
}

static bool
rcpt_visited(struct rcpt_ctx *c, const char *key)
{
	for (size_t i = 0; i < c->n_visited; i++)
		if (strcasecmp(c->visited[i], key) == 0)
			return true;
	if (c->n_visited == c->cap_visited) {
		c->cap_visited = c->cap_visited ? 2 * c->cap_visited : 8;
		c->visited = xrealloc(c->visited, c->cap_visited * sizeof *c->visited);
	}
	c->visited[c->n_visited++] = xstrdup(key);
	return false;
}

/* Is dom (normalised) one of ours? 1 yes, 0 no, -1 + err. */
static int
rcpt_domain_ours(struct store_reader *r, const char *dom, struct err *err)
{
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_DOMAIN_EXISTS, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, dom, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret = rc == SQLITE_ROW    ? 1
	          : rc == SQLITE_DONE ? 0
	                              : store_db_fail(r->db, err, "domain");
	store_stmt_release(stmt);
	return ret;
}

/* An account with address key: records it as a local target (with its problems). 1 found, 0 not,
 * -1 + err. */
static int
rcpt_account(struct rcpt_ctx *c, const char *key, struct err *err)
{
	sqlite3_stmt *stmt = store_reader_stmt(c->r, STMT_RCPT_ACCOUNT, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		int ret = rc == SQLITE_DONE ? 0 : store_db_fail(c->r->db, err, "rcpt-account");
		store_stmt_release(stmt);
		return ret;
	}
	const char *address = (const char *)sqlite3_column_text(stmt, 0);
	uint64_t quota = (uint64_t)sqlite3_column_int64(stmt, 1);
	uint64_t used = (uint64_t)sqlite3_column_int64(stmt, 2);
	bool disabled = sqlite3_column_int(stmt, 3) != 0;
	/* used + size_hint >= quota, without overflow */
	bool over = quota != 0 && (c->size_hint >= quota || used >= quota - c->size_hint);
	if (address) {
		if (disabled && c->disabled == NULL)
			c->disabled = xstrdup(address);
		if (over && c->over_quota == NULL)
			c->over_quota = xstrdup(address);
		rcpt_add_target(c, address, false);
	}
	store_stmt_release(stmt);
	return 1;
}

/* The targets of the alias key into l (empty when there is no such alias). */
static int
rcpt_alias(struct rcpt_ctx *c, const char *key, struct rcpt_list *l, struct err *err)
{
	sqlite3_stmt *stmt = store_reader_stmt(c->r, STMT_RCPT_ALIAS, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		char *t = store_db_strdup(stmt, 0);
		if (t)
			rcpt_list_push(l, t);
	}
	int ret = rc == SQLITE_DONE ? 0 : store_db_fail(c->r->db, err, "rcpt-alias");
	store_stmt_release(stmt);
	return ret;
}

static int rcpt_expand(struct rcpt_ctx *c, const char *addr, unsigned depth, enum rcpt_kind *kind_r,
                       struct err *err);

/* Expands the alias key (whose targets are in l) one level deeper. */
static int
rcpt_expand_alias(struct rcpt_ctx *c, const char *key, struct rcpt_list *l, unsigned depth,
                  struct err *err)
{
	/* Depth first: an alias cut off on a deep path may still be reached on a shorter one. */
	if (depth >= RCPT_DEPTH_MAX) {
		log_warn("store - rcpt-alias-too-deep alias=%s max=%d", key, RCPT_DEPTH_MAX);
		return 0;
	}
	if (rcpt_visited(c, key)) {
		log_debug("store - rcpt-alias-loop alias=%s", key);
		return 0;
	}
	for (size_t i = 0; i < l->n; i++) {
		enum rcpt_kind kind;
		if (rcpt_expand(c, l->v[i], depth + 1, &kind, err) < 0)
			return -1;
		if (kind == RCPT_KIND_UNKNOWN) /* XXX: dropped; no DSN can be sent from RCPT */
			log_warn("store - rcpt-alias-dangling alias=%s target=%s", key, l->v[i]);
	}
	return 0;
}

/* Resolves addr at the given alias depth; local and remote results go to c->out (at depth 0 a
 * remote address is only reported, not added). */
static int
rcpt_expand(struct rcpt_ctx *c, const char *addr, unsigned depth, enum rcpt_kind *kind_r,
            struct err *err)
{
	*kind_r = RCPT_KIND_UNKNOWN;
	const char *at = strrchr(addr, '@');
	if (at == NULL || at == addr)
		return 0;
	char dom[STORE_DOMAIN_MAX + 1];
	struct err ignored;
	int ours = 0;
	if (store_name_domain(at + 1, dom, &ignored) == 0) {
		ours = rcpt_domain_ours(c->r, dom, err);
		if (ours < 0)
			return -1;
	}
	if (!ours) { /* address literals and non-LDH domains are never ours either */
		*kind_r = RCPT_KIND_REMOTE;
		if (depth > 0)
			rcpt_add_target(c, addr, true);
		return 0;
	}
	/* Candidates in order: the address, the address without its sub-address (only the first
	 * separator splits; an empty base is not tried), the catch-all. */
	int local_len = (int)(at - addr);
	char *keys[3];
	size_t n_keys = 0;
	keys[n_keys++] = xasprintf("%.*s@%s", local_len, addr, dom);
	const char *sep = c->sep ? memchr(addr, c->sep, (size_t)local_len) : NULL;
	if (sep && sep > addr)
		keys[n_keys++] = xasprintf("%.*s@%s", (int)(sep - addr), addr, dom);
	keys[n_keys++] = xasprintf("@%s", dom);
	struct rcpt_list l = {0};
	int ret = 0;
	for (size_t i = 0; i < n_keys && *kind_r == RCPT_KIND_UNKNOWN && ret == 0; i++) {
		bool catchall = i == n_keys - 1;
		int found = catchall ? 0 : rcpt_account(c, keys[i], err);
		if (found < 0) {
			ret = -1;
		} else if (found) {
			*kind_r = RCPT_KIND_ACCOUNT;
		} else if (rcpt_alias(c, keys[i], &l, err) < 0) {
			ret = -1;
		} else if (l.n > 0) {
			*kind_r = RCPT_KIND_ALIAS;
			ret = rcpt_expand_alias(c, keys[i], &l, depth, err);
		}
	}
	rcpt_list_free(&l);
	for (size_t i = 0; i < n_keys; i++)
		free(keys[i]);
	return ret;
}

static void
rcpt_ctx_free(struct rcpt_ctx *c)
{
	for (size_t i = 0; i < c->n_visited; i++)
		free(c->visited[i]);
	free(c->visited);
	free(c->disabled);
	free(c->over_quota);
}

int
store_rcpt_resolve(struct store *st, const char *address, char sep, uint64_t size_hint,
                   struct store_rcpt *r_r, struct err *err)
{
	memset(r_r, 0, sizeof *r_r);
	if (address == NULL)
		return err_set(err, STORE_EINVAL, "address missing");
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	if (store_reader_begin(r, err) < 0)
		return -1;
	struct rcpt_ctx c = {.r = r, .sep = sep, .size_hint = size_hint, .out = r_r};
	enum rcpt_kind kind;
	int ret = rcpt_expand(&c, address, 0, &kind, err);
	store_reader_end(r);
	if (ret < 0) {
		rcpt_ctx_free(&c);
		store_rcpt_deinit(r_r);
		return -1;
	}
	if (kind == RCPT_KIND_REMOTE)
		r_r->status = STORE_RCPT_REMOTE;
	else if (r_r->n_targets == 0) /* unknown, or an alias that led nowhere */
		r_r->status = STORE_RCPT_UNKNOWN;
	else if (c.disabled)
		r_r->status = STORE_RCPT_DISABLED;
	else if (c.over_quota)
		r_r->status = STORE_RCPT_OVER_QUOTA;
	else
		r_r->status = STORE_RCPT_OK;
	if (r_r->status == STORE_RCPT_DISABLED || r_r->status == STORE_RCPT_OVER_QUOTA) {
		char **p = r_r->status == STORE_RCPT_DISABLED ? &c.disabled : &c.over_quota;
		r_r->problem = *p;
		*p = NULL;
	}
	rcpt_ctx_free(&c);
	return 0;
}

void
store_rcpt_deinit(struct store_rcpt *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_targets; i++)
		free(r->targets[i].address);
	free(r->targets);
	free(r->problem);
	memset(r, 0, sizeof *r);
}

/* ---- sender authorisation (submission, DESIGN.md §7) ---- */

/* Fetches the account's stored address, its domain and the admin flag. 1 found, 0 not, -1. */
static int
sender_account(struct store_reader *r, const char *account, char **addr_r, char **domain_r,
               bool *admin_r, struct err *err)
{
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_SENDER_ACCOUNT, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, account, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		*addr_r = store_db_strdup(stmt, 0);
		*domain_r = store_db_strdup(stmt, 1);
		*admin_r = sqlite3_column_int(stmt, 2) != 0;
		ret = *addr_r && *domain_r ? 1 : 0;
	} else if (rc != SQLITE_DONE) {
		ret = store_db_fail(r->db, err, "sender-account");
	}
	store_stmt_release(stmt);
	return ret;
}

/* Does the alias addr have account among its direct targets? */
static int
sender_alias(struct store_reader *r, const char *addr, const char *account, struct err *err)
{
	sqlite3_stmt *stmt = store_reader_stmt(r, STMT_SENDER_ALIAS, err);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, addr, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, account, -1, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	int ret = rc == SQLITE_ROW    ? 1
	          : rc == SQLITE_DONE ? 0
	                              : store_db_fail(r->db, err, "sender-alias");
	store_stmt_release(stmt);
	return ret;
}

/* Is addr the account's address, or (with sep) one of its "+tag" forms? */
static bool
sender_is_own(const char *acct, const char *addr, const char *at, char sep)
{
	if (strcasecmp(addr, acct) == 0)
		return true;
	const char *p = sep ? memchr(addr, sep, (size_t)(at - addr)) : NULL;
	if (p == NULL || p == addr)
		return false;
	size_t base = (size_t)(p - addr);
	const char *acct_at = strrchr(acct, '@');
	return acct_at && (size_t)(acct_at - acct) == base && strncasecmp(acct, addr, base) == 0 &&
	       strcasecmp(acct_at + 1, at + 1) == 0;
}

int
store_sender_allowed(struct store *st, const char *account, const char *addr, char sep, bool *ok_r,
                     struct err *err)
{
	*ok_r = false;
	if (account == NULL || addr == NULL)
		return err_set(err, STORE_EINVAL, "account or address missing");
	const char *at = strrchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0')
		return 0; /* the null sender and bare names are nobody's address */
	struct store_reader *r = store_db_reader_get(st, err);
	if (r == NULL)
		return -1;
	if (store_reader_begin(r, err) < 0)
		return -1;
	char *acct = NULL, *domain = NULL;
	bool admin = false;
	int ret = sender_account(r, account, &acct, &domain, &admin, err);
	if (ret > 0) {
		if (sender_is_own(acct, addr, at, sep) ||
		    (admin && strcasecmp(at + 1, domain) == 0))
			*ok_r = true;
		else
			ret = sender_alias(r, addr, acct, err);
		if (ret > 0)
			*ok_r = true;
	}
	store_reader_end(r);
	free(acct);
	free(domain);
	return ret < 0 ? -1 : 0;
}
