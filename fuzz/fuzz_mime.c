/* libFuzzer target: MIME structure (mime_meta_build) of arbitrary bytes, then section lookups
 * on a few paths (every returned range lies inside the input and is ordered: header before
 * body, TEXT and the encapsulated header inside the body), SEARCH text extraction (header and
 * body, bounded), the case-insensitive matcher and the RFC 5256 base subject. */
#include <stdint.h>
#include <string.h>

#include "mail/mime.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_section(const struct mime_section *s, size_t size, bool top)
{
	ASSERT(s->header_start <= s->header_end && s->header_end <= s->body_start);
	ASSERT(s->body_start <= s->body_end && s->body_end <= size);
	ASSERT(s->text_start <= s->text_end && s->text_end <= size);
	if (s->is_message && !top) {
		ASSERT(s->msg_header_start >= s->body_start && s->text_end <= s->body_end);
		ASSERT(s->msg_header_start <= s->msg_header_end &&
		       s->msg_header_end <= s->text_start);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t paths[][4] = {
	    {1}, {2}, {1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 1, 1}, {3, 1, 2}, {1, 2, 1, 1},
	};
	static const size_t lens[] = {1, 1, 2, 2, 2, 2, 3, 3, 4};
	struct mime_meta m;
	ASSERT(mime_meta_build(data, size, &m) == 0);
	ASSERT(m.envelope != NULL && m.body != NULL && m.bodystructure != NULL);
	ASSERT(m.envelope[0] == '(' && m.body[0] == '(' && m.bodystructure[0] == '(');
	struct slice parts = buf_slice(&m.parts);
	struct mime_section s;
	ASSERT(mime_parts_find(parts, NULL, 0, &s));
	ASSERT(s.header_start == 0 && s.body_end == size && s.is_message);
	check_section(&s, size, true);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
		if (mime_parts_find(parts, paths[i], lens[i], &s))
			check_section(&s, size, false);
	mime_meta_deinit(&m);

	struct buf b;
	buf_init(&b, 0);
	mime_search_body(data, size, 4096, &b);
	ASSERT(b.len <= 4096);
	size_t body_len = b.len;
	mime_search_header(data, size, "Subject", &b);
	mime_search_header(data, size, NULL, &b);
	struct slice needle = slice_make(data, size < 6 ? size : 6);
	mime_search_contains(buf_slice(&b), needle);
	ASSERT(mime_search_contains(buf_slice(&b), slice_make(b.data, body_len)));
	struct buf subj;
	buf_init(&subj, 0);
	bool reply;
	mime_base_subject(slice_make(data, size < 512 ? size : 512), &subj, &reply);
	ASSERT(subj.len <= size);
	buf_deinit(&subj);
	buf_deinit(&b);
	return 0;
}
