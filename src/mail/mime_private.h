/* Internal interface between the files of the MIME module; only for src/mail/mime*.c.
 *   mime.c               structure scanner (part tree), header fields, mime_meta_build, text parts
 *   mime_lex.c           RFC 5322 / RFC 2045 lexemes in, IMAP strings out
 *   mime_params.c        Content-Type / Content-Disposition parameters, RFC 2231 merging
 *   mime_envelope.c      ENVELOPE and its address lists
 *   mime_bodystructure.c BODY / BODYSTRUCTURE
 *   mime_parts.c         the serialised part table (mime_parts_find)
 *   mime_search.c        SEARCH text, case folding, RFC 5256 base subject */
#ifndef LIGHTR_MAIL_MIME_PRIVATE_H
#define LIGHTR_MAIL_MIME_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"
#include "util/buf.h"
#include "util/slice.h"

/* Parameters kept per header (policy: far above real mail, bounds hostile input). */
#define MIME_PARAMS_MAX 64

/* ---- lexical helpers (RFC 5322 §3.2, RFC 2045 §5.1) ---- */

static inline bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 atext, plus 8-bit bytes (as Dovecot accepts them). */
static inline bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 2045 token character: CHAR except SPACE, CTLs, tspecials; 8-bit kept (as Dovecot). */
static inline bool
is_token(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= 0x20 || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* p[0, n) equals lit, ASCII case-insensitively. */
static inline bool
slice_ieq(const unsigned char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n == l && strncasecmp((const char *)p, lit, l) == 0;
}

/* Skips whitespace, line breaks and (nested) comments of s[i, e); returns the index after them.
 * When cmt_start is not NULL, [*cmt_start, *cmt_end) receives the inner range of the last
 * comment skipped (untouched when there is none). (mime_lex.c) */
size_t mime_skip_cfws(const unsigned char *s, size_t i, size_t e, size_t *cmt_start,
                      size_t *cmt_end);

static inline size_t
skip_lwsp(const unsigned char *s, size_t i, size_t e)
{
	return mime_skip_cfws(s, i, e, NULL, NULL);
}

/* s[i] == '"': appends the unescaped content (line breaks removed) to out and returns the index
 * after the closing quote (e when unterminated; *closed_r, when not NULL, tells). (mime_lex.c) */
size_t mime_parse_quoted(const unsigned char *s, size_t i, size_t e, struct buf *out,
                         bool *closed_r);

/* Moves [*off, *off + *len) of m past leading whitespace and line breaks. */
static inline void
trim_value(const unsigned char *m, size_t *off, size_t *len)
{
	while (*len > 0 && (is_wsp(m[*off]) || m[*off] == '\r' || m[*off] == '\n')) {
		(*off)++;
		(*len)--;
	}
}

/* ---- IMAP string output (mime_lex.c) ---- */

/* ENVELOPE subject and display names, as Dovecot's imap_append_string_for_humans: runs of
 * whitespace (line breaks and TABs included) become one space, leading and trailing whitespace
 * go, NUL becomes 0x80; any such change, '"', '\\' or an 8-bit byte makes it a literal. */
void mime_out_human(struct buf *out, const unsigned char *p, size_t n);
/* Every other ENVELOPE and BODYSTRUCTURE string, as Dovecot's imap_append_nstring_nolf: a line
 * break and the whitespace after it become one space, NUL becomes U+FFFD; a quoted string with
 * '"' and '\\' escaped, or a literal when there are 8-bit bytes or NUL. p may be NULL when n is
 * 0. */
void mime_out_string(struct buf *out, const unsigned char *p, size_t n);

/* ---- header fields (mime.c) ---- */

/* Next field of the header section m[*pos, e): name and raw value (after ':' up to the end of its
 * last line, folds included, final line break excluded). Non-field lines are skipped. */
bool mime_field_next(const unsigned char *m, size_t e, size_t *pos, struct slice *name_r,
                     size_t *voff_r, size_t *vlen_r);

/* The end of the top-level header section (after its blank line, or len). */
size_t mime_header_end(const unsigned char *msg, size_t len);

/* ---- parameters (mime_params.c; RFC 2045 §5.1, RFC 2231) ---- */

struct param {
	size_t k_off, k_len, v_off, v_len; /* in plist.sb */
	uint32_t idx;                      /* RFC 2231 section number */
	bool is2231, ext;
};

/* A parameter list: up to MIME_PARAMS_MAX entries whose keys and values live in sb. Owned by
 * its user (sb: buf_init before use, buf_deinit after). */
struct plist {
	struct buf sb;
	size_t n;
	struct param p[MIME_PARAMS_MAX];
};

/* Key and value bytes of p (p->k_len, p->v_len long), valid until pl changes. */
static inline const unsigned char *
pk(const struct plist *pl, const struct param *p)
{
	return pl->sb.data + p->k_off;
}

static inline const unsigned char *
pv(const struct plist *pl, const struct param *p)
{
	return pl->sb.data + p->v_off;
}

/* Parses the parameters of s[i, e) into out (reset first; raw is scratch, also reset), merging
 * RFC 2231 continuations: plain parameters first in their order, then the RFC 2231 ones sorted
 * by name; a complete sequence key*0..key*N becomes "key" (or "key*" with its charset'lang'
 * prefix when any piece was extended); an incomplete one is kept piece by piece. */
void mime_params_parse(struct plist *raw, struct plist *out, const unsigned char *s, size_t i,
                       size_t e);
/* The first parameter named key (case-insensitive), or NULL. */
const struct param *mime_plist_find(const struct plist *pl, const char *key);
/* Content-Type value s[0, e): type "/" subtype (RFC 2045 §5.1). Returns true when both parsed
 * and nothing but parameters follow (then *params_r is where they start). On false, *type_r is
 * empty (an invalid field) or the lone type of "Content-Type: text" (kept without subtype, as
 * Dovecot). The slices point into s. */
bool mime_ctype_parse(const unsigned char *s, size_t e, struct slice *type_r, struct slice *sub_r,
                      size_t *params_r);

/* ---- the part tree (built by mime.c) ---- */

/* The Content-* fields a node remembers (first occurrence). */
enum {
	F_CT,
	F_CTE,
	F_CID,
	F_CDESC,
	F_CMD5,
	F_CDISP,
	F_CLANG,
	F_CLOC,
	F_N,
};

enum {
	N_MULTIPART = 1 << 0, /* multipart/x, children are its parts */
	N_RFC822 = 1 << 1,    /* message/rfc822, one child: the encapsulated message */
	N_TEXT = 1 << 2,      /* text/x (or the text/plain default) */
	N_OPAQUE = 1 << 3,    /* multipart or message past a limit: application/octet-stream */
	N_DIGEST = 1 << 4,    /* no Content-Type inside multipart/digest: message/rfc822 */
	N_HAS_CT = 1 << 5,    /* a Content-Type with at least a type token */
	N_IS_DIGEST = 1 << 6, /* multipart/digest: its parts default to message/rfc822 */
	N_MESSAGE = 1 << 7,   /* the top level or an encapsulated message */
};

/* One part, in pre-order in mp.nodes: its children follow it (subtree nodes, itself included).
 * Offsets are into mp.m; f_off/f_len are the raw values of the fields set in `fields`. */
struct node {
	size_t hdr_start, hdr_end, body_start, body_end;
	size_t f_off[F_N], f_len[F_N];
	uint32_t fields; /* bit i: field i present */
	uint32_t nchildren, subtree, depth;
	uint32_t flags;
};

/* The parse state and result; it borrows the message bytes m (valid while it is used). */
struct mp {
	const unsigned char *m;
	size_t len, pos;
	struct node *nodes;
	size_t n, cap;
	struct {
		struct buf b;
	} bnd[MIME_DEPTH_MAX + 1];
	size_t nbnd;
	size_t gave_break_at; /* boundary line whose break an empty part gave up, or SIZE_MAX */
	struct plist raw, pl; /* scratch for mime_params_parse */
};

/* ---- ENVELOPE / BODYSTRUCTURE writers ---- */

enum { A_FROM, A_SENDER, A_REPLY_TO, A_TO, A_CC, A_BCC, A_N };

/* Writer context over a parsed tree p: scratch buffers for the address parser. */
struct wctx {
	struct mp *p;
	struct buf name, adl, mbox, host; /* one address being parsed */
	struct buf addr[A_N];             /* "(...)(...)" per address field */
	size_t naddr[A_N];
};
/* (mime_envelope.c) wctx_init borrows p; wctx_deinit frees the scratch buffers. */
void mime_wctx_init(struct wctx *w, struct mp *p);
void mime_wctx_deinit(struct wctx *w);
/* Appends the ENVELOPE of the message whose header is nd's (RFC 9051 §7.5.2). (mime_envelope.c)
 */
void mime_write_envelope(struct wctx *w, const struct node *nd, struct buf *out);
/* Appends BODY (ext false) or BODYSTRUCTURE (ext true) of node ni and its subtree.
 * (mime_bodystructure.c) */
void mime_write_part(struct wctx *w, uint32_t ni, bool ext, struct buf *out);
/* nd's Content-Transfer-Encoding token (a slice into p->m); false when absent or not a single
 * token. (mime_bodystructure.c) */
bool mime_cte_get(const struct mp *p, const struct node *nd, struct slice *tok);
/* Appends the serialised part table of p (format in mime_parts.c). */
void mime_parts_write(const struct mp *p, struct buf *out);

/* ---- for mime_search.c ---- */

/* One text/x leaf part: its raw body, charset parameter (empty when absent) and
 * Content-Transfer-Encoding token (empty when absent). Slices into msg, except charset. */
struct mime_text_part {
	struct slice body, charset, cte;
	bool is_header; /* body is the header of an encapsulated message (RFC 9051 §6.4.4: BODY and
	                 * TEXT search the whole body, so a forwarded message's Subject counts) */
};
/* Called for every text/ part in order (inside multiparts and message/rfc822 too), and for the
 * header of every encapsulated message/rfc822 message; returns false to stop. */
typedef bool mime_text_fn(void *ctx, const struct mime_text_part *tp);
void mime_text_parts(const unsigned char *msg, size_t len, mime_text_fn *fn, void *ctx);

#endif
