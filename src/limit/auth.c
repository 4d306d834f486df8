/* Authentication failure tracking (see limit.h): per client IP (delays, then a lockout) and per
 * account (delays only, so nobody can lock someone else's account out). Failures count in a
 * fixed window that starts with the first failure; a lockout ends with a clean slate for the
 * IP. Both kinds of entries live in one bounded map, keyed (ip, "ip") and (account, "acct");
 * the two stripes are locked one after the other, never together. */
#include "limit_private.h"

#include <limits.h>

#include "util/clock.h"
#include "util/xalloc.h"

#define AUTH_SECONDS_MAX (366 * 86400) /* lockout and window: keeps ms arithmetic in range */

struct limit_auth {
	struct limit_auth_policy pol;
	struct lmap *map;
	int64_t (*clock_ms)(void);
};

struct auth_now {
	int64_t now_ms, window_ms;
};

struct limit_auth *
limit_auth_new(const struct limit_auth_policy *p, size_t max_keys, int64_t (*clock_ms)(void))
{
	struct limit_auth *a = xcalloc(1, sizeof *a);
	a->pol = *p;
	if (a->pol.step_ms < 0)
		a->pol.step_ms = 0;
	if (a->pol.max_delay_ms < 0)
		a->pol.max_delay_ms = 0;
	if (a->pol.lockout_s < 0)
		a->pol.lockout_s = 0;
	if (a->pol.lockout_s > AUTH_SECONDS_MAX)
		a->pol.lockout_s = AUTH_SECONDS_MAX;
	if (a->pol.window_s < 1)
		a->pol.window_s = 1;
	if (a->pol.window_s > AUTH_SECONDS_MAX)
		a->pol.window_s = AUTH_SECONDS_MAX;
	a->map = lmap_new(max_keys);
	a->clock_ms = clock_ms ? clock_ms : clock_mono_ms;
	return a;
}

void
limit_auth_free(struct limit_auth **ap)
{
	struct limit_auth *a = *ap;
	if (a == NULL)
		return;
	*ap = NULL;
	lmap_free(&a->map);
	free(a);
}

/* Ends a finished lockout or an expired window. */
static void
auth_refresh(struct lmap_entry *e, int64_t now, int64_t window_ms)
{
	if (e->u.auth.locked_until_ms != 0) {
		if (now < e->u.auth.locked_until_ms)
			return;
		e->u.auth.locked_until_ms = 0;
		e->u.auth.lockout_reported = false;
		e->u.auth.failures = 0;
	} else if (e->u.auth.failures > 0 && now - e->u.auth.window_start_ms >= window_ms) {
		e->u.auth.failures = 0;
	}
}

static bool
auth_idle(const struct lmap_entry *e, const void *ctx)
{
	const struct auth_now *an = ctx;
	if (e->u.auth.locked_until_ms != 0)
		return an->now_ms >= e->u.auth.locked_until_ms;
	return e->u.auth.failures == 0 || an->now_ms - e->u.auth.window_start_ms >= an->window_ms;
}

static int64_t
auth_delay(const struct limit_auth *a, unsigned failures)
{
	if (failures == 0 || failures < a->pol.delay_after)
		return 0;
	int64_t steps = (int64_t)(failures - a->pol.delay_after) + 1;
	if (a->pol.step_ms > 0 && steps > a->pol.max_delay_ms / a->pol.step_ms)
		return a->pol.max_delay_ms;
	int64_t d = steps * a->pol.step_ms;
	return d > a->pol.max_delay_ms ? a->pol.max_delay_ms : d;
}

/* Locks the stripe of (who, kind) into *s_r and returns its entry, created when create. */
static struct lmap_entry *
auth_get(struct limit_auth *a, const char *who, const char *kind, bool create,
         const struct auth_now *an, struct lmap_stripe **s_r)
{
	char kbuf[LIMIT_COMBINED_MAX];
	uint64_t h;
	size_t klen = lmap_key(a->map, who, kind, kbuf, &h);
	struct lmap_stripe *s = lmap_lock(a->map, h);
	*s_r = s;
	struct lmap_entry *e = lmap_find(s, h, kbuf, klen);
	if (e == NULL && create)
		e = lmap_insert(s, h, kbuf, klen, auth_idle, an);
	if (e != NULL)
		auth_refresh(e, an->now_ms, an->window_ms);
	return e;
}

static bool
has_account(const char *account)
{
	return account != NULL && account[0] != '\0';
}

int64_t
limit_auth_check(struct limit_auth *a, const char *ip, const char *account,
                 int64_t *locked_left_s_r, bool *first_lockout_r)
{
	struct auth_now an = {a->clock_ms(), a->pol.window_s * 1000};
	struct lmap_stripe *s;
	int64_t delay = 0, locked_ms = 0;
	bool first = false;
	struct lmap_entry *e = auth_get(a, ip, "ip", false, &an, &s);
	if (e != NULL) {
		if (e->u.auth.locked_until_ms != 0) {
			locked_ms = e->u.auth.locked_until_ms - an.now_ms;
			first = !e->u.auth.lockout_reported;
			e->u.auth.lockout_reported = true;
		} else {
			delay = auth_delay(a, e->u.auth.failures);
		}
	}
	lmap_unlock(s);
	if (first_lockout_r)
		*first_lockout_r = first;
	if (locked_left_s_r)
		*locked_left_s_r = locked_ms > 0 ? (locked_ms + 999) / 1000 : 0;
	if (locked_ms > 0)
		return -1;
	if (has_account(account)) {
		e = auth_get(a, account, "acct", false, &an, &s);
		if (e != NULL) {
			int64_t d = auth_delay(a, e->u.auth.failures);
			if (d > delay)
				delay = d;
		}
		lmap_unlock(s);
	}
	return delay;
}

static void
auth_count(struct lmap_entry *e, int64_t now)
{
	if (e->u.auth.failures == 0)
		e->u.auth.window_start_ms = now;
	if (e->u.auth.failures < UINT_MAX)
		e->u.auth.failures++;
}

void
limit_auth_failed(struct limit_auth *a, const char *ip, const char *account)
{
	struct auth_now an = {a->clock_ms(), a->pol.window_s * 1000};
	struct lmap_stripe *s;
	struct lmap_entry *e = auth_get(a, ip, "ip", true, &an, &s);
	if (e->u.auth.locked_until_ms == 0) {
		auth_count(e, an.now_ms);
		if (a->pol.lockout_after > 0 && e->u.auth.failures >= a->pol.lockout_after &&
		    a->pol.lockout_s > 0) {
			e->u.auth.locked_until_ms = an.now_ms + a->pol.lockout_s * 1000;
			e->u.auth.lockout_reported = false;
		}
	}
	lmap_unlock(s);
	if (has_account(account)) {
		e = auth_get(a, account, "acct", true, &an, &s);
		auth_count(e, an.now_ms);
		lmap_unlock(s);
	}
}

void
limit_auth_succeeded(struct limit_auth *a, const char *ip, const char *account)
{
	if (!has_account(account))
		return;
	struct auth_now an = {a->clock_ms(), a->pol.window_s * 1000};
	struct lmap_stripe *s;
	struct lmap_entry *e = auth_get(a, account, "acct", false, &an, &s);
	if (e != NULL)
		lmap_remove(s, e);
	lmap_unlock(s);
}
