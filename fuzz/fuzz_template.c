/* libFuzzer target: Mustache-style templates (tmpl/template.c). The first byte selects HTML
 * escaping (low bit); the rest is split at the first NUL into the template source and JSON
 * variables (json_loadb; unparsable JSON means no variables). Compiles, and when that works
 * renders with the missing-name report: a compile error has a position inside the input, a
 * render error leaves the output within TMPL_OUTPUT_MAX, the missing report stays bounded. */
#include <stdint.h>
#include <string.h>

#include "tmpl/tmpl.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool html = data[0] & 1;
	const char *src = (const char *)data + 1;
	size_t rest = size - 1;
	const char *nul = memchr(src, '\0', rest);
	size_t src_len = nul ? (size_t)(nul - src) : rest;
	json_t *vars = NULL;
	if (nul != NULL)
		vars = json_loadb(nul + 1, rest - src_len - 1, JSON_DECODE_ANY, NULL);

	struct tmpl_error e;
	struct tmpl *t = tmpl_compile(src, src_len, html, &e);
	if (t == NULL) {
		ASSERT(e.line >= 1 && e.column >= 1 && e.msg[0] != '\0');
		ASSERT(e.line <= src_len + 1 && e.column <= src_len + 1);
	} else {
		struct buf out;
		buf_init(&out, 0);
		struct tmpl_missing m = {0};
		struct err err = {0};
		int rc = tmpl_render(t, vars, &out, &m, &err);
		ASSERT(out.len <= TMPL_OUTPUT_MAX);
		ASSERT(rc == 0 || err.msg[0] != '\0');
		ASSERT(m.n <= TMPL_MISSING_MAX);
		for (size_t i = 0; i < m.n; i++)
			ASSERT(m.names[i] != NULL && strlen(m.names[i]) <= TMPL_NAME_MAX);
		tmpl_missing_deinit(&m);
		buf_deinit(&out);
		tmpl_free(&t);
	}
	json_decref(vars);
	return 0;
}
