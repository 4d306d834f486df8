/* Outbound SMTP client state machine; see client.h. */
#include "client.h"

#include <stdio.h>
#include <string.h>

#include "smtp/reply_parser.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strconv.h"
#include "util/xalloc.h"

enum cstate {
	ST_GREETING,
	ST_EHLO,
	ST_HELO,
	ST_STARTTLS,
	ST_TLS, /* waiting for the driver's handshake */
	ST_AUTH,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_BODY,        /* the driver streams the message */
	ST_DOT,         /* final reply after the end of data */
	ST_DOT_DISCARD, /* 354 without accepted recipients: "." sent, reply ignored */
	ST_RSET,
	ST_MESSAGE, /* idle between transactions */
	ST_CLOSED,
};

static const char *const state_names[] = {
    [ST_GREETING] = "greeting", [ST_EHLO] = "ehlo",       [ST_HELO] = "helo",
    [ST_STARTTLS] = "starttls", [ST_TLS] = "tls",         [ST_AUTH] = "auth",
    [ST_MAIL] = "mail",         [ST_RCPT] = "rcpt",       [ST_DATA] = "data",
    [ST_BODY] = "body",         [ST_DOT] = "dot",         [ST_DOT_DISCARD] = "dot-discard",
    [ST_RSET] = "rset",         [ST_MESSAGE] = "message", [ST_CLOSED] = "closed",
};

struct rcpt_state {
	struct smtp_client_result res;
	bool accepted; /* 2xx at RCPT, waiting for the final reply */
};

struct smtp_client {
	enum cstate state;
	char *helo_name, *auth_user, *auth_pass;
	bool tls_available, require_tls, auth_allow_plaintext;

	struct smtp_reply_parser *parser;
	struct buf out;

	unsigned ext;
	uint64_t server_size;
	bool tls_active;
	bool tls_tried; /* STARTTLS was sent (refused or not): never again on this connection */
	bool authed;

	/* the current transaction */
	const struct smtp_client_msg *msg;
	struct rcpt_state *rcpts;
	size_t *sent;         /* indexes of the recipients sent with RCPT, in order */
	size_t nsent;         /* RCPT commands sent (or to be matched, when pipelining) */
	size_t nreplied;      /* RCPT replies seen */
	size_t naccepted;     /* RCPT 2xx */
	bool pipelined;       /* MAIL..DATA went as one group */
	bool mail_failed;     /* MAIL was refused; the remaining pipelined replies are ignored */
	bool body_line_start; /* the body so far ends at a line start (or is empty) */
	bool body_cr;         /* the body so far ends with CR */
	bool body_crlf;       /* the body so far ends with CRLF */
	bool body_empty;
};

const char *
smtp_client_stage_name(enum smtp_client_stage s)
{
	switch (s) {
	case SMTP_CLIENT_STAGE_CONNECT:
		return "connect";
	case SMTP_CLIENT_STAGE_GREETING:
		return "greeting";
	case SMTP_CLIENT_STAGE_EHLO:
		return "ehlo";
	case SMTP_CLIENT_STAGE_STARTTLS:
		return "starttls";
	case SMTP_CLIENT_STAGE_AUTH:
		return "auth";
	case SMTP_CLIENT_STAGE_MAIL:
		return "mail";
	case SMTP_CLIENT_STAGE_RCPT:
		return "rcpt";
	case SMTP_CLIENT_STAGE_DATA:
		return "data";
	case SMTP_CLIENT_STAGE_BODY:
		return "body";
	}
	return "unknown";
}

const char *
smtp_client_status_name(enum smtp_client_status s)
{
	switch (s) {
	case SMTP_CLIENT_PENDING:
		return "pending";
	case SMTP_CLIENT_DELIVERED:
		return "delivered";
	case SMTP_CLIENT_TEMPFAIL:
		return "tempfail";
	case SMTP_CLIENT_PERMFAIL:
		return "permfail";
	}
	return "unknown";
}

static enum smtp_client_stage
state_stage(enum cstate st)
{
	switch (st) {
	case ST_GREETING:
		return SMTP_CLIENT_STAGE_GREETING;
	case ST_EHLO:
	case ST_HELO:
		return SMTP_CLIENT_STAGE_EHLO;
	case ST_STARTTLS:
	case ST_TLS:
		return SMTP_CLIENT_STAGE_STARTTLS;
	case ST_AUTH:
		return SMTP_CLIENT_STAGE_AUTH;
	case ST_MAIL:
	case ST_MESSAGE:
	case ST_CLOSED:
		return SMTP_CLIENT_STAGE_MAIL;
	case ST_RCPT:
		return SMTP_CLIENT_STAGE_RCPT;
	case ST_DATA:
	case ST_RSET:
		return SMTP_CLIENT_STAGE_DATA;
	case ST_BODY:
	case ST_DOT:
	case ST_DOT_DISCARD:
		return SMTP_CLIENT_STAGE_BODY;
	}
	return SMTP_CLIENT_STAGE_MAIL;
}

static void
enter(struct smtp_client *c, enum cstate st)
{
	log_msg(LOG_DEBUG, "smtp-client state %s -> %s", state_names[c->state], state_names[st]);
	c->state = st;
}

/* ---- results ---- */

/* Copies src (n bytes) into dst (size cap, NUL-terminated) as printable ASCII; returns the new
 * length. */
static size_t
text_append(char *dst, size_t cap, size_t at, const char *src, size_t n)
{
	for (size_t i = 0; i < n && at + 1 < cap; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[at++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	dst[at] = '\0';
	return at;
}

static void
result_set(struct smtp_client_result *r, enum smtp_client_status st, enum smtp_client_stage stage,
           int code, const char *enh, const char *text)
{
	r->status = st;
	r->stage = stage;
	r->code = code;
	size_t el = strlen(enh);
	if (el >= sizeof(r->enhanced))
		el = sizeof(r->enhanced) - 1;
	memcpy(r->enhanced, enh, el);
	r->enhanced[el] = '\0';
	text_append(r->text, sizeof(r->text), 0, text, strlen(text));
}

/* Classifies a reply into a result: 2xx delivered/ok, 5xx permanent, anything else temporary.
 * force_temp turns 5xx into a temporary failure (AUTH). */
static void
result_from_reply(struct smtp_client_result *r, const struct smtp_reply *rp,
                  enum smtp_client_stage stage, bool force_temp)
{
	int cls = rp->code / 100;
	enum smtp_client_status st = cls == 2   ? SMTP_CLIENT_DELIVERED
	                             : cls == 5 ? SMTP_CLIENT_PERMFAIL
	                                        : SMTP_CLIENT_TEMPFAIL;
	if (force_temp && st == SMTP_CLIENT_PERMFAIL)
		st = SMTP_CLIENT_TEMPFAIL;
	char enh[SMTP_REPLY_ENH_MAX];
	if (cls == 3 || (cls == 2 && st != SMTP_CLIENT_DELIVERED))
		snprintf(enh, sizeof(enh), "4.5.0"); /* unexpected code where a verdict was due */
	else if (rp->enhanced[0] != '\0')
		snprintf(enh, sizeof(enh), "%s", rp->enhanced);
	else
		snprintf(enh, sizeof(enh), "%d.0.0", cls);
	if (st == SMTP_CLIENT_TEMPFAIL)
		enh[0] = '4';
	r->status = st;
	r->stage = stage;
	r->code = rp->code;
	memcpy(r->enhanced, enh,
	       sizeof(r->enhanced) < sizeof(enh) ? sizeof(r->enhanced) : sizeof(enh));
	r->enhanced[sizeof(r->enhanced) - 1] = '\0';
	char head[32];
	int hn = rp->enhanced[0] ? snprintf(head, sizeof(head), "%d %s ", rp->code, rp->enhanced)
	                         : snprintf(head, sizeof(head), "%d ", rp->code);
	size_t at = text_append(r->text, sizeof(r->text), 0, head, (size_t)hn);
	for (size_t i = 0; i < rp->nlines; i++) {
		if (i > 0)
			at = text_append(r->text, sizeof(r->text), at, "; ", 2);
		at = text_append(r->text, sizeof(r->text), at, rp->lines[i].p, rp->lines[i].len);
	}
	while (at > 0 && r->text[at - 1] == ' ')
		r->text[--at] = '\0';
}

static size_t
nrcpts(const struct smtp_client *c)
{
	return c->msg ? c->msg->nrcpts : 0;
}

/* Every recipient still pending (including those accepted at RCPT) gets this result. */
static void
fail_pending(struct smtp_client *c, enum smtp_client_status st, enum smtp_client_stage stage,
             const char *enh, const char *text)
{
	for (size_t i = 0; i < nrcpts(c); i++)
		if (c->rcpts[i].res.status == SMTP_CLIENT_PENDING)
			result_set(&c->rcpts[i].res, st, stage, 0, enh, text);
}

static void
fail_pending_reply(struct smtp_client *c, const struct smtp_reply *rp, enum smtp_client_stage stage,
                   bool force_temp)
{
	struct smtp_client_result r;
	result_from_reply(&r, rp, stage, force_temp);
	if (r.status == SMTP_CLIENT_DELIVERED) { /* a 2xx where failure was meant: protocol error */
		r.status = SMTP_CLIENT_TEMPFAIL;
		memcpy(r.enhanced, "4.5.0", 6);
	}
	for (size_t i = 0; i < nrcpts(c); i++)
		if (c->rcpts[i].res.status == SMTP_CLIENT_PENDING)
			c->rcpts[i].res = r;
}

/* ---- output ---- */

static void
out_cmd(struct smtp_client *c, const char *s)
{
	buf_append_str(&c->out, s);
	buf_append_str(&c->out, "\r\n");
}

/* RFC 3461 §4 xtext. */
static void
out_xtext(struct smtp_client *c, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= '!' && *p <= '~' && *p != '+' && *p != '=') {
			buf_append_byte(&c->out, *p);
		} else {
			char h[3] = {'+', hex[*p >> 4], hex[*p & 15]};
			buf_append(&c->out, h, 3);
		}
	}
}

/* QUIT and close. */
static void
close_with_quit(struct smtp_client *c)
{
	out_cmd(c, "QUIT");
	enter(c, ST_CLOSED);
}

static void
protocol_error(struct smtp_client *c, const char *why)
{
	char text[SMTP_CLIENT_TEXT_MAX];
	snprintf(text, sizeof(text), "protocol error: %s", why);
	fail_pending(c, SMTP_CLIENT_TEMPFAIL, state_stage(c->state), "4.5.0", text);
	close_with_quit(c);
}

/* ---- session setup ---- */

static void
send_ehlo(struct smtp_client *c, bool helo)
{
	buf_append_str(&c->out, helo ? "HELO " : "EHLO ");
	out_cmd(c, c->helo_name);
	enter(c, helo ? ST_HELO : ST_EHLO);
}

static void
parse_extensions(struct smtp_client *c, const struct smtp_reply *rp)
{
	c->ext = 0;
	c->server_size = 0;
	for (size_t i = 1; i < rp->nlines; i++) {
		struct slice args, kw;
		args = slice_cut(slice_trim(rp->lines[i]), ' ', &kw);
		if (slice_eq_nocase(kw, "PIPELINING"))
			c->ext |= SMTP_CLIENT_EXT_PIPELINING;
		else if (slice_eq_nocase(kw, "SIZE")) {
			uint64_t v;
			c->ext |= SMTP_CLIENT_EXT_SIZE;
			if (args.len > 0 && strconv_u64(slice_trim(args), UINT64_MAX, &v) == 0)
				c->server_size = v;
		} else if (slice_eq_nocase(kw, "8BITMIME"))
			c->ext |= SMTP_CLIENT_EXT_8BITMIME;
		else if (slice_eq_nocase(kw, "SMTPUTF8"))
			c->ext |= SMTP_CLIENT_EXT_SMTPUTF8;
		else if (slice_eq_nocase(kw, "STARTTLS"))
			c->ext |= SMTP_CLIENT_EXT_STARTTLS;
		else if (slice_eq_nocase(kw, "DSN"))
			c->ext |= SMTP_CLIENT_EXT_DSN;
		else if (slice_eq_nocase(kw, "ENHANCEDSTATUSCODES"))
			c->ext |= SMTP_CLIENT_EXT_ENHANCEDSTATUSCODES;
		else if (slice_eq_nocase(kw, "REQUIRETLS"))
			c->ext |= SMTP_CLIENT_EXT_REQUIRETLS;
		else if (slice_eq_nocase(kw, "CHUNKING"))
			c->ext |= SMTP_CLIENT_EXT_CHUNKING;
		else if (slice_eq_nocase(kw, "AUTH")) {
			while (args.len > 0) {
				struct slice mech;
				args = slice_cut(slice_trim(args), ' ', &mech);
				if (slice_eq_nocase(mech, "PLAIN"))
					c->ext |= SMTP_CLIENT_EXT_AUTH_PLAIN;
			}
		}
	}
}

static void start_transaction(struct smtp_client *c);

static void
send_auth(struct smtp_client *c)
{
	struct buf raw;
	buf_init(&raw, 0);
	buf_append_byte(&raw, '\0');
	buf_append_str(&raw, c->auth_user);
	buf_append_byte(&raw, '\0');
	buf_append_str(&raw, c->auth_pass ? c->auth_pass : "");
	buf_append_str(&c->out, "AUTH PLAIN ");
	base64_encode(raw.data, raw.len, &c->out);
	buf_append_str(&c->out, "\r\n");
	memset(raw.data, 0, raw.len);
	buf_deinit(&raw);
	enter(c, ST_AUTH);
}

/* After a successful EHLO/HELO: STARTTLS, AUTH or the transaction. */
static void
session_ready(struct smtp_client *c)
{
	if (!c->tls_active && !c->tls_tried && c->tls_available &&
	    (c->ext & SMTP_CLIENT_EXT_STARTTLS)) {
		c->tls_tried = true;
		out_cmd(c, "STARTTLS");
		enter(c, ST_STARTTLS);
		return;
	}
	if (!c->tls_active && c->require_tls) {
		fail_pending(c, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_STARTTLS, "4.7.10",
		             c->tls_available ? "TLS required but not available from the server"
		                              : "TLS required but not configured");
		close_with_quit(c);
		return;
	}
	if (c->auth_user != NULL && !c->authed) {
		if (!c->tls_active && !c->auth_allow_plaintext) {
			fail_pending(c, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_AUTH, "4.7.0",
			             "AUTH not attempted without TLS");
			close_with_quit(c);
			return;
		}
		if (!(c->ext & SMTP_CLIENT_EXT_AUTH_PLAIN)) {
			fail_pending(c, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_AUTH, "4.7.0",
			             "server does not offer AUTH PLAIN");
			close_with_quit(c);
			return;
		}
		send_auth(c);
		return;
	}
	start_transaction(c);
}

/* ---- the transaction ---- */

static bool
path_is_safe(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
		if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	return n + 2 <= SMTP_PATH_MAX;
}

static void
out_mail(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->msg;
	buf_append_str(&c->out, "MAIL FROM:<");
	buf_append_str(&c->out, m->mail_from);
	buf_append_str(&c->out, ">");
	if ((c->ext & SMTP_CLIENT_EXT_SIZE) && m->size > 0)
		buf_printf(&c->out, " SIZE=%llu", (unsigned long long)m->size);
	if (m->eightbit)
		buf_append_str(&c->out, " BODY=8BITMIME");
	if (m->smtputf8)
		buf_append_str(&c->out, " SMTPUTF8");
	if (m->requiretls)
		buf_append_str(&c->out, " REQUIRETLS");
	if (c->ext & SMTP_CLIENT_EXT_DSN) {
		if (m->ret == SMTP_RET_FULL)
			buf_append_str(&c->out, " RET=FULL");
		else if (m->ret == SMTP_RET_HDRS)
			buf_append_str(&c->out, " RET=HDRS");
		if (m->envid != NULL && m->envid[0] != '\0' && strlen(m->envid) <= SMTP_ENVID_MAX) {
			buf_append_str(&c->out, " ENVID=");
			out_xtext(c, m->envid);
		}
	}
	buf_append_str(&c->out, "\r\n");
}

static void
out_rcpt(struct smtp_client *c, size_t i)
{
	const struct smtp_client_rcpt *r = &c->msg->rcpts[i];
	buf_append_str(&c->out, "RCPT TO:<");
	buf_append_str(&c->out, r->addr);
	buf_append_str(&c->out, ">");
	if (c->ext & SMTP_CLIENT_EXT_DSN) {
		if (r->notify & SMTP_NOTIFY_NEVER) {
			buf_append_str(&c->out, " NOTIFY=NEVER");
		} else if (r->notify != 0) {
			const char *sep = " NOTIFY=";
			static const struct {
				unsigned flag;
				const char *name;
			} flags[] = {{SMTP_NOTIFY_SUCCESS, "SUCCESS"},
			             {SMTP_NOTIFY_FAILURE, "FAILURE"},
			             {SMTP_NOTIFY_DELAY, "DELAY"}};
			for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
				if (r->notify & flags[k].flag) {
					buf_append_str(&c->out, sep);
					buf_append_str(&c->out, flags[k].name);
					sep = ",";
				}
			}
		}
		const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
		if (semi != NULL && semi != r->orcpt && semi[1] != '\0' &&
		    strlen(r->orcpt) <= SMTP_ORCPT_MAX) {
			buf_append_str(&c->out, " ORCPT=");
			buf_append(&c->out, r->orcpt, (size_t)(semi - r->orcpt) + 1);
			out_xtext(c, semi + 1);
		}
	}
	buf_append_str(&c->out, "\r\n");
}

/* A whole-message local refusal (no downgrade): every recipient fails, nothing is sent. */
static bool
refuse_locally(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->msg;
	const char *enh = NULL, *why = NULL;
	if (m->requiretls && !(c->tls_active && (c->ext & SMTP_CLIENT_EXT_REQUIRETLS))) {
		enh = "5.7.30";
		why = "REQUIRETLS support required but not offered under TLS";
	} else if (m->smtputf8 && !(c->ext & SMTP_CLIENT_EXT_SMTPUTF8)) {
		enh = "5.6.7";
		why = "message needs SMTPUTF8, which the server does not support";
	} else if (m->eightbit && !(c->ext & SMTP_CLIENT_EXT_8BITMIME)) {
		enh = "5.6.3";
		why = "message needs 8BITMIME, which the server does not support";
	} else if ((c->ext & SMTP_CLIENT_EXT_SIZE) && c->server_size > 0 &&
	           m->size > c->server_size) {
		enh = "5.3.4";
		why = "message larger than the server's SIZE limit";
	} else if (!(m->mail_from[0] == '\0' || path_is_safe(m->mail_from))) {
		enh = "5.1.7";
		why = "malformed sender address";
	}
	if (enh == NULL)
		return false;
	fail_pending(c, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_MAIL, enh, why);
	return true;
}

static void
start_transaction(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->msg;
	c->nsent = c->nreplied = c->naccepted = 0;
	c->mail_failed = false;
	c->pipelined = false;
	if (m == NULL || m->nrcpts == 0 || refuse_locally(c)) {
		enter(c, ST_MESSAGE);
		return;
	}
	for (size_t i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].addr == NULL || m->rcpts[i].addr[0] == '\0' ||
		    !path_is_safe(m->rcpts[i].addr))
			result_set(&c->rcpts[i].res, SMTP_CLIENT_PERMFAIL, SMTP_CLIENT_STAGE_RCPT,
			           0, "5.1.3", "malformed recipient address");
		else
			c->sent[c->nsent++] = i;
	}
	if (c->nsent == 0) {
		enter(c, ST_MESSAGE);
		return;
	}
	out_mail(c);
	if (c->ext & SMTP_CLIENT_EXT_PIPELINING) {
		c->pipelined = true;
		for (size_t k = 0; k < c->nsent; k++)
			out_rcpt(c, c->sent[k]);
		out_cmd(c, "DATA");
	}
	enter(c, ST_MAIL);
}

/* The transaction (possibly) left state on the server: RSET before the next one. */
static void
send_rset(struct smtp_client *c)
{
	out_cmd(c, "RSET");
	enter(c, ST_RSET);
}

static void
rcpts_done(struct smtp_client *c)
{
	if (c->pipelined) {
		enter(c, ST_DATA); /* DATA was sent with the group */
		return;
	}
	if (c->naccepted > 0) {
		out_cmd(c, "DATA");
		enter(c, ST_DATA);
	} else {
		send_rset(c);
	}
}

static void
on_mail(struct smtp_client *c, const struct smtp_reply *rp)
{
	if (rp->code / 100 != 2) {
		fail_pending_reply(c, rp, SMTP_CLIENT_STAGE_MAIL, false);
		c->mail_failed = true;
		if (c->pipelined) {
			enter(c, ST_RCPT); /* the RCPT and DATA replies follow */
		} else {
			enter(c, ST_MESSAGE);
		}
		return;
	}
	if (!c->pipelined)
		out_rcpt(c, c->sent[0]);
	enter(c, ST_RCPT);
}

static void
on_rcpt(struct smtp_client *c, const struct smtp_reply *rp)
{
	struct rcpt_state *r = &c->rcpts[c->sent[c->nreplied]];
	c->nreplied++;
	if (!c->mail_failed) {
		if (rp->code / 100 == 2) {
			r->accepted = true;
			c->naccepted++;
		} else {
			result_from_reply(&r->res, rp, SMTP_CLIENT_STAGE_RCPT, false);
		}
	}
	if (c->nreplied < c->nsent) {
		if (!c->pipelined)
			out_rcpt(c, c->sent[c->nreplied]);
		return;
	}
	rcpts_done(c);
}

static void
on_data(struct smtp_client *c, const struct smtp_reply *rp)
{
	if (rp->code == 354) {
		if (c->naccepted == 0) {
			/* RFC 2920 §3.1: a 354 without accepted recipients; send an empty message
			 */
			out_cmd(c, ".");
			enter(c, ST_DOT_DISCARD);
			return;
		}
		c->body_line_start = true;
		c->body_cr = false;
		c->body_crlf = false;
		c->body_empty = true;
		enter(c, ST_BODY);
		return;
	}
	if (c->naccepted > 0) {
		if (rp->code / 100 == 2) {
			protocol_error(c, "DATA answered with 2xx instead of 354");
			return;
		}
		fail_pending_reply(c, rp, SMTP_CLIENT_STAGE_DATA, false);
	}
	if (c->mail_failed)
		enter(c, ST_MESSAGE);
	else
		send_rset(c);
}

static void
on_dot(struct smtp_client *c, const struct smtp_reply *rp)
{
	int cls = rp->code / 100;
	for (size_t i = 0; i < nrcpts(c); i++) {
		struct rcpt_state *r = &c->rcpts[i];
		if (r->res.status != SMTP_CLIENT_PENDING || !r->accepted)
			continue;
		result_from_reply(&r->res, rp, SMTP_CLIENT_STAGE_BODY, false);
	}
	if (cls == 2 || cls == 4 || cls == 5)
		enter(c, ST_MESSAGE);
	else
		close_with_quit(c); /* a 1xx/3xx final reply: do not trust this connection */
}

/* ---- input ---- */

static void
handle_reply(struct smtp_client *c, const struct smtp_reply *rp)
{
	int cls = rp->code / 100;
	switch (c->state) {
	case ST_GREETING:
		if (rp->code == 220) {
			send_ehlo(c, false);
		} else {
			fail_pending_reply(c, rp, SMTP_CLIENT_STAGE_GREETING, false);
			close_with_quit(c);
		}
		return;
	case ST_EHLO:
	case ST_HELO:
		if (cls == 2) {
			if (c->state == ST_EHLO) {
				parse_extensions(c, rp);
			} else {
				c->ext = 0;
				c->server_size = 0;
			}
			session_ready(c);
		} else if (cls == 5 && c->state == ST_EHLO) {
			send_ehlo(c, true);
		} else {
			fail_pending_reply(c, rp, SMTP_CLIENT_STAGE_EHLO, false);
			close_with_quit(c);
		}
		return;
	case ST_STARTTLS:
		if (rp->code == 220) {
			enter(c, ST_TLS);
		} else if (c->require_tls) {
			fail_pending_reply(c, rp, SMTP_CLIENT_STAGE_STARTTLS, false);
			close_with_quit(c);
		} else if (cls == 4 || cls == 5) {
			session_ready(c); /* opportunistic: go on without TLS */
		} else {
			protocol_error(c, "unexpected reply to STARTTLS");
		}
		return;
	case ST_AUTH:
		if (rp->code == 235) {
			c->authed = true;
			start_transaction(c);
		} else {
			fail_pending_reply(c, rp, SMTP_CLIENT_STAGE_AUTH, true);
			close_with_quit(c);
		}
		return;
	case ST_MAIL:
		on_mail(c, rp);
		return;
	case ST_RCPT:
		on_rcpt(c, rp);
		return;
	case ST_DATA:
		on_data(c, rp);
		return;
	case ST_DOT:
		on_dot(c, rp);
		return;
	case ST_DOT_DISCARD:
		if (c->mail_failed)
			enter(c, ST_MESSAGE);
		else
			send_rset(c);
		return;
	case ST_RSET:
		if (cls == 2)
			enter(c, ST_MESSAGE);
		else
			close_with_quit(c);
		return;
	case ST_TLS:
	case ST_BODY:
	case ST_MESSAGE:
	case ST_CLOSED:
		break;
	}
}

static bool
wants_reply(enum cstate st)
{
	return st != ST_TLS && st != ST_BODY && st != ST_MESSAGE && st != ST_CLOSED;
}

void
smtp_client_input(struct smtp_client *c, const unsigned char *in, size_t len)
{
	size_t off = 0;
	while (off < len) {
		if (!wants_reply(c->state)) {
			if (c->state != ST_CLOSED)
				protocol_error(c, "unexpected data from the server");
			return;
		}
		size_t used = 0;
		struct smtp_reply rp;
		enum smtp_reply_error e;
		enum smtp_reply_parse r =
		    smtp_reply_parse(c->parser, in + off, len - off, &used, &rp, &e);
		off += used;
		if (r == SMTP_REPLY_ERROR) {
			protocol_error(c, smtp_reply_error_text(e));
			return;
		}
		if (r == SMTP_REPLY_OK)
			handle_reply(c, &rp);
	}
}

/* ---- public API ---- */

static void
begin_message(struct smtp_client *c, const struct smtp_client_msg *msg)
{
	x_free(&c->rcpts);
	x_free(&c->sent);
	c->msg = msg;
	size_t n = msg ? msg->nrcpts : 0;
	c->rcpts = xcalloc(n ? n : 1, sizeof(*c->rcpts));
	c->sent = xcalloc(n ? n : 1, sizeof(*c->sent));
	c->nsent = c->nreplied = c->naccepted = 0;
}

struct smtp_client *
smtp_client_new(const struct smtp_client_opts *opts, const struct smtp_client_msg *msg)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	c->helo_name = xstrdup(opts->helo_name ? opts->helo_name : "localhost");
	c->auth_user = opts->auth_user ? xstrdup(opts->auth_user) : NULL;
	c->auth_pass = opts->auth_pass ? xstrdup(opts->auth_pass) : NULL;
	c->tls_available = opts->tls_available;
	c->require_tls = opts->require_tls;
	c->auth_allow_plaintext = opts->auth_allow_plaintext;
	c->parser = smtp_reply_parser_new();
	buf_init(&c->out, 0);
	begin_message(c, msg);
	c->state = ST_GREETING;
	return c;
}

void
smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;
	if (c == NULL)
		return;
	if (c->auth_pass != NULL) {
		volatile char *p = c->auth_pass;
		while (*p)
			*p++ = '\0';
	}
	if (c->out.data != NULL)
		memset(c->out.data, 0, c->out.len); /* may hold the AUTH payload */
	free(c->helo_name);
	free(c->auth_user);
	free(c->auth_pass);
	smtp_reply_parser_free(&c->parser);
	buf_deinit(&c->out);
	free(c->rcpts);
	free(c->sent);
	x_free(cp);
}

enum smtp_client_want
smtp_client_want(const struct smtp_client *c)
{
	switch (c->state) {
	case ST_TLS:
		return SMTP_CLIENT_WANT_TLS;
	case ST_BODY:
		return SMTP_CLIENT_WANT_BODY;
	case ST_MESSAGE:
		return SMTP_CLIENT_WANT_MESSAGE;
	case ST_CLOSED:
		return SMTP_CLIENT_WANT_CLOSE;
	default:
		return SMTP_CLIENT_WANT_READ;
	}
}

unsigned
smtp_client_timeout_ms(const struct smtp_client *c)
{
	switch (c->state) {
	case ST_MAIL:
		return SMTP_CLIENT_TIMEOUT_MAIL;
	case ST_RCPT:
		return SMTP_CLIENT_TIMEOUT_RCPT;
	case ST_DATA:
		return SMTP_CLIENT_TIMEOUT_DATA_INIT;
	case ST_BODY:
		return SMTP_CLIENT_TIMEOUT_BLOCK;
	case ST_DOT:
	case ST_DOT_DISCARD:
		return SMTP_CLIENT_TIMEOUT_DATA_TERM;
	default:
		return SMTP_CLIENT_TIMEOUT_INITIAL;
	}
}

struct slice
smtp_client_output(const struct smtp_client *c)
{
	return slice_make(c->out.data ? (const char *)c->out.data : "", c->out.len);
}

void
smtp_client_output_done(struct smtp_client *c, size_t n)
{
	buf_consume(&c->out, n < c->out.len ? n : c->out.len);
}

void
smtp_client_tls_done(struct smtp_client *c, bool ok)
{
	if (c->state != ST_TLS)
		return;
	if (!ok) {
		fail_pending(c, SMTP_CLIENT_TEMPFAIL, SMTP_CLIENT_STAGE_STARTTLS, "4.7.0",
		             "TLS handshake failed");
		buf_reset(&c->out);
		enter(c, ST_CLOSED);
		return;
	}
	c->tls_active = true;
	c->ext = 0;
	c->server_size = 0;
	smtp_reply_parser_reset(c->parser);
	send_ehlo(c, false);
}

bool
smtp_client_tls_active(const struct smtp_client *c)
{
	return c->tls_active;
}

void
smtp_client_body_chunk(struct smtp_client *c, const unsigned char *p, size_t len)
{
	if (c->state != ST_BODY || len == 0)
		return;
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		/* a line starts after any LF: stuffing after a bare LF too keeps lenient receivers
		 * from seeing an end of data inside the message */
		if (c->body_line_start && p[i] == '.') {
			buf_append(&c->out, p + start, i - start);
			buf_append_byte(&c->out, '.');
			start = i;
		}
		c->body_crlf = p[i] == '\n' && c->body_cr;
		c->body_line_start = p[i] == '\n';
		c->body_cr = p[i] == '\r';
	}
	buf_append(&c->out, p + start, len - start);
	c->body_empty = false;
}

void
smtp_client_body_end(struct smtp_client *c)
{
	if (c->state != ST_BODY)
		return;
	if (!c->body_empty && !c->body_crlf)
		buf_append_str(&c->out, c->body_cr ? "\n" : "\r\n");
	buf_append_str(&c->out, ".\r\n");
	enter(c, ST_DOT);
}

void
smtp_client_abort(struct smtp_client *c, enum smtp_client_stage stage, const char *why)
{
	if (c->state == ST_CLOSED)
		return;
	bool connect = stage == SMTP_CLIENT_STAGE_CONNECT;
	fail_pending(c, SMTP_CLIENT_TEMPFAIL, connect ? stage : state_stage(c->state),
	             connect ? "4.4.1" : "4.4.2", why ? why : "connection failed");
	buf_reset(&c->out);
	enter(c, ST_CLOSED);
}

int
smtp_client_next_message(struct smtp_client *c, const struct smtp_client_msg *msg)
{
	if (c->state != ST_MESSAGE)
		return -1;
	begin_message(c, msg);
	start_transaction(c);
	return 0;
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c->state == ST_CLOSED)
		return;
	fail_pending(c, SMTP_CLIENT_TEMPFAIL, state_stage(c->state), "4.4.2",
	             "connection closed before the end of the transaction");
	if (c->state == ST_BODY)
		enter(c, ST_CLOSED); /* QUIT would be message content */
	else
		close_with_quit(c);
}

const struct smtp_client_result *
smtp_client_rcpt_result(const struct smtp_client *c, size_t i)
{
	static const struct smtp_client_result none = {.status = SMTP_CLIENT_PERMFAIL};
	if (i >= nrcpts(c))
		return &none;
	return &c->rcpts[i].res;
}

unsigned
smtp_client_extensions(const struct smtp_client *c)
{
	return c->ext;
}

uint64_t
smtp_client_server_size(const struct smtp_client *c)
{
	return c->server_size;
}
