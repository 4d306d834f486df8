/* The SMTP session's questions answered from the store (DESIGN.md §7, inbound and submission):
 * which recipients are ours, whose password is right, which sender an account may use, and the
 * durable delivery. smtp/ cannot include store/ (STYLE.md B.3), so server/ fills struct
 * smtp_hooks with these functions. Every function runs on the session's thread. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/passwd.h"
#include "mail/mime.h"
#include "server_private.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

static void
hook_reply(struct smtp_hook_reply *r, int code, const char *enhanced, const char *text)
{
	r->code = code;
	(void)snprintf(r->enhanced, sizeof r->enhanced, "%s", enhanced);
	(void)snprintf(r->text, sizeof r->text, "%s", text);
}

static enum smtp_rcpt_kind
hook_rcpt(void *vctx, const char *addr, uint64_t size_hint, struct smtp_hook_reply *reply_r)
{
	struct server_smtp_ctx *ctx = vctx;
	struct store_rcpt r;
	struct err err = {0};
	if (store_rcpt_resolve(ctx->store, addr, ctx->subaddress_sep, size_hint, &r, &err) < 0) {
		log_error("smtp %s rcpt-lookup failed error=\"%s\"", ctx->id, err.msg);
		hook_reply(reply_r, 451, "4.3.0", "Temporary lookup failure, try again later");
		return SMTP_RCPT_REJECT;
	}
	enum smtp_rcpt_kind kind = SMTP_RCPT_REJECT;
	switch (r.status) {
	case STORE_RCPT_OK:
		kind = SMTP_RCPT_LOCAL;
		break;
	case STORE_RCPT_REMOTE:
		kind = SMTP_RCPT_REMOTE;
		break;
	case STORE_RCPT_UNKNOWN:
		hook_reply(reply_r, 550, "5.1.1", "No such user here");
		break;
	case STORE_RCPT_DISABLED:
		hook_reply(reply_r, 550, "5.2.1", "Mailbox disabled, not accepting messages");
		break;
	case STORE_RCPT_OVER_QUOTA:
		hook_reply(reply_r, 452, "4.2.2", "Mailbox full, try again later");
		break;
	}
	store_rcpt_deinit(&r);
	return kind;
}

/* A fixed argon2id hash: an unknown user costs the same hash computation as a known one, so
 * response times do not tell which addresses exist. */
static char dummy_hash_buf[AUTH_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_hash_init(void)
{
	if (auth_hash("lightr-no-such-user", 19, dummy_hash_buf) < 0)
		dummy_hash_buf[0] = '\0';
}

static int
hook_auth(void *vctx, const char *user, const char *pass, size_t pass_len)
{
	struct server_smtp_ctx *ctx = vctx;
	struct store_account a;
	struct err err = {0};
	if (store_account_get(ctx->store, user, &a, &err) < 0) {
		if (err.code != STORE_ENOTFOUND) {
			log_error("smtp %s auth-lookup failed error=\"%s\"", ctx->id, err.msg);
			return -1;
		}
		pthread_once(&dummy_once, dummy_hash_init);
		(void)auth_verify(dummy_hash_buf, pass, pass_len);
		return 0;
	}
	bool ok = auth_verify(a.password_hash, pass, pass_len) && !a.disabled;
	store_account_deinit(&a);
	return ok ? 1 : 0;
}

static bool
hook_sender_ok(void *vctx, const char *account, const char *addr)
{
	struct server_smtp_ctx *ctx = vctx;
	bool ok = false;
	struct err err = {0};
	if (store_sender_allowed(ctx->store, account, addr, ctx->subaddress_sep, &ok, &err) < 0) {
		log_error("smtp %s sender-lookup failed error=\"%s\"", ctx->id, err.msg);
		return false;
	}
	return ok;
}

/* Recipients of one message after alias expansion: local accounts once each, remote addresses
 * with the DSN parameters of the recipient they came from. */
struct hook_targets {
	struct store_local_rcpt *local;
	size_t n_local, cap_local;
	struct store_remote_rcpt *remote;
	size_t n_remote, cap_remote;
	char **owned; /* strings the arrays point to */
	size_t n_owned, cap_owned;
};

static const char *
targets_keep(struct hook_targets *t, char *s)
{
	if (t->n_owned == t->cap_owned) {
		t->cap_owned = t->cap_owned ? 2 * t->cap_owned : 16;
		t->owned = xrealloc(t->owned, t->cap_owned * sizeof *t->owned);
	}
	t->owned[t->n_owned++] = s;
	return s;
}

static void
targets_add_local(struct hook_targets *t, const char *account)
{
	for (size_t i = 0; i < t->n_local; i++)
		if (strcasecmp(t->local[i].account, account) == 0)
			return;
	if (t->n_local == t->cap_local) {
		t->cap_local = t->cap_local ? 2 * t->cap_local : 8;
		t->local = xrealloc(t->local, t->cap_local * sizeof *t->local);
	}
	t->local[t->n_local++] =
	    (struct store_local_rcpt){.account = targets_keep(t, xstrdup(account))};
}

static void
targets_add_remote(struct hook_targets *t, const char *addr, const struct smtp_rcpt *from)
{
	for (size_t i = 0; i < t->n_remote; i++)
		if (strcasecmp(t->remote[i].address, addr) == 0)
			return;
	if (t->n_remote == t->cap_remote) {
		t->cap_remote = t->cap_remote ? 2 * t->cap_remote : 8;
		t->remote = xrealloc(t->remote, t->cap_remote * sizeof *t->remote);
	}
	/* RFC 3461 §4.2: a forwarded recipient keeps the original recipient as ORCPT. */
	const char *orcpt = from->orcpt;
	if (orcpt == NULL && strcasecmp(addr, from->addr) != 0)
		orcpt = targets_keep(t, xasprintf("rfc822;%s", from->addr));
	t->remote[t->n_remote++] = (struct store_remote_rcpt){
	    .address = targets_keep(t, xstrdup(addr)),
	    .notify = from->notify,
	    .orcpt = orcpt,
	};
}

static void
targets_free(struct hook_targets *t)
{
	for (size_t i = 0; i < t->n_owned; i++)
		free(t->owned[i]);
	free(t->owned);
	free(t->local);
	free(t->remote);
}

/* Expands the accepted recipients again (they were classified at RCPT; an alias may have changed
 * since, which is fine: the current state wins). */
static int
hook_expand(struct server_smtp_ctx *ctx, const struct smtp_envelope *env, struct hook_targets *t,
            struct smtp_hook_reply *reply_r)
{
	for (size_t i = 0; i < env->n_rcpts; i++) {
		const struct smtp_rcpt *rc = &env->rcpts[i];
		if (rc->kind == SMTP_RCPT_REMOTE) {
			targets_add_remote(t, rc->addr, rc);
			continue;
		}
		struct store_rcpt r;
		struct err err = {0};
		if (store_rcpt_resolve(ctx->store, rc->addr, ctx->subaddress_sep, 0, &r, &err) <
		    0) {
			log_error("smtp %s rcpt-lookup failed error=\"%s\"", ctx->id, err.msg);
			hook_reply(reply_r, 451, "4.3.0",
			           "Temporary lookup failure, try again later");
			return -1;
		}
		/* Quota was checked at RCPT with the SIZE hint; a message that crosses the quota
		 * now is still delivered (soft quota) rather than failing every recipient. */
		if (r.status != STORE_RCPT_OK && r.status != STORE_RCPT_OVER_QUOTA) {
			log_info("smtp %s rcpt-changed rcpt=%s status=%d", ctx->id, rc->addr,
			         (int)r.status);
			store_rcpt_deinit(&r);
			hook_reply(reply_r, 451, "4.3.0", "Recipient changed meanwhile, try again");
			return -1;
		}
		for (size_t k = 0; k < r.n_targets; k++) {
			if (r.targets[k].remote)
				targets_add_remote(t, r.targets[k].address, rc);
			else
				targets_add_local(t, r.targets[k].address);
		}
		store_rcpt_deinit(&r);
	}
	return 0;
}

static int
hook_deliver(void *vctx, const struct smtp_envelope *env, const unsigned char *msg, size_t len,
             struct smtp_hook_reply *reply_r)
{
	struct server_smtp_ctx *ctx = vctx;
	struct hook_targets t = {0};
	struct mime_meta meta = {0};
	int ret = -1;
	if (hook_expand(ctx, env, &t, reply_r) < 0)
		goto out;
	/* IMAP metadata, computed once here on the session's thread (DESIGN.md §2) and stored with
	 * every local copy; without it (GMime failed) IMAP computes it at the first FETCH. */
	if (t.n_local > 0 && mime_meta_build(msg, len, &meta) < 0) {
		mime_meta_deinit(&meta);
		meta = (struct mime_meta){0};
		log_warn("smtp %s mime-metadata failed", ctx->id);
	}
	/* RFC 5321 §4.4: Return-Path at final delivery; Delivered-To names the mailbox (loop
	 * detection for forwarders); then the Received trace line built by the session. */
	for (size_t i = 0; i < t.n_local; i++) {
		char *h = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n%s", env->mail_from,
		                    t.local[i].account, env->received);
		t.local[i].header = targets_keep(&t, h);
		t.local[i].header_len = strlen(h);
	}
	struct store_delivery d = {
	    .body = msg,
	    .body_len = len,
	    .internal_date = (int64_t)time(NULL),
	    .local = t.local,
	    .n_local = t.n_local,
	    .mail_from = env->mail_from,
	    .auth_user = env->auth_user,
	    .ret = env->ret,
	    .envid = env->envid,
	    .requiretls = env->requiretls,
	    .smtputf8 = env->smtputf8,
	    .eightbit = env->eightbit,
	    .queue_header = env->received,
	    .queue_header_len = strlen(env->received),
	    .remote = t.remote,
	    .n_remote = t.n_remote,
	    .meta_envelope = meta.envelope,
	    .meta_body = meta.body,
	    .meta_bodystructure = meta.bodystructure,
	    .meta_parts = meta.parts.data,
	    .meta_parts_len = meta.parts.len,
	};
	int64_t qid = 0;
	struct err err = {0};
	if (store_deliver(ctx->store, &d, &qid, &err) < 0) {
		log_error("smtp %s store-deliver failed code=%d error=\"%s\"", ctx->id, err.code,
		          err.msg);
		hook_reply(reply_r, 451, "4.3.0", "Temporary local problem, try again later");
		goto out;
	}
	log_info("smtp %s delivered msgid=%s from=<%s> size=%zu local=%zu remote=%zu queue=%lld",
	         ctx->id, env->id, env->mail_from, len, t.n_local, t.n_remote, (long long)qid);
	ret = 0;
out:
	mime_meta_deinit(&meta);
	targets_free(&t);
	return ret;
}

static void
hook_log(void *vctx, const char *line)
{
	(void)vctx;
	log_info("%s", line);
}

void
server_smtp_hooks(struct server_smtp_ctx *ctx, struct smtp_hooks *hooks_r)
{
	*hooks_r = (struct smtp_hooks){
	    .ctx = ctx,
	    .rcpt = hook_rcpt,
	    .auth = hook_auth,
	    .sender_ok = hook_sender_ok,
	    .deliver = hook_deliver,
	    .log = hook_log,
	};
}
