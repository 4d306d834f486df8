/* REST API tokens (passwd.h "API keys"): generation from the kernel's random bytes, and the
 * SHA-256 the store keys on. A token that does not have our shape is rejected before hashing,
 * so junk in an Authorization header costs a length check and a scan, never a database query. */
#include "passwd.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "util/rand.h"

static const char apikey_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567"; /* RFC 4648 §6 */

static bool
apikey_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

void
auth_apikey_new(char token[AUTH_APIKEY_TOKEN_SIZE], char hash_hex[65],
                char prefix[AUTH_APIKEY_PREFIX_SIZE])
{
	/* 40 characters of 5 bits each come from exactly 25 random bytes. */
	unsigned char rnd[AUTH_APIKEY_RANDOM_LEN * 5 / 8];
	rand_bytes(rnd, sizeof rnd);
	size_t tag = sizeof AUTH_APIKEY_TAG - 1;
	memcpy(token, AUTH_APIKEY_TAG, tag);
	unsigned acc = 0, bits = 0;
	size_t o = tag;
	for (size_t i = 0; i < sizeof rnd; i++) {
		acc = (acc << 8) | rnd[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			token[o++] = apikey_alphabet[(acc >> bits) & 31];
		}
		acc &= (1u << bits) - 1;
	}
	token[o] = '\0';
	memcpy(prefix, token, AUTH_APIKEY_PREFIX_LEN);
	prefix[AUTH_APIKEY_PREFIX_LEN] = '\0';
	if (auth_apikey_hash(token, o, hash_hex) < 0)
		abort(); /* our own token has our shape; only a broken libcrypto gets here */
	OPENSSL_cleanse(rnd, sizeof rnd);
}

int
auth_apikey_hash(const char *token, size_t len, char hash_hex[65])
{
	size_t tag = sizeof AUTH_APIKEY_TAG - 1;
	if (token == NULL || len != AUTH_APIKEY_TOKEN_LEN ||
	    memcmp(token, AUTH_APIKEY_TAG, tag) != 0)
		return -1;
	for (size_t i = tag; i < len; i++)
		if (!apikey_char_ok(token[i]))
			return -1;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (EVP_Digest(token, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
		return -1;
	hex_encode(md, md_len, hash_hex);
	return 0;
}
