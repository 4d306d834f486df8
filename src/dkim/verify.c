/* DKIM verification (RFC 6376 §6, RFC 8301, RFC 8463). The message is split once (the
 * signer's dkim_msg_parse); each DKIM-Signature field, top-down, is checked on its own:
 * tags (§6.1.1), expiry, key record (§6.1.2, through the caller's TXT callback), body hash and
 * header signature (§6.1.3). Canonicalised bodies are computed at most once per algorithm.
 * Result mapping (RFC 8601 §2.7.1): malformed signatures or key records, no key, a revoked key
 * (p= empty), a key unfit for the signature (k=, h=, s=, t=s) → permerror; a signature or body
 * hash that does not verify, x= in the past ("expired"), rsa-sha1 and RSA keys below 1024
 * bits (RFC 8301) → fail; a temporary DNS failure → temperror. */
#include "dkim.h"
#include "dkim_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util/base64.h"
#include "util/strconv.h"
#include "util/xalloc.h"

#define DKIM_DNAME_MAX   253  /* d= and s= (RFC 1035 §2.3.4) */
#define DKIM_RSA_MIN     1024 /* RFC 8301 §3.2 */
#define DKIM_SIG_B64_MAX 8192 /* b= and bh= text accepted (RSA-16384 signatures fit) */

static const char *const result_names[] = {
    [DKIM_RESULT_NONE] = "none",           [DKIM_RESULT_PASS] = "pass",
    [DKIM_RESULT_FAIL] = "fail",           [DKIM_RESULT_NEUTRAL] = "neutral",
    [DKIM_RESULT_TEMPERROR] = "temperror", [DKIM_RESULT_PERMERROR] = "permerror",
};

const char *
dkim_result_name(enum dkim_result r)
{
	if ((unsigned)r >= sizeof result_names / sizeof result_names[0])
		return "permerror";
	return result_names[r];
}

enum canon { CANON_SIMPLE, CANON_RELAXED };

/* Per-message state shared by the signatures. */
struct vctx {
	struct dkim_msg m;
	struct buf body[2]; /* canonicalised body by enum canon */
	bool body_done[2], body_bad[2];
	int64_t now;
	dkim_txt_fn *txt;
	void *txt_ctx;
};

/* Sets the result and a reason; returns the result for convenience. */
static enum dkim_result set(struct dkim_sig_result *r, enum dkim_result res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum dkim_result
set(struct dkim_sig_result *r, enum dkim_result res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap); /* truncation is fine for a reason */
	va_end(ap);
	r->result = res;
	return res;
}

/* Copies a slice into a fixed array, truncating, replacing control bytes by '?'. */
static void
copy_out(char *dst, size_t cap, struct slice s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s.p[i];
		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[n] = '\0';
}

static bool
domain_ok(struct slice d)
{
	if (d.len == 0 || d.len > DKIM_DNAME_MAX || d.p[0] == '.' || d.p[d.len - 1] == '.')
		return false;
	for (size_t i = 0; i < d.len; i++) {
		char c = d.p[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
		if (!ok || (c == '.' && d.p[i + 1] == '.'))
			return false;
	}
	return true;
}

/* true when sub equals dom or is a subdomain of it (ASCII case-insensitive). */
static bool
is_same_or_sub(struct slice sub, struct slice dom, bool exact)
{
	if (sub.len == dom.len)
		return strncasecmp(sub.p, dom.p, dom.len) == 0;
	if (exact || sub.len <= dom.len)
		return false;
	return sub.p[sub.len - dom.len - 1] == '.' &&
	       strncasecmp(sub.p + sub.len - dom.len, dom.p, dom.len) == 0;
}

/* Strips FWS from a b=/bh= value and decodes it. */
static int
decode_b64(struct slice v, struct buf *out)
{
	if (v.len == 0 || v.len > DKIM_SIG_B64_MAX)
		return -1;
	return base64_decode(v.p, v.len, 1, out);
}

static int
parse_u64(struct slice v, uint64_t *v_r)
{
	return strconv_u64(v, UINT64_MAX, v_r);
}

static const struct buf *
canon_body(struct vctx *vc, enum canon c)
{
	if (!vc->body_done[c]) {
		vc->body_done[c] = true;
		const unsigned char *b = vc->m.norm.data ? vc->m.norm.data + vc->m.body : NULL;
		size_t n = vc->m.norm.len - vc->m.body;
		int rc =
		    c == CANON_SIMPLE
		        ? dkim_canon_body_simple(b ? b : (const unsigned char *)"", n, &vc->body[c])
		        : dkim_canon_body_relaxed(b ? b : (const unsigned char *)"", n,
		                                  &vc->body[c]);
		vc->body_bad[c] = rc < 0;
	}
	return vc->body_bad[c] ? NULL : &vc->body[c];
}

/* Fetches and parses the key record; fills kr on success (result PASS). */
static enum dkim_result
get_key(struct vctx *vc, struct slice sel, struct slice dom, struct dkim_keyrec *kr,
        struct dkim_sig_result *r)
{
	char name[2 * DKIM_DNAME_MAX + 16];
	snprintf(name, sizeof name, "%.*s._domainkey.%.*s", (int)sel.len, sel.p, (int)dom.len,
	         dom.p);
	char **v = NULL;
	size_t n = 0;
	int rc = vc->txt(vc->txt_ctx, name, &v, &n);
	if (rc < 0)
		return set(r, DKIM_RESULT_TEMPERROR, "key lookup failed temporarily");
	if (rc > 0 || n == 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return set(r, DKIM_RESULT_PERMERROR, "no key for signature");
	}
	/* RFC 6376 §3.6.2.2: several records make the result undefined; use the first that
	 * parses. */
	const char *why = "key record syntax error";
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		const char *first_why = NULL;
		if (!found) {
			if (dkim_keyrec_parse(v[i], strlen(v[i]), kr, &first_why) == 0)
				found = true;
			else
				dkim_keyrec_deinit(kr);
			if (i == 0 && first_why != NULL)
				why = first_why;
		}
		free(v[i]);
	}
	free(v);
	if (!found)
		return set(r, DKIM_RESULT_PERMERROR, "%s", why);
	return DKIM_RESULT_PASS;
}

/* Verifies sig over data with the key kr (type already checked against a=). */
static enum dkim_result
check_crypto(const struct dkim_keyrec *kr, bool rsa, const struct buf *data, const struct buf *sig,
             struct dkim_sig_result *r)
{
	EVP_PKEY *key = NULL;
	if (rsa) {
		const unsigned char *p = kr->key.data;
		key = d2i_PUBKEY(NULL, &p, (long)kr->key.len);
		if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
			EVP_PKEY_free(key);
			ERR_clear_error();
			return set(r, DKIM_RESULT_PERMERROR, "key p= is not an RSA public key");
		}
		if (EVP_PKEY_get_bits(key) < DKIM_RSA_MIN) {
			int bits = EVP_PKEY_get_bits(key);
			EVP_PKEY_free(key);
			return set(r, DKIM_RESULT_FAIL, "RSA key of %d bits is below 1024", bits);
		}
	} else {
		if (kr->key.len != 32)
			return set(r, DKIM_RESULT_PERMERROR, "key p= is not an Ed25519 key");
		key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, kr->key.data, 32);
		if (key == NULL) {
			ERR_clear_error();
			return set(r, DKIM_RESULT_PERMERROR, "key p= is not an Ed25519 key");
		}
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;
	if (ctx != NULL) {
		if (rsa) {
			ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
			     EVP_DigestVerify(ctx, sig->data, sig->len, data->data, data->len) == 1;
		} else {
			/* RFC 8463 §3: PureEdDSA over the SHA-256 of the header data */
			unsigned char h[EVP_MAX_MD_SIZE];
			unsigned hn = 0;
			ok = EVP_Digest(data->data, data->len, h, &hn, EVP_sha256(), NULL) == 1 &&
			     EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
			     EVP_DigestVerify(ctx, sig->data, sig->len, h, hn) == 1;
		}
	}
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	if (!ok)
		return set(r, DKIM_RESULT_FAIL, "signature did not verify");
	return DKIM_RESULT_PASS;
}

/* Appends the canonical form of field bytes [p, p + n) to data. */
static int
canon_header(enum canon c, const unsigned char *p, size_t n, struct buf *data)
{
	if (c == CANON_RELAXED)
		return dkim_canon_header_relaxed(p, n, data);
	if (buf_append(data, p, n) < 0)
		return -1;
	/* a last header line without a line end still ends with CRLF in the signed data */
	if (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n')
		return buf_append(data, "\r\n", 2);
	return 0;
}

/* Builds the header hash input (§3.7): the fields named in h=, bottom-up per name, then the
 * signature field itself (index self) with b= emptied and without its final CRLF. */
static int
header_data(struct vctx *vc, size_t self, const struct dkim_tags *t, size_t value_off, enum canon c,
            struct buf *data)
{
	const struct dkim_msg *m = &vc->m;
	bool used[DKIM_MAX_FIELDS] = {false};
	used[self] = true;
	const struct dkim_tag *h = dkim_tags_get(t, "h");
	struct slice name;
	size_t pos = 0;
	while (dkim_tags_list_next(h->value, &pos, &name)) {
		for (size_t i = m->n_fields; i-- > 0;) {
			const struct dkim_field *f = &m->fields[i];
			if (used[i] || !dkim_msg_field_is(m, f, name))
				continue;
			used[i] = true;
			if (canon_header(c, m->norm.data + f->start, f->len, data) < 0)
				return -1;
			break;
		}
	}
	/* the signature field with the b= value (all of it, FWS included) removed */
	const struct dkim_field *f = &m->fields[self];
	const struct dkim_tag *b = dkim_tags_get(t, "b");
	size_t cut_from = value_off + b->raw_start, cut_to = value_off + b->raw_end;
	struct buf tmp;
	buf_init(&tmp, 0);
	int rc = 0;
	if (buf_append(&tmp, m->norm.data + f->start, cut_from) < 0 ||
	    buf_append(&tmp, m->norm.data + f->start + cut_to, f->len - cut_to) < 0 ||
	    canon_header(c, tmp.data, tmp.len, data) < 0)
		rc = -1;
	buf_deinit(&tmp);
	if (rc == 0)
		data->len -= 2; /* no final CRLF (§3.7) */
	return rc;
}

static enum dkim_result
verify_one(struct vctx *vc, size_t idx, struct dkim_sig_result *r)
{
	const struct dkim_msg *m = &vc->m;
	const struct dkim_field *f = &m->fields[idx];
	const char *fp = (const char *)m->norm.data + f->start;
	/* the value: after the colon up to the field's end, final CRLF excluded */
	size_t colon = 0;
	while (fp[colon] != ':')
		colon++;
	size_t vlen = f->len - colon - 1;
	if (vlen >= 2 && fp[f->len - 2] == '\r' && fp[f->len - 1] == '\n')
		vlen -= 2;
	struct slice value = slice_make(fp + colon + 1, vlen);

	struct dkim_tags t;
	const char *why;
	if (dkim_tags_parse(value.p, value.len, &t, &why) < 0)
		return set(r, DKIM_RESULT_PERMERROR, "%s", why);
	static const char *const required[] = {"v", "a", "b", "bh", "d", "h", "s"};
	const struct dkim_tag *d = dkim_tags_get(&t, "d"), *s = dkim_tags_get(&t, "s");
	const struct dkim_tag *a = dkim_tags_get(&t, "a"), *b = dkim_tags_get(&t, "b");
	const struct dkim_tag *i = dkim_tags_get(&t, "i");
	if (d != NULL)
		copy_out(r->domain, sizeof r->domain, d->value);
	if (s != NULL)
		copy_out(r->selector, sizeof r->selector, s->value);
	if (a != NULL)
		copy_out(r->algo, sizeof r->algo, a->value);
	if (b != NULL) {
		char pre[9];
		size_t n = 0;
		for (size_t k = 0; k < b->value.len && n < 8; k++)
			if (b->value.p[k] != ' ' && b->value.p[k] != '\t' &&
			    b->value.p[k] != '\r' && b->value.p[k] != '\n')
				pre[n++] = b->value.p[k];
		copy_out(r->b_prefix, sizeof r->b_prefix, slice_make(pre, n));
	}
	if (i != NULL) {
		copy_out(r->identity, sizeof r->identity, i->value);
	} else if (d != NULL) {
		r->identity[0] = '@';
		copy_out(r->identity + 1, sizeof r->identity - 1, d->value);
	}
	for (size_t k = 0; k < sizeof required / sizeof required[0]; k++)
		if (dkim_tags_get(&t, required[k]) == NULL)
			return set(r, DKIM_RESULT_PERMERROR,
			           "missing required tag %s=", required[k]);
	if (!slice_eq(dkim_tags_get(&t, "v")->value, "1"))
		return set(r, DKIM_RESULT_PERMERROR, "unsupported v=");

	/* a= */
	bool rsa;
	if (slice_eq(a->value, "rsa-sha256"))
		rsa = true;
	else if (slice_eq(a->value, "ed25519-sha256"))
		rsa = false;
	else if (slice_eq(a->value, "rsa-sha1"))
		return set(r, DKIM_RESULT_FAIL, "rsa-sha1 is not accepted");
	else
		return set(r, DKIM_RESULT_PERMERROR, "unknown algorithm");

	/* c= (default simple/simple; "x" alone means x/simple) */
	enum canon hc = CANON_SIMPLE, bc = CANON_SIMPLE;
	const struct dkim_tag *c = dkim_tags_get(&t, "c");
	if (c != NULL) {
		struct slice hs, bs = slice_cut(c->value, '/', &hs);
		if (slice_eq(hs, "relaxed"))
			hc = CANON_RELAXED;
		else if (!slice_eq(hs, "simple"))
			return set(r, DKIM_RESULT_PERMERROR, "unknown canonicalization");
		if (bs.p != NULL) {
			if (slice_eq(bs, "relaxed"))
				bc = CANON_RELAXED;
			else if (!slice_eq(bs, "simple"))
				return set(r, DKIM_RESULT_PERMERROR, "unknown canonicalization");
		}
	}
	/* q= must offer dns/txt */
	const struct dkim_tag *q = dkim_tags_get(&t, "q");
	if (q != NULL) {
		bool ok = false;
		struct slice e;
		size_t pos = 0;
		while (dkim_tags_list_next(q->value, &pos, &e))
			ok |= slice_eq(e, "dns/txt");
		if (!ok)
			return set(r, DKIM_RESULT_PERMERROR, "unsupported query method");
	}
	if (!domain_ok(d->value))
		return set(r, DKIM_RESULT_PERMERROR, "bad d= domain");
	if (!domain_ok(s->value))
		return set(r, DKIM_RESULT_PERMERROR, "bad s= selector");
	/* i= : [local-part] "@" domain, in d= or a subdomain of it */
	struct slice idom = d->value;
	if (i != NULL) {
		const char *at = memrchr(i->value.p, '@', i->value.len);
		if (at == NULL)
			return set(r, DKIM_RESULT_PERMERROR, "i= has no @");
		idom = slice_make(at + 1, i->value.len - (size_t)(at + 1 - i->value.p));
		if (!is_same_or_sub(idom, d->value, false))
			return set(r, DKIM_RESULT_PERMERROR, "i= is not in d=");
	}
	/* h= must name From and no empty names */
	const struct dkim_tag *h = dkim_tags_get(&t, "h");
	bool from = false;
	struct slice e;
	size_t pos = 0;
	while (dkim_tags_list_next(h->value, &pos, &e)) {
		if (e.len == 0)
			return set(r, DKIM_RESULT_PERMERROR, "empty name in h=");
		from |= slice_eq_nocase(e, "from");
	}
	if (!from)
		return set(r, DKIM_RESULT_PERMERROR, "h= does not include From");
	/* l=, t=, x= */
	uint64_t l = 0, ts = 0, xs = 0;
	const struct dkim_tag *lt = dkim_tags_get(&t, "l"), *tt = dkim_tags_get(&t, "t"),
	                      *xt = dkim_tags_get(&t, "x");
	if (lt != NULL && parse_u64(lt->value, &l) < 0)
		return set(r, DKIM_RESULT_PERMERROR, "bad l=");
	if (tt != NULL && parse_u64(tt->value, &ts) < 0)
		return set(r, DKIM_RESULT_PERMERROR, "bad t=");
	if (xt != NULL && parse_u64(xt->value, &xs) < 0)
		return set(r, DKIM_RESULT_PERMERROR, "bad x=");
	if (tt != NULL && xt != NULL && xs < ts)
		return set(r, DKIM_RESULT_PERMERROR, "x= is before t=");
	/* bh=, b= */
	enum dkim_result res = DKIM_RESULT_PASS;
	struct buf bh, sig, data;
	buf_init(&bh, DKIM_SIG_B64_MAX);
	buf_init(&sig, DKIM_SIG_B64_MAX);
	buf_init(&data, 0);
	struct dkim_keyrec kr;
	bool have_key = false;
	if (decode_b64(dkim_tags_get(&t, "bh")->value, &bh) < 0) {
		res = set(r, DKIM_RESULT_PERMERROR, "bh= is not base64");
		goto out;
	}
	if (decode_b64(b->value, &sig) < 0) {
		res = set(r, DKIM_RESULT_PERMERROR, "b= is not base64");
		goto out;
	}
	/* §6.1.1: an expired signature is not checked further */
	if (xt != NULL && vc->now >= 0 && (uint64_t)vc->now > xs) {
		res = set(r, DKIM_RESULT_FAIL, "expired");
		goto out;
	}

	/* the key (§6.1.2) */
	res = get_key(vc, s->value, d->value, &kr, r);
	if (res != DKIM_RESULT_PASS)
		goto out;
	have_key = true;
	if (kr.revoked) {
		res = set(r, DKIM_RESULT_PERMERROR, "key revoked");
		goto out;
	}
	if ((kr.type == DKIM_KEY_RSA) != rsa) {
		res = set(r, DKIM_RESULT_PERMERROR, "key k= does not match a=");
		goto out;
	}
	if (!kr.sha256_ok) {
		res = set(r, DKIM_RESULT_PERMERROR, "key h= does not allow sha256");
		goto out;
	}
	if (!kr.email_ok) {
		res = set(r, DKIM_RESULT_PERMERROR, "key s= does not allow email");
		goto out;
	}
	if (kr.strict && !is_same_or_sub(idom, d->value, true)) {
		res = set(r, DKIM_RESULT_PERMERROR, "key t=s forbids an i= subdomain");
		goto out;
	}

	/* body hash (§6.1.3 step 2 ... 4) */
	const struct buf *cb = canon_body(vc, bc);
	if (cb == NULL) {
		res = set(r, DKIM_RESULT_PERMERROR, "body too large");
		goto out;
	}
	size_t blen = cb->len;
	if (lt != NULL) {
		if (l > cb->len) {
			res = set(r, DKIM_RESULT_FAIL, "l= is longer than the body");
			goto out;
		}
		if (l < cb->len)
			r->body_partial = true;
		blen = (size_t)l;
	}
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned hlen = 0;
	if (EVP_Digest(cb->data ? cb->data : (const unsigned char *)"", blen, hash, &hlen,
	               EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		res = set(r, DKIM_RESULT_TEMPERROR, "SHA-256 failed");
		goto out;
	}
	if (bh.len != hlen || memcmp(bh.data, hash, hlen) != 0) {
		res = set(r, DKIM_RESULT_FAIL, "body hash did not verify");
		goto out;
	}

	/* header signature */
	if (header_data(vc, idx, &t, colon + 1, hc, &data) < 0) {
		res = set(r, DKIM_RESULT_PERMERROR, "header too large");
		goto out;
	}
	res = check_crypto(&kr, rsa, &data, &sig, r);
out:
	if (have_key)
		dkim_keyrec_deinit(&kr);
	buf_deinit(&data);
	buf_deinit(&sig);
	buf_deinit(&bh);
	return res;
}

void
dkim_verify(const unsigned char *msg, size_t len, int64_t now, dkim_txt_fn *txt, void *ctx,
            struct dkim_verify_result *out)
{
	memset(out, 0, sizeof *out);
	struct vctx vc;
	memset(&vc, 0, sizeof vc);
	vc.now = now;
	vc.txt = txt;
	vc.txt_ctx = ctx;
	buf_init(&vc.body[0], 0);
	buf_init(&vc.body[1], 0);
	if (dkim_msg_parse(msg, len, &vc.m, NULL) == 0) {
		for (size_t i = 0; i < vc.m.n_fields && out->n < DKIM_VERIFY_MAX; i++) {
			if (!dkim_msg_field_is(&vc.m, &vc.m.fields[i],
			                       slice_from("DKIM-Signature")))
				continue;
			struct dkim_sig_result *r = &out->sigs[out->n++];
			if (verify_one(&vc, i, r) == DKIM_RESULT_PASS) {
				r->result = DKIM_RESULT_PASS;
				r->reason[0] = '\0';
			}
		}
	}
	buf_deinit(&vc.body[0]);
	buf_deinit(&vc.body[1]);
	dkim_msg_deinit(&vc.m);
}
