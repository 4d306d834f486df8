/* Configuration: one YAML file (DESIGN.md §5) read with libyaml and checked against the one
 * parameter table in params.c {path, type, default, min, max, reloadable}. Every problem is
 * reported, all at once, as "lightr.yaml:42: smtp.max_recipients: 0 is below minimum 1".
 * Only server/, http/ and cli/ read this module; lower layers get plain *_limits structs.
 *
 * A struct config is immutable once loaded and reference counted: readers take a reference with
 * config_current() and drop it with config_unref(); SIGHUP builds a new one, validates it and
 * swaps it in with config_set_current(), so a half-applied config cannot be seen. */
#ifndef LIGHTR_CONFIG_H
#define LIGHTR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum listener_role {
	LISTENER_MX,          /* SMTP inbound, no AUTH (port 25) */
	LISTENER_SUBMISSION,  /* SMTP STARTTLS + AUTH (587) */
	LISTENER_SUBMISSIONS, /* SMTP implicit TLS (465) */
	LISTENER_IMAP,        /* IMAP STARTTLS (143) */
	LISTENER_IMAPS,       /* IMAP implicit TLS (993) */
	LISTENER_HTTP,        /* REST API, tracking, health */
};

struct config_listener {
	enum listener_role role;
	char *address; /* "host:port", "[v6]:port"; validated syntax */
	bool tls;      /* implicit TLS: true for submissions/imaps, optional for http */
};

struct config {
	char *path;     /* file it was loaded from; NULL = built-in defaults */
	char *hostname; /* greeting, Received, authserv-id */
	char *data_dir;
	char *user; /* privileges dropped to this user when started as root */
	struct {
		char *cert, *key; /* both NULL: self-signed in data_dir */
	} tls;
	struct config_listener *listeners;
	size_t n_listeners;
	struct {
		char *level; /* debug, info, warn, error */
	} log;
	struct {
		uint64_t max_message_size; /* bytes (RFC 1870 SIZE) */
		uint64_t max_recipients;   /* per message (RFC 5321 §4.5.3.1.8: at least 100) */
		uint64_t max_messages_per_connection; /* then 421 4.7.0 */
		uint64_t max_errors;        /* protocol errors per connection, then 421 4.7.0 */
		uint64_t max_auth_failures; /* failed AUTH per connection, then 421 4.7.0 */
		uint64_t
		    auth_failure_delay; /* seconds; the n-th failure is answered after n * this */
		char *subaddress_separator; /* "+", "-", "_" or "none" */
		uint64_t timeout; /* seconds to wait for a whole command line, or for each read
		                   * inside DATA/BDAT (RFC 5321 §4.5.3.2.7: at least 5 minutes) */
	} smtp;
	struct {
		uint64_t max_line;         /* bytes per command line after login (RFC 9051 §4) */
		uint64_t preauth_max_line; /* ... before login */
		uint64_t max_literal;      /* bytes per literal after login = APPENDLIMIT */
		uint64_t preauth_max_literal; /* ... before login */
		uint64_t max_command;         /* a whole command with its literals */
		uint64_t max_depth;           /* parenthesis nesting */
		uint64_t max_errors;          /* BAD commands per connection, then BYE */
		uint64_t max_auth_failures;   /* failed LOGIN/AUTHENTICATE, then BYE */
		uint64_t auth_failure_delay;  /* seconds; the n-th failure waits n * this */
		uint64_t preauth_timeout;     /* seconds idle before login */
		uint64_t
		    timeout; /* seconds idle after login (RFC 9051 §5.4: at least 30 minutes) */
		bool plaintext_auth_loopback; /* LOGIN without TLS from 127.0.0.0/8 and ::1 */
	} imap;
	struct {
		uint64_t max_send_size; /* request body of POST /api/v1/messages[/raw] */
		uint64_t max_body_size; /* request body of every other API request */
	} api;
	struct {
		uint64_t max_connections;        /* all listeners together */
		uint64_t max_connections_per_ip; /* per client address, per listener kind */
		uint64_t shutdown_timeout;       /* seconds sessions get to finish on SIGTERM */
		/* outbound (issue 8), per account and per sending domain; 0 = unlimited */
		struct config_send_limits {
			uint64_t messages_per_minute, messages_per_hour, messages_per_day;
			uint64_t recipients_per_day, recipients_per_message;
		} account, domain;
		struct { /* inbound, per client IP on the MX listener */
			uint64_t connections_per_minute, messages_per_minute, recipients_per_minute;
		} ip;
		struct { /* authentication failures (SMTP AUTH, IMAP, API keys) per client IP */
			uint64_t delay_after, lockout_after, lockout;
		} auth;
		struct {
			uint64_t requests_per_second; /* per API key */
		} api;
	} limits;
	struct {
		uint64_t max_concurrent_hashes; /* argon2id computations at once (64 MiB each) */
	} auth;
	struct {
		char *retry_schedule; /* "1m,5m,..." comma-separated durations (1s..7d, at most 32):
		                       * wait after the n-th failed attempt, the last one repeats */
		uint64_t max_age;     /* seconds before a deferred message bounces (RFC 5321
		                       * §4.5.4.1: 4-5 days) */
		uint64_t delay_warning;            /* seconds before a "delayed" DSN; 0 = none */
		uint64_t workers;                  /* delivery threads */
		uint64_t max_per_destination;      /* concurrent deliveries to one domain */
		char *helo_name;                   /* EHLO name; NULL = hostname */
		char *source_address;              /* local IP to connect from; NULL = any */
		char *relay;                       /* smarthost "host:port"; NULL = MX delivery */
		char *relay_user, *relay_password; /* AUTH at the smarthost; NULL = none */
		char *relay_tls;                   /* none, starttls, tls */
		char *routes; /* "domain=host:port,..." per-domain next hop; NULL = none */
		uint64_t connect_timeout; /* seconds per connection attempt */
		uint64_t mx_port;         /* port of MX hosts (25; tests use another) */
	} delivery;
	struct {
		char *forwarders; /* "ip,ip@port,..." recursive resolvers; NULL = system resolver */
	} dns;
	struct {
		bool allow_private_addresses; /* webhook URLs on loopback/private networks (SSRF) */
		uint64_t timeout;             /* seconds per delivery attempt */
		uint64_t workers;             /* deliveries at once */
		char *retry_schedule;         /* "1m,2m,..." delays between attempts */
	} webhooks;
	struct {
		char *base_url; /* "https://mail.example.com": links and pixels; NULL = off */
	} tracking;
	struct {
		bool authenticate;  /* SPF, DKIM, DMARC on MX mail (issue 9) */
		char *dmarc_reject; /* "reject", "quarantine", "none": a DMARC failure under
		                       p=reject */
		char *spf_fail;     /* the same for an SPF "fail" */
	} inbound;
	struct {
		uint64_t retention;         /* seconds events are kept */
		uint64_t received_body_max; /* bytes of text/HTML body in message.received */
	} events;
	int refs_; /* private: reference count */
};

/* Where the config comes from (DESIGN.md §6): cli_path when not NULL, else $LIGHTR_CONFIG,
 * else "./lightr.yaml" when it exists, else NULL (built-in defaults). Returns a static or
 * argument-owned string; do not free. */
const char *config_find_path(const char *cli_path);

/* Loads and validates path (NULL: built-in defaults only). On success returns a config with one
 * reference. On any problem returns NULL and appends one line per problem to errs, each
 * "file:line: key.path: message\n". Unknown keys, wrong types, out-of-range and negative
 * numbers, and bad listener entries are all problems. Thread-safe. */
struct config *config_load(const char *path, struct buf *errs);

/* Like config_load() on bytes already in memory (at most 1 MiB); name stands for the file in
 * messages and becomes c->path. Used by config_load() and the fuzz target. */
struct config *config_load_buffer(const char *name, const void *data, size_t len, struct buf *errs);

/* Takes one more reference and returns c (accepts NULL). Thread-safe. */
struct config *config_ref(struct config *c);
/* Drops a reference; frees at zero; sets *cp = NULL; accepts NULL. */
void config_unref(struct config **cp);

/* The current process-wide config, with a new reference the caller must drop. NULL before the
 * first config_set_current(). Thread-safe. */
struct config *config_current(void);
/* Installs c (takes over the caller's reference) and drops the previous one. */
void config_set_current(struct config *c);

/* Writes the config as YAML in table order, every parameter with its value ("config dump"), or
 * with its built-in default when defaults is true. Listeners are written as a YAML list. */
void config_dump(const struct config *c, bool defaults, struct buf *out);

/* Appends "key.path\n" for each non-reloadable parameter whose value differs between old and
 * new; returns how many. Used by SIGHUP reload to report changes that need a restart. */
int config_diff_nonreloadable(const struct config *old, const struct config *neu, struct buf *out);

const char *config_role_name(enum listener_role role);

#endif
