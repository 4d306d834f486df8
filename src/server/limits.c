/* Rate limits of the process (issue 8; server.h "rate limits"): the rules of the current config
 * (limits.*) with per-account and per-domain overrides from the store, applied with the
 * limiters of src/limit/. Keys: "a:<address>" (account), "d:<domain>" (sending domain),
 * "i:<ip>" (inbound client), "k:<id>" (API key); the daily counters are "<key>:messages" and
 * "<key>:recipients", persisted by store_deliver with each accepted message. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "limit/limit.h"
#include "server.h"
#include "util/log.h"

#define LIMITS_MAX_KEYS    200000
#define LIMITS_AUTH_STEP   1000  /* ms added per failure past delay_after */
#define LIMITS_AUTH_MAXDLY 10000 /* ms */

const char *const server_limit_rule_names[] = {"messages_per_minute",    "messages_per_hour",
                                               "messages_per_day",       "recipients_per_day",
                                               "recipients_per_message", NULL};
enum { R_MIN, R_HOUR, R_DAY, R_RCPT_DAY, R_RCPT_MSG };

static pthread_once_t limits_once = PTHREAD_ONCE_INIT;
static struct limit_table *buckets;
static struct limit_daily *daily;
static struct limit_auth *auth;

static void
limits_init(void)
{
	struct config *c = config_current();
	struct limit_auth_policy p = {.delay_after = 3,
	                              .step_ms = LIMITS_AUTH_STEP,
	                              .max_delay_ms = LIMITS_AUTH_MAXDLY,
	                              .lockout_after = 10,
	                              .lockout_s = 900,
	                              .window_s = 900};
	if (c != NULL) {
		p.delay_after = (unsigned)c->limits.auth.delay_after;
		p.lockout_after = (unsigned)c->limits.auth.lockout_after;
		p.lockout_s = (int64_t)c->limits.auth.lockout;
		p.window_s = (int64_t)c->limits.auth.lockout;
	}
	config_unref(&c);
	buckets = limit_table_new(LIMITS_MAX_KEYS, NULL);
	daily = limit_daily_new(LIMITS_MAX_KEYS, NULL);
	auth = limit_auth_new(&p, LIMITS_MAX_KEYS, NULL);
}

static const char *
scope_name(enum server_limit_scope s)
{
	static const char *const n[] = {"account", "domain", "client", "API key"};
	return n[s];
}

/* The effective values of the five send rules for an account or domain: the config's, then the
 * store's overrides. No config (a CLI that did not set one): no limits. */
static void
limits_effective(struct store *st, enum server_limit_scope scope, const char *name,
                 uint64_t v[SERVER_LIMIT_RULES], bool over[SERVER_LIMIT_RULES])
{
	memset(v, 0, SERVER_LIMIT_RULES * sizeof *v);
	memset(over, 0, SERVER_LIMIT_RULES * sizeof *over);
	struct config *c = config_current();
	if (c != NULL) {
		const struct config_send_limits *l =
		    scope == SERVER_LIMIT_ACCOUNT ? &c->limits.account : &c->limits.domain;
		v[R_MIN] = l->messages_per_minute;
		v[R_HOUR] = l->messages_per_hour;
		v[R_DAY] = l->messages_per_day;
		v[R_RCPT_DAY] = l->recipients_per_day;
		v[R_RCPT_MSG] = l->recipients_per_message;
	}
	config_unref(&c);
	struct store_limit_override *o = NULL;
	size_t n = 0;
	struct err err = {0};
	if (store_limit_overrides(
	        st, scope == SERVER_LIMIT_ACCOUNT ? STORE_LIMIT_ACCOUNT : STORE_LIMIT_DOMAIN, name,
	        &o, &n, &err) < 0)
		return; /* unknown account/domain (e.g. the API's sender check comes later) */
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < SERVER_LIMIT_RULES; r++)
			if (strcmp(o[i].rule, server_limit_rule_names[r]) == 0) {
				v[r] = o[i].value;
				over[r] = true;
			}
	store_limit_overrides_free(&o, n);
}

static void
verdict(struct server_limit_verdict *vd, int rule, enum server_limit_scope scope, const char *who,
        uint64_t limit, int64_t retry_s)
{
	static const char *const what[] = {"messages per minute", "messages per hour",
	                                   "messages per day", "recipients per day",
	                                   "recipients per message"};
	if (vd == NULL)
		return;
	vd->rule = server_limit_rule_names[rule];
	vd->scope = scope;
	(void)snprintf(vd->who, sizeof vd->who, "%s", who);
	vd->limit = limit;
	vd->retry_after_s = retry_s;
	if (retry_s < 0)
		(void)snprintf(vd->text, sizeof vd->text, "limit of %llu %s for %s %s exceeded",
		               (unsigned long long)limit, what[rule], scope_name(scope), who);
	else
		(void)snprintf(vd->text, sizeof vd->text,
		               "limit of %llu %s for %s %s reached, retry in %lld s",
		               (unsigned long long)limit, what[rule], scope_name(scope), who,
		               (long long)retry_s);
}

static const struct limit_rule *
gcra_rule(int r, uint64_t count, struct limit_rule *out)
{
	*out = (struct limit_rule){.name = server_limit_rule_names[r],
	                           .count = count,
	                           .period_ms = r == R_MIN ? 60000 : 3600000};
	return out;
}

/* Daily counts: the store's committed count (read every time: `lightr send` and other
 * processes add to it too) plus this process's reservations not yet committed ("pending").
 * A reservation becomes part of the store's count when its message commits
 * (server_limit_commit drops it from pending then) or is given back (server_limit_refund). */
static void
daily_key(const char *base, const char *what, char *key, size_t n)
{
	(void)snprintf(key, n, "%s:%s", base, what);
	if (!limit_daily_loaded(daily, key))
		limit_daily_load(daily, key, 0);
}

static uint64_t
daily_committed(struct store *st, const char *key)
{
	uint64_t count = 0;
	struct err err = {0};
	if (store_limit_usage(st, key, limit_daily_today(daily), &count, &err) < 0)
		log_error("limits - usage read failed key=%s: %s", key, err.msg);
	return count;
}

/* Seconds until the UTC day ends (when daily counts start again). */
static int64_t
daily_reset_in(void)
{
	int64_t now = (int64_t)time(NULL);
	return (now / 86400 + 1) * 86400 - now;
}

/* Reserves n of key under max (0 = unlimited) given the committed count c. */
static bool
daily_reserve(const char *key, uint64_t c, uint64_t n, uint64_t max, int64_t *reset_r)
{
	*reset_r = daily_reset_in();
	if (max == 0)
		return limit_daily_reserve(daily, key, n, 0, reset_r);
	if (c + n > max)
		return false;
	return limit_daily_reserve(daily, key, n, max - c, reset_r);
}

/* One scope of a send: check (take false) or take 1 message and n recipients (count_msg
 * false: recipients only, for RCPT checks). On a take, incs gets the daily keys. */
static bool
scope_send(struct store *st, enum server_limit_scope scope, const char *name, size_t n,
           bool count_msg, bool take, struct server_limit_taken *t, struct server_limit_verdict *vd)
{
	pthread_once(&limits_once, limits_init);
	char lower[300];
	size_t i = 0;
	for (; name[i] && i + 1 < sizeof lower; i++)
		lower[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] - 'A' + 'a') : name[i];
	lower[i] = '\0';
	name = lower; /* addresses and domains compare without regard to case */
	uint64_t v[SERVER_LIMIT_RULES];
	bool over[SERVER_LIMIT_RULES];
	limits_effective(st, scope, name, v, over);
	char base[LIMIT_KEY_MAX + 4];
	(void)snprintf(base, sizeof base, "%c:%s", scope == SERVER_LIMIT_ACCOUNT ? 'a' : 'd', name);
	if (v[R_RCPT_MSG] > 0 && n > v[R_RCPT_MSG]) {
		verdict(vd, R_RCPT_MSG, scope, name, v[R_RCPT_MSG], -1);
		return false;
	}
	struct limit_rule rule;
	int64_t retry = 0;
	/* check everything first, then take: a refusal takes nothing */
	for (int r = R_MIN; count_msg && r <= R_HOUR; r++)
		if (!limit_take(buckets, base, gcra_rule(r, v[r], &rule), 1, false, &retry)) {
			verdict(vd, r, scope, name, v[r], retry < 0 ? -1 : (retry + 999) / 1000);
			return false;
		}
	char kmsg[LIMIT_KEY_MAX + 16], krcpt[LIMIT_KEY_MAX + 16];
	daily_key(base, "messages", kmsg, sizeof kmsg);
	daily_key(base, "recipients", krcpt, sizeof krcpt);
	uint64_t c_msg = v[R_DAY] ? daily_committed(st, kmsg) : 0;
	uint64_t c_rcpt = v[R_RCPT_DAY] ? daily_committed(st, krcpt) : 0;
	int64_t reset = 0;
	if (count_msg && v[R_DAY] > 0 && c_msg + limit_daily_count(daily, kmsg) + 1 > v[R_DAY]) {
		reset = daily_reset_in();
		verdict(vd, R_DAY, scope, name, v[R_DAY], reset);
		return false;
	}
	if (v[R_RCPT_DAY] > 0 && c_rcpt + limit_daily_count(daily, krcpt) + n > v[R_RCPT_DAY]) {
		reset = daily_reset_in();
		verdict(vd, R_RCPT_DAY, scope, name, v[R_RCPT_DAY], reset);
		return false;
	}
	if (!take)
		return true;
	/* take: the same order; a race lost in between gives back what was taken */
	int took = 0;
	for (int r = R_MIN; r <= R_HOUR; r++, took++)
		if (!limit_take(buckets, base, gcra_rule(r, v[r], &rule), 1, true, &retry)) {
			verdict(vd, r, scope, name, v[r], retry < 0 ? -1 : (retry + 999) / 1000);
			goto undo;
		}
	if (!daily_reserve(kmsg, c_msg, 1, v[R_DAY], &reset)) {
		verdict(vd, R_DAY, scope, name, v[R_DAY], reset);
		goto undo;
	}
	if (!daily_reserve(krcpt, c_rcpt, n, v[R_RCPT_DAY], &reset)) {
		limit_daily_release(daily, kmsg, 1);
		verdict(vd, R_RCPT_DAY, scope, name, v[R_RCPT_DAY], reset);
		goto undo;
	}
	(void)snprintf(t->keys[t->n_incs], sizeof t->keys[0], "%s", kmsg);
	t->incs[t->n_incs] = (struct store_limit_inc){.key = t->keys[t->n_incs], .n = 1};
	t->n_incs++;
	(void)snprintf(t->keys[t->n_incs], sizeof t->keys[0], "%s", krcpt);
	t->incs[t->n_incs] = (struct store_limit_inc){.key = t->keys[t->n_incs], .n = n};
	t->n_incs++;
	return true;
undo:
	for (int r = R_MIN; r < R_MIN + took; r++)
		limit_refund(buckets, base, gcra_rule(r, v[r], &rule), 1);
	return false;
}

static const char *
domain_of_account(const char *account, const char *domain)
{
	if (domain != NULL)
		return domain;
	const char *at = account ? strrchr(account, '@') : NULL;
	return at ? at + 1 : NULL;
}

bool
server_limit_check_message(struct store *st, const char *account, const char *domain,
                           struct server_limit_verdict *v)
{
	domain = domain_of_account(account, domain);
	if (account && !scope_send(st, SERVER_LIMIT_ACCOUNT, account, 0, true, false, NULL, v))
		return false;
	return domain == NULL ||
	       scope_send(st, SERVER_LIMIT_DOMAIN, domain, 0, true, false, NULL, v);
}

bool
server_limit_check_rcpts(struct store *st, const char *account, const char *domain, size_t n,
                         struct server_limit_verdict *v)
{
	domain = domain_of_account(account, domain);
	if (account && !scope_send(st, SERVER_LIMIT_ACCOUNT, account, n, false, false, NULL, v))
		return false;
	return domain == NULL ||
	       scope_send(st, SERVER_LIMIT_DOMAIN, domain, n, false, false, NULL, v);
}

bool
server_limit_take_send(struct store *st, const char *account, const char *domain, size_t n,
                       struct server_limit_taken *t, struct server_limit_verdict *v)
{
	memset(t, 0, sizeof *t);
	domain = domain_of_account(account, domain);
	if (account && !scope_send(st, SERVER_LIMIT_ACCOUNT, account, n, true, true, t, v))
		return false;
	if (domain && !scope_send(st, SERVER_LIMIT_DOMAIN, domain, n, true, true, t, v)) {
		if (account) {
			(void)snprintf(t->account, sizeof t->account, "%s", account);
			t->n_rcpts = n;
			t->taken = true;
			server_limit_refund(t);
		}
		return false;
	}
	(void)snprintf(t->account, sizeof t->account, "%s", account ? account : "");
	(void)snprintf(t->domain, sizeof t->domain, "%s", domain ? domain : "");
	t->n_rcpts = n;
	t->taken = true;
	return true;
}

/* Gives back the per-minute/per-hour tokens (with the rules in force now) and the daily
 * reservations of one scope. */
/* Drops the pending daily reservations of one scope (committed or given back). */
static void
scope_release(enum server_limit_scope scope, const char *name, size_t n)
{
	if (name[0] == '\0')
		return;
	char base[LIMIT_KEY_MAX + 4], key[LIMIT_KEY_MAX + 16];
	(void)snprintf(base, sizeof base, "%c:%s", scope == SERVER_LIMIT_ACCOUNT ? 'a' : 'd', name);
	(void)snprintf(key, sizeof key, "%s:messages", base);
	limit_daily_release(daily, key, 1);
	(void)snprintf(key, sizeof key, "%s:recipients", base);
	limit_daily_release(daily, key, n);
}

/* Gives back the per-minute/per-hour tokens (with the rules in force now) and the daily
 * reservations of one scope. */
static void
scope_refund(enum server_limit_scope scope, const char *name, size_t n)
{
	if (name[0] == '\0')
		return;
	struct config *c = config_current();
	const struct config_send_limits *l =
	    c ? (scope == SERVER_LIMIT_ACCOUNT ? &c->limits.account : &c->limits.domain) : NULL;
	char base[LIMIT_KEY_MAX + 4];
	(void)snprintf(base, sizeof base, "%c:%s", scope == SERVER_LIMIT_ACCOUNT ? 'a' : 'd', name);
	struct limit_rule rule;
	if (l) {
		limit_refund(buckets, base, gcra_rule(R_MIN, l->messages_per_minute, &rule), 1);
		limit_refund(buckets, base, gcra_rule(R_HOUR, l->messages_per_hour, &rule), 1);
	}
	config_unref(&c);
	scope_release(scope, name, n);
}

void
server_limit_commit(struct server_limit_taken *t)
{
	if (t == NULL || !t->taken)
		return;
	pthread_once(&limits_once, limits_init);
	scope_release(SERVER_LIMIT_ACCOUNT, t->account, t->n_rcpts);
	scope_release(SERVER_LIMIT_DOMAIN, t->domain, t->n_rcpts);
	t->taken = false;
}

void
server_limit_refund(struct server_limit_taken *t)
{
	if (t == NULL || !t->taken)
		return;
	pthread_once(&limits_once, limits_init);
	scope_refund(SERVER_LIMIT_ACCOUNT, t->account, t->n_rcpts);
	scope_refund(SERVER_LIMIT_DOMAIN, t->domain, t->n_rcpts);
	t->taken = false;
}

bool
server_limit_ip(const char *ip, const char *rule_name, struct server_limit_verdict *v)
{
	pthread_once(&limits_once, limits_init);
	struct config *c = config_current();
	uint64_t count = 0;
	if (c != NULL) {
		if (strcmp(rule_name, "connections_per_minute") == 0)
			count = c->limits.ip.connections_per_minute;
		else if (strcmp(rule_name, "messages_per_minute") == 0)
			count = c->limits.ip.messages_per_minute;
		else if (strcmp(rule_name, "recipients_per_minute") == 0)
			count = c->limits.ip.recipients_per_minute;
	}
	config_unref(&c);
	char key[LIMIT_KEY_MAX];
	(void)snprintf(key, sizeof key, "i:%s", ip);
	struct limit_rule rule = {.name = rule_name, .count = count, .period_ms = 60000};
	int64_t retry = 0;
	if (limit_take(buckets, key, &rule, 1, true, &retry))
		return true;
	if (v) {
		v->rule = rule_name;
		v->scope = SERVER_LIMIT_IP;
		(void)snprintf(v->who, sizeof v->who, "%s", ip);
		v->limit = count;
		v->retry_after_s = retry < 0 ? -1 : (retry + 999) / 1000;
		(void)snprintf(v->text, sizeof v->text,
		               "limit of %llu %s per minute for client %s reached, retry in %lld s",
		               (unsigned long long)count,
		               strncmp(rule_name, "connections", 11) == 0 ? "connections"
		               : strncmp(rule_name, "messages", 8) == 0   ? "messages"
		                                                          : "recipients",
		               ip, (long long)v->retry_after_s);
	}
	return false;
}

bool
server_limit_apikey(int64_t key_id, struct server_limit_verdict *v)
{
	pthread_once(&limits_once, limits_init);
	struct config *c = config_current();
	uint64_t count = c ? c->limits.api.requests_per_second : 0;
	config_unref(&c);
	char key[64];
	(void)snprintf(key, sizeof key, "k:%lld", (long long)key_id);
	struct limit_rule rule = {.name = "requests_per_second", .count = count, .period_ms = 1000};
	int64_t retry = 0;
	if (limit_take(buckets, key, &rule, 1, true, &retry))
		return true;
	if (v) {
		v->rule = "requests_per_second";
		v->scope = SERVER_LIMIT_APIKEY;
		(void)snprintf(v->who, sizeof v->who, "key %lld", (long long)key_id);
		v->limit = count;
		v->retry_after_s = 1;
		(void)snprintf(
		    v->text, sizeof v->text,
		    "limit of %llu requests per second for API key %lld reached, retry in 1 s",
		    (unsigned long long)count, (long long)key_id);
	}
	return false;
}

int64_t
server_auth_gate(const char *ip, const char *account)
{
	pthread_once(&limits_once, limits_init);
	int64_t left = 0;
	bool first = false;
	int64_t r = limit_auth_check(auth, ip, account ? account : "", &left, &first);
	if (r < 0 && first)
		log_warn(
		    "auth - lockout client=%s for=%llds (after repeated failures; logged once)", ip,
		    (long long)left);
	return r;
}

void
server_auth_result(const char *ip, const char *account, bool ok)
{
	pthread_once(&limits_once, limits_init);
	if (ok)
		limit_auth_succeeded(auth, ip, account ? account : "");
	else
		limit_auth_failed(auth, ip, account ? account : "");
}

int
server_limit_usage(struct store *st, enum server_limit_scope scope, const char *name,
                   struct server_limit_usage out[SERVER_LIMIT_RULES], struct err *err)
{
	pthread_once(&limits_once, limits_init);
	if (scope == SERVER_LIMIT_ACCOUNT) {
		struct store_account a;
		if (store_account_get(st, name, &a, err) < 0)
			return -1;
		store_account_deinit(&a);
	} else {
		struct store_domain d;
		if (store_domain_get(st, name, &d, err) < 0)
			return -1;
		store_domain_deinit(&d);
	}
	uint64_t v[SERVER_LIMIT_RULES];
	bool over[SERVER_LIMIT_RULES];
	limits_effective(st, scope, name, v, over);
	char base[LIMIT_KEY_MAX], key[LIMIT_KEY_MAX + 16];
	(void)snprintf(base, sizeof base, "%c:%s", scope == SERVER_LIMIT_ACCOUNT ? 'a' : 'd', name);
	int64_t now = (int64_t)time(NULL), midnight = (now / 86400 + 1) * 86400 - now;
	for (int r = 0; r < SERVER_LIMIT_RULES; r++) {
		out[r] = (struct server_limit_usage){
		    .rule = server_limit_rule_names[r], .limit = v[r], .overridden = over[r]};
		if (r <= R_HOUR) {
			struct limit_rule rule;
			uint64_t avail = 0;
			int64_t full_ms = 0;
			limit_peek(buckets, base, gcra_rule(r, v[r], &rule), &avail, &full_ms);
			out[r].used = v[r] > avail ? v[r] - avail : 0;
			out[r].resets_in_s = (full_ms + 999) / 1000;
		} else if (r <= R_RCPT_DAY) {
			daily_key(base, r == R_DAY ? "messages" : "recipients", key, sizeof key);
			out[r].used = daily_committed(st, key) + limit_daily_count(daily, key);
			out[r].resets_in_s = midnight;
		}
	}
	return 0;
}
