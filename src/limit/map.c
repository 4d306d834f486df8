/* The bounded striped hash map behind every limiter (see limit_private.h). Chained buckets
 * that double as a stripe grows (up to its cap), and a list per stripe in insertion order with a
 * "referenced" bit per entry (CLOCK / second chance) so that making room is O(1) and a lookup
 * touches no other entry: the few oldest entries are checked for an idle one, else the oldest
 * one not used since the last scan is dropped (which errs on the side of allowing). */
#include "limit_private.h"

#include <string.h>

#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"

struct lmap_stripe {
	pthread_mutex_t mu;
	struct lmap_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count, cap;
	struct lmap_entry lru; /* sentinel: lru.lru_next = newest, lru.lru_prev = oldest */
} __attribute__((aligned(64)));

struct lmap {
	uint64_t k0, k1; /* SipHash key */
	size_t nstripes; /* power of two */
	struct lmap_stripe *stripes;
};

static inline uint64_t
rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl64(v1, 13);                                                               \
		v1 ^= v0;                                                                          \
		v0 = rotl64(v0, 32);                                                               \
		v2 += v3;                                                                          \
		v3 = rotl64(v3, 16);                                                               \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl64(v3, 21);                                                               \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl64(v1, 17);                                                               \
		v1 ^= v2;                                                                          \
		v2 = rotl64(v2, 32);                                                               \
	} while (0)

/* SipHash-1-3 (Aumasson and Bernstein): keyed, so colliding keys cannot be precomputed. */
static uint64_t
siphash13(uint64_t k0, uint64_t k1, const unsigned char *p, size_t len)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t m = 0;
		for (int j = 0; j < 8; j++)
			m |= (uint64_t)p[i + (size_t)j] << (8 * j);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t last = (uint64_t)(len & 0xff) << 56;
	for (int j = 0; i + (size_t)j < len; j++)
		last |= (uint64_t)p[i + (size_t)j] << (8 * j);
	v3 ^= last;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

struct lmap *
lmap_new(size_t max_keys)
{
	struct lmap *m = xcalloc(1, sizeof *m);
	uint64_t seed[2];
	rand_bytes(seed, sizeof seed);
	m->k0 = seed[0];
	m->k1 = seed[1];
	if (max_keys < 1)
		max_keys = 1;
	m->nstripes = 1;
	while (m->nstripes * 2 <= LIMIT_MAP_STRIPES &&
	       m->nstripes * 2 * LIMIT_STRIPE_MIN <= max_keys)
		m->nstripes *= 2;
	m->stripes = aligned_alloc(64, m->nstripes * sizeof *m->stripes);
	if (m->stripes == NULL)
		log_panic("limit: out of memory");
	for (size_t i = 0; i < m->nstripes; i++) {
		struct lmap_stripe *s = &m->stripes[i];
		memset(s, 0, sizeof *s);
		pthread_mutex_init(&s->mu, NULL);
		s->cap = max_keys / m->nstripes;
		s->nbuckets = 16;
		s->buckets = xcalloc(s->nbuckets, sizeof *s->buckets);
		s->lru.lru_next = s->lru.lru_prev = &s->lru;
	}
	return m;
}

void
lmap_free(struct lmap **mp)
{
	struct lmap *m = *mp;
	if (m == NULL)
		return;
	*mp = NULL;
	for (size_t i = 0; i < m->nstripes; i++) {
		struct lmap_stripe *s = &m->stripes[i];
		struct lmap_entry *e = s->lru.lru_next;
		while (e != &s->lru) {
			struct lmap_entry *next = e->lru_next;
			free(e);
			e = next;
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->mu);
	}
	free(m->stripes);
	free(m);
}

size_t
lmap_key(const struct lmap *m, const char *a, const char *b, char *buf, uint64_t *hash_r)
{
	size_t alen = a ? strnlen(a, LIMIT_KEY_MAX) : 0;
	size_t blen = b ? strnlen(b, LIMIT_NAME_MAX) : 0;
	if (alen)
		memcpy(buf, a, alen);
	buf[alen] = '\0';
	if (blen)
		memcpy(buf + alen + 1, b, blen);
	size_t len = alen + 1 + blen;
	*hash_r = siphash13(m->k0, m->k1, (const unsigned char *)buf, len);
	return len;
}

struct lmap_stripe *
lmap_lock(struct lmap *m, uint64_t hash)
{
	struct lmap_stripe *s = &m->stripes[hash & (m->nstripes - 1)];
	pthread_mutex_lock(&s->mu);
	return s;
}

void
lmap_unlock(struct lmap_stripe *s)
{
	pthread_mutex_unlock(&s->mu);
}

static inline size_t
bucket_of(const struct lmap_stripe *s, uint64_t hash)
{
	return (size_t)(hash >> 6) & (s->nbuckets - 1); /* the low 6 bits chose the stripe */
}

static void
lru_unlink(struct lmap_entry *e)
{
	e->lru_prev->lru_next = e->lru_next;
	e->lru_next->lru_prev = e->lru_prev;
}

static void
lru_push_front(struct lmap_stripe *s, struct lmap_entry *e)
{
	e->lru_prev = &s->lru;
	e->lru_next = s->lru.lru_next;
	s->lru.lru_next->lru_prev = e;
	s->lru.lru_next = e;
}

struct lmap_entry *
lmap_find(struct lmap_stripe *s, uint64_t hash, const char *key, size_t klen)
{
	for (struct lmap_entry *e = s->buckets[bucket_of(s, hash)]; e != NULL; e = e->hnext) {
		if (e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0) {
			e->referenced = true; /* not relinked: that would touch two more entries */
			return e;
		}
	}
	return NULL;
}

void
lmap_remove(struct lmap_stripe *s, struct lmap_entry *e)
{
	struct lmap_entry **pp = &s->buckets[bucket_of(s, e->hash)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	s->count--;
	free(e);
}

static void
stripe_grow(struct lmap_stripe *s)
{
	size_t n = s->nbuckets * 2;
	struct lmap_entry **b = xcalloc(n, sizeof *b);
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct lmap_entry *e = s->buckets[i];
		while (e != NULL) {
			struct lmap_entry *next = e->hnext;
			size_t j = (size_t)(e->hash >> 6) & (n - 1);
			e->hnext = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

struct lmap_entry *
lmap_insert(struct lmap_stripe *s, uint64_t hash, const char *key, size_t klen, lmap_idle_fn *idle,
            const void *ctx)
{
	if (s->count >= s->cap && s->count > 0) {
		/* second chance (CLOCK): from the oldest end, the first idle entry goes; entries
		 * used since the last scan move to the young end; else the oldest unused one goes
		 */
		struct lmap_entry *victim = NULL, *unused = NULL, *e = s->lru.lru_prev;
		for (int i = 0; i < LIMIT_EVICT_SCAN && e != &s->lru; i++) {
			struct lmap_entry *older = e->lru_prev;
			if (idle != NULL && idle(e, ctx)) {
				victim = e;
				break;
			}
			if (e->referenced) { /* used lately: to the young end */
				e->referenced = false;
				lru_unlink(e);
				lru_push_front(s, e);
			} else if (unused == NULL) {
				unused = e;
			}
			e = older;
		}
		if (victim == NULL)
			victim = unused != NULL ? unused : s->lru.lru_prev;
		lmap_remove(s, victim);
	}
	if (s->count >= s->nbuckets && s->nbuckets < ((size_t)1 << 30))
		stripe_grow(s);
	struct lmap_entry *e = xcalloc(1, sizeof *e + klen);
	e->hash = hash;
	e->klen = (uint16_t)klen;
	memcpy(e->key, key, klen);
	size_t b = bucket_of(s, hash);
	e->hnext = s->buckets[b];
	s->buckets[b] = e;
	lru_push_front(s, e);
	s->count++;
	return e;
}

size_t
lmap_sweep(struct lmap *m, lmap_idle_fn *idle, const void *ctx)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nstripes; i++) {
		struct lmap_stripe *s = &m->stripes[i];
		pthread_mutex_lock(&s->mu);
		struct lmap_entry *e = s->lru.lru_next;
		while (e != &s->lru) {
			struct lmap_entry *next = e->lru_next;
			if (idle(e, ctx)) {
				lmap_remove(s, e);
				n++;
			}
			e = next;
		}
		pthread_mutex_unlock(&s->mu);
	}
	return n;
}

size_t
lmap_size(struct lmap *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nstripes; i++) {
		pthread_mutex_lock(&m->stripes[i].mu);
		n += m->stripes[i].count;
		pthread_mutex_unlock(&m->stripes[i].mu);
	}
	return n;
}
