/* SMTP reply formatting (RFC 5321 §4.2) with enhanced status codes (RFC 2034, RFC 3463). The
 * session builds every reply through these functions, so the line-length limit, the CRLF framing
 * and the rule "no CR, LF or control byte ever reaches the client from a hook or an address" hold
 * in one place. No I/O; output goes into a caller-owned bounded buffer.
 *
 * RFC 2034 §3: once ENHANCEDSTATUSCODES is advertised, every 2xx, 4xx and 5xx reply carries an
 * enhanced code, except the initial greeting and the replies to HELO and EHLO. 3xx replies (334,
 * 354) never carry one. 221 and 421 do (as Postfix does). Callers pass enh NULL for the
 * exceptions. */
#ifndef LIGHTR_SMTP_REPLY_H
#define LIGHTR_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including the code and CRLF. */
#define SMTP_REPLY_LINE_MAX 512

/* true when enh is a well-formed RFC 3463 code ("class.subject.detail", class 2, 4 or 5,
 * subject and detail 1-3 digits) whose class equals the first digit of code. */
bool smtp_reply_enh_is_valid(const char *enh, int code);

/* Appends one reply line "<code> [<enh> ]<text>\r\n" to out. code must be 200..599 (a
 * programming error otherwise: panics). enh NULL: no enhanced code; an enh that is not valid for
 * code (see above) is replaced by "<class>.0.0". text: bytes outside printable ASCII (and TAB)
 * become '?', and it is cut so the line fits SMTP_REPLY_LINE_MAX. Returns -1 when out is full. */
int smtp_reply(struct buf *out, int code, const char *enh, const char *text);
/* Same with printf formatting of the text (formatted into a local 512-byte buffer first). */
int smtp_replyf(struct buf *out, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Multi-line reply (RFC 5321 §4.2.1): "<code>-" on every line but the last, "<code> " on the
 * last; the same enhanced code (when not NULL) on every line (RFC 2034 §4). n must be >= 1. */
int smtp_reply_lines(struct buf *out, int code, const char *enh, const char *const *lines,
                     size_t n);

#endif
