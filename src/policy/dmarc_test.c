/* Tests for src/policy/dmarc.c and authres.c: organisational domains (libpsl), alignment tables,
 * record discovery with a table DNS, pct sampling, From parsing, and the
 * Authentication-Results field (exact output, stripping). */
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"
#include "test.h"
#include "util/xalloc.h"

/* ---- a DNS made of a table ---- */

struct fake_txt {
	const char *name;
	int rc; /* 0 records, 1 no record, -1 temporary failure */
	const char *recs[3];
};

static const struct fake_txt fake_zone[] = {
    {"_dmarc.example.com", 0, {"v=DMARC1; p=reject; sp=quarantine; adkim=r; aspf=r"}},
    {"_dmarc.strict.example", 0, {"v=DMARC1;p=reject;adkim=s;aspf=s"}},
    {"_dmarc.example.co.uk", 0, {"v=spf1 -all", "v=DMARC1; p=quarantine; sp=none"}},
    {"_dmarc.pct.example", 0, {"v=DMARC1; p=reject; pct=30"}},
    {"_dmarc.pct0.example", 0, {"v=DMARC1; p=reject; pct=0"}},
    {"_dmarc.badpct.example", 0, {"v=DMARC1; p=reject; pct=101"}},
    {"_dmarc.multi.example", 0, {"v=DMARC1; p=reject", "v=DMARC1; p=none"}},
    {"_dmarc.temp.example", -1, {NULL}},
    {"_dmarc.tempo.example", -1, {NULL}},
    {"_dmarc.nop.example", 0, {"v=DMARC1; rua=mailto:d@nop.example"}},
    {"_dmarc.badp.example", 0, {"v=DMARC1; p=discard; sp=reject"}},
    {"_dmarc.notfirst.example", 0, {"p=reject; v=DMARC1"}},
    {"_dmarc.lower.example", 0, {"v=dmarc1; p=reject"}},
    {"_dmarc.spaces.example", 0, {" v = DMARC1 ;  p = Reject ; junk ; =x; "}},
};

static int fake_queries;

static int
fake_txt_fn(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	(void)ctx;
	fake_queries++;
	*v_r = NULL;
	*n_r = 0;
	for (size_t i = 0; i < sizeof fake_zone / sizeof fake_zone[0]; i++) {
		const struct fake_txt *z = &fake_zone[i];
		if (strcmp(z->name, name) != 0)
			continue;
		if (z->rc != 0)
			return z->rc;
		size_t n = 0;
		while (n < 3 && z->recs[n] != NULL)
			n++;
		*v_r = xcalloc(n, sizeof **v_r);
		for (size_t k = 0; k < n; k++)
			(*v_r)[k] = xstrdup(z->recs[k]);
		*n_r = n;
		return 0;
	}
	return 1;
}

static const struct policy_dns fake_dns = {.txt = fake_txt_fn};

static int
sample_fixed(void *ctx)
{
	return *(int *)ctx;
}

static void
test_names(void)
{
	CHECK_STR(dmarc_result_name(DMARC_NONE), "none");
	CHECK_STR(dmarc_result_name(DMARC_PASS), "pass");
	CHECK_STR(dmarc_result_name(DMARC_FAIL), "fail");
	CHECK_STR(dmarc_result_name(DMARC_TEMPERROR), "temperror");
	CHECK_STR(dmarc_result_name(DMARC_PERMERROR), "permerror");
	CHECK_STR(dmarc_policy_name(DMARC_POLICY_NONE), "none");
	CHECK_STR(dmarc_policy_name(DMARC_POLICY_QUARANTINE), "quarantine");
	CHECK_STR(dmarc_policy_name(DMARC_POLICY_REJECT), "reject");
}

static void
test_org_domain(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"example.com", "example.com"},
	    {"a.b.example.com", "example.com"},
	    {"EXAMPLE.COM.", "example.com"},
	    {"www.example.co.uk", "example.co.uk"},
	    {"example.co.uk", "example.co.uk"},
	    {"co.uk", "co.uk"}, /* a public suffix itself */
	    {"sub.strict.example", "strict.example"},
	    {"localhost", "localhost"},
	    {"", ""},
	};
	char out[256];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		dmarc_org_domain(cases[i].in, out, sizeof out);
		CHECK_STR(out, cases[i].want);
	}
	dmarc_org_domain("www.example.co.uk", out, 5); /* does not fit */
	CHECK_STR(out, "");
}

struct align_case {
	const char *from;
	enum spf_result spf;
	const char *spf_domain;
	enum dkim_result dkim;
	const char *dkim_d;
	enum dmarc_result want;
	bool spf_al, dkim_al;
	enum dmarc_policy policy, applied;
	const char *org;
};

#define P_NONE DMARC_POLICY_NONE
#define P_QUAR DMARC_POLICY_QUARANTINE
#define P_REJ  DMARC_POLICY_REJECT

static const struct align_case align_cases[] = {
    /* relaxed (example.com: p=reject sp=quarantine) */
    {"a@example.com", SPF_PASS, "example.com", DKIM_RESULT_NONE, NULL, DMARC_PASS, true, false,
     P_REJ, P_NONE, "example.com"},
    {"a@example.com", SPF_PASS, "bounce.example.com", DKIM_RESULT_NONE, NULL, DMARC_PASS, true,
     false, P_REJ, P_NONE, "example.com"},
    {"a@news.example.com", SPF_PASS, "example.com", DKIM_RESULT_NONE, NULL, DMARC_PASS, true, false,
     P_QUAR, P_NONE, "example.com"},
    {"a@news.example.com", SPF_FAIL, "example.com", DKIM_RESULT_PASS, "other.org", DMARC_FAIL,
     false, false, P_QUAR, P_QUAR, "example.com"},
    {"a@example.com", SPF_SOFTFAIL, "example.com", DKIM_RESULT_FAIL, "example.com", DMARC_FAIL,
     false, false, P_REJ, P_REJ, "example.com"},
    {"a@example.com", SPF_NONE, "", DKIM_RESULT_TEMPERROR, "example.com", DMARC_FAIL, false, false,
     P_REJ, P_REJ, "example.com"},
    {"a@example.com", SPF_PASS, "example.net", DKIM_RESULT_PASS, "mail.example.com", DMARC_PASS,
     false, true, P_REJ, P_NONE, "example.com"},
    {"A@EXAMPLE.COM", SPF_PASS, "Example.COM", DKIM_RESULT_NONE, NULL, DMARC_PASS, true, false,
     P_REJ, P_NONE, "example.com"},
    /* strict (strict.example: p=reject, adkim=s aspf=s) */
    {"a@strict.example", SPF_PASS, "mail.strict.example", DKIM_RESULT_NONE, NULL, DMARC_FAIL, false,
     false, P_REJ, P_REJ, "strict.example"},
    {"a@strict.example", SPF_PASS, "mail.strict.example", DKIM_RESULT_PASS, "strict.example",
     DMARC_PASS, false, true, P_REJ, P_NONE, "strict.example"},
    {"a@strict.example", SPF_FAIL, "strict.example", DKIM_RESULT_PASS, "sub.strict.example",
     DMARC_FAIL, false, false, P_REJ, P_REJ, "strict.example"},
    {"a@strict.example", SPF_PASS, "STRICT.example.", DKIM_RESULT_NONE, NULL, DMARC_PASS, true,
     false, P_REJ, P_NONE, "strict.example"},
    /* a subdomain without its own record: the org record's p (no sp) */
    {"a@sub.strict.example", SPF_NONE, "", DKIM_RESULT_PASS, "sub.strict.example", DMARC_PASS,
     false, true, P_REJ, P_NONE, "strict.example"},
    {"a@sub.strict.example", SPF_PASS, "strict.example", DKIM_RESULT_PASS, "strict.example",
     DMARC_FAIL, false, false, P_REJ, P_REJ, "strict.example"},
    /* co.uk-style suffixes (example.co.uk: p=quarantine sp=none) */
    {"a@shop.example.co.uk", SPF_NONE, "", DKIM_RESULT_PASS, "mail.example.co.uk", DMARC_PASS,
     false, true, P_NONE, P_NONE, "example.co.uk"},
    {"a@shop.example.co.uk", SPF_PASS, "other.co.uk", DKIM_RESULT_PASS, "other.co.uk", DMARC_FAIL,
     false, false, P_NONE, P_NONE, "example.co.uk"},
    {"a@example.co.uk", SPF_PASS, "co.uk", DKIM_RESULT_PASS, "co.uk", DMARC_FAIL, false, false,
     P_QUAR, P_QUAR, "example.co.uk"},
    /* records */
    {"a@norecord.example", SPF_PASS, "norecord.example", DKIM_RESULT_NONE, NULL, DMARC_NONE, false,
     false, P_NONE, P_NONE, "norecord.example"},
    {"a@multi.example", SPF_FAIL, "multi.example", DKIM_RESULT_NONE, NULL, DMARC_NONE, false, false,
     P_NONE, P_NONE, "multi.example"},
    {"a@temp.example", SPF_PASS, "temp.example", DKIM_RESULT_NONE, NULL, DMARC_TEMPERROR, false,
     false, P_NONE, P_NONE, "temp.example"},
    {"a@x.tempo.example", SPF_PASS, "x.tempo.example", DKIM_RESULT_NONE, NULL, DMARC_TEMPERROR,
     false, false, P_NONE, P_NONE, "tempo.example"},
    {"a@nop.example", SPF_FAIL, "nop.example", DKIM_RESULT_NONE, NULL, DMARC_FAIL, false, false,
     P_NONE, P_NONE, "nop.example"},
    {"a@badp.example", SPF_FAIL, "badp.example", DKIM_RESULT_NONE, NULL, DMARC_FAIL, false, false,
     P_NONE, P_NONE, "badp.example"},
    {"a@x.badp.example", SPF_FAIL, "badp.example", DKIM_RESULT_NONE, NULL, DMARC_FAIL, false, false,
     P_REJ, P_REJ, "badp.example"},
    {"a@notfirst.example", SPF_FAIL, "x.example", DKIM_RESULT_NONE, NULL, DMARC_NONE, false, false,
     P_NONE, P_NONE, "notfirst.example"},
    {"a@lower.example", SPF_FAIL, "x.example", DKIM_RESULT_NONE, NULL, DMARC_NONE, false, false,
     P_NONE, P_NONE, "lower.example"},
    {"a@spaces.example", SPF_FAIL, "x.example", DKIM_RESULT_NONE, NULL, DMARC_FAIL, false, false,
     P_REJ, P_REJ, "spaces.example"},
    {"a@badpct.example", SPF_FAIL, "x.example", DKIM_RESULT_NONE, NULL, DMARC_FAIL, false, false,
     P_REJ, P_REJ, "badpct.example"},
};

static void
run_check(const char *from, const struct spf_outcome *spf, const struct dkim_verify_result *dkim,
          int roll, struct dmarc_outcome *out)
{
	char msg[512];
	(void)snprintf(msg, sizeof msg,
	               "Received: x\r\nFrom: Someone <%s>\r\nSubject: t\r\n\r\nbody\r\n", from);
	dmarc_check((const unsigned char *)msg, strlen(msg), spf, dkim, &fake_dns, sample_fixed,
	            &roll, out);
}

static void
test_alignment_table(void)
{
	for (size_t i = 0; i < sizeof align_cases / sizeof align_cases[0]; i++) {
		const struct align_case *c = &align_cases[i];
		struct spf_outcome spf = {.result = c->spf};
		(void)snprintf(spf.domain, sizeof spf.domain, "%s", c->spf_domain);
		struct dkim_verify_result dkim = {0};
		if (c->dkim_d != NULL) {
			dkim.n = 1;
			dkim.sigs[0].result = c->dkim;
			(void)snprintf(dkim.sigs[0].domain, sizeof dkim.sigs[0].domain, "%s",
			               c->dkim_d);
		}
		struct dmarc_outcome out;
		run_check(c->from, &spf, &dkim, 0, &out);
		if (out.result != c->want || out.spf_aligned != c->spf_al ||
		    out.dkim_aligned != c->dkim_al || out.policy != c->policy ||
		    out.applied != c->applied || strcmp(out.org_domain, c->org) != 0)
			fprintf(
			    stderr,
			    "  case %zu (%s): result %s spf %d dkim %d p %s dis %s org %s: %s\n", i,
			    c->from, dmarc_result_name(out.result), out.spf_aligned,
			    out.dkim_aligned, dmarc_policy_name(out.policy),
			    dmarc_policy_name(out.applied), out.org_domain, out.reason);
		CHECK_INT(out.result, c->want);
		CHECK_INT(out.spf_aligned, c->spf_al);
		CHECK_INT(out.dkim_aligned, c->dkim_al);
		CHECK_INT(out.policy, c->policy);
		CHECK_INT(out.applied, c->applied);
		CHECK_STR(out.org_domain, c->org);
		CHECK(out.reason[0] != '\0');
	}
}

static void
test_discovery_queries(void)
{
	struct spf_outcome spf = {.result = SPF_PASS};
	struct dmarc_outcome out;
	/* own record found: one query */
	fake_queries = 0;
	run_check("a@example.com", &spf, NULL, 0, &out);
	CHECK_INT(fake_queries, 1);
	CHECK_STR(out.from_domain, "example.com");
	/* none at the subdomain: a second query at the org domain */
	fake_queries = 0;
	run_check("a@deep.news.example.com", &spf, NULL, 0, &out);
	CHECK_INT(fake_queries, 2);
	CHECK_STR(out.from_domain, "deep.news.example.com");
	CHECK_INT(out.policy, DMARC_POLICY_QUARANTINE);
	/* the org domain is not asked twice */
	fake_queries = 0;
	run_check("a@norecord.example", &spf, NULL, 0, &out);
	CHECK_INT(fake_queries, 1);
	CHECK_INT(out.result, DMARC_NONE);
	/* several records at the subdomain's own name end discovery */
	fake_queries = 0;
	run_check("a@multi.example", &spf, NULL, 0, &out);
	CHECK_INT(fake_queries, 1);
	/* no DNS at all: none */
	char msg[] = "From: a@example.com\r\n\r\n";
	struct policy_dns nodns = {0};
	dmarc_check((const unsigned char *)msg, strlen(msg), &spf, NULL, &nodns, NULL, NULL, &out);
	CHECK_INT(out.result, DMARC_NONE);
}

static void
test_pct_sampling(void)
{
	struct spf_outcome spf = {.result = SPF_FAIL};
	struct dmarc_outcome out;
	static const struct {
		const char *from;
		int roll;
		enum dmarc_policy applied;
	} cases[] = {
	    {"a@pct.example", 0, P_REJ},     {"a@pct.example", 29, P_REJ},
	    {"a@pct.example", 30, P_NONE},   {"a@pct.example", 99, P_NONE},
	    {"a@pct0.example", 0, P_NONE},   {"a@example.com", 99, P_REJ},
	    {"a@badpct.example", 99, P_REJ},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		run_check(cases[i].from, &spf, NULL, cases[i].roll, &out);
		CHECK_INT(out.result, DMARC_FAIL);
		CHECK_INT(out.policy, DMARC_POLICY_REJECT);
		CHECK_INT(out.applied, cases[i].applied);
	}
	/* a pass is never sampled */
	spf.result = SPF_PASS;
	(void)snprintf(spf.domain, sizeof spf.domain, "pct.example");
	run_check("a@pct.example", &spf, NULL, 0, &out);
	CHECK_INT(out.result, DMARC_PASS);
	CHECK_INT(out.applied, DMARC_POLICY_NONE);
	/* the random sampler: pct=100 always applies, pct=0 never */
	spf.result = SPF_FAIL;
	char m1[] = "From: a@example.com\r\n\r\n", m2[] = "From: a@pct0.example\r\n\r\n";
	for (int i = 0; i < 20; i++) {
		dmarc_check((const unsigned char *)m1, strlen(m1), &spf, NULL, &fake_dns, NULL,
		            NULL, &out);
		CHECK_INT(out.applied, DMARC_POLICY_REJECT);
		dmarc_check((const unsigned char *)m2, strlen(m2), &spf, NULL, &fake_dns, NULL,
		            NULL, &out);
		CHECK_INT(out.applied, DMARC_POLICY_NONE);
	}
}

static void
test_from_parsing(void)
{
	static const struct {
		const char *msg;
		enum dmarc_result want;
		const char *domain;
	} cases[] = {
	    {"From: a@example.com, b@example.com\r\n\r\n", DMARC_PERMERROR, ""},
	    {"From: a@example.com\r\nFrom: b@example.com\r\n\r\n", DMARC_PERMERROR, ""},
	    {"Subject: no from\r\n\r\n", DMARC_PERMERROR, ""},
	    {"From: undisclosed-recipients:;\r\n\r\n", DMARC_PERMERROR, ""},
	    {"From: Joe <joe@[192.0.2.1]>\r\n\r\n", DMARC_PERMERROR, ""},
	    {"From: <<<\r\n\r\n", DMARC_PERMERROR, ""},
	    {"From: a@example.com\r\nbroken line\r\n\r\n", DMARC_PERMERROR, ""},
	    {"", DMARC_PERMERROR, ""},
	    {"From: \"Doe, Jane\" <jane@Example.COM>\r\n\r\n", DMARC_PASS, "example.com"},
	    {"from :\r\n (comment) Jane\r\n <jane@example.com>\r\n\r\n", DMARC_PASS, "example.com"},
	    {"From: jane@example.com\n\nbody\n", DMARC_PASS, "example.com"},
	    {"From: group: jane@example.com;\r\n\r\n", DMARC_PASS, "example.com"},
	    /* a From in the body is not a header field */
	    {"Subject: x\r\n\r\nFrom: a@example.com\r\n", DMARC_PERMERROR, ""},
	};
	struct spf_outcome spf = {.result = SPF_PASS, .domain = "example.com"};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dmarc_outcome out;
		dmarc_check((const unsigned char *)cases[i].msg, strlen(cases[i].msg), &spf, NULL,
		            &fake_dns, NULL, NULL, &out);
		CHECK_INT(out.result, cases[i].want);
		CHECK_STR(out.from_domain, cases[i].domain);
		CHECK_INT(out.applied, DMARC_POLICY_NONE);
		CHECK(out.reason[0] != '\0');
	}
	struct dmarc_outcome out;
	const char *m = "From: a@example.com, b@example.com\r\n\r\n";
	dmarc_check((const unsigned char *)m, strlen(m), &spf, NULL, &fake_dns, NULL, NULL, &out);
	CHECK_STR(out.reason, "several From addresses");
}

static void
test_dkim_several_signatures(void)
{
	struct spf_outcome spf = {.result = SPF_FAIL, .domain = "example.com"};
	struct dkim_verify_result dkim = {.n = 3};
	dkim.sigs[0].result = DKIM_RESULT_FAIL;
	(void)snprintf(dkim.sigs[0].domain, sizeof dkim.sigs[0].domain, "example.com");
	dkim.sigs[1].result = DKIM_RESULT_PASS;
	(void)snprintf(dkim.sigs[1].domain, sizeof dkim.sigs[1].domain, "esp.example");
	dkim.sigs[2].result = DKIM_RESULT_PASS;
	(void)snprintf(dkim.sigs[2].domain, sizeof dkim.sigs[2].domain, "Example.Com");
	struct dmarc_outcome out;
	run_check("a@example.com", &spf, &dkim, 0, &out);
	CHECK_INT(out.result, DMARC_PASS);
	CHECK(out.dkim_aligned);
	CHECK(!out.spf_aligned);
	CHECK_STR(out.reason, "aligned DKIM d=Example.Com");
}

/* ---- Authentication-Results ---- */

static void
build(const struct spf_outcome *spf, const struct dkim_verify_result *dkim,
      const struct dmarc_outcome *dmarc, const char *want)
{
	struct buf b;
	buf_init(&b, 0);
	authres_build("mx.example.org", spf, dkim, dmarc, &b);
	CHECK_STR(buf_cstr(&b), want);
	/* every line within 78 columns (a tab counted as 8) */
	size_t col = 0;
	for (size_t i = 0; i < b.len; i++) {
		if (b.data[i] == '\n') {
			col = 0;
			continue;
		}
		col += b.data[i] == '\t' ? 8 : b.data[i] == '\r' ? 0 : 1;
		CHECK(col <= 78);
	}
	buf_deinit(&b);
}

static void
test_authres_build(void)
{
	struct spf_outcome spf = {.result = SPF_PASS, .domain = "example.com"};
	struct dkim_verify_result dkim = {.n = 1};
	struct dkim_sig_result *s = &dkim.sigs[0];
	s->result = DKIM_RESULT_PASS;
	(void)snprintf(s->domain, sizeof s->domain, "example.com");
	(void)snprintf(s->selector, sizeof s->selector, "sel");
	(void)snprintf(s->b_prefix, sizeof s->b_prefix, "abcd+efg");
	struct dmarc_outcome dmarc = {.result = DMARC_PASS,
	                              .from_domain = "example.com",
	                              .policy = DMARC_POLICY_REJECT,
	                              .reason = "aligned DKIM d=example.com"};
	build(&spf, &dkim, &dmarc,
	      "Authentication-Results: mx.example.org;\r\n"
	      "\t spf=pass smtp.mailfrom=example.com;\r\n"
	      "\t dkim=pass header.d=example.com header.s=sel header.b=abcd+efg;\r\n"
	      "\t dmarc=pass (p=reject dis=none) header.from=example.com\r\n");

	/* failures with reasons, quoting, HELO identity, no signature */
	spf = (struct spf_outcome){.result = SPF_FAIL,
	                           .domain = "helo.example",
	                           .helo_identity = true,
	                           .reason = "matched -all"};
	struct dkim_verify_result none = {0};
	dmarc = (struct dmarc_outcome){.result = DMARC_FAIL,
	                               .from_domain = "example.com",
	                               .policy = DMARC_POLICY_QUARANTINE,
	                               .applied = DMARC_POLICY_QUARANTINE,
	                               .reason = "neither SPF nor DKIM aligned"};
	build(&spf, &none, &dmarc,
	      "Authentication-Results: mx.example.org;\r\n"
	      "\t spf=fail (matched -all) smtp.helo=helo.example;\r\n"
	      "\t dkim=none;\r\n"
	      "\t dmarc=fail (p=quarantine dis=quarantine; neither SPF nor DKIM\r\n"
	      "\t  aligned) header.from=example.com\r\n");

	/* two signatures; a reason with parentheses and a backslash; b= with '/' is quoted;
	 * partial body; a long reason folds; permerror without a From domain */
	spf =
	    (struct spf_outcome){.result = SPF_TEMPERROR,
	                         .domain = "example.com",
	                         .reason = "DNS timeout (SERVFAIL) looking up the TXT record of a "
	                                   "rather long name"};
	dkim.n = 2;
	(void)snprintf(s->b_prefix, sizeof s->b_prefix, "ab/cd=ef");
	s->body_partial = true;
	struct dkim_sig_result *t = &dkim.sigs[1];
	*t = (struct dkim_sig_result){.result = DKIM_RESULT_FAIL,
	                              .domain = "esp.example",
	                              .selector = "s 1",
	                              .reason = "body hash \\ mismatch"};
	dmarc =
	    (struct dmarc_outcome){.result = DMARC_PERMERROR, .reason = "several From addresses"};
	build(&spf, &dkim, &dmarc,
	      "Authentication-Results: mx.example.org;\r\n"
	      "\t spf=temperror (DNS timeout \\(SERVFAIL\\) looking up the TXT record of\r\n"
	      "\t  a rather long name) smtp.mailfrom=example.com;\r\n"
	      "\t dkim=pass (body partially signed \\(l=\\)) header.d=example.com\r\n"
	      "\t  header.s=sel header.b=\"ab/cd=ef\";\r\n"
	      "\t dkim=fail (body hash \\\\ mismatch) header.d=esp.example\r\n"
	      "\t  header.s=\"s 1\";\r\n"
	      "\t dmarc=permerror (p=none dis=none; several From addresses)\r\n");

	/* without SPF and DMARC outcomes */
	build(NULL, NULL, NULL, "Authentication-Results: mx.example.org;\r\n\t dkim=none\r\n");
}

static void
test_authres_strip(void)
{
	static const char msg[] = "Authentication-Results: MX.Example.Org; spf=pass\r\n"
	                          "Received: from a by b\r\n"
	                          "Authentication-Results: other.example;\r\n"
	                          "\tdkim=pass header.d=x\r\n"
	                          "authentication-results :\r\n"
	                          " (forged (nested)) mx.example.org;\r\n"
	                          " dkim=pass\r\n"
	                          "Authentication-Results: \"mx.example.org\"; none\r\n"
	                          "Authentication-Results: mx.example.org.evil; none\r\n"
	                          "Authentication-Results-X: mx.example.org; none\r\n"
	                          "X-Authentication-Results: mx.example.org; none\r\n"
	                          "Subject: hi\r\n"
	                          "Authentication-Results: mx.example.org; dkim=fail\r\n"
	                          "\r\n"
	                          "Authentication-Results: mx.example.org; in the body\r\n";
	static const char want[] = "Received: from a by b\r\n"
	                           "Authentication-Results: other.example;\r\n"
	                           "\tdkim=pass header.d=x\r\n"
	                           "Authentication-Results: mx.example.org.evil; none\r\n"
	                           "Authentication-Results-X: mx.example.org; none\r\n"
	                           "X-Authentication-Results: mx.example.org; none\r\n"
	                           "Subject: hi\r\n"
	                           "\r\n"
	                           "Authentication-Results: mx.example.org; in the body\r\n";
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(authres_strip((const unsigned char *)msg, strlen(msg), "mx.example.org", &b), 4);
	CHECK_STR(buf_cstr(&b), want);

	/* LF line ends, the last field without a line end, no body */
	static const char lf[] = "Subject: a\nAuthentication-Results: mx.example.org;\n dkim=none\n"
	                         "X: y\nAuthentication-Results: mx.example.org; none";
	buf_reset(&b);
	CHECK_INT(authres_strip((const unsigned char *)lf, strlen(lf), "MX.EXAMPLE.ORG", &b), 2);
	CHECK_STR(buf_cstr(&b), "Subject: a\nX: y\n");

	/* nothing to remove: the message is copied as is */
	static const char none[] = "Subject: a\r\n\r\nbody";
	buf_reset(&b);
	CHECK_INT(authres_strip((const unsigned char *)none, strlen(none), "mx.example.org", &b),
	          0);
	CHECK_STR(buf_cstr(&b), none);
	buf_reset(&b);
	CHECK_INT(authres_strip((const unsigned char *)"", 0, "mx.example.org", &b), 0);
	CHECK_INT(b.len, 0);

	/* what we build is what we strip */
	buf_reset(&b);
	authres_build("mx.example.org", NULL, NULL, NULL, &b);
	(void)buf_append_str(&b, "Subject: s\r\n\r\nx");
	struct buf c;
	buf_init(&c, 0);
	CHECK_INT(authres_strip(b.data, b.len, "mx.example.org", &c), 1);
	CHECK_STR(buf_cstr(&c), "Subject: s\r\n\r\nx");
	buf_deinit(&c);
	buf_deinit(&b);
}

int
main(void)
{
	RUN(test_names);
	RUN(test_org_domain);
	RUN(test_alignment_table);
	RUN(test_discovery_queries);
	RUN(test_pct_sampling);
	RUN(test_from_parsing);
	RUN(test_dkim_several_signatures);
	RUN(test_authres_build);
	RUN(test_authres_strip);
	return test_done("dmarc");
}
