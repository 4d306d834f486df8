/* libFuzzer target: bounce and complaint parsing (dsn_parse) of arbitrary bytes. Every result
 * is within the limits, every string is NUL-terminated inside its array, a recipient always has
 * an address, and dsn_parsed_is_hard agrees with the status class when there is one. */
#include <stdint.h>
#include <string.h>

#include "mail/dsn.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dsn_parsed p; /* large: keep it off the stack */
	dsn_parse(data, size, &p);
	ASSERT(p.kind <= DSN_PARSE_HEURISTIC);
	ASSERT(p.n_rcpts <= DSN_PARSE_MAX_RCPTS);
	ASSERT(TERMINATED(p.reporting_mta) && TERMINATED(p.feedback_type));
	ASSERT(TERMINATED(p.original_message_id) && TERMINATED(p.original_mail_from));
	if (p.kind == DSN_PARSE_NONE)
		ASSERT(p.n_rcpts == 0);
	for (size_t i = 0; i < p.n_rcpts; i++) {
		const struct dsn_parsed_rcpt *r = &p.rcpts[i];
		ASSERT(TERMINATED(r->address) && TERMINATED(r->orig_address));
		ASSERT(TERMINATED(r->action) && TERMINATED(r->status));
		ASSERT(TERMINATED(r->diagnostic) && TERMINATED(r->remote_mta));
		ASSERT(r->address[0] != '\0');
		bool hard = dsn_parsed_is_hard(r);
		if (r->status[0] != '\0')
			ASSERT(hard == (r->status[0] == '5'));
	}
	return 0;
}
