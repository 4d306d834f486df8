/* Declarations shared by the files of src/imap/ (never included from another directory). The
 * session (session.c) owns the connection state and the selected mailbox's view; the mailbox
 * commands (cmd_mailbox.c: LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS,
 * NAMESPACE, GETQUOTA, GETQUOTAROOT, SETQUOTA) need no view, only this command context; reply.c
 * holds the response-formatting helpers every command uses. */
#ifndef LIGHTR_IMAP_PRIVATE_H
#define LIGHTR_IMAP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/mailstore.h"
#include "imap/parser.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/slice.h"

/* What a mailbox command gets from the session. */
struct imap_cmdctx {
	struct imap_mailstore *ms;
	struct buf *out; /* responses are appended here */
	const char *tag; /* the command's tag */
	bool utf8;       /* IMAP4rev2 (or UTF8=ACCEPT) enabled: mailbox names are UTF-8 on the
	                  * wire; else modified UTF-7 (RFC 3501 §5.1.3) */
	bool rev2;       /* IMAP4rev2 enabled (LIST responses differ: no LSUB, STATUS in LIST...) */
	int64_t selected; /* id of the selected mailbox, 0 when none */
	unsigned depth_max;
	/* Set by RENAME/DELETE when they hit the selected mailbox (the session then closes it). */
	bool selected_gone;
	/* Set by STATUS (and LIST RETURN (STATUS ...)) asking for HIGHESTMODSEQ: a CONDSTORE
	 * enabling command (RFC 7162 §3.1); the session turns CONDSTORE on. */
	bool condstore_enable;
};

/* ---- cmd_mailbox.c ----
 * Each parses its arguments from c (positioned after "<verb> "; c may be at its end for
 * argument-less verbs), writes its untagged responses and its tagged completion (OK/NO/BAD)
 * to cx->out. Returns 0, or -1 when it replied BAD (the session counts protocol errors). */
int imap_cmd_list(struct imap_cmdctx *cx, struct imap_cursor *c, bool lsub);
int imap_cmd_create(struct imap_cmdctx *cx, struct imap_cursor *c);
int imap_cmd_delete(struct imap_cmdctx *cx, struct imap_cursor *c);
int imap_cmd_rename(struct imap_cmdctx *cx, struct imap_cursor *c);
int imap_cmd_subscribe(struct imap_cmdctx *cx, struct imap_cursor *c, bool on);
/* STATUS (RFC 9051 §6.3.11, incl. SIZE, HIGHESTMODSEQ (RFC 7162), APPENDLIMIT (RFC 7889) is
 * not a STATUS item but DELETED is). */
int imap_cmd_status(struct imap_cmdctx *cx, struct imap_cursor *c);
int imap_cmd_namespace(struct imap_cmdctx *cx, struct imap_cursor *c);
int imap_cmd_getquota(struct imap_cmdctx *cx, struct imap_cursor *c);
int imap_cmd_getquotaroot(struct imap_cmdctx *cx, struct imap_cursor *c);
int imap_cmd_setquota(struct imap_cmdctx *cx, struct imap_cursor *c);

/* Reads a mailbox argument (astring) from c and turns it into the stored UTF-8 form: modified
 * UTF-7 decoded unless cx->utf8, "INBOX" in any case → "INBOX" (also "inbox/x" → "INBOX/x"),
 * checked against IMAP_MAILBOX_NAME_MAX / IMAP_MAILBOX_DEPTH, no empty levels, no leading or
 * trailing "/", no control characters. Returns 0; -1 with *bad_r = true (syntax: BAD) or false
 * (bad name: NO [CANNOT]) and *why_r static text. name_r is reset first. */
int imap_mailbox_arg(struct imap_cmdctx *cx, struct imap_cursor *c, struct buf *name_r, bool *bad_r,
                     const char **why_r);
/* Appends a stored UTF-8 mailbox name in wire form (modified UTF-7 unless utf8) as a quoted
 * string, or a literal when it cannot be quoted. */
void imap_mailbox_out(struct buf *out, const char *name, bool utf8);

/* ---- reply.c ---- */
/* "<tag> <status> [code] text\r\n"; code may be NULL ("TRYCREATE", "NONEXISTENT"...). */
void imap_reply_tagged(struct buf *out, const char *tag, const char *status, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Tagged NO for a failed mailstore operation: response code from err->code (NONEXISTENT or
 * TRYCREATE when trycreate, ALREADYEXISTS, OVERQUOTA, CANNOT, HASCHILDREN, SERVERBUG) and
 * err->msg as text (storage internals are not shown to the client for EINTERNAL). */
void imap_reply_ms_error(struct buf *out, const char *tag, const struct err *err, bool trycreate);
/* An IMAP string for arbitrary bytes: quoted when possible (no CR/LF/NUL, <= 1024 bytes,
 * 8-bit only when utf8), else a literal "{n}\r\n..." (RFC 9051 §4.3). NIL for NULL. */
void imap_string_out(struct buf *out, const char *s, size_t len, bool utf8);
/* astring: atom when possible, else imap_string_out. */
void imap_astring_out(struct buf *out, const char *s, bool utf8);

/* ---- search.c: helpers shared with sort.c and thread.c ----
 * imap_search_load_header: ops->meta of uid into *meta_r (the caller deinits it on success) and
 * the message's top-level header bytes (header_len prefix included, blank line included)
 * appended to hdr_r. -1 with err (ENONEXISTENT when the message vanished).
 * imap_search_date_parse: an RFC 5322 date-time (§3.3, obsolete forms of §4.3 too): *t_r unix
 * seconds (UTC), *day_r the days since the epoch of the date as written, ignoring time and
 * zone (what SENTBEFORE/SENTON/SENTSINCE compare, RFC 9051 §6.4.4). false when unparsable.
 * imap_search_sent_date: the first Date: field of hdr parsed, or fallback (the internal date,
 * RFC 5256 §2.2); *day_r (may be NULL) as above. */
int imap_search_load_header(struct imap_mailstore *ms, int64_t mailbox, uint32_t uid,
                            struct imap_ms_meta *meta_r, struct buf *hdr_r, struct err *err);
bool imap_search_date_parse(struct slice v, int64_t *t_r, int64_t *day_r);
int64_t imap_search_sent_date(const struct buf *hdr, int64_t fallback, int64_t *day_r);

#endif
