/* The daemon (`lightr serve`): opens the store, binds every configured listener, drops
 * privileges, runs a thread per connection, reloads on SIGHUP and shuts down cleanly on
 * SIGTERM/SIGINT. */
#ifndef LIGHTR_SERVER_H
#define LIGHTR_SERVER_H

#include <stdint.h>

#include "config/config.h"
#include "http/http.h"
#include "store/store.h"

/* Runs the server with cfg (takes over the caller's reference) until SIGTERM/SIGINT. Returns the
 * process exit status: 0 after a clean shutdown, 1 when start-up failed (the reason is logged). */
int server_run(struct config *cfg);

/* ---- administration shared by the CLI and the REST API (admin.c) ----
 * Errors carry a store_errcode (ENOTFOUND: no such domain; EINVAL: a bad argument). */
#define SERVER_SELECTOR_MAX 64
/* One new active DKIM key for domain: algo "ed25519" or "rsa" (bits 2048, 3072 or 4096; ignored
 * for ed25519); selector NULL = "<algo>-<YYYYMMDD>" (made unique). selector_r may be NULL. */
int server_dkim_generate(struct store *st, const char *domain, const char *algo, unsigned bits,
                         const char *selector, int64_t now, char selector_r[SERVER_SELECTOR_MAX],
                         struct err *err);
/* A new domain's keys: one Ed25519 and one RSA-2048, both active. */
int server_dkim_default_keys(struct store *st, const char *domain, struct err *err);
/* New Ed25519 and RSA-2048 keys sign from now; the active ones stay published keep_days.
 * selectors_r (may be NULL) gets the two new selectors. */
int server_dkim_rotate(struct store *st, const char *domain, unsigned keep_days, int64_t now,
                       char selectors_r[2][SERVER_SELECTOR_MAX], struct err *err);
/* The records domain needs in DNS: MX (to hostname), SPF, one DKIM TXT per active or published
 * key, DMARC (free with http_dns_records_free). */
int server_domain_dns(struct store *st, const char *domain, const char *hostname,
                      struct http_dns_record **v_r, size_t *n_r, struct err *err);

/* ---- rate limits (limits.c, issue 8) ----
 * One process-wide set of limiters (src/limit/): GCRA buckets for per-second/minute/hour rules,
 * daily counters for per-day rules (loaded from and persisted by the store, so they survive a
 * restart), and the authentication-failure tracker. The effective limit of a rule is the
 * account's or domain's override (store_limit_overrides) else the current config
 * (limits.account.* / limits.domain.*; 0 = unlimited). Outbound budgets (account, domain) and
 * inbound ones (client IP on the MX listener) are separate keys. Thread-safe. */
enum server_limit_scope {
	SERVER_LIMIT_ACCOUNT,
	SERVER_LIMIT_DOMAIN,
	SERVER_LIMIT_IP,
	SERVER_LIMIT_APIKEY
};
struct server_limit_verdict {
	const char *rule; /* "messages_per_minute", ... */
	enum server_limit_scope scope;
	char who[320]; /* the account, domain, IP or "key <id>" */
	uint64_t limit;
	int64_t retry_after_s; /* when it frees (>= 1); -1 = never for this message
	                        * (recipients_per_message) */
	char text[240];        /* "limit of 10 messages per minute for a@example.com reached,
	                        * retry in 6 s": for SMTP replies, API errors and logs */
};
/* What a send took, to persist (store_delivery.limit_incs) or to give back. */
struct server_limit_taken {
	struct store_limit_inc incs[4];
	size_t n_incs;
	char keys[4][360];
	char account[320], domain[256];
	size_t n_rcpts;
	bool taken;
};
/* At MAIL FROM (account may be NULL: API and domain-only sends): is one more message within
 * every message rule of the account and its domain? Nothing is taken. */
bool server_limit_check_message(struct store *st, const char *account, const char *domain,
                                struct server_limit_verdict *v);
/* At RCPT: would a message with n recipients (this one included) fit recipients_per_message
 * and the recipients_per_day budgets? Nothing is taken. */
bool server_limit_check_rcpts(struct store *st, const char *account, const char *domain, size_t n,
                              struct server_limit_verdict *v);
/* When the message is accepted: takes 1 message and n recipients under every rule at once, or
 * nothing (false + v). t gets the daily increments for store_deliver. */
bool server_limit_take_send(struct store *st, const char *account, const char *domain, size_t n,
                            struct server_limit_taken *t, struct server_limit_verdict *v);
/* Gives back what t took (the delivery failed after the take). */
void server_limit_refund(struct server_limit_taken *t);
/* The delivery with t's increments committed: the daily counts are now the store's. */
void server_limit_commit(struct server_limit_taken *t);
/* Inbound, per client IP on the MX listener: rule "connections_per_minute",
 * "messages_per_minute" or "recipients_per_minute" (limits.ip.*); takes 1. */
bool server_limit_ip(const char *ip, const char *rule, struct server_limit_verdict *v);
/* API requests per key per second (limits.api.requests_per_second); takes 1. */
bool server_limit_apikey(int64_t key_id, struct server_limit_verdict *v);
/* Authentication attempts (SMTP AUTH, IMAP LOGIN/AUTHENTICATE, API keys) from ip for account
 * (may be "" when unknown): > 0 = ms to wait before checking; 0 = go; -1 = ip locked out
 * (logged once per lockout). server_auth_result records the outcome. */
int64_t server_auth_gate(const char *ip, const char *account);
void server_auth_result(const char *ip, const char *account, bool ok);
/* Current limits and usage of an account or domain, one row per rule (for the API and
 * `lightr account show`): limit 0 = unlimited; used = units in the current window (per-minute
 * and per-hour rules: taken and not yet refilled), resets_in_s = until the window frees fully. */
struct server_limit_usage {
	const char *rule;
	uint64_t limit, used;
	int64_t resets_in_s;
	bool overridden;
};
#define SERVER_LIMIT_RULES 5
int server_limit_usage(struct store *st, enum server_limit_scope scope, const char *name,
                       struct server_limit_usage out[SERVER_LIMIT_RULES], struct err *err);
/* The rule names an override may set (NULL-terminated). */
extern const char *const server_limit_rule_names[];

#endif
