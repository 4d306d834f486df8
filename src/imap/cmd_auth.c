/* IMAP commands of any state and of the not-authenticated state: CAPABILITY, NOOP, LOGOUT
 * (RFC 9051 §6.1), STARTTLS, LOGIN, AUTHENTICATE PLAIN with SASL-IR (§6.2, RFC 4959), ID (RFC
 * 2971), ENABLE (RFC 5161, RFC 9051 §6.3.1), COMPRESS=DEFLATE (RFC 4978) and IDLE (RFC 2177,
 * RFC 9051 §6.3.13). Passwords and AUTHENTICATE payloads are never logged. */
#include <stdio.h>
#include <string.h>

#include "session_private.h"
#include "util/log.h"
#include "util/xalloc.h"

static bool
no_args(struct imap_session *s, struct imap_call *k)
{
	if (imap_cur_at_end(k->c))
		return true;
	(void)imap_bad(s, "Unexpected arguments");
	return false;
}

void
imap_cmd_capability(struct imap_session *s, struct imap_call *k)
{
	if (!no_args(s, k))
		return;
	(void)buf_append_str(&s->out, "* CAPABILITY ");
	imap_capabilities(s, &s->out);
	(void)buf_append_str(&s->out, "\r\n");
	imap_tagged(s, "OK", NULL, "Capability completed");
}

void
imap_cmd_noop(struct imap_session *s, struct imap_call *k)
{
	if (!no_args(s, k))
		return;
	imap_tagged(s, "OK", NULL, "NOOP completed");
}

void
imap_cmd_logout(struct imap_session *s, struct imap_call *k)
{
	if (!no_args(s, k))
		return;
	(void)buf_append_str(&s->out, "* BYE Logging out\r\n");
	imap_tagged(s, "OK", NULL, "Logout completed");
	char esc[300];
	imap_log(s, "logout", "user=%s", s->user ? log_escape(s->user, esc, sizeof esc) : "-");
	s->done = true;
	imap_enter(s, IMAP_STATE_LOGOUT);
}

void
imap_cmd_starttls(struct imap_session *s, struct imap_call *k)
{
	if (!no_args(s, k))
		return;
	if (s->tls) {
		(void)imap_bad(s, "TLS is already active");
		return;
	}
	if (!s->starttls_offered) {
		(void)imap_bad(s, "STARTTLS is not available");
		return;
	}
	imap_tagged(s, "OK", NULL, "Begin TLS negotiation now");
	s->wants_tls = true; /* the input loop discards the rest (CVE-2011-0411) */
}

/* ---- LOGIN / AUTHENTICATE ---- */

static void
login_ok(struct imap_session *s, const char *user, const char *method)
{
	s->user = xstrdup(s->ms->user ? s->ms->user : user);
	imap_enter(s, IMAP_STATE_AUTH);
	imap_reader_limits_apply(s);
	char esc[300];
	imap_log(s, "login", "user=%s method=%s ip=%s tls=%s", log_escape(s->user, esc, sizeof esc),
	         method, s->info.client_ip ? s->info.client_ip : "-", s->tls ? "yes" : "no");
	struct buf caps;
	buf_init(&caps, 0);
	(void)buf_append_str(&caps, "CAPABILITY ");
	imap_capabilities(s, &caps);
	imap_tagged(s, "OK", buf_cstr(&caps), "Logged in");
	buf_deinit(&caps);
}

static void
login_failed(struct imap_session *s, const char *user, const char *method)
{
	s->auth_failures++;
	s->delay_ms = s->auth_failures * s->lim.auth_fail_delay_ms;
	char esc[300];
	imap_log(s, "login-failed", "user=%s method=%s ip=%s failures=%u",
	         log_escape(user, esc, sizeof esc), method,
	         s->info.client_ip ? s->info.client_ip : "-", s->auth_failures);
	imap_tagged(s, "NO", "AUTHENTICATIONFAILED", "Authentication failed");
	if (s->lim.max_auth_failures != 0 && s->auth_failures >= s->lim.max_auth_failures)
		imap_bye(s, "Too many authentication failures");
}

static void
try_login(struct imap_session *s, const char *user, const char *pass, size_t pass_len,
          const char *method)
{
	struct err err = {0};
	if (s->hooks.auth_gate != NULL && !s->hooks.auth_gate(s->hooks.ctx, user)) {
		login_failed(s, user, method); /* locked out: the password is not checked */
		return;
	}
	int r = s->ms->ops->login(s->ms, user, pass, pass_len, &err);
	if (r >= 0 && s->hooks.auth_result != NULL)
		s->hooks.auth_result(s->hooks.ctx, user, r > 0);
	if (r > 0) {
		login_ok(s, user, method);
	} else if (r == 0) {
		login_failed(s, user, method);
	} else {
		log_warn("imap %s login-error msg=\"%s\"", s->id, err.msg);
		imap_tagged(s, "NO", "UNAVAILABLE", "Temporary authentication failure");
	}
}

void
imap_cmd_login(struct imap_session *s, struct imap_call *k)
{
	struct buf user, pass;
	buf_init(&user, SASL_USER_MAX);
	buf_init(&pass, AUTH_PASSWORD_MAX);
	if (!imap_cur_astring(k->c, &user) || !imap_cur_sp(k->c) ||
	    !imap_cur_astring(k->c, &pass) || !imap_cur_eol(k->c)) {
		(void)imap_bad(s, user.overflow || pass.overflow ? "Credentials too long"
		                  : k->c->error                  ? k->c->error
		                                                 : "Syntax: LOGIN user password");
	} else if (!s->tls && !s->lim.plaintext_auth_ok) {
		/* RFC 9051 §6.2.3: LOGINDISABLED */
		imap_tagged(s, "NO", "PRIVACYREQUIRED", "Use STARTTLS first");
	} else if (user.len == 0 || memchr(user.data, '\0', user.len) != NULL) {
		login_failed(s, "", "login");
	} else {
		try_login(s, buf_cstr(&user), buf_cstr(&pass), pass.len, "login");
	}
	if (pass.data != NULL)
		memset(pass.data, 0, pass.cap);
	buf_deinit(&user);
	buf_deinit(&pass);
}

static void
auth_response(struct imap_session *s, struct slice resp)
{
	struct sasl_creds cr;
	enum sasl_result r = sasl_plain_decode(resp, &cr);
	if (r == SASL_OK)
		try_login(s, cr.user, cr.pass, cr.pass_len, "plain");
	else if (r == SASL_BAD_BASE64)
		(void)imap_bad(s, "Invalid base64 in AUTHENTICATE response");
	else
		login_failed(s, "", "plain");
	sasl_creds_wipe(&cr);
}

void
imap_cmd_authenticate(struct imap_session *s, struct imap_call *k)
{
	struct slice mech;
	if (!imap_cur_atom(k->c, &mech)) {
		(void)imap_bad(s, "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	struct slice initial = {NULL, 0};
	if (!imap_cur_at_end(k->c)) {
		/* RFC 4959: SP (base64 / "=") */
		if (!imap_cur_sp(k->c) || imap_cur_at_end(k->c)) {
			(void)imap_bad(s, "Syntax: AUTHENTICATE mechanism [initial-response]");
			return;
		}
		initial = slice_make(k->c->p, (size_t)(k->c->end - k->c->p));
		if (memchr(initial.p, ' ', initial.len) != NULL) {
			(void)imap_bad(s, "Invalid initial response");
			return;
		}
	}
	if (sasl_mech_parse(mech) != SASL_MECH_PLAIN) {
		imap_tagged(s, "NO", "CANNOT", "Unsupported authentication mechanism");
		return;
	}
	if (!s->tls && !s->lim.plaintext_auth_ok) {
		imap_tagged(s, "NO", "PRIVACYREQUIRED", "Use STARTTLS first");
		return;
	}
	if (initial.p != NULL) {
		auth_response(s, initial);
		return;
	}
	(void)buf_append_str(&s->out, "+ \r\n");
	snprintf(s->pend_tag, sizeof s->pend_tag, "%s", s->tag);
	s->pending = IMAP_PEND_AUTH;
	imap_reader_line_mode(s->reader);
}

void
imap_auth_line(struct imap_session *s, struct slice line)
{
	s->pending = IMAP_PEND_NONE;
	snprintf(s->tag, sizeof s->tag, "%s", s->pend_tag);
	if (line.len == 1 && line.p[0] == '*') {
		(void)imap_bad(s, "Authentication cancelled");
		return;
	}
	auth_response(s, line);
}

/* ---- ID (RFC 2971) ---- */

void
imap_cmd_id(struct imap_session *s, struct imap_call *k)
{
	struct imap_cursor *c = k->c;
	struct buf name, val;
	buf_init(&name, 1024);
	buf_init(&val, 1024);
	bool ok = true, is_nil = false;
	if (imap_cur_list_open(c)) {
		unsigned pairs = 0;
		while (ok && imap_cur_peek(c) != ')' && imap_cur_peek(c) >= 0) {
			buf_reset(&name);
			buf_reset(&val);
			if (pairs > 0 && !imap_cur_sp(c)) {
				ok = false;
				break;
			}
			ok = imap_cur_string(c, &name, NULL) && imap_cur_sp(c) &&
			     imap_cur_nstring(c, &val, &is_nil) && ++pairs <= IMAP_ID_PAIRS_MAX;
			if (ok && slice_eq_nocase(buf_slice(&name), "name") && !is_nil) {
				char esc[128];
				imap_log(s, "client-id", "name=%s",
				         log_escape(buf_cstr(&val), esc, sizeof esc));
			}
		}
		ok = ok && imap_cur_list_close(c);
	} else {
		struct slice nil;
		ok = imap_cur_atom(c, &nil) && slice_eq_nocase(nil, "NIL");
	}
	ok = ok && imap_cur_eol(c);
	buf_deinit(&name);
	buf_deinit(&val);
	if (!ok) {
		(void)imap_bad(s, c->error ? c->error : "Syntax: ID (field value ...) or ID NIL");
		return;
	}
	(void)buf_append_str(&s->out, "* ID (\"name\" \"Lightr\" \"vendor\" \"Lightr\")\r\n");
	imap_tagged(s, "OK", NULL, "ID completed");
}

/* ---- ENABLE (RFC 5161) ---- */

void
imap_cmd_enable(struct imap_session *s, struct imap_call *k)
{
	struct imap_cursor *c = k->c;
	char enabled[128] = "";
	size_t n = 0;
	if (imap_cur_at_end(c)) {
		(void)imap_bad(s, "Syntax: ENABLE capability ...");
		return;
	}
	do {
		struct slice cap;
		if (!imap_cur_atom(c, &cap)) {
			(void)imap_bad(s, "Syntax: ENABLE capability ...");
			return;
		}
		const char *name = NULL;
		if (slice_eq_nocase(cap, "CONDSTORE") && !s->condstore) {
			imap_condstore_on(s);
			name = "CONDSTORE";
		} else if (slice_eq_nocase(cap, "QRESYNC") && !s->qresync) {
			imap_condstore_on(s); /* RFC 7162 §3.2.3: QRESYNC implies CONDSTORE */
			s->qresync = true;
			name = "QRESYNC";
		} else if (slice_eq_nocase(cap, "IMAP4rev2") && !s->rev2) {
			s->rev2 = true;
			name = "IMAP4rev2";
		}
		if (name != NULL && n + strlen(name) + 2 < sizeof enabled) {
			n += (size_t)snprintf(enabled + n, sizeof enabled - n, " %s", name);
		}
	} while (imap_cur_skip(c, ' '));
	if (!imap_cur_eol(c)) {
		(void)imap_bad(s, "Syntax: ENABLE capability ...");
		return;
	}
	(void)buf_printf(&s->out, "* ENABLED%s\r\n", enabled);
	imap_tagged(s, "OK", NULL, "Enabled");
}

/* ---- COMPRESS (RFC 4978) ---- */

void
imap_cmd_compress(struct imap_session *s, struct imap_call *k)
{
	struct slice mech;
	if (!imap_cur_atom(k->c, &mech) || !imap_cur_eol(k->c)) {
		(void)imap_bad(s, "Syntax: COMPRESS DEFLATE");
		return;
	}
	if (s->compress_active || s->wants_compress) {
		imap_tagged(s, "NO", "COMPRESSIONACTIVE", "Compression is already active");
		return;
	}
	if (!slice_eq_nocase(mech, "DEFLATE")) {
		(void)imap_bad(s, "Unsupported compression mechanism");
		return;
	}
	imap_tagged(s, "OK", NULL, "DEFLATE active");
	s->wants_compress = true;
}

/* ---- IDLE (RFC 2177) ---- */

void
imap_cmd_idle(struct imap_session *s, struct imap_call *k)
{
	if (!no_args(s, k))
		return;
	/* pending changes first (expunges are allowed in IDLE) */
	if (s->state == IMAP_STATE_SELECTED)
		imap_view_sync(s, true, false);
	(void)buf_append_str(&s->out, "+ idling\r\n");
	snprintf(s->pend_tag, sizeof s->pend_tag, "%s", s->tag);
	s->pending = IMAP_PEND_IDLE;
	imap_reader_line_mode(s->reader);
	if (s->ms->ops->idle_release != NULL)
		s->ms->ops->idle_release(s->ms);
}

void
imap_idle_line(struct imap_session *s, struct slice line)
{
	s->pending = IMAP_PEND_NONE;
	snprintf(s->tag, sizeof s->tag, "%s", s->pend_tag);
	if (s->state == IMAP_STATE_SELECTED)
		imap_view_sync(s, true, false);
	if (!slice_eq_nocase(line, "DONE")) {
		(void)imap_bad(s, "Expected DONE to end IDLE");
		return;
	}
	imap_tagged(s, "OK", NULL, "IDLE terminated");
}
