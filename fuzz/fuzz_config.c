/* Fuzz target for the config loader (STYLE.md B.11): any bytes through config_load_buffer(),
 * which runs libyaml and the whole table-driven walk. Beyond memory safety it checks the dump
 * contract: a config that loads must dump to YAML that loads back, without a problem, to a config
 * that dumps to the same text; and every reported problem is one line naming the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf errs, out, again;
	buf_init(&errs, 0);
	buf_init(&out, 0);
	buf_init(&again, 0);
	struct config *c = config_load_buffer("fuzz.yaml", data, size, &errs);
	if (c == NULL) {
		/* Each problem is a line of its own that starts with the file name. */
		const char *e = buf_cstr(&errs);
		if (errs.len == 0 || e[errs.len - 1] != '\n' || strncmp(e, "fuzz.yaml", 9) != 0)
			abort();
	} else {
		if (errs.len != 0)
			abort();
		config_dump(c, false, &out);
		struct config *back = config_load_buffer("dump.yaml", out.data, out.len, &errs);
		if (back == NULL) {
			fprintf(stderr, "dump does not load back:\n%s\n%s", buf_cstr(&out),
			        buf_cstr(&errs));
			abort();
		}
		config_dump(back, false, &again);
		if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0) {
			fprintf(stderr, "dump differs:\n%s\n---\n%s", buf_cstr(&out),
			        buf_cstr(&again));
			abort();
		}
		config_unref(&back);
	}
	config_unref(&c);
	buf_deinit(&errs);
	buf_deinit(&out);
	buf_deinit(&again);
	return 0;
}
