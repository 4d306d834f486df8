/* SMTP commands: the const command table (STYLE.md B.13 ex. 3) and its check/run functions.
 * The walker refuses unknown verbs and verbs out of state; check_* only looks (it may parse the
 * arguments into the call) and names the refusal; run_* changes the session. AUTH (RFC 4954)
 * with PLAIN and LOGIN is here too, including its continuation lines. */
#include <stdio.h>
#include <string.h>

#include "smtp_private.h"
#include "util/log.h"
#include "util/xalloc.h"

/* One command being executed: the line and what check_* parsed from it. */
struct smtp_call {
	struct smtp_cmd cmd;
	struct smtp_cmd_error err; /* a refusal built by check_* */
	union {
		struct smtp_mail_args mail;
		struct smtp_rcpt_args rcpt;
		struct {
			uint64_t size;
			bool last;
		} bdat;
		struct {
			enum sasl_mech mech;
			struct slice initial; /* len 0 and p NULL: none */
		} auth;
	} u;
};

enum {
	V_NOARG = 1, /* the command takes no argument */
	V_ESMTP = 2, /* only after EHLO */
};

typedef const struct smtp_cmd_error *(*smtp_check_fn)(const struct smtp_server *s,
                                                      struct smtp_call *c);
typedef void (*smtp_run_fn)(struct smtp_server *s, struct smtp_call *c);

struct smtp_verb {
	const char *name;
	unsigned states; /* ST(...) mask where the verb is in sequence */
	unsigned flags;
	smtp_check_fn check; /* NULL: nothing to check */
	smtp_run_fn run;
};

static const struct smtp_cmd_error *
refuse(struct smtp_call *c, int code, const char *enh, const char *text)
{
	c->err = (struct smtp_cmd_error){code, enh, text};
	return &c->err;
}

static void
ok(struct smtp_server *s, const char *enh)
{
	smtp_out(s, 250, enh, "Ok");
}

/* ---- HELO / EHLO (RFC 5321 §4.1.1.1) ---- */

static const struct smtp_cmd_error *
check_helo(const struct smtp_server *s, struct smtp_call *c)
{
	if (!smtp_cmd_helo_is_valid(c->cmd.arg))
		return refuse(c, 501, "5.5.4", "Syntax: EHLO hostname");
	return NULL;
}

static void
greet(struct smtp_server *s, struct smtp_call *c, bool esmtp)
{
	smtp_tx_reset(s); /* EHLO/HELO in a transaction acts as RSET (§4.1.4) */
	memcpy(s->helo, c->cmd.arg.p, c->cmd.arg.len);
	s->helo[c->cmd.arg.len] = '\0';
	s->esmtp = esmtp;
	smtp_enter(s, SMTP_STATE_READY);
}

static void
run_ehlo(struct smtp_server *s, struct smtp_call *c)
{
	greet(s, c, true);
	char first[300], size[40];
	(void)snprintf(first, sizeof first, "%s", smtp_hostname(s));
	(void)snprintf(size, sizeof size, "SIZE %llu", (unsigned long long)s->lim.max_message_size);
	const char *lines[16];
	size_t n = 0;
	lines[n++] = first;
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "CHUNKING";
	lines[n++] = "DSN";
	if (!s->tls)
		lines[n++] = "STARTTLS";
	/* RFC 4954 §4 + RFC 8314: credentials only inside TLS; MX offers no AUTH at all */
	if (s->tls && s->role != SMTP_ROLE_MX)
		lines[n++] = "AUTH PLAIN LOGIN";
	if (s->tls)
		lines[n++] = "REQUIRETLS"; /* RFC 8689 §4.1 */
	/* RFC 2034 §3: no enhanced codes in the EHLO reply */
	(void)smtp_reply_lines(&s->out, 250, NULL, lines, n);
}

static void
run_helo(struct smtp_server *s, struct smtp_call *c)
{
	greet(s, c, false);
	smtp_out(s, 250, NULL, smtp_hostname(s));
}

/* ---- MAIL (RFC 5321 §4.1.1.2) ---- */

/* A rate-limit hook refused without a usable reply. */
static const struct smtp_cmd_error limit_fallback = {451, "4.7.1",
                                                     "Rate limit reached, try again later"};

static bool
is_submission(const struct smtp_server *s)
{
	return s->role != SMTP_ROLE_MX;
}

static const struct smtp_cmd_error *
check_mail(const struct smtp_server *s, struct smtp_call *c)
{
	struct smtp_mail_args *m = &c->u.mail;
	if (is_submission(s) && s->auth_user == NULL)
		return refuse(c, 530, "5.7.0", "Authentication required");
	if (s->lim.max_messages != 0 && s->attempts >= s->lim.max_messages)
		return refuse(c, 421, "4.7.0", "Too many messages in this connection");
	if (smtp_cmd_parse_mail(c->cmd.arg, m, &c->err) < 0)
		return &c->err;
	if (!s->esmtp &&
	    (m->has_size || m->body || m->smtputf8 || m->requiretls || m->ret || m->has_envid))
		return refuse(c, 555, "5.5.4", "MAIL parameters need EHLO");
	if (m->requiretls && !s->tls)
		return refuse(c, 555, "5.5.4", "REQUIRETLS is only offered under TLS");
	if (m->utf8 && !m->smtputf8)
		return refuse(c, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
	if (m->has_size && s->lim.max_message_size && m->size > s->lim.max_message_size)
		return refuse(c, 552, "5.3.4", "Message size exceeds fixed maximum message size");
	if (is_submission(s) && m->null_path)
		return refuse(c, 553, "5.7.1", "Null sender not allowed on submission");
	return NULL;
}

static void
run_mail(struct smtp_server *s, struct smtp_call *c)
{
	struct smtp_mail_args *m = &c->u.mail;
	smtp_tx_reset(s);
	s->tx.arena = arena_new("smtp-tx", 4096);
	s->tx.mail_from = arena_strndup(s->tx.arena, m->path.p, m->path.len);
	if (is_submission(s) && !s->hooks.sender_ok(s->hooks.ctx, s->auth_user, s->tx.mail_from)) {
		char e1[128], e2[300];
		smtp_log(s, "sender-refused", "user=\"%s\" from=<%s>",
		         log_escape(s->auth_user, e1, sizeof e1),
		         log_escape(s->tx.mail_from, e2, sizeof e2));
		smtp_tx_reset(s);
		smtp_out(s, 553, "5.7.1", "Sender address not owned by the authenticated user");
		return;
	}
	if (s->hooks.mail_check != NULL) {
		struct smtp_hook_reply hr = {0};
		if (s->hooks.mail_check(s->hooks.ctx, s->auth_user, s->tx.mail_from, &hr) != 0) {
			char e1[300];
			smtp_log(s, "mail-limited", "from=<%s> code=%d",
			         log_escape(s->tx.mail_from, e1, sizeof e1), hr.code);
			smtp_tx_reset(s);
			smtp_hook_reply(s, &hr, &limit_fallback);
			return;
		}
	}
	s->tx.size_hint = m->has_size ? m->size : 0;
	s->tx.smtputf8 = m->smtputf8;
	s->tx.eightbit = m->body == SMTP_BODY_8BITMIME;
	s->tx.requiretls = m->requiretls;
	s->tx.ret = m->ret == SMTP_RET_FULL ? "FULL" : m->ret == SMTP_RET_HDRS ? "HDRS" : NULL;
	if (m->has_envid)
		s->tx.envid = arena_strdup(s->tx.arena, m->envid);
	smtp_enter(s, SMTP_STATE_MAIL);
	ok(s, "2.1.0");
}

/* ---- RCPT (RFC 5321 §4.1.1.3) ---- */

static const struct smtp_cmd_error *
check_rcpt(const struct smtp_server *s, struct smtp_call *c)
{
	struct smtp_rcpt_args *r = &c->u.rcpt;
	if (smtp_cmd_parse_rcpt(c->cmd.arg, r, &c->err) < 0)
		return &c->err;
	if (!s->esmtp && (r->notify || r->has_orcpt))
		return refuse(c, 555, "5.5.4", "RCPT parameters need EHLO");
	if (r->utf8 && !s->tx.smtputf8)
		return refuse(c, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
	if (s->tx.n_rcpts >= s->lim.max_recipients)
		return refuse(c, 452, "4.5.3", "Too many recipients");
	return NULL;
}

static char *
notify_string(struct arena *a, unsigned n)
{
	if (n == 0)
		return NULL;
	if (n & SMTP_NOTIFY_NEVER)
		return arena_strdup(a, "NEVER");
	char buf[32] = "";
	size_t o = 0;
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{SMTP_NOTIFY_SUCCESS, "SUCCESS"},
	             {SMTP_NOTIFY_FAILURE, "FAILURE"},
	             {SMTP_NOTIFY_DELAY, "DELAY"}};
	for (size_t i = 0; i < 3; i++) {
		if (!(n & names[i].bit))
			continue;
		int w = snprintf(buf + o, sizeof buf - o, "%s%s", o ? "," : "", names[i].name);
		if (w > 0)
			o += (size_t)w;
	}
	return arena_strdup(a, buf);
}

static void
run_rcpt(struct smtp_server *s, struct smtp_call *c)
{
	struct smtp_rcpt_args *r = &c->u.rcpt;
	struct smtp_tx *tx = &s->tx;
	char *addr;
	if (r->postmaster) { /* RFC 5321 §4.5.1: our own postmaster */
		size_t n = strlen(smtp_hostname(s)) + sizeof "postmaster@";
		addr = arena_alloc(tx->arena, n);
		(void)snprintf(addr, n, "postmaster@%s", smtp_hostname(s));
	} else {
		addr = arena_strndup(tx->arena, r->path.p, r->path.len);
	}
	struct smtp_hook_reply hr = {0};
	enum smtp_rcpt_kind kind = s->hooks.rcpt(s->hooks.ctx, addr, tx->size_hint, &hr);
	char esc[300];
	if (kind == SMTP_RCPT_REJECT) {
		static const struct smtp_cmd_error fb = {550, "5.1.1",
		                                         "Recipient address rejected"};
		smtp_log(s, "rcpt-refused", "to=<%s> code=%d", log_escape(addr, esc, sizeof esc),
		         hr.code);
		smtp_hook_reply(s, &hr, &fb);
		return;
	}
	if (kind == SMTP_RCPT_REMOTE && s->role == SMTP_ROLE_MX) {
		smtp_log(s, "relay-denied", "to=<%s>", log_escape(addr, esc, sizeof esc));
		smtp_out(s, 550, "5.7.1", "Relay access denied");
		return;
	}
	if (s->hooks.rcpt_check != NULL) {
		hr = (struct smtp_hook_reply){0};
		if (s->hooks.rcpt_check(s->hooks.ctx, s->auth_user, addr, tx->n_rcpts + 1, &hr) !=
		    0) {
			smtp_log(s, "rcpt-limited", "to=<%s> code=%d",
			         log_escape(addr, esc, sizeof esc), hr.code);
			smtp_hook_reply(s, &hr, &limit_fallback);
			return;
		}
	}
	if (tx->n_rcpts == tx->cap_rcpts) {
		size_t cap = tx->cap_rcpts ? 2 * tx->cap_rcpts : 8;
		struct smtp_rcpt *n = arena_alloc(tx->arena, cap * sizeof *n);
		if (tx->n_rcpts)
			memcpy(n, tx->rcpts, tx->n_rcpts * sizeof *n);
		tx->rcpts = n;
		tx->cap_rcpts = cap;
	}
	tx->rcpts[tx->n_rcpts++] = (struct smtp_rcpt){
	    .addr = addr,
	    .notify = notify_string(tx->arena, r->notify),
	    .orcpt = r->has_orcpt ? arena_strdup(tx->arena, r->orcpt) : NULL,
	    .kind = kind,
	};
	smtp_enter(s, SMTP_STATE_RCPT);
	ok(s, "2.1.5");
}

/* ---- DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030 §2) ---- */

static void
run_data(struct smtp_server *s, struct smtp_call *c)
{
	smtp_data_begin(&s->data, s->lim.max_message_size);
	smtp_enter(s, SMTP_STATE_DATA);
	smtp_out(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static const struct smtp_cmd_error *
check_bdat(const struct smtp_server *s, struct smtp_call *c)
{
	if (smtp_cmd_parse_bdat(c->cmd.arg, &c->u.bdat.size, &c->u.bdat.last) < 0)
		return refuse(c, 501, "5.5.4", "Syntax: BDAT size [LAST]");
	return NULL;
}

/* The chunk octets follow the command line whatever happens (§2: "the receiver-SMTP MUST accept
 * and discard the associated message data before sending the appropriate 5XX or 4XX code"), so
 * the sequence checks are made here and their reply is held until the chunk was read. */
static void
run_bdat(struct smtp_server *s, struct smtp_call *c)
{
	s->bdat_size = s->bdat_left = c->u.bdat.size;
	s->bdat_last = c->u.bdat.last;
	s->bdat_bad = true;
	if (!s->esmtp)
		s->bdat_err = (struct smtp_cmd_error){503, "5.5.1", "Send EHLO first"};
	else if (s->state == SMTP_STATE_GREETED || s->state == SMTP_STATE_READY)
		s->bdat_err = (struct smtp_cmd_error){503, "5.5.1", "Need MAIL command"};
	else if (s->state == SMTP_STATE_MAIL)
		s->bdat_err = (struct smtp_cmd_error){503, "5.5.1", "Need RCPT command"};
	else
		s->bdat_bad = false;
	if (!s->bdat_bad && !s->tx.bdat) {
		s->tx.bdat = true;
		smtp_data_begin(&s->data, s->lim.max_message_size);
	}
	s->bdat_return = s->state;
	smtp_enter(s, SMTP_STATE_BDAT);
	if (s->bdat_left == 0)
		smtp_bdat_end(s);
}

/* ---- RSET, NOOP, QUIT, VRFY, HELP (§4.1.1.5-10) ---- */

static void
run_rset(struct smtp_server *s, struct smtp_call *c)
{
	smtp_tx_reset(s);
	smtp_enter(s, smtp_idle_state(s));
	ok(s, "2.0.0");
}

static void
run_noop(struct smtp_server *s, struct smtp_call *c)
{
	ok(s, "2.0.0");
}

static void
run_quit(struct smtp_server *s, struct smtp_call *c)
{
	smtp_outf(s, 221, "2.0.0", "%s Bye", smtp_hostname(s));
	s->done = true;
	smtp_enter(s, SMTP_STATE_DONE);
}

static const struct smtp_cmd_error *
check_vrfy(const struct smtp_server *s, struct smtp_call *c)
{
	if (c->cmd.arg.len == 0)
		return refuse(c, 501, "5.5.4", "Syntax: VRFY address");
	return NULL;
}

static void
run_vrfy(struct smtp_server *s, struct smtp_call *c)
{
	/* §3.5.3: we do not confirm addresses (no directory harvesting) */
	smtp_out(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
run_help(struct smtp_server *s, struct smtp_call *c)
{
	smtp_out(s, 214, "2.0.0", "Lightr SMTP: see RFC 5321");
}

static void
run_not_implemented(struct smtp_server *s, struct smtp_call *c)
{
	static const struct smtp_cmd_error e = {502, "5.5.1", "Command not implemented"};
	smtp_reject(s, &e);
}

/* An HTTP or proxy client talking to the SMTP port (cross-protocol attacks): hang up. */
static void
run_non_smtp(struct smtp_server *s, struct smtp_call *c)
{
	smtp_log(s, "non-smtp-command", "client=%s", s->info.client_ip ? s->info.client_ip : "-");
	smtp_outf(s, 421, "4.7.0", "%s Non-SMTP command, closing connection", smtp_hostname(s));
}

/* ---- STARTTLS (RFC 3207) ---- */

static const struct smtp_cmd_error *
check_starttls(const struct smtp_server *s, struct smtp_call *c)
{
	if (s->tls)
		return refuse(c, 503, "5.5.1", "TLS already active");
	return NULL;
}

static void
run_starttls(struct smtp_server *s, struct smtp_call *c)
{
	smtp_out(s, 220, "2.0.0", "Ready to start TLS");
	smtp_tx_reset(s);
	smtp_cmd_parser_reset(s->parser); /* drop any pipelined plaintext (CVE-2011-0411) */
	s->wants_tls = true;
	smtp_enter(s, SMTP_STATE_TLS);
}

/* ---- AUTH (RFC 4954) ---- */

static const struct smtp_cmd_error *
check_auth(const struct smtp_server *s, struct smtp_call *c)
{
	if (s->role == SMTP_ROLE_MX)
		return refuse(c, 502, "5.5.1", "AUTH not supported on this service");
	if (!s->tls)
		return refuse(c, 538, "5.7.11",
		              "Encryption required for requested authentication mechanism");
	if (s->auth_user)
		return refuse(c, 503, "5.5.1", "Already authenticated");
	struct slice mech, initial = slice_cut(c->cmd.arg, ' ', &mech);
	if (mech.len == 0)
		return refuse(c, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
	c->u.auth.mech = sasl_mech_parse(mech);
	if (c->u.auth.mech == SASL_MECH_UNKNOWN)
		return refuse(c, 504, "5.5.4", "Unrecognized authentication type");
	c->u.auth.initial = initial.p ? slice_trim(initial) : (struct slice){NULL, 0};
	return NULL;
}

static const char login_user_prompt[] = "VXNlcm5hbWU6"; /* "Username:" */
static const char login_pass_prompt[] = "UGFzc3dvcmQ6"; /* "Password:" */

void
smtp_auth_abort(struct smtp_server *s)
{
	sasl_creds_wipe(&s->creds);
	smtp_cmd_parser_set_auth(s->parser, false);
	s->auth_mech = SASL_MECH_UNKNOWN;
	s->auth_step = 0;
	if (s->state == SMTP_STATE_AUTH)
		smtp_enter(s, SMTP_STATE_READY);
}

static const char *
mech_name(enum sasl_mech m)
{
	return m == SASL_MECH_PLAIN ? "PLAIN" : "LOGIN";
}

static void
auth_failed(struct smtp_server *s, const char *why)
{
	char esc[300];
	s->auth_failures++;
	s->delay_ms = s->auth_failures * s->lim.auth_fail_delay_ms;
	smtp_log(s, "auth-failed", "mech=%s user=\"%s\" reason=%s failures=%u",
	         mech_name(s->auth_mech), log_escape(s->creds.user, esc, sizeof esc), why,
	         s->auth_failures);
	smtp_auth_abort(s);
	smtp_out(s, 535, "5.7.8", "Authentication credentials invalid");
	if (s->lim.max_auth_failures != 0 && s->auth_failures >= s->lim.max_auth_failures)
		smtp_outf(s, 421, "4.7.0", "%s Too many authentication failures", smtp_hostname(s));
}

/* Credentials are complete: ask the hook. */
static void
auth_check(struct smtp_server *s)
{
	int r = s->hooks.auth(s->hooks.ctx, s->creds.user, s->creds.pass, s->creds.pass_len);
	char esc[300];
	if (r > 0) {
		s->auth_user = xstrdup(s->creds.user);
		smtp_log(s, "auth", "mech=%s user=\"%s\"", mech_name(s->auth_mech),
		         log_escape(s->auth_user, esc, sizeof esc));
		smtp_auth_abort(s);
		smtp_out(s, 235, "2.7.0", "Authentication successful");
	} else if (r == 0) {
		auth_failed(s, "credentials");
	} else {
		smtp_log(s, "auth-tempfail", "mech=%s", mech_name(s->auth_mech));
		smtp_auth_abort(s);
		smtp_out(s, 454, "4.7.0", "Temporary authentication failure");
	}
}

/* One client response (initial response or continuation line). */
static void
auth_response(struct smtp_server *s, struct slice resp)
{
	enum sasl_result r;
	if (s->auth_mech == SASL_MECH_PLAIN)
		r = sasl_plain_decode(resp, &s->creds);
	else if (s->auth_step == 0)
		r = sasl_login_user(resp, &s->creds);
	else
		r = sasl_login_pass(resp, &s->creds);
	switch (r) {
	case SASL_OK:
		break;
	case SASL_CANCEL:
		smtp_auth_abort(s);
		smtp_out(s, 501, "5.0.0", "Authentication cancelled");
		return;
	case SASL_BAD_BASE64: {
		static const struct smtp_cmd_error e = {501, "5.5.2", "Invalid base64 data"};
		smtp_auth_abort(s);
		smtp_reject(s, &e);
		return;
	}
	case SASL_BAD_MESSAGE:
		auth_failed(s, "malformed");
		return;
	case SASL_BAD_AUTHZID:
		auth_failed(s, "authzid");
		return;
	}
	if (s->auth_mech == SASL_MECH_LOGIN && s->auth_step == 0) {
		s->auth_step = 1;
		smtp_enter(s, SMTP_STATE_AUTH);
		smtp_cmd_parser_set_auth(s->parser, true);
		smtp_out(s, 334, NULL, login_pass_prompt);
		return;
	}
	auth_check(s);
}

static void
run_auth(struct smtp_server *s, struct smtp_call *c)
{
	sasl_creds_wipe(&s->creds);
	s->auth_mech = c->u.auth.mech;
	s->auth_step = 0;
	if (c->u.auth.initial.p != NULL) {
		auth_response(s, c->u.auth.initial);
		return;
	}
	smtp_enter(s, SMTP_STATE_AUTH);
	smtp_cmd_parser_set_auth(s->parser, true);
	smtp_out(s, 334, NULL, s->auth_mech == SASL_MECH_PLAIN ? "" : login_user_prompt);
}

void
smtp_auth_line(struct smtp_server *s, const struct smtp_cmd *cmd)
{
	auth_response(s, cmd->line);
}

/* ---- the table and its walker ---- */

#define ST_TX_OR_IDLE (ST(GREETED) | ST(READY) | ST(MAIL) | ST(RCPT))

/* clang-format off */
static const struct smtp_verb verbs[] = {
	/* verb       allowed states        flags              check           run */
	{"EHLO",     ST_COMMANDS,          0,                 check_helo,     run_ehlo},
	{"HELO",     ST_COMMANDS,          0,                 check_helo,     run_helo},
	{"MAIL",     ST(READY),            0,                 check_mail,     run_mail},
	{"RCPT",     ST(MAIL) | ST(RCPT),  0,                 check_rcpt,     run_rcpt},
	{"DATA",     ST(RCPT),             V_NOARG,           NULL,           run_data},
	{"BDAT",     ST_COMMANDS,          0,                 check_bdat,     run_bdat},
	{"RSET",     ST_COMMANDS,          V_NOARG,           NULL,           run_rset},
	{"NOOP",     ST_COMMANDS,          0,                 NULL,           run_noop},
	{"QUIT",     ST_COMMANDS,          V_NOARG,           NULL,           run_quit},
	{"VRFY",     ST_TX_OR_IDLE,        0,                 check_vrfy,     run_vrfy},
	{"HELP",     ST_TX_OR_IDLE,        0,                 NULL,           run_help},
	{"STARTTLS", ST(READY),            V_NOARG | V_ESMTP, check_starttls, run_starttls},
	{"AUTH",     ST(READY),            V_ESMTP,           check_auth,     run_auth},
	{"EXPN",     ST_COMMANDS,          0,                 NULL,           run_not_implemented},
	{"TURN",     ST_COMMANDS,          0,                 NULL,           run_not_implemented},
	{"ETRN",     ST_COMMANDS,          0,                 NULL,           run_not_implemented},
	{"GET",      ST_COMMANDS,          0,                 NULL,           run_non_smtp},
	{"POST",     ST_COMMANDS,          0,                 NULL,           run_non_smtp},
	{"HEAD",     ST_COMMANDS,          0,                 NULL,           run_non_smtp},
	{"PUT",      ST_COMMANDS,          0,                 NULL,           run_non_smtp},
	{"CONNECT",  ST_COMMANDS,          0,                 NULL,           run_non_smtp},
};
/* clang-format on */

static const char *
out_of_state_text(const struct smtp_verb *v, enum smtp_state st)
{
	bool is_mail = strcmp(v->name, "MAIL") == 0;
	switch (st) {
	case SMTP_STATE_GREETED:
		return "Send HELO/EHLO first";
	case SMTP_STATE_READY:
		return "Need MAIL command";
	case SMTP_STATE_MAIL:
		if (is_mail)
			return "Nested MAIL command";
		return strcmp(v->name, "DATA") == 0 ? "Need RCPT command"
		                                    : "Not allowed during a mail transaction";
	case SMTP_STATE_RCPT:
		return is_mail ? "Nested MAIL command" : "Not allowed during a mail transaction";
	case SMTP_STATE_CHUNKING:
		return "Only BDAT, RSET, NOOP or QUIT between BDAT chunks";
	default:
		return "Bad sequence of commands";
	}
}

void
smtp_dispatch(struct smtp_server *s, const struct smtp_cmd *cmd)
{
	const struct smtp_verb *v = NULL;
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (slice_eq_nocase(cmd->verb, verbs[i].name)) {
			v = &verbs[i];
			break;
		}
	struct smtp_call c = {.cmd = *cmd};
	const struct smtp_cmd_error *e = NULL;
	if (v == NULL) {
		char esc[40];
		char verb[16];
		size_t n = cmd->verb.len < sizeof verb - 1 ? cmd->verb.len : sizeof verb - 1;
		memcpy(verb, cmd->verb.p, n);
		verb[n] = '\0';
		smtp_log(s, "unknown-command", "verb=\"%s\"", log_escape(verb, esc, sizeof esc));
		e = refuse(&c, 500, "5.5.1", "Command unrecognized");
	} else if (!(v->states & ST_BIT(s->state))) {
		e = refuse(&c, 503, "5.5.1", out_of_state_text(v, s->state));
	} else if ((v->flags & V_ESMTP) && !s->esmtp) {
		e = refuse(&c, 503, "5.5.1", "Send EHLO first");
	} else if ((v->flags & V_NOARG) && cmd->arg.len > 0) {
		e = refuse(&c, 501, "5.5.4", "Syntax error: no arguments allowed");
	} else if (v->check) {
		e = v->check(s, &c);
	}
	if (e != NULL) {
		smtp_reject(s, e);
		return;
	}
	v->run(s, &c);
}
