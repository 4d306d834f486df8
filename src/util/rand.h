/* Cryptographically secure random bytes (getrandom(2)). Thread-safe. */
#ifndef LIGHTR_RAND_H
#define LIGHTR_RAND_H

#include <stddef.h>

/* Fills p with n random bytes; aborts if the kernel cannot supply them. */
void rand_bytes(void *p, size_t n);
/* Writes a random string of len characters from [A-Za-z0-9] plus NUL into out (size >= len+1);
 * used for generated passwords and ids. */
void rand_token(char *out, size_t len);
/* Hex-encodes n bytes of in into out (size >= 2n+1). */
void hex_encode(const unsigned char *in, size_t n, char *out);

#endif
