/* Internals of the IMAP session shared by session.c (core: input loop, command table, replies,
 * capabilities, the selected mailbox's view and its synchronisation), cmd_auth.c (commands of any
 * state and the not-authenticated state: CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN, AUTHENTICATE,
 * ID, ENABLE, COMPRESS, IDLE), cmd_select.c (SELECT, EXAMINE, CLOSE, UNSELECT, EXPUNGE, CHECK and
 * the mailbox commands handed to cmd_mailbox.c) and cmd_message.c (FETCH, STORE, COPY, MOVE,
 * APPEND, SEARCH, SORT, THREAD). Only for src/imap. */
#ifndef LIGHTR_IMAP_SESSION_PRIVATE_H
#define LIGHTR_IMAP_SESSION_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/sasl.h"
#include "imap/fetch.h"
#include "imap/imap.h"
#include "imap/imap_private.h"
#include "imap/parser.h"

#define IMAP_TAG_MAX      128 /* longer tags are refused (no RFC limit; keeps logs and replies sane) */
#define IMAP_HEAD_MAX     64 /* start of the current command kept to name the verb of a big literal */
#define IMAP_ID_PAIRS_MAX 30 /* RFC 2971 §3.3: at most 30 field-value pairs */
/* imap_session_poll queries the store even when change_seq did not move once this many seconds
 * passed since the last query: change_seq only sees this process's writes, not the CLI's. */
#define IMAP_POLL_FULL_S 25
/* APPEND literals of at least this size are spooled to an unlinked temporary file (mapped
 * read-only for ops->append) instead of the command buffer: policy. */
#define IMAP_SPOOL_MIN (64 * 1024)

enum imap_state {
	IMAP_STATE_NOT_AUTH, /* greeting sent; LOGIN/AUTHENTICATE/STARTTLS expected */
	IMAP_STATE_AUTH,     /* logged in, no mailbox selected */
	IMAP_STATE_SELECTED, /* a mailbox is selected (s->sel) */
	IMAP_STATE_LOGOUT,   /* LOGOUT or BYE sent: input ignored */
};

#define IST(x) (1u << IMAP_STATE_##x)

/* What the next line means when it is not a command. */
enum imap_pending {
	IMAP_PEND_NONE,
	IMAP_PEND_AUTH, /* AUTHENTICATE PLAIN waits for its response line */
	IMAP_PEND_IDLE, /* IDLE waits for DONE */
};

/* One message of the view: sequence number = index + 1. */
struct imap_vmsg {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	char *keywords; /* heap, NULL for none */
	bool gone;      /* expunged by another session; not announced yet */
};

/* The selected mailbox as this session sees it (RFC 9051 §5.2-5.5). */
struct imap_view {
	int64_t id;
	char *name; /* stored UTF-8 form */
	bool readonly;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq; /* what the view reflects; next sync asks for changes above it */
	uint64_t change_seq;    /* ms->ops->change_seq at the last sync */
	int64_t checked_at;     /* imap_now_s() at the last real query of the store */
	struct imap_vmsg *v;
	size_t n, cap;
	size_t n_gone; /* entries with gone set */
};

/* The diverted literal of the command being read (imap_reader_divert). */
struct imap_spool {
	int fd;           /* -1: none */
	bool failed;      /* a write failed: the command fails */
	uint64_t written; /* bytes written so far */
	void *map;        /* imap_spool_map's mapping, NULL when none */
	size_t map_len;
};

struct imap_session {
	struct imap_limits lim;
	struct imap_hooks hooks;
	struct imap_conn_info info;
	struct imap_mailstore *ms;
	char id[64];
	enum imap_state state;
	enum imap_pending pending;
	bool tls, starttls_offered, wants_tls;
	bool wants_compress, compress_active;
	bool rev2, utf8, condstore, qresync; /* ENABLEd (or implied) extensions */
	bool done;
	unsigned errors, auth_failures, delay_ms;
	struct imap_reader *reader;
	struct buf out;
	char tag[IMAP_TAG_MAX + 1];      /* tag of the command being run */
	char pend_tag[IMAP_TAG_MAX + 1]; /* tag of AUTHENTICATE/IDLE waiting for a line */
	char head[IMAP_HEAD_MAX];        /* first bytes of the command being read */
	size_t head_len;
	char *user; /* heap; NULL before login */
	struct imap_view sel;
	uint32_t *saved; /* SEARCHRES $ (RFC 5182), as UIDs */
	size_t n_saved;
	bool expunge_ok; /* the running command may announce expunges (RFC 9051 §7.5.1) */
	struct imap_spool spool;
};

/* The command being run. */
struct imap_call {
	const char *tag;
	const char *verb; /* canonical name from the table */
	bool uid;         /* "UID <verb>" */
	struct imap_cursor *c;
};

/* ---- session.c ---- */
void imap_enter(struct imap_session *s, enum imap_state to);
void imap_log(struct imap_session *s, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *imap_hostname(const struct imap_session *s);
/* Seconds on the session's clock: hooks.now when set (tests pin it), else a monotonic clock.
 * Only differences are meaningful. */
int64_t imap_now_s(const struct imap_session *s);
/* "<tag> OK|NO [code] text\r\n" (code may be NULL). */
void imap_tagged(struct imap_session *s, const char *status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Tagged BAD for the current command; counts a protocol error (BYE at max_errors). Returns -1. */
int imap_bad(struct imap_session *s, const char *text);
/* "* BYE text" and the session is done. */
void imap_bye(struct imap_session *s, const char *text);
/* The capability list for the current state (no "* CAPABILITY" prefix, no CRLF). */
void imap_capabilities(const struct imap_session *s, struct buf *out);
/* Runs fn with the current command's tagged reply (the last line of the output, when it is
 * there) taken off, then puts it back: what fn writes goes out before it. */
void imap_before_tagged(struct imap_session *s, void (*fn)(struct imap_session *s));
/* The command context for cmd_mailbox.c. */
void imap_cmdctx_init(struct imap_session *s, struct imap_cmdctx *cx);
/* The spooled literal of the current command (len bytes, as imap_cur_diverted reported) mapped
 * read-only; NULL with *why_r static text when there is none or it cannot be read. The mapping
 * lives until the command ends. */
const unsigned char *imap_spool_map(struct imap_session *s, uint64_t len, const char **why_r);
/* Sets the reader limits of the current state (pre-auth or post-auth). */
void imap_reader_limits_apply(struct imap_session *s);

/* View. */
void imap_view_clear(struct imap_view *v);
/* Index of uid in the view or -1. */
long imap_view_find(const struct imap_view *v, uint32_t uid);
/* Removes entry i (its keywords freed). */
void imap_view_remove(struct imap_view *v, size_t i);
/* Brings the view up to date with the store and queues EXISTS / FETCH FLAGS, and EXPUNGE or
 * VANISHED when allow_expunge. force: query even when change_seq did not move. Returns true
 * when the store was queried. */
bool imap_view_sync(struct imap_session *s, bool allow_expunge, bool force);
/* Announces the removal of the given UIDs (ascending) from the view: "* n EXPUNGE" per message,
 * highest sequence number first, or one "* VANISHED set" under QRESYNC. */
void imap_view_expunged(struct imap_session *s, const uint32_t *uids, size_t n);
/* Updates view entries from changed messages (STORE, implicit \Seen). */
void imap_view_update(struct imap_session *s, const struct imap_ms_msg *v, size_t n);
/* "* n FETCH (FLAGS (..) [UID u] [MODSEQ (m)])" for view entry i. */
void imap_fetch_flags_out(struct imap_session *s, size_t i, bool with_uid);
/* Turns CONDSTORE on (RFC 7162 §3.1: "* OK [HIGHESTMODSEQ n]" when a mailbox is selected). */
void imap_condstore_on(struct imap_session *s);

/* Message sets: parses a sequence set (or UID set when uid) from c and resolves it against the
 * view into ascending view indices (heap, *idx_r). Returns 0, or -1 after replying BAD. */
int imap_set_arg(struct imap_session *s, struct imap_call *k, size_t **idx_r, size_t *n_r);

/* ---- cmd_auth.c ---- */
void imap_cmd_capability(struct imap_session *s, struct imap_call *k);
void imap_cmd_noop(struct imap_session *s, struct imap_call *k);
void imap_cmd_logout(struct imap_session *s, struct imap_call *k);
void imap_cmd_starttls(struct imap_session *s, struct imap_call *k);
void imap_cmd_login(struct imap_session *s, struct imap_call *k);
void imap_cmd_authenticate(struct imap_session *s, struct imap_call *k);
void imap_auth_line(struct imap_session *s, struct slice line);
void imap_cmd_id(struct imap_session *s, struct imap_call *k);
void imap_cmd_enable(struct imap_session *s, struct imap_call *k);
void imap_cmd_compress(struct imap_session *s, struct imap_call *k);
void imap_cmd_idle(struct imap_session *s, struct imap_call *k);
void imap_idle_line(struct imap_session *s, struct slice line);

/* ---- cmd_select.c ---- */
void imap_cmd_select(struct imap_session *s, struct imap_call *k);
void imap_cmd_close(struct imap_session *s, struct imap_call *k);
void imap_cmd_unselect(struct imap_session *s, struct imap_call *k);
void imap_cmd_expunge(struct imap_session *s, struct imap_call *k);
void imap_cmd_check(struct imap_session *s, struct imap_call *k);
void imap_cmd_mailbox(struct imap_session *s, struct imap_call *k);
/* Drops the selected mailbox (no expunge) and goes back to AUTHENTICATED. */
void imap_deselect(struct imap_session *s);

/* ---- cmd_message.c ---- */
void imap_cmd_fetch(struct imap_session *s, struct imap_call *k);
void imap_cmd_store(struct imap_session *s, struct imap_call *k);
void imap_cmd_copy(struct imap_session *s, struct imap_call *k);
void imap_cmd_append(struct imap_session *s, struct imap_call *k);
void imap_cmd_search(struct imap_session *s, struct imap_call *k);
/* Flag list parsing shared by STORE and APPEND: "(" [flag *(SP flag)] ")" when paren, else
 * flag *(SP flag). Keywords (validated atoms) go space-separated into kw. Returns false with
 * *why_r static text (BAD). */
bool imap_flags_arg(struct imap_cursor *c, bool paren, uint32_t *flags_r, struct buf *kw,
                    const char **why_r);

#endif
