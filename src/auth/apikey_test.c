/* Unit tests for auth/apikey.c: token shape and alphabet, prefix, hash (known SHA-256 vector,
 * agreement with auth_apikey_new), distinct tokens, and the cheap rejection of tokens that are
 * not ours. */
#include <string.h>

#include "auth/passwd.h"
#include "test.h"

static void
test_new(void)
{
	char tok[AUTH_APIKEY_TOKEN_SIZE], hash[65], prefix[AUTH_APIKEY_PREFIX_SIZE];
	auth_apikey_new(tok, hash, prefix);
	CHECK_INT(strlen(tok), 43);
	CHECK(strncmp(tok, "lr_", 3) == 0);
	for (size_t i = 3; i < strlen(tok); i++)
		CHECK((tok[i] >= 'a' && tok[i] <= 'z') || (tok[i] >= '2' && tok[i] <= '7'));
	CHECK_INT(strlen(prefix), 12);
	CHECK(strncmp(tok, prefix, 12) == 0);
	CHECK_INT(strlen(hash), 64);
	char again[65];
	CHECK_INT(auth_apikey_hash(tok, strlen(tok), again), 0);
	CHECK_STR(again, hash);
	/* 200 random bits: two tokens never collide, and all letters show up over many tokens */
	char tok2[AUTH_APIKEY_TOKEN_SIZE], hash2[65], prefix2[AUTH_APIKEY_PREFIX_SIZE];
	auth_apikey_new(tok2, hash2, prefix2);
	CHECK(strcmp(tok, tok2) != 0);
	CHECK(strcmp(hash, hash2) != 0);
	int seen[256] = {0};
	for (int k = 0; k < 200; k++) {
		auth_apikey_new(tok2, hash2, prefix2);
		for (size_t i = 3; i < 43; i++)
			seen[(unsigned char)tok2[i]] = 1;
	}
	int distinct = 0;
	for (int c = 0; c < 256; c++)
		distinct += seen[c];
	CHECK_INT(distinct, 32);
}

static void
test_hash(void)
{
	/* sha256("lr_" + 40 * 'a') computed independently (python3 hashlib) */
	const char *tok = "lr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	char h[65];
	CHECK_INT(auth_apikey_hash(tok, strlen(tok), h), 0);
	CHECK_STR(h, "c0c520a90a0bcff2a9a0655b21d4a664826d8ec4f5c20897c8855c9a17db7bf9");
	/* length is what counts, not a NUL */
	char buf[64];
	memcpy(buf, tok, 43);
	memcpy(buf + 43, "zzz", 4);
	char h2[65];
	CHECK_INT(auth_apikey_hash(buf, 43, h2), 0);
	CHECK_STR(h2, h);
}

static void
test_reject(void)
{
	static const char *const bad[] = {
	    "",
	    "lr_",
	    "lr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",   /* 39 */
	    "lr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 41 */
	    "LR_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "lx_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "lr_Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* upper case */
	    "lr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1", /* 1 is not base32 */
	    "lr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa8",
	    "lr_aaaaaaaaaaaaaaaaaaaa aaaaaaaaaaaaaaaaaaa",
	    "lr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=",
	};
	char h[65];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(auth_apikey_hash(bad[i], strlen(bad[i]), h), -1);
	CHECK_INT(auth_apikey_hash(NULL, 0, h), -1);
	/* a NUL inside */
	char nul[44] = "lr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	nul[20] = '\0';
	CHECK_INT(auth_apikey_hash(nul, 43, h), -1);
}

int
main(void)
{
	RUN(test_new);
	RUN(test_hash);
	RUN(test_reject);
	return test_done("auth_apikey");
}
