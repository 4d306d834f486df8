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

#endif
