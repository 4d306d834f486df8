/* IMAP command framing (the reader) and the recursive-descent cursor over one framed command;
 * see parser.h. The reader is a small state machine whose decisions depend only on byte counts
 * and on the bytes themselves, never on how the input was split, so feeding it whole or one byte
 * at a time gives the same events. Memory is bounded: a line past line_max, or a literal that is
 * refused, is dropped as it streams, keeping only a short tail window to spot a "{N+}" at the end
 * of the dropped line. One literal per command can be diverted to a sink (imap_reader_divert):
 * its bytes then never enter the command buffer. */
#include "parser.h"

#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

/* Longest tag reported with LINE_LONG / LITERAL_BIG (RFC 9051 sets no limit; longer tags are
 * reported as unknown). */
#define IMAP_TAG_MAX 128
/* "{" 20 digits "+" "}" CR: the longest literal announcement we recognise at a line end. */
#define LIT_DIGITS_MAX 20
#define TAIL_MAX       32
/* A command buffer that grew past this is freed once its command is done. */
#define KEEP_ALLOC_MAX (64 * 1024)

enum rd_state {
	RD_LINE,     /* reading a line segment into cmd */
	RD_LITERAL,  /* reading literal bytes into cmd (lit_left to go) */
	RD_SKIP,     /* dropping a too-long line; LINE_LONG at its end */
	RD_SWALLOW,  /* dropping the bytes of a refused non-synchronizing literal */
	RD_SKIP_REST /* dropping the rest of a refused command, silently */
};

struct imap_reader {
	struct imap_reader_limits lim, next_lim;
	struct buf cmd;         /* the command so far (raw bytes) */
	enum rd_state state;    /* what the next byte is */
	size_t seg_start;       /* offset in cmd of the current line segment */
	uint64_t lit_left;      /* bytes still expected (RD_LITERAL, RD_SWALLOW) */
	bool done;              /* cmd holds a command handed out: clear on the next call */
	bool line_mode;         /* next line verbatim, no literal detection */
	bool cur_line_mode;     /* the line being read (or skipped) started in line mode */
	char tag[IMAP_TAG_MAX]; /* tag of a dropped command */
	size_t tag_len;
	unsigned char tail[TAIL_MAX]; /* last bytes of a line being dropped (before its LF) */
	size_t tail_len;
	bool lit_events;        /* report non-synchronizing literals (IMAP_READ_LITERAL) */
	bool lit_pending;       /* a literal was just announced; none of its bytes read yet */
	imap_literal_sink sink; /* the literal being read goes there (NULL: into cmd) */
	void *sink_ctx;
	bool sink_failed; /* the sink refused: the rest of the literal is dropped */
	bool diverted;    /* the command has a diverted literal at div_off, div_len bytes */
	size_t div_off;
	uint64_t div_len;
};

struct imap_reader *
imap_reader_new(const struct imap_reader_limits *lim)
{
	struct imap_reader *r = xcalloc(1, sizeof *r);
	r->lim = r->next_lim = *lim;
	buf_init(&r->cmd, 0);
	return r;
}

void
imap_reader_free(struct imap_reader **rp)
{
	struct imap_reader *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	buf_deinit(&r->cmd);
	free(r);
}

/* Forgets the current command and starts a new one under the newest limits. */
static void
start_command(struct imap_reader *r)
{
	if (r->cmd.cap > KEEP_ALLOC_MAX) {
		buf_deinit(&r->cmd);
		buf_init(&r->cmd, 0);
	} else {
		buf_reset(&r->cmd);
	}
	r->lim = r->next_lim;
	r->state = RD_LINE;
	r->seg_start = 0;
	r->lit_left = 0;
	r->done = false;
	r->tail_len = 0;
	r->cur_line_mode = r->line_mode;
	r->lit_pending = false;
	r->sink = NULL;
	r->sink_ctx = NULL;
	r->sink_failed = false;
	r->diverted = false;
	r->div_off = 0;
	r->div_len = 0;
}

static bool
is_idle(const struct imap_reader *r)
{
	return r->done || (r->state == RD_LINE && r->cmd.len == 0);
}

void
imap_reader_set_limits(struct imap_reader *r, const struct imap_reader_limits *lim)
{
	r->next_lim = *lim;
	if (is_idle(r))
		r->lim = *lim;
}

void
imap_reader_line_mode(struct imap_reader *r)
{
	r->line_mode = true;
	if (is_idle(r))
		r->cur_line_mode = true;
}

void
imap_reader_refuse_literal(struct imap_reader *r)
{
	start_command(r);
}

void
imap_reader_literal_events(struct imap_reader *r, bool on)
{
	r->lit_events = on;
}

bool
imap_reader_divert(struct imap_reader *r, imap_literal_sink sink, void *ctx)
{
	if (sink == NULL || r->done || r->state != RD_LITERAL || !r->lit_pending ||
	    r->lit_left == 0 || r->diverted)
		return false;
	r->sink = sink;
	r->sink_ctx = ctx;
	r->sink_failed = false;
	r->diverted = true;
	r->div_off = r->cmd.len;
	r->div_len = r->lit_left;
	return true;
}

bool
imap_reader_diverted(const struct imap_reader *r, size_t *off_r, uint64_t *len_r)
{
	if (!r->done || !r->diverted)
		return false;
	*off_r = r->div_off;
	*len_r = r->div_len;
	return true;
}

size_t
imap_reader_discard(struct imap_reader *r)
{
	if (r->done)
		return 0; /* cmd is the command just handed out, maybe still in use */
	size_t n = r->cmd.len;
	start_command(r);
	return n;
}

size_t
imap_reader_buffered(const struct imap_reader *r)
{
	return r->cmd.len;
}

/* ---- character classes (RFC 9051 §9) ---- */

static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool
is_atom_char(unsigned char c)
{
	if (c >= 0x80 || is_ctl(c))
		return false;
	switch (c) {
	case '(':
	case ')':
	case '{':
	case ' ':
	case '%':
	case '*':
	case '"':
	case '\\':
	case ']':
		return false;
	default:
		return true;
	}
}

static bool
is_astring_char(unsigned char c)
{
	return is_atom_char(c) || c == ']';
}

static bool
is_tag_char(unsigned char c)
{
	return is_astring_char(c) && c != '+';
}

static bool
is_list_char(unsigned char c)
{
	return is_atom_char(c) || c == '%' || c == '*' || c == ']';
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* ---- reader ---- */

/* Literal announcement at the end of a line (p, n without the LF and CR): "{" 1*20DIGIT ["+"]
 * "}". Returns true and sets *n_r (UINT64_MAX when the value does not fit) and *nonsync_r. */
static bool
literal_suffix(const unsigned char *p, size_t n, uint64_t *n_r, bool *nonsync_r)
{
	if (n < 3 || p[n - 1] != '}')
		return false;
	size_t i = n - 1;
	*nonsync_r = false;
	if (p[i - 1] == '+') {
		*nonsync_r = true;
		i--;
	}
	size_t end = i, ndig = 0;
	while (i > 0 && is_digit(p[i - 1]) && ndig <= LIT_DIGITS_MAX) {
		i--;
		ndig++;
	}
	if (ndig == 0 || ndig > LIT_DIGITS_MAX || i == 0 || p[i - 1] != '{')
		return false;
	uint64_t v = 0;
	for (size_t k = i; k < end; k++) {
		unsigned d = p[k] - '0';
		if (v > (UINT64_MAX - d) / 10) {
			v = UINT64_MAX;
			break;
		}
		v = v * 10 + d;
	}
	*n_r = v;
	return true;
}

/* Remembers the tag at the start of cmd, when the first line begins with one followed by SP. */
static void
save_tag(struct imap_reader *r)
{
	r->tag_len = 0;
	if (r->cur_line_mode)
		return;
	size_t n = r->cmd.len, i = 0;
	while (i < n && i < IMAP_TAG_MAX && is_tag_char(r->cmd.data[i]))
		i++;
	if (i > 0 && i < n && r->cmd.data[i] == ' ') {
		memcpy(r->tag, r->cmd.data, i);
		r->tag_len = i;
	}
}

static void
tail_push(struct imap_reader *r, const unsigned char *p, size_t n)
{
	if (n >= TAIL_MAX) {
		memcpy(r->tail, p + n - TAIL_MAX, TAIL_MAX);
		r->tail_len = TAIL_MAX;
		return;
	}
	if (r->tail_len + n > TAIL_MAX) {
		size_t drop = r->tail_len + n - TAIL_MAX;
		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, p, n);
	r->tail_len += n;
}

/* The line in cmd became too long (or the command too big): keep the tag, drop the rest, and
 * keep the segment's last bytes to spot a literal announcement at its end. */
static void
enter_skip(struct imap_reader *r)
{
	save_tag(r);
	r->tail_len = 0;
	tail_push(r, r->cmd.data + r->seg_start, r->cmd.len - r->seg_start);
	buf_reset(&r->cmd);
	r->seg_start = 0;
	r->state = RD_SKIP;
}

static struct slice
tag_slice(const struct imap_reader *r)
{
	return slice_make(r->tag_len ? r->tag : "", r->tag_len);
}

/* Strips a final CR from the line p[0..n) (its LF already removed). */
static size_t
strip_cr(const unsigned char *p, size_t n)
{
	return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

/* After a dropped line ended: a non-synchronizing literal announced at its end is swallowed
 * with the rest of the command; otherwise the command is over. */
static void
after_dropped_line(struct imap_reader *r)
{
	uint64_t n;
	bool nonsync;
	bool lit = !r->cur_line_mode &&
	           literal_suffix(r->tail, strip_cr(r->tail, r->tail_len), &n, &nonsync) && nonsync;
	r->tail_len = 0;
	if (lit) {
		r->state = RD_SWALLOW;
		r->lit_left = n;
	} else {
		r->line_mode = false;
		start_command(r);
	}
}

/* A line ended in cmd (LF at the end). Returns the event, or -1 to keep reading. */
static int
line_end(struct imap_reader *r, struct slice *cmd_r, uint64_t *literal_r)
{
	const unsigned char *d = r->cmd.data;
	size_t end = r->cmd.len - 1; /* without the LF */
	size_t content = strip_cr(d + r->seg_start, end - r->seg_start);
	uint64_t n;
	bool nonsync;
	if (r->cur_line_mode || !literal_suffix(d + r->seg_start, content, &n, &nonsync)) {
		r->done = true;
		r->line_mode = false;
		*cmd_r = slice_make(d, r->seg_start + content);
		return IMAP_READ_COMMAND;
	}
	bool big = n > r->lim.literal_max || n > r->lim.command_max - r->cmd.len ||
	           (nonsync && !r->lim.literal_plus && n > IMAP_LITERAL_MINUS_MAX);
	if (big) {
		save_tag(r);
		*cmd_r = tag_slice(r);
		*literal_r = n;
		if (nonsync) {
			buf_reset(&r->cmd);
			r->seg_start = 0;
			r->state = RD_SWALLOW;
			r->lit_left = n;
		} else {
			start_command(r);
		}
		return IMAP_READ_LITERAL_BIG;
	}
	r->state = RD_LITERAL;
	r->lit_left = n;
	r->lit_pending = true;
	if (nonsync && !r->lit_events)
		return -1;
	*literal_r = n;
	return nonsync ? IMAP_READ_LITERAL : IMAP_READ_CONTINUE;
}

enum imap_read
imap_reader_feed(struct imap_reader *r, const unsigned char *in, size_t len, size_t *used_r,
                 struct slice *cmd_r, uint64_t *literal_r)
{
	if (r->done)
		start_command(r);
	size_t i = 0;
	int ev = -1;
	while (i < len && ev < 0) {
		size_t avail = len - i;
		switch (r->state) {
		case RD_LINE: {
			size_t seg = r->cmd.len - r->seg_start;
			size_t room_line = r->lim.line_max > seg ? r->lim.line_max - seg : 0;
			size_t room_cmd =
			    r->lim.command_max > r->cmd.len ? r->lim.command_max - r->cmd.len : 0;
			size_t room = room_line < room_cmd ? room_line : room_cmd;
			size_t look = avail < room ? avail : room;
			const unsigned char *lf = memchr(in + i, '\n', look);
			if (lf != NULL) {
				size_t k = (size_t)(lf - (in + i)) + 1;
				(void)buf_append(&r->cmd, in + i, k);
				i += k;
				ev = line_end(r, cmd_r, literal_r);
			} else if (avail <= room) {
				(void)buf_append(&r->cmd, in + i, avail);
				i += avail;
			} else {
				(void)buf_append(&r->cmd, in + i, room);
				i += room;
				enter_skip(r);
			}
			break;
		}
		case RD_LITERAL: {
			size_t k = r->lit_left < avail ? (size_t)r->lit_left : avail;
			r->lit_pending = false;
			if (r->sink == NULL)
				(void)buf_append(&r->cmd, in + i, k);
			else if (!r->sink_failed && r->sink(r->sink_ctx, in + i, k) < 0)
				r->sink_failed = true;
			i += k;
			r->lit_left -= k;
			if (r->lit_left == 0) {
				r->state = RD_LINE;
				r->seg_start = r->cmd.len;
				r->sink = NULL;
			}
			break;
		}
		case RD_SKIP:
		case RD_SKIP_REST: {
			const unsigned char *lf = memchr(in + i, '\n', avail);
			size_t k = lf ? (size_t)(lf - (in + i)) : avail;
			tail_push(r, in + i, k);
			i += k;
			if (lf == NULL)
				break;
			i++; /* the LF */
			if (r->state == RD_SKIP) {
				*cmd_r = tag_slice(r);
				ev = IMAP_READ_LINE_LONG;
			}
			after_dropped_line(r);
			break;
		}
		case RD_SWALLOW: {
			size_t k = r->lit_left < avail ? (size_t)r->lit_left : avail;
			i += k;
			r->lit_left -= k;
			if (r->lit_left == 0) {
				r->state = RD_SKIP_REST;
				r->tail_len = 0;
				r->cur_line_mode = false;
			}
			break;
		}
		}
		/* a literal of 0 bytes ends at once */
		if (ev < 0 && (r->state == RD_LITERAL || r->state == RD_SWALLOW) &&
		    r->lit_left == 0) {
			if (r->state == RD_LITERAL) {
				r->state = RD_LINE;
				r->seg_start = r->cmd.len;
				r->lit_pending = false;
				r->sink = NULL;
			} else {
				r->state = RD_SKIP_REST;
				r->tail_len = 0;
				r->cur_line_mode = false;
			}
		}
	}
	*used_r = i;
	if (ev < 0)
		return IMAP_READ_NEED_MORE;
	return (enum imap_read)ev;
}

/* ---- cursor ---- */

static bool
fail(struct imap_cursor *c, const char *msg)
{
	if (c->error == NULL)
		c->error = msg;
	return false;
}

static int
peek_at(const struct imap_cursor *c, const char *p)
{
	return p < c->end ? (unsigned char)*p : -1;
}

void
imap_cur_init(struct imap_cursor *c, struct slice cmd, unsigned depth_max)
{
	c->p = cmd.p ? cmd.p : "";
	c->end = c->p + cmd.len;
	c->error = NULL;
	c->depth = 0;
	c->depth_max = depth_max;
	c->div_at = NULL;
	c->div_len = 0;
}

void
imap_cur_set_diverted(struct imap_cursor *c, size_t off, uint64_t len)
{
	if (off <= (size_t)(c->end - c->p)) {
		c->div_at = c->p + off;
		c->div_len = len;
	}
}

bool
imap_cur_at_end(const struct imap_cursor *c)
{
	return c->p >= c->end;
}

int
imap_cur_peek(const struct imap_cursor *c)
{
	return peek_at(c, c->p);
}

bool
imap_cur_sp(struct imap_cursor *c)
{
	if (imap_cur_peek(c) != ' ')
		return fail(c, imap_cur_at_end(c) ? "Missing argument" : "Expected a space");
	c->p++;
	return true;
}

bool
imap_cur_eol(struct imap_cursor *c)
{
	if (!imap_cur_at_end(c))
		return fail(c, "Unexpected extra arguments");
	return true;
}

bool
imap_cur_skip(struct imap_cursor *c, char ch)
{
	if (imap_cur_peek(c) != (unsigned char)ch)
		return false;
	c->p++;
	return true;
}

/* Consumes the longest run of bytes of class ok; false (nothing consumed) when empty. */
static bool
run_of(struct imap_cursor *c, bool (*ok)(unsigned char), struct slice *r, const char *err)
{
	const char *p = c->p;
	while (p < c->end && ok((unsigned char)*p))
		p++;
	if (p == c->p)
		return fail(c, imap_cur_at_end(c) ? "Missing argument" : err);
	if (r)
		*r = slice_make(c->p, (size_t)(p - c->p));
	c->p = p;
	return true;
}

bool
imap_cur_tag(struct imap_cursor *c, struct slice *tag_r)
{
	return run_of(c, is_tag_char, tag_r, "Invalid tag");
}

bool
imap_cur_atom(struct imap_cursor *c, struct slice *atom_r)
{
	return run_of(c, is_atom_char, atom_r, "Invalid characters in atom");
}

/* Parses a decimal number of at most max at p; returns the end or NULL. */
static const char *
parse_digits(const struct imap_cursor *c, const char *p, uint64_t max, uint64_t *v_r,
             const char **err_r)
{
	uint64_t v = 0;
	const char *s = p;
	while (p < c->end && is_digit((unsigned char)*p)) {
		unsigned d = (unsigned char)*p - '0';
		if (v > (max - d) / 10) {
			*err_r = "Number too big";
			return NULL;
		}
		v = v * 10 + d;
		p++;
	}
	if (p == s) {
		*err_r = p < c->end ? "Expected a number" : "Missing argument";
		return NULL;
	}
	*v_r = v;
	return p;
}

/* Literal header "{" number64 ["+"] "}" CRLF at c->p without its data: returns where the data
 * starts and sets *n_r, or NULL with an error. */
static const char *
literal_header_only(struct imap_cursor *c, uint64_t *n_r)
{
	const char *err = NULL, *p = c->p + 1;
	uint64_t n;
	p = parse_digits(c, p, INT64_MAX, &n, &err);
	if (p == NULL) {
		fail(c, "Invalid literal");
		return NULL;
	}
	if (peek_at(c, p) == '+')
		p++;
	if (peek_at(c, p) != '}') {
		fail(c, "Invalid literal");
		return NULL;
	}
	p++;
	if (peek_at(c, p) == '\r')
		p++;
	if (peek_at(c, p) != '\n') {
		fail(c, "Invalid literal");
		return NULL;
	}
	p++;
	*n_r = n;
	return p;
}

/* Literal header at c->p; on success returns the first data byte and sets *n_r (already checked
 * to fit in the command). A diverted literal is refused. */
static const char *
literal_header(struct imap_cursor *c, uint64_t *n_r)
{
	uint64_t n;
	const char *p = literal_header_only(c, &n);
	if (p == NULL)
		return NULL;
	if (c->div_at != NULL && p == c->div_at) {
		fail(c, "Unexpected large literal");
		return NULL;
	}
	if (n > (uint64_t)(c->end - p)) {
		fail(c, "Literal data missing");
		return NULL;
	}
	*n_r = n;
	return p;
}

bool
imap_cur_diverted(struct imap_cursor *c, uint64_t *len_r)
{
	if (c->div_at == NULL || imap_cur_peek(c) != '{')
		return false;
	const char *saved = c->error;
	uint64_t n;
	const char *p = literal_header_only(c, &n);
	c->error = saved;
	if (p == NULL || p != c->div_at || n != c->div_len)
		return false;
	c->p = p;
	*len_r = n;
	return true;
}

static size_t
out_mark(const struct buf *out)
{
	return out ? out->len : 0;
}

static void
out_restore(struct buf *out, size_t mark)
{
	if (out) {
		out->len = mark;
		if (out->data)
			out->data[mark] = '\0';
	}
}

/* Appends, restoring out on overflow. */
static bool
out_append(struct imap_cursor *c, struct buf *out, size_t mark, const void *p, size_t n)
{
	if (out == NULL || buf_append(out, p, n) == 0)
		return true;
	out_restore(out, mark);
	return fail(c, "String too long");
}

static bool
quoted(struct imap_cursor *c, struct buf *out)
{
	size_t mark = out_mark(out);
	const char *p = c->p + 1;
	for (;;) {
		if (p >= c->end) {
			out_restore(out, mark);
			return fail(c, "Unterminated quoted string");
		}
		unsigned char ch = (unsigned char)*p;
		if (ch == '"')
			break;
		if (ch == '\\') {
			int next = peek_at(c, p + 1);
			if (next != '"' && next != '\\') {
				out_restore(out, mark);
				return fail(c, "Invalid escape in quoted string");
			}
			p++;
			ch = (unsigned char)next;
		} else if (ch == '\0' || ch == '\r' || ch == '\n') {
			out_restore(out, mark);
			return fail(c, "Invalid characters in quoted string");
		}
		if (!out_append(c, out, mark, &ch, 1))
			return false;
		p++;
	}
	c->p = p + 1;
	return true;
}

static bool
literal(struct imap_cursor *c, struct buf *out)
{
	uint64_t n;
	const char *p = literal_header(c, &n);
	if (p == NULL)
		return false;
	if (memchr(p, '\0', (size_t)n) != NULL)
		return fail(c, "NUL in literal");
	if (!out_append(c, out, out_mark(out), p, (size_t)n))
		return false;
	c->p = p + n;
	return true;
}

bool
imap_cur_string(struct imap_cursor *c, struct buf *out, bool *is_literal_r)
{
	int ch = imap_cur_peek(c);
	if (ch == '"') {
		if (is_literal_r)
			*is_literal_r = false;
		return quoted(c, out);
	}
	if (ch == '{') {
		if (is_literal_r)
			*is_literal_r = true;
		return literal(c, out);
	}
	return fail(c, ch < 0 ? "Missing argument" : "Expected a string");
}

bool
imap_cur_astring(struct imap_cursor *c, struct buf *out)
{
	int ch = imap_cur_peek(c);
	if (ch == '"' || ch == '{')
		return imap_cur_string(c, out, NULL);
	struct slice s;
	if (!run_of(c, is_astring_char, &s, "Invalid characters in atom"))
		return false;
	if (!out_append(c, out, out_mark(out), s.p, s.len)) {
		c->p = s.p;
		return false;
	}
	return true;
}

bool
imap_cur_nstring(struct imap_cursor *c, struct buf *out, bool *is_nil_r)
{
	if (is_nil_r)
		*is_nil_r = false;
	if (c->end - c->p >= 3 && slice_eq_nocase(slice_make(c->p, 3), "NIL") &&
	    !(c->end - c->p > 3 && is_atom_char((unsigned char)c->p[3]))) {
		c->p += 3;
		if (is_nil_r)
			*is_nil_r = true;
		return true;
	}
	return imap_cur_string(c, out, NULL);
}

bool
imap_cur_list_mailbox(struct imap_cursor *c, struct buf *out)
{
	int ch = imap_cur_peek(c);
	if (ch == '"' || ch == '{')
		return imap_cur_string(c, out, NULL);
	struct slice s;
	if (!run_of(c, is_list_char, &s, "Invalid characters in mailbox pattern"))
		return false;
	if (!out_append(c, out, out_mark(out), s.p, s.len)) {
		c->p = s.p;
		return false;
	}
	return true;
}

static bool
number(struct imap_cursor *c, uint64_t max, uint64_t *v_r)
{
	const char *err = NULL;
	const char *p = parse_digits(c, c->p, max, v_r, &err);
	if (p == NULL)
		return fail(c, err);
	c->p = p;
	return true;
}

bool
imap_cur_number(struct imap_cursor *c, uint32_t *n_r)
{
	uint64_t v;
	if (!number(c, UINT32_MAX, &v))
		return false;
	*n_r = (uint32_t)v;
	return true;
}

bool
imap_cur_number64(struct imap_cursor *c, uint64_t *n_r)
{
	return number(c, INT64_MAX, n_r);
}

bool
imap_cur_nz_number(struct imap_cursor *c, uint32_t *n_r)
{
	if (imap_cur_peek(c) == '0')
		return fail(c, "Number must not be zero");
	return imap_cur_number(c, n_r);
}

bool
imap_cur_list_open(struct imap_cursor *c)
{
	if (imap_cur_peek(c) != '(')
		return fail(c, imap_cur_at_end(c) ? "Missing argument" : "Expected a list");
	if (c->depth >= c->depth_max)
		return fail(c, "Too deeply nested");
	c->p++;
	c->depth++;
	return true;
}

bool
imap_cur_list_close(struct imap_cursor *c)
{
	if (imap_cur_peek(c) != ')')
		return fail(c, "Expected )");
	c->p++;
	if (c->depth > 0)
		c->depth--;
	return true;
}

/* ---- dates (RFC 9051 §9 date, date-time) ---- */

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int y, int m)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t yy = m <= 2 ? y - 1 : y;
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t mp = (m + 9) % 12; /* March = 0 */
	int64_t doy = (153 * mp + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n digits at p, or -1. */
static int
fixed_digits(const struct imap_cursor *c, const char *p, int n)
{
	int v = 0;
	for (int k = 0; k < n; k++) {
		int ch = peek_at(c, p + k);
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	return v;
}

/* date-text "d-Mon-yyyy" at p (day 1 or 2 digits, or SP DIGIT when fixed); returns the end. */
static const char *
date_text(const struct imap_cursor *c, const char *p, bool fixed, int64_t *days_r)
{
	int day;
	if (fixed && peek_at(c, p) == ' ') {
		if ((day = fixed_digits(c, p + 1, 1)) < 0)
			return NULL;
		p += 2;
	} else if ((day = fixed_digits(c, p, 2)) >= 0) {
		p += 2;
	} else if ((day = fixed_digits(c, p, 1)) >= 0) {
		p += 1;
	} else {
		return NULL;
	}
	if (peek_at(c, p) != '-' || c->end - p < 5)
		return NULL;
	p++;
	int mon = 0;
	for (int k = 0; k < 12; k++) {
		if (slice_eq_nocase(slice_make(p, 3), months[k])) {
			mon = k + 1;
			break;
		}
	}
	if (mon == 0 || peek_at(c, p + 3) != '-')
		return NULL;
	p += 4;
	int year = fixed_digits(c, p, 4);
	if (year < 0)
		return NULL;
	p += 4;
	if (day < 1 || day > month_days(year, mon))
		return NULL;
	*days_r = days_from_civil(year, mon, day);
	return p;
}

bool
imap_cur_date(struct imap_cursor *c, int64_t *t_r)
{
	const char *p = c->p;
	bool q = peek_at(c, p) == '"';
	int64_t days;
	if (q)
		p++;
	p = date_text(c, p, false, &days);
	if (p == NULL || (q && peek_at(c, p) != '"'))
		return fail(c, imap_cur_at_end(c) ? "Missing argument" : "Invalid date");
	c->p = q ? p + 1 : p;
	*t_r = days * 86400;
	return true;
}

bool
imap_cur_date_time(struct imap_cursor *c, int64_t *t_r)
{
	const char *p = c->p;
	int64_t days;
	if (peek_at(c, p) != '"')
		return fail(c, imap_cur_at_end(c) ? "Missing argument" : "Invalid date-time");
	p = date_text(c, p + 1, true, &days);
	if (p == NULL || peek_at(c, p) != ' ')
		return fail(c, "Invalid date-time");
	p++;
	int h = fixed_digits(c, p, 2), mi = fixed_digits(c, p + 3, 2),
	    s = fixed_digits(c, p + 6, 2);
	if (h < 0 || mi < 0 || s < 0 || peek_at(c, p + 2) != ':' || peek_at(c, p + 5) != ':' ||
	    h > 23 || mi > 59 || s > 60)
		return fail(c, "Invalid date-time");
	p += 8;
	int sign = peek_at(c, p + 1);
	int zh = fixed_digits(c, p + 2, 2), zm = fixed_digits(c, p + 4, 2);
	if (peek_at(c, p) != ' ' || (sign != '+' && sign != '-') || zh < 0 || zm < 0 || zm > 59 ||
	    peek_at(c, p + 6) != '"')
		return fail(c, "Invalid date-time");
	int64_t off = (int64_t)zh * 3600 + zm * 60;
	c->p = p + 7;
	*t_r = days * 86400 + h * 3600 + mi * 60 + s - (sign == '+' ? off : -off);
	return true;
}

/* ---- FETCH attributes and flags ---- */

static bool
fetch_att_char(unsigned char ch)
{
	return is_atom_char(ch) || ch == '\\' || ch == '*' || ch == '%';
}

bool
imap_cur_fetch_att(struct imap_cursor *c, struct slice *att_r)
{
	const char *p = c->p;
	for (;;) {
		int ch = peek_at(c, p);
		if (ch == '[') {
			/* section: anything balanced up to the matching "]" */
			unsigned depth = 0;
			p++;
			for (;;) {
				ch = peek_at(c, p);
				if (ch < 0)
					return fail(c, "Missing ]");
				if (ch == ']' && depth == 0)
					break;
				if (ch == '(') {
					if (c->depth + depth >= c->depth_max)
						return fail(c, "Too deeply nested");
					depth++;
					p++;
				} else if (ch == ')') {
					if (depth == 0)
						return fail(c, "Unbalanced )");
					depth--;
					p++;
				} else if (ch == '"' || ch == '{') {
					struct imap_cursor sub = *c;
					sub.p = p;
					sub.error = NULL;
					if (!imap_cur_string(&sub, NULL, NULL))
						return fail(c, sub.error);
					p = sub.p;
				} else if (ch == '[' || is_ctl((unsigned char)ch) || ch >= 0x80) {
					return fail(c, "Invalid characters in section");
				} else {
					p++;
				}
			}
			p++;
			continue;
		}
		if (ch < 0 || ch == ']' || !fetch_att_char((unsigned char)ch))
			break;
		p++;
	}
	if (p == c->p)
		return fail(c, imap_cur_at_end(c) ? "Missing argument" : "Invalid fetch attribute");
	if (att_r)
		*att_r = slice_make(c->p, (size_t)(p - c->p));
	c->p = p;
	return true;
}

/* ---- sequence sets (RFC 9051 §9 sequence-set; RFC 5182 "$") ---- */

static const char *
seq_number(const struct imap_cursor *c, const char *p, uint32_t *n_r, const char **err_r)
{
	if (peek_at(c, p) == '*') {
		*n_r = 0;
		return p + 1;
	}
	if (peek_at(c, p) == '0') {
		*err_r = "Invalid sequence set";
		return NULL;
	}
	uint64_t v;
	p = parse_digits(c, p, UINT32_MAX, &v, err_r);
	if (p == NULL) {
		if (*err_r != NULL && strcmp(*err_r, "Number too big") != 0)
			*err_r = "Invalid sequence set";
		return NULL;
	}
	*n_r = (uint32_t)v;
	return p;
}

bool
imap_cur_seqset(struct imap_cursor *c, struct imap_seqset *s, bool allow_dollar)
{
	imap_seqset_reset(s);
	const char *p = c->p;
	const char *err = NULL;
	if (peek_at(c, p) == '$') {
		int next = peek_at(c, p + 1);
		if (!allow_dollar || (next >= 0 && (next == ',' || next == ':' || is_digit(next))))
			return fail(c, "Invalid sequence set");
		s->dollar = true;
		c->p = p + 1;
		return true;
	}
	for (;;) {
		uint32_t lo, hi;
		p = seq_number(c, p, &lo, &err);
		if (p == NULL)
			break;
		hi = lo;
		if (peek_at(c, p) == ':') {
			p = seq_number(c, p + 1, &hi, &err);
			if (p == NULL)
				break;
		}
		if (s->n >= IMAP_SEQSET_MAX_RANGES) {
			err = "Sequence set too long";
			break;
		}
		(void)imap_seqset_add(s, lo, hi);
		if (peek_at(c, p) != ',') {
			c->p = p;
			return true;
		}
		p++;
	}
	imap_seqset_reset(s);
	if (imap_cur_at_end(c))
		err = "Missing argument";
	return fail(c, err ? err : "Invalid sequence set");
}
