/* Tests for src/policy/spf.c: check_host() against a table-driven fake DNS, plus the macro
 * examples of RFC 7208 §7.4 on the (static) expander. White-box: includes spf.c. */
#include "spf.c"

#include "test.h"

/* ---- fake DNS: one zone of rows; type "TEMP" with value = a type makes that query fail ---- */

struct rr {
	const char *type, *name, *value;
};

static const struct rr zone[] = {
    {"A", "t.example", "192.0.2.10"},
    {"AAAA", "t.example", "2001:db8::10"},
    {"MX", "t.example", "mail.t.example."},
    {"A", "mail.t.example", "192.0.2.20"},
    {"AAAA", "mail.t.example", "2001:db8::20"},
    {"A", "a.example", "192.0.2.30"},
    {"A", "a.example", "192.0.2.31"},
    {"AAAA", "a.example", "2001:db8:1::1"},
    {"TXT", "inc-pass.example", "v=spf1 ip4:192.0.2.1 -all"},
    {"TXT", "inc-fail.example", "v=spf1 -all"},
    {"TXT", "inc-soft.example", "v=spf1 ~all"},
    {"TXT", "inc-neutral.example", "v=spf1 ?all"},
    {"TXT", "inc-perm.example", "v=spf1 foo:bar"},
    {"TXT", "inc-none.example", "some other text"},
    {"TEMP", "inc-temp.example", "TXT"},
    {"TEMP", "temp.example", "A"},
    {"TEMP", "temp.example", "MX"},
    {"TXT", "red.example", "v=spf1 ip4:192.0.2.0/24 -all"},
    {"TXT", "red2.example", "v=spf1 redirect=red.example"},
    {"PTR", "192.0.2.1", "host.ptr.example."},
    {"PTR", "192.0.2.1", "other.example"},
    {"A", "host.ptr.example", "192.0.2.1"},
    {"A", "other.example", "192.0.2.99"},
    {"PTR", "2001:db8::1", "v6host.ptr.example"},
    {"AAAA", "v6host.ptr.example", "2001:db8::1"},
    {"A", "1.2.0.192.x.example", "127.0.0.2"},
    {"MX", "many.example", "m1.example"},
    {"MX", "many.example", "m2.example"},
    {"MX", "many.example", "m3.example"},
    {"MX", "many.example", "m4.example"},
    {"MX", "many.example", "m5.example"},
    {"MX", "many.example", "m6.example"},
    {"MX", "many.example", "m7.example"},
    {"MX", "many.example", "m8.example"},
    {"MX", "many.example", "m9.example"},
    {"MX", "many.example", "m10.example"},
    {"MX", "many.example", "m11.example"},
    {"TXT", "loop.example", "v=spf1 include:loop.example"},
    {"TXT", "helo.example", "v=spf1 ip4:192.0.2.1 -all"},
    {"TXT", "two.example", "v=spf1 -all"},
    {"TXT", "two.example", "v=spf1 +all"},
    {"TXT", "two.example", "v=spf10 +all"},
    {"TXT", "case.example", "V=SPF1 +ALL"},
};

struct fake {
	const char *rec; /* TXT of t.example; '\n' separates several records */
	char log[2048];  /* "TYPE name;" per query */
	int queries;
};

static void
log_query(struct fake *f, const char *type, const char *name)
{
	size_t l = strlen(f->log);
	(void)snprintf(f->log + l, sizeof f->log - l, "%s %s;", type, name);
	f->queries++;
}

static int
lookup(struct fake *f, const char *type, const char *name, char ***v_r, size_t *n_r)
{
	char **v = xcalloc(64, sizeof *v);
	size_t n = 0;
	log_query(f, type, name);
	if (strcmp(type, "TXT") == 0 && strcasecmp(name, "t.example") == 0 && f->rec != NULL) {
		const char *p = f->rec;
		for (;;) {
			const char *e = strchr(p, '\n');
			v[n++] = e ? xstrndup(p, (size_t)(e - p)) : xstrdup(p);
			if (e == NULL)
				break;
			p = e + 1;
		}
	}
	for (size_t i = 0; i < sizeof zone / sizeof zone[0]; i++) {
		if (strcasecmp(zone[i].name, name) != 0)
			continue;
		if (strcmp(zone[i].type, "TEMP") == 0 && strcmp(zone[i].value, type) == 0) {
			policy_strings_free(v, n);
			return -1;
		}
		if (strcmp(zone[i].type, type) == 0 && n < 64)
			v[n++] = xstrdup(zone[i].value);
	}
	if (n == 0) {
		free(v);
		return 1;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

static int
f_txt(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	return lookup(ctx, "TXT", name, v_r, n_r);
}

static int
f_addr(void *ctx, const char *name, bool v6, char ***v_r, size_t *n_r)
{
	return lookup(ctx, v6 ? "AAAA" : "A", name, v_r, n_r);
}

static int
f_mx(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	return lookup(ctx, "MX", name, v_r, n_r);
}

static int
f_ptr(void *ctx, const char *ip, char ***v_r, size_t *n_r)
{
	return lookup(ctx, "PTR", ip, v_r, n_r);
}

static struct spf_outcome
run(struct fake *f, const char *ip, const char *from, const char *helo)
{
	struct policy_dns dns = {f, f_txt, f_addr, f_mx, f_ptr};
	struct spf_request req = {ip, from, helo, "mx.receiver.example", 1700000000};
	struct spf_outcome out;
	spf_check(&req, &dns, &out);
	return out;
}

/* ---- check_host() cases: the record is served at t.example, the sender is user@t.example ---- */

static const struct {
	const char *rec, *ip;
	enum spf_result want;
	const char *reason; /* substring of the reason, or NULL */
} cases[] = {
    /* qualifiers and all */
    {"v=spf1 +all", "192.0.2.1", SPF_PASS, "mechanism +all matched"},
    {"v=spf1 all", "192.0.2.1", SPF_PASS, NULL},
    {"v=spf1 -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 ~all", "192.0.2.1", SPF_SOFTFAIL, NULL},
    {"v=spf1 ?all", "192.0.2.1", SPF_NEUTRAL, NULL},
    {"v=spf1", "192.0.2.1", SPF_NEUTRAL, "no mechanism matched"},
    {"v=spf1   ", "192.0.2.1", SPF_NEUTRAL, NULL},
    {"V=SpF1 -ALL", "192.0.2.1", SPF_FAIL, NULL},
    /* ip4 / ip6 and CIDR */
    {"v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.1", SPF_PASS, "mechanism ip4:192.0.2.0/24 matched"},
    {"v=spf1 ip4:192.0.2.1 -all", "192.0.2.1", SPF_PASS, NULL},
    {"v=spf1 ip4:192.0.2.2 -all", "192.0.2.1", SPF_FAIL, "mechanism -all matched"},
    {"v=spf1 ip4:192.0.3.0/23 -all", "192.0.2.1", SPF_PASS, NULL},
    {"v=spf1 ip4:192.0.4.0/23 -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 ip4:0.0.0.0/0 -all", "198.51.100.7", SPF_PASS, NULL},
    {"v=spf1 -ip4:192.0.2.1/32 +all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 ip4:192.0.2.0/24 -all", "2001:db8::1", SPF_FAIL, NULL},
    {"v=spf1 ip4:192.0.2.0/24 -all", "::ffff:192.0.2.5", SPF_PASS, NULL},
    {"v=spf1 ip6:2001:db8::/32 -all", "2001:db8:ffff::1", SPF_PASS, NULL},
    {"v=spf1 ip6:2001:db8::/33 -all", "2001:db8:8000::1", SPF_FAIL, NULL},
    {"v=spf1 ip6:2001:db8::/33 -all", "2001:db8:7fff::1", SPF_PASS, NULL},
    {"v=spf1 ip6:2001:db8::1 -all", "2001:db8::1", SPF_PASS, NULL},
    {"v=spf1 ip6:2001:db8::1 -all", "2001:db8::2", SPF_FAIL, NULL},
    {"v=spf1 ip6:2001:db8::/127 -all", "2001:db8::1", SPF_PASS, NULL},
    {"v=spf1 ip6:::/0 -all", "2001:db8::1", SPF_PASS, NULL},
    {"v=spf1 ip6:2001:db8::/32 -all", "192.0.2.1", SPF_FAIL, NULL},
    /* a */
    {"v=spf1 a -all", "192.0.2.10", SPF_PASS, "mechanism a matched"},
    {"v=spf1 a -all", "192.0.2.11", SPF_FAIL, NULL},
    {"v=spf1 a/24 -all", "192.0.2.11", SPF_PASS, NULL},
    {"v=spf1 a:a.example -all", "192.0.2.31", SPF_PASS, NULL},
    {"v=spf1 a:a.example. -all", "192.0.2.31", SPF_PASS, NULL},
    {"v=spf1 A:A.EXAMPLE -all", "192.0.2.31", SPF_PASS, NULL},
    {"v=spf1 a:a.example/30 -all", "192.0.2.29", SPF_PASS, NULL},
    {"v=spf1 a:a.example/31 -all", "192.0.2.29", SPF_FAIL, NULL},
    {"v=spf1 a -all", "2001:db8::10", SPF_PASS, NULL},
    {"v=spf1 a//64 -all", "2001:db8::ffff", SPF_PASS, NULL},
    {"v=spf1 a/32//128 -all", "2001:db8::ffff", SPF_FAIL, NULL},
    {"v=spf1 a:a.example/24//48 -all", "2001:db8:1:5::1", SPF_PASS, NULL},
    {"v=spf1 a:a.example/24//48 -all", "192.0.2.200", SPF_PASS, NULL},
    {"v=spf1 a:temp.example -all", "192.0.2.1", SPF_TEMPERROR, "temporary"},
    /* mx */
    {"v=spf1 mx -all", "192.0.2.20", SPF_PASS, "mechanism mx matched"},
    {"v=spf1 mx -all", "2001:db8::20", SPF_PASS, NULL},
    {"v=spf1 mx -all", "192.0.2.21", SPF_FAIL, NULL},
    {"v=spf1 mx/30 -all", "192.0.2.21", SPF_PASS, NULL},
    {"v=spf1 mx:t.example//120 -all", "2001:db8::ff", SPF_PASS, NULL},
    {"v=spf1 mx:many.example -all", "192.0.2.1", SPF_PERMERROR, "MX names"},
    {"v=spf1 mx:temp.example -all", "192.0.2.1", SPF_TEMPERROR, NULL},
    /* ptr */
    {"v=spf1 ptr:ptr.example -all", "192.0.2.1", SPF_PASS, "mechanism ptr:ptr.example"},
    {"v=spf1 ptr:host.ptr.example -all", "192.0.2.1", SPF_PASS, NULL},
    {"v=spf1 ptr:other.example -all", "192.0.2.1", SPF_FAIL, NULL}, /* not validated */
    {"v=spf1 ptr:xptr.example -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 ptr -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 ptr:ptr.example -all", "2001:db8::1", SPF_PASS, NULL},
    {"v=spf1 ptr:ptr.example -all", "192.0.2.2", SPF_FAIL, NULL}, /* no PTR: void */
    /* exists */
    {"v=spf1 exists:%{ir}.x.example -all", "192.0.2.1", SPF_PASS, NULL},
    {"v=spf1 exists:%{ir}.x.example -all", "192.0.2.2", SPF_FAIL, NULL},
    {"v=spf1 exists:temp.example -all", "192.0.2.1", SPF_TEMPERROR, NULL},
    /* include (§5.2 table) */
    {"v=spf1 include:inc-pass.example -all", "192.0.2.1", SPF_PASS,
     "mechanism include:inc-pass.example matched"},
    {"v=spf1 -include:inc-pass.example +all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 include:inc-pass.example -all", "192.0.2.2", SPF_FAIL, NULL},
    {"v=spf1 include:inc-fail.example ~all", "192.0.2.1", SPF_SOFTFAIL, NULL},
    {"v=spf1 include:inc-soft.example -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 include:inc-neutral.example -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 include:inc-perm.example -all", "192.0.2.1", SPF_PERMERROR, "foo:bar"},
    {"v=spf1 include:inc-none.example -all", "192.0.2.1", SPF_PERMERROR,
     "include:inc-none.example has no SPF record"},
    {"v=spf1 include:nx.example -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 include:inc-temp.example -all", "192.0.2.1", SPF_TEMPERROR, "TXT"},
    {"v=spf1 ip4:192.0.2.1 include:inc-temp.example -all", "192.0.2.1", SPF_PASS, NULL},
    {"v=spf1 include:loop.example -all", "192.0.2.1", SPF_PERMERROR, "more than 10"},
    /* redirect (§6.1) */
    {"v=spf1 redirect=red.example", "192.0.2.1", SPF_PASS, NULL},
    {"v=spf1 redirect=red.example", "198.51.100.1", SPF_FAIL, NULL},
    {"v=spf1 redirect=red2.example", "198.51.100.1", SPF_FAIL, NULL},
    {"v=spf1 ?all redirect=red.example", "198.51.100.1", SPF_NEUTRAL, NULL},
    {"v=spf1 redirect=red.example ip4:198.51.100.1", "198.51.100.1", SPF_PASS, NULL},
    {"v=spf1 redirect=nx.example", "192.0.2.1", SPF_PERMERROR, "redirect"},
    {"v=spf1 redirect=inc-none.example", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 redirect=red.example redirect=red.example", "192.0.2.1", SPF_PERMERROR,
     "more than one redirect"},
    /* modifiers */
    {"v=spf1 exp=explain.%{d} -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 exp=a.example exp=b.example -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 moo=bar foo.bar-9_x=%{d} -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 moo= -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 moo=%{c} -all", "192.0.2.1", SPF_PERMERROR, NULL},
    /* syntax errors anywhere → permerror, even after a match */
    {"v=spf1 +all foo", "192.0.2.1", SPF_PERMERROR, "unknown mechanism"},
    {"v=spf1 ip4:192.0.2.1 moo", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip4:192.0.0.n -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip4:1.2.03.4 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip4:1.2.3.4/33 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip4:1.2.3.4/024 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip4:1.2.3.4/ -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip4 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip6:2001:db8::zz -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip6:2001:db8::/129 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip6:2001:db8::1//64 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a/33 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a//129 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:example -all", "192.0.2.1", SPF_PERMERROR, "toplabel"},
    {"v=spf1 a:example.123 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:192.0.2.1 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:foo.example:8080 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a: -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 -all:3030", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 include -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 exists -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 include:inc-pass.example/24 -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 =a -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 -redirect=red.example", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:%{x}.example -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:%{d0}.example -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:%{d.example -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:%(d).example -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:foo.example% -all", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 exists:%{r}.example -all", "192.0.2.1", SPF_PERMERROR, "exp text only"},
    {"v=spf1 redirect=", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 a:%{d}.example -all", "192.0.2.1", SPF_FAIL, NULL}, /* valid, void */
    {"v=spf1 a:%{d} -all", "192.0.2.10", SPF_PASS, NULL},        /* ends with a macro */
    {"v=spf1 a:%%.t.example -all", "192.0.2.1", SPF_FAIL, NULL},
    /* record selection (§4.5) */
    {"v=spf1 -all\nv=spf1 +all", "192.0.2.1", SPF_PERMERROR, "more than one SPF record"},
    {"v=spf1 -all\nv=spf10 +all\nhello", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf10 +all", "192.0.2.1", SPF_NONE, NULL},
    {"spf1 +all", "192.0.2.1", SPF_NONE, NULL},
    {"v=spf1+all", "192.0.2.1", SPF_NONE, NULL},
    /* the limit of 10 DNS-querying terms (§4.6.4) */
    {"v=spf1 a:a.example a:a.example a:a.example a:a.example a:a.example a:a.example "
     "a:a.example a:a.example a:a.example a:a.example -all",
     "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 a:a.example a:a.example a:a.example a:a.example a:a.example a:a.example "
     "a:a.example a:a.example a:a.example a:a.example a:a.example -all",
     "192.0.2.1", SPF_PERMERROR, "more than 10 DNS-querying terms"},
    {"v=spf1 a:a.example a:a.example a:a.example a:a.example a:a.example a:a.example "
     "a:a.example a:a.example a:a.example ip4:192.0.2.1 a:a.example -all",
     "192.0.2.1", SPF_PASS, NULL}, /* not evaluated */
    {"v=spf1 mx mx mx mx mx mx mx mx mx include:inc-fail.example redirect=red.example", "192.0.2.1",
     SPF_PERMERROR, "more than 10"},
    {"v=spf1 mx mx mx mx mx mx mx mx mx redirect=red.example", "192.0.2.1", SPF_PASS, NULL},
    {"v=spf1 ptr ptr ptr ptr ptr ptr ptr ptr ptr ptr ptr", "192.0.2.1", SPF_PERMERROR, NULL},
    {"v=spf1 ip4:192.0.2.1 ip4:192.0.2.1 ip4:192.0.2.1 ip4:192.0.2.1 ip4:192.0.2.1 "
     "ip4:192.0.2.1 ip4:192.0.2.1 ip4:192.0.2.1 ip4:192.0.2.1 ip4:192.0.2.1 ip4:192.0.2.1 "
     "ip4:192.0.2.1 -all",
     "198.51.100.1", SPF_FAIL, NULL},
    /* the limit of 2 void lookups (§4.6.4) */
    {"v=spf1 a:nx1.example a:nx2.example -all", "192.0.2.1", SPF_FAIL, NULL},
    {"v=spf1 a:nx1.example a:nx2.example a:nx3.example -all", "192.0.2.1", SPF_PERMERROR, "void"},
    {"v=spf1 mx:nx1.example exists:nx2.example a:nx3.example -all", "192.0.2.1", SPF_PERMERROR,
     "void"},
    {"v=spf1 a:nx1.example a:nx2.example a:a.example -all", "192.0.2.1", SPF_FAIL, NULL},
};

static void
test_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fake f = {.rec = cases[i].rec};
		struct spf_outcome o = run(&f, cases[i].ip, "user@t.example", "mx.t.example");
		if (o.result != cases[i].want ||
		    (cases[i].reason != NULL && strstr(o.reason, cases[i].reason) == NULL)) {
			fprintf(stderr, "  case %zu \"%s\" ip %s: got %s (%s), want %s (%s)\n", i,
			        cases[i].rec, cases[i].ip, spf_result_name(o.result), o.reason,
			        spf_result_name(cases[i].want),
			        cases[i].reason ? cases[i].reason : "-");
			test_cur_failed_ = 1;
		}
		CHECK_STR(o.domain, "t.example");
		CHECK(!o.helo_identity);
	}
}

static void
test_identity(void)
{
	struct fake f = {0};
	/* null sender: postmaster@helo */
	struct spf_outcome o = run(&f, "192.0.2.1", "", "helo.example");
	CHECK_INT(o.result, SPF_PASS);
	CHECK(o.helo_identity);
	CHECK_STR(o.domain, "helo.example");
	o = run(&f, "192.0.2.2", "", "HELO.example.");
	CHECK_INT(o.result, SPF_FAIL);
	CHECK_STR(o.domain, "helo.example");
	o = run(&f, "192.0.2.1", "", "[192.0.2.1]");
	CHECK_INT(o.result, SPF_NONE);
	o = run(&f, "192.0.2.1", "", "");
	CHECK_INT(o.result, SPF_NONE);
	/* no local part, no domain, single label, nothing published */
	f = (struct fake){.rec = "v=spf1 exists:%{l}.x.example -all"};
	o = run(&f, "192.0.2.1", "@t.example", "h.example");
	CHECK_INT(o.result, SPF_FAIL);
	CHECK(strstr(f.log, "A postmaster.x.example;") != NULL);
	o = run(&f, "192.0.2.1", "user@localhost", "h.example");
	CHECK_INT(o.result, SPF_NONE);
	o = run(&f, "192.0.2.1", "user@nothing.example", "h.example");
	CHECK_INT(o.result, SPF_NONE);
	CHECK_STR(o.domain, "nothing.example");
	o = run(&f, "192.0.2.1", "user@two.example", "h.example");
	CHECK_INT(o.result, SPF_PERMERROR);
	o = run(&f, "192.0.2.1", "user@case.example", "h.example");
	CHECK_INT(o.result, SPF_PASS);
	/* bad inputs */
	o = run(&f, "not-an-ip", "user@t.example", "h.example");
	CHECK_INT(o.result, SPF_PERMERROR);
	char big[700];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[10] = '@';
	o = run(&f, "192.0.2.1", big, "h.example");
	CHECK_INT(o.result, SPF_PERMERROR);
}

static void
test_temperror(void)
{
	struct fake f = {0};
	struct spf_outcome o = run(&f, "192.0.2.1", "user@inc-temp.example", "h.example");
	CHECK_INT(o.result, SPF_TEMPERROR);
	CHECK(strstr(o.reason, "temporary") != NULL);
}

/* The query names built from macros, seen by the fake DNS. */
static void
test_exists_queries(void)
{
	struct fake f = {.rec = "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all"};
	(void)run(&f, "192.0.2.3", "strong-bad@t.example", "h.example");
	CHECK(strstr(f.log, "A 3.2.0.192.in-addr._spf.t.example;") != NULL);
	f = (struct fake){.rec = "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all"};
	(void)run(&f, "2001:db8::cb01", "strong-bad@t.example", "h.example");
	CHECK(strstr(f.log, "A 1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6."
	                    "_spf.t.example;") != NULL);
	/* §7.3: over 253 characters, labels go from the left */
	f = (struct fake){.rec =
	                      "v=spf1 exists:%{s}.%{s}.%{s}.%{s}.%{s}.%{s}.%{s}.%{s}.%{s}.x -all"};
	(void)run(&f, "192.0.2.3", "abcdefghijklmnopqrstuvwxyz@t.example", "h.example");
	const char *q = strstr(f.log, "A ");
	CHECK(q != NULL);
	if (q != NULL) {
		const char *e = strchr(q, ';');
		CHECK(e != NULL && e - q - 2 <= 253 && e - q - 2 > 200);
		CHECK(strncmp(e - 2, ".x", 2) == 0);
	}
	/* %{p} is looked up once per check however often it appears */
	f = (struct fake){.rec = "v=spf1 exists:%{p}.b.example exists:%{p1}.c.example a:%{p} -all"};
	struct spf_outcome o = run(&f, "192.0.2.1", "u@t.example", "h.example");
	CHECK_INT(o.result, SPF_PASS);
	CHECK(strstr(f.log, "A host.ptr.example.b.example;") != NULL);
	CHECK(strstr(f.log, "A example.c.example;") != NULL);
	const char *first = strstr(f.log, "PTR ");
	CHECK(first != NULL && strstr(first + 1, "PTR ") == NULL);
	/* mx names and the PTR query use the normalised address */
	f = (struct fake){.rec = "v=spf1 ptr -all"};
	(void)run(&f, "2001:DB8:0::1", "u@t.example", "h.example");
	CHECK(strstr(f.log, "PTR 2001:db8::1;") != NULL);
}

/* RFC 7208 §7.4 */
static const struct {
	const char *in, *want;
} macro_v4[] = {
    {"%{s}", "strong-bad@email.example.com"},
    {"%{o}", "email.example.com"},
    {"%{d}", "email.example.com"},
    {"%{d4}", "email.example.com"},
    {"%{d3}", "email.example.com"},
    {"%{d2}", "example.com"},
    {"%{d1}", "com"},
    {"%{dr}", "com.example.email"},
    {"%{d2r}", "example.email"},
    {"%{l}", "strong-bad"},
    {"%{l-}", "strong.bad"},
    {"%{lr}", "strong-bad"},
    {"%{lr-}", "bad.strong"},
    {"%{l1r-}", "strong"},
    {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
    {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
    {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
    {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
    {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
    /* beyond §7.4 */
    {"%{S}", "strong-bad%40email.example.com"},
    {"%{L}", "strong-bad"},
    {"%{d100}", "email.example.com"},
    {"%{dR}", "com.example.email"},
    {"%{l-.}", "strong.bad"},
    {"%{d2-}", "email.example.com"},
    {"%{i}", "192.0.2.3"},
    {"%{i1}", "3"},
    {"%{v}", "in-addr"},
    {"%{h}", "mx.example.org"},
    {"%{c}", "192.0.2.3"},
    {"%{r}", "mx.receiver.example"},
    {"%{t}", "1700000000"},
    {"%{p}", "unknown"},
    {"%%%_%-x", "% %20x"},
    {"a%{o}b", "aemail.example.comb"},
};

static void
ctx_for(struct spf_ctx *c, struct fake *f, struct policy_dns *dns, struct spf_request *req,
        const char *ip)
{
	*dns = (struct policy_dns){f, f_txt, f_addr, f_mx, f_ptr};
	*req = (struct spf_request){ip, "strong-bad@email.example.com", "mx.example.org",
	                            "mx.receiver.example", 1700000000};
	memset(c, 0, sizeof *c);
	c->req = req;
	c->dns = dns;
	(void)snprintf(c->sender, sizeof c->sender, "%s", req->mail_from);
	c->local_len = 10;
	c->sender_domain = c->sender + 11;
	CHECK(ctx_set_ip(c, ip));
}

static void
test_macros(void)
{
	struct fake f = {0};
	struct policy_dns dns;
	struct spf_request req;
	struct spf_ctx c;
	struct buf b;
	buf_init(&b, 4096);
	ctx_for(&c, &f, &dns, &req, "192.0.2.3");
	for (size_t i = 0; i < sizeof macro_v4 / sizeof macro_v4[0]; i++) {
		bool ends;
		struct slice s = slice_from(macro_v4[i].in);
		CHECK(macro_string_check(s, true, &ends) == NULL);
		CHECK_INT(macro_expand(&c, "email.example.com", s, &b), 0);
		CHECK_STR(buf_cstr(&b), macro_v4[i].want);
	}
	ctx_for(&c, &f, &dns, &req, "2001:db8::cb01");
	struct slice s = slice_from("%{ir}.%{v}._spf.%{d2}");
	CHECK_INT(macro_expand(&c, "email.example.com", s, &b), 0);
	CHECK_STR(buf_cstr(&b),
	          "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6."
	          "_spf.example.com");
	s = slice_from("%{c}");
	CHECK_INT(macro_expand(&c, "email.example.com", s, &b), 0);
	CHECK_STR(buf_cstr(&b), "2001:db8::cb01");
	s = slice_from("%{v}");
	CHECK_INT(macro_expand(&c, "email.example.com", s, &b), 0);
	CHECK_STR(buf_cstr(&b), "ip6");

	/* %{p}: the validated PTR name, preferring the domain */
	ctx_for(&c, &f, &dns, &req, "192.0.2.1");
	s = slice_from("%{p}");
	CHECK_INT(macro_expand(&c, "ptr.example", s, &b), 0);
	CHECK_STR(buf_cstr(&b), "host.ptr.example");
	CHECK_INT(macro_expand(&c, "other.example", s, &b), 0);
	CHECK_STR(buf_cstr(&b), "host.ptr.example"); /* other.example is not validated */

	/* syntax */
	static const char *const bad[] = {"%",     "%{", "%{s", "%{q}",    "%{s0}",
	                                  "%{sx}", "%x", "a b", "%{s1r-x}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		bool ends;
		CHECK(macro_string_check(slice_from(bad[i]), true, &ends) != NULL);
	}
	bool ends;
	CHECK(macro_string_check(slice_from("%{c}"), false, &ends) != NULL);
	CHECK(domain_spec_check(slice_from("%{d}")) == NULL);
	CHECK(domain_spec_check(slice_from("foo.%{d}")) == NULL);
	CHECK(domain_spec_check(slice_from("%{d}.com")) == NULL);
	CHECK(domain_spec_check(slice_from("x.123-4")) == NULL);
	CHECK(domain_spec_check(slice_from("x.com.")) == NULL);
	CHECK(domain_spec_check(slice_from("x.-com")) != NULL);
	CHECK(domain_spec_check(slice_from("%{d}x")) != NULL);
	CHECK(domain_spec_check(slice_from("com")) != NULL);
	buf_deinit(&b);
}

static void
test_names(void)
{
	CHECK_STR(spf_result_name(SPF_NONE), "none");
	CHECK_STR(spf_result_name(SPF_NEUTRAL), "neutral");
	CHECK_STR(spf_result_name(SPF_PASS), "pass");
	CHECK_STR(spf_result_name(SPF_FAIL), "fail");
	CHECK_STR(spf_result_name(SPF_SOFTFAIL), "softfail");
	CHECK_STR(spf_result_name(SPF_TEMPERROR), "temperror");
	CHECK_STR(spf_result_name(SPF_PERMERROR), "permerror");
	policy_strings_free(NULL, 0);
}

int
main(void)
{
	RUN(test_cases);
	RUN(test_identity);
	RUN(test_temperror);
	RUN(test_exists_queries);
	RUN(test_macros);
	RUN(test_names);
	return test_done("spf");
}
