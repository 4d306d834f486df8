/* IMAP command framing and argument parsing (RFC 9051 §2.2, §4, §9; RFC 3501 §9; RFC 7888
 * LITERAL+/LITERAL-). Protocol code only: no I/O (DESIGN.md §1).
 *
 * Two layers:
 *  - the reader (struct imap_reader) frames the client's byte stream into whole commands: a
 *    command is one line, or several lines joined by literals ("{N}" / "{N+}" at the end of a
 *    line followed by exactly N bytes). It enforces the line and literal limits and tells the
 *    session when a synchronizing literal needs a "+ " continuation. The command it hands out is
 *    the raw bytes exactly as received, literals inline, CRLFs included except the final one.
 *  - the cursor (struct imap_cursor) walks one framed command with recursive-descent helpers
 *    (atom, astring, string, list, sequence set...). It knows the literal syntax, so a command
 *    handler never sees "{N}" markers.
 *
 * Both are incremental-safe: feeding a stream whole or one byte at a time gives the same
 * commands. Memory is bounded by the limits whatever the client sends. Not thread-safe; one
 * reader per session. */
#ifndef LIGHTR_IMAP_PARSER_H
#define LIGHTR_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/slice.h"

/* RFC 7888 §4: LITERAL- allows non-synchronizing literals of at most 4096 octets. */
#define IMAP_LITERAL_MINUS_MAX 4096
/* RFC 9051 §5.4 recommends accepting command lines of at least 8000 octets. */
#define IMAP_LINE_MAX_DEFAULT 65536

struct imap_reader_limits {
	size_t line_max;    /* longest line (one segment between literals), CRLF included */
	size_t literal_max; /* largest literal (APPEND: the message size limit) */
	size_t command_max; /* whole command: all lines and literals together */
	bool literal_plus;  /* LITERAL+ advertised: any size of "{N+}"; else LITERAL- (<= 4096) */
};

enum imap_read {
	IMAP_READ_NEED_MORE,   /* everything consumed; no complete command yet */
	IMAP_READ_COMMAND,     /* *cmd_r is a complete command (without its final CRLF) */
	IMAP_READ_CONTINUE,    /* a synchronizing literal of *literal_r bytes was announced and is
	                        * within limits: the session must send "+ ..." (or refuse it with
	                        * imap_reader_refuse_literal) before the client sends it */
	IMAP_READ_LINE_LONG,   /* a line over line_max ended (or the command is over command_max);
	                        * everything up to the end of that line was dropped; *cmd_r holds
	                        * the tag when one could be read (len 0 otherwise) */
	IMAP_READ_LITERAL_BIG, /* a literal over literal_max (or a non-synchronizing one over 4096
	                        * without LITERAL+) was announced; *literal_r is its size, *cmd_r
	                        * the tag if known. For a synchronizing literal the rest of the
	                        * command is dropped (the client sends nothing more for it); for a
	                        * non-synchronizing one the reader swallows the N bytes and the rest
	                        * of that command without buffering them. The session replies
	                        * (BAD, or NO [TOOBIG] for APPEND, RFC 7889 §4) */
	IMAP_READ_LITERAL      /* only after imap_reader_literal_events(r, true): a
	                        * non-synchronizing literal of *literal_r bytes was announced and is
	                        * within limits; its bytes follow (the session may divert them with
	                        * imap_reader_divert). Nothing to send. */
};

struct imap_reader;

struct imap_reader *imap_reader_new(const struct imap_reader_limits *lim);
void imap_reader_free(struct imap_reader **rp);
/* New limits (e.g. larger ones after login); they apply from the next command. */
void imap_reader_set_limits(struct imap_reader *r, const struct imap_reader_limits *lim);
/* Line mode: the next line is handed out as a command as-is, without literal detection
 * (AUTHENTICATE responses, IDLE's DONE). Reset after one line. */
void imap_reader_line_mode(struct imap_reader *r);

/* Consumes bytes from in (up to len), sets *used_r, and stops at the first event. Call again
 * with the rest of the input until it returns IMAP_READ_NEED_MORE with everything used.
 * *cmd_r (COMMAND, LINE_LONG, LITERAL_BIG) is valid until the next call on r. */
enum imap_read imap_reader_feed(struct imap_reader *r, const unsigned char *in, size_t len,
                                size_t *used_r, struct slice *cmd_r, uint64_t *literal_r);
/* After IMAP_READ_CONTINUE, when the session refuses the literal (e.g. NO [TOOBIG] on APPEND):
 * the client will not send it, so the command is dropped and the reader waits for a new one. */
void imap_reader_refuse_literal(struct imap_reader *r);
/* Additive: report non-synchronizing literals too (IMAP_READ_LITERAL). Off by default. */
void imap_reader_literal_events(struct imap_reader *r, bool on);
/* Receives the bytes of a diverted literal in order, in pieces of any size. Returns 0, or -1:
 * the rest of the literal is then consumed without calling it again. */
typedef int (*imap_literal_sink)(void *ctx, const unsigned char *p, size_t n);
/* Right after IMAP_READ_CONTINUE (when the session sends "+ ...") or IMAP_READ_LITERAL: the
 * bytes of the literal just announced go to sink instead of the command buffer, so a large
 * APPEND never sits in memory. The framed command then holds the literal's header with no
 * data; imap_reader_diverted tells where. At most one literal per command is diverted. Returns
 * false (nothing changes) when no literal is pending, it is empty, or one was diverted already. */
bool imap_reader_divert(struct imap_reader *r, imap_literal_sink sink, void *ctx);
/* For the command just handed out (IMAP_READ_COMMAND): true when one of its literals was
 * diverted; *off_r is the offset in the command where its data would start, *len_r its size.
 * Give both to the cursor (imap_cur_set_diverted) before parsing the command. */
bool imap_reader_diverted(const struct imap_reader *r, size_t *off_r, uint64_t *len_r);

/* Drops everything buffered (STARTTLS: plaintext after the command must not be used). Returns
 * the number of bytes dropped. */
size_t imap_reader_discard(struct imap_reader *r);
/* Bytes of the current partial command held in memory (for tests of bounded memory). */
size_t imap_reader_buffered(const struct imap_reader *r);

/* ---- cursor over one framed command ----
 * Every imap_cur_* function either consumes one syntactic element and returns true, or consumes
 * nothing, returns false and sets c->error (static text usable in a BAD reply) the first time. */
struct imap_cursor {
	const char *p, *end;
	const char *error; /* first syntax error, NULL while none */
	unsigned depth;    /* current parenthesis nesting */
	unsigned depth_max;
	const char *div_at; /* additive: where a diverted literal's data would be (NULL: none) */
	uint64_t div_len;   /* its size */
};

void imap_cur_init(struct imap_cursor *c, struct slice cmd, unsigned depth_max);
/* Additive: the literal whose data starts at offset off of the command was diverted (see
 * imap_reader_diverted). Every string helper refuses it ("Unexpected large literal"); only
 * imap_cur_diverted takes it. */
void imap_cur_set_diverted(struct imap_cursor *c, size_t off, uint64_t len);
/* Additive: a diverted literal ("{N}" header, data elsewhere) is next: consumes its header and
 * sets *len_r. false (nothing consumed, no error set) otherwise. */
bool imap_cur_diverted(struct imap_cursor *c, uint64_t *len_r);
bool imap_cur_at_end(const struct imap_cursor *c);
/* Next byte without consuming (-1 at end). */
int imap_cur_peek(const struct imap_cursor *c);
/* Exactly one SP. */
bool imap_cur_sp(struct imap_cursor *c);
/* End of command (nothing left); sets "Unexpected extra arguments" otherwise. */
bool imap_cur_eol(struct imap_cursor *c);
/* Consumes ch if it is next (no error when it is not). */
bool imap_cur_skip(struct imap_cursor *c, char ch);
/* tag: 1*<ASTRING-CHAR except "+">. */
bool imap_cur_tag(struct imap_cursor *c, struct slice *tag_r);
/* atom: 1*ATOM-CHAR. */
bool imap_cur_atom(struct imap_cursor *c, struct slice *atom_r);
/* A run of non-space, non-paren bytes that may contain [..] with nested lists inside: FETCH
 * items like BODY.PEEK[HEADER.FIELDS (From To)]<0.100>, and flags like \Seen. */
bool imap_cur_fetch_att(struct imap_cursor *c, struct slice *att_r);
/* string = quoted / literal. Quoted strings are unescaped into out (appended); literal bytes
 * too. *is_literal_r (may be NULL) tells which. Bytes may be 8-bit (UTF-8) in quoted strings
 * (RFC 9051 allows UTF-8 quoted; the caller validates). NUL is refused in quoted strings and
 * literals alike (literal8 is not supported). */
bool imap_cur_string(struct imap_cursor *c, struct buf *out, bool *is_literal_r);
/* astring = 1*ASTRING-CHAR / string. */
bool imap_cur_astring(struct imap_cursor *c, struct buf *out);
/* nstring = string / NIL; *is_nil_r set for NIL. */
bool imap_cur_nstring(struct imap_cursor *c, struct buf *out, bool *is_nil_r);
/* list-mailbox = 1*list-char / string (LIST patterns with % and *). */
bool imap_cur_list_mailbox(struct imap_cursor *c, struct buf *out);
/* number (uint32) / number64 (RFC 9051 §9: up to 2^63-1) / nz-number. */
bool imap_cur_number(struct imap_cursor *c, uint32_t *n_r);
bool imap_cur_number64(struct imap_cursor *c, uint64_t *n_r);
bool imap_cur_nz_number(struct imap_cursor *c, uint32_t *n_r);
/* "(" and ")" with nesting depth checked against depth_max ("Too deeply nested"). */
bool imap_cur_list_open(struct imap_cursor *c);
bool imap_cur_list_close(struct imap_cursor *c);
/* date = date-text / DQUOTE date-text DQUOTE ("1-Feb-1994"); unix seconds at 00:00 UTC. */
bool imap_cur_date(struct imap_cursor *c, int64_t *t_r);
/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE. */
bool imap_cur_date_time(struct imap_cursor *c, int64_t *t_r);
/* A sequence set (RFC 9051 §9 sequence-set, incl. "$" for a saved search result when
 * allow_dollar) parsed into s; "*" is kept symbolic (resolved later against the mailbox). */
struct imap_seqset;
bool imap_cur_seqset(struct imap_cursor *c, struct imap_seqset *s, bool allow_dollar);

/* ---- sequence sets ----
 * Ranges with "*" resolved at use: imap_seqset_resolve maps them onto [1, max] (sequence
 * numbers or UIDs; "*" = max, and for an empty mailbox "*" = 0 so that "*:*" or "1:*" match
 * nothing). Ranges are normalised low..high (RFC 9051 §9: "4:2" == "2:4"). */
#define IMAP_SEQSET_MAX_RANGES 10000 /* per command; more is "BAD Sequence set too long" */
struct imap_seqrange {
	uint32_t lo, hi; /* 0 stands for "*" before resolution */
};
struct imap_seqset {
	struct imap_seqrange *v;
	size_t n, cap;
	bool dollar; /* "$" (RFC 5182 SEARCHRES) */
};
void imap_seqset_init(struct imap_seqset *s);
void imap_seqset_deinit(struct imap_seqset *s);
void imap_seqset_reset(struct imap_seqset *s);
int imap_seqset_add(struct imap_seqset *s, uint32_t lo, uint32_t hi);
/* Replaces "*" by max and sorts/merges the ranges; ranges entirely above max are kept (the
 * caller decides whether that is an error). */
void imap_seqset_resolve(struct imap_seqset *s, uint32_t max);
bool imap_seqset_contains(const struct imap_seqset *s, uint32_t n); /* after resolve */
/* Appends the compact form ("1:3,5,7:9") of a sorted array of numbers (COPYUID, ESEARCH ALL,
 * VANISHED). */
void imap_seqset_format(struct buf *out, const uint32_t *v, size_t n);

/* ---- mailbox names (RFC 3501 §5.1.3 modified UTF-7) ---- */
/* Modified UTF-7 → UTF-8; -1 for invalid input (bad base64, non-canonical, unpaired surrogate,
 * "&" not closed, a printable ASCII char encoded, 8-bit bytes). */
int imap_mutf7_decode(struct slice in, struct buf *out);
/* UTF-8 → modified UTF-7; -1 for invalid UTF-8. */
int imap_mutf7_encode(struct slice in, struct buf *out);

#endif
