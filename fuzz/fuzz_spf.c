/* libFuzzer target: SPF record parsing and check_host() evaluation (src/policy/spf.c). The first
 * byte picks the client address and identity; the rest, split at '\n', are TXT records: line 0 at
 * f.example (the sender's domain), line N at iN.example (reachable by include/redirect). Other
 * answers come from fixed rules on the queried name, including temporary failures and void
 * answers, so every mechanism and limit is reachable. Results must be a valid enum and the
 * reason a terminated string. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"
#include "util/log.h"
#include "util/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { LINES_MAX = 16 };

struct fz {
	const char *line[LINES_MAX];
	size_t len[LINES_MAX];
	size_t n;
	int queries;
};

static unsigned
name_hash(const char *s)
{
	unsigned h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)(*s | 0x20);
	return h;
}

/* A one-element answer: n bytes of s, or all of it when n is SIZE_MAX. */
static char **
one(const char *s, size_t n)
{
	char **v = xcalloc(1, sizeof *v);
	v[0] = xstrndup(s, n);
	return v;
}

static int
fz_txt(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	struct fz *f = ctx;
	f->queries++;
	size_t k = 0;
	if (strcasecmp(name, "f.example") == 0)
		k = 0;
	else if ((name[0] == 'i' || name[0] == 'I') && name[1] >= '1' && name[1] <= '9' &&
	         strcasecmp(name + 2, ".example") == 0)
		k = (size_t)(name[1] - '0');
	else
		return name_hash(name) % 7 == 0 ? -1 : 1;
	if (k >= f->n)
		return 1;
	*v_r = one(f->line[k], f->len[k]);
	*n_r = 1;
	return 0;
}

static int
fz_addr(void *ctx, const char *name, bool v6, char ***v_r, size_t *n_r)
{
	struct fz *f = ctx;
	f->queries++;
	switch (name_hash(name) % 5) {
	case 0:
		return 1;
	case 1:
		return -1;
	case 2:
		*v_r = one(v6 ? "2001:db8::1" : "192.0.2.1", SIZE_MAX);
		break;
	case 3:
		*v_r = one(v6 ? "2001:db8::/x" : "not an address", SIZE_MAX);
		break;
	default:
		*v_r = one(v6 ? "2001:db8:1::1" : "198.51.100.1", SIZE_MAX);
		break;
	}
	*n_r = 1;
	return 0;
}

static int
fz_names(struct fz *f, const char *name, size_t count, char ***v_r, size_t *n_r)
{
	f->queries++;
	unsigned h = name_hash(name);
	if (h % 6 == 0)
		return 1;
	if (h % 6 == 1)
		return -1;
	char **v = xcalloc(count, sizeof *v);
	for (size_t i = 0; i < count; i++)
		v[i] = xasprintf("h%zu.i%zu.example.", i, i % 3 + 1);
	*v_r = v;
	*n_r = count;
	return 0;
}

static int
fz_mx(void *ctx, const char *name, char ***v_r, size_t *n_r)
{
	return fz_names(ctx, name, strncasecmp(name, "many", 4) == 0 ? 12 : 3, v_r, n_r);
}

static int
fz_ptr(void *ctx, const char *ip, char ***v_r, size_t *n_r)
{
	return fz_names(ctx, ip, 11, v_r, n_r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ips[] = {"192.0.2.1",        "2001:db8::1",   "198.51.100.1",
	                                  "::ffff:192.0.2.1", "2001:db8:1::1", "0.0.0.0"};
	struct fz f = {0};
	if (size == 0 || size > 16384)
		return 0;
	uint8_t sel = data[0];
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	while (f.n < LINES_MAX) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		f.line[f.n] = p;
		f.len[f.n] = (size_t)((e ? e : end) - p);
		f.n++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	struct policy_dns dns = {&f, fz_txt, fz_addr, fz_mx, fz_ptr};
	struct spf_request req = {ips[sel % 6], (sel & 0x40) ? "" : "Strong-Bad@f.example",
	                          "f.example", (sel & 0x80) ? NULL : "mx.example", 1700000000};
	struct spf_outcome out;
	spf_check(&req, &dns, &out);
	ASSERT(out.result >= SPF_NONE && out.result <= SPF_PERMERROR);
	ASSERT(memchr(out.reason, '\0', sizeof out.reason) != NULL);
	ASSERT(strcmp(out.domain, "f.example") == 0);
	ASSERT(out.helo_identity == ((sel & 0x40) != 0));
	/* 10 terms, each at most 1 + 10 (+ the PTR/MX lookups of %{p}), and the record lookups */
	ASSERT(f.queries <= 400);
	return 0;
}
