/* libFuzzer target: the DKIM tag-list parser (RFC 6376 §3.2), the key-record parser and
 * dkim_verify on the whole input as a message, with a fake TXT callback serving a fixed
 * Ed25519 key record (the RFC 8463 one) for every name. Checks that every tag lies inside the
 * input and that verification results are well-formed. */
#include <stdint.h>
#include <string.h>

#include "dkim/dkim.h"
#include "dkim/dkim_private.h"
#include "util/log.h"
#include "util/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fake_txt(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	(void)ctx;
	if (strncmp(name, "temp.", 5) == 0)
		return -1;
	if (strncmp(name, "none.", 5) == 0)
		return 1;
	*v_r = xmalloc(sizeof **v_r);
	(*v_r)[0] = xstrdup("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
	*n_r = 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct dkim_tags t;
	const char *why = NULL;
	if (dkim_tags_parse(s, size, &t, &why) == 0) {
		ASSERT(t.n <= DKIM_TAGS_MAX);
		for (size_t i = 0; i < t.n; i++) {
			const struct dkim_tag *g = &t.v[i];
			ASSERT(g->name.len > 0 && g->name.p >= s &&
			       g->name.p + g->name.len <= s + size);
			ASSERT(g->value.p >= s && g->value.p + g->value.len <= s + size);
			ASSERT(g->raw_start <= g->raw_end && g->raw_end <= size);
			struct slice e;
			size_t pos = 0, n = 0;
			while (dkim_tags_list_next(g->value, &pos, &e))
				ASSERT(++n <= g->value.len + 1);
		}
	} else {
		ASSERT(why != NULL);
	}
	struct dkim_keyrec kr;
	why = NULL;
	if (dkim_keyrec_parse(s, size, &kr, &why) < 0)
		ASSERT(why != NULL);
	else
		ASSERT(kr.revoked || kr.key.len > 0);
	dkim_keyrec_deinit(&kr);

	struct dkim_verify_result res;
	dkim_verify(data, size, 1800000000, fake_txt, NULL, &res);
	ASSERT(res.n <= DKIM_VERIFY_MAX);
	for (size_t i = 0; i < res.n; i++) {
		const struct dkim_sig_result *r = &res.sigs[i];
		ASSERT(r->result != DKIM_RESULT_NONE);
		ASSERT(strlen(r->b_prefix) <= 8);
		ASSERT((r->result == DKIM_RESULT_PASS) == (r->reason[0] == '\0'));
	}
	return 0;
}
