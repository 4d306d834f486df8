/* IMAP connection driver (roles imap, imaps). Until the IMAP session (src/imap/) arrives this is
 * a protocol-honest placeholder (RFC 9051 / RFC 3501 syntax): greeting with capabilities,
 * CAPABILITY, NOOP, LOGOUT and STARTTLS work; every other tagged command gets NO [UNAVAILABLE].
 * LOGINDISABLED is advertised because no login is possible yet. Plaintext pipelined after
 * STARTTLS is dropped before the handshake (RFC 9051 §6.2.1; CVE-2011-0411).
 *
 * The IMAP session (src/imap/) replaces the verb table; the I/O loop stays. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server_private.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/slice.h"

#define IMAP_LINE_MAX   8192 /* RFC 9051 §4 recommends accepting lines of at least 8000 octets */
#define IMAP_MAX_ERRORS 10   /* bad commands before BYE (STYLE.md B.8) */
#define IMAP_TAG_MAX    64

enum imap_conn_verb {
	IMAP_CONN_V_LATER,
	IMAP_CONN_V_CAPABILITY,
	IMAP_CONN_V_NOOP,
	IMAP_CONN_V_LOGOUT,
	IMAP_CONN_V_STARTTLS,
};

static const struct {
	const char *name;
	enum imap_conn_verb verb;
} imap_conn_verbs[] = {
    {"CAPABILITY", IMAP_CONN_V_CAPABILITY},
    {"NOOP", IMAP_CONN_V_NOOP},
    {"LOGOUT", IMAP_CONN_V_LOGOUT},
    {"STARTTLS", IMAP_CONN_V_STARTTLS},
};

struct imap_conn_drv {
	struct conn *c;
	const struct server_listener *l;
	const char *id;
	uint64_t timeout_ms;
	struct conn_lines lines;
	struct buf out;
	int errors;
};

static int imap_conn_send(struct imap_conn_drv *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes one response line (CRLF added). 0 or a negative conn result. */
static int
imap_conn_send(struct imap_conn_drv *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char line[512];
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return CONN_ERROR;
	(void)buf_append(&d->out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	(void)buf_append(&d->out, "\r\n", 2);
	return conn_write_buf(d->c, &d->out, conn_deadline(d->timeout_ms));
}

static const char *
imap_conn_caps(const struct imap_conn_drv *d)
{
	return d->l->starttls && !conn_is_tls(d->c) ? "IMAP4rev1 STARTTLS LOGINDISABLED"
	                                            : "IMAP4rev1 LOGINDISABLED";
}

/* tag = 1*<any ASTRING-CHAR except "+"> (RFC 9051 §9): printable ASCII without the
 * atom-specials ( ) { SP % * " \ and without "+". */
static bool
imap_conn_is_tag(struct slice t)
{
	if (t.len == 0 || t.len > IMAP_TAG_MAX)
		return false;
	for (size_t i = 0; i < t.len; i++) {
		unsigned char ch = (unsigned char)t.p[i];
		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\+", ch) != NULL)
			return false;
	}
	return true;
}

/* Handles one command line. Returns NULL to go on, or the disconnect reason. */
static const char *
imap_conn_command(struct imap_conn_drv *d, struct slice line)
{
	struct slice tag, verb;
	struct slice rest = slice_cut(line, ' ', &tag);
	struct slice args = slice_cut(rest, ' ', &verb);
	if (memchr(line.p, '\0', line.len) != NULL || !imap_conn_is_tag(tag)) {
		d->errors++;
		return imap_conn_send(d, "* BAD Invalid tag or command line") < 0 ? "error" : NULL;
	}
	char t[IMAP_TAG_MAX + 1];
	memcpy(t, tag.p, tag.len);
	t[tag.len] = '\0';
	if (verb.len == 0) {
		d->errors++;
		return imap_conn_send(d, "%s BAD Missing command", t) < 0 ? "error" : NULL;
	}
	enum imap_conn_verb v = IMAP_CONN_V_LATER;
	for (size_t i = 0; i < sizeof imap_conn_verbs / sizeof imap_conn_verbs[0]; i++)
		if (slice_eq_nocase(verb, imap_conn_verbs[i].name))
			v = imap_conn_verbs[i].verb;
	if (log_get_level() == LOG_DEBUG) {
		char vb[40], tmp[40];
		size_t n = verb.len < sizeof vb - 1 ? verb.len : sizeof vb - 1;
		memcpy(vb, verb.p, n);
		vb[n] = '\0';
		log_debug("imap %s command verb=\"%s\"", d->id, log_escape(vb, tmp, sizeof tmp));
	}
	if (v != IMAP_CONN_V_LATER && args.len > 0) {
		d->errors++;
		return imap_conn_send(d, "%s BAD Unexpected arguments", t) < 0 ? "error" : NULL;
	}
	int rc = 0;
	switch (v) {
	case IMAP_CONN_V_CAPABILITY:
		if (imap_conn_send(d, "* CAPABILITY %s", imap_conn_caps(d)) < 0)
			return "error";
		rc = imap_conn_send(d, "%s OK CAPABILITY completed", t);
		break;
	case IMAP_CONN_V_NOOP:
		rc = imap_conn_send(d, "%s OK NOOP completed", t);
		break;
	case IMAP_CONN_V_LOGOUT:
		(void)imap_conn_send(d, "* BYE Lightr logging out");
		(void)imap_conn_send(d, "%s OK LOGOUT completed", t);
		return "logout";
	case IMAP_CONN_V_STARTTLS:
		if (conn_is_tls(d->c) || !d->l->starttls) {
			rc = imap_conn_send(d, "%s BAD TLS already active", t);
			break;
		}
		if (imap_conn_send(d, "%s OK Begin TLS negotiation now", t) < 0)
			return "error";
		const char *why = server_tls_begin("imap", d->id, d->c, d->l->tls, &d->lines, true,
		                                   d->timeout_ms);
		if (why)
			return why;
		break;
	case IMAP_CONN_V_LATER:
		/* A synchronizing literal is never answered with "+", so the client does not send
		 * it; LITERAL+ is not advertised. */
		rc = imap_conn_send(
		    d, "%s NO [UNAVAILABLE] Service not yet available, try again later", t);
		break;
	}
	return rc < 0 ? "error" : NULL;
}

static const char *
imap_conn_session(struct imap_conn_drv *d)
{
	if (d->l->implicit_tls) {
		const char *why =
		    server_tls_begin("imap", d->id, d->c, d->l->tls, NULL, false, d->timeout_ms);
		if (why)
			return why;
	}
	if (imap_conn_send(d, "* OK [CAPABILITY %s] Lightr ready", imap_conn_caps(d)) < 0)
		return "error";
	for (;;) {
		struct slice line;
		int rc = conn_read_line(d->c, &d->lines, conn_deadline(d->timeout_ms), &line);
		const char *reason = NULL;
		switch (rc) {
		case CONN_LINE:
			reason = imap_conn_command(d, line);
			break;
		case CONN_LINE_TOO_LONG:
			d->errors++;
			if (imap_conn_send(d, "* BAD Command line too long") < 0)
				reason = "error";
			break;
		case CONN_TIMEOUT:
			(void)imap_conn_send(d, "* BYE Autologout; idle for too long");
			return "timeout";
		case CONN_EOF:
			if (server_is_stopping()) {
				(void)imap_conn_send(d, "* BYE [UNAVAILABLE] Server shutting down");
				return "shutdown";
			}
			return "eof";
		default:
			log_debug("imap %s read-error error=\"%s\"", d->id, d->c->err);
			return "error";
		}
		if (reason)
			return reason;
		if (d->errors >= IMAP_MAX_ERRORS) {
			(void)imap_conn_send(d, "* BYE Too many invalid commands");
			return "errors";
		}
	}
}

void
server_imap_conn(struct conn *c, void *arg)
{
	const struct server_listener *l = arg;
	struct config *cfg = config_current();
	char id[SERVER_ID_LEN];
	server_conn_id(id);
	struct imap_conn_drv d = {
	    .c = c,
	    .l = l,
	    .id = id,
	    .timeout_ms = cfg->imap.timeout * 1000,
	};
	config_unref(&cfg);
	conn_lines_init(&d.lines, IMAP_LINE_MAX);
	buf_init(&d.out, 4096);
	int64_t t0 = clock_mono_ms();
	log_info("imap %s connect client=%s listener=%s", id, c->peer, l->name);
	const char *reason = imap_conn_session(&d);
	int64_t ms = clock_mono_ms() - t0;
	log_info("imap %s disconnect client=%s duration=%lld.%03lld reason=%s in=%llu out=%llu", id,
	         c->peer, (long long)(ms / 1000), (long long)(ms % 1000), reason,
	         (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
	buf_deinit(&d.out);
	conn_lines_deinit(&d.lines);
}
