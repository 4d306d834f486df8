/* libFuzzer target: checked number parsing (u64, sizes, durations, booleans). Accepted values
 * must respect max and a plain u64 must print back to the same digits (less leading zeros). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/strconv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice s = slice_make(data, size);
	uint64_t v, max = size ? data[0] * 1000003ULL : 0;
	int b;
	if (strconv_u64(s, UINT64_MAX, &v) == 0) {
		char txt[32];
		size_t skip = 0;
		while (skip + 1 < size && data[skip] == '0')
			skip++;
		int n = snprintf(txt, sizeof txt, "%" PRIu64, v);
		ASSERT(n > 0 && (size_t)n == size - skip &&
		       memcmp(txt, data + skip, (size_t)n) == 0);
	}
	if (strconv_u64(s, max, &v) == 0)
		ASSERT(v <= max);
	if (strconv_size(s, max, &v) == 0)
		ASSERT(v <= max);
	if (strconv_duration(s, max, &v) == 0)
		ASSERT(v <= max);
	(void)strconv_bool(s, &b);
	return 0;
}
