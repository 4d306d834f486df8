/* mx - pure helpers for MX answers: ordering (RFC 5321 §5.1), null MX (RFC 7505), literals. */
#include "dns/resolver.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/rand.h"

/* dns_mx_rand - uniform integer in [0, bound) from rand_bytes, with rejection (no modulo bias). */
static uint32_t
dns_mx_rand(void *ctx, uint32_t bound)
{
	(void)ctx;
	if (bound <= 1)
		return 0;
	uint32_t limit = UINT32_MAX - UINT32_MAX % bound;
	for (;;) {
		uint32_t v;
		rand_bytes(&v, sizeof v);
		if (v < limit)
			return v % bound;
	}
}

static int
dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcmp(x->host, y->host);
}

void
dns_mx_sort(struct dns_mx *mx, size_t n, dns_rand_fn *rnd, void *rnd_ctx)
{
	if (n < 2)
		return;
	if (rnd == NULL)
		rnd = dns_mx_rand;
	qsort(mx, n, sizeof *mx, dns_mx_cmp);
	size_t start = 0;
	while (start < n) {
		size_t end = start + 1;
		while (end < n && mx[end].pref == mx[start].pref)
			end++;
		/* Fisher-Yates over mx[start..end). */
		for (size_t i = end - start; i > 1; i--) {
			uint32_t j = rnd(rnd_ctx, (uint32_t)i);
			if (j >= i)
				j = (uint32_t)(i -
				               1); /* a broken rnd must not index out of range */
			struct dns_mx tmp = mx[start + i - 1];
			mx[start + i - 1] = mx[start + j];
			mx[start + j] = tmp;
		}
		start = end;
	}
}

bool
dns_mx_is_null(const struct dns_mx *mx, size_t n)
{
	return n == 1 && (mx[0].host[0] == '\0' || strcmp(mx[0].host, ".") == 0);
}

bool
dns_is_ip_literal(const char *s)
{
	char tmp[DNS_ADDR_STRLEN + 8];
	size_t len = strlen(s);
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
		if (len >= 5 && strncasecmp(s, "IPv6:", 5) == 0) {
			s += 5;
			len -= 5;
		}
	}
	if (len == 0 || len >= sizeof tmp)
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	unsigned char bin[16];
	return inet_pton(AF_INET, tmp, bin) == 1 || inet_pton(AF_INET6, tmp, bin) == 1;
}
