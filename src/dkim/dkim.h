/* DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463), on OpenSSL 3.
 * Canonicalisation is always relaxed/relaxed. No I/O and no store access: keys come in as
 * PEM text and go out as PEM/base64 text; the caller persists them (store/dkim.c).
 * Thread safety: a dkim_signer is immutable after dkim_signer_new() and may be shared by
 * threads for dkim_sign(); all other functions are reentrant. */
#ifndef LIGHTR_DKIM_H
#define LIGHTR_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

enum dkim_algo {
	DKIM_ALGO_ED25519, /* "ed25519-sha256", k=ed25519 */
	DKIM_ALGO_RSA,     /* "rsa-sha256", k=rsa */
};

/* err->code values */
enum dkim_error {
	DKIM_ERR_ARG = 1, /* bad argument (unknown algo, bad bits, bad domain/selector) */
	DKIM_ERR_KEY,     /* key cannot be parsed or does not match algo */
	DKIM_ERR_CRYPTO,  /* OpenSSL failure */
	DKIM_ERR_MSG,     /* message has no From: field */
	DKIM_ERR_SIZE,    /* output buffer overflow */
};

/* "ed25519" / "rsa" (the k= tag and the store's algo column). */
const char *dkim_algo_name(enum dkim_algo algo);
/* Parses "ed25519" or "rsa" (case-sensitive). Returns 0, or -1 if unknown. */
int dkim_algo_parse(const char *s, enum dkim_algo *algo_r);

/* Generates a key pair. algo ED25519 ignores bits (pass 0 or 256); RSA needs bits 2048, 3072
 * or 4096. On success *private_pem_r is a NUL-terminated PKCS#8 PEM ("-----BEGIN PRIVATE
 * KEY-----") and *public_b64_r the p= value (RSA: SubjectPublicKeyInfo DER in base64;
 * Ed25519: the raw 32-byte public key in base64); both are xmalloc'd, owned by the caller
 * (free()). Returns 0, or -1 with err set (outputs untouched). */
int dkim_keygen(enum dkim_algo algo, unsigned bits, char **private_pem_r, char **public_b64_r,
                struct err *err);

/* The TXT record value for <selector>._domainkey.<domain>:
 * "v=DKIM1; k=ed25519; p=<public_b64>" (or k=rsa). Appends to out, no quoting or splitting.
 * Returns 0, or -1 on buffer overflow. */
int dkim_txt_record(enum dkim_algo algo, const char *public_b64, struct buf *out);

struct dkim_signer;

/* Loads a signer for d=domain, s=selector from a private key PEM (PKCS#8 or traditional RSA).
 * The domain and selector are copied. Returns NULL with err set when the key does not parse,
 * is not of type algo, or domain/selector contain characters outside [A-Za-z0-9.-_]. */
struct dkim_signer *dkim_signer_new(const char *domain, const char *selector, enum dkim_algo algo,
                                    const char *private_pem, struct err *err);
/* Accepts NULL; sets *s = NULL. */
void dkim_signer_free(struct dkim_signer **s);

/* Signs msg (a full RFC 5322 message: header, empty line, body; CRLF or bare LF line ends,
 * which are treated as CRLF) with each of the n signers and appends, per signer, one complete
 * folded "DKIM-Signature: v=1; a=...; c=relaxed/relaxed; d=; s=; t=now; h=...; bh=...; b=...\r\n"
 * field to out, in signer order. The fields are meant to be prepended to msg; each signature
 * covers only the original msg, never another DKIM-Signature. h= lists From, To, Cc, Subject,
 * Date, Message-ID, Reply-To, In-Reply-To, References, MIME-Version, Content-Type,
 * Content-Transfer-Encoding, Content-Disposition when present; all except In-Reply-To and
 * References are oversigned (listed once more than they occur). now is the t= value (Unix
 * seconds). A message with no header/body separator is treated as header-only (empty body).
 * Only the first 1000 header fields are considered.
 * Returns 0, or -1 with err set (out may then hold a partial result: callers should reset it).
 * n == 0 appends nothing and returns 0. */
int dkim_sign(struct dkim_signer *const *signers, size_t n, const unsigned char *msg, size_t len,
              int64_t now, struct buf *out, struct err *err);

/* ---- canonicalisation, exposed for tests ---- */

/* Relaxed body canonicalisation (RFC 6376 §3.4.4) of body (bytes after the header/body
 * separator; bare LF treated as CRLF; a missing final line end is added, trailing WSP is
 * dropped from every line including an unterminated last one). Appends to out. An empty body,
 * or one of empty lines only, yields nothing (RFC 6376 §3.4.4, as python3-dkim verifies). */
int dkim_canon_body_relaxed(const unsigned char *body, size_t len, struct buf *out);
/* Simple body canonicalisation (§3.4.3); an empty body yields "\r\n". */
int dkim_canon_body_simple(const unsigned char *body, size_t len, struct buf *out);
/* Relaxed header canonicalisation (§3.4.2) of one field (name ':' value, possibly folded, with
 * or without its trailing CRLF). Appends "name:value\r\n" to out. Returns 0, or -1 when the
 * field has no colon or on overflow. */
int dkim_canon_header_relaxed(const unsigned char *field, size_t len, struct buf *out);

/* ---- verification (RFC 6376 §6, RFC 8463; verify.c, tags.c, keyrec.c; issue 9) ----
 * Every DKIM-Signature field of a message (the first DKIM_VERIFY_MAX) is checked on its own:
 * tag list (v a b bh c d h i l q s t x; unknown tags ignored; duplicate tags, a missing
 * required tag, v != 1, i= not in d= or a subdomain of it, h= without From, x < t → permerror),
 * the key record at <s>._domainkey.<d> (TXT strings concatenated; tags v k h p s t; p= empty =
 * revoked; k= must match a=; h= must allow sha256; t=s: i= domain must equal d=; service
 * type s= must include "email" or "*"), expiry x= against now, body hash over the canonicalised
 * body (simple or relaxed; l= limits it and the result says the rest was not covered), then
 * the signature over the canonicalised header fields named in h= (bottom-up for repeated
 * names, nonexistent ones as empty) plus the DKIM-Signature field with b= emptied.
 * rsa-sha256 and ed25519-sha256; rsa-sha1 → fail ("rsa-sha1 is not accepted"); RSA keys below
 * 1024 bits → fail. DNS errors → temperror; no key → permerror. */
#define DKIM_VERIFY_MAX 16 /* signatures checked per message */

enum dkim_result {
	DKIM_RESULT_NONE, /* no signature */
	DKIM_RESULT_PASS,
	DKIM_RESULT_FAIL,      /* signature or body hash does not verify, or unacceptable */
	DKIM_RESULT_NEUTRAL,   /* e.g. policy says don't trust (not used for now) */
	DKIM_RESULT_TEMPERROR, /* key lookup failed temporarily */
	DKIM_RESULT_PERMERROR, /* malformed signature or key record, no key */
};
const char *dkim_result_name(enum dkim_result r); /* "pass", "fail", ... (RFC 8601) */

/* How the verifier gets key records: TXT strings of name, concatenated per record (like
 * dns/resolver.h dns_txt). Return 0 with the records (*v_r heap array of n heap strings), 1
 * when the name has no TXT records or does not exist, -1 on a temporary failure. The records
 * (strings and array) belong to the verifier afterwards, which free()s them. */
typedef int dkim_txt_fn(void *ctx, const char *name, char ***v_r, size_t *n_r);

struct dkim_sig_result {
	enum dkim_result result;
	char domain[256];   /* d= ("" when unparsable) */
	char selector[64];  /* s= */
	char identity[256]; /* i= or "@" + d= */
	char algo[32];      /* a= */
	char reason[128];   /* why not pass, or "" */
	bool body_partial;  /* l= was shorter than the body: the rest is not covered */
	char b_prefix[9];   /* first 8 characters of b= (RFC 6008 header.b) */
};
struct dkim_verify_result {
	struct dkim_sig_result sigs[DKIM_VERIFY_MAX];
	size_t n;
};
/* Verifies msg (CRLF or LF line ends) at time now (unix seconds). Never fails: problems are
 * results. */
void dkim_verify(const unsigned char *msg, size_t len, int64_t now, dkim_txt_fn *txt, void *ctx,
                 struct dkim_verify_result *out);

#endif
