/* Templates and message composition for the REST API (issue 6, DESIGN.md §7).
 *
 * 1. Mustache-style templates (tmpl/template.c). Syntax:
 *      {{name}}            value, HTML-escaped when the template is compiled with html = true
 *      {{{name}}} {{& name}}  value, never escaped
 *      {{a.b.c}}           dotted names: a, then member b of it, then c
 *      {{.}}               the current context value (inside a section over a list of scalars)
 *      {{#name}}…{{/name}} section: a list renders the body once per element (the element is
 *                          pushed as context); a truthy non-list value (true, non-empty string,
 *                          non-zero number, object) renders it once, an object pushed as context;
 *                          false, null, "", 0, [] or a missing name renders nothing
 *      {{^name}}…{{/name}} inverted: renders once exactly when the section would not
 *      {{! comment }}      ignored
 *    Name lookup walks the context stack from the innermost outwards (Mustache rules); a dotted
 *    name resolves its first part that way, the rest as members. Values: strings as they are,
 *    integers and reals in JSON notation, true/false, null renders empty, objects and arrays
 *    render empty. Whitespace inside tags is ignored ("{{ name }}"). Names are [A-Za-z0-9_.-]+
 *    or ".". No partials, no delimiter changes, no lambdas. Standalone-line trimming is not
 *    done: text around tags is kept byte for byte.
 *    Limits: template source TMPL_SOURCE_MAX bytes, section nesting TMPL_DEPTH_MAX, rendered
 *    output TMPL_OUTPUT_MAX bytes (exceeding it is an error at render time).
 *
 * 2. Composition (tmpl/compose.c): builds an RFC 5322 message with GMime from the fields of an
 *    API send: text and/or HTML (multipart/alternative when both), inline attachments with a
 *    Content-ID (multipart/related around the HTML), other attachments (multipart/mixed
 *    outermost); RFC 2047 encoded-words for non-ASCII display names and subjects, RFC 2231 for
 *    non-ASCII attachment filenames; quoted-printable for text parts, base64 for attachments;
 *    CRLF line endings; Date and Message-ID added.
 *
 * Thread safety: all functions are reentrant; a compiled template is immutable and may be
 * rendered by several threads at once. compose_build initialises GMime itself (mail/mime.h
 * mime_init, once per process). */
#ifndef LIGHTR_TMPL_H
#define LIGHTR_TMPL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define TMPL_SOURCE_MAX (512 * 1024)
#define TMPL_DEPTH_MAX  32
#define TMPL_OUTPUT_MAX (8 * 1024 * 1024)
#define TMPL_NAME_MAX   128 /* a tag's name, bytes */
/* Work per render: nodes visited plus list elements iterated (nested sections over long lists
 * with empty bodies would otherwise run for ages without reaching TMPL_OUTPUT_MAX). */
#define TMPL_STEPS_MAX (16u * 1024 * 1024)

struct tmpl;

/* Syntax error position: line and column (1-based, column counted in bytes) of the start of the
 * offending tag or of the end of input, and a message such as "unclosed section 'items'" or
 * "unexpected {{/b}}, expected {{/a}}". */
struct tmpl_error {
	unsigned line, column;
	char msg[160];
};

/* Compiles src[0..len) (UTF-8, need not be NUL-terminated). html selects escaping of {{name}}:
 * & < > " ' become &amp; &lt; &gt; &quot; &#39;. Returns NULL and fills *e on a syntax error or
 * when a limit is exceeded. */
struct tmpl *tmpl_compile(const char *src, size_t len, bool html, struct tmpl_error *e);
void tmpl_free(struct tmpl **tp);

/* Names that were looked up and not found during one render, in first-use order, each once
 * (dotted names as written). Up to TMPL_MISSING_MAX are kept; more are counted in n_dropped. */
#define TMPL_MISSING_MAX 64
struct tmpl_missing {
	char *names[TMPL_MISSING_MAX];
	size_t n;
	size_t n_dropped;
};
void tmpl_missing_deinit(struct tmpl_missing *m);

/* Renders t with vars (a JSON object, or NULL = no variables) appended to out. Missing names
 * render empty and are added to *missing (may be NULL, else zero-initialised by the caller).
 * Returns 0, or -1 with err when the output would exceed TMPL_OUTPUT_MAX or the work
 * TMPL_STEPS_MAX (out then holds a partial result the caller discards). */
int tmpl_render(const struct tmpl *t, const json_t *vars, struct buf *out,
                struct tmpl_missing *missing, struct err *err);

/* ---- composition ---- */
#define COMPOSE_MAX_RCPTS       1000
#define COMPOSE_MAX_ATTACHMENTS 100
#define COMPOSE_MAX_HEADERS     50

struct compose_addr {
	const char *name;  /* display name (UTF-8) or NULL */
	const char *email; /* addr-spec, already validated by the caller */
};
struct compose_attachment {
	const char *filename;      /* UTF-8; required */
	const char *content_type;  /* "type/subtype", NULL = application/octet-stream */
	const char *content_id;    /* NULL: a regular attachment; else an inline part referenced
	                            * from the HTML as cid:<content_id> */
	const unsigned char *data; /* decoded bytes */
	size_t len;
};
struct compose_header { /* extra header fields, added as given (value UTF-8 → RFC 2047) */
	const char *name;
	const char *value;
};
struct compose_msg {
	struct compose_addr from;
	const struct compose_addr *to, *cc, *reply_to; /* bcc never appears in the message */
	size_t n_to, n_cc, n_reply_to;
	const char *subject; /* UTF-8, may be NULL */
	const char *text;    /* text/plain body (UTF-8) or NULL */
	const char *html;    /* text/html body (UTF-8) or NULL; at least one of text/html */
	const struct compose_attachment *att;
	size_t n_att;
	const struct compose_header *headers;
	size_t n_headers;
	const char *message_id; /* without <>, e.g. "abc@example.com"; NULL: generated from a
	                         * random token and from's domain */
	int64_t date;           /* unix seconds for the Date field; 0 = now */
};

/* Returns 0 with the message (header and body, CRLF line endings) appended to out, and the
 * Message-ID used (without <>) in message_id_r (size TMPL_MSGID_MAX) when not NULL; -1 with
 * err for a header name that is not a valid field name or is one compose owns (From, To, Cc,
 * Bcc, Subject, Date, Message-ID, MIME-Version, Content-*, Reply-To), or for a value with CR/LF. */
#define TMPL_MSGID_MAX 256
int compose_build(const struct compose_msg *m, struct buf *out, char *message_id_r,
                  struct err *err);

#endif
