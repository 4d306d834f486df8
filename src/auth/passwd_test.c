/* Unit tests for auth/passwd: argon2id hash and verify, limits, malformed hashes, the bound on
 * concurrent hashes, constant-time compare. */
#include <pthread.h>
#include <string.h>

#include "auth/passwd.h"
#include "test.h"

static void
test_hash_verify(void)
{
	char h1[AUTH_HASH_MAX], h2[AUTH_HASH_MAX];
	CHECK_INT(auth_hash("correct horse", 13, h1), 0);
	CHECK(strncmp(h1, "$argon2id$", 10) == 0);
	CHECK(strstr(h1, "m=65536") != NULL); /* 64 MiB */
	CHECK_INT(auth_hash("correct horse", 13, h2), 0);
	CHECK(strcmp(h1, h2) != 0); /* salted */
	CHECK(auth_verify(h1, "correct horse", 13));
	CHECK(auth_verify(h2, "correct horse", 13));
	CHECK(!auth_verify(h1, "correct horsE", 13));
	CHECK(!auth_verify(h1, "correct hors", 12));
	/* passwords with NUL bytes are compared by length, not as C strings */
	CHECK_INT(auth_hash("ab\0cd", 5, h2), 0);
	CHECK(auth_verify(h2, "ab\0cd", 5));
	CHECK(!auth_verify(h2, "ab", 2));
}

static void
test_limits(void)
{
	char h[AUTH_HASH_MAX];
	static char big[AUTH_PASSWORD_MAX + 1];
	memset(big, 'x', sizeof big);
	CHECK_INT(auth_hash("", 0, h), -1);
	CHECK_INT(auth_hash(big, sizeof big, h), -1);
	CHECK_INT(auth_hash(big, AUTH_PASSWORD_MAX, h), 0);
	CHECK(auth_verify(h, big, AUTH_PASSWORD_MAX));
	CHECK(!auth_verify(h, big, sizeof big));
	CHECK(!auth_verify("", "x", 1));
	CHECK(!auth_verify("$argon2i$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA", "x", 1));
	CHECK(!auth_verify("$argon2id$garbage", "x", 1));
}

static void *
hash_thread(void *arg)
{
	char h[AUTH_HASH_MAX];
	*(int *)arg = auth_hash("concurrent", 10, h);
	return NULL;
}

static void
test_concurrency_bound(void)
{
	pthread_t t[6];
	int rc[6];
	for (int i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, hash_thread, &rc[i]);
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(rc[i], 0);
	}
	CHECK(auth_peak_concurrency() >= 1);
	CHECK(auth_peak_concurrency() <= 2);
}

static void
test_ct_equal(void)
{
	CHECK(auth_ct_equal("abcdef", "abcdef", 6));
	CHECK(!auth_ct_equal("abcdef", "abcdeF", 6));
	CHECK(auth_ct_equal("x", "y", 0));
}

int
main(void)
{
	if (auth_init(2) < 0)
		return 1;
	RUN(test_hash_verify);
	RUN(test_limits);
	RUN(test_concurrency_bound);
	RUN(test_ct_equal);
	return test_done("auth");
}
