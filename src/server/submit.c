/* The one path from "message accepted" to "stored durably" (DESIGN.md §7), shared by the SMTP
 * deliver hook (hooks.c) and `lightr send` (cli/cmd_send.c): recipient expansion, INBOX copies,
 * and for submitted mail with remote recipients DKIM signing, the VERP envelope sender and the
 * DSN recipient of the queued copy. */
#include "server/submit.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dkim/dkim.h"
#include "mail/addr.h"
#include "mail/hdr.h"
#include "mail/mime.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"
#include "server_private.h"

static void
submit_reply(struct smtp_hook_reply *r, int code, const char *enhanced, const char *text)
{
	r->code = code;
	(void)snprintf(r->enhanced, sizeof r->enhanced, "%s", enhanced);
	(void)snprintf(r->text, sizeof r->text, "%s", text);
}

/* Recipients of one message after alias expansion: local accounts once each, remote addresses
 * with the DSN parameters of the recipient they came from. */
struct submit_targets {
	struct store_local_rcpt *local;
	size_t n_local, cap_local;
	struct store_remote_rcpt *remote;
	size_t n_remote, cap_remote;
	char **owned; /* strings the arrays point to */
	size_t n_owned, cap_owned;
};

static const char *
targets_keep(struct submit_targets *t, char *s)
{
	if (t->n_owned == t->cap_owned) {
		t->cap_owned = t->cap_owned ? 2 * t->cap_owned : 16;
		t->owned = xrealloc(t->owned, t->cap_owned * sizeof *t->owned);
	}
	t->owned[t->n_owned++] = s;
	return s;
}

static void
targets_add_local(struct submit_targets *t, const char *account)
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
targets_add_remote(struct submit_targets *t, const char *addr, const struct smtp_rcpt *from)
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
targets_free(struct submit_targets *t)
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
submit_expand(struct store *st, const struct server_submit_opts *o, const struct smtp_envelope *env,
              struct submit_targets *t, struct smtp_hook_reply *reply_r)
{
	for (size_t i = 0; i < env->n_rcpts; i++) {
		const struct smtp_rcpt *rc = &env->rcpts[i];
		if (rc->kind == SMTP_RCPT_REMOTE) {
			targets_add_remote(t, rc->addr, rc);
			continue;
		}
		struct store_rcpt r;
		struct err err = {0};
		if (store_rcpt_resolve(st, rc->addr, o->subaddress_sep, 0, &r, &err) < 0) {
			log_error("%s %s rcpt-lookup failed error=\"%s\"", o->component, o->id,
			          err.msg);
			submit_reply(reply_r, 451, "4.3.0",
			             "Temporary lookup failure, try again later");
			return -1;
		}
		/* Quota was checked at RCPT with the SIZE hint; a message that crosses the quota
		 * now is still delivered (soft quota) rather than failing every recipient. */
		if (r.status != STORE_RCPT_OK && r.status != STORE_RCPT_OVER_QUOTA) {
			log_info("%s %s rcpt-changed rcpt=%s status=%d", o->component, o->id,
			         rc->addr, (int)r.status);
			store_rcpt_deinit(&r);
			submit_reply(reply_r, 451, "4.3.0",
			             "Recipient changed meanwhile, try again");
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

int
server_from_address(const unsigned char *msg, size_t len, char *out, size_t n)
{
	struct hdr_iter it;
	struct hdr_field f;
	const char *why;
	hdr_iter_init(&it, msg, len);
	while (hdr_iter_next(&it, &f, &why) == HDR_FIELD) {
		if (!slice_eq_nocase(f.name, "From"))
			continue;
		struct arena *a = arena_new("from", 1024);
		char **addrs;
		size_t na = 0;
		int rc = -1;
		if (hdr_addr_list(f.value, a, &addrs, &na, &why) == 0 && na > 0 &&
		    addr_lower(slice_from(addrs[0]), out, n) == 0)
			rc = 0;
		arena_free(&a);
		return rc;
	}
	return -1;
}

/* The domain part of addr (after the last '@'), or NULL. */
static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at && at[1] ? at + 1 : NULL;
}

static bool
domain_is_ours(struct store *st, const char *domain)
{
	struct store_domain d;
	struct err err = {0};
	if (domain == NULL || store_domain_get(st, domain, &d, &err) < 0)
		return false;
	store_domain_deinit(&d);
	return true;
}

/* Parsed DKIM keys, kept for the life of the process: decoding a PEM private key costs more
 * than signing with it (bench/README.md, outbound profile). Keyed by the key's row id plus its
 * domain and selector; a key row never changes its private key, so an entry never goes stale (a
 * rotated-out key simply stops being asked for). Signers are immutable and shared by threads.
 * When the table is full, further keys are parsed per message as before. */
#define SIGNER_CACHE_MAX 64
static struct {
	int64_t id;
	char domain[256], selector[64];
	struct dkim_signer *signer;
} signer_cache[SIGNER_CACHE_MAX];
static size_t signer_cache_n;
static pthread_mutex_t signer_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static struct dkim_signer *
signer_cache_get(int64_t id, const char *domain, const char *selector)
{
	struct dkim_signer *s = NULL;
	pthread_mutex_lock(&signer_cache_mu);
	for (size_t i = 0; i < signer_cache_n && s == NULL; i++)
		if (signer_cache[i].id == id && strcmp(signer_cache[i].domain, domain) == 0 &&
		    strcmp(signer_cache[i].selector, selector) == 0)
			s = signer_cache[i].signer;
	pthread_mutex_unlock(&signer_cache_mu);
	return s;
}

/* True when s is now owned by the cache. */
static bool
signer_cache_put(int64_t id, const char *domain, const char *selector, struct dkim_signer *s)
{
	if (strlen(domain) >= sizeof signer_cache[0].domain ||
	    strlen(selector) >= sizeof signer_cache[0].selector)
		return false;
	bool kept = false;
	pthread_mutex_lock(&signer_cache_mu);
	if (signer_cache_n < SIGNER_CACHE_MAX) {
		size_t i = signer_cache_n++;
		signer_cache[i].id = id;
		(void)snprintf(signer_cache[i].domain, sizeof signer_cache[i].domain, "%s", domain);
		(void)snprintf(signer_cache[i].selector, sizeof signer_cache[i].selector, "%s",
		               selector);
		signer_cache[i].signer = s;
		kept = true;
	}
	pthread_mutex_unlock(&signer_cache_mu);
	return kept;
}

/* DKIM-Signature fields for msg into sigs (empty when the domain has no key). The signing
 * domain is the From: domain when it is ours, else the envelope sender's. */
static void
submit_sign(struct store *st, const struct server_submit_opts *o, const char *mail_from,
            const unsigned char *msg, size_t len, int64_t now, struct buf *sigs)
{
	char from[320];
	const char *domain = NULL;
	if (server_from_address(msg, len, from, sizeof from) == 0 &&
	    domain_is_ours(st, domain_of(from)))
		domain = domain_of(from);
	else if (domain_is_ours(st, domain_of(mail_from)))
		domain = domain_of(mail_from);
	if (domain == NULL) {
		log_warn("%s %s dkim-skipped reason=\"no domain of ours in From: or sender\"",
		         o->component, o->id);
		return;
	}
	struct store_dkim_key *keys = NULL;
	size_t n = 0;
	struct err err = {0};
	if (store_dkim_active(st, domain, &keys, &n, &err) < 0) {
		log_error("%s %s dkim-keys failed domain=%s error=\"%s\"", o->component, o->id,
		          domain, err.msg);
		return;
	}
	if (n == 0) {
		log_warn("%s %s dkim-unsigned domain=%s reason=\"no active key\"", o->component,
		         o->id, domain);
		return;
	}
	struct dkim_signer **signers = xcalloc(n, sizeof *signers);
	bool *owned = xcalloc(n, sizeof *owned); /* not in the cache: free after signing */
	size_t ns = 0;
	for (size_t i = 0; i < n; i++) {
		enum dkim_algo algo;
		if (dkim_algo_parse(keys[i].algo, &algo) < 0 || keys[i].private_key == NULL)
			continue;
		struct dkim_signer *s = signer_cache_get(keys[i].id, domain, keys[i].selector);
		if (s == NULL) {
			struct err e2 = {0};
			s = dkim_signer_new(domain, keys[i].selector, algo, keys[i].private_key,
			                    &e2);
			if (s == NULL) {
				log_error(
				    "%s %s dkim-key unusable domain=%s selector=%s error=\"%s\"",
				    o->component, o->id, domain, keys[i].selector, e2.msg);
				continue;
			}
			owned[ns] = !signer_cache_put(keys[i].id, domain, keys[i].selector, s);
		}
		signers[ns++] = s;
	}
	if (ns > 0 && dkim_sign(signers, ns, msg, len, now, sigs, &err) < 0) {
		log_error("%s %s dkim-sign failed domain=%s error=\"%s\"", o->component, o->id,
		          domain, err.msg);
		buf_reset(sigs);
	} else if (ns > 0) {
		log_info("%s %s dkim-signed domain=%s signatures=%zu", o->component, o->id, domain,
		         ns);
	}
	for (size_t i = 0; i < ns; i++)
		if (owned[i])
			dkim_signer_free(&signers[i]);
	free(owned);
	free(signers);
	store_dkim_list_free(&keys, n);
}

/* 16 characters of RFC 4648 base32 (lower case: local parts are compared case-sensitively by
 * some MTAs, and lower case survives the ones that fold). 80 random bits. */
static void
verp_token(char out[SERVER_VERP_TOKEN_LEN + 1])
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char r[SERVER_VERP_TOKEN_LEN];
	rand_bytes(r, sizeof r);
	for (size_t i = 0; i < SERVER_VERP_TOKEN_LEN; i++)
		out[i] = alphabet[r[i] & 31];
	out[SERVER_VERP_TOKEN_LEN] = '\0';
}

/* The VERP envelope sender "bounce+<token>@<sender domain>" (DESIGN.md §7) into rp (and its
 * token); false for the null sender or a sender without a domain. */
static bool
submit_verp(const char *mail_from, char token[SERVER_VERP_TOKEN_LEN + 1], char **rp_r)
{
	const char *domain = domain_of(mail_from);
	if (*mail_from == '\0' || domain == NULL)
		return false;
	verp_token(token);
	*rp_r = xasprintf("bounce+%s@%s", token, domain);
	return true;
}

/* Submitted mail (issue 7): remote targets on the suppression list of the sender's domain are
 * not attempted; they are moved from t->remote to *sup (their addresses, owned by t). */
static void
submit_suppress(struct store *st, const struct server_submit_opts *o, const char *mail_from,
                struct submit_targets *t, const char ***sup_r, size_t *n_sup_r)
{
	const char *domain = domain_of(mail_from);
	*sup_r = NULL;
	*n_sup_r = 0;
	if (domain == NULL || t->n_remote == 0)
		return;
	const char **sup = xcalloc(t->n_remote, sizeof *sup);
	size_t n = 0, keep = 0;
	for (size_t i = 0; i < t->n_remote; i++) {
		struct err err = {0};
		int hit = store_suppress_check(st, domain, t->remote[i].address, o->subaddress_sep,
		                               NULL, &err);
		if (hit < 0)
			log_error("%s %s suppression-check failed error=\"%s\"", o->component,
			          o->id, err.msg);
		if (hit == 1) {
			log_info("%s %s suppressed rcpt=%s domain=%s", o->component, o->id,
			         t->remote[i].address, domain);
			sup[n++] = t->remote[i].address;
		} else {
			t->remote[keep++] = t->remote[i];
		}
	}
	t->n_remote = keep;
	*sup_r = sup;
	*n_sup_r = n;
}

/* The record of a message submitted over SMTP or with `lightr send` (the API brings its own):
 * a public id for its events and GET /api/v1/messages/{id}, one entry per envelope recipient. */
static void
submit_record(const struct smtp_envelope *env, const char *const *sup, size_t n_sup, int64_t now,
              char public_id[32], struct store_api_rcpt **rcpts_r, struct store_api_send *a)
{
	memcpy(public_id, "msg_", 4);
	rand_token(public_id + 4, 26);
	struct store_api_rcpt *r = xcalloc(env->n_rcpts + n_sup + 1, sizeof *r);
	size_t n = 0;
	for (size_t i = 0; i < env->n_rcpts; i++) {
		bool suppressed = false;
		for (size_t k = 0; k < n_sup && !suppressed; k++)
			suppressed = strcasecmp(sup[k], env->rcpts[i].addr) == 0;
		r[n++] = (struct store_api_rcpt){
		    .address = env->rcpts[i].addr,
		    .kind = "to",
		    .status = suppressed                              ? "suppressed"
		              : env->rcpts[i].kind == SMTP_RCPT_LOCAL ? "delivered"
		                                                      : "queued",
		    .error = suppressed ? "on the suppression list" : NULL};
	}
	/* alias expansions that were suppressed */
	for (size_t k = 0; k < n_sup; k++) {
		bool listed = false;
		for (size_t i = 0; i < n && !listed; i++)
			listed = strcasecmp(r[i].address, sup[k]) == 0;
		if (!listed)
			r[n++] = (struct store_api_rcpt){.address = sup[k],
			                                 .kind = "to",
			                                 .status = "suppressed",
			                                 .error = "on the suppression list"};
	}
	*rcpts_r = r;
	*a = (struct store_api_send){.public_id = public_id,
	                             .domain = domain_of(env->mail_from),
	                             .from = env->mail_from,
	                             .rcpts = r,
	                             .n_rcpts = n,
	                             .created = now};
}

/* The detail of message.received events (issue 7): the header fields people look at, the
 * text and HTML bodies up to events.received_body_max, and the attachments' metadata. Heap
 * JSON text, or NULL when the summary cannot be built. */
static char *
submit_received_detail(const unsigned char *msg, size_t len, const struct smtp_envelope *env,
                       const char *authres_json)
{
	struct config *c = config_current();
	size_t body_max = (size_t)c->events.received_body_max;
	config_unref(&c);
	struct mime_summary sum;
	if (mime_summary_build(msg, len, body_max, &sum) < 0)
		return NULL;
	json_t *att = json_array();
	for (size_t i = 0; i < sum.n_att; i++)
		json_array_append_new(
		    att, json_pack("{s:s?,s:s?,s:s?,s:I}", "filename", sum.att[i].filename,
		                   "content_type", sum.att[i].content_type, "content_id",
		                   sum.att[i].content_id, "size", (json_int_t)sum.att[i].size));
	json_t *ar = authres_json ? json_loads(authres_json, 0, NULL) : NULL;
	json_t *o = json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:b,s:b,s:o,s:o}",
	                      "envelope_from", env->mail_from, "from", sum.from, "to", sum.to, "cc",
	                      sum.cc, "subject", sum.subject, "date", sum.date, "message_id",
	                      sum.message_id, "text", sum.text, "html", sum.html, "text_truncated",
	                      sum.text_truncated, "html_truncated", sum.html_truncated,
	                      "attachments", att, "authentication_results", ar ? ar : json_null());
	mime_summary_deinit(&sum);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

int
server_submit(struct store *st, const struct server_submit_opts *o, const struct smtp_envelope *env,
              const unsigned char *msg, size_t len, int64_t *queue_id_r,
              struct smtp_hook_reply *reply_r)
{
	struct submit_targets t = {0};
	struct mime_meta meta = {0};
	struct buf qhdr;
	buf_init(&qhdr, 0);
	char token[SERVER_VERP_TOKEN_LEN + 1];
	char *return_path = NULL; /* VERP envelope sender of the relayed copy */
	bool verp = false;
	int64_t now = o->now ? o->now : (int64_t)time(NULL);
	const char *received = env->received ? env->received : "";
	int ret = -1;
	const char **sup = NULL;
	size_t n_sup = 0;
	char *recv_detail = NULL, recv_id[32];
	struct store_api_rcpt *rec_rcpts = NULL;
	struct store_api_send rec;
	char rec_id[32];
	const struct store_api_send *api = o->api;
	if (submit_expand(st, o, env, &t, reply_r) < 0)
		goto out;
	if (!o->submission && t.n_local > 0) {
		recv_detail = submit_received_detail(msg, len, env, o->authres_json);
		memcpy(recv_id, "msg_", 4);
		rand_token(recv_id + 4, 26);
	}
	if (o->submission && o->api == NULL) {
		submit_suppress(st, o, env->mail_from, &t, &sup, &n_sup);
		if (domain_is_ours(st, domain_of(env->mail_from))) {
			submit_record(env, sup, n_sup, now, rec_id, &rec_rcpts, &rec);
			api = &rec;
		}
	}
	/* IMAP metadata, computed once here on the session's thread (DESIGN.md §2) and stored with
	 * every local copy; without it (GMime failed) IMAP computes it at the first FETCH. */
	if (t.n_local > 0 && mime_meta_build(msg, len, &meta) < 0) {
		mime_meta_deinit(&meta);
		meta = (struct mime_meta){0};
		log_warn("%s %s mime-metadata failed", o->component, o->id);
	}
	/* RFC 5321 §4.4: Return-Path at final delivery; Delivered-To names the mailbox (loop
	 * detection for forwarders); then the Received trace line. */
	for (size_t i = 0; i < t.n_local; i++) {
		char *h = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n%s%s", env->mail_from,
		                    t.local[i].account, o->authres ? o->authres : "", received);
		t.local[i].mailbox = o->mailbox;
		t.local[i].header = targets_keep(&t, h);
		t.local[i].header_len = strlen(h);
	}
	/* The relayed copy: DKIM-Signature fields over the message as received, then the
	 * Received line (not in h=, so its place does not matter to verifiers). */
	bool submitted = o->submission && t.n_remote > 0;
	if (submitted) {
		submit_sign(st, o, env->mail_from, msg, len, now, &qhdr);
		verp = submit_verp(env->mail_from, token, &return_path);
	}
	if (buf_append_str(&qhdr, received) < 0) {
		submit_reply(reply_r, 451, "4.3.0", "Temporary local problem, try again later");
		goto out;
	}
	struct store_delivery d = {
	    .body = msg,
	    .body_len = len,
	    .internal_date = now,
	    .local = t.local,
	    .n_local = t.n_local,
	    .mail_from = env->mail_from,
	    .auth_user = env->auth_user,
	    .ret = env->ret,
	    .envid = env->envid,
	    .requiretls = env->requiretls,
	    .smtputf8 = env->smtputf8,
	    .eightbit = env->eightbit,
	    .queue_header = qhdr.len ? buf_cstr(&qhdr) : "",
	    .queue_header_len = qhdr.len,
	    .remote = t.remote,
	    .n_remote = t.n_remote,
	    .meta_envelope = meta.envelope,
	    .meta_body = meta.body,
	    .meta_bodystructure = meta.bodystructure,
	    .meta_parts = meta.parts.data,
	    .meta_parts_len = meta.parts.len,
	    .return_path = return_path,
	    .bounce_token = verp ? token : NULL,
	    .dsn_to = verp && o->api == NULL ? env->mail_from : NULL,
	    .api = api,
	    .received_detail = recv_detail,
	    .received_id = recv_detail ? recv_id : NULL,
	    .limit_incs = o->limit_incs,
	    .n_limit_incs = o->n_limit_incs,
	};
	int64_t qid = 0;
	struct err err = {0};
	if (store_deliver(st, &d, &qid, &err) < 0) {
		log_error("%s %s store-deliver failed code=%d error=\"%s\"", o->component, o->id,
		          err.code, err.msg);
		if (o->err_r)
			*o->err_r = err;
		submit_reply(reply_r, 451, "4.3.0", "Temporary local problem, try again later");
		goto out;
	}
	/* The scheduler in this process looks at once; a no-op in the CLI, whose rows the
	 * server's scheduler finds at its next poll. */
	if (qid > 0)
		server_queue_wake();
	log_info("%s %s delivered msgid=%s from=<%s> size=%zu local=%zu remote=%zu queue=%lld",
	         o->component, o->id, env->id ? env->id : "-", env->mail_from, len, t.n_local,
	         t.n_remote, (long long)qid);
	if (queue_id_r)
		*queue_id_r = qid;
	ret = 0;
out:
	free(return_path);
	free(sup);
	free(rec_rcpts);
	free(recv_detail);
	buf_deinit(&qhdr);
	mime_meta_deinit(&meta);
	targets_free(&t);
	return ret;
}
