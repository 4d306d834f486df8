/* DSN decisions and emission (RFC 3461 §4-§6, RFC 3464; DESIGN.md §7): which recipients of a
 * queued message get a notice, and sending it. The notice is built by mail/dsn.h and goes to
 * msg->dsn_to: into the INBOX of a local dsn_to (store_deliver with a local recipient), or into
 * the outbound queue with the null envelope sender for a remote one.
 *
 * Rules (per recipient):
 *   FAILED (bounced/expired): unless NOTIFY is NEVER or lists no FAILURE (absent = FAILURE,DELAY);
 *   DELAYED: only when NOTIFY is absent or lists DELAY; the caller sends one per recipient (the
 *     scheduler marks delay_notified);
 *   DELIVERED: only when NOTIFY lists SUCCESS.
 *   Never when msg->dsn_to is NULL or empty, and never for a null-sender message (mail_from ""):
 *   a DSN about a DSN would loop.
 * RET: "FULL" returns the whole original (up to DSN_FULL_MAX), anything else the headers.
 *
 * Thread safety: the functions may run on any thread (store functions are thread-safe). */
#ifndef LIGHTR_QUEUE_DSN_H
#define LIGHTR_QUEUE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/sched.h"
#include "store/store.h"
#include "util/err.h"

/* True when notify (NOTIFY value, NULL = absent) asks for a notice of kind. */
bool queue_dsn_wanted(const char *notify, enum queue_dsn_kind kind);

/* Decides and sends one DSN about the recipients items[0..n) of msg (the rows whose state
 * matters: bounced/expired for FAILED, deferred for DELAYED, delivered for DELIVERED; their
 * last_error, last_dsn, relay, last_attempt are reported). Recipients whose NOTIFY excludes
 * kind are left out; when none remains, or the message gets no DSN at all (see above), nothing
 * is sent and 0 is returned. hostname: Reporting-MTA and the MAILER-DAEMON domain. max_age:
 * seconds after msg->created until the queue gives up (Will-Retry-Until of delays; 0 = 5 days).
 * subaddress_sep: for resolving dsn_to ('\0' = off). *sent_r (may be NULL) is set true when a
 * DSN was stored. For FAILED, the caller marks the rows dsn_done (queue_dsn_hook does).
 * Returns 0, or -1 + err when reading the original or storing the DSN failed. */
int queue_dsn_emit(struct store *st, const char *hostname, const struct store_queue_msg *msg,
                   const struct store_queue_item *const *items, size_t n, enum queue_dsn_kind kind,
                   int64_t now, int64_t max_age, char subaddress_sep, bool *sent_r,
                   struct err *err);

/* Context for queue_dsn_hook; lives as long as the scheduler. */
struct queue_dsn_ctx {
	struct store *store;
	const char *hostname;
	int64_t max_age; /* as queue_sched_config.max_age */
	char subaddress_sep;
};
/* A queue_dsn_fn (queue/sched.h) for queue_sched_config.dsn with dsn_ctx = struct
 * queue_dsn_ctx: queue_dsn_emit with b->now, then for FAILED store_queue_dsn_done on the items
 * (also when no DSN was wanted: the rows are settled). Errors are logged. */
void queue_dsn_hook(void *ctx, const struct queue_batch *b, enum queue_dsn_kind kind,
                    const struct store_queue_item *const *items, size_t n);

#endif
