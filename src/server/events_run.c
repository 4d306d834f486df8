/* The server's event machinery (issue 7): the webhook sender (events/webhook.c) and a
 * housekeeping thread that applies events.retention once a minute. One of each per process;
 * started after the store opened and stopped before it closes (daemon.c). */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "events/events.h"
#include "queue/sched.h"
#include "server_private.h"
#include "util/log.h"

#define EVENTS_PRUNE_EVERY 60 /* seconds */

static _Atomic(struct events_webhooks *) running_webhooks;
static struct {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct store *st;
} housekeeping = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void
server_events_wake(void)
{
	events_webhooks_wake(atomic_load(&running_webhooks));
}

/* Once a minute: events older than events.retention go (read from the current config, so a
 * SIGHUP applies). */
static void *
events_housekeeping(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&housekeeping.mu);
	while (!housekeeping.stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += EVENTS_PRUNE_EVERY;
		pthread_cond_timedwait(&housekeeping.cv, &housekeeping.mu, &until);
		if (housekeeping.stop)
			break;
		pthread_mutex_unlock(&housekeeping.mu);
		struct config *c = config_current();
		int64_t cutoff = (int64_t)time(NULL) - (int64_t)c->events.retention;
		config_unref(&c);
		size_t n = 0;
		struct err err = {0};
		if (store_event_prune(housekeeping.st, cutoff, &n, &err) < 0)
			log_error("events - prune failed: %s", err.msg);
		else if (n > 0)
			log_info("events - pruned events=%zu", n);
		store_thread_done(housekeeping.st);
		pthread_mutex_lock(&housekeeping.mu);
	}
	pthread_mutex_unlock(&housekeeping.mu);
	return NULL;
}

int
server_events_start(struct store *st, const struct config *c, struct err *err)
{
	uint32_t retry[QUEUE_RETRY_MAX];
	size_t n_retry = 0;
	if (queue_retry_parse(c->webhooks.retry_schedule, retry, &n_retry, err) < 0)
		return -1;
	if (n_retry > EVENTS_WEBHOOK_RETRY_MAX)
		n_retry = EVENTS_WEBHOOK_RETRY_MAX;
	struct events_webhook_config wc = {
	    .retry = retry,
	    .n_retry = n_retry,
	    .st = st,
	    .allow_private = c->webhooks.allow_private_addresses,
	    .timeout_s = (unsigned)c->webhooks.timeout,
	    .workers = (unsigned)c->webhooks.workers,
	    .user_agent = "Lightr/" LIGHTR_VERSION,
	};
	struct events_webhooks *w = NULL;
	if (events_webhooks_start(&wc, &w, err) < 0)
		return -1;
	atomic_store(&running_webhooks, w);
	housekeeping.st = st;
	housekeeping.stop = false;
	if (pthread_create(&housekeeping.thread, NULL, events_housekeeping, NULL) != 0) {
		server_events_stop();
		return err_set(err, 1, "cannot start the events housekeeping thread");
	}
	housekeeping.started = true;
	log_info("events - started webhook_workers=%u allow_private=%s", wc.workers,
	         wc.allow_private ? "yes" : "no");
	return 0;
}

void
server_events_stop(void)
{
	if (housekeeping.started) {
		pthread_mutex_lock(&housekeeping.mu);
		housekeeping.stop = true;
		pthread_cond_broadcast(&housekeeping.cv);
		pthread_mutex_unlock(&housekeeping.mu);
		pthread_join(housekeeping.thread, NULL);
		housekeeping.started = false;
	}
	struct events_webhooks *w = atomic_exchange(&running_webhooks, NULL);
	events_webhooks_stop(&w);
}
