/* Base64 (RFC 4648 §4) encode and strict decode. Used by SASL (RFC 4954) and DKIM. No I/O. */
#ifndef LIGHTR_BASE64_H
#define LIGHTR_BASE64_H

#include <stddef.h>

#include "buf.h"

/* Appends the encoding of in to out (no line breaks). Returns -1 when out would overflow. */
int base64_encode(const unsigned char *in, size_t len, struct buf *out);
/* Decodes in into out. Strict: only the standard alphabet, padding required and only at the end,
 * no whitespace unless allow_space (then SP, TAB, CR, LF are skipped, as in DKIM p= values), and
 * non-zero bits in the final quantum's unused positions are rejected. Returns -1 on bad input or
 * overflow of out. */
int base64_decode(const char *in, size_t len, int allow_space, struct buf *out);

#endif
