/* SMTP server session core: creation, the input loop that frames bytes into command lines, DATA
 * content, BDAT chunks and AUTH continuations, the reply queue with its error accounting, state
 * transitions (one smtp_enter(), logged at debug) and the transaction. The commands themselves
 * live in cmds.c, the end of a message in message.c. See server.h for the contract. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp_private.h"
#include "util/log.h"
#include "util/xalloc.h"

const char *
smtp_state_name(enum smtp_state st)
{
	static const char *const names[] = {
	    [SMTP_STATE_GREETED] = "greeted",   [SMTP_STATE_READY] = "ready",
	    [SMTP_STATE_MAIL] = "mail",         [SMTP_STATE_RCPT] = "rcpt",
	    [SMTP_STATE_CHUNKING] = "chunking", [SMTP_STATE_DATA] = "data",
	    [SMTP_STATE_BDAT] = "bdat",         [SMTP_STATE_AUTH] = "auth",
	    [SMTP_STATE_TLS] = "tls",           [SMTP_STATE_DONE] = "done",
	};
	return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

void
smtp_enter(struct smtp_server *s, enum smtp_state to)
{
	if (s->state == to)
		return;
	log_debug("smtp %s state %s -> %s", s->id, smtp_state_name(s->state), smtp_state_name(to));
	s->state = to;
}

void
smtp_log(struct smtp_server *s, const char *event, const char *fmt, ...)
{
	if (s->hooks.log == NULL)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	const char *l = log_session_line(line, sizeof line, "smtp", s->id, event, fmt, ap);
	va_end(ap);
	if (l != NULL)
		s->hooks.log(s->hooks.ctx, l);
}

const char *
smtp_hostname(const struct smtp_server *s)
{
	return s->lim.hostname ? s->lim.hostname : "localhost";
}

void
smtp_out(struct smtp_server *s, int code, const char *enh, const char *text)
{
	(void)smtp_reply(&s->out, code, enh, text);
	if (code == 421) {
		s->done = true;
		smtp_enter(s, SMTP_STATE_DONE);
	}
}

void
smtp_outf(struct smtp_server *s, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_REPLY_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	smtp_out(s, code, enh, text); /* a cut text is still a valid reply */
}

static bool
is_protocol_error(int code)
{
	return (code >= 500 && code <= 504) || code == 530 || code == 538 || code == 555;
}

void
smtp_reject(struct smtp_server *s, const struct smtp_cmd_error *e)
{
	smtp_out(s, e->code, e->enhanced, e->text);
	if (!is_protocol_error(e->code) || s->done)
		return;
	s->errors++;
	if (s->lim.max_errors != 0 && s->errors >= s->lim.max_errors) {
		smtp_log(s, "too-many-errors", "errors=%u", s->errors);
		smtp_outf(s, 421, "4.7.0", "%s Too many errors, closing connection",
		          smtp_hostname(s));
	}
}

void
smtp_hook_reply(struct smtp_server *s, const struct smtp_hook_reply *r,
                const struct smtp_cmd_error *fallback)
{
	if (r->code < 400 || r->code > 599 || memchr(r->text, '\0', sizeof r->text) == NULL ||
	    memchr(r->enhanced, '\0', sizeof r->enhanced) == NULL) {
		smtp_out(s, fallback->code, fallback->enhanced, fallback->text);
		return;
	}
	smtp_out(s, r->code, r->enhanced, r->text); /* an empty or bad code becomes x.0.0 */
}

void
smtp_tx_reset(struct smtp_server *s)
{
	arena_free(&s->tx.arena);
	memset(&s->tx, 0, sizeof s->tx);
	smtp_data_deinit(&s->data);
}

enum smtp_state
smtp_idle_state(const struct smtp_server *s)
{
	return s->helo[0] ? SMTP_STATE_READY : SMTP_STATE_GREETED;
}

/* Copies src into dst (size n) keeping only bytes that are safe inside a header comment and a
 * log line. */
static void
copy_safe(char *dst, size_t n, const char *src)
{
	size_t o = 0;
	for (; src && *src && o + 1 < n; src++) {
		unsigned char c = (unsigned char)*src;
		dst[o++] =
		    c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\' ? (char)c : '?';
	}
	dst[o] = '\0';
}

struct smtp_server *
smtp_server_new(enum smtp_role role, const struct smtp_limits *limits,
                const struct smtp_hooks *hooks, const struct smtp_conn_info *info, bool tls_active,
                const char *id)
{
	ASSERT(hooks->rcpt != NULL && hooks->deliver != NULL);
	ASSERT(role == SMTP_ROLE_MX || (hooks->auth != NULL && hooks->sender_ok != NULL));
	struct smtp_server *s = xcalloc(1, sizeof *s);
	s->role = role;
	s->lim = *limits;
	s->hooks = *hooks;
	if (info)
		s->info = *info;
	copy_safe(s->id, sizeof s->id, id ? id : "-");
	s->tls = tls_active;
	s->state = SMTP_STATE_GREETED;
	s->parser = smtp_cmd_parser_new(&(struct smtp_cmd_limits){
	    .line_max = SMTP_CMD_LINE_MAX, .auth_line_max = SMTP_AUTH_LINE_MAX});
	buf_init(&s->out, 0);
	smtp_data_init(&s->data);
	/* RFC 2034 §3: no enhanced code on the greeting */
	smtp_outf(s, 220, NULL, "%s ESMTP Lightr", smtp_hostname(s));
	return s;
}

void
smtp_server_free(struct smtp_server **sp)
{
	struct smtp_server *s = sp ? *sp : NULL;
	if (s == NULL)
		return;
	*sp = NULL;
	sasl_creds_wipe(&s->creds);
	smtp_tx_reset(s);
	smtp_data_deinit(&s->data);
	x_free(&s->auth_user);
	buf_deinit(&s->out);
	smtp_cmd_parser_free(&s->parser);
	free(s);
}

/* A command line the parser refused (too long, bare CR/LF, NUL). */
static void
line_error(struct smtp_server *s, const char *why)
{
	smtp_log(s, "bad-line", "error=\"%s\"", why);
	if (s->state == SMTP_STATE_AUTH) {
		smtp_auth_abort(s);
		static const struct smtp_cmd_error e = {501, "5.5.2", "Invalid AUTH response line"};
		smtp_reject(s, &e);
		return;
	}
	static const struct smtp_cmd_error too_long = {500, "5.5.2", "Line too long"};
	static const struct smtp_cmd_error bare = {
	    500, "5.5.2", "Syntax error: bare CR, bare LF or NUL in command line"};
	smtp_reject(s, strcmp(why, "line too long") == 0 ? &too_long : &bare);
}

void
smtp_server_input(struct smtp_server *s, const unsigned char *in, size_t len)
{
	while (len > 0 && !s->done) {
		size_t used = 0;
		switch (s->state) {
		case SMTP_STATE_TLS:
		case SMTP_STATE_DONE:
			/* CVE-2011-0411: nothing sent before the handshake may count after it */
			return;
		case SMTP_STATE_DATA:
			if (smtp_data_feed(&s->data, in, len, &used))
				smtp_message_end(s);
			break;
		case SMTP_STATE_BDAT: {
			uint64_t n = s->bdat_left < len ? s->bdat_left : len;
			if (!s->bdat_bad)
				smtp_data_chunk(&s->data, in, (size_t)n);
			s->bdat_left -= n;
			used = (size_t)n;
			if (s->bdat_left == 0)
				smtp_bdat_end(s);
			break;
		}
		default: {
			struct smtp_cmd cmd;
			const char *err = NULL;
			enum smtp_parse r = smtp_cmd_parse(s->parser, in, len, &used, &cmd, &err);
			if (r == SMTP_PARSE_CMD) {
				if (s->state == SMTP_STATE_AUTH)
					smtp_auth_line(s, &cmd);
				else
					smtp_dispatch(s, &cmd);
			} else if (r == SMTP_PARSE_ERROR) {
				line_error(s, err);
			}
			break;
		}
		}
		in += used;
		len -= used;
	}
}

struct buf *
smtp_server_output(struct smtp_server *s)
{
	return &s->out;
}

bool
smtp_server_wants_tls(const struct smtp_server *s)
{
	return s->wants_tls;
}

void
smtp_server_tls_started(struct smtp_server *s, const char *version, const char *cipher)
{
	copy_safe(s->tls_version, sizeof s->tls_version, version ? version : "unknown");
	copy_safe(s->tls_cipher, sizeof s->tls_cipher, cipher ? cipher : "unknown");
	s->tls = true;
	if (!s->wants_tls)
		return; /* implicit TLS: the session has just begun */
	/* RFC 3207 §4.2: forget everything learnt from the client before TLS */
	s->wants_tls = false;
	s->esmtp = false;
	s->helo[0] = '\0';
	smtp_tx_reset(s);
	smtp_cmd_parser_reset(s->parser);
	smtp_enter(s, SMTP_STATE_GREETED);
}

unsigned
smtp_server_delay_ms(struct smtp_server *s)
{
	unsigned d = s->delay_ms;
	s->delay_ms = 0;
	return d;
}

bool
smtp_server_in_data(const struct smtp_server *s)
{
	return s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT ||
	       s->state == SMTP_STATE_CHUNKING;
}

bool
smtp_server_done(const struct smtp_server *s)
{
	return s->done;
}

void
smtp_server_close(struct smtp_server *s, bool shutdown)
{
	if (s->done)
		return;
	if (shutdown)
		smtp_outf(s, 421, "4.3.2", "%s Service shutting down, closing connection",
		          smtp_hostname(s));
	else
		smtp_outf(s, 421, "4.4.2", "%s Timeout, closing connection", smtp_hostname(s));
}

unsigned
smtp_server_messages(const struct smtp_server *s)
{
	return s->messages;
}

const char *
smtp_server_auth_user(const struct smtp_server *s)
{
	return s->auth_user;
}
