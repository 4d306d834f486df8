/* SMTP connection driver (roles mx, submission, submissions). Until the SMTP session (src/smtp/)
 * arrives this is a protocol-honest placeholder: it greets, answers EHLO/HELO/NOOP/RSET/QUIT,
 * performs STARTTLS where it is offered, and gives every mail command a temporary failure, so a
 * sending MTA queues and retries instead of bouncing. It also proves the STARTTLS rule: bytes
 * pipelined after STARTTLS in plaintext are dropped before the handshake (CVE-2011-0411).
 *
 * The SMTP session (src/smtp/) replaces the verb table; the I/O loop stays. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server_private.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/slice.h"

#define SMTP_CMD_LINE_MAX 512 /* RFC 5321 §4.5.3.1.4, CRLF included */
#define SMTP_MAX_ERRORS   10  /* bad commands before 421 and disconnect (STYLE.md B.8) */

enum smtp_conn_verb {
	SMTP_CONN_V_LATER, /* a real command we do not serve yet: 451 */
	SMTP_CONN_V_EHLO,
	SMTP_CONN_V_HELO,
	SMTP_CONN_V_NOOP,
	SMTP_CONN_V_RSET,
	SMTP_CONN_V_QUIT,
	SMTP_CONN_V_STARTTLS,
};

/* Every verb of RFC 5321 and the extensions a client may send; anything else is unrecognised. */
static const struct {
	const char *name;
	enum smtp_conn_verb verb;
} smtp_conn_verbs[] = {
    {"EHLO", SMTP_CONN_V_EHLO},  {"HELO", SMTP_CONN_V_HELO},  {"NOOP", SMTP_CONN_V_NOOP},
    {"RSET", SMTP_CONN_V_RSET},  {"QUIT", SMTP_CONN_V_QUIT},  {"STARTTLS", SMTP_CONN_V_STARTTLS},
    {"MAIL", SMTP_CONN_V_LATER}, {"RCPT", SMTP_CONN_V_LATER}, {"DATA", SMTP_CONN_V_LATER},
    {"BDAT", SMTP_CONN_V_LATER}, {"AUTH", SMTP_CONN_V_LATER}, {"VRFY", SMTP_CONN_V_LATER},
    {"EXPN", SMTP_CONN_V_LATER}, {"HELP", SMTP_CONN_V_LATER}, {"ETRN", SMTP_CONN_V_LATER},
    {"TURN", SMTP_CONN_V_LATER}, {"ATRN", SMTP_CONN_V_LATER}, {"XCLIENT", SMTP_CONN_V_LATER},
};

struct smtp_conn_drv {
	struct conn *c;
	const struct server_listener *l;
	const char *id;
	const char *hostname;
	uint64_t timeout_ms;
	struct conn_lines lines;
	struct buf out;
	int errors;
};

static int smtp_conn_reply(struct smtp_conn_drv *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queues one reply line (CRLF added) and writes it. 0 or a negative conn result. */
static int
smtp_conn_reply(struct smtp_conn_drv *d, const char *fmt, ...)
{
	char line[SMTP_CMD_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return CONN_ERROR;
	if ((size_t)n >= sizeof line - 2)
		n = (int)sizeof line -
		    3; /* truncated: hostname is at most 253 bytes, cannot happen */
	(void)buf_append(&d->out, line, (size_t)n);
	(void)buf_append(&d->out, "\r\n", 2);
	return conn_write_buf(d->c, &d->out, conn_deadline(d->timeout_ms));
}

static enum smtp_conn_verb
smtp_conn_lookup(struct slice verb, bool *known_r)
{
	for (size_t i = 0; i < sizeof smtp_conn_verbs / sizeof smtp_conn_verbs[0]; i++)
		if (slice_eq_nocase(verb, smtp_conn_verbs[i].name)) {
			*known_r = true;
			return smtp_conn_verbs[i].verb;
		}
	*known_r = false;
	return SMTP_CONN_V_LATER;
}

/* Handles one command line. Returns NULL to go on, or the disconnect reason. */
static const char *
smtp_conn_command(struct smtp_conn_drv *d, struct slice line)
{
	struct slice verb;
	struct slice args = slice_trim(slice_cut(line, ' ', &verb));
	bool known;
	enum smtp_conn_verb v = smtp_conn_lookup(verb, &known);
	if (log_get_level() == LOG_DEBUG) {
		char vb[40], tmp[40];
		size_t n = verb.len < sizeof vb - 1 ? verb.len : sizeof vb - 1;
		memcpy(vb, verb.p, n);
		vb[n] = '\0';
		log_debug("smtp %s command verb=\"%s\"", d->id, log_escape(vb, tmp, sizeof tmp));
	}
	if (memchr(line.p, '\0', line.len) != NULL)
		known = false; /* NUL in a command line: never valid (RFC 5321 §4.1.1) */
	if (!known) {
		d->errors++;
		return smtp_conn_reply(d, "500 5.5.2 Command not recognized") < 0 ? "error" : NULL;
	}
	int rc = 0;
	switch (v) {
	case SMTP_CONN_V_EHLO:
	case SMTP_CONN_V_HELO:
		if (args.len == 0) {
			d->errors++;
			rc = smtp_conn_reply(d, "501 5.5.4 Syntax: %s hostname",
			                     v == SMTP_CONN_V_EHLO ? "EHLO" : "HELO");
		} else if (v == SMTP_CONN_V_EHLO && d->l->starttls && !conn_is_tls(d->c)) {
			(void)buf_printf(&d->out, "250-%s Lightr\r\n", d->hostname);
			rc = smtp_conn_reply(d, "250 STARTTLS");
		} else {
			rc = smtp_conn_reply(d, "250 %s", d->hostname);
		}
		break;
	case SMTP_CONN_V_NOOP:
		rc = smtp_conn_reply(d, "250 2.0.0 OK");
		break;
	case SMTP_CONN_V_RSET:
		rc = args.len ? smtp_conn_reply(d, "501 5.5.4 Syntax: RSET")
		              : smtp_conn_reply(d, "250 2.0.0 OK");
		break;
	case SMTP_CONN_V_QUIT:
		(void)smtp_conn_reply(d, "221 2.0.0 Bye");
		return "quit";
	case SMTP_CONN_V_STARTTLS:
		if (conn_is_tls(d->c)) {
			d->errors++;
			rc = smtp_conn_reply(d, "503 5.5.1 TLS already active");
			break;
		}
		if (!d->l->starttls) {
			rc = smtp_conn_reply(
			    d, "451 4.3.2 Service not yet available, try again later");
			break;
		}
		if (args.len) {
			d->errors++;
			rc = smtp_conn_reply(d, "501 5.5.4 Syntax: STARTTLS");
			break;
		}
		if (smtp_conn_reply(d, "220 2.0.0 Ready to start TLS") < 0)
			return "error";
		const char *why =
		    server_tls_begin("smtp", d->id, d->c, d->l->tls, &d->lines, d->timeout_ms);
		if (why)
			return why;
		/* RFC 3207 §4.2: the client starts over with EHLO; we keep no other state. */
		break;
	case SMTP_CONN_V_LATER:
		rc = smtp_conn_reply(d, "451 4.3.2 Service not yet available, try again later");
		break;
	}
	return rc < 0 ? "error" : NULL;
}

/* The session loop; returns the disconnect reason. */
static const char *
smtp_conn_session(struct smtp_conn_drv *d)
{
	if (d->l->implicit_tls) {
		const char *why =
		    server_tls_begin("smtp", d->id, d->c, d->l->tls, NULL, d->timeout_ms);
		if (why)
			return why;
	}
	if (smtp_conn_reply(d, "220 %s ESMTP Lightr", d->hostname) < 0)
		return "error";
	for (;;) {
		struct slice line;
		int rc = conn_read_line(d->c, &d->lines, conn_deadline(d->timeout_ms), &line);
		const char *reason = NULL;
		switch (rc) {
		case CONN_LINE:
			reason = smtp_conn_command(d, line);
			break;
		case CONN_LINE_TOO_LONG:
			d->errors++;
			if (smtp_conn_reply(d, "500 5.5.2 Line too long") < 0)
				reason = "error";
			break;
		case CONN_TIMEOUT:
			(void)smtp_conn_reply(d, "421 4.4.2 %s Idle timeout, closing connection",
			                      d->hostname);
			return "timeout";
		case CONN_EOF:
			if (server_is_stopping()) {
				(void)smtp_conn_reply(d, "421 4.3.2 %s Server shutting down",
				                      d->hostname);
				return "shutdown";
			}
			return "eof";
		default:
			log_debug("smtp %s read-error error=\"%s\"", d->id, d->c->err);
			return "error";
		}
		if (reason)
			return reason;
		if (d->errors >= SMTP_MAX_ERRORS) {
			(void)smtp_conn_reply(d, "421 4.7.0 %s Too many errors, closing connection",
			                      d->hostname);
			return "errors";
		}
	}
}

void
server_smtp_conn(struct conn *c, void *arg)
{
	const struct server_listener *l = arg;
	struct config *cfg = config_current();
	char id[SERVER_ID_LEN];
	server_conn_id(id);
	struct smtp_conn_drv d = {
	    .c = c,
	    .l = l,
	    .id = id,
	    .hostname = l->hostname,
	    .timeout_ms = cfg->smtp.timeout * 1000,
	};
	config_unref(&cfg);
	conn_lines_init(&d.lines, SMTP_CMD_LINE_MAX);
	buf_init(&d.out, 4096);
	int64_t t0 = clock_mono_ms();
	log_info("smtp %s connect client=%s listener=%s", id, c->peer, l->name);
	const char *reason = smtp_conn_session(&d);
	int64_t ms = clock_mono_ms() - t0;
	log_info("smtp %s disconnect client=%s duration=%lld.%03lld reason=%s in=%llu out=%llu", id,
	         c->peer, (long long)(ms / 1000), (long long)(ms % 1000), reason,
	         (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
	buf_deinit(&d.out);
	conn_lines_deinit(&d.lines);
}
