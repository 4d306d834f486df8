/* Events delivered to the outside (issue 7, DESIGN.md §8): signed webhooks sent by a worker
 * (webhook.c, libcurl) from the durable webhook_deliveries rows of the store, and open/click
 * tracking (track.c: HTML rewriting with libxml2, signed tokens).
 *
 * Thread safety: the webhook sender runs its own threads; every other function is reentrant. */
#ifndef LIGHTR_EVENTS_H
#define LIGHTR_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

/* ---- webhooks (webhook.c) ----
 * A delivery is POST <url> with Content-Type: application/json, the body
 *   {"id": "evt_<event id>", "type": "...", "created_at": "<RFC 3339>",
 *    "data": {"domain", "message", "recipient", "tags": [...], "metadata": {...}, ...detail}}
 * and the headers Lightr-Event-Id: evt_<id> and Lightr-Signature: t=<unix>,v1=<hex
 * HMAC-SHA256(secret, "<t>.<body>")>. Success is a 2xx answer within timeout_s; anything else
 * (no connection, TLS failure, timeout, 3xx/4xx/5xx) is retried after retry[attempt] seconds
 * (default 1m, 2m, 5m, 10m, 30m, 1h, 2h, 4h, 8h, 8h), then the delivery is failed. Every
 * attempt is recorded (store_webhook_record). Redirects are not followed; TLS certificates are
 * verified. SSRF guard: the URL must be http or https; its host is resolved by the sender and
 * every address must be public (not loopback, private, link-local, CGNAT, multicast,
 * unspecified, ULA, IPv4-mapped private...) unless allow_private; the connection then goes to
 * the checked address (CURLOPT_RESOLVE), so a DNS answer cannot change between check and use. */
#define EVENTS_WEBHOOK_RETRY_MAX 16
#define EVENTS_SIGNATURE_MAX     96 /* "t=<20 digits>,v1=<64 hex>" + NUL */

struct events_webhook_config {
	struct store *st;
	bool allow_private;    /* webhooks.allow_private_addresses */
	unsigned timeout_s;    /* per attempt; 10 */
	unsigned workers;      /* parallel deliveries; 4 */
	const uint32_t *retry; /* seconds; NULL = the default schedule above */
	size_t n_retry;
	int64_t (*clock)(void); /* unix seconds; NULL = time() (tests move it) */
	const char *user_agent; /* "Lightr/<version>" */
};
struct events_webhooks;
/* Starts the sender: resets 'sending' deliveries left by a crash (store_webhook_recover), then
 * polls for due deliveries at least every second and whenever events_webhooks_wake is called. */
int events_webhooks_start(const struct events_webhook_config *cfg, struct events_webhooks **w_r,
                          struct err *err);
/* Something may be due now (an event was just added). Thread-safe, cheap; NULL is a no-op. */
void events_webhooks_wake(struct events_webhooks *w);
/* Stops after in-flight attempts end (each bounded by timeout_s); accepts NULL. */
void events_webhooks_stop(struct events_webhooks **wp);

/* "t=<t>,v1=<hex>" for body signed with secret at time t into out. */
void events_webhook_sign(const char *secret, int64_t t, const char *body, size_t len,
                         char out[EVENTS_SIGNATURE_MAX]);
/* The delivery body for an event (heap, NUL-terminated; free()). */
char *events_event_json(const struct store_event_row *e);
/* 0 when url may be called: http/https, a host, and (unless allow_private) only public
 * addresses. The first acceptable address is written to addr_r ("1.2.3.4" or "::1", size 64)
 * when not NULL, with the port to port_r. -1 + err with the reason otherwise. */
int events_url_check(const char *url, bool allow_private, char *addr_r, unsigned *port_r,
                     struct err *err);

/* ---- open and click tracking (track.c) ----
 * Tokens: base64url("<message>.<rcpt>.<link>") + "." + base64url(first 16 bytes of
 * HMAC-SHA256(key, that text)); link TRACK_LINK_OPEN for the open pixel. A token that does
 * not verify is rejected (forged or cut), compared in constant time. */
#define TRACK_KEY_LEN   32
#define TRACK_TOKEN_MAX 256
#define TRACK_LINK_OPEN UINT32_MAX
#define TRACK_RCPT_ALL  UINT32_MAX /* the message's recipients together (several share a copy) */
#define TRACK_LINKS_MAX 500        /* links rewritten per message; further ones are left alone */

int track_token(const unsigned char key[TRACK_KEY_LEN], const char *message, uint32_t rcpt,
                uint32_t link, char out[TRACK_TOKEN_MAX]);
/* -1 when the token is malformed or its MAC does not match. */
int track_token_parse(const unsigned char key[TRACK_KEY_LEN], const char *token, char *message,
                      size_t message_n, uint32_t *rcpt_r, uint32_t *link_r);

struct track_opts {
	const char *base_url; /* tracking.base_url, e.g. "https://mail.example.com" (no final /) */
	const unsigned char *key;
	const char *message; /* public message id */
	uint32_t rcpt;       /* recipient index */
	bool opens, clicks;
};
/* Rewrites an HTML body with libxml2's HTML parser: with clicks, every <a href> (and <area
 * href>) whose URL is http: or https: (case-insensitive scheme, after trimming whitespace) and
 * that has no data-lightr-track="off" attribute becomes base_url/t/c/<token> (link index =
 * position in *urls_r; the same URL twice gets two indexes); mailto:, tel:, #anchors,
 * relative and other schemes stay. With opens, an <img src="base_url/t/o/<token>" width="1"
 * height="1" alt="" style="display:none"> is appended at the end of <body> (created when
 * missing). The output is serialised HTML (UTF-8). *urls_r (heap array of heap strings, free
 * with track_urls_free) gets the original URLs in index order. -1 + err when the HTML cannot
 * be parsed at all (the caller then sends it unchanged, untracked). */
int track_rewrite_html(const char *html, size_t len, const struct track_opts *o, struct buf *out,
                       char ***urls_r, size_t *n_urls_r, struct err *err);
void track_urls_free(char ***urlsp, size_t n);
/* Likely automated? Known image proxies and link scanners by User-Agent (Google image proxy,
 * Yahoo, Microsoft/Outlook safe links, Proofpoint, Mimecast, Barracuda, generic bots and
 * curl-like tools, empty UA), or a fetch within 10 seconds of delivery (seconds_since_delivery
 * >= 0; pass -1 when unknown). */
bool track_is_machine(const char *user_agent, int64_t seconds_since_delivery);

#endif
