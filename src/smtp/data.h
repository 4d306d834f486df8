/* Message content decoder for DATA (RFC 5321 §4.1.1.4, §4.5.2) and BDAT (RFC 3030 §2). No I/O;
 * one per session; not thread-safe.
 *
 * Policy (SMTP smuggling, CVE-2023-51764 and relatives): DATA ends only at <CRLF>.<CRLF> (or at
 * ".<CRLF>" as the very first line). A bare LF, a bare CR or a NUL anywhere in the content never
 * ends anything: the decoder reads on to the real end and the message is refused. Sequences such
 * as "\n.\n", "\r.\r", "\n.\r\n" and "\r\n.\n" are therefore content of a refused message. The
 * same checks apply to the concatenated BDAT chunks (a CR at the end of one chunk may be
 * followed by the LF at the start of the next). A text line longer than SMTP_TEXT_LINE_MAX
 * (counted after dot-unstuffing, including CRLF) refuses the message; it is never wrapped or cut.
 * Size is counted as bytes arrive; past max_size nothing more is stored, but the content is still
 * read to its end so the client stays in sync, and the message is refused. */
#ifndef LIGHTR_SMTP_DATA_H
#define LIGHTR_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum smtp_data_result {
	SMTP_DATA_OK,
	SMTP_DATA_BARE_LF,   /* 550 5.5.2 */
	SMTP_DATA_BARE_CR,   /* 550 5.5.2 */
	SMTP_DATA_NUL,       /* 550 5.5.2 */
	SMTP_DATA_TOO_BIG,   /* 552 5.3.4 */
	SMTP_DATA_LONG_LINE, /* 500 5.5.2 */
};

struct smtp_data {
	struct buf msg;    /* the message so far, dot-unstuffed; at most max_size bytes */
	uint64_t size;     /* content octets seen, including those not stored */
	uint64_t max_size; /* 0: no limit */
	size_t line_len;   /* octets of the current line so far */
	int state;         /* DATA: position relative to line starts and the end marker */
	bool pending_cr;   /* BDAT: the last byte so far was a CR */
	bool bare_lf, bare_cr, nul, long_line;
};

/* Zeroes d; no allocation. */
void smtp_data_init(struct smtp_data *d);
/* Frees the stored message; d may be started again. */
void smtp_data_deinit(struct smtp_data *d);
/* Starts a new message (DATA or the first BDAT chunk) with a size limit (0: none). */
void smtp_data_begin(struct smtp_data *d, uint64_t max_size);
/* DATA mode: consumes up to len bytes and sets *used_r. Returns true when the end marker was
 * consumed (then *used_r points just past it and the rest of the input is commands again). */
bool smtp_data_feed(struct smtp_data *d, const unsigned char *in, size_t len, size_t *used_r);
/* BDAT mode: all len bytes are content (binary-exact, no dot handling). */
void smtp_data_chunk(struct smtp_data *d, const unsigned char *in, size_t len);
/* BDAT LAST: the content is complete (a trailing CR is a bare CR). */
void smtp_data_chunk_end(struct smtp_data *d);
/* The verdict so far: the most serious problem seen (bare LF/CR and NUL, then size, then line
 * length), or SMTP_DATA_OK. */
enum smtp_data_result smtp_data_result(const struct smtp_data *d);
/* The reply for a result other than OK: code, enhanced code and text (static). */
void smtp_data_reply(enum smtp_data_result r, int *code_r, const char **enh_r, const char **text_r);
/* Short name for logs ("bare-lf", "too-big", ...). */
const char *smtp_data_result_name(enum smtp_data_result r);

#endif
