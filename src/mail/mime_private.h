/* Internal interface between mime.c (structure) and mime_search.c (SEARCH text); only for
 * src/mail/mime*.c. */
#ifndef LIGHTR_MAIL_MIME_PRIVATE_H
#define LIGHTR_MAIL_MIME_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/slice.h"

/* Parameters kept per header (policy: far above real mail, bounds hostile input). */
#define MIME_PARAMS_MAX 64

/* g_mime_init once (pthread_once); false when GMime cannot be used. */
bool mime_init(void);

/* One text/x leaf part: its raw body, charset parameter (empty when absent) and
 * Content-Transfer-Encoding token (empty when absent). Slices into msg, except charset. */
struct mime_text_part {
	struct slice body, charset, cte;
};
/* Called for every text/ part in order (inside multiparts and message/rfc822 too); returns false
 * to stop. */
typedef bool mime_text_fn(void *ctx, const struct mime_text_part *tp);
void mime_text_parts(const unsigned char *msg, size_t len, mime_text_fn *fn, void *ctx);

/* Next field of the header section m[*pos, e): name and raw value (after ':' up to the end of its
 * last line, folds included, final line break excluded). Non-field lines are skipped. */
bool mime_field_next(const unsigned char *m, size_t e, size_t *pos, struct slice *name_r,
                     size_t *voff_r, size_t *vlen_r);

/* The end of the top-level header section (after its blank line, or len). */
size_t mime_header_end(const unsigned char *msg, size_t len);

#endif
