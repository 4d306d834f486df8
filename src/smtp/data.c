/* DATA/BDAT content decoder; see data.h. One byte at a time through a small state machine, so
 * any split of the input gives the same result. */
#include "data.h"

#include <string.h>

#include "server.h"

/* DATA states. Only a CRLF makes a line start; a bare LF or CR does not (that is the point). */
enum {
	D_BOL,    /* at the start of a line (after CRLF, or at the start of the data) */
	D_TEXT,   /* inside a line */
	D_CR,     /* after a CR inside a line */
	D_DOT,    /* after a '.' at the start of a line (not stored) */
	D_DOT_CR, /* after ".\r" at the start of a line (CR not stored yet) */
};

void
smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof *d);
}

void
smtp_data_deinit(struct smtp_data *d)
{
	buf_deinit(&d->msg);
}

void
smtp_data_begin(struct smtp_data *d, uint64_t max_size)
{
	buf_deinit(&d->msg);
	memset(d, 0, sizeof *d);
	d->max_size = max_size;
	buf_init(&d->msg, max_size == 0 || max_size > SIZE_MAX / 2 ? 0 : (size_t)max_size);
	d->state = D_BOL;
}

/* One content byte: count, check, store. */
static void
put(struct smtp_data *d, unsigned char c)
{
	d->size++;
	if (c == '\0')
		d->nul = true;
	if (++d->line_len > SMTP_TEXT_LINE_MAX)
		d->long_line = true;
	if (c == '\n')
		d->line_len = 0;
	if (d->max_size == 0 || d->size <= d->max_size)
		(void)buf_append_byte(&d->msg, c);
}

/* A byte inside a line (also used to re-dispatch the byte after a CR that was bare). */
static void
text_byte(struct smtp_data *d, unsigned char c)
{
	if (c == '\r') {
		put(d, c);
		d->state = D_CR;
		return;
	}
	if (c == '\n')
		d->bare_lf = true;
	put(d, c);
	d->state = D_TEXT;
}

bool
smtp_data_feed(struct smtp_data *d, const unsigned char *in, size_t len, size_t *used_r)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];
		switch (d->state) {
		case D_BOL:
			if (c == '.')
				d->state = D_DOT;
			else
				text_byte(d, c);
			break;
		case D_TEXT:
			text_byte(d, c);
			break;
		case D_CR:
			if (c == '\n') {
				put(d, c);
				d->state = D_BOL;
			} else {
				d->bare_cr = true;
				text_byte(d, c);
			}
			break;
		case D_DOT:
			/* RFC 5321 §4.5.2: the leading dot of a non-final line is dropped */
			if (c == '\r')
				d->state = D_DOT_CR;
			else
				text_byte(d, c);
			break;
		case D_DOT_CR:
			if (c == '\n') {
				*used_r = i + 1;
				return true;
			}
			/* ".\r" then something else: a stuffed line starting with a bare CR */
			d->bare_cr = true;
			put(d, '\r');
			text_byte(d, c);
			break;
		}
	}
	*used_r = len;
	return false;
}

void
smtp_data_chunk(struct smtp_data *d, const unsigned char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];
		if (c == '\n' && !d->pending_cr)
			d->bare_lf = true;
		if (c != '\n' && d->pending_cr)
			d->bare_cr = true;
		d->pending_cr = c == '\r';
		put(d, c);
	}
}

void
smtp_data_chunk_end(struct smtp_data *d)
{
	if (d->pending_cr)
		d->bare_cr = true;
	d->pending_cr = false;
}

enum smtp_data_result
smtp_data_result(const struct smtp_data *d)
{
	if (d->bare_lf)
		return SMTP_DATA_BARE_LF;
	if (d->bare_cr)
		return SMTP_DATA_BARE_CR;
	if (d->nul)
		return SMTP_DATA_NUL;
	if (d->max_size != 0 && d->size > d->max_size)
		return SMTP_DATA_TOO_BIG;
	if (d->long_line)
		return SMTP_DATA_LONG_LINE;
	return SMTP_DATA_OK;
}

void
smtp_data_reply(enum smtp_data_result r, int *code_r, const char **enh_r, const char **text_r)
{
	switch (r) {
	case SMTP_DATA_BARE_LF:
		*code_r = 550, *enh_r = "5.5.2";
		*text_r = "Message refused: bare LF in message text (RFC 5321 2.3.8)";
		return;
	case SMTP_DATA_BARE_CR:
		*code_r = 550, *enh_r = "5.5.2";
		*text_r = "Message refused: bare CR in message text (RFC 5321 2.3.8)";
		return;
	case SMTP_DATA_NUL:
		*code_r = 550, *enh_r = "5.5.2";
		*text_r = "Message refused: NUL in message text";
		return;
	case SMTP_DATA_TOO_BIG:
		*code_r = 552, *enh_r = "5.3.4";
		*text_r = "Message size exceeds fixed maximum message size";
		return;
	case SMTP_DATA_LONG_LINE:
		*code_r = 500, *enh_r = "5.5.2";
		*text_r = "Message refused: line longer than 1000 octets (RFC 5321 4.5.3.1.6)";
		return;
	case SMTP_DATA_OK:
		break;
	}
	*code_r = 250, *enh_r = "2.0.0", *text_r = "Ok";
}

const char *
smtp_data_result_name(enum smtp_data_result r)
{
	static const char *const names[] = {"ok",  "bare-lf", "bare-cr",
	                                    "nul", "too-big", "long-line"};
	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}
