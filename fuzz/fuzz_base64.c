/* libFuzzer target: base64 decode (strict and with spaces) and encode→decode round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf d, e, r;
	buf_init(&d, 4096);
	(void)base64_decode((const char *)data, size, 0, &d);
	buf_reset(&d);
	(void)base64_decode((const char *)data, size, 1, &d);
	buf_init(&e, 0);
	buf_init(&r, 0);
	if (base64_encode(data, size, &e) < 0 ||
	    base64_decode((const char *)e.data, e.len, 0, &r) < 0)
		abort();
	ASSERT(r.len == size && (size == 0 || memcmp(r.data, data, size) == 0));
	buf_deinit(&d);
	buf_deinit(&e);
	buf_deinit(&r);
	return 0;
}
