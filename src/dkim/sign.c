/* DKIM signing (RFC 6376 §5) with rsa-sha256 and ed25519-sha256 (RFC 8463), relaxed/relaxed.
 * The message is first copied with bare LF turned into CRLF; the header fields are located in
 * that copy, the body hash is computed once and every signer builds its own field over the
 * original header (never over another signature). */
#include "dkim.h"
#include "dkim_private.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "util/base64.h"
#include "util/xalloc.h"

#define DKIM_NAME_MAX   253 /* d= and s= length bound (RFC 1035 §2.3.4) */
#define DKIM_FOLD_WIDTH 76  /* fold the field before this column */
#define DKIM_B64_CHUNK  72  /* b= is split into chunks of this many characters */

struct dkim_signer {
	char *domain, *selector;
	enum dkim_algo algo;
	EVP_PKEY *key;
};

/* The signed fields (RFC 6376 §5.4.1 recommendations) and whether each is oversigned. */
static const struct {
	const char *name;
	bool oversign;
} sign_fields[] = {
    {"From", true},
    {"To", true},
    {"Cc", true},
    {"Subject", true},
    {"Date", true},
    {"Message-ID", true},
    {"Reply-To", true},
    {"In-Reply-To", false},
    {"References", false},
    {"MIME-Version", true},
    {"Content-Type", true},
    {"Content-Transfer-Encoding", true},
    {"Content-Disposition", true},
};
#define N_SIGN_FIELDS (sizeof sign_fields / sizeof sign_fields[0])

static int
crypto_fail(struct err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[160] = "unknown error";
	if (e != 0)
		ERR_error_string_n(e, msg, sizeof msg);
	ERR_clear_error();
	return err_set(err, DKIM_ERR_CRYPTO, "%s: %s", what, msg);
}

static bool
name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > DKIM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
		if (!ok)
			return false;
	}
	return true;
}

struct dkim_signer *
dkim_signer_new(const char *domain, const char *selector, enum dkim_algo algo,
                const char *private_pem, struct err *err)
{
	if (!name_ok(domain) || !name_ok(selector)) {
		err_set(err, DKIM_ERR_ARG, "bad DKIM domain or selector");
		return NULL;
	}
	if (algo != DKIM_ALGO_ED25519 && algo != DKIM_ALGO_RSA) {
		err_set(err, DKIM_ERR_ARG, "unknown DKIM algorithm");
		return NULL;
	}
	BIO *bio = BIO_new_mem_buf(private_pem, -1);
	if (bio == NULL) {
		crypto_fail(err, "BIO_new_mem_buf");
		return NULL;
	}
	EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL) {
		ERR_clear_error();
		err_set(err, DKIM_ERR_KEY, "DKIM private key does not parse");
		return NULL;
	}
	int want = algo == DKIM_ALGO_RSA ? EVP_PKEY_RSA : EVP_PKEY_ED25519;
	if (EVP_PKEY_get_base_id(key) != want) {
		EVP_PKEY_free(key);
		err_set(err, DKIM_ERR_KEY, "DKIM private key is not of type %s",
		        dkim_algo_name(algo));
		return NULL;
	}
	if (algo == DKIM_ALGO_RSA && EVP_PKEY_get_bits(key) < 1024) {
		EVP_PKEY_free(key);
		err_set(err, DKIM_ERR_KEY, "RSA DKIM key below 1024 bits (RFC 8301)");
		return NULL;
	}
	struct dkim_signer *s = xcalloc(1, sizeof *s);
	s->domain = xstrdup(domain);
	s->selector = xstrdup(selector);
	s->algo = algo;
	s->key = key;
	return s;
}

void
dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s->selector);
	free(s->domain);
	x_free(sp);
}

void
dkim_msg_deinit(struct dkim_msg *p)
{
	buf_deinit(&p->norm);
	free(p->fields);
}

int
dkim_msg_parse(const unsigned char *msg, size_t len, struct dkim_msg *p, struct err *err)
{
	memset(p, 0, sizeof *p);
	buf_init(&p->norm, 0);
	/* copy runs up to each LF at once; a bare LF becomes CRLF */
	for (size_t i = 0; i < len;) {
		const unsigned char *lf = memchr(msg + i, '\n', len - i);
		size_t run = lf ? (size_t)(lf - (msg + i)) : len - i;
		int rc = buf_append(&p->norm, msg + i, run);
		i += run;
		if (rc == 0 && i < len) {
			bool bare = i == 0 || msg[i - 1] != '\r';
			rc = bare ? buf_append(&p->norm, "\r\n", 2)
			          : buf_append_byte(&p->norm, '\n');
			i++;
		}
		if (rc < 0)
			return err_set(err, DKIM_ERR_SIZE, "message too large");
	}
	const unsigned char *m = p->norm.data;
	size_t n = p->norm.len, pos = 0, cap = 0;
	p->body = n;
	while (pos < n) {
		size_t e = pos;
		while (e + 1 < n && !(m[e] == '\r' && m[e + 1] == '\n'))
			e++;
		size_t next = e + 1 < n ? e + 2 : n; /* after CRLF, or the end */
		if (e == pos && e + 1 < n) {         /* empty line: the separator */
			p->body = next;
			break;
		}
		if ((m[pos] == ' ' || m[pos] == '\t') && p->n_fields > 0) {
			p->fields[p->n_fields - 1].len = next - p->fields[p->n_fields - 1].start;
		} else if (p->n_fields < DKIM_MAX_FIELDS) {
			if (p->n_fields == cap) {
				cap = cap ? cap * 2 : 32;
				p->fields = xrealloc(p->fields, cap * sizeof *p->fields);
			}
			struct dkim_field *f = &p->fields[p->n_fields++];
			f->start = pos;
			f->len = next - pos;
			f->name_len = 0;
			for (size_t i = pos; i < e; i++) {
				if (m[i] == ':') {
					size_t nl = i - pos;
					while (nl > 0 &&
					       (m[pos + nl - 1] == ' ' || m[pos + nl - 1] == '\t'))
						nl--;
					f->name_len = nl;
					break;
				}
			}
		}
		pos = next;
	}
	return 0;
}

bool
dkim_msg_field_is(const struct dkim_msg *p, const struct dkim_field *f, struct slice name)
{
	return f->name_len == name.len &&
	       strncasecmp((const char *)p->norm.data + f->start, name.p, name.len) == 0;
}

static bool
field_is(const struct dkim_msg *p, const struct dkim_field *f, const char *name)
{
	return dkim_msg_field_is(p, f, slice_from(name));
}

static bool
used_from(const struct dkim_msg *p, const bool *used)
{
	for (size_t i = 0; i < p->n_fields; i++)
		if (used[i] && field_is(p, &p->fields[i], "From"))
			return true;
	return false;
}

/* Appends s to out, folding first (CRLF TAB) when the current line would pass the width. */
static int
fold_append(struct buf *out, size_t *col, const char *s, bool space_before)
{
	size_t n = strlen(s);
	if (*col + n + 1 > DKIM_FOLD_WIDTH && *col > 1) {
		if (buf_append(out, "\r\n\t", 3) < 0)
			return -1;
		*col = 1;
	} else if (space_before) {
		if (buf_append_byte(out, ' ') < 0)
			return -1;
		(*col)++;
	}
	if (buf_append(out, s, n) < 0)
		return -1;
	*col += n;
	return 0;
}

static int
sign_one(const struct dkim_signer *s, const struct dkim_msg *p, const char *bh, int64_t now,
         struct buf *out, struct err *err)
{
	struct buf field, data, sig;
	buf_init(&field, 0);
	buf_init(&data, 0);
	buf_init(&sig, 0);
	int ret = -1;
	char tmp[DKIM_NAME_MAX + 64];
	size_t col = 0;
	unsigned char *rawsig = NULL;
	EVP_MD_CTX *ctx = NULL;

	/* Field text up to "b=", folded. */
	if (buf_append_str(&field, "DKIM-Signature: v=1;") < 0)
		goto overflow;
	col = field.len;
	snprintf(tmp, sizeof tmp, "a=%s-sha256;", s->algo == DKIM_ALGO_RSA ? "rsa" : "ed25519");
	if (fold_append(&field, &col, tmp, true) < 0 ||
	    fold_append(&field, &col, "c=relaxed/relaxed;", true) < 0)
		goto overflow;
	snprintf(tmp, sizeof tmp, "d=%s;", s->domain);
	if (fold_append(&field, &col, tmp, true) < 0)
		goto overflow;
	snprintf(tmp, sizeof tmp, "s=%s;", s->selector);
	if (fold_append(&field, &col, tmp, true) < 0)
		goto overflow;
	snprintf(tmp, sizeof tmp, "t=%lld;", (long long)now);
	if (fold_append(&field, &col, tmp, true) < 0)
		goto overflow;

	/* h=: each name as often as it occurs (+1 when oversigned); the signed data takes the
	 * instances bottom-up (§5.4.2), a listed name with no instance left contributes nothing. */
	bool first = true;
	bool used[DKIM_MAX_FIELDS] = {false};
	for (size_t k = 0; k < N_SIGN_FIELDS; k++) {
		size_t count = 0;
		for (size_t i = 0; i < p->n_fields; i++)
			count += field_is(p, &p->fields[i], sign_fields[k].name);
		if (count == 0)
			continue;
		size_t listed = count + (sign_fields[k].oversign ? 1 : 0);
		for (size_t j = 0; j < listed; j++) {
			snprintf(tmp, sizeof tmp, "%s%s%s", first ? "h=" : "", sign_fields[k].name,
			         ":");
			if (fold_append(&field, &col, tmp, first) < 0)
				goto overflow;
			first = false;
			for (size_t i = p->n_fields; i-- > 0;) {
				const struct dkim_field *f = &p->fields[i];
				if (used[i] || !field_is(p, f, sign_fields[k].name))
					continue;
				used[i] = true;
				if (dkim_canon_header_relaxed(p->norm.data + f->start, f->len,
				                              &data) < 0)
					goto overflow;
				break;
			}
		}
	}
	if (first || !used_from(p, used)) {
		err_set(err, DKIM_ERR_MSG, "message has no From: field");
		goto out;
	}
	/* replace the ':' after the last name by ';' */
	field.data[field.len - 1] = ';';
	snprintf(tmp, sizeof tmp, "bh=%s;", bh);
	if (fold_append(&field, &col, tmp, true) < 0 || fold_append(&field, &col, "b=", true) < 0)
		goto overflow;

	/* The signature field itself, canonicalised, without its trailing CRLF (§3.7). */
	if (dkim_canon_header_relaxed(field.data, field.len, &data) < 0)
		goto overflow;
	data.len -= 2;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		crypto_fail(err, "EVP_MD_CTX_new");
		goto out;
	}
	size_t siglen = 0;
	if (s->algo == DKIM_ALGO_RSA) {
		if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->key) != 1 ||
		    EVP_DigestSign(ctx, NULL, &siglen, data.data, data.len) != 1) {
			crypto_fail(err, "RSA sign init");
			goto out;
		}
		rawsig = xmalloc(siglen);
		if (EVP_DigestSign(ctx, rawsig, &siglen, data.data, data.len) != 1) {
			crypto_fail(err, "RSA sign");
			goto out;
		}
	} else {
		/* RFC 8463 §3: PureEdDSA over the SHA-256 of the header data. */
		unsigned char hash[EVP_MAX_MD_SIZE];
		unsigned hlen = 0;
		if (EVP_Digest(data.data, data.len, hash, &hlen, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) != 1) {
			crypto_fail(err, "Ed25519 sign init");
			goto out;
		}
		siglen = 64;
		rawsig = xmalloc(siglen);
		if (EVP_DigestSign(ctx, rawsig, &siglen, hash, hlen) != 1) {
			crypto_fail(err, "Ed25519 sign");
			goto out;
		}
	}
	if (base64_encode(rawsig, siglen, &sig) < 0)
		goto overflow;

	/* Emit: the field up to "b=", then b= in chunks, each on its own folded line. */
	if (buf_append(out, field.data, field.len) < 0)
		goto overflow;
	for (size_t off = 0; off < sig.len; off += DKIM_B64_CHUNK) {
		size_t n = sig.len - off < DKIM_B64_CHUNK ? sig.len - off : DKIM_B64_CHUNK;
		if (buf_append(out, "\r\n\t", 3) < 0 || buf_append(out, sig.data + off, n) < 0)
			goto overflow;
	}
	if (buf_append(out, "\r\n", 2) < 0)
		goto overflow;
	ret = 0;
	goto out;
overflow:
	err_set(err, DKIM_ERR_SIZE, "DKIM-Signature does not fit");
out:
	EVP_MD_CTX_free(ctx);
	free(rawsig);
	buf_deinit(&sig);
	buf_deinit(&data);
	buf_deinit(&field);
	return ret;
}

int
dkim_sign(struct dkim_signer *const *signers, size_t n, const unsigned char *msg, size_t len,
          int64_t now, struct buf *out, struct err *err)
{
	if (n == 0)
		return 0;
	struct dkim_msg p;
	struct buf body;
	buf_init(&body, 0);
	int ret = -1;
	if (dkim_msg_parse(msg, len, &p, err) < 0)
		goto out;
	if (dkim_canon_body_relaxed((const unsigned char *)buf_cstr(&p.norm) + p.body,
	                            p.norm.len - p.body, &body) < 0) {
		err_set(err, DKIM_ERR_SIZE, "body too large");
		goto out;
	}
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned hlen = 0;
	if (EVP_Digest(body.data, body.len, hash, &hlen, EVP_sha256(), NULL) != 1) {
		crypto_fail(err, "SHA-256");
		goto out;
	}
	buf_reset(&body);
	if (base64_encode(hash, hlen, &body) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (sign_one(signers[i], &p, buf_cstr(&body), now, out, err) < 0)
			goto out;
	ret = 0;
out:
	buf_deinit(&body);
	dkim_msg_deinit(&p);
	return ret;
}
