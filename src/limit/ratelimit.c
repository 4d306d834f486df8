/* GCRA rate limiter (see limit.h). One entry per (key, rule name) holds the theoretical arrival
 * time (TAT) of the next unit. Time is kept in units of ms * count, so that one unit of the rule
 * costs exactly period_ms of them and count units fit exactly into a period (no rounding drift
 * for 7 per second). Emission interval T = period_ms units; n units are allowed when
 * max(TAT, now) + n*T - now <= period; then TAT = max(TAT, now) + n*T. An entry whose TAT is
 * not after now is a full bucket, the same as no entry, so it can be dropped at no cost. */
#include "limit_private.h"

#include "util/clock.h"
#include "util/xalloc.h"

/* Periods are cut at ~34 years so that ms * count products stay far inside 128 bits. */
#define LIMIT_PERIOD_MAX ((int64_t)1 << 40)

struct limit_table {
	struct lmap *map;
	int64_t (*clock_ms)(void);
};

struct limit_table *
limit_table_new(size_t max_keys, int64_t (*clock_ms)(void))
{
	struct limit_table *t = xcalloc(1, sizeof *t);
	t->map = lmap_new(max_keys);
	t->clock_ms = clock_ms ? clock_ms : clock_mono_ms;
	return t;
}

void
limit_table_free(struct limit_table **tp)
{
	struct limit_table *t = *tp;
	if (t == NULL)
		return;
	*tp = NULL;
	lmap_free(&t->map);
	free(t);
}

static bool
gcra_idle(const struct lmap_entry *e, const void *ctx)
{
	int64_t now = *(const int64_t *)ctx;
	return e->u.gcra.tat <= (__int128)now * (__int128)e->u.gcra.count;
}

static bool
rule_is_unlimited(const struct limit_rule *rule)
{
	return rule == NULL || rule->count == 0 || rule->period_ms <= 0;
}

static __int128
rule_period(const struct limit_rule *rule)
{
	return rule->period_ms > LIMIT_PERIOD_MAX ? LIMIT_PERIOD_MAX : rule->period_ms;
}

/* Re-expresses e's TAT in units of count (a rule whose count changed, e.g. a new override); the
 * backlog is kept in whole ms, at most one period. */
static void
gcra_rescale(struct lmap_entry *e, int64_t now, uint64_t count, __int128 period)
{
	if (e->u.gcra.count == count)
		return;
	__int128 old_c = e->u.gcra.count, rel = e->u.gcra.tat - (__int128)now * old_c;
	__int128 rel_ms = rel > 0 ? (rel + old_c - 1) / old_c : 0;
	if (rel_ms > period)
		rel_ms = period;
	e->u.gcra.count = count;
	e->u.gcra.tat = ((__int128)now + rel_ms) * (__int128)count;
}

/* Ceiling of units / count in ms, at least 1. */
static int64_t
units_to_ms_ceil(__int128 units, uint64_t count)
{
	__int128 ms = (units + (__int128)count - 1) / (__int128)count;
	if (ms < 1)
		return 1;
	return ms > INT64_MAX ? INT64_MAX : (int64_t)ms;
}

bool
limit_take(struct limit_table *t, const char *key, const struct limit_rule *rule, uint64_t n,
           bool take, int64_t *retry_after_ms_r)
{
	int64_t dummy;
	if (retry_after_ms_r == NULL)
		retry_after_ms_r = &dummy;
	*retry_after_ms_r = 0;
	if (rule_is_unlimited(rule))
		return true;
	if (n > rule->count) {
		*retry_after_ms_r = -1;
		return false;
	}
	int64_t now = t->clock_ms();
	uint64_t c = rule->count;
	__int128 period = rule_period(rule);
	__int128 now_u = (__int128)now * (__int128)c, limit_u = period * (__int128)c;

	char kbuf[LIMIT_COMBINED_MAX];
	uint64_t h;
	size_t klen = lmap_key(t->map, key, rule->name, kbuf, &h);
	struct lmap_stripe *s = lmap_lock(t->map, h);
	struct lmap_entry *e = lmap_find(s, h, kbuf, klen);
	__int128 tat = now_u;
	if (e != NULL) {
		gcra_rescale(e, now, c, period);
		if (e->u.gcra.tat > now_u)
			tat = e->u.gcra.tat;
	}
	__int128 next = tat + (__int128)n * period;
	bool ok = next - now_u <= limit_u;
	if (ok && take && n > 0) {
		if (e == NULL) {
			e = lmap_insert(s, h, kbuf, klen, gcra_idle, &now);
			e->u.gcra.count = c;
		}
		e->u.gcra.tat = next;
	}
	lmap_unlock(s);
	if (!ok)
		*retry_after_ms_r = units_to_ms_ceil(next - limit_u - now_u, c);
	return ok;
}

void
limit_peek(struct limit_table *t, const char *key, const struct limit_rule *rule,
           uint64_t *available_r, int64_t *full_in_ms_r)
{
	uint64_t avail = 0;
	int64_t full_in = 0;
	if (!rule_is_unlimited(rule)) {
		int64_t now = t->clock_ms();
		uint64_t c = rule->count;
		__int128 period = rule_period(rule);
		__int128 now_u = (__int128)now * (__int128)c, limit_u = period * (__int128)c;
		char kbuf[LIMIT_COMBINED_MAX];
		uint64_t h;
		size_t klen = lmap_key(t->map, key, rule->name, kbuf, &h);
		struct lmap_stripe *s = lmap_lock(t->map, h);
		struct lmap_entry *e = lmap_find(s, h, kbuf, klen);
		__int128 tat = now_u;
		if (e != NULL) {
			gcra_rescale(e, now, c, period);
			if (e->u.gcra.tat > now_u)
				tat = e->u.gcra.tat;
		}
		lmap_unlock(s);
		__int128 room = now_u + limit_u - tat; /* units of the period still free */
		avail = room <= 0 ? 0 : (uint64_t)(room / period);
		if (avail > c)
			avail = c;
		full_in = tat > now_u ? units_to_ms_ceil(tat - now_u, c) : 0;
	}
	if (available_r)
		*available_r = avail;
	if (full_in_ms_r)
		*full_in_ms_r = full_in;
}

void
limit_refund(struct limit_table *t, const char *key, const struct limit_rule *rule, uint64_t n)
{
	if (rule_is_unlimited(rule) || n == 0)
		return;
	int64_t now = t->clock_ms();
	uint64_t c = rule->count;
	__int128 period = rule_period(rule), now_u = (__int128)now * (__int128)c;
	if (n > c)
		n = c;
	char kbuf[LIMIT_COMBINED_MAX];
	uint64_t h;
	size_t klen = lmap_key(t->map, key, rule->name, kbuf, &h);
	struct lmap_stripe *s = lmap_lock(t->map, h);
	struct lmap_entry *e = lmap_find(s, h, kbuf, klen);
	if (e != NULL) {
		gcra_rescale(e, now, c, period);
		e->u.gcra.tat -= (__int128)n * period;
		if (e->u.gcra.tat < now_u)
			e->u.gcra.tat = now_u;
	}
	lmap_unlock(s);
}

size_t
limit_table_expire(struct limit_table *t)
{
	int64_t now = t->clock_ms();
	return lmap_sweep(t->map, gcra_idle, &now);
}

size_t
limit_table_size(struct limit_table *t)
{
	return lmap_size(t->map);
}
