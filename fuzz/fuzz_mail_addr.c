/* libFuzzer target: address and domain syntax. An accepted address splits into a local part and
 * a valid domain that lie inside the input. */
#include <stdint.h>

#include "mail/addr.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice s = slice_make(data, size), local, domain;
	(void)addr_domain_is_valid(s);
	if (addr_parse(s, &local, &domain)) {
		ASSERT(local.len >= 1 && local.len <= ADDR_LOCAL_MAX);
		ASSERT(addr_domain_is_valid(domain));
		ASSERT(local.len + 1 + domain.len == size);
	}
	char out[300];
	(void)addr_lower(s, out, sizeof out);
	return 0;
}
