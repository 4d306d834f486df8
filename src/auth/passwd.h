/* Password hashing and checking with argon2id (libsodium crypto_pwhash_str, RFC 9106 parameters
 * "interactive": 2 passes, 64 MiB). Each computation needs 64 MiB, so at most
 * max_concurrent hashes run at once; further callers wait. A narrow seam, kept apart so that a
 * later privilege-separated process can own it (STYLE.md B.1.6). Thread-safe after auth_init. */
#ifndef LIGHTR_AUTH_PASSWD_H
#define LIGHTR_AUTH_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

/* Longest encoded hash (crypto_pwhash_STRBYTES) including the NUL. */
#define AUTH_HASH_MAX 128
/* Longest password accepted (bytes). Longer input is rejected before hashing so a client cannot
 * make us hash megabytes. */
#define AUTH_PASSWORD_MAX 1024

/* Initialises libsodium and the concurrency bound (1..64). Call once before any other function;
 * returns -1 when libsodium cannot start. */
int auth_init(unsigned max_concurrent_hashes);
/* Hashes pw (len bytes, 1..AUTH_PASSWORD_MAX) into out as an encoded "$argon2id$..." string.
 * Returns -1 on bad length or when libsodium fails (out of memory). */
int auth_hash(const char *pw, size_t len, char out[AUTH_HASH_MAX]);
/* true when pw matches the encoded hash. The comparison inside libsodium is constant-time. A
 * malformed hash never matches. */
bool auth_verify(const char *hash, const char *pw, size_t len);
/* Most hash computations seen running at once since start (for tests of the bound). */
unsigned auth_peak_concurrency(void);
/* Constant-time equality of two n-byte secrets (API keys, tokens). */
bool auth_ct_equal(const void *a, const void *b, size_t n);

/* ---- API keys (apikey.c) ----
 * A REST API token is "lr_" followed by 40 characters of lower-case base32 (a-z, 2-7: 200 random
 * bits). The store keeps only its SHA-256 (a fast hash is enough for a random secret) and a
 * display prefix. Thread-safe; no auth_init needed. */
#define AUTH_APIKEY_TAG         "lr_"
#define AUTH_APIKEY_RANDOM_LEN  40 /* base32 chars */
#define AUTH_APIKEY_TOKEN_LEN   (sizeof AUTH_APIKEY_TAG - 1 + AUTH_APIKEY_RANDOM_LEN) /* 43 */
#define AUTH_APIKEY_TOKEN_SIZE  (AUTH_APIKEY_TOKEN_LEN + 1)
#define AUTH_APIKEY_PREFIX_LEN  12 /* shown in listings */
#define AUTH_APIKEY_PREFIX_SIZE (AUTH_APIKEY_PREFIX_LEN + 1)
#define AUTH_APIKEY_TOKEN_MAX   AUTH_APIKEY_TOKEN_SIZE /* buffer sizes, NUL included */
#define AUTH_APIKEY_HASH_MAX    65
/* A fresh token (NUL-terminated), the lower-case hex SHA-256 of it, and its display prefix (the
 * first AUTH_APIKEY_PREFIX_LEN characters). */
void auth_apikey_new(char token[AUTH_APIKEY_TOKEN_SIZE], char hash_hex[AUTH_APIKEY_HASH_MAX],
                     char prefix[AUTH_APIKEY_PREFIX_SIZE]);
/* Lower-case hex SHA-256 of token (len bytes, need not be NUL-terminated). Returns -1 without
 * hashing when the token cannot be ours (wrong tag, length or alphabet), or when the digest
 * fails. */
int auth_apikey_hash(const char *token, size_t len, char hash_hex[AUTH_APIKEY_HASH_MAX]);

#endif
