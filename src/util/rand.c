/* Random bytes from the kernel CSPRNG; see rand.h. */
#include "rand.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

#include "log.h"

void
rand_bytes(void *p, size_t n)
{
	unsigned char *q = p;
	while (n > 0) {
		ssize_t got = getrandom(q, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			log_panic("rand getrandom-failed errno=%d", errno);
		}
		q += got;
		n -= (size_t)got;
	}
}

void
rand_token(char *out, size_t len)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t i = 0;
	while (i < len) {
		unsigned char r[64];
		rand_bytes(r, sizeof r);
		for (size_t j = 0; j < sizeof r && i < len; j++)
			if (r[j] < 248) /* 248 = 4 * 62: reject to avoid modulo bias */
				out[i++] = set[r[j] % 62];
	}
	out[len] = '\0';
}

void
hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}
