/* The outbound scheduler (sched.h): one thread that polls the store every second (or when woken)
 * for due (message, domain) pairs, claims those whose destination has room and is not backed
 * off, and hands each as a batch to a pool of worker threads running the delivery callback.
 * Results come back through queue_batch_done, which turns outcomes into store states with the
 * retry schedule and max_age, commits them in one write, updates the destination's failure
 * count and calls the DSN hook. Per-destination state (in flight, consecutive connection
 * failures, backoff end) lives in a small array under the scheduler's mutex. */
#include "sched.h"

#include <errno.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/strconv.h"
#include "util/xalloc.h"

#define SCHED_TICK_MIN_MS  20          /* shortest gap between two ticks */
#define SCHED_DUE_MAX      256         /* due pairs looked at per tick */
#define SCHED_PREFETCH     8           /* messages claimed at once for a reused connection */
#define SCHED_MAX_AGE      (5 * 86400) /* RFC 5321 4.5.4.1: "at least 4-5 days" */
#define SCHED_WORKERS      8
#define SCHED_PER_DEST     4
#define SCHED_BACKOFF      3
#define SCHED_RETRY_MAXVAL (7 * 86400)
#define SCHED_MAINT_EVERY  60 /* seconds between DKIM key retirement runs */

static const uint32_t default_retry[] = {60, 300, 900, 1800, 3600, 7200, 14400, 28800};

struct dest {
	char domain[254];
	unsigned inflight;
	unsigned fails;        /* consecutive connection-level failures */
	int64_t backoff_until; /* 0 = none */
};

struct pending {
	struct queue_batch *b;
	struct pending *next;
};

struct queue_sched {
	struct store *st;
	struct queue_sched_config cfg;

	pthread_mutex_t mu;
	pthread_cond_t tick_cv; /* scheduler thread: wake or room */
	pthread_cond_t work_cv; /* workers: pending batches or stop */
	bool stopping, woken, started;
	struct pending *head, *tail;
	unsigned inflight; /* claimed batches not finished (pending + running) */
	struct dest *dests;
	size_t n_dests, cap_dests;
	int64_t last_maint; /* scheduler clock of the last maintenance run */
	pthread_t thread;
	pthread_t *workers;
	unsigned n_workers;
};

static int64_t
sched_now(struct queue_sched *s)
{
	return s->cfg.clock ? s->cfg.clock(s->cfg.clock_ctx) : clock_now();
}

/* ---- schedule ---- */

void
queue_sched_default_retry(struct queue_sched_config *cfg)
{
	cfg->n_retry = sizeof default_retry / sizeof default_retry[0];
	memcpy(cfg->retry, default_retry, sizeof default_retry);
}

uint32_t
queue_retry_delay(const struct queue_sched_config *cfg, uint32_t attempts)
{
	const uint32_t *v = cfg->n_retry ? cfg->retry : default_retry;
	size_t n = cfg->n_retry ? cfg->n_retry : sizeof default_retry / sizeof default_retry[0];
	if (attempts == 0)
		attempts = 1;
	return v[attempts > n ? n - 1 : attempts - 1];
}

int
queue_retry_parse(const char *s, uint32_t retry[QUEUE_RETRY_MAX], size_t *n_r, struct err *err)
{
	*n_r = 0;
	struct slice rest = slice_from(s);
	size_t n = 0;
	if (rest.len == 0)
		return err_set(err, 1, "empty retry schedule");
	while (rest.p != NULL) {
		struct slice item;
		rest = slice_cut(rest, ',', &item);
		item = slice_trim(item);
		uint64_t v;
		if (strconv_duration(item, SCHED_RETRY_MAXVAL, &v) < 0 || v == 0)
			return err_set(
			    err, 1, "retry schedule entry %zu: expected a duration 1s..7d", n + 1);
		if (n == QUEUE_RETRY_MAX)
			return err_set(err, 1, "retry schedule has more than %d entries",
			               QUEUE_RETRY_MAX);
		retry[n++] = (uint32_t)v;
	}
	*n_r = n;
	return 0;
}

/* ---- destinations (under s->mu) ---- */

static struct dest *
dest_get(struct queue_sched *s, const char *domain, bool create)
{
	for (size_t i = 0; i < s->n_dests; i++)
		if (strcasecmp(s->dests[i].domain, domain) == 0)
			return &s->dests[i];
	if (!create)
		return NULL;
	/* Reuse an idle slot before growing. */
	for (size_t i = 0; i < s->n_dests; i++) {
		struct dest *d = &s->dests[i];
		if (d->inflight == 0 && d->fails == 0) {
			memset(d, 0, sizeof *d);
			(void)snprintf(d->domain, sizeof d->domain, "%s", domain);
			return d;
		}
	}
	if (s->n_dests == s->cap_dests) {
		s->cap_dests = s->cap_dests ? s->cap_dests * 2 : 16;
		s->dests = xrealloc(s->dests, s->cap_dests * sizeof *s->dests);
	}
	struct dest *d = &s->dests[s->n_dests++];
	memset(d, 0, sizeof *d);
	(void)snprintf(d->domain, sizeof d->domain, "%s", domain);
	return d;
}

unsigned
queue_sched_inflight(struct queue_sched *s, const char *domain)
{
	pthread_mutex_lock(&s->mu);
	struct dest *d = dest_get(s, domain, false);
	unsigned n = d ? d->inflight : 0;
	pthread_mutex_unlock(&s->mu);
	return n;
}

bool
queue_sched_backed_off(struct queue_sched *s, const char *domain)
{
	int64_t now = sched_now(s);
	pthread_mutex_lock(&s->mu);
	struct dest *d = dest_get(s, domain, false);
	bool off = d && d->backoff_until > now;
	pthread_mutex_unlock(&s->mu);
	return off;
}

/* ---- results ---- */

int
queue_batch_read(struct queue_batch *b, uint64_t off, uint64_t len, struct buf *out,
                 struct err *err)
{
	return store_queue_read(b->sched->st, b->job.msg.id, off, len, out, err);
}

static void
item_set(char **field, const char *v)
{
	if (v == NULL || v == *field)
		return;
	free(*field);
	*field = xstrdup(v);
}

static void
dsn_call(struct queue_sched *s, struct queue_batch *b, enum queue_dsn_kind kind,
         const struct store_queue_item **v, size_t n)
{
	if (n > 0 && s->cfg.dsn)
		s->cfg.dsn(s->cfg.dsn_ctx, b, kind, v, n);
}

int
queue_batch_done(struct queue_batch *b, const struct queue_report *rep, struct err *err)
{
	struct queue_sched *s = b->sched;
	struct store_queue_job *j = &b->job;
	if (b->done)
		return err_set(err, 1, "batch already done");
	b->done = true;
	int64_t now = sched_now(s);
	int64_t expire = j->msg.created + s->cfg.max_age;
	size_t n = j->n_rcpts;
	struct store_queue_result *r = xcalloc(n + 1, sizeof *r);
	bool any_ok = false;
	for (size_t i = 0; i < n; i++) {
		const struct queue_result *q = &rep->results[i];
		struct store_queue_item *it = &j->rcpts[i];
		struct store_queue_result *o = &r[i];
		o->rcpt_id = it->id;
		o->error = q->reply;
		o->dsn = q->dsn;
		o->relay = rep->relay;
		o->count_attempt = true;
		if (rep->interrupted && q->outcome == QUEUE_TEMPFAIL) {
			/* Cut short: due again at once, as if never tried. */
			o->outcome = STORE_QUEUE_DEFERRED;
			o->next_attempt = now;
			o->count_attempt = false;
			o->error = it->last_error;
			o->dsn = it->last_dsn;
			o->relay = it->relay;
			continue;
		}
		switch (q->outcome) {
		case QUEUE_OK:
			o->outcome = STORE_QUEUE_DELIVERED;
			if (!o->dsn)
				o->dsn = "2.0.0";
			any_ok = true;
			break;
		case QUEUE_PERMFAIL:
			o->outcome = STORE_QUEUE_BOUNCED;
			if (!o->dsn)
				o->dsn = "5.0.0";
			break;
		case QUEUE_TEMPFAIL:
		default:
			if (now >= expire) {
				o->outcome = STORE_QUEUE_EXPIRED;
				o->dsn = "4.4.7"; /* RFC 3463: delivery time expired */
				if (!o->error)
					o->error = "message expired";
				break;
			}
			o->outcome = STORE_QUEUE_DEFERRED;
			if (!o->dsn)
				o->dsn = "4.0.0";
			o->next_attempt = now + queue_retry_delay(&s->cfg, it->attempts + 1);
			if (o->next_attempt > expire)
				o->next_attempt = expire;
			if (s->cfg.delay_warning > 0 && !it->delay_notified &&
			    now - j->msg.created >= s->cfg.delay_warning)
				o->set_delay_notified = true;
			break;
		}
	}
	int rc = store_queue_record(s->st, r, n, now, err);
	if (rc == 0) {
		static const char *const names[] = {"delivered", "deferred", "bounced", "expired"};
		const struct store_queue_item **failed = xcalloc(n + 1, sizeof *failed);
		const struct store_queue_item **delayed = xcalloc(n + 1, sizeof *delayed);
		const struct store_queue_item **ok = xcalloc(n + 1, sizeof *ok);
		size_t nf = 0, nd = 0, nok = 0;
		for (size_t i = 0; i < n; i++) {
			struct store_queue_item *it = &j->rcpts[i];
			item_set(&it->status, names[r[i].outcome]);
			item_set(&it->last_error, r[i].error);
			item_set(&it->last_dsn, r[i].dsn);
			item_set(&it->relay, r[i].relay);
			if (r[i].count_attempt)
				it->attempts++;
			it->last_attempt = now;
			if (r[i].outcome == STORE_QUEUE_DEFERRED)
				it->next_attempt = r[i].next_attempt;
			if (r[i].outcome == STORE_QUEUE_DELIVERED) {
				it->delivered_at = now;
				ok[nok++] = it;
			} else if (r[i].outcome == STORE_QUEUE_DEFERRED) {
				if (r[i].set_delay_notified) {
					it->delay_notified = true;
					delayed[nd++] = it;
				}
			} else {
				failed[nf++] = it;
			}
			log_debug("queue - result id=%lld rcpt=%s status=%s dsn=%s relay=%s "
			          "attempts=%u reply=\"%s\"",
			          (long long)j->msg.id, it->rcpt, it->status, r[i].dsn,
			          r[i].relay ? r[i].relay : "-", it->attempts,
			          r[i].error ? r[i].error : "");
		}
		dsn_call(s, b, QUEUE_DSN_FAILED, failed, nf);
		dsn_call(s, b, QUEUE_DSN_DELAYED, delayed, nd);
		dsn_call(s, b, QUEUE_DSN_DELIVERED, ok, nok);
		free(failed);
		free(delayed);
		free(ok);
	} else {
		log_error("queue - record-failed id=%lld domain=%s: %s", (long long)j->msg.id,
		          j->domain, err ? err->msg : "");
	}
	free(r);
	pthread_mutex_lock(&s->mu);
	struct dest *d = dest_get(s, j->domain, true);
	if (rep->interrupted && !any_ok) {
		/* no verdict about the destination */
	} else if (rep->conn_failure && !any_ok) {
		d->fails++;
		unsigned limit = s->cfg.backoff_failures;
		if (d->fails >= limit) {
			d->backoff_until = now + queue_retry_delay(&s->cfg, d->fails);
			log_info("queue - backoff domain=%s failures=%u until=%lld", d->domain,
			         d->fails, (long long)d->backoff_until);
		}
	} else {
		d->fails = 0;
		d->backoff_until = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- batches ---- */

static void release_ahead(struct queue_batch *b);

static void
batch_free(struct queue_batch *b)
{
	release_ahead(b);
	store_queue_job_deinit(&b->job);
	free(b);
}

/* Runs one claimed batch on the calling thread, then releases its destination slot. */
static void
batch_run(struct queue_sched *s, struct queue_batch *b)
{
	s->cfg.deliver(s->cfg.deliver_ctx, b);
	if (!b->done) {
		struct queue_result *res = xcalloc(b->job.n_rcpts + 1, sizeof *res);
		for (size_t i = 0; i < b->job.n_rcpts; i++)
			res[i] =
			    (struct queue_result){QUEUE_TEMPFAIL, "internal: no result", "4.3.0"};
		struct queue_report rep = {.results = res};
		struct err err = {0};
		(void)queue_batch_done(b, &rep, &err);
		free(res);
	}
	pthread_mutex_lock(&s->mu);
	struct dest *d = dest_get(s, b->job.domain, true);
	if (d->inflight > 0)
		d->inflight--;
	s->inflight--;
	pthread_cond_broadcast(&s->tick_cv);
	pthread_mutex_unlock(&s->mu);
	batch_free(b);
}

/* Gives a claimed but never started batch back: its rows are due again now, attempts kept. */
static void
batch_unclaim(struct queue_sched *s, struct queue_batch *b)
{
	struct store_queue_result *r = xcalloc(b->job.n_rcpts + 1, sizeof *r);
	for (size_t i = 0; i < b->job.n_rcpts; i++)
		r[i] = (struct store_queue_result){.rcpt_id = b->job.rcpts[i].id,
		                                   .outcome = STORE_QUEUE_DEFERRED,
		                                   .next_attempt = sched_now(s),
		                                   .error = b->job.rcpts[i].last_error,
		                                   .dsn = b->job.rcpts[i].last_dsn};
	struct err err = {0};
	if (store_queue_record(s->st, r, b->job.n_rcpts, sched_now(s), &err) < 0)
		log_error("queue - unclaim-failed id=%lld: %s", (long long)b->job.msg.id, err.msg);
	free(r);
}

bool
queue_sched_stopping(struct queue_sched *s)
{
	pthread_mutex_lock(&s->mu);
	bool stop = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

/* True when due domain dom may follow b on its connection: same domain, or same_route says so,
 * and dom is not backed off. */
static bool
next_matches(struct queue_sched *s, struct queue_batch *b, const char *dom,
             queue_same_route_fn *same_route, void *ctx, int64_t now)
{
	if (strcasecmp(dom, b->job.domain) != 0 &&
	    (same_route == NULL || !same_route(ctx, b->job.domain, dom)))
		return false;
	pthread_mutex_lock(&s->mu);
	struct dest *d = dest_get(s, dom, false);
	bool ok = d == NULL || d->backoff_until <= now;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

/* A claimed job as a batch of scheduler s. */
static struct queue_batch *
batch_of(struct queue_sched *s, struct store_queue_job *job, int64_t now)
{
	struct queue_batch *c = xcalloc(1, sizeof *c);
	c->job = *job;
	c->sched = s;
	c->now = now;
	c->mail_from = c->job.msg.return_path ? c->job.msg.return_path : c->job.msg.mail_from;
	log_debug("queue - claim id=%lld domain=%s rcpts=%zu reuse=yes", (long long)c->job.msg.id,
	          c->job.domain, c->job.n_rcpts);
	return c;
}

/* The next batch for b's connection: the first of b's claimed-ahead ones (which inherits the
 * rest), else up to SCHED_PREFETCH due messages of b's domain claimed in one write (or one of
 * another domain on the same route). */
struct queue_batch *
queue_batch_next_route(struct queue_batch *b, queue_same_route_fn *same_route, void *ctx)
{
	struct queue_sched *s = b->sched;
	if (queue_sched_stopping(s))
		return NULL;
	if (b->n_ahead > 0) {
		struct queue_batch *nb = b->ahead[0];
		nb->ahead = b->ahead;
		nb->n_ahead = b->n_ahead - 1;
		memmove(nb->ahead, nb->ahead + 1, nb->n_ahead * sizeof *nb->ahead);
		b->ahead = NULL;
		b->n_ahead = 0;
		return nb;
	}
	int64_t now = sched_now(s);
	struct store_queue_due *due = NULL;
	size_t n = 0;
	struct err err = {0};
	if (store_queue_due_list(s->st, now, SCHED_DUE_MAX, &due, &n, &err) < 0) {
		log_error("queue - next-failed domain=%s: %s", b->job.domain, err.msg);
		return NULL;
	}
	/* same domain first (several), then one of another domain on the same route */
	struct store_queue_due pick[SCHED_PREFETCH];
	size_t np = 0;
	for (int pass = 0; pass < 2 && np == 0; pass++) {
		for (size_t i = 0; i < n && np < (pass == 0 ? SCHED_PREFETCH : 1); i++) {
			bool same = strcasecmp(due[i].domain, b->job.domain) == 0;
			if ((pass == 0) == same &&
			    next_matches(s, b, due[i].domain, same_route, ctx, now))
				pick[np++] = due[i];
		}
	}
	free(due);
	if (np == 0)
		return NULL;
	struct store_queue_job jobs[SCHED_PREFETCH];
	size_t nj = 0;
	if (store_queue_claim_many(s->st, pick, np, now, jobs, &nj, &err) < 0) {
		log_error("queue - claim-failed domain=%s: %s", b->job.domain, err.msg);
		return NULL;
	}
	if (nj == 0)
		return NULL;
	struct queue_batch *nb = batch_of(s, &jobs[0], now);
	if (nj > 1) {
		nb->ahead = xcalloc(nj - 1, sizeof *nb->ahead);
		for (size_t i = 1; i < nj; i++)
			nb->ahead[nb->n_ahead++] = batch_of(s, &jobs[i], now);
	}
	return nb;
}

struct queue_batch *
queue_batch_next(struct queue_batch *b)
{
	return queue_batch_next_route(b, NULL, NULL);
}

/* Gives back the batches claimed ahead of b that were never started. */
static void
release_ahead(struct queue_batch *b)
{
	for (size_t i = 0; i < b->n_ahead; i++)
		queue_batch_release(b->ahead[i]);
	free(b->ahead);
	b->ahead = NULL;
	b->n_ahead = 0;
}

void
queue_batch_release(struct queue_batch *nb)
{
	if (nb == NULL)
		return;
	if (!nb->done) {
		struct queue_result *res = xcalloc(nb->job.n_rcpts + 1, sizeof *res);
		for (size_t i = 0; i < nb->job.n_rcpts; i++)
			res[i] = (struct queue_result){QUEUE_TEMPFAIL, NULL, NULL};
		struct queue_report rep = {.results = res, .interrupted = true};
		struct err err = {0};
		(void)queue_batch_done(nb, &rep, &err);
		free(res);
	}
	batch_free(nb);
}

/* About once a minute: DKIM keys past their retire_at become 'retired'. */
static void
sched_maintain(struct queue_sched *s, int64_t now)
{
	if (s->last_maint != 0 && now - s->last_maint < SCHED_MAINT_EVERY && now >= s->last_maint)
		return;
	s->last_maint = now;
	size_t n = 0;
	struct err err = {0};
	if (store_dkim_retire_due(s->st, now, &n, &err) < 0)
		log_error("dkim - retire-failed: %s", err.msg);
	else if (n > 0)
		log_info("dkim - retired n=%zu", n);
}

/* One pass: claims what is due and has room; sync runs batches here, else queues them for the
 * workers. */
static int
sched_tick(struct queue_sched *s, bool sync, size_t *n_r, struct err *err)
{
	size_t started = 0;
	int64_t now = sched_now(s);
	struct store_queue_due *due = NULL;
	size_t n = 0;
	sched_maintain(s, now);
	if (store_queue_due_list(s->st, now, SCHED_DUE_MAX, &due, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&s->mu);
		if (s->stopping || (!sync && s->inflight >= s->cfg.workers)) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		struct dest *d = dest_get(s, due[i].domain, true);
		bool room = d->inflight < s->cfg.max_per_destination && d->backoff_until <= now;
		if (room) {
			d->inflight++;
			s->inflight++;
		}
		pthread_mutex_unlock(&s->mu);
		if (!room)
			continue;
		struct queue_batch *b = xcalloc(1, sizeof *b);
		struct err cerr = {0};
		int c = store_queue_claim(s->st, due[i].msg_id, due[i].domain, now, &b->job, &cerr);
		if (c <= 0) {
			if (c < 0)
				log_error("queue - claim-failed id=%lld: %s",
				          (long long)due[i].msg_id, cerr.msg);
			free(b);
			pthread_mutex_lock(&s->mu);
			d = dest_get(s, due[i].domain, true);
			d->inflight--;
			s->inflight--;
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		b->sched = s;
		b->now = now;
		b->mail_from =
		    b->job.msg.return_path ? b->job.msg.return_path : b->job.msg.mail_from;
		started++;
		log_debug("queue - claim id=%lld domain=%s rcpts=%zu", (long long)b->job.msg.id,
		          b->job.domain, b->job.n_rcpts);
		if (sync) {
			batch_run(s, b);
			continue;
		}
		struct pending *p = xcalloc(1, sizeof *p);
		p->b = b;
		pthread_mutex_lock(&s->mu);
		if (s->tail)
			s->tail->next = p;
		else
			s->head = p;
		s->tail = p;
		pthread_cond_signal(&s->work_cv);
		pthread_mutex_unlock(&s->mu);
	}
	free(due);
	if (n_r)
		*n_r = started;
	return 0;
}

int
queue_sched_run_once(struct queue_sched *s, size_t *n_r, struct err *err)
{
	return sched_tick(s, true, n_r, err);
}

static void *
sched_worker(void *arg)
{
	struct queue_sched *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->head == NULL && !s->stopping)
			pthread_cond_wait(&s->work_cv, &s->mu);
		if (s->head == NULL) /* stopping and nothing left */
			break;
		struct pending *p = s->head;
		s->head = p->next;
		if (s->head == NULL)
			s->tail = NULL;
		if (s->stopping) {
			/* Never started: give the rows back instead of delivering during shutdown.
			 */
			pthread_mutex_unlock(&s->mu);
			batch_unclaim(s, p->b);
			pthread_mutex_lock(&s->mu);
			struct dest *d = dest_get(s, p->b->job.domain, true);
			if (d->inflight > 0)
				d->inflight--;
			s->inflight--;
			pthread_mutex_unlock(&s->mu);
			batch_free(p->b);
			free(p);
			pthread_mutex_lock(&s->mu);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		batch_run(s, p->b);
		free(p);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	store_thread_done(s->st);
	return NULL;
}

static void *
sched_thread(void *arg)
{
	struct queue_sched *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		s->woken = false;
		pthread_mutex_unlock(&s->mu);
		struct err err = {0};
		if (sched_tick(s, false, NULL, &err) < 0)
			log_error("queue - tick-failed: %s", err.msg);
		pthread_mutex_lock(&s->mu);
		/* Coalesce wakes: every submission and every finished batch wakes this thread, and
		 * each tick runs the due-list query; under load that query was a fifth of the CPU
		 * (bench/ README.md). Wakes during this short pause are kept (s->woken) for the
		 * next tick. */
		struct timespec pause;
		clock_gettime(CLOCK_REALTIME, &pause);
		pause.tv_nsec += SCHED_TICK_MIN_MS * 1000000L;
		if (pause.tv_nsec >= 1000000000L) {
			pause.tv_sec++;
			pause.tv_nsec -= 1000000000L;
		}
		while (!s->stopping &&
		       pthread_cond_timedwait(&s->tick_cv, &s->mu, &pause) != ETIMEDOUT)
			;
		if (!s->stopping && !s->woken) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1; /* poll: CLI changes come from another process */
			(void)pthread_cond_timedwait(&s->tick_cv, &s->mu, &ts);
		}
		pthread_mutex_unlock(&s->mu);
	}
	store_thread_done(s->st);
	return NULL;
}

/* ---- life cycle ---- */

int
queue_sched_new(struct store *st, const struct queue_sched_config *cfg, struct queue_sched **s_r,
                struct err *err)
{
	*s_r = NULL;
	if (st == NULL || cfg == NULL || cfg->deliver == NULL)
		return err_set(err, 1, "scheduler needs a store and a deliver callback");
	if (cfg->n_retry > QUEUE_RETRY_MAX)
		return err_set(err, 1, "retry schedule too long");
	for (size_t i = 0; i < cfg->n_retry; i++)
		if (cfg->retry[i] == 0)
			return err_set(err, 1, "retry schedule entry %zu is 0", i + 1);
	struct queue_sched *s = xcalloc(1, sizeof *s);
	s->st = st;
	s->cfg = *cfg;
	if (s->cfg.n_retry == 0)
		queue_sched_default_retry(&s->cfg);
	if (s->cfg.max_age <= 0)
		s->cfg.max_age = SCHED_MAX_AGE;
	if (s->cfg.workers == 0)
		s->cfg.workers = SCHED_WORKERS;
	if (s->cfg.max_per_destination == 0)
		s->cfg.max_per_destination = SCHED_PER_DEST;
	if (s->cfg.backoff_failures == 0)
		s->cfg.backoff_failures = SCHED_BACKOFF;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->tick_cv, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	*s_r = s;
	return 0;
}

int
queue_sched_start(struct queue_sched *s, struct err *err)
{
	if (s->started)
		return err_set(err, 1, "scheduler already started");
	size_t reset = 0;
	if (store_queue_recover(s->st, sched_now(s), &reset, err) < 0)
		return -1;
	s->workers = xcalloc(s->cfg.workers, sizeof *s->workers);
	for (unsigned i = 0; i < s->cfg.workers; i++) {
		if (pthread_create(&s->workers[i], NULL, sched_worker, s) != 0)
			break;
		s->n_workers++;
	}
	if (s->n_workers == 0 || pthread_create(&s->thread, NULL, sched_thread, s) != 0) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_broadcast(&s->work_cv);
		pthread_mutex_unlock(&s->mu);
		for (unsigned i = 0; i < s->n_workers; i++)
			pthread_join(s->workers[i], NULL);
		s->n_workers = 0;
		s->stopping = false;
		return err_set(err, 1, "cannot start queue threads");
	}
	s->started = true;
	log_info("queue - started workers=%u per_destination=%u recovered=%zu", s->n_workers,
	         s->cfg.max_per_destination, reset);
	return 0;
}

void
queue_sched_wake(struct queue_sched *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->woken = true;
	pthread_cond_broadcast(&s->tick_cv);
	pthread_mutex_unlock(&s->mu);
}

void
queue_sched_free(struct queue_sched **sp)
{
	struct queue_sched *s = *sp;
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->tick_cv);
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->thread, NULL);
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);
	free(s->workers);
	free(s->dests);
	pthread_cond_destroy(&s->work_cv);
	pthread_cond_destroy(&s->tick_cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	*sp = NULL;
}
