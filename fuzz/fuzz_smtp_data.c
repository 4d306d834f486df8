/* libFuzzer target: DATA/BDAT content decoder. Differential: the input fed whole and fed in two
 * pieces (split at data[0] % size) must give the same end position, verdict and stored bytes;
 * BDAT mode likewise. The stored message never exceeds the size limit. */
#include <stdint.h>
#include <string.h>

#include "smtp/data.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX 3000

static size_t
feed_data(struct smtp_data *d, const uint8_t *p, size_t n, bool *ended)
{
	size_t used = 0;
	*ended = smtp_data_feed(d, p, n, &used);
	ASSERT(used <= n);
	ASSERT(*ended || used == n);
	return used;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut = size ? data[0] % size : 0;
	struct smtp_data a, b;
	smtp_data_init(&a);
	smtp_data_init(&b);

	/* DATA */
	smtp_data_begin(&a, MAX);
	smtp_data_begin(&b, MAX);
	bool end_a, end_b;
	size_t used_a = feed_data(&a, data, size, &end_a);
	size_t used_b = feed_data(&b, data, cut, &end_b);
	if (!end_b)
		used_b += feed_data(&b, data + cut, size - cut, &end_b);
	ASSERT(end_a == end_b && used_a == used_b);
	ASSERT(smtp_data_result(&a) == smtp_data_result(&b));
	ASSERT(a.msg.len == b.msg.len && a.msg.len <= MAX);
	ASSERT(a.msg.len == 0 || memcmp(a.msg.data, b.msg.data, a.msg.len) == 0);
	if (end_a) /* the end marker is exactly <CRLF>.<CRLF> or a leading .<CRLF> */
		ASSERT(used_a >= 3 && memcmp(data + used_a - 3, ".\r\n", 3) == 0 &&
		       (used_a == 3 ||
		        (used_a >= 5 && data[used_a - 5] == '\r' && data[used_a - 4] == '\n')));

	/* BDAT */
	smtp_data_begin(&a, MAX);
	smtp_data_begin(&b, MAX);
	smtp_data_chunk(&a, data, size);
	smtp_data_chunk(&b, data, cut);
	smtp_data_chunk(&b, data + cut, size - cut);
	smtp_data_chunk_end(&a);
	smtp_data_chunk_end(&b);
	ASSERT(smtp_data_result(&a) == smtp_data_result(&b));
	ASSERT(a.size == size && a.msg.len == (size < MAX ? size : MAX));
	ASSERT(a.msg.len == 0 || memcmp(a.msg.data, data, a.msg.len) == 0);
	int code;
	const char *enh, *text;
	smtp_data_reply(smtp_data_result(&a), &code, &enh, &text);
	smtp_data_deinit(&a);
	smtp_data_deinit(&b);
	return 0;
}
