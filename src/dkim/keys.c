/* DKIM key generation and key records (RFC 6376 §3.6.1, RFC 8463 §4). */
#include "dkim.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "util/base64.h"
#include "util/xalloc.h"

const char *
dkim_algo_name(enum dkim_algo algo)
{
	return algo == DKIM_ALGO_RSA ? "rsa" : "ed25519";
}

int
dkim_algo_parse(const char *s, enum dkim_algo *algo_r)
{
	if (strcmp(s, "ed25519") == 0)
		*algo_r = DKIM_ALGO_ED25519;
	else if (strcmp(s, "rsa") == 0)
		*algo_r = DKIM_ALGO_RSA;
	else
		return -1;
	return 0;
}

static int
keys_crypto_fail(struct err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[160] = "unknown error";
	if (e != 0)
		ERR_error_string_n(e, msg, sizeof msg);
	ERR_clear_error();
	return err_set(err, DKIM_ERR_CRYPTO, "%s: %s", what, msg);
}

/* The p= value: RSA SubjectPublicKeyInfo DER, Ed25519 the raw 32-byte key; base64. */
static int
public_b64(EVP_PKEY *key, enum dkim_algo algo, struct buf *out, struct err *err)
{
	unsigned char *der = NULL;
	size_t len = 0;
	int ret = -1;
	if (algo == DKIM_ALGO_RSA) {
		int n = i2d_PUBKEY(key, &der);
		if (n <= 0)
			return keys_crypto_fail(err, "i2d_PUBKEY");
		len = (size_t)n;
	} else {
		if (EVP_PKEY_get_raw_public_key(key, NULL, &len) != 1)
			return keys_crypto_fail(err, "raw public key");
		der = OPENSSL_malloc(len);
		if (der == NULL || EVP_PKEY_get_raw_public_key(key, der, &len) != 1) {
			keys_crypto_fail(err, "raw public key");
			goto out;
		}
	}
	if (base64_encode(der, len, out) < 0) {
		err_set(err, DKIM_ERR_SIZE, "public key does not fit");
		goto out;
	}
	ret = 0;
out:
	OPENSSL_free(der);
	return ret;
}

int
dkim_keygen(enum dkim_algo algo, unsigned bits, char **private_pem_r, char **public_b64_r,
            struct err *err)
{
	EVP_PKEY *key = NULL;
	if (algo == DKIM_ALGO_RSA) {
		if (bits != 2048 && bits != 3072 && bits != 4096)
			return err_set(err, DKIM_ERR_ARG,
			               "RSA key size must be 2048, 3072 or 4096");
		key = EVP_RSA_gen(bits);
	} else if (algo == DKIM_ALGO_ED25519) {
		if (bits != 0 && bits != 256)
			return err_set(err, DKIM_ERR_ARG, "Ed25519 keys have no size choice");
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else {
		return err_set(err, DKIM_ERR_ARG, "unknown DKIM algorithm");
	}
	if (key == NULL)
		return keys_crypto_fail(err, "key generation");
	int ret = -1;
	struct buf pub;
	buf_init(&pub, 0);
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
		keys_crypto_fail(err, "PEM_write_bio_PrivateKey");
		goto out;
	}
	if (public_b64(key, algo, &pub, err) < 0)
		goto out;
	char *pem_data = NULL;
	long pem_len = BIO_get_mem_data(bio, &pem_data);
	if (pem_len <= 0) {
		keys_crypto_fail(err, "BIO_get_mem_data");
		goto out;
	}
	*private_pem_r = xstrndup(pem_data, (size_t)pem_len);
	*public_b64_r = xstrdup(buf_cstr(&pub));
	ret = 0;
out:
	BIO_free(bio);
	buf_deinit(&pub);
	EVP_PKEY_free(key);
	return ret;
}

int
dkim_txt_record(enum dkim_algo algo, const char *public_b64, struct buf *out)
{
	return buf_printf(out, "v=DKIM1; k=%s; p=%s", dkim_algo_name(algo), public_b64);
}
