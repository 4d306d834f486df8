/* Daily counters (see limit.h): one entry per key with the UTC day number its count belongs
 * to. An entry of an earlier day reads as "not loaded" and is reset to 0 by the next
 * reservation, so a new day needs no sweep. Reservation is check-and-add under the stripe lock,
 * so two concurrent sends cannot both pass the last unit. */
#include "limit_private.h"

#include "util/clock.h"
#include "util/xalloc.h"

#define DAY_S 86400

struct limit_daily {
	struct lmap *map;
	int64_t (*clock_s)(void);
};

struct limit_daily *
limit_daily_new(size_t max_keys, int64_t (*clock_s)(void))
{
	struct limit_daily *d = xcalloc(1, sizeof *d);
	d->map = lmap_new(max_keys);
	d->clock_s = clock_s ? clock_s : clock_now;
	return d;
}

void
limit_daily_free(struct limit_daily **dp)
{
	struct limit_daily *d = *dp;
	if (d == NULL)
		return;
	*dp = NULL;
	lmap_free(&d->map);
	free(d);
}

int64_t
limit_daily_today(struct limit_daily *d)
{
	return limit_floor_div(d->clock_s(), DAY_S);
}

/* Entries of an earlier day are evicted first. */
static bool
daily_idle(const struct lmap_entry *e, const void *ctx)
{
	return e->u.daily.day != *(const int64_t *)ctx;
}

/* Finds key's entry (locked stripe in *s_r); creates it for today with count 0 when create
 * (*created_r, may be NULL, tells). */
static struct lmap_entry *
daily_get(struct limit_daily *d, const char *key, int64_t today, bool create,
          struct lmap_stripe **s_r, bool *created_r)
{
	char kbuf[LIMIT_COMBINED_MAX];
	uint64_t h;
	size_t klen = lmap_key(d->map, key, NULL, kbuf, &h);
	struct lmap_stripe *s = lmap_lock(d->map, h);
	*s_r = s;
	struct lmap_entry *e = lmap_find(s, h, kbuf, klen);
	if (e == NULL && create) {
		e = lmap_insert(s, h, kbuf, klen, daily_idle, &today);
		e->u.daily.day = today;
		e->u.daily.count = 0;
		if (created_r)
			*created_r = true;
	}
	return e;
}

void
limit_daily_load(struct limit_daily *d, const char *key, uint64_t count)
{
	int64_t today = limit_daily_today(d);
	struct lmap_stripe *s;
	bool created = false;
	struct lmap_entry *e = daily_get(d, key, today, true, &s, &created);
	if (created || e->u.daily.day != today) {
		e->u.daily.day = today;
		e->u.daily.count = count;
	}
	lmap_unlock(s);
}

bool
limit_daily_loaded(struct limit_daily *d, const char *key)
{
	int64_t today = limit_daily_today(d);
	struct lmap_stripe *s;
	struct lmap_entry *e = daily_get(d, key, today, false, &s, NULL);
	bool loaded = e != NULL && e->u.daily.day == today;
	lmap_unlock(s);
	return loaded;
}

bool
limit_daily_reserve(struct limit_daily *d, const char *key, uint64_t n, uint64_t max,
                    int64_t *reset_in_s_r)
{
	int64_t now = d->clock_s();
	int64_t today = limit_floor_div(now, DAY_S);
	struct lmap_stripe *s;
	struct lmap_entry *e = daily_get(d, key, today, true, &s, NULL);
	if (e->u.daily.day != today) {
		e->u.daily.day = today;
		e->u.daily.count = 0;
	}
	uint64_t cur = e->u.daily.count;
	bool ok = cur + n >= cur && (max == 0 || cur + n <= max);
	if (ok)
		e->u.daily.count = cur + n;
	lmap_unlock(s);
	if (reset_in_s_r)
		*reset_in_s_r = ok ? 0 : (today + 1) * DAY_S - now;
	return ok;
}

void
limit_daily_release(struct limit_daily *d, const char *key, uint64_t n)
{
	int64_t today = limit_daily_today(d);
	struct lmap_stripe *s;
	struct lmap_entry *e = daily_get(d, key, today, false, &s, NULL);
	if (e != NULL && e->u.daily.day == today)
		e->u.daily.count -= n < e->u.daily.count ? n : e->u.daily.count;
	lmap_unlock(s);
}

uint64_t
limit_daily_count(struct limit_daily *d, const char *key)
{
	int64_t today = limit_daily_today(d);
	struct lmap_stripe *s;
	struct lmap_entry *e = daily_get(d, key, today, false, &s, NULL);
	uint64_t n = e != NULL && e->u.daily.day == today ? e->u.daily.count : 0;
	lmap_unlock(s);
	return n;
}
