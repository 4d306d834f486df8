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

#endif
