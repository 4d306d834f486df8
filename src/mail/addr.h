/* Mail address and domain syntax (RFC 5321 §4.1.2, §4.5.3.1; RFC 5322 §3.4.1). No I/O, no
 * allocation. Used to validate what operators and clients hand us before it reaches the store. */
#ifndef LIGHTR_MAIL_ADDR_H
#define LIGHTR_MAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/slice.h"

#define ADDR_LOCAL_MAX  64  /* RFC 5321 §4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 253 /* RFC 1035 §2.3.4 (255 octets on the wire) */
#define ADDR_LABEL_MAX  63  /* RFC 1035 §2.3.4 */
#define ADDR_MAX        254 /* RFC 5321 §4.5.3.1.3 path of 256 minus the angle brackets */

/* A syntactically valid mail domain: two or more LDH labels (letters, digits, hyphen; no label
 * starts or ends with a hyphen), 1..63 octets each, at most 253 in all, last label not all
 * digits; a single trailing dot is not accepted. Why: operators type these, and a typo such as
 * "example..com" or "-mail.example" must be refused, not stored. */
bool addr_domain_is_valid(struct slice d);
/* local@domain with a dot-atom local part (RFC 5322 §3.4.1: atext and single dots, no leading or
 * trailing dot), the domain per addr_domain_is_valid, and the length limits above. Quoted local
 * parts are not accepted for accounts and aliases. On success sets *local_r and *domain_r to
 * slices of s. */
bool addr_parse(struct slice s, struct slice *local_r, struct slice *domain_r);
/* true when s is well-formed UTF-8 (RFC 3629 §4: no overlong forms, no surrogates, nothing
 * above U+10FFFF). Pure ASCII is valid. Used for SMTPUTF8 paths (RFC 6531) and RFC 6532 headers. */
bool addr_utf8_is_valid(struct slice s);
/* Copies s into out (size n) with ASCII letters lower-cased; returns -1 when it does not fit. */
int addr_lower(struct slice s, char *out, size_t n);

#endif
