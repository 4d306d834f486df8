/* Internal to src/limit: the bounded, striped hash map shared by the GCRA table, the daily
 * counters and the authentication failure table. Keys are (a, b) pairs of C strings (the
 * bucket key and the rule name), hashed with SipHash-1-3 under a per-map random seed because
 * clients choose the keys. Each stripe has its own mutex, chains and age list; a stripe holds at
 * most max_keys / nstripes entries, so the whole map never exceeds max_keys. */
#ifndef LIGHTR_LIMIT_PRIVATE_H
#define LIGHTR_LIMIT_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limit.h"

#define LIMIT_NAME_MAX     64 /* rule names are ours ("messages_per_minute") */
#define LIMIT_MAP_STRIPES  64 /* locks; fewer when max_keys is small */
#define LIMIT_STRIPE_MIN   64 /* keys per stripe at least, so eviction has a choice */
#define LIMIT_EVICT_SCAN   16 /* old entries inspected for an idle one before one is dropped */
#define LIMIT_COMBINED_MAX (LIMIT_KEY_MAX + 1 + LIMIT_NAME_MAX)

struct lmap_entry {
	struct lmap_entry *hnext;               /* hash chain */
	struct lmap_entry *lru_prev, *lru_next; /* insertion order, newest at the head */
	uint64_t hash;
	union {
		struct {
			__int128 tat;   /* theoretical arrival time in ms * count units */
			uint64_t count; /* the rule's count the tat is scaled by */
		} gcra;
		struct {
			int64_t day;    /* UTC day number the count belongs to */
			uint64_t count; /* reserved + committed units that day */
		} daily;
		struct {
			int64_t window_start_ms; /* first failure of the current window */
			int64_t locked_until_ms; /* 0 = not locked */
			unsigned failures;
			bool lockout_reported; /* first_lockout was returned for this lockout */
		} auth;
	} u;
	uint16_t klen;
	bool referenced; /* used since the last eviction scan passed it */
	char key[];      /* a '\0' b, not NUL-terminated */
};

/* Decides whether an entry may be evicted as idle; ctx is the caller's (e.g. the time now). */
typedef bool lmap_idle_fn(const struct lmap_entry *e, const void *ctx);

struct lmap_stripe;
struct lmap;

struct lmap *lmap_new(size_t max_keys);
void lmap_free(struct lmap **mp);
/* Builds the combined key of (a, b) into buf (LIMIT_COMBINED_MAX bytes; a is cut at
 * LIMIT_KEY_MAX, b at LIMIT_NAME_MAX bytes), returns its length and sets *hash_r. */
size_t lmap_key(const struct lmap *m, const char *a, const char *b, char *buf, uint64_t *hash_r);
/* Locks and returns the stripe of hash; release with lmap_unlock. */
struct lmap_stripe *lmap_lock(struct lmap *m, uint64_t hash);
void lmap_unlock(struct lmap_stripe *s);
/* Looks the key up in the locked stripe and marks it referenced; NULL when absent. */
struct lmap_entry *lmap_find(struct lmap_stripe *s, uint64_t hash, const char *key, size_t klen);
/* Inserts a new zeroed entry (the key must be absent). When the stripe is full, an idle entry
 * among the oldest goes first, else the oldest one not referenced lately (second chance). */
struct lmap_entry *lmap_insert(struct lmap_stripe *s, uint64_t hash, const char *key, size_t klen,
                               lmap_idle_fn *idle, const void *ctx);
void lmap_remove(struct lmap_stripe *s, struct lmap_entry *e);
/* Removes every idle entry of every stripe; returns how many. */
size_t lmap_sweep(struct lmap *m, lmap_idle_fn *idle, const void *ctx);
size_t lmap_size(struct lmap *m);

/* Floor division for day numbers and time units. */
static inline int64_t
limit_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

#endif
