/* Incremental SMTP command-line parser (RFC 5321 §4.1) and the argument grammars of MAIL, RCPT
 * and BDAT: reverse-/forward-paths (§4.1.2, with RFC 6531 UTF-8), ESMTP parameters of SIZE (RFC
 * 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461: RET, ENVID, NOTIFY, ORCPT, xtext),
 * REQUIRETLS (RFC 8689) and AUTH= (RFC 4954 §5, ignored). No I/O, no allocation after the
 * parser's line buffer; one parser per session; not thread-safe.
 *
 * Framing policy: a line ends at LF. A line that does not end in CRLF (bare LF), that holds a CR
 * anywhere else (bare CR) or a NUL is an error for the whole line; the parser never guesses a
 * line boundary at a bare CR. A line longer than the limit is reported once, as soon as the limit
 * is passed, and the rest up to the next LF is skipped silently. */
#ifndef LIGHTR_SMTP_CMD_PARSER_H
#define LIGHTR_SMTP_CMD_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/slice.h"

enum smtp_parse {
	SMTP_PARSE_NEED_MORE, /* every byte was consumed; no complete line yet */
	SMTP_PARSE_CMD,       /* *cmd_r holds the line */
	SMTP_PARSE_ERROR,     /* *err_r says why; the line (or its start) was consumed */
};

struct smtp_cmd_limits {
	size_t line_max; /* octets including CRLF: SMTP_CMD_LINE_MAX */
	size_t
	    auth_line_max; /* lines starting "AUTH " and AUTH continuations: SMTP_AUTH_LINE_MAX */
};

/* One command line. Slices point into the parser's line buffer: valid until the next call of
 * smtp_cmd_parse() or smtp_cmd_parser_reset(). */
struct smtp_cmd {
	struct slice line; /* the whole line without CRLF */
	struct slice verb; /* up to the first SP (may be empty) */
	struct slice arg;  /* after the first SP, without leading and trailing SP/TAB */
};

struct smtp_cmd_parser;

struct smtp_cmd_parser *smtp_cmd_parser_new(const struct smtp_cmd_limits *limits);
void smtp_cmd_parser_free(struct smtp_cmd_parser **pp);
/* Forgets a partial line and any pending skip (after STARTTLS: CVE-2011-0411). */
void smtp_cmd_parser_reset(struct smtp_cmd_parser *p);
/* AUTH continuation mode (RFC 4954 §4): lines may be up to auth_line_max long. */
void smtp_cmd_parser_set_auth(struct smtp_cmd_parser *p, bool on);
/* true when part of a line is buffered or a too-long line is being skipped. */
bool smtp_cmd_parser_has_partial(const struct smtp_cmd_parser *p);

/* Consumes up to len bytes and sets *used_r; stops right after a complete line, so the caller
 * can switch to DATA, BDAT or TLS for the bytes that follow. SMTP_PARSE_ERROR: *err_r is static
 * text ("line too long", "bare CR", "bare LF", "NUL"); the result is the same whether the input
 * arrives whole or one byte at a time. */
enum smtp_parse smtp_cmd_parse(struct smtp_cmd_parser *p, const unsigned char *in, size_t len,
                               size_t *used_r, struct smtp_cmd *cmd_r, const char **err_r);

/* A reply chosen by an argument parser: static strings. */
struct smtp_cmd_error {
	int code;
	const char *enhanced;
	const char *text;
};

#define SMTP_PATH_MAX   256 /* RFC 5321 §4.5.3.1.3, including the angle brackets */
#define SMTP_ENVID_MAX  100 /* RFC 3461 §4.4 */
#define SMTP_ORCPT_MAX  500 /* RFC 3461 §4.2 */
#define SMTP_DOMAIN_MAX 255 /* RFC 5321 §4.5.3.1.2 */

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

/* NOTIFY flags (RFC 3461 §4.1). NEVER excludes the others. */
enum {
	SMTP_NOTIFY_NEVER = 1,
	SMTP_NOTIFY_SUCCESS = 2,
	SMTP_NOTIFY_FAILURE = 4,
	SMTP_NOTIFY_DELAY = 8,
};

struct smtp_mail_args {
	struct slice path; /* mailbox without <> and source route; len 0 for the null path <> */
	bool null_path;
	bool utf8; /* the path holds non-ASCII (valid UTF-8) octets */
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8, requiretls;
	enum smtp_ret ret;
	bool has_envid;
	char envid[SMTP_ENVID_MAX + 1]; /* xtext-decoded, printable ASCII */
};

struct smtp_rcpt_args {
	struct slice path; /* mailbox without <> and source route */
	bool postmaster;   /* "<Postmaster>" without a domain (RFC 5321 §4.1.1.3) */
	bool utf8;
	unsigned notify; /* SMTP_NOTIFY_* or 0 */
	bool has_orcpt;
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "addr-type;decoded", e.g. "rfc822;a@b.example" */
};

/* arg is smtp_cmd.arg of MAIL ("FROM:<path> params"); slices in *out point into arg. On error
 * fills *err_r (501 syntax, 555 unknown parameter, 501 duplicate or bad value) and returns -1.
 * Decisions that depend on the session (SMTPUTF8 needed for utf8, SIZE limit, REQUIRETLS only
 * under TLS) are left to the caller. */
int smtp_cmd_parse_mail(struct slice arg, struct smtp_mail_args *out, struct smtp_cmd_error *err_r);
/* Same for RCPT ("TO:<path> params"). The null path is refused. */
int smtp_cmd_parse_rcpt(struct slice arg, struct smtp_rcpt_args *out, struct smtp_cmd_error *err_r);
/* BDAT (RFC 3030 §2): "<size> [LAST]". */
int smtp_cmd_parse_bdat(struct slice arg, uint64_t *size_r, bool *last_r);

/* RFC 5321 §4.1.2 Domain (LDH labels, 1..63 octets each, at most SMTP_DOMAIN_MAX), or with
 * utf8 also U-labels (any valid UTF-8 octets >= 0x80 inside labels). */
bool smtp_cmd_domain_is_valid(struct slice d, bool utf8);
/* RFC 5321 §4.1.3 address-literal: "[1.2.3.4]", "[IPv6:...]" or "[tag:dcontent]". */
bool smtp_cmd_addr_literal_is_valid(struct slice d);
/* EHLO/HELO argument: a domain or address literal; underscores are tolerated in names (seen
 * from real hosts; harmless since it is only recorded). */
bool smtp_cmd_helo_is_valid(struct slice d);
/* RFC 3461 §4 xtext decoding into out (size n, NUL-terminated); -1 on bad syntax, on a decoded
 * byte outside printable ASCII, or when out is too small. */
int smtp_xtext_decode(struct slice in, char *out, size_t n);

#endif
