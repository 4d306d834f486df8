/* DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463), on OpenSSL 3.
 * Canonicalisation is always relaxed/relaxed. No I/O and no store access: keys come in as
 * PEM text and go out as PEM/base64 text; the caller persists them (store/dkim.c).
 * Thread safety: a dkim_signer is immutable after dkim_signer_new() and may be shared by
 * threads for dkim_sign(); all other functions are reentrant. */
#ifndef LIGHTR_DKIM_H
#define LIGHTR_DKIM_H

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

#endif
