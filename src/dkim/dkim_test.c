/* Unit tests for src/dkim: canonicalisation vectors (RFC 6376 §3.4.5), empty-body hashes,
 * key generation and records, signing with self-verification through OpenSSL. With
 * DKIM_EMIT_DIR set, writes signed edge-case messages and keys.json there for the python3-dkim
 * oracle (tests/integration/test_dkim.py). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "dkim/dkim.h"
#include "test.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/xalloc.h"

static void
test_canon_rfc_example(void)
{
	/* RFC 6376 §3.4.5 */
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(dkim_canon_header_relaxed((const unsigned char *)"A: X\r\n", 6, &b), 0);
	const char *h2 = "B : Y\t\r\n\tZ  \r\n";
	CHECK_INT(dkim_canon_header_relaxed((const unsigned char *)h2, strlen(h2), &b), 0);
	CHECK_STR(buf_cstr(&b), "a:X\r\nb:Y Z\r\n");
	buf_reset(&b);
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	CHECK_INT(dkim_canon_body_relaxed((const unsigned char *)body, strlen(body), &b), 0);
	CHECK_STR(buf_cstr(&b), " C\r\nD E\r\n");
	buf_reset(&b);
	CHECK_INT(dkim_canon_body_simple((const unsigned char *)body, strlen(body), &b), 0);
	CHECK_STR(buf_cstr(&b), " C \r\nD \t E\r\n");
	buf_reset(&b);
	/* bare LF is a line end; a missing final line end is added */
	CHECK_INT(dkim_canon_body_relaxed((const unsigned char *)"a  b\n\nc \t", 9, &b), 0);
	CHECK_STR(buf_cstr(&b), "a b\r\n\r\nc\r\n");
	buf_reset(&b);
	CHECK_INT(dkim_canon_header_relaxed((const unsigned char *)"no colon", 8, &b), -1);
	CHECK_INT(dkim_canon_header_relaxed((const unsigned char *)"SUBJECT:   \r\n", 13, &b), 0);
	CHECK_STR(buf_cstr(&b), "subject:\r\n");
	buf_deinit(&b);
}

static void
hash_b64(const struct buf *in, struct buf *out)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_Digest(in->data, in->len, h, &n, EVP_sha256(), NULL);
	base64_encode(h, n, out);
}

static void
test_empty_body_hash(void)
{
	struct buf c, h;
	buf_init(&c, 0);
	buf_init(&h, 0);
	CHECK_INT(dkim_canon_body_relaxed((const unsigned char *)"", 0, &c), 0);
	hash_b64(&c, &h);
	CHECK_STR(buf_cstr(&h), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	buf_reset(&c);
	buf_reset(&h);
	CHECK_INT(dkim_canon_body_relaxed((const unsigned char *)"\r\n\r\n \r\n", 7, &c), 0);
	CHECK_INT(c.len, 0);
	CHECK_INT(dkim_canon_body_simple((const unsigned char *)"", 0, &c), 0);
	hash_b64(&c, &h);
	CHECK_STR(buf_cstr(&h), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	buf_deinit(&c);
	buf_deinit(&h);
}

static void
test_keygen_records(void)
{
	struct err err;
	char *pem = NULL, *pub = NULL;
	CHECK_INT(dkim_keygen(DKIM_ALGO_ED25519, 0, &pem, &pub, &err), 0);
	CHECK(strstr(pem, "-----BEGIN PRIVATE KEY-----") != NULL);
	CHECK_INT(strlen(pub), 44); /* 32 bytes */
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(dkim_txt_record(DKIM_ALGO_ED25519, pub, &b), 0);
	CHECK(strncmp(buf_cstr(&b), "v=DKIM1; k=ed25519; p=", 22) == 0);
	free(pem);
	free(pub);
	CHECK_INT(dkim_keygen(DKIM_ALGO_RSA, 1024, &pem, &pub, &err), -1);
	CHECK_INT(err.code, DKIM_ERR_ARG);
	CHECK_INT(dkim_keygen(DKIM_ALGO_RSA, 2048, &pem, &pub, &err), 0);
	/* p= decodes to an RSA SubjectPublicKeyInfo */
	buf_reset(&b);
	CHECK_INT(base64_decode(pub, strlen(pub), 0, &b), 0);
	const unsigned char *p = b.data;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)b.len);
	CHECK(k != NULL && EVP_PKEY_get_bits(k) == 2048);
	EVP_PKEY_free(k);
	/* wrong type */
	CHECK(dkim_signer_new("example.com", "s", DKIM_ALGO_ED25519, pem, &err) == NULL);
	CHECK_INT(err.code, DKIM_ERR_KEY);
	CHECK(dkim_signer_new("exa mple.com", "s", DKIM_ALGO_RSA, pem, &err) == NULL);
	CHECK(dkim_signer_new("example.com", "s", DKIM_ALGO_RSA, "junk", &err) == NULL);
	enum dkim_algo a;
	CHECK_INT(dkim_algo_parse("rsa", &a), 0);
	CHECK_INT(a, DKIM_ALGO_RSA);
	CHECK_INT(dkim_algo_parse("dsa", &a), -1);
	CHECK_STR(dkim_algo_name(DKIM_ALGO_ED25519), "ed25519");
	free(pem);
	free(pub);
	buf_deinit(&b);
}

/* Self-verification of a signature over a known message: rebuild the signed data by hand. */
static const char self_msg[] = "From: A <a@example.com>\r\n"
                               "To: b@example.net\r\n"
                               "Subject:  Hello   there\r\n"
                               "\r\n"
                               "Body  text \r\n\r\n";

static bool
self_verify(enum dkim_algo algo, const char *pub, const char *sigfield)
{
	/* b= value: everything after the last "b=" with whitespace removed */
	const char *bpos = strstr(sigfield, "; b=");
	if (bpos == NULL)
		return false;
	bpos += 4;
	struct buf data, raw, field, b64;
	buf_init(&data, 0);
	buf_init(&raw, 0);
	buf_init(&field, 0);
	buf_init(&b64, 0);
	for (const char *q = bpos; *q; q++)
		if (*q != '\r' && *q != '\n' && *q != '\t' && *q != ' ')
			buf_append_byte(&b64, (unsigned char)*q);
	base64_decode(buf_cstr(&b64), b64.len, 0, &raw);
	const char *hdrs[] = {"From: A <a@example.com>\r\n", "To: b@example.net\r\n",
	                      "Subject:  Hello   there\r\n"};
	for (size_t i = 0; i < 3; i++)
		dkim_canon_header_relaxed((const unsigned char *)hdrs[i], strlen(hdrs[i]), &data);
	dkim_canon_header_relaxed((const unsigned char *)sigfield, (size_t)(bpos - sigfield),
	                          &data);
	data.len -= 2;
	struct buf pk;
	buf_init(&pk, 0);
	base64_decode(pub, strlen(pub), 0, &pk);
	EVP_PKEY *key;
	if (algo == DKIM_ALGO_RSA) {
		const unsigned char *p = pk.data;
		key = d2i_PUBKEY(NULL, &p, (long)pk.len);
	} else {
		key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk.data, pk.len);
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;
	if (algo == DKIM_ALGO_RSA) {
		ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
		     EVP_DigestVerify(ctx, raw.data, raw.len, data.data, data.len) == 1;
	} else {
		unsigned char h[EVP_MAX_MD_SIZE];
		unsigned hn = 0;
		EVP_Digest(data.data, data.len, h, &hn, EVP_sha256(), NULL);
		ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestVerify(ctx, raw.data, raw.len, h, hn) == 1;
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	buf_deinit(&pk);
	buf_deinit(&data);
	buf_deinit(&raw);
	buf_deinit(&field);
	buf_deinit(&b64);
	return ok;
}

static void
sign_verify_algo(enum dkim_algo algo, unsigned bits)
{
	struct err err;
	char *pem = NULL, *pub = NULL;
	CHECK_INT(dkim_keygen(algo, bits, &pem, &pub, &err), 0);
	struct dkim_signer *s = dkim_signer_new("example.com", "sel", algo, pem, &err);
	CHECK(s != NULL);
	struct buf out;
	buf_init(&out, 0);
	CHECK_INT(dkim_sign(&s, 1, (const unsigned char *)self_msg, strlen(self_msg), 1700000000,
	                    &out, &err),
	          0);
	const char *f = buf_cstr(&out);
	CHECK(strncmp(f, "DKIM-Signature: v=1; a=", 23) == 0);
	CHECK(strstr(f, "c=relaxed/relaxed;") != NULL);
	CHECK(strstr(f, "t=1700000000;") != NULL);
	CHECK(strstr(f, "h=From:From:To:To:Subject:Subject;") != NULL);
	/* bh of "Body text\r\n" */
	CHECK(strstr(f, "bh=") != NULL);
	CHECK(out.len > 2 && memcmp(out.data + out.len - 2, "\r\n", 2) == 0);
	/* no line longer than 78 + CRLF */
	size_t col = 0;
	for (size_t i = 0; i < out.len; i++) {
		col = out.data[i] == '\n' ? 0 : col + 1;
		CHECK(col <= 80);
	}
	CHECK(self_verify(algo, pub, f));
	/* a changed header must fail */
	out.data[out.len - 5] ^= 1;
	CHECK(!self_verify(algo, pub, f));
	/* no From: */
	buf_reset(&out);
	CHECK_INT(dkim_sign(&s, 1, (const unsigned char *)"To: x\r\n\r\nhi\r\n", 13, 0, &out, &err),
	          -1);
	CHECK_INT(err.code, DKIM_ERR_MSG);
	CHECK_INT(dkim_sign(&s, 0, (const unsigned char *)"", 0, 0, &out, &err), 0);
	dkim_signer_free(&s);
	CHECK(s == NULL);
	dkim_signer_free(&s);
	buf_deinit(&out);
	free(pem);
	free(pub);
}

static void
test_sign_ed25519(void)
{
	sign_verify_algo(DKIM_ALGO_ED25519, 0);
}

static void
test_sign_rsa(void)
{
	sign_verify_algo(DKIM_ALGO_RSA, 2048);
}

/* ---- emitting signed edge cases for the python3-dkim oracle ---- */

static const struct {
	const char *name;
	const char *text; /* NULL: built in code */
} emit_cases[] = {
    {"basic", "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Hi\r\n"
              "Date: Sun, 29 Nov 2026 07:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n"
              "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
              "Hello Bob.\r\n"},
    {"empty-body", "From: alice@example.com\r\nSubject: empty\r\n\r\n"},
    {"header-only", "From: alice@example.com\r\nSubject: no separator\r\n"},
    {"no-final-crlf", "From: alice@example.com\r\nSubject: x\r\n\r\nline one\r\nline two"},
    {"bare-lf", "From: alice@example.com\nTo: bob@example.net\nSubject: bare\n\tfolded\n\n"
                "body  with   spaces\nand more\n\n\n"},
    {"trailing-space", "From: alice@example.com\r\nSubject:   spaced    out  \r\n\r\n"
                       "a  b \t\r\n \t \r\nc\r\n\r\n\r\n\r\n"},
    {"utf8-8bit", "From: =?utf-8?q?J=C3=B6rg?= <jorg@example.com>\r\n"
                  "To: \xc3\xa9l\xc3\xa8ve <eleve@example.net>\r\n"
                  "Subject: \xc3\x9c"
                  "bersicht \xe2\x9c\x93\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n\r\n"
                  "Gr\xc3\xbc\xc3\x9f"
                  "e \xe9\xff\x80\r\n"},
    {"folded-repeated",
     "Received: from a by b; Sun, 29 Nov 2026 07:00:00 +0000\r\n"
     "Received: from c by d; Sun, 29 Nov 2026 06:59:00 +0000\r\n"
     "From: alice@example.com\r\n"
     "To: one@example.net,\r\n two@example.net,\r\n\tthree@example.net\r\n"
     "Cc: first@example.org\r\nCc: second@example.org\r\n"
     "Subject: a very long subject that is folded\r\n   across\r\n\t several lines\r\n"
     "References: <a@x> <b@x>\r\n <c@x>\r\nIn-Reply-To: <c@x>\r\n"
     "reply-to: lower@example.com\r\n"
     "Content-Type: multipart/mixed;\r\n\tboundary=\"b1\"\r\n"
     "Content-Disposition: inline\r\n\r\n--b1\r\n\r\npart\r\n--b1--\r\n"},
    {"long-lines", NULL},
};
#define N_EMIT (sizeof emit_cases / sizeof emit_cases[0])

static int
write_file(const char *dir, const char *name, const void *p1, size_t n1, const void *p2, size_t n2)
{
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof path)
		return -1;
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	int ok = fwrite(p1, 1, n1, f) == n1 && (n2 == 0 || fwrite(p2, 1, n2, f) == n2);
	return fclose(f) == 0 && ok ? 0 : -1;
}

static void
test_emit(void)
{
	const char *dir = getenv("DKIM_EMIT_DIR");
	if (dir == NULL || *dir == '\0')
		return;
	struct err err;
	struct dkim_signer *s[2] = {NULL, NULL};
	const enum dkim_algo algos[2] = {DKIM_ALGO_ED25519, DKIM_ALGO_RSA};
	const char *sels[2] = {"ed25519-test", "rsa-test"};
	struct buf json;
	buf_init(&json, 0);
	buf_append_str(&json, "{");
	for (int i = 0; i < 2; i++) {
		char *pem = NULL, *pub = NULL;
		CHECK_INT(dkim_keygen(algos[i], i == 1 ? 2048 : 0, &pem, &pub, &err), 0);
		s[i] = dkim_signer_new("example.com", sels[i], algos[i], pem, &err);
		CHECK(s[i] != NULL);
		buf_printf(&json, "%s\"%s\": \"", i ? ", " : "", sels[i]);
		dkim_txt_record(algos[i], pub, &json);
		buf_append_str(&json, "\"");
		free(pem);
		free(pub);
	}
	buf_append_str(&json, "}\n");
	CHECK_INT(write_file(dir, "keys.json", json.data, json.len, NULL, 0), 0);
	struct buf msg, sig;
	buf_init(&msg, 0);
	buf_init(&sig, 0);
	for (size_t c = 0; c < N_EMIT; c++) {
		buf_reset(&msg);
		if (emit_cases[c].text) {
			buf_append_str(&msg, emit_cases[c].text);
		} else {
			buf_append_str(&msg, "From: alice@example.com\r\nSubject: ");
			for (int i = 0; i < 200; i++)
				buf_append_str(&msg, "word ");
			buf_append_str(&msg, "\r\n\r\n");
			for (int i = 0; i < 10000; i++)
				buf_append_byte(&msg, (unsigned char)('a' + i % 26));
			buf_append_str(&msg, "\r\n");
			for (int i = 0; i < 3000; i++)
				buf_append_str(&msg, i % 2 ? " \t" : "x");
			buf_append_str(&msg, "\r\n");
		}
		static const char *const suffix[3] = {"ed25519", "rsa", "both"};
		for (int v = 0; v < 3; v++) {
			buf_reset(&sig);
			size_t n = v == 2 ? 2 : 1;
			struct dkim_signer *const *sv = v == 1 ? &s[1] : &s[0];
			CHECK_INT(dkim_sign(sv, n, msg.data, msg.len, (int64_t)time(NULL) - 60,
			                    &sig, &err),
			          0);
			char name[128];
			snprintf(name, sizeof name, "%s-%s.eml", emit_cases[c].name, suffix[v]);
			CHECK_INT(write_file(dir, name, sig.data, sig.len, msg.data, msg.len), 0);
		}
	}
	dkim_signer_free(&s[0]);
	dkim_signer_free(&s[1]);
	buf_deinit(&msg);
	buf_deinit(&sig);
	buf_deinit(&json);
}

int
main(void)
{
	RUN(test_canon_rfc_example);
	RUN(test_empty_body_hash);
	RUN(test_keygen_records);
	RUN(test_sign_ed25519);
	RUN(test_sign_rsa);
	RUN(test_emit);
	return test_done("dkim");
}
