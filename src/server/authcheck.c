/* Inbound message authentication on the MX path (issue 9): SPF for the client and envelope,
 * DKIM verification of every signature, DMARC for the From: domain, an Authentication-Results
 * field with our host name as authserv-id (forged ones claiming it are removed first), and the
 * configured action: inbound.dmarc_reject for failures under p=reject, Junk for failures under
 * p=quarantine, inbound.spf_fail for SPF "fail". DNS goes through the delivery resolver
 * (dns.forwarders); a DNS problem is a temperror result and never loses mail. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "dns/resolver.h"
#include "policy/policy.h"
#include "server_private.h"
#include "util/log.h"
#include "util/xalloc.h"

static _Atomic(struct dns_resolver *) policy_resolver;

void
server_authcheck_set_resolver(struct dns_resolver *r)
{
	atomic_store(&policy_resolver, r);
}

/* ---- struct policy_dns on dns/resolver.h ---- */

static int
pd_err(const struct err *e, bool nxdomain)
{
	return nxdomain || e->code == DNS_EPERM ? 1 : -1;
}

static int
pd_txt(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	struct dns_txt_result res = {0};
	struct err err = {0};
	*v_r = NULL;
	*n_r = 0;
	if (dns_txt(ctx, name, &res, &err) < 0) {
		int rc = pd_err(&err, res.nxdomain);
		dns_txt_result_free(&res);
		return rc;
	}
	if (res.n == 0) {
		dns_txt_result_free(&res);
		return 1;
	}
	char **v = xcalloc(res.n, sizeof *v);
	for (size_t i = 0; i < res.n; i++)
		v[i] = xstrndup(res.txt[i], res.len[i]);
	*v_r = v;
	*n_r = res.n;
	dns_txt_result_free(&res);
	return 0;
}

static int
pd_addr(void *ctx, const char *name, bool v6, char ***v_r, size_t *n_r)
{
	struct dns_addr_result *res = xcalloc(1, sizeof *res);
	struct err err = {0};
	*v_r = NULL;
	*n_r = 0;
	int rc = 0;
	if (dns_addrs(ctx, name, v6, res, &err) < 0) {
		rc = pd_err(&err, res->nxdomain);
	} else {
		char **v = xcalloc(res->n + 1, sizeof *v);
		size_t n = 0;
		for (size_t i = 0; i < res->n; i++)
			if (res->a[i].family == (v6 ? AF_INET6 : AF_INET))
				v[n++] = xstrdup(res->a[i].addr);
		if (n == 0) {
			free(v);
			rc = 1;
		} else {
			*v_r = v;
			*n_r = n;
		}
	}
	free(res);
	return rc;
}

static int
pd_mx(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	struct dns_mx_result *res = xcalloc(1, sizeof *res);
	struct err err = {0};
	*v_r = NULL;
	*n_r = 0;
	int rc = 0;
	if (dns_mx(ctx, name, res, &err) < 0) {
		rc = res->null_mx ? 1 : pd_err(&err, res->nxdomain);
	} else if (res->implicit || res->n == 0) {
		rc = 1; /* SPF's mx looks at MX records only, never the implicit MX */
	} else {
		char **v = xcalloc(res->n, sizeof *v);
		for (size_t i = 0; i < res->n; i++)
			v[i] = xstrdup(res->mx[i].host);
		*v_r = v;
		*n_r = res->n;
	}
	free(res);
	return rc;
}

static int
pd_ptr(void *ctx, const char *ip, char ***v_r, size_t *n_r)
{
	struct dns_txt_result res = {0};
	struct err err = {0};
	*v_r = NULL;
	*n_r = 0;
	if (dns_ptr(ctx, ip, &res, &err) < 0) {
		int rc = pd_err(&err, res.nxdomain);
		dns_txt_result_free(&res);
		return rc;
	}
	if (res.n == 0) {
		dns_txt_result_free(&res);
		return 1;
	}
	char **v = xcalloc(res.n, sizeof *v);
	for (size_t i = 0; i < res.n; i++)
		v[i] = xstrndup(res.txt[i], res.len[i]);
	*v_r = v;
	*n_r = res.n;
	dns_txt_result_free(&res);
	return 0;
}

static int
pd_dkim_txt(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	int rc = pd_txt(ctx, name, v_r, n_r);
	return rc;
}

static enum authcheck_action
action_of(const char *s)
{
	if (s && strcmp(s, "reject") == 0)
		return AUTHCHECK_REJECT;
	if (s && strcmp(s, "quarantine") == 0)
		return AUTHCHECK_QUARANTINE;
	return AUTHCHECK_NONE;
}

void
server_authcheck(const char *ip, const char *helo, const char *mail_from, const unsigned char *msg,
                 size_t len, const char *id, struct server_authcheck *out)
{
	memset(out, 0, sizeof *out);
	struct config *c = config_current();
	bool enabled = c && c->inbound.authenticate;
	const char *host = c && c->hostname ? c->hostname : "localhost";
	char authserv[256];
	(void)snprintf(authserv, sizeof authserv, "%s", host);
	enum authcheck_action dmarc_act = action_of(c ? c->inbound.dmarc_reject : NULL);
	enum authcheck_action spf_act = action_of(c ? c->inbound.spf_fail : NULL);
	config_unref(&c);
	struct dns_resolver *r = atomic_load(&policy_resolver);
	buf_init(&out->msg, 0);
	/* forged results that claim to be ours go, whether or not we check */
	size_t removed = authres_strip(msg, len, authserv, &out->msg);
	if (removed > 0)
		log_info("smtp %s authres-stripped fields=%zu", id, removed);
	if (!enabled || r == NULL)
		return;
	out->checked = true;
	struct policy_dns dns = {
	    .ctx = r, .txt = pd_txt, .addr = pd_addr, .mx = pd_mx, .ptr = pd_ptr};
	struct spf_request sreq = {.ip = ip,
	                           .mail_from = mail_from,
	                           .helo = helo ? helo : "",
	                           .receiver = authserv,
	                           .now = (int64_t)time(NULL)};
	spf_check(&sreq, &dns, &out->spf);
	dkim_verify((const unsigned char *)out->msg.data, out->msg.len, (int64_t)time(NULL),
	            pd_dkim_txt, r, &out->dkim);
	dmarc_check((const unsigned char *)out->msg.data, out->msg.len, &out->spf, &out->dkim, &dns,
	            NULL, NULL, &out->dmarc);
	buf_init(&out->authres, 0);
	authres_build(authserv, &out->spf, &out->dkim, &out->dmarc, &out->authres);
	/* the action: the stricter of DMARC's and SPF's */
	enum authcheck_action act = AUTHCHECK_NONE;
	const char *why = "";
	if (out->dmarc.result == DMARC_FAIL && out->dmarc.applied == DMARC_POLICY_REJECT) {
		act = dmarc_act;
		why = "DMARC policy of the From: domain (p=reject)";
	} else if (out->dmarc.result == DMARC_FAIL &&
	           out->dmarc.applied == DMARC_POLICY_QUARANTINE) {
		act = AUTHCHECK_QUARANTINE;
		why = "DMARC policy of the From: domain (p=quarantine)";
	}
	if (out->spf.result == SPF_FAIL && spf_act > act) {
		act = spf_act;
		why = "SPF: the sending host is not allowed for the envelope domain";
	}
	out->action = act;
	if (act == AUTHCHECK_REJECT)
		(void)snprintf(out->reject_text, sizeof out->reject_text,
		               "Message rejected by the %s", why);
	log_info("smtp %s authres spf=%s dkim=%zu dmarc=%s action=%s", id,
	         spf_result_name(out->spf.result), out->dkim.n,
	         dmarc_result_name(out->dmarc.result),
	         act == AUTHCHECK_REJECT       ? "reject"
	         : act == AUTHCHECK_QUARANTINE ? "junk"
	                                       : "deliver");
}

char *
server_authcheck_json(const struct server_authcheck *a)
{
	if (!a->checked)
		return NULL;
	json_t *dk = json_array();
	for (size_t i = 0; i < a->dkim.n; i++)
		json_array_append_new(dk, json_pack("{s:s,s:s,s:s,s:s}", "result",
		                                    dkim_result_name(a->dkim.sigs[i].result),
		                                    "domain", a->dkim.sigs[i].domain, "selector",
		                                    a->dkim.sigs[i].selector, "reason",
		                                    a->dkim.sigs[i].reason));
	json_t *o = json_pack(
	    "{s:{s:s,s:s,s:s},s:o,s:{s:s,s:s,s:s,s:s},s:s}", "spf", "result",
	    spf_result_name(a->spf.result), "domain", a->spf.domain, "reason", a->spf.reason,
	    "dkim", dk, "dmarc", "result", dmarc_result_name(a->dmarc.result), "from_domain",
	    a->dmarc.from_domain, "policy", dmarc_policy_name(a->dmarc.policy), "applied",
	    dmarc_policy_name(a->dmarc.applied), "header", buf_cstr(&a->authres));
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

void
server_authcheck_deinit(struct server_authcheck *a)
{
	buf_deinit(&a->msg);
	buf_deinit(&a->authres);
}
