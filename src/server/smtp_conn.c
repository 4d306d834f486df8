/* SMTP connection driver (roles mx, submission, submissions): the only code that touches an SMTP
 * client's socket (STYLE.md B.13 example 1). It reads whatever bytes arrive, hands them to the
 * protocol session (src/smtp/server.c), writes the queued replies, performs the TLS handshake when
 * the session asks for it, and enforces the deadlines: a command line must arrive whole within
 * smtp.timeout of the previous reply (so a client dribbling one byte a minute is cut off), and
 * inside DATA/BDAT each read must arrive within smtp.timeout. Plaintext pipelined after STARTTLS
 * was already dropped by the session; nothing read before the handshake reaches it afterwards. */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "server/server.h"
#include "server_private.h"
#include "smtp/server.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

/* Large enough for a 64 KiB BDAT burst per read; the session buffers no more than it must. */
#define SMTP_CONN_READ_BUF 16384
/* The 421 to a rate-limited client is written without waiting on a slow reader. */
#define SMTP_CONN_BUSY_WRITE_MS 1000

struct smtp_conn_drv {
	struct conn *c;
	const struct server_listener *l;
	const char *id;
	uint64_t timeout_ms;
	struct smtp_server *s;
};

static enum smtp_role
smtp_conn_role(enum listener_role r)
{
	switch (r) {
	case LISTENER_SUBMISSION:
		return SMTP_ROLE_SUBMISSION;
	case LISTENER_SUBMISSIONS:
		return SMTP_ROLE_SUBMISSIONS;
	default:
		return SMTP_ROLE_MX;
	}
}

/* Writes the session's queued replies, after the AUTH failure delay when one is due. */
static int
smtp_conn_flush(struct smtp_conn_drv *d)
{
	unsigned delay = smtp_server_delay_ms(d->s);
	if (delay)
		(void)poll(NULL, 0, (int)delay);
	struct buf *out = smtp_server_output(d->s);
	if (out->len == 0)
		return 0;
	return conn_write_buf(d->c, out, conn_deadline(d->timeout_ms));
}

/* The session loop; returns the disconnect reason. */
static const char *
smtp_conn_session(struct smtp_conn_drv *d)
{
	unsigned char buf[SMTP_CONN_READ_BUF];
	if (smtp_conn_flush(d) < 0)
		return "error";
	int64_t cmd_deadline = conn_deadline(d->timeout_ms);
	while (!smtp_server_done(d->s)) {
		int64_t deadline =
		    smtp_server_in_data(d->s) ? conn_deadline(d->timeout_ms) : cmd_deadline;
		ssize_t n = conn_read(d->c, buf, sizeof buf, deadline);
		if (n == CONN_TIMEOUT) {
			smtp_server_close(d->s, false);
			(void)smtp_conn_flush(d);
			return "timeout";
		}
		if (n == CONN_EOF) {
			if (!server_is_stopping())
				return "eof";
			smtp_server_close(d->s, true);
			(void)smtp_conn_flush(d);
			return "shutdown";
		}
		if (n < 0) {
			log_debug("smtp %s read-error error=\"%s\"", d->id, d->c->err);
			return "error";
		}
		smtp_server_input(d->s, buf, (size_t)n);
		struct buf *out = smtp_server_output(d->s);
		if (out->len > 0)
			cmd_deadline =
			    conn_deadline(d->timeout_ms); /* a reply: a new command may start */
		if (smtp_conn_flush(d) < 0)
			return "error";
		if (smtp_server_wants_tls(d->s)) {
			const char *why = server_tls_begin("smtp", d->id, d->c, d->l->tls, NULL,
			                                   true, d->timeout_ms);
			if (why)
				return why;
			smtp_server_tls_started(d->s, conn_tls_version(d->c),
			                        conn_tls_cipher(d->c));
			cmd_deadline = conn_deadline(d->timeout_ms);
		}
	}
	return "quit";
}

/* Connections per minute per client IP on the MX listener (limits.ip.connections_per_minute,
 * issue 8): over it, the client gets "421 4.7.0 <hostname> <which limit, retry in N s>" instead
 * of the greeting, like the busy reply of the connection pool (max_connections_per_ip). Returns
 * the disconnect reason, or NULL to go on. */
static const char *
smtp_conn_rate_limited(struct conn *c, const struct server_listener *l, const char *id)
{
	struct server_limit_verdict v = {0};
	if (server_limit_ip(c->peer_ip, "connections_per_minute", &v))
		return NULL;
	log_info("smtp %s reject client=%s listener=%s reason=connections_per_minute retry=%lld",
	         id, c->peer, l->name, (long long)v.retry_after_s);
	char line[512];
	int n = snprintf(line, sizeof line, "421 4.7.0 %s %s\r\n",
	                 l->hostname ? l->hostname : "localhost",
	                 v.text[0] ? v.text : "Too many connections, try again later");
	if (n < 0 || (size_t)n >= sizeof line)
		n = snprintf(line, sizeof line,
		             "421 4.7.0 Too many connections, try again later\r\n");
	if (n > 0)
		(void)conn_write(c, line, (size_t)n, conn_deadline(SMTP_CONN_BUSY_WRITE_MS));
	return "rate-limited";
}

void
server_smtp_conn(struct conn *c, void *arg)
{
	const struct server_listener *l = arg;
	char id[SERVER_ID_LEN];
	server_conn_id(id);
	int64_t t0 = clock_mono_ms();
	log_info("smtp %s connect client=%s listener=%s", id, c->peer, l->name);

	struct config *cfg = config_current();
	struct smtp_conn_drv d = {.c = c, .l = l, .id = id, .timeout_ms = cfg->smtp.timeout * 1000};
	const char *sep = cfg->smtp.subaddress_separator;
	struct server_smtp_ctx ctx = {
	    .store = l->store,
	    .subaddress_sep = strcmp(sep, "none") == 0 ? '\0' : sep[0],
	    .id = id,
	    .client_ip = c->peer_ip,
	    .submission = l->role == LISTENER_SUBMISSION || l->role == LISTENER_SUBMISSIONS,
	};
	struct smtp_limits lim = {
	    .hostname = l->hostname,
	    .max_message_size = cfg->smtp.max_message_size,
	    .max_recipients = (unsigned)cfg->smtp.max_recipients,
	    .max_messages = (unsigned)cfg->smtp.max_messages_per_connection,
	    .max_errors = (unsigned)cfg->smtp.max_errors,
	    .max_auth_failures = (unsigned)cfg->smtp.max_auth_failures,
	    .auth_fail_delay_ms = (unsigned)(cfg->smtp.auth_failure_delay * 1000),
	    .subaddress_sep = ctx.subaddress_sep,
	};
	struct smtp_hooks hooks;
	server_smtp_hooks(&ctx, &hooks);
	struct smtp_conn_info info = {
	    .client_ip = c->peer_ip, .client_name = NULL, .listener = l->name};

	const char *reason = NULL;
	if (l->role == LISTENER_MX)
		reason = smtp_conn_rate_limited(c, l, id);
	if (reason == NULL && l->implicit_tls)
		reason = server_tls_begin("smtp", id, c, l->tls, NULL, false, d.timeout_ms);
	if (reason == NULL) {
		d.s = smtp_server_new(smtp_conn_role(l->role), &lim, &hooks, &info, l->implicit_tls,
		                      id);
		if (l->implicit_tls)
			smtp_server_tls_started(d.s, conn_tls_version(c), conn_tls_cipher(c));
		reason = smtp_conn_session(&d);
	}
	int64_t ms = clock_mono_ms() - t0;
	log_info("smtp %s disconnect client=%s duration=%lld.%03lld reason=%s messages=%u in=%llu "
	         "out=%llu",
	         id, c->peer, (long long)(ms / 1000), (long long)(ms % 1000), reason,
	         d.s ? smtp_server_messages(d.s) : 0, (unsigned long long)c->bytes_in,
	         (unsigned long long)c->bytes_out);
	smtp_server_free(&d.s);
	/* sep points into cfg, which the session no longer uses */
	config_unref(&cfg);
	store_thread_done(l->store);
}
