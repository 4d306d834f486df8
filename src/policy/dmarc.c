/* dmarc - DMARC (RFC 7489): the author domain from the single From: address, policy record
 * discovery at _dmarc.<from domain> then _dmarc.<organisational domain> (libpsl), record tags
 * (v p sp adkim aspf pct), identifier alignment for SPF and DKIM, and pct sampling. No I/O:
 * DNS goes through struct policy_dns. */
#include <ctype.h>
#include <libpsl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/hdr.h"
#include "policy/policy.h"
#include "util/arena.h"
#include "util/rand.h"
#include "util/strconv.h"

#define DMARC_DOMAIN_MAX 253  /* RFC 1035 §2.3.4 (text form) */
#define DMARC_RECORD_MAX 4096 /* policy: longer TXT records are not DMARC records */

struct dmarc_record {
	enum dmarc_policy p, sp;
	bool has_sp;
	bool adkim_strict, aspf_strict;
	unsigned pct;
};

static const char *const dmarc_result_names[] = {
    [DMARC_NONE] = "none",           [DMARC_PASS] = "pass",           [DMARC_FAIL] = "fail",
    [DMARC_TEMPERROR] = "temperror", [DMARC_PERMERROR] = "permerror",
};

static const char *const dmarc_policy_names[] = {
    [DMARC_POLICY_NONE] = "none",
    [DMARC_POLICY_QUARANTINE] = "quarantine",
    [DMARC_POLICY_REJECT] = "reject",
};

const char *
dmarc_result_name(enum dmarc_result r)
{
	if ((unsigned)r >= sizeof dmarc_result_names / sizeof dmarc_result_names[0])
		return "permerror";
	return dmarc_result_names[r];
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	if ((unsigned)p >= sizeof dmarc_policy_names / sizeof dmarc_policy_names[0])
		return "none";
	return dmarc_policy_names[p];
}

/* dmarc_lower - name lower-cased into out (size n) without a trailing dot; "" when it does not
 * fit. */
static void
dmarc_lower(const char *name, char *out, size_t n)
{
	size_t len = name ? strlen(name) : 0;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (n == 0)
		return;
	if (len >= n) {
		out[0] = '\0';
		return;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[len] = '\0';
}

void
dmarc_org_domain(const char *name, char *out, size_t n)
{
	char lower[DMARC_DOMAIN_MAX + 2];
	if (n == 0)
		return;
	dmarc_lower(name, lower, sizeof lower);
	const psl_ctx_t *psl = psl_builtin();
	const char *reg =
	    psl != NULL && lower[0] != '\0' ? psl_registrable_domain(psl, lower) : NULL;
	const char *src = reg != NULL ? reg : lower;
	if (strlen(src) >= n) {
		out[0] = '\0';
		return;
	}
	memcpy(out, src, strlen(src) + 1);
}

/* dmarc_aligned - identifier alignment (RFC 7489 §3.1): strict = equal, relaxed = same
 * organisational domain. */
static bool
dmarc_aligned(const char *id_domain, const char *from_domain, bool strict)
{
	char a[DMARC_DOMAIN_MAX + 2], b[DMARC_DOMAIN_MAX + 2];
	dmarc_lower(id_domain, a, sizeof a);
	if (a[0] == '\0')
		return false;
	if (strict)
		return strcmp(a, from_domain) == 0;
	dmarc_org_domain(a, a, sizeof a);
	dmarc_org_domain(from_domain, b, sizeof b);
	return a[0] != '\0' && strcmp(a, b) == 0;
}

static bool
dmarc_domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;
	if (len == 0 || len > DMARC_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum(c) || c == '-' || c == '_') || ++label > 63)
			return false;
	}
	return label > 0;
}

/* dmarc_from_domain - the domain of the one From: address. Returns 0, or -1 with a reason. */
static int
dmarc_from_domain(const unsigned char *msg, size_t len, char *out, size_t n, const char **why_r)
{
	struct hdr_iter it;
	struct hdr_field f, from = {{NULL, 0}, {NULL, 0}};
	const char *err = NULL;
	unsigned nfrom = 0;
	enum hdr_next r;
	hdr_iter_init(&it, msg, len);
	while ((r = hdr_iter_next(&it, &f, &err)) == HDR_FIELD)
		if (slice_eq_nocase(f.name, "From") && nfrom++ == 0)
			from = f;
	if (r == HDR_ERROR) {
		*why_r = "malformed header section";
		return -1;
	}
	if (nfrom != 1) {
		*why_r = nfrom == 0 ? "no From field" : "several From fields";
		return -1;
	}
	struct buf u;
	buf_init(&u, HDR_FIELD_MAX);
	struct arena *a = arena_new("dmarc-from", 0);
	char **addrs = NULL;
	size_t na = 0;
	int rc = -1;
	if (hdr_unfold(from.value, &u) < 0) {
		*why_r = "From field too long";
	} else if (hdr_addr_list(buf_slice(&u), a, &addrs, &na, &err) < 0) {
		*why_r = "unparsable From field";
	} else if (na != 1) {
		*why_r = na == 0 ? "no From address" : "several From addresses";
	} else {
		const char *at = strrchr(addrs[0], '@');
		dmarc_lower(at != NULL ? at + 1 : "", out, n);
		if (!dmarc_domain_ok(out)) {
			*why_r = "invalid From domain";
			out[0] = '\0';
		} else {
			rc = 0;
		}
	}
	arena_free(&a);
	buf_deinit(&u);
	return rc;
}

static int
dmarc_policy_parse(struct slice v, enum dmarc_policy *p_r)
{
	for (size_t i = 0; i < sizeof dmarc_policy_names / sizeof dmarc_policy_names[0]; i++)
		if (slice_eq_nocase(v, dmarc_policy_names[i])) {
			*p_r = (enum dmarc_policy)i;
			return 0;
		}
	return -1;
}

/* dmarc_record_parse - a tag list (RFC 7489 §6.3, §6.4) whose first tag must be v=DMARC1.
 * Unknown tags are ignored; an invalid or missing p is none (§6.6.3), invalid sp is p, invalid
 * adkim/aspf are relaxed, invalid pct is 100. Returns 0, or -1 when it is not a DMARC record. */
static int
dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec)
{
	*rec = (struct dmarc_record){.pct = 100};
	if (len > DMARC_RECORD_MAX || memchr(txt, '\0', len) != NULL)
		return -1;
	struct slice rest = slice_make(txt, len), tag;
	bool first = true, have_p = false;
	while (rest.len > 0 || first) {
		rest = slice_cut(rest, ';', &tag);
		struct slice name, value = slice_cut(tag, '=', &name);
		name = slice_trim(name);
		value = slice_trim(value);
		if (first) {
			if (!slice_eq_nocase(name, "v") || value.p == NULL ||
			    !slice_eq(value, "DMARC1"))
				return -1;
			first = false;
		} else if (name.len == 0 || value.p == NULL) {
			continue; /* empty or malformed element */
		} else if (slice_eq_nocase(name, "p")) {
			have_p = dmarc_policy_parse(value, &rec->p) == 0;
		} else if (slice_eq_nocase(name, "sp")) {
			rec->has_sp = dmarc_policy_parse(value, &rec->sp) == 0;
		} else if (slice_eq_nocase(name, "adkim")) {
			rec->adkim_strict = slice_eq_nocase(value, "s");
		} else if (slice_eq_nocase(name, "aspf")) {
			rec->aspf_strict = slice_eq_nocase(value, "s");
		} else if (slice_eq_nocase(name, "pct")) {
			uint64_t v;
			rec->pct = strconv_u64(value, 100, &v) == 0 ? (unsigned)v : 100;
		}
		if (rest.p == NULL)
			break;
	}
	if (!have_p)
		rec->p = DMARC_POLICY_NONE;
	return 0;
}

/* dmarc_discover - the record at _dmarc.<domain>. Returns 0 with *rec, 1 when there is no
 * (single) DMARC record, 2 when there are several, -1 on a temporary DNS failure. */
static int
dmarc_discover(const struct policy_dns *dns, const char *domain, struct dmarc_record *rec)
{
	char name[DMARC_DOMAIN_MAX + 16];
	int w = snprintf(name, sizeof name, "_dmarc.%s", domain);
	if (w < 0 || (size_t)w >= sizeof name || dns == NULL || dns->txt == NULL)
		return 1;
	char **v = NULL;
	size_t n = 0;
	int rc = dns->txt(dns->ctx, name, &v, &n);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		policy_strings_free(v, n);
		return 1;
	}
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		struct dmarc_record r;
		if (v[i] != NULL && dmarc_record_parse(v[i], strlen(v[i]), &r) == 0 && found++ == 0)
			*rec = r;
	}
	policy_strings_free(v, n);
	return found == 0 ? 1 : found == 1 ? 0 : 2;
}

static int
dmarc_random_sample(void)
{
	uint32_t x;
	do
		rand_bytes(&x, sizeof x);
	while (x >= UINT32_MAX - UINT32_MAX % 100);
	return (int)(x % 100);
}

void
dmarc_check(const unsigned char *msg, size_t len, const struct spf_outcome *spf,
            const struct dkim_verify_result *dkim, const struct policy_dns *dns,
            int (*sample)(void *ctx), void *sample_ctx, struct dmarc_outcome *out)
{
	memset(out, 0, sizeof *out);
	const char *why = NULL;
	if (dmarc_from_domain(msg, len, out->from_domain, sizeof out->from_domain, &why) < 0) {
		out->result = DMARC_PERMERROR;
		(void)snprintf(out->reason, sizeof out->reason, "%s", why);
		return;
	}
	dmarc_org_domain(out->from_domain, out->org_domain, sizeof out->org_domain);

	struct dmarc_record rec;
	bool at_org = false;
	const char *where = out->from_domain;
	int rc = dmarc_discover(dns, out->from_domain, &rec);
	if (rc == 1 && strcmp(out->org_domain, out->from_domain) != 0) {
		at_org = true;
		where = out->org_domain;
		rc = dmarc_discover(dns, out->org_domain, &rec);
	}
	if (rc < 0) {
		out->result = DMARC_TEMPERROR;
		(void)snprintf(out->reason, sizeof out->reason, "DNS failure at _dmarc.%.120s",
		               where);
		return;
	}
	if (rc > 0) {
		out->result = DMARC_NONE;
		(void)snprintf(out->reason, sizeof out->reason, "%s",
		               rc == 2 ? "several DMARC records" : "no DMARC record");
		return;
	}
	out->policy = at_org && rec.has_sp ? rec.sp : rec.p;

	/* SPF: the MAIL FROM identity (postmaster@helo for the null sender, RFC 7208 §2.4). */
	if (spf != NULL && spf->result == SPF_PASS &&
	    dmarc_aligned(spf->domain, out->from_domain, rec.aspf_strict))
		out->spf_aligned = true;
	const char *dkim_d = NULL;
	for (size_t i = 0; dkim != NULL && i < dkim->n && i < DKIM_VERIFY_MAX; i++) {
		const struct dkim_sig_result *s = &dkim->sigs[i];
		if (s->result == DKIM_RESULT_PASS &&
		    dmarc_aligned(s->domain, out->from_domain, rec.adkim_strict)) {
			out->dkim_aligned = true;
			dkim_d = s->domain;
			break;
		}
	}
	if (out->dkim_aligned || out->spf_aligned) {
		out->result = DMARC_PASS;
		out->applied = DMARC_POLICY_NONE;
		if (out->dkim_aligned)
			(void)snprintf(out->reason, sizeof out->reason, "aligned DKIM d=%.120s",
			               dkim_d);
		else
			(void)snprintf(out->reason, sizeof out->reason, "aligned SPF %.120s",
			               spf->domain);
		return;
	}
	out->result = DMARC_FAIL;
	int roll = sample != NULL ? sample(sample_ctx) : dmarc_random_sample();
	bool sampled = roll >= 0 && (unsigned)roll < rec.pct;
	out->applied = sampled ? out->policy : DMARC_POLICY_NONE;
	(void)snprintf(out->reason, sizeof out->reason, "neither SPF nor DKIM aligned%s",
	               sampled || out->policy == DMARC_POLICY_NONE ? "" : " (pct sampled out)");
}
