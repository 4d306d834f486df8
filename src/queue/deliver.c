/* The delivery worker; see deliver.h. One call of queue_deliver_batch runs one attempt: the
 * targets in order, each target's addresses in order, until one SMTP session gets as far as RCPT
 * (its per-recipient results are final for this attempt) or everything was tried. */
#include "deliver.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/resolver.h"
#include "net/client.h"
#include "smtp/client.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strconv.h"
#include "util/xalloc.h"

#define DELIVER_BODY_PIECE (64 * 1024)
#define DELIVER_REUSE_MAX  100 /* messages (transactions) per connection */
#define DELIVER_STOP_POLL  500 /* ms between checks of the scheduler's stop flag */
#define DELIVER_STOP_TEXT  "shutdown: delivery interrupted"

struct queue_deliver {
	struct queue_deliver_config cfg; /* strings below are owned copies */
	struct queue_dns_ops ops;
	bool have_ops;
	struct queue_route *routes;
};

static char *
deliver_dup(const char *s)
{
	return s && s[0] ? xstrdup(s) : NULL;
}

int
queue_deliver_new(const struct queue_deliver_config *cfg, struct queue_deliver **d_r,
                  struct err *err)
{
	if (cfg->helo == NULL || cfg->helo[0] == '\0')
		return err_set(err, 1, "delivery: no HELO name");
	struct queue_deliver *d = xcalloc(1, sizeof *d);
	d->cfg = *cfg;
	d->cfg.helo = xstrdup(cfg->helo);
	d->cfg.relay = deliver_dup(cfg->relay);
	d->cfg.relay_user = deliver_dup(cfg->relay_user);
	d->cfg.relay_pass = deliver_dup(cfg->relay_pass);
	d->cfg.source_address4 = deliver_dup(cfg->source_address4);
	d->cfg.source_address6 = deliver_dup(cfg->source_address6);
	if (cfg->n_routes > 0) {
		d->routes = xcalloc(cfg->n_routes, sizeof *d->routes);
		for (size_t i = 0; i < cfg->n_routes; i++) {
			d->routes[i].domain = xstrdup(cfg->routes[i].domain);
			d->routes[i].hostport = xstrdup(cfg->routes[i].hostport);
		}
	}
	d->cfg.routes = d->routes;
	if (cfg->dns_ops) {
		d->ops = *cfg->dns_ops;
		d->have_ops = true;
	}
	d->cfg.dns_ops = NULL;
	if (d->cfg.mx_port == 0)
		d->cfg.mx_port = 25;
	if (d->cfg.connect_timeout == 0)
		d->cfg.connect_timeout = 30;
	if (d->cfg.max_hosts == 0)
		d->cfg.max_hosts = 5;
	if (d->cfg.max_addrs == 0)
		d->cfg.max_addrs = 10;
	*d_r = d;
	return 0;
}

void
queue_deliver_free(struct queue_deliver **dp)
{
	struct queue_deliver *d = *dp;
	if (d == NULL)
		return;
	*dp = NULL;
	free((char *)d->cfg.helo);
	free((char *)d->cfg.relay);
	free((char *)d->cfg.relay_user);
	if (d->cfg.relay_pass) {
		memset((char *)d->cfg.relay_pass, 0, strlen(d->cfg.relay_pass));
		free((char *)d->cfg.relay_pass);
	}
	free((char *)d->cfg.source_address4);
	free((char *)d->cfg.source_address6);
	for (size_t i = 0; i < d->cfg.n_routes; i++) {
		free((char *)d->routes[i].domain);
		free((char *)d->routes[i].hostport);
	}
	free(d->routes);
	free(d);
}

/* ---- routing ---- */

int
queue_target_parse(const char *hostport, uint16_t default_port, struct queue_target *t,
                   struct err *err)
{
	memset(t, 0, sizeof *t);
	const char *host = hostport, *end, *port = NULL;
	if (hostport[0] == '[') {
		host = hostport + 1;
		end = strchr(host, ']');
		if (end == NULL)
			return err_set(err, 1, "%s: missing ']'", hostport);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return err_set(err, 1, "%s: junk after ']'", hostport);
	} else {
		const char *colon = strchr(hostport, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			end = hostport + strlen(hostport); /* bare IPv6 literal, no port */
		} else if (colon != NULL) {
			end = colon;
			port = colon + 1;
		} else {
			end = hostport + strlen(hostport);
		}
	}
	size_t hl = (size_t)(end - host);
	if (hl == 0 || hl >= sizeof t->host)
		return err_set(err, 1, "%s: bad host", hostport);
	memcpy(t->host, host, hl);
	t->host[hl] = '\0';
	t->port = default_port;
	if (port != NULL) {
		uint64_t v = 0;
		if (strconv_u64(slice_from(port), 65535, &v) < 0 || v == 0)
			return err_set(err, 1, "%s: bad port", hostport);
		t->port = (uint16_t)v;
	}
	return 0;
}

int
queue_route_lookup(const struct queue_deliver *d, const char *domain, struct queue_target *t,
                   struct err *err)
{
	for (size_t i = 0; i < d->cfg.n_routes; i++) {
		if (strcasecmp(d->cfg.routes[i].domain, domain) == 0)
			return queue_target_parse(d->cfg.routes[i].hostport, 25, t, err) < 0 ? -1
			                                                                     : 1;
	}
	if (d->cfg.relay != NULL) {
		if (queue_target_parse(d->cfg.relay, 25, t, err) < 0)
			return -1;
		t->relay = true;
		return 1;
	}
	return 0;
}

static enum queue_dns_rc
deliver_mx(const struct queue_deliver *d, const char *domain, char (*hosts)[QUEUE_HOST_MAX],
           size_t max, size_t *n_r, char *why, size_t why_len)
{
	*n_r = 0;
	if (d->have_ops)
		return d->ops.mx(d->ops.ctx, domain, hosts, max, n_r, why, why_len);
	if (d->cfg.dns == NULL) {
		(void)snprintf(why, why_len, "no resolver");
		return QUEUE_DNS_TEMP;
	}
	struct dns_mx_result *res = xcalloc(1, sizeof *res);
	struct err err = {0};
	enum queue_dns_rc rc = QUEUE_DNS_OK;
	if (dns_mx(d->cfg.dns, domain, res, &err) < 0) {
		(void)snprintf(why, why_len, "%s", err.msg[0] ? err.msg : "MX lookup failed");
		rc = res->null_mx            ? QUEUE_DNS_NULLMX
		     : err.code == DNS_EPERM ? QUEUE_DNS_NOTFOUND
		                             : QUEUE_DNS_TEMP;
	} else {
		for (size_t i = 0; i < res->n && *n_r < max; i++)
			(void)snprintf(hosts[(*n_r)++], QUEUE_HOST_MAX, "%s", res->mx[i].host);
	}
	free(res);
	return rc;
}

static bool
deliver_is_ip(const char *s)
{
	unsigned char tmp[16];
	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

static enum queue_dns_rc
deliver_addrs(const struct queue_deliver *d, const char *host, char (*ips)[QUEUE_IP_MAX],
              size_t max, size_t *n_r, char *why, size_t why_len)
{
	*n_r = 0;
	if (max == 0)
		return QUEUE_DNS_NOTFOUND;
	if (deliver_is_ip(host)) {
		(void)snprintf(ips[0], QUEUE_IP_MAX, "%s", host);
		*n_r = 1;
		return QUEUE_DNS_OK;
	}
	if (d->have_ops)
		return d->ops.addrs(d->ops.ctx, host, ips, max, n_r, why, why_len);
	if (d->cfg.dns == NULL) {
		(void)snprintf(why, why_len, "no resolver");
		return QUEUE_DNS_TEMP;
	}
	struct dns_addr_result *res = xcalloc(1, sizeof *res);
	struct err err = {0};
	enum queue_dns_rc rc = QUEUE_DNS_OK;
	if (dns_addrs(d->cfg.dns, host, true, res, &err) < 0) {
		(void)snprintf(why, why_len, "%s", err.msg[0] ? err.msg : "address lookup failed");
		rc = err.code == DNS_EPERM ? QUEUE_DNS_NOTFOUND : QUEUE_DNS_TEMP;
	} else {
		for (size_t i = 0; i < res->n && *n_r < max; i++)
			(void)snprintf(ips[(*n_r)++], QUEUE_IP_MAX, "%s", res->a[i].addr);
	}
	free(res);
	return rc;
}

enum queue_dns_rc
queue_deliver_targets(const struct queue_deliver *d, const char *domain, struct queue_target *t,
                      size_t max, size_t *n_r, char *why, size_t why_len)
{
	*n_r = 0;
	if (max == 0)
		return QUEUE_DNS_TEMP;
	struct err err = {0};
	int r = queue_route_lookup(d, domain, &t[0], &err);
	if (r < 0) {
		(void)snprintf(why, why_len, "bad route: %s", err.msg);
		return QUEUE_DNS_TEMP;
	}
	if (r == 1) {
		*n_r = 1;
		return QUEUE_DNS_OK;
	}
	size_t cap = max < d->cfg.max_hosts ? max : d->cfg.max_hosts;
	char(*hosts)[QUEUE_HOST_MAX] = xcalloc(cap, sizeof *hosts);
	size_t n = 0;
	enum queue_dns_rc rc = deliver_mx(d, domain, hosts, cap, &n, why, why_len);
	if (rc == QUEUE_DNS_OK) {
		for (size_t i = 0; i < n && i < cap; i++) {
			memset(&t[i], 0, sizeof t[i]);
			(void)snprintf(t[i].host, sizeof t[i].host, "%s", hosts[i]);
			t[i].port = d->cfg.mx_port;
			t[i].from_mx = true;
		}
		*n_r = n < cap ? n : cap;
		if (*n_r == 0) {
			(void)snprintf(why, why_len, "no MX hosts");
			rc = QUEUE_DNS_TEMP;
		}
	}
	free(hosts);
	return rc;
}

/* ---- one SMTP session ---- */

struct deliver_attempt {
	struct queue_batch *b;
	const struct queue_deliver *d;
	struct smtp_client_msg msg;
	struct smtp_client_rcpt *rcpts;
	/* results of the attempt that counts so far */
	struct queue_result *res;
	char (*reply)[SMTP_CLIENT_TEXT_MAX];
	char (*dsn)[16];
	char relay[QUEUE_HOST_MAX + QUEUE_IP_MAX + 48];
	char tls[48];
	bool any_session;  /* some host got past the greeting */
	bool any_temp;     /* some host failed temporarily (connect, 4xx, TLS) */
	bool tls_broken;   /* the last session's TLS handshake failed */
	bool plain_only;   /* this session: no STARTTLS (retry after a broken handshake) */
	bool tls_verified; /* this session: TLS up with a verified certificate */
	bool stopped;      /* cut short by the scheduler's stop flag */
	bool interrupted;  /* report.interrupted (stopped, or a reused connection died early) */
	bool reported;
};

static bool
deliver_stopping(struct deliver_attempt *a)
{
	if (a->b->sched != NULL && queue_sched_stopping(a->b->sched))
		a->stopped = true;
	return a->stopped;
}

/* conn_read in slices of DELIVER_STOP_POLL so that a shutdown ends the wait within about half a
 * second (CONN_TIMEOUT with a->stopped set). */
static ssize_t
deliver_read(struct deliver_attempt *a, struct conn *c, void *p, size_t len, unsigned timeout_ms)
{
	int64_t end = conn_deadline(timeout_ms);
	for (;;) {
		int64_t slice = conn_deadline(DELIVER_STOP_POLL);
		ssize_t n = conn_read(c, p, len, slice < end ? slice : end);
		if (n != CONN_TIMEOUT || slice >= end)
			return n;
		if (deliver_stopping(a))
			return CONN_TIMEOUT;
	}
}

static unsigned
deliver_notify(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	unsigned f = 0;
	if (strcasestr(s, "NEVER"))
		f |= SMTP_NOTIFY_NEVER;
	if (strcasestr(s, "SUCCESS"))
		f |= SMTP_NOTIFY_SUCCESS;
	if (strcasestr(s, "FAILURE"))
		f |= SMTP_NOTIFY_FAILURE;
	if (strcasestr(s, "DELAY"))
		f |= SMTP_NOTIFY_DELAY;
	return f;
}

/* Sets every recipient's result to one outcome. */
static void
deliver_all(struct deliver_attempt *a, enum queue_outcome o, const char *dsn, const char *text)
{
	for (size_t i = 0; i < a->b->job.n_rcpts; i++) {
		a->res[i].outcome = o;
		(void)snprintf(a->reply[i], sizeof a->reply[i], "%s", text);
		(void)snprintf(a->dsn[i], sizeof a->dsn[i], "%s", dsn);
	}
}

static int
deliver_flush(struct conn *c, struct smtp_client *sc, int64_t deadline)
{
	struct slice out = smtp_client_output(sc);
	if (out.len == 0)
		return 0;
	int rc = conn_write(c, out.p, out.len, deadline);
	if (rc == 0)
		smtp_client_output_done(sc, out.len);
	return rc;
}

/* Streams header_text + blob through the client, in pieces. */
static int
deliver_body(struct deliver_attempt *a, struct conn *c, struct smtp_client *sc, char *why,
             size_t why_len)
{
	struct buf piece;
	buf_init(&piece, 0);
	uint64_t size = a->b->job.msg.size, off = 0;
	int rc = 0;
	while (off < size) {
		if (deliver_stopping(a)) {
			(void)snprintf(why, why_len, DELIVER_STOP_TEXT);
			rc = -1;
			break;
		}
		uint64_t n = size - off < DELIVER_BODY_PIECE ? size - off : DELIVER_BODY_PIECE;
		buf_reset(&piece);
		struct err err = {0};
		if (queue_batch_read(a->b, off, n, &piece, &err) < 0 || piece.len == 0) {
			(void)snprintf(why, why_len, "local: cannot read message: %s", err.msg);
			rc = -1;
			break;
		}
		smtp_client_body_chunk(sc, piece.data, piece.len);
		off += piece.len;
		if (deliver_flush(c, sc, conn_deadline(smtp_client_timeout_ms(sc))) < 0) {
			(void)snprintf(why, why_len, "write: %s", c->err);
			rc = -1;
			break;
		}
	}
	buf_deinit(&piece);
	if (rc == 0)
		smtp_client_body_end(sc);
	return rc;
}

static void deliver_commit(struct deliver_attempt *a);

/* Copies the client's per-recipient results into the attempt. */
static void
deliver_take_results(struct deliver_attempt *a, const struct smtp_client *sc)
{
	for (size_t i = 0; i < a->b->job.n_rcpts; i++) {
		const struct smtp_client_result *r = smtp_client_rcpt_result(sc, i);
		a->res[i].outcome = r->status == SMTP_CLIENT_DELIVERED  ? QUEUE_OK
		                    : r->status == SMTP_CLIENT_PERMFAIL ? QUEUE_PERMFAIL
		                                                        : QUEUE_TEMPFAIL;
		(void)snprintf(a->reply[i], sizeof a->reply[i], "%s", r->text);
		(void)snprintf(a->dsn[i], sizeof a->dsn[i], "%s", r->enhanced);
	}
}

/* Per-batch state of an attempt: results arrays and the borrowed envelope. */
static void
attempt_init(struct deliver_attempt *a, const struct queue_deliver *d, struct queue_batch *b)
{
	size_t n = b->job.n_rcpts;
	*a = (struct deliver_attempt){.b = b, .d = d};
	a->res = xcalloc(n + 1, sizeof *a->res);
	a->reply = xcalloc(n + 1, sizeof *a->reply);
	a->dsn = xcalloc(n + 1, sizeof *a->dsn);
	a->rcpts = xcalloc(n + 1, sizeof *a->rcpts);
	for (size_t i = 0; i < n; i++) {
		a->rcpts[i].addr = b->job.rcpts[i].rcpt;
		a->rcpts[i].notify = deliver_notify(b->job.rcpts[i].notify);
		a->rcpts[i].orcpt = b->job.rcpts[i].orcpt;
	}
	const struct store_queue_msg *m = &b->job.msg;
	a->msg = (struct smtp_client_msg){
	    .mail_from = b->mail_from ? b->mail_from : "",
	    .rcpts = a->rcpts,
	    .nrcpts = n,
	    .ret = m->ret == NULL                    ? SMTP_RET_NONE
	           : strcasecmp(m->ret, "HDRS") == 0 ? SMTP_RET_HDRS
	                                             : SMTP_RET_FULL,
	    .envid = m->envid,
	    .size = m->size,
	    .eightbit = m->eightbit,
	    .smtputf8 = m->smtputf8,
	    .requiretls = m->requiretls,
	};
}

static void
attempt_deinit(struct deliver_attempt *a)
{
	free(a->res);
	free(a->reply);
	free(a->dsn);
	free(a->rcpts);
	a->res = NULL;
	a->reply = NULL;
	a->dsn = NULL;
	a->rcpts = NULL;
}

/* After a committed transaction on a usable connection: true when another message may follow
 * on it (no connection-level trouble in the replies, under the per-connection cap). */
static bool
deliver_may_reuse(struct deliver_attempt *cur, const struct smtp_client *sc, unsigned sent)
{
	if (sent >= DELIVER_REUSE_MAX || deliver_stopping(cur))
		return false;
	for (size_t i = 0; i < cur->b->job.n_rcpts; i++) {
		const struct smtp_client_result *r = smtp_client_rcpt_result(sc, i);
		/* closing, or remote trouble at MAIL: a fresh connection is better */
		if (r->code == 421 || (r->stage < SMTP_CLIENT_STAGE_RCPT && r->code != 0))
			return false;
	}
	return true;
}

/* queue_same_route_fn: both domains are routed (delivery.routes or the relay) to the same
 * host:port; MX-delivered domains only ever share a connection with their own domain. */
static bool
deliver_same_route(void *ctx, const char *domain, const char *other)
{
	const struct queue_deliver *d = ctx;
	struct queue_target ta, tb;
	struct err err = {0};
	if (queue_route_lookup(d, domain, &ta, &err) != 1 ||
	    queue_route_lookup(d, other, &tb, &err) != 1)
		return false;
	return ta.port == tb.port && ta.relay == tb.relay && strcasecmp(ta.host, tb.host) == 0;
}

/* A reused connection gets the next message of the same route (queue_batch_next_route): the
 * chained batch replaces *curp (a chained predecessor is freed). false: QUIT instead. */
static bool
deliver_chain(struct deliver_attempt *a, struct deliver_attempt **curp, struct smtp_client *sc)
{
	struct deliver_attempt *cur = *curp;
	struct queue_batch *nb = queue_batch_next_route(cur->b, deliver_same_route, (void *)a->d);
	if (nb == NULL)
		return false;
	if (nb->job.msg.requiretls && !cur->tls_verified) {
		queue_batch_release(nb); /* due again at once: a fresh connection decides */
		return false;
	}
	struct deliver_attempt *na = xcalloc(1, sizeof *na);
	attempt_init(na, a->d, nb);
	memcpy(na->relay, cur->relay, sizeof na->relay);
	memcpy(na->tls, cur->tls, sizeof na->tls);
	na->tls_verified = cur->tls_verified;
	na->any_session = true;
	/* "As if freshly connected" for the results: a session failure before RCPT on this
	 * connection gives the rows back (interrupted), see deliver_session. */
	deliver_all(na, QUEUE_TEMPFAIL, "4.4.2", "451 4.4.2 reused connection lost");
	if (smtp_client_next_message(sc, &na->msg) < 0) {
		attempt_deinit(na);
		free(na);
		queue_batch_release(nb);
		return false;
	}
	log_debug("queue %lld reuse relay=%s after=%lld", (long long)nb->job.msg.id, cur->relay,
	          (long long)cur->b->job.msg.id);
	if (cur != a) {
		attempt_deinit(cur);
		queue_batch_release(cur->b);
		free(cur);
	}
	*curp = na;
	return true;
}

/* Results of a chained batch whose transaction did not reach WANT_MESSAGE: final when RCPT was
 * reached, else given back (interrupted). Then frees it. */
static void
deliver_chain_end(struct deliver_attempt *cur, const struct smtp_client *sc)
{
	if (!cur->reported) {
		deliver_take_results(cur, sc);
		const struct smtp_client_result *r0 = smtp_client_rcpt_result(sc, 0);
		if (cur->stopped ||
		    !(r0->stage >= SMTP_CLIENT_STAGE_RCPT || r0->status == SMTP_CLIENT_DELIVERED))
			cur->interrupted = true;
		deliver_commit(cur);
	}
	attempt_deinit(cur);
	queue_batch_release(cur->b);
	free(cur);
}

/* Runs one session on c. Returns true when the results are final for this attempt (the session
 * reached RCPT); false to move on to the next address (results kept as the latest). After a's
 * transaction the connection is reused for further due messages of the same destination
 * (deliver_chain); each is committed right after its own transaction. */
static bool
deliver_session(struct deliver_attempt *a, struct conn *c, const struct queue_target *t)
{
	struct smtp_client_opts opts = {
	    .helo_name = a->d->cfg.helo,
	    .tls_available = a->d->cfg.tls != NULL && !a->plain_only,
	};
	a->tls_broken = false;
	a->tls_verified = false;
	if (t->relay) {
		opts.auth_user = a->d->cfg.relay_user;
		opts.auth_pass = a->d->cfg.relay_pass;
		if (a->d->cfg.relay_tls == QUEUE_RELAY_NONE)
			opts.tls_available = false;
		if (a->d->cfg.relay_tls == QUEUE_RELAY_TLS) {
			/* TLS is up before the FSM starts (or the session is aborted) */
			opts.tls_available = false;
			opts.auth_allow_plaintext = true;
		}
	}
	struct smtp_client *sc = smtp_client_new(&opts, &a->msg);
	struct deliver_attempt *cur = a; /* the batch whose transaction runs */
	unsigned sent = 1;
	unsigned char in[4096];
	char why[400];
	bool done = false;
	(void)snprintf(a->tls, sizeof a->tls, "none");
	if (t->relay && a->d->cfg.relay_tls == QUEUE_RELAY_TLS) {
		/* Implicit TLS: handshake before the greeting; the FSM sees a plain session. */
		bool verified = false;
		int rc = a->d->cfg.tls == NULL
		             ? -1
		             : net_tls_client_start(c, a->d->cfg.tls, t->host,
		                                    conn_deadline(SMTP_CLIENT_TIMEOUT_INITIAL),
		                                    &verified);
		if (rc < 0 || (!verified && a->b->job.msg.requiretls)) {
			(void)snprintf(why, sizeof why, "tls: %s", c->err);
			smtp_client_abort(sc, SMTP_CLIENT_STAGE_CONNECT, why);
		} else {
			if (!verified)
				log_info("queue %lld tls unverified relay=%s reason=\"%s\"",
				         (long long)a->b->job.msg.id, a->relay, c->err);
			a->tls_verified = verified;
			(void)snprintf(a->tls, sizeof a->tls, "%s%s", conn_tls_version(c),
			               verified ? "" : "/unverified");
		}
	}
	for (;;) {
		if (deliver_flush(c, sc, conn_deadline(smtp_client_timeout_ms(sc))) < 0) {
			(void)snprintf(why, sizeof why, "write: %s", c->err);
			smtp_client_abort(sc, SMTP_CLIENT_STAGE_GREETING, why);
		}
		enum smtp_client_want w = smtp_client_want(sc);
		if (w == SMTP_CLIENT_WANT_CLOSE)
			break;
		if (w == SMTP_CLIENT_WANT_READ) {
			ssize_t n = deliver_read(cur, c, in, sizeof in, smtp_client_timeout_ms(sc));
			if (n > 0) {
				smtp_client_input(sc, in, (size_t)n);
				continue;
			}
			(void)snprintf(why, sizeof why, "%s",
			               cur->stopped        ? DELIVER_STOP_TEXT
			               : n == CONN_EOF     ? "connection closed by server"
			               : n == CONN_TIMEOUT ? "timeout waiting for the server"
			                                   : c->err);
			smtp_client_abort(sc, SMTP_CLIENT_STAGE_GREETING, why);
		} else if (w == SMTP_CLIENT_WANT_TLS) {
			bool verified = false;
			int rc = net_tls_client_start(c, a->d->cfg.tls, t->host,
			                              conn_deadline(smtp_client_timeout_ms(sc)),
			                              &verified);
			if (rc == 0 && !verified) {
				log_info("queue %lld tls unverified relay=%s reason=\"%s\"",
				         (long long)a->b->job.msg.id, a->relay, c->err);
				if (a->b->job.msg.requiretls) {
					rc = -1; /* RFC 8689: needs a verified certificate */
					(void)snprintf(c->err, sizeof c->err,
					               "REQUIRETLS: certificate not verified");
				}
			} else if (rc < 0) {
				log_info("queue %lld tls failed relay=%s reason=\"%s\"",
				         (long long)a->b->job.msg.id, a->relay, c->err);
				a->tls_broken = true;
			}
			if (rc == 0) {
				a->tls_verified = verified;
				(void)snprintf(a->tls, sizeof a->tls, "%s%s", conn_tls_version(c),
				               verified ? "" : "/unverified");
			}
			smtp_client_tls_done(sc, rc == 0);
		} else if (w == SMTP_CLIENT_WANT_BODY) {
			if (deliver_body(cur, c, sc, why, sizeof why) < 0)
				smtp_client_abort(sc, SMTP_CLIENT_STAGE_BODY, why);
		} else if (w == SMTP_CLIENT_WANT_MESSAGE) {
			/* Transaction over: commit the results now, before QUIT or the next
			 * message, so that a crash after the remote 250 cannot repeat the
			 * delivery. */
			deliver_take_results(cur, sc);
			cur->any_session = true;
			if (cur == a)
				done = true;
			deliver_commit(cur);
			if (!deliver_may_reuse(cur, sc, sent) || !deliver_chain(a, &cur, sc))
				smtp_client_quit(sc);
			else
				sent++;
		}
	}
	if (cur != a) {
		deliver_chain_end(cur, sc);
	} else if (!done) {
		deliver_take_results(a, sc);
		const struct smtp_client_result *r0 = smtp_client_rcpt_result(sc, 0);
		if (r0->stage >= SMTP_CLIENT_STAGE_RCPT || r0->status == SMTP_CLIENT_DELIVERED) {
			done = true; /* RCPT or later decided: final */
			a->any_session = true;
		} else {
			if (r0->stage > SMTP_CLIENT_STAGE_GREETING ||
			    (r0->stage == SMTP_CLIENT_STAGE_GREETING && r0->code >= 200 &&
			     r0->code != 421))
				a->any_session = true;
			if (r0->status != SMTP_CLIENT_PERMFAIL)
				a->any_temp = true;
		}
	}
	if (sent > 1)
		log_info("queue - connection relay=%s messages=%u", a->relay, sent);
	smtp_client_free(&sc);
	return done;
}

/* ---- reporting ---- */

static void
deliver_log(struct deliver_attempt *a)
{
	double delay = (double)(clock_now() - a->b->job.msg.created);
	if (delay < 0)
		delay = 0;
	for (size_t i = 0; i < a->b->job.n_rcpts; i++) {
		const char *ev = a->res[i].outcome == QUEUE_OK         ? "delivered"
		                 : a->res[i].outcome == QUEUE_PERMFAIL ? "bounced"
		                                                       : "deferred";
		char rcpt[200], reply[300];
		log_escape(a->b->job.rcpts[i].rcpt, rcpt, sizeof rcpt);
		log_escape(a->reply[i], reply, sizeof reply);
		if (a->res[i].outcome == QUEUE_OK)
			log_info("queue %lld %s rcpt=<%s> relay=%s delay=%.1f dsn=%s tls=%s",
			         (long long)a->b->job.msg.id, ev, rcpt,
			         a->relay[0] ? a->relay : "none", delay,
			         a->dsn[i][0] ? a->dsn[i] : "2.0.0", a->tls);
		else
			log_info("queue %lld %s rcpt=<%s> relay=%s delay=%.1f dsn=%s tls=%s "
			         "reply=\"%s\"",
			         (long long)a->b->job.msg.id, ev, rcpt,
			         a->relay[0] ? a->relay : "none", delay, a->dsn[i], a->tls, reply);
	}
}

static void
deliver_commit(struct deliver_attempt *a)
{
	if (a->reported)
		return;
	a->reported = true;
	for (size_t i = 0; i < a->b->job.n_rcpts; i++) {
		a->res[i].reply = a->reply[i][0] ? a->reply[i] : NULL;
		a->res[i].dsn = a->dsn[i][0] ? a->dsn[i] : NULL;
	}
	char relay[sizeof a->relay + sizeof a->tls + 8];
	(void)snprintf(relay, sizeof relay, "%s tls=%s", a->relay, a->tls);
	struct queue_report rep = {
	    .results = a->res,
	    .relay = a->relay[0] ? relay : NULL,
	    .conn_failure = !a->any_session,
	    .interrupted = a->interrupted || a->stopped,
	};
	struct err err = {0};
	if (queue_batch_done(a->b, &rep, &err) < 0)
		log_error("queue %lld results not recorded: %s", (long long)a->b->job.msg.id,
		          err.msg);
	deliver_log(a); /* after the commit: "delivered" in the log means recorded */
}

/* ---- the attempt ---- */

static void
deliver_run(struct deliver_attempt *a)
{
	const struct queue_deliver *d = a->d;
	struct queue_target *targets = xcalloc(d->cfg.max_hosts, sizeof *targets);
	size_t nt = 0;
	char why[256] = "";
	enum queue_dns_rc rc = queue_deliver_targets(d, a->b->job.domain, targets, d->cfg.max_hosts,
	                                             &nt, why, sizeof why);
	char text[1024];
	if (rc == QUEUE_DNS_NULLMX) {
		deliver_all(a, QUEUE_PERMFAIL, "5.1.10",
		            "556 5.1.10 domain does not accept mail (null MX, RFC 7505)");
		goto out;
	}
	if (rc == QUEUE_DNS_NOTFOUND) {
		(void)snprintf(text, sizeof text, "550 5.1.2 %s: %s", a->b->job.domain, why);
		deliver_all(a, QUEUE_PERMFAIL, "5.1.2", text);
		goto out;
	}
	if (rc != QUEUE_DNS_OK) {
		(void)snprintf(text, sizeof text, "451 4.4.3 %s: %s", a->b->job.domain, why);
		deliver_all(a, QUEUE_TEMPFAIL, "4.4.3", text);
		goto out;
	}
	/* Nothing tried yet: a temporary "no host answered" unless something better comes. */
	deliver_all(a, QUEUE_TEMPFAIL, "4.4.1", "451 4.4.1 no host could be reached");
	size_t addrs_left = d->cfg.max_addrs;
	bool addr_notfound = true;
	for (size_t ti = 0; ti < nt && addrs_left > 0 && !deliver_stopping(a); ti++) {
		const struct queue_target *t = &targets[ti];
		char(*ips)[QUEUE_IP_MAX] = xcalloc(addrs_left, sizeof *ips);
		size_t ni = 0;
		char awhy[300] = "";
		enum queue_dns_rc ar =
		    deliver_addrs(d, t->host, ips, addrs_left, &ni, awhy, sizeof awhy);
		if (ar != QUEUE_DNS_OK) {
			if (ar != QUEUE_DNS_NOTFOUND)
				addr_notfound = false;
			a->any_temp = true;
			log_info("queue %lld host %s: no address: %s", (long long)a->b->job.msg.id,
			         t->host, awhy);
			(void)snprintf(text, sizeof text, "451 4.4.3 %s: %s", t->host, awhy);
			deliver_all(a, QUEUE_TEMPFAIL, "4.4.3", text);
			free(ips);
			continue;
		}
		addr_notfound = false;
		for (size_t ii = 0; ii < ni && addrs_left > 0 && !a->stopped; ii++, addrs_left--) {
			bool v6 = strchr(ips[ii], ':') != NULL;
			/* "mx.example[192.0.2.1]:25"; a literal host is shown once: "[::1]:25" */
			(void)snprintf(a->relay, sizeof a->relay, "%s[%s]:%u",
			               strcmp(t->host, ips[ii]) == 0 ? "" : t->host, ips[ii],
			               t->port);
			(void)snprintf(a->tls, sizeof a->tls, "none");
			struct err err = {0};
			const char *src = v6 ? d->cfg.source_address6 : d->cfg.source_address4;
			/* Pass 2 only after a failed TLS handshake: opportunistic TLS means the
			 * same host is tried again in plaintext (never for REQUIRETLS). */
			a->plain_only = false;
			for (int pass = 0; pass < 2; pass++) {
				if (deliver_stopping(a))
					break;
				struct conn *c = net_client_connect(
				    ips[ii], t->port, src,
				    conn_deadline((uint64_t)d->cfg.connect_timeout * 1000), &err);
				if (c == NULL) {
					log_info("queue %lld %s", (long long)a->b->job.msg.id,
					         err.msg);
					a->any_temp = true;
					(void)snprintf(text, sizeof text, "451 4.4.1 %s", err.msg);
					deliver_all(a, QUEUE_TEMPFAIL, "4.4.1", text);
					break;
				}
				bool final = deliver_session(a, c, t);
				conn_free(&c);
				if (final || a->stopped) {
					free(ips);
					goto out;
				}
				if (!a->tls_broken || a->b->job.msg.requiretls)
					break;
				a->plain_only = true;
			}
		}
		free(ips);
	}
	/* Every host failed before RCPT. Permanent only if no host failed temporarily (all
	 * answered 5xx), or every host name had no address at all. */
	if (nt > 0 && addr_notfound) {
		(void)snprintf(text, sizeof text, "550 5.1.2 %s: no address for any mail host",
		               a->b->job.domain);
		deliver_all(a, QUEUE_PERMFAIL, "5.1.2", text);
	} else if (a->any_temp) {
		for (size_t i = 0; i < a->b->job.n_rcpts; i++) {
			if (a->res[i].outcome == QUEUE_PERMFAIL) {
				a->res[i].outcome = QUEUE_TEMPFAIL;
				if (a->dsn[i][0] == '5')
					a->dsn[i][0] = '4';
			}
		}
	}
out:
	free(targets);
}

void
queue_deliver_batch(void *ctx, struct queue_batch *b)
{
	const struct queue_deliver *d = ctx;
	if (b->job.n_rcpts == 0) {
		struct queue_report rep = {.results = NULL};
		struct err err = {0};
		(void)queue_batch_done(b, &rep, &err);
		return;
	}
	struct deliver_attempt a;
	attempt_init(&a, d, b);
	deliver_run(&a);
	deliver_commit(&a);
	attempt_deinit(&a);
}
