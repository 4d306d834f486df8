/* Incremental parser for SMTP server replies (RFC 5321 §4.2), for the outbound client: a remote
 * server is hostile input. No I/O; memory bounded by the limits below whatever the server sends;
 * one parser per connection; not thread-safe.
 *
 * A reply is one or more lines "ddd-text" ... "ddd text" (or just "ddd" on the last line) with
 * the same three-digit code on every line (first digit 2..5). A line ends at LF; a CR just before
 * the LF is dropped (a bare LF is tolerated, since some servers send it). An enhanced status code
 * (RFC 3463, RFC 2034 "2.1.5 ") at the start of a line's text, whose class matches the reply
 * code's first digit, is recognised and stripped from that line's text.
 *
 * Errors concern the reply in progress: it is dropped and the parser resynchronises at the start
 * of the next line (a too-long line is reported as soon as the limit is passed, and the rest of
 * it up to LF is skipped silently). The result is the same whether the input arrives whole or
 * one byte at a time. */
#ifndef LIGHTR_SMTP_REPLY_PARSER_H
#define LIGHTR_SMTP_REPLY_PARSER_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/reply.h" /* SMTP_REPLY_LINE_MAX: 512, RFC 5321 §4.5.3.1.5, including CRLF */
#include "util/slice.h"

#define SMTP_REPLY_LINES_MAX 100 /* our limit on lines per reply */
#define SMTP_REPLY_ENH_MAX   16  /* "5.123.456" + NUL fits */

enum smtp_reply_parse {
	SMTP_REPLY_NEED_MORE, /* every byte consumed; no complete reply yet */
	SMTP_REPLY_OK,        /* *reply_r holds a complete reply */
	SMTP_REPLY_ERROR,     /* *err_r says why; see smtp_reply_error_text() */
};

enum smtp_reply_error {
	SMTP_REPLY_ERR_NONE,
	SMTP_REPLY_ERR_LINE_TOO_LONG,  /* more than SMTP_REPLY_LINE_MAX octets */
	SMTP_REPLY_ERR_TOO_MANY_LINES, /* more than SMTP_REPLY_LINES_MAX lines */
	SMTP_REPLY_ERR_BAD_CODE,       /* not three digits with the first in 2..5 */
	SMTP_REPLY_ERR_BAD_SEPARATOR,  /* neither '-', ' ' nor end of line after the code */
	SMTP_REPLY_ERR_CODE_MISMATCH,  /* a continuation line with a different code */
	SMTP_REPLY_ERR_NUL,            /* a NUL octet in a line */
};

/* One reply. Slices point into the parser: valid until the next smtp_reply_parse() or
 * smtp_reply_parser_reset(). */
struct smtp_reply {
	int code;                                 /* 200..599 */
	char enhanced[SMTP_REPLY_ENH_MAX];        /* from the first line; "" when absent */
	size_t nlines;                            /* 1..SMTP_REPLY_LINES_MAX */
	struct slice lines[SMTP_REPLY_LINES_MAX]; /* text after "ddd-"/"ddd ", without the enhanced
	                                           * code and CRLF; may be empty; raw bytes */
};

struct smtp_reply_parser;

struct smtp_reply_parser *smtp_reply_parser_new(void);
void smtp_reply_parser_free(struct smtp_reply_parser **pp);
/* Forgets a partial reply and line (after STARTTLS). */
void smtp_reply_parser_reset(struct smtp_reply_parser *p);
/* true when part of a reply or line is buffered. */
bool smtp_reply_parser_has_partial(const struct smtp_reply_parser *p);

/* Consumes up to len bytes and sets *used_r; stops right after a complete reply (OK) or the
 * bytes that caused an error (ERROR), so pipelined replies are returned one by one. */
enum smtp_reply_parse smtp_reply_parse(struct smtp_reply_parser *p, const unsigned char *in,
                                       size_t len, size_t *used_r, struct smtp_reply *reply_r,
                                       enum smtp_reply_error *err_r);
/* Static text for an error ("reply line too long", ...). */
const char *smtp_reply_error_text(enum smtp_reply_error e);

#endif
