/* FETCH (RFC 9051 §6.4.5, §7.5.2; RFC 3501 §6.4.5; CONDSTORE MODSEQ, RFC 7162 §3.1.4), SEARCH
 * (RFC 9051 §6.4.4 with ESEARCH RFC 4731 and MODSEQ), SORT and THREAD (RFC 5256): parsing the
 * arguments and producing the responses for the messages the session hands in. No I/O besides
 * the mailstore operations (meta, read); the session owns the view (sequence numbers, UIDs,
 * flags) and decides which messages a command covers.
 *
 * Not thread-safe; objects belong to one command of one session. */
#ifndef LIGHTR_IMAP_FETCH_H
#define LIGHTR_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/mailstore.h"
#include "imap/parser.h"
#include "util/buf.h"

/* One message of the session's view, as handed to fetch/search/sort. */
struct imap_msgref {
	uint32_t seq, uid;
	uint32_t flags; /* enum imap_flag bits */
	uint64_t modseq;
	const char *keywords; /* NULL or space-separated; owned by the session's view */
};

/* Where the bytes go: out is the session's output buffer; when it grows past IMAP_OUT_FLUSH the
 * writer calls flush (imap.h hooks), so a 100 MB BODY[] never sits in memory whole. */
struct imap_out {
	struct buf *out;
	int (*flush)(void *ctx, struct buf *out); /* 0 or -1 (connection gone) */
	void *ctx;
};

/* ---- FETCH ---- */
struct imap_fetch_spec; /* the parsed fetch-att list; heap */

/* Parses what follows "FETCH <set> " (a macro ALL/FAST/FULL, one fetch-att, or a list), plus
 * the optional CONDSTORE modifier list "(CHANGEDSINCE n [VANISHED])". uid_cmd adds UID to the
 * items (UID FETCH). Returns NULL with *err_r (static text for BAD) on a syntax error. */
struct imap_fetch_spec *imap_fetch_parse(struct imap_cursor *c, bool uid_cmd, const char **err_r);
void imap_fetch_spec_free(struct imap_fetch_spec **sp);
/* True when a non-PEEK BODY[...] / RFC822 / RFC822.TEXT is asked: the session sets \Seen first
 * (read-write mailbox) and then fetches with with_flags = true. */
bool imap_fetch_sets_seen(const struct imap_fetch_spec *sp);
/* CHANGEDSINCE value (0 = none) and whether VANISHED was asked (QRESYNC, RFC 7162 §3.2.6). */
uint64_t imap_fetch_changedsince(const struct imap_fetch_spec *sp);
bool imap_fetch_vanished(const struct imap_fetch_spec *sp);
/* True when the spec asks for MODSEQ (or CHANGEDSINCE was given): the session then enables
 * CONDSTORE for the rest of the connection (RFC 7162 §3.1). */
bool imap_fetch_wants_modseq(const struct imap_fetch_spec *sp);

/* Emits "* <seq> FETCH (...)\r\n" for message m. utf8: IMAP4rev2/UTF8=ACCEPT is on (no change
 * to the data served; affects nothing yet but kept for BINARY later). with_flags adds FLAGS
 * when the spec lacks it (after an implicit \Seen). modseq_on: CONDSTORE enabled, so MODSEQ is
 * included with flags changes. Returns 0; -1 with err when the message vanished meanwhile
 * (IMAP_MS_ENONEXISTENT: the session omits it) or storage failed; -2 when flush failed. */
int imap_fetch_one(const struct imap_fetch_spec *sp, struct imap_mailstore *ms, int64_t mailbox,
                   const struct imap_msgref *m, bool with_flags, bool modseq_on, struct imap_out *o,
                   struct err *err);
/* The "(\Seen \Flagged kw1)" list of a message, appended to out (FLAGS responses). */
void imap_fetch_flags(struct buf *out, uint32_t flags, const char *keywords);

/* ---- SEARCH / SORT / THREAD ---- */
struct imap_search; /* a parsed search program; heap */

enum imap_search_ret { /* ESEARCH RETURN options (RFC 4731, RFC 9051 §6.4.4.1) */
	               IMAP_SEARCH_RET_MIN = 1u << 0,
	               IMAP_SEARCH_RET_MAX = 1u << 1,
	               IMAP_SEARCH_RET_ALL = 1u << 2,
	               IMAP_SEARCH_RET_COUNT = 1u << 3,
	               IMAP_SEARCH_RET_SAVE = 1u << 4,
};

/* Parses "[RETURN (...)] [CHARSET x] search-key..." (with_return: the RETURN part is allowed,
 * i.e. SEARCH under ESEARCH/IMAP4rev2; SORT/THREAD pass false). *ret_r gets the RETURN bits
 * (0 when absent: plain SEARCH response, or under IMAP4rev2 "ESEARCH ... ALL"). A charset other
 * than UTF-8/US-ASCII yields NULL with *badcharset_r = true (NO [BADCHARSET (UTF-8
 * US-ASCII)]). Other errors: NULL with *err_r (BAD). */
struct imap_search *imap_search_parse(struct imap_cursor *c, bool with_return, unsigned *ret_r,
                                      bool *badcharset_r, const char **err_r);
/* Same without RETURN/CHARSET handling: the charset was already read (SORT/THREAD). */
struct imap_search *imap_search_parse_keys(struct imap_cursor *c, const char **err_r);
void imap_search_free(struct imap_search **sp);
/* True when the program uses MODSEQ (the response then carries "(MODSEQ n)", RFC 7162 §3.1.5). */
bool imap_search_uses_modseq(const struct imap_search *sp);

/* The search context: the whole view, so that sequence sets, "*", and $ resolve. saved: the
 * saved result (RFC 5182) as UIDs, may be NULL. now: for SINCE/BEFORE/OLDER (RFC 5032
 * optional). */
struct imap_search_ctx {
	struct imap_mailstore *ms;
	int64_t mailbox;
	const struct imap_msgref *msgs; /* ascending sequence numbers 1..n */
	size_t n;
	const uint32_t *saved;
	size_t n_saved;
	int64_t now;
};
/* Evaluates the program on every message; matches (indices into ctx->msgs, ascending) in
 * *idx_r (heap). Reads metadata and message text only for keys that need them. -1 + err on
 * storage failure. */
int imap_search_run(const struct imap_search *sp, const struct imap_search_ctx *ctx, size_t **idx_r,
                    size_t *n_r, struct err *err);

/* SORT (RFC 5256 §3): parses "(criteria) charset search-keys"; NULL + *err_r / badcharset. */
struct imap_sort;
struct imap_sort *imap_sort_parse(struct imap_cursor *c, bool *badcharset_r, const char **err_r);
void imap_sort_free(struct imap_sort **sp);
/* Runs the search part and sorts the matches; ordered indices into ctx->msgs in *idx_r. */
int imap_sort_run(const struct imap_sort *sp, const struct imap_search_ctx *ctx, size_t **idx_r,
                  size_t *n_r, struct err *err);

/* THREAD (RFC 5256 §3): "algorithm charset search-keys"; algorithms REFERENCES and
 * ORDEREDSUBJECT. Runs the search and appends the thread list "(1 2 (3)(4))..." of sequence
 * numbers, or of UIDs when uid, to out (no "* THREAD" prefix, no CRLF). */
struct imap_thread;
struct imap_thread *imap_thread_parse(struct imap_cursor *c, bool *badcharset_r,
                                      const char **err_r);
void imap_thread_free(struct imap_thread **tp);
int imap_thread_run(const struct imap_thread *tp, const struct imap_search_ctx *ctx, bool uid,
                    struct buf *out, struct err *err);

#endif
