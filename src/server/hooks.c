/* The SMTP session's questions answered from the store (DESIGN.md §7, inbound and submission):
 * which recipients are ours, whose password is right, which sender an account may use, and the
 * durable delivery. smtp/ cannot include store/ (STYLE.md B.3), so server/ fills struct
 * smtp_hooks with these functions. Every function runs on the session's thread. */
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "auth/passwd.h"
#include "server/submit.h"
#include "server_private.h"
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
	/* A report coming back to a VERP address of a message we queued (bounce.c). */
	char token[SERVER_VERP_TOKEN_LEN + 1];
	if (server_bounce_token(addr, token)) {
		struct store_queue_msg m;
		if (store_queue_by_token(ctx->store, token, &m, &err) == 0) {
			store_queue_msg_deinit(&m);
			return SMTP_RCPT_LOCAL;
		}
		if (err.code != STORE_ENOTFOUND) {
			hook_reply(reply_r, 451, "4.3.0",
			           "Temporary lookup failure, try again later");
			return SMTP_RCPT_REJECT;
		}
	}
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

/* Delivery through the shared path (submit.c): mail from an authenticated submitter gets DKIM,
 * the VERP envelope sender and DSNs; MX mail (and forwarding of it) is stored as received. */
static int
hook_deliver(void *vctx, const struct smtp_envelope *env, const unsigned char *msg, size_t len,
             struct smtp_hook_reply *reply_r)
{
	struct server_smtp_ctx *ctx = vctx;
	struct server_submit_opts o = {
	    .subaddress_sep = ctx->subaddress_sep,
	    .id = ctx->id,
	    .component = "smtp",
	    .submission = env->auth_user != NULL,
	};
	/* Reports for our VERP addresses are processed, not stored; the rest is delivered. */
	struct smtp_rcpt *rest = xcalloc(env->n_rcpts + 1, sizeof *rest);
	size_t n_rest = 0;
	int rc = 0;
	for (size_t i = 0; i < env->n_rcpts && rc == 0; i++) {
		char token[SERVER_VERP_TOKEN_LEN + 1];
		if (env->auth_user == NULL && server_bounce_token(env->rcpts[i].addr, token))
			rc = server_bounce_process(ctx->store, token, msg, len, ctx->subaddress_sep,
			                           ctx->id);
		else
			rest[n_rest++] = env->rcpts[i];
	}
	if (rc < 0) {
		hook_reply(reply_r, 451, "4.3.0", "Temporary local problem, try again later");
	} else if (n_rest > 0) {
		struct smtp_envelope e2 = *env;
		e2.rcpts = rest;
		e2.n_rcpts = n_rest;
		rc = server_submit(ctx->store, &o, &e2, msg, len, NULL, reply_r);
	}
	free(rest);
	return rc;
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
