/* argon2id hashing behind a counting semaphore; see passwd.h. */
#include "passwd.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "util/log.h"

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_cond = PTHREAD_COND_INITIALIZER;
static unsigned slots_max = 4, slots_used, slots_peak;

int
auth_init(unsigned max_concurrent_hashes)
{
	if (sodium_init() < 0)
		return -1;
	pthread_mutex_lock(&slots_lock);
	unsigned m = max_concurrent_hashes;
	slots_max = m < 1 ? 1 : m > 64 ? 64 : m;
	pthread_mutex_unlock(&slots_lock);
	return 0;
}

static void
slot_take(void)
{
	pthread_mutex_lock(&slots_lock);
	while (slots_used >= slots_max)
		pthread_cond_wait(&slots_cond, &slots_lock);
	slots_used++;
	if (slots_used > slots_peak)
		slots_peak = slots_used;
	pthread_mutex_unlock(&slots_lock);
}

static void
slot_give(void)
{
	pthread_mutex_lock(&slots_lock);
	slots_used--;
	pthread_cond_signal(&slots_cond);
	pthread_mutex_unlock(&slots_lock);
}

int
auth_hash(const char *pw, size_t len, char out[AUTH_HASH_MAX])
{
	_Static_assert(crypto_pwhash_STRBYTES <= AUTH_HASH_MAX, "AUTH_HASH_MAX too small");
	if (len == 0 || len > AUTH_PASSWORD_MAX)
		return -1;
	slot_take();
	int rc =
	    crypto_pwhash_str_alg(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                          crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
	slot_give();
	if (rc != 0) {
		log_error("auth - hash-failed reason=out-of-memory");
		return -1;
	}
	return 0;
}

bool
auth_verify(const char *hash, const char *pw, size_t len)
{
	if (len == 0 || len > AUTH_PASSWORD_MAX || strnlen(hash, AUTH_HASH_MAX) >= AUTH_HASH_MAX ||
	    strncmp(hash, "$argon2id$", 10) != 0)
		return false;
	slot_take();
	int rc = crypto_pwhash_str_verify(hash, pw, len);
	slot_give();
	return rc == 0;
}

bool
auth_ct_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

unsigned
auth_peak_concurrency(void)
{
	pthread_mutex_lock(&slots_lock);
	unsigned peak = slots_peak;
	pthread_mutex_unlock(&slots_lock);
	return peak;
}
