/* libFuzzer target: the SMTP reply parser (a remote server is hostile input). The input is
 * parsed whole and again split at data[0] % size; both runs must log the same replies and
 * errors, and every reply must respect the limits. */
#include <stdint.h>
#include <string.h>

#include "smtp/reply_parser.h"
#include "util/buf.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
feed(struct smtp_reply_parser *p, const uint8_t *in, size_t len, struct buf *log)
{
	size_t off = 0;
	while (off < len) {
		size_t used = 0;
		struct smtp_reply rp;
		enum smtp_reply_error e;
		enum smtp_reply_parse r = smtp_reply_parse(p, in + off, len - off, &used, &rp, &e);
		ASSERT(used <= len - off);
		off += used;
		if (r == SMTP_REPLY_OK) {
			ASSERT(rp.code >= 200 && rp.code <= 599);
			ASSERT(rp.nlines >= 1 && rp.nlines <= SMTP_REPLY_LINES_MAX);
			ASSERT(rp.enhanced[0] == '\0' ||
			       smtp_reply_enh_is_valid(rp.enhanced, rp.code));
			buf_printf(log, "R%d %s %zu:", rp.code, rp.enhanced, rp.nlines);
			for (size_t i = 0; i < rp.nlines; i++) {
				ASSERT(rp.lines[i].len <= SMTP_REPLY_LINE_MAX - 5);
				ASSERT(memchr(rp.lines[i].p, '\n', rp.lines[i].len) == NULL);
				buf_append(log, rp.lines[i].p, rp.lines[i].len);
				buf_append_byte(log, '|');
			}
		} else if (r == SMTP_REPLY_ERROR) {
			ASSERT(e != SMTP_REPLY_ERR_NONE);
			buf_printf(log, "E%d|", (int)e);
		} else {
			ASSERT(off == len);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	struct smtp_reply_parser *p = smtp_reply_parser_new();
	feed(p, data, size, &a);
	bool partial_a = smtp_reply_parser_has_partial(p);
	smtp_reply_parser_reset(p);
	size_t cut = data[0] % size;
	feed(p, data, cut, &b);
	feed(p, data + cut, size - cut, &b);
	ASSERT(partial_a == smtp_reply_parser_has_partial(p));
	ASSERT(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0));
	smtp_reply_parser_free(&p);
	buf_deinit(&a);
	buf_deinit(&b);
	return 0;
}
