/* Header-section access (RFC 5322 §2.2, §3.6) and mailbox-list extraction (§3.4), without GMime:
 * enough for the submission server's From: check (sender authorisation) and hop counting. No
 * I/O; thread-safe (no shared state). Input is the raw message; fields are returned as borrowed
 * slices of it. Lines may end in CRLF or, leniently, LF.
 *
 * Limits: a header section of at most HDR_SECTION_MAX octets and HDR_FIELDS_MAX fields, one
 * field (with its folded lines) at most HDR_FIELD_MAX octets, at most HDR_ADDRS_MAX addresses
 * from one field. */
#ifndef LIGHTR_MAIL_HDR_H
#define LIGHTR_MAIL_HDR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/slice.h"

#define HDR_SECTION_MAX (1024 * 1024) /* policy: far above real mail, bounded work */
#define HDR_FIELD_MAX   (100 * 1024)  /* policy (Postfix header_size_limit) */
#define HDR_FIELDS_MAX  1000          /* policy */
#define HDR_ADDRS_MAX   100           /* policy: mailboxes taken from one field */
#define HDR_ADDR_MAX    998           /* RFC 5322 §2.1.1 line limit bounds any one address */

struct hdr_field {
	struct slice name;  /* field name, trailing WSP removed (obs-optional allows "From :") */
	struct slice value; /* raw value after ':' up to its final line break, folds included */
};

/* Iterates over the fields of a header section. */
struct hdr_iter {
	const unsigned char *msg;
	size_t len, pos;
	unsigned fields;
	bool done;
};

enum hdr_next {
	HDR_FIELD, /* *f_r is the next field */
	HDR_END,   /* the blank line (or the end of the message) was reached */
	HDR_ERROR, /* *err_r says why: a line that is neither field nor fold, or a limit */
};

void hdr_iter_init(struct hdr_iter *it, const unsigned char *msg, size_t len);
enum hdr_next hdr_iter_next(struct hdr_iter *it, struct hdr_field *f_r, const char **err_r);

/* Appends value unfolded (RFC 5322 §2.2.3: a line break followed by WSP is removed; other line
 * breaks too) to out. Returns -1 when out overflows. */
int hdr_unfold(struct slice value, struct buf *out);

/* Parses an address-list / mailbox-list (RFC 5322 §3.4, with the obsolete forms of §4.4:
 * display names, quoted strings, comments, groups, routes, empty list elements) and returns the
 * addr-specs, normalised: comments and folding removed, a quoted local part unquoted when it is
 * a dot-atom, otherwise re-quoted minimally. *addrs_r is an array of *n_r strings allocated in a.
 * Returns -1 (and *err_r static text) on a syntax error, an address without a domain, or more
 * than HDR_ADDRS_MAX addresses. */
int hdr_addr_list(struct slice value, struct arena *a, char ***addrs_r, size_t *n_r,
                  const char **err_r);

#endif
