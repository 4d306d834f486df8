/* Inbound message authentication (issue 9, DESIGN.md §3 "our own code"): SPF (RFC 7208, spf.c),
 * DMARC (RFC 7489, dmarc.c, with libpsl for organisational domains) and the
 * Authentication-Results header field (RFC 8601, authres.c). DKIM verification is dkim/. No
 * I/O of its own: DNS goes through struct policy_dns (server/ fills it with the resolver of
 * dns/; tests with tables). Thread safety: reentrant. */
#ifndef LIGHTR_POLICY_H
#define LIGHTR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkim/dkim.h"
#include "util/buf.h"

/* DNS for policies. Each returns 0 with results, 1 when the name does not exist or has no
 * records of that type (NXDOMAIN/NODATA: a "void lookup" for SPF), -1 on a temporary failure.
 * Results are heap arrays of heap strings (free each and the array). */
struct policy_dns {
	void *ctx;
	int (*txt)(void *ctx, const char *name, char ***v_r, size_t *n_r);
	/* addresses as text ("192.0.2.1", "2001:db8::1"); v6 selects AAAA else A */
	int (*addr)(void *ctx, const char *name, bool v6, char ***v_r, size_t *n_r);
	/* MX exchange names (preference order not needed) */
	int (*mx)(void *ctx, const char *name, char ***v_r, size_t *n_r);
	/* PTR names of an address ("192.0.2.1") */
	int (*ptr)(void *ctx, const char *ip, char ***v_r, size_t *n_r);
};
void policy_strings_free(char **v, size_t n);

/* ---- SPF (RFC 7208) ----
 * check_host() complete: mechanisms all, include, a, mx, ptr, ip4, ip6, exists; modifiers
 * redirect, exp (ignored for the result, not fetched); qualifiers + - ~ ?; macros (RFC 7208 §7:
 * s l o d i p v h c r t, transformers, delimiters, %% %_ %-); limits: 10 DNS-querying terms
 * (include a mx ptr exists redirect) → permerror, 2 void lookups → permerror, 10 MX names and
 * 10 PTR names per lookup; more than one v=spf1 record → permerror; syntax errors → permerror;
 * DNS temporary failures → temperror. The HELO identity is checked when MAIL FROM is empty
 * (RFC 7208 §2.3/§2.4: postmaster@helo). */
enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};
const char *spf_result_name(enum spf_result r); /* "pass", "fail", ... */
struct spf_request {
	const char *ip;        /* client address as text */
	const char *mail_from; /* envelope sender ("" = null sender) */
	const char *helo;      /* HELO/EHLO name */
	const char *receiver;  /* our host name (macro %{r}) */
	int64_t now;           /* macro %{t} */
};
struct spf_outcome {
	enum spf_result result;
	char domain[256];   /* the domain checked (mail from's, or helo's) */
	bool helo_identity; /* true when it was the HELO identity */
	char reason[160];   /* the matched mechanism or the error */
};
void spf_check(const struct spf_request *req, const struct policy_dns *dns,
               struct spf_outcome *out);

/* ---- DMARC (RFC 7489) ----
 * The author domain is the domain of the single From: address (several From addresses or none
 * → permerror: no policy applied, reported). The record is looked up at _dmarc.<from domain>,
 * else at _dmarc.<organisational domain> (libpsl's registrable domain; sp= then applies). Tags
 * v p sp adkim aspf pct (others ignored); a record that does not start with v=DMARC1 is
 * ignored; several records → none. Alignment: relaxed (same organisational domain) or strict
 * (equal), for SPF (the SPF-checked MAIL FROM domain, only when SPF passed) and DKIM (each
 * passing signature's d=). pct: a failing message is subject to the policy with probability
 * pct/100 (random; tests pass a deterministic sampler). */
enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };
enum dmarc_policy { DMARC_POLICY_NONE, DMARC_POLICY_QUARANTINE, DMARC_POLICY_REJECT };
const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);
struct dmarc_outcome {
	enum dmarc_result result;
	char from_domain[256];
	char org_domain[256];
	enum dmarc_policy policy;  /* the policy in force for this domain (p or sp) */
	enum dmarc_policy applied; /* what to do: policy when failed and sampled in, else none */
	bool spf_aligned, dkim_aligned;
	char reason[160];
};
/* The organisational domain of name (libpsl), lower-case, into out (size n); name itself when
 * it is not under a public suffix. */
void dmarc_org_domain(const char *name, char *out, size_t n);
/* msg: the message (its From: field is parsed); spf: the SPF outcome (MAIL FROM identity); dkim:
 * the verification results. sample(ctx) returns 0..99 (NULL = random). */
void dmarc_check(const unsigned char *msg, size_t len, const struct spf_outcome *spf,
                 const struct dkim_verify_result *dkim, const struct policy_dns *dns,
                 int (*sample)(void *ctx), void *sample_ctx, struct dmarc_outcome *out);

/* ---- Authentication-Results (RFC 8601, authres.c) ----
 * Appends "Authentication-Results: <authserv_id>;\r\n\t spf=... smtp.mailfrom=... (or
 * smtp.helo=...);\r\n\t dkim=... header.d=... header.s=... header.b=...;\r\n\t dmarc=...
 * (p=... dis=...) header.from=...\r\n" (dkim once per signature, "dkim=none" when none),
 * folded, values quoted when needed, comments with the reasons. */
void authres_build(const char *authserv_id, const struct spf_outcome *spf,
                   const struct dkim_verify_result *dkim, const struct dmarc_outcome *dmarc,
                   struct buf *out);
/* Copies msg to out without any Authentication-Results field whose authserv-id is
 * authserv_id (case-insensitive; RFC 8601 §5: forged results claiming to be ours), other
 * fields and the body untouched. Returns how many were removed. */
size_t authres_strip(const unsigned char *msg, size_t len, const char *authserv_id,
                     struct buf *out);

#endif
