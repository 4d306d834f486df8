/* libFuzzer target: DMARC record and From: parsing through dmarc_check (a fake DNS answers every
 * _dmarc name with the first input line as the record), Authentication-Results building from
 * the outcome, and authres_strip on the whole input. Layout: "<record>\n<message>". */
#include <stdint.h>
#include <string.h>

#include "policy/policy.h"
#include "util/log.h"
#include "util/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_rec {
	const char *rec;
	size_t len;
};

static int
fuzz_txt(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	const struct fuzz_rec *r = ctx;
	if (strncmp(name, "_dmarc.", 7) != 0)
		return 1;
	*v_r = xcalloc(1, sizeof **v_r);
	(*v_r)[0] = xmalloc(r->len + 1);
	memcpy((*v_r)[0], r->rec, r->len);
	(*v_r)[0][r->len] = '\0';
	*n_r = 1;
	return 0;
}

static int
fuzz_sample(void *ctx)
{
	return *(const int *)ctx;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t rlen = nl != NULL ? (size_t)(nl - data) : size;
	struct fuzz_rec rec = {(const char *)data, rlen};
	const unsigned char *msg = nl != NULL ? nl + 1 : data + size;
	size_t mlen = size - (size_t)(msg - data);
	struct policy_dns dns = {.ctx = &rec, .txt = fuzz_txt};
	struct spf_outcome spf = {.result = SPF_PASS, .domain = "example.com"};
	struct dkim_verify_result dkim = {.n = 1};
	dkim.sigs[0].result = DKIM_RESULT_PASS;
	memcpy(dkim.sigs[0].domain, "mail.example.org", sizeof "mail.example.org");
	int roll = size > 0 ? data[size - 1] % 100 : 0;
	struct dmarc_outcome out;
	dmarc_check(msg, mlen, &spf, &dkim, &dns, fuzz_sample, &roll, &out);
	ASSERT(out.result <= DMARC_PERMERROR);
	ASSERT(memchr(out.reason, '\0', sizeof out.reason) != NULL);
	ASSERT(out.result == DMARC_FAIL || out.applied == DMARC_POLICY_NONE);

	struct buf b;
	buf_init(&b, 0);
	authres_build("mx.example.org", &spf, &dkim, &out, &b);
	ASSERT(!b.overflow && b.len > 0);
	struct buf s;
	buf_init(&s, 0);
	ASSERT(authres_strip(b.data, b.len, "MX.example.org", &s) == 1 && s.len == 0);
	buf_reset(&s);
	size_t removed = authres_strip(data, size, "mx.example.org", &s);
	ASSERT(s.len <= size);
	ASSERT(removed > 0 || (s.len == size && (size == 0 || memcmp(s.data, data, size) == 0)));
	buf_deinit(&s);
	buf_deinit(&b);
	return 0;
}
