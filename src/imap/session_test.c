/* IMAP session: scripted dialogues on the in-memory mailstore (imap_mailstore_stub), checked by
 * substring; the same script fed whole and one byte at a time; every command family; hostile
 * input; two sessions on one shared stub (through a forwarding mailstore) for the consistency
 * rules of RFC 9051 §7.5.1; IDLE. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "imap/imap.h"
#include "imap/parser.h"
#include "imap/session_private.h"
#include "test.h"
#include "util/xalloc.h"

static const char *const msgs[] = {
    "From: Alice <alice@a.example>\r\nTo: bob@b.example\r\nSubject: first\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@a.example>\r\n\r\nHello one\r\n",
    "From: Carol <carol@c.example>\r\nTo: bob@b.example\r\nSubject: second\r\n"
    "Date: Tue, 2 Jan 2024 10:00:00 +0000\r\nMessage-ID: <2@a.example>\r\n\r\nHello two\r\n",
    "From: Dave <dave@d.example>\r\nTo: bob@b.example\r\nSubject: Re: first\r\n"
    "Date: Wed, 3 Jan 2024 10:00:00 +0000\r\nMessage-ID: <3@a.example>\r\n"
    "In-Reply-To: <1@a.example>\r\n\r\nHello three\r\n",
};

static struct imap_mailstore *
new_stub(void)
{
	size_t lens[3];
	for (size_t i = 0; i < 3; i++)
		lens[i] = strlen(msgs[i]);
	return imap_mailstore_stub(msgs, lens, 3);
}

/* ---- a forwarding mailstore: several sessions on one stub ---- */

struct fwd {
	struct imap_mailstore base;
	struct imap_mailstore *in;
};
#define IN(ms) (((struct fwd *)(ms))->in)

static int
f_login(struct imap_mailstore *ms, const char *u, const char *p, size_t n, struct err *e)
{
	int r = IN(ms)->ops->login(IN(ms), u, p, n, e);
	if (r > 0) {
		free(ms->user);
		ms->user = xstrdup(IN(ms)->user);
	}
	return r;
}
static int
f_list(struct imap_mailstore *ms, struct imap_ms_mailbox **v, size_t *n, struct err *e)
{
	return IN(ms)->ops->list(IN(ms), v, n, e);
}
static int
f_status(struct imap_mailstore *ms, const char *name, struct imap_ms_status *st, struct err *e)
{
	return IN(ms)->ops->status(IN(ms), name, st, e);
}
static int
f_create(struct imap_mailstore *ms, const char *name, const char *su, struct err *e)
{
	return IN(ms)->ops->create(IN(ms), name, su, e);
}
static int
f_delete(struct imap_mailstore *ms, const char *name, struct err *e)
{
	return IN(ms)->ops->delete (IN(ms), name, e);
}
static int
f_rename(struct imap_mailstore *ms, const char *a, const char *b, struct err *e)
{
	return IN(ms)->ops->rename(IN(ms), a, b, e);
}
static int
f_subscribe(struct imap_mailstore *ms, const char *name, bool on, struct err *e)
{
	return IN(ms)->ops->subscribe(IN(ms), name, on, e);
}
static int
f_messages(struct imap_mailstore *ms, int64_t mb, uint64_t since, struct imap_ms_msg **v, size_t *n,
           uint32_t *un, uint64_t *hms, struct err *e)
{
	return IN(ms)->ops->messages(IN(ms), mb, since, v, n, un, hms, e);
}
static int
f_vanished(struct imap_mailstore *ms, int64_t mb, uint64_t since, uint32_t **u, size_t *n,
           struct err *e)
{
	return IN(ms)->ops->vanished(IN(ms), mb, since, u, n, e);
}
static int
f_meta(struct imap_mailstore *ms, int64_t mb, uint32_t uid, struct imap_ms_meta *m, struct err *e)
{
	return IN(ms)->ops->meta(IN(ms), mb, uid, m, e);
}
static int
f_read(struct imap_mailstore *ms, const struct imap_ms_meta *m, uint64_t off, uint64_t len,
       struct buf *out, struct err *e)
{
	return IN(ms)->ops->read(IN(ms), m, off, len, out, e);
}
static int
f_store(struct imap_mailstore *ms, int64_t mb, const uint32_t *u, size_t n,
        enum imap_ms_store_op op, uint32_t fl, const char *kw, uint64_t unch,
        struct imap_ms_msg **ch, size_t *nch, uint32_t **failed, size_t *nf, struct err *e)
{
	return IN(ms)->ops->store(IN(ms), mb, u, n, op, fl, kw, unch, ch, nch, failed, nf, e);
}
static int
f_copy(struct imap_mailstore *ms, int64_t mb, const uint32_t *u, size_t n, const char *dest,
       bool move, uint32_t *uv, uint32_t **src, uint32_t **dst, size_t *nr, struct err *e)
{
	return IN(ms)->ops->copy(IN(ms), mb, u, n, dest, move, uv, src, dst, nr, e);
}
static int
f_expunge(struct imap_mailstore *ms, int64_t mb, const uint32_t *u, size_t n, uint32_t **x,
          size_t *nx, struct err *e)
{
	return IN(ms)->ops->expunge(IN(ms), mb, u, n, x, nx, e);
}
static int
f_append(struct imap_mailstore *ms, const char *name, uint32_t fl, const char *kw, int64_t d,
         const unsigned char *m, size_t len, uint32_t *uv, uint32_t *uid, struct err *e)
{
	return IN(ms)->ops->append(IN(ms), name, fl, kw, d, m, len, uv, uid, e);
}
static uint64_t quota_used, quota_limit; /* f_quota reports these when quota_limit != 0 */
static int
f_quota(struct imap_mailstore *ms, uint64_t *u, uint64_t *l, uint64_t *m, struct err *e)
{
	int r = IN(ms)->ops->quota(IN(ms), u, l, m, e);
	if (r == 0 && quota_limit != 0) {
		*u = quota_used;
		*l = quota_limit;
	}
	return r;
}
static bool frozen_seq; /* f_change_seq never moves: changes made by "another process" */
static uint64_t
f_change_seq(struct imap_mailstore *ms, int64_t mb)
{
	return frozen_seq ? 1 : IN(ms)->ops->change_seq(IN(ms), mb);
}
static unsigned idle_releases;
static void
f_idle_release(struct imap_mailstore *ms)
{
	idle_releases++;
}
static void
f_free(struct imap_mailstore *ms)
{
	free(ms->user);
	free(ms);
}

static const struct imap_mailstore_ops fwd_ops = {
    .login = f_login,
    .list = f_list,
    .status = f_status,
    .create = f_create,
    .delete = f_delete,
    .rename = f_rename,
    .subscribe = f_subscribe,
    .messages = f_messages,
    .vanished = f_vanished,
    .meta = f_meta,
    .read = f_read,
    .store = f_store,
    .copy = f_copy,
    .expunge = f_expunge,
    .append = f_append,
    .quota = f_quota,
    .change_seq = f_change_seq,
    .idle_release = f_idle_release,
    .free = f_free,
};

static struct imap_mailstore *
fwd_new(struct imap_mailstore *in)
{
	struct fwd *f = xcalloc(1, sizeof *f);
	f->base.ops = &fwd_ops;
	f->in = in;
	return &f->base;
}

/* ---- session helpers ---- */

static char logbuf[8192];

static void
t_log(void *ctx, const char *line)
{
	size_t n = strlen(logbuf);
	snprintf(logbuf + n, sizeof logbuf - n, "%s\n", line);
}

static int64_t now_val = 1704067200; /* 2024-01-01 */

static int64_t
t_now(void *ctx)
{
	return now_val;
}

static const struct imap_limits lim = {
    .hostname = "imap.test.example",
    .line_max = 8192,
    .preauth_line_max = 1024,
    .literal_max = 100000,
    .preauth_literal_max = 256,
    .command_max = 200000,
    .depth_max = 8,
    .max_errors = 10,
    .max_auth_failures = 3,
    .auth_fail_delay_ms = 100,
    .plaintext_auth_ok = false,
};

static struct imap_session *
open_session(struct imap_mailstore *ms, bool tls)
{
	struct imap_hooks hooks = {.log = t_log, .now = t_now};
	struct imap_conn_info info = {.client_ip = "192.0.2.7", .listener = "test"};
	return imap_session_new(&lim, &hooks, &info, ms, tls, !tls, "t1");
}

static char *out_text; /* last output, heap */

/* Feeds text, returns all output queued (heap-owned by out_text, replaced on each call). */
static const char *
talk(struct imap_session *s, const char *in)
{
	imap_session_input(s, (const unsigned char *)in, strlen(in));
	struct buf *o = imap_session_output(s);
	free(out_text);
	out_text = xstrndup((const char *)o->data ? (const char *)o->data : "", o->len);
	buf_reset(o);
	return out_text;
}

static const char *
take(struct imap_session *s)
{
	return talk(s, "");
}

static bool
has(const char *hay, const char *needle)
{
	bool ok = strstr(hay, needle) != NULL;
	if (!ok)
		fprintf(stderr, "    missing \"%s\" in:\n%s\n", needle, hay);
	return ok;
}

static struct imap_session *
logged_in(struct imap_mailstore *ms)
{
	struct imap_session *s = open_session(ms, true);
	(void)take(s);
	const char *r = talk(s, "l LOGIN user@test.example secret\r\n");
	CHECK(has(r, "l OK [CAPABILITY IMAP4rev1"));
	return s;
}

static struct imap_session *
selected(struct imap_mailstore *ms)
{
	struct imap_session *s = logged_in(ms);
	CHECK(has(talk(s, "s SELECT INBOX\r\n"), "s OK [READ-WRITE]"));
	return s;
}

/* ---- tests ---- */

static void
test_greeting_and_capabilities(void)
{
	struct imap_session *s = open_session(new_stub(), false);
	const char *g = take(s);
	CHECK(has(g, "* OK [CAPABILITY IMAP4rev1 IMAP4rev2"));
	CHECK(has(g, "STARTTLS"));
	CHECK(has(g, "LOGINDISABLED"));
	CHECK(strstr(g, "AUTH=") == NULL);
	CHECK(has(g, "imap.test.example Lightr ready"));
	const char *r = talk(s, "a CAPABILITY\r\n");
	CHECK(has(r, "* CAPABILITY IMAP4rev1"));
	CHECK(has(r, "a OK"));
	r = talk(s, "b LOGIN user@test.example secret\r\n");
	CHECK(has(r, "b NO [PRIVACYREQUIRED]"));
	r = talk(s, "c AUTHENTICATE PLAIN AHVzZXJAdGVzdC5leGFtcGxlAHNlY3JldA==\r\n");
	CHECK(has(r, "c NO [PRIVACYREQUIRED]"));
	/* STARTTLS: pipelined commands after it are dropped */
	r = talk(s, "d STARTTLS\r\ne LOGIN user@test.example secret\r\n");
	CHECK(has(r, "d OK Begin TLS negotiation now"));
	CHECK(strstr(r, "e ") == NULL);
	CHECK(imap_session_wants_tls(s));
	imap_session_tls_started(s);
	CHECK(!imap_session_wants_tls(s));
	r = talk(s, "f CAPABILITY\r\n");
	CHECK(has(r, "AUTH=PLAIN"));
	CHECK(strstr(r, "STARTTLS") == NULL);
	CHECK(strstr(r, "LOGINDISABLED") == NULL);
	r = talk(s, "g STARTTLS\r\n");
	CHECK(has(r, "g BAD"));
	CHECK(imap_session_timeout_ms(s, 3600000) == 60000);
	r = talk(s, "h LOGIN user@test.example secret\r\n");
	CHECK(has(r, "h OK [CAPABILITY IMAP4rev1 IMAP4rev2"));
	CHECK(has(r, "APPENDLIMIT=100000"));
	CHECK(has(r, "COMPRESS=DEFLATE"));
	CHECK(has(r, "QRESYNC"));
	CHECK(has(r, " QUOTA QUOTA=RES-STORAGE "));
	CHECK(strstr(r, "RES-MESSAGE") == NULL); /* no MESSAGE resource is reported */
	CHECK_STR(imap_session_user(s), "user@test.example");
	CHECK(imap_session_timeout_ms(s, 3600000) == 3600000);
	CHECK(has(logbuf, "imap t1 login user=user@test.example"));
	CHECK(strstr(logbuf, "secret") == NULL);
	r = talk(s, "i LOGOUT\r\n");
	CHECK(has(r, "* BYE"));
	CHECK(has(r, "i OK"));
	CHECK(imap_session_done(s));
	imap_session_free(&s);
	CHECK(s == NULL);
}

static void
test_login_failures(void)
{
	struct imap_session *s = open_session(new_stub(), true);
	(void)take(s);
	const char *r = talk(s, "a LOGIN user@test.example wrong\r\n");
	CHECK(has(r, "a NO [AUTHENTICATIONFAILED] Authentication failed"));
	CHECK_INT(imap_session_delay_ms(s), 100);
	CHECK_INT(imap_session_delay_ms(s), 0);
	r = talk(s, "b LOGIN \"user@test.example\" {5}\r\n");
	CHECK(has(r, "+ OK"));
	r = talk(s, "wrong\r\n");
	CHECK(has(r, "b NO [AUTHENTICATIONFAILED]"));
	CHECK_INT(imap_session_delay_ms(s), 200);
	CHECK(!imap_session_done(s));
	r = talk(s, "c AUTHENTICATE PLAIN AHVzZXJAdGVzdC5leGFtcGxlAHdyb25n\r\n");
	CHECK(has(r, "c NO [AUTHENTICATIONFAILED]"));
	CHECK(has(r, "* BYE Too many authentication failures"));
	CHECK(imap_session_done(s));
	CHECK(strstr(logbuf, "wrong") == NULL);
	imap_session_free(&s);
}

/* Auth-failure tracking hooks (issue 8): gate before the password check, result after it. */
static int gate_calls, result_calls, result_ok;
static bool gate_open;

static bool
t_auth_gate(void *ctx, const char *user)
{
	gate_calls++;
	return gate_open;
}

static void
t_auth_result(void *ctx, const char *user, bool ok)
{
	result_calls++;
	result_ok += ok;
}

static void
test_auth_gate_hooks(void)
{
	struct imap_hooks hooks = {
	    .log = t_log, .now = t_now, .auth_gate = t_auth_gate, .auth_result = t_auth_result};
	struct imap_conn_info info = {.client_ip = "192.0.2.7", .listener = "test"};
	struct imap_session *s =
	    imap_session_new(&lim, &hooks, &info, new_stub(), true, false, "t1");
	(void)take(s);
	gate_calls = result_calls = result_ok = 0;
	gate_open = true;
	const char *r = talk(s, "a LOGIN user@test.example wrong\r\n");
	CHECK(has(r, "a NO [AUTHENTICATIONFAILED]"));
	CHECK_INT(gate_calls, 1);
	CHECK_INT(result_calls, 1);
	CHECK_INT(result_ok, 0);
	/* locked out: the right password fails as a wrong one would, and is not checked */
	gate_open = false;
	r = talk(s, "b LOGIN user@test.example secret\r\n");
	CHECK(has(r, "b NO [AUTHENTICATIONFAILED] Authentication failed"));
	CHECK_INT(gate_calls, 2);
	CHECK_INT(result_calls, 1);
	CHECK(imap_session_user(s) == NULL);
	gate_open = true;
	r = talk(s, "c AUTHENTICATE PLAIN AHVzZXJAdGVzdC5leGFtcGxlAHNlY3JldA==\r\n");
	CHECK(has(r, "c OK"));
	CHECK_INT(gate_calls, 3);
	CHECK_INT(result_calls, 2);
	CHECK_INT(result_ok, 1);
	imap_session_free(&s);
}

static void
test_authenticate(void)
{
	struct imap_session *s = open_session(new_stub(), true);
	(void)take(s);
	const char *r = talk(s, "a AUTHENTICATE PLAIN\r\n");
	CHECK(has(r, "+ \r\n"));
	r = talk(s, "*\r\n");
	CHECK(has(r, "a BAD"));
	r = talk(s, "b AUTHENTICATE CRAM-MD5\r\n");
	CHECK(has(r, "b NO"));
	r = talk(s, "c AUTHENTICATE PLAIN\r\n");
	CHECK(has(r, "+ "));
	r = talk(s, "AHVzZXJAdGVzdC5leGFtcGxlAHNlY3JldA==\r\n");
	CHECK(has(r, "c OK [CAPABILITY"));
	imap_session_free(&s);
	s = open_session(new_stub(), true);
	(void)take(s);
	r = talk(s, "d AUTHENTICATE PLAIN AHVzZXJAdGVzdC5leGFtcGxlAHNlY3JldA==\r\n");
	CHECK(has(r, "d OK [CAPABILITY"));
	imap_session_free(&s);
}

static void
test_states_and_errors(void)
{
	struct imap_session *s = open_session(new_stub(), true);
	(void)take(s);
	CHECK(has(talk(s, "a SELECT INBOX\r\n"), "a BAD"));
	CHECK(has(talk(s, "a FOO\r\n"), "a BAD Unknown command"));
	CHECK(has(talk(s, "+x NOOP\r\n"), "* BAD Invalid tag"));
	CHECK(has(talk(s, "a UID NOOP\r\n"), "a BAD"));
	CHECK(has(talk(s, "a NOOP\r\n"), "a OK"));
	CHECK(has(talk(s, "\r\n"), "BAD"));
	const char *r = "";
	for (int i = 0; i < 10 && !imap_session_done(s); i++)
		r = talk(s, "x BOGUS\r\n");
	CHECK(has(r, "* BYE Too many invalid commands"));
	CHECK(imap_session_done(s));
	imap_session_free(&s);

	s = logged_in(new_stub());
	CHECK(has(talk(s, "a FETCH 1 FLAGS\r\n"), "a BAD No mailbox selected"));
	CHECK(has(talk(s, "a LOGIN x y\r\n"), "a BAD"));
	imap_session_close(s, false);
	CHECK(has(take(s), "* BYE"));
	CHECK(imap_session_done(s));
	imap_session_free(&s);
}

static void
test_select_examine(void)
{
	struct imap_session *s = logged_in(new_stub());
	const char *r = talk(s, "a SELECT INBOX\r\n");
	CHECK(has(r, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"));
	CHECK(has(r, "* 3 EXISTS"));
	CHECK(has(r, "* 0 RECENT"));
	CHECK(has(r, "* OK [UNSEEN 1]"));
	CHECK(has(r, "* OK [UIDVALIDITY "));
	CHECK(has(r, "* OK [UIDNEXT 4]"));
	CHECK(has(r, "\\*)]"));
	CHECK(has(r, "[HIGHESTMODSEQ "));
	CHECK(has(r, "a OK [READ-WRITE] SELECT completed"));
	CHECK(imap_session_mailbox(s) != 0);
	r = talk(s, "b EXAMINE inbox\r\n");
	CHECK(has(r, "* OK [PERMANENTFLAGS ()]"));
	CHECK(has(r, "b OK [READ-ONLY]"));
	CHECK(has(talk(s, "c STORE 1 +FLAGS (\\Seen)\r\n"), "c NO [READ-ONLY]"));
	CHECK(has(talk(s, "c EXPUNGE\r\n"), "c NO [READ-ONLY]"));
	/* a body fetch on a read-only mailbox does not set \Seen */
	r = talk(s, "d FETCH 1 (BODY[TEXT] FLAGS)\r\n");
	CHECK(has(r, "* 1 FETCH"));
	CHECK(strstr(r, "\\Seen") == NULL);
	CHECK(has(talk(s, "e SELECT Nope\r\n"), "e NO"));
	CHECK(imap_session_mailbox(s) == 0);
	CHECK(has(talk(s, "f FETCH 1 FLAGS\r\n"), "f BAD"));
	CHECK(has(talk(s, "g SELECT \"&Jjo\"\r\n"), "g "));
	CHECK(strstr(out_text, "g OK") == NULL);
	CHECK(has(talk(s, "h SELECT INBOX (FOO)\r\n"), "h BAD"));
	/* rev2: no RECENT, no UNSEEN, a LIST response */
	CHECK(has(talk(s, "i ENABLE IMAP4rev2\r\n"), "* ENABLED IMAP4rev2"));
	r = talk(s, "j SELECT INBOX\r\n");
	CHECK(strstr(r, "RECENT") == NULL);
	CHECK(strstr(r, "UNSEEN") == NULL);
	CHECK(has(r, "* LIST () \"/\" "));
	r = talk(s, "k SELECT Trash\r\n");
	CHECK(has(r, "* OK [CLOSED]"));
	CHECK(has(r, "* 0 EXISTS"));
	CHECK(has(talk(s, "l UNSELECT\r\n"), "l OK"));
	CHECK(imap_session_mailbox(s) == 0);
	imap_session_free(&s);
}

static void
test_fetch_store(void)
{
	struct imap_session *s = selected(new_stub());
	const char *r = talk(s, "a FETCH 1:* (UID FLAGS)\r\n");
	CHECK(has(r, "* 1 FETCH (UID 1 FLAGS ())"));
	CHECK(has(r, "* 3 FETCH (UID 3 FLAGS ())"));
	CHECK(has(r, "a OK"));
	r = talk(s, "b FETCH 2 BODY[]\r\n");
	CHECK(has(r, "Hello two"));
	CHECK(has(r, "\\Seen"));
	CHECK(has(talk(s, "c FETCH 4 FLAGS\r\n"), "c BAD Invalid message sequence number"));
	CHECK(has(talk(s, "c FETCH 0 FLAGS\r\n"), "c BAD"));
	CHECK(has(talk(s, "c FETCH 1 (FLAGS\r\n"), "c BAD"));
	CHECK(has(talk(s, "c UID FETCH 99 FLAGS\r\n"), "c OK"));
	r = talk(s, "d STORE 1 +FLAGS (\\Flagged $Label1)\r\n");
	CHECK(has(r, "* 1 FETCH (FLAGS (\\Flagged $Label1))"));
	CHECK(has(r, "d OK"));
	r = talk(s, "e UID STORE 1 -FLAGS.SILENT (\\Flagged)\r\n");
	CHECK(strstr(r, "FETCH") == NULL);
	CHECK(has(r, "e OK"));
	r = talk(s, "f STORE 3 FLAGS \\Deleted\r\n");
	CHECK(has(r, "* 3 FETCH (FLAGS (\\Deleted))"));
	CHECK(has(talk(s, "g STORE 1 +FLAGS (\\Recent)\r\n"), "g BAD"));
	CHECK(has(talk(s, "g STORE 1 +FLAGS (\\*)\r\n"), "g BAD"));
	CHECK(has(talk(s, "g STORE 1 +FLAGS (\\Bogus)\r\n"), "g BAD"));
	CHECK(has(talk(s, "g STORE 1 FROB (\\Seen)\r\n"), "g BAD"));
	/* CONDSTORE */
	r = talk(s, "h STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Answered)\r\n");
	CHECK(has(r, "h OK [MODIFIED 1]"));
	r = talk(s, "i FETCH 1 (FLAGS) (CHANGEDSINCE 1)\r\n");
	CHECK(has(r, "MODSEQ ("));
	/* CONDSTORE on: flag updates carry UID and MODSEQ (RFC 7162 §3.1) */
	r = talk(s, "i2 STORE 1 +FLAGS (\\Answered)\r\n");
	CHECK(has(r, "* 1 FETCH (UID 1 FLAGS (\\Answered $Label1) MODSEQ ("));
	r = talk(s, "j UID SEARCH DELETED\r\n");
	CHECK(has(r, "* SEARCH 3"));
	r = talk(s, "k EXPUNGE\r\n");
	CHECK(has(r, "* 3 EXPUNGE"));
	CHECK(has(r, "k OK"));
	r = talk(s, "l FETCH 1:* FLAGS\r\n");
	CHECK(strstr(r, "* 3 FETCH") == NULL);
	imap_session_free(&s);
}

static void
test_empty_mailbox(void)
{
	struct imap_session *s = logged_in(new_stub());
	CHECK(has(talk(s, "a SELECT Trash\r\n"), "* 0 EXISTS"));
	CHECK(has(talk(s, "b FETCH *:* FLAGS\r\n"), "b BAD"));
	CHECK(has(talk(s, "c FETCH 1:* FLAGS\r\n"), "c BAD"));
	CHECK(has(talk(s, "d UID FETCH 1:* FLAGS\r\n"), "d OK"));
	CHECK(has(talk(s, "e SEARCH ALL\r\n"), "* SEARCH\r\n"));
	CHECK(has(talk(s, "f UID STORE 1:* +FLAGS (\\Seen)\r\n"), "f OK"));
	CHECK(has(talk(s, "g CLOSE\r\n"), "g OK"));
	imap_session_free(&s);
}

static void
test_copy_move_append(void)
{
	struct imap_session *s = selected(new_stub());
	const char *r = talk(s, "a COPY 1:2 Trash\r\n");
	CHECK(has(r, "a OK [COPYUID "));
	CHECK(has(r, " 1:2 1:2]"));
	CHECK(has(talk(s, "b COPY 1 Nope\r\n"), "b NO [TRYCREATE]"));
	r = talk(s, "c MOVE 2 Sent\r\n");
	CHECK(has(r, "* OK [COPYUID "));
	CHECK(has(r, "* 2 EXPUNGE"));
	CHECK(has(r, "c OK"));
	r = talk(s, "d UID MOVE 3 Sent\r\n");
	CHECK(has(r, "* 2 EXPUNGE"));
	r = talk(s, "e APPEND INBOX (\\Seen $Work) \"01-Feb-2024 10:00:00 +0000\" {30}\r\n");
	CHECK(has(r, "+ OK"));
	r = talk(s, "Subject: appended\r\n\r\nBody 12\r\n\r\n");
	CHECK(has(r, "e OK [APPENDUID "));
	CHECK(has(r, "* 2 EXISTS")); /* our own append shows up in the selected mailbox */
	r = talk(s, "f APPEND INBOX {3+}\r\nabc\r\n");
	CHECK(has(r, "f OK [APPENDUID "));
	CHECK(has(talk(s, "g APPEND Nope {3+}\r\nabc\r\n"), "g NO [TRYCREATE]"));
	r = talk(s, "h APPEND INBOX {999999}\r\n");
	CHECK(has(r, "h NO [TOOBIG]"));
	CHECK(strstr(r, "+ OK") == NULL);
	CHECK(has(talk(s, "i NOOP\r\n"), "i OK"));
	CHECK(has(talk(s, "j APPEND INBOX (\\Recent) {3+}\r\nabc\r\n"), "j BAD"));
	imap_session_free(&s);
}

static void
test_search_sort_thread(void)
{
	struct imap_session *s = selected(new_stub());
	CHECK(has(talk(s, "a SEARCH ALL\r\n"), "* SEARCH 1 2 3\r\n"));
	CHECK(has(talk(s, "b UID SEARCH SUBJECT first\r\n"), "* SEARCH 1 3\r\n"));
	const char *r = talk(s, "c SEARCH RETURN (MIN MAX COUNT) ALL\r\n");
	CHECK(has(r, "* ESEARCH (TAG \"c\") MIN 1 MAX 3 COUNT 3"));
	r = talk(s, "d SEARCH RETURN (SAVE) SUBJECT second\r\n");
	CHECK(strstr(r, "ESEARCH") == NULL);
	r = talk(s, "e FETCH $ (UID)\r\n");
	CHECK(has(r, "* 2 FETCH (UID 2)"));
	CHECK(has(talk(s, "f SEARCH CHARSET KOI8-R ALL\r\n"), "f NO [BADCHARSET"));
	CHECK(has(talk(s, "g SEARCH (((((((((((ALL)))))))))))\r\n"), "g BAD"));
	r = talk(s, "h SORT (SUBJECT) UTF-8 ALL\r\n");
	CHECK(has(r, "* SORT "));
	r = talk(s, "i THREAD REFERENCES UTF-8 ALL\r\n");
	CHECK(has(r, "* THREAD "));
	CHECK(has(talk(s, "j ENABLE IMAP4rev2\r\n"), "j OK"));
	CHECK(has(talk(s, "k SEARCH ALL\r\n"), "* ESEARCH (TAG \"k\") ALL 1:3"));
	imap_session_free(&s);
}

static void
test_misc_commands(void)
{
	struct imap_session *s = selected(new_stub());
	CHECK(has(talk(s, "a ID (\"name\" \"test\" \"version\" \"1\")\r\n"),
	          "* ID (\"name\" \"Lightr\""));
	CHECK(has(talk(s, "a ID NIL\r\n"), "a OK"));
	CHECK(has(talk(s, "a ID (\"name\")\r\n"), "a BAD"));
	const char *r = talk(s, "b ENABLE CONDSTORE QRESYNC X-UNKNOWN\r\n");
	CHECK(has(r, "* ENABLED CONDSTORE QRESYNC"));
	CHECK(has(talk(s, "c CHECK\r\n"), "c OK"));
	CHECK(has(talk(s, "d NOOP\r\n"), "d OK"));
	CHECK(has(talk(s, "e NAMESPACE\r\n"), "e "));
	CHECK(has(talk(s, "f LIST \"\" *\r\n"), "INBOX"));
	CHECK(has(talk(s, "g STATUS INBOX (MESSAGES)\r\n"), "MESSAGES 3"));
	CHECK(has(talk(s, "h GETQUOTAROOT INBOX\r\n"), "h "));
	r = talk(s, "i COMPRESS DEFLATE\r\nj NOOP\r\n");
	CHECK(has(r, "i OK DEFLATE active"));
	CHECK(strstr(r, "j OK") == NULL);
	CHECK(imap_session_wants_compress(s));
	imap_session_compress_started(s);
	CHECK(has(talk(s, "k COMPRESS DEFLATE\r\n"), "k NO [COMPRESSIONACTIVE]"));
	CHECK(strstr(talk(s, "l CAPABILITY\r\n"), "COMPRESS=DEFLATE") == NULL);
	CHECK(has(talk(s, "m CLOSE\r\n"), "m OK"));
	CHECK(has(talk(s, "n CREATE Work/Sub\r\n"), "n OK"));
	CHECK(has(talk(s, "o SELECT Work/Sub\r\n"), "o OK"));
	CHECK(has(talk(s, "p DELETE Work/Sub\r\n"), "p "));
	imap_session_free(&s);
}

static void
test_hostile(void)
{
	struct imap_session *s = open_session(new_stub(), true);
	(void)take(s);
	/* 10 MB junk on one line: bounded memory, one BAD */
	char *junk = xmalloc(1 << 20);
	memset(junk, 'A', 1 << 20);
	for (int i = 0; i < 10; i++) {
		imap_session_input(s, (const unsigned char *)junk, 1 << 20);
		CHECK(imap_reader_buffered(s->reader) <= 2 * lim.preauth_line_max);
		CHECK(imap_session_output(s)->len < 1000);
	}
	free(junk);
	const char *r = talk(s, "\r\n");
	CHECK(has(r, "BAD"));
	CHECK(!imap_session_done(s));
	CHECK(has(talk(s, "a NOOP\r\n"), "a OK"));
	/* a literal for a command that cannot run now is refused without "+ OK" */
	r = talk(s, "a1 APPEND INBOX {10}\r\n");
	CHECK(has(r, "a1 BAD Command not allowed now"));
	CHECK(strstr(r, "+ OK") == NULL);
	r = talk(s, "a2 FROB {10}\r\n");
	CHECK(has(r, "a2 BAD Unknown command"));
	CHECK(has(talk(s, "a3 NOOP\r\n"), "a3 OK"));
	/* literal over the pre-auth limit */
	r = talk(s, "b LOGIN {100000}\r\n");
	CHECK(has(r, "BAD"));
	CHECK(strstr(r, "+ OK") == NULL);
	r = talk(s, "c LOGIN user@test.example secret\r\n");
	CHECK(has(r, "c OK"));
	/* after login: nesting, invalid sets, bad names */
	CHECK(has(talk(s, "d SELECT INBOX\r\n"), "d OK"));
	CHECK(has(talk(s, "e FETCH 1:2,x FLAGS\r\n"), "e BAD"));
	CHECK(has(talk(s, "e FETCH 1:4294967296 FLAGS\r\n"), "e BAD"));
	CHECK(has(talk(s, "f SEARCH ((((((((((((((((((((ALL))))))))))))))))))))\r\n"), "f BAD"));
	CHECK(has(talk(s, "g CREATE \"&AGE-\"\r\n"), "g "));
	CHECK(strstr(out_text, "g OK") == NULL);
	CHECK(has(talk(s, "h LIST \"\" \"&Jjo\"\r\n"), "h "));
	imap_session_free(&s);
}

static void
test_qresync_searchres(void)
{
	struct imap_session *s = selected(new_stub());
	CHECK(has(talk(s, "a UID COPY 99 Trash\r\n"), "a OK Copy completed"));
	CHECK(has(talk(s, "b UID MOVE 99 Trash\r\n"), "b OK Move completed"));
	CHECK(has(talk(s, "c ENABLE QRESYNC\r\n"), "* OK [HIGHESTMODSEQ "));
	CHECK(has(talk(s, "d STORE 3 +FLAGS (\\Deleted)\r\n"),
	          "* 3 FETCH (UID 3 FLAGS (\\Deleted) MODSEQ ("));
	CHECK(has(talk(s, "e EXPUNGE\r\n"), "* VANISHED 3\r\n"));
	const char *r = talk(s, "f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n");
	CHECK(has(r, "* VANISHED (EARLIER) 3\r\n"));
	CHECK(has(r, "* 2 FETCH (UID 2 FLAGS () MODSEQ ("));
	CHECK(has(talk(s, "g FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n"), "g BAD"));
	r = talk(s, "h SEARCH RETURN (SAVE MIN) ALL\r\n");
	CHECK(strstr(r, "ESEARCH") != NULL);
	CHECK(has(talk(s, "i FETCH $ (UID)\r\n"), "* 1 FETCH (UID 1)\r\ni OK"));
	CHECK(has(talk(s, "j UNSELECT\r\nk SELECT INBOX\r\n"), "k OK"));
	CHECK(strstr(talk(s, "l FETCH $ (UID)\r\n"), "FETCH (") == NULL);
	r = talk(s, "m SELECT INBOX (QRESYNC (1700000000 1 1:5))\r\n");
	CHECK(has(r, "* OK [CLOSED]"));
	CHECK(has(r, "* VANISHED (EARLIER) 3\r\n"));
	CHECK(has(r, "* 1 FETCH (UID 1 FLAGS () MODSEQ ("));
	r = talk(s, "n SELECT INBOX (QRESYNC (42 1))\r\n");
	CHECK(strstr(r, "VANISHED") == NULL);
	CHECK(has(r, "n OK"));
	CHECK(has(talk(s, "o SELECT INBOX (QRESYNC (1700000000))\r\n"), "o BAD"));
	/* IDLE line too long / shutdown */
	(void)talk(s, "p IDLE\r\n");
	char big[10000];
	memset(big, 'D', sizeof big - 3);
	memcpy(big + sizeof big - 3, "\r\n", 3);
	CHECK(has(talk(s, big), "p BAD"));
	CHECK(!imap_session_idling(s));
	imap_session_close(s, true);
	CHECK(has(take(s), "* BYE Server shutting down"));
	CHECK(has(talk(s, "q NOOP\r\n"), "") && out_text[0] == '\0');
	imap_session_free(&s);
}

static const char *const script = "a LOGIN user@test.example secret\r\n"
                                  "b SELECT INBOX\r\n"
                                  "c FETCH 1:* (UID FLAGS RFC822.SIZE)\r\n"
                                  "d STORE 2 +FLAGS (\\Seen)\r\n"
                                  "e APPEND INBOX {12}\r\nSubject: x\r\n\r\n"
                                  "f UID SEARCH ALL\r\n"
                                  "g IDLE\r\nDONE\r\n"
                                  "h LOGIN {3}\r\n"
                                  "i COPY 1 Trash\r\n"
                                  "j LOGOUT\r\n";

static char *
run_script(size_t step)
{
	struct imap_session *s = open_session(new_stub(), true);
	struct buf all;
	buf_init(&all, 0);
	size_t len = strlen(script);
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		imap_session_input(s, (const unsigned char *)script + i, n);
		struct buf *o = imap_session_output(s);
		(void)buf_append(&all, o->data, o->len);
		buf_reset(o);
	}
	char *r = xstrdup(buf_cstr(&all));
	buf_deinit(&all);
	imap_session_free(&s);
	return r;
}

static void
test_byte_at_a_time(void)
{
	char *whole = run_script(1 << 20);
	char *bytes = run_script(1);
	char *sevens = run_script(7);
	CHECK_STR(bytes, whole);
	CHECK_STR(sevens, whole);
	CHECK(has(whole, "j OK"));
	CHECK(has(whole, "g OK"));
	CHECK(has(whole, "e OK [APPENDUID"));
	free(whole);
	free(bytes);
	free(sevens);
}

static void
test_two_sessions(void)
{
	struct imap_mailstore *shared = new_stub();
	struct imap_session *a = selected(fwd_new(shared));
	struct imap_session *b = selected(fwd_new(shared));
	/* a new message: EXISTS after any command */
	CHECK(has(talk(b, "b1 APPEND INBOX {12+}\r\nSubject: n\r\n\r\n"), "b1 OK"));
	const char *r = talk(a, "a1 NOOP\r\n");
	CHECK(has(r, "* 4 EXISTS"));
	CHECK(strstr(r, "* 4 EXISTS") < strstr(r, "a1 OK"));
	/* a flag change by b shows up in a */
	CHECK(has(talk(b, "b2 STORE 1 +FLAGS (\\Flagged)\r\n"), "b2 OK"));
	r = talk(a, "a2 NOOP\r\n");
	CHECK(has(r, "* 1 FETCH (FLAGS (\\Flagged))"));
	/* an expunge by b: never during FETCH/STORE/SEARCH in a */
	CHECK(has(talk(b, "b3 STORE 2 +FLAGS (\\Deleted)\r\n"), "b3 OK"));
	CHECK(has(talk(b, "b4 EXPUNGE\r\n"), "* 2 EXPUNGE"));
	r = talk(a, "a3 FETCH 1:* (FLAGS)\r\n");
	CHECK(strstr(r, "EXPUNGE") == NULL);
	CHECK(has(r, "a3 OK"));
	CHECK(has(r, "* 1 FETCH"));
	CHECK(has(r, "* 2 FETCH")); /* not announced yet: served from the view */
	r = talk(a, "a4 STORE 1 +FLAGS (\\Seen)\r\n");
	CHECK(strstr(r, "EXPUNGE") == NULL);
	r = talk(a, "a5 SEARCH ALL\r\n");
	CHECK(strstr(r, "EXPUNGE") == NULL);
	CHECK(has(r, "* SEARCH 1 2 3 4")); /* sequence numbers did not move */
	r = talk(a, "a6 NOOP\r\n");
	CHECK(has(r, "* 2 EXPUNGE"));
	CHECK(strstr(r, "* 2 EXPUNGE") < strstr(r, "a6 OK"));
	r = talk(a, "a7 SEARCH ALL\r\n");
	CHECK(has(r, "* SEARCH 1 2 3\r\n"));
	/* UID commands may carry expunges */
	CHECK(has(talk(b, "b5 UID STORE 3 +FLAGS (\\Deleted)\r\n"), "b5 OK"));
	CHECK(has(talk(b, "b6 EXPUNGE\r\n"), "b6 OK"));
	r = talk(a, "a8 UID FETCH 1:* FLAGS\r\n");
	CHECK(has(r, "* 2 EXPUNGE"));
	/* poll between commands: EXISTS yes, EXPUNGE no */
	CHECK(has(talk(b, "b6a APPEND INBOX {12+}\r\nSubject: p\r\n\r\n"), "b6a OK"));
	CHECK(has(talk(b, "b6b UID STORE 1 +FLAGS (\\Deleted)\r\nb6c EXPUNGE\r\n"), "b6c OK"));
	imap_session_poll(a);
	r = take(a);
	CHECK(has(r, "* 3 EXISTS"));
	CHECK(strstr(r, "EXPUNGE") == NULL);
	CHECK(has(talk(a, "a8b NOOP\r\n"), "* 1 EXPUNGE"));
	/* IDLE: updates immediately on poll */
	r = talk(a, "a9 IDLE\r\n");
	CHECK(has(r, "+ idling"));
	CHECK(imap_session_idling(a));
	imap_session_poll(a);
	CHECK_STR(take(a), "");
	CHECK(has(talk(b, "b7 APPEND INBOX {12+}\r\nSubject: m\r\n\r\n"), "b7 OK"));
	imap_session_poll(a);
	CHECK(has(take(a), "* 3 EXISTS"));
	CHECK(has(talk(b, "b8 STORE 1 +FLAGS (\\Deleted)\r\nb9 EXPUNGE\r\n"), "b9 OK"));
	imap_session_poll(a);
	CHECK(has(take(a), "* 1 EXPUNGE"));
	r = talk(a, "DONE\r\n");
	CHECK(has(r, "a9 OK"));
	CHECK(!imap_session_idling(a));
	/* IDLE ended by garbage */
	(void)talk(a, "a10 IDLE\r\n");
	CHECK(has(talk(a, "NOPE\r\n"), "a10 BAD"));
	CHECK(!imap_session_idling(a));
	/* QRESYNC: VANISHED instead of EXPUNGE, and on SELECT */
	CHECK(has(talk(a, "a11 ENABLE QRESYNC\r\n"), "* ENABLED QRESYNC"));
	CHECK(has(talk(b, "b10 STORE 1 +FLAGS (\\Deleted)\r\nb11 EXPUNGE\r\n"), "b11 OK"));
	r = talk(a, "a12 NOOP\r\n");
	CHECK(has(r, "* VANISHED "));
	r = talk(a, "a13 SELECT INBOX (QRESYNC (1700000000 1))\r\n");
	CHECK(has(r, "a13 OK"));
	imap_session_free(&a);
	imap_session_free(&b);
	imap_mailstore_free(&shared);
}

/* STATUS or LIST-STATUS with HIGHESTMODSEQ enables CONDSTORE (RFC 7162 §3.1). */
static void
test_status_condstore(void)
{
	struct imap_session *s = selected(new_stub());
	const char *r = talk(s, "a FETCH 1 (FLAGS)\r\n");
	CHECK(strstr(r, "MODSEQ") == NULL);
	r = talk(s, "b STATUS Sent (MESSAGES)\r\n");
	CHECK(strstr(r, "HIGHESTMODSEQ") == NULL);
	CHECK(!s->condstore);
	r = talk(s, "c STATUS Sent (HIGHESTMODSEQ)\r\n");
	CHECK(has(r, "* STATUS \"Sent\" (HIGHESTMODSEQ "));
	CHECK(has(r, "* OK [HIGHESTMODSEQ "));
	CHECK(strstr(r, "* OK [HIGHESTMODSEQ ") < strstr(r, "c OK"));
	CHECK(s->condstore);
	CHECK(has(talk(s, "d FETCH 1 (FLAGS)\r\n"), "MODSEQ ("));
	CHECK(strstr(talk(s, "e STATUS Sent (HIGHESTMODSEQ)\r\n"), "* OK [") == NULL);
	imap_session_free(&s);
	/* LIST RETURN (STATUS (HIGHESTMODSEQ)) in the authenticated state */
	s = logged_in(new_stub());
	r = talk(s, "f LIST \"\" INBOX RETURN (STATUS (HIGHESTMODSEQ))\r\n");
	CHECK(has(r, "f OK"));
	CHECK(s->condstore);
	CHECK(has(talk(s, "g SELECT INBOX\r\n"), "[HIGHESTMODSEQ "));
	CHECK(has(talk(s, "h FETCH 1 (FLAGS)\r\n"), "MODSEQ ("));
	imap_session_free(&s);
}

/* RENAME INBOX to an inferior of itself (RFC 9051 §6.3.6: INBOX's inferiors do not move). */
static void
test_rename_inbox_inferior(void)
{
	struct imap_session *s = logged_in(new_stub());
	CHECK(has(talk(s, "a CREATE INBOX/kid\r\n"), "a OK"));
	CHECK(has(talk(s, "b RENAME INBOX INBOX/old\r\n"), "b OK"));
	CHECK(has(talk(s, "c STATUS INBOX/old (MESSAGES)\r\n"), "MESSAGES 3"));
	CHECK(has(talk(s, "d STATUS INBOX (MESSAGES)\r\n"), "MESSAGES 0"));
	CHECK(has(talk(s, "e STATUS INBOX/kid (MESSAGES)\r\n"), "MESSAGES 0"));
	const char *r = talk(s, "f LIST \"\" INBOX/*\r\n");
	CHECK(has(r, "\"INBOX/old\""));
	CHECK(has(r, "\"INBOX/kid\""));
	CHECK(has(talk(s, "g RENAME INBOX INBOX\r\n"), "g NO"));
	imap_session_free(&s);
}

/* Each advertised extension answers (smoke test of the ones not covered elsewhere). */
static void
test_capabilities_work(void)
{
	struct imap_session *s = selected(new_stub());
	CHECK(has(talk(s, "a UID STORE 2 +FLAGS (\\Deleted)\r\nb UID EXPUNGE 1:2\r\n"),
	          "* 2 EXPUNGE"));
	CHECK(has(talk(s, "c THREAD ORDEREDSUBJECT UTF-8 ALL\r\n"), "* THREAD "));
	CHECK(has(talk(s, "d UID THREAD REFERENCES UTF-8 ALL\r\n"), "d OK"));
	CHECK(has(talk(s, "e UID SORT (REVERSE ARRIVAL) UTF-8 ALL\r\n"), "* SORT 3 1"));
	CHECK(has(talk(s, "f CREATE Arch (USE (\\Archive))\r\n"), "f OK"));
	CHECK(has(talk(s, "g LIST (SPECIAL-USE) \"\" *\r\n"), "\\Archive"));
	CHECK(has(talk(s, "h CREATE Arch/x\r\n"), "h OK"));
	CHECK(has(talk(s, "i LIST \"\" Arch RETURN (CHILDREN)\r\n"), "\\HasChildren"));
	CHECK(has(talk(s, "j SEARCH RETURN (MIN MAX COUNT) ALL\r\n"), "* ESEARCH (TAG \"j\")"));
	CHECK(has(talk(s, "k GETQUOTAROOT INBOX\r\n"), "k OK"));
	CHECK(has(talk(s, "l UNSELECT\r\n"), "l OK"));
	imap_session_free(&s);
}

/* A large APPEND is spooled to a temporary file, never held in the command buffer, and comes
 * back identical; sync and non-sync literals, fed in odd-sized pieces. */
static void
test_append_spooled(void)
{
	struct imap_limits big = lim;
	big.literal_max = 4u << 20;
	big.command_max = 5u << 20;
	struct imap_hooks hooks = {.log = t_log, .now = t_now};
	struct imap_session *s =
	    imap_session_new(&big, &hooks, NULL, new_stub(), true, false, "t2");
	(void)take(s);
	CHECK(has(talk(s, "l LOGIN user@test.example secret\r\ns SELECT INBOX\r\n"), "s OK"));
	size_t n = 1u << 20;
	char *msg = xmalloc(n);
	const char *head = "From: big@a.example\r\nSubject: big\r\n\r\n";
	size_t o = strlen(head);
	memcpy(msg, head, o);
	for (unsigned line = 0; o < n; line++) {
		char l[80];
		int k = snprintf(l, sizeof l, "line %u of the big message %08x\r\n", line,
		                 line * 2654435761u);
		size_t take_n = (size_t)k < n - o ? (size_t)k : n - o;
		memcpy(msg + o, l, take_n);
		o += take_n;
	}
	for (int nonsync = 0; nonsync < 2; nonsync++) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "a%d APPEND INBOX (\\Seen) {%zu%s}\r\n", nonsync, n,
		         nonsync ? "+" : "");
		const char *r = talk(s, cmd);
		if (!nonsync)
			CHECK(has(r, "+ OK"));
		CHECK(s->spool.fd >= 0);
		size_t maxbuf = 0;
		for (size_t off = 0; off < n;) {
			size_t k = n - off < 4093 ? n - off : 4093;
			imap_session_input(s, (const unsigned char *)msg + off, k);
			off += k;
			if (imap_reader_buffered(s->reader) > maxbuf)
				maxbuf = imap_reader_buffered(s->reader);
		}
		CHECK(maxbuf < 200);
		r = talk(s, "\r\n");
		CHECK(has(r, "OK [APPENDUID "));
		CHECK(s->spool.fd < 0);
		CHECK(has(r, nonsync ? "* 5 EXISTS" : "* 4 EXISTS"));
		snprintf(cmd, sizeof cmd, "f%d FETCH %d BODY.PEEK[]\r\n", nonsync, 4 + nonsync);
		r = talk(s, cmd);
		char want[64];
		snprintf(want, sizeof want, "BODY[] {%zu}\r\n", n);
		const char *at = strstr(r, want);
		CHECK(at != NULL);
		if (at != NULL) {
			at += strlen(want);
			CHECK(strlen(at) > n && memcmp(at, msg, n) == 0);
		}
	}
	/* below the threshold nothing is spooled */
	CHECK(has(talk(s, "b APPEND INBOX {5}\r\n"), "+ OK"));
	CHECK(s->spool.fd < 0);
	CHECK(has(talk(s, "hello\r\n"), "b OK [APPENDUID"));
	/* a spooled literal where a mailbox name is expected: BAD, nothing left open */
	char cmd[64];
	snprintf(cmd, sizeof cmd, "c APPEND {%u+}\r\n", IMAP_SPOOL_MIN);
	(void)talk(s, cmd);
	CHECK(s->spool.fd >= 0);
	char *pad = xmalloc(IMAP_SPOOL_MIN);
	memset(pad, 'x', IMAP_SPOOL_MIN);
	imap_session_input(s, (const unsigned char *)pad, IMAP_SPOOL_MIN);
	CHECK(has(talk(s, " {1+}\r\nx\r\n"), "c BAD"));
	CHECK(s->spool.fd < 0);
	/* a spooled literal cut short by the end of the session is cleaned up */
	(void)talk(s, cmd);
	imap_session_input(s, (const unsigned char *)pad, 1000);
	CHECK(s->spool.fd >= 0);
	free(pad);
	free(msg);
	imap_session_free(&s);
}

/* APPEND over quota is refused before the upload; over literal_max too. */
static void
test_append_quota(void)
{
	struct imap_mailstore *shared = new_stub();
	struct imap_session *s = logged_in(fwd_new(shared));
	quota_used = 1000;
	quota_limit = 2000;
	const char *r = talk(s, "a APPEND INBOX {1001}\r\n");
	CHECK(has(r, "a NO [OVERQUOTA]"));
	CHECK(strstr(r, "+ OK") == NULL);
	CHECK(has(talk(s, "b NOOP\r\n"), "b OK")); /* the reader waits for a new command */
	r = talk(s, "c APPEND INBOX (\\Seen) {1000}\r\n");
	CHECK(has(r, "+ OK"));
	CHECK(strstr(r, "c NO") == NULL);
	r = talk(s, "d BAD\r\n"); /* part of the literal: finish it */
	imap_session_free(&s);
	s = logged_in(fwd_new(shared));
	CHECK(has(talk(s, "e APPEND INBOX {3}\r\n"), "+ OK"));
	CHECK(has(talk(s, "abc\r\n"), "e OK [APPENDUID"));
	quota_used = 2000;
	CHECK(has(talk(s, "f APPEND INBOX {1}\r\n"), "f NO [OVERQUOTA]"));
	quota_limit = 0; /* no limit */
	CHECK(has(talk(s, "g APPEND INBOX {1}\r\n"), "+ OK"));
	CHECK(has(talk(s, "x\r\n"), "g OK [APPENDUID"));
	CHECK(has(talk(s, "h APPEND INBOX {100001}\r\n"), "h NO [TOOBIG]"));
	quota_used = 0;
	imap_session_free(&s);
	imap_mailstore_free(&shared);
}

/* IDLE sees changes change_seq does not report (another process) within IMAP_POLL_FULL_S. */
static void
test_idle_out_of_process(void)
{
	struct imap_mailstore *shared = new_stub();
	frozen_seq = true;
	struct imap_session *a = selected(fwd_new(shared));
	struct imap_session *b = logged_in(fwd_new(shared));
	idle_releases = 0;
	CHECK(has(talk(a, "a1 IDLE\r\n"), "+ idling"));
	CHECK(idle_releases == 1);
	CHECK(has(talk(b, "b1 APPEND INBOX {12+}\r\nSubject: n\r\n\r\n"), "b1 OK"));
	imap_session_poll(a); /* change_seq did not move, no time passed: cheap test only */
	CHECK_STR(take(a), "");
	now_val += IMAP_POLL_FULL_S - 1;
	imap_session_poll(a);
	CHECK_STR(take(a), "");
	CHECK(idle_releases == 1);
	now_val += 1;
	imap_session_poll(a); /* a real query now; the connection is given back again */
	CHECK(has(take(a), "* 4 EXISTS"));
	CHECK(idle_releases == 2);
	imap_session_poll(a);
	CHECK_STR(take(a), "");
	CHECK(has(talk(b, "b2 SELECT INBOX\r\nb3 STORE 1 +FLAGS (\\Deleted)\r\nb4 EXPUNGE\r\n"),
	          "b4 OK"));
	now_val += IMAP_POLL_FULL_S;
	imap_session_poll(a);
	CHECK(has(take(a), "* 1 EXPUNGE"));
	CHECK(has(talk(a, "DONE\r\n"), "a1 OK"));
	frozen_seq = false;
	now_val = 1704067200;
	imap_session_free(&a);
	imap_session_free(&b);
	imap_mailstore_free(&shared);
}

int
main(void)
{
	RUN(test_greeting_and_capabilities);
	RUN(test_login_failures);
	RUN(test_authenticate);
	RUN(test_auth_gate_hooks);
	RUN(test_states_and_errors);
	RUN(test_select_examine);
	RUN(test_fetch_store);
	RUN(test_empty_mailbox);
	RUN(test_copy_move_append);
	RUN(test_search_sort_thread);
	RUN(test_misc_commands);
	RUN(test_hostile);
	RUN(test_qresync_searchres);
	RUN(test_byte_at_a_time);
	RUN(test_two_sessions);
	RUN(test_idle_out_of_process);
	RUN(test_status_condstore);
	RUN(test_rename_inbox_inferior);
	RUN(test_append_quota);
	RUN(test_capabilities_work);
	RUN(test_append_spooled);
	free(out_text);
	return test_done("imap_session");
}
