/* IMAP session core: creation, the input loop over the command reader (pre-auth then post-auth
 * limits, "+ OK" continuations, refused literals), the const command table with its allowed
 * states and flags, tagged/untagged replies with error accounting, capabilities, and the
 * selected mailbox's view with its synchronisation rules (RFC 9051 §5.2-5.5, §7.5.1). The
 * commands live in cmd_auth.c, cmd_select.c, cmd_message.c and cmd_mailbox.c. An APPEND
 * literal of IMAP_SPOOL_MIN bytes or more is diverted by the reader into an unlinked temporary
 * file (the mailstore's spool directory) and handed to ops->append mapped read-only, so it never
 * sits in heap memory. See imap.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "session_private.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---- table ---- */

enum {
	V_UID = 1,     /* may follow "UID " */
	V_NOUID = 2,   /* only without "UID " */
	V_EXPUNGE = 4, /* pending expunges may be announced after it (RFC 9051 §7.5.1) */
	V_NOSYNC = 8,  /* no view update after it */
};

typedef void (*imap_run_fn)(struct imap_session *s, struct imap_call *k);

struct imap_verb {
	const char *name;
	unsigned states; /* IST(...) mask */
	unsigned flags;
	imap_run_fn run;
};

#define ANY      (IST(NOT_AUTH) | IST(AUTH) | IST(SELECTED))
#define AUTHED   (IST(AUTH) | IST(SELECTED))
#define SELECTED IST(SELECTED)

/* FETCH, STORE, SEARCH (and SORT/THREAD, COPY, MOVE which also use sequence numbers) never
 * announce expunges unless sent as UID commands. */
static const struct imap_verb verbs[] = {
    /* name           states        flags                          run */
    {"CAPABILITY", ANY, V_NOUID | V_EXPUNGE, imap_cmd_capability},
    {"NOOP", ANY, V_NOUID | V_EXPUNGE, imap_cmd_noop},
    {"LOGOUT", ANY, V_NOUID | V_NOSYNC, imap_cmd_logout},
    {"STARTTLS", IST(NOT_AUTH), V_NOUID | V_NOSYNC, imap_cmd_starttls},
    {"LOGIN", IST(NOT_AUTH), V_NOUID | V_NOSYNC, imap_cmd_login},
    {"AUTHENTICATE", IST(NOT_AUTH), V_NOUID | V_NOSYNC, imap_cmd_authenticate},
    {"ID", ANY, V_NOUID | V_EXPUNGE, imap_cmd_id},
    {"ENABLE", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_enable},
    {"COMPRESS", AUTHED, V_NOUID | V_NOSYNC, imap_cmd_compress},
    {"IDLE", AUTHED, V_NOUID | V_NOSYNC, imap_cmd_idle},
    {"SELECT", AUTHED, V_NOUID | V_NOSYNC, imap_cmd_select},
    {"EXAMINE", AUTHED, V_NOUID | V_NOSYNC, imap_cmd_select},
    {"CREATE", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"DELETE", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"RENAME", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"SUBSCRIBE", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"UNSUBSCRIBE", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"LIST", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"LSUB", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"STATUS", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"NAMESPACE", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"GETQUOTA", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"GETQUOTAROOT", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"SETQUOTA", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_mailbox},
    {"APPEND", AUTHED, V_NOUID | V_EXPUNGE, imap_cmd_append},
    {"CHECK", SELECTED, V_NOUID | V_EXPUNGE, imap_cmd_check},
    {"CLOSE", SELECTED, V_NOUID | V_NOSYNC, imap_cmd_close},
    {"UNSELECT", SELECTED, V_NOUID | V_NOSYNC, imap_cmd_unselect},
    {"EXPUNGE", SELECTED, V_UID | V_EXPUNGE, imap_cmd_expunge},
    {"FETCH", SELECTED, V_UID, imap_cmd_fetch},
    {"STORE", SELECTED, V_UID, imap_cmd_store},
    {"COPY", SELECTED, V_UID, imap_cmd_copy},
    {"MOVE", SELECTED, V_UID, imap_cmd_copy},
    {"SEARCH", SELECTED, V_UID, imap_cmd_search},
    {"SORT", SELECTED, V_UID, imap_cmd_search},
    {"THREAD", SELECTED, V_UID, imap_cmd_search},
};

static const char *
state_name(enum imap_state st)
{
	static const char *const names[] = {
	    [IMAP_STATE_NOT_AUTH] = "not-authenticated",
	    [IMAP_STATE_AUTH] = "authenticated",
	    [IMAP_STATE_SELECTED] = "selected",
	    [IMAP_STATE_LOGOUT] = "logout",
	};
	return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

void
imap_enter(struct imap_session *s, enum imap_state to)
{
	if (s->state == to)
		return;
	log_debug("imap %s state %s -> %s", s->id, state_name(s->state), state_name(to));
	s->state = to;
}

void
imap_log(struct imap_session *s, const char *event, const char *fmt, ...)
{
	if (s->hooks.log == NULL)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	const char *l = log_session_line(line, sizeof line, "imap", s->id, event, fmt, ap);
	va_end(ap);
	if (l != NULL)
		s->hooks.log(s->hooks.ctx, l);
}

const char *
imap_hostname(const struct imap_session *s)
{
	return s->lim.hostname ? s->lim.hostname : "localhost";
}

int64_t
imap_now_s(const struct imap_session *s)
{
	if (s->hooks.now != NULL)
		return s->hooks.now(s->hooks.ctx);
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return (int64_t)time(NULL);
	return (int64_t)ts.tv_sec;
}

void
imap_tagged(struct imap_session *s, const char *status, const char *code, const char *fmt, ...)
{
	(void)buf_printf(&s->out, "%s %s ", s->tag[0] ? s->tag : "*", status);
	if (code != NULL)
		(void)buf_printf(&s->out, "[%s] ", code);
	va_list ap;
	va_start(ap, fmt);
	char text[512];
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	(void)buf_append_str(&s->out, text);
	(void)buf_append(&s->out, "\r\n", 2);
}

void
imap_bye(struct imap_session *s, const char *text)
{
	if (s->done)
		return;
	(void)buf_printf(&s->out, "* BYE %s\r\n", text);
	s->done = true;
	s->pending = IMAP_PEND_NONE;
	imap_enter(s, IMAP_STATE_LOGOUT);
}

static void
count_error(struct imap_session *s)
{
	s->errors++;
	if (s->lim.max_errors != 0 && s->errors >= s->lim.max_errors) {
		imap_log(s, "too-many-errors", "errors=%u", s->errors);
		imap_bye(s, "Too many invalid commands");
	}
}

int
imap_bad(struct imap_session *s, const char *text)
{
	imap_tagged(s, "BAD", NULL, "%s", text ? text : "Syntax error");
	count_error(s);
	return -1;
}

static bool
auth_allowed(const struct imap_session *s)
{
	return s->tls || s->lim.plaintext_auth_ok;
}

void
imap_capabilities(const struct imap_session *s, struct buf *out)
{
	(void)buf_append_str(out, "IMAP4rev1 IMAP4rev2");
	if (s->state == IMAP_STATE_NOT_AUTH) {
		if (!s->tls && s->starttls_offered)
			(void)buf_append_str(out, " STARTTLS");
		if (auth_allowed(s))
			(void)buf_append_str(out, " AUTH=PLAIN");
		else
			(void)buf_append_str(out, " LOGINDISABLED");
		(void)buf_append_str(out, " SASL-IR LITERAL- ID ENABLE IDLE");
		return;
	}
	(void)buf_append_str(out, " SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE"
	                          " CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE"
	                          " CREATE-SPECIAL-USE ESEARCH SEARCHRES CONDSTORE QRESYNC QUOTA"
	                          " QUOTA=RES-STORAGE");
	(void)buf_printf(out, " APPENDLIMIT=%llu", (unsigned long long)s->lim.literal_max);
	(void)buf_append_str(out, " SORT THREAD=REFERENCES THREAD=ORDEREDSUBJECT");
	if (!s->compress_active && !s->wants_compress)
		(void)buf_append_str(out, " COMPRESS=DEFLATE");
}

void
imap_cmdctx_init(struct imap_session *s, struct imap_cmdctx *cx)
{
	*cx = (struct imap_cmdctx){
	    .ms = s->ms,
	    .out = &s->out,
	    .tag = s->tag,
	    .utf8 = s->utf8 || s->rev2,
	    .rev2 = s->rev2,
	    .selected = s->state == IMAP_STATE_SELECTED ? s->sel.id : 0,
	    .depth_max = s->lim.depth_max ? s->lim.depth_max : 16,
	};
}

void
imap_reader_limits_apply(struct imap_session *s)
{
	/* RFC 7888: LITERAL- before login (non-synchronizing literals of at most 4096 octets, so an
	 * unauthenticated client cannot push large data unasked), LITERAL+ after. */
	struct imap_reader_limits rl = {.literal_plus = s->state != IMAP_STATE_NOT_AUTH};
	if (s->state == IMAP_STATE_NOT_AUTH) {
		rl.line_max = s->lim.preauth_line_max ? s->lim.preauth_line_max : 8192;
		rl.literal_max = s->lim.preauth_literal_max ? s->lim.preauth_literal_max : 1024;
		/* LOGIN: two literals and a line */
		rl.command_max = rl.line_max + 2 * rl.literal_max + 64;
	} else {
		rl.line_max = s->lim.line_max ? s->lim.line_max : IMAP_LINE_MAX_DEFAULT;
		rl.literal_max = s->lim.literal_max ? s->lim.literal_max : 64u << 20;
		rl.command_max =
		    s->lim.command_max ? s->lim.command_max : rl.line_max + rl.literal_max + 4096;
	}
	imap_reader_set_limits(s->reader, &rl);
}

/* Copies src into dst keeping only bytes safe in a log line. */
static void
copy_safe(char *dst, size_t n, const char *src)
{
	size_t o = 0;
	for (; src && *src && o + 1 < n; src++) {
		unsigned char c = (unsigned char)*src;
		dst[o++] = c > 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
	}
	dst[o] = '\0';
}

/* ---- spooled APPEND literals ---- */

static bool head_is_append(const struct imap_session *s);

static void
spool_close(struct imap_session *s)
{
	struct imap_spool *sp = &s->spool;
	if (sp->map != NULL)
		(void)munmap(sp->map, sp->map_len);
	if (sp->fd >= 0)
		(void)close(sp->fd);
	*sp = (struct imap_spool){.fd = -1};
}

/* An unlinked temporary file in the mailstore's spool directory: O_TMPFILE, or mkostemp and
 * unlink where the file system lacks it. -1 on failure (logged). */
static int
spool_open(struct imap_session *s)
{
	const char *dir = s->ms->ops->spool_dir ? s->ms->ops->spool_dir(s->ms) : NULL;
	if (dir == NULL || *dir == '\0')
		dir = P_tmpdir;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/.lightr-append-XXXXXX", dir);
	if (n < 0 || (size_t)n >= sizeof path)
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		log_msg_errno(LOG_WARN, "imap %s spool-open dir=%s", s->id, dir);
		return -1;
	}
	(void)unlink(path);
	return fd;
}

static int
spool_sink(void *ctx, const unsigned char *p, size_t n)
{
	struct imap_session *s = ctx;
	struct imap_spool *sp = &s->spool;
	while (n > 0) {
		ssize_t w = write(sp->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_msg_errno(LOG_WARN, "imap %s spool-write", s->id);
			sp->failed = true;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		sp->written += (uint64_t)w;
	}
	return 0;
}

/* A literal of lit bytes was announced and will be read: an APPEND message from IMAP_SPOOL_MIN
 * goes to a temporary file instead of memory. Without a file it is buffered as usual. */
static void
maybe_spool(struct imap_session *s, uint64_t lit)
{
	if (lit < IMAP_SPOOL_MIN || s->state == IMAP_STATE_NOT_AUTH || s->spool.fd >= 0 ||
	    !head_is_append(s))
		return;
	s->spool.fd = spool_open(s);
	if (s->spool.fd < 0)
		return;
	if (!imap_reader_divert(s->reader, spool_sink, s))
		spool_close(s);
}

const unsigned char *
imap_spool_map(struct imap_session *s, uint64_t len, const char **why_r)
{
	struct imap_spool *sp = &s->spool;
	*why_r = "Cannot store the message";
	if (sp->fd < 0 || sp->failed || sp->written != len || len == 0 || len > SIZE_MAX)
		return NULL;
	if (sp->map == NULL) {
		void *m = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, sp->fd, 0);
		if (m == MAP_FAILED) {
			log_msg_errno(LOG_WARN, "imap %s spool-map", s->id);
			return NULL;
		}
		sp->map = m;
		sp->map_len = (size_t)len;
	}
	return sp->map;
}

static int
no_flush(void *ctx, struct buf *out)
{
	return 0;
}

struct imap_session *
imap_session_new(const struct imap_limits *limits, const struct imap_hooks *hooks,
                 const struct imap_conn_info *info, struct imap_mailstore *ms, bool tls_active,
                 bool starttls_offered, const char *id)
{
	ASSERT(ms != NULL && ms->ops != NULL);
	struct imap_session *s = xcalloc(1, sizeof *s);
	s->lim = *limits;
	if (hooks)
		s->hooks = *hooks;
	if (s->hooks.flush == NULL)
		s->hooks.flush = no_flush;
	if (info)
		s->info = *info;
	s->ms = ms;
	copy_safe(s->id, sizeof s->id, id ? id : "-");
	s->tls = tls_active;
	s->starttls_offered = starttls_offered && !tls_active;
	s->state = IMAP_STATE_NOT_AUTH;
	s->spool.fd = -1;
	buf_init(&s->out, 0);
	s->reader = imap_reader_new(&(struct imap_reader_limits){
	    .line_max = 8192, .literal_max = 1024, .command_max = 16384, .literal_plus = true});
	imap_reader_literal_events(s->reader, true);
	imap_reader_limits_apply(s);
	(void)buf_append_str(&s->out, "* OK [CAPABILITY ");
	imap_capabilities(s, &s->out);
	(void)buf_printf(&s->out, "] %s Lightr ready\r\n", imap_hostname(s));
	return s;
}

void
imap_session_free(struct imap_session **sp)
{
	struct imap_session *s = sp ? *sp : NULL;
	if (s == NULL)
		return;
	*sp = NULL;
	imap_view_clear(&s->sel);
	spool_close(s);
	x_free(&s->saved);
	x_free(&s->user);
	imap_reader_free(&s->reader);
	buf_deinit(&s->out);
	if (s->ms != NULL && s->ms->ops->free != NULL)
		s->ms->ops->free(s->ms);
	free(s);
}

/* ---- dispatch ---- */

static const struct imap_verb *
find_verb(struct slice name)
{
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (slice_eq_nocase(name, verbs[i].name))
			return &verbs[i];
	return NULL;
}

static void
set_tag(struct imap_session *s, struct slice tag)
{
	size_t n = tag.len < IMAP_TAG_MAX ? tag.len : 0;
	memcpy(s->tag, tag.p, n);
	s->tag[n] = '\0';
}

void
imap_before_tagged(struct imap_session *s, void (*fn)(struct imap_session *s))
{
	struct buf *o = &s->out;
	size_t tl = strlen(s->tag);
	size_t start = o->len >= 2 ? o->len - 2 : 0;
	while (start > 0 && o->data[start - 1] != '\n')
		start--;
	if (tl == 0 || o->len - start < tl + 1 || memcmp(o->data + start, s->tag, tl) != 0 ||
	    o->data[start + tl] != ' ') {
		fn(s);
		return;
	}
	size_t n = o->len - start;
	char *line = xmalloc(n);
	memcpy(line, o->data + start, n);
	o->len = start;
	fn(s);
	(void)buf_append(o, line, n);
	free(line);
}

static void
sync_now(struct imap_session *s)
{
	imap_view_sync(s, s->expunge_ok, false);
}

/* Updates of the view go out while the command is still in progress, i.e. before its tagged
 * reply (RFC 9051 §7.5.1: no EXPUNGE when no command is in progress). */
static void
sync_before_tagged(struct imap_session *s)
{
	imap_before_tagged(s, sync_now);
}

static void
run_command(struct imap_session *s, struct slice cmd)
{
	struct imap_cursor c;
	imap_cur_init(&c, cmd, s->lim.depth_max ? s->lim.depth_max : 16);
	size_t doff;
	uint64_t dlen;
	if (imap_reader_diverted(s->reader, &doff, &dlen))
		imap_cur_set_diverted(&c, doff, dlen);
	struct slice tag, name;
	s->tag[0] = '\0';
	if (!imap_cur_tag(&c, &tag) || tag.len > IMAP_TAG_MAX) {
		(void)imap_bad(s, "Invalid tag");
		return;
	}
	set_tag(s, tag);
	if (!imap_cur_sp(&c) || !imap_cur_atom(&c, &name)) {
		(void)imap_bad(s, "Missing command");
		return;
	}
	bool uid = false;
	if (slice_eq_nocase(name, "UID")) {
		uid = true;
		if (!imap_cur_sp(&c) || !imap_cur_atom(&c, &name)) {
			(void)imap_bad(s, "Missing command after UID");
			return;
		}
	}
	const struct imap_verb *v = find_verb(name);
	if (v == NULL || (uid && !(v->flags & V_UID))) {
		(void)imap_bad(s, "Unknown command");
		return;
	}
	if (!(v->states & (1u << s->state))) {
		(void)imap_bad(s, s->state == IMAP_STATE_NOT_AUTH ? "Log in first"
		                  : s->state == IMAP_STATE_AUTH   ? "No mailbox selected"
		                                                  : "Command not allowed now");
		return;
	}
	/* arguments start after one SP; argument-less commands have none */
	if (!imap_cur_at_end(&c) && !imap_cur_sp(&c)) {
		(void)imap_bad(s, "Syntax error after command name");
		return;
	}
	struct imap_call k = {.tag = s->tag, .verb = v->name, .uid = uid, .c = &c};
	s->expunge_ok = uid || (v->flags & V_EXPUNGE);
	enum imap_state before = s->state;
	v->run(s, &k);
	if (!(v->flags & V_NOSYNC) && s->state == IMAP_STATE_SELECTED &&
	    before == IMAP_STATE_SELECTED && !s->done && s->pending == IMAP_PEND_NONE)
		sync_before_tagged(s);
}

static void
head_track(struct imap_session *s, const unsigned char *in, size_t n)
{
	size_t room = sizeof s->head - s->head_len;
	if (n > room)
		n = room;
	memcpy(s->head + s->head_len, in, n);
	s->head_len += n;
}

/* "tag [UID] APPEND" at the start of the command being read. */
static bool
head_is_append(const struct imap_session *s)
{
	const char *p = s->head, *end = s->head + s->head_len;
	while (p < end && *p != ' ')
		p++;
	if (p < end)
		p++;
	return (size_t)(end - p) >= 7 && strncasecmp(p, "APPEND ", 7) == 0;
}

/* APPEND of a literal of lit bytes would put the account over its quota (RFC 9208 §5.3: the
 * upload is refused before it starts). A failure to read the quota lets the store decide. */
static bool
append_over_quota(struct imap_session *s, uint64_t lit)
{
	if (s->ms->ops->quota == NULL)
		return false;
	uint64_t used = 0, limit = 0, messages = 0;
	struct err err = {0};
	if (s->ms->ops->quota(s->ms, &used, &limit, &messages, &err) < 0)
		return false;
	return limit != 0 && (used >= limit || lit > limit - used);
}

/* A synchronizing literal was announced: "+ OK" unless the command it belongs to is already
 * known to be unknown or out of state, in which case the literal is refused with BAD, or an
 * APPEND that the quota cannot hold (NO [OVERQUOTA]): the client never sends it (saves the
 * bandwidth of a refused upload). */
static bool
continue_ok(struct imap_session *s, uint64_t lit)
{
	struct imap_cursor c;
	struct slice tag, name;
	/* the head holds the command up to the literal or its first IMAP_HEAD_MAX bytes */
	const char *end = memchr(s->head, '{', s->head_len);
	size_t len = end ? (size_t)(end - s->head) : s->head_len;
	imap_cur_init(&c, slice_make(s->head, len), 1);
	if (!imap_cur_tag(&c, &tag) || tag.len > IMAP_TAG_MAX || !imap_cur_sp(&c) ||
	    !imap_cur_atom(&c, &name) || (imap_cur_peek(&c) != ' ' && end == NULL))
		return true; /* not enough seen to judge: the command will be checked whole */
	bool uid = slice_eq_nocase(name, "UID");
	if (uid && (!imap_cur_sp(&c) || !imap_cur_atom(&c, &name) ||
	            (imap_cur_peek(&c) != ' ' && end == NULL)))
		return true;
	const struct imap_verb *v = find_verb(name);
	if (v != NULL && (!uid || (v->flags & V_UID)) && (v->states & (1u << s->state))) {
		if (v->run != imap_cmd_append || !append_over_quota(s, lit))
			return true;
		set_tag(s, tag);
		imap_reader_refuse_literal(s->reader);
		imap_log(s, "append-overquota", "size=%llu", (unsigned long long)lit);
		imap_tagged(s, "NO", "OVERQUOTA", "Quota exceeded");
		return false;
	}
	set_tag(s, tag);
	imap_reader_refuse_literal(s->reader);
	(void)imap_bad(s, v == NULL || uid ? "Unknown command" : "Command not allowed now");
	return false;
}

static void
head_tag(struct imap_session *s, struct slice cmd_tag)
{
	s->tag[0] = '\0';
	if (cmd_tag.len > 0 && cmd_tag.len <= IMAP_TAG_MAX) {
		struct imap_cursor c;
		struct slice t;
		imap_cur_init(&c, cmd_tag, 1);
		if (imap_cur_tag(&c, &t))
			set_tag(s, t);
	}
}

static void
line_event(struct imap_session *s, enum imap_read r, struct slice cmd, uint64_t lit)
{
	if (s->pending != IMAP_PEND_NONE) {
		/* an over-long AUTHENTICATE response or IDLE line */
		snprintf(s->tag, sizeof s->tag, "%s", s->pend_tag);
		s->pending = IMAP_PEND_NONE;
		(void)imap_bad(s, "Line too long");
		return;
	}
	head_tag(s, cmd);
	if (r == IMAP_READ_LINE_LONG) {
		imap_log(s, "bad-line", "error=\"line too long\"");
		(void)imap_bad(s, "Command line too long");
		return;
	}
	imap_log(s, "bad-literal", "size=%llu", (unsigned long long)lit);
	if (head_is_append(s) && s->state != IMAP_STATE_NOT_AUTH) {
		/* RFC 7889 §4 */
		imap_tagged(s, "NO", "TOOBIG", "Message too large (limit %llu bytes)",
		            (unsigned long long)s->lim.literal_max);
		return;
	}
	(void)imap_bad(s, "Literal too large");
}

void
imap_session_input(struct imap_session *s, const unsigned char *in, size_t len)
{
	s->delay_ms = 0;
	while (len > 0 && !s->done && !s->wants_tls && !s->wants_compress) {
		size_t used = 0;
		struct slice cmd = {NULL, 0};
		uint64_t lit = 0;
		enum imap_read r = imap_reader_feed(s->reader, in, len, &used, &cmd, &lit);
		ASSERT(used <= len);
		head_track(s, in, used);
		in += used;
		len -= used;
		switch (r) {
		case IMAP_READ_NEED_MORE:
			if (used == 0)
				return; /* the reader wants nothing more (cannot happen) */
			break;
		case IMAP_READ_CONTINUE:
			if (continue_ok(s, lit)) {
				maybe_spool(s, lit);
				(void)buf_append_str(&s->out, "+ OK\r\n");
			} else {
				s->head_len = 0;
			}
			break;
		case IMAP_READ_LITERAL:
			maybe_spool(s, lit);
			break;
		case IMAP_READ_COMMAND:
			s->head_len = 0;
			if (s->pending == IMAP_PEND_AUTH)
				imap_auth_line(s, cmd);
			else if (s->pending == IMAP_PEND_IDLE)
				imap_idle_line(s, cmd);
			else
				run_command(s, cmd);
			spool_close(s);
			break;
		case IMAP_READ_LINE_LONG:
		case IMAP_READ_LITERAL_BIG:
			line_event(s, r, cmd, lit);
			s->head_len = 0;
			spool_close(s);
			break;
		}
	}
	if (s->wants_tls || s->wants_compress) {
		(void)imap_reader_discard(s->reader);
		spool_close(s);
	}
}

struct buf *
imap_session_output(struct imap_session *s)
{
	return &s->out;
}

bool
imap_session_wants_tls(const struct imap_session *s)
{
	return s->wants_tls;
}

void
imap_session_tls_started(struct imap_session *s)
{
	s->tls = true;
	s->starttls_offered = false;
	if (!s->wants_tls)
		return;
	/* RFC 9051 §6.2.1: forget everything learnt before TLS (capabilities change) */
	s->wants_tls = false;
	(void)imap_reader_discard(s->reader);
	s->head_len = 0;
}

bool
imap_session_wants_compress(const struct imap_session *s)
{
	return s->wants_compress;
}

void
imap_session_compress_started(struct imap_session *s)
{
	s->wants_compress = false;
	s->compress_active = true;
}

unsigned
imap_session_delay_ms(struct imap_session *s)
{
	unsigned d = s->delay_ms;
	s->delay_ms = 0;
	return d;
}

bool
imap_session_idling(const struct imap_session *s)
{
	return s->pending == IMAP_PEND_IDLE && !s->done;
}

int64_t
imap_session_mailbox(const struct imap_session *s)
{
	return s->state == IMAP_STATE_SELECTED ? s->sel.id : 0;
}

void
imap_session_poll(struct imap_session *s)
{
	if (s->done || s->state != IMAP_STATE_SELECTED)
		return;
	/* change_seq moves only for this process's writes: another process (the CLI) is seen by
	 * a real query, done at least every IMAP_POLL_FULL_S (the driver polls every ~30 s) */
	int64_t now = imap_now_s(s);
	bool force = now - s->sel.checked_at >= IMAP_POLL_FULL_S || now < s->sel.checked_at;
	/* during IDLE everything goes out at once; between commands EXISTS and FETCH FLAGS may,
	 * but never an EXPUNGE (RFC 9051 §7.5.1: no command in progress) */
	if (s->pending == IMAP_PEND_IDLE) {
		/* a query takes the thread's database connection again: IDLE holds none */
		if (imap_view_sync(s, true, force) && s->ms->ops->idle_release != NULL)
			s->ms->ops->idle_release(s->ms);
	} else if (s->pending == IMAP_PEND_NONE) {
		imap_view_sync(s, false, force);
	}
}

uint64_t
imap_session_timeout_ms(const struct imap_session *s, uint64_t autologout_ms)
{
	if (s->state == IMAP_STATE_NOT_AUTH)
		return 60 * 1000; /* pre-auth: 60 s */
	return autologout_ms; /* the driver's setting (>= 30 min, RFC 9051 §5.4, is config's job) */
}

bool
imap_session_done(const struct imap_session *s)
{
	return s->done;
}

void
imap_session_close(struct imap_session *s, bool shutdown)
{
	if (s->done)
		return;
	imap_log(s, shutdown ? "shutdown" : "timeout", "state=%s", state_name(s->state));
	imap_bye(s, shutdown ? "Server shutting down" : "Autologout; idle for too long");
}

const char *
imap_session_user(const struct imap_session *s)
{
	return s->user;
}

/* ---- the view ---- */

void
imap_view_clear(struct imap_view *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].keywords);
	free(v->v);
	free(v->name);
	memset(v, 0, sizeof *v);
}

long
imap_view_find(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->v[mid].uid == uid)
			return (long)mid;
		if (v->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void
imap_view_remove(struct imap_view *v, size_t i)
{
	ASSERT(i < v->n);
	if (v->v[i].gone)
		v->n_gone--;
	free(v->v[i].keywords);
	memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof v->v[0]);
	v->n--;
}

static void
view_push(struct imap_view *v, const struct imap_ms_msg *m)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->v = xrealloc(v->v, v->cap * sizeof v->v[0]);
	}
	v->v[v->n++] = (struct imap_vmsg){
	    .uid = m->uid,
	    .flags = m->flags,
	    .modseq = m->modseq,
	    .keywords = m->keywords ? xstrdup(m->keywords) : NULL,
	};
}

static bool
str_eq(const char *a, const char *b)
{
	return (a == NULL || *a == '\0') ? (b == NULL || *b == '\0') : (b != NULL && !strcmp(a, b));
}

static void
vmsg_set(struct imap_vmsg *e, const struct imap_ms_msg *m)
{
	e->flags = m->flags;
	e->modseq = m->modseq;
	if (!str_eq(e->keywords, m->keywords)) {
		free(e->keywords);
		e->keywords = m->keywords && *m->keywords ? xstrdup(m->keywords) : NULL;
	}
}

void
imap_view_update(struct imap_session *s, const struct imap_ms_msg *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		long j = imap_view_find(&s->sel, v[i].uid);
		if (j >= 0)
			vmsg_set(&s->sel.v[j], &v[i]);
	}
}

void
imap_fetch_flags_out(struct imap_session *s, size_t i, bool with_uid)
{
	const struct imap_vmsg *e = &s->sel.v[i];
	(void)buf_printf(&s->out, "* %zu FETCH (", i + 1);
	if (with_uid || s->condstore)
		(void)buf_printf(&s->out, "UID %u ", e->uid);
	(void)buf_append_str(&s->out, "FLAGS ");
	imap_fetch_flags(&s->out, e->flags, e->keywords);
	if (s->condstore)
		(void)buf_printf(&s->out, " MODSEQ (%llu)", (unsigned long long)e->modseq);
	(void)buf_append_str(&s->out, ")\r\n");
}

void
imap_condstore_on(struct imap_session *s)
{
	if (s->condstore)
		return;
	s->condstore = true;
	if (s->state == IMAP_STATE_SELECTED)
		(void)buf_printf(&s->out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		                 (unsigned long long)s->sel.highestmodseq);
}

void
imap_view_expunged(struct imap_session *s, const uint32_t *uids, size_t n)
{
	if (n == 0)
		return;
	if (s->qresync) {
		uint32_t *present = xmalloc(n * sizeof *present);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			long j = imap_view_find(&s->sel, uids[i]);
			if (j < 0)
				continue;
			present[k++] = uids[i];
			imap_view_remove(&s->sel, (size_t)j);
		}
		if (k > 0) {
			(void)buf_append_str(&s->out, "* VANISHED ");
			imap_seqset_format(&s->out, present, k);
			(void)buf_append_str(&s->out, "\r\n");
		}
		free(present);
		return;
	}
	for (size_t i = n; i-- > 0;) {
		long j = imap_view_find(&s->sel, uids[i]);
		if (j < 0)
			continue;
		imap_view_remove(&s->sel, (size_t)j);
		(void)buf_printf(&s->out, "* %ld EXPUNGE\r\n", j + 1);
	}
}

static void
announce_gone(struct imap_session *s)
{
	if (s->sel.n_gone == 0)
		return;
	uint32_t *uids = xmalloc(s->sel.n_gone * sizeof *uids);
	size_t k = 0;
	for (size_t i = 0; i < s->sel.n; i++)
		if (s->sel.v[i].gone)
			uids[k++] = s->sel.v[i].uid;
	imap_view_expunged(s, uids, k);
	free(uids);
}

bool
imap_view_sync(struct imap_session *s, bool allow_expunge, bool force)
{
	struct imap_view *v = &s->sel;
	struct imap_mailstore *ms = s->ms;
	if (s->state != IMAP_STATE_SELECTED || s->done)
		return false;
	uint64_t cs = ms->ops->change_seq ? ms->ops->change_seq(ms, v->id) : v->change_seq + 1;
	if (cs == v->change_seq && !force) {
		if (allow_expunge)
			announce_gone(s);
		return false;
	}
	struct err err;
	struct imap_ms_msg *m = NULL;
	size_t n = 0;
	uint32_t uidnext = 0;
	uint64_t hms = 0;
	if (ms->ops->messages(ms, v->id, v->highestmodseq, &m, &n, &uidnext, &hms, &err) < 0) {
		log_warn("imap %s sync-failed msg=\"%s\"", s->id, err.msg);
		return true;
	}
	uint32_t *gone = NULL;
	size_t n_gone = 0;
	if (ms->ops->vanished(ms, v->id, v->highestmodseq, &gone, &n_gone, &err) < 0) {
		log_warn("imap %s sync-failed msg=\"%s\"", s->id, err.msg);
		imap_ms_msgs_free(&m, n);
		return true;
	}
	v->change_seq = cs;
	v->checked_at = imap_now_s(s);
	for (size_t i = 0; i < n_gone; i++) {
		long j = imap_view_find(v, gone[i]);
		if (j >= 0 && !v->v[j].gone) {
			v->v[j].gone = true;
			v->n_gone++;
		}
	}
	free(gone);
	if (allow_expunge)
		announce_gone(s);
	/* new messages (UIDs above every UID of the view), then flag changes */
	size_t before = v->n;
	uint32_t last = v->n ? v->v[v->n - 1].uid : 0;
	bool *changed = n ? xcalloc(n, sizeof *changed) : NULL;
	for (size_t i = 0; i < n; i++) {
		if (m[i].uid > last) {
			view_push(v, &m[i]);
			last = m[i].uid;
			continue;
		}
		long j = imap_view_find(v, m[i].uid);
		if (j < 0 || v->v[j].gone || v->v[j].modseq == m[i].modseq)
			continue;
		bool differ =
		    v->v[j].flags != m[i].flags || !str_eq(v->v[j].keywords, m[i].keywords);
		vmsg_set(&v->v[j], &m[i]);
		changed[i] = differ || s->condstore;
	}
	if (v->n != before)
		(void)buf_printf(&s->out, "* %zu EXISTS\r\n", v->n);
	for (size_t i = 0; i < n; i++) {
		if (!changed[i])
			continue;
		long j = imap_view_find(v, m[i].uid);
		if (j >= 0)
			imap_fetch_flags_out(s, (size_t)j, false);
	}
	free(changed);
	imap_ms_msgs_free(&m, n);
	if (hms > v->highestmodseq)
		v->highestmodseq = hms;
	if (uidnext > v->uidnext)
		v->uidnext = uidnext;
	return true;
}

/* ---- message sets ---- */

int
imap_set_arg(struct imap_session *s, struct imap_call *k, size_t **idx_r, size_t *n_r)
{
	struct imap_view *v = &s->sel;
	struct imap_seqset set;
	imap_seqset_init(&set);
	*idx_r = NULL;
	*n_r = 0;
	if (!imap_cur_seqset(k->c, &set, true)) {
		imap_seqset_deinit(&set);
		return imap_bad(s, k->c->error ? k->c->error : "Invalid sequence set");
	}
	size_t *idx = v->n ? xmalloc(v->n * sizeof *idx) : NULL;
	size_t n = 0;
	if (set.dollar) {
		/* RFC 5182: $ is the saved result (UIDs) */
		for (size_t i = 0; i < s->n_saved; i++) {
			long j = imap_view_find(v, s->saved[i]);
			if (j >= 0)
				idx[n++] = (size_t)j;
		}
		/* saved UIDs are ascending, so are their indices */
	} else if (k->uid) {
		imap_seqset_resolve(&set, v->n ? v->v[v->n - 1].uid : 0);
		for (size_t i = 0; i < v->n; i++)
			if (imap_seqset_contains(&set, v->v[i].uid))
				idx[n++] = i;
	} else {
		/* RFC 9051 §9: a sequence number above the count, or "*" in an empty mailbox, is
		 * an error */
		bool bad = false;
		for (size_t i = 0; i < set.n; i++)
			if ((v->n == 0 && (set.v[i].lo == 0 || set.v[i].hi == 0)) ||
			    set.v[i].lo > v->n || set.v[i].hi > v->n)
				bad = true;
		if (bad) {
			free(idx);
			imap_seqset_deinit(&set);
			return imap_bad(s, "Invalid message sequence number");
		}
		imap_seqset_resolve(&set, (uint32_t)v->n);
		for (size_t i = 0; i < v->n; i++)
			if (imap_seqset_contains(&set, (uint32_t)(i + 1)))
				idx[n++] = i;
	}
	imap_seqset_deinit(&set);
	*idx_r = idx;
	*n_r = n;
	return 0;
}
