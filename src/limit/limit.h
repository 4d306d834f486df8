/* Rate limits (issue 8): a GCRA limiter (the "generic cell rate algorithm", a token bucket kept
 * as one timestamp per key) for every per-minute/per-hour/per-second rule, and daily counters
 * for per-day rules (fixed UTC days, so that "1000 per day" means what an operator reads; their
 * values are persisted by the store with each accepted message and reloaded after a restart).
 *
 * A rule allows `count` units per `period_ms` with a burst of `count`: a key that was idle for a
 * whole period may spend all of them at once, then one more every period_ms / count.
 *
 * Thread safety: a struct limit_table is shared by all threads (striped locks inside); every
 * call is O(1) in the number of keys (a hash table), and keys idle for longer than their
 * longest period are dropped when the table needs room (limit_table_new max_keys) or by
 * limit_table_expire. The clock is injectable (tests). */
#ifndef LIGHTR_LIMIT_H
#define LIGHTR_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIMIT_KEY_MAX 320 /* "acct:" + an address, "ip:" + an address, ... */

struct limit_rule {
	const char *name;  /* for messages and the API: "messages_per_minute" */
	uint64_t count;    /* units per period; 0 = no limit (always allowed) */
	int64_t period_ms; /* 1000, 60000, 3600000 */
};

struct limit_table;

/* max_keys bounds memory (when full, idle keys are evicted first; if none is idle, the oldest
 * state is dropped, which errs on the side of allowing). clock_ms NULL = CLOCK_MONOTONIC ms. */
struct limit_table *limit_table_new(size_t max_keys, int64_t (*clock_ms)(void));
void limit_table_free(struct limit_table **tp);

/* Would n units for key under rule be allowed now? When allowed and take, they are consumed.
 * Returns true when allowed; otherwise false with *retry_after_ms_r (may be NULL) = the
 * wait until n units would be allowed (>= 1). n > rule->count can never be allowed:
 * *retry_after_ms_r = -1 then. A rule with count 0 always allows and consumes nothing. key and
 * rule->name together form the bucket (one key may have several rules). */
bool limit_take(struct limit_table *t, const char *key, const struct limit_rule *rule, uint64_t n,
                bool take, int64_t *retry_after_ms_r);

/* Current state of a bucket for display: units still available now (0..count) and ms until it
 * is full again (0 when full). */
void limit_peek(struct limit_table *t, const char *key, const struct limit_rule *rule,
                uint64_t *available_r, int64_t *full_in_ms_r);

/* Gives back n units taken (e.g. a transaction that failed after the check). */
void limit_refund(struct limit_table *t, const char *key, const struct limit_rule *rule,
                  uint64_t n);

/* Drops every key idle for at least its rules' periods; returns how many went. */
size_t limit_table_expire(struct limit_table *t);
size_t limit_table_size(struct limit_table *t);

/* ---- daily counters ----
 * In-memory counts per (key, UTC day) with check-and-reserve, so two concurrent sends cannot
 * both pass a limit; the store persists the committed counts (store_limit_* in store.h) and
 * a fresh process loads them with limit_daily_load before using a key. */
struct limit_daily;
struct limit_daily *limit_daily_new(size_t max_keys, int64_t (*clock_s)(void));
void limit_daily_free(struct limit_daily **dp);
/* The current UTC day number (unix seconds / 86400) of the daily clock. */
int64_t limit_daily_today(struct limit_daily *d);
/* Sets the count of key for today when the key is not loaded yet (the store's value). */
void limit_daily_load(struct limit_daily *d, const char *key, uint64_t count);
/* true when key is loaded for today (else the caller loads it from the store first). */
bool limit_daily_loaded(struct limit_daily *d, const char *key);
/* Reserves n for key if count + n <= max (max 0 = unlimited); else false with
 * *reset_in_s_r = seconds until the UTC day ends. */
bool limit_daily_reserve(struct limit_daily *d, const char *key, uint64_t n, uint64_t max,
                         int64_t *reset_in_s_r);
/* Undoes a reservation that was not used. */
void limit_daily_release(struct limit_daily *d, const char *key, uint64_t n);
/* Today's count of key (0 when not loaded). */
uint64_t limit_daily_count(struct limit_daily *d, const char *key);

/* ---- authentication failures ----
 * Per client IP: each failure within window_s counts; after `delay_after` failures each further
 * attempt from that IP waits (failures - delay_after + 1) * step_ms, at most max_delay_ms;
 * after `lockout_after` failures the IP is locked out for lockout_s (every attempt from it is
 * refused without checking the password, so the right password from another IP still works).
 * Per account: failures only add delay (never a lockout, which would let anyone lock an account
 * out). A success for (ip, account) clears the account's count, not the IP's. */
struct limit_auth_policy {
	unsigned delay_after;   /* 3 */
	int64_t step_ms;        /* 1000 */
	int64_t max_delay_ms;   /* 10000 */
	unsigned lockout_after; /* 10 */
	int64_t lockout_s;      /* 900 */
	int64_t window_s;       /* 900 */
};
struct limit_auth;
struct limit_auth *limit_auth_new(const struct limit_auth_policy *p, size_t max_keys,
                                  int64_t (*clock_ms)(void));
void limit_auth_free(struct limit_auth **ap);
/* Before checking a password: > 0 = ms to wait first; 0 = go ahead; -1 = ip is locked out
 * (*locked_until_s_r = seconds left). *first_lockout_r (may be NULL) is true only for the first
 * refused attempt of a lockout window (log it once). */
int64_t limit_auth_check(struct limit_auth *a, const char *ip, const char *account,
                         int64_t *locked_left_s_r, bool *first_lockout_r);
void limit_auth_failed(struct limit_auth *a, const char *ip, const char *account);
void limit_auth_succeeded(struct limit_auth *a, const char *ip, const char *account);

#endif
