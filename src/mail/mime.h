/* MIME structure of a stored message for IMAP (DESIGN.md §2: computed once at delivery, stored,
 * served by offset; never re-serialised), and decoded text for SEARCH. Built on GMime 3 (RFC
 * 2045-2049 parsing, RFC 2047 encoded words, RFC 2231 parameters, charset conversion); the byte
 * offsets come from the raw input, so FETCH serves exactly the stored bytes.
 *
 * Pure functions: no I/O, no globals besides GMime's one-time init (mime_init, thread-safe,
 * called implicitly). Thread-safe. */
#ifndef LIGHTR_MAIL_MIME_H
#define LIGHTR_MAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/slice.h"

/* Nesting limit for multiparts and message/rfc822 (deeper parts are treated as opaque
 * application/octet-stream bodies, as Dovecot does). */
#define MIME_DEPTH_MAX 32
/* At most this many parts are described; the rest of a hostile message is opaque. */
#define MIME_PARTS_MAX 2000

/* IMAP metadata of one message, as text ready to be sent (RFC 9051 §7.5.2 / RFC 3501 §7.4.2
 * syntax). All heap-owned; free with mime_meta_deinit. */
/* g_mime_init once per process (pthread_once); false when GMime cannot be used. Every user of
 * GMime (mail/, tmpl/compose.c) calls it first. */
bool mime_init(void);

struct mime_meta {
	char *envelope; /* "(date subject from sender reply-to to cc bcc in-reply-to msg-id)" */
	char *body;     /* BODY: body structure without extension data */
	char *bodystructure; /* BODYSTRUCTURE: with extension data (MD5 NIL, disposition, language,
	                      * location) */
	struct buf parts;    /* the part table (mime_parts_* below), opaque serialised bytes */
};

/* Parses msg (the message exactly as received, CRLF or LF line ends) and fills m. Never fails on
 * malformed input: it describes what a tolerant reader sees (missing boundaries close the
 * part at the end of the input, a bad Content-Type becomes text/plain, RFC 2045 §5.2). Returns
 * -1 only when GMime cannot be initialised. */
int mime_meta_build(const unsigned char *msg, size_t len, struct mime_meta *m);
void mime_meta_deinit(struct mime_meta *m);

/* ---- part table: where each IMAP section lives, as byte offsets into msg ----
 * A section is addressed by its part numbers (RFC 9051 §6.4.5): {} is the whole message, {1},
 * {2, 3}... For a part that is message/rfc822, its own header/text are the encapsulated
 * message's. Offsets are relative to the start of msg as given to mime_meta_build. */
struct mime_section {
	uint64_t header_start, header_end; /* the part's MIME header incl. its blank line; for the
	                                    * top level and for message/rfc822 parts: the (RFC 822)
	                                    * header of the (encapsulated) message */
	uint64_t body_start, body_end;     /* the part's body (after the blank line); for
	                                    * message/rfc822 the whole encapsulated message */
	uint64_t text_start, text_end;     /* message/rfc822 or top level: the message's TEXT
	                                    * (body after its header); else == body */
	uint64_t msg_header_start, msg_header_end; /* message/rfc822 or top level: the
	                                            * encapsulated message's header (for
	                                            * HEADER/HEADER.FIELDS); else 0, 0 */
	bool is_message;                           /* top level or a message/rfc822 part */
	bool is_multipart;
};
/* Looks up a section path (n numbers, each >= 1; n == 0 for the whole message) in the part table.
 * RFC 9051 §6.4.5: part 1 of a non-multipart message is its body. Returns false when the path
 * does not exist (FETCH then returns an empty string, as RFC 9051 allows). */
bool mime_parts_find(struct slice parts, const uint32_t *path, size_t n, struct mime_section *s_r);

/* ---- text for SEARCH (RFC 9051 §6.4.4: case-insensitive substring, MIME-decoded) ---- */
/* Header field values of msg whose name equals field (case-insensitive; NULL = every field),
 * unfolded, RFC 2047-decoded and converted to UTF-8, each followed by "\n", appended to out. */
void mime_search_header(const unsigned char *msg, size_t len, const char *field, struct buf *out);
/* The text of the message body: every text/ part (also inside multiparts and message/rfc822),
 * transfer-decoded (base64, quoted-printable) and converted from its charset to UTF-8, appended
 * to out, parts separated by "\n". At most max bytes are produced. */
void mime_search_body(const unsigned char *msg, size_t len, size_t max, struct buf *out);
/* Case-insensitive (Unicode simple case folding for Latin, Greek, Cyrillic; ASCII for the
 * rest) substring test of UTF-8 needle in UTF-8 haystack. */
bool mime_search_contains(struct slice haystack, struct slice needle);

/* Base subject for SORT SUBJECT / THREAD (RFC 5256 §2.1), UTF-8, appended to out; *is_reply_r
 * (may be NULL) tells whether a "Re:"/"Fwd:"-like prefix or "[fwd]" was removed. */
void mime_base_subject(struct slice subject_utf8, struct buf *out, bool *is_reply_r);

/* ---- a summary for message.received events (issue 7, mime_summary.c) ----
 * From, To, Cc (decoded display forms), Subject (RFC 2047 decoded, UTF-8), Date and
 * Message-ID as in the header; the first text/plain and text/html bodies decoded to UTF-8 (at
 * most body_max bytes each, cut on a character boundary, *_truncated set); the attachments'
 * metadata (filename decoded, content type, size of the decoded content, Content-ID). Uses
 * GMime; never fails on malformed input. At most MIME_SUMMARY_MAX_ATTACHMENTS are listed. */
#define MIME_SUMMARY_MAX_ATTACHMENTS 100
struct mime_summary_att {
	char *filename, *content_type, *content_id; /* NULL when absent */
	uint64_t size;
};
struct mime_summary {
	char *from, *to, *cc, *subject, *date, *message_id; /* NULL when absent */
	char *text, *html;                                  /* NULL when absent */
	bool text_truncated, html_truncated;
	struct mime_summary_att *att;
	size_t n_att;
};
int mime_summary_build(const unsigned char *msg, size_t len, size_t body_max,
                       struct mime_summary *s_r);
void mime_summary_deinit(struct mime_summary *s);

#endif
