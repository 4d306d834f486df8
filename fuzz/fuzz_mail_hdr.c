/* libFuzzer target: header-section iteration and RFC 5322 address-list extraction. Every field
 * lies inside the input; every address list of every field is parsed, and the whole input is
 * also parsed as one address list. */
#include <stdint.h>
#include <string.h>

#include "mail/hdr.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
addresses(struct slice v)
{
	struct arena *a = arena_new("fuzz", 0);
	char **addrs;
	size_t n;
	const char *err = NULL;
	if (hdr_addr_list(v, a, &addrs, &n, &err) == 0) {
		ASSERT(n <= HDR_ADDRS_MAX);
		for (size_t i = 0; i < n; i++) {
			ASSERT(strchr(addrs[i], '@') != NULL);
			ASSERT(strlen(addrs[i]) <= HDR_ADDR_MAX);
		}
	} else {
		ASSERT(err != NULL);
	}
	arena_free(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hdr_iter it;
	struct hdr_field f;
	const char *err;
	hdr_iter_init(&it, data, size);
	unsigned n = 0;
	while (hdr_iter_next(&it, &f, &err) == HDR_FIELD) {
		ASSERT(++n <= HDR_FIELDS_MAX);
		ASSERT(f.name.len > 0 && (const uint8_t *)f.name.p >= data);
		ASSERT((const uint8_t *)f.value.p + f.value.len <= data + size);
		struct buf u;
		buf_init(&u, 0);
		ASSERT(hdr_unfold(f.value, &u) == 0);
		ASSERT(memchr(u.data ? u.data : (const unsigned char *)"", '\n', u.len) == NULL);
		buf_deinit(&u);
		addresses(f.value);
	}
	addresses(slice_make(data, size));
	return 0;
}
