/* The REST API (issue 6): JSON over HTTP under /api/v1, plus GET /healthz. This module does no
 * I/O (DESIGN.md §1): server/http_conn.c reads a request with libmicrohttpd, bounded by
 * http_api_body_limit, hands it over whole, and writes the response it gets back.
 *
 * Every error is {"error": {"code": "...", "message": "...", "field": "..."}} ("field" only when
 * one field is at fault) with status 400, 401, 403, 404, 405, 409, 413, 415, 422 or 429.
 * Authentication is an API key as a bearer token; a key has the scope "admin" or one domain.
 *
 * What this module cannot do itself (it sits below dkim/ and server/, STYLE.md B.3) it asks
 * through struct http_hooks, which server/ fills in.
 *
 * Thread safety: http_api_handle may run in many threads at once. */
#ifndef LIGHTR_HTTP_H
#define LIGHTR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define HTTP_BODY_MAX_DEFAULT (1024 * 1024)         /* every request but sends */
#define HTTP_SEND_MAX_DEFAULT (30ull * 1024 * 1024) /* POST /api/v1/messages[/raw] */
#define HTTP_QUERY_MAX        32                    /* query parameters kept */

struct http_kv {
	const char *key, *value;
};

struct http_request {
	const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" */
	const char *path;   /* percent-decoded path without the query, e.g. "/api/v1/domains" */
	const struct http_kv *query; /* decoded query parameters in order */
	size_t n_query;
	const char *authorization; /* header values or NULL */
	const char *content_type;
	const char *idempotency_key;
	const char *user_agent; /* or NULL */
	const unsigned char *body;
	size_t body_len;
	const char *client; /* peer address for logs */
};

struct http_response {
	unsigned status;
	const char *content_type; /* static string */
	struct buf body;          /* caller-initialised (buf_init) and freed */
	char retry_after[16];     /* "" or seconds, for 429 */
	char location[4096];      /* "" or a Location (201, 302) */
	bool replayed;            /* an idempotent replay: "Idempotent-Replayed: true" */
};

/* ---- what server/ provides ---- */
/* An API send for the submit hook: recipients already resolved by the API layer. */
struct http_submit_rcpt {
	const char *address;
	bool local; /* resolves to a mailbox of ours (store_rcpt_resolve OK) */
};
struct http_submit {
	const char *from;         /* envelope sender (the From address); its domain is ours */
	const unsigned char *msg; /* the composed or raw RFC 5322 message, CRLF */
	size_t len;
	const struct http_submit_rcpt *rcpts; /* the accepted ones; none when all were suppressed
	                                       * (only the record is stored) */
	size_t n_rcpts;
	const struct store_api_send *api; /* stored in the same transaction */
	const char *request_id;           /* for logs */
	void *limit_taken;                /* from hooks->limit_send, or NULL */
};
/* A rate limit that refused (issue 8): the rule, whose budget, its value, when it frees, and a
 * sentence for the error message. */
struct http_limit_verdict {
	const char *rule;
	char who[320];
	uint64_t limit;
	int64_t retry_after_s; /* >= 1; -1 = never for this request (recipients_per_message) */
	char text[240];
};
struct http_limit_usage {
	const char *rule;
	uint64_t limit, used; /* limit 0 = unlimited */
	int64_t resets_in_s;
	bool overridden;
};
#define HTTP_LIMIT_RULES 5

struct http_dns_record {
	char *name;    /* absolute, with the final dot */
	char *type;    /* "MX", "TXT" */
	char *value;   /* MX: "10 host."; TXT: the unsplit text */
	char *comment; /* or NULL */
};
struct http_hooks {
	void *ctx;
	/* The submission path of SMTP (server/submit.c): DKIM-signs, gives the relayed copy its
	 * VERP sender, stores local copies, queue entries and s->api in one commit. 0 when
	 * durable; -1 + err (err->code a store_errcode: EEXIST = the idempotency key was stored
	 * meanwhile, ENOTFOUND = an account vanished). */
	int (*submit)(void *ctx, const struct http_submit *s, int64_t *queue_id_r, struct err *err);
	/* New domain: its default DKIM keys (Ed25519 + RSA-2048). */
	int (*dkim_default_keys)(void *ctx, const char *domain, struct err *err);
	/* One new active key; selector NULL = default name; the selector used is written to
	 * selector_r (64 bytes). */
	int (*dkim_generate)(void *ctx, const char *domain, const char *algo, unsigned bits,
	                     const char *selector, char *selector_r, struct err *err);
	/* New Ed25519 + RSA-2048 keys sign; old ones stay published keep_days. */
	int (*dkim_rotate)(void *ctx, const char *domain, unsigned keep_days, struct err *err);
	/* ---- rate limits (issue 8); each may be NULL (no limits) ----
	 * A send of n recipients from address from in domain: takes 1 message and n recipients
	 * from the domain's budgets (and the account's, when from is an account). 0 allowed
	 * (*taken_r: a handle for submit/refund), 1 refused (*v filled). */
	int (*limit_send)(void *ctx, const char *from, const char *domain, size_t n, void **taken_r,
	                  struct http_limit_verdict *v);
	/* Gives back (and frees) a handle of limit_send whose send was not stored. */
	void (*limit_refund)(void *ctx, void *taken);
	/* Frees a handle after a successful submit. */
	void (*limit_done)(void *ctx, void *taken);
	/* One request of API key key_id (requests per key per second): false + *v when over. */
	bool (*limit_request)(void *ctx, int64_t key_id, struct http_limit_verdict *v);
	/* API key authentication from ip: > 0 ms to wait, 0 go, -1 ip locked out; then the
	 * outcome. */
	int64_t (*auth_gate)(void *ctx, const char *ip);
	void (*auth_result)(void *ctx, const char *ip, bool ok);
	/* Limits and usage of an account (domain false) or domain (true). */
	int (*limit_usage)(void *ctx, bool domain, const char *name,
	                   struct http_limit_usage out[HTTP_LIMIT_RULES], struct err *err);
	/* Events were added (tracking): the webhook sender may have work. May be NULL. */
	void (*events_added)(void *ctx);
	/* The records of `lightr domain dns` (heap; free with http_dns_records_free). */
	int (*domain_dns)(void *ctx, const char *domain, struct http_dns_record **v_r, size_t *n_r,
	                  struct err *err);
};
void http_dns_records_free(struct http_dns_record **vp, size_t n);
/* The records as zone-file lines (a header comment, each record's comment as a "; " line, TXT
 * values split into quoted strings of at most 255 octets) appended to out (dns_zone.c). */
void http_dns_zone(const char *domain, const struct http_dns_record *v, size_t n, struct buf *out);

struct http_limits {
	size_t body_max; /* HTTP_BODY_MAX_DEFAULT */
	size_t send_max; /* HTTP_SEND_MAX_DEFAULT */
	char subaddress_sep;
	bool webhooks_allow_private; /* webhooks.allow_private_addresses */
	const char *tracking_base;   /* tracking.base_url ("" or NULL: tracking off) */
};

struct http_api;

/* st and hooks must outlive the api. */
struct http_api *http_api_new(struct store *st, const struct http_hooks *hooks,
                              const struct http_limits *lim);
void http_api_free(struct http_api **ap);

/* The largest body accepted for this method and path (known before the body is read, so an
 * oversized upload gets 413 early). */
size_t http_api_body_limit(const struct http_api *api, const char *method, const char *path);

/* Answers req into resp (resp->body initialised by the caller). Never fails: problems become
 * error responses. */
void http_api_handle(struct http_api *api, const struct http_request *req,
                     struct http_response *resp);

/* An error response with the standard body (for the glue: 413 while reading, 503). */
void http_api_error(struct http_response *resp, unsigned status, const char *code,
                    const char *message, const char *field);

#endif
