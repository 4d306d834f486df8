/* The SMTP session's questions answered from the store (DESIGN.md §7, inbound and submission):
 * which recipients are ours, whose password is right, which sender an account may use, the rate
 * limits (issue 8) and the durable delivery. smtp/ cannot include store/ (STYLE.md B.3), so
 * server/ fills struct smtp_hooks with these functions. Every function runs on the session's
 * thread.
 *
 * Rate limits: on submission the outbound budgets of the authenticated account and its domain
 * are checked at MAIL (messages) and RCPT (recipients) and taken when the message is accepted
 * (end of DATA); on MX only the client IP's inbound budgets are used (one message per MAIL, one
 * recipient per accepted RCPT), never an outbound one. Over a limit: 451 4.7.1 with the
 * verdict's text (which limit, for whom, when it frees). */
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "auth/passwd.h"
#include "server/server.h"
#include "server/submit.h"
#include "server_private.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Longest wait before a password check the auth-failure tracker may ask for. */
#define SERVER_AUTH_GATE_MAX_MS 10000

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

/* ---- rate limits ---- */

/* The limiter keys of an account: the address and its domain, ASCII lower-cased (addresses are
 * case-insensitive in the store, so "A@x" and "a@x" share one budget). */
static void
limit_names(const char *account, char acct[320], char dom[256])
{
	size_t i = 0;
	for (; account[i] != '\0' && i + 1 < 320; i++)
		acct[i] = (char)tolower((unsigned char)account[i]);
	acct[i] = '\0';
	const char *at = strrchr(acct, '@');
	(void)snprintf(dom, 256, "%s", at ? at + 1 : "");
}

/* 451 4.7.1 with the verdict's text, kept to one line of printable ASCII. */
static void
limit_reply(struct smtp_hook_reply *r, const struct server_limit_verdict *v)
{
	r->code = 451;
	(void)snprintf(r->enhanced, sizeof r->enhanced, "4.7.1");
	/* a verdict text longer than a hook reply (only with a very long address) is cut */
	const char *t = v->text[0] ? v->text : "Rate limit reached, try again later";
	size_t n = strnlen(t, sizeof r->text - 1);
	memcpy(r->text, t, n);
	r->text[n] = '\0';
	for (char *p = r->text; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

static void
limit_log(const struct server_smtp_ctx *ctx, const struct server_limit_verdict *v)
{
	char esc[300];
	log_info("smtp %s rate-limited client=%s rule=%s retry=%lld text=\"%s\"", ctx->id,
	         ctx->client_ip ? ctx->client_ip : "-", v->rule ? v->rule : "-",
	         (long long)v->retry_after_s, log_escape(v->text, esc, sizeof esc));
}

static int
hook_mail_check(void *vctx, const char *account, const char *from, struct smtp_hook_reply *r)
{
	struct server_smtp_ctx *ctx = vctx;
	struct server_limit_verdict v = {0};
	bool ok;
	if (ctx->submission && account != NULL) {
		char acct[320], dom[256];
		limit_names(account, acct, dom);
		ok = server_limit_check_message(ctx->store, acct, dom[0] ? dom : NULL, &v);
	} else if (!ctx->submission && ctx->client_ip != NULL) {
		ok = server_limit_ip(ctx->client_ip, "messages_per_minute", &v);
	} else {
		ok = true;
	}
	if (ok)
		return 0;
	limit_log(ctx, &v);
	limit_reply(r, &v);
	return 1;
}

static int
hook_rcpt_check(void *vctx, const char *account, const char *rcpt, size_t n,
                struct smtp_hook_reply *r)
{
	struct server_smtp_ctx *ctx = vctx;
	struct server_limit_verdict v = {0};
	bool ok;
	if (ctx->submission && account != NULL) {
		char acct[320], dom[256];
		limit_names(account, acct, dom);
		ok = server_limit_check_rcpts(ctx->store, acct, dom[0] ? dom : NULL, n, &v);
	} else if (!ctx->submission && ctx->client_ip != NULL) {
		ok = server_limit_ip(ctx->client_ip, "recipients_per_minute", &v);
	} else {
		ok = true;
	}
	if (ok)
		return 0;
	limit_log(ctx, &v);
	limit_reply(r, &v);
	return 1;
}

bool
server_auth_wait(const char *component, const char *id, const char *ip, const char *user)
{
	char acct[320], dom[256];
	limit_names(user ? user : "", acct, dom);
	int64_t ms = server_auth_gate(ip ? ip : "-", acct);
	if (ms < 0) {
		log_debug("%s %s auth-locked-out client=%s", component, id, ip ? ip : "-");
		return false;
	}
	if (ms > 0)
		(void)poll(NULL, 0,
		           (int)(ms < SERVER_AUTH_GATE_MAX_MS ? ms : SERVER_AUTH_GATE_MAX_MS));
	return true;
}

void
server_auth_done(const char *ip, const char *user, bool ok)
{
	char acct[320], dom[256];
	limit_names(user ? user : "", acct, dom);
	server_auth_result(ip ? ip : "-", acct, ok);
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
	/* Auth-failure tracking (issue 8): a growing delay, then a lockout of the client IP. A
	 * locked-out attempt gets the ordinary 535 5.7.8 (it counts towards
	 * smtp.max_auth_failures like any failure) without the password being checked: the
	 * client cannot tell a lockout from a wrong guess, and no guess is ever verified. */
	if (!server_auth_wait("smtp", ctx->id, ctx->client_ip, user))
		return 0;
	if (store_account_get(ctx->store, user, &a, &err) < 0) {
		if (err.code != STORE_ENOTFOUND) {
			log_error("smtp %s auth-lookup failed error=\"%s\"", ctx->id, err.msg);
			return -1;
		}
		pthread_once(&dummy_once, dummy_hash_init);
		(void)auth_verify(dummy_hash_buf, pass, pass_len);
		server_auth_done(ctx->client_ip, user, false);
		return 0;
	}
	bool ok = auth_verify(a.password_hash, pass, pass_len) && !a.disabled;
	store_account_deinit(&a);
	server_auth_done(ctx->client_ip, user, ok);
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
	/* Submission: the message and its recipients are taken from the account's and its
	 * domain's budgets now, all or nothing; given back when the delivery fails. */
	struct server_limit_taken taken = {0};
	if (ctx->submission && env->auth_user != NULL) {
		char acct[320], dom[256];
		struct server_limit_verdict v = {0};
		limit_names(env->auth_user, acct, dom);
		if (!server_limit_take_send(ctx->store, acct, dom[0] ? dom : NULL, env->n_rcpts,
		                            &taken, &v)) {
			limit_log(ctx, &v);
			limit_reply(reply_r, &v);
			return -1;
		}
		o.limit_incs = taken.incs;
		o.n_limit_incs = taken.n_incs;
	}
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
	} else if (n_rest > 0 && env->auth_user == NULL) {
		/* MX mail: SPF, DKIM and DMARC (issue 9), then delivered with the results */
		struct server_authcheck ac;
		server_authcheck(ctx->client_ip ? ctx->client_ip : "", env->helo, env->mail_from,
		                 msg, len, ctx->id, &ac);
		char *json = server_authcheck_json(&ac);
		if (ac.action == AUTHCHECK_REJECT) {
			hook_reply(reply_r, 550, "5.7.1", ac.reject_text);
			rc = -1;
		} else {
			struct smtp_envelope e2 = *env;
			e2.rcpts = rest;
			e2.n_rcpts = n_rest;
			o.authres = ac.checked ? buf_cstr(&ac.authres) : NULL;
			o.mailbox = ac.action == AUTHCHECK_QUARANTINE ? "Junk" : NULL;
			o.authres_json = json;
			rc = server_submit(ctx->store, &o, &e2, (const unsigned char *)ac.msg.data,
			                   ac.msg.len, NULL, reply_r);
		}
		free(json);
		server_authcheck_deinit(&ac);
	} else if (n_rest > 0) {
		struct smtp_envelope e2 = *env;
		e2.rcpts = rest;
		e2.n_rcpts = n_rest;
		rc = server_submit(ctx->store, &o, &e2, msg, len, NULL, reply_r);
	}
	free(rest);
	if (rc < 0)
		server_limit_refund(&taken);
	else
		server_limit_commit(&taken);
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
	    .mail_check = hook_mail_check,
	    .rcpt_check = hook_rcpt_check,
	    .log = hook_log,
	};
}
