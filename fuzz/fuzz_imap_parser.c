/* libFuzzer target: IMAP command framing (struct imap_reader), the cursor grammar helpers,
 * sequence sets and modified UTF-7. The input is fed in two pieces split at data[0] % size and,
 * for small inputs, again one byte at a time: both runs must give the same events. Every
 * framed command goes through a generic command walk (tag, atom, then astring / list / seqset /
 * fetch-att / number / date attempts) with invariants checked, and through the mUTF-7 codec:
 * decode(encode(x)) == x for every x encode accepts. */
#include <stdint.h>
#include <string.h>

#include "imap/parser.h"
#include "util/buf.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEPTH_MAX 8

static bool
inside(struct slice part, struct slice whole)
{
	return part.len == 0 || (part.p >= whole.p && part.p + part.len <= whole.p + whole.len);
}

/* A failed helper consumes nothing and leaves an error. */
static void
check_fail(const struct imap_cursor *c, const char *before)
{
	ASSERT(c->p == before);
	ASSERT(c->error != NULL);
}

static void
mutf7_roundtrip(struct slice s)
{
	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	if (imap_mutf7_encode(s, &a) == 0) {
		ASSERT(imap_mutf7_decode(buf_slice(&a), &b) == 0);
		ASSERT(b.len == s.len &&
		       memcmp(b.data ? (const void *)b.data : "", s.p ? s.p : "", s.len) == 0);
	} else {
		ASSERT(a.len == 0);
	}
	buf_reset(&a);
	buf_reset(&b);
	if (imap_mutf7_decode(s, &a) == 0) {
		/* the decoded name is valid UTF-8 without NUL: it encodes and comes back */
		ASSERT(imap_mutf7_encode(buf_slice(&a), &b) == 0);
		buf_reset(&a);
		ASSERT(imap_mutf7_decode(buf_slice(&b), &a) == 0);
	}
	buf_deinit(&a);
	buf_deinit(&b);
}

/* Resolved set against a naive reading of the parsed ranges. */
static void
seqset_check(const struct imap_seqset *parsed, uint32_t max)
{
	struct imap_seqset s;
	imap_seqset_init(&s);
	for (size_t i = 0; i < parsed->n; i++)
		ASSERT(imap_seqset_add(&s, parsed->v[i].lo, parsed->v[i].hi) == 0);
	imap_seqset_resolve(&s, max);
	for (size_t i = 0; i + 1 < s.n; i++)
		ASSERT(s.v[i].lo <= s.v[i].hi && (uint64_t)s.v[i].hi + 1 < s.v[i + 1].lo);
	uint32_t probes[] = {0, 1, 2, 3, max, max + 1u, max - 1u, 7, 100, UINT32_MAX};
	for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
		uint32_t n = probes[k];
		bool want = false;
		for (size_t i = 0; i < parsed->n && n != 0; i++) {
			uint32_t lo = parsed->v[i].lo ? parsed->v[i].lo : max;
			uint32_t hi = parsed->v[i].hi ? parsed->v[i].hi : max;
			if (lo > hi) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
			if (lo != 0 && n >= lo && n <= hi)
				want = true;
		}
		ASSERT(imap_seqset_contains(&s, n) == want);
	}
	/* format of the members below 64, parsed back, gives the same members */
	uint32_t v[64];
	size_t nv = 0;
	for (uint32_t n = 1; n < 64; n++)
		if (imap_seqset_contains(&s, n))
			v[nv++] = n;
	if (nv > 0) {
		struct buf f;
		buf_init(&f, 0);
		imap_seqset_format(&f, v, nv);
		struct imap_cursor c;
		imap_cur_init(&c, buf_slice(&f), DEPTH_MAX);
		struct imap_seqset back;
		imap_seqset_init(&back);
		ASSERT(imap_cur_seqset(&c, &back, false) && imap_cur_at_end(&c));
		imap_seqset_resolve(&back, max);
		for (uint32_t n = 0; n < 64; n++)
			ASSERT(imap_seqset_contains(&back, n) ==
			       (n > 0 && imap_seqset_contains(&s, n)));
		imap_seqset_deinit(&back);
		buf_deinit(&f);
	}
	imap_seqset_deinit(&s);
}

/* A generic command walk: what a command handler does with the cursor. */
static void
walk(struct slice cmd, uint32_t max)
{
	struct imap_cursor c;
	imap_cur_init(&c, cmd, DEPTH_MAX);
	struct slice tag, atom;
	struct buf out;
	buf_init(&out, 1024);
	struct imap_seqset set;
	imap_seqset_init(&set);
	if (!imap_cur_tag(&c, &tag) || !imap_cur_sp(&c) || !imap_cur_atom(&c, &atom))
		goto done;
	ASSERT(inside(tag, cmd) && tag.len > 0 && inside(atom, cmd) && atom.len > 0);
	for (int steps = 0; steps < 1000 && !imap_cur_at_end(&c); steps++) {
		const char *before = c.p;
		struct slice s;
		uint32_t n32;
		uint64_t n64;
		int64_t t;
		bool nil;
		c.error = NULL;
		ASSERT(c.depth <= c.depth_max);
		if (imap_cur_skip(&c, ' '))
			continue;
		if (imap_cur_list_open(&c) || imap_cur_list_close(&c))
			continue;
		c.error = NULL;
		if (imap_cur_date_time(&c, &t))
			continue;
		check_fail(&c, before);
		c.error = NULL;
		if (imap_cur_date(&c, &t))
			continue;
		check_fail(&c, before);
		c.error = NULL;
		if (imap_cur_seqset(&c, &set, true)) {
			if (!set.dollar)
				seqset_check(&set, max);
			continue;
		}
		check_fail(&c, before);
		ASSERT(set.n == 0);
		c.error = NULL;
		if (imap_cur_number64(&c, &n64)) {
			ASSERT(n64 <= INT64_MAX);
			continue;
		}
		check_fail(&c, before);
		c.error = NULL;
		(void)imap_cur_nz_number(&c, &n32);
		c.p = before;
		c.error = NULL;
		buf_reset(&out);
		if (imap_cur_nstring(&c, &out, &nil)) {
			ASSERT(nil || !out.overflow);
			mutf7_roundtrip(buf_slice(&out));
			continue;
		}
		check_fail(&c, before);
		ASSERT(out.len == 0);
		c.error = NULL;
		buf_reset(&out);
		if (imap_cur_astring(&c, &out)) {
			mutf7_roundtrip(buf_slice(&out));
			continue;
		}
		check_fail(&c, before);
		c.error = NULL;
		buf_reset(&out);
		if (imap_cur_list_mailbox(&c, &out))
			continue;
		check_fail(&c, before);
		c.error = NULL;
		if (imap_cur_fetch_att(&c, &s)) {
			ASSERT(inside(s, cmd) && s.len > 0);
			continue;
		}
		check_fail(&c, before);
		c.error = NULL;
		if (imap_cur_atom(&c, &s)) {
			ASSERT(inside(s, cmd));
			continue;
		}
		check_fail(&c, before);
		break; /* nothing matches: the handler would reply BAD */
	}
	(void)imap_cur_eol(&c);
done:
	imap_seqset_deinit(&set);
	buf_deinit(&out);
}

/* Feeds data in pieces of step bytes (0: whole), logs every event into log, and walks every
 * command when do_walk. */
static void
feed(struct imap_reader *r, const struct imap_reader_limits *lim, const uint8_t *data, size_t size,
     size_t step, struct buf *log, bool do_walk, uint32_t max)
{
	size_t off = 0;
	while (off < size) {
		size_t n = step && size - off > step ? step : size - off;
		size_t done = 0;
		for (;;) {
			size_t used = 0;
			struct slice cmd = {NULL, 0};
			uint64_t lit = 0;
			enum imap_read ev =
			    imap_reader_feed(r, data + off + done, n - done, &used, &cmd, &lit);
			ASSERT(used <= n - done);
			done += used;
			ASSERT(imap_reader_buffered(r) <= lim->command_max);
			if (ev == IMAP_READ_NEED_MORE) {
				ASSERT(done == n);
				break;
			}
			(void)buf_printf(log, "%d %llu %zu:", (int)ev, (unsigned long long)lit,
			                 cmd.len);
			(void)buf_append(log, cmd.p, cmd.len);
			if (ev == IMAP_READ_COMMAND) {
				ASSERT(cmd.len <= lim->command_max);
				if (do_walk)
					walk(cmd, max);
				if (cmd.len > 0 && cmd.p[0] == 'L')
					imap_reader_line_mode(r);
			} else if (ev == IMAP_READ_CONTINUE) {
				ASSERT(lit <= lim->literal_max);
				if (lit % 7 == 3)
					imap_reader_refuse_literal(r);
			} else if (ev == IMAP_READ_LINE_LONG || ev == IMAP_READ_LITERAL_BIG) {
				ASSERT(cmd.len < 256);
			}
		}
		off += n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_reader_limits lim = {
	    .line_max = 200, .literal_max = 300, .command_max = 1000, .literal_plus = false};
	if (size > 0 && (data[0] & 0x40)) {
		lim = (struct imap_reader_limits){.line_max = 1000,
		                                  .literal_max = 5000,
		                                  .command_max = 8000,
		                                  .literal_plus = (data[0] & 0x80) != 0};
	}
	uint32_t max = size > 1 ? data[1] % 16 : 0;
	size_t cut = size ? data[0] % size : 0;
	struct buf log1, log2;
	buf_init(&log1, 0);
	buf_init(&log2, 0);

	struct imap_reader *r = imap_reader_new(&lim);
	feed(r, &lim, data, cut, 0, &log1, true, max);
	feed(r, &lim, data + cut, size - cut, 0, &log1, true, max);
	size_t left1 = imap_reader_buffered(r);
	ASSERT(imap_reader_discard(r) <= left1);
	imap_reader_free(&r);

	if (size <= 4096) {
		r = imap_reader_new(&lim);
		feed(r, &lim, data, size, 1, &log2, false, max);
		ASSERT(imap_reader_buffered(r) == left1);
		imap_reader_free(&r);
		ASSERT(log1.len == log2.len &&
		       (log1.len == 0 || memcmp(log1.data, log2.data, log1.len) == 0));
	}
	mutf7_roundtrip(slice_make(data, size));
	buf_deinit(&log1);
	buf_deinit(&log2);
	return 0;
}
