/* Outbound queue scheduler (DESIGN.md §7): decides what is delivered when. Due recipients are
 * claimed from the store (store_queue_claim) grouped by (message, destination domain) and handed
 * as a struct queue_batch to a delivery callback (queue/deliver.c) running on one of the
 * scheduler's worker threads; the worker reports per-recipient results with queue_batch_done,
 * which applies the retry schedule and records everything in one store write.
 *
 * Retry schedule: after the n-th failed attempt (n = attempts so far, 1-based) the recipient is
 * due again after retry[min(n, n_retry) - 1] seconds (default 1m 5m 15m 30m 1h 2h 4h 8h, then
 * every 8h), but never later than created + max_age (default 5 days, RFC 5321 §4.5.4.1), so the
 * last try happens at max_age; a temporary failure at or after created + max_age becomes
 * STORE_QUEUE_EXPIRED (a bounce, DSN 4.4.7). A row claimed late (server was down) is still
 * tried once before it expires.
 *
 * Concurrency: at most max_per_destination batches of one domain are in flight at once; at most
 * workers batches in total. Destination backoff: after backoff_failures (default 3) consecutive
 * connection-level failures of a domain (report.conn_failure: no MX/A answered, connect or TLS
 * failed, 421 at greeting), the domain is not claimed again until queue_retry_delay(count)
 * seconds after its last failure (3 failures: 15m with the default schedule); the rows stay due
 * and are delivered when the backoff ends (their own next_attempt still applies). One success
 * resets the count. Backoff state is in memory only (a restart forgets it).
 *
 * Maintenance: about once a minute (scheduler clock) the thread also retires DKIM keys whose
 * retire_at passed (store_dkim_retire_due) and logs "dkim - retired n=<count>" when any was.
 *
 * Shutdown: queue_sched_free sets a stop flag; batches not started yet are given back (due,
 * no attempt counted); the delivery worker checks queue_sched_stopping between its I/O waits
 * and ends sessions in flight within about a second, reporting interrupted (unfinished
 * recipients due again at once, no attempt counted, never lost).
 *
 * Polling: the thread wakes every second (or at queue_sched_wake) and re-queries due rows: the
 * CLI ("lightr queue retry/hold/release/drop") writes from another process, so the scheduler
 * notices its changes within a second without any signal.
 *
 * Thread safety: queue_sched_* functions may be called from any thread; the deliver callback
 * runs on worker threads, several at once. */
#ifndef LIGHTR_QUEUE_SCHED_H
#define LIGHTR_QUEUE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define QUEUE_RETRY_MAX 32 /* entries of a retry schedule */

struct queue_sched;

/* One unit of work: one message, one destination domain, its recipients (all 'delivering').
 * Owned by the scheduler; valid until the deliver callback returns. */
struct queue_batch {
	struct store_queue_job job; /* job.msg (envelope, DSN params, header_text, blob),
	                             * job.domain, job.rcpts[0..job.n_rcpts) */
	const char *mail_from;      /* envelope sender to use: job.msg.return_path when set, else
	                             * job.msg.mail_from ("" = null sender) */
	int64_t now;                /* scheduler clock at claim */
	struct queue_sched *sched;
	bool done; /* set by queue_batch_done */
	/* Claimed together with this one for the same connection (queue_batch_next_route),
	 * handed on to the next batch of the chain; released (due again now) when the chain
	 * ends early. */
	struct queue_batch **ahead;
	size_t n_ahead;
};

/* Body bytes of the batch: header_text followed by the blob, [off, off + len) appended to out
 * (store_queue_read). Thread-safe. */
int queue_batch_read(struct queue_batch *b, uint64_t off, uint64_t len, struct buf *out,
                     struct err *err);

/* Per-recipient result of one attempt, index-aligned with b->job.rcpts. */
enum queue_outcome {
	QUEUE_OK,       /* remote accepted (250 after DATA) */
	QUEUE_TEMPFAIL, /* 4xx or local temporary problem: retry per schedule (or expire) */
	QUEUE_PERMFAIL, /* 5xx or permanent local problem: bounce */
};
struct queue_result {
	enum queue_outcome outcome;
	const char *reply; /* remote reply text ("550 5.1.1 no such user") or local reason; may be
	                    * NULL; copied before queue_batch_done returns */
	const char *dsn;   /* enhanced status code ("5.1.1"), NULL = derived from outcome */
};
struct queue_report {
	const struct queue_result *results; /* b->job.n_rcpts entries */
	const char *relay;                  /* host[ip]:port of the last attempt, NULL = none */
	bool conn_failure;                  /* no session with any host of the destination
	                                     * (counts toward destination backoff) */
	bool interrupted; /* the attempt was cut short (shutdown, or a reused connection that
	                   * died before RCPT): QUEUE_TEMPFAIL recipients are due again at once
	                   * with their previous last_error, no attempt counted, no backoff;
	                   * QUEUE_OK / QUEUE_PERMFAIL are recorded as usual */
};

/* Called by the deliver callback exactly once per batch, before it returns: records the results
 * in one store write (deferred rows get next_attempt from the schedule, expired ones become
 * 'expired'), updates destination backoff, and runs the DSN hook. A callback that returns
 * without calling it gets every recipient deferred with reason "internal: no result". Returns
 * 0, or -1 + err when the store write failed (the rows then stay 'delivering' until the next
 * start-up recovery). */
int queue_batch_done(struct queue_batch *b, const struct queue_report *rep, struct err *err);

/* Connection reuse (DESIGN.md §7): called by the deliver callback of b after b's results were
 * committed and while its SMTP connection is still usable. Claims another due batch of the same
 * destination domain as b (another message) and returns it, or NULL when none is due, the
 * destination is backed off, or the scheduler is stopping. The new batch runs inside b's
 * callback and under b's destination slot (it does not count against max_per_destination or
 * workers again). Deliver it on the open connection, call queue_batch_done on it, then
 * queue_batch_release. */
struct queue_batch *queue_batch_next(struct queue_batch *b);
/* Like queue_batch_next, but also batches of other domains for which same_route(ctx, b's domain,
 * other domain) is true (e.g. both go to the same smarthost or route host:port); same-domain
 * batches are preferred. The follower's domain must not be backed off; it runs under b's
 * destination slot. */
typedef bool queue_same_route_fn(void *ctx, const char *domain, const char *other);
struct queue_batch *queue_batch_next_route(struct queue_batch *b, queue_same_route_fn *same_route,
                                           void *ctx);
/* Frees a batch from queue_batch_next(_route); one that was not done gets every recipient due again
 * at once, no attempt counted (like report.interrupted). Accepts NULL. */
void queue_batch_release(struct queue_batch *nb);
/* True once queue_sched_free began: deliver callbacks should end their I/O within about a
 * second (report.interrupted). */
bool queue_sched_stopping(struct queue_sched *s);

/* The delivery worker: deliver b (connect, SMTP transaction), then queue_batch_done. */
typedef void queue_deliver_fn(void *ctx, struct queue_batch *b);

/* DSN hook (queue/bounce.c): called on the worker thread after results were committed, with the
 * recipients that need a notice: kind FAILED (bounced or expired, rows now final), DELAYED
 * (deferred, older than delay_warning, not yet delay_notified; the scheduler marks them
 * delay_notified in the same write), DELIVERED (delivered, for NOTIFY=SUCCESS). items point into
 * b->job.rcpts with status/last_error/last_dsn/relay updated. The hook decides from NOTIFY/RET
 * and msg.dsn_to whether to send, and calls store_queue_dsn_done for FAILED rows it handled. */
enum queue_dsn_kind { QUEUE_DSN_FAILED, QUEUE_DSN_DELAYED, QUEUE_DSN_DELIVERED };
typedef void queue_dsn_fn(void *ctx, const struct queue_batch *b, enum queue_dsn_kind kind,
                          const struct store_queue_item *const *items, size_t n);

/* Clock in unix seconds; tests pass a fake one. */
typedef int64_t queue_clock_fn(void *ctx);

struct queue_sched_config {
	uint32_t retry[QUEUE_RETRY_MAX]; /* seconds; n_retry == 0: the default schedule */
	size_t n_retry;
	int64_t max_age;              /* seconds; 0: 5 days */
	int64_t delay_warning;        /* seconds; 0: no delay notices */
	unsigned workers;             /* threads; 0: 8 */
	unsigned max_per_destination; /* 0: 4 */
	unsigned backoff_failures;    /* consecutive connection failures before backoff; 0: 3 */
	queue_deliver_fn *deliver;    /* required */
	void *deliver_ctx;
	queue_dsn_fn *dsn; /* NULL = none */
	void *dsn_ctx;
	queue_clock_fn *clock; /* NULL = clock_now */
	void *clock_ctx;
};

/* The default schedule into cfg->retry / n_retry (1m 5m 15m 30m 1h 2h 4h 8h). */
void queue_sched_default_retry(struct queue_sched_config *cfg);
/* Seconds to wait after the attempts-th failed attempt (attempts >= 1; 0 is treated as 1). */
uint32_t queue_retry_delay(const struct queue_sched_config *cfg, uint32_t attempts);
/* Parses "1m,5m,15m,1h,8h" (units s m h d, or plain seconds; 1..QUEUE_RETRY_MAX entries, each
 * 1s..7d) into retry / *n_r. -1 + err (code 1) on a bad list. */
int queue_retry_parse(const char *s, uint32_t retry[QUEUE_RETRY_MAX], size_t *n_r, struct err *err);

/* Creates the scheduler (no threads yet). cfg is copied. */
int queue_sched_new(struct store *st, const struct queue_sched_config *cfg,
                    struct queue_sched **s_r, struct err *err);
/* Runs store_queue_recover, then starts the scheduler thread and the workers. */
int queue_sched_start(struct queue_sched *s, struct err *err);
/* Makes the scheduler look for due work now (e.g. after a message was queued). */
void queue_sched_wake(struct queue_sched *s);
/* Stops claiming and sets the stop flag (queue_sched_stopping), gives back batches not started,
 * waits for batches in flight to end (the delivery worker cuts them short within about a
 * second), joins the threads, frees; accepts NULL and sets *sp = NULL. */
void queue_sched_free(struct queue_sched **sp);

/* For tests (no threads started): claims what is due now and runs each batch synchronously on
 * the calling thread, respecting concurrency and backoff as the thread would. *n_r (may be NULL)
 * gets the number of batches run. */
int queue_sched_run_once(struct queue_sched *s, size_t *n_r, struct err *err);
/* Number of batches of domain in flight (for tests). */
unsigned queue_sched_inflight(struct queue_sched *s, const char *domain);
/* True while domain is backed off at the scheduler's clock (for tests and "queue list"). */
bool queue_sched_backed_off(struct queue_sched *s, const char *domain);

#endif
