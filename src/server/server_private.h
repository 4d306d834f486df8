/* Shared pieces of the daemon, private to src/server/: the listener descriptions handed to the
 * connection drivers, the drivers themselves (one thread per connection, the only code that
 * touches client sockets; STYLE.md B.1) and the libmicrohttpd glue. */
#ifndef LIGHTR_SERVER_PRIVATE_H
#define LIGHTR_SERVER_PRIVATE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "net/conn.h"
#include "net/pool.h"
#include "smtp/server.h"
#include "policy/policy.h"
#include "store/store.h"
#include "util/err.h"

#ifndef LIGHTR_VERSION
#define LIGHTR_VERSION "0.1.0"
#endif

/* Per-IP counting classes (net_service.kind): SMTP and IMAP clients are counted apart. */
enum server_kind {
	SERVER_KIND_SMTP,
	SERVER_KIND_IMAP,
};

/* One bound SMTP or IMAP listener; lives from start-up until server_run returns. */
struct server_listener {
	enum listener_role role;
	const char *name;     /* config_role_name(role): "mx", "imaps", ... */
	bool implicit_tls;    /* handshake before the greeting (submissions, imaps) */
	bool starttls;        /* STARTTLS offered before TLS (submission, imap) */
	SSL_CTX *tls;         /* shared server context */
	const char *hostname; /* start-up value (not reloadable): greetings and replies */
	struct store *store;  /* set once the store is open, before the first accept */
	char busy_reply[320]; /* sent when over a connection limit (plaintext listeners) */
};

/* Connection ids: 8 random hex digits, enough to follow one session through the log. */
#define SERVER_ID_LEN 9
void server_conn_id(char out[SERVER_ID_LEN]);

/* TLS on a session: the implicit handshake or the STARTTLS upgrade; discard (may be NULL: the
 * session dropped its own buffer) is emptied first (CVE-2011-0411). Logs "<component> <id>
 * tls|starttls version=.. cipher=..", or the failure. NULL on success, else the disconnect reason.
 */
const char *server_tls_begin(const char *component, const char *id, struct conn *c, SSL_CTX *ctx,
                             struct conn_lines *discard, bool starttls, int timeout_ms);

/* True once SIGTERM/SIGINT was received: drivers that see EOF say goodbye with a "shutting down"
 * reply, because the daemon shuts down the read side of lingering sessions first. */
bool server_is_stopping(void);

/* Session drivers (net_conn_fn): arg is the struct server_listener. Each logs its connect and
 * disconnect lines, reads its timeouts and hostname from config_current() at session start. */
void server_smtp_conn(struct conn *c, void *arg);
void server_imap_conn(struct conn *c, void *arg);

/* SMTP session hooks (hooks.c): recipient resolution, AUTH, sender checks and delivery, on the
 * store. ctx is a struct server_smtp_ctx living as long as the session. */
struct server_smtp_ctx {
	struct store *store;
	char subaddress_sep;   /* '\0': off */
	const char *id;        /* connection id, for logs */
	const char *client_ip; /* rate limits and auth-failure tracking (issue 8) */
	bool submission;       /* submission/submissions listener: outbound limits, else inbound */
};
void server_smtp_hooks(struct server_smtp_ctx *ctx, struct smtp_hooks *hooks_r);
/* Before a password check (SMTP AUTH, IMAP LOGIN/AUTHENTICATE; hooks.c): asks
 * server_auth_gate(ip, user) and waits the delay it gives (at most 10 s) on this thread. false:
 * the IP is locked out; treat the attempt as failed without checking the password (and without
 * calling server_auth_result). component/id are for the log line. */
bool server_auth_wait(const char *component, const char *id, const char *ip, const char *user);
/* After the check: server_auth_result(ip, user, ok). Both lower-case user (ASCII) first, as
 * addresses are case-insensitive. */
void server_auth_done(const char *ip, const char *user, bool ok);

/* Makes the outbound scheduler look for due work now (after a message was queued); no-op when
 * the queue is not running (CLI, tests). Thread-safe. */
void server_queue_wake(void);

/* ---- events (events_run.c) ---- */
/* Starts the webhook sender and the events housekeeping (retention); after store_open. */
int server_events_start(struct store *st, const struct config *c, struct err *err);
/* Stops both (waits for webhook attempts in flight); before store_close. Idempotent. */
void server_events_stop(void);
/* An event was added: the webhook sender looks at once. No-op when not running. */
void server_events_wake(void);

/* ---- inbound message authentication (authcheck.c, issue 9) ---- */
enum authcheck_action { AUTHCHECK_NONE, AUTHCHECK_QUARANTINE, AUTHCHECK_REJECT };
struct server_authcheck {
	bool checked;       /* inbound.authenticate on and a resolver available */
	struct buf msg;     /* the message without forged Authentication-Results of ours */
	struct buf authres; /* "Authentication-Results: ...\r\n" (when checked) */
	struct spf_outcome spf;
	struct dkim_verify_result dkim;
	struct dmarc_outcome dmarc;
	enum authcheck_action action;
	char reject_text[200]; /* for 550 5.7.1 */
};
struct dns_resolver;
/* The resolver the checks use (the delivery one; NULL: no checks). */
void server_authcheck_set_resolver(struct dns_resolver *r);
/* Checks an MX message (client ip, HELO, envelope sender) per the current config. Never fails:
 * problems are results. Free with server_authcheck_deinit. */
void server_authcheck(const char *ip, const char *helo, const char *mail_from,
                      const unsigned char *msg, size_t len, const char *id,
                      struct server_authcheck *out);
/* The results as JSON for message.received (heap), NULL when nothing was checked. */
char *server_authcheck_json(const struct server_authcheck *a);
void server_authcheck_deinit(struct server_authcheck *a);

/* ---- reports coming back (bounce.c) ---- */
/* Is addr a VERP bounce address "bounce+<token>@..." (token per submit.c)? Copies the token. */
bool server_bounce_token(const char *addr, char token[17]);
/* A DSN / feedback report for token: events and suppression entries; never stored in a
 * mailbox. 0 (also when the token is unknown or nothing could be parsed: dropped, logged), -1
 * on a store failure (answer 451). */
int server_bounce_process(struct store *st, const char *token, const unsigned char *msg, size_t len,
                          char sep, const char *id);

/* ---- HTTP (libmicrohttpd) ---- */
struct server_http;
struct server_http_opts {
	int fd;               /* bound listening socket; owned by the HTTP server from now on */
	const char *listener; /* for logs: the listener address */
	bool tls;
	const char *cert_pem, *key_pem;  /* PEM text (not paths), when tls */
	unsigned max_connections;        /* MHD_OPTION_CONNECTION_LIMIT */
	unsigned max_connections_per_ip; /* MHD_OPTION_PER_IP_CONNECTION_LIMIT */
	unsigned timeout_s;              /* idle connection timeout */
	struct store *store;             /* for the REST API */
	char subaddress_sep;
	size_t send_max; /* body limit of API sends; 0 = HTTP_SEND_MAX_DEFAULT */
	size_t body_max; /* body limit of other API requests; 0 = HTTP_BODY_MAX_DEFAULT */
	bool webhooks_allow_private;
	const char *tracking_base; /* NULL: tracking off */
};
/* Starts a daemon with its own threads on o->fd. Returns NULL with the reason in err. */
struct server_http *server_http_start(const struct server_http_opts *o, struct err *err);
/* Stops accepting, ends its connections, joins its threads, closes the socket; accepts NULL and
 * sets *hp = NULL. */
void server_http_stop(struct server_http **hp);

#endif
