/* TLS contexts and self-signed certificates; see tls.h. OpenSSL reports errors through a per
 * thread queue: each failure takes the first entry into err and clears the rest. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/rand.h"

/* TLS 1.2 suites: forward secrecy only, AEAD first (TLS 1.3 suites are OpenSSL's defaults). */
static const char tls12_ciphers[] = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:"
                                    "ECDHE+AES:DHE+AES:!aNULL:!eNULL:!MD5:!SHA1:!DSS:!PSK:!SRP";

/* err = "<what>: <first OpenSSL error>"; clears the queue. Returns -1. */
static int
tls_error(struct err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char tmp[160];
	if (e != 0)
		ERR_error_string_n(e, tmp, sizeof tmp);
	else
		(void)snprintf(tmp, sizeof tmp, "unknown OpenSSL error");
	ERR_clear_error();
	return err_set(err, EINVAL, "%s: %s", what, tmp);
}

SSL_CTX *
net_tls_server_ctx(const char *cert_file, const char *key_file, struct err *err)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_error(err, "tls");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tls_error(err, "tls: minimum version");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Thousands of idle IMAP connections: do not keep 2 x 16 KiB record buffers each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
		tls_error(err, "tls: cipher list");
		goto fail;
	}
	static const unsigned char sid[] = "lightr";
	(void)SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_error(err, cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		err_set(err, EINVAL, "%s: key does not match the certificate in %s", key_file,
		        cert_file);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
net_tls_ctx_free(SSL_CTX **ctxp)
{
	SSL_CTX_free(*ctxp);
	*ctxp = NULL;
}

/* ---- self-signed certificates ---- */

/* true when s is safe inside an X509V3 config string ("DNS:<s>"): letters, digits, '-', '.'. */
static bool
tls_is_dns_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
			return false;
	return true;
}

static int
tls_add_ext(X509 *x, int nid, const char *value, struct err *err)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return tls_error(err, "self-signed certificate: extension");
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : tls_error(err, "self-signed certificate: extension");
}

/* Builds and signs a certificate for pkey. */
static X509 *
tls_make_cert(EVP_PKEY *pkey, const char *hostname, struct err *err)
{
	X509 *x = X509_new();
	if (x == NULL || X509_set_version(x, 2) != 1)
		goto fail_ssl;
	unsigned char serial[16];
	rand_bytes(serial, sizeof serial);
	serial[0] &= 0x7f; /* positive (RFC 5280 §4.1.2.2), at most 20 octets */
	serial[0] |= 0x40;
	BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
		BN_free(bn);
		goto fail_ssl;
	}
	BN_free(bn);
	if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)NET_TLS_SELFSIGNED_DAYS * 86400) == NULL ||
	    X509_set_pubkey(x, pkey) != 1)
		goto fail_ssl;
	X509_NAME *name = X509_get_subject_name(x);
	/* ub-common-name is 64 (RFC 5280 Appendix A); longer names live only in the SAN. */
	const char *cn = strlen(hostname) <= 64 && hostname[0] ? hostname : "Lightr";
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Lightr", -1,
	                               -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                               0) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto fail_ssl;

	char san[320];
	unsigned char ipbuf[16];
	if (inet_pton(AF_INET, hostname, ipbuf) == 1 || inet_pton(AF_INET6, hostname, ipbuf) == 1)
		(void)snprintf(san, sizeof san, "IP:%s,DNS:localhost,IP:127.0.0.1,IP:::1",
		               hostname);
	else if (tls_is_dns_name(hostname) && strcmp(hostname, "localhost") != 0)
		(void)snprintf(san, sizeof san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1",
		               hostname);
	else
		(void)snprintf(san, sizeof san, "DNS:localhost,IP:127.0.0.1,IP:::1");
	if (tls_add_ext(x, NID_subject_alt_name, san, err) < 0 ||
	    tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE", err) < 0 ||
	    tls_add_ext(x, NID_key_usage, "critical,digitalSignature", err) < 0 ||
	    tls_add_ext(x, NID_ext_key_usage, "serverAuth", err) < 0 ||
	    tls_add_ext(x, NID_subject_key_identifier, "hash", err) < 0)
		goto fail;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto fail_ssl;
	return x;
fail_ssl:
	tls_error(err, "self-signed certificate");
fail:
	X509_free(x);
	return NULL;
}

/* Writes a PEM file through a temporary name, fsync()ed, then renamed into place. */
static int
tls_write_pem(const char *path, mode_t mode, EVP_PKEY *pkey, X509 *x, struct err *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return err_set(err, ENAMETOOLONG, "%s: path too long", path);
	(void)unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return err_set_errno(err, errno, errno, "%s: cannot create", tmp);
	(void)fchmod(fd, mode); /* umask must not widen or narrow it */
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return err_set_errno(err, errno, errno, "%s: fdopen", tmp);
	}
	int ok =
	    pkey ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
	if (ok != 1) {
		fclose(f);
		(void)unlink(tmp);
		return tls_error(err, tmp);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		int e = errno;
		fclose(f);
		(void)unlink(tmp);
		return err_set_errno(err, e, e, "%s: write", tmp);
	}
	if (fclose(f) != 0) {
		(void)unlink(tmp);
		return err_set_errno(err, errno, errno, "%s: close", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		(void)unlink(tmp);
		return err_set_errno(err, e, e, "%s: rename", path);
	}
	return 0;
}

/* 1 when cert_file holds a certificate that is valid for more than NET_TLS_RENEW_DAYS and
 * key_file a key that matches it; 0 when it should be replaced. */
static int
tls_pair_usable(const char *cert_file, const char *key_file)
{
	int usable = 0;
	FILE *f = fopen(cert_file, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	f = fopen(key_file, "re");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (x && k && X509_check_private_key(x, k) == 1) {
		time_t limit = time(NULL) + (time_t)NET_TLS_RENEW_DAYS * 86400;
		usable = X509_cmp_time(X509_get0_notAfter(x), &limit) > 0;
	}
	X509_free(x);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return usable;
}

int
net_tls_selfsigned_ensure(const char *dir, const char *hostname, enum net_tls_selfsigned *what_r,
                          struct err *err)
{
	char cert_file[PATH_MAX], key_file[PATH_MAX];
	if (snprintf(cert_file, sizeof cert_file, "%s/cert.pem", dir) >= (int)sizeof cert_file ||
	    snprintf(key_file, sizeof key_file, "%s/key.pem", dir) >= (int)sizeof key_file)
		return err_set(err, ENAMETOOLONG, "%s: path too long", dir);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return err_set_errno(err, errno, errno, "%s: cannot create directory", dir);

	bool have_cert = access(cert_file, F_OK) == 0, have_key = access(key_file, F_OK) == 0;
	*what_r = NET_TLS_CREATED;
	if (have_cert && have_key) {
		if (tls_pair_usable(cert_file, key_file)) {
			*what_r = NET_TLS_REUSED;
			return 0;
		}
		*what_r = NET_TLS_RENEWED;
	}

	ERR_clear_error();
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	if (pkey == NULL)
		return tls_error(err, "self-signed certificate: key generation");
	X509 *x = tls_make_cert(pkey, hostname, err);
	int rc = -1;
	if (x != NULL && tls_write_pem(key_file, 0600, pkey, NULL, err) == 0 &&
	    tls_write_pem(cert_file, 0644, NULL, x, err) == 0)
		rc = 0;
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}
